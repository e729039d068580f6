//! Suspect data end to end: a temperature published through a real Mosquitto with device
//! timestamps freezes, then jumps; the gateway marks the readings `suspect` from the moment
//! each check fires, raises the data-quality alarms, and the quality arrives as such in raw
//! history, in the point API and in a real VictoriaMetrics (quality code 6). The process alarm
//! still fires on the suspect jump (safety first).

use std::collections::BTreeMap;

use crate::support;

use serde_json::Value;
use support::mqtt::Publisher;
use support::{Mosquitto, TestGateway, VictoriaMetrics, WAIT, metric, wait_for};

fn config(broker: &Mosquitto, vm: &VictoriaMetrics) -> String {
    format!(
        r#"
[gateway]
id = "suspect-gw"
[api]
listen = "127.0.0.1:0"

[[mqtt.brokers]]
name = "plant"
address = "{}"
keep_alive = "5s"

[[mqtt.subscriptions]]
name = "temp"
broker = "plant"
topic = "t/{{tag}}"
point = "reactor/{{tag}}"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
unit = "°C"
kind = "temperature"
range = [0, 150]
points = ["reactor/TT-1"]

[[rules]]
name = "hot"
points = "reactor/TT-1"
threshold = {{ high = 120.0 }}

[[rules]]
name = "tt-quality"
points = "reactor/TT-1"
suspect = {{ stuck = "5m", priority = "medium" }}

[[tsdb]]
name = "vm"
url = "{}"
api = "v2"
org = "o"
bucket = "b"
batch_age = "200ms"
retry_min = "100ms"
retry_max = "2s"
timeout = "2s"
"#,
        broker.addr(),
        vm.url()
    )
}

/// °C at `s` seconds: moving until 100 s, frozen at 61.4 from 100 s to 600 s, moving again.
fn value(s: i64) -> f64 {
    match s {
        ..100 => 60.0 + (s % 3) as f64 * 0.1,
        100..=600 => 61.4,
        _ => 62.0 + (s % 2) as f64 * 0.1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspect_quality_round_trips_through_history_the_api_and_victoriametrics() {
    let broker = Mosquitto::start();
    let vm = VictoriaMetrics::start();
    let gw = TestGateway::start(&config(&broker, &vm)).await;
    let mut p = Publisher::start(broker.port, "suspect-publisher");
    // Device times end 9 s before now, so the jump's five-minute hold, which the gateway's own
    // clock ends when the point goes quiet, outlasts the test.
    let base = (hazard_gateway::clock::system().now().as_millis() / 1000 - 800) * 1000;
    let at = |s: i64| base + s * 1000;
    let payload = |s: i64, v: f64| format!(r#"{{"v": {v}, "t": {}}}"#, at(s));
    let first = format!(
        "/api/v1/points/reactor%2FTT-1/history?resolution=raw&from=0&to={}",
        at(1)
    );
    let mut subscribed = false;
    for _ in 0..150 {
        p.send("t/TT-1", payload(0, value(0))).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if gw.get_json(&first).await["readings"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            subscribed = true;
            break;
        }
    }
    assert!(subscribed, "the gateway never subscribed to t/TT-1");
    // Every 10 s to 790 s; then 130 °C one second after 62.0 °C: 68 °C/s, over 3 °C/s.
    let mut sent: Vec<(i64, f64)> = vec![(0, value(0))];
    for s in (10..=790).step_by(10) {
        sent.push((s, value(s)));
    }
    sent.push((791, 130.0));
    for &(s, v) in &sent[1..] {
        p.send("t/TT-1", payload(s, v)).await;
    }
    let last = at(791);
    let alarms: Vec<Value> = wait_for("the jump journaled", WAIT, || async {
        let j = gw.get_json("/api/v1/alarms/history?limit=1000").await;
        let list = j.as_array()?.clone();
        list.iter()
            .any(|e| e["alarm_id"] == "reactor/TT-1:implausible_jump")
            .then_some(list)
    })
    .await;
    let mut alarms = alarms;
    alarms.sort_by_key(|e| e["seq"].as_u64());
    let seen: Vec<(String, String, i64)> = alarms
        .iter()
        .filter(|e| e["subject"] == "reactor/TT-1")
        .map(|e| {
            (
                e["alarm_id"].as_str().unwrap_or_default().to_string(),
                e["transition"].as_str().unwrap_or_default().to_string(),
                e["ts"].as_i64().unwrap_or_default() / 1_000_000,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            // Frozen from 100 s: stuck at 400 s (5 min), back when it moves at 610 s.
            ("reactor/TT-1:stuck".into(), "raised".into(), at(400)),
            ("reactor/TT-1:stuck".into(), "cleared".into(), at(610)),
            // The checks run before the process alarms, on the same reading.
            ("reactor/TT-1:implausible_jump".into(), "raised".into(), last),
            ("reactor/TT-1:high".into(), "raised".into(), last),
        ],
        "{alarms:#?}"
    );
    let stuck = alarms
        .iter()
        .find(|e| e["alarm_id"] == "reactor/TT-1:stuck")
        .expect("stuck alarm");
    assert_eq!(stuck["condition"], "stuck");
    assert_eq!(stuck["class"], "fault");
    assert_eq!(stuck["priority"], "medium");

    // The quality each reading should carry: suspect from 400 s to 600 s and at the jump.
    let expected: BTreeMap<i64, &str> = sent
        .iter()
        .map(|&(s, _)| {
            (
                at(s),
                if (400..=600).contains(&s) || s == 791 {
                    "suspect"
                } else {
                    "good"
                },
            )
        })
        .collect();

    // Raw history keeps every quality change with its time.
    let h = gw
        .get_json(&format!(
            "/api/v1/points/reactor%2FTT-1/history?resolution=raw&from={}&to={}",
            at(0),
            last + 1
        ))
        .await;
    let rows = h["readings"].as_array().expect("raw readings");
    let mut changes = Vec::new();
    for r in rows {
        let q = r["quality"].as_str().unwrap_or_default().to_string();
        if changes.last().is_none_or(|(_, last): &(i64, String)| *last != q) {
            changes.push((r["ts_ms"].as_i64().unwrap_or_default(), q));
        }
    }
    assert_eq!(
        changes,
        vec![
            (at(0), "good".to_string()),
            (at(400), "suspect".to_string()),
            (at(610), "good".to_string()),
            (last, "suspect".to_string()),
        ],
        "{rows:#?}"
    );

    // The live point says so too.
    let point = gw.point("reactor/TT-1").await;
    assert_eq!(point["quality"], "suspect", "{point:#?}");
    assert_eq!(point["value"], 130.0);

    // Counted by quality as the rules engine passed them on.
    let m = gw.metrics().await;
    let suspect = expected.values().filter(|q| **q == "suspect").count() as f64;
    assert_eq!(metric(&m, "hazard_readings_total", &["quality=\"suspect\""]), suspect);

    // Every reading in the store with its quality code (6 for suspect, 0 for good).
    let store: BTreeMap<i64, f64> = wait_for("every reading in VictoriaMetrics", WAIT, || async {
        let series = vm.export("hazard_reading_quality{gateway=\"suspect-gw\"}").await;
        let (_, ts, vals) = series.into_iter().find(|(l, _, _)| l["point"] == "reactor/TT-1")?;
        let got: BTreeMap<i64, f64> = ts.into_iter().zip(vals).collect();
        (got.len() == expected.len()).then_some(got)
    })
    .await;
    let want: BTreeMap<i64, f64> = expected
        .iter()
        .map(|(t, q)| (*t, if *q == "suspect" { 6.0 } else { 0.0 }))
        .collect();
    assert_eq!(store, want);
}
