//! Store-level tests of the history file: both tiers through a real SQLite file, retention,
//! and the upgrade of a layout-1 file.

use std::time::Duration;

use rusqlite::{Connection, params};

use super::*;
use crate::model::{PointId, PointKind, PointMeta, PointTable, Quality, Reading};
use crate::sinks::history::HistorySettings;

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

fn all_kept_writer(path: &std::path::Path, points: &PointTable) -> HistoryWriter {
    let settings = HistorySettings {
        deadband_percent: 0.0,
        ..HistorySettings::default()
    };
    HistoryWriter::new(
        HistoryStore::open(path, points).unwrap(),
        HistoryPolicy::new(&settings, points),
    )
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

fn as_rows(readings: &[Reading]) -> Vec<HistoryRow> {
    readings
        .iter()
        .map(|r| HistoryRow {
            ts_ms: r.ts.as_millis(),
            value: r.value.is_finite().then_some(r.value),
            quality: r.quality,
        })
        .collect()
}

const OVERLAPPING_BLOCKS: &str = "SELECT COUNT(*) FROM raw_blocks a JOIN raw_blocks b
    ON a.point = b.point AND a.first_ts < b.first_ts AND a.last_ts >= b.first_ts";

#[test]
fn packed_blocks_and_the_tail_read_back_as_every_kept_reading_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let points = table(&["a", "b"]);
    let ids: Vec<PointId> = points.iter().map(|(id, _)| id).collect();
    let mut w = all_kept_writer(&path, &points);
    // The reference: what an independent filter keeps, and every reading for the minutes.
    let policy = HistoryPolicy::new(
        &HistorySettings {
            deadband_percent: 0.0,
            ..HistorySettings::default()
        },
        &points,
    );
    let mut filter = policy::RawFilter::default();
    let mut kept: Vec<Reading> = Vec::new();
    let mut all: Vec<Reading> = Vec::new();
    // Three hours at 1 s, a batch a minute; a comm fault of 10 s, steady stretches.
    for minute in 0..180 {
        let batch: Vec<Reading> = (minute * 60..minute * 60 + 60)
            .flat_map(|s| {
                ids.iter().enumerate().map(move |(i, p)| match s {
                    5000..5010 => reading(*p, s, f64::NAN, Quality::CommFault),
                    7000..7300 => reading(*p, s, 4.5, Quality::Good),
                    _ => reading(
                        *p,
                        s,
                        ((s + 31 * i as i64) as f64 * 0.37).sin() * 7.0 + 10.0,
                        Quality::Good,
                    ),
                })
            })
            .collect();
        for r in &batch {
            if filter.admit(&policy, r).is_some() {
                kept.push(*r);
            }
        }
        all.extend_from_slice(&batch);
        w.ingest(&[batch], at(minute * 60 + 60)).unwrap();
    }
    assert!(count(&path, "SELECT COUNT(*) FROM raw_blocks") > 100);
    assert!(count(&path, "SELECT COUNT(*) FROM minute_blocks") > 4);
    let tail = count(&path, "SELECT COUNT(*) FROM raw_readings");
    assert!(tail > 0 && tail < 2 * 256, "{tail} rows left in the tail");
    // Crash: the writer goes without a flush; every kept reading was committed.
    drop(w);
    let reader = HistoryReader::open(&path, Duration::from_secs(48 * 3600)).unwrap();
    for p in &ids {
        let name = points.meta(*p).name().to_string();
        let want = as_rows(&kept.iter().filter(|r| r.point == *p).copied().collect::<Vec<_>>());
        assert_eq!(reader.query(&name, at(0), at(20_000), 100_000).unwrap(), want, "{name}");
        // Paging by `from` = last row + 1 ms returns the same rows.
        let mut paged = Vec::new();
        let mut from = at(0);
        for _ in 0..1000 {
            let page = reader.query(&name, from, at(20_000), 777).unwrap();
            let Some(last) = page.last() else { break };
            from = Timestamp::from_millis(last.ts_ms + 1);
            paged.extend(page);
        }
        assert_eq!(paged, want, "{name} paged");
        // A range inside blocks: only its rows, in order.
        let inner: Vec<_> = want
            .iter()
            .filter(|r| (at(1234).as_millis()..=at(5678).as_millis()).contains(&r.ts_ms))
            .cloned()
            .collect();
        assert_eq!(reader.query(&name, at(1234), at(5678), 100_000).unwrap(), inner);
        assert_eq!(
            reader.count_raw(&name, at(1234), at(5678), 100).unwrap(),
            100,
            "counted up to the cap"
        );
        assert_eq!(reader.latest(&name).unwrap(), Some(at(180 * 60 - 1)));

        // Minutes from blocks and tail equal the aggregates of every reading.
        let mut rollups = rollup::Rollups::default();
        let mut closed = Vec::new();
        for r in all.iter().filter(|r| r.point == *p) {
            rollups.add(r, &mut closed);
        }
        let got = reader.minutes(&name, at(0), at(20_000), 10_000).unwrap();
        // The last minute is still open (it closes with the clock), so it is not stored.
        assert_eq!(got.len(), closed.len(), "{name}");
        for (g, m) in got.iter().zip(closed.iter().map(|c| c.stats)) {
            assert_eq!(
                (g.ts_ms, g.min, g.max, g.avg, g.count, g.bad_count),
                (m.minute * 60_000, m.min, m.max, m.avg(), m.count, m.bad)
            );
        }
        let page = reader.minutes(&name, at(600), at(20_000), 50).unwrap();
        assert_eq!(page.first().map(|m| m.ts_ms), Some(at(600).as_millis()));
        assert_eq!(page.len(), 50);
    }
    assert_eq!(count(&path, OVERLAPPING_BLOCKS), 0);
}

#[test]
fn a_reading_repeated_after_its_block_was_packed_replaces_the_packed_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let points = table(&["a"]);
    let p = points.id_of("a").unwrap();
    let mut w = all_kept_writer(&path, &points);
    let batch: Vec<Reading> = (0..600).map(|s| reading(p, s, s as f64 * 0.5, Quality::Good)).collect();
    w.ingest(&[batch], at(600)).unwrap();
    assert!(count(&path, "SELECT COUNT(*) FROM raw_blocks") > 0);
    let reader = HistoryReader::open(&path, Duration::from_secs(48 * 3600)).unwrap();
    let before = reader.query("a", at(0), at(10_000), 10_000).unwrap();
    // A device re-sends the reading of second 100 with another value (a new writer, as after
    // a restart), and a reading from the middle of a packed block arrives late.
    drop(w);
    let mut w = all_kept_writer(&path, &points);
    w.ingest(
        &[vec![
            reading(p, 100, -1.0, Quality::OutOfRange),
            Reading {
                ts: at(200).plus(Duration::from_millis(500)),
                ..reading(p, 0, 7.0, Quality::Good)
            },
        ]],
        at(601),
    )
    .unwrap();
    let mut want = before.clone();
    want[100] = HistoryRow {
        ts_ms: at(100).as_millis(),
        value: Some(-1.0),
        quality: Quality::OutOfRange,
    };
    want.insert(
        201,
        HistoryRow {
            ts_ms: at(200).as_millis() + 500,
            value: Some(7.0),
            quality: Quality::Good,
        },
    );
    assert_eq!(
        reader.query("a", at(0), at(10_000), 10_000).unwrap(),
        want,
        "read before repacking"
    );
    // Two hours on, the tail is due by age and packs into the blocks it overlaps.
    w.ingest(&[vec![reading(p, 7800, 1.0, Quality::Good)]], at(7800))
        .unwrap();
    assert_eq!(count(&path, "SELECT COUNT(*) FROM raw_readings"), 0);
    want.push(HistoryRow {
        ts_ms: at(7800).as_millis(),
        value: Some(1.0),
        quality: Quality::Good,
    });
    assert_eq!(
        reader.query("a", at(0), at(10_000), 10_000).unwrap(),
        want,
        "read after repacking"
    );
    assert_eq!(count(&path, OVERLAPPING_BLOCKS), 0);
}

/// The layout-2 schema exactly as the previous version created it.
const LAYOUT_2: &str = "
    PRAGMA journal_mode = WAL;
    CREATE TABLE points (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    CREATE TABLE raw_readings (
        point INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL,
        PRIMARY KEY (point, ts)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_minute (
        point INTEGER NOT NULL, minute INTEGER NOT NULL, min REAL, max REAL,
        sum REAL NOT NULL, count INTEGER NOT NULL, bad INTEGER NOT NULL,
        PRIMARY KEY (point, minute)
    ) WITHOUT ROWID;
    PRAGMA user_version = 2;
";

#[test]
fn a_layout_2_file_is_read_at_once_and_packed_in_steps_without_losing_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(LAYOUT_2).unwrap();
        conn.execute_batch("INSERT INTO points (id, name) VALUES (1, 'a'), (2, 'gone')")
            .unwrap();
        for point in [1, 2] {
            for s in 0..6000i64 {
                let (value, q) = if s % 500 == 7 {
                    (None, 1)
                } else {
                    (Some(s as f64 / 8.0), 0)
                };
                conn.execute(
                    "INSERT INTO raw_readings VALUES (?1, ?2, ?3, ?4)",
                    params![point, at(s).as_nanos(), value, q],
                )
                .unwrap();
            }
            for m in 0..100i64 {
                conn.execute(
                    "INSERT INTO rollup_minute VALUES (?1, ?2, ?3, ?4, ?5, 60, ?6)",
                    params![
                        point,
                        at(m * 60).as_nanos() / 60_000_000_000,
                        -(m as f64),
                        m as f64,
                        m as f64 * 3.0,
                        m % 2
                    ],
                )
                .unwrap();
            }
        }
    }
    let window = Duration::from_secs(48 * 3600);
    let read = |reader: &HistoryReader, name: &str| {
        (
            reader.query(name, at(0), at(6000), 100_000).unwrap(),
            reader.minutes(name, at(0), at(6000), 10_000).unwrap(),
        )
    };
    // What the previous version answered, read through the raw tables as it did.
    let expected: Vec<_> = ["a", "gone"]
        .iter()
        .map(|name| {
            let conn = Connection::open(&path).unwrap();
            let raw: Vec<HistoryRow> = conn
                .prepare(
                    "SELECT ts, value, quality FROM raw_readings JOIN points ON id = point WHERE name = ?1 ORDER BY ts",
                )
                .unwrap()
                .query_map([name], |r| {
                    Ok(HistoryRow {
                        ts_ms: r.get::<_, i64>(0)? / 1_000_000,
                        value: r.get(1)?,
                        quality: schema::quality_of(r.get(2)?).unwrap(),
                    })
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (raw.len(), raw)
        })
        .collect();
    assert_eq!(expected[0].0, 6000);

    let points = table(&["a"]);
    let a = points.id_of("a").unwrap();
    let mut w = writer(&path, &points);
    let reader = HistoryReader::open(&path, window).unwrap();
    let at_upgrade: Vec<_> = ["a", "gone"].iter().map(|n| read(&reader, n)).collect();
    for (i, name) in ["a", "gone"].iter().enumerate() {
        assert_eq!(at_upgrade[i].0, expected[i].1, "{name}: raw right after the upgrade");
        assert_eq!(at_upgrade[i].1.len(), 100);
        assert_eq!(
            (
                at_upgrade[i].1[3].min,
                at_upgrade[i].1[3].avg,
                at_upgrade[i].1[3].bad_count
            ),
            (Some(-3.0), Some(0.15), 1)
        );
    }
    assert_eq!(count(&path, "PRAGMA user_version"), schema::LAYOUT);

    // The old rows are packed in steps as readings keep arriving hours later.
    let mut steps = 0;
    while count(
        &path,
        "SELECT COUNT(*) FROM raw_readings WHERE ts < ?1"
            .replace("?1", &at(6000).as_nanos().to_string())
            .as_str(),
    ) > 0
    {
        steps += 1;
        assert!(steps < 100, "the old rows are never packed");
        w.ingest(
            &[vec![reading(a, 10_000 + steps, steps as f64, Quality::Good)]],
            at(10_000 + steps),
        )
        .unwrap();
    }
    assert!(count(&path, "SELECT COUNT(*) FROM raw_blocks") >= 2 * 6000 / 1000);
    assert_eq!(
        count(
            &path,
            &format!(
                "SELECT COUNT(*) FROM rollup_minute WHERE minute < {}",
                at(6000).as_nanos() / 60_000_000_000
            )
        ),
        0
    );
    for (i, name) in ["a", "gone"].iter().enumerate() {
        assert_eq!(read(&reader, name), at_upgrade[i], "{name}: after packing");
    }
}

#[test]
fn the_tails_of_a_point_removed_from_the_config_are_still_packed_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let before = table(&["gone", "kept"]);
    let gone = before.id_of("gone").unwrap();
    {
        let mut store = HistoryStore::open(&path, &before).unwrap();
        let rows: Vec<Reading> = (0..10).map(|s| reading(gone, s, s as f64, Quality::Good)).collect();
        let packed = store.write(&rows, &[], at(20)).unwrap();
        assert_eq!(packed, Packed::default(), "ten fresh rows are not due yet");
    }
    // The new point table has no "gone", and its points' indexes no longer follow the file's
    // ids ("kept" was the second point entered).
    let after = table(&["kept", "new"]);
    let kept = after.id_of("kept").unwrap();
    let mut store = HistoryStore::open(&path, &after).unwrap();
    let rows: Vec<Reading> = (0..5).map(|s| reading(kept, s, s as f64, Quality::Good)).collect();
    let packed = store.write(&rows, &[], at(2 * 3600)).unwrap();
    assert_eq!(packed.rows, 15, "both tails are an hour old: packed");
    assert_eq!(count(&path, "SELECT COUNT(*) FROM raw_readings"), 0);
    let reader = HistoryReader::open(&path, Duration::from_secs(48 * 3600)).unwrap();
    let read = |name: &str| -> Vec<i64> {
        reader
            .query(name, at(0), at(60), 100)
            .unwrap()
            .iter()
            .map(|r| (r.ts_ms - T0_MS) / 1000)
            .collect()
    };
    assert_eq!(read("gone"), (0..10).collect::<Vec<_>>());
    assert_eq!(read("kept"), (0..5).collect::<Vec<_>>());
}
