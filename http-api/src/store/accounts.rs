//! Accounts. Usernames are unique case-insensitively: the store lower-cases them on
//! the way in and on every lookup, so the unique index does the rest.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Account, NewAccount, Pool, Role, Store, StoreError, db_time};

macro_rules! account_columns {
    () => {
        "id, username, display_name, password_hash, role, created_at, last_login_at"
    };
}

/// Ids per `IN (...)` list: far below both backends' bind-parameter limits
/// (32766 for SQLite, 65535 for Postgres).
const IDS_PER_QUERY: usize = 500;

impl Store {
    /// Fails with `Conflict("username")` if the (lower-cased) name is taken.
    pub async fn create_account(&self, a: &NewAccount) -> Result<Account, StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO accounts (id, username, display_name, password_hash, role, created_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
            account_columns!()
        );
        let username = a.username.to_lowercase();
        let account = with_pool!(self, |pool| {
            sqlx::query_as::<_, Account>(SQL)
                .bind(a.id)
                .bind(&username)
                .bind(&a.display_name)
                .bind(&a.password_hash)
                .bind(a.role)
                .bind(db_time(a.created_at))
                .fetch_one(pool)
                .await
        })?;
        Ok(account)
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        const SQL: &str = concat!("SELECT ", account_columns!(), " FROM accounts WHERE username = $1");
        let username = username.to_lowercase();
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Account>(SQL).bind(&username).fetch_optional(pool).await)?)
    }

    pub async fn account_by_id(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        const SQL: &str = concat!("SELECT ", account_columns!(), " FROM accounts WHERE id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Account>(SQL).bind(id).fetch_optional(pool).await)?)
    }

    /// The accounts among `ids` that exist, in the order of `ids`, each once.
    /// One query per 500 ids, whatever the list's length.
    pub async fn accounts_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Account>, StoreError> {
        let mut unique = Vec::with_capacity(ids.len());
        let mut seen = HashSet::with_capacity(ids.len());
        unique.extend(ids.iter().copied().filter(|id| seen.insert(*id)));

        let mut found: HashMap<Uuid, Account> = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(IDS_PER_QUERY) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                concat!("SELECT ", account_columns!(), " FROM accounts WHERE id IN ({})"),
                placeholders.join(", ")
            );
            let rows = with_pool!(self, |pool| {
                // Not cached as a prepared statement: the text varies with the list's length.
                let mut query = sqlx::query_as::<_, Account>(&sql).persistent(false);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await
            })?;
            found.extend(rows.into_iter().map(|account| (account.id, account)));
        }
        Ok(unique.iter().filter_map(|id| found.remove(id)).collect())
    }

    pub async fn set_password(&self, id: Uuid, password_hash: &str) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE accounts SET password_hash = $2 WHERE id = $1";
        let updated = with_pool!(self, |pool| {
            sqlx::query(SQL).bind(id).bind(password_hash).execute(pool).await.map(|r| r.rows_affected())
        })?;
        found_one(updated)
    }

    pub async fn record_login(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE accounts SET last_login_at = $2 WHERE id = $1";
        let updated = with_pool!(self, |pool| {
            sqlx::query(SQL).bind(id).bind(db_time(at)).execute(pool).await.map(|r| r.rows_affected())
        })?;
        found_one(updated)
    }

    pub async fn set_role(&self, id: Uuid, role: Role) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE accounts SET role = $2 WHERE id = $1";
        let updated = with_pool!(self, |pool| {
            sqlx::query(SQL).bind(id).bind(role).execute(pool).await.map(|r| r.rows_affected())
        })?;
        found_one(updated)
    }
}

fn found_one(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}
