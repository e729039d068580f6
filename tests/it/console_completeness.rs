//! The completeness page (`/completeness`, `tests/browser/console_completeness.mjs`) in
//! headless Chromium: a level published once a second through a real Mosquitto with device
//! times, on an injected clock, loses its broker for a minute; a probe of a second hazard
//! source stays in comm fault after it until the next day. A day later the page, opened from the console's link,
//! shows for the day before (its default) what `/api/v1/completeness` and the daily report
//! answer: each hazard source's rates against the target, its counts, the gaps with their
//! causes, the shifts, the points of a hazard source, the 7-day chart and the day's files.
//! The API takes tokens: the page uses the one the duty officer logged in with on the console.

use std::sync::Arc;
use std::time::Duration;

use crate::console::ONE_BROWSER;
use crate::support;

use hazard_gateway::clock::ManualClock;
use hazard_gateway::model::Timestamp;
use serde_json::{Value, json};
use support::mqtt::Publisher;
use support::{Mosquitto, TestGateway, WAIT, wait_for};

/// 2026-12-07 00:00 site time (+08:00), a minute boundary.
const T0: i64 = 1_796_572_800_000;
const DAY_MS: i64 = 86_400_000;
const LEVEL: &str = "site/TT-1";
const PROBE: &str = "site/probe";
const LIMIT: Duration = Duration::from_secs(150);
const TOKEN: &str = "ledger-viewer-token-0123456789abcdef";

/// GET a JSON document from the API with the viewer's token.
async fn get(gw: &TestGateway, path: &str) -> Value {
    gw.http
        .get(format!("{}{path}", gw.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON")
}

/// The current view of one point.
async fn point(gw: &TestGateway, id: &str) -> Value {
    get(gw, "/api/v1/points")
        .await
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

fn config(broker: &Mosquitto) -> String {
    format!(
        r#"
[gateway]
id = "ledger-console"
# The scripted levels step faster than a level can move, which the suspect-data checks would
# doubt; this test follows the ledger's counts, so every reading stays good.
[alarms]
suspect_data = false
[api]
listen = "127.0.0.1:0"
[[api.tokens]]
name = "安全管理员"
role = "viewer"
hash = "{hash}"
[console]
shifts = ["08:00", "20:00"]

[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2
[[hazard_sources]]
id = "MHS-002"
name = "甲醇罐区"
level = 3

[[mqtt.brokers]]
name = "plant"
address = "{addr}"
keep_alive = "5s"
comm_grace = "1s"

[[mqtt.subscriptions]]
name = "levels"
broker = "plant"
topic = "levels/{{tag}}"
point = "site/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "%"
kind = "level"
range = [0, 100]
hazard_source = "MHS-001"
points = ["site/TT-1"]
interval = "1s"
stale_after = "1h"

[[mqtt.subscriptions]]
name = "probes"
broker = "plant"
topic = "probes/{{tag}}"
point = "site/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "%"
kind = "level"
range = [0, 100]
hazard_source = "MHS-002"
points = ["site/probe"]
interval = "1s"
stale_after = "1h"
"#,
        addr = broker.addr(),
        hash = hazard_gateway::api::auth::hash_token(TOKEN)
    )
}

/// Sends `topic` a reading at device time `T0 + secs` until point `id` shows it: the
/// subscription is live, and the repeats carry the same time, so they count once.
async fn until_received(gw: &TestGateway, p: &mut Publisher, topic: &str, id: &str, secs: i64) {
    let ts = T0 + secs * 1000;
    for _ in 0..150 {
        p.send(topic, format!(r#"{{"v": 40, "t": {ts}}}"#)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = point(gw, id).await;
        if now["ts_ms"].as_i64() == Some(ts) && now["quality"] == "good" {
            return;
        }
    }
    panic!("the gateway never received {topic} at {ts}");
}

/// Publishes the level at device times `secs` and waits until the last is its current value.
async fn publish(gw: &TestGateway, p: &mut Publisher, secs: std::ops::RangeInclusive<i64>) {
    let last = T0 + secs.end() * 1000;
    for t in secs {
        let v = 40.0 + (t % 13) as f64;
        p.send("levels/TT-1", format!(r#"{{"v": {v}, "t": {}}}"#, T0 + t * 1000))
            .await;
    }
    wait_for("the last reading processed", WAIT, || async {
        (point(gw, LEVEL).await["ts_ms"].as_i64() == Some(last)).then_some(())
    })
    .await;
}

/// A rate as the page writes it: two decimals, and a mark when under the 99.5 % target.
fn rate(v: &Value) -> String {
    let v = v.as_f64().expect("a rate");
    format!("{:.2} %{}", v * 100.0, if v >= 0.995 { "" } else { " ▼" })
}

/// Site-local (+08:00) time of day of `ms`.
fn clock_time(ms: &Value) -> String {
    let s = (ms.as_i64().expect("ms") / 1000 + 8 * 3600).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

fn figures(r: &Value) -> Vec<String> {
    vec![
        rate(&r["online_rate"]),
        rate(&r["completeness"]),
        r["expected"].to_string(),
        r["received_good"].to_string(),
        r["received_bad"].to_string(),
        r["gap_count"].to_string(),
    ]
}

fn minutes(r: &Value) -> String {
    let m = |k: &str| format!("{:.1}", r["gap_ms"][k].as_f64().unwrap_or(0.0) / 60_000.0);
    format!("{} / {} / {}", m("communication"), m("sensor_fault"), m("gateway_down"))
}

fn name(code: &str) -> String {
    match code {
        "MHS-001" => format!("液氯储罐区 · {code}"),
        "MHS-002" => format!("甲醇罐区 · {code}"),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completeness_page_shows_what_the_ledger_answers_per_hazard_source() {
    let _one = ONE_BROWSER.lock().await;
    let mut broker = Mosquitto::start();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
    let gw = TestGateway::start_with(&config(&broker), tempfile::tempdir().unwrap(), clock.clone()).await;
    let mut p = Publisher::start(broker.port, "ledger-console-publisher");
    until_received(&gw, &mut p, "probes/probe", PROBE, 0).await;
    until_received(&gw, &mut p, "levels/TT-1", LEVEL, 0).await;
    publish(&gw, &mut p, 1..=179).await;
    // The broker is away from 00:03:00 to 00:04:00; the probe sends nothing after it that day.
    clock.set(Timestamp::from_millis(T0 + 180_000));
    broker.stop();
    wait_for("both points marked comm_fault", WAIT, || async {
        (point(&gw, LEVEL).await["quality"] == "comm_fault" && point(&gw, PROBE).await["quality"] == "comm_fault")
            .then_some(())
    })
    .await;
    clock.set(Timestamp::from_millis(T0 + 240_000));
    broker.restart();
    until_received(&gw, &mut p, "levels/TT-1", LEVEL, 240).await;
    publish(&gw, &mut p, 241..=360).await;
    // The next day, ten minutes in: the page's default day is the one above.
    clock.set(Timestamp::from_millis(T0 + DAY_MS + 600_000));
    // A reading then closes the level's open minutes in history (they close as readings come).
    until_received(&gw, &mut p, "probes/probe", PROBE, DAY_MS / 1000 + 600).await;

    // Every reading counted (the open minutes close on the clock): 180 + 121.
    // The last answer is kept, so a count that never settles says what it was.
    let seen = std::sync::Mutex::new(Value::Null);
    let report = tokio::time::timeout(WAIT, async {
        loop {
            let r = get(&gw, "/api/v1/completeness/report.json").await;
            let level = r["points"]
                .as_array()
                .and_then(|p| p.iter().find(|x| x["key"] == LEVEL))
                .cloned();
            if level.is_some_and(|l| l["received_good"] == 301) {
                return r;
            }
            *seen.lock().unwrap() = r;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the readings never all counted: {:#}", seen.lock().unwrap()));
    assert_eq!(report["day"], "2026-12-07", "{report:#}");
    let level = report["points"]
        .as_array()
        .and_then(|rows| rows.iter().find(|x| x["key"] == LEVEL))
        .expect("the level's row");
    let gaps: Vec<(i64, i64, &str)> = level["gaps"]
        .as_array()
        .expect("gaps")
        .iter()
        .map(|g| {
            (
                g["start_ms"].as_i64().unwrap_or_default(),
                g["end_ms"].as_i64().unwrap_or_default(),
                g["cause"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(gaps, [(T0 + 180_000, T0 + 240_000, "communication")], "{level:#}");

    let zh_cause = |c: &Value| match c.as_str() {
        Some("communication") => "通信中断",
        Some("sensor_fault") => "传感器故障",
        Some("gateway_down") => "网关停运",
        _ => "?",
    };
    let sources: Vec<Vec<String>> = report["hazard_sources"]
        .as_array()
        .expect("hazard sources")
        .iter()
        .map(|r| {
            let key = r["key"].as_str().unwrap_or_default();
            let mut cells = vec![name(key), r["points"].to_string()];
            cells.extend(figures(r));
            cells.push(minutes(r));
            cells.push("测点".into());
            cells
        })
        .collect();
    assert_eq!(sources.len(), 2, "{report:#}");
    let source_of = |p: &str| if p == LEVEL { "MHS-001" } else { "MHS-002" };
    let mut all_gaps: Vec<(i64, String, Vec<String>)> = Vec::new();
    let mut points = Vec::new();
    for r in report["points"].as_array().expect("points") {
        let key = r["key"].as_str().unwrap_or_default();
        if key == LEVEL {
            let mut cells = vec![key.to_string()];
            cells.extend(figures(r));
            cells.push(minutes(r));
            points.push(cells);
        }
        for g in r["gaps"].as_array().expect("gaps") {
            let len = (g["end_ms"].as_i64().unwrap_or_default() - g["start_ms"].as_i64().unwrap_or_default()) / 1000;
            let length = if len >= 3600 {
                format!("{}:{:02}:{:02}", len / 3600, len % 3600 / 60, len % 60)
            } else {
                format!("{}:{:02}", len / 60, len % 60)
            };
            all_gaps.push((
                g["start_ms"].as_i64().unwrap_or_default(),
                key.to_string(),
                vec![
                    name(source_of(key)),
                    key.to_string(),
                    clock_time(&g["start_ms"]),
                    clock_time(&g["end_ms"]),
                    length,
                    zh_cause(&g["cause"]).to_string(),
                ],
            ));
        }
    }
    all_gaps.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let gaps: Vec<Vec<String>> = all_gaps.into_iter().map(|g| g.2).collect();
    let from = report["from_ms"].as_i64().expect("from");
    let shifts_api = get(
        &gw,
        &format!(
            "/api/v1/completeness?group=hazard_source&by=shift&from={from}&to={}",
            from + DAY_MS
        ),
    )
    .await;
    let shifts: Vec<Vec<String>> = shifts_api["rows"]
        .as_array()
        .expect("shift rows")
        .iter()
        .map(|r| {
            let mut cells = vec![
                r["bucket"].as_str().unwrap_or_default().to_string(),
                name(r["key"].as_str().unwrap_or_default()),
            ];
            cells.extend(figures(r));
            cells
        })
        .collect();
    // Midnight to 08:00 (the night shift begun the day before), 08:00 to 20:00, 20:00 on:
    // for each of the two hazard sources.
    assert_eq!(shifts.len(), 6, "{shifts_api:#}");
    let week = get(
        &gw,
        &format!(
            "/api/v1/completeness?group=hazard_source&by=day&from={}&to={}",
            from - 6 * DAY_MS,
            from + DAY_MS
        ),
    )
    .await;
    let last_day: Vec<f64> = week["rows"]
        .as_array()
        .expect("week rows")
        .iter()
        .filter(|r| r["bucket"] == "2026-12-07")
        .map(|r| (r["online_rate"].as_f64().unwrap_or_default() * 10_000.0).round() / 100.0)
        .collect();
    let expect = json!({
        "day": "2026-12-07",
        "sources": sources,
        "points": points,
        "gaps": gaps,
        "shifts": shifts,
        "week_last": last_day,
    });
    support::console::run_script(
        "console_completeness.mjs",
        &format!("{}/", gw.base),
        &[
            ("EXPECT", &expect.to_string()),
            ("DRILL", "MHS-001"),
            ("POINT", LEVEL),
            ("TOKEN", TOKEN),
        ],
        LIMIT,
    )
    .await;
}
