//! Webhook delivery against a local receiver that fails its first attempts and later goes
//! away across a gateway restart: every journaled transition arrives (at least once, in order)
//! and each signature verifies.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{GatewayProcess, WAIT, free_port, simulator, wait_for};

const SECRET: &str = "webhook-test-secret";

#[derive(Default)]
struct Receiver {
    /// Answer 503 to this many more requests.
    fail_next: usize,
    /// Answer 503 to everything.
    down: bool,
    attempts: usize,
    /// (seq, alarm id, transition) of accepted deliveries.
    accepted: Vec<(u64, String, String)>,
    bad_signatures: usize,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut r = r.lock().unwrap();
    r.attempts += 1;
    if r.down || r.fail_next > 0 {
        r.fail_next = r.fail_next.saturating_sub(1);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let got = headers
        .get("x-hazard-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got != format!("sha256={expected}") {
        r.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let e = &v["event"];
    assert_eq!(v["gateway"], "hook-gw");
    assert_eq!(headers["x-hazard-delivery"].to_str().unwrap(), e["seq"].to_string());
    r.accepted.push((
        e["seq"].as_u64().unwrap(),
        e["alarm_id"].as_str().unwrap().into(),
        e["transition"].as_str().unwrap().into(),
    ));
    StatusCode::NO_CONTENT
}

async fn start_receiver(state: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/alarms", post(receive)).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/alarms")
}

async fn start_gateway(path: &std::path::Path, port: u16) -> GatewayProcess {
    let args = ["run".as_ref(), "--config".as_ref(), path.as_os_str()];
    GatewayProcess::spawn_with_env(&args, port, &[("HOOK_SECRET", SECRET)]).await
}

/// Journal transitions of `alarm`, oldest first, as (seq, transition).
async fn journal(gw: &GatewayProcess, alarm: &str) -> Vec<(u64, String)> {
    let h = gw
        .get_json(&format!("/api/v1/alarms/history?alarm={}", alarm.replace('/', "%2F")))
        .await;
    let mut v: Vec<_> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["transition"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.reverse();
    v
}

async fn delivered(r: &Shared, wanted: &[(u64, String)]) {
    wait_for("every transition at the receiver", WAIT, || async {
        let r = r.lock().unwrap();
        wanted
            .iter()
            .all(|(seq, _)| r.accepted.iter().any(|(s, _, _)| s == seq))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_arrives_signed_despite_failures_and_a_restart() {
    let state: Shared = Arc::new(Mutex::new(Receiver {
        fail_next: 3,
        ..Default::default()
    }));
    let url = start_receiver(state.clone()).await;
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("site.toml");
    let config = format!(
        "[gateway]\nid = \"hook-gw\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
         [[webhooks]]\nname = \"park\"\nurl = \"{url}\"\nsecret_env = \"HOOK_SECRET\"\nmin_priority = \"high\"\n\
         [[devices]]\nname = \"g\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"100ms\"\n",
        sim.local_addr()
    );
    std::fs::write(&path, config).unwrap();
    let mut gw = start_gateway(&path, port).await;

    sim.pin("ch1", 30.0);
    wait_for("raised", WAIT, || async {
        (journal(&gw, "g/ch1:high").await.len() == 1).then_some(())
    })
    .await;
    let (status, _) = gw
        .post_json(
            "/api/v1/alarms/g%2Fch1:high/ack",
            json!({"user": "op", "comment": "seen"}),
        )
        .await;
    assert_eq!(status, 200);
    sim.pin("ch1", 1.0);
    wait_for("cleared", WAIT, || async {
        (journal(&gw, "g/ch1:high").await.len() == 3).then_some(())
    })
    .await;
    let first = journal(&gw, "g/ch1:high").await;
    delivered(&state, &first).await;
    {
        let r = state.lock().unwrap();
        assert!(
            r.attempts >= r.accepted.len() + 3,
            "the first three attempts were refused"
        );
        assert_eq!(r.bad_signatures, 0);
        let order: Vec<_> = r
            .accepted
            .iter()
            .filter(|(_, id, _)| id == "g/ch1:high")
            .map(|(_, _, t)| t.as_str())
            .collect();
        assert_eq!(order, vec!["raised", "acknowledged", "cleared"]);
    }

    // The receiver goes away; a transition happens; the gateway restarts; the receiver returns.
    state.lock().unwrap().down = true;
    sim.pin("ch2", 30.0);
    wait_for("raised while the receiver is down", WAIT, || async {
        (journal(&gw, "g/ch2:high").await.len() == 1).then_some(())
    })
    .await;
    assert!(gw.signal_and_wait("TERM").success());
    let gw = start_gateway(&path, port).await;
    state.lock().unwrap().down = false;
    let second = journal(&gw, "g/ch2:high").await;
    delivered(&state, &second).await;
    let r = state.lock().unwrap();
    assert_eq!(r.bad_signatures, 0);
    let mut seqs: Vec<_> = r.accepted.iter().map(|(s, _, _)| *s).collect();
    let sorted = {
        let mut s = seqs.clone();
        s.sort();
        s
    };
    assert_eq!(seqs, sorted, "delivered in journal order");
    seqs.dedup();
    assert!(seqs.len() >= first.len() + second.len());
}
