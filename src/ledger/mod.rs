//! The completeness ledger (数据完整率 / 在线率 台账): for each point, hazard source or the whole
//! gateway and each site-local day or shift, the readings expected, the good readings received,
//! every gap with its cause, the online rate and the completeness the regulator judges the
//! enterprise by. Pure: history counts, quality changes and gateway downtime in, rows out
//! (formulas and sources in `docs/completeness.md`).

mod buckets;
mod types;

pub use buckets::{Bucket, By, buckets};
pub use types::*;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{Quality, Timestamp};

/// Good readings counted in one minute of one point (from the history's minute rollups, which
/// count every reading, not only the ones raw history keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteCount {
    /// Start of the minute.
    pub minute: Timestamp,
    /// Good readings.
    pub good: u64,
    /// Readings that were not good.
    pub bad: u64,
}

/// What the ledger needs of one point.
#[derive(Debug, Clone)]
pub struct PointInput {
    /// Point id.
    pub name: String,
    /// Its hazard source, if any.
    pub hazard_source: Option<String>,
    /// How often it is expected to deliver a reading.
    pub interval: Duration,
    /// Its minutes in the period, oldest first.
    pub minutes: Vec<MinuteCount>,
    /// Its quality changes (raw history keeps every change), oldest first, with the last one
    /// before the period first if there is one.
    pub qualities: Vec<(Timestamp, Quality)>,
}

/// A time the gateway itself was not running, from its run log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downtime {
    /// Last time it was known to run.
    pub start: Timestamp,
    /// When it started again.
    pub end: Timestamp,
}

/// How the rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// One row per point and bucket.
    Point,
    /// One row per hazard source and bucket (points without one are left out).
    HazardSource,
    /// One row per bucket for the whole gateway.
    Gateway,
}

/// Expected readings of a point polled every `interval` in `[from, to)`: the instants
/// `k × interval` (counted from the epoch) inside it, so adjacent periods add up exactly.
pub fn expected(interval: Duration, from: Timestamp, to: Timestamp) -> u64 {
    let i = i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX).max(1);
    let ceil = |t: i64| t.div_euclid(i) + i64::from(t.rem_euclid(i) != 0);
    u64::try_from(ceil(to.as_nanos()) - ceil(from.as_nanos())).unwrap_or(0)
}

/// Cause of the time a point spends with `quality`, `None` when it is online and valid.
fn cause_of(quality: Option<Quality>) -> Option<GapCause> {
    match quality {
        Some(Quality::Good | Quality::Uncertain | Quality::Suspect) => None,
        Some(Quality::DecodeError | Quality::OutOfRange) => Some(GapCause::SensorFault),
        // Nothing known yet, no answer, or nothing arrived in time: the point was not reachable.
        None | Some(Quality::CommFault | Quality::Stale) => Some(GapCause::Communication),
    }
}

/// Every gap of one point in `[from, to)`, oldest first: the spans its quality was not good,
/// with the gateway's downtime cut out of them and added as `gateway_down` gaps.
pub fn gaps(point: &PointInput, down: &[Downtime], from: Timestamp, to: Timestamp) -> Vec<Gap> {
    // Quality spans.
    let mut spans: Vec<Gap> = Vec::new();
    let mut state: Option<Quality> = None;
    let mut since = from;
    let push = |spans: &mut Vec<Gap>, state: Option<Quality>, start: Timestamp, end: Timestamp| {
        if let Some(cause) = cause_of(state)
            && end > start
        {
            match spans.last_mut() {
                Some(last) if last.cause == cause && last.end == start => last.end = end,
                _ => spans.push(Gap { start, end, cause }),
            }
        }
    };
    for &(ts, q) in &point.qualities {
        if ts <= from {
            state = Some(q);
            continue;
        }
        if ts >= to {
            break;
        }
        push(&mut spans, state, since, ts);
        state = Some(q);
        since = ts;
    }
    push(&mut spans, state, since, to);
    // Downtime, clipped to the period.
    let mut down: Vec<Gap> = down
        .iter()
        .map(|d| Gap {
            start: d.start.max(from),
            end: d.end.min(to),
            cause: GapCause::GatewayDown,
        })
        .filter(|g| g.end > g.start)
        .collect();
    down.sort_by_key(|g| g.start);
    // Overlapping downtimes (a clock stepped back between runs) count once.
    down.dedup_by(|next, prev| {
        let overlaps = next.start <= prev.end;
        if overlaps {
            prev.end = prev.end.max(next.end);
        }
        overlaps
    });
    let mut out: Vec<Gap> = Vec::new();
    for span in spans {
        let mut start = span.start;
        for d in &down {
            if d.end <= start || d.start >= span.end {
                continue;
            }
            if d.start > start {
                out.push(Gap {
                    start,
                    end: d.start,
                    ..span
                });
            }
            start = start.max(d.end);
        }
        if span.end > start {
            out.push(Gap { start, ..span });
        }
    }
    out.extend(down);
    out.sort_by_key(|g| (g.start, g.end));
    out
}

/// Most gaps listed in one answer (the totals still count every one).
pub const MAX_GAPS: usize = 5_000;

/// The ledger of `points` over `buckets`, grouped by `group`; `gateway` names the gateway's row.
pub fn ledger(points: &[PointInput], down: &[Downtime], buckets: &[Bucket], group: Group, gateway: &str) -> Ledger {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Ledger::default();
    };
    let (from, to) = (first.start, last.end);
    let mut rows: BTreeMap<(String, usize), Row> = BTreeMap::new();
    let mut listed = 0usize;
    let mut truncated = false;
    for p in points {
        let key = match group {
            Group::Point => p.name.clone(),
            Group::HazardSource => match &p.hazard_source {
                Some(h) => h.clone(),
                None => continue,
            },
            Group::Gateway => gateway.to_string(),
        };
        let point_gaps = gaps(p, down, from, to);
        for (i, b) in buckets.iter().enumerate() {
            let row = rows.entry((key.clone(), i)).or_insert_with(|| Row::new(&key, b));
            row.points += 1;
            row.period_ms += b.end.since(b.start).as_millis() as u64;
            row.expected += expected(p.interval, b.start, b.end);
            // Minutes and gaps are sorted and gaps do not overlap: each bucket finds its own
            // by binary search, so a month of shifts costs no more than one pass over them.
            let first = p.minutes.partition_point(|m| m.minute < b.start);
            for m in p.minutes[first..].iter().take_while(|m| m.minute < b.end) {
                row.received_good += m.good;
                row.received_bad += m.bad;
            }
            let first = point_gaps.partition_point(|g| g.end <= b.start);
            for g in point_gaps[first..].iter().take_while(|g| g.start < b.end) {
                let (start, end) = (g.start.max(b.start), g.end.min(b.end));
                let ms = end.since(start).as_millis() as u64;
                match g.cause {
                    GapCause::Communication => row.gap_ms.communication += ms,
                    GapCause::SensorFault => row.gap_ms.sensor_fault += ms,
                    GapCause::GatewayDown => row.gap_ms.gateway_down += ms,
                }
                row.gap_count += 1;
                if listed < MAX_GAPS {
                    listed += 1;
                    row.gaps.push(GapRow {
                        point: p.name.clone(),
                        start_ms: start.as_millis(),
                        end_ms: end.as_millis(),
                        cause: g.cause,
                    });
                } else {
                    truncated = true;
                }
            }
        }
    }
    let mut rows: Vec<Row> = rows.into_values().map(Row::finish).collect();
    rows.sort_by(|a, b| (a.start_ms, &a.key).cmp(&(b.start_ms, &b.key)));
    Ledger {
        from_ms: from.as_millis(),
        to_ms: to.as_millis(),
        rows,
        gaps_truncated: truncated,
        unread_points: Vec::new(),
        regulator_spans: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
