//! Building the engine from validated rules: one slot per alarm, indexes per point and device.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::super::season::Season;
use super::super::slots::{Role, Slot, SlotMeta, alarm_id};
use super::super::suspect::{Check, SuspectState};
use super::super::vote::output_levels;
use super::super::{AlarmSettings, Delays, Limit, RuleKind, RuleSpec, VoteMember, VoteMode, bindings};
use super::lists::{LatestValues, ListBuilder};
use super::store::Template;
use super::{
    DeviationEval, DeviceEval, EarlyEval, RateEval, RulesEngine, StaleEval, SuspectEval, ThresholdEval, VoteEval,
    VoteInput,
};
use crate::model::{ConditionKind, GATEWAY_SUBJECT, Level, PointId, PointTable, Priority, SubjectKind, Timestamp};
use crate::rules::flood::FloodGuard;

/// An index kept in 32 bits: an engine has fewer than 2^31 alarms and devices (see `store`).
fn small(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Why a rule set cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Two rules would define the same alarm.
    #[error("alarm `{id}` is defined by both rule `{first}` and rule `{second}`")]
    DuplicateAlarm {
        /// The alarm id.
        id: String,
        /// The rule that defined it first.
        first: String,
        /// The rule that defined it again.
        second: String,
    },
    /// A vote refers to a group that is not an earlier vote rule.
    #[error("vote rule `{rule}` counts `{member}`, which is not a vote rule defined before it")]
    UnknownGroup {
        /// The vote rule.
        rule: String,
        /// The unknown member.
        member: String,
    },
    /// A vote counts a point that has no threshold level of the vote's family.
    #[error("vote rule `{rule}` counts point `{point}`, but no threshold rule gives it a `{level}`-family level")]
    MemberCannotVote {
        /// The vote rule.
        rule: String,
        /// The point.
        point: String,
        /// The level the vote counts.
        level: Level,
    },
    /// An early warning on a point no threshold rule gives a set-point.
    #[error("early-warning rule `{rule}` watches point `{point}`, which has no threshold set-point to warn of")]
    NoSetPoint {
        /// The early-warning rule.
        rule: String,
        /// The point.
        point: String,
    },
}

fn mode_family(mode: &VoteMode) -> Option<Level> {
    match mode {
        VoteMode::Confirm { level, .. } => Some(*level),
        VoteMode::Escalate { counts } => counts.first().map(|(l, _)| *l),
    }
}

struct Builder<'a> {
    engine: RulesEngine,
    /// Every alarm id so far, to refuse a second definition.
    ids: HashMap<String, usize>,
    /// The alarms of each subject that is not a point.
    subjects: HashMap<Arc<str>, Vec<usize>>,
    /// The sensor-fault templates of each rule name.
    templates: HashMap<Arc<str>, Vec<u32>>,
    lists: Lists,
    /// Each point's threshold set-points so far, for the early warnings and votes built after
    /// them (only points that have any).
    set_points: HashMap<PointId, Vec<Limit>>,
    /// Rule names shared by the alarms they define (one per point for the defaults).
    names: HashMap<String, Arc<str>>,
    points: &'a PointTable,
}

/// The engine's per-point lists while they are gathered.
#[derive(Default)]
struct Lists {
    point_slots: ListBuilder<u32>,
    thresholds: ListBuilder<ThresholdEval>,
    rates: ListBuilder<RateEval>,
    earlies: ListBuilder<EarlyEval>,
    faults: ListBuilder<u32>,
    stales: ListBuilder<StaleEval>,
    point_deviations: ListBuilder<usize>,
    point_votes: ListBuilder<usize>,
}

impl Lists {
    fn finish(self, e: &mut RulesEngine, n: usize) {
        e.point_slots = self.point_slots.finish(n);
        e.thresholds = self.thresholds.finish(n);
        e.rates = self.rates.finish(n);
        e.earlies = self.earlies.finish(n);
        e.faults = self.faults.finish(n);
        e.stales = self.stales.finish(n);
        e.point_deviations = self.point_deviations.finish(n);
        e.point_votes = self.point_votes.finish(n);
    }
}

impl Builder<'_> {
    fn add_slot(&mut self, rule: &RuleSpec, meta: SlotMeta, delays: Delays) -> Result<usize, BuildError> {
        self.add_named_slot(&rule.name, rule.latching, meta, delays)
    }

    fn add_named_slot(
        &mut self,
        rule: &str,
        latching: bool,
        meta: SlotMeta,
        delays: Delays,
    ) -> Result<usize, BuildError> {
        let idx = self.claim(meta.id(), rule)?;
        match meta.role {
            Role::Threshold(p) | Role::Point(p) => self.lists.point_slots.push(p, small(idx)),
            Role::Device(_) | Role::Group | Role::Gateway => {
                self.subjects.entry(meta.subject.clone()).or_default().push(idx);
            }
        }
        self.engine.slots.push(Slot::new(meta, latching, delays));
        Ok(idx)
    }

    /// Refuses a second alarm with `id`; otherwise records it as the next slot's.
    fn claim(&mut self, id: String, rule: &str) -> Result<usize, BuildError> {
        if let Some(&first) = self.ids.get(&id) {
            return Err(BuildError::DuplicateAlarm {
                id,
                first: self.engine.slots.view(first).meta.rule.to_string(),
                second: rule.to_string(),
            });
        }
        let idx = self.engine.slots.len();
        self.ids.insert(id, idx);
        Ok(idx)
    }

    /// A sensor-fault alarm on `point`, kept lazy (see `store`): the same alarm a full slot
    /// from [`Builder::point_meta`] with the rule's priority would be.
    fn add_sensor_fault(
        &mut self,
        rule: &RuleSpec,
        point: PointId,
        priority: Priority,
        delays: Delays,
    ) -> Result<usize, BuildError> {
        let id = alarm_id(self.points.meta(point).name(), ConditionKind::SensorFault, None);
        let idx = self.claim(id, &rule.name)?;
        let template = Template {
            rule: self.name(&rule.name),
            priority,
            latching: rule.latching,
            delays,
        };
        let known = self.templates.entry(template.rule.clone()).or_default();
        let t = match known.iter().find(|&&t| *self.engine.slots.template(t) == template) {
            Some(&t) => t,
            None => {
                let t = self.engine.slots.add_template(template);
                known.push(t);
                t
            }
        };
        self.lists.point_slots.push(point, small(idx));
        self.engine.slots.push_lazy(t, point);
        Ok(idx)
    }

    /// The shared text of a rule's name.
    fn name(&mut self, rule: &str) -> Arc<str> {
        if let Some(n) = self.names.get(rule) {
            return n.clone();
        }
        let n: Arc<str> = rule.into();
        self.names.insert(rule.to_string(), n.clone());
        n
    }

    fn point_meta(
        &mut self,
        rule: &RuleSpec,
        point: PointId,
        condition: ConditionKind,
        level: Option<Level>,
    ) -> SlotMeta {
        let m = self.points.meta(point);
        SlotMeta {
            rule: self.name(&rule.name),
            subject: m.name().clone(),
            subject_kind: SubjectKind::Point,
            hazard_source: m.hazard_source().cloned(),
            condition,
            level,
            priority: Priority::High,
            unit: m.unit().clone(),
            limit: None,
            role: Role::Point(point),
        }
    }

    fn group_meta(
        &mut self,
        rule: &RuleSpec,
        condition: ConditionKind,
        level: Option<Level>,
        unit: Arc<str>,
    ) -> SlotMeta {
        let name = self.name(&rule.name);
        SlotMeta {
            rule: name.clone(),
            subject: name,
            subject_kind: SubjectKind::Group,
            hazard_source: None,
            condition,
            level,
            priority: Priority::High,
            unit,
            limit: None,
            role: Role::Group,
        }
    }

    fn common_source(&self, points: impl Iterator<Item = PointId>) -> Option<Arc<str>> {
        let mut sources = points.map(|p| self.points.meta(p).hazard_source().cloned());
        let first = sources.next()??;
        sources.all(|s| s.as_ref() == Some(&first)).then_some(first)
    }

    fn add_rule(&mut self, rule: &RuleSpec) -> Result<(), BuildError> {
        match &rule.kind {
            RuleKind::Threshold {
                point,
                limits,
                deadband,
                delays,
            } => {
                for limit in limits {
                    let mut meta = self.point_meta(rule, *point, ConditionKind::Threshold, Some(limit.level));
                    meta.priority = limit.priority;
                    meta.limit = Some(limit.value);
                    meta.role = Role::Threshold(*point);
                    let slot = self.add_slot(rule, meta, *delays)?;
                    self.lists.thresholds.push(
                        *point,
                        ThresholdEval {
                            slot,
                            limit: *limit,
                            deadband: *deadband,
                        },
                    );
                    self.set_points.entry(*point).or_default().push(*limit);
                }
            }
            RuleKind::RateOfChange {
                point,
                rise,
                fall,
                per,
                window,
                priority,
                delays,
            } => {
                let mut meta = self.point_meta(rule, *point, ConditionKind::RateOfChange, None);
                meta.priority = *priority;
                meta.limit = rise.or(fall.map(|f| -f));
                let slot = self.add_slot(rule, meta, *delays)?;
                self.lists.rates.push(
                    *point,
                    RateEval {
                        slot,
                        rise: *rise,
                        fall: *fall,
                        per: *per,
                        window: *window,
                        samples: Default::default(),
                    },
                );
            }
            RuleKind::EarlyWarning {
                point,
                horizon,
                window,
                min_samples,
                priority,
                delays,
            } => {
                let limits = self.set_points.get(point).cloned().unwrap_or_default();
                if limits.is_empty() {
                    return Err(BuildError::NoSetPoint {
                        rule: rule.name.clone(),
                        point: self.points.meta(*point).name().to_string(),
                    });
                }
                let mut slots = Vec::new();
                for limit in limits {
                    let mut meta = self.point_meta(rule, *point, ConditionKind::EarlyWarning, Some(limit.level));
                    meta.priority = priority.unwrap_or(match limit.priority {
                        Priority::Critical => Priority::High,
                        Priority::High => Priority::Medium,
                        Priority::Medium | Priority::Low => Priority::Low,
                    });
                    meta.limit = Some(limit.value);
                    slots.push((limit, self.add_slot(rule, meta, *delays)?));
                }
                self.lists.earlies.push(
                    *point,
                    EarlyEval {
                        slots,
                        horizon: *horizon,
                        window: *window,
                        min_samples: *min_samples,
                        samples: Default::default(),
                        trend: None,
                        season: Season::in_minute(point.index()),
                        seasonal: None,
                    },
                );
            }
            RuleKind::Stale { point, after, priority } => {
                let mut meta = self.point_meta(rule, *point, ConditionKind::Stale, None);
                meta.priority = *priority;
                let slot = self.add_slot(rule, meta, Delays::default())?;
                self.lists.stales.push(*point, StaleEval { slot, after: *after });
            }
            RuleKind::SensorFault {
                point,
                priority,
                delays,
            } => {
                let slot = self.add_sensor_fault(rule, *point, *priority, *delays)?;
                self.lists.faults.push(*point, small(slot));
            }
            RuleKind::Suspect {
                point,
                checks,
                priority,
            } => {
                let mut slots = [None; 3];
                let on = [
                    checks.stuck.is_some(),
                    checks.pinned.is_some(),
                    checks.max_rate.is_some(),
                ];
                for ((check, on), slot) in Check::ALL.into_iter().zip(on).zip(&mut slots) {
                    if !on {
                        continue;
                    }
                    let condition = match check {
                        Check::Stuck => ConditionKind::Stuck,
                        Check::Pinned => ConditionKind::Pinned,
                        Check::Jump => ConditionKind::ImplausibleJump,
                    };
                    let mut meta = self.point_meta(rule, *point, condition, None);
                    meta.priority = *priority;
                    *slot = Some(self.add_slot(rule, meta, Delays::default())?);
                }
                self.engine.suspects[point.index()] = Some(Box::new(SuspectEval {
                    checks: *checks,
                    state: SuspectState::default(),
                    slots,
                }));
            }
            // Expanded into `SensorFault` and `Suspect` bindings by `bindings` before this.
            RuleKind::DefaultSensorFault { .. } | RuleKind::DefaultSuspect { .. } => {}
            RuleKind::Deviation {
                points,
                max,
                deadband,
                priority,
                delays,
            } => {
                let unit = points
                    .first()
                    .map_or_else(|| Arc::from(""), |p| self.points.meta(*p).unit().clone());
                let mut meta = self.group_meta(rule, ConditionKind::Deviation, None, unit);
                meta.priority = *priority;
                meta.limit = Some(*max);
                meta.hazard_source = self.common_source(points.iter().copied());
                let slot = self.add_slot(rule, meta, *delays)?;
                let idx = self.engine.deviations.len();
                for p in points {
                    self.lists.point_deviations.push(*p, idx);
                }
                self.engine.deviations.push(DeviationEval {
                    slot,
                    points: points.clone(),
                    max: *max,
                    deadband: *deadband,
                });
            }
            RuleKind::Vote {
                members,
                mode,
                priorities,
                hazard_source,
            } => self.add_vote(rule, members, mode, priorities, hazard_source)?,
        }
        Ok(())
    }

    fn add_vote(
        &mut self,
        rule: &RuleSpec,
        members: &[VoteMember],
        mode: &VoteMode,
        priorities: &[(Level, Priority)],
        hazard_source: &Option<String>,
    ) -> Result<(), BuildError> {
        let family = mode_family(mode).unwrap_or(Level::High);
        let idx = self.engine.votes.len();
        let mut inputs = Vec::new();
        for m in members {
            match m {
                VoteMember::Point(p) => {
                    let votes = self
                        .set_points
                        .get(p)
                        .is_some_and(|limits| limits.iter().any(|l| l.level.same_family(family)));
                    if !votes {
                        let point = self.points.meta(*p).name().to_string();
                        return Err(BuildError::MemberCannotVote {
                            rule: rule.name.clone(),
                            point,
                            level: family,
                        });
                    }
                    self.lists.point_votes.push(*p, idx);
                    inputs.push(VoteInput::Point(*p));
                }
                VoteMember::Group(name) => {
                    let Some(g) = self.engine.votes.iter().position(|v| &v.name == name) else {
                        return Err(BuildError::UnknownGroup {
                            rule: rule.name.clone(),
                            member: name.clone(),
                        });
                    };
                    self.engine.votes[g].parents.push(idx);
                    inputs.push(VoteInput::Group(g));
                }
            }
        }
        let mut slots = Vec::new();
        for level in output_levels(mode) {
            let mut meta = self.group_meta(rule, ConditionKind::Vote, Some(level), Arc::from("members"));
            meta.priority = priorities
                .iter()
                .find(|(l, _)| *l == level)
                .map_or(level.default_priority(), |(_, p)| *p);
            meta.hazard_source = hazard_source.as_deref().map(Arc::from);
            slots.push((level, self.add_slot(rule, meta, Delays::default())?));
        }
        self.engine.votes.push(VoteEval {
            name: rule.name.clone(),
            inputs,
            mode: mode.clone(),
            slots,
            level: None,
            parents: Vec::new(),
        });
        Ok(())
    }

    fn add_devices(&mut self, settings: &AlarmSettings) -> Result<(), BuildError> {
        let mut index: HashMap<String, usize> = HashMap::new();
        for (id, meta) in self.points.iter() {
            let name = meta.device().to_string();
            let dev = *index.entry(name.clone()).or_insert_with(|| {
                self.engine.devices.push(DeviceEval::new(name));
                self.engine.devices.len() - 1
            });
            self.engine.devices[dev].points.push(id);
            self.engine.point_device[id.index()] = small(dev);
        }
        let mut grace = vec![Duration::ZERO; self.engine.devices.len()];
        for group in &settings.stations {
            let st = self.engine.devices.len();
            let mut station = DeviceEval::new(group.station.clone());
            for name in &group.devices {
                let Some(&m) = index.get(name) else { continue };
                station.members.push(m);
                station.points.extend(self.engine.devices[m].points.iter().copied());
                self.engine.devices[m].station = Some(st);
                grace[m] = group.grace;
            }
            self.engine.devices.push(station);
            grace.push(Duration::ZERO);
        }
        const RULE: &str = "communication";
        for (dev, on) in grace.into_iter().enumerate() {
            let rule = self.name(RULE);
            let d = &self.engine.devices[dev];
            let meta = SlotMeta {
                rule,
                subject: d.name.as_str().into(),
                subject_kind: SubjectKind::Device,
                hazard_source: self.common_source(d.points.clone().into_iter()),
                condition: ConditionKind::Communication,
                level: None,
                priority: settings.communication_priority,
                unit: Arc::from(""),
                limit: None,
                role: Role::Device(u32::try_from(dev).unwrap_or(u32::MAX)),
            };
            let delays = Delays {
                on,
                off: Duration::ZERO,
            };
            let slot = self.add_named_slot(RULE, false, meta, delays)?;
            self.engine.devices[dev].slot = slot;
        }
        Ok(())
    }
}

impl Builder<'_> {
    /// One alarm per self-diagnostic check on the `gateway` pseudo-device. The checks decide
    /// their own persistence (a clock jump holds for minutes), so no delays here.
    fn add_gateway(&mut self, settings: &AlarmSettings) -> Result<(), BuildError> {
        const RULE: &str = "self_diagnostic";
        for kind in ConditionKind::SELF_DIAGNOSTIC {
            let unit = match kind {
                ConditionKind::DiskSpace | ConditionKind::StoreBacklog => "MiB",
                ConditionKind::ClockJump | ConditionKind::PairDegraded => "s",
                ConditionKind::StorageWrite => "readings",
                _ => "",
            };
            let meta = SlotMeta {
                rule: self.name(RULE),
                subject: GATEWAY_SUBJECT.into(),
                subject_kind: SubjectKind::Device,
                hazard_source: None,
                condition: kind,
                level: None,
                priority: settings.diagnostic_priority,
                unit: unit.into(),
                limit: None,
                role: Role::Gateway,
            };
            let slot = self.add_named_slot(RULE, false, meta, Delays::default())?;
            self.engine.gateway.push((kind, slot));
        }
        Ok(())
    }
}

impl RulesEngine {
    /// Builds the engine for `rules` over `points`; `start` is when silence starts counting
    /// towards stale alarms.
    pub fn new(
        points: PointTable,
        rules: &[RuleSpec],
        settings: AlarmSettings,
        start: Timestamp,
    ) -> Result<Self, BuildError> {
        let n = points.len();
        let engine = RulesEngine {
            settings: settings.clone(),
            slots: Default::default(),
            subjects: HashMap::new(),
            point_slots: Default::default(),
            thresholds: Default::default(),
            rates: Default::default(),
            earlies: Default::default(),
            faults: Default::default(),
            suspects: vec![None; n],
            stales: Default::default(),
            last_seen: vec![start; n],
            latest: LatestValues::new(n),
            deviations: Vec::new(),
            point_deviations: Default::default(),
            votes: Vec::new(),
            point_votes: Default::default(),
            devices: Vec::new(),
            point_device: vec![0; n],
            point_commfault: vec![false; n],
            gateway: Vec::new(),
            flood: FloodGuard::default(),
            chattering: Default::default(),
            chattering_total: 0,
            started: start,
            points: PointTable::default(),
        };
        let mut b = Builder {
            engine,
            ids: HashMap::new(),
            subjects: HashMap::new(),
            templates: HashMap::new(),
            lists: Lists::default(),
            set_points: HashMap::new(),
            names: HashMap::new(),
            points: &points,
        };
        b.add_devices(&settings)?;
        b.add_gateway(&settings)?;
        // Early warnings target the set-points of threshold rules, wherever those are listed.
        // The default per-point alarms are expanded here, one binding at a time, and nowhere kept.
        let early = |r: &RuleSpec| matches!(r.kind, RuleKind::EarlyWarning { .. });
        for rule in bindings(rules, &points).filter(|r| !early(r)) {
            b.add_rule(&rule)?;
        }
        for rule in rules.iter().filter(|r| early(r)) {
            b.add_rule(rule)?;
        }
        let mut engine = b.engine;
        b.lists.finish(&mut engine, n);
        engine.subjects = b.subjects.into_iter().map(|(s, v)| (s, v.into_boxed_slice())).collect();
        engine.slots.set_points(points.clone());
        engine.points = points;
        engine.shrink_to_fit();
        Ok(engine)
    }
}

impl RulesEngine {
    /// Gives back what the build grew and will not use: a plant's points each hold a few of
    /// these lists, so the spare capacity would cost more than the alarms themselves.
    fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
        self.subjects.shrink_to_fit();
    }
}
