//! The console in English shows English throughout (`tests/browser/console_english.mjs`): the
//! main page, the acknowledge and shelve dialogs, the journal, the handover and the trend, in
//! a real browser at three screen sizes; Chinese remains only in data from the config and the
//! journal (hazard source and label names, users, comments).

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use serde_json::json;
use support::{TestGateway, simulator, wait_for};

const LIMIT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_english_console_has_no_chinese_outside_the_data() {
    let _one = ONE_BROWSER.lock().await;
    let sim = simulator("ai4-gas-lel", None).await;
    for (ch, v) in [("ch1", 60.0), ("ch2", 31.0), ("ch3", 2.0), ("ch4", 2.0)] {
        assert!(sim.pin(ch, v));
    }
    let labels = r#"
[labels.points."MHS-001/GT-101"]
name = "1号储罐 可燃气体"
location = { area = "罐区", unit = "T-101" }
[labels.devices.gas-ai-1]
name = "气体报警控制器"
"#;
    let config = support::console::gas_gateway("console-en", sim.local_addr(), "", labels);
    let gw = TestGateway::start(&config).await;
    let acked = "MHS-001/GT-102:high";
    wait_for("alarms", LIMIT, || async {
        let a = gw.alarm(acked).await?;
        let b = gw.alarm("MHS-001/GT-101:high_high").await?;
        (a["state"] == "unack_active" && b["state"] == "unack_active").then_some(())
    })
    .await;
    let (status, body) = gw
        .post_json(
            &format!("/api/v1/alarms/{}/ack", acked.replace('/', "%2F")),
            json!({"user": "值班员张三", "comment": "现场确认", "category": "maintenance"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let data = [
        "液氯储罐区",
        "1号储罐 可燃气体",
        "罐区",
        "气体报警控制器",
        "值班员张三",
        "现场确认",
    ]
    .join("|");
    support::console::run_script(
        "console_english.mjs",
        &format!("{}/", gw.base),
        &[("POINT", "MHS-001/GT-101"), ("DATA", &data)],
        LIMIT,
    )
    .await;
}
