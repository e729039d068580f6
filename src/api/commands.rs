//! Operator commands on one alarm, each at its own path under `/api/v1/alarms/{id}/`:
//! `ack`, `shelve`, `unshelve`, `reset`, `out-of-service`, `return-to-service`, and the
//! acknowledgement of several alarms at once (`/api/v1/alarms/ack`). Each is journaled with
//! the user (the token's name when tokens are configured) and the comment; an acknowledgement
//! also with the operator's category (real alarm, false alarm, ...), when given.
//!
//! One path per action, so each documents exactly the body it needs: shelve, reset and
//! out-of-service need a reason, shelve also a duration. The category is optional in the API
//! so that clients written before it keep working; the console always asks for one.

use axum::Json;
use axum::extract::{Extension, State};
use serde::Deserialize;
use tokio::sync::oneshot;
use utoipa::ToSchema;

use super::alarms::AlarmView;
use super::auth::Principal;
use super::error::{ApiJson, ApiPath, ErrorBody};
use super::policy::ShelveRefusal;
use super::{ApiError, AppState};
use crate::model::AckCategory;
use crate::rules::{Command, CommandError};
use crate::spec::units::parse_duration;
use crate::state::CommandRequest;

/// Body of a command that needs no reason (ack, unshelve, return-to-service).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandBody {
    /// Who acts (journaled); with bearer tokens the token's name is used instead.
    #[serde(default)]
    user: String,
    /// Remark (journaled).
    #[serde(default)]
    comment: String,
}

/// Body of an acknowledgement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    /// Who acts (journaled); with bearer tokens the token's name is used instead.
    #[serde(default)]
    user: String,
    /// Remark (journaled).
    #[serde(default)]
    comment: String,
    /// What the operator found the alarm to be (journaled with the acknowledgement).
    #[serde(default)]
    category: Option<AckCategory>,
}

/// Body of a command that needs a reason (reset, out-of-service).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    /// Who acts (journaled); with bearer tokens the token's name is used instead.
    #[serde(default)]
    user: String,
    /// Why (journaled).
    #[schema(min_length = 1)]
    comment: String,
}

/// Body of a shelve command.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ShelveBody {
    /// Who acts (journaled); with bearer tokens the token's name is used instead.
    #[serde(default)]
    user: String,
    /// Why (journaled).
    #[schema(min_length = 1)]
    comment: String,
    /// How long, in the config files' duration grammar (e.g. `"30m"`, `"1h30m"`); at most the
    /// site's `alarms.max_shelve` and its `alarms.shelving.<priority>.max`.
    #[schema(pattern = "^([0-9]{1,9}(ns|us|ms|s|m|h|d)){1,4}$", example = "2h")]
    duration: String,
}

/// Who acts, why, and (on an acknowledgement) what they found.
#[derive(Debug, Clone)]
pub(super) struct Act {
    user: String,
    comment: String,
    category: Option<AckCategory>,
}

impl Act {
    /// Who acts, their comment and (for an acknowledgement) category.
    pub(super) fn new(user: String, comment: String, category: Option<AckCategory>) -> Self {
        Act {
            user,
            comment,
            category,
        }
    }
}

impl From<CommandBody> for Act {
    fn from(b: CommandBody) -> Self {
        Act {
            user: b.user,
            comment: b.comment,
            category: None,
        }
    }
}

impl From<AckBody> for Act {
    fn from(b: AckBody) -> Self {
        Act {
            user: b.user,
            comment: b.comment,
            category: b.category,
        }
    }
}

impl From<ReasonBody> for Act {
    fn from(b: ReasonBody) -> Self {
        Act {
            user: b.user,
            comment: b.comment,
            category: None,
        }
    }
}

impl From<ShelveBody> for Act {
    fn from(b: ShelveBody) -> Self {
        Act {
            user: b.user,
            comment: b.comment,
            category: None,
        }
    }
}

/// Sends `command` to the rules task and returns the resulting transition.
pub(super) async fn run(
    s: &AppState,
    principal: Principal,
    alarm_id: String,
    command: Command,
    act: Act,
) -> Result<Json<AlarmView>, ApiError> {
    let Act {
        user,
        comment,
        category,
    } = act;
    let bad = |name: &'static str, reason: &str| ApiError::BadParam {
        name,
        reason: reason.to_string(),
    };
    if let Command::Shelve(duration) = command {
        // The site's shelving rules (ISA-18.2), by the alarm's priority and the caller's role.
        let priority = s
            .live
            .active_alarms()
            .into_iter()
            .find(|e| e.alarm_id == alarm_id)
            .map(|e| e.priority);
        let refusal = priority.and_then(|p| {
            s.policy
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .refuse_shelve(p, principal.role, duration)
        });
        if let Some(refusal) = refusal {
            tracing::warn!(alarm = %alarm_id, role = %principal.role, user = ?principal.user, reason = %refusal,
                           "shelving refused by the site's rules");
            return Err(match refusal {
                ShelveRefusal::TooLong { .. } => ApiError::Conflict(refusal.to_string()),
                _ => ApiError::Forbidden(refusal.to_string()),
            });
        }
    }
    let user = principal.user.unwrap_or(user);
    if user.trim().is_empty() {
        return Err(bad("user", "who acts must be recorded"));
    }
    let needs_reason = matches!(
        command,
        Command::Shelve(_) | Command::Reset | Command::RemoveFromService
    );
    if needs_reason && comment.is_empty() {
        return Err(bad("comment", "this action needs a reason"));
    }
    let (reply, answer) = oneshot::channel();
    let req = CommandRequest {
        alarm_id,
        command,
        user,
        comment,
        category,
        reply,
    };
    s.commands.send(req).await.map_err(|_| ApiError::Unavailable)?;
    match answer.await.map_err(|_| ApiError::Unavailable)? {
        Ok(event) => Ok(Json(event.into())),
        Err(CommandError::UnknownAlarm(id)) => Err(ApiError::UnknownAlarm(id)),
        // Longer than this site allows: the request is well-formed, the site's limit refuses it.
        Err(e) => Err(ApiError::Conflict(e.to_string())),
    }
}

/// Reads a command body: a JSON object only (serde would take `[]` for a struct whose fields
/// all have defaults), 422 otherwise, as for any body that is not the action's.
fn object_body<T: serde::de::DeserializeOwned>(raw: serde_json::Value) -> Result<T, ApiError> {
    let invalid = |message: String| ApiError::Rejected {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        message,
    };
    if !raw.is_object() {
        return Err(invalid("the body must be a JSON object".into()));
    }
    serde_json::from_value(raw).map_err(|e| invalid(format!("invalid body: {e}")))
}

/// Declares one command endpoint: its handler, body type and OpenAPI description.
macro_rules! command_endpoint {
    ($name:ident, $path:literal, $body:ty, $doc:literal, |$b:ident| $command:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "alarms",
            security(("bearer" = [])),
            params(("id" = String, Path, description = "Alarm id, e.g. `MHS-001/GT-101:high` (URL-encoded)")),
            request_body = $body,
            responses(
                (status = 200, description = "The resulting transition", body = AlarmView),
                (status = 400, description = "A bad parameter or body", body = ErrorBody),
                (status = 401, description = "No or unknown token", body = ErrorBody),
                (status = 403, description = "The token's role may not act on alarms, or may not shelve one of this priority", body = ErrorBody),
                (status = 404, description = "No such alarm", body = ErrorBody),
                (status = 409, description = "The alarm's state or the site's limits do not allow it", body = ErrorBody),
                (status = 413, description = "Body over the size limit", body = ErrorBody),
                (status = 415, description = "Body is not `application/json`", body = ErrorBody),
                (status = 422, description = "Body is JSON but not this command's", body = ErrorBody),
                (status = 503, description = "The alarm system is shutting down", body = ErrorBody),
            ))]
        pub(super) async fn $name(
            State(s): State<AppState>,
            Extension(principal): Extension<Principal>,
            ApiPath(id): ApiPath<String>,
            ApiJson(raw): ApiJson<serde_json::Value>,
        ) -> Result<Json<AlarmView>, ApiError> {
            let $b: $body = object_body(raw)?;
            let command: Result<Command, ApiError> = $command;
            run(&s, principal, id, command?, $b.into()).await
        }
    };
}

command_endpoint!(
    ack,
    "/api/v1/alarms/{id}/ack",
    AckBody,
    "Acknowledge (ISA-18.2): the operator has seen it; `category` records what they found.",
    |b| Ok(Command::Acknowledge)
);
command_endpoint!(
    unshelve,
    "/api/v1/alarms/{id}/unshelve",
    CommandBody,
    "End shelving now.",
    |b| Ok(Command::Unshelve)
);
command_endpoint!(
    return_to_service,
    "/api/v1/alarms/{id}/return-to-service",
    CommandBody,
    "Return an out-of-service alarm to service.",
    |b| Ok(Command::ReturnToService)
);
command_endpoint!(
    reset,
    "/api/v1/alarms/{id}/reset",
    ReasonBody,
    "Reset a latched alarm whose condition has cleared.",
    |b| Ok(Command::Reset)
);
command_endpoint!(
    out_of_service,
    "/api/v1/alarms/{id}/out-of-service",
    ReasonBody,
    "Take an alarm out of service for maintenance.",
    |b| Ok(Command::RemoveFromService)
);
command_endpoint!(
    shelve,
    "/api/v1/alarms/{id}/shelve",
    ShelveBody,
    "Shelve: silence an alarm for a while (it returns when the time is up).",
    |b| parse_duration(&b.duration)
        .map(Command::Shelve)
        .map_err(|reason| ApiError::BadParam {
            name: "duration",
            reason
        })
);
