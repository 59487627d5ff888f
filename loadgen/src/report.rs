//! The result of a load run: the JSON report (its keys are a stable
//! contract for CI and later tooling) and the human-readable table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::prom::ServerSummary;
use crate::scenario::{PhaseSpan, Shard};
use crate::timeline::TimelineSample;
use crate::trend::Trend;

/// Milliseconds at two percentiles. `null` when nothing was measured, so a
/// missing measurement is never mistaken for a fast one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub count: u64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn from_micros(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Percentiles {
            p50: Some(ms(h.value_at_quantile(0.50))),
            p99: Some(ms(h.value_at_quantile(0.99))),
            max: Some(ms(h.max())),
            count: h.len(),
        }
    }
}

/// Snapshots per second, one value per bot over its playing time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub mean: Option<f64>,
    pub min: Option<f64>,
}

impl Rate {
    pub fn from_samples(samples: &[f64]) -> Rate {
        if samples.is_empty() {
            return Rate::default();
        }
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        Rate { mean: Some(round3(mean)), min: Some(round3(min)) }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub bots_requested: u64,
    /// Bots that joined a lobby at least once.
    pub bots_joined: u64,
    /// Matchmake request (ticket mint with `--direct`) to `LobbyJoined`.
    pub join_ms: Percentiles,
    /// Input sent to the first snapshot acknowledging it.
    pub rtt_ms: Percentiles,
    pub snapshots_per_sec: Rate,
    /// Error counts by kind (see `ClientError::kind`, plus bot-level kinds).
    pub errors: BTreeMap<String, u64>,
    /// Wall time of the run (after the bots signed in to the API).
    pub duration_s: f64,
    pub inputs_sent: u64,
    pub snapshots_received: u64,
    /// Distinct matches seen ending.
    pub matches_ended: u64,
    /// Bots whose connection ended without them asking (each disconnect
    /// counts, so a bot that lost its connection twice counts twice).
    pub bots_disconnected: u64,
    /// `LobbyClosed` events received (each bot matchmakes again after one).
    pub lobbies_closed: u64,
    /// Joins after the first (after a lobby closed, a disconnect or churn).
    pub rejoins: u64,
    /// Tick rate the node announced.
    pub tick_rate: Option<u16>,
    /// HTTP API requests by endpoint (`register`, `login`, `refresh`,
    /// `matchmake`, `join_lobby`); only endpoints that were called. Empty
    /// with `--direct`.
    #[serde(default)]
    pub http: BTreeMap<String, HttpEndpoint>,
    /// This process's share of a sharded run; `null` for a whole run or a
    /// merged report.
    #[serde(default)]
    pub shard: Option<Shard>,
    /// Shard reports merged into this one (1 for a single process).
    #[serde(default = "one")]
    pub processes: u32,
    /// The scenario's phases, seconds from the start of the run.
    #[serde(default)]
    pub phases: Vec<PhaseSpan>,
    /// The steady-state window: the "sustained" phase, else the run after
    /// the "ramp" phase, else the whole run.
    #[serde(default)]
    pub sustained: Window,
    /// Arrivals not started because `--bots` were already alive.
    #[serde(default)]
    pub arrivals_skipped: u64,
    /// Traffic of the bots' connections while joined, from QUIC's own
    /// counters, UDP/IP headers included.
    #[serde(default)]
    pub bandwidth: Bandwidth,
    /// Snapshots missing downstream: node ticks advanced while joined
    /// against snapshots accepted.
    #[serde(default)]
    pub snapshot_loss: SnapshotLoss,
    #[serde(default)]
    pub matches: Matches,
    /// Chat messages the bots sent.
    #[serde(default)]
    pub chats: u64,
    #[serde(default)]
    pub churn: Churn,
    /// How the bots connected: `quic` (native) or `webtransport`.
    #[serde(default = "native")]
    pub transport: String,
    /// Network impairment the bots' sockets applied.
    #[serde(default)]
    pub impairment: Option<crate::impair::ImpairmentReport>,
    /// The load generator's own cost.
    #[serde(default)]
    pub loadgen: LoadgenUsage,
    /// The node's cost over the sustained window, from its /metrics.
    #[serde(default)]
    pub server: Option<ServerSummary>,
    /// Node memory trend over a soak run.
    #[serde(default)]
    pub soak: Option<Trend>,
    /// One sample a second.
    #[serde(default)]
    pub timeline: Vec<TimelineSample>,
    /// The limits the verdicts check, by verdict name.
    #[serde(default)]
    pub limits: BTreeMap<String, f64>,
    /// Each limit checked against this run; a limit whose figure was not
    /// measured (no scrape, no match finished) is left out.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    /// What merging shard reports needs to be exact: serialized histograms
    /// and the match ids behind the counts.
    #[serde(default)]
    pub merge: MergeData,
}

fn native() -> String {
    "quic".into()
}

fn one() -> u32 {
    1
}

/// Seconds from the start of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
}

/// Bandwidth per bot. Bytes are UDP payload plus 28 bytes of IPv4 and UDP
/// headers per datagram (48 over IPv6), as a link would carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Seconds bots spent joined, summed over bots: the denominator.
    pub bot_seconds: f64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub datagrams_up: u64,
    pub datagrams_down: u64,
    pub up_bytes_per_bot_sec: Option<f64>,
    pub down_bytes_per_bot_sec: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotLoss {
    /// Node ticks that passed while bots were joined (one snapshot each).
    pub expected: u64,
    /// Snapshots that arrived in order over the same time.
    pub received: u64,
    pub missed: u64,
    /// `missed / expected`, `null` when nothing was expected.
    pub rate: Option<f64>,
}

/// Matches by id, distinct across bots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Matches {
    /// Matches a bot played in (joined into or saw start).
    pub started: u64,
    /// Of those, the ones that ended properly (`MatchEnded`).
    pub ended: u64,
    /// Still running when the run stopped: neither complete nor failed.
    pub in_progress_at_stop: u64,
    /// `ended / (started - in_progress_at_stop)`: matches that ended over
    /// those that had their chance to. `null` when none could.
    pub completion_rate: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Churn {
    /// Bots that left their lobby on purpose (`--churn`).
    pub leaves: u64,
    /// Of those, the ones that matchmade and joined again.
    pub rejoins: u64,
}

/// The load generator process itself (summed over shards when merged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadgenUsage {
    /// User plus system CPU seconds over the run.
    pub cpu_s: f64,
    /// Peak resident memory (VmHWM).
    pub peak_rss_bytes: u64,
    /// CPU cores used over the sustained window; the busiest shard's when merged.
    pub sustained_cpu_cores: Option<f64>,
    /// CPU seconds per bot-second joined.
    pub cpu_us_per_bot_sec: Option<f64>,
}

/// A limit checked against a figure of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub name: String,
    pub ok: bool,
    pub value: f64,
    pub limit: f64,
}

/// The raw material of the report's derived figures; merging shards merges
/// these and derives again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeData {
    /// hdrhistogram V2 serializations (base64) of microsecond histograms:
    /// `join`, `rtt` and `http.<endpoint>`.
    #[serde(default)]
    pub histograms: BTreeMap<String, String>,
    /// Per-bot snapshot rates: how many, their sum and the smallest.
    #[serde(default)]
    pub snapshot_rates: RateSum,
    #[serde(default)]
    pub matches_started: Vec<uuid::Uuid>,
    #[serde(default)]
    pub matches_ended: Vec<uuid::Uuid>,
    #[serde(default)]
    pub matches_open_at_stop: Vec<uuid::Uuid>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RateSum {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
}

impl RateSum {
    pub fn add(&mut self, rate: f64) {
        self.count += 1;
        self.sum += rate;
        self.min = Some(self.min.map_or(rate, |m| m.min(rate)));
    }

    pub fn merge(&mut self, other: &RateSum) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn rate(&self) -> Rate {
        if self.count == 0 {
            return Rate::default();
        }
        Rate { mean: Some(round3(self.sum / self.count as f64)), min: self.min.map(round3) }
    }
}

/// One API endpoint's requests. Every attempt counts, retries after a 429
/// included; latency is per attempt, in milliseconds, `null` if none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpEndpoint {
    pub count: u64,
    /// Failed attempts (error status or no answer), 429s excepted.
    pub errors: u64,
    /// Attempts answered 429 Too Many Requests.
    pub rate_limited: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// A histogram that does not decode (a hand-edited or truncated report).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("histogram {name:?}: {reason}")]
pub struct HistogramError {
    pub name: String,
    pub reason: String,
}

/// A histogram as hdrhistogram's V2 serialization in base64.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    let mut bytes = Vec::new();
    // Serializing into memory cannot fail for a histogram that exists.
    if hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2Serializer::new(),
        h,
        &mut bytes,
    )
    .is_err()
    {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode_histogram`].
pub fn decode_histogram(name: &str, text: &str) -> Result<Histogram<u64>, HistogramError> {
    use base64::Engine as _;
    let err = |reason: String| HistogramError { name: name.to_owned(), reason };
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| err(e.to_string()))?;
    hdrhistogram::serialization::Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| err(format!("{e:?}")))
}

/// IPv4 (20) plus UDP (8) header bytes per datagram.
pub const IPV4_UDP_HEADER: u64 = 28;
/// IPv6 (40) plus UDP (8) header bytes per datagram.
pub const IPV6_UDP_HEADER: u64 = 48;

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// What `--fail-on-error` fails on: any error, or a bot that never joined.
    pub fn failed(&self) -> bool {
        self.error_count() > 0 || self.bots_joined < self.bots_requested
    }

    /// Verdicts that did not pass.
    pub fn failed_verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.ok)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Recomputes every derived figure (percentiles, rates, per-bot
    /// bandwidth, loss, match completion, verdicts) from the raw counts and
    /// [`MergeData`], which is what makes merged shards exact.
    pub fn derive(&mut self) -> Result<(), HistogramError> {
        let histogram = |name: &str| -> Result<Option<Histogram<u64>>, HistogramError> {
            self.merge.histograms.get(name).map(|text| decode_histogram(name, text)).transpose()
        };
        if let Some(h) = histogram("join")? {
            self.join_ms = Percentiles::from_micros(&h);
        }
        if let Some(h) = histogram("rtt")? {
            self.rtt_ms = Percentiles::from_micros(&h);
        }
        let mut http = std::mem::take(&mut self.http);
        for (endpoint, row) in &mut http {
            if let Some(h) = histogram(&format!("http.{endpoint}"))? {
                let p = Percentiles::from_micros(&h);
                (row.count, row.p50_ms, row.p99_ms, row.max_ms) = (p.count, p.p50, p.p99, p.max);
            }
        }
        self.http = http;
        self.snapshots_per_sec = self.merge.snapshot_rates.rate();

        // Under a bot-second joined, per-bot figures say more about timing than traffic.
        let bot_seconds = self.bandwidth.bot_seconds;
        let per_bot = |amount: f64| (bot_seconds >= 1.0).then(|| round3(amount / bot_seconds));
        let bw = &mut self.bandwidth;
        bw.up_bytes_per_bot_sec = per_bot(bw.bytes_up as f64);
        bw.down_bytes_per_bot_sec = per_bot(bw.bytes_down as f64);
        self.loadgen.cpu_us_per_bot_sec = per_bot(self.loadgen.cpu_s * 1e6);

        let loss = &mut self.snapshot_loss;
        loss.missed = loss.expected.saturating_sub(loss.received);
        loss.rate = (loss.expected > 0).then(|| round6(loss.missed as f64 / loss.expected as f64));

        let m = &mut self.merge;
        for ids in [&mut m.matches_started, &mut m.matches_ended, &mut m.matches_open_at_stop] {
            ids.sort_unstable();
            ids.dedup();
        }
        let ended = |id: &uuid::Uuid| m.matches_ended.binary_search(id).is_ok();
        let started = m.matches_started.len() as u64;
        let ended_n = m.matches_started.iter().filter(|id| ended(id)).count() as u64;
        let open = m.matches_open_at_stop.iter().filter(|id| !ended(id)).count() as u64;
        let decided = started.saturating_sub(open);
        self.matches = Matches {
            started,
            ended: ended_n,
            in_progress_at_stop: open,
            completion_rate: (decided > 0).then(|| round6(ended_n as f64 / decided as f64)),
        };
        self.matches_ended = m.matches_ended.len() as u64;
        self.verdicts = crate::verdict::evaluate(self);
        Ok(())
    }

    /// The final summary for a terminal.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
        let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let mut rows: Vec<(String, String)> = vec![
            ("duration".into(), format!("{:.1} s", self.duration_s)),
            ("bots joined".into(), format!("{} / {}", self.bots_joined, self.bots_requested)),
        ];
        if self.processes > 1 {
            rows.push(("shards merged".into(), self.processes.to_string()));
        }
        if let Some(shard) = self.shard {
            rows.push(("shard".into(), format!("{}/{}", shard.index, shard.count)));
        }
        if self.phases.len() > 1 || self.phases.first().is_some_and(|p| p.name != crate::scenario::RAMP) {
            let phases: Vec<String> = self
                .phases
                .iter()
                .map(|p| format!("{} {:.0}-{:.0}s ({})", p.name, p.start_s, p.end_s, p.arrivals))
                .collect();
            rows.push(("phases (arrivals)".into(), phases.join(", ")));
        }
        if self.arrivals_skipped > 0 {
            rows.push(("arrivals skipped (--bots cap)".into(), self.arrivals_skipped.to_string()));
        }
        if !self.transport.is_empty() && self.transport != native() {
            rows.push(("transport".into(), self.transport.clone()));
        }
        if let Some(imp) = &self.impairment {
            rows.push(("impairment".into(), imp.to_string()));
        }
        rows.extend([
            ("tick rate".into(), self.tick_rate.map_or_else(|| "-".into(), |t| format!("{t} Hz"))),
            ("join p50 / p99".into(), format!("{} / {}", ms(self.join_ms.p50), ms(self.join_ms.p99))),
        ]);
        rows.extend(self.http.iter().map(|(endpoint, h)| {
            let mut v = format!("{} / {}  ({} requests, {} errors", ms(h.p50_ms), ms(h.p99_ms), h.count, h.errors);
            if h.rate_limited > 0 {
                let _ = write!(v, ", {} rate limited", h.rate_limited);
            }
            v.push(')');
            (format!("http {endpoint} p50 / p99"), v)
        }));
        let bytes = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} B/s"));
        rows.extend([
            ("rtt p50 / p99".into(), format!("{} / {}", ms(self.rtt_ms.p50), ms(self.rtt_ms.p99))),
            ("rtt max".into(), ms(self.rtt_ms.max)),
            (
                "snapshots/s per bot mean / min".into(),
                format!("{} / {}", num(self.snapshots_per_sec.mean), num(self.snapshots_per_sec.min)),
            ),
            (
                "snapshot loss".into(),
                match self.snapshot_loss.rate {
                    Some(rate) => format!(
                        "{:.2} %  ({} of {})",
                        rate * 100.0,
                        self.snapshot_loss.missed,
                        self.snapshot_loss.expected
                    ),
                    None => "-".into(),
                },
            ),
            (
                "per bot up / down".into(),
                format!(
                    "{} / {}",
                    bytes(self.bandwidth.up_bytes_per_bot_sec),
                    bytes(self.bandwidth.down_bytes_per_bot_sec)
                ),
            ),
            ("inputs sent".into(), self.inputs_sent.to_string()),
            ("snapshots received".into(), self.snapshots_received.to_string()),
            (
                "matches started / ended / running".into(),
                format!("{} / {} / {}", self.matches.started, self.matches.ended, self.matches.in_progress_at_stop),
            ),
            (
                "match completion".into(),
                self.matches.completion_rate.map_or_else(|| "-".into(), |r| format!("{:.1} %", r * 100.0)),
            ),
            ("lobbies closed".into(), self.lobbies_closed.to_string()),
            ("rejoins".into(), self.rejoins.to_string()),
            ("chats".into(), self.chats.to_string()),
            ("churn leaves / rejoins".into(), format!("{} / {}", self.churn.leaves, self.churn.rejoins)),
            ("bots disconnected".into(), self.bots_disconnected.to_string()),
        ]);
        if let Some(s) = &self.server {
            let opt = |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} {unit}"));
            rows.extend([
                ("node players mean / peak".into(), format!("{:.0} / {:.0}", s.mean_players, s.peak_players)),
                ("node cpu per player-second".into(), opt(s.cpu_us_per_player_second, "us")),
                ("node cpu cores".into(), format!("{:.2}", s.cpu_cores_used)),
                ("node rss per player".into(), opt(s.rss_bytes_per_player.map(|b| b / 1024.0), "KiB")),
                ("node rss added per player".into(), opt(s.rss_bytes_added_per_player.map(|b| b / 1024.0), "KiB")),
                ("node anonymous memory per player".into(), opt(s.anon_bytes_per_player.map(|b| b / 1024.0), "KiB")),
                ("node tick p99".into(), opt(s.tick_p99_ms, "ms")),
                ("node tick lateness p99".into(), opt(s.tick_lateness_p99_ms, "ms")),
                ("node bytes out per player".into(), opt(s.bytes_out_per_player_s, "B/s")),
            ]);
        }
        if let Some(t) = &self.soak {
            rows.push((
                "node memory trend".into(),
                format!(
                    "{:+.2} %/h over {} samples{}",
                    t.growth_percent_per_hour,
                    t.samples,
                    if t.growing { " (growing)" } else { "" }
                ),
            ));
        }
        let lg = &self.loadgen;
        rows.push((
            "loadgen cpu / peak rss".into(),
            format!(
                "{:.1} s ({}) / {:.0} MiB",
                lg.cpu_s,
                lg.cpu_us_per_bot_sec.map_or_else(|| "-".into(), |us| format!("{us:.0} us per bot-second")),
                lg.peak_rss_bytes as f64 / (1024.0 * 1024.0)
            ),
        ));
        if let Some(cores) = lg.sustained_cpu_cores {
            let bottleneck = self.verdicts.iter().any(|v| v.name == crate::verdict::LOADGEN_BOTTLENECK && !v.ok);
            let note = if bottleneck { "  LOADGEN IS THE BOTTLENECK: figures may understate the node" } else { "" };
            rows.push(("loadgen cpu cores (sustained)".into(), format!("{cores:.2}{note}")));
        }
        rows.push(("errors".into(), self.error_count().to_string()));
        rows.extend(self.errors.iter().map(|(kind, n)| (format!("  {kind}"), n.to_string())));
        for v in &self.verdicts {
            let op = match crate::verdict::bound_of(&v.name) {
                Some(crate::verdict::Bound::AtLeast) => ">=",
                _ => "<=",
            };
            rows.push((
                format!("verdict {}", v.name),
                format!("{}  {} {op} {}", if v.ok { "ok  " } else { "FAIL" }, fmt_num(v.value), fmt_num(v.limit)),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

/// The self-contained HTML report: the figures (less the raw merge data,
/// which is for machines) and the timeline's charts.
pub fn html(report: &Report) -> String {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("timeline");
        map.remove("merge");
    }
    let timeline = crate::timeline::Timeline { samples: report.timeline.clone() };
    let mut title = format!("loadgen: {} bots, {:.0} s", report.bots_requested, report.duration_s);
    if report.processes > 1 {
        let _ = write!(title, ", {} shards", report.processes);
    }
    crate::html::render_html(&title, &value, &timeline)
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.3}") }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_milliseconds_from_microseconds() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for ms in 1..=100u64 {
            h.record(ms * 1000).unwrap();
        }
        let p = Percentiles::from_micros(&h);
        assert_eq!(p.count, 100);
        // hdrhistogram keeps 3 significant digits.
        assert!((p.p50.unwrap() - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99.unwrap() - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max.unwrap() - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(Percentiles::from_micros(&Histogram::new(3).unwrap()), Percentiles::default());
    }

    #[test]
    fn rate_mean_and_min() {
        assert_eq!(Rate::from_samples(&[20.0, 19.0, 18.0]), Rate { mean: Some(19.0), min: Some(18.0) });
        assert_eq!(Rate::from_samples(&[]), Rate::default());
    }

    #[test]
    fn json_has_the_stable_keys() {
        let mut r = Report { bots_requested: 2, bots_joined: 2, ..Report::default() };
        r.errors.insert("timeout".into(), 1);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "bots_requested",
            "bots_joined",
            "join_ms",
            "rtt_ms",
            "snapshots_per_sec",
            "errors",
            "duration_s",
            "inputs_sent",
            "snapshots_received",
            "matches_ended",
            "bots_disconnected",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        for key in ["p50", "p99"] {
            assert!(v["join_ms"].get(key).is_some() && v["rtt_ms"].get(key).is_some());
        }
        assert!(v["snapshots_per_sec"].get("mean").is_some() && v["snapshots_per_sec"].get("min").is_some());
        assert_eq!(v["errors"]["timeout"], 1);
        assert!(v["rtt_ms"]["p99"].is_null());
        assert_eq!(v["http"], serde_json::json!({}));
        assert_eq!(serde_json::from_value::<Report>(v).unwrap(), r);

        r.http.insert(
            "matchmake".into(),
            HttpEndpoint {
                count: 3,
                errors: 1,
                rate_limited: 1,
                p50_ms: Some(2.5),
                p99_ms: Some(9.0),
                max_ms: Some(9.0),
            },
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in ["count", "errors", "rate_limited", "p50_ms", "p99_ms"] {
            assert!(v["http"]["matchmake"].get(key).is_some(), "missing http.matchmake.{key}");
        }
        assert_eq!(serde_json::from_value::<Report>(v).unwrap(), r);
        // Reports written before the http section still parse.
        let mut old: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        old.as_object_mut().unwrap().remove("http");
        assert!(serde_json::from_value::<Report>(old).unwrap().http.is_empty());
    }

    #[test]
    fn failure_means_errors_or_missing_bots() {
        let ok = Report { bots_requested: 3, bots_joined: 3, ..Report::default() };
        assert!(!ok.failed());
        assert!(Report { bots_joined: 2, ..ok.clone() }.failed());
        let mut errs = ok.clone();
        errs.errors.insert("closed".into(), 1);
        assert!(errs.failed());
        assert!(ok.table().contains("3 / 3"));
    }

    #[test]
    fn reports_from_before_phases_still_parse_and_histograms_round_trip() {
        let old = serde_json::json!({
            "bots_requested": 2, "bots_joined": 2,
            "join_ms": {"p50": 1.0, "p99": 2.0, "max": 2.0, "count": 2},
            "rtt_ms": {"p50": null, "p99": null, "max": null, "count": 0},
            "snapshots_per_sec": {"mean": 20.0, "min": 19.5}, "errors": {}, "duration_s": 5.0,
            "inputs_sent": 10, "snapshots_received": 9, "matches_ended": 0, "bots_disconnected": 0,
            "lobbies_closed": 0, "rejoins": 0, "tick_rate": 20
        });
        let r: Report = serde_json::from_value(old).unwrap();
        assert_eq!((r.processes, r.verdicts.len(), r.merge.histograms.len()), (1, 0, 0));

        let mut h = crate::stats::micros_histogram();
        for us in [100, 2_000, 30_000, 400_000] {
            h.record(us).unwrap();
        }
        let text = encode_histogram(&h);
        let back = decode_histogram("rtt", &text).unwrap();
        assert_eq!((back.len(), back.max(), back.value_at_quantile(0.5)), (4, h.max(), h.value_at_quantile(0.5)));
        let e = decode_histogram("rtt", "AAAA").unwrap_err();
        assert_eq!(e.name, "rtt");
    }

    #[test]
    fn the_table_says_when_loadgen_is_the_bottleneck() {
        let mut r =
            Report { bots_requested: 1, bots_joined: 1, limits: crate::verdict::default_limits(), ..Report::default() };
        r.loadgen.sustained_cpu_cores = Some(0.97);
        r.derive().unwrap();
        let table = r.table();
        assert!(table.contains("LOADGEN IS THE BOTTLENECK"), "{table}");
        assert!(table.contains("verdict loadgen_cpu_cores") && table.contains("FAIL"), "{table}");
        r.loadgen.sustained_cpu_cores = Some(0.5);
        r.derive().unwrap();
        assert!(!r.table().contains("BOTTLENECK"));
    }

    #[test]
    fn the_table_shows_http_rows() {
        let mut r = Report { bots_requested: 1, bots_joined: 1, ..Report::default() };
        r.http.insert(
            "register".into(),
            HttpEndpoint { count: 1, p50_ms: Some(40.0), p99_ms: Some(40.0), max_ms: Some(40.0), ..Default::default() },
        );
        r.http.insert("matchmake".into(), HttpEndpoint { count: 2, rate_limited: 1, ..Default::default() });
        let table = r.table();
        assert!(
            table.contains("http register p50 / p99") && table.contains("40.0 ms / 40.0 ms  (1 requests, 0 errors)")
        );
        assert!(table.contains("1 rate limited"), "{table}");
    }
}
