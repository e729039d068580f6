//! A replay set for alarm tuning and early warning: the readings of a small plant over days,
//! with realistic noise and nuisance (interference spikes on detectors, pump-start transients,
//! processes run close to their set-points) and scripted true events whose times are known, so
//! a bench or test can count alarms, missed events and delays exactly. The same seed always
//! gives the same set.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Sample;
use crate::model::{Level, PointId, PointKind, PointMeta, PointTable, Priority, Timestamp};
use crate::rules::Limit;

/// One point of the set.
#[derive(Debug, Clone)]
pub struct ReplayPoint {
    /// Point name, e.g. `MHS-001/GT-101`.
    pub name: String,
    /// Unit.
    pub unit: &'static str,
    /// What it measures.
    pub kind: PointKind,
    /// Measuring range.
    pub range: (f64, f64),
    /// The set-point a naive configuration alarms on.
    pub limit: Limit,
    /// The readings, one per step.
    pub samples: Vec<Sample>,
}

/// A true process event: the noise-free value was past the set-point from `start` to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrueEvent {
    /// Index into [`ReplaySet::points`].
    pub point: usize,
    /// When the value began to leave its normal course (the first sample of the ramp).
    pub onset: Timestamp,
    /// When the noise-free value crossed the set-point.
    pub start: Timestamp,
    /// When it came back.
    pub end: Timestamp,
}

/// The whole set.
#[derive(Debug, Clone)]
pub struct ReplaySet {
    /// Points with their readings.
    pub points: Vec<ReplayPoint>,
    /// True events, by point then time.
    pub events: Vec<TrueEvent>,
}

impl ReplaySet {
    /// The set's points as a gateway's point table (device `replay`, hazard source the name's
    /// prefix), with each point's id in set order: what replaying through the rules engine
    /// needs. The generators name every point differently, so each gets its id.
    pub fn point_table(&self) -> (PointTable, Vec<PointId>) {
        let mut table = PointTable::default();
        let mut ids = Vec::new();
        for p in &self.points {
            if let Some(id) = table.insert(PointMeta {
                name: p.name.clone().into(),
                unit: p.unit.into(),
                kind: p.kind,
                device: "replay".into(),
                hazard_source: p.name.split('/').next().map(Into::into),
                range: Some(p.range),
                description: None,
            }) {
                ids.push(id);
            }
        }
        (table, ids)
    }
}

/// The kinds of measurement in the set, each with its own noise and nuisance.
#[derive(Debug, Clone, Copy)]
enum Profile {
    /// Combustible gas, %LEL: quiet, with interference spikes of one or two samples.
    Gas,
    /// Hydrogen sulphide, ppm: quiet, with single-sample spikes.
    Toxic,
    /// Tank level, %: run close to its high set-point, so noise chatters across it.
    Level,
    /// Line pressure, MPa: pump starts give transients of a few seconds past the set-point.
    Pressure,
    /// Reactor temperature, °C: a batch cycle whose peaks brush the set-point.
    Temperature,
    /// Oxygen, %VOL: a low alarm, with brief dips when a detector is bumped.
    Oxygen,
}

/// Parameters of one profile.
struct Shape {
    prefix: &'static str,
    unit: &'static str,
    kind: PointKind,
    range: (f64, f64),
    limit: f64,
    falling: bool,
    priority: Priority,
    /// Noise-free value at time `t` seconds into the set, without events.
    base: fn(f64) -> f64,
    sigma: f64,
    /// Spikes per day, their length in samples and their value range.
    spikes_per_day: f64,
    spike_len: (usize, usize),
    spike_value: (f64, f64),
    /// True events per day, their peak range and how long they hold, in seconds.
    events_per_day: f64,
    peak: (f64, f64),
    hold: (f64, f64),
    ramp: f64,
}

fn shape(p: Profile) -> Shape {
    match p {
        Profile::Gas => Shape {
            prefix: "GT",
            unit: "%LEL",
            kind: PointKind::Gas,
            range: (0.0, 100.0),
            limit: 25.0,
            falling: false,
            priority: Priority::High,
            base: |_| 2.0,
            sigma: 0.4,
            spikes_per_day: 6.0,
            spike_len: (1, 2),
            spike_value: (26.0, 45.0),
            events_per_day: 0.5,
            peak: (32.0, 60.0),
            hold: (120.0, 600.0),
            ramp: 60.0,
        },
        Profile::Toxic => Shape {
            prefix: "AT",
            unit: "ppm",
            kind: PointKind::ToxicGas,
            range: (0.0, 100.0),
            limit: 10.0,
            falling: false,
            priority: Priority::High,
            base: |_| 1.0,
            sigma: 0.3,
            spikes_per_day: 4.0,
            spike_len: (1, 1),
            spike_value: (10.5, 20.0),
            events_per_day: 0.4,
            peak: (15.0, 40.0),
            hold: (120.0, 900.0),
            ramp: 90.0,
        },
        Profile::Level => Shape {
            prefix: "LT",
            unit: "%",
            kind: PointKind::Level,
            range: (0.0, 100.0),
            limit: 85.0,
            falling: false,
            priority: Priority::Medium,
            // Filling and drawing down over six hours, topping out just under the set-point.
            base: |t| 77.0 + 7.6 * (t * std::f64::consts::TAU / 21_600.0).sin(),
            sigma: 0.4,
            spikes_per_day: 0.0,
            spike_len: (1, 1),
            spike_value: (0.0, 0.0),
            events_per_day: 0.3,
            peak: (90.0, 95.0),
            hold: (600.0, 1800.0),
            ramp: 300.0,
        },
        Profile::Pressure => Shape {
            prefix: "PT",
            unit: "MPa",
            kind: PointKind::Pressure,
            range: (0.0, 2.5),
            limit: 1.6,
            falling: false,
            priority: Priority::High,
            base: |_| 1.2,
            sigma: 0.008,
            spikes_per_day: 8.0,
            spike_len: (2, 4),
            spike_value: (1.61, 1.70),
            events_per_day: 0.3,
            peak: (1.7, 1.9),
            hold: (180.0, 900.0),
            ramp: 60.0,
        },
        Profile::Temperature => Shape {
            prefix: "TT",
            unit: "°C",
            kind: PointKind::Temperature,
            range: (0.0, 150.0),
            limit: 80.0,
            falling: false,
            priority: Priority::Medium,
            // A two-hour batch cycle peaking a little under the set-point.
            base: |t| 76.0 + 3.4 * (t * std::f64::consts::TAU / 7_200.0).sin(),
            sigma: 0.3,
            spikes_per_day: 0.0,
            spike_len: (1, 1),
            spike_value: (0.0, 0.0),
            events_per_day: 0.3,
            peak: (83.0, 88.0),
            hold: (300.0, 1200.0),
            ramp: 240.0,
        },
        Profile::Oxygen => Shape {
            prefix: "OT",
            unit: "%VOL",
            kind: PointKind::Oxygen,
            range: (0.0, 25.0),
            limit: 19.5,
            falling: true,
            priority: Priority::High,
            base: |_| 20.9,
            sigma: 0.05,
            spikes_per_day: 2.0,
            spike_len: (1, 2),
            spike_value: (18.8, 19.4),
            events_per_day: 0.2,
            peak: (16.0, 18.5),
            hold: (120.0, 600.0),
            ramp: 60.0,
        },
    }
}

/// Profiles in the set, each repeated on [`COPIES`] points.
const PROFILES: [Profile; 6] = [
    Profile::Gas,
    Profile::Toxic,
    Profile::Level,
    Profile::Pressure,
    Profile::Temperature,
    Profile::Oxygen,
];
/// Points per profile.
pub const COPIES: usize = 3;

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The set for `seed`: 18 points read every `step` for `span` from `start`.
pub fn generate(seed: u64, start: Timestamp, span: Duration, step: Duration) -> ReplaySet {
    generate_with(seed, start, span, step, None)
}

/// Like [`generate`], but every true event creeps up from its onset to the set-point over 30 to
/// 120 minutes (a slow leak, a tank overfilling slowly): the events an early warning is for.
/// Its own set: it does not change what [`generate`] gives for a seed.
pub fn generate_slow(seed: u64, start: Timestamp, span: Duration, step: Duration) -> ReplaySet {
    generate_with(seed, start, span, step, Some((1_800.0, 7_200.0)))
}

/// The set, with each event's ramp drawn from `slow_ramp` (seconds) instead of the profile's.
fn generate_with(
    seed: u64,
    start: Timestamp,
    span: Duration,
    step: Duration,
    slow_ramp: Option<(f64, f64)>,
) -> ReplaySet {
    let mut rng = StdRng::seed_from_u64(seed);
    let step_s = step.as_secs_f64().max(0.001);
    let n = (span.as_secs_f64() / step_s) as usize;
    let days = span.as_secs_f64() / 86_400.0;
    let at = |i: usize| start.plus(step.mul_f64(i as f64));
    let mut points = Vec::new();
    let mut events = Vec::new();
    for (pi, profile) in PROFILES.iter().enumerate() {
        let sh = shape(*profile);
        for copy in 0..COPIES {
            let index = points.len();
            let phase = rng.random_range(0.0..86_400.0);
            // The noise-free signal first, events added on top.
            let mut clean: Vec<f64> = (0..n).map(|i| (sh.base)(phase + i as f64 * step_s)).collect();
            let count = (sh.events_per_day * days).round() as usize;
            let mut point_events = Vec::new();
            for k in 0..count {
                // Spread the events over the span, one per slot, away from the slot's edges.
                let slot = n / count.max(1);
                let centre = k * slot + rng.random_range(slot / 4..(3 * slot / 4).max(slot / 4 + 1));
                let peak = rng.random_range(sh.peak.0..sh.peak.1);
                let hold = rng.random_range(sh.hold.0..sh.hold.1);
                // Only the slow set draws here, so the default set's draws stay as they were.
                // A slow ramp is drawn as the time to the set-point: the ramp to the peak is
                // longer by the share of the rise that lies beyond the set-point.
                let ramp_s = match slow_ramp {
                    Some((lo, hi)) => {
                        let to_limit = rng.random_range(lo..hi);
                        let from = clean[centre.saturating_sub((to_limit / step_s) as usize)];
                        let share = ((sh.limit - from) / (peak - from)).clamp(0.05, 1.0);
                        to_limit / share
                    }
                    None => sh.ramp,
                };
                let ramp = (ramp_s / step_s).max(1.0) as usize;
                let hold_n = (hold / step_s) as usize;
                let begin = centre.saturating_sub(ramp);
                let end = (centre + hold_n + ramp).min(n);
                for (i, v) in clean.iter_mut().enumerate().take(end).skip(begin) {
                    let w = if i < centre {
                        (i - begin) as f64 / ramp as f64
                    } else if i < centre + hold_n {
                        1.0
                    } else {
                        1.0 - (i - centre - hold_n) as f64 / ramp as f64
                    };
                    *v += w.clamp(0.0, 1.0) * (peak - *v);
                }
                point_events.push((begin, end));
            }
            let past = |v: f64| if sh.falling { v <= sh.limit } else { v >= sh.limit };
            for (begin, end) in point_events {
                let first = (begin..end).find(|i| past(clean[*i]));
                let last = (begin..end).rev().find(|i| past(clean[*i]));
                if let (Some(f), Some(l)) = (first, last) {
                    events.push(TrueEvent {
                        point: index,
                        onset: at(begin),
                        start: at(f),
                        end: at(l),
                    });
                }
            }
            let mut values: Vec<f64> = clean.iter().map(|v| v + sh.sigma * normal(&mut rng)).collect();
            let spikes = (sh.spikes_per_day * days).round() as usize;
            for _ in 0..spikes {
                if n < 8 {
                    break;
                }
                let i = rng.random_range(0..n - 4);
                // Nuisance spikes land away from true events, where they would not be nuisance.
                if (i..i + 4).any(|j| past(clean[j])) {
                    continue;
                }
                let len = rng.random_range(sh.spike_len.0..=sh.spike_len.1);
                let v = rng.random_range(sh.spike_value.0..sh.spike_value.1);
                for x in values.iter_mut().skip(i).take(len) {
                    *x = v;
                }
            }
            points.push(ReplayPoint {
                name: format!("MHS-00{}/{}-{}0{}", pi / 2 + 1, sh.prefix, pi + 1, copy + 1),
                unit: sh.unit,
                kind: sh.kind,
                range: sh.range,
                limit: Limit {
                    level: if sh.falling { Level::Low } else { Level::High },
                    value: sh.limit,
                    priority: sh.priority,
                    falling: sh.falling,
                },
                samples: values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Sample {
                        ts: at(i),
                        value: v.clamp(sh.range.0, sh.range.1),
                    })
                    .collect(),
            });
        }
    }
    events.sort_by_key(|e| (e.point, e.start));
    ReplaySet { points, events }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_of_both_sets_gets_its_id_in_order() {
        let day = Duration::from_secs(86_400);
        for set in [
            generate(3, Timestamp::default(), day, Duration::from_secs(60)),
            generate_slow(3, Timestamp::default(), day, Duration::from_secs(60)),
        ] {
            let (table, ids) = set.point_table();
            assert_eq!(ids.len(), set.points.len());
            for (p, id) in set.points.iter().zip(&ids) {
                assert_eq!(table.meta(*id).name().as_ref(), p.name);
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_set() {
        let span = Duration::from_secs(86_400);
        let a = generate(7, Timestamp::default(), span, Duration::from_secs(5));
        let b = generate(7, Timestamp::default(), span, Duration::from_secs(5));
        assert_eq!(a.events, b.events);
        for (x, y) in a.points.iter().zip(&b.points) {
            assert_eq!(x.samples, y.samples);
        }
        let c = generate(8, Timestamp::default(), span, Duration::from_secs(5));
        assert_ne!(a.points[0].samples, c.points[0].samples);
    }

    #[test]
    fn the_slow_set_creeps_up_to_its_events() {
        let step = Duration::from_secs(10);
        let set = generate_slow(3, Timestamp::default(), Duration::from_secs(3 * 86_400), step);
        assert!(set.events.len() >= 10, "{} events", set.events.len());
        for e in &set.events {
            let p = &set.points[e.point];
            // 25 minutes before the crossing the noise-free value was on its way but short of it.
            let before = e.start.minus(Duration::from_secs(25 * 60));
            let i = p.samples.iter().position(|s| s.ts >= before).unwrap_or(0);
            let window: Vec<f64> = p.samples[i..i + 30].iter().map(|s| s.value).collect();
            let mean = window.iter().sum::<f64>() / window.len() as f64;
            let short = if p.limit.falling {
                mean > p.limit.value
            } else {
                mean < p.limit.value
            };
            assert!(short, "{}: {mean} already past {}", p.name, p.limit.value);
        }
    }

    #[test]
    fn every_true_event_is_past_its_set_point_and_inside_the_span() {
        let span = Duration::from_secs(3 * 86_400);
        let set = generate(1, Timestamp::default(), span, Duration::from_secs(2));
        assert_eq!(set.points.len(), PROFILES.len() * COPIES);
        assert!(set.events.len() >= 10, "{} events", set.events.len());
        for e in &set.events {
            let p = &set.points[e.point];
            assert!(e.start <= e.end);
            assert!(e.end <= Timestamp::default().plus(span));
            let inside: Vec<f64> = p
                .samples
                .iter()
                .filter(|s| s.ts >= e.start && s.ts <= e.end)
                .map(|s| s.value)
                .collect();
            let past = inside
                .iter()
                .filter(|v| {
                    if p.limit.falling {
                        **v <= p.limit.value
                    } else {
                        **v >= p.limit.value
                    }
                })
                .count();
            assert!(
                past * 2 > inside.len(),
                "{}: most of a true event is past the set-point",
                p.name
            );
        }
    }
}
