//! The rows the store reads and writes. Field names match column names, so
//! `sqlx::FromRow` maps them on both backends.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};
use uuid::Uuid;

/// What an account may do. Stored as the text `"player"` / `"admin"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Player,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "player" => Ok(Role::Player),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

// Role travels as text on every backend: delegate to `str`'s impls.
impl<DB: Database> Type<DB> for Role
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for Role
where
    &'q str: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <&'q str as Encode<'q, DB>>::encode(self.as_str(), buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Role
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(<&'r str as Decode<'r, DB>>::decode(value)?.parse()?)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub id: Uuid,
    /// Lower-cased by the store before it is written or looked up.
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    /// Never serialized, so an `Account` can't leak its hash into a response or log.
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A refresh token as issued. The token itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    pub id: Uuid,
    pub account_id: Uuid,
    /// Shared by every token descended from one login, so a reused token revokes them all.
    pub family_id: Uuid,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Session {
    pub id: Uuid,
    pub account_id: Uuid,
    pub family_id: Uuid,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Set when this token was exchanged for its successor.
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Session {
    /// Whether this token may still be exchanged at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.rotated_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PlayerStats {
    pub account_id: Uuid,
    /// The name the player had in their latest match.
    pub display_name: String,
    pub matches: i64,
    pub wins: i64,
    pub kills: i64,
    pub deaths: i64,
}

/// One match from one player's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PlayerMatch {
    pub match_id: Uuid,
    pub mode: String,
    pub map: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub kills: i64,
    pub deaths: i64,
    pub won: bool,
    /// How many players the match had.
    pub players: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderboardRow {
    /// 1-based position in the whole leaderboard, not in the page.
    pub rank: u64,
    pub account_id: Uuid,
    pub display_name: String,
    pub matches: i64,
    pub wins: i64,
    pub kills: i64,
    pub deaths: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct MatchRecord {
    pub id: Uuid,
    pub lobby_id: i64,
    pub node_id: String,
    pub mode: String,
    pub map: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub winner: Option<Uuid>,
    pub kill_target: i32,
    /// Best first: kills descending, then deaths ascending.
    #[sqlx(skip)]
    pub players: Vec<PlayerResultRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PlayerResultRow {
    pub account_id: Uuid,
    pub display_name: String,
    pub kills: i64,
    pub deaths: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBan {
    pub id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    /// The admin who issued it; `None` for the system (or once that admin is deleted).
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// `None`: permanent until lifted.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Ban {
    pub id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub lifted_at: Option<DateTime<Utc>>,
}

impl Ban {
    /// Whether this ban keeps its account out at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.lifted_at.is_none() && self.expires_at.is_none_or(|expires| expires > now)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAudit {
    pub id: Uuid,
    /// Who did it; `None` for the system.
    pub actor: Option<Uuid>,
    /// A stable dotted name, e.g. `"ban.create"`.
    pub action: String,
    /// What it was done to, e.g. an account id.
    pub target: Option<String>,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: Uuid,
    pub actor: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}
