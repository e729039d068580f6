//! `[[mqtt_north]]` entries: MQTT brokers that receive alarm transitions (park or regulator
//! platforms, often an EMQX cluster).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{AlarmEvent, Priority};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::units;

fn default_topic() -> String {
    "hazard/{gateway}/alarms".into()
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

/// A `[[mqtt_north]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqttNorth {
    /// Name in logs and metrics; also names its delivery cursor in the data dir.
    pub name: Spanned<String>,
    /// Broker `host:port`.
    pub broker: Spanned<String>,
    /// MQTT client id; defaults to `<gateway id>-<name>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topic template; `{gateway}`, `{priority}`, `{hazard_source}`, `{class}` are filled in.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// User name, if the broker asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// MQTT keep-alive (at least 5 s).
    #[serde(default = "default_keep_alive", deserialize_with = "units::duration::deserialize")]
    pub keep_alive: Duration,
    /// Only alarms of this priority or higher.
    #[serde(default)]
    pub min_priority: Option<Priority>,
    /// Also publish readings (`readings = { points = "MHS-001/*" }`), on a connection of their
    /// own so they never delay an alarm.
    #[serde(default)]
    pub readings: Option<RawNorthReadings>,
    /// Connect over TLS (`tls = { ca_file = "park-ca.pem" }`, optionally a client
    /// certificate).
    #[serde(default)]
    pub tls: Option<RawNorthTls>,
}

fn default_readings_topic() -> String {
    "hazard/{gateway}/readings/{point}".into()
}

/// `readings = { … }` of a `[[mqtt_north]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNorthReadings {
    /// Glob of the points to publish (`*` for all).
    pub points: Spanned<String>,
    /// Topic template; `{gateway}` and `{point}` are filled in (a point's `/` make levels).
    #[serde(default = "default_readings_topic")]
    pub topic: String,
    /// `at_most_once` (default: a lost reading is replaced by the next) or `at_least_once`.
    #[serde(default)]
    pub qos: ReadingQos,
    /// At most one publish per point per this interval (`"5s"`); default: every reading.
    #[serde(default)]
    pub interval: Option<units::DurationText>,
}

/// MQTT quality of service for readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadingQos {
    /// QoS 0: fire and forget; a reading lost on the way is superseded by the next one.
    #[default]
    AtMostOnce,
    /// QoS 1: the broker acknowledges each; while the link is down the newest readings wait
    /// in the client's queue and older ones are dropped (counted).
    AtLeastOnce,
}

/// `tls = { … }` of a `[[mqtt_north]]` entry: PEM files, relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNorthTls {
    /// CA certificate(s) that signed the broker's certificate.
    pub ca_file: Spanned<std::path::PathBuf>,
    /// Client certificate chain, for brokers that require one (needs `key`).
    #[serde(default)]
    pub cert: Option<Spanned<std::path::PathBuf>>,
    /// Private key of `cert`.
    #[serde(default)]
    pub key: Option<Spanned<std::path::PathBuf>>,
}

/// Validated reading publication of a target.
#[derive(Debug, Clone, PartialEq)]
pub struct NorthReadings {
    /// Glob of the points published.
    pub points: String,
    /// Topic template.
    pub topic: String,
    /// Quality of service.
    pub qos: ReadingQos,
    /// Per-point minimum interval.
    pub interval: Option<Duration>,
}

impl NorthReadings {
    /// The topic of `point` for gateway `gateway`; MQTT wildcard characters in a point id
    /// become `_` so a publish topic stays valid.
    pub fn topic_for(&self, gateway: &str, point: &str) -> String {
        let point: String = point
            .chars()
            .map(|c| if c == '+' || c == '#' { '_' } else { c })
            .collect();
        self.topic.replace("{gateway}", gateway).replace("{point}", &point)
    }
}

/// A validated northbound MQTT target.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttNorthSpec {
    /// Name.
    pub name: String,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id (empty: derived from the gateway id).
    pub client_id: Option<String>,
    /// Topic template.
    pub topic: String,
    /// User name.
    pub username: Option<String>,
    /// Environment variable of the password.
    pub password_env: Option<String>,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// Lowest priority published.
    pub min_priority: Option<Priority>,
    /// Reading publication, if any.
    pub readings: Option<NorthReadings>,
    /// TLS files, if the broker is reached over TLS.
    pub tls: Option<super::tls::NorthTls>,
}

impl MqttNorthSpec {
    /// Whether this target wants `e`.
    pub fn wants(&self, e: &AlarmEvent) -> bool {
        self.min_priority.is_none_or(|p| e.priority >= p)
    }

    /// The topic of `e` for gateway `gateway`.
    pub fn topic_for(&self, gateway: &str, e: &AlarmEvent) -> String {
        self.topic
            .replace("{gateway}", gateway)
            .replace("{priority}", e.priority.as_str())
            .replace("{hazard_source}", e.hazard_source.as_deref().unwrap_or("none"))
            .replace("{class}", e.class.as_str())
    }
}

/// Validates the entries, reporting every problem with its place.
pub fn validate(src: &SourceText<'_>, raw: &[RawMqttNorth], errors: &mut Vec<ConfigError>) -> Vec<MqttNorthSpec> {
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let name = m.name.get_ref();
        let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !safe || !names.insert(name.clone()) {
            let msg = "names must be unique and made of letters, digits, `-` and `_` (they name a file)";
            errors.push(src.error(m.name.span(), format!("mqtt_north[{i}].name"), msg));
        }
        let broker = m.broker.get_ref();
        let parsed = broker.rsplit_once(':').and_then(|(h, p)| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0 && !h.is_empty())
                .map(|p| (h.to_string(), p))
        });
        let Some((host, port)) = parsed else {
            errors.push(src.error(
                m.broker.span(),
                format!("mqtt_north[{i}].broker"),
                format!("`{broker}` is not host:port"),
            ));
            continue;
        };
        if m.keep_alive < Duration::from_secs(5) {
            errors.push(src.error(
                m.name.span(),
                format!("mqtt_north[{i}].keep_alive"),
                "must be at least 5s",
            ));
        }
        if m.topic.is_empty() || m.topic.contains(['+', '#']) {
            errors.push(src.error(
                m.name.span(),
                format!("mqtt_north[{i}].topic"),
                "a publish topic must be non-empty and have no wildcards",
            ));
        }
        let readings = m.readings.as_ref().and_then(|r| check_readings(src, i, r, errors));
        let tls = m.tls.as_ref().and_then(|t| super::tls::check(src, i, t, errors));
        out.push(MqttNorthSpec {
            readings,
            tls,
            name: name.clone(),
            host,
            port,
            client_id: m.client_id.clone(),
            topic: m.topic.clone(),
            username: m.username.clone(),
            password_env: m.password_env.clone(),
            keep_alive: m.keep_alive,
            min_priority: m.min_priority,
        });
    }
    out
}

fn check_readings(
    src: &SourceText<'_>,
    i: usize,
    r: &RawNorthReadings,
    errors: &mut Vec<ConfigError>,
) -> Option<NorthReadings> {
    let at = |key: &str| format!("mqtt_north[{i}].readings.{key}");
    let mut ok = true;
    if let Err(e) = globset::Glob::new(r.points.get_ref()) {
        errors.push(src.error(r.points.span(), at("points"), format!("not a glob: {e}")));
        ok = false;
    }
    if r.topic.is_empty() || r.topic.contains(['+', '#']) || !r.topic.contains("{point}") {
        errors.push(src.error(
            r.points.span(),
            at("topic"),
            "a readings topic must contain `{point}` and have no wildcards",
        ));
        ok = false;
    }
    ok.then(|| NorthReadings {
        points: r.points.get_ref().clone(),
        topic: r.topic.clone(),
        qos: r.qos,
        interval: r.interval.map(|d| d.0),
    })
}
