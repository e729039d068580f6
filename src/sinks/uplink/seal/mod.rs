//! The cipher-and-envelope stage of an uplink: encrypts an encoded payload with the cipher the
//! platform prescribes, writes the ciphertext as hex or Base64 and wraps it in the platform's
//! envelope, with header values for the HTTP transport.
//!
//! ```toml
//! [uplinks.seal]
//! cipher = "sm4-cbc"
//! key = { file = "/etc/hazard-gateway/mem.key", encoding = "hex" }
//! iv = { env = "MEM_SM4_IV", encoding = "hex" }
//! output = "hex-upper"
//!
//! [uplinks.seal.envelope]
//! body = '{"appid":"{{appid}}","data":"{{data}}"}'
//! constants = { appid = "HG3201000001" }
//! secrets = { appsecret = { file = "/etc/hazard-gateway/mem.appsecret" } }
//! headers = { appsecret = "{{secret.appsecret}}" }
//! ```
//!
//! Life cycle as for every component: [`validate`] is pure and reports every mistake with its
//! place; [`build`] reads keys and secrets (files, environment), checks their lengths and
//! returns a [`Sealer`]; [`Sealer::open`] undoes a seal, for `uplink preview` and for tests.
//! Keys, IVs and secrets never reach a log: every type holding them redacts its `Debug`, and
//! no error message quotes them.

pub mod cipher;
pub mod envelope;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use self::cipher::{Cipher, CipherKind, Output, SecretBytes};
use self::envelope::{Fill, Part, Step};
use super::{Payload, Seal, SealError};
use crate::config::error::{ConfigError, SourceText};

/// How key or IV bytes are written where they are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEncoding {
    /// Hex digits, either case; whitespace is ignored (`0123 4567 …` works).
    Hex,
    /// Base64 (standard alphabet); whitespace is ignored.
    Base64,
    /// The bytes themselves (a 16-character text key is 16 bytes). From a file, one final
    /// line break is dropped; a key whose last byte is a line break must be given as hex.
    Raw,
}

/// Where a key or IV is kept, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeySource {
    /// A file holding it (readable by the gateway only, e.g. mode 0400).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// An environment variable holding it.
    #[serde(default)]
    pub env: Option<String>,
    /// How it is written: `hex`, `base64` or `raw`. Required: a 32-character text could be
    /// 16 bytes of hex or 32 raw bytes, and guessing wrong gives a platform that rejects all.
    #[serde(default)]
    pub encoding: Option<KeyEncoding>,
}

/// Where a text secret (an app secret, a token) is kept, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTextSource {
    /// A file holding it; one final line break is dropped.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// An environment variable holding it.
    #[serde(default)]
    pub env: Option<String>,
}

/// `[uplinks.seal.envelope]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvelope {
    /// The JSON body template; must hold `{{data}}` once, as a whole string value.
    pub body: Spanned<String>,
    /// Fixed values for `{{NAME}}` placeholders (app id, district code, service id…).
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    /// Secrets for `{{secret.NAME}}` placeholders, each from a file or an environment variable.
    #[serde(default)]
    pub secrets: BTreeMap<String, Spanned<RawTextSource>>,
    /// HTTP header templates, header name to value (e.g. `appsecret = "{{secret.appsecret}}"`).
    /// The HTTP transport sends them; other transports ignore them.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
}

/// An uplink's `seal` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeal {
    /// The cipher: `sm4-cbc`, `sm4-ecb`, `aes-128-ecb`, `aes-192-ecb` or `aes-256-ecb`.
    /// Without one the payload travels unencrypted (in the envelope, if there is one).
    #[serde(default)]
    pub cipher: Option<Spanned<CipherKind>>,
    /// The cipher's key; its length must match the cipher (16, 24 or 32 bytes).
    #[serde(default)]
    pub key: Option<Spanned<RawKeySource>>,
    /// The IV (16 bytes), for `sm4-cbc` only.
    #[serde(default)]
    pub iv: Option<Spanned<RawKeySource>>,
    /// How the ciphertext is written: `hex-upper`, `hex-lower`, `base64` or `raw` (the bytes,
    /// only without an envelope). Default `raw`; with a cipher and an envelope it is required.
    #[serde(default)]
    pub output: Option<Spanned<Output>>,
    /// The envelope around the data, with header templates. Without one the body is the
    /// output itself.
    #[serde(default)]
    pub envelope: Option<Spanned<RawEnvelope>>,
}

/// Where a key or secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "file `{}`", p.display()),
            Self::Env(v) => write!(f, "environment variable `{v}`"),
        }
    }
}

/// A validated key or IV source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySource {
    /// Where.
    pub origin: Origin,
    /// How it is written.
    pub encoding: KeyEncoding,
}

/// A validated cipher choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherSpec {
    /// Which cipher.
    pub kind: CipherKind,
    /// Its key.
    pub key: KeySource,
    /// Its IV, for CBC.
    pub iv: Option<KeySource>,
}

/// A validated envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSpec {
    body: Vec<Part>,
    data_path: Vec<Step>,
    constants: BTreeMap<String, String>,
    secrets: Vec<(String, Origin)>,
    headers: Vec<(String, Vec<Part>)>,
}

/// A validated seal stage: nothing read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSpec {
    /// The cipher, if any.
    pub cipher: Option<CipherSpec>,
    /// How the ciphertext is written.
    pub output: Output,
    /// The envelope, if any.
    pub envelope: Option<EnvelopeSpec>,
}

/// Checks `raw` (at key path `at`, e.g. `uplinks[0].seal`), collecting every mistake into
/// `errors`. Pure: reads no file or variable.
pub fn validate(src: &SourceText<'_>, raw: &RawSeal, at: &str, errors: &mut Vec<ConfigError>) -> Option<SealSpec> {
    let before = errors.len();
    let mut err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        let key = if key.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{key}")
        };
        errors.push(src.error(span, key, msg));
    };

    let key = raw
        .key
        .as_ref()
        .and_then(|k| key_source(k.get_ref()).map_err(|m| err(k.span(), "key", m)).ok());
    let iv = raw
        .iv
        .as_ref()
        .and_then(|k| key_source(k.get_ref()).map_err(|m| err(k.span(), "iv", m)).ok());
    let cipher = match &raw.cipher {
        None => {
            if let Some(k) = &raw.key {
                err(k.span(), "key", "a key is given but no `cipher`".to_string());
            }
            if let Some(k) = &raw.iv {
                err(k.span(), "iv", "an iv is given but no `cipher`".to_string());
            }
            None
        }
        Some(c) => {
            let kind = *c.get_ref();
            if raw.key.is_none() {
                err(
                    c.span(),
                    "key",
                    format!("{kind} needs a `key` (a file or an environment variable)"),
                );
            }
            match (&raw.iv, kind.needs_iv()) {
                (None, true) => err(c.span(), "iv", format!("{kind} needs an `iv` (16 bytes)")),
                (Some(v), false) => err(v.span(), "iv", format!("{kind} takes no iv; remove `iv`")),
                _ => {}
            }
            key.map(|key| CipherSpec {
                kind,
                key,
                iv: iv.filter(|_| kind.needs_iv()),
            })
        }
    };

    let output = raw.output.as_ref().map_or(Output::Raw, |o| *o.get_ref());
    if let (Some(c), Some(env)) = (&raw.cipher, &raw.envelope)
        && output == Output::Raw
    {
        let span = raw.output.as_ref().map_or(env.span(), |o| o.span());
        err(
            span,
            "output",
            format!(
                "a {} ciphertext cannot go into a JSON envelope as raw bytes: set `output` to \
                 `hex-upper`, `hex-lower` or `base64`, as the platform's specification says",
                c.get_ref()
            ),
        );
    }

    let envelope = raw
        .envelope
        .as_ref()
        .and_then(|e| check_envelope(e.get_ref(), &mut err));

    let nothing = raw.cipher.is_none() && raw.envelope.is_none() && raw.output.is_none();
    if nothing && raw.key.is_none() && raw.iv.is_none() {
        // An empty table has no place of its own in the text: name the key.
        errors.push(ConfigError {
            file: src.file.to_path_buf(),
            position: None,
            key: at.to_string(),
            message: "nothing to do: give a `cipher`, an `envelope` or both".to_string(),
        });
    }

    (errors.len() == before).then_some(SealSpec {
        cipher,
        output,
        envelope,
    })
}

fn origin(file: &Option<PathBuf>, env: &Option<String>) -> Result<Origin, String> {
    match (file, env) {
        (Some(f), None) if !f.as_os_str().is_empty() => Ok(Origin::File(f.clone())),
        (None, Some(v)) if !v.is_empty() && !v.contains('=') && !v.contains('\0') => Ok(Origin::Env(v.clone())),
        (Some(_), Some(_)) => Err("give either `file` or `env`, not both".to_string()),
        (None, None) => Err("give `file` or `env`".to_string()),
        _ => Err("the file name or variable name is empty or not a valid name".to_string()),
    }
}

fn key_source(raw: &RawKeySource) -> Result<KeySource, String> {
    let origin = origin(&raw.file, &raw.env)?;
    let encoding = raw
        .encoding
        .ok_or("say how the key is written: `encoding = \"hex\"`, `\"base64\"` or `\"raw\"`")?;
    Ok(KeySource { origin, encoding })
}

fn check_envelope(
    raw: &RawEnvelope,
    err: &mut impl FnMut(std::ops::Range<usize>, &str, String),
) -> Option<EnvelopeSpec> {
    let mut ok = true;
    let mut secrets = Vec::new();
    for (name, source) in &raw.secrets {
        match origin(&source.get_ref().file, &source.get_ref().env) {
            Ok(o) => secrets.push((name.clone(), o)),
            Err(m) => {
                err(source.span(), &format!("envelope.secrets.{name}"), m);
                ok = false;
            }
        }
    }
    let secret_names: Vec<&str> = raw.secrets.keys().map(String::as_str).collect();
    for (name, value) in &raw.constants {
        if matches!(name.as_str(), "data" | "uuid" | "items") {
            err(
                raw.body.span(),
                &format!("envelope.constants.{name}"),
                format!("`{name}` is a built-in placeholder; name the constant differently"),
            );
            ok = false;
        }
        if value.contains(['\r', '\n'])
            && raw
                .headers
                .values()
                .any(|h| h.get_ref().contains(&format!("{{{{{name}}}}}")))
        {
            err(
                raw.body.span(),
                &format!("envelope.constants.{name}"),
                "a constant used in a header must not contain a line break".to_string(),
            );
            ok = false;
        }
    }

    let mut body_parts = None;
    let mut data_path = None;
    match envelope::parse(raw.body.get_ref(), true) {
        Err(m) => err(raw.body.span(), "envelope.body", m),
        Ok(parts) => {
            let mut problems = Vec::new();
            envelope::check_names(&parts, &raw.constants, &secret_names, &mut problems);
            match envelope::check_body(&parts) {
                Ok(path) => data_path = Some(path),
                Err(m) => problems.push(m),
            }
            for m in problems {
                err(raw.body.span(), "envelope.body", m);
            }
            body_parts = Some(parts);
        }
    }

    let mut headers = Vec::new();
    for (name, template) in &raw.headers {
        let at = format!("envelope.headers.{name}");
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            err(
                template.span(),
                &at,
                format!("`{name}` is not a valid HTTP header name"),
            );
            ok = false;
        }
        if template.get_ref().contains(['\r', '\n']) {
            err(
                template.span(),
                &at,
                "a header value must not contain a line break".to_string(),
            );
            ok = false;
            continue;
        }
        match envelope::parse(template.get_ref(), false) {
            Err(m) => {
                err(template.span(), &at, m);
                ok = false;
            }
            Ok(parts) => {
                let mut problems = Vec::new();
                envelope::check_names(&parts, &raw.constants, &secret_names, &mut problems);
                ok &= problems.is_empty();
                for m in problems {
                    err(template.span(), &at, m);
                }
                headers.push((name.clone(), parts));
            }
        }
    }

    match (ok, body_parts, data_path) {
        (true, Some(body), Some(data_path)) => Some(EnvelopeSpec {
            body,
            data_path,
            constants: raw.constants.clone(),
            secrets,
            headers,
        }),
        _ => None,
    }
}

/// Why an uplink's seal could not be set up: a key, IV or secret missing, unreadable or of the
/// wrong length. Never quotes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("uplink `{uplink}`: seal.{field}: {reason}")]
pub struct SealBuildError {
    /// The uplink.
    pub uplink: String,
    /// The field at fault (`key`, `iv`, `envelope.secrets.appsecret`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Reads environment variables; the real environment in the service, a map in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn read_origin(origin: &Origin, env: EnvLookup<'_>) -> Result<(Vec<u8>, bool), String> {
    match origin {
        Origin::File(path) => std::fs::read(path)
            .map(|b| (b, true))
            .map_err(|e| format!("cannot read {origin}: {e}")),
        Origin::Env(var) => env(var)
            .map(|v| (v.into_encoded_bytes(), false))
            .ok_or_else(|| format!("{origin} is not set")),
    }
}

fn strip_line_break(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    bytes
}

fn load_key(source: &KeySource, env: EnvLookup<'_>) -> Result<SecretBytes, String> {
    let (bytes, from_file) = read_origin(&source.origin, env)?;
    let bytes = SecretBytes::new(bytes);
    let text = || -> Vec<u8> {
        bytes
            .expose()
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect()
    };
    let decoded = match source.encoding {
        KeyEncoding::Hex => cipher::decode_hex(&zeroize::Zeroizing::new(text())),
        KeyEncoding::Base64 => Output::Base64.decode(&zeroize::Zeroizing::new(text())),
        KeyEncoding::Raw if from_file => Ok(strip_line_break(bytes.expose().to_vec())),
        KeyEncoding::Raw => Ok(bytes.expose().to_vec()),
    };
    decoded
        .map(SecretBytes::new)
        .map_err(|e| format!("{} is {e}", source.origin))
}

fn load_text(origin: &Origin, env: EnvLookup<'_>) -> Result<String, String> {
    let (bytes, from_file) = read_origin(origin, env)?;
    let bytes = if from_file { strip_line_break(bytes) } else { bytes };
    let text = String::from_utf8(bytes).map_err(|_| format!("{origin} is not UTF-8 text"))?;
    if text.is_empty() {
        return Err(format!("{origin} is empty"));
    }
    Ok(text)
}

/// A built envelope: constants and secrets in place.
#[derive(Clone)]
struct Envelope {
    body: Vec<Part>,
    body_len_hint: usize,
    data_path: Vec<Step>,
    headers: Vec<(String, Vec<Part>)>,
    /// Headers whose value holds a secret: `uplink preview` masks them.
    secret_headers: Vec<String>,
    uses_uuid: bool,
}

/// The seal stage of one uplink, ready to seal payloads and to open sealed ones.
#[derive(Clone)]
pub struct Sealer {
    uplink: String,
    cipher: Option<Cipher>,
    output: Output,
    envelope: Option<Envelope>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("uplink", &self.uplink)
            .field("cipher", &self.cipher.as_ref().map(Cipher::kind))
            .field("output", &self.output)
            .field("envelope", &self.envelope.is_some())
            .field(
                "headers",
                &self
                    .envelope
                    .as_ref()
                    .map(|e| e.headers.iter().map(|h| &h.0).collect::<Vec<_>>()),
            )
            .finish()
    }
}

/// Builds the seal stage of uplink `uplink` from `spec`: reads keys, IVs and secrets from the
/// files and the process environment, and checks their lengths.
pub fn build(spec: &SealSpec, uplink: &str) -> Result<Sealer, SealBuildError> {
    build_with_env(spec, uplink, &|var| std::env::var_os(var))
}

/// [`build`], boxed as the runner's stage.
pub fn build_seal(spec: &SealSpec, uplink: &str) -> Result<Box<dyn Seal>, SealBuildError> {
    Ok(Box::new(build(spec, uplink)?))
}

/// [`build`] with environment variables looked up by `env`.
pub fn build_with_env(spec: &SealSpec, uplink: &str, env: EnvLookup<'_>) -> Result<Sealer, SealBuildError> {
    let fail = |field: &str, reason: String| SealBuildError {
        uplink: uplink.to_string(),
        field: field.to_string(),
        reason,
    };
    let cipher = match &spec.cipher {
        None => None,
        Some(c) => {
            let key = load_key(&c.key, env).map_err(|r| fail("key", r))?;
            let iv =
                c.iv.as_ref()
                    .map(|iv| load_key(iv, env).map_err(|r| fail("iv", r)))
                    .transpose()?;
            let cipher = Cipher::new(c.kind, key.expose(), iv.as_ref().map(SecretBytes::expose)).map_err(|e| {
                let (field, origin) = match e {
                    cipher::CipherError::IvLength { .. } | cipher::CipherError::IvMissing { .. } => {
                        ("iv", c.iv.as_ref().map(|s| s.origin.to_string()).unwrap_or_default())
                    }
                    _ => ("key", c.key.origin.to_string()),
                };
                fail(field, format!("{origin}: {e}"))
            })?;
            Some(cipher)
        }
    };
    let envelope = match &spec.envelope {
        None => None,
        Some(e) => {
            let mut secrets = BTreeMap::new();
            for (name, origin) in &e.secrets {
                let text = load_text(origin, env).map_err(|r| fail(&format!("envelope.secrets.{name}"), r))?;
                let in_header = e.headers.iter().any(|(_, parts)| {
                    parts
                        .iter()
                        .any(|p| matches!(p, Part::Slot(envelope::Slot::Secret(n), _) if n == name))
                });
                if in_header && text.contains(['\r', '\n', '\0']) {
                    return Err(fail(
                        &format!("envelope.secrets.{name}"),
                        format!("{origin} holds a line break, which cannot go into a header"),
                    ));
                }
                secrets.insert(name.clone(), text);
            }
            let body = envelope::resolve(&e.body, &e.constants, &secrets);
            let body_len_hint = body
                .iter()
                .map(|p| match p {
                    Part::Lit(s) => s.len(),
                    Part::Slot(..) => 40,
                })
                .sum();
            let headers: Vec<(String, Vec<Part>)> = e
                .headers
                .iter()
                .map(|(name, parts)| (name.clone(), envelope::resolve(parts, &e.constants, &secrets)))
                .collect();
            let secret_headers = e
                .headers
                .iter()
                .filter(|(_, parts)| {
                    parts
                        .iter()
                        .any(|p| matches!(p, Part::Slot(envelope::Slot::Secret(_), _)))
                })
                .map(|(name, _)| name.clone())
                .collect();
            let uses_uuid = body
                .iter()
                .chain(headers.iter().flat_map(|h| h.1.iter()))
                .any(|p| matches!(p, Part::Slot(envelope::Slot::Uuid, _)));
            Some(Envelope {
                body,
                body_len_hint,
                data_path: e.data_path.clone(),
                headers,
                secret_headers,
                uses_uuid,
            })
        }
    };
    Ok(Sealer {
        uplink: uplink.to_string(),
        cipher,
        output: spec.output,
        envelope,
    })
}

/// A sealed payload taken apart again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The encoder's payload, decrypted.
    pub plain: Vec<u8>,
    /// The data as it stood in the envelope (hex or Base64 text), when there is an envelope.
    pub data: Option<String>,
}

impl Sealer {
    /// The uplink's name.
    pub fn uplink(&self) -> &str {
        &self.uplink
    }

    /// The cipher, if any.
    pub fn cipher_kind(&self) -> Option<CipherKind> {
        self.cipher.as_ref().map(Cipher::kind)
    }

    fn error(&self, reason: impl Into<String>) -> SealError {
        SealError {
            uplink: self.uplink.clone(),
            reason: reason.into(),
        }
    }

    /// Undoes [`Seal::seal`] on a body: finds the data in the envelope, decodes its text form
    /// and decrypts it.
    pub fn open(&self, body: &[u8]) -> Result<Opened, SealError> {
        let (text, data) = match &self.envelope {
            None => (body.to_vec(), None),
            Some(e) => {
                let value: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|err| self.error(format!("sealed body is not JSON: {err}")))?;
                let data = envelope::extract(&value, &e.data_path)
                    .ok_or_else(|| self.error("sealed body has no data string where the envelope puts it"))?;
                (data.as_bytes().to_vec(), Some(data.to_string()))
            }
        };
        let sealed = match (&self.cipher, self.output) {
            // Without a cipher and in raw form the data is the text itself.
            (None, Output::Raw) => text,
            _ => self
                .output
                .decode(&text)
                .map_err(|e| self.error(format!("sealed data is {e}")))?,
        };
        let plain = match &self.cipher {
            None => sealed,
            Some(c) => c
                .decrypt(&sealed)
                .map_err(|e| self.error(format!("cannot decrypt: {e}")))?,
        };
        Ok(Opened { plain, data })
    }
}

/// One payload as `uplink preview` shows it: what the encoder made and what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The encoder's payload, before the seal.
    pub plain: Vec<u8>,
    /// The body on the wire.
    pub sealed: Vec<u8>,
    /// Header attributes the seal set (name without the `header:` prefix); values holding a
    /// secret are replaced by `<secret>`.
    pub headers: Vec<(String, String)>,
    /// Whether opening the sealed body gave the plain payload back.
    pub opens: bool,
}

fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => format!(
            "(binary, as hex) {}",
            String::from_utf8_lossy(&Output::HexUpper.encode(bytes))
        ),
    }
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "decrypted ({} bytes): {}", self.plain.len(), printable(&self.plain))?;
        writeln!(f, "sealed ({} bytes): {}", self.sealed.len(), printable(&self.sealed))?;
        for (name, value) in &self.headers {
            writeln!(f, "header {name}: {value}")?;
        }
        if !self.opens {
            writeln!(f, "warning: the sealed body does not open to the payload again")?;
        }
        Ok(())
    }
}

impl Sealer {
    /// Seals a copy of `payload` and shows both forms, secrets masked; the sealed body is
    /// opened again to prove the round trip.
    pub fn preview(&self, payload: &Payload) -> Result<Preview, SealError> {
        let mut sealed = payload.clone();
        self.seal(&mut sealed)?;
        let secret = |name: &str| {
            self.envelope
                .as_ref()
                .is_some_and(|e| e.secret_headers.iter().any(|h| h == name))
        };
        let headers = sealed
            .attrs
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(HEADER_PREFIX).map(|name| (name, v)))
            .map(|(name, v)| {
                let shown = if secret(name) {
                    "<secret>".to_string()
                } else {
                    v.clone()
                };
                (name.to_string(), shown)
            })
            .collect();
        let opens = self.open(&sealed.body).is_ok_and(|o| o.plain == payload.body);
        Ok(Preview {
            plain: payload.body.clone(),
            sealed: sealed.body,
            headers,
            opens,
        })
    }
}

impl Seal for Sealer {
    fn seal(&self, payload: &mut Payload) -> Result<(), SealError> {
        let sealed;
        let bytes: &[u8] = match &self.cipher {
            Some(c) => {
                sealed = c.encrypt(&payload.body);
                &sealed
            }
            None => &payload.body,
        };
        let Some(env) = &self.envelope else {
            payload.body = self.output.encode(bytes);
            return Ok(());
        };
        let data = match (&self.cipher, self.output) {
            (None, Output::Raw) => String::from_utf8(bytes.to_vec()).map_err(|_| {
                self.error("the payload is not UTF-8 text, so it cannot stand in the envelope as is; set `output`")
            })?,
            // Hex and Base64 are ASCII.
            (_, out) => String::from_utf8(out.encode(bytes)).map_err(|_| self.error("output is not text"))?,
        };
        let uuid = if env.uses_uuid {
            envelope::uuid_v4()
        } else {
            String::new()
        };
        let fill = Fill {
            data: &data,
            uuid: &uuid,
            items: payload.items,
            attrs: &payload.attrs,
        };
        let mut body = Vec::with_capacity(env.body_len_hint + data.len());
        envelope::render(&env.body, &fill, &mut body).map_err(|m| self.error(m))?;
        let mut headers = Vec::with_capacity(env.headers.len());
        for (name, parts) in &env.headers {
            let mut value = Vec::new();
            envelope::render(parts, &fill, &mut value).map_err(|m| self.error(m))?;
            if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(self.error(format!("header `{name}` would hold a line break; not sent")));
            }
            let value = String::from_utf8(value).map_err(|_| self.error(format!("header `{name}` is not text")))?;
            headers.push((format!("{HEADER_PREFIX}{name}"), value));
        }
        payload.body = body;
        for (key, value) in headers {
            match payload.attrs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => payload.attrs.push((key, value)),
            }
        }
        Ok(())
    }
}

/// Payload attributes whose key starts with this are HTTP headers (`header:appsecret`).
pub const HEADER_PREFIX: &str = "header:";

#[cfg(test)]
mod tests;
