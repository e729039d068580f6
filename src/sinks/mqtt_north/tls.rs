//! TLS for the northbound MQTT client: the broker's CA, optionally a client certificate, with
//! rustls on the ring provider. The files are read when the config is checked, so a wrong
//! path is reported with its place in the file, and again when the client starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::config::RawNorthTls;
use crate::spec::error::{ConfigError, SourceText};

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
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item.
    #[error("{} holds no PEM {what}: {reason}", path.display())]
    NoPem {
        /// The file.
        path: PathBuf,
        /// `certificate` or `key`.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// rustls refused the files.
    #[error("TLS setup refused: {0}")]
    Refused(#[from] rustls::Error),
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NorthTlsError> {
    let pem = std::fs::read(path).map_err(|source| NorthTlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let no_pem = |reason: String| NorthTlsError::NoPem {
        path: path.to_path_buf(),
        what: "certificate",
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(no_pem("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

impl NorthTls {
    /// The rustls client configuration (ring provider, TLS 1.2 and 1.3).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, NorthTlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(&self.ca_file)? {
            roots.add(c)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let pem = std::fs::read(key).map_err(|source| NorthTlsError::Read {
                    path: key.clone(),
                    source,
                })?;
                let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| NorthTlsError::NoPem {
                    path: key.clone(),
                    what: "key",
                    reason: e.to_string(),
                })?;
                builder.with_client_auth_cert(certs(cert)?, key_der)?
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
                (NorthTlsError::Read { path, .. } | NorthTlsError::NoPem { path, .. }, _, Some(k))
                    if *path == rel(k.get_ref()) =>
                {
                    (k.span(), "key")
                }
                (NorthTlsError::Read { path, .. } | NorthTlsError::NoPem { path, .. }, Some(c), _)
                    if *path == rel(c.get_ref()) =>
                {
                    (c.span(), "cert")
                }
                (NorthTlsError::Refused(_), Some(c), _) => (c.span(), "cert"),
                _ => (tls.ca_file.span(), "ca_file"),
            };
            errors.push(src.error(span, at(key), e.to_string()));
            None
        }
    }
}
