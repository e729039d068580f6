//! Instrument faults on top of the replay set: stuck transmitters, a flatline after a
//! communication loss, loops pinned at a range end and impossible jumps, each with its known
//! start and end, so `benches/suspect.rs` can count exactly how fast each is flagged and how
//! often a healthy instrument is doubted. Values are rounded to each instrument's resolution
//! first (a transmitter's register holds a scaled integer): a healthy value then repeats now and
//! then, as a real one does, and a stuck check must not take that for a fault.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::replay::{ReplayPoint, ReplaySet, generate};
use crate::model::{PointKind, Quality, Timestamp};

/// What was done to the instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The value froze where it was.
    Stuck,
    /// The link was lost, and the value came back frozen where it was before (a DTU repeating
    /// its cache).
    StuckAfterLoss,
    /// The value sat at an end of the measuring range (a broken loop, a saturated cell).
    Pinned,
    /// The value stepped by a large share of the span and back.
    Jump,
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    /// Index into the set's points.
    pub point: usize,
    /// What.
    pub kind: FaultKind,
    /// The first faulty reading.
    pub start: Timestamp,
    /// The last faulty reading.
    pub end: Timestamp,
}

/// The replay set with faults: each reading's quality beside it (`comm_fault` during a loss).
#[derive(Debug, Clone)]
pub struct FaultySet {
    /// Points, values rounded to resolution, faults applied.
    pub points: Vec<ReplayPoint>,
    /// Quality of each sample, by point.
    pub qualities: Vec<Vec<Quality>>,
    /// The faults, by point then time.
    pub faults: Vec<InjectedFault>,
}

impl FaultySet {
    /// The set as a plain replay set (for its point table).
    pub fn as_replay(&self) -> ReplaySet {
        ReplaySet {
            points: self.points.clone(),
            events: Vec::new(),
        }
    }
}

/// Resolution of the instrument of each kind in the set.
fn resolution(kind: PointKind) -> f64 {
    match kind {
        PointKind::Pressure => 0.001,
        PointKind::Level | PointKind::Oxygen => 0.01,
        _ => 0.1,
    }
}

/// The faults a kind gets: those its default checks are for (see `docs/suspect-data.md`).
fn faults_for(kind: PointKind) -> &'static [FaultKind] {
    match kind {
        PointKind::Temperature => &[
            FaultKind::Stuck,
            FaultKind::StuckAfterLoss,
            FaultKind::Pinned,
            FaultKind::Jump,
        ],
        PointKind::Pressure => &[FaultKind::Stuck, FaultKind::StuckAfterLoss, FaultKind::Pinned],
        PointKind::Level => &[FaultKind::Jump, FaultKind::Pinned],
        PointKind::Gas | PointKind::ToxicGas | PointKind::Oxygen => &[FaultKind::Pinned],
        _ => &[],
    }
}

/// The noise set for `seed` ([`generate`]) with two faults of each kind its points' checks are
/// for, per point and week, in slots of their own.
pub fn generate_faulty(seed: u64, start: Timestamp, span: Duration, step: Duration) -> FaultySet {
    let set = generate(seed, start, span, step);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let step_s = step.as_secs_f64().max(0.001);
    let weeks = span.as_secs_f64() / (7.0 * 86_400.0);
    let mut points = Vec::new();
    let mut qualities = Vec::new();
    let mut faults = Vec::new();
    for (index, mut p) in set.points.into_iter().enumerate() {
        let res = resolution(p.kind);
        for s in &mut p.samples {
            s.value = (s.value / res).round() * res;
        }
        let n = p.samples.len();
        let mut quality = vec![Quality::Good; n];
        let kinds: Vec<FaultKind> = faults_for(p.kind)
            .iter()
            .flat_map(|k| std::iter::repeat_n(*k, (2.0 * weeks).round().max(1.0) as usize))
            .collect();
        let slot = n / kinds.len().max(1);
        let (lo, hi) = p.range;
        for (k, kind) in kinds.iter().enumerate() {
            // Minutes a fault lasts.
            let minutes = match kind {
                FaultKind::Stuck | FaultKind::StuckAfterLoss => rng.random_range(180.0..360.0),
                FaultKind::Pinned => rng.random_range(5.0..30.0),
                FaultKind::Jump => rng.random_range(5.0..20.0),
            };
            let len = ((minutes * 60.0 / step_s) as usize).max(2);
            if slot <= len + 2 {
                continue;
            }
            let first = k * slot + rng.random_range(1..slot - len - 1);
            let last = first + len - 1;
            match kind {
                FaultKind::Stuck => {
                    let v = p.samples[first - 1].value;
                    p.samples[first..=last].iter_mut().for_each(|s| s.value = v);
                }
                FaultKind::StuckAfterLoss => {
                    // A quarter of the time without answer, then the old value again.
                    let v = p.samples[first - 1].value;
                    let lost = len / 4;
                    let faulty = quality[first..=last].iter_mut().zip(&mut p.samples[first..=last]);
                    for (k, (q, s)) in faulty.enumerate() {
                        if k < lost {
                            *q = Quality::CommFault;
                            s.value = f64::NAN;
                        } else {
                            s.value = v;
                        }
                    }
                }
                FaultKind::Pinned => {
                    // Oxygen cells die to zero; the others saturate at full scale.
                    let v = if p.kind == PointKind::Oxygen { lo } else { hi };
                    p.samples[first..=last].iter_mut().for_each(|s| s.value = v);
                }
                FaultKind::Jump => {
                    // 20 to 40 % of the span, away from the nearer end, held, then back.
                    let share = rng.random_range(0.2..0.4) * (hi - lo);
                    let mid = (lo + hi) / 2.0;
                    for s in &mut p.samples[first..=last] {
                        let up = s.value < mid;
                        s.value = ((s.value + if up { share } else { -share }) / res).round() * res;
                    }
                }
            }
            faults.push(InjectedFault {
                point: index,
                kind: *kind,
                start: p.samples[first].ts,
                end: p.samples[last].ts,
            });
        }
        points.push(p);
        qualities.push(quality);
    }
    faults.sort_by_key(|f| (f.point, f.start));
    FaultySet {
        points,
        qualities,
        faults,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_where_the_set_says() {
        let step = Duration::from_secs(5);
        let f = generate_faulty(11, Timestamp::default(), Duration::from_secs(7 * 86_400), step);
        assert!(!f.faults.is_empty());
        for fault in &f.faults {
            let p = &f.points[fault.point];
            let i0 = p.samples.iter().position(|s| s.ts == fault.start).unwrap();
            let i1 = p.samples.iter().position(|s| s.ts == fault.end).unwrap();
            match fault.kind {
                FaultKind::Stuck => {
                    assert!(p.samples[i0..=i1].iter().all(|s| s.value == p.samples[i0 - 1].value));
                }
                FaultKind::StuckAfterLoss => {
                    assert_eq!(f.qualities[fault.point][i0], Quality::CommFault);
                    assert_eq!(p.samples[i1].value, p.samples[i0 - 1].value);
                }
                FaultKind::Pinned => {
                    let v = p.samples[i0].value;
                    assert!(v == p.range.0 || v == p.range.1, "{v}");
                }
                FaultKind::Jump => {
                    let d = (p.samples[i0].value - p.samples[i0 - 1].value).abs();
                    assert!(d >= 0.15 * (p.range.1 - p.range.0), "{d}");
                }
            }
        }
    }
}
