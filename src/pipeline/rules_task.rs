//! The rules task: the one owner of the rules engine. It evaluates every reading, applies
//! operator commands and lets time pass, and hands each burst of transitions to the journal
//! writer, which stores them before anything publishes them. It hands reading batches to
//! history with `try_send` and never waits on a sink or the disk.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::journal_writer::JournalJob;
use crate::clock::SharedClock;
use crate::model::{Diagnosis, DurableBatch, Quality, ReadingBatch, Receipt, Transition};
use crate::rules::{Output, RulesEngine};
use crate::sinks::tsdb::SinkItem;
use crate::state::{CommandRequest, LiveState};
use crate::telemetry::{Metrics, QualityLabel, ReasonLabel, StoreReason};

/// How often time-driven conditions (stale, delays, shelving expiry) are checked.
const TICK: Duration = Duration::from_secs(1);

/// Readings gathered into one batch for history and the stores at most. Every device's poll
/// is its own small batch and devices poll in bursts; handing each on alone would take one
/// queue slot each and overflow history's queue on a large plant (3,000 devices at 100 ms).
/// Gathered, a burst takes a few slots, and nothing waits: the batch goes on as soon as the
/// rules task finds no more readings queued (or this many are gathered, or at the next tick).
const GATHER_MAX: usize = 8192;

const QUALITIES: [Quality; 7] = [
    Quality::Good,
    Quality::CommFault,
    Quality::DecodeError,
    Quality::OutOfRange,
    Quality::Stale,
    Quality::Uncertain,
    Quality::Suspect,
];

/// What the rules task listens to.
pub(super) struct Inputs {
    /// Readings of sources without upstream acknowledgement.
    pub(super) readings: mpsc::Receiver<ReadingBatch>,
    /// Readings whose source acknowledges once they are durable.
    pub(super) durable: mpsc::Receiver<DurableBatch>,
    /// Operator commands.
    pub(super) commands: mpsc::Receiver<CommandRequest>,
    /// Reload steps.
    pub(super) control: mpsc::Receiver<super::reload::RulesControl>,
    /// The gateway's self-check findings.
    pub(super) diagnoses: mpsc::Receiver<Diagnosis>,
}

/// Everything the rules task owns.
#[derive(Debug)]
pub(super) struct RulesTask {
    pub(super) engine: RulesEngine,
    pub(super) journal: mpsc::Sender<JournalJob>,
    pub(super) state: std::sync::Arc<LiveState>,
    pub(super) history_tx: mpsc::Sender<HistoryItem>,
    /// Each time-series store's intake, by store name.
    pub(super) stores: Vec<(String, mpsc::Sender<SinkItem>)>,
    pub(super) metrics: Metrics,
    pub(super) clock: SharedClock,
    /// Batches held for stores being restarted by a reload, handed to them when they return.
    pub(super) parked: super::reload::Parked,
    /// Evaluated readings of sources without receipts, gathered for history and the stores.
    pub(super) gathered: ReadingBatch,
    /// The outboxes of northbound MQTT targets that publish readings.
    pub(super) north: crate::sinks::mqtt_north::NorthIntakes,
}

impl RulesTask {
    /// Runs until `stop` fires (or every source is gone), then drains what was already sent.
    pub(super) async fn run(mut self, inputs: Inputs, stop: CancellationToken) {
        let Inputs {
            mut readings,
            mut durable,
            mut commands,
            mut control,
            mut diagnoses,
        } = inputs;
        let mut out = Output::default();
        let mut drops = DropLog::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled(), if !stopping => {
                    // No new readings; those already queued are still evaluated below.
                    readings.close();
                    durable.close();
                    stopping = true;
                }
                // Before readings: a reload step is rare and must not wait behind a busy queue.
                Some(ctl) = control.recv() => {
                    // A reload may swap stores: what was gathered goes to the ones it was
                    // taken for.
                    self.hand_on_gathered(&mut drops);
                    self.control(ctl)
                }
                batch = readings.recv() => {
                    let Some(batch) = batch else {
                        // Stopping: what durable sources sent before the close is taken too.
                        while let Ok(b) = durable.try_recv() {
                            self.take(b.readings, Some(b.receipt), &mut out, &mut drops).await;
                        }
                        self.hand_on_gathered(&mut drops);
                        break;
                    };
                    self.take(batch, None, &mut out, &mut drops).await;
                    // Nothing more queued: hand on now, unless history is behind (starting
                    // up, a slow disk), when fewer, larger batches save its queue.
                    let tx = &self.history_tx;
                    if readings.is_empty() && tx.capacity() * 2 >= tx.max_capacity() {
                        self.hand_on_gathered(&mut drops);
                    }
                }
                Some(b) = durable.recv() => self.take(b.readings, Some(b.receipt), &mut out, &mut drops).await,
                Some(req) = commands.recv() => {
                    let now = self.clock.now();
                    match self.engine.command(&req.alarm_id, req.command, &req.user, &req.comment, now, &mut out) {
                        Ok(_) => {
                            // The engine knows nothing of categories: the acknowledgement it
                            // produced carries the operator's before it is journaled.
                            if let Some(category) = req.category {
                                out.events
                                    .iter_mut()
                                    .filter(|e| e.alarm_id == req.alarm_id && e.transition == Transition::Acknowledged)
                                    .for_each(|e| e.category = Some(category));
                            }
                            self.commit(&mut out, Some(req.reply)).await
                        }
                        // The requester may have given up (client gone).
                        Err(e) => { let _ = req.reply.send(Err(e)); }
                    }
                }
                Some(d) = diagnoses.recv() => {
                    let now = self.clock.now();
                    self.engine.diagnose(d, now, &mut out);
                    self.commit(&mut out, None).await;
                }
                _ = tick.tick() => {
                    self.hand_on_gathered(&mut drops);
                    let now = self.clock.now();
                    self.state.rules_alive(now);
                    self.engine.tick(now, &mut out);
                    self.commit(&mut out, None).await;
                }
            }
        }
    }

    /// Evaluates one batch and hands it on to the stores and history, with its receipt if
    /// its source waits for durability.
    /// A reading a suspect-data check doubts goes on marked `suspect`.
    async fn take(&mut self, mut batch: ReadingBatch, receipt: Option<Receipt>, out: &mut Output, drops: &mut DropLog) {
        let mut counts = [0u64; QUALITIES.len()];
        for r in &mut batch {
            r.quality = self.engine.evaluate(r, out);
            counts[QUALITIES.iter().position(|q| *q == r.quality).unwrap_or(0)] += 1;
        }
        for (q, n) in QUALITIES.iter().zip(counts).filter(|(_, n)| *n > 0) {
            self.metrics
                .readings
                .get_or_create(&QualityLabel { quality: q.as_str() })
                .inc_by(n);
        }
        self.state.update(&batch);
        self.commit(out, None).await;
        self.parked.hold(&batch, receipt.as_ref(), &self.metrics);
        // Northbound messages follow each source batch (one message per device poll).
        self.north.offer(&batch, receipt.as_ref(), &self.metrics.north);
        match receipt {
            None => {
                self.gathered.extend_from_slice(&batch);
                if self.gathered.len() >= GATHER_MAX {
                    self.hand_on_gathered(drops);
                }
            }
            Some(receipt) => {
                // In order: what was gathered before goes first.
                self.hand_on_gathered(drops);
                self.to_history(batch, Some(receipt), drops);
            }
        }
    }

    /// Hands the gathered readings on to history and the stores as one batch.
    fn hand_on_gathered(&mut self, drops: &mut DropLog) {
        if self.gathered.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.gathered);
        self.to_history(batch, None, drops);
    }

    /// Hands what the engine produced to the journal writer (which publishes after storing).
    async fn commit(&mut self, out: &mut Output, reply: Option<tokio::sync::oneshot::Sender<JobReply>>) {
        if out.is_empty() && reply.is_none() {
            return;
        }
        let job = JournalJob {
            events: std::mem::take(&mut out.events),
            timers: std::mem::take(&mut out.timers),
            flood: out.flood.take().map(|f| (f, self.clock.now())),
            stats: self.engine.stats(),
            reply,
        };
        if self.journal.send(job).await.is_err() {
            warn!("Alarm journal writer is gone; transitions not published");
        }
    }

    /// Hands a batch to every store and to history; a full intake loses the batch for that
    /// sink only, counted and logged (and its receipt clone is dropped: counted lost is
    /// settled).
    fn to_history(&self, batch: ReadingBatch, receipt: Option<Receipt>, drops: &mut DropLog) {
        for (store, tx) in &self.stores {
            let item = match &receipt {
                Some(r) => SinkItem::Durable(batch.clone(), r.clone()),
                None => SinkItem::Readings(batch.clone()),
            };
            if let Err(e) = tx.try_send(item) {
                let (reason, lost) = match e {
                    mpsc::error::TrySendError::Full(item) => ("queue_full", item.len()),
                    mpsc::error::TrySendError::Closed(item) => ("closed", item.len()),
                };
                let label = StoreReason {
                    store: store.clone(),
                    reason,
                };
                self.metrics.tsdb.dropped.get_or_create(&label).inc_by(lost as u64);
                drops.record(reason, lost);
            }
        }
        if let Err(e) = self.history_tx.try_send((batch, receipt)) {
            let (reason, lost) = match e {
                mpsc::error::TrySendError::Full(b) => ("queue_full", b.0.len()),
                mpsc::error::TrySendError::Closed(b) => ("write_error", b.0.len()),
            };
            self.metrics
                .history_dropped
                .get_or_create(&ReasonLabel { reason })
                .inc_by(lost as u64);
            drops.record(reason, lost);
        }
    }
}

/// What history takes: a batch, with the receipt it settles once committed.
pub(super) type HistoryItem = crate::sinks::history::HistoryItem;

type JobReply = Result<crate::model::AlarmEvent, crate::rules::CommandError>;

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
