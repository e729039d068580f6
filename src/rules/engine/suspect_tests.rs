//! Suspect-data checks driven through the engine: the quality a reading goes on with, the
//! data-quality alarms, and process alarms that still evaluate on a suspect value.

use std::time::Duration;

use super::*;
use crate::model::{AlarmState, PointKind, PointMeta, Priority};
use crate::rules::suspect::SuspectChecks;
use crate::rules::{Delays, RuleKind, RuleSpec};

fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(s * 1000)
}

fn engine() -> (RulesEngine, PointId) {
    let mut t = PointTable::default();
    let p = t
        .insert(PointMeta {
            name: "TT-101".into(),
            unit: "°C".into(),
            kind: PointKind::Temperature,
            device: "plc".into(),
            hazard_source: Some("MHS-001".into()),
            range: Some((0.0, 150.0)),
            description: None,
        })
        .unwrap();
    let rules = vec![
        RuleSpec {
            name: "suspect_data".into(),
            latching: false,
            kind: RuleKind::Suspect {
                point: p,
                checks: SuspectChecks {
                    stuck: Some(Duration::from_secs(600)),
                    ..SuspectChecks::for_kind(PointKind::Temperature, Some((0.0, 150.0)))
                },
                priority: Priority::Medium,
            },
        },
        RuleSpec {
            name: "hot".into(),
            latching: false,
            kind: RuleKind::Threshold {
                point: p,
                limits: vec![Limit {
                    level: Level::High,
                    value: 120.0,
                    priority: Priority::High,
                    falling: false,
                }],
                deadband: 0.0,
                delays: Delays::default(),
            },
        },
    ];
    let e = RulesEngine::new(t, &rules, AlarmSettings::default(), at(0)).unwrap();
    (e, p)
}

fn read(e: &mut RulesEngine, p: PointId, s: i64, value: f64) -> (Quality, Vec<AlarmEvent>) {
    let mut out = Output::default();
    let q = e.evaluate(
        &Reading {
            point: p,
            ts: at(s),
            value,
            quality: Quality::Good,
        },
        &mut out,
    );
    (q, out.events)
}

#[test]
fn a_frozen_value_turns_suspect_after_its_window_and_raises_its_alarm_once() {
    let (mut e, p) = engine();
    let mut raised = Vec::new();
    for s in (0..=600).step_by(10) {
        let (q, ev) = read(&mut e, p, s, 60.0);
        assert_eq!(q, if s < 600 { Quality::Good } else { Quality::Suspect }, "at {s} s");
        raised.extend(ev);
    }
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].alarm_id, "TT-101:stuck");
    assert_eq!(raised[0].condition, ConditionKind::Stuck);
    assert_eq!(raised[0].class, crate::model::AlarmClass::Fault);
    assert_eq!(raised[0].priority, Priority::Medium);
    // It moves again: good, and the alarm returns to normal (unacknowledged).
    let (q, ev) = read(&mut e, p, 610, 60.5);
    assert_eq!(q, Quality::Good);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].transition, Transition::Cleared);
}

#[test]
fn a_suspect_value_still_raises_the_process_alarm() {
    let (mut e, p) = engine();
    read(&mut e, p, 0, 60.0);
    // 60 °C to 130 °C in one second: 70 °C/s against a limit of 3 °C/s.
    let (q, ev) = read(&mut e, p, 1, 130.0);
    assert_eq!(q, Quality::Suspect);
    let ids: Vec<&str> = ev.iter().map(|e| e.alarm_id.as_str()).collect();
    assert!(ids.contains(&"TT-101:implausible_jump"), "{ids:?}");
    assert!(ids.contains(&"TT-101:high"), "{ids:?}");
}

#[test]
fn a_jump_alarm_ends_by_time_when_the_point_goes_quiet() {
    let (mut e, p) = engine();
    read(&mut e, p, 0, 60.0);
    read(&mut e, p, 1, 100.0);
    let mut out = Output::default();
    e.tick(at(300), &mut out);
    assert!(out.events.is_empty(), "{:?}", out.events);
    e.tick(at(301), &mut out);
    assert_eq!(out.events.len(), 1, "{:?}", out.events);
    assert_eq!(out.events[0].alarm_id, "TT-101:implausible_jump");
    assert_eq!(out.events[0].state, AlarmState::UnackRtn);
}

#[test]
fn untrusted_readings_pass_through_unchanged() {
    let (mut e, p) = engine();
    let mut out = Output::default();
    let q = e.evaluate(
        &Reading {
            point: p,
            ts: at(0),
            value: f64::NAN,
            quality: Quality::CommFault,
        },
        &mut out,
    );
    assert_eq!(q, Quality::CommFault);
}
