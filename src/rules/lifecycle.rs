//! The ISA-18.2 / IEC 62682 alarm state machine of one alarm, with shelving, suppression by
//! design and out-of-service as overlays. Pure: an action and a time in, a transition out.
//!
//! ```text
//!             condition on                 ack
//!   Normal ───────────────▶ UnackActive ────────▶ AckActive
//!     ▲  ▲                    │ condition off        │ condition off
//!     │  │ ack                ▼                      │ (latching: ▶ Latched ─reset─▶ Normal)
//!     │  └──────────────── UnackRtn ◀────────────────┘ (non-latching ack'd: ▶ Normal)
//! ```

use crate::model::{AlarmState, Timestamp, Transition};

/// Something that happens to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The debounced condition is now active (`true`) or inactive (`false`).
    Condition(bool),
    /// An operator acknowledges.
    Acknowledge,
    /// An operator resets a latched alarm.
    Reset,
    /// An operator shelves until the given time.
    Shelve(Timestamp),
    /// Shelving ends (operator or expiry).
    Unshelve,
    /// Suppression by design starts (`true`) or ends.
    Suppress(bool),
    /// Taken out of service (`true`) or returned to service.
    OutOfService(bool),
}

/// Why an operator action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// Acknowledge on an alarm that is already acknowledged or normal.
    #[error("the alarm has nothing to acknowledge")]
    NothingToAcknowledge,
    /// Reset on an alarm that is not latched.
    #[error("only a latched alarm whose condition has cleared can be reset")]
    NotLatched,
    /// Shelve with an expiry not in the future.
    #[error("shelving must end in the future")]
    ShelveInPast,
    /// Unshelve on an alarm that is not shelved.
    #[error("the alarm is not shelved")]
    NotShelved,
    /// Shelve or remove an alarm that is out of service.
    #[error("the alarm is out of service")]
    OutOfService,
    /// Return to service an alarm that is in service.
    #[error("the alarm is in service")]
    InService,
}

/// Lifecycle of one alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifecycle {
    active: bool,
    acked: bool,
    latched: bool,
    latching: bool,
    shelved_until: Option<Timestamp>,
    suppressed: bool,
    out_of_service: bool,
    raised_at: Option<Timestamp>,
}

impl Lifecycle {
    /// A normal alarm; `latching` alarms need a reset after their condition clears.
    pub fn new(latching: bool) -> Self {
        Self {
            acked: true,
            latching,
            ..Self::default()
        }
    }

    /// Rebuilds a lifecycle from a journaled state and overlays.
    pub fn restored(
        state: AlarmState,
        latching: bool,
        acked_latched: bool,
        shelved_until: Option<Timestamp>,
        suppressed: bool,
        out_of_service: bool,
        raised_at: Option<Timestamp>,
    ) -> Self {
        let (active, acked, latched) = match state {
            AlarmState::Normal => (false, true, false),
            AlarmState::UnackActive => (true, false, false),
            AlarmState::AckActive => (true, true, false),
            AlarmState::UnackRtn => (false, false, false),
            AlarmState::Latched => (false, acked_latched, true),
        };
        Self {
            active,
            acked,
            latched,
            latching,
            shelved_until,
            suppressed,
            out_of_service,
            raised_at,
        }
    }

    /// The ISA-18.2 state.
    pub fn state(&self) -> AlarmState {
        match (self.active, self.acked, self.latched) {
            (true, false, _) => AlarmState::UnackActive,
            (true, true, _) => AlarmState::AckActive,
            (false, _, true) => AlarmState::Latched,
            (false, false, false) => AlarmState::UnackRtn,
            (false, true, false) => AlarmState::Normal,
        }
    }

    /// Whether an operator has acknowledged the current activation.
    pub fn acked(&self) -> bool {
        self.acked
    }

    /// Whether the alarm latches.
    pub fn latching(&self) -> bool {
        self.latching
    }

    /// Shelving expiry, if shelved.
    pub fn shelved_until(&self) -> Option<Timestamp> {
        self.shelved_until
    }

    /// Whether suppressed by design.
    pub fn suppressed(&self) -> bool {
        self.suppressed
    }

    /// Whether out of service.
    pub fn out_of_service(&self) -> bool {
        self.out_of_service
    }

    /// When the current activation began.
    pub fn raised_at(&self) -> Option<Timestamp> {
        self.raised_at
    }

    /// Whether it has anything to show beyond normal.
    pub fn visible(&self) -> bool {
        self.state() != AlarmState::Normal || self.shelved_until.is_some() || self.suppressed || self.out_of_service
    }

    /// Applies an action; `Ok(None)` when it changes nothing (a repeated condition).
    pub fn apply(&mut self, action: Action, now: Timestamp) -> Result<Option<Transition>, LifecycleError> {
        Ok(Some(match action {
            Action::Condition(true) if !self.active => {
                self.active = true;
                self.acked = false;
                self.latched = false;
                self.raised_at = Some(now);
                Transition::Raised
            }
            Action::Condition(false) if self.active => {
                self.active = false;
                self.latched = self.latching;
                if !self.latched && self.acked {
                    self.raised_at = None;
                }
                Transition::Cleared
            }
            Action::Condition(_) => return Ok(None),
            Action::Acknowledge => {
                if self.acked {
                    return Err(LifecycleError::NothingToAcknowledge);
                }
                self.acked = true;
                if !self.active && !self.latched {
                    self.raised_at = None;
                }
                Transition::Acknowledged
            }
            Action::Reset => {
                if !self.latched {
                    return Err(LifecycleError::NotLatched);
                }
                self.latched = false;
                self.acked = true;
                self.raised_at = None;
                Transition::Reset
            }
            Action::Shelve(until) => {
                if self.out_of_service {
                    return Err(LifecycleError::OutOfService);
                }
                if until <= now {
                    return Err(LifecycleError::ShelveInPast);
                }
                self.shelved_until = Some(until);
                Transition::Shelved
            }
            Action::Unshelve => {
                if self.shelved_until.take().is_none() {
                    return Err(LifecycleError::NotShelved);
                }
                Transition::Unshelved
            }
            Action::Suppress(on) if on != self.suppressed => {
                self.suppressed = on;
                if on {
                    Transition::Suppressed
                } else {
                    Transition::Unsuppressed
                }
            }
            Action::Suppress(_) => return Ok(None),
            Action::OutOfService(true) => {
                if self.out_of_service {
                    return Err(LifecycleError::OutOfService);
                }
                self.out_of_service = true;
                self.shelved_until = None;
                Transition::RemovedFromService
            }
            Action::OutOfService(false) => {
                if !self.out_of_service {
                    return Err(LifecycleError::InService);
                }
                self.out_of_service = false;
                Transition::ReturnedToService
            }
        }))
    }
}

#[cfg(test)]
mod tests;
