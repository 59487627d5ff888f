//! A local stand-in for Stripe's API, for tests (here and in other crates).
//!
//! Stripe's servers cannot be reached from tests, so [`FakeStripe`] speaks the part of Stripe's wire
//! format the donation flow uses, as async-stripe really sends it: `POST /v1/checkout/sessions` with a
//! bearer secret key and a form-encoded body in Stripe's bracket notation
//! (`line_items[0][price_data][unit_amount]=500`), answered with a Checkout Session object or Stripe's
//! error object. It records each session it creates and builds the webhook events Stripe would send
//! about them (completed, refunded, disputed), signed with Stripe's real scheme.
//!
//! It is plain HTTP on 127.0.0.1; async-stripe's rustls connector accepts `http://` base URLs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::signature::sign;

/// The secret key [`FakeStripe::start`] accepts.
pub const FAKE_SECRET_KEY: &str = "sk_test_51FakeTrespasserKey0123456789abcdefABCDEF";

/// A Checkout Session the fake created, with the parameters it was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSession {
    /// `cs_test_...`
    pub id: String,
    /// `https://checkout.stripe.com/c/pay/cs_test_...`
    pub url: String,
    /// The PaymentIntent id the session's payment will have once paid (`pi_...`); the creation answer
    /// carries `payment_intent: null`, as Stripe's does, and [`FakeStripe::completed_event`] fills it in.
    pub payment_intent: String,
    /// Unix seconds.
    pub created: i64,
    pub amount_cents: i64,
    pub currency: String,
    pub quantity: u64,
    pub product_name: String,
    pub mode: String,
    pub submit_type: Option<String>,
    pub client_reference_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// `payment_intent_data[metadata]`.
    pub payment_intent_metadata: BTreeMap<String, String>,
    pub success_url: String,
    pub cancel_url: String,
    /// Every form field as received (keys decoded), for asserting on anything else.
    pub params: Vec<(String, String)>,
}

struct Shared {
    secret_key: String,
    sessions: Mutex<Vec<FakeSession>>,
    fail_with: Mutex<Option<u16>>,
    requests: AtomicUsize,
}

impl Shared {
    fn sessions(&self) -> MutexGuard<'_, Vec<FakeSession>> {
        // A test that panicked while holding the lock must not hide its own failure behind a poison error.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fake Stripe API on `127.0.0.1:<ephemeral port>`; stops when dropped.
pub struct FakeStripe {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeStripe {
    /// Starts a fake that accepts [`FAKE_SECRET_KEY`].
    pub async fn start() -> FakeStripe {
        FakeStripe::start_with_key(FAKE_SECRET_KEY).await
    }

    /// Starts a fake that accepts `secret_key`.
    pub async fn start_with_key(secret_key: &str) -> FakeStripe {
        let shared = Arc::new(Shared {
            secret_key: secret_key.to_string(),
            sessions: Mutex::new(Vec::new()),
            fail_with: Mutex::new(None),
            requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .fallback(unknown_url)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Stripe");
        let addr = listener.local_addr().expect("fake Stripe address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStripe { addr, shared, server }
    }

    /// `http://127.0.0.1:<port>`: the `api_base` to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The sessions created so far, oldest first.
    pub fn sessions(&self) -> Vec<FakeSession> {
        self.shared.sessions().clone()
    }

    /// Requests received so far, including refused ones.
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Makes every following create call fail with this HTTP status and Stripe's error body for it
    /// (5xx: `api_error`; 429: rate limit; other: `invalid_request_error`); `None` heals it.
    pub fn fail_with(&self, status: Option<u16>) {
        *self.shared.fail_with.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// `checkout.session.completed` for `session`, paid.
    pub fn completed_event(&self, session: &FakeSession) -> Value {
        event("checkout.session.completed", session_object(session, true))
    }

    /// `checkout.session.async_payment_succeeded` for `session` (a delayed payment method that settled).
    pub fn async_payment_succeeded_event(&self, session: &FakeSession) -> Value {
        event("checkout.session.async_payment_succeeded", session_object(session, true))
    }

    /// `charge.refunded` for the charge of `payment_intent`, refunded in full.
    pub fn refund_event(&self, payment_intent: &str) -> Value {
        let session = self.session_paid_by(payment_intent);
        let mut charge = charge_object(payment_intent, session.as_ref());
        let amount = charge["amount"].clone();
        charge["amount_refunded"] = amount;
        charge["refunded"] = json!(true);
        let mut event = event("charge.refunded", charge);
        event["data"]["previous_attributes"] = json!({ "amount_refunded": 0, "refunded": false });
        event
    }

    /// `charge.dispute.created` for the charge of `payment_intent`.
    pub fn dispute_event(&self, payment_intent: &str) -> Value {
        let session = self.session_paid_by(payment_intent);
        let charge = charge_object(payment_intent, session.as_ref());
        let now = now();
        let dispute = json!({
            "id": format!("dp_{}", random_suffix(24)),
            "object": "dispute",
            "amount": charge["amount"],
            "balance_transactions": [],
            "charge": charge["id"],
            "created": now,
            "currency": charge["currency"],
            "evidence": { "customer_email_address": null, "customer_name": null, "uncategorized_text": null },
            "evidence_details": { "due_by": now + 7 * 86400, "has_evidence": false, "past_due": false,
                                  "submission_count": 0 },
            "is_charge_refundable": true,
            "livemode": false,
            "metadata": {},
            "payment_intent": payment_intent,
            "payment_method_details": { "card": { "brand": "visa", "network_reason_code": "10.4" }, "type": "card" },
            "reason": "fraudulent",
            "status": "needs_response"
        });
        event("charge.dispute.created", dispute)
    }

    /// Serializes `payload` the way Stripe sends it (pretty-printed) and signs it at the current time:
    /// the request body and its `Stripe-Signature` header.
    pub fn signed(payload: &Value, secret: &str) -> (Vec<u8>, String) {
        FakeStripe::signed_at(payload, secret, now())
    }

    /// [`FakeStripe::signed`] at Unix time `t` (for stale- and future-timestamp tests).
    pub fn signed_at(payload: &Value, secret: &str, t: i64) -> (Vec<u8>, String) {
        let body = serde_json::to_vec_pretty(payload).expect("JSON values serialize");
        let header = sign(&body, secret, t);
        (body, header)
    }

    fn session_paid_by(&self, payment_intent: &str) -> Option<FakeSession> {
        self.shared.sessions().iter().find(|s| s.payment_intent == payment_intent).cloned()
    }
}

/// A Stripe event envelope around `object`, with a fresh `evt_` id.
pub fn event(event_type: &str, object: Value) -> Value {
    json!({
        "id": format!("evt_{}", random_suffix(24)),
        "object": "event",
        "api_version": "2023-10-16",
        "created": now(),
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type
    })
}

async fn create_session(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(refused) = refuse_key(&shared.secret_key, &headers) {
        return refused;
    }
    let fail_with = *shared.fail_with.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(status) = fail_with {
        return injected_failure(status);
    }
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Invalid request: expected a form-encoded body.",
            None,
        );
    }

    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let session = match session_from_params(params) {
        Ok(session) => session,
        Err(missing) => {
            let message = format!("Missing required param: {missing}.");
            return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", &message, Some(missing));
        }
    };
    let response = session_object(&session, false);
    shared.sessions().push(session);
    (StatusCode::OK, axum::Json(response)).into_response()
}

/// Stripe's 401 unless the request carries `Authorization: Bearer <expected>`.
fn refuse_key(expected: &str, headers: &HeaderMap) -> Option<Response> {
    let provided =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match provided {
        Some(key) if key == expected => None,
        Some(key) => {
            // Stripe masks all but the last four characters of a wrong key.
            let last4 = key.get(key.len().saturating_sub(4)..).unwrap_or("");
            let prefix = if key.starts_with("sk_test_") { "sk_test_" } else { "" };
            let message = format!("Invalid API Key provided: {prefix}{}{last4}", "*".repeat(24));
            Some(stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", &message, None))
        }
        None => Some(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            None,
        )),
    }
}

fn injected_failure(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code.is_server_error() {
        stripe_error(code, "api_error", "An unknown error occurred on Stripe's servers.", None)
    } else if code == StatusCode::TOO_MANY_REQUESTS {
        let body = json!({ "error": {
            "code": "rate_limit",
            "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            "type": "invalid_request_error"
        }});
        (code, axum::Json(body)).into_response()
    } else {
        stripe_error(code, "invalid_request_error", "Invalid request (injected by the fake).", None)
    }
}

async fn unknown_url(method: Method, uri: Uri) -> Response {
    let message = format!(
        "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at \
         https://support.stripe.com/.",
        uri.path()
    );
    stripe_error(StatusCode::NOT_FOUND, "invalid_request_error", &message, None)
}

/// Stripe's error object: `{"error": {"type", "message", "param"?, "doc_url"?}}`.
fn stripe_error(status: StatusCode, kind: &str, message: &str, param: Option<&str>) -> Response {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(param) = param {
        error["param"] = json!(param);
        error["code"] = json!("parameter_missing");
        error["doc_url"] = json!("https://stripe.com/docs/error-codes/parameter-missing");
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// Reads the parameters async-stripe sends for a one-item payment session; `Err` names the first
/// required one missing, as Stripe's 400 does.
fn session_from_params(params: Vec<(String, String)>) -> Result<FakeSession, &'static str> {
    let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let map = |prefix: &str| -> BTreeMap<String, String> {
        params
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(prefix)?.strip_prefix('[')?.strip_suffix(']')?;
                Some((name.to_string(), v.clone()))
            })
            .collect()
    };
    const CURRENCY: &str = "line_items[0][price_data][currency]";
    const AMOUNT: &str = "line_items[0][price_data][unit_amount]";
    const NAME: &str = "line_items[0][price_data][product_data][name]";
    const QUANTITY: &str = "line_items[0][quantity]";

    let mode = get("mode").ok_or("mode")?;
    let success_url = get("success_url").ok_or("success_url")?;
    let currency = get(CURRENCY).ok_or(CURRENCY)?;
    let amount_cents = get(AMOUNT).and_then(|v| v.parse().ok()).ok_or(AMOUNT)?;
    let product_name = get(NAME).ok_or(NAME)?;
    let quantity = get(QUANTITY).and_then(|v| v.parse().ok()).ok_or(QUANTITY)?;
    let id = format!("cs_test_{}", random_suffix(58));
    Ok(FakeSession {
        url: format!("https://checkout.stripe.com/c/pay/{id}"),
        id,
        payment_intent: format!("pi_{}", random_suffix(24)),
        created: now(),
        amount_cents,
        currency,
        quantity,
        product_name,
        mode,
        submit_type: get("submit_type"),
        client_reference_id: get("client_reference_id"),
        metadata: map("metadata"),
        payment_intent_metadata: map("payment_intent_data[metadata]"),
        success_url,
        cancel_url: get("cancel_url").unwrap_or_default(),
        params,
    })
}

/// The Checkout Session object (API version 2023-10-16), open and unpaid as created, or complete and paid
/// as the completed-session webhook carries it.
fn session_object(s: &FakeSession, paid: bool) -> Value {
    let amount = s.amount_cents * i64::try_from(s.quantity).unwrap_or(1);
    // Two halves: one `json!` this large exceeds the macro's default recursion limit.
    let mut object = json!({
        "id": s.id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": { "enabled": false, "liability": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": s.cancel_url,
        "client_reference_id": s.client_reference_id,
        "client_secret": null,
        "consent": null,
        "consent_collection": null,
        "created": s.created,
        "currency": s.currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null,
                         "terms_of_service_acceptance": null },
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": if paid {
            json!({ "address": { "city": null, "country": "US", "line1": null, "line2": null,
                                 "postal_code": "94103", "state": null },
                    "email": "donor@example.com", "name": "Test Donor", "phone": null,
                    "tax_exempt": "none", "tax_ids": [] })
        } else {
            Value::Null
        },
        "customer_email": null,
        "expires_at": s.created + 86400,
        "invoice": null,
        "invoice_creation": { "enabled": false, "invoice_data": { "account_tax_ids": null, "custom_fields": null,
            "description": null, "footer": null, "issuer": null, "metadata": {}, "rendering_options": null } },
        "livemode": false
    });
    let rest = json!({
        "locale": null,
        "metadata": s.metadata,
        "mode": s.mode,
        "payment_intent": if paid { json!(s.payment_intent) } else { Value::Null },
        "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": if paid { "paid" } else { "unpaid" },
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_details": null,
        "shipping_options": [],
        "status": if paid { "complete" } else { "open" },
        "submit_type": s.submit_type,
        "subscription": null,
        "success_url": s.success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted",
        // Stripe clears the URL once the session is complete.
        "url": if paid { Value::Null } else { json!(s.url) }
    });
    if let (Some(object), Value::Object(rest)) = (object.as_object_mut(), rest) {
        object.extend(rest);
    }
    object
}

/// The Charge a paid session's PaymentIntent produced (not refunded yet). Without a recorded session
/// (a payment intent the test made up) it describes a $5 USD charge.
fn charge_object(payment_intent: &str, session: Option<&FakeSession>) -> Value {
    // Stripe's charge ids share the PaymentIntent's suffix.
    let suffix = payment_intent.strip_prefix("pi_").unwrap_or(payment_intent);
    let (amount, currency, metadata) = match session {
        Some(s) => (s.amount_cents, s.currency.clone(), s.payment_intent_metadata.clone()),
        None => (500, "usd".to_string(), BTreeMap::new()),
    };
    json!({
        "id": format!("ch_{suffix}"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "balance_transaction": format!("txn_{suffix}"),
        "billing_details": { "address": { "city": null, "country": "US", "line1": null, "line2": null,
                                          "postal_code": "94103", "state": null },
                             "email": "donor@example.com", "name": "Test Donor", "phone": null },
        "captured": true,
        "created": session.map_or_else(now, |s| s.created),
        "currency": currency,
        "customer": null,
        "description": null,
        "disputed": false,
        "livemode": false,
        "metadata": metadata,
        "outcome": { "network_status": "approved_by_network", "reason": null, "risk_level": "normal",
                     "seller_message": "Payment complete.", "type": "authorized" },
        "paid": true,
        "payment_intent": payment_intent,
        "payment_method": format!("pm_{}", random_suffix(24)),
        "payment_method_details": { "card": { "brand": "visa", "last4": "4242" }, "type": "card" },
        "receipt_url": format!("https://pay.stripe.com/receipts/payment/{suffix}"),
        "refunded": false,
        "status": "succeeded"
    })
}

/// `len` characters of Stripe-style id suffix (alphanumeric).
fn random_suffix(len: usize) -> String {
    let mut s = String::with_capacity(len + 32);
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::super::events::{Effect, parse_event};
    use super::super::signature::verify_signature;
    use super::*;

    async fn post(fake: &FakeStripe, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A bare HTTP/1.1 exchange, so this test does not depend on any HTTP client's encoding.
        let mut socket = tokio::net::TcpStream::connect(fake.addr).await.unwrap();
        let auth = key.map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let json = response.split_once("\r\n\r\n").unwrap().1;
        (status, serde_json::from_str(json).unwrap())
    }

    const FORM: &str = "mode=payment&success_url=https%3A%2F%2Fe.com%2Fok&cancel_url=https%3A%2F%2Fe.com%2Fno\
        &client_reference_id=acc&metadata[account_id]=acc&line_items[0][price_data][currency]=usd\
        &line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]=Donation\
        &line_items[0][quantity]=1";

    #[tokio::test]
    async fn answers_in_stripes_shapes() {
        let fake = FakeStripe::start().await;
        let (status, session) = post(&fake, "/v1/checkout/sessions", Some(FAKE_SECRET_KEY), FORM).await;
        assert_eq!(status, 200);
        assert_eq!(session["object"], "checkout.session");
        assert_eq!(session["payment_status"], "unpaid");
        assert_eq!(session["status"], "open");
        assert_eq!(session["payment_intent"], Value::Null);
        assert_eq!(session["metadata"]["account_id"], "acc");

        let (status, error) = post(&fake, "/v1/checkout/sessions", Some("sk_test_nope1234"), FORM).await;
        assert_eq!(status, 401);
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert_eq!(error["error"]["message"], format!("Invalid API Key provided: sk_test_{}1234", "*".repeat(24)));

        let (status, error) = post(&fake, "/v1/checkout/sessions", None, FORM).await;
        assert_eq!(status, 401);
        assert!(error["error"]["message"].as_str().unwrap().starts_with("You did not provide an API key"));

        let (status, error) = post(&fake, "/v1/checkout/sessions", Some(FAKE_SECRET_KEY), "mode=payment").await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["param"], "success_url");

        let (status, error) = post(&fake, "/v1/customers", Some(FAKE_SECRET_KEY), "").await;
        assert_eq!(status, 404);
        assert!(
            error["error"]["message"].as_str().unwrap().starts_with("Unrecognized request URL (POST: /v1/customers)")
        );

        assert_eq!(fake.sessions().len(), 1);
        assert_eq!(fake.request_count(), 4, "the unknown URL is not a create call");
    }

    #[tokio::test]
    async fn built_events_verify_and_parse_into_the_right_effects() {
        let fake = FakeStripe::start().await;
        let account = uuid::Uuid::new_v4().to_string();
        let form = FORM.replace("=acc", &format!("={account}"));
        post(&fake, "/v1/checkout/sessions", Some(FAKE_SECRET_KEY), &form).await;
        let session = fake.sessions().remove(0);
        let secret = vec!["whsec_fake".to_string()];

        let completed = fake.completed_event(&session);
        let (body, header) = FakeStripe::signed(&completed, "whsec_fake");
        let t = verify_signature(&body, &header, &secret, now(), 300).unwrap();
        assert!((now() - t).abs() <= 1);
        let parsed = parse_event(&body).unwrap();
        assert!(parsed.id.starts_with("evt_"));
        let Effect::Completed { checkout_session_id, payment_intent_id, account_id, amount_cents, currency, .. } =
            parsed.effect
        else {
            panic!("{:?}", parsed.effect)
        };
        assert_eq!(checkout_session_id, session.id);
        assert_eq!(payment_intent_id.as_deref(), Some(session.payment_intent.as_str()));
        assert_eq!(account_id.to_string(), account);
        assert_eq!((amount_cents, currency.as_str()), (500, "usd"));

        let again = fake.completed_event(&session);
        assert_ne!(again["id"], completed["id"], "event ids are unique");

        let async_ok = parse_event(&serde_json::to_vec(&fake.async_payment_succeeded_event(&session)).unwrap());
        assert!(matches!(async_ok.unwrap().effect, Effect::Completed { .. }));

        let refund = parse_event(&FakeStripe::signed(&fake.refund_event(&session.payment_intent), "k").0).unwrap();
        assert_eq!(refund.event_type, "charge.refunded");
        let Effect::Refunded { payment_intent_id, amount_refunded_cents: 500, fully_refunded: true, .. } =
            refund.effect
        else {
            panic!("{:?}", refund.effect)
        };
        assert_eq!(payment_intent_id, session.payment_intent);

        let dispute = parse_event(&FakeStripe::signed(&fake.dispute_event(&session.payment_intent), "k").0).unwrap();
        assert_eq!(
            dispute.effect,
            Effect::Disputed { payment_intent_id: session.payment_intent.clone(), at: dispute.created }
        );
    }

    #[test]
    fn signed_at_makes_stale_headers() {
        let (body, header) = FakeStripe::signed_at(&json!({ "id": "evt_1" }), "whsec_x", 1000);
        assert!(header.starts_with("t=1000,v1="));
        assert_eq!(verify_signature(&body, &header, &["whsec_x".into()], 1000, 300), Ok(1000));
        assert!(verify_signature(&body, &header, &["whsec_x".into()], now(), 300).is_err());
    }
}
