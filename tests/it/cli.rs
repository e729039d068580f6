//! The `hazard-gateway` binary as an operator uses it: check-config, profiles, run with a
//! clean SIGTERM shutdown, and the demo.

use crate::support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{GatewayProcess, WAIT, binary, free_port, simulator, sqlite_count, wait_for};

#[test]
fn check_config_accepts_every_example() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = Command::new(binary()).arg("check-config").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("device(s)"));
        n += 1;
    }
    assert!(n >= 1);
}

#[test]
fn check_config_prints_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        "[gateway]\nid = \"gw\"\n\n[[devices]]\nname = \"a\"\nprofile = \"nope\"\ntransport = { tcp = \"h:1\" }\n\n[[rules]]\npoints = \"x/*\"\nthreshold = { high = 1.0 }\n",
    )
    .unwrap();
    let out = Command::new(binary()).arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(
        stderr.contains(&format!("{p}:6:11: devices[0].profile: no device profile `nope`")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{p}:10:10: rules[0].points: `x/*` matches no point")),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn profiles_list_and_show() {
    let out = Command::new(binary()).args(["profiles", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("ai4-gas-lel") && list.contains("tank-ltp"), "{list}");
    let out = Command::new(binary())
        .args(["profiles", "show", "ai4-gas-lel"])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(
        show.contains("high=25") && show.contains("high_high=50") && show.contains("%LEL"),
        "{show}"
    );
    let out = Command::new(binary())
        .args(["profiles", "show", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_polls_and_flushes_history_on_sigterm() {
    let sim = simulator("tank-ltp", None).await;
    sim.pin("level", 7.25);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"gw\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n[[devices]]\nname = \"t1\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"100ms\"\n",
            sim.local_addr()
        ),
    )
    .unwrap();
    let mut gw = GatewayProcess::start(&config, port).await;
    wait_for("the gateway to report the pinned level", WAIT, || async {
        let points = gw.get_json("/api/v1/points").await;
        points
            .as_array()?
            .iter()
            .any(|p| p["id"] == "t1/level" && p["value"] == 7.25)
            .then_some(())
    })
    .await;
    let status = gw.signal_and_wait("TERM");
    assert!(status.success(), "exit status {status}");
    let stderr = gw.stderr();
    let last = stderr.lines().last().unwrap_or_default();
    let line: serde_json::Value = serde_json::from_str(last).expect("JSON log lines");
    assert_eq!(
        line["fields"]["message"], "Gateway stopped; history flushed",
        "{stderr}"
    );
    let db = dir.path().join("data/history.db");
    let rows = sqlite_count(
        &db,
        "SELECT COUNT(*) FROM raw_readings r JOIN points p ON p.id = r.point WHERE p.name = 't1/level' AND r.value = 7.25",
        [],
    );
    assert!(rows > 0, "history rows after shutdown: {rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_points_and_an_alarm_within_a_minute() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "demo".as_ref(),
        "--listen".as_ref(),
        listen.as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
    ];
    let mut gw = GatewayProcess::spawn(&args, port).await;
    let points = wait_for("demo points", WAIT, || async {
        let p = gw.get_json("/api/v1/points").await;
        let arr = p.as_array()?;
        arr.iter().all(|p| p["quality"] == "good").then_some(arr.clone())
    })
    .await;
    assert!(points.len() >= 8);
    let sources: std::collections::BTreeSet<_> = points.iter().map(|p| p["hazard_source"].to_string()).collect();
    assert!(sources.len() >= 2);
    let alarm = wait_for("the demo leak alarm", Duration::from_secs(60), || async {
        let a = gw.get_json("/api/v1/alarms").await;
        a.as_array()?
            .iter()
            .find(|a| a["alarm_id"] == "MHS-001/GT-101:high")
            .cloned()
    })
    .await;
    assert_eq!(alarm["hazard_source"], "MHS-001");
    let page = gw
        .http
        .get(format!("{}/", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The console is a static page that reads the alarms above through the API.
    assert!(
        page.contains("活动报警") && page.contains("/console/console.js"),
        "{page}"
    );
    let script = gw
        .http
        .get(format!("{}/console/console.js", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(gw.signal_and_wait("TERM").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_serves_rtu_over_tcp_to_a_gateway() {
    let port = free_port();
    let child = Command::new(binary())
        .args([
            "simulate",
            "--profile",
            "ai4-gas-lel",
            "--rtu-over-tcp",
            "--unit",
            "4",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _child = support::KillOnDrop(child);
    let mut gw = support::TestGateway::start(&format!(
        "[gateway]\nid = \"gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n[[devices]]\nname = \"g\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ rtu_over_tcp = \"127.0.0.1:{port}\" }}\nunit_id = 4\ninterval = \"100ms\"\n"
    ))
    .await;
    wait_for("a good reading over RTU over TCP", WAIT, || async {
        (gw.point("g/ch1").await["quality"] == "good").then_some(())
    })
    .await;
    assert_eq!(gw.device("g").await["status"], "online");
    gw.shutdown().await;
}
