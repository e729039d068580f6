//! Northbound MQTT against a real Mosquitto: every alarm transition arrives at QoS 1 on the
//! gateway's topic, including one raised while the broker was down.

use crate::support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::{Mosquitto, MqttCollector, TestGateway, WAIT, simulator, wait_for};

fn seqs_of(got: &Arc<Mutex<Vec<(String, Value)>>>, alarm: &str) -> Vec<(u64, String)> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["event"]["alarm_id"] == alarm)
        .map(|(_, v)| {
            (
                v["event"]["seq"].as_u64().unwrap(),
                v["event"]["transition"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_transitions_reach_the_broker_even_across_its_restart() {
    let mut broker = Mosquitto::start();
    let sub = MqttCollector::start(broker.port, "north-test-subscriber", "hazard/+/alarms", true);
    let (got, subscribed) = (sub.got.clone(), sub.subscribed.clone());
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let config = format!(
        "[gateway]\nid = \"north-gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[mqtt_north]]\nname = \"park\"\nbroker = \"{}\"\nkeep_alive = \"5s\"\n\
         [[devices]]\nname = \"g\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"100ms\"\n",
        broker.addr(),
        sim.local_addr()
    );
    let mut gw = TestGateway::start(&config).await;
    // The subscriber's session must exist before anything is published.
    wait_for("the subscription", WAIT, || async {
        subscribed.load(Ordering::SeqCst).then_some(())
    })
    .await;

    sim.pin("ch1", 30.0);
    wait_for("raised", WAIT, || async { gw.alarm("g/ch1:high").await }).await;
    let (status, _) = gw
        .post_json(
            "/api/v1/alarms/g%2Fch1:high/ack",
            json!({"user": "op", "comment": "seen"}),
        )
        .await;
    assert_eq!(status, 200);
    sim.pin("ch1", 1.0);
    wait_for("three transitions on the broker", WAIT, || async {
        let s = seqs_of(&got, "g/ch1:high");
        (s.len() >= 3).then_some(())
    })
    .await;
    let transitions: Vec<_> = seqs_of(&got, "g/ch1:high").into_iter().map(|(_, t)| t).collect();
    assert_eq!(&transitions[..3], ["raised", "acknowledged", "cleared"]);
    assert!(
        got.lock()
            .unwrap()
            .iter()
            .all(|(topic, v)| topic == "hazard/north-gw/alarms" && v["gateway"] == "north-gw")
    );

    // The broker goes down; an alarm is raised meanwhile; the broker comes back.
    broker.stop();
    sim.pin("ch2", 30.0);
    wait_for("raised while the broker is down", WAIT, || async {
        gw.alarm("g/ch2:high").await
    })
    .await;
    broker.restart();
    wait_for("the transition after the broker returned", WAIT, || async {
        seqs_of(&got, "g/ch2:high")
            .iter()
            .any(|(_, t)| t == "raised")
            .then_some(())
    })
    .await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"hazard_mqtt_north_publishes_total{target="park",result="acked"}"#),
        "{metrics}"
    );
    gw.shutdown().await;
}
