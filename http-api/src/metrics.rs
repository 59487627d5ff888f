//! API metrics: requests by route and status, latency by route, store pool
//! usage, rate-limit refusals and stored match results.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct ApiMetrics {
    pub stripe_events: Family<OutcomeLabels, Counter>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub rate_limited: Family<ClassLabels, Counter>,
    pub pool_size: Gauge,
    pub pool_idle: Gauge,
    pub pool_max: Gauge,
    pub results_stored: Counter,
    pub results_duplicate: Counter,
    pub tickets_issued: Counter,
}

impl ApiMetrics {
    pub fn register(registry: &mut Registry) -> ApiMetrics {
        let m = ApiMetrics {
            stripe_events: Family::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))),
            rate_limited: Family::default(),
            pool_size: Gauge::default(),
            pool_idle: Gauge::default(),
            pool_max: Gauge::default(),
            results_stored: Counter::default(),
            results_duplicate: Counter::default(),
            tickets_issued: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("api");
        r.register("requests", "HTTP requests by method, route and status", m.requests.clone());
        r.register("request_duration_seconds", "HTTP request latency by route", m.latency.clone());
        r.register("rate_limited", "Requests refused by rate limits, by class", m.rate_limited.clone());
        r.register("db_pool_connections", "Open store connections", m.pool_size.clone());
        r.register("db_pool_idle", "Idle store connections", m.pool_idle.clone());
        r.register("db_pool_max", "Store pool size limit", m.pool_max.clone());
        r.register("match_results_stored", "Match results persisted", m.results_stored.clone());
        r.register("match_results_duplicate", "Match results reported again and ignored", m.results_duplicate.clone());
        r.register("stripe_events", "Stripe webhook events by outcome", m.stripe_events.clone());
        r.register("join_tickets_issued", "Join tickets issued", m.tickets_issued.clone());
        m
    }
}
