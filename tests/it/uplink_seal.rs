//! Sealed uplinks end to end: a gateway reading a simulated gas detector feeds two platforms on
//! loopback and every envelope they receive is opened by an independent implementation.
//!
//! - MEM shape: HTTP POST of `{"appid", "data": HEX(SM4-CBC(record))}` with the `appsecret`
//!   header (a secret file given to the transport) and a per-payload `X-Data-Id` header from
//!   the envelope; decrypted with Python's gmssl.
//! - Jiangsu shape: TCP, each message one JSON object ended by `@@`,
//!   `{appId, serviceId, dataId, districtCode, data: Base64(AES-128-ECB(JSON rows))}`;
//!   decrypted with Python's cryptography.

use crate::support;
use crate::support::seal_ref;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine as _;
use seal_ref::{RefOp, reference};
use serde_json::{Value, json};
use support::{TestGateway, WAIT, simulator, wait_for};
use tokio::io::AsyncReadExt;

const SM4_KEY: &str = "7a3f09c1d2e4b5a69788f0e1d2c3b4a5";
const SM4_IV: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const AES_KEY: &[u8] = b"JsHazard2026Key!";
const APPSECRET: &str = "mem-应用-secret-42";

/// Pinned detector readings (%LEL) and the regulator code of each channel.
const CHANNELS: [(&str, &str, f64); 4] = [
    ("ch1", "GT101", 2.5),
    ("ch2", "GT102", 5.0),
    ("ch3", "GT103", 7.5),
    ("ch4", "GT104", 10.0),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// One POST as the MEM receiver saw it.
#[derive(Debug, Clone)]
struct Post {
    kind: String,
    appsecret: Option<String>,
    data_id: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

type Posts = Arc<Mutex<Vec<Post>>>;

async fn receive(
    State(posts): State<Posts>,
    UrlPath(kind): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let appsecret = headers
        .get("appsecret")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    posts.lock().unwrap().push(Post {
        kind,
        appsecret,
        data_id: header("x-data-id"),
        content_type: header("content-type"),
        body: body.to_vec(),
    });
    json!({"code": 0, "msg": "ok"}).to_string()
}

async fn start_http_receiver(posts: Posts) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/mem/{kind}", post(receive)).with_state(posts);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mem")
}

/// A TCP platform that cuts its input at `@@`, one message each.
async fn start_tcp_receiver(messages: Arc<Mutex<Vec<Vec<u8>>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let messages = messages.clone();
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(at) = pending.windows(2).position(|w| w == b"@@") {
                        let msg: Vec<u8> = pending.drain(..at + 2).take(at).collect();
                        messages.lock().unwrap().push(msg);
                    }
                }
            });
        }
    });
    addr.to_string()
}

fn config(sim: &str, mem_url: &str, tcp_addr: &str, keys: &std::path::Path) -> String {
    let k = |name: &str| keys.join(name).display().to_string();
    format!(
        r#"
[gateway]
id = "seal-gw"

[api]
listen = "127.0.0.1:0"

[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2

[[devices]]
name = "gas"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
hazard_source = "MHS-001"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-001/GT-103", ch4 = "MHS-001/GT-104" }}

[[uplinks]]
name = "mem"
realtime_interval = "1s"
codes = {{ enterprise = "320500001", hazard_sources = {{ "MHS-001" = "32050000100101" }}, points = {{ "MHS-001/GT-101" = "GT101", "MHS-001/GT-102" = "GT102", "MHS-001/GT-103" = "GT103", "MHS-001/GT-104" = "GT104" }} }}
encoder = {{ type = "json" }}
cipher = {{ type = "sm4_cbc", key = {{ file = "{sm4_key}", encoding = "hex" }}, iv = {{ file = "{sm4_iv}", encoding = "hex" }}, output = "hex_upper" }}
envelope = {{ type = "json", body = '{{"appid":"{{{{appid}}}}","data":"{{{{data}}}}"}}', constants = {{ appid = "HG3205000001" }}, headers = {{ "X-Data-Id" = "{{{{uuid}}}}" }} }}
transport = {{ type = "http", url = "{mem_url}/{{kind}}", headers = {{ appsecret = {{ file = "{appsecret}" }} }} }}

[[uplinks]]
name = "jiangsu"
realtime_interval = "1s"
codes = {{ enterprise = "320500001", hazard_sources = {{ "MHS-001" = "32050000100101" }}, points = {{ "MHS-001/GT-101" = "GT101", "MHS-001/GT-102" = "GT102", "MHS-001/GT-103" = "GT103", "MHS-001/GT-104" = "GT104" }} }}
encoder = {{ type = "json", max_records = 10 }}
cipher = {{ type = "aes_128_ecb", key = {{ file = "{aes_key}", encoding = "raw" }}, output = "base64" }}
envelope = {{ type = "json", body = '{{"appId":"{{{{appId}}}}","serviceId":"{{{{attr.kind}}}}","dataId":"{{{{uuid}}}}","districtCode":"{{{{districtCode}}}}","data":"{{{{data}}}}"}}', constants = {{ appId = "js-hazard-01", districtCode = "320500" }} }}
transport = {{ type = "tcp", address = "{tcp_addr}", delimiter = "@@" }}
"#,
        sm4_key = k("mem.key"),
        sm4_iv = k("mem.iv"),
        appsecret = k("mem.appsecret"),
        aes_key = k("js.key"),
    )
}

/// Checks one decrypted record (a JSON object from the built-in templates) and returns its
/// point code when it is a real-time reading.
fn check_record(row: &Value, kind: &str, values: &HashMap<&str, f64>) -> Option<String> {
    assert_eq!(row["enterprise_code"], "320500001", "{row}");
    assert_eq!(row["hazard_source_code"], "32050000100101", "{row}");
    let code = row["point_code"]
        .as_str()
        .unwrap_or_else(|| panic!("point code in {row}"));
    assert!(values.contains_key(code), "unknown point code in {row}");
    if kind != "realtime" {
        return None;
    }
    let value = row["value"].as_f64().unwrap_or_else(|| panic!("a value in {row}"));
    assert!((value - values[code]).abs() < 0.01, "{code}: {value} in {row}");
    assert_eq!(row["unit"], "%LEL", "{row}");
    let time = row["time"].as_str().unwrap();
    assert_eq!(time.len(), "2026-11-26 08:00:00".len(), "{row}");
    Some(code.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sealed_envelope_opens_with_an_independent_implementation() {
    let sim = simulator("ai4-gas-lel", None).await;
    for (ch, _, v) in CHANNELS {
        sim.pin(ch, v);
    }
    let values: HashMap<&str, f64> = CHANNELS.iter().map(|(_, code, v)| (*code, *v)).collect();

    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("mem.key"), format!("{SM4_KEY}\n")).unwrap();
    std::fs::write(keys.path().join("mem.iv"), SM4_IV).unwrap();
    std::fs::write(keys.path().join("mem.appsecret"), format!("{APPSECRET}\n")).unwrap();
    std::fs::write(keys.path().join("js.key"), AES_KEY).unwrap();

    let posts: Posts = Arc::default();
    let mem_url = start_http_receiver(posts.clone()).await;
    let messages: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let tcp_addr = start_tcp_receiver(messages.clone()).await;
    let mut gw = TestGateway::start(&config(&sim.local_addr().to_string(), &mem_url, &tcp_addr, keys.path())).await;

    // Enough real-time payloads for every point, at both platforms.
    wait_for("real-time envelopes at both platforms", WAIT, || async {
        let mem = posts.lock().unwrap().iter().filter(|p| p.kind == "realtime").count();
        let js = messages.lock().unwrap().len();
        (mem >= 12 && js >= 4).then_some(())
    })
    .await;
    gw.shutdown().await;
    let posts = posts.lock().unwrap().clone();
    let messages = messages.lock().unwrap().clone();

    // MEM: every envelope is exactly {appid, data}, data upper-case hex, headers right.
    let mut ops = Vec::new();
    let mut data_ids = HashSet::new();
    for p in &posts {
        let env: Value = serde_json::from_slice(&p.body).expect("envelope is JSON");
        let obj = env.as_object().unwrap();
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["appid", "data"], "{env}");
        assert_eq!(env["appid"], "HG3205000001");
        assert_eq!(p.appsecret.as_deref(), Some(APPSECRET));
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        let id = p.data_id.clone().expect("X-Data-Id header");
        assert!(data_ids.insert(id), "each payload has its own data id");
        let data = env["data"].as_str().unwrap();
        assert!(
            !data.is_empty() && data.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
            "{data}"
        );
        ops.push(RefOp {
            op: "decrypt",
            cipher: "sm4-cbc",
            key: unhex(SM4_KEY),
            iv: Some(unhex(SM4_IV)),
            data: unhex(data),
        });
    }
    // Jiangsu: every message is the five-field envelope with a fresh UUID v4.
    let mut js_kinds = Vec::new();
    for m in &messages {
        let env: Value = serde_json::from_slice(m).expect("message is JSON");
        let mut keys: Vec<&String> = env.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["appId", "data", "dataId", "districtCode", "serviceId"], "{env}");
        assert_eq!(env["appId"], "js-hazard-01");
        assert_eq!(env["districtCode"], "320500");
        let id = env["dataId"].as_str().unwrap();
        assert_eq!((id.len(), &id[14..15]), (36, "4"), "{id}");
        assert!(data_ids.insert(id.to_string()), "each message has its own data id");
        js_kinds.push(env["serviceId"].as_str().unwrap().to_string());
        let data = base64::engine::general_purpose::STANDARD
            .decode(env["data"].as_str().unwrap())
            .expect("data is Base64");
        ops.push(RefOp {
            op: "decrypt",
            cipher: "aes-128-ecb",
            key: AES_KEY.to_vec(),
            iv: None,
            data,
        });
    }

    // Open every envelope with gmssl / cryptography and check the records inside.
    let plain = reference(&ops);
    let mut mem_realtime: HashMap<String, usize> = HashMap::new();
    for (p, out) in posts.iter().zip(&plain) {
        let text = out
            .as_ref()
            .unwrap_or_else(|e| panic!("gmssl cannot open a MEM envelope: {e}"));
        let row: Value = serde_json::from_slice(text).expect("decrypted MEM payload is JSON");
        if let Some(code) = check_record(&row, &p.kind, &values) {
            *mem_realtime.entry(code).or_default() += 1;
        }
    }
    let mut js_realtime: HashMap<String, usize> = HashMap::new();
    for (kind, out) in js_kinds.iter().zip(&plain[posts.len()..]) {
        let text = out
            .as_ref()
            .unwrap_or_else(|e| panic!("cryptography cannot open a Jiangsu message: {e}"));
        let rows: Value = serde_json::from_slice(text).expect("decrypted Jiangsu payload is JSON");
        let rows = match rows {
            Value::Array(rows) => rows,
            row => vec![row],
        };
        for row in &rows {
            if let Some(code) = check_record(row, kind, &values) {
                *js_realtime.entry(code).or_default() += 1;
            }
        }
    }
    for (_, code, _) in CHANNELS {
        assert!(
            mem_realtime.get(code).copied().unwrap_or(0) >= 1,
            "MEM real-time of {code}: {mem_realtime:?}"
        );
        assert!(
            js_realtime.get(code).copied().unwrap_or(0) >= 1,
            "Jiangsu real-time of {code}: {js_realtime:?}"
        );
    }
}

/// `uplink preview` of a sealed uplink prints each payload plain and sealed plus the
/// envelope's headers; gmssl opens every sealed form to the plain one printed above it, and the
/// transport's secret header is not printed.
#[test]
fn preview_shows_plain_and_sealed_forms_that_match() {
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("mem.key"), format!("{SM4_KEY}\n")).unwrap();
    std::fs::write(keys.path().join("mem.iv"), SM4_IV).unwrap();
    std::fs::write(keys.path().join("mem.appsecret"), format!("{APPSECRET}\n")).unwrap();
    std::fs::write(keys.path().join("js.key"), AES_KEY).unwrap();
    // Nothing listens at these addresses: preview sends nothing.
    let text = config("127.0.0.1:1502", "http://127.0.0.1:9/x", "127.0.0.1:9", keys.path());
    let path = keys.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(support::binary())
        .args([
            "uplink",
            "preview",
            "mem",
            "--config",
            path.to_str().unwrap(),
            "--count",
            "5",
        ])
        .output()
        .expect("binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(!shown.contains("secret-42") && !shown.contains("warning"), "{shown}");
    let plains: Vec<&str> = shown.lines().filter_map(|l| l.strip_prefix("plain:  ")).collect();
    let sealed: Vec<Value> = shown
        .lines()
        .filter_map(|l| l.strip_prefix("sealed: "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ids: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.strip_prefix("header: X-Data-Id: "))
        .collect();
    assert_eq!((plains.len(), sealed.len(), ids.len()), (5, 5, 5), "{shown}");
    let ops: Vec<RefOp> = sealed
        .iter()
        .map(|env| {
            assert_eq!(env["appid"], "HG3205000001");
            RefOp {
                op: "decrypt",
                cipher: "sm4-cbc",
                key: unhex(SM4_KEY),
                iv: Some(unhex(SM4_IV)),
                data: unhex(env["data"].as_str().unwrap()),
            }
        })
        .collect();
    for (plain, opened) in plains.iter().zip(reference(&ops)) {
        assert_eq!(opened.expect("gmssl opens it"), plain.as_bytes());
    }
}

/// A key of the wrong length or a missing IV file stops the uplink with the uplink, the field
/// and the cause named, and no key material in the message.
#[test]
fn bad_key_material_is_named_without_showing_it() {
    let keys = tempfile::tempdir().unwrap();
    // 15 bytes of hex where SM4 needs 16.
    std::fs::write(keys.path().join("mem.key"), "7a3f09c1d2e4b5a69788f0e1d2c3b4").unwrap();
    std::fs::write(keys.path().join("mem.iv"), SM4_IV).unwrap();
    std::fs::write(keys.path().join("mem.appsecret"), APPSECRET).unwrap();
    std::fs::write(keys.path().join("js.key"), AES_KEY).unwrap();
    let path = keys.path().join("gateway.toml");
    std::fs::write(
        &path,
        config("127.0.0.1:1502", "http://127.0.0.1:9/x", "127.0.0.1:9", keys.path()),
    )
    .unwrap();
    let preview = || {
        let out = std::process::Command::new(support::binary())
            .args(["uplink", "preview", "mem", "--config", path.to_str().unwrap()])
            .output()
            .expect("binary runs");
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let err = preview();
    let key_file = keys.path().join("mem.key");
    assert!(
        err.contains(&format!(
            "uplink `mem`: cipher: key: file `{}`: key has 15 bytes; sm4_cbc needs 16 (that is 32 hex digits)",
            key_file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("7a3f09"), "{err}");
    std::fs::write(&key_file, SM4_KEY).unwrap();
    std::fs::remove_file(keys.path().join("mem.iv")).unwrap();
    let err = preview();
    assert!(
        err.contains(&format!(
            "uplink `mem`: cipher: iv: cannot read file `{}`",
            keys.path().join("mem.iv").display()
        )),
        "{err}"
    );
}
