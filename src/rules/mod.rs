//! Alarm evaluation: pure state machines fed with readings and a clock, emitting journaled
//! alarm transitions. Deterministic given its inputs; it knows no destination.
//!
//! - [`debounce`]: on/off delays.
//! - [`lifecycle`]: the ISA-18.2 state machine with shelving, suppression and out-of-service.
//! - [`threshold`], [`rate`], [`vote`]: the conditions of the rule kinds that need arithmetic.
//! - [`early_warning`]: time-to-limit prediction on a robust trend.
//! - [`flood`]: alarm-rate and chattering tracking.
//! - [`engine`]: binds rules to points, devices and groups and drives everything.

pub mod debounce;
pub mod early_warning;
pub mod engine;
pub mod flood;
pub mod lifecycle;
pub mod rate;
pub mod season;
mod slots;
pub mod suspect;
pub mod threshold;
pub mod vote;

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Duration;

pub use engine::{AlarmStats, Command, CommandError, Output, RulesEngine};
pub use lifecycle::{Action, Lifecycle, LifecycleError};

use crate::model::{Level, PointId, PointTable, Priority};

/// One limit of a threshold rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Which level (high, high-high, low, low-low, or a warning colour).
    pub level: Level,
    /// The set-point in engineering units.
    pub value: f64,
    /// Priority of the alarm it raises.
    pub priority: Priority,
    /// Whether it trips on a falling value (low limits; warning colours of a quantity whose
    /// danger is a low value, such as the burial depth of a seepage line).
    pub falling: bool,
}

/// Delays shared by most rule kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delays {
    /// The condition must hold this long before the alarm is raised.
    pub on: Duration,
    /// The condition must be gone this long before the alarm clears.
    pub off: Duration,
}

/// How a vote rule turns its members' levels into its own.
#[derive(Debug, Clone, PartialEq)]
pub enum VoteMode {
    /// k members at `level` or above confirm the group at `level` (two detectors in a zone
    /// confirm a leak).
    Confirm {
        /// The level members must reach.
        level: Level,
        /// How many members must reach it.
        k: usize,
    },
    /// Escalation (GB 51108): the group takes its most severe member's level, and each
    /// `(level, k)` pair lifts it one level above `level` when k members are at `level` or above.
    Escalate {
        /// The counts per level.
        counts: Vec<(Level, usize)>,
    },
}

/// A member of a vote: a point (its threshold alarms) or another vote rule (its level).
#[derive(Debug, Clone, PartialEq)]
pub enum VoteMember {
    /// A point's most severe active threshold level.
    Point(PointId),
    /// Another vote rule's level, by rule name.
    Group(String),
}

/// What a rule watches, with everything bound.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Set-points on one point.
    Threshold {
        /// The point.
        point: PointId,
        /// Its limits.
        limits: Vec<Limit>,
        /// Absolute deadband in engineering units.
        deadband: f64,
        /// Delays.
        delays: Delays,
    },
    /// Rate of change of one point over a window.
    RateOfChange {
        /// The point.
        point: PointId,
        /// Alarm when rising faster than this many units per `per`.
        rise: Option<f64>,
        /// Alarm when falling faster than this many units per `per`.
        fall: Option<f64>,
        /// The time unit of `rise` and `fall` (e.g. one hour for m/h).
        per: Duration,
        /// The window the rate is measured over.
        window: Duration,
        /// Priority.
        priority: Priority,
        /// Delays.
        delays: Delays,
    },
    /// No reading within `after`.
    Stale {
        /// The point.
        point: PointId,
        /// How long silence is tolerated.
        after: Duration,
        /// Priority.
        priority: Priority,
    },
    /// The sensor reports a fault (`out_of_range`, `decode_error`).
    SensorFault {
        /// The point.
        point: PointId,
        /// Priority.
        priority: Priority,
        /// Delays.
        delays: Delays,
    },
    /// Suspect data on one point: stuck, pinned at a range end, impossible jumps
    /// (`suspect.rs`); one data-quality alarm per check that is on.
    Suspect {
        /// The point.
        point: PointId,
        /// The checks and their windows.
        checks: suspect::SuspectChecks,
        /// Priority.
        priority: Priority,
    },
    /// The automatic sensor-fault alarm (`[alarms] sensor_fault`) on every point that no
    /// `SensorFault` rule covers: one rule for all of them, expanded per point only where it is
    /// bound ([`bindings`]), so the configuration kept for a reload holds no rule per point.
    DefaultSensorFault {
        /// Priority.
        priority: Priority,
    },
    /// The automatic suspect-data alarms (`[alarms] suspect_data`) on every point whose kind
    /// has checks ([`suspect::SuspectChecks::for_kind`]) and that no `Suspect` rule covers.
    DefaultSuspect {
        /// Priority.
        priority: Priority,
    },
    /// Redundant sensors disagree by more than `max`.
    Deviation {
        /// The redundant points (two or more, same unit).
        points: Vec<PointId>,
        /// Largest tolerated spread (max - min).
        max: f64,
        /// Absolute deadband.
        deadband: f64,
        /// Priority.
        priority: Priority,
        /// Delays.
        delays: Delays,
    },
    /// Time-to-limit early warning on one point: one alarm per threshold set-point of the
    /// point, raised while the trend is predicted to reach that set-point within `horizon`.
    EarlyWarning {
        /// The point; it needs threshold set-points (they are the targets).
        point: PointId,
        /// How far ahead a predicted crossing warns.
        horizon: Duration,
        /// The window the trend is estimated over.
        window: Duration,
        /// Samples (of at most 33 per window) needed before a trend is trusted.
        min_samples: usize,
        /// Priority of the warnings; `None`: one step below the set-point's own (a warning
        /// of a critical high-high is high, of a high limit medium, never below low).
        priority: Option<Priority>,
        /// Delays.
        delays: Delays,
    },
    /// k-of-n voting or escalation over a group.
    Vote {
        /// The members.
        members: Vec<VoteMember>,
        /// How members' levels combine.
        mode: VoteMode,
        /// Priority of each output level.
        priorities: Vec<(Level, Priority)>,
        /// Hazard source the group belongs to, if all members share one.
        hazard_source: Option<String>,
    },
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Name, journaled with its alarms (`profile:<name>` for profile defaults).
    pub name: String,
    /// Whether its alarms latch until an operator resets them.
    pub latching: bool,
    /// What it watches.
    pub kind: RuleKind,
}

/// Every rule binding of `rules` over `points`, in order: the rules as they are, except that
/// the default per-point alarms ([`RuleKind::DefaultSensorFault`], [`RuleKind::DefaultSuspect`])
/// become one rule per point they cover, as if each had been configured on its own.
pub fn bindings<'a>(rules: &'a [RuleSpec], points: &'a PointTable) -> impl Iterator<Item = Cow<'a, RuleSpec>> + 'a {
    let defaults = rules.iter().any(|r| {
        matches!(
            r.kind,
            RuleKind::DefaultSensorFault { .. } | RuleKind::DefaultSuspect { .. }
        )
    });
    // Points with a rule of their own of the kind; only needed when there are defaults.
    let mut faulted = vec![false; if defaults { points.len() } else { 0 }];
    let mut suspected = faulted.clone();
    if defaults {
        for r in rules {
            match &r.kind {
                RuleKind::SensorFault { point, .. } => faulted[point.index()] = true,
                RuleKind::Suspect { point, .. } => suspected[point.index()] = true,
                _ => {}
            }
        }
    }
    let (faulted, suspected) = (Rc::new(faulted), Rc::new(suspected));
    rules
        .iter()
        .flat_map(move |r| -> Box<dyn Iterator<Item = Cow<'a, RuleSpec>> + 'a> {
            let spec = move |kind| {
                Cow::Owned(RuleSpec {
                    name: r.name.clone(),
                    latching: r.latching,
                    kind,
                })
            };
            match r.kind {
                RuleKind::DefaultSensorFault { priority } => {
                    let faulted = faulted.clone();
                    Box::new(
                        points
                            .iter()
                            .filter(move |(p, _)| !faulted[p.index()])
                            .map(move |(point, _)| {
                                spec(RuleKind::SensorFault {
                                    point,
                                    priority,
                                    delays: Delays::default(),
                                })
                            }),
                    )
                }
                RuleKind::DefaultSuspect { priority } => {
                    let suspected = suspected.clone();
                    Box::new(
                        points
                            .iter()
                            .filter(move |(p, _)| !suspected[p.index()])
                            .filter_map(move |(point, m)| {
                                let checks = suspect::SuspectChecks::for_kind(m.kind(), m.range());
                                checks.any().then(|| {
                                    spec(RuleKind::Suspect {
                                        point,
                                        checks,
                                        priority,
                                    })
                                })
                            }),
                    )
                }
                _ => Box::new(std::iter::once(Cow::Borrowed(r))),
            }
        })
}

/// Gateway-wide alarm settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSettings {
    /// Priority of the automatic per-device communication alarm.
    pub communication_priority: Priority,
    /// Priority of the gateway's self-diagnostic alarms (disk, storage, backlog, outputs,
    /// clock).
    pub diagnostic_priority: Priority,
    /// Annunciated alarms per 10 minutes above which the feed is in flood (EEMUA 191: 10).
    pub flood_threshold: usize,
    /// Raises per minute at which an alarm counts as chattering.
    pub chatter_threshold: usize,
    /// Longest an operator may shelve an alarm for.
    pub max_shelve: Duration,
    /// Dialled-in DTU stations and the devices behind them: a station has its own
    /// communication alarm, `<station>:communication`, raised when every device behind it is
    /// silent; a device's own alarm is for a device silent inside a live station.
    pub stations: Vec<StationGroup>,
}

/// The devices behind one dialled-in DTU station.
#[derive(Debug, Clone, PartialEq)]
pub struct StationGroup {
    /// Station name.
    pub station: String,
    /// Devices polled through it.
    pub devices: Vec<String>,
    /// On-delay of a member device's communication alarm: when the link itself is lost the
    /// devices fall silent one poll after another, and within this time the station's alarm
    /// takes over, so the duty officer sees one alarm, not one per device.
    pub grace: Duration,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        Self {
            communication_priority: Priority::High,
            diagnostic_priority: Priority::High,
            flood_threshold: 10,
            chatter_threshold: 3,
            max_shelve: Duration::from_secs(8 * 3600),
            stations: Vec::new(),
        }
    }
}
