//! The repeating course of a point that runs in cycles (a batch reactor, a tank filled and
//! drawn down on a schedule), learned from its own recent history, so an early warning can
//! tell a cycle's normal rise from a rise that leaves it.
//!
//! Design: the point's minute means of the last day are kept; every hour that day is searched
//! for its period: for each lag between `MIN_PERIOD` and `MAX_PERIOD`, the median of the
//! absolute differences between minutes that far apart. A cycle shows as a deep dip at its
//! period (the curve repeats, only noise differs); the median, unlike an autocorrelation,
//! does not let a true event's few abnormal minutes move the dip. The first dip below `DIP`
//! of the largest difference before it is the period. While a period is known, the
//! value expected at any instant is the median of the values one, two and three periods
//! before (the median, so one abnormal cycle — a true event — does not become the norm). The
//! early warning then follows the *deviation* from that course: the cycle's own future comes
//! from its past, and only a trend in the deviation predicts a crossing. A point whose history
//! shows no clear cycle has no period, and its warnings use the straight trend alone.

use std::collections::VecDeque;

use crate::model::Timestamp;

/// Minutes of history kept: one day.
const KEEP: usize = 1440;
/// Shortest cycle looked for, minutes.
const MIN_PERIOD: usize = 20;
/// Longest cycle looked for, minutes (three of them must fit in a day).
const MAX_PERIOD: usize = 480;
/// How deep the dip at the period must be: its median difference at most this share of the
/// largest one at a shorter lag (half a cycle apart, a sine differs most).
pub const DIP: f64 = 0.25;
/// How often the period is searched for again, minutes (once an hour).
const REDETECT: i64 = 60;

const MINUTE_NS: i64 = 60_000_000_000;

/// A point's minute means and the cycle found in them.
#[derive(Debug, Clone, Default)]
pub struct Season {
    /// (minute since the epoch, mean), oldest first, at most `KEEP`.
    minutes: VecDeque<(i64, f64)>,
    /// The minute being averaged: (minute, sum, count).
    open: Option<(i64, f64, u32)>,
    /// The cycle's length in minutes, when one is clear.
    period: Option<usize>,
    /// The minute from which the period is searched for again.
    next_search: i64,
    /// The minute of each hour this point searches in, so a plant's points do not all search
    /// in the same minute of the rules task.
    slot: i64,
}

impl Season {
    /// A season that searches in minute `slot % 60` of each hour (give each point its own).
    pub fn in_minute(slot: usize) -> Season {
        Season {
            slot: (slot % REDETECT as usize) as i64,
            ..Season::default()
        }
    }

    /// The first minute after `minute` in this season's minute of the hour.
    fn next_after(&self, minute: i64) -> i64 {
        minute + REDETECT - (minute - self.slot).rem_euclid(REDETECT)
    }

    /// Adds a trusted value.
    pub fn push(&mut self, ts: Timestamp, value: f64) {
        if !value.is_finite() {
            return;
        }
        let minute = ts.as_nanos().div_euclid(MINUTE_NS);
        match &mut self.open {
            Some((m, sum, n)) if *m == minute => {
                *sum += value;
                *n += 1;
                return;
            }
            // A reading older than the open minute is averaged nowhere.
            Some((m, _, _)) if minute < *m => return,
            Some((m, sum, n)) => {
                let closed = (*m, *sum / f64::from(*n));
                if self.minutes.back().is_none_or(|(last, _)| *last < closed.0) {
                    self.minutes.push_back(closed);
                }
                while self.minutes.len() > KEEP || self.minutes.front().is_some_and(|(f, _)| minute - f > KEEP as i64) {
                    self.minutes.pop_front();
                }
            }
            None => {}
        }
        self.open = Some((minute, value, 1));
        if minute >= self.next_search {
            self.period = self.search();
            self.next_search = self.next_after(minute);
        }
    }

    /// Starts from stored minute means (minute since the epoch, mean), oldest first, as the
    /// history keeps them, so a restart does not have to learn the cycle again.
    pub fn seed(&mut self, minutes: &[(i64, f64)]) {
        for &(m, v) in minutes {
            if v.is_finite() && self.minutes.back().is_none_or(|(last, _)| *last < m) {
                self.minutes.push_back((m, v));
            }
        }
        while self.minutes.len() > KEEP {
            self.minutes.pop_front();
        }
        self.period = self.search();
        self.next_search = self.minutes.back().map_or(0, |(m, _)| self.next_after(*m));
    }

    /// The cycle's length, when one is clear.
    pub fn period_minutes(&self) -> Option<usize> {
        self.period
    }

    /// The value the cycle leads to expect at `ts`: the median of the minute means one, two
    /// and three periods before (those known). `None` without a period or history there.
    pub fn expected(&self, ts: Timestamp) -> Option<f64> {
        let p = self.period? as i64;
        let minute = ts.as_nanos().div_euclid(MINUTE_NS);
        let mut seen: Vec<f64> = (1..=3).filter_map(|k| self.at(minute - k * p)).collect();
        match seen.len() {
            0 => None,
            1 => Some(seen[0]),
            2 => Some((seen[0] + seen[1]) / 2.0),
            _ => {
                seen.sort_by(f64::total_cmp);
                Some(seen[1])
            }
        }
    }

    /// The mean of minute `m`, if kept.
    fn at(&self, m: i64) -> Option<f64> {
        let i = self.minutes.partition_point(|(x, _)| *x < m);
        self.minutes.get(i).filter(|(x, _)| *x == m).map(|(_, v)| *v)
    }

    /// The first deep dip of the kept day's median differences, in minutes.
    fn search(&self) -> Option<usize> {
        let (&(first, _), &(last, _)) = (self.minutes.front()?, self.minutes.back()?);
        let n = usize::try_from(last - first + 1).ok()?;
        // Three periods must fit, as many as the expected course is the median of: a dip seen
        // over less is as likely one swing of an ordinary rise and fall as a cycle.
        let top = MAX_PERIOD.min(n / 3);
        if top <= MIN_PERIOD {
            return None;
        }
        // A dense series, missing minutes left out of the differences.
        let mut x = vec![f64::NAN; n];
        for &(m, v) in &self.minutes {
            if let Ok(i) = usize::try_from(m - first) {
                x[i] = v;
            }
        }
        let mut diffs = Vec::with_capacity(n);
        let mut md = |lag: usize| -> Option<f64> {
            diffs.clear();
            diffs.extend(
                (0..n - lag)
                    .map(|i| (x[i + lag] - x[i]).abs())
                    .filter(|d| d.is_finite()),
            );
            if diffs.len() < n / 4 {
                return None;
            }
            let mid = diffs.len() / 2;
            let (_, m, _) = diffs.select_nth_unstable_by(mid, f64::total_cmp);
            Some(*m)
        };
        let curve: Vec<f64> = (MIN_PERIOD / 2..=top + 1).map(|l| md(l).unwrap_or(f64::NAN)).collect();
        let mut highest = 0.0f64;
        for i in 1..curve.len() - 1 {
            let (prev, here, next) = (curve[i - 1], curve[i], curve[i + 1]);
            if !here.is_finite() {
                continue;
            }
            let lag = i + MIN_PERIOD / 2;
            if lag >= MIN_PERIOD && here <= prev && here <= next && here <= DIP * highest {
                return Some(lag);
            }
            highest = highest.max(here);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut Season, minutes: i64, f: impl Fn(i64) -> f64) {
        for m in 0..minutes {
            for k in 0..6 {
                s.push(Timestamp::from_millis((m * 60 + k * 10) * 1000), f(m));
            }
        }
    }

    #[test]
    fn a_two_hour_cycle_is_found_and_gives_its_own_past() {
        let mut s = Season::default();
        feed(&mut s, 24 * 60, |m| {
            76.0 + 3.4 * (m as f64 * std::f64::consts::TAU / 120.0).sin()
        });
        assert_eq!(s.period_minutes(), Some(120));
        let ts = Timestamp::from_millis((24 * 60 + 30) * 60_000);
        let e = s.expected(ts).unwrap();
        assert!(
            (e - (76.0 + 3.4 * (1470.0 * std::f64::consts::TAU / 120.0).sin())).abs() < 1e-9,
            "{e}"
        );
    }

    #[test]
    fn one_abnormal_cycle_does_not_become_the_norm() {
        let mut s = Season::default();
        let base = |m: i64| 50.0 + 10.0 * (m as f64 * std::f64::consts::TAU / 60.0).sin();
        // A true event after the last search (minute 1080), one period before minute 1150.
        feed(&mut s, 1100, |m| if (1085..1095).contains(&m) { 95.0 } else { base(m) });
        assert_eq!(s.period_minutes(), Some(60));
        let e = s.expected(Timestamp::from_millis(1150 * 60_000)).unwrap();
        assert!((e - base(1150)).abs() < 1e-9, "{e}");
    }

    #[test]
    fn stored_minutes_give_the_cycle_at_once() {
        let mut s = Season::default();
        let day: Vec<(i64, f64)> = (0..1440)
            .map(|m| (m, 10.0 + (m as f64 * std::f64::consts::TAU / 90.0).sin()))
            .collect();
        s.seed(&day);
        assert_eq!(s.period_minutes(), Some(90));
    }

    #[test]
    fn each_point_searches_in_its_own_minute_of_the_hour() {
        let s = Season::in_minute(67);
        assert_eq!(s.next_after(0), 7);
        assert_eq!(s.next_after(7), 67);
        assert_eq!(s.next_after(66), 67);
        assert_eq!(Season::default().next_after(59), 60);
    }

    #[test]
    fn noise_and_drift_have_no_period() {
        let mut seed = 7u64;
        let mut noise = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut s = Season::default();
        let values: Vec<f64> = (0..1440).map(|_| 2.0 + noise()).collect();
        feed(&mut s, 1440, |m| values[m as usize]);
        assert_eq!(s.period_minutes(), None);
        let mut s = Season::default();
        feed(&mut s, 1440, |m| m as f64 * 0.01);
        assert_eq!(s.period_minutes(), None);
    }
}
