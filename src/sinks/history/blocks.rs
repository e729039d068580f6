//! The two tiers as "tail + blocks": rows arrive one by one in a small tail table (the
//! layout-2 tables `raw_readings` and `rollup_minute`), and the writer packs each point's tail
//! into encoded blocks (see [`super::codec`]) once it holds about a block's worth or its oldest
//! row has waited long enough. Reads merge both; retention drops whole blocks and hides the
//! rest of a block behind a stored horizon.
//!
//! Design: a pack reads a point's oldest tail rows, merges any stored block they overlap
//! (late or repeated readings: for raw the later write wins on equal timestamps, for minutes
//! the parts merge), writes the new blocks and deletes the packed rows, all inside the
//! writer's transaction, so a crash leaves either the rows or the blocks, never both or
//! neither. Blocks of one point never overlap, so a point's blocks in key order are its
//! samples in time order. A block is closed near 900 bytes: several share a 4 KiB page, none
//! spills onto an overflow page, and a read decodes little beyond the range it asked for.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::codec::{self, Block, CodecError, MinuteSample, RawSample};
use super::rollup::NANOS_PER_MINUTE;
use super::schema::quality_of;

/// A block is closed once its blob reaches this many bytes.
const TARGET_BYTES: usize = 900;
/// Rows packed at most per point per pack, so upgrading a large layout-2 file goes in steps.
const MAX_PACK_ROWS: usize = 4096;

/// What goes wrong reading or packing a tier (the store adds the path).
#[derive(Debug, thiserror::Error)]
pub(super) enum TierError {
    /// SQLite refused.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row or block cannot be read.
    #[error("{0}")]
    Bad(String),
}

fn bad_block(table: &str, point: i64, first: i64, e: CodecError) -> TierError {
    TierError::Bad(format!("{table} block of point {point} at {first}: {e}"))
}

/// One tier's tables, block rules and sample type.
pub(super) trait Tier {
    type Sample: Copy;
    /// Table of blocks.
    const BLOCKS: &'static str;
    /// `history_meta` key of the retention horizon.
    const HORIZON: &'static str;
    /// Widest key span of one block (so a range read knows how far back to look).
    const SPAN: i64;
    /// A point's tail is packed once it holds this many rows...
    const PACK_ROWS: u64;
    /// ...or once its oldest row is this far (in key units) behind `now`.
    const PACK_AGE: i64;
    /// `point, key` tail rows in `[?2, ?3]`, oldest first, at most `?4`.
    const TAIL_RANGE: &'static str;
    /// Deletes a point's tail rows up to `?2`.
    const TAIL_DELETE_UPTO: &'static str;
    /// Deletes a point's tail rows before `?2`.
    const TAIL_DELETE_BEFORE: &'static str;
    /// Per point: tail rows and oldest key.
    const TAIL_STATS: &'static str;
    /// A point's tail rows and oldest tail key.
    const TAIL_OLDEST: &'static str;
    /// Blocks of a point with first key in `[?2, ?3]` and last key >= `?4`, oldest first.
    const BLOCKS_RANGE: &'static str;
    /// Inserts `(point, first, last, n, data)`.
    const BLOCK_INSERT: &'static str;
    /// Deletes the block `(point, first)`.
    const BLOCK_DELETE: &'static str;
    /// Blocks of a point with first key before `?2`.
    const BLOCKS_BEFORE: &'static str;
    /// Newest last key of a point's blocks.
    const BLOCKS_NEWEST: &'static str;

    /// The key of `now` in this tier's units.
    fn now_key(now_nanos: i64) -> i64;
    fn key(s: &Self::Sample) -> i64;
    /// Folds a later-written `newer` of the same key into `into`.
    fn combine(into: &mut Self::Sample, newer: &Self::Sample);
    fn tail_row(r: &Row<'_>) -> Result<Self::Sample, TierError>;
    fn encode(samples: &[Self::Sample]) -> Vec<Block>;
    fn decode(blob: &[u8]) -> Result<Vec<Self::Sample>, CodecError>;
}

/// Kept raw readings: key = timestamp in ns.
#[derive(Debug)]
pub(super) struct Raw;

/// Minute rollups: key = minute since the epoch.
#[derive(Debug)]
pub(super) struct Minutes;

impl Tier for Raw {
    type Sample = RawSample;
    const BLOCKS: &'static str = "raw_blocks";
    const HORIZON: &'static str = "raw_horizon";
    const SPAN: i64 = 3600 * 1_000_000_000;
    const PACK_ROWS: u64 = 128;
    const PACK_AGE: i64 = 3600 * 1_000_000_000;
    const TAIL_RANGE: &'static str = "SELECT ts, value, quality FROM raw_readings
        WHERE point = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts LIMIT ?4";
    const TAIL_DELETE_UPTO: &'static str = "DELETE FROM raw_readings WHERE point = ?1 AND ts <= ?2";
    const TAIL_DELETE_BEFORE: &'static str = "DELETE FROM raw_readings WHERE point = ?1 AND ts < ?2";
    const TAIL_STATS: &'static str = "SELECT point, COUNT(*), MIN(ts) FROM raw_readings GROUP BY point";
    const TAIL_OLDEST: &'static str = "SELECT COUNT(*), MIN(ts) FROM raw_readings WHERE point = ?1";
    const BLOCKS_RANGE: &'static str = "SELECT first_ts, last_ts, n, data FROM raw_blocks
        WHERE point = ?1 AND first_ts BETWEEN ?2 AND ?3 AND last_ts >= ?4 ORDER BY first_ts";
    const BLOCK_INSERT: &'static str =
        "INSERT INTO raw_blocks (point, first_ts, last_ts, n, data) VALUES (?1, ?2, ?3, ?4, ?5)";
    const BLOCK_DELETE: &'static str = "DELETE FROM raw_blocks WHERE point = ?1 AND first_ts = ?2";
    const BLOCKS_BEFORE: &'static str =
        "SELECT first_ts, last_ts, n, data FROM raw_blocks WHERE point = ?1 AND first_ts < ?2 ORDER BY first_ts";
    const BLOCKS_NEWEST: &'static str =
        "SELECT last_ts FROM raw_blocks WHERE point = ?1 ORDER BY first_ts DESC LIMIT 1";

    fn now_key(now_nanos: i64) -> i64 {
        now_nanos
    }
    fn key(s: &RawSample) -> i64 {
        s.ts
    }
    fn combine(into: &mut RawSample, newer: &RawSample) {
        *into = *newer;
    }
    fn tail_row(r: &Row<'_>) -> Result<RawSample, TierError> {
        let code: i64 = r.get(2)?;
        Ok(RawSample {
            ts: r.get(0)?,
            value: r.get(1)?,
            quality: quality_of(code).ok_or_else(|| TierError::Bad(format!("unknown quality code {code}")))?,
        })
    }
    fn encode(samples: &[RawSample]) -> Vec<Block> {
        codec::encode_raw(samples, TARGET_BYTES, Self::SPAN)
    }
    fn decode(blob: &[u8]) -> Result<Vec<RawSample>, CodecError> {
        codec::decode_raw(blob)
    }
}

impl Tier for Minutes {
    type Sample = MinuteSample;
    const BLOCKS: &'static str = "minute_blocks";
    const HORIZON: &'static str = "minute_horizon";
    const SPAN: i64 = 60;
    const PACK_ROWS: u64 = 48;
    const PACK_AGE: i64 = 61;
    const TAIL_RANGE: &'static str = "SELECT minute, min, max, sum, count, bad FROM rollup_minute
        WHERE point = ?1 AND minute BETWEEN ?2 AND ?3 ORDER BY minute LIMIT ?4";
    const TAIL_DELETE_UPTO: &'static str = "DELETE FROM rollup_minute WHERE point = ?1 AND minute <= ?2";
    const TAIL_DELETE_BEFORE: &'static str = "DELETE FROM rollup_minute WHERE point = ?1 AND minute < ?2";
    const TAIL_STATS: &'static str = "SELECT point, COUNT(*), MIN(minute) FROM rollup_minute GROUP BY point";
    const TAIL_OLDEST: &'static str = "SELECT COUNT(*), MIN(minute) FROM rollup_minute WHERE point = ?1";
    const BLOCKS_RANGE: &'static str = "SELECT first_minute, last_minute, n, data FROM minute_blocks
        WHERE point = ?1 AND first_minute BETWEEN ?2 AND ?3 AND last_minute >= ?4 ORDER BY first_minute";
    const BLOCK_INSERT: &'static str =
        "INSERT INTO minute_blocks (point, first_minute, last_minute, n, data) VALUES (?1, ?2, ?3, ?4, ?5)";
    const BLOCK_DELETE: &'static str = "DELETE FROM minute_blocks WHERE point = ?1 AND first_minute = ?2";
    const BLOCKS_BEFORE: &'static str = "SELECT first_minute, last_minute, n, data FROM minute_blocks
        WHERE point = ?1 AND first_minute < ?2 ORDER BY first_minute";
    const BLOCKS_NEWEST: &'static str =
        "SELECT last_minute FROM minute_blocks WHERE point = ?1 ORDER BY first_minute DESC LIMIT 1";

    fn now_key(now_nanos: i64) -> i64 {
        now_nanos.div_euclid(NANOS_PER_MINUTE)
    }
    fn key(s: &MinuteSample) -> i64 {
        s.minute
    }
    fn combine(into: &mut MinuteSample, newer: &MinuteSample) {
        into.merge(newer);
    }
    fn tail_row(r: &Row<'_>) -> Result<MinuteSample, TierError> {
        Ok(MinuteSample {
            minute: r.get(0)?,
            min: r.get(1)?,
            max: r.get(2)?,
            sum: r.get(3)?,
            count: r.get::<_, i64>(4)?.max(0) as u64,
            bad: r.get::<_, i64>(5)?.max(0) as u64,
        })
    }
    fn encode(samples: &[MinuteSample]) -> Vec<Block> {
        codec::encode_minutes(samples, TARGET_BYTES, Self::SPAN)
    }
    fn decode(blob: &[u8]) -> Result<Vec<MinuteSample>, CodecError> {
        codec::decode_minutes(blob)
    }
}

/// A point's tail as the writer tracks it, to know when to pack without asking SQLite.
///
/// Kept for every point, so it is small: counts are `u32` (saturating; a point's tail never
/// nears four billion rows) and "no row" is the key `i64::MAX`, which is never old enough to
/// pack by age nor below a retention cutoff, so it acts exactly as no row would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TailStat {
    /// Rows in the tail (an upper bound: a merged minute part counts again).
    rows: u32,
    /// After a pack by row count that left everything in the tail (the rows did not fill a
    /// block yet), the row count at which to try again.
    recheck: u32,
    /// Oldest key in the tail, [`NO_ROW`] when empty.
    oldest: i64,
}

/// [`TailStat::oldest`] of an empty tail.
const NO_ROW: i64 = i64::MAX;

impl Default for TailStat {
    fn default() -> Self {
        Self {
            rows: 0,
            recheck: 0,
            oldest: NO_ROW,
        }
    }
}

impl TailStat {
    fn new(rows: i64, oldest: Option<i64>) -> Self {
        Self {
            rows: u32::try_from(rows.max(0)).unwrap_or(u32::MAX),
            recheck: 0,
            oldest: oldest.unwrap_or(NO_ROW),
        }
    }

    pub(super) fn add(&mut self, key: i64) {
        self.rows = self.rows.saturating_add(1);
        self.oldest = self.oldest.min(key);
    }

    /// After retention removed the rows below `cut`: the oldest is at least `cut` (the exact
    /// one is found at the next pack).
    fn cut(&mut self, cut: i64) {
        if self.oldest < cut {
            self.oldest = cut;
        }
    }

    /// Whether the tail is due: `Some(true)` when only by age (pack everything).
    fn due<T: Tier>(&self, now_key: i64) -> Option<bool> {
        let old = self.oldest != NO_ROW && now_key.saturating_sub(self.oldest) >= T::PACK_AGE;
        if old {
            Some(true)
        } else {
            (u64::from(self.rows) >= T::PACK_ROWS.max(u64::from(self.recheck))).then_some(false)
        }
    }
}

/// One tier's tail statistics for every point, by point index (the store's `ids`), and for
/// points the file holds that the point table no longer has (removed from the config since
/// their rows were written), which are packed and aged like the others.
#[derive(Debug, Clone, Default)]
pub(super) struct Tails {
    by_index: Vec<TailStat>,
    others: BTreeMap<i64, TailStat>,
}

/// Which statistics a database id's tail is kept in.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Index(usize),
    Other,
}

impl Tails {
    /// The statistics of the point with index `i`.
    pub(super) fn at(&mut self, i: usize) -> &mut TailStat {
        if self.by_index.len() <= i {
            self.by_index.resize(i + 1, TailStat::default());
        }
        &mut self.by_index[i]
    }

    fn slot(&mut self, slot: Slot, id: i64) -> &mut TailStat {
        match slot {
            Slot::Index(i) => self.at(i),
            Slot::Other => self.others.entry(id).or_default(),
        }
    }

    /// After retention removed every tail row below `cut`.
    pub(super) fn cut(&mut self, cut: i64) {
        for s in self.by_index.iter_mut().chain(self.others.values_mut()) {
            s.cut(cut);
        }
    }
}

/// Reads every point's tail statistics; `ids` are the database ids by point index.
pub(super) fn tail_stats<T: Tier>(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Tails> {
    let mut index: Vec<(i64, usize)> = ids.iter().copied().zip(0..).collect();
    index.sort_unstable();
    let mut tails = Tails {
        by_index: vec![TailStat::default(); ids.len()],
        others: BTreeMap::new(),
    };
    let mut stmt = conn.prepare(T::TAIL_STATS)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let stat = TailStat::new(r.get(1)?, r.get(2)?);
        match index.binary_search_by_key(&id, |&(id, _)| id) {
            Ok(at) => tails.by_index[index[at].1] = stat,
            Err(_) => {
                tails.others.insert(id, stat);
            }
        }
    }
    Ok(tails)
}

/// The horizon below which a tier's samples are hidden (retention), if any.
pub(super) fn horizon<T: Tier>(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM history_meta WHERE key = ?1", [T::HORIZON], |r| {
        r.get(0)
    })
    .optional()
    .map(|h| h.unwrap_or(i64::MIN))
}

/// Packs due tails in database id order; returns (rows packed, blocks written). Stops after
/// `budget` rows so one call never stalls ingest for long. `ids` are the database ids by
/// point index.
pub(super) fn pack_due<T: Tier>(
    conn: &Connection,
    tails: &mut Tails,
    ids: &[i64],
    now_nanos: i64,
    budget: usize,
) -> Result<(usize, usize), TierError> {
    let now_key = T::now_key(now_nanos);
    let mut due: Vec<(i64, Slot, bool)> = tails
        .by_index
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let id = *ids.get(i)?;
            s.due::<T>(now_key).map(|all| (id, Slot::Index(i), all))
        })
        .chain(
            tails
                .others
                .iter()
                .filter_map(|(id, s)| s.due::<T>(now_key).map(|all| (*id, Slot::Other, all))),
        )
        .collect();
    due.sort_unstable_by_key(|&(id, _, _)| id);
    let (mut rows, mut blocks) = (0, 0);
    for (point, slot, all) in due {
        if rows >= budget {
            break;
        }
        let (r, b) = pack_point::<T>(conn, point, all)?;
        rows += r;
        blocks += b;
        let (left, oldest): (i64, Option<i64>) = conn
            .prepare_cached(T::TAIL_OLDEST)?
            .query_row([point], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let stat = tails.slot(slot, point);
        *stat = TailStat::new(left, oldest);
        stat.recheck = if b == 0 {
            stat.rows.saturating_add(T::PACK_ROWS as u32 / 4)
        } else {
            0
        };
    }
    Ok((rows, blocks))
}

/// Packs one point's oldest tail rows. With `all` false a last block short of the target
/// size stays in the tail to grow. Returns (tail rows removed, blocks written).
fn pack_point<T: Tier>(conn: &Connection, point: i64, all: bool) -> Result<(usize, usize), TierError> {
    let lim = MAX_PACK_ROWS as i64;
    let tail: Vec<T::Sample> = {
        let mut stmt = conn.prepare_cached(T::TAIL_RANGE)?;
        let mut rows = stmt.query(params![point, i64::MIN, i64::MAX, lim])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(T::tail_row(r)?);
        }
        out
    };
    let (Some(first), Some(last)) = (tail.first(), tail.last()) else {
        return Ok((0, 0));
    };
    let (first, last) = (T::key(first), T::key(last));
    // Stored blocks this run overlaps (late or repeated samples): merged and rewritten.
    let mut merged: BTreeMap<i64, T::Sample> = BTreeMap::new();
    let mut overlapped = Vec::new();
    {
        let mut stmt = conn.prepare_cached(T::BLOCKS_RANGE)?;
        let mut rows = stmt.query(params![point, first.saturating_sub(T::SPAN), last, first])?;
        while let Some(r) = rows.next()? {
            let bfirst: i64 = r.get(0)?;
            let data: Vec<u8> = r.get(3)?;
            for s in T::decode(&data).map_err(|e| bad_block(T::BLOCKS, point, bfirst, e))? {
                merged.insert(T::key(&s), s);
            }
            overlapped.push(bfirst);
        }
    }
    let full = all || !overlapped.is_empty() || tail.len() == MAX_PACK_ROWS;
    for s in &tail {
        merged.entry(T::key(s)).and_modify(|m| T::combine(m, s)).or_insert(*s);
    }
    let samples: Vec<T::Sample> = merged.into_values().collect();
    let mut blocks = T::encode(&samples);
    if !full && blocks.last().is_some_and(|b| b.data.len() < TARGET_BYTES) {
        blocks.pop();
    }
    let Some(packed_to) = blocks.last().map(|b| b.last) else {
        return Ok((0, 0));
    };
    let mut del = conn.prepare_cached(T::BLOCK_DELETE)?;
    for f in overlapped {
        del.execute(params![point, f])?;
    }
    let mut ins = conn.prepare_cached(T::BLOCK_INSERT)?;
    for b in &blocks {
        ins.execute(params![point, b.first, b.last, b.n as i64, b.data])?;
    }
    let removed = conn
        .prepare_cached(T::TAIL_DELETE_UPTO)?
        .execute(params![point, packed_to.min(last)])?;
    Ok((removed, blocks.len()))
}

/// Samples of `point` with keys in `[from, to]`, oldest first, at most `limit`: blocks and
/// tail merged, nothing below the retention horizon.
pub(super) fn read<T: Tier>(
    conn: &Connection,
    point: i64,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<T::Sample>, TierError> {
    let from = from.max(horizon::<T>(conn)?);
    if from > to || limit == 0 {
        return Ok(Vec::new());
    }
    let mut merged: BTreeMap<i64, T::Sample> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(T::BLOCKS_RANGE)?;
        let mut rows = stmt.query(params![point, from.saturating_sub(T::SPAN), to, from])?;
        // Blocks are disjoint and in order: once `limit` samples are in, later blocks only
        // hold later samples.
        while merged.len() < limit
            && let Some(r) = rows.next()?
        {
            let first: i64 = r.get(0)?;
            let data: Vec<u8> = r.get(3)?;
            for s in T::decode(&data).map_err(|e| bad_block(T::BLOCKS, point, first, e))? {
                let k = T::key(&s);
                if (from..=to).contains(&k) {
                    merged.insert(k, s);
                }
            }
        }
    }
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(T::TAIL_RANGE)?;
    let mut rows = stmt.query(params![point, from, to, lim])?;
    while let Some(r) = rows.next()? {
        let s = T::tail_row(r)?;
        merged.entry(T::key(&s)).and_modify(|m| T::combine(m, &s)).or_insert(s);
    }
    Ok(merged.into_values().take(limit).collect())
}

/// The newest key of `point` in the tier above the horizon, if any.
pub(super) fn newest<T: Tier>(conn: &Connection, point: i64, tail_max: &str) -> Result<Option<i64>, TierError> {
    let block: Option<i64> = conn
        .prepare_cached(T::BLOCKS_NEWEST)?
        .query_row([point], |r| r.get(0))
        .optional()?;
    let tail: Option<i64> = conn.prepare_cached(tail_max)?.query_row([point], |r| r.get(0))?;
    let h = horizon::<T>(conn)?;
    Ok(block.max(tail).filter(|k| *k >= h))
}

/// Retention of one point: deletes tail rows and whole blocks before `cutoff`; samples of a
/// block that straddles it are hidden by the horizon the caller stores. Returns the samples
/// that left the tier (deleted, or newly hidden since `old_horizon`).
pub(super) fn prune_point<T: Tier>(
    conn: &Connection,
    point: i64,
    cutoff: i64,
    old_horizon: i64,
) -> Result<usize, TierError> {
    let mut gone = conn
        .prepare_cached(T::TAIL_DELETE_BEFORE)?
        .execute(params![point, cutoff])?;
    let mut expired = Vec::new();
    {
        let mut stmt = conn.prepare_cached(T::BLOCKS_BEFORE)?;
        let mut rows = stmt.query(params![point, cutoff])?;
        while let Some(r) = rows.next()? {
            let (first, last, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if first >= old_horizon && last < cutoff {
                gone += n.max(0) as usize;
            } else {
                let data: Vec<u8> = r.get(3)?;
                let samples = T::decode(&data).map_err(|e| bad_block(T::BLOCKS, point, first, e))?;
                gone += samples
                    .iter()
                    .filter(|s| (old_horizon..cutoff).contains(&T::key(s)))
                    .count();
            }
            if last < cutoff {
                expired.push(first);
            }
        }
    }
    let mut del = conn.prepare_cached(T::BLOCK_DELETE)?;
    for f in expired {
        del.execute(params![point, f])?;
    }
    Ok(gone)
}

/// Stores a tier's retention horizon.
pub(super) fn set_horizon<T: Tier>(conn: &Connection, h: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO history_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
        params![T::HORIZON, h],
    )
    .map(|_| ())
}
