//! The cosmetics catalog, what each account owns and what it has equipped.
//!
//! An account owns every free (non-`supporter`) cosmetic without any row saying
//! so, plus whatever its `entitlements` rows grant. Loadouts are checked against
//! that set when they are written, and cut back to it when entitlements are revoked
//! (see `donations.rs`), so a stored loadout is always wearable and a join ticket
//! can carry it as is.

use chrono::Utc;
use uuid::Uuid;

use super::{Cosmetic, CosmeticKind, Loadout, OwnedCosmetic, Pool, Store, StoreError, db_time};

/// The ids account `$1` owns: every free cosmetic, and its entitlements.
macro_rules! owned_ids {
    () => {
        "(SELECT id FROM cosmetics WHERE NOT supporter \
         UNION SELECT cosmetic_id FROM entitlements WHERE entitlements.account_id = $1)"
    };
}

/// Serializes the transactions that change what one account owns or wears, on
/// Postgres: a no-op update takes the account's row lock until commit. Without it,
/// under READ COMMITTED, a loadout check could pass just before a concurrent refund
/// revokes the item (leaving it equipped), or a refund could count the account's
/// other donations just before a concurrent one completes (revoking what that one
/// paid for). SQLite already runs one writer at a time. Affects no row (so the
/// caller can answer `NotFound`) when the account does not exist.
pub(super) const LOCK_ACCOUNT: &str = "UPDATE accounts SET role = role WHERE id = $1";

/// Clears account `$1`'s equipped items that it no longer owns, stamping `$2`.
/// Touches the row only when something changes.
pub(super) const UNEQUIP_UNOWNED: &str = concat!(
    "UPDATE loadouts SET ",
    "badge = CASE WHEN badge IN ",
    owned_ids!(),
    " THEN badge END, ",
    "name_color = CASE WHEN name_color IN ",
    owned_ids!(),
    " THEN name_color END, ",
    "updated_at = $2 ",
    "WHERE account_id = $1 AND (badge NOT IN ",
    owned_ids!(),
    " OR name_color NOT IN ",
    owned_ids!(),
    ")"
);

impl Store {
    /// The whole catalog, ordered by kind, then position.
    pub async fn cosmetics(&self) -> Result<Vec<Cosmetic>, StoreError> {
        const SQL: &str = "SELECT id, kind, name, value, supporter, sort FROM cosmetics ORDER BY kind, sort, id";
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Cosmetic>(SQL).fetch_all(pool).await)?)
    }

    /// What `account` may equip: every free cosmetic and every entitled one, in
    /// catalog order, in one query. An unknown account gets the free ones.
    pub async fn owned_cosmetics(&self, account: Uuid) -> Result<Vec<OwnedCosmetic>, StoreError> {
        // The LEFT JOIN finds at most one entitlement per cosmetic (primary key).
        const SQL: &str = "SELECT c.id, c.kind, c.name, c.value, c.supporter, c.sort, \
            CASE WHEN e.cosmetic_id IS NULL THEN 'free' ELSE e.source END AS source, e.granted_at \
            FROM cosmetics c LEFT JOIN entitlements e ON e.cosmetic_id = c.id AND e.account_id = $1 \
            WHERE NOT c.supporter OR e.cosmetic_id IS NOT NULL \
            ORDER BY c.kind, c.sort, c.id";
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, OwnedCosmetic>(SQL).bind(account).fetch_all(pool).await)?)
    }

    /// What `account` has equipped; nothing if it never chose (or does not exist).
    pub async fn loadout(&self, account: Uuid) -> Result<Loadout, StoreError> {
        const SQL: &str = "SELECT badge, name_color FROM loadouts WHERE account_id = $1";
        let loadout =
            with_pool!(self, |pool| sqlx::query_as::<_, Loadout>(SQL).bind(account).fetch_optional(pool).await)?;
        Ok(loadout.unwrap_or_default())
    }

    /// Replaces `account`'s loadout (`None` un-equips a slot). In one transaction,
    /// checks that each equipped id exists, fits its slot and is owned; otherwise
    /// changes nothing and fails with `NotOwned(id)` (the badge slot is checked
    /// first). Fails with `NotFound` if the account does not exist.
    pub async fn set_loadout(&self, account: Uuid, loadout: &Loadout) -> Result<(), StoreError> {
        // Of the (at most two) requested ids, those the account owns, with their kinds.
        const OWNED_AMONG: &str =
            concat!("SELECT id, kind FROM cosmetics WHERE id IN ($2, $3) AND id IN ", owned_ids!());
        const UPSERT: &str = "INSERT INTO loadouts (account_id, badge, name_color, updated_at) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET \
            badge = excluded.badge, name_color = excluded.name_color, updated_at = excluded.updated_at";
        let now = db_time(Utc::now());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // First statement, and a write: takes the account's lock (and SQLite's
            // write lock) before anything is read.
            let locked = sqlx::query(LOCK_ACCOUNT).bind(account).execute(&mut *tx).await?.rows_affected();
            if locked == 0 {
                tx.rollback().await?;
                return Err(StoreError::NotFound);
            }
            let owned: Vec<(String, CosmeticKind)> = sqlx::query_as(OWNED_AMONG)
                .bind(account)
                .bind(&loadout.badge)
                .bind(&loadout.name_color)
                .fetch_all(&mut *tx)
                .await?;
            if let Some(id) = first_unowned(loadout, &owned) {
                tx.rollback().await?;
                return Err(StoreError::NotOwned(id));
            }
            sqlx::query(UPSERT)
                .bind(account)
                .bind(&loadout.badge)
                .bind(&loadout.name_color)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

/// The first equipped id that is not among `owned` with its slot's kind.
fn first_unowned(loadout: &Loadout, owned: &[(String, CosmeticKind)]) -> Option<String> {
    [(&loadout.badge, CosmeticKind::Badge), (&loadout.name_color, CosmeticKind::NameColor)].into_iter().find_map(
        |(slot, kind)| {
            let id = slot.as_ref()?;
            let fits = owned.iter().any(|(owned_id, owned_kind)| owned_id == id && *owned_kind == kind);
            (!fits).then(|| id.clone())
        },
    )
}
