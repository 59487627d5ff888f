//! Parsing verified Stripe webhook events into the few effects donations care about.
//!
//! Only fields that have been stable across Stripe API versions are read, and unknown fields are
//! ignored: webhook payloads follow the API version configured on the endpoint in Stripe's dashboard,
//! not the version async-stripe pins for API calls, so the parser must not depend on either.
//!
//! | event type                                  | object          | effect                                   |
//! | ------------------------------------------- | --------------- | ---------------------------------------- |
//! | `checkout.session.completed`                | Checkout Session| [`Effect::Completed`] once `payment_status` is `paid` |
//! | `checkout.session.async_payment_succeeded`  | Checkout Session| [`Effect::Completed`] (same rule)        |
//! | `charge.refunded`                           | Charge          | [`Effect::Refunded`]                     |
//! | `charge.dispute.created`                    | Dispute         | [`Effect::Disputed`]                     |
//! | anything else                               |                 | [`Effect::Ignored`]                      |
//!
//! A completed session that is not yet paid (a delayed payment method such as a bank debit) is
//! `Ignored`: Stripe follows up with `async_payment_succeeded` once the money arrives. A charge or
//! dispute without a PaymentIntent cannot belong to a Checkout payment (Checkout always creates one),
//! so it is `Ignored` too rather than refused, which would make Stripe retry it for days.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// Longest Stripe id we accept (Stripe's own are under 100 characters; Checkout Session ids are the
/// longest at ~66). Keeps the ledger's columns sane whatever arrives.
pub const MAX_ID_LEN: usize = 255;

/// A verified webhook event, reduced to what the donation ledger needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// `evt_...`: the idempotency key for processing the event exactly once.
    pub id: String,
    /// Stripe's event type, e.g. `checkout.session.completed`.
    pub event_type: String,
    /// When Stripe created the event.
    pub created: DateTime<Utc>,
    /// Whether the event comes from live mode (false for test-mode keys).
    pub livemode: bool,
    pub effect: Effect,
}

/// What an event means for donations. Mirrors the store's `PaymentEffect`; `Refunded` also carries
/// the refunded amount so the caller can apply its refund policy to partial refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A donation was paid: grant it.
    Completed {
        /// `cs_...`: the Checkout Session.
        checkout_session_id: String,
        /// `pi_...`: what later refunds and disputes refer to.
        payment_intent_id: Option<String>,
        account_id: Uuid,
        amount_cents: i64,
        /// Lowercase ISO 4217 code, e.g. `usd`.
        currency: String,
        /// The event's creation time.
        at: DateTime<Utc>,
    },
    /// Money was returned for the payment (fully or partly).
    Refunded {
        payment_intent_id: String,
        /// Total refunded so far on the charge (`amount_refunded`), in the smallest currency unit.
        amount_refunded_cents: i64,
        /// Whether the charge is now refunded in full (`refunded`).
        fully_refunded: bool,
        at: DateTime<Utc>,
    },
    /// The cardholder disputed the payment.
    Disputed { payment_intent_id: String, at: DateTime<Utc> },
    /// Nothing to do; acknowledge with 2xx so Stripe stops sending it.
    Ignored,
}

/// A verified event that cannot be understood. The webhook answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not valid JSON in Stripe's event shape: {0}")]
    Malformed(String),
    #[error("event field `{0}` is missing")]
    MissingField(&'static str),
    #[error("event field `{field}` is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// A Checkout Session, as much of it as a donation needs.
#[derive(Deserialize)]
struct SessionObject {
    id: String,
    payment_status: Option<String>,
    amount_total: Option<i64>,
    currency: Option<String>,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    payment_intent: Option<IdOrObject>,
}

/// A Charge (`charge.refunded`).
#[derive(Deserialize)]
struct ChargeObject {
    payment_intent: Option<IdOrObject>,
    #[serde(default)]
    refunded: bool,
    #[serde(default)]
    amount_refunded: i64,
}

/// A Dispute (`charge.dispute.created`).
#[derive(Deserialize)]
struct DisputeObject {
    payment_intent: Option<IdOrObject>,
}

/// Stripe sends related objects as ids unless they were expanded; webhooks never expand, but accepting
/// both costs nothing.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdOrObject {
    Id(String),
    Object { id: String },
}

impl IdOrObject {
    fn into_id(self) -> String {
        match self {
            IdOrObject::Id(id) | IdOrObject::Object { id } => id,
        }
    }
}

/// Parses a webhook body whose signature has already been verified.
pub fn parse_event(payload: &[u8]) -> Result<ParsedEvent, EventError> {
    let envelope: Envelope = serde_json::from_slice(payload).map_err(|e| EventError::Malformed(e.to_string()))?;
    check_id("id", &envelope.id)?;
    if envelope.event_type.is_empty() || envelope.event_type.len() > MAX_ID_LEN {
        return Err(invalid("type", "must be 1 to 255 characters"));
    }
    let created = DateTime::from_timestamp(envelope.created, 0).ok_or_else(|| invalid("created", "out of range"))?;

    let effect = match envelope.event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            session_effect(envelope.data.object, created)?
        }
        "charge.refunded" => {
            let charge: ChargeObject = object(envelope.data.object)?;
            match payment_intent(charge.payment_intent)? {
                Some(payment_intent_id) => {
                    if charge.amount_refunded < 0 {
                        return Err(invalid("data.object.amount_refunded", "negative"));
                    }
                    Effect::Refunded {
                        payment_intent_id,
                        amount_refunded_cents: charge.amount_refunded,
                        fully_refunded: charge.refunded,
                        at: created,
                    }
                }
                None => ignored(&envelope.event_type, "charge has no payment_intent"),
            }
        }
        "charge.dispute.created" => {
            let dispute: DisputeObject = object(envelope.data.object)?;
            match payment_intent(dispute.payment_intent)? {
                Some(payment_intent_id) => Effect::Disputed { payment_intent_id, at: created },
                None => ignored(&envelope.event_type, "dispute has no payment_intent"),
            }
        }
        _ => Effect::Ignored,
    };

    Ok(ParsedEvent { id: envelope.id, event_type: envelope.event_type, created, livemode: envelope.livemode, effect })
}

fn session_effect(object_json: serde_json::Value, at: DateTime<Utc>) -> Result<Effect, EventError> {
    let session: SessionObject = object(object_json)?;
    check_id("data.object.id", &session.id)?;
    if session.payment_status.as_deref() != Some("paid") {
        return Ok(ignored("checkout.session", "session is not paid yet"));
    }
    let amount_cents = session.amount_total.ok_or(EventError::MissingField("data.object.amount_total"))?;
    if amount_cents <= 0 {
        return Err(invalid("data.object.amount_total", "must be positive"));
    }
    let currency = session.currency.ok_or(EventError::MissingField("data.object.currency"))?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(invalid("data.object.currency", "must be a three-letter ISO 4217 code"));
    }

    // We set both when creating the session; metadata is preferred because it is also what Stripe's
    // dashboard shows. A disagreement would be a bug on our side, not a reason to lose a paid donation.
    let from_metadata = session.metadata.as_ref().and_then(|m| m.get("account_id")).map(String::as_str);
    let from_reference = session.client_reference_id.as_deref();
    if let (Some(m), Some(r)) = (from_metadata, from_reference) {
        if m != r {
            tracing::warn!(session = %session.id, metadata = m, client_reference_id = r, "account ids disagree; using metadata");
        }
    }
    let account =
        from_metadata.or(from_reference).ok_or(EventError::MissingField("data.object.metadata.account_id"))?;
    let account_id = Uuid::parse_str(account).map_err(|_| invalid("data.object.metadata.account_id", "not a UUID"))?;

    Ok(Effect::Completed {
        checkout_session_id: session.id,
        payment_intent_id: payment_intent(session.payment_intent)?,
        account_id,
        amount_cents,
        currency: currency.to_ascii_lowercase(),
        at,
    })
}

fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, EventError> {
    serde_json::from_value(value).map_err(|e| EventError::Malformed(format!("data.object: {e}")))
}

fn payment_intent(value: Option<IdOrObject>) -> Result<Option<String>, EventError> {
    let Some(id) = value.map(IdOrObject::into_id) else { return Ok(None) };
    check_id("payment_intent", &id)?;
    Ok(Some(id))
}

fn check_id(field: &'static str, id: &str) -> Result<(), EventError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(invalid(field, "must be 1 to 255 characters"));
    }
    Ok(())
}

fn invalid(field: &'static str, reason: &str) -> EventError {
    EventError::InvalidField { field, reason: reason.to_string() }
}

fn ignored(what: &str, why: &'static str) -> Effect {
    tracing::info!(what, why, "ignoring Stripe event");
    Effect::Ignored
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const ACCOUNT: &str = "6f1c1c9e-3b0a-4c55-9d43-5c2b8a0e7f21";

    /// A `checkout.session.completed` event in the shape Stripe sends (API version 2023-10-16), with
    /// the fields a hosted payment-mode session has.
    const COMPLETED_EVENT: &str = r#"{
  "id": "evt_1OdWx2LkdIwHu7ixc1qD6dB0",
  "object": "event",
  "api_version": "2023-10-16",
  "created": 1706100000,
  "data": {
    "object": {
      "id": "cs_test_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6",
      "object": "checkout.session",
      "after_expiration": null,
      "allow_promotion_codes": null,
      "amount_subtotal": 500,
      "amount_total": 500,
      "automatic_tax": {
        "enabled": false,
        "liability": null,
        "status": null
      },
      "billing_address_collection": null,
      "cancel_url": "https://play.example.com/donate/cancel",
      "client_reference_id": "6f1c1c9e-3b0a-4c55-9d43-5c2b8a0e7f21",
      "client_secret": null,
      "consent": null,
      "consent_collection": null,
      "created": 1706099900,
      "currency": "usd",
      "currency_conversion": null,
      "custom_fields": [],
      "custom_text": {
        "after_submit": null,
        "shipping_address": null,
        "submit": null,
        "terms_of_service_acceptance": null
      },
      "customer": null,
      "customer_creation": "if_required",
      "customer_details": {
        "address": {
          "city": null,
          "country": "US",
          "line1": null,
          "line2": null,
          "postal_code": "94103",
          "state": null
        },
        "email": "player@example.com",
        "name": "Pat Player",
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": []
      },
      "customer_email": null,
      "expires_at": 1706186300,
      "invoice": null,
      "invoice_creation": {
        "enabled": false,
        "invoice_data": {
          "account_tax_ids": null,
          "custom_fields": null,
          "description": null,
          "footer": null,
          "issuer": null,
          "metadata": {},
          "rendering_options": null
        }
      },
      "livemode": false,
      "locale": null,
      "metadata": {
        "account_id": "6f1c1c9e-3b0a-4c55-9d43-5c2b8a0e7f21",
        "username": "pat"
      },
      "mode": "payment",
      "payment_intent": "pi_3OdWwzLkdIwHu7ix0Jz3Fq9K",
      "payment_link": null,
      "payment_method_collection": "if_required",
      "payment_method_configuration_details": null,
      "payment_method_options": {},
      "payment_method_types": [
        "card"
      ],
      "payment_status": "paid",
      "phone_number_collection": {
        "enabled": false
      },
      "recovered_from": null,
      "setup_intent": null,
      "shipping_address_collection": null,
      "shipping_cost": null,
      "shipping_details": null,
      "shipping_options": [],
      "status": "complete",
      "submit_type": "donate",
      "subscription": null,
      "success_url": "https://play.example.com/donate/thanks",
      "total_details": {
        "amount_discount": 0,
        "amount_shipping": 0,
        "amount_tax": 0
      },
      "ui_mode": "hosted",
      "url": null
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": null,
    "idempotency_key": null
  },
  "type": "checkout.session.completed"
}"#;

    fn completed_event() -> Value {
        serde_json::from_str(COMPLETED_EVENT).unwrap()
    }

    /// `charge.refunded` (API 2023-10-16: `refunds` is no longer included in the Charge by default).
    fn refund_event(amount_refunded: i64, refunded: bool) -> Value {
        json!({
            "id": "evt_3OdWwzLkdIwHu7ix0aBcDeFg",
            "object": "event",
            "api_version": "2023-10-16",
            "created": 1706200000,
            "data": {
                "object": {
                    "id": "ch_3OdWwzLkdIwHu7ix0xYz1234",
                    "object": "charge",
                    "amount": 500,
                    "amount_captured": 500,
                    "amount_refunded": amount_refunded,
                    "balance_transaction": "txn_3OdWwzLkdIwHu7ix0q1w2e3r",
                    "billing_details": { "address": { "city": null, "country": "US", "line1": null,
                        "line2": null, "postal_code": "94103", "state": null },
                        "email": "player@example.com", "name": "Pat Player", "phone": null },
                    "captured": true,
                    "created": 1706099990,
                    "currency": "usd",
                    "customer": null,
                    "description": null,
                    "disputed": false,
                    "livemode": false,
                    "metadata": { "account_id": ACCOUNT },
                    "outcome": { "network_status": "approved_by_network", "reason": null,
                                 "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized" },
                    "paid": true,
                    "payment_intent": "pi_3OdWwzLkdIwHu7ix0Jz3Fq9K",
                    "payment_method": "pm_1OdWwyLkdIwHu7ixA1b2C3d4",
                    "receipt_url": "https://pay.stripe.com/receipts/payment/CAcaFwoV",
                    "refunded": refunded,
                    "status": "succeeded"
                },
                "previous_attributes": { "amount_refunded": 0, "refunded": false }
            },
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": "req_Q1w2E3r4T5y6U7", "idempotency_key": "0b6a1f7c-5e55-4bde-9a43-0f3f0c3f2d11" },
            "type": "charge.refunded"
        })
    }

    fn dispute_event() -> Value {
        json!({
            "id": "evt_1OdX0aLkdIwHu7ixZz9y8x7w",
            "object": "event",
            "api_version": "2023-10-16",
            "created": 1706300000,
            "data": {
                "object": {
                    "id": "dp_1OdX0aLkdIwHu7ixQwErTyUi",
                    "object": "dispute",
                    "amount": 500,
                    "balance_transactions": [],
                    "charge": "ch_3OdWwzLkdIwHu7ix0xYz1234",
                    "created": 1706300000,
                    "currency": "usd",
                    "evidence": { "customer_email_address": null, "uncategorized_text": null },
                    "evidence_details": { "due_by": 1707091199, "has_evidence": false, "past_due": false,
                                          "submission_count": 0 },
                    "is_charge_refundable": true,
                    "livemode": false,
                    "metadata": {},
                    "payment_intent": "pi_3OdWwzLkdIwHu7ix0Jz3Fq9K",
                    "reason": "fraudulent",
                    "status": "warning_needs_response"
                }
            },
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": "charge.dispute.created"
        })
    }

    fn parse(value: &Value) -> Result<ParsedEvent, EventError> {
        parse_event(&serde_json::to_vec(value).unwrap())
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn completed_paid_session_is_a_grant() {
        let event = parse(&completed_event()).unwrap();
        assert_eq!(event.id, "evt_1OdWx2LkdIwHu7ixc1qD6dB0");
        assert_eq!(event.event_type, "checkout.session.completed");
        assert_eq!(event.created, at(1706100000));
        assert!(!event.livemode);
        assert_eq!(
            event.effect,
            Effect::Completed {
                checkout_session_id: "cs_test_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6".into(),
                payment_intent_id: Some("pi_3OdWwzLkdIwHu7ix0Jz3Fq9K".into()),
                account_id: ACCOUNT.parse().unwrap(),
                amount_cents: 500,
                currency: "usd".into(),
                at: at(1706100000),
            }
        );
    }

    #[test]
    fn async_payment_succeeded_is_a_grant_too() {
        let mut event = completed_event();
        event["type"] = json!("checkout.session.async_payment_succeeded");
        assert!(matches!(parse(&event).unwrap().effect, Effect::Completed { .. }));
    }

    #[test]
    fn unpaid_sessions_are_ignored_until_the_money_arrives() {
        for status in ["unpaid", "no_payment_required"] {
            let mut event = completed_event();
            event["data"]["object"]["payment_status"] = json!(status);
            event["data"]["object"]["payment_intent"] = Value::Null;
            assert_eq!(parse(&event).unwrap().effect, Effect::Ignored, "{status}");
        }
    }

    #[test]
    fn account_comes_from_metadata_or_else_the_client_reference() {
        let other = "0e0e0e0e-0000-4000-8000-000000000001";
        let mut event = completed_event();
        event["data"]["object"]["client_reference_id"] = json!(other);
        let Effect::Completed { account_id, .. } = parse(&event).unwrap().effect else { panic!() };
        assert_eq!(account_id.to_string(), ACCOUNT, "metadata wins");

        let mut event = completed_event();
        event["data"]["object"]["metadata"] = json!({});
        event["data"]["object"]["client_reference_id"] = json!(other);
        let Effect::Completed { account_id, .. } = parse(&event).unwrap().effect else { panic!() };
        assert_eq!(account_id.to_string(), other);
    }

    #[test]
    fn a_paid_session_without_a_usable_account_is_an_error() {
        let mut event = completed_event();
        event["data"]["object"]["metadata"] = json!({ "username": "pat" });
        event["data"]["object"]["client_reference_id"] = Value::Null;
        assert_eq!(parse(&event), Err(EventError::MissingField("data.object.metadata.account_id")));

        let mut event = completed_event();
        event["data"]["object"]["metadata"]["account_id"] = json!("not-a-uuid");
        assert!(matches!(
            parse(&event),
            Err(EventError::InvalidField { field: "data.object.metadata.account_id", .. })
        ));
    }

    #[test]
    fn a_paid_session_without_amount_or_currency_is_an_error() {
        let mut event = completed_event();
        event["data"]["object"].as_object_mut().unwrap().remove("amount_total");
        assert_eq!(parse(&event), Err(EventError::MissingField("data.object.amount_total")));

        let mut event = completed_event();
        event["data"]["object"]["amount_total"] = json!(0);
        assert!(matches!(parse(&event), Err(EventError::InvalidField { .. })));

        let mut event = completed_event();
        event["data"]["object"]["currency"] = Value::Null;
        assert_eq!(parse(&event), Err(EventError::MissingField("data.object.currency")));

        let mut event = completed_event();
        event["data"]["object"]["currency"] = json!("dollars");
        assert!(matches!(parse(&event), Err(EventError::InvalidField { field: "data.object.currency", .. })));
    }

    #[test]
    fn refunds_carry_the_payment_intent_and_amount() {
        let event = parse(&refund_event(500, true)).unwrap();
        assert_eq!(
            event.effect,
            Effect::Refunded {
                payment_intent_id: "pi_3OdWwzLkdIwHu7ix0Jz3Fq9K".into(),
                amount_refunded_cents: 500,
                fully_refunded: true,
                at: at(1706200000),
            }
        );
        let Effect::Refunded { amount_refunded_cents: 200, fully_refunded: false, .. } =
            parse(&refund_event(200, false)).unwrap().effect
        else {
            panic!("partial refund")
        };
    }

    #[test]
    fn disputes_carry_the_payment_intent() {
        let event = parse(&dispute_event()).unwrap();
        assert_eq!(event.event_type, "charge.dispute.created");
        assert_eq!(
            event.effect,
            Effect::Disputed { payment_intent_id: "pi_3OdWwzLkdIwHu7ix0Jz3Fq9K".into(), at: at(1706300000) }
        );
    }

    #[test]
    fn charges_and_disputes_without_a_payment_intent_are_ignored() {
        let mut refund = refund_event(500, true);
        refund["data"]["object"]["payment_intent"] = Value::Null;
        assert_eq!(parse(&refund).unwrap().effect, Effect::Ignored);
        let mut dispute = dispute_event();
        dispute["data"]["object"].as_object_mut().unwrap().remove("payment_intent");
        assert_eq!(parse(&dispute).unwrap().effect, Effect::Ignored);
    }

    #[test]
    fn expanded_payment_intents_are_accepted() {
        let mut event = completed_event();
        event["data"]["object"]["payment_intent"] = json!({ "id": "pi_expanded", "object": "payment_intent" });
        let Effect::Completed { payment_intent_id, .. } = parse(&event).unwrap().effect else { panic!() };
        assert_eq!(payment_intent_id.as_deref(), Some("pi_expanded"));
    }

    #[test]
    fn other_event_types_are_ignored_whatever_their_object() {
        for (kind, object) in [
            ("checkout.session.expired", json!({ "id": "cs_test_x", "object": "checkout.session" })),
            ("payment_intent.succeeded", json!({ "id": "pi_x", "object": "payment_intent", "amount": 500 })),
            ("customer.created", json!({ "id": "cus_x" })),
            ("charge.dispute.closed", json!("not even an object")),
        ] {
            let event = json!({ "id": "evt_x", "type": kind, "created": 1706100000, "data": { "object": object } });
            let parsed = parse(&event).unwrap();
            assert_eq!(parsed.effect, Effect::Ignored, "{kind}");
            assert_eq!(parsed.event_type, kind);
        }
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        let bad: &[&[u8]] = &[
            b"",
            b"null",
            b"[]",
            b"{",
            br#"{"id":"evt_1"}"#,
            br#"{"id":"evt_1","type":"checkout.session.completed","created":1}"#,
            br#"{"id":"evt_1","type":"checkout.session.completed","created":"yesterday","data":{"object":{}}}"#,
            br#"{"id":"","type":"x","created":1,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","type":"","created":1,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","type":"x","created":99999999999999999,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","type":"checkout.session.completed","created":1,"data":{"object":[]}}"#,
            br#"{"id":"evt_1","type":"charge.refunded","created":1,"data":{"object":{"payment_intent":7}}}"#,
            br#"{"id":"evt_1","type":"charge.dispute.created","created":1,"data":{"object":null}}"#,
        ];
        for body in bad {
            let result = parse_event(body);
            assert!(result.is_err(), "{:?} parsed as {result:?}", String::from_utf8_lossy(body));
        }
        let long_id = format!(r#"{{"id":"{}","type":"x","created":1,"data":{{"object":{{}}}}}}"#, "e".repeat(256));
        assert!(matches!(parse_event(long_id.as_bytes()), Err(EventError::InvalidField { field: "id", .. })));
    }

    #[test]
    fn errors_read_clearly() {
        let err = parse_event(br#"{"id":"evt_1"}"#).unwrap_err();
        assert!(err.to_string().starts_with("event is not valid JSON in Stripe's event shape: missing field"), "{err}");
        assert_eq!(
            EventError::MissingField("data.object.currency").to_string(),
            "event field `data.object.currency` is missing"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(0u8.., 0..512)) {
            let _ = parse_event(&body);
        }

        #[test]
        fn never_panics_on_mutated_real_events(field in "[a-z_]{1,20}", value in proptest::prelude::any::<i64>(),
                                              kind in 0usize..3) {
            let mut event = [completed_event(), refund_event(500, true), dispute_event()][kind].clone();
            event["data"]["object"][&field] = json!(value);
            let _ = parse(&event);
            event[&field] = json!(value);
            let _ = parse(&event);
        }
    }
}
