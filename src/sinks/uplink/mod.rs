//! Regulator uplinks (联网上报): each configured uplink selects points and alarms, encodes them
//! in the platform's format, optionally encrypts and wraps them, keeps them in its own durable
//! outbox and hands them to a transport that reports the platform's acknowledgement.
//!
//! The stages meet at the types of this module, so an encoder never knows the transport and a
//! transport never parses a payload:
//!
//! ```text
//! live state / alarm journal / history ──select──▶ [UplinkRecord] ──Encoder──▶ [Payload]
//!     ──Seal (cipher + envelope)──▶ outbox (durable, per uplink) ──Transport──▶ platform ack
//! ```
//!
//! At least once: a payload is in the outbox before it is sent and leaves it only when the
//! transport reported the peer's acknowledgement (HTTP 2xx and body check, MQTT PUBACK,
//! HJ 212 9014, file pushed). Alarms bypass batching and are sent ahead of queued data.
//! A failed sensor is never given a made-up value: its record carries `value: None` and the
//! fault in `quality`, and each encoder renders the platform's fault state.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub mod build;
pub mod coal;
pub mod config;
pub mod file_drop;
pub mod hj212;
pub mod json;
pub mod late;
pub mod outbox;
pub mod preview;
pub mod runner;
pub mod seal;
pub mod select;
mod sender;
pub mod template;
pub mod time;
pub mod tls;
pub mod transport;

pub use build::{BuildContext, BuildError, SharedInterval, build_encoder, build_seal, build_transport};
pub use config::{
    CipherConfig, CodeTable, EncoderConfig, EnvelopeConfig, SecretRef, StatsPeriod, TransportConfig, UplinkSpec,
};
pub use runner::{UplinkEnv, UplinkError, start};

use crate::model::{AlarmEvent, Quality, Timestamp};

/// What a record reports; platforms send each on its own schedule or channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Point metadata ("basic data"): range, thresholds, unit, codes, location. On start and
    /// whenever it changes.
    Basic,
    /// The current value of a point, on the uplink's real-time interval.
    Realtime,
    /// Statistics over one minute (or the uplink's statistics interval).
    Minute,
    /// Statistics over one hour.
    Hour,
    /// Statistics over one day.
    Day,
    /// An alarm or abnormal condition beginning, changing or ending.
    Alarm,
}

impl RecordKind {
    /// `basic`, `realtime`, `minute`, `hour`, `day` or `alarm`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Basic => "basic",
            RecordKind::Realtime => "realtime",
            RecordKind::Minute => "minute",
            RecordKind::Hour => "hour",
            RecordKind::Day => "day",
            RecordKind::Alarm => "alarm",
        }
    }
}

/// The regulator's codes for one point (from the uplink's code table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    /// Enterprise code (企业编码).
    pub enterprise: Arc<str>,
    /// Hazard-source code (重大危险源编码), where the programme has one.
    pub hazard_source: Option<Arc<str>>,
    /// Point code (位号 / 指标编码 / 测点编码).
    pub point: Arc<str>,
}

/// Min/avg/max/count over an interval, of good readings only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Smallest good value.
    pub min: f64,
    /// Mean of good values.
    pub avg: f64,
    /// Largest good value.
    pub max: f64,
    /// Number of good readings.
    pub count: u64,
}

/// Set-points and description of a point, sent as basic data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicMeta {
    /// Measuring range (low, high).
    pub range: Option<(f64, f64)>,
    /// Low-low, low, high, high-high alarm limits, where rules define them.
    pub low_low: Option<f64>,
    /// Low limit.
    pub low: Option<f64>,
    /// High limit.
    pub high: Option<f64>,
    /// High-high limit.
    pub high_high: Option<f64>,
    /// What the point measures (`gas`, `temperature`, …).
    pub kind: Arc<str>,
    /// Where it is (from the code table or the point's description).
    pub location: Option<Arc<str>>,
    /// Equipment or device code.
    pub equipment: Option<Arc<str>>,
}

/// One selected record in regulator terms: what every encoder consumes.
#[derive(Debug, Clone, PartialEq)]
pub struct UplinkRecord {
    /// What it reports.
    pub kind: RecordKind,
    /// The gateway's point id (or the alarm's subject).
    pub point: Arc<str>,
    /// The regulator's codes.
    pub codes: Codes,
    /// Engineering unit.
    pub unit: Arc<str>,
    /// Collection time (for statistics: the interval's start). Never the send time.
    pub time: Timestamp,
    /// The value; `None` when the sensor failed (then `quality` says how).
    pub value: Option<f64>,
    /// Quality of the value or of the interval's last reading.
    pub quality: Quality,
    /// Interval statistics, for `Minute`/`Hour`/`Day`.
    pub stats: Option<Stats>,
    /// The alarm transition, for `Alarm`.
    pub alarm: Option<Box<AlarmEvent>>,
    /// Metadata, for `Basic`.
    pub meta: Option<Box<BasicMeta>>,
}

/// One unit the transport sends and the peer acknowledges as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    /// The bytes on the wire (after cipher and envelope).
    pub body: Vec<u8>,
    /// Transport hints rendered by the encoder: an MQTT topic, a file name, an HJ 212 `QN`
    /// to match the acknowledgement, a JSON `serviceId`… Keys are per transport.
    pub attrs: Vec<(String, String)>,
    /// Records it carries (for counting what was delivered or lost).
    pub items: u32,
    /// Alarms go ahead of queued data.
    pub urgent: bool,
}

impl Payload {
    /// The value of transport hint `key`, if the encoder set it.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Why records could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("uplink `{uplink}`: cannot encode {what}: {reason}")]
pub struct EncodeError {
    /// Uplink name.
    pub uplink: String,
    /// Which record or template.
    pub what: String,
    /// Why.
    pub reason: String,
}

/// Turns selected records into payloads in one platform's format.
pub trait Encoder: Send {
    /// Encodes `records` (all of one [`RecordKind`], in time order) into payloads.
    fn encode(&mut self, records: &[UplinkRecord]) -> Result<Vec<Payload>, EncodeError>;
}

/// Why a payload could not be encrypted or wrapped.
#[derive(Debug, thiserror::Error)]
#[error("uplink `{uplink}`: {reason}")]
pub struct SealError {
    /// Uplink name.
    pub uplink: String,
    /// Why.
    pub reason: String,
}

/// The optional cipher-and-envelope stage between encoder and outbox.
pub trait Seal: Send + Sync {
    /// Encrypts and wraps `payload` in place (body and, for header templates, attrs).
    fn seal(&self, payload: &mut Payload) -> Result<(), SealError>;
}

/// How a delivery attempt ended, when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached or the connection broke: try again after a backoff.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The peer answered but did not acknowledge: try again after a backoff.
    #[error("not acknowledged: {0}")]
    NotAcknowledged(String),
    /// The peer refused the payload for good (it will never be accepted): the payload is
    /// dropped, counted and logged.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// A boxed future, so transports can live behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Delivers payloads and reports the peer's acknowledgement.
pub trait Transport: Send {
    /// Sends `payload`; `Ok` only once the peer acknowledged it.
    fn deliver<'a>(&'a mut self, payload: &'a Payload) -> BoxFuture<'a, Result<(), TransportError>>;
}
