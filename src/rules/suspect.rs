//! Suspect data: readings that arrive as `good` but that the instrument cannot have measured.
//!
//! Three checks, each pure (time passed in) and each with its own data-quality alarm:
//! - **stuck**: the value stays within `epsilon` of where it settled for `stuck` while its
//!   kind normally moves (a frozen transmitter, a DTU repeating its cache). A fault in between
//!   does not restart the run, so a value that comes back from a fault exactly where it was
//!   and stays there (a flatline after a fault) is caught at the same time as if no fault had
//!   happened.
//! - **pinned**: the value sits at an end of its measuring range (the 4 mA or 20 mA of a
//!   loop, within 0.1 % of the span) for `pinned`: a broken loop or a saturated cell reads
//!   there, a process rarely does.
//! - **jump**: the value moved faster than `max_rate` (units per second) since the previous
//!   trusted reading, a rate the quantity cannot physically reach; the readings stay suspect
//!   for `jump_hold` after the last such jump.
//!
//! A suspect reading keeps its value and still drives the process alarms (a gas detector stuck
//! high must still alarm); it is marked `suspect` everywhere it goes and its alarm tells the
//! instrument engineer which check fired.

use std::time::Duration;

use crate::model::{PointKind, Timestamp};

/// Share of the span within which a value counts as at the end of its range.
const END_BAND: f64 = 0.001;

/// Which suspect-data checks a point gets, and their windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuspectChecks {
    /// Unchanged within `epsilon` for this long: stuck. `None`: not checked.
    pub stuck: Option<Duration>,
    /// How far (in units) a value may wander and still count as unchanged.
    pub epsilon: f64,
    /// At an end of the measuring range for this long: pinned. `None`: not checked.
    pub pinned: Option<Duration>,
    /// The low end of the range is a normal resting value (a clean atmosphere, a stopped
    /// pump, an empty tank): neither pinned nor stuck there.
    pub rests_at_low: bool,
    /// Fastest possible change, units per second. `None`: not checked.
    pub max_rate: Option<f64>,
    /// How long readings stay suspect after an impossible jump.
    pub jump_hold: Duration,
}

impl SuspectChecks {
    /// No check at all.
    pub const NONE: SuspectChecks = SuspectChecks {
        stuck: None,
        epsilon: 0.0,
        pinned: None,
        rests_at_low: true,
        max_rate: None,
        jump_hold: Duration::from_secs(300),
    };

    /// Whether any check is on.
    pub fn any(&self) -> bool {
        self.stuck.is_some() || self.pinned.is_some() || self.max_rate.is_some()
    }

    /// The defaults of a kind of measurement with measuring range `range` (see
    /// `docs/suspect-data.md` for the reasoning behind each row). Checks that need the range
    /// (pinned, jump as a share of the span) are off without one.
    pub fn for_kind(kind: PointKind, range: Option<(f64, f64)>) -> SuspectChecks {
        use PointKind::*;
        const MIN: u64 = 60;
        let span = range.map(|(lo, hi)| hi - lo).filter(|s| s.is_finite() && *s > 0.0);
        // (stuck, pinned, rests at low, max rate as a share of the span per second)
        let (stuck, pinned, rests_at_low, rate): (Option<u64>, Option<u64>, bool, Option<f64>) = match kind {
            // Clean air reads a flat zero for days; a leak may go from 0 to full scale in a
            // second. Only a reading held at full scale is doubtful.
            Gas | ToxicGas | Methane => (None, Some(MIN), true, None),
            // Fresh air is a flat 20.9 %VOL; a dead cell reads 0.
            Oxygen => (None, Some(MIN), false, None),
            // Process temperatures wander at the sensor's resolution and cannot move 2 % of
            // their range in a second (3 °C/s on 0–150 °C); an open thermocouple pins an end.
            Temperature => (Some(120 * MIN), Some(MIN), false, Some(0.02)),
            // Pump pulsation keeps a live line's pressure moving; a depressurised one rests at
            // zero; water hammer is fast, so no jump limit.
            Pressure => (Some(120 * MIN), Some(MIN), true, None),
            // Turbulence keeps a running flow moving; a stopped pump reads zero.
            Flow => (Some(120 * MIN), Some(MIN), true, None),
            // Mine ventilation never stops: a frozen air velocity is a fault, zero too.
            AirVelocity => (Some(60 * MIN), Some(MIN), false, None),
            // A tank or a pond at rest is flat for hours, but its level cannot move 1 % of its
            // range in a second (a fast fill is centimetres a minute).
            Level | WaterLevel => (None, Some(MIN), true, Some(0.01)),
            Seepage | BeachLength => (None, Some(MIN), false, Some(0.01)),
            // A landslide moves fast: no jump limit; the range ends still mean a fault.
            Displacement => (None, Some(MIN), false, None),
            Rainfall => (None, Some(MIN), true, None),
            State | Other => (None, None, true, None),
        };
        SuspectChecks {
            stuck: stuck.map(Duration::from_secs),
            epsilon: 0.0,
            pinned: pinned.filter(|_| span.is_some()).map(Duration::from_secs),
            rests_at_low,
            max_rate: rate.zip(span).map(|(share, span)| share * span),
            jump_hold: Duration::from_secs(5 * MIN),
        }
    }
}

/// The three checks, in the order their alarms are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Unchanged too long.
    Stuck,
    /// At a range end too long.
    Pinned,
    /// An impossible change.
    Jump,
}

impl Check {
    /// All checks.
    pub const ALL: [Check; 3] = [Check::Stuck, Check::Pinned, Check::Jump];
}

/// What the checks say of one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Stuck now.
    pub stuck: bool,
    /// Pinned now.
    pub pinned: bool,
    /// Within the hold after an impossible jump.
    pub jump: bool,
}

impl Verdict {
    /// Whether any check doubts the reading.
    pub fn suspect(&self) -> bool {
        self.stuck || self.pinned || self.jump
    }

    /// Whether `check` fired.
    pub fn get(&self, check: Check) -> bool {
        match check {
            Check::Stuck => self.stuck,
            Check::Pinned => self.pinned,
            Check::Jump => self.jump,
        }
    }
}

/// The running state of the checks on one point.
#[derive(Debug, Clone, Default)]
pub struct SuspectState {
    /// Where the current flat run started: its first value and time.
    run: Option<(f64, Timestamp)>,
    /// Since when the value sits at a range end.
    at_end: Option<Timestamp>,
    /// The previous trusted reading.
    last: Option<(f64, Timestamp)>,
    /// The last impossible jump.
    jumped: Option<Timestamp>,
}

impl SuspectState {
    /// Judges a trusted reading (good or uncertain) of a point with range `range`.
    pub fn judge(&mut self, c: &SuspectChecks, range: Option<(f64, f64)>, ts: Timestamp, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::default();
        }
        let end = range.and_then(|(lo, hi)| {
            let band = (hi - lo) * END_BAND;
            if value >= hi - band {
                Some(false)
            } else if value <= lo + band {
                Some(true)
            } else {
                None
            }
        });
        // `Some(true)`: at the low end, `Some(false)`: at the high end.
        let resting = end == Some(true) && c.rests_at_low;

        let stuck = match c.stuck {
            Some(window) if !resting => {
                match self.run {
                    Some((v0, _)) if (value - v0).abs() <= c.epsilon => {}
                    _ => self.run = Some((value, ts)),
                }
                self.run.is_some_and(|(_, t0)| ts.since(t0) >= window)
            }
            _ => {
                self.run = None;
                false
            }
        };

        let pinned = match (c.pinned, end) {
            (Some(window), Some(_)) if !resting => {
                let since = *self.at_end.get_or_insert(ts);
                ts.since(since) >= window
            }
            _ => {
                self.at_end = None;
                false
            }
        };

        if let (Some(max), Some((v0, t0))) = (c.max_rate, self.last)
            && ts > t0
        {
            let secs = ts.since(t0).as_secs_f64().max(1.0);
            if (value - v0).abs() > max * secs {
                self.jumped = Some(ts);
            }
        }
        if self.last.is_none_or(|(_, t0)| ts >= t0) {
            self.last = Some((value, ts));
        }
        let jump = c.max_rate.is_some() && self.jump_holds(c, ts);
        Verdict { stuck, pinned, jump }
    }

    /// Whether the hold after the last impossible jump still runs at `now`: the one verdict
    /// that ends by time alone, with no new reading.
    pub fn jump_holds(&self, c: &SuspectChecks, now: Timestamp) -> bool {
        self.jumped.is_some_and(|t| now.since(t) < c.jump_hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn a_frozen_temperature_is_stuck_after_its_window_and_clears_when_it_moves() {
        let c = SuspectChecks::for_kind(PointKind::Temperature, Some((0.0, 150.0)));
        let mut s = SuspectState::default();
        // Moving: never stuck.
        for i in 0..100 {
            assert!(
                !s.judge(&c, Some((0.0, 150.0)), at(i * 10), 60.0 + (i % 3) as f64 * 0.1)
                    .suspect()
            );
        }
        // Frozen at 61.2 from t = 1000 s: stuck exactly two hours later.
        let t0 = 1000;
        for i in 0..720 {
            let v = s.judge(&c, Some((0.0, 150.0)), at(t0 + i * 10), 61.2);
            assert!(!v.stuck, "stuck too early at {i}");
        }
        assert!(s.judge(&c, Some((0.0, 150.0)), at(t0 + 7200), 61.2).stuck);
        // It moves: no longer stuck.
        assert!(!s.judge(&c, Some((0.0, 150.0)), at(t0 + 7210), 61.3).suspect());
    }

    #[test]
    fn a_fault_does_not_restart_a_flat_run() {
        let c = SuspectChecks {
            stuck: Some(10 * MIN),
            ..SuspectChecks::NONE
        };
        let mut s = SuspectState::default();
        s.judge(&c, None, at(0), 5.0);
        s.judge(&c, None, at(240), 5.0);
        // Four minutes of comm fault (no trusted reading), then the same value again.
        assert!(!s.judge(&c, None, at(480), 5.0).stuck);
        assert!(s.judge(&c, None, at(600), 5.0).stuck);
    }

    #[test]
    fn epsilon_lets_a_value_wander_and_stay_stuck() {
        let c = SuspectChecks {
            stuck: Some(MIN),
            epsilon: 0.05,
            ..SuspectChecks::NONE
        };
        let mut s = SuspectState::default();
        s.judge(&c, None, at(0), 1.00);
        s.judge(&c, None, at(30), 1.04);
        assert!(s.judge(&c, None, at(60), 0.96).stuck);
        assert!(!s.judge(&c, None, at(61), 1.06).stuck);
    }

    #[test]
    fn a_gas_detector_resting_at_zero_is_fine_but_pinned_at_full_scale_is_not() {
        let range = Some((0.0, 100.0));
        let c = SuspectChecks::for_kind(PointKind::Gas, range);
        let mut s = SuspectState::default();
        for i in 0..10_000 {
            assert!(!s.judge(&c, range, at(i * 5), 0.0).suspect());
        }
        let t0 = 50_000;
        assert!(!s.judge(&c, range, at(t0), 100.0).suspect());
        assert!(!s.judge(&c, range, at(t0 + 59), 99.95).suspect());
        assert!(s.judge(&c, range, at(t0 + 60), 100.0).pinned);
        assert!(!s.judge(&c, range, at(t0 + 65), 80.0).suspect());
    }

    #[test]
    fn a_dead_oxygen_cell_pins_the_low_end() {
        let range = Some((0.0, 25.0));
        let c = SuspectChecks::for_kind(PointKind::Oxygen, range);
        let mut s = SuspectState::default();
        s.judge(&c, range, at(0), 0.0);
        assert!(s.judge(&c, range, at(60), 0.01).pinned);
    }

    #[test]
    fn an_impossible_jump_is_suspect_for_its_hold() {
        let range = Some((0.0, 10.0));
        let c = SuspectChecks::for_kind(PointKind::Level, range);
        assert_eq!(c.max_rate, Some(0.1));
        let mut s = SuspectState::default();
        assert!(!s.judge(&c, range, at(0), 4.0).jump);
        // 0.09 m in a second is possible by the default (0.1 m/s), 1.5 m is not.
        assert!(!s.judge(&c, range, at(1), 4.09).jump);
        assert!(s.judge(&c, range, at(2), 5.59).jump);
        assert!(s.judge(&c, range, at(200), 5.59).jump);
        assert!(s.jump_holds(&c, at(301)));
        assert!(!s.jump_holds(&c, at(302)));
        assert!(!s.judge(&c, range, at(302), 5.59).jump);
        // After a long gap, a larger change is possible.
        assert!(!s.judge(&c, range, at(1000), 9.0).jump);
    }

    #[test]
    fn defaults_without_a_range_check_only_what_needs_none() {
        let c = SuspectChecks::for_kind(PointKind::Temperature, None);
        assert_eq!(c.pinned, None);
        assert_eq!(c.max_rate, None);
        assert_eq!(c.stuck, Some(120 * MIN));
        assert!(!SuspectChecks::for_kind(PointKind::State, Some((0.0, 1.0))).any());
    }
}
