//! The alarm journal: every alarm transition, durable before it is published.
//!
//! Design: an append-only SQLite table with `synchronous = FULL`, so a transition that any
//! subscriber saw survives power loss. The sequence number is the live feed's event id: a
//! client that reconnects with `Last-Event-ID` replays from here. At start-up the alarms whose
//! last transition was `raised` are restored as active, so a restart neither forgets an alarm
//! nor raises it twice.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, Row, params};

use super::history::{StoreError, sqlite_err};
use crate::model::{AlarmEvent, AlarmLevel, Priority, Timestamp, Transition};

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    CREATE TABLE IF NOT EXISTS alarm_events (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        alarm_id      TEXT NOT NULL,
        rule          TEXT NOT NULL,
        point         TEXT NOT NULL,
        hazard_source TEXT,
        level         TEXT NOT NULL,
        priority      TEXT NOT NULL,
        transition    TEXT NOT NULL,
        value         REAL,
        limit_value   REAL NOT NULL,
        unit          TEXT NOT NULL,
        ts            INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS alarm_events_alarm ON alarm_events (alarm_id, seq);
";

const COLUMNS: &str =
    "seq, alarm_id, rule, point, hazard_source, level, priority, transition, value, limit_value, unit, ts";

/// The durable alarm journal.
#[derive(Debug)]
pub struct AlarmJournal {
    path: PathBuf,
    /// A std mutex: calls run in `spawn_blocking` or at start-up, never across an await.
    conn: Mutex<Connection>,
}

impl AlarmJournal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(sqlite_err(path))?;
        conn.execute_batch(SCHEMA).map_err(sqlite_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Stores `event` and sets its sequence number; returns once it is on disk.
    pub fn append(&self, event: &mut AlarmEvent) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT INTO alarm_events (alarm_id, rule, point, hazard_source, level, priority, transition, value, limit_value, unit, ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                event.alarm_id,
                event.rule,
                event.point,
                event.hazard_source,
                event.level.as_str(),
                event.priority.as_str(),
                event.transition.as_str(),
                event.value.is_finite().then_some(event.value),
                event.limit,
                event.unit,
                event.ts.as_nanos(),
            ],
        )
        .map_err(sqlite_err(&self.path))?;
        let seq = u64::try_from(conn.last_insert_rowid()).unwrap_or(0);
        event.seq = seq;
        Ok(seq)
    }

    /// Events after `after_seq`, oldest first, at most `limit`.
    pub fn since(&self, after_seq: u64, limit: usize) -> Result<Vec<AlarmEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alarm_events WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        self.select(
            &sql,
            params![
                i64::try_from(after_seq).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    /// Alarms whose latest transition is `raised`, oldest first.
    pub fn active(&self) -> Result<Vec<AlarmEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM alarm_events WHERE seq IN (SELECT MAX(seq) FROM alarm_events GROUP BY alarm_id)
             AND transition = 'raised' ORDER BY seq"
        );
        self.select(&sql, [])
    }

    fn select(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<AlarmEvent>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare_cached(sql).map_err(&err)?;
        let rows = stmt.query_map(args, |row| Ok(RawRow::read(row))).map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let raw = row.map_err(&err)?.map_err(&err)?;
            out.push(raw.into_event().map_err(|detail| StoreError::BadRow {
                path: self.path.clone(),
                detail,
            })?);
        }
        Ok(out)
    }
}

struct RawRow {
    seq: i64,
    alarm_id: String,
    rule: String,
    point: String,
    hazard_source: Option<String>,
    level: String,
    priority: String,
    transition: String,
    value: Option<f64>,
    limit: f64,
    unit: String,
    ts: i64,
}

impl RawRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            alarm_id: row.get(1)?,
            rule: row.get(2)?,
            point: row.get(3)?,
            hazard_source: row.get(4)?,
            level: row.get(5)?,
            priority: row.get(6)?,
            transition: row.get(7)?,
            value: row.get(8)?,
            limit: row.get(9)?,
            unit: row.get(10)?,
            ts: row.get(11)?,
        })
    }

    fn into_event(self) -> Result<AlarmEvent, String> {
        Ok(AlarmEvent {
            seq: u64::try_from(self.seq).map_err(|_| format!("negative seq {}", self.seq))?,
            level: AlarmLevel::parse(&self.level).ok_or_else(|| format!("unknown level `{}`", self.level))?,
            priority: Priority::parse(&self.priority).ok_or_else(|| format!("unknown priority `{}`", self.priority))?,
            transition: Transition::parse(&self.transition)
                .ok_or_else(|| format!("unknown transition `{}`", self.transition))?,
            alarm_id: self.alarm_id,
            rule: self.rule,
            point: self.point,
            hazard_source: self.hazard_source,
            value: self.value.unwrap_or(f64::NAN),
            limit: self.limit,
            unit: self.unit,
            ts: Timestamp::from_nanos(self.ts),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(point: &str, transition: Transition) -> AlarmEvent {
        AlarmEvent {
            seq: 0,
            alarm_id: format!("{point}:high"),
            rule: "r".into(),
            point: point.into(),
            hazard_source: Some("MHS-001".into()),
            level: AlarmLevel::High,
            priority: Priority::High,
            transition,
            value: 30.0,
            limit: 25.0,
            unit: "%LEL".into(),
            ts: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn journal_numbers_events_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        {
            let j = AlarmJournal::open(&path).unwrap();
            let mut a = event("a", Transition::Raised);
            let mut b = event("b", Transition::Raised);
            let mut a2 = event("a", Transition::Cleared);
            assert_eq!(j.append(&mut a).unwrap(), 1);
            assert_eq!(j.append(&mut b).unwrap(), 2);
            assert_eq!(j.append(&mut a2).unwrap(), 3);
            assert_eq!(a2.seq, 3);
        }
        let j = AlarmJournal::open(&path).unwrap();
        let active = j.active().unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].point, "b");
        let since = j.since(1, 10).unwrap();
        assert_eq!(since.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(since[1].transition, Transition::Cleared);
        assert_eq!(since[0].hazard_source.as_deref(), Some("MHS-001"));
    }
}
