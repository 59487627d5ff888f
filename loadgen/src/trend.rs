//! Is the node's memory growing? A least-squares line through the resident
//! memory samples of a soak run, after warm-up, and a verdict that holds up
//! against noise.
//!
//! Why a significance test and not a bare slope: any finite noisy series has
//! a non-zero fitted slope, and over a short window a little jitter can look
//! like many percent per hour. The slope must therefore both exceed the
//! tolerance and stand out from the scatter around the line. Memory samples
//! are autocorrelated (allocators grow and shrink in chunks, lobby churn
//! moves memory for minutes at a time), so the scatter is judged with an
//! effective sample count that discounts correlated neighbours; without that
//! a slow wander would look as certain as a real leak.

use serde::{Deserialize, Serialize};

/// The fitted line and the verdict. The fitted line at the start and end of
/// the window is used rather than the raw samples, so that one noisy sample
/// does not set the figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Points used (those at or after warm-up).
    pub samples: usize,
    pub warmup_s: f64,
    pub slope_bytes_per_hour: f64,
    /// The fitted line at t = 0 (the run's start, not the window's).
    pub intercept_bytes: f64,
    /// Share of the variance the line explains, 0..=1 (0 for a constant series).
    pub r2: f64,
    /// The fitted line at the first point after warm-up.
    pub start_bytes: f64,
    /// The fitted line at the last point.
    pub end_bytes: f64,
    /// Slope relative to `start_bytes`.
    pub growth_percent_per_hour: f64,
    /// Growth above tolerance that the noise cannot explain.
    pub growing: bool,
}

/// Fewer points than this cannot tell a trend from noise.
pub const MIN_POINTS: usize = 10;

/// How many standard errors (autocorrelation-adjusted) the slope must clear
/// to count: about a one-in-a-thousand false alarm on a flat series.
pub const MIN_T: f64 = 3.0;

/// Fits `bytes = intercept + slope * seconds` over the points at or after
/// `warmup_s` (non-finite points are skipped). `growing` when the fitted
/// growth exceeds `tolerance_percent_per_hour` of the fitted start value and
/// the slope is significant. `None` with fewer than [`MIN_POINTS`] points,
/// no time spread, or a fitted start value that is not positive (relative
/// growth would be meaningless).
pub fn memory_trend(points: &[(f64, f64)], warmup_s: f64, tolerance_percent_per_hour: f64) -> Option<Trend> {
    let mut p: Vec<(f64, f64)> =
        points.iter().copied().filter(|&(t, b)| t.is_finite() && b.is_finite() && t >= warmup_s).collect();
    if p.len() < MIN_POINTS {
        return None;
    }
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = p.len() as f64;
    // Centred sums: seconds and bytes are both large, and raw sums of
    // squares would lose the slope to rounding.
    let mean_t = p.iter().map(|x| x.0).sum::<f64>() / n;
    let mean_b = p.iter().map(|x| x.1).sum::<f64>() / n;
    let (mut stt, mut stb, mut sbb) = (0.0, 0.0, 0.0);
    for &(t, b) in &p {
        let (dt, db) = (t - mean_t, b - mean_b);
        stt += dt * dt;
        stb += dt * db;
        sbb += db * db;
    }
    // Sums overflow on absurd input; no line is better than a NaN one.
    if !(stt > 0.0 && stt.is_finite() && stb.is_finite() && sbb.is_finite()) {
        return None;
    }
    let slope = stb / stt;
    let intercept = mean_b - slope * mean_t;
    let at = |t: f64| intercept + slope * t;
    let (start_t, end_t) = (p[0].0, p[p.len() - 1].0);
    let start_bytes = at(start_t);
    if !(start_bytes > 0.0 && start_bytes.is_finite() && slope.is_finite()) {
        return None;
    }

    let residuals: Vec<f64> = p.iter().map(|&(t, b)| b - at(t)).collect();
    let sse: f64 = residuals.iter().map(|e| e * e).sum();
    let r2 = if sbb > 0.0 && sse.is_finite() { (1.0 - sse / sbb).clamp(0.0, 1.0) } else { 0.0 };
    let growth_percent_per_hour = slope * 3600.0 / start_bytes * 100.0;
    if !(growth_percent_per_hour.is_finite() && intercept.is_finite() && at(end_t).is_finite()) {
        return None;
    }
    let growing = growth_percent_per_hour > tolerance_percent_per_hour && significant(slope, stt, &residuals);

    Some(Trend {
        samples: p.len(),
        warmup_s,
        slope_bytes_per_hour: round3(slope * 3600.0),
        intercept_bytes: round3(intercept),
        r2: (r2 * 10_000.0).round() / 10_000.0,
        start_bytes: round3(start_bytes),
        end_bytes: round3(at(end_t)),
        growth_percent_per_hour: round3(growth_percent_per_hour),
        growing,
    })
}

/// Whether a positive slope clears [`MIN_T`] standard errors, with the
/// sample count shrunk for lag-1 autocorrelation of the residuals
/// (n_eff = n (1 - rho) / (1 + rho), the usual correction for trends in
/// serially correlated data).
fn significant(slope: f64, stt: f64, residuals: &[f64]) -> bool {
    if slope <= 0.0 {
        return false;
    }
    let n = residuals.len() as f64;
    let sse: f64 = residuals.iter().map(|e| e * e).sum();
    if sse == 0.0 {
        // A perfect line: nothing to doubt.
        return true;
    }
    let lag1: f64 = residuals.windows(2).map(|w| w[0] * w[1]).sum();
    // Negative correlation would inflate n; staying at n is conservative.
    // The cap keeps n_eff finite for a residual that barely moves.
    let rho = (lag1 / sse).clamp(0.0, 0.99);
    let n_eff = n * (1.0 - rho) / (1.0 + rho);
    if n_eff <= 3.0 {
        return false;
    }
    // The residual variance over n_eff - 2 degrees of freedom (Santer et al.
    // 2000) widens the standard error by about sqrt(n / n_eff).
    let se = (sse / (n_eff - 2.0) / stt).sqrt();
    slope / se >= MIN_T
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic noise, uniform in [-1, 1).
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
    }

    const BASE: f64 = 100e6;

    /// One sample every 5 s for `secs`.
    fn series(secs: u32, mut f: impl FnMut(f64) -> f64) -> Vec<(f64, f64)> {
        (0..=secs / 5).map(|i| i as f64 * 5.0).map(|t| (t, f(t))).collect()
    }

    #[test]
    fn flat_noisy_memory_is_not_growing() {
        for seed in 1..50 {
            let mut noise = Noise(seed);
            // 2 % jitter over 10 minutes: a naive slope could read many %/h.
            let points = series(600, |_| BASE * (1.0 + 0.02 * noise.next()));
            let t = memory_trend(&points, 60.0, 1.0).unwrap();
            assert!(!t.growing, "seed {seed}: {t:?}");
        }
    }

    #[test]
    fn a_slow_wave_is_not_growing() {
        // Correlated noise (memory breathing with lobby churn, a 20 minute
        // wave here, trough to peak): the fitted slope exceeds the
        // tolerance, but neighbouring points are not independent evidence.
        let mut noise = Noise(7);
        let wave = |t: f64| -(t * std::f64::consts::TAU / 1200.0).cos();
        let points = series(1800, |t| BASE * (1.0 + 0.01 * wave(t) + 0.001 * noise.next()));
        let t = memory_trend(&points, 0.0, 0.25).unwrap();
        assert!(t.growth_percent_per_hour > 0.25, "the slope alone would flag it: {t:?}");
        assert!(!t.growing, "{t:?}");
    }

    #[test]
    fn a_steady_leak_is_growing() {
        for seed in 1..20 {
            let mut noise = Noise(seed);
            // 2 %/h for an hour under 0.5 % jitter.
            let points = series(3600, |t| BASE * (1.0 + 0.02 * t / 3600.0 + 0.005 * noise.next()));
            let t = memory_trend(&points, 300.0, 1.0).unwrap();
            assert!(t.growing, "seed {seed}: {t:?}");
            assert!((t.growth_percent_per_hour - 2.0).abs() < 0.3, "{t:?}");
            assert!(t.end_bytes > t.start_bytes);
        }
    }

    #[test]
    fn a_leak_in_steps_is_growing() {
        // Allocators grow in chunks: 1 MB every 3 minutes is 20 MB/h.
        let points = series(3600, |t| BASE + (t / 180.0).floor() * 1e6);
        let t = memory_trend(&points, 0.0, 5.0).unwrap();
        assert!(t.growing, "{t:?}");
        assert!(t.r2 > 0.9);
    }

    #[test]
    fn a_leak_under_the_tolerance_is_not_growing() {
        let points = series(3600, |t| BASE * (1.0 + 0.005 * t / 3600.0));
        let t = memory_trend(&points, 0.0, 1.0).unwrap();
        assert!((t.growth_percent_per_hour - 0.5).abs() < 0.01, "{t:?}");
        assert!(!t.growing);
    }

    #[test]
    fn a_step_during_warmup_is_not_growth() {
        let mut noise = Noise(3);
        let points = series(3600, |t| if t < 120.0 { 60e6 } else { BASE } * (1.0 + 0.003 * noise.next()));
        let t = memory_trend(&points, 300.0, 1.0).unwrap();
        assert!(!t.growing, "{t:?}");
        assert_eq!(t.warmup_s, 300.0);
        assert!(t.samples < points.len());
        assert!((t.start_bytes - BASE).abs() < BASE * 0.01);
        // Without the warm-up the step would dominate the fit.
        assert!(memory_trend(&points, 0.0, 1.0).unwrap().slope_bytes_per_hour > t.slope_bytes_per_hour.abs() * 10.0);
    }

    #[test]
    fn shrinking_memory_is_not_growing() {
        let points = series(3600, |t| BASE * (1.0 - 0.1 * t / 3600.0));
        let t = memory_trend(&points, 0.0, 1.0).unwrap();
        assert!(t.slope_bytes_per_hour < 0.0 && !t.growing);
    }

    #[test]
    fn the_line_is_fitted_exactly() {
        let points: Vec<(f64, f64)> = (0..20).map(|i| (i as f64 * 10.0, 1000.0 + 3.0 * i as f64 * 10.0)).collect();
        let t = memory_trend(&points, 0.0, 1.0).unwrap();
        assert_eq!(t.slope_bytes_per_hour, 3.0 * 3600.0);
        assert_eq!(t.intercept_bytes, 1000.0);
        assert_eq!((t.start_bytes, t.end_bytes), (1000.0, 1570.0));
        assert_eq!(t.r2, 1.0);
        assert_eq!(t.growth_percent_per_hour, 1080.0);
        assert!(t.growing);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(serde_json::from_value::<Trend>(json).unwrap(), t);
    }

    #[test]
    fn too_little_data_is_no_trend() {
        assert_eq!(memory_trend(&[], 0.0, 1.0), None);
        let few: Vec<(f64, f64)> = (0..MIN_POINTS - 1).map(|i| (i as f64, 1.0)).collect();
        assert_eq!(memory_trend(&few, 0.0, 1.0), None);
        let same_time: Vec<(f64, f64)> = (0..20).map(|i| (5.0, i as f64)).collect();
        assert_eq!(memory_trend(&same_time, 0.0, 1.0), None);
        let all_warmup: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 1.0)).collect();
        assert_eq!(memory_trend(&all_warmup, 100.0, 1.0), None);
        let constant = memory_trend(&all_warmup, 0.0, 1.0).unwrap();
        assert_eq!((constant.slope_bytes_per_hour, constant.r2, constant.growing), (0.0, 0.0, false));
    }

    proptest! {
        #[test]
        fn arbitrary_points_never_panic(
            points in proptest::collection::vec((proptest::num::f64::ANY, proptest::num::f64::ANY), 0..40),
            warmup in proptest::num::f64::ANY,
            tolerance in proptest::num::f64::ANY,
        ) {
            if let Some(t) = memory_trend(&points, warmup, tolerance) {
                prop_assert!(t.samples >= MIN_POINTS);
                prop_assert!((0.0..=1.0).contains(&t.r2));
                let figures = [t.slope_bytes_per_hour, t.intercept_bytes, t.start_bytes, t.end_bytes];
                prop_assert!(figures.iter().chain([&t.growth_percent_per_hour]).all(|v| v.is_finite()), "{:?}", t);
            }
        }
    }
}
