//! The early-warning rule driven through the engine.

use std::time::Duration;

use super::*;
use crate::model::{AlarmState, PointKind, PointMeta, Priority};
use crate::rules::{Delays, RuleKind, RuleSpec};

const MIN: Duration = Duration::from_secs(60);

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
            hazard_source: Some("MHS-001".into()),
            range: Some((0.0, 100.0)),
            description: None,
        })
        .unwrap();
    }
    t
}

fn rules(t: &PointTable) -> Vec<RuleSpec> {
    let point = t.id_of("g1").unwrap();
    let limit = |level, value, priority| Limit {
        level,
        value,
        priority,
        falling: false,
    };
    vec![
        // Listed first: the early warning finds its set-points wherever the threshold is.
        RuleSpec {
            name: "gas-trend".into(),
            latching: false,
            kind: RuleKind::EarlyWarning {
                point,
                horizon: 30 * MIN,
                window: 10 * MIN,
                min_samples: 10,
                priority: None,
                delays: Delays::default(),
            },
        },
        RuleSpec {
            name: "gas".into(),
            latching: false,
            kind: RuleKind::Threshold {
                point,
                limits: vec![
                    limit(Level::High, 25.0, Priority::High),
                    limit(Level::HighHigh, 50.0, Priority::Critical),
                ],
                deadband: 2.0,
                delays: Delays::default(),
            },
        },
    ]
}

fn engine() -> (RulesEngine, PointId) {
    let t = table();
    let e = RulesEngine::new(t.clone(), &rules(&t), AlarmSettings::default(), at(0)).unwrap();
    (e, t.id_of("g1").unwrap())
}

fn read(e: &mut RulesEngine, point: PointId, ms: i64, value: f64, quality: Quality) -> Vec<AlarmEvent> {
    let mut out = Output::default();
    e.evaluate(
        &Reading {
            point,
            ts: at(ms),
            value,
            quality,
        },
        &mut out,
    );
    out.events
}

/// Readings every 10 s of `value(seconds)` from `from` to `to` seconds; the transitions.
fn run(e: &mut RulesEngine, p: PointId, from: i64, to: i64, mut value: impl FnMut(i64) -> f64) -> Vec<AlarmEvent> {
    (from..=to)
        .step_by(10)
        .flat_map(|s| read(e, p, s * 1000, value(s), Quality::Good))
        .collect()
}

#[test]
fn a_ramp_warns_with_its_predicted_crossing_before_the_threshold_alarm() {
    let (mut e, p) = engine();
    // 1 %LEL a minute... 0.01 %LEL/s from 5 %LEL: 25 %LEL at 2000 s.
    let events = run(&mut e, p, 0, 2000, |s| 5.0 + s as f64 / 100.0);
    let ids: Vec<(&str, Transition, Timestamp)> = events
        .iter()
        .map(|e| (e.alarm_id.as_str(), e.transition, e.ts))
        .collect();
    assert_eq!(
        ids,
        [
            // The first trend: 16 interval means spanning 300 s, closed by the reading at 320 s.
            ("g1:early_warning:high", Transition::Raised, at(320_000)),
            ("g1:high", Transition::Raised, at(2_000_000)),
            ("g1:early_warning:high", Transition::Cleared, at(2_000_000)),
        ]
    );
    let raised = &events[0];
    assert_eq!(raised.condition, ConditionKind::EarlyWarning);
    assert_eq!(raised.class, crate::model::AlarmClass::Process);
    assert_eq!(raised.priority, Priority::Medium, "one step below the high limit's");
    assert_eq!(raised.limit, Some(25.0));
    assert_eq!(raised.value, 8.2);
    assert_eq!(raised.predicted_at, Some(at(2_000_000)));
    assert_eq!(raised.rule, "gas-trend");
    assert_eq!(events[2].predicted_at, None, "a cleared warning predicts nothing");
}

#[test]
fn the_warning_clears_when_the_ramp_turns() {
    let (mut e, p) = engine();
    // Rising to 15 %LEL at 1000 s, then falling back at the same rate.
    let events = run(&mut e, p, 0, 2600, |s| {
        let s = s as f64;
        if s <= 1000.0 {
            5.0 + s / 100.0
        } else {
            15.0 - (s - 1000.0) / 100.0
        }
    });
    let warn: Vec<_> = events
        .iter()
        .filter(|e| e.condition == ConditionKind::EarlyWarning)
        .collect();
    assert_eq!(warn.len(), 2, "{warn:#?}");
    assert_eq!((warn[0].transition, warn[0].ts), (Transition::Raised, at(320_000)));
    assert_eq!(warn[1].transition, Transition::Cleared);
    // The falling half of the window outweighs the rising half within the window's length.
    assert!(
        warn[1].ts > at(1_000_000) && warn[1].ts <= at(1_600_000),
        "{:?}",
        warn[1].ts
    );
    assert!(events.iter().all(|e| e.condition == ConditionKind::EarlyWarning));
}

/// A deterministic noise source (splitmix64), so the test is the same on every run.
fn noise(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

#[test]
fn a_day_of_noise_near_the_limit_raises_nothing() {
    let (mut e, p) = engine();
    let mut seed = 22;
    // ±3 %LEL around 18 %LEL, 7 below the high limit, with a spike to 40 every hour.
    let events = run(&mut e, p, 0, 86_400, |s| {
        let v = 18.0 + 6.0 * noise(&mut seed);
        if s % 3600 == 0 { 40.0 } else { v }
    });
    let warnings = events
        .iter()
        .filter(|e| e.condition == ConditionKind::EarlyWarning)
        .count();
    assert_eq!(warnings, 0);
}

#[test]
fn untrusted_readings_restart_the_trend() {
    let (mut e, p) = engine();
    let ramp = |s: i64| 5.0 + s as f64 / 100.0;
    assert!(run(&mut e, p, 0, 300, ramp).is_empty());
    assert!(read(&mut e, p, 310_000, 99.0, Quality::OutOfRange).is_empty());
    // Without the restart the reading at 320 s would have warned; now the trend needs a new
    // half window: 16 means from 325 s spanning 300 s, closed by the reading at 640 s.
    let events = run(&mut e, p, 320, 640, ramp);
    let ids: Vec<_> = events
        .iter()
        .map(|e| (e.alarm_id.as_str(), e.transition, e.ts))
        .collect();
    assert_eq!(ids, [("g1:early_warning:high", Transition::Raised, at(640_000))]);
}

#[test]
fn a_restored_warning_keeps_its_predicted_crossing() {
    let (mut e, p) = engine();
    let events = run(&mut e, p, 0, 400, |s| 5.0 + s as f64 / 100.0);
    let raised = events.last().unwrap().clone();
    let (mut fresh, _) = engine();
    assert!(fresh.restore(&raised));
    fresh.finish_restore();
    let visible = fresh.visible(at(400_000));
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].state, AlarmState::UnackActive);
    assert_eq!(visible[0].predicted_at, Some(at(2_000_000)));
}

#[test]
fn an_early_warning_needs_a_set_point() {
    let t = table();
    let g2 = t.id_of("g2").unwrap();
    let mut r = rules(&t);
    if let RuleKind::EarlyWarning { point, .. } = &mut r[0].kind {
        *point = g2;
    }
    let err = RulesEngine::new(t, &r, AlarmSettings::default(), at(0)).unwrap_err();
    assert_eq!(
        err,
        BuildError::NoSetPoint {
            rule: "gas-trend".into(),
            point: "g2".into()
        }
    );
}

/// A batch cycle peaking 1.6 %LEL under the high set-point (25): 21 ± 2.4 over two hours.
fn cycle(s: i64) -> f64 {
    21.0 + 2.4 * (s as f64 * std::f64::consts::TAU / 7200.0).sin()
}

#[test]
fn a_cycle_learned_from_history_does_not_warn_but_a_rise_that_leaves_it_does() {
    let (mut e, p) = engine();
    // Without its cycle the straight trend warns on a normal rise.
    let plain = run(&mut e, p, 0, 7200, cycle);
    assert!(
        plain.iter().any(|ev| ev.condition == ConditionKind::EarlyWarning),
        "{plain:#?}"
    );

    // A day of minute means from history, as `seed_cycles` gives at start: then the cycle
    // alone warns of nothing over three more cycles.
    let (mut e, p) = engine();
    let day0 = 86_400;
    let minutes: Vec<(i64, f64)> = (0..1440).map(|m| (m, cycle(m * 60 + 30))).collect();
    e.seed_cycles(p, &minutes);
    let quiet = run(&mut e, p, day0, day0 + 3 * 7200, cycle);
    assert!(
        quiet.iter().all(|ev| ev.condition != ConditionKind::EarlyWarning),
        "{quiet:#?}"
    );

    // A rise of 0.2 %LEL a minute on top of the cycle from the next trough: warned well before
    // the crossing.
    let from = day0 + 3 * 7200 + 5400;
    let with_rise = |s: i64| cycle(s) + (s - from).max(0) as f64 * 0.2 / 60.0;
    let events = run(&mut e, p, day0 + 3 * 7200 + 10, from + 3600, with_rise);
    let warned = events
        .iter()
        .find(|ev| ev.condition == ConditionKind::EarlyWarning && ev.transition == Transition::Raised)
        .unwrap_or_else(|| panic!("no early warning: {events:#?}"));
    let crossed = events
        .iter()
        .find(|ev| ev.alarm_id == "g1:high" && ev.transition == Transition::Raised)
        .unwrap_or_else(|| panic!("no crossing: {events:#?}"));
    assert!(warned.ts >= at(from * 1000), "warned before the rise: {warned:#?}");
    assert!(
        crossed.ts.since(warned.ts) >= 10 * MIN,
        "ten minutes' notice at least: warned {:?}, crossed {:?}",
        warned.ts,
        crossed.ts
    );
}
