//! The foundation's vertical slice against real sockets: our Modbus TCP simulator (a
//! tokio-modbus server) is polled by the gateway; values, history, alarms and comm faults are
//! checked through the HTTP API and the SQLite files.

use crate::support;

use std::time::Duration;

use futures::StreamExt;
use hazard_gateway::sources::sim::Scenario;
use hazard_gateway::sources::sim::signal::Leak;
use serde_json::{Value, json};
use support::{TestGateway, WAIT, simulator, sqlite_count, wait_for};

fn fast_leak() -> Leak {
    Leak {
        start: Duration::from_millis(1500),
        rise: Duration::from_millis(1000),
        hold: Duration::from_millis(2000),
        fall: Duration::from_millis(1000),
        peak: 60.0,
        repeat_every: None,
    }
}

fn config(gas: &str, tank: &str) -> String {
    format!(
        r#"
[gateway]
id = "e2e-gw"

[api]
listen = "127.0.0.1:0"

[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2

[[devices]]
name = "gas-ai-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{gas}" }}
interval = "100ms"
timeout = "300ms"
hazard_source = "MHS-001"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-001/GT-103", ch4 = "MHS-001/GT-104" }}

[[devices]]
name = "tank-T101"
profile = "tank-ltp"
transport = {{ tcp = "{tank}" }}
interval = "100ms"
hazard_source = "MHS-001"
"#
    )
}

/// Reads the SSE stream up to its first `data:` line; returns that event's JSON and the raw text.
async fn next_sse_event(
    body: &mut (impl futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
) -> (Value, String) {
    let mut text = String::new();
    tokio::time::timeout(WAIT, async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("feed chunk")));
            if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                return (serde_json::from_str::<Value>(data).expect("JSON event"), text.clone());
            }
        }
        panic!("feed ended: {text}");
    })
    .await
    .expect("an event on the live feed")
}

fn close(v: &Value, expected: f64, tol: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() <= tol)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_decodes_stores_alarms_and_reports_comm_faults() {
    let gas = simulator(
        "ai4-gas-lel",
        Some(Scenario::Leak {
            point: "ch1".into(),
            leak: fast_leak(),
        }),
    )
    .await;
    let tank = simulator("tank-ltp", None).await;
    assert!(tank.pin("level", 12.5));
    assert!(tank.pin("temperature", -12.3));
    assert!(tank.pin("pressure", 0.8123));
    assert!(gas.pin("ch3", 12.5));
    let mut gw = TestGateway::start(&config(&gas.local_addr().to_string(), &tank.local_addr().to_string())).await;

    // Decoded values: f32, scaled i16 (negative), scaled u32, and 4–20 mA counts to %LEL.
    wait_for("decoded tank values", WAIT, || async {
        let level = gw.point("tank-T101/level").await;
        let temp = gw.point("tank-T101/temperature").await;
        let pressure = gw.point("tank-T101/pressure").await;
        let gt103 = gw.point("MHS-001/GT-103").await;
        (close(&level["value"], 12.5, 1e-9)
            && close(&temp["value"], -12.3, 1e-9)
            && close(&pressure["value"], 0.8123, 1e-9)
            && close(&gt103["value"], 12.5, 1e-9)
            && level["quality"] == "good")
            .then_some(())
    })
    .await;
    let level = gw.point("tank-T101/level").await;
    assert_eq!(level["unit"], "m");
    assert_eq!(level["hazard_source"], "MHS-001");
    assert_eq!(gw.point("tank-T101/temperature").await["unit"], "°C");
    assert_eq!(gw.get_json("/readyz").await["ready"], true);

    // The scripted leak raises the first- and second-level alarms, then clears both.
    let raised = wait_for("first-level gas alarm", WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["alarm_id"] == "MHS-001/GT-101:high")
            .cloned()
    })
    .await;
    assert_eq!(raised["priority"], "high");
    assert_eq!(raised["hazard_source"], "MHS-001");
    assert!(raised["value"].as_f64().unwrap() >= 25.0);
    wait_for("second-level gas alarm", WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        let a = alarms.as_array().unwrap();
        (a.first()
            .is_some_and(|a| a["alarm_id"] == "MHS-001/GT-101:high_high" && a["priority"] == "critical"))
        .then_some(())
    })
    .await;
    // Both return to normal but stay visible, unacknowledged (ISA-18.2), until a duty officer
    // acknowledges them.
    for level in ["high", "high_high"] {
        let id = format!("MHS-001/GT-101:{level}");
        wait_for("gas alarm returned to normal", WAIT, || async {
            gw.alarm(&id).await.filter(|a| a["state"] == "unack_rtn").map(|_| ())
        })
        .await;
        let path = format!("/api/v1/alarms/{}/ack", id.replace('/', "%2F"));
        let (status, ack) = gw
            .post_json(&path, json!({"user": "值班员王五", "comment": "现场确认"}))
            .await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(
            (ack["state"].as_str(), ack["user"].as_str()),
            (Some("normal"), Some("值班员王五"))
        );
    }
    assert!(gw.get_json("/api/v1/alarms").await.as_array().unwrap().is_empty());
    let (status, again) = gw
        .post_json("/api/v1/alarms/MHS-001%2FGT-101:high/ack", json!({"user": "a"}))
        .await;
    assert_eq!((status, again["error"].as_str()), (409, Some("conflict")));
    let history = gw.get_json("/api/v1/alarms/history?alarm=MHS-001%2FGT-101:high").await;
    let transitions: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert_eq!(transitions, vec!["acknowledged", "cleared", "raised"], "newest first");
    let summary = gw.get_json("/api/v1/alarms/summary").await;
    assert_eq!(
        (summary["flood"].as_bool(), summary["annunciated"].as_u64()),
        (Some(false), Some(0))
    );
    assert!(summary["rate_10min"].as_u64().unwrap() >= 2);

    // History rows in SQLite, and the journal holds both transitions of both levels.
    let history_db = gw.data_dir().join("history.db");
    wait_for("history rows", WAIT, || async {
        (sqlite_count(
            &history_db,
            "SELECT COUNT(*) FROM raw_readings r JOIN points p ON p.id = r.point WHERE p.name = ?1",
            ["tank-T101/level"],
        ) > 0)
            .then_some(())
    })
    .await;
    let journal_db = gw.data_dir().join("alarms.db");
    for (level, transition) in [
        ("high", "raised"),
        ("high_high", "raised"),
        ("high_high", "cleared"),
        ("high", "cleared"),
        ("high", "acknowledged"),
    ] {
        let n = sqlite_count(
            &journal_db,
            "SELECT COUNT(*) FROM alarm_transitions WHERE alarm_id = ?1 AND transition = ?2",
            [format!("MHS-001/GT-101:{level}"), transition.to_string()],
        );
        assert_eq!(n, 1, "{level} {transition}");
    }

    // History through the API.
    let hist = gw.get_json("/api/v1/points/tank-T101%2Flevel/history").await;
    let rows = hist["readings"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .any(|r| close(&r["value"], 12.5, 1e-9) && r["quality"] == "good")
    );

    // The gas module loses power: its points turn comm_fault, the tank keeps reporting.
    gas.stop();
    wait_for("comm_fault on the gas module", WAIT, || async {
        let p = gw.point("MHS-001/GT-101").await;
        (p["quality"] == "comm_fault" && p["value"].is_null()).then_some(())
    })
    .await;
    assert_eq!(gw.point("tank-T101/level").await["quality"], "good");
    let comm = wait_for("the module's communication alarm", WAIT, || async {
        gw.alarm("gas-ai-1:communication").await
    })
    .await;
    assert_eq!(
        (comm["class"].as_str(), comm["subject_kind"].as_str()),
        (Some("fault"), Some("device"))
    );
    assert_eq!(comm["hazard_source"], "MHS-001");
    let faults = gw.get_json("/api/v1/alarms?class=fault&priority=high").await;
    assert!(faults.as_array().unwrap().iter().all(|a| a["class"] == "fault"));
    assert!(
        faults
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alarm_id"] == "gas-ai-1:communication")
    );
    assert!(
        gw.get_json("/api/v1/alarms?class=process")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"hazard_modbus_polls_total{device="gas-ai-1",result="comm_fault"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"hazard_alarm_transitions_total{transition="raised",priority="critical"} 1"#));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_feed_streams_transitions_and_replays_after_reconnect() {
    let gas = simulator("ai4-gas-lel", None).await;
    let tank = simulator("tank-ltp", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        gas.pin(ch, 1.0);
    }
    let mut gw = TestGateway::start(&config(&gas.local_addr().to_string(), &tank.local_addr().to_string())).await;
    wait_for("first readings", WAIT, || async {
        (gw.point("MHS-001/GT-102").await["quality"] == "good").then_some(())
    })
    .await;

    let resp = gw.http.get(format!("{}/api/v1/events", gw.base)).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    gas.pin("ch2", 30.0);
    let (event, text) = next_sse_event(&mut body).await;
    assert_eq!(event["alarm_id"], "MHS-001/GT-102:high");
    assert_eq!(event["transition"], "raised");
    assert!(text.contains("event: alarm"));
    let first_id = event["seq"].as_u64().unwrap();
    assert!(text.contains(&format!("id: {first_id}")));
    drop(body);

    // While disconnected, the alarm clears; a reconnect with Last-Event-ID replays it.
    gas.pin("ch2", 1.0);
    wait_for("alarm cleared", WAIT, || async {
        gw.alarm("MHS-001/GT-102:high")
            .await
            .filter(|a| a["state"] == "unack_rtn")
            .map(|_| ())
    })
    .await;
    let resp = gw
        .http
        .get(format!("{}/api/v1/events", gw.base))
        .header("Last-Event-ID", first_id.to_string())
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let (replayed, _) = next_sse_event(&mut body).await;
    assert_eq!(replayed["alarm_id"], "MHS-001/GT-102:high");
    assert_eq!(replayed["transition"], "cleared");
    assert_eq!(replayed["seq"].as_u64().unwrap(), first_id + 1);
    drop(body);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_alarms_survive_a_restart_without_being_raised_twice() {
    let gas = simulator("ai4-gas-lel", None).await;
    let tank = simulator("tank-ltp", None).await;
    gas.pin("ch4", 30.0);
    let cfg = config(&gas.local_addr().to_string(), &tank.local_addr().to_string());
    let mut gw = TestGateway::start(&cfg).await;
    wait_for("alarm raised", WAIT, || async {
        (gw.get_json("/api/v1/alarms").await.as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    gw.shutdown().await;

    // Same data dir, new process life.
    let dir = gw.dir;
    let parsed = hazard_gateway::config::GatewayConfig::parse(&dir.path().join("test.toml"), &cfg).unwrap();
    let g2 = hazard_gateway::pipeline::Gateway::start(parsed, dir.path(), hazard_gateway::clock::system())
        .await
        .unwrap();
    let alarms = g2.state.active_alarms();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].alarm_id, "MHS-001/GT-104:high");
    // Let it poll a while with the value still high: no second `raised` in the journal.
    let before = g2.metrics.render();
    wait_for("a few polls", WAIT, || async {
        let m = g2.metrics.render();
        (m != before && m.contains(r#"hazard_readings_total{quality="good"}"#)).then_some(())
    })
    .await;
    gas.pin("ch4", 1.0);
    wait_for("restored alarm clears", WAIT, || async {
        g2.state
            .active_alarms()
            .first()
            .filter(|a| a.state == hazard_gateway::model::AlarmState::UnackRtn)
            .map(|_| ())
    })
    .await;
    g2.shutdown().await;
    let journal = dir.path().join("alarms.db");
    let raised = sqlite_count(
        &journal,
        "SELECT COUNT(*) FROM alarm_transitions WHERE transition = 'raised'",
        [],
    );
    let cleared = sqlite_count(
        &journal,
        "SELECT COUNT(*) FROM alarm_transitions WHERE transition = 'cleared'",
        [],
    );
    assert_eq!((raised, cleared), (1, 1));
}
