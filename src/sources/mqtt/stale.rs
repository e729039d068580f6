//! Which MQTT-fed points have gone quiet: a point declared with `stale_after` turns `stale`
//! when nothing arrived for it within that time (since the last message, or since start for a
//! point never heard from). Pure: the caller passes `now` (tokio's clock, so tests can pause it).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::PointId;

#[derive(Debug, Clone)]
struct Slot {
    point: PointId,
    after: Duration,
    last: Instant,
    stale: bool,
}

/// Last arrival of every watched point.
#[derive(Debug, Clone, Default)]
pub struct StaleTracker {
    slots: Vec<Slot>,
    index: HashMap<PointId, usize>,
    /// While the link is lost nothing turns stale.
    paused: bool,
}

impl StaleTracker {
    /// Watches `point`, stale after `after` of silence from `now`; a point watched twice keeps
    /// the shorter time.
    pub fn watch(&mut self, point: PointId, after: Duration, now: Instant) {
        match self.index.get(&point) {
            Some(&i) => self.slots[i].after = self.slots[i].after.min(after),
            None => {
                self.index.insert(point, self.slots.len());
                self.slots.push(Slot {
                    point,
                    after,
                    last: now,
                    stale: false,
                });
            }
        }
    }

    /// A reading of `point` arrived at `now`.
    pub fn seen(&mut self, point: PointId, now: Instant) {
        if let Some(&i) = self.index.get(&point) {
            let s = &mut self.slots[i];
            s.last = now;
            s.stale = false;
        }
    }

    /// Stops reporting points until [`StaleTracker::resume`] (their link is known lost).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Reports again, counting silence from `now`.
    pub fn resume(&mut self, now: Instant) {
        if self.paused {
            self.paused = false;
            for s in &mut self.slots {
                s.last = now;
            }
        }
    }

    /// Appends the points that turned stale by `now` (each once per silence).
    pub fn sweep(&mut self, now: Instant, out: &mut Vec<PointId>) {
        if self.paused {
            return;
        }
        for s in &mut self.slots {
            if !s.stale && now.saturating_duration_since(s.last) >= s.after {
                s.stale = true;
                out.push(s.point);
            }
        }
    }

    /// How often to sweep: a quarter of the shortest `stale_after`, between 100 ms and 1 s.
    pub fn period(&self) -> Option<Duration> {
        self.slots
            .iter()
            .map(|s| s.after / 4)
            .min()
            .map(|d| d.clamp(Duration::from_millis(100), Duration::from_secs(1)))
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PointKind, PointMeta, PointTable};

    fn ids() -> (PointId, PointId) {
        let mut t = PointTable::default();
        let mut add = |n: &str| {
            t.insert(PointMeta {
                name: n.into(),
                unit: "".into(),
                kind: PointKind::Other,
                device: "d".into(),
                hazard_source: None,
                range: None,
                description: None,
            })
            .unwrap()
        };
        (add("a"), add("b"))
    }

    #[test]
    fn a_silent_point_turns_stale_once_and_recovers_on_arrival() {
        let (a, b) = ids();
        let t0 = Instant::now();
        let mut s = StaleTracker::default();
        s.watch(a, Duration::from_secs(10), t0);
        s.watch(b, Duration::from_secs(30), t0);
        s.watch(b, Duration::from_secs(20), t0);
        let mut out = Vec::new();
        s.seen(a, t0 + Duration::from_secs(5));
        s.sweep(t0 + Duration::from_secs(14), &mut out);
        assert!(out.is_empty());
        s.sweep(t0 + Duration::from_secs(15), &mut out);
        assert_eq!(out, [a]);
        s.sweep(t0 + Duration::from_secs(20), &mut out);
        assert_eq!(out, [a, b]);
        s.sweep(t0 + Duration::from_secs(40), &mut out);
        assert_eq!(out.len(), 2, "reported once per silence");
        s.seen(a, t0 + Duration::from_secs(41));
        s.sweep(t0 + Duration::from_secs(51), &mut out);
        assert_eq!(out, [a, b, a]);
        assert_eq!(s.period(), Some(Duration::from_secs(1)));
    }
}
