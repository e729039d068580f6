//! The coal state bit mask and abnormal types, derived from reading quality and from the
//! gateway's alarm transitions.
//!
//! Design: a [`Tracker`] follows alarm transitions (raised / cleared, removed from / returned to
//! service) per point; the state of a real-time record is the bits of its quality OR the bits
//! of the conditions open on its point. The same transitions become YCBJ begin and end records.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{AlarmEvent, ConditionKind, Level, Quality, Timestamp, Transition};

/// Bits of the state field (MT/T 1201.1 family).
pub mod bits {
    /// Normal.
    pub const NORMAL: u16 = 0;
    /// Alarm (over a limit).
    pub const ALARM: u16 = 1;
    /// Power cut.
    pub const POWER_CUT: u16 = 2;
    /// Calibration.
    pub const CALIBRATION: u16 = 4;
    /// Over range.
    pub const OVER_RANGE: u16 = 8;
    /// Substation fault.
    pub const SUBSTATION_FAULT: u16 = 16;
    /// Not polled.
    pub const NOT_POLLED: u16 = 32;
    /// Paused.
    pub const PAUSED: u16 = 64;
    /// Sensor fault.
    pub const SENSOR_FAULT: u16 = 128;
}

/// The bits a reading's quality alone sets.
///
/// - `comm_fault`: the substation (or the converter in front of it) did not answer → 16.
/// - `stale`: nothing arrived within the point's interval → 32 not polled.
/// - `decode_error`: the substation sent something that is not a value → 128 sensor fault.
/// - `out_of_range`: outside the measuring range → 8 over range; the sensor-fault alarm the
///   gateway raises on it adds 128 through the tracker.
///
/// The mask has no state for an OPC UA `uncertain` value: it is reported as measured.
pub fn quality_bits(quality: Quality) -> u16 {
    match quality {
        Quality::Good | Quality::Uncertain => bits::NORMAL,
        Quality::CommFault => bits::SUBSTATION_FAULT,
        Quality::Stale => bits::NOT_POLLED,
        // The gateway's own doubt (stuck, pinned, impossible jump) is an instrument fault.
        Quality::DecodeError | Quality::Suspect => bits::SENSOR_FAULT,
        Quality::OutOfRange => bits::OVER_RANGE,
    }
}

/// YCBJ abnormal types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Abnormal {
    /// 001 over-limit alarm.
    OverLimit,
    /// 002 power-cut alarm.
    PowerCut,
    /// 003 feed abnormal.
    FeedAbnormal,
    /// 004 sensor disconnected.
    SensorDisconnected,
    /// 005 substation power off.
    SubstationPowerOff,
    /// 006 substation unreachable.
    SubstationUnreachable,
    /// 007 calibration.
    Calibration,
    /// 008 over range.
    OverRange,
    /// 009 upper pre-warning.
    UpperPreWarning,
    /// 010 lower pre-warning.
    LowerPreWarning,
}

impl Abnormal {
    /// The three-digit code written in YCBJ.
    pub fn code(self) -> &'static str {
        match self {
            Abnormal::OverLimit => "001",
            Abnormal::PowerCut => "002",
            Abnormal::FeedAbnormal => "003",
            Abnormal::SensorDisconnected => "004",
            Abnormal::SubstationPowerOff => "005",
            Abnormal::SubstationUnreachable => "006",
            Abnormal::Calibration => "007",
            Abnormal::OverRange => "008",
            Abnormal::UpperPreWarning => "009",
            Abnormal::LowerPreWarning => "010",
        }
    }

    /// State bits set on the point while the condition lasts.
    pub fn bits(self) -> u16 {
        match self {
            Abnormal::OverLimit => bits::ALARM,
            // Where alarm and power cut share one set-point (return airway) only the power-cut
            // alarm exists, and the point is in alarm too.
            Abnormal::PowerCut => bits::ALARM | bits::POWER_CUT,
            Abnormal::FeedAbnormal => bits::POWER_CUT,
            Abnormal::SensorDisconnected => bits::SENSOR_FAULT,
            Abnormal::SubstationPowerOff | Abnormal::SubstationUnreachable => bits::SUBSTATION_FAULT,
            Abnormal::Calibration => bits::CALIBRATION,
            Abnormal::OverRange => bits::OVER_RANGE,
            Abnormal::UpperPreWarning | Abnormal::LowerPreWarning => bits::NORMAL,
        }
    }

    /// The abnormal type of a gateway alarm. `power_cut` says whether the point's high-high
    /// set-point is a power-cut set-point (methane).
    pub fn of(event: &AlarmEvent, power_cut: bool) -> Abnormal {
        match event.condition {
            ConditionKind::Threshold => match event.level {
                Some(Level::HighHigh) if power_cut => Abnormal::PowerCut,
                _ => Abnormal::OverLimit,
            },
            ConditionKind::RateOfChange | ConditionKind::EarlyWarning => match event.level {
                Some(l) if l.is_low() => Abnormal::LowerPreWarning,
                _ => Abnormal::UpperPreWarning,
            },
            ConditionKind::SensorFault | ConditionKind::Stale => Abnormal::SensorDisconnected,
            // Suspect data: the sensor answers, but not with a measurement to trust.
            ConditionKind::Stuck | ConditionKind::Pinned | ConditionKind::ImplausibleJump => {
                Abnormal::SensorDisconnected
            }
            // The gateway's self-diagnostics never reach an uplink (see `select`); were one to,
            // it is the monitoring station itself in trouble.
            ConditionKind::Communication
            | ConditionKind::DiskSpace
            | ConditionKind::StorageWrite
            | ConditionKind::StoreBacklog
            | ConditionKind::OutputFault
            | ConditionKind::ClockJump
            | ConditionKind::PairDegraded => Abnormal::SubstationUnreachable,
            ConditionKind::Deviation | ConditionKind::Vote => Abnormal::OverLimit,
        }
    }
}

/// A condition that began or ended: one YCBJ record.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its type.
    pub kind: Abnormal,
    /// When it began (`None` if the gateway no longer knows: it restarted mid-condition).
    pub begin: Option<Timestamp>,
    /// When it ended; `None` while it lasts.
    pub end: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct Open {
    key: String,
    kind: Abnormal,
    begin: Timestamp,
}

/// The conditions open on each point.
#[derive(Debug, Default)]
pub struct Tracker {
    open: HashMap<Arc<str>, Vec<Open>>,
}

/// Key of the out-of-service condition of a point (one per point, whichever alarm was taken out).
const SERVICE_KEY: &str = "#out_of_service";

impl Tracker {
    /// Applies one alarm transition on `point`; returns the YCBJ record it makes, if any.
    /// Acknowledgements, shelving and suppression change nothing the platform sees.
    pub fn apply(&mut self, point: &Arc<str>, event: &AlarmEvent, power_cut: bool) -> Option<Change> {
        let (key, kind, begins) = match event.transition {
            Transition::Raised => (event.alarm_id.as_str(), Abnormal::of(event, power_cut), true),
            Transition::Cleared => (event.alarm_id.as_str(), Abnormal::of(event, power_cut), false),
            Transition::RemovedFromService => (SERVICE_KEY, Abnormal::Calibration, true),
            Transition::ReturnedToService => (SERVICE_KEY, Abnormal::Calibration, false),
            _ => return None,
        };
        let list = self.open.entry(point.clone()).or_default();
        let at = list.iter().position(|o| o.key == key);
        if begins {
            if at.is_some() {
                return None; // already reported (a replayed transition)
            }
            let begin = event
                .raised_at
                .filter(|_| kind != Abnormal::Calibration)
                .unwrap_or(event.ts);
            list.push(Open {
                key: key.to_string(),
                kind,
                begin,
            });
            return Some(Change {
                kind,
                begin: Some(begin),
                end: None,
            });
        }
        let (kind, begin) = match at {
            Some(i) => {
                let o = list.swap_remove(i);
                (o.kind, Some(o.begin))
            }
            None => (kind, event.raised_at),
        };
        if list.is_empty() {
            self.open.remove(point);
        }
        Some(Change {
            kind,
            begin,
            end: Some(event.ts),
        })
    }

    /// Bits of the conditions open on `point`.
    pub fn bits(&self, point: &str) -> u16 {
        self.open
            .get(point)
            .map_or(0, |list| list.iter().fold(0, |b, o| b | o.kind.bits()))
    }
}
