//! The rules task: the one owner of the rules engine. It evaluates every reading, applies
//! operator commands and lets time pass, then journals each burst of transitions in one
//! transaction before publishing any of them. It hands reading batches to history with
//! `try_send` and never waits on a sink.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::{error, info, warn};

use crate::clock::SharedClock;
use crate::rules::{Output, RulesEngine};
use crate::sinks::journal::AlarmJournal;
use crate::sources::ReadingBatch;
use crate::state::{CommandRequest, LiveState};
use crate::telemetry::{Metrics, QualityLabel, ReasonLabel, TransitionLabel};

/// How often time-driven conditions (stale, delays, shelving expiry) are checked.
const TICK: Duration = Duration::from_secs(1);

/// Everything the rules task owns.
#[derive(Debug)]
pub(super) struct RulesTask {
    pub(super) engine: RulesEngine,
    pub(super) journal: Arc<AlarmJournal>,
    pub(super) state: Arc<LiveState>,
    pub(super) history_tx: mpsc::Sender<ReadingBatch>,
    pub(super) metrics: Metrics,
    pub(super) clock: SharedClock,
}

impl RulesTask {
    /// Runs until the sources' channel closes (shutdown), draining it first.
    pub(super) async fn run(
        mut self,
        mut readings: mpsc::Receiver<ReadingBatch>,
        mut commands: mpsc::Receiver<CommandRequest>,
    ) {
        let mut out = Output::default();
        let mut drops = DropLog::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                batch = readings.recv() => {
                    let Some(batch) = batch else { break };
                    for r in &batch {
                        self.metrics.readings.get_or_create(&QualityLabel { quality: r.quality.as_str() }).inc();
                        self.engine.evaluate(r, &mut out);
                    }
                    self.state.update(&batch);
                    self.commit(&mut out).await;
                    self.to_history(batch, &mut drops);
                }
                Some(req) = commands.recv() => {
                    let now = self.clock.now();
                    let result = self.engine.command(&req.alarm_id, req.command, &req.user, &req.comment, now, &mut out);
                    let result = match result {
                        Ok(event) => Ok(self.commit(&mut out).await.pop().unwrap_or(event)),
                        Err(e) => Err(e),
                    };
                    // The requester may have given up (client gone); the transition stands.
                    let _ = req.reply.send(result);
                }
                _ = tick.tick() => {
                    self.engine.tick(self.clock.now(), &mut out);
                    self.commit(&mut out).await;
                }
            }
        }
    }

    /// Journals then publishes what the engine produced; returns the published events.
    async fn commit(&mut self, out: &mut Output) -> Vec<crate::model::AlarmEvent> {
        if out.is_empty() {
            return Vec::new();
        }
        let mut events = std::mem::take(&mut out.events);
        let timers = std::mem::take(&mut out.timers);
        if !events.is_empty() || !timers.is_empty() {
            let journal = self.journal.clone();
            let stored = tokio::task::spawn_blocking(move || {
                let r = journal.append(&mut events, &timers);
                (events, r)
            })
            .await;
            events = match stored {
                Ok((events, Ok(()))) => events,
                Ok((mut events, Err(e))) => {
                    self.metrics.journal_errors.inc_by(events.len() as u64);
                    error!(error = %e, transitions = events.len(), "Alarm journal write failed; publishing unjournaled");
                    events.iter_mut().for_each(|e| e.seq = 0);
                    events
                }
                Err(e) => {
                    error!(error = %e, "Alarm journal task failed; transitions lost");
                    Vec::new()
                }
            };
        }
        for event in &events {
            let labels = TransitionLabel {
                transition: event.transition.as_str(),
                priority: event.priority.as_str(),
            };
            self.metrics.alarm_transitions.get_or_create(&labels).inc();
            info!(alarm = %event.alarm_id, seq = event.seq, transition = event.transition.as_str(),
                  state = event.state.as_str(), priority = event.priority.as_str(), user = event.user.as_deref(),
                  "Alarm {}", event.transition.as_str());
            let annunciated = self.state.publish(event.clone());
            self.metrics
                .alarms_active
                .set(i64::try_from(annunciated).unwrap_or(i64::MAX));
        }
        let stats = self.engine.stats();
        if let Some(flood) = out.flood.take() {
            warn!(
                flood,
                rate_10min = stats.rate_10min,
                "Alarm flood {}",
                if flood { "began" } else { "ended" }
            );
            self.state.publish_flood(flood, stats.rate_10min, self.clock.now());
        }
        self.metrics
            .alarm_chattering
            .set(i64::try_from(stats.chattering.len()).unwrap_or(0));
        self.state.set_stats(stats);
        events
    }

    fn to_history(&self, batch: ReadingBatch, drops: &mut DropLog) {
        if let Err(e) = self.history_tx.try_send(batch) {
            let (reason, lost) = match e {
                mpsc::error::TrySendError::Full(b) => ("queue_full", b.len()),
                mpsc::error::TrySendError::Closed(b) => ("write_error", b.len()),
            };
            self.metrics
                .history_dropped
                .get_or_create(&ReasonLabel { reason })
                .inc_by(lost as u64);
            drops.record(reason, lost);
        }
    }
}

/// Logs history drops at most once per interval, with the count since the last line.
#[derive(Debug, Default)]
struct DropLog {
    last: Option<tokio::time::Instant>,
    pending: usize,
}

impl DropLog {
    fn record(&mut self, reason: &'static str, lost: usize) {
        self.pending += lost;
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            warn!(
                reason,
                readings = self.pending,
                "History queue cannot keep up; readings dropped"
            );
            self.pending = 0;
            self.last = Some(now);
        }
    }
}
