//! Checks `[opcua]` and enters every declared OPC UA point into the point table. Pure: no
//! files, sockets or environment are touched (passwords, certificates and trust lists are read
//! at start).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use opcua::types::NodeId;

use super::config::{
    Auth, Deadband, EndpointSpec, ItemSpec, Mode, OpcuaSpec, PasswordSource, Policy, RawEndpoint, RawItem, RawOpcua,
    Target,
};
use crate::model::{PointMeta, PointTable};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::relative_to;

/// The device name OPC UA points carry (communication alarms, TSDB `device` tag, health).
pub fn device_of(endpoint: &str) -> String {
    format!("opcua:{endpoint}")
}

/// Validates `[opcua]`, adding declared points to `points`; every problem goes to `errors`.
pub fn validate(
    src: &SourceText<'_>,
    raw: &RawOpcua,
    hazard_sources: &HashSet<&str>,
    points: &mut PointTable,
    errors: &mut Vec<ConfigError>,
) -> OpcuaSpec {
    let mut spec = OpcuaSpec::default();
    let mut names = HashMap::new();
    for (i, e) in raw.endpoints.iter().enumerate() {
        let r = e.get_ref();
        if let Some(first) = names.insert(r.name.get_ref().clone(), i) {
            let msg = format!(
                "endpoint name `{}` is already used by opcua.endpoints[{first}]",
                r.name.get_ref()
            );
            errors.push(src.error(r.name.span(), format!("opcua.endpoints[{i}].name"), msg));
        }
        if let Some(ep) = check_endpoint(src, i, e.span(), r, errors) {
            spec.endpoints.push(ep);
        }
    }
    let mut watched = HashMap::new();
    for (i, it) in raw.points.iter().enumerate() {
        let declared = names.contains_key(it.get_ref().endpoint.get_ref());
        let item = check_item(
            src,
            i,
            it.span(),
            it.get_ref(),
            &spec,
            declared,
            hazard_sources,
            points,
            errors,
        );
        if let Some(item) = item {
            let k = (item.endpoint, item.target.to_string());
            if let Some(first) = watched.insert(k, i) {
                let msg = format!(
                    "opcua.points[{first}] already watches `{}` on this endpoint",
                    item.target
                );
                errors.push(src.error(it.span(), format!("opcua.points[{i}]"), msg));
            }
            spec.items.push(item);
        }
    }
    spec
}

fn check_endpoint(
    src: &SourceText<'_>,
    i: usize,
    span: std::ops::Range<usize>,
    r: &RawEndpoint,
    errors: &mut Vec<ConfigError>,
) -> Option<EndpointSpec> {
    let key = |f: &str| format!("opcua.endpoints[{i}].{f}");
    let before = errors.len();
    let name = r.name.get_ref();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        errors.push(src.error(
            r.name.span(),
            key("name"),
            "an endpoint name is letters, digits, `-` and `_`",
        ));
    }
    let url = r.url.get_ref();
    let host_port = url
        .strip_prefix("opc.tcp://")
        .map(|rest| rest.split('/').next().unwrap_or(""));
    let port_ok = host_port
        .and_then(|hp| hp.rsplit_once(':'))
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        let msg = format!("`{url}` is not an endpoint URL like opc.tcp://10.0.0.5:4840");
        errors.push(src.error(r.url.span(), key("url"), msg));
    }
    match (r.security_policy, r.security_mode) {
        (Policy::None, Mode::None) => {}
        (Policy::None, m) => errors.push(src.error(
            span.clone(),
            key("security_mode"),
            format!(
                "security_mode `{}` needs a security_policy (basic256sha256 or aes128_sha256_rsa_oaep)",
                m.as_str()
            ),
        )),
        (p, Mode::None) => errors.push(src.error(
            span.clone(),
            key("security_mode"),
            format!(
                "security_policy `{}` needs security_mode sign or sign_and_encrypt",
                p.as_str()
            ),
        )),
        _ => {}
    }
    let auth = match (&r.username, &r.user_certificate) {
        (None, None) => {
            if r.password_file.is_some() || r.password_env.is_some() {
                errors.push(src.error(span.clone(), key("username"), "a password needs a username"));
            }
            if r.user_key.is_some() {
                errors.push(src.error(span.clone(), key("user_key"), "user_key goes with user_certificate"));
            }
            Auth::Anonymous
        }
        (Some(u), None) => {
            let password = match (&r.password_file, &r.password_env) {
                (Some(f), None) => Some(PasswordSource::File(relative_to(src.file, f))),
                (None, Some(v)) => Some(PasswordSource::Env(v.clone())),
                (None, None) => {
                    errors.push(src.error(
                        u.span(),
                        key("password_file"),
                        "a username needs password_file or password_env",
                    ));
                    None
                }
                (Some(_), Some(_)) => {
                    errors.push(src.error(
                        u.span(),
                        key("password_file"),
                        "give password_file or password_env, not both",
                    ));
                    None
                }
            };
            match password {
                Some(password) => Auth::User {
                    name: u.get_ref().clone(),
                    password,
                },
                None => Auth::Anonymous,
            }
        }
        (None, Some(c)) => match &r.user_key {
            Some(k) => Auth::Certificate {
                cert: relative_to(src.file, c.get_ref()),
                key: relative_to(src.file, k),
            },
            None => {
                errors.push(src.error(c.span(), key("user_key"), "user_certificate needs user_key"));
                Auth::Anonymous
            }
        },
        (Some(u), Some(_)) => {
            errors.push(src.error(u.span(), key("username"), "give username or user_certificate, not both"));
            Auth::Anonymous
        }
    };
    if r.security_policy == Policy::None && matches!(auth, Auth::User { .. }) {
        // The password would cross the network readable by anyone: refuse rather than warn.
        errors.push(src.error(
            span.clone(),
            key("security_policy"),
            "a username and password need a secured endpoint (security_policy other than none)",
        ));
    }
    for (field, d, lo) in [
        ("publishing_interval", r.publishing_interval, Duration::from_millis(50)),
        ("request_timeout", r.request_timeout, Duration::from_millis(500)),
        ("reconnect_max", r.reconnect_max, Duration::from_secs(1)),
    ] {
        if d < lo || d > Duration::from_secs(3600) {
            errors.push(src.error(span.clone(), key(field), format!("{field} must be {lo:?}..1h")));
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(EndpointSpec {
        name: name.clone(),
        url: url.clone(),
        policy: r.security_policy,
        mode: r.security_mode,
        auth,
        trusted_dir: r.trusted_dir.as_ref().map(|d| relative_to(src.file, d)),
        trust_server_cert: r.trust_server_cert.as_ref().map(|f| relative_to(src.file, f)),
        publishing_interval: r.publishing_interval,
        request_timeout: r.request_timeout,
        reconnect_max: r.reconnect_max,
    })
}

/// Parses a browse path `2:Plant/2:LT101` (namespace 0 where the prefix is left out).
pub fn parse_browse_path(text: &str) -> Result<Vec<(u16, String)>, String> {
    let text = text.strip_prefix('/').unwrap_or(text);
    if text.is_empty() {
        return Err("a browse path needs at least one level, like 2:Plant/2:LT101".into());
    }
    text.split('/')
        .map(|level| {
            let (ns, name) = match level.split_once(':') {
                Some((ns, name)) if !ns.is_empty() && ns.chars().all(|c| c.is_ascii_digit()) => (
                    ns.parse::<u16>()
                        .map_err(|_| format!("namespace `{ns}` in `{level}` is over 65535"))?,
                    name,
                ),
                _ => (0, level),
            };
            if name.is_empty() {
                return Err(format!("empty browse name in `{text}`"));
            }
            Ok((ns, name.to_string()))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn check_item(
    src: &SourceText<'_>,
    i: usize,
    span: std::ops::Range<usize>,
    r: &RawItem,
    spec: &OpcuaSpec,
    declared: bool,
    hazard_sources: &HashSet<&str>,
    points: &mut PointTable,
    errors: &mut Vec<ConfigError>,
) -> Option<ItemSpec> {
    let key = |f: &str| format!("opcua.points[{i}].{f}");
    let before = errors.len();
    let endpoint = spec.endpoints.iter().position(|e| &e.name == r.endpoint.get_ref());
    // An endpoint that is declared but has errors of its own is reported once, there.
    if endpoint.is_none() && !declared {
        let known: Vec<_> = spec.endpoints.iter().map(|e| e.name.as_str()).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        let msg = format!(
            "no endpoint `{}` under [[opcua.endpoints]]; known: {known}",
            r.endpoint.get_ref()
        );
        errors.push(src.error(r.endpoint.span(), key("endpoint"), msg));
    }
    let target = match (&r.node, &r.browse_path) {
        (Some(n), None) => match NodeId::from_str(n.get_ref().trim()) {
            Ok(id) => Some(Target::Node(id)),
            Err(_) => {
                let msg = format!("`{}` is not a node id like ns=2;s=TI101.PV or ns=2;i=1001", n.get_ref());
                errors.push(src.error(n.span(), key("node"), msg));
                None
            }
        },
        (None, Some(p)) => match parse_browse_path(p.get_ref()) {
            Ok(levels) => Some(Target::Path(levels)),
            Err(e) => {
                errors.push(src.error(p.span(), key("browse_path"), e));
                None
            }
        },
        (Some(n), Some(_)) => {
            errors.push(src.error(n.span(), key("node"), "give node or browse_path, not both"));
            None
        }
        (None, None) => {
            errors.push(src.error(
                span.clone(),
                key("node"),
                "give the node id (node = \"ns=2;s=...\") or a browse_path",
            ));
            None
        }
    };
    let range = r.range.as_ref().and_then(|range| {
        let [lo, hi] = *range.get_ref();
        if lo.is_finite() && hi.is_finite() && lo < hi {
            Some((lo, hi))
        } else {
            errors.push(src.error(range.span(), key("range"), "range is [low, high] with low < high"));
            None
        }
    });
    if let Some(h) = &r.hazard_source
        && !hazard_sources.contains(h.get_ref().as_str())
    {
        let msg = format!("no hazard source `{}` is defined under [[hazard_sources]]", h.get_ref());
        errors.push(src.error(h.span(), key("hazard_source"), msg));
    }
    if let Some(d) = &r.deadband {
        match *d.get_ref() {
            Deadband::Absolute(v) if !(v.is_finite() && v >= 0.0) => {
                errors.push(src.error(d.span(), key("deadband"), "an absolute deadband is a number >= 0"));
            }
            Deadband::Percent(v) if !(v.is_finite() && (0.0..=100.0).contains(&v)) => {
                errors.push(src.error(
                    d.span(),
                    key("deadband"),
                    "a percent deadband is 0..=100 (of the node's EURange)",
                ));
            }
            _ => {}
        }
    }
    if r.queue_size == 0 || r.queue_size > 10_000 {
        errors.push(src.error(span.clone(), key("queue_size"), "queue_size must be 1..=10000"));
    }
    let sampling = match &r.sampling_interval {
        Some(s) if s.get_ref().0 > Duration::from_secs(3600) => {
            errors.push(src.error(
                s.span(),
                key("sampling_interval"),
                "sampling_interval must be at most 1h",
            ));
            None
        }
        Some(s) => Some(s.get_ref().0),
        None => None,
    };
    let name = r.point.get_ref();
    if name.is_empty() {
        errors.push(src.error(r.point.span(), key("point"), "a point id must not be empty"));
    }
    if errors.len() > before {
        return None;
    }
    let endpoint = endpoint?;
    let ep = &spec.endpoints[endpoint];
    let meta = PointMeta {
        name: Arc::from(name.as_str()),
        unit: Arc::from(r.unit.as_str()),
        kind: r.kind,
        device: Arc::from(device_of(&ep.name)),
        hazard_source: r.hazard_source.as_ref().map(|h| Arc::from(h.get_ref().as_str())),
        range,
        description: r.description.as_deref().map(Arc::from),
    };
    let Some(point) = points.insert(meta) else {
        let owner = points.id_of(name).map(|p| points.meta(p).device().to_string());
        let msg = format!("point id `{name}` is already used (by `{}`)", owner.unwrap_or_default());
        errors.push(src.error(r.point.span(), key("point"), msg));
        return None;
    };
    Some(ItemSpec {
        endpoint,
        point,
        point_name: name.clone(),
        target: target?,
        sampling_interval: sampling.unwrap_or(ep.publishing_interval),
        queue_size: r.queue_size,
        deadband: r.deadband.as_ref().map(|d| *d.get_ref()),
        range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browse_paths_take_namespace_prefixes_and_default_to_zero() {
        assert_eq!(
            parse_browse_path("2:Plant/Tank 1/3:LT101").unwrap(),
            vec![(2, "Plant".into()), (0, "Tank 1".into()), (3, "LT101".into())]
        );
        assert!(parse_browse_path("").is_err());
        assert!(parse_browse_path("2:").is_err());
        assert!(parse_browse_path("70000:x").is_err());
    }
}
