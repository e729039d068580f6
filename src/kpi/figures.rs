//! The figures of one range and one set of alarms, by replaying their transitions.

use std::collections::{HashMap, VecDeque};

use super::types::*;
use super::{CHATTER_RAISES, CHATTER_WINDOW, FLOOD_START_ABOVE, KpiSettings, RATE_WINDOW, STALE_AFTER};
use crate::model::{AlarmEvent, Priority, Timestamp, Transition};

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn ms(nanos: i64) -> i64 {
    nanos / 1_000_000
}

/// One overlay's state for one alarm.
#[derive(Debug, Default)]
struct OverlayTrack {
    since: Option<Timestamp>,
}

/// Running totals of one overlay.
#[derive(Debug, Default)]
struct OverlaySum {
    count: u64,
    nanos: i64,
}

impl OverlaySum {
    fn add(&mut self, since: Timestamp, until: Timestamp, from: Timestamp) {
        let start = since.max(from);
        if until > start {
            self.nanos += until.as_nanos() - start.as_nanos();
        }
    }
}

/// What the replay keeps per alarm.
#[derive(Debug, Default)]
struct Track<'a> {
    last: Option<&'a AlarmEvent>,
    active_since: Option<Timestamp>,
    overlays: [OverlayTrack; 3],
    waiting_ack: Vec<Timestamp>,
    recent: VecDeque<Timestamp>,
    raises: u64,
    annunciated: u64,
    episodes: u64,
    max_in_60s: u64,
    fleeting: u64,
    shortest: i64,
}

fn overlay_flags(e: &AlarmEvent) -> [bool; 3] {
    [e.shelved_until.is_some(), e.out_of_service, e.suppressed]
}

/// Replays `initial` (each alarm's state before `events`) and `events` over `[from, to)` for the
/// alarms `keep` accepts.
pub(super) fn compute<'a>(
    initial: impl Iterator<Item = &'a AlarmEvent>,
    events: &'a [AlarmEvent],
    from: Timestamp,
    to: Timestamp,
    keep: &dyn Fn(&AlarmEvent) -> bool,
    settings: &KpiSettings,
) -> Figures {
    let off = settings.utc_offset;
    let mut tracks: HashMap<&'a str, Track<'a>> = HashMap::new();
    for e in initial.filter(|e| keep(e)) {
        let t = tracks.entry(e.alarm_id.as_str()).or_default();
        t.last = Some(e);
        t.active_since = e.condition_active().then(|| e.raised_at.unwrap_or(e.ts));
        for (o, on) in t.overlays.iter_mut().zip(overlay_flags(e)) {
            o.since = on.then_some(e.ts);
        }
    }
    let fleeting_nanos = nanos(settings.fleeting);
    let stale_nanos = nanos(STALE_AFTER);
    let chatter_nanos = nanos(CHATTER_WINDOW);
    let window = nanos(RATE_WINDOW);
    let mut flood_raises: Vec<Timestamp> = Vec::new();
    let mut buckets: HashMap<i64, u64> = HashMap::new();
    let mut by_priority: HashMap<Priority, u64> = HashMap::new();
    let mut overlays: [OverlaySum; 3] = Default::default();
    let mut delays: Vec<i64> = Vec::new();
    let mut stale: Vec<AgedAlarm> = Vec::new();
    for e in events.iter().filter(|e| keep(e)) {
        let ts = e.ts;
        if ts >= to {
            break;
        }
        let in_range = ts >= from;
        let t = tracks.entry(e.alarm_id.as_str()).or_default();
        t.last = Some(e);
        // Condition: activations, fleeting and stale ones.
        if e.condition_active() {
            if t.active_since.is_none() {
                // A raise starts the activation at its own time; any other transition that finds
                // the condition active (a state restored after a restart) carries its start.
                let since = if e.transition == Transition::Raised {
                    None
                } else {
                    e.raised_at
                };
                t.active_since = Some(since.unwrap_or(ts));
            }
        } else if let Some(since) = t.active_since.take() {
            let lasted = ts.as_nanos() - since.as_nanos();
            if in_range && lasted < fleeting_nanos {
                t.shortest = if t.fleeting == 0 {
                    lasted
                } else {
                    t.shortest.min(lasted)
                };
                t.fleeting += 1;
            }
            if ts > from && lasted > stale_nanos {
                stale.push(aged(e, since, ts, false, off));
            }
        }
        // Overlays.
        for ((o, sum), on) in t.overlays.iter_mut().zip(overlays.iter_mut()).zip(overlay_flags(e)) {
            match (o.since, on) {
                (None, true) => {
                    o.since = Some(ts);
                    sum.count += u64::from(in_range);
                }
                (Some(since), false) => {
                    sum.add(since, ts, from);
                    o.since = None;
                }
                _ => {}
            }
        }
        match e.transition {
            Transition::Raised => {
                while t
                    .recent
                    .front()
                    .is_some_and(|r| ts.as_nanos() - r.as_nanos() >= chatter_nanos)
                {
                    t.recent.pop_front();
                }
                let before = t.recent.len();
                t.recent.push_back(ts);
                if e.annunciated() {
                    flood_raises.push(ts);
                }
                if in_range {
                    t.raises += 1;
                    t.max_in_60s = t.max_in_60s.max(t.recent.len() as u64);
                    if before < CHATTER_RAISES && t.recent.len() >= CHATTER_RAISES {
                        t.episodes += 1;
                    }
                    if e.annunciated() {
                        t.annunciated += 1;
                        t.waiting_ack.push(ts);
                        *buckets.entry(off.interval_of(ts, window)).or_default() += 1;
                        *by_priority.entry(e.priority).or_default() += 1;
                    }
                }
            }
            Transition::Acknowledged => {
                delays.extend(t.waiting_ack.drain(..).map(|r| ts.as_nanos() - r.as_nanos()));
            }
            _ => {}
        }
    }
    // The end of the range: what is still on.
    let mut standing = Vec::new();
    let mut unacknowledged = 0;
    for t in tracks.values() {
        for (o, sum) in t.overlays.iter().zip(overlays.iter_mut()) {
            if let Some(since) = o.since {
                sum.add(since, to, from);
            }
        }
        unacknowledged += t.waiting_ack.len() as u64;
        if let (Some(since), Some(last)) = (t.active_since, t.last) {
            let a = aged(last, since, to, true, off);
            if to.as_nanos() - since.as_nanos() > stale_nanos {
                stale.push(a.clone());
            }
            standing.push(a);
        }
    }
    standing.sort_by(|a, b| (a.since_ms, &a.alarm_id).cmp(&(b.since_ms, &b.alarm_id)));
    stale.sort_by(|a, b| (a.since_ms, &a.alarm_id).cmp(&(b.since_ms, &b.alarm_id)));
    let total: u64 = tracks.values().map(|t| t.annunciated).sum();
    let span = (to.as_nanos() - from.as_nanos()).max(1);
    let (floods, peak_sliding) = super::flood::floods(&mut flood_raises, from, to, window, off);
    let in_flood: i64 = floods.iter().map(|f| f.end_ms - f.start_ms).sum();
    let stale_count = stale.len() as f64;
    Figures {
        from_ms: from.as_millis(),
        to_ms: to.as_millis(),
        rate: rate(total, &buckets, from, to, span, window, peak_sliding, settings),
        flood: Flood {
            pct_time_in_flood: Measure::below(in_flood as f64 * 1e6 * 100.0 / span as f64, 1.0),
            time_in_flood_ms: in_flood,
            periods: floods,
        },
        bad_actors: bad_actors(&tracks, total, settings.top),
        chattering: chattering(&tracks),
        fleeting: fleeting(&tracks, settings),
        stale: Stale {
            alarms: stale,
            count: Measure::below(stale_count, 5.0),
        },
        standing,
        shelved: overlay(&overlays[0]),
        out_of_service: overlay(&overlays[1]),
        suppressed: overlay(&overlays[2]),
        priorities: priorities(&by_priority, total),
        acknowledgement: acknowledgement(delays, unacknowledged),
    }
}

fn overlay(sum: &OverlaySum) -> Overlay {
    Overlay {
        count: sum.count,
        duration_ms: ms(sum.nanos),
    }
}

fn aged(e: &AlarmEvent, since: Timestamp, until: Timestamp, ongoing: bool, off: super::UtcOffset) -> AgedAlarm {
    AgedAlarm {
        alarm_id: e.alarm_id.clone(),
        subject: e.subject.clone(),
        hazard_source: e.hazard_source.clone(),
        priority: e.priority,
        since_ms: since.as_millis(),
        since_local: off.format(since),
        age_ms: ms(until.as_nanos() - since.as_nanos()),
        ongoing,
        annunciated: ongoing && e.annunciated(),
    }
}

#[allow(clippy::too_many_arguments)]
fn rate(
    total: u64,
    buckets: &HashMap<i64, u64>,
    from: Timestamp,
    to: Timestamp,
    span: i64,
    window: i64,
    peak_sliding: u64,
    settings: &KpiSettings,
) -> Rate {
    let off = settings.utc_offset;
    let last = Timestamp::from_nanos((to.as_nanos() - 1).max(from.as_nanos()));
    let intervals = (off.interval_of(last, window) - off.interval_of(from, window) + 1).max(1) as u64;
    let over = |n: u64| buckets.values().filter(|&&c| c > n).count() as f64 * 100.0 / intervals as f64;
    let peak = buckets.values().copied().max().unwrap_or(0);
    Rate {
        raises: total,
        intervals,
        average_per_10min: Measure::at_most(total as f64 * window as f64 / span as f64, 1.0, Some(2.0)),
        peak_per_10min: Measure::at_most(peak as f64, FLOOD_START_ABOVE as f64, None),
        peak_sliding_10min: peak_sliding,
        pct_intervals_over_1: over(1),
        pct_intervals_over_2: over(2),
        pct_intervals_over_10: Measure::below(over(FLOOD_START_ABOVE as u64), 1.0),
    }
}

fn bad_actors(tracks: &HashMap<&str, Track<'_>>, total: u64, top: usize) -> BadActors {
    let mut list: Vec<(&str, &Track<'_>)> = tracks
        .iter()
        .filter(|(_, t)| t.annunciated > 0)
        .map(|(id, t)| (*id, t))
        .collect();
    list.sort_by(|a, b| b.1.annunciated.cmp(&a.1.annunciated).then(a.0.cmp(b.0)));
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        }
    };
    let top: Vec<Actor> = list
        .into_iter()
        .take(top)
        .filter_map(|(id, t)| {
            let last = t.last?;
            Some(Actor {
                alarm_id: id.to_string(),
                subject: last.subject.clone(),
                hazard_source: last.hazard_source.clone(),
                priority: last.priority,
                raises: t.annunciated,
                share_pct: pct(t.annunciated),
            })
        })
        .collect();
    let share = Measure::at_most(pct(top.iter().map(|a| a.raises).sum()), 5.0, None);
    BadActors {
        top,
        top_share_pct: if total == 0 { share.unjudged() } else { share },
    }
}

fn chattering(tracks: &HashMap<&str, Track<'_>>) -> Chattering {
    let mut alarms: Vec<ChatterAlarm> = tracks
        .iter()
        .filter(|(_, t)| t.episodes > 0)
        .map(|(id, t)| ChatterAlarm {
            alarm_id: id.to_string(),
            episodes: t.episodes,
            max_in_60s: t.max_in_60s,
            raises: t.raises,
        })
        .collect();
    alarms.sort_by(|a, b| b.episodes.cmp(&a.episodes).then(a.alarm_id.cmp(&b.alarm_id)));
    let count = Measure::at_most(alarms.len() as f64, 0.0, None);
    Chattering { alarms, count }
}

fn fleeting(tracks: &HashMap<&str, Track<'_>>, settings: &KpiSettings) -> Fleeting {
    let mut alarms: Vec<FleetingAlarm> = tracks
        .iter()
        .filter(|(_, t)| t.fleeting > 0)
        .map(|(id, t)| FleetingAlarm {
            alarm_id: id.to_string(),
            activations: t.fleeting,
            shortest_ms: ms(t.shortest),
        })
        .collect();
    alarms.sort_by(|a, b| b.activations.cmp(&a.activations).then(a.alarm_id.cmp(&b.alarm_id)));
    let count = Measure::at_most(alarms.len() as f64, 0.0, None);
    Fleeting {
        threshold_ms: ms(nanos(settings.fleeting)),
        alarms,
        count,
    }
}

fn priorities(by: &HashMap<Priority, u64>, total: u64) -> Priorities {
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        }
    };
    let get = |p| by.get(&p).copied().unwrap_or(0);
    let judged = |m: Measure| if total == 0 { m.unjudged() } else { m };
    Priorities {
        counts: Priority::ALL
            .iter()
            .map(|&p| PriorityCount {
                priority: p,
                count: get(p),
                pct: pct(get(p)),
            })
            .collect(),
        low_pct: Measure::about(pct(get(Priority::Low)), 80.0),
        medium_pct: judged(Measure::at_most(pct(get(Priority::Medium)), 15.0, Some(30.0))),
        high_pct: judged(Measure::at_most(
            pct(get(Priority::High) + get(Priority::Critical)),
            5.0,
            Some(10.0),
        )),
    }
}

/// The value at rank ⌈p × n⌉ of sorted `v` (nearest-rank percentile).
fn nearest_rank(v: &[i64], p: u64) -> Option<i64> {
    let n = v.len() as u64;
    let rank = (p * n).div_ceil(100).max(1);
    v.get(usize::try_from(rank - 1).ok()?).copied()
}

fn acknowledgement(mut delays: Vec<i64>, unacknowledged: u64) -> Acknowledgement {
    delays.sort_unstable();
    Acknowledgement {
        acknowledged: delays.len() as u64,
        median_ms: nearest_rank(&delays, 50).map(ms),
        p90_ms: nearest_rank(&delays, 90).map(ms),
        unacknowledged,
    }
}

/// Raises of the gateway's own fault alarms in `[from, to)`.
pub(super) fn self_diagnostic(events: &[AlarmEvent], from: Timestamp, to: Timestamp) -> SelfDiagnostic {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for e in events {
        if e.condition.is_self_diagnostic() && e.transition == Transition::Raised && e.ts >= from && e.ts < to {
            *counts.entry(e.alarm_id.as_str()).or_default() += 1;
        }
    }
    let mut alarms: Vec<AlarmCount> = counts
        .into_iter()
        .map(|(id, count)| AlarmCount {
            alarm_id: id.to_string(),
            count,
        })
        .collect();
    alarms.sort_by(|a, b| b.count.cmp(&a.count).then(a.alarm_id.cmp(&b.alarm_id)));
    SelfDiagnostic {
        raises: alarms.iter().map(|a| a.count).sum(),
        alarms,
    }
}
