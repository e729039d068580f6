//! Threshold alarms with deadband and on-delay: the evaluation of one limit on one point.
//!
//! Pure state machine: a reading (value, timestamp) in, maybe a transition out. A limit trips
//! when the value reaches it and stays there for `on_delay`; it clears only once the value is
//! back past the limit by `deadband`, so a value hovering at the limit does not chatter.

use std::time::Duration;

use crate::model::{AlarmLevel, Priority, Timestamp, Transition};

/// One limit of a threshold rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Which limit (high, high-high, low, low-low).
    pub level: AlarmLevel,
    /// The set-point in engineering units.
    pub value: f64,
    /// Priority of the alarm it raises.
    pub priority: Priority,
}

/// A threshold rule's parameters, shared by all its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The limits, any subset of the four levels.
    pub limits: Vec<Limit>,
    /// How far back past the limit the value must go before the alarm clears.
    pub deadband: f64,
    /// How long the condition must hold before the alarm is raised.
    pub on_delay: Duration,
}

impl Threshold {
    /// The default priority of a level: the outer limits (HH, LL) are the critical ones.
    pub fn default_priority(level: AlarmLevel) -> Priority {
        match level {
            AlarmLevel::HighHigh | AlarmLevel::LowLow => Priority::Critical,
            AlarmLevel::High | AlarmLevel::Low => Priority::High,
        }
    }
}

/// Evaluation state of one limit on one point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitState {
    active: bool,
    /// When the condition started to hold while the alarm is not yet raised (on-delay running).
    pending_since: Option<Timestamp>,
}

impl LimitState {
    /// A state that starts active, for alarms restored from the journal after a restart.
    pub fn restored_active() -> Self {
        Self {
            active: true,
            pending_since: None,
        }
    }

    /// Whether the alarm is currently raised.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Feeds one good value; returns the transition it causes, if any.
    pub fn update(
        &mut self,
        limit: &Limit,
        deadband: f64,
        on_delay: Duration,
        value: f64,
        ts: Timestamp,
    ) -> Option<Transition> {
        if self.active {
            let back = if limit.level.is_high() {
                value < limit.value - deadband
            } else {
                value > limit.value + deadband
            };
            if back {
                self.active = false;
                return Some(Transition::Cleared);
            }
            return None;
        }
        let tripped = if limit.level.is_high() {
            value >= limit.value
        } else {
            value <= limit.value
        };
        if !tripped {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert(ts);
        if ts.since(since) >= on_delay {
            self.active = true;
            self.pending_since = None;
            return Some(Transition::Raised);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH: Limit = Limit {
        level: AlarmLevel::High,
        value: 25.0,
        priority: Priority::High,
    };
    const LOW: Limit = Limit {
        level: AlarmLevel::Low,
        value: 19.5,
        priority: Priority::High,
    };

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn high_limit_raises_at_the_set_point_and_clears_past_the_deadband() {
        let mut s = LimitState::default();
        let d = Duration::ZERO;
        assert_eq!(s.update(&HIGH, 2.0, d, 24.9, at(0)), None);
        assert_eq!(s.update(&HIGH, 2.0, d, 25.0, at(1)), Some(Transition::Raised));
        assert_eq!(s.update(&HIGH, 2.0, d, 23.5, at(2)), None, "inside the deadband");
        assert_eq!(s.update(&HIGH, 2.0, d, 26.0, at(3)), None, "still active");
        assert_eq!(s.update(&HIGH, 2.0, d, 22.9, at(4)), Some(Transition::Cleared));
    }

    #[test]
    fn on_delay_waits_for_the_condition_to_hold() {
        let mut s = LimitState::default();
        let d = Duration::from_secs(2);
        assert_eq!(s.update(&HIGH, 0.0, d, 30.0, at(0)), None);
        assert_eq!(s.update(&HIGH, 0.0, d, 30.0, at(1)), None);
        assert_eq!(s.update(&HIGH, 0.0, d, 10.0, at(2)), None, "dip resets the delay");
        assert_eq!(s.update(&HIGH, 0.0, d, 30.0, at(3)), None);
        assert_eq!(s.update(&HIGH, 0.0, d, 30.0, at(4)), None);
        assert_eq!(s.update(&HIGH, 0.0, d, 30.0, at(5)), Some(Transition::Raised));
    }

    #[test]
    fn low_limit_trips_downwards() {
        let mut s = LimitState::default();
        let d = Duration::ZERO;
        assert_eq!(s.update(&LOW, 0.5, d, 20.9, at(0)), None);
        assert_eq!(s.update(&LOW, 0.5, d, 19.0, at(1)), Some(Transition::Raised));
        assert_eq!(s.update(&LOW, 0.5, d, 19.8, at(2)), None);
        assert_eq!(s.update(&LOW, 0.5, d, 20.1, at(3)), Some(Transition::Cleared));
    }
}
