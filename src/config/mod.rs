//! Typed TOML configuration.
//!
//! Loading runs in two steps: serde parses the text into raw structs (unknown keys, wrong
//! types and bad units are errors with their line), then [`validate`] checks what serde
//! cannot (missing profiles, duplicate point ids, rules on unknown points) and builds the
//! [`GatewayConfig`] the pipeline runs. Both steps name file, line, column and key.
//!
//! Components own their sections: each defines its spec type and validates it with the building
//! blocks in `spec`; this module gathers them into [`GatewayConfig`] and re-exports the ones
//! callers name (`DeviceSpec`, `HistorySettings`, ...). No component imports this module
//! (`docs/architecture.md`).

mod bind;
mod bind_groups;
pub mod dtu;
mod ledger;
mod ops;
pub mod profile;
mod profile_check;
mod profile_show;
mod raw;
mod redundancy;
pub mod rules;
mod transport;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::spec::{ConfigError, ConfigErrors, SourceText};
pub use ops::OpsSettings;
pub use profile::{Profile, ProfileSet};
pub use redundancy::PairSpec;

pub use crate::model::HazardSource;
use crate::model::{PointId, PointTable, Reading, Timestamp};
use crate::rules::{AlarmSettings, RuleSpec};
pub use crate::sinks::history::HistorySettings;
pub use crate::sinks::journal::JournalSettings;
pub use crate::sources::modbus::spec::{DeviceSpec, Parity, SerialSpec, TransportSpec};

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
    /// Without tokens, whether anyone may act (acknowledge, shelve…): on loopback, or when
    /// `[api] open = true` says so; otherwise an API without tokens is read-only.
    pub api_open_actions: bool,
    /// Embedded history.
    pub history: HistorySettings,
    /// Alarm journal retention.
    pub journal: JournalSettings,
    /// Hazard sources.
    pub hazard_sources: Vec<HazardSource>,
    /// Every point.
    pub points: PointTable,
    /// Every polled device.
    pub devices: Vec<DeviceSpec>,
    /// Every rule, bound to its points (profile defaults included; the automatic sensor-fault
    /// and suspect-data alarms as one rule each, see [`GatewayConfig::rule_bindings`]). Shared
    /// with the uplinks that read it.
    pub rules: Arc<[RuleSpec]>,
    /// Gateway-wide alarm settings.
    pub alarms: AlarmSettings,
    /// What sounds in the console and who may shelve what (`[console]`, `[alarms.shelving]`).
    pub console: crate::api::policy::ConsolePolicy,
    /// The profiles the config was checked against.
    pub profiles: ProfileSet,
    /// Time-series stores, each with its own buffer.
    pub tsdb: Vec<crate::sinks::tsdb::TsdbSpec>,
    /// Webhook targets for alarm transitions.
    pub webhooks: Vec<crate::sinks::webhook::WebhookSpec>,
    /// How notification messages read (`[notify]`).
    pub notify: crate::sinks::webhook::message::MessageSettings,
    /// Escalation rosters (`[[escalations]]`).
    pub escalations: Vec<crate::sinks::webhook::escalate::EscalationSpec>,
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
    /// This gateway as one node of a hot-standby pair (`[redundancy]`), if it is one.
    pub redundancy: Option<PairSpec>,
}

impl GatewayConfig {
    /// The names notification messages use: `[labels]` of points and devices, hazard sources.
    pub fn notify_directory(&self) -> crate::sinks::webhook::message::Directory {
        use crate::sinks::webhook::message::{Directory, Naming};
        let naming = |l: &crate::api::labels::Label| Naming {
            name: l.name.clone(),
            place: l.location.as_ref().and_then(|loc| {
                let parts: Vec<&str> = [&loc.area, &loc.unit, &loc.floor]
                    .into_iter()
                    .filter_map(|p| p.as_deref())
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }),
        };
        let labels = &self.console.labels;
        Directory {
            subjects: labels
                .devices
                .iter()
                .chain(&labels.points)
                .map(|(id, l)| (id.clone(), naming(l)))
                .collect(),
            hazard_sources: self
                .hazard_sources
                .iter()
                .map(|h| (h.id.clone(), h.name.clone()))
                .collect(),
        }
    }

    /// What `/readyz` and the watchdog check, from `[ops]` and the configured stores.
    pub fn readiness(&self) -> crate::health::Readiness {
        crate::health::Readiness {
            buffer_limit: self.ops.unready_when_buffer_over,
            min_free_disk: self.ops.min_free_disk,
            clock_jump_over: self.ops.clock_jump_over,
            stores: self.tsdb.iter().map(|t| t.name.clone()).collect(),
            brokers: self
                .mqtt
                .brokers
                .iter()
                .enumerate()
                .filter(|(i, _)| self.mqtt.subscriptions.iter().any(|s| s.broker == *i))
                .map(|(_, b)| b.name.clone())
                .collect(),
            webhooks: self.webhooks.iter().map(|w| w.name.clone()).collect(),
            north: self
                .mqtt_north
                .iter()
                .filter(|m| m.readings.is_some())
                .map(|m| m.name.clone())
                .collect(),
        }
    }

    /// The first `count` payloads uplink `name` would send from the clock's now, with values
    /// from the device profiles' simulator signals (`hazard-gateway uplink preview`).
    pub fn preview_uplink(
        &self,
        name: &str,
        count: usize,
        clock: crate::clock::SharedClock,
    ) -> Result<Vec<crate::sinks::uplink::preview::PreviewItem>, crate::sinks::uplink::preview::PreviewError> {
        let simulated = |elapsed: Duration, ts: Timestamp| simulated(self, elapsed, ts);
        let plant = crate::sinks::uplink::preview::PreviewPlant {
            gateway_id: &self.gateway_id,
            points: &self.points,
            rules: &self.rules,
            uplinks: &self.uplinks,
            simulated: &simulated,
        };
        crate::sinks::uplink::preview::preview(&plant, name, count, clock)
    }

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

    /// Every rule binding, with the automatic per-point alarms expanded to one per point.
    pub fn rule_bindings(&self) -> impl Iterator<Item = std::borrow::Cow<'_, RuleSpec>> {
        crate::rules::bindings(&self.rules, &self.points)
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
            self.rule_bindings().count(),
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

/// Simulated readings of every point at `elapsed` since the simulators started.
fn simulated(config: &GatewayConfig, elapsed: Duration, ts: Timestamp) -> Vec<(PointId, Option<Reading>)> {
    let mut values: Vec<Option<Reading>> = vec![None; config.points.len()];
    for dev in &config.devices {
        let Some(profile) = config.profiles.get(&dev.profile) else {
            continue;
        };
        for (id, reg) in dev.points.iter().zip(dev.registers.iter()) {
            let model = profile
                .points
                .iter()
                .find(|p| p.register.address == reg.address && p.register.function == reg.function);
            if let Some(p) = model {
                values[id.index()] = Some(Reading {
                    point: *id,
                    ts,
                    value: p.sim.value_at(elapsed, 0.0),
                    quality: crate::model::Quality::Good,
                });
            }
        }
    }
    config.points.iter().map(|(id, _)| (id, values[id.index()])).collect()
}

/// Each MQTT broker with subscriptions as a station of the rules engine, with the subscriptions
/// (`mqtt:<subscription>` devices) behind it: when the broker is lost every point it feeds
/// turns `comm_fault` at once, and one communication alarm, `mqtt-broker:<name>`, suppresses
/// the process alarms of those points, as a Modbus device's does for its own.
fn mqtt_station_groups(mqtt: &crate::sources::mqtt::MqttInSpec) -> Vec<crate::rules::StationGroup> {
    use crate::sources::mqtt::validate::{broker_device_of, device_of};
    mqtt.brokers
        .iter()
        .enumerate()
        .map(|(i, b)| crate::rules::StationGroup {
            station: broker_device_of(&b.name),
            devices: mqtt
                .subscriptions
                .iter()
                .filter(|s| s.broker == i)
                .map(|s| device_of(&s.name))
                .collect(),
            grace: b.comm_grace,
        })
        .filter(|g| !g.devices.is_empty())
        .collect()
}
