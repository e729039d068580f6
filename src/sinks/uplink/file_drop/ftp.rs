//! Pushing spooled files to the platform's FTP server (suppaftp's tokio client).
//!
//! A file is uploaded under a temporary name (`.part-NAME`) and renamed (RNFR/RNTO) when the
//! upload completed, so the platform's collector never picks up half a file. One control
//! connection is kept between pushes; when it went stale (servers close idle sessions) the push
//! is retried once on a fresh one.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use suppaftp::tokio::AsyncFtpStream;
use suppaftp::{FtpError, Status};

use super::config::{FtpSettings, Password};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Server down, connection broken, timeout, or a reply that may change later (disk full,
    /// login refused): the file stays spooled and is pushed again.
    #[error("FTP push failed: {0}")]
    Transient(String),
    /// The server will never take this file (file name not allowed, bad parameters).
    #[error("FTP server refused the file: {0}")]
    Permanent(String),
}

/// Replies that mean "never this file" (RFC 959): 553 file name not allowed, 501 syntax error in
/// parameters, 504 parameter not implemented. Every other failure is retried: nothing is dropped
/// for a reply that could mean a full disk, a missing directory or a passing login problem.
const PERMANENT: &[Status] = &[
    Status::BadFilename,
    Status::BadArguments,
    Status::NotImplementedParameter,
];

fn classify(e: FtpError) -> PushError {
    match &e {
        FtpError::UnexpectedResponse(r) if PERMANENT.contains(&r.status) => PushError::Permanent(e.to_string()),
        _ => PushError::Transient(e.to_string()),
    }
}

/// The FTP side of a file-drop transport.
pub(super) struct FtpPusher {
    settings: FtpSettings,
    password: Password,
    session: Option<AsyncFtpStream>,
}

impl fmt::Debug for FtpPusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpPusher")
            .field("address", &self.settings.address)
            .field("user", &self.settings.user)
            .field("password", &self.password)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

async fn step<T>(limit: Duration, what: &str, fut: impl Future<Output = Result<T, FtpError>>) -> Result<T, PushError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(classify),
        Err(_) => Err(PushError::Transient(format!("{what} timed out after {limit:?}"))),
    }
}

impl FtpPusher {
    /// A pusher for `settings`; connects on the first push.
    pub(super) fn new(settings: FtpSettings, password: Password) -> Self {
        Self {
            settings,
            password,
            session: None,
        }
    }

    async fn connect(&self) -> Result<AsyncFtpStream, PushError> {
        let limit = self.settings.step_timeout();
        let mut ftp = step(
            limit,
            "connect",
            AsyncFtpStream::connect(self.settings.address.as_str()),
        )
        .await?;
        step(
            limit,
            "login",
            ftp.login(self.settings.user.as_str(), self.password.0.as_str()),
        )
        .await?;
        step(
            limit,
            "binary mode",
            ftp.transfer_type(suppaftp::types::FileType::Binary),
        )
        .await?;
        if let Some(dir) = &self.settings.remote_dir {
            step(limit, "change directory", ftp.cwd(dir.as_str())).await?;
        }
        Ok(ftp)
    }

    async fn upload(ftp: &mut AsyncFtpStream, limit: Duration, name: &str, body: &[u8]) -> Result<(), PushError> {
        let temp = format!("{}{name}", super::spool::TEMP_PREFIX);
        let mut reader = body;
        step(limit, "upload", ftp.put_file(temp.as_str(), &mut reader)).await?;
        step(limit, "rename", ftp.rename(temp.as_str(), name)).await
    }

    /// Uploads `body` as `name`; `Ok` once the server holds the complete file under its name.
    pub(super) async fn push(&mut self, name: &str, body: &[u8]) -> Result<(), PushError> {
        let limit = self.settings.step_timeout();
        let reused = self.session.is_some();
        let mut ftp = match self.session.take() {
            Some(ftp) => ftp,
            None => self.connect().await?,
        };
        let mut result = Self::upload(&mut ftp, limit, name, body).await;
        if reused && matches!(result, Err(PushError::Transient(_))) {
            // The kept session may have been closed by the server while idle: one fresh try.
            ftp = self.connect().await?;
            result = Self::upload(&mut ftp, limit, name, body).await;
        }
        match &result {
            // A refused file leaves the session usable.
            Ok(()) | Err(PushError::Permanent(_)) => self.session = Some(ftp),
            Err(PushError::Transient(_)) => {}
        }
        result
    }
}
