//! A run second by second: what the bots saw and what the node and the load
//! generator cost, for charts and for finding when something went wrong.
//! Also the `/proc` readers the sampler needs; they parse text and leave
//! the reading to the caller.

use serde::{Deserialize, Serialize};

/// One second of a run. Rates and percentiles cover that second only;
/// `None` when there was nothing to measure (no joins, no bots playing,
/// the node's metrics unreachable), so a gap is never drawn as a zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineSample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Bots playing (joined a lobby and not yet left).
    pub players: u64,
    pub joined_total: u64,
    pub errors_total: u64,
    /// Joins completed in this second.
    pub join_p50_ms: Option<f64>,
    pub join_p99_ms: Option<f64>,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    pub snapshots_per_bot_s: Option<f64>,
    pub bytes_up_per_bot_s: Option<f64>,
    pub bytes_down_per_bot_s: Option<f64>,
    pub node_cpu_cores: Option<f64>,
    pub node_rss_bytes: Option<f64>,
    pub node_players: Option<f64>,
    pub loadgen_cpu_cores: Option<f64>,
    /// The run's phase at this second (such as `ramp`, `sustain`, `drain`).
    pub phase: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub samples: Vec<TimelineSample>,
}

impl Timeline {
    /// Where each phase begins: `(t_s, phase)` for the first sample and
    /// every sample whose phase differs from the one before it.
    pub fn phase_starts(&self) -> Vec<(f64, &str)> {
        let mut out: Vec<(f64, &str)> = Vec::new();
        for s in &self.samples {
            if out.last().is_none_or(|(_, p)| *p != s.phase) {
                out.push((s.t_s, &s.phase));
            }
        }
        out
    }
}

/// Clock ticks per second in `/proc/<pid>/stat`. This is the kernel's
/// `USER_HZ`, which is part of the user-space ABI and is 100 on every
/// mainstream Linux architecture whatever the kernel's internal `HZ`; it is
/// what `sysconf(_SC_CLK_TCK)` returns there. Hard-coded to stay free of
/// libc.
pub const CLK_TCK: f64 = 100.0;

/// CPU time (user + system, in seconds) from the text of `/proc/<pid>/stat`.
/// The command name (field 2) is in parentheses and may itself hold spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn proc_cpu_seconds(stat: &str) -> Option<f64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so utime (field 14) is
    // index 11 and stime (field 15) index 12.
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime) as f64 / CLK_TCK)
}

/// Resident set size in bytes from the text of `/proc/<pid>/statm`, whose
/// second field is resident pages.
pub fn proc_rss_bytes(statm: &str, page_size: u64) -> Option<u64> {
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(page_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpu_seconds_from_stat() {
        let stat = "1234 (loadgen) S 1 1234 1234 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0 1000 1 2 3\n";
        assert_eq!(proc_cpu_seconds(stat), Some(3.25));
    }

    #[test]
    fn cpu_seconds_with_a_hostile_command_name() {
        // A process may name itself anything, parentheses and spaces included.
        let stat = "77 (a) b (c) 1 2 3) R 1 77 77 0 -1 0 0 0 0 0 12 8 0 0 20 0 1 0 5 6 7\n";
        assert_eq!(proc_cpu_seconds(stat), Some(0.2));
    }

    #[test]
    fn bad_stat_is_none() {
        assert_eq!(proc_cpu_seconds(""), None);
        assert_eq!(proc_cpu_seconds("1 loadgen S 1 2 3 4 5 6 7 8 9 10 11 12"), None);
        assert_eq!(proc_cpu_seconds("1 (x) S 1 2 3 4 5 6 7 8 9"), None);
        assert_eq!(proc_cpu_seconds("1 (x) S 1 2 3 4 5 6 7 8 9 10 -1 5"), None);
    }

    #[test]
    fn rss_from_statm() {
        assert_eq!(proc_rss_bytes("5000 1200 300 10 0 900 0\n", 4096), Some(1200 * 4096));
        assert_eq!(proc_rss_bytes("5000", 4096), None);
        assert_eq!(proc_rss_bytes("5000 x", 4096), None);
        assert_eq!(proc_rss_bytes(&format!("1 {}", u64::MAX), 4096), None);
    }

    #[test]
    fn phase_starts_mark_each_change() {
        let s = |t_s: f64, phase: &str| TimelineSample { t_s, phase: phase.into(), ..TimelineSample::default() };
        let tl = Timeline { samples: vec![s(0.0, "ramp"), s(1.0, "ramp"), s(2.0, "sustain"), s(3.0, "drain")] };
        assert_eq!(tl.phase_starts(), vec![(0.0, "ramp"), (2.0, "sustain"), (3.0, "drain")]);
        assert!(Timeline::default().phase_starts().is_empty());
        let json = serde_json::to_string(&tl).unwrap();
        assert!(json.contains("\"join_p99_ms\":null"));
        assert_eq!(serde_json::from_str::<Timeline>(&json).unwrap(), tl);
    }

    proptest! {
        #[test]
        fn arbitrary_proc_text_never_panics(text in "\\PC*", page in proptest::num::u64::ANY) {
            let _ = proc_cpu_seconds(&text);
            let _ = proc_rss_bytes(&text, page);
        }
    }
}
