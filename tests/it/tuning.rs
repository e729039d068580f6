//! Tuning suggestions end to end: a tank level published through a real Mosquitto chatters
//! across its high set-point for ten minutes, then rises for real; the gateway journals every
//! raise and keeps the readings, and `GET /api/v1/tuning` names the alarm as the bad actor,
//! counts its raises exactly, shows the settings in force and suggests ones that would have
//! removed the chattering without missing or delaying the true rise.

use crate::support;

use serde_json::Value;
use support::mqtt::Publisher;
use support::{Mosquitto, TestGateway, WAIT, wait_for};

const POINT: &str = "tank/LT-1";
const SET_POINT: f64 = 85.0;

fn config(broker: &Mosquitto, api_extra: &str) -> String {
    format!(
        r#"
[gateway]
id = "tuning-gw"
[api]
listen = "127.0.0.1:0"
{api_extra}
# Suggestions replay raw history as kept; a point tuned for chatter smaller than the history
# deadband needs its readings kept as they came.
[history.deadbands]
"tank/LT-1" = 0.0

[[mqtt.brokers]]
name = "plant"
address = "{}"
keep_alive = "5s"

[[mqtt.subscriptions]]
name = "levels"
broker = "plant"
topic = "levels/{{tag}}"
point = "tank/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "%"
kind = "level"
range = [0, 100]
points = ["tank/LT-1"]

[[rules]]
name = "tank-high"
points = "tank/LT-1"
threshold = {{ high = {SET_POINT} }}
"#,
        broker.addr()
    )
}

/// The scripted level, one reading a second: ten minutes hovering at the set-point, five
/// quiet, five of a true overfill at 92 %, then quiet again.
fn script() -> Vec<f64> {
    let mut v: Vec<f64> = (0..600)
        .map(|i| {
            let x = f64::from(i);
            84.8 + 0.5 * (x * 1.7).sin() + 0.2 * (x * 0.31).cos()
        })
        .collect();
    v.extend(std::iter::repeat_n(70.0, 300));
    v.extend((0..300).map(|i| 92.0 + 0.3 * (f64::from(i) * 0.9).sin()));
    // The last readings vary so history keeps each (it stores an unchanged value once a
    // minute), and the test can see the last one arrive.
    v.extend((0..120).map(|i| 70.0 + 0.1 * (f64::from(i) * 0.7).sin()));
    v
}

/// Raises of a bare threshold (no deadband, no delays) over `values`: what the journal must
/// hold.
fn naive_raises(values: &[f64]) -> u64 {
    let mut active = false;
    let mut n = 0;
    for v in values {
        let now = *v >= SET_POINT;
        if now && !active {
            n += 1;
        }
        active = now;
    }
    n
}

/// A gateway fed the scripted level through a real Mosquitto, with every reading and raise
/// processed.
pub(crate) struct Chattering {
    /// The broker (kept alive with the gateway).
    pub _broker: Mosquitto,
    /// The gateway.
    pub gw: TestGateway,
    /// Device time of the first reading, ms.
    pub base: i64,
    /// Device time of the last reading, ms.
    pub last: i64,
    /// Raises the journal holds.
    pub expected: u64,
    /// The tuning answer for the whole script.
    pub report: Value,
    /// Its query.
    pub query: String,
}

/// Publishes the script through Mosquitto, readings stamped from two hours ago, and waits
/// until the gateway has processed all of it; `api_extra` goes into `[api]` (tokens).
pub(crate) async fn chattering_level(api_extra: &str) -> Chattering {
    let broker = Mosquitto::start();
    let gw = TestGateway::start(&config(&broker, api_extra)).await;
    let mut p = Publisher::start(broker.port, "tuning-publisher");
    let values = script();
    // Device times from two hours ago, whole seconds, within the history's raw window.
    let base = (hazard_gateway::clock::system().now().as_millis() / 1000 - 7200) * 1000;
    let payload = |i: usize, v: f64| format!(r#"{{"v": {v}, "t": {}}}"#, base + i as i64 * 1000);
    // The subscription exists once the first reading is in history (a repeat carries the
    // same device time, so history keeps it once and the rules see no change).
    let first = format!(
        "/api/v1/points/tank%2FLT-1/history?resolution=raw&from=0&to={}",
        base + 10_000
    );
    let mut subscribed = false;
    for _ in 0..150 {
        p.send("levels/LT-1", payload(0, values[0])).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if gw.get_json(&first).await["readings"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            subscribed = true;
            break;
        }
    }
    assert!(subscribed, "the gateway never subscribed to levels/LT-1");
    for (i, v) in values.iter().enumerate().skip(1) {
        p.send("levels/LT-1", payload(i, *v)).await;
    }
    let last = base + (values.len() as i64 - 1) * 1000;
    let expected = naive_raises(&values);
    assert!(expected > 50, "the script chatters: {expected} raises");
    let query = format!("/api/v1/tuning?from={}&to={}", base - 1000, last + 1000);
    let report: Value = wait_for("every reading and raise processed", WAIT, || async {
        let h = gw
            .get_json(&format!(
                "/api/v1/points/tank%2FLT-1/history?resolution=raw&from={}&to={}",
                last - 1,
                last + 1
            ))
            .await;
        if h["readings"].as_array().is_none_or(|r| r.is_empty()) {
            return None;
        }
        let r = gw.get_json(&query).await;
        (r["alarms"][0]["raises"].as_u64() == Some(expected)).then_some(r)
    })
    .await;
    Chattering {
        _broker: broker,
        gw,
        base,
        last,
        expected,
        report,
        query,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chattering_level_alarm_gets_a_suggestion_that_removes_its_chattering_and_keeps_its_true_alarm() {
    let Chattering {
        gw,
        base,
        last,
        expected,
        report,
        query,
        ..
    } = chattering_level("").await;
    let alarms = report["alarms"].as_array().expect("alarms");
    assert_eq!(alarms.len(), 1, "{report:#}");
    let a = &alarms[0];
    assert_eq!(a["alarm_id"], format!("{POINT}:high"));
    assert_eq!(a["rule"], "tank-high");
    assert_eq!(a["point"], POINT);
    assert_eq!(a["set_point"], SET_POINT);
    assert_eq!(a["unit"], "%");
    assert_eq!(
        a["current"],
        serde_json::json!({"deadband": 0.0, "on_delay": 0, "off_delay": 0})
    );
    // Replaying the kept history with the settings in force gives the journal's count.
    assert_eq!(a["current_outcome"]["raises"].as_u64(), Some(expected), "{a:#}");
    assert!(a["current_outcome"]["chattering"].as_u64() > Some(40), "{a:#}");
    assert_eq!(
        a["current_outcome"]["true_raised"], 1,
        "the overfill is the one true alarm: {a:#}"
    );
    assert_eq!(a["changed"], true);
    let s = &a["suggested_outcome"];
    assert_eq!(s["chattering"], 0, "{a:#}");
    assert_eq!(s["true_missed"], 0, "{a:#}");
    assert_eq!(s["true_raised"], 1, "{a:#}");
    assert!(s["raises"].as_u64() <= Some(2), "{a:#}");
    assert!(
        s["max_added_delay_ms"].as_u64() <= report["max_delay_ms"].as_u64(),
        "{a:#}"
    );
    assert_eq!(report["max_delay_ms"], 10_000);
    // A deadband within 5 % of the range, or delays within the bound, did it.
    let sug = &a["suggested"];
    assert!(sug["deadband"].as_f64() <= Some(5.0), "{a:#}");
    assert!(sug["on_delay"].as_u64() <= Some(10_000), "{a:#}");

    // The suggestion is advice: the alarm's settings in force are unchanged.
    let again = gw.get_json(&query).await;
    assert_eq!(again["alarms"][0]["current"], a["current"]);

    // A stricter bound is honoured, and bad parameters are refused with their name.
    let strict = gw.get_json(&format!("{query}&max_delay_s=0")).await;
    assert_eq!(strict["alarms"][0]["suggested"]["on_delay"], 0, "{strict:#}");
    let http = support::http_client();
    for (bad, name) in [
        ("max_delay_s=121", "max_delay_s"),
        ("max_delay_s=soon", "max_delay_s"),
        ("from=yesterday", "from"),
        ("top=0", "top"),
        ("top=51", "top"),
    ] {
        let r = http
            .get(format!("{}/api/v1/tuning?{bad}", gw.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 400, "{bad}");
        let body = r.text().await.expect("body");
        assert!(body.contains(name), "{bad}: {body}");
    }
    // A period longer than 31 days is cut to its last 31; an empty one has no bad actors.
    let long = gw.get_json(&format!("/api/v1/tuning?from=0&to={last}")).await;
    assert_eq!(long["from_ms"], last - 31 * 86_400_000);
    assert_eq!(long["alarms"][0]["raises"].as_u64(), Some(expected));
    let empty = gw.get_json(&format!("/api/v1/tuning?from={last}&to={base}")).await;
    assert_eq!(empty["alarms"], serde_json::json!([]));
}
