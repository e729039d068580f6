//! The completeness ledger (数据完整率 / 在线率): `GET /api/v1/completeness` (JSON rows per point,
//! hazard source or gateway and per day or shift) and the daily report
//! `GET /api/v1/completeness/report.csv` / `.json`. Figures from [`crate::ledger`] over the
//! history store's minute counts and quality changes and the gateway's run log; formulas in
//! `docs/completeness.md`.
//!
//! Bounds: a period is at most [`MAX_SPAN`] and at most [`MAX_POINT_DAYS`] point-days (longer
//! ones are cut to their end, and `from_ms` says so); a schema-valid request is never refused.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiQuery, ErrorBody};
use super::kpi::Lang;
use super::{ApiError, AppState};
use crate::ledger::{self, By, Downtime, Group, Ledger, MinuteCount, PointInput, RegulatorSpan, Row};
use crate::model::{Quality, Timestamp};
use crate::sinks::history::{HistoryReader, HistoryRow, StoreError};

/// Longest period of one request.
const MAX_SPAN: Duration = Duration::from_secs(31 * 86_400);
/// Most point-days one request reads (each a day of minute counts and raw rows).
const MAX_POINT_DAYS: u64 = 20_000;
/// The default period: the last day.
const DEFAULT_SPAN: Duration = Duration::from_secs(86_400);
/// How far before a period its points' last quality is looked for (raw history keeps a row a
/// minute while readings arrive, and every quality change).
const LOOKBACK: Duration = Duration::from_secs(3600);
/// Raw rows read per history query (quality changes are read page by page).
const PAGE: usize = 100_000;
/// Most raw rows one request reads in all: a few seconds of decoding. Points past it are named
/// in the answer's `unread_points`, never silently short (about 0.5 µs a row in a release build).
const MAX_RAW_TOTAL: usize = 10_000_000;
/// The latest instant a period may reach: 2200-01-01T00:00:00Z.
const LATEST: Timestamp = Timestamp::from_millis(7_258_118_400_000);
/// Interval of a point no source declares one for (the MQTT default).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const NANOS_PER_MINUTE: i64 = 60_000_000_000;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Grouping of the rows.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum GroupParam {
    /// One row per point (the default).
    #[default]
    Point,
    /// One row per hazard source.
    HazardSource,
    /// One row for the whole gateway.
    Gateway,
}

/// Cut of the period.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ByParam {
    /// Site-local days (the default).
    #[default]
    Day,
    /// Shifts (`[console] shifts`; none configured: one a day from midnight).
    Shift,
}

/// Period and grouping; times are RFC 3339 or ms since the epoch.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LedgerQuery {
    /// Start (default: a day before `to`). Rounded down to its minute; a period over 31 days,
    /// or over 20,000 point-days, is cut to its end, and `from_ms` says so.
    #[param(schema_with = super::time_param::schema)]
    from: Option<String>,
    /// End (default and latest: now), exclusive, rounded down to its minute.
    #[param(schema_with = super::time_param::schema)]
    to: Option<String>,
    /// Rows per point, hazard source or gateway.
    #[param(inline)]
    group: Option<GroupParam>,
    /// Rows per day or shift.
    #[param(inline)]
    by: Option<ByParam>,
}

/// Day and language of the daily report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReportQuery {
    /// Site-local day, `YYYY-MM-DD` (default: yesterday).
    #[param(value_type = Option<String>, format = Date)]
    day: Option<String>,
    /// Language of the CSV headers (default Chinese).
    #[param(inline)]
    lang: Option<Lang>,
}

/// What the ledger reads, gathered once per request.
struct Inputs {
    points: Vec<PointInput>,
    buckets: Vec<ledger::Bucket>,
    unread: Vec<String>,
    down: Vec<Downtime>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// `t` within 1970..2200, rounded down to its minute.
fn floor_minute(t: Timestamp) -> Timestamp {
    let t = t.clamp(Timestamp::from_nanos(0), LATEST).as_nanos();
    Timestamp::from_nanos(t - t % NANOS_PER_MINUTE)
}

/// The period `[from, to)` clamped to what one request may read; empty when `to <= from`.
fn clamp(s: &AppState, from: Timestamp, to: Timestamp) -> (Timestamp, Timestamp) {
    let to = floor_minute(to.min(s.clock.now()));
    let points = s.live.points.len().max(1) as u64;
    let days = (MAX_POINT_DAYS / points).max(1);
    let span = MAX_SPAN.min(Duration::from_secs(days * 86_400));
    let from = floor_minute(from.max(to.minus(span)).max(Timestamp::from_nanos(0)));
    (from, to.max(from))
}

/// The spans the gateway's regulator uplinks delivered late that overlap `[from, to)`, from
/// their late-delivery logs (`sinks::uplink::late`), on the blocking pool.
async fn regulator(s: &AppState, from: Timestamp, to: Timestamp) -> Result<Vec<RegulatorSpan>, ApiError> {
    let dir = s.data_dir.clone();
    let spans = tokio::task::spawn_blocking(move || crate::sinks::uplink::late::spans_in(&dir, from, to))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(spans
        .into_iter()
        .map(|l| RegulatorSpan {
            uplink: l.uplink,
            start_ms: l.start.as_millis(),
            end_ms: l.end.map(Timestamp::as_millis),
            backfilled: l.backfilled_at.is_some(),
            backfilled_at_ms: l.backfilled_at.map(Timestamp::as_millis),
        })
        .collect())
}

/// Reads history and the run log for `[from, to)` on the blocking pool.
async fn gather(s: &AppState, from: Timestamp, to: Timestamp, by: By) -> Result<Inputs, ApiError> {
    let (history, live, run_log) = (s.history.clone(), s.live.clone(), s.run_log.clone());
    let (intervals, buckets) = {
        let policy = s.policy.read().unwrap_or_else(|p| p.into_inner());
        let buckets = ledger::buckets(from, to, by, policy.kpi.utc_offset, &policy.shifts);
        (policy.intervals.clone(), buckets)
    };
    tokio::task::spawn_blocking(move || -> Result<Inputs, ApiError> {
        let mut points = Vec::new();
        let mut unread = Vec::new();
        let mut budget = MAX_RAW_TOTAL;
        if to > from {
            let last = Timestamp::from_nanos(to.as_nanos() - 1);
            let span_minutes = usize::try_from(to.since(from).as_secs() / 60 + 1).unwrap_or(usize::MAX);
            for (id, meta) in live.points.iter() {
                let name = &**meta.name();
                let rows = history.minutes(name, from, last, span_minutes).map_err(internal)?;
                let minutes = per_bucket(&rows, &buckets);
                let (qualities, complete) = qualities(&history, name, from, to, PAGE, &mut budget).map_err(internal)?;
                if !complete {
                    unread.push(name.to_string());
                }
                points.push(PointInput {
                    name: name.to_string(),
                    hazard_source: meta.hazard_source().map(|t| &**t).map(str::to_string),
                    interval: intervals.get(id.index()).unwrap_or(DEFAULT_INTERVAL),
                    minutes,
                    qualities,
                });
            }
        }
        let down = run_log
            .downtimes(from, to)
            .map_err(internal)?
            .into_iter()
            .map(|(start, end)| Downtime { start, end })
            .collect();
        Ok(Inputs {
            points,
            buckets,
            unread,
            down,
        })
    })
    .await
    .map_err(internal)?
}

/// The quality changes of `name` in `[from, to)`, with the last one before `from` (within
/// [`LOOKBACK`]) first, read `page` raw rows at a time and charged to `budget`; `false` when the
/// budget ran out before `to`.
fn qualities(
    history: &HistoryReader,
    name: &str,
    from: Timestamp,
    to: Timestamp,
    page: usize,
    budget: &mut usize,
) -> Result<(Vec<(Timestamp, Quality)>, bool), StoreError> {
    let mut out: Vec<(Timestamp, Quality)> = Vec::new();
    let mut before: Option<HistoryRow> = None;
    let read = pages(history, name, from.minus(LOOKBACK), from, page, budget, |rows| {
        before = rows.last().cloned().or(before.take());
    })?;
    let mut keep = |rows: &[HistoryRow]| {
        for row in rows {
            if out.last().is_none_or(|(_, q)| *q != row.quality) {
                out.push((Timestamp::from_millis(row.ts_ms), row.quality));
            }
        }
    };
    keep(before.as_slice());
    let complete = read && pages(history, name, from, to, page, budget, &mut keep)?;
    Ok((out, complete))
}

/// Hands the raw rows of `name` in `[from, to)` to `f`, oldest first, `page` at a time, until
/// `budget` rows were read; `false` when the budget ran out first. A row may be handed twice
/// (at a page boundary).
fn pages(
    history: &HistoryReader,
    name: &str,
    from: Timestamp,
    to: Timestamp,
    page: usize,
    budget: &mut usize,
    mut f: impl FnMut(&[HistoryRow]),
) -> Result<bool, StoreError> {
    if to <= from {
        return Ok(true);
    }
    let last = Timestamp::from_nanos(to.as_nanos() - 1);
    let mut cursor = from;
    loop {
        if *budget == 0 {
            return Ok(false);
        }
        let limit = page.min(*budget);
        let rows = history.query(name, cursor, last, limit)?;
        *budget -= rows.len();
        f(&rows);
        let Some(end) = rows.last().filter(|_| rows.len() == limit) else {
            return Ok(true);
        };
        // Rows carry milliseconds: the next page starts at the last row's millisecond
        // (re-reading a row is harmless), or past it if the page did not move.
        let next = Timestamp::from_millis(end.ts_ms);
        cursor = if next > cursor {
            next
        } else {
            Timestamp::from_millis(end.ts_ms + 1)
        };
    }
}

/// A point's minute counts summed per bucket (one entry at each bucket's start): what the
/// ledger adds up anyway, held in a few entries instead of a month of minutes per point.
fn per_bucket(rows: &[crate::sinks::history::MinuteRow], buckets: &[ledger::Bucket]) -> Vec<MinuteCount> {
    let mut out: Vec<MinuteCount> = Vec::new();
    let mut i = 0;
    for m in rows {
        let t = Timestamp::from_millis(m.ts_ms);
        while buckets.get(i).is_some_and(|b| b.end <= t) {
            i += 1;
        }
        let Some(b) = buckets.get(i).filter(|b| b.start <= t) else {
            continue;
        };
        match out.last_mut() {
            Some(c) if c.minute == b.start => {
                c.good += m.count;
                c.bad += m.bad_count;
            }
            _ => out.push(MinuteCount {
                minute: b.start,
                good: m.count,
                bad: m.bad_count,
            }),
        }
    }
    out
}

/// Online rate (在线率) and data completeness (完整率) per point, hazard source or the whole
/// gateway and per site-local day or shift, with every gap and its cause.
#[utoipa::path(get, path = "/api/v1/completeness", tag = "points",
    security(("bearer" = [])),
    params(LedgerQuery),
    responses(
        (status = 200, description = "The ledger", body = Ledger),
        (status = 400, description = "A time that is neither RFC 3339 nor milliseconds", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn ledger(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> Result<Json<Ledger>, ApiError> {
    let (from, to) = super::time_param::range(q.from.as_deref(), q.to.as_deref(), s.clock.now(), DEFAULT_SPAN)?;
    // Late spans are events, not minute counts: up to the asked end (or now), not its minute.
    let late_to = to.min(s.clock.now());
    let (from, to) = clamp(&s, from, to);
    let by = match q.by.unwrap_or_default() {
        ByParam::Day => By::Day,
        ByParam::Shift => By::Shift,
    };
    let inputs = gather(&s, from, to, by).await?;
    let group = match q.group.unwrap_or_default() {
        GroupParam::Point => Group::Point,
        GroupParam::HazardSource => Group::HazardSource,
        GroupParam::Gateway => Group::Gateway,
    };
    let mut out = ledger::ledger(&inputs.points, &inputs.down, &inputs.buckets, group, &s.live.gateway_id);
    out.from_ms = from.as_millis();
    out.to_ms = to.as_millis();
    out.unread_points = inputs.unread;
    out.regulator_spans = regulator(&s, from, late_to.max(to)).await?;
    Ok(Json(out))
}

/// One site-local day for the regulator's file: the gateway, each hazard source, each point.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DailyReport {
    /// The day, `YYYY-MM-DD`, site-local.
    day: String,
    /// Site-local offset from UTC, `+08:00`.
    utc_offset: String,
    /// Start of what was counted, ms since the epoch.
    from_ms: i64,
    /// End of what was counted (the day's end, or now for today), ms since the epoch.
    to_ms: i64,
    /// The whole gateway (absent when nothing of the day has passed yet).
    gateway: Option<Row>,
    /// Each hazard source.
    hazard_sources: Vec<Row>,
    /// Each point, with its gaps.
    points: Vec<Row>,
    /// Whether some gaps were left out of the listings.
    gaps_truncated: bool,
    /// Points whose quality changes could not all be read (their gaps are not all known).
    unread_points: Vec<String>,
    /// Spans of the day the gateway's regulator uplinks delivered late, and whether each was
    /// backfilled.
    regulator_spans: Vec<RegulatorSpan>,
}

async fn daily(s: &AppState, q: &ReportQuery) -> Result<DailyReport, ApiError> {
    let off = s.policy.read().unwrap_or_else(|p| p.into_inner()).kpi.utc_offset;
    let day = match q.day.as_deref() {
        Some(d) => {
            let midnight_utc = super::time_param::parse_time("day", &format!("{d}T00:00:00Z"))?;
            midnight_utc.as_nanos().div_euclid(NANOS_PER_DAY)
        }
        None => off.day_of(s.clock.now()) - 1,
    };
    let (start, end) = (off.at(day, 0), off.at(day + 1, 0));
    let to = floor_minute(end.min(s.clock.now()));
    let from = floor_minute(start).min(to);
    let inputs = gather(s, from, to, By::Day).await?;
    let buckets = &inputs.buckets;
    let gw = &s.live.gateway_id;
    let whole = ledger::ledger(&inputs.points, &inputs.down, buckets, Group::Gateway, gw);
    let sources = ledger::ledger(&inputs.points, &inputs.down, buckets, Group::HazardSource, gw);
    let points = ledger::ledger(&inputs.points, &inputs.down, buckets, Group::Point, gw);
    let without_gaps = |mut r: Row| {
        r.gaps.clear();
        r
    };
    Ok(DailyReport {
        day: crate::kpi::day_label(day),
        utc_offset: off.text(),
        from_ms: from.as_millis(),
        to_ms: to.as_millis(),
        gateway: whole.rows.into_iter().next().map(without_gaps),
        hazard_sources: sources.rows.into_iter().map(without_gaps).collect(),
        gaps_truncated: points.gaps_truncated,
        unread_points: inputs.unread.clone(),
        points: points.rows,
        regulator_spans: regulator(s, from, end.min(s.clock.now()).max(to)).await?,
    })
}

/// The daily completeness report as JSON.
#[utoipa::path(get, path = "/api/v1/completeness/report.json", tag = "points",
    security(("bearer" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "The day's ledger", body = DailyReport),
        (status = 400, description = "A day that is not a date", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn report_json(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<DailyReport>, ApiError> {
    Ok(Json(daily(&s, &q).await?))
}

/// The daily completeness report as CSV (UTF-8 with a byte-order mark, for Excel): a line for
/// the gateway, each hazard source and each point, then one per gap.
#[utoipa::path(get, path = "/api/v1/completeness/report.csv", tag = "points",
    security(("bearer" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "The day's ledger", content_type = "text/csv", body = String),
        (status = 400, description = "A day that is not a date", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn report_csv(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let r = daily(&s, &q).await?;
    let off = s.policy.read().unwrap_or_else(|p| p.into_inner()).kpi.utc_offset;
    let body = csv(&r, q.lang.unwrap_or_default(), off);
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Named by its day, so a month of files saved side by side never overwrite each other.
    let name = format!("attachment; filename=\"completeness-{}.csv\"", r.day);
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&name).map_err(internal)?,
    );
    Ok(resp)
}

/// A CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn line(out: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

fn t(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

fn csv(r: &DailyReport, lang: Lang, off: crate::kpi::UtcOffset) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(t(
        lang,
        "日期,范围,名称,测点数,应收条数,实收有效条数,实收无效条数,在线率%,完整率%,通信中断分钟,传感器故障分钟,网关停运分钟,中断次数",
        "day,scope,key,points,expected,received_good,received_bad,online_rate_pct,completeness_pct,communication_min,sensor_fault_min,gateway_down_min,gaps",
    ));
    out.push_str("\r\n");
    let pct = |x: f64| format!("{:.2}", x * 100.0);
    let min = |ms: u64| format!("{:.1}", ms as f64 / 60_000.0);
    let scopes = [
        (t(lang, "网关", "gateway"), r.gateway.iter().collect::<Vec<_>>()),
        (t(lang, "危险源", "hazard_source"), r.hazard_sources.iter().collect()),
        (t(lang, "测点", "point"), r.points.iter().collect()),
    ];
    for (scope, rows) in &scopes {
        for row in rows {
            line(
                &mut out,
                &[
                    r.day.clone(),
                    scope.to_string(),
                    row.key.clone(),
                    row.points.to_string(),
                    row.expected.to_string(),
                    row.received_good.to_string(),
                    row.received_bad.to_string(),
                    pct(row.online_rate),
                    pct(row.completeness),
                    min(row.gap_ms.communication),
                    min(row.gap_ms.sensor_fault),
                    min(row.gap_ms.gateway_down),
                    row.gap_count.to_string(),
                ],
            );
        }
    }
    out.push_str("\r\n");
    out.push_str(t(
        lang,
        "测点,中断开始,中断结束,分钟,原因",
        "point,gap_start,gap_end,minutes,cause",
    ));
    out.push_str("\r\n");
    for row in &r.points {
        for g in &row.gaps {
            let cause = match g.cause {
                ledger::GapCause::Communication => t(lang, "通信中断", "communication"),
                ledger::GapCause::SensorFault => t(lang, "传感器故障", "sensor_fault"),
                ledger::GapCause::GatewayDown => t(lang, "网关停运", "gateway_down"),
            };
            line(
                &mut out,
                &[
                    g.point.clone(),
                    off.format(Timestamp::from_millis(g.start_ms)),
                    off.format(Timestamp::from_millis(g.end_ms)),
                    min(u64::try_from(g.end_ms - g.start_ms).unwrap_or(0)),
                    cause.to_string(),
                ],
            );
        }
    }
    out.push_str("\r\n");
    out.push_str(t(
        lang,
        "上报通道,未实时上报开始,平台恢复,已补传,补传完成",
        "uplink,late_start,platform_back,backfilled,backfilled_at",
    ));
    out.push_str("\r\n");
    for s in &r.regulator_spans {
        let when = |ms: Option<i64>| ms.map(|m| off.format(Timestamp::from_millis(m))).unwrap_or_default();
        line(
            &mut out,
            &[
                s.uplink.clone(),
                off.format(Timestamp::from_millis(s.start_ms)),
                when(s.end_ms),
                if s.backfilled {
                    t(lang, "是", "yes")
                } else {
                    t(lang, "否", "no")
                }
                .to_string(),
                when(s.backfilled_at_ms),
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PointKind, PointMeta, PointTable, Reading};
    use crate::sinks::history::HistoryStore;

    const T0_MS: i64 = 1_796_572_800_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(T0_MS + secs * 1000)
    }

    /// A history file with one point: a reading a second for `n` seconds, `comm_fault` at
    /// 100..110, `out_of_range` at 200..205.
    fn history(dir: &std::path::Path, n: i64) -> HistoryReader {
        let mut t = PointTable::default();
        let id = t
            .insert(PointMeta {
                name: "P".into(),
                unit: "m".into(),
                kind: PointKind::Level,
                device: "d".into(),
                hazard_source: None,
                range: None,
                description: None,
            })
            .unwrap();
        let path = dir.join("history.db");
        let mut store = HistoryStore::open(&path, &t).unwrap();
        let raw: Vec<Reading> = (0..n)
            .map(|s| Reading {
                point: id,
                ts: at(s),
                value: s as f64,
                quality: match s {
                    100..110 => Quality::CommFault,
                    200..205 => Quality::OutOfRange,
                    _ => Quality::Good,
                },
            })
            .collect();
        store.write(&raw, &[], at(n)).unwrap();
        HistoryReader::open(&path, Duration::from_secs(30 * 86_400)).unwrap()
    }

    #[test]
    fn quality_changes_are_read_page_by_page_and_a_spent_budget_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let h = history(dir.path(), 300);
        let want = vec![
            (at(49), Quality::Good),
            (at(100), Quality::CommFault),
            (at(110), Quality::Good),
            (at(200), Quality::OutOfRange),
            (at(205), Quality::Good),
        ];
        // Pages of 7 rows, from 00:00:50: the same changes as one page (the row before the
        // period first), every row read once or, at a page boundary, twice.
        let mut budget = 10_000;
        let (q, complete) = qualities(&h, "P", at(50), at(300), 7, &mut budget).unwrap();
        assert!(complete);
        assert_eq!(q, want);
        let read = 10_000 - budget;
        assert!((300..=300 + 300 / 6 + 2).contains(&read), "{read} rows read");
        let mut budget = usize::MAX;
        assert_eq!(
            qualities(&h, "P", at(50), at(300), 100_000, &mut budget).unwrap(),
            (want.clone(), true)
        );
        // The last change before the period comes first: the point was good at its start.
        let mut budget = usize::MAX;
        let (q, _) = qualities(&h, "P", at(105), at(120), 100_000, &mut budget).unwrap();
        assert_eq!(q, [(at(104), Quality::CommFault), (at(110), Quality::Good)]);
        // A budget that runs out before the end says so.
        let mut budget = 120;
        let (q, complete) = qualities(&h, "P", at(50), at(300), 7, &mut budget).unwrap();
        assert!(!complete);
        assert_eq!(budget, 0);
        assert!(q.len() < want.len() && want.starts_with(&q), "{q:?}");
    }

    #[test]
    fn minute_counts_are_summed_per_bucket() {
        let b = ledger::buckets(at(0), at(7200), By::Shift, crate::kpi::UtcOffset::CHINA, &[0, 60]);
        let rows: Vec<crate::sinks::history::MinuteRow> = [(0, 6, 0), (59, 5, 1), (60, 6, 0), (119, 2, 4)]
            .into_iter()
            .map(|(m, count, bad_count)| crate::sinks::history::MinuteRow {
                ts_ms: at(m * 60).as_millis(),
                min: None,
                avg: None,
                max: None,
                count,
                bad_count,
            })
            .collect();
        let sums: Vec<(Timestamp, u64, u64)> = per_bucket(&rows, &b)
            .iter()
            .map(|c| (c.minute, c.good, c.bad))
            .collect();
        assert_eq!(sums, [(at(0), 11, 1), (at(3600), 8, 4)]);
    }
}
