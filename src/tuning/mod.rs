//! Tuning recommendations for nuisance alarms: for a threshold alarm that chatters or fleets,
//! the deadband and on/off delays that would have removed its nuisance raises over its own
//! history without delaying any of its true alarms by more than a stated bound. Never applied
//! automatically: an instrument engineer reads the suggestion beside the current settings and
//! changes the configuration if it is right.
//!
//! Design: the point's history is replayed through the same limit test and debounce the rules
//! engine uses ([`crate::rules::threshold::tripped`], [`crate::rules::debounce::Debounce`]),
//! once per candidate of a small grid. A deadband and an off-delay only change when an alarm
//! clears, so they never delay a raise; only an on-delay does, and it is capped by the bound.
//! True alarms are told from nuisance ones by persistence: an episode (raises of the current
//! settings less than the chattering window apart) is true when the value stayed past the
//! set-point for [`Policy::persist`] without a break. Every true episode must still be raised
//! by the suggestion, no later than the bound after the current settings raised it.

pub mod faults;
pub mod replay;

use std::time::Duration;

use serde::Serialize;

use crate::model::Timestamp;
use crate::rules::Limit;
use crate::rules::debounce::Debounce;
use crate::rules::flood::CHATTER_WINDOW;
use crate::rules::threshold::tripped;

/// Raises of one alarm within [`CHATTER_WINDOW`] from which it chatters (ISA-18.2, EEMUA 191).
pub const CHATTER_RAISES: usize = 3;

/// One trusted value of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When it was read.
    pub ts: Timestamp,
    /// The value in engineering units.
    pub value: f64,
}

/// The settings of a threshold alarm that shape when it raises and clears.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Settings {
    /// Deadband in engineering units: how far back past the set-point the value must go to
    /// clear.
    pub deadband: f64,
    /// How long the condition must hold before the alarm is raised.
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub on_delay: Duration,
    /// How long the condition must be gone before the alarm clears.
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub off_delay: Duration,
}

/// Durations as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// One activation of a simulated alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// When it was raised.
    pub raised: Timestamp,
    /// When it cleared; `None` if still active at the end of the history.
    pub cleared: Option<Timestamp>,
}

/// Replays `samples` (in time order) through one limit with `s`; the activations that
/// result. Delays expire at their exact due time, as the engine's tick lets them, even when
/// a reading arrives at that same instant.
pub fn simulate(samples: &[Sample], limit: &Limit, s: &Settings) -> Vec<Activation> {
    let mut out: Vec<Activation> = Vec::new();
    let mut deb = Debounce::default();
    let flip = |active: bool, ts: Timestamp, out: &mut Vec<Activation>| {
        if active {
            out.push(Activation {
                raised: ts,
                cleared: None,
            });
        } else if let Some(last) = out.last_mut() {
            last.cleared = Some(ts);
        }
    };
    for x in samples {
        if !x.value.is_finite() {
            continue;
        }
        if let Some(since) = deb.pending_since() {
            let delay = if deb.is_active() { s.off_delay } else { s.on_delay };
            let due = since.plus(delay);
            // The engine's tick may come at the due time itself, before a reading of that
            // instant: count the delay as run out then, the way that raises soonest.
            if due <= x.ts
                && let Some(active) = deb.expire(due, s.on_delay, s.off_delay)
            {
                flip(active, due, &mut out);
            }
        }
        let trip = tripped(limit, s.deadband, deb.is_active(), x.value);
        if let Some(active) = deb.update(trip, x.ts, s.on_delay, s.off_delay) {
            flip(active, x.ts, &mut out);
        }
    }
    out
}

/// Raises that make their alarm chatter: each raise that is at least the
/// [`CHATTER_RAISES`]th within [`CHATTER_WINDOW`].
pub fn chattering(raises: &[Timestamp]) -> usize {
    let mut first = 0;
    let mut n = 0;
    for (i, t) in raises.iter().enumerate() {
        while t.since(raises[first]) >= CHATTER_WINDOW {
            first += 1;
        }
        if i + 1 - first >= CHATTER_RAISES {
            n += 1;
        }
    }
    n
}

/// The noise of a series: a robust standard deviation of the value from one sample to the
/// next (median absolute difference scaled for normal noise), unmoved by true excursions.
pub fn noise(samples: &[Sample]) -> f64 {
    let mut d: Vec<f64> = samples
        .windows(2)
        .map(|w| (w[1].value - w[0].value).abs())
        .filter(|x| x.is_finite())
        .collect();
    if d.is_empty() {
        return 0.0;
    }
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    // The difference of two independent normal samples has σ·√2; its median absolute value
    // is 0.6745 of that.
    *m / (0.6745 * std::f64::consts::SQRT_2)
}

/// What decides a recommendation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Longest a true alarm may be raised later than the current settings raise it.
    pub max_delay: Duration,
    /// How long the value must stay past the set-point without a break for an episode to count
    /// as a true alarm.
    pub persist: Duration,
    /// Largest deadband to suggest, in engineering units.
    pub max_deadband: f64,
}

impl Policy {
    /// The default policy for a point measuring `range` around `limit`: true alarms delayed by
    /// at most 10 s, true when past the set-point for 60 s, a deadband of at most 5 % of the
    /// range (EEMUA 191's largest typical figure), or of the set-point without a range.
    pub fn for_point(range: Option<(f64, f64)>, limit: f64) -> Self {
        let span = match range {
            Some((lo, hi)) if hi > lo => hi - lo,
            _ => limit.abs().max(1.0),
        };
        Self {
            max_delay: Duration::from_secs(10),
            persist: Duration::from_secs(60),
            max_deadband: 0.05 * span,
        }
    }
}

/// How an alarm behaved over its history under one set of settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// Raises.
    pub raises: usize,
    /// Raises that made it chatter (3 or more in 60 s).
    pub chattering: usize,
    /// True alarms (episodes of the current settings that persisted) raised.
    pub true_raised: usize,
    /// True alarms not raised at all.
    pub true_missed: usize,
    /// Longest delay added to a true alarm's raise, in milliseconds.
    pub max_added_delay_ms: u64,
    /// Median delay added to true alarms' raises, in milliseconds.
    pub median_added_delay_ms: u64,
    /// Share of the replayed time the alarm was active, in percent: a deadband that keeps an
    /// alarm standing for hours shows here (a process run at its set-point needs the set-point
    /// reviewed, not a wider band).
    pub active_pct: f64,
}

/// A suggestion for one alarm.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    /// The settings in force.
    pub current: Settings,
    /// How the alarm behaved with them.
    pub current_outcome: Outcome,
    /// The suggested settings (equal to `current` when nothing better keeps the bound).
    pub suggested: Settings,
    /// How it would have behaved with them.
    pub suggested_outcome: Outcome,
    /// Estimated noise (one standard deviation) of the value.
    pub noise: f64,
    /// Samples replayed.
    pub samples: usize,
}

/// A true alarm: when the current settings first raised it.
#[derive(Debug, Clone, Copy)]
struct TrueEpisode {
    start: Timestamp,
    end: Timestamp,
}

/// Groups the current activations into episodes and keeps those in which the value stayed
/// past the set-point for `persist` without a break.
fn true_episodes(samples: &[Sample], limit: &Limit, acts: &[Activation], persist: Duration) -> Vec<TrueEpisode> {
    let last_ts = samples.last().map_or(Timestamp::default(), |s| s.ts);
    let mut episodes: Vec<TrueEpisode> = Vec::new();
    for a in acts {
        let end = a.cleared.unwrap_or(last_ts);
        match episodes.last_mut() {
            Some(e) if a.raised.since(e.end) < CHATTER_WINDOW => e.end = e.end.max(end),
            _ => episodes.push(TrueEpisode { start: a.raised, end }),
        }
    }
    let past = |v: f64| tripped(limit, 0.0, false, v);
    episodes.retain(|e| {
        let from = samples.partition_point(|s| s.ts < e.start);
        let mut run: Option<Timestamp> = None;
        for s in samples[from..].iter().take_while(|s| s.ts <= e.end) {
            if past(s.value) {
                let since = *run.get_or_insert(s.ts);
                if s.ts.since(since) >= persist {
                    return true;
                }
            } else {
                run = None;
            }
        }
        false
    });
    episodes
}

/// Scores `acts` against the true episodes.
fn outcome(acts: &[Activation], truth: &[TrueEpisode], span: (Timestamp, Timestamp)) -> Outcome {
    let total = span.1.since(span.0).as_secs_f64();
    let active: f64 = acts
        .iter()
        .map(|a| a.cleared.unwrap_or(span.1).since(a.raised).as_secs_f64())
        .sum();
    let active_pct = if total > 0.0 { 100.0 * active / total } else { 0.0 };
    let raises: Vec<Timestamp> = acts.iter().map(|a| a.raised).collect();
    let mut delays: Vec<u64> = Vec::new();
    let mut missed = 0;
    for e in truth {
        // The first raise at or after the episode's start, or an activation already standing
        // then, answers it; one after its end does not.
        let standing = acts
            .iter()
            .any(|a| a.raised <= e.start && a.cleared.is_none_or(|c| c > e.start));
        let first = raises.iter().find(|t| **t >= e.start && **t <= e.end);
        match (standing, first) {
            (true, _) => delays.push(0),
            (false, Some(t)) => delays.push(u64::try_from(t.since(e.start).as_millis()).unwrap_or(u64::MAX)),
            (false, None) => missed += 1,
        }
    }
    delays.sort_unstable();
    let median = match delays.len() {
        0 => 0,
        n if n % 2 == 1 => delays[n / 2],
        n => (delays[n / 2 - 1] + delays[n / 2]) / 2,
    };
    Outcome {
        raises: raises.len(),
        chattering: chattering(&raises),
        true_raised: truth.len() - missed,
        true_missed: missed,
        max_added_delay_ms: delays.last().copied().unwrap_or(0),
        median_added_delay_ms: median,
        active_pct,
    }
}

/// On-delays tried, in seconds.
const ON_DELAYS: [u64; 8] = [0, 1, 2, 3, 5, 10, 15, 30];
/// Off-delays tried, in seconds.
const OFF_DELAYS: [u64; 7] = [0, 5, 10, 15, 30, 60, 120];
/// Deadbands tried, in multiples of the noise.
const NOISE_MULTIPLES: [f64; 6] = [0.0, 1.0, 2.0, 3.0, 4.0, 6.0];
/// Fewest raises within this share of the best still count as the best, so the least
/// intrusive settings win over ones that save a raise or two more.
const NEAR_BEST: f64 = 0.05;

/// The suggestion for one limit over `samples` (time order, trusted values only).
pub fn recommend(samples: &[Sample], limit: &Limit, current: &Settings, policy: &Policy) -> Recommendation {
    let noise = noise(samples);
    let acts = simulate(samples, limit, current);
    let truth = true_episodes(samples, limit, &acts, policy.persist);
    let span = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => (a.ts, b.ts),
        _ => (Timestamp::default(), Timestamp::default()),
    };
    let current_outcome = outcome(&acts, &truth, span);
    let mut deadbands: Vec<f64> = NOISE_MULTIPLES
        .iter()
        .map(|k| k * noise)
        .filter(|d| *d <= policy.max_deadband)
        .collect();
    deadbands.push(current.deadband);
    let mut tried: Vec<(Settings, Outcome)> = Vec::new();
    for on in ON_DELAYS.iter().map(|s| Duration::from_secs(*s)) {
        if on > policy.max_delay.max(current.on_delay) {
            continue;
        }
        for off in OFF_DELAYS.iter().map(|s| Duration::from_secs(*s)) {
            for &deadband in &deadbands {
                let s = Settings {
                    deadband: deadband.max(current.deadband),
                    on_delay: on.max(current.on_delay),
                    off_delay: off.max(current.off_delay),
                };
                if tried.iter().any(|(t, _)| *t == s) {
                    continue;
                }
                let o = outcome(&simulate(samples, limit, &s), &truth, span);
                let keeps_bound = o.true_missed == 0
                    && Duration::from_millis(o.max_added_delay_ms)
                        <= policy
                            .max_delay
                            .max(Duration::from_millis(current_outcome.max_added_delay_ms));
                if keeps_bound {
                    tried.push((s, o));
                }
            }
        }
    }
    let best = tried
        .iter()
        .map(|(_, o)| o.raises)
        .min()
        .unwrap_or(current_outcome.raises);
    let good_enough = best + ((best as f64) * NEAR_BEST).floor() as usize;
    // Least intrusive first: the on-delay (it delays true alarms), then the off-delay (it holds
    // alarms after the condition is gone), then the deadband.
    let pick = tried
        .iter()
        .filter(|(_, o)| o.raises <= good_enough)
        .min_by(|(a, _), (b, _)| {
            a.on_delay
                .cmp(&b.on_delay)
                .then(a.off_delay.cmp(&b.off_delay))
                .then(a.deadband.total_cmp(&b.deadband))
        });
    let (suggested, suggested_outcome) = match pick {
        Some((s, o)) if o.raises < current_outcome.raises => (*s, *o),
        _ => (*current, current_outcome),
    };
    Recommendation {
        current: *current,
        current_outcome,
        suggested,
        suggested_outcome,
        noise,
        samples: samples.len(),
    }
}

#[cfg(test)]
mod tests;
