//! Soak harness: the demo plant plus 10,000 readings/s of extra load, for as long as asked,
//! printing the gateway's resident memory, open files, store backlog and data directory size
//! (history, alarm journal, store buffer) over time. Flat lines are the pass mark: a leak of memory, descriptors or backlog shows as a
//! slope. Not run in CI.
//!
//! The gateway is the release binary, run as a child process (`run --config`), so the figures
//! read from `/proc/<pid>` are its own. In this process run the demo's four simulated devices
//! (with the scripted leak, so alarms are raised and cleared every three minutes), one bulk
//! simulator of `SOAK_POINTS` registers polled every 10 ms (100 points: 10,000 readings/s), and
//! a VictoriaMetrics the gateway writes every reading to through its durable buffer.
//!
//! Columns: `rss_kib` resident memory; `anon_kib` its anonymous part (the heap, without the
//! mapped binary); `fds` open file descriptors; `readings/s` evaluated
//! since the last sample; `pending_b` store backlog not yet acknowledged; `buffer_b` bytes of
//! the buffer's segment files (delivered records stay until their 64 MiB segment rolls);
//! `data_kib` the whole data directory; `sent` lines the store acknowledged; `dropped` lines
//! and history readings lost; `alarms` alarm transitions. At the end it lists the mappings
//! (heap, allocator arenas, the binary) whose resident size changed since the second sample.
//!
//! ```sh
//! SOAK_SECS=1200 cargo bench --bench soak                  # 20 minutes, a sample a minute
//! SOAK_SECS=60 SOAK_SAMPLE_SECS=5 cargo bench --bench soak  # a quick look
//! SOAK_WRAP="heaptrack -o /tmp/soak-heap" cargo bench --bench soak   # under a heap profiler
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hazard_gateway::config::{Profile, ProfileSet};
use hazard_gateway::sources::sim::signal::Leak;
use hazard_gateway::sources::sim::{Scenario, Simulator};

#[path = "common/proc.rs"]
mod proc;

const DEMO_CONFIG: &str = include_str!("../deploy/demo.toml");

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A profile of `n` u16 holding registers with simulated, slowly swinging signals.
fn bulk_profile(n: u64) -> String {
    let mut s = String::from("[profile]\ndescription = \"soak: many points\"\nvendor = \"bench\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[points.p{i:03}]\nfunction = \"holding\"\naddress = {i}\ntype = \"u16\"\nscale = 0.1\nrange = [0.0, 6553.5]\n\
             unit = \"kPa\"\nkind = \"pressure\"\nsim = {{ base = {}.0, amplitude = 5.0, period = \"1m\", noise = 0.5 }}\n",
            100 + i
        ));
    }
    s
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Kills a child process when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let ok = body.starts_with("HTTP/1.1 2") || body.starts_with("HTTP/1.0 2");
    ok.then(|| {
        body.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    })
}

fn wait_http(addr: &str, path: &str, child: &mut Child) {
    for _ in 0..600 {
        if http_get(addr, path).is_some() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("process exited with {status} before {addr}{path} answered");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr}{path} did not answer within 30 s");
}

/// Sum of a metric's samples (every label set) in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn start_victoria_metrics(dir: &Path) -> (Guard, String) {
    let port = free_port();
    let mut child = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("victoria-metrics runs (.ci/run installs it)");
    let addr = format!("127.0.0.1:{port}");
    wait_http(&addr, "/health", &mut child);
    (Guard(child), format!("http://{addr}"))
}

async fn start_simulators(bulk: &Profile) -> (Vec<Simulator>, String) {
    let builtin = ProfileSet::builtin().expect("built-in profiles");
    let mut text = DEMO_CONFIG.to_string();
    let mut sims = Vec::new();
    for (name, profile, leak) in [
        ("gas1", "ai4-gas-lel", true),
        ("tank1", "tank-ltp", false),
        ("gas2", "ai4-gas-lel", false),
        ("tank2", "tank-ltp", false),
    ] {
        let scenario = leak.then(|| Scenario::Leak {
            point: "ch1".into(),
            leak: Leak::demo(),
        });
        let p = builtin.get(profile).cloned().expect("demo profile");
        let sim = Simulator::start(p, SocketAddr::from(([127, 0, 0, 1], 0)), scenario)
            .await
            .expect("simulator");
        text = text.replace(&format!("{{{name}}}"), &sim.local_addr().to_string());
        sims.push(sim);
    }
    let sim = Simulator::start(bulk.clone(), SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("bulk simulator");
    let bulk_addr = sim.local_addr();
    sims.push(sim);
    (sims, text.replace("{bulk}", &bulk_addr.to_string()))
}

/// Resident KiB of each mapping of a process (`/proc/<pid>/smaps`), keyed by its start address
/// and name, so the end of a run can show which mapping grew: the main heap, a thread's
/// allocator arena, a stack or a mapped file.
fn mapping_rss(pid: u32) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(kib) = line.strip_prefix("Rss:") {
            let kib = kib.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
            out.insert(current.clone(), kib);
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            let mut fields = line.split_whitespace();
            // Keyed by start address: a growing heap or arena keeps its start, not its end.
            let start = fields
                .next()
                .and_then(|r| r.split('-').next())
                .unwrap_or_default()
                .to_string();
            let name = fields.nth(4).unwrap_or("[anon]");
            current = format!("{start} {name}");
        }
    }
    out
}

/// Prints the mappings whose resident size changed by 64 KiB or more between two snapshots.
fn print_mapping_growth(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) {
    println!("soak: mappings whose resident size changed by 64 KiB or more since the first sample:");
    for (name, &kib) in after {
        let was = before.get(name).copied().unwrap_or(0);
        if kib.abs_diff(was) >= 64 {
            println!("  {name}: {was} -> {kib} KiB");
        }
    }
    for (name, &was) in before {
        if !after.contains_key(name) && was >= 64 {
            println!("  {name}: {was} KiB -> unmapped");
        }
    }
}

/// The gateway's pid: `root` itself, or the first `hazard-gateway` process below it when a
/// tool runs the gateway as its child.
fn gateway_pid(root: u32) -> u32 {
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end().starts_with("hazard-gateway") {
            return pid;
        }
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten();
        for task in tasks {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    root
}

fn main() {
    let secs = env_u64("SOAK_SECS", 1200);
    let sample = env_u64("SOAK_SAMPLE_SECS", 60).max(1);
    let points = env_u64("SOAK_POINTS", 100);
    let work = tempfile::Builder::new()
        .prefix("hazard-soak-")
        .tempdir()
        .expect("temp dir");
    let profiles = work.path().join("profiles");
    std::fs::create_dir_all(&profiles).expect("profile dir");
    let bulk_text = bulk_profile(points);
    std::fs::write(profiles.join("bulk.toml"), &bulk_text).expect("bulk profile");
    let bulk = Profile::parse("bulk", Path::new("bulk.toml"), &bulk_text).expect("bulk profile parses");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (_sims, demo) = runtime.block_on(start_simulators(&bulk));
    let vm_dir = work.path().join("vm");
    let (_vm, vm_url) = start_victoria_metrics(&vm_dir);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data: PathBuf = work.path().join("data");
    let config = demo.replace("{listen}", &listen).replacen(
        "[gateway]\nid = \"demo-gw\"\n",
        &format!(
            "[gateway]\nid = \"soak-gw\"\ndata_dir = \"{}\"\nprofile_dirs = [\"{}\"]\n",
            data.display(),
            profiles.display()
        ),
        1,
    ) + &format!(
        "\n[[devices]]\nname = \"bulk\"\nprofile = \"bulk\"\ntransport = {{ tcp = \"{{bulk}}\" }}\ninterval = \"10ms\"\ntimeout = \"500ms\"\n\
         \n[[tsdb]]\nname = \"soak-vm\"\nurl = \"{vm_url}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\n"
    );
    let bulk_addr = _sims.last().map(|s| s.local_addr().to_string()).unwrap_or_default();
    let config = config.replace("{bulk}", &bulk_addr);
    let config_path = work.path().join("soak.toml");
    std::fs::write(&config_path, config).expect("config");

    // SOAK_WRAP runs the gateway under a tool (`SOAK_WRAP="heaptrack -o /tmp/soak"` for a
    // heap profile); the figures are then read from the gateway process below the tool.
    let wrap: Vec<String> = std::env::var("SOAK_WRAP")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut command = match wrap.split_first() {
        Some((tool, args)) => {
            let mut c = Command::new(tool);
            c.args(args).arg(env!("CARGO_BIN_EXE_hazard-gateway"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_hazard-gateway")),
    };
    let mut gw = Guard(
        command
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gateway binary runs"),
    );
    wait_http(&listen, "/healthz", &mut gw.0);
    let pid = gateway_pid(gw.0.id());
    println!(
        "soak: demo plant (14 points) + {points} points every 10 ms (~{} readings/s), {secs} s, a sample every {sample} s",
        points * 100
    );
    println!(
        "{:>6} {:>9} {:>9} {:>6} {:>11} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}",
        "t_s",
        "rss_kib",
        "anon_kib",
        "fds",
        "readings/s",
        "pending_b",
        "buffer_b",
        "data_kib",
        "sent",
        "dropped",
        "alarms"
    );
    let started = tokio::time::Instant::now();
    let mut last_readings = 0.0;
    let mut last_t = 0.0;
    let mut first_maps = None;
    loop {
        let t = started.elapsed().as_secs_f64();
        let m = http_get(&listen, "/metrics").unwrap_or_default();
        let readings = metric(&m, "hazard_readings_total");
        let rate = if t - last_t >= 1.0 {
            (readings - last_readings) / (t - last_t)
        } else {
            0.0
        };
        last_readings = readings;
        last_t = t;
        let dropped =
            metric(&m, "hazard_tsdb_lines_dropped_total") + metric(&m, "hazard_history_readings_dropped_total");
        println!(
            "{:>6.0} {:>9} {:>9} {:>6} {:>11.0} {:>10.0} {:>10.0} {:>10} {:>10.0} {:>8.0} {:>7.0}",
            t,
            proc::status_kib(&pid.to_string(), "VmRSS:"),
            proc::status_kib(&pid.to_string(), "RssAnon:"),
            proc::open_files(&pid.to_string()),
            rate,
            metric(&m, "hazard_tsdb_buffer_pending_bytes"),
            metric(&m, "hazard_tsdb_buffer_bytes"),
            dir_bytes(&data) / 1024,
            metric(&m, "hazard_tsdb_lines_sent_total"),
            dropped,
            metric(&m, "hazard_alarm_transitions_total"),
        );
        let _ = std::io::stdout().flush();
        // The first sample is taken at start-up; the second, once warmed up, is the baseline.
        if first_maps.is_none() && t >= 1.0 {
            first_maps = Some(mapping_rss(pid));
        }
        if t >= secs as f64 {
            if let Some(maps) = &first_maps {
                print_mapping_growth(maps, &mapping_rss(pid));
            }
            break;
        }
        std::thread::sleep(Duration::from_secs(sample).min(Duration::from_secs_f64(secs as f64 - t + 0.5)));
    }
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let status = gw.0.wait();
    println!("soak: gateway stopped on SIGTERM: {status:?}");
}
