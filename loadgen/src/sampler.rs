//! The once-a-second look at a run: the bots' figures from [`Stats`], the
//! node's from its `/metrics` page, the load generator's own CPU from
//! `/proc`; each second becomes a [`TimelineSample`] and the progress line.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::prom::{NodeSample, parse_node_metrics};
use crate::scenario::PhaseSpan;
use crate::stats::Stats;
use crate::timeline::{TimelineSample, proc_cpu_seconds};

/// A scrape slower than this is skipped for the second: a stalled node must
/// not stall the timeline.
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(800);

/// Reads the node's metrics page.
#[derive(Debug, Clone)]
pub struct Scraper {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl Scraper {
    pub fn new(url: &str) -> anyhow::Result<Scraper> {
        let url = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("the metrics URL {url:?}: {e}"))?;
        let http = reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build()?;
        Ok(Scraper { http, url })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// One sample stamped `at_s`, or `None` when the page could not be read.
    pub async fn scrape(&self, at_s: f64) -> Option<NodeSample> {
        let response = self.http.get(self.url.clone()).send().await.ok()?.error_for_status().ok()?;
        let text = response.text().await.ok()?;
        Some(parse_node_metrics(&text, at_s))
    }
}

/// This process's CPU seconds (user plus system) so far.
pub fn own_cpu_seconds() -> Option<f64> {
    proc_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// This process's peak resident memory so far.
pub fn own_peak_rss_bytes() -> Option<u64> {
    vm_hwm_bytes(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// `VmHWM` (the resident high-water mark) from the text of `/proc/<pid>/status`.
pub fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// Everything sampled over a run.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub timeline: Vec<TimelineSample>,
    pub node: Vec<NodeSample>,
    /// `(seconds from the start, CPU seconds)` of this process.
    pub own_cpu: Vec<(f64, f64)>,
}

impl Samples {
    /// CPU cores this process used between `from_s` and `to_s` (the samples
    /// nearest inside the window), `None` with less than a second of them.
    pub fn own_cores(&self, from_s: f64, to_s: f64) -> Option<f64> {
        let inside: Vec<&(f64, f64)> = self.own_cpu.iter().filter(|(t, _)| *t >= from_s && *t <= to_s).collect();
        let (first, last) = (inside.first()?, inside.last()?);
        let dt = last.0 - first.0;
        (dt >= 1.0).then(|| (last.1 - first.1) / dt)
    }

    /// Node memory over time, for the soak trend.
    pub fn node_rss_points(&self) -> Vec<(f64, f64)> {
        self.node.iter().filter_map(|s| Some((s.at_s, s.rss_bytes?))).collect()
    }
}

/// The phase running at `t_s` (the last one at the end).
pub fn phase_at(spans: &[PhaseSpan], t_s: f64) -> &str {
    spans.iter().find(|p| t_s < p.end_s).or(spans.last()).map_or("", |p| p.name.as_str())
}

/// Per-second rates from two readings of cumulative counters.
#[derive(Debug, Clone, Copy, Default)]
struct Previous {
    at_s: f64,
    snapshots: u64,
    bytes_up: u64,
    bytes_down: u64,
    own_cpu: Option<f64>,
}

/// Samples once a second until aborted; what it gathered is in `out`.
pub async fn sample_every_second(
    stats: Arc<Stats>,
    scraper: Option<Scraper>,
    started: Instant,
    spans: Vec<PhaseSpan>,
    bots: u64,
    quiet: bool,
    out: Arc<std::sync::Mutex<Samples>>,
) {
    let mut ticker = tokio::time::interval_at((started + Duration::from_secs(1)).into(), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut prev = Previous { own_cpu: own_cpu_seconds(), ..Previous::default() };
    let mut prev_node: Option<NodeSample> = None;
    loop {
        ticker.tick().await;
        let node = match &scraper {
            Some(s) => s.scrape(started.elapsed().as_secs_f64()).await,
            None => None,
        };
        let at_s = started.elapsed().as_secs_f64();
        let p = stats.progress();
        let own_cpu = own_cpu_seconds();
        let dt = (at_s - prev.at_s).max(1e-3);
        let players = p.active;
        let per_bot = |delta: u64| (players > 0).then(|| round1(delta as f64 / dt / players as f64));
        let node_cpu_cores = match (&node, &prev_node) {
            (Some(n), Some(b)) => match (n.cpu_seconds, b.cpu_seconds) {
                (Some(now), Some(before)) if n.at_s > b.at_s => Some(round3((now - before) / (n.at_s - b.at_s))),
                _ => None,
            },
            _ => None,
        };
        let sample = TimelineSample {
            t_s: round3(at_s),
            players,
            joined_total: p.joined,
            errors_total: p.errors,
            join_p50_ms: p.join_p50_ms,
            join_p99_ms: p.join_p99_ms,
            rtt_p50_ms: p.rtt_p50_ms,
            rtt_p99_ms: p.rtt_p99_ms,
            snapshots_per_bot_s: per_bot(p.snapshots_received - prev.snapshots),
            bytes_up_per_bot_s: per_bot(p.bytes_up - prev.bytes_up),
            bytes_down_per_bot_s: per_bot(p.bytes_down - prev.bytes_down),
            node_cpu_cores,
            node_rss_bytes: node.as_ref().and_then(|n| n.rss_bytes),
            node_players: node.as_ref().and_then(|n| n.players),
            loadgen_cpu_cores: match (own_cpu, prev.own_cpu) {
                (Some(now), Some(before)) => Some(round3((now - before) / dt)),
                _ => None,
            },
            phase: phase_at(&spans, at_s).to_owned(),
        };
        if !quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}", progress_line(&sample, bots));
        }
        prev =
            Previous { at_s, snapshots: p.snapshots_received, bytes_up: p.bytes_up, bytes_down: p.bytes_down, own_cpu };
        {
            let mut out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            out.timeline.push(sample);
            if let Some(cpu) = own_cpu {
                out.own_cpu.push((at_s, cpu));
            }
            if let Some(n) = &node {
                out.node.push(n.clone());
            }
        }
        if node.is_some() {
            prev_node = node;
        }
    }
}

/// The live line, from one timeline sample.
pub fn progress_line(s: &TimelineSample, bots: u64) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
    let num = |v: Option<f64>, digits: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"));
    let mut line = format!(
        "[{:>5.0}s] {:<10} playing {}  joined {}/{}  snapshots/s/bot {}  rtt p99 {}  join p99 {}  down {} B/s/bot  errors {}",
        s.t_s,
        s.phase,
        s.players,
        s.joined_total,
        bots,
        num(s.snapshots_per_bot_s, 1),
        ms(s.rtt_p99_ms),
        ms(s.join_p99_ms),
        num(s.bytes_down_per_bot_s, 0),
        s.errors_total
    );
    if let Some(cores) = s.node_cpu_cores {
        line.push_str(&format!("  node cpu {cores:.2}"));
    }
    if let Some(rss) = s.node_rss_bytes {
        line.push_str(&format!("  node rss {:.0} MiB", rss / (1024.0 * 1024.0)));
    }
    if let Some(cores) = s.loadgen_cpu_cores {
        line.push_str(&format!("  loadgen cpu {cores:.2}"));
    }
    line
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_comes_from_vm_hwm_in_kib() {
        let status = "Name:\tloadgen\nVmPeak:\t  900000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t   10000 kB\n";
        assert_eq!(vm_hwm_bytes(status), Some(12345 * 1024));
        assert_eq!(vm_hwm_bytes("VmRSS: 1 kB"), None);
        assert_eq!(vm_hwm_bytes("VmHWM: x kB"), None);
        assert_eq!(vm_hwm_bytes("VmHWM: 5 MB"), None, "only the kernel's kB unit");
        assert!(own_peak_rss_bytes().is_some_and(|b| b > 0) && own_cpu_seconds().is_some(), "this is Linux");
    }

    #[test]
    fn own_cores_over_a_window_and_phase_lookup() {
        let s = Samples { own_cpu: vec![(1.0, 0.5), (2.0, 1.0), (3.0, 1.5), (4.0, 3.5)], ..Samples::default() };
        assert_eq!(s.own_cores(1.5, 3.5), Some(0.5));
        assert_eq!(s.own_cores(0.0, 10.0), Some(1.0));
        assert_eq!(s.own_cores(2.0, 2.5), None, "under a second of samples");
        let span = |name: &str, start_s: f64, end_s: f64| PhaseSpan { name: name.into(), start_s, end_s, arrivals: 0 };
        let spans = [span("ramp", 0.0, 5.0), span("sustained", 5.0, 20.0)];
        assert_eq!(
            (phase_at(&spans, 0.0), phase_at(&spans, 5.0), phase_at(&spans, 25.0)),
            ("ramp", "sustained", "sustained")
        );
        assert_eq!(phase_at(&[], 1.0), "");
    }

    #[test]
    fn the_progress_line_shows_what_was_measured() {
        let s = TimelineSample {
            t_s: 12.0,
            players: 150,
            joined_total: 180,
            phase: "ramp".into(),
            rtt_p99_ms: Some(3.25),
            node_cpu_cores: Some(0.5),
            ..TimelineSample::default()
        };
        let line = progress_line(&s, 200);
        assert!(line.contains("ramp") && line.contains("playing 150") && line.contains("joined 180/200"), "{line}");
        assert!(line.contains("rtt p99 3.2 ms") || line.contains("rtt p99 3.3 ms"), "{line}");
        assert!(
            line.contains("join p99 -") && line.contains("node cpu 0.50") && !line.contains("loadgen cpu"),
            "{line}"
        );
    }
}
