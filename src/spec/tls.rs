//! TLS files written in a config: PEM certificates and private keys, read into rustls types,
//! and the mutual-TLS configurations built from a CA, a certificate chain and its key (the
//! pair link). Read when the config is checked, so a wrong path or a file that holds no
//! certificate is reported with its key and place, and again when the component starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Which of the files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// The CA certificate(s) trusted for the peer.
    Ca,
    /// This end's certificate chain.
    Cert,
    /// This end's private key.
    Key,
}

impl TlsFile {
    /// How messages name it.
    pub fn what(self) -> &'static str {
        match self {
            TlsFile::Ca => "CA certificate",
            TlsFile::Cert => "certificate",
            TlsFile::Key => "key",
        }
    }
}

/// Why TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// A file could not be read.
    #[error("cannot read {} file {}: {source}", file.what(), path.display())]
    Read {
        /// Which file.
        file: TlsFile,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of its kind.
    #[error("{} file {} holds no PEM {}: {reason}", file.what(), path.display(), file.what())]
    NoPem {
        /// Which file.
        file: TlsFile,
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// rustls refused the files (a key that does not match its certificate, a CA certificate
    /// it cannot use).
    #[error("{} file {} is refused by TLS: {source}", file.what(), path.display())]
    Refused {
        /// The file rustls refused, as far as it can be told.
        file: TlsFile,
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl TlsFileError {
    /// Which file the error is about.
    pub fn file(&self) -> TlsFile {
        match self {
            TlsFileError::Read { file, .. } | TlsFileError::NoPem { file, .. } | TlsFileError::Refused { file, .. } => {
                *file
            }
        }
    }
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        file,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file, in order; at least one.
pub fn certs(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(file, path)?;
    let no_pem = |reason: String| TlsFileError::NoPem {
        file,
        path: path.to_path_buf(),
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

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let pem = read(TlsFile::Key, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsFileError::NoPem {
        file: TlsFile::Key,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Mutual TLS between two ends that both hold a certificate signed by one CA: each checks
/// the other's certificate against that CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutualTls {
    /// The CA that signed both ends' certificates (PEM).
    pub ca_file: PathBuf,
    /// This end's certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// This end's private key (PEM).
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl MutualTls {
    fn roots(&self) -> Result<Arc<RootCertStore>, TlsFileError> {
        let mut roots = RootCertStore::empty();
        for c in certs(TlsFile::Ca, &self.ca_file)? {
            roots.add(c).map_err(|source| self.refused(TlsFile::Ca, source))?;
        }
        Ok(Arc::new(roots))
    }

    fn refused(&self, file: TlsFile, source: rustls::Error) -> TlsFileError {
        let path = match file {
            TlsFile::Ca => &self.ca_file,
            TlsFile::Cert => &self.cert,
            TlsFile::Key => &self.key,
        };
        TlsFileError::Refused {
            file,
            path: path.clone(),
            source,
        }
    }

    /// The accepting end (ring provider, TLS 1.2 and 1.3): it requires a client certificate
    /// signed by the CA.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsFileError> {
        let chain = certs(TlsFile::Cert, &self.cert)?;
        let key = private_key(&self.key)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider())
            .build()
            .map_err(|e| self.refused(TlsFile::Ca, rustls::Error::General(e.to_string())))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| self.refused(TlsFile::Key, e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| self.refused(TlsFile::Key, e))?;
        Ok(Arc::new(config))
    }

    /// The dialling end (ring provider, TLS 1.2 and 1.3): it trusts only the CA and presents
    /// its own certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsFileError> {
        let chain = certs(TlsFile::Cert, &self.cert)?;
        let key = private_key(&self.key)?;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| self.refused(TlsFile::Key, e))?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(chain, key)
            .map_err(|e| self.refused(TlsFile::Key, e))?;
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_named_with_what_it_should_hold() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = certs(TlsFile::Ca, &missing).unwrap_err();
        assert_eq!(e.file(), TlsFile::Ca);
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read CA certificate file {}: ", missing.display())),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not PEM").unwrap();
        let e = certs(TlsFile::Cert, &junk).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "certificate file {} holds no PEM certificate: no CERTIFICATE block",
                junk.display()
            )
        );
        let e = private_key(&junk).unwrap_err();
        assert_eq!(e.file(), TlsFile::Key);
        assert!(
            e.to_string()
                .starts_with(&format!("key file {} holds no PEM key", junk.display())),
            "{e}"
        );
    }
}
