//! Threshold limits with deadband: whether a value trips a limit, given whether the alarm is
//! already active. Raising needs the value at or past the set-point; clearing needs it back past
//! the set-point by the deadband, so a value hovering at the limit does not chatter.

use super::Limit;

/// Whether `value` holds the limit's condition. `active` selects the clearing side of the band.
pub fn tripped(limit: &Limit, deadband: f64, active: bool, value: f64) -> bool {
    match (limit.falling, active) {
        (false, false) => value >= limit.value,
        (false, true) => value >= limit.value - deadband,
        (true, false) => value <= limit.value,
        (true, true) => value <= limit.value + deadband,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, Priority};

    const HIGH: Limit = Limit {
        level: Level::High,
        value: 25.0,
        priority: Priority::High,
        falling: false,
    };
    const LOW: Limit = Limit {
        level: Level::Low,
        value: 19.5,
        priority: Priority::High,
        falling: true,
    };

    #[test]
    fn the_set_point_itself_trips_a_high_limit() {
        assert!(tripped(&HIGH, 2.0, false, 25.0));
        assert!(!tripped(&HIGH, 2.0, false, 24.999));
    }

    #[test]
    fn an_active_high_alarm_holds_inside_the_deadband_and_clears_past_it() {
        assert!(tripped(&HIGH, 2.0, true, 23.0), "exactly at the band edge still holds");
        assert!(!tripped(&HIGH, 2.0, true, 22.999));
    }

    #[test]
    fn low_limits_mirror_high_ones() {
        assert!(tripped(&LOW, 0.5, false, 19.5));
        assert!(!tripped(&LOW, 0.5, false, 19.6));
        assert!(tripped(&LOW, 0.5, true, 20.0));
        assert!(!tripped(&LOW, 0.5, true, 20.01));
    }
}
