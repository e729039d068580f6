//! The rules engine: every alarm of the configuration, driven by readings, operator commands
//! and the clock. Pure and deterministic: no I/O, time comes in with each call.
//!
//! Design: each alarm is a slot (lifecycle + debounce). Evaluators per point (thresholds, rate of
//! change, sensor fault, stale), per device (communication) and per group (deviation, vote) compute
//! raw conditions and drive slots; flips fan out to votes over the point and, for a device's
//! communication alarm, to suppression of that device's point alarms (suppression by design:
//! one communication alarm instead of a flood).

#[cfg(test)]
mod bindings_tests;
mod build;
mod carry;
#[cfg(test)]
mod early_tests;
mod lists;
mod store;
#[cfg(test)]
mod suspect_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub use build::BuildError;
pub use carry::CarryReport;
use lists::{LatestValues, PointLists};

use super::early_warning::{CLEAR_FACTOR, Trend, TrendWindow, predict, predict_seasonal, warns};
use super::flood::{CHATTER_WINDOW, FloodGuard};
use super::rate::RateWindow;
use super::season::Season;
use super::slots::Role;
use super::suspect::{Check, SuspectChecks, SuspectState};
use super::threshold::tripped;
use super::vote::group_level;
use super::{Action, AlarmSettings, Lifecycle, LifecycleError, Limit, VoteMode};
use crate::model::{
    AlarmEvent, ConditionKind, Diagnosis, Level, PointId, PointTable, Quality, Reading, ThresholdSetting, Timestamp,
    Transition,
};

#[derive(Debug, Clone, Copy)]
struct ThresholdEval {
    slot: usize,
    limit: Limit,
    deadband: f64,
}

#[derive(Debug, Clone)]
struct RateEval {
    slot: usize,
    rise: Option<f64>,
    fall: Option<f64>,
    per: Duration,
    window: Duration,
    samples: RateWindow,
}

#[derive(Debug, Clone)]
struct EarlyEval {
    /// One warning per threshold set-point of the point.
    slots: Vec<(Limit, usize)>,
    horizon: Duration,
    window: Duration,
    min_samples: usize,
    samples: TrendWindow,
    trend: Option<Trend>,
    /// The point's cycle, when its history shows one.
    season: Season,
    /// The crossing the cycle and the deviation from it predict, computed when a sample
    /// closes; `None` while no cycle can be used (the straight trend speaks then).
    seasonal: Option<Option<(Limit, Timestamp)>>,
}

/// The suspect-data checks of one point and the alarm of each check that is on.
#[derive(Debug, Clone)]
struct SuspectEval {
    checks: SuspectChecks,
    state: SuspectState,
    /// By `Check::ALL` order: stuck, pinned, jump.
    slots: [Option<usize>; 3],
}

impl SuspectEval {
    /// The alarm slot of `check`, if that check is on.
    fn slot(&self, check: Check) -> Option<usize> {
        Check::ALL.iter().position(|c| *c == check).and_then(|i| self.slots[i])
    }
}

#[derive(Debug, Clone, Copy)]
struct StaleEval {
    slot: usize,
    after: Duration,
}

#[derive(Debug, Clone)]
struct DeviationEval {
    slot: usize,
    points: Vec<PointId>,
    max: f64,
    deadband: f64,
}

#[derive(Debug, Clone, Copy)]
enum VoteInput {
    Point(PointId),
    Group(usize),
}

#[derive(Debug, Clone)]
struct VoteEval {
    name: String,
    inputs: Vec<VoteInput>,
    mode: VoteMode,
    slots: Vec<(Level, usize)>,
    level: Option<Level>,
    parents: Vec<usize>,
}

#[derive(Debug, Clone)]
struct DeviceEval {
    name: String,
    slot: usize,
    points: Vec<PointId>,
    /// Points whose latest reading is a communication fault.
    faulted: usize,
    /// For a device behind a dialled-in DTU: its station's entry.
    station: Option<usize>,
    /// For a station: the entries of the devices behind it.
    members: Vec<usize>,
}

impl DeviceEval {
    fn new(name: String) -> Self {
        Self {
            name,
            slot: 0,
            points: Vec::new(),
            faulted: 0,
            station: None,
            members: Vec::new(),
        }
    }

    /// Every point is silent.
    fn offline(&self) -> bool {
        self.faulted == self.points.len()
    }
}

/// What one call produced: transitions to journal and publish, pending delay timers to persist,
/// and a change of the flood state.
#[derive(Debug, Default)]
pub struct Output {
    /// Transitions, in the order they happened.
    pub events: Vec<AlarmEvent>,
    /// Delay timers started (`Some(since)`) or stopped (`None`), by alarm id.
    pub timers: Vec<(String, Option<Timestamp>)>,
    /// The flood state, when it changed.
    pub flood: Option<bool>,
}

impl Output {
    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.timers.is_empty() && self.flood.is_none()
    }

    /// Empties it for reuse.
    pub fn clear(&mut self) {
        self.events.clear();
        self.timers.clear();
        self.flood = None;
    }
}

/// An operator's command on one alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Acknowledge.
    Acknowledge,
    /// Reset a latched alarm.
    Reset,
    /// Shelve for a duration.
    Shelve(Duration),
    /// End shelving.
    Unshelve,
    /// Take out of service.
    RemoveFromService,
    /// Return to service.
    ReturnToService,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No alarm with that id.
    #[error("no alarm `{0}`")]
    UnknownAlarm(String),
    /// The alarm's state does not allow it.
    #[error(transparent)]
    Refused(#[from] LifecycleError),
    /// Shelving for longer than the site allows.
    #[error("shelving is limited to {max:?}")]
    ShelveTooLong {
        /// The limit.
        max: Duration,
    },
}

/// Alarm-system performance figures for the feed and the console.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AlarmStats {
    /// Whether more alarms were annunciated in the last 10 minutes than the flood threshold.
    pub flood: bool,
    /// Annunciated raises in the last 10 minutes.
    pub rate_10min: usize,
    /// Alarms raised at least `chatter_threshold` times in the last minute.
    pub chattering: Vec<String>,
    /// Times an alarm started chattering since start.
    pub chattering_total: u64,
}

/// Per-point, per-device and per-group alarm state. Feed it readings; it returns transitions.
#[derive(Debug)]
pub struct RulesEngine {
    points: PointTable,
    settings: AlarmSettings,
    slots: store::Slots,
    /// The alarms of each subject that is not a point (devices, stations, groups, the
    /// gateway), to find an alarm by its id; a point's are in `point_slots`.
    subjects: HashMap<Arc<str>, Box<[usize]>>,
    // Per-point lists are flat: they are filled once when the engine is built, and a plant
    // has tens of thousands of points, most with one alarm or none in each list.
    /// Slot indexes here and in `faults` are `u32`s: one or more per point.
    point_slots: PointLists<u32>,
    thresholds: PointLists<ThresholdEval>,
    rates: PointLists<RateEval>,
    earlies: PointLists<EarlyEval>,
    faults: PointLists<u32>,
    /// Boxed: most points have no checks, and the state is large.
    suspects: Vec<Option<Box<SuspectEval>>>,
    stales: PointLists<StaleEval>,
    /// When each point was last heard; the start for a point not heard yet.
    last_seen: Vec<Timestamp>,
    /// The latest trusted value of each point, for deviation groups.
    latest: LatestValues,
    deviations: Vec<DeviationEval>,
    point_deviations: PointLists<usize>,
    votes: Vec<VoteEval>,
    point_votes: PointLists<usize>,
    devices: Vec<DeviceEval>,
    point_device: Vec<u32>,
    point_commfault: Vec<bool>,
    /// The `gateway:<check>` slot of each self-diagnostic.
    gateway: Vec<(ConditionKind, usize)>,
    flood: FloodGuard,
    chattering: BTreeSet<usize>,
    chattering_total: u64,
    started: Timestamp,
}

mod drive;
