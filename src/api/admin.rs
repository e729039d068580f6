//! `POST /api/v1/admin/reload` (admin role): re-read, validate and apply the config file.
//!
//! The API does not reload anything itself: it asks the pipeline's reloader through a channel
//! and returns its answer. A refused reload leaves the running config untouched.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::AppState;

/// Why a reload was not applied (or only partly).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadFailure {
    /// The new config does not validate; each error names file, line, column and key.
    #[error("the new config is invalid; the running one is kept")]
    Invalid(Vec<String>),
    /// The new config changes settings that only a restart can apply.
    #[error("the new config changes settings that need a restart; the running one is kept")]
    NeedsRestart(Vec<String>),
    /// Applying failed part-way (a store could not start); what was applied stays.
    #[error("the new config was applied only in part")]
    Partial(Vec<String>),
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    Stopping,
}

impl ReloadFailure {
    /// Stable code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ReloadFailure::Invalid(_) => "invalid_config",
            ReloadFailure::NeedsRestart(_) => "needs_restart",
            ReloadFailure::Partial(_) => "partially_applied",
            ReloadFailure::Stopping => "unavailable",
        }
    }

    /// The individual errors.
    pub fn errors(&self) -> &[String] {
        match self {
            ReloadFailure::Invalid(e) | ReloadFailure::NeedsRestart(e) | ReloadFailure::Partial(e) => e,
            ReloadFailure::Stopping => &[],
        }
    }
}

impl IntoResponse for ReloadFailure {
    fn into_response(self) -> Response {
        let status = match self {
            ReloadFailure::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ReloadFailure::NeedsRestart(_) => StatusCode::CONFLICT,
            ReloadFailure::Partial(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ReloadFailure::Stopping => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = json!({ "error": self.code(), "message": self.to_string(), "errors": self.errors() });
        (status, Json(body)).into_response()
    }
}

/// A reload request on its way to the pipeline, with where to send the outcome (a summary of
/// what changed, as JSON).
#[derive(Debug)]
pub struct ReloadRequest {
    /// Who asked (token name), for the log.
    pub user: Option<String>,
    /// The outcome.
    pub reply: oneshot::Sender<Result<Value, ReloadFailure>>,
}

/// Sender half for reload requests (held by the API).
pub type ReloadSender = mpsc::Sender<ReloadRequest>;

/// The answer to a reload that was refused or applied only in part.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ReloadRefusal {
    /// `invalid_config`, `needs_restart`, `partially_applied` or `unavailable`.
    error: String,
    /// Human-readable explanation.
    message: String,
    /// Each error, located by file, line, column and key where it comes from the config.
    errors: Vec<String>,
}

/// Re-reads the config file, validates it and applies rule, device and sink changes; active
/// alarms, their timers and buffered data are kept. A refused config leaves the running one.
#[utoipa::path(post, path = "/api/v1/admin/reload", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied, with a summary of what changed", body = Object),
        (status = 401, description = "No or unknown token", body = super::error::ErrorBody),
        (status = 403, description = "The token's role is not admin", body = super::error::ErrorBody),
        (status = 409, description = "The change needs a restart; the running config is kept", body = ReloadRefusal),
        (status = 422, description = "The new config is invalid; the running config is kept", body = ReloadRefusal),
        (status = 500, description = "Applied only in part", body = ReloadRefusal),
        (status = 503, description = "The gateway is shutting down", body = ReloadRefusal),
    ))]
pub(super) async fn reload(
    State(s): State<AppState>,
    principal: Option<axum::Extension<super::auth::Principal>>,
) -> Result<Json<Value>, ReloadFailure> {
    let (reply, answer) = oneshot::channel();
    let user = principal.and_then(|p| p.0.user);
    s.reload
        .send(ReloadRequest { user, reply })
        .await
        .map_err(|_| ReloadFailure::Stopping)?;
    let summary = answer.await.map_err(|_| ReloadFailure::Stopping)??;
    Ok(Json(json!({ "reloaded": true, "changes": summary })))
}
