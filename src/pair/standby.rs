//! What a standby serves on the gateway's API address: its role, its metrics, and a redirect
//! to the active for everything else (the console, alarms, acknowledgements), so a duty
//! officer who opens the standby's address lands on the node that monitors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::api::pair::PairStatus;
use crate::telemetry::LogEvery;

async fn pair(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    axum::Json(PairStatus::of(Some(&s.view)))
}

async fn healthz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    axum::Json(json!({ "status": "ok", "role": s.view.role().as_str(), "node": s.view.node }))
}

fn where_active(s: &Shared) -> String {
    match s.view.active_api() {
        Some(api) => format!("standby: the active node {} is at {api}", s.view.peer),
        None => "standby: no active node known yet".to_string(),
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "ready": false, "problems": [where_active(&s)] })),
    )
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

async fn elsewhere(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match s.view.active_api() {
        // 307 keeps the method and body: an acknowledgement goes to the active unchanged.
        Some(api) => Redirect::temporary(&format!("{api}{path}")).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error": where_active(&s) })),
        )
            .into_response(),
    }
}

/// Serves the standby's answers on `listen` until `stop`. An address still held (the gateway
/// that ran here a moment ago, another program) is tried again each second rather than left
/// unserved: without it, keepalived's check and the plant's monitoring cannot see the standby.
pub fn serve(listen: SocketAddr, shared: Arc<Shared>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Once, then at most every minute: bounded while the address stays taken.
        let mut log = LogEvery::new(std::time::Duration::from_secs(60));
        let mut waited = false;
        let listener = loop {
            match TcpListener::bind(listen).await {
                Ok(l) => break l,
                Err(e) => {
                    waited = true;
                    if let Some(held) = log.hit() {
                        tracing::warn!(addr = %listen, error = %e, not_logged_since_last = held, "Pair: cannot serve the standby's role on the API address; trying again each second");
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        };
        if waited {
            tracing::info!(addr = %listen, "Pair: serving the standby's role on the API address");
        }
        let app = Router::new()
            .route("/api/v1/pair", get(pair))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .fallback(elsewhere)
            .with_state(shared);
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    })
}
