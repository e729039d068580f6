//! `GET /api/v1/devices`: health of every polled device, in config order.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::{AppState, rfc3339};
use crate::model::Timestamp;
use crate::state::devices::DeviceHealthView;

/// A device's health as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DeviceView {
    #[serde(flatten)]
    health: DeviceHealthView,
    /// When it last answered a whole cycle, RFC 3339.
    last_success: Option<String>,
    /// Name, description and place from the config's `[labels.devices]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<super::labels::Label>,
}

/// Health of every polled device, in config order.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every device", body = Vec<DeviceView>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn list(State(s): State<AppState>) -> Json<Vec<DeviceView>> {
    let labels = s
        .policy
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .labels
        .devices
        .clone();
    Json(
        s.devices
            .snapshot()
            .into_iter()
            .map(|health| DeviceView {
                label: labels.get(&health.name).cloned(),
                last_success: health
                    .last_success_ms
                    .map(|ms| rfc3339(Timestamp::from_nanos(ms.saturating_mul(1_000_000)))),
                health,
            })
            .collect(),
    )
}
