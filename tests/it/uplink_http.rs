//! Regulator uplink over HTTP POST against a real HTTP receiver on loopback: every record
//! arrives with its regulator codes and local time, a dead sensor is reported with its fault
//! state and never a value, a 60 s outage of the platform loses nothing and duplicates
//! nothing, and a gateway SIGKILLed mid-flow delivers everything it had queued after restart.

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use hazard_gateway::model::Timestamp;
use hazard_gateway::sinks::uplink::time;
use serde_json::Value;
use support::{GatewayProcess, HttpReceiver, TestGateway, WAIT, free_port, metric, simulator, wait_for};

const SECRET: &str = "s3cr3t-app-key";

/// The platform's shape: one record per POST, renamed fields, status letters, an app secret
/// header from a file, and a body check (`code` must be 0).
fn uplink(url: &str, extra: &str, dead: bool) -> String {
    let dead_code = if dead { r#", "B/GT-201" = "GT201""# } else { "" };
    format!(
        r#"
[[uplinks]]
name = "mem"
realtime_interval = "1s"
replay_rate = 200
retry_max = "2s"
{extra}
codes = {{ enterprise = "E-0001", hazard_sources = {{ "MHS-1" = "HS-01" }}, points = {{ "A/GT-101" = {{ code = "GT101", location = "Tank farm" }}{dead_code} }} }}
encoder = {{ type = "json", record = {{ id = "{{uuid}}", qybm = "{{enterprise}}", wxy = "{{hazard_source}}", wh = "{{point_code}}", z = "{{value}}", zt = "{{status}}", sj = "{{time}}", ms = "{{time_ms}}", kind = "{{kind}}" }}, status = {{ good = "N", comm_fault = "D", stale = "B" }}, templates = {{ statistics = {{ id = "{{uuid}}", wh = "{{point_code}}", min = "{{min}}", avg = "{{avg}}", max = "{{max}}", cou = "{{count}}", zt = "{{status}}", sj = "{{time}}", ms = "{{time_ms}}", kind = "{{kind}}" }} }} }}
transport = {{ type = "http", url = "{url}", headers = {{ appsecret = {{ file = "secret.txt" }}, "x-kind" = "{{kind}}" }}, ack = {{ pointer = "/code", equals = 0 }} }}
"#
    )
}

fn devices(sim: &str, dead: bool) -> String {
    let mut s = format!(
        r#"
[[hazard_sources]]
id = "MHS-1"
name = "Tank farm"
level = 2

[[devices]]
name = "gas-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "250ms"
hazard_source = "MHS-1"
points = {{ ch1 = "A/GT-101" }}
"#
    );
    if dead {
        s.push_str(&format!(
            r#"
[[devices]]
name = "gas-dead"
profile = "ai4-gas-lel"
transport = {{ tcp = "127.0.0.1:{}" }}
interval = "250ms"
timeout = "200ms"
points = {{ ch1 = "B/GT-201" }}
"#,
            free_port()
        ));
    }
    s
}

fn records_of<'a>(all: &'a [Value], kind: &str, code: &str) -> Vec<&'a Value> {
    all.iter().filter(|v| v["kind"] == kind && v["wh"] == code).collect()
}

#[tokio::test]
async fn every_record_arrives_and_a_dead_sensor_is_reported_with_its_fault() {
    let sim = simulator("ai4-gas-lel", None).await;
    let rx = HttpReceiver::start().await;
    let config = format!(
        "[gateway]\nid = \"ul-gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n{}{}",
        devices(&sim.local_addr().to_string(), true),
        uplink(&rx.url("/api/data"), "statistics = []", true)
    );
    let mut gw = TestGateway::start_with_files(&config, &[("secret.txt", &format!("{SECRET}\n"))]).await;

    // Real-time records of both points, the dead one past its first failed poll, and the
    // dead device's communication alarm.
    let all = wait_for("records of both points and the alarm", WAIT, || async {
        let all = rx.json();
        let dead_faulted = records_of(&all, "realtime", "GT201").iter().any(|v| v["zt"] == "D");
        let alive = records_of(&all, "realtime", "GT101")
            .iter()
            .filter(|v| v["zt"] == "N")
            .count()
            >= 3;
        let alarm = all.iter().any(|v| v["kind"] == "alarm");
        (dead_faulted && alive && alarm).then_some(all)
    })
    .await;

    // Basic data came first, one record per point, before any real-time value (an alarm
    // may overtake it: alarms go ahead of everything queued).
    let data: Vec<&Value> = all.iter().filter(|v| v["kind"] != "alarm").collect();
    assert_eq!(data[0]["kind"], "basic");
    assert_eq!(data[1]["kind"], "basic");
    let basic_codes: HashSet<&str> = data[..2].iter().map(|v| v["wh"].as_str().unwrap()).collect();
    assert_eq!(basic_codes, HashSet::from(["GT101", "GT201"]));

    let zone = time::zone("Asia/Shanghai").unwrap();
    for v in records_of(&all, "realtime", "GT101") {
        assert_eq!(v["qybm"], "E-0001");
        assert_eq!(v["wxy"], "HS-01");
        if v["zt"] == "N" {
            assert!(v["z"].is_number(), "a good reading carries its value: {v}");
        }
        // Collection time rendered in Shanghai time whatever the host's zone.
        let ms = v["ms"].as_i64().unwrap();
        assert_eq!(
            v["sj"],
            time::render(Timestamp::from_millis(ms), &zone, "%Y-%m-%d %H:%M:%S")
        );
    }
    // The dead sensor: never a value, always a fault state (stale before its first poll
    // failed, comm fault after).
    let dead = records_of(&all, "realtime", "GT201");
    assert!(!dead.is_empty());
    for v in &dead {
        assert!(v["z"].is_null(), "a dead sensor must not carry a value: {v}");
        assert!(v["zt"] == "D" || v["zt"] == "B", "fault state expected: {v}");
    }
    let alarm = all.iter().find(|v| v["kind"] == "alarm").unwrap();
    assert!(alarm["z"].is_null(), "a communication alarm carries no value: {alarm}");
    assert_eq!(alarm["zt"], "D");

    // Headers: the secret from its file, the kind template; each record exactly once.
    let requests = rx.state.lock().unwrap().requests.clone();
    for r in &requests {
        let h: BTreeMap<&str, &str> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(h["appsecret"], SECRET);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(h["x-kind"], body["kind"].as_str().unwrap());
        assert_eq!(r.path, "/api/data");
    }
    let ids: Vec<&str> = all.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let unique: HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a record arrived twice");
    gw.shutdown().await;
}

/// The platform is down for 60 s while readings flow. Afterwards every record selected
/// arrives exactly once (HTTP: acknowledged by 2xx and `code == 0`), per point in time order,
/// with its original collection time; nothing is dropped.
#[tokio::test]
async fn a_60_second_outage_loses_and_duplicates_nothing() {
    let sim = simulator("ai4-gas-lel", None).await;
    let mut rx = HttpReceiver::start().await;
    let config = format!(
        "[gateway]\nid = \"ul-gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n{}{}",
        devices(&sim.local_addr().to_string(), false),
        uplink(&rx.url("/api/data"), "statistics = [\"minute\"]", false)
    );
    let mut gw = TestGateway::start_with_files(&config, &[("secret.txt", SECRET)]).await;
    let metrics = gw.metric_handles().clone();
    wait_for("first real-time records", WAIT, || async {
        (records_of(&rx.json(), "realtime", "GT101").len() >= 3).then_some(())
    })
    .await;

    rx.down().await;
    let down_at = now_ms();
    // Refused platform: the attempts fail and the outbox fills while data flows.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let text = metrics.render();
    let pending = metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"mem\""]);
    assert!(
        pending >= 50.0,
        "about 60 payloads queued during the outage, got {pending}"
    );
    assert!(
        metric(
            &text,
            "hazard_uplink_delivery_retries_total",
            &["uplink=\"mem\"", "reason=\"unreachable\""]
        ) >= 1.0
    );
    rx.up().await;
    let up_at = now_ms();

    wait_for("the backlog to drain", Duration::from_secs(90), || async {
        let text = metrics.render();
        (metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"mem\""]) <= 1.0).then_some(())
    })
    .await;
    gw.shutdown().await;

    let text = metrics.render();
    let selected = metric(
        &text,
        "hazard_uplink_records_total",
        &["uplink=\"mem\"", "kind=\"realtime\""],
    ) + metric(
        &text,
        "hazard_uplink_records_total",
        &["uplink=\"mem\"", "kind=\"basic\""],
    ) + metric(
        &text,
        "hazard_uplink_records_total",
        &["uplink=\"mem\"", "kind=\"minute\""],
    );
    let delivered = metric(&text, "hazard_uplink_records_delivered_total", &["uplink=\"mem\""]);
    let left = metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"mem\""]);
    assert_eq!(
        text.matches("hazard_uplink_records_dropped_total{").count(),
        0,
        "nothing dropped"
    );
    assert_eq!(
        selected,
        delivered + left,
        "every selected record delivered or still queued"
    );

    let all = rx.json();
    let ids: Vec<&str> = all.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let unique: HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a record arrived twice");
    // The one in flight at shutdown may have reached the receiver without its answer.
    assert!(
        ids.len() as f64 == delivered || ids.len() as f64 == delivered + 1.0,
        "received {} records, platform acknowledged {delivered}",
        ids.len()
    );
    // Time order per point, original collection times from inside the outage.
    let times: Vec<i64> = records_of(&all, "realtime", "GT101")
        .iter()
        .map(|v| v["ms"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "out of order: {times:?}");
    let during = times
        .iter()
        .filter(|t| **t > down_at + 1000 && **t < up_at - 1000)
        .count();
    assert!(
        during >= 50,
        "records collected during the outage arrive with their own times: {during}"
    );
    // Minute statistics of the good readings: whole local minutes, min <= avg <= max.
    let minutes = records_of(&all, "minute", "GT101");
    assert!(!minutes.is_empty(), "a minute ended during the test");
    for m in minutes {
        assert!(m["cou"].as_u64().unwrap() > 0, "{m}");
        let (lo, avg, hi) = (
            m["min"].as_f64().unwrap(),
            m["avg"].as_f64().unwrap(),
            m["max"].as_f64().unwrap(),
        );
        assert!(lo <= avg && avg <= hi, "{m}");
        assert!(m["sj"].as_str().unwrap().ends_with(":00"), "{m}");
        assert_eq!(m["ms"].as_i64().unwrap() % 60_000, 0, "{m}");
    }
}

/// The gateway process is SIGKILLed while the platform is down and payloads pile up in the
/// outbox; after a restart every payload it had queued (counted before the kill) arrives.
#[tokio::test]
async fn a_sigkilled_gateway_loses_nothing_it_had_queued() {
    let sim = simulator("ai4-gas-lel", None).await;
    let mut rx = HttpReceiver::start().await;
    rx.down().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[gateway]\nid = \"ul-gw\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n{}{}",
        devices(&sim.local_addr().to_string(), false),
        uplink(&rx.url("/api/data"), "statistics = []", false)
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, &config).unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();

    let mut gw = GatewayProcess::start(&path, port).await;
    let queued = wait_for("payloads queued while the platform is down", WAIT, || async {
        let text = gw.try_metrics().await?;
        let q = metric(&text, "hazard_uplink_payloads_queued_total", &["uplink=\"mem\""]);
        (q >= 8.0).then_some(q)
    })
    .await;
    gw.kill();
    let killed_at = now_ms();

    rx.up().await;
    let _gw = GatewayProcess::start(&path, port).await;
    let before_kill = wait_for("everything queued before the kill", Duration::from_secs(60), || async {
        let all = rx.json();
        let n = all
            .iter()
            .filter(|v| v["kind"] == "basic" || v["ms"].as_i64().is_some_and(|t| t < killed_at))
            .count();
        (n as f64 >= queued).then_some(all)
    })
    .await;
    let ids: Vec<&str> = before_kill.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let unique: HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a record arrived twice");
    // Basic data was queued once, before the kill, and not again at the restart (unchanged).
    assert_eq!(before_kill.iter().filter(|v| v["kind"] == "basic").count(), 1);
}

fn now_ms() -> i64 {
    hazard_gateway::clock::system().now().as_millis()
}

/// `uplink preview` prints basic data then real-time payloads from the simulators, with the
/// regulator codes, without sending anything; an unknown name is refused with the known ones.
#[tokio::test]
async fn preview_prints_the_next_payloads_without_sending() {
    let mut rx = HttpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[gateway]\nid = \"ul-gw\"\n{}{}",
        devices("127.0.0.1:1502", true),
        uplink(&rx.url("/api/data"), "statistics = []", true)
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, &config).unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(support::binary())
            .args(args)
            .output()
            .expect("binary runs")
    };
    let p = path.to_str().unwrap();
    let out = run(&["uplink", "preview", "mem", "--config", p, "--count", "4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let plains: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("plain:  "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(plains.len(), 4, "{text}");
    assert_eq!(plains[0]["kind"], "basic");
    assert_eq!(plains[2]["kind"], "realtime");
    assert_eq!(plains[2]["wh"], "GT101");
    assert!(plains[2]["z"].is_number(), "simulated value: {text}");
    assert_eq!(plains[3]["wh"], "GT201");
    assert_eq!(text.matches("sealed: (no cipher or envelope").count(), 4);
    rx.down().await;
    assert!(rx.bodies().is_empty(), "preview must not send");

    let out = run(&["uplink", "preview", "nope", "--config", p]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mem"));
}
