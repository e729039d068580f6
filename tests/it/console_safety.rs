//! The console's safety behaviour in a real browser (`tests/browser/console_safety.mjs`)
//! against a real gateway polling two simulated gas detectors, with alarms already active
//! when the page opens: the horn at load, the shelving rules (refused by the server too),
//! live values in alarm rows, faults as text, the lost-gateway banner and the blocked-audio
//! banner. The server side of the shelving rules is also checked through the API.

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use hazard_gateway::api::auth::hash_token;
use hazard_gateway::clock;
use serde_json::{Value, json};
use support::{ConsoleBrowser, TestGateway, free_port, simulator, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
const OPERATOR: &str = "safety-operator-token-0123456789";
const ADMIN: &str = "safety-admin-token-0123456789abc";

fn config(gas: &str, detector: &str, port: u16) -> String {
    format!(
        r#"
[gateway]
id = "console-safety"
data_dir = "data"
[api]
listen = "127.0.0.1:{port}"
[[api.tokens]]
name = "值班员张三"
role = "operator"
hash = "{op}"
[[api.tokens]]
name = "班长王五"
role = "admin"
hash = "{admin}"

[console]
sound_from = "high"

[alarms]
sensor_fault_priority = "medium"
[alarms.shelving.critical]
by = "admin"
max = "1h"
[alarms.shelving.high]
by = "operator"
max = "2h"

# A historian whose secret is not set: the gateway runs and alarms all the same.
[[tsdb]]
name = "historian"
url = "http://127.0.0.1:9"
api = "v2"
org = "o"
bucket = "b"
token_env = "HAZARD_TEST_CONSOLE_UNSET_TOKEN"

[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2
[[hazard_sources]]
id = "MHS-002"
name = "甲醇罐组"
level = 3

[[devices]]
name = "gas-ai-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{gas}" }}
interval = "100ms"
hazard_source = "MHS-001"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-001/GT-103", ch4 = "MHS-001/GT-104" }}

[[devices]]
name = "det-201"
profile = "gas-lel-detector"
transport = {{ tcp = "{detector}" }}
interval = "100ms"
hazard_source = "MHS-002"
"#,
        op = hash_token(OPERATOR),
        admin = hash_token(ADMIN),
    )
}

async fn get(gw: &TestGateway, path: &str) -> Value {
    gw.http
        .get(format!("{}{path}", gw.base))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .expect("API answers")
        .json()
        .await
        .expect("JSON")
}

async fn shelve(gw: &TestGateway, token: &str, alarm: &str, duration: &str, comment: &str) -> (u16, Value) {
    let resp = gw
        .http
        .post(format!(
            "{}/api/v1/alarms/{}/shelve",
            gw.base,
            alarm.replace('/', "%2F").replace(':', "%3A")
        ))
        .bearer_auth(token)
        .json(&json!({ "duration": duration, "comment": comment }))
        .send()
        .await
        .expect("API answers");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn active(gw: &TestGateway, alarm: &str) {
    wait_for(&format!("{alarm} active"), LIMIT, || async {
        let all = get(gw, "/api/v1/alarms").await;
        all.as_array()?
            .iter()
            .any(|a| a["alarm_id"] == alarm && a["state"] == "unack_active")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_sounds_for_open_alarms_keeps_shelved_ones_in_alarm_and_alarms_when_the_gateway_is_lost() {
    let _one = ONE_BROWSER.lock().await;
    let gas = simulator("ai4-gas-lel", None).await;
    for (ch, v) in [("ch1", 60.0), ("ch2", 2.0), ("ch3", 2.0), ("ch4", -10.0)] {
        assert!(gas.pin(ch, v));
    }
    let detector = simulator("gas-lel-detector", None).await;
    assert!(detector.pin("gas", 31.0), "above the 25 %LEL set-point");
    let port = free_port();
    let text = config(&gas.local_addr().to_string(), &detector.local_addr().to_string(), port);
    let gw = TestGateway::start(&text).await;
    let critical = "MHS-001/GT-101:high_high";
    let high = "MHS-001/GT-101:high";
    let shelvable = "det-201/gas:high";
    // The store whose secret is missing is the gateway's own (high) alarm.
    for a in [critical, high, shelvable, "gateway:output_fault"] {
        active(&gw, a).await;
    }

    // The site's shelving rules, enforced by the server whatever the client shows.
    let (code, body) = shelve(&gw, OPERATOR, critical, "30m", "想静音").await;
    assert_eq!(code, 403, "an operator may not shelve a critical alarm: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("admin"), "{body}");
    let (code, body) = shelve(&gw, OPERATOR, shelvable, "3h", "标定").await;
    assert_eq!(code, 409, "longer than the 2 h allowed for high: {body}");
    let (code, body) = shelve(&gw, OPERATOR, shelvable, "30m", "").await;
    assert_eq!(code, 400, "a reason is required: {body}");
    let policy = get(&gw, "/api/v1/console").await;
    assert_eq!(policy["user"], "值班员张三");
    assert_eq!(policy["role"], "operator");
    assert_eq!(policy["sound_from"], "high");
    let critical_rule = policy["shelving"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["priority"] == "critical")
        .cloned()
        .unwrap();
    assert_eq!(
        critical_rule,
        json!({"priority": "critical", "by": "admin", "max_s": 3600, "allowed": false})
    );
    let alarms = get(&gw, "/api/v1/alarms").await;
    let shown = alarms
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alarm_id"] == critical)
        .unwrap();
    assert_eq!(shown["shelved_until"], Value::Null, "nothing was shelved");

    let mut browser = ConsoleBrowser::start_script(
        "console_safety.mjs",
        &format!("{}/", gw.base),
        &[
            ("TOKEN", OPERATOR),
            ("CRITICAL_ID", critical),
            ("HIGH_ID", high),
            ("GATEWAY_ID", "gateway:output_fault"),
            ("SHELVE_ID", shelvable),
            ("SHELVE_SOURCE", "MHS-002"),
            ("FAULT_POINT", "MHS-001/GT-104"),
            ("STATE_POINT", "det-201/alarm1"),
        ],
    );
    browser.expect_line("READY", LIMIT).await;

    // The gateway goes away; then comes back on the same port with the same journal.
    let TestGateway { gateway, dir, .. } = gw;
    if let Some(g) = gateway {
        g.shutdown().await;
    }
    browser.proceed();
    browser.expect_line("LOST", LIMIT).await;
    let gw = TestGateway::start_with(&text, dir, clock::system()).await;
    assert_eq!(gw.base, format!("http://127.0.0.1:{port}"));
    browser.proceed();
    browser.expect_line("DONE", LIMIT).await;
    browser.finish();

    // What the page did is in the journal: the shelve with its reason, by the token's holder.
    let history = get(
        &gw,
        &format!(
            "/api/v1/alarms/history?alarm={}",
            shelvable.replace('/', "%2F").replace(':', "%3A")
        ),
    )
    .await;
    let shelved = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["transition"] == "shelved")
        .cloned()
        .unwrap_or_else(|| panic!("no shelving journaled: {history:#}"));
    assert_eq!(shelved["user"], "值班员张三");
    assert!(shelved["comment"].as_str().unwrap_or_default().contains("calibrating"));
    // An admin may shelve the critical alarm, within its hour.
    assert_eq!(shelve(&gw, ADMIN, critical, "2h", "交接").await.0, 409);
    let (code, body) = shelve(&gw, ADMIN, critical, "30m", "联锁已投用，现场有人值守").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["user"], "班长王五");
}
