//! The history writer's core: every reading goes into its minute, the policy picks the raw
//! rows, and both reach the store in one transaction. No channel, no thread: the writer
//! thread and the load harness drive it alike.

use std::time::Duration;

use super::StoreError;
use super::policy::{HistoryPolicy, RawFilter};
use super::rollup::{MinuteAgg, Rollups, minute_of};
use super::store::{HistoryStore, Pruned};
use crate::model::ReadingBatch;
use crate::model::{Reading, Timestamp};

/// Retention windows of the two tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long raw rows are kept.
    pub raw: Duration,
    /// How long minute rows are kept.
    pub rollup: Duration,
}

/// What one [`HistoryWriter::ingest`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Readings taken (each counted in its minute).
    pub readings: usize,
    /// Of them, kept as raw rows.
    pub raw: usize,
    /// Minute rows written or merged.
    pub minutes: usize,
    /// Tail rows packed into blocks (both tiers).
    pub packed: usize,
    /// Blocks written.
    pub blocks: usize,
}

/// Minutes stay open this long past their end for readings still on their way.
const ROLLUP_GRACE: Duration = Duration::from_secs(5);

/// Owns the store and the in-memory state in front of it.
#[derive(Debug)]
pub struct HistoryWriter {
    store: HistoryStore,
    policy: HistoryPolicy,
    filter: RawFilter,
    rollups: Rollups,
    raw: Vec<Reading>,
    closed: Vec<MinuteAgg>,
    /// The `now` of the last ingest, for the packing done by a flush.
    now: Timestamp,
}

impl HistoryWriter {
    /// A writer in front of `store`.
    pub fn new(store: HistoryStore, policy: HistoryPolicy) -> Self {
        // Sized for the point table now: grown one point at a time, they would keep up to
        // twice what they need.
        let points = policy.deadbands.len();
        Self {
            store,
            policy,
            filter: RawFilter::with_points(points),
            rollups: Rollups::with_points(points),
            raw: Vec::new(),
            closed: Vec::new(),
            now: Timestamp::from_nanos(0),
        }
    }

    /// The store it writes.
    pub fn store(&self) -> &HistoryStore {
        &self.store
    }

    /// Takes `batches` at `now`: counts every reading into its minute, keeps the raw rows the
    /// policy picks, closes minutes that ended before `now` (less a grace) and writes it all
    /// in one transaction. On a failed write the raw rows and minutes of the call are lost
    /// (the caller counts them) and the filter starts afresh, so each point's next reading
    /// is kept.
    pub fn ingest(&mut self, batches: &[ReadingBatch], now: Timestamp) -> Result<Ingested, StoreError> {
        self.raw.clear();
        self.closed.clear();
        let mut readings = 0;
        for r in batches.iter().flatten() {
            readings += 1;
            self.rollups.add(r, &mut self.closed);
            if self.filter.admit(&self.policy, r).is_some() {
                self.raw.push(*r);
            }
        }
        self.rollups
            .close_before(minute_of(now.minus(ROLLUP_GRACE)), &mut self.closed);
        self.now = self.now.max(now);
        self.write(readings)
    }

    /// Readings counted in minutes not yet written (lost if the process dies now).
    pub fn pending(&self) -> u64 {
        self.rollups.pending()
    }

    /// Writes every open minute (at shutdown).
    pub fn flush(&mut self) -> Result<Ingested, StoreError> {
        self.raw.clear();
        self.closed.clear();
        self.rollups.close_all(&mut self.closed);
        self.write(0)
    }

    fn write(&mut self, readings: usize) -> Result<Ingested, StoreError> {
        if self.raw.is_empty() && self.closed.is_empty() {
            return Ok(Ingested {
                readings,
                ..Ingested::default()
            });
        }
        match self.store.write(&self.raw, &self.closed, self.now) {
            Ok(p) => Ok(Ingested {
                readings,
                raw: self.raw.len(),
                minutes: self.closed.len(),
                packed: p.rows,
                blocks: p.blocks,
            }),
            Err(e) => {
                self.filter.forget_all();
                Err(e)
            }
        }
    }

    /// Prunes both tiers on their own windows, counted back from `now`.
    pub fn prune(&mut self, now: Timestamp, keep: Retention) -> Result<Pruned, StoreError> {
        self.store.prune(now.minus(keep.raw), now.minus(keep.rollup))
    }
}
