//! `GET /healthz` and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    status: &'static str,
    /// Gateway id.
    gateway_id: String,
    /// Seconds since start.
    uptime_s: u64,
    /// Configured points.
    points: usize,
    /// Visible alarms.
    active_alarms: usize,
}

/// Whether the gateway does its job.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Ready {
    /// True when nothing is wrong.
    ready: bool,
    /// What is wrong.
    problems: Vec<String>,
}

/// Liveness: answers while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub(super) async fn healthz(State(s): State<AppState>) -> Json<Health> {
    let now = s.clock.now();
    Json(Health {
        status: "ok",
        gateway_id: s.live.gateway_id.clone(),
        uptime_s: now.since(s.live.started).as_secs(),
        points: s.live.points.len(),
        active_alarms: s.live.active_alarms().len(),
    })
}

/// `GET /readyz`: 200 while the rules engine is evaluating, no store's buffer is over the
/// `[ops]` limit, no MQTT broker is lost and no notification target is stuck; 503 with the reasons otherwise (an alarm could be
/// missed, a store has been unreachable long enough that its backlog needs a look, or a
/// broker's points are blind).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready, with the reasons", body = Ready),
    ))]
pub(super) async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Ready>) {
    let problems = {
        // A std lock: nothing awaits while it is held.
        let r = s.readiness.read().unwrap_or_else(|p| p.into_inner());
        let mut p = r.problems(
            s.clock.now(),
            s.live.rules_heartbeat(),
            &s.metrics.tsdb,
            s.metrics.journal_held.get(),
            &s.metrics.mqtt_in,
            s.live.diagnostics(),
        );
        p.extend(r.notify_problems(&s.metrics.webhook_failing));
        p.extend(r.north_problems(&s.metrics.north.buffer_pending_bytes));
        p
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            ready: problems.is_empty(),
            problems,
        }),
    )
}

/// Prometheus metrics (text exposition format; names in docs/metrics.md).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain")))]
pub(super) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use crate::model::Timestamp;

    #[test]
    fn a_silent_rules_engine_makes_the_gateway_unready() {
        let beat = Timestamp::from_millis(10_000);
        let r = crate::health::Readiness::default();
        let tsdb = crate::telemetry::TsdbMetrics::default();
        let mqtt = crate::telemetry::MqttInMetrics::default();
        assert!(
            r.problems(Timestamp::from_millis(15_000), beat, &tsdb, 0, &mqtt, Vec::new())
                .is_empty()
        );
        let p = r.problems(Timestamp::from_millis(15_001), beat, &tsdb, 0, &mqtt, Vec::new());
        assert_eq!(p, vec!["rules engine silent for 5 s".to_string()]);
    }
}
