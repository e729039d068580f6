//! `[[opcua.endpoints]]` and `[[opcua.points]]` as written, and the validated specs the
//! endpoint tasks run. Validation lives in [`super::validate`].

use std::path::PathBuf;
use std::time::Duration;

use opcua::types::NodeId;
use serde::Deserialize;
use toml::Spanned;

use crate::model::{PointId, PointKind};
use crate::spec::units::{self, DurationText};

/// The `[opcua]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpcua {
    /// Servers to connect to.
    #[serde(default)]
    pub endpoints: Vec<Spanned<RawEndpoint>>,
    /// Declared points, each fed by one monitored item.
    #[serde(default)]
    pub points: Vec<Spanned<RawItem>>,
}

/// OPC UA security policy of the secure channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// No signing or encryption: anyone on the network can read and forge values. Only on an
    /// isolated control network.
    #[default]
    None,
    /// RSA 2048+ with SHA-256 (the usual choice of DCS servers).
    #[serde(rename = "basic256sha256")]
    Basic256Sha256,
    /// AES-128, SHA-256 and RSA-OAEP (newer servers).
    Aes128Sha256RsaOaep,
}

impl Policy {
    /// The policy URI the standard defines.
    pub fn uri(self) -> &'static str {
        match self {
            Policy::None => "http://opcfoundation.org/UA/SecurityPolicy#None",
            Policy::Basic256Sha256 => "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256",
            Policy::Aes128Sha256RsaOaep => "http://opcfoundation.org/UA/SecurityPolicy#Aes128_Sha256_RsaOaep",
        }
    }

    /// The name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Basic256Sha256 => "basic256sha256",
            Policy::Aes128Sha256RsaOaep => "aes128_sha256_rsa_oaep",
        }
    }
}

/// Parses `none` or `policy/mode` (`basic256sha256/sign_and_encrypt`), as the browse command
/// takes it.
pub fn parse_security(text: &str) -> Result<(Policy, Mode), String> {
    let bad = || format!("`{text}` is not `none` or policy/mode like basic256sha256/sign_and_encrypt");
    if text == "none" {
        return Ok((Policy::None, Mode::None));
    }
    let (p, m) = text.split_once('/').ok_or_else(bad)?;
    let policy = match p {
        "basic256sha256" => Policy::Basic256Sha256,
        "aes128_sha256_rsa_oaep" => Policy::Aes128Sha256RsaOaep,
        _ => return Err(bad()),
    };
    let mode = match m {
        "sign" => Mode::Sign,
        "sign_and_encrypt" => Mode::SignAndEncrypt,
        _ => return Err(bad()),
    };
    Ok((policy, mode))
}

/// OPC UA message security mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Messages neither signed nor encrypted (needs policy `none`).
    #[default]
    None,
    /// Messages signed, readable on the wire.
    Sign,
    /// Messages signed and encrypted.
    SignAndEncrypt,
}

impl Mode {
    /// The name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Sign => "sign",
            Mode::SignAndEncrypt => "sign_and_encrypt",
        }
    }
}

fn default_publishing() -> Duration {
    Duration::from_secs(1)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_reconnect_max() -> Duration {
    Duration::from_secs(30)
}

/// An `[[opcua.endpoints]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Name that points, logs, metrics and device health use.
    pub name: Spanned<String>,
    /// `opc.tcp://host:port[/path]`.
    pub url: Spanned<String>,
    /// `none` (default), `basic256sha256` or `aes128_sha256_rsa_oaep`.
    #[serde(default)]
    pub security_policy: Policy,
    /// `none` (default), `sign` or `sign_and_encrypt`.
    #[serde(default)]
    pub security_mode: Mode,
    /// User name, for servers that ask for one.
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    /// File holding the password (first line); read at start, never logged.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password; read at start, never logged.
    #[serde(default)]
    pub password_env: Option<String>,
    /// X.509 user certificate (DER or PEM), for servers that authenticate users by certificate.
    #[serde(default)]
    pub user_certificate: Option<Spanned<PathBuf>>,
    /// Private key of `user_certificate`: RSA, PEM (PKCS#8 or PKCS#1).
    #[serde(default)]
    pub user_key: Option<PathBuf>,
    /// Folder of server certificates (`.der`/`.pem`) to trust, added to the gateway's trust list.
    #[serde(default)]
    pub trusted_dir: Option<PathBuf>,
    /// One server certificate file to trust.
    #[serde(default)]
    pub trust_server_cert: Option<PathBuf>,
    /// How often the server sends the changes it collected.
    #[serde(default = "default_publishing", deserialize_with = "units::duration::deserialize")]
    pub publishing_interval: Duration,
    /// Longest a request may take before the link is considered broken.
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "units::duration::deserialize"
    )]
    pub request_timeout: Duration,
    /// Longest wait between reconnect attempts (they back off from 500 ms up to this).
    #[serde(default = "default_reconnect_max", deserialize_with = "units::duration::deserialize")]
    pub reconnect_max: Duration,
}

fn default_queue() -> u32 {
    10
}

/// Change filter of a monitored item.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Deadband {
    /// A change smaller than this (in engineering units) is not reported.
    Absolute(f64),
    /// A change smaller than this percentage of the node's `EURange` is not reported. The server
    /// needs an `EURange` property on the node (analog items); without one it refuses the item
    /// (`BadFilterNotAllowed`) and the point shows `decode_error` with the reason logged.
    Percent(f64),
}

/// An `[[opcua.points]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawItem {
    /// `name` of an `[[opcua.endpoints]]` entry.
    pub endpoint: Spanned<String>,
    /// The point id this node feeds.
    pub point: Spanned<String>,
    /// Node id: `ns=2;s=TI101.PV`, `ns=2;i=1001` (give this or `browse_path`).
    #[serde(default)]
    pub node: Option<Spanned<String>>,
    /// Browse path from the Objects folder: `2:Plant/2:TankFarm/2:LT101` (`ns:name` per
    /// level, namespace 0 when the prefix is left out); resolved at every connect.
    #[serde(default)]
    pub browse_path: Option<Spanned<String>>,
    /// Engineering unit.
    #[serde(default)]
    pub unit: String,
    /// What the point measures.
    #[serde(default = "default_kind")]
    pub kind: PointKind,
    /// Instrument range `[low, high]`; values outside are `out_of_range`.
    #[serde(default)]
    pub range: Option<Spanned<[f64; 2]>>,
    /// Hazard source the point belongs to.
    #[serde(default)]
    pub hazard_source: Option<Spanned<String>>,
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
    /// How often the server samples the node; default: the endpoint's publishing interval.
    #[serde(default)]
    pub sampling_interval: Option<Spanned<DurationText>>,
    /// Changes the server keeps per item between publishes (older ones are discarded first).
    #[serde(default = "default_queue")]
    pub queue_size: u32,
    /// `{ absolute = 0.5 }` or `{ percent = 2.0 }`; absent: every change is reported.
    #[serde(default)]
    pub deadband: Option<Spanned<Deadband>>,
}

fn default_kind() -> PointKind {
    PointKind::Other
}

/// Where the password of a user login comes from (read at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// First line of this file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

/// How the gateway authenticates its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No user.
    Anonymous,
    /// User name and password.
    User {
        /// User name.
        name: String,
        /// Where the password is read from.
        password: PasswordSource,
    },
    /// X.509 user certificate and its key.
    Certificate {
        /// Certificate file (DER or PEM).
        cert: PathBuf,
        /// Private key file (PEM).
        key: PathBuf,
    },
}

/// A validated endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    /// Name.
    pub name: String,
    /// Endpoint URL.
    pub url: String,
    /// Security policy.
    pub policy: Policy,
    /// Message security mode.
    pub mode: Mode,
    /// Session authentication.
    pub auth: Auth,
    /// Trusted server certificate folder, if any (resolved against the config file).
    pub trusted_dir: Option<PathBuf>,
    /// One trusted server certificate, if any.
    pub trust_server_cert: Option<PathBuf>,
    /// Publishing interval.
    pub publishing_interval: Duration,
    /// Request timeout.
    pub request_timeout: Duration,
    /// Cap of the reconnect backoff.
    pub reconnect_max: Duration,
}

/// What a monitored item watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A node id.
    Node(NodeId),
    /// `(namespace, browse name)` levels from the Objects folder.
    Path(Vec<(u16, String)>),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Node(n) => write!(f, "{n}"),
            Target::Path(levels) => {
                for (i, (ns, name)) in levels.iter().enumerate() {
                    if i > 0 {
                        f.write_str("/")?;
                    }
                    write!(f, "{ns}:{name}")?;
                }
                Ok(())
            }
        }
    }
}

/// A validated monitored item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemSpec {
    /// Index into [`OpcuaSpec::endpoints`].
    pub endpoint: usize,
    /// The point it feeds.
    pub point: PointId,
    /// The point's textual id (for logs).
    pub point_name: String,
    /// What it watches.
    pub target: Target,
    /// Sampling interval.
    pub sampling_interval: Duration,
    /// Server-side queue size.
    pub queue_size: u32,
    /// Change filter.
    pub deadband: Option<Deadband>,
    /// Instrument range (values outside are `out_of_range`).
    pub range: Option<(f64, f64)>,
}

/// Everything `[opcua]` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpcuaSpec {
    /// Endpoints.
    pub endpoints: Vec<EndpointSpec>,
    /// Monitored items, each naming its endpoint by index.
    pub items: Vec<ItemSpec>,
}
