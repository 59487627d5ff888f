//! Pass/fail limits checked against a report: the quality bars by
//! default, each overridable (`--limit NAME=VALUE`, a scenario's `[limits]`)
//! or switched off (`--limit NAME=off`). Pure: a report in, verdicts out.

use std::collections::BTreeMap;

use crate::report::{Report, Verdict};

/// Whether a figure must stay at or above its limit, or at or below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    AtLeast,
    AtMost,
}

/// Every verdict the report knows: name, bound and default limit.
pub const KNOWN: &[(&str, Bound, f64)] = &[
    ("snapshots_per_bot_sec_min", Bound::AtLeast, 19.0),
    ("rtt_p99_ms", Bound::AtMost, 60.0),
    ("join_p99_ms", Bound::AtMost, 50.0),
    ("errors", Bound::AtMost, 0.0),
    ("match_completion", Bound::AtLeast, 0.95),
    ("node_tick_p99_ms", Bound::AtMost, 5.0),
    ("node_cpu_us_per_player_sec", Bound::AtMost, 200.0),
    ("node_rss_kib_per_player", Bound::AtMost, 32.0),
    ("down_bytes_per_bot_sec", Bound::AtMost, 3000.0),
    ("up_bytes_per_bot_sec", Bound::AtMost, 2000.0),
    // Above this share of one core over the sustained window, the load
    // generator may be what limits the run, not the node.
    ("loadgen_cpu_cores", Bound::AtMost, 0.9),
    // Soak runs: node memory growth in percent per hour (the trend's
    // tolerance); fails only when the growth is also significant.
    ("memory_flat", Bound::AtMost, 5.0),
];

/// The verdict that says the load generator limited the run.
pub const LOADGEN_BOTTLENECK: &str = "loadgen_cpu_cores";
pub const MEMORY_FLAT: &str = "memory_flat";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("{0:?}: expected NAME=VALUE or NAME=off")]
    Syntax(String),
    #[error("unknown limit {0:?}; known: {known}", known = KNOWN.iter().map(|k| k.0).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("limit {name}: {value:?} is not a finite number")]
    Value { name: String, value: String },
}

/// The defaults.
pub fn default_limits() -> BTreeMap<String, f64> {
    KNOWN.iter().map(|&(name, _, limit)| (name.to_owned(), limit)).collect()
}

/// Applies `NAME=VALUE` / `NAME=off` overrides in order.
pub fn apply_overrides<'a>(
    limits: &mut BTreeMap<String, f64>,
    overrides: impl IntoIterator<Item = &'a str>,
) -> Result<(), LimitError> {
    for spec in overrides {
        let (name, value) = spec.split_once('=').ok_or_else(|| LimitError::Syntax(spec.to_owned()))?;
        let (name, value) = (name.trim(), value.trim());
        set_limit(limits, name, (value != "off").then_some(value))?;
    }
    Ok(())
}

/// Sets (or with `None` removes) one limit, by a name from [`KNOWN`].
pub fn set_limit(limits: &mut BTreeMap<String, f64>, name: &str, value: Option<&str>) -> Result<(), LimitError> {
    if !KNOWN.iter().any(|k| k.0 == name) {
        return Err(LimitError::Unknown(name.to_owned()));
    }
    match value {
        None => {
            limits.remove(name);
        }
        Some(v) => {
            let parsed = v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| LimitError::Value { name: name.to_owned(), value: v.to_owned() })?;
            limits.insert(name.to_owned(), parsed);
        }
    }
    Ok(())
}

/// The figure each verdict checks, if the run measured it.
fn figure(report: &Report, name: &str) -> Option<f64> {
    let server = report.server.as_ref();
    match name {
        "snapshots_per_bot_sec_min" => report.snapshots_per_sec.min,
        "rtt_p99_ms" => report.rtt_ms.p99,
        "join_p99_ms" => report.join_ms.p99,
        "errors" => Some(report.error_count() as f64),
        "match_completion" => report.matches.completion_rate,
        "node_tick_p99_ms" => server?.tick_p99_ms,
        "node_cpu_us_per_player_sec" => server?.cpu_us_per_player_second,
        "node_rss_kib_per_player" => server?.rss_bytes_per_player.map(|b| b / 1024.0),
        "down_bytes_per_bot_sec" => report.bandwidth.down_bytes_per_bot_sec,
        "up_bytes_per_bot_sec" => report.bandwidth.up_bytes_per_bot_sec,
        "loadgen_cpu_cores" => report.loadgen.sustained_cpu_cores,
        "memory_flat" => report.soak.as_ref().map(|t| t.growth_percent_per_hour),
        _ => None,
    }
}

/// Checks every limit whose figure was measured, in [`KNOWN`] order.
pub fn evaluate(report: &Report) -> Vec<Verdict> {
    KNOWN
        .iter()
        .filter_map(|&(name, bound, _)| {
            let limit = *report.limits.get(name)?;
            let value = figure(report, name)?;
            let ok = match (name, bound) {
                // Growth counts only when the trend says it is real, not noise.
                (MEMORY_FLAT, _) => !report.soak.as_ref().is_some_and(|t| t.growing && value > limit),
                (_, Bound::AtLeast) => value >= limit,
                (_, Bound::AtMost) => value <= limit,
            };
            Some(Verdict { name: name.to_owned(), ok, value: (value * 1000.0).round() / 1000.0, limit })
        })
        .collect()
}

/// The bound of a known verdict, for display (`>=` or `<=`).
pub fn bound_of(name: &str) -> Option<Bound> {
    KNOWN.iter().find(|k| k.0 == name).map(|k| k.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Bandwidth, Matches, Percentiles, Rate};

    fn names(v: &[Verdict]) -> Vec<(&str, bool)> {
        v.iter().map(|v| (v.name.as_str(), v.ok)).collect()
    }

    #[test]
    fn measured_figures_are_checked_against_their_bounds() {
        let mut r = Report {
            limits: default_limits(),
            snapshots_per_sec: Rate { mean: Some(19.8), min: Some(18.5) },
            rtt_ms: Percentiles { p99: Some(12.0), ..Default::default() },
            join_ms: Percentiles { p99: Some(50.0), ..Default::default() },
            bandwidth: Bandwidth {
                down_bytes_per_bot_sec: Some(3100.0),
                up_bytes_per_bot_sec: Some(900.0),
                ..Default::default()
            },
            ..Report::default()
        };
        // No server scrape, no finished match, no loadgen window, no soak: left out.
        assert_eq!(
            names(&evaluate(&r)),
            [
                ("snapshots_per_bot_sec_min", false),
                ("rtt_p99_ms", true),
                ("join_p99_ms", true),
                ("errors", true),
                ("down_bytes_per_bot_sec", false),
                ("up_bytes_per_bot_sec", true),
            ]
        );
        r.errors.insert("closed".into(), 2);
        r.matches = Matches { completion_rate: Some(0.96), ..Default::default() };
        r.loadgen.sustained_cpu_cores = Some(0.95);
        let v = evaluate(&r);
        let get = |n: &str| v.iter().find(|v| v.name == n).unwrap().clone();
        assert_eq!(get("errors"), Verdict { name: "errors".into(), ok: false, value: 2.0, limit: 0.0 });
        assert!(get("match_completion").ok);
        assert!(!get(LOADGEN_BOTTLENECK).ok);
    }

    #[test]
    fn overrides_change_or_remove_limits_and_bad_ones_are_refused() {
        let mut limits = default_limits();
        apply_overrides(&mut limits, ["rtt_p99_ms=80", "errors=off", " join_p99_ms = 100 "]).unwrap();
        assert_eq!((limits["rtt_p99_ms"], limits["join_p99_ms"]), (80.0, 100.0));
        assert!(!limits.contains_key("errors"));
        assert!(matches!(apply_overrides(&mut limits, ["nope=1"]), Err(LimitError::Unknown(_))));
        assert!(matches!(apply_overrides(&mut limits, ["rtt_p99_ms"]), Err(LimitError::Syntax(_))));
        assert!(matches!(apply_overrides(&mut limits, ["rtt_p99_ms=fast"]), Err(LimitError::Value { .. })));
        assert!(matches!(apply_overrides(&mut limits, ["rtt_p99_ms=inf"]), Err(LimitError::Value { .. })));

        let r = Report { limits, ..Report::default() };
        assert!(evaluate(&r).iter().all(|v| v.name != "errors"), "a limit switched off is not checked");
    }

    #[test]
    fn memory_fails_only_on_significant_growth() {
        let trend = |growth: f64, growing: bool| crate::trend::Trend {
            samples: 100,
            warmup_s: 60.0,
            slope_bytes_per_hour: 0.0,
            intercept_bytes: 0.0,
            r2: 0.0,
            start_bytes: 1.0,
            end_bytes: 1.0,
            growth_percent_per_hour: growth,
            growing,
        };
        let mut r = Report { limits: default_limits(), soak: Some(trend(20.0, false)), ..Report::default() };
        let flat = |r: &Report| evaluate(r).into_iter().find(|v| v.name == MEMORY_FLAT).unwrap().ok;
        assert!(flat(&r), "large but noisy growth is not a leak");
        r.soak = Some(trend(20.0, true));
        assert!(!flat(&r));
        r.soak = Some(trend(1.0, true));
        assert!(flat(&r), "significant but within tolerance");
    }
}
