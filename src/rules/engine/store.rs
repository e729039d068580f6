//! The engine's alarm slots, by index, with sensor-fault alarms kept compact until first used.
//!
//! Design: a plant has a sensor-fault alarm on every point (the default rule), and almost all
//! of them stay normal for the whole run. Such an alarm is kept as a *lazy* record (its point,
//! the rule it comes from and the last value it saw: 16 bytes) instead of a full slot (about
//! 190 bytes with its texts, lifecycle and debounce). The first time anything but its value
//! would change (its condition trips, a command, a restore, suppression by its device), the
//! full slot is built exactly as the engine would have built it at the start, given the value,
//! and used from then on. An alarm keeps its index either way, so every list, order and
//! record is the same as with full slots throughout: a lazy alarm reads as a normal slot that
//! never changed.

use std::borrow::Cow;
use std::sync::Arc;

use super::super::Delays;
use super::super::slots::{Role, Slot, SlotMeta, alarm_id};
use crate::model::{ConditionKind, PointId, PointTable, Priority, SubjectKind};

/// What the sensor-fault alarms of one rule share.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template {
    pub(super) rule: Arc<str>,
    pub(super) priority: Priority,
    pub(super) latching: bool,
    pub(super) delays: Delays,
}

/// A sensor-fault alarm that has not changed since the engine was built, but for its value.
#[derive(Debug, Clone, Copy)]
struct Lazy {
    template: u32,
    point: PointId,
    value: f64,
}

/// Marks an entry of `at` as a position in `lazy`.
const LAZY: u32 = 1 << 31;

/// Every alarm slot, by index.
#[derive(Debug, Clone, Default)]
pub(super) struct Slots {
    /// Per alarm: the position of its slot in `full`, or `LAZY` plus the position of its record
    /// in `lazy`.
    at: Vec<u32>,
    full: Vec<Slot>,
    lazy: Vec<Lazy>,
    templates: Vec<Template>,
    /// The points lazy alarms take their texts from.
    points: PointTable,
}

impl Slots {
    /// Number of alarms.
    pub(super) fn len(&self) -> usize {
        self.at.len()
    }

    /// Adds a full slot; returns its index.
    pub(super) fn push(&mut self, slot: Slot) -> usize {
        self.at.push(position(self.full.len()));
        self.full.push(slot);
        self.at.len() - 1
    }

    /// Adds the sensor-fault alarm of `template`'s rule on `point`; returns its index.
    pub(super) fn push_lazy(&mut self, template: u32, point: PointId) -> usize {
        self.at.push(LAZY | position(self.lazy.len()));
        self.lazy.push(Lazy {
            template,
            point,
            value: f64::NAN,
        });
        self.at.len() - 1
    }

    /// Registers what a rule's sensor-fault alarms share; returns its number.
    pub(super) fn add_template(&mut self, t: Template) -> u32 {
        self.templates.push(t);
        position(self.templates.len() - 1)
    }

    /// The template numbered `i`.
    pub(super) fn template(&self, i: u32) -> &Template {
        &self.templates[i as usize]
    }

    /// Sets the point table lazy alarms take their texts from (before any is used).
    pub(super) fn set_points(&mut self, points: PointTable) {
        self.points = points;
    }

    /// Alarm `i` as it is: its slot, or for a lazy alarm the slot it stands for.
    pub(super) fn view(&self, i: usize) -> Cow<'_, Slot> {
        match self.at[i] {
            a if a & LAZY == 0 => Cow::Borrowed(&self.full[a as usize]),
            a => Cow::Owned(self.build(&self.lazy[(a & !LAZY) as usize])),
        }
    }

    /// Alarm `i`'s slot, to change it; a lazy alarm gets its full slot first.
    pub(super) fn get_mut(&mut self, i: usize) -> &mut Slot {
        let a = self.at[i];
        if a & LAZY != 0 {
            let slot = self.build(&self.lazy[(a & !LAZY) as usize]);
            self.at[i] = position(self.full.len());
            self.full.push(slot);
        }
        let a = self.at[i] as usize;
        &mut self.full[a]
    }

    /// The last value of alarm `i` if it is lazy: the one thing that changes without
    /// making it full.
    pub(super) fn lazy_value(&mut self, i: usize) -> Option<&mut f64> {
        match self.at[i] {
            a if a & LAZY == 0 => None,
            a => Some(&mut self.lazy[(a & !LAZY) as usize].value),
        }
    }

    /// Alarm `i`'s id (formed without building a lazy alarm's slot).
    pub(super) fn id(&self, i: usize) -> String {
        match self.at[i] {
            a if a & LAZY == 0 => self.full[a as usize].meta.id(),
            a => {
                let p = self.lazy[(a & !LAZY) as usize].point;
                alarm_id(self.points.meta(p).name(), ConditionKind::SensorFault, None)
            }
        }
    }

    /// Whether alarm `i` is lazy (has never changed but for its value).
    pub(super) fn is_lazy(&self, i: usize) -> bool {
        self.at[i] & LAZY != 0
    }

    /// Alarm `i`'s slot if it has one, to change it; `None` for a lazy alarm.
    pub(super) fn full_mut(&mut self, i: usize) -> Option<&mut Slot> {
        match self.at[i] {
            a if a & LAZY == 0 => Some(&mut self.full[a as usize]),
            _ => None,
        }
    }

    /// The alarms with full slots, by index, in index order (a lazy alarm has nothing
    /// running: no delay, shelving, raises or record to show).
    pub(super) fn iter_full(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.at
            .iter()
            .enumerate()
            .filter(|(_, a)| **a & LAZY == 0)
            .map(|(i, a)| (i, &self.full[*a as usize]))
    }

    /// Gives back what the build grew.
    pub(super) fn shrink_to_fit(&mut self) {
        self.at.shrink_to_fit();
        self.full.shrink_to_fit();
        self.lazy.shrink_to_fit();
        self.templates.shrink_to_fit();
    }

    /// The full slot a lazy record stands for: the same as the engine builds for a
    /// sensor-fault rule (see `Builder::point_meta`).
    fn build(&self, l: &Lazy) -> Slot {
        let t = self.template(l.template);
        let m = self.points.meta(l.point);
        let meta = SlotMeta {
            rule: t.rule.clone(),
            subject: m.name().clone(),
            subject_kind: SubjectKind::Point,
            hazard_source: m.hazard_source().cloned(),
            condition: ConditionKind::SensorFault,
            level: None,
            priority: t.priority,
            unit: m.unit().clone(),
            limit: None,
            role: Role::Point(l.point),
        };
        let mut slot = Slot::new(meta, t.latching, t.delays);
        slot.value = l.value;
        slot
    }
}

/// A position in one of the arrays; an engine has fewer than 2^31 alarms (a point has a
/// `u32` id and a handful of alarms at most).
fn position(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX) & !LAZY
}
