//! Alarm slots: one per alarm the configuration can raise, holding its lifecycle, debounce and
//! the metadata every transition record carries.

use std::sync::Arc;

use crate::model::{AlarmEvent, ConditionKind, Level, PointId, Priority, SubjectKind, Timestamp, Transition};

use super::debounce::Debounce;
use super::flood::RateCounter;
use super::{Delays, Lifecycle};

/// What a slot's flips affect beyond itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A threshold limit of a point: votes over the point re-evaluate.
    Threshold(PointId),
    /// A device's communication alarm: suppresses the device's point alarms.
    Device(usize),
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
    // the point's own (name, unit, hazard source) or a rule name many alarms share.
    pub(super) id: Arc<str>,
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

/// One alarm's live state.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) meta: SlotMeta,
    pub(super) life: Lifecycle,
    pub(super) deb: Debounce,
    pub(super) delays: Delays,
    pub(super) value: f64,
    /// The predicted crossing an early warning carries.
    pub(super) predicted: Option<Timestamp>,
    pub(super) raises: RateCounter,
}

impl Slot {
    pub(super) fn new(meta: SlotMeta, latching: bool, delays: Delays) -> Self {
        Self {
            meta,
            life: Lifecycle::new(latching),
            deb: Debounce::default(),
            delays,
            value: f64::NAN,
            predicted: None,
            raises: RateCounter::default(),
        }
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
            alarm_id: m.id.to_string(),
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
            predicted_at: self.predicted,
        }
    }
}

/// The id of an alarm: `<point>:<level>` for thresholds (`MHS-001/GT-101:high`), else
/// `<subject>:<condition>[:<level>]` (`gas-ai-1:communication`, `zone-a:vote:high`).
pub(super) fn alarm_id(subject: &str, condition: ConditionKind, level: Option<Level>) -> Arc<str> {
    match (condition, level) {
        (ConditionKind::Threshold, Some(l)) => format!("{subject}:{l}"),
        (_, Some(l)) => format!("{subject}:{condition}:{l}"),
        (_, None) => format!("{subject}:{condition}"),
    }
    .into()
}
