use proptest::prelude::*;

use std::io::Write as _;

use super::frame::HEADER_LEN;
use super::*;

fn cfg(max: u64, seg: u64, when_full: WhenFull) -> BufferConfig {
    BufferConfig {
        max_bytes: max,
        segment_bytes: seg,
        when_full,
        fsync: FsyncPolicy::Never,
    }
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn drain(q: &mut DiskQueue) -> Vec<Record> {
    let mut out = Vec::new();
    while let Some(r) = q.next_unsent().unwrap() {
        out.push(r);
    }
    out
}

#[test]
fn records_replay_in_order_after_reopen_and_acked_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(1 << 20, 256, WhenFull::DropOldest);
    {
        let (mut q, rec) = DiskQueue::open(dir.path(), c.clone()).unwrap();
        assert_eq!(rec, Recovery::default());
        for i in 0..10u8 {
            q.append(&[i; 40], 2, t(i64::from(i))).unwrap();
        }
        let first = drain(&mut q);
        assert_eq!(first.len(), 10);
        for r in &first[..4] {
            q.ack(r.seq).unwrap();
        }
        assert_eq!(q.stats().records, 6);
        assert_eq!(q.stats().items, 12);
        assert_eq!(q.stats().oldest, Some(t(4)));
    }
    let (mut q, rec) = DiskQueue::open(dir.path(), c).unwrap();
    assert_eq!(rec.records, 6);
    assert_eq!(rec.damaged, 0);
    let again = drain(&mut q);
    let payloads: Vec<u8> = again.iter().map(|r| r.payload[0]).collect();
    assert_eq!(payloads, vec![4, 5, 6, 7, 8, 9]);
    // New records continue the sequence after the recovered ones.
    let next = q.append(b"x", 1, t(20)).unwrap().seq.unwrap();
    assert!(next > again.last().unwrap().seq);
}

#[test]
fn fully_acknowledged_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = DiskQueue::open(dir.path(), cfg(1 << 20, 200, WhenFull::DropOldest)).unwrap();
    for i in 0..20u8 {
        q.append(&[i; 100], 1, t(0)).unwrap();
    }
    let segs = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("seg-"))
            .count()
    };
    assert!(segs() >= 10);
    for r in drain(&mut q) {
        q.ack(r.seq).unwrap();
    }
    assert!(q.is_empty());
    assert_eq!(segs(), 1, "only the segment being written remains");
    assert!(q.stats().bytes <= 200);
}

#[test]
fn a_full_buffer_drops_the_oldest_segment_and_reports_what_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Each record is 32 + 68 = 100 bytes; segments of 2 records; room for 6.
    let (mut q, _) = DiskQueue::open(dir.path(), cfg(600, 200, WhenFull::DropOldest)).unwrap();
    let mut lost = (0, 0);
    for i in 0..10u8 {
        let a = q.append(&[i; 68], 5, t(i64::from(i))).unwrap();
        assert!(a.seq.is_some());
        lost.0 += a.dropped_records;
        lost.1 += a.dropped_items;
    }
    assert_eq!(lost, (4, 20));
    assert!(q.stats().bytes <= 600);
    let kept: Vec<u8> = drain(&mut q).iter().map(|r| r.payload[0]).collect();
    assert_eq!(kept, vec![4, 5, 6, 7, 8, 9]);
}

#[test]
fn a_full_buffer_with_drop_newest_refuses_the_new_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = DiskQueue::open(dir.path(), cfg(300, 200, WhenFull::DropNewest)).unwrap();
    for i in 0..3u8 {
        assert!(q.append(&[i; 68], 1, t(0)).unwrap().seq.is_some());
    }
    let a = q.append(&[9; 68], 7, t(0)).unwrap();
    assert_eq!(
        a,
        Appended {
            seq: None,
            dropped_records: 1,
            dropped_items: 7
        }
    );
    let kept: Vec<u8> = drain(&mut q).iter().map(|r| r.payload[0]).collect();
    assert_eq!(kept, vec![0, 1, 2]);
}

#[test]
fn a_record_larger_than_the_buffer_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = DiskQueue::open(dir.path(), cfg(100, 100, WhenFull::DropOldest)).unwrap();
    assert!(matches!(
        q.append(&[0; 100], 1, t(0)),
        Err(BufferError::TooLarge { len: 132, max: 100 })
    ));
}

#[test]
fn a_torn_last_record_is_skipped_and_counted_and_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(1 << 20, 1 << 20, WhenFull::DropOldest);
    {
        let (mut q, _) = DiskQueue::open(dir.path(), c.clone()).unwrap();
        for i in 0..3u8 {
            q.append(&[i; 50], 1, t(0)).unwrap();
        }
    }
    let seg = only_segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let (mut q, rec) = DiskQueue::open(dir.path(), c.clone()).unwrap();
    assert_eq!((rec.records, rec.damaged), (2, 1));
    assert_eq!(
        rec.damage,
        vec![(seg.clone(), 2 * (HEADER_LEN as u64 + 50), HEADER_LEN as u64 + 40)]
    );
    q.append(&[7; 50], 1, t(0)).unwrap();
    drop(q);
    let (mut q, rec) = DiskQueue::open(dir.path(), c).unwrap();
    assert_eq!((rec.records, rec.damaged), (3, 1));
    let kept: Vec<u8> = drain(&mut q).iter().map(|r| r.payload[0]).collect();
    assert_eq!(kept, vec![0, 1, 7]);
}

fn only_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("seg-") && std::fs::metadata(p).unwrap().len() > 0
        })
        .collect();
    assert_eq!(segs.len(), 1);
    segs.pop().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A segment file cut or damaged at any byte reopens without a panic and loses only the
    /// record that held that byte (or, for a cut, the records after it).
    #[test]
    fn a_segment_damaged_at_any_byte_reopens_and_loses_only_the_torn_record(
        sizes in proptest::collection::vec(0usize..80, 1..6),
        at in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(1 << 20, 1 << 20, WhenFull::DropOldest);
        let mut bounds = Vec::new();
        {
            let (mut q, _) = DiskQueue::open(dir.path(), c.clone()).unwrap();
            let mut off = 0u64;
            for (i, n) in sizes.iter().enumerate() {
                q.append(&vec![i as u8; *n], 1, t(0)).unwrap();
                let end = off + frame::HEADER_LEN as u64 + *n as u64;
                bounds.push((off, end));
                off = end;
            }
        }
        let seg = only_segment(dir.path());
        let mut bytes = std::fs::read(&seg).unwrap();
        let at = at.index(bytes.len()) as u64;
        if truncate {
            bytes.truncate(at as usize);
        } else {
            bytes[at as usize] ^= 0x5a;
        }
        std::fs::write(&seg, &bytes).unwrap();
        let (mut q, rec) = DiskQueue::open(dir.path(), c).unwrap();
        let kept: Vec<u8> = drain(&mut q).iter().map(|r| r.payload.first().copied().unwrap_or(255)).collect();
        let want: Vec<u8> = bounds
            .iter()
            .enumerate()
            .filter(|(_, (s, e))| if truncate { *e <= at } else { !(*s <= at && at < *e) })
            .map(|(i, _)| if sizes[i] == 0 { 255 } else { i as u8 })
            .collect();
        prop_assert_eq!(kept, want);
        let torn = !truncate || bounds.iter().any(|(s, e)| *s < at && at < *e);
        prop_assert_eq!(rec.damaged, u64::from(torn));
    }
}

#[test]
fn pending_bytes_count_only_undelivered_payloads_across_acks_reopen_and_drops() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(1 << 20, 256, WhenFull::DropOldest);
    {
        let (mut q, _) = DiskQueue::open(dir.path(), c.clone()).unwrap();
        for i in 0..10u8 {
            q.append(&[i; 40], 1, t(i64::from(i))).unwrap();
        }
        assert_eq!(q.stats().pending_bytes, 400);
        for r in &drain(&mut q)[..4] {
            q.ack(r.seq).unwrap();
        }
        assert_eq!(q.stats().pending_bytes, 240);
        assert!(q.stats().bytes > 240, "segment bytes still hold delivered records");
    }
    let (mut q, _) = DiskQueue::open(dir.path(), c).unwrap();
    assert_eq!(q.stats().pending_bytes, 240);
    for r in drain(&mut q) {
        q.ack(r.seq).unwrap();
    }
    assert_eq!(q.stats().pending_bytes, 0);

    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = DiskQueue::open(dir.path(), cfg(600, 256, WhenFull::DropOldest)).unwrap();
    for i in 0..30u8 {
        q.append(&[i; 40], 1, t(i64::from(i))).unwrap();
    }
    let s = q.stats();
    assert_eq!(s.pending_bytes, 40 * s.records, "dropped segments leave the backlog");
}

#[test]
fn a_write_that_fails_midway_seals_its_segment_and_nothing_of_it_is_ever_sent() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(1 << 20, 1 << 20, WhenFull::DropOldest);
    let (mut q, _) = DiskQueue::open(dir.path(), c.clone()).unwrap();
    for i in 0..3u8 {
        q.append(&[i; 50], 1, t(0)).unwrap();
    }
    q.tear_next_write(40);
    assert!(matches!(q.append(&[3; 50], 1, t(0)), Err(BufferError::Io { .. })));
    assert_eq!(q.stats().records, 3, "the failed record is not queued");
    for i in 4..6u8 {
        q.append(&[i; 50], 1, t(0)).unwrap();
    }
    let segs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("seg-"))
        .count();
    assert_eq!(segs, 2, "writing went on in a new segment");
    let sent = drain(&mut q);
    assert!(
        sent.iter()
            .all(|r| r.payload.len() == 50 && r.payload.iter().all(|b| *b == r.payload[0]))
    );
    let kept: Vec<u8> = sent.iter().map(|r| r.payload[0]).collect();
    assert_eq!(kept, vec![0, 1, 2, 4, 5]);
    drop(q);
    let (mut q, rec) = DiskQueue::open(dir.path(), c).unwrap();
    assert_eq!(rec.damaged, 0, "the partial frame was cut off");
    let kept: Vec<u8> = drain(&mut q).iter().map(|r| r.payload[0]).collect();
    assert_eq!(kept, vec![0, 1, 2, 4, 5]);
}

#[test]
fn a_record_that_does_not_read_back_as_written_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = DiskQueue::open(dir.path(), cfg(1 << 20, 1 << 20, WhenFull::DropOldest)).unwrap();
    for i in 0..4u8 {
        q.append(&[i; 50], 3, t(0)).unwrap();
    }
    let seg = only_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let second = (frame::HEADER_LEN + 50) as u64;
    bytes[second as usize + frame::HEADER_LEN + 7] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    assert_eq!(q.next_unsent().unwrap().unwrap().payload, vec![0; 50]);
    match q.next_unsent() {
        Err(BufferError::Corrupt {
            path,
            offset,
            seq,
            items,
            fault,
        }) => {
            assert_eq!(
                (path, offset, items, fault),
                (seg.clone(), second, 3, frame::Fault::Checksum)
            );
            assert_eq!(seq, 2);
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    assert_eq!(q.stats().records, 3, "the damaged record left the queue");
    assert_eq!(q.stats().items, 9);
    let rest: Vec<u8> = drain(&mut q).iter().map(|r| r.payload[0]).collect();
    assert_eq!(rest, vec![2, 3]);
}

#[test]
fn bytes_spliced_into_a_segment_behind_the_queue_are_never_sent() {
    // What a failed write that could not be cut off leaves: bytes the index does not know.
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = DiskQueue::open(dir.path(), cfg(1 << 20, 1 << 20, WhenFull::DropOldest)).unwrap();
    q.append(b"a=1 1\n", 1, t(0)).unwrap();
    let seg = only_segment(dir.path());
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"HGQ1\x10\x00").unwrap();
    q.append(b"a=2 2\n", 1, t(0)).unwrap();
    assert_eq!(q.next_unsent().unwrap().unwrap().payload, b"a=1 1\n");
    assert!(matches!(
        q.next_unsent(),
        Err(BufferError::Corrupt {
            seq: 2,
            fault: frame::Fault::Magic | frame::Fault::Length { .. } | frame::Fault::Checksum,
            ..
        })
    ));
    assert!(q.next_unsent().unwrap().is_none());
    assert_eq!(q.stats().records, 1, "only the first, handed out, is still queued");
}
