//! Rate of change over a window, e.g. a seepage line rising more than 0.5 m/h.
//!
//! Design: samples are kept at most every `window / 64`, so memory per point stays bounded
//! (about 65 samples) whatever the reading rate. The rate is the change between the newest
//! sample and the oldest one inside the window, scaled to `per`; it is only judged once the
//! samples span at least half the window, so start-up noise cannot raise an alarm.

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::Timestamp;

/// Samples per window kept at most.
const SAMPLES_PER_WINDOW: u32 = 64;

/// The sample history of one point for one rate rule.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    samples: VecDeque<(Timestamp, f64)>,
}

impl RateWindow {
    /// Adds a good value and returns the rate per `per`, once the window is half full.
    pub fn push(&mut self, ts: Timestamp, value: f64, window: Duration, per: Duration) -> Option<f64> {
        let spacing = window / SAMPLES_PER_WINDOW;
        let keep = match self.samples.back() {
            Some((last, _)) if ts <= *last => false,
            Some((last, _)) => ts.since(*last) >= spacing,
            None => true,
        };
        if keep {
            self.samples.push_back((ts, value));
        }
        while self.samples.front().is_some_and(|(t, _)| ts.since(*t) > window) {
            self.samples.pop_front();
        }
        let (t0, v0) = *self.samples.front()?;
        let span = ts.since(t0);
        if span < window / 2 || span.is_zero() {
            return None;
        }
        Some((value - v0) / span.as_secs_f64() * per.as_secs_f64())
    }

    /// Forgets the history (after a gap in good data).
    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_steady_rise_is_measured_per_hour() {
        let mut w = RateWindow::default();
        let mut rate = None;
        // 0.01 m every 36 s = 1 m/h, sampled every 36 s for an hour.
        for i in 0..=100 {
            rate = w.push(Timestamp::from_millis(i * 36_000), i as f64 * 0.01, HOUR, HOUR);
        }
        assert!((rate.unwrap() - 1.0).abs() < 1e-9, "{rate:?}");
    }

    #[test]
    fn no_rate_until_half_the_window_is_covered() {
        let mut w = RateWindow::default();
        assert_eq!(w.push(Timestamp::from_millis(0), 0.0, HOUR, HOUR), None);
        assert_eq!(w.push(Timestamp::from_millis(1_799_000), 5.0, HOUR, HOUR), None);
        assert!(w.push(Timestamp::from_millis(1_800_000), 5.0, HOUR, HOUR).is_some());
    }

    #[test]
    fn memory_stays_bounded_at_high_reading_rates() {
        let mut w = RateWindow::default();
        for i in 0..100_000 {
            w.push(Timestamp::from_millis(i * 100), 1.0, HOUR, HOUR);
        }
        assert!(
            w.samples.len() <= SAMPLES_PER_WINDOW as usize + 2,
            "{}",
            w.samples.len()
        );
    }
}
