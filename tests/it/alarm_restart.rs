//! Alarms in every ISA-18.2 state survive a SIGKILL of the gateway process: after a restart
//! each comes back exactly (state, acknowledgement, shelving, out of service) and none is
//! raised a second time.

use crate::support;

use serde_json::{Value, json};
use support::alarms::{act, snapshot, wait_state};
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
            let text = gw.try_metrics().await?;
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

/// Publishes one QoS 1 message and waits for the broker's PUBACK.
async fn publish(port: u16, topic: &str, payload: &str) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(format!("restart-pub-{}", free_port()), "127.0.0.1", port);
    opts.set_keep_alive(std::time::Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, 8);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .await
        .expect("publish queued");
    let acked = tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return,
                Ok(_) => {}
                Err(e) => panic!("publishing to {topic}: {e}"),
            }
        }
    })
    .await;
    assert!(acked.is_ok(), "no PUBACK for {topic}");
    let _ = client.disconnect().await;
}

/// Waits until the alarm `id` is in `state` with the overlays `pred` asks for.
async fn wait_alarm(gw: &GatewayProcess, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms.as_array()?.iter().find(|a| pred(a)).cloned()
    })
    .await
}

/// The newest journal sequence number.
async fn journal_head(gw: &GatewayProcess) -> u64 {
    let newest = gw.get_json("/api/v1/alarms/history?limit=1").await;
    newest[0]["seq"].as_u64().expect("a journaled transition")
}

/// Every poll counter of `devices` has moved by at least 5 in this run.
async fn polled(gw: &GatewayProcess, devices: &[&str]) {
    wait_for("polls of every device after the start", WAIT, || async {
        let text = gw.try_metrics().await?;
        devices
            .iter()
            .all(|d| support::metric(&text, "hazard_modbus_polls_total", &[&format!("device=\"{d}\"")]) >= 5.0)
            .then_some(())
    })
    .await;
}

/// Every alarm kind the gateway raises (threshold, latching threshold, rate of change, vote,
/// early warning, stale, sensor fault, communication of a device and of a DTU station, and process alarms
/// suppressed by a dead device), in
/// every state and overlay (unacknowledged, acknowledged with a comment, returned, latched,
/// shelved, out of service, suppressed), and the flood and chattering figures: after SIGTERM
/// and after SIGKILL the alarm list is identical field by field, the figures too, and the
/// first polls and ticks after the start journal nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alarm_kind_in_every_state_comes_back_identical_after_sigterm_and_sigkill() {
    let broker = support::Mosquitto::start();
    let g = simulator("ai4-gas-lel", None).await;
    let g2 = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        assert!(g.pin(ch, 1.0));
        assert!(g2.pin(ch, 1.0));
    }
    assert!(g2.pin("ch1", 60.0));
    let dead = free_port();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[gateway]
id = "restart-all"
data_dir = "data"
[api]
listen = "127.0.0.1:{port}"
[[devices]]
name = "g"
profile = "ai4-gas-lel"
transport = {{ tcp = "{g}" }}
interval = "100ms"
[[devices]]
name = "g2"
profile = "ai4-gas-lel"
transport = {{ tcp = "{g2}" }}
interval = "100ms"
timeout = "300ms"
retries = 0
[[devices]]
name = "dead"
profile = "ai4-gas-lel"
transport = {{ tcp = "127.0.0.1:{dead}" }}
interval = "100ms"
timeout = "300ms"
retries = 0
[[devices]]
name = "dam-gas"
profile = "gas-lel-detector"
transport = {{ dtu = "dam" }}
unit_id = 1
interval = "200ms"
timeout = "500ms"
[[dtu.listeners]]
listen = "127.0.0.1:{dtu}"
framing = "rtu"
heartbeat_interval = "1s"
heartbeat_timeout = "3s"
[[dtu.stations]]
name = "dam"
imei = "860000000000001"
heartbeat = "HB"
[[rules]]
name = "ch4-latching"
points = "g/ch4"
latching = true
threshold = {{ high = 25.0 }}
[[rules]]
name = "ch3-rate"
points = "g/ch3"
rate_of_change = {{ rise = 5.0, per = "1s", window = "2s" }}
[[rules]]
name = "zone"
points = "g/ch[12]"
vote = {{ k = 2, level = "high" }}
[[rules]]
name = "m-stale"
points = "m/stale"
stale = {{ after = "1s" }}
[[mqtt.brokers]]
name = "plant"
address = "127.0.0.1:{mqtt}"
[[mqtt.subscriptions]]
name = "m"
broker = "plant"
topic = "m/{{tag}}"
point = "m/{{tag}}"
payload = "text"
unit = "%LEL"
kind = "gas"
range = [0, 100]
points = ["m/stale", "m/range"]
[[mqtt.subscriptions]]
name = "w"
broker = "plant"
topic = "w/{{tag}}"
point = "w/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "%LEL"
kind = "gas"
range = [0, 100]
points = ["w/GT-1"]
[[rules]]
name = "w-high"
points = "w/GT-1"
threshold = {{ high = 25.0 }}
[[rules]]
name = "w-trend"
points = "w/GT-1"
time_to_limit = {{ horizon = "30m", window = "10m" }}
"#,
            g = g.local_addr(),
            g2 = g2.local_addr(),
            mqtt = broker.port,
            dtu = free_port(),
        ),
    )
    .unwrap();
    let mut gw = GatewayProcess::start(&path, port).await;

    // Raise.
    assert!(g.pin("ch1", 55.0));
    assert!(g.pin("ch2", 55.0));
    assert!(g.pin("ch3", 30.0));
    assert!(g.pin("ch4", 30.0));
    for id in [
        "g/ch1:high",
        "g/ch1:high_high",
        "g/ch2:high",
        "g/ch2:high_high",
        "g/ch3:high",
        "g/ch4:high",
        "g2/ch1:high",
        "g2/ch1:high_high",
        "zone:vote:high",
        "dead:communication",
        // A dialled-in station that never dials: one alarm for the station.
        "dam:communication",
    ] {
        wait_state(&gw, id, "unack_active").await;
    }
    let rate = wait_alarm(&gw, "the rate alarm on g/ch3", |a| {
        a["subject"] == "g/ch3" && a["condition"] == "rate_of_change"
    })
    .await;
    let rate_id = rate["alarm_id"].as_str().unwrap().to_string();
    publish(broker.port, "m/range", "150").await;
    publish(broker.port, "m/stale", "5").await;
    wait_state(&gw, "m/range:sensor_fault", "unack_active").await;
    // The start's silence may have raised the stale alarm already: wait for the reading (it
    // returns the alarm), then for the silence after it to raise it again. The point shows the
    // reading before the rules engine has returned the alarm, so the raise waited for is one
    // after the reading's time, not the start's.
    let read_ms = wait_for("the m/stale reading", WAIT, || async {
        let p = gw.get_json("/api/v1/points").await;
        p.as_array()?
            .iter()
            .find(|p| p["id"] == "m/stale" && p["value"].as_f64() == Some(5.0))?["ts_ms"]
            .as_i64()
    })
    .await;
    wait_alarm(&gw, "m/stale raised by the silence after its reading", |a| {
        a["alarm_id"] == "m/stale:stale"
            && a["state"] == "unack_active"
            && a["raised_at"].as_i64().is_some_and(|ns| ns / 1_000_000 > read_ms)
    })
    .await;
    // An early warning: a slow rise with device times up to ten seconds ago (inside the flood
    // window, which the restart rebuilds from the raises' own times).
    let mut ramp = support::mqtt::Publisher::start(broker.port, "restart-ramp");
    let base = (hazard_gateway::clock::system().now().as_millis() / 1000 - 410) * 1000;
    let reading = |s: i64| format!(r#"{{"v": {}, "t": {}}}"#, 5.0 + s as f64 / 100.0, base + s * 1000);
    for s in (0..=400).step_by(10) {
        ramp.send("w/GT-1", reading(s)).await;
    }
    let warning = wait_alarm(&gw, "the early warning on w/GT-1", |a| {
        a["alarm_id"] == "w/GT-1:early_warning:high"
    })
    .await;
    assert_eq!(
        warning["predicted_at"],
        json!((base + 2_000_000) * 1_000_000),
        "{warning}"
    );

    // Operator actions, each with who and why.
    act(&gw, "g/ch2:high", "ack", json!({})).await;
    act(&gw, "g/ch1:high_high", "shelve", json!({"duration": "2h"})).await;
    act(&gw, "g/ch2:high_high", "out-of-service", json!({})).await;
    act(&gw, "g/ch4:high", "ack", json!({})).await;
    act(&gw, "dead:communication", "ack", json!({})).await;
    // Returns: unacknowledged, latched.
    assert!(g.pin("ch3", 1.0));
    assert!(g.pin("ch4", 1.0));
    wait_state(&gw, "g/ch3:high", "unack_rtn").await;
    wait_state(&gw, &rate_id, "unack_rtn").await;
    wait_state(&gw, "g/ch4:high", "latched").await;
    // A device that dies with its alarms active: one communication alarm, the rest suppressed.
    g2.stop();
    wait_state(&gw, "g2:communication", "unack_active").await;
    wait_alarm(&gw, "g2/ch1:high suppressed", |a| {
        a["alarm_id"] == "g2/ch1:high" && a["suppressed"] == true
    })
    .await;

    let before = gw.get_json("/api/v1/alarms").await;
    let list = before.as_array().unwrap();
    for (what, found) in [
        ("unack_active", list.iter().any(|a| a["state"] == "unack_active")),
        (
            "ack_active with a comment",
            list.iter()
                .any(|a| a["state"] == "ack_active" && a["comment"] == "drill"),
        ),
        ("unack_rtn", list.iter().any(|a| a["state"] == "unack_rtn")),
        ("latched", list.iter().any(|a| a["state"] == "latched")),
        ("shelved", list.iter().any(|a| !a["shelved_until"].is_null())),
        ("out of service", list.iter().any(|a| a["out_of_service"] == true)),
        ("suppressed", list.iter().any(|a| a["suppressed"] == true)),
    ] {
        assert!(found, "{what} missing before the restart: {before:#}");
    }
    // Everything but `chattering_total`, which counts since the process started.
    let summary = |mut s: Value| {
        s.as_object_mut().map(|o| o.remove("chattering_total"));
        s
    };
    let figures = summary(gw.get_json("/api/v1/alarms/summary").await);
    assert!(figures["rate_10min"].as_u64().unwrap_or(0) >= 10, "{figures}");
    assert_eq!(figures["flood"], true, "{figures}");
    let head = journal_head(&gw).await;

    for signal in ["TERM", "KILL"] {
        gw.signal_and_wait(signal);
        gw = GatewayProcess::start(&path, port).await;
        assert_eq!(
            gw.get_json("/api/v1/alarms").await,
            before,
            "alarms after SIG{signal} and restart"
        );
        polled(&gw, &["g", "g2", "dead"]).await;
        // Past the stale limit and the rate window, with a self-check round or two.
        wait_for("two seconds of ticks", WAIT, || async {
            let h = gw.get_json("/healthz").await;
            (h["uptime_s"].as_u64()? >= 3).then_some(())
        })
        .await;
        assert_eq!(
            gw.get_json("/api/v1/alarms").await,
            before,
            "alarms after SIG{signal}, a restart and polls"
        );
        assert_eq!(
            journal_head(&gw).await,
            head,
            "journal entries written at the start after SIG{signal}"
        );
        assert_eq!(
            summary(gw.get_json("/api/v1/alarms/summary").await),
            figures,
            "flood and chattering figures after SIG{signal}"
        );
    }
}
