//! The `[api]` server settings beyond address, body limit and tokens: TLS files, timeouts and
//! the request-head limit. Checked when the config is loaded, the TLS files included, so a
//! wrong path or a key that does not match its certificate is reported with its place in the
//! file rather than at start-up.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::server::{Limits, MIN_HEADER_LIMIT, TlsError, TlsFiles};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::relative_to;
use crate::spec::tls::TlsFile;
use crate::spec::units::{DurationText, SizeText};

/// `[api] tls = { cert = "…", key = "…" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain, leaf first (relative to the config file).
    pub cert: Spanned<PathBuf>,
    /// PEM private key of the leaf (relative to the config file).
    pub key: Spanned<PathBuf>,
}

/// The API server's validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// HTTPS files; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Connection-level limits.
    pub limits: Limits,
    /// Longest an ordinary request may take.
    pub request_timeout: Duration,
}

/// Default for `request_timeout`: history queries over long ranges take a few seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            tls: None,
            limits: Limits::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Checks the settings; reads the TLS files to prove they make a server.
pub(crate) fn validate(
    src: &SourceText<'_>,
    tls: Option<&Spanned<RawTls>>,
    header_read_timeout: Option<&Spanned<DurationText>>,
    request_timeout: Option<&Spanned<DurationText>>,
    max_header: Option<&Spanned<SizeText>>,
    errors: &mut Vec<ConfigError>,
) -> ServerSettings {
    let mut out = ServerSettings::default();
    for (value, key, slot) in [
        (
            header_read_timeout,
            "api.header_read_timeout",
            &mut out.limits.header_read_timeout,
        ),
        (request_timeout, "api.request_timeout", &mut out.request_timeout),
    ] {
        if let Some(v) = value {
            if v.get_ref().0.is_zero() {
                errors.push(src.error(v.span(), key, "must be longer than zero"));
            }
            *slot = v.get_ref().0;
        }
    }
    if let Some(m) = max_header {
        let bytes = m.get_ref().0;
        match usize::try_from(bytes) {
            Ok(b) if b >= MIN_HEADER_LIMIT => out.limits.max_header = b,
            _ => errors.push(src.error(
                m.span(),
                "api.max_header",
                format!("must be at least 8KiB ({MIN_HEADER_LIMIT} bytes), got {bytes} bytes"),
            )),
        }
    }
    if let Some(t) = tls {
        let t = t.get_ref();
        let files = TlsFiles {
            cert: relative_to(src.file, t.cert.get_ref()),
            key: relative_to(src.file, t.key.get_ref()),
        };
        match files.acceptor() {
            Ok(_) => out.tls = Some(files),
            Err(e) => {
                let (span, key) = match &e {
                    TlsError::Files(f) if f.file() == TlsFile::Key => (t.key.span(), "api.tls.key"),
                    TlsError::Refused { .. } => (t.key.span(), "api.tls.key"),
                    _ => (t.cert.span(), "api.tls.cert"),
                };
                errors.push(src.error(span, key, e.to_string()));
            }
        }
    }
    out
}
