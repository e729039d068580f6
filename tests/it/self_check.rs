//! The gateway's self-diagnostic alarms on its `gateway` pseudo-device: a filling data disk
//! (a size-limited tmpfs, as CI runs as root), history writes failing on the full disk, and
//! a wall clock set while it runs. Each is an alarm like any other (journaled, in the alarm
//! list) and a `/readyz` reason while it lasts.

use std::io::Write;
use std::sync::Arc;

use crate::support;

use hazard_gateway::clock::SteppedClock;
use serde_json::Value;
use support::{SmallDisk, TestGateway, WAIT, simulator, wait_for};

async fn readyz(gw: &TestGateway) -> (u16, String) {
    let r = gw
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .expect("readyz answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn wait_alarm(gw: &TestGateway, id: &str, state: &str) -> Value {
    wait_for(&format!("{id} {state}"), WAIT, || async {
        gw.alarm(id).await.filter(|a| a["state"] == state)
    })
    .await
}

async fn self_checks(gw: &TestGateway) -> u64 {
    gw.metric_handles().self_checks.get()
}

/// Writes zeros to `path` until the filesystem is full (bounded by `max` bytes).
fn fill(path: &std::path::Path, max: usize) -> usize {
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    while written < max {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n,
        }
    }
    let _ = f.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_data_disk_raises_disk_and_storage_alarms_that_clear_when_space_returns() {
    let disk = SmallDisk::mount(24 * 1024);
    let sim = simulator("tank-ltp", None).await;
    let config = format!(
        r#"
[gateway]
id = "self-check"
[api]
listen = "127.0.0.1:0"
[ops]
min_free_disk = "12MiB"
[[devices]]
name = "tank-1"
profile = "tank-ltp"
transport = {{ tcp = "{}" }}
interval = "100ms"
"#,
        sim.local_addr()
    );
    let dir = tempfile::tempdir_in(disk.path()).expect("data dir on the small disk");
    let gw = TestGateway::start_with(&config, dir, hazard_gateway::clock::system()).await;
    wait_for("a self-check round", WAIT, || async {
        (self_checks(&gw).await >= 1).then_some(())
    })
    .await;
    assert!(
        gw.alarm("gateway:disk_space").await.is_none(),
        "plenty of space at start"
    );

    // Below the limit: the disk alarm, with the free space, and a readiness reason.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 16 << 20]).expect("ballast");
    let a = wait_alarm(&gw, "gateway:disk_space", "unack_active").await;
    assert_eq!(a["subject"], "gateway");
    assert_eq!(a["subject_kind"], "device");
    assert_eq!(a["condition"], "disk_space");
    assert_eq!(a["class"], "fault");
    assert_eq!(a["priority"], "high");
    assert_eq!(a["unit"], "MiB");
    let free_mib = a["value"].as_f64().expect("free space in the alarm");
    assert!(free_mib < 12.0, "{a}");
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("data disk has") && body.contains("min_free_disk"),
        "{body}"
    );

    // Full: history cannot write; the storage alarm says so, and readiness too.
    let filler = disk.path().join("filler");
    fill(&filler, 32 << 20);
    wait_alarm(&gw, "gateway:storage_write", "unack_active").await;
    wait_for("the history reason in /readyz", WAIT, || async {
        let (_, body) = readyz(&gw).await;
        body.contains("history writes are failing").then_some(())
    })
    .await;

    // Space returns: the disk alarm clears by itself (still to be acknowledged) and every
    // transition, including those held while the journal could not write, is journaled.
    std::fs::remove_file(&filler).expect("remove filler");
    std::fs::remove_file(&ballast).expect("remove ballast");
    wait_alarm(&gw, "gateway:disk_space", "unack_rtn").await;
    wait_for("nothing held for the journal", WAIT, || async {
        (gw.metric_handles().journal_held.get() == 0).then_some(())
    })
    .await;
    let journal = gw.get_json("/api/v1/alarms/history?limit=1000").await;
    let transitions: Vec<(String, String)> = journal
        .as_array()
        .expect("journal transitions")
        .iter()
        .filter(|e| e["subject"] == "gateway")
        .map(|e| {
            (
                e["alarm_id"].as_str().unwrap_or("").to_string(),
                e["transition"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("gateway:disk_space", "raised"),
        ("gateway:storage_write", "raised"),
        ("gateway:disk_space", "cleared"),
    ] {
        assert!(
            transitions.iter().any(|(a, t)| a == want.0 && t == want.1),
            "{want:?} journaled: {transitions:?}"
        );
    }
    wait_for("the disk reason gone from /readyz", WAIT, || async {
        let (_, body) = readyz(&gw).await;
        (!body.contains("data disk has")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_set_while_running_raises_the_clock_alarm_with_the_step() {
    let config = r#"
[gateway]
id = "clock-check"
[api]
listen = "127.0.0.1:0"
[ops]
clock_jump_over = "30s"
"#;
    let clock = Arc::new(SteppedClock::default());
    let gw = TestGateway::start_with(config, tempfile::tempdir().expect("temp dir"), clock.clone()).await;
    wait_for("a self-check round", WAIT, || async {
        (self_checks(&gw).await >= 1).then_some(())
    })
    .await;
    assert!(gw.alarm("gateway:clock_jump").await.is_none());

    // Ten minutes ahead, as an operator setting the time by hand would.
    clock.step(600 * 1_000_000_000);
    let a = wait_alarm(&gw, "gateway:clock_jump", "unack_active").await;
    assert_eq!(a["value"].as_f64(), Some(600.0), "{a}");
    assert_eq!(a["unit"], "s");
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the wall clock stepped by +600 s"), "{body}");

    // The duty officer acknowledges it; it stays until the hold ends, acknowledged.
    let (code, body) = gw
        .post_json(
            "/api/v1/alarms/gateway%3Aclock_jump/ack",
            serde_json::json!({"user": "值班员", "comment": "校时"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_alarm(&gw, "gateway:clock_jump", "ack_active").await;
}
