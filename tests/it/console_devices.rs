//! Names and places (`[labels]`) of points and devices, and MQTT brokers as devices, in the
//! API and in the console (a real browser, `tests/browser/console_devices.mjs`), against a
//! real Mosquitto that the test stops to see the broker go offline.

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use support::{ConsoleBrowser, Mosquitto, TestGateway, simulator};

const LIMIT: Duration = Duration::from_secs(120);
const POINT: &str = "MHS-001/GT-101";
const NAME: &str = "1号液氯储罐 可燃气体";
const DEVICE_NAME: &str = "罐区气体报警控制器";
const BROKER: &str = "mqtt-broker:plant";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_name_points_and_devices_and_a_broker_shows_online_then_offline() {
    let _one = ONE_BROWSER.lock().await;
    let mut broker = Mosquitto::start();
    let sim = simulator("ai4-gas-lel", None).await;
    for (ch, v) in [("ch1", 31.0), ("ch2", 2.0), ("ch3", 2.0), ("ch4", 2.0)] {
        assert!(sim.pin(ch, v));
    }
    let config = format!(
        r#"
[gateway]
id = "console-devices"
data_dir = "data"
[api]
listen = "127.0.0.1:0"
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

[[mqtt.brokers]]
name = "plant"
address = "{broker}"
keep_alive = "5s"
[[mqtt.subscriptions]]
name = "gas"
broker = "plant"
topic = "park/{{site}}/gas/{{tag}}"
point = "{{site}}/{{tag}}"
payload = "text"
unit = "%LEL"
kind = "gas"
points = ["A/GT-201"]

[labels.points."MHS-001/GT-101"]
name = "{NAME}"
description = "储罐顶部，可燃气体探测器"
location = {{ area = "液氯储罐区", unit = "T-101", floor = "罐顶" }}
[labels.devices.gas-ai-1]
name = "{DEVICE_NAME}"
location = {{ area = "罐区控制室" }}
[labels.devices."mqtt-broker:plant"]
name = "园区 MQTT 服务器"
"#,
        sim = sim.local_addr(),
        broker = broker.addr(),
    );
    let gw = TestGateway::start(&config).await;

    // The API carries the labels.
    let points = gw.get_json("/api/v1/points").await;
    let p = points
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == POINT)
        .expect("the point");
    assert_eq!(p["label"]["name"], NAME);
    assert_eq!(p["label"]["location"]["unit"], "T-101");
    let unlabelled = points
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "MHS-001/GT-102")
        .unwrap();
    assert!(unlabelled.get("label").is_none(), "{unlabelled}");
    let devices = gw.get_json("/api/v1/devices").await;
    let by_name = |n: &str| {
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no device {n} in {devices:#}"))
    };
    assert_eq!(by_name("gas-ai-1")["label"]["name"], DEVICE_NAME);
    assert_eq!(by_name(BROKER)["label"]["name"], "园区 MQTT 服务器");

    let mut browser = ConsoleBrowser::start_script(
        "console_devices.mjs",
        &format!("{}/", gw.base),
        &[
            ("LABELLED_POINT", POINT),
            ("NAME", NAME),
            ("PLACE", "液氯储罐区 · T-101 · 罐顶"),
            ("DEVICE", "gas-ai-1"),
            ("DEVICE_NAME", DEVICE_NAME),
            ("BROKER", BROKER),
        ],
    );
    browser.expect_line("READY", LIMIT).await;
    broker.stop();
    browser.proceed();
    browser.expect_line("DONE", LIMIT).await;
    browser.finish();
    let after = gw.get_json("/api/v1/devices").await;
    let b = after.as_array().unwrap().iter().find(|d| d["name"] == BROKER).unwrap();
    assert_eq!(b["mqtt"]["online"], false, "{b}");
}
