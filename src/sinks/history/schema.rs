//! The history file's layout, and the upgrade of a file written by an older version.
//!
//! Layout 3 (`PRAGMA user_version = 3`):
//! - `points(id, name)`: each point name once; rows refer to it by the integer `id`.
//! - `raw_blocks(point, first_ts, last_ts, n, data)` and `minute_blocks(point, first_minute,
//!   last_minute, n, data)`: each a run of one point's samples packed into one blob (see
//!   [`super::codec`]). A point's blocks never overlap, span at most an hour, and stay under
//!   1 KB. Rows go in rowid order, which is the order they are written, so SQLite appends
//!   them to full pages (keyed by point, the pages a point's blocks land in would split and
//!   stay a quarter empty); a unique index on `(point, first key)` finds a point's blocks.
//! - The tails `raw_readings(point, ts, value, quality)` (`ts` in ns, `value` NULL when not
//!   finite, `quality` a [`quality_code`]) and `rollup_minute(point, minute, min, max, sum,
//!   count, bad)`: rows as they are written, one transaction per batch as before, until the
//!   writer packs them into blocks (see [`super::blocks`]).
//! - `history_meta(key, value)`: the retention horizon of each tier; samples below it are
//!   gone even where the rest of their block is still stored.
//!
//! Layout 2 had only `points` and the two tails (every row unpacked). Upgrading it adds the
//! new tables: its rows are then the tails, read at once and packed in steps by the writer.
//!
//! Layout 1 (no `user_version`) had one table `readings(point TEXT, ts, value, quality TEXT)`.
//! Upgrading it, in one transaction: the new tables are created, its point names are entered
//! in `points`, and its rows are aggregated into `rollup_minute` (they were every reading, so
//! the aggregates are exact). The old table itself is kept and read beside the raw tier
//! until retention has emptied it; then it is dropped. A crash during an upgrade rolls it
//! back and the next start runs it again.

use rusqlite::{Connection, OptionalExtension};
use tracing::info;

use super::{StoreError, sqlite_err};
use crate::model::Quality;
use std::path::Path;

/// The layout this version writes.
pub const LAYOUT: i64 = 3;

/// The pre-2 table still read until it ages out.
pub const LEGACY_TABLE: &str = "readings";

const PRAGMAS: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
";

const TABLES: &str = "
    CREATE TABLE IF NOT EXISTS points (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE IF NOT EXISTS raw_readings (
        point   INTEGER NOT NULL,
        ts      INTEGER NOT NULL,
        value   REAL,
        quality INTEGER NOT NULL,
        PRIMARY KEY (point, ts)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS rollup_minute (
        point  INTEGER NOT NULL,
        minute INTEGER NOT NULL,
        min    REAL,
        max    REAL,
        sum    REAL NOT NULL,
        count  INTEGER NOT NULL,
        bad    INTEGER NOT NULL,
        PRIMARY KEY (point, minute)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS raw_blocks (
        id       INTEGER PRIMARY KEY,
        point    INTEGER NOT NULL,
        first_ts INTEGER NOT NULL,
        last_ts  INTEGER NOT NULL,
        n        INTEGER NOT NULL,
        data     BLOB NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS raw_blocks_point ON raw_blocks (point, first_ts);
    CREATE TABLE IF NOT EXISTS minute_blocks (
        id           INTEGER PRIMARY KEY,
        point        INTEGER NOT NULL,
        first_minute INTEGER NOT NULL,
        last_minute  INTEGER NOT NULL,
        n            INTEGER NOT NULL,
        data         BLOB NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS minute_blocks_point ON minute_blocks (point, first_minute);
    CREATE TABLE IF NOT EXISTS history_meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
";

/// Merges a (possibly partial) minute into the stored one; `?1..?7` as in the table.
pub const UPSERT_MINUTE: &str = "
    INSERT INTO rollup_minute (point, minute, min, max, sum, count, bad)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
    ON CONFLICT (point, minute) DO UPDATE SET
        min = CASE WHEN min IS NULL OR excluded.min < min THEN excluded.min ELSE min END,
        max = CASE WHEN max IS NULL OR excluded.max > max THEN excluded.max ELSE max END,
        sum = sum + excluded.sum,
        count = count + excluded.count,
        bad = bad + excluded.bad
";

/// Rolls every row of the layout-1 table into minutes (good = quality `good` with a value).
const ROLL_LEGACY: &str = "
    INSERT INTO rollup_minute (point, minute, min, max, sum, count, bad)
    SELECT p.id, r.ts / 60000000000 AS m,
           MIN(CASE WHEN r.quality = 'good' THEN r.value END),
           MAX(CASE WHEN r.quality = 'good' THEN r.value END),
           COALESCE(SUM(CASE WHEN r.quality = 'good' THEN r.value END), 0.0),
           SUM(r.quality = 'good' AND r.value IS NOT NULL),
           SUM(NOT (r.quality = 'good' AND r.value IS NOT NULL))
    FROM readings r JOIN points p ON p.name = r.point
    WHERE true
    GROUP BY p.id, m
    ON CONFLICT (point, minute) DO UPDATE SET
        min = CASE WHEN min IS NULL OR excluded.min < min THEN excluded.min ELSE min END,
        max = CASE WHEN max IS NULL OR excluded.max > max THEN excluded.max ELSE max END,
        sum = sum + excluded.sum,
        count = count + excluded.count,
        bad = bad + excluded.bad
";

/// Stable code of a quality in `raw_readings`; `good` is 0, which SQLite stores in no bytes.
pub fn quality_code(q: Quality) -> i64 {
    match q {
        Quality::Good => 0,
        Quality::CommFault => 1,
        Quality::DecodeError => 2,
        Quality::OutOfRange => 3,
        Quality::Stale => 4,
        Quality::Uncertain => 5,
        Quality::Suspect => 6,
    }
}

/// The quality of a stored code.
pub fn quality_of(code: i64) -> Option<Quality> {
    Some(match code {
        0 => Quality::Good,
        1 => Quality::CommFault,
        2 => Quality::DecodeError,
        3 => Quality::OutOfRange,
        4 => Quality::Stale,
        5 => Quality::Uncertain,
        6 => Quality::Suspect,
        _ => return None,
    })
}

/// Whether the layout-1 table is still present.
pub fn has_legacy(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [LEGACY_TABLE],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}

/// Brings the file at `path` to [`LAYOUT`], creating or upgrading it; refuses a newer one.
pub fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = sqlite_err(path);
    conn.execute_batch(PRAGMAS).map_err(&err)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(&err)?;
    if version > LAYOUT {
        return Err(StoreError::Layout {
            path: path.to_path_buf(),
            found: version,
            known: LAYOUT,
        });
    }
    if version == LAYOUT {
        return conn.execute_batch(TABLES).map_err(&err);
    }
    let tx = conn.transaction().map_err(&err)?;
    tx.execute_batch(TABLES).map_err(&err)?;
    if has_legacy(&tx).map_err(&err)? {
        let names = tx
            .execute(
                "INSERT OR IGNORE INTO points (name) SELECT DISTINCT point FROM readings",
                [],
            )
            .map_err(&err)?;
        let minutes = tx.execute(ROLL_LEGACY, []).map_err(&err)?;
        info!(path = %path.display(), points = names, minutes,
              "Upgraded history from layout 1; its raw rows stay readable until retention removes them");
    } else if version == 2 {
        info!(path = %path.display(), "Upgraded history from layout 2; its rows are packed into blocks in steps");
    }
    tx.execute_batch(&format!("PRAGMA user_version = {LAYOUT}"))
        .map_err(&err)?;
    tx.commit().map_err(&err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_codes_round_trip() {
        for q in [
            Quality::Good,
            Quality::CommFault,
            Quality::DecodeError,
            Quality::OutOfRange,
            Quality::Stale,
            Quality::Uncertain,
        ] {
            assert_eq!(quality_of(quality_code(q)), Some(q));
        }
        assert_eq!(quality_of(9), None);
    }

    #[test]
    fn a_file_from_a_newer_version_is_refused_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 7").unwrap();
        let e = prepare(&mut conn, &path).unwrap_err();
        assert!(e.to_string().contains("layout 7"), "{e}");
        let tables: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn preparing_twice_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut conn = Connection::open(&path).unwrap();
        prepare(&mut conn, &path).unwrap();
        prepare(&mut conn, &path).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, LAYOUT);
    }
}
