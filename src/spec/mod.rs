//! The building blocks every component's configuration is made of: errors that name file,
//! line and key ([`ConfigError`], [`SourceText`]), durations and sizes written as text
//! ([`units`]), paths relative to the config file ([`relative_to`]) and TLS files read into
//! rustls types ([`tls`]).
//!
//! Sources, sinks and the API validate their own sections with these; the top-level
//! `config` module gathers those sections into one config. This module imports no
//! component, so components never need to import `config`.

pub mod error;
pub mod tls;
pub mod units;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors, SourceText};

/// A path written in the config file `config`: absolute as written, or relative to the
/// config's folder (so a config names its certificates and key files beside itself,
/// whatever the working directory of the service).
pub fn relative_to(config: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    }
}
