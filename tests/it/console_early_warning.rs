//! Early warnings in the console (`tests/browser/console_early_warning.mjs`): a gas reading
//! published through a real Mosquitto with device times rises slowly towards its high
//! set-point while a second detector is over it. The console shows the early warning (预警) in
//! its own colour and label with the predicted crossing and the set-point it heads for, apart
//! from the threshold alarm, in Chinese and in English, in the alarm list, the hazard-source
//! card, the value table and the point's trend.

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use support::mqtt::Publisher;
use support::{Mosquitto, TestGateway, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
const WARN: &str = "MHS-001/GT-1:early_warning:high";
const ALARM: &str = "MHS-001/GT-2:high";

fn config(broker: &Mosquitto) -> String {
    format!(
        r#"
[gateway]
id = "console-early"
data_dir = "data"
[api]
listen = "127.0.0.1:0"

[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2

[[mqtt.brokers]]
name = "plant"
address = "{}"
keep_alive = "5s"

[[mqtt.subscriptions]]
name = "gas"
broker = "plant"
topic = "gas/{{tag}}"
point = "MHS-001/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "%LEL"
kind = "gas"
range = [0, 100]
hazard_source = "MHS-001"
stale_after = "30m"
points = ["MHS-001/GT-{{1,2}}"]

[[rules]]
name = "gas-high"
points = "MHS-001/GT-*"
threshold = {{ high = 25.0, high_high = 50.0, deadband = 2.0 }}

[[rules]]
name = "gas-trend"
points = "MHS-001/GT-1"
time_to_limit = {{ horizon = "30m", window = "10m", min_samples = 10 }}
"#,
        broker.addr()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_warning_is_shown_apart_from_alarms_with_its_predicted_crossing() {
    let _one = ONE_BROWSER.lock().await;
    let broker = Mosquitto::start();
    let gw = TestGateway::start(&config(&broker)).await;
    let mut p = Publisher::start(broker.port, "console-early-publisher");
    // Device times ending now: GT-1 climbs 0.01 %LEL/s from 5 over 1000 s, so its trend reaches
    // the high set-point (25) 1000 s from now; GT-2 reads 30 now, over it.
    let base = (hazard_gateway::clock::system().now().as_millis() / 1000 - 1000) * 1000;
    let at = |s: i64| base + s * 1000;
    let gt1 = |s: i64| format!(r#"{{"v": {}, "t": {}}}"#, 5.0 + s as f64 / 100.0, at(s));
    let first = format!(
        "/api/v1/points/MHS-001%2FGT-1/history?resolution=raw&from=0&to={}",
        at(1)
    );
    let mut subscribed = false;
    for _ in 0..150 {
        p.send("gas/GT-1", gt1(0)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if gw.get_json(&first).await["readings"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            subscribed = true;
            break;
        }
    }
    assert!(subscribed, "the gateway never subscribed to gas/GT-1");
    for s in (10..=1000).step_by(10) {
        p.send("gas/GT-1", gt1(s)).await;
    }
    p.send("gas/GT-2", format!(r#"{{"v": 30.0, "t": {}}}"#, at(1000))).await;
    let (warning, _) = wait_for("the early warning and the high alarm", LIMIT, || async {
        let w = gw.alarm(WARN).await?;
        let a = gw.alarm(ALARM).await?;
        (w["state"] == "unack_active" && a["state"] == "unack_active").then_some((w, a))
    })
    .await;
    assert_eq!(warning["condition"], "early_warning");
    assert_eq!(warning["priority"], "medium");
    assert_eq!(warning["limit"], 25.0);
    let predicted_ms = warning["predicted_at"].as_i64().expect("a predicted crossing") / 1_000_000;
    // The fit of an exact ramp: 25 %LEL at 2000 s.
    assert_eq!(predicted_ms, at(2000), "{warning}");

    support::console::run_script(
        "console_early_warning.mjs",
        &format!("{}/", gw.base),
        &[
            ("WARN_ID", WARN),
            ("ALARM_ID", ALARM),
            ("POINT", "MHS-001/GT-1"),
            ("PREDICTED_MS", &predicted_ms.to_string()),
        ],
        LIMIT,
    )
    .await;
}
