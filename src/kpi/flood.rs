//! Flood periods (EEMUA 191) from annunciated raise times: a sweep of a trailing 10-minute
//! window with hysteresis (on above 10, off below 5).

use super::types::FloodPeriod;
use super::{FLOOD_END_BELOW, FLOOD_START_ABOVE, UtcOffset};
use crate::model::Timestamp;

/// Sweeps the annunciated raises: each enters the trailing window at its time and leaves it one
/// window later; at each instant every leave and enter is applied before the count is judged.
/// Returns the floods overlapping `[from, to)` and the highest count within it.
pub(super) fn floods(
    raises: &mut [Timestamp],
    from: Timestamp,
    to: Timestamp,
    window: i64,
    off: UtcOffset,
) -> (Vec<FloodPeriod>, u64) {
    raises.sort_unstable();
    let (mut enter, mut leave, mut count) = (0usize, 0usize, 0usize);
    let mut open: Option<(Timestamp, u64)> = None;
    let mut out = Vec::new();
    let mut peak_in_range = 0u64;
    let push = |out: &mut Vec<FloodPeriod>, start: Timestamp, end: Timestamp, peak: u64, ongoing: bool| {
        let (s, e) = (start.max(from), end.min(to));
        if e <= s {
            return;
        }
        let n = raises.iter().filter(|r| **r >= s && **r < e).count() as u64;
        out.push(FloodPeriod {
            start_ms: s.as_millis(),
            end_ms: e.as_millis(),
            start_local: off.format(s),
            end_local: off.format(e),
            raises: n,
            peak_10min: peak,
            ongoing,
        });
    };
    loop {
        let next_enter = raises.get(enter).copied();
        let next_leave = raises.get(leave).map(|r| Timestamp::from_nanos(r.as_nanos() + window));
        let now = match (next_enter, next_leave) {
            (Some(a), Some(b)) => a.min(b),
            (None, Some(b)) => b,
            _ => break,
        };
        if now >= to {
            break;
        }
        while raises
            .get(leave)
            .is_some_and(|r| r.as_nanos() + window == now.as_nanos())
        {
            leave += 1;
            count -= 1;
        }
        while raises.get(enter) == Some(&now) {
            enter += 1;
            count += 1;
        }
        if now >= from {
            peak_in_range = peak_in_range.max(count as u64);
        }
        match open {
            None if count > FLOOD_START_ABOVE => open = Some((now, count as u64)),
            Some((start, _)) if count < FLOOD_END_BELOW => {
                let peak = open.map_or(0, |o| o.1);
                push(&mut out, start, now, peak, false);
                open = None;
            }
            Some((start, peak)) => open = Some((start, peak.max(count as u64))),
            None => {}
        }
    }
    if let Some((start, peak)) = open {
        push(&mut out, start, to, peak, true);
    }
    (out, peak_in_range)
}
