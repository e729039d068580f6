//! The dead-letter file of refused batches stays bounded: at `dead_letter_max` it moves to
//! `.1`, and the next rotation deletes the older batches, counted and logged. The refusals
//! are real: InfluxDB 1.x answers 400 for points older than the retention policy.

use crate::support;

use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::model::{PointKind, PointMeta, Quality, Reading};
use hazard_gateway::sinks::tsdb::{self, SinkItem};
use support::{InfluxV1, LoneStore, WAIT, metric, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_rotate_the_dead_letter_file_at_its_cap_and_the_loss_is_counted() {
    let influx = InfluxV1::start();
    influx.query("", "CREATE DATABASE plant").await;
    influx
        .query("", "CREATE RETENTION POLICY short ON plant DURATION 1h REPLICATION 1")
        .await;
    let text = format!(
        "[gateway]\nid = \"gw\"\n[[tsdb]]\nurl = \"{}\"\napi = \"v1\"\ndb = \"plant\"\nretention_policy = \"short\"\n\
         batch_lines = 1000\nbatch_age = \"50ms\"\nconcurrency = 1\ndead_letter_max = \"64KiB\"\n",
        influx.url()
    );
    let LoneStore {
        store,
        point: id,
        metrics,
        dir,
    } = LoneStore::start(
        &text,
        PointMeta {
            name: "tailings/TP-1/level".into(),
            unit: "m".into(),
            kind: PointKind::Level,
            device: "radar-1".into(),
            hazard_source: Some("TP-1".into()),
            range: None,
            description: None,
        },
    );
    // Three batches of 1000 readings from two days ago (each about 100 KB of line protocol,
    // more than the cap): the first fills the file, the second moves it to `.1`, the third
    // moves the second there, deleting the first.
    let old = clock::system().now().minus(Duration::from_secs(48 * 3600));
    for b in 0..3u64 {
        let batch: Vec<Reading> = (0..1000u64)
            .map(|i| Reading {
                point: id,
                ts: old.plus(Duration::from_millis(b * 1000 + i)),
                value: (b * 1000 + i) as f64,
                quality: Quality::Good,
            })
            .collect();
        store.tx.send(SinkItem::Readings(batch)).await.unwrap();
        wait_for("the batch to be dead-lettered", WAIT, || {
            let n = metric(&metrics.render(), "hazard_tsdb_batches_dead_lettered_total", &[]);
            async move { (n >= (b + 1) as f64).then_some(()) }
        })
        .await;
    }
    store.shutdown().await;
    let m = metrics.render();
    assert_eq!(
        metric(&m, "hazard_tsdb_dead_letter_rotations_total", &["store=\"tsdb0\""]),
        2.0
    );
    let current = tsdb::dead_letter_file(dir.path(), "tsdb0");
    let previous = tsdb::dead_letter::rotated_path(&current);
    let (now, before) = (
        std::fs::read_to_string(&current).unwrap(),
        std::fs::read_to_string(&previous).unwrap(),
    );
    let first_value = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("hazard_reading,"))
            .and_then(|l| l.split("value=").nth(1))
            .and_then(|v| v.split([',', ' ']).next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(first_value(&before), Some(1000.0), "the second batch is in .1");
    assert_eq!(first_value(&now), Some(2000.0), "the third batch is current");
    assert_eq!(now.lines().filter(|l| l.starts_with("hazard_reading,")).count(), 1000);
    let discarded = metric(
        &m,
        "hazard_tsdb_dead_letter_discarded_bytes_total",
        &["store=\"tsdb0\""],
    );
    assert!(
        discarded > 64.0 * 1024.0 && discarded < 2.0 * now.len() as f64,
        "the first batch's bytes: {discarded}"
    );
}
