//! `[redundancy]`: this gateway as one node of a hot-standby pair (`docs/redundancy.md`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::spec::error::{ConfigError, SourceText};
use crate::spec::relative_to;
use crate::spec::tls::{MutualTls, TlsFile};

/// A validated `[redundancy]` section.
#[derive(Clone, PartialEq, Eq)]
pub struct PairSpec {
    /// This node: `a` or `b`.
    pub node: String,
    /// The other node.
    pub peer_node: String,
    /// The peer's pair-link address (`host:port`).
    pub peer: String,
    /// Where this node listens for the peer.
    pub listen: SocketAddr,
    /// The shared secret both nodes prove on the link.
    pub secret: Vec<u8>,
    /// Who takes the lease first when both start together.
    pub prefer: String,
    /// The witness broker (`host`, `port`).
    pub witness_host: String,
    /// The witness broker's port.
    pub witness_port: u16,
    /// User name and password at the witness, if it asks for them.
    pub witness_login: Option<(String, String)>,
    /// Whether the preferred node takes the role back once it follows again.
    pub failback_auto: bool,
    /// Whether the standby polls the network devices all the time (read-only), not only when
    /// the active asks.
    pub dual_poll: bool,
    /// The lease topic at the witness.
    pub topic: String,
    /// Where consoles find this node's API when it is active (the standby redirects there).
    pub advertise_api: String,
    /// Mutual TLS on the pair link (`None`: plain TCP, authenticated but not encrypted).
    pub tls: Option<MutualTls>,
}

impl std::fmt::Debug for PairSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairSpec")
            .field("node", &self.node)
            .field("peer_node", &self.peer_node)
            .field("peer", &self.peer)
            .field("listen", &self.listen)
            .field("secret", &"<redacted>")
            .field("prefer", &self.prefer)
            .field("witness", &format!("{}:{}", self.witness_host, self.witness_port))
            .field("dual_poll", &self.dual_poll)
            .field("topic", &self.topic)
            .field("advertise_api", &self.advertise_api)
            .field("tls", &self.tls)
            .finish()
    }
}

impl PairSpec {
    /// The host of `peer`: the name the peer's certificate must carry when the link runs TLS.
    pub fn peer_host(&self) -> String {
        host_port(&self.peer).map_or_else(|| self.peer.clone(), |(host, _)| host)
    }
}

/// Shortest shared secret accepted: 128 bits.
const MIN_SECRET: usize = 16;

/// The `[redundancy]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedundancy {
    /// This node: `"a"` or `"b"`.
    node: Spanned<String>,
    /// The peer's pair-link address, `host:port`.
    peer: Spanned<String>,
    /// This node's pair-link address.
    listen: Spanned<String>,
    /// Environment variable holding the shared secret.
    #[serde(default)]
    secret_env: Option<Spanned<String>>,
    /// Who starts active when both start together.
    #[serde(default)]
    prefer: Option<Spanned<String>>,
    /// The witness: `{ mqtt = "host:port", topic = "…" }`.
    witness: Spanned<RawWitness>,
    /// `"manual"` (default) or `"auto"`: the preferred node takes the role back.
    #[serde(default)]
    failback: Option<Spanned<String>>,
    /// This node's API as consoles reach it (default `http://` and `[api] listen`).
    #[serde(default)]
    advertise_api: Option<Spanned<String>>,
    /// The standby polls the network devices (Modbus TCP, RTU over TCP) all the time.
    #[serde(default)]
    dual_poll: bool,
    /// Mutual TLS on the pair link: `{ ca_file, cert, key }`, the same CA on both nodes.
    #[serde(default)]
    tls: Option<Spanned<RawPairTls>>,
}

/// `[redundancy] tls = { ca_file = "…", cert = "…", key = "…" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPairTls {
    /// The site CA that signed both nodes' certificates (PEM, relative to the config file).
    ca_file: Spanned<PathBuf>,
    /// This node's certificate chain, leaf first (PEM); it names the address the peer dials.
    cert: Spanned<PathBuf>,
    /// This node's private key (PEM).
    key: Spanned<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWitness {
    mqtt: Spanned<String>,
    topic: Spanned<String>,
    #[serde(default)]
    username: Option<Spanned<String>>,
    #[serde(default)]
    password_env: Option<Spanned<String>>,
}

const NODES: [&str; 2] = ["a", "b"];

/// Checks `[redundancy]`; `env` reads the secret's variable (the process environment in use).
pub(super) fn validate(
    src: &SourceText<'_>,
    raw: &RawRedundancy,
    api_listen: SocketAddr,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<PairSpec> {
    let before = errors.len();
    let node = raw.node.get_ref().clone();
    if !NODES.contains(&node.as_str()) {
        errors.push(src.error(
            raw.node.span(),
            "redundancy.node",
            format!("`{node}`: a pair's nodes are \"a\" and \"b\""),
        ));
    }
    let peer_node = if node == "a" { "b" } else { "a" }.to_string();
    let prefer = raw.prefer.as_ref().map_or("a".to_string(), |p| p.get_ref().clone());
    if let Some(p) = &raw.prefer
        && !NODES.contains(&p.get_ref().as_str())
    {
        errors.push(src.error(
            p.span(),
            "redundancy.prefer",
            format!("`{}`: must be \"a\" or \"b\"", p.get_ref()),
        ));
    }
    let listen = match raw.listen.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(src.error(
                raw.listen.span(),
                "redundancy.listen",
                format!(
                    "`{}` is not an address and port like \"10.0.8.1:7443\"",
                    raw.listen.get_ref()
                ),
            ));
            None
        }
    };
    let peer = raw.peer.get_ref().clone();
    if host_port(&peer).is_none() {
        errors.push(src.error(
            raw.peer.span(),
            "redundancy.peer",
            format!("`{peer}` is not a host and port like \"10.0.8.2:7443\""),
        ));
    } else if listen.is_some_and(|l| l.to_string() == peer) {
        errors.push(src.error(
            raw.peer.span(),
            "redundancy.peer",
            "is this node's own `listen` address: name the other gateway",
        ));
    }
    let var = raw
        .secret_env
        .as_ref()
        .map_or("HAZARD_PAIR_SECRET".to_string(), |v| v.get_ref().clone());
    let span = raw.secret_env.as_ref().map_or(raw.node.span(), Spanned::span);
    let secret = match env(&var) {
        Some(s) if s.len() >= MIN_SECRET => s.into_bytes(),
        Some(s) => {
            errors.push(src.error(
                span,
                "redundancy.secret_env",
                format!(
                    "the secret in ${var} has {} bytes; use at least {MIN_SECRET} (the same on both nodes)",
                    s.len()
                ),
            ));
            Vec::new()
        }
        None => {
            errors.push(src.error(
                span,
                "redundancy.secret_env",
                format!("${var} is not set: the pair's nodes prove the same secret to each other"),
            ));
            Vec::new()
        }
    };
    let w = raw.witness.get_ref();
    let witness = host_port(w.mqtt.get_ref());
    if witness.is_none() {
        errors.push(src.error(
            w.mqtt.span(),
            "redundancy.witness.mqtt",
            format!(
                "`{}` is not a broker's host and port like \"10.0.1.5:1883\"",
                w.mqtt.get_ref()
            ),
        ));
    }
    let topic = w.topic.get_ref().clone();
    if topic.is_empty() || topic.contains(['+', '#']) || topic.starts_with('$') {
        errors.push(src.error(
            w.topic.span(),
            "redundancy.witness.topic",
            format!("`{topic}`: a plain topic name, without wildcards, not starting with `$`"),
        ));
    }
    let witness_login = match (&w.username, &w.password_env) {
        (None, None) => None,
        (Some(u), Some(var)) => match env(var.get_ref()) {
            Some(p) => Some((u.get_ref().clone(), p)),
            None => {
                errors.push(src.error(
                    var.span(),
                    "redundancy.witness.password_env",
                    format!("${} is not set", var.get_ref()),
                ));
                None
            }
        },
        (Some(u), None) => {
            errors.push(src.error(
                u.span(),
                "redundancy.witness.password_env",
                "a username needs password_env",
            ));
            None
        }
        (None, Some(var)) => {
            errors.push(src.error(
                var.span(),
                "redundancy.witness.username",
                "password_env needs a username",
            ));
            None
        }
    };
    let failback_auto = match raw.failback.as_ref().map(|f| (f, f.get_ref().as_str())) {
        None | Some((_, "manual")) => false,
        Some((_, "auto")) => true,
        Some((f, other)) => {
            errors.push(src.error(
                f.span(),
                "redundancy.failback",
                format!("`{other}`: \"manual\" or \"auto\""),
            ));
            false
        }
    };
    let advertise_api = raw.advertise_api.as_ref().map_or_else(
        || format!("http://{api_listen}"),
        |a| a.get_ref().trim_end_matches('/').to_string(),
    );
    if !(advertise_api.starts_with("http://") || advertise_api.starts_with("https://")) {
        if let Some(a) = &raw.advertise_api {
            errors.push(src.error(
                a.span(),
                "redundancy.advertise_api",
                "must be an http:// or https:// URL",
            ));
        }
    }
    let tls = raw.tls.as_ref().and_then(|t| check_tls(src, t.get_ref(), errors));
    if tls.is_some()
        && let Some((host, _)) = host_port(&peer)
        && rustls_pki_types::ServerName::try_from(host.as_str()).is_err()
    {
        errors.push(src.error(
            raw.peer.span(),
            "redundancy.peer",
            format!("`{host}` is not an IP address or DNS name the peer's certificate can carry (tls is set)"),
        ));
    }
    if errors.len() > before {
        return None;
    }
    let (witness_host, witness_port) = witness?;
    Some(PairSpec {
        node,
        peer_node,
        peer,
        listen: listen?,
        secret,
        prefer,
        witness_host,
        witness_port,
        witness_login,
        failback_auto,
        dual_poll: raw.dual_poll,
        topic,
        advertise_api,
        tls,
    })
}

/// Reads the TLS files once, both ways round (accepting and dialling), so a missing or
/// unusable file is reported at load with its key rather than at the first connection.
fn check_tls(src: &SourceText<'_>, raw: &RawPairTls, errors: &mut Vec<ConfigError>) -> Option<MutualTls> {
    let tls = MutualTls {
        ca_file: relative_to(src.file, raw.ca_file.get_ref()),
        cert: relative_to(src.file, raw.cert.get_ref()),
        key: relative_to(src.file, raw.key.get_ref()),
    };
    let checked = tls.server_config().and_then(|_| tls.client_config());
    match checked {
        Ok(_) => Some(tls),
        Err(e) => {
            let (span, key) = match e.file() {
                TlsFile::Ca => (raw.ca_file.span(), "redundancy.tls.ca_file"),
                TlsFile::Cert => (raw.cert.span(), "redundancy.tls.cert"),
                TlsFile::Key => (raw.key.span(), "redundancy.tls.key"),
            };
            errors.push(src.error(span, key, e.to_string()));
            None
        }
    }
}

/// `host:port` with a port number.
fn host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[redundancy]\nnode = \"a\"\npeer = \"127.0.0.1:7002\"\nlisten = \"127.0.0.1:7001\"\nwitness = { mqtt = \"127.0.0.1:1883\", topic = \"hazard/pair/gw\" }\n";

    fn check(text: &str, secret: Option<&str>) -> Result<Option<PairSpec>, String> {
        check_at(std::path::Path::new("site.toml"), text, secret)
    }

    fn check_at(file: &std::path::Path, text: &str, secret: Option<&str>) -> Result<Option<PairSpec>, String> {
        #[derive(Deserialize)]
        struct Doc {
            redundancy: RawRedundancy,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        let src = SourceText::new(file, text);
        let mut errors = Vec::new();
        let secret = secret.map(str::to_string);
        let spec = validate(
            &src,
            &doc.redundancy,
            "127.0.0.1:8080".parse().unwrap(),
            &|_| secret.clone(),
            &mut errors,
        );
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
        }
    }

    #[test]
    fn a_node_gets_its_peer_the_secret_and_the_defaults() {
        let spec = check(GOOD, Some("0123456789abcdef")).unwrap().unwrap();
        assert_eq!(
            (spec.node.as_str(), spec.peer_node.as_str(), spec.prefer.as_str()),
            ("a", "b", "a")
        );
        assert_eq!(spec.secret, b"0123456789abcdef");
        assert_eq!((spec.witness_host.as_str(), spec.witness_port), ("127.0.0.1", 1883));
        assert_eq!(spec.advertise_api, "http://127.0.0.1:8080");
        assert!(!spec.failback_auto);
        assert!(!spec.dual_poll);
        assert_eq!(spec.witness_login, None);
        let text = GOOD.replace(
            "topic = \"hazard/pair/gw\" }",
            "topic = \"hazard/pair/gw\", username = \"pair\", password_env = \"WITNESS_PW\" }\nfailback = \"auto\"\ndual_poll = true",
        );
        let spec = check(&text, Some("0123456789abcdef")).unwrap().unwrap();
        assert!(spec.failback_auto);
        assert!(spec.dual_poll);
        assert_eq!(spec.witness_login, Some(("pair".into(), "0123456789abcdef".into())));
        assert!(
            !format!("{spec:?}").contains("0123456789abcdef"),
            "the secret is never printed"
        );
    }

    #[test]
    fn mistakes_are_named_with_file_line_and_key() {
        let e = check(&format!("{GOOD}failback = \"sometimes\"\n"), Some("0123456789abcdef")).unwrap_err();
        assert!(
            e.contains("site.toml:6:12: redundancy.failback: `sometimes`: \"manual\" or \"auto\""),
            "{e}"
        );
        let e = check(GOOD, None).unwrap_err();
        assert!(
            e.contains("site.toml:2:8: redundancy.secret_env: $HAZARD_PAIR_SECRET is not set"),
            "{e}"
        );
        let e = check(GOOD, Some("short")).unwrap_err();
        assert!(e.contains("has 5 bytes; use at least 16"), "{e}");
        let text = GOOD.replace("node = \"a\"", "node = \"c\"").replace("7002", "7001");
        let e = check(&text, Some("0123456789abcdef")).unwrap_err();
        assert!(
            e.contains("site.toml:2:8: redundancy.node: `c`: a pair's nodes are \"a\" and \"b\""),
            "{e}"
        );
        assert!(
            e.contains("site.toml:3:8: redundancy.peer: is this node's own `listen` address"),
            "{e}"
        );
        let text = GOOD
            .replace("hazard/pair/gw", "hazard/#")
            .replace("127.0.0.1:1883", "broker");
        let e = check(&text, Some("0123456789abcdef")).unwrap_err();
        assert!(
            e.contains("redundancy.witness.mqtt: `broker` is not a broker's host and port"),
            "{e}"
        );
        assert!(
            e.contains("redundancy.witness.topic: `hazard/#`: a plain topic name"),
            "{e}"
        );
    }

    #[test]
    fn tls_files_that_are_missing_or_not_pem_are_named_with_their_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("site.toml");
        let text =
            format!("{GOOD}tls = {{ ca_file = \"site-ca.pem\", cert = \"node-a.pem\", key = \"node-a.key\" }}\n");
        let e = check_at(&file, &text, Some("0123456789abcdef")).unwrap_err();
        let cert = dir.path().join("node-a.pem");
        assert!(
            e.contains(&format!(
                "site.toml:6:41: redundancy.tls.cert: cannot read certificate file {}",
                cert.display()
            )),
            "{e}"
        );
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = check_at(&file, &text, Some("0123456789abcdef")).unwrap_err();
        assert!(
            e.contains(&format!(
                "redundancy.tls.cert: certificate file {} holds no PEM certificate",
                cert.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn a_missing_ca_file_is_named_once_the_certificate_and_key_are_readable() {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .args([
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "node.key",
                "-out",
                "node.pem",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(ok.success());
        let file = dir.path().join("site.toml");
        let text = format!("{GOOD}tls = {{ ca_file = \"site-ca.pem\", cert = \"node.pem\", key = \"node.key\" }}\n");
        let e = check_at(&file, &text, Some("0123456789abcdef")).unwrap_err();
        assert!(
            e.contains(&format!(
                "site.toml:6:19: redundancy.tls.ca_file: cannot read CA certificate file {}",
                dir.path().join("site-ca.pem").display()
            )),
            "{e}"
        );
        // With the CA there, the section loads and keeps the files.
        std::fs::copy(dir.path().join("node.pem"), dir.path().join("site-ca.pem")).unwrap();
        let spec = check_at(&file, &text, Some("0123456789abcdef")).unwrap().unwrap();
        assert_eq!(
            spec.tls.as_ref().map(|t| t.cert.clone()),
            Some(dir.path().join("node.pem"))
        );
        assert_eq!(spec.peer_host(), "127.0.0.1");
        let text = text.replace("127.0.0.1:7002", "gw a:7002");
        let e = check_at(&file, &text, Some("0123456789abcdef")).unwrap_err();
        assert!(
            e.contains("redundancy.peer: `gw a` is not an IP address or DNS name the peer's certificate can carry"),
            "{e}"
        );
    }
}
