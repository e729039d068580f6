//! Which differences between the running and the new config a reload cannot apply.

use crate::config::GatewayConfig;

/// Most point names listed in one message.
const SHOWN: usize = 10;

/// Each setting that changed and needs a restart, as a message naming it.
pub(super) fn needs_restart(old: &GatewayConfig, new: &GatewayConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |changed: bool, key: &str| {
        if changed {
            out.push(format!("{key} changed: restart the gateway to apply it"));
        }
    };
    check(old.gateway_id != new.gateway_id, "gateway.id");
    check(old.data_dir != new.data_dir, "gateway.data_dir");
    check(old.api_listen != new.api_listen, "api.listen");
    check(old.api_max_body != new.api_max_body, "api.max_body");
    check(old.api_server != new.api_server, "api (tls, timeouts, header limit)");
    check(old.history != new.history, "history");
    check(old.dtu != new.dtu, "dtu (listeners and stations)");
    check(old.hazard_sources != new.hazard_sources, "hazard_sources");
    if let Some(msg) = point_changes(old, new) {
        out.push(msg);
    }
    out
}

fn point_changes(old: &GatewayConfig, new: &GatewayConfig) -> Option<String> {
    let same =
        old.points.len() == new.points.len() && old.points.iter().zip(new.points.iter()).all(|((_, a), (_, b))| a == b);
    if same {
        return None;
    }
    let names = |c: &GatewayConfig| -> Vec<String> { c.points.iter().map(|(_, m)| m.name().to_string()).collect() };
    let (before, after) = (names(old), names(new));
    let list = |v: Vec<&String>| {
        let n = v.len();
        let mut s: Vec<String> = v.into_iter().take(SHOWN).cloned().collect();
        if n > SHOWN {
            s.push(format!("and {} more", n - SHOWN));
        }
        s.join(", ")
    };
    let added: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    let removed: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", list(added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", list(removed)));
    }
    if parts.is_empty() {
        parts.push("units, kinds, ranges, devices or order changed".to_string());
    }
    Some(format!(
        "points changed ({}): restart the gateway to apply changes to the point list",
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cfg(extra: &str, listen: &str) -> GatewayConfig {
        let text = format!(
            "[gateway]\nid = \"gw\"\n[api]\nlisten = \"{listen}\"\n[[devices]]\nname = \"t1\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"127.0.0.1:502\" }}\n{extra}"
        );
        GatewayConfig::parse(Path::new("site.toml"), &text).unwrap()
    }

    #[test]
    fn device_and_rule_changes_need_no_restart() {
        let old = cfg("", "127.0.0.1:8080");
        let new = cfg(
            "interval = \"5s\"\n[[rules]]\npoints = \"t1/level\"\nthreshold = { high = 5.0 }\n",
            "127.0.0.1:8080",
        );
        assert_eq!(needs_restart(&old, &new), Vec::<String>::new());
    }

    #[test]
    fn listen_address_and_point_list_changes_are_named() {
        let old = cfg("", "127.0.0.1:8080");
        let new = cfg(
            "[[devices]]\nname = \"t2\"\nprofile = \"tank-ltp\"\ntransport = { tcp = \"127.0.0.1:503\" }\n",
            "127.0.0.1:9090",
        );
        assert_eq!(
            needs_restart(&old, &new),
            vec![
                "api.listen changed: restart the gateway to apply it".to_string(),
                "points changed (added t2/level, t2/pressure, t2/temperature): restart the gateway to apply changes to the point list"
                    .to_string(),
            ]
        );
    }
}
