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
//! cargo bench --bench modbus_load -- 3000 50 30 100 gateway   # ... interval (ms), whole gateway
//! ```
//!
//! With `gateway`, the whole gateway runs on shipped defaults (`pipeline::Gateway`, history in
//! a temporary data dir, no store): every reading goes through the rules task into history,
//! and the figures are the readings history took in and those it dropped, by the gateway's own
//! counters.

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

/// The product's allocator, so that resident memory reads as the installed gateway's would.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

struct Args {
    devices: usize,
    registers: usize,
    secs: u64,
    interval_ms: u64,
    gateway: bool,
}

fn args() -> Args {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<u64> = all.iter().filter_map(|a| a.parse().ok()).collect();
    let get = |i: usize, d: u64| nums.get(i).copied().unwrap_or(d);
    Args {
        devices: get(0, 1000) as usize,
        registers: get(1, 50) as usize,
        secs: get(2, 60),
        interval_ms: get(3, 1000).max(1),
        gateway: all.iter().any(|a| a == "gateway"),
    }
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

/// Starts the simulator process; returns it and its devices' ports.
fn start_simulators(devices: usize, registers: usize) -> (std::process::Child, Vec<String>) {
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
    (child, ports)
}

/// The site config of the farm: every device polled every `interval_ms`, on shipped defaults.
fn farm_config(dir: &std::path::Path, ports: &[String], registers: usize, interval_ms: u64) -> GatewayConfig {
    std::fs::write(dir.join("load.toml"), profile_text(registers)).expect("write profile");
    let mut cfg = format!(
        "[gateway]\nid = \"load\"\nprofile_dirs = [\"{}\"]\n[api]\nlisten = \"127.0.0.1:0\"\n",
        dir.display()
    );
    for (i, port) in ports.iter().enumerate() {
        cfg.push_str(&format!(
            "[[devices]]\nname = \"d{i}\"\nprofile = \"load\"\ntransport = {{ tcp = \"127.0.0.1:{port}\" }}\ninterval = \"{interval_ms}ms\"\ntimeout = \"1s\"\n"
        ));
    }
    GatewayConfig::parse(&dir.join("load-site.toml"), &cfg).expect("load config")
}

fn counter_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// The whole gateway on the farm: readings through the rules task into history.
async fn run_whole_gateway(a: &Args) {
    let (mut child, ports) = start_simulators(a.devices, a.registers);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = farm_config(dir.path(), &ports, a.registers, a.interval_ms);
    let gateway = hazard_gateway::pipeline::Gateway::start(config, dir.path(), clock::system())
        .await
        .expect("gateway starts");
    let metrics = gateway.metrics.clone();
    let read = |m: &Metrics| {
        let text = m.render();
        (
            counter_sum(&text, "hazard_readings_total"),
            counter_sum(&text, "hazard_history_readings_written_total"),
            counter_sum(&text, "hazard_history_readings_dropped_total"),
            counter_sum(&text, "hazard_modbus_overruns_total"),
        )
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sim_pid = child.id().to_string();
    let (r0, w0, d0, o0) = read(&metrics);
    let (cpu0, sim_cpu0) = (proc::cpu_seconds("self"), proc::cpu_seconds(&sim_pid));
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(a.secs)).await;
    let wall = started.elapsed().as_secs_f64();
    let (r1, w1, d1, o1) = read(&metrics);
    let (cpu1, sim_cpu1) = (proc::cpu_seconds("self"), proc::cpu_seconds(&sim_pid));
    let rss_kib = proc::status_kib("self", "VmRSS:");
    gateway.shutdown().await;
    let (_, w_end, d_end, _) = read(&metrics);
    drop(child.stdin.take());
    let _ = child.wait();
    let target = (a.devices * a.registers) as f64 * 1000.0 / a.interval_ms as f64;
    println!(
        "modbus_load (whole gateway, shipped defaults): {} devices x {} registers every {} ms, {wall:.1} s measured",
        a.devices, a.registers, a.interval_ms
    );
    println!(
        "  readings evaluated/s  {:.0} (polled at full rate: {target:.0})",
        (r1 - r0) / wall
    );
    println!("  into history/s        {:.0}", (w1 - w0) / wall);
    println!(
        "  dropped before history {:.0} in the window, {d0:.0} in the warm-up, {d_end:.0} in the whole run",
        d1 - d0
    );
    println!("  history took in {w_end:.0} readings in the whole run");
    println!("  overruns (polls skipped for lack of time) {:.0}", o1 - o0);
    println!(
        "  gateway CPU           {:.1} % of one core",
        100.0 * (cpu1 - cpu0) / wall
    );
    let points = (a.devices * a.registers) as f64;
    println!(
        "  RSS at the end         {:.1} MiB, {:.0} bytes per point",
        rss_kib as f64 / 1024.0,
        rss_kib as f64 * 1024.0 / points
    );
    println!(
        "  peak RSS (VmHWM)      {:.1} MiB, {:.0} bytes per point",
        proc::peak_rss_mib(),
        proc::peak_rss_mib() * 1048576.0 / points
    );
    println!(
        "  (simulator process: {:.1} % of one core)",
        100.0 * (sim_cpu1 - sim_cpu0) / wall
    );
    if d_end > 0.0 {
        println!("FAILED: readings dropped before history");
        std::process::exit(1);
    }
}

async fn run_gateway(a: &Args) {
    let (devices, registers, secs) = (a.devices, a.registers, a.secs);
    let (mut child, ports) = start_simulators(devices, registers);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = farm_config(dir.path(), &ports, registers, a.interval_ms);

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
    let target = (devices * registers) as f64 * 1000.0 / a.interval_ms as f64;
    println!(
        "modbus_load: {devices} devices x {registers} registers every {} ms, {wall:.1} s measured on loopback",
        a.interval_ms
    );
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
    let a = args();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    if std::env::var("HAZARD_LOAD_ROLE").as_deref() == Ok("sim") {
        rt.block_on(run_simulators(a.devices, a.registers));
    } else if a.gateway {
        rt.block_on(run_whole_gateway(&a));
    } else {
        rt.block_on(run_gateway(&a));
    }
}
