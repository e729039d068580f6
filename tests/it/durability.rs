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
