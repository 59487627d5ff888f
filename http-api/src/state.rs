//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use directory::Directory;
use protocol::ticket::TicketKey;

use crate::auth::AccessKeys;
use crate::metrics::ApiMetrics;
use crate::payments::checkout::DonationConfig;
use crate::ratelimit::{Cidr, RateLimiter};
use crate::store::{RevokePolicy, Store};

/// Settings handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub ticket_ttl: Duration,
    /// Lower-case usernames granted the admin role at registration.
    pub admins: Vec<String>,
    pub trusted_proxies: Vec<Cidr>,
    /// For the break-even figures when donations are off.
    pub monthly_cost_cents: i64,
}

/// Donation settings; absent when no Stripe keys are configured.
pub struct Donations {
    pub checkout: DonationConfig,
    /// Webhook signing secrets (several during rotation).
    pub webhook_secrets: Vec<String>,
    pub policy: RevokePolicy,
    pub monthly_cost_cents: i64,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub directory: Directory,
    pub access: AccessKeys,
    /// Signs join tickets; nodes hold the same key.
    pub tickets: TicketKey,
    pub limiter: RateLimiter,
    pub donations: Option<Donations>,
    pub settings: Settings,
    pub metrics: ApiMetrics,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
