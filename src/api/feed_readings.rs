//! Reading updates on the live feed: which points a subscriber asked for, and at most one
//! update per point per interval.
//!
//! Design: readings are not journaled for the feed and carry no event id, so they never move
//! a client's `Last-Event-ID`; alarm replay works as without them. A reading that arrives
//! within the interval after the point's last update is not sent; the point's next reading
//! after the interval is. The current value is always at `GET /api/v1/points`.

use std::time::Duration;

use globset::Glob;
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::{PointTable, Reading, Timestamp};

/// Shortest interval a subscriber may ask for.
pub(super) const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Interval when the subscriber names none.
pub(super) const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The `data` of an `event: reading`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReadingEvent {
    /// Point id.
    point: String,
    /// Value; absent when the reading has none (comm fault, decode error).
    value: Option<f64>,
    /// Quality name.
    quality: crate::model::Quality,
    /// Time of the reading, ms since the epoch.
    ts_ms: i64,
    /// Time of the reading, RFC 3339.
    time: String,
}

/// One subscriber's choice of points and its per-point rate limit.
#[derive(Debug)]
pub(super) struct ReadingFilter {
    /// Per point index: whether it matches the subscriber's pattern.
    wanted: Vec<bool>,
    /// Per point index: when the last update was sent.
    last_sent: Vec<Option<Timestamp>>,
    interval: Duration,
}

impl ReadingFilter {
    /// A filter for the points matching `pattern` (a glob like `MHS-001/*`).
    pub(super) fn new(points: &PointTable, pattern: &str, interval: Duration) -> Result<Self, String> {
        let glob = Glob::new(pattern).map_err(|e| e.to_string())?.compile_matcher();
        let wanted: Vec<bool> = points.iter().map(|(_, m)| glob.is_match(&**m.name())).collect();
        Ok(Self {
            last_sent: vec![None; wanted.len()],
            wanted,
            interval: interval.max(MIN_INTERVAL),
        })
    }

    /// Number of points the pattern matched.
    pub(super) fn matched(&self) -> usize {
        self.wanted.iter().filter(|w| **w).count()
    }

    /// Whether to send `r` now; records it as sent if so.
    pub(super) fn admit(&mut self, r: &Reading, now: Timestamp) -> bool {
        let i = r.point.index();
        if !self.wanted.get(i).copied().unwrap_or(false) {
            return false;
        }
        let due = self.last_sent[i].is_none_or(|last| now.since(last) >= self.interval);
        if due {
            self.last_sent[i] = Some(now);
        }
        due
    }
}

/// The event body of a reading.
pub(super) fn event_of(points: &PointTable, r: &Reading) -> ReadingEvent {
    ReadingEvent {
        point: points.meta(r.point).name().to_string(),
        value: r.value.is_finite().then_some(r.value),
        quality: r.quality,
        ts_ms: r.ts.as_millis(),
        time: super::rfc3339(r.ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Quality;

    fn table() -> PointTable {
        let mut t = PointTable::default();
        for name in ["MHS-001/GT-101", "MHS-001/GT-102", "MHS-002/LT-1"] {
            t.insert(crate::model::PointMeta::test_gas(name)).unwrap();
        }
        t
    }

    fn reading(t: &PointTable, name: &str, ms: i64) -> Reading {
        Reading {
            point: t.id_of(name).unwrap(),
            ts: Timestamp::from_millis(ms),
            value: 1.0,
            quality: Quality::Good,
        }
    }

    #[test]
    fn only_matching_points_pass_and_each_at_most_once_per_interval() {
        let t = table();
        let mut f = ReadingFilter::new(&t, "MHS-001/*", Duration::from_secs(1)).unwrap();
        assert_eq!(f.matched(), 2);
        let at = Timestamp::from_millis;
        assert!(f.admit(&reading(&t, "MHS-001/GT-101", 0), at(0)));
        assert!(!f.admit(&reading(&t, "MHS-002/LT-1", 0), at(0)), "not asked for");
        assert!(
            f.admit(&reading(&t, "MHS-001/GT-102", 0), at(10)),
            "other point, own limit"
        );
        assert!(
            !f.admit(&reading(&t, "MHS-001/GT-101", 500), at(500)),
            "within the interval"
        );
        assert!(f.admit(&reading(&t, "MHS-001/GT-101", 1000), at(1000)), "interval over");
    }

    #[test]
    fn a_bad_pattern_is_explained_and_tiny_intervals_are_raised() {
        let t = table();
        assert!(ReadingFilter::new(&t, "MHS-[", DEFAULT_INTERVAL).is_err());
        let f = ReadingFilter::new(&t, "*", Duration::ZERO).unwrap();
        assert_eq!(f.interval, MIN_INTERVAL);
        assert_eq!(f.matched(), 3);
    }
}
