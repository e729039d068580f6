//! Alarms in every ISA-18.2 state survive a SIGKILL of the gateway process: after a restart
//! each comes back exactly (state, acknowledgement, shelving, out of service) and none is
//! raised a second time.

use crate::support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{GatewayProcess, WAIT, free_port, simulator, wait_for};

fn config(sim: &str, port: u16) -> String {
    format!(
        r#"
[gateway]
id = "restart-gw"
data_dir = "data"
[api]
listen = "127.0.0.1:{port}"
[[devices]]
name = "g"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
[[rules]]
name = "ch4-latching"
points = "g/ch4"
latching = true
threshold = {{ high = 25.0 }}
"#
    )
}

/// Alarm id -> the fields a restart must preserve.
async fn snapshot(gw: &GatewayProcess) -> BTreeMap<String, Value> {
    let alarms = gw.get_json("/api/v1/alarms").await;
    alarms
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let keep = json!({
                "state": a["state"], "acknowledged": a["acknowledged"], "shelved_until": a["shelved_until"],
                "out_of_service": a["out_of_service"], "raised_at": a["raised_at"], "user": a["user"],
            });
            (a["alarm_id"].as_str().unwrap().to_string(), keep)
        })
        .collect()
}

async fn wait_state(gw: &GatewayProcess, id: &str, state: &str) {
    wait_for(&format!("{id} in {state}"), WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .any(|a| a["alarm_id"] == id && a["state"] == state)
            .then_some(())
    })
    .await;
}

async fn act(gw: &GatewayProcess, id: &str, action: &str, extra: Value) {
    let mut body = json!({"user": "值班员", "comment": "restart drill"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, answer) = gw
        .post_json(&format!("/api/v1/alarms/{}/{action}", id.replace('/', "%2F")), body)
        .await;
    assert_eq!(status, 200, "{action} {id}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_in_every_state_come_back_after_sigkill() {
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, config(&sim.local_addr().to_string(), port)).unwrap();
    let mut gw = GatewayProcess::start(&path, port).await;

    sim.pin("ch1", 55.0); // high: unack_active; high_high: shelved
    sim.pin("ch2", 55.0); // high: ack_active; high_high: out of service
    sim.pin("ch3", 30.0); // high: raised then returned -> unack_rtn
    sim.pin("ch4", 30.0); // latching: raised, acknowledged, returned -> latched
    for id in [
        "g/ch1:high",
        "g/ch1:high_high",
        "g/ch2:high",
        "g/ch2:high_high",
        "g/ch3:high",
        "g/ch4:high",
    ] {
        wait_state(&gw, id, "unack_active").await;
    }
    act(&gw, "g/ch2:high", "ack", json!({})).await;
    act(&gw, "g/ch1:high_high", "shelve", json!({"duration": "2h"})).await;
    act(&gw, "g/ch2:high_high", "out-of-service", json!({})).await;
    act(&gw, "g/ch4:high", "ack", json!({})).await;
    sim.pin("ch3", 1.0);
    sim.pin("ch4", 1.0);
    wait_state(&gw, "g/ch3:high", "unack_rtn").await;
    wait_state(&gw, "g/ch4:high", "latched").await;
    let before = snapshot(&gw).await;
    let states: Vec<_> = before
        .values()
        .map(|v| v["state"].as_str().unwrap().to_string())
        .collect();
    for s in ["unack_active", "ack_active", "unack_rtn", "latched"] {
        assert!(states.iter().any(|x| x == s), "{s} missing from {before:#?}");
    }

    let status = gw.signal_and_wait("KILL");
    assert!(!status.success());
    let gw = GatewayProcess::start(&path, port).await;
    let after = snapshot(&gw).await;
    assert_eq!(after, before, "alarms after restart");
    // Let it poll with the values unchanged: nothing is raised again, the latch still needs a reset.
    wait_for("polls after restart", WAIT, || async {
        let p = gw.get_json("/api/v1/points").await;
        p.as_array()?.iter().all(|p| p["quality"] == "good").then_some(())
    })
    .await;
    let history = gw.get_json("/api/v1/alarms/history?alarm=g%2Fch1:high").await;
    let raised = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["transition"] == "raised")
        .count();
    assert_eq!(raised, 1, "{history:#}");
    act(&gw, "g/ch4:high", "reset", json!({})).await;
    let after_reset = snapshot(&gw).await;
    assert!(!after_reset.contains_key("g/ch4:high"));
    assert_eq!(after_reset.len(), before.len() - 1);
}

const JOURNAL: &str = "/api/v1/alarms/history?alarm=dead:communication";

/// A device that stays dead across restarts: its acknowledged communication alarm comes
/// back identical, every field, after SIGTERM and after SIGKILL, and the first polls after
/// the start journal nothing (no clear and raise: the acknowledgement and `raised_at` hold).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_communication_alarm_of_a_dead_device_comes_back_identical() {
    let dead = free_port();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        format!(
            "[gateway]\nid = \"restart-gw\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [[devices]]\nname = \"dead\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"127.0.0.1:{dead}\" }}\n\
             interval = \"100ms\"\n"
        ),
    )
    .unwrap();
    let mut gw = GatewayProcess::start(&path, port).await;
    wait_state(&gw, "dead:communication", "unack_active").await;
    act(&gw, "dead:communication", "ack", json!({})).await;
    wait_state(&gw, "dead:communication", "ack_active").await;
    let before = gw.get_json("/api/v1/alarms").await;
    let journaled = gw.get_json(JOURNAL).await;
    assert_eq!(
        journaled.as_array().map(Vec::len),
        Some(2),
        "raised, acknowledged: {journaled:#}"
    );
    for signal in ["TERM", "KILL"] {
        gw.signal_and_wait(signal);
        gw = GatewayProcess::start(&path, port).await;
        // Several failed polls of the dead device in this run.
        wait_for("failed polls after the start", WAIT, || async {
            let text = gw
                .http
                .get(format!("{}/metrics", gw.base))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (support::metric(&text, "hazard_modbus_polls_total", &["device=\"dead\""]) >= 5.0).then_some(())
        })
        .await;
        assert_eq!(
            gw.get_json("/api/v1/alarms").await,
            before,
            "alarms after SIG{signal} and restart"
        );
        assert_eq!(
            gw.get_json(JOURNAL).await,
            journaled,
            "journal entries written at the start after SIG{signal}"
        );
    }
}
