//! Checks `[mqtt]` and enters every declared MQTT point into the point table. Pure: no files,
//! sockets or environment are touched (TLS files and `password_env` are read at start).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::config::{
    BrokerSpec, DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD_LIMIT, MqttInSpec, PayloadKind, Protocol, RawBroker, RawMqtt,
    RawSubscription, SubscriptionSpec, TlsSpec,
};
use super::decode::{Accept, JsonLayout, Layout, QualityField, Shape, Values};
use super::template::{PointTemplate, TopicFilter, expand};
use crate::model::{PointKind, PointMeta, PointTable};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::relative_to;
use crate::spec::units::SizeText;

/// The device name MQTT points carry (for communication alarms and the TSDB `device` tag).
pub fn device_of(subscription: &str) -> String {
    format!("mqtt:{subscription}")
}

/// The device name of a broker connection (its communication alarm is
/// `mqtt-broker:<name>:communication`).
pub fn broker_device_of(broker: &str) -> String {
    format!("mqtt-broker:{broker}")
}

struct Cx<'s, 'a> {
    src: &'s SourceText<'a>,
    errors: &'s mut Vec<ConfigError>,
}

impl Cx<'_, '_> {
    fn err(&mut self, span: std::ops::Range<usize>, key: String, msg: impl Into<String>) {
        self.errors.push(self.src.error(span, key, msg));
    }
}

/// What a subscription may refer to.
#[derive(Clone, Copy)]
struct Known<'k> {
    brokers: &'k [BrokerSpec],
    hazard_sources: &'k HashSet<&'k str>,
}

/// The smallest `max_payload`.
const MIN_PAYLOAD: u64 = 16;

/// Validates `[mqtt]`, adding declared points to `points`; every problem goes to `errors`,
/// and what starts but should be changed (a deprecated key) to `warnings`.
pub fn validate(
    src: &SourceText<'_>,
    raw: &RawMqtt,
    gateway_id: &str,
    hazard_sources: &HashSet<&str>,
    points: &mut PointTable,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> MqttInSpec {
    let mut cx = Cx { src, errors };
    let mut spec = MqttInSpec::default();
    let mut names = HashMap::new();
    let mut client_ids = HashMap::new();
    for (i, b) in raw.brokers.iter().enumerate() {
        let Some(broker) = check_broker(&mut cx, i, b.get_ref(), gateway_id) else {
            continue;
        };
        if let Some(first) = names.insert(broker.name.clone(), i) {
            let msg = format!("broker name `{}` is already used by mqtt.brokers[{first}]", broker.name);
            cx.err(b.get_ref().name.span(), format!("mqtt.brokers[{i}].name"), msg);
        }
        if let Some(first) = client_ids.insert(broker.client_id.clone(), i) {
            let msg = format!(
                "client id `{}` is already used by mqtt.brokers[{first}]; two sessions with one id keep disconnecting each other",
                broker.client_id
            );
            let raw = b.get_ref();
            let span = raw.client_id.as_ref().map_or_else(|| raw.name.span(), Spanned::span);
            cx.err(span, format!("mqtt.brokers[{i}].client_id"), msg);
        }
        spec.brokers.push(broker);
    }
    // Brokers that still set the deprecated `max_packet`, by name: (index, the key).
    let max_packets: HashMap<&str, (usize, &Spanned<SizeText>)> = raw
        .brokers
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let b = b.get_ref();
            b.max_packet.as_ref().map(|m| (b.name.get_ref().as_str(), (i, m)))
        })
        .collect();
    let mut sub_names = HashMap::new();
    for (i, s) in raw.subscriptions.iter().enumerate() {
        let r = s.get_ref();
        let name = r
            .name
            .as_ref()
            .map_or_else(|| r.topic.get_ref().clone(), |n| n.get_ref().clone());
        if let Some(first) = sub_names.insert(name.clone(), i) {
            let span = r.name.as_ref().map_or_else(|| r.topic.span(), Spanned::span);
            let msg = format!("subscription name `{name}` is already used by mqtt.subscriptions[{first}]");
            cx.err(span, format!("mqtt.subscriptions[{i}].name"), msg);
        }
        let max_packet = max_packets.get(r.broker.get_ref().as_str()).copied();
        let known = Known {
            brokers: &spec.brokers,
            hazard_sources,
        };
        if let Some(sub) = check_subscription(&mut cx, i, name, s, &known, max_packet, points) {
            spec.subscriptions.push(sub);
        }
    }
    for (broker, (b, m)) in &max_packets {
        let fed = raw
            .subscriptions
            .iter()
            .filter(|s| s.get_ref().broker.get_ref() == broker && s.get_ref().max_payload.is_none())
            .count();
        let size = m.get_ref().0;
        let capped = if size > MAX_PAYLOAD_LIMIT {
            " (capped at 1MiB, the largest max_payload)"
        } else {
            ""
        };
        let msg = format!(
            "warning: max_packet is deprecated; it is read as max_payload = \"{}\"{capped} for this broker's {fed} subscription(s) that set none: payloads over it are dropped, acknowledged and counted as `oversize`. Write max_payload in each [[mqtt.subscriptions]] instead and remove max_packet",
            size_text(size.min(MAX_PAYLOAD_LIMIT))
        );
        warnings.push(src.error(m.span(), format!("mqtt.brokers[{b}].max_packet"), msg));
    }
    spec
}

/// A byte count as a config would write it.
fn size_text(n: u64) -> String {
    if n % (1 << 20) == 0 {
        format!("{}MiB", n >> 20)
    } else if n % (1 << 10) == 0 {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

fn check_broker(cx: &mut Cx<'_, '_>, i: usize, b: &RawBroker, gateway_id: &str) -> Option<BrokerSpec> {
    let key = |f: &str| format!("mqtt.brokers[{i}].{f}");
    let name = b.name.get_ref();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        cx.err(
            b.name.span(),
            key("name"),
            "a broker name is letters, digits, `-` and `_`",
        );
    }
    let parsed = b.address.get_ref().rsplit_once(':').and_then(|(h, p)| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0 && !h.is_empty())
            .map(|p| (h.trim_matches(['[', ']']).to_string(), p))
    });
    let Some((host, port)) = parsed else {
        let msg = format!("`{}` is not host:port", b.address.get_ref());
        cx.err(b.address.span(), key("address"), msg);
        return None;
    };
    let at = |span: std::ops::Range<usize>| if span.is_empty() { b.name.span() } else { span };
    let keep_alive = b.keep_alive.get_ref().0;
    // rumqttc panics on a keep-alive under 1 s; MQTT carries it as u16 seconds.
    if keep_alive < Duration::from_secs(1) || keep_alive > Duration::from_secs(u64::from(u16::MAX)) {
        cx.err(at(b.keep_alive.span()), key("keep_alive"), "keep_alive must be 1s..18h");
    }
    if let (Some(_), Some(env)) = (&b.password, &b.password_env) {
        cx.err(
            env.span(),
            key("password_env"),
            "give password or password_env, not both",
        );
    }
    let password_span = b
        .password
        .as_ref()
        .map(Spanned::span)
        .or_else(|| b.password_env.as_ref().map(Spanned::span));
    if let Some(span) = password_span
        && b.username.is_none()
    {
        cx.err(span, key("username"), "a password needs a username");
    }
    let session_expiry = b.session_expiry.get_ref().0;
    if b.protocol == Protocol::V5
        && (session_expiry < Duration::from_secs(1) || session_expiry.as_secs() > u64::from(u32::MAX))
    {
        let msg = "session_expiry must be at least 1s (0 would end the session, and lose queued messages, at every disconnect)";
        cx.err(at(b.session_expiry.span()), key("session_expiry"), msg);
    }
    let comm_grace = b.comm_grace.get_ref().0;
    if comm_grace < Duration::from_secs(1) || comm_grace > Duration::from_secs(600) {
        cx.err(at(b.comm_grace.span()), key("comm_grace"), "comm_grace must be 1s..10m");
    }
    if let Some(m) = &b.max_packet
        && m.get_ref().0 < MIN_PAYLOAD
    {
        let msg = "max_packet (deprecated; read as max_payload) must be at least 16B";
        cx.err(m.span(), key("max_packet"), msg);
    }
    let client_id = match &b.client_id {
        Some(c) => {
            // rumqttc refuses an empty client id with a persistent session.
            if c.get_ref().is_empty() || c.get_ref().len() > 256 {
                cx.err(c.span(), key("client_id"), "a client id must be 1..=256 bytes");
            }
            c.get_ref().clone()
        }
        None => format!("{gateway_id}-in-{name}"),
    };
    let tls = b.tls.as_ref().map(|t| {
        let r = t.get_ref();
        let client = match (&r.client_cert, &r.client_key) {
            (Some(c), Some(k)) => Some((relative_to(cx.src.file, c), relative_to(cx.src.file, k))),
            (None, None) => None,
            _ => {
                cx.err(t.span(), key("tls"), "client_cert and client_key go together");
                None
            }
        };
        TlsSpec {
            ca_file: relative_to(cx.src.file, &r.ca_file),
            client,
        }
    });
    Some(BrokerSpec {
        name: name.clone(),
        host,
        port,
        protocol: b.protocol,
        client_id,
        keep_alive,
        username: b.username.clone(),
        password: b.password.as_ref().map(|p| p.get_ref().clone()),
        password_env: b.password_env.as_ref().map(|p| p.get_ref().clone()),
        tls,
        session_expiry,
        comm_grace,
    })
}

fn pointer_ok(p: &str) -> bool {
    p.is_empty() || p.starts_with('/')
}

fn check_subscription(
    cx: &mut Cx<'_, '_>,
    i: usize,
    name: String,
    s: &Spanned<RawSubscription>,
    known: &Known<'_>,
    max_packet: Option<(usize, &Spanned<SizeText>)>,
    points: &mut PointTable,
) -> Option<SubscriptionSpec> {
    let Known {
        brokers,
        hazard_sources,
    } = *known;
    let r = s.get_ref();
    let key = |f: &str| format!("mqtt.subscriptions[{i}].{f}");
    let before = cx.errors.len();
    let broker = brokers.iter().position(|b| &b.name == r.broker.get_ref());
    if broker.is_none() {
        let known: Vec<_> = brokers.iter().map(|b| b.name.as_str()).collect();
        let msg = format!(
            "no broker `{}` under [[mqtt.brokers]]; known: {}",
            r.broker.get_ref(),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        );
        cx.err(r.broker.span(), key("broker"), msg);
    }
    let filter = TopicFilter::parse(r.topic.get_ref())
        .map_err(|e| cx.err(r.topic.span(), key("topic"), e))
        .ok();
    let qos = *r.qos.get_ref();
    if qos > 1 {
        cx.err(r.qos.span(), key("qos"), format!("qos must be 0 or 1, got {qos}"));
    }
    let layout = check_layout(cx, i, r);
    let template = filter.as_ref().and_then(|f| {
        PointTemplate::parse(r.point.get_ref(), f, !r.fields.is_empty())
            .map_err(|e| cx.err(r.point.span(), key("point"), e))
            .ok()
    });
    if let Some(t) = &template
        && r.payload == PayloadKind::Text
        && t.uses_payload()
    {
        cx.err(r.point.span(), key("point"), "`{json:...}` needs a JSON payload");
    }
    if let Some(h) = &r.hazard_source
        && !hazard_sources.contains(h.get_ref().as_str())
    {
        let msg = format!("no hazard source `{}` is defined under [[hazard_sources]]", h.get_ref());
        cx.err(h.span(), key("hazard_source"), msg);
    }
    let interval = r.interval.as_ref().map_or(DEFAULT_INTERVAL, |d| {
        if d.get_ref().0 < Duration::from_millis(100) || d.get_ref().0 > Duration::from_secs(24 * 3600) {
            cx.err(d.span(), key("interval"), "interval must be 100ms..24h");
        }
        d.get_ref().0
    });
    let stale_after = r.stale_after.as_ref().map_or(interval * 3, |d| {
        check_stale(cx, d, key("stale_after"));
        d.get_ref().0
    });
    let max_payload = match (&r.max_payload, max_packet) {
        (Some(p), _) => {
            if !(MIN_PAYLOAD..=MAX_PAYLOAD_LIMIT).contains(&p.get_ref().0) {
                cx.err(p.span(), key("max_payload"), "max_payload must be 16B..1MiB");
            }
            if let Some((b, m)) = max_packet {
                let line = cx.src.line_col(p.span().start).0;
                let msg = format!(
                    "max_packet is deprecated and max_payload replaces it, but subscription `{name}` sets max_payload (line {line}) as well: remove max_packet"
                );
                cx.err(m.span(), format!("mqtt.brokers[{b}].max_packet"), msg);
            }
            p.get_ref().0
        }
        (None, Some((_, m))) => m.get_ref().0.clamp(MIN_PAYLOAD, MAX_PAYLOAD_LIMIT),
        (None, None) => DEFAULT_MAX_PAYLOAD,
    };
    let max_payload = usize::try_from(max_payload).unwrap_or(usize::MAX);
    let declared = declare_points(cx, i, &name, r, points);
    let mut point_stale_after = Vec::new();
    for (pattern, d) in &r.point_stale_after {
        let k = key(&format!("point_stale_after.\"{pattern}\""));
        check_stale(cx, d, k.clone());
        match expand(pattern) {
            Ok(ids) => {
                for id in ids {
                    if declared.iter().any(|(n, _)| *n == id) {
                        point_stale_after.push((id, d.get_ref().0));
                    } else {
                        let msg = format!("point `{id}` is not declared by this subscription's points");
                        cx.err(d.span(), k.clone(), msg);
                    }
                }
            }
            Err(e) => cx.err(d.span(), k.clone(), e),
        }
    }
    if cx.errors.len() > before {
        return None;
    }
    Some(SubscriptionSpec {
        name,
        broker: broker?,
        filter: filter?,
        qos,
        template: template?,
        layout: layout?,
        max_payload,
        interval,
        stale_after,
        point_stale_after,
        points: declared,
    })
}

/// The expected publish interval of a subscription that does not name one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

fn check_stale(cx: &mut Cx<'_, '_>, d: &Spanned<crate::spec::units::DurationText>, key: String) {
    let v = d.get_ref().0;
    if v < Duration::from_millis(100) || v > Duration::from_secs(7 * 24 * 3600) {
        cx.err(d.span(), key, "a stale limit must be at least 100ms and at most 7d");
    }
}

fn check_layout(cx: &mut Cx<'_, '_>, i: usize, r: &RawSubscription) -> Option<Layout> {
    let key = |f: &str| format!("mqtt.subscriptions[{i}].{f}");
    let pointers = [
        ("value", r.value.as_ref()),
        ("array", r.array.as_ref()),
        ("timestamp", r.timestamp.as_ref()),
    ];
    if r.payload == PayloadKind::Text {
        for (field, v) in pointers {
            if let Some(v) = v {
                cx.err(v.span(), key(field), format!("`{field}` needs payload = \"json\""));
            }
        }
        if let Some(q) = &r.quality {
            cx.err(q.span(), key("quality"), "`quality` needs payload = \"json\"");
        }
        if !r.fields.is_empty() {
            cx.err(cx_span(r), key("fields"), "`fields` needs payload = \"json\"");
        }
        if let Some(a) = &r.accept {
            cx.err(a.span(), key("accept"), "`accept` needs payload = \"json\"");
        }
        return Some(Layout::Text);
    }
    let mut ok = true;
    for (field, v) in pointers {
        if let Some(v) = v
            && !pointer_ok(v.get_ref())
        {
            cx.err(
                v.span(),
                key(field),
                format!("`{}` is not a JSON pointer (`/a/0/b`, or \"\")", v.get_ref()),
            );
            ok = false;
        }
    }
    let values = if r.fields.is_empty() {
        Values::One(r.value.as_ref().map_or_else(String::new, |v| v.get_ref().clone()))
    } else {
        if let Some(v) = &r.value {
            cx.err(v.span(), key("value"), "give value or fields, not both");
            ok = false;
        }
        let mut f = Vec::new();
        for (fname, field) in &r.fields {
            if !pointer_ok(&field.get_ref().pointer) {
                cx.err(
                    field.span(),
                    key(&format!("fields.{fname}.pointer")),
                    "not a JSON pointer (`/a/0/b`)",
                );
                ok = false;
            }
            f.push((fname.clone(), field.get_ref().pointer.clone()));
        }
        Values::Fields(f)
    };
    let quality = r.quality.as_ref().map(|q| {
        if !pointer_ok(&q.get_ref().pointer) {
            cx.err(q.span(), key("quality.pointer"), "not a JSON pointer (`/status`)");
            ok = false;
        }
        QualityField {
            pointer: q.get_ref().pointer.clone(),
            map: q.get_ref().map.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    });
    let accept = r.accept.as_ref().map_or(Accept::ALL, |a| {
        let shapes = a.get_ref();
        if shapes.is_empty() {
            cx.err(
                a.span(),
                key("accept"),
                "`accept` lists no shape, so every message would be refused; give one or more of \"number\", \"string\", \"object\", or leave it out to take all",
            );
            ok = false;
        }
        let bare = r.array.is_none() && r.fields.is_empty() && r.value.as_ref().is_none_or(|v| v.get_ref().is_empty());
        if bare && shapes.iter().all(|s| *s == Shape::Object) && !shapes.is_empty() {
            cx.err(
                a.span(),
                key("accept"),
                "`accept = [\"object\"]` needs `value`, `fields` or `array` to say where values sit in the object; without them a reading is the bare value",
            );
            ok = false;
        }
        Accept::only(shapes)
    });
    ok.then(|| {
        Layout::Json(JsonLayout {
            accept,
            array: r.array.as_ref().map(|a| a.get_ref().clone()),
            values,
            timestamp: r.timestamp.as_ref().map(|t| t.get_ref().clone()),
            timestamp_unit: r.timestamp_unit,
            quality,
        })
    })
}

fn cx_span(r: &RawSubscription) -> std::ops::Range<usize> {
    r.point.span()
}

struct MetaTemplate<'r> {
    unit: &'r str,
    kind: PointKind,
    range: Option<[f64; 2]>,
}

fn declare_points(
    cx: &mut Cx<'_, '_>,
    i: usize,
    name: &str,
    r: &RawSubscription,
    points: &mut PointTable,
) -> Vec<(String, crate::model::PointId)> {
    let base = MetaTemplate {
        unit: &r.unit,
        kind: r.kind,
        range: r.range.as_ref().map(|s| *s.get_ref()),
    };
    if let Some(range) = &r.range {
        let [lo, hi] = *range.get_ref();
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            cx.err(
                range.span(),
                format!("mqtt.subscriptions[{i}].range"),
                "range is [low, high] with low < high",
            );
        }
    }
    let mut groups: Vec<(String, MetaTemplate<'_>, &[Spanned<String>])> =
        vec![(format!("mqtt.subscriptions[{i}].points"), base, &r.points)];
    for (fname, f) in &r.fields {
        let f = f.get_ref();
        groups.push((
            format!("mqtt.subscriptions[{i}].fields.{fname}.points"),
            MetaTemplate {
                unit: f.unit.as_deref().unwrap_or(&r.unit),
                kind: f.kind.unwrap_or(r.kind),
                range: f.range.or(r.range.as_ref().map(|s| *s.get_ref())),
            },
            &f.points,
        ));
    }
    if groups.iter().all(|g| g.2.is_empty()) {
        let msg = "declare the point ids this subscription feeds: points = [\"site-a/GT-{101..140}\"] (readings of undeclared ids are counted as unknown_point and dropped)";
        cx.err(r.point.span(), format!("mqtt.subscriptions[{i}].points"), msg);
        return Vec::new();
    }
    let device: Arc<str> = Arc::from(device_of(name));
    let hazard = r.hazard_source.as_ref().map(|h| Arc::from(h.get_ref().as_str()));
    let mut out = Vec::new();
    for (key, meta, patterns) in groups {
        for pattern in patterns {
            let ids = match expand(pattern.get_ref()) {
                Ok(ids) => ids,
                Err(e) => {
                    cx.err(pattern.span(), key.clone(), e);
                    continue;
                }
            };
            for id in ids {
                if id.is_empty() {
                    cx.err(pattern.span(), key.clone(), "a point id must not be empty");
                    continue;
                }
                let m = PointMeta {
                    name: Arc::from(id.as_str()),
                    unit: Arc::from(meta.unit),
                    kind: meta.kind,
                    device: device.clone(),
                    hazard_source: hazard.clone(),
                    range: meta.range.map(|[lo, hi]| (lo, hi)),
                    description: None,
                };
                match points.insert(m) {
                    Some(pid) => out.push((id, pid)),
                    None => {
                        let owner = points.id_of(&id).map(|p| points.meta(p).device().to_string());
                        let msg = format!("point id `{id}` is already used (by `{}`)", owner.unwrap_or_default());
                        cx.err(pattern.span(), key.clone(), msg);
                    }
                }
            }
        }
    }
    out
}
