//! OPC UA sources against an independent server: asyncua (Python), started by each test on a
//! free loopback port. Every numeric built-in type arrives with its value; a server restart
//! mid-stream loses nothing and duplicates nothing; an absolute deadband filters small
//! changes, and so does a percent deadband of the node's EURange; Bad and Uncertain status
//! codes map to their qualities; a Basic256Sha256 SignAndEncrypt endpoint works with
//! certificates trusted both ways (and fails clearly without), and so do Basic256Sha256 Sign
//! and Aes128Sha256RsaOaep Sign and SignAndEncrypt; a user name and password and an X.509 user
//! certificate log in (a wrong one is refused clearly); 2,500 items on one endpoint all
//! deliver; `opcua browse` lists the test nodes.
//!
//! asyncua 2.1.0 does not apply percent deadbands itself (it reports every change and logs
//! "DeadbandType Percent is not implemented"); the test server (`tests/support/opcua_server.py`)
//! adds the server's part of the standard: it turns a percent deadband into the absolute one
//! of that share of the node's EURange when the item is made, and refuses the item on a node
//! without EURange. What the gateway sends (deadband type 2 and the percentage) is what any
//! server receives.

use crate::support;

use std::path::Path;
use std::time::Duration;

use hazard_gateway::telemetry::opcua::OpcuaMetrics;
use serde_json::Value;
use support::{OpcuaServer, TestGateway, WAIT, wait_for};

const TYPES: [(&str, f64); 11] = [
    ("Boolean", 1.0),
    ("SByte", -128.0),
    ("Byte", 255.0),
    ("Int16", -32768.0),
    ("UInt16", 65535.0),
    ("Int32", -2147483648.0),
    ("UInt32", 4294967295.0),
    ("Int64", -9007199254740992.0),
    // 2^53 + 1 has no f64; it becomes the nearest, 2^53.
    ("UInt64", 9007199254740992.0),
    ("Float", 1.5),
    ("Double", -1234.5678),
];

/// A config with one endpoint `dcs` at `url` (extra endpoint keys in `endpoint`) and the
/// `[[opcua.points]]` entries in `points`.
fn config(url: &str, endpoint: &str, points: &str) -> String {
    format!(
        r#"
[gateway]
id = "opcua-gw"
[api]
listen = "127.0.0.1:0"
[history]
deadband_percent = 0.0

[[opcua.endpoints]]
name = "dcs"
url = "{url}"
publishing_interval = "100ms"
# A first session that times out on a busy machine is tried again soon.
reconnect_max = "2s"
{endpoint}
{points}
"#
    )
}

fn point(id: &str, node: &str, extra: &str) -> String {
    format!("[[opcua.points]]\nendpoint = \"dcs\"\npoint = \"{id}\"\nnode = \"{node}\"\n{extra}\n")
}

/// Every stored reading of `point` as (ts_ms, value, quality), oldest first.
async fn history(gw: &TestGateway, point: &str) -> Vec<(i64, Option<f64>, String)> {
    let id = point.replace('/', "%2F");
    let h = gw
        .get_json(&format!(
            "/api/v1/points/{id}/history?resolution=raw&from=0&to=9999999999999&limit=100000"
        ))
        .await;
    let mut rows: Vec<_> = h["readings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["ts_ms"].as_i64().unwrap_or(0),
                r["value"].as_f64(),
                r["quality"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows
}

/// The good values of `point` in history once it holds `last` (history is written in batches).
async fn stored_good(gw: &TestGateway, point: &str, last: f64) -> Vec<f64> {
    wait_for(&format!("{point}: {last} in history"), WAIT, || async {
        let good: Vec<f64> = history(gw, point)
            .await
            .into_iter()
            .filter(|r| r.2 == "good")
            .filter_map(|r| r.1)
            .collect();
        (good.last() == Some(&last)).then_some(good)
    })
    .await
}

async fn wait_point(gw: &TestGateway, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + OPCUA_WAIT;
    loop {
        let p = gw.point(id).await;
        if ok(&p) {
            return p;
        }
        if tokio::time::Instant::now() >= deadline {
            // The endpoint's health says why: never connected, refused items, or no data.
            let dev = gw.device("opcua:dcs").await;
            panic!("timed out after {OPCUA_WAIT:?} waiting for {id}: {what}\npoint: {p}\nendpoint: {dev}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// asyncua opens a session in seconds on a busy two-core machine (the secure ones sign with
/// RSA in Python), and a first attempt may time out: more room than [`WAIT`].
const OPCUA_WAIT: Duration = Duration::from_secs(90);

/// `hazard_opcua_errors_total` of endpoint `dcs` for one kind of error.
fn opcua_errors(gw: &TestGateway, kind: &'static str) -> u64 {
    gw.metric_handles()
        .opcua
        .errors
        .get_or_create(&OpcuaMetrics::kind("dcs", kind))
        .get()
}

/// `hazard_opcua_dropped_total` of endpoint `dcs` for one reason.
fn opcua_dropped(gw: &TestGateway, reason: &'static str) -> u64 {
    gw.metric_handles()
        .opcua
        .dropped
        .get_or_create(&OpcuaMetrics::kind("dcs", reason))
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_numeric_builtin_type_arrives_with_its_value() {
    let server = OpcuaServer::start(&[]);
    let points: String = TYPES
        .iter()
        .map(|(t, _)| point(&format!("t/{t}"), &format!("ns=2;s=Plant.{t}"), ""))
        .collect();
    let gw = TestGateway::start(&config(&server.url(), "", &points)).await;
    for (t, want) in TYPES {
        let p = wait_point(&gw, &format!("t/{t}"), "good", |p| p["quality"] == "good").await;
        assert_eq!(p["value"].as_f64(), Some(want), "{t}");
    }
    let dev = gw.device("opcua:dcs").await;
    assert_eq!(dev["status"], "online");
    assert_eq!(dev["opcua"]["items_ok"], 11);
    let m = gw.metrics().await;
    assert!(m.contains("hazard_opcua_connected{endpoint=\"dcs\"} 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_uncertain_status_codes_map_to_their_qualities() {
    let server = OpcuaServer::start(&[]);
    let points = [
        point("s/comm", "ns=2;s=Plant.BadComm", ""),
        point("s/sensor", "ns=2;s=Plant.BadSensor", ""),
        point("s/doubt", "ns=2;s=Plant.Uncertain", ""),
        point("s/missing", "ns=2;s=Plant.NoSuchNode", ""),
        // The same counter by browse path from the Objects folder.
        "[[opcua.points]]\nendpoint = \"dcs\"\npoint = \"s/by-path\"\nbrowse_path = \"2:Plant/2:Counter\"\n".into(),
    ]
    .concat();
    let gw = TestGateway::start(&config(&server.url(), "", &points)).await;
    wait_point(&gw, "s/comm", "comm_fault", |p| p["quality"] == "comm_fault").await;
    wait_point(&gw, "s/sensor", "decode_error", |p| p["quality"] == "decode_error").await;
    let p = wait_point(&gw, "s/doubt", "uncertain", |p| p["quality"] == "uncertain").await;
    assert_eq!(p["value"].as_f64(), Some(42.0));
    // A node the server does not have: refused item, a fault on the point, counted.
    wait_point(&gw, "s/missing", "decode_error", |p| p["quality"] == "decode_error").await;
    wait_point(&gw, "s/by-path", "good", |p| p["quality"] == "good").await;
    let refused = opcua_errors(&gw, "monitored_item");
    assert_eq!(refused, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_deadband_filters_small_changes() {
    let server = OpcuaServer::start(&[]);
    let points = [
        point("d/level", "ns=2;s=Plant.Level", "deadband = { absolute = 1.0 }"),
        point("d/all", "ns=2;s=Plant.Level", "sampling_interval = \"50ms\""),
    ]
    .concat();
    // Two items on one node is refused by validation, so the second is by browse path.
    let points = points.replace(
        "point = \"d/all\"\nnode = \"ns=2;s=Plant.Level\"",
        "point = \"d/all\"\nbrowse_path = \"2:Plant/2:Level\"",
    );
    let gw = TestGateway::start(&config(&server.url(), "", &points)).await;
    wait_point(&gw, "d/level", "first value", |p| p["value"].as_f64() == Some(10.0)).await;
    wait_point(&gw, "d/all", "first value", |p| p["value"].as_f64() == Some(10.0)).await;
    server.control("level-go", true);
    // The unfiltered item sees the whole sequence and ends at 15.
    wait_point(&gw, "d/all", "last level", |p| p["value"].as_f64() == Some(15.0)).await;
    wait_point(&gw, "d/level", "last level", |p| p["value"].as_f64() == Some(15.0)).await;
    let all = stored_good(&gw, "d/all", 15.0).await;
    assert_eq!(all, vec![10.0, 10.2, 10.4, 12.0, 12.3, 11.5, 15.0]);
    // Changes under 1.0 from the last reported value are not reported.
    let filtered = stored_good(&gw, "d/level", 15.0).await;
    assert_eq!(filtered, vec![10.0, 12.0, 15.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_loses_and_duplicates_nothing() {
    let mut server = OpcuaServer::start(&[]);
    let points = point("r/counter", "ns=2;s=Plant.Counter", "");
    let gw = TestGateway::start(&config(&server.url(), "", &points)).await;
    wait_point(&gw, "r/counter", "counting", |p| p["value"].as_f64() > Some(5.0)).await;
    // Hold the counter, so the last value is known to have been delivered before the restart.
    server.control("pause", true);
    let counter_file = server.state.path().join("counter");
    let held = wait_for("the counter to hold", WAIT, || async {
        let text = std::fs::read_to_string(&counter_file).ok()?;
        let v: f64 = text.split_whitespace().next()?.parse().ok()?;
        let p = gw.point("r/counter").await;
        (p["value"].as_f64() == Some(v)).then_some(v)
    })
    .await;
    let held_ts = gw.point("r/counter").await["ts_ms"].as_i64();
    server.restart();
    // The restarted server serves the held value with its original source time: once the
    // session is back, the point is good again with that very sample, not a new one.
    wait_for("a second session", WAIT, || async {
        let d = gw.device("opcua:dcs").await;
        (d["opcua"]["sessions"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    let p = wait_point(&gw, "r/counter", "good again", |p| p["quality"] == "good").await;
    assert_eq!((p["value"].as_f64(), p["ts_ms"].as_i64()), (Some(held), held_ts));
    server.control("pause", false);
    wait_point(&gw, "r/counter", "counting again", |p| {
        p["quality"] == "good" && p["value"].as_f64() > Some(held + 5.0)
    })
    .await;
    let dev = gw.device("opcua:dcs").await;
    assert!(dev["opcua"]["sessions"].as_u64() >= Some(2), "{dev}");
    assert!(dev["opcua"]["connection_losses"].as_u64() >= Some(1), "{dev}");
    let last = gw.point("r/counter").await["value"].as_f64().unwrap();
    let good = stored_good(&gw, "r/counter", last).await;
    let rows = history(&gw, "r/counter").await;
    // Every value from the first seen to the last, once each, in order: none lost, none twice.
    let first = good[0];
    assert!(good.contains(&held));
    let expected: Vec<f64> = (0..good.len()).map(|i| first + i as f64).collect();
    assert_eq!(good, expected);
    assert!(rows.iter().any(|r| r.2 == "comm_fault"), "the outage is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_and_encrypted_endpoint_works_with_certificates_trusted_both_ways() {
    // The gateway's application certificate, made before the first run and given to the
    // server's trust list, as a site administrator would.
    let dir = tempfile::tempdir().unwrap();
    let cert = hazard_gateway::sources::opcua::client::own_certificate("opcua-gw", dir.path()).unwrap();
    let first = std::fs::read(&cert).unwrap();
    let server_trust = tempfile::tempdir().unwrap();
    std::fs::copy(&cert, server_trust.path().join("gateway.der")).unwrap();
    let server = OpcuaServer::start(&["--secure", server_trust.path().to_str().unwrap()]);
    let secure = "security_policy = \"basic256sha256\"\nsecurity_mode = \"sign_and_encrypt\"";

    // Without trusting the server's certificate the gateway refuses it and says where it is.
    let untrusted = TestGateway::start(&config(
        &server.url(),
        secure,
        &point("sec/counter", "ns=2;s=Plant.Counter", ""),
    ))
    .await;
    let dev = wait_for("the untrusted server refused", WAIT, || async {
        let d = untrusted.device("opcua:dcs").await;
        d["opcua"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("rejected"))
            .then_some(d)
    })
    .await;
    assert_eq!(dev["status"], "offline", "{dev}");
    assert_eq!(untrusted.point("sec/counter").await["quality"], "comm_fault");
    let mut untrusted = untrusted;
    untrusted.shutdown().await;

    let trusted = format!("{secure}\ntrust_server_cert = \"{}\"", server.certificate().display());
    let cfg = config(
        &server.url(),
        &trusted,
        &point("sec/counter", "ns=2;s=Plant.Counter", ""),
    );
    let gw = TestGateway::start_with(&cfg, dir, hazard_gateway::clock::system()).await;
    wait_point(&gw, "sec/counter", "good over SignAndEncrypt", |p| {
        p["quality"] == "good"
    })
    .await;
    let dev = gw.device("opcua:dcs").await;
    assert_eq!(dev["opcua"]["security"], "basic256sha256/sign_and_encrypt");
    // The certificate of the first run is kept, not made again.
    assert_eq!(std::fs::read(&cert).unwrap(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opcua_browse_lists_the_test_nodes() {
    let server = OpcuaServer::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let url = server.url();
        let data = data.path().to_path_buf();
        move || {
            std::process::Command::new(support::binary())
                .args([
                    "opcua",
                    "browse",
                    &url,
                    "--node",
                    "ns=2;s=Plant",
                    "--depth",
                    "1",
                    "--data-dir",
                ])
                .arg(&data)
                .output()
                .expect("binary runs")
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in\n{text}"))
    };
    assert_eq!(
        line("ns=2;s=Plant.UInt16").split('\t').collect::<Vec<_>>(),
        ["ns=2;s=Plant.UInt16", "2:UInt16", "Variable", "UInt16", "65535"]
    );
    assert!(line("ns=2;s=Plant.Counter").contains("\tDouble\t"));
    assert!(line("ns=2;s=Plant.BadComm").ends_with("(BadCommunicationError)"));
    assert_eq!(text.lines().count(), 1 + 18, "header and the 18 test nodes:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_with_2500_items_delivers_every_value() {
    // asyncua ignores the 1,000 notifications per publish the gateway asks for and sends all
    // 2,500 changes in one response; the client used to refuse it (arrays over 1,000) and drop
    // the connection at every publish, so no value ever arrived.
    const ITEMS: usize = 2500;
    let server = OpcuaServer::start(&["--load", "2500"]);
    let points: String = (0..ITEMS)
        .map(|i| point(&format!("load/{i}"), &format!("ns=2;s=Load.{i}"), "queue_size = 2"))
        .collect();
    let gw = TestGateway::start(&config(&server.url(), "", &points)).await;
    // The server writes 0.0 first and then values above 0 once a second: a value above 0 on
    // every point means each item delivered past its first publish.
    wait_for("every item with a changed value", Duration::from_secs(120), || async {
        let all = gw.get_json("/api/v1/points").await;
        let changed = all
            .as_array()?
            .iter()
            .filter(|p| p["quality"] == "good" && p["value"].as_f64() > Some(0.0))
            .count();
        (changed == ITEMS).then_some(())
    })
    .await;
    let dev = gw.device("opcua:dcs").await;
    assert_eq!(dev["opcua"]["items_ok"], ITEMS, "{dev}");
    assert_eq!(dev["opcua"]["connection_losses"], 0, "{dev}");
    assert_eq!(dev["opcua"]["sessions"], 1, "{dev}");
    let dropped = opcua_dropped(&gw, "queue_full");
    assert_eq!(dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_deadband_of_the_eu_range_filters_small_changes() {
    let server = OpcuaServer::start(&[]);
    let points = [
        // Plant.Tank has EURange [0, 200]: 2 % is 4.0.
        point("p/tank", "ns=2;s=Plant.Tank", "deadband = { percent = 2.0 }"),
        "[[opcua.points]]\nendpoint = \"dcs\"\npoint = \"p/all\"\nbrowse_path = \"2:Plant/2:Tank\"\n".into(),
        // Plant.Flow has no EURange: the server refuses a percent deadband on it.
        point("p/flow", "ns=2;s=Plant.Flow", "deadband = { percent = 2.0 }"),
    ]
    .concat();
    let gw = TestGateway::start(&config(&server.url(), "", &points)).await;
    wait_point(&gw, "p/tank", "first value", |p| p["value"].as_f64() == Some(50.0)).await;
    wait_point(&gw, "p/all", "first value", |p| p["value"].as_f64() == Some(50.0)).await;
    let flow = wait_point(&gw, "p/flow", "refused", |p| p["quality"] == "decode_error").await;
    assert_eq!(flow["value"], Value::Null);
    server.control("tank-go", true);
    wait_point(&gw, "p/all", "last value", |p| p["value"].as_f64() == Some(70.0)).await;
    wait_point(&gw, "p/tank", "last value", |p| p["value"].as_f64() == Some(70.0)).await;
    let all = stored_good(&gw, "p/all", 70.0).await;
    assert_eq!(all, vec![50.0, 52.0, 60.0, 63.0, 70.0]);
    // 52 (1 % of the range) and 63 (1.5 %) are under the deadband; 60 and 70 are over it. An
    // absolute deadband of 2.0 would have let 63 through.
    let filtered = stored_good(&gw, "p/tank", 70.0).await;
    assert_eq!(filtered, vec![50.0, 60.0, 70.0]);
    let refused = opcua_errors(&gw, "monitored_item");
    assert_eq!(refused, 1);
    assert_eq!(gw.device("opcua:dcs").await["opcua"]["items_ok"], 2);
}

/// A data dir holding the gateway's application certificate (made now, as on a first run),
/// copied into `server_trust` as an administrator would.
fn trusted_gateway_dir(server_trust: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cert = hazard_gateway::sources::opcua::client::own_certificate("opcua-gw", dir.path()).unwrap();
    let name = format!("gateway-{}.der", server_trust.read_dir().unwrap().count());
    std::fs::copy(&cert, server_trust.join(name)).unwrap();
    dir
}

/// Endpoint keys for `policy`/`mode`, trusting the certificate of `server`.
fn secured(server: &OpcuaServer, policy: &str, mode: &str) -> String {
    format!(
        "security_policy = \"{policy}\"\nsecurity_mode = \"{mode}\"\ntrust_server_cert = \"{}\"",
        server.certificate().display()
    )
}

/// Waits until endpoint `dcs` reports an error containing `what`; returns the device.
async fn refused(gw: &TestGateway, what: &str) -> Value {
    wait_for(&format!("an error with `{what}`"), WAIT, || async {
        let d = gw.device("opcua:dcs").await;
        d["opcua"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(what))
            .then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes128_sha256_rsa_oaep_and_basic256sha256_sign_endpoints_deliver() {
    let server_trust = tempfile::tempdir().unwrap();
    let dir = trusted_gateway_dir(server_trust.path());
    let server = OpcuaServer::start(&["--secure", server_trust.path().to_str().unwrap()]);
    let mut cfg = String::from(
        "[gateway]\nid = \"opcua-gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n[history]\ndeadband_percent = 0.0\n",
    );
    let endpoints = [
        ("a-sign", "aes128_sha256_rsa_oaep", "sign"),
        ("a-enc", "aes128_sha256_rsa_oaep", "sign_and_encrypt"),
        ("b-sign", "basic256sha256", "sign"),
    ];
    for (name, policy, mode) in endpoints {
        cfg.push_str(&format!(
            "[[opcua.endpoints]]\nname = \"{name}\"\nurl = \"{}\"\npublishing_interval = \"100ms\"\n{}\n",
            server.url(),
            secured(&server, policy, mode)
        ));
        cfg.push_str(&format!(
            "[[opcua.points]]\nendpoint = \"{name}\"\npoint = \"{name}/counter\"\nnode = \"ns=2;s=Plant.Counter\"\n"
        ));
    }
    let gw = TestGateway::start_with(&cfg, dir, hazard_gateway::clock::system()).await;
    for (name, policy, mode) in endpoints {
        let id = format!("{name}/counter");
        let first = wait_point(&gw, &id, "good", |p| p["quality"] == "good").await;
        let first = first["value"].as_f64().unwrap();
        // Still counting: the subscription delivers, not just the first value.
        wait_point(&gw, &id, "counting", |p| {
            p["quality"] == "good" && p["value"].as_f64() > Some(first)
        })
        .await;
        let dev = gw.device(&format!("opcua:{name}")).await;
        assert_eq!(dev["opcua"]["security"], format!("{policy}/{mode}"), "{dev}");
        assert_eq!(dev["status"], "online", "{dev}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_name_and_password_log_in_and_a_wrong_password_is_refused_clearly() {
    let server_trust = tempfile::tempdir().unwrap();
    let (wrong_dir, right_dir) = (
        trusted_gateway_dir(server_trust.path()),
        trusted_gateway_dir(server_trust.path()),
    );
    let server = OpcuaServer::start(&[
        "--secure",
        server_trust.path().to_str().unwrap(),
        "--user",
        "operator:s3cret pass",
    ]);
    let secrets = tempfile::tempdir().unwrap();
    let login = |password: &str| {
        let file = secrets.path().join(format!("{}.txt", password.len()));
        std::fs::write(&file, format!("{password}\n")).unwrap();
        format!("username = \"operator\"\npassword_file = \"{}\"", file.display())
    };
    let counter = point("u/counter", "ns=2;s=Plant.Counter", "");

    let enc = secured(&server, "basic256sha256", "sign_and_encrypt");
    let cfg = config(&server.url(), &format!("{enc}\n{}", login("guess")), &counter);
    let mut wrong = TestGateway::start_with(&cfg, wrong_dir, hazard_gateway::clock::system()).await;
    let dev = refused(&wrong, "refused the user").await;
    assert_eq!(dev["status"], "offline", "{dev}");
    assert!(
        dev["opcua"]["last_error"]
            .as_str()
            .unwrap()
            .contains("BadUserAccessDenied"),
        "{dev}"
    );
    assert_eq!(wrong.point("u/counter").await["quality"], "comm_fault");
    let m = wrong.metrics().await;
    assert!(
        m.contains("hazard_opcua_errors_total{endpoint=\"dcs\",kind=\"auth\"}"),
        "{m}"
    );
    wrong.shutdown().await;

    // Over Sign the password is encrypted for the server (RSA-OAEP-SHA256 with this policy);
    // over SignAndEncrypt the channel carries it.
    let sign = secured(&server, "aes128_sha256_rsa_oaep", "sign");
    let cfg = config(&server.url(), &format!("{sign}\n{}", login("s3cret pass")), &counter);
    let gw = TestGateway::start_with(&cfg, right_dir, hazard_gateway::clock::system()).await;
    wait_point(&gw, "u/counter", "good with the right password", |p| {
        p["quality"] == "good"
    })
    .await;
    assert_eq!(gw.device("opcua:dcs").await["opcua"]["last_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x509_user_certificate_logs_in_and_an_unknown_one_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (user_cert, user_key) = support::opcua_user_cert(certs.path(), "operator");
    let (other_cert, other_key) = support::opcua_user_cert(certs.path(), "intruder");
    let server_trust = tempfile::tempdir().unwrap();
    let (wrong_dir, right_dir) = (
        trusted_gateway_dir(server_trust.path()),
        trusted_gateway_dir(server_trust.path()),
    );
    let server = OpcuaServer::start(&[
        "--secure",
        server_trust.path().to_str().unwrap(),
        "--user-cert",
        user_cert.to_str().unwrap(),
    ]);
    let enc = secured(&server, "basic256sha256", "sign_and_encrypt");
    let identity = |cert: &Path, key: &Path| {
        format!(
            "{enc}\nuser_certificate = \"{}\"\nuser_key = \"{}\"",
            cert.display(),
            key.display()
        )
    };
    let counter = point("x/counter", "ns=2;s=Plant.Counter", "");

    let cfg = config(&server.url(), &identity(&other_cert, &other_key), &counter);
    let mut wrong = TestGateway::start_with(&cfg, wrong_dir, hazard_gateway::clock::system()).await;
    let dev = refused(&wrong, "refused the user").await;
    assert_eq!(dev["status"], "offline", "{dev}");
    assert_eq!(wrong.point("x/counter").await["quality"], "comm_fault");
    wrong.shutdown().await;

    let cfg = config(&server.url(), &identity(&user_cert, &user_key), &counter);
    let gw = TestGateway::start_with(&cfg, right_dir, hazard_gateway::clock::system()).await;
    wait_point(&gw, "x/counter", "good with the user certificate", |p| {
        p["quality"] == "good"
    })
    .await;
    assert_eq!(gw.device("opcua:dcs").await["opcua"]["last_error"], Value::Null);
}

#[test]
fn check_config_names_file_line_and_field_of_opcua_mistakes() {
    let text = r#"[gateway]
id = "gw"

[[opcua.endpoints]]
name = "dcs"
url = "tcp://10.0.0.5:4840"
security_mode = "sign"
username = "op"

[[opcua.points]]
endpoint = "dsc"
point = "a"
node = "ns=2;x=oops"

[[opcua.points]]
endpoint = "dcs"
point = "b"
browse_path = "2:Plant/2:LT101"
deadband = { percent = 150.0 }
"#;
    let path = std::path::Path::new("site.toml");
    let errors = hazard_gateway::config::GatewayConfig::parse(path, text)
        .unwrap_err()
        .to_string();
    for want in [
        "site.toml:6:7: opcua.endpoints[0].url: `tcp://10.0.0.5:4840` is not an endpoint URL",
        "opcua.endpoints[0].security_mode: security_mode `sign` needs a security_policy",
        "site.toml:8:12: opcua.endpoints[0].password_file: a username needs password_file or password_env",
        "site.toml:11:12: opcua.points[0].endpoint: no endpoint `dsc` under [[opcua.endpoints]]",
        "site.toml:13:8: opcua.points[0].node: `ns=2;x=oops` is not a node id",
        "site.toml:19:12: opcua.points[1].deadband: a percent deadband is 0..=100",
    ] {
        assert!(errors.contains(want), "missing `{want}` in:\n{errors}");
    }
}
