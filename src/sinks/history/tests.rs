//! Store-level tests of the history file: both tiers through a real SQLite file, retention,
//! and the upgrade of a layout-1 file.

use std::time::Duration;

use rusqlite::{Connection, params};

use super::*;
use crate::config::HistorySettings;
use crate::model::{PointId, PointKind, PointMeta, PointTable, Quality, Reading};

/// 2023-11-14T22:13:20Z, on a minute boundary.
const T0_MS: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000;

fn table(names: &[&str]) -> PointTable {
    let mut t = PointTable::default();
    for n in names {
        t.insert(PointMeta {
            name: (*n).into(),
            unit: "m".into(),
            kind: PointKind::Level,
            device: "d".into(),
            hazard_source: None,
            range: Some((0.0, 20.0)),
            description: None,
        });
    }
    t
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0_MS + secs * 1000)
}

fn reading(point: PointId, secs: i64, value: f64, quality: Quality) -> Reading {
    Reading {
        point,
        ts: at(secs),
        value,
        quality,
    }
}

fn writer(path: &std::path::Path, points: &PointTable) -> HistoryWriter {
    // 0.5 % of a 20 m span: 0.1 m deadband; 60 s heartbeat.
    let policy = HistoryPolicy::new(&HistorySettings::default(), points);
    HistoryWriter::new(HistoryStore::open(path, points).unwrap(), policy)
}

#[test]
fn raw_keeps_changes_and_heartbeats_while_minutes_count_every_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let points = table(&["tank/level"]);
    let p = points.id_of("tank/level").unwrap();
    let mut w = writer(&path, &points);
    // Three minutes at 1 s: steady 5.0 with 0.04 m wobble, a step to 6.0 at 90 s, a comm
    // fault from 150 s to 154 s.
    let batch: Vec<Reading> = (0..180)
        .map(|s| match s {
            150..155 => reading(p, s, f64::NAN, Quality::CommFault),
            _ => {
                let base = if s < 90 { 5.0 } else { 6.0 };
                reading(p, s, base + if s % 2 == 0 { 0.04 } else { -0.04 }, Quality::Good)
            }
        })
        .collect();
    let done = w.ingest(&[batch], at(200)).unwrap();
    assert_eq!(done.readings, 180);
    let reader = HistoryReader::open(&path, Duration::from_secs(48 * 3600)).unwrap();
    let raw = reader.query("tank/level", at(0), at(300), 1000).unwrap();
    let kept: Vec<(i64, Quality)> = raw.iter().map(|r| ((r.ts_ms - T0_MS) / 1000, r.quality)).collect();
    assert_eq!(
        kept,
        [
            (0, Quality::Good),        // first
            (60, Quality::Good),       // heartbeat
            (90, Quality::Good),       // step beyond the deadband
            (150, Quality::CommFault), // quality change
            (155, Quality::Good),      // quality back
        ]
    );
    assert_eq!(done.raw, 5);
    let minutes = reader.minutes("tank/level", at(0), at(179), 100).unwrap();
    assert_eq!(minutes.len(), 3, "every minute closed: now is past the last one");
    let m0 = &minutes[0];
    assert_eq!((m0.ts_ms, m0.count, m0.bad_count), (T0_MS, 60, 0));
    assert_eq!((m0.min, m0.max), (Some(4.96), Some(5.04)));
    assert!((m0.avg.unwrap() - 5.0).abs() < 1e-9);
    let m1 = &minutes[1];
    assert_eq!((m1.min, m1.max, m1.count), (Some(4.96), Some(6.04), 60));
    let m2 = &minutes[2];
    assert_eq!((m2.count, m2.bad_count), (55, 5));
}

#[test]
fn a_minute_written_in_parts_across_a_restart_is_the_whole_minute() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let points = table(&["a"]);
    let p = points.id_of("a").unwrap();
    let mut w = writer(&path, &points);
    w.ingest(
        &[vec![
            reading(p, 1, 2.0, Quality::Good),
            reading(p, 2, 8.0, Quality::Good),
        ]],
        at(3),
    )
    .unwrap();
    assert_eq!(w.pending(), 2);
    w.flush().unwrap();
    drop(w);
    let mut w = writer(&path, &points);
    w.ingest(
        &[vec![
            reading(p, 30, 5.0, Quality::Good),
            reading(p, 31, f64::NAN, Quality::Stale),
        ]],
        at(120),
    )
    .unwrap();
    let reader = HistoryReader::open(&path, Duration::from_secs(3600)).unwrap();
    let m = reader.minutes("a", at(0), at(59), 10).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].min, m[0].avg, m[0].max, m[0].count, m[0].bad_count),
        (Some(2.0), Some(5.0), Some(8.0), 3, 1)
    );
}

#[test]
fn each_tier_is_pruned_on_its_own_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let points = table(&["a", "b"]);
    let ids: Vec<PointId> = points.iter().map(|(id, _)| id).collect();
    let mut w = writer(&path, &points);
    // One reading per point every 10 minutes for 5 hours, each a change.
    for step in 0..30 {
        let batch: Vec<Reading> = ids
            .iter()
            .map(|p| reading(*p, step * 600, step as f64, Quality::Good))
            .collect();
        w.ingest(&[batch], at(step * 600)).unwrap();
    }
    w.flush().unwrap();
    let now = at(30 * 600);
    let keep = Retention {
        raw: Duration::from_secs(3600),
        rollup: Duration::from_secs(3 * 3600),
    };
    let pruned = w.prune(now, keep).unwrap();
    // Raw: readings before now-1h (steps 0..=23 are older) go; minutes: steps 0..=11.
    assert_eq!(
        pruned,
        Pruned {
            raw: 2 * 24,
            minutes: 2 * 12,
            legacy: 0
        }
    );
    let reader = HistoryReader::open(&path, keep.raw).unwrap();
    let raw = reader.query("b", at(0), now, 1000).unwrap();
    assert_eq!(raw.first().map(|r| r.ts_ms), Some(at(24 * 600).as_millis()));
    let minutes = reader.minutes("b", at(0), now, 1000).unwrap();
    assert_eq!(minutes.first().map(|m| m.ts_ms), Some(at(12 * 600).as_millis()));
    assert_eq!(w.prune(now, keep).unwrap(), Pruned::default(), "nothing left to prune");
}

/// The layout-1 schema exactly as earlier versions created it.
const LAYOUT_1: &str = "
    PRAGMA journal_mode = WAL;
    CREATE TABLE IF NOT EXISTS readings (
        point   TEXT NOT NULL,
        ts      INTEGER NOT NULL,
        value   REAL,
        quality TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS readings_point_ts ON readings (point, ts);
    CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
";

/// Writes a layout-1 file: `n` readings a second apart per point, one comm fault each.
fn layout_1_file(path: &std::path::Path, names: &[&str], n: i64) -> Vec<(String, i64, Option<f64>, String)> {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(LAYOUT_1).unwrap();
    let mut rows = Vec::new();
    for name in names {
        for s in 0..n {
            let (value, q) = if s == 7 {
                (None, "comm_fault")
            } else {
                (Some(s as f64 * 0.5), "good")
            };
            conn.execute(
                "INSERT INTO readings (point, ts, value, quality) VALUES (?1, ?2, ?3, ?4)",
                params![name, at(s).as_nanos(), value, q],
            )
            .unwrap();
            rows.push((name.to_string(), at(s).as_millis(), value, q.to_string()));
        }
    }
    rows
}

#[test]
fn a_layout_1_file_opens_without_losing_a_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    // `gone` is in the old file but no longer configured: its history must stay readable.
    let old = layout_1_file(&path, &["a", "gone"], 150);
    let points = table(&["a", "new"]);
    let mut w = writer(&path, &points);
    let reader = HistoryReader::open(&path, Duration::from_secs(48 * 3600)).unwrap();
    for name in ["a", "gone"] {
        let got: Vec<_> = reader
            .query(name, at(0), at(1000), 10_000)
            .unwrap()
            .into_iter()
            .map(|r| (name.to_string(), r.ts_ms, r.value, r.quality.as_str().to_string()))
            .collect();
        let want: Vec<_> = old.iter().filter(|r| r.0 == name).cloned().collect();
        assert_eq!(got, want, "{name}");
    }
    // The old rows were rolled into exact minutes: 60 + 60 + 30 readings, one bad.
    let m = reader.minutes("gone", at(0), at(1000), 10).unwrap();
    assert_eq!(
        m.iter().map(|m| (m.count, m.bad_count)).collect::<Vec<_>>(),
        [(59, 1), (60, 0), (30, 0)]
    );
    assert_eq!((m[0].min, m[0].max), (Some(0.0), Some(29.5)));

    // New readings of `a` land in the new table and read back beside the old ones.
    let a = points.id_of("a").unwrap();
    w.ingest(&[vec![reading(a, 200, 99.0, Quality::Good)]], at(200))
        .unwrap();
    let rows = reader.query("a", at(0), at(1000), 10_000).unwrap();
    assert_eq!(rows.len(), 151);
    assert_eq!(rows.last().map(|r| r.value), Some(Some(99.0)));
    assert_eq!(reader.latest("gone").unwrap(), Some(at(149)));

    // Opening again neither repeats the roll-up nor loses anything.
    drop(w);
    let mut w = writer(&path, &points);
    let again = reader.minutes("gone", at(0), at(1000), 10).unwrap();
    assert_eq!(again, m);

    // Once past the raw window the old table empties and is dropped; its minutes remain.
    let keep = Retention {
        raw: Duration::from_secs(60),
        rollup: Duration::from_secs(90 * 86_400),
    };
    let pruned = w.prune(at(400), keep).unwrap();
    assert_eq!(pruned.legacy, 300);
    assert!(!schema::has_legacy(&Connection::open(&path).unwrap()).unwrap());
    assert_eq!(reader.query("gone", at(0), at(1000), 10).unwrap(), []);
    assert_eq!(reader.minutes("gone", at(0), at(1000), 10).unwrap(), m);
}

#[test]
fn the_api_picks_raw_only_for_a_recent_range_that_fits_one_answer() {
    let now = at(100_000);
    let window = Duration::from_secs(48 * 3600);
    assert_eq!(auto_resolution(at(90_000), now, window, 500, 1000), Resolution::Raw);
    assert_eq!(auto_resolution(at(90_000), now, window, 1001, 1000), Resolution::Minute);
    let old = now.minus(window + Duration::from_secs(1));
    assert_eq!(auto_resolution(old, now, window, 0, 1000), Resolution::Minute);
}

#[test]
fn an_unknown_point_has_an_empty_history_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _w = writer(&path, &table(&["a"]));
    let reader = HistoryReader::open(&path, Duration::from_secs(60)).unwrap();
    assert_eq!(reader.query("nope", at(0), at(10), 10).unwrap(), []);
    assert_eq!(reader.minutes("nope", at(0), at(10), 10).unwrap(), []);
    assert_eq!(reader.latest("nope").unwrap(), None);
    assert_eq!(
        reader.choose("nope", at(0), at(10), at(10), None, 10).unwrap(),
        Resolution::Raw
    );
}
