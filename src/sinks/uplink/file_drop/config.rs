//! Settings of the file-drop transport (`transport = { file = { … } }` of an uplink) and their
//! pure validation.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::units::DurationText;

/// The file-drop transport's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDropSettings {
    /// Directory the complete files appear in (created at start). Without `ftp`, the
    /// platform's collector takes them from here; with `ftp`, they wait here until pushed.
    /// One uplink per directory.
    pub spool_dir: Spanned<PathBuf>,
    /// Push spooled files to the platform's FTP server; a file is delivered only once pushed.
    pub ftp: Option<Spanned<FtpSettings>>,
    /// What happens to a file once pushed (only with `ftp`).
    #[serde(default)]
    pub after_push: AfterPush,
}

/// What happens to a spooled file once the FTP server accepted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterPush {
    /// Moved to `sent/` under the spool directory: an audit trail of what the platform got, and
    /// a replayed file is recognised and not pushed twice. The directory grows until pruned.
    #[default]
    Move,
    /// Deleted: nothing accumulates; a file replayed after a crash is pushed again (same name,
    /// same bytes).
    Delete,
}

/// The platform's FTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpSettings {
    /// `host:port` of the server (plain FTP, passive mode).
    pub address: String,
    /// Login name.
    pub user: String,
    /// Environment variable holding the password (never written in the config or a log).
    pub password_env: Option<String>,
    /// Directory on the server the files go to; default the login directory.
    pub remote_dir: Option<String>,
    /// Limit on each FTP step (connect, login, upload, rename); default 10 s.
    pub timeout: Option<DurationText>,
}

impl FtpSettings {
    /// The limit on each FTP step.
    pub fn step_timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |t| t.0)
    }
}

/// An FTP password read from the environment; `Debug` never shows it.
#[derive(Clone, Default)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(REDACTED)")
    }
}

/// One mistake in the file-drop settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDropProblem {
    /// Key path below `transport.file`.
    pub key: String,
    /// Byte span in the config file.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
}

impl FileDropSettings {
    /// Checks what serde cannot: returns every problem found (pure, no I/O).
    pub fn validate(&self) -> Vec<FileDropProblem> {
        let mut problems = Vec::new();
        if self.spool_dir.get_ref().as_os_str().is_empty() {
            problems.push(FileDropProblem {
                key: "spool_dir".into(),
                span: self.spool_dir.span(),
                message: "must name a directory".into(),
            });
        }
        if let Some(ftp) = &self.ftp {
            let span = ftp.span();
            let f = ftp.get_ref();
            let port_ok = f
                .address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                problems.push(FileDropProblem {
                    key: "ftp.address".into(),
                    span: span.clone(),
                    message: format!("`{}` must be host:port (the FTP port is usually 21)", f.address),
                });
            }
            if f.user.is_empty() {
                problems.push(FileDropProblem {
                    key: "ftp.user".into(),
                    span: span.clone(),
                    message: "must name the login (`anonymous` for an anonymous server)".into(),
                });
            }
            if f.timeout.is_some_and(|t| t.0.is_zero()) {
                problems.push(FileDropProblem {
                    key: "ftp.timeout".into(),
                    span,
                    message: "must be longer than zero".into(),
                });
            }
        }
        problems
    }
}
