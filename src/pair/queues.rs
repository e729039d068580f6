//! Copying the durable queues (store buffers, northbound outboxes, uplink outboxes) to the
//! standby: what the active had accepted but not yet delivered survives a switch-over.
//!
//! Design: a segment file only grows until it is deleted whole, so the active sends each one
//! as the bytes appended since it last sent (path, offset, bytes), at most [`CHUNK`] per frame
//! and [`BUDGET`] per poll, after the journal rows; a segment it deleted (acknowledged whole)
//! is deleted on the standby; a watermark file (`acked`) is sent whole when it changes. The
//! standby's copy of a segment is a prefix of the active's, possibly ending in a torn frame
//! that [`crate::sinks::buffer::DiskQueue::open`] skips when the standby takes over; records
//! delivered after the last watermark that reached the standby are sent again (at least once).
//!
//! On (re)connect the standby lists what it holds (size and a hash of the first bytes of each
//! file), and the active continues each file from there. The active's files are the truth: a
//! standby file it does not have is removed, and one that is longer or starts differently
//! (written by the standby while it was active on its own) is copied again from the start.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use base64::Engine;

use std::sync::Arc;

use tracing::info;

use super::Shared;
use super::link::{HeldQueueFile, LinkError, Msg, QUEUE_HEAD, Writer};
use crate::sinks::buffer::replica::{self, QueueFile};

/// Most bytes of a segment in one frame (Base64 makes 4/3 of it, far below `MAX_FRAME`).
pub(super) const CHUNK: u64 = 1 << 20;
/// Most segment bytes sent per poll, so a large backlog never holds back journal rows.
pub(super) const BUDGET: u64 = 4 * CHUNK;

/// A stretch of a segment to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Read {
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

/// What to send in one poll.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// Segment stretches, in order.
    pub reads: Vec<Read>,
    /// Watermark files to read and send if they changed.
    pub watermarks: Vec<String>,
    /// Files the active no longer has.
    pub gone: Vec<String>,
    /// Segment bytes not yet sent after this plan.
    pub lag: u64,
}

/// What the standby holds that the active does not agree with, set at resume.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Dropped {
    /// Files removed or copied again from the start.
    pub files: usize,
    /// Their bytes on the standby.
    pub bytes: u64,
}

/// The active's record of what the standby holds. Design: a segment's entry is the number of
/// its bytes sent; the standby holds exactly those once the frames arrive, in order.
#[derive(Debug, Default)]
pub(super) struct QueueCopy {
    segments: HashMap<String, u64>,
    watermarks: HashMap<String, Vec<u8>>,
}

impl QueueCopy {
    /// Starts from what the standby says it holds. `our_head(path, n)` is the hash of the
    /// first `n` bytes of our file. Returns the copy, the messages that remove or empty the
    /// standby files that are not a start of ours, and what the standby loses by them.
    pub(super) fn resume(
        ours: &[QueueFile],
        theirs: &[HeldQueueFile],
        mut our_head: impl FnMut(&str, u64) -> Option<u64>,
    ) -> (QueueCopy, Vec<Msg>, Dropped) {
        let sizes: HashMap<&str, u64> = ours.iter().map(|f| (f.path.as_str(), f.size)).collect();
        let mut copy = QueueCopy::default();
        let mut gone = Vec::new();
        let mut dropped = Dropped::default();
        for t in theirs {
            let Some(&size) = sizes.get(t.path.as_str()) else {
                gone.push(Msg::QueueGone { path: t.path.clone() });
                dropped.files += 1;
                dropped.bytes += t.size;
                continue;
            };
            if !replica::is_segment(&t.path) {
                continue; // a watermark is sent whole at the first poll
            }
            let same_start = t.size <= size && our_head(&t.path, t.size.min(QUEUE_HEAD)) == Some(t.head);
            if same_start {
                copy.segments.insert(t.path.clone(), t.size);
            } else {
                copy.segments.insert(t.path.clone(), 0);
                // Emptied first: ours may be empty, and then no bytes follow.
                gone.push(Msg::QueueBytes {
                    path: t.path.clone(),
                    offset: 0,
                    data: String::new(),
                });
                dropped.files += 1;
                dropped.bytes += t.size;
            }
        }
        (copy, gone, dropped)
    }

    /// What to send, given the active's files now; counts what it plans as sent.
    pub(super) fn plan(&mut self, ours: &[QueueFile], mut budget: u64) -> Plan {
        let present: HashSet<&str> = ours.iter().map(|f| f.path.as_str()).collect();
        let mut plan = Plan::default();
        for map_keys in [
            self.segments.keys().cloned().collect::<Vec<_>>(),
            self.watermarks.keys().cloned().collect(),
        ] {
            for path in map_keys {
                if !present.contains(path.as_str()) {
                    self.segments.remove(&path);
                    self.watermarks.remove(&path);
                    plan.gone.push(path);
                }
            }
        }
        plan.gone.sort();
        for f in ours {
            if !replica::is_segment(&f.path) {
                plan.watermarks.push(f.path.clone());
                continue;
            }
            let sent = self.segments.entry(f.path.clone()).or_insert(0);
            if f.size < *sent {
                // Not an append (the active's queue started over): the whole file again.
                *sent = 0;
            }
            while *sent < f.size && budget > 0 {
                let len = (f.size - *sent).min(CHUNK).min(budget);
                plan.reads.push(Read {
                    path: f.path.clone(),
                    offset: *sent,
                    len,
                });
                *sent += len;
                budget -= len;
            }
            plan.lag += f.size - *sent;
        }
        plan
    }

    /// A planned read that failed: the standby holds `path` up to `offset` only.
    pub(super) fn rewind(&mut self, path: &str, offset: u64) {
        if let Some(sent) = self.segments.get_mut(path) {
            *sent = (*sent).min(offset);
        }
    }

    /// Whether watermark `path` now reads `data` and that is news to the standby; records it.
    pub(super) fn watermark_changed(&mut self, path: &str, data: &[u8]) -> bool {
        if self.watermarks.get(path).is_some_and(|d| d == data) {
            return false;
        }
        self.watermarks.insert(path.to_string(), data.to_vec());
        true
    }
}

/// The hash of the first bytes of a queue file that [`HeldQueueFile::head`] carries.
pub(super) fn head_hash(bytes: &[u8]) -> u64 {
    u64::from(crc32fast::hash(bytes))
}

/// The first `n` bytes of `path` hashed, or `None` if it has fewer or cannot be read.
pub(super) fn file_head(path: &Path, n: u64) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; usize::try_from(n).ok()?];
    file.read_exact_at(&mut buf, 0).ok()?;
    Some(head_hash(&buf))
}

/// What the standby holds, for its resume.
pub(super) fn held(data_dir: &Path) -> std::io::Result<Vec<HeldQueueFile>> {
    let mut out = Vec::new();
    for f in replica::queue_files(data_dir)? {
        let n = f.size.min(QUEUE_HEAD);
        let Some(head) = file_head(&data_dir.join(&f.path), n) else {
            continue;
        };
        out.push(HeldQueueFile {
            path: f.path,
            size: f.size,
            head,
        });
    }
    Ok(out)
}

/// Reads what `plan` names from `data_dir` and makes the messages, in order: removals,
/// watermarks that changed, segment bytes. A stretch that cannot be read (its segment was
/// deleted meanwhile) is left for the next poll, which sends the removal.
pub(super) fn messages(data_dir: &Path, copy: &mut QueueCopy, plan: Plan) -> Vec<Msg> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out: Vec<Msg> = plan.gone.into_iter().map(|path| Msg::QueueGone { path }).collect();
    for path in plan.watermarks {
        let Ok(data) = std::fs::read(data_dir.join(&path)) else {
            continue;
        };
        if copy.watermark_changed(&path, &data) {
            out.push(Msg::QueueBytes {
                path,
                offset: 0,
                data: b64.encode(&data),
            });
        }
    }
    let mut failed: HashSet<String> = HashSet::new();
    for r in plan.reads {
        if failed.contains(&r.path) {
            continue;
        }
        let mut buf = vec![0u8; usize::try_from(r.len).unwrap_or(0)];
        let read = std::fs::File::open(data_dir.join(&r.path)).and_then(|f| f.read_exact_at(&mut buf, r.offset));
        if read.is_err() {
            copy.rewind(&r.path, r.offset);
            failed.insert(r.path);
            continue;
        }
        out.push(Msg::QueueBytes {
            path: r.path,
            offset: r.offset,
            data: b64.encode(&buf),
        });
    }
    out
}

/// Sets the queue copy up from what the standby holds: removes or cuts back what the active
/// does not agree with, and says so.
pub(super) async fn resume_on_link(
    w: &mut Writer,
    shared: &Arc<Shared>,
    data_dir: &Path,
    held: Vec<HeldQueueFile>,
) -> Result<QueueCopy, LinkError> {
    let dir = data_dir.to_path_buf();
    let (copy, msgs, dropped) = tokio::task::spawn_blocking(move || {
        let ours = replica::queue_files(&dir)?;
        Ok::<_, std::io::Error>(QueueCopy::resume(&ours, &held, |p, n| file_head(&dir.join(p), n)))
    })
    .await
    .map_err(|_| LinkError::Protocol)??;
    if dropped.files > 0 {
        info!(
            files = dropped.files,
            bytes = dropped.bytes,
            "Pair link: the standby's queue files differ from ours (it wrote them on its own); its copies dropped, ours sent"
        );
        shared.metrics.queue_bytes_dropped.inc_by(dropped.bytes);
    }
    for m in msgs {
        w.send(&m).await?;
    }
    Ok(copy)
}

/// Sends what the durable queues appended, removed or acknowledged since the last poll;
/// returns whether bytes are left for the next.
pub(super) async fn send_on_link(
    w: &mut Writer,
    shared: &Arc<Shared>,
    data_dir: &Path,
    copy: &mut QueueCopy,
) -> Result<bool, LinkError> {
    let dir = data_dir.to_path_buf();
    let mut c = std::mem::take(copy);
    let (c, msgs, lag) = tokio::task::spawn_blocking(move || {
        // A listing that failed says nothing of what is gone: nothing is sent this time.
        let Ok(ours) = replica::queue_files(&dir) else {
            return (c, Vec::new(), None);
        };
        let plan = c.plan(&ours, BUDGET);
        let lag = plan.lag;
        let msgs = messages(&dir, &mut c, plan);
        (c, msgs, Some(lag))
    })
    .await
    .map_err(|_| LinkError::Protocol)?;
    *copy = c;
    for m in &msgs {
        w.send(m).await?;
    }
    let lag = lag.unwrap_or(0);
    shared
        .metrics
        .queue_lag_bytes
        .set(i64::try_from(lag).unwrap_or(i64::MAX));
    Ok(lag > 0)
}

fn not_a_queue_file(rel: &str) -> LinkError {
    LinkError::Message(format!(
        "`{rel}` is not a durable-queue file (seg-<n>.hgq or acked under tsdb/<store>/, \
         mqtt_north/<target>.outbox/ or uplinks/<name>/outbox/urgent|normal/)"
    ))
}

/// On the standby: stores bytes of a queue file; returns how many. A segment is cut back to
/// `offset` if longer and grows by the bytes; a watermark is replaced by rename.
pub(super) fn store_bytes(data_dir: &Path, rel: &str, offset: u64, data: &str) -> Result<u64, LinkError> {
    if !replica::is_queue_file(rel) {
        return Err(not_a_queue_file(rel));
    }
    let bytes = super::replicate::decode(rel, data)?;
    if !replica::is_segment(rel) {
        if offset != 0 {
            return Err(LinkError::Message(format!(
                "`{rel}` is sent whole, not from offset {offset}"
            )));
        }
        super::replicate::replace_file(data_dir, rel, &bytes)?;
        return Ok(bytes.len() as u64);
    }
    let path = data_dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let len = file.metadata()?.len();
    if len < offset {
        return Err(LinkError::Message(format!(
            "`{rel}` holds {len} bytes here; bytes from {offset} would leave a gap"
        )));
    }
    if len > offset {
        file.set_len(offset)?;
    }
    file.write_all_at(&bytes, offset)?;
    Ok(bytes.len() as u64)
}

/// On the standby: removes a queue file the active no longer has.
pub(super) fn remove(data_dir: &Path, rel: &str) -> Result<(), LinkError> {
    if !replica::is_queue_file(rel) {
        return Err(not_a_queue_file(rel));
    }
    match std::fs::remove_file(data_dir.join(rel)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "queues_tests.rs"]
mod tests;
