//! Settings of the file-drop transport (`transport = { file = { … } }` of an uplink) and their
//! pure validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::sinks::uplink::config::{Place, SecretRef};
use crate::spec::error::ConfigError;
use crate::spec::units::DurationText;

/// `transport = { type = "file", … }`: the file-drop transport's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDropSettings {
    /// Directory the complete files appear in (created at start; relative to the config file).
    /// Without `ftp`, the platform's collector takes them from here; with `ftp`, they wait here
    /// until pushed. Default `spool/` in the uplink's data directory. One uplink per directory.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Push spooled files to the platform's FTP server; a file is delivered only once pushed.
    #[serde(default)]
    pub ftp: Option<FtpSettings>,
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpSettings {
    /// `host:port` of the server (plain FTP, passive mode).
    pub address: String,
    /// Login name.
    pub user: String,
    /// The password, from `{ env = "VAR" }` or `{ file = "…" }` (never written in the config
    /// or a log); none for a server that asks for none.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Directory on the server the files go to; default the login directory.
    #[serde(default)]
    pub remote_dir: Option<String>,
    /// Limit on each FTP step (connect, login, upload, rename); default 10 s.
    #[serde(default)]
    pub timeout: Option<DurationText>,
}

impl FtpSettings {
    /// The limit on each FTP step.
    pub fn step_timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(10), |t| t.0)
    }
}

/// An FTP password as resolved at start; `Debug` never shows it.
#[derive(Clone, Default)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(REDACTED)")
    }
}

/// One mistake in the file-drop settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDropProblem {
    /// Key path below the transport table.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl FileDropSettings {
    /// Checks what serde cannot: returns every problem found (pure, no I/O).
    pub fn validate(&self) -> Vec<FileDropProblem> {
        let mut problems = Vec::new();
        if self.spool_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            problems.push(FileDropProblem {
                key: "spool_dir".into(),
                message: "must name a directory".into(),
            });
        }
        if let Some(f) = &self.ftp {
            let port_ok = f
                .address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                problems.push(FileDropProblem {
                    key: "ftp.address".into(),
                    message: format!("`{}` must be host:port (the FTP port is usually 21)", f.address),
                });
            }
            if f.user.is_empty() {
                problems.push(FileDropProblem {
                    key: "ftp.user".into(),
                    message: "must name the login (`anonymous` for an anonymous server)".into(),
                });
            }
            if f.timeout.is_some_and(|t| t.0.is_zero()) {
                problems.push(FileDropProblem {
                    key: "ftp.timeout".into(),
                    message: "must be longer than zero".into(),
                });
            }
        }
        problems
    }

    /// Reports every problem at the transport table's place and resolves relative paths
    /// (config validation; reads nothing).
    pub fn check(&mut self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        for p in self.validate() {
            errors.push(at.error(&p.key, p.message));
        }
        if let Some(dir) = &self.spool_dir {
            self.spool_dir = Some(at.path(dir));
        }
        if let Some(secret) = self.ftp.as_mut().and_then(|f| f.password.as_mut()) {
            secret.check(at, "ftp.password", errors);
        }
    }
}
