//! The durable queues of a data directory as files, for a hot-standby peer that copies them.
//!
//! Design: every queue lives in a directory of its own under the data directory:
//! `tsdb/<store>/` (time-series store buffers), `mqtt_north/<target>.outbox/` (northbound
//! readings) and `uplinks/<name>/outbox/{urgent,normal}/` (regulator uplinks). In each, the
//! segment files `seg-<seq>.hgq` only ever grow until they are deleted whole, and `acked`
//! holds the watermark ([`super`]). A copy of a segment made while it is written is a prefix
//! of it, possibly ending in a torn frame, which [`super::DiskQueue::open`] skips.

use std::path::Path;

/// The watermark file of a queue.
pub const ACKED: &str = "acked";

/// The two queues of an uplink's outbox.
const OUTBOX_QUEUES: [&str; 2] = ["urgent", "normal"];

/// A queue file as one node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFile {
    /// Path relative to the data directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// Whether the last part of `rel` names a segment file (`seg-<digits>.hgq`).
pub fn is_segment(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.strip_prefix("seg-")
        .and_then(|n| n.strip_suffix(".hgq"))
        .is_some_and(|d| !d.is_empty() && d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `rel` (relative, `/`-separated) names a file of a durable queue: a segment or the
/// watermark, directly in one of the queue directories, and nothing that climbs out.
pub fn is_queue_file(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let clean = parts
        .iter()
        .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\'));
    let Some((file, dir)) = parts.split_last() else {
        return false;
    };
    clean && (*file == ACKED || is_segment(file)) && is_queue_dir(dir)
}

fn is_queue_dir(parts: &[&str]) -> bool {
    match parts {
        ["tsdb", _] => true,
        ["mqtt_north", target] => target.len() > ".outbox".len() && target.ends_with(".outbox"),
        ["uplinks", _, "outbox", q] => OUTBOX_QUEUES.contains(q),
        _ => false,
    }
}

/// Every queue file of `data_dir` with its size, sorted by path. Files that vanish while
/// listed (a segment deleted meanwhile) are left out.
pub fn queue_files(data_dir: &Path) -> std::io::Result<Vec<QueueFile>> {
    let mut dirs = Vec::new();
    for store in subdirs(&data_dir.join("tsdb"))? {
        dirs.push(format!("tsdb/{store}"));
    }
    for target in subdirs(&data_dir.join("mqtt_north"))? {
        dirs.push(format!("mqtt_north/{target}"));
    }
    for uplink in subdirs(&data_dir.join("uplinks"))? {
        for q in OUTBOX_QUEUES {
            dirs.push(format!("uplinks/{uplink}/outbox/{q}"));
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(data_dir.join(&dir)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = format!("{dir}/{name}");
            if !is_queue_file(&path) {
                continue;
            }
            match entry.metadata() {
                Ok(m) if m.is_file() => out.push(QueueFile { path, size: m.len() }),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Names of the directories in `dir` (none if it does not exist).
fn subdirs(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_segments_and_watermarks_of_queue_directories_are_queue_files() {
        for ok in [
            "tsdb/vm/seg-00000000000000000001.hgq",
            "tsdb/vm/acked",
            "mqtt_north/plant.outbox/acked",
            "mqtt_north/plant.outbox/seg-00000000000000000042.hgq",
            "uplinks/epa/outbox/urgent/acked",
            "uplinks/epa/outbox/normal/seg-00000000000000000007.hgq",
        ] {
            assert!(is_queue_file(ok), "{ok}");
        }
        for bad in [
            "alarms.db",
            "tsdb/vm.dead-letter.lp",
            "tsdb/vm/seg-1.hgq.tmp",
            "tsdb/vm/seg-.hgq",
            "tsdb/vm/seg-123456789012345678901.hgq",
            "tsdb/vm/other",
            "tsdb/../acked",
            "tsdb/./acked",
            "tsdb//acked",
            "/tsdb/vm/acked",
            "tsdb/a\\b/acked",
            "tsdb/vm/deeper/acked",
            "mqtt_north/plant/acked",
            "mqtt_north/.outbox/acked",
            "uplinks/epa/outbox/acked",
            "uplinks/epa/outbox/other/acked",
            "uplinks/epa/late/acked",
            "webhooks/ops.cursor",
            "../tsdb/vm/acked",
        ] {
            assert!(!is_queue_file(bad), "{bad}");
        }
    }

    #[test]
    fn the_listing_finds_every_queue_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for (rel, len) in [
            ("tsdb/vm/seg-00000000000000000001.hgq", 5usize),
            ("tsdb/vm/acked", 12),
            ("tsdb/vm.dead-letter.lp", 3),
            ("mqtt_north/plant.outbox/acked", 12),
            ("mqtt_north/plant.cursor", 2),
            ("uplinks/epa/outbox/urgent/seg-00000000000000000003.hgq", 7),
            ("uplinks/epa/alarms.cursor", 2),
        ] {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, vec![0u8; len]).unwrap();
        }
        let got: Vec<(String, u64)> = queue_files(root)
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.size))
            .collect();
        assert_eq!(
            got,
            [
                ("mqtt_north/plant.outbox/acked".to_string(), 12),
                ("tsdb/vm/acked".to_string(), 12),
                ("tsdb/vm/seg-00000000000000000001.hgq".to_string(), 5),
                ("uplinks/epa/outbox/urgent/seg-00000000000000000003.hgq".to_string(), 7),
            ]
        );
        assert!(queue_files(&root.join("absent")).unwrap().is_empty());
    }
}
