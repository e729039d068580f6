//! Load harness: the gateway's OPC UA client subscribed to 10,000 monitored items that change
//! every second, served by asyncua (Python) servers over loopback.
//!
//! The servers (`tests/support/opcua_server.py --load N`) are separate processes, so the CPU
//! time and RSS read from `/proc/self` are the gateway side's own: sessions, publish requests,
//! decoding of notifications, conversion to readings and delivery into a bounded channel
//! whose consumer counts them. The servers' CPU is printed too: a Python server writing and
//! notifying thousands of values a second is the likely bottleneck, so the items are spread
//! over several server processes (one endpoint each).
//!
//! ```sh
//! cargo bench --bench opcua_load                # 10,000 items on 4 servers, 60 s
//! cargo bench --bench opcua_load -- 2000 2 20   # items, servers, seconds
//! ```

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::model::ReadingBatch;
use hazard_gateway::sources::opcua::{self, OpcuaHealth};
use hazard_gateway::telemetry::Metrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// User + system CPU seconds of a process (`self` or a pid), from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// A line of /proc/self/status in MiB (`VmHWM:`, `VmRSS:`).
fn status_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn args() -> (usize, usize, u64) {
    let a: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let n = |i: usize, d: u64| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    (n(0, 10_000) as usize, n(1, 4).max(1) as usize, n(2, 60))
}

fn main() {
    let (items, servers, secs) = args();
    let per = items.div_ceil(servers);
    let state = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/opcua_server.py");
    let mut ports = Vec::new();
    let mut children = Servers(Vec::new());
    for s in 0..servers {
        let port = free_port();
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(state.path().join(format!("s{s}")))
            .args(["--load", &per.to_string(), "--period", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with asyncua");
        children.0.push(child);
        ports.push(port);
    }
    for port in &ports {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
        let ready = (0..1200).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
        });
        assert!(ready, "asyncua server on {port} did not start");
    }
    let mut cfg = String::from("[gateway]\nid = \"opcua-load\"\n");
    for (s, port) in ports.iter().enumerate() {
        cfg.push_str(&format!(
            "[[opcua.endpoints]]\nname = \"s{s}\"\nurl = \"opc.tcp://127.0.0.1:{port}/test/\"\npublishing_interval = \"500ms\"\n"
        ));
        for i in 0..per.min(items - s * per) {
            cfg.push_str(&format!(
                "[[opcua.points]]\nendpoint = \"s{s}\"\npoint = \"load/s{s}/{i}\"\nnode = \"ns=2;s=Load.{i}\"\nqueue_size = 2\n"
            ));
        }
    }
    let config = GatewayConfig::parse(&state.path().join("load.toml"), &cfg).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pids: Vec<String> = children.0.iter().map(|c| c.id().to_string()).collect();
    rt.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<ReadingBatch>(1024);
        let metrics = Metrics::new();
        let health = std::sync::Arc::new(OpcuaHealth::new(&config.opcua));
        let cancel = CancellationToken::new();
        let data = state.path().join("gw");
        let tasks = opcua::start(
            &config.opcua,
            "opcua-load",
            &data,
            &tx,
            &clock::system(),
            &metrics.opcua,
            &health,
            &cancel,
        );
        let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c2 = counted.clone();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                let good = b
                    .iter()
                    .filter(|r| r.quality == hazard_gateway::model::Quality::Good)
                    .count();
                c2.fetch_add(good as u64, std::sync::atomic::Ordering::Relaxed);
            }
        });
        // Warm-up: every item subscribed and its first value in.
        let warm = tokio::time::Instant::now();
        while counted.load(std::sync::atomic::Ordering::Relaxed) < items as u64
            && warm.elapsed() < Duration::from_secs(300)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "warm-up: {:.1} s to subscribe {items} items on {servers} server(s)",
            warm.elapsed().as_secs_f64()
        );
        let (v0, c0, t0) = (
            counted.load(std::sync::atomic::Ordering::Relaxed),
            cpu_seconds("self"),
            tokio::time::Instant::now(),
        );
        let s0: Vec<f64> = pids.iter().map(|p| cpu_seconds(p)).collect();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let elapsed = t0.elapsed().as_secs_f64();
        let values = counted.load(std::sync::atomic::Ordering::Relaxed) - v0;
        let cpu = (cpu_seconds("self") - c0) / elapsed * 100.0;
        let server_cpu: Vec<String> = pids
            .iter()
            .zip(&s0)
            .map(|(p, s)| format!("{:.0} %", (cpu_seconds(p) - s) / elapsed * 100.0))
            .collect();
        let dropped: u64 = (0..servers)
            .map(|s| {
                metrics
                    .opcua
                    .dropped
                    .get_or_create(&hazard_gateway::telemetry::opcua::OpcuaMetrics::kind(
                        &format!("s{s}"),
                        "queue_full",
                    ))
                    .get()
            })
            .sum();
        println!("items {items} on {servers} server(s), changing every second, measured {elapsed:.0} s");
        println!(
            "values received: {:.0}/s (expected {items}/s if the servers keep up)",
            values as f64 / elapsed
        );
        println!(
            "gateway CPU: {cpu:.1} % of one core; RSS {:.1} MiB (peak {:.1} MiB)",
            status_mib("VmRSS:"),
            status_mib("VmHWM:")
        );
        println!("server CPU (each): {}", server_cpu.join(", "));
        println!("dropped (queue full): {dropped}");
        cancel.cancel();
        for t in tasks {
            let _ = t.await;
        }
    });
    drop(children);
}
