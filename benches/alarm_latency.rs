//! Load harness: reading-in to SSE-event-out latency of alarm transitions.
//!
//! Starts a gateway in-process with 1,000 gas-detector points (250 four-channel modules whose
//! Modbus links are idle), injects 50,000 readings/s for 20 s through the gateway's reading
//! sender, and listens on the live feed (SSE over loopback). Every 10 ms batch flips two points
//! across their first-level set-point, so about 200 alarm transitions a second are journaled
//! (fsync) and published. Latency = arrival of the SSE event - timestamp of the reading that
//! caused it. Prints readings/s, transitions seen, latency quantiles, CPU and peak RSS.
//!
//! Run: `cargo bench --bench alarm_latency` (bounded: 20 s of load, loopback only).

use std::fmt::Write as _;
use std::time::Duration;

use futures::StreamExt;
use hazard_gateway::clock;
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::model::{PointId, Quality, Reading};
use hazard_gateway::pipeline::Gateway;

#[path = "common/proc.rs"]
mod proc;

const MODULES: usize = 250;
const RATE: usize = 50_000;
const BATCH_EVERY: Duration = Duration::from_millis(10);
const RUN_FOR: Duration = Duration::from_secs(20);

fn config() -> String {
    let mut c = String::from(
        "[gateway]\nid = \"latency-harness\"\n[api]\nlisten = \"127.0.0.1:0\"\n[alarms]\nflood_threshold = 1000000\n",
    );
    for m in 0..MODULES {
        let _ = write!(
            c,
            "[[devices]]\nname = \"m{m}\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"127.0.0.1:9\" }}\ninterval = \"1h\"\ntimeout = \"50ms\"\n"
        );
    }
    c
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = GatewayConfig::parse(&dir.path().join("harness.toml"), &config()).expect("harness config");
    let points: Vec<PointId> = cfg.points.iter().map(|(id, _)| id).collect();
    let clock = clock::system();
    let gw = Gateway::start(cfg, dir.path(), clock.clone()).await.expect("gateway");
    let feed = reqwest::Client::new()
        .get(format!("http://{}/api/v1/events", gw.api_addr))
        .send()
        .await
        .expect("feed");
    let listener_clock = clock.clone();
    let listener = tokio::spawn(async move {
        let mut body = feed.bytes_stream();
        let mut buf = String::new();
        let mut latencies = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            let now = listener_clock.now().as_nanos();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                    continue;
                };
                if v["condition"] == "threshold" {
                    let ts = v["ts"].as_i64().unwrap_or(now);
                    latencies.push(u64::try_from(now - ts).unwrap_or(0));
                }
            }
        }
        latencies
    });

    let tx = gw.reading_sender();
    let per_batch = RATE * BATCH_EVERY.as_millis() as usize / 1000;
    let mut ticker = tokio::time::interval(BATCH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut high = vec![false; points.len()];
    let (cpu0, start) = (proc::cpu_seconds("self"), tokio::time::Instant::now());
    let (mut sent, mut batches, mut cursor) = (0usize, 0usize, 0usize);
    while start.elapsed() < RUN_FOR {
        ticker.tick().await;
        let ts = clock.now();
        let flips = [(batches * 7) % points.len(), (batches * 13 + 500) % points.len()];
        for f in flips {
            high[f] = !high[f];
        }
        let batch: Vec<Reading> = (0..per_batch)
            .map(|i| {
                let idx = (cursor + i) % points.len();
                let value = if high[idx] { 30.0 } else { 5.0 };
                Reading {
                    point: points[idx],
                    ts,
                    value,
                    quality: Quality::Good,
                }
            })
            .chain(flips.iter().map(|&f| Reading {
                point: points[f],
                ts,
                value: if high[f] { 30.0 } else { 5.0 },
                quality: Quality::Good,
            }))
            .collect();
        cursor = (cursor + per_batch) % points.len();
        sent += batch.len();
        batches += 1;
        if tx.send(batch).await.is_err() {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = proc::cpu_seconds("self") - cpu0;
    drop(tx);
    // Let the last transitions reach the feed, then stop (the feed ends at shutdown).
    tokio::time::sleep(Duration::from_millis(500)).await;
    gw.shutdown().await;
    let mut latencies = listener.await.unwrap_or_default();
    latencies.sort_unstable();
    println!(
        "alarm_latency: {sent} readings in {elapsed:.1} s = {:.0} readings/s",
        sent as f64 / elapsed
    );
    println!(
        "alarm_latency: {} threshold transitions on the SSE feed; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0)
    );
    println!(
        "alarm_latency: process CPU {:.0} % of one core (gateway + injector + feed client), peak RSS {:.0} MiB",
        cpu / elapsed * 100.0,
        proc::peak_rss_mib()
    );
}
