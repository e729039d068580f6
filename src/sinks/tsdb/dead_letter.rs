//! The dead-letter file: batches a store refused for good (a 4xx other than 429), kept in
//! line protocol for an engineer to read and replay by hand, bounded in size.
//!
//! Design: `<store>.dead-letter.lp` grows until the next batch would take it past the cap;
//! it is then renamed to `<store>.dead-letter.lp.1` (replacing the previous `.1`, whose
//! batches are lost: counted in bytes and logged) and a fresh file begins. So the two files
//! hold at most about twice the cap; a single batch larger than the cap is still written
//! whole, alone in a fresh file. A crash between the rename and the first write leaves no
//! current file, which the next append creates.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What one append did besides writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Appended {
    /// The current file was moved to `.1` first.
    pub(super) rotated: bool,
    /// Bytes of the older `.1` deleted by the rotation (refused batches lost).
    pub(super) discarded_bytes: u64,
}

/// The file a rotation moves the current one to.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Appends `header` and `payload` to the file at `path`, first rotating it when they would
/// take it past `max_bytes`, and forces them to disk.
pub(super) fn append(path: &Path, max_bytes: u64, header: &[u8], payload: &[u8]) -> std::io::Result<Appended> {
    let mut out = Appended::default();
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let adding = (header.len() + payload.len()) as u64;
    if size > 0 && size.saturating_add(adding) > max_bytes {
        let old = rotated_path(path);
        out.discarded_bytes = match std::fs::metadata(&old) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        std::fs::rename(path, &old)?;
        out.rotated = true;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(header)?;
    f.write_all(payload)?;
    f.sync_data()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_rotates_at_the_cap_and_the_second_rotation_discards_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.dead-letter.lp");
        let batch = |n: u8| (format!("# batch {n}\n").into_bytes(), vec![b'x'; 40]);
        // Each batch is 50 bytes; a 120-byte cap holds two.
        let mut results = Vec::new();
        for n in 0..5 {
            let (h, p) = batch(n);
            results.push(append(&path, 120, &h, &p).unwrap());
        }
        assert_eq!(
            results
                .iter()
                .map(|a| (a.rotated, a.discarded_bytes))
                .collect::<Vec<_>>(),
            [(false, 0), (false, 0), (true, 0), (false, 0), (true, 100)]
        );
        let current = std::fs::read_to_string(&path).unwrap();
        let previous = std::fs::read_to_string(rotated_path(&path)).unwrap();
        assert!(current.starts_with("# batch 4\n") && current.len() == 50, "{current}");
        assert!(
            previous.starts_with("# batch 2\n") && previous.contains("# batch 3\n"),
            "{previous}"
        );
    }

    #[test]
    fn a_batch_larger_than_the_cap_is_written_whole_into_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.dead-letter.lp");
        append(&path, 100, b"# a\n", b"small\n").unwrap();
        let big = vec![b'y'; 500];
        let r = append(&path, 100, b"# b\n", &big).unwrap();
        assert!(r.rotated);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 504);
        // The next batch rotates the oversized file out of the way, losing the small one.
        let r = append(&path, 100, b"# c\n", b"z\n").unwrap();
        assert_eq!((r.rotated, r.discarded_bytes), (true, 10));
    }
}
