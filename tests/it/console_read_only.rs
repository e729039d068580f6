//! Read-only by default: the real binary listening on the wildcard address (`0.0.0.0`, reached
//! through 127.0.0.1) with no tokens and no `[api] open = true` refuses every operator action
//! with a 403 that says why and how to open it, says so in its start-up log, and its console
//! (in a real browser, `tests/browser/console_read_only.mjs`) shows it read-only with no action
//! offered. The same config with `[api] open = true` acknowledges.

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use hazard_gateway::sources::sim::Simulator;
use serde_json::json;
use support::{GatewayProcess, free_port, simulator, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
const ALARM: &str = "MHS-001/GT-101:high";

fn config(sim: std::net::SocketAddr, port: u16, open: bool) -> String {
    format!(
        r#"
[gateway]
id = "read-only-gw"
data_dir = "data"
[api]
listen = "0.0.0.0:{port}"
{open}
[[devices]]
name = "gas-ai-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-001/GT-103", ch4 = "MHS-001/GT-104" }}
"#,
        open = if open { "open = true" } else { "" }
    )
}

async fn start(open: bool) -> (GatewayProcess, Simulator, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator("ai4-gas-lel", None).await;
    for (ch, v) in [("ch1", 31.0), ("ch2", 2.0), ("ch3", 2.0), ("ch4", 2.0)] {
        assert!(sim.pin(ch, v));
    }
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(sim.local_addr(), port, open)).unwrap();
    let gw = GatewayProcess::start(&path, port).await;
    wait_for("the alarm", LIMIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .any(|a| a["alarm_id"] == ALARM && a["state"] == "unack_active")
            .then_some(())
    })
    .await;
    (gw, sim, dir)
}

const ACK_PATH: &str = "/api/v1/alarms/MHS-001%2FGT-101:high/ack";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_the_wildcard_address_without_tokens_refuses_actions_and_says_why() {
    let _one = ONE_BROWSER.lock().await;
    let (mut gw, _sim, _dir) = start(false).await;
    let body = json!({"user": "值班员", "comment": "x", "category": "real_alarm"});
    let (status, err) = gw.post_json(ACK_PATH, body.clone()).await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["error"], "read_only");
    let message = err["message"].as_str().unwrap_or_default();
    for part in ["read-only", "[[api.tokens]]", "[api] open = true"] {
        assert!(message.contains(part), "the refusal says `{part}`: {message}");
    }
    let (status, err) = gw
        .post_json("/api/v1/alarms/ack", json!({"alarm_ids": [ALARM], "user": "值班员"}))
        .await;
    assert_eq!((status, err["error"].as_str()), (403, Some("read_only")), "{err}");
    let settings = gw.get_json("/api/v1/console").await;
    assert_eq!(
        (settings["read_only"].as_bool(), settings["role"].as_str()),
        (Some(true), Some("viewer"))
    );

    support::console::run_script(
        "console_read_only.mjs",
        &format!("{}/", gw.base),
        &[("ALARM_ID", ALARM)],
        LIMIT,
    )
    .await;

    let alarm = gw.get_json("/api/v1/alarms").await;
    let alarm = alarm
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alarm_id"] == ALARM)
        .cloned();
    assert_eq!(
        alarm.map(|a| a["acknowledged"].clone()),
        Some(json!(false)),
        "nothing was acknowledged"
    );
    gw.signal_and_wait("TERM");
    let log = gw.stderr();
    assert!(
        log.contains("The API listens beyond loopback without [[api.tokens]]: it is read-only"),
        "the start-up log says so:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_open_the_same_gateway_acknowledges_and_warns() {
    let (mut gw, _sim, _dir) = start(true).await;
    let (status, view) = gw
        .post_json(ACK_PATH, json!({"user": "值班员", "category": "real_alarm"}))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["acknowledged"].as_bool(), view["category"].as_str()),
        (Some(true), Some("real_alarm"))
    );
    gw.signal_and_wait("TERM");
    let log = gw.stderr();
    assert!(log.contains("anyone who can reach it may acknowledge"), "{log}");
}
