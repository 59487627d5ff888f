//! The result of a load run: the JSON report (its keys are a stable
//! contract for CI and later tooling) and the human-readable table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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
    /// Bots whose connection ended without them asking.
    pub bots_disconnected: u64,
    /// `LobbyClosed` events received (each bot matchmakes again after one).
    pub lobbies_closed: u64,
    /// Joins after the first (after a lobby closed or a disconnect).
    pub rejoins: u64,
    /// Tick rate the node announced.
    pub tick_rate: Option<u16>,
    /// HTTP API requests by endpoint (`register`, `login`, `refresh`,
    /// `matchmake`, `join_lobby`); only endpoints that were called. Empty
    /// with `--direct`.
    #[serde(default)]
    pub http: BTreeMap<String, HttpEndpoint>,
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

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// What `--fail-on-error` fails on: any error, or a bot that never joined.
    pub fn failed(&self) -> bool {
        self.error_count() > 0 || self.bots_joined < self.bots_requested
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The final summary for a terminal.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
        let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let mut rows: Vec<(String, String)> = vec![
            ("duration".into(), format!("{:.1} s", self.duration_s)),
            ("bots joined".into(), format!("{} / {}", self.bots_joined, self.bots_requested)),
            ("tick rate".into(), self.tick_rate.map_or_else(|| "-".into(), |t| format!("{t} Hz"))),
            ("join p50 / p99".into(), format!("{} / {}", ms(self.join_ms.p50), ms(self.join_ms.p99))),
        ];
        rows.extend(self.http.iter().map(|(endpoint, h)| {
            let mut v = format!("{} / {}  ({} requests, {} errors", ms(h.p50_ms), ms(h.p99_ms), h.count, h.errors);
            if h.rate_limited > 0 {
                let _ = write!(v, ", {} rate limited", h.rate_limited);
            }
            v.push(')');
            (format!("http {endpoint} p50 / p99"), v)
        }));
        rows.extend([
            ("rtt p50 / p99".into(), format!("{} / {}", ms(self.rtt_ms.p50), ms(self.rtt_ms.p99))),
            ("rtt max".into(), ms(self.rtt_ms.max)),
            (
                "snapshots/s per bot mean / min".into(),
                format!("{} / {}", num(self.snapshots_per_sec.mean), num(self.snapshots_per_sec.min)),
            ),
            ("inputs sent".into(), self.inputs_sent.to_string()),
            ("snapshots received".into(), self.snapshots_received.to_string()),
            ("matches ended".into(), self.matches_ended.to_string()),
            ("lobbies closed".into(), self.lobbies_closed.to_string()),
            ("rejoins".into(), self.rejoins.to_string()),
            ("bots disconnected".into(), self.bots_disconnected.to_string()),
            ("errors".into(), self.error_count().to_string()),
        ]);
        rows.extend(self.errors.iter().map(|(kind, n)| (format!("  {kind}"), n.to_string())));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
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
