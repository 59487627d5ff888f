//! Refresh sessions: one row per refresh token, grouped into families (one family
//! per login). A token is exchanged exactly once; its row is then marked rotated but
//! kept until it expires, so a second exchange is detected as reuse.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{NewSession, Pool, Session, Store, StoreError, db_time};

macro_rules! session_columns {
    () => {
        "id, account_id, family_id, token_hash, created_at, expires_at, user_agent, ip, rotated_at, revoked_at"
    };
}

const INSERT: &str = "INSERT INTO refresh_sessions \
    (id, account_id, family_id, token_hash, created_at, expires_at, user_agent, ip) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Binds a `NewSession` to [`INSERT`]; a macro because the query type differs per backend.
macro_rules! bind_new_session {
    ($query:expr, $s:expr) => {
        $query
            .bind($s.id)
            .bind($s.account_id)
            .bind($s.family_id)
            .bind(&$s.token_hash)
            .bind(db_time($s.created_at))
            .bind(db_time($s.expires_at))
            .bind(&$s.user_agent)
            .bind(&$s.ip)
    };
}

impl Store {
    /// Fails with `Conflict("token_hash")` on a duplicate hash and `NotFound` if the
    /// account does not exist.
    pub async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        with_pool!(self, |pool| bind_new_session!(sqlx::query(INSERT), s).execute(pool).await.map(drop))?;
        Ok(())
    }

    pub async fn session_by_hash(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        const SQL: &str = concat!("SELECT ", session_columns!(), " FROM refresh_sessions WHERE token_hash = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Session>(SQL).bind(token_hash).fetch_optional(pool).await)?)
    }

    /// Atomically (one transaction) marks `old_id` rotated at `now` if it is still
    /// active (not rotated, not revoked, not expired) and inserts `new`. Returns false
    /// and changes nothing if `old_id` was not active — the caller treats that as
    /// reuse and revokes the family. `new` must carry the old session's account and
    /// family; if it does not, nothing changes either and the result is false.
    ///
    /// Two racing rotations of one token cannot both win: the conditional UPDATE is
    /// the first statement, so it takes the row lock (Postgres) or the write lock
    /// (SQLite) before it reads, and the loser sees the row already rotated.
    pub async fn rotate_session(&self, old_id: Uuid, new: &NewSession, now: DateTime<Utc>) -> Result<bool, StoreError> {
        const ROTATE: &str = "UPDATE refresh_sessions SET rotated_at = $2 \
            WHERE id = $1 AND account_id = $3 AND family_id = $4 \
            AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $2";
        let rotated = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(ROTATE)
                .bind(old_id)
                .bind(db_time(now))
                .bind(new.account_id)
                .bind(new.family_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 1 {
                bind_new_session!(sqlx::query(INSERT), new).execute(&mut *tx).await?;
                tx.commit().await?;
                true
            } else {
                tx.rollback().await?;
                false
            }
        });
        Ok(rotated)
    }

    /// Revokes every not-yet-revoked session of the family; returns how many.
    pub async fn revoke_family(&self, family_id: Uuid, now: DateTime<Utc>) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE refresh_sessions SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";
        Ok(with_pool!(self, |pool| {
            sqlx::query(SQL).bind(family_id).bind(db_time(now)).execute(pool).await.map(|r| r.rows_affected())
        })?)
    }

    /// Revokes the whole family of `session_id` (logging out one device). Returns
    /// false if no such session belongs to `account_id`; true otherwise, also when
    /// the family was already revoked, so logging out twice is not an error.
    pub async fn revoke_session(
        &self,
        account_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // COALESCE keeps the first revocation time of rows already revoked, while the
        // row count still tells whether the session exists for this account.
        const SQL: &str = "UPDATE refresh_sessions SET revoked_at = COALESCE(revoked_at, $3) \
            WHERE family_id IN (SELECT family_id FROM refresh_sessions WHERE id = $2 AND account_id = $1)";
        let updated = with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(account_id)
                .bind(session_id)
                .bind(db_time(now))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(updated > 0)
    }

    /// Revokes every session of the account (password change, "log out everywhere").
    pub async fn revoke_all_sessions(&self, account_id: Uuid, now: DateTime<Utc>) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE refresh_sessions SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL";
        Ok(with_pool!(self, |pool| {
            sqlx::query(SQL).bind(account_id).bind(db_time(now)).execute(pool).await.map(|r| r.rows_affected())
        })?)
    }

    /// Sessions that can still be refreshed (one per live login), newest first.
    pub async fn active_sessions(&self, account_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            session_columns!(),
            " FROM refresh_sessions WHERE account_id = $1 ",
            "AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $2 ",
            "ORDER BY created_at DESC, id DESC"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, Session>(SQL).bind(account_id).bind(db_time(now)).fetch_all(pool).await
        })?)
    }

    /// Deletes sessions that expired before `before`, rotated and revoked ones
    /// included: once expired, a token is refused on its expiry alone, so its row is
    /// no longer needed for reuse detection. Returns how many rows went.
    pub async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM refresh_sessions WHERE expires_at < $1";
        Ok(with_pool!(self, |pool| {
            sqlx::query(SQL).bind(db_time(before)).execute(pool).await.map(|r| r.rows_affected())
        })?)
    }
}
