//! Load harness: streams readings through a store output (encoder, durable buffer, HTTP
//! writer with gzip) into a real VictoriaMetrics on loopback, and prints the sustained
//! readings/s acknowledged by the store, with this process's CPU % and peak RSS.
//!
//! `cargo bench --bench tsdb_stream` (needs Debian's `victoria-metrics` on PATH).
//! Bounded: at most `TOTAL` readings or `LIMIT` seconds, whichever comes first.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::model::{PointKind, PointMeta, PointTable, Quality, Reading, Timestamp};
use hazard_gateway::sinks::tsdb::{SinkItem, Store};
use hazard_gateway::telemetry::Metrics;

#[path = "common/proc.rs"]
mod proc;

const POINTS: usize = 10_000;
const TOTAL: usize = 3_000_000;
const BATCH: usize = 1_000;
const LIMIT: Duration = Duration::from_secs(60);

fn sent(m: &Metrics) -> f64 {
    m.render()
        .lines()
        .find(|l| l.starts_with("hazard_tsdb_lines_sent_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let vm_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vm = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", vm_dir.path().display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("victoria-metrics on PATH");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("http://127.0.0.1:{port}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = format!(
        "[gateway]\nid = \"bench\"\n[[tsdb]]\nurl = \"http://127.0.0.1:{port}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_lines = 10000\nconcurrency = 2\n"
    );
    let spec = GatewayConfig::parse(Path::new("bench.toml"), &text)
        .expect("config")
        .tsdb
        .remove(0);
    let mut points = PointTable::default();
    for i in 0..POINTS {
        points.insert(PointMeta {
            name: format!("MHS-{:03}/PT-{i:05}", i % 13).into(),
            unit: "MPa".into(),
            kind: PointKind::Pressure,
            device: format!("dev-{}", i / 50).into(),
            hazard_source: Some(format!("MHS-{:03}", i % 13).into()),
            range: None,
            description: None,
        });
    }
    let ids: Vec<_> = points.iter().map(|(id, _)| id).collect();
    let data = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let clock = clock::system();
    let store = Store::start(
        &spec,
        "bench",
        &points,
        data.path(),
        clock.clone(),
        metrics.tsdb.clone(),
    )
    .expect("store");
    let t0 = tokio::time::Instant::now();
    let cpu0 = proc::cpu_seconds("self");
    let start = clock.now().as_nanos() - 3_600_000_000_000;
    let mut produced = 0usize;
    while produced < TOTAL && t0.elapsed() < LIMIT {
        let batch: Vec<Reading> = (produced..produced + BATCH)
            .map(|i| Reading {
                point: ids[i % POINTS],
                ts: Timestamp::from_nanos(start + (i / POINTS) as i64 * 1_000_000_000 + (i % POINTS) as i64),
                value: (i % 977) as f64 * 0.01,
                quality: Quality::Good,
            })
            .collect();
        produced += BATCH;
        if store.tx.send(SinkItem::Readings(batch)).await.is_err() {
            break;
        }
    }
    while sent(&metrics) < produced as f64 && t0.elapsed() < LIMIT + Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = proc::cpu_seconds("self") - cpu0;
    let done = sent(&metrics);
    println!(
        "tsdb_stream: {POINTS} points, {done:.0} of {produced} readings acknowledged by VictoriaMetrics in {secs:.2} s"
    );
    println!("tsdb_stream: sustained {:.0} readings/s", done / secs);
    println!(
        "tsdb_stream: gateway CPU {:.0} % of one core, RSS now {} MiB, peak {} MiB",
        100.0 * cpu / secs,
        proc::status_kib("self", "VmRSS:") / 1024,
        proc::status_kib("self", "VmHWM:") / 1024
    );
    store.shutdown().await;
    let _ = vm.kill();
    let _ = vm.wait();
}
