//! `[[mqtt_north]]` entries: MQTT brokers that receive alarm transitions (park or regulator
//! platforms, often an EMQX cluster).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{AlarmEvent, Priority};
use crate::sinks::buffer::{BufferConfig, FsyncPolicy, WhenFull};
use crate::sinks::tsdb::config::RawFsync;
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

/// `readings = { … }` of a `[[mqtt_north]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNorthReadings {
    /// Glob of the points to publish (`*` for all).
    pub points: Spanned<String>,
    /// How readings are grouped into messages: `poll` (default), `window` or `reading`.
    #[serde(default)]
    pub batch: Option<Spanned<BatchMode>>,
    /// Topic template; default `hazard/{gateway}/readings/{device}` (batched) or
    /// `hazard/{gateway}/readings/{point}` (`batch = "reading"`).
    #[serde(default)]
    pub topic: Option<Spanned<String>>,
    /// Kept so older files still read: readings always go at QoS 1 through the outbox;
    /// `at_most_once` is refused with the reason.
    #[serde(default)]
    pub qos: Option<Spanned<ReadingQos>>,
    /// At most one reading per point per this interval (`"5s"`, by the readings' own
    /// timestamps); default: every reading.
    #[serde(default)]
    pub interval: Option<units::DurationText>,
    /// `batch = "window"`: how long readings gather before a device's message goes.
    #[serde(default)]
    pub window: Option<Spanned<units::DurationText>>,
    /// Readings in one message at most; a larger group is split.
    #[serde(default)]
    pub max_readings: Option<Spanned<usize>>,
    /// Messages published and not yet acknowledged at most (the window in flight).
    #[serde(default)]
    pub in_flight: Option<Spanned<usize>>,
    /// Reading batches queued between the rules engine and the outbox; past this they are
    /// dropped and counted (the rules engine never waits for the broker).
    #[serde(default)]
    pub queue_batches: Option<Spanned<usize>>,
    /// The durable outbox.
    #[serde(default)]
    pub buffer: Option<RawNorthBuffer>,
    /// How readings are encoded: `json` (default) or `sparkplug_b` (Eclipse Sparkplug 3.0).
    #[serde(default)]
    pub encoding: Option<Spanned<Encoding>>,
    /// `encoding = "sparkplug_b"`: the Sparkplug group id (required).
    #[serde(default)]
    pub group_id: Option<Spanned<String>>,
    /// `encoding = "sparkplug_b"`: the edge node id; default the gateway id.
    #[serde(default)]
    pub edge_node_id: Option<Spanned<String>>,
}

/// How a target's readings are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The gateway's JSON (see docs/mqtt-north.md).
    #[default]
    Json,
    /// Sparkplug B: births, data with aliases, deaths (see docs/sparkplug.md).
    SparkplugB,
}

/// Where a Sparkplug B edge node publishes: `spBv1.0/{group_id}/…/{edge_node_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkplugIds {
    /// Group id.
    pub group_id: String,
    /// Edge node id (the gateway id unless set).
    pub edge_node_id: String,
}

/// Why `id` cannot be a Sparkplug group, edge node or device id, if it cannot: the
/// specification asks for non-empty UTF-8 without the MQTT separators `/`, `+` and `#`.
pub fn sparkplug_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("must not be empty".into());
    }
    id.chars().find(|c| matches!(c, '/' | '+' | '#')).map(|c| {
        format!(
            "`{id}` has `{c}`, which a Sparkplug id must not contain (`/`, `+`, `#` are MQTT separators and wildcards)"
        )
    })
}

/// `buffer = { … }` of a target's readings: the outbox on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNorthBuffer {
    /// Most disk the outbox may use (`"256MiB"`).
    #[serde(default = "default_buffer_bytes", deserialize_with = "units::size::deserialize")]
    pub max_bytes: u64,
    /// Readings older than this when their turn comes are not sent (counted `expired`).
    #[serde(default = "default_max_age", deserialize_with = "units::duration::deserialize")]
    pub max_age: Duration,
    /// What is lost when it is full.
    #[serde(default)]
    pub when_full: WhenFull,
    /// When buffered bytes are forced to disk.
    #[serde(default = "default_fsync")]
    pub fsync: RawFsync,
}

fn default_buffer_bytes() -> u64 {
    256 << 20
}

fn default_max_age() -> Duration {
    Duration::from_secs(7 * 86_400)
}

fn default_fsync() -> RawFsync {
    RawFsync::Interval(Duration::from_secs(1))
}

/// How readings are grouped into MQTT messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchMode {
    /// One message per device (and hazard source) per poll cycle.
    #[default]
    Poll,
    /// One message per device (and hazard source) per time window.
    Window,
    /// One message per reading on a per-point topic (the shape before batching).
    Reading,
}

/// MQTT quality of service for readings, as older files wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadingQos {
    /// QoS 0: no longer offered for readings (refused with the reason).
    AtMostOnce,
    /// QoS 1: the broker acknowledges each message; the outbox keeps it until then.
    #[default]
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
    /// How readings are grouped into messages.
    pub batch: BatchMode,
    /// Topic template.
    pub topic: String,
    /// Per-point minimum interval.
    pub interval: Option<Duration>,
    /// `batch = "window"`: the window.
    pub window: Duration,
    /// Readings per message at most.
    pub max_readings: usize,
    /// Messages in flight at most.
    pub in_flight: usize,
    /// Batches queued before the outbox.
    pub queue_batches: usize,
    /// The outbox on disk.
    pub buffer: BufferConfig,
    /// Age past which a buffered message is not sent.
    pub max_age: Duration,
    /// `encoding = "sparkplug_b"`: the ids it publishes under; `None` for JSON.
    pub sparkplug: Option<SparkplugIds>,
}

impl NorthReadings {
    /// The topic of `point` for gateway `gateway` (`batch = "reading"`); MQTT wildcard
    /// characters in a point id become `_` so a publish topic stays valid.
    pub fn topic_for(&self, gateway: &str, point: &str) -> String {
        self.topic
            .replace("{gateway}", gateway)
            .replace("{point}", &topic_safe(point))
    }

    /// The topic of a batched message of `device` (and `hazard_source`, `none` if absent).
    pub fn device_topic(&self, gateway: &str, device: &str, hazard_source: Option<&str>) -> String {
        self.topic
            .replace("{gateway}", gateway)
            .replace("{device}", &topic_safe(device))
            .replace("{hazard_source}", &topic_safe(hazard_source.unwrap_or("none")))
    }
}

fn topic_safe(s: &str) -> String {
    s.chars().map(|c| if c == '+' || c == '#' { '_' } else { c }).collect()
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
pub fn validate(
    src: &SourceText<'_>,
    raw: &[RawMqttNorth],
    gateway_id: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<MqttNorthSpec> {
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
        let readings = m
            .readings
            .as_ref()
            .and_then(|r| check_readings(src, i, name, r, gateway_id, errors));
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

/// Bounds of the window in flight (rumqttc counts packet ids in 16 bits).
const IN_FLIGHT: std::ops::RangeInclusive<usize> = 1..=4096;
/// Bounds of readings per message.
const MAX_READINGS: std::ops::RangeInclusive<usize> = 1..=10_000;

fn check_readings(
    src: &SourceText<'_>,
    i: usize,
    target: &str,
    r: &RawNorthReadings,
    gateway_id: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<NorthReadings> {
    let at = |key: &str| format!("mqtt_north[{i}].readings.{key}");
    let before = errors.len();
    if let Err(e) = globset::Glob::new(r.points.get_ref()) {
        errors.push(src.error(r.points.span(), at("points"), format!("not a glob: {e}")));
    }
    let batch = r.batch.as_ref().map_or(BatchMode::Poll, |b| *b.get_ref());
    let here = |s: Option<std::ops::Range<usize>>| s.unwrap_or_else(|| r.points.span());
    if let Some(q) = &r.qos
        && *q.get_ref() == ReadingQos::AtMostOnce
    {
        errors.push(src.error(
            q.span(),
            at("qos"),
            "readings are delivered at QoS 1 through a durable outbox, so none is lost while the broker is away; remove `qos`",
        ));
    }
    let topic = match &r.topic {
        Some(t) => t.get_ref().clone(),
        None if batch == BatchMode::Reading => "hazard/{gateway}/readings/{point}".into(),
        None => "hazard/{gateway}/readings/{device}".into(),
    };
    let topic_span = here(r.topic.as_ref().map(Spanned::span));
    if topic.is_empty() || topic.contains(['+', '#']) {
        errors.push(src.error(
            topic_span.clone(),
            at("topic"),
            "a readings topic must be non-empty and have no wildcards",
        ));
    } else if batch == BatchMode::Reading && !topic.contains("{point}") {
        errors.push(src.error(
            topic_span.clone(),
            at("topic"),
            "with batch = \"reading\" (one message per reading) the topic must contain `{point}`",
        ));
    } else if batch != BatchMode::Reading && topic.contains("{point}") {
        errors.push(src.error(
            topic_span,
            at("topic"),
            "`{point}` names one reading's topic, but a batched message carries a device's readings: \
             use `{device}` (and `{hazard_source}`), or set batch = \"reading\" for one message per reading \
             (see docs/mqtt-north.md)",
        ));
    }
    let window = r.window.as_ref().map_or(Duration::from_secs(1), |w| w.get_ref().0);
    if let Some(w) = &r.window {
        if batch != BatchMode::Window {
            errors.push(src.error(w.span(), at("window"), "`window` applies only with batch = \"window\""));
        } else if window < Duration::from_millis(10) || window > Duration::from_secs(3600) {
            errors.push(src.error(w.span(), at("window"), "must be between 10ms and 1h"));
        }
    }
    let bounded = |v: &Option<Spanned<usize>>,
                   key: &str,
                   range: std::ops::RangeInclusive<usize>,
                   default: usize,
                   errors: &mut Vec<ConfigError>| match v {
        Some(n) if !range.contains(n.get_ref()) => {
            errors.push(src.error(
                n.span(),
                at(key),
                format!("must be between {} and {}", range.start(), range.end()),
            ));
            default
        }
        Some(n) => *n.get_ref(),
        None => default,
    };
    let max_readings = bounded(&r.max_readings, "max_readings", MAX_READINGS, 1000, errors);
    let in_flight = bounded(&r.in_flight, "in_flight", IN_FLIGHT, 256, errors);
    let queue_batches = bounded(&r.queue_batches, "queue_batches", 1..=1 << 20, 16_384, errors);
    let raw_buffer = r.buffer.clone().unwrap_or(RawNorthBuffer {
        max_bytes: default_buffer_bytes(),
        max_age: default_max_age(),
        when_full: WhenFull::default(),
        fsync: default_fsync(),
    });
    if raw_buffer.max_bytes < 1 << 20 {
        errors.push(src.error(r.points.span(), at("buffer.max_bytes"), "must be at least 1MiB"));
    }
    if raw_buffer.max_age < Duration::from_secs(60) {
        errors.push(src.error(r.points.span(), at("buffer.max_age"), "must be at least 1m"));
    }
    let sparkplug = check_sparkplug(src, i, target, r, batch, gateway_id, errors);
    if errors.len() > before {
        return None;
    }
    let fsync = match raw_buffer.fsync {
        RawFsync::Always => FsyncPolicy::Always,
        RawFsync::Never => FsyncPolicy::Never,
        RawFsync::Interval(d) => FsyncPolicy::Interval(d),
    };
    Some(NorthReadings {
        points: r.points.get_ref().clone(),
        batch,
        topic,
        interval: r.interval.map(|d| d.0),
        window,
        max_readings,
        in_flight,
        queue_batches,
        buffer: BufferConfig::new(raw_buffer.max_bytes, raw_buffer.when_full, fsync),
        max_age: raw_buffer.max_age,
        sparkplug,
    })
}

/// The Sparkplug ids of a readings publication with `encoding = "sparkplug_b"`; errors for
/// keys that do not fit the encoding.
fn check_sparkplug(
    src: &SourceText<'_>,
    i: usize,
    target: &str,
    r: &RawNorthReadings,
    batch: BatchMode,
    gateway_id: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<SparkplugIds> {
    let at = |key: &str| format!("mqtt_north[{i}].readings.{key}");
    let encoding = r.encoding.as_ref().map_or(Encoding::Json, |e| *e.get_ref());
    let here = r.encoding.as_ref().map_or_else(|| r.points.span(), Spanned::span);
    if encoding == Encoding::Json {
        for (key, v) in [("group_id", &r.group_id), ("edge_node_id", &r.edge_node_id)] {
            if let Some(v) = v {
                errors.push(src.error(
                    v.span(),
                    at(key),
                    format!("target `{target}`: `{key}` applies only with encoding = \"sparkplug_b\""),
                ));
            }
        }
        return None;
    }
    if batch != BatchMode::Poll {
        let span = r.batch.as_ref().map_or_else(|| here.clone(), Spanned::span);
        errors.push(src.error(
            span,
            at("batch"),
            format!(
                "target `{target}`: with encoding = \"sparkplug_b\" each device's poll goes as one DDATA message; \
                 remove `batch`"
            ),
        ));
    }
    if let Some(t) = &r.topic {
        errors.push(src.error(
            t.span(),
            at("topic"),
            format!(
                "target `{target}`: Sparkplug B topics are fixed (spBv1.0/<group_id>/<type>/<edge_node_id>/<device>); \
                 remove `topic`"
            ),
        ));
    }
    let group_id = match &r.group_id {
        None => {
            errors.push(src.error(
                here.clone(),
                at("group_id"),
                format!("target `{target}`: encoding = \"sparkplug_b\" needs a `group_id` (the Sparkplug group of this gateway, e.g. \"park-a\")"),
            ));
            None
        }
        Some(g) => match sparkplug_id_problem(g.get_ref()) {
            Some(p) => {
                errors.push(src.error(g.span(), at("group_id"), format!("target `{target}`: group_id {p}")));
                None
            }
            None => Some(g.get_ref().clone()),
        },
    };
    let edge_node_id = match &r.edge_node_id {
        Some(e) => match sparkplug_id_problem(e.get_ref()) {
            Some(p) => {
                errors.push(src.error(
                    e.span(),
                    at("edge_node_id"),
                    format!("target `{target}`: edge_node_id {p}"),
                ));
                None
            }
            None => Some(e.get_ref().clone()),
        },
        None => {
            match sparkplug_id_problem(gateway_id) {
                Some(p) => {
                    errors.push(src.error(
                    here,
                    at("edge_node_id"),
                    format!("target `{target}`: the edge node id defaults to the gateway id, but {p}; set `edge_node_id`"),
                ));
                    None
                }
                None => Some(gateway_id.to_string()),
            }
        }
    };
    Some(SparkplugIds {
        group_id: group_id?,
        edge_node_id: edge_node_id?,
    })
}
