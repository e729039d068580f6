//! Alarm KPIs through the real journal and API: a scripted week of transitions is written with
//! `AlarmJournal::append` into a data dir, a gateway is started on it, and the JSON figures,
//! the CSV export and the HTML report (both languages) are checked exactly.

use crate::support;

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hazard_gateway::clock::ManualClock;
use hazard_gateway::model::{
    AlarmClass, AlarmEvent, AlarmState, ConditionKind, Priority, SubjectKind, Timestamp, Transition,
};
use hazard_gateway::sinks::journal::AlarmJournal;
use support::TestGateway;

/// 2026-12-07 00:00:00 +08:00: Monday of ISO week 2026-W50.
const MONDAY: i64 = 1_796_572_800_000;
const DAY_S: f64 = 86_400.0;
const S: i64 = 1000;
const WEEK_S: i64 = 7 * 86_400;

const CONFIG: &str = r#"
[gateway]
id = "kpi-gw"
[api]
listen = "127.0.0.1:0"
[console]
shifts = ["08:00", "20:00"]
[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2
[[hazard_sources]]
id = "MHS-002"
name = "液化烃罐区"
level = 1
[kpi]
default_position = "二号岗"
[[kpi.positions]]
name = "中控室一"
hazard_sources = ["MHS-001"]
"#;

/// Transitions as the rules engine journals them, each with the alarm's whole state after it.
#[derive(Default)]
struct Script {
    events: Vec<AlarmEvent>,
    last: HashMap<String, AlarmEvent>,
}

impl Script {
    fn alarm(&mut self, id: &str, hazard_source: &str, priority: Priority) {
        let e = AlarmEvent {
            seq: 0,
            alarm_id: id.to_string(),
            rule: "scripted".into(),
            subject: format!("{id}-subject"),
            subject_kind: SubjectKind::Point,
            hazard_source: Some(hazard_source.to_string()),
            condition: ConditionKind::Threshold,
            class: AlarmClass::Process,
            level: None,
            priority,
            transition: Transition::Cleared,
            state: AlarmState::Normal,
            acknowledged: true,
            latching: false,
            shelved_until: None,
            suppressed: false,
            out_of_service: false,
            value: f64::NAN,
            limit: None,
            unit: String::new(),
            ts: Timestamp::default(),
            raised_at: None,
            user: None,
            comment: None,
            category: None,
            predicted_at: None,
        };
        self.last.insert(id.to_string(), e);
    }

    fn step(&mut self, id: &str, s: f64, t: Transition, change: impl FnOnce(&mut AlarmEvent)) {
        let mut e = self.last[id].clone();
        e.ts = Timestamp::from_millis(MONDAY + (s * 1000.0).round() as i64);
        e.transition = t;
        change(&mut e);
        self.last.insert(id.to_string(), e.clone());
        self.events.push(e);
    }

    fn raise(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Raised, |e| {
            e.state = AlarmState::UnackActive;
            e.acknowledged = false;
            e.raised_at = Some(e.ts);
        });
    }

    fn clear(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Cleared, |e| {
            e.state = if e.acknowledged {
                AlarmState::Normal
            } else {
                AlarmState::UnackRtn
            };
            if e.acknowledged {
                e.raised_at = None;
            }
        });
    }

    fn ack(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Acknowledged, |e| {
            e.acknowledged = true;
            e.user = Some("值班员张三".into());
            if e.state == AlarmState::UnackRtn {
                e.state = AlarmState::Normal;
                e.raised_at = None;
            } else {
                e.state = AlarmState::AckActive;
            }
        });
    }
}

/// A week: Monday's flood (12 alarms 20 s apart from 01:00), Tuesday's chattering alarm (3
/// raises in 50 s), Wednesday's alarm shelved 30 minutes, Thursday's fleeting one (900 ms, never
/// acknowledged) and Saturday's alarm raised at 18:00, still active 30 h later (stale).
fn week() -> Vec<AlarmEvent> {
    let mut s = Script::default();
    for i in 1..=12 {
        let p = match i {
            11 => Priority::Medium,
            12 => Priority::High,
            _ => Priority::Low,
        };
        s.alarm(&format!("F{i:02}"), "MHS-001", p);
    }
    s.alarm("C", "MHS-002", Priority::Low);
    s.alarm("E", "MHS-002", Priority::Critical);
    s.alarm("H", "MHS-002", Priority::Medium);
    s.alarm("S", "MHS-002", Priority::High);
    for i in 0..12 {
        s.raise(&format!("F{:02}", i + 1), 3600.0 + 20.0 * f64::from(i));
    }
    for i in 1..=12 {
        s.ack(&format!("F{i:02}"), 3900.0);
    }
    for i in 1..=12 {
        s.clear(&format!("F{i:02}"), 4000.0);
    }
    let tue = DAY_S + 7200.0;
    s.raise("C", tue);
    s.clear("C", tue + 10.0);
    s.raise("C", tue + 25.0);
    s.clear("C", tue + 35.0);
    s.raise("C", tue + 50.0);
    s.clear("C", tue + 60.0);
    s.ack("C", tue + 100.0);
    let wed = 2.0 * DAY_S + 36_000.0;
    s.raise("H", wed);
    s.step("H", wed + 100.0, Transition::Shelved, |e| {
        e.shelved_until = Some(e.ts.plus(Duration::from_secs(3600)));
    });
    s.step("H", wed + 1900.0, Transition::Unshelved, |e| e.shelved_until = None);
    s.ack("H", wed + 2000.0);
    s.clear("H", wed + 2100.0);
    let thu = 3.0 * DAY_S + 43_200.0;
    s.raise("E", thu);
    s.clear("E", thu + 0.9);
    s.raise("S", 5.0 * DAY_S + 64_800.0);
    s.events
}

async fn gateway() -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = AlarmJournal::open(&dir.path().join("alarms.db")).unwrap();
        let mut events = week();
        journal.append(&mut events, &[]).unwrap();
    }
    // The gateway runs a day after the week, so its own transitions fall outside it.
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(MONDAY + 8 * 86_400 * S)));
    TestGateway::start_with(CONFIG, dir, clock).await
}

async fn get(gw: &TestGateway, path: &str) -> (u16, String, Vec<u8>) {
    let resp = gw
        .http
        .get(format!("{}{path}", gw.base))
        .send()
        .await
        .expect("API answers");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, resp.bytes().await.expect("body").to_vec())
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_week_s_kpis_are_exact_in_json() {
    let gw = gateway().await;
    let r = gw.get_json("/api/v1/kpi?week=2026-W50").await;
    assert_eq!(r["from_ms"], MONDAY);
    assert_eq!(r["to_ms"], MONDAY + WEEK_S * S);
    assert_eq!(r["from_local"], "2026-12-07 00:00:00");
    assert_eq!(r["utc_offset"], "+08:00");
    let site = &r["site"];

    let rate = &site["rate"];
    assert_eq!(rate["raises"], 18);
    assert_eq!(rate["intervals"], 7 * 144);
    assert_eq!(f(&rate["average_per_10min"]["value"]), 18.0 * 600.0 / 604_800.0);
    assert_eq!(rate["average_per_10min"]["verdict"], "acceptable");
    assert_eq!(rate["average_per_10min"]["manageable"], 2.0);
    assert_eq!(rate["peak_per_10min"]["value"], 12.0);
    assert_eq!(rate["peak_per_10min"]["verdict"], "over");
    assert_eq!(rate["peak_sliding_10min"], 12);
    assert_eq!(f(&rate["pct_intervals_over_1"]), 2.0 * 100.0 / 1008.0);

    let flood = &site["flood"];
    assert_eq!(flood["periods"].as_array().unwrap().len(), 1, "{flood:#}");
    let p = &flood["periods"][0];
    assert_eq!(
        (p["start_ms"].as_i64(), p["end_ms"].as_i64()),
        (Some(MONDAY + 3800 * S), Some(MONDAY + 4340 * S))
    );
    assert_eq!(
        (p["start_local"].as_str(), p["end_local"].as_str()),
        (Some("2026-12-07 01:03:20"), Some("2026-12-07 01:12:20"))
    );
    assert_eq!(
        (p["raises"].as_u64(), p["peak_10min"].as_u64(), p["ongoing"].as_bool()),
        (Some(2), Some(12), Some(false))
    );
    assert_eq!(flood["time_in_flood_ms"], 540 * S);
    assert_eq!(f(&flood["pct_time_in_flood"]["value"]), 540.0 * 100.0 / 604_800.0);
    assert_eq!(flood["pct_time_in_flood"]["verdict"], "acceptable");

    let top = site["bad_actors"]["top"].as_array().unwrap();
    let ids: Vec<(&str, u64)> = top
        .iter()
        .map(|a| (a["alarm_id"].as_str().unwrap(), a["raises"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("C", 3),
            ("E", 1),
            ("F01", 1),
            ("F02", 1),
            ("F03", 1),
            ("F04", 1),
            ("F05", 1),
            ("F06", 1),
            ("F07", 1),
            ("F08", 1)
        ]
    );
    assert_eq!(f(&site["bad_actors"]["top_share_pct"]["value"]), 12.0 * 100.0 / 18.0);
    assert_eq!(site["bad_actors"]["top_share_pct"]["verdict"], "over");

    assert_eq!(
        site["chattering"]["alarms"],
        serde_json::json!([{"alarm_id": "C", "episodes": 1, "max_in_60s": 3, "raises": 3}])
    );
    assert_eq!(
        site["fleeting"]["alarms"],
        serde_json::json!([{"alarm_id": "E", "activations": 1, "shortest_ms": 900}])
    );
    let stale = site["stale"]["alarms"].as_array().unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["alarm_id"], "S");
    assert_eq!(stale[0]["age_ms"], 30 * 3600 * S);
    assert_eq!(stale[0]["since_local"], "2026-12-12 18:00:00");
    assert_eq!(stale[0]["ongoing"], true);
    assert_eq!(site["stale"]["count"]["verdict"], "acceptable");
    assert_eq!(site["standing"].as_array().unwrap().len(), 1);
    assert_eq!(
        site["shelved"],
        serde_json::json!({"count": 1, "duration_ms": 1800 * S})
    );
    assert_eq!(
        site["out_of_service"],
        serde_json::json!({"count": 0, "duration_ms": 0})
    );

    let counts: Vec<(String, u64)> = site["priorities"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["priority"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("low".into(), 13),
            ("medium".into(), 2),
            ("high".into(), 2),
            ("critical".into(), 1)
        ]
    );
    assert_eq!(f(&site["priorities"]["high_pct"]["value"]), 3.0 * 100.0 / 18.0);
    assert_eq!(site["priorities"]["high_pct"]["verdict"], "over");
    assert_eq!(
        site["acknowledgement"],
        serde_json::json!({"acknowledged": 16, "median_ms": 160 * S, "p90_ms": 300 * S, "unacknowledged": 2})
    );

    let keys = |g: &str| -> Vec<(String, u64)> {
        r[g].as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["key"].as_str().unwrap().to_string(),
                    x["figures"]["rate"]["raises"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(keys("positions"), [("中控室一".into(), 12), ("二号岗".into(), 6)]);
    assert_eq!(keys("hazard_sources"), [("MHS-001".into(), 12), ("MHS-002".into(), 6)]);
    let days: Vec<u64> = keys("days").into_iter().map(|d| d.1).collect();
    assert_eq!(days, [12, 3, 1, 1, 0, 1, 0]);
    assert_eq!(keys("days")[6].0, "2026-12-13");
    assert_eq!(keys("weeks"), [("2026-W50".into(), 18)]);
    let shifts = keys("shifts");
    assert_eq!(shifts.len(), 15);
    assert_eq!(shifts[0], ("2026-12-06 20:00".into(), 12));
    assert_eq!(shifts[14], ("2026-12-13 20:00".into(), 0));
    assert_eq!(shifts[11], ("2026-12-12 08:00".into(), 1), "S at 18:00");

    // One position, only days.
    let one = gw
        .get_json("/api/v1/kpi?week=2026-W50&position=中控室一&group=day")
        .await;
    assert_eq!(one["position"], "中控室一");
    assert_eq!(one["site"]["rate"]["raises"], 12);
    assert_eq!(one["days"].as_array().unwrap().len(), 7);
    assert!(one["positions"].as_array().unwrap().is_empty());
    // The same range written as times gives the same figures.
    let by_time = gw
        .get_json(&format!(
            "/api/v1/kpi?from=2026-12-07T00:00:00%2B08:00&to={}&group=none",
            MONDAY + WEEK_S * S
        ))
        .await;
    assert_eq!(by_time["site"], r["site"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpi_requests_beyond_the_bounds_are_refused_with_the_reason() {
    let gw = gateway().await;
    for (path, name) in [
        ("/api/v1/kpi?from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z", "from"),
        ("/api/v1/kpi?week=2026-W60", "week"),
        ("/api/v1/kpi?week=2026-W50&from=0", "week"),
        ("/api/v1/kpi?group=month", "group"),
        ("/api/v1/kpi?position=nobody", "position"),
        ("/api/v1/kpi?from=2000&to=1000", "to"),
        ("/api/v1/kpi/report.html?week=2026-W50&lang=fr", ""),
    ] {
        let (status, _, body) = get(&gw, path).await;
        assert_eq!(status, 400, "{path}");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if !name.is_empty() {
            assert_eq!(body["error"], "bad_parameter", "{path}: {body}");
            assert!(
                body["message"].as_str().unwrap().contains(&format!("`{name}`")),
                "{path}: {body}"
            );
        }
    }
    // Without a range: the last 7 days before now (the day after the week), so Monday is out.
    let r = gw.get_json("/api/v1/kpi?group=none").await;
    assert_eq!(r["to_ms"], MONDAY + 8 * 86_400 * S);
    assert_eq!(r["site"]["rate"]["raises"], 18 - 12, "all but Monday's flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_opens_in_excel_and_holds_the_figures() {
    let gw = gateway().await;
    let (status, ct, body) = get(&gw, "/api/v1/kpi/report.csv?week=2026-W50&lang=en").await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(&body[..3], b"\xEF\xBB\xBF", "UTF-8 byte-order mark");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "scope,group,metric_id,metric,value,target,verdict");
    for row in [
        "site,site,rate.raises,Annunciated alarms,18,,",
        "site,site,rate.average_per_10min,Average per 10 minutes,0.02,≤ 1 (manageable ≤ 2),acceptable",
        "site,site,rate.peak_per_10min,Peak per 10 minutes,12,≤ 10,over",
        "site,site,flood.pct_time_in_flood,Time in flood,0.09%,< 1%,acceptable",
        "site,site,chattering.count,Chattering alarms (3+ in 60 s),1,≤ 0,over",
        "site,site,stale.count,Stale alarms (active > 24 h),1,< 5,acceptable",
        "site,site,shelved.duration,Time shelved,0:30:00,,",
        "site,site,acknowledgement.median,\"Time to acknowledge, median\",0:02:40,,",
        "position,中控室一,rate.raises,Annunciated alarms,12,,",
        "day,2026-12-08,rate.raises,Annunciated alarms,3,,",
        "week,2026-W50,rate.raises,Annunciated alarms,18,,",
        "bad_actor,C,raises,C-subject,3,16.67%,",
        "flood,2026-12-07 01:03:20,raises,2026-12-07 01:03:20 – 2026-12-07 01:12:20,2,,",
        "stale,S,age,2026-12-12 18:00:00,30:00:00,,",
    ] {
        assert!(lines.contains(&row), "missing {row:?} in\n{text}");
    }
    let (_, _, zh) = get(&gw, "/api/v1/kpi/report.csv?week=2026-W50").await;
    let zh = String::from_utf8(zh).unwrap();
    assert!(
        zh.starts_with("\u{feff}范围,分组,指标代码,指标,数值,目标,评价\r\n"),
        "{zh}"
    );
    assert!(
        zh.contains("\r\nsite,site,rate.peak_per_10min,10分钟最高报警数,12,≤ 10,超标\r\n"),
        "{zh}"
    );
}

/// Checks with Python's own HTML parser that every element opened is closed in order.
fn well_formed(html: &str) {
    const CHECK: &str = r#"
import sys, html.parser
VOID = {"meta", "br", "link", "img", "hr", "input"}
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []
    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)
    def handle_endtag(self, tag):
        top = self.stack.pop() if self.stack else None
        if top != tag:
            sys.exit(f"</{tag}> closes <{top}> at line {self.getpos()[0]}")
p = P()
p.feed(sys.stdin.read())
p.close()
if p.stack:
    sys.exit(f"unclosed: {p.stack}")
print("ok")
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(html.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_report_prints_the_figures_in_chinese_and_english() {
    let gw = gateway().await;
    let (status, ct, body) = get(&gw, "/api/v1/kpi/report.html?week=2026-W50").await;
    assert_eq!((status, ct.as_str()), (200, "text/html; charset=utf-8"));
    let zh = String::from_utf8(body).unwrap();
    well_formed(&zh);
    for text in [
        "<html lang=\"zh-CN\">",
        "报警系统性能报告",
        "统计区间 2026-12-07 00:00:00 – 2026-12-14 00:00:00 (UTC+08:00)",
        "<tr><td>10分钟最高报警数</td><td>12</td><td>≤ 10</td><td class=\"bad\">超标</td></tr>",
        "<tr><td>平均每10分钟报警数</td><td>0.02</td><td>≤ 1 (可管理 ≤ 2)</td><td class=\"ok\">可接受</td></tr>",
        "<tr><td>2026-12-07 01:03:20</td><td>2026-12-07 01:12:20</td><td>0:09:00</td><td>2</td><td>12</td></tr>",
        "<tr><td>C</td><td>C-subject</td><td>MHS-002</td><td>低</td><td>3</td><td>16.67%</td></tr>",
        "<tr><td>S</td><td>S-subject</td><td>高</td><td>2026-12-12 18:00:00</td><td>30:00:00</td><td>报警中</td></tr>",
        "<tr><td>中控室一</td><td>12</td><td>0.01</td><td>12</td><td>0.09%</td><td>0</td><td>0</td><td class=\"bad\">超标</td></tr>",
        "<tr><td>低优先级占比</td><td>72.22% (13)</td><td>≈ 80%</td><td></td></tr>",
        "@page { size: A4;",
    ] {
        assert!(zh.contains(text), "missing {text:?} in\n{zh}");
    }
    assert!(!zh.contains("<script"), "readable without scripts");

    let (_, _, body) = get(
        &gw,
        "/api/v1/kpi/report.html?week=2026-W50&lang=en&position=%E4%B8%AD%E6%8E%A7%E5%AE%A4%E4%B8%80",
    )
    .await;
    let en = String::from_utf8(body).unwrap();
    well_formed(&en);
    for text in [
        "<html lang=\"en\">",
        "Alarm system performance report",
        "Operator position: 中控室一",
        "<tr><td>Annunciated alarms</td><td>12</td><td></td><td></td></tr>",
        "<tr><td>Peak per 10 minutes</td><td>12</td><td>≤ 10</td><td class=\"bad\">over</td></tr>",
        "<tr><td>F01</td><td>F01-subject</td><td>MHS-001</td><td>low</td><td>1</td><td>8.33%</td></tr>",
    ] {
        assert!(en.contains(text), "missing {text:?} in\n{en}");
    }
}

#[test]
fn kpi_config_mistakes_name_the_file_line_and_key() {
    let text = CONFIG.replace("hazard_sources = [\"MHS-001\"]", "hazard_sources = [\"MHS-009\"]")
        + "[[kpi.positions]]\nname = \"中控室一\"\n";
    let path = std::path::Path::new("/etc/hazard-gateway/site.toml");
    let errors: Vec<String> = hazard_gateway::config::GatewayConfig::parse(path, &text)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "/etc/hazard-gateway/site.toml:20:19: kpi.positions[0].hazard_sources[0]: unknown hazard source `MHS-009` (not in [[hazard_sources]])",
            "/etc/hazard-gateway/site.toml:22:8: kpi.positions[1].name: position name `中控室一` is already used by kpi.positions[0]",
        ]
    );
}
