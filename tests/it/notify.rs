//! Reaching people where they are: the WeCom, DingTalk and Feishu robots and an SMS gateway,
//! each played by a local receiver that checks the credential and signature the way the
//! service documents it and answers refusals the way the service does (HTTP 200 with an
//! error code); escalation rosters and quiet hours on a clock the test moves by hand.

use crate::support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hazard_gateway::clock::{Clock, ManualClock};
use hazard_gateway::model::Timestamp;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{GatewayProcess, TestGateway, WAIT, free_port, metric, simulator, wait_for};

const WECOM_KEY: &str = "0d6c3f9e-wecom-key";
const DING_TOKEN: &str = "ding-access-token";
const DING_SECRET: &str = "SECding-test-secret";
const FEISHU_TOKEN: &str = "feishu-hook-token";
const FEISHU_SECRET: &str = "feishu-test-secret";
const SMS_KEY: &str = "sms-api-key";

#[derive(Default)]
struct Receiver {
    /// Answer the next DingTalk requests with its rate-limit refusal.
    ding_busy: usize,
    /// WeCom refuses everything (rate limit) while set.
    wecom_down: bool,
    /// Accepted messages by service: (X-Hazard-Delivery seq, body).
    accepted: HashMap<&'static str, Vec<(u64, Value)>>,
    /// Signatures or keys that did not verify, by service.
    bad: HashMap<&'static str, usize>,
    /// Generic deliveries by path (escalation test).
    generic: HashMap<String, Vec<Value>>,
}

type Shared = Arc<Mutex<Receiver>>;

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn seq(headers: &HeaderMap) -> u64 {
    headers["x-hazard-delivery"].to_str().unwrap().parse().unwrap()
}

/// WeCom: the key in the query is the credential; the body is a markdown (or text) message.
async fn wecom(
    State(r): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let mut r = r.lock().unwrap();
    if q.get("key").map(String::as_str) != Some(WECOM_KEY) {
        *r.bad.entry("wecom").or_default() += 1;
        return axum::Json(json!({"errcode": 93000, "errmsg": "invalid webhook url"}));
    }
    if r.wecom_down {
        return axum::Json(json!({"errcode": 45009, "errmsg": "api freq out of limit"}));
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let shaped = match v["msgtype"].as_str() {
        Some("markdown") => v["markdown"]["content"].is_string(),
        Some("text") => v["text"]["content"].is_string(),
        _ => false,
    };
    if !shaped {
        return axum::Json(json!({"errcode": 40008, "errmsg": "invalid message type"}));
    }
    r.accepted.entry("wecom").or_default().push((seq(&h), v));
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// DingTalk 加签: the receiver recomputes `sign` from the query's timestamp and the secret.
async fn dingtalk(
    State(r): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let mut r = r.lock().unwrap();
    let ts = q.get("timestamp").cloned().unwrap_or_default();
    let expected = hmac_b64(DING_SECRET.as_bytes(), format!("{ts}\n{DING_SECRET}").as_bytes());
    let fresh = ts.parse::<i64>().is_ok_and(|ms| (ms - now_ms()).abs() < 3_600_000);
    if q.get("access_token").map(String::as_str) != Some(DING_TOKEN) {
        *r.bad.entry("dingtalk").or_default() += 1;
        return axum::Json(json!({"errcode": 300001, "errmsg": "token is not exist"}));
    }
    if q.get("sign") != Some(&expected) || !fresh {
        *r.bad.entry("dingtalk").or_default() += 1;
        return axum::Json(json!({"errcode": 310000, "errmsg": "sign not match"}));
    }
    if r.ding_busy > 0 {
        r.ding_busy -= 1;
        return axum::Json(json!({"errcode": 130101, "errmsg": "send too fast"}));
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["msgtype"], "markdown");
    assert!(v["markdown"]["title"].is_string() && v["markdown"]["text"].is_string());
    r.accepted.entry("dingtalk").or_default().push((seq(&h), v));
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// Feishu 签名校验: `sign` in the body is HMAC-SHA256 keyed by "<timestamp>\n<secret>" of "".
async fn feishu(State(r): State<Shared>, Path(token): Path<String>, h: HeaderMap, body: Bytes) -> axum::Json<Value> {
    let mut r = r.lock().unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let ts = v["timestamp"].as_str().unwrap_or_default();
    let expected = hmac_b64(format!("{ts}\n{FEISHU_SECRET}").as_bytes(), b"");
    let fresh = ts.parse::<i64>().is_ok_and(|s| (s - now_ms() / 1000).abs() < 3600);
    if token != FEISHU_TOKEN {
        *r.bad.entry("feishu").or_default() += 1;
        return axum::Json(json!({"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}));
    }
    if v["sign"].as_str() != Some(expected.as_str()) || !fresh {
        *r.bad.entry("feishu").or_default() += 1;
        return axum::Json(
            json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}),
        );
    }
    assert_eq!(v["msg_type"], "post");
    r.accepted.entry("feishu").or_default().push((seq(&h), v));
    axum::Json(json!({"code": 0, "msg": "success", "data": {}}))
}

/// An SMS gateway: an API key header and the body the site's template makes.
async fn sms(State(r): State<Shared>, h: HeaderMap, body: Bytes) -> (axum::http::StatusCode, &'static str) {
    let mut r = r.lock().unwrap();
    if h.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(SMS_KEY) {
        *r.bad.entry("sms").or_default() += 1;
        return (axum::http::StatusCode::UNAUTHORIZED, "bad key");
    }
    assert_eq!(h["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    r.accepted.entry("sms").or_default().push((seq(&h), v));
    (axum::http::StatusCode::OK, "queued")
}

/// Generic JSON deliveries, recorded by the last path segment.
async fn generic(State(r): State<Shared>, Path(who): Path<String>, body: Bytes) -> axum::http::StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap();
    r.lock().unwrap().generic.entry(who).or_default().push(v);
    axum::http::StatusCode::NO_CONTENT
}

#[allow(clippy::disallowed_methods)] // the receiver checks freshness against real time, as the services do
fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

async fn start_receiver(state: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/cgi-bin/webhook/send", post(wecom))
        .route("/robot/send", post(dingtalk))
        .route("/open-apis/bot/v2/hook/{token}", post(feishu))
        .route("/sms", post(sms))
        .route("/hook/{who}", post(generic))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn robots_config(port: u16, base: &str, sim: &str) -> String {
    format!(
        r#"
[gateway]
id = "notify-gw"
data_dir = "data"
[api]
listen = "127.0.0.1:{port}"
[notify]
console_url = "http://10.0.0.5:8080/"
[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2
[labels.points."MHS-001/GT-101"]
name = "1号液氯储罐 可燃气体"
location = {{ area = "液氯储罐区", unit = "T-101 储罐", floor = "2F" }}
[[webhooks]]
name = "wecom"
kind = "wecom"
url = "{base}/cgi-bin/webhook/send"
key_env = "WECOM_KEY"
hazard_sources = ["MHS-001"]
[[webhooks]]
name = "ding"
kind = "dingtalk"
url = "{base}/robot/send"
key_env = "DING_TOKEN"
secret_env = "DING_SECRET"
phones = ["13800000001"]
min_priority = "high"
transitions = ["raised"]
[[webhooks]]
name = "ding-wrong"
kind = "dingtalk"
url = "{base}/robot/send"
key_env = "DING_TOKEN"
secret_env = "DING_WRONG"
transitions = ["raised"]
[[webhooks]]
name = "feishu"
kind = "feishu"
url = "{base}/open-apis/bot/v2/hook/"
key_env = "FEISHU_TOKEN"
secret_env = "FEISHU_SECRET"
min_priority = "high"
transitions = ["raised"]
[[webhooks]]
name = "sms"
kind = "template"
url = "{base}/sms"
phones = ["13800000002", "13800000003"]
min_priority = "critical"
transitions = ["raised"]
template = {{ body = '{{"to":"{{phones}}","text":"{{hazard_source}} {{point}} {{place}} {{value}} 限值{{limit}} {{priority}} {{transition}} {{time}} {{link}}"}}', headers_env = {{ "X-Api-Key" = "SMS_KEY" }} }}
[[devices]]
name = "g"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
hazard_source = "MHS-001"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-001/GT-103", ch4 = "MHS-001/GT-104" }}
"#
    )
}

async fn start_gateway(path: &std::path::Path, port: u16) -> GatewayProcess {
    let args = ["run".as_ref(), "--config".as_ref(), path.as_os_str()];
    let env = [
        ("WECOM_KEY", WECOM_KEY),
        ("DING_TOKEN", DING_TOKEN),
        ("DING_SECRET", DING_SECRET),
        ("DING_WRONG", "SECnot-the-robots-secret"),
        ("FEISHU_TOKEN", FEISHU_TOKEN),
        ("FEISHU_SECRET", FEISHU_SECRET),
        ("SMS_KEY", SMS_KEY),
    ];
    GatewayProcess::spawn_with_env(&args, port, &env).await
}

/// Journal entries of hazard source MHS-001 as (seq, alarm id, transition, value).
async fn journal(gw: &GatewayProcess) -> Vec<(u64, String, String, f64)> {
    let h = gw.get_json("/api/v1/alarms/history?limit=1000").await;
    let mut v: Vec<_> = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["hazard_source"] == "MHS-001")
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["alarm_id"].as_str().unwrap().to_string(),
                e["transition"].as_str().unwrap().to_string(),
                e["value"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    v.sort_by_key(|e| e.0);
    v
}

/// A value as messages write it: two decimals, trailing zeros dropped.
fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn accepted(r: &Shared, service: &str) -> Vec<(u64, Value)> {
    r.lock().unwrap().accepted.get(service).cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_and_sms_get_signed_chinese_messages_and_nothing_is_lost_across_a_restart() {
    let state: Shared = Arc::new(Mutex::new(Receiver {
        ding_busy: 2,
        ..Default::default()
    }));
    let base = start_receiver(state.clone()).await;
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, robots_config(port, &base, &sim.local_addr().to_string())).unwrap();
    let mut gw = start_gateway(&path, port).await;

    // Past both set-points: a high (高) and a high-high (紧急) alarm.
    sim.pin("ch1", 60.0);
    let raised = wait_for("both alarms raised", WAIT, || async {
        let j = journal(&gw).await;
        (j.iter().filter(|e| e.2 == "raised").count() == 2).then_some(j)
    })
    .await;
    let critical = raised
        .iter()
        .find(|e| e.1 == "MHS-001/GT-101:high_high")
        .unwrap()
        .clone();
    let value = format!("{} %LEL", number(critical.3));
    wait_for("every robot and the SMS gateway took its messages", WAIT, || async {
        let n = |s| accepted(&state, s).len();
        (n("wecom") >= 2 && n("dingtalk") >= 2 && n("feishu") >= 2 && n("sms") >= 1).then_some(())
    })
    .await;

    // WeCom: the critical alarm as markdown, in Chinese, with the console's names and link.
    let wecom = accepted(&state, "wecom");
    let (_, msg) = wecom
        .iter()
        .find(|(s, _)| *s == critical.0)
        .expect("critical alarm at WeCom");
    let md = msg["markdown"]["content"].as_str().unwrap();
    for want in [
        "### 【紧急】1号液氯储罐 可燃气体 报警",
        "- 危险源：液氯储罐区（MHS-001）",
        "- 位置：液氯储罐区 T-101 储罐 2F",
        &format!("- 当前值：{value}"),
        "- 报警限值：50 %LEL",
        "- 级别：紧急",
        "(UTC+08:00)",
        "[在控制台查看](http://10.0.0.5:8080/#alarm=MHS-001%2FGT-101%3Ahigh_high)",
    ] {
        assert!(md.contains(want), "`{want}` missing in WeCom markdown:\n{md}");
    }

    // DingTalk: signed (the receiver recomputed it), refused twice for rate limit and retried,
    // the critical one mentions the duty phone.
    let ding = accepted(&state, "dingtalk");
    let (_, d) = ding
        .iter()
        .find(|(s, _)| *s == critical.0)
        .expect("critical alarm at DingTalk");
    assert_eq!(d["at"]["atMobiles"], json!(["13800000001"]));
    assert!(d["markdown"]["text"].as_str().unwrap().contains("@13800000001"));
    assert_eq!(d["markdown"]["title"], "【紧急】1号液氯储罐 可燃气体 报警");
    let (_, high) = ding.iter().find(|(s, _)| *s != critical.0).unwrap();
    assert!(high["markdown"]["text"].as_str().unwrap().contains("- 级别：高"));
    assert_eq!(high["at"]["atMobiles"], json!([]));

    // Feishu: signed rich text.
    let fs = accepted(&state, "feishu");
    let (_, f) = fs
        .iter()
        .find(|(s, _)| *s == critical.0)
        .expect("critical alarm at Feishu");
    let post = &f["content"]["post"]["zh_cn"];
    assert_eq!(post["title"], "【紧急】1号液氯储罐 可燃气体 报警");
    let rows = post["content"].to_string();
    assert!(
        rows.contains("报警限值：50 %LEL") && rows.contains(&format!("当前值：{value}")),
        "{rows}"
    );
    assert!(rows.contains(r#""href":"http://10.0.0.5:8080/#alarm=MHS-001%2FGT-101%3Ahigh_high""#));

    // SMS: the template, filled and JSON-escaped.
    let sms = accepted(&state, "sms");
    assert_eq!(sms.len(), 1, "only the critical alarm goes by SMS");
    assert_eq!(sms[0].1["to"], "13800000002,13800000003");
    let text = sms[0].1["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "液氯储罐区（MHS-001） 1号液氯储罐 可燃气体 液氯储罐区 T-101 储罐 2F {value} 限值50 %LEL 紧急 报警 "
        )),
        "{text}"
    );
    assert!(text.ends_with("(UTC+08:00) http://10.0.0.5:8080/#alarm=MHS-001%2FGT-101%3Ahigh_high"));

    // The wrong DingTalk secret is refused by the service every time: never delivered.
    let m = wait_for("the wrong secret refused and counted", WAIT, || async {
        let m = gw.metrics().await;
        (metric(
            &m,
            "hazard_webhook_deliveries_total",
            &["target=\"ding-wrong\"", "result=\"refused\""],
        ) >= 2.0)
            .then_some(m)
    })
    .await;
    assert_eq!(
        metric(
            &m,
            "hazard_webhook_deliveries_total",
            &["target=\"ding-wrong\"", "result=\"ok\""]
        ),
        0.0
    );
    // Stuck: /readyz names it (5 refusals in a row), the good targets are not named.
    let ready = wait_for("the stuck target named in /readyz", WAIT, || async {
        let r = gw.http.get(format!("{}/readyz", gw.base)).send().await.ok()?;
        let status = r.status().as_u16();
        let body = r.text().await.ok()?;
        body.contains("webhook `ding-wrong` stuck").then_some((status, body))
    })
    .await;
    assert_eq!(ready.0, 503, "{}", ready.1);
    assert!(
        !ready.1.contains("webhook `ding`") && !ready.1.contains("`wecom`"),
        "{}",
        ready.1
    );
    let m = gw.metrics().await;
    assert!(metric(&m, "hazard_webhook_failing", &["target=\"ding-wrong\""]) >= 5.0);
    assert_eq!(metric(&m, "hazard_webhook_failing", &["target=\"ding\""]), 0.0);
    assert!(
        metric(
            &m,
            "hazard_webhook_deliveries_total",
            &["target=\"ding\"", "result=\"refused\""]
        ) >= 2.0
    );
    {
        let r = state.lock().unwrap();
        assert!(
            r.bad.get("dingtalk").copied().unwrap_or(0) >= 2,
            "the receiver saw the bad signatures"
        );
        for s in ["wecom", "feishu", "sms"] {
            assert_eq!(r.bad.get(s), None, "{s}");
        }
    }

    // WeCom refuses (rate limit) while the alarm clears and a second point alarms; the gateway
    // restarts meanwhile; then every transition arrives, each journal sequence number.
    state.lock().unwrap().wecom_down = true;
    sim.pin("ch1", 1.0);
    sim.pin("ch2", 30.0);
    wait_for("cleared, and the second point raised", WAIT, || async {
        let j = journal(&gw).await;
        (j.iter().filter(|e| e.2 == "cleared").count() == 2 && j.iter().any(|e| e.1 == "MHS-001/GT-102:high"))
            .then_some(())
    })
    .await;
    // WeCom's refusal is counted before the restart (the new process counts afresh).
    wait_for("a refused WeCom delivery counted", WAIT, || async {
        let m = gw.metrics().await;
        (metric(
            &m,
            "hazard_webhook_deliveries_total",
            &["target=\"wecom\"", "result=\"refused\""],
        ) >= 1.0)
            .then_some(())
    })
    .await;
    assert!(gw.signal_and_wait("TERM").success());
    let log = gw.stderr();
    for secret in [WECOM_KEY, DING_TOKEN, DING_SECRET, FEISHU_TOKEN, FEISHU_SECRET, SMS_KEY] {
        assert!(!log.contains(secret), "a credential in the log:\n{log}");
    }
    assert!(log.contains("Chat robot answered with an error code"), "{log}");
    let gw = start_gateway(&path, port).await;
    state.lock().unwrap().wecom_down = false;
    let all = journal(&gw).await;
    let want: BTreeSet<u64> = all.iter().map(|e| e.0).collect();
    wait_for("every MHS-001 transition at WeCom", WAIT, || async {
        let got: BTreeSet<u64> = accepted(&state, "wecom").iter().map(|(s, _)| *s).collect();
        (got == want).then_some(())
    })
    .await;
    let seqs: Vec<u64> = accepted(&state, "wecom").iter().map(|(s, _)| *s).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted, "in journal order");
}

/// 2026-12-07 23:30:00 at UTC+08:00: inside quiet hours 22:00–07:00.
const NIGHT_MS: i64 = 1_796_657_400_000;

fn escalation_config(base: &str, sim: &str) -> String {
    format!(
        r#"
[gateway]
id = "esc-gw"
[api]
listen = "127.0.0.1:0"
[[webhooks]]
name = "duty"
url = "{base}/hook/duty"
only_escalations = true
[[webhooks]]
name = "manager"
url = "{base}/hook/manager"
only_escalations = true
[[webhooks]]
name = "director"
url = "{base}/hook/director"
only_escalations = true
[[webhooks]]
name = "night"
url = "{base}/hook/night"
transitions = ["raised"]
quiet_hours = ["22:00", "07:00"]
[[escalations]]
name = "gas"
[[escalations.levels]]
after = "0s"
notify = ["duty"]
[[escalations.levels]]
after = "5m"
notify = ["manager"]
[[escalations.levels]]
after = "10m"
notify = ["director"]
[[devices]]
name = "g"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
"#
    )
}

fn generic_ids(r: &Shared, who: &str) -> Vec<(String, Option<u64>)> {
    let r = r.lock().unwrap();
    r.generic
        .get(who)
        .map(|v| {
            v.iter()
                .map(|b| {
                    (
                        b["event"]["alarm_id"].as_str().unwrap().to_string(),
                        b["escalation"]["level"].as_u64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until an escalation round has run at (or after) clock time `at`.
async fn evaluated_at(gw: &TestGateway, at: Timestamp) {
    wait_for("an escalation round at the clock's time", WAIT, || async {
        (gw.metric_handles().escalation_evaluated.get() >= at.as_millis()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_follows_the_clock_stops_at_acknowledgement_and_quiet_hours_hold_only_below_critical() {
    let state: Shared = Arc::default();
    let base = start_receiver(state.clone()).await;
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let t0 = Timestamp::from_millis(NIGHT_MS);
    let clock = Arc::new(ManualClock::new(t0));
    let config = escalation_config(&base, &sim.local_addr().to_string());
    let mut gw = TestGateway::start_with(&config, tempfile::tempdir().unwrap(), clock.clone()).await;

    sim.pin("ch1", 60.0);
    // Level 1 at the raise, for the critical alarm only (the roster's default minimum).
    wait_for("level 1 told at the raise", WAIT, || async {
        (generic_ids(&state, "duty") == [("g/ch1:high_high".to_string(), Some(1))]).then_some(())
    })
    .await;
    // Quiet hours: the critical alarm goes through at once, the high one is held.
    wait_for("the critical alarm through quiet hours", WAIT, || async {
        generic_ids(&state, "night")
            .contains(&("g/ch1:high_high".to_string(), None))
            .then_some(())
    })
    .await;
    wait_for("the high alarm held", WAIT, || async {
        let m = gw.metrics().await;
        (metric(
            &m,
            "hazard_webhook_deliveries_total",
            &["target=\"night\"", "result=\"held\""],
        ) == 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(generic_ids(&state, "night"), [("g/ch1:high_high".to_string(), None)]);

    // One second short of five minutes: nothing more.
    clock.advance(Duration::from_secs(299));
    evaluated_at(&gw, clock.now()).await;
    assert!(generic_ids(&state, "manager").is_empty(), "level 2 before its time");
    clock.advance(Duration::from_secs(1));
    wait_for("level 2 at five minutes", WAIT, || async {
        (generic_ids(&state, "manager") == [("g/ch1:high_high".to_string(), Some(2))]).then_some(())
    })
    .await;

    // Acknowledged: level 3 never comes.
    let (status, _) = gw
        .post_json(
            "/api/v1/alarms/g%2Fch1:high_high/ack",
            json!({"user": "值班员", "comment": "现场确认"}),
        )
        .await;
    assert_eq!(status, 200);
    clock.advance(Duration::from_secs(600));
    evaluated_at(&gw, clock.now()).await;
    assert!(
        generic_ids(&state, "director").is_empty(),
        "escalated after acknowledgement"
    );
    assert_eq!(generic_ids(&state, "duty").len(), 1);
    assert_eq!(generic_ids(&state, "manager").len(), 1);

    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hazard_escalation_steps_total",
            &["roster=\"gas\"", "result=\"sent\""]
        ),
        2.0
    );

    // The gateway stops during quiet hours with the high alarm held; it is back after 07:00 and
    // sends the held alarm, from its record, though its cursor had passed it.
    gw.shutdown().await;
    let held = std::fs::read_to_string(gw.dir.path().join("webhooks/night.held")).unwrap();
    assert_eq!(held.lines().count(), 1, "{held}");
    clock.set(Timestamp::from_millis(NIGHT_MS + 7 * 3_600_000 + 30 * 60_000));
    let gw = TestGateway::start_with(&config, gw.dir, clock.clone()).await;
    wait_for("the held alarm sent when quiet hours end", WAIT, || async {
        generic_ids(&state, "night")
            .contains(&("g/ch1:high".to_string(), None))
            .then_some(())
    })
    .await;
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hazard_webhook_deliveries_total",
            &["target=\"night\"", "result=\"released\""]
        ),
        1.0
    );
    assert_eq!(generic_ids(&state, "night").len(), 2, "each alarm once");
    let held = std::fs::read_to_string(gw.data_dir().join("webhooks/night.held")).unwrap();
    assert_eq!(held, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_resumes_after_a_restart_without_repeating_a_step() {
    let state: Shared = Arc::default();
    let base = start_receiver(state.clone()).await;
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    // 11:30 local: no quiet hours.
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(NIGHT_MS + 12 * 3_600_000)));
    let config = escalation_config(&base, &sim.local_addr().to_string());
    let mut gw = TestGateway::start_with(&config, tempfile::tempdir().unwrap(), clock.clone()).await;
    sim.pin("ch1", 60.0);
    wait_for("level 1 told at the raise", WAIT, || async {
        (generic_ids(&state, "duty").len() == 1).then_some(())
    })
    .await;

    // Down across the five-minute mark; the alarm is still unacknowledged when it returns.
    gw.shutdown().await;
    clock.advance(Duration::from_secs(300));
    let gw = TestGateway::start_with(&config, gw.dir, clock.clone()).await;
    wait_for("level 2 after the restart", WAIT, || async {
        (generic_ids(&state, "manager") == [("g/ch1:high_high".to_string(), Some(2))]).then_some(())
    })
    .await;
    evaluated_at(&gw, clock.now()).await;
    assert_eq!(
        generic_ids(&state, "duty"),
        [("g/ch1:high_high".to_string(), Some(1))],
        "level 1 not repeated"
    );
    assert!(generic_ids(&state, "director").is_empty());
}
