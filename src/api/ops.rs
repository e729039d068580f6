//! `GET /healthz` and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;
use crate::model::Timestamp;

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

/// `GET /readyz`: 200 while the rules engine is evaluating, 503 when it has stalled (an alarm
/// could be missed), with the reason.
pub(super) async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let problems = readiness_problems(s.clock.now(), s.live.rules_heartbeat());
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

/// Why the gateway is not ready at `now`, given the rules task's last heartbeat.
fn readiness_problems(now: Timestamp, rules_heartbeat: Timestamp) -> Vec<String> {
    crate::health::rules_problem(now, rules_heartbeat).into_iter().collect()
}

pub(super) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_rules_engine_makes_the_gateway_unready() {
        let beat = Timestamp::from_millis(10_000);
        assert!(readiness_problems(Timestamp::from_millis(15_000), beat).is_empty());
        let p = readiness_problems(Timestamp::from_millis(15_001), beat);
        assert_eq!(p, vec!["rules engine silent for 5 s".to_string()]);
    }
}
