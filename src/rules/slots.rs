//! Alarm slots: one per alarm the configuration can raise, holding its lifecycle, debounce and
//! the metadata every transition record carries.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{AlarmEvent, ConditionKind, Level, PointId, Priority, SubjectKind, Timestamp, Transition};

use super::debounce::Debounce;
use super::flood::RateCounter;
use super::{Delays, Lifecycle};

/// What a slot's flips affect beyond itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A threshold limit of a point: votes over the point re-evaluate.
    Threshold(PointId),
    /// A device's communication alarm: suppresses the device's point alarms. The index is a
    /// `u32`, like a point id, so that a role fits in 8 bytes.
    Device(u32),
    /// Any other alarm about a point.
    Point(PointId),
    /// A group alarm (deviation, vote).
    Group,
    /// A self-diagnostic alarm of the gateway.
    Gateway,
}

/// Fixed description of an alarm.
#[derive(Debug, Clone)]
pub(super) struct SlotMeta {
    // Shared strings: a plant has an alarm or more per point, and most of these texts are
    // the point's own (name, unit, hazard source) or a rule name many alarms share. The id is
    // not kept: it follows from the subject, condition and level ([`SlotMeta::id`]).
    pub(super) rule: Arc<str>,
    pub(super) subject: Arc<str>,
    pub(super) subject_kind: SubjectKind,
    pub(super) hazard_source: Option<Arc<str>>,
    pub(super) condition: ConditionKind,
    pub(super) level: Option<Level>,
    pub(super) priority: Priority,
    pub(super) unit: Arc<str>,
    pub(super) limit: Option<f64>,
    pub(super) role: Role,
}

impl SlotMeta {
    /// The alarm's id.
    pub(super) fn id(&self) -> String {
        alarm_id(&self.subject, self.condition, self.level)
    }
}

/// One alarm's live state. A plant has a slot or more per point, most of them never raised,
/// so what only some alarms use (raise times, a predicted crossing) is allocated on first use.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) meta: SlotMeta,
    pub(super) life: Lifecycle,
    pub(super) deb: Debounce,
    /// On- and off-delay in nanoseconds (a `Duration` pair is twice the size).
    delays: [u64; 2],
    pub(super) value: f64,
    rare: Option<Box<Rare>>,
}

/// What only some alarms need.
#[derive(Debug, Clone, Default)]
struct Rare {
    /// Recent raises, for chattering.
    raises: RateCounter,
    /// The predicted crossing an early warning carries.
    predicted: Option<Timestamp>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Slot {
    pub(super) fn new(meta: SlotMeta, latching: bool, delays: Delays) -> Self {
        Self {
            meta,
            life: Lifecycle::new(latching),
            deb: Debounce::default(),
            delays: [nanos(delays.on), nanos(delays.off)],
            value: f64::NAN,
            rare: None,
        }
    }

    /// Its on- and off-delay.
    pub(super) fn delays(&self) -> Delays {
        Delays {
            on: Duration::from_nanos(self.delays[0]),
            off: Duration::from_nanos(self.delays[1]),
        }
    }

    /// The predicted crossing an early warning carries.
    pub(super) fn predicted(&self) -> Option<Timestamp> {
        self.rare.as_ref().and_then(|r| r.predicted)
    }

    pub(super) fn set_predicted(&mut self, at: Option<Timestamp>) {
        match (&mut self.rare, at) {
            (Some(r), at) => r.predicted = at,
            (None, None) => {}
            (rare @ None, at) => rare.get_or_insert_default().predicted = at,
        }
    }

    /// Records a raise at `ts`; returns the raises within `window`.
    pub(super) fn record_raise(&mut self, ts: Timestamp, window: Duration) -> usize {
        self.rare.get_or_insert_default().raises.record(ts, window)
    }

    /// Takes over the raise times and predicted crossing of the alarm's slot before a reload.
    pub(super) fn carry_rare(&mut self, prev: &Slot) {
        self.rare = prev.rare.clone();
    }

    /// Raises within `window` before `now`.
    pub(super) fn raise_count(&mut self, now: Timestamp, window: Duration) -> usize {
        self.rare.as_mut().map_or(0, |r| r.raises.count(now, window))
    }

    /// The transition record with the slot's full state after `transition`.
    pub(super) fn event(
        &self,
        transition: Transition,
        ts: Timestamp,
        user: Option<&str>,
        comment: Option<&str>,
    ) -> AlarmEvent {
        let m = &self.meta;
        AlarmEvent {
            seq: 0,
            alarm_id: m.id(),
            rule: m.rule.to_string(),
            subject: m.subject.to_string(),
            subject_kind: m.subject_kind,
            hazard_source: m.hazard_source.as_deref().map(str::to_string),
            condition: m.condition,
            class: m.condition.class(),
            level: m.level,
            priority: m.priority,
            transition,
            state: self.life.state(),
            acknowledged: self.life.acked(),
            latching: self.life.latching(),
            shelved_until: self.life.shelved_until(),
            suppressed: self.life.suppressed(),
            out_of_service: self.life.out_of_service(),
            value: self.value,
            limit: m.limit,
            unit: m.unit.to_string(),
            ts,
            raised_at: self.life.raised_at(),
            user: user.map(str::to_string),
            comment: comment.map(str::to_string),
            category: None,
            predicted_at: self.predicted(),
        }
    }
}

/// The id of an alarm: `<point>:<level>` for thresholds (`MHS-001/GT-101:high`), else
/// `<subject>:<condition>[:<level>]` (`gas-ai-1:communication`, `zone-a:vote:high`).
pub(super) fn alarm_id(subject: &str, condition: ConditionKind, level: Option<Level>) -> String {
    match (condition, level) {
        (ConditionKind::Threshold, Some(l)) => format!("{subject}:{l}"),
        (_, Some(l)) => format!("{subject}:{condition}:{l}"),
        (_, None) => format!("{subject}:{condition}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(delays: Delays) -> Slot {
        let meta = SlotMeta {
            rule: "sensor_fault".into(),
            subject: "g1".into(),
            subject_kind: SubjectKind::Point,
            hazard_source: None,
            condition: ConditionKind::SensorFault,
            level: None,
            priority: Priority::High,
            unit: "%LEL".into(),
            limit: None,
            role: Role::Gateway,
        };
        Slot::new(meta, false, delays)
    }

    #[test]
    fn delays_read_back_as_configured() {
        let delays = Delays {
            on: Duration::from_millis(1500),
            off: Duration::from_nanos(7),
        };
        assert_eq!(slot(delays).delays(), delays);
        assert_eq!(slot(Delays::default()).delays(), Delays::default());
    }

    #[test]
    fn raises_and_predictions_are_kept_only_once_there_are_any() {
        let mut s = slot(Delays::default());
        let minute = Duration::from_secs(60);
        let at = Timestamp::from_millis;
        s.set_predicted(None);
        assert_eq!(s.raise_count(at(0), minute), 0);
        assert!(s.rare.is_none(), "nothing allocated for an alarm that never raised");
        assert_eq!(s.record_raise(at(0), minute), 1);
        assert_eq!(s.record_raise(at(30_000), minute), 2);
        assert_eq!(s.raise_count(at(61_000), minute), 1);
        s.set_predicted(Some(at(90_000)));
        assert_eq!(s.predicted(), Some(at(90_000)));
        assert_eq!(
            s.event(Transition::Raised, at(61_000), None, None).predicted_at,
            Some(at(90_000))
        );
        let mut next = slot(Delays::default());
        next.carry_rare(&s);
        assert_eq!(
            (next.predicted(), next.raise_count(at(61_000), minute)),
            (Some(at(90_000)), 1)
        );
    }

    #[test]
    fn a_slot_stays_small() {
        // One per alarm, an alarm or more per point: the engine's largest per-point cost.
        assert!(std::mem::size_of::<Slot>() <= 208, "{}", std::mem::size_of::<Slot>());
    }
}
