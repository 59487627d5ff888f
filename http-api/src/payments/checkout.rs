//! Creating the Stripe Checkout Session a donation starts with.
//!
//! One call to `POST /v1/checkout/sessions` through async-stripe: a payment-mode session with one line
//! item priced inline (no Product or Price objects need to exist in the Stripe account), the account in
//! both `client_reference_id` and `metadata` (the completed-session webhook reads them back), and the
//! same metadata on the PaymentIntent so refunds and disputes are traceable in Stripe's dashboard.

use std::collections::HashMap;
use std::time::Duration;

use stripe::{
    CheckoutSessionMode, CheckoutSessionSubmitType, Client, CreateCheckoutSession, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionLineItemsPriceDataProductData,
    CreateCheckoutSessionPaymentIntentData, Currency, ErrorType, StripeError,
};
use uuid::Uuid;

/// Stripe's production API.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";
/// The plan's donation: $5.
pub const DEFAULT_AMOUNT_CENTS: i64 = 500;
pub const DEFAULT_CURRENCY: &str = "usd";
pub const DEFAULT_PRODUCT_NAME: &str = "Trespasser supporter donation";
/// How long one create call may take. async-stripe's hyper client has no timeout of its own, and a
/// player waits on this call, so a black-holed connection must fail rather than hang.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// How donations are charged. Holds the secret key: never log it (its `Debug` redacts the key).
#[derive(Clone)]
pub struct DonationConfig {
    /// `sk_test_...` or `sk_live_...` (or a restricted `rk_...` key allowed to write Checkout Sessions).
    pub secret_key: String,
    /// Stripe's API root, [`STRIPE_API_BASE`]; tests point it at [`super::fake::FakeStripe`]. Only the
    /// scheme, host and port are used: async-stripe replaces the path with `/v1/...`.
    pub api_base: String,
    /// Smallest currency unit (cents).
    pub amount_cents: i64,
    /// Lowercase ISO 4217 code that Stripe supports, e.g. `usd`.
    pub currency: String,
    /// What the Checkout page shows the donor.
    pub product_name: String,
    /// Where Stripe sends the donor after paying. May contain Stripe's `{CHECKOUT_SESSION_ID}`.
    pub success_url: String,
    /// Where Stripe sends the donor who backs out.
    pub cancel_url: String,
    /// Limit on one Stripe call, [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl DonationConfig {
    /// The default donation ($5 USD against Stripe's production API) for `secret_key`.
    pub fn new(secret_key: impl Into<String>, success_url: impl Into<String>, cancel_url: impl Into<String>) -> Self {
        DonationConfig {
            secret_key: secret_key.into(),
            api_base: STRIPE_API_BASE.to_string(),
            amount_cents: DEFAULT_AMOUNT_CENTS,
            currency: DEFAULT_CURRENCY.to_string(),
            product_name: DEFAULT_PRODUCT_NAME.to_string(),
            success_url: success_url.into(),
            cancel_url: cancel_url.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Checks everything that can be checked without calling Stripe, so a bad configuration fails at
    /// startup instead of on a player's first donation. [`create_checkout_session`] checks again.
    pub fn validate(&self) -> Result<(), PaymentError> {
        self.checked_currency().map(drop)
    }

    fn checked_currency(&self) -> Result<Currency, PaymentError> {
        let config = |detail: String| Err(PaymentError::Config(detail));
        if self.secret_key.trim().is_empty() {
            return config("the Stripe secret key is empty".into());
        }
        // async-stripe's `Client::from_url` panics on a URL it cannot parse; parse it first with the same
        // parser (the `url` crate) so a typo is an error, not a crash.
        match url::Url::parse(&self.api_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => return config(format!("the Stripe API base {:?} is not an http(s) URL", self.api_base)),
        }
        if self.amount_cents <= 0 {
            return config(format!("the donation amount must be positive, not {}", self.amount_cents));
        }
        if self.product_name.trim().is_empty() {
            return config("the donation product name is empty".into());
        }
        for (name, value) in [("success", &self.success_url), ("cancel", &self.cancel_url)] {
            if !url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return config(format!("the donation {name} URL {value:?} is not an absolute http(s) URL"));
            }
        }
        if self.timeout.is_zero() {
            return config("the Stripe timeout must not be zero".into());
        }
        self.currency.parse::<Currency>().or_else(|_| {
            config(format!("{:?} is not a currency Stripe supports (use a lowercase ISO code)", self.currency))
        })
    }
}

impl std::fmt::Debug for DonationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The prefix says which kind of key is configured (test or live) without revealing it.
        let kind = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
            .into_iter()
            .find(|prefix| self.secret_key.starts_with(prefix))
            .unwrap_or("");
        f.debug_struct("DonationConfig")
            .field("secret_key", &format_args!("{kind}<redacted>"))
            .field("api_base", &self.api_base)
            .field("amount_cents", &self.amount_cents)
            .field("currency", &self.currency)
            .field("product_name", &self.product_name)
            .field("success_url", &self.success_url)
            .field("cancel_url", &self.cancel_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A created Checkout Session: send the donor to `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_...`; the completed-session webhook names it again.
    pub id: String,
    /// The hosted Checkout page.
    pub url: String,
}

/// Why a Checkout Session could not be created. Messages are safe to log; none contains the key.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The donation configuration is unusable (fix the deployment).
    #[error("donation configuration: {0}")]
    Config(String),
    /// Stripe refused the secret key (401) or its permissions (403).
    #[error("Stripe rejected the API key (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// Stripe refused the request's parameters, e.g. an amount below its minimum.
    #[error("Stripe rejected the request (HTTP {status}): {message}")]
    InvalidRequest { status: u16, message: String },
    /// Stripe asked us to slow down (429).
    #[error("Stripe is rate limiting requests: {0}")]
    RateLimited(String),
    /// Stripe failed on its side (5xx) or answered with an error we do not classify.
    #[error("Stripe failed (HTTP {status}): {message}")]
    Upstream { status: u16, message: String },
    /// Stripe could not be reached (DNS, connection refused, TLS, connection reset).
    #[error("could not reach Stripe: {0}")]
    Network(String),
    /// Stripe did not answer within the configured timeout.
    #[error("Stripe did not answer within {0:?}")]
    Timeout(Duration),
    /// Stripe answered with something that is not the expected object or error.
    #[error("unexpected response from Stripe: {0}")]
    InvalidResponse(String),
    /// The request could not be built (a bug, not a Stripe problem).
    #[error("could not build the Stripe request: {0}")]
    Internal(String),
}

impl PaymentError {
    /// True when trying again later may succeed (the API answers 503 rather than 500 then).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PaymentError::RateLimited(_)
                | PaymentError::Upstream { .. }
                | PaymentError::Network(_)
                | PaymentError::Timeout(_)
        )
    }
}

/// Creates a Checkout Session for one donation by `account_id` (shown in Stripe as `username`).
pub async fn create_checkout_session(
    cfg: &DonationConfig,
    account_id: Uuid,
    username: &str,
) -> Result<CheckoutSession, PaymentError> {
    let currency = cfg.checked_currency()?;
    let client = Client::from_url(cfg.api_base.as_str(), cfg.secret_key.as_str());

    let account = account_id.to_string();
    let metadata =
        HashMap::from([("account_id".to_string(), account.clone()), ("username".to_string(), username.into())]);
    let mut params = CreateCheckoutSession::new();
    params.mode = Some(CheckoutSessionMode::Payment);
    // Labels Checkout's button "Donate" instead of "Pay".
    params.submit_type = Some(CheckoutSessionSubmitType::Donate);
    params.client_reference_id = Some(&account);
    params.metadata = Some(metadata.clone());
    params.success_url = Some(&cfg.success_url);
    params.cancel_url = Some(&cfg.cancel_url);
    params.line_items = Some(vec![CreateCheckoutSessionLineItems {
        price_data: Some(CreateCheckoutSessionLineItemsPriceData {
            currency,
            unit_amount: Some(cfg.amount_cents),
            product_data: Some(CreateCheckoutSessionLineItemsPriceDataProductData {
                name: cfg.product_name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        quantity: Some(1),
        ..Default::default()
    }]);
    params.payment_intent_data =
        Some(CreateCheckoutSessionPaymentIntentData { metadata: Some(metadata), ..Default::default() });

    let session = tokio::time::timeout(cfg.timeout, stripe::CheckoutSession::create(&client, params))
        .await
        .map_err(|_| PaymentError::Timeout(cfg.timeout))?
        .map_err(|e| map_stripe_error(e, cfg.timeout))?;
    let url = session.url.ok_or_else(|| PaymentError::InvalidResponse("the Checkout Session has no url".into()))?;
    Ok(CheckoutSession { id: session.id.to_string(), url })
}

fn map_stripe_error(e: StripeError, timeout: Duration) -> PaymentError {
    match e {
        StripeError::Stripe(e) => {
            let status = e.http_status;
            let message = e.message.unwrap_or_else(|| e.error_type.to_string());
            match (status, e.error_type) {
                (401 | 403, _) | (_, ErrorType::Authentication) => PaymentError::Auth { status, message },
                (429, _) | (_, ErrorType::RateLimit) => PaymentError::RateLimited(message),
                (500.., _) => PaymentError::Upstream { status, message },
                (_, ErrorType::InvalidRequest | ErrorType::Validation | ErrorType::Card) => {
                    PaymentError::InvalidRequest { status, message }
                }
                _ => PaymentError::Upstream { status, message },
            }
        }
        StripeError::ClientError(message) => PaymentError::Network(message),
        StripeError::Timeout => PaymentError::Timeout(timeout),
        // A body that does not deserialize: a proxy's HTML error page, or an API change.
        StripeError::JSONSerialize(e) => PaymentError::InvalidResponse(e.to_string()),
        // Our own parameters failed to encode, or async-stripe's version guard fired: a bug here.
        other => PaymentError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::fake::{FAKE_SECRET_KEY, FakeStripe};
    use super::*;

    fn config(fake: &FakeStripe) -> DonationConfig {
        DonationConfig {
            api_base: fake.base_url(),
            ..DonationConfig::new(
                FAKE_SECRET_KEY,
                "http://localhost:8080/donate/thanks?session={CHECKOUT_SESSION_ID}",
                "http://localhost:8080/donate",
            )
        }
    }

    #[tokio::test]
    async fn creates_a_session_the_fake_saw_with_the_donation_parameters() {
        let fake = FakeStripe::start().await;
        let cfg = config(&fake);
        let account = Uuid::new_v4();

        let session = create_checkout_session(&cfg, account, "pat").await.unwrap();

        assert!(session.id.starts_with("cs_test_"), "{}", session.id);
        assert_eq!(session.url, format!("https://checkout.stripe.com/c/pay/{}", session.id));
        let seen = fake.sessions();
        assert_eq!(seen.len(), 1);
        let s = &seen[0];
        assert_eq!(s.id, session.id);
        assert_eq!(s.url, session.url);
        assert_eq!(s.amount_cents, 500);
        assert_eq!(s.currency, "usd");
        assert_eq!(s.quantity, 1);
        assert_eq!(s.product_name, DEFAULT_PRODUCT_NAME);
        assert_eq!(s.mode, "payment");
        assert_eq!(s.submit_type.as_deref(), Some("donate"));
        assert_eq!(s.client_reference_id.as_deref(), Some(account.to_string().as_str()));
        let want = BTreeMap::from([("account_id".to_string(), account.to_string()), ("username".into(), "pat".into())]);
        assert_eq!(s.metadata, want);
        assert_eq!(s.payment_intent_metadata, want);
        assert_eq!(s.success_url, cfg.success_url);
        assert_eq!(s.cancel_url, cfg.cancel_url);
        assert!(s.payment_intent.starts_with("pi_"));
        // Exactly the fields we mean to send, in Stripe's bracket notation.
        // Metadata is a map on async-stripe's side, so its field order varies.
        let mut keys: Vec<&str> = s.params.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cancel_url",
                "client_reference_id",
                "line_items[0][price_data][currency]",
                "line_items[0][price_data][product_data][name]",
                "line_items[0][price_data][unit_amount]",
                "line_items[0][quantity]",
                "metadata[account_id]",
                "metadata[username]",
                "mode",
                "payment_intent_data[metadata][account_id]",
                "payment_intent_data[metadata][username]",
                "submit_type",
                "success_url",
            ]
        );
    }

    #[tokio::test]
    async fn amount_and_currency_follow_the_configuration() {
        let fake = FakeStripe::start().await;
        let cfg = DonationConfig { amount_cents: 1000, currency: "eur".into(), ..config(&fake) };
        create_checkout_session(&cfg, Uuid::new_v4(), "pat").await.unwrap();
        let s = &fake.sessions()[0];
        assert_eq!((s.amount_cents, s.currency.as_str()), (1000, "eur"));
    }

    #[tokio::test]
    async fn a_wrong_key_is_an_auth_error() {
        let fake = FakeStripe::start().await;
        let cfg = DonationConfig { secret_key: "sk_test_wrong".into(), ..config(&fake) };
        let err = create_checkout_session(&cfg, Uuid::new_v4(), "pat").await.unwrap_err();
        let PaymentError::Auth { status: 401, ref message } = err else { panic!("{err:?}") };
        assert!(message.starts_with("Invalid API Key provided"), "{message}");
        assert!(!err.to_string().contains("sk_test_wrong"), "the key leaks: {err}");
        assert!(!err.is_transient());
        assert!(fake.sessions().is_empty());
    }

    #[tokio::test]
    async fn stripe_failures_are_upstream_errors() {
        let fake = FakeStripe::start().await;
        fake.fail_with(Some(500));
        let err = create_checkout_session(&config(&fake), Uuid::new_v4(), "pat").await.unwrap_err();
        assert!(matches!(err, PaymentError::Upstream { status: 500, .. }), "{err:?}");
        assert!(err.is_transient());
        fake.fail_with(Some(429));
        let err = create_checkout_session(&config(&fake), Uuid::new_v4(), "pat").await.unwrap_err();
        assert!(matches!(err, PaymentError::RateLimited(_)), "{err:?}");
        fake.fail_with(Some(400));
        let err = create_checkout_session(&config(&fake), Uuid::new_v4(), "pat").await.unwrap_err();
        assert!(matches!(err, PaymentError::InvalidRequest { status: 400, .. }), "{err:?}");
        fake.fail_with(None);
        create_checkout_session(&config(&fake), Uuid::new_v4(), "pat").await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_stripe_is_a_network_error() {
        // Bind then drop a listener: nothing listens on that port any more, so the connect is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = DonationConfig {
            api_base: format!("http://127.0.0.1:{port}"),
            ..DonationConfig::new("sk_test_x", "http://localhost/ok", "http://localhost/cancel")
        };
        let err = create_checkout_session(&cfg, Uuid::new_v4(), "pat").await.unwrap_err();
        let PaymentError::Network(ref detail) = err else { panic!("{err:?}") };
        assert!(detail.contains("onnect"), "{detail}");
        assert!(err.to_string().starts_with("could not reach Stripe: "), "{err}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn a_silent_stripe_times_out() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let cfg = DonationConfig {
            api_base: format!("http://{addr}"),
            timeout: Duration::from_millis(200),
            ..DonationConfig::new("sk_test_x", "http://localhost/ok", "http://localhost/cancel")
        };
        let err = create_checkout_session(&cfg, Uuid::new_v4(), "pat").await.unwrap_err();
        assert!(matches!(err, PaymentError::Timeout(d) if d == Duration::from_millis(200)), "{err:?}");
        hold.abort();
    }

    #[tokio::test]
    async fn a_non_json_answer_is_an_invalid_response() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf).await;
            let body = "<html>502 Bad Gateway</html>";
            let reply = format!("HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            let _ = socket.write_all(reply.as_bytes()).await;
        });
        let cfg = DonationConfig {
            api_base: format!("http://{addr}"),
            ..DonationConfig::new("sk_test_x", "http://localhost/ok", "http://localhost/cancel")
        };
        let err = create_checkout_session(&cfg, Uuid::new_v4(), "pat").await.unwrap_err();
        assert!(matches!(err, PaymentError::InvalidResponse(_)), "{err:?}");
    }

    #[tokio::test]
    async fn bad_configuration_is_an_error_not_a_panic() {
        let good = DonationConfig::new("sk_test_x", "https://example.com/ok", "https://example.com/cancel");
        assert!(good.validate().is_ok());
        let cases = [
            DonationConfig { api_base: "not a url".into(), ..good.clone() },
            DonationConfig { api_base: "ftp://api.stripe.com".into(), ..good.clone() },
            DonationConfig { api_base: "".into(), ..good.clone() },
            DonationConfig { secret_key: " ".into(), ..good.clone() },
            DonationConfig { amount_cents: 0, ..good.clone() },
            DonationConfig { currency: "USD".into(), ..good.clone() },
            DonationConfig { currency: "xyz".into(), ..good.clone() },
            DonationConfig { product_name: "".into(), ..good.clone() },
            DonationConfig { success_url: "/relative".into(), ..good.clone() },
            DonationConfig { cancel_url: "javascript:alert(1)".into(), ..good.clone() },
            DonationConfig { timeout: Duration::ZERO, ..good.clone() },
        ];
        for cfg in cases {
            assert!(matches!(cfg.validate(), Err(PaymentError::Config(_))), "{cfg:?}");
            let err = create_checkout_session(&cfg, Uuid::new_v4(), "pat").await.unwrap_err();
            assert!(matches!(err, PaymentError::Config(_)), "{cfg:?}: {err:?}");
        }
    }

    #[test]
    fn debug_redacts_the_secret_key() {
        let cfg = DonationConfig::new("sk_live_51Hsecretsecret", "https://e.com/ok", "https://e.com/no");
        let shown = format!("{cfg:?}");
        assert!(shown.contains("sk_live_<redacted>"), "{shown}");
        assert!(!shown.contains("51Hsecret"), "{shown}");
        let odd = DonationConfig { secret_key: "no-prefix-secret".into(), ..cfg };
        assert!(!format!("{odd:?}").contains("no-prefix"));
    }
}
