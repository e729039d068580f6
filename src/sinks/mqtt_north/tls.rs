//! TLS for the northbound MQTT client: the broker's CA, optionally a client certificate, with
//! rustls on the ring provider. The files are read when the config is checked, so a wrong
//! path is reported with its place in the file, and again when the client starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::RawNorthTls;
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::tls::{self, TlsFile, TlsFileError};

/// Validated TLS files of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NorthTls {
    /// CA certificate(s) trusted for the broker.
    pub ca_file: PathBuf,
    /// Client certificate chain and key, when the broker wants one.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NorthTlsError {
    /// A file could not be read or holds no PEM item of its kind.
    #[error(transparent)]
    Files(#[from] TlsFileError),
    /// rustls refused the files.
    #[error("TLS setup refused: {0}")]
    Refused(#[from] rustls::Error),
}

impl NorthTls {
    /// The rustls client configuration (ring provider, TLS 1.2 and 1.3).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, NorthTlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in tls::certs(TlsFile::Ca, &self.ca_file)? {
            roots.add(c)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let key_der = tls::private_key(key)?;
                builder.with_client_auth_cert(tls::certs(TlsFile::Cert, cert)?, key_der)?
            }
        };
        Ok(Arc::new(config))
    }
}

/// Checks `tls` of `mqtt_north[i]`, reading its files.
pub(super) fn check(
    src: &SourceText<'_>,
    i: usize,
    tls: &RawNorthTls,
    errors: &mut Vec<ConfigError>,
) -> Option<NorthTls> {
    let at = |key: &str| format!("mqtt_north[{i}].tls.{key}");
    let rel = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            src.file.parent().unwrap_or(Path::new(".")).join(p)
        }
    };
    let client = match (&tls.cert, &tls.key) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((rel(c.get_ref()), rel(k.get_ref()))),
        (Some(c), None) => {
            errors.push(src.error(c.span(), at("key"), "a client certificate needs its `key`"));
            return None;
        }
        (None, Some(k)) => {
            errors.push(src.error(k.span(), at("cert"), "a client key needs its `cert`"));
            return None;
        }
    };
    let spec = NorthTls {
        ca_file: rel(tls.ca_file.get_ref()),
        client,
    };
    match spec.client_config() {
        Ok(_) => Some(spec),
        Err(e) => {
            let (span, key) = match (&e, &tls.cert, &tls.key) {
                (NorthTlsError::Files(f), _, Some(k)) if f.file() == TlsFile::Key => (k.span(), "key"),
                (NorthTlsError::Files(f), Some(c), _) if f.file() == TlsFile::Cert => (c.span(), "cert"),
                (NorthTlsError::Refused(_), Some(c), _) => (c.span(), "cert"),
                _ => (tls.ca_file.span(), "ca_file"),
            };
            errors.push(src.error(span, at(key), e.to_string()));
            None
        }
    }
}
