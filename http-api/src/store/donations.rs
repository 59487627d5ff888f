//! Donations: the revenue ledger, Stripe events applied exactly once, and the
//! revenue summary.
//!
//! Stripe delivers each event at least once and retries until it gets a 2xx. The
//! webhook handler calls [`Store::apply_payment_event`] and answers 2xx only after
//! it returns: the event's row in `stripe_events` and all of its effects commit in
//! one transaction, so an event is either fully applied and remembered, or not at
//! all (and the retry applies it).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::cosmetics::{LOCK_ACCOUNT, UNEQUIP_UNOWNED};
use super::{
    CurrencyTotal, Donation, DonationStatus, EventOutcome, NewDonation, PaymentEffect, PaymentEvent, Pool,
    RevenueBucket, RevenueSummary, RevokePolicy, Store, StoreError, db_time,
};

macro_rules! donation_columns {
    () => {
        "id, account_id, checkout_session_id, payment_intent_id, amount_cents, currency, status, \
         created_at, completed_at, refunded_at, disputed_at"
    };
}

/// Claims the event id. The outcome is filled in once known, in the same transaction.
const INSERT_EVENT: &str = "INSERT INTO stripe_events (event_id, event_type, received_at, outcome) \
    VALUES ($1, $2, $3, 'applying') ON CONFLICT (event_id) DO NOTHING";
const SET_OUTCOME: &str = "UPDATE stripe_events SET outcome = $2 WHERE event_id = $1";

/// Completes the donation of checkout session `$3`, creating it if the checkout was
/// not created through us. Only a pending row is updated (a refunded one must not
/// come back to life); the amount and currency become what was actually paid. An
/// existing row keeps its account: it is our own record of who checked out.
/// Returns nothing when the row exists and is not pending.
const UPSERT_COMPLETED: &str = "INSERT INTO donations \
    (id, account_id, checkout_session_id, payment_intent_id, amount_cents, currency, status, created_at, completed_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'completed', $7, $7) \
    ON CONFLICT (checkout_session_id) DO UPDATE SET \
    status = 'completed', \
    payment_intent_id = COALESCE(excluded.payment_intent_id, donations.payment_intent_id), \
    amount_cents = excluded.amount_cents, \
    currency = excluded.currency, \
    completed_at = excluded.completed_at \
    WHERE donations.status = 'pending' \
    RETURNING id, account_id";
const STATE_BY_SESSION: &str = "SELECT id, account_id, status FROM donations WHERE checkout_session_id = $1";

/// Grants every supporter cosmetic to account `$1` for donation `$2`; items it
/// already holds keep their original grant. (The WHERE also resolves SQLite's
/// parsing ambiguity between `INSERT ... SELECT` and `ON CONFLICT`.)
const GRANT_SUPPORTER: &str = "INSERT INTO entitlements (account_id, cosmetic_id, source, donation_id, granted_at) \
    SELECT $1, id, 'donation', $2, $3 FROM cosmetics WHERE supporter \
    ON CONFLICT (account_id, cosmetic_id) DO NOTHING";

/// A refund wins over a dispute: the money is back with the donor either way.
/// The first time each thing happened is kept when Stripe reports it again.
const MARK_REFUNDED: &str = "UPDATE donations SET status = 'refunded', refunded_at = COALESCE(refunded_at, $2) \
    WHERE payment_intent_id = $1 RETURNING id, account_id";
const MARK_DISPUTED: &str = "UPDATE donations SET \
    status = CASE WHEN status = 'refunded' THEN status ELSE 'disputed' END, \
    disputed_at = COALESCE(disputed_at, $2) \
    WHERE payment_intent_id = $1 RETURNING id, account_id";

/// A completed donation of account `$1` other than `$2`, the oldest first.
const OTHER_COMPLETED: &str = "SELECT id FROM donations \
    WHERE account_id = $1 AND status = 'completed' AND id <> $2 ORDER BY completed_at, id LIMIT 1";
/// Entitlements paid for by donation `$2` are now paid for by `$3`.
const REPOINT_ENTITLEMENTS: &str =
    "UPDATE entitlements SET donation_id = $3 WHERE account_id = $1 AND donation_id = $2";
const REVOKE_DONATION_ENTITLEMENTS: &str = "DELETE FROM entitlements WHERE account_id = $1 AND source = 'donation'";

/// The Completed effect, inside the event's transaction `$tx`.
macro_rules! apply_completed {
    ($tx:ident, $session:expr, $intent:expr, $account:expr, $amount:expr, $currency:expr, $at:expr) => {{
        let at = db_time($at);
        let upserted: Option<(Uuid, Uuid)> = sqlx::query_as(UPSERT_COMPLETED)
            .bind(Uuid::new_v4())
            .bind($account)
            .bind($session)
            .bind($intent)
            .bind($amount)
            .bind($currency.to_ascii_lowercase())
            .bind(at)
            .fetch_optional(&mut *$tx)
            .await?;
        let (donation_id, account_id, grant) = match upserted {
            Some((donation_id, account_id)) => (donation_id, account_id, true),
            None => {
                // Already past pending: another event for this checkout (Stripe sends
                // several kinds) completed it, or it was refunded or disputed since.
                let (donation_id, account_id, status): (Uuid, Uuid, DonationStatus) =
                    sqlx::query_as(STATE_BY_SESSION).bind($session).fetch_one(&mut *$tx).await?;
                (donation_id, account_id, status == DonationStatus::Completed)
            }
        };
        if grant {
            sqlx::query(LOCK_ACCOUNT).bind(account_id).execute(&mut *$tx).await?;
            sqlx::query(GRANT_SUPPORTER).bind(account_id).bind(donation_id).bind(at).execute(&mut *$tx).await?;
            EventOutcome::Granted { donation_id, account_id }
        } else {
            EventOutcome::Recorded
        }
    }};
}

/// The Refunded and Disputed effects (`$mark` is the UPDATE that records which),
/// inside the event's transaction `$tx`.
macro_rules! apply_reversal {
    ($tx:ident, $mark:expr, $intent:expr, $at:expr, $policy:expr) => {{
        let at = db_time($at);
        let marked: Option<(Uuid, Uuid)> =
            sqlx::query_as($mark).bind($intent).bind(at).fetch_optional(&mut *$tx).await?;
        match marked {
            None => EventOutcome::UnknownDonation,
            Some((donation_id, _)) if $policy == RevokePolicy::Keep => EventOutcome::Marked { donation_id },
            Some((donation_id, account_id)) => {
                // Locked before counting, so a donation completing concurrently is
                // either counted here or grants after this commits.
                sqlx::query(LOCK_ACCOUNT).bind(account_id).execute(&mut *$tx).await?;
                let other: Option<Uuid> = sqlx::query_scalar(OTHER_COMPLETED)
                    .bind(account_id)
                    .bind(donation_id)
                    .fetch_optional(&mut *$tx)
                    .await?;
                match other {
                    Some(other) => {
                        // The items stay, paid for by the other donation: record that,
                        // so the ledger never shows them resting on a refunded one.
                        sqlx::query(REPOINT_ENTITLEMENTS)
                            .bind(account_id)
                            .bind(donation_id)
                            .bind(other)
                            .execute(&mut *$tx)
                            .await?;
                        EventOutcome::Marked { donation_id }
                    }
                    None => {
                        let entitlements_removed = sqlx::query(REVOKE_DONATION_ENTITLEMENTS)
                            .bind(account_id)
                            .execute(&mut *$tx)
                            .await?
                            .rows_affected();
                        sqlx::query(UNEQUIP_UNOWNED).bind(account_id).bind(at).execute(&mut *$tx).await?;
                        EventOutcome::Revoked { donation_id, account_id, entitlements_removed }
                    }
                }
            }
        }
    }};
}

impl Store {
    /// Records a checkout we created, as pending. Fails with
    /// `Conflict("checkout_session_id")` if that session is already recorded and
    /// `NotFound` if the account does not exist.
    pub async fn create_donation(&self, d: &NewDonation) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO donations \
            (id, account_id, checkout_session_id, amount_cents, currency, status, created_at) \
            VALUES ($1, $2, $3, $4, $5, 'pending', $6)";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(d.id)
                .bind(d.account_id)
                .bind(&d.checkout_session_id)
                .bind(d.amount_cents)
                .bind(d.currency.to_ascii_lowercase())
                .bind(db_time(d.created_at))
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// An account's donations in every status, newest first.
    pub async fn donations_for(&self, account: Uuid) -> Result<Vec<Donation>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            donation_columns!(),
            " FROM donations WHERE account_id = $1 ORDER BY created_at DESC, id DESC"
        );
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Donation>(SQL).bind(account).fetch_all(pool).await)?)
    }

    pub async fn donation_by_session(&self, checkout_session_id: &str) -> Result<Option<Donation>, StoreError> {
        const SQL: &str = concat!("SELECT ", donation_columns!(), " FROM donations WHERE checkout_session_id = $1");
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, Donation>(SQL).bind(checkout_session_id).fetch_optional(pool).await
        })?)
    }

    /// Applies a verified Stripe event exactly once per event id, in one transaction
    /// with the record of the event:
    ///
    /// - `Completed` completes the checkout's donation (creating it if it was not
    ///   created through us) and grants every supporter cosmetic to its account.
    ///   A second event for the same checkout changes nothing and answers `Granted`
    ///   again; one for a donation already refunded or disputed grants nothing
    ///   (`Recorded`).
    /// - `Refunded` / `Disputed` mark the donation found by its payment intent and,
    ///   under [`RevokePolicy::Revoke`], remove the account's donation entitlements
    ///   (un-equipping what it no longer owns) unless another completed donation of
    ///   the account still pays for them.
    ///
    /// An event id seen before answers `Duplicate` and changes nothing. On any error
    /// nothing is recorded, so redelivering the event applies it then. A `Completed`
    /// event for an account that does not exist fails with `NotFound`; a payment
    /// intent already on another donation with `Conflict("payment_intent_id")`.
    pub async fn apply_payment_event(
        &self,
        event: &PaymentEvent,
        policy: RevokePolicy,
    ) -> Result<EventOutcome, StoreError> {
        let received_at = db_time(event.received_at);
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The claim comes first. On Postgres a concurrent delivery of the same id
            // waits here for this transaction, then inserts nothing (or, had this one
            // rolled back, applies the event itself). On SQLite it is the write that
            // takes the database's write lock before anything is read.
            let claimed = sqlx::query(INSERT_EVENT)
                .bind(&event.event_id)
                .bind(&event.event_type)
                .bind(received_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(EventOutcome::Duplicate);
            }
            let outcome = match &event.effect {
                PaymentEffect::Completed {
                    checkout_session_id,
                    payment_intent_id,
                    account_id,
                    amount_cents,
                    currency,
                    at,
                } => apply_completed!(
                    tx,
                    checkout_session_id,
                    payment_intent_id,
                    *account_id,
                    *amount_cents,
                    currency,
                    *at
                ),
                PaymentEffect::Refunded { payment_intent_id, at } => {
                    apply_reversal!(tx, MARK_REFUNDED, payment_intent_id, *at, policy)
                }
                PaymentEffect::Disputed { payment_intent_id, at } => {
                    apply_reversal!(tx, MARK_DISPUTED, payment_intent_id, *at, policy)
                }
                PaymentEffect::Ignored => EventOutcome::Recorded,
            };
            sqlx::query(SET_OUTCOME).bind(&event.event_id).bind(outcome.as_str()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// The ledger over `[from, to)`: donations by `completed_at`, refunds by
    /// `refunded_at`, per currency, in total and by UTC day and month. One query
    /// fetches the rows in range and the buckets are summed here, which keeps the
    /// SQL the same on both backends (they store timestamps differently).
    pub async fn revenue_summary(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<RevenueSummary, StoreError> {
        const SQL: &str = "SELECT account_id, amount_cents, currency, completed_at, refunded_at FROM donations \
            WHERE (completed_at >= $1 AND completed_at < $2) OR (refunded_at >= $1 AND refunded_at < $2)";
        let (start, end) = (db_time(from), db_time(to));
        let rows: Vec<LedgerRow> = with_pool!(self, |pool| {
            sqlx::query_as::<_, LedgerRow>(SQL).bind(start).bind(end).fetch_all(pool).await
        })?;
        let mut summary = summarize(&rows, start, end);
        (summary.from, summary.to) = (from, to);
        Ok(summary)
    }
}

#[derive(sqlx::FromRow)]
struct LedgerRow {
    account_id: Uuid,
    amount_cents: i64,
    currency: String,
    completed_at: Option<DateTime<Utc>>,
    refunded_at: Option<DateTime<Utc>>,
}

/// UTC period formats of [`RevenueSummary::by_day`] and [`RevenueSummary::by_month`].
const PERIODS: [&str; 2] = ["%Y-%m-%d", "%Y-%m"];

type Buckets<'a> = BTreeMap<(String, &'a str), RevenueBucket>;

/// Sums `rows` (each completed or refunded within `[from, to)`, or both) into totals,
/// days and months.
fn summarize(rows: &[LedgerRow], from: DateTime<Utc>, to: DateTime<Utc>) -> RevenueSummary {
    let in_range = |t: Option<DateTime<Utc>>| t.filter(|t| (from..to).contains(t));
    let mut totals: BTreeMap<&str, CurrencyTotal> = BTreeMap::new();
    let mut periods: [Buckets<'_>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut donors = HashSet::new();

    for row in rows {
        let currency = row.currency.as_str();
        let total = totals.entry(currency).or_insert_with(|| CurrencyTotal {
            currency: currency.to_owned(),
            gross_cents: 0,
            refunded_cents: 0,
            net_cents: 0,
            donations: 0,
            refunds: 0,
        });
        if let Some(completed) = in_range(row.completed_at) {
            total.gross_cents += row.amount_cents;
            total.donations += 1;
            donors.insert(row.account_id);
            for (buckets, format) in periods.iter_mut().zip(PERIODS) {
                let bucket = bucket(buckets, completed, format, currency);
                bucket.donations += 1;
                bucket.gross_cents += row.amount_cents;
            }
        }
        if let Some(refunded) = in_range(row.refunded_at) {
            total.refunded_cents += row.amount_cents;
            total.refunds += 1;
            for (buckets, format) in periods.iter_mut().zip(PERIODS) {
                bucket(buckets, refunded, format, currency).refunded_cents += row.amount_cents;
            }
        }
    }
    for total in totals.values_mut() {
        total.net_cents = total.gross_cents - total.refunded_cents;
    }
    let [days, months] = periods;
    RevenueSummary {
        currency_totals: totals.into_values().collect(),
        by_day: days.into_values().collect(),
        by_month: months.into_values().collect(),
        donors: i64::try_from(donors.len()).unwrap_or(i64::MAX),
        from,
        to,
    }
}

/// The bucket of `at`'s UTC period (`format`) and `currency`, created empty if new.
fn bucket<'m, 'c>(
    buckets: &'m mut Buckets<'c>,
    at: DateTime<Utc>,
    format: &str,
    currency: &'c str,
) -> &'m mut RevenueBucket {
    let period = at.format(format).to_string();
    buckets.entry((period.clone(), currency)).or_insert_with(|| RevenueBucket {
        period,
        currency: currency.to_owned(),
        donations: 0,
        gross_cents: 0,
        refunded_cents: 0,
    })
}
