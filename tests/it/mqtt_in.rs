//! MQTT sensors in, against a real Mosquitto that each test starts on a free loopback port:
//! every payload form reaches its point; a QoS 1 stream loses nothing across a broker restart
//! or a gateway restart (the persistent session queues what was published meanwhile); silent
//! points turn stale; bad payloads are counted and do not disturb good ones; an oversize
//! message is dropped, counted and acknowledged without holding up anything behind it; a lost
//! broker is a device that goes offline, raises its communication alarm and makes `/readyz`
//! fail, without clearing the process alarms of the points it feeds.

use crate::support;

use std::time::Duration;

use support::mqtt::Publisher;
use support::{GatewayProcess, Mosquitto, TestGateway, WAIT, free_port, metric, wait_for};

/// Milliseconds since the epoch to stamp the test's readings from: an hour ago, whole
/// seconds, so history keeps them (raw retention is 48 h).
fn base_ms() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| (hazard_gateway::clock::system().now().as_millis() / 1000 - 3600) * 1000)
}

/// `ms` as RFC 3339 text in China Standard Time (UTC+08:00), whole seconds.
fn rfc3339_plus8(ms: i64) -> String {
    let secs = ms / 1000 + 8 * 3600;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+08:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn gateway_config(broker: &Mosquitto, protocol: &str, extra: &str) -> String {
    format!(
        r#"
[gateway]
id = "mqtt-gw"
[api]
listen = "127.0.0.1:0"

[[mqtt.brokers]]
name = "plant"
address = "{}"
protocol = "{protocol}"
keep_alive = "5s"

[[mqtt.subscriptions]]
name = "seq"
broker = "plant"
topic = "test/seq/{{tag}}"
point = "seq/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
points = ["seq/a"]
{extra}
"#,
        broker.addr()
    )
}

/// What the helpers read from a gateway, in this process or a child process.
trait Api {
    async fn get(&self, path: &str) -> serde_json::Value;
    async fn metrics_text(&self) -> String;
}

impl Api for TestGateway {
    async fn get(&self, path: &str) -> serde_json::Value {
        self.get_json(path).await
    }
    async fn metrics_text(&self) -> String {
        self.metrics().await
    }
}

impl Api for GatewayProcess {
    async fn get(&self, path: &str) -> serde_json::Value {
        self.get_json(path).await
    }
    async fn metrics_text(&self) -> String {
        self.metrics().await
    }
}

/// Distinct device times of `point`'s readings of quality `quality` (any when `None`) in the
/// embedded history, read through the API so the count covers packed blocks and the open tail.
async fn stored_with(gw: &impl Api, point: &str, quality: Option<&str>) -> i64 {
    let id = point.replace('/', "%2F");
    let far = base_ms() + 86_400_000;
    let history = gw
        .get(&format!(
            "/api/v1/points/{id}/history?resolution=raw&from=0&to={far}&limit=100000"
        ))
        .await;
    let rows = history["readings"].as_array().cloned().unwrap_or_default();
    let times: std::collections::BTreeSet<i64> = rows
        .iter()
        .filter(|r| quality.is_none_or(|q| r["quality"] == q))
        .filter_map(|r| r["ts_ms"].as_i64())
        .collect();
    times.len() as i64
}

async fn stored(gw: &impl Api, point: &str) -> i64 {
    stored_with(gw, point, None).await
}

async fn wait_stored(gw: &impl Api, point: &str, n: i64) {
    wait_for(&format!("{n} readings of {point} in history"), WAIT, || async {
        let got = stored(gw, point).await;
        assert!(got <= n, "more readings than published: {got}");
        (got == n).then_some(())
    })
    .await;
}

/// Waits for `n` good readings of `point` in history (an undecodable message adds a
/// `decode_error` one besides).
async fn wait_good(gw: &impl Api, point: &str, n: i64) {
    wait_for(&format!("{n} good readings of {point} in history"), WAIT, || async {
        let got = stored_with(gw, point, Some("good")).await;
        assert!(got <= n, "more good readings than published: {got}");
        (got == n).then_some(())
    })
    .await;
}

/// Publishes reading 0 until the gateway has it: its subscription (and, the first time, its
/// persistent session) exists from then on. Repeats carry the same device time, so history
/// stores them once.
async fn until_subscribed(gw: &impl Api, p: &mut Publisher) {
    until_subscribed_to(gw, p, "test/seq/a", "seq/a").await;
}

/// Like [`until_subscribed`], for the subscription of `topic` that feeds `point`.
async fn until_subscribed_to(gw: &impl Api, p: &mut Publisher, topic: &str, point: &str) {
    for _ in 0..150 {
        p.send(topic, seq_payload(0)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stored(gw, point).await >= 1 {
            return;
        }
    }
    panic!("the gateway never subscribed to {topic}");
}

fn seq_payload(i: i64) -> String {
    format!(r#"{{"v": {i}, "t": {}}}"#, base_ms() + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payload_form_reaches_its_point() {
    let broker = Mosquitto::start();
    let extra = r#"
[[mqtt.subscriptions]]
name = "text"
broker = "plant"
topic = "park/{site}/gas/{tag}"
point = "{site}/{tag}"
payload = "text"
unit = "%LEL"
kind = "gas"
range = [0, 100]
points = ["A/GT-{101..102}"]

[[mqtt.subscriptions]]
name = "single"
broker = "plant"
topic = "park/{site}/level/{tag}"
point = "{site}/{tag}"
points = ["A/LT-1", "A/LT-2"]

[[mqtt.subscriptions]]
name = "fields"
broker = "plant"
topic = "mine/{station}/air"
point = "{station}/{field}"
timestamp = "/time"
[mqtt.subscriptions.fields.ch4]
pointer = "/gas/ch4"
unit = "%CH4"
kind = "methane"
points = ["S1/ch4"]
[mqtt.subscriptions.fields.co]
pointer = "/gas/co"
unit = "ppm"
kind = "toxic_gas"
points = ["S1/co"]

[[mqtt.subscriptions]]
name = "array"
broker = "plant"
topic = "dam/+/batch"
point = "{1}/{json:/id}"
array = "/data"
value = "/val"
timestamp = "/ts"
timestamp_unit = "us"
quality = { pointer = "/st", map = { "0" = "good", "fault" = "comm_fault" } }
unit = "mm"
kind = "displacement"
points = ["d1/P{01..03}"]
"#;
    let gw = TestGateway::start(&gateway_config(&broker, "3.1.1", extra)).await;
    let mut p = Publisher::start(broker.port, "forms-publisher");
    // The gateway's subscriptions must be in place before anything is published.
    until_subscribed(&gw, &mut p).await;

    let t = base_ms() * 1000;
    p.send("park/A/gas/GT-101", " 12.5 ").await;
    p.send("park/A/gas/GT-102", "130").await;
    p.send("park/A/level/LT-1", "3.25").await;
    p.send("park/A/level/LT-2", r#""4.5""#).await;
    p.send(
        "mine/S1/air",
        format!(
            r#"{{"time": "{}", "gas": {{"ch4": 0.42, "co": "24"}}}}"#,
            rfc3339_plus8(base_ms())
        ),
    )
    .await;
    let batch = format!(
        r#"{{"data": [
            {{"id": "P01", "val": 1.5, "ts": {t}, "st": 0}},
            {{"id": "P02", "val": "2.5", "ts": {}, "st": "fault"}},
            {{"id": "P03", "val": true, "ts": {}}}
        ]}}"#,
        t + 1000,
        t + 2000
    );
    p.send("dam/d1/batch", batch).await;

    let expect: [(&str, Option<f64>, &str, Option<i64>); 9] = [
        ("A/GT-101", Some(12.5), "good", None),
        ("A/GT-102", Some(130.0), "out_of_range", None),
        ("A/LT-1", Some(3.25), "good", None),
        ("A/LT-2", Some(4.5), "good", None),
        ("S1/ch4", Some(0.42), "good", Some(base_ms())),
        ("S1/co", Some(24.0), "good", Some(base_ms())),
        ("d1/P01", Some(1.5), "good", Some(base_ms())),
        ("d1/P02", Some(2.5), "comm_fault", Some(base_ms() + 1)),
        ("d1/P03", Some(1.0), "good", Some(base_ms() + 2)),
    ];
    for (id, value, quality, ts_ms) in expect {
        let v = wait_for(id, WAIT, || async {
            let v = gw.point(id).await;
            (v["quality"] != "no_data").then_some(v)
        })
        .await;
        assert_eq!(v["value"].as_f64(), value, "{id}: {v}");
        assert_eq!(v["quality"], quality, "{id}: {v}");
        if let Some(ts) = ts_ms {
            assert_eq!(v["ts_ms"].as_i64(), Some(ts), "{id}: {v}");
        }
    }
    let co = gw.point("S1/co").await;
    assert_eq!(
        (co["unit"].as_str(), co["kind"].as_str()),
        (Some("ppm"), Some("toxic_gas"))
    );
    assert_eq!(gw.point("d1/P01").await["device"], "mqtt:array");
    let text = gw.metrics().await;
    assert_eq!(
        metric(&text, "hazard_mqtt_in_readings_total", &["subscription=\"array\""]),
        3.0
    );
    assert_eq!(metric(&text, "hazard_mqtt_in_connected", &["broker=\"plant\""]), 1.0);
}

/// Publishes `n` sequence messages while the broker is restarted once they are under way.
async fn broker_restart_body(protocol: &str) {
    let mut broker = Mosquitto::start();
    let mut gw = TestGateway::start(&gateway_config(&broker, protocol, "")).await;
    let mut p = Publisher::start(broker.port, &format!("restart-publisher-{protocol}"));
    until_subscribed(&gw, &mut p).await;

    const N: i64 = 600;
    let publisher = tokio::spawn(async move {
        for i in 1..N {
            p.send("test/seq/a", seq_payload(i)).await;
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    wait_for("the stream under way", WAIT, || async {
        (stored(&gw, "seq/a").await >= 150).then_some(())
    })
    .await;
    assert!(
        stored(&gw, "seq/a").await < N,
        "the restart must come in the middle of the stream"
    );
    broker.restart();
    publisher.await.expect("publisher finished");
    wait_stored(&gw, "seq/a", N).await;
    let text = gw.metrics().await;
    assert!(metric(&text, "hazard_mqtt_in_connects_total", &["result=\"ok\""]) >= 2.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_in_a_qos1_stream_loses_no_message() {
    broker_restart_body("3.1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_in_a_qos1_stream_loses_no_message_over_mqtt5() {
    broker_restart_body("5").await;
}

async fn gateway_restart_body(protocol: &str) {
    let broker = Mosquitto::start();
    let config = gateway_config(&broker, protocol, "");
    let mut gw = TestGateway::start(&config).await;
    let mut p = Publisher::start(broker.port, &format!("gw-restart-publisher-{protocol}"));
    until_subscribed(&gw, &mut p).await;
    for i in 1..50 {
        p.send("test/seq/a", seq_payload(i)).await;
    }
    wait_stored(&gw, "seq/a", 50).await;
    gw.shutdown().await;
    // Published while the gateway is away: the broker queues them in its session.
    for i in 50..150 {
        p.send("test/seq/a", seq_payload(i)).await;
    }
    let dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().expect("temp dir"));
    let gw = TestGateway::start_with(&config, dir, hazard_gateway::clock::system()).await;
    wait_stored(&gw, "seq/a", 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_receives_what_was_published_while_it_was_down() {
    gateway_restart_body("3.1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_receives_what_was_published_while_it_was_down_over_mqtt5() {
    gateway_restart_body("5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_point_turns_stale_and_recovers() {
    let broker = Mosquitto::start();
    let gw = TestGateway::start(&gateway_config(&broker, "3.1.1", "stale_after = \"1s\"")).await;
    let mut p = Publisher::start(broker.port, "stale-publisher");
    until_subscribed(&gw, &mut p).await;
    wait_for("stale", WAIT, || async {
        (gw.point("seq/a").await["quality"] == "stale").then_some(())
    })
    .await;
    // Seen good before it went stale: history holds the good reading, then the stale one.
    wait_stored(&gw, "seq/a", 2).await;
    p.send("test/seq/a", seq_payload(2)).await;
    wait_for("good again", WAIT, || async {
        (gw.point("seq/a").await["quality"] == "good").then_some(())
    })
    .await;
    let text = gw.metrics().await;
    assert!(metric(&text, "hazard_mqtt_in_stale_points_total", &["subscription=\"seq\""]) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_are_counted_and_do_not_disturb_good_ones() {
    let broker = Mosquitto::start();
    let gw = TestGateway::start(&gateway_config(&broker, "3.1.1", "max_payload = \"1KiB\"")).await;
    let mut p = Publisher::start(broker.port, "bad-publisher");
    let bad: [&[u8]; 5] = [
        b"{\"v\": 1,",
        &[b'['; 2048],
        b"\xff\xfe{\"v\": 1}",
        b"{\"v\": \"high\", \"t\": 1}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ];
    until_subscribed(&gw, &mut p).await;
    const N: i64 = 100;
    for i in 0..N {
        if i > 0 {
            p.send("test/seq/a", seq_payload(i)).await;
        }
        p.send("test/seq/a", bad[i as usize % bad.len()]).await;
    }
    p.send("test/seq/zz", seq_payload(N)).await;
    wait_for("every bad message counted", WAIT, || async {
        let text = gw.metrics().await;
        let total = metric(&text, "hazard_mqtt_in_errors_total", &["subscription=\"seq\""]);
        (total >= (N + 1) as f64).then_some(())
    })
    .await;
    // Every good reading is in history; the bad ones left only decode_error readings.
    wait_for("every good reading in history", WAIT, || async {
        (stored_with(&gw, "seq/a", Some("good")).await >= N).then_some(())
    })
    .await;
    assert_eq!(stored_with(&gw, "seq/a", Some("good")).await, N);
    let text = gw.metrics().await;
    let count = |kind: &str| metric(&text, "hazard_mqtt_in_errors_total", &[&format!("kind=\"{kind}\"")]);
    assert_eq!(count("invalid_json"), 60.0, "{text}");
    assert_eq!(count("oversize"), 20.0);
    assert_eq!(count("wrong_type"), 20.0);
    assert_eq!(count("unknown_point"), 1.0);
    // Probes sent before the subscription existed never arrived; the rest all counted.
    assert!(metric(&text, "hazard_mqtt_in_messages_total", &["subscription=\"seq\""]) >= (2 * N) as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_arrive_over_tls_with_a_client_certificate() {
    // A plain listener for the test's publisher, a TLS one that demands a client certificate
    // signed by the test site CA for the gateway.
    let certs = tempfile::tempdir().expect("temp dir");
    support::self_signed_cert(certs.path());
    support::client_cert(certs.path());
    let broker = Mosquitto::start_tls(certs.path());
    let d = certs.path().display();
    let config = format!(
        r#"
[gateway]
id = "tls-gw"
[api]
listen = "127.0.0.1:0"
[[mqtt.brokers]]
name = "secure"
address = "127.0.0.1:{}"
tls = {{ ca_file = "{d}/ca.pem", client_cert = "{d}/client.pem", client_key = "{d}/client.key" }}
[[mqtt.subscriptions]]
broker = "secure"
topic = "tls/{{tag}}"
point = "tls/{{tag}}"
payload = "text"
points = ["tls/a"]
"#,
        broker.tls_port.expect("TLS listener")
    );
    let gw = TestGateway::start(&config).await;
    let mut p = Publisher::start(broker.port, "tls-test-publisher");
    // QoS 1 messages published before the gateway's first subscription are not kept for it:
    // publish until one arrives.
    let mut v = serde_json::Value::Null;
    for _ in 0..150 {
        p.send("tls/a", "7.5").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        v = gw.point("tls/a").await;
        if v["quality"] == "good" {
            break;
        }
    }
    assert_eq!(
        (v["value"].as_f64(), v["quality"].as_str()),
        (Some(7.5), Some("good")),
        "{v}"
    );
    let text = gw.metrics().await;
    assert_eq!(metric(&text, "hazard_mqtt_in_connected", &["broker=\"secure\""]), 1.0);
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status (Linux)");
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resets the process's peak RSS to its current RSS (Linux >= 4.0), so `VmHWM` afterwards
/// measures only what follows; the peak stays an upper bound if the kernel refuses.
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

const BIG: usize = 2 << 20;
/// The bound `docs/metrics.md` states for one broker: 11 packets of the largest message the
/// broker delivers (rumqttc's read buffer and its batch of 10 decoded packets) plus the
/// event queue (256 payloads of at most the largest `max_payload`, 64 KiB by default).
const BOUND_KIB: u64 = (11 * BIG as u64 + 256 * 64 * 1024) / 1024;

/// Publishes one 2 MiB QoS 1 message, then `n` good ones on its subscription and on another
/// subscription of the same broker, starting at sequence number `from`.
async fn oversize_then_good(p: &mut Publisher, from: i64, n: i64) {
    p.send("test/seq/a", vec![b'7'; BIG]).await;
    for i in from..from + n {
        p.send("test/seq/a", seq_payload(i)).await;
        p.send("test/other/b", seq_payload(i)).await;
    }
}

/// Checks what one gateway run saw: the oversize message counted once on its subscription
/// only (with one `decode_error` reading for the point its topic names), and the connection
/// never broken (a refused packet would have forced reconnects, and
/// the broker would have delivered the same message again each time).
async fn assert_dropped_once(gw: &GatewayProcess) {
    let text = gw.metrics_text().await;
    let errors = |sub: &str, kind: &str| {
        metric(
            &text,
            "hazard_mqtt_in_errors_total",
            &[&format!("subscription=\"{sub}\""), &format!("kind=\"{kind}\"")],
        )
    };
    assert_eq!(errors("seq", "oversize"), 1.0, "{text}");
    assert_eq!(errors("other", "oversize"), 0.0, "{text}");
    let dropped = |sub: &str| {
        metric(
            &text,
            "hazard_mqtt_in_messages_dropped_total",
            &[&format!("subscription=\"{sub}\""), "reason=\"oversize\""],
        )
    };
    assert_eq!((dropped("seq"), dropped("other")), (1.0, 0.0), "{text}");
    assert_eq!(
        metric(&text, "hazard_mqtt_in_connects_total", &["result=\"error\""]),
        0.0,
        "{text}"
    );
    assert_eq!(metric(&text, "hazard_mqtt_in_connects_total", &["result=\"ok\""]), 1.0);
}

async fn oversize_body(protocol: &str) {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let extra = r#"
[[mqtt.subscriptions]]
name = "other"
broker = "plant"
topic = "test/other/{tag}"
point = "other/{tag}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
points = ["other/b"]
"#;
    let config = gateway_config(&broker, protocol, extra)
        .replace("id = \"mqtt-gw\"", "id = \"mqtt-gw\"\ndata_dir = \"data\"")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let path = dir.path().join("site.toml");
    std::fs::write(&path, config).expect("write config");
    let mut gw = GatewayProcess::start(&path, port).await;
    let mut p = Publisher::start(broker.port, &format!("oversize-publisher-{protocol}"));
    until_subscribed(&gw, &mut p).await;
    until_subscribed_to(&gw, &mut p, "test/other/b", "other/b").await;

    reset_peak(gw.pid());
    let before = proc_kib(gw.pid(), "VmRSS");
    oversize_then_good(&mut p, 1, 20).await;
    wait_good(&gw, "seq/a", 21).await;
    wait_good(&gw, "other/b", 21).await;
    assert_dropped_once(&gw).await;
    let grown = proc_kib(gw.pid(), "VmHWM").saturating_sub(before);
    assert!(grown < BOUND_KIB, "peak RSS grew {grown} KiB, bound {BOUND_KIB} KiB");

    // While the gateway is down its persistent session queues another oversize message with
    // good ones behind it; the next run takes them all.
    gw.signal_and_wait("TERM");
    oversize_then_good(&mut p, 21, 20).await;
    let gw = GatewayProcess::start(&path, port).await;
    wait_good(&gw, "seq/a", 41).await;
    wait_good(&gw, "other/b", 41).await;
    assert_dropped_once(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_is_dropped_counted_and_does_not_stall_intake() {
    oversize_body("3.1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_is_dropped_counted_and_does_not_stall_intake_over_mqtt5() {
    oversize_body("5").await;
}

/// `{"v": value, "t": now}`: stamped with the current time, so it is newer than the
/// `comm_fault` marker the gateway writes when it loses the broker.
fn now_payload(value: f64) -> String {
    format!(
        r#"{{"v": {value}, "t": {}}}"#,
        hazard_gateway::clock::system().now().as_millis()
    )
}

/// `/readyz`: (HTTP status, problems).
async fn readyz(gw: &TestGateway) -> (u16, Vec<String>) {
    let r = gw
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .expect("API answers");
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.expect("JSON body");
    let problems = body["problems"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    (status, problems)
}

async fn broker_device(gw: &TestGateway) -> serde_json::Value {
    let devices = gw.get_json("/api/v1/devices").await;
    devices
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "mqtt-broker:plant").cloned())
        .unwrap_or_else(|| panic!("no mqtt-broker:plant in {devices:#}"))
}

async fn transitions(gw: &TestGateway, alarm: &str) -> Vec<String> {
    let id = alarm.replace('/', "%2F");
    let history = gw.get_json(&format!("/api/v1/alarms/history?alarm={id}")).await;
    history
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["transition"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_broker_is_an_offline_device_with_an_alarm_that_holds_the_process_alarms() {
    let mut broker = Mosquitto::start();
    let config = gateway_config(&broker, "3.1.1", "")
        .replace("keep_alive = \"5s\"", "keep_alive = \"5s\"\ncomm_grace = \"1s\"")
        + "\n[[rules]]\npoints = \"seq/a\"\nthreshold = { high = 50.0 }\n";
    let gw = TestGateway::start(&config).await;
    let mut p = Publisher::start(broker.port, "lost-broker-publisher");
    until_subscribed(&gw, &mut p).await;
    assert_eq!(broker_device(&gw).await["status"], "online");
    p.send("test/seq/a", now_payload(80.0)).await;
    wait_for("the high alarm", WAIT, || async {
        (gw.alarm("seq/a:high").await?["state"] == "unack_active").then_some(())
    })
    .await;

    broker.stop();
    let comm = "mqtt-broker:plant:communication";
    wait_for("the broker's communication alarm", WAIT, || async {
        (gw.alarm(comm).await?["state"] == "unack_active").then_some(())
    })
    .await;
    let device = broker_device(&gw).await;
    assert_eq!(device["status"], "offline", "{device:#}");
    assert_eq!(device["mqtt"]["online"], false, "{device:#}");
    assert_eq!(device["mqtt"]["lost"], true, "{device:#}");
    assert!(device["mqtt"]["last_error"].is_string(), "{device:#}");
    let (status, problems) = readyz(&gw).await;
    assert_eq!(status, 503);
    assert!(
        problems.iter().any(|p| p.contains("mqtt broker `plant` lost")),
        "{problems:?}"
    );
    assert_eq!(gw.point("seq/a").await["quality"], "comm_fault");

    broker.resume();
    // The publisher reconnects by itself; its message proves the link is back end to end.
    p.send("test/seq/a", now_payload(81.0)).await;
    wait_for("seq/a good again", WAIT, || async {
        let v = gw.point("seq/a").await;
        (v["quality"] == "good" && v["value"] == 81.0).then_some(())
    })
    .await;
    wait_for("the communication alarm cleared", WAIT, || async {
        transitions(&gw, comm)
            .await
            .contains(&"cleared".to_string())
            .then_some(())
    })
    .await;
    wait_for("ready again", WAIT, || async {
        (readyz(&gw).await.0 == 200).then_some(())
    })
    .await;
    let device = broker_device(&gw).await;
    assert_eq!(device["status"], "online", "{device:#}");
    assert_eq!(device["mqtt"]["reconnects"], 1, "{device:#}");
    assert_eq!(device["mqtt"]["lost"], false, "{device:#}");
    // The process alarm held through the outage: raised once, never cleared.
    let high = transitions(&gw, "seq/a:high").await;
    assert_eq!(high.iter().filter(|t| *t == "raised").count(), 1, "{high:?}");
    assert!(!high.contains(&"cleared".to_string()), "{high:?}");
    assert_eq!(
        gw.alarm("seq/a:high").await.expect("still shown")["state"],
        "unack_active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_go_stale_by_default_and_silence_never_clears_a_process_alarm() {
    let broker = Mosquitto::start();
    // No stale_after: three expected intervals (6 s); seq/b publishes hourly.
    let config = gateway_config(
        &broker,
        "3.1.1",
        "interval = \"2s\"\npoint_stale_after = { \"seq/b\" = \"1h\" }",
    )
    .replace("points = [\"seq/a\"]", "points = [\"seq/a\", \"seq/b\"]")
        + "\n[[rules]]\npoints = \"seq/a\"\nthreshold = { high = 50.0 }\n";
    let gw = TestGateway::start(&config).await;
    let mut p = Publisher::start(broker.port, "stale-default-publisher");
    until_subscribed(&gw, &mut p).await;
    p.send("test/seq/a", now_payload(80.0)).await;
    p.send("test/seq/b", now_payload(1.0)).await;
    wait_for("the high alarm", WAIT, || async {
        (gw.alarm("seq/a:high").await?["state"] == "unack_active").then_some(())
    })
    .await;
    wait_for("seq/a stale", WAIT, || async {
        (gw.point("seq/a").await["quality"] == "stale").then_some(())
    })
    .await;
    wait_for("its sensor-fault alarm", WAIT, || async {
        (gw.alarm("seq/a:sensor_fault").await?["state"] == "unack_active").then_some(())
    })
    .await;
    assert_eq!(gw.point("seq/b").await["quality"], "good", "its own limit is an hour");
    assert_eq!(gw.alarm("seq/a:high").await.expect("held")["state"], "unack_active");
    // One silence, one stale marker (a point turns stale once until it is heard again).
    let text = gw.metrics().await;
    assert_eq!(
        metric(&text, "hazard_mqtt_in_stale_points_total", &["subscription=\"seq\""]),
        1.0
    );

    p.send("test/seq/a", now_payload(81.0)).await;
    wait_for("the sensor fault cleared", WAIT, || async {
        transitions(&gw, "seq/a:sensor_fault")
            .await
            .contains(&"cleared".to_string())
            .then_some(())
    })
    .await;
    let high = transitions(&gw, "seq/a:high").await;
    assert_eq!(high, ["raised"], "the high alarm held through the silence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subscription_takes_bare_quoted_object_and_array_payloads() {
    let broker = Mosquitto::start();
    let extra = r#"
[[mqtt.subscriptions]]
name = "obj"
broker = "plant"
topic = "obj/{tag}"
point = "obj/{tag}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
points = ["obj/{bare,quoted,object}"]

[[mqtt.subscriptions]]
name = "arr"
broker = "plant"
topic = "arr/{tag}"
point = "arr/{tag}"
array = "/data"
value = "/v"
timestamp = "/ts"
timestamp_unit = "ms"
points = ["arr/{bare,quoted,batch}"]
"#;
    let gw = TestGateway::start(&gateway_config(&broker, "3.1.1", extra)).await;
    let mut p = Publisher::start(broker.port, "shapes-publisher");
    until_subscribed(&gw, &mut p).await;
    let sent = hazard_gateway::clock::system().now().as_millis();
    p.send("obj/bare", "12.5").await;
    p.send("obj/quoted", r#""7.25""#).await;
    p.send("obj/object", format!(r#"{{"v": 3, "t": {}}}"#, base_ms() + 7))
        .await;
    p.send("arr/bare", "-1.5").await;
    p.send("arr/quoted", r#" "0.125" "#).await;
    p.send(
        "arr/batch",
        format!(r#"{{"ts": {}, "data": [{{"v": 4.5}}]}}"#, base_ms() + 9),
    )
    .await;
    // Device time where the payload has one (the array's at its root), else arrival time.
    let expect: [(&str, f64, Option<i64>); 6] = [
        ("obj/bare", 12.5, None),
        ("obj/quoted", 7.25, None),
        ("obj/object", 3.0, Some(base_ms() + 7)),
        ("arr/bare", -1.5, None),
        ("arr/quoted", 0.125, None),
        ("arr/batch", 4.5, Some(base_ms() + 9)),
    ];
    for (id, value, ts) in expect {
        let v = wait_for(id, WAIT, || async {
            let v = gw.point(id).await;
            (v["quality"] != "no_data").then_some(v)
        })
        .await;
        assert_eq!(
            (v["value"].as_f64(), v["quality"].as_str()),
            (Some(value), Some("good")),
            "{id}: {v}"
        );
        let got = v["ts_ms"].as_i64().expect("ts_ms");
        match ts {
            Some(t) => assert_eq!(got, t, "{id}: {v}"),
            None => assert!(got >= sent, "{id}: arrival time expected, got {got} < {sent}"),
        }
    }
    let text = gw.metrics().await;
    for sub in ["obj", "arr"] {
        assert_eq!(
            metric(
                &text,
                "hazard_mqtt_in_errors_total",
                &[&format!("subscription=\"{sub}\"")]
            ),
            0.0,
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_accepts_only_objects_refuses_bare_values_like_malformed_ones() {
    let broker = Mosquitto::start();
    let gw = TestGateway::start(&gateway_config(&broker, "3.1.1", "accept = [\"object\"]")).await;
    let mut p = Publisher::start(broker.port, "accept-publisher");
    until_subscribed(&gw, &mut p).await;
    const N: i64 = 30;
    for i in 1..=N {
        p.send("test/seq/a", seq_payload(i)).await;
        p.send("test/seq/a", "5").await;
        p.send("test/seq/a", r#""6""#).await;
    }
    let sub = ["subscription=\"seq\""];
    wait_for("every refused message counted", WAIT, || async {
        let text = gw.metrics().await;
        let refused = metric(
            &text,
            "hazard_mqtt_in_errors_total",
            &[sub[0], "kind=\"refused_shape\""],
        );
        assert!(refused <= (2 * N) as f64, "{refused}");
        (refused == (2 * N) as f64).then_some(())
    })
    .await;
    // The object form is taken; every refused message left one decode_error reading, like a
    // malformed message whose topic names its point, and nothing else.
    wait_good(&gw, "seq/a", N + 1).await;
    let text = gw.metrics().await;
    let messages = metric(&text, "hazard_mqtt_in_messages_total", &sub);
    let readings = metric(&text, "hazard_mqtt_in_readings_total", &sub);
    assert_eq!(messages, readings, "one reading per message: {text}");
    assert_eq!(
        metric(&text, "hazard_mqtt_in_errors_total", &sub),
        (2 * N) as f64,
        "{text}"
    );
    let last = gw.point("seq/a").await;
    assert_eq!(last["quality"], "decode_error", "the last message was refused: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_config_with_max_packet_starts_warned_and_drops_payloads_over_it() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = gateway_config(&broker, "3.1.1", "")
        .replace("id = \"mqtt-gw\"", "id = \"mqtt-gw\"\ndata_dir = \"data\"")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        .replace("keep_alive = \"5s\"", "keep_alive = \"5s\"\nmax_packet = \"1KiB\"");
    let path = dir.path().join("site.toml");
    std::fs::write(&path, &config).expect("write config");
    let line = config
        .lines()
        .position(|l| l.starts_with("max_packet"))
        .expect("max_packet line")
        + 1;
    let located = format!(
        "{}:{line}:14: mqtt.brokers[0].max_packet: warning: max_packet is deprecated",
        path.display()
    );

    let out = std::process::Command::new(support::binary())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("check-config runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&located), "{stderr}");
    assert!(stderr.contains("max_payload = \"1KiB\""), "{stderr}");

    let gw = GatewayProcess::start(&path, port).await;
    let mut p = Publisher::start(broker.port, "max-packet-publisher");
    until_subscribed(&gw, &mut p).await;
    p.send("test/seq/a", vec![b' '; 2048]).await;
    p.send("test/seq/a", seq_payload(1)).await;
    wait_good(&gw, "seq/a", 2).await;
    let text = gw.metrics_text().await;
    assert_eq!(
        metric(&text, "hazard_mqtt_in_errors_total", &["kind=\"oversize\""]),
        1.0,
        "{text}"
    );
    let log = gw.stderr_so_far();
    assert!(
        log.contains("Config warning") && log.contains("max_packet is deprecated"),
        "{log}"
    );
}
