//! Journal retention: transitions older than the retention are deleted, except those
//! something still needs.
//!
//! Design: a transition is kept, whatever its age, while
//! - its alarm is not settled: the alarm's latest transition shows anything (not normal, or
//!   shelved, suppressed or out of service; an unacknowledged alarm is never normal), so
//!   every record of an open or unacknowledged alarm stays, from its first raise on;
//! - a delivery following the journal (webhook, northbound MQTT, uplink; see
//!   [`crate::sinks::follow`]) has not passed it: each follower holds its position here
//!   ([`AlarmJournal::hold`]), and nothing above the lowest position is deleted.
//!
//! Deletion runs in chunks of [`CHUNK`] transitions, each its own transaction on the
//! writer's connection: an alarm commit waits for at most one chunk, never for a whole
//! prune, and can never fail as busy. Which alarms are settled is read again for each chunk
//! inside its transaction, so an alarm raised meanwhile keeps its records. Deleted pages are
//! reused by SQLite: the file stops growing rather than shrinks. A crash between chunks
//! leaves fewer deletions done, never a torn record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, params};

use super::{AlarmJournal, seq_param};
use crate::model::{AlarmEvent, Timestamp};
use crate::sinks::history::{StoreError, sqlite_err};

const DAY: u64 = 24 * 3600;

/// Default retention: three years. A regulator asks for at least one year of alarm records;
/// three give that with margin for an investigation or a licence review that looks back
/// over the previous years (a hazardous-chemicals safety licence runs three years), at a
/// cost of about 1 KB per transition.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(1096 * DAY);

/// The shortest retention accepted: the one year a regulator asks for.
pub const MIN_RETENTION: Duration = Duration::from_secs(365 * DAY);

/// Transitions deleted per transaction.
const CHUNK: usize = 1000;

/// `[journal]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSettings {
    /// Transitions older than this are deleted unless an open alarm or a delivery needs them.
    pub retention: Duration,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            retention: DEFAULT_RETENTION,
        }
    }
}

/// The positions of the journal's followers, shared by every connection to one journal.
#[derive(Debug, Clone, Default)]
pub(super) struct Holds(Arc<Mutex<HoldTable>>);

#[derive(Debug, Default)]
struct HoldTable {
    next: u64,
    at: BTreeMap<u64, u64>,
}

impl Holds {
    /// A std mutex: held for a map update, never across an await.
    fn with<T>(&self, f: impl FnOnce(&mut HoldTable) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn lowest(&self) -> Option<u64> {
        self.with(|t| t.at.values().min().copied())
    }
}

/// A follower's hold on the journal; released by [`AlarmJournal::release`].
#[derive(Debug)]
pub struct HoldId(u64);

/// What one prune did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Transitions deleted.
    pub deleted: u64,
    /// Transitions older than the cut that were kept: their alarm is not settled, or a
    /// delivery has not passed them (and, with `more`, those not reached yet).
    pub kept: u64,
    /// The chunk limit stopped it with more to delete.
    pub more: bool,
}

impl AlarmJournal {
    /// Holds every transition after `seq` for a follower that has dealt with `seq`.
    pub fn hold(&self, seq: u64) -> HoldId {
        self.holds.with(|t| {
            let id = t.next;
            t.next += 1;
            t.at.insert(id, seq);
            HoldId(id)
        })
    }

    /// The follower of `id` has dealt with `seq`.
    pub fn move_hold(&self, id: &HoldId, seq: u64) {
        self.holds.with(|t| {
            if let Some(at) = t.at.get_mut(&id.0) {
                *at = seq;
            }
        });
    }

    /// The follower of `id` is gone.
    pub fn release(&self, id: &HoldId) {
        self.holds.with(|t| t.at.remove(&id.0));
    }

    /// Deletes, in at most `max_chunks` chunks, the transitions older than `retention` at
    /// `now` that nothing needs (see the module doc). Blocking: run it off the async runtime.
    pub fn prune_expired(&self, now: Timestamp, retention: Duration, max_chunks: usize) -> Result<Pruned, StoreError> {
        let keep = i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX);
        self.prune_before(Timestamp::from_nanos(now.as_nanos().saturating_sub(keep)), max_chunks)
    }

    /// Deletes, in at most `max_chunks` chunks, the transitions stamped before `cut` that
    /// nothing needs.
    pub fn prune_before(&self, cut: Timestamp, max_chunks: usize) -> Result<Pruned, StoreError> {
        let err = sqlite_err(&self.path);
        let below = self.holds.lowest().map_or(i64::MAX, seq_param);
        let mut deleted = 0u64;
        for chunk in 1.. {
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction().map_err(&err)?;
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS prune_keep (alarm_id TEXT PRIMARY KEY); DELETE FROM temp.prune_keep;",
            )
            .map_err(&err)?;
            for id in unsettled(&tx, self)? {
                tx.execute("INSERT OR IGNORE INTO temp.prune_keep (alarm_id) VALUES (?1)", [id])
                    .map_err(&err)?;
            }
            let n = tx
                .execute(
                    "DELETE FROM alarm_transitions WHERE seq IN (
                         SELECT seq FROM alarm_transitions
                         WHERE ts < ?1 AND seq <= ?2 AND alarm_id NOT IN (SELECT alarm_id FROM temp.prune_keep)
                         ORDER BY seq LIMIT ?3)",
                    params![cut.as_nanos(), below, seq_param(CHUNK as u64)],
                )
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
            deleted += n as u64;
            if n < CHUNK || chunk >= max_chunks {
                let kept: i64 = conn
                    .query_row(
                        "SELECT COUNT(*) FROM alarm_transitions WHERE ts < ?1",
                        [cut.as_nanos()],
                        |r| r.get(0),
                    )
                    .map_err(&err)?;
                return Ok(Pruned {
                    deleted,
                    kept: u64::try_from(kept).unwrap_or(0),
                    more: n == CHUNK,
                });
            }
        }
        unreachable!("the chunk loop returns")
    }
}

/// Alarms whose latest transition still shows something (see [`AlarmEvent::visible`]).
fn unsettled(conn: &Connection, journal: &AlarmJournal) -> Result<Vec<String>, StoreError> {
    let err = sqlite_err(&journal.path);
    let mut stmt = conn
        .prepare_cached(
            "SELECT event FROM alarm_transitions WHERE seq IN (SELECT MAX(seq) FROM alarm_transitions GROUP BY alarm_id)",
        )
        .map_err(&err)?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0)).map_err(&err)?;
    let mut out = Vec::new();
    for row in rows {
        let json = row.map_err(&err)?;
        let event: AlarmEvent = serde_json::from_str(&json).map_err(|e| StoreError::BadRow {
            path: journal.path.clone(),
            detail: format!("transition record: {e}"),
        })?;
        if event.visible() {
            out.push(event.alarm_id);
        }
    }
    Ok(out)
}

/// How often the journal is pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Chunks per blocking call: a stop request waits for at most this many.
const CHUNKS_PER_CALL: usize = 50;

/// Prunes `journal` every [`PRUNE_EVERY`] (the first time one period after start, when every
/// delivery holds its position) until `stop`, counting deleted transitions in `pruned` and
/// logging each prune that deleted or kept anything old.
pub async fn run(
    journal: Arc<AlarmJournal>,
    settings: JournalSettings,
    clock: crate::clock::SharedClock,
    pruned: prometheus_client::metrics::counter::Counter,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PRUNE_EVERY) => {}
        }
        let now = clock.now();
        let mut total = Pruned::default();
        loop {
            let j = journal.clone();
            let step =
                tokio::task::spawn_blocking(move || j.prune_expired(now, settings.retention, CHUNKS_PER_CALL)).await;
            match step {
                Ok(Ok(p)) => {
                    pruned.inc_by(p.deleted);
                    total.deleted += p.deleted;
                    total.kept = p.kept;
                    if !p.more || stop.is_cancelled() {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Cannot prune the alarm journal; retrying at the next period");
                    break;
                }
                Err(_) => return,
            }
        }
        if total.deleted > 0 || total.kept > 0 {
            tracing::info!(
                deleted = total.deleted,
                kept_older = total.kept,
                retention = ?settings.retention,
                "Alarm journal pruned; older transitions of unsettled alarms or undelivered ones are kept"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::model::{AlarmClass, AlarmState, ConditionKind, Level, Priority, SubjectKind, Transition};
    use crate::sinks::follow::Follower;

    const YEAR: Duration = Duration::from_secs(365 * DAY);

    fn event(subject: &str, transition: Transition, state: AlarmState, ts: Timestamp) -> AlarmEvent {
        AlarmEvent {
            seq: 0,
            alarm_id: format!("{subject}:high"),
            rule: "r".into(),
            subject: subject.into(),
            subject_kind: SubjectKind::Point,
            hazard_source: None,
            condition: ConditionKind::Threshold,
            class: AlarmClass::Process,
            level: Some(Level::High),
            priority: Priority::High,
            transition,
            state,
            acknowledged: matches!(state, AlarmState::Normal | AlarmState::AckActive),
            latching: false,
            shelved_until: None,
            suppressed: false,
            out_of_service: false,
            value: 30.0,
            limit: Some(25.0),
            unit: "%LEL".into(),
            ts,
            raised_at: None,
            user: None,
            comment: None,
            category: None,
            predicted_at: None,
        }
    }

    /// Raised, acknowledged and cleared: nothing left to show.
    fn settled(subject: &str, at: Timestamp) -> Vec<AlarmEvent> {
        vec![
            event(subject, Transition::Raised, AlarmState::UnackActive, at),
            event(subject, Transition::Acknowledged, AlarmState::AckActive, at),
            event(subject, Transition::Cleared, AlarmState::Normal, at),
        ]
    }

    fn ids(j: &AlarmJournal) -> Vec<String> {
        j.since(0, 100_000).unwrap().into_iter().map(|e| e.alarm_id).collect()
    }

    fn journal() -> (tempfile::TempDir, Arc<AlarmJournal>) {
        let dir = tempfile::tempdir().unwrap();
        let j = AlarmJournal::open(&dir.path().join("alarms.db")).unwrap();
        (dir, Arc::new(j))
    }

    #[test]
    fn old_records_of_settled_alarms_go_and_open_or_unacknowledged_ones_stay() {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let (_dir, j) = journal();
        let t0 = clock.now();
        let mut batch = settled("a", t0);
        batch.push(event("open", Transition::Raised, AlarmState::UnackActive, t0));
        batch.push(event("rtn", Transition::Raised, AlarmState::UnackActive, t0));
        batch.push(event("rtn", Transition::Cleared, AlarmState::UnackRtn, t0));
        let mut shelved = event("shelved", Transition::Cleared, AlarmState::Normal, t0);
        shelved.shelved_until = Some(Timestamp::from_millis(i64::MAX / 1_000_000));
        batch.push(shelved);
        j.append(&mut batch, &[]).unwrap();
        clock.advance(2 * YEAR);
        let mut recent = settled("recent", clock.now());
        j.append(&mut recent, &[]).unwrap();

        // Within the retention nothing goes.
        assert_eq!(j.prune_expired(clock.now(), DEFAULT_RETENTION, 100).unwrap().deleted, 0);
        clock.advance(YEAR + Duration::from_secs(2 * DAY));
        let p = j.prune_expired(clock.now(), DEFAULT_RETENTION, 100).unwrap();
        assert_eq!(
            p,
            Pruned {
                deleted: 3,
                kept: 4,
                more: false
            }
        );
        assert_eq!(
            ids(&j),
            [
                "open:high",
                "rtn:high",
                "rtn:high",
                "shelved:high",
                "recent:high",
                "recent:high",
                "recent:high"
            ]
        );
        // What a restart restores is unchanged.
        let visible: Vec<String> = j.latest_visible().unwrap().into_iter().map(|e| e.alarm_id).collect();
        assert_eq!(visible, ["open:high", "rtn:high", "shelved:high"]);

        // Once acknowledged and cleared, the old records of `open` go at the next prune.
        let mut done = vec![
            event("open", Transition::Acknowledged, AlarmState::AckActive, clock.now()),
            event("open", Transition::Cleared, AlarmState::Normal, clock.now()),
        ];
        j.append(&mut done, &[]).unwrap();
        let p = j.prune_expired(clock.now(), DEFAULT_RETENTION, 100).unwrap();
        assert_eq!((p.deleted, p.kept), (1, 3));
        assert_eq!(ids(&j).iter().filter(|i| *i == "open:high").count(), 2);
    }

    #[test]
    fn a_delivery_keeps_every_record_it_has_not_passed() {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let (dir, j) = journal();
        let (feed, _) = tokio::sync::broadcast::channel(4);
        // A follower opened on the empty journal holds position 0.
        let mut follower = Follower::open(&dir.path().join("webhooks"), "ops", j.clone(), feed.subscribe()).unwrap();
        for s in ["a", "b", "c"] {
            let mut batch = settled(s, clock.now());
            j.append(&mut batch, &[]).unwrap();
        }
        clock.advance(4 * YEAR);
        let p = j.prune_expired(clock.now(), DEFAULT_RETENTION, 100).unwrap();
        assert_eq!((p.deleted, p.kept), (0, 9), "nothing delivered yet");
        follower.advance(4);
        let p = j.prune_expired(clock.now(), DEFAULT_RETENTION, 100).unwrap();
        assert_eq!((p.deleted, p.kept), (4, 5), "up to the delivered #4");
        assert_eq!(j.since(0, 100).unwrap().first().map(|e| e.seq), Some(5));
        // A second, slower follower (its cursor file says #6) holds from there.
        std::fs::write(dir.path().join("webhooks/slow.cursor"), "6\n").unwrap();
        let slow = Follower::open(&dir.path().join("webhooks"), "slow", j.clone(), feed.subscribe()).unwrap();
        follower.advance(9);
        let p = j.prune_expired(clock.now(), DEFAULT_RETENTION, 100).unwrap();
        assert_eq!((p.deleted, p.kept), (2, 3));
        // A follower that is gone holds nothing.
        drop(slow);
        let p = j.prune_expired(clock.now(), DEFAULT_RETENTION, 100).unwrap();
        assert_eq!((p.deleted, p.kept), (3, 0));
    }

    #[test]
    fn a_large_prune_goes_in_bounded_chunks() {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let (_dir, j) = journal();
        let mut batch: Vec<AlarmEvent> = (0..2500)
            .map(|i| event(&format!("p{i}"), Transition::Cleared, AlarmState::Normal, clock.now()))
            .collect();
        j.append(&mut batch, &[]).unwrap();
        clock.advance(4 * YEAR);
        let first = j.prune_expired(clock.now(), DEFAULT_RETENTION, 2).unwrap();
        assert_eq!(
            first,
            Pruned {
                deleted: 2 * CHUNK as u64,
                kept: 500,
                more: true
            }
        );
        let rest = j.prune_expired(clock.now(), DEFAULT_RETENTION, 2).unwrap();
        assert_eq!(
            rest,
            Pruned {
                deleted: 500,
                kept: 0,
                more: false
            }
        );
        // The sequence goes on after the deleted numbers.
        let mut next = vec![event("new", Transition::Raised, AlarmState::UnackActive, clock.now())];
        j.append(&mut next, &[]).unwrap();
        assert_eq!(next[0].seq, 2501);
    }
}
