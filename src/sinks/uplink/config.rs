//! `[[uplinks]]` entries as written, their validation, and the validated [`UplinkSpec`].
//!
//! Each stage is a serde-tagged enum (`encoder = { type = "json", … }`,
//! `transport = { type = "http", … }`, and the optional `cipher` and `envelope`). A new
//! format or transport is one more variant here, one arm in [`check_stage`]'s matches and one
//! arm in the matching `build_*` function of [`super::build`].
//!
//! Fields inside a stage table are reported at the line of the stage table (serde cannot keep
//! spans inside tagged enums) with the full key, e.g. `uplinks[0].transport.url`.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Codes;
use crate::model::{PointId, PointTable};
use crate::sinks::buffer::WhenFull;
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::relative_to;
use crate::spec::units::{DurationText, SizeText};

/// A `[[uplinks]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUplink {
    /// Name in logs and metrics; also names its directory in the data dir.
    pub name: Spanned<String>,
    /// IANA zone times are rendered in (default `Asia/Shanghai`).
    #[serde(default)]
    pub zone: Option<Spanned<String>>,
    /// How often current values are sent (*site*: no default).
    pub realtime_interval: Spanned<DurationText>,
    /// Which statistics to send: `minute`, `hour`, `day`.
    #[serde(default)]
    pub statistics: Vec<Spanned<StatsPeriod>>,
    /// Length of the `minute` statistics interval (default 1m; some platforms want 5m or 10m).
    #[serde(default)]
    pub minute_interval: Option<Spanned<DurationText>>,
    /// Payloads per second while replaying a backlog (default 10).
    #[serde(default)]
    pub replay_rate: Option<Spanned<f64>>,
    /// Longest wait between delivery attempts while the platform fails (default 1m).
    #[serde(default)]
    pub retry_max: Option<Spanned<DurationText>>,
    /// When basic data (metadata) is sent: `on_change` (default), `every_start`, `never`.
    #[serde(default)]
    pub basic: BasicPolicy,
    /// The durable outbox.
    #[serde(default)]
    pub outbox: Option<Spanned<RawOutbox>>,
    /// What is sent.
    #[serde(default)]
    pub select: Option<Spanned<RawSelect>>,
    /// The regulator's codes.
    pub codes: Spanned<RawCodes>,
    /// The payload format.
    pub encoder: Spanned<EncoderConfig>,
    /// Optional encryption of each payload.
    #[serde(default)]
    pub cipher: Option<Spanned<CipherConfig>>,
    /// Optional envelope around each (encrypted) payload.
    #[serde(default)]
    pub envelope: Option<Spanned<EnvelopeConfig>>,
    /// How payloads reach the platform.
    pub transport: Spanned<TransportConfig>,
}

/// A statistics period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsPeriod {
    /// The `minute_interval` (HJ 212 MinInterval).
    Minute,
    /// One hour.
    Hour,
    /// One local day in the uplink's zone.
    Day,
}

/// When basic data is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasicPolicy {
    /// On first start and whenever it differs from what was last queued (a hash of it is kept
    /// in the uplink's data directory, so a restart with the same config sends nothing).
    #[default]
    OnChange,
    /// On every start, and on change.
    EveryStart,
    /// Never (the platform takes metadata another way).
    Never,
}

/// `outbox = { … }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    /// Most bytes the outbox may hold on disk (default 64MiB, at least 1MiB).
    #[serde(default)]
    pub max_bytes: Option<SizeText>,
    /// Payloads older than this are dropped unsent (counted); default: kept until space runs out.
    #[serde(default)]
    pub max_age: Option<DurationText>,
    /// What is lost when full: `drop_oldest` (default) or `drop_newest`.
    #[serde(default)]
    pub when_full: WhenFull,
    /// How often queued payloads are forced to disk (default 1s; a process crash loses
    /// nothing either way, a power loss at most this).
    #[serde(default)]
    pub fsync_interval: Option<DurationText>,
}

/// `select = { … }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelect {
    /// Globs of the points sent (default `["*"]`).
    #[serde(default = "all_points")]
    pub points: Vec<String>,
    /// Send alarm transitions (default true).
    #[serde(default = "yes")]
    pub alarms: bool,
    /// Which alarm transitions (default `raised`, `cleared`).
    #[serde(default = "default_transitions")]
    pub transitions: Vec<crate::model::Transition>,
    /// Send real-time values (default true).
    #[serde(default = "yes")]
    pub realtime: bool,
}

fn all_points() -> Vec<String> {
    vec!["*".into()]
}

fn yes() -> bool {
    true
}

fn default_transitions() -> Vec<crate::model::Transition> {
    vec![crate::model::Transition::Raised, crate::model::Transition::Cleared]
}

impl Default for RawSelect {
    fn default() -> Self {
        Self {
            points: all_points(),
            alarms: true,
            transitions: default_transitions(),
            realtime: true,
        }
    }
}

/// `codes = { … }`: the regulator's code table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCodes {
    /// Enterprise code (企业编码).
    pub enterprise: Spanned<String>,
    /// Gateway hazard-source id -> regulator's hazard-source code.
    #[serde(default)]
    pub hazard_sources: BTreeMap<String, Spanned<String>>,
    /// Point id -> code, or `{ code, location, equipment }`.
    #[serde(default)]
    pub points: BTreeMap<String, Spanned<RawPointCode>>,
    /// A CSV file `point,code,location,equipment` (header line first) with more codes.
    #[serde(default)]
    pub file: Option<Spanned<PathBuf>>,
}

/// A point's code entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPointCode {
    /// Just the code.
    Code(String),
    /// Code with location and equipment.
    Full {
        /// Point code.
        code: String,
        /// Where it is.
        #[serde(default)]
        location: Option<String>,
        /// Equipment code.
        #[serde(default)]
        equipment: Option<String>,
    },
}

/// The regulator's code of one point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointCode {
    /// Point code (位号 / 测点编码).
    pub code: Arc<str>,
    /// Location text.
    pub location: Option<Arc<str>>,
    /// Equipment code.
    pub equipment: Option<Arc<str>>,
}

/// The validated code table of an uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTable {
    /// Enterprise code.
    pub enterprise: Arc<str>,
    /// Gateway hazard-source id -> regulator code.
    pub hazard_sources: BTreeMap<String, Arc<str>>,
    /// Point id -> code.
    pub points: BTreeMap<String, PointCode>,
}

impl CodeTable {
    /// The codes of `point` (a point id, or an alarm subject): its table entry, else the id
    /// itself; its hazard source's regulator code, else the gateway's hazard-source id.
    pub fn codes(&self, point: &str, hazard_source: Option<&str>) -> Codes {
        Codes {
            enterprise: self.enterprise.clone(),
            hazard_source: hazard_source.map(|h| self.hazard_sources.get(h).cloned().unwrap_or_else(|| Arc::from(h))),
            point: self
                .points
                .get(point)
                .map_or_else(|| Arc::from(point), |c| c.code.clone()),
        }
    }

    /// Location and equipment of `point`, if the table has them.
    pub fn place(&self, point: &str) -> (Option<Arc<str>>, Option<Arc<str>>) {
        self.points
            .get(point)
            .map_or((None, None), |c| (c.location.clone(), c.equipment.clone()))
    }
}

/// The validated outbox settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSpec {
    /// Byte bound.
    pub max_bytes: u64,
    /// Age bound.
    pub max_age: Option<Duration>,
    /// What to lose when full.
    pub when_full: WhenFull,
    /// Sync interval.
    pub fsync_interval: Duration,
}

/// The validated selection.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectSpec {
    /// Points sent, in point order.
    pub points: Vec<PointId>,
    /// Whether alarms are sent.
    pub alarms: bool,
    /// Which alarm transitions.
    pub transitions: Vec<crate::model::Transition>,
    /// Whether real-time values are sent.
    pub realtime: bool,
}

/// A validated uplink.
#[derive(Debug, Clone, PartialEq)]
pub struct UplinkSpec {
    /// Name.
    pub name: String,
    /// Zone name (validated).
    pub zone: String,
    /// Real-time interval at start (a platform may change it at run time).
    pub realtime_interval: Duration,
    /// Statistics sent.
    pub statistics: Vec<StatsPeriod>,
    /// Length of the `minute` statistics interval.
    pub minute_interval: Duration,
    /// Payloads per second while replaying.
    pub replay_rate: f64,
    /// Longest wait between delivery attempts.
    pub retry_max: Duration,
    /// Basic data policy.
    pub basic: BasicPolicy,
    /// Outbox.
    pub outbox: OutboxSpec,
    /// Selection.
    pub select: SelectSpec,
    /// Code table.
    pub codes: CodeTable,
    /// Encoder.
    pub encoder: EncoderConfig,
    /// Cipher.
    pub cipher: Option<CipherConfig>,
    /// Envelope.
    pub envelope: Option<EnvelopeConfig>,
    /// Transport.
    pub transport: TransportConfig,
    /// Directory of the config file (relative paths in stages are resolved against it).
    pub config_dir: PathBuf,
}

/// `encoder = { type = …, … }`: one variant per payload format.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EncoderConfig {
    /// Templated JSON ([`super::json`]).
    Json(super::json::JsonConfig),
    /// Coal-mine safety monitoring text files, CDDY/CDSS/YCBJ/TJSJ ([`super::coal`]); give it
    /// the `file` transport.
    Coal(super::coal::CoalSettings),
    /// HJ 212 data messages ([`super::hj212`]).
    Hj212(super::hj212::config::Hj212Config),
}

impl EncoderConfig {
    /// The `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            EncoderConfig::Json(_) => "json",
            EncoderConfig::Coal(_) => "coal",
            EncoderConfig::Hj212(_) => "hj212",
        }
    }
}

/// `cipher = { type = …, key = …, output = … }`: one variant per cipher ([`super::seal`]).
/// Padding is PKCS#7 (Java's `PKCS5Padding`) for all.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum CipherConfig {
    /// SM4 (GB/T 32907) in CBC mode: a 16-byte key and a 16-byte `iv` (the MEM IoT platform).
    #[serde(rename = "sm4_cbc")]
    Sm4Cbc(super::seal::CipherSettings),
    /// SM4 in ECB mode: a 16-byte key, no IV; equal blocks give equal ciphertext.
    #[serde(rename = "sm4_ecb")]
    Sm4Ecb(super::seal::CipherSettings),
    /// AES in ECB mode with a 16-byte key (provincial chemical platforms, e.g. Jiangsu).
    #[serde(rename = "aes_128_ecb")]
    Aes128Ecb(super::seal::CipherSettings),
    /// AES in ECB mode with a 24-byte key.
    #[serde(rename = "aes_192_ecb")]
    Aes192Ecb(super::seal::CipherSettings),
    /// AES in ECB mode with a 32-byte key.
    #[serde(rename = "aes_256_ecb")]
    Aes256Ecb(super::seal::CipherSettings),
}

/// `envelope = { type = …, … }`: one variant per envelope shape ([`super::seal`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EnvelopeConfig {
    /// A JSON body template around the (encrypted) data, with per-payload header templates.
    Json(super::seal::EnvelopeSettings),
}

/// `transport = { type = …, … }`: one variant per transport.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransportConfig {
    /// TCP client ([`super::transport::tcp`]).
    Tcp(super::transport::tcp::TcpConfig),
    /// HTTP POST ([`super::transport::http`]).
    Http(super::transport::http::HttpConfig),
    /// MQTT publish, QoS 1 ([`super::transport::mqtt`]).
    Mqtt(super::transport::mqtt::MqttConfig),
    /// Files in a spool directory, optionally pushed by FTP ([`super::file_drop`]); the
    /// payload's `file_name` names each file (the `coal` encoder sets it).
    File(super::file_drop::FileDropSettings),
    /// HJ 212 field-unit link: 9014 acknowledgements, centre requests ([`super::hj212::link`]).
    Hj212(super::hj212::config::Hj212LinkConfig),
}

impl TransportConfig {
    /// The `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Tcp(_) => "tcp",
            TransportConfig::Http(_) => "http",
            TransportConfig::Mqtt(_) => "mqtt",
            TransportConfig::File(_) => "file",
            TransportConfig::Hj212(_) => "hj212",
        }
    }
}

/// Where a stage's fields are reported: the stage table's place and key.
#[derive(Debug)]
pub struct Place<'a> {
    /// The file.
    pub src: &'a SourceText<'a>,
    /// Span of the stage table.
    pub span: Range<usize>,
    /// Key of the stage table, e.g. `uplinks[0].transport`.
    pub key: String,
    /// The uplink's name.
    pub uplink: String,
}

impl Place<'_> {
    /// An error about `field` of the stage.
    pub fn error(&self, field: &str, message: impl std::fmt::Display) -> ConfigError {
        let key = if field.is_empty() {
            self.key.clone()
        } else {
            format!("{}.{field}", self.key)
        };
        self.src
            .error(self.span.clone(), key, format!("uplink `{}`: {message}", self.uplink))
    }

    /// `p` resolved against the config file's directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        relative_to(self.src.file, p)
    }
}

/// A secret from the environment or a file (`{ env = "VAR" }` or `{ file = "key.txt" }`);
/// the value itself is never in the config and never logged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Environment variable holding it.
    #[serde(default)]
    pub env: Option<String>,
    /// File holding it (trailing newline removed); relative to the config file.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// A resolved secret; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// The secret as text (lossy for non-UTF-8 bytes).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl SecretRef {
    /// Checks that exactly one source is named and resolves a relative file against the
    /// config; does not read it (an environment variable may be set only where it runs).
    pub fn check(&mut self, at: &Place<'_>, field: &str, errors: &mut Vec<ConfigError>) {
        match (&self.env, &self.file) {
            (Some(_), None) => {}
            (None, Some(f)) => self.file = Some(at.path(f)),
            _ => errors.push(at.error(field, "give exactly one of `env` or `file`")),
        }
    }

    /// Reads the secret; the error names the variable or file, never the value.
    pub fn resolve(&self) -> Result<Secret, String> {
        if let Some(var) = &self.env {
            return std::env::var_os(var)
                .map(|v| Secret(v.into_encoded_bytes()))
                .ok_or_else(|| format!("environment variable `{var}` is not set"));
        }
        if let Some(path) = &self.file {
            let mut bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            return Ok(Secret(bytes));
        }
        Err("no `env` or `file` given".into())
    }
}

/// Validates every `[[uplinks]]` entry against the point table.
pub fn validate(
    src: &SourceText<'_>,
    raw: &[Spanned<RawUplink>],
    points: &PointTable,
    errors: &mut Vec<ConfigError>,
) -> Vec<UplinkSpec> {
    let mut names = HashSet::new();
    let mut spools: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let before = errors.len();
        let u = entry.get_ref();
        let name = u.name.get_ref().clone();
        let key = |f: &str| format!("uplinks[{i}].{f}");
        let err = |span: Range<usize>, field: &str, msg: String| {
            src.error(span, key(field), format!("uplink `{name}`: {msg}"))
        };
        let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !safe || !names.insert(name.clone()) {
            errors.push(err(
                u.name.span(),
                "name",
                "uplink names must be unique and made of letters, digits, `-` and `_` (they name a directory)".into(),
            ));
        }
        let zone = u
            .zone
            .as_ref()
            .map_or(super::time::DEFAULT_ZONE.to_string(), |z| z.get_ref().clone());
        if let Err(e) = super::time::zone(&zone) {
            let span = u.zone.as_ref().map_or(u.name.span(), Spanned::span);
            errors.push(err(span, "zone", e.to_string()));
        }
        let realtime_interval = u.realtime_interval.get_ref().0;
        if realtime_interval < Duration::from_secs(1) {
            errors.push(err(
                u.realtime_interval.span(),
                "realtime_interval",
                format!("must be at least 1s, got {realtime_interval:?}"),
            ));
        }
        let minute_interval = u
            .minute_interval
            .as_ref()
            .map_or(Duration::from_secs(60), |m| m.get_ref().0);
        if minute_interval < Duration::from_secs(60)
            || minute_interval.as_secs() % 60 != 0
            || minute_interval.subsec_nanos() != 0
            || 3600 % minute_interval.as_secs() != 0
        {
            let span = u.minute_interval.as_ref().map_or(u.name.span(), Spanned::span);
            errors.push(err(
                span,
                "minute_interval",
                format!("must be whole minutes dividing an hour (1m, 5m, 10m, 15m, 30m…), got {minute_interval:?}"),
            ));
        }
        let mut statistics: Vec<StatsPeriod> = u.statistics.iter().map(|s| *s.get_ref()).collect();
        statistics.sort();
        statistics.dedup();
        let replay_rate = u.replay_rate.as_ref().map_or(10.0, |r| *r.get_ref());
        if !(replay_rate.is_finite() && replay_rate > 0.0) {
            let span = u.replay_rate.as_ref().map_or(u.name.span(), Spanned::span);
            errors.push(err(
                span,
                "replay_rate",
                format!("must be a positive number of payloads per second, got {replay_rate}"),
            ));
        }
        let retry_max = u.retry_max.as_ref().map_or(Duration::from_secs(60), |r| r.get_ref().0);
        if retry_max < Duration::from_secs(1) {
            let span = u.retry_max.as_ref().map_or(u.name.span(), Spanned::span);
            errors.push(err(
                span,
                "retry_max",
                format!("must be at least 1s, got {retry_max:?}"),
            ));
        }
        let outbox = check_outbox(u, entry.span(), &err, errors);
        let select = check_select(u, entry.span(), points, &err, errors);
        let codes = check_codes(src, i, &name, &u.codes, points, errors);

        let place = |field: &str, span: Range<usize>| Place {
            src,
            span,
            key: key(field),
            uplink: name.clone(),
        };
        let mut encoder = u.encoder.get_ref().clone();
        check_stage(
            Stage::Encoder(&mut encoder),
            &place("encoder", u.encoder.span()),
            errors,
        );
        let mut cipher = u.cipher.as_ref().map(|c| c.get_ref().clone());
        if let (Some(c), Some(s)) = (cipher.as_mut(), u.cipher.as_ref()) {
            check_stage(Stage::Cipher(c), &place("cipher", s.span()), errors);
        }
        let mut envelope = u.envelope.as_ref().map(|c| c.get_ref().clone());
        if let (Some(c), Some(s)) = (envelope.as_mut(), u.envelope.as_ref()) {
            check_stage(Stage::Envelope(c), &place("envelope", s.span()), errors);
            super::seal::check_pair(cipher.as_ref(), Some(c), &place("envelope", s.span()), errors);
        }
        let mut transport = u.transport.get_ref().clone();
        check_stage(
            Stage::Transport(&mut transport),
            &place("transport", u.transport.span()),
            errors,
        );
        // A spool directory belongs to one uplink: two would push each other's files.
        if let TransportConfig::File(f) = &transport
            && let Some(dir) = &f.spool_dir
            && let Some(other) = spools.insert(dir.clone(), name.clone())
        {
            errors.push(err(
                u.transport.span(),
                "transport.spool_dir",
                format!("spool directory {} is already uplink `{other}`'s", dir.display()),
            ));
        }
        super::hj212::config::pair(
            &encoder,
            &mut transport,
            select.alarms,
            u.basic,
            &place("encoder", u.encoder.span()),
            &place("transport", u.transport.span()),
            errors,
        );
        if errors.len() > before {
            continue;
        }
        out.push(UplinkSpec {
            name,
            zone,
            realtime_interval,
            statistics,
            minute_interval,
            replay_rate,
            retry_max,
            basic: u.basic,
            outbox,
            select,
            codes,
            encoder,
            cipher,
            envelope,
            transport,
            config_dir: src.file.parent().unwrap_or(Path::new(".")).to_path_buf(),
        });
    }
    out
}

/// A stage to check, by kind.
#[derive(Debug)]
pub enum Stage<'s> {
    /// The encoder.
    Encoder(&'s mut EncoderConfig),
    /// The cipher.
    Cipher(&'s mut CipherConfig),
    /// The envelope.
    Envelope(&'s mut EnvelopeConfig),
    /// The transport.
    Transport(&'s mut TransportConfig),
}

/// Checks one stage's settings (one arm per variant), resolving its relative paths.
pub fn check_stage(stage: Stage<'_>, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
    match stage {
        Stage::Encoder(e) => match e {
            EncoderConfig::Json(c) => c.check(at, errors),
            EncoderConfig::Coal(c) => c.check(at, errors),
            EncoderConfig::Hj212(c) => c.check(at, errors),
        },
        Stage::Cipher(c) => super::seal::check_cipher(c, at, errors),
        Stage::Envelope(e) => super::seal::check_envelope(e, at, errors),
        Stage::Transport(t) => match t {
            TransportConfig::Tcp(c) => c.check(at, errors),
            TransportConfig::Http(c) => c.check(at, errors),
            TransportConfig::Mqtt(c) => c.check(at, errors),
            TransportConfig::File(c) => c.check(at, errors),
            TransportConfig::Hj212(c) => c.check(at, errors),
        },
    }
}

fn check_outbox(
    u: &RawUplink,
    span: Range<usize>,
    err: &impl Fn(Range<usize>, &str, String) -> ConfigError,
    errors: &mut Vec<ConfigError>,
) -> OutboxSpec {
    let (raw, span) = match &u.outbox {
        Some(o) => (o.get_ref().clone(), o.span()),
        None => (RawOutbox::default(), span),
    };
    let max_bytes = raw.max_bytes.map_or(64 * 1024 * 1024, |s| s.0);
    if max_bytes < 1024 * 1024 {
        errors.push(err(
            span.clone(),
            "outbox.max_bytes",
            format!("must be at least 1MiB, got {max_bytes} bytes"),
        ));
    }
    let max_age = raw.max_age.map(|d| d.0);
    if max_age.is_some_and(|a| a < Duration::from_secs(60)) {
        errors.push(err(span.clone(), "outbox.max_age", "must be at least 1m".into()));
    }
    let fsync_interval = raw.fsync_interval.map_or(Duration::from_secs(1), |d| d.0);
    if fsync_interval.is_zero() {
        errors.push(err(span, "outbox.fsync_interval", "must be longer than zero".into()));
    }
    OutboxSpec {
        max_bytes,
        max_age,
        when_full: raw.when_full,
        fsync_interval,
    }
}

fn check_select(
    u: &RawUplink,
    span: Range<usize>,
    points: &PointTable,
    err: &impl Fn(Range<usize>, &str, String) -> ConfigError,
    errors: &mut Vec<ConfigError>,
) -> SelectSpec {
    let (raw, span) = match &u.select {
        Some(s) => (s.get_ref().clone(), s.span()),
        None => (RawSelect::default(), span),
    };
    let mut matchers = Vec::new();
    for (j, g) in raw.points.iter().enumerate() {
        match globset::Glob::new(g) {
            Ok(glob) => {
                let m = glob.compile_matcher();
                if !points.iter().any(|(_, meta)| m.is_match(&**meta.name())) {
                    errors.push(err(
                        span.clone(),
                        &format!("select.points[{j}]"),
                        format!("`{g}` matches no point"),
                    ));
                }
                matchers.push(m);
            }
            Err(e) => errors.push(err(
                span.clone(),
                &format!("select.points[{j}]"),
                format!("`{g}` is not a glob: {e}"),
            )),
        }
    }
    let selected = points
        .iter()
        .filter(|(_, meta)| matchers.iter().any(|m| m.is_match(&**meta.name())))
        .map(|(id, _)| id)
        .collect();
    SelectSpec {
        points: selected,
        alarms: raw.alarms,
        transitions: raw.transitions,
        realtime: raw.realtime,
    }
}

fn check_codes(
    src: &SourceText<'_>,
    i: usize,
    name: &str,
    raw: &Spanned<RawCodes>,
    points: &PointTable,
    errors: &mut Vec<ConfigError>,
) -> CodeTable {
    let c = raw.get_ref();
    let key = |f: &str| format!("uplinks[{i}].codes.{f}");
    if c.enterprise.get_ref().trim().is_empty() {
        errors.push(src.error(
            c.enterprise.span(),
            key("enterprise"),
            format!("uplink `{name}`: the enterprise code must not be empty"),
        ));
    }
    let mut table = CodeTable {
        enterprise: Arc::from(c.enterprise.get_ref().trim()),
        hazard_sources: c
            .hazard_sources
            .iter()
            .map(|(k, v)| (k.clone(), Arc::from(v.get_ref().as_str())))
            .collect(),
        points: BTreeMap::new(),
    };
    for (point, code) in &c.points {
        let entry = match code.get_ref() {
            RawPointCode::Code(code) => PointCode {
                code: Arc::from(code.as_str()),
                location: None,
                equipment: None,
            },
            RawPointCode::Full {
                code,
                location,
                equipment,
            } => PointCode {
                code: Arc::from(code.as_str()),
                location: location.as_deref().map(Arc::from),
                equipment: equipment.as_deref().map(Arc::from),
            },
        };
        let at = key(&format!("points.\"{point}\""));
        if points.id_of(point).is_none() {
            errors.push(src.error(
                code.span(),
                at,
                format!("uplink `{name}`: no point `{point}` is defined"),
            ));
        } else if entry.code.trim().is_empty() {
            errors.push(src.error(code.span(), at, format!("uplink `{name}`: empty point code")));
        } else {
            table.points.insert(point.clone(), entry);
        }
    }
    if let Some(file) = &c.file {
        let path = relative_to(src.file, file.get_ref());
        match std::fs::read_to_string(&path) {
            Ok(text) => read_code_csv(&path, &text, points, &mut table, errors),
            Err(e) => errors.push(src.error(
                file.span(),
                key("file"),
                format!("uplink `{name}`: cannot read {}: {e}", path.display()),
            )),
        }
    }
    table
}

/// Reads `point,code,location,equipment` lines (a header line first; `#` comments and blank
/// lines skipped; fields may not contain commas). Entries in the config win over the file.
fn read_code_csv(path: &Path, text: &str, points: &PointTable, table: &mut CodeTable, errors: &mut Vec<ConfigError>) {
    let src = SourceText::new(path, text);
    let mut offset = 0;
    let mut header = true;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if header {
            header = false;
            if !l.to_ascii_lowercase().starts_with("point") {
                errors.push(src.error(
                    at..at,
                    "",
                    "the first line must be the header `point,code,location,equipment`",
                ));
                return;
            }
            continue;
        }
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        if fields.len() < 2 || fields.len() > 4 {
            errors.push(src.error(
                at..at,
                "",
                format!(
                    "expected `point,code[,location[,equipment]]`, got {} field(s)",
                    fields.len()
                ),
            ));
            continue;
        }
        let (point, code) = (fields[0], fields[1]);
        if points.id_of(point).is_none() {
            errors.push(src.error(at..at, "point", format!("no point `{point}` is defined")));
            continue;
        }
        if code.is_empty() {
            errors.push(src.error(at..at, "code", format!("empty code for point `{point}`")));
            continue;
        }
        let opt = |k: usize| fields.get(k).filter(|s| !s.is_empty()).map(|s| Arc::from(*s));
        table.points.entry(point.to_string()).or_insert(PointCode {
            code: Arc::from(code),
            location: opt(2),
            equipment: opt(3),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PointKind, PointMeta};

    fn table() -> PointTable {
        let mut t = PointTable::default();
        for name in ["T1/gas", "T1/temp"] {
            t.insert(PointMeta {
                name: Arc::from(name),
                unit: Arc::from("%LEL"),
                kind: PointKind::Gas,
                device: Arc::from("T1"),
                hazard_source: None,
                range: Some((0.0, 100.0)),
                description: None,
            });
        }
        t
    }

    #[test]
    fn csv_codes_are_read_and_bad_lines_located() {
        let text = "point,code,location,equipment\nT1/gas,G-1,Tank farm,EQ-9\n\nT9/x,X\nT1/temp\n";
        let mut codes = CodeTable {
            enterprise: Arc::from("E1"),
            hazard_sources: BTreeMap::new(),
            points: BTreeMap::new(),
        };
        let mut errors = Vec::new();
        read_code_csv(Path::new("codes.csv"), text, &table(), &mut codes, &mut errors);
        assert_eq!(&*codes.points["T1/gas"].code, "G-1");
        assert_eq!(codes.points["T1/gas"].location.as_deref(), Some("Tank farm"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].position, Some((4, 1)));
        assert!(errors[0].message.contains("T9/x"));
        assert_eq!(errors[1].position, Some((5, 1)));
    }

    #[test]
    fn codes_fall_back_to_the_point_id() {
        let mut codes = CodeTable {
            enterprise: Arc::from("E1"),
            hazard_sources: BTreeMap::from([("MHS-1".to_string(), Arc::from("HS01"))]),
            points: BTreeMap::new(),
        };
        codes.points.insert(
            "T1/gas".into(),
            PointCode {
                code: Arc::from("G-1"),
                location: None,
                equipment: None,
            },
        );
        let c = codes.codes("T1/gas", Some("MHS-1"));
        assert_eq!((&*c.point, c.hazard_source.as_deref()), ("G-1", Some("HS01")));
        let c = codes.codes("T1/temp", Some("MHS-2"));
        assert_eq!((&*c.point, c.hazard_source.as_deref()), ("T1/temp", Some("MHS-2")));
    }

    #[test]
    fn check_config_names_file_line_uplink_and_field() {
        let text = r#"[gateway]
id = "gw"
[[devices]]
name = "T1"
profile = "ai4-gas-lel"
transport = { tcp = "127.0.0.1:502" }
points = { ch1 = "T1/gas" }

[[uplinks]]
name = "mem"
realtime_interval = "30s"
select = { points = ["T9/*"] }
codes = { enterprise = "E1" }
encoder = { type = "json" }
transport = { type = "http", url = "ftp://platform" }
"#;
        let errors = crate::config::GatewayConfig::parse(Path::new("site.toml"), text)
            .unwrap_err()
            .0;
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{shown:?}");
        assert_eq!(errors[0].key, "uplinks[0].select.points[0]");
        assert_eq!(errors[0].position, Some((12, 10)));
        assert!(
            shown[0].contains("uplink `mem`") && shown[0].contains("T9/*"),
            "{}",
            shown[0]
        );
        assert_eq!(errors[1].key, "uplinks[0].transport.url");
        assert_eq!(errors[1].position.map(|p| p.0), Some(15));
        assert!(shown[1].starts_with("site.toml:15:"), "{}", shown[1]);
    }

    #[test]
    fn secrets_need_exactly_one_source_and_never_show() {
        let s = Secret(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
        let r = SecretRef {
            env: Some("HAZARD_TEST_SURELY_UNSET_VAR".into()),
            file: None,
        };
        let e = r.resolve().unwrap_err();
        assert!(e.contains("HAZARD_TEST_SURELY_UNSET_VAR"));
    }
}
