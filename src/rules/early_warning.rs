//! Time-to-limit early warning (预警 before 报警): predicts when a point's value will reach its
//! next set-point in the direction of its trend, and warns while that is within a horizon.
//!
//! Design: the trend is the Theil–Sen estimator, the median of the slopes between every pair of
//! samples in the window, with the level taken as the median of the samples' residuals. It
//! was chosen over a least-squares fit because a single spike (a bumped detector, a burst of
//! interference) moves a least-squares slope in proportion to its size, while the median of
//! pairwise slopes ignores up to ~29 % of wild samples; and unlike a fit with outlier
//! rejection it needs no threshold to tune. To keep its cost bounded the window keeps at most
//! one sample per `window / 32` (at most 33 samples, 528 pairs), the mean of the readings in
//! its interval, and the estimate is only recomputed when a sample closes.
//!
//! Noise alone also gives a non-zero slope. A trend only counts when the rise it predicts over
//! the window stands clear of the scatter around it: `|slope| · window >= SIGNIFICANCE ·
//! spread`, with `spread` the median absolute residual scaled to a standard deviation
//! (1.4826 · MAD), so a flat but noisy signal never predicts a crossing.
//!
//! A point run in cycles close to its set-point (a batch reactor, a tank filled to its normal
//! top) rises towards it on every cycle, and a straight line cannot tell that rise from a slow
//! overfill. When the point's history shows a clear cycle (`season.rs`), the prediction is
//! the cycle's expected course plus the trend of the deviation from it: the cycle's own future
//! comes from its past, and only a rise that leaves the cycle predicts a crossing.
//!
//! Hysteresis: the warning raises when the predicted crossing is within the horizon and clears
//! only when it moves beyond `CLEAR_FACTOR` × the horizon (or the trend turns, or no
//! significant trend remains), so a prediction hovering at the horizon does not chatter.

use std::collections::VecDeque;
use std::time::Duration;

use super::Limit;
use super::season::Season;
use crate::model::Timestamp;

/// Samples per window kept at most.
const SAMPLES_PER_WINDOW: u32 = 32;

/// How many scatter widths the trend's rise over the window must span to count.
pub const SIGNIFICANCE: f64 = 3.5;

/// How many scatter widths of the deviation from a point's cycle a predicted crossing must
/// pass its set-point by.
pub const MARGIN: f64 = 2.0;

/// An active warning clears only when the predicted crossing is beyond this many horizons.
pub const CLEAR_FACTOR: f64 = 1.5;

/// A robust linear trend at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Units per second.
    pub slope: f64,
    /// The trend line's value at `at` (not the raw latest value, which may be a spike).
    pub level: f64,
    /// When `level` holds: the newest sample's time.
    pub at: Timestamp,
    /// Scatter of the samples around the line, as a standard deviation (1.4826 · MAD).
    pub spread: f64,
    /// Time covered by the samples.
    pub span: Duration,
}

impl Trend {
    /// Whether the trend's rise over its span stands clear of the scatter.
    pub fn significant(&self) -> bool {
        let rise = (self.slope * self.span.as_secs_f64()).abs();
        rise > 0.0 && rise >= SIGNIFICANCE * self.spread
    }
}

/// The median of `xs` (reordered); `None` when empty.
fn median(xs: &mut [f64]) -> Option<f64> {
    let n = xs.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (_, hi, _) = xs.select_nth_unstable_by(mid, f64::total_cmp);
    let hi = *hi;
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = xs[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lo + hi) / 2.0)
}

/// Theil–Sen fit of `(x, y)` points: `(slope, intercept, spread)`, or `None` with fewer than
/// two distinct x.
pub fn theil_sen(points: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, &(x0, y0)) in points.iter().enumerate() {
        for &(x1, y1) in &points[i + 1..] {
            if x1 != x0 {
                slopes.push((y1 - y0) / (x1 - x0));
            }
        }
    }
    let slope = median(&mut slopes)?;
    let mut residuals: Vec<f64> = points.iter().map(|&(x, y)| y - slope * x).collect();
    let intercept = median(&mut residuals)?;
    let mut dev: Vec<f64> = residuals.iter().map(|r| (r - intercept).abs()).collect();
    let spread = 1.4826 * median(&mut dev)?;
    Some((slope, intercept, spread))
}

/// Readings being averaged into the next sample.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Timestamp,
    /// Sum of the readings' offsets from `start`, in seconds.
    offsets: f64,
    sum: f64,
    n: u32,
}

/// The sample history of one point for one early-warning rule: one sample per `window / 32`,
/// each the mean of the readings in its interval (at their mean time), so fast readings
/// narrow the noise the trend sees instead of being thrown away.
#[derive(Debug, Clone, Default)]
pub struct TrendWindow {
    samples: VecDeque<(Timestamp, f64)>,
    bucket: Option<Bucket>,
}

impl TrendWindow {
    /// Adds a good value; returns whether it closed a sample (and the trend may have changed).
    pub fn push(&mut self, ts: Timestamp, value: f64, window: Duration) -> bool {
        let spacing = window / SAMPLES_PER_WINDOW;
        let mut closed = false;
        match &mut self.bucket {
            Some(b) if ts < b.start => return false,
            Some(b) if ts.since(b.start) < spacing => {
                b.offsets += ts.since(b.start).as_secs_f64();
                b.sum += value;
                b.n += 1;
                return false;
            }
            Some(b) => {
                let n = f64::from(b.n);
                let at = b.start.plus(Duration::from_secs_f64(b.offsets / n));
                self.samples.push_back((at, b.sum / n));
                closed = true;
            }
            None => {}
        }
        self.bucket = Some(Bucket {
            start: ts,
            offsets: 0.0,
            sum: value,
            n: 1,
        });
        while self.samples.front().is_some_and(|(t, _)| ts.since(*t) > window) {
            self.samples.pop_front();
        }
        closed
    }

    /// The trend over the window, once it holds `min_samples` samples spanning half of it.
    pub fn trend(&self, window: Duration, min_samples: usize) -> Option<Trend> {
        let &(t0, _) = self.samples.front()?;
        let &(at, _) = self.samples.back()?;
        let span = at.since(t0);
        if self.samples.len() < min_samples.max(2) || span < window / 2 {
            return None;
        }
        let xs: Vec<(f64, f64)> = self
            .samples
            .iter()
            .map(|&(t, v)| (t.since(t0).as_secs_f64(), v))
            .collect();
        let (slope, intercept, spread) = theil_sen(&xs)?;
        Some(Trend {
            slope,
            level: intercept + slope * span.as_secs_f64(),
            at,
            spread,
            span,
        })
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &(Timestamp, f64)> {
        self.samples.iter()
    }

    /// Forgets the history (after untrusted data).
    pub fn clear(&mut self) {
        self.samples.clear();
        self.bucket = None;
    }
}

/// The set-point the trend is heading for and when it gets there: the nearest limit beyond
/// `value` in the trend's direction (a rising trend heads for high limits, a falling one for
/// low limits). `None` with no significant trend, or when no such limit lies ahead.
pub fn predict(trend: &Trend, value: f64, limits: &[Limit]) -> Option<(Limit, Timestamp)> {
    if !trend.significant() {
        return None;
    }
    let rising = trend.slope > 0.0;
    let target = limits
        .iter()
        .filter(|l| l.falling != rising)
        .filter(|l| if rising { l.value > value } else { l.value < value })
        .min_by(|a, b| (a.value - value).abs().total_cmp(&(b.value - value).abs()))?;
    let secs = ((target.value - trend.level) / trend.slope).max(0.0);
    let at = trend
        .at
        .plus(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    Some((*target, at))
}

/// With a cycle known to `season`: the set-point ahead of `value` that the cycle's expected
/// course plus the trend of the deviation from it reaches first within `within` of the newest
/// sample, and when (to the minute). `None` when the cycle cannot be used (no period, or too
/// few samples with an expected value); `Some(None)` when no crossing is predicted.
pub fn predict_seasonal(
    season: &Season,
    samples: &[(Timestamp, f64)],
    value: f64,
    limits: &[Limit],
    within: Duration,
    min_samples: usize,
) -> Option<Option<(Limit, Timestamp)>> {
    season.period_minutes()?;
    let &(at, _) = samples.last()?;
    let t0 = samples.first()?.0;
    let dev: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|&(t, v)| season.expected(t).map(|e| (t.since(t0).as_secs_f64(), v - e)))
        .collect();
    if dev.len() < min_samples.max(2) {
        return None;
    }
    let (slope, intercept, spread) = theil_sen(&dev)?;
    let span = dev[dev.len() - 1].0 - dev[0].0;
    let now = at.since(t0).as_secs_f64();
    let trend = Trend {
        slope,
        level: intercept + slope * now,
        at,
        spread,
        span: Duration::from_secs_f64(span.max(0.0)),
    };
    // Without a trend of its own, the deviation is taken as it stands (its median).
    let receding = trend.significant();
    let (level, slope) = if receding {
        (trend.level, slope)
    } else {
        let mut d: Vec<f64> = dev.iter().map(|(_, d)| *d).collect();
        (median(&mut d)?, 0.0)
    };
    // A deviation that shrinks back towards the cycle's course (the tail of an event, a
    // disturbance dying out) heads for nothing the cycle does not reach on its own.
    let ahead: Vec<&Limit> = limits
        .iter()
        .filter(|l| if l.falling { l.value < value } else { l.value > value })
        .filter(|l| !(receding && (slope > 0.0) == l.falling))
        .collect();
    if ahead.is_empty() {
        return Some(None);
    }
    // The cycle's course repeats only within its noise: a crossing counts when the prediction
    // passes the set-point by twice the deviation's scatter, so a cycle that tops out just under
    // its set-point does not warn on its noise.
    let margin = MARGIN * spread;
    let past = |l: &Limit, predicted: f64| {
        if l.falling {
            predicted <= l.value - margin
        } else {
            predicted >= l.value + margin
        }
    };
    // A prediction already past a set-point the value is not past lags behind the value (the
    // plateau of an event that has just ended): it says nothing of a coming crossing.
    let ahead: Vec<&Limit> = match season.expected(at) {
        Some(e) => ahead.into_iter().filter(|l| !past(l, e + level)).collect(),
        None => ahead,
    };
    let minutes = within.as_secs().div_ceil(60);
    for m in 0..=minutes {
        let h = Duration::from_secs(m * 60);
        let t = at.plus(h);
        let Some(expected) = season.expected(t) else { continue };
        let predicted = expected + level + slope * h.as_secs_f64();
        if let Some(l) = ahead.iter().find(|l| past(l, predicted)) {
            return Some(Some((**l, t)));
        }
    }
    Some(None)
}

/// Whether a crossing predicted at `at` holds the warning at `now`, given whether it is
/// already active: raise within the horizon, hold within `CLEAR_FACTOR` horizons.
pub fn warns(active: bool, now: Timestamp, at: Timestamp, horizon: Duration) -> bool {
    let bound = if active { horizon.mul_f64(CLEAR_FACTOR) } else { horizon };
    at.since(now) <= bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, Priority};

    const MIN: Duration = Duration::from_secs(60);

    fn limit(level: Level, value: f64, falling: bool) -> Limit {
        Limit {
            level,
            value,
            priority: Priority::High,
            falling,
        }
    }

    #[test]
    fn the_fit_is_exact_on_a_line() {
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 3.0 + 0.25 * i as f64)).collect();
        let (slope, intercept, spread) = theil_sen(&pts).unwrap();
        assert!((slope - 0.25).abs() < 1e-12, "{slope}");
        assert!((intercept - 3.0).abs() < 1e-12, "{intercept}");
        assert!(spread.abs() < 1e-12, "{spread}");
    }

    #[test]
    fn a_few_spikes_do_not_move_the_fit() {
        let mut pts: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 10.0 - 0.5 * i as f64)).collect();
        pts[5].1 = 500.0;
        pts[17].1 = -300.0;
        pts[29].1 = 1e6;
        let (slope, intercept, _) = theil_sen(&pts).unwrap();
        assert!((slope + 0.5).abs() < 0.02, "{slope}");
        assert!((intercept - 10.0).abs() < 0.3, "{intercept}");
    }

    #[test]
    fn no_fit_without_two_distinct_times() {
        assert_eq!(theil_sen(&[]), None);
        assert_eq!(theil_sen(&[(1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn the_window_keeps_a_bounded_number_of_samples() {
        let mut w = TrendWindow::default();
        for i in 0..100_000 {
            w.push(Timestamp::from_millis(i * 100), 1.0, 10 * MIN);
        }
        assert!(
            w.samples.len() <= SAMPLES_PER_WINDOW as usize + 1,
            "{}",
            w.samples.len()
        );
    }

    #[test]
    fn no_trend_before_min_samples_and_half_the_window() {
        let mut w = TrendWindow::default();
        // 20 s apart: each reading closes the previous one's sample.
        for i in 0..=15 {
            w.push(Timestamp::from_millis(i * 20_000), i as f64, 10 * MIN);
        }
        // 15 samples spanning 280 s < 300 s.
        assert_eq!(w.trend(10 * MIN, 10), None);
        w.push(Timestamp::from_millis(16 * 20_000), 16.0, 10 * MIN);
        assert!(w.trend(10 * MIN, 10).is_some());
        assert_eq!(w.trend(10 * MIN, 17), None, "16 samples are fewer than 17");
    }

    #[test]
    fn fast_readings_are_averaged_into_one_sample_per_interval() {
        let mut w = TrendWindow::default();
        // One reading a second alternating 9 and 11; 18.75 s intervals average them out.
        for s in 0..=600 {
            let v = if s % 2 == 0 { 9.0 } else { 11.0 };
            w.push(Timestamp::from_millis(s * 1000), v, 10 * MIN);
        }
        assert!(w.samples.len() >= 31, "{}", w.samples.len());
        for (_, v) in &w.samples {
            assert!((v - 10.0).abs() < 0.11, "{v}");
        }
    }

    #[test]
    fn a_ramp_predicts_its_crossing_exactly() {
        let mut w = TrendWindow::default();
        // 0.01 %LEL/s from 5 %LEL: 25 %LEL at t = 2000 s.
        for s in (0..=600).step_by(20) {
            w.push(Timestamp::from_millis(s * 1000), 5.0 + 0.01 * s as f64, 10 * MIN);
        }
        let t = w.trend(10 * MIN, 10).unwrap();
        let limits = [limit(Level::High, 25.0, false), limit(Level::HighHigh, 50.0, false)];
        let (target, at) = predict(&t, 11.0, &limits).unwrap();
        assert_eq!(target.level, Level::High);
        assert_eq!(at, Timestamp::from_millis(2_000_000));
        // Past the high limit the next one ahead is high-high: 50 %LEL at t = 4500 s.
        let (target, at) = predict(&t, 26.0, &limits).unwrap();
        assert_eq!(target.level, Level::HighHigh);
        assert_eq!(at, Timestamp::from_millis(4_500_000));
    }

    #[test]
    fn a_falling_trend_heads_for_the_next_low_limit() {
        let mut w = TrendWindow::default();
        for s in (0..=600).step_by(20) {
            w.push(Timestamp::from_millis(s * 1000), 20.9 - 0.001 * s as f64, 10 * MIN);
        }
        let t = w.trend(10 * MIN, 10).unwrap();
        let limits = [
            limit(Level::Low, 19.5, true),
            limit(Level::LowLow, 18.0, true),
            limit(Level::High, 23.5, false),
        ];
        let (target, at) = predict(&t, 20.3, &limits).unwrap();
        assert_eq!(target.level, Level::Low);
        // 20.3 at 600 s, 0.001/s: 19.5 at 1400 s.
        assert_eq!(at, Timestamp::from_millis(1_400_000));
    }

    /// A deterministic noise source (splitmix64), so the test is the same on every run.
    fn noise(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    #[test]
    fn flat_noise_predicts_nothing() {
        let mut seed = 0x5eed_u64;
        let mut w = TrendWindow::default();
        let limits = [limit(Level::High, 25.0, false), limit(Level::Low, 15.0, true)];
        let mut predicted = 0;
        // A day of readings every 5 s with ±2 %LEL noise around 20 %LEL, 5 from either limit.
        for i in 0..17_280 {
            let v = 20.0 + 4.0 * noise(&mut seed);
            if w.push(Timestamp::from_millis(i * 5000), v, 10 * MIN)
                && let Some(t) = w.trend(10 * MIN, 10)
                && let Some((_, at)) = predict(&t, v, &limits)
                && warns(false, t.at, at, 30 * MIN)
            {
                predicted += 1;
            }
        }
        assert_eq!(predicted, 0);
    }

    #[test]
    fn the_warning_holds_until_the_prediction_leaves_one_and_a_half_horizons() {
        let now = Timestamp::from_millis(0);
        let h = 30 * MIN;
        assert!(warns(false, now, now.plus(h), h));
        assert!(!warns(false, now, now.plus(h + Duration::from_secs(1)), h));
        assert!(warns(true, now, now.plus(45 * MIN), h));
        assert!(!warns(true, now, now.plus(45 * MIN + Duration::from_secs(1)), h));
    }

    #[test]
    fn no_prediction_with_no_limit_ahead() {
        let t = Trend {
            slope: 0.1,
            level: 30.0,
            at: Timestamp::from_millis(0),
            spread: 0.0,
            span: 10 * MIN,
        };
        assert_eq!(predict(&t, 30.0, &[limit(Level::High, 25.0, false)]), None);
        assert_eq!(predict(&t, 30.0, &[limit(Level::Low, 35.0, true)]), None);
    }
}
