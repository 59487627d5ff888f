//! Durable storage: accounts, refresh sessions, matches and stats, bans, audit log,
//! donations and the Stripe event log, cosmetics, entitlements and loadouts.
//!
//! One [`Store`] serves both backends: Postgres in production and an SQLite file as
//! the embedded default, chosen by the URL at runtime. Every query is written once:
//! [`with_pool!`] expands a block once per backend, so the same SQL text and the
//! same binds compile against `PgPool` and `SqlitePool`. That works because the SQL
//! sticks to what both dialects accept (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`), and because every value is bound from Rust (timestamps included,
//! never `now()`), so the two backends cannot disagree about time.
//!
//! Migrations live in `migrations/{postgres,sqlite}` and are embedded at build time.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Runs `$body` with `$pool` bound to the concrete pool of `$store`. The body is
/// compiled once per backend, so it must evaluate to the same type in both arms
/// (map driver-specific results such as `PgQueryResult` to plain values inside).
/// Callers import `Pool` (`use super::Pool`), which keeps the macro free of paths.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Postgres($pool) => $body,
            Pool::Sqlite($pool) => $body,
        }
    };
}

mod accounts;
mod admin;
mod cosmetics;
mod donations;
mod error;
mod matches;
mod models;
mod sessions;
pub mod testing;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use models::*;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a query waits for a pooled connection (or for a new one to open)
/// before the store reports [`StoreError::Unavailable`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long SQLite waits on another connection's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A snapshot of the connection pool, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The store. Cloning is cheap: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Store {
    /// Connects to `postgres://...` (or `postgresql://...`), `sqlite://path` (the file
    /// is created if missing) or `sqlite::memory:`. Opens one connection eagerly, so a
    /// database that is down fails here, within [`DEFAULT_ACQUIRE_TIMEOUT`].
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Self::connect_with_timeout(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// [`Store::connect`] with an explicit acquire timeout: the longest any query
    /// waits for a connection, and the longest `connect` keeps retrying a refused one.
    pub async fn connect_with_timeout(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let max_connections = max_connections.max(1);
        let pool = match backend_of(url)? {
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(acquire_timeout)
                    .connect_with(options)
                    .await?;
                Pool::Postgres(pool)
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?.foreign_keys(true).busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = if is_sqlite_memory(url) {
                    // An in-memory database lives only while a connection to it is open,
                    // and shared-cache connections lock whole tables: keep exactly one
                    // connection, forever.
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .acquire_timeout(acquire_timeout)
                        .connect_with(options)
                        .await?
                } else {
                    // WAL lets readers run beside the single writer. FULL sync keeps a
                    // committed transaction (a donation, a match) across power loss.
                    let options = options
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full);
                    SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire_timeout)
                        .connect_with(options)
                        .await?
                };
                Pool::Sqlite(pool)
            }
        };
        Ok(Store { pool })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the embedded migrations for this backend; already-applied ones are
    /// skipped (and checked against their recorded checksums).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// One round trip to the database, for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle, max) =
            with_pool!(self, |pool| (pool.size(), pool.num_idle(), pool.options().get_max_connections()));
        PoolStats { size, idle: u32::try_from(idle).unwrap_or(u32::MAX), max }
    }

    /// Closes the pool, waiting for checked-out connections to come back. Later
    /// queries fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        // Never echo the URL: it may carry a password.
        Err(StoreError::Database("unsupported database URL: expected postgres://, postgresql:// or sqlite:".into()))
    }
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Every timestamp goes through here before it is bound. Postgres keeps
/// microseconds; truncating for SQLite too makes both backends store, compare and
/// return identical values. (SQLite compares timestamps as RFC 3339 text, which
/// orders correctly because the store only ever writes UTC.)
fn db_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn db_time_opt(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.map(db_time)
}

/// SQL `LIMIT`/`OFFSET` values: both backends take them as 64-bit integers.
fn sql_count(n: u32) -> i64 {
    i64::from(n)
}
