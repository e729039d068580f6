//! The systemd unit and the service-manager protocol: the shipped unit passes
//! `systemd-analyze verify` and its security review, and the gateway process tells a
//! notification socket it is ready, feeds the watchdog and says when it stops.

use crate::support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{GatewayProcess, binary, free_port};

const UNIT: &str = "deploy/systemd/hazard-gateway.service";
const INSTALLED_BINARY: &str = "/usr/local/bin/hazard-gateway";

/// The unit as shipped, but starting the binary this test run built (verify checks that the
/// command exists and is executable).
fn unit_for_this_build(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(UNIT)).unwrap();
    assert!(text.contains(INSTALLED_BINARY), "the unit starts {INSTALLED_BINARY}");
    let path = dir.join("hazard-gateway.service");
    std::fs::write(&path, text.replace(INSTALLED_BINARY, binary().to_str().unwrap())).unwrap();
    path
}

#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs (.ci/run installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and unparsable values are only warnings to verify: any output is a defect.
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_unit_keeps_its_hardening() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(UNIT)).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "User=hazard-gateway",
        "StateDirectory=hazard-gateway",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
    ] {
        assert!(text.contains(line), "the unit lacks `{}`", line.trim());
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for hazard-gateway.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}{}", String::from_utf8_lossy(&out.stderr)));
    // systemd rates 0 (locked down) to 10 (unprotected); below 2 is its "OK".
    assert!(score < 2.0, "exposure {score}:\n{text}");
}

/// Datagrams received on `sock` until `done` holds for them all, or ~20 s.
fn collect_until(sock: &UnixDatagram, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..100 {
        if done(&got) {
            break;
        }
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_notifies_ready_feeds_the_watchdog_and_says_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!("[gateway]\nid = \"gw-notify\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let args = [std::ffi::OsStr::new("run"), "--config".as_ref(), config.as_os_str()];
    let env = [
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        // A 400 ms watchdog: pinged every 200 ms.
        ("WATCHDOG_USEC", "400000"),
    ];
    let mut gw = GatewayProcess::spawn_with_env(&args, port, &env).await;
    let got = tokio::task::block_in_place(|| {
        collect_until(&sock, |got| {
            got.iter().filter(|m| m.as_str() == "WATCHDOG=1").count() >= 3
        })
    });
    assert!(
        got.first().is_some_and(|m| m.starts_with("READY=1\nSTATUS=Monitoring")),
        "READY=1 comes first: {got:?}"
    );
    assert!(
        got.iter().filter(|m| m.as_str() == "WATCHDOG=1").count() >= 3,
        "{got:?}"
    );

    let status = gw.signal_and_wait("TERM");
    assert!(status.success(), "{}", gw.stderr());
    let rest = collect_until(&sock, |got| got.iter().any(|m| m.starts_with("STOPPING=1")));
    assert!(rest.iter().any(|m| m.starts_with("STOPPING=1")), "{rest:?}");
}
