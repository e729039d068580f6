//! Load harness: readings north at QoS 1 with batching, through a real Mosquitto, counted by
//! an independent subscriber inside the payloads.
//!
//! This process runs the whole gateway in-process (rules engine, history, the northbound
//! target's intake, durable outbox and publisher) with `devices` × `registers` points whose
//! devices never answer (so the only readings are the ones injected here). Every poll cycle
//! it hands each device's batch of readings to the gateway through `Gateway::reading_sender`,
//! as a line task does. A Mosquitto started here on a free loopback port takes the
//! northbound messages; a child process (this binary re-run with `HAZARD_NORTH_ROLE=sub`)
//! subscribes at QoS 1, parses every message and counts the readings inside, per point in
//! time order, and reports its counts. The figures: readings delivered to the subscriber
//! against readings injected, the delivered rate, and the CPU time per reading of this
//! process (the gateway; the broker and the subscriber are measured apart).
//!
//! ```sh
//! cargo bench --bench north_load                                        # 500,000 readings/s, 20 s
//! NORTH_LOAD_RATE=50000 NORTH_LOAD_SECS=60 cargo bench --bench north_load # 1 s polling of 50,000 points
//! ```
//! Environment: `NORTH_LOAD_RATE` readings/s (500000), `NORTH_LOAD_SECS` (20),
//! `NORTH_LOAD_DEVICES` (1000), `NORTH_LOAD_REGISTERS` (50), `NORTH_LOAD_IN_FLIGHT` (1024),
//! `NORTH_LOAD_BATCH` (`poll` or `window`), `NORTH_LOAD_ENCODING` (`json` or `sparkplug_b`: the
//! subscriber then decodes the Sparkplug B DDATA payloads and counts their metrics).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use hazard_gateway::clock;
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::model::{PointId, Quality, Reading};
use hazard_gateway::pipeline::Gateway;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[path = "common/broker.rs"]
mod broker;
use broker::Broker;

#[path = "common/proc.rs"]
mod proc;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(serde::Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    points: Vec<Point<'a>>,
}

#[derive(serde::Deserialize)]
struct Point<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[allow(dead_code)]
    value: Option<f64>,
    #[serde(borrow)]
    quality: &'a str,
    ts: i64,
}

/// The part of a Sparkplug B payload the counting subscriber reads (field numbers of the
/// Sparkplug 3.0 specification): each metric's alias, timestamp and `Quality` property.
#[derive(Clone, PartialEq, prost::Message)]
struct SpPayload {
    #[prost(message, repeated, tag = "2")]
    metrics: Vec<SpMetric>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SpMetric {
    #[prost(uint64, optional, tag = "2")]
    alias: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    timestamp: Option<u64>,
    #[prost(message, optional, tag = "9")]
    properties: Option<SpProperties>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SpProperties {
    #[prost(string, repeated, tag = "1")]
    keys: Vec<String>,
    #[prost(message, repeated, tag = "2")]
    values: Vec<SpProperty>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SpProperty {
    #[prost(uint32, optional, tag = "3")]
    int_value: Option<u32>,
}

fn sparkplug() -> bool {
    std::env::var("NORTH_LOAD_ENCODING").is_ok_and(|e| e == "sparkplug_b")
}

/// Child process: subscribes at QoS 1 and prints `COUNT <readings> <good> <out_of_order>
/// <messages> <unparsed>` twice a second.
async fn subscribe(port: u16) {
    let mut opts = MqttOptions::new("north-load-platform", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(64 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let counts: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let v: Vec<u64> = c.iter().map(|a| a.load(Ordering::Relaxed)).collect();
            println!("COUNT {} {} {} {} {}", v[0], v[1], v[2], v[3], v[4]);
        }
    });
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut last_alias: HashMap<u64, u64> = HashMap::new();
    let sp = sparkplug();
    let filter = if sp { "spBv1.0/#" } else { "hazard/+/readings/#" };
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                client.subscribe(filter, QoS::AtLeastOnce).await.expect("subscribe");
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => println!("READY"),
            Ok(Event::Incoming(Packet::Publish(p))) if sp => {
                counts[3].fetch_add(1, Ordering::Relaxed);
                // Births and deaths carry no reading.
                if !p.topic.contains("/DDATA/") {
                    continue;
                }
                let Ok(m) = <SpPayload as prost::Message>::decode(&p.payload[..]) else {
                    counts[4].fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (mut n, mut good, mut late) = (0, 0, 0);
                for pt in &m.metrics {
                    n += 1;
                    let quality = pt.properties.as_ref().and_then(|ps| {
                        let i = ps.keys.iter().position(|k| k == "Quality")?;
                        ps.values.get(i)?.int_value
                    });
                    if quality == Some(192) {
                        good += 1;
                    }
                    let (alias, ts) = (pt.alias.unwrap_or(0), pt.timestamp.unwrap_or(0));
                    match last_alias.get_mut(&alias) {
                        Some(t) if ts < *t => late += 1,
                        Some(t) => *t = ts,
                        None => {
                            last_alias.insert(alias, ts);
                        }
                    }
                }
                counts[0].fetch_add(n, Ordering::Relaxed);
                counts[1].fetch_add(good, Ordering::Relaxed);
                counts[2].fetch_add(late, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                counts[3].fetch_add(1, Ordering::Relaxed);
                let Ok(m) = serde_json::from_slice::<Message>(&p.payload) else {
                    counts[4].fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (mut n, mut good, mut late) = (0, 0, 0);
                for pt in &m.points {
                    n += 1;
                    if pt.quality == "good" {
                        good += 1;
                    }
                    match last.get_mut(pt.id) {
                        Some(t) if pt.ts < *t => late += 1,
                        Some(t) => *t = pt.ts,
                        None => {
                            last.insert(pt.id.to_string(), pt.ts);
                        }
                    }
                }
                counts[0].fetch_add(n, Ordering::Relaxed);
                counts[1].fetch_add(good, Ordering::Relaxed);
                counts[2].fetch_add(late, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("subscriber: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A profile of `n` consecutive u16 holding registers.
fn profile_text(n: u64) -> String {
    let mut s = String::from("[profile]\ndescription = \"load test\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[points.r{i:03}]\nfunction = \"holding\"\naddress = {i}\ntype = \"u16\"\nunit = \"1\"\nkind = \"state\"\n"
        ));
    }
    s
}

#[derive(Default, Clone, Copy)]
struct Seen {
    readings: u64,
    good: u64,
    late: u64,
    messages: u64,
    unparsed: u64,
}

fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn harness() {
    let rate = env_u64("NORTH_LOAD_RATE", 500_000);
    let secs = env_u64("NORTH_LOAD_SECS", 20);
    let devices = env_u64("NORTH_LOAD_DEVICES", 1000);
    let registers = env_u64("NORTH_LOAD_REGISTERS", 50);
    let in_flight = env_u64("NORTH_LOAD_IN_FLIGHT", 1024);
    let batch = std::env::var("NORTH_LOAD_BATCH").unwrap_or_else(|_| "poll".into());
    let points_n = devices * registers;
    let cycle = Duration::from_secs_f64(points_n as f64 / rate as f64);

    // A park broker: deep queues and a wide QoS 1 window towards the subscriber (the
    // default, 20 in flight, would make the subscriber's round trips the limit).
    let broker = Broker::start("max_queued_messages 1000000\nmax_inflight_messages 1000\n");
    let mut sub = Command::new(std::env::current_exe().expect("own path"))
        .env("HAZARD_NORTH_ROLE", "sub")
        .env("HAZARD_NORTH_PORT", broker.port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("subscriber process");
    let sub_pid = sub.id().to_string();
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let seen = seen.clone();
        let out = sub.stdout.take().expect("subscriber stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line == "READY" {
                    let _ = ready_tx.send(());
                }
                let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                if line.starts_with("COUNT ") && v.len() == 5 {
                    *seen.lock().unwrap() = Seen {
                        readings: v[0],
                        good: v[1],
                        late: v[2],
                        messages: v[3],
                        unparsed: v[4],
                    };
                }
            }
        });
    }
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("subscriber ready");

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("load.toml"), profile_text(registers)).expect("write profile");
    let window = if batch == "window" { ", window = \"1s\"" } else { "" };
    let encoding = if sparkplug() {
        ", encoding = \"sparkplug_b\", group_id = \"park\""
    } else {
        ""
    };
    let mut cfg = format!(
        "[gateway]\nid = \"load\"\nprofile_dirs = [\"{}\"]\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[mqtt_north]]\nname = \"park\"\nbroker = \"127.0.0.1:{}\"\n\
         readings = {{ points = \"*\", batch = \"{batch}\"{window}{encoding}, in_flight = {in_flight}, \
         buffer = {{ max_bytes = \"4GiB\" }} }}\n",
        dir.path().display(),
        broker.port
    );
    for i in 0..devices {
        cfg.push_str(&format!(
            "[[devices]]\nname = \"d{i:04}\"\nprofile = \"load\"\ntransport = {{ tcp = \"127.0.0.1:9\" }}\ninterval = \"1h\"\ntimeout = \"50ms\"\n"
        ));
    }
    let config = GatewayConfig::parse(&dir.path().join("load-site.toml"), &cfg).expect("load config");
    let mut by_device: HashMap<String, Vec<PointId>> = HashMap::new();
    for (id, meta) in config.points.iter() {
        by_device.entry(meta.device().to_string()).or_default().push(id);
    }
    let mut groups: Vec<Vec<PointId>> = by_device.into_values().collect();
    groups.sort();
    let clk = clock::system();
    let gw = Gateway::start(config, dir.path(), clk.clone()).await.expect("gateway");
    let metrics_url = format!("http://{}/metrics", gw.api_addr);
    let http = reqwest::Client::new();
    // The devices' first failed polls (comm_fault readings) go first; measure from a quiet start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = *seen.lock().unwrap();

    let tx = gw.reading_sender();
    println!(
        "north_load: {devices} devices x {registers} points, a poll cycle every {:.0} ms ({rate} readings/s), \
         batch = {batch}, in_flight = {in_flight}, {secs} s{}",
        cycle.as_secs_f64() * 1000.0,
        if sparkplug() { ", Sparkplug B" } else { "" }
    );
    let (cpu0, broker0, sub0) = (
        proc::cpu_seconds("self"),
        proc::cpu_seconds(&broker.pid().to_string()),
        proc::cpu_seconds(&sub_pid),
    );
    let start = Instant::now();
    let mut ticker = tokio::time::interval(cycle);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut injected = 0u64;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        ticker.tick().await;
        n += 1;
        for g in &groups {
            let ts = clk.now();
            let batch: Vec<Reading> = g
                .iter()
                .enumerate()
                .map(|(i, p)| Reading {
                    point: *p,
                    ts,
                    value: (n % 1000) as f64 + i as f64,
                    quality: Quality::Good,
                })
                .collect();
            injected += batch.len() as u64;
            tx.send(batch).await.expect("rules task");
        }
    }
    let inject_wall = start.elapsed().as_secs_f64();
    let at_end = *seen.lock().unwrap();
    // Drain: wait until the subscriber has every injected reading or stops progressing.
    let mut last = at_end.good;
    let mut still = Instant::now();
    while (seen.lock().unwrap().good - base.good) < injected && still.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let g = seen.lock().unwrap().good;
        if g != last {
            last = g;
            still = Instant::now();
        }
    }
    let done = *seen.lock().unwrap();
    let wall = start.elapsed().as_secs_f64() - still.elapsed().as_secs_f64().min(20.0);
    let cpu = proc::cpu_seconds("self") - cpu0;
    let broker_cpu = proc::cpu_seconds(&broker.pid().to_string()) - broker0;
    let sub_cpu = proc::cpu_seconds(&sub_pid) - sub0;
    let text = http
        .get(&metrics_url)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let delivered = done.good - base.good;
    let during = at_end.good - base.good;
    println!(
        "injected:  {injected} readings in {inject_wall:.1} s ({:.0}/s)",
        injected as f64 / inject_wall
    );
    println!(
        "delivered: {delivered} readings in {} messages to the subscriber ({:.0}/s over {wall:.1} s until the last; \
         {:.0}/s while injecting); missing {}, out of time order {}, unparsed messages {}, \
         readings of any quality {}",
        done.messages - base.messages,
        delivered as f64 / wall,
        during as f64 / inject_wall,
        injected.saturating_sub(delivered),
        done.late - base.late,
        done.unparsed - base.unparsed,
        done.readings - base.readings
    );
    println!(
        "gateway CPU: {cpu:.1} s = {:.0} % of a core, {:.2} µs per reading delivered; broker {broker_cpu:.1} s, \
         subscriber {sub_cpu:.1} s; peak RSS {:.0} MiB",
        cpu / wall * 100.0,
        cpu / delivered.max(1) as f64 * 1e6,
        proc::peak_rss_mib()
    );
    let north = |r: &str| metric(&text, "hazard_mqtt_north_readings_total", &format!("result=\"{r}\""));
    println!(
        "gateway counters: buffered {}, delivered {}, resent {}, dropped queue_full {} buffer_full {} expired {}; \
         history dropped {}",
        north("buffered"),
        north("delivered"),
        north("resent"),
        north("dropped_queue_full"),
        north("dropped_buffer_full"),
        north("dropped_expired"),
        metric(&text, "hazard_history_readings_dropped_total", "")
    );
    let _ = sub.kill();
    let _ = sub.wait();
    drop(gw);
}

fn main() {
    if std::env::var("HAZARD_NORTH_ROLE").as_deref() == Ok("sub") {
        let port: u16 = std::env::var("HAZARD_NORTH_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .expect("HAZARD_NORTH_PORT");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(subscribe(port));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(harness());
}
