//! Hot standby: two gateway processes of one pair, a real Mosquitto as the witness, and the
//! gateway's simulator as the field device. Each node reaches the device, the witness and its
//! peer through a relay of its own (`CutProxy`), so a test can cut any link and tell which
//! node polled the device when: two actives must never both poll it.

use crate::support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use support::{CutProxy, GatewayProcess, Mosquitto, WAIT, free_port, simulator, wait_for};
use tokio::time::Instant;

const SECRET: &str = "pair-secret-for-the-drill";

/// One node's files and relays.
struct Node {
    name: &'static str,
    config: PathBuf,
    api: u16,
    /// Relays this node's polls to the device.
    device: CutProxy,
    /// Relays this node's witness connection.
    witness: CutProxy,
    /// Relays the peer's pair link to this node's listener.
    link_in: CutProxy,
}

struct Pair {
    _witness: Mosquitto,
    sim: hazard_gateway::sources::sim::Simulator,
    dir: tempfile::TempDir,
    nodes: [Node; 2],
}

fn config(
    node: &str,
    api: u16,
    listen: u16,
    peer: std::net::SocketAddr,
    device: std::net::SocketAddr,
    witness: std::net::SocketAddr,
    topic: &str,
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
transport = {{ tcp = "{device}" }}
interval = "100ms"
[redundancy]
node = "{node}"
listen = "127.0.0.1:{listen}"
peer = "{peer}"
witness = {{ mqtt = "{witness}", topic = "hazard/pair/{topic}" }}
"#
    )
}

impl Pair {
    async fn new() -> Pair {
        let witness = Mosquitto::start();
        let sim = simulator("ai4-gas-lel", None).await;
        for ch in ["ch1", "ch2", "ch3", "ch4"] {
            sim.pin(ch, 1.0);
        }
        let dir = tempfile::tempdir().unwrap();
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
            std::fs::write(
                &path,
                config(name, api, listens[i], peer_link, device.addr, w.addr, &topic),
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
        }
    }

    async fn spawn(&self, i: usize) -> GatewayProcess {
        let n = &self.nodes[i];
        let args = [
            std::ffi::OsStr::new("--log-format"),
            "json".as_ref(),
            "run".as_ref(),
            "--config".as_ref(),
            n.config.as_os_str(),
        ];
        GatewayProcess::spawn_with_env(&args, n.api, &[("HAZARD_PAIR_SECRET", SECRET)]).await
    }

    fn journal(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("data-{}", self.nodes[i].name))
            .join("alarms.db")
    }

    /// Cuts the pair link both ways.
    fn cut_link(&self) {
        self.nodes[0].link_in.cut();
        self.nodes[1].link_in.cut();
    }

    fn restore_link(&self) {
        self.nodes[0].link_in.restore();
        self.nodes[1].link_in.restore();
    }
}

/// `/api/v1/pair` of a node, or `None` while it does not answer.
async fn pair_status(gw: &GatewayProcess) -> Option<Value> {
    let r = gw.http.get(format!("{}/api/v1/pair", gw.base)).send().await.ok()?;
    r.json().await.ok()
}

async fn wait_role(gw: &GatewayProcess, role: &str) -> Value {
    wait_for(&format!("{} {role}", gw.base), WAIT, || async {
        pair_status(gw).await.filter(|s| s["role"] == role)
    })
    .await
}

/// Alarm id -> what a switch-over must keep.
async fn snapshot(gw: &GatewayProcess) -> BTreeMap<String, Value> {
    let alarms = gw.get_json("/api/v1/alarms").await;
    alarms
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let keep = json!({
                "state": a["state"], "acknowledged": a["acknowledged"], "shelved_until": a["shelved_until"],
                "out_of_service": a["out_of_service"], "raised_at": a["raised_at"], "user": a["user"],
            });
            (a["alarm_id"].as_str().unwrap().to_string(), keep)
        })
        .collect()
}

async fn wait_state(gw: &GatewayProcess, id: &str, state: &str) {
    wait_for(&format!("{id} in {state}"), WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .any(|a| a["alarm_id"] == id && a["state"] == state)
            .then_some(())
    })
    .await;
}

async fn act(gw: &GatewayProcess, id: &str, action: &str, extra: Value) {
    let mut body = json!({"user": "值班员", "comment": "standby drill"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, answer) = gw
        .post_json(&format!("/api/v1/alarms/{}/{action}", id.replace('/', "%2F")), body)
        .await;
    assert_eq!(status, 200, "{action} {id}: {answer}");
}

fn journal_rows(path: &std::path::Path) -> i64 {
    support::sqlite_count(path, "SELECT COUNT(*) FROM alarm_transitions", [])
}

/// Alarms in several states, one acknowledged and one shelved, on the active `gw`.
async fn raise_and_handle(p: &Pair, gw: &GatewayProcess) {
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
async fn wait_replicated(p: &Pair, active: usize) {
    let standby = 1 - active;
    wait_for("the standby holds the active's whole journal", WAIT, || async {
        let (a, s) = (journal_rows(&p.journal(active)), journal_rows(&p.journal(standby)));
        (a > 0 && a == s).then_some(())
    })
    .await;
}

/// Every request of the node that was active went to the device before the first request of
/// the node that took over, and none after: never two masters.
fn never_two_masters(before: &CutProxy, after: &CutProxy) {
    let first_after = *after.sent().first().expect("the new active polled the device");
    let late: Vec<_> = before.sent().into_iter().filter(|t| *t >= first_after).collect();
    assert!(
        late.is_empty(),
        "the old active sent {} requests after the new one started polling",
        late.len()
    );
}

async fn started_pair(p: &Pair) -> (GatewayProcess, GatewayProcess) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_active_is_replaced_by_the_standby_with_every_alarm_and_acknowledgement() {
    let p = Pair::new().await;
    let (mut a, b) = started_pair(&p).await;
    assert!(p.nodes[1].device.sent().is_empty(), "the standby never polls");
    // The standby sends the console to the active, method and body kept.
    let r = b.http.get(format!("{}/api/v1/alarms", b.base)).send().await.unwrap();
    assert_eq!(
        r.url().as_str(),
        format!("{}/api/v1/alarms", a.base),
        "followed the redirect"
    );
    let ready = b.http.get(format!("{}/readyz", b.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;
    assert_eq!(before.len(), 3, "{before:#?}");

    a.kill();
    let killed = Instant::now();
    let status = wait_role(&b, "active").await;
    eprintln!("switch-over after SIGKILL: {} ms", killed.elapsed().as_millis());
    assert_eq!(status["node"], "b");
    assert_eq!(snapshot(&b).await, before, "alarms after the switch-over");
    // The new active polls: a fresh good reading.
    wait_for("the new active polls", WAIT, || async {
        let pts = b.get_json("/api/v1/points").await;
        pts.as_array()?
            .iter()
            .any(|p| p["id"] == "g/ch1" && p["quality"] == "good" && p["value"] == 55.0)
            .then_some(())
    })
    .await;
    let history = b.get_json("/api/v1/alarms/history?alarm=g%2Fch1:high").await;
    let raised = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["transition"] == "raised")
        .count();
    assert_eq!(raised, 1, "raised once, never again: {history:#}");
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device);
    let m = b.metrics().await;
    assert_eq!(
        support::metric(&m, "hazard_pair_switchovers_total", &["reason=\"lease_expired\""]),
        1.0,
        "{m}"
    );

    // The killed node comes back as standby and copies on from where its journal stopped.
    drop(a);
    let a = p.spawn(0).await;
    wait_role(&a, "standby").await;
    act(&b, "g/ch1:high", "ack", json!({})).await;
    wait_replicated(&p, 1).await;
    let m = a.metrics().await;
    assert_eq!(
        support::metric(&m, "hazard_pair_diverged_journals_total", &[]),
        0.0,
        "{m}"
    );
    assert_eq!(wait_role(&b, "active").await["peer_up"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_active_is_replaced_and_steps_down_without_touching_the_bus_when_it_wakes() {
    let p = Pair::new().await;
    let (mut a, b) = started_pair(&p).await;
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;

    let pid = a.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_role(&b, "active").await;
    assert_eq!(snapshot(&b).await, before);
    wait_for("the new active polls", WAIT, || async {
        (!p.nodes[1].device.sent().is_empty()).then_some(())
    })
    .await;
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Woken past its fence: it steps down before any transaction.
    wait_role(&a, "standby").await;
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device);
    // And it follows the new active.
    wait_for("the woken node follows", WAIT, || async {
        let s = pair_status(&a).await?;
        (s["peer_up"] == true && s["active_api"] == b.base.as_str()).then_some(())
    })
    .await;
    let _ = &mut a;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_pair_link_changes_no_role_while_both_reach_the_witness() {
    let p = Pair::new().await;
    let (a, b) = started_pair(&p).await;
    p.cut_link();
    wait_for("both see the link down", WAIT, || async {
        let (sa, sb) = (pair_status(&a).await?, pair_status(&b).await?);
        (sa["peer_up"] == false && sb["peer_up"] == false).then_some(())
    })
    .await;
    // Three times the takeover time of renewals, as the standby counts them at the witness.
    let start = pair_status(&b).await.unwrap()["lease"]["beat"].as_u64().unwrap();
    wait_for("12 renewals seen by the standby", WAIT, || async {
        let s = pair_status(&b).await?;
        assert_eq!(s["role"], "standby", "{s}");
        assert_eq!(s["lease"]["holder"], "a", "{s}");
        (s["lease"]["beat"].as_u64()? >= start + 12).then_some(())
    })
    .await;
    assert_eq!(pair_status(&a).await.unwrap()["role"], "active");
    assert!(p.nodes[1].device.sent().is_empty(), "the standby never polled");
    p.restore_link();
    wait_for("the link is back", WAIT, || async {
        (pair_status(&b).await?["peer_up"] == true).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_cut_off_from_witness_and_peer_steps_down_and_only_one_node_polls() {
    let p = Pair::new().await;
    let (a, b) = started_pair(&p).await;
    // The witness alone lost: the standby still confirms the active over the link.
    p.nodes[0].witness.cut();
    wait_for("a sees the witness lost", WAIT, || async {
        (pair_status(&a).await?["witness_up"] == false).then_some(())
    })
    .await;
    let polls = p.nodes[0].device.sent().len();
    wait_for("a keeps polling on the standby's word", WAIT, || async {
        (p.nodes[0].device.sent().len() >= polls + 50).then_some(())
    })
    .await;
    assert_eq!(pair_status(&a).await.unwrap()["role"], "active");
    assert_eq!(pair_status(&b).await.unwrap()["role"], "standby");
    // Now the link too: a can prove nothing and steps down; b takes the lease.
    p.cut_link();
    wait_role(&b, "active").await;
    wait_role(&a, "standby").await;
    wait_for("the new active polls", WAIT, || async {
        (!p.nodes[1].device.sent().is_empty()).then_some(())
    })
    .await;
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device);
    // Healed: a stays standby and follows b.
    p.nodes[0].witness.restore();
    p.restore_link();
    wait_for("a follows b", WAIT, || async {
        let s = pair_status(&a).await?;
        (s["role"] == "standby" && s["peer_up"] == true && s["active_api"] == b.base.as_str()).then_some(())
    })
    .await;
}
