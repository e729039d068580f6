//! Load harness: the gateway's Modbus polling against many simulated devices on loopback.
//!
//! The simulators run in a child process (this binary re-run with `HAZARD_LOAD_ROLE=sim`), so
//! the CPU time and peak RSS read from this process's `/proc/self` are the gateway's own:
//! line tasks, framing, decoding and delivery of every reading into a bounded channel, whose
//! consumer counts them by quality. Rules and history are not part of this figure (see
//! `hot_paths` for their per-reading cost).
//!
//! ```sh
//! cargo bench --bench modbus_load                       # 1000 devices x 50 registers, 1 s, 60 s
//! cargo bench --bench modbus_load -- 200 50 10          # devices, registers, seconds
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::config::{GatewayConfig, Profile};
use hazard_gateway::model::Quality;
use hazard_gateway::model::ReadingBatch;
use hazard_gateway::sources::modbus::poller::{Poller, group_lines};
use hazard_gateway::sources::sim::Simulator;
use hazard_gateway::state::devices::HealthBoard;
use hazard_gateway::telemetry::Metrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[path = "common/proc.rs"]
mod proc;

/// A profile of `n` consecutive u16 holding registers.
fn profile_text(n: usize) -> String {
    let mut s = String::from("[profile]\ndescription = \"load test\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[points.r{i:03}]\nfunction = \"holding\"\naddress = {i}\ntype = \"u16\"\nunit = \"1\"\nkind = \"state\"\nsim = {{ base = {i}.0 }}\n"
        ));
    }
    s
}

fn args() -> (usize, usize, u64) {
    let nums: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let get = |i: usize, d: u64| nums.get(i).copied().unwrap_or(d);
    (get(0, 1000) as usize, get(1, 50) as usize, get(2, 60))
}

/// Child process: serves `devices` simulators, prints each port, then waits for stdin to close.
async fn run_simulators(devices: usize, registers: usize) {
    let profile = Profile::parse("load", std::path::Path::new("load.toml"), &profile_text(registers))
        .unwrap_or_else(|e| panic!("load profile: {e:?}"));
    let mut sims = Vec::with_capacity(devices);
    let mut out = std::io::stdout().lock();
    for _ in 0..devices {
        let sim = Simulator::start(profile.clone(), "127.0.0.1:0".parse().unwrap(), None)
            .await
            .expect("simulator binds a loopback port (raise `ulimit -n` for many devices)");
        writeln!(out, "{}", sim.local_addr().port()).unwrap();
        sims.push(sim);
    }
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    drop(out);
    // Serve until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
}

async fn run_gateway(devices: usize, registers: usize, secs: u64) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg(devices.to_string())
        .arg(registers.to_string())
        .env("HAZARD_LOAD_ROLE", "sim")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the simulator process");
    let mut ports = Vec::with_capacity(devices);
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("simulator output");
        if line == "READY" {
            break;
        }
        ports.push(line);
    }
    assert_eq!(ports.len(), devices, "simulator process failed");

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("load.toml"), profile_text(registers)).expect("write profile");
    let mut cfg = format!(
        "[gateway]\nid = \"load\"\nprofile_dirs = [\"{}\"]\n[api]\nlisten = \"127.0.0.1:0\"\n",
        dir.path().display()
    );
    for (i, port) in ports.iter().enumerate() {
        cfg.push_str(&format!(
            "[[devices]]\nname = \"d{i}\"\nprofile = \"load\"\ntransport = {{ tcp = \"127.0.0.1:{port}\" }}\ninterval = \"1s\"\ntimeout = \"1s\"\n"
        ));
    }
    let config = GatewayConfig::parse(&dir.path().join("load-site.toml"), &cfg).expect("load config");

    let metrics = Metrics::new();
    let health = HealthBoard::new(&config.devices);
    let (tx, mut rx) = mpsc::channel::<ReadingBatch>(256);
    let good = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let counter = {
        let (good, total) = (good.clone(), total.clone());
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                let g = batch.iter().filter(|r| r.quality == Quality::Good).count();
                good.fetch_add(g as u64, Ordering::Relaxed);
                total.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
        })
    };
    let cancel = CancellationToken::new();
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
            );
            tokio::spawn(p.run(cancel.child_token()))
        })
        .collect();
    drop(tx);

    // Warm up: connections opened, first cycles done.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sim_pid = child.id().to_string();
    let (g0, t0, cpu0) = (
        good.load(Ordering::Relaxed),
        total.load(Ordering::Relaxed),
        proc::cpu_seconds("self"),
    );
    let sim_cpu0 = proc::cpu_seconds(&sim_pid);
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let wall = started.elapsed().as_secs_f64();
    let (g1, t1, cpu1) = (
        good.load(Ordering::Relaxed),
        total.load(Ordering::Relaxed),
        proc::cpu_seconds("self"),
    );
    let sim_cpu = proc::cpu_seconds(&sim_pid) - sim_cpu0;
    cancel.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let _ = counter.await;
    drop(child.stdin.take());
    let _ = child.wait();

    let overruns = metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("hazard_modbus_overruns_total{"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()))
        .sum::<u64>();
    let offline = health.snapshot().iter().filter(|d| d.status != "online").count();
    let target = (devices * registers) as f64;
    println!("modbus_load: {devices} devices x {registers} registers every 1 s, {wall:.1} s measured on loopback");
    println!(
        "  readings/s       {:.0} (target {target:.0}); good {:.0}/s",
        (t1 - t0) as f64 / wall,
        (g1 - g0) as f64 / wall
    );
    println!("  gateway CPU      {:.1} % of one core", 100.0 * (cpu1 - cpu0) / wall);
    println!("  peak RSS (VmHWM) {:.1} MiB", proc::peak_rss_mib());
    println!(
        "  (simulator process, for scale: {:.1} % of one core)",
        100.0 * sim_cpu / wall
    );
    println!("  overruns {overruns}, devices not online at the end {offline}");
}

fn main() {
    let (devices, registers, secs) = args();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    if std::env::var("HAZARD_LOAD_ROLE").as_deref() == Ok("sim") {
        rt.block_on(run_simulators(devices, registers));
    } else {
        rt.block_on(run_gateway(devices, registers, secs));
    }
}
