//! Load harness: MQTT sensors in at 50,000 readings/s through a real Mosquitto.
//!
//! This process runs the whole gateway in-process (MQTT source, rules engine, embedded
//! history) subscribed to a Mosquitto started here on a free loopback port. A child process
//! (this binary re-run with `HAZARD_LOAD_ROLE=pub`) publishes QoS 1 arrays of readings from
//! 1,000 sensors at the target rate and reports how many readings the broker acknowledged.
//! The figures are then: readings the gateway ingested against those published, and the CPU
//! time and peak RSS of this process (the gateway; the publisher and broker are measured
//! apart, for scale).
//!
//! Sensor values drift slowly (as real ones do), so history keeps raw rows by its deadband and
//! heartbeat rules rather than every reading; every reading is still evaluated by the rules and
//! counted in the minute rollups.
//!
//! ```sh
//! cargo bench --bench mqtt_load                                   # 50,000 readings/s for 60 s
//! MQTT_LOAD_SECS=10 MQTT_LOAD_PER_MESSAGE=1 cargo bench --bench mqtt_load
//! ```
//! Environment: `MQTT_LOAD_SECS` (60), `MQTT_LOAD_RATE` readings/s (50000),
//! `MQTT_LOAD_PER_MESSAGE` readings per message (10), `MQTT_LOAD_SENSORS` (1000).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::pipeline::Gateway;
use hazard_gateway::telemetry::{Metrics, SubscriptionLabel};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[path = "common/broker.rs"]
mod broker;
use broker::Broker;

#[path = "common/proc.rs"]
mod proc;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Params {
    secs: u64,
    rate: u64,
    per_message: u64,
    sensors: u64,
}

impl Params {
    fn from_env() -> Params {
        let per_message = env_u64("MQTT_LOAD_PER_MESSAGE", 10).max(1);
        Params {
            secs: env_u64("MQTT_LOAD_SECS", 60),
            rate: env_u64("MQTT_LOAD_RATE", 50_000),
            per_message,
            sensors: env_u64("MQTT_LOAD_SENSORS", 1000).max(per_message),
        }
    }

    fn stations(&self) -> u64 {
        self.sensors / self.per_message
    }
}

/// Child process: publishes at the target rate for `secs`, waits for every PUBACK, then prints
/// `PUBLISHED <readings>`.
async fn publish(port: u16, p: Params) {
    let mut opts = MqttOptions::new("mqtt-load-publisher", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(1000);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let driver = {
        let acked = acked.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("publisher: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
    };
    let clock = clock::system();
    let ticks_per_sec = 100u64;
    let msgs_per_tick = (p.rate / p.per_message / ticks_per_sec).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / ticks_per_sec));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    let mut station = 0u64;
    let mut payload = String::with_capacity(64 * p.per_message as usize);
    for n in 0..p.secs * ticks_per_sec {
        tick.tick().await;
        let ms = clock.now().as_millis();
        for _ in 0..msgs_per_tick {
            payload.clear();
            payload.push_str("{\"data\":[");
            for k in 0..p.per_message {
                let sensor = station * p.per_message + k;
                // A slow drift around 40 % of span, different per sensor.
                let v = 40.0 + 2.0 * (((n + sensor * 37) as f64) / 3000.0).sin();
                if k > 0 {
                    payload.push(',');
                }
                payload.push_str(&format!("{{\"id\":\"P{sensor:05}\",\"v\":{v:.3},\"t\":{ms}}}"));
            }
            payload.push_str("]}");
            client
                .publish(
                    format!("load/s{station:04}"),
                    QoS::AtLeastOnce,
                    false,
                    payload.clone().into_bytes(),
                )
                .await
                .expect("queue publish");
            sent += 1;
            station = (station + 1) % p.stations();
        }
    }
    for _ in 0..600 {
        if acked.load(std::sync::atomic::Ordering::Relaxed) >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acked = acked.load(std::sync::atomic::Ordering::Relaxed);
    driver.abort();
    println!("PUBLISHED {} {}", acked * p.per_message, sent * p.per_message);
}

fn counter(metrics: &Metrics, f: impl Fn(&str) -> bool) -> f64 {
    metrics
        .render()
        .lines()
        .filter(|l| !l.starts_with('#') && f(l))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

async fn run_gateway(p: Params) {
    // A site broker for high-rate sensors lets a subscriber's queue absorb a short stall
    // (mosquitto's default is 1000 messages).
    let broker = Broker::start("max_queued_messages 200000\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        r#"
[gateway]
id = "mqtt-load"
[api]
listen = "127.0.0.1:0"
[[mqtt.brokers]]
name = "load"
address = "127.0.0.1:{port}"
[[mqtt.subscriptions]]
name = "load"
broker = "load"
topic = "load/{{station}}"
point = "{{json:/id}}"
array = "/data"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "%LEL"
kind = "gas"
range = [0, 100]
points = ["P{{00000..{last:05}}}"]
"#,
        port = broker.port,
        last = p.sensors - 1
    );
    let cfg = GatewayConfig::parse(&dir.path().join("load.toml"), &config).unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::start(cfg, dir.path(), clock::system())
        .await
        .expect("gateway starts");
    let label = SubscriptionLabel {
        subscription: "load".into(),
    };
    let ingested = || gw.metrics.mqtt_in.readings.get_or_create(&label).get();
    // Subscribed before publishing: give the connection a moment, checked by the gauge.
    for _ in 0..100 {
        if counter(&gw.metrics, |l| l.starts_with("hazard_mqtt_in_connected{")) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env("HAZARD_LOAD_ROLE", "pub")
        .env("HAZARD_LOAD_PORT", broker.port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the publisher process");
    let pub_pid = child.id().to_string();
    let broker_pid = broker.pid().to_string();
    let (cpu0, broker0) = (proc::cpu_seconds("self"), proc::cpu_seconds(&broker_pid));
    let started = tokio::time::Instant::now();
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("PUBLISHED"))
    })
    .await
    .expect("publisher output")
    .expect("publisher reports");
    let pub_cpu = proc::cpu_seconds(&pub_pid);
    let _ = child.wait();
    let nums: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let (acked, sent) = (nums[0], nums[1]);
    // Drain: everything the broker acknowledged should reach the gateway.
    for _ in 0..600 {
        if ingested() >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = proc::cpu_seconds("self") - cpu0;
    let broker_cpu = proc::cpu_seconds(&broker_pid) - broker0;
    let got = ingested();
    let evaluated = counter(&gw.metrics, |l| l.starts_with("hazard_readings_total{"));
    let errors = counter(&gw.metrics, |l| l.starts_with("hazard_mqtt_in_errors_total{"));
    let history_dropped = counter(&gw.metrics, |l| l.starts_with("hazard_history_readings_dropped_total{"));
    let history_written = counter(&gw.metrics, |l| l.starts_with("hazard_history_readings_written_total"));
    println!(
        "mqtt_load: {} readings/s target, {} per QoS 1 message, {} sensors, {} s of publishing; {wall:.1} s until drained",
        p.rate, p.per_message, p.sensors, p.secs
    );
    println!("  published        {sent} readings, {acked} acknowledged by the broker");
    println!(
        "  ingested         {got} ({:.2} % of acknowledged), {:.0} readings/s over the run",
        100.0 * got as f64 / acked.max(1) as f64,
        got as f64 / wall
    );
    println!("  rules evaluated  {evaluated:.0}; decode errors {errors:.0}");
    println!("  history          {history_written:.0} readings taken in, {history_dropped:.0} dropped");
    println!("  gateway CPU      {:.1} % of one core", 100.0 * cpu / wall);
    println!("  peak RSS (VmHWM) {:.1} MiB", proc::peak_rss_mib());
    println!(
        "  (for scale: publisher {:.1} %, mosquitto {:.1} % of one core)",
        100.0 * pub_cpu / wall,
        100.0 * broker_cpu / wall
    );
    gw.shutdown().await;
}

fn main() {
    let p = Params::from_env();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    if std::env::var("HAZARD_LOAD_ROLE").as_deref() == Ok("pub") {
        let port = env_u64("HAZARD_LOAD_PORT", 1883) as u16;
        rt.block_on(publish(port, p));
    } else {
        rt.block_on(run_gateway(p));
    }
}
