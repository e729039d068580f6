//! The journal writer: group commit of alarm transitions, then publication.
//!
//! Design: the rules task never waits for the disk. It hands each burst of transitions to this
//! thread, which takes every burst waiting, writes them in one SQLite transaction (one fsync
//! for all), and only then publishes them, in order, to the live state and feed. So an alarm is
//! never published before it is durable, and a slow fsync delays publication by about one
//! fsync instead of stalling rule evaluation behind it.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::model::{AlarmEvent, Timestamp};
use crate::rules::{AlarmStats, CommandError};
use crate::sinks::journal::AlarmJournal;
use crate::state::LiveState;
use crate::telemetry::{Metrics, TransitionLabel};

/// Bursts written between checkpoints of the write-ahead log (taken on their own connection).
const CHECKPOINT_AFTER: usize = 1000;
/// Bursts merged into one transaction at most.
const MAX_JOBS_PER_COMMIT: usize = 512;

/// One burst from the rules task.
#[derive(Debug)]
pub(super) struct JournalJob {
    pub(super) events: Vec<AlarmEvent>,
    pub(super) timers: Vec<(String, Option<Timestamp>)>,
    /// A flood change, published after the events.
    pub(super) flood: Option<(bool, Timestamp)>,
    pub(super) stats: AlarmStats,
    /// An operator waiting for the stored transition of their command.
    pub(super) reply: Option<oneshot::Sender<Result<AlarmEvent, CommandError>>>,
}

/// Runs the writer on its own thread until the rules task drops its sender.
pub(super) fn spawn(
    journal: Arc<AlarmJournal>,
    mut rx: mpsc::Receiver<JournalJob>,
    state: Arc<LiveState>,
    metrics: Metrics,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("alarm-journal".into()).spawn(move || {
        let mut since_checkpoint = 0usize;
        let checkpoints = spawn_checkpointer(&journal);
        let mut held = Held::default();
        loop {
            let mut jobs = Vec::new();
            if held.events.is_empty() && held.timers.is_empty() {
                match rx.blocking_recv() {
                    Some(first) => jobs.push(first),
                    None => break,
                }
            } else {
                // Transitions wait to be journaled: new bursts still pass at once, and the
                // held ones are retried every second (bounded: the loop ends with the sender).
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if held.last_try.elapsed() < RETRY_EVERY {
                            std::thread::sleep(POLL_WHILE_HELD);
                            continue;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        // Stopping: one last try, then what is still held is lost (logged).
                        commit(&journal, &mut jobs, &mut held, &metrics);
                        if !held.events.is_empty() {
                            error!(
                                transitions = held.events.len(),
                                "Alarm journal still failing at stop; transitions not journaled"
                            );
                        }
                        break;
                    }
                }
            }
            while !jobs.is_empty() && jobs.len() < MAX_JOBS_PER_COMMIT {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            commit(&journal, &mut jobs, &mut held, &metrics);
            since_checkpoint += jobs.len();
            for job in jobs {
                publish(job, &state, &metrics);
            }
            if since_checkpoint >= CHECKPOINT_AFTER {
                since_checkpoint = 0;
                // A checkpoint already pending is enough; never wait for one.
                let _ = checkpoints.as_ref().map(|c| c.try_send(()));
            }
        }
        drop(checkpoints);
        if let Err(e) = journal.checkpoint() {
            warn!(error = %e, "Alarm journal checkpoint at shutdown failed");
        }
    })
}

/// A thread with its own connection that checkpoints the write-ahead log when asked, so the
/// copy into the database file never sits between two alarm commits. `None` if it cannot start
/// (the WAL then grows until the shutdown checkpoint; logged).
fn spawn_checkpointer(journal: &AlarmJournal) -> Option<std::sync::mpsc::SyncSender<()>> {
    let conn = match journal.checkpointer() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "Cannot open the alarm journal for checkpoints");
            return None;
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("alarm-journal-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                if let Err(e) = conn.checkpoint() {
                    warn!(error = %e, "Alarm journal checkpoint failed; will retry");
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            warn!(error = %e, "Cannot start the alarm journal checkpoint thread");
            None
        }
    }
}

/// How often transitions that could not be journaled are tried again.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often the channel is looked at while transitions are held.
const POLL_WHILE_HELD: std::time::Duration = std::time::Duration::from_millis(20);

/// Transitions (and delay timers) published but not yet journaled, oldest first.
#[derive(Debug)]
struct Held {
    events: Vec<AlarmEvent>,
    timers: Vec<(String, Option<Timestamp>)>,
    last_try: tokio::time::Instant,
    log: crate::telemetry::LogEvery,
}

impl Default for Held {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            timers: Vec::new(),
            last_try: tokio::time::Instant::now(),
            log: crate::telemetry::LogEvery::new(std::time::Duration::from_secs(10)),
        }
    }
}

/// Journals what is held, then the jobs' transitions, in one transaction. If that fails the
/// jobs' transitions are still published (an alarm must show), with `seq` 0, and join the
/// held ones to be retried: no transition exists only in memory for longer than the fault.
fn commit(journal: &AlarmJournal, jobs: &mut [JournalJob], held: &mut Held, metrics: &Metrics) {
    let counts: Vec<usize> = jobs.iter().map(|j| j.events.len()).collect();
    let fresh: Vec<AlarmEvent> = jobs.iter_mut().flat_map(|j| j.events.drain(..)).collect();
    let fresh_timers: Vec<_> = jobs.iter_mut().flat_map(|j| j.timers.drain(..)).collect();
    let was_held = held.events.len();
    let mut events: Vec<AlarmEvent> = std::mem::take(&mut held.events);
    events.extend(fresh);
    let mut timers = std::mem::take(&mut held.timers);
    timers.extend(fresh_timers);
    if events.is_empty() && timers.is_empty() {
        return;
    }
    held.last_try = tokio::time::Instant::now();
    let mut published: Vec<AlarmEvent> = match journal.append(&mut events, &timers) {
        Ok(()) => {
            if was_held > 0 {
                info!(
                    transitions = was_held,
                    "Alarm journal writable again; held transitions journaled"
                );
            }
            metrics.journal_held.set(0);
            events.split_off(was_held)
        }
        Err(e) => {
            metrics.journal_errors.inc_by(events.len() as u64);
            if let Some(not_logged) = held.log.hit() {
                error!(error = %e, transitions = events.len(), failures_not_logged = not_logged,
                       "Alarm journal write failed; transitions shown and held, retried every second");
            }
            events.iter_mut().for_each(|e| e.seq = 0);
            let fresh = events[was_held..].to_vec();
            held.events = events;
            held.timers = timers;
            metrics
                .journal_held
                .set(i64::try_from(held.events.len()).unwrap_or(i64::MAX));
            fresh
        }
    };
    // Hand the stored (numbered) events back to their jobs, in order.
    let mut stored = published.drain(..);
    for (job, n) in jobs.iter_mut().zip(counts) {
        job.events.extend(stored.by_ref().take(n));
    }
}

fn publish(job: JournalJob, state: &LiveState, metrics: &Metrics) {
    for event in &job.events {
        let labels = TransitionLabel {
            transition: event.transition.as_str(),
            priority: event.priority.as_str(),
        };
        metrics.alarm_transitions.get_or_create(&labels).inc();
        info!(alarm = %event.alarm_id, seq = event.seq, transition = event.transition.as_str(),
              state = event.state.as_str(), priority = event.priority.as_str(), user = event.user.as_deref(),
              "Alarm {}", event.transition.as_str());
        let annunciated = state.publish(event.clone());
        metrics
            .alarms_active
            .set(i64::try_from(annunciated).unwrap_or(i64::MAX));
    }
    if let Some((flood, ts)) = job.flood {
        warn!(
            flood,
            rate_10min = job.stats.rate_10min,
            "Alarm flood {}",
            if flood { "began" } else { "ended" }
        );
        state.publish_flood(flood, job.stats.rate_10min, ts);
    }
    metrics
        .alarm_chattering
        .set(i64::try_from(job.stats.chattering.len()).unwrap_or(0));
    state.set_stats(job.stats);
    if let Some(reply) = job.reply {
        let last = job
            .events
            .last()
            .cloned()
            .ok_or_else(|| CommandError::UnknownAlarm(String::new()));
        // The operator may have gone; the transition stands either way.
        let _ = reply.send(last);
    }
}
