//! The embedded history store: raw readings for a short window and per-minute rollups for a
//! long one, in one SQLite file (`history.db`), so a duty officer can review the hours
//! before an incident from the gateway alone.
//!
//! Design: the rules task hands reading batches on with `try_send` into a bounded channel;
//! one writer thread owns the write connection. A slow disk can cost history (counted in
//! `hazard_history_readings_dropped_total`) but never delays an alarm. For each reading the
//! writer (see [`writer`]) adds it to its point's open minute and asks the policy (see
//! [`policy`]) whether raw history keeps it: on a change beyond the point's deadband, on a
//! quality change, or at least once per heartbeat. Closed minutes and kept raw rows are
//! written to each tier's tail table in one transaction per batch, which also packs the
//! tails that are due into compact blocks (see [`blocks`] and [`codec`]). The API reads
//! through its own connection, blocks and tails together; WAL mode lets it read while the
//! writer writes. Each tier is pruned on its own window, by whole blocks.
//!
//! Layout and upgrade of older files: see [`schema`]. A crash loses the batches still in
//! the channel and the minutes still open (up to a minute and the grace), nothing that was
//! committed: a pack moves rows into blocks inside one transaction. SQLite's journal keeps
//! the file whole, and a minute written in parts merges exactly on restart.

mod blocks;
pub mod codec;
pub mod policy;
mod reader;
pub mod rollup;
pub mod schema;
mod store;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, error};

pub use policy::{HistoryPolicy, HistorySettings};
pub use reader::{HistoryReader, HistoryRow, MinuteRow, Resolution, auto_resolution};
pub use store::{HistoryStore, Packed, Pruned};
pub use writer::{HistoryWriter, Ingested, Retention};

use crate::clock::SharedClock;
use crate::model::ReadingBatch;
use crate::model::Timestamp;
use crate::telemetry::{Metrics, ReasonLabel};

/// Errors of the SQLite-backed stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("{path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored row holds something this version cannot read.
    #[error("{path}: unreadable row: {detail}")]
    BadRow {
        /// Database file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The file was written by a newer version; it is left untouched.
    #[error(
        "{path}: history layout {found} is newer than this version understands ({known}); the file was not changed"
    )]
    Layout {
        /// Database file.
        path: PathBuf,
        /// Layout in the file.
        found: i64,
        /// Newest layout this version knows.
        known: i64,
    },
}

/// Page-cache budget of one SQLite connection, in KiB. Each connection's cache grows as pages
/// are read until it reaches its budget, so the gateway's memory levels off at a known ceiling
/// instead of depending on SQLite's compiled-in default.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CacheBudget {
    /// The history writer: packs blocks from the tail tables every batch.
    Writer = 2048,
    /// API queries over history and the journal.
    Reader = 1024,
    /// The alarm journal writer: appends, rarely reads.
    Journal = 512,
    /// A connection that only checkpoints.
    Checkpointer = 64,
}

/// Opens `path` with a page cache bounded by `budget`.
pub(crate) fn open_sqlite(path: &Path, budget: CacheBudget) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path).map_err(sqlite_err(path))?;
    // A negative cache_size is a size in KiB rather than a page count.
    conn.pragma_update(None, "cache_size", -(budget as i64))
        .map_err(sqlite_err(path))?;
    Ok(conn)
}

pub(crate) fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn tier_err(path: &Path) -> impl Fn(blocks::TierError) -> StoreError + '_ {
    move |e| match e {
        blocks::TierError::Sqlite(source) => StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        },
        blocks::TierError::Bad(detail) => StoreError::BadRow {
            path: path.to_path_buf(),
            detail,
        },
    }
}

/// Batches merged into one transaction at most.
const MAX_BATCHES_PER_TX: usize = 256;
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A batch for the history writer, with the receipt it settles once the batch is
/// committed (or counted lost), for sources that acknowledge upstream only then.
pub type HistoryItem = (ReadingBatch, Option<crate::model::Receipt>);

/// Runs the writer on its own thread until `rx` closes, then drains it, writes the open
/// minutes and returns. Each transaction takes every batch waiting (a group commit), and
/// their receipts are settled only after it.
pub fn spawn_writer(
    mut writer: HistoryWriter,
    mut rx: mpsc::Receiver<HistoryItem>,
    clock: SharedClock,
    keep: Retention,
    metrics: Metrics,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || {
            let mut last_prune: Option<Timestamp> = None;
            let mut receipts = Vec::new();
            // A failing disk fails every transaction: one line per interval, with the count.
            let mut write_log = crate::telemetry::LogEvery::new(Duration::from_secs(10));
            while let Some((first, receipt)) = rx.blocking_recv() {
                let mut batches = vec![first];
                receipts.extend(receipt);
                while batches.len() < MAX_BATCHES_PER_TX {
                    match rx.try_recv() {
                        Ok((b, r)) => {
                            batches.push(b);
                            receipts.extend(r);
                        }
                        Err(_) => break,
                    }
                }
                let now = clock.now();
                let count: usize = batches.iter().map(Vec::len).sum();
                match writer.ingest(&batches, now) {
                    Ok(done) => count_written(&metrics, &done),
                    Err(e) => {
                        metrics
                            .history_dropped
                            .get_or_create(&ReasonLabel { reason: "write_error" })
                            .inc_by(count as u64);
                        if let Some(held) = write_log.hit() {
                            error!(error = %e, readings = count, failures_not_logged = held,
                                   "History write failed; readings lost");
                        }
                    }
                }
                // Committed, or counted lost: either way settled.
                receipts.clear();
                if last_prune.is_none_or(|t| now.since(t) >= PRUNE_EVERY) {
                    last_prune = Some(now);
                    match writer.prune(now, keep) {
                        Ok(p) if p != Pruned::default() => {
                            debug!(
                                raw = p.raw,
                                minutes = p.minutes,
                                legacy = p.legacy,
                                "Pruned history past retention"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => error!(error = %e, "History prune failed"),
                    }
                }
            }
            let pending = writer.pending();
            match writer.flush() {
                Ok(done) => count_written(&metrics, &done),
                Err(e) => {
                    metrics
                        .history_dropped
                        .get_or_create(&ReasonLabel { reason: "write_error" })
                        .inc_by(pending);
                    error!(error = %e, readings = pending, "History flush failed; open minutes lost");
                }
            }
        })
}

fn count_written(metrics: &Metrics, done: &Ingested) {
    metrics.history_written.inc_by(done.readings as u64);
    metrics.history_raw_rows.inc_by(done.raw as u64);
    metrics.history_minute_rows.inc_by(done.minutes as u64);
}

#[cfg(test)]
mod tests;
