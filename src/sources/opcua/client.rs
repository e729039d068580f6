//! The only module besides [`super::browse`] that builds async-opcua clients: the gateway's
//! application certificate, the trust list, the user identity and the endpoint to match.
//!
//! Design: the gateway's application instance certificate and key live in
//! `<data_dir>/opcua/pki/own/cert.der` and `<data_dir>/opcua/pki/private/private.pem`. They are
//! made (self-signed, RSA 2048, application URI `urn:hazard-gateway:<gateway id>`) the first time
//! a client is built and reused after, so a server administrator trusts the gateway once.
//! Trusted server certificates sit in `pki/trusted/`; the configured `trusted_dir` and
//! `trust_server_cert` are copied there at start. A server certificate that is not trusted
//! is written to `pki/rejected/` and the connection fails with `BadCertificateUntrusted`:
//! the log names that folder, so the engineer can check it and move it to the trust list.

use std::path::{Path, PathBuf};
use std::time::Duration;

use opcua::client::{Client, ClientBuilder, IdentityToken};
use opcua::crypto::{CertificateStore, X509};
use opcua::types::{EndpointDescription, MessageSecurityMode};

use super::config::{Auth, EndpointSpec, Mode, PasswordSource};

/// Why a client could not be set up or a session not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpcuaError {
    /// The password file could not be read.
    #[error("endpoint {endpoint}: cannot read password_file {file}: {source}")]
    PasswordFile {
        /// Endpoint name.
        endpoint: String,
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The password variable is not set.
    #[error("endpoint {endpoint}: environment variable {var} (password_env) is not set")]
    PasswordEnv {
        /// Endpoint name.
        endpoint: String,
        /// The variable.
        var: String,
    },
    /// A certificate or key file could not be read or parsed.
    #[error("endpoint {endpoint}: {what}")]
    Certificate {
        /// Endpoint name.
        endpoint: String,
        /// What failed, with the file.
        what: String,
    },
    /// The client configuration was refused by the library.
    #[error("OPC UA client setup: {0}")]
    Setup(String),
    /// Connecting or opening the session failed.
    #[error("endpoint {endpoint}: {message}")]
    Connect {
        /// Endpoint name.
        endpoint: String,
        /// What the server or library said, with advice where we have some.
        message: String,
        /// Bounded kind for metric labels.
        kind: &'static str,
    },
}

impl OpcuaError {
    /// A bounded name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            OpcuaError::PasswordFile { .. } | OpcuaError::PasswordEnv { .. } => "password",
            OpcuaError::Certificate { .. } => "certificate",
            OpcuaError::Setup(_) => "setup",
            OpcuaError::Connect { kind, .. } => kind,
        }
    }
}

/// The PKI folder of the gateway's OPC UA client under its data dir.
pub fn pki_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("opcua").join("pki")
}

/// Notifications one response may carry at least (also the browse command's floor: a folder
/// of up to this many children).
const MIN_NOTIFICATIONS: usize = 10_000;
/// Notifications one response may carry at most, whatever the items ask.
const MAX_NOTIFICATIONS: usize = 1_000_000;
/// Bytes one notification may take on the wire: client handle, encoding mask, a numeric
/// variant, status code, both timestamps and their picoseconds come to about 40; the rest is
/// room for a string value or diagnostic info.
const BYTES_PER_NOTIFICATION: usize = 64;
/// Bytes of one chunk the gateway offers to receive (the library's default).
const CHUNK: usize = 65_535;

/// How large a response the client accepts: the array length, message size and chunk count it
/// decodes before refusing a message and dropping the connection.
///
/// The library's defaults (arrays of 1,000 elements, 5 chunks of 64 KiB) are too small for a
/// subscription with more items: the gateway asks for at most 1,000 notifications per publish
/// response, but servers may ignore that (asyncua sends every queued change in one response),
/// and a single response of 2,500 changes then broke the connection with `BadDecodingError`
/// at every publish, so no value ever arrived. The limits are sized for the endpoint instead:
/// every item's whole queue in one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Elements in one array (notifications in a response, results of a call).
    pub max_array: usize,
    /// Bytes of one message.
    pub max_message: usize,
    /// Chunks of one message.
    pub max_chunks: usize,
}

impl Limits {
    /// Limits for a subscription whose items queue `queued` values in all (the sum of their
    /// `queue_size`), so the server may send all of them in one response.
    pub fn for_queued(queued: usize) -> Limits {
        let max_array = queued.clamp(MIN_NOTIFICATIONS, MAX_NOTIFICATIONS);
        let max_message = max_array * BYTES_PER_NOTIFICATION + CHUNK;
        Limits {
            max_array,
            max_message,
            max_chunks: max_message.div_ceil(CHUNK) + 1,
        }
    }
}

/// A client with the gateway's own certificate (made on first use), trusting only what the
/// trust list holds, accepting responses within `limits`.
pub fn build_client(
    gateway_id: &str,
    pki: &Path,
    request_timeout: Duration,
    reconnect_max: Duration,
    limits: Limits,
) -> Result<Client, OpcuaError> {
    ClientBuilder::new()
        .max_array_length(limits.max_array)
        .max_message_size(limits.max_message)
        .max_chunk_count(limits.max_chunks)
        .application_name("hazard-gateway")
        .application_uri(format!("urn:hazard-gateway:{gateway_id}"))
        .product_uri("urn:hazard-gateway")
        .create_sample_keypair(true)
        .pki_dir(pki)
        .trust_server_certs(false)
        .verify_server_certs(true)
        .session_retry_limit(-1)
        .session_retry_initial(Duration::from_millis(500))
        .session_retry_max(reconnect_max)
        .keep_alive_interval(Duration::from_secs(5))
        .request_timeout(request_timeout)
        .recreate_subscriptions(true)
        .session_name(format!("hazard-gateway {gateway_id}"))
        .session_timeout(60_000)
        .client()
        .map_err(|e| OpcuaError::Setup(e.join("; ")))
}

/// What health shows for a lost connection, with advice where the cause is the gateway's
/// response limits.
pub fn lost_reason(code: opcua::types::StatusCode, limits: Limits) -> String {
    let name = format!("{code}");
    if name.contains("Decoding") || name.contains("TooLarge") || name.contains("EncodingLimits") {
        format!(
            "connection lost: {code}: a response from the server could not be decoded or exceeded the gateway's limits ({} elements per array, {} bytes per message); the log names the cause",
            limits.max_array, limits.max_message
        )
    } else {
        format!("connection lost: {code}")
    }
}

/// The gateway's application certificate, made if missing; returns its path.
pub fn own_certificate(gateway_id: &str, data_dir: &Path) -> Result<PathBuf, OpcuaError> {
    let pki = pki_dir(data_dir);
    let client = build_client(
        gateway_id,
        &pki,
        Duration::from_secs(5),
        Duration::from_secs(5),
        Limits::for_queued(0),
    )?;
    let path = client.certificate_store().read().own_certificate_path();
    if path.is_file() {
        Ok(path)
    } else {
        Err(OpcuaError::Setup(format!(
            "the application certificate could not be written to {}",
            path.display()
        )))
    }
}

fn read_cert(endpoint: &str, path: &Path) -> Result<X509, OpcuaError> {
    let bytes = std::fs::read(path).map_err(|e| OpcuaError::Certificate {
        endpoint: endpoint.into(),
        what: format!("cannot read certificate {}: {e}", path.display()),
    })?;
    let pem = bytes.starts_with(b"-----");
    let cert = if pem {
        X509::from_pem(&bytes)
    } else {
        X509::from_der(&bytes)
    };
    cert.map_err(|e| OpcuaError::Certificate {
        endpoint: endpoint.into(),
        what: format!("{} is not a DER or PEM certificate: {e}", path.display()),
    })
}

/// Copies the endpoint's trusted server certificates into the trust list of `pki`; returns
/// how many it holds from the config.
pub fn install_trust(spec: &EndpointSpec, pki: &Path) -> Result<usize, OpcuaError> {
    let mut files = Vec::new();
    if let Some(dir) = &spec.trusted_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| OpcuaError::Certificate {
            endpoint: spec.name.clone(),
            what: format!("cannot read trusted_dir {}: {e}", dir.display()),
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "der" || x == "pem" || x == "crt") {
                files.push(p);
            }
        }
    }
    files.extend(spec.trust_server_cert.iter().cloned());
    let trusted = pki.join("trusted");
    std::fs::create_dir_all(&trusted).map_err(|e| OpcuaError::Certificate {
        endpoint: spec.name.clone(),
        what: format!("cannot create {}: {e}", trusted.display()),
    })?;
    for f in &files {
        let cert = read_cert(&spec.name, f)?;
        let der = cert.to_der().map_err(|e| OpcuaError::Certificate {
            endpoint: spec.name.clone(),
            what: format!("{}: {e}", f.display()),
        })?;
        let target = trusted.join(CertificateStore::cert_file_name(&cert));
        std::fs::write(&target, der).map_err(|e| OpcuaError::Certificate {
            endpoint: spec.name.clone(),
            what: format!("cannot write {}: {e}", target.display()),
        })?;
    }
    Ok(files.len())
}

/// The session identity of the endpoint: reads the password or the user certificate.
pub fn identity(spec: &EndpointSpec) -> Result<IdentityToken, OpcuaError> {
    match &spec.auth {
        Auth::Anonymous => Ok(IdentityToken::Anonymous),
        Auth::User { name, password } => {
            let password = match password {
                PasswordSource::File(f) => std::fs::read_to_string(f)
                    .map_err(|source| OpcuaError::PasswordFile {
                        endpoint: spec.name.clone(),
                        file: f.clone(),
                        source,
                    })?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                PasswordSource::Env(var) => std::env::var(var).map_err(|_| OpcuaError::PasswordEnv {
                    endpoint: spec.name.clone(),
                    var: var.clone(),
                })?,
            };
            Ok(IdentityToken::new_user_name(name.clone(), password))
        }
        Auth::Certificate { cert, key } => {
            let c = read_cert(&spec.name, cert)?;
            let k = CertificateStore::read_pkey(key).map_err(|e| OpcuaError::Certificate {
                endpoint: spec.name.clone(),
                what: format!(
                    "user_key {} is not an RSA private key in PEM (PKCS#8 or PKCS#1; OPC UA signs the user token with RSA): {e}",
                    key.display()
                ),
            })?;
            Ok(IdentityToken::new_x509(c, k))
        }
    }
}

/// The endpoint description to match among those the server offers.
pub fn wanted_endpoint(spec: &EndpointSpec) -> EndpointDescription {
    let mode = match spec.mode {
        Mode::None => MessageSecurityMode::None,
        Mode::Sign => MessageSecurityMode::Sign,
        Mode::SignAndEncrypt => MessageSecurityMode::SignAndEncrypt,
    };
    (spec.url.as_str(), spec.policy.uri(), mode).into()
}

/// Turns a library error into ours, with advice for the failures engineers meet at
/// commissioning.
pub fn connect_error(spec: &EndpointSpec, pki: &Path, status: opcua::types::StatusCode, msg: &str) -> OpcuaError {
    let name = format!("{status}");
    let (kind, advice) = if name.contains("Certificate") {
        (
            "certificate",
            format!(
                "; the server certificate is not trusted: check it and copy it from {} into trusted_dir (or set trust_server_cert), or the server refused the gateway's certificate {} (trust it on the server)",
                pki.join("rejected").display(),
                pki.join("own").join("cert.der").display()
            ),
        )
    } else if name.contains("IdentityToken") || name.contains("UserAccessDenied") {
        (
            "auth",
            "; the server refused the user (name, password or user certificate)".into(),
        )
    } else if name.contains("SecurityPolicy") || name.contains("EndpointUrl") || msg.contains("matching endpoint") {
        (
            "endpoint",
            format!(
                "; the server offers no endpoint with security_policy `{}` and security_mode `{}` (run `hazard-gateway opcua browse {}` to list what it offers)",
                spec.policy.as_str(),
                spec.mode.as_str(),
                spec.url
            ),
        )
    } else {
        ("connect", String::new())
    };
    OpcuaError::Connect {
        endpoint: spec.name.clone(),
        message: format!("{status}: {msg}{advice}"),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_every_queued_value_of_the_endpoint_in_one_response() {
        // Small endpoints keep a floor well above the library's 1,000-element default.
        let small = Limits::for_queued(25);
        assert_eq!(small.max_array, 10_000);
        // 10,000 items with a queue of 10 each: 100,000 notifications in one response.
        let big = Limits::for_queued(100_000);
        assert_eq!(big.max_array, 100_000);
        assert!(big.max_message >= 100_000 * 40, "{big:?}");
        assert!(big.max_chunks * 65_535 >= big.max_message, "{big:?}");
        // A ceiling, whatever the items ask.
        assert_eq!(Limits::for_queued(usize::MAX / 2).max_array, 1_000_000);
    }

    #[test]
    fn a_user_key_that_is_not_an_rsa_pem_key_names_the_file_and_what_it_must_be() {
        let dir = tempfile::tempdir().unwrap();
        // The gateway's own certificate stands in for a user certificate (RSA, DER).
        let cert = own_certificate("gw", dir.path()).unwrap();
        let key = dir.path().join("user.key");
        std::fs::write(
            &key,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        let spec = EndpointSpec {
            name: "dcs".into(),
            url: "opc.tcp://127.0.0.1:4840".into(),
            policy: super::super::config::Policy::Basic256Sha256,
            mode: Mode::SignAndEncrypt,
            auth: Auth::Certificate { cert, key: key.clone() },
            trusted_dir: None,
            trust_server_cert: None,
            publishing_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(30),
        };
        let err = identity(&spec).unwrap_err();
        assert_eq!(err.kind(), "certificate");
        let text = err.to_string();
        assert!(text.starts_with("endpoint dcs: user_key "), "{text}");
        assert!(
            text.contains(&key.display().to_string()) && text.contains("not an RSA private key"),
            "{text}"
        );
    }

    #[test]
    fn a_lost_connection_from_an_oversized_response_names_the_limits() {
        let limits = Limits::for_queued(0);
        let text = lost_reason(opcua::types::StatusCode::BadDecodingError, limits);
        assert!(text.contains("10000 elements per array"), "{text}");
        assert_eq!(
            lost_reason(opcua::types::StatusCode::BadConnectionClosed, limits),
            "connection lost: BadConnectionClosed"
        );
    }
}
