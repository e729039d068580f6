//! Switch-over of a hot-standby pair under faults: how long the standby takes to become
//! active, how long the field device goes unpolled, whether alarms and acknowledgements come
//! through identical, and how many deliveries are repeated.
//!
//! Two gateway processes (release build of `hazard-gateway`), a real Mosquitto as the witness,
//! a real VictoriaMetrics that both nodes write readings to, a webhook receiver counting
//! deliveries per journal number, and the simulator as the device, each node behind its own
//! relays (`tests/support/pair.rs`). Faults, each `TRIALS` times, alternating which node is
//! active:
//! - `kill`: SIGKILL of the active;
//! - `stop`: SIGSTOP of the active (SIGCONT after the switch-over: it must step down);
//! - `isolate`: the active cut from both the witness and its peer;
//! - `link`: only the pair link cut, both nodes still reach the witness: no switch-over may
//!   happen (watched over twelve lease renewals);
//! - `handover`: an operator's hand-over (`POST /api/v1/pair/handover`) for maintenance;
//! - `field`: the active's field network cut (its relay to the device), the standby's not.
//!   Alarms are compared without the communication alarm the fault itself raises (it returns
//!   on the new active) and without the user of each alarm's last transition (the point's
//!   quality changed in between).
//!
//! Every comparison leaves out `gateway:pair_degraded`, which tells of the node's own pair.
//!
//! ```sh
//! cargo bench --bench pair_switchover -- 20 kill,stop,isolate,link,handover,field
//! ```

#[allow(unused_imports)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use support::pair::{Pair, act, journal_rows, late_requests, pair_status, snapshot, wait_replicated, wait_state};
use support::{GatewayProcess, VictoriaMetrics, WAIT, wait_for};
use tokio::time::Instant;

type Deliveries = Arc<Mutex<HashMap<u64, u32>>>;

async fn receive(State(d): State<Deliveries>, body: Bytes) -> StatusCode {
    if let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let Some(seq) = v["event"]["seq"].as_u64()
    {
        *d.lock().unwrap_or_else(|e| e.into_inner()).entry(seq).or_default() += 1;
    }
    StatusCode::NO_CONTENT
}

async fn receiver(d: Deliveries) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("receiver address");
    let app = Router::new().route("/alarms", post(receive)).with_state(d);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/alarms")
}

#[derive(Default)]
struct Trial {
    fault: &'static str,
    switch_ms: Option<u128>,
    device_gap_ms: Option<u128>,
    alarms_identical: bool,
    late_requests: usize,
    /// Wall time of the fault, ms since the epoch (for the store's readings gap).
    at_ms: i64,
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn now_ms() -> i64 {
    hazard_gateway::clock::system().now().as_nanos() / 1_000_000
}

struct Nodes {
    gws: [Option<GatewayProcess>; 2],
}

impl Nodes {
    fn gw(&self, i: usize) -> &GatewayProcess {
        self.gws[i].as_ref().expect("node running")
    }
}

async fn wait_role(gw: &GatewayProcess, role: &str) {
    wait_for(&format!("{} {role}", gw.base), WAIT, || async {
        pair_status(gw).await.filter(|s| s["role"] == role).map(|_| ())
    })
    .await;
}

async fn wait_following(gw: &GatewayProcess, active: &GatewayProcess) {
    wait_for("the standby follows", WAIT, || async {
        let s = pair_status(gw).await?;
        (s["role"] == "standby" && s["peer_up"] == true && s["active_api"] == active.base.as_str()).then_some(())
    })
    .await;
}

/// A journal change on the active: the third channel raised and acknowledged, or cleared.
async fn journal_change(p: &Pair, gw: &GatewayProcess, n: usize) {
    if n % 2 == 0 {
        p.sim.pin("ch3", 30.0);
        wait_state(gw, "g/ch3:high", "unack_active").await;
        act(gw, "g/ch3:high", "ack", json!({})).await;
        wait_state(gw, "g/ch3:high", "ack_active").await;
    } else {
        p.sim.pin("ch3", 1.0);
        wait_for("g/ch3:high cleared", WAIT, || async {
            let alarms = gw.get_json("/api/v1/alarms").await;
            (!alarms.as_array()?.iter().any(|a| a["alarm_id"] == "g/ch3:high")).then_some(())
        })
        .await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let trials: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let faults: Vec<&'static str> = args
        .get(1)
        .map_or("kill,stop,isolate,link", String::as_str)
        .split(',')
        .filter_map(|f| {
            ["kill", "stop", "isolate", "link", "handover", "field"]
                .into_iter()
                .find(|k| *k == f)
        })
        .collect();
    let vm = VictoriaMetrics::start();
    let deliveries: Deliveries = Arc::default();
    let hook = receiver(deliveries.clone()).await;
    let vm_url = vm.url();
    let p = Pair::with(|_| {
        format!(
            "[[tsdb]]\nname = \"vm\"\nurl = \"{vm_url}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_age = \"100ms\"\n\
             [[webhooks]]\nname = \"park\"\nurl = \"{hook}\"\n"
        )
    })
    .await;
    let mut nodes = Nodes {
        gws: [Some(p.spawn(0).await), None],
    };
    wait_role(nodes.gw(0), "active").await;
    nodes.gws[1] = Some(p.spawn(1).await);
    wait_following(nodes.gw(1), nodes.gw(0)).await;
    p.sim.pin("ch1", 55.0);
    wait_state(nodes.gw(0), "g/ch1:high", "unack_active").await;
    act(nodes.gw(0), "g/ch1:high_high", "shelve", json!({"duration": "8h"})).await;

    let mut active = 0usize;
    let mut results: Vec<Trial> = Vec::new();
    let mut n = 0usize;
    for &fault in &faults {
        for t in 0..trials {
            n += 1;
            let sb = 1 - active;
            journal_change(&p, nodes.gw(active), n).await;
            wait_replicated(&p, active).await;
            let before = snapshot(nodes.gw(active)).await;
            let mut trial = Trial {
                fault,
                at_ms: now_ms(),
                ..Trial::default()
            };
            let polled_before = p.nodes[sb].device.sent().len();
            let t0 = Instant::now();
            match fault {
                "kill" => {
                    if let Some(mut gw) = nodes.gws[active].take() {
                        gw.kill();
                    }
                }
                "stop" => nodes.gw(active).signal("STOP"),
                "isolate" => {
                    p.nodes[active].witness.cut();
                    p.cut_link();
                }
                "handover" => {
                    let (status, body) = nodes.gw(active).post_json("/api/v1/pair/handover", json!({})).await;
                    assert_eq!(status, 202, "{body}");
                }
                "field" => p.nodes[active].device.cut(),
                _ => p.cut_link(),
            }
            if fault == "link" {
                let start = pair_status(nodes.gw(sb))
                    .await
                    .and_then(|s| s["lease"]["beat"].as_u64())
                    .unwrap_or(0);
                wait_for("twelve renewals", WAIT, || async {
                    let s = pair_status(nodes.gw(sb)).await?;
                    (s["lease"]["beat"].as_u64()? >= start + 12).then_some(())
                })
                .await;
                let roles = (
                    pair_status(nodes.gw(active)).await.map(|s| s["role"].clone()),
                    pair_status(nodes.gw(sb)).await.map(|s| s["role"].clone()),
                );
                trial.alarms_identical = roles == (Some(json!("active")), Some(json!("standby")))
                    && p.nodes[sb].device.sent().len() == polled_before;
                p.restore_link();
                wait_following(nodes.gw(sb), nodes.gw(active)).await;
                eprintln!("trial {t:>2} link: roles kept {}", trial.alarms_identical);
                results.push(trial);
                continue;
            }
            let standby = nodes.gw(sb);
            let switched = tokio::time::timeout(WAIT, async {
                loop {
                    if pair_status(standby).await.is_some_and(|s| s["role"] == "active") {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            let switched_at = Instant::now();
            if switched.is_ok() {
                trial.switch_ms = Some(t0.elapsed().as_millis());
            }
            // Asked by an active that hands over (an operator, or its field network lost), the
            // standby polls before it takes over: count the new active's polls from the
            // switch-over.
            let from = if matches!(fault, "field" | "handover") {
                switched_at
            } else {
                t0
            };
            let first_new = wait_for("the new active polls", WAIT, || async {
                p.nodes[sb]
                    .device
                    .sent()
                    .into_iter()
                    .skip(polled_before)
                    .find(|t| *t >= from)
            })
            .await;
            let last_old = p.nodes[active]
                .device
                .sent()
                .into_iter()
                .filter(|t| *t < first_new)
                .max();
            trial.device_gap_ms = last_old.map(|l| first_new.duration_since(l).as_millis());
            if fault == "field" {
                wait_state(standby, "g:communication", "unack_rtn").await;
            }
            let after = snapshot(standby).await;
            trial.alarms_identical = comparable(after.clone(), fault) == comparable(before.clone(), fault);
            if !trial.alarms_identical {
                eprintln!("alarms differ after {fault}:\nbefore {before:#?}\nafter {after:#?}");
            }
            // Recover the old active as standby.
            match fault {
                "kill" => nodes.gws[active] = Some(p.spawn(active).await),
                "stop" => nodes.gw(active).signal("CONT"),
                "handover" => {}
                "field" => p.nodes[active].device.restore(),
                _ => {
                    p.nodes[active].witness.restore();
                    p.restore_link();
                }
            }
            wait_following(nodes.gw(active), nodes.gw(sb)).await;
            trial.late_requests = late_requests(&p.nodes[active].device, &p.nodes[sb].device, from);
            eprintln!(
                "trial {t:>2} {fault}: switch-over {:?} ms, device unpolled {:?} ms, alarms identical {}, late requests {}",
                trial.switch_ms, trial.device_gap_ms, trial.alarms_identical, trial.late_requests
            );
            results.push(trial);
            active = sb;
        }
    }

    // The store's view: the longest stretch without a reading of g/ch1 after each fault, and
    // readings written twice (same timestamp).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let series = vm.export("{__name__=~\"hazard_reading_value\", point=\"g/ch1\"}").await;
    let mut ts: Vec<i64> = series.into_iter().flat_map(|(_, t, _)| t).collect();
    ts.sort_unstable();
    let written = ts.len();
    ts.dedup();
    let same_ts = written - ts.len();
    // Each fault's window ends where the next trial's fault begins, so a gap is counted
    // for the fault that made it.
    let mut starts: Vec<i64> = results.iter().map(|r| r.at_ms).collect();
    starts.sort_unstable();
    let gap_near = |at: i64| -> i64 {
        let end = starts.iter().copied().find(|s| *s > at).unwrap_or(at + 30_000);
        ts.windows(2)
            .filter(|w| w[1] >= at && w[0] < end)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0)
    };
    println!(
        "\n| fault | trials | switch-over p50 | p95 | max | device unpolled p50 | p95 | max | store gap max | alarms identical | late requests |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &fault in &faults {
        let rs: Vec<&Trial> = results.iter().filter(|r| r.fault == fault).collect();
        if fault == "link" {
            let kept = rs.iter().filter(|r| r.alarms_identical).count();
            println!(
                "| link cut only | {} | no switch-over in {kept} of {} | | | | | | | | |",
                rs.len(),
                rs.len()
            );
            continue;
        }
        let mut sw: Vec<u128> = rs.iter().filter_map(|r| r.switch_ms).collect();
        sw.sort_unstable();
        let mut gap: Vec<u128> = rs.iter().filter_map(|r| r.device_gap_ms).collect();
        gap.sort_unstable();
        let store_gap = rs.iter().map(|r| gap_near(r.at_ms)).max().unwrap_or(0);
        println!(
            "| {fault} | {} | {} ms | {} ms | {} ms | {} ms | {} ms | {} ms | {store_gap} ms | {} of {} | {} |",
            rs.len(),
            percentile(&sw, 0.5),
            percentile(&sw, 0.95),
            sw.last().copied().unwrap_or(0),
            percentile(&gap, 0.5),
            percentile(&gap, 0.95),
            gap.last().copied().unwrap_or(0),
            rs.iter().filter(|r| r.alarms_identical).count(),
            rs.len(),
            rs.iter().map(|r| r.late_requests).sum::<usize>(),
        );
    }
    let d = deliveries.lock().unwrap_or_else(|e| e.into_inner());
    let repeated: u32 = d.values().map(|c| c.saturating_sub(1)).sum();
    let journal = journal_rows(&p.journal(active));
    let missing = (1..=journal).filter(|s| !d.contains_key(&(*s as u64))).count();
    println!(
        "\nwebhook: {} journal entries, {} delivered, {missing} never delivered, {repeated} deliveries repeated; store: {written} readings of g/ch1, {same_ts} with a timestamp already written",
        journal,
        d.len()
    );
}

/// Alarms as a switch-over must keep them. `gateway:pair_degraded` is left out: it tells of
/// the node's own pair (raised on the old active while the link trials kept the pair apart, it
/// returns on a new active whose standby follows). After a field-network fault, so are the
/// communication alarm the fault raises and the user of each alarm's last transition (the
/// point's quality changed in between).
fn comparable(
    mut alarms: std::collections::BTreeMap<String, Value>,
    fault: &str,
) -> std::collections::BTreeMap<String, Value> {
    alarms.remove("gateway:pair_degraded");
    if fault == "field" {
        alarms.remove("g:communication");
        for a in alarms.values_mut() {
            if let Some(o) = a.as_object_mut() {
                o.remove("user");
            }
        }
    }
    alarms
}
