//! Counters and histograms shared by every bot of a run. Bots batch their
//! round-trip samples locally and merge them about once a second, so the
//! locks here are taken a few times per bot per second, not per packet.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::{HttpEndpoint, Percentiles, Rate, Report};

/// Bots with less playing time are left out of the snapshot-rate figures:
/// a rate over a fraction of a second says more about timing than the node.
pub const MIN_RATE_WINDOW: Duration = Duration::from_secs(1);

/// A histogram of microseconds from 1 µs to a minute (longer is recorded as
/// a minute), 3 significant digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(d.as_micros().clamp(1, u64::MAX as u128) as u64);
}

#[derive(Debug)]
pub struct Stats {
    bots_requested: u64,
    joined: AtomicU64,
    active: AtomicU64,
    inputs_sent: AtomicU64,
    snapshots_received: AtomicU64,
    disconnected: AtomicU64,
    lobbies_closed: AtomicU64,
    rejoins: AtomicU64,
    tick_rate: AtomicU64,
    http: Arc<HttpStats>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    join: Histogram<u64>,
    rtt: Histogram<u64>,
    /// Round trips since the last progress line.
    rtt_window: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    snapshot_rates: Vec<f64>,
    /// Distinct matches seen ending; several bots see each one.
    matches_ended: HashSet<uuid::Uuid>,
}

/// What the progress line shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub joined: u64,
    pub active: u64,
    pub snapshots_received: u64,
    pub rtt_p99_ms: Option<f64>,
    pub errors: u64,
}

impl Stats {
    pub fn new(bots_requested: u64) -> Stats {
        Stats {
            bots_requested,
            joined: AtomicU64::new(0),
            active: AtomicU64::new(0),
            inputs_sent: AtomicU64::new(0),
            snapshots_received: AtomicU64::new(0),
            disconnected: AtomicU64::new(0),
            lobbies_closed: AtomicU64::new(0),
            rejoins: AtomicU64::new(0),
            tick_rate: AtomicU64::new(0),
            http: Arc::new(HttpStats::default()),
            inner: Mutex::new(Inner {
                join: micros_histogram(),
                rtt: micros_histogram(),
                rtt_window: micros_histogram(),
                errors: BTreeMap::new(),
                snapshot_rates: Vec::new(),
                matches_ended: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where the run's API client records its requests.
    pub fn http(&self) -> Arc<HttpStats> {
        self.http.clone()
    }

    /// A join that succeeded after `took`; `first` for the bot's first join.
    pub fn joined(&self, took: Duration, first: bool, tick_rate: u16) {
        if first {
            self.joined.fetch_add(1, Relaxed);
        } else {
            self.rejoins.fetch_add(1, Relaxed);
        }
        self.tick_rate.store(tick_rate as u64, Relaxed);
        record(&mut self.lock().join, took);
    }

    pub fn playing(&self, delta: i64) {
        if delta >= 0 {
            self.active.fetch_add(delta as u64, Relaxed);
        } else {
            self.active.fetch_sub(delta.unsigned_abs(), Relaxed);
        }
    }

    pub fn traffic(&self, inputs: u64, snapshots: u64) {
        self.inputs_sent.fetch_add(inputs, Relaxed);
        self.snapshots_received.fetch_add(snapshots, Relaxed);
    }

    /// Round trips measured by one bot since its last call. Raw samples, not
    /// a per-bot histogram: a histogram is ~100 KB, too much per bot.
    pub fn rtts(&self, samples: &[Duration]) {
        if samples.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for &d in samples {
            record(&mut inner.rtt, d);
            record(&mut inner.rtt_window, d);
        }
    }

    pub fn error(&self, kind: &str) {
        *self.lock().errors.entry(kind.to_owned()).or_default() += 1;
    }

    pub fn disconnected(&self) {
        self.disconnected.fetch_add(1, Relaxed);
    }

    pub fn lobby_closed(&self) {
        self.lobbies_closed.fetch_add(1, Relaxed);
    }

    pub fn match_ended(&self, match_id: uuid::Uuid) {
        self.lock().matches_ended.insert(match_id);
    }

    /// One bot's snapshot rate over `playing` time, if long enough to mean anything.
    pub fn snapshot_rate(&self, snapshots: u64, playing: Duration) {
        if playing >= MIN_RATE_WINDOW {
            self.lock().snapshot_rates.push(snapshots as f64 / playing.as_secs_f64());
        }
    }

    /// Current figures for the progress line; resets the round-trip window.
    pub fn progress(&self) -> Progress {
        let mut inner = self.lock();
        let rtt_p99_ms = Percentiles::from_micros(&inner.rtt_window).p99;
        inner.rtt_window.reset();
        Progress {
            joined: self.joined.load(Relaxed),
            active: self.active.load(Relaxed),
            snapshots_received: self.snapshots_received.load(Relaxed),
            rtt_p99_ms,
            errors: inner.errors.values().sum(),
        }
    }

    pub fn report(&self, duration: Duration) -> Report {
        let inner = self.lock();
        let tick_rate = self.tick_rate.load(Relaxed);
        Report {
            bots_requested: self.bots_requested,
            bots_joined: self.joined.load(Relaxed),
            join_ms: Percentiles::from_micros(&inner.join),
            rtt_ms: Percentiles::from_micros(&inner.rtt),
            snapshots_per_sec: Rate::from_samples(&inner.snapshot_rates),
            errors: inner.errors.clone(),
            duration_s: (duration.as_secs_f64() * 1000.0).round() / 1000.0,
            inputs_sent: self.inputs_sent.load(Relaxed),
            snapshots_received: self.snapshots_received.load(Relaxed),
            matches_ended: inner.matches_ended.len() as u64,
            bots_disconnected: self.disconnected.load(Relaxed),
            lobbies_closed: self.lobbies_closed.load(Relaxed),
            rejoins: self.rejoins.load(Relaxed),
            tick_rate: (tick_rate > 0).then_some(tick_rate as u16),
            http: self.http.report(),
        }
    }
}

/// How one HTTP request ended, for [`HttpStats::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOutcome {
    Ok,
    /// 429: the client waits and may retry; counted apart from errors.
    RateLimited,
    /// Any other error status, or no usable answer at all.
    Failed,
}

/// HTTP requests by endpoint name: counts and a latency histogram each. A
/// request is timed from sending to its answer (or failure); waits between
/// retries are not part of any sample.
#[derive(Debug, Default)]
pub struct HttpStats {
    endpoints: Mutex<BTreeMap<&'static str, HttpEndpointStats>>,
}

#[derive(Debug)]
struct HttpEndpointStats {
    latency: Histogram<u64>,
    errors: u64,
    rate_limited: u64,
}

impl HttpStats {
    pub fn record(&self, endpoint: &'static str, took: Duration, outcome: HttpOutcome) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let e = endpoints.entry(endpoint).or_insert_with(|| HttpEndpointStats {
            latency: micros_histogram(),
            errors: 0,
            rate_limited: 0,
        });
        record(&mut e.latency, took);
        match outcome {
            HttpOutcome::Ok => {}
            HttpOutcome::RateLimited => e.rate_limited += 1,
            HttpOutcome::Failed => e.errors += 1,
        }
    }

    /// Every endpoint called at least once.
    pub fn report(&self) -> BTreeMap<String, HttpEndpoint> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        endpoints
            .iter()
            .map(|(name, e)| {
                let p = Percentiles::from_micros(&e.latency);
                let row = HttpEndpoint {
                    count: p.count,
                    errors: e.errors,
                    rate_limited: e.rate_limited,
                    p50_ms: p.p50,
                    p99_ms: p.p99,
                    max_ms: p.max,
                };
                (name.to_string(), row)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_aggregates_what_bots_record() {
        let s = Stats::new(3);
        s.joined(Duration::from_millis(10), true, 20);
        s.joined(Duration::from_millis(30), true, 20);
        s.joined(Duration::from_millis(20), false, 20);
        s.rtts(&[40, 50, 60].map(Duration::from_millis));
        s.snapshot_rate(40, Duration::from_secs(2));
        s.snapshot_rate(57, Duration::from_secs(3));
        s.snapshot_rate(1, Duration::from_millis(300));
        let id = uuid::Uuid::new_v4();
        s.match_ended(id);
        s.match_ended(id);
        s.error("server:LOBBY_FULL");
        s.error("server:LOBBY_FULL");
        s.traffic(100, 90);

        let p = s.progress();
        assert_eq!((p.joined, p.snapshots_received, p.errors), (2, 90, 2));
        assert!((p.rtt_p99_ms.unwrap() - 60.0).abs() < 0.1);
        assert_eq!(s.progress().rtt_p99_ms, None, "the window resets");

        let r = s.report(Duration::from_millis(20_500));
        assert_eq!((r.bots_requested, r.bots_joined, r.rejoins), (3, 2, 1));
        assert_eq!(r.join_ms.count, 3);
        assert!((r.join_ms.p50.unwrap() - 20.0).abs() < 0.1);
        assert!((r.rtt_ms.p99.unwrap() - 60.0).abs() < 0.1);
        assert_eq!(r.snapshots_per_sec, Rate { mean: Some(19.5), min: Some(19.0) });
        assert_eq!(r.matches_ended, 1);
        assert_eq!(r.errors.get("server:LOBBY_FULL"), Some(&2));
        assert_eq!((r.inputs_sent, r.snapshots_received, r.duration_s), (100, 90, 20.5));
        assert_eq!(r.tick_rate, Some(20));
        assert!(r.failed());
        assert!(r.http.is_empty(), "no API calls, no http rows");
    }

    #[test]
    fn http_requests_are_counted_and_timed_by_endpoint() {
        let s = Stats::new(1);
        let http = s.http();
        for ms in [10, 20, 30] {
            http.record("register", Duration::from_millis(ms), HttpOutcome::Ok);
        }
        http.record("matchmake", Duration::from_millis(5), HttpOutcome::RateLimited);
        http.record("matchmake", Duration::from_millis(7), HttpOutcome::Ok);
        http.record("matchmake", Duration::from_millis(900), HttpOutcome::Failed);

        let r = s.report(Duration::from_secs(1));
        assert_eq!(r.http.keys().collect::<Vec<_>>(), ["matchmake", "register"]);
        let reg = &r.http["register"];
        assert_eq!((reg.count, reg.errors, reg.rate_limited), (3, 0, 0));
        assert!((reg.p50_ms.unwrap() - 20.0).abs() < 0.1 && (reg.p99_ms.unwrap() - 30.0).abs() < 0.1, "{reg:?}");
        let mm = &r.http["matchmake"];
        assert_eq!((mm.count, mm.errors, mm.rate_limited), (3, 1, 1));
        assert!((mm.max_ms.unwrap() - 900.0).abs() < 1.0);
    }
}
