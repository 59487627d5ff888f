//! Bans and the audit log: the tables and queries the admin console builds on.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AuditEntry, Ban, NewAudit, NewBan, Pool, Store, StoreError, db_time, db_time_opt, sql_count};

macro_rules! ban_columns {
    () => {
        "id, account_id, reason, created_by, created_at, expires_at, lifted_at"
    };
}

macro_rules! audit_columns {
    () => {
        "id, actor, action, target, detail, at"
    };
}

impl Store {
    /// Fails with `NotFound` if the banned account (or `created_by`) does not exist.
    pub async fn create_ban(&self, b: &NewBan) -> Result<Ban, StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO bans (id, account_id, reason, created_by, created_at, expires_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
            ban_columns!()
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, Ban>(SQL)
                .bind(b.id)
                .bind(b.account_id)
                .bind(&b.reason)
                .bind(b.created_by)
                .bind(db_time(b.created_at))
                .bind(db_time_opt(b.expires_at))
                .fetch_one(pool)
                .await
        })?)
    }

    /// The ban keeping the account out at `now` (not lifted, not expired), the most
    /// recent if several overlap.
    pub async fn active_ban(&self, account_id: Uuid, now: DateTime<Utc>) -> Result<Option<Ban>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            ban_columns!(),
            " FROM bans WHERE account_id = $1 AND lifted_at IS NULL ",
            "AND (expires_at IS NULL OR expires_at > $2) ",
            "ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, Ban>(SQL).bind(account_id).bind(db_time(now)).fetch_optional(pool).await
        })?)
    }

    /// Returns false if the ban does not exist or was already lifted.
    pub async fn lift_ban(&self, ban_id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE bans SET lifted_at = $2 WHERE id = $1 AND lifted_at IS NULL";
        let updated = with_pool!(self, |pool| {
            sqlx::query(SQL).bind(ban_id).bind(db_time(at)).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(updated == 1)
    }

    pub async fn append_audit(&self, e: &NewAudit) -> Result<(), StoreError> {
        const SQL: &str =
            "INSERT INTO audit_log (id, actor, action, target, detail, at) VALUES ($1, $2, $3, $4, $5, $6)";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(e.id)
                .bind(e.actor)
                .bind(&e.action)
                .bind(&e.target)
                .bind(&e.detail)
                .bind(db_time(e.at))
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// Newest first. Pages by time: pass the last entry's `at` as `before`.
    pub async fn audit_log(&self, limit: u32, before: Option<DateTime<Utc>>) -> Result<Vec<AuditEntry>, StoreError> {
        const FIRST_PAGE: &str =
            concat!("SELECT ", audit_columns!(), " FROM audit_log ORDER BY at DESC, id DESC LIMIT $1");
        const NEXT_PAGE: &str =
            concat!("SELECT ", audit_columns!(), " FROM audit_log WHERE at < $2 ORDER BY at DESC, id DESC LIMIT $1");
        let sql = if before.is_some() { NEXT_PAGE } else { FIRST_PAGE };
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, AuditEntry>(sql).bind(sql_count(limit));
            if let Some(before) = db_time_opt(before) {
                query = query.bind(before);
            }
            query.fetch_all(pool).await
        })?)
    }
}
