//! Time-series store output: InfluxDB line protocol over HTTP (v2 and v1 write APIs), fed
//! from a durable per-store buffer so an outage of the store loses nothing.
//!
//! Design: each configured store runs on its own: an intake task (encode, batch, persist in
//! the store's [`DiskQueue`]) and a sender task (send in order with bounded concurrency,
//! retry, dead-letter, acknowledge). The rules engine hands reading batches to the intake
//! with `try_send` and never waits, so a dead store costs at most its own buffer; readings
//! are counted as accepted once persisted, and the buffer replays them after an outage or a
//! restart. Alarm transitions reach the intake through a tap on the live alarm feed.

pub mod config;
pub mod dead_letter;
mod intake;
pub mod line;
pub mod schema;
mod sender;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::TsdbSpec;
pub use intake::SinkItem;
pub use sender::backoff;

use crate::clock::SharedClock;
use crate::model::{AlarmEvent, PointTable, Timestamp};
use crate::sinks::buffer::{BufferError, BufferStats, DiskQueue};
use crate::state::FeedEvent;
use crate::telemetry::{LogEvery, StoreLabel, StoreReason, TsdbMetrics};

/// Why a store could not start.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// Its buffer could not be opened.
    #[error("store `{store}`: {source}")]
    Buffer {
        /// Store name.
        store: String,
        /// Cause.
        source: BufferError,
    },
}

/// How long a stopping store keeps sending what its buffer holds before it leaves the rest
/// for the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// At most one log line per this interval for each kind of repeated buffer failure (a full
/// disk fails every batch); the metrics count every one.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A running store output.
#[derive(Debug)]
pub struct Store {
    /// Name from the config.
    pub name: String,
    /// Where the rules engine hands readings (with `try_send`).
    pub tx: mpsc::Sender<SinkItem>,
    queue: Arc<Mutex<DiskQueue>>,
    intake: JoinHandle<()>,
    sender: JoinHandle<()>,
    stop: CancellationToken,
}

pub(crate) fn set_gauges(m: &TsdbMetrics, label: &StoreLabel, s: &BufferStats, now: Timestamp) {
    m.buffer_bytes
        .get_or_create(label)
        .set(i64::try_from(s.bytes).unwrap_or(i64::MAX));
    m.buffer_batches
        .get_or_create(label)
        .set(i64::try_from(s.records).unwrap_or(i64::MAX));
    m.buffer_pending_bytes
        .get_or_create(label)
        .set(i64::try_from(s.pending_bytes).unwrap_or(i64::MAX));
    let age = s.oldest.map_or(0, |t| now.since(t).as_secs());
    m.buffer_oldest_age
        .get_or_create(label)
        .set(i64::try_from(age).unwrap_or(i64::MAX));
}

/// Directory of a store's buffer under the gateway's data dir.
pub fn buffer_dir(data_dir: &Path, store: &str) -> PathBuf {
    data_dir.join("tsdb").join(store)
}

/// File where a store's refused batches are kept, with the reason.
pub fn dead_letter_file(data_dir: &Path, store: &str) -> PathBuf {
    data_dir.join("tsdb").join(format!("{store}.dead-letter.lp"))
}

impl Store {
    /// Opens the store's buffer (replaying what a previous run left) and starts its tasks.
    pub fn start(
        spec: &TsdbSpec,
        gateway: &str,
        points: &PointTable,
        data_dir: &Path,
        clock: SharedClock,
        metrics: TsdbMetrics,
    ) -> Result<Store, TsdbError> {
        let dir = buffer_dir(data_dir, &spec.name);
        let (queue, rec) = DiskQueue::open(&dir, spec.buffer.clone()).map_err(|source| TsdbError::Buffer {
            store: spec.name.clone(),
            source,
        })?;
        let label = StoreLabel {
            store: spec.name.clone(),
        };
        if rec.damaged > 0 {
            metrics.buffer_damaged.get_or_create(&label).inc_by(rec.damaged);
            // Each stretch by place, the first few: a wrecked disk must not flood the log.
            for (path, offset, bytes) in rec.damage.iter().take(10) {
                warn!(store = %spec.name, segment = %path.display(), offset, bytes, "Store buffer: damaged stretch skipped");
            }
            warn!(store = %spec.name, damaged = rec.damaged, "Store buffer had damaged records; skipped");
        }
        set_gauges(&metrics, &label, &queue.stats(), clock.now());
        info!(store = %spec.name, url = %spec.url, replay_batches = rec.records, "Time-series store output started");
        let queue = Arc::new(Mutex::new(queue));
        let notify = Arc::new(Notify::new());
        let (tx, rx) = mpsc::channel(spec.queue_batches);
        let intake = intake::Intake {
            store: spec.name.clone(),
            gateway: gateway.to_string(),
            encoder: schema::ReadingEncoder::new(gateway, points),
            queue: queue.clone(),
            notify: notify.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            batch_lines: spec.batch_lines,
            batch_age: spec.batch_age,
            write_log: Mutex::new(LogEvery::new(LOG_EVERY)),
        };
        let stop = CancellationToken::new();
        // The store's client is built in its own task, retried until it can be: a store that
        // cannot send (a secret missing from the environment) must never stop the gateway
        // from starting and alarming. Its readings are buffered on disk meanwhile.
        let (owned, stop_sender, sender_queue) = (spec.clone(), stop.clone(), queue.clone());
        let dead_letter = dead_letter_file(data_dir, &spec.name);
        let sender_task = async move {
            let (spec, stop) = (owned, stop_sender);
            let Some(writer) = sender::connect(&spec, &metrics, &stop).await else {
                return;
            };
            sender::Sender {
                store: spec.name.clone(),
                writer,
                queue: sender_queue,
                notify,
                clock,
                metrics,
                concurrency: spec.concurrency,
                retry_min: spec.retry_min,
                retry_max: spec.retry_max,
                dead_letter,
                dead_letter_max: spec.dead_letter_max,
                read_log: Mutex::new(LogEvery::new(LOG_EVERY)),
            }
            .run(stop)
            .await;
        };
        Ok(Store {
            name: spec.name.clone(),
            tx,
            queue,
            intake: tokio::spawn(intake.run(rx)),
            sender: tokio::spawn(sender_task),
            stop,
        })
    }

    /// Waits for the intake to persist what it holds (every sender of `tx` must be gone),
    /// gives the sender a short grace to deliver, then stops it; the rest is replayed on
    /// the next start.
    pub async fn shutdown(self) {
        drop(self.tx);
        let _ = self.intake.await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while tokio::time::Instant::now() < deadline {
            if self.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.cancel();
        let _ = self.sender.await;
        let left = self.queue.lock().unwrap_or_else(|e| e.into_inner()).stats();
        info!(store = %self.name, batches_left = left.records, "Time-series store output stopped");
    }
}

/// Forwards published alarm transitions to the stores. Runs beside the rules task, never in
/// it: the rules task only publishes to the broadcast, this tap may wait for a store's queue.
pub fn spawn_alarm_tap(
    mut events: broadcast::Receiver<FeedEvent>,
    stores: Vec<(String, mpsc::Sender<SinkItem>)>,
    metrics: TsdbMetrics,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                r = events.recv() => r,
                () = stop.cancelled() => {
                    // Drain what was published before the stop.
                    while let Ok(e) = events.try_recv() {
                        if let FeedEvent::Alarm(e) = e {
                            forward(&stores, *e).await;
                        }
                    }
                    return;
                }
            };
            match event {
                Ok(FeedEvent::Alarm(e)) => forward(&stores, *e).await,
                Ok(FeedEvent::Flood { .. }) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    for (store, _) in &stores {
                        metrics
                            .dropped
                            .get_or_create(&StoreReason {
                                store: store.clone(),
                                reason: "alarm_feed_lagged",
                            })
                            .inc_by(n);
                    }
                    warn!(
                        missed = n,
                        "Alarm tap fell behind the live feed; transitions not sent to stores"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

async fn forward(stores: &[(String, mpsc::Sender<SinkItem>)], e: AlarmEvent) {
    for (_, tx) in stores {
        // A closed intake means the gateway is stopping; nothing else to do.
        let _ = tx.send(SinkItem::Alarm(Box::new(e.clone()))).await;
    }
}
