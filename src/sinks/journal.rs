//! The alarm journal: every alarm transition, durable before it is published.
//!
//! Design: an append-only SQLite table (WAL, `synchronous = FULL`) holding each transition with
//! the alarm's complete state after it (as JSON, with the fields queries filter on as columns).
//! A batch of transitions goes in one transaction, so one fsync covers a burst. The sequence
//! number is the live feed's event id: a client reconnecting with `Last-Event-ID` replays from
//! here. Delay timers that were running are kept in `pending_timers`, so after a restart (even
//! after SIGKILL or power loss) alarms come back in exactly their journaled state and their
//! delays and shelving resume rather than restart. The write-ahead log is checkpointed on a
//! connection of its own, not by SQLite on a commit.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::history::{CacheBudget, StoreError, open_sqlite, sqlite_err};
use crate::model::{AckCategory, AlarmEvent, Priority, Timestamp};

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    PRAGMA wal_autocheckpoint = 0;
    CREATE TABLE IF NOT EXISTS alarm_transitions (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        ts            INTEGER NOT NULL,
        alarm_id      TEXT NOT NULL,
        transition    TEXT NOT NULL,
        state         TEXT NOT NULL,
        priority      TEXT NOT NULL,
        hazard_source TEXT,
        event         TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS alarm_transitions_alarm ON alarm_transitions (alarm_id, seq);
    CREATE INDEX IF NOT EXISTS alarm_transitions_ts ON alarm_transitions (ts);
    CREATE TABLE IF NOT EXISTS pending_timers (
        alarm_id TEXT PRIMARY KEY,
        since    INTEGER NOT NULL
    );
";

/// Filters of an alarm-history query; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Only transitions at or after this time.
    pub from: Option<Timestamp>,
    /// Only transitions at or before this time.
    pub to: Option<Timestamp>,
    /// Only this alarm.
    pub alarm_id: Option<String>,
    /// Only alarms of this hazard source.
    pub hazard_source: Option<String>,
    /// Only this priority or higher.
    pub min_priority: Option<Priority>,
    /// Only acknowledgements the operator gave this category.
    pub category: Option<AckCategory>,
    /// Only transitions with a sequence number below this (paging backwards).
    pub before_seq: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// The durable alarm journal.
#[derive(Debug)]
pub struct AlarmJournal {
    path: PathBuf,
    /// A std mutex: calls run in `spawn_blocking` or at start-up, never across an await.
    conn: Mutex<Connection>,
    /// Positions of the deliveries following the journal ([`crate::sinks::follow`]): what
    /// they have not delivered is never pruned.
    holds: retention::Holds,
}

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl AlarmJournal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_sqlite(path, CacheBudget::Journal)?;
        conn.execute_batch(SCHEMA).map_err(sqlite_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            holds: retention::Holds::default(),
        })
    }

    /// Stores `events` (setting their sequence numbers) and the timer changes in one
    /// transaction; returns once it is on disk.
    pub fn append(&self, events: &mut [AlarmEvent], timers: &[(String, Option<Timestamp>)]) -> Result<(), StoreError> {
        let err = sqlite_err(&self.path);
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(&err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO alarm_transitions (ts, alarm_id, transition, state, priority, hazard_source, event)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, '')",
                )
                .map_err(&err)?;
            let mut body = tx
                .prepare_cached("UPDATE alarm_transitions SET event = ?2 WHERE seq = ?1")
                .map_err(&err)?;
            for e in events.iter_mut() {
                insert
                    .execute(params![
                        e.ts.as_nanos(),
                        e.alarm_id,
                        e.transition.as_str(),
                        e.state.as_str(),
                        e.priority.as_str(),
                        e.hazard_source
                    ])
                    .map_err(&err)?;
                e.seq = u64::try_from(tx.last_insert_rowid()).unwrap_or(0);
                let json = serde_json::to_string(e).map_err(|x| StoreError::BadRow {
                    path: self.path.clone(),
                    detail: x.to_string(),
                })?;
                body.execute(params![seq_param(e.seq), json]).map_err(&err)?;
            }
            let mut set = tx
                .prepare_cached("INSERT INTO pending_timers (alarm_id, since) VALUES (?1, ?2) ON CONFLICT(alarm_id) DO UPDATE SET since = ?2")
                .map_err(&err)?;
            let mut unset = tx
                .prepare_cached("DELETE FROM pending_timers WHERE alarm_id = ?1")
                .map_err(&err)?;
            for (id, since) in timers {
                match since {
                    Some(t) => set.execute(params![id, t.as_nanos()]).map_err(&err)?,
                    None => unset.execute(params![id]).map_err(&err)?,
                };
            }
        }
        tx.commit().map_err(&err)
    }

    /// Copies the write-ahead log into the database file. Automatic checkpoints are off so that
    /// their cost never lands on an alarm's commit.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(sqlite_err(&self.path))
    }

    /// A separate connection to the same file that only checkpoints: a passive checkpoint on
    /// it runs beside the writer's commits instead of between them.
    pub fn checkpointer(&self) -> Result<AlarmJournal, StoreError> {
        let conn = open_sqlite(&self.path, CacheBudget::Checkpointer)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite_err(&self.path))?;
        Ok(Self {
            path: self.path.clone(),
            conn: Mutex::new(conn),
            holds: self.holds.clone(),
        })
    }

    /// The sequence number of the newest transition (0 when empty).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM alarm_transitions", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|s| u64::try_from(s).unwrap_or(0))
        .map_err(sqlite_err(&self.path))
    }

    /// Transitions after `after_seq`, oldest first, at most `limit`.
    pub fn since(&self, after_seq: u64, limit: usize) -> Result<Vec<AlarmEvent>, StoreError> {
        self.select(
            "SELECT event FROM alarm_transitions WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![seq_param(after_seq), seq_param(limit as u64)],
        )
    }

    /// The latest transition of every alarm that still has something to show, oldest first:
    /// what a restart restores.
    pub fn latest_visible(&self) -> Result<Vec<AlarmEvent>, StoreError> {
        let all = self.select(
            "SELECT event FROM alarm_transitions WHERE seq IN (SELECT MAX(seq) FROM alarm_transitions GROUP BY alarm_id) ORDER BY seq",
            [],
        )?;
        Ok(all.into_iter().filter(AlarmEvent::visible).collect())
    }

    /// The latest transition before `ts` of every alarm that then had something to show: the
    /// alarm states a KPI range starts from.
    pub fn latest_before(&self, ts: Timestamp) -> Result<Vec<AlarmEvent>, StoreError> {
        let all = self.select(
            "SELECT event FROM alarm_transitions WHERE seq IN
               (SELECT MAX(seq) FROM alarm_transitions WHERE ts < ?1 GROUP BY alarm_id) ORDER BY seq",
            params![ts.as_nanos()],
        )?;
        Ok(all.into_iter().filter(AlarmEvent::visible).collect())
    }

    /// Delay timers running at the last stop.
    pub fn pending_timers(&self) -> Result<Vec<(String, Timestamp)>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached("SELECT alarm_id, since FROM pending_timers")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, Timestamp::from_nanos(r.get(1)?))))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Transitions matching `f`, newest first.
    pub fn history(&self, f: &HistoryFilter) -> Result<Vec<AlarmEvent>, StoreError> {
        let min_priority: Vec<&str> = match f.min_priority {
            Some(min) => Priority::ALL
                .iter()
                .filter(|p| **p >= min)
                .map(|p| p.as_str())
                .collect(),
            None => Priority::ALL.iter().map(|p| p.as_str()).collect(),
        };
        let sql = format!(
            "SELECT event FROM alarm_transitions
             WHERE ts >= ?1 AND ts <= ?2 AND seq < ?3
               AND (?4 IS NULL OR alarm_id = ?4) AND (?5 IS NULL OR hazard_source = ?5)
               AND priority IN ({})
               AND (?7 IS NULL OR json_extract(event, '$.category') = ?7)
             ORDER BY seq DESC LIMIT ?6",
            min_priority
                .iter()
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        self.select(
            &sql,
            params![
                f.from.map_or(i64::MIN, Timestamp::as_nanos),
                f.to.map_or(i64::MAX, Timestamp::as_nanos),
                f.before_seq.map_or(i64::MAX, seq_param),
                f.alarm_id,
                f.hazard_source,
                seq_param(f.limit as u64),
                f.category.map(AckCategory::as_str),
            ],
        )
    }

    /// How often each alarm was raised in `[from, to]`, most raised first: the bad actors.
    pub fn raise_counts(&self, from: Timestamp, to: Timestamp) -> Result<Vec<(String, u64)>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached(
                "SELECT alarm_id, COUNT(*) FROM alarm_transitions
                 WHERE ts >= ?1 AND ts <= ?2 AND transition = 'raised'
                 GROUP BY alarm_id ORDER BY 2 DESC, 1",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![from.as_nanos(), to.as_nanos()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(&err)?;
        rows.map(|r| r.map(|(id, n)| (id, u64::try_from(n).unwrap_or(0))))
            .collect::<Result<_, _>>()
            .map_err(&err)
    }

    fn select(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<AlarmEvent>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare_cached(sql).map_err(&err)?;
        let rows = stmt.query_map(args, |row| row.get::<_, String>(0)).map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let json = row.map_err(&err)?;
            let event = serde_json::from_str(&json).map_err(|e| StoreError::BadRow {
                path: self.path.clone(),
                detail: format!("transition record: {e}"),
            })?;
            out.push(event);
        }
        Ok(out)
    }
}

pub mod replica;
pub mod retention;
pub use retention::{DEFAULT_RETENTION, HoldId, JournalSettings, MIN_RETENTION, Pruned};

#[cfg(test)]
mod tests;
