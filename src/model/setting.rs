//! The configured settings of one threshold alarm, published by the rules task so the API can
//! set tuning suggestions beside what is in force.

use std::time::Duration;

use super::{Level, PointId, Priority};

/// One threshold alarm as the rules engine runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdSetting {
    /// Alarm id (`<point>:<level>`).
    pub alarm_id: String,
    /// Rule that defines it.
    pub rule: String,
    /// The point it watches.
    pub point: PointId,
    /// Its level.
    pub level: Level,
    /// The set-point.
    pub set_point: f64,
    /// Whether it trips on a falling value.
    pub falling: bool,
    /// Its priority.
    pub priority: Priority,
    /// Deadband in engineering units.
    pub deadband: f64,
    /// On-delay.
    pub on_delay: Duration,
    /// Off-delay.
    pub off_delay: Duration,
}
