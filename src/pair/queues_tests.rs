use super::*;
use crate::model::Timestamp;
use crate::sinks::buffer::{BufferConfig, DiskQueue, FsyncPolicy, WhenFull};

const SEG: &str = "tsdb/vm/seg-00000000000000000001.hgq";

fn file(path: &str, size: u64) -> QueueFile {
    QueueFile {
        path: path.to_string(),
        size,
    }
}

fn held(path: &str, size: u64, head: u64) -> HeldQueueFile {
    HeldQueueFile {
        path: path.to_string(),
        size,
        head,
    }
}

fn read(path: &str, offset: u64, len: u64) -> Read {
    Read {
        path: path.to_string(),
        offset,
        len,
    }
}

/// Applies the messages as the standby does.
fn apply(standby: &Path, msgs: &[Msg]) -> u64 {
    let mut n = 0;
    for m in msgs {
        match m {
            Msg::QueueBytes { path, offset, data } => n += store_bytes(standby, path, *offset, data).unwrap(),
            Msg::QueueGone { path } => remove(standby, path).unwrap(),
            other => panic!("not a queue message: {other:?}"),
        }
    }
    n
}

/// One poll of the active, applied on the standby.
fn poll(active: &Path, standby: &Path, copy: &mut QueueCopy) -> u64 {
    let ours = replica::queue_files(active).unwrap();
    let plan = copy.plan(&ours, BUDGET);
    let lag = plan.lag;
    apply(standby, &messages(active, copy, plan));
    lag
}

fn cfg() -> BufferConfig {
    BufferConfig {
        max_bytes: 1 << 20,
        segment_bytes: 600,
        when_full: WhenFull::DropOldest,
        fsync: FsyncPolicy::Never,
    }
}

#[test]
fn a_segment_is_sent_from_where_it_was_sent_up_to_in_bounded_chunks() {
    let mut copy = QueueCopy::default();
    let plan = copy.plan(&[file(SEG, 10)], BUDGET);
    assert_eq!(plan.reads, [read(SEG, 0, 10)]);
    assert_eq!(plan.lag, 0);
    // Appended: only the new bytes.
    let plan = copy.plan(&[file(SEG, 25)], BUDGET);
    assert_eq!(plan.reads, [read(SEG, 10, 15)]);
    // Unchanged: nothing.
    assert!(copy.plan(&[file(SEG, 25)], BUDGET).reads.is_empty());
    // A large append: chunks of CHUNK, at most BUDGET per poll, the rest is lag.
    let big = 25 + 5 * CHUNK + 7;
    let plan = copy.plan(&[file(SEG, big)], BUDGET);
    assert_eq!(plan.reads.len(), 4);
    assert_eq!(plan.reads[0], read(SEG, 25, CHUNK));
    assert_eq!(plan.reads[3], read(SEG, 25 + 3 * CHUNK, CHUNK));
    assert_eq!(plan.lag, CHUNK + 7);
    let plan = copy.plan(&[file(SEG, big)], BUDGET);
    assert_eq!(
        plan.reads,
        [read(SEG, 25 + 4 * CHUNK, CHUNK), read(SEG, 25 + 5 * CHUNK, 7)]
    );
    assert_eq!(plan.lag, 0);
    // A read that failed is planned again.
    copy.rewind(SEG, 25 + 5 * CHUNK);
    assert_eq!(
        copy.plan(&[file(SEG, big)], BUDGET).reads,
        [read(SEG, 25 + 5 * CHUNK, 7)]
    );
}

#[test]
fn a_deleted_segment_is_removed_and_a_changed_watermark_sent_once() {
    let mut copy = QueueCopy::default();
    let acked = "tsdb/vm/acked";
    let plan = copy.plan(&[file(acked, 12), file(SEG, 4)], BUDGET);
    assert_eq!(plan.watermarks, [acked]);
    assert!(copy.watermark_changed(acked, b"one"));
    assert!(!copy.watermark_changed(acked, b"one"));
    assert!(copy.watermark_changed(acked, b"two"));
    let plan = copy.plan(&[file(acked, 12)], BUDGET);
    assert_eq!(plan.gone, [SEG]);
    assert!(plan.reads.is_empty());
    // A segment that comes back shorter (the active's queue started over) is sent whole.
    copy.plan(&[file(SEG, 40)], BUDGET);
    assert_eq!(copy.plan(&[file(SEG, 30)], BUDGET).reads, [read(SEG, 0, 30)]);
}

#[test]
fn at_resume_the_standby_continues_a_prefix_and_loses_what_the_active_does_not_hold() {
    let other = "tsdb/vm/seg-00000000000000000009.hgq";
    let longer = "mqtt_north/plant.outbox/seg-00000000000000000003.hgq";
    let foreign = "uplinks/epa/outbox/normal/seg-00000000000000000005.hgq";
    let ours = [
        file(SEG, 100),
        file(longer, 10),
        file(foreign, 50),
        file("tsdb/vm/acked", 12),
    ];
    let theirs = [
        held(SEG, 60, 1),
        held(other, 70, 1),
        held(longer, 20, 1),
        held(foreign, 30, 2),
        held("tsdb/vm/acked", 12, 9),
    ];
    let (mut copy, msgs, dropped) = QueueCopy::resume(&ours, &theirs, |_, _| Some(1));
    assert_eq!(
        msgs,
        [
            Msg::QueueGone { path: other.into() },
            Msg::QueueBytes {
                path: longer.into(),
                offset: 0,
                data: String::new()
            },
            Msg::QueueBytes {
                path: foreign.into(),
                offset: 0,
                data: String::new()
            },
        ]
    );
    assert_eq!(dropped, Dropped { files: 3, bytes: 120 });
    let plan = copy.plan(&ours, BUDGET);
    assert_eq!(
        plan.reads,
        [read(SEG, 60, 40), read(longer, 0, 10), read(foreign, 0, 50)]
    );
    assert_eq!(plan.watermarks, ["tsdb/vm/acked"]);
}

#[test]
fn the_standby_refuses_paths_outside_the_queue_directories() {
    let d = tempfile::tempdir().unwrap();
    for bad in [
        "../escape/seg-1.hgq",
        "alarms.db",
        "tsdb/vm/../../x/acked",
        "webhooks/ops.cursor",
    ] {
        let e = store_bytes(d.path(), bad, 0, "").unwrap_err();
        assert!(e.to_string().contains("is not a durable-queue file"), "{e}");
        assert!(remove(d.path(), bad).is_err(), "{bad}");
    }
    assert!(!d.path().join("alarms.db").exists());
    // A stretch that would leave a gap, a watermark not sent whole.
    let e = store_bytes(d.path(), SEG, 5, "YWJj").unwrap_err();
    assert!(e.to_string().contains("would leave a gap"), "{e}");
    let e = store_bytes(d.path(), "tsdb/vm/acked", 3, "YWJj").unwrap_err();
    assert!(e.to_string().contains("sent whole"), "{e}");
    // Bytes at an offset below the end cut the file back first.
    assert_eq!(store_bytes(d.path(), SEG, 0, "YWJjZGVm").unwrap(), 6);
    assert_eq!(store_bytes(d.path(), SEG, 2, "eHk=").unwrap(), 2);
    assert_eq!(std::fs::read(d.path().join(SEG)).unwrap(), b"abxy");
    // Removing a file that is not there is not an error.
    remove(d.path(), "tsdb/vm/seg-00000000000000000002.hgq").unwrap();
}

#[test]
fn a_copied_queue_replays_what_the_active_had_not_delivered() {
    let (a, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let qdir = a.path().join("tsdb/vm");
    let (mut q, _) = DiskQueue::open(&qdir, cfg()).unwrap();
    let mut copy = QueueCopy::default();
    for i in 0..20u8 {
        q.append(&[i; 90], 1, Timestamp::from_millis(i64::from(i))).unwrap();
        if i % 3 == 0 {
            poll(a.path(), s.path(), &mut copy);
        }
    }
    // Delivered: the first eight; their segments go, here and on the standby.
    for _ in 0..8 {
        let r = q.next_unsent().unwrap().unwrap();
        q.ack(r.seq).unwrap();
    }
    assert_eq!(poll(a.path(), s.path(), &mut copy), 0);
    let names = |d: &Path| -> Vec<(String, u64)> {
        replica::queue_files(d)
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.size))
            .collect()
    };
    assert_eq!(names(s.path()), names(a.path()));
    drop(q);
    let (mut standby, rec) = DiskQueue::open(&s.path().join("tsdb/vm"), cfg()).unwrap();
    assert_eq!(rec.damaged, 0);
    let mut got = Vec::new();
    while let Some(r) = standby.next_unsent().unwrap() {
        got.push(r.payload[0]);
    }
    assert_eq!(got, (8..20).collect::<Vec<u8>>());
}

#[test]
fn a_copy_that_ends_in_a_torn_frame_replays_every_whole_record() {
    let (a, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let qdir = a.path().join("tsdb/vm");
    let (mut q, _) = DiskQueue::open(&qdir, cfg()).unwrap();
    for i in 0..3u8 {
        q.append(&[i; 90], 1, Timestamp::from_millis(i64::from(i))).unwrap();
    }
    let mut copy = QueueCopy::default();
    poll(a.path(), s.path(), &mut copy);
    // The active was killed while its last append was half read: the standby holds part of
    // the frame.
    q.append(&[3; 90], 1, Timestamp::from_millis(3)).unwrap();
    let ours = replica::queue_files(a.path()).unwrap();
    let mut plan = copy.plan(&ours, BUDGET);
    assert_eq!(plan.reads.len(), 1);
    plan.reads[0].len -= 40;
    apply(s.path(), &messages(a.path(), &mut copy, plan));
    drop(q);
    let (mut standby, rec) = DiskQueue::open(&s.path().join("tsdb/vm"), cfg()).unwrap();
    assert_eq!(rec.damaged, 1, "the torn frame is skipped and counted");
    let mut got = Vec::new();
    while let Some(r) = standby.next_unsent().unwrap() {
        got.push(r.payload[0]);
    }
    assert_eq!(got, [0, 1, 2]);
    // Writing resumes after it.
    assert!(
        standby
            .append(b"new", 1, Timestamp::from_millis(9))
            .unwrap()
            .seq
            .is_some()
    );
}

#[test]
fn a_resumed_copy_continues_where_the_standby_stopped() {
    let (a, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut q, _) = DiskQueue::open(&a.path().join("mqtt_north/plant.outbox"), cfg()).unwrap();
    for i in 0..4u8 {
        q.append(&[i; 50], 1, Timestamp::from_millis(i64::from(i))).unwrap();
    }
    poll(a.path(), s.path(), &mut QueueCopy::default());
    for i in 4..12u8 {
        q.append(&[i; 50], 1, Timestamp::from_millis(i64::from(i))).unwrap();
    }
    // The standby also holds a file of its own: dropped at resume.
    let stray = s.path().join("tsdb/old/seg-00000000000000000001.hgq");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, [7u8; 33]).unwrap();
    let held = held_files(s.path());
    let ours = replica::queue_files(a.path()).unwrap();
    let (mut copy, msgs, dropped) = QueueCopy::resume(&ours, &held, |p, n| file_head(&a.path().join(p), n));
    assert_eq!(dropped, Dropped { files: 1, bytes: 33 });
    apply(s.path(), &msgs);
    let sent = poll(a.path(), s.path(), &mut copy);
    assert_eq!(sent, 0);
    assert!(!stray.exists());
    for f in replica::queue_files(a.path()).unwrap() {
        assert_eq!(
            std::fs::read(a.path().join(&f.path)).unwrap(),
            std::fs::read(s.path().join(&f.path)).unwrap(),
            "{}",
            f.path
        );
    }
}

fn held_files(d: &Path) -> Vec<HeldQueueFile> {
    super::held(d).unwrap()
}
