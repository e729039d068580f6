//! The intake half of a store: encodes readings and alarm transitions into line protocol,
//! gathers them into batches by line count and age, and persists each batch in the
//! durable buffer before anything is sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{error, warn};

use super::schema::{self, Encoded, ReadingEncoder};
use crate::clock::SharedClock;
use crate::model::{AlarmEvent, ReadingBatch, Receipt};
use crate::sinks::buffer::DiskQueue;
use crate::telemetry::{LogEvery, StoreLabel, StoreReason, TsdbMetrics};

/// What the rules engine hands to a store.
#[derive(Debug, Clone)]
pub enum SinkItem {
    /// One poll cycle's readings.
    Readings(ReadingBatch),
    /// Readings whose source acknowledges upstream once they are durable: the receipt is
    /// held until the buffer record holding them is written (or their loss counted). The
    /// intake writes as soon as nothing more is waiting, so receipts are never held for
    /// `batch_age`, and a burst still goes out as one record.
    Durable(ReadingBatch, Receipt),
    /// One alarm transition; flushed at once, it never waits for a batch to fill.
    Alarm(Box<AlarmEvent>),
}

impl SinkItem {
    /// Records it carries (readings, or one alarm transition).
    pub fn len(&self) -> usize {
        match self {
            SinkItem::Readings(b) | SinkItem::Durable(b, _) => b.len(),
            SinkItem::Alarm(_) => 1,
        }
    }

    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything the intake loop needs.
#[derive(Debug)]
pub(super) struct Intake {
    pub(super) store: String,
    pub(super) gateway: String,
    pub(super) encoder: ReadingEncoder,
    pub(super) queue: Arc<Mutex<DiskQueue>>,
    pub(super) notify: Arc<Notify>,
    pub(super) clock: SharedClock,
    pub(super) metrics: TsdbMetrics,
    pub(super) batch_lines: usize,
    pub(super) batch_age: Duration,
    /// Limits the lines of repeated buffer write failures (a full disk fails every batch).
    pub(super) write_log: Mutex<LogEvery>,
}

#[derive(Debug, Default)]
struct Pending {
    text: String,
    lines: u32,
    since: Option<Instant>,
    /// Receipts of the readings in `text`, settled by the next flush.
    receipts: Vec<Receipt>,
}

impl Intake {
    fn label(&self) -> StoreLabel {
        StoreLabel {
            store: self.store.clone(),
        }
    }

    fn count_drop(&self, reason: &'static str, n: u64) {
        self.metrics
            .dropped
            .get_or_create(&StoreReason {
                store: self.store.clone(),
                reason,
            })
            .inc_by(n);
    }

    /// Runs until `rx` closes, then persists what is pending and returns.
    pub(super) async fn run(self, mut rx: mpsc::Receiver<SinkItem>) {
        let mut p = Pending::default();
        loop {
            let deadline = p.since.map(|t| t + self.batch_age);
            tokio::select! {
                item = rx.recv() => match item {
                    Some(SinkItem::Readings(batch)) => {
                        self.add(&batch, &mut p).await;
                        if !p.receipts.is_empty() && rx.is_empty() {
                            self.flush(&mut p).await;
                        }
                    }
                    Some(SinkItem::Durable(batch, receipt)) => {
                        self.add(&batch, &mut p).await;
                        p.receipts.push(receipt);
                        // Group commit: everything already waiting joins this record.
                        if rx.is_empty() {
                            self.flush(&mut p).await;
                        }
                    }
                    Some(SinkItem::Alarm(e)) => {
                        match schema::encode_alarm(&self.gateway, &e, &mut p.text) {
                            Ok(()) => p.lines += 1,
                            Err(err) => {
                                self.count_drop(err.kind(), 1);
                                warn!(store = %self.store, alarm = %e.alarm_id, error = %err, "Alarm transition cannot be written as line protocol; dropped");
                            }
                        }
                        self.flush(&mut p).await;
                    }
                    None => {
                        self.flush(&mut p).await;
                        return;
                    }
                },
                () = sleep_until(deadline) => self.flush(&mut p).await,
            }
        }
    }

    /// Encodes a batch into the pending record; writes it when it reaches `batch_lines`.
    async fn add(&self, batch: &ReadingBatch, p: &mut Pending) {
        for r in batch {
            if p.since.is_none() {
                p.since = Some(Instant::now());
            }
            match self.encoder.encode(r, &mut p.text) {
                Ok(Encoded::Full) => p.lines += 1,
                Ok(Encoded::ValueOmitted) => {
                    p.lines += 1;
                    self.metrics.values_omitted.get_or_create(&self.label()).inc();
                }
                Err(e) => {
                    self.count_drop(e.kind(), 1);
                    warn!(store = %self.store, error = %e, "Reading cannot be written as line protocol; dropped");
                }
            }
            if p.lines as usize >= self.batch_lines {
                self.flush(p).await;
            }
        }
    }

    /// Writes the pending record to the buffer (or counts its lines lost), then settles
    /// the receipts of the readings it held.
    async fn flush(&self, p: &mut Pending) {
        self.write(p).await;
        p.receipts.clear();
    }

    async fn write(&self, p: &mut Pending) {
        let lines = std::mem::take(&mut p.lines);
        p.since = None;
        if lines == 0 {
            p.text.clear();
            return;
        }
        let bytes = std::mem::take(&mut p.text).into_bytes();
        let queue = self.queue.clone();
        let now = self.clock.now();
        let result = tokio::task::spawn_blocking(move || {
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            let r = q.append(&bytes, lines, now);
            (r, q.stats())
        })
        .await;
        match result {
            Ok((Ok(a), stats)) => {
                if a.seq.is_some() {
                    self.metrics
                        .buffered
                        .get_or_create(&self.label())
                        .inc_by(u64::from(lines));
                }
                if a.dropped_items > 0 {
                    self.count_drop("buffer_full", a.dropped_items);
                    warn!(store = %self.store, batches = a.dropped_records, lines = a.dropped_items,
                          "Store buffer full; buffered lines dropped");
                }
                super::set_gauges(&self.metrics, &self.label(), &stats, now);
                self.notify.notify_one();
            }
            Ok((Err(e), _)) => {
                self.count_drop("buffer_error", u64::from(lines));
                if let Some(held) = self.write_log.lock().unwrap_or_else(|e| e.into_inner()).hit() {
                    error!(store = %self.store, error = %e, lines, failures_not_logged = held,
                           "Store buffer write failed; lines lost");
                }
            }
            Err(e) => {
                self.count_drop("buffer_error", u64::from(lines));
                error!(store = %self.store, error = %e, lines, "Store buffer task failed; lines lost");
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
