//! Cross-checks serde cannot make, collecting every error with its place in the file.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::bind::{ProfileDefault, bind_rules, settings};
use super::profile::{Profile, ProfileSet};
use super::raw::{RawConfig, RawDevice};
use super::transport::{check_serial_buses, check_transport};
use super::{DeviceSpec, GatewayConfig, HazardSource, HistorySettings};
use crate::api::auth::{TokenEntry, parse_hash};
use crate::model::{PointMeta, PointTable};
use crate::sources::modbus::planner::{MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, ReadLimits};
use crate::sources::modbus::register::RegisterSpec;
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::relative_to;

pub(super) fn validate(path: &Path, text: &str) -> Result<GatewayConfig, Vec<ConfigError>> {
    let src = SourceText::new(path, text);
    let raw: RawConfig = toml::from_str(text).map_err(|e| vec![src.from_toml(&e)])?;
    let mut errors = Vec::new();

    let profiles = load_profiles(&src, &raw, &mut errors);
    let api_listen = check_listen(&src, &raw, &mut errors);
    let api_tokens = check_tokens(&src, &raw, &mut errors);
    let api_server = crate::api::config::validate(
        &src,
        raw.api.tls.as_ref(),
        raw.api.header_read_timeout.as_ref(),
        raw.api.request_timeout.as_ref(),
        raw.api.max_header.as_ref(),
        &mut errors,
    );
    if raw.gateway.id.get_ref().trim().is_empty() {
        errors.push(src.error(raw.gateway.id.span(), "gateway.id", "gateway id must not be empty"));
    }
    let hazard_sources = check_hazard_sources(&src, &raw, &mut errors);
    let known_sources: HashSet<&str> = hazard_sources.iter().map(|h| h.id.as_str()).collect();

    let mut points = PointTable::default();
    let mut defaults: Vec<ProfileDefault> = Vec::new();
    let mut devices = Vec::new();
    let mut maps = HashMap::new();
    let mut device_names = HashMap::new();
    for (i, dev) in raw.devices.iter().enumerate() {
        let d = dev.get_ref();
        let name = d.name.get_ref();
        if name == crate::model::GATEWAY_SUBJECT {
            errors.push(src.error(
                d.name.span(),
                format!("devices[{i}].name"),
                format!(
                    "device name `{name}` is reserved for the gateway's own self-diagnostic alarms; choose another"
                ),
            ));
        }
        if let Some(first) = device_names.insert(name.clone(), i) {
            errors.push(src.error(
                d.name.span(),
                format!("devices[{i}].name"),
                format!("device name `{name}` is already used by devices[{first}]"),
            ));
        }
        if let Some(hs) = &d.hazard_source
            && !known_sources.contains(hs.get_ref().as_str())
        {
            errors.push(src.error(
                hs.span(),
                format!("devices[{i}].hazard_source"),
                format!(
                    "no hazard source `{}` is defined under [[hazard_sources]]",
                    hs.get_ref()
                ),
            ));
        }
        let Some(profile) = profiles.get(d.profile.get_ref()) else {
            errors.push(src.error(
                d.profile.span(),
                format!("devices[{i}].profile"),
                format!(
                    "no device profile `{}`; known profiles: {}",
                    d.profile.get_ref(),
                    profiles.names().join(", ")
                ),
            ));
            continue;
        };
        if let Some(mut spec) = build_device(&src, i, d, profile, &mut points, &mut defaults, &mut errors) {
            share_registers(&mut spec, &mut maps);
            devices.push(spec);
        }
    }

    check_serial_buses(&src, &raw, &devices, &mut errors);
    // MQTT points enter the table before history and rules, which resolve point ids.
    let mut warnings = Vec::new();
    let mqtt = crate::sources::mqtt::validate::validate(
        &src,
        &raw.mqtt,
        raw.gateway.id.get_ref(),
        &known_sources,
        &mut points,
        &mut errors,
        &mut warnings,
    );
    let opcua = crate::sources::opcua::validate::validate(&src, &raw.opcua, &known_sources, &mut points, &mut errors);
    let dtu = super::dtu::validate(&src, &raw, &devices, &mut errors);
    let mut stations = super::dtu::station_groups(&dtu, &devices);
    stations.extend(super::mqtt_station_groups(&mqtt));
    points.shrink_to_fit();
    let history = check_history(&src, &raw, &points, &mut errors);
    let journal = check_journal(&src, &raw, &mut errors);
    let rules = bind_rules(&src, &raw.rules, &raw.alarms, &points, defaults, &mut errors);
    let tsdb = check_tsdb(&src, &raw, &mut errors);
    let webhooks = crate::sinks::webhook::config::validate(&src, &raw.webhooks, &mut errors);
    let mqtt_north =
        crate::sinks::mqtt_north::config::validate(&src, &raw.mqtt_north, raw.gateway.id.get_ref(), &mut errors);
    let notify = crate::sinks::webhook::notify_config::validate_notify(&src, &raw.notify, &mut errors);
    let escalations =
        crate::sinks::webhook::notify_config::validate_escalations(&src, &raw.escalations, &webhooks, &mut errors);
    let buffers: Vec<(String, u64)> = tsdb.iter().map(|t| (t.name.clone(), t.buffer.max_bytes)).collect();
    let ops = super::ops::validate(&src, &raw.ops, &buffers, &mut errors);
    let uplinks = crate::sinks::uplink::config::validate(&src, &raw.uplinks, &points, &mut errors);
    let redundancy = raw
        .redundancy
        .as_ref()
        .and_then(|r| super::redundancy::validate(&src, r, api_listen, &|var| std::env::var(var).ok(), &mut errors));
    // Devices as `/api/v1/devices` names them: Modbus devices, MQTT broker connections, OPC UA
    // endpoints, and whatever a point is read from.
    let device_names: Vec<String> = raw
        .devices
        .iter()
        .map(|d| d.get_ref().name.get_ref().clone())
        .chain(
            mqtt.brokers
                .iter()
                .map(|b| crate::sources::mqtt::validate::broker_device_of(&b.name)),
        )
        .chain(
            opcua
                .endpoints
                .iter()
                .map(|e| crate::sources::opcua::validate::device_of(&e.name)),
        )
        .chain(points.iter().map(|(_, m)| m.device().to_string()))
        .collect();
    let labels = crate::api::labels::validate(
        &src,
        &raw.labels,
        points.iter().map(|(_, m)| &**m.name()),
        device_names.iter().map(String::as_str),
        &mut errors,
    );
    let shifts = crate::api::shifts::validate(&src, raw.console.shifts.as_ref(), &mut errors);
    let kpi = crate::kpi::config::validate(&src, &raw.kpi, &known_sources, shifts.clone(), &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut setpoints: std::collections::BTreeMap<String, Vec<crate::api::policy::SetpointView>> =
        std::collections::BTreeMap::new();
    for rule in &rules {
        if let crate::rules::RuleKind::Threshold { point, limits, .. } = &rule.kind {
            let list = setpoints.entry(points.meta(*point).name().to_string()).or_default();
            list.extend(limits.iter().map(|l| crate::api::policy::SetpointView {
                level: l.level,
                value: l.value,
                priority: l.priority,
            }));
        }
    }
    let site_names = hazard_sources
        .iter()
        .map(|h| crate::api::policy::SiteName {
            id: h.id.clone(),
            name: h.name.clone(),
            grade: h.level,
        })
        .collect();
    warnings.extend(super::transport::shared_tcp_units(&src, &raw, &devices));
    let intervals = super::ledger::expected_intervals(&points, &devices, &mqtt, &opcua);
    Ok(GatewayConfig {
        warnings,
        file: path.to_path_buf(),
        gateway_id: raw.gateway.id.get_ref().clone(),
        data_dir: raw.gateway.data_dir.as_ref().map(|d| relative_to(path, d)),
        api_listen,
        api_max_body: usize::try_from(raw.api.max_body).unwrap_or(usize::MAX),
        api_open_actions: api_listen.ip().is_loopback() || raw.api.open,
        api_tokens,
        history,
        journal,
        hazard_sources,
        points,
        devices,
        rules: rules.into(),
        alarms: crate::rules::AlarmSettings {
            stations,
            ..settings(&raw.alarms)
        },
        console: crate::api::policy::ConsolePolicy {
            hazard_sources: site_names,
            setpoints,
            labels,
            shifts,
            kpi,
            intervals,
            ..crate::api::policy::ConsolePolicy::new(&raw.console, &raw.alarms.shelving, raw.alarms.max_shelve)
        },
        profiles,
        tsdb,
        webhooks,
        notify,
        escalations,
        mqtt_north,
        ops,
        api_server,
        mqtt,
        dtu,
        uplinks,
        opcua,
        redundancy,
    })
}

fn check_journal(
    src: &SourceText<'_>,
    raw: &RawConfig,
    errors: &mut Vec<ConfigError>,
) -> crate::config::JournalSettings {
    let r = &raw.journal.retention;
    let retention = r.get_ref().0;
    if retention < crate::sinks::journal::MIN_RETENTION {
        errors.push(src.error(
            r.span(),
            "journal.retention",
            "retention must be at least 365d: regulators ask for at least one year of alarm records",
        ));
    }
    crate::config::JournalSettings { retention }
}

fn check_history(
    src: &SourceText<'_>,
    raw: &RawConfig,
    points: &PointTable,
    errors: &mut Vec<ConfigError>,
) -> HistorySettings {
    let h = &raw.history;
    let (retention, rollup, heartbeat) = (
        h.retention.get_ref().0,
        h.rollup_retention.get_ref().0,
        h.heartbeat.get_ref().0,
    );
    let mut err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        errors.push(src.error(span, format!("history.{key}"), msg));
    };
    if heartbeat < Duration::from_secs(1) {
        err(
            h.heartbeat.span(),
            "heartbeat",
            format!("heartbeat must be at least 1s, got {heartbeat:?}"),
        );
    }
    if retention < Duration::from_secs(60) || retention < heartbeat {
        err(
            h.retention.span(),
            "retention",
            format!("retention must be at least 1m and at least the heartbeat ({heartbeat:?}), got {retention:?}"),
        );
    }
    if rollup < retention {
        err(
            h.rollup_retention.span(),
            "rollup_retention",
            format!("rollup_retention ({rollup:?}) must not be shorter than the raw retention ({retention:?})"),
        );
    }
    let pct = *h.deadband_percent.get_ref();
    if !(pct.is_finite() && (0.0..=100.0).contains(&pct)) {
        err(
            h.deadband_percent.span(),
            "deadband_percent",
            format!("deadband_percent must be 0..=100, got {pct}"),
        );
    }
    if *h.queue_batches.get_ref() == 0 {
        err(
            h.queue_batches.span(),
            "queue_batches",
            "queue_batches must be at least 1".into(),
        );
    }
    let mut deadbands = Vec::new();
    for (name, band) in &h.deadbands {
        let key = format!("deadbands.\"{name}\"");
        let v = *band.get_ref();
        match points.id_of(name) {
            None => err(band.span(), &key, format!("no point `{name}` is defined by any device")),
            Some(_) if !(v.is_finite() && v >= 0.0) => {
                err(
                    band.span(),
                    &key,
                    format!("a deadband must be zero or positive, got {v}"),
                );
            }
            Some(id) => deadbands.push((id, v)),
        }
    }
    HistorySettings {
        retention,
        rollup_retention: rollup,
        heartbeat,
        deadband_percent: pct,
        deadbands,
        queue_batches: *h.queue_batches.get_ref(),
    }
}

fn check_tsdb(
    src: &SourceText<'_>,
    raw: &RawConfig,
    errors: &mut Vec<ConfigError>,
) -> Vec<crate::sinks::tsdb::TsdbSpec> {
    let mut names = HashMap::new();
    let mut out = Vec::new();
    for (i, t) in raw.tsdb.iter().enumerate() {
        let Some(mut spec) = t.validate(src, i, errors) else {
            continue;
        };
        if let Some(first) = names.insert(spec.name.clone(), i) {
            errors.push(src.error(
                t.url.span(),
                format!("tsdb[{i}].name"),
                format!("store name `{}` is already used by tsdb[{first}]", spec.name),
            ));
        }
        spec.ca_file = spec.ca_file.map(|f| relative_to(src.file, &f));
        out.push(spec);
    }
    out
}

fn load_profiles(src: &SourceText<'_>, raw: &RawConfig, errors: &mut Vec<ConfigError>) -> ProfileSet {
    let mut set = match ProfileSet::builtin() {
        Ok(s) => s,
        Err(mut e) => {
            errors.append(&mut e);
            ProfileSet::default()
        }
    };
    for (i, dir) in raw.gateway.profile_dirs.iter().enumerate() {
        let full = relative_to(src.file, dir.get_ref());
        if let Err(e) = set.load_dir(&full) {
            for err in e {
                if err.position.is_none() && err.file == full {
                    errors.push(src.error(dir.span(), format!("gateway.profile_dirs[{i}]"), err.message));
                } else {
                    errors.push(err);
                }
            }
        }
    }
    set
}

fn check_listen(src: &SourceText<'_>, raw: &RawConfig, errors: &mut Vec<ConfigError>) -> SocketAddr {
    let listen = &raw.api.listen;
    listen.get_ref().parse().unwrap_or_else(|e| {
        errors.push(src.error(
            listen.span(),
            "api.listen",
            format!("`{}` is not an ip:port address: {e}", listen.get_ref()),
        ));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    })
}

fn check_tokens(src: &SourceText<'_>, raw: &RawConfig, errors: &mut Vec<ConfigError>) -> Vec<TokenEntry> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in raw.api.tokens.iter().enumerate() {
        let tok = t.get_ref();
        if tok.name.trim().is_empty() || !names.insert(tok.name.clone()) {
            errors.push(src.error(
                t.span(),
                format!("api.tokens[{i}].name"),
                "token names must be non-empty and unique",
            ));
        }
        match parse_hash(tok.hash.get_ref()) {
            Ok(hash) => out.push(TokenEntry {
                name: tok.name.clone(),
                role: tok.role,
                hash,
            }),
            Err(msg) => errors.push(src.error(tok.hash.span(), format!("api.tokens[{i}].hash"), msg)),
        }
    }
    out
}

fn check_hazard_sources(src: &SourceText<'_>, raw: &RawConfig, errors: &mut Vec<ConfigError>) -> Vec<HazardSource> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, hs) in raw.hazard_sources.iter().enumerate() {
        let h = hs.get_ref();
        let level = *h.level.get_ref();
        if !(1..=4).contains(&level) {
            errors.push(src.error(
                h.level.span(),
                format!("hazard_sources[{i}].level"),
                format!("level must be 1..=4 (GB 18218-2018 grades), got {level}"),
            ));
        }
        if !seen.insert(h.id.get_ref().clone()) {
            errors.push(src.error(
                h.id.span(),
                format!("hazard_sources[{i}].id"),
                format!("hazard source `{}` is defined twice", h.id.get_ref()),
            ));
        }
        out.push(HazardSource {
            id: h.id.get_ref().clone(),
            name: h.name.clone(),
            level: u8::try_from(level.clamp(1, 4)).unwrap_or(4),
        });
    }
    out
}

/// The span of a key as written, or of the device's name when the key was left to its default.
pub(super) fn at_key<T>(span: std::ops::Range<usize>, name: &toml::Spanned<T>) -> std::ops::Range<usize> {
    if span.is_empty() { name.span() } else { span }
}

/// Points `spec` at an equal register map of an earlier device of its profile, if there is one:
/// the devices of a profile mostly bind the same registers, and a plant has thousands.
fn share_registers(spec: &mut DeviceSpec, maps: &mut HashMap<String, Vec<Arc<[RegisterSpec]>>>) {
    let known = maps.entry(spec.profile.clone()).or_default();
    match known.iter().find(|m| **m == spec.registers) {
        Some(m) => spec.registers = m.clone(),
        None => known.push(spec.registers.clone()),
    }
}

fn build_device(
    src: &SourceText<'_>,
    i: usize,
    d: &RawDevice,
    profile: &Profile,
    points: &mut PointTable,
    defaults: &mut Vec<ProfileDefault>,
    errors: &mut Vec<ConfigError>,
) -> Option<DeviceSpec> {
    let name = d.name.get_ref();
    let key = |field: &str| format!("devices[{i}].{field}");
    let before = errors.len();
    let transport = check_transport(src, i, d, errors);
    // Upper bounds keep a slip of the keyboard ("99999999999999h") from turning into a device
    // that is never polled again.
    for (field, dur, max, max_text) in [
        ("interval", &d.interval, Duration::from_secs(24 * 3600), "24h"),
        ("timeout", &d.timeout, Duration::from_secs(60), "60s"),
    ] {
        let v = dur.get_ref().0;
        if v < Duration::from_millis(10) || v > max {
            errors.push(src.error(
                at_key(dur.span(), &d.name),
                key(field),
                format!("{field} must be 10ms..{max_text}, got {v:?}"),
            ));
        }
    }
    let bindings: Vec<(String, String, std::ops::Range<usize>)> = match &d.points {
        Some(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone(), v.span()))
            .collect(),
        None => profile
            .points
            .iter()
            .map(|p| (p.key.clone(), format!("{name}/{}", p.key), d.name.span()))
            .collect(),
    };
    let mut bound = Vec::new();
    for (pkey, point_id, span) in bindings {
        let Some(pp) = profile.point(&pkey) else {
            let known: Vec<_> = profile.points.iter().map(|p| p.key.as_str()).collect();
            errors.push(src.error(
                span,
                key(&format!("points.{pkey}")),
                format!(
                    "profile `{}` has no point `{pkey}`; it has: {}",
                    profile.name,
                    known.join(", ")
                ),
            ));
            continue;
        };
        let meta = PointMeta {
            name: Arc::from(point_id.as_str()),
            unit: Arc::from(pp.unit.as_str()),
            kind: pp.kind,
            device: Arc::from(name.as_str()),
            hazard_source: d.hazard_source.as_ref().map(|h| Arc::from(h.get_ref().as_str())),
            range: pp.register.range,
            description: pp.description.as_deref().map(Arc::from),
        };
        let Some(id) = points.insert(meta) else {
            let owner = points.id_of(&point_id).map(|p| points.meta(p).device().to_string());
            errors.push(src.error(
                span,
                key(&format!("points.{pkey}")),
                format!(
                    "point id `{point_id}` is already used (by device `{}`)",
                    owner.unwrap_or_default()
                ),
            ));
            continue;
        };
        if let Some(sp) = &pp.setpoints {
            defaults.push(ProfileDefault {
                point: id,
                profile: profile.name.clone(),
                setpoints: sp.clone(),
            });
        }
        let mut register = pp.register;
        if !pp.word_order_fixed
            && let Some(order) = d.word_order
        {
            register.word_order = order;
        }
        if let Some(order) = d.point_word_order.get(&pkey) {
            register.word_order = *order.get_ref();
        }
        bound.push((id, register));
    }
    for (pkey, order) in &d.point_word_order {
        if profile.point(pkey).is_none() {
            errors.push(src.error(
                order.span(),
                key(&format!("point_word_order.{pkey}")),
                format!("profile `{}` has no point `{pkey}`", profile.name),
            ));
        }
    }
    // A limit the device does not set comes from the profile: its errors point at the name.
    let limit_span = |l: &Option<toml::Spanned<u16>>| l.as_ref().map_or_else(|| d.name.span(), toml::Spanned::span);
    let max_registers = d
        .max_registers
        .as_ref()
        .map_or(profile.limits.max_registers, |m| *m.get_ref());
    if max_registers == 0 || max_registers > MAX_REGISTERS_PER_READ {
        errors.push(src.error(
            limit_span(&d.max_registers),
            key("max_registers"),
            format!("max_registers must be 1..={MAX_REGISTERS_PER_READ}, got {max_registers}"),
        ));
    }
    let max_bits = d.max_bits.as_ref().map_or(profile.limits.max_bits, |m| *m.get_ref());
    if max_bits == 0 || max_bits > MAX_BITS_PER_READ {
        errors.push(src.error(
            limit_span(&d.max_bits),
            key("max_bits"),
            format!("max_bits must be 1..={MAX_BITS_PER_READ}, got {max_bits}"),
        ));
    }
    let limits = ReadLimits {
        max_registers,
        max_bits,
        max_gap: d.max_gap.unwrap_or(profile.limits.max_gap),
    };
    for (pid, r) in &bound {
        if u32::from(r.data_type.word_count()) > limits.max_items(r.function) {
            errors.push(src.error(
                limit_span(&d.max_registers),
                key("max_registers"),
                format!(
                    "point `{}` ({} of {} registers) does not fit in one read of {max_registers} registers",
                    points.meta(*pid).name(),
                    r.data_type.as_str(),
                    r.data_type.word_count()
                ),
            ));
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(DeviceSpec {
        name: name.clone(),
        profile: profile.name.clone(),
        transport: transport?,
        unit_id: *d.unit_id.get_ref(),
        interval: d.interval.get_ref().0,
        timeout: d.timeout.get_ref().0,
        retries: d.retries,
        inter_request_delay: d.inter_request_delay,
        limits,
        points: bound.iter().map(|(id, _)| *id).collect(),
        registers: bound.into_iter().map(|(_, r)| r).collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::GatewayConfig;

    fn open_actions(api: &str) -> bool {
        let text = format!("[gateway]\nid = \"gw\"\n[api]\n{api}\n");
        GatewayConfig::parse(Path::new("t.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}"))
            .api_open_actions
    }

    #[test]
    fn devices_of_a_profile_with_the_same_registers_share_one_map() {
        let device = |name: &str, port: u16, points: &str, extra: &str| {
            format!(
                "[[devices]]\nname = \"{name}\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"127.0.0.1:{port}\" }}\npoints = {{ {points} }}\n{extra}\n"
            )
        };
        let text = [
            "[gateway]\nid = \"gw\"\n".to_string(),
            device("a", 502, "ch1 = \"a1\", ch2 = \"a2\"", ""),
            device("b", 503, "ch1 = \"b1\", ch2 = \"b2\"", ""),
            device("c", 504, "ch1 = \"c1\"", ""),
            device("d", 505, "ch1 = \"d1\", ch2 = \"d2\"", "word_order = \"CDAB\""),
        ]
        .concat();
        let cfg = GatewayConfig::parse(Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
        let [a, b, c, d] = &cfg.devices[..] else {
            panic!("{:?}", cfg.devices)
        };
        assert!(std::sync::Arc::ptr_eq(&a.registers, &b.registers));
        assert!(!std::sync::Arc::ptr_eq(&a.registers, &c.registers) && c.registers.len() == 1);
        // Each device still feeds its own points from the shared map.
        let names = |dev: &crate::sources::modbus::spec::DeviceSpec| -> Vec<String> {
            dev.points
                .iter()
                .map(|p| cfg.points.meta(*p).name().to_string())
                .collect()
        };
        assert_eq!(
            (names(a), names(b)),
            (vec!["a1".into(), "a2".into()], vec!["b1".into(), "b2".into()])
        );
        // A device that reads its words in another order has a map of its own, if the
        // profile lets it.
        assert_eq!(
            std::sync::Arc::ptr_eq(&a.registers, &d.registers),
            a.registers == d.registers
        );
    }

    #[test]
    fn without_tokens_only_loopback_or_a_declared_open_api_lets_anyone_act() {
        assert!(open_actions("listen = \"127.0.0.1:8080\""));
        assert!(open_actions("listen = \"[::1]:8080\""));
        assert!(!open_actions("listen = \"0.0.0.0:8080\""));
        assert!(!open_actions("listen = \"192.168.10.5:8080\""));
        assert!(open_actions("listen = \"0.0.0.0:8080\"\nopen = true"));
    }
}
