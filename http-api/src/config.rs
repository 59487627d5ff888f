//! API configuration: CLI flags with environment fallbacks, flattened into
//! the `trespasser serve` and `trespasser api` commands.

use std::time::Duration;

use clap::Args;

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Store URL: `postgres://...` (production) or `sqlite://path`. Without it,
    /// `serve` uses `sqlite://<data-dir>/trespasser.db`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most pooled database connections.
    #[arg(long, env = "TRESPASSER_DB_POOL", default_value_t = 16)]
    pub db_pool: u32,
    /// Access-token signing key, hex (at least 32 bytes). Without it, `serve`
    /// generates one into <data-dir>/access-key.
    #[arg(long, env = "TRESPASSER_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// Key id of --access-key.
    #[arg(long, env = "TRESPASSER_ACCESS_KEY_ID", default_value = "a1")]
    pub access_key_id: String,
    /// A previous access-token key still accepted during rotation, as `kid:hex`.
    #[arg(long, env = "TRESPASSER_ACCESS_KEY_PREVIOUS", hide_env_values = true)]
    pub access_key_previous: Option<String>,
    /// Access-token lifetime.
    #[arg(long, env = "TRESPASSER_ACCESS_TTL", default_value = "15m", value_parser = duration)]
    pub access_ttl: Duration,
    /// Refresh-token (session) lifetime.
    #[arg(long, env = "TRESPASSER_REFRESH_TTL", default_value = "30d", value_parser = duration)]
    pub refresh_ttl: Duration,
    /// Join-ticket lifetime (at most 60s).
    #[arg(long, env = "TRESPASSER_TICKET_TTL", default_value = "30s", value_parser = duration)]
    pub ticket_ttl: Duration,
    /// Origins allowed by CORS (the web frontend), comma-separated.
    #[arg(
        long,
        env = "TRESPASSER_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8080,http://127.0.0.1:8080"
    )]
    pub cors_origins: Vec<String>,
    /// Source ranges exempt from rate limits (CIDR, comma-separated). Default:
    /// loopback in `serve` (local load tests), none in `api`.
    #[arg(long, env = "TRESPASSER_RATE_LIMIT_EXEMPT", value_delimiter = ',')]
    pub rate_limit_exempt: Option<Vec<String>>,
    /// Proxies whose X-Forwarded-For is trusted for the client address (CIDR, comma-separated).
    #[arg(long, env = "TRESPASSER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Scale every rate limit by this factor (e.g. 0.1 in tests, 10 behind a CDN).
    #[arg(long, env = "TRESPASSER_RATE_LIMIT_SCALE", default_value_t = 1.0)]
    pub rate_limit_scale: f64,
    /// Per-request time limit.
    #[arg(long, env = "TRESPASSER_REQUEST_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Largest request body in bytes.
    #[arg(long, env = "TRESPASSER_MAX_BODY", default_value_t = 16 * 1024)]
    pub max_body: usize,
    /// Send Strict-Transport-Security (set when served over HTTPS).
    #[arg(long, env = "TRESPASSER_HSTS", default_value_t = false, action = clap::ArgAction::Set)]
    pub hsts: bool,
    /// Usernames that get the admin role when they register, comma-separated.
    #[arg(long, env = "TRESPASSER_ADMINS", value_delimiter = ',')]
    pub admins: Vec<String>,
    /// Stripe secret key (`sk_...`). Without it donations answer "not configured".
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe webhook signing secrets (`whsec_...`), comma-separated (several during rotation).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true, value_delimiter = ',')]
    pub stripe_webhook_secret: Vec<String>,
    /// Stripe API base URL (tests point it at a local fake).
    #[arg(long, env = "STRIPE_API_BASE", default_value = "https://api.stripe.com")]
    pub stripe_api_base: String,
    /// Donation amount in the currency's smallest unit.
    #[arg(long, env = "TRESPASSER_DONATION_AMOUNT", default_value_t = 500)]
    pub donation_amount: i64,
    /// Donation currency (ISO 4217, lower case).
    #[arg(long, env = "TRESPASSER_DONATION_CURRENCY", default_value = "usd")]
    pub donation_currency: String,
    /// Where Stripe sends the donor after paying / cancelling (the web frontend).
    #[arg(long, env = "TRESPASSER_DONATION_SUCCESS_URL", default_value = "http://localhost:8080/donate/thanks")]
    pub donation_success_url: String,
    #[arg(long, env = "TRESPASSER_DONATION_CANCEL_URL", default_value = "http://localhost:8080/donate")]
    pub donation_cancel_url: String,
    /// What a refund or dispute does to granted cosmetics: revoke (unless the
    /// donor has another paid donation) or keep.
    #[arg(long, env = "TRESPASSER_REFUND_POLICY", default_value = "revoke")]
    pub refund_policy: RefundPolicy,
    /// Monthly running cost in cents, for the break-even figures.
    #[arg(long, env = "TRESPASSER_MONTHLY_COST", default_value_t = 250_000)]
    pub monthly_cost_cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RefundPolicy {
    Revoke,
    Keep,
}
