//! The read side of the history file, for the API: raw rows, minute rows, and the choice
//! between them. Each tier is read from its blocks and its tail together (see [`super::blocks`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::blocks::{self, Minutes, Raw};
use serde::Serialize;

use super::rollup::NANOS_PER_MINUTE;
use super::schema;
use super::{StoreError, sqlite_err, tier_err};
use crate::model::{Quality, Timestamp};

/// One stored reading, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryRow {
    /// Milliseconds since the epoch.
    pub ts_ms: i64,
    /// Value, absent when the reading had none (comm fault, decode error).
    pub value: Option<f64>,
    /// Quality name.
    pub quality: Quality,
}

/// One minute of one point, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MinuteRow {
    /// Start of the minute, milliseconds since the epoch.
    pub ts_ms: i64,
    /// Smallest good value; absent when no reading of the minute was good.
    pub min: Option<f64>,
    /// Mean of the good values.
    pub avg: Option<f64>,
    /// Largest good value.
    pub max: Option<f64>,
    /// Good readings in the minute.
    pub count: u64,
    /// Readings in the minute that were not good.
    pub bad_count: u64,
}

/// Which table a history answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Raw readings as kept by the deadband/heartbeat policy.
    Raw,
    /// Per-minute min/avg/max/count.
    Minute,
}

impl Resolution {
    /// Parses the API's `resolution` parameter.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "raw" => Some(Resolution::Raw),
            "minute" => Some(Resolution::Minute),
            _ => None,
        }
    }
}

/// The automatic choice: raw when the range lies inside the raw window and its raw rows fit
/// in one answer, else minutes.
pub fn auto_resolution(
    from: Timestamp,
    now: Timestamp,
    raw_window: Duration,
    raw_rows: u64,
    limit: usize,
) -> Resolution {
    if from >= now.minus(raw_window) && raw_rows <= limit as u64 {
        Resolution::Raw
    } else {
        Resolution::Minute
    }
}

/// A read connection to the history file.
#[derive(Debug)]
pub struct HistoryReader {
    path: PathBuf,
    raw_window: Duration,
    /// A std mutex: queries run in `spawn_blocking`, never across an await.
    conn: Mutex<Connection>,
}

impl HistoryReader {
    /// Opens a read connection to the file at `path` (the writer must have created it);
    /// `raw_window` is how far back raw rows are kept.
    pub fn open(path: &Path, raw_window: Duration) -> Result<Self, StoreError> {
        let conn = super::open_sqlite(path, super::CacheBudget::Reader)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            raw_window,
            conn: Mutex::new(conn),
        })
    }

    /// How far back raw rows are kept.
    pub fn raw_window(&self) -> Duration {
        self.raw_window
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn point_id(conn: &Connection, point: &str) -> rusqlite::Result<Option<i64>> {
        conn.query_row("SELECT id FROM points WHERE name = ?1", [point], |r| r.get(0))
            .optional()
    }

    /// Picks the resolution for `[from, to]`: `requested` if given, else [`auto_resolution`].
    pub fn choose(
        &self,
        point: &str,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
        requested: Option<Resolution>,
        limit: usize,
    ) -> Result<Resolution, StoreError> {
        if let Some(r) = requested {
            return Ok(r);
        }
        if from < now.minus(self.raw_window) {
            return Ok(Resolution::Minute);
        }
        let rows = self.count_raw(point, from, to, limit.saturating_add(1))?;
        Ok(auto_resolution(from, now, self.raw_window, rows, limit))
    }

    /// Raw rows of `point` in `[from, to]`, counted up to `cap`.
    pub fn count_raw(&self, point: &str, from: Timestamp, to: Timestamp, cap: usize) -> Result<u64, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.lock();
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let mut n: u64 = 0;
        if let Some(id) = Self::point_id(&conn, point).map_err(&err)? {
            n += blocks::read::<Raw>(&conn, id, from.as_nanos(), to.as_nanos(), cap as usize)
                .map_err(tier_err(&self.path))?
                .len() as u64;
        }
        if schema::has_legacy(&conn).map_err(&err)? {
            n += conn
                .query_row(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM readings WHERE point = ?1 AND ts BETWEEN ?2 AND ?3 LIMIT ?4)",
                    params![point, from.as_nanos(), to.as_nanos(), cap],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(&err)? as u64;
        }
        Ok(n)
    }

    /// Raw readings of `point` in `[from, to]`, oldest first, at most `limit`; rows of a
    /// layout-1 file that have not aged out yet are included.
    pub fn query(
        &self,
        point: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.lock();
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        if let Some(id) = Self::point_id(&conn, point).map_err(&err)? {
            let samples =
                blocks::read::<Raw>(&conn, id, from.as_nanos(), to.as_nanos(), limit).map_err(tier_err(&self.path))?;
            out.extend(samples.into_iter().map(|s| (s.ts, s.value, s.quality)));
        }
        if schema::has_legacy(&conn).map_err(&err)? {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT ts, value, quality FROM readings WHERE point = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts LIMIT ?4",
                )
                .map_err(&err)?;
            let rows = stmt
                .query_map(params![point, from.as_nanos(), to.as_nanos(), lim], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<f64>>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(&err)?;
            for row in rows {
                let (ts, value, q) = row.map_err(&err)?;
                let quality = Quality::parse(&q).ok_or_else(|| self.bad_row(format!("unknown quality `{q}`")))?;
                out.push((ts, value, quality));
            }
            out.sort_by_key(|(ts, _, _)| *ts);
            out.truncate(limit);
        }
        Ok(out
            .into_iter()
            .map(|(ts, value, quality)| HistoryRow {
                ts_ms: Timestamp::from_nanos(ts).as_millis(),
                value,
                quality,
            })
            .collect())
    }

    /// Minutes of `point` that begin in `[from, to]` (from rounded down to its minute),
    /// oldest first, at most `limit`.
    pub fn minutes(
        &self,
        point: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<MinuteRow>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.lock();
        let Some(id) = Self::point_id(&conn, point).map_err(&err)? else {
            return Ok(Vec::new());
        };
        let first = from.as_nanos().div_euclid(NANOS_PER_MINUTE);
        let last = to.as_nanos().div_euclid(NANOS_PER_MINUTE);
        let minutes = blocks::read::<Minutes>(&conn, id, first, last, limit).map_err(tier_err(&self.path))?;
        Ok(minutes
            .into_iter()
            .map(|m| MinuteRow {
                ts_ms: m.minute.saturating_mul(60_000),
                min: m.min,
                avg: (m.count > 0).then(|| m.sum / m.count as f64),
                max: m.max,
                count: m.count,
                bad_count: m.bad,
            })
            .collect())
    }

    /// Timestamp of the newest raw reading of `point`, if any.
    pub fn latest(&self, point: &str) -> Result<Option<Timestamp>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.lock();
        let mut newest = None;
        if let Some(id) = Self::point_id(&conn, point).map_err(&err)? {
            newest = blocks::newest::<Raw>(&conn, id, "SELECT MAX(ts) FROM raw_readings WHERE point = ?1")
                .map_err(tier_err(&self.path))?;
        }
        if schema::has_legacy(&conn).map_err(&err)? {
            let old: Option<i64> = conn
                .query_row("SELECT MAX(ts) FROM readings WHERE point = ?1", [point], |r| r.get(0))
                .map_err(&err)?;
            newest = newest.max(old);
        }
        Ok(newest.map(Timestamp::from_nanos))
    }

    fn bad_row(&self, detail: String) -> StoreError {
        StoreError::BadRow {
            path: self.path.clone(),
            detail,
        }
    }
}
