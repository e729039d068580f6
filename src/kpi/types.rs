//! What the KPI engine reports: the JSON of `GET /api/v1/kpi`, documented field by field for
//! the console and the safety manager's tools. Times are milliseconds since the epoch (`*_ms`)
//! with the site-local text beside them (`*_local`, `YYYY-MM-DD HH:MM:SS`); durations are ms.

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::Priority;

/// How a figure stands against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Meets the target.
    Acceptable,
    /// Misses the target but within the manageable limit (e.g. 1 to 2 alarms per 10 minutes).
    Manageable,
    /// Beyond what the standards call manageable: an action plan is due.
    Over,
}

/// How a figure is compared with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Acceptable when the value is at most the target (then manageable at most `manageable`).
    AtMost,
    /// Acceptable when the value is below the target.
    Below,
    /// Shown beside a target it should be near; not judged.
    About,
}

/// One figure beside its target and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Measure {
    /// The figure.
    pub value: f64,
    /// Its target.
    pub target: f64,
    /// How `value` is compared with `target`.
    pub comparison: Comparison,
    /// Upper limit of "manageable", where the standards give one.
    pub manageable: Option<f64>,
    /// The verdict; `null` when there is nothing to judge (no alarms in the range).
    pub verdict: Option<Verdict>,
}

impl Measure {
    /// Acceptable at most `target`, manageable at most `manageable`, else over.
    pub fn at_most(value: f64, target: f64, manageable: Option<f64>) -> Measure {
        let verdict = if value <= target {
            Verdict::Acceptable
        } else if manageable.is_some_and(|m| value <= m) {
            Verdict::Manageable
        } else {
            Verdict::Over
        };
        Measure {
            value,
            target,
            comparison: Comparison::AtMost,
            manageable,
            verdict: Some(verdict),
        }
    }

    /// Acceptable below `target`, else over.
    pub fn below(value: f64, target: f64) -> Measure {
        Measure {
            value,
            target,
            comparison: Comparison::Below,
            manageable: None,
            verdict: Some(if value < target {
                Verdict::Acceptable
            } else {
                Verdict::Over
            }),
        }
    }

    /// A figure that should be near `target`; shown, never judged.
    pub fn about(value: f64, target: f64) -> Measure {
        Measure {
            value,
            target,
            comparison: Comparison::About,
            manageable: None,
            verdict: None,
        }
    }

    /// The same figure without a verdict (nothing to judge).
    pub fn unjudged(mut self) -> Measure {
        self.verdict = None;
        self
    }
}

/// The KPIs of a range: the whole and each requested group.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiReport {
    /// Start of the range (inclusive).
    pub from_ms: i64,
    /// End of the range (exclusive).
    pub to_ms: i64,
    /// `from` in site-local time.
    pub from_local: String,
    /// `to` in site-local time.
    pub to_local: String,
    /// The site's UTC offset the local times, days, shifts and weeks use (`+08:00`).
    pub utc_offset: String,
    /// The operator position the report is limited to, if any.
    pub position: Option<String>,
    /// Every process alarm (of the position, if limited), all positions together.
    pub site: Figures,
    /// Per operator position (`[[kpi.positions]]`).
    pub positions: Vec<Group>,
    /// Per hazard source (`-`: alarms without one).
    pub hazard_sources: Vec<Group>,
    /// Per site-local day (`2026-12-07`), clipped to the range.
    pub days: Vec<Group>,
    /// Per shift (`[console] shifts`), named by its local start (`2026-12-07 08:00`).
    pub shifts: Vec<Group>,
    /// Per ISO week (`2026-W50`, Monday to Sunday local time), clipped to the range.
    pub weeks: Vec<Group>,
    /// The gateway's own fault alarms, kept out of every other figure.
    pub self_diagnostic: SelfDiagnostic,
}

/// The figures of one group.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Group {
    /// Position name, hazard source code, day, shift start or week.
    pub key: String,
    /// Its figures.
    pub figures: Figures,
}

/// Every KPI over one range and set of alarms.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    /// Start of this group's range.
    pub from_ms: i64,
    /// End of this group's range (exclusive).
    pub to_ms: i64,
    /// Annunciated alarm rate.
    pub rate: Rate,
    /// Alarm floods.
    pub flood: Flood,
    /// The most frequent alarms.
    pub bad_actors: BadActors,
    /// Alarms raised 3 or more times within 60 s.
    pub chattering: Chattering,
    /// Alarms whose condition cleared sooner than `fleeting_ms` after it became active.
    pub fleeting: Fleeting,
    /// Alarms whose condition was active longer than 24 hours at some time in the range.
    pub stale: Stale,
    /// Alarms whose condition is active at the end of the range, oldest first.
    pub standing: Vec<AgedAlarm>,
    /// Shelving by operators (counted when it begins in the range; time within the range).
    pub shelved: Overlay,
    /// Out of service for maintenance.
    pub out_of_service: Overlay,
    /// Suppressed by design (e.g. behind their device's communication alarm).
    pub suppressed: Overlay,
    /// Annunciated raises by priority against 80 / 15 / 5 %.
    pub priorities: Priorities,
    /// Time from raise to acknowledgement.
    pub acknowledgement: Acknowledgement,
}

/// The annunciated alarm rate. A raise counts when the alarm's state after it is annunciated
/// (not shelved, suppressed or out of service). Fixed intervals are 10 minutes aligned to the
/// site-local clock (00:00, 00:10, …); an interval partly outside the range still counts as one.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rate {
    /// Annunciated raises in the range.
    pub raises: u64,
    /// Fixed 10-minute intervals overlapping the range.
    pub intervals: u64,
    /// Raises per 10 minutes of the range (raises × 10 min ÷ range length): ≤ 1 acceptable,
    /// ≤ 2 manageable.
    pub average_per_10min: Measure,
    /// Most raises in one fixed interval: at most 10 (more is a flood).
    pub peak_per_10min: Measure,
    /// Most raises in any sliding 10 minutes within the range.
    pub peak_sliding_10min: u64,
    /// % of intervals with more than 1 raise (above "acceptable").
    pub pct_intervals_over_1: f64,
    /// % of intervals with more than 2 raises (above "manageable").
    pub pct_intervals_over_2: f64,
    /// % of intervals with more than 10 raises: below 1 %.
    pub pct_intervals_over_10: Measure,
}

/// Floods (EEMUA 191): a flood starts at the annunciated raise that brings the count in the
/// trailing 10 minutes above 10, and ends at the first instant that count falls below 5 (raises
/// leave the window 10 minutes after they happened).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Flood {
    /// Each flood overlapping the range, clipped to it.
    pub periods: Vec<FloodPeriod>,
    /// Time in flood within the range.
    pub time_in_flood_ms: i64,
    /// % of the range in flood: below 1 %.
    pub pct_time_in_flood: Measure,
}

/// One flood.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FloodPeriod {
    /// Start (clipped to the range).
    pub start_ms: i64,
    /// End (clipped to the range).
    pub end_ms: i64,
    /// Start, site-local.
    pub start_local: String,
    /// End, site-local.
    pub end_local: String,
    /// Annunciated raises from start to end.
    pub raises: u64,
    /// Highest trailing 10-minute count during the flood.
    pub peak_10min: u64,
    /// Still in flood at the end of the range.
    pub ongoing: bool,
}

/// The most frequent annunciated alarms ("bad actors").
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BadActors {
    /// Up to `[kpi] top` alarms, most raises first (ties by alarm id).
    pub top: Vec<Actor>,
    /// Their share of all annunciated raises, %: at most 5 % (ISA-18.2: about 1 to 5 %).
    pub top_share_pct: Measure,
}

/// One alarm and its load.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Actor {
    /// Alarm id.
    pub alarm_id: String,
    /// What it is about.
    pub subject: String,
    /// Its hazard source.
    pub hazard_source: Option<String>,
    /// Its priority (at its last raise).
    pub priority: Priority,
    /// Annunciated raises in the range.
    pub raises: u64,
    /// Share of all annunciated raises, %.
    pub share_pct: f64,
}

/// Chattering: an alarm raised 3 or more times within 60 s (every raise counts, annunciated or
/// not, as in the live rule). An episode begins at the raise that makes 3 in the trailing 60 s
/// after fewer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Chattering {
    /// Chattering alarms, most episodes first.
    pub alarms: Vec<ChatterAlarm>,
    /// How many alarms chattered: target 0.
    pub count: Measure,
}

/// One chattering alarm.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChatterAlarm {
    /// Alarm id.
    pub alarm_id: String,
    /// Episodes begun in the range.
    pub episodes: u64,
    /// Most raises within any trailing 60 s.
    pub max_in_60s: u64,
    /// Raises in the range.
    pub raises: u64,
}

/// Fleeting alarms: the condition became active and cleared within `threshold_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Fleeting {
    /// The threshold (`[kpi] fleeting`, default 1 s).
    pub threshold_ms: i64,
    /// Fleeting alarms, most activations first.
    pub alarms: Vec<FleetingAlarm>,
    /// How many alarms were fleeting: target 0.
    pub count: Measure,
}

/// One fleeting alarm.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FleetingAlarm {
    /// Alarm id.
    pub alarm_id: String,
    /// Activations that cleared within the threshold.
    pub activations: u64,
    /// The shortest of them.
    pub shortest_ms: i64,
}

/// Stale alarms: the condition continuously active for more than 24 hours at some time in the
/// range (ISA-18.2 counts those present each day: fewer than 5).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Stale {
    /// The alarms, oldest first.
    pub alarms: Vec<AgedAlarm>,
    /// How many: below 5 (a day group judges one day; a longer range is judged the same way,
    /// which is stricter).
    pub count: Measure,
}

/// An alarm and how long its condition has been active.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgedAlarm {
    /// Alarm id.
    pub alarm_id: String,
    /// What it is about.
    pub subject: String,
    /// Its hazard source.
    pub hazard_source: Option<String>,
    /// Its priority.
    pub priority: Priority,
    /// When the condition became active.
    pub since_ms: i64,
    /// The same, site-local.
    pub since_local: String,
    /// Active for this long at the end of the range, or when it cleared.
    pub age_ms: i64,
    /// Still active at the end of the range.
    pub ongoing: bool,
    /// Annunciated at the end of the range (not shelved, suppressed or out of service).
    pub annunciated: bool,
}

/// An overlay (shelved, out of service, suppressed): how often it began and how long it lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Overlay {
    /// Times it began in the range.
    pub count: u64,
    /// Time under it within the range, summed over alarms.
    pub duration_ms: i64,
}

/// Annunciated raises by priority. ISA-18.2 and EEMUA 191 aim at about 80 % low, 15 % medium and
/// 5 % high with three priorities; our high and critical together are the "high" 5 %.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Priorities {
    /// Raises per priority (`low`, `medium`, `high`, `critical`).
    pub counts: Vec<PriorityCount>,
    /// Low: about 80 % (shown, not judged).
    pub low_pct: Measure,
    /// Medium: at most 15 %, manageable at most 30 %.
    pub medium_pct: Measure,
    /// High and critical: at most 5 %, manageable at most 10 %.
    pub high_pct: Measure,
}

/// One priority's raises.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PriorityCount {
    /// The priority.
    pub priority: Priority,
    /// Annunciated raises.
    pub count: u64,
    /// Share, %.
    pub pct: f64,
}

/// Raise to acknowledgement of the annunciated raises in the range. An acknowledgement settles
/// every raise of its alarm still waiting. Percentiles are nearest-rank (the value at rank
/// ⌈p × n⌉ of n sorted delays), so they are always delays that happened.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Acknowledgement {
    /// Raises acknowledged within the range.
    pub acknowledged: u64,
    /// Median delay.
    pub median_ms: Option<i64>,
    /// 90th percentile delay.
    pub p90_ms: Option<i64>,
    /// Raises not acknowledged by the end of the range.
    pub unacknowledged: u64,
}

/// The gateway's own fault alarms (disk space, storage writes, store backlog, outputs, clock).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SelfDiagnostic {
    /// Raises in the range.
    pub raises: u64,
    /// Raises per alarm, most first.
    pub alarms: Vec<AlarmCount>,
}

/// An alarm and a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AlarmCount {
    /// Alarm id.
    pub alarm_id: String,
    /// The count.
    pub count: u64,
}
