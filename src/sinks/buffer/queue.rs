//! The queue itself: segment files, the index of unacknowledged records, the watermark.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::frame::{self, HEADER_LEN};
use super::{BufferConfig, BufferError, FsyncPolicy, WhenFull};
use crate::model::Timestamp;

const ACK_FILE: &str = "acked";

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BufferError + '_ {
    move |source| BufferError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.hgq"))
}

/// What opening found on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Records queued again for sending.
    pub records: u64,
    /// Damaged or torn stretches skipped.
    pub damaged: u64,
    /// Where each skipped stretch lies: segment file, offset, length in bytes.
    pub damage: Vec<(PathBuf, u64, u64)>,
}

/// One record handed out for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number; pass it to [`DiskQueue::ack`].
    pub seq: u64,
    /// Items it carries.
    pub items: u32,
    /// When it was appended.
    pub created: Timestamp,
    /// The bytes appended.
    pub payload: Vec<u8>,
}

/// What an append did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Sequence number of the new record, `None` if it was refused ([`WhenFull::DropNewest`]).
    pub seq: Option<u64>,
    /// Unacknowledged records lost to make room (or the refused record).
    pub dropped_records: u64,
    /// Items in those records.
    pub dropped_items: u64,
}

/// Gauges of what the queue holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BufferStats {
    /// Bytes of all segment files.
    pub bytes: u64,
    /// Records not yet acknowledged.
    pub records: u64,
    /// Items in those records.
    pub items: u64,
    /// Payload bytes of those records: the backlog still to deliver.
    pub pending_bytes: u64,
    /// Creation time of the oldest unacknowledged record.
    pub oldest: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy)]
struct Loc {
    segment: u64,
    offset: u64,
    len: u32,
    items: u32,
    created_ns: i64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    bytes: u64,
    live: u64,
    file: File,
    /// A write or sync to it failed: its tail is not trusted and nothing more is appended.
    sealed: bool,
}

/// A durable queue of byte records in one directory. See the module doc for the design.
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    cfg: BufferConfig,
    /// Oldest first; the last one is being written.
    segments: VecDeque<Segment>,
    records: BTreeMap<u64, Loc>,
    /// Next record to hand out for sending.
    cursor: u64,
    next_seq: u64,
    watermark: u64,
    ack_file: File,
    last_sync: Option<Timestamp>,
    scratch: Vec<u8>,
    items: u64,
    /// Payload bytes of the records not yet acknowledged (the backlog, unlike segment bytes,
    /// which include delivered records until their segment is deleted).
    pending_bytes: u64,
    /// Tests only: the next append writes this many bytes of its frame and then fails as
    /// a full disk would.
    torn_write: Option<usize>,
}

impl DiskQueue {
    /// Opens (creating if needed) the queue in `dir` and recovers what a previous run left.
    pub fn open(dir: &Path, cfg: BufferConfig) -> Result<(DiskQueue, Recovery), BufferError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let ack_path = dir.join(ACK_FILE);
        let ack_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&ack_path)
            .map_err(io_err(&ack_path))?;
        let watermark = read_watermark(&ack_file);
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix("seg-"))
                .and_then(|n| n.strip_suffix(".hgq"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            ids.push(id);
        }
        ids.sort_unstable();
        let mut q = DiskQueue {
            dir: dir.to_path_buf(),
            cfg,
            segments: VecDeque::new(),
            records: BTreeMap::new(),
            cursor: 0,
            next_seq: watermark.max(1),
            watermark,
            ack_file,
            last_sync: None,
            scratch: Vec::new(),
            items: 0,
            pending_bytes: 0,
            torn_write: None,
        };
        let mut rec = Recovery::default();
        for id in ids {
            let path = segment_path(dir, id);
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            let scan = frame::scan(&bytes);
            rec.damaged += scan.damaged;
            rec.damage
                .extend(scan.damage.iter().map(|&(at, n)| (path.clone(), at, n)));
            let mut live = 0;
            for f in scan.frames {
                q.next_seq = q.next_seq.max(f.seq + 1);
                if f.seq < watermark || q.records.contains_key(&f.seq) {
                    continue;
                }
                q.records.insert(
                    f.seq,
                    Loc {
                        segment: id,
                        offset: f.offset,
                        len: f.len,
                        items: f.items,
                        created_ns: f.created_ns,
                    },
                );
                q.items += u64::from(f.items);
                q.pending_bytes += u64::from(f.len);
                live += 1;
            }
            if live == 0 {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            rec.records += live;
            let file = File::open(&path).map_err(io_err(&path))?;
            q.segments.push_back(Segment {
                id,
                path,
                bytes: bytes.len() as u64,
                live,
                file,
                sealed: false,
            });
        }
        q.cursor = q.records.keys().next().copied().unwrap_or(q.next_seq);
        q.start_segment()?;
        Ok((q, rec))
    }

    fn start_segment(&mut self) -> Result<(), BufferError> {
        let id = self.next_seq;
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        // No record has a sequence at or above `next_seq`, so a file of this name can only
        // hold leftovers of a failed write: empty it, new frames never follow damage.
        if file.metadata().map_err(io_err(&path))?.len() > 0 {
            file.set_len(0).map_err(io_err(&path))?;
        }
        self.segments.push_back(Segment {
            id,
            path,
            bytes: 0,
            live: 0,
            file,
            sealed: false,
        });
        Ok(())
    }

    /// Appends one record of `items` items; returns once it is written (and synced, per policy).
    pub fn append(&mut self, payload: &[u8], items: u32, now: Timestamp) -> Result<Appended, BufferError> {
        let len = (HEADER_LEN + payload.len()) as u64;
        if len > self.cfg.max_bytes || payload.len() > u32::MAX as usize {
            return Err(BufferError::TooLarge {
                len,
                max: self.cfg.max_bytes,
            });
        }
        if self.segments.is_empty() {
            // A roll whose new segment could not be created left none.
            self.start_segment()?;
        }
        let mut out = Appended::default();
        while self.total_bytes() + len > self.cfg.max_bytes {
            if self.cfg.when_full == WhenFull::DropNewest {
                out.dropped_records = 1;
                out.dropped_items = u64::from(items);
                return Ok(out);
            }
            if self.segments.len() == 1 {
                self.roll()?;
                continue;
            }
            let (r, i) = self.drop_oldest_segment()?;
            out.dropped_records += r;
            out.dropped_items += i;
        }
        if self.active_is(|s| s.sealed || (s.bytes > 0 && s.bytes + len > self.cfg.segment_bytes)) {
            self.roll()?;
        }
        let seq = self.next_seq;
        self.scratch.clear();
        frame::encode(&mut self.scratch, seq, now.as_nanos(), items, payload);
        let torn = self.torn_write.take();
        let seg = self.segments.back_mut().ok_or_else(|| missing(&self.dir))?;
        if let Err(source) = write_frame(&mut seg.file, &self.scratch, torn) {
            seal(seg);
            return Err(BufferError::Io {
                path: seg.path.clone(),
                source,
            });
        }
        let loc = Loc {
            segment: seg.id,
            offset: seg.bytes,
            len: payload.len() as u32,
            items,
            created_ns: now.as_nanos(),
        };
        seg.bytes += len;
        seg.live += 1;
        self.records.insert(seq, loc);
        self.items += u64::from(items);
        self.pending_bytes += u64::from(loc.len);
        self.next_seq += 1;
        if let Err(e) = self.maybe_sync(now) {
            // Not known to be on disk: not accepted. The caller counts it lost.
            if let Some(seg) = self.segments.back_mut() {
                seal(seg);
            }
            self.forget(seq);
            return Err(e);
        }
        out.seq = Some(seq);
        Ok(out)
    }

    /// Tests only: makes the next append write `n` bytes of its frame, then fail.
    #[cfg(test)]
    pub(super) fn tear_next_write(&mut self, n: usize) {
        self.torn_write = Some(n);
    }

    fn active_is(&self, test: impl Fn(&Segment) -> bool) -> bool {
        self.segments.back().is_some_and(test)
    }

    fn roll(&mut self) -> Result<(), BufferError> {
        if let Some(seg) = self.segments.back() {
            if !seg.sealed {
                seg.file.sync_data().map_err(io_err(&seg.path))?;
            }
            if seg.live == 0 {
                let path = seg.path.clone();
                self.segments.pop_back();
                std::fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        self.start_segment()
    }

    fn drop_oldest_segment(&mut self) -> Result<(u64, u64), BufferError> {
        let Some(seg) = self.segments.pop_front() else {
            return Ok((0, 0));
        };
        let doomed: Vec<u64> = self
            .records
            .iter()
            .filter(|(_, l)| l.segment == seg.id)
            .map(|(s, _)| *s)
            .collect();
        let mut items = 0;
        for s in &doomed {
            if let Some(l) = self.records.remove(s) {
                items += u64::from(l.items);
                self.pending_bytes -= u64::from(l.len);
            }
        }
        self.items -= items;
        std::fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        self.advance_watermark()?;
        Ok((doomed.len() as u64, items))
    }

    /// The oldest record not yet handed out, marked as handed out; `None` when all are.
    ///
    /// The frame is read whole and checked (magic, length, CRC, sequence). A record that
    /// fails is removed from the queue and returned as [`BufferError::Corrupt`]; calling
    /// again goes on with the next record.
    pub fn next_unsent(&mut self) -> Result<Option<Record>, BufferError> {
        let Some((&seq, &loc)) = self.records.range(self.cursor..).next() else {
            return Ok(None);
        };
        let seg = self
            .segments
            .iter()
            .find(|s| s.id == loc.segment)
            .ok_or_else(|| missing(&self.dir))?;
        let mut bytes = vec![0; HEADER_LEN + loc.len as usize];
        let checked = match seg.file.read_exact_at(&mut bytes, loc.offset) {
            Ok(()) => frame::verify(&bytes, seq, loc.len),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(frame::Fault::Short),
            // Left in place: a failed read may succeed later.
            Err(source) => {
                return Err(BufferError::Io {
                    path: seg.path.clone(),
                    source,
                });
            }
        };
        self.cursor = seq + 1;
        if let Err(fault) = checked {
            let path = seg.path.clone();
            self.forget(seq);
            self.advance_watermark()?;
            return Err(BufferError::Corrupt {
                path,
                offset: loc.offset,
                seq,
                items: loc.items,
                fault,
            });
        }
        bytes.drain(..HEADER_LEN);
        Ok(Some(Record {
            seq,
            items: loc.items,
            created: Timestamp::from_nanos(loc.created_ns),
            payload: bytes,
        }))
    }

    /// Hands every unacknowledged record out again from the oldest (after the receiver
    /// lost them, e.g. a restart of the sender).
    pub fn rewind(&mut self) {
        self.cursor = self.records.keys().next().copied().unwrap_or(self.next_seq);
    }

    /// Marks `seq` delivered; a segment whose records are all delivered is deleted.
    /// Acknowledging an unknown or dropped record does nothing.
    pub fn ack(&mut self, seq: u64) -> Result<(), BufferError> {
        if let Some(Err(e)) = self.forget(seq) {
            return Err(e);
        }
        self.advance_watermark()
    }

    /// Removes `seq` from the queue; deletes its segment once nothing in it is queued
    /// (unless it is the one being written). `None` if `seq` was not queued.
    fn forget(&mut self, seq: u64) -> Option<Result<(), BufferError>> {
        let loc = self.records.remove(&seq)?;
        self.items -= u64::from(loc.items);
        self.pending_bytes -= u64::from(loc.len);
        let last = self.segments.len().saturating_sub(1);
        if let Some(i) = self.segments.iter().position(|s| s.id == loc.segment) {
            self.segments[i].live -= 1;
            if self.segments[i].live == 0 && i != last {
                if let Some(seg) = self.segments.remove(i) {
                    return Some(std::fs::remove_file(&seg.path).map_err(io_err(&seg.path)));
                }
            }
        }
        Some(Ok(()))
    }

    fn advance_watermark(&mut self) -> Result<(), BufferError> {
        let w = self.records.keys().next().copied().unwrap_or(self.next_seq);
        if w <= self.watermark {
            return Ok(());
        }
        self.watermark = w;
        let mut buf = [0u8; 12];
        buf[..8].copy_from_slice(&w.to_le_bytes());
        let crc = crc32fast::hash(&w.to_le_bytes());
        buf[8..].copy_from_slice(&crc.to_le_bytes());
        let path = self.dir.join(ACK_FILE);
        self.ack_file.write_all_at(&buf, 0).map_err(io_err(&path))?;
        if self.cfg.fsync == FsyncPolicy::Always {
            self.ack_file.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    fn maybe_sync(&mut self, now: Timestamp) -> Result<(), BufferError> {
        let due = match self.cfg.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Never => false,
            FsyncPolicy::Interval(d) => self.last_sync.is_none_or(|t| now.since(t) >= d),
        };
        if due {
            self.sync(now)?;
        }
        Ok(())
    }

    /// Forces written records to stable storage now.
    pub fn sync(&mut self, now: Timestamp) -> Result<(), BufferError> {
        self.last_sync = Some(now);
        match self.segments.back() {
            Some(seg) => seg.file.sync_data().map_err(io_err(&seg.path)),
            None => Ok(()),
        }
    }

    fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// What the queue holds now.
    pub fn stats(&self) -> BufferStats {
        BufferStats {
            bytes: self.total_bytes(),
            records: self.records.len() as u64,
            items: self.items,
            pending_bytes: self.pending_bytes,
            oldest: self
                .records
                .values()
                .next()
                .map(|l| Timestamp::from_nanos(l.created_ns)),
        }
    }

    /// Whether every record has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Writes one whole frame; `torn` (tests only) writes that many bytes and fails with
/// ENOSPC, as a filling disk does.
fn write_frame(file: &mut File, frame: &[u8], torn: Option<usize>) -> std::io::Result<()> {
    match torn {
        None => file.write_all(frame),
        Some(n) => {
            file.write_all(&frame[..n.min(frame.len())])?;
            Err(std::io::Error::from_raw_os_error(28))
        }
    }
}

/// Marks a segment failed and cuts off what the failed write left, so a later reopen does
/// not even see it; if the cut fails too, the frame check on read still refuses it.
fn seal(seg: &mut Segment) {
    seg.sealed = true;
    if seg.file.set_len(seg.bytes).is_err() {
        if let Ok(m) = seg.file.metadata() {
            seg.bytes = seg.bytes.max(m.len());
        }
    }
}

fn missing(dir: &Path) -> BufferError {
    BufferError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other("segment of a queued record is gone"),
    }
}

fn read_watermark(f: &File) -> u64 {
    let mut buf = [0u8; 12];
    if f.read_exact_at(&mut buf, 0).is_err() {
        return 0;
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[..8]);
    let mut c = [0u8; 4];
    c.copy_from_slice(&buf[8..]);
    if crc32fast::hash(&w) == u32::from_le_bytes(c) {
        u64::from_le_bytes(w)
    } else {
        0
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
