//! Nuisance reduction, measured: naive thresholds against the recommended settings on the
//! seeded replay set (`hazard_gateway::tuning::replay`).
//!
//! The first half of the set is the history the recommendations are computed from; the second
//! half is replayed through the real rules engine twice, once with every alarm on its bare
//! set-point (no deadband, no delays) and once with each point's suggested settings. It counts
//! annunciated raises, true events missed (no raise while the noise-free value was past its
//! set-point) and the delay the suggestion added to each true event's first raise.
//!
//! `cargo bench --bench nuisance` (figures in `benches/README.md`). Environment: `NUISANCE_DAYS`
//! (length of each half, default 3), `NUISANCE_SEED` (default 2026), `NUISANCE_STEP_MS`
//! (sample period, default 2000). Exits 1 when a true event is missed or the reduction is
//! below 80 %.

use std::collections::HashMap;
use std::time::Duration;

use hazard_gateway::model::{PointKind, Quality, Reading, Timestamp, Transition};
use hazard_gateway::rules::{AlarmSettings, Delays, Output, RuleKind, RuleSpec, RulesEngine};
use hazard_gateway::tuning::replay::{ReplaySet, generate};
use hazard_gateway::tuning::{Activation, Policy, Sample, Settings, recommend};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Activations per point (index into the set), in time order, from replaying `from..` of every
/// point through the rules engine with `settings[i]` on point `i`.
fn replay(set: &ReplaySet, from: usize, settings: &[Settings]) -> Vec<Vec<Activation>> {
    let (table, ids) = set.point_table();
    let rules: Vec<RuleSpec> = set
        .points
        .iter()
        .zip(&ids)
        .zip(settings)
        .map(|((p, id), s)| RuleSpec {
            name: format!("replay-{}", p.name),
            latching: false,
            kind: RuleKind::Threshold {
                point: *id,
                limits: vec![p.limit],
                deadband: s.deadband,
                delays: Delays {
                    on: s.on_delay,
                    off: s.off_delay,
                },
            },
        })
        .collect();
    let start = set.points[0].samples[from].ts;
    let alarm_settings = AlarmSettings {
        // Flood and chattering accounting stay on; nothing here shelves or suppresses.
        ..AlarmSettings::default()
    };
    let mut engine = RulesEngine::new(table, &rules, alarm_settings, start).expect("replay rules build");
    let mut acts: Vec<Vec<Activation>> = vec![Vec::new(); set.points.len()];
    let mut out = Output::default();
    let len = set.points[0].samples.len();
    let index: HashMap<String, usize> = set
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), i))
        .collect();
    let collect = |out: &mut Output, acts: &mut Vec<Vec<Activation>>| {
        for e in out.events.drain(..) {
            let Some(&i) = index.get(&e.subject) else { continue };
            match e.transition {
                Transition::Raised if e.annunciated() => acts[i].push(Activation {
                    raised: e.ts,
                    cleared: None,
                }),
                Transition::Cleared => {
                    if let Some(a) = acts[i].last_mut().filter(|a| a.cleared.is_none()) {
                        a.cleared = Some(e.ts);
                    }
                }
                _ => {}
            }
        }
        out.clear();
    };
    for k in from..len {
        let ts = set.points[0].samples[k].ts;
        // The engine's tick lets running delays expire between readings, as in the gateway.
        engine.tick(ts, &mut out);
        for (i, p) in set.points.iter().enumerate() {
            let s = p.samples[k];
            engine.evaluate(
                &Reading {
                    point: ids[i],
                    ts: s.ts,
                    value: s.value,
                    quality: Quality::Good,
                },
                &mut out,
            );
        }
        collect(&mut out, &mut acts);
    }
    acts
}

fn main() {
    let days: u64 = env("NUISANCE_DAYS", 3);
    let seed: u64 = env("NUISANCE_SEED", 2026);
    let step = Duration::from_millis(env("NUISANCE_STEP_MS", 2000));
    let half = Duration::from_secs(days * 86_400);
    let t0 = Timestamp::from_millis(1_780_000_000_000);
    let began = tokio::time::Instant::now();
    let set = generate(seed, t0, half * 2, step);
    let split = set.points[0].samples.partition_point(|s| s.ts < t0.plus(half));
    println!(
        "replay set: seed {seed}, {} points, {} samples each every {} ms; training {days} d, evaluation {days} d; {} true events ({} in evaluation); generated in {:.1} s",
        set.points.len(),
        set.points[0].samples.len(),
        step.as_millis(),
        set.events.len(),
        set.events.iter().filter(|e| e.start >= t0.plus(half)).count(),
        began.elapsed().as_secs_f64()
    );

    let naive = Settings {
        deadband: 0.0,
        on_delay: Duration::ZERO,
        off_delay: Duration::ZERO,
    };
    let began = tokio::time::Instant::now();
    let suggested: Vec<Settings> = set
        .points
        .iter()
        .map(|p| {
            let training: Vec<Sample> = p.samples[..split].to_vec();
            let policy = Policy::for_point(Some(p.range), p.limit.value);
            recommend(&training, &p.limit, &naive, &policy).suggested
        })
        .collect();
    let recommend_s = began.elapsed().as_secs_f64();

    let began = tokio::time::Instant::now();
    let before = replay(&set, split, &vec![naive; set.points.len()]);
    let after = replay(&set, split, &suggested);
    let replay_s = began.elapsed().as_secs_f64();

    let eval_start = t0.plus(half);
    let mut delays_ms: Vec<u64> = Vec::new();
    let mut missed = Vec::new();
    let mut standing = 0;
    let mut slow = Vec::new();
    // Each event's first alarm relative to its noise-free crossing (ms; negative: before it),
    // naive and advised.
    let mut after_crossing: Vec<(i64, i64)> = Vec::new();
    let mut events = 0;
    for e in set.events.iter().filter(|e| e.start >= eval_start) {
        events += 1;
        // When the alarm answered the event: already standing at its start (since its raise,
        // so it adds no delay), or its first raise from a minute before the start (the naive
        // alarm may fire a little early, on noise) to the end.
        let answer = |acts: &[Activation]| -> Option<(Timestamp, bool)> {
            if let Some(a) = acts
                .iter()
                .find(|a| a.raised < e.start && a.cleared.is_none_or(|c| c > e.start))
            {
                return Some((a.raised, true));
            }
            let from = e.start.minus(Duration::from_secs(60));
            acts.iter()
                .map(|a| a.raised)
                .find(|t| *t >= from && *t <= e.end)
                .map(|t| (t, false))
        };
        let late = |x: Option<(Timestamp, bool)>| x.map(|(t, _)| t.as_millis() - e.start.as_millis());
        if let (Some(b), Some(a)) = (late(answer(&before[e.point])), late(answer(&after[e.point]))) {
            after_crossing.push((b, a));
        }
        match (answer(&before[e.point]), answer(&after[e.point])) {
            (b, Some((a, was_standing))) => {
                standing += usize::from(was_standing);
                let b = b.map_or(a, |(t, _)| t);
                let delay = u64::try_from(a.since(b).as_millis()).unwrap_or(u64::MAX);
                if delay > 10_000 {
                    slow.push((e, delay, suggested[e.point]));
                }
                delays_ms.push(delay);
            }
            (_, None) => missed.push(e),
        }
    }
    delays_ms.sort_unstable();
    let median = delays_ms.get(delays_ms.len() / 2).copied().unwrap_or(0);
    let max = delays_ms.last().copied().unwrap_or(0);

    println!();
    println!("| point | set-point | suggested deadband | on-delay | off-delay | naive raises | suggested raises |");
    println!("|---|---|---|---|---|---|---|");
    for (i, p) in set.points.iter().enumerate() {
        let s = suggested[i];
        println!(
            "| {} | {} {} {} | {:.3} | {} s | {} s | {} | {} |",
            p.name,
            if p.limit.falling { "≤" } else { "≥" },
            p.limit.value,
            p.unit,
            s.deadband,
            s.on_delay.as_secs(),
            s.off_delay.as_secs(),
            before[i].len(),
            after[i].len()
        );
    }
    let by_kind = |kind: PointKind, r: &[Vec<Activation>]| -> usize {
        set.points
            .iter()
            .zip(r)
            .filter(|(p, _)| p.kind == kind)
            .map(|(_, r)| r.len())
            .sum()
    };
    println!();
    for kind in [
        PointKind::Gas,
        PointKind::ToxicGas,
        PointKind::Level,
        PointKind::Pressure,
        PointKind::Temperature,
        PointKind::Oxygen,
    ] {
        println!("{kind:?}: {} -> {}", by_kind(kind, &before), by_kind(kind, &after));
    }
    let total_before: usize = before.iter().map(Vec::len).sum();
    let total_after: usize = after.iter().map(Vec::len).sum();
    let reduction = if total_before == 0 {
        0.0
    } else {
        100.0 * (1.0 - total_after as f64 / total_before as f64)
    };
    println!();
    println!(
        "annunciated raises in evaluation: naive {total_before}, suggested {total_after} ({reduction:.1} % fewer)"
    );
    println!(
        "true events in evaluation: {events}, missed with suggested settings: {}; met by an alarm already standing at their start: {standing}; delay added to true alarms: median {:.1} s, max {:.1} s (over {} events)",
        missed.len(),
        median as f64 / 1000.0,
        max as f64 / 1000.0,
        delays_ms.len()
    );
    let med = |mut v: Vec<i64>| -> (f64, f64) {
        v.sort_unstable();
        let m = v.get(v.len() / 2).copied().unwrap_or(0);
        (m as f64 / 1000.0, v.last().copied().unwrap_or(0) as f64 / 1000.0)
    };
    let (nb, xb) = med(after_crossing.iter().map(|p| p.0).collect());
    let (na, xa) = med(after_crossing.iter().map(|p| p.1).collect());
    println!(
        "first alarm after the noise-free crossing: naive median {nb:.1} s, max {xb:.1} s; advised median {na:.1} s, max {xa:.1} s"
    );
    println!(
        "recommendations computed in {recommend_s:.1} s; both replays through the rules engine in {replay_s:.1} s"
    );
    for (e, delay, s) in &slow {
        println!(
            "over the 10 s bound: {} event at {:?}: {:.1} s later than the naive alarm (on-delay {} s)",
            set.points[e.point].name,
            e.start,
            *delay as f64 / 1000.0,
            s.on_delay.as_secs()
        );
    }
    for e in &missed {
        println!("MISSED: {} from {:?} to {:?}", set.points[e.point].name, e.start, e.end);
    }
    if !missed.is_empty() || reduction < 80.0 {
        std::process::exit(1);
    }
}
