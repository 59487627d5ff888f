//! Records a game node reports upward (to the API, through the directory).

use serde::{Deserialize, Serialize};

use crate::{AccountId, LobbyId};

/// The outcome of one finished match. `match_id` is the idempotency key:
/// the API persists a result once however often it is reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchResult {
    pub match_id: uuid::Uuid,
    pub lobby_id: LobbyId,
    pub node_id: String,
    pub mode: String,
    pub map: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub ended_at_ms: u64,
    pub winner: Option<AccountId>,
    pub kill_target: u16,
    pub players: Vec<PlayerResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerResult {
    pub account: AccountId,
    pub name: String,
    pub kills: u16,
    pub deaths: u16,
}
