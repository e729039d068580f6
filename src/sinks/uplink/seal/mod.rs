//! The cipher-and-envelope stage of an uplink: encrypts an encoded payload with the cipher the
//! platform prescribes, writes the ciphertext as hex or Base64 and wraps it in the platform's
//! envelope, with per-payload header values for the HTTP transport.
//!
//! ```toml
//! [[uplinks]]
//! # …
//! cipher = { type = "sm4_cbc", key = { file = "mem.key", encoding = "hex" }, iv = { env = "MEM_SM4_IV", encoding = "hex" }, output = "hex_upper" }
//! envelope = { type = "json", body = '{"appid":"{{appid}}","data":"{{data}}"}', constants = { appid = "HG3201000001" } }
//! ```
//!
//! Life cycle as for every stage: [`check_cipher`], [`check_envelope`] and [`check_pair`] are
//! pure and report every mistake with its place; [`build_with_env`] reads keys and secrets
//! (files, environment), checks their lengths and returns a [`Sealer`]; [`Sealer::open`]
//! undoes a seal, for `uplink preview` and for tests. Keys, IVs and secrets never reach a log:
//! every type holding them redacts its `Debug`, and no error message quotes them.

pub mod cipher;
pub mod envelope;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use self::cipher::{Cipher, CipherKind, Output, SecretBytes};
use self::envelope::{Fill, Part, Slot, Step};
use super::config::{CipherConfig, EnvelopeConfig, Place, SecretRef};
use super::{Payload, Seal, SealError};
use crate::spec::error::ConfigError;

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

/// Where a key or IV is kept: `{ file = "mem.key", encoding = "hex" }` or
/// `{ env = "VAR", encoding = "raw" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    /// A file holding it (relative to the config file; readable by the gateway only).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// An environment variable holding it.
    #[serde(default)]
    pub env: Option<String>,
    /// How it is written: `hex`, `base64` or `raw`. Required: a 32-character text could be
    /// 16 bytes of hex or 32 raw bytes, and a wrong guess gives a platform that rejects all.
    #[serde(default)]
    pub encoding: Option<KeyEncoding>,
}

/// The settings of every cipher (`cipher = { type = "sm4_cbc", key = …, iv = …, output = … }`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CipherSettings {
    /// The key; its length must match the cipher (16, 24 or 32 bytes).
    pub key: KeyRef,
    /// The IV (16 bytes), for `sm4_cbc` only.
    #[serde(default)]
    pub iv: Option<KeyRef>,
    /// How the ciphertext is written: `hex_upper`, `hex_lower`, `base64`, or `raw` (the bytes;
    /// only without an envelope). Required: the platform's specification says which.
    pub output: Output,
}

/// `envelope = { type = "json", … }`: a JSON body template around the data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSettings {
    /// The JSON body template; holds `{{data}}` once, as a whole string value.
    pub body: String,
    /// Fixed values for `{{NAME}}` placeholders (app id, district code, service id…).
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    /// Secrets for `{{secret.NAME}}` placeholders in the body, each `{ env = … }` or
    /// `{ file = … }`. They are part of every queued payload: a secret that belongs in an
    /// HTTP header goes in the transport's `headers` instead, which is never queued.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    /// Per-payload HTTP header templates, header name to value (`{{uuid}}`, `{{items}}`,
    /// `{{attr.KEY}}`, constants). The HTTP transport sends them; others ignore them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The cipher kind and settings of a `cipher` table.
pub fn cipher_parts(c: &CipherConfig) -> (CipherKind, &CipherSettings) {
    match c {
        CipherConfig::Sm4Cbc(s) => (CipherKind::Sm4Cbc, s),
        CipherConfig::Sm4Ecb(s) => (CipherKind::Sm4Ecb, s),
        CipherConfig::Aes128Ecb(s) => (CipherKind::Aes128Ecb, s),
        CipherConfig::Aes192Ecb(s) => (CipherKind::Aes192Ecb, s),
        CipherConfig::Aes256Ecb(s) => (CipherKind::Aes256Ecb, s),
    }
}

fn cipher_parts_mut(c: &mut CipherConfig) -> (CipherKind, &mut CipherSettings) {
    match c {
        CipherConfig::Sm4Cbc(s) => (CipherKind::Sm4Cbc, s),
        CipherConfig::Sm4Ecb(s) => (CipherKind::Sm4Ecb, s),
        CipherConfig::Aes128Ecb(s) => (CipherKind::Aes128Ecb, s),
        CipherConfig::Aes192Ecb(s) => (CipherKind::Aes192Ecb, s),
        CipherConfig::Aes256Ecb(s) => (CipherKind::Aes256Ecb, s),
    }
}

/// The settings of an `envelope` table.
pub fn envelope_settings(e: &EnvelopeConfig) -> &EnvelopeSettings {
    match e {
        EnvelopeConfig::Json(s) => s,
    }
}

fn check_key_ref(r: &mut KeyRef, field: &str, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
    match (&r.file, &r.env) {
        (Some(f), None) if !f.as_os_str().is_empty() => r.file = Some(at.path(f)),
        (None, Some(v)) if !v.is_empty() && !v.contains(['=', '\0']) => {}
        (Some(_), Some(_)) => errors.push(at.error(field, "give either `file` or `env`, not both")),
        (None, None) => errors.push(at.error(field, "give `file` or `env`")),
        _ => errors.push(at.error(field, "the file or variable name is empty or not a valid name")),
    }
    if r.encoding.is_none() {
        errors.push(at.error(
            field,
            "say how it is written: `encoding = \"hex\"`, `\"base64\"` or `\"raw\"`",
        ));
    }
}

/// Checks a `cipher` table (pure), resolving key files against the config's directory.
pub fn check_cipher(c: &mut CipherConfig, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
    let (kind, s) = cipher_parts_mut(c);
    check_key_ref(&mut s.key, "key", at, errors);
    match (&mut s.iv, kind.needs_iv()) {
        (None, true) => errors.push(at.error("iv", format!("{kind} needs an `iv` (16 bytes)"))),
        (Some(_), false) => errors.push(at.error("iv", format!("{kind} takes no iv; remove `iv`"))),
        (Some(iv), true) => check_key_ref(iv, "iv", at, errors),
        (None, false) => {}
    }
}

/// Checks an `envelope` table (pure): the body template is JSON once filled and holds
/// `{{data}}` once; every placeholder names something defined; header names are valid.
pub fn check_envelope(e: &mut EnvelopeConfig, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
    let EnvelopeConfig::Json(s) = e;
    for (name, secret) in &mut s.secrets {
        secret.check(at, &format!("secrets.{name}"), errors);
    }
    for name in s.constants.keys() {
        if matches!(name.as_str(), "data" | "uuid" | "items") {
            errors.push(at.error(
                &format!("constants.{name}"),
                format!("`{name}` is a built-in placeholder; name the constant differently"),
            ));
        }
    }
    let secret_names: Vec<&str> = s.secrets.keys().map(String::as_str).collect();
    match envelope::parse(&s.body, true) {
        Err(m) => errors.push(at.error("body", m)),
        Ok(parts) => {
            let mut problems = Vec::new();
            envelope::check_names(&parts, &s.constants, &secret_names, &mut problems);
            if let Err(m) = envelope::check_body(&parts) {
                problems.push(m);
            }
            errors.extend(problems.into_iter().map(|m| at.error("body", m)));
        }
    }
    for (name, template) in &s.headers {
        let field = format!("headers.{name}");
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            errors.push(at.error(&field, format!("`{name}` is not a valid HTTP header name")));
        }
        match envelope::parse(template, false) {
            Err(m) => errors.push(at.error(&field, m)),
            Ok(parts) => {
                let mut problems = Vec::new();
                envelope::check_names(&parts, &s.constants, &secret_names, &mut problems);
                for part in &parts {
                    match part {
                        Part::Slot(Slot::Secret(n), _) => problems.push(format!(
                            "`{{{{secret.{n}}}}}` in an envelope header would be stored with every queued payload; \
                             give the header to the transport instead: `headers = {{ {name} = {{ file = … }} }}`"
                        )),
                        Part::Slot(Slot::Data, _) => problems.push("`{{data}}` belongs in the body".to_string()),
                        Part::Slot(Slot::Const(c), _)
                            if s.constants.get(c).is_some_and(|v| v.contains(['\r', '\n'])) =>
                        {
                            problems.push(format!("constant `{c}` holds a line break and cannot go into a header"));
                        }
                        Part::Lit(l) if l.contains(['\r', '\n']) => {
                            problems.push("a header value must not contain a line break".to_string());
                        }
                        _ => {}
                    }
                }
                errors.extend(problems.into_iter().map(|m| at.error(&field, m)));
            }
        }
    }
}

/// Checks what depends on both tables: a JSON envelope carries text, so a ciphertext needs
/// `hex_*` or `base64` output. `at` is the envelope's place.
pub fn check_pair(
    cipher: Option<&CipherConfig>,
    envelope: Option<&EnvelopeConfig>,
    at: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) {
    if let (Some(c), Some(_)) = (cipher, envelope) {
        let (kind, s) = cipher_parts(c);
        if s.output == Output::Raw {
            errors.push(at.error(
                "",
                format!(
                    "a {kind} ciphertext cannot go into a JSON envelope as raw bytes: set the cipher's `output` \
                     to `hex_upper`, `hex_lower` or `base64`, as the platform's specification says"
                ),
            ));
        }
    }
}

/// Why an uplink's seal could not be set up: a key, IV or secret missing, unreadable or of the
/// wrong length. Never quotes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("uplink `{uplink}`: {field}: {reason}")]
pub struct SealBuildError {
    /// The uplink.
    pub uplink: String,
    /// The field at fault (`cipher.key`, `cipher.iv`, `envelope.secrets.token`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl SealBuildError {
    /// `cipher` or `envelope`.
    pub fn stage(&self) -> &'static str {
        if self.field.starts_with("envelope") {
            "envelope"
        } else {
            "cipher"
        }
    }
}

/// Reads environment variables; the real environment in the service, a map in tests.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn describe(r: &KeyRef) -> String {
    match (&r.file, &r.env) {
        (Some(f), _) => format!("file `{}`", f.display()),
        (_, Some(v)) => format!("environment variable `{v}`"),
        _ => "nothing".to_string(),
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

fn load_key(r: &KeyRef, env: EnvLookup<'_>) -> Result<SecretBytes, String> {
    let origin = describe(r);
    let (bytes, from_file) = match (&r.file, &r.env) {
        (Some(path), _) => (
            std::fs::read(path).map_err(|e| format!("cannot read {origin}: {e}"))?,
            true,
        ),
        (None, Some(var)) => (
            env(var)
                .map(OsString::into_encoded_bytes)
                .ok_or_else(|| format!("{origin} is not set"))?,
            false,
        ),
        (None, None) => return Err("no `file` or `env` given".to_string()),
    };
    let bytes = SecretBytes::new(bytes);
    let text = || {
        zeroize::Zeroizing::new(
            bytes
                .expose()
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect::<Vec<u8>>(),
        )
    };
    let decoded = match r.encoding.unwrap_or(KeyEncoding::Raw) {
        KeyEncoding::Hex => cipher::decode_hex(&text()),
        KeyEncoding::Base64 => Output::Base64.decode(&text()),
        KeyEncoding::Raw if from_file => Ok(strip_line_break(bytes.expose().to_vec())),
        KeyEncoding::Raw => Ok(bytes.expose().to_vec()),
    };
    decoded.map(SecretBytes::new).map_err(|e| format!("{origin} is {e}"))
}

/// A built envelope: constants and secrets in place.
#[derive(Clone)]
struct Envelope {
    body: Vec<Part>,
    body_len_hint: usize,
    data_path: Vec<Step>,
    headers: Vec<(String, Vec<Part>)>,
    /// Secret values, masked in previews.
    secrets: Vec<String>,
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
            .finish()
    }
}

/// Builds the seal stage of uplink `uplink`: reads keys, IVs and secrets from the files and
/// the process environment and checks their lengths. `None` when there is neither table.
pub fn build(
    cipher: Option<&CipherConfig>,
    envelope: Option<&EnvelopeConfig>,
    uplink: &str,
) -> Result<Option<Sealer>, SealBuildError> {
    if cipher.is_none() && envelope.is_none() {
        return Ok(None);
    }
    build_with_env(cipher, envelope, uplink, &|var| std::env::var_os(var)).map(Some)
}

/// [`build`] with key and IV variables looked up by `env` (envelope secrets are read by
/// [`SecretRef::resolve`]).
pub fn build_with_env(
    cipher: Option<&CipherConfig>,
    envelope: Option<&EnvelopeConfig>,
    uplink: &str,
    env: EnvLookup<'_>,
) -> Result<Sealer, SealBuildError> {
    let fail = |field: &str, reason: String| SealBuildError {
        uplink: uplink.to_string(),
        field: field.to_string(),
        reason,
    };
    let (cipher, output) = match cipher.map(cipher_parts) {
        None => (None, Output::Raw),
        Some((kind, s)) => {
            let key = load_key(&s.key, env).map_err(|r| fail("cipher.key", r))?;
            let iv =
                s.iv.as_ref()
                    .map(|iv| load_key(iv, env).map_err(|r| fail("cipher.iv", r)))
                    .transpose()?;
            let cipher = Cipher::new(kind, key.expose(), iv.as_ref().map(SecretBytes::expose)).map_err(|e| {
                let (field, origin) = match e {
                    cipher::CipherError::IvLength { .. } | cipher::CipherError::IvMissing { .. } => {
                        ("cipher.iv", s.iv.as_ref().map(describe).unwrap_or_default())
                    }
                    _ => ("cipher.key", describe(&s.key)),
                };
                fail(field, format!("{origin}: {e}"))
            })?;
            (Some(cipher), s.output)
        }
    };
    let envelope = match envelope.map(envelope_settings) {
        None => None,
        Some(e) => Some(build_envelope(e, &fail)?),
    };
    Ok(Sealer {
        uplink: uplink.to_string(),
        cipher,
        output,
        envelope,
    })
}

fn build_envelope(
    e: &EnvelopeSettings,
    fail: &impl Fn(&str, String) -> SealBuildError,
) -> Result<Envelope, SealBuildError> {
    let mut secrets = BTreeMap::new();
    for (name, r) in &e.secrets {
        let field = format!("envelope.secrets.{name}");
        let secret = r.resolve().map_err(|m| fail(&field, m))?;
        let text = String::from_utf8(secret.0).map_err(|_| fail(&field, "is not UTF-8 text".to_string()))?;
        secrets.insert(name.clone(), text);
    }
    let body = envelope::parse(&e.body, true).map_err(|m| fail("envelope.body", m))?;
    let data_path = envelope::check_body(&body).map_err(|m| fail("envelope.body", m))?;
    let body = envelope::resolve(&body, &e.constants, &secrets);
    let body_len_hint = body
        .iter()
        .map(|p| match p {
            Part::Lit(s) => s.len(),
            Part::Slot(..) => 40,
        })
        .sum();
    let mut headers = Vec::new();
    for (name, template) in &e.headers {
        let parts = envelope::parse(template, false).map_err(|m| fail(&format!("envelope.headers.{name}"), m))?;
        headers.push((name.clone(), envelope::resolve(&parts, &e.constants, &secrets)));
    }
    let uses_uuid = body
        .iter()
        .chain(headers.iter().flat_map(|h| h.1.iter()))
        .any(|p| matches!(p, Part::Slot(Slot::Uuid, _)));
    Ok(Envelope {
        body,
        body_len_hint,
        data_path,
        headers,
        secrets: secrets.into_values().collect(),
        uses_uuid,
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
        let plain = match &self.cipher {
            // Without a cipher the data is the payload's text itself.
            None => text,
            Some(c) => {
                let sealed = self
                    .output
                    .decode(&text)
                    .map_err(|e| self.error(format!("sealed data is {e}")))?;
                c.decrypt(&sealed)
                    .map_err(|e| self.error(format!("cannot decrypt: {e}")))?
            }
        };
        Ok(Opened { plain, data })
    }

    /// Seals a copy of `payload` and shows both forms with secrets masked; the sealed body is
    /// opened again to prove the round trip.
    pub fn preview(&self, payload: &Payload) -> Result<Preview, SealError> {
        let mut sealed = payload.clone();
        self.seal(&mut sealed)?;
        let opens = self.open(&sealed.body).is_ok_and(|o| o.plain == payload.body);
        let mut shown = printable(&sealed.body);
        for secret in self.envelope.iter().flat_map(|e| e.secrets.iter()) {
            shown = shown.replace(secret.as_str(), "<secret>");
        }
        let headers = sealed
            .attrs
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(HEADER_PREFIX).map(|name| (name.to_string(), v.clone())))
            .collect();
        Ok(Preview {
            plain: printable(&payload.body),
            plain_len: payload.body.len(),
            sealed: shown,
            sealed_len: sealed.body.len(),
            headers,
            opens,
        })
    }
}

/// One payload as `uplink preview` shows it: what the encoder made and what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The encoder's payload as text (binary shown as hex).
    pub plain: String,
    /// Its length in bytes.
    pub plain_len: usize,
    /// The body on the wire as text (binary shown as hex), secrets masked.
    pub sealed: String,
    /// Its length in bytes.
    pub sealed_len: usize,
    /// Header attributes the envelope set (name without the `header:` prefix).
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
        writeln!(f, "decrypted ({} bytes): {}", self.plain_len, self.plain)?;
        writeln!(f, "sealed ({} bytes): {}", self.sealed_len, self.sealed)?;
        for (name, value) in &self.headers {
            writeln!(f, "header {name}: {value}")?;
        }
        if !self.opens {
            writeln!(f, "warning: the sealed body does not open to the payload again")?;
        }
        Ok(())
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
        let data = match &self.cipher {
            None => String::from_utf8(bytes.to_vec())
                .map_err(|_| self.error("the payload is not UTF-8 text, so it cannot stand in the envelope as is"))?,
            // Hex and Base64 are ASCII; raw output with an envelope is refused by the check.
            Some(_) => String::from_utf8(self.output.encode(bytes))
                .map_err(|_| self.error("the cipher's output is not text; set `output` to hex or base64"))?,
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

/// Payload attributes whose key starts with this are HTTP headers (`header:X-Data-Id`).
pub const HEADER_PREFIX: &str = "header:";

#[cfg(test)]
mod tests;
