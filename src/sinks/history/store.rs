//! The writer side of the history file: point ids, tail rows, packing into blocks and
//! pruning.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::blocks::{self, Minutes, Raw, Tails};
use super::rollup::{MinuteAgg, NANOS_PER_MINUTE};
use super::schema::{self, UPSERT_MINUTE, quality_code};
use super::{StoreError, sqlite_err, tier_err};
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

/// Tail rows packed into blocks by one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Packed {
    /// Tail rows moved into blocks (both tiers).
    pub rows: usize,
    /// Blocks written (both tiers).
    pub blocks: usize,
}

/// Tail rows packed at most per write, so a backlog (an upgraded layout-2 file) is packed
/// in steps without holding up ingest.
const PACK_BUDGET: usize = 20_000;

/// The writer's connection to the history file.
#[derive(Debug)]
pub struct HistoryStore {
    path: PathBuf,
    conn: Connection,
    /// Database id of each point, by [`crate::model::PointId::index`].
    ids: Vec<i64>,
    legacy: bool,
    /// Tail statistics of each tier, by point index.
    raw_tail: Tails,
    minute_tail: Tails,
}

impl HistoryStore {
    /// Opens (creating or upgrading) the file at `path` and enters every point of `points`.
    pub fn open(path: &Path, points: &PointTable) -> Result<Self, StoreError> {
        let err = sqlite_err(path);
        let mut conn = super::open_sqlite(path, super::CacheBudget::Writer)?;
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
                    add.execute([meta.name().as_ref()]).map_err(&err)?;
                    ids.push(get.query_row([meta.name().as_ref()], |r| r.get(0)).map_err(&err)?);
                }
            }
            tx.commit().map_err(&err)?;
        }
        let legacy = schema::has_legacy(&conn).map_err(&err)?;
        let mut store = Self {
            path: path.to_path_buf(),
            conn,
            ids,
            legacy,
            raw_tail: Tails::default(),
            minute_tail: Tails::default(),
        };
        store.reload_tails()?;
        Ok(store)
    }

    /// Reads the tails' statistics afresh (at start, and after a failed write).
    fn reload_tails(&mut self) -> Result<(), StoreError> {
        let err = sqlite_err(&self.path);
        self.raw_tail = blocks::tail_stats::<Raw>(&self.conn, &self.ids).map_err(&err)?;
        self.minute_tail = blocks::tail_stats::<Minutes>(&self.conn, &self.ids).map_err(&err)?;
        Ok(())
    }

    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes kept raw readings and closed minutes into the tails and packs the tails due at
    /// `now` into blocks, in one transaction. A raw reading with the same point and timestamp
    /// as a stored one replaces it; a minute merges with its stored part.
    pub fn write(&mut self, raw: &[Reading], minutes: &[MinuteAgg], now: Timestamp) -> Result<Packed, StoreError> {
        let out = self.write_tx(raw, minutes, now);
        if out.is_err() {
            // The transaction rolled back: the tails are as they were before it.
            if let Err(e) = self.reload_tails() {
                tracing::error!(error = %e, "History tail statistics could not be read again");
            }
        }
        out
    }

    fn write_tx(&mut self, raw: &[Reading], minutes: &[MinuteAgg], now: Timestamp) -> Result<Packed, StoreError> {
        let err = sqlite_err(&self.path);
        let terr = tier_err(&self.path);
        let tx = self.conn.transaction().map_err(&err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO raw_readings (point, ts, value, quality) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(&err)?;
            for r in raw {
                let value = r.value.is_finite().then_some(r.value);
                let i = r.point.index();
                put.execute(params![self.ids[i], r.ts.as_nanos(), value, quality_code(r.quality)])
                    .map_err(&err)?;
                self.raw_tail.at(i).add(r.ts.as_nanos());
            }
            let mut up = tx.prepare_cached(UPSERT_MINUTE).map_err(&err)?;
            for agg in minutes {
                let i = agg.point.index();
                let m = &agg.stats;
                self.minute_tail.at(i).add(m.minute);
                up.execute(params![
                    self.ids[i],
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
        let now = now.as_nanos();
        let (rows, n) = blocks::pack_due::<Raw>(&tx, &mut self.raw_tail, &self.ids, now, PACK_BUDGET).map_err(&terr)?;
        let (mrows, mn) = blocks::pack_due::<Minutes>(
            &tx,
            &mut self.minute_tail,
            &self.ids,
            now,
            PACK_BUDGET.saturating_sub(rows),
        )
        .map_err(&terr)?;
        tx.commit().map_err(&err)?;
        Ok(Packed {
            rows: rows + mrows,
            blocks: n + mn,
        })
    }

    /// Removes raw samples older than `raw_before` and minutes that began before
    /// `rollup_before`, point by point along the primary keys: tail rows and whole blocks are
    /// deleted, the rest of a block that straddles the cutoff is hidden by the stored horizon.
    /// The layout-1 table goes by the raw window too, and is dropped once empty.
    pub fn prune(&mut self, raw_before: Timestamp, rollup_before: Timestamp) -> Result<Pruned, StoreError> {
        let err = sqlite_err(&self.path);
        let terr = tier_err(&self.path);
        let minute = rollup_before.as_nanos().div_euclid(NANOS_PER_MINUTE);
        let raw_cut = raw_before.as_nanos();
        let mut out = Pruned::default();
        let tx = self.conn.unchecked_transaction().map_err(&err)?;
        let (raw_h, minute_h) = (
            blocks::horizon::<Raw>(&tx).map_err(&err)?,
            blocks::horizon::<Minutes>(&tx).map_err(&err)?,
        );
        let ids: Vec<i64> = {
            let mut all = tx.prepare("SELECT id FROM points").map_err(&err)?;
            all.query_map([], |r| r.get(0))
                .map_err(&err)?
                .collect::<Result<_, _>>()
                .map_err(&err)?
        };
        for id in ids {
            if raw_cut > raw_h {
                out.raw += blocks::prune_point::<Raw>(&tx, id, raw_cut, raw_h).map_err(&terr)?;
            }
            if minute > minute_h {
                out.minutes += blocks::prune_point::<Minutes>(&tx, id, minute, minute_h).map_err(&terr)?;
            }
        }
        blocks::set_horizon::<Raw>(&tx, raw_cut).map_err(&err)?;
        blocks::set_horizon::<Minutes>(&tx, minute).map_err(&err)?;
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
        drop(terr);
        // Rows below the cutoffs are gone; the exact oldest is found at the next pack.
        self.raw_tail.cut(raw_cut);
        self.minute_tail.cut(minute);
        if dropped {
            self.legacy = false;
            tracing::info!(path = %self.path.display(), "Layout-1 history aged out; its table is dropped");
        }
        Ok(out)
    }
}
