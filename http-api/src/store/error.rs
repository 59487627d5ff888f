//! Store errors, classified by what the caller should answer: a conflict (409), a
//! missing row (404), a cosmetic the account does not own (403), a database that is
//! down or overloaded (503), or a bug (500).

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; names which one (e.g. `"username"`).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The row to change does not exist (or a row it must reference does not).
    #[error("not found")]
    NotFound,
    /// A loadout names a cosmetic the account may not equip: unknown, of the wrong
    /// kind for its slot, or a supporter item the account is not entitled to.
    #[error("cosmetic {0:?} is not owned")]
    NotOwned(String),
    /// The database could not be reached or is overloaded: pool timeout, refused or
    /// dropped connection, closed pool, SQLite locked past its busy timeout.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migrate(String),
}

impl StoreError {
    /// True when retrying later may succeed; the API answers 503 for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Unique constraints by name: Postgres reports the constraint name, SQLite only
/// `table.column` in its message. Both spellings map to one label for callers.
const UNIQUE_KEYS: &[(&str, &str, &str)] = &[
    ("accounts_username_key", "accounts.username", "username"),
    ("refresh_sessions_token_hash_key", "refresh_sessions.token_hash", "token_hash"),
    ("accounts_pkey", "accounts.id", "id"),
    ("refresh_sessions_pkey", "refresh_sessions.id", "id"),
    ("matches_pkey", "matches.id", "id"),
    ("bans_pkey", "bans.id", "id"),
    ("audit_log_pkey", "audit_log.id", "id"),
    ("player_stats_pkey", "player_stats.account_id", "account_id"),
    ("match_players_pkey", "match_players.match_id, match_players.account_id", "match_player"),
    ("donations_pkey", "donations.id", "id"),
    ("donations_checkout_session_id_key", "donations.checkout_session_id", "checkout_session_id"),
    ("donations_payment_intent_id_key", "donations.payment_intent_id", "payment_intent_id"),
];

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_outage(&err) {
            return StoreError::Unavailable(err.to_string());
        }
        match err {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict(unique_key(db.as_ref())),
                // Every foreign key points at a parent row (an account, a match) that must exist.
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ => StoreError::Database(db.message().to_owned()),
            },
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Migrate(err) => StoreError::from(*err),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<MigrateError> for StoreError {
    fn from(err: MigrateError) -> Self {
        match err {
            // The database went away mid-migration: an outage, not a bad migration.
            MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) if is_outage(&inner) => {
                StoreError::Unavailable(inner.to_string())
            }
            other => StoreError::Migrate(other.to_string()),
        }
    }
}

fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => database_unavailable(db.as_ref()),
        _ => false,
    }
}

fn unique_key(db: &dyn DatabaseError) -> &'static str {
    let sqlite_columns = db.message().split_once("failed: ").map(|(_, columns)| columns);
    UNIQUE_KEYS
        .iter()
        .find(|(pg_name, sqlite_name, _)| db.constraint() == Some(*pg_name) || sqlite_columns == Some(*sqlite_name))
        .map_or("unique", |(_, _, label)| label)
}

/// Errors the server raises when it cannot serve anyone right now, as opposed to
/// errors about this particular statement.
fn database_unavailable(db: &dyn DatabaseError) -> bool {
    let code = db.code().unwrap_or_default();
    if db.try_downcast_ref::<PgDatabaseError>().is_some() {
        // 08: connection exception; 53300: too many connections;
        // 57P01..57P03: admin shutdown, crash shutdown, cannot connect now.
        code.starts_with("08") || matches!(&*code, "53300" | "57P01" | "57P02" | "57P03")
    } else if db.try_downcast_ref::<SqliteError>().is_some() {
        // Extended result codes keep the primary code in the low byte.
        let primary = code.parse::<i32>().ok().map(|c| c & 0xff);
        // BUSY, LOCKED (past the busy timeout), IOERR, FULL, CANTOPEN.
        matches!(primary, Some(5 | 6 | 10 | 13 | 14))
    } else {
        false
    }
}
