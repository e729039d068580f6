//! A time-series store whose secret is missing from the environment must not stop the gateway
//! (the real binary, `run`): it starts, evaluates alarms, says what is wrong in `/readyz` and
//! the metrics, and buffers the store's readings; started again with the secret set, it
//! delivers what the first run buffered.

use crate::support;

use support::{GatewayProcess, VictoriaMetrics, WAIT, free_port, metric, simulator, wait_for};

/// Unique to this test: nothing else reads or sets it.
const TOKEN_VAR: &str = "HAZARD_TEST_TSDB_SECRET_TOKEN_7F3A";

async fn readyz(gw: &GatewayProcess) -> (u16, serde_json::Value) {
    let r = gw
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .expect("readyz answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_its_secret_neither_stops_the_gateway_nor_loses_its_readings() {
    let vm = VictoriaMetrics::start();
    let sim = simulator("ai4-gas-lel", None).await;
    assert!(sim.pin("ch1", 32.5), "above the 25 %LEL set-point");
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.toml");
    let config = format!(
        r#"
[gateway]
id = "gw-secret"
data_dir = "data"
[api]
listen = "127.0.0.1:{port}"
[[devices]]
name = "gas"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
points = {{ ch1 = "A/GT-101" }}
[[tsdb]]
name = "historian"
url = "{vm}"
api = "v2"
org = "o"
bucket = "b"
token_env = "{TOKEN_VAR}"
batch_age = "100ms"
retry_min = "100ms"
retry_max = "300ms"
timeout = "2s"
"#,
        sim = sim.local_addr(),
        vm = vm.url()
    );
    std::fs::write(&path, config).expect("config written");
    let args = [std::ffi::OsStr::new("run"), "--config".as_ref(), path.as_os_str()];

    // The first run has no secret: it starts all the same and alarms.
    let mut gw = GatewayProcess::spawn_with_env(&args, port, &[]).await;
    wait_for("the gas alarm", WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .any(|a| a["alarm_id"] == "A/GT-101:high" && a["state"] == "unack_active")
            .then_some(())
    })
    .await;
    // The store's problem is a gateway alarm, a readiness reason and a metric; its readings
    // are kept.
    wait_for("the gateway's output alarm", WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .any(|a| a["alarm_id"] == "gateway:output_fault" && a["state"] == "unack_active" && a["class"] == "fault")
            .then_some(())
    })
    .await;
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 503, "{body}");
    let problems = body["problems"].to_string();
    assert!(
        problems.contains("store `historian` cannot send") && problems.contains(TOKEN_VAR),
        "{body}"
    );
    let first = wait_for("readings buffered for the store", WAIT, || async {
        let m = gw.metrics().await;
        (metric(&m, "hazard_tsdb_lines_buffered_total", &["historian"]) > 0.0).then_some(m)
    })
    .await;
    assert_eq!(metric(&first, "hazard_tsdb_store_unusable", &["historian"]), 1.0);
    assert_eq!(metric(&first, "hazard_tsdb_lines_sent_total", &["historian"]), 0.0);
    let status = gw.signal_and_wait("TERM");
    assert!(status.success(), "an orderly stop: {status}");
    let log = gw.stderr();
    assert!(
        log.contains("cannot send") && log.contains(TOKEN_VAR),
        "the cause is logged:\n{log}"
    );
    let stopped_at_ms = hazard_gateway::clock::system().now().as_millis();

    // Started again with the secret, it sends what the first run buffered.
    let gw = GatewayProcess::spawn_with_env(&args, port, &[(TOKEN_VAR, "test-token")]).await;
    wait_for("ready, the store sending", WAIT, || async {
        let m = gw.metrics().await;
        let (status, _) = readyz(&gw).await;
        (status == 200
            && metric(&m, "hazard_tsdb_store_unusable", &["historian"]) == 0.0
            && metric(&m, "hazard_tsdb_lines_sent_total", &["historian"]) > 0.0)
            .then_some(())
    })
    .await;
    // The output alarm, restored from the journal, clears once the store can send; it waits
    // for an acknowledgement like any alarm that came and went.
    wait_for("the output alarm cleared", WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .any(|a| a["alarm_id"] == "gateway:output_fault" && a["state"] == "unack_rtn")
            .then_some(())
    })
    .await;
    let from_first_run = wait_for("the first run's readings in the store", WAIT, || async {
        let series = vm.export("hazard_reading_value{gateway=\"gw-secret\"}").await;
        let n = series
            .iter()
            .filter(|(labels, _, _)| labels.to_string().contains("A/GT-101"))
            .flat_map(|(_, ts, values)| ts.iter().zip(values))
            .filter(|(t, v)| **t < stopped_at_ms && **v == 32.5)
            .count();
        (n > 0).then_some(n)
    })
    .await;
    assert!(from_first_run > 0);
}
