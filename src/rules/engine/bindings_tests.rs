//! The default per-point alarms as one rule each: the same alarms as one rule per point.

use super::*;
use crate::model::{PointKind, PointMeta, Priority};
use crate::rules::{Delays, RuleKind, RuleSpec, bindings, suspect::SuspectChecks};

fn table() -> PointTable {
    let mut t = PointTable::default();
    let mut add = |name: &str, kind, range| {
        t.insert(PointMeta {
            name: name.into(),
            unit: "u".into(),
            kind,
            device: "dev".into(),
            hazard_source: Some("MHS-001".into()),
            range,
            description: None,
        })
        .unwrap()
    };
    add("g1", PointKind::Gas, Some((0.0, 100.0)));
    add("g2", PointKind::Gas, Some((0.0, 100.0)));
    // A gas point's only check (pinned at full scale) needs the range.
    add("g3", PointKind::Gas, None);
    add("t1", PointKind::Temperature, Some((0.0, 150.0)));
    t
}

fn rule(name: &str, kind: RuleKind) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        latching: false,
        kind,
    }
}

fn fault(point: PointId, priority: Priority) -> RuleKind {
    RuleKind::SensorFault {
        point,
        priority,
        delays: Delays::default(),
    }
}

/// Two configured rules (g2's sensor fault, t1's suspect checks) and the two defaults.
fn with_defaults(t: &PointTable) -> Vec<RuleSpec> {
    let (g2, t1) = (t.id_of("g2").unwrap(), t.id_of("t1").unwrap());
    vec![
        rule(
            "sensor_fault",
            RuleKind::DefaultSensorFault {
                priority: Priority::Low,
            },
        ),
        rule(
            "suspect_data",
            RuleKind::DefaultSuspect {
                priority: Priority::Low,
            },
        ),
        rule("own-fault", fault(g2, Priority::Critical)),
        rule(
            "own-suspect",
            RuleKind::Suspect {
                point: t1,
                checks: SuspectChecks::for_kind(PointKind::Temperature, None),
                priority: Priority::Medium,
            },
        ),
    ]
}

/// The same rules written out one per point, as the configuration held them before.
fn written_out(t: &PointTable) -> Vec<RuleSpec> {
    let id = |n: &str| t.id_of(n).unwrap();
    let suspect = |n: &str| {
        let m = t.meta(id(n));
        rule(
            "suspect_data",
            RuleKind::Suspect {
                point: id(n),
                checks: SuspectChecks::for_kind(m.kind(), m.range()),
                priority: Priority::Low,
            },
        )
    };
    let mut rules: Vec<RuleSpec> = ["g1", "g3", "t1"]
        .into_iter()
        .map(|n| rule("sensor_fault", fault(id(n), Priority::Low)))
        .collect();
    rules.extend(["g1", "g2"].map(suspect));
    rules.extend(with_defaults(t).split_off(2));
    rules
}

#[test]
fn defaults_expand_to_every_point_no_rule_of_their_kind_covers() {
    let t = table();
    let rules = with_defaults(&t);
    let expanded: Vec<RuleSpec> = bindings(&rules, &t).map(|r| r.into_owned()).collect();
    assert_eq!(expanded, written_out(&t));
}

#[test]
fn rules_without_defaults_are_their_own_bindings() {
    let t = table();
    let rules = written_out(&t);
    let bound: Vec<_> = bindings(&rules, &t).collect();
    assert_eq!(bound.len(), rules.len());
    assert!(bound.iter().all(|r| matches!(r, std::borrow::Cow::Borrowed(_))));
}

#[test]
fn the_engine_builds_the_same_alarms_from_the_defaults() {
    let t = table();
    let build = |rules: &[RuleSpec]| {
        let e = RulesEngine::new(t.clone(), rules, AlarmSettings::default(), Timestamp::default()).unwrap();
        (0..e.slots.len())
            .map(|i| {
                let s = e.slots.view(i);
                (s.meta.id(), s.meta.rule.to_string(), s.meta.priority, s.meta.condition)
            })
            .collect::<Vec<_>>()
    };
    let (shared, each) = (build(&with_defaults(&t)), build(&written_out(&t)));
    assert_eq!(shared, each);
    let ids: Vec<&str> = shared.iter().map(|s| s.0.as_str()).collect();
    for id in [
        "g1:sensor_fault",
        "g2:sensor_fault",
        "g3:sensor_fault",
        "t1:sensor_fault",
        "g1:pinned",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(
        !ids.iter().any(|i| i.starts_with("g3:pinned")),
        "no checks without a range: {ids:?}"
    );
    let g2 = shared.iter().find(|s| s.0 == "g2:sensor_fault").unwrap();
    assert_eq!((g2.1.as_str(), g2.2), ("own-fault", Priority::Critical));
}
