//! Typed TOML configuration.
//!
//! Loading runs in two steps: serde parses the text into raw structs (unknown keys, wrong
//! types and bad units are errors with their line), then [`validate`] checks what serde
//! cannot (missing profiles, duplicate point ids, rules on unknown points) and builds the
//! [`GatewayConfig`] the pipeline runs. Both steps name file, line, column and key.

mod bind;
mod bind_groups;
pub mod dtu;
pub mod error;
mod ops;
pub mod profile;
mod profile_check;
mod profile_show;
mod raw;
pub mod rules;
mod transport;
pub mod units;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors, SourceText};
pub use ops::OpsSettings;
pub use profile::{Profile, ProfileSet};

use crate::model::{PointId, PointTable};
use crate::rules::{AlarmSettings, RuleSpec};
use crate::sources::modbus::planner::ReadLimits;
use crate::sources::modbus::register::RegisterSpec;

/// A path written in the config file `config`: absolute as written, or relative to the
/// config's folder (so a config names its certificates and key files beside itself,
/// whatever the working directory of the service).
pub fn relative_to(config: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// A hazard source (重大危险源) as registered with the authorities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HazardSource {
    /// Registration code, e.g. `MHS-001`.
    pub id: String,
    /// Name, e.g. `液氯储罐区`.
    pub name: String,
    /// GB 18218-2018 grade, 1 (most severe) to 4.
    pub level: u8,
}

/// How the gateway reaches a Modbus device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransportSpec {
    /// Modbus TCP to `host:port`.
    Tcp(String),
    /// Modbus RTU on a local serial line (RS-485/RS-232).
    Rtu(SerialSpec),
    /// RTU frames carried over a TCP connection to a serial server / DTU at `host:port`.
    RtuOverTcp(String),
    /// Through a DTU that dials in to the gateway: the station's name.
    Dtu(String),
}

impl TransportSpec {
    /// `tcp`, `rtu` or `rtu_over_tcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Tcp(_) => "tcp",
            TransportSpec::Rtu(_) => "rtu",
            TransportSpec::RtuOverTcp(_) => "rtu_over_tcp",
            TransportSpec::Dtu(_) => "dtu",
        }
    }

    /// The endpoint: `host:port` or the serial port path.
    pub fn endpoint(&self) -> &str {
        match self {
            TransportSpec::Tcp(a) | TransportSpec::RtuOverTcp(a) | TransportSpec::Dtu(a) => a,
            TransportSpec::Rtu(s) => &s.port,
        }
    }
}

impl std::fmt::Display for TransportSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportSpec::Rtu(s) => write!(
                f,
                "rtu {} {} {}{}{}",
                s.port,
                s.baud,
                s.data_bits,
                s.parity.letter(),
                s.stop_bits
            ),
            other => write!(f, "{} {}", other.kind(), other.endpoint()),
        }
    }
}

/// Serial line settings of an RTU bus.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SerialSpec {
    /// Serial device, e.g. `/dev/ttyS1`.
    pub port: String,
    /// Bits per second.
    pub baud: u32,
    /// Parity bit.
    pub parity: Parity,
    /// Data bits per character (7 or 8).
    pub data_bits: u8,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
}

impl SerialSpec {
    /// Modbus over Serial Line v1.02 §2.5.1.1: frames are separated by 3.5 character times of
    /// silence; above 19200 baud a fixed 1.75 ms is recommended.
    pub fn inter_frame_silence(&self) -> Duration {
        if self.baud > 19_200 {
            return Duration::from_micros(1750);
        }
        let bits = 1 + u32::from(self.data_bits) + u32::from(self.parity != Parity::None) + u32::from(self.stop_bits);
        Duration::from_secs_f64(3.5 * f64::from(bits) / f64::from(self.baud.max(1)))
    }
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit (Modbus requires 2 stop bits then, though many devices use 1).
    None,
    /// Even parity, the Modbus default (Serial Line v1.02 §2.5.1).
    Even,
    /// Odd parity.
    Odd,
}

impl Parity {
    fn letter(self) -> char {
        match self {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        }
    }
}

/// One polled device, with its points resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    /// Device name, unique in the gateway.
    pub name: String,
    /// Profile it follows.
    pub profile: String,
    /// Where it is.
    pub transport: TransportSpec,
    /// Modbus unit (slave) id.
    pub unit_id: u8,
    /// Poll period.
    pub interval: Duration,
    /// How long to wait for an answer before the device counts as silent.
    pub timeout: Duration,
    /// Extra attempts of a failed request while the device is online (none once it is not:
    /// a dead device costs its bus one timeout per cycle).
    pub retries: u8,
    /// Pause before each request to this device, for slow serial devices and DTUs.
    pub inter_request_delay: Duration,
    /// Request limits (profile's, possibly narrowed per device).
    pub limits: ReadLimits,
    /// The points it feeds and where each sits in its register map.
    pub points: Vec<(PointId, RegisterSpec)>,
}

/// Settings of the embedded history store.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySettings {
    /// How long raw readings are kept.
    pub retention: Duration,
    /// How long per-minute rollups are kept.
    pub rollup_retention: Duration,
    /// A point's raw value is stored at least this often.
    pub heartbeat: Duration,
    /// Default deadband of a point, in percent of its instrument's span.
    pub deadband_percent: f64,
    /// Per-point deadbands in engineering units.
    pub deadbands: Vec<(PointId, f64)>,
    /// Reading batches queued for the store before new ones are dropped (and counted).
    pub queue_batches: usize,
}

impl Default for HistorySettings {
    /// The documented defaults: 48 h raw, 90 days of minutes, 60 s heartbeat, 0.5 % of span.
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(48 * 3600),
            rollup_retention: Duration::from_secs(90 * 24 * 3600),
            heartbeat: Duration::from_secs(60),
            deadband_percent: 0.5,
            deadbands: Vec::new(),
            queue_batches: 1024,
        }
    }
}

/// A validated configuration, ready to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Things that are allowed but probably a mistake, located like errors; `check-config`
    /// prints them and `run` logs them.
    pub warnings: Vec<ConfigError>,
    /// File it came from (for messages).
    pub file: PathBuf,
    /// Gateway id; carried on every record it sends.
    pub gateway_id: String,
    /// Where history and the alarm journal live; `None` means the caller picks (demo: temp dir).
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API and console.
    pub api_listen: SocketAddr,
    /// Largest request body the API accepts, in bytes.
    pub api_max_body: usize,
    /// Accepted bearer tokens (empty: open API).
    pub api_tokens: Vec<crate::api::auth::TokenEntry>,
    /// Embedded history.
    pub history: HistorySettings,
    /// Hazard sources.
    pub hazard_sources: Vec<HazardSource>,
    /// Every point.
    pub points: PointTable,
    /// Every polled device.
    pub devices: Vec<DeviceSpec>,
    /// Every rule, bound to its points (profile defaults and automatic sensor-fault alarms
    /// included).
    pub rules: Vec<RuleSpec>,
    /// Gateway-wide alarm settings.
    pub alarms: AlarmSettings,
    /// The profiles the config was checked against.
    pub profiles: ProfileSet,
    /// Time-series stores, each with its own buffer.
    pub tsdb: Vec<crate::sinks::tsdb::TsdbSpec>,
    /// Webhook targets for alarm transitions.
    pub webhooks: Vec<crate::sinks::webhook::WebhookSpec>,
    /// Northbound MQTT brokers for alarm transitions.
    pub mqtt_north: Vec<crate::sinks::mqtt_north::MqttNorthSpec>,
    /// Readiness limits (`[ops]`).
    pub ops: OpsSettings,
    /// API server: TLS, timeouts, request-head limit.
    pub api_server: crate::api::config::ServerSettings,
    /// MQTT brokers and subscriptions readings come from (their points are in `points`).
    pub mqtt: crate::sources::mqtt::MqttInSpec,
    /// DTUs that dial in (`[dtu]`): listeners and stations.
    pub dtu: dtu::DtuSpec,
    /// Regulator uplinks (`[[uplinks]]`).
    pub uplinks: Vec<crate::sinks::uplink::UplinkSpec>,
    /// OPC UA endpoints and monitored items (their points are in `points`).
    pub opcua: crate::sources::opcua::OpcuaSpec,
}

impl GatewayConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![
                SourceText::new(path, "").file_error(format!("cannot read config: {e}")),
            ])
        })?;
        Self::parse(path, &text)
    }

    /// Validates config text; `path` names the file in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<GatewayConfig, ConfigErrors> {
        validate::validate(path, text).map_err(ConfigErrors)
    }

    /// A short human summary, as `check-config` prints it.
    pub fn summary(&self) -> String {
        let alarms = crate::rules::RulesEngine::new(
            self.points.clone(),
            &self.rules,
            self.alarms.clone(),
            Default::default(),
        )
        .map_or(0, |e| e.alarm_count());
        let mut s = format!(
            "{}: gateway `{}`: {} hazard source(s), {} device(s), {} point(s), {} rule binding(s), {} alarm(s)\n",
            self.file.display(),
            self.gateway_id,
            self.hazard_sources.len(),
            self.devices.len(),
            self.points.len(),
            self.rules.len(),
            alarms,
        );
        for d in &self.devices {
            s.push_str(&format!(
                "  device {} ({}) {} unit {} every {:?}: {} points\n",
                d.name,
                d.profile,
                d.transport,
                d.unit_id,
                d.interval,
                d.points.len()
            ));
        }
        for sub in &self.mqtt.subscriptions {
            let broker = &self.mqtt.brokers[sub.broker];
            s.push_str(&format!(
                "  mqtt {} on {} {}:{} `{}` qos {}: {} points\n",
                sub.name,
                broker.name,
                broker.host,
                broker.port,
                sub.filter.filter,
                sub.qos,
                sub.points.len()
            ));
        }
        for l in &self.dtu.listeners {
            let framing = match l.framing {
                dtu::DtuFraming::Rtu => "rtu",
                dtu::DtuFraming::Tcp => "tcp",
            };
            s.push_str(&format!(
                "  dtu listener {} on {} ({framing} framing, heartbeat every {:?}, lost after {:?})\n",
                l.name, l.listen, l.heartbeat_interval, l.heartbeat_timeout
            ));
        }
        for u in &self.uplinks {
            s.push_str(&format!(
                "  uplink {} ({} over {}) every {:?}: {} points{}\n",
                u.name,
                u.encoder.kind(),
                u.transport.kind(),
                u.realtime_interval,
                u.select.points.len(),
                if u.select.alarms { " and alarms" } else { "" }
            ));
        }
        for (i, ep) in self.opcua.endpoints.iter().enumerate() {
            s.push_str(&format!(
                "  opcua {} {} ({}/{}): {} points\n",
                ep.name,
                ep.url,
                ep.policy.as_str(),
                ep.mode.as_str(),
                self.opcua.items.iter().filter(|it| it.endpoint == i).count()
            ));
        }
        for st in &self.dtu.stations {
            let heartbeat = st.heartbeat.as_ref().map_or("none".to_string(), |h| h.to_string());
            s.push_str(&format!(
                "  dtu station {} registers as {}, heartbeat {heartbeat}\n",
                st.name, st.id
            ));
        }
        s
    }
}
