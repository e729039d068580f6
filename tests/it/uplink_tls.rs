//! Uplinks over TLS to real peers: a TCP platform written here that answers every message
//! (the `reply` acknowledgement) behind TLS with the test CA's certificate, gone for a whole
//! minute while data flows; an HTTPS platform; and a Mosquitto that requires the gateway's
//! client certificate.

use crate::support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{
    Mosquitto, MqttCollector, TestGateway, WAIT, client_cert, free_port, metric, self_signed_cert, simulator, wait_for,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

type Got = Arc<Mutex<Vec<Value>>>;

fn acceptor(certs: &Path) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certs.join("cert.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs.join("cert.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The platform on `port`: keeps every `@@`-ended JSON message and answers `OK@@`. Aborting
/// the task drops the listener and every connection with it.
async fn tls_platform(port: u16, certs: &Path, got: Got) -> JoinHandle<()> {
    let acceptor = acceptor(certs);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((sock, _)) = listener.accept().await {
            let (acceptor, got) = (acceptor.clone(), got.clone());
            conns.spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(at) = pending.windows(2).position(|w| w == b"@@") {
                        let msg: Vec<u8> = pending.drain(..at + 2).take(at).collect();
                        got.lock().unwrap().push(serde_json::from_slice(&msg).unwrap());
                        if tls.write_all(b"OK@@").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    })
}

fn gateway_config(sim: &str, transport: &str) -> String {
    format!(
        r#"
[gateway]
id = "tls-gw"
[api]
listen = "127.0.0.1:0"

[[devices]]
name = "gas-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "250ms"
points = {{ ch1 = "A/GT-101", ch2 = "A/GT-102" }}

[[uplinks]]
name = "platform"
realtime_interval = "1s"
replay_rate = 200
retry_max = "1s"
basic = "never"
select = {{ points = ["A/*"], alarms = false }}
codes = {{ enterprise = "E-0001" }}
encoder = {{ type = "json", record = {{ code = "{{point_code}}", v = "{{value}}", ms = "{{time_ms}}" }} }}
transport = {transport}
"#
    )
}

/// Payloads the platform acknowledged, from the gateway's metrics text.
fn delivered(text: &str) -> f64 {
    metric(text, "hazard_uplink_payloads_delivered_total", &["uplink=\"platform\""])
}

fn now_ms() -> i64 {
    hazard_gateway::clock::system().now().as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_tcp_uplink_replays_a_minute_long_outage_in_order_with_original_times() {
    let certs = tempfile::tempdir().unwrap();
    let ca = self_signed_cert(certs.path());
    let got: Got = Arc::default();
    let port = free_port();
    let platform = tls_platform(port, certs.path(), got.clone()).await;
    let sim = simulator("ai4-gas-lel", None).await;
    let transport = format!(
        r#"{{ type = "tcp", address = "127.0.0.1:{port}", delimiter = "@@", reply = {{ contains = "OK" }}, timeout = "3s", tls = {{ ca_file = "{}" }} }}"#,
        ca.display()
    );
    let gw = TestGateway::start(&gateway_config(&sim.local_addr().to_string(), &transport)).await;
    let metrics = gw.metric_handles().clone();
    wait_for("records over TLS", WAIT, || async {
        (got.lock().unwrap().len() >= 4).then_some(())
    })
    .await;

    // The platform is gone for a minute while readings keep coming.
    platform.abort();
    let _ = platform.await;
    let down_at = now_ms();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let up_at = now_ms();
    let _platform = tls_platform(port, certs.path(), got.clone()).await;

    wait_for("the backlog to drain", Duration::from_secs(60), || async {
        let text = metrics.render();
        (metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"platform\""]) <= 1.0).then_some(())
    })
    .await;
    let text = metrics.render();
    let acked = delivered(&text);
    assert_eq!(
        text.matches("hazard_uplink_records_dropped_total{").count(),
        0,
        "nothing dropped"
    );

    let received = got.lock().unwrap().clone();
    let key = |v: &Value| (v["code"].as_str().unwrap().to_string(), v["ms"].as_i64().unwrap());
    let mut seen = HashSet::new();
    let first: Vec<(String, i64)> = received.iter().map(key).filter(|k| seen.insert(k.clone())).collect();
    // Every acknowledged payload arrived; a repeat is at most the one in flight when the
    // platform went away (its answer never came, so it was sent again).
    assert!(
        first.len() as f64 >= acked,
        "{} distinct records, {acked} acknowledged",
        first.len()
    );
    assert!(
        received.len() - first.len() <= 1,
        "repeats: {}",
        received.len() - first.len()
    );
    // Per point, in collection-time order, with the times of the outage itself.
    for code in ["A/GT-101", "A/GT-102"] {
        let times: Vec<i64> = first.iter().filter(|(c, _)| c == code).map(|(_, t)| *t).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{code} out of order: {times:?}");
        let during = times
            .iter()
            .filter(|t| **t > down_at + 1000 && **t < up_at - 1000)
            .count();
        assert!(during >= 40, "{code}: {during} records collected during the outage");
    }
    assert!(received.iter().all(|v| v["v"].is_number()), "live simulator values");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_uplink_reaches_a_broker_that_requires_its_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let ca = self_signed_cert(certs.path());
    client_cert(certs.path());
    let broker = Mosquitto::start_tls(certs.path());
    let tls_port = broker.tls_port.unwrap();
    let sub = MqttCollector::start(broker.port, "tls-platform", "plant/#", false);
    sub.wait_subscribed().await;
    let sim = simulator("ai4-gas-lel", None).await;
    let transport = format!(
        r#"{{ type = "mqtt", host = "127.0.0.1", port = {tls_port}, topic = "plant/{{gateway}}/{{kind}}", tls = {{ ca_file = "{}", cert = "{}", key = "{}" }} }}"#,
        ca.display(),
        certs.path().join("client.pem").display(),
        certs.path().join("client.key").display()
    );
    let gw = TestGateway::start(&gateway_config(&sim.local_addr().to_string(), &transport)).await;
    let got = wait_for("real-time payloads through the TLS listener", WAIT, || async {
        let got = sub.got.lock().unwrap().clone();
        (got.len() >= 4).then_some(got)
    })
    .await;
    assert!(got.iter().all(|(t, _)| t == "plant/tls-gw/realtime"), "{got:?}");
    assert!(
        got.iter()
            .all(|(_, v)| v["code"].as_str().is_some_and(|c| c.starts_with("A/GT-")))
    );
    // The platform has a record before the gateway has its answer (HTTP response, PUBACK) and
    // counts it delivered: wait for the count rather than read it once.
    wait_for("the gateway to count four records delivered", WAIT, || async {
        (delivered(&gw.metric_handles().render()) >= 4.0).then_some(())
    })
    .await;
}

/// An HTTPS platform: keeps every POSTed JSON body, answers 200.
async fn https_platform(certs: &Path, got: Got) -> String {
    let acceptor = acceptor(certs);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/data",
            axum::routing::post(
                |axum::extract::State(got): axum::extract::State<Got>, body: axum::body::Bytes| async move {
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                },
            ),
        )
        .with_state(got);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(sock).await else { return };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tls),
                        hyper_util::service::TowerToHyperService::new(app),
                    )
                    .await;
            });
        }
    });
    format!("https://127.0.0.1:{}", addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_uplink_posts_to_an_https_platform_it_trusts_through_the_site_ca() {
    let certs = tempfile::tempdir().unwrap();
    let ca = self_signed_cert(certs.path());
    let got: Got = Arc::default();
    let url = https_platform(certs.path(), got.clone()).await;
    let sim = simulator("ai4-gas-lel", None).await;
    let transport = format!(
        r#"{{ type = "http", url = "{url}/data", tls = {{ ca_file = "{}" }} }}"#,
        ca.display()
    );
    let gw = TestGateway::start(&gateway_config(&sim.local_addr().to_string(), &transport)).await;
    let got = wait_for("records over HTTPS", WAIT, || async {
        let got = got.lock().unwrap().clone();
        (got.len() >= 4).then_some(got)
    })
    .await;
    assert!(
        got.iter()
            .all(|v| v["code"].as_str().is_some_and(|c| c.starts_with("A/GT-"))),
        "{got:?}"
    );
    // The platform has a record before the gateway has its answer (HTTP response, PUBACK) and
    // counts it delivered: wait for the count rather than read it once.
    wait_for("the gateway to count four records delivered", WAIT, || async {
        (delivered(&gw.metric_handles().render()) >= 4.0).then_some(())
    })
    .await;
}
