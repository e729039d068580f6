//! The sending half of a store: takes batches from the durable buffer in order, keeps up to
//! `concurrency` requests in flight, retries what may succeed later and dead-letters what
//! never will, and acknowledges each batch in the buffer only after the store answered.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::TsdbSpec;
use super::dead_letter;
use super::writer::{Outcome, Writer};
use crate::clock::SharedClock;
use crate::sinks::buffer::{BufferError, DiskQueue, Record};
use crate::telemetry::{LogEvery, StoreLabel, StoreReason, TsdbMetrics};

/// The delay before retry number `attempt` (0-based): doubling from `min`, capped at `max`,
/// with "equal jitter" (half fixed, half random, `jitter` in 0..1) so that gateways that
/// lost the same store do not all come back in the same instant.
pub fn backoff(attempt: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let base = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    base / 2 + base.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// Builds the store's client, retrying with backoff until it can (a secret set, a CA file
/// readable) or `stop` fires. While it cannot, the store is marked unusable (metric and
/// `/readyz` reason) and the cause is logged at the first try and every tenth after.
pub(super) async fn connect(spec: &TsdbSpec, metrics: &TsdbMetrics, stop: &CancellationToken) -> Option<Writer> {
    let label = StoreLabel {
        store: spec.name.clone(),
    };
    let mut attempt = 0u32;
    loop {
        match Writer::build(spec) {
            Ok(w) => {
                if attempt > 0 {
                    info!(store = %spec.name, attempts = attempt + 1, "Store output can send now");
                }
                metrics.unusable.get_or_create(&label).set(0);
                metrics
                    .unusable_reasons
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&spec.name);
                return Some(w);
            }
            Err(e) => {
                metrics.unusable.get_or_create(&label).set(1);
                metrics
                    .unusable_reasons
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(spec.name.clone(), {
                        // `/readyz` names the store itself.
                        let text = e.to_string();
                        let prefix = format!("store `{}`: ", spec.name);
                        text.strip_prefix(&prefix).map_or(text.clone(), str::to_string)
                    });
                let wait = backoff(attempt, spec.retry_min, spec.retry_max, rand::rng().random::<f64>());
                if attempt % 10 == 0 {
                    error!(store = %spec.name, error = %e, attempt = attempt + 1, retry_in_ms = wait.as_millis() as u64,
                           "Store output cannot send; its readings are buffered, alarms go on; will retry");
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return None,
                }
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// Everything the sender loop needs.
#[derive(Debug)]
pub(super) struct Sender {
    pub(super) store: String,
    pub(super) writer: Writer,
    pub(super) queue: Arc<Mutex<DiskQueue>>,
    pub(super) notify: Arc<Notify>,
    pub(super) clock: SharedClock,
    pub(super) metrics: TsdbMetrics,
    pub(super) concurrency: usize,
    pub(super) retry_min: Duration,
    pub(super) retry_max: Duration,
    pub(super) dead_letter: PathBuf,
    pub(super) dead_letter_max: u64,
    /// Limits the lines of a stretch of damaged records or of a buffer that cannot be read.
    pub(super) read_log: Mutex<LogEvery>,
}

enum Done {
    Delivered,
    DeadLettered,
}

/// How often the oldest-age gauge is refreshed while nothing else happens.
const GAUGE_EVERY: Duration = Duration::from_secs(1);

impl Sender {
    fn label(&self) -> StoreLabel {
        StoreLabel {
            store: self.store.clone(),
        }
    }

    /// Runs until `stop` fires; batches in flight then stay in the buffer for the next run.
    pub(super) async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let mut inflight = FuturesUnordered::new();
        let mut tick = tokio::time::interval(GAUGE_EVERY);
        loop {
            while inflight.len() < this.concurrency {
                match this.take().await {
                    Some(rec) => inflight.push(this.clone().deliver(rec)),
                    None => break,
                }
            }
            tokio::select! {
                Some((seq, lines, done)) = inflight.next(), if !inflight.is_empty() => {
                    this.finish(seq, lines, done).await;
                }
                () = this.notify.notified() => {}
                _ = tick.tick() => this.refresh_gauges().await,
                () = stop.cancelled() => return,
            }
        }
    }

    /// The next batch to send. A batch that fails its check on read is counted lost (with
    /// its segment and offset in the log) and the next one is taken instead.
    async fn take(&self) -> Option<Record> {
        loop {
            let queue = self.queue.clone();
            let taken =
                tokio::task::spawn_blocking(move || queue.lock().unwrap_or_else(|e| e.into_inner()).next_unsent())
                    .await;
            match taken {
                Ok(Ok(r)) => return r,
                Ok(Err(BufferError::Corrupt {
                    path,
                    offset,
                    seq,
                    items,
                    fault,
                })) => {
                    self.metrics.buffer_damaged.get_or_create(&self.label()).inc();
                    self.metrics
                        .dropped
                        .get_or_create(&StoreReason {
                            store: self.store.clone(),
                            reason: "buffer_corrupt",
                        })
                        .inc_by(u64::from(items));
                    if let Some(held) = self.read_log.lock().unwrap_or_else(|e| e.into_inner()).hit() {
                        error!(store = %self.store, segment = %path.display(), offset, seq, lines = items,
                               fault = fault.kind(), detail = %fault, not_logged_since_last = held,
                               "Store buffer batch does not read back as written; skipped, lines lost");
                    }
                }
                Ok(Err(e)) => {
                    if let Some(held) = self.read_log.lock().unwrap_or_else(|e| e.into_inner()).hit() {
                        error!(store = %self.store, error = %e, not_logged_since_last = held, "Cannot read the store buffer");
                    }
                    return None;
                }
                Err(e) => {
                    error!(store = %self.store, error = %e, "Store buffer task failed");
                    return None;
                }
            }
        }
    }

    async fn deliver(self: Arc<Self>, rec: Record) -> (u64, u32, Done) {
        let mut attempt = 0u32;
        loop {
            match self.writer.send(&rec.payload).await {
                Outcome::Accepted => {
                    if attempt > 0 {
                        info!(store = %self.store, seq = rec.seq, attempts = attempt + 1, "Store accepted batch after retries");
                    }
                    return (rec.seq, rec.items, Done::Delivered);
                }
                Outcome::Rejected { status, body } => {
                    self.write_dead_letter(&rec, status, &body).await;
                    return (rec.seq, rec.items, Done::DeadLettered);
                }
                Outcome::Retry { reason, after, detail } => {
                    self.metrics
                        .retried
                        .get_or_create(&StoreReason {
                            store: self.store.clone(),
                            reason,
                        })
                        .inc();
                    let wait = backoff(attempt, self.retry_min, self.retry_max, rand::rng().random::<f64>())
                        .max(after.unwrap_or_default());
                    // First failure and then every tenth: an outage of hours must not flood the log.
                    if attempt % 10 == 0 {
                        warn!(store = %self.store, seq = rec.seq, reason, error = %detail, attempt = attempt + 1,
                              retry_in_ms = wait.as_millis() as u64, "Store write failed; will retry");
                    }
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    async fn write_dead_letter(&self, rec: &Record, status: u16, body: &str) {
        self.metrics.dead_lettered.get_or_create(&self.label()).inc();
        let path = self.dead_letter.clone();
        let header = format!(
            "# rejected by the store at {} ns: HTTP {status}: {body}; batch {} of {} lines\n",
            self.clock.now().as_nanos(),
            rec.seq,
            rec.items
        );
        let payload = rec.payload.clone();
        let max = self.dead_letter_max;
        let written =
            tokio::task::spawn_blocking(move || dead_letter::append(&path, max, header.as_bytes(), &payload)).await;
        match written {
            Ok(Ok(appended)) => {
                if appended.rotated {
                    self.metrics.dead_letter_rotations.get_or_create(&self.label()).inc();
                }
                if appended.discarded_bytes > 0 {
                    self.metrics
                        .dead_letter_discarded
                        .get_or_create(&self.label())
                        .inc_by(appended.discarded_bytes);
                    warn!(store = %self.store, bytes = appended.discarded_bytes, max_bytes = max,
                          "Dead-letter file full; the oldest refused batches were deleted");
                }
                warn!(store = %self.store, status, reason = %body, seq = rec.seq, lines = rec.items,
                      file = %self.dead_letter.display(), "Store refused batch; written to dead-letter file")
            }
            Ok(Err(e)) => error!(store = %self.store, status, reason = %body, error = %e, lines = rec.items,
                                 "Store refused batch and the dead-letter file cannot be written; batch lost"),
            Err(e) => error!(store = %self.store, error = %e, "Dead-letter task failed"),
        }
    }

    async fn finish(&self, seq: u64, lines: u32, done: Done) {
        match done {
            Done::Delivered => {
                self.metrics.sent.get_or_create(&self.label()).inc_by(u64::from(lines));
                self.metrics.batches_sent.get_or_create(&self.label()).inc();
            }
            Done::DeadLettered => {
                self.metrics
                    .dropped
                    .get_or_create(&StoreReason {
                        store: self.store.clone(),
                        reason: "rejected",
                    })
                    .inc_by(u64::from(lines));
            }
        }
        let queue = self.queue.clone();
        let acked = tokio::task::spawn_blocking(move || {
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            q.ack(seq).map(|()| q.stats())
        })
        .await;
        match acked {
            Ok(Ok(stats)) => super::set_gauges(&self.metrics, &self.label(), &stats, self.clock.now()),
            Ok(Err(e)) => {
                error!(store = %self.store, error = %e, seq, "Cannot record acknowledgement; batch will be sent again")
            }
            Err(e) => error!(store = %self.store, error = %e, "Store buffer task failed"),
        }
    }

    async fn refresh_gauges(&self) {
        let queue = self.queue.clone();
        if let Ok(stats) =
            tokio::task::spawn_blocking(move || queue.lock().unwrap_or_else(|e| e.into_inner()).stats()).await
        {
            super::set_gauges(&self.metrics, &self.label(), &stats, self.clock.now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(backoff(0, min, max, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(0, min, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, min, max, 0.5), Duration::from_millis(600));
        assert_eq!(backoff(10, min, max, 1.0), max);
        assert_eq!(backoff(u32::MAX, min, max, 0.0), max / 2);
    }
}
