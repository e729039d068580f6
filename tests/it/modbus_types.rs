//! Every data type and byte/word order, over every transport, decodes to the value the peer
//! holds. The same table runs against pymodbus (an independent implementation that encodes
//! the values with Python's `struct`) over Modbus TCP, RTU over TCP and RTU on a socat
//! pseudo-terminal pair, and against our simulator over the same three transports.

use crate::support;

use std::path::Path;

use hazard_gateway::config::ProfileSet;
use hazard_gateway::sources::sim::{SimTransport, Simulator};
use serde_json::json;
use support::{PtyPair, PyModbusPeer, TestGateway, WAIT, wait_for};

/// One point of the test map: profile key, table, address, type, order, value the device
/// holds, the profile lines beyond the basics, and the reading the gateway must produce.
struct Case {
    key: String,
    table: &'static str,
    address: u16,
    data_type: &'static str,
    order: &'static str,
    held: serde_json::Value,
    extra: String,
    expect: Option<f64>,
    quality: &'static str,
}

fn case(
    key: &str,
    table: &'static str,
    address: u16,
    data_type: &'static str,
    held: serde_json::Value,
    expect: f64,
) -> Case {
    Case {
        key: key.to_string(),
        table,
        address,
        data_type,
        order: "ABCD",
        held,
        extra: String::new(),
        expect: Some(expect),
        quality: "good",
    }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        Case {
            extra: "bit = 3\n".into(),
            ..case("bit3", "hr", 0, "bit", json!(1), 1.0)
        },
        Case {
            extra: "bit = 0\n".into(),
            ..case("bit0", "hr", 0, "bit", json!(0), 0.0)
        },
        case("u16", "hr", 1, "u16", json!(65000), 65000.0),
        case("i16", "hr", 2, "i16", json!(-1234), -1234.0),
    ];
    let mut addr = 3;
    for order in ["ABCD", "CDAB", "BADC", "DCBA"] {
        let typed: [(&'static str, u16, serde_json::Value, f64); 6] = [
            ("u32", 2, json!(3_000_000_000u64), 3_000_000_000.0),
            ("i32", 2, json!(-123_456_789), -123_456_789.0),
            ("u64", 4, json!(9_007_199_254_740_987u64), 9_007_199_254_740_987.0),
            ("i64", 4, json!(-9_007_199_254_740_000i64), -9_007_199_254_740_000.0),
            ("f32", 2, json!(12.5), 12.5),
            ("f64", 4, json!(-1234.5678), -1234.5678),
        ];
        for (t, words, held, expect) in typed {
            v.push(Case {
                order,
                ..case(&format!("{t}_{}", order.to_lowercase()), "hr", addr, t, held, expect)
            });
            addr += words;
        }
    }
    v.push(case("bcd16", "hr", addr, "bcd16", json!(1234), 1234.0));
    v.push(case("bcd32", "hr", addr + 1, "bcd32", json!(12_345_678), 12_345_678.0));
    v.push(Case {
        extra: "length = 4\n".into(),
        ..case("ascii", "hr", addr + 3, "ascii", json!(-12.75), -12.75)
    });
    v.extend([
        Case {
            extra: "raw_range = [4000, 20000]\nrange = [0.0, 100.0]\n".into(),
            ..case("ma", "ir", 0, "u16", json!(8000), 25.0)
        },
        Case {
            extra: "scale = 0.1\noffset = -40.0\n".into(),
            ..case("scaled", "ir", 1, "i16", json!(655), 25.5)
        },
        Case {
            extra: "range = [0.0, 100.0]\n".into(),
            quality: "out_of_range",
            ..case("over", "ir", 2, "u16", json!(150), 150.0)
        },
        Case {
            expect: None,
            quality: "decode_error",
            ..case("nan", "ir", 3, "f32", json!("nan"), 0.0)
        },
        Case {
            expect: None,
            quality: "decode_error",
            ..case("inf", "ir", 5, "f64", json!("inf"), 0.0)
        },
        case("coil0", "co", 0, "bool", json!(1), 1.0),
        case("coil1", "co", 1, "bool", json!(0), 0.0),
        case("coil9", "co", 9, "bool", json!(1), 1.0),
        case("di2", "di", 2, "bool", json!(1), 1.0),
    ]);
    v
}

fn profile_text(cases: &[Case]) -> String {
    let mut s = String::from("[profile]\ndescription = \"every type and order\"\n");
    for c in cases {
        let function = match c.table {
            "co" => "coil",
            "di" => "discrete",
            "hr" => "holding",
            _ => "input",
        };
        s.push_str(&format!(
            "\n[points.{}]\nfunction = \"{function}\"\naddress = {}\ntype = \"{}\"\nword_order = \"{}\"\nunit = \"1\"\nkind = \"state\"\n{}",
            c.key, c.address, c.data_type, c.order, c.extra
        ));
    }
    s
}

fn peer_points(cases: &[Case]) -> serde_json::Value {
    let points: Vec<_> = cases
        .iter()
        .map(|c| {
            let mut p =
                json!({"table": c.table, "address": c.address, "type": c.data_type, "order": c.order, "value": c.held});
            if c.data_type == "bit" {
                p["bit"] = if c.key == "bit3" { json!(3) } else { json!(0) };
            }
            if c.data_type == "ascii" {
                p["length"] = json!(4);
            }
            p
        })
        .collect();
    json!({ "7": points })
}

/// Writes the test profile and starts a gateway polling unit 7 over `transport`.
async fn gateway(transport: &str, profiles: &Path) -> TestGateway {
    let cases = cases();
    std::fs::write(profiles.join("typed.toml"), profile_text(&cases)).unwrap();
    let config = format!(
        "[gateway]\nid = \"types\"\nprofile_dirs = [\"{}\"]\n[api]\nlisten = \"127.0.0.1:0\"\n[[devices]]\nname = \"d\"\nprofile = \"typed\"\ntransport = {transport}\nunit_id = 7\ninterval = \"200ms\"\n",
        profiles.display()
    );
    TestGateway::start(&config).await
}

async fn assert_every_case(gw: &TestGateway) {
    let cases = cases();
    wait_for("every point read", WAIT, || async {
        let points = gw.get_json("/api/v1/points").await;
        points
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["quality"] != "no_data" && p["quality"] != "comm_fault")
            .then_some(())
    })
    .await;
    for c in &cases {
        let p = gw.point(&format!("d/{}", c.key)).await;
        assert_eq!(p["quality"], c.quality, "{}: {p}", c.key);
        if let Some(expect) = c.expect {
            let v = p["value"].as_f64().unwrap_or(f64::NAN);
            assert!(
                (v - expect).abs() <= expect.abs() * 1e-12,
                "{}: got {v}, expected {expect}",
                c.key
            );
        }
    }
    let health = gw.device("d").await;
    assert_eq!(health["status"], "online", "{health}");
}

async fn against_pymodbus(kind: &str) {
    let profiles = tempfile::tempdir().unwrap();
    let pty = (kind == "rtu").then(PtyPair::start);
    let mut spec = json!({"transport": kind, "devices": peer_points(&cases()), "baud": 19200});
    if let Some(p) = &pty {
        spec["serial"] = json!(p.b.display().to_string());
    }
    let peer = PyModbusPeer::start_spec(spec);
    let transport = match &pty {
        Some(p) => format!("{{ rtu = {{ port = \"{}\", baud = 19200 }} }}", p.a.display()),
        None => format!("{{ {kind} = \"{}\" }}", peer.addr),
    };
    let mut gw = gateway(&transport, profiles.path()).await;
    assert_every_case(&gw).await;
    gw.shutdown().await;
}

async fn against_simulator(kind: &str) {
    let profiles = tempfile::tempdir().unwrap();
    let mut gw_profiles = ProfileSet::default();
    std::fs::write(profiles.path().join("typed.toml"), profile_text(&cases())).unwrap();
    gw_profiles.load_dir(profiles.path()).unwrap();
    let profile = gw_profiles.get("typed").cloned().unwrap();
    let pty = (kind == "rtu").then(PtyPair::start);
    let any = "127.0.0.1:0".parse().unwrap();
    let sim_transport = match (&pty, kind) {
        (Some(p), _) => SimTransport::Rtu(p.b.clone(), 19200),
        (None, "tcp") => SimTransport::Tcp(any),
        _ => SimTransport::RtuOverTcp(any),
    };
    let sim = Simulator::serve(profile, sim_transport, Some(7), None)
        .await
        .expect("simulator");
    // The simulator is pinned to engineering values; it encodes them with our encoder.
    for c in cases() {
        let v = match (&c.held, c.expect) {
            (serde_json::Value::String(s), _) => s.parse().unwrap(),
            (_, Some(v)) => v,
            (other, None) => other.as_f64().unwrap(),
        };
        assert!(sim.pin(&c.key, v));
    }
    let transport = match &pty {
        Some(p) => format!("{{ rtu = {{ port = \"{}\", baud = 19200 }} }}", p.a.display()),
        None => format!("{{ {kind} = \"{}\" }}", sim.local_addr()),
    };
    let mut gw = gateway(&transport, profiles.path()).await;
    assert_every_case(&gw).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_order_decodes_from_pymodbus_over_tcp() {
    against_pymodbus("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_order_decodes_from_pymodbus_over_rtu_over_tcp() {
    against_pymodbus("rtu_over_tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_order_decodes_from_pymodbus_over_rtu_on_a_pty_pair() {
    against_pymodbus("rtu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_order_decodes_from_the_simulator_over_tcp() {
    against_simulator("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_order_decodes_from_the_simulator_over_rtu_over_tcp() {
    against_simulator("rtu_over_tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_order_decodes_from_the_simulator_over_rtu_on_a_pty_pair() {
    against_simulator("rtu").await;
}
