//! Alarm vocabulary: priorities, levels, the ISA-18.2 states and the transition record that is
//! journaled and published.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Defines a fieldless enum with its snake_case name for the API, config and journal.
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name used in config, the API and the journal.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Parses the name written by `as_str`.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// How urgently an operator must respond (ISA-18.2 priority). Ordered least to most urgent.
    pub enum Priority {
        /// Respond within the shift.
        Low => "low",
        /// Respond soon.
        Medium => "medium",
        /// Respond now.
        High => "high",
        /// Life safety: respond immediately (e.g. a second-level gas alarm).
        Critical => "critical",
    }
}

named_enum! {
    /// A graded alarm level: the threshold limits, and the four warning colours of tailings
    /// ponds (GB 51108-2015: blue < yellow < orange < red).
    pub enum Level {
        /// Second low limit.
        LowLow => "low_low",
        /// First low limit.
        Low => "low",
        /// First high limit (a gas detector's first-level alarm).
        High => "high",
        /// Second high limit (a gas detector's second-level alarm).
        HighHigh => "high_high",
        /// Tailings warning, lowest.
        Blue => "blue",
        /// Tailings warning.
        Yellow => "yellow",
        /// Tailings warning.
        Orange => "orange",
        /// Tailings warning, highest.
        Red => "red",
    }
}

impl Level {
    /// Severity within the level's family: 1 for the first level, rising.
    pub fn rank(self) -> u8 {
        match self {
            Level::Low | Level::High | Level::Blue => 1,
            Level::LowLow | Level::HighHigh | Level::Yellow => 2,
            Level::Orange => 3,
            Level::Red => 4,
        }
    }

    /// Whether the level trips on a falling value.
    pub fn is_low(self) -> bool {
        matches!(self, Level::Low | Level::LowLow)
    }

    /// Whether two levels can be compared (same family).
    pub fn same_family(self, other: Level) -> bool {
        self.family() == other.family()
    }

    fn family(self) -> u8 {
        match self {
            Level::Low | Level::LowLow => 0,
            Level::High | Level::HighHigh => 1,
            _ => 2,
        }
    }

    /// The priority a level gets unless configured: outer limits and red are critical.
    pub fn default_priority(self) -> Priority {
        match self {
            Level::Blue => Priority::Low,
            Level::Yellow => Priority::Medium,
            Level::Low | Level::High | Level::Orange => Priority::High,
            Level::LowLow | Level::HighHigh | Level::Red => Priority::Critical,
        }
    }

    /// The next level up in the family, if any (escalation: four blue make a yellow).
    pub fn next(self) -> Option<Level> {
        match self {
            Level::Low => Some(Level::LowLow),
            Level::High => Some(Level::HighHigh),
            Level::Blue => Some(Level::Yellow),
            Level::Yellow => Some(Level::Orange),
            Level::Orange => Some(Level::Red),
            Level::LowLow | Level::HighHigh | Level::Red => None,
        }
    }
}

named_enum! {
    /// What kind of condition an alarm watches.
    pub enum ConditionKind {
        /// A value crossed a set-point.
        Threshold => "threshold",
        /// A value changed faster than allowed over a window.
        RateOfChange => "rate_of_change",
        /// No reading arrived within the expected interval.
        Stale => "stale",
        /// The sensor reports a fault (out of range, undecodable).
        SensorFault => "sensor_fault",
        /// A device stopped answering.
        Communication => "communication",
        /// Redundant sensors disagree.
        Deviation => "deviation",
        /// Enough members of a group are in alarm (k-of-n, escalation).
        Vote => "vote",
        /// A value's trend will reach its next set-point within the warning horizon (预警).
        EarlyWarning => "early_warning",
        /// Data quality: the value has not moved for longer than its kind ever rests.
        Stuck => "stuck",
        /// Data quality: the value sits at an end of its measuring range (a broken loop).
        Pinned => "pinned",
        /// Data quality: the value changed faster than its quantity can.
        ImplausibleJump => "implausible_jump",
        /// Self-diagnostic: the data disk has less free space than the configured limit.
        DiskSpace => "disk_space",
        /// Self-diagnostic: the alarm journal or the history cannot be written.
        StorageWrite => "storage_write",
        /// Self-diagnostic: a store's undelivered backlog is over its limit.
        StoreBacklog => "store_backlog",
        /// Self-diagnostic: an output (a time-series store) cannot send at all, e.g. a
        /// missing secret.
        OutputFault => "output_fault",
        /// Self-diagnostic: the wall clock stepped against the monotonic clock.
        ClockJump => "clock_jump",
        /// Self-diagnostic: the hot-standby pair cannot take over if this node fails (the
        /// peer is not following, the witness is unreachable, or replication is behind).
        PairDegraded => "pair_degraded",
    }
}

impl ConditionKind {
    /// Fault alarms concern the monitoring system itself, not the process.
    pub fn class(self) -> AlarmClass {
        match self {
            ConditionKind::Stale
            | ConditionKind::SensorFault
            | ConditionKind::Communication
            | ConditionKind::Stuck
            | ConditionKind::Pinned
            | ConditionKind::ImplausibleJump => AlarmClass::Fault,
            k if k.is_self_diagnostic() => AlarmClass::Fault,
            _ => AlarmClass::Process,
        }
    }

    /// The gateway's own faults (GB 51108 asks an online monitoring system to detect them),
    /// raised on the `gateway` pseudo-device.
    pub const SELF_DIAGNOSTIC: [ConditionKind; 6] = [
        ConditionKind::DiskSpace,
        ConditionKind::StorageWrite,
        ConditionKind::StoreBacklog,
        ConditionKind::OutputFault,
        ConditionKind::ClockJump,
        ConditionKind::PairDegraded,
    ];

    /// Whether this is one of [`ConditionKind::SELF_DIAGNOSTIC`].
    pub fn is_self_diagnostic(self) -> bool {
        Self::SELF_DIAGNOSTIC.contains(&self)
    }
}

/// The pseudo-device that carries the gateway's self-diagnostic alarms (`gateway:disk_space`).
pub const GATEWAY_SUBJECT: &str = "gateway";

/// One self-diagnostic check's finding, sent to the rules engine each round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagnosis {
    /// Which check (one of [`ConditionKind::SELF_DIAGNOSTIC`]).
    pub kind: ConditionKind,
    /// Whether the fault is present.
    pub active: bool,
    /// The figure behind it (free MiB, failures, backlog MiB, seconds of jump); NaN if none.
    pub value: f64,
}

named_enum! {
    /// Process alarms concern the plant; fault alarms the monitoring system (GB 50493 asks for
    /// a detector fault to be signalled apart from a concentration alarm).
    pub enum AlarmClass {
        /// The plant is in an abnormal condition.
        Process => "process",
        /// A sensor, device or link is faulty.
        Fault => "fault",
    }
}

named_enum! {
    /// What an alarm is about.
    pub enum SubjectKind {
        /// One point.
        Point => "point",
        /// One device (communication alarms).
        Device => "device",
        /// A group of points or of other groups (deviation, vote).
        Group => "group",
    }
}

named_enum! {
    /// Alarm states of ISA-18.2 / IEC 62682, §5 state diagram. Shelving, suppression by design
    /// and out-of-service are overlays carried beside the state.
    pub enum AlarmState {
        /// Condition inactive, nothing to acknowledge.
        Normal => "normal",
        /// Condition active, not yet acknowledged.
        UnackActive => "unack_active",
        /// Condition active, acknowledged.
        AckActive => "ack_active",
        /// Condition returned to normal before it was acknowledged.
        UnackRtn => "unack_rtn",
        /// Condition returned to normal on a latching alarm: stays until an operator resets it.
        Latched => "latched",
    }
}

named_enum! {
    /// One change in an alarm's life.
    pub enum Transition {
        /// The condition became active (after any on-delay).
        Raised => "raised",
        /// The condition went away (past the deadband, after any off-delay).
        Cleared => "cleared",
        /// An operator acknowledged it.
        Acknowledged => "acknowledged",
        /// An operator reset a latched alarm.
        Reset => "reset",
        /// An operator shelved it until a time.
        Shelved => "shelved",
        /// Shelving ended (by an operator or at its expiry).
        Unshelved => "unshelved",
        /// Suppressed by design (its device is offline; one communication alarm stands for it).
        Suppressed => "suppressed",
        /// Suppression by design ended.
        Unsuppressed => "unsuppressed",
        /// Taken out of service for maintenance.
        RemovedFromService => "removed_from_service",
        /// Returned to service.
        ReturnedToService => "returned_to_service",
    }
}

named_enum! {
    /// What the operator found an alarm to be, recorded with its acknowledgement so the safety
    /// manager can report real alarms apart from false ones, faults, maintenance and drills.
    pub enum AckCategory {
        /// A real process condition (真实报警).
        RealAlarm => "real_alarm",
        /// Nothing was wrong on site (误报).
        FalseAlarm => "false_alarm",
        /// The instrument or its link failed (设备故障).
        EquipmentFault => "equipment_fault",
        /// Caused by maintenance or calibration work (检修).
        Maintenance => "maintenance",
        /// Raised on purpose in an exercise (演练).
        Drill => "drill",
    }
}

/// One alarm transition with the alarm's complete state after it: journaled before it is
/// published, so the journal alone can rebuild every alarm after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlarmEvent {
    /// Journal sequence number; 0 until stored. Doubles as the live feed's event id.
    pub seq: u64,
    /// Stable id: `<point>:<level>` for thresholds, else `<subject>:<condition>[:<level>]`.
    pub alarm_id: String,
    /// Rule that defines the alarm.
    pub rule: String,
    /// What the alarm is about: a point id, a device name or a group (rule) name.
    pub subject: String,
    /// Whether `subject` is a point, a device or a group.
    pub subject_kind: SubjectKind,
    /// Hazard source of the subject, if any.
    pub hazard_source: Option<String>,
    /// What the alarm watches.
    pub condition: ConditionKind,
    /// Process or fault alarm.
    pub class: AlarmClass,
    /// The level, for graded alarms.
    pub level: Option<Level>,
    /// How urgent.
    pub priority: Priority,
    /// What just happened.
    pub transition: Transition,
    /// The state after it.
    pub state: AlarmState,
    /// Whether the current activation has been acknowledged (also true in `normal`).
    pub acknowledged: bool,
    /// Whether the alarm latches (needs a reset after its condition clears).
    pub latching: bool,
    /// Shelved until this time, if shelved.
    pub shelved_until: Option<Timestamp>,
    /// Suppressed by design.
    pub suppressed: bool,
    /// Out of service.
    pub out_of_service: bool,
    /// The value behind the last condition change (NaN when there is none, e.g. comm loss;
    /// `null` in JSON).
    #[serde(with = "nan_as_null")]
    #[schema(value_type = Option<f64>)]
    pub value: f64,
    /// The limit crossed, for threshold-like alarms.
    pub limit: Option<f64>,
    /// Unit of `value` and `limit`.
    pub unit: String,
    /// When the transition happened.
    pub ts: Timestamp,
    /// When the current activation began, while there is one.
    pub raised_at: Option<Timestamp>,
    /// Who acted (acknowledge, shelve, reset, service); `None` for automatic transitions.
    pub user: Option<String>,
    /// Why they acted.
    pub comment: Option<String>,
    /// What the operator found the alarm to be, on an acknowledgement that gave one. Absent
    /// (not `null`) otherwise, so records written before it existed read back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<AckCategory>,
    /// When the trend is predicted to reach `limit`, for early warnings. Absent (not `null`)
    /// otherwise, so records written before it existed read back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_at: Option<Timestamp>,
}

impl AlarmEvent {
    /// Whether the operator is being asked to look at it: not normal, and neither shelved,
    /// suppressed nor out of service.
    pub fn annunciated(&self) -> bool {
        self.state != AlarmState::Normal && self.shelved_until.is_none() && !self.suppressed && !self.out_of_service
    }

    /// Whether the alarm has anything to show (any state but normal, or any overlay).
    pub fn visible(&self) -> bool {
        self.state != AlarmState::Normal || self.shelved_until.is_some() || self.suppressed || self.out_of_service
    }

    /// Whether the condition is active right now.
    pub fn condition_active(&self) -> bool {
        matches!(self.state, AlarmState::UnackActive | AlarmState::AckActive)
    }

    /// A one-line human text, e.g. `MHS-001/GT-101 threshold high raised: 27.30 %LEL (limit 25)`.
    pub fn message(&self) -> String {
        let level = self.level.map(|l| format!(" {l}")).unwrap_or_default();
        let value = if self.value.is_finite() {
            format!(": {:.2} {}", self.value, self.unit)
        } else {
            String::new()
        };
        let limit = self.limit.map(|l| format!(" (limit {l})")).unwrap_or_default();
        format!(
            "{} {}{level} {}{value}{limit}",
            self.subject, self.condition, self.transition
        )
    }
}

/// JSON has no NaN: write it as `null` and read `null` back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(*p));
        }
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(*l));
        }
        for t in Transition::ALL {
            assert_eq!(Transition::parse(t.as_str()), Some(*t));
        }
        for s in AlarmState::ALL {
            assert_eq!(AlarmState::parse(s.as_str()), Some(*s));
        }
    }

    #[test]
    fn warning_colours_escalate_in_order() {
        assert_eq!(Level::Blue.next(), Some(Level::Yellow));
        assert_eq!(Level::Orange.next(), Some(Level::Red));
        assert_eq!(Level::Red.next(), None);
        assert!(Level::Yellow.rank() < Level::Orange.rank());
        assert!(Level::Blue.same_family(Level::Red));
        assert!(!Level::High.same_family(Level::Blue));
    }
}
