//! Durable store-and-forward queue of byte records: persisted before they are sent,
//! removed only when the receiver acknowledged them. Used by the time-series writers and
//! meant for any uplink that needs at-least-once delivery (regulator platforms, MQTT).
//!
//! # Format
//! A directory of append-only segment files `seg-<first seq, 20 digits>.hgq`, each a run of
//! frames (see [`frame`]: magic, length, sequence, creation time, item count, CRC-32,
//! payload), plus a file `acked` holding the ack watermark (u64 LE + CRC-32 of it): every
//! record below the watermark was acknowledged.
//!
//! # Invariants
//! - Sequence numbers strictly increase across segments; replay follows them.
//! - A record's bytes are written (and, per [`FsyncPolicy`], synced) before
//!   [`DiskQueue::append`] returns, so the caller may report it accepted.
//! - A failed write or sync seals its segment: nothing is appended to it again (its tail
//!   may hold a partial frame a full disk left), and the next append starts a new segment.
//!   The failed record is not queued; the caller counts it lost.
//! - Every record is checked when read back (magic, length, CRC, sequence), whatever the
//!   index says: one that fails is removed and returned as [`BufferError::Corrupt`] naming
//!   segment and offset, a counted loss; bytes that were not written as that record are
//!   never handed out.
//! - A segment is deleted only when every record in it was acknowledged (or dropped).
//! - The bytes of all segment files stay within `max_bytes`; to make room, whole oldest
//!   segments are dropped ([`WhenFull::DropOldest`]) or the new record is refused
//!   ([`WhenFull::DropNewest`]). Either way the caller gets the lost records and items, to
//!   count and log.
//!
//! # What a crash leaves, and recovery
//! A crash can leave a torn last frame, acknowledged records in a partly acknowledged
//! segment, and a watermark older than the last acknowledgement (acks that arrived out of
//! order are not persisted). On open every segment is scanned: intact frames at or above
//! the watermark are queued again in sequence order; damaged or torn stretches are skipped
//! up to the next intact frame and counted. Writing always resumes in a fresh segment, so
//! new frames never follow damage. Records acknowledged but not yet below the watermark
//! are sent again: delivery is at least once, and a time-series write of the same series
//! and timestamp is idempotent.

pub mod frame;
mod queue;
pub mod replica;

pub use queue::{Appended, BufferStats, DiskQueue, Record, Recovery};

use std::path::PathBuf;
use std::time::Duration;

/// What happens when a new record does not fit in `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Delete the oldest segment(s) to make room: the oldest unsent data is lost, counted
    /// and logged; the newest data, usually the most useful after a long outage, is kept.
    #[default]
    DropOldest,
    /// Refuse the new record: the newest data is lost, counted and logged; the buffered
    /// backlog is kept intact for replay.
    DropNewest,
}

/// When appended bytes are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every append and acknowledgement: survives power loss, costs a disk flush each.
    Always,
    /// At most once per interval: a power loss may lose that interval; a process crash loses
    /// nothing (the bytes are in the OS page cache).
    Interval(Duration),
    /// Never explicitly: the OS writes back on its own schedule (a process crash loses
    /// nothing, a power loss may lose up to the kernel's writeback delay, ~30 s).
    Never,
}

/// Settings of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferConfig {
    /// Most bytes the segment files may hold together.
    pub max_bytes: u64,
    /// Size at which a segment is closed and a new one started.
    pub segment_bytes: u64,
    /// What to lose when full.
    pub when_full: WhenFull,
    /// When to sync to disk.
    pub fsync: FsyncPolicy,
}

impl BufferConfig {
    /// A config with the segment size derived from `max_bytes` (1/16th, 64 KiB..64 MiB).
    pub fn new(max_bytes: u64, when_full: WhenFull, fsync: FsyncPolicy) -> Self {
        Self {
            max_bytes,
            segment_bytes: (max_bytes / 16).clamp(64 * 1024, 64 * 1024 * 1024),
            when_full,
            fsync,
        }
    }
}

/// Errors of the durable queue.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// A file operation failed.
    #[error("buffer file {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A queued record did not read back as written (torn or failed write, damaged disk):
    /// it was removed from the queue and is a loss the caller must count and log.
    #[error("buffer record {seq} in {path} at offset {offset} is damaged ({fault}); {items} items skipped")]
    Corrupt {
        /// Segment file.
        path: PathBuf,
        /// Byte offset of the frame in it.
        offset: u64,
        /// Sequence number of the record.
        seq: u64,
        /// Items the record carried (lost).
        items: u32,
        /// What the check found.
        fault: frame::Fault,
    },
    /// The record alone is larger than the whole buffer.
    #[error("record of {len} bytes is larger than the buffer's max_bytes ({max})")]
    TooLarge {
        /// Record size with its header.
        len: u64,
        /// The buffer's limit.
        max: u64,
    },
}

impl BufferError {
    /// A bounded name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            BufferError::Io { .. } => "io",
            BufferError::Corrupt { .. } => "corrupt",
            BufferError::TooLarge { .. } => "too_large",
        }
    }
}
