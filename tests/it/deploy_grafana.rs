//! The shipped Grafana dashboard against real gateways. Two gateways with the same device names
//! and point ids poll simulated plants with readings in %LEL, m, °C, MPa, a site unit (kPa)
//! and no unit, write to one VictoriaMetrics through their `[[tsdb]]` stores, and that
//! VictoriaMetrics scrapes their /metrics with the gateway id as a label (as in the compose
//! demo). Every panel's query from the dashboard JSON then runs against it the way Grafana's
//! Prometheus data source sends it: variables resolved with `label_values` in dashboard order,
//! `$gateway` and the others escaped and joined as Grafana does for multi-value variables,
//! repeated panels once per value, `$__interval` and `$__rate_interval` from the data source's
//! scrape interval. The answers must keep gateways apart, put each unit on its own panel with
//! the values the plants hold, show a comm fault and a suspect reading with the console's
//! names, list an alarm without a hazard source exactly as the gateway's own API lists it, and
//! offer a third gateway whose store never answers, with its backlog.

use crate::deploy_docker::{dashboard, data_panels, quality_text, read};
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use hazard_gateway::model::Quality;
use serde_json::Value;
use support::{GatewayProcess, VictoriaMetrics, WAIT, free_port, simulator, wait_for};

const GW1: &str = "park-a-gw1";
const GW2: &str = "park-a-gw2";
/// A third gateway whose store never answers: no readings arrive, its metrics are scraped.
const GW3: &str = "park-a-gw3";

/// Pinned values of the shared point ids in each plant (exact in the devices' encodings).
const GAS: [(&str, [f64; 2]); 4] = [
    ("MHS-001/GT-101", [6.25, 12.5]),
    ("MHS-001/GT-102", [30.0, 6.25]),
    ("MHS-001/GT-103", [12.5, 3.125]),
    ("MHS-001/GT-104", [3.125, 18.75]),
];
const LEVEL: [f64; 2] = [9.5, 12.0];
const TEMPERATURE: [f64; 2] = [21.5, 30.5];
/// Gateway 1's tank temperature once it jumped, faster than a tank can heat: suspect.
const JUMPED: f64 = 35.5;
const PRESSURE: [f64; 2] = [0.45, 0.6];
/// Gateway 1's differential pressure transmitter, in a unit no panel is made for.
const DP_KPA: f64 = 1.25;
/// Gateway 2's detectors outside any hazard source: GT-201 leaks, the others rest.
const LOOSE: [(&str, f64); 4] = [("GT-201", 30.0), ("GT-202", 1.25), ("GT-203", 1.25), ("GT-204", 1.25)];

/// A plant's config: the gas module and the tank on MHS-001 (`sims[0]`, `sims[1]`), then
/// gateway 1's kPa transmitter or gateway 2's detectors without a source (`sims[2]`).
fn config(id: &str, dir: &Path, port: u16, sims: &[std::net::SocketAddr], vm: &str) -> String {
    let mut c = format!(
        "[gateway]\nid = \"{id}\"\ndata_dir = \"{}\"\nprofile_dirs = [\"profiles\"]\n\
         [api]\nlisten = \"127.0.0.1:{port}\"\n\
         [[hazard_sources]]\nid = \"MHS-001\"\nname = \"tank area\"\nlevel = 2\n\
         [[devices]]\nname = \"gas-ai-1\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"200ms\"\n\
         hazard_source = \"MHS-001\"\n\
         points = {{ ch1 = \"{}\", ch2 = \"{}\", ch3 = \"{}\", ch4 = \"{}\" }}\n\
         [[devices]]\nname = \"tank-T101\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"200ms\"\n\
         hazard_source = \"MHS-001\"\n\
         points = {{ level = \"MHS-001/T101/level\", temperature = \"MHS-001/T101/temperature\", pressure = \"MHS-001/T101/pressure\" }}\n",
        dir.join(id).display(),
        sims[0],
        GAS[0].0,
        GAS[1].0,
        GAS[2].0,
        GAS[3].0,
        sims[1],
    );
    if id == GW1 {
        c += &format!(
            "[[devices]]\nname = \"dp-1\"\nprofile = \"dp-kpa\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"200ms\"\n\
             hazard_source = \"MHS-001\"\n\
             points = {{ pressure = \"MHS-001/PDT-1\", sensor_fault = \"MHS-001/PDT-1/fault\", over_pressure = \"MHS-001/PDT-1/over\" }}\n",
            sims[2]
        );
    } else {
        c += &format!(
            "[[devices]]\nname = \"gas-ai-2\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"200ms\"\n\
             points = {{ ch1 = \"{}\", ch2 = \"{}\", ch3 = \"{}\", ch4 = \"{}\" }}\n",
            sims[2], LOOSE[0].0, LOOSE[1].0, LOOSE[2].0, LOOSE[3].0
        );
    }
    c + &format!(
        "[[tsdb]]\nname = \"park-vm\"\nurl = \"{vm}\"\napi = \"v2\"\norg = \"park\"\nbucket = \"safety\"\nbatch_age = \"100ms\"\n"
    )
}

/// A variable as resolved for one evaluation: its options and what is selected.
#[derive(Debug, Clone)]
struct Var {
    multi_or_all: bool,
    all_value: Option<String>,
    options: Vec<String>,
    /// None: All.
    selected: Option<Vec<String>>,
}

/// Grafana's escape of one value of a multi-value or include-all variable in a Prometheus
/// query (a regex, inside a double-quoted PromQL string).
fn prometheus_regex_escape(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if c == '\\' {
            out.push_str("\\\\\\\\");
        } else if "$^*{}[]'+?.()|".contains(c) {
            out.push_str("\\\\");
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

impl Var {
    /// The text Grafana's Prometheus data source puts in place of `$name`; `scoped` is the one
    /// value of a repeated panel.
    fn text(&self, scoped: Option<&str>) -> String {
        if !self.multi_or_all {
            let v = scoped
                .map(str::to_string)
                .or_else(|| self.selected.as_ref()?.first().cloned());
            return v.unwrap_or_default().replace('\\', "\\\\").replace('\'', "\\\\'");
        }
        if let Some(v) = scoped {
            return prometheus_regex_escape(v);
        }
        let values = match (&self.selected, &self.all_value) {
            (None, Some(all)) => return all.clone(),
            (None, None) => self.options.clone(),
            (Some(v), _) => v.clone(),
        };
        let escaped: Vec<String> = values.iter().map(|v| prometheus_regex_escape(v)).collect();
        match escaped.as_slice() {
            [one] => one.clone(),
            _ => format!("({})", escaped.join("|")),
        }
    }

    /// `${name:regex}`: Grafana's own regex format, the same for every data source (one
    /// backslash before each special character; several values as `(a|b)`).
    fn regex(&self, scoped: Option<&str>) -> String {
        let escape = |v: &str| {
            let mut out = String::new();
            for c in v.chars() {
                if "\\^$*+?.()|[]{}/".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        };
        let values = match (scoped, &self.selected, &self.all_value) {
            (Some(v), _, _) => vec![v.to_string()],
            (None, None, Some(all)) => return all.clone(),
            (None, None, None) => self.options.clone(),
            (None, Some(v), _) => v.clone(),
        };
        match values.as_slice() {
            [one] => escape(one),
            _ => format!("({})", values.iter().map(|v| escape(v)).collect::<Vec<_>>().join("|")),
        }
    }
}

/// The data source's scrape interval (`timeInterval`), which Grafana takes as the least step.
fn scrape_interval() -> Duration {
    let text = read("deploy/docker/grafana/provisioning/datasources/datasources.yml");
    let v = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("timeInterval:"))
        .expect("the data source sets timeInterval");
    humantime::parse_duration(v.trim()).expect("timeInterval is a duration")
}

/// `expr` as Grafana sends it: variables and interval macros replaced. Panics on a variable
/// the dashboard does not define (Grafana would send it as typed, and the query would fail).
fn interpolate(expr: &str, vars: &BTreeMap<String, Var>, scoped: Option<(&str, &str)>, step: Duration) -> String {
    let scrape = scrape_interval().as_secs();
    let interval = step.as_secs();
    let rate_interval = (interval + scrape).max(4 * scrape);
    let pattern = regex::Regex::new(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)").expect("pattern");
    pattern
        .replace_all(expr, |c: &regex::Captures<'_>| {
            let name = c.get(1).or_else(|| c.get(3)).expect("name").as_str();
            let format = c.get(2).map(|f| f.as_str());
            match (name, format) {
                ("__interval", None) => format!("{interval}s"),
                ("__rate_interval", None) => format!("{rate_interval}s"),
                (_, None | Some("regex")) => {
                    let var = vars
                        .get(name)
                        .unwrap_or_else(|| panic!("`{expr}` uses ${name}, which the dashboard does not define"));
                    let scoped = scoped.filter(|(n, _)| *n == name).map(|(_, v)| v);
                    match format {
                        Some(_) => var.regex(scoped),
                        None => var.text(scoped),
                    }
                }
                (_, Some(f)) => panic!("`{expr}`: format `{f}` of ${name} is not one this test substitutes"),
            }
        })
        .into_owned()
}

/// One series of an answer: its labels and its values in time order.
#[derive(Debug, Clone)]
struct Series {
    labels: BTreeMap<String, String>,
    values: Vec<f64>,
}

impl Series {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    fn last(&self) -> f64 {
        *self.values.last().expect("a series has values")
    }
}

/// What Grafana would get for each panel: (title, repeated value) -> per query (refId, series).
type Answers = BTreeMap<(String, Option<String>), Vec<(String, Vec<Series>)>>;

struct Evaluation {
    vars: BTreeMap<String, Var>,
    panels: Answers,
}

impl Evaluation {
    /// The series of the panel whose title contains `title` (its first query, or `refId`).
    fn series(&self, title: &str, scoped: Option<&str>) -> Vec<Series> {
        self.target(title, scoped, None)
    }

    fn target(&self, title: &str, scoped: Option<&str>, ref_id: Option<&str>) -> Vec<Series> {
        let hits: Vec<_> = self
            .panels
            .iter()
            .filter(|((t, s), _)| t.contains(title) && s.as_deref() == scoped)
            .collect();
        assert_eq!(hits.len(), 1, "panels `{title}` {scoped:?}: {:?}", self.panels.keys());
        let targets = hits[0].1;
        match ref_id {
            None => targets[0].1.clone(),
            Some(r) => targets.iter().find(|(id, _)| id == r).expect("refId").1.clone(),
        }
    }

    /// (gateway, `label`) -> last value of each series of a panel.
    fn last_by(&self, title: &str, scoped: Option<&str>, label: &str) -> BTreeMap<(String, String), f64> {
        let mut out = BTreeMap::new();
        for s in self.series(title, scoped) {
            let key = (s.label("gateway").to_string(), s.label(label).to_string());
            assert!(
                out.insert(key.clone(), s.last()).is_none(),
                "{title}: two series for {key:?}"
            );
        }
        out
    }
}

struct Store<'a> {
    vm: &'a VictoriaMetrics,
    http: reqwest::Client,
    start: i64,
    end: i64,
}

impl Store<'_> {
    /// The dashboard's default range, "now-1h" to "now", aligned to the step as Grafana's
    /// Prometheus data source does (both ends rounded down to a multiple of the step).
    fn last_hour(vm: &VictoriaMetrics, now: i64) -> Store<'_> {
        let step = scrape_interval().as_secs() as i64;
        Store {
            vm,
            http: support::http_client(),
            start: (now - 3600) / step * step,
            end: now / step * step,
        }
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.vm.url()))
            .query(params)
            .send()
            .await
            .expect("VictoriaMetrics answers");
        let body: Value = resp.json().await.expect("JSON answer");
        assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
        body
    }

    /// Grafana's `label_values(selector, label)`: the label's values over the time range.
    async fn label_values(&self, selector: &str, label: &str) -> Vec<String> {
        let body = self
            .get(
                &format!("/api/v1/label/{label}/values"),
                &[
                    ("match[]", selector.to_string()),
                    ("start", self.start.to_string()),
                    ("end", self.end.to_string()),
                ],
            )
            .await;
        let mut out: Vec<String> = body["data"]
            .as_array()
            .expect("values")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    async fn query(&self, expr: &str, instant: bool, step: Duration) -> Vec<Series> {
        let body = if instant {
            self.get(
                "/api/v1/query",
                &[("query", expr.to_string()), ("time", self.end.to_string())],
            )
            .await
        } else {
            self.get(
                "/api/v1/query_range",
                &[
                    ("query", expr.to_string()),
                    ("start", self.start.to_string()),
                    ("end", self.end.to_string()),
                    ("step", format!("{}s", step.as_secs())),
                ],
            )
            .await
        };
        let number = |v: &Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok()).expect("a number");
        body["data"]["result"]
            .as_array()
            .expect("result")
            .iter()
            .map(|r| Series {
                labels: serde_json::from_value(r["metric"].clone()).expect("labels"),
                values: match r["values"].as_array() {
                    Some(vs) => vs.iter().map(number).collect(),
                    None => vec![number(&r["value"])],
                },
            })
            .collect()
    }

    /// Resolves the variables as Grafana does (in order, each with the ones before it) with
    /// `pick` selecting values (None: All), then runs every panel's queries.
    async fn evaluate(&self, dash: &Value, pick: &BTreeMap<&str, Vec<&str>>) -> Evaluation {
        let step = scrape_interval();
        let mut vars = BTreeMap::new();
        for v in dash["templating"]["list"].as_array().expect("variables") {
            let name = v["name"].as_str().expect("name").to_string();
            let query = v["query"].as_str().expect("query");
            let (selector, label) = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .and_then(|q| q.rsplit_once(','))
                .expect("label_values(selector, label)");
            let selector = interpolate(selector, &vars, None, step);
            let options = self.label_values(&selector, label.trim()).await;
            let var = Var {
                multi_or_all: v["multi"] == true || v["includeAll"] == true,
                all_value: v["allValue"].as_str().map(str::to_string),
                options,
                selected: pick
                    .get(name.as_str())
                    .map(|vs| vs.iter().map(|s| s.to_string()).collect()),
            };
            vars.insert(name, var);
        }
        let mut panels = Answers::new();
        for p in data_panels(dash) {
            let title = p["title"].as_str().expect("title").to_string();
            // A panel repeats once per selected value; with none, Grafana keeps the panel
            // once, unscoped, and the variable expands to nothing (`()` when All is empty).
            let repeats: Vec<Option<(String, String)>> = match p["repeat"].as_str() {
                Some(r) => {
                    let var = &vars[r];
                    let values = var.selected.clone().unwrap_or_else(|| var.options.clone());
                    let scoped: Vec<_> = values.into_iter().map(|v| Some((r.to_string(), v))).collect();
                    if scoped.is_empty() { vec![None] } else { scoped }
                }
                None => vec![None],
            };
            for scoped in repeats {
                let mut answers = Vec::new();
                for t in p["targets"].as_array().expect("targets") {
                    let expr = t["expr"].as_str().expect("expr");
                    let sent = interpolate(
                        expr,
                        &vars,
                        scoped.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
                        step,
                    );
                    let series = self.query(&sent, t["instant"] == true, step).await;
                    answers.push((t["refId"].as_str().unwrap_or("A").to_string(), series));
                }
                panels.insert((title.clone(), scoped.map(|(_, v)| v)), answers);
            }
        }
        Evaluation { vars, panels }
    }
}

/// An alarm as a table row: (hazard source, state, time of the transition in ms).
type Row = (String, String, i64);

/// The gateway's visible alarms (its own API): alarm id -> (row, annunciated).
async fn api_alarms(gw: &GatewayProcess) -> BTreeMap<String, (Row, bool)> {
    gw.get_json("/api/v1/alarms")
        .await
        .as_array()
        .expect("alarm list")
        .iter()
        .map(|a| {
            (
                a["alarm_id"].as_str().unwrap_or_default().to_string(),
                (
                    (
                        a["hazard_source"].as_str().unwrap_or_default().to_string(),
                        a["state"].as_str().unwrap_or_default().to_string(),
                        a["ts"].as_i64().expect("transition time") / 1_000_000,
                    ),
                    a["annunciated"] == true,
                ),
            )
        })
        .collect()
}

/// The active-alarms table as the dashboard shows it: (gateway, alarm id) -> row.
fn table_alarms(e: &Evaluation) -> BTreeMap<(String, String), Row> {
    e.series("Active alarms", None)
        .iter()
        .map(|s| {
            (
                (s.label("gateway").to_string(), s.label("alarm_id").to_string()),
                (
                    s.label("hazard_source").to_string(),
                    s.label("state").to_string(),
                    s.last().round() as i64,
                ),
            )
        })
        .collect()
}

fn assert_values(what: &str, series: &[Series], want: &BTreeMap<(String, String), f64>) {
    let got: BTreeSet<(String, String)> = series
        .iter()
        .map(|s| (s.label("gateway").to_string(), s.label("point").to_string()))
        .collect();
    assert_eq!(
        got,
        want.keys().cloned().collect(),
        "{what}: one series per gateway and point"
    );
    for s in series {
        let key = (s.label("gateway").to_string(), s.label("point").to_string());
        for v in &s.values {
            assert!(
                (v - want[&key]).abs() < 1e-6,
                "{what} {key:?}: {v}, want {}",
                want[&key]
            );
        }
    }
}

/// Wall time in Unix seconds, as Grafana's "now".
fn unix_now() -> i64 {
    hazard_gateway::clock::system().now().as_millis() / 1000
}

fn point_values(rows: &[(&str, &str, f64)]) -> BTreeMap<(String, String), f64> {
    rows.iter()
        .map(|(g, p, v)| ((g.to_string(), p.to_string()), *v))
        .collect()
}

/// The substitutions follow Grafana's Prometheus data source: regex-escaped and joined for
/// multi-value variables, verbatim for a custom All value, plain for single-value ones.
#[test]
fn variables_are_substituted_as_grafana_sends_them() {
    let var = |multi_or_all, all_value: Option<&str>, selected: Option<&[&str]>| Var {
        multi_or_all,
        all_value: all_value.map(str::to_string),
        options: vec!["gw.1".to_string(), "gw-2".to_string()],
        selected: selected.map(|s| s.iter().map(|v| v.to_string()).collect()),
    };
    let step = Duration::from_secs(10);
    let vars = BTreeMap::from([
        ("gateway".to_string(), var(true, None, None)),
        ("hazard_source".to_string(), var(true, Some(".*"), None)),
        ("one".to_string(), var(true, None, Some(&["a|b"]))),
        ("plain".to_string(), var(false, None, Some(&["it's"]))),
    ]);
    assert_eq!(
        interpolate(
            r#"x{gateway=~"$gateway", hazard_source=~"${hazard_source}|"}"#,
            &vars,
            None,
            step
        ),
        r#"x{gateway=~"(gw\\.1|gw-2)", hazard_source=~".*|"}"#
    );
    assert_eq!(interpolate("$one ${plain}", &vars, None, step), r"a\\|b it\\'s");
    assert_eq!(interpolate("${gateway:regex}", &vars, None, step), r"(gw\.1|gw-2)");
    assert_eq!(
        interpolate("$gateway", &vars, Some(("gateway", "gw.1")), step),
        r"gw\\.1"
    );
    assert_eq!(
        interpolate("rate(x[$__rate_interval]) [$__interval]", &vars, None, step),
        "rate(x[40s]) [10s]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_keeps_gateways_and_units_apart_against_real_gateways() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let transmitter = read("device-profiles/pressure-transmitter.toml");
    assert!(transmitter.contains("unit = \"MPa\""));
    std::fs::write(
        profiles.join("dp-kpa.toml"),
        transmitter.replace("unit = \"MPa\"", "unit = \"kPa\""),
    )
    .unwrap();

    // Each plant's devices, pinned before the gateways first poll them.
    let mut plants = Vec::new();
    for g in 0..2 {
        let gas = simulator("ai4-gas-lel", None).await;
        for (i, (_, values)) in GAS.iter().enumerate() {
            assert!(gas.pin(&format!("ch{}", i + 1), values[g]));
        }
        let tank = simulator("tank-ltp", None).await;
        assert!(tank.pin("level", LEVEL[g]));
        assert!(tank.pin("temperature", TEMPERATURE[g]));
        assert!(tank.pin("pressure", PRESSURE[g]));
        let third = if g == 0 {
            let dp = simulator("pressure-transmitter", None).await;
            assert!(dp.pin("pressure", DP_KPA));
            dp
        } else {
            let loose = simulator("ai4-gas-lel", None).await;
            for (i, (_, v)) in LOOSE.iter().enumerate() {
                assert!(loose.pin(&format!("ch{}", i + 1), *v));
            }
            loose
        };
        plants.push([gas, tank, third]);
    }

    let ports = [free_port(), free_port(), free_port()];
    let scrape = dir.path().join("scrape.yml");
    let mut scrape_text =
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: hazard-gateway\n    static_configs:\n"
            .to_string();
    for (id, port) in [GW1, GW2, GW3].iter().zip(ports) {
        scrape_text += &format!("      - targets: [\"127.0.0.1:{port}\"]\n        labels:\n          gateway: {id}\n");
    }
    std::fs::write(&scrape, scrape_text).unwrap();
    let vm = VictoriaMetrics::start_scraping(&scrape);

    let mut gateways = Vec::new();
    for ((id, port), plant) in [GW1, GW2].iter().zip(ports).zip(&plants) {
        let path = dir.path().join(format!("{id}.toml"));
        let addrs: Vec<_> = plant.iter().map(|s| s.local_addr()).collect();
        std::fs::write(&path, config(id, dir.path(), port, &addrs, &vm.url())).unwrap();
        gateways.push(GatewayProcess::start(&path, port).await);
    }
    // Gateway 3 polls a gas module like the others but its store's port is closed.
    let lone = simulator("ai4-gas-lel", None).await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let path = dir.path().join(format!("{GW3}.toml"));
    let text = config(GW3, dir.path(), ports[2], &[lone.local_addr(); 3], &closed);
    let gas_only = text
        .split("[[devices]]\nname = \"tank-T101\"")
        .next()
        .expect("gas device");
    let store = text.split_once("[[tsdb]]").expect("store").1;
    std::fs::write(&path, format!("{gas_only}[[tsdb]]{store}")).unwrap();
    let unreachable = GatewayProcess::start(&path, ports[2]).await;
    // Once each gateway's tank readings are in the store: gateway 2's tank transmitters lose
    // power (their readings turn comm_fault), and gateway 1's tank temperature jumps 14 °C
    // between two polls, faster than a tank heats (3.2 °C/s on its 160 °C span): suspect.
    for id in [GW1, GW2] {
        wait_for("the tank temperatures in the store", WAIT, || async {
            let selector = format!("hazard_reading_value{{gateway=\"{id}\", point=\"MHS-001/T101/temperature\"}}");
            (!vm.export(&selector).await.is_empty()).then_some(())
        })
        .await;
    }
    plants[1][1].stop();
    assert!(plants[0][1].pin("temperature", JUMPED));

    let dash = dashboard();
    let all = BTreeMap::new();
    // Polled until the store and the scrapes caught up with what the gateways report.
    let mut eval = None;
    let mut last_seen = String::new();
    let deadline = tokio::time::Instant::now() + 2 * WAIT;
    for _ in 0..600 {
        if tokio::time::Instant::now() > deadline {
            break;
        }
        let now = unix_now();
        let store = Store::last_hour(&vm, now);
        let e = store.evaluate(&dash, &all).await;
        let mut api = BTreeMap::new();
        for (id, gw) in [GW1, GW2].iter().zip(&gateways) {
            for (alarm, row) in api_alarms(gw).await {
                api.insert((id.to_string(), alarm), row);
            }
        }
        let table: BTreeMap<_, _> = api.iter().map(|(k, (row, _))| (k.clone(), row.clone())).collect();
        let annunciated = |id: &str| api.iter().filter(|((g, _), v)| g == id && v.1).count() as f64;
        let gw3_annunciated = api_alarms(&unreachable).await.values().filter(|(_, a)| *a).count() as f64;
        let online = e.last_by("Device health", None, "device");
        let counts: Vec<usize> = ["(%LEL)", "(m)", "(°C)", "(MPa)", "(no unit)", "Reading quality"]
            .iter()
            .map(|t| e.series(t, None).len())
            .chain(
                e.vars["other_unit"]
                    .options
                    .iter()
                    .map(|u| e.series("Readings in", Some(u)).len()),
            )
            .collect();
        let settled = counts == [12, 2, 2, 2, 2, 6, 1]
            && table_alarms(&e) == table
            && e.series("Points not good now", None).len() == 4
            && online.get(&(GW2.to_string(), "tank-T101".to_string())) == Some(&0.0)
            && online.len() == 7
            && e.last_by("Alarms annunciated", None, "")
                == BTreeMap::from([
                    ((GW1.to_string(), String::new()), annunciated(GW1)),
                    ((GW2.to_string(), String::new()), annunciated(GW2)),
                    ((GW3.to_string(), String::new()), gw3_annunciated),
                ]);
        if settled {
            eval = Some((e, now));
            break;
        }
        last_seen = format!(
            "series per readings panel {counts:?} (want [12, 2, 2, 2, 2, 6, 1]), alarms {:?} vs. the gateways' {table:?}, online {online:?}",
            table_alarms(&e)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let Some((e, end)) = eval else {
        panic!("the dashboard did not show what the gateways report within 60 s: {last_seen}");
    };

    // Variables: both gateways, the one hazard source, the site unit only.
    let gw = |s: &str| s.to_string();
    // Gateway 3 is there from its scraped metrics alone.
    assert_eq!(e.vars["gateway"].options, vec![gw(GW1), gw(GW2), gw(GW3)]);
    assert_eq!(e.vars["hazard_source"].options, vec![gw("MHS-001")]);
    assert_eq!(e.vars["other_unit"].options, vec![gw("kPa")]);

    // Readings: one panel per unit, one series per gateway and point, the values pinned.
    let mut lel: Vec<(&str, &str, f64)> = Vec::new();
    for (point, values) in GAS {
        lel.push((GW1, point, values[0]));
        lel.push((GW2, point, values[1]));
    }
    lel.extend(LOOSE.iter().map(|(p, v)| (GW2, *p, *v)));
    assert_values("%LEL", &e.series("(%LEL)", None), &point_values(&lel));
    for (title, point, values) in [
        ("(m)", "MHS-001/T101/level", LEVEL),
        ("(MPa)", "MHS-001/T101/pressure", PRESSURE),
    ] {
        let want = point_values(&[(GW1, point, values[0]), (GW2, point, values[1])]);
        assert_values(title, &e.series(title, None), &want);
    }
    // Gateway 1's temperature: a step's mean lies between the value before and after the jump.
    let (jumped, steady): (Vec<Series>, Vec<Series>) = e
        .series("(°C)", None)
        .into_iter()
        .partition(|s| s.label("gateway") == GW1);
    let point = "MHS-001/T101/temperature";
    assert_values("°C", &steady, &point_values(&[(GW2, point, TEMPERATURE[1])]));
    assert_eq!(jumped.len(), 1, "{jumped:?}");
    assert_eq!(jumped[0].label("point"), point);
    assert!(
        jumped[0]
            .values
            .iter()
            .all(|v| (TEMPERATURE[0] - 1e-6..=JUMPED + 1e-6).contains(v)),
        "{jumped:?}"
    );
    assert_values(
        "kPa",
        &e.series("Readings in", Some("kPa")),
        &point_values(&[(GW1, "MHS-001/PDT-1", DP_KPA)]),
    );
    assert_values(
        "no unit",
        &e.series("(no unit)", None),
        &point_values(&[(GW1, "MHS-001/PDT-1/fault", 0.0), (GW1, "MHS-001/PDT-1/over", 0.0)]),
    );
    for title in ["(%CH4)", "(ppm)", "(mm)", "(%)", "(m/s)", "(dB)"] {
        assert!(e.series(title, None).is_empty(), "{title}: no point in that unit");
    }
    // Each readings panel holds its unit only.
    let readings: BTreeSet<String> = data_panels(&dash)
        .iter()
        .filter(|p| {
            p["targets"][0]["expr"]
                .as_str()
                .is_some_and(|q| q.contains("hazard_reading_value"))
        })
        .filter_map(|p| p["title"].as_str().map(str::to_string))
        .collect();
    assert_eq!(readings.len(), 12, "{readings:?}");
    for ((title, scoped), targets) in e.panels.iter().filter(|((t, _), _)| readings.contains(t)) {
        for s in targets.iter().flat_map(|(_, s)| s) {
            if let Some(unit) = title.rsplit_once(" (").and_then(|(_, u)| u.strip_suffix(')')) {
                let unit = if unit == "no unit" { "" } else { unit };
                assert_eq!(s.label("unit"), unit, "{title}: {:?}", s.labels);
            }
            if let Some(unit) = scoped {
                assert_eq!(s.label("unit"), unit, "{title}: {:?}", s.labels);
            }
        }
    }

    // Quality: gateway 2's tank is comm_fault, everything else good, named as the console does.
    let quality = e.last_by("Reading quality per device", None, "device");
    let mut want_quality = BTreeMap::new();
    for (id, third) in [(GW1, "dp-1"), (GW2, "gas-ai-2")] {
        for device in ["gas-ai-1", "tank-T101", third] {
            want_quality.insert((gw(id), gw(device)), 0.0);
        }
    }
    let mut want_online = want_quality.clone();
    for v in want_online.values_mut() {
        *v = 1.0;
    }
    want_online.insert((gw(GW2), gw("tank-T101")), 0.0);
    want_online.insert((gw(GW3), gw("gas-ai-1")), 1.0);
    want_quality.insert((gw(GW2), gw("tank-T101")), 1.0);
    want_quality.insert((gw(GW1), gw("tank-T101")), 6.0);
    assert_eq!(quality, want_quality);
    let not_good = e.last_by("Points not good now", None, "point");
    let mut want_not_good: BTreeMap<(String, String), f64> = ["level", "temperature", "pressure"]
        .iter()
        .map(|p| ((gw(GW2), format!("MHS-001/T101/{p}")), 1.0))
        .collect();
    want_not_good.insert((gw(GW1), gw(point)), 6.0);
    assert_eq!(not_good, want_not_good);
    let panel = data_panels(&dash)
        .into_iter()
        .find(|p| p["title"].as_str().is_some_and(|t| t.contains("Points not good now")))
        .unwrap();
    let mapping = &panel["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]["options"];
    assert_eq!(
        mapping["1"]["text"].as_str(),
        Some(quality_text(Some(Quality::CommFault)).as_str())
    );
    assert_eq!(
        mapping["6"]["text"].as_str(),
        Some(quality_text(Some(Quality::Suspect)).as_str())
    );

    // Alarms: the table is the gateways' own list, with gateway 2's alarm without a source.
    let table: BTreeMap<_, _> = table_alarms(&e)
        .into_iter()
        .map(|(k, (source, state, _))| (k, (source, state)))
        .collect();
    assert_eq!(
        table.get(&(gw(GW2), gw("GT-201:high"))),
        Some(&(String::new(), gw("unack_active")))
    );
    assert_eq!(
        table.get(&(gw(GW1), gw("MHS-001/GT-102:high"))),
        Some(&(gw("MHS-001"), gw("unack_active")))
    );
    assert!(!table.contains_key(&(gw(GW2), gw("MHS-001/GT-102:high"))), "{table:?}");

    // Gateway metrics: per gateway, scraped with its id.
    let online = e.last_by("Device health", None, "device");
    assert_eq!(online, want_online);
    let stores: BTreeSet<_> = e
        .target("backlog", None, Some("A"))
        .iter()
        .chain(&e.target("backlog", None, Some("B")))
        .map(|s| (gw(s.label("gateway")), gw(s.label("store"))))
        .collect();
    assert_eq!(
        stores,
        BTreeSet::from([
            (gw(GW1), gw("park-vm")),
            (gw(GW2), gw("park-vm")),
            (gw(GW3), gw("park-vm"))
        ])
    );
    // The unreachable store's backlog shows, and its gateway nowhere among the readings.
    let pending = e.target("backlog", None, Some("A"));
    let gw3_pending: Vec<f64> = pending
        .iter()
        .filter(|s| s.label("gateway") == GW3)
        .map(Series::last)
        .collect();
    assert!(gw3_pending.len() == 1 && gw3_pending[0] > 0.0, "{pending:?}");
    assert!(
        !e.series("(%LEL)", None).iter().any(|s| s.label("gateway") == GW3),
        "gateway 3's readings never reached the store"
    );
    for s in e.series("Lines lost", None) {
        assert!(s.values.iter().all(|v| *v == 0.0), "lines lost: {:?}", s);
    }

    // One gateway and one hazard source selected: every panel answers for that gateway only,
    // and an alarm without a hazard source is still listed.
    for (id, other) in [(GW1, GW2), (GW2, GW1)] {
        let store = Store::last_hour(&vm, end);
        let pick = BTreeMap::from([("gateway", vec![id]), ("hazard_source", vec!["MHS-001"])]);
        let one = store.evaluate(&dash, &pick).await;
        let mut answered = 0;
        for ((title, _), targets) in &one.panels {
            for s in targets.iter().flat_map(|(_, s)| s) {
                assert_eq!(s.label("gateway"), id, "{title}: {:?}", s.labels);
                answered += 1;
            }
        }
        assert!(answered > 0);
        let alarm = if id == GW1 {
            "MHS-001/GT-102:high"
        } else {
            "GT-201:high"
        };
        assert!(table_alarms(&one).contains_key(&(gw(id), gw(alarm))), "{id}: {alarm}");
        let lel_points: BTreeSet<String> = one
            .series("(%LEL)", None)
            .iter()
            .map(|s| s.label("point").to_string())
            .collect();
        assert_eq!(
            lel_points,
            GAS.iter().map(|(p, _)| p.to_string()).collect(),
            "{id}: MHS-001 only"
        );
        assert_eq!(
            one.vars["gateway"].options,
            vec![gw(GW1), gw(GW2), gw(GW3)],
            "{id} besides {other}"
        );
    }

    // A park with no site-defined unit: the repeated panel stays once with the variable
    // empty, and must not show the unitless points again.
    let store = Store::last_hour(&vm, end);
    let none = store.evaluate(&dash, &BTreeMap::from([("other_unit", vec![])])).await;
    assert!(!none.series("(no unit)", None).is_empty());
    assert!(
        none.series("Readings in", None).is_empty(),
        "{:?}",
        none.series("Readings in", None)
    );

    for gw in &mut gateways {
        assert!(gw.signal_and_wait("TERM").success(), "{}", gw.stderr());
    }
}
