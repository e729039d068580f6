//! `hazard-gateway backup DIR`: a consistent copy of the alarm journal and the history while
//! the gateway runs.
//!
//! Design: each database is copied with SQLite's online backup API in a single step, i.e.
//! inside one read transaction: the copy is the database as of one commit, and in WAL mode
//! the gateway's writers carry on meanwhile (only the write-ahead log grows for the
//! duration). A file copy of a WAL database is not used: it can pair a database file with a
//! log from another moment and come back torn. Copied in this order:
//! 1. the delivery cursors (`*.cursor` of webhooks, northbound MQTT and uplinks), with the
//!    transitions webhooks hold for their quiet hours (`*.held`) and the escalation steps sent
//!    (`escalations/*.sent`), first, so none is ahead of the journal copy: after a restore each
//!    follower resumes at or before the journal's end and delivers again what it had not
//!    confirmed at backup time (at least once, never skipped);
//! 2. `alarms.db` (the alarm journal and running delay timers);
//! 3. `history.db`.
//!
//! Then `manifest.json` names each file with its size, the time and the gateway version;
//! it is written last, so a directory without one is an unfinished backup. The time-series
//! store buffers and uplink outboxes are not copied: they hold readings on their way to
//! other systems, and a restored gateway starts them empty.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

/// The journal's file in the data directory.
pub const JOURNAL_FILE: &str = "alarms.db";
/// The history's file in the data directory.
pub const HISTORY_FILE: &str = "history.db";
/// The manifest written last into the backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Where the deliveries that follow the journal keep their cursors: `webhooks/<name>.cursor`,
/// `mqtt_north/<name>.cursor`, `uplinks/<name>/alarms.cursor`. Only these are searched, so a
/// backup kept under the data directory is never copied into the next one. Escalation rosters
/// keep their sent steps in `escalations/<name>.sent`.
const CURSOR_DIRS: [&str; 4] = ["webhooks", "mqtt_north", "uplinks", "escalations"];

/// Extensions of the delivery state copied from those folders.
const CURSOR_EXTENSIONS: [&str; 3] = ["cursor", "held", "sent"];

/// Attempts of a copy that finds the database busy (a writer mid-checkpoint), 100 ms apart.
const BUSY_ATTEMPTS: u32 = 50;

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination exists and holds files: a backup never mixes with other files.
    #[error("{0} is not empty; give a new or empty directory")]
    NotEmpty(PathBuf),
    /// The data directory holds no journal: wrong `--config` or data directory.
    #[error("no alarm journal at {0}; is this the gateway's data directory?")]
    NoJournal(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// SQLite refused the copy.
    #[error("{path}: {source}")]
    Sqlite {
        /// Database.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The database stayed busy through every attempt.
    #[error("{0}: still busy after {BUSY_ATTEMPTS} attempts")]
    Busy(PathBuf),
}

/// Who made the backup and when, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct BackupMeta {
    /// Version of the gateway that made it.
    pub gateway_version: String,
    /// When it was started, RFC 3339.
    pub created: String,
    /// The same, Unix milliseconds.
    pub created_unix_ms: i64,
    /// The data directory copied.
    pub data_dir: PathBuf,
}

/// One file in the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopiedFile {
    /// Path relative to the backup (and to the data directory it came from).
    pub path: String,
    /// What it is: `journal`, `history` or `cursor`.
    pub kind: &'static str,
    /// Size in bytes.
    pub bytes: u64,
}

/// What `manifest.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Who and when.
    #[serde(flatten)]
    pub meta: BackupMeta,
    /// Newest alarm journal sequence number in the copy.
    pub journal_last_seq: i64,
    /// Every file copied.
    pub files: Vec<CopiedFile>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the journal, history and delivery cursors of `data_dir` into `dest` (created if
/// absent, refused if not empty) and writes the manifest. Blocking: run it off the async
/// runtime.
pub fn backup(data_dir: &Path, dest: &Path, meta: BackupMeta) -> Result<Manifest, BackupError> {
    let journal = data_dir.join(JOURNAL_FILE);
    if !journal.is_file() {
        return Err(BackupError::NoJournal(journal));
    }
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(dest.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dest).map_err(io(dest))?;
        }
        Err(e) => return Err(io(dest)(e)),
    }
    let mut files = Vec::new();
    for rel in delivery_state_files(data_dir)? {
        let (from, to) = (data_dir.join(&rel), dest.join(&rel));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let bytes = std::fs::copy(&from, &to).map_err(io(&from))?;
        files.push(CopiedFile {
            path: rel_text(&rel),
            kind: "cursor",
            bytes,
        });
    }
    let journal_copy = dest.join(JOURNAL_FILE);
    files.push(copy_database(&journal, &journal_copy, "journal")?);
    let history = data_dir.join(HISTORY_FILE);
    if history.is_file() {
        files.push(copy_database(&history, &dest.join(HISTORY_FILE), "history")?);
    }
    let copy =
        Connection::open_with_flags(&journal_copy, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql(&journal_copy))?;
    let journal_last_seq = copy
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM alarm_transitions", [], |r| r.get(0))
        .map_err(sql(&journal_copy))?;
    drop(copy);
    let manifest = Manifest {
        meta,
        journal_last_seq,
        files,
    };
    let path = dest.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| io(&path)(std::io::Error::other(e)))?;
    let tmp = dest.join(".manifest.json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(manifest)
}

/// Copies one SQLite database as of one commit (a single backup step in one read
/// transaction; a stepwise copy would restart at every commit of a busy writer).
fn copy_database(from: &Path, to: &Path, kind: &'static str) -> Result<CopiedFile, BackupError> {
    let src = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(from))?;
    src.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql(from))?;
    let mut dst = Connection::open(to).map_err(sql(to))?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(sql(to))?;
        let mut attempts = 0;
        loop {
            match backup.step(-1).map_err(sql(from))? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked => {
                    attempts += 1;
                    if attempts >= BUSY_ATTEMPTS {
                        return Err(BackupError::Busy(from.to_path_buf()));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                _ => {
                    attempts += 1;
                    if attempts >= BUSY_ATTEMPTS {
                        return Err(BackupError::Busy(from.to_path_buf()));
                    }
                }
            }
        }
    }
    // The copy is a plain rollback-journal database: one self-contained file, whatever
    // journal mode the gateway sets again when it opens it.
    dst.pragma_update(None, "journal_mode", "DELETE").map_err(sql(to))?;
    drop(dst);
    let bytes = std::fs::metadata(to).map_err(io(to))?.len();
    Ok(CopiedFile {
        path: to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kind,
        bytes,
    })
}

/// Every `*.cursor`, `*.held` and `*.sent` file under `dir`, relative to `root`.
/// The delivery state of `data_dir` (cursors, held transitions, escalation steps sent), as
/// paths relative to it, sorted: what a successor needs to continue each delivery where this
/// gateway stopped (a backup, a hot-standby peer).
pub fn delivery_state_files(data_dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    for dir in CURSOR_DIRS {
        let dir = data_dir.join(dir);
        if dir.is_dir() {
            find_cursors(data_dir, &dir, &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `rel` (relative, `/`-separated) names delivery state: under one of the delivery
/// folders, with a delivery-state extension, and nothing that climbs out.
pub fn is_delivery_state(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    parts.len() >= 2
        && CURSOR_DIRS.contains(&parts[0])
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\'))
        && Path::new(rel)
            .extension()
            .is_some_and(|e| CURSOR_EXTENSIONS.iter().any(|c| e == *c))
}

fn find_cursors(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            find_cursors(root, &path, out)?;
        } else if kind.is_file()
            && path
                .extension()
                .is_some_and(|e| CURSOR_EXTENSIONS.iter().any(|c| e == *c))
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}

/// `p` with `/` between its parts.
pub fn rel_text(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AlarmClass, AlarmEvent, AlarmState, ConditionKind, Level, Priority, SubjectKind, Timestamp, Transition,
    };
    use crate::sinks::journal::AlarmJournal;

    fn meta(dir: &Path) -> BackupMeta {
        BackupMeta {
            gateway_version: "test".into(),
            created: "2026-01-01T00:00:00Z".into(),
            created_unix_ms: 0,
            data_dir: dir.to_path_buf(),
        }
    }

    fn event(i: i64) -> AlarmEvent {
        AlarmEvent {
            seq: 0,
            alarm_id: format!("p{i}:high"),
            rule: "r".into(),
            subject: format!("p{i}"),
            subject_kind: SubjectKind::Point,
            hazard_source: None,
            condition: ConditionKind::Threshold,
            class: AlarmClass::Process,
            level: Some(Level::High),
            priority: Priority::High,
            transition: Transition::Raised,
            state: AlarmState::UnackActive,
            acknowledged: false,
            latching: false,
            shelved_until: None,
            suppressed: false,
            out_of_service: false,
            value: 30.0,
            limit: Some(25.0),
            unit: "%LEL".into(),
            ts: Timestamp::from_millis(i),
            raised_at: None,
            user: None,
            comment: None,
            category: None,
            predicted_at: None,
        }
    }

    #[test]
    fn a_backup_copies_journal_and_cursors_and_refuses_a_non_empty_directory() {
        let data = tempfile::tempdir().unwrap();
        let journal = AlarmJournal::open(&data.path().join(JOURNAL_FILE)).unwrap();
        let mut events: Vec<AlarmEvent> = (1..=3).map(event).collect();
        journal.append(&mut events, &[]).unwrap();
        std::fs::create_dir_all(data.path().join("webhooks")).unwrap();
        std::fs::write(data.path().join("webhooks/ops.cursor"), "2\n").unwrap();
        std::fs::write(data.path().join("webhooks/ops.cursor.tmp"), "9\n").unwrap();
        std::fs::write(data.path().join("webhooks/ops.held"), "1\n").unwrap();
        std::fs::create_dir_all(data.path().join("escalations")).unwrap();
        std::fs::write(data.path().join("escalations/gas.sent"), "").unwrap();
        std::fs::create_dir_all(data.path().join("backups/old/webhooks")).unwrap();
        std::fs::write(data.path().join("backups/old/webhooks/ops.cursor"), "1\n").unwrap();

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("b1");
        let m = backup(data.path(), &dest, meta(data.path())).unwrap();
        assert_eq!(m.journal_last_seq, 3);
        let names: Vec<(&str, &str)> = m.files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("escalations/gas.sent", "cursor"),
                ("webhooks/ops.cursor", "cursor"),
                ("webhooks/ops.held", "cursor"),
                ("alarms.db", "journal")
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("webhooks/ops.cursor")).unwrap(),
            "2\n"
        );
        let copy = AlarmJournal::open(&dest.join(JOURNAL_FILE)).unwrap();
        assert_eq!(copy.since(0, 10).unwrap().len(), 3);
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dest.join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(manifest["gateway_version"], "test");
        assert_eq!(manifest["files"][3]["bytes"], m.files[3].bytes);

        // Into the same, now non-empty, directory: refused and nothing touched.
        let again = backup(data.path(), &dest, meta(data.path())).unwrap_err();
        assert!(matches!(again, BackupError::NotEmpty(_)), "{again}");
        // A directory that is not a data directory.
        let empty = tempfile::tempdir().unwrap();
        let none = backup(empty.path(), &out.path().join("b2"), meta(empty.path())).unwrap_err();
        assert!(matches!(none, BackupError::NoJournal(_)), "{none}");
    }
}
