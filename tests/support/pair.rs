//! A hot-standby pair for tests and the switch-over harness: two gateway processes of one
//! pair, a real Mosquitto as the witness, and the simulator as the field device. Each node
//! reaches the device, the witness and its peer through a relay of its own ([`CutProxy`]), so
//! a test can cut any link and tell which node polled the device when.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use serde_json::{Value, json};

pub use super::alarms::{act, snapshot, wait_state};
use super::{
    CutProxy, GatewayProcess, Mosquitto, PtyPair, WAIT, free_port, self_signed_cert, signed_by_ca, simulator, wait_for,
};

pub const SECRET: &str = "pair-secret-for-the-drill";

/// One node's files and relays.
pub struct Node {
    pub name: &'static str,
    pub config: PathBuf,
    pub api: u16,
    /// Relays this node's polls to the device.
    pub device: CutProxy,
    /// Relays this node's witness connection.
    pub witness: CutProxy,
    /// Relays the peer's pair link to this node's listener.
    pub link_in: CutProxy,
}

pub struct Pair {
    pub _witness: Mosquitto,
    pub sim: hazard_gateway::sources::sim::Simulator,
    pub dir: tempfile::TempDir,
    pub nodes: [Node; 2],
    /// With [`Pair::on_serial_bus`]: the RS-485 bus both nodes share (the device relays then
    /// carry nothing).
    pub bus: Option<SerialBus>,
}

#[allow(clippy::too_many_arguments, reason = "one node's addresses, named at the call")]
pub fn config(
    node: &str,
    api: u16,
    listen: u16,
    peer: std::net::SocketAddr,
    transport: &str,
    witness: std::net::SocketAddr,
    topic: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[gateway]
id = "pair-gw"
data_dir = "data-{node}"
[api]
listen = "127.0.0.1:{api}"
[[devices]]
name = "g"
profile = "ai4-gas-lel"
transport = {transport}
interval = "100ms"
[redundancy]
node = "{node}"
listen = "127.0.0.1:{listen}"
peer = "{peer}"
witness = {{ mqtt = "{witness}", topic = "hazard/pair/{topic}" }}
{extra}
"#
    )
}

impl Pair {
    pub async fn new() -> Pair {
        Self::with(|_| String::new()).await
    }

    /// A pair whose configs end with `extra(node)` (stores, webhooks).
    pub async fn with(extra: impl Fn(&str) -> String) -> Pair {
        Self::in_dir(tempfile::tempdir().unwrap(), extra, false).await
    }

    /// A pair whose device sits on one RS-485 bus that both nodes are wired to.
    pub async fn on_serial_bus() -> Pair {
        Self::in_dir(tempfile::tempdir().unwrap(), |_| String::new(), true).await
    }

    /// A pair whose link runs over mutual TLS: a test site CA (`ca.pem`) signed a certificate
    /// for 127.0.0.1 per node (`node-a.pem`, `node-b.pem`, keys beside), made by `openssl`.
    pub async fn with_tls(extra: impl Fn(&str) -> String) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        self_signed_cert(dir.path());
        for node in ["a", "b"] {
            signed_by_ca(
                dir.path(),
                &format!("node-{node}"),
                "/CN=127.0.0.1",
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
            );
        }
        Self::in_dir(
            dir,
            |node| {
                format!(
                    "tls = {{ ca_file = \"ca.pem\", cert = \"node-{node}.pem\", key = \"node-{node}.key\" }}\n{}",
                    extra(node)
                )
            },
            false,
        )
        .await
    }

    async fn in_dir(dir: tempfile::TempDir, extra: impl Fn(&str) -> String, serial: bool) -> Pair {
        let witness = Mosquitto::start();
        let (sim, bus) = if serial {
            let (sim, bus) = SerialBus::start().await;
            (sim, Some(bus))
        } else {
            (simulator("ai4-gas-lel", None).await, None)
        };
        for ch in ["ch1", "ch2", "ch3", "ch4"] {
            sim.pin(ch, 1.0);
        }
        let broker: std::net::SocketAddr = witness.addr().parse().unwrap();
        let listens = [free_port(), free_port()];
        let mut links = Vec::new();
        for l in listens {
            links.push(CutProxy::start(([127, 0, 0, 1], l).into()).await);
        }
        let topic = format!("t{}", free_port());
        let mut nodes = Vec::new();
        for (i, name) in ["a", "b"].into_iter().enumerate() {
            let device = CutProxy::start(sim.local_addr()).await;
            let w = CutProxy::start(broker).await;
            let api = free_port();
            let path = dir.path().join(format!("{name}.toml"));
            let peer_link = links[1 - i].addr;
            let transport = match &bus {
                Some(b) => format!("{{ rtu = {{ port = \"{}\", baud = 19200 }} }}", b.ports[i].display()),
                None => format!("{{ tcp = \"{}\" }}", device.addr),
            };
            std::fs::write(
                &path,
                config(
                    name,
                    api,
                    listens[i],
                    peer_link,
                    &transport,
                    w.addr,
                    &topic,
                    &extra(name),
                ),
            )
            .unwrap();
            nodes.push((name, path, api, device, w));
        }
        let mut links = links.into_iter();
        let nodes: Vec<Node> = nodes
            .into_iter()
            .map(|(name, config, api, device, witness)| Node {
                name,
                config,
                api,
                device,
                witness,
                link_in: links.next().unwrap(),
            })
            .collect();
        let Ok(nodes) = <[Node; 2]>::try_from(nodes) else {
            unreachable!("two nodes")
        };
        Pair {
            _witness: witness,
            sim,
            dir,
            nodes,
            bus,
        }
    }

    pub async fn spawn(&self, i: usize) -> GatewayProcess {
        let mut gw = self.spawn_unchecked(i);
        gw.wait_up().await;
        gw
    }

    /// Starts node `i` without waiting for its API.
    pub fn spawn_unchecked(&self, i: usize) -> GatewayProcess {
        let n = &self.nodes[i];
        let args = [
            std::ffi::OsStr::new("--log-format"),
            "json".as_ref(),
            "run".as_ref(),
            "--config".as_ref(),
            n.config.as_os_str(),
        ];
        GatewayProcess::spawn_unchecked(&args, n.api, &[("HAZARD_PAIR_SECRET", SECRET)])
    }

    pub fn journal(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("data-{}", self.nodes[i].name))
            .join("alarms.db")
    }

    /// Cuts the pair link both ways.
    pub fn cut_link(&self) {
        self.nodes[0].link_in.cut();
        self.nodes[1].link_in.cut();
    }

    pub fn restore_link(&self) {
        self.nodes[0].link_in.restore();
        self.nodes[1].link_in.restore();
    }
}

/// `/api/v1/pair` of a node, or `None` while it does not answer.
pub async fn pair_status(gw: &GatewayProcess) -> Option<Value> {
    let r = gw.http.get(format!("{}/api/v1/pair", gw.base)).send().await.ok()?;
    r.json().await.ok()
}

/// Waits until `gw` shows a fresh good reading of g/ch1 at 55 %LEL (as `raise_and_handle`
/// pinned it): it polls the device.
pub async fn wait_reads_ch1(gw: &GatewayProcess) {
    wait_for(&format!("{} reads the device", gw.base), WAIT, || async {
        let pts = gw.get_json("/api/v1/points").await;
        pts.as_array()?
            .iter()
            .any(|p| p["id"] == "g/ch1" && p["quality"] == "good" && p["value"] == 55.0)
            .then_some(())
    })
    .await;
}

/// Waits until `gw` is standby and follows its peer.
pub async fn wait_follows(gw: &GatewayProcess) {
    wait_for(&format!("{} follows", gw.base), WAIT, || async {
        let s = pair_status(gw).await?;
        (s["role"] == "standby" && s["peer_up"] == true).then_some(())
    })
    .await;
}

/// Checks how often `gw` changed its role for `reason`.
pub async fn assert_switchovers(gw: &GatewayProcess, reason: &str, times: f64) {
    let m = gw.metrics().await;
    let label = format!("reason=\"{reason}\"");
    assert_eq!(
        super::metric(&m, "hazard_pair_switchovers_total", &[label.as_str()]),
        times,
        "{m}"
    );
}

pub async fn wait_role(gw: &GatewayProcess, role: &str) -> Value {
    wait_for(&format!("{} {role}", gw.base), WAIT, || async {
        pair_status(gw).await.filter(|s| s["role"] == role)
    })
    .await
}

pub fn journal_rows(path: &std::path::Path) -> i64 {
    super::sqlite_count(path, "SELECT COUNT(*) FROM alarm_transitions", [])
}

/// Alarms in several states, one acknowledged and one shelved, on the active `gw`.
pub async fn raise_and_handle(p: &Pair, gw: &GatewayProcess) {
    p.sim.pin("ch1", 55.0); // high and high_high
    p.sim.pin("ch2", 30.0); // high
    for id in ["g/ch1:high", "g/ch1:high_high", "g/ch2:high"] {
        wait_state(gw, id, "unack_active").await;
    }
    act(gw, "g/ch2:high", "ack", json!({})).await;
    act(gw, "g/ch1:high_high", "shelve", json!({"duration": "2h"})).await;
    wait_state(gw, "g/ch2:high", "ack_active").await;
}

/// Waits until the standby's journal holds every row of the active's.
pub async fn wait_replicated(p: &Pair, active: usize) {
    let standby = 1 - active;
    wait_for("the standby holds the active's whole journal", WAIT, || async {
        let (a, s) = (journal_rows(&p.journal(active)), journal_rows(&p.journal(standby)));
        (a > 0 && a == s).then_some(())
    })
    .await;
}

/// Every request of the node that was active went to the device before the first request of
/// the node that took over, and none after: never two masters.
pub fn never_two_masters(before: &CutProxy, after: &CutProxy, since: Instant) {
    let late = late_requests(before, after, since);
    assert_eq!(
        late, 0,
        "the old active sent {late} requests after the new one started polling"
    );
}

/// Requests through `before` at or after the first request through `after` since `since`
/// (the fault): what the old active sent while the new one drove the device.
pub fn late_requests(before: &CutProxy, after: &CutProxy, since: tokio::time::Instant) -> usize {
    late(&before.sent(), &after.sent(), since)
}

/// Of `before`'s send times, those at or after the first of `after`'s since `since`.
pub fn late(before: &[Instant], after: &[Instant], since: Instant) -> usize {
    let first_after = after
        .iter()
        .find(|t| **t >= since)
        .expect("the new active polled the device");
    before.iter().filter(|t| *t >= first_after).count()
}

/// An RS-485 bus on pseudo-terminals: each node has a serial port of its own, the simulator
/// another. What a node sends goes to the device; what the device answers goes to the node
/// that sent last. (On a real bus every open port hears the answer, but a standby's port is
/// closed and hears nothing; a pseudo-terminal would instead keep the bytes for whoever opens
/// it next.) It records when each node sent, so a test tells whether two masters ever drove
/// the bus.
pub struct SerialBus {
    /// Each node's serial port.
    pub ports: [PathBuf; 2],
    sent: [Arc<Mutex<Vec<Instant>>>; 2],
    _ptys: [PtyPair; 3],
}

impl SerialBus {
    /// The bus and the simulator answering as unit 1 at its far end.
    pub async fn start() -> (hazard_gateway::sources::sim::Simulator, SerialBus) {
        use hazard_gateway::sources::sim::{SimTransport, Simulator};
        let ptys = [PtyPair::start(), PtyPair::start(), PtyPair::start()];
        let sim = Simulator::serve(
            super::profile("ai4-gas-lel"),
            SimTransport::Rtu(ptys[2].b.clone(), 19200),
            Some(1),
            None,
        )
        .await
        .expect("simulator on the bus");
        let open = |p: &PathBuf| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
        };
        let device = Arc::new(Mutex::new(open(&ptys[2].a)));
        let mut device_rx = open(&ptys[2].a);
        let nodes: Vec<std::fs::File> = ptys[..2].iter().map(|p| open(&p.b)).collect();
        let sent: [Arc<Mutex<Vec<Instant>>>; 2] = [Arc::default(), Arc::default()];
        let last_sender = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for (i, node) in nodes.iter().enumerate() {
            let mut rx = node.try_clone().expect("node port");
            let (dev, log, last) = (device.clone(), Arc::clone(&sent[i]), last_sender.clone());
            // Ends when the pty closes (its socat is killed with the bus).
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while let Ok(n @ 1..) = rx.read(&mut buf) {
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now());
                    last.store(i, std::sync::atomic::Ordering::Release);
                    let mut d = dev.lock().unwrap_or_else(|e| e.into_inner());
                    if d.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
        // One writer per node, so a node that stopped reading never holds up the bus.
        let mut to_nodes = Vec::new();
        for mut port in nodes {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
            std::thread::spawn(move || {
                while let Ok(bytes) = rx.recv() {
                    if port.write_all(&bytes).is_err() {
                        return;
                    }
                }
            });
            to_nodes.push(tx);
        }
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = device_rx.read(&mut buf) {
                let to = last_sender.load(std::sync::atomic::Ordering::Acquire);
                let _ = to_nodes[to].send(buf[..n].to_vec());
            }
        });
        let ports = [ptys[0].a.clone(), ptys[1].a.clone()];
        (
            sim,
            SerialBus {
                ports,
                sent,
                _ptys: ptys,
            },
        )
    }

    /// When node `i` sent on the bus.
    pub fn sent(&self, i: usize) -> Vec<Instant> {
        self.sent[i].lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub async fn started_pair(p: &Pair) -> (GatewayProcess, GatewayProcess) {
    let a = p.spawn(0).await;
    wait_role(&a, "active").await;
    let b = p.spawn(1).await;
    wait_role(&b, "standby").await;
    wait_for("the standby follows the active", WAIT, || async {
        let s = pair_status(&b).await?;
        (s["peer_up"] == true && s["active_api"] == a.base.as_str()).then_some(())
    })
    .await;
    (a, b)
}
