//! Counters and histograms shared by every bot of a run. Bots batch their
//! round-trip samples locally and merge them about once a second, so the
//! locks here are taken a few times per bot per second, not per packet.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::{
    Bandwidth, Churn, HttpEndpoint, MergeData, Percentiles, RateSum, Report, SnapshotLoss, encode_histogram,
};

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
    bots_requested: AtomicU64,
    joined: AtomicU64,
    active: AtomicU64,
    inputs_sent: AtomicU64,
    snapshots_received: AtomicU64,
    disconnected: AtomicU64,
    lobbies_closed: AtomicU64,
    rejoins: AtomicU64,
    tick_rate: AtomicU64,
    arrivals_skipped: AtomicU64,
    chats: AtomicU64,
    churn_leaves: AtomicU64,
    churn_rejoins: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    datagrams_up: AtomicU64,
    datagrams_down: AtomicU64,
    /// Time bots spent joined, summed, in microseconds.
    joined_micros: AtomicU64,
    ticks_expected: AtomicU64,
    ticks_received: AtomicU64,
    http: Arc<HttpStats>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    join: Histogram<u64>,
    rtt: Histogram<u64>,
    /// Joins and round trips since the last [`Stats::window`].
    join_window: Histogram<u64>,
    rtt_window: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    snapshot_rates: RateSum,
    /// Distinct matches seen starting, ending, and still running when a bot
    /// stopped; several bots see each one.
    matches_started: HashSet<uuid::Uuid>,
    matches_ended: HashSet<uuid::Uuid>,
    matches_open_at_stop: HashSet<uuid::Uuid>,
}

/// What one bot's connection did since its last flush.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Traffic {
    pub inputs: u64,
    pub snapshots: u64,
    /// Wire bytes (UDP payload plus UDP/IP headers) and datagrams.
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub datagrams_up: u64,
    pub datagrams_down: u64,
    /// Time joined.
    pub joined: Duration,
    /// Node ticks that passed, and snapshots that arrived for them.
    pub ticks_expected: u64,
    pub ticks_received: u64,
}

/// What the progress line and the timeline show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub joined: u64,
    pub active: u64,
    pub snapshots_received: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Over the joins and round trips since the last call.
    pub join_p50_ms: Option<f64>,
    pub join_p99_ms: Option<f64>,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    pub errors: u64,
}

impl Stats {
    pub fn new(bots_requested: u64) -> Stats {
        let zero = || AtomicU64::new(0);
        Stats {
            bots_requested: AtomicU64::new(bots_requested),
            joined: zero(),
            active: zero(),
            inputs_sent: zero(),
            snapshots_received: zero(),
            disconnected: zero(),
            lobbies_closed: zero(),
            rejoins: zero(),
            tick_rate: zero(),
            arrivals_skipped: zero(),
            chats: zero(),
            churn_leaves: zero(),
            churn_rejoins: zero(),
            bytes_up: zero(),
            bytes_down: zero(),
            datagrams_up: zero(),
            datagrams_down: zero(),
            joined_micros: zero(),
            ticks_expected: zero(),
            ticks_received: zero(),
            http: Arc::new(HttpStats::default()),
            inner: Mutex::new(Inner {
                join: micros_histogram(),
                rtt: micros_histogram(),
                join_window: micros_histogram(),
                rtt_window: micros_histogram(),
                errors: BTreeMap::new(),
                snapshot_rates: RateSum::default(),
                matches_started: HashSet::new(),
                matches_ended: HashSet::new(),
                matches_open_at_stop: HashSet::new(),
            }),
        }
    }

    /// One more bot started (arrivals come over the run).
    pub fn requested(&self) {
        self.bots_requested.fetch_add(1, Relaxed);
    }

    /// An arrival not started because the cap on live bots was reached.
    pub fn arrival_skipped(&self) {
        self.arrivals_skipped.fetch_add(1, Relaxed);
    }

    pub fn chat_sent(&self) {
        self.chats.fetch_add(1, Relaxed);
    }

    /// A bot left its lobby on purpose (`--churn`); `rejoined` when it came back.
    pub fn churn_left(&self) {
        self.churn_leaves.fetch_add(1, Relaxed);
    }

    pub fn churn_rejoined(&self) {
        self.churn_rejoins.fetch_add(1, Relaxed);
    }

    pub fn match_started(&self, match_id: uuid::Uuid) {
        self.lock().matches_started.insert(match_id);
    }

    /// The run stopped while this bot played in `match_id`.
    pub fn match_open_at_stop(&self, match_id: uuid::Uuid) {
        self.lock().matches_open_at_stop.insert(match_id);
    }

    /// Folds one bot's traffic since its last flush in.
    pub fn traffic(&self, t: &Traffic) {
        self.inputs_sent.fetch_add(t.inputs, Relaxed);
        self.snapshots_received.fetch_add(t.snapshots, Relaxed);
        self.bytes_up.fetch_add(t.bytes_up, Relaxed);
        self.bytes_down.fetch_add(t.bytes_down, Relaxed);
        self.datagrams_up.fetch_add(t.datagrams_up, Relaxed);
        self.datagrams_down.fetch_add(t.datagrams_down, Relaxed);
        self.joined_micros.fetch_add(t.joined.as_micros() as u64, Relaxed);
        self.ticks_expected.fetch_add(t.ticks_expected, Relaxed);
        self.ticks_received.fetch_add(t.ticks_received, Relaxed);
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
        let mut inner = self.lock();
        record(&mut inner.join, took);
        record(&mut inner.join_window, took);
    }

    pub fn playing(&self, delta: i64) {
        if delta >= 0 {
            self.active.fetch_add(delta as u64, Relaxed);
        } else {
            self.active.fetch_sub(delta.unsigned_abs(), Relaxed);
        }
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
            self.lock().snapshot_rates.add(snapshots as f64 / playing.as_secs_f64());
        }
    }

    /// Current figures for the progress line and the timeline; resets the
    /// join and round-trip windows.
    pub fn progress(&self) -> Progress {
        let mut inner = self.lock();
        let join = Percentiles::from_micros(&inner.join_window);
        let rtt = Percentiles::from_micros(&inner.rtt_window);
        inner.join_window.reset();
        inner.rtt_window.reset();
        Progress {
            joined: self.joined.load(Relaxed),
            active: self.active.load(Relaxed),
            snapshots_received: self.snapshots_received.load(Relaxed),
            bytes_up: self.bytes_up.load(Relaxed),
            bytes_down: self.bytes_down.load(Relaxed),
            join_p50_ms: join.p50,
            join_p99_ms: join.p99,
            rtt_p50_ms: rtt.p50,
            rtt_p99_ms: rtt.p99,
            errors: inner.errors.values().sum(),
        }
    }

    /// The report of what the bots measured, figures derived; the run adds
    /// its own sections (phases, server, timeline, ...) and derives again.
    pub fn report(&self, duration: Duration) -> Report {
        let inner = self.lock();
        let tick_rate = self.tick_rate.load(Relaxed);
        let mut histograms = BTreeMap::new();
        histograms.insert("join".to_owned(), encode_histogram(&inner.join));
        histograms.insert("rtt".to_owned(), encode_histogram(&inner.rtt));
        histograms.extend(self.http.histograms());
        let sorted = |set: &HashSet<uuid::Uuid>| {
            let mut v: Vec<uuid::Uuid> = set.iter().copied().collect();
            v.sort_unstable();
            v
        };
        let mut report = Report {
            bots_requested: self.bots_requested.load(Relaxed),
            bots_joined: self.joined.load(Relaxed),
            errors: inner.errors.clone(),
            duration_s: (duration.as_secs_f64() * 1000.0).round() / 1000.0,
            inputs_sent: self.inputs_sent.load(Relaxed),
            snapshots_received: self.snapshots_received.load(Relaxed),
            bots_disconnected: self.disconnected.load(Relaxed),
            lobbies_closed: self.lobbies_closed.load(Relaxed),
            rejoins: self.rejoins.load(Relaxed),
            tick_rate: (tick_rate > 0).then_some(tick_rate as u16),
            http: self.http.report(),
            processes: 1,
            arrivals_skipped: self.arrivals_skipped.load(Relaxed),
            bandwidth: Bandwidth {
                bot_seconds: self.joined_micros.load(Relaxed) as f64 / 1e6,
                bytes_up: self.bytes_up.load(Relaxed),
                bytes_down: self.bytes_down.load(Relaxed),
                datagrams_up: self.datagrams_up.load(Relaxed),
                datagrams_down: self.datagrams_down.load(Relaxed),
                ..Bandwidth::default()
            },
            snapshot_loss: SnapshotLoss {
                expected: self.ticks_expected.load(Relaxed),
                received: self.ticks_received.load(Relaxed),
                ..SnapshotLoss::default()
            },
            chats: self.chats.load(Relaxed),
            churn: Churn { leaves: self.churn_leaves.load(Relaxed), rejoins: self.churn_rejoins.load(Relaxed) },
            merge: MergeData {
                histograms,
                snapshot_rates: inner.snapshot_rates,
                matches_started: sorted(&inner.matches_started),
                matches_ended: sorted(&inner.matches_ended),
                matches_open_at_stop: sorted(&inner.matches_open_at_stop),
            },
            ..Report::default()
        };
        drop(inner);
        // Histograms this process just encoded always decode.
        let _ = report.derive();
        report
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

    /// Each endpoint's latency histogram, serialized, as `http.<endpoint>`.
    pub fn histograms(&self) -> BTreeMap<String, String> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        endpoints.iter().map(|(name, e)| (format!("http.{name}"), encode_histogram(&e.latency))).collect()
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
    use crate::report::Rate;

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
        s.traffic(&Traffic {
            inputs: 100,
            snapshots: 90,
            bytes_up: 5_000,
            bytes_down: 30_000,
            datagrams_up: 100,
            datagrams_down: 90,
            joined: Duration::from_secs(10),
            ticks_expected: 100,
            ticks_received: 90,
        });
        s.match_started(id);
        let (open, lost) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        s.match_started(open);
        s.match_started(lost);
        s.match_open_at_stop(open);
        s.chat_sent();
        s.churn_left();

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
        // Per bot-second, over the 10 s joined; loss from tick gaps.
        assert_eq!((r.bandwidth.up_bytes_per_bot_sec, r.bandwidth.down_bytes_per_bot_sec), (Some(500.0), Some(3000.0)));
        assert_eq!((r.snapshot_loss.missed, r.snapshot_loss.rate), (10, Some(0.1)));
        // Three matches: one ended, one still running at the stop, one that
        // ended without finishing (its players left): one of two completed.
        assert_eq!((r.matches.started, r.matches.ended, r.matches.in_progress_at_stop), (3, 1, 1));
        assert_eq!(r.matches.completion_rate, Some(0.5));
        assert_eq!((r.chats, r.churn.leaves, r.churn.rejoins), (1, 1, 0));
        // The report carries what a merge needs.
        assert!(r.merge.histograms.contains_key("join") && r.merge.histograms.contains_key("rtt"));
        assert_eq!(r.merge.snapshot_rates.count, 2);
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
