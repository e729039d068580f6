//! `GET /healthz` and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;

pub(super) async fn healthz(State(s): State<AppState>) -> Json<Value> {
    let now = s.clock.now();
    Json(json!({
        "status": "ok",
        "gateway_id": s.live.gateway_id,
        "uptime_s": now.since(s.live.started).as_secs(),
        "points": s.live.points.len(),
        "active_alarms": s.live.active_alarms().len(),
    }))
}

/// `GET /readyz`: 200 while the rules engine is evaluating and no store's buffer is over the
/// `[ops]` limit; 503 with the reasons otherwise (an alarm could be missed, or a store has been
/// unreachable long enough that its backlog needs a look).
pub(super) async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let problems = s.readiness.read().unwrap_or_else(|p| p.into_inner()).problems(
        s.clock.now(),
        s.live.rules_heartbeat(),
        &s.metrics.tsdb,
    );
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": problems.is_empty(), "problems": problems })),
    )
}

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
        assert!(r.problems(Timestamp::from_millis(15_000), beat, &tsdb).is_empty());
        let p = r.problems(Timestamp::from_millis(15_001), beat, &tsdb);
        assert_eq!(p, vec!["rules engine silent for 5 s".to_string()]);
    }
}
