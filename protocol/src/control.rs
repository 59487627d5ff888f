//! Reliable, ordered messages on the control stream (one bidirectional QUIC
//! stream per connection, opened by the client).
//!
//! The client's first frame must be [`ClientControl::Hello`]; the node answers
//! [`ServerControl::Welcome`] or an [`ServerControl::Error`] with
//! [`ErrorCode::VersionMismatch`] and closes. Then the client sends
//! [`ClientControl::Join`] with a join ticket.

use serde::{Deserialize, Serialize};

use crate::codec::{Bounded, check_text};
use crate::{AccountId, LobbyId, MAX_PLAYERS_PER_LOBBY, PlayerId};

/// Longest chat message in bytes (UTF-8).
pub const MAX_CHAT_BYTES: usize = 200;
/// Longest display name in bytes.
pub const MAX_NAME_BYTES: usize = 32;
/// Longest join ticket (a compact JWT) in bytes.
pub const MAX_TICKET_BYTES: usize = 2048;
/// Longest mode, map or cosmetic identifier.
pub const MAX_ID_BYTES: usize = 32;
/// Longest free-text reason or error message.
pub const MAX_MESSAGE_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientControl {
    /// First frame: protocol version and a free-form client name ("loadgen/0.1").
    Hello { version: u16, client: String },
    /// Join (or resume) a lobby with a signed join ticket.
    Join { ticket: String },
    /// Lobby chat.
    Chat { text: String },
    /// Restart vote after a match ended.
    Vote { restart: bool },
    /// Leave the lobby for good (the slot is not kept for a reconnect).
    Leave,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerControl {
    Welcome {
        version: u16,
        node_id: String,
        tick_rate: u16,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    LobbyJoined(LobbyJoined),
    /// The whole roster, sent whenever someone joins, leaves, disconnects or
    /// reconnects.
    Roster {
        #[serde(deserialize_with = "crate::codec::bounded_vec::<_, _, MAX_PLAYERS_PER_LOBBY>")]
        players: Vec<RosterEntry>,
    },
    /// Kill feed.
    Kill {
        killer: PlayerId,
        victim: PlayerId,
    },
    MatchStarted {
        match_id: uuid::Uuid,
        kill_target: u16,
    },
    MatchEnded(MatchEnded),
    VoteState(VoteState),
    /// The lobby closed (the restart vote failed, or the node drains): the
    /// client should matchmake again.
    LobbyClosed {
        reason: String,
    },
    Chat {
        from: PlayerId,
        name: String,
        text: String,
    },
    Kicked {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyJoined {
    pub lobby: LobbyInfo,
    pub you: PlayerId,
    pub map: String,
    pub match_id: uuid::Uuid,
    pub kill_target: u16,
    /// True when this join resumed a slot kept after a disconnect.
    pub resumed: bool,
    #[serde(deserialize_with = "crate::codec::bounded_vec::<_, _, MAX_PLAYERS_PER_LOBBY>")]
    pub roster: Vec<RosterEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyInfo {
    pub id: LobbyId,
    pub mode: String,
    pub players: u8,
    pub max_players: u8,
    pub state: LobbyState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LobbyState {
    /// A match is running and new players may join.
    Playing,
    /// The match ended; the restart vote is open; no new players.
    Voting,
    /// Shutting down; no new players.
    Closing,
}

impl LobbyState {
    pub fn as_str(self) -> &'static str {
        match self {
            LobbyState::Playing => "playing",
            LobbyState::Voting => "voting",
            LobbyState::Closing => "closing",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosmetics {
    /// Badge id from the cosmetics catalog ("supporter"), if equipped.
    pub badge: Option<String>,
    /// Name color id or `#rrggbb`, if equipped.
    pub name_color: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub id: PlayerId,
    pub account: AccountId,
    pub name: String,
    pub cosmetics: Cosmetics,
    pub kills: u16,
    pub deaths: u16,
    /// False while the player is disconnected and their slot is held.
    pub connected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreLine {
    pub id: PlayerId,
    pub account: AccountId,
    pub name: String,
    pub kills: u16,
    pub deaths: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchEnded {
    pub match_id: uuid::Uuid,
    pub winner: PlayerId,
    /// Sorted by kills (descending), then deaths (ascending).
    #[serde(deserialize_with = "crate::codec::bounded_vec::<_, _, MAX_PLAYERS_PER_LOBBY>")]
    pub scoreboard: Vec<ScoreLine>,
    /// How long the restart vote stays open.
    pub vote_seconds: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteState {
    pub yes: u8,
    pub no: u8,
    /// Players present (connected) who may vote.
    pub present: u8,
    /// Yes votes that restart the match (a strict majority of `present`).
    pub needed: u8,
    pub remaining_ms: u32,
}

/// Stable error codes. The numeric value (the variant's position) and the
/// string from [`ErrorCode::as_str`] never change; new codes are appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The client's protocol version differs from the node's.
    VersionMismatch,
    /// A frame could not be decoded or arrived out of order.
    ProtocolViolation,
    /// The ticket's signature, algorithm or claims are invalid.
    BadTicket,
    TicketExpired,
    /// The ticket's single-use id was seen before.
    TicketReused,
    /// The ticket was issued for another node.
    WrongNode,
    /// No lobby has room and the node may not create another.
    NodeAtCapacity,
    UnknownMode,
    LobbyNotFound,
    LobbyFull,
    /// The request needs a joined lobby.
    NotInLobby,
    AlreadyJoined,
    ChatDisabled,
    ChatRateLimited,
    ChatInvalid,
    /// No restart vote is open.
    NoVoteOpen,
    /// The handshake did not finish in time.
    Timeout,
    /// The node is shutting down or draining.
    ShuttingDown,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::VersionMismatch,
        ErrorCode::ProtocolViolation,
        ErrorCode::BadTicket,
        ErrorCode::TicketExpired,
        ErrorCode::TicketReused,
        ErrorCode::WrongNode,
        ErrorCode::NodeAtCapacity,
        ErrorCode::UnknownMode,
        ErrorCode::LobbyNotFound,
        ErrorCode::LobbyFull,
        ErrorCode::NotInLobby,
        ErrorCode::AlreadyJoined,
        ErrorCode::ChatDisabled,
        ErrorCode::ChatRateLimited,
        ErrorCode::ChatInvalid,
        ErrorCode::NoVoteOpen,
        ErrorCode::Timeout,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::VersionMismatch => "VERSION_MISMATCH",
            ErrorCode::ProtocolViolation => "PROTOCOL_VIOLATION",
            ErrorCode::BadTicket => "BAD_TICKET",
            ErrorCode::TicketExpired => "TICKET_EXPIRED",
            ErrorCode::TicketReused => "TICKET_REUSED",
            ErrorCode::WrongNode => "WRONG_NODE",
            ErrorCode::NodeAtCapacity => "NODE_AT_CAPACITY",
            ErrorCode::UnknownMode => "UNKNOWN_MODE",
            ErrorCode::LobbyNotFound => "LOBBY_NOT_FOUND",
            ErrorCode::LobbyFull => "LOBBY_FULL",
            ErrorCode::NotInLobby => "NOT_IN_LOBBY",
            ErrorCode::AlreadyJoined => "ALREADY_JOINED",
            ErrorCode::ChatDisabled => "CHAT_DISABLED",
            ErrorCode::ChatRateLimited => "CHAT_RATE_LIMITED",
            ErrorCode::ChatInvalid => "CHAT_INVALID",
            ErrorCode::NoVoteOpen => "NO_VOTE_OPEN",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Bounded for ClientControl {
    fn validate(&self) -> Result<(), &'static str> {
        match self {
            ClientControl::Hello { client, .. } => check_text(client, MAX_NAME_BYTES, "client name"),
            ClientControl::Join { ticket } => check_text(ticket, MAX_TICKET_BYTES, "ticket"),
            // Chat content rules (length, characters) are enforced by the
            // lobby with a clear error; here only the hard byte bound.
            ClientControl::Chat { text } => {
                if text.len() > 4 * MAX_CHAT_BYTES {
                    Err("chat text")
                } else {
                    Ok(())
                }
            }
            ClientControl::Vote { .. } | ClientControl::Leave => Ok(()),
        }
    }
}

fn check_roster(players: &[RosterEntry]) -> Result<(), &'static str> {
    if players.len() > MAX_PLAYERS_PER_LOBBY {
        return Err("roster size");
    }
    for p in players {
        check_text(&p.name, MAX_NAME_BYTES, "name")?;
        p.cosmetics.validate()?;
    }
    Ok(())
}

impl Bounded for Cosmetics {
    fn validate(&self) -> Result<(), &'static str> {
        if let Some(b) = &self.badge {
            check_text(b, MAX_ID_BYTES, "badge")?;
        }
        if let Some(c) = &self.name_color {
            check_text(c, MAX_ID_BYTES, "name color")?;
        }
        Ok(())
    }
}

impl Bounded for ServerControl {
    fn validate(&self) -> Result<(), &'static str> {
        match self {
            ServerControl::Welcome { node_id, .. } => check_text(node_id, MAX_ID_BYTES * 2, "node id"),
            ServerControl::Error { message, .. }
            | ServerControl::LobbyClosed { reason: message }
            | ServerControl::Kicked { reason: message } => check_text(message, MAX_MESSAGE_BYTES, "message"),
            ServerControl::LobbyJoined(j) => {
                check_text(&j.lobby.mode, MAX_ID_BYTES, "mode")?;
                check_text(&j.map, MAX_ID_BYTES, "map")?;
                check_roster(&j.roster)
            }
            ServerControl::Roster { players } => check_roster(players),
            ServerControl::MatchEnded(m) => {
                if m.scoreboard.len() > MAX_PLAYERS_PER_LOBBY {
                    return Err("scoreboard size");
                }
                m.scoreboard.iter().try_for_each(|l| check_text(&l.name, MAX_NAME_BYTES, "name"))
            }
            ServerControl::Chat { name, text, .. } => {
                check_text(name, MAX_NAME_BYTES, "name")?;
                check_text(text, MAX_CHAT_BYTES, "chat text")
            }
            ServerControl::Kill { .. } | ServerControl::MatchStarted { .. } | ServerControl::VoteState(_) => Ok(()),
        }
    }
}
