//! Northbound readings through the durable outbox, against real Mosquitto brokers: numbered
//! readings enter through a QoS 1 subscription (acknowledged only once durable in every sink,
//! the outbox included) and an independent subscriber on the park broker counts every
//! reading inside the batched payloads. A park broker away for 60 s and a gateway killed
//! with SIGKILL must both end with every reading delivered at least once, in time order per
//! point, the duplicates counted exactly.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use support::{Messages, Mosquitto, MqttCollector, WAIT, metric, wait_for};

const POINTS: [&str; 2] = ["a", "b"];

/// Milliseconds since the epoch of reading 0: an hour ago, whole seconds.
fn base_ms() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| (hazard_gateway::clock::system().now().as_millis() / 1000 - 3600) * 1000)
}

/// Reading `i` of a point: value `i`, device time `base + i` ms.
fn payload(i: u64) -> String {
    format!(r#"{{"v": {i}, "t": {}}}"#, base_ms() + i as i64)
}

fn config(plant: &Mosquitto, park: &Mosquitto, port: u16, extra: &str) -> String {
    format!(
        r#"
[gateway]
id = "north-gw"
data_dir = "data"
[api]
listen = "127.0.0.1:{port}"

[[mqtt.brokers]]
name = "plant"
address = "{}"
keep_alive = "5s"

[[mqtt.subscriptions]]
name = "seq"
broker = "plant"
topic = "test/seq/{{tag}}"
point = "seq/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
points = ["seq/a", "seq/b"]

[[mqtt_north]]
name = "park"
broker = "{}"
keep_alive = "5s"
readings = {{ points = "seq/*", in_flight = 64{extra} }}
"#,
        plant.addr(),
        park.addr()
    )
}

/// A QoS 1 publisher on a persistent session; returns the client and its PUBACK count.
fn publisher(port: u16) -> (rumqttc::AsyncClient, Arc<AtomicU64>) {
    let mut opts = rumqttc::MqttOptions::new("north-seq-publisher", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_clean_session(false);
    opts.set_inflight(100);
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 1000);
    let acked = Arc::new(AtomicU64::new(0));
    let count = acked.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    (client, acked)
}

async fn publish_range(client: &rumqttc::AsyncClient, range: std::ops::Range<u64>) {
    for i in range {
        for p in POINTS {
            client
                .publish(format!("test/seq/{p}"), rumqttc::QoS::AtLeastOnce, false, payload(i))
                .await
                .expect("publish queued");
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every reading the subscriber got, per point, in arrival order (sequence numbers), each
/// checked against the documented shape and its value.
fn received(got: &Messages) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (topic, v) in got.lock().unwrap().iter() {
        assert_eq!(topic, "hazard/north-gw/readings/mqtt:seq", "{v}");
        assert_eq!(v["gateway"], "north-gw", "{v}");
        assert_eq!(v["device"], "mqtt:seq", "{v}");
        let points = v["points"].as_array().unwrap_or_else(|| panic!("no points in {v}"));
        assert!(!points.is_empty(), "{v}");
        for p in points {
            let id = p["id"].as_str().unwrap_or_default().to_string();
            let i = (p["ts"].as_i64().unwrap_or_else(|| panic!("ts of {p}")) - base_ms()) as u64;
            assert_eq!(p["value"].as_f64(), Some(i as f64), "{p}");
            assert_eq!(p["quality"], "good", "{p}");
            out.entry(id).or_default().push(i);
        }
    }
    out
}

/// Per point: each of `0..n` arrived, the first arrival of each in increasing order; returns
/// the duplicates of each point (arrivals beyond the first, reading 0's probes aside).
fn check_delivery(got: &Messages, n: u64) -> BTreeMap<String, u64> {
    let all = received(got);
    let mut dups = BTreeMap::new();
    for p in POINTS {
        let id = format!("seq/{p}");
        let seen = all.get(&id).cloned().unwrap_or_default();
        let mut first: Vec<u64> = Vec::new();
        let mut count: BTreeMap<u64, u64> = BTreeMap::new();
        for i in &seen {
            let c = count.entry(*i).or_default();
            if *c == 0 {
                first.push(*i);
            }
            *c += 1;
        }
        let missing: Vec<u64> = (0..n).filter(|i| !count.contains_key(i)).collect();
        assert!(
            missing.is_empty(),
            "{id}: {} readings never arrived: {:?}…",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        assert_eq!(count.len() as u64, n, "{id}: only readings 0..{n} exist");
        assert!(
            first.windows(2).all(|w| w[0] < w[1]),
            "{id}: readings first arrived out of time order"
        );
        let again: Vec<(u64, u64)> = count
            .iter()
            .filter(|(i, c)| **i > 0 && **c > 1)
            .map(|(i, c)| (*i, c - 1))
            .collect();
        let d: u64 = again.iter().map(|(_, c)| c).sum();
        eprintln!(
            "{id}: {} readings, {n} distinct, {d} duplicates: (sequence, extra copies) {again:?}",
            seen.len()
        );
        assert_eq!(
            seen.len() as u64,
            n + d + count.get(&0).map_or(0, |c| c - 1),
            "{id}: every arrival is a reading or a counted duplicate"
        );
        dups.insert(id, d);
    }
    dups
}

/// Publishes reading 0 of each point until it comes out north: from then on the gateway's
/// subscription and the park subscriber's session exist.
async fn through(client: &rumqttc::AsyncClient, got: &Messages) {
    wait_for("reading 0 through the gateway", WAIT, || async {
        publish_range(client, 0..1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = received(got);
        POINTS
            .iter()
            .all(|p| r.get(&format!("seq/{p}")).is_some_and(|v| v.contains(&0)))
            .then_some(())
    })
    .await;
}

async fn count_of(gw: &support::GatewayProcess, result: &str) -> f64 {
    metric(
        &gw.metrics().await,
        "hazard_mqtt_north_readings_total",
        &[&format!("result=\"{result}\"")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_park_broker_away_for_60_s_gets_every_reading_after_in_time_order() {
    const N: u64 = 2000;
    let plant = Mosquitto::start_deep_queue();
    let mut park = Mosquitto::start_deep_queue();
    let sub = MqttCollector::start(park.port, "park-platform", "hazard/+/readings/#", true);
    sub.wait_subscribed().await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&plant, &park, port, "")).unwrap();
    let gw = support::GatewayProcess::start(&path, port).await;
    let (client, _) = publisher(plant.port);
    through(&client, &sub.got).await;

    // The park broker goes away mid-stream, with messages in flight, for 60 s while the
    // readings keep coming.
    let stream = {
        let client = client.clone();
        tokio::spawn(async move { publish_range(&client, 1..3 * N / 4).await })
    };
    wait_for("readings flowing north", WAIT, || async {
        let r = received(&sub.got);
        POINTS
            .iter()
            .all(|p| r.get(&format!("seq/{p}")).is_some_and(|v| v.contains(&(N / 8))))
            .then_some(())
    })
    .await;
    park.stop();
    let away = tokio::time::Instant::now();
    stream.await.expect("publisher task");
    wait_for("the outbox to hold the readings of the outage", WAIT, || async {
        let buffered = count_of(&gw, "buffered").await;
        (buffered >= (3 * N / 4 * POINTS.len() as u64) as f64).then_some(())
    })
    .await;
    let text = gw.metrics().await;
    assert!(
        metric(&text, "hazard_mqtt_north_buffer_messages", &[]) > 0.0,
        "the outbox holds the backlog"
    );
    assert_eq!(metric(&text, "hazard_mqtt_north_readings_connected", &[]), 0.0);
    tokio::time::sleep_until(away + Duration::from_secs(60)).await;
    park.resume();
    publish_range(&client, 3 * N / 4..N).await;

    wait_for("every reading north", 3 * WAIT, || async {
        let r = received(&sub.got);
        POINTS
            .iter()
            .all(|p| {
                r.get(&format!("seq/{p}"))
                    .is_some_and(|v| (1..N).all(|i| v.contains(&i)))
            })
            .then_some(())
    })
    .await;
    let dups = check_delivery(&sub.got, N);
    // The broker passes the last messages on to the subscriber before the gateway has read
    // their acknowledgements: the gateway counts them delivered a moment later.
    let text = wait_for("the gateway to count every reading delivered", WAIT, || async {
        let text = gw.metrics().await;
        let delivered = metric(&text, "hazard_mqtt_north_readings_total", &["result=\"delivered\""]);
        (delivered >= (N * POINTS.len() as u64) as f64).then_some(text)
    })
    .await;
    let m = |r: &str| metric(&text, "hazard_mqtt_north_readings_total", &[&format!("result=\"{r}\"")]);
    let resent = m("resent");
    eprintln!("duplicates per point at the park subscriber: {dups:?}; resent by the gateway: {resent}");
    for reason in [
        "queue_full",
        "closed",
        "buffer_full",
        "buffer_error",
        "buffer_corrupt",
        "expired",
    ] {
        assert_eq!(m(&format!("dropped_{reason}")), 0.0, "nothing dropped ({reason})");
    }
    assert_eq!(metric(&text, "hazard_mqtt_north_readings_connected", &[]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_replays_the_outbox_and_loses_no_reading() {
    const N: u64 = 3000;
    let plant = Mosquitto::start_deep_queue();
    let park = Mosquitto::start_deep_queue();
    let sub = MqttCollector::start(park.port, "park-platform", "hazard/+/readings/#", true);
    sub.wait_subscribed().await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&plant, &park, port, "")).unwrap();
    let mut gw = support::GatewayProcess::start(&path, port).await;
    let (client, acked) = publisher(plant.port);
    through(&client, &sub.got).await;
    let probes = acked.load(Ordering::SeqCst);

    let stream = {
        let client = client.clone();
        tokio::spawn(async move { publish_range(&client, 1..N).await })
    };
    // Two SIGKILLs, each once the running gateway has buffered a few hundred readings north.
    for kill in 0..2 {
        wait_for("the gateway to buffer readings north", WAIT, || async {
            let text = gw.try_metrics().await?;
            (metric(&text, "hazard_mqtt_north_readings_total", &["result=\"buffered\""]) >= 400.0).then_some(())
        })
        .await;
        gw.kill();
        drop(gw);
        gw = support::GatewayProcess::start(&path, port).await;
        eprintln!("SIGKILL {} done, gateway restarted", kill + 1);
    }
    stream.await.expect("publisher task");
    wait_for("the plant broker to acknowledge every published message", WAIT, || {
        let n = acked.load(Ordering::SeqCst);
        async move { (n >= probes + (N - 1) * POINTS.len() as u64).then_some(()) }
    })
    .await;
    wait_for("every reading north", 2 * WAIT, || async {
        let r = received(&sub.got);
        POINTS
            .iter()
            .all(|p| {
                r.get(&format!("seq/{p}"))
                    .is_some_and(|v| (1..N).all(|i| v.contains(&i)))
            })
            .then_some(())
    })
    .await;
    let dups = check_delivery(&sub.got, N);
    eprintln!("duplicates per point at the park subscriber after two SIGKILLs: {dups:?}");
    let text = gw.metrics().await;
    for reason in [
        "queue_full",
        "closed",
        "buffer_full",
        "buffer_error",
        "buffer_corrupt",
        "expired",
    ] {
        assert_eq!(
            metric(
                &text,
                "hazard_mqtt_north_readings_total",
                &[&format!("result=\"dropped_{reason}\"")]
            ),
            0.0,
            "nothing dropped ({reason})"
        );
    }
}
