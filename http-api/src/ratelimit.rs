//! Request rate limits: per client IP for every request, and per account where the request is
//! authenticated, in three classes with their own quotas.
//!
//! Each (class, IP) and (class, account) pair is a GCRA bucket in a governor keyed limiter: `rate`
//! requests per period are replenished smoothly and up to `burst` may arrive at once. A refused
//! request gets the time until it would be allowed, rounded up to whole seconds for `Retry-After`.
//!
//! Keys are bounded in two ways: [`RateLimiter::cleanup`], which the API calls periodically, forgets
//! every key whose bucket is full again (indistinguishable from a new client), and a limiter that
//! grows past `max_tracked_keys` between cleanups sweeps itself. So memory follows recent activity,
//! not the number of clients ever seen.
//!
//! IPv6 clients are keyed by their /64 network, since one host usually controls a whole /64 and
//! could otherwise rotate addresses to escape its limit; IPv4-mapped IPv6 addresses count as IPv4.
//! Ranges in `exempt` (e.g. loopback during load tests in development) bypass the per-IP limits;
//! per-account limits still apply to them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which quota a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Everything not listed below: lobby browser, stats, `/v1/me`, ...
    General,
    /// Login, register and refresh: the endpoints password guessing and account farming use.
    Auth,
    /// Matchmaking and joining a lobby: each one reserves a seat and mints a join ticket.
    Matchmake,
}

impl Class {
    /// A stable lower-case name, for metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Class::General => "general",
            Class::Auth => "auth",
            Class::Matchmake => "matchmake",
        }
    }
}

/// The period a [`Limit`]'s rate is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    /// Per second.
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
}

/// `rate` requests per `per`, replenished evenly, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Sustained requests per period; at least 1.
    pub rate: u32,
    /// The period.
    pub per: Per,
    /// Requests allowed at once after a quiet spell; at least 1.
    pub burst: u32,
}

impl Limit {
    /// `rate` per second, bursts of `burst`.
    pub const fn per_second(rate: u32, burst: u32) -> Self {
        Limit { rate, per: Per::Second, burst }
    }

    /// `rate` per minute, bursts of `burst`.
    pub const fn per_minute(rate: u32, burst: u32) -> Self {
        Limit { rate, per: Per::Minute, burst }
    }

    /// `rate` per hour, bursts of `burst`.
    pub const fn per_hour(rate: u32, burst: u32) -> Self {
        Limit { rate, per: Per::Hour, burst }
    }

    fn quota(&self, which: &'static str) -> Result<Quota, RateLimitConfigError> {
        let zero = || RateLimitConfigError::Zero(which);
        let rate = NonZeroU32::new(self.rate).ok_or_else(zero)?;
        let burst = NonZeroU32::new(self.burst).ok_or_else(zero)?;
        let period = match self.per {
            Per::Second => Duration::from_secs(1),
            Per::Minute => Duration::from_secs(60),
            Per::Hour => Duration::from_secs(3600),
        };
        // One request is replenished every period/rate; a rate above a billion per second rounds to
        // a zero interval, which governor cannot represent.
        Ok(Quota::with_period(period / rate.get()).ok_or(RateLimitConfigError::TooFast(which))?.allow_burst(burst))
    }
}

/// The limits of one [`Class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassLimits {
    /// Per client IP (IPv6 per /64), authenticated or not.
    pub per_ip: Limit,
    /// Per account, for authenticated requests; `None` for no per-account limit.
    pub per_account: Option<Limit>,
}

/// All rate limits. `Default` is the production setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// [`Class::General`]: default 20/s burst 40 per IP, 10/s burst 20 per account.
    pub general: ClassLimits,
    /// [`Class::Auth`]: default 10/min burst 5 per IP and per account. Generous for people (a typo
    /// or two, a refresh every 15 minutes), slow for password guessing: 600 guesses an hour per IP.
    pub auth: ClassLimits,
    /// [`Class::Matchmake`]: default 10/s burst 20 per IP (a household or NAT shares an IP) and
    /// 2/s burst 5 per account.
    pub matchmake: ClassLimits,
    /// Client ranges that bypass every limit. Empty in production; development load tests add
    /// loopback ([`RateLimitConfig::with_loopback_exempt`]).
    pub exempt: Vec<Cidr>,
    /// A keyed limiter holding more keys than this sweeps out idle ones without waiting for
    /// [`RateLimiter::cleanup`]. Default 100,000 (a few MB per limiter).
    pub max_tracked_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            general: ClassLimits { per_ip: Limit::per_second(20, 40), per_account: Some(Limit::per_second(10, 20)) },
            auth: ClassLimits { per_ip: Limit::per_minute(10, 5), per_account: Some(Limit::per_minute(10, 5)) },
            matchmake: ClassLimits { per_ip: Limit::per_second(10, 20), per_account: Some(Limit::per_second(2, 5)) },
            exempt: Vec::new(),
            max_tracked_keys: 100_000,
        }
    }
}

impl RateLimitConfig {
    /// Exempts 127.0.0.0/8 and ::1, so a local load generator is not throttled. Development only.
    pub fn with_loopback_exempt(mut self) -> Self {
        self.exempt.push(Cidr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("valid prefix"));
        self.exempt.push(Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).expect("valid prefix"));
        self
    }
}

/// A rate limit configuration that cannot be enforced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitConfigError {
    /// A rate or burst of zero.
    #[error("rate limit {0}: rate and burst must be at least 1")]
    Zero(&'static str),
    /// A rate so high that its replenish interval is below a nanosecond.
    #[error("rate limit {0}: rate is too high")]
    TooFast(&'static str),
}

// How many checks pass between looks at a limiter's size (looking takes a lock per map shard).
const SWEEP_EVERY: u32 = 1024;

struct Keyed<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU32,
}

impl<K: std::hash::Hash + Eq + Clone> Keyed<K> {
    fn new(limit: Limit, which: &'static str) -> Result<Self, RateLimitConfigError> {
        Ok(Keyed { limiter: DefaultKeyedRateLimiter::keyed(limit.quota(which)?), checks: AtomicU32::new(0) })
    }

    fn check(&self, key: &K, max_keys: usize) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0 && self.limiter.len() > max_keys {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| retry_after(not_until.wait_time_from(self.limiter.clock().now())))
    }

    fn cleanup(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

struct ClassLimiter {
    ip: Keyed<IpAddr>,
    account: Option<Keyed<Uuid>>,
}

impl ClassLimiter {
    fn new(
        limits: &ClassLimits,
        ip_name: &'static str,
        account_name: &'static str,
    ) -> Result<Self, RateLimitConfigError> {
        Ok(ClassLimiter {
            ip: Keyed::new(limits.per_ip, ip_name)?,
            account: limits.per_account.map(|l| Keyed::new(l, account_name)).transpose()?,
        })
    }
}

/// The process's rate limiters; share one behind an `Arc`.
pub struct RateLimiter {
    general: ClassLimiter,
    auth: ClassLimiter,
    matchmake: ClassLimiter,
    exempt: Vec<Cidr>,
    max_tracked_keys: usize,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("exempt", &self.exempt).field("tracked_keys", &self.len()).finish()
    }
}

impl RateLimiter {
    /// Builds the limiters; fails on a zero or absurd rate or burst.
    pub fn new(config: &RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        Ok(RateLimiter {
            general: ClassLimiter::new(&config.general, "general.per_ip", "general.per_account")?,
            auth: ClassLimiter::new(&config.auth, "auth.per_ip", "auth.per_account")?,
            matchmake: ClassLimiter::new(&config.matchmake, "matchmake.per_ip", "matchmake.per_account")?,
            exempt: config.exempt.clone(),
            max_tracked_keys: config.max_tracked_keys,
        })
    }

    fn class(&self, class: Class) -> &ClassLimiter {
        match class {
            Class::General => &self.general,
            Class::Auth => &self.auth,
            Class::Matchmake => &self.matchmake,
        }
    }

    /// Whether `ip` is in an exempt range.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|cidr| cidr.contains(ip))
    }

    /// Counts one request of `class` from `ip` (and `account`, when authenticated). `Err` carries
    /// the `Retry-After`: whole seconds, at least one, the longer of the two limits' waits.
    ///
    /// Both buckets are checked even when the first refuses, so the answer names the longer wait; a
    /// bucket that allowed the request has spent a token on it, which only matters to clients
    /// already over a limit.
    pub fn check(&self, class: Class, ip: IpAddr, account: Option<Uuid>) -> Result<(), Duration> {
        let limiter = self.class(class);
        // Exempt sources skip the per-IP bucket only: each account keeps its
        // own limit even behind an exempt address (a load test, a proxy).
        let by_ip = if self.is_exempt(ip) { Ok(()) } else { limiter.ip.check(&ip_key(ip), self.max_tracked_keys) };
        let by_account = match (account, &limiter.account) {
            (Some(id), Some(keyed)) => keyed.check(&id, self.max_tracked_keys),
            _ => Ok(()),
        };
        match (by_ip, by_account) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(wait), Ok(())) | (Ok(()), Err(wait)) => Err(wait),
        }
    }

    /// Forgets every key whose bucket has refilled and releases the freed capacity. Call it
    /// periodically (every minute or so).
    pub fn cleanup(&self) {
        for limiter in [&self.general, &self.auth, &self.matchmake] {
            limiter.ip.cleanup();
            if let Some(account) = &limiter.account {
                account.cleanup();
            }
        }
    }

    /// Keys tracked over all limiters (approximate while requests are in flight).
    pub fn len(&self) -> usize {
        [&self.general, &self.auth, &self.matchmake]
            .iter()
            .map(|l| l.ip.limiter.len() + l.account.as_ref().map_or(0, |a| a.limiter.len()))
            .sum()
    }

    /// Whether no keys are tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key a client IP is limited under: IPv4 as is (also when IPv4-mapped), IPv6 by /64.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
    }
}

/// `Retry-After` wants whole seconds; rounding down could tell a client to retry too early, and a
/// zero would invite an immediate retry.
fn retry_after(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// An IPv4 or IPv6 network, such as `127.0.0.0/8` or `::1/128`. Host bits are cleared on parsing,
/// so `10.1.2.3/8` means `10.0.0.0/8`. Serializes as its string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A string that is not a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part is not an IP address.
    #[error("{0:?} is not an IP address or CIDR range")]
    Address(String),
    /// The prefix length is not a number within the address's bit width.
    #[error("{0:?} has an invalid prefix length")]
    Prefix(String),
}

/// Parses `addr/prefix`, or a bare address as a single-host range (/32 or /128).
pub fn parse_cidr(s: &str) -> Result<Cidr, CidrError> {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| CidrError::Address(s.to_owned()))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        // Digits only: `u8::from_str` would also take "+8".
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().map_err(|_| CidrError::Prefix(s.to_owned()))?
        }
        Some(_) => return Err(CidrError::Prefix(s.to_owned())),
    };
    Cidr::new(addr, prefix).map_err(|_| CidrError::Prefix(s.to_owned()))
}

impl Cidr {
    /// The range of `addr` with `prefix` leading bits; host bits are cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let network = match addr {
            IpAddr::V4(v4) if prefix <= 32 => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
            IpAddr::V6(v6) if prefix <= 128 => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
            _ => return Err(CidrError::Prefix(format!("{addr}/{prefix}"))),
        };
        Ok(Cidr { network, prefix })
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as dual-stack
    /// sockets report IPv4 clients) also matches the IPv4 range it maps to.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_exact(ip) || self.contains_exact(ip.to_canonical())
    }

    fn contains_exact(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_cidr(s)
    }
}

impl TryFrom<String> for Cidr {
    type Error = CidrError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        parse_cidr(&s)
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> String {
        cidr.to_string()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn production() -> RateLimiter {
        RateLimiter::new(&RateLimitConfig::default()).unwrap()
    }

    /// Calls `check` until it refuses; returns how many were allowed and the Retry-After.
    fn exhaust(rl: &RateLimiter, class: Class, ip: IpAddr, account: Option<Uuid>) -> (u32, Duration) {
        for allowed in 0..10_000 {
            if let Err(wait) = rl.check(class, ip, account) {
                return (allowed, wait);
            }
        }
        panic!("limit never tripped");
    }

    #[test]
    fn production_defaults() {
        let c = RateLimitConfig::default();
        assert_eq!(c.general.per_ip, Limit::per_second(20, 40));
        assert_eq!(c.general.per_account, Some(Limit::per_second(10, 20)));
        assert_eq!(c.auth.per_ip, Limit::per_minute(10, 5));
        assert_eq!(c.matchmake.per_ip, Limit::per_second(10, 20));
        assert_eq!(c.matchmake.per_account, Some(Limit::per_second(2, 5)));
        assert!(c.exempt.is_empty(), "production exempts nobody");
        assert!(production().is_empty());
    }

    #[test]
    fn ip_limit_trips_after_burst_with_retry_after() {
        let rl = production();
        let (allowed, wait) = exhaust(&rl, Class::Auth, v4(203, 0, 113, 7), None);
        assert_eq!(allowed, 5);
        // 10 per minute: the next token is about 6 seconds away.
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(6), "{wait:?}");
        assert_eq!(wait.subsec_nanos(), 0, "whole seconds");

        let (allowed, wait) = exhaust(&rl, Class::General, v4(203, 0, 113, 7), None);
        // The burst, plus perhaps a token replenished while the loop ran.
        assert!((40..=42).contains(&allowed), "{allowed}");
        // 50 ms to the next token rounds up to one second, never zero.
        assert_eq!(wait, Duration::from_secs(1));

        let (allowed, _) = exhaust(&rl, Class::Matchmake, v4(203, 0, 113, 7), None);
        assert!((20..=22).contains(&allowed), "{allowed}");
    }

    #[test]
    fn clients_and_classes_are_independent() {
        let rl = production();
        exhaust(&rl, Class::Auth, v4(198, 51, 100, 1), None);
        assert!(rl.check(Class::Auth, v4(198, 51, 100, 1), None).is_err());
        assert!(rl.check(Class::Auth, v4(198, 51, 100, 2), None).is_ok());
        assert!(rl.check(Class::General, v4(198, 51, 100, 1), None).is_ok());
        assert!(rl.check(Class::Matchmake, v4(198, 51, 100, 1), None).is_ok());
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let rl = production();
        exhaust(&rl, Class::Auth, ip("2001:db8:1:2::1"), None);
        // Another address in the same /64 shares the bucket; the next /64 does not.
        assert!(rl.check(Class::Auth, ip("2001:db8:1:2:ffff::9"), None).is_err());
        assert!(rl.check(Class::Auth, ip("2001:db8:1:3::1"), None).is_ok());

        exhaust(&rl, Class::Auth, v4(192, 0, 2, 1), None);
        assert!(rl.check(Class::Auth, ip("::ffff:192.0.2.1"), None).is_err());
        assert_eq!(ip_key(ip("::ffff:192.0.2.1")), v4(192, 0, 2, 1));
        assert_eq!(ip_key(ip("2001:db8::1:2:3:4")), ip("2001:db8::"));
    }

    #[test]
    fn per_account_limit_is_independent_of_ip() {
        let rl = production();
        let account = Uuid::new_v4();
        // Five matchmakes from five addresses: the account's burst is spent, no IP's is.
        for i in 0..5 {
            assert!(rl.check(Class::Matchmake, v4(10, 0, 0, i), Some(account)).is_ok());
        }
        assert!(rl.check(Class::Matchmake, v4(10, 0, 0, 99), Some(account)).is_err());
        // The same address still serves another account, and unauthenticated requests.
        assert!(rl.check(Class::Matchmake, v4(10, 0, 0, 99), Some(Uuid::new_v4())).is_ok());
        assert!(rl.check(Class::Matchmake, v4(10, 0, 0, 99), None).is_ok());
    }

    #[test]
    fn longer_wait_wins_and_missing_account_limit_is_ignored() {
        let config = RateLimitConfig {
            general: ClassLimits { per_ip: Limit::per_minute(1, 1), per_account: Some(Limit::per_hour(1, 1)) },
            auth: ClassLimits { per_ip: Limit::per_minute(1, 1), per_account: None },
            ..RateLimitConfig::default()
        };
        let rl = RateLimiter::new(&config).unwrap();
        let account = Some(Uuid::new_v4());
        assert!(rl.check(Class::General, v4(10, 1, 1, 1), account).is_ok());
        let wait = rl.check(Class::General, v4(10, 1, 1, 1), account).unwrap_err();
        assert!(wait > Duration::from_secs(3000), "the account's hour, not the IP's minute: {wait:?}");

        assert!(rl.check(Class::Auth, v4(10, 1, 1, 2), account).is_ok());
        assert!(rl.check(Class::Auth, v4(10, 1, 1, 3), account).is_ok(), "no per-account auth limit configured");
    }

    #[test]
    fn exempt_ranges_bypass_limits_and_leave_no_state() {
        let rl = RateLimiter::new(&RateLimitConfig::default().with_loopback_exempt()).unwrap();
        for _ in 0..1000 {
            assert!(rl.check(Class::Auth, v4(127, 0, 0, 1), None).is_ok());
            assert!(rl.check(Class::Auth, ip("::1"), None).is_ok());
            assert!(rl.check(Class::Auth, ip("::ffff:127.0.0.2"), None).is_ok());
        }
        assert!(rl.is_empty());
        assert!(rl.is_exempt(v4(127, 255, 0, 1)));
        assert!(!rl.is_exempt(v4(128, 0, 0, 1)));
        let (allowed, _) = exhaust(&rl, Class::Auth, v4(192, 0, 2, 50), None);
        assert_eq!(allowed, 5);
        // An account behind an exempt address still has its own limit.
        let (allowed, _) = exhaust(&rl, Class::Matchmake, v4(127, 0, 0, 1), Some(Uuid::from_u128(7)));
        assert_eq!(allowed, 5);
    }

    #[test]
    fn cleanup_forgets_idle_keys_and_keeps_limited_ones() {
        let config = RateLimitConfig {
            general: ClassLimits { per_ip: Limit::per_second(1000, 1), per_account: Some(Limit::per_second(1000, 1)) },
            ..RateLimitConfig::default()
        };
        let rl = RateLimiter::new(&config).unwrap();
        for i in 0..200u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            assert!(rl.check(Class::General, addr, Some(Uuid::new_v4())).is_ok());
        }
        exhaust(&rl, Class::Auth, v4(192, 0, 2, 1), None);
        assert_eq!(rl.len(), 401);
        // Each general bucket refills within a millisecond.
        std::thread::sleep(Duration::from_millis(50));
        rl.cleanup();
        // Only the exhausted auth bucket is still distinguishable from a new client.
        assert_eq!(rl.len(), 1);
        assert!(rl.check(Class::Auth, v4(192, 0, 2, 1), None).is_err());
    }

    #[test]
    fn oversized_limiter_sweeps_itself() {
        let config = RateLimitConfig {
            general: ClassLimits { per_ip: Limit::per_second(1000, 1), per_account: None },
            max_tracked_keys: 10,
            ..RateLimitConfig::default()
        };
        let rl = RateLimiter::new(&config).unwrap();
        let check =
            |i: u32| assert!(rl.check(Class::General, IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), None).is_ok());
        (0..1500).for_each(check);
        std::thread::sleep(Duration::from_millis(50));
        // The sweep at the 2049th check drops the first 1500 keys, which are idle by now.
        (1500..3000).for_each(check);
        assert!(rl.len() <= 1500, "{}", rl.len());
    }

    #[test]
    fn invalid_limits_are_refused() {
        let zero_rate = RateLimitConfig {
            auth: ClassLimits { per_ip: Limit::per_minute(0, 5), per_account: None },
            ..RateLimitConfig::default()
        };
        assert_eq!(RateLimiter::new(&zero_rate).unwrap_err(), RateLimitConfigError::Zero("auth.per_ip"));
        let zero_burst = RateLimitConfig {
            matchmake: ClassLimits { per_ip: Limit::per_second(1, 1), per_account: Some(Limit::per_second(1, 0)) },
            ..RateLimitConfig::default()
        };
        assert_eq!(RateLimiter::new(&zero_burst).unwrap_err(), RateLimitConfigError::Zero("matchmake.per_account"));
        let too_fast = RateLimitConfig {
            general: ClassLimits { per_ip: Limit::per_second(u32::MAX, 1), per_account: None },
            ..RateLimitConfig::default()
        };
        assert_eq!(RateLimiter::new(&too_fast).unwrap_err(), RateLimitConfigError::TooFast("general.per_ip"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(retry_after(Duration::from_millis(1)), Duration::from_secs(1));
        assert_eq!(retry_after(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(retry_after(Duration::from_millis(2001)), Duration::from_secs(3));
    }

    #[test]
    fn cidr_parsing() {
        let c = parse_cidr("127.0.0.0/8").unwrap();
        assert_eq!((c.network(), c.prefix()), (v4(127, 0, 0, 0), 8));
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr(" 192.0.2.7 ").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        assert_eq!(parse_cidr("2001:db8::dead:beef/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(parse_cidr("::/0").unwrap().to_string(), "::/0");
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().prefix(), 8);
        for bad in [
            "",
            "/8",
            "127.0.0.1/",
            "127.0.0.1/33",
            "::1/129",
            "127.0.0.1/+8",
            "127.0.0.1/ 8",
            "127.0.0.1/0008",
            "127.0.0/8",
            "[::1]/128",
            "fe80::1%eth0/64",
            "localhost",
            "1.2.3.4/8/8",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(parse_cidr("nope"), Err(CidrError::Address(_))));
        assert!(matches!(parse_cidr("1.2.3.4/99"), Err(CidrError::Prefix(_))));
    }

    #[test]
    fn cidr_matching() {
        let lo = parse_cidr("127.0.0.0/8").unwrap();
        assert!(lo.contains(v4(127, 0, 0, 1)) && lo.contains(v4(127, 255, 255, 255)));
        assert!(!lo.contains(v4(128, 0, 0, 0)) && !lo.contains(v4(126, 255, 255, 255)));
        assert!(lo.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped clients of a dual-stack socket");
        assert!(!lo.contains(ip("::1")));
        let net = parse_cidr("2001:db8::/32").unwrap();
        assert!(net.contains(ip("2001:db8:ffff::1")) && !net.contains(ip("2001:db9::1")));
        assert!(!net.contains(v4(32, 1, 13, 184)));
        assert!(parse_cidr("0.0.0.0/0").unwrap().contains(v4(8, 8, 8, 8)));
        assert!(parse_cidr("::/0").unwrap().contains(ip("2001:db8::1")));
        let host = parse_cidr("192.0.2.7").unwrap();
        assert!(host.contains(v4(192, 0, 2, 7)) && !host.contains(v4(192, 0, 2, 8)));
    }

    #[test]
    fn config_round_trips_through_serde() {
        let config = RateLimitConfig::default().with_loopback_exempt();
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"127.0.0.0/8\"") && json.contains("\"minute\""), "{json}");
        assert_eq!(serde_json::from_str::<RateLimitConfig>(&json).unwrap(), config);
        assert!(serde_json::from_str::<Cidr>("\"300.0.0.0/8\"").is_err());
        let partial: RateLimitConfig = serde_json::from_str(r#"{"exempt": ["10.0.0.0/8"]}"#).unwrap();
        assert_eq!(partial.auth, RateLimitConfig::default().auth);
    }

    proptest! {
        #[test]
        fn cidr_parser_never_panics(s in "\\PC{0,48}") {
            let _ = parse_cidr(&s);
        }

        #[test]
        fn cidr_contains_its_network_and_display_round_trips(bits in any::<u128>(), prefix in 0u8..=128) {
            let cidr = Cidr::new(IpAddr::V6(Ipv6Addr::from(bits)), prefix).unwrap();
            prop_assert!(cidr.contains(IpAddr::V6(Ipv6Addr::from(bits))));
            prop_assert_eq!(parse_cidr(&cidr.to_string()).unwrap(), cidr);
        }
    }
}
