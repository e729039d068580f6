//! The API's one error type: a stable code per variant, bad input returned, not logged.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
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
    /// The site's rules do not let this caller do this (e.g. shelve a critical alarm).
    #[error("{0}")]
    Forbidden(String),
    /// The rules engine is not taking commands (shutting down).
    #[error("the alarm system is shutting down")]
    Unavailable,
    /// A store failed; details go to the log, not the client.
    #[error("internal error")]
    Internal(String),
    /// The request could not be read: a malformed query, path or body, a missing content
    /// type, a body over the size limit. Keeps the status the extractor chose.
    #[error("{message}")]
    Rejected {
        /// 400, 413, 415 or 422.
        status: StatusCode,
        /// What the extractor said.
        message: String,
    },
}

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody {
    /// Stable machine-readable code (`unknown_point`, `bad_parameter`, `unauthenticated`…).
    pub(super) error: String,
    /// Human-readable explanation.
    pub(super) message: String,
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::Rejected {
            status: r.status(),
            message: r.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::Rejected {
            status: r.status(),
            message: r.body_text(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::Rejected {
            status: r.status(),
            message: r.body_text(),
        }
    }
}

/// `Query` whose rejection is an [`ApiError`] (JSON, like every other error).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(super) struct ApiQuery<T>(pub(super) T);

/// `Path` whose rejection is an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(super) struct ApiPath<T>(pub(super) T);

/// `Json` body whose rejection is an [`ApiError`] (413 past the body limit).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(super) struct ApiJson<T>(pub(super) T);

impl ApiError {
    pub(super) fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::UnknownPoint(_) => (StatusCode::NOT_FOUND, "unknown_point"),
            ApiError::UnknownAlarm(_) => (StatusCode::NOT_FOUND, "unknown_alarm"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::BadParam { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Rejected { status, .. } => (
                *status,
                match *status {
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
                    _ => "bad_request",
                },
            ),
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
