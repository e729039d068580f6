//! Accepted means durable: faults of the disk, the store and the process, against real
//! VictoriaMetrics, with numbered readings counted one by one. Every reading ends either
//! in the store or in a loss counter; nothing the gateway did not write is ever sent.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use hazard_gateway::clock;
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::model::{PointKind, PointMeta, PointTable, Quality, Reading, Timestamp};
use hazard_gateway::sinks::tsdb::{SinkItem, Store, TsdbSpec};
use hazard_gateway::telemetry::Metrics;
use support::{SmallDisk, VictoriaMetrics, WAIT, metric, wait_for};

const BASE_MS: i64 = 1_700_000_000_000;
const BATCH: usize = 50;

fn spec(url: &str) -> TsdbSpec {
    let text = format!(
        "[gateway]\nid = \"gw\"\n[[tsdb]]\nurl = \"{url}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\n\
         batch_lines = {BATCH}\nbatch_age = \"1s\"\nretry_min = \"50ms\"\nretry_max = \"200ms\"\n\
         buffer = {{ max_bytes = \"16MiB\" }}\n"
    );
    let cfg = GatewayConfig::parse(Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    cfg.tsdb.into_iter().next().unwrap()
}

/// Reading number `n`: value `n` at `BASE_MS + n` seconds, so a stored sample names itself.
fn reading(point: hazard_gateway::model::PointId, n: usize) -> Reading {
    Reading {
        point,
        ts: Timestamp::from_millis(BASE_MS + n as i64 * 1000),
        value: n as f64,
        quality: Quality::Good,
    }
}

fn count(metrics: &Metrics, name: &str, labels: &[&str]) -> u64 {
    metric(&metrics.render(), name, labels) as u64
}

/// Hands one batch of numbered readings to the store and waits until its intake has either
/// buffered it or counted it lost.
async fn push(store: &Store, metrics: &Metrics, point: hazard_gateway::model::PointId, next: &mut usize) {
    let batch: Vec<Reading> = (*next..*next + BATCH).map(|n| reading(point, n)).collect();
    *next += BATCH;
    store.tx.send(SinkItem::Readings(batch)).await.unwrap();
    let want = *next as u64;
    wait_for("the intake to buffer or count the batch", WAIT, || {
        let done = count(metrics, "hazard_tsdb_lines_buffered_total", &[])
            + count(metrics, "hazard_tsdb_lines_dropped_total", &["reason=\"buffer_error\""]);
        async move { (done == want).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffer_on_a_full_disk_sends_only_what_it_wrote_and_counts_the_rest() {
    let disk = SmallDisk::mount(512);
    // Ballast leaves the buffer about 128 KiB: a dozen batches.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 384 * 1024]).expect("write ballast");
    let mut vm = VictoriaMetrics::start();
    vm.stop();
    let mut table = PointTable::default();
    table
        .insert(PointMeta {
            name: "MHS-001/GT-101".into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: "gas".into(),
            hazard_source: Some("MHS-001".into()),
            range: None,
            description: None,
        })
        .unwrap();
    let point = table.id_of("MHS-001/GT-101").unwrap();
    let metrics = Metrics::new();
    let store = Store::start(
        &spec(&vm.url()),
        "gw",
        &table,
        disk.path(),
        clock::system(),
        metrics.tsdb.clone(),
    )
    .expect("store starts");

    // The store is down: the buffer fills the disk, then every write fails.
    let mut next = 0;
    let failed = |m: &Metrics| count(m, "hazard_tsdb_lines_dropped_total", &["reason=\"buffer_error\""]);
    for _ in 0..200 {
        push(&store, &metrics, point, &mut next).await;
        if failed(&metrics) >= 3 * BATCH as u64 {
            break;
        }
    }
    let lost_to_full_disk = failed(&metrics);
    assert!(
        lost_to_full_disk >= 3 * BATCH as u64,
        "the disk never filled ({next} readings pushed)"
    );

    // Space returns while the store is still down: the buffer takes batches again at once,
    // without a restart.
    std::fs::remove_file(&ballast).expect("remove ballast");
    for _ in 0..10 {
        push(&store, &metrics, point, &mut next).await;
    }
    assert_eq!(
        failed(&metrics),
        lost_to_full_disk,
        "writes succeed again once space returns"
    );

    // The store returns: the backlog drains; each buffered line is either sent or counted.
    vm.restart();
    let buffered = count(&metrics, "hazard_tsdb_lines_buffered_total", &[]);
    wait_for("the backlog to drain", WAIT, || {
        let sent = count(&metrics, "hazard_tsdb_lines_sent_total", &[]);
        let corrupt = count(
            &metrics,
            "hazard_tsdb_lines_dropped_total",
            &["reason=\"buffer_corrupt\""],
        );
        async move { (sent + corrupt >= buffered).then_some(()) }
    })
    .await;
    store.shutdown().await;

    let corrupt = count(
        &metrics,
        "hazard_tsdb_lines_dropped_total",
        &["reason=\"buffer_corrupt\""],
    );
    let mut stored: BTreeMap<i64, f64> = BTreeMap::new();
    for (labels, ts, vals) in vm.export("{__name__=~\".+\"}").await {
        let name = labels["__name__"].as_str().unwrap_or_default();
        assert!(
            matches!(name, "hazard_reading_value" | "hazard_reading_quality") && labels["point"] == "MHS-001/GT-101",
            "only the readings sent reach the store, not {labels}"
        );
        if name == "hazard_reading_quality" {
            assert!(
                ts.iter()
                    .all(|t| (*t - BASE_MS) % 1000 == 0 && (0..next as i64).contains(&((*t - BASE_MS) / 1000)))
            );
            continue;
        }
        for (t, v) in ts.into_iter().zip(vals) {
            let n = (t - BASE_MS) / 1000;
            assert!(
                (t - BASE_MS) % 1000 == 0 && (0..next as i64).contains(&n) && v == n as f64,
                "a sample that was never a reading reached the store: ts {t}, value {v}"
            );
            stored.insert(n, v);
        }
    }
    let total = next as u64;
    assert_eq!(
        stored.len() as u64 + lost_to_full_disk + corrupt,
        total,
        "every reading is stored or counted lost: {} stored, {lost_to_full_disk} lost to the full disk, {corrupt} corrupt, of {total}",
        stored.len()
    );
    assert_eq!(
        count(&metrics, "hazard_tsdb_lines_sent_total", &[]),
        stored.len() as u64,
        "lines counted sent are the lines the store holds"
    );
}

/// Milliseconds since the epoch of reading 0 of the MQTT stream: an hour ago, whole seconds,
/// so history keeps every reading raw.
fn stream_base_ms() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| (clock::system().now().as_millis() / 1000 - 3600) * 1000)
}

/// Reading `i` of a point: value `i`, device time `base + i` ms.
fn seq_payload(i: u64) -> String {
    format!(r#"{{"v": {i}, "t": {}}}"#, stream_base_ms() + i as i64)
}

const POINTS: [&str; 2] = ["a", "b"];

fn stream_config(broker: &support::Mosquitto, vm: &VictoriaMetrics, port: u16) -> String {
    format!(
        r#"
[gateway]
id = "durable-gw"
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

[[tsdb]]
name = "vm"
url = "{}"
api = "v2"
org = "o"
bucket = "b"
retry_min = "50ms"
retry_max = "500ms"
"#,
        broker.addr(),
        vm.url()
    )
}

/// Sequence numbers of `point` in the gateway's history (distinct device times, read through
/// the API so packed blocks and the open tail both count), each checked against its value.
async fn in_history(gw: &support::GatewayProcess, point: &str) -> std::collections::BTreeSet<u64> {
    let far = stream_base_ms() + 86_400_000;
    let h = gw
        .get_json(&format!(
            "/api/v1/points/seq%2F{point}/history?resolution=raw&from=0&to={far}&limit=1000000"
        ))
        .await;
    let rows = h["readings"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .filter_map(|r| {
            let i = (r["ts_ms"].as_i64()? - stream_base_ms()) as u64;
            assert_eq!(r["value"].as_f64(), Some(i as f64), "history row {r}");
            Some(i)
        })
        .collect()
}

/// Sequence numbers of `point` in VictoriaMetrics, each checked against its value.
async fn in_store(vm: &VictoriaMetrics, point: &str) -> std::collections::BTreeSet<u64> {
    let mut out = std::collections::BTreeSet::new();
    for (_, ts, vals) in vm
        .export(&format!("hazard_reading_value{{point=\"seq/{point}\"}}"))
        .await
    {
        for (t, v) in ts.into_iter().zip(vals) {
            let i = (t - stream_base_ms()) as u64;
            assert_eq!(v, i as f64, "store sample at {t}");
            out.insert(i);
        }
    }
    out
}

/// A QoS 1 publisher on a persistent session; its event loop retransmits until the broker
/// acknowledges. Returns the client and a count of PUBACKs received.
fn publisher(port: u16) -> (rumqttc::AsyncClient, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let mut opts = rumqttc::MqttOptions::new("durable-publisher", "127.0.0.1", port);
    opts.set_keep_alive(std::time::Duration::from_secs(5));
    opts.set_clean_session(false);
    opts.set_inflight(100);
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 1000);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = acked.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    });
    (client, acked)
}

/// Publishes reading 0 of each point until the gateway has it: its persistent session and
/// subscription exist from then on, so the broker keeps what it misses while it is down.
async fn subscribed(client: &rumqttc::AsyncClient, gw: &support::GatewayProcess) {
    wait_for("the gateway's subscription", WAIT, || async {
        for p in POINTS {
            client
                .publish(
                    format!("test/seq/{p}"),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    seq_payload(0),
                )
                .await
                .expect("publish queued");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut all = true;
        for p in POINTS {
            all &= in_history(gw, p).await.contains(&0);
        }
        all.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_mid_stream_loses_no_acknowledged_reading() {
    const N: u64 = 3000;
    let broker = support::Mosquitto::start_deep_queue();
    let vm = VictoriaMetrics::start();
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, stream_config(&broker, &vm, port)).unwrap();
    let mut gw = support::GatewayProcess::start(&config, port).await;
    let (client, acked) = publisher(broker.port);

    subscribed(&client, &gw).await;
    let probes = acked.load(std::sync::atomic::Ordering::SeqCst);

    // The stream: about 1,000 messages a second, in a task of its own.
    let stream = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 1..N {
                for p in POINTS {
                    client
                        .publish(
                            format!("test/seq/{p}"),
                            rumqttc::QoS::AtLeastOnce,
                            false,
                            seq_payload(i),
                        )
                        .await
                        .expect("publish queued");
                }
                if i % 10 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        })
    };

    // Three SIGKILLs, each once the running gateway has taken a few hundred messages.
    for kill in 0..3 {
        wait_for("the gateway to take messages", WAIT, || async {
            let text = gw.try_metrics().await?;
            (metric(&text, "hazard_mqtt_in_messages_total", &[]) >= 400.0).then_some(())
        })
        .await;
        gw.kill();
        drop(gw);
        gw = support::GatewayProcess::start(&config, port).await;
        eprintln!("SIGKILL {} done, gateway restarted", kill + 1);
    }
    stream.await.expect("publisher task");
    wait_for("the broker to acknowledge every published message", WAIT, || {
        let n = acked.load(std::sync::atomic::Ordering::SeqCst);
        async move { (n >= probes + (N - 1) * POINTS.len() as u64).then_some(()) }
    })
    .await;

    // Every message reached the broker, so every reading must arrive: acknowledged ones were
    // durable before their PUBACK, the rest are delivered again by the broker.
    let want: std::collections::BTreeSet<u64> = (0..N).collect();
    for p in POINTS {
        let h = wait_for(&format!("every reading of seq/{p} in history"), 2 * WAIT, || async {
            let h = in_history(&gw, p).await;
            (h == want).then_some(h)
        })
        .await;
        assert_eq!(h.len() as u64, N);
    }
    for p in POINTS {
        let missing = wait_for(&format!("every reading of seq/{p} in the store"), 2 * WAIT, || async {
            let s = in_store(&vm, p).await;
            let missing: Vec<u64> = want.difference(&s).copied().collect();
            missing.is_empty().then_some(missing)
        })
        .await;
        assert!(missing.is_empty());
    }
}

/// Fills `dir`'s filesystem to the last byte (bounded: at most 64 MiB written); returns the
/// ballast file to delete when space is to come back.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write as _;
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).expect("create ballast");
    let chunk = vec![0u8; 4096];
    for _ in 0..16 * 1024 {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // Whatever a partial chunk could still take.
    while f.write(&[0u8]).is_ok_and(|n| n == 1) {}
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_raised_while_the_journal_cannot_write_is_journaled_later_and_survives_a_restart() {
    let disk = SmallDisk::mount(8 * 1024);
    let sim = support::simulator("ai4-gas-lel", None).await;
    sim.pin("ch1", 1.0);
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"journal-gw\"\ndata_dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [ops]\nmin_free_disk = \"1MiB\"\n\
             [[devices]]\nname = \"g\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"100ms\"\n\
             [[rules]]\nname = \"ch1\"\npoints = \"g/ch1\"\nthreshold = {{ high = 25.0 }}\n",
            disk.path().join("data").display(),
            sim.local_addr()
        ),
    )
    .unwrap();
    let mut gw = support::GatewayProcess::start(&config, port).await;
    let ready = |gw: &support::GatewayProcess| {
        let r = gw.http.get(format!("{}/readyz", gw.base)).send();
        async move {
            let r = r.await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.json::<serde_json::Value>().await.ok()?))
        }
    };
    wait_for("ready", WAIT, || async { (ready(&gw).await?.0 == 200).then_some(()) }).await;

    let ballast = fill(disk.path());
    sim.pin("ch1", 60.0);
    let alarm = wait_for("the alarm shown although the journal cannot take it", WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .find(|a| a["alarm_id"] == "g/ch1:high")
            .cloned()
    })
    .await;
    assert_eq!(alarm["seq"], 0, "not journaled yet: {alarm}");
    let (_, body) = wait_for("unready with the journal as the reason", WAIT, || async {
        let (status, body) = ready(&gw).await?;
        (status == 503).then_some((status, body))
    })
    .await;
    assert!(
        body["problems"].as_array().is_some_and(|p| p.iter().any(|p| p
            .as_str()
            .is_some_and(|p| p.starts_with("alarm journal cannot be written")))),
        "{body}"
    );

    // Space returns: the held transition is journaled without a restart, and readiness returns.
    std::fs::remove_file(&ballast).expect("remove ballast");
    wait_for("ready again", WAIT, || async {
        (ready(&gw).await?.0 == 200).then_some(())
    })
    .await;
    gw.kill();
    drop(gw);
    let gw = support::GatewayProcess::start(&config, port).await;
    let journal = gw.get_json("/api/v1/alarms/history?alarm=g%2Fch1:high").await;
    let raised: Vec<&serde_json::Value> = journal
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["transition"] == "raised")
        .collect();
    assert_eq!(raised.len(), 1, "journaled once: {journal:#}");
    assert!(raised[0]["seq"].as_u64().is_some_and(|s| s > 0));
    let alarms = gw.get_json("/api/v1/alarms").await;
    let restored = alarms
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alarm_id"] == "g/ch1:high")
        .unwrap_or_else(|| panic!("alarm lost in the restart: {alarms:#}"));
    assert_eq!(restored["state"], "unack_active");
    assert_eq!(restored["raised_at"], alarm["raised_at"]);
}

/// Publishes readings `from..to` of every point, waiting for the broker's PUBACK count.
async fn publish_range(client: &rumqttc::AsyncClient, acked: &std::sync::atomic::AtomicU64, from: u64, to: u64) {
    let before = acked.load(std::sync::atomic::Ordering::SeqCst);
    for i in from..to {
        for p in POINTS {
            client
                .publish(
                    format!("test/seq/{p}"),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    seq_payload(i),
                )
                .await
                .expect("publish queued");
        }
    }
    let want = before + (to - from) * POINTS.len() as u64;
    wait_for("the broker to acknowledge the range", WAIT, || {
        let n = acked.load(std::sync::atomic::Ordering::SeqCst);
        async move { (n >= want).then_some(()) }
    })
    .await;
}

/// The whole gateway, fed numbered QoS 1 readings through a real Mosquitto, with its data
/// directory on a small filesystem that fills while the store is down: each reading ends in
/// history or in history's loss counter, and in the store or in the store's loss counters,
/// exactly; nothing corrupt reaches the store; writing resumes when space returns, without a
/// restart, and both losses are logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_while_the_store_is_down_loses_only_counted_readings() {
    const N: u64 = 1500;
    let disk = SmallDisk::mount(24 * 1024);
    let broker = support::Mosquitto::start_deep_queue();
    let mut vm = VictoriaMetrics::start();
    vm.stop();
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = dir.path().join("gateway.toml");
    let text = stream_config(&broker, &vm, port).replace(
        "data_dir = \"data\"",
        &format!(
            "data_dir = \"{}\"\n[ops]\nmin_free_disk = \"1MiB\"",
            disk.path().join("data").display()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let mut gw = support::GatewayProcess::start(&config, port).await;
    let (client, acked) = publisher(broker.port);
    subscribed(&client, &gw).await;

    // A third with room, a third on a full disk, a third after space returns.
    publish_range(&client, &acked, 1, N / 3).await;
    let ballast = fill(disk.path());
    publish_range(&client, &acked, N / 3, 2 * N / 3).await;
    let m = gw.metrics().await;
    let history_lost = metric(&m, "hazard_history_readings_dropped_total", &[]);
    let buffer_lost = metric(&m, "hazard_tsdb_lines_dropped_total", &["reason=\"buffer_error\""]);
    assert!(
        history_lost > 0.0 && buffer_lost > 0.0,
        "the disk filled: {history_lost} {buffer_lost}"
    );
    std::fs::remove_file(&ballast).expect("remove ballast");
    publish_range(&client, &acked, 2 * N / 3, N).await;

    // The store returns and drains.
    vm.restart();
    let total = N * POINTS.len() as u64;
    let (stored, store_lost) = wait_for("the store's backlog drained", 2 * WAIT, || async {
        let m = gw.metrics().await;
        let lost = metric(&m, "hazard_tsdb_lines_dropped_total", &[]) as u64;
        let mut stored = 0;
        for p in POINTS {
            stored += in_store(&vm, p).await.len() as u64;
        }
        (stored + lost >= total).then_some((stored, lost))
    })
    .await;
    assert_eq!(
        stored + store_lost,
        total,
        "stored {stored} + counted lost {store_lost}"
    );
    let m = gw.metrics().await;
    let history_lost = metric(&m, "hazard_history_readings_dropped_total", &[]) as u64;
    let mut kept = 0;
    for p in POINTS {
        let h = in_history(&gw, p).await;
        // Readings after space returned are all there: writing resumed without a restart.
        assert!((2 * N / 3..N).all(|i| h.contains(&i)), "seq/{p}: history resumed");
        kept += h.len() as u64;
    }
    eprintln!(
        "of {total} readings: store {stored} + {store_lost} counted lost, history {kept} + {history_lost} counted lost"
    );
    assert_eq!(
        kept + history_lost,
        total,
        "in history {kept} + counted lost {history_lost}"
    );
    for p in POINTS {
        let s = in_store(&vm, p).await;
        assert!((2 * N / 3..N).all(|i| s.contains(&i)), "seq/{p}: the store resumed");
        assert!(s.iter().all(|i| *i < N), "nothing but published readings in the store");
    }
    gw.signal_and_wait("TERM");
    let log = gw.stderr();
    assert!(
        log.contains("History write failed; readings lost"),
        "history loss logged"
    );
    assert!(log.to_lowercase().contains("buffer"), "buffer loss logged:\n{log}");
}
