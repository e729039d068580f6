//! The duty-officer console in a real browser (Debian's headless Chromium driven by
//! playwright-core, `tests/browser/console_flow.mjs`) against a real gateway polling our Modbus
//! simulator: a gas alarm appears, is acknowledged through the page with a comment, and the API
//! then shows it acknowledged by that user. Also the feed's `access_token` query parameter,
//! against the real binary, with its request log read back for the token.

use crate::support;

use std::time::Duration;

use hazard_gateway::api::auth::hash_token;
use hazard_gateway::sources::sim::Simulator;
use serde_json::Value;
use support::{ConsoleBrowser, GatewayProcess, TestGateway, free_port, simulator};

/// Bound on each leg of a browser flow (start-up, the alarm, the acknowledgement).
const BROWSER_LIMIT: Duration = Duration::from_secs(120);

/// One Chromium at a time: the machine has two cores. This serialises the browser tests under
/// `cargo test` (one process); under nextest the `browser` test group does it.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OPERATOR_TOKEN: &str = "console-operator-token-0123456789";
const VIEWER_TOKEN: &str = "viewer+token/with=odd&chars 0123456789";

/// The gateway's config; `tokens` also sets a flood threshold of one alarm, so two make a flood.
fn config(sim: &Simulator, api: &str, tokens: bool) -> String {
    let tokens = if tokens {
        format!(
            r#"
[[api.tokens]]
name = "值班员张三"
role = "operator"
hash = "{}"
[[api.tokens]]
name = "wall-screen"
role = "viewer"
hash = "{}"
[alarms]
flood_threshold = 1
"#,
            hash_token(OPERATOR_TOKEN),
            hash_token(VIEWER_TOKEN)
        )
    } else {
        String::new()
    };
    format!(
        r#"
[gateway]
id = "console-gw"
data_dir = "data"
[api]
listen = "{api}"
{tokens}
[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2

[[devices]]
name = "gas-ai-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
hazard_source = "MHS-001"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-001/GT-103", ch4 = "MHS-001/GT-104" }}
"#,
        sim = sim.local_addr()
    )
}

async fn quiet_gas_simulator() -> Simulator {
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        assert!(sim.pin(ch, 2.0));
    }
    sim
}

/// The alarm's acknowledgement as the journal recorded it.
async fn acknowledgement(gw: &TestGateway, alarm: &str, token: Option<&str>) -> Value {
    let mut req = gw
        .http
        .get(format!("{}/api/v1/alarms/history", gw.base))
        .query(&[("alarm", alarm)]);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let history: Value = req.send().await.unwrap().json().await.unwrap();
    history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["transition"] == "acknowledged")
        .cloned()
        .unwrap_or_else(|| panic!("no acknowledgement of {alarm} in {history:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gas_alarm_is_acknowledged_through_the_console_by_the_named_duty_officer() {
    let _one = ONE_BROWSER.lock().await;
    let sim = quiet_gas_simulator().await;
    let gw = TestGateway::start(&config(&sim, "127.0.0.1:0", false)).await;
    let alarm = "MHS-001/GT-101:high";
    let comment = "现场确认：检测器附近无泄漏，已通知巡检 (checked on site)";
    let mut browser = ConsoleBrowser::start(
        &format!("{}/", gw.base),
        &[
            ("ALARM_ID", alarm),
            ("COMMENT", comment),
            ("ACK_USER", "值班员李四"),
            ("SCREENSHOT_PREFIX", "console"),
        ],
    );
    browser.expect_line("READY", BROWSER_LIMIT).await;
    assert!(sim.pin("ch1", 32.5), "above the 25 %LEL set-point");
    browser.proceed();
    browser.expect_line("DONE", BROWSER_LIMIT).await;
    browser.finish();

    let shown = gw.alarm(alarm).await.expect("the alarm is still active");
    assert_eq!(shown["state"], "ack_active");
    assert_eq!(shown["acknowledged"], true);
    assert_eq!(shown["user"], "值班员李四");
    let ack = acknowledgement(&gw, alarm, None).await;
    assert_eq!(ack["user"], "值班员李四");
    assert_eq!(ack["comment"], comment);
    assert_eq!(ack["category"], "real_alarm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_the_console_logs_in_first_shows_a_flood_and_acknowledges_as_the_token_holder() {
    let _one = ONE_BROWSER.lock().await;
    let sim = quiet_gas_simulator().await;
    let gw = TestGateway::start(&config(&sim, "127.0.0.1:0", true)).await;
    let alarm = "MHS-001/GT-102:high";
    let comment = "已启动排风 (ventilation started)";
    let mut browser = ConsoleBrowser::start(
        &format!("{}/", gw.base),
        &[
            ("ALARM_ID", alarm),
            ("COMMENT", comment),
            ("TOKEN", OPERATOR_TOKEN),
            ("SCREENSHOT_PREFIX", "console-token"),
            ("EXPECT_FLOOD", "1"),
        ],
    );
    browser.expect_line("READY", BROWSER_LIMIT).await;
    assert!(sim.pin("ch2", 31.0));
    assert!(sim.pin("ch3", 55.0), "a second alarm, above high-high too: a flood");
    browser.proceed();
    browser.expect_line("DONE", BROWSER_LIMIT).await;
    browser.finish();

    let ack = acknowledgement(&gw, alarm, Some(VIEWER_TOKEN)).await;
    assert_eq!(ack["user"], "值班员张三", "the token's holder is journaled");
    assert_eq!(ack["comment"], comment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_takes_its_token_from_the_query_and_the_log_never_shows_it() {
    let sim = quiet_gas_simulator().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&sim, &format!("127.0.0.1:{port}"), true)).unwrap();
    let args = [
        std::ffi::OsStr::new("--log-format"),
        "json".as_ref(),
        "run".as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ];
    let mut gw = GatewayProcess::spawn_with_env(&args, port, &[("RUST_LOG", "info,tower_http=debug")]).await;
    let feed = format!("{}/api/v1/events", gw.base);
    let status = |token: Option<&str>, url: String| {
        let mut req = gw.http.get(url);
        if let Some(t) = token {
            req = req.query(&[("access_token", t)]);
        }
        async move {
            let resp = req.send().await.expect("API answers");
            (
                resp.status().as_u16(),
                resp.headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap_or_default().to_string()),
            )
        }
    };
    assert_eq!(status(None, feed.clone()).await.0, 401);
    assert_eq!(status(Some("wrong-token"), feed.clone()).await.0, 401);
    let (code, content_type) = status(Some(VIEWER_TOKEN), feed.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(content_type.as_deref(), Some("text/event-stream"));
    assert_eq!(
        status(Some(VIEWER_TOKEN), format!("{}/api/v1/alarms", gw.base)).await.0,
        401,
        "only the feed reads a token from the query"
    );
    let header = gw.http.get(&feed).bearer_auth(VIEWER_TOKEN).send().await.unwrap();
    assert_eq!(header.status(), 200, "the header still works");
    drop(header);

    gw.signal_and_wait("TERM");
    let log = gw.stderr();
    assert!(
        log.contains("access_token=REDACTED"),
        "the feed requests are logged, redacted:\n{log}"
    );
    let encoded: String = url_encoded(VIEWER_TOKEN);
    for secret in [VIEWER_TOKEN, encoded.as_str(), "wrong-token", "0123456789"] {
        assert!(!log.contains(secret), "`{secret}` appears in the log:\n{log}");
    }
}

fn url_encoded(text: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("t", text)])
        .unwrap()
        .query()
        .unwrap_or_default()
        .trim_start_matches("t=")
        .to_string()
}
