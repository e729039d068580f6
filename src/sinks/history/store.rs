//! The writer side of the history file: point ids, raw rows, minute upserts and pruning.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::rollup::{MinuteAgg, NANOS_PER_MINUTE};
use super::schema::{self, UPSERT_MINUTE, quality_code};
use super::{StoreError, sqlite_err};
use crate::model::{PointTable, Reading, Timestamp};

/// Rows removed by one prune.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Raw rows past the raw window.
    pub raw: usize,
    /// Minute rows past the rollup window.
    pub minutes: usize,
    /// Layout-1 rows past the raw window.
    pub legacy: usize,
}

/// The writer's connection to the history file.
#[derive(Debug)]
pub struct HistoryStore {
    path: PathBuf,
    conn: Connection,
    /// Database id of each point, by [`crate::model::PointId::index`].
    ids: Vec<i64>,
    legacy: bool,
}

impl HistoryStore {
    /// Opens (creating or upgrading) the file at `path` and enters every point of `points`.
    pub fn open(path: &Path, points: &PointTable) -> Result<Self, StoreError> {
        let err = sqlite_err(path);
        let mut conn = Connection::open(path).map_err(&err)?;
        schema::prepare(&mut conn, path)?;
        let mut ids = Vec::with_capacity(points.len());
        {
            let tx = conn.transaction().map_err(&err)?;
            {
                let mut add = tx
                    .prepare("INSERT OR IGNORE INTO points (name) VALUES (?1)")
                    .map_err(&err)?;
                let mut get = tx.prepare("SELECT id FROM points WHERE name = ?1").map_err(&err)?;
                for (_, meta) in points.iter() {
                    add.execute([meta.name.as_ref()]).map_err(&err)?;
                    ids.push(get.query_row([meta.name.as_ref()], |r| r.get(0)).map_err(&err)?);
                }
            }
            tx.commit().map_err(&err)?;
        }
        let legacy = schema::has_legacy(&conn).map_err(&err)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn,
            ids,
            legacy,
        })
    }

    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes kept raw readings and closed minutes in one transaction. A raw reading with the
    /// same point and timestamp as a stored one replaces it.
    pub fn write(&mut self, raw: &[Reading], minutes: &[MinuteAgg]) -> Result<(), StoreError> {
        let err = sqlite_err(&self.path);
        let tx = self.conn.transaction().map_err(&err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO raw_readings (point, ts, value, quality) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(&err)?;
            for r in raw {
                let value = r.value.is_finite().then_some(r.value);
                put.execute(params![
                    self.ids[r.point.index()],
                    r.ts.as_nanos(),
                    value,
                    quality_code(r.quality)
                ])
                .map_err(&err)?;
            }
            let mut up = tx.prepare_cached(UPSERT_MINUTE).map_err(&err)?;
            for m in minutes {
                up.execute(params![
                    self.ids[m.point.index()],
                    m.minute,
                    m.min,
                    m.max,
                    m.sum,
                    i64::try_from(m.count).unwrap_or(i64::MAX),
                    i64::try_from(m.bad).unwrap_or(i64::MAX),
                ])
                .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)
    }

    /// Removes raw rows older than `raw_before` and minutes that began before
    /// `rollup_before`, point by point along the primary key (no extra time index needed).
    /// The layout-1 table goes by the raw window too, and is dropped once empty.
    pub fn prune(&mut self, raw_before: Timestamp, rollup_before: Timestamp) -> Result<Pruned, StoreError> {
        let err = sqlite_err(&self.path);
        let minute = rollup_before.as_nanos().div_euclid(NANOS_PER_MINUTE);
        let tx = self.conn.transaction().map_err(&err)?;
        let mut out = Pruned::default();
        {
            let mut raw = tx
                .prepare_cached("DELETE FROM raw_readings WHERE point = ?1 AND ts < ?2")
                .map_err(&err)?;
            let mut min = tx
                .prepare_cached("DELETE FROM rollup_minute WHERE point = ?1 AND minute < ?2")
                .map_err(&err)?;
            let mut all = tx.prepare("SELECT id FROM points").map_err(&err)?;
            let ids: Vec<i64> = all
                .query_map([], |r| r.get(0))
                .map_err(&err)?
                .collect::<Result<_, _>>()
                .map_err(&err)?;
            for id in ids {
                out.raw += raw.execute(params![id, raw_before.as_nanos()]).map_err(&err)?;
                out.minutes += min.execute(params![id, minute]).map_err(&err)?;
            }
        }
        let mut dropped = false;
        if self.legacy {
            out.legacy = tx
                .execute("DELETE FROM readings WHERE ts < ?1", [raw_before.as_nanos()])
                .map_err(&err)?;
            let empty: bool = tx
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM readings)", [], |r| r.get(0))
                .map_err(&err)?;
            if empty {
                tx.execute_batch("DROP TABLE readings").map_err(&err)?;
                dropped = true;
            }
        }
        tx.commit().map_err(&err)?;
        if dropped {
            self.legacy = false;
            tracing::info!(path = %self.path.display(), "Layout-1 history aged out; its table is dropped");
        }
        Ok(out)
    }
}
