//! Alarm performance KPIs: `GET /api/v1/kpi` (JSON), `/api/v1/kpi/report.html` (a printable
//! weekly report) and `/api/v1/kpi/report.csv`. The figures come from `crate::kpi` over the
//! journal; `docs/alarm-kpis.md` defines each.
//!
//! Bounds: a range is at most [`MAX_RANGE_DAYS`] days and at most [`MAX_EVENTS`] journaled
//! transitions are read; beyond either the answer is 400 with the reason, before any work.

mod csv;
mod html;
mod rows;

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiQuery, ErrorBody};
use super::{ApiError, AppState};
use crate::kpi::{GroupSet, KpiInput, KpiReport, KpiSettings};
use crate::model::Timestamp;
use crate::sinks::journal::HistoryFilter;
pub(crate) use rows::Lang;

/// Longest range one request may cover (a quarter).
pub(super) const MAX_RANGE_DAYS: u64 = 92;
/// Most journaled transitions one request reads.
pub(super) const MAX_EVENTS: usize = 200_000;
/// The latest end of a range: 2200-01-01T00:00:00Z, far inside the nanosecond range.
const LATEST: Timestamp = Timestamp::from_millis(7_258_118_400_000);
/// The range when none is given: the last 7 days.
const DEFAULT_RANGE: Duration = Duration::from_secs(7 * 86_400);

/// Range and grouping of the KPIs; times are RFC 3339 or ms since the epoch.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct KpiQuery {
    /// Start (inclusive). Default: 7 days before `to`.
    #[param(schema_with = super::time_param::schema)]
    from: Option<String>,
    /// End (exclusive). Default: now.
    #[param(schema_with = super::time_param::schema)]
    to: Option<String>,
    /// An ISO week in site-local time instead of `from`/`to`, e.g. `2026-W50` (Monday 00:00 to
    /// the next Monday 00:00).
    #[param(pattern = r"^\d{4}-W\d{2}$")]
    week: Option<String>,
    /// Only this operator position's alarms (`[[kpi.positions]]` name).
    position: Option<String>,
    /// Groups to compute besides the whole, comma-separated: `position`, `hazard_source`,
    /// `day`, `shift`, `week`, or `none`. Default: all.
    group: Option<String>,
    /// Language of the HTML and CSV reports: `zh` (default) or `en`.
    lang: Option<Lang>,
}

/// What a request resolved to.
struct Ask {
    from: Timestamp,
    to: Timestamp,
    position: Option<String>,
    groups: GroupSet,
    lang: Lang,
    settings: KpiSettings,
}

fn bad(name: &'static str, reason: String) -> ApiError {
    ApiError::BadParam { name, reason }
}

fn resolve(s: &AppState, q: KpiQuery) -> Result<Ask, ApiError> {
    let settings = s.policy.read().unwrap_or_else(|p| p.into_inner()).kpi.clone();
    let off = settings.utc_offset;
    let (from, to) = match &q.week {
        Some(_) if q.from.is_some() || q.to.is_some() => {
            return Err(bad("week", "give either `week` or `from`/`to`, not both".into()));
        }
        Some(week) => {
            let monday = crate::kpi::parse_week(week)
                .ok_or_else(|| bad("week", format!("`{week}` is not an ISO week such as 2026-W50")))?;
            (off.at(monday, 0), off.at(monday + 7, 0))
        }
        None => super::time_param::range(q.from.as_deref(), q.to.as_deref(), s.clock.now(), DEFAULT_RANGE)?,
    };
    if to <= from {
        return Err(bad("to", "must be after `from`".into()));
    }
    if from < Timestamp::from_nanos(0) || to > LATEST {
        return Err(bad(
            "from",
            "KPIs cover times from 1970 to 2200 (site-local calendar arithmetic)".into(),
        ));
    }
    if to.since(from) > Duration::from_secs(MAX_RANGE_DAYS * 86_400) {
        return Err(bad(
            "from",
            format!("the range is longer than {MAX_RANGE_DAYS} days; ask for a shorter one"),
        ));
    }
    if let Some(p) = &q.position
        && !settings.has_position(p)
    {
        return Err(bad(
            "position",
            format!("no position `{p}`; positions: {}", settings.position_names().join(", ")),
        ));
    }
    let groups = match &q.group {
        None => GroupSet::ALL,
        Some(text) => parse_groups(text)?,
    };
    Ok(Ask {
        from,
        to,
        position: q.position,
        groups,
        lang: q.lang.unwrap_or_default(),
        settings,
    })
}

fn parse_groups(text: &str) -> Result<GroupSet, ApiError> {
    let mut g = GroupSet::NONE;
    for part in text.split(',').map(str::trim) {
        match part {
            "position" => g.positions = true,
            "hazard_source" => g.hazard_sources = true,
            "day" => g.days = true,
            "shift" => g.shifts = true,
            "week" => g.weeks = true,
            "none" => {}
            other => {
                return Err(bad(
                    "group",
                    format!("unknown group `{other}`; use position, hazard_source, day, shift, week or none"),
                ));
            }
        }
    }
    Ok(g)
}

/// Reads the journal and computes, on the blocking pool.
async fn compute(s: &AppState, ask: &Ask) -> Result<KpiReport, ApiError> {
    let journal = s.journal.clone();
    let (from, to) = (ask.from, ask.to);
    let (position, groups, settings) = (ask.position.clone(), ask.groups, ask.settings.clone());
    tokio::task::spawn_blocking(move || {
        let lead = from.minus(KpiInput::LEAD);
        let initial = journal
            .latest_before(lead)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut events = journal
            .history(&HistoryFilter {
                from: Some(lead),
                to: Some(Timestamp::from_nanos(to.as_nanos() - 1)),
                limit: MAX_EVENTS + 1,
                ..HistoryFilter::default()
            })
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if events.len() > MAX_EVENTS {
            return Err(bad(
                "from",
                format!("the range holds more than {MAX_EVENTS} alarm transitions; ask for a shorter one"),
            ));
        }
        events.reverse();
        let input = KpiInput {
            from,
            to,
            initial: &initial,
            events: &events,
        };
        Ok(crate::kpi::report(&input, &settings, position.as_deref(), groups))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// Alarm-system performance KPIs over a range (default: the last 7 days), with each figure's
/// target and verdict, for the whole site and per position, hazard source, day, shift and week.
#[utoipa::path(get, path = "/api/v1/kpi", tag = "alarms",
    security(("bearer" = [])),
    params(KpiQuery),
    responses(
        (status = 200, description = "The KPIs", body = KpiReport),
        (status = 400, description = "A bad parameter, a range over 92 days or over 200,000 transitions", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn kpi(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<Json<KpiReport>, ApiError> {
    let ask = resolve(&s, q)?;
    Ok(Json(compute(&s, &ask).await?))
}

fn typed(content_type: &'static str, body: String, filename: Option<&'static str>) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(name) = filename {
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(name));
    }
    resp
}

/// The KPI report as one printable HTML page (A4, no scripts), in Chinese or English; takes
/// `week=2026-W50` or `from`/`to`.
#[utoipa::path(get, path = "/api/v1/kpi/report.html", tag = "alarms",
    security(("bearer" = [])),
    params(KpiQuery),
    responses(
        (status = 200, description = "The report", content_type = "text/html", body = String),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn report_html(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<Response, ApiError> {
    let ask = resolve(&s, q)?;
    let r = compute(&s, &ask).await?;
    Ok(typed("text/html; charset=utf-8", html::render(&r, ask.lang), None))
}

/// The KPI figures as CSV (UTF-8 with a byte-order mark for Excel), one row per figure and group.
#[utoipa::path(get, path = "/api/v1/kpi/report.csv", tag = "alarms",
    security(("bearer" = [])),
    params(KpiQuery),
    responses(
        (status = 200, description = "The figures", content_type = "text/csv", body = String),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn report_csv(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<Response, ApiError> {
    let ask = resolve(&s, q)?;
    let r = compute(&s, &ask).await?;
    Ok(typed(
        "text/csv; charset=utf-8",
        csv::render(&r, ask.lang),
        Some("attachment; filename=\"alarm-kpi.csv\""),
    ))
}
