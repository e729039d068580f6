//! The HTTP API: REST under `/api/v1`, the SSE alarm feed, health, metrics and the console.
//!
//! The API only reads shared state, the history store and the journal; it never drives devices.

mod ack_many;
pub mod admin;
mod alarms;
pub mod auth;
mod commands;
mod completeness;
pub mod config;
mod devices;
mod error;
mod events;
mod feed_readings;
mod kpi;
pub mod labels;
pub mod openapi;
mod ops;
mod page;
pub mod pair;
mod points;
pub mod policy;
pub mod server;
mod session;
pub mod shifts;
mod time_param;
mod tuning;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::clock::SharedClock;
use crate::model::Timestamp;
use crate::sinks::history::HistoryReader;
use crate::sinks::journal::AlarmJournal;
use crate::state::devices::HealthBoard;
use crate::state::{CommandSender, LiveState};
use crate::telemetry::Metrics;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Live values and alarms.
    pub live: Arc<LiveState>,
    /// Reading history.
    pub history: Arc<HistoryReader>,
    /// Alarm journal (for feed replay).
    pub journal: Arc<AlarmJournal>,
    /// Metrics to render and to count API events.
    pub metrics: Metrics,
    /// Wall clock.
    pub clock: SharedClock,
    /// The gateway's start and stop times (completeness ledger).
    pub run_log: Arc<crate::sinks::runlog::RunLog>,
    /// The gateway's data dir: the completeness ledger reads the uplinks' late-delivery logs
    /// (`uplinks/<name>/late.log`) from it.
    pub data_dir: std::path::PathBuf,
    /// Fires at shutdown so long-lived feeds end and the server can drain.
    pub shutdown: CancellationToken,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Longest an ordinary request may take (the live feed is exempt).
    pub request_timeout: Duration,
    /// Operator commands to the rules task.
    pub commands: CommandSender,
    /// Accepted bearer tokens (none: open API); replaced on reload.
    pub auth: Arc<auth::Tokens>,
    /// Health of every polled device.
    pub devices: Arc<HealthBoard>,
    /// What `/readyz` checks beyond the rules engine (a std lock: never held across an await).
    pub readiness: Arc<std::sync::RwLock<crate::health::Readiness>>,
    /// Config reload requests to the pipeline.
    pub reload: admin::ReloadSender,
    /// What sounds in the console and who may shelve what (a std lock, replaced on reload;
    /// never held across an await).
    pub policy: Arc<std::sync::RwLock<policy::ConsolePolicy>>,
    /// The hot-standby pair this gateway is the active node of, if any.
    pub pair: Option<Arc<crate::model::pair::PairView>>,
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body;
    let request_timeout = state.request_timeout;
    let guard = |needs| auth::Guard {
        auth: state.auth.clone(),
        needs,
    };
    let viewer = Router::new()
        .route("/api/v1/points", get(points::list))
        .route("/api/v1/points/{id}/history", get(points::history))
        .route("/api/v1/alarms", get(alarms::active))
        .route("/api/v1/alarms/summary", get(alarms::summary))
        .route("/api/v1/alarms/history", get(alarms::history))
        .route("/api/v1/completeness", get(completeness::ledger))
        .route("/api/v1/completeness/report.csv", get(completeness::report_csv))
        .route("/api/v1/completeness/report.json", get(completeness::report_json))
        .route("/api/v1/kpi", get(kpi::kpi))
        .route("/api/v1/kpi/report.html", get(kpi::report_html))
        .route("/api/v1/kpi/report.csv", get(kpi::report_csv))
        .route("/api/v1/devices", get(devices::list))
        .route("/api/v1/console", get(session::settings))
        .route("/api/v1/tuning", get(tuning::suggestions))
        .route_layer(middleware::from_fn_with_state(guard(auth::Role::Viewer), auth::require));
    // The feed also takes its token from the query (EventSource sends no headers): the
    // outer layer moves it into the header the guard checks.
    let feed = Router::new()
        .route("/api/v1/events", get(events::feed))
        .route_layer(middleware::from_fn_with_state(guard(auth::Role::Viewer), auth::require))
        .route_layer(middleware::from_fn(events::token_from_query));
    let operator = Router::new()
        .route("/api/v1/alarms/ack", post(ack_many::ack_many))
        .route("/api/v1/alarms/{id}/ack", post(commands::ack))
        .route("/api/v1/alarms/{id}/shelve", post(commands::shelve))
        .route("/api/v1/alarms/{id}/unshelve", post(commands::unshelve))
        .route("/api/v1/alarms/{id}/reset", post(commands::reset))
        .route("/api/v1/alarms/{id}/out-of-service", post(commands::out_of_service))
        .route(
            "/api/v1/alarms/{id}/return-to-service",
            post(commands::return_to_service),
        )
        .route_layer(middleware::from_fn_with_state(
            guard(auth::Role::Operator),
            auth::require,
        ));
    let admin = Router::new()
        .route("/api/v1/admin/reload", post(admin::reload))
        .route("/api/v1/pair/handover", post(pair::handover))
        .route_layer(middleware::from_fn_with_state(guard(auth::Role::Admin), auth::require));
    // Everything but the feed answers within the request timeout (408 after it).
    let bounded = Router::new()
        .route("/", get(page::index))
        .route("/performance", get(page::performance))
        .route("/completeness", get(page::completeness))
        .route("/console/{file}", get(page::file))
        .route("/healthz", get(ops::healthz))
        .route("/api/v1/pair", get(pair::status))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .merge(viewer)
        .merge(operator)
        .merge(admin)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ));
    bounded
        .merge(feed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(max_body, refuse_declared_oversize))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(on_failure),
        )
        .with_state(state)
}

/// 413 at once for a body whose declared length is over the limit, before any of it is read;
/// bodies without a length are cut at the limit by the `Json` extractor (also 413).
async fn refuse_declared_oversize(
    axum::extract::State(max_body): axum::extract::State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return ApiError::Rejected {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("request body over the limit of {max_body} bytes"),
        }
        .into_response();
    }
    next.run(req).await
}

/// The span of one request, as tower-http's default (same target, so `RUST_LOG=tower_http=debug`
/// still shows it) but with any token in the URI redacted.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!(
        target: "tower_http::trace::make_span",
        "request",
        method = %req.method(),
        uri = %events::redacted_uri(req.uri()),
        version = ?req.version(),
    )
}

/// A 503 is an answer ("not ready", "busy"), not a failure of the gateway: `/readyz` gives
/// one to every probe for as long as a reason lasts, and a line per probe at ERROR would bury
/// real errors (the reasons are in the answer, the metrics and the components' own logs).
/// Other server errors and broken responses stay at ERROR, as tower-http logs them.
fn on_failure(
    class: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass;
    let latency_ms = latency.as_millis() as u64;
    match class {
        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(target: "tower_http::trace::on_failure", latency_ms, "response: 503 service unavailable")
        }
        other => {
            tracing::error!(target: "tower_http::trace::on_failure", classification = %other, latency_ms, "response failed")
        }
    }
}

/// Serves the API on `listener` (over TLS when given an acceptor) until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<TlsAcceptor>,
    limits: server::Limits,
    shutdown: CancellationToken,
) {
    server::run(listener, router(state), tls, limits, shutdown).await;
}

/// RFC 3339 text of a timestamp, in UTC with milliseconds.
pub fn rfc3339(ts: Timestamp) -> String {
    let ms = u64::try_from(ts.as_millis()).unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
