//! A point's trend in the console (`tests/browser/console_trend.mjs`), drawn with the vendored
//! uPlot from the gateway's own history: every stored reading, the set-points and the alarm's
//! transitions, overlays with an axis per unit.

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{TestGateway, simulator, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
const POINT: &str = "MHS-001/GT-101";

async fn stored(gw: &TestGateway) -> usize {
    let h: Value = gw
        .get_json(&format!(
            "/api/v1/points/{}/history?resolution=raw",
            POINT.replace('/', "%2F")
        ))
        .await;
    h["readings"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|r| r["value"].is_number()).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_points_trend_shows_its_history_set_points_and_alarm_marks() {
    let _one = ONE_BROWSER.lock().await;
    let gas = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        assert!(gas.pin(ch, 2.0));
    }
    let tank = simulator("tank-ltp", None).await;
    let tank_device = format!(
        "[[devices]]\nname = \"tank-1\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"{}\" }}\n\
         interval = \"200ms\"\nhazard_source = \"MHS-001\"\n",
        tank.local_addr()
    );
    let config = support::console::gas_gateway("console-trend", gas.local_addr(), "", &tank_device);
    let gw = TestGateway::start(&config).await;
    // The first poll's 2.0 first: a step pinned before it would replace it, leaving one row
    // until history's heartbeat (a minute) adds the next.
    wait_for("the first reading stored", LIMIT, || async {
        (stored(&gw).await >= 1).then_some(())
    })
    .await;
    // A rising concentration, each step stored (well past the history deadband), ending in alarm.
    for (i, v) in [8.0, 14.0, 20.0, 30.0].into_iter().enumerate() {
        assert!(gas.pin("ch1", v));
        wait_for(&format!("reading {v} stored"), LIMIT, || async {
            (stored(&gw).await > i + 1).then_some(())
        })
        .await;
    }
    let alarm = "MHS-001/GT-101:high";
    wait_for("the alarm", LIMIT, || async { gw.alarm(alarm).await.map(|_| ()) }).await;
    let (code, body) = gw
        .post_json(
            &format!("/api/v1/alarms/{}/ack", alarm.replace('/', "%2F").replace(':', "%3A")),
            json!({"user": "值班员李四", "comment": "趋势核对"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let readings = stored(&gw).await;
    assert!(readings >= 5, "at least the first reading and four steps: {readings}");

    support::console::run_script(
        "console_trend.mjs",
        &format!("{}/", gw.base),
        &[
            ("POINT", POINT),
            ("READINGS", &readings.to_string()),
            ("SAME_UNIT", "MHS-001/GT-102"),
            ("OTHER_UNIT", "tank-1/temperature"),
        ],
        LIMIT,
    )
    .await;
}
