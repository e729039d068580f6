//! Alarm-system performance KPIs computed after the fact from the alarm journal, against the
//! targets of GB/T 41261-2022 (IEC 62682 / ISA-18.2) and EEMUA 191. `docs/alarm-kpis.md`
//! states every definition; the doc comments of [`Figures`] say the same in short.
//!
//! Design: a pure function of journaled transitions (no I/O, no clock): the caller hands over
//! the alarm states before its events begin, the events in journal order, and the range. Events
//! before the range only set each alarm's state and fill the sliding windows (flood,
//! chattering), so an alarm active, shelved or chattering since before the range counts right.
//! Self-diagnostic alarms (the gateway's own faults) put no load on the process operator's
//! figures; they are counted apart in [`SelfDiagnostic`].
//!
//! These figures can differ from the live flood and chattering flags (`rules::flood`): the live
//! flood flag has no hysteresis (on above the threshold, off at or below it) and counts from
//! the gateway's start; the KPI flood ends only when the rate falls below 5 (EEMUA 191) and is
//! computed over whatever the journal holds. Chattering is the same rule in both: 3 raises of
//! one alarm within 60 s.

mod calendar;
pub mod config;
mod figures;
mod flood;
mod types;

use std::collections::HashMap;
use std::time::Duration;

pub use calendar::{UtcOffset, day_label, parse_week, week_label};
pub use config::{KpiSettings, Position, RawKpi};
pub use types::*;

use crate::model::{AlarmEvent, Timestamp};

/// Fixed and sliding rate window: ten minutes (ISA-18.2 rates are "per 10 minutes").
pub const RATE_WINDOW: Duration = Duration::from_secs(600);
/// A flood starts when the sliding 10-minute count of annunciated raises goes above this.
pub const FLOOD_START_ABOVE: usize = 10;
/// A flood ends when the sliding 10-minute count falls below this (EEMUA 191 hysteresis).
pub const FLOOD_END_BELOW: usize = 5;
/// Raises of one alarm within [`CHATTER_WINDOW`] that make it chattering (as the live rule's
/// default `alarms.chatter_threshold`).
pub const CHATTER_RAISES: usize = 3;
/// The chattering window (as `rules::flood::CHATTER_WINDOW`).
pub const CHATTER_WINDOW: Duration = Duration::from_secs(60);
/// An alarm whose condition has been active longer than this is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What the engine reads.
#[derive(Debug, Clone, Copy)]
pub struct KpiInput<'a> {
    /// Start of the range (inclusive).
    pub from: Timestamp,
    /// End of the range (exclusive).
    pub to: Timestamp,
    /// The latest transition of every alarm before `events` begin (any order); alarms in
    /// normal may be left out.
    pub initial: &'a [AlarmEvent],
    /// Transitions in journal order, none at or after `to`. Those before `from` (the caller
    /// should start them one rate window early) only set states and sliding windows.
    pub events: &'a [AlarmEvent],
}

impl KpiInput<'_> {
    /// How far before `from` the events should start for exact sliding windows.
    pub const LEAD: Duration = RATE_WINDOW;
}

/// Which groups to compute besides the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSet {
    /// Per operator position.
    pub positions: bool,
    /// Per hazard source.
    pub hazard_sources: bool,
    /// Per local day.
    pub days: bool,
    /// Per shift (`[console] shifts`).
    pub shifts: bool,
    /// Per ISO week.
    pub weeks: bool,
}

impl GroupSet {
    /// Every group.
    pub const ALL: GroupSet = GroupSet {
        positions: true,
        hazard_sources: true,
        days: true,
        shifts: true,
        weeks: true,
    };
    /// No group: only the whole.
    pub const NONE: GroupSet = GroupSet {
        positions: false,
        hazard_sources: false,
        days: false,
        shifts: false,
        weeks: false,
    };
}

/// Computes the KPIs of `input`, limited to one operator position when `position` is given.
pub fn report(input: &KpiInput<'_>, settings: &KpiSettings, position: Option<&str>, groups: GroupSet) -> KpiReport {
    let off = settings.utc_offset;
    let in_position = |e: &AlarmEvent| position.is_none_or(|p| settings.position_of(e.hazard_source.as_deref()) == p);
    let process = |e: &AlarmEvent| !e.condition.is_self_diagnostic() && in_position(e);
    let whole = |from, to, keep: &dyn Fn(&AlarmEvent) -> bool| {
        figures::compute(input.initial.iter(), input.events, from, to, keep, settings)
    };
    let site = whole(input.from, input.to, &process);
    let mut out = KpiReport {
        from_ms: input.from.as_millis(),
        to_ms: input.to.as_millis(),
        from_local: off.format(input.from),
        to_local: off.format(input.to),
        utc_offset: off.text(),
        position: position.map(str::to_string),
        site,
        positions: Vec::new(),
        hazard_sources: Vec::new(),
        days: Vec::new(),
        shifts: Vec::new(),
        weeks: Vec::new(),
        self_diagnostic: figures::self_diagnostic(input.events, input.from, input.to),
    };
    if groups.positions {
        for name in settings.position_names() {
            if position.is_some_and(|p| p != name) {
                continue;
            }
            let keep = |e: &AlarmEvent| {
                !e.condition.is_self_diagnostic() && settings.position_of(e.hazard_source.as_deref()) == name
            };
            out.positions.push(Group {
                key: name.to_string(),
                figures: whole(input.from, input.to, &keep),
            });
        }
    }
    if groups.hazard_sources {
        let mut sources: Vec<Option<&str>> = input
            .initial
            .iter()
            .chain(input.events)
            .filter(|e| process(e))
            .map(|e| e.hazard_source.as_deref())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        for hs in sources {
            let keep = |e: &AlarmEvent| process(e) && e.hazard_source.as_deref() == hs;
            out.hazard_sources.push(Group {
                key: hs.unwrap_or(NO_HAZARD_SOURCE).to_string(),
                figures: whole(input.from, input.to, &keep),
            });
        }
    }
    let mut periods = Periods::new(input);
    if groups.days {
        out.days = periods.groups(&day_ranges(input, off), &process, settings);
    }
    if groups.shifts && !settings.shifts.is_empty() {
        let mut periods = Periods::new(input);
        out.shifts = periods.groups(&shift_ranges(input, settings), &process, settings);
    }
    if groups.weeks {
        let mut periods = Periods::new(input);
        out.weeks = periods.groups(&week_ranges(input, off), &process, settings);
    }
    out
}

/// The group key of alarms without a hazard source.
pub const NO_HAZARD_SOURCE: &str = "-";

/// Local days overlapping the range, clipped to it.
fn day_ranges(input: &KpiInput<'_>, off: UtcOffset) -> Vec<(String, Timestamp, Timestamp)> {
    let (first, last) = (off.day_of(input.from), off.day_of(last_instant(input)));
    (first..=last)
        .map(|d| (day_label(d), off.at(d, 0), off.at(d + 1, 0)))
        .filter_map(|r| clip(r, input))
        .collect()
}

/// ISO weeks overlapping the range, clipped to it.
fn week_ranges(input: &KpiInput<'_>, off: UtcOffset) -> Vec<(String, Timestamp, Timestamp)> {
    let first = calendar::week_start(off.day_of(input.from));
    let last = calendar::week_start(off.day_of(last_instant(input)));
    (first..=last)
        .step_by(7)
        .map(|m| (week_label(m), off.at(m, 0), off.at(m + 7, 0)))
        .filter_map(|r| clip(r, input))
        .collect()
}

/// Shifts overlapping the range, clipped to it; a shift is named by its local start.
fn shift_ranges(input: &KpiInput<'_>, settings: &KpiSettings) -> Vec<(String, Timestamp, Timestamp)> {
    let off = settings.utc_offset;
    let starts = &settings.shifts;
    let (first, last) = (off.day_of(input.from) - 1, off.day_of(last_instant(input)));
    let mut out = Vec::new();
    for day in first..=last {
        for (i, &s) in starts.iter().enumerate() {
            let start = off.at(day, i64::from(s));
            let end = match starts.get(i + 1) {
                Some(&next) => off.at(day, i64::from(next)),
                None => off.at(day + 1, i64::from(starts[0])),
            };
            let key = off.format(start);
            out.extend(clip((key[..16].to_string(), start, end), input));
        }
    }
    out
}

fn last_instant(input: &KpiInput<'_>) -> Timestamp {
    Timestamp::from_nanos(input.to.as_nanos().saturating_sub(1).max(input.from.as_nanos()))
}

fn clip(
    (key, from, to): (String, Timestamp, Timestamp),
    input: &KpiInput<'_>,
) -> Option<(String, Timestamp, Timestamp)> {
    let (from, to) = (from.max(input.from), to.min(input.to));
    (from < to).then_some((key, from, to))
}

/// Walks consecutive periods of the range, carrying each alarm's latest transition forward so a
/// period replays only its own events (and one rate window before it).
struct Periods<'a> {
    input: &'a KpiInput<'a>,
    latest: HashMap<&'a str, &'a AlarmEvent>,
    next: usize,
}

impl<'a> Periods<'a> {
    fn new(input: &'a KpiInput<'a>) -> Self {
        let latest = input.initial.iter().map(|e| (e.alarm_id.as_str(), e)).collect();
        Periods { input, latest, next: 0 }
    }

    fn groups(
        &mut self,
        ranges: &[(String, Timestamp, Timestamp)],
        keep: &dyn Fn(&AlarmEvent) -> bool,
        settings: &KpiSettings,
    ) -> Vec<Group> {
        let events = self.input.events;
        ranges
            .iter()
            .map(|(key, from, to)| {
                let lead = from.minus(RATE_WINDOW);
                while self.next < events.len() && events[self.next].ts < lead {
                    let e = &events[self.next];
                    self.latest.insert(e.alarm_id.as_str(), e);
                    self.next += 1;
                }
                Group {
                    key: key.clone(),
                    figures: figures::compute(
                        self.latest.values().copied(),
                        &events[self.next..],
                        *from,
                        *to,
                        keep,
                        settings,
                    ),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
