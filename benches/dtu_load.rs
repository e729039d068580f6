//! Load harness: the gateway serving many dialled-in DTUs over loopback.
//!
//! The simulated DTUs (the same one the tests use, `tests/support/dtu.rs`) and the Modbus
//! simulator behind them run in a child process (this binary re-run with
//! `HAZARD_LOAD_ROLE=sim`), so the CPU time and peak RSS read from `/proc/self` are the
//! gateway's own: the DTU listener, registration, one reader task per connection (heartbeats
//! out, frames cut), the line task per station, decoding, and delivery of every reading into a
//! bounded channel whose consumer counts poll cycles. Each station has one gas detector
//! (3 points, one read) polled every second; each DTU also sends a heartbeat every 5 s.
//!
//! ```sh
//! cargo bench --bench dtu_load                 # 200 DTUs, 60 s
//! cargo bench --bench dtu_load -- 50 10        # DTUs, seconds
//! ```

#[path = "../tests/support/dtu.rs"]
mod dtu;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::config::{GatewayConfig, ProfileSet};
use hazard_gateway::model::Quality;
use hazard_gateway::model::ReadingBatch;
use hazard_gateway::sources::dtu::DtuHub;
use hazard_gateway::sources::modbus::poller::{Poller, group_lines};
use hazard_gateway::sources::sim::{SimTransport, Simulator};
use hazard_gateway::state::devices::HealthBoard;
use hazard_gateway::telemetry::Metrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[path = "common/proc.rs"]
mod proc;

fn args() -> (usize, u64) {
    let nums: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    (
        nums.first().copied().unwrap_or(200) as usize,
        nums.get(1).copied().unwrap_or(60),
    )
}

fn registration(i: usize) -> Vec<u8> {
    format!("DTU-{i:05}").into_bytes()
}

/// Child process: one Modbus simulator and `stations` DTUs dialling `port`; prints READY, then
/// serves until stdin closes.
async fn run_dtus(port: u16, stations: usize) {
    let profile = ProfileSet::builtin()
        .expect("built-in profiles")
        .get("gas-lel-detector")
        .cloned()
        .expect("gas detector profile");
    let sim = Simulator::serve(
        profile,
        SimTransport::RtuOverTcp("127.0.0.1:0".parse().unwrap()),
        None,
        None,
    )
    .await
    .expect("simulator binds");
    let mut dtus = Vec::with_capacity(stations);
    for i in 0..stations {
        dtus.push(
            dtu::SimDtu::start(dtu::DtuOptions {
                gateway: SocketAddr::from(([127, 0, 0, 1], port)),
                registration: registration(i),
                heartbeat: b"HB".to_vec(),
                heartbeat_every: Duration::from_secs(5),
                heartbeat_around_answers: false,
                split_answers: false,
                framing: dtu::Framing::Rtu,
                upstream: HashMap::from([(1, sim.local_addr())]),
            })
            .await,
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    drop(out);
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
    drop(dtus);
}

async fn run_gateway(stations: usize, secs: u64) {
    let mut cfg = String::from(
        "[gateway]\nid = \"dtu-load\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[dtu.listeners]]\nlisten = \"127.0.0.1:0\"\nheartbeat_interval = \"5s\"\nheartbeat_timeout = \"15s\"\n",
    );
    for i in 0..stations {
        cfg.push_str(&format!(
            "[[dtu.stations]]\nname = \"s{i}\"\nid = \"{}\"\nheartbeat = \"HB\"\n\
             [[devices]]\nname = \"gas{i}\"\nprofile = \"gas-lel-detector\"\ntransport = {{ dtu = \"s{i}\" }}\n\
             interval = \"1s\"\ntimeout = \"1s\"\n",
            String::from_utf8_lossy(&registration(i))
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GatewayConfig::parse(&dir.path().join("dtu-load.toml"), &cfg).expect("load config");
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let hub = DtuHub::new(&config.dtu, metrics.clone(), clock::system());
    let addrs = hub.start(cancel.child_token()).await.expect("DTU listener binds");
    let health = HealthBoard::new(&config.devices);
    health.attach_stations(hub.clone());

    let (tx, mut rx) = mpsc::channel::<ReadingBatch>(256);
    let (good, polls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let counter = {
        let (good, polls) = (good.clone(), polls.clone());
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                polls.fetch_add(1, Ordering::Relaxed);
                if batch.iter().all(|r| r.quality == Quality::Good) {
                    good.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let tasks: Vec<_> = group_lines(&config.devices)
        .iter()
        .map(|line| {
            let p = Poller::new(
                line,
                &config.devices,
                tx.clone(),
                clock::system(),
                metrics.clone(),
                health.clone(),
            )
            .with_dtu(Some(hub.clone()));
            tokio::spawn(p.run(cancel.child_token()))
        })
        .collect();
    drop(tx);

    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg(addrs[0].port().to_string())
        .arg(stations.to_string())
        .env("HAZARD_LOAD_ROLE", "sim")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the DTU process");
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        if line.expect("DTU process output") == "READY" {
            break;
        }
    }
    // Warm up: every DTU registered, first cycles done.
    let connected = || {
        health
            .snapshot()
            .iter()
            .filter(|d| d.station.as_ref().is_some_and(|s| s.connected))
            .count()
    };
    for _ in 0..100 {
        if connected() == stations {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sim_pid = child.id().to_string();
    let (g0, p0, cpu0, sim0) = (
        good.load(Ordering::Relaxed),
        polls.load(Ordering::Relaxed),
        proc::cpu_seconds("self"),
        proc::cpu_seconds(&sim_pid),
    );
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let wall = started.elapsed().as_secs_f64();
    let (g1, p1, cpu1, sim1) = (
        good.load(Ordering::Relaxed),
        polls.load(Ordering::Relaxed),
        proc::cpu_seconds("self"),
        proc::cpu_seconds(&sim_pid),
    );
    let rss = proc::status_mib("self", "VmRSS:");
    let online = connected();
    cancel.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let _ = counter.await;
    drop(child.stdin.take());
    let _ = child.wait();
    let text = metrics.render();
    let sum = |name: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    println!(
        "dtu_load: {stations} dialled-in DTUs, one detector each polled every 1 s, {wall:.1} s measured on loopback"
    );
    println!(
        "  polls/s          {:.1} (target {stations}); all-good {:.1}/s",
        (p1 - p0) as f64 / wall,
        (g1 - g0) as f64 / wall
    );
    println!("  gateway CPU      {:.1} % of one core", 100.0 * (cpu1 - cpu0) / wall);
    println!(
        "  RSS              {rss:.1} MiB (peak {:.1} MiB)",
        proc::status_mib("self", "VmHWM:")
    );
    println!(
        "  (DTU + simulator process, for scale: {:.1} % of one core)",
        100.0 * (sim1 - sim0) / wall
    );
    println!(
        "  stations connected at the end {online}/{stations}; late replies {}, heartbeat timeouts {}, heartbeats {}",
        sum("hazard_dtu_late_replies_total{"),
        sum("hazard_dtu_heartbeat_timeouts_total{"),
        sum("hazard_dtu_heartbeats_total{")
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    if std::env::var("HAZARD_LOAD_ROLE").as_deref() == Ok("sim") {
        let nums: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
        let port = nums.first().copied().unwrap_or(0) as u16;
        let stations = nums.get(1).copied().unwrap_or(0) as usize;
        rt.block_on(run_dtus(port, stations));
    } else {
        let (stations, secs) = args();
        rt.block_on(run_gateway(stations, secs));
    }
}
