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

/// Gives a fieldless enum `as_str`, `Display`, `FromStr` and sqlx's encoding as
/// text, so it is stored as the same readable text on both backends (and a value
/// the code does not know is a decode error, not a silent default).
macro_rules! text_enum {
    ($name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(concat!("unknown ", $what, " {:?}"), other)),
                }
            }
        }

        // Travels as text on every backend: delegate to `str`'s impls.
        impl<DB: Database> Type<DB> for $name
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

        impl<'q, DB: Database> Encode<'q, DB> for $name
        where
            &'q str: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
                <&'q str as Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $name
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&'r str as Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    };
}

/// What an account may do. Stored as the text `"player"` / `"admin"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Player,
    Admin,
}

text_enum!(Role, "role", { Player => "player", Admin => "admin" });

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

// ---- cosmetics ----

/// Which loadout slot a cosmetic fills. Stored as `"badge"` / `"name_color"`; a new
/// kind is a new variant, a new loadout column and new catalog rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CosmeticKind {
    Badge,
    NameColor,
}

text_enum!(CosmeticKind, "cosmetic kind", { Badge => "badge", NameColor => "name_color" });

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Cosmetic {
    /// Stable lower-case id, e.g. `"gold"`; what loadouts and join tickets carry.
    pub id: String,
    pub kind: CosmeticKind,
    /// Shown in menus, e.g. `"Gold"`.
    pub name: String,
    /// What the game draws: a badge's label (`"★"`) or a color as `"#rrggbb"`.
    pub value: String,
    /// Granted by donating; `false` means free for everyone.
    pub supporter: bool,
    /// Position within its kind.
    pub sort: i32,
}

/// A cosmetic an account may equip, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct OwnedCosmetic {
    #[sqlx(flatten)]
    pub cosmetic: Cosmetic,
    /// [`OwnedCosmetic::FREE`] or the entitlement's source ([`OwnedCosmetic::DONATION`]).
    pub source: String,
    /// When the entitlement was granted; `None` for free items.
    pub granted_at: Option<DateTime<Utc>>,
}

impl OwnedCosmetic {
    pub const FREE: &'static str = "free";
    pub const DONATION: &'static str = "donation";
}

/// What an account has equipped: cosmetic ids per slot. `Default` is nothing equipped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, sqlx::FromRow)]
pub struct Loadout {
    pub badge: Option<String>,
    pub name_color: Option<String>,
}

// ---- donations ----

/// Where a donation stands. Stored as lower-case text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DonationStatus {
    /// A checkout was created; no payment yet.
    Pending,
    Completed,
    /// Money returned. Wins over `Disputed` if both happen.
    Refunded,
    /// A chargeback was opened.
    Disputed,
}

text_enum!(DonationStatus, "donation status", {
    Pending => "pending",
    Completed => "completed",
    Refunded => "refunded",
    Disputed => "disputed",
});

/// A checkout we created, before the payment. The currency is stored lower-case
/// (Stripe's spelling), so `"USD"` and `"usd"` are one currency in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDonation {
    pub id: Uuid,
    pub account_id: Uuid,
    pub checkout_session_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
}

/// One row of the revenue ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Donation {
    pub id: Uuid,
    pub account_id: Uuid,
    pub checkout_session_id: String,
    /// Known once the payment completed; refunds and disputes find the donation by it.
    pub payment_intent_id: Option<String>,
    pub amount_cents: i64,
    pub currency: String,
    pub status: DonationStatus,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub refunded_at: Option<DateTime<Utc>>,
    pub disputed_at: Option<DateTime<Utc>>,
}

/// What a verified Stripe event means for us (parsed by the payments module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentEffect {
    /// The checkout was paid: complete the donation and grant the supporter items.
    Completed {
        checkout_session_id: String,
        payment_intent_id: Option<String>,
        account_id: Uuid,
        amount_cents: i64,
        currency: String,
        at: DateTime<Utc>,
    },
    Refunded {
        payment_intent_id: String,
        at: DateTime<Utc>,
    },
    Disputed {
        payment_intent_id: String,
        at: DateTime<Utc>,
    },
    /// An event type we do not act on; it is still recorded, so it is seen once.
    Ignored,
}

/// A verified webhook delivery. `event_id` is Stripe's `evt_...` id, the key that
/// makes delivery exactly-once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    pub event_id: String,
    pub event_type: String,
    pub effect: PaymentEffect,
    pub received_at: DateTime<Utc>,
}

/// What a refund or dispute does to the cosmetics its donation granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokePolicy {
    /// Remove the supporter items, unless another completed donation still pays for them.
    #[default]
    Revoke,
    /// Record the refund or dispute and leave the items.
    Keep,
}

text_enum!(RevokePolicy, "revoke policy", { Revoke => "revoke", Keep => "keep" });

/// What [`Store::apply_payment_event`](super::Store::apply_payment_event) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum EventOutcome {
    /// This event id was applied before; nothing changed.
    Duplicate,
    /// The donation is completed and the account holds the supporter items.
    Granted { donation_id: Uuid, account_id: Uuid },
    /// The refund or dispute was recorded and the account's supporter items removed
    /// (and un-equipped).
    Revoked { donation_id: Uuid, account_id: Uuid, entitlements_removed: u64 },
    /// The refund or dispute was recorded, nothing revoked: policy `Keep`, or the
    /// account has another completed donation.
    Marked { donation_id: Uuid },
    /// A refund or dispute for a payment we never saw: recorded, nothing else.
    UnknownDonation,
    /// Recorded with no effect: an ignored event type, or a completion for a
    /// donation already refunded or disputed (which must not grant again).
    Recorded,
}

impl EventOutcome {
    /// The text stored in `stripe_events.outcome`; also a stable label for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Granted { .. } => "granted",
            EventOutcome::Revoked { .. } => "revoked",
            EventOutcome::Marked { .. } => "marked",
            EventOutcome::UnknownDonation => "unknown_donation",
            EventOutcome::Recorded => "recorded",
        }
    }
}

/// The revenue ledger over `[from, to)`: donations by `completed_at`, refunds by
/// `refunded_at`, amounts in the smallest currency unit, one line per currency
/// (amounts in different currencies are never added together).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenueSummary {
    /// Ordered by currency.
    pub currency_totals: Vec<CurrencyTotal>,
    /// UTC days (`"2026-11-27"`), ordered by day, then currency.
    pub by_day: Vec<RevenueBucket>,
    /// UTC months (`"2026-11"`), ordered by month, then currency.
    pub by_month: Vec<RevenueBucket>,
    /// Distinct accounts with a donation completed in range, whether it was later
    /// refunded or disputed or not: the people who paid in the period.
    pub donors: i64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotal {
    pub currency: String,
    /// Donations completed in range.
    pub gross_cents: i64,
    /// Refunds made in range (of donations completed in range or earlier).
    pub refunded_cents: i64,
    pub net_cents: i64,
    pub donations: i64,
    pub refunds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenueBucket {
    pub period: String,
    pub currency: String,
    pub donations: i64,
    pub gross_cents: i64,
    pub refunded_cents: i64,
}
