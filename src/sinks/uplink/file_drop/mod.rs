//! File drop: each payload becomes a file in a spool directory, optionally pushed to the
//! platform's FTP server (coal-mine files; any encoder that sets the `file_name` attribute).
//!
//! # Layout and invariants
//! ```text
//! spool_dir/
//!   .part-NAME       being written (never complete; removed at start)
//!   NAME             complete: synced, then renamed into place, then the directory synced
//!   sent/NAME        pushed (after_push = "move")
//!   rejected/NAME    refused for good by the FTP server (553 bad file name, 501, 504); kept
//! ```
//! A collector or a push only ever sees complete files. A crash leaves at most a `.part-` file
//! (removed at start) or a complete file whose outbox entry is still there (the replay finds
//! the same bytes and does not write them twice).
//!
//! # When a payload counts as delivered
//! - **No FTP**: `Ok` once the file is safely spooled (synced and renamed); the platform's
//!   collector takes it from the directory, which is the platform's acknowledgement here.
//! - **FTP**: `Ok` only once the FTP server holds the complete file (uploaded under a
//!   temporary name and renamed). While the server is down `deliver` fails with
//!   `Unreachable`: the payload stays in the uplink's durable outbox *and* its file stays
//!   spooled, and both are retried by the outbox with its backoff, in its order. Files in the
//!   spool are pushed in name order, so leftovers from before a crash go first. At least once:
//!   a crash between the push and the outbox's acknowledgement pushes the same file again
//!   (same name, same bytes: the platform's copy is overwritten with itself).
//!
//! # Names
//! The encoder's `file_name` is used as it is. Should other bytes already sit under that name
//! (possible only across a restart within one second), the file takes the next free name: a
//! trailing `yyyyMMddHHmmss` moves on by a second, so the platform's name pattern and the time
//! order of names hold.

pub mod config;
mod ftp;
mod spool;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use config::{AfterPush, FileDropProblem, FileDropSettings, FtpSettings, Password};
use ftp::FtpPusher;
pub use ftp::PushError;
use spool::Placed;

use super::{BoxFuture, Payload, Transport, TransportError};

/// The attribute holding the file name.
pub const FILE_NAME_ATTR: &str = "file_name";

/// Why the spool could not be prepared at start.
#[derive(Debug, thiserror::Error)]
#[error("uplink `{uplink}`: spool directory {dir}: {source}")]
pub struct SpoolError {
    /// Uplink name.
    pub uplink: String,
    /// The directory.
    pub dir: PathBuf,
    /// What failed.
    pub source: std::io::Error,
}

/// Reads the FTP password the settings name (at build, not in validation).
pub fn password(settings: &FileDropSettings) -> Result<Password, String> {
    match settings.ftp.as_ref().and_then(|f| f.password.as_ref()) {
        None => Ok(Password::default()),
        Some(secret) => secret.resolve().map(|s| Password(s.text())),
    }
}

/// The file-drop transport of one uplink.
#[derive(Debug)]
pub struct FileDrop {
    uplink: String,
    dir: PathBuf,
    after_push: AfterPush,
    ftp: Option<FtpPusher>,
}

async fn blocking<T: Send + 'static>(
    dir: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, TransportError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(TransportError::NotAcknowledged(format!("spool {}: {e}", dir.display()))),
        Err(e) => Err(TransportError::NotAcknowledged(format!("spool task failed: {e}"))),
    }
}

impl FileDrop {
    /// Prepares the spool (creates it, removes half-written files) for uplink `uplink`;
    /// `default_dir` is used when the settings name none. Blocking (start-up only).
    pub fn open(
        uplink: &str,
        settings: &FileDropSettings,
        default_dir: &Path,
        password: Password,
    ) -> Result<Self, SpoolError> {
        let dir = settings.spool_dir.clone().unwrap_or_else(|| default_dir.to_path_buf());
        spool::prepare(&dir).map_err(|source| SpoolError {
            uplink: uplink.to_string(),
            dir: dir.clone(),
            source,
        })?;
        let ftp = settings.ftp.as_ref().map(|f| FtpPusher::new(f.clone(), password));
        Ok(Self {
            uplink: uplink.to_string(),
            dir,
            after_push: settings.after_push,
            ftp,
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn deliver_file(&mut self, payload: &Payload) -> Result<(), TransportError> {
        let Some(name) = payload.attr(FILE_NAME_ATTR) else {
            return Err(TransportError::Rejected("the payload carries no file name".into()));
        };
        if !spool::valid_name(name) {
            return Err(TransportError::Rejected(format!("`{name}` is not a plain file name")));
        }
        let check_sent = self.ftp.is_some() && self.after_push == AfterPush::Move;
        let placed = {
            let (dir, name, body) = (self.dir.clone(), name.to_string(), payload.body.clone());
            blocking(&self.dir, move || spool::place(&dir, &name, &body, check_sent)).await?
        };
        let ours = match placed {
            Placed::AlreadySent => return Ok(()),
            Placed::Spooled(ours) => ours,
        };
        if ours != name {
            tracing::warn!(uplink = %self.uplink, file = %name, spooled_as = %ours, "Spool held other bytes under this name; file renamed");
        }
        if self.ftp.is_none() {
            return Ok(());
        }
        self.push_pending(&ours).await
    }

    /// Pushes every spooled file in name order; `Ok` once `ours` was pushed.
    async fn push_pending(&mut self, ours: &str) -> Result<(), TransportError> {
        let pending = {
            let dir = self.dir.clone();
            blocking(&self.dir, move || spool::pending(&dir)).await?
        };
        let mut pushed_ours = false;
        for name in pending {
            let body = {
                let path = self.dir.join(&name);
                blocking(&self.dir, move || std::fs::read(path)).await?
            };
            let Some(ftp) = self.ftp.as_mut() else { break };
            match ftp.push(&name, &body).await {
                Ok(()) => {
                    pushed_ours |= name == ours;
                    self.after_pushed(&name).await;
                    tracing::debug!(uplink = %self.uplink, file = %name, bytes = body.len(), "File pushed");
                }
                // Order matters: stop at the first file that could not be pushed.
                Err(PushError::Transient(e)) => return Err(TransportError::Unreachable(e)),
                Err(PushError::Permanent(e)) => {
                    let (dir, n) = (self.dir.clone(), name.clone());
                    let moved = blocking(&self.dir, move || spool::move_to(&dir, &n, spool::REJECTED_DIR)).await;
                    tracing::error!(uplink = %self.uplink, file = %name, error = %e, kept = moved.is_ok(), "FTP server refused the file for good; kept in rejected/");
                    if name == ours {
                        return Err(TransportError::Rejected(e));
                    }
                }
            }
        }
        if pushed_ours {
            Ok(())
        } else {
            Err(TransportError::NotAcknowledged(format!(
                "{ours} left the spool before it was pushed"
            )))
        }
    }

    async fn after_pushed(&self, name: &str) {
        let (dir, n, after) = (self.dir.clone(), name.to_string(), self.after_push);
        let done = blocking(&self.dir, move || match after {
            AfterPush::Move => spool::move_to(&dir, &n, spool::SENT_DIR).map(drop),
            AfterPush::Delete => spool::remove(&dir, &n),
        })
        .await;
        if let Err(e) = done {
            // The platform has the file; left in the spool it is pushed once more later.
            tracing::warn!(uplink = %self.uplink, file = %name, error = %e, "Pushed file could not leave the spool");
        }
    }
}

impl Transport for FileDrop {
    fn deliver<'a>(&'a mut self, payload: &'a Payload) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.deliver_file(payload))
    }
}
