//! `loadgen merge`: the shards of one run (`--shard I/N`) as one report.
//! Counters add up, histograms merge (from their serializations in each
//! report), match ids unite, and every derived figure and verdict is
//! computed again, so the result is what one process would have reported.

use std::collections::BTreeMap;

use crate::report::{HistogramError, Report, decode_histogram, encode_histogram};
use crate::timeline::TimelineSample;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no reports to merge")]
    Empty,
    #[error("shard {index}/{count} appears twice")]
    DuplicateShard { index: u32, count: u32 },
    #[error("the reports come from different scenarios (their phases differ)")]
    Phases,
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    #[error("histogram {0:?}: the shards' ranges do not combine")]
    Incompatible(String),
}

/// Merges shard reports into one; the limits of the first report apply.
pub fn merge_reports(reports: &[Report]) -> Result<Report, MergeError> {
    let (first, rest) = reports.split_first().ok_or(MergeError::Empty)?;
    let mut seen = std::collections::HashSet::new();
    for r in reports {
        if let Some(s) = r.shard
            && !seen.insert((s.index, s.count))
        {
            return Err(MergeError::DuplicateShard { index: s.index, count: s.count });
        }
        if r.phases != first.phases {
            return Err(MergeError::Phases);
        }
    }

    let mut out = first.clone();
    out.shard = None;
    for r in rest {
        out.bots_requested += r.bots_requested;
        out.bots_joined += r.bots_joined;
        add_map(&mut out.errors, &r.errors);
        out.duration_s = out.duration_s.max(r.duration_s);
        out.inputs_sent += r.inputs_sent;
        out.snapshots_received += r.snapshots_received;
        out.bots_disconnected += r.bots_disconnected;
        out.lobbies_closed += r.lobbies_closed;
        out.rejoins += r.rejoins;
        out.tick_rate = out.tick_rate.or(r.tick_rate);
        for (endpoint, row) in &r.http {
            let mine = out.http.entry(endpoint.clone()).or_default();
            mine.count += row.count;
            mine.errors += row.errors;
            mine.rate_limited += row.rate_limited;
        }
        out.processes += r.processes;
        out.arrivals_skipped += r.arrivals_skipped;
        let (b, rb) = (&mut out.bandwidth, &r.bandwidth);
        b.bot_seconds += rb.bot_seconds;
        b.bytes_up += rb.bytes_up;
        b.bytes_down += rb.bytes_down;
        b.datagrams_up += rb.datagrams_up;
        b.datagrams_down += rb.datagrams_down;
        out.snapshot_loss.expected += r.snapshot_loss.expected;
        out.snapshot_loss.received += r.snapshot_loss.received;
        out.chats += r.chats;
        out.churn.leaves += r.churn.leaves;
        out.churn.rejoins += r.churn.rejoins;
        out.impairment = match (out.impairment, r.impairment) {
            (Some(mut a), Some(b)) => {
                a.dropped_up += b.dropped_up;
                a.dropped_down += b.dropped_down;
                Some(a)
            }
            (a, b) => a.or(b),
        };
        let (l, rl) = (&mut out.loadgen, &r.loadgen);
        l.cpu_s += rl.cpu_s;
        l.peak_rss_bytes += rl.peak_rss_bytes;
        // The busiest process decides whether load generation limited the run.
        l.sustained_cpu_cores = max_opt(l.sustained_cpu_cores, rl.sustained_cpu_cores);
        // Every shard scraped the same node: one summary stands for all.
        out.server = out.server.take().or_else(|| r.server.clone());
        out.soak = out.soak.take().or_else(|| r.soak.clone());
        out.timeline = merge_timelines(&out.timeline, &r.timeline);
        merge_histograms(&mut out.merge.histograms, &r.merge.histograms)?;
        out.merge.snapshot_rates.merge(&r.merge.snapshot_rates);
        out.merge.matches_started.extend(&r.merge.matches_started);
        out.merge.matches_ended.extend(&r.merge.matches_ended);
        out.merge.matches_open_at_stop.extend(&r.merge.matches_open_at_stop);
    }
    out.derive()?;
    Ok(out)
}

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn merge_histograms(into: &mut BTreeMap<String, String>, from: &BTreeMap<String, String>) -> Result<(), MergeError> {
    for (name, text) in from {
        let theirs = decode_histogram(name, text)?;
        let merged = match into.get(name) {
            Some(mine) => {
                let mut mine = decode_histogram(name, mine)?;
                mine.add(&theirs).map_err(|_| MergeError::Incompatible(name.clone()))?;
                mine
            }
            None => theirs,
        };
        into.insert(name.clone(), encode_histogram(&merged));
    }
    Ok(())
}

/// Second by second: counts add up; per-bot rates are weighted by each
/// shard's bots; a second's percentiles take the worse shard (the exact
/// per-second distribution is not kept); node figures are the first shard's.
fn merge_timelines(a: &[TimelineSample], b: &[TimelineSample]) -> Vec<TimelineSample> {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => {
                let weighted = |fx: Option<f64>, fy: Option<f64>| {
                    let (wx, wy) = (x.players as f64, y.players as f64);
                    match (fx, fy) {
                        (Some(vx), Some(vy)) if wx + wy > 0.0 => Some((vx * wx + vy * wy) / (wx + wy)),
                        (vx, vy) => vx.or(vy),
                    }
                };
                TimelineSample {
                    t_s: x.t_s,
                    players: x.players + y.players,
                    joined_total: x.joined_total + y.joined_total,
                    errors_total: x.errors_total + y.errors_total,
                    join_p50_ms: max_opt(x.join_p50_ms, y.join_p50_ms),
                    join_p99_ms: max_opt(x.join_p99_ms, y.join_p99_ms),
                    rtt_p50_ms: max_opt(x.rtt_p50_ms, y.rtt_p50_ms),
                    rtt_p99_ms: max_opt(x.rtt_p99_ms, y.rtt_p99_ms),
                    snapshots_per_bot_s: weighted(x.snapshots_per_bot_s, y.snapshots_per_bot_s),
                    bytes_up_per_bot_s: weighted(x.bytes_up_per_bot_s, y.bytes_up_per_bot_s),
                    bytes_down_per_bot_s: weighted(x.bytes_down_per_bot_s, y.bytes_down_per_bot_s),
                    node_cpu_cores: x.node_cpu_cores.or(y.node_cpu_cores),
                    node_rss_bytes: x.node_rss_bytes.or(y.node_rss_bytes),
                    node_players: x.node_players.or(y.node_players),
                    loadgen_cpu_cores: match (x.loadgen_cpu_cores, y.loadgen_cpu_cores) {
                        (Some(p), Some(q)) => Some(p + q),
                        (p, q) => p.or(q),
                    },
                    phase: x.phase.clone(),
                }
            }
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (None, None) => unreachable!("i < the longer length"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::Shard;
    use crate::stats::{Stats, Traffic};

    /// A shard's report as a run makes it, from recorded figures.
    fn shard(index: u32, joins_ms: &[u64], rtts_ms: &[u64], rate: f64, matches: &[uuid::Uuid]) -> Report {
        let s = Stats::new(0);
        for &ms in joins_ms {
            s.requested();
            s.joined(Duration::from_millis(ms), true, 20);
        }
        s.rtts(&rtts_ms.iter().map(|&ms| Duration::from_millis(ms)).collect::<Vec<_>>());
        s.snapshot_rate((rate * 10.0) as u64, Duration::from_secs(10));
        s.traffic(&Traffic {
            bytes_down: 30_000,
            joined: Duration::from_secs(10),
            ticks_expected: 200,
            ticks_received: 190,
            ..Traffic::default()
        });
        for &m in matches {
            s.match_started(m);
        }
        s.http().record("matchmake", Duration::from_millis(joins_ms[0]), crate::stats::HttpOutcome::Ok);
        let mut r = s.report(Duration::from_secs(10));
        r.shard = Some(Shard { index, count: 2 });
        r.limits = crate::verdict::default_limits();
        r.derive().unwrap();
        r
    }

    #[test]
    fn shards_merge_to_what_one_process_would_report() {
        let (m1, m2, m3) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let a = shard(0, &[10, 20, 30], &[5, 6], 20.0, &[m1, m2]);
        let mut b = shard(1, &[40, 50, 60, 70], &[7, 80], 18.0, &[m2, m3]);
        b.merge.matches_ended.push(m2);
        b.errors.insert("timeout".into(), 1);
        let merged = merge_reports(&[a.clone(), b.clone()]).unwrap();

        assert_eq!((merged.bots_requested, merged.bots_joined, merged.processes, merged.shard), (7, 7, 2, None));
        // Percentiles over all seven joins, not an average of the shards'.
        let one = shard(0, &[10, 20, 30, 40, 50, 60, 70], &[5, 6, 7, 80], 19.0, &[]);
        assert_eq!(merged.join_ms, one.join_ms);
        assert_eq!(merged.rtt_ms, one.rtt_ms);
        assert_eq!(merged.http["matchmake"].count, 2);
        assert!((merged.http["matchmake"].max_ms.unwrap() - 40.0).abs() < 0.1);
        assert_eq!(merged.snapshots_per_sec.mean, Some(19.0));
        assert_eq!(merged.snapshots_per_sec.min, Some(18.0));
        // Per bot-second over both shards' 20 bot-seconds.
        assert_eq!(merged.bandwidth.down_bytes_per_bot_sec, Some(3000.0));
        assert_eq!(merged.snapshot_loss.rate, Some(0.05));
        // m2 counted once though both shards saw it.
        assert_eq!((merged.matches.started, merged.matches.ended), (3, 1));
        assert_eq!(merged.errors["timeout"], 1);
        let errors = merged.verdicts.iter().find(|v| v.name == "errors").unwrap();
        assert!(!errors.ok && errors.value == 1.0, "verdicts recomputed: {errors:?}");

        assert!(matches!(merge_reports(&[a.clone(), a.clone()]), Err(MergeError::DuplicateShard { .. })));
        assert!(matches!(merge_reports(&[]), Err(MergeError::Empty)));
        let mut other = b.clone();
        other.phases.push(crate::scenario::PhaseSpan { name: "x".into(), start_s: 0.0, end_s: 1.0, arrivals: 1 });
        assert!(matches!(merge_reports(&[a.clone(), other]), Err(MergeError::Phases)));
        let mut broken = b;
        broken.merge.histograms.insert("rtt".into(), "not base64!".into());
        assert!(matches!(merge_reports(&[a, broken]), Err(MergeError::Histogram(_))));
    }

    #[test]
    fn timelines_add_up_second_by_second() {
        let s = |players: u64, rate: Option<f64>, p99: Option<f64>| TimelineSample {
            players,
            snapshots_per_bot_s: rate,
            rtt_p99_ms: p99,
            loadgen_cpu_cores: Some(0.25),
            ..TimelineSample::default()
        };
        let merged =
            merge_timelines(&[s(10, Some(20.0), Some(3.0)), s(10, None, None)], &[s(30, Some(16.0), Some(9.0))]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].players, 40);
        assert_eq!(merged[0].snapshots_per_bot_s, Some(17.0), "weighted by bots");
        assert_eq!((merged[0].rtt_p99_ms, merged[0].loadgen_cpu_cores), (Some(9.0), Some(0.5)));
        assert_eq!(merged[1], s(10, None, None), "a second only one shard saw");
    }
}
