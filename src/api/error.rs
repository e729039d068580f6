//! The API's one error type: a stable code per variant, bad input returned, not logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::error;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No point with that id.
    #[error("no point `{0}`")]
    UnknownPoint(String),
    /// A query parameter could not be read.
    #[error("bad parameter `{name}`: {reason}")]
    BadParam {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No alarm with that id.
    #[error("no alarm `{0}`")]
    UnknownAlarm(String),
    /// The alarm's state does not allow the action.
    #[error("{0}")]
    Conflict(String),
    /// The rules engine is not taking commands (shutting down).
    #[error("the alarm system is shutting down")]
    Unavailable,
    /// A store failed; details go to the log, not the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::UnknownPoint(_) => (StatusCode::NOT_FOUND, "unknown_point"),
            ApiError::UnknownAlarm(_) => (StatusCode::NOT_FOUND, "unknown_alarm"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::BadParam { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            error!(error = %detail, "API request failed");
        }
        let (status, code) = self.code();
        (status, Json(json!({ "error": code, "message": self.to_string() }))).into_response()
    }
}
