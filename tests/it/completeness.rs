//! The completeness ledger end to end: a level published once a second through a real
//! Mosquitto, with device timestamps, on an injected clock; the broker goes away for a minute
//! and the gateway is stopped for a minute and started again on the same data dir. The
//! ledger counts exactly what was published, and shows one `communication` gap for the
//! broker outage and one `gateway_down` gap for the restart, with their bounds.

use std::sync::Arc;
use std::time::Duration;

use crate::support;

use hazard_gateway::clock::ManualClock;
use hazard_gateway::model::Timestamp;
use serde_json::Value;
use support::mqtt::Publisher;
use support::{Mosquitto, TestGateway, WAIT, wait_for};

/// 2026-12-07 00:00 site time (+08:00), a minute boundary.
const T0: i64 = 1_796_572_800_000;
const POINT: &str = "site/TT-1";
const PROBE: &str = "site/probe";

fn config(broker: &Mosquitto) -> String {
    format!(
        r#"
[gateway]
id = "ledger-gw"
[api]
listen = "127.0.0.1:0"
# The scripted levels step by several percent a second, which the suspect-data checks would
# doubt; this test counts readings, so every one stays good.
[alarms]
suspect_data = false

[[mqtt.brokers]]
name = "plant"
address = "{}"
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
points = ["site/TT-1", "site/probe"]
# One reading a second is expected; silence is judged by the broker link in this test, not by
# the wall-clock stale limit.
interval = "1s"
stale_after = "1h"
"#,
        broker.addr()
    )
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

/// Publishes the probe point until the gateway has it: the subscription is live, and no
/// reading of the counted point is sent twice.
async fn until_subscribed(gw: &TestGateway, p: &mut Publisher, seq: &mut u32, ts_ms: i64) {
    let first = *seq + 1;
    for _ in 0..150 {
        *seq += 1;
        p.send("levels/probe", format!(r#"{{"v": {}, "t": {ts_ms}}}"#, *seq % 100))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let v = gw.point(PROBE).await["value"].as_f64();
        if v.is_some_and(|v| (first..=*seq).any(|s| f64::from(s % 100) == v)) {
            return;
        }
    }
    panic!("the gateway never received the probe");
}

/// Publishes the counted point at device times `secs` (one reading each) and waits until the
/// last is the point's current value.
async fn publish(gw: &TestGateway, p: &mut Publisher, secs: std::ops::Range<i64>) {
    let last = T0 + (secs.end - 1) * 1000;
    for t in secs {
        let v = 40.0 + (t % 13) as f64;
        p.send("levels/TT-1", format!(r#"{{"v": {v}, "t": {}}}"#, T0 + t * 1000))
            .await;
    }
    wait_for("the last reading processed", WAIT, || async {
        (gw.point(POINT).await["ts_ms"].as_i64() == Some(last)).then_some(())
    })
    .await;
}

fn row<'a>(ledger: &'a Value, key: &str) -> &'a Value {
    ledger["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["key"] == key))
        .unwrap_or_else(|| panic!("no row {key}: {ledger:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_and_a_gateway_restart_are_counted_gaps_and_every_reading_is_counted() {
    let mut broker = Mosquitto::start();
    let clock = Arc::new(ManualClock::new(at(0)));
    let cfg = config(&broker);
    let mut gw = TestGateway::start_with(&cfg, tempfile::tempdir().unwrap(), clock.clone()).await;
    let mut p = Publisher::start(broker.port, "ledger-publisher");
    let mut seq = 0;

    // Three minutes of readings, 00:00:00 to 00:02:59.
    until_subscribed(&gw, &mut p, &mut seq, T0).await;
    publish(&gw, &mut p, 0..180).await;

    // The broker goes away at 00:03:00 and is back at 00:04:00.
    clock.set(at(180));
    broker.stop();
    wait_for("the point marked comm_fault", WAIT, || async {
        (gw.point(POINT).await["quality"] == "comm_fault").then_some(())
    })
    .await;
    clock.set(at(240));
    broker.restart();
    until_subscribed(&gw, &mut p, &mut seq, T0 + 240_000).await;
    publish(&gw, &mut p, 240..360).await;

    // The gateway stops at 00:06:00 and starts again at 00:07:00 on the same data dir.
    clock.set(at(360));
    gw.shutdown().await;
    let dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().unwrap());
    drop(gw);
    clock.set(at(420));
    let gw = TestGateway::start_with(&cfg, dir, clock.clone()).await;
    until_subscribed(&gw, &mut p, &mut seq, T0 + 420_000).await;
    // Up to 00:10:00; the reading at 00:10:00 closes the last counted minute.
    publish(&gw, &mut p, 420..601).await;
    clock.set(at(600));

    let query = format!("/api/v1/completeness?from={T0}&to={}&group=point&by=day", T0 + 600_000);
    // The last answer is kept, so a count that never settles says what it was.
    let seen = std::sync::Mutex::new(Value::Null);
    let ledger = tokio::time::timeout(WAIT, async {
        loop {
            let l = gw.get_json(&query).await;
            if row(&l, POINT)["received_good"] == 480 {
                return l;
            }
            let minutes = gw
                .get_json(&format!(
                    "/api/v1/points/site%2FTT-1/history?resolution=minute&from={T0}&to={}",
                    T0 + 700_000
                ))
                .await;
            *seen.lock().unwrap() = serde_json::json!({"row": row(&l, POINT), "minutes": minutes["minutes"]});
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the last minute never counted: {:#}", seen.lock().unwrap()));
    assert_eq!(
        (ledger["from_ms"].as_i64(), ledger["to_ms"].as_i64()),
        (Some(T0), Some(T0 + 600_000))
    );
    let r = row(&ledger, POINT);
    assert_eq!(r["bucket"], "2026-12-07", "{r:#}");
    assert_eq!(r["expected"], 600, "one reading a second for ten minutes: {r:#}");
    assert_eq!(r["received_good"], 480, "{r:#}");
    let gaps: Vec<(i64, i64, &str)> = r["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["start_ms"].as_i64().unwrap(),
                g["end_ms"].as_i64().unwrap(),
                g["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        gaps,
        [
            (T0 + 180_000, T0 + 240_000, "communication"),
            (T0 + 360_000, T0 + 420_000, "gateway_down"),
        ],
        "{r:#}"
    );
    assert_eq!(r["online_ms"], 480_000, "{r:#}");
    assert_eq!(r["online_rate"], 0.8, "{r:#}");
    assert_eq!(r["completeness"], 0.8, "{r:#}");

    // The downtime is a gap of every point: the gateway's row holds it twice.
    let whole = gw
        .get_json(&format!(
            "/api/v1/completeness?from={T0}&to={}&group=gateway&by=shift",
            T0 + 600_000
        ))
        .await;
    let g = row(&whole, "ledger-gw");
    assert_eq!(g["points"], 2, "{g:#}");
    assert_eq!(g["gap_ms"]["gateway_down"], 2 * 60_000, "{g:#}");

    // The day's report: the same counts, in a CSV Excel reads as UTF-8.
    let csv = gw
        .http
        .get(format!(
            "{}/api/v1/completeness/report.csv?day=2026-12-07&lang=en",
            gw.base
        ))
        .send()
        .await
        .expect("report")
        .text()
        .await
        .expect("text");
    assert!(csv.starts_with('\u{feff}'), "{csv}");
    let line = csv
        .lines()
        .find(|l| l.contains(&format!(",point,{POINT},")))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        line.starts_with(&format!("2026-12-07,point,{POINT},1,600,480,")),
        "{line}"
    );
    assert!(
        csv.contains(&format!(
            "{POINT},2026-12-07 00:06:00,2026-12-07 00:07:00,1.0,gateway_down"
        )),
        "{csv}"
    );
    let json = gw.get_json("/api/v1/completeness/report.json?day=2026-12-07").await;
    assert_eq!(
        row(&serde_json::json!({"rows": json["points"]}), POINT)["received_good"],
        480
    );
}
