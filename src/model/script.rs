//! Scripted alarm histories: alarms driven through their ISA-18.2 states the way the rules
//! engine journals them (each transition with the alarm's whole state after it), at times the
//! caller gives. For whatever reads the journal and must be checked against a known history:
//! the KPI tests, the journal's own tests, examples.

use std::collections::HashMap;
use std::time::Duration;

use super::{AlarmEvent, AlarmState, ConditionKind, Priority, SubjectKind, Timestamp, Transition};

/// An overlay an operator or the design puts on an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// Shelved for this long.
    Shelve(Duration),
    /// Shelving ended.
    Unshelve,
    /// Taken out of service.
    RemoveFromService,
    /// Returned to service.
    ReturnToService,
    /// Suppressed by design.
    Suppress,
    /// Suppression ended.
    Unsuppress,
}

/// A history of transitions of named alarms, in the order they were scripted.
#[derive(Debug, Clone)]
pub struct AlarmScript {
    origin: Timestamp,
    events: Vec<AlarmEvent>,
    last: HashMap<String, AlarmEvent>,
}

impl AlarmScript {
    /// An empty history whose times are seconds after `origin`.
    pub fn new(origin: Timestamp) -> Self {
        Self {
            origin,
            events: Vec::new(),
            last: HashMap::new(),
        }
    }

    /// The time `s` seconds after the origin (to the millisecond).
    pub fn at(&self, s: f64) -> Timestamp {
        Timestamp::from_millis(self.origin.as_millis() + (s * 1000.0).round() as i64)
    }

    /// Declares alarm `id` on a point (subject `<id>-subject`), normal and acknowledged.
    pub fn alarm(&mut self, id: &str, hazard_source: Option<&str>, priority: Priority, condition: ConditionKind) {
        let e = AlarmEvent {
            seq: 0,
            alarm_id: id.to_string(),
            rule: "r".into(),
            subject: format!("{id}-subject"),
            subject_kind: SubjectKind::Point,
            hazard_source: hazard_source.map(str::to_string),
            condition,
            class: condition.class(),
            level: None,
            priority,
            transition: Transition::Cleared,
            state: AlarmState::Normal,
            acknowledged: true,
            latching: false,
            shelved_until: None,
            suppressed: false,
            out_of_service: false,
            value: f64::NAN,
            limit: None,
            unit: String::new(),
            ts: Timestamp::default(),
            raised_at: None,
            user: None,
            comment: None,
            category: None,
            predicted_at: None,
        };
        self.last.insert(id.to_string(), e);
    }

    /// Journals transition `t` of `id` at `s` seconds, after `change` set the state it leads
    /// to. Sequence numbers count from 1 in script order. An undeclared alarm is declared
    /// first (medium priority, threshold).
    pub fn step(&mut self, id: &str, s: f64, t: Transition, change: impl FnOnce(&mut AlarmEvent)) {
        if !self.last.contains_key(id) {
            self.alarm(id, None, Priority::Medium, ConditionKind::Threshold);
        }
        let mut e = self.last[id].clone();
        e.ts = self.at(s);
        e.transition = t;
        change(&mut e);
        e.seq = self.events.len() as u64 + 1;
        self.last.insert(id.to_string(), e.clone());
        self.events.push(e);
    }

    /// The condition becomes active: unacknowledged until an acknowledgement.
    pub fn raise(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Raised, |e| {
            e.state = AlarmState::UnackActive;
            e.acknowledged = false;
            e.raised_at = Some(e.ts);
        });
    }

    /// The condition goes away: normal if acknowledged, else returned unacknowledged.
    pub fn clear(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Cleared, |e| {
            e.state = if e.acknowledged {
                AlarmState::Normal
            } else {
                AlarmState::UnackRtn
            };
            if e.acknowledged {
                e.raised_at = None;
            }
        });
    }

    /// An operator (`user`, if named) acknowledges it.
    pub fn ack(&mut self, id: &str, s: f64, user: Option<&str>) {
        self.step(id, s, Transition::Acknowledged, |e| {
            e.acknowledged = true;
            e.user = user.map(str::to_string);
            if e.state == AlarmState::UnackRtn {
                e.state = AlarmState::Normal;
                e.raised_at = None;
            } else {
                e.state = AlarmState::AckActive;
            }
        });
    }

    /// An overlay begins or ends.
    pub fn overlay(&mut self, id: &str, s: f64, o: Overlay) {
        let t = match o {
            Overlay::Shelve(_) => Transition::Shelved,
            Overlay::Unshelve => Transition::Unshelved,
            Overlay::RemoveFromService => Transition::RemovedFromService,
            Overlay::ReturnToService => Transition::ReturnedToService,
            Overlay::Suppress => Transition::Suppressed,
            Overlay::Unsuppress => Transition::Unsuppressed,
        };
        self.step(id, s, t, |e| match o {
            Overlay::Shelve(d) => e.shelved_until = Some(e.ts.plus(d)),
            Overlay::Unshelve => e.shelved_until = None,
            Overlay::RemoveFromService => e.out_of_service = true,
            Overlay::ReturnToService => e.out_of_service = false,
            Overlay::Suppress => e.suppressed = true,
            Overlay::Unsuppress => e.suppressed = false,
        });
    }

    /// Every transition, in script order.
    pub fn events(&self) -> &[AlarmEvent] {
        &self.events
    }

    /// Every transition, in script order.
    pub fn into_events(self) -> Vec<AlarmEvent> {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raise_acknowledged_after_it_cleared_ends_normal() {
        let mut s = AlarmScript::new(Timestamp::from_millis(1_000_000));
        s.alarm("A", Some("MHS-001"), Priority::High, ConditionKind::Threshold);
        s.raise("A", 1.0);
        s.clear("A", 2.5);
        s.ack("A", 4.0, Some("值班员"));
        let e = s.events();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].seq, e[0].state, e[0].raised_at),
            (1, AlarmState::UnackActive, Some(s.at(1.0)))
        );
        assert_eq!((e[1].state, e[1].acknowledged), (AlarmState::UnackRtn, false));
        assert_eq!(
            (e[2].state, e[2].raised_at, e[2].user.as_deref()),
            (AlarmState::Normal, None, Some("值班员"))
        );
        assert_eq!(e[2].ts, Timestamp::from_millis(1_004_000));
    }

    #[test]
    fn overlays_set_and_lift_their_flags() {
        let mut s = AlarmScript::new(Timestamp::default());
        s.overlay("B", 0.0, Overlay::Shelve(Duration::from_secs(60)));
        s.overlay("B", 10.0, Overlay::Suppress);
        s.overlay("B", 20.0, Overlay::RemoveFromService);
        let last = s.events().last().cloned().expect("three events");
        assert_eq!(last.shelved_until, Some(s.at(60.0)));
        assert!(last.suppressed && last.out_of_service);
        s.overlay("B", 30.0, Overlay::Unshelve);
        s.overlay("B", 31.0, Overlay::Unsuppress);
        s.overlay("B", 32.0, Overlay::ReturnToService);
        let last = s.into_events().pop().expect("six events");
        assert_eq!(last.transition, Transition::ReturnedToService);
        assert!(last.shelved_until.is_none() && !last.suppressed && !last.out_of_service);
    }
}
