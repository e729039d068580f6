//! Suspect-data checks measured on the replay set with injected instrument faults
//! (`hazard_gateway::tuning::faults`), through the real rules engine with every point's
//! default checks (`SuspectChecks::for_kind`), as a gateway with `[alarms] suspect_data = true`
//! runs them.
//!
//! For each injected fault: the time from its first faulty reading to the first data-quality
//! alarm of its point (stuck, pinned or implausible jump) raised while it lasts. A fault is
//! flagged in time when that is within twice the check's window (stuck: the kind's `stuck`
//! window; pinned: its `pinned` window; a jump: one reading). Every data-quality alarm raised
//! outside an injected fault (and a jump's hold after it) is a false flag.
//!
//! `cargo bench --profile dev --bench suspect` (figures in `benches/README.md`).
//! Environment: `SUSPECT_SEED` (default 2026), `SUSPECT_DAYS` (default 7), `SUSPECT_STEP_MS`
//! (sample period, default 5000). Exits 1 when a fault is missed or late, or when false flags
//! exceed one per point per week.

use std::time::Duration;

use hazard_gateway::model::{ConditionKind, Reading, Timestamp, Transition};
use hazard_gateway::rules::suspect::SuspectChecks;
use hazard_gateway::rules::{AlarmSettings, Delays, Output, RuleKind, RuleSpec, RulesEngine};
use hazard_gateway::tuning::faults::{FaultKind, generate_faulty};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let seed: u64 = env("SUSPECT_SEED", 2026);
    let days: u64 = env("SUSPECT_DAYS", 7);
    let step = Duration::from_millis(env("SUSPECT_STEP_MS", 5000));
    let span = Duration::from_secs(days * 86_400);
    let t0 = Timestamp::from_millis(1_780_000_000_000);
    let weeks = days as f64 / 7.0;
    let set = generate_faulty(seed, t0, span, step);
    let (table, ids) = set.as_replay().point_table();
    let mut rules = Vec::new();
    let mut checks = Vec::new();
    for (p, id) in set.points.iter().zip(&ids) {
        rules.push(RuleSpec {
            name: format!("limit-{}", p.name),
            latching: false,
            kind: RuleKind::Threshold {
                point: *id,
                limits: vec![p.limit],
                deadband: 0.0,
                delays: Delays::default(),
            },
        });
        let c = SuspectChecks::for_kind(p.kind, Some(p.range));
        checks.push(c);
        rules.push(RuleSpec {
            name: "suspect_data".into(),
            latching: false,
            kind: RuleKind::Suspect {
                point: *id,
                checks: c,
                priority: hazard_gateway::model::Priority::High,
            },
        });
    }
    let mut engine = RulesEngine::new(table, &rules, AlarmSettings::default(), t0).expect("rules build");
    // Raises of data-quality alarms per point: (time, condition).
    let mut raised: Vec<Vec<(Timestamp, ConditionKind)>> = vec![Vec::new(); set.points.len()];
    let mut out = Output::default();
    let started = tokio::time::Instant::now();
    let n = set.points[0].samples.len();
    for k in 0..n {
        engine.tick(set.points[0].samples[k].ts, &mut out);
        for (i, p) in set.points.iter().enumerate() {
            let s = p.samples[k];
            let r = Reading {
                point: ids[i],
                ts: s.ts,
                value: s.value,
                quality: set.qualities[i][k],
            };
            engine.evaluate(&r, &mut out);
        }
        for e in out.events.drain(..) {
            if matches!(
                e.condition,
                ConditionKind::Stuck | ConditionKind::Pinned | ConditionKind::ImplausibleJump
            ) && e.transition == Transition::Raised
            {
                let i = ids.iter().position(|id| *set.points[id.index()].name == e.subject);
                if let Some(i) = i {
                    raised[i].push((e.ts, e.condition));
                }
            }
        }
        out.clear();
    }
    let readings = n * set.points.len();
    let elapsed = started.elapsed();

    let mut failed = false;
    let mut rows: Vec<(FaultKind, usize, usize, Duration)> = Vec::new();
    for f in &set.faults {
        let c = &checks[f.point];
        let (window, wanted) = match f.kind {
            FaultKind::Stuck | FaultKind::StuckAfterLoss => (c.stuck.unwrap_or_default(), ConditionKind::Stuck),
            FaultKind::Pinned => (c.pinned.unwrap_or_default(), ConditionKind::Pinned),
            FaultKind::Jump => (step, ConditionKind::ImplausibleJump),
        };
        let flag = raised[f.point]
            .iter()
            .find(|(t, cond)| *cond == wanted && *t >= f.start && *t <= f.end.plus(step));
        let row = match rows.iter_mut().position(|r| r.0 == f.kind) {
            Some(i) => i,
            None => {
                rows.push((f.kind, 0, 0, Duration::ZERO));
                rows.len() - 1
            }
        };
        rows[row].1 += 1;
        match flag {
            Some((t, _)) => {
                let latency = t.since(f.start);
                rows[row].3 = rows[row].3.max(latency);
                if latency <= window * 2 {
                    rows[row].2 += 1;
                } else {
                    println!(
                        "late: {:?} on {} flagged {:.1} min after onset (window {:.1} min)",
                        f.kind,
                        set.points[f.point].name,
                        latency.as_secs_f64() / 60.0,
                        window.as_secs_f64() / 60.0
                    );
                    failed = true;
                }
            }
            None => {
                println!(
                    "missed: {:?} on {} at {} ms",
                    f.kind,
                    set.points[f.point].name,
                    f.start.as_millis()
                );
                failed = true;
            }
        }
    }
    let mut false_flags = 0;
    for (i, times) in raised.iter().enumerate() {
        let hold = checks[i].jump_hold;
        for (t, cond) in times {
            let inside = set
                .faults
                .iter()
                .any(|f| f.point == i && *t >= f.start && *t <= f.end.plus(hold).plus(step));
            if !inside {
                false_flags += 1;
                println!("false flag: {cond:?} on {} at {} ms", set.points[i].name, t.as_millis());
            }
        }
    }
    let per_point_week = false_flags as f64 / set.points.len() as f64 / weeks;
    println!(
        "replay set with faults: seed {seed}, {} points, {days} d every {} ms, {} readings in {:.1} s",
        set.points.len(),
        step.as_millis(),
        readings,
        elapsed.as_secs_f64()
    );
    for (kind, total, in_time, worst) in &rows {
        println!(
            "{kind:?}: {total} injected, {in_time} flagged within twice the window, slowest {:.1} min",
            worst.as_secs_f64() / 60.0
        );
    }
    println!("false flags: {false_flags} ({per_point_week:.2} per point per week)");
    if per_point_week > 1.0 {
        failed = true;
    }
    if failed {
        println!("FAILED: every fault flagged within twice its window, at most 1 false flag per point per week");
        std::process::exit(1);
    }
}
