//! The config file as serde reads it, before cross-checks. Every struct refuses unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Parity;
use super::rules::{AlarmsConfig, RuleConfig};
use crate::api::auth::Role;
use crate::sinks::tsdb::config::RawTsdb;
use crate::sources::modbus::register::WordOrder;
use crate::spec::units::{self, DurationText};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) gateway: RawGateway,
    #[serde(default)]
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) history: RawHistory,
    #[serde(default)]
    pub(super) alarms: AlarmsConfig,
    /// The alarm journal.
    #[serde(default)]
    pub(super) journal: RawJournal,
    /// The duty officer's console.
    #[serde(default)]
    pub(super) console: crate::api::policy::RawConsole,
    /// Alarm performance KPIs: site-local time, operator positions.
    #[serde(default)]
    pub(super) kpi: crate::kpi::RawKpi,
    /// Names, descriptions and places of points and devices, for the console.
    #[serde(default)]
    pub(super) labels: crate::api::labels::RawLabels,
    #[serde(default)]
    pub(super) hazard_sources: Vec<Spanned<RawHazardSource>>,
    #[serde(default)]
    pub(super) devices: Vec<Spanned<RawDevice>>,
    #[serde(default)]
    pub(super) rules: Vec<Spanned<RuleConfig>>,
    /// Time-series stores readings and alarm transitions are sent to.
    #[serde(default)]
    pub(super) tsdb: Vec<RawTsdb>,
    /// Webhook targets for alarm transitions.
    #[serde(default)]
    pub(super) webhooks: Vec<crate::sinks::webhook::config::RawWebhook>,
    /// How notification messages read: language, site time offset, console link.
    #[serde(default)]
    pub(super) notify: crate::sinks::webhook::notify_config::RawNotify,
    /// Who is told next when an alarm stays unacknowledged.
    #[serde(default)]
    pub(super) escalations: Vec<crate::sinks::webhook::notify_config::RawEscalation>,
    /// Northbound MQTT brokers for alarm transitions.
    #[serde(default)]
    pub(super) mqtt_north: Vec<crate::sinks::mqtt_north::config::RawMqttNorth>,
    /// Readiness limits for operations.
    #[serde(default)]
    pub(super) ops: super::ops::RawOps,
    /// MQTT brokers and subscriptions readings come from.
    #[serde(default)]
    pub(super) mqtt: crate::sources::mqtt::config::RawMqtt,
    /// DTUs that dial in: listeners and the stations behind them.
    #[serde(default)]
    pub(super) dtu: super::dtu::RawDtu,
    /// Regulator uplinks (联网上报).
    #[serde(default)]
    pub(super) uplinks: Vec<Spanned<crate::sinks::uplink::config::RawUplink>>,
    /// OPC UA servers (DCS/SIS) and the points read from them.
    #[serde(default)]
    pub(super) opcua: crate::sources::opcua::config::RawOpcua,
    /// This gateway as one node of a hot-standby pair.
    #[serde(default)]
    pub(super) redundancy: Option<super::redundancy::RawRedundancy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    /// Gateway id, carried on every record and alarm it sends.
    pub(super) id: Spanned<String>,
    /// Where history and the alarm journal live.
    #[serde(default)]
    pub(super) data_dir: Option<PathBuf>,
    /// Extra profile folders (relative to the config file); they override built-in profiles.
    #[serde(default)]
    pub(super) profile_dirs: Vec<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    /// `ip:port` of the HTTP API and console.
    #[serde(default = "default_listen")]
    pub(super) listen: Spanned<String>,
    /// Largest request body accepted (`"64KiB"`); larger requests get 413.
    #[serde(default = "default_max_body", deserialize_with = "units::size::deserialize")]
    pub(super) max_body: u64,
    /// Accepted bearer tokens; none leaves the API open.
    #[serde(default)]
    pub(super) tokens: Vec<Spanned<RawToken>>,
    /// Without tokens on an address beyond loopback, operator actions are refused unless
    /// this says the API is meant to be open to anyone who can reach it.
    #[serde(default)]
    pub(super) open: bool,
    /// Serve HTTPS with these PEM files (`tls = { cert = "api.crt", key = "api.key" }`).
    #[serde(default)]
    pub(super) tls: Option<Spanned<crate::api::config::RawTls>>,
    /// The TLS handshake and each request head must arrive within this; a client that
    /// trickles bytes is disconnected.
    #[serde(default)]
    pub(super) header_read_timeout: Option<Spanned<DurationText>>,
    /// Longest an ordinary request may take, body included (408 after it); the live feed is
    /// exempt.
    #[serde(default)]
    pub(super) request_timeout: Option<Spanned<DurationText>>,
    /// Largest request head, request line and headers (`"16KiB"`, at least 8KiB); larger gets 431.
    #[serde(default)]
    pub(super) max_header: Option<Spanned<units::SizeText>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    /// Holder of the token, journaled as the user of their actions.
    pub(super) name: String,
    /// What it may do.
    pub(super) role: Role,
    /// `sha256:<hex>` from `hazard-gateway hash-token`.
    pub(super) hash: Spanned<String>,
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8080".to_string())
}

fn default_max_body() -> u64 {
    64 * 1024
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body: default_max_body(),
            tokens: Vec::new(),
            open: false,
            tls: None,
            header_read_timeout: None,
            request_timeout: None,
            max_header: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHistory {
    /// How long raw readings are kept in the embedded store.
    #[serde(default = "default_retention")]
    pub(super) retention: Spanned<DurationText>,
    /// How long per-minute rollups are kept.
    #[serde(default = "default_rollup_retention")]
    pub(super) rollup_retention: Spanned<DurationText>,
    /// A point's raw value is stored at least this often even when it does not change.
    #[serde(default = "default_heartbeat")]
    pub(super) heartbeat: Spanned<DurationText>,
    /// Default deadband in percent of the instrument's span (profile `range`).
    #[serde(default = "default_deadband_percent")]
    pub(super) deadband_percent: Spanned<f64>,
    /// Per-point deadbands in engineering units, overriding the default.
    #[serde(default)]
    pub(super) deadbands: BTreeMap<String, Spanned<f64>>,
    /// Reading batches queued for the store; past this, batches are dropped and counted.
    #[serde(default = "default_queue")]
    pub(super) queue_batches: Spanned<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJournal {
    /// How long alarm transitions are kept (those of unsettled alarms or not yet delivered
    /// are kept longer).
    #[serde(default = "default_journal_retention")]
    pub(super) retention: Spanned<DurationText>,
}

fn default_journal_retention() -> Spanned<DurationText> {
    unspanned(DurationText(crate::sinks::journal::DEFAULT_RETENTION))
}

impl Default for RawJournal {
    fn default() -> Self {
        Self {
            retention: default_journal_retention(),
        }
    }
}

fn unspanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn default_retention() -> Spanned<DurationText> {
    unspanned(DurationText(Duration::from_secs(48 * 3600)))
}

fn default_rollup_retention() -> Spanned<DurationText> {
    unspanned(DurationText(Duration::from_secs(90 * 24 * 3600)))
}

fn default_heartbeat() -> Spanned<DurationText> {
    unspanned(DurationText(Duration::from_secs(60)))
}

fn default_deadband_percent() -> Spanned<f64> {
    unspanned(0.5)
}

fn default_queue() -> Spanned<usize> {
    unspanned(1024)
}

impl Default for RawHistory {
    fn default() -> Self {
        Self {
            retention: default_retention(),
            rollup_retention: default_rollup_retention(),
            heartbeat: default_heartbeat(),
            deadband_percent: default_deadband_percent(),
            deadbands: BTreeMap::new(),
            queue_batches: default_queue(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHazardSource {
    pub(super) id: Spanned<String>,
    pub(super) name: String,
    pub(super) level: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevice {
    pub(super) name: Spanned<String>,
    pub(super) profile: Spanned<String>,
    pub(super) transport: Spanned<RawTransport>,
    /// Spanned so errors point at the key; a default has an empty span.
    #[serde(default = "default_unit")]
    pub(super) unit_id: Spanned<u8>,
    #[serde(default = "default_interval")]
    pub(super) interval: Spanned<DurationText>,
    #[serde(default = "default_timeout")]
    pub(super) timeout: Spanned<DurationText>,
    #[serde(default)]
    pub(super) hazard_source: Option<Spanned<String>>,
    /// Profile point key -> point id. Absent: every profile point, as `<device>/<key>`.
    #[serde(default)]
    pub(super) points: Option<BTreeMap<String, Spanned<String>>>,
    /// Narrows the profile's registers-per-read limit for a fussy device.
    #[serde(default)]
    pub(super) max_registers: Option<Spanned<u16>>,
    /// Overrides the profile's gap bridging.
    #[serde(default)]
    pub(super) max_gap: Option<u16>,
    /// Narrows the profile's coils/discrete-inputs-per-read limit.
    #[serde(default)]
    pub(super) max_bits: Option<Spanned<u16>>,
    /// Byte/word order of this device's points that do not fix their own in the profile.
    #[serde(default)]
    pub(super) word_order: Option<WordOrder>,
    /// Per-point byte/word order, by profile point key; wins over every other setting.
    #[serde(default)]
    pub(super) point_word_order: BTreeMap<String, Spanned<WordOrder>>,
    /// Extra attempts of a failed request while the device is online.
    #[serde(default = "default_retries")]
    pub(super) retries: u8,
    /// Pause before each request to this device.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub(super) inter_request_delay: Duration,
}

fn default_retries() -> u8 {
    1
}

fn default_unit() -> Spanned<u8> {
    Spanned::new(0..0, 1)
}

fn default_interval() -> Spanned<DurationText> {
    Spanned::new(0..0, DurationText(Duration::from_secs(1)))
}

fn default_timeout() -> Spanned<DurationText> {
    Spanned::new(0..0, DurationText(Duration::from_secs(1)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawTransport {
    /// Modbus TCP, `host:port`.
    Tcp(String),
    /// Modbus RTU on a local serial port.
    Rtu(RawSerial),
    /// RTU frames over TCP through a serial server / DTU, `host:port`.
    RtuOverTcp(String),
    /// Through a DTU that dials in: the name of its `[[dtu.stations]]` entry.
    Dtu(String),
}

/// Serial line settings; devices on one port form one bus and must agree on them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSerial {
    pub(super) port: String,
    #[serde(default = "default_baud")]
    pub(super) baud: u32,
    #[serde(default = "default_parity")]
    pub(super) parity: Parity,
    #[serde(default = "default_data_bits")]
    pub(super) data_bits: u8,
    #[serde(default = "default_stop_bits")]
    pub(super) stop_bits: u8,
}

fn default_baud() -> u32 {
    9600
}

fn default_parity() -> Parity {
    Parity::None
}

fn default_data_bits() -> u8 {
    8
}

fn default_stop_bits() -> u8 {
    1
}
