//! The embedded history through the API of a running gateway polling our Modbus simulator:
//! raw rows kept by the deadband/heartbeat policy, minute rollups, the raw-or-minute choice,
//! and a history file of the previous layout read beside the new one. Time is a manual
//! clock: readings are stamped with it, so minutes close when the test moves it.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use hazard_gateway::clock::ManualClock;
use hazard_gateway::model::Timestamp;
use serde_json::Value;
use support::{TestGateway, WAIT, simulator, wait_for};

/// 2024-03-01T08:00:10Z: ten seconds into a minute.
const T_MS: i64 = 1_709_280_010_000;
const POINT: &str = "tank-T101%2Flevel";

fn config(tank: &str) -> String {
    format!(
        r#"
[gateway]
id = "history-gw"

[api]
listen = "127.0.0.1:0"

[history]
heartbeat = "60s"
deadband_percent = 0.5

[[devices]]
name = "tank-T101"
profile = "tank-ltp"
transport = {{ tcp = "{tank}" }}
interval = "100ms"
"#
    )
}

/// A history file as the previous version wrote it: one row a second for the level, from
/// three hours to two hours before `T`.
fn seed_layout_1(dir: &std::path::Path) {
    let conn = rusqlite::Connection::open(dir.join("history.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE readings (point TEXT NOT NULL, ts INTEGER NOT NULL, value REAL, quality TEXT NOT NULL);
         CREATE INDEX readings_point_ts ON readings (point, ts);
         CREATE INDEX readings_ts ON readings (ts);",
    )
    .unwrap();
    let start = T_MS - 3 * 3_600_000;
    for s in 0..3600i64 {
        conn.execute(
            "INSERT INTO readings VALUES ('tank-T101/level', ?1, ?2, 'good')",
            rusqlite::params![(start + s * 1000) * 1_000_000, 5.0 + (s % 60) as f64 * 0.01],
        )
        .unwrap();
    }
}

async fn history(gw: &TestGateway, query: &str) -> Value {
    gw.get_json(&format!("/api/v1/points/{POINT}/history?{query}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_keeps_changes_rolls_up_minutes_and_reads_the_old_layout() {
    let sim = simulator("tank-ltp", None).await;
    assert!(sim.pin("level", 12.5));
    let dir = tempfile::tempdir().unwrap();
    seed_layout_1(dir.path());
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T_MS)));
    let gw = TestGateway::start_with(&config(&sim.local_addr().to_string()), dir, clock.clone()).await;

    // Many polls at T of a pinned level: raw history keeps one row.
    let written = |gw: &TestGateway| gw.metric_handles().history_written.get();
    wait_for("30 readings in history", WAIT, || async {
        (written(&gw) >= 30).then_some(())
    })
    .await;
    let around_t = format!("from={}&to={}", T_MS - 60_000, T_MS + 120_000);
    let h = history(&gw, &around_t).await;
    assert_eq!(h["resolution"], "raw", "{h:#}");
    let rows = h["readings"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{h:#}");
    assert_eq!(
        (rows[0]["ts_ms"].as_i64(), rows[0]["value"].as_f64()),
        (Some(T_MS), Some(12.5))
    );

    // 61 s later the heartbeat keeps another row, and the minute of T is closed.
    clock.advance(Duration::from_secs(61));
    wait_for("the minute of T rolled up", WAIT, || async {
        (gw.metric_handles().history_minute_rows.get() >= 1).then_some(())
    })
    .await;
    let before = written(&gw);
    wait_for("more readings after the jump", WAIT, || async {
        (written(&gw) > before).then_some(())
    })
    .await;
    let h = history(&gw, &around_t).await;
    let ts: Vec<_> = h["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ts_ms"].as_i64())
        .collect();
    assert_eq!(ts, [Some(T_MS), Some(T_MS + 61_000)], "{h:#}");
    let h = history(&gw, &format!("{around_t}&resolution=minute")).await;
    assert_eq!(h["resolution"], "minute");
    assert!(h.get("readings").is_none(), "{h:#}");
    let m = &h["minutes"][0];
    assert_eq!(m["ts_ms"].as_i64(), Some(T_MS - 10_000), "{h:#}");
    assert_eq!(
        (m["min"].as_f64(), m["avg"].as_f64(), m["max"].as_f64()),
        (Some(12.5), Some(12.5), Some(12.5))
    );
    // 30 readings of three points were written before the jump, all stamped T: one reading
    // of this point, repeated (a reading is its point and time, as raw history keeps it once,
    // so a repeat never counts twice towards completeness).
    assert_eq!(m["count"], 1, "the repeats of one reading counted once: {m}");
    assert_eq!(m["bad_count"], 0);

    // The old file's hour: too many raw rows for the limit, so minutes (rolled up from the
    // old rows at start); asked for raw, every old row.
    let old_hour = format!("from={}&to={}", T_MS - 3 * 3_600_000, T_MS - 2 * 3_600_000 - 1);
    let h = history(&gw, &format!("{old_hour}&limit=1000")).await;
    assert_eq!(h["resolution"], "minute", "{h:#}");
    let minutes = h["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 61, "60 whole minutes and the 10 s of the next");
    assert_eq!(minutes.iter().map(|m| m["count"].as_u64().unwrap()).sum::<u64>(), 3600);
    assert_eq!(
        (minutes[1]["min"].as_f64(), minutes[1]["max"].as_f64()),
        (Some(5.0), Some(5.59))
    );
    let h = history(&gw, &format!("{old_hour}&limit=5000&resolution=raw")).await;
    assert_eq!(h["resolution"], "raw");
    assert_eq!(h["readings"].as_array().unwrap().len(), 3600);

    // A range reaching past the 48 h raw window is answered from minutes.
    let h = history(&gw, &format!("from={}&to={T_MS}", T_MS - 49 * 3_600_000)).await;
    assert_eq!(h["resolution"], "minute");
    assert_eq!(h["raw_window_ms"], 48 * 3_600_000);

    let resp = gw
        .http
        .get(format!("{}/api/v1/points/{POINT}/history?resolution=hourly", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body = resp.text().await.unwrap();
    assert!(body.contains("resolution") && body.contains("hourly"), "{body}");
}
