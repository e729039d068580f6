//! Carrying alarm state into a rebuilt engine when the configuration is reloaded.
//!
//! Design: a reload builds a fresh engine from the new rules (pure, like at start) and then
//! takes over, alarm by alarm, everything the old engine knew: an alarm that keeps its id keeps
//! its ISA-18.2 state, acknowledgement, shelving, out-of-service flag, raise time, running
//! on/off-delay timer, last value and chatter count; the new limits, delays and priorities
//! apply from the next reading on. Per-point memory (last reading time, latest value,
//! rate-of-change windows, communication faults) carries over by point, which the reload
//! requires to be unchanged. The flood guard and chatter figures carry over whole. An alarm
//! the new rules no longer define is reported, so the caller can take it off the live view.

use super::*;

/// What carrying state into a rebuilt engine did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarryReport {
    /// Alarms present in both configurations (their state was kept).
    pub kept: usize,
    /// Alarms only the new configuration defines (they start normal).
    pub added: usize,
    /// Alarms the new configuration no longer defines that were visible (not normal).
    pub removed_visible: Vec<String>,
}

impl RulesEngine {
    /// Takes over the state of `old`, an engine over the same point table. Emits nothing:
    /// the journal already holds every state carried over.
    pub fn carry_over(&mut self, old: &RulesEngine) -> CarryReport {
        let mut report = CarryReport::default();
        self.started = old.started;
        // Silence counts from the start carried over for a point not heard yet.
        self.last_seen.fill(self.started);
        for new_slot in 0..self.slots.len() {
            let Some(o) = old.slot_of(&self.slots.id(new_slot)) else {
                report.added += 1;
                continue;
            };
            report.kept += 1;
            let prev = old.slots.view(o);
            // An alarm that never changed but for its value stays lazy: carrying its normal
            // state over changes nothing else (a lazy alarm never chatters either).
            if old.slots.is_lazy(o)
                && let Some(v) = self.slots.lazy_value(new_slot)
            {
                *v = prev.value;
                continue;
            }
            let slot = self.slots.get_mut(new_slot);
            slot.life = Lifecycle::restored(
                prev.life.state(),
                slot.life.latching(),
                prev.life.acked(),
                prev.life.shelved_until(),
                prev.life.suppressed(),
                prev.life.out_of_service(),
                prev.life.raised_at(),
            );
            slot.deb = prev.deb;
            slot.value = prev.value;
            slot.carry_rare(&prev);
            if old.chattering.contains(&o) {
                self.chattering.insert(new_slot);
            }
        }
        report.removed_visible = old
            .slots
            .iter_full()
            .filter(|(_, s)| s.life.visible())
            .map(|(_, s)| s.meta.id())
            .filter(|id| self.slot_of(id).is_none())
            .collect();
        if self.points.len() == old.points.len() {
            self.last_seen.clone_from(&old.last_seen);
            self.latest.clone_from(&old.latest);
            self.point_commfault.clone_from(&old.point_commfault);
            for p in 0..self.rates.len() {
                for e in self.rates[p].iter_mut() {
                    let id = self.slots.id(e.slot);
                    if let Some(prev) = old.rates[p].iter().find(|r| old.slots.id(r.slot) == id) {
                        e.samples = prev.samples.clone();
                    }
                }
            }
            for p in 0..self.earlies.len() {
                for e in self.earlies[p].iter_mut() {
                    let Some(&(_, first)) = e.slots.first() else { continue };
                    let rule = self.slots.view(first).meta.rule.clone();
                    let prev = old.earlies[p].iter().find(|o| {
                        o.slots
                            .first()
                            .is_some_and(|&(_, s)| old.slots.view(s).meta.rule == rule)
                    });
                    if let Some(prev) = prev.filter(|o| o.window == e.window) {
                        e.samples = prev.samples.clone();
                        e.trend = prev.trend;
                        e.season = prev.season.clone();
                        e.seasonal = prev.seasonal;
                    }
                }
            }
            // Suspect-data runs carry over while the point's checks are the same.
            for (e, prev) in self.suspects.iter_mut().zip(&old.suspects) {
                if let (Some(e), Some(prev)) = (e.as_mut(), prev.as_ref())
                    && e.checks == prev.checks
                {
                    e.state = prev.state.clone();
                }
            }
            for d in &mut self.devices {
                if let Some(prev) = old.devices.iter().find(|o| o.name == d.name && o.points == d.points) {
                    d.faulted = prev.faulted;
                }
            }
        }
        self.flood = old.flood.clone();
        self.chattering_total = old.chattering_total;
        // Group levels and suppression by an active communication alarm, as after a restart.
        self.finish_restore();
        report
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{AlarmState, PointKind, PointMeta, Priority};
    use crate::rules::{Delays, RuleKind, RuleSpec};

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn table() -> PointTable {
        let mut t = PointTable::default();
        for name in ["g1", "g2"] {
            t.insert(PointMeta {
                name: name.into(),
                unit: "%LEL".into(),
                kind: PointKind::Gas,
                device: "gas".into(),
                hazard_source: None,
                range: Some((0.0, 100.0)),
                description: None,
            });
        }
        t
    }

    fn high(name: &str, point: PointId, value: f64, on: Duration) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            latching: false,
            kind: RuleKind::Threshold {
                point,
                limits: vec![Limit {
                    level: Level::High,
                    value,
                    priority: Priority::High,
                    falling: false,
                }],
                deadband: 2.0,
                delays: Delays {
                    on,
                    off: Duration::ZERO,
                },
            },
        }
    }

    fn engine(g1_high: f64) -> (RulesEngine, PointId, PointId) {
        let t = table();
        let (g1, g2) = (t.id_of("g1").unwrap(), t.id_of("g2").unwrap());
        let rules = vec![
            high("a", g1, g1_high, Duration::ZERO),
            high("b", g2, 25.0, Duration::from_secs(10)),
        ];
        let e = RulesEngine::new(t, &rules, AlarmSettings::default(), at(0)).unwrap();
        (e, g1, g2)
    }

    fn read(e: &mut RulesEngine, p: PointId, ms: i64, value: f64) -> Vec<AlarmEvent> {
        let mut out = Output::default();
        let r = Reading {
            point: p,
            ts: at(ms),
            value,
            quality: Quality::Good,
        };
        e.evaluate(&r, &mut out);
        out.events
    }

    #[test]
    fn an_acknowledged_alarm_and_a_running_delay_survive_a_rebuild_with_new_set_points() {
        let (mut old, g1, g2) = engine(25.0);
        assert_eq!(read(&mut old, g1, 1_000, 30.0)[0].transition, Transition::Raised);
        let mut out = Output::default();
        old.command("g1:high", Command::Acknowledge, "op", "seen", at(1_500), &mut out)
            .unwrap();
        assert!(read(&mut old, g2, 2_000, 30.0).is_empty(), "on-delay running");

        let (mut new, _, _) = engine(35.0);
        let report = new.carry_over(&old);
        assert_eq!((report.kept, report.added), (old.alarm_count(), 0));
        let visible = new.visible(at(3_000));
        assert_eq!(visible.len(), 1);
        assert_eq!(
            (visible[0].alarm_id.as_str(), visible[0].state, visible[0].raised_at),
            ("g1:high", AlarmState::AckActive, Some(at(1_000)))
        );

        // The delay started at 2 s completes at 12 s, not 10 s after the rebuild.
        let mut out = Output::default();
        new.tick(at(11_999), &mut out);
        assert!(out.events.is_empty());
        new.tick(at(12_000), &mut out);
        assert_eq!(out.events[0].alarm_id, "g2:high");
        // The new set-point applies: 30 is below 35 minus the deadband.
        let cleared = read(&mut new, g1, 13_000, 30.0);
        assert_eq!(cleared[0].transition, Transition::Cleared);
    }

    #[test]
    fn sensor_fault_alarms_carry_over_whether_or_not_they_ever_changed() {
        let t = table();
        let (g1, g2) = (t.id_of("g1").unwrap(), t.id_of("g2").unwrap());
        let fault = |point| RuleSpec {
            name: "fault".into(),
            latching: false,
            kind: RuleKind::SensorFault {
                point,
                priority: Priority::High,
                delays: Delays::default(),
            },
        };
        let rules = [fault(g1), fault(g2)];
        let build = || RulesEngine::new(table(), &rules, AlarmSettings::default(), at(0)).unwrap();
        let mut old = build();
        let mut out = Output::default();
        for (p, q, v) in [(g1, Quality::OutOfRange, 120.0), (g2, Quality::Good, 7.0)] {
            let r = Reading {
                point: p,
                ts: at(1_000),
                value: v,
                quality: q,
            };
            old.evaluate(&r, &mut out);
        }
        let mut new = build();
        let report = new.carry_over(&old);
        assert_eq!((report.kept, report.added), (old.alarm_count(), 0));
        let (s1, s2) = (new.faults[g1.index()][0] as usize, new.faults[g2.index()][0] as usize);
        assert!(!new.slots.is_lazy(s1) && new.slots.is_lazy(s2));
        let visible = new.visible(at(2_000));
        assert_eq!(
            visible
                .iter()
                .map(|a| (a.alarm_id.as_str(), a.state))
                .collect::<Vec<_>>(),
            [("g1:sensor_fault", AlarmState::UnackActive)]
        );
        assert_eq!(new.slots.view(s2).value, 7.0);
    }

    #[test]
    fn a_removed_rule_reports_its_visible_alarm() {
        let (mut old, g1, _) = engine(25.0);
        read(&mut old, g1, 1_000, 30.0);
        let t = table();
        let g2 = t.id_of("g2").unwrap();
        let mut new = RulesEngine::new(
            t,
            &[high("b", g2, 25.0, Duration::ZERO)],
            AlarmSettings::default(),
            at(0),
        )
        .unwrap();
        let report = new.carry_over(&old);
        assert_eq!(report.removed_visible, vec!["g1:high".to_string()]);
    }
}
