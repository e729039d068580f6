//! Following the alarm journal with a durable cursor: what webhook and MQTT delivery share.
//!
//! Design: a follower's cursor is the journal sequence number of the last transition it has
//! dealt with, kept in a small file written by rename (a crash leaves the old or the new value,
//! never a torn one). It reads the journal after the cursor in pages and waits on the live
//! feed (or a one-second tick) when it has caught up. The cursor moves only after a delivery
//! succeeded, so delivery is at least once and in journal order. A new follower starts at the
//! journal's end rather than replaying all history. Its position is also held in the journal,
//! so journal retention never deletes a transition it has not delivered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::model::AlarmEvent;
use crate::sinks::history::StoreError;
use crate::sinks::journal::{AlarmJournal, HoldId};
use crate::state::FeedEvent;

/// Transitions read from the journal per page.
const PAGE: usize = 200;

/// Why a follower could not start.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The cursor file could not be read or written.
    #[error("cursor {path}: {source}")]
    Cursor {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The journal could not be read.
    #[error(transparent)]
    Journal(#[from] StoreError),
}

/// A durable position in the alarm journal.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    seq: u64,
    journal: Arc<AlarmJournal>,
    hold: HoldId,
    feed: broadcast::Receiver<FeedEvent>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.journal.release(&self.hold);
    }
}

fn read_cursor(path: &Path) -> std::io::Result<Option<u64>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_cursor(path: &Path, seq: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("cursor.tmp");
    std::fs::write(&tmp, format!("{seq}\n"))?;
    std::fs::rename(tmp, path)
}

impl Follower {
    /// Opens (or creates at the journal's end) the cursor `<dir>/<name>.cursor`.
    pub fn open(
        dir: &Path,
        name: &str,
        journal: Arc<AlarmJournal>,
        feed: broadcast::Receiver<FeedEvent>,
    ) -> Result<Self, FollowError> {
        let path = dir.join(format!("{name}.cursor"));
        let err = |source| FollowError::Cursor {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let seq = match read_cursor(&path).map_err(err)? {
            Some(seq) => seq,
            None => {
                let end = journal.last_seq()?;
                write_cursor(&path, end).map_err(err)?;
                end
            }
        };
        let hold = journal.hold(seq);
        Ok(Self {
            path,
            seq,
            journal,
            hold,
            feed,
        })
    }

    /// The last sequence number dealt with.
    pub fn position(&self) -> u64 {
        self.seq
    }

    /// The next page of transitions after the cursor, waiting while there are none;
    /// `None` once `stop` fires.
    pub async fn next_page(&mut self, stop: &CancellationToken) -> Option<Vec<AlarmEvent>> {
        loop {
            let journal = self.journal.clone();
            let after = self.seq;
            match tokio::task::spawn_blocking(move || journal.since(after, PAGE)).await {
                Ok(Ok(page)) if !page.is_empty() => return Some(page),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    warn!(cursor = %self.path.display(), error = %e, "Cannot read the alarm journal; retrying")
                }
                Err(_) => return None,
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = self.feed.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Marks `seq` as dealt with.
    pub fn advance(&mut self, seq: u64) {
        self.seq = seq;
        self.journal.move_hold(&self.hold, seq);
        if let Err(e) = write_cursor(&self.path, seq) {
            // Delivery goes on; after a restart the transitions since the last saved cursor are
            // delivered again (at least once), never lost.
            warn!(cursor = %self.path.display(), error = %e, "Cannot save the delivery cursor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_survives_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.cursor");
        assert_eq!(read_cursor(&p).unwrap(), None);
        write_cursor(&p, 41).unwrap();
        write_cursor(&p, 42).unwrap();
        assert_eq!(read_cursor(&p).unwrap(), Some(42));
    }
}
