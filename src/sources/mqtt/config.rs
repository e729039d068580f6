//! `[[mqtt.brokers]]` and `[[mqtt.subscriptions]]` as written, and the validated specs the
//! broker tasks run. Validation lives in [`super::validate`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::decode::{Layout, Shape};
use super::template::{PointTemplate, TopicFilter};
use super::time::TimeUnit;
use crate::model::{PointId, PointKind, Quality};
use crate::spec::units::{DurationText, SizeText};

/// The `[mqtt]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// Brokers to subscribe at.
    #[serde(default)]
    pub brokers: Vec<Spanned<RawBroker>>,
    /// What to subscribe to and how messages become readings.
    #[serde(default)]
    pub subscriptions: Vec<Spanned<RawSubscription>>,
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Protocol {
    /// MQTT 3.1.1 (the persistent session is `clean_session = false`).
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5 (the persistent session is `clean_start = false` plus a session expiry).
    #[serde(rename = "5")]
    V5,
}

/// A password written in the config; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

// Defaults carry an empty span, so an error about them points at the broker's name.
fn default_keep_alive() -> Spanned<DurationText> {
    Spanned::new(0..0, DurationText(Duration::from_secs(30)))
}

fn default_session_expiry() -> Spanned<DurationText> {
    Spanned::new(0..0, DurationText(Duration::from_secs(7 * 24 * 3600)))
}

fn default_comm_grace() -> Spanned<DurationText> {
    Spanned::new(0..0, DurationText(Duration::from_secs(10)))
}

/// `max_payload` of a subscription that sets none (and whose broker has no `max_packet`).
pub const DEFAULT_MAX_PAYLOAD: u64 = 64 * 1024;

/// The largest `max_payload` allowed. It bounds what a broker task queues between reading the
/// socket and decoding: 256 messages of at most this size.
pub const MAX_PAYLOAD_LIMIT: u64 = 1024 * 1024;

fn default_qos() -> Spanned<u8> {
    Spanned::new(0..0, 1)
}

/// A `[[mqtt.brokers]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBroker {
    /// Name that subscriptions, logs and metrics use.
    pub name: Spanned<String>,
    /// `host:port`.
    pub address: Spanned<String>,
    /// `"3.1.1"` (default) or `"5"`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Fixed client id, which names the persistent session; default `<gateway id>-in-<name>`.
    #[serde(default)]
    pub client_id: Option<Spanned<String>>,
    /// Keep-alive interval (1 s to 18 h).
    #[serde(default = "default_keep_alive")]
    pub keep_alive: Spanned<DurationText>,
    /// User name, if the broker asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password written in the file (prefer `password_env`).
    #[serde(default)]
    pub password: Option<Spanned<Secret>>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// TLS; absent means plain TCP.
    #[serde(default)]
    pub tls: Option<Spanned<RawTls>>,
    /// MQTT 5: how long the broker keeps the session (and queues QoS 1 messages) while the
    /// gateway is away.
    #[serde(default = "default_session_expiry")]
    pub session_expiry: Spanned<DurationText>,
    /// How long the broker may be away before its points turn `comm_fault` and its
    /// communication alarm is raised (1 s to 10 min); rides out a broker restart.
    #[serde(default = "default_comm_grace")]
    pub comm_grace: Spanned<DurationText>,
    /// Deprecated: once a transport limit, which stalled MQTT 3.1.1 sessions (see
    /// [`super::client`]). Still read, so an older config starts, as the `max_payload` of
    /// each of this broker's subscriptions (at most [`MAX_PAYLOAD_LIMIT`]), with a warning;
    /// an error when one of them sets `max_payload` itself.
    #[serde(default)]
    pub max_packet: Option<Spanned<SizeText>>,
}

/// TLS settings of a broker connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM file of the certificate authorities trusted for the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate (chain), for brokers that require one.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// How payloads are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// JSON, read with `value`/`fields`, `array`, `timestamp`, `quality`.
    #[default]
    Json,
    /// Plain numeric text such as `12.5`; the reading is stamped with the arrival time.
    Text,
}

/// A `[[mqtt.subscriptions]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubscription {
    /// Name in metrics and logs; default: the topic.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// `name` of a `[[mqtt.brokers]]` entry.
    pub broker: Spanned<String>,
    /// Topic filter; `{name}` is a `+` level the point template can use.
    pub topic: Spanned<String>,
    /// 0 (at most once) or 1 (at least once, survives restarts).
    #[serde(default = "default_qos")]
    pub qos: Spanned<u8>,
    /// Point-id template: `{name}`, `{N}`, `{field}`, `{json:/pointer}`.
    pub point: Spanned<String>,
    /// `json` (default) or `text`.
    #[serde(default)]
    pub payload: PayloadKind,
    /// JSON pointer of the value in a reading; default `""`, the reading itself.
    #[serde(default)]
    pub value: Option<Spanned<String>>,
    /// Several values per reading: field name -> where it is and what it measures.
    #[serde(default)]
    pub fields: BTreeMap<String, Spanned<RawField>>,
    /// JSON pointer of an array of readings (`""`: the payload is the array).
    #[serde(default)]
    pub array: Option<Spanned<String>>,
    /// JSON pointer of the device timestamp in a reading; absent: arrival time.
    #[serde(default)]
    pub timestamp: Option<Spanned<String>>,
    /// Unit of a numeric timestamp: `s`, `ms`, `us`, `ns` (RFC 3339 text is always accepted).
    #[serde(default)]
    pub timestamp_unit: TimeUnit,
    /// Status field mapped to quality.
    #[serde(default)]
    pub quality: Option<Spanned<RawQuality>>,
    /// Which payload shapes are decoded: `"number"` (a bare number), `"string"` (numeric
    /// text), `"object"` (the object or array `value`, `fields`, `array` describe). Default:
    /// all three. A message of another shape is handled like any undecodable message
    /// (`refused_shape`).
    #[serde(default)]
    pub accept: Option<Spanned<Vec<Shape>>>,
    /// Engineering unit of the points.
    #[serde(default)]
    pub unit: String,
    /// What the points measure.
    #[serde(default = "default_kind")]
    pub kind: PointKind,
    /// Instrument range `[low, high]`; values outside are `out_of_range`.
    #[serde(default)]
    pub range: Option<Spanned<[f64; 2]>>,
    /// Hazard source the points belong to.
    #[serde(default)]
    pub hazard_source: Option<Spanned<String>>,
    /// The point ids this subscription feeds, with `{a,b}` and `{01..40}` expansion.
    #[serde(default)]
    pub points: Vec<Spanned<String>>,
    /// How often each point is expected to publish (default 60 s); the default stale limit is
    /// three times this.
    #[serde(default)]
    pub interval: Option<Spanned<DurationText>>,
    /// A point turns `stale` when nothing arrived for it within this time (default: three
    /// expected intervals, so one late or lost message is not reported).
    #[serde(default)]
    pub stale_after: Option<Spanned<DurationText>>,
    /// Stale limits of single points (ids with the `points` expansion) that publish at
    /// another pace than the rest.
    #[serde(default)]
    pub point_stale_after: BTreeMap<String, Spanned<DurationText>>,
    /// Larger payloads are dropped and counted (`oversize`); the message is still
    /// acknowledged. At most [`MAX_PAYLOAD_LIMIT`].
    /// Absent: the broker's deprecated `max_packet`, else 64 KiB.
    #[serde(default)]
    pub max_payload: Option<Spanned<SizeText>>,
}

fn default_kind() -> PointKind {
    PointKind::Other
}

/// One of several values in a reading.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    /// JSON pointer of the value within the reading.
    pub pointer: String,
    /// Unit, if not the subscription's.
    #[serde(default)]
    pub unit: Option<String>,
    /// Kind, if not the subscription's.
    #[serde(default)]
    pub kind: Option<PointKind>,
    /// Range, if not the subscription's.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// The point ids this field feeds (same expansion as the subscription's `points`).
    #[serde(default)]
    pub points: Vec<Spanned<String>>,
}

/// A status field and what its values mean.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuality {
    /// JSON pointer of the status field within the reading; absent field means `good`.
    pub pointer: String,
    /// Status value (as text) -> quality; unlisted values mean `decode_error`.
    pub map: BTreeMap<String, Quality>,
}

/// A validated broker.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerSpec {
    /// Name.
    pub name: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Protocol version.
    pub protocol: Protocol,
    /// Client id (names the persistent session).
    pub client_id: String,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// User name.
    pub username: Option<String>,
    /// Password from the file.
    pub password: Option<Secret>,
    /// Environment variable of the password, read at start.
    pub password_env: Option<String>,
    /// TLS files (resolved against the config file's folder).
    pub tls: Option<TlsSpec>,
    /// MQTT 5 session expiry.
    pub session_expiry: Duration,
    /// Absence before the broker counts as lost.
    pub comm_grace: Duration,
}

/// TLS files of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    /// Trusted CAs (PEM).
    pub ca_file: PathBuf,
    /// Client certificate and key (PEM).
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A validated subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionSpec {
    /// Name in metrics and logs.
    pub name: String,
    /// Index into [`MqttInSpec::brokers`].
    pub broker: usize,
    /// Topic filter.
    pub filter: TopicFilter,
    /// Requested QoS (0 or 1).
    pub qos: u8,
    /// Point-id template.
    pub template: PointTemplate,
    /// Payload decoder.
    pub layout: Layout,
    /// Largest payload decoded.
    pub max_payload: usize,
    /// How often each point is expected to publish (the completeness ledger's expected
    /// readings).
    pub interval: Duration,
    /// Silence after which its points turn stale.
    pub stale_after: Duration,
    /// Points with their own stale limit, by id.
    pub point_stale_after: Vec<(String, Duration)>,
    /// Every point it may feed, by id (declared in the config).
    pub points: Vec<(String, PointId)>,
}

/// Everything `[mqtt]` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MqttInSpec {
    /// Brokers.
    pub brokers: Vec<BrokerSpec>,
    /// Subscriptions, each naming its broker by index.
    pub subscriptions: Vec<SubscriptionSpec>,
}
