//! Early warning end to end: a gas reading published through a real Mosquitto with device
//! timestamps rises slowly, turns, and rises again past its high set-point; the gateway
//! journals the early warning with its predicted crossing before the threshold alarm, clears
//! it when the ramp turns, and clears it again when the threshold alarm takes over.

use crate::support;

use serde_json::Value;
use support::mqtt::Publisher;
use support::{Mosquitto, TestGateway, WAIT, wait_for};

fn config(broker: &Mosquitto) -> String {
    format!(
        r#"
[gateway]
id = "early-gw"
[api]
listen = "127.0.0.1:0"

[[mqtt.brokers]]
name = "plant"
address = "{}"
keep_alive = "5s"

[[mqtt.subscriptions]]
name = "gas"
broker = "plant"
topic = "gas/{{tag}}"
point = "zone/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "%LEL"
kind = "gas"
range = [0, 100]
points = ["zone/GT-1"]

[[rules]]
name = "gas-high"
points = "zone/GT-1"
threshold = {{ high = 25.0, high_high = 50.0, deadband = 2.0 }}

[[rules]]
name = "gas-trend"
points = "zone/GT-1"
time_to_limit = {{ horizon = "30m", window = "10m", min_samples = 10 }}
"#,
        broker.addr()
    )
}

/// %LEL at `s` seconds: up 0.01/s from 5 to 15 at 1000 s, down to 9 at 1600 s, then up again
/// at the same rate, reaching the high set-point (25) at 3200 s.
fn value(s: i64) -> f64 {
    if s <= 1000 {
        5.0 + s as f64 / 100.0
    } else if s <= 1600 {
        15.0 - (s - 1000) as f64 / 100.0
    } else {
        9.0 + (s - 1600) as f64 / 100.0
    }
}

const LAST: i64 = 3300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_rise_warns_with_its_predicted_crossing_before_the_threshold_alarm() {
    let broker = Mosquitto::start();
    let gw = TestGateway::start(&config(&broker)).await;
    let mut p = Publisher::start(broker.port, "early-publisher");
    // Device times from two hours ago, whole seconds.
    let base = (hazard_gateway::clock::system().now().as_millis() / 1000 - 7200) * 1000;
    let at = |s: i64| base + s * 1000;
    let payload = |s: i64| format!(r#"{{"v": {}, "t": {}}}"#, value(s), at(s));
    // The subscription exists once the first reading is in history (a repeat carries the same
    // device time, so the rules see it once).
    let first = format!("/api/v1/points/zone%2FGT-1/history?resolution=raw&from=0&to={}", at(1));
    let mut subscribed = false;
    for _ in 0..150 {
        p.send("gas/GT-1", payload(0)).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if gw.get_json(&first).await["readings"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            subscribed = true;
            break;
        }
    }
    assert!(subscribed, "the gateway never subscribed to gas/GT-1");
    for s in (10..=LAST).step_by(10) {
        p.send("gas/GT-1", payload(s)).await;
    }
    // Every reading in: the last one is in history and the threshold alarm was journaled.
    let events: Vec<Value> = wait_for("the high alarm journaled", WAIT, || async {
        let h = gw
            .get_json(&format!(
                "/api/v1/points/zone%2FGT-1/history?resolution=raw&from={}&to={}",
                at(LAST) - 1,
                at(LAST) + 1
            ))
            .await;
        if h["readings"].as_array().is_none_or(|r| r.is_empty()) {
            return None;
        }
        let j = gw.get_json("/api/v1/alarms/history?limit=1000").await;
        let mut list: Vec<Value> = j.as_array()?.clone();
        list.sort_by_key(|e| e["seq"].as_u64());
        list.iter().any(|e| e["alarm_id"] == "zone/GT-1:high").then_some(list)
    })
    .await;
    let seen: Vec<(String, String, i64, Option<i64>)> = events
        .iter()
        .filter(|e| e["subject"] == "zone/GT-1" && e["condition"] != "sensor_fault")
        .map(|e| {
            (
                e["alarm_id"].as_str().unwrap_or_default().to_string(),
                e["transition"].as_str().unwrap_or_default().to_string(),
                e["ts"].as_i64().unwrap_or_default() / 1_000_000,
                e["predicted_at"].as_i64().map(|t| t / 1_000_000),
            )
        })
        .collect();
    assert_eq!(seen.len(), 5, "{seen:#?}");
    let warn = "zone/GT-1:early_warning:high";
    // Raised as soon as the trend is trusted (half the window), predicting 25 %LEL at 2000 s.
    assert_eq!(seen[0], (warn.into(), "raised".into(), at(320), Some(at(2000))));
    // Cleared after the turn, within one window.
    assert_eq!((seen[1].0.as_str(), seen[1].1.as_str()), (warn, "cleared"));
    assert!(seen[1].2 > at(1000) && seen[1].2 <= at(1600), "{seen:#?}");
    // Raised again on the second rise, before the crossing at 3200 s. The window then still
    // holds the bottom of the turn, which flattens the trend: the prediction is late, never
    // early, and by less than the window's length.
    assert_eq!((seen[2].0.as_str(), seen[2].1.as_str()), (warn, "raised"));
    let predicted = seen[2].3.expect("a predicted crossing");
    assert!(predicted >= at(3200) && predicted <= at(3800), "{seen:#?}");
    assert!(
        seen[2].2 < at(3200) - 10 * 60_000,
        "ten minutes' notice at least: {seen:#?}"
    );
    // The threshold alarm takes over at the crossing.
    assert_eq!(seen[3], ("zone/GT-1:high".into(), "raised".into(), at(3200), None));
    assert_eq!(seen[4], (warn.into(), "cleared".into(), at(3200), None));
    let raised = events
        .iter()
        .find(|e| e["alarm_id"] == warn)
        .expect("the warning's record");
    assert_eq!(raised["class"], "process");
    assert_eq!(raised["priority"], "medium");
    assert_eq!(raised["limit"], 25.0);
}
