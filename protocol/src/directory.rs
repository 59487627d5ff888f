//! Messages between game nodes and the API, carried by the directory
//! (in-process in `serve`, Redis in production). JSON-encoded there, so
//! field names are part of the contract.

use serde::{Deserialize, Serialize};

use crate::control::LobbyInfo;
use crate::{AccountId, LobbyId};

/// A node's heartbeat: where clients reach it and how loaded it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: String,
    /// Host or IP clients connect to (UDP), as players see it.
    pub public_host: String,
    pub public_port: u16,
    /// SHA-256 of the node's leaf certificate (hex), for browsers that pin
    /// a self-signed certificate (WebTransport `serverCertificateHashes`).
    pub cert_sha256: String,
    pub modes: Vec<String>,
    pub max_lobbies: u32,
    pub players_per_lobby: u8,
    pub lobbies: u32,
    pub players: u32,
    pub connections: u32,
    pub draining: bool,
    /// Its shards are busy past the node's `--max-shard-load` on average:
    /// new players should go elsewhere (absent from older nodes: false).
    #[serde(default)]
    pub overloaded: bool,
    /// Milliseconds since the Unix epoch when the heartbeat was sent.
    pub sent_at_ms: u64,
}

impl NodeStatus {
    /// Whether a new lobby of `mode` may be created here.
    pub fn can_create(&self, mode: &str) -> bool {
        self.takes_players() && self.lobbies < self.max_lobbies && self.modes.iter().any(|m| m == mode)
    }

    /// Whether new players may be sent here at all (not draining, not
    /// overloaded).
    pub fn takes_players(&self) -> bool {
        !self.draining && !self.overloaded
    }
}

/// A lobby as the API's lobby browser shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbySummary {
    pub node_id: String,
    pub id: LobbyId,
    pub mode: String,
    pub players: u8,
    pub max_players: u8,
    /// "playing", "voting" or "closing".
    pub state: String,
}

impl LobbySummary {
    pub fn from_info(node_id: &str, info: &LobbyInfo) -> LobbySummary {
        LobbySummary {
            node_id: node_id.to_owned(),
            id: info.id,
            mode: info.mode.clone(),
            players: info.players,
            max_players: info.max_players,
            state: info.state.as_str().to_owned(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == "playing" && self.players < self.max_players
    }
}

/// Commands the API sends to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeCommand {
    /// Remove the account's player from its lobby.
    Kick { account: AccountId, reason: String },
    /// Stop taking players and close every lobby.
    Drain { reason: String },
}
