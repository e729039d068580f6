//! `hazard-gateway backup` of a running gateway under load, and the restore that
//! `deploy/README.md` documents: a gateway started on the restored files serves the alarms
//! journaled before the backup, field by field, and the history up to it.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{GatewayProcess, WAIT, binary, free_port, simulator, wait_for};

const DEVICES: [&str; 3] = ["g1", "g2", "g3"];

fn config(sim: &str, port: u16) -> String {
    let mut text = format!(
        "[gateway]\nid = \"backup-gw\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n[history]\nheartbeat = \"1s\"\n"
    );
    for d in DEVICES {
        text += &format!(
            "[[devices]]\nname = \"{d}\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{sim}\" }}\ninterval = \"50ms\"\n"
        );
    }
    text
}

/// Every alarm the API lists, by id, with every field.
async fn alarms(gw: &GatewayProcess) -> BTreeMap<String, Value> {
    let list = gw.get_json("/api/v1/alarms").await;
    list.as_array()
        .expect("alarm list")
        .iter()
        .map(|a| (a["alarm_id"].as_str().expect("alarm_id").to_string(), a.clone()))
        .collect()
}

async fn wait_state(gw: &GatewayProcess, id: &str, state: &str) {
    wait_for(&format!("{id} in {state}"), WAIT, || async {
        let all = alarms(gw).await;
        (all.get(id)?["state"] == state).then_some(())
    })
    .await;
}

async fn ack(gw: &GatewayProcess, id: &str) {
    let body = json!({"user": "值班员", "comment": "backup drill"});
    let (status, answer) = gw
        .post_json(&format!("/api/v1/alarms/{}/ack", id.replace('/', "%2F")), body)
        .await;
    assert_eq!(status, 200, "ack {id}: {answer}");
}

/// Stored readings of `point` with a time at or before `to_ms`: (ts_ms, value, quality).
async fn history(gw: &GatewayProcess, point: &str, to_ms: i64) -> Vec<(i64, Value, Value)> {
    let id = point.replace('/', "%2F");
    let h = gw
        .get_json(&format!(
            "/api/v1/points/{id}/history?resolution=raw&from=0&to={to_ms}&limit=100000"
        ))
        .await;
    h["readings"]
        .as_array()
        .expect("readings")
        .iter()
        .map(|r| {
            (
                r["ts_ms"].as_i64().expect("ts_ms"),
                r["value"].clone(),
                r["quality"].clone(),
            )
        })
        .collect()
}

fn points() -> Vec<String> {
    DEVICES
        .iter()
        .flat_map(|d| ["ch1", "ch2", "ch3", "ch4"].map(|c| format!("{d}/{c}")))
        .collect()
}

/// The documented restore: the backup's files (not its manifest) into an empty data dir.
fn restore(backup: &Path, data: &Path) {
    for entry in walk(backup) {
        let rel = entry.strip_prefix(backup).expect("under the backup");
        if rel == Path::new("manifest.json") {
            continue;
        }
        let to = data.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &to).expect("copy back");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_the_alarms_and_history_it_saw() {
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, config(&sim.local_addr().to_string(), port)).expect("config");
    let mut gw = GatewayProcess::start(&path, port).await;

    // Alarms raised and acknowledged while three devices stream readings every 50 ms.
    sim.pin("ch1", 55.0);
    sim.pin("ch2", 30.0);
    for d in DEVICES {
        wait_state(&gw, &format!("{d}/ch1:high_high"), "unack_active").await;
        wait_state(&gw, &format!("{d}/ch2:high"), "unack_active").await;
        ack(&gw, &format!("{d}/ch2:high")).await;
        wait_state(&gw, &format!("{d}/ch2:high"), "ack_active").await;
    }
    // Every reading up to `cut` is committed to history before the backup starts: the API
    // reads the history file and shows each point's readings up to it.
    let cut = hazard_gateway::clock::system().now().as_millis();
    for p in points() {
        wait_for(&format!("{p} stored past {cut}"), WAIT, || async {
            let id = p.replace('/', "%2F");
            let h = gw
                .get_json(&format!(
                    "/api/v1/points/{id}/history?resolution=raw&from={cut}&to={}&limit=10",
                    cut + 3_600_000
                ))
                .await;
            (!h["readings"].as_array()?.is_empty()).then_some(())
        })
        .await;
    }
    let before = alarms(&gw).await;

    let backup = dir.path().join("backup");
    let out = Command::new(binary())
        .args(["backup", "--config"])
        .arg(&path)
        .arg(&backup)
        .output()
        .expect("backup runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A second backup into the same directory is refused.
    let again = Command::new(binary())
        .args(["backup", "--config"])
        .arg(&path)
        .arg(&backup)
        .output()
        .expect("backup runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).expect("manifest")).expect("JSON");
    assert_eq!(manifest["gateway_version"], env!("CARGO_PKG_VERSION"));
    for f in manifest["files"].as_array().expect("files") {
        let rel = f["path"].as_str().expect("path");
        let size = std::fs::metadata(backup.join(rel)).expect("listed file exists").len();
        assert_eq!(f["bytes"].as_u64(), Some(size), "{rel}");
    }
    let kinds: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["journal", "history"]);

    // After the backup: an acknowledgement the backup does not hold.
    ack(&gw, "g1/ch1:high_high").await;
    wait_for("the acknowledgement journaled", WAIT, || async {
        (alarms(&gw).await.get("g1/ch1:high_high")?["acknowledged"] == true).then_some(())
    })
    .await;
    let mut original = BTreeMap::new();
    for p in points() {
        original.insert(p.clone(), history(&gw, &p, cut).await);
    }
    let status = gw.signal_and_wait("TERM");
    assert!(status.success(), "exit status {status}");

    // Restore into a fresh data directory and start a gateway there.
    let fresh = tempfile::tempdir().expect("temp dir");
    restore(&backup, &fresh.path().join("data"));
    let path2 = fresh.path().join("site.toml");
    std::fs::write(&path2, config(&sim.local_addr().to_string(), port)).expect("config");
    let gw = GatewayProcess::start(&path2, port).await;
    let after = alarms(&gw).await;
    for (id, alarm) in &before {
        assert_eq!(after.get(id), Some(alarm), "{id} after restore");
    }
    assert_eq!(
        after["g1/ch1:high_high"]["acknowledged"], false,
        "taken after the backup"
    );
    for p in points() {
        let restored = history(&gw, &p, cut).await;
        assert!(!restored.is_empty(), "{p}");
        assert_eq!(restored, original[&p], "{p} up to the backup");
    }
}
