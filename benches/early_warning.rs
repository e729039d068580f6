//! Early warning (time-to-limit), measured on the seeded replay set
//! (`hazard_gateway::tuning::replay`) through the real rules engine.
//!
//! Two weeks are replayed, each point with its threshold set-point and a `time_to_limit` rule
//! (horizon 30 min, window 10 min, 10 samples):
//!
//! - the noise week (`generate`): detector spikes, pump transients, levels and batch cycles
//!   run close to their set-points, and fast true events. A warning raised outside a true
//!   event of its point (from its onset, when the value leaves its normal course, to its end)
//!   is a false warning.
//! - the slow week (`generate_slow`): the same kinds of noise, with every true event creeping
//!   from its onset to the set-point over 30 to 120 min. Each event is caught when a warning of
//!   its point is raised between its onset and its crossing (a warning raised before the onset
//!   is the normal course's, and false); the lead is the time from that raise to the crossing.
//!
//! `cargo bench --profile dev --bench early_warning` (figures in `benches/README.md`).
//! Environment: `EARLY_SEED` (default 2026), `EARLY_DAYS` (default 7), `EARLY_LEARN_DAYS` (days
//! replayed first and reported apart while cycles are learned, default 1), `EARLY_STEP_MS`
//! (sample period, default 5000), `EARLY_VERBOSE` (list every false warning). Exits 1 when a
//! slow rise is missed or warned under 10 min ahead, or false warnings exceed one per point
//! per week.

use std::time::Duration;

use hazard_gateway::model::{ConditionKind, Quality, Reading, Timestamp, Transition};
use hazard_gateway::rules::{AlarmSettings, Delays, Output, RuleKind, RuleSpec, RulesEngine};
use hazard_gateway::tuning::replay::{ReplaySet, generate, generate_slow};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Raise times of early warnings per point (index into the set), in time order.
fn warnings(set: &ReplaySet) -> Vec<Vec<Timestamp>> {
    let (table, ids) = set.point_table();
    let mut rules = Vec::new();
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
        rules.push(RuleSpec {
            name: format!("trend-{}", p.name),
            latching: false,
            kind: RuleKind::EarlyWarning {
                point: *id,
                horizon: Duration::from_secs(30 * 60),
                window: Duration::from_secs(10 * 60),
                min_samples: 10,
                priority: None,
                delays: Delays::default(),
            },
        });
    }
    let start = set.points[0].samples[0].ts;
    let mut engine = RulesEngine::new(table, &rules, AlarmSettings::default(), start).expect("rules build");
    let mut raised = vec![Vec::new(); set.points.len()];
    let mut out = Output::default();
    for k in 0..set.points[0].samples.len() {
        engine.tick(set.points[0].samples[k].ts, &mut out);
        for (i, p) in set.points.iter().enumerate() {
            let s = p.samples[k];
            let r = Reading {
                point: ids[i],
                ts: s.ts,
                value: s.value,
                quality: Quality::Good,
            };
            engine.evaluate(&r, &mut out);
            for e in out.events.drain(..) {
                if e.condition == ConditionKind::EarlyWarning && e.transition == Transition::Raised {
                    raised[i].push(e.ts);
                }
            }
            out.clear();
        }
    }
    raised
}

fn minutes(d: Duration) -> f64 {
    d.as_secs_f64() / 60.0
}

fn main() {
    let seed: u64 = env("EARLY_SEED", 2026);
    let days: u64 = env("EARLY_DAYS", 7);
    let learn: u64 = env("EARLY_LEARN_DAYS", 1);
    let step = Duration::from_millis(env("EARLY_STEP_MS", 5000));
    let span = Duration::from_secs((learn + days) * 86_400);
    let t0 = Timestamp::from_millis(1_780_000_000_000);
    // Warnings and events of the learning days are reported apart: the gateway learns a point's
    // cycle from a day of its history (at start from stored history, `seed_cycles`).
    let counted = t0.plus(Duration::from_secs(learn * 86_400));
    let weeks = days as f64 / 7.0;
    let mut failed = false;

    // The noise week: every warning not in the run-up to a true event is false.
    let set = generate(seed, t0, span, step);
    let start = t0;
    let raised = warnings(&set);
    let mut false_total = 0;
    let mut worst = (0, String::new());
    let mut by_kind: Vec<(String, usize)> = Vec::new();
    let mut learning_false = 0;
    for (i, times) in raised.iter().enumerate() {
        let events: Vec<_> = set.events.iter().filter(|e| e.point == i).collect();
        let all_false: Vec<&Timestamp> = times
            .iter()
            .filter(|t| !events.iter().any(|e| **t >= e.onset && **t <= e.end))
            .collect();
        learning_false += all_false.iter().filter(|t| ***t < counted).count();
        let false_times: Vec<&Timestamp> = all_false.into_iter().filter(|t| **t >= counted).collect();
        let false_here = false_times.len();
        if std::env::var_os("EARLY_VERBOSE").is_some() {
            for t in &false_times {
                // The nearest true event of the point, for telling an after-echo from noise.
                let near = events
                    .iter()
                    .map(|e| (t.as_nanos() - e.onset.as_nanos()) as f64 / 3.6e12)
                    .min_by(|a, b| a.abs().total_cmp(&b.abs()));
                println!(
                    "false warning: {} at {:.2} h (nearest event onset {:+.2} h away)",
                    set.points[i].name,
                    t.since(start).as_secs_f64() / 3600.0,
                    near.unwrap_or(f64::NAN)
                );
            }
        }
        false_total += false_here;
        let kind = format!("{:?}", set.points[i].kind);
        match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += false_here,
            None => by_kind.push((kind, false_here)),
        }
        if false_here > worst.0 {
            worst = (false_here, set.points[i].name.clone());
        }
    }
    let per_point_week = false_total as f64 / set.points.len() as f64 / weeks;
    println!("learning: {learn} day(s) replayed first, {learning_false} false warnings in them (not counted below)");
    println!(
        "noise set: seed {seed}, {} points, {days} d every {} ms, {} fast true events",
        set.points.len(),
        step.as_millis(),
        set.events.len()
    );
    println!(
        "false warnings: {false_total} ({per_point_week:.2} per point per week; most on one point: {} {})",
        worst.0, worst.1
    );
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("false warnings by kind (3 points each): {}", kinds.join(", "));
    if per_point_week > 1.0 {
        failed = true;
    }

    // The slow week: every true event should be warned of, early enough.
    let mut set = generate_slow(seed, t0, span, step);
    set.events.retain(|e| e.onset >= counted);
    let raised = warnings(&set);
    let mut leads = Vec::new();
    let mut missed = Vec::new();
    // A slow rise takes 30 min or more from its onset to the set-point. The generator aims
    // every event at 30-120 min, but on a point run in cycles the cycle can bring the crossing
    // closer: those events are reported apart and are not held to the 10 min lead.
    let slow_rise = Duration::from_secs(1800);
    let mut quicker: Vec<(String, f64, Option<f64>)> = Vec::new();
    for e in &set.events {
        if e.start.since(e.onset) < slow_rise {
            let first = raised[e.point].iter().find(|t| **t >= e.onset && **t <= e.start);
            quicker.push((
                set.points[e.point].name.clone(),
                minutes(e.start.since(e.onset)),
                first.map(|t| minutes(e.start.since(*t))),
            ));
            continue;
        }
        let first = raised[e.point].iter().find(|t| **t >= e.onset && **t <= e.start);
        match first {
            Some(t) => {
                let lead = e.start.since(*t);
                if lead < Duration::from_secs(600) {
                    println!(
                        "short lead: {} {:.1} min ({:.1} min from onset to crossing)",
                        set.points[e.point].name,
                        minutes(lead),
                        minutes(e.start.since(e.onset))
                    );
                }
                leads.push(lead);
            }
            None => missed.push(format!(
                "{} at {} ms ({:.1} min from onset to crossing)",
                set.points[e.point].name,
                e.start.as_millis(),
                minutes(e.start.since(e.onset))
            )),
        }
    }
    let slow_false: usize = raised
        .iter()
        .enumerate()
        .map(|(i, times)| {
            times
                .iter()
                .filter(|t| **t >= counted)
                .filter(|t| {
                    !set.events
                        .iter()
                        .any(|e| e.point == i && **t >= e.onset && **t <= e.end)
                })
                .count()
        })
        .sum();
    leads.sort();
    let short = leads.iter().filter(|l| **l < Duration::from_secs(600)).count();
    for (name, rise, lead) in &quicker {
        println!(
            "quicker rise (not counted as slow): {name}, {rise:.1} min from onset to crossing, warned {}",
            lead.map_or("never".to_string(), |l| format!("{l:.1} min ahead"))
        );
    }
    println!(
        "slow set: {} true events creeping up over 30 min or more; warned {} (missed {}), false warnings {slow_false}",
        set.events.len() - quicker.len(),
        leads.len(),
        missed.len()
    );
    if let (Some(min), Some(max)) = (leads.first(), leads.last()) {
        println!(
            "lead before the crossing: min {:.1} min, median {:.1} min, max {:.1} min; under 10 min: {short}",
            minutes(*min),
            minutes(leads[leads.len() / 2]),
            minutes(*max)
        );
    }
    for m in &missed {
        println!("missed: {m}");
    }
    if !missed.is_empty() || short > 0 {
        failed = true;
    }
    if failed {
        println!(
            "FAILED: targets are no missed slow event, leads of 10 min or more, at most 1 false warning per point per week"
        );
        std::process::exit(1);
    }
}
