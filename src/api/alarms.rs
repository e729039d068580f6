//! Alarm endpoints: the visible alarms, flood/chatter summary and journal history (operator
//! commands are in `commands.rs`).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiQuery, ErrorBody};
use super::{ApiError, AppState, rfc3339};
use crate::model::{AckCategory, AlarmClass, AlarmEvent, AlarmState, Priority};
use crate::rules::AlarmStats;
use crate::sinks::journal::HistoryFilter;

/// An alarm as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AlarmView {
    #[serde(flatten)]
    event: AlarmEvent,
    /// Whether it asks for the operator's attention now.
    annunciated: bool,
    /// RFC 3339 of `ts`.
    time: String,
    /// One-line description.
    message: String,
}

impl From<AlarmEvent> for AlarmView {
    fn from(event: AlarmEvent) -> Self {
        AlarmView {
            annunciated: event.annunciated(),
            time: rfc3339(event.ts),
            message: event.message(),
            event,
        }
    }
}

/// Filters of the visible-alarm list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ActiveQuery {
    /// Only alarms in this state.
    state: Option<AlarmState>,
    /// Only alarms of this priority or a more urgent one.
    priority: Option<Priority>,
    /// Only process or only fault alarms.
    class: Option<AlarmClass>,
    /// Only alarms of this hazard source.
    hazard_source: Option<String>,
    /// Only alarms asking for attention (not shelved, suppressed or out of service).
    annunciated: Option<bool>,
}

/// The visible alarms (active, unacknowledged, latched, shelved, suppressed or out of service).
#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms",
    security(("bearer" = [])),
    params(ActiveQuery),
    responses(
        (status = 200, description = "Visible alarms", body = Vec<AlarmView>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn active(State(s): State<AppState>, ApiQuery(q): ApiQuery<ActiveQuery>) -> Json<Vec<AlarmView>> {
    let keep = |e: &AlarmEvent| {
        q.state.is_none_or(|st| e.state == st)
            && q.priority.is_none_or(|p| e.priority >= p)
            && q.class.is_none_or(|c| e.class == c)
            && q.hazard_source
                .as_deref()
                .is_none_or(|h| e.hazard_source.as_deref() == Some(h))
            && q.annunciated.is_none_or(|a| e.annunciated() == a)
    };
    Json(
        s.live
            .active_alarms()
            .into_iter()
            .filter(keep)
            .map(AlarmView::from)
            .collect(),
    )
}

/// Alarm-system figures: flood and chattering.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Summary {
    #[serde(flatten)]
    stats: AlarmStats,
    /// Alarms asking for attention.
    annunciated: usize,
    /// Visible alarms not acknowledged.
    unacknowledged: usize,
    /// Shelved alarms.
    shelved: usize,
    /// Alarms suppressed by design.
    suppressed: usize,
    /// Alarms out of service.
    out_of_service: usize,
}

/// Alarm-system figures: counts by overlay, flood and chattering.
#[utoipa::path(get, path = "/api/v1/alarms/summary", tag = "alarms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The figures", body = Summary),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn summary(State(s): State<AppState>) -> Json<Summary> {
    let alarms = s.live.active_alarms();
    let count = |f: fn(&AlarmEvent) -> bool| alarms.iter().filter(|e| f(e)).count();
    Json(Summary {
        stats: s.live.stats(),
        annunciated: count(AlarmEvent::annunciated),
        unacknowledged: count(|e| !e.acknowledged),
        shelved: count(|e| e.shelved_until.is_some()),
        suppressed: count(|e| e.suppressed),
        out_of_service: count(|e| e.out_of_service),
    })
}

/// Query of the alarm history; times are RFC 3339 or ms since the epoch.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    /// Start (RFC 3339 or ms since the epoch).
    #[param(schema_with = super::time_param::schema)]
    from: Option<String>,
    /// End (RFC 3339 or ms since the epoch).
    #[param(schema_with = super::time_param::schema)]
    to: Option<String>,
    /// Only this alarm id.
    alarm: Option<String>,
    /// Only this hazard source.
    hazard_source: Option<String>,
    /// Only this priority or a more urgent one.
    priority: Option<Priority>,
    /// Only acknowledgements the operator gave this category.
    category: Option<AckCategory>,
    /// Page backwards: only transitions with a sequence number below this.
    #[param(minimum = 0)]
    before: Option<i64>,
    /// Most transitions returned (capped at 10,000); default 500.
    #[param(minimum = 0)]
    limit: Option<i64>,
}

/// Journaled alarm transitions, newest first; page with `before`.
#[utoipa::path(get, path = "/api/v1/alarms/history", tag = "alarms",
    security(("bearer" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "Transitions, newest first", body = Vec<AlarmView>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn history(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Vec<AlarmView>>, ApiError> {
    let filter = HistoryFilter {
        from: q
            .from
            .as_deref()
            .map(|t| super::time_param::parse_time("from", t))
            .transpose()?,
        to: q
            .to
            .as_deref()
            .map(|t| super::time_param::parse_time("to", t))
            .transpose()?,
        alarm_id: q.alarm,
        hazard_source: q.hazard_source,
        min_priority: q.priority,
        category: q.category,
        before_seq: q.before.map(|b| non_negative("before", b)).transpose()?,
        limit: q
            .limit
            .map(|l| non_negative("limit", l))
            .transpose()?
            .map_or(500, |l| l.min(10_000) as usize),
    };
    let journal = s.journal.clone();
    let events = tokio::task::spawn_blocking(move || journal.history(&filter))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(events.into_iter().map(AlarmView::from).collect()))
}

/// A count or sequence number from a query: never negative.
pub(super) fn non_negative(name: &'static str, value: i64) -> Result<u64, ApiError> {
    u64::try_from(value).map_err(|_| ApiError::BadParam {
        name,
        reason: format!("must not be negative, got {value}"),
    })
}
