//! The journal as a hot-standby pair copies it: rows exactly as stored, applied with their own
//! sequence numbers, so the standby's journal is the active's, row for row.
//!
//! Design: the active reads what the standby lacks on a connection of its own (WAL lets it
//! read beside the writer's commits); the standby inserts the rows with their `seq` and
//! replaces its delay timers in one transaction per batch. A standby whose last row is not the
//! active's row of that number has a journal of its own (it was active while the pair was
//! apart): it is set aside, never merged, and copied again from the start.

use std::path::Path;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{AlarmJournal, seq_param};
use crate::sinks::history::{StoreError, sqlite_err};

/// One `alarm_transitions` row, every column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRow {
    /// Journal sequence number.
    pub seq: u64,
    /// Transition time, ns since the epoch.
    pub ts: i64,
    /// Alarm id.
    pub alarm_id: String,
    /// Transition name.
    pub transition: String,
    /// State after it.
    pub state: String,
    /// Priority.
    pub priority: String,
    /// Hazard source, if any.
    pub hazard_source: Option<String>,
    /// The whole event as JSON.
    pub event: String,
}

impl ReplicaRow {
    /// What identifies the row beyond its number: two journals that agree on it agree on
    /// everything before it, since rows are only appended.
    pub fn fingerprint(&self) -> (i64, &str, &str) {
        (self.ts, &self.alarm_id, &self.transition)
    }
}

const COLUMNS: &str = "seq, ts, alarm_id, transition, state, priority, hazard_source, event";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReplicaRow> {
    Ok(ReplicaRow {
        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        ts: r.get(1)?,
        alarm_id: r.get(2)?,
        transition: r.get(3)?,
        state: r.get(4)?,
        priority: r.get(5)?,
        hazard_source: r.get(6)?,
        event: r.get(7)?,
    })
}

impl AlarmJournal {
    /// Rows after `after_seq`, oldest first, at most `limit`.
    pub fn replica_rows(&self, after_seq: u64, limit: usize) -> Result<Vec<ReplicaRow>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM alarm_transitions WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![seq_param(after_seq), seq_param(limit as u64)], row)
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// The row numbered `seq`, if the journal has it.
    pub fn replica_row(&self, seq: u64) -> Result<Option<ReplicaRow>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM alarm_transitions WHERE seq = ?1"),
            params![seq_param(seq)],
            row,
        )
        .optional()
        .map_err(sqlite_err(&self.path))
    }

    /// The newest row, if any.
    pub fn replica_last(&self) -> Result<Option<ReplicaRow>, StoreError> {
        let seq = self.last_seq()?;
        if seq == 0 {
            return Ok(None);
        }
        self.replica_row(seq)
    }

    /// Every running delay timer as stored: `(alarm id, since in ns)`, by alarm id.
    pub fn replica_timers(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached("SELECT alarm_id, since FROM pending_timers ORDER BY alarm_id")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Appends the active's `rows` (numbered, in order, after this journal's last) and, when
    /// given, replaces the delay timers with `timers`, in one transaction; then checkpoints,
    /// since a standby runs no checkpointer of its own.
    pub fn apply_replica(&self, rows: &[ReplicaRow], timers: Option<&[(String, i64)]>) -> Result<(), StoreError> {
        let err = sqlite_err(&self.path);
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(&err)?;
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO alarm_transitions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ))
                .map_err(&err)?;
            for r in rows {
                insert
                    .execute(params![
                        seq_param(r.seq),
                        r.ts,
                        r.alarm_id,
                        r.transition,
                        r.state,
                        r.priority,
                        r.hazard_source,
                        r.event
                    ])
                    .map_err(&err)?;
            }
            if let Some(timers) = timers {
                tx.execute("DELETE FROM pending_timers", []).map_err(&err)?;
                let mut set = tx
                    .prepare_cached("INSERT INTO pending_timers (alarm_id, since) VALUES (?1, ?2)")
                    .map_err(&err)?;
                for (id, since) in timers {
                    set.execute(params![id, since]).map_err(&err)?;
                }
            }
        }
        tx.commit().map_err(&err)?;
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(&err)
    }
}

/// Moves a journal that diverged from the active's aside (with its write-ahead log) as
/// `alarms.db.diverged-<unix seconds>`, for an investigation; returns the new name.
pub fn set_aside(path: &Path, unix_secs: u64) -> std::io::Result<std::path::PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("alarms.db");
    let aside = path.with_file_name(format!("{name}.diverged-{unix_secs}"));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let from = path.with_file_name(format!("{name}{suffix}"));
        if from.exists() {
            std::fs::rename(
                &from,
                aside.with_file_name(format!("{name}.diverged-{unix_secs}{suffix}")),
            )?;
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlarmEvent, Timestamp};

    fn event(subject: &str, ts: i64) -> AlarmEvent {
        use crate::model::{AlarmState, Priority, Transition};
        let mut e =
            crate::sinks::journal::tests::event(subject, Transition::Raised, AlarmState::UnackActive, Priority::High);
        e.ts = Timestamp::from_nanos(ts);
        e
    }

    #[test]
    fn a_standby_journal_holds_the_active_rows_with_their_numbers_and_timers() {
        let dir = tempfile::tempdir().unwrap();
        let active = AlarmJournal::open(&dir.path().join("a.db")).unwrap();
        let standby = AlarmJournal::open(&dir.path().join("b.db")).unwrap();
        let mut batch = vec![event("x", 1), event("y", 2)];
        active
            .append(&mut batch, &[("x:high".into(), Some(Timestamp::from_nanos(5)))])
            .unwrap();
        let mut more = vec![event("x", 3)];
        active.append(&mut more, &[]).unwrap();

        let rows = active.replica_rows(0, 2).unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
        standby
            .apply_replica(&rows, Some(&active.replica_timers().unwrap()))
            .unwrap();
        let rest = active.replica_rows(2, 100).unwrap();
        standby.apply_replica(&rest, None).unwrap();

        assert_eq!(
            standby.replica_rows(0, 100).unwrap(),
            active.replica_rows(0, 100).unwrap()
        );
        assert_eq!(standby.replica_timers().unwrap(), vec![("x:high".to_string(), 5)]);
        assert_eq!(standby.last_seq().unwrap(), 3);
        // What a restart restores reads the same from either.
        // (As JSON: a NaN value never equals itself.)
        let restored = |j: &AlarmJournal| serde_json::to_string(&j.latest_visible().unwrap()).unwrap();
        assert_eq!(restored(&standby), restored(&active));
        // A transition journaled on the standby after it took over follows the copied ones.
        let mut next = vec![event("y", 4)];
        standby.append(&mut next, &[]).unwrap();
        assert_eq!(next[0].seq, 4);
        assert_eq!(
            active.replica_last().unwrap().unwrap().fingerprint(),
            (3, "x:high", rows[0].transition.as_str())
        );
    }

    #[test]
    fn a_row_the_standby_already_has_is_refused_not_merged() {
        let dir = tempfile::tempdir().unwrap();
        let active = AlarmJournal::open(&dir.path().join("a.db")).unwrap();
        let standby = AlarmJournal::open(&dir.path().join("b.db")).unwrap();
        active.append(&mut [event("x", 1)], &[]).unwrap();
        let rows = active.replica_rows(0, 10).unwrap();
        standby.apply_replica(&rows, None).unwrap();
        assert!(standby.apply_replica(&rows, None).is_err());
        assert_eq!(standby.last_seq().unwrap(), 1);
    }

    #[test]
    fn a_diverged_journal_is_set_aside_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alarms.db");
        {
            let j = AlarmJournal::open(&path).unwrap();
            j.append(&mut [event("x", 1)], &[]).unwrap();
        }
        let aside = set_aside(&path, 42).unwrap();
        assert_eq!(aside, dir.path().join("alarms.db.diverged-42"));
        assert!(!path.exists());
        let j = AlarmJournal::open(&aside).unwrap();
        assert_eq!(j.last_seq().unwrap(), 1);
    }
}
