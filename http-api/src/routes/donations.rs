//! Donations: Stripe Checkout for the donor, and Stripe's webhooks, applied
//! exactly once per event.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::Authed;
use crate::payments;
use crate::payments::events::Effect;
use crate::state::{AppState, Donations};
use crate::store::{EventOutcome, NewDonation, PaymentEffect, PaymentEvent, StoreError};

/// How far a webhook's timestamp may be from our clock (Stripe's default).
const SIGNATURE_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckoutResponse {
    /// Send the donor here (Stripe-hosted payment page).
    pub checkout_url: String,
    pub session_id: String,
    pub amount_cents: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DonationView {
    pub id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    /// `pending`, `completed`, `refunded` or `disputed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DonationList {
    pub donations: Vec<DonationView>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    /// What the event did: `granted`, `revoked`, `marked`, `duplicate`, `unknown_donation` or `recorded`.
    pub outcome: String,
}

fn configured(state: &AppState) -> ApiResult<&Donations> {
    state
        .donations
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("DONATIONS_NOT_CONFIGURED", "donations are not configured on this server"))
}

#[utoipa::path(post, path = "/v1/donations/checkout", tag = "donations",
    responses((status = 201, body = CheckoutResponse), (status = 401, body = crate::error::Problem),
              (status = 502, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn checkout(
    State(state): State<AppState>,
    Authed(claims): Authed,
) -> ApiResult<(StatusCode, axum::Json<CheckoutResponse>)> {
    let donations = configured(&state)?;
    let account = state
        .store
        .account_by_id(claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("INVALID_TOKEN", "the account no longer exists"))?;
    let session = payments::checkout::create_checkout_session(&donations.checkout, account.id, &account.username)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "Stripe checkout failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "PAYMENT_PROVIDER_ERROR",
                "the payment provider is unavailable; try again",
            )
        })?;
    let cfg = &donations.checkout;
    let record = NewDonation {
        id: Uuid::new_v4(),
        account_id: account.id,
        checkout_session_id: session.id.clone(),
        amount_cents: cfg.amount_cents,
        currency: cfg.currency.clone(),
        created_at: Utc::now(),
    };
    state.store.create_donation(&record).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CheckoutResponse {
            checkout_url: session.url,
            session_id: session.id,
            amount_cents: cfg.amount_cents,
            currency: cfg.currency.clone(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/me/donations", tag = "donations", responses((status = 200, body = DonationList)),
    security(("bearer" = [])))]
pub async fn mine(State(state): State<AppState>, Authed(claims): Authed) -> ApiResult<axum::Json<DonationList>> {
    let donations = state
        .store
        .donations_for(claims.sub)
        .await?
        .into_iter()
        .map(|d| DonationView {
            id: d.id,
            amount_cents: d.amount_cents,
            currency: d.currency,
            status: d.status.as_str().to_string(),
            created_at: d.created_at,
            completed_at: d.completed_at,
        })
        .collect();
    Ok(axum::Json(DonationList { donations }))
}

/// Stripe's webhook. Answers 2xx only after the event and its effects are
/// committed, so a failure makes Stripe retry and the retry applies it once.
#[utoipa::path(post, path = "/v1/webhooks/stripe", tag = "donations",
    request_body(content = String, content_type = "application/json", description = "A Stripe event, signed in the Stripe-Signature header"),
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature header")),
    responses((status = 200, body = WebhookAck), (status = 400, body = crate::error::Problem),
              (status = 503, body = crate::error::Problem)))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<WebhookAck>> {
    let donations = configured(&state)?;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("INVALID_SIGNATURE", "missing Stripe-Signature header"))?;
    let now = Utc::now();
    payments::signature::verify_signature(
        &body,
        header,
        &donations.webhook_secrets,
        now.timestamp(),
        SIGNATURE_TOLERANCE_SECS,
    )
    .map_err(|e| {
        tracing::warn!(error = %e, "webhook refused");
        ApiError::bad_request("INVALID_SIGNATURE", format!("signature verification failed: {e}"))
    })?;
    let parsed =
        payments::events::parse_event(&body).map_err(|e| ApiError::bad_request("INVALID_EVENT", e.to_string()))?;
    let effect = match parsed.effect {
        Effect::Completed { checkout_session_id, payment_intent_id, account_id, amount_cents, currency, at } => {
            PaymentEffect::Completed { checkout_session_id, payment_intent_id, account_id, amount_cents, currency, at }
        }
        Effect::Refunded { payment_intent_id, fully_refunded: true, at, .. } => {
            PaymentEffect::Refunded { payment_intent_id, at }
        }
        // Policy: a partial refund is a goodwill gesture, not a withdrawn
        // donation; the donation and its cosmetics stay.
        Effect::Refunded { .. } => PaymentEffect::Ignored,
        Effect::Disputed { payment_intent_id, at } => PaymentEffect::Disputed { payment_intent_id, at },
        Effect::Ignored => PaymentEffect::Ignored,
    };
    let event =
        PaymentEvent { event_id: parsed.id.clone(), event_type: parsed.event_type.clone(), effect, received_at: now };
    let outcome = match state.store.apply_payment_event(&event, donations.policy).await {
        Ok(o) => o,
        Err(StoreError::NotFound) => {
            return Err(ApiError::bad_request("UNKNOWN_ACCOUNT", "the event names an account that does not exist"));
        }
        Err(e) => return Err(e.into()),
    };
    let word = match outcome {
        EventOutcome::Duplicate => "duplicate",
        EventOutcome::Granted { .. } => "granted",
        EventOutcome::Revoked { .. } => "revoked",
        EventOutcome::Marked { .. } => "marked",
        EventOutcome::UnknownDonation => "unknown_donation",
        EventOutcome::Recorded => "recorded",
    };
    tracing::info!(event = %parsed.id, kind = %parsed.event_type, outcome = word, "stripe event");
    state.metrics.stripe_events.get_or_create(&crate::metrics::OutcomeLabels { outcome: word }).inc();
    Ok(axum::Json(WebhookAck { received: true, outcome: word.to_string() }))
}
