//! The embedded history store: raw readings in SQLite with a retention window.
//!
//! Design: one writer thread owns a write connection and takes reading batches from a
//! bounded channel; the rules engine hands batches on with `try_send`, so a slow disk can
//! cost history (counted in `hazard_history_readings_dropped_total`) but never delays an alarm.
//! Readers (the API) use their own connection; WAL mode lets them read while the writer writes.
//! A crash loses at most the batches still in the channel; SQLite's journal keeps the file whole.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, error};

use crate::clock::SharedClock;
use crate::model::{PointTable, Quality, Timestamp};
use crate::sources::ReadingBatch;
use crate::telemetry::{Metrics, ReasonLabel};

/// Errors of the SQLite-backed stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("{path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored row holds something this version cannot read.
    #[error("{path}: unreadable row: {detail}")]
    BadRow {
        /// Database file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

pub(crate) fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS readings (
        point   TEXT NOT NULL,
        ts      INTEGER NOT NULL,
        value   REAL,
        quality TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS readings_point_ts ON readings (point, ts);
    CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
";

/// The writer side of the history store.
#[derive(Debug)]
pub struct HistoryStore {
    path: PathBuf,
    conn: Connection,
}

impl HistoryStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(sqlite_err(path))?;
        conn.execute_batch(SCHEMA).map_err(sqlite_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            conn,
        })
    }

    /// Writes batches in one transaction; returns the readings written.
    pub fn insert(&mut self, points: &PointTable, batches: &[ReadingBatch]) -> Result<usize, StoreError> {
        let err = sqlite_err(&self.path);
        let tx = self.conn.transaction().map_err(&err)?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO readings (point, ts, value, quality) VALUES (?1, ?2, ?3, ?4)")
                .map_err(&err)?;
            for r in batches.iter().flatten() {
                let value = r.value.is_finite().then_some(r.value);
                let name = &points.meta(r.point).name;
                stmt.execute(params![name.as_ref(), r.ts.as_nanos(), value, r.quality.as_str()])
                    .map_err(&err)?;
                n += 1;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(n)
    }

    /// Deletes readings older than `before`; returns how many.
    pub fn prune(&mut self, before: Timestamp) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM readings WHERE ts < ?1", params![before.as_nanos()])
            .map_err(sqlite_err(&self.path))
    }
}

/// One stored reading, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    /// Milliseconds since the epoch.
    pub ts_ms: i64,
    /// Value, absent when the reading had none (comm fault, decode error).
    pub value: Option<f64>,
    /// Quality name.
    pub quality: Quality,
}

/// The read side of the history store, for the API.
#[derive(Debug)]
pub struct HistoryReader {
    path: PathBuf,
    /// A std mutex: queries run in `spawn_blocking`, never across an await.
    conn: Mutex<Connection>,
}

impl HistoryReader {
    /// Opens a read connection to the store at `path` (the writer must have created it).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(sqlite_err(path))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Readings of `point` in `[from, to]`, oldest first, at most `limit`.
    pub fn query(
        &self,
        point: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached(
                "SELECT ts, value, quality FROM readings WHERE point = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts LIMIT ?4",
            )
            .map_err(&err)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![point, from.as_nanos(), to.as_nanos(), limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Option<f64>>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (ts, value, quality) = row.map_err(&err)?;
            let quality = Quality::parse(&quality).ok_or_else(|| StoreError::BadRow {
                path: self.path.clone(),
                detail: format!("unknown quality `{quality}`"),
            })?;
            out.push(HistoryRow {
                ts_ms: Timestamp::from_nanos(ts).as_millis(),
                value,
                quality,
            });
        }
        Ok(out)
    }

    /// Timestamp of the newest reading of `point`, if any.
    pub fn latest(&self, point: &str) -> Result<Option<Timestamp>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("SELECT MAX(ts) FROM readings WHERE point = ?1", params![point], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()
        .map(|v| v.flatten().map(Timestamp::from_nanos))
        .map_err(sqlite_err(&self.path))
    }
}

/// Batches merged into one transaction at most.
const MAX_BATCHES_PER_TX: usize = 256;
/// How often old readings are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs the writer on its own thread until `rx` closes, then drains it and returns.
pub fn spawn_writer(
    mut store: HistoryStore,
    points: PointTable,
    mut rx: mpsc::Receiver<ReadingBatch>,
    clock: SharedClock,
    retention: Duration,
    metrics: Metrics,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || {
            let mut last_prune: Option<Timestamp> = None;
            while let Some(first) = rx.blocking_recv() {
                let mut batches = vec![first];
                while batches.len() < MAX_BATCHES_PER_TX {
                    match rx.try_recv() {
                        Ok(b) => batches.push(b),
                        Err(_) => break,
                    }
                }
                let count: usize = batches.iter().map(Vec::len).sum();
                match store.insert(&points, &batches) {
                    Ok(n) => {
                        metrics.history_written.inc_by(n as u64);
                    }
                    Err(e) => {
                        metrics
                            .history_dropped
                            .get_or_create(&ReasonLabel { reason: "write_error" })
                            .inc_by(count as u64);
                        error!(error = %e, readings = count, "History write failed; readings lost");
                    }
                }
                let now = clock.now();
                if last_prune.is_none_or(|t| now.since(t) >= PRUNE_EVERY) {
                    last_prune = Some(now);
                    match store.prune(now.minus(retention)) {
                        Ok(n) if n > 0 => debug!(deleted = n, "Pruned history past retention"),
                        Ok(_) => {}
                        Err(e) => error!(error = %e, "History prune failed"),
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PointKind, PointMeta, Reading};

    fn table() -> PointTable {
        let mut t = PointTable::default();
        t.insert(PointMeta {
            name: "p/1".into(),
            unit: "m".into(),
            kind: PointKind::Level,
            device: "d".into(),
            hazard_source: None,
            range: None,
            description: None,
        });
        t
    }

    #[test]
    fn readings_round_trip_and_prune_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let points = table();
        let id = points.id_of("p/1").unwrap();
        let mut store = HistoryStore::open(&path).unwrap();
        let batch: ReadingBatch = (0..10)
            .map(|i| Reading {
                point: id,
                ts: Timestamp::from_millis(1_000 * i),
                value: if i == 5 { f64::NAN } else { i as f64 },
                quality: if i == 5 { Quality::CommFault } else { Quality::Good },
            })
            .collect();
        assert_eq!(store.insert(&points, &[batch]).unwrap(), 10);
        let reader = HistoryReader::open(&path).unwrap();
        let rows = reader
            .query("p/1", Timestamp::from_millis(2_000), Timestamp::from_millis(6_000), 100)
            .unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[0],
            HistoryRow {
                ts_ms: 2_000,
                value: Some(2.0),
                quality: Quality::Good
            }
        );
        assert_eq!(
            rows[3],
            HistoryRow {
                ts_ms: 5_000,
                value: None,
                quality: Quality::CommFault
            }
        );
        assert_eq!(store.prune(Timestamp::from_millis(4_000)).unwrap(), 4);
        assert_eq!(reader.latest("p/1").unwrap(), Some(Timestamp::from_millis(9_000)));
        assert_eq!(reader.latest("nope").unwrap(), None);
    }
}
