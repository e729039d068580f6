//! Northbound readings as Sparkplug B, checked by an independent host: Eclipse Tahu's payload
//! encoding (the npm `sparkplug-payload` package, `tests/sparkplug/subscriber.mjs`) decodes
//! every message the gateway publishes to a real Mosquitto. Field devices are pymodbus peers,
//! one of which goes away and comes back.

use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use support::{GatewayProcess, Mosquitto, TestGateway, WAIT, wait_for};

/// Holding registers of tank-ltp: level f32 12.5, temperature i16 -123 (x0.1), pressure u32
/// 8123 (x0.0001 MPa).
const HOLDING: [u16; 5] = [0x4148, 0x0000, 0xFF85, 0x0000, 0x1FBB];
/// Input registers of ai4-gas-lel in µA: 8 mA, 4 mA, 20 mA, and 3 mA (a broken loop).
const INPUT: [u16; 4] = [8000, 4000, 20000, 3000];

/// Every point, its exact value and its Sparkplug `Quality` (192 good, 64 out of range).
const EXPECTED: [(&str, f64, i64); 7] = [
    ("tank/level", 12.5, 192),
    ("tank/temperature", -12.3, 192),
    ("tank/pressure", 0.8123, 192),
    ("gas/ch1", 25.0, 192),
    ("gas/ch2", 0.0, 192),
    ("gas/ch3", 100.0, 192),
    ("gas/ch4", -6.25, 64),
];

const NODE: &str = "spBv1.0/park/{t}/sp-gw";

fn topic(kind: &str, device: Option<&str>) -> String {
    let node = NODE.replace("{t}", kind);
    device.map_or(node.clone(), |d| format!("{node}/{d}"))
}

/// A pymodbus peer on a port we choose, so it can come back on the same one.
struct Peer(Child);

impl Peer {
    fn start(port: u16) -> Peer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/modbus_peer.py");
        let join = |w: &[u16]| w.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(join(&HOLDING))
            .arg(join(&INPUT))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (`.ci/run` installs pymodbus)");
        assert!(
            support::wait_tcp(&mut child, std::net::SocketAddr::from(([127, 0, 0, 1], port))),
            "pymodbus peer did not start on {port}"
        );
        Peer(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The independent host: every message decoded by Tahu's codec, in arrival order.
struct Host {
    child: Child,
    lines: std::sync::mpsc::Receiver<Value>,
    /// Everything received so far: (topic, payload).
    seen: Vec<(String, Value)>,
}

impl Host {
    /// Subscribes to `spBv1.0/#` on `port` with a persistent session named `id` (so what
    /// arrives while the broker is restarted is kept for it).
    fn start(port: u16, id: &str) -> Host {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sparkplug");
        assert!(
            dir.join("node_modules/sparkplug-payload").is_dir(),
            "sparkplug-payload is not installed in tests/sparkplug (`.ci/run` runs npm ci there)"
        );
        let mut child = Command::new("node")
            .arg("subscriber.mjs")
            .current_dir(&dir)
            .env("BROKER_URL", format!("mqtt://127.0.0.1:{port}"))
            .env("HOST_ID", id)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (`.ci/run` installs it)");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let v = if line == "READY" {
                    json!("READY")
                } else {
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("host line {line}: {e}"))
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let host = Host {
            child,
            lines,
            seen: Vec::new(),
        };
        let ready = host.lines.recv_timeout(WAIT).expect("the Sparkplug host subscribes");
        assert_eq!(ready, "READY");
        host
    }

    /// Waits for the next message on `topic` (from the current position on); everything
    /// received meanwhile is kept in `seen`.
    fn next(&mut self, topic: &str) -> Value {
        self.until(topic, |_| true)
    }

    /// Waits for the next message on `topic` whose payload satisfies `pred`.
    fn until(&mut self, topic: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {topic} within {WAIT:?}; seen: {:#?}", self.topics()));
            if v == "READY" {
                // Subscribed again after the broker came back.
                continue;
            }
            if v.get("published").is_some() {
                assert_eq!(v["error"], Value::Null, "{v}");
                continue;
            }
            let t = v["topic"].as_str().unwrap_or_default().to_string();
            assert!(v.get("error").is_none(), "the host cannot decode {t}: {v}");
            let p = v["payload"].clone();
            self.seen.push((t.clone(), p.clone()));
            if t == topic && pred(&p) {
                return p;
            }
        }
    }

    fn topics(&self) -> Vec<String> {
        let from = self.seen.len().saturating_sub(30);
        self.seen[from..].iter().map(|(t, _)| t.clone()).collect()
    }

    /// Publishes a payload encoded by Tahu's codec.
    fn publish(&mut self, topic: &str, payload: Value) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{}", json!({"topic": topic, "payload": payload})).expect("host takes a command");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn metric<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no metric {name} in {p}"))
}

/// Checks a DBIRTH: every point of `device` with name, alias, datatype, unit, quality and (if
/// `values`) its exact value; returns alias → point.
fn check_dbirth(p: &Value, device: &str, values: bool) -> BTreeMap<i64, &'static str> {
    let mut aliases = BTreeMap::new();
    let points: Vec<_> = EXPECTED.iter().filter(|(n, _, _)| n.starts_with(device)).collect();
    assert_eq!(p["metrics"].as_array().map(Vec::len), Some(points.len()), "{p}");
    for (name, value, quality) in points {
        let m = metric(p, name);
        assert_eq!(m["type"], "Double", "{m}");
        let alias = m["alias"].as_i64().unwrap_or_else(|| panic!("no alias: {m}"));
        assert!(aliases.insert(alias, *name).is_none(), "alias {alias} twice");
        assert!(m["properties"]["engUnit"]["value"].is_string(), "{m}");
        if values {
            assert_eq!(m["value"].as_f64(), Some(*value), "{m}");
            assert_eq!(m["properties"]["Quality"]["value"].as_i64(), Some(*quality), "{m}");
            assert_eq!(m["properties"]["Quality"]["type"], "Int32", "{m}");
        }
    }
    aliases
}

/// Checks a DDATA: metrics by alias only, each with the exact value and quality of its point;
/// returns how many were historical.
fn check_ddata(p: &Value, aliases: &BTreeMap<i64, &'static str>) -> usize {
    let metrics = p["metrics"].as_array().unwrap_or_else(|| panic!("{p}"));
    assert!(!metrics.is_empty(), "{p}");
    let mut historical = 0;
    for m in metrics {
        assert!(m.get("name").is_none(), "DDATA carries aliases only: {m}");
        let alias = m["alias"].as_i64().unwrap_or_else(|| panic!("no alias: {m}"));
        let name = aliases
            .get(&alias)
            .unwrap_or_else(|| panic!("alias {alias} not born: {m}"));
        let (_, value, quality) = EXPECTED.iter().find(|(n, _, _)| n == name).unwrap();
        assert_eq!(m["value"].as_f64(), Some(*value), "{name}: {m}");
        assert_eq!(
            m["properties"]["Quality"]["value"].as_i64(),
            Some(*quality),
            "{name}: {m}"
        );
        assert!(m["timestamp"].as_i64().is_some(), "{m}");
        if m["isHistorical"] == true {
            historical += 1;
        }
    }
    historical
}

/// Every message of the node from `from` on has the seq after the one before it (mod 256),
/// counting from 0 at each NBIRTH; NDEATH has none.
fn check_seq(seen: &[(String, Value)], from: usize) {
    let mut last: Option<i64> = None;
    for (t, p) in &seen[from..] {
        if t.contains("/NCMD/") {
            // The host's own command, not the node's.
            continue;
        }
        if t.contains("/NDEATH/") {
            assert!(p.get("seq").is_none(), "{t}: {p}");
            last = None;
            continue;
        }
        let seq = p["seq"].as_i64().unwrap_or_else(|| panic!("{t} without seq: {p}"));
        if t.contains("/NBIRTH/") {
            assert_eq!(seq, 0, "{t}");
        } else if let Some(l) = last {
            assert_eq!(seq, (l + 1) % 256, "{t} after seq {l}");
        }
        last = Some(seq);
    }
}

fn config(broker: &str, tank: u16, gas: u16, api: &str, data_dir: &str) -> String {
    format!(
        r#"
[gateway]
id = "sp-gw"
{data_dir}
[api]
listen = "{api}"
[[devices]]
name = "tank"
profile = "tank-ltp"
transport = {{ tcp = "127.0.0.1:{tank}" }}
interval = "200ms"
[[devices]]
name = "gas"
profile = "ai4-gas-lel"
transport = {{ tcp = "127.0.0.1:{gas}" }}
interval = "200ms"
timeout = "300ms"

[[mqtt_north]]
name = "park"
broker = "{broker}"
keep_alive = "5s"
readings = {{ points = "*", encoding = "sparkplug_b", group_id = "park", in_flight = 32 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn births_data_by_alias_rebirth_device_loss_and_historical_replay_decode_with_tahu() {
    let mut broker = Mosquitto::start_deep_queue();
    let mut host = tokio::task::block_in_place(|| Host::start(broker.port, "sparkplug-host-1"));
    let (tank_port, gas_port) = (support::free_port(), support::free_port());
    let _tank = Peer::start(tank_port);
    let mut gas = Some(Peer::start(gas_port));
    let mut gw = TestGateway::start(&config(&broker.addr(), tank_port, gas_port, "127.0.0.1:0", "")).await;

    let all_aliases = tokio::task::block_in_place(|| {
        // The node birth: bdSeq and the rebirth control.
        let nbirth = host.next(&topic("NBIRTH", None));
        let start = host.seen.len() - 1;
        assert_eq!(nbirth["seq"], 0);
        assert_eq!(metric(&nbirth, "bdSeq")["type"], "UInt64");
        let bd_seq = metric(&nbirth, "bdSeq")["value"].as_i64().expect("bdSeq value");
        let rebirth = metric(&nbirth, "Node Control/Rebirth");
        assert_eq!(
            (&rebirth["type"], &rebirth["value"]),
            (&json!("Boolean"), &json!(false))
        );

        // A birth per device (values may not be read yet), then data by alias with the exact
        // value and quality of every point.
        let mut aliases = BTreeMap::new();
        for d in ["tank", "gas"] {
            let p = host.next(&topic("DBIRTH", Some(d)));
            aliases.extend(check_dbirth(&p, d, false));
        }
        // Readings polled before the connection came up may go as historical; those after
        // it are current.
        for d in ["tank", "gas"] {
            let p = host.until(&topic("DDATA", Some(d)), |p| {
                p["metrics"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty() && m.iter().all(|m| m.get("isHistorical").is_none()))
            });
            assert_eq!(check_ddata(&p, &aliases), 0);
        }

        // A host asks for a rebirth: NBIRTH (same bdSeq) and every DBIRTH, now with values.
        host.publish(
            &topic("NCMD", None),
            json!({"timestamp": 1, "metrics": [{"name": "Node Control/Rebirth", "type": "Boolean", "value": true}]}),
        );
        let again = host.next(&topic("NBIRTH", None));
        assert_eq!(
            metric(&again, "bdSeq")["value"].as_i64(),
            Some(bd_seq),
            "a rebirth keeps the bdSeq"
        );
        for d in ["tank", "gas"] {
            let p = host.next(&topic("DBIRTH", Some(d)));
            assert_eq!(
                check_dbirth(&p, d, true),
                aliases
                    .iter()
                    .filter(|(_, n)| n.starts_with(d))
                    .map(|(a, n)| (*a, *n))
                    .collect()
            );
        }

        // The gas device goes away: one DDEATH; it comes back: DBIRTH, then data.
        drop(gas.take());
        host.next(&topic("DDEATH", Some("gas")));
        gas = Some(Peer::start(gas_port));
        let p = host.next(&topic("DBIRTH", Some("gas")));
        check_dbirth(&p, "gas", true);
        let p = host.next(&topic("DDATA", Some("gas")));
        check_ddata(&p, &aliases);
        check_seq(&host.seen, start);
        aliases
    });

    // The broker away: readings wait in the outbox; when it is back, a new session (NBIRTH
    // with the next bdSeq, births) and the readings from the outage as historical DDATA.
    let before = support::metric(
        &gw.metrics().await,
        "hazard_mqtt_north_readings_total",
        &["result=\"buffered\""],
    );
    broker.stop();
    wait_for("readings buffered while the broker is away", WAIT, || async {
        let now = support::metric(
            &gw.metrics().await,
            "hazard_mqtt_north_readings_total",
            &["result=\"buffered\""],
        );
        (now >= before + 50.0).then_some(())
    })
    .await;
    broker.resume();
    tokio::task::block_in_place(|| {
        let from = host.seen.len();
        let nbirth = host.next(&topic("NBIRTH", None));
        let at = host.seen.len() - 1;
        let aliases: BTreeMap<i64, &'static str> = ["tank", "gas"]
            .iter()
            .flat_map(|d| {
                let p = host.next(&topic("DBIRTH", Some(d)));
                check_dbirth(&p, d, true)
            })
            .collect();
        assert_eq!(aliases, all_aliases, "the same configuration gives the same aliases");
        // The outage's readings, replayed after the births, historical.
        let p = host.until(&topic("DDATA", Some("tank")), |p| {
            p["metrics"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["isHistorical"] == true))
        });
        assert_eq!(check_ddata(&p, &aliases), p["metrics"].as_array().map_or(0, Vec::len));
        assert!(metric(&nbirth, "bdSeq")["value"].as_i64().is_some());
        check_seq(&host.seen, at);
        // What came before the new NBIRTH belongs to the old session (the broker may have
        // kept some of it for the host): its seq continues that session's.
        check_seq(&host.seen[..at], from.min(at));
        // Ten more polls of the new session, in sequence.
        for _ in 0..10 {
            host.next(&topic("DDATA", Some("tank")));
        }
        check_seq(&host.seen, at);
    });
    // Every DDATA of the device that never went away, current or historical, across three
    // sessions: aliases only, exact values.
    let tank: Vec<&Value> = host
        .seen
        .iter()
        .filter(|(t, _)| *t == topic("DDATA", Some("tank")))
        .map(|(_, p)| p)
        .collect();
    assert!(tank.len() > 10, "{} tank DDATA", tank.len());
    for p in tank {
        check_ddata(p, &all_aliases);
    }
    assert_eq!(
        support::metric(
            &gw.metrics().await,
            "hazard_mqtt_north_readings_total",
            &["result=\"dropped_unknown_point\""]
        ),
        0.0
    );
    gw.shutdown().await;
    tokio::task::block_in_place(|| {
        // A clean stop says so itself.
        host.next(&topic("NDEATH", None));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_dies_by_its_will_with_the_bdseq_of_its_birth_and_the_next_start_counts_on() {
    let broker = Mosquitto::start_deep_queue();
    let mut host = tokio::task::block_in_place(|| Host::start(broker.port, "sparkplug-host-2"));
    let (tank_port, gas_port) = (support::free_port(), support::free_port());
    let _tank = Peer::start(tank_port);
    let _gas = Peer::start(gas_port);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = support::free_port();
    let text = config(
        &broker.addr(),
        tank_port,
        gas_port,
        &format!("127.0.0.1:{port}"),
        &format!("data_dir = \"{}\"", dir.path().join("data").display()),
    );
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, text).expect("write config");

    let mut gw = GatewayProcess::start(&file, port).await;
    let first = tokio::task::block_in_place(|| {
        let p = host.next(&topic("NBIRTH", None));
        host.next(&topic("DDATA", Some("tank")));
        metric(&p, "bdSeq")["value"].as_i64().expect("bdSeq")
    });
    gw.kill();
    tokio::task::block_in_place(|| {
        let death = host.next(&topic("NDEATH", None));
        assert_eq!(
            metric(&death, "bdSeq")["value"].as_i64(),
            Some(first),
            "the will pairs with the birth"
        );
        assert!(death.get("seq").is_none(), "{death}");
    });

    let mut gw = GatewayProcess::start(&file, port).await;
    let second = tokio::task::block_in_place(|| {
        let p = host.next(&topic("NBIRTH", None));
        let at = host.seen.len() - 1;
        let d = host.next(&topic("DBIRTH", Some("tank")));
        check_dbirth(&d, "tank", false);
        host.next(&topic("DDATA", Some("tank")));
        check_seq(&host.seen, at);
        metric(&p, "bdSeq")["value"].as_i64().expect("bdSeq")
    });
    assert_eq!(
        second,
        (first + 1) % 256,
        "bdSeq is kept in the data dir and goes up per connection"
    );
    assert!(gw.signal_and_wait("TERM").success());
    tokio::task::block_in_place(|| {
        let death = host.next(&topic("NDEATH", None));
        assert_eq!(metric(&death, "bdSeq")["value"].as_i64(), Some(second));
    });
}
