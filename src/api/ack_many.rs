//! Acknowledging several alarms in one action (`POST /api/v1/alarms/ack`): every alarm of a
//! point, or the rows a duty officer selected. Each is acknowledged on its own, in the order
//! given, and journaled as its own transition with the same user, comment and category, so
//! the journal reads exactly as if they had been acknowledged one by one.

use axum::Json;
use axum::extract::{Extension, State};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::alarms::AlarmView;
use super::auth::Principal;
use super::commands::{Act, run};
use super::error::{ApiJson, ErrorBody};
use super::{ApiError, AppState};
use crate::model::AckCategory;
use crate::rules::Command;

/// Most alarms one request may acknowledge: more than a flood shows on one screen, few
/// enough that the request ends well within the request timeout.
pub(super) const MAX_ALARMS: usize = 500;

/// Acknowledgements of one request waiting for the rules task at once (its queue holds 64).
const IN_FLIGHT: usize = 32;

/// Body of an acknowledgement of several alarms.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AckManyBody {
    /// The alarms, by id; acknowledged in this order.
    #[schema(min_items = 1, max_items = 500)]
    alarm_ids: Vec<String>,
    /// Who acts (journaled); with bearer tokens the token's name is used instead.
    #[serde(default)]
    user: String,
    /// Remark (journaled with each).
    #[serde(default)]
    comment: String,
    /// What the operator found the alarms to be (journaled with each).
    #[serde(default)]
    category: Option<AckCategory>,
}

/// One alarm that was not acknowledged, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AckRefusal {
    /// The alarm.
    alarm_id: String,
    /// The code a single acknowledgement would have answered (`unknown_alarm`, `conflict`, ...).
    error: String,
    /// Why.
    message: String,
}

/// What became of each alarm.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AckManyResult {
    /// The resulting transitions of the alarms acknowledged.
    acknowledged: Vec<AlarmView>,
    /// The alarms not acknowledged (already acknowledged, unknown, ...).
    refused: Vec<AckRefusal>,
}

/// Acknowledge several alarms (ISA-18.2), each journaled on its own with the same user,
/// comment and category. An alarm that cannot be acknowledged is listed in `refused` and does
/// not stop the others.
#[utoipa::path(post, path = "/api/v1/alarms/ack", tag = "alarms",
    security(("bearer" = [])),
    request_body = AckManyBody,
    responses(
        (status = 200, description = "What became of each alarm", body = AckManyResult),
        (status = 400, description = "No alarms, too many, or no user to record", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "The token's role may not act on alarms", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = ErrorBody),
        (status = 422, description = "Body is JSON but not this command's", body = ErrorBody),
        (status = 503, description = "The alarm system is shutting down", body = ErrorBody),
    ))]
pub(super) async fn ack_many(
    State(s): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<AckManyBody>,
) -> Result<Json<AckManyResult>, ApiError> {
    if body.alarm_ids.is_empty() || body.alarm_ids.len() > MAX_ALARMS {
        return Err(ApiError::BadParam {
            name: "alarm_ids",
            reason: format!("give 1 to {MAX_ALARMS} alarm ids, got {}", body.alarm_ids.len()),
        });
    }
    let act = Act::new(body.user, body.comment, body.category);
    let mut out = AckManyResult {
        acknowledged: Vec::new(),
        refused: Vec::new(),
    };
    // Several in flight, sent in order: the rules task takes them in that order and the
    // journal writer commits a burst of them in one transaction, not one fsync each.
    let answers: Vec<_> = futures::stream::iter(body.alarm_ids)
        .map(|alarm_id| {
            let answer = run(
                &s,
                principal.clone(),
                alarm_id.clone(),
                Command::Acknowledge,
                act.clone(),
            );
            async move { (alarm_id, answer.await) }
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    for (alarm_id, answer) in answers {
        match answer {
            Ok(Json(view)) => out.acknowledged.push(view),
            // Nobody to record, or the alarm system stopping: the same for every alarm.
            Err(e @ (ApiError::BadParam { .. } | ApiError::Unavailable)) => return Err(e),
            Err(e) => out.refused.push(AckRefusal {
                alarm_id,
                error: e.code().1.to_string(),
                message: e.to_string(),
            }),
        }
    }
    tracing::info!(user = ?principal.user, acknowledged = out.acknowledged.len(), refused = out.refused.len(),
                   "Alarms acknowledged together");
    Ok(Json(out))
}
