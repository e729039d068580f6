//! Alarm endpoints: the visible alarms, flood/chatter summary, journal history, and operator
//! commands (acknowledge, shelve, unshelve, reset, out of service, return to service).

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::auth::Principal;
use super::{ApiError, AppState, rfc3339};
use crate::config::units::parse_duration;
use crate::model::{AlarmClass, AlarmEvent, AlarmState, Priority};
use crate::rules::{AlarmStats, Command, CommandError};
use crate::sinks::journal::HistoryFilter;
use crate::state::CommandRequest;

/// An alarm as the API shows it.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Deserialize)]
pub(super) struct ActiveQuery {
    state: Option<AlarmState>,
    priority: Option<Priority>,
    class: Option<AlarmClass>,
    hazard_source: Option<String>,
    /// Only alarms asking for attention (not shelved, suppressed or out of service).
    annunciated: Option<bool>,
}

pub(super) async fn active(State(s): State<AppState>, Query(q): Query<ActiveQuery>) -> Json<Vec<AlarmView>> {
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
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    #[serde(flatten)]
    stats: AlarmStats,
    annunciated: usize,
    unacknowledged: usize,
    shelved: usize,
    suppressed: usize,
    out_of_service: usize,
}

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
#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    alarm: Option<String>,
    hazard_source: Option<String>,
    priority: Option<Priority>,
    /// Page backwards: only transitions with a sequence number below this.
    before: Option<u64>,
    limit: Option<usize>,
}

pub(super) async fn history(
    State(s): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<AlarmView>>, ApiError> {
    let filter = HistoryFilter {
        from: q
            .from
            .as_deref()
            .map(|t| super::points::parse_time("from", t))
            .transpose()?,
        to: q
            .to
            .as_deref()
            .map(|t| super::points::parse_time("to", t))
            .transpose()?,
        alarm_id: q.alarm,
        hazard_source: q.hazard_source,
        min_priority: q.priority,
        before_seq: q.before,
        limit: q.limit.unwrap_or(500).min(10_000),
    };
    let journal = s.journal.clone();
    let events = tokio::task::spawn_blocking(move || journal.history(&filter))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(events.into_iter().map(AlarmView::from).collect()))
}

/// Body of an operator command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandBody {
    /// Who acts (journaled); with bearer tokens the token's name is used instead.
    #[serde(default)]
    user: String,
    /// Why (journaled); required to shelve, reset or take out of service.
    #[serde(default)]
    comment: String,
    /// How long to shelve (`"2h"`).
    #[serde(default)]
    duration: Option<String>,
}

pub(super) async fn command(
    State(s): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((id, action)): Path<(String, String)>,
    Json(body): Json<CommandBody>,
) -> Result<Json<AlarmView>, ApiError> {
    let bad = |name: &'static str, reason: &str| ApiError::BadParam {
        name,
        reason: reason.to_string(),
    };
    let command = match action.as_str() {
        "ack" => Command::Acknowledge,
        "reset" => Command::Reset,
        "shelve" => {
            let d = body
                .duration
                .as_deref()
                .ok_or_else(|| bad("duration", "shelving needs a duration, e.g. \"2h\""))?;
            Command::Shelve(parse_duration(d).map_err(|e| bad("duration", &e))?)
        }
        "unshelve" => Command::Unshelve,
        "out-of-service" => Command::RemoveFromService,
        "return-to-service" => Command::ReturnToService,
        _ => {
            return Err(bad(
                "action",
                "one of ack, shelve, unshelve, reset, out-of-service, return-to-service",
            ));
        }
    };
    let user = principal.user.unwrap_or(body.user);
    if user.trim().is_empty() {
        return Err(bad("user", "who acts must be recorded"));
    }
    let needs_reason = matches!(
        command,
        Command::Shelve(_) | Command::Reset | Command::RemoveFromService
    );
    if needs_reason && body.comment.trim().is_empty() {
        return Err(bad("comment", "this action needs a reason"));
    }
    let (reply, answer) = oneshot::channel();
    let req = CommandRequest {
        alarm_id: id,
        command,
        user,
        comment: body.comment,
        reply,
    };
    s.commands.send(req).await.map_err(|_| ApiError::Unavailable)?;
    match answer.await.map_err(|_| ApiError::Unavailable)? {
        Ok(event) => Ok(Json(event.into())),
        Err(CommandError::UnknownAlarm(id)) => Err(ApiError::UnknownAlarm(id)),
        Err(e @ CommandError::ShelveTooLong { .. }) => Err(bad("duration", &e.to_string())),
        Err(e) => Err(ApiError::Conflict(e.to_string())),
    }
}
