//! `GET /api/v1/alarms`: the active alarms, most urgent first.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{AppState, rfc3339};
use crate::model::AlarmEvent;

/// An active alarm as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct AlarmView {
    #[serde(flatten)]
    event: AlarmEvent,
    /// When it was raised, RFC 3339.
    raised_at: String,
    /// One-line description.
    message: String,
}

pub(super) async fn active(State(s): State<AppState>) -> Json<Vec<AlarmView>> {
    Json(
        s.live
            .active_alarms()
            .into_iter()
            .map(|event| AlarmView {
                raised_at: rfc3339(event.ts),
                message: event.message(),
                event,
            })
            .collect(),
    )
}
