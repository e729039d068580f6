//! `GET /healthz` and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
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

pub(super) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}
