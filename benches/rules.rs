//! Criterion benches of rule evaluation: thresholds alone, and a mixed rule set with every
//! rule kind (threshold, rate of change, stale, sensor fault, deviation, vote).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::model::{Level, PointId, PointKind, PointMeta, PointTable, Priority, Quality, Reading, Timestamp};
use hazard_gateway::rules::{
    AlarmSettings, Delays, Limit, Output, RuleKind, RuleSpec, RulesEngine, VoteMember, VoteMode,
};

fn points(n: usize) -> PointTable {
    let mut t = PointTable::default();
    for i in 0..n {
        t.insert(PointMeta {
            name: format!("MHS-001/GT-{i}").into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: format!("module-{}", i / 4).into(),
            hazard_source: Some("MHS-001".into()),
            range: Some((0.0, 100.0)),
            description: None,
        });
    }
    t
}

fn threshold(point: PointId) -> RuleSpec {
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
            delays: Delays {
                on: Duration::from_secs(2),
                off: Duration::ZERO,
            },
        },
    }
}

fn mixed(t: &PointTable) -> Vec<RuleSpec> {
    let ids: Vec<PointId> = t.iter().map(|(id, _)| id).collect();
    let mut rules: Vec<RuleSpec> = ids.iter().map(|&p| threshold(p)).collect();
    for &point in &ids {
        let named = |name: &str, kind| RuleSpec {
            name: name.into(),
            latching: false,
            kind,
        };
        let delays = Delays::default();
        rules.push(named(
            "fault",
            RuleKind::SensorFault {
                point,
                priority: Priority::High,
                delays,
            },
        ));
        rules.push(named(
            "silence",
            RuleKind::Stale {
                point,
                after: Duration::from_secs(30),
                priority: Priority::Medium,
            },
        ));
        let per = Duration::from_secs(3600);
        rules.push(named(
            "rise",
            RuleKind::RateOfChange {
                point,
                rise: Some(30.0),
                fall: None,
                per,
                window: Duration::from_secs(60),
                priority: Priority::High,
                delays,
            },
        ));
    }
    for (i, pair) in ids.chunks(2).enumerate() {
        rules.push(RuleSpec {
            name: format!("pair-{i}"),
            latching: false,
            kind: RuleKind::Deviation {
                points: pair.to_vec(),
                max: 20.0,
                deadband: 1.0,
                priority: Priority::Medium,
                delays: Delays::default(),
            },
        });
    }
    for (i, zone) in ids.chunks(4).enumerate() {
        rules.push(RuleSpec {
            name: format!("zone-{i}"),
            latching: false,
            kind: RuleKind::Vote {
                members: zone.iter().map(|p| VoteMember::Point(*p)).collect(),
                mode: VoteMode::Confirm {
                    level: Level::High,
                    k: 2,
                },
                priorities: Vec::new(),
                hazard_source: None,
            },
        });
    }
    rules
}

/// One poll cycle's readings per point for `cycles` cycles, 1 s apart: a slow sine that
/// crosses the gas set-points on a few points, with one reading in a thousand out of range.
fn readings(t: &PointTable, cycles: usize) -> Vec<Reading> {
    let mut out = Vec::new();
    for c in 0..cycles {
        for (i, (id, _)) in t.iter().enumerate() {
            let phase = (c as f64 / 20.0 + i as f64).sin();
            let value = if i % 50 == 0 { 30.0 + 25.0 * phase } else { 5.0 + phase };
            let quality = if (c * 7 + i) % 1000 == 0 {
                Quality::OutOfRange
            } else {
                Quality::Good
            };
            out.push(Reading {
                point: id,
                ts: Timestamp::from_millis(c as i64 * 1000),
                value,
                quality,
            });
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rules");
    let t = points(1000);
    let input = readings(&t, 100);
    g.throughput(Throughput::Elements(input.len() as u64));
    for (name, rules) in [
        ("threshold", t.iter().map(|(id, _)| threshold(id)).collect::<Vec<_>>()),
        ("mixed", mixed(&t)),
    ] {
        g.bench_function(BenchmarkId::new(name, "1000_points"), |b| {
            b.iter_batched(
                || {
                    RulesEngine::new(t.clone(), &rules, AlarmSettings::default(), Timestamp::default())
                        .expect("rules build")
                },
                |mut engine| {
                    let mut out = Output::default();
                    for r in &input {
                        engine.evaluate(r, &mut out);
                        if out.events.len() > 1024 {
                            out.clear();
                        }
                    }
                    out.events.len()
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
