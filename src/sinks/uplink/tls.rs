//! `tls = { ca_file, cert, key }` of an uplink transport: rustls on the ring provider, the
//! same files and checks as the northbound MQTT client.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::config::Place;
use crate::sinks::mqtt_north::tls::NorthTls;
use crate::spec::error::ConfigError;

/// TLS files of a transport.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) trusted for the platform.
    pub ca_file: PathBuf,
    /// Client certificate chain, for platforms that require one (needs `key`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Private key of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Name the server's certificate must carry (default: the host connected to).
    #[serde(default)]
    pub server_name: Option<String>,
}

impl TlsConfig {
    /// Resolves the paths and loads the files once, so a bad file fails `check-config`.
    pub fn check(&mut self, at: &Place<'_>, field: &str, errors: &mut Vec<ConfigError>) {
        self.ca_file = at.path(&self.ca_file);
        self.cert = self.cert.as_ref().map(|p| at.path(p));
        self.key = self.key.as_ref().map(|p| at.path(p));
        if self.cert.is_some() != self.key.is_some() {
            errors.push(at.error(field, "a client certificate needs both `cert` and `key`"));
            return;
        }
        if let Err(e) = self.client_config() {
            errors.push(at.error(field, e));
        }
    }

    /// The rustls client configuration.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        NorthTls {
            ca_file: self.ca_file.clone(),
            client: self.cert.clone().zip(self.key.clone()),
        }
        .client_config()
        .map_err(|e| e.to_string())
    }
}
