//! Templated JSON encoder: each record becomes a JSON object shaped by a template the
//! platform's spec dictates (field names, constants, nesting), optionally wrapped in a batch
//! template (`{ appId = "…", serviceId = "{kind_name}", data = "{records}" }`).
//!
//! A template is a TOML value. Strings that are exactly one placeholder (`"{value}"`) become
//! typed JSON (a number, or `null` when the sensor failed); strings with text around
//! placeholders (`"T-{point_code}"`) become text; everything else is a constant.

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::Place;
use super::template::Template;
use super::{EncodeError, Encoder, Payload, RecordKind, UplinkRecord};
use crate::spec::error::ConfigError;

fn default_time_format() -> String {
    "%Y-%m-%d %H:%M:%S".into()
}

/// `encoder = { type = "json", … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonConfig {
    /// strftime format of `{time}` (default `%Y-%m-%d %H:%M:%S`), rendered in the uplink's zone.
    #[serde(default = "default_time_format")]
    pub time_format: String,
    /// Template of every record (default: a built-in one per kind).
    #[serde(default)]
    pub record: Option<toml::Value>,
    /// Per-kind templates, overriding `record`: keys `basic`, `realtime`, `statistics`, `alarm`.
    #[serde(default)]
    pub templates: BTreeMap<String, toml::Value>,
    /// Template of a payload carrying several records; `{records}` is their array.
    #[serde(default)]
    pub batch: Option<toml::Value>,
    /// Records per payload (default 1 without `batch`, 100 with it). Alarms always go one by one.
    #[serde(default)]
    pub max_records: Option<usize>,
    /// `{kind_name}` of each kind (default: `basic`, `realtime`, `minute`, `hour`, `day`, `alarm`).
    #[serde(default)]
    pub kind_names: BTreeMap<String, String>,
    /// `{status}` of each quality (`good`, `comm_fault`, `decode_error`, `out_of_range`,
    /// `stale`); default: the quality's name.
    #[serde(default)]
    pub status: BTreeMap<String, toml::Value>,
    /// Round values to this many decimals.
    #[serde(default)]
    pub decimals: Option<u32>,
}

/// Placeholders of a record template.
pub const RECORD_VARS: &[&str] = &[
    "enterprise",
    "hazard_source",
    "point_code",
    "point",
    "unit",
    "value",
    "quality",
    "status",
    "time",
    "time_ms",
    "kind",
    "kind_name",
    "min",
    "avg",
    "max",
    "count",
    "range_low",
    "range_high",
    "low_low",
    "low",
    "high",
    "high_high",
    "location",
    "equipment",
    "point_kind",
    "alarm_id",
    "alarm_level",
    "alarm_state",
    "alarm_transition",
    "alarm_priority",
    "alarm_message",
    "alarm_limit",
    "alarm_begin",
    "gateway",
    "uplink",
    "uuid",
];

/// Placeholders of a batch template.
pub const BATCH_VARS: &[&str] = &[
    "records",
    "count",
    "kind",
    "kind_name",
    "uuid",
    "time",
    "time_ms",
    "gateway",
    "uplink",
    "enterprise",
    "hazard_source",
];

const TEMPLATE_KINDS: &[&str] = &["basic", "realtime", "statistics", "alarm"];
const KIND_NAMES: &[&str] = &["basic", "realtime", "minute", "hour", "day", "alarm"];
const QUALITIES: &[&str] = &["good", "comm_fault", "decode_error", "out_of_range", "stale"];

/// A compiled template.
#[derive(Debug, Clone)]
enum Node {
    Const(Value),
    Var(String),
    Text(Template),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

fn compile(v: &toml::Value, known: &[&str], path: &str) -> Result<Node, String> {
    Ok(match v {
        toml::Value::String(s) => {
            let t = Template::parse(s).map_err(|e| format!("{path}: {e}"))?;
            t.check(known).map_err(|e| format!("{path}: {e}"))?;
            match t.whole_var() {
                Some(v) => Node::Var(v.to_string()),
                None if t.vars().next().is_none() => Node::Const(Value::String(t.render(|_| None))),
                None => Node::Text(t),
            }
        }
        toml::Value::Table(t) => Node::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), compile(v, known, &format!("{path}.{k}"))?)))
                .collect::<Result<_, String>>()?,
        ),
        toml::Value::Array(a) => Node::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| compile(v, known, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        other => Node::Const(serde_json::to_value(other).map_err(|e| format!("{path}: {e}"))?),
    })
}

fn render(node: &Node, lookup: &dyn Fn(&str) -> Value) -> Value {
    match node {
        Node::Const(v) => v.clone(),
        Node::Var(name) => lookup(name),
        Node::Text(t) => Value::String(t.render(|name| match lookup(name) {
            Value::Null => None,
            Value::String(s) => Some(Cow::Owned(s)),
            other => Some(Cow::Owned(other.to_string())),
        })),
        Node::Object(fields) => Value::Object(fields.iter().map(|(k, n)| (k.clone(), render(n, lookup))).collect()),
        Node::Array(items) => Value::Array(items.iter().map(|n| render(n, lookup)).collect()),
    }
}

fn builtin(kind: &str) -> toml::Value {
    let text = match kind {
        "basic" => {
            r#"enterprise_code = "{enterprise}"
hazard_source_code = "{hazard_source}"
point_code = "{point_code}"
point_kind = "{point_kind}"
unit = "{unit}"
range_low = "{range_low}"
range_high = "{range_high}"
low_low = "{low_low}"
low = "{low}"
high = "{high}"
high_high = "{high_high}"
location = "{location}"
equipment = "{equipment}""#
        }
        "statistics" => {
            r#"enterprise_code = "{enterprise}"
hazard_source_code = "{hazard_source}"
point_code = "{point_code}"
min = "{min}"
avg = "{avg}"
max = "{max}"
count = "{count}"
unit = "{unit}"
status = "{status}"
time = "{time}""#
        }
        "alarm" => {
            r#"enterprise_code = "{enterprise}"
hazard_source_code = "{hazard_source}"
point_code = "{point_code}"
alarm_level = "{alarm_level}"
alarm_state = "{alarm_state}"
transition = "{alarm_transition}"
value = "{value}"
limit = "{alarm_limit}"
unit = "{unit}"
begin_time = "{alarm_begin}"
time = "{time}""#
        }
        _ => {
            r#"enterprise_code = "{enterprise}"
hazard_source_code = "{hazard_source}"
point_code = "{point_code}"
value = "{value}"
unit = "{unit}"
status = "{status}"
time = "{time}""#
        }
    };
    toml::Value::Table(toml::from_str(text).unwrap_or_default())
}

fn template_kind(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Basic => "basic",
        RecordKind::Realtime => "realtime",
        RecordKind::Minute | RecordKind::Hour | RecordKind::Day => "statistics",
        RecordKind::Alarm => "alarm",
    }
}

impl JsonConfig {
    /// Checks templates, names and the time format.
    pub fn check(&mut self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        if let Some(r) = &self.record
            && let Err(e) = compile(r, RECORD_VARS, "record")
        {
            errors.push(at.error("record", e));
        }
        for (k, v) in &self.templates {
            if !TEMPLATE_KINDS.contains(&k.as_str()) {
                errors.push(at.error(
                    &format!("templates.{k}"),
                    format!("unknown record kind; known: {}", TEMPLATE_KINDS.join(", ")),
                ));
            } else if let Err(e) = compile(v, RECORD_VARS, &format!("templates.{k}")) {
                errors.push(at.error(&format!("templates.{k}"), e));
            }
        }
        if let Some(b) = &self.batch
            && let Err(e) = compile(b, BATCH_VARS, "batch")
        {
            errors.push(at.error("batch", e));
        }
        if self.max_records == Some(0) {
            errors.push(at.error("max_records", "must be at least 1"));
        }
        for k in self.kind_names.keys() {
            if !KIND_NAMES.contains(&k.as_str()) {
                errors.push(at.error(
                    &format!("kind_names.{k}"),
                    format!("unknown kind; known: {}", KIND_NAMES.join(", ")),
                ));
            }
        }
        for k in self.status.keys() {
            if !QUALITIES.contains(&k.as_str()) {
                errors.push(at.error(
                    &format!("status.{k}"),
                    format!("unknown quality; known: {}", QUALITIES.join(", ")),
                ));
            }
        }
        if self.decimals.is_some_and(|d| d > 12) {
            errors.push(at.error("decimals", "at most 12"));
        }
        let probe = jiff::Timestamp::UNIX_EPOCH.to_zoned(TimeZone::UTC);
        let mut out = String::new();
        if std::fmt::Write::write_fmt(&mut out, format_args!("{}", probe.strftime(&self.time_format))).is_err() {
            errors.push(at.error(
                "time_format",
                format!("`{}` is not a strftime format", self.time_format),
            ));
        }
    }
}

/// The templated JSON encoder of one uplink.
#[derive(Debug)]
pub struct JsonEncoder {
    uplink: String,
    gateway: String,
    zone: TimeZone,
    time_format: String,
    templates: BTreeMap<&'static str, Node>,
    batch: Option<Node>,
    max_records: usize,
    kind_names: BTreeMap<String, String>,
    status: BTreeMap<String, Value>,
    decimals: Option<u32>,
}

/// A random version-4 UUID in its text form.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl JsonEncoder {
    /// An encoder for `cfg` (checked by validation; a template that fails here is an error).
    pub fn new(cfg: &JsonConfig, uplink: &str, gateway: &str, zone: TimeZone) -> Result<Self, String> {
        let mut templates = BTreeMap::new();
        for kind in TEMPLATE_KINDS {
            let value = cfg
                .templates
                .get(*kind)
                .or(cfg.record.as_ref())
                .cloned()
                .unwrap_or_else(|| builtin(kind));
            templates.insert(*kind, compile(&value, RECORD_VARS, kind)?);
        }
        let batch = cfg
            .batch
            .as_ref()
            .map(|b| compile(b, BATCH_VARS, "batch"))
            .transpose()?;
        let max_records = cfg.max_records.unwrap_or(if batch.is_some() { 100 } else { 1 });
        Ok(Self {
            uplink: uplink.to_string(),
            gateway: gateway.to_string(),
            zone,
            time_format: cfg.time_format.clone(),
            templates,
            batch,
            max_records,
            kind_names: cfg.kind_names.clone(),
            status: cfg
                .status
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
                .collect(),
            decimals: cfg.decimals,
        })
    }

    fn kind_name(&self, kind: RecordKind) -> String {
        self.kind_names
            .get(kind.as_str())
            .cloned()
            .unwrap_or_else(|| kind.as_str().to_string())
    }

    fn num(&self, v: Option<f64>) -> Value {
        match v {
            Some(x) if x.is_finite() => {
                let x = match self.decimals {
                    Some(d) => {
                        let f = 10f64.powi(i32::try_from(d).unwrap_or(12));
                        (x * f).round() / f
                    }
                    None => x,
                };
                serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
            }
            _ => Value::Null,
        }
    }

    fn time(&self, ts: crate::model::Timestamp) -> String {
        super::time::render(ts, &self.zone, &self.time_format)
    }

    fn record_value(&self, r: &UplinkRecord, name: &str, uuid: &str) -> Value {
        let text = |s: &str| Value::String(s.to_string());
        let opt = |s: Option<&str>| s.map_or(Value::Null, text);
        let meta = r.meta.as_deref();
        let alarm = r.alarm.as_deref();
        let stats = r.stats.as_ref();
        match name {
            "enterprise" => text(&r.codes.enterprise),
            "hazard_source" => opt(r.codes.hazard_source.as_deref()),
            "point_code" => text(&r.codes.point),
            "point" => text(&r.point),
            "unit" => text(&r.unit),
            "value" => self.num(r.value),
            "quality" => text(r.quality.as_str()),
            "status" => self
                .status
                .get(r.quality.as_str())
                .cloned()
                .unwrap_or_else(|| text(r.quality.as_str())),
            "time" => Value::String(self.time(r.time)),
            "time_ms" => Value::from(r.time.as_millis()),
            "kind" => text(r.kind.as_str()),
            "kind_name" => Value::String(self.kind_name(r.kind)),
            "min" => self.num(stats.map(|s| s.min)),
            "avg" => self.num(stats.map(|s| s.avg)),
            "max" => self.num(stats.map(|s| s.max)),
            "count" => stats.map_or(Value::from(0), |s| Value::from(s.count)),
            "range_low" => self.num(meta.and_then(|m| m.range).map(|r| r.0)),
            "range_high" => self.num(meta.and_then(|m| m.range).map(|r| r.1)),
            "low_low" => self.num(meta.and_then(|m| m.low_low)),
            "low" => self.num(meta.and_then(|m| m.low)),
            "high" => self.num(meta.and_then(|m| m.high)),
            "high_high" => self.num(meta.and_then(|m| m.high_high)),
            "location" => opt(meta.and_then(|m| m.location.as_deref())),
            "equipment" => opt(meta.and_then(|m| m.equipment.as_deref())),
            "point_kind" => opt(meta.map(|m| &*m.kind)),
            "alarm_id" => opt(alarm.map(|a| a.alarm_id.as_str())),
            "alarm_level" => opt(alarm.and_then(|a| a.level).map(|l| l.as_str())),
            "alarm_state" => opt(alarm.map(|a| a.state.as_str())),
            "alarm_transition" => opt(alarm.map(|a| a.transition.as_str())),
            "alarm_priority" => opt(alarm.map(|a| a.priority.as_str())),
            "alarm_message" => alarm.map_or(Value::Null, |a| Value::String(a.message())),
            "alarm_limit" => self.num(alarm.and_then(|a| a.limit)),
            "alarm_begin" => alarm
                .and_then(|a| a.raised_at)
                .map_or(Value::Null, |t| Value::String(self.time(t))),
            "gateway" => text(&self.gateway),
            "uplink" => text(&self.uplink),
            "uuid" => text(uuid),
            _ => Value::Null,
        }
    }

    fn payload(&self, chunk: &[UplinkRecord]) -> Result<Payload, EncodeError> {
        let Some(first) = chunk.first() else {
            return Err(self.error("an empty batch", "no records".into()));
        };
        let template = &self.templates[template_kind(first.kind)];
        let payload_uuid = uuid_v4();
        let rows: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let uuid = if chunk.len() == 1 {
                    payload_uuid.clone()
                } else {
                    uuid_v4()
                };
                render(template, &|name| self.record_value(r, name, &uuid))
            })
            .collect();
        let kind_name = self.kind_name(first.kind);
        let body = match &self.batch {
            Some(batch) => {
                let records = Value::Array(rows);
                render(batch, &|name| match name {
                    "records" => records.clone(),
                    "count" => Value::from(chunk.len()),
                    "kind" => Value::String(first.kind.as_str().to_string()),
                    "kind_name" => Value::String(kind_name.clone()),
                    "uuid" => Value::String(payload_uuid.clone()),
                    "time" => Value::String(self.time(first.time)),
                    "time_ms" => Value::from(first.time.as_millis()),
                    "gateway" => Value::String(self.gateway.clone()),
                    "uplink" => Value::String(self.uplink.clone()),
                    "enterprise" => Value::String(first.codes.enterprise.to_string()),
                    "hazard_source" => first
                        .codes
                        .hazard_source
                        .as_deref()
                        .map_or(Value::Null, |h| Value::String(h.to_string())),
                    _ => Value::Null,
                })
            }
            None if rows.len() == 1 => rows.into_iter().next().unwrap_or(Value::Object(Map::new())),
            None => Value::Array(rows),
        };
        let body = serde_json::to_vec(&body).map_err(|e| self.error("a payload", e.to_string()))?;
        let mut attrs = vec![
            ("kind".to_string(), kind_name),
            ("uuid".to_string(), payload_uuid),
            ("enterprise".to_string(), first.codes.enterprise.to_string()),
        ];
        if let Some(h) = &first.codes.hazard_source {
            attrs.push(("hazard_source".into(), h.to_string()));
        }
        if chunk.len() == 1 {
            attrs.push(("point_code".into(), first.codes.point.to_string()));
        }
        Ok(Payload {
            body,
            attrs,
            items: u32::try_from(chunk.len()).unwrap_or(u32::MAX),
            urgent: first.kind == RecordKind::Alarm,
        })
    }

    fn error(&self, what: &str, reason: String) -> EncodeError {
        EncodeError {
            uplink: self.uplink.clone(),
            what: what.to_string(),
            reason,
        }
    }
}

impl Encoder for JsonEncoder {
    fn encode(&mut self, records: &[UplinkRecord]) -> Result<Vec<Payload>, EncodeError> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < records.len() {
            let kind = records[start].kind;
            let limit = if kind == RecordKind::Alarm { 1 } else { self.max_records };
            let mut end = start + 1;
            while end < records.len() && end - start < limit && records[end].kind == kind {
                end += 1;
            }
            out.push(self.payload(&records[start..end])?);
            start = end;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Quality, Timestamp};
    use crate::sinks::uplink::{Codes, Stats};

    fn rec(kind: RecordKind, value: Option<f64>, quality: Quality) -> UplinkRecord {
        UplinkRecord {
            kind,
            point: Arc::from("T1/gas"),
            codes: Codes {
                enterprise: Arc::from("E001"),
                hazard_source: Some(Arc::from("HS01")),
                point: Arc::from("GT101"),
            },
            unit: Arc::from("%LEL"),
            // 2016-08-01 00:58:57 UTC = 08:58:57 in Shanghai.
            time: Timestamp::from_millis(1_470_013_137_000),
            value,
            quality,
            stats: None,
            alarm: None,
            meta: None,
        }
    }

    fn cfg(text: &str) -> JsonConfig {
        toml::from_str(text).unwrap()
    }

    fn encoder(c: &JsonConfig) -> JsonEncoder {
        JsonEncoder::new(c, "mem", "gw-1", super::super::time::zone("Asia/Shanghai").unwrap()).unwrap()
    }

    #[test]
    fn record_template_renames_fields_types_values_and_renders_local_time() {
        let c = cfg(r#"
            record = { qybm = "{enterprise}", wh = "{point_code}", z = "{value}", zt = "{status}", sj = "{time}", src = "gw", tag = "P-{point_code}" }
            status = { good = 0, comm_fault = 1 }
        "#);
        let mut e = encoder(&c);
        let p = e
            .encode(&[rec(RecordKind::Realtime, Some(12.5), Quality::Good)])
            .unwrap();
        assert_eq!(p.len(), 1);
        let v: Value = serde_json::from_slice(&p[0].body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"qybm": "E001", "wh": "GT101", "z": 12.5, "zt": 0, "sj": "2016-08-01 08:58:57", "src": "gw", "tag": "P-GT101"})
        );
        assert_eq!(p[0].attr("point_code"), Some("GT101"));
        assert_eq!(p[0].attr("kind"), Some("realtime"));
    }

    #[test]
    fn a_failed_sensor_gets_null_and_its_fault_status_never_a_value() {
        let c = cfg(r#"status = { good = "N", comm_fault = "D" }"#);
        let mut e = encoder(&c);
        let p = e
            .encode(&[rec(RecordKind::Realtime, None, Quality::CommFault)])
            .unwrap();
        let v: Value = serde_json::from_slice(&p[0].body).unwrap();
        assert_eq!(v["value"], Value::Null);
        assert_eq!(v["status"], "D");
    }

    #[test]
    fn batch_template_wraps_records_and_splits_at_max_records() {
        let c = cfg(r#"
            batch = { appId = "A1", serviceId = "{kind_name}", dataId = "{uuid}", data = "{records}", n = "{count}" }
            max_records = 2
            kind_names = { minute = "TJSJ" }
        "#);
        let mut e = encoder(&c);
        let mut recs = Vec::new();
        for i in 0..3 {
            let mut r = rec(RecordKind::Minute, None, Quality::Good);
            r.stats = Some(Stats {
                min: 1.0,
                avg: 2.0 + f64::from(i),
                max: 3.0,
                count: 10,
            });
            recs.push(r);
        }
        let p = e.encode(&recs).unwrap();
        assert_eq!(p.iter().map(|p| p.items).collect::<Vec<_>>(), vec![2, 1]);
        let v: Value = serde_json::from_slice(&p[0].body).unwrap();
        assert_eq!(v["serviceId"], "TJSJ");
        assert_eq!(v["n"], 2);
        assert_eq!(v["data"][1]["avg"], 3.0);
        assert_eq!(v["data"][0]["count"], 10);
        assert_eq!(v["dataId"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn unknown_placeholders_are_refused_by_check() {
        let src_text = "";
        let src = crate::spec::error::SourceText::new(std::path::Path::new("c.toml"), src_text);
        let at = Place {
            src: &src,
            span: 0..0,
            key: "uplinks[0].encoder".into(),
            uplink: "mem".into(),
        };
        let mut c = cfg(r#"record = { v = "{valeu}" }"#);
        let mut errors = Vec::new();
        c.check(&at, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "uplinks[0].encoder.record");
        assert!(errors[0].message.contains("valeu"), "{}", errors[0].message);
    }
}
