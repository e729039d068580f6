use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::model::{AlarmState, ConditionKind, PointKind, PointMeta, Priority};
use crate::rules::{Delays, RuleKind, RuleSpec, VoteMember};

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn table() -> PointTable {
    let mut t = PointTable::default();
    let mut add = |name: &str, device: &str, kind, unit: &str, range| {
        t.insert(PointMeta {
            name: name.into(),
            unit: unit.into(),
            kind,
            device: device.into(),
            hazard_source: Some("MHS-001".into()),
            range: Some(range),
            description: None,
        })
        .unwrap()
    };
    add("g1", "gas", PointKind::Gas, "%LEL", (0.0, 100.0));
    add("g2", "gas", PointKind::Gas, "%LEL", (0.0, 100.0));
    add("g3", "gas", PointKind::Gas, "%LEL", (0.0, 100.0));
    add("lvl_a", "tank", PointKind::Level, "m", (0.0, 20.0));
    add("lvl_b", "tank2", PointKind::Level, "m", (0.0, 20.0));
    t
}

fn pid(t: &PointTable, name: &str) -> PointId {
    t.id_of(name).unwrap()
}

fn gas_threshold(point: PointId, delays: Delays) -> RuleSpec {
    RuleSpec {
        name: "gas".into(),
        latching: false,
        kind: RuleKind::Threshold {
            point,
            limits: vec![
                Limit {
                    level: Level::High,
                    value: 25.0,
                    priority: Priority::High,
                    falling: false,
                },
                Limit {
                    level: Level::HighHigh,
                    value: 50.0,
                    priority: Priority::Critical,
                    falling: false,
                },
            ],
            deadband: 2.0,
            delays,
        },
    }
}

fn engine(rules: Vec<RuleSpec>) -> (RulesEngine, PointTable) {
    let t = table();
    let e = RulesEngine::new(t.clone(), &rules, AlarmSettings::default(), at(0)).unwrap();
    (e, t)
}

fn read(e: &mut RulesEngine, p: PointId, ms: i64, value: f64, quality: Quality) -> Vec<AlarmEvent> {
    let mut out = Output::default();
    e.evaluate(
        &Reading {
            point: p,
            ts: at(ms),
            value,
            quality,
        },
        &mut out,
    );
    out.events
}

fn good(e: &mut RulesEngine, p: PointId, ms: i64, value: f64) -> Vec<AlarmEvent> {
    read(e, p, ms, value, Quality::Good)
}

fn summary(events: &[AlarmEvent]) -> Vec<(String, Transition, AlarmState)> {
    events
        .iter()
        .map(|e| (e.alarm_id.clone(), e.transition, e.state))
        .collect()
}

#[test]
fn value_exactly_at_the_set_point_raises_and_the_deadband_edge_holds() {
    let t = table();
    let (mut e, _) = engine(vec![gas_threshold(pid(&t, "g1"), Delays::default())]);
    let g1 = pid(&t, "g1");
    assert!(good(&mut e, g1, 0, 24.99).is_empty());
    let ev = good(&mut e, g1, 1, 25.0);
    assert_eq!(
        summary(&ev),
        vec![("g1:high".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    assert_eq!(ev[0].condition, ConditionKind::Threshold);
    assert_eq!(ev[0].limit, Some(25.0));
    assert!(
        good(&mut e, g1, 2, 23.0).is_empty(),
        "23.0 is exactly at the deadband edge"
    );
    let ev = good(&mut e, g1, 3, 22.99);
    assert_eq!(
        summary(&ev),
        vec![("g1:high".into(), Transition::Cleared, AlarmState::UnackRtn)]
    );
}

#[test]
fn on_delay_expires_on_the_clock_without_a_new_reading() {
    let t = table();
    let g1 = pid(&t, "g1");
    let (mut e, _) = engine(vec![gas_threshold(
        g1,
        Delays {
            on: Duration::from_secs(2),
            off: Duration::ZERO,
        },
    )]);
    let mut out = Output::default();
    e.evaluate(
        &Reading {
            point: g1,
            ts: at(0),
            value: 30.0,
            quality: Quality::Good,
        },
        &mut out,
    );
    assert!(out.events.is_empty());
    assert_eq!(out.timers, vec![("g1:high".to_string(), Some(at(0)))]);
    out.clear();
    e.tick(at(1999), &mut out);
    assert!(out.events.is_empty());
    e.tick(at(2000), &mut out);
    assert_eq!(
        summary(&out.events),
        vec![("g1:high".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    assert_eq!(out.timers, vec![("g1:high".to_string(), None)]);
}

/// The sensor-fault alarm of `point`, high priority, no delays.
fn sensor_fault(point: PointId) -> RuleSpec {
    RuleSpec {
        name: "sensor_fault".into(),
        latching: false,
        kind: RuleKind::SensorFault {
            point,
            priority: Priority::High,
            delays: Delays::default(),
        },
    }
}

/// A stale rule: 5 s of silence on `point`.
fn silence(point: PointId) -> RuleSpec {
    RuleSpec {
        name: "silence".into(),
        latching: false,
        kind: RuleKind::Stale {
            point,
            after: Duration::from_secs(5),
            priority: Priority::Medium,
        },
    }
}

#[test]
fn stale_fires_one_tick_after_the_limit_and_clears_with_data() {
    let t = table();
    let g2 = pid(&t, "g2");
    let (mut e, _) = engine(vec![silence(g2)]);
    good(&mut e, g2, 1000, 1.0);
    let mut out = Output::default();
    e.tick(at(5999), &mut out);
    assert!(out.events.is_empty());
    e.tick(at(6000), &mut out);
    assert_eq!(
        summary(&out.events),
        vec![("g2:stale".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    assert_eq!(out.events[0].class, crate::model::AlarmClass::Fault);
    let ev = good(&mut e, g2, 6500, 1.0);
    assert_eq!(ev[0].transition, Transition::Cleared);
}

#[test]
fn a_lost_link_holds_a_stale_alarm_until_the_sensor_is_heard_again() {
    let t = table();
    let g2 = pid(&t, "g2");
    let (mut e, _) = engine(vec![silence(g2)]);
    good(&mut e, g2, 1000, 1.0);
    let mut out = Output::default();
    e.tick(at(6000), &mut out);
    assert_eq!(summary(&out.events)[0].1, Transition::Raised);
    // The link goes: neither the comm_fault reading nor time clears or re-raises it.
    let ev = read(&mut e, g2, 7000, f64::NAN, Quality::CommFault);
    assert!(ev.iter().all(|e| e.alarm_id != "g2:stale"), "{ev:?}");
    let mut out = Output::default();
    e.tick(at(60_000), &mut out);
    assert!(out.events.iter().all(|e| e.alarm_id != "g2:stale"), "{:?}", out.events);
    // The sensor speaks again: cleared.
    let ev = good(&mut e, g2, 61_000, 1.0);
    assert!(
        ev.iter()
            .any(|e| e.alarm_id == "g2:stale" && e.transition == Transition::Cleared),
        "{ev:?}"
    );
}

#[test]
fn a_silent_device_raises_one_communication_alarm_and_suppresses_its_point_alarms() {
    let t = table();
    let (g1, g2, g3) = (pid(&t, "g1"), pid(&t, "g2"), pid(&t, "g3"));
    let (mut e, _) = engine(vec![
        gas_threshold(g1, Delays::default()),
        gas_threshold(g2, Delays::default()),
    ]);
    assert_eq!(good(&mut e, g1, 0, 30.0).len(), 1);
    assert!(read(&mut e, g1, 1, f64::NAN, Quality::CommFault).is_empty());
    assert!(read(&mut e, g2, 1, f64::NAN, Quality::CommFault).is_empty());
    let ev = read(&mut e, g3, 1, f64::NAN, Quality::CommFault);
    assert_eq!(
        summary(&ev),
        vec![
            ("gas:communication".into(), Transition::Raised, AlarmState::UnackActive),
            ("g1:high".into(), Transition::Suppressed, AlarmState::UnackActive),
        ],
        "the active gas alarm is suppressed; normal ones change silently"
    );
    assert!(!ev[1].annunciated());
    let ev = good(&mut e, g1, 2, 31.0);
    assert_eq!(ev[0].alarm_id, "gas:communication");
    assert_eq!(ev[0].transition, Transition::Cleared);
    assert_eq!(ev[1].transition, Transition::Unsuppressed);
}

/// `tank` and `tank2` behind dialled-in station `dam`, with a one-second grace.
fn station_engine() -> (RulesEngine, PointId, PointId) {
    let t = table();
    let settings = AlarmSettings {
        stations: vec![crate::rules::StationGroup {
            station: "dam".into(),
            devices: vec!["tank".into(), "tank2".into()],
            grace: Duration::from_secs(1),
        }],
        ..AlarmSettings::default()
    };
    let e = RulesEngine::new(t.clone(), &[], settings, at(0)).unwrap();
    (e, pid(&t, "lvl_a"), pid(&t, "lvl_b"))
}

fn tick(e: &mut RulesEngine, ms: i64) -> Vec<AlarmEvent> {
    let mut out = Output::default();
    e.tick(at(ms), &mut out);
    out.events
}

#[test]
fn a_lost_station_raises_its_own_alarm_and_none_per_device() {
    let (mut e, a, b) = station_engine();
    // The link goes: one device falls silent, then the other within the grace.
    assert!(read(&mut e, a, 100, f64::NAN, Quality::CommFault).is_empty());
    let ev = read(&mut e, b, 600, f64::NAN, Quality::CommFault);
    assert_eq!(
        summary(&ev),
        vec![("dam:communication".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    // Long after the grace, still silent: no device alarm.
    assert!(read(&mut e, a, 5_000, f64::NAN, Quality::CommFault).is_empty());
    assert!(tick(&mut e, 6_000).is_empty());
    let visible: Vec<(String, AlarmState)> = e
        .visible(at(6_000))
        .into_iter()
        .map(|a| (a.alarm_id, a.state))
        .collect();
    assert_eq!(visible, [("dam:communication".to_string(), AlarmState::UnackActive)]);
}

#[test]
fn a_device_silent_inside_a_live_station_raises_its_own_alarm_after_the_grace() {
    let (mut e, a, b) = station_engine();
    assert!(good(&mut e, b, 0, 1.0).is_empty());
    assert!(read(&mut e, a, 100, f64::NAN, Quality::CommFault).is_empty());
    assert!(good(&mut e, b, 600, 1.0).is_empty());
    let ev = tick(&mut e, 1_200);
    assert_eq!(
        summary(&ev),
        vec![("tank:communication".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    // Then the whole link goes: the station's alarm raises and takes the device's under it.
    let ev = read(&mut e, b, 2_000, f64::NAN, Quality::CommFault);
    assert_eq!(
        summary(&ev),
        vec![
            ("dam:communication".into(), Transition::Raised, AlarmState::UnackActive),
            (
                "tank:communication".into(),
                Transition::Suppressed,
                AlarmState::UnackActive
            ),
        ]
    );
    // The link returns with the device still dead: station clears, the device's alarm shows.
    let ev = good(&mut e, b, 3_000, 1.0);
    assert_eq!(
        summary(&ev),
        vec![
            ("dam:communication".into(), Transition::Cleared, AlarmState::UnackRtn),
            (
                "tank:communication".into(),
                Transition::Unsuppressed,
                AlarmState::UnackActive
            ),
        ]
    );
}

#[test]
fn sensor_faults_are_fault_alarms_apart_from_process_alarms() {
    let t = table();
    let g1 = pid(&t, "g1");
    let (mut e, _) = engine(vec![gas_threshold(g1, Delays::default()), sensor_fault(g1)]);
    let ev = read(&mut e, g1, 0, -6.25, Quality::OutOfRange);
    assert_eq!(
        summary(&ev),
        vec![("g1:sensor_fault".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    assert_eq!(ev[0].class, crate::model::AlarmClass::Fault);
    let ev = good(&mut e, g1, 1, 2.0);
    assert_eq!(
        summary(&ev),
        vec![("g1:sensor_fault".into(), Transition::Cleared, AlarmState::UnackRtn)]
    );
}

#[test]
fn a_sensor_fault_alarm_takes_a_full_slot_only_once_it_changes() {
    let t = table();
    let (g1, g2) = (pid(&t, "g1"), pid(&t, "g2"));
    let (mut e, _) = engine(vec![sensor_fault(g1), sensor_fault(g2)]);
    let (s1, s2) = (e.faults[g1.index()][0] as usize, e.faults[g2.index()][0] as usize);
    good(&mut e, g1, 1_000, 5.0);
    good(&mut e, g2, 1_000, 7.0);
    read(&mut e, g2, 1_500, f64::NAN, Quality::CommFault);
    assert!(
        e.slots.is_lazy(s1) && e.slots.is_lazy(s2),
        "good readings change nothing but the value"
    );
    let raised = read(&mut e, g1, 2_000, 120.0, Quality::OutOfRange);
    assert_eq!(
        summary(&raised),
        [("g1:sensor_fault".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    assert_eq!((raised[0].value, raised[0].unit.as_str()), (120.0, "%LEL"));
    assert!(!e.slots.is_lazy(s1) && e.slots.is_lazy(s2));
    // A command on a lazy alarm records the value it last saw, as a full slot would.
    let mut out = Output::default();
    let ev = e
        .command(
            "g2:sensor_fault",
            Command::RemoveFromService,
            "op",
            "calibration",
            at(3_000),
            &mut out,
        )
        .unwrap();
    assert_eq!(
        (ev.value, ev.out_of_service, ev.hazard_source.as_deref()),
        (7.0, true, Some("MHS-001"))
    );
    assert_eq!(
        e.alarm_count(),
        2 + e.devices.len() + ConditionKind::SELF_DIAGNOSTIC.len()
    );
    let ids: Vec<String> = e.visible(at(4_000)).into_iter().map(|a| a.alarm_id).collect();
    assert_eq!(ids, ["g1:sensor_fault", "g2:sensor_fault"]);
}

#[test]
fn silence_raises_a_sensor_fault_and_never_clears_an_open_alarm() {
    let t = table();
    let g1 = pid(&t, "g1");
    let (mut e, _) = engine(vec![gas_threshold(g1, Delays::default()), sensor_fault(g1)]);
    let ev = good(&mut e, g1, 0, 30.0);
    assert_eq!(
        summary(&ev),
        vec![("g1:high".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    // Stale: the high alarm holds (no value says the gas is gone), the silence is a fault.
    let ev = read(&mut e, g1, 1, f64::NAN, Quality::Stale);
    assert_eq!(
        summary(&ev),
        vec![("g1:sensor_fault".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    // A lost link changes neither.
    assert!(read(&mut e, g1, 2, f64::NAN, Quality::CommFault).is_empty());
    assert!(read(&mut e, g1, 3, f64::NAN, Quality::Stale).is_empty());
    // Only a trusted value clears the fault, and the high alarm with it only when it is low.
    let ev = good(&mut e, g1, 4, 30.0);
    assert_eq!(
        summary(&ev),
        vec![("g1:sensor_fault".into(), Transition::Cleared, AlarmState::UnackRtn)]
    );
}

#[test]
fn a_steady_rise_trips_the_rate_of_change_rule() {
    let t = table();
    let lvl = pid(&t, "lvl_a");
    let rule = RuleSpec {
        name: "rise".into(),
        latching: false,
        kind: RuleKind::RateOfChange {
            point: lvl,
            rise: Some(0.5),
            fall: None,
            per: Duration::from_secs(3600),
            window: Duration::from_secs(600),
            priority: Priority::High,
            delays: Delays::default(),
        },
    };
    let (mut e, _) = engine(vec![rule]);
    let mut raised = None;
    for i in 0..=600 {
        // 1 m/h = 1/3600 m per second.
        let ev = good(&mut e, lvl, i * 1000, 5.0 + i as f64 / 3600.0);
        if let Some(ev) = ev.first() {
            raised = Some((i, ev.value));
        }
    }
    let (when, rate) = raised.expect("rate alarm");
    assert_eq!(when, 300, "judged once half the window is covered");
    assert!((rate - 1.0).abs() < 1e-6, "{rate}");
}

#[test]
fn redundant_levels_that_disagree_raise_a_deviation_alarm() {
    let t = table();
    let (a, b) = (pid(&t, "lvl_a"), pid(&t, "lvl_b"));
    let rule = RuleSpec {
        name: "T101-level-pair".into(),
        latching: false,
        kind: RuleKind::Deviation {
            points: vec![a, b],
            max: 0.2,
            deadband: 0.05,
            priority: Priority::Medium,
            delays: Delays::default(),
        },
    };
    let (mut e, _) = engine(vec![rule]);
    good(&mut e, a, 0, 10.0);
    assert!(good(&mut e, b, 0, 10.2).is_empty(), "exactly max is tolerated");
    let ev = good(&mut e, b, 1, 10.3);
    assert_eq!(ev[0].alarm_id, "T101-level-pair:deviation");
    assert!(good(&mut e, b, 2, 10.16).is_empty(), "inside the deadband");
    assert_eq!(good(&mut e, b, 3, 10.1)[0].transition, Transition::Cleared);
}

#[test]
fn two_of_three_detectors_confirm_a_leak() {
    let t = table();
    let (g1, g2, g3) = (pid(&t, "g1"), pid(&t, "g2"), pid(&t, "g3"));
    let vote = RuleSpec {
        name: "zone-a-leak".into(),
        latching: false,
        kind: RuleKind::Vote {
            members: vec![VoteMember::Point(g1), VoteMember::Point(g2), VoteMember::Point(g3)],
            mode: VoteMode::Confirm {
                level: Level::High,
                k: 2,
            },
            priorities: vec![(Level::High, Priority::Critical)],
            hazard_source: Some("MHS-001".into()),
        },
    };
    let d = Delays::default();
    let (mut e, _) = engine(vec![
        gas_threshold(g1, d),
        gas_threshold(g2, d),
        gas_threshold(g3, d),
        vote,
    ]);
    assert_eq!(good(&mut e, g1, 0, 30.0).len(), 1);
    let ev = good(&mut e, g3, 1, 55.0);
    let ids: Vec<_> = ev.iter().map(|e| e.alarm_id.as_str()).collect();
    assert_eq!(ids, vec!["g3:high", "zone-a-leak:vote:high", "g3:high_high"]);
    assert_eq!(ev[1].priority, Priority::Critical);
    let ev = good(&mut e, g1, 2, 1.0);
    assert_eq!(
        ev.iter().map(|e| e.alarm_id.as_str()).collect::<Vec<_>>(),
        vec!["g1:high", "zone-a-leak:vote:high"]
    );
    assert_eq!(ev[1].transition, Transition::Cleared);
}

#[test]
fn operator_commands_follow_isa_18_2_and_record_who_and_why() {
    let t = table();
    let g1 = pid(&t, "g1");
    let mut rule = gas_threshold(g1, Delays::default());
    rule.latching = true;
    let (mut e, _) = engine(vec![rule]);
    good(&mut e, g1, 0, 30.0);
    let mut out = Output::default();
    let ev = e
        .command("g1:high", Command::Acknowledge, "张三", "on my way", at(1), &mut out)
        .unwrap();
    assert_eq!(
        (ev.state, ev.user.as_deref(), ev.comment.as_deref()),
        (AlarmState::AckActive, Some("张三"), Some("on my way"))
    );
    assert_eq!(
        e.command("g1:high", Command::Reset, "张三", "x", at(2), &mut out),
        Err(CommandError::Refused(LifecycleError::NotLatched))
    );
    assert_eq!(good(&mut e, g1, 3, 1.0)[0].state, AlarmState::Latched);
    let ev = e
        .command("g1:high", Command::Reset, "李四", "area checked", at(4), &mut out)
        .unwrap();
    assert_eq!(ev.state, AlarmState::Normal);
    assert_eq!(
        e.command("nope", Command::Acknowledge, "a", "", at(5), &mut out),
        Err(CommandError::UnknownAlarm("nope".into()))
    );
    assert!(matches!(
        e.command(
            "g1:high",
            Command::Shelve(Duration::from_secs(9 * 3600)),
            "a",
            "b",
            at(5),
            &mut out
        ),
        Err(CommandError::ShelveTooLong { .. })
    ));
}

#[test]
fn an_alarm_is_found_by_its_id_when_names_contain_colons_and_subjects_share_a_name() {
    // A point named like another's alarm, and a device with a point's name: each id still
    // names exactly one alarm.
    let mut t = PointTable::default();
    for (name, device) in [("tank", "tank"), ("tank:high", "d2")] {
        t.insert(PointMeta {
            name: name.into(),
            unit: "m".into(),
            kind: PointKind::Level,
            device: device.into(),
            hazard_source: None,
            range: Some((0.0, 100.0)),
            description: None,
        })
        .unwrap();
    }
    let (tank, tank_high) = (pid(&t, "tank"), pid(&t, "tank:high"));
    let rules = vec![
        gas_threshold(tank, Delays::default()),
        RuleSpec {
            name: "second".into(),
            ..gas_threshold(tank_high, Delays::default())
        },
    ];
    let mut e = RulesEngine::new(t, &rules, AlarmSettings::default(), at(0)).unwrap();
    good(&mut e, tank, 0, 60.0);
    good(&mut e, tank_high, 0, 60.0);
    let mut out = Output::default();
    for id in ["tank:high", "tank:high_high", "tank:high:high", "tank:high:high_high"] {
        let ev = e.command(id, Command::Acknowledge, "op", "", at(1), &mut out).unwrap();
        assert_eq!((ev.alarm_id.as_str(), ev.state), (id, AlarmState::AckActive));
    }
    let ev = e
        .command(
            "tank:communication",
            Command::RemoveFromService,
            "op",
            "",
            at(2),
            &mut out,
        )
        .unwrap();
    assert_eq!(
        (ev.alarm_id.as_str(), ev.subject_kind),
        ("tank:communication", crate::model::SubjectKind::Device)
    );
    for unknown in ["tank", "tank:", "tank:high:low", "d2:high", ":high"] {
        assert_eq!(
            e.command(unknown, Command::Acknowledge, "op", "", at(3), &mut out),
            Err(CommandError::UnknownAlarm(unknown.into()))
        );
    }
}

#[test]
fn shelving_expires_on_the_clock() {
    let t = table();
    let g1 = pid(&t, "g1");
    let (mut e, _) = engine(vec![gas_threshold(g1, Delays::default())]);
    good(&mut e, g1, 0, 30.0);
    let mut out = Output::default();
    let ev = e
        .command(
            "g1:high",
            Command::Shelve(Duration::from_secs(60)),
            "a",
            "sensor being calibrated",
            at(0),
            &mut out,
        )
        .unwrap();
    assert!(!ev.annunciated());
    out.clear();
    e.tick(at(59_999), &mut out);
    assert!(out.events.is_empty());
    e.tick(at(60_000), &mut out);
    assert_eq!(out.events[0].transition, Transition::Unshelved);
    assert_eq!(out.events[0].comment.as_deref(), Some("shelving expired"));
    assert!(out.events[0].annunciated());
}

#[test]
fn eleven_raises_in_ten_minutes_start_a_flood_and_repeats_count_as_chattering() {
    let t = table();
    let g1 = pid(&t, "g1");
    let (mut e, _) = engine(vec![gas_threshold(g1, Delays::default())]);
    let mut flood = None;
    for i in 0..11 {
        let mut out = Output::default();
        e.evaluate(
            &Reading {
                point: g1,
                ts: at(i * 10_000),
                value: 30.0,
                quality: Quality::Good,
            },
            &mut out,
        );
        e.evaluate(
            &Reading {
                point: g1,
                ts: at(i * 10_000 + 1),
                value: 1.0,
                quality: Quality::Good,
            },
            &mut out,
        );
        flood = flood.or(out.flood);
    }
    assert_eq!(flood, Some(true));
    let stats = e.stats();
    assert!(stats.flood && stats.rate_10min == 11);
    assert_eq!(stats.chattering, vec!["g1:high".to_string()]);
    assert_eq!(stats.chattering_total, 1);
}

#[test]
fn restored_alarms_and_timers_resume_exactly() {
    let t = table();
    let (g1, g2) = (pid(&t, "g1"), pid(&t, "g2"));
    let on = Delays {
        on: Duration::from_secs(10),
        off: Duration::ZERO,
    };
    let (mut e, _) = engine(vec![gas_threshold(g1, Delays::default()), gas_threshold(g2, on)]);
    let raised = good(&mut e, g1, 0, 30.0);
    good(&mut e, g2, 0, 30.0); // on-delay running since t=0
    let (mut e2, _) = engine(vec![gas_threshold(g1, Delays::default()), gas_threshold(g2, on)]);
    assert!(e2.restore(&raised[0]));
    assert!(e2.restore_timer("g2:high", at(0)));
    e2.finish_restore();
    assert!(good(&mut e2, g1, 5_000, 31.0).is_empty(), "no second raise");
    let ev = good(&mut e2, g2, 10_000, 30.0);
    assert_eq!(
        ev[0].alarm_id, "g2:high",
        "the on-delay resumed from t=0, not from the restart"
    );
    assert_eq!(good(&mut e2, g1, 11_000, 1.0)[0].transition, Transition::Cleared);
}

/// A device still dead after a restart: its restored, acknowledged communication alarm
/// stays exactly as it was while the first poll reports its points one by one, and clears
/// only when the device answers again.
#[test]
fn a_restored_communication_alarm_is_not_cleared_and_raised_again_by_the_first_poll() {
    let t = table();
    let (g1, g2, g3) = (pid(&t, "g1"), pid(&t, "g2"), pid(&t, "g3"));
    let (mut e, _) = engine(vec![gas_threshold(g1, Delays::default())]);
    for p in [g1, g2] {
        assert!(read(&mut e, p, 1, f64::NAN, Quality::CommFault).is_empty());
    }
    let raised = read(&mut e, g3, 1, f64::NAN, Quality::CommFault);
    assert_eq!(raised[0].alarm_id, "gas:communication");
    let mut out = Output::default();
    e.command(
        "gas:communication",
        Command::Acknowledge,
        "张三",
        "line cut",
        at(2),
        &mut out,
    )
    .unwrap();
    let acked = out.events.pop().unwrap();
    assert_eq!(acked.state, AlarmState::AckActive);

    let (mut e2, _) = engine(vec![gas_threshold(g1, Delays::default())]);
    assert!(e2.restore(&acked));
    e2.finish_restore();
    for (i, p) in [g1, g2, g3].into_iter().enumerate() {
        let ev = read(&mut e2, p, 10_000 + i as i64, f64::NAN, Quality::CommFault);
        assert!(ev.is_empty(), "first poll after the restart changed the alarm: {ev:?}");
    }
    let ev = good(&mut e2, g2, 20_000, 1.0);
    assert_eq!(
        summary(&ev),
        vec![("gas:communication".into(), Transition::Cleared, AlarmState::Normal)],
        "acknowledged before, so it returns to normal when the device answers"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Per alarm, transitions alternate raise/clear; a raised alarm is visible until cleared
    /// and acknowledged; bad quality never moves a process alarm.
    #[test]
    fn random_readings_give_a_consistent_alarm_history(
        steps in proptest::collection::vec((0.0f64..70.0, 0u8..10, any::<bool>()), 1..200),
    ) {
        let t = table();
        let g1 = pid(&t, "g1");
        let (mut e, _) = engine(vec![gas_threshold(g1, Delays { on: Duration::from_millis(1500), off: Duration::from_millis(500) })]);
        let mut active: std::collections::HashMap<String, bool> = Default::default();
        for (i, (value, q, ack)) in steps.into_iter().enumerate() {
            let quality = match q { 0 => Quality::CommFault, 1 => Quality::OutOfRange, _ => Quality::Good };
            let ts = i as i64 * 1000;
            let mut out = Output::default();
            e.evaluate(&Reading { point: g1, ts: at(ts), value, quality }, &mut out);
            e.tick(at(ts + 999), &mut out);
            for ev in &out.events {
                let was = active.get(&ev.alarm_id).copied().unwrap_or(false);
                match ev.transition {
                    Transition::Raised => prop_assert!(!was, "double raise {ev:?}"),
                    Transition::Cleared => prop_assert!(was, "clear without raise {ev:?}"),
                    _ => {}
                }
                if ev.condition == ConditionKind::Threshold && matches!(ev.transition, Transition::Raised | Transition::Cleared) {
                    prop_assert_eq!(quality, Quality::Good);
                }
                if matches!(ev.transition, Transition::Raised | Transition::Cleared) {
                    active.insert(ev.alarm_id.clone(), ev.transition == Transition::Raised);
                }
            }
            if ack {
                let mut out = Output::default();
                let _ = e.command("g1:high", Command::Acknowledge, "op", "", at(ts + 999), &mut out);
            }
            let visible: std::collections::HashSet<_> = e.visible(at(ts)).into_iter().map(|v| v.alarm_id).collect();
            for (id, is_active) in &active {
                if *is_active {
                    prop_assert!(visible.contains(id), "{id} active but not visible");
                }
            }
        }
    }
}

#[test]
fn gb_51108_escalation_lifts_items_and_the_pond() {
    // Two monitoring items of a tailings dam, four displacement points each (mm, warning
    // colours rising), and the pond over both items.
    let mut t = PointTable::default();
    for item in ["disp", "seep"] {
        for i in 0..4 {
            t.insert(PointMeta {
                name: format!("{item}{i}").into(),
                unit: "mm".into(),
                kind: PointKind::Displacement,
                device: format!("station-{item}").into(),
                hazard_source: Some("TP-01".into()),
                range: Some((0.0, 500.0)),
                description: None,
            })
            .unwrap();
        }
    }
    let colours = |point| RuleSpec {
        name: "warning".into(),
        latching: false,
        kind: RuleKind::Threshold {
            point,
            limits: [
                (Level::Blue, 10.0),
                (Level::Yellow, 20.0),
                (Level::Orange, 30.0),
                (Level::Red, 40.0),
            ]
            .into_iter()
            .map(|(level, value)| Limit {
                level,
                value,
                priority: level.default_priority(),
                falling: false,
            })
            .collect(),
            deadband: 0.0,
            delays: Delays::default(),
        },
    };
    let counts = vec![(Level::Blue, 4), (Level::Yellow, 3), (Level::Orange, 2)];
    let item = |name: &str, prefix: &str| RuleSpec {
        name: name.into(),
        latching: false,
        kind: RuleKind::Vote {
            members: t
                .iter()
                .filter(|(_, m)| m.name().starts_with(prefix))
                .map(|(id, _)| VoteMember::Point(id))
                .collect(),
            mode: VoteMode::Escalate { counts: counts.clone() },
            priorities: Vec::new(),
            hazard_source: Some("TP-01".into()),
        },
    };
    let pond = RuleSpec {
        name: "pond".into(),
        latching: false,
        kind: RuleKind::Vote {
            members: vec![
                VoteMember::Group("item-disp".into()),
                VoteMember::Group("item-seep".into()),
            ],
            mode: VoteMode::Escalate { counts: counts.clone() },
            priorities: Vec::new(),
            hazard_source: Some("TP-01".into()),
        },
    };
    let mut rules: Vec<RuleSpec> = t.iter().map(|(id, _)| colours(id)).collect();
    rules.extend([item("item-disp", "disp"), item("item-seep", "seep"), pond]);
    let mut e = RulesEngine::new(t.clone(), &rules, AlarmSettings::default(), at(0)).unwrap();
    let raised_now = |events: &[AlarmEvent]| {
        events
            .iter()
            .filter(|e| e.transition == Transition::Raised && e.condition == ConditionKind::Vote)
            .map(|e| e.alarm_id.clone())
            .collect::<Vec<_>>()
    };
    let mut raised = Vec::new();
    for i in 0..3 {
        raised.extend(raised_now(&good(&mut e, pid(&t, &format!("disp{i}")), i, 12.0)));
    }
    assert_eq!(
        raised,
        vec!["item-disp:vote:blue", "pond:vote:blue"],
        "three blue points keep the item blue"
    );
    let ev = good(&mut e, pid(&t, "disp3"), 3, 12.0);
    assert_eq!(
        raised_now(&ev),
        vec!["item-disp:vote:yellow", "pond:vote:yellow"],
        "the fourth blue point makes the item yellow"
    );
    // Two orange points in the seepage item make it red, and so the pond red.
    good(&mut e, pid(&t, "seep0"), 4, 31.0);
    let ev = good(&mut e, pid(&t, "seep1"), 5, 31.0);
    let r = raised_now(&ev);
    assert!(
        r.contains(&"item-seep:vote:red".to_string()) && r.contains(&"pond:vote:red".to_string()),
        "{r:?}"
    );
    assert_eq!(
        ev.iter().find(|e| e.alarm_id == "pond:vote:red").map(|e| e.priority),
        Some(Priority::Critical)
    );
}

#[test]
fn an_uncertain_reading_over_the_set_point_raises_like_a_good_one() {
    let t = table();
    let (mut e, _) = engine(vec![gas_threshold(pid(&t, "g1"), Delays::default())]);
    let g1 = pid(&t, "g1");
    let ev = read(&mut e, g1, 0, 30.0, Quality::Uncertain);
    assert_eq!(
        summary(&ev),
        vec![("g1:high".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    assert!(
        read(&mut e, g1, 1, f64::NAN, Quality::CommFault).is_empty(),
        "a fault holds the alarm"
    );
}

#[test]
fn flood_and_chattering_windows_carry_over_a_restore_from_the_raises() {
    let t = table();
    let rules = vec![gas_threshold(pid(&t, "g1"), Delays::default())];
    let (mut e, _) = engine(rules.clone());
    let g1 = pid(&t, "g1");
    // g1:high raised 6 times within 50 s (chattering), g1:high_high 6 times: 12 raises > 10.
    let mut journal = Vec::new();
    for i in 0..6 {
        journal.extend(good(&mut e, g1, 60_000 + i * 8_000, 60.0));
        journal.extend(good(&mut e, g1, 60_000 + i * 8_000 + 4_000, 1.0));
    }
    let live = e.stats();
    assert!(live.flood, "{live:?}");
    assert_eq!(live.rate_10min, 12);
    assert_eq!(live.chattering.len(), 2, "{live:?}");

    // A new engine restored from the journal's latest states and recent raises agrees.
    let now = at(120_000);
    let (mut r, _) = engine(rules);
    for ev in &journal {
        r.restore_raise(ev);
    }
    r.finish_restore_windows(now);
    let restored = r.stats();
    assert_eq!(restored.flood, live.flood);
    assert_eq!(restored.rate_10min, live.rate_10min);
    assert_eq!(restored.chattering, live.chattering);
    // The windows slide on from there: the first raise leaves the flood window 10 minutes on.
    let mut out = Output::default();
    r.tick(at(60_000 + 600_000), &mut out);
    assert_eq!(out.flood, Some(false));
    assert!(r.stats().chattering.is_empty());
}

#[test]
fn each_self_diagnostic_drives_its_own_gateway_alarm() {
    let (mut e, _) = engine(Vec::new());
    let mut out = Output::default();
    let disk = Diagnosis {
        kind: ConditionKind::DiskSpace,
        active: true,
        value: 512.0,
    };
    e.diagnose(disk, at(1_000), &mut out);
    assert_eq!(
        summary(&out.events),
        vec![("gateway:disk_space".into(), Transition::Raised, AlarmState::UnackActive)]
    );
    let ev = &out.events[0];
    assert_eq!(
        (ev.subject.as_str(), ev.subject_kind),
        ("gateway", crate::model::SubjectKind::Device)
    );
    assert_eq!(ev.class, crate::model::AlarmClass::Fault);
    assert_eq!((ev.value, ev.unit.as_str()), (512.0, "MiB"));
    out.clear();
    // The same finding again changes nothing; its end clears it, to be acknowledged.
    e.diagnose(disk, at(3_000), &mut out);
    assert!(out.events.is_empty());
    e.diagnose(Diagnosis { active: false, ..disk }, at(5_000), &mut out);
    assert_eq!(
        summary(&out.events),
        vec![("gateway:disk_space".into(), Transition::Cleared, AlarmState::UnackRtn)]
    );
    out.clear();
    for kind in ConditionKind::SELF_DIAGNOSTIC {
        e.diagnose(
            Diagnosis {
                kind,
                active: true,
                value: f64::NAN,
            },
            at(7_000),
            &mut out,
        );
    }
    let ids: Vec<String> = out.events.iter().map(|e| e.alarm_id.clone()).collect();
    assert_eq!(
        ids,
        [
            "gateway:disk_space",
            "gateway:storage_write",
            "gateway:store_backlog",
            "gateway:output_fault",
            "gateway:clock_jump",
            "gateway:pair_degraded"
        ]
    );
}
