//! Admin-only views. Revenue: the ledger summed by day and month, donors,
//! refunds, and the break-even figures the plan tracks.

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::AccessClaims;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Authed};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RevenueQuery {
    /// Start (inclusive), RFC 3339; default 90 days ago.
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive), RFC 3339; default now.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BreakEven {
    pub monthly_cost_cents: i64,
    pub donation_amount_cents: i64,
    /// Donations a month needed to cover the monthly cost.
    pub donors_needed_per_month: i64,
    /// Net revenue over the last 30 days.
    pub last_30_days_net_cents: i64,
    /// Net revenue over the last 30 days divided by the monthly cost.
    pub coverage: f64,
    /// Distinct players who finished a match in the last 30 days.
    pub active_players_30d: i64,
    /// Donors in the last 30 days.
    pub donors_30d: i64,
    /// donors_30d / active_players_30d (0 when nobody played).
    pub conversion_rate: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevenueReport {
    #[schema(value_type = Object)]
    pub summary: crate::store::RevenueSummary,
    pub break_even: BreakEven,
}

fn require_admin(claims: &AccessClaims) -> ApiResult<()> {
    if claims.role == "admin" { Ok(()) } else { Err(ApiError::forbidden("ADMIN_ONLY", "this endpoint is for admins")) }
}

#[utoipa::path(get, path = "/v1/admin/revenue", tag = "admin", params(RevenueQuery),
    responses((status = 200, body = RevenueReport), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn revenue(
    State(state): State<AppState>,
    Authed(claims): Authed,
    ApiQuery(q): ApiQuery<RevenueQuery>,
) -> ApiResult<axum::Json<RevenueReport>> {
    require_admin(&claims)?;
    let now = Utc::now();
    let to = q.to.unwrap_or(now);
    let from = q.from.unwrap_or(to - Duration::days(90));
    if from >= to || to - from > Duration::days(3660) {
        return Err(ApiError::validation("from", "out_of_range", "from must be before to, at most ten years apart"));
    }
    let summary = state.store.revenue_summary(from, to).await?;
    let recent = state.store.revenue_summary(now - Duration::days(30), now).await?;
    let active = state.store.active_players(now - Duration::days(30)).await?;
    let (monthly_cost, amount) = match &state.donations {
        Some(d) => (d.monthly_cost_cents, d.checkout.amount_cents),
        None => (state.settings.monthly_cost_cents, 0),
    };
    let net_30: i64 = recent.currency_totals.iter().map(|c| c.net_cents).sum();
    let break_even = BreakEven {
        monthly_cost_cents: monthly_cost,
        donation_amount_cents: amount,
        donors_needed_per_month: if amount > 0 { (monthly_cost + amount - 1) / amount } else { 0 },
        last_30_days_net_cents: net_30,
        coverage: if monthly_cost > 0 { net_30 as f64 / monthly_cost as f64 } else { 0.0 },
        active_players_30d: active,
        donors_30d: recent.donors,
        conversion_rate: if active > 0 { recent.donors as f64 / active as f64 } else { 0.0 },
    };
    Ok(axum::Json(RevenueReport { summary, break_even }))
}
