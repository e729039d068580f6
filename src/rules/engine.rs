//! The rules engine: every rule of every point, evaluated reading by reading.

use crate::model::{AlarmEvent, AlarmLevel, PointId, PointTable, Quality, Reading, Transition};

use super::threshold::{LimitState, Threshold};

/// One threshold rule bound to one point.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Rule name, journaled with its alarms (`profile:ai4-gas-lel` for profile defaults).
    pub name: String,
    /// The point it watches.
    pub point: PointId,
    /// Its limits and filters.
    pub threshold: Threshold,
}

#[derive(Debug)]
struct BoundRule {
    spec: RuleSpec,
    states: Vec<LimitState>,
}

/// Per-point rule state. Feed it readings; it returns the alarm transitions they cause.
#[derive(Debug)]
pub struct RulesEngine {
    points: PointTable,
    /// Rules indexed by point.
    by_point: Vec<Vec<BoundRule>>,
}

impl RulesEngine {
    /// Builds the engine for `rules` over `points`.
    pub fn new(points: PointTable, rules: Vec<RuleSpec>) -> Self {
        let mut by_point: Vec<Vec<BoundRule>> = (0..points.len()).map(|_| Vec::new()).collect();
        for spec in rules {
            let states = vec![LimitState::default(); spec.threshold.limits.len()];
            by_point[spec.point.index()].push(BoundRule { spec, states });
        }
        Self { points, by_point }
    }

    /// Number of rule-limit pairs evaluated per reading, summed over points.
    pub fn limit_count(&self) -> usize {
        self.by_point.iter().flatten().map(|r| r.states.len()).sum()
    }

    /// Marks an alarm active without emitting an event: the journal said it was active when
    /// the gateway stopped, so its clear must still be reported and it must not be raised twice.
    pub fn restore_active(&mut self, point: PointId, level: AlarmLevel) -> bool {
        let Some(rules) = self.by_point.get_mut(point.index()) else {
            return false;
        };
        for rule in rules {
            for (limit, state) in rule.spec.threshold.limits.iter().zip(&mut rule.states) {
                if limit.level == level {
                    *state = LimitState::restored_active();
                    return true;
                }
            }
        }
        false
    }

    /// Evaluates one reading, appending any alarm transitions to `out`. Readings of bad
    /// quality leave process alarms as they are: a dead sensor neither raises nor clears them.
    pub fn evaluate(&mut self, reading: &Reading, out: &mut Vec<AlarmEvent>) {
        if reading.quality != Quality::Good {
            return;
        }
        let Some(rules) = self.by_point.get_mut(reading.point.index()) else {
            return;
        };
        for rule in rules {
            let t = &rule.spec.threshold;
            for (limit, state) in t.limits.iter().zip(&mut rule.states) {
                let Some(transition) = state.update(limit, t.deadband, t.on_delay, reading.value, reading.ts) else {
                    continue;
                };
                let meta = self.points.meta(reading.point);
                out.push(AlarmEvent {
                    seq: 0,
                    alarm_id: format!("{}:{}", meta.name, limit.level.as_str()),
                    rule: rule.spec.name.clone(),
                    point: meta.name.to_string(),
                    hazard_source: meta.hazard_source.as_deref().map(str::to_string),
                    level: limit.level,
                    priority: limit.priority,
                    transition,
                    value: reading.value,
                    limit: limit.value,
                    unit: meta.unit.to_string(),
                    ts: reading.ts,
                });
            }
        }
    }
}

/// Whether an event raises (rather than clears) its alarm.
pub fn is_raise(e: &AlarmEvent) -> bool {
    e.transition == Transition::Raised
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{PointKind, PointMeta, Priority, Timestamp};
    use crate::rules::Limit;

    fn engine() -> (RulesEngine, PointId) {
        let mut points = PointTable::default();
        let id = points
            .insert(PointMeta {
                name: "MHS-001/GT-101".into(),
                unit: "%LEL".into(),
                kind: PointKind::Gas,
                device: "gas-ai-1".into(),
                hazard_source: Some("MHS-001".into()),
                range: Some((0.0, 100.0)),
                description: None,
            })
            .unwrap();
        let threshold = Threshold {
            limits: vec![
                Limit {
                    level: AlarmLevel::High,
                    value: 25.0,
                    priority: Priority::High,
                },
                Limit {
                    level: AlarmLevel::HighHigh,
                    value: 50.0,
                    priority: Priority::Critical,
                },
            ],
            deadband: 2.0,
            on_delay: Duration::ZERO,
        };
        let rule = RuleSpec {
            name: "gas".into(),
            point: id,
            threshold,
        };
        (RulesEngine::new(points, vec![rule]), id)
    }

    fn reading(point: PointId, secs: i64, value: f64, quality: Quality) -> Reading {
        Reading {
            point,
            ts: Timestamp::from_millis(secs * 1000),
            value,
            quality,
        }
    }

    #[test]
    fn a_leak_raises_both_levels_then_clears_them() {
        let (mut e, p) = engine();
        let mut out = Vec::new();
        for (i, v) in [3.0, 30.0, 60.0, 40.0, 10.0].into_iter().enumerate() {
            e.evaluate(&reading(p, i as i64, v, Quality::Good), &mut out);
        }
        let seen: Vec<_> = out.iter().map(|e| (e.level, e.transition)).collect();
        assert_eq!(
            seen,
            vec![
                (AlarmLevel::High, Transition::Raised),
                (AlarmLevel::HighHigh, Transition::Raised),
                (AlarmLevel::HighHigh, Transition::Cleared),
                (AlarmLevel::High, Transition::Cleared),
            ]
        );
        assert_eq!(out[0].alarm_id, "MHS-001/GT-101:high");
        assert_eq!(out[0].hazard_source.as_deref(), Some("MHS-001"));
    }

    #[test]
    fn bad_quality_neither_raises_nor_clears() {
        let (mut e, p) = engine();
        let mut out = Vec::new();
        e.evaluate(&reading(p, 0, 80.0, Quality::CommFault), &mut out);
        assert!(out.is_empty());
        e.evaluate(&reading(p, 1, 30.0, Quality::Good), &mut out);
        assert_eq!(out.len(), 1);
        e.evaluate(&reading(p, 2, 0.0, Quality::OutOfRange), &mut out);
        assert_eq!(out.len(), 1, "an out-of-range value must not clear a gas alarm");
    }

    #[test]
    fn a_restored_alarm_is_not_raised_again_but_still_clears() {
        let (mut e, p) = engine();
        assert!(e.restore_active(p, AlarmLevel::High));
        let mut out = Vec::new();
        e.evaluate(&reading(p, 0, 30.0, Quality::Good), &mut out);
        assert!(out.is_empty());
        e.evaluate(&reading(p, 1, 5.0, Quality::Good), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].transition, Transition::Cleared);
    }
}
