//! On- and off-delays: a condition must hold for `on_delay` before it counts as active, and
//! be gone for `off_delay` before it counts as cleared. Filters spikes and chattering.

use std::time::Duration;

use crate::model::Timestamp;

/// The debounced view of one raw condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Debounce {
    active: bool,
    /// When the raw condition started to differ from `active` (a delay is running).
    pending_since: Option<Timestamp>,
}

impl Debounce {
    /// Whether the condition counts as active.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// When the running delay started, if one is running.
    pub fn pending_since(&self) -> Option<Timestamp> {
        self.pending_since
    }

    /// Sets the state directly (restoring from the journal).
    pub fn restore(&mut self, active: bool, pending_since: Option<Timestamp>) {
        self.active = active;
        self.pending_since = pending_since;
    }

    /// Feeds the raw condition at `ts`; returns the new debounced value when it flips.
    pub fn update(&mut self, tripped: bool, ts: Timestamp, on_delay: Duration, off_delay: Duration) -> Option<bool> {
        if tripped == self.active {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert(ts);
        self.flip_if_due(since, ts, on_delay, off_delay)
    }

    /// Lets a running delay expire at `now` without a new reading.
    pub fn expire(&mut self, now: Timestamp, on_delay: Duration, off_delay: Duration) -> Option<bool> {
        let since = self.pending_since?;
        self.flip_if_due(since, now, on_delay, off_delay)
    }

    fn flip_if_due(
        &mut self,
        since: Timestamp,
        now: Timestamp,
        on_delay: Duration,
        off_delay: Duration,
    ) -> Option<bool> {
        let delay = if self.active { off_delay } else { on_delay };
        if now.since(since) < delay {
            return None;
        }
        self.active = !self.active;
        self.pending_since = None;
        Some(self.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    const ON: Duration = Duration::from_secs(2);
    const OFF: Duration = Duration::from_secs(5);

    #[test]
    fn on_delay_expires_exactly_at_its_length() {
        let mut d = Debounce::default();
        assert_eq!(d.update(true, at(0), ON, OFF), None);
        assert_eq!(d.update(true, at(1999), ON, OFF), None);
        assert_eq!(d.update(true, at(2000), ON, OFF), Some(true));
    }

    #[test]
    fn a_dip_restarts_the_on_delay() {
        let mut d = Debounce::default();
        d.update(true, at(0), ON, OFF);
        d.update(false, at(1500), ON, OFF);
        assert_eq!(d.update(true, at(1600), ON, OFF), None);
        assert_eq!(d.update(true, at(3500), ON, OFF), None);
        assert_eq!(d.update(true, at(3600), ON, OFF), Some(true));
    }

    #[test]
    fn off_delay_holds_the_alarm_and_expires_by_tick() {
        let mut d = Debounce::default();
        assert_eq!(d.update(true, at(0), Duration::ZERO, OFF), Some(true));
        assert_eq!(d.update(false, at(1000), Duration::ZERO, OFF), None);
        assert_eq!(d.expire(at(5999), Duration::ZERO, OFF), None);
        assert_eq!(d.expire(at(6000), Duration::ZERO, OFF), Some(false));
        assert_eq!(d.pending_since(), None);
    }

    #[test]
    fn zero_delays_flip_at_once() {
        let mut d = Debounce::default();
        assert_eq!(d.update(true, at(0), Duration::ZERO, Duration::ZERO), Some(true));
        assert_eq!(d.update(false, at(0), Duration::ZERO, Duration::ZERO), Some(false));
    }
}
