//! Site-local days and shifts of a period, on the KPI calendar ([`crate::kpi::UtcOffset`]).

use crate::kpi::{UtcOffset, day_label};
use crate::model::Timestamp;

/// How a period is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Site-local days.
    Day,
    /// Shifts, from their starts.
    Shift,
}

/// One day or shift, cut to the asked period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// `"2026-12-07"` or `"2026-12-07 08:00"`.
    pub label: String,
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
}

/// The buckets of `[from, to)`; `shifts` are the shift starts in minutes after local midnight,
/// ascending (none: one shift a day from midnight). A shift belongs to the day it starts on.
pub fn buckets(from: Timestamp, to: Timestamp, by: By, off: UtcOffset, shifts: &[u16]) -> Vec<Bucket> {
    let mut out = Vec::new();
    if to <= from {
        return out;
    }
    let starts: Vec<i64> = match by {
        By::Day => vec![0],
        By::Shift if shifts.is_empty() => vec![0],
        By::Shift => shifts.iter().map(|&m| i64::from(m)).collect(),
    };
    let (first, last) = (off.day_of(from) - 1, off.day_of(to));
    for day in first..=last {
        for (i, &s) in starts.iter().enumerate() {
            let next = starts.get(i + 1).copied().unwrap_or(starts[0] + 1440);
            let (start, end) = (off.at(day, s).max(from), off.at(day, next).min(to));
            if end <= start {
                continue;
            }
            let label = match by {
                By::Day => day_label(day),
                By::Shift => format!("{} {:02}:{:02}", day_label(day), s / 60, s % 60),
            };
            out.push(Bucket { label, start, end });
        }
    }
    out
}
