//! The API server's connection layer on real sockets: TLS with a site CA, the request-head
//! size limit (431), the head read timeout, the request timeout (408, not for the feed), the
//! body limit (413), reading updates on the live feed beside alarm ids and replay, and tokens
//! never reaching the log.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use futures::StreamExt;
use hazard_gateway::api::auth::hash_token;
use serde_json::{Value, json};
use support::{GatewayProcess, TestGateway, WAIT, free_port, self_signed_cert, simulator, wait_for};

/// Gas simulator with four quiet channels.
async fn quiet_gas() -> hazard_gateway::sources::sim::Simulator {
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        assert!(sim.pin(ch, 2.0));
    }
    sim
}

fn config(sim: SocketAddr, api: &str) -> String {
    format!(
        r#"
[gateway]
id = "api-gw"
[api]
listen = "127.0.0.1:0"
{api}
[[devices]]
name = "gas-ai-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-002/GT-201", ch4 = "MHS-002/GT-202" }}
"#
    )
}

fn addr_of(gw: &TestGateway) -> SocketAddr {
    gw.gateway.as_ref().unwrap().api_addr
}

/// Writes `request` on a raw socket (stopping at the first write error: the server may close
/// early) and reads everything until the server closes or `limit` passes; returns what was
/// read and whether the server closed.
fn raw_exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    for chunk in request.chunks(1024) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_and_slow_heads_are_cut_off() {
    let sim = quiet_gas().await;
    let gw = TestGateway::start(&config(
        sim.local_addr(),
        r#"max_header = "8KiB"
header_read_timeout = "300ms""#,
    ))
    .await;
    let addr = addr_of(&gw);
    let ok = tokio::task::spawn_blocking(move || {
        raw_exchange(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            WAIT,
        )
    });
    let (text, _) = ok.await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    let mut big = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Padding: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 12 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let (text, closed) = tokio::task::spawn_blocking(move || raw_exchange(addr, &big, WAIT))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(closed);

    // A head that never ends: the server hangs up long before the client's own bound.
    let (text, closed) =
        tokio::task::spawn_blocking(move || raw_exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: 1", WAIT))
            .await
            .unwrap();
    assert!(closed, "the server closed the connection");
    assert!(!text.contains("200 OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_stalls_gets_408_a_big_body_413_and_the_feed_outlives_the_timeout() {
    let sim = quiet_gas().await;
    let gw = TestGateway::start(&config(
        sim.local_addr(),
        r#"request_timeout = "500ms"
max_body = "1KiB""#,
    ))
    .await;
    let addr = addr_of(&gw);
    // The body never arrives in full: the request times out.
    let stalled = b"POST /api/v1/alarms/x/ack HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                    Content-Length: 100\r\n\r\n{\"comment\":";
    let (text, _) = tokio::task::spawn_blocking(move || raw_exchange(addr, stalled, WAIT))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");

    let url = format!("{}/api/v1/alarms/x/ack", gw.base);
    let declared = gw
        .http
        .post(&url)
        .json(&json!({"comment": "x".repeat(2000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    let body: Value = declared.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    // No Content-Length (chunked): cut at the limit while read.
    let chunks = futures::stream::iter((0..8).map(|i| {
        Ok::<_, std::io::Error>(format!(
            "{}\"{}\"",
            if i == 0 { "{\"comment\":" } else { "" },
            "y".repeat(300)
        ))
    }));
    let chunked = gw
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);

    // The feed is not bound by the request timeout: it still delivers after several of them.
    let resp = gw.http.get(format!("{}/api/v1/events", gw.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sim.pin("ch1", 30.0));
    let event = next_event(&mut body, "alarm").await;
    assert_eq!(event.data["alarm_id"], "MHS-001/GT-101:high");
}

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    kind: String,
    id: Option<String>,
    data: Value,
}

/// Reads events until one of `kind` arrives (bounded by [`WAIT`]), returning it.
async fn next_event<S, B>(body: &mut S, kind: &str) -> SseEvent
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let e = read_event(body, &mut seen).await;
            if e.kind == kind {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{kind}` event within {WAIT:?}"))
}

/// The next event of the stream; `buf` keeps bytes read past it.
async fn read_event<S, B>(body: &mut S, buf: &mut Vec<u8>) -> SseEvent
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&frame).into_owned();
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            let Some(data) = field("data:") else {
                continue; // a keep-alive comment
            };
            return SseEvent {
                kind: field("event:").unwrap_or_default(),
                id: field("id:"),
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
            };
        }
        let chunk = body.next().await.expect("the feed stays open").expect("feed bytes");
        buf.extend_from_slice(chunk.as_ref());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_sends_rate_limited_readings_of_matching_points_beside_replayable_alarms() {
    let sim = quiet_gas().await;
    let gw = TestGateway::start(&config(sim.local_addr(), "")).await;
    assert!(sim.pin("ch1", 30.0), "one alarm before anyone listens");
    wait_for("the alarm", WAIT, || async { gw.alarm("MHS-001/GT-101:high").await }).await;

    let bad = gw
        .http
        .get(format!("{}/api/v1/events?readings=MHS-[", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let resp = gw
        .http
        .get(format!("{}/api/v1/events", gw.base))
        .query(&[("readings", "MHS-001/*"), ("reading_interval", "1s")])
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut buf = Vec::new();
    let mut alarms = Vec::new();
    let mut last_ts: std::collections::HashMap<String, i64> = Default::default();
    let mut readings = 0;
    // Three readings per matching point: enough to see the interval between them.
    tokio::time::timeout(Duration::from_secs(60), async {
        while readings < 6 {
            let e = read_event(&mut body, &mut buf).await;
            match e.kind.as_str() {
                "alarm" => alarms.push(e),
                "reading" => {
                    assert_eq!(e.id, None, "readings never move Last-Event-ID");
                    let point = e.data["point"].as_str().unwrap().to_string();
                    assert!(point.starts_with("MHS-001/"), "only matching points: {point}");
                    let ts = e.data["ts_ms"].as_i64().unwrap();
                    if let Some(prev) = last_ts.insert(point.clone(), ts) {
                        // Polled every 100 ms, sent at most once a second.
                        assert!(ts - prev >= 500, "{point}: {prev} then {ts}");
                    }
                    assert_eq!(e.data["quality"], "good");
                    readings += 1;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("reading events arrive");
    assert_eq!(last_ts.len(), 2, "both matching points");
    let first = alarms.first().expect("the alarm raised before connecting is replayed");
    assert_eq!(first.data["alarm_id"], "MHS-001/GT-101:high");
    assert_eq!(first.id.as_deref(), Some("1"));
    let metrics = gw.metrics().await;
    assert!(support::metric(&metrics, "hazard_api_sse_readings_sent_total", &[]) >= 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_with_the_configured_certificate() {
    let sim = quiet_gas().await;
    let certs = tempfile::tempdir().unwrap();
    let ca = self_signed_cert(certs.path());
    let tls = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}",
        certs.path().join("cert.pem").display(),
        certs.path().join("cert.key").display()
    );
    let gw = TestGateway::start(&config(sim.local_addr(), &tls)).await;
    let port = addr_of(&gw).port();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let trusting = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let health: Value = trusting
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("HTTPS answers")
        .json()
        .await
        .unwrap();
    assert_eq!(health["gateway_id"], "api-gw");
    let doc: Value = trusting
        .get(format!("https://127.0.0.1:{port}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/events"].is_object());

    let stranger = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(
        stranger
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err(),
        "a client without the site CA refuses the certificate"
    );
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP");
}

#[test]
fn tls_file_problems_are_reported_with_their_place_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    self_signed_cert(dir.path());
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let path = dir.path().join("gw.toml");
    let check = |tls: &str| {
        let text = format!("[gateway]\nid = \"g\"\n[api]\n{tls}\n");
        hazard_gateway::config::GatewayConfig::parse(&path, &text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        check(r#"tls = { cert = "cert.pem", key = "cert.key" }"#),
        Ok(()),
        "relative to the config"
    );
    let p = path.display();
    let missing = check(r#"tls = { cert = "nope.pem", key = "cert.key" }"#).unwrap_err();
    assert!(
        missing.contains(&format!("{p}:4:")) && missing.contains("api.tls.cert"),
        "{missing}"
    );
    assert!(
        missing.contains("cannot read certificate file") && missing.contains("nope.pem"),
        "{missing}"
    );
    let junk = check(r#"tls = { cert = "junk.pem", key = "cert.key" }"#).unwrap_err();
    assert!(
        junk.contains("api.tls.cert") && junk.contains("holds no PEM certificate"),
        "{junk}"
    );
    let wrong_key = check(r#"tls = { cert = "cert.pem", key = "ca.key" }"#).unwrap_err();
    assert!(
        wrong_key.contains("api.tls.key") && wrong_key.contains("do not make a TLS server"),
        "{wrong_key}"
    );
    let bad_key = check(r#"tls = { cert = "cert.pem", key = "junk.pem" }"#).unwrap_err();
    assert!(
        bad_key.contains("api.tls.key") && bad_key.contains("holds no PEM key"),
        "{bad_key}"
    );
    let small = check(r#"max_header = "1KiB""#).unwrap_err();
    assert!(
        small.contains("api.max_header") && small.contains("at least 8KiB"),
        "{small}"
    );
}

const OPERATOR: &str = "op-token-Zq81xv7Lr0-secret";
const VIEWER: &str = "viewer-token-Pw5mK2c9Ta-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_appear_in_the_log_even_at_trace_level() {
    let sim = quiet_gas().await;
    assert!(sim.pin("ch1", 30.0));
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let tokens = format!(
        "[[api.tokens]]\nname = \"duty\"\nrole = \"operator\"\nhash = \"{}\"\n\
         [[api.tokens]]\nname = \"wall\"\nrole = \"viewer\"\nhash = \"{}\"",
        hash_token(OPERATOR),
        hash_token(VIEWER)
    );
    let text = config(sim.local_addr(), &tokens)
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace(
            "[gateway]\nid = \"api-gw\"",
            "[gateway]\nid = \"api-gw\"\ndata_dir = \"data\"",
        );
    std::fs::write(&path, text).unwrap();
    let args = ["run".as_ref(), "--config".as_ref(), path.as_os_str()];
    let mut gw = GatewayProcess::spawn_with_env(&args, port, &[("RUST_LOG", "trace")]).await;
    let get = |path: &str, token: &str| gw.http.get(format!("{}{path}", gw.base)).bearer_auth(token);
    wait_for("the alarm", WAIT, || async {
        let alarms: Value = get("/api/v1/alarms", VIEWER).send().await.ok()?.json().await.ok()?;
        (!alarms.as_array()?.is_empty()).then_some(())
    })
    .await;
    for p in [
        "/api/v1/points",
        "/api/v1/devices",
        "/api/v1/alarms/history",
        "/api/v1/alarms/summary",
    ] {
        assert_eq!(get(p, VIEWER).send().await.unwrap().status(), 200, "{p}");
    }
    let ack = gw
        .http
        .post(format!("{}/api/v1/alarms/MHS-001%2FGT-101:high/ack", gw.base))
        .bearer_auth(OPERATOR)
        .json(&json!({"comment": "seen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    let forbidden = gw
        .http
        .post(format!("{}/api/v1/alarms/MHS-001%2FGT-101:high/ack", gw.base))
        .bearer_auth(VIEWER)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let wrong = format!("{OPERATOR}-but-wrong");
    assert_eq!(get("/api/v1/points", &wrong).send().await.unwrap().status(), 401);
    let feed = gw
        .http
        .get(format!("{}/api/v1/events", gw.base))
        .query(&[("access_token", VIEWER), ("readings", "*")])
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let mut body = feed.bytes_stream();
    next_event(&mut body, "reading").await;
    drop(body);

    gw.signal_and_wait("TERM");
    let log = gw.stderr();
    assert!(
        log.contains("/api/v1/points"),
        "requests are logged at this level:\n{log}"
    );
    for secret in [OPERATOR, VIEWER, "Zq81xv7Lr0", "Pw5mK2c9Ta"] {
        assert!(!log.contains(secret), "`{secret}` appears in the log");
    }
}
