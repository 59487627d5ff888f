//! Load scenarios in phases, as Artillery describes them: each phase lasts a
//! while and brings new bots at an arrival rate (constant, or ramping
//! linearly to another rate), or a fixed number of bots spread evenly.
//!
//! This module is pure: [`Scenario::arrivals`] says when each bot starts,
//! as offsets from the start of the run; the run sleeps until each.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The phase the server-side figures and the "loadgen not the bottleneck"
/// verdict are measured over, when a scenario names one.
pub const SUSTAINED: &str = "sustained";
/// The ramp phase of the flag-only scenario (`--bots` over `--ramp`).
pub const RAMP: &str = "ramp";
/// More arrivals than this is a typo in a rate, not a load test: the schedule
/// would take gigabytes before the first bot started.
pub const MAX_ARRIVALS: u64 = 10_000_000;
/// The longest phase accepted (a week); longer is certainly a unit mistake.
const MAX_PHASE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("phase {0:?}: expected NAME:DURATION:RATE[:RAMP_TO]")]
    Syntax(String),
    #[error("phase {phase:?}: bad duration {value:?}: {reason}")]
    Duration { phase: String, value: String, reason: String },
    #[error("phase {phase:?}: bad rate {value:?} (bots per second, a finite number >= 0)")]
    Rate { phase: String, value: String },
    #[error("phase {0:?}: a phase needs a name of letters, digits, '-' or '_'")]
    Name(String),
    #[error("phase {0:?}: give either an arrival rate (with an optional ramp_to) or an arrival count")]
    Arrivals(String),
    #[error("the scenario has no phases")]
    Empty,
    #[error("the scenario lasts no time at all")]
    NoTime,
    #[error("the scenario brings {0} bots, more than the {MAX_ARRIVALS} one run can schedule")]
    TooMany(u64),
    #[error("reading the scenario file {path}: {reason}")]
    File { path: String, reason: String },
}

/// One phase of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    #[serde(with = "duration_text")]
    pub duration: Duration,
    /// New bots per second at the start of the phase.
    #[serde(default)]
    pub arrival_rate: f64,
    /// New bots per second at the end of the phase; the rate changes
    /// linearly in between. `None` keeps `arrival_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_to: Option<f64>,
    /// Instead of a rate: exactly this many bots, spread evenly over the
    /// phase (the first at its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_count: Option<u64>,
}

impl Phase {
    /// Parses `NAME:DURATION:RATE[:RAMP_TO]`, e.g. `ramp:60s:5:50`.
    pub fn parse_flag(spec: &str) -> Result<Phase, ScenarioError> {
        let parts: Vec<&str> = spec.split(':').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(ScenarioError::Syntax(spec.to_owned()));
        }
        let name = parts[0].to_owned();
        let duration = humantime::parse_duration(parts[1]).map_err(|e| ScenarioError::Duration {
            phase: name.clone(),
            value: parts[1].to_owned(),
            reason: e.to_string(),
        })?;
        let rate = |value: &str| {
            value.parse::<f64>().map_err(|_| ScenarioError::Rate { phase: name.clone(), value: value.to_owned() })
        };
        let phase = Phase {
            arrival_rate: rate(parts[2])?,
            ramp_to: parts.get(3).map(|v| rate(v)).transpose()?,
            name: name.clone(),
            duration,
            arrival_count: None,
        };
        phase.validate()?;
        Ok(phase)
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ScenarioError::Name(self.name.clone()));
        }
        if self.duration > MAX_PHASE {
            return Err(ScenarioError::Duration {
                phase: self.name.clone(),
                value: humantime::format_duration(self.duration).to_string(),
                reason: "longer than a week".into(),
            });
        }
        for rate in std::iter::once(self.arrival_rate).chain(self.ramp_to) {
            if !rate.is_finite() || rate < 0.0 {
                return Err(ScenarioError::Rate { phase: self.name.clone(), value: rate.to_string() });
            }
        }
        if self.arrival_count.is_some() && (self.arrival_rate > 0.0 || self.ramp_to.is_some()) {
            return Err(ScenarioError::Arrivals(self.name.clone()));
        }
        Ok(())
    }

    /// Expected arrivals over the whole phase (exact for a count).
    pub fn arrivals(&self) -> f64 {
        match self.arrival_count {
            Some(n) => n as f64,
            None => {
                let end = self.ramp_to.unwrap_or(self.arrival_rate);
                (self.arrival_rate + end) / 2.0 * self.duration.as_secs_f64()
            }
        }
    }

    /// Seconds into the phase at which `m` arrivals have accumulated, for
    /// `0 <= m <= self.arrivals()` of a rate phase: the root of
    /// `a t + (b - a) t^2 / 2T = m`.
    fn time_of(&self, m: f64) -> f64 {
        let t_end = self.duration.as_secs_f64();
        let a = self.arrival_rate;
        let b = self.ramp_to.unwrap_or(a);
        if m <= 0.0 {
            return 0.0;
        }
        // The rationalized root stays accurate when b is close to a, where
        // the textbook formula divides two tiny numbers.
        let disc = (a * a + 2.0 * (b - a) * m / t_end).max(0.0);
        (2.0 * m / (a + disc.sqrt())).min(t_end)
    }
}

/// Where a phase lies in the run, for reports and plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Bots scheduled to arrive in the phase (all shards together).
    pub arrivals: u64,
}

/// A whole scenario: the phases in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
    /// Verdict limits by name (see `verdict::Limits`), from the file's
    /// `[limits]` table.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub limits: std::collections::BTreeMap<String, f64>,
}

impl Scenario {
    pub fn new(phases: Vec<Phase>) -> Result<Scenario, ScenarioError> {
        let scenario = Scenario { phases, limits: Default::default() };
        scenario.validate()?;
        Ok(scenario)
    }

    /// Today's flags as a scenario: `bots` joining evenly over `ramp`
    /// ("ramp"), then nobody new until `duration` ("sustained"). A ramp
    /// longer than the run is cut to the run, so every bot still plays.
    pub fn ramp_and_hold(bots: u32, ramp: Duration, duration: Duration) -> Scenario {
        let ramp = ramp.min(duration);
        let mut phases = vec![Phase {
            name: RAMP.into(),
            duration: ramp,
            arrival_rate: 0.0,
            ramp_to: None,
            arrival_count: Some(bots as u64),
        }];
        if duration > ramp {
            phases.push(Phase {
                name: SUSTAINED.into(),
                duration: duration - ramp,
                arrival_rate: 0.0,
                ramp_to: None,
                arrival_count: None,
            });
        }
        Scenario { phases, limits: Default::default() }
    }

    /// Reads a TOML file of `[[phase]]` tables (name, duration, arrival_rate,
    /// ramp_to or arrival_count) and an optional `[limits]` table.
    pub fn from_toml_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let file_error = |reason: String| ScenarioError::File { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        Scenario::from_toml(&text).map_err(|e| match e {
            ScenarioError::File { reason, .. } => file_error(reason),
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::File { path: String::new(), reason: e.to_string() })?;
        scenario.validate()?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if self.phases.is_empty() {
            return Err(ScenarioError::Empty);
        }
        for phase in &self.phases {
            phase.validate()?;
        }
        if self.duration().is_zero() && self.phases.iter().all(|p| p.arrival_count.is_none()) {
            return Err(ScenarioError::NoTime);
        }
        let total: f64 = self.phases.iter().map(Phase::arrivals).sum();
        if total.ceil() > MAX_ARRIVALS as f64 {
            return Err(ScenarioError::TooMany(total.ceil() as u64));
        }
        Ok(())
    }

    /// The whole run, every phase together.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// When each bot starts, as offsets from the start of the run, in order;
    /// bot `i` is the `i`-th arrival. Arrivals accumulate across phases
    /// (half a bot left over at the end of one phase arrives early in the
    /// next), and the first arrival of a rate phase comes at its start.
    pub fn arrivals(&self) -> Vec<Duration> {
        self.schedule().into_iter().map(|(t, _)| t).collect()
    }

    /// Arrival times with the index of the phase each belongs to.
    fn schedule(&self) -> Vec<(Duration, usize)> {
        let mut out = Vec::new();
        let mut offset = Duration::ZERO;
        // Arrivals owed so far, fractional: arrival k happens when it reaches k.
        let mut owed = 0.0f64;
        for (i, phase) in self.phases.iter().enumerate() {
            match phase.arrival_count {
                Some(n) => {
                    out.extend((0..n).map(|k| (offset + phase.duration.mul_f64(k as f64 / n as f64), i)));
                    owed += n as f64;
                }
                None => {
                    let total = phase.arrivals();
                    // Tolerates float error in the sum, so exactly N bots
                    // per phase stay N and not N - 1.
                    let end = owed + total - 1e-9;
                    let mut k = (owed - 1e-9).ceil().max(0.0);
                    while k < end {
                        out.push((offset + Duration::from_secs_f64(phase.time_of(k - owed)), i));
                        k += 1.0;
                    }
                    owed += total;
                }
            }
            offset += phase.duration;
        }
        out
    }

    /// Each phase's place in the run and its arrivals.
    pub fn spans(&self) -> Vec<PhaseSpan> {
        let mut counts = vec![0u64; self.phases.len()];
        for (_, phase) in self.schedule() {
            counts[phase] += 1;
        }
        let mut start = Duration::ZERO;
        self.phases
            .iter()
            .zip(counts)
            .map(|(p, arrivals)| {
                let end = start + p.duration;
                let span = PhaseSpan {
                    name: p.name.clone(),
                    start_s: start.as_secs_f64(),
                    end_s: end.as_secs_f64(),
                    arrivals,
                };
                start = end;
                span
            })
            .collect()
    }

    /// The window (seconds from the start) that steady-state figures are
    /// taken over: the phase named "sustained" if any, else everything after
    /// the phase named "ramp" if any, else the whole run.
    pub fn sustained_window(&self) -> (f64, f64) {
        let spans = self.spans();
        let end = self.duration().as_secs_f64();
        if let Some(s) = spans.iter().find(|s| s.name == SUSTAINED) {
            return (s.start_s, s.end_s);
        }
        match spans.iter().find(|s| s.name == RAMP) {
            Some(ramp) if ramp.end_s < end => (ramp.end_s, end),
            _ => (0.0, end),
        }
    }
}

/// A shard's share of the bots: those whose index is `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn owns(self, bot: u64) -> bool {
        bot % self.count as u64 == self.index as u64
    }

    /// This shard's part of a cap on bots alive at once (rounded up, so the
    /// shards together allow at least the cap).
    pub fn share_of(self, cap: u32) -> u32 {
        let base = cap / self.count;
        base + u32::from(self.index < cap % self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with `0 <= I < N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("{s:?}: expected I/N, e.g. 0/2"))?;
        let index: u32 = i.trim().parse().map_err(|_| format!("{s:?}: {i:?} is not a shard index"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("{s:?}: {n:?} is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("{s:?}: the index must be below the count (0/2 and 1/2 split a run in two)"));
        }
        Ok(Shard { index, count })
    }
}

/// Durations in files as text ("90s", "5m") or as a number of seconds.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(f64),
        Human(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Text::deserialize(d)? {
            Text::Seconds(s) => Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom),
            Text::Human(text) => humantime::parse_duration(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[Duration]) -> Vec<f64> {
        v.iter().map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0).collect()
    }

    #[test]
    fn ramp_and_hold_is_todays_schedule() {
        let s = Scenario::ramp_and_hold(4, Duration::from_secs(2), Duration::from_secs(10));
        // Bot i at ramp * i / bots, as before phases existed.
        assert_eq!(secs(&s.arrivals()), [0.0, 0.5, 1.0, 1.5]);
        assert_eq!(s.duration(), Duration::from_secs(10));
        let spans = s.spans();
        assert_eq!(
            spans.iter().map(|s| (s.name.as_str(), s.start_s, s.end_s, s.arrivals)).collect::<Vec<_>>(),
            [("ramp", 0.0, 2.0, 4), ("sustained", 2.0, 10.0, 0)]
        );
        assert_eq!(s.sustained_window(), (2.0, 10.0));

        // No ramp: everyone at once; a ramp past the end is cut to the run.
        let s = Scenario::ramp_and_hold(3, Duration::ZERO, Duration::from_secs(5));
        assert_eq!(secs(&s.arrivals()), [0.0, 0.0, 0.0]);
        assert_eq!(s.spans()[0].arrivals, 3);
        let s = Scenario::ramp_and_hold(2, Duration::from_secs(9), Duration::from_secs(4));
        assert_eq!(secs(&s.arrivals()), [0.0, 2.0]);
        assert_eq!((s.phases.len(), s.sustained_window()), (1, (0.0, 4.0)));
    }

    #[test]
    fn constant_rates_space_arrivals_evenly_and_carry_fractions() {
        let s = Scenario::new(vec![
            Phase::parse_flag("warm:2s:2").unwrap(),
            Phase::parse_flag("idle:1s:0").unwrap(),
            Phase::parse_flag("hot:1s:1.5").unwrap(),
        ])
        .unwrap();
        // 4 in warm (0, .5, 1, 1.5), none while idle, then 1.5/s from 3 s:
        // arrivals 4 and 5 at 3 s and 3.667 s; half a bot is left owed.
        assert_eq!(secs(&s.arrivals()), [0.0, 0.5, 1.0, 1.5, 3.0, 3.667]);
        let spans = s.spans();
        assert_eq!(spans.iter().map(|s| s.arrivals).collect::<Vec<_>>(), [4, 0, 2]);
        assert_eq!(s.sustained_window(), (0.0, 4.0), "no sustained or ramp phase: the whole run");
    }

    #[test]
    fn a_linear_ramp_accumulates_the_integral_of_the_rate() {
        // 0 -> 10 bots/s over 10 s: N(t) = t^2 / 2, 50 bots in all; the
        // k-th arrives at sqrt(2k).
        let s = Scenario::new(vec![Phase::parse_flag("up:10s:0:10").unwrap()]).unwrap();
        let a = s.arrivals();
        assert_eq!(a.len(), 50);
        for (k, t) in a.iter().enumerate() {
            assert!((t.as_secs_f64() - (2.0 * k as f64).sqrt()).abs() < 1e-6, "arrival {k} at {t:?}");
        }
        // Ramping down mirrors it: 10 -> 0 over 10 s, 50 bots, denser early.
        let down = Scenario::new(vec![Phase::parse_flag("down:10s:10:0").unwrap()]).unwrap().arrivals();
        assert_eq!(down.len(), 50);
        assert!(down.windows(2).all(|w| w[0] <= w[1]));
        assert!(down[25] < Duration::from_secs(3), "half the bots in the first 30 %: {:?}", down[25]);
        // A steady rate given as a ramp to itself is the constant schedule.
        let flat = Scenario::new(vec![Phase::parse_flag("f:4s:2:2").unwrap()]).unwrap().arrivals();
        assert_eq!(secs(&flat), [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
    }

    #[test]
    fn flags_and_files_parse_and_bad_ones_are_refused() {
        let p = Phase::parse_flag("peak:5m:40:80").unwrap();
        assert_eq!(
            (p.name.as_str(), p.duration, p.arrival_rate, p.ramp_to),
            ("peak", Duration::from_secs(300), 40.0, Some(80.0))
        );
        for bad in ["peak", "peak:5m", ":5m:1", "a b:1s:1", "p:5x:1", "p:1s:-1", "p:1s:NaN", "p:1s:1:inf", "p:1s:1:2:3"]
        {
            assert!(Phase::parse_flag(bad).is_err(), "{bad}");
        }
        let s = Scenario::from_toml(
            r#"
            [[phase]]
            name = "ramp"
            duration = "1m"
            arrival_rate = 1
            ramp_to = 5

            [[phase]]
            name = "sustained"
            duration = 120
            arrival_rate = 0

            [[phase]]
            name = "burst"
            duration = "10s"
            arrival_count = 100

            [limits]
            rtt_p99_ms = 80
            "#,
        )
        .unwrap();
        assert_eq!(s.phases.len(), 3);
        assert_eq!(s.phases[1].duration, Duration::from_secs(120));
        assert_eq!(s.limits.get("rtt_p99_ms"), Some(&80.0));
        assert_eq!(s.arrivals().len(), 180 + 100);
        assert_eq!(s.sustained_window(), (60.0, 180.0));
        assert_eq!(Scenario::from_toml("phase = []"), Err(ScenarioError::Empty));
        assert!(matches!(
            Scenario::from_toml("[[phase]]\nname = \"x\"\nduration = \"1s\"\nrate = 2"),
            Err(ScenarioError::File { .. })
        ));
        let both = "[[phase]]\nname = \"x\"\nduration = 1\narrival_rate = 1\narrival_count = 2";
        assert_eq!(Scenario::from_toml(both), Err(ScenarioError::Arrivals("x".into())));
        assert!(matches!(
            Scenario::new(vec![Phase::parse_flag("huge:7d:1e6").unwrap()]),
            Err(ScenarioError::TooMany(_))
        ));
        assert_eq!(Scenario::new(vec![Phase::parse_flag("none:0s:5").unwrap()]), Err(ScenarioError::NoTime));
    }

    #[test]
    fn shards_split_bots_and_caps() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!(s, Shard { index: 1, count: 3 });
        assert_eq!((0..9).filter(|&b| s.owns(b)).collect::<Vec<_>>(), [1, 4, 7]);
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // 10 over 3 shards: 4 + 3 + 3.
        let shares: Vec<u32> = (0..3).map(|index| Shard { index, count: 3 }.share_of(10)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(Shard::WHOLE.share_of(7), 7);
    }
}
