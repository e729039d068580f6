//! Which readings raw history keeps: a pure filter, driven by reading timestamps.
//!
//! A reading is kept when it is the point's first, when its quality differs from the last
//! kept one, when its value moved beyond the point's deadband from the last kept value, or
//! when a heartbeat interval has passed since the last kept reading. Everything in between
//! is represented by the last kept value within ± deadband; the minute rollups still count
//! every reading, so nothing is lost from min/avg/max.

use std::time::Duration;

use crate::model::{PointId, PointTable, Quality, Reading, Timestamp};

/// Settings of the embedded history store.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySettings {
    /// How long raw readings are kept.
    pub retention: Duration,
    /// How long per-minute rollups are kept.
    pub rollup_retention: Duration,
    /// A point's raw value is stored at least this often.
    pub heartbeat: Duration,
    /// Default deadband of a point, in percent of its instrument's span.
    pub deadband_percent: f64,
    /// Per-point deadbands in engineering units.
    pub deadbands: Vec<(PointId, f64)>,
    /// Reading batches queued for the store before new ones are dropped (and counted).
    pub queue_batches: usize,
}

impl Default for HistorySettings {
    /// The documented defaults: 48 h raw, 90 days of minutes, 60 s heartbeat, 0.5 % of span.
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(48 * 3600),
            rollup_retention: Duration::from_secs(90 * 24 * 3600),
            heartbeat: Duration::from_secs(60),
            deadband_percent: 0.5,
            deadbands: Vec::new(),
            queue_batches: 1024,
        }
    }
}

/// Per-point rules of raw history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPolicy {
    /// A point's raw row is repeated at least this often even when nothing changes.
    pub heartbeat: Duration,
    /// Deadband of each point in engineering units, by [`crate::model::PointId::index`].
    pub deadbands: Vec<f64>,
}

impl HistoryPolicy {
    /// Resolves every point's deadband: its configured override, else `deadband_percent` of
    /// the instrument's span, else 0 (every change is kept) for a point without a range.
    pub fn new(settings: &HistorySettings, points: &PointTable) -> Self {
        let mut deadbands: Vec<f64> = points
            .iter()
            .map(|(_, m)| match m.range() {
                Some((lo, hi)) if hi > lo => (hi - lo) * settings.deadband_percent / 100.0,
                _ => 0.0,
            })
            .collect();
        for (id, band) in &settings.deadbands {
            if let Some(slot) = deadbands.get_mut(id.index()) {
                *slot = *band;
            }
        }
        Self {
            heartbeat: settings.heartbeat,
            deadbands,
        }
    }

    fn deadband(&self, index: usize) -> f64 {
        self.deadbands.get(index).copied().unwrap_or(0.0)
    }
}

/// The last kept reading of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Kept {
    ts: Timestamp,
    value: f64,
    quality: Quality,
}

/// Why a reading was kept; `None` from [`RawFilter::admit`] means it was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    /// The point's first reading since start (or since the filter forgot it).
    First,
    /// Quality differs from the last kept reading.
    Quality,
    /// The value moved beyond the deadband (or gained or lost a value).
    Change,
    /// A heartbeat interval passed since the last kept reading.
    Heartbeat,
}

/// Remembers the last kept reading of every point.
#[derive(Debug, Clone, Default)]
pub struct RawFilter {
    last: Vec<Option<Kept>>,
}

impl RawFilter {
    /// A filter for `points` points (more grow it).
    pub fn with_points(points: usize) -> Self {
        Self {
            last: vec![None; points],
        }
    }

    /// Decides whether raw history keeps `r`, and remembers it if so.
    pub fn admit(&mut self, policy: &HistoryPolicy, r: &Reading) -> Option<KeepReason> {
        let i = r.point.index();
        if self.last.len() <= i {
            self.last.resize(i + 1, None);
        }
        let reason = match self.last[i] {
            None => Some(KeepReason::First),
            Some(k) if k.quality != r.quality => Some(KeepReason::Quality),
            Some(k) if moved(k.value, r.value, policy.deadband(i)) => Some(KeepReason::Change),
            Some(k) if r.ts.since(k.ts) >= policy.heartbeat => Some(KeepReason::Heartbeat),
            Some(_) => None,
        };
        if reason.is_some() {
            self.last[i] = Some(Kept {
                ts: r.ts,
                value: r.value,
                quality: r.quality,
            });
        }
        reason
    }

    /// Forgets every point, so each one's next reading is kept (after a failed write, the
    /// readings thought kept were not).
    pub fn forget_all(&mut self) {
        self.last.iter_mut().for_each(|k| *k = None);
    }
}

/// Whether `now` differs from `kept` by more than `deadband`; gaining or losing a finite
/// value always counts.
fn moved(kept: f64, now: f64, deadband: f64) -> bool {
    match (kept.is_finite(), now.is_finite()) {
        (true, true) => (now - kept).abs() > deadband,
        (false, false) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::model::{PointId, PointMeta};

    fn points() -> (PointTable, PointId, PointId) {
        let mut t = PointTable::default();
        let meta = |name: &str, range| PointMeta {
            range,
            ..PointMeta::test_gas(name)
        };
        let gas = t.insert(meta("gas", Some((0.0, 100.0)))).unwrap();
        let bare = t.insert(meta("bare", None)).unwrap();
        (t, gas, bare)
    }

    fn settings(overrides: Vec<(PointId, f64)>) -> HistorySettings {
        HistorySettings {
            deadband_percent: 0.5,
            deadbands: overrides,
            ..HistorySettings::default()
        }
    }

    struct Rig {
        clock: ManualClock,
        filter: RawFilter,
        policy: HistoryPolicy,
        point: PointId,
    }

    impl Rig {
        fn new() -> Self {
            let (t, gas, _) = points();
            Self {
                clock: ManualClock::new(Timestamp::from_millis(1_700_000_000_000)),
                filter: RawFilter::default(),
                policy: HistoryPolicy::new(&settings(vec![]), &t),
                point: gas,
            }
        }

        /// One reading a second later than the last.
        fn tick(&mut self, value: f64, quality: Quality) -> Option<KeepReason> {
            self.clock.advance(Duration::from_secs(1));
            let r = Reading {
                point: self.point,
                ts: self.clock.now(),
                value,
                quality,
            };
            self.filter.admit(&self.policy, &r)
        }
    }

    #[test]
    fn deadband_defaults_to_a_fraction_of_the_span_and_overrides_win() {
        let (t, gas, bare) = points();
        let p = HistoryPolicy::new(&settings(vec![]), &t);
        assert_eq!(p.deadbands[gas.index()], 0.5);
        assert_eq!(p.deadbands[bare.index()], 0.0);
        let p = HistoryPolicy::new(&settings(vec![(gas, 2.0), (bare, 0.1)]), &t);
        assert_eq!((p.deadbands[gas.index()], p.deadbands[bare.index()]), (2.0, 0.1));
    }

    #[test]
    fn changes_inside_the_deadband_are_not_kept_until_the_heartbeat() {
        let mut rig = Rig::new();
        assert_eq!(rig.tick(10.0, Quality::Good), Some(KeepReason::First));
        // 0.5 %LEL deadband: wobbles of up to 0.5 from the kept value are skipped.
        for v in [10.2, 9.8, 10.5, 9.5] {
            assert_eq!(rig.tick(v, Quality::Good), None, "{v}");
        }
        assert_eq!(rig.tick(10.6, Quality::Good), Some(KeepReason::Change));
        // Measured from the last kept value (10.6), not the last reading.
        assert_eq!(rig.tick(10.2, Quality::Good), None);
        assert_eq!(rig.tick(10.0, Quality::Good), Some(KeepReason::Change));
    }

    #[test]
    fn a_steady_value_is_kept_once_per_heartbeat() {
        let mut rig = Rig::new();
        let kept: Vec<_> = (0..181).filter_map(|_| rig.tick(3.0, Quality::Good)).collect();
        // First at t=1 s, then at 61, 121 and 181 s: the 60 s default heartbeat.
        assert_eq!(
            kept,
            [
                KeepReason::First,
                KeepReason::Heartbeat,
                KeepReason::Heartbeat,
                KeepReason::Heartbeat
            ]
        );
    }

    #[test]
    fn a_quality_change_is_always_kept_even_with_the_same_value() {
        let mut rig = Rig::new();
        rig.tick(3.0, Quality::Good);
        assert_eq!(rig.tick(3.0, Quality::OutOfRange), Some(KeepReason::Quality));
        assert_eq!(rig.tick(f64::NAN, Quality::CommFault), Some(KeepReason::Quality));
        // A run of comm faults is kept at the heartbeat only.
        assert_eq!(rig.tick(f64::NAN, Quality::CommFault), None);
        assert_eq!(rig.tick(3.0, Quality::Good), Some(KeepReason::Quality));
    }

    #[test]
    fn gaining_or_losing_a_value_counts_as_a_change() {
        assert!(moved(f64::NAN, 1.0, 100.0));
        assert!(moved(1.0, f64::INFINITY, 100.0));
        assert!(!moved(f64::NAN, f64::NAN, 0.0));
        assert!(!moved(1.0, 1.0, 0.0));
        assert!(moved(1.0, 1.0 + 1e-9, 0.0));
    }

    #[test]
    fn forgetting_keeps_the_next_reading_of_every_point() {
        let mut rig = Rig::new();
        rig.tick(3.0, Quality::Good);
        assert_eq!(rig.tick(3.0, Quality::Good), None);
        rig.filter.forget_all();
        assert_eq!(rig.tick(3.0, Quality::Good), Some(KeepReason::First));
    }
}
