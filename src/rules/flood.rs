//! Alarm-rate tracking (EEMUA 191 / ISA-18.2: more than 10 annunciated alarms in 10 minutes
//! per operator is a flood) and chattering detection (the same alarm raised several times a
//! minute).

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::Timestamp;

/// The alarm-rate window.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(600);
/// The chattering window.
pub const CHATTER_WINDOW: Duration = Duration::from_secs(60);

/// Raises within a sliding window.
#[derive(Debug, Clone, Default)]
pub struct RateCounter {
    times: VecDeque<Timestamp>,
}

impl RateCounter {
    /// Records a raise at `ts` and forgets those older than `window`; returns the count.
    pub fn record(&mut self, ts: Timestamp, window: Duration) -> usize {
        self.times.push_back(ts);
        self.count(ts, window)
    }

    /// Raises within `window` before `now`.
    pub fn count(&mut self, now: Timestamp, window: Duration) -> usize {
        while self.times.front().is_some_and(|t| now.since(*t) >= window) {
            self.times.pop_front();
        }
        self.times.len()
    }
}

/// Whether the alarm system as a whole is in flood.
#[derive(Debug, Clone, Default)]
pub struct FloodGuard {
    raises: RateCounter,
    flood: bool,
}

impl FloodGuard {
    /// Records an annunciated raise; returns the new flood state if it changed.
    pub fn record(&mut self, ts: Timestamp, threshold: usize) -> Option<bool> {
        let n = self.raises.record(ts, FLOOD_WINDOW);
        self.set(n > threshold)
    }

    /// Re-evaluates at `now` (the window slides even without new alarms).
    pub fn tick(&mut self, now: Timestamp, threshold: usize) -> Option<bool> {
        let n = self.raises.count(now, FLOOD_WINDOW);
        self.set(n > threshold)
    }

    /// Annunciated raises in the last 10 minutes (as of the last record or tick).
    pub fn rate(&self) -> usize {
        self.raises.times.len()
    }

    /// Whether in flood.
    pub fn in_flood(&self) -> bool {
        self.flood
    }

    fn set(&mut self, flood: bool) -> Option<bool> {
        (flood != self.flood).then(|| {
            self.flood = flood;
            flood
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn eleven_alarms_in_ten_minutes_are_a_flood_that_ends_as_the_window_slides() {
        let mut g = FloodGuard::default();
        for i in 0..10 {
            assert_eq!(g.record(at(i * 10), 10), None);
        }
        assert_eq!(g.record(at(100), 10), Some(true));
        assert_eq!(g.rate(), 11);
        assert_eq!(g.tick(at(599), 10), None);
        assert_eq!(g.tick(at(600), 10), Some(false), "the first raise left the window");
    }

    #[test]
    fn chatter_counts_raises_within_a_minute() {
        let mut c = RateCounter::default();
        assert_eq!(c.record(at(0), CHATTER_WINDOW), 1);
        assert_eq!(c.record(at(30), CHATTER_WINDOW), 2);
        assert_eq!(c.record(at(59), CHATTER_WINDOW), 3);
        assert_eq!(c.record(at(61), CHATTER_WINDOW), 3);
    }
}
