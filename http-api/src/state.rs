//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use directory::Directory;
use protocol::ticket::TicketKey;

use crate::auth::AccessKeys;
use crate::metrics::ApiMetrics;
use crate::ratelimit::{Cidr, RateLimiter};
use crate::store::Store;

/// Settings handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub ticket_ttl: Duration,
    /// Lower-case usernames granted the admin role at registration.
    pub admins: Vec<String>,
    pub trusted_proxies: Vec<Cidr>,
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
    pub settings: Settings,
    pub metrics: ApiMetrics,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
