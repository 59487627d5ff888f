//! The game node's `/metrics` page (Prometheus text exposition format) read
//! into a [`NodeSample`], and a run's samples turned into what the server
//! costs per player ([`summarize`]). No IO: the caller scrapes and stamps.

use serde::{Deserialize, Serialize};

/// One scrape of a game node. Every figure is `None` when the page did not
/// carry it, so a missing metric is never read as zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSample {
    /// Seconds since the run started, set by the caller.
    pub at_s: f64,
    pub cpu_seconds: Option<f64>,
    pub rss_bytes: Option<f64>,
    /// Resident memory not backed by files (absent from older nodes).
    pub anon_bytes: Option<f64>,
    pub players: Option<f64>,
    pub connections: Option<f64>,
    pub lobbies: Option<f64>,
    pub ticks: Option<f64>,
    /// Cumulative tick-duration buckets, `(le, count)` sorted by `le`; the
    /// `+Inf` bucket is `f64::INFINITY`.
    pub tick_buckets: Vec<(f64, f64)>,
    pub tick_count: Option<f64>,
    pub tick_sum: Option<f64>,
    /// Cumulative tick-lateness buckets, like `tick_buckets`.
    pub lateness_buckets: Vec<(f64, f64)>,
    pub datagrams_in: Option<f64>,
    pub datagrams_out: Option<f64>,
    pub bytes_in: Option<f64>,
    pub bytes_out: Option<f64>,
    pub matches_started: Option<f64>,
    pub matches_completed: Option<f64>,
}

const TICK_BUCKET: &str = "trespasser_tick_duration_seconds_bucket";
const LATENESS_BUCKET: &str = "trespasser_tick_lateness_seconds_bucket";

/// Reads the metrics this crate knows and ignores the rest. Malformed lines
/// are skipped, never fatal: a half-written page still yields what it has.
/// A metric that appears under several label sets is summed, which is its
/// node-wide total for the counters and gauges read here.
pub fn parse_node_metrics(text: &str, at_s: f64) -> NodeSample {
    let mut s = NodeSample { at_s, ..NodeSample::default() };
    for line in text.lines() {
        let Some(Sample { name, labels, value }) = parse_line(line) else { continue };
        // A non-finite count or gauge is garbage, and one NaN would poison
        // every sum computed from the sample.
        if !value.is_finite() {
            continue;
        }
        let slot = match name {
            "process_cpu_seconds_total" => &mut s.cpu_seconds,
            "process_resident_memory_bytes" => &mut s.rss_bytes,
            "process_resident_anonymous_memory_bytes" => &mut s.anon_bytes,
            "trespasser_players" => &mut s.players,
            "trespasser_connections" => &mut s.connections,
            "trespasser_lobbies" => &mut s.lobbies,
            "trespasser_ticks_total" => &mut s.ticks,
            "trespasser_tick_duration_seconds_count" => &mut s.tick_count,
            "trespasser_tick_duration_seconds_sum" => &mut s.tick_sum,
            "trespasser_datagrams_in_total" => &mut s.datagrams_in,
            "trespasser_datagrams_out_total" => &mut s.datagrams_out,
            "trespasser_datagram_bytes_in_total" => &mut s.bytes_in,
            "trespasser_datagram_bytes_out_total" => &mut s.bytes_out,
            "trespasser_matches_started_total" => &mut s.matches_started,
            "trespasser_matches_completed_total" => &mut s.matches_completed,
            TICK_BUCKET | LATENESS_BUCKET => {
                let le = labels.iter().find(|(k, _)| *k == "le").and_then(|(_, v)| parse_float(v));
                if let Some(le) = le.filter(|le| !le.is_nan()) {
                    let buckets = if name == TICK_BUCKET { &mut s.tick_buckets } else { &mut s.lateness_buckets };
                    buckets.push((le, value));
                }
                continue;
            }
            _ => continue,
        };
        *slot = Some(slot.unwrap_or(0.0) + value);
    }
    s.tick_buckets = normalize_buckets(s.tick_buckets.iter().copied());
    s.lateness_buckets = normalize_buckets(s.lateness_buckets.iter().copied());
    s
}

struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

/// `name{label="value",...} value [timestamp]`; `None` for comments, blank
/// and malformed lines.
fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return None;
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        (labels, rest) = parse_labels(after_brace)?;
    }
    // The optional timestamp after the value is not needed: the caller
    // stamps each scrape with its own clock.
    let value = parse_float(rest.split_whitespace().next()?)?;
    Some(Sample { name, labels, value })
}

fn is_metric_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The label set after the opening brace, and what follows the closing one.
/// Values are quoted and may hold `}`, `,` and the escapes `\\ \" \n`.
fn parse_labels(mut s: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim();
        if !is_metric_name(name) {
            return None;
        }
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((name, value));
        s = &s[close + 1..];
    }
}

/// Go-style floats as Prometheus writes them: `1.5e-05`, `+Inf`, `-Inf`,
/// `NaN`. Rust's parser already takes these (case-insensitively).
fn parse_float(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// Sorted by bound, equal bounds merged (summed across other labels), and
/// non-finite counts dropped.
fn normalize_buckets(buckets: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = buckets.filter(|(le, n)| !le.is_nan() && n.is_finite()).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for (le, n) in v {
        match out.last_mut() {
            Some(last) if last.0 == le => last.1 += n,
            _ => out.push((le, n)),
        }
    }
    out
}

/// The `q` quantile (0..=1) of the observations made between two snapshots
/// of a cumulative histogram, interpolated linearly inside its bucket as
/// Prometheus' `histogram_quantile` does (the first bucket starts at 0).
/// A quantile in the `+Inf` bucket is reported as the largest finite bound:
/// a lower bound of the truth, which is all the buckets know. `None` when
/// nothing was observed in between or `q` is out of range. If the counts
/// went down, the node restarted, and `after` alone is the increase.
pub fn histogram_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let before = normalize_buckets(before.iter().copied());
    let after = normalize_buckets(after.iter().copied());
    let total = |b: &[(f64, f64)]| b.last().map_or(0.0, |x| x.1);
    let reset = total(&after) < total(&before);
    let mut cumulative: Vec<(f64, f64)> = Vec::with_capacity(after.len());
    let mut floor = 0.0_f64;
    for &(le, n) in &after {
        let base = if reset { 0.0 } else { before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1) };
        // Scrapes are not atomic, so a bucket can be a hair behind the one
        // below it; keeping the counts monotonic keeps the search sound.
        floor = floor.max(n - base);
        cumulative.push((le, floor));
    }
    let total = total(&cumulative);
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let b = cumulative.iter().position(|&(_, c)| c >= rank && c > 0.0)?;
    let (upper, count) = cumulative[b];
    if upper.is_infinite() {
        return cumulative[..b].iter().rev().map(|x| x.0).find(|le| le.is_finite());
    }
    let (lower, below) = match b {
        0 if upper <= 0.0 => return Some(upper),
        0 => (0.0, 0.0),
        _ => cumulative[b - 1],
    };
    let in_bucket = count - below;
    if in_bucket <= 0.0 {
        return Some(lower);
    }
    Some(lower + (upper - lower) * ((rank - below) / in_bucket))
}

/// What the node cost over the sustained window, per player where that
/// makes sense. Rates are over player-seconds so that ramp-up and churn
/// are weighed by the players actually present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// Seconds between the first and last sample of the window.
    pub window_s: f64,
    /// Integral of the player gauge over the window.
    pub player_seconds: f64,
    pub mean_players: f64,
    pub peak_players: f64,
    /// Process CPU time used in the window (0 when the node did not say).
    pub cpu_seconds: f64,
    pub cpu_us_per_player_second: Option<f64>,
    pub cpu_cores_used: f64,
    pub rss_bytes_end: Option<f64>,
    /// RSS at the end over the mean player count; it includes the
    /// process's fixed baseline, so it overstates the marginal cost.
    pub rss_bytes_per_player: Option<f64>,
    /// RSS at the end less the idle node's (the first sample of the run,
    /// taken before anyone joined), over the mean player count: what a
    /// player adds. Absent when the run never saw the node empty.
    #[serde(default)]
    pub rss_bytes_added_per_player: Option<f64>,
    /// Anonymous resident memory (heap, stacks: the node's own, without
    /// its binary's pages) at the end over the mean player count.
    #[serde(default)]
    pub anon_bytes_per_player: Option<f64>,
    pub tick_p99_ms: Option<f64>,
    pub tick_mean_ms: Option<f64>,
    /// p99 of how late lobby ticks started (absent from older reports).
    #[serde(default)]
    pub tick_lateness_p99_ms: Option<f64>,
    pub bytes_out_per_player_s: Option<f64>,
    pub bytes_in_per_player_s: Option<f64>,
    pub datagrams_out_per_player_s: Option<f64>,
    pub datagrams_in_per_player_s: Option<f64>,
}

/// Summarizes the samples taken within `[from_s, to_s]`. `None` with fewer
/// than two of them (or no time between them). Counters are last minus
/// first, read through restarts (a drop counts as a reset from zero).
pub fn summarize(samples: &[NodeSample], from_s: f64, to_s: f64) -> Option<ServerSummary> {
    // NaN times fail both comparisons and drop out here.
    let mut w: Vec<&NodeSample> = samples.iter().filter(|s| s.at_s >= from_s && s.at_s <= to_s).collect();
    w.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let (first, last) = (w.first()?, w.last()?);
    let window_s = last.at_s - first.at_s;
    if w.len() < 2 || !(window_s > 0.0 && window_s.is_finite()) {
        return None;
    }

    let (mut player_seconds, mut covered_s) = (0.0, 0.0);
    for pair in w.windows(2) {
        if let (Some(a), Some(b)) = (pair[0].players, pair[1].players) {
            let dt = pair[1].at_s - pair[0].at_s;
            player_seconds += (a + b) / 2.0 * dt;
            covered_s += dt;
        }
    }
    // Averaged over the time the gauge was seen, so a missed scrape does
    // not read as an empty server.
    let mean_players = if covered_s > 0.0 { player_seconds / covered_s } else { 0.0 };
    let peak_players = w.iter().filter_map(|s| s.players).fold(0.0, f64::max);

    let cpu_seconds = increase(&w, |s| s.cpu_seconds);
    let per_player_s = |v: Option<f64>| v.filter(|_| player_seconds > 0.0).map(|v| round3(v / player_seconds));
    let rss_bytes_end = w.iter().rev().find_map(|s| s.rss_bytes);
    let anon_bytes_end = w.iter().rev().find_map(|s| s.anon_bytes);
    // The node before anyone joined: the earliest sample, if it was empty.
    let idle_rss = samples
        .iter()
        .filter(|s| s.at_s < from_s)
        .min_by(|a, b| a.at_s.total_cmp(&b.at_s))
        .filter(|s| s.players == Some(0.0))
        .and_then(|s| s.rss_bytes);

    let p99_ms = |buckets: fn(&NodeSample) -> &Vec<(f64, f64)>| {
        let with: Vec<&&NodeSample> = w.iter().filter(|s| !buckets(s).is_empty()).collect();
        match (with.first(), with.last()) {
            (Some(a), Some(b)) if with.len() >= 2 => {
                histogram_quantile(buckets(a), buckets(b), 0.99).map(|s| round3(s * 1000.0))
            }
            _ => None,
        }
    };
    let tick_p99_ms = p99_ms(|s| &s.tick_buckets);
    let tick_lateness_p99_ms = p99_ms(|s| &s.lateness_buckets);
    let tick_mean_ms = match (increase(&w, |s| s.tick_sum), increase(&w, |s| s.tick_count)) {
        (Some(sum), Some(count)) if count > 0.0 => Some(round3(sum / count * 1000.0)),
        _ => None,
    };

    Some(ServerSummary {
        window_s: round3(window_s),
        player_seconds: round3(player_seconds),
        mean_players: round3(mean_players),
        peak_players: round3(peak_players),
        cpu_seconds: round3(cpu_seconds.unwrap_or(0.0)),
        cpu_us_per_player_second: per_player_s(cpu_seconds.map(|c| c * 1e6)),
        cpu_cores_used: round3(cpu_seconds.unwrap_or(0.0) / window_s),
        rss_bytes_end: rss_bytes_end.map(round3),
        rss_bytes_per_player: rss_bytes_end.filter(|_| mean_players > 0.0).map(|r| round3(r / mean_players)),
        rss_bytes_added_per_player: rss_bytes_end
            .zip(idle_rss)
            .filter(|_| mean_players > 0.0)
            .map(|(end, idle)| round3((end - idle) / mean_players)),
        anon_bytes_per_player: anon_bytes_end.filter(|_| mean_players > 0.0).map(|a| round3(a / mean_players)),
        tick_p99_ms,
        tick_mean_ms,
        tick_lateness_p99_ms,
        bytes_out_per_player_s: per_player_s(increase(&w, |s| s.bytes_out)),
        bytes_in_per_player_s: per_player_s(increase(&w, |s| s.bytes_in)),
        datagrams_out_per_player_s: per_player_s(increase(&w, |s| s.datagrams_out)),
        datagrams_in_per_player_s: per_player_s(increase(&w, |s| s.datagrams_in)),
    })
}

/// How much a counter grew over the samples that carry it; `None` with
/// fewer than two readings.
fn increase(w: &[&NodeSample], get: impl Fn(&NodeSample) -> Option<f64>) -> Option<f64> {
    let mut readings = w.iter().filter_map(|s| get(s));
    let mut prev = readings.next()?;
    let mut total = None;
    for v in readings {
        let grew = if v >= prev { v - prev } else { v };
        total = Some(total.unwrap_or(0.0) + grew);
        prev = v;
    }
    total
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Shaped like the node's page (prometheus-client's OpenMetrics text).
    const PAGE: &str = r#"# HELP process_cpu_seconds CPU time used.
# TYPE process_cpu_seconds counter
process_cpu_seconds_total 12.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 7.5e7
process_resident_anonymous_memory_bytes 2.5e7
# HELP trespasser_players Players holding a lobby slot (connected or in grace).
# TYPE trespasser_players gauge
trespasser_players 40
trespasser_connections 41 1700000000000
trespasser_lobbies 5
trespasser_ticks_total 9000
# TYPE trespasser_tick_duration_seconds histogram
trespasser_tick_duration_seconds_sum 1.8
trespasser_tick_duration_seconds_count 9000
trespasser_tick_duration_seconds_bucket{le="0.0001"} 1000
trespasser_tick_duration_seconds_bucket{le="0.0002"} 8000
trespasser_tick_duration_seconds_bucket{le="+Inf"} 9000
trespasser_tick_duration_seconds_bucket{le="0.0004"} 8900
trespasser_tick_lateness_seconds_bucket{le="0.001"} 8950
trespasser_tick_lateness_seconds_bucket{le="+Inf"} 9000
trespasser_datagrams_in_total 100
trespasser_datagrams_out_total 200
trespasser_datagram_bytes_in_total 3000
trespasser_datagram_bytes_out_total 4.5E+04
trespasser_datagrams_dropped_total{reason="rate"} 7
trespasser_matches_started_total 3
trespasser_matches_completed_total 2
# EOF
"#;

    #[test]
    fn reads_the_node_page() {
        let s = parse_node_metrics(PAGE, 4.0);
        assert_eq!(s.at_s, 4.0);
        assert_eq!(s.cpu_seconds, Some(12.5));
        assert_eq!(s.rss_bytes, Some(75e6));
        assert_eq!(s.anon_bytes, Some(25e6));
        assert_eq!(s.players, Some(40.0));
        assert_eq!(s.connections, Some(41.0), "the timestamp is not the value");
        assert_eq!(s.lobbies, Some(5.0));
        assert_eq!(s.ticks, Some(9000.0));
        assert_eq!((s.tick_sum, s.tick_count), (Some(1.8), Some(9000.0)));
        assert_eq!(s.tick_buckets, vec![(0.0001, 1000.0), (0.0002, 8000.0), (0.0004, 8900.0), (f64::INFINITY, 9000.0)]);
        assert_eq!(s.lateness_buckets, vec![(0.001, 8950.0), (f64::INFINITY, 9000.0)]);
        assert_eq!((s.datagrams_in, s.datagrams_out), (Some(100.0), Some(200.0)));
        assert_eq!((s.bytes_in, s.bytes_out), (Some(3000.0), Some(45000.0)));
        assert_eq!((s.matches_started, s.matches_completed), (Some(3.0), Some(2.0)));
    }

    #[test]
    fn missing_metrics_stay_none_and_garbage_is_skipped() {
        let s =
            parse_node_metrics("trespasser_players NaN\ntrespasser_lobbies abc\n{}\n trespasser_ticks_total\n", 0.0);
        assert_eq!(s, NodeSample::default());
    }

    #[test]
    fn labels_are_parsed_with_quotes_escapes_and_summed() {
        let text = concat!(
            "trespasser_players{mode=\"dm\"} 3\n",
            "trespasser_players{mode=\"a}b,\\\"c\\\"\",x=\"1\"} 4\n",
            "trespasser_tick_duration_seconds_bucket{lobby=\"1\",le=\"1e-3\"} 2\n",
            "trespasser_tick_duration_seconds_bucket{lobby=\"2\",le=\"0.001\"} 5\n",
            "trespasser_tick_duration_seconds_bucket{lobby=\"2\",le=\"+Inf\"} 6\n",
            "trespasser_tick_duration_seconds_bucket{lobby=\"2\"} 6\n",
            "trespasser_lobbies{mode=\"unterminated} 9\n",
        );
        let s = parse_node_metrics(text, 0.0);
        assert_eq!(s.players, Some(7.0));
        assert_eq!(s.tick_buckets, vec![(0.001, 7.0), (f64::INFINITY, 6.0)]);
        assert_eq!(s.lobbies, None);
    }

    fn buckets(counts: &[f64]) -> Vec<(f64, f64)> {
        let les = [0.001, 0.002, 0.004, f64::INFINITY];
        les.iter().copied().zip(counts.iter().copied()).collect()
    }

    #[test]
    fn quantile_interpolates_within_the_bucket_of_the_difference() {
        let before = buckets(&[100.0, 100.0, 100.0, 100.0]);
        // Between the snapshots: 10 in (0, 1ms], 80 in (1, 2ms], 10 in (2, 4ms].
        let after = buckets(&[110.0, 190.0, 200.0, 200.0]);
        let q = |q| histogram_quantile(&before, &after, q).unwrap();
        assert!((q(0.5) - 0.0015).abs() < 1e-12, "{}", q(0.5));
        assert!((q(0.05) - 0.0005).abs() < 1e-12, "first bucket starts at 0: {}", q(0.05));
        assert!((q(0.95) - 0.003).abs() < 1e-12, "{}", q(0.95));
        assert!((q(1.0) - 0.004).abs() < 1e-12);
        // Observations before the first snapshot are not counted: over
        // `after` alone the median would be in the first bucket.
        assert!(histogram_quantile(&[], &after, 0.5).unwrap() < 0.001 + 1e-12);
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_largest_finite_bound() {
        let after = buckets(&[0.0, 0.0, 10.0, 100.0]);
        assert_eq!(histogram_quantile(&[], &after, 0.99), Some(0.004));
        assert_eq!(histogram_quantile(&[], &[(f64::INFINITY, 5.0)], 0.5), None);
    }

    #[test]
    fn quantile_none_without_observations_or_with_a_bad_q() {
        let b = buckets(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(histogram_quantile(&b, &b, 0.5), None);
        assert_eq!(histogram_quantile(&[], &[], 0.5), None);
        assert_eq!(histogram_quantile(&[], &b, 1.5), None);
        assert_eq!(histogram_quantile(&[], &b, f64::NAN), None);
    }

    #[test]
    fn quantile_reads_through_a_restart() {
        let before = buckets(&[500.0, 900.0, 1000.0, 1000.0]);
        let after = buckets(&[0.0, 10.0, 10.0, 10.0]);
        let q = histogram_quantile(&before, &after, 0.5).unwrap();
        assert!((q - 0.0015).abs() < 1e-12, "{q}");
    }

    fn sample(at_s: f64, players: f64, cpu: f64, out: f64, count: f64, sum: f64, fast: f64) -> NodeSample {
        NodeSample {
            at_s,
            players: Some(players),
            cpu_seconds: Some(cpu),
            rss_bytes: Some(50e6 + players * 1e6),
            anon_bytes: Some(2e6 + players * 1e6),
            bytes_out: Some(out),
            bytes_in: Some(out / 10.0),
            datagrams_out: Some(out / 100.0),
            tick_count: Some(count),
            tick_sum: Some(sum),
            tick_buckets: vec![(0.001, fast), (0.01, count), (f64::INFINITY, count)],
            lateness_buckets: vec![(0.002, count), (f64::INFINITY, count)],
            ..NodeSample::default()
        }
    }

    #[test]
    fn summary_over_the_window() {
        let samples = vec![
            sample(-5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            sample(0.0, 0.0, 1.0, 0.0, 100.0, 0.1, 100.0),
            sample(20.0, 10.0, 2.5, 150_000.0, 1100.0, 1.1, 200.0),
            sample(10.0, 10.0, 2.0, 100_000.0, 600.0, 0.6, 150.0),
            sample(30.0, 50.0, 9.0, 9e9, 9e9, 9e9, 0.0),
        ];
        let s = summarize(&samples, 0.0, 20.0).unwrap();
        assert_eq!(s.window_s, 20.0);
        // Trapezoids: (0 + 10) / 2 * 10 + 10 * 10.
        assert_eq!(s.player_seconds, 150.0);
        assert_eq!(s.mean_players, 7.5);
        assert_eq!(s.peak_players, 10.0);
        assert_eq!(s.cpu_seconds, 1.5);
        assert_eq!(s.cpu_cores_used, 0.075);
        assert_eq!(s.cpu_us_per_player_second, Some(10_000.0));
        assert_eq!(s.rss_bytes_end, Some(60e6));
        assert_eq!(s.rss_bytes_per_player, Some(8e6));
        // The idle node at -5 s held 50 MB: 10 MB more over 7.5 players.
        assert_eq!(s.rss_bytes_added_per_player, Some(1_333_333.333));
        // 12 MB anonymous at the end over 7.5 players.
        assert_eq!(s.anon_bytes_per_player, Some(1.6e6));
        assert_eq!(s.bytes_out_per_player_s, Some(1000.0));
        assert_eq!(s.bytes_in_per_player_s, Some(100.0));
        assert_eq!(s.datagrams_out_per_player_s, Some(10.0));
        assert_eq!(s.datagrams_in_per_player_s, None);
        assert_eq!(s.tick_mean_ms, Some(1.0));
        // 1000 ticks in the window, 100 of them under 1 ms: p99 is in (1, 10] ms.
        assert_eq!(s.tick_p99_ms, Some(9.9));
        // Every tick within 2 ms of its time: p99 interpolates to 1.98 ms.
        assert_eq!(s.tick_lateness_p99_ms, Some(1.98));
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["datagrams_in_per_player_s"].is_null());
        assert_eq!(serde_json::from_value::<ServerSummary>(json).unwrap(), s);
    }

    #[test]
    fn added_rss_needs_an_empty_node_first() {
        // The first scrape already saw players: no idle figure to subtract.
        let busy = [
            sample(-5.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            sample(0.0, 4.0, 1.0, 0.0, 1.0, 0.1, 1.0),
            sample(10.0, 4.0, 2.0, 1.0, 2.0, 0.2, 2.0),
        ];
        let s = summarize(&busy, 0.0, 10.0).unwrap();
        assert_eq!(s.rss_bytes_per_player, Some(13.5e6));
        assert_eq!(s.rss_bytes_added_per_player, None);
        // A later empty scrape does not stand in for the idle node.
        let mut later = busy.to_vec();
        later.insert(1, sample(-2.0, 0.0, 0.5, 0.0, 0.5, 0.05, 0.5));
        assert_eq!(summarize(&later, 0.0, 10.0).unwrap().rss_bytes_added_per_player, None);
        // Without scrapes before the window there is nothing to compare.
        assert_eq!(summarize(&busy[1..], 0.0, 10.0).unwrap().rss_bytes_added_per_player, None);
    }

    #[test]
    fn summary_needs_two_samples_apart() {
        let one = [sample(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)];
        assert_eq!(summarize(&one, 0.0, 10.0), None);
        let same_time = [one[0].clone(), one[0].clone()];
        assert_eq!(summarize(&same_time, 0.0, 10.0), None);
        let bare =
            [NodeSample { at_s: 0.0, ..NodeSample::default() }, NodeSample { at_s: 5.0, ..NodeSample::default() }];
        let s = summarize(&bare, 0.0, 10.0).unwrap();
        assert_eq!((s.player_seconds, s.cpu_seconds, s.cpu_us_per_player_second), (0.0, 0.0, None));
        assert_eq!((s.rss_bytes_per_player, s.tick_p99_ms, s.tick_mean_ms), (None, None, None));
        assert_eq!(s.rss_bytes_added_per_player, None);
    }

    #[test]
    fn counters_read_through_a_node_restart() {
        let mut a = sample(0.0, 10.0, 100.0, 0.0, 0.0, 0.0, 0.0);
        let mut b = sample(10.0, 10.0, 1.0, 0.0, 0.0, 0.0, 0.0);
        a.tick_buckets.clear();
        b.tick_buckets.clear();
        let s = summarize(&[a, b], 0.0, 10.0).unwrap();
        assert_eq!(s.cpu_seconds, 1.0);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = parse_node_metrics(&text, 0.0);
        }

        #[test]
        fn metric_shaped_text_never_panics(
            lines in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("trespasser_tick_duration_seconds_bucket"),
                        Just("trespasser_players"),
                        Just("process_cpu_seconds_total"),
                        Just("#"),
                        Just(""),
                    ],
                    "[{}=\",\\\\ a-z0-9.+eE-]{0,30}",
                    "[ 0-9.eEInfNa+-]{0,12}",
                ),
                0..20,
            ),
            q in proptest::num::f64::ANY,
        ) {
            let text: String = lines.iter().map(|(n, l, v)| format!("{n}{l} {v}\n")).collect();
            let s = parse_node_metrics(&text, 1.0);
            let _ = histogram_quantile(&[], &s.tick_buckets, q);
            let _ = summarize(&[s.clone(), NodeSample { at_s: 2.0, ..s }], 0.0, 3.0);
        }
    }
}
