//! Builds the API: store, keys, limits, background jobs and the router.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::routing::{delete, get, post};
use directory::Directory;
use prometheus_client::registry::Registry;
use protocol::ticket::TicketKey;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::AccessKeys;
use crate::config::{ApiArgs, RefundPolicy};
use crate::error::ApiError;
use crate::metrics::ApiMetrics;
use crate::payments::checkout::DonationConfig;
use crate::ratelimit::{ClassLimits, Limit, RateLimitConfig, RateLimiter, parse_cidr};
use crate::routes;
use crate::state::{AppState, Donations, Inner, Settings};
use crate::store::RevokePolicy;
use crate::store::Store;

/// Embedded (`serve`: generated keys and SQLite allowed) or production (`api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Embedded,
    Production,
}

pub struct ApiOptions {
    pub role: Role,
    pub data_dir: std::path::PathBuf,
    /// Signs join tickets; the game nodes verify with the same key.
    pub ticket_key: TicketKey,
    pub directory: Directory,
}

/// A built API: its state, metrics registry and background jobs.
pub struct Api {
    pub state: AppState,
    pub registry: Arc<Registry>,
    jobs: Vec<JoinHandle<()>>,
    request_timeout: Duration,
    max_body: usize,
    cors_origins: Vec<String>,
    hsts: bool,
}

fn access_keys(args: &ApiArgs, opts: &ApiOptions) -> anyhow::Result<AccessKeys> {
    let (kid, secret) = match (&args.access_key, opts.role) {
        (Some(hex), _) => {
            (args.access_key_id.clone(), protocol::defaults::from_hex(hex).context("--access-key must be hex")?)
        }
        (None, Role::Embedded) => ("dev".to_string(), dev_secret(&opts.data_dir.join("access-key"))?),
        (None, Role::Production) => anyhow::bail!("the api role needs --access-key"),
    };
    let mut keys = AccessKeys::new(&kid, &secret).context("invalid access-token key")?;
    if let Some(prev) = &args.access_key_previous {
        let (kid, hex) = prev.split_once(':').context("--access-key-previous must be kid:hex")?;
        let secret = protocol::defaults::from_hex(hex).context("--access-key-previous must be kid:hex")?;
        keys = keys.with_previous(kid, &secret).context("invalid previous access-token key")?;
    }
    Ok(keys)
}

/// A generated secret kept in the data dir (embedded mode only).
fn dev_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => protocol::defaults::from_hex(&text).with_context(|| format!("{} is not hex", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 32] = rand::random();
            write_private(path, protocol::defaults::to_hex(&secret).as_bytes())?;
            Ok(secret.to_vec())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path).and_then(|mut f| f.write_all(bytes)).with_context(|| format!("writing {}", path.display()))
}

impl Api {
    pub async fn build(args: &ApiArgs, opts: ApiOptions) -> anyhow::Result<Api> {
        std::fs::create_dir_all(&opts.data_dir).with_context(|| format!("creating {}", opts.data_dir.display()))?;
        let url = match (&args.database_url, opts.role) {
            (Some(url), _) => url.clone(),
            (None, Role::Embedded) => format!("sqlite://{}", opts.data_dir.join("trespasser.db").display()),
            (None, Role::Production) => anyhow::bail!("the api role needs --database-url (DATABASE_URL)"),
        };
        let store = Store::connect(&url, args.db_pool).await.context("connecting to the store")?;
        store.migrate().await.context("applying migrations")?;
        let access = access_keys(args, &opts)?;
        let donations = donations(args)?;

        let exempt_default: &[&str] = match opts.role {
            Role::Embedded => &["127.0.0.0/8", "::1/128"],
            Role::Production => &[],
        };
        let exempt_src: Vec<String> = match &args.rate_limit_exempt {
            Some(v) => v.clone(),
            None => exempt_default.iter().map(|s| s.to_string()).collect(),
        };
        let exempt = exempt_src
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| parse_cidr(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--rate-limit-exempt: {e}"))?;
        let trusted_proxies = args
            .trusted_proxies
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| parse_cidr(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?;
        let mut limits = scaled(RateLimitConfig::default(), args.rate_limit_scale);
        limits.exempt = exempt;
        let limiter = RateLimiter::new(&limits).map_err(|e| anyhow::anyhow!("rate limits: {e}"))?;

        let mut registry = Registry::default();
        let metrics = ApiMetrics::register(&mut registry);
        let settings = Settings {
            access_ttl: args.access_ttl,
            refresh_ttl: args.refresh_ttl,
            ticket_ttl: args.ticket_ttl,
            admins: args.admins.iter().map(|a| a.trim().to_lowercase()).collect(),
            trusted_proxies,
            monthly_cost_cents: args.monthly_cost_cents,
        };
        let state = AppState(Arc::new(Inner {
            store,
            directory: opts.directory,
            access,
            tickets: opts.ticket_key,
            limiter,
            donations,
            settings,
            metrics,
        }));
        let jobs = vec![
            tokio::spawn(crate::jobs::store_results(state.clone())),
            tokio::spawn(crate::jobs::housekeeping(state.clone())),
        ];
        Ok(Api {
            state,
            registry: Arc::new(registry),
            jobs,
            request_timeout: args.request_timeout,
            max_body: args.max_body,
            cors_origins: args.cors_origins.clone(),
            hsts: args.hsts,
        })
    }

    /// The HTTP router. `extra_metrics` are rendered on /metrics after the
    /// API's own (the game node's, when both run in one process).
    pub fn router(&self, extra_metrics: Vec<Arc<Registry>>) -> Router {
        let mut registries = vec![self.registry.clone()];
        registries.extend(extra_metrics);
        let registries = Arc::new(registries);
        let v1 = Router::new()
            .route("/v1/auth/register", post(routes::auth::register))
            .route("/v1/auth/login", post(routes::auth::login))
            .route("/v1/auth/refresh", post(routes::auth::refresh))
            .route("/v1/auth/logout", post(routes::auth::logout))
            .route("/v1/me", get(routes::me::me))
            .route("/v1/me/sessions", get(routes::me::sessions))
            .route("/v1/me/sessions/{id}", delete(routes::me::revoke_session))
            .route("/v1/me/password", post(routes::me::change_password))
            .route("/v1/lobbies", get(routes::lobbies::list))
            .route("/v1/lobbies/{id}", get(routes::lobbies::get))
            .route("/v1/lobbies/{id}/join", post(routes::lobbies::join))
            .route("/v1/matchmake", post(routes::lobbies::matchmake))
            .route("/v1/players/{id}", get(routes::players::player))
            .route("/v1/players/{id}/matches", get(routes::players::matches))
            .route("/v1/leaderboard", get(routes::players::leaderboard))
            .route("/v1/cosmetics", get(routes::cosmetics::catalog))
            .route("/v1/me/cosmetics", get(routes::cosmetics::mine))
            .route("/v1/me/loadout", get(routes::cosmetics::get_loadout).put(routes::cosmetics::put_loadout))
            .route("/v1/donations/checkout", post(routes::donations::checkout))
            .route("/v1/me/donations", get(routes::donations::mine))
            .route("/v1/admin/revenue", get(routes::admin::revenue))
            .route_layer(axum::middleware::from_fn_with_state(self.state.clone(), crate::middleware::rate_limit))
            .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        // Stripe signs the raw body and its events can exceed the API's
        // small body limit, so the webhook has its own.
        let webhooks = Router::new()
            .route("/v1/webhooks/stripe", post(routes::donations::stripe_webhook))
            .layer(DefaultBodyLimit::max(WEBHOOK_MAX_BODY));
        let ops = Router::new()
            .route("/health", get(routes::ops::health))
            .route("/ready", get(routes::ops::ready))
            .route(
                "/metrics",
                get(move |State(state): State<AppState>| {
                    let registries = registries.clone();
                    async move { routes::ops::render_metrics(&state, &registries) }
                }),
            )
            .route(
                "/v1/openapi.json",
                get(|| async { axum::Json(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi()) }),
            );
        let mut router = v1
            .merge(webhooks)
            .merge(ops)
            .fallback(|| async { ApiError::not_found("NO_SUCH_ROUTE", "no such endpoint; see /v1/openapi.json") })
            .method_not_allowed_fallback(|| async {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    "method not allowed on this endpoint",
                )
            })
            .layer(axum::middleware::from_fn_with_state(self.state.clone(), crate::middleware::track))
            .layer(DefaultBodyLimit::max(self.max_body))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, self.request_timeout))
            .layer(cors(&self.cors_origins))
            .layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            ));
        if self.hsts {
            router = router.layer(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            ));
        }
        router.with_state(self.state.clone())
    }

    pub async fn shutdown(self) {
        for job in self.jobs {
            job.abort();
        }
        self.state.store.close().await;
    }
}

/// Largest webhook body accepted (Stripe events are a few KiB to tens of KiB).
const WEBHOOK_MAX_BODY: usize = 512 * 1024;

fn donations(args: &ApiArgs) -> anyhow::Result<Option<Donations>> {
    let Some(key) = args.stripe_secret_key.as_ref().filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let secrets: Vec<String> = args.stripe_webhook_secret.iter().filter(|s| !s.is_empty()).cloned().collect();
    anyhow::ensure!(!secrets.is_empty(), "STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not");
    let mut checkout =
        DonationConfig::new(key.clone(), args.donation_success_url.clone(), args.donation_cancel_url.clone());
    checkout.api_base = args.stripe_api_base.clone();
    checkout.amount_cents = args.donation_amount;
    checkout.currency = args.donation_currency.to_lowercase();
    checkout.validate().map_err(|e| anyhow::anyhow!("donation settings: {e}"))?;
    let policy = match args.refund_policy {
        RefundPolicy::Revoke => RevokePolicy::Revoke,
        RefundPolicy::Keep => RevokePolicy::Keep,
    };
    Ok(Some(Donations { checkout, webhook_secrets: secrets, policy, monthly_cost_cents: args.monthly_cost_cents }))
}

/// Every limit multiplied by `factor` (rates and bursts, at least 1).
fn scaled(mut c: RateLimitConfig, factor: f64) -> RateLimitConfig {
    let f = |l: Limit| Limit {
        rate: ((l.rate as f64 * factor).round() as u32).max(1),
        burst: ((l.burst as f64 * factor).round() as u32).max(1),
        ..l
    };
    let class = |c: ClassLimits| ClassLimits { per_ip: f(c.per_ip), per_account: c.per_account.map(f) };
    c.general = class(c.general);
    c.auth = class(c.auth);
    c.matchmake = class(c.matchmake);
    c
}

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}
