//! Token buckets: per connection (datagram floods), per player (chat) and per
//! source IP (connection attempts), the last in a bounded table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// A token bucket refilled continuously at `rate` tokens per second up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket { tokens: burst, burst, rate, last: now }
    }

    /// Takes one token if available.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }
}

/// Per-IP buckets with a hard cap on tracked addresses. Buckets that have
/// refilled completely carry no information and are purged when the table
/// fills; if it is still full, unknown addresses are refused (fail closed).
#[derive(Debug)]
pub struct IpRateLimiter {
    buckets: HashMap<IpAddr, TokenBucket>,
    rate: f64,
    burst: f64,
    max_entries: usize,
}

impl IpRateLimiter {
    pub fn new(rate: f64, burst: f64, max_entries: usize) -> IpRateLimiter {
        IpRateLimiter { buckets: HashMap::new(), rate, burst, max_entries }
    }

    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.max_entries {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= self.max_entries {
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.entry(ip).or_insert_with(|| TokenBucket::new(rate, burst, now)).try_take(now)
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3.0, t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn ip_table_is_bounded_and_purges_idle_entries() {
        let t0 = Instant::now();
        let mut l = IpRateLimiter::new(1.0, 2.0, 2);
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        assert!(l.allow(ip(1), t0));
        assert!(l.allow(ip(2), t0));
        assert!(!l.allow(ip(3), t0), "table full of active buckets refuses new ips");
        assert!(l.allow(ip(3), t0 + Duration::from_secs(5)), "refilled buckets are purged");
        assert!(l.len() <= 2);
    }
}
