//! The spool directory: complete files only, written under a temporary name, synced and
//! renamed into place. Blocking file I/O: called through `spawn_blocking`.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Prefix of files being written (a collector skips dot files); removed at start.
pub(super) const TEMP_PREFIX: &str = ".part-";
/// Where pushed files go with `after_push = "move"`.
pub(super) const SENT_DIR: &str = "sent";
/// Where files the FTP server refused for good go.
pub(super) const REJECTED_DIR: &str = "rejected";

/// Whether `name` can be a file in the spool: one plain component, not hidden.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name().is_some_and(|n| n == name)
}

/// Creates the spool (and `sent/`, `rejected/`) and removes temporary files a crash left.
pub(super) fn prepare(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir.join(SENT_DIR))?;
    fs::create_dir_all(dir.join(REJECTED_DIR))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Where a payload ended up.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Placed {
    /// In the spool under this name (new, or the same bytes were already there).
    Spooled(String),
    /// Already pushed earlier (the same bytes are in `sent/`): nothing left to do.
    AlreadySent,
}

fn same_bytes(path: &Path, body: &[u8]) -> io::Result<Option<bool>> {
    match fs::read(path) {
        Ok(old) => Ok(Some(old == body)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The next name to try when `name` is taken by other bytes: a trailing `yyyyMMddHHmmss` before
/// the extension moves one second on (names keep the platform's pattern and their order),
/// otherwise `-N` is appended.
pub(super) fn next_name(name: &str, attempt: u32) -> String {
    let (stem, ext) = name.rsplit_once('.').map_or((name, ""), |(s, e)| (s, e));
    let dot = if ext.is_empty() { "" } else { "." };
    let digits = stem.len().saturating_sub(14);
    if stem.len() >= 14 && stem.is_char_boundary(digits) && stem[digits..].bytes().all(|b| b.is_ascii_digit()) {
        let parsed = jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", &stem[digits..]);
        if let Ok(t) = parsed.and_then(|t| t.checked_add(jiff::Span::new().seconds(i64::from(attempt)))) {
            return format!("{}{}{dot}{ext}", &stem[..digits], t.strftime("%Y%m%d%H%M%S"));
        }
    }
    format!("{stem}-{attempt}{dot}{ext}")
}

/// Puts `body` into the spool as `name`: temporary file, `fsync`, rename, directory `fsync`.
/// Idempotent: the same bytes already spooled (or, with `check_sent`, already pushed) are not
/// written again; other bytes under the name get the next free name.
pub(super) fn place(dir: &Path, name: &str, body: &[u8], check_sent: bool) -> io::Result<Placed> {
    let mut candidate = name.to_string();
    for attempt in 1..=1000u32 {
        if check_sent && same_bytes(&dir.join(SENT_DIR).join(&candidate), body)? == Some(true) {
            return Ok(Placed::AlreadySent);
        }
        match same_bytes(&dir.join(&candidate), body)? {
            Some(true) => return Ok(Placed::Spooled(candidate)),
            Some(false) => candidate = next_name(name, attempt),
            None => {
                write_atomically(dir, &candidate, body)?;
                return Ok(Placed::Spooled(candidate));
            }
        }
    }
    Err(io::Error::other(format!("no free name for {name} in the spool")))
}

fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!("{TEMP_PREFIX}{name}"));
    let mut file = fs::File::create(&temp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(name))?;
    sync_dir(dir)
}

/// Makes renames in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Complete files waiting in the spool, in name order.
pub(super) fn pending(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str().filter(|n| valid_name(n)) {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Moves a spooled file into `sub` (`sent/`, `rejected/`), durably.
pub(super) fn move_to(dir: &Path, name: &str, sub: &str) -> io::Result<PathBuf> {
    let to = dir.join(sub).join(name);
    fs::rename(dir.join(name), &to)?;
    sync_dir(&dir.join(sub))?;
    sync_dir(dir)?;
    Ok(to)
}

/// Deletes a pushed file, durably.
pub(super) fn remove(dir: &Path, name: &str) -> io::Result<()> {
    fs::remove_file(dir.join(name))?;
    sync_dir(dir)
}
