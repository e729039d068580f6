//! Typed TOML configuration.
//!
//! Loading runs in two steps: serde parses the text into raw structs (unknown keys, wrong
//! types and bad units are errors with their line), then [`validate`] checks what serde
//! cannot (missing profiles, duplicate point ids, rules on unknown points) and builds the
//! [`GatewayConfig`] the pipeline runs. Both steps name file, line, column and key.

mod bind;
pub mod error;
pub mod profile;
mod raw;
pub mod rules;
pub mod units;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors, SourceText};
pub use profile::{Profile, ProfileSet};

use crate::model::{PointId, PointTable};
use crate::rules::{AlarmSettings, RuleSpec};
use crate::sources::modbus::planner::ReadLimits;
use crate::sources::modbus::register::RegisterSpec;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSpec {
    /// Modbus TCP to `host:port`.
    Tcp(String),
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
            let TransportSpec::Tcp(addr) = &d.transport;
            s.push_str(&format!(
                "  device {} ({}) tcp {} unit {} every {:?}: {} points\n",
                d.name,
                d.profile,
                addr,
                d.unit_id,
                d.interval,
                d.points.len()
            ));
        }
        s
    }
}
