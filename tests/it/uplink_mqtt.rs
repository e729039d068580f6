//! Regulator uplink over MQTT against a real Mosquitto: batched JSON payloads on a templated
//! topic, QoS 1 acknowledged by PUBACK; the broker goes away for a while and every payload
//! the broker acknowledged reaches a persistent subscriber, the ones collected during the
//! outage with their own collection times.

use crate::support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use support::{Mosquitto, TestGateway, WAIT, metric, simulator, wait_for};

type Inbox = Arc<Mutex<Vec<(String, Value)>>>;

/// A persistent QoS 1 subscriber to `filter` that reconnects after errors.
fn subscribe(port: u16, filter: &str) -> Inbox {
    let inbox: Inbox = Arc::default();
    let mut opts = MqttOptions::new("uplink-test-platform", "127.0.0.1", port);
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let filter = filter.to_string();
    let sink = inbox.clone();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe(filter.clone(), QoS::AtLeastOnce).await.unwrap();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: Value = serde_json::from_slice(&p.payload).unwrap();
                    sink.lock().unwrap().push((p.topic.clone(), v));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    inbox
}

#[tokio::test]
async fn mqtt_uplink_delivers_every_acknowledged_payload_across_a_broker_outage() {
    let mut broker = Mosquitto::start();
    let inbox = subscribe(broker.port, "plant/#");
    let sim = simulator("ai4-gas-lel", None).await;
    let config = format!(
        r#"
[gateway]
id = "ul-gw"
[api]
listen = "127.0.0.1:0"

[[devices]]
name = "gas-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "250ms"
points = {{ ch1 = "A/GT-101", ch2 = "A/GT-102" }}

[[uplinks]]
name = "park"
realtime_interval = "1s"
replay_rate = 100
retry_max = "1s"
codes = {{ enterprise = "E-0001" }}
encoder = {{ type = "json", time_format = "%Y%m%d%H%M%S", record = {{ code = "{{point_code}}", v = "{{value}}", q = "{{quality}}", t = "{{time}}", ms = "{{time_ms}}" }}, batch = {{ dataId = "{{uuid}}", serviceId = "{{kind_name}}", n = "{{count}}", data = "{{records}}" }}, kind_names = {{ realtime = "SSSJ", basic = "JCSJ" }} }}
transport = {{ type = "mqtt", host = "127.0.0.1", port = {port}, topic = "plant/{{gateway}}/{{kind}}", ack_timeout = "3s" }}
"#,
        sim = sim.local_addr(),
        port = broker.port
    );
    let mut gw = TestGateway::start(&config).await;
    let metrics = gw.metric_handles().clone();
    wait_for("real-time payloads", WAIT, || async {
        let n = inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == "plant/ul-gw/SSSJ")
            .count();
        (n >= 3).then_some(())
    })
    .await;

    // The issue's outage: the platform's broker gone for a whole minute while data flows.
    broker.stop();
    let down_at = now_ms();
    tokio::time::sleep(Duration::from_secs(60)).await;
    broker.restart();
    let up_at = now_ms();

    // Wait until the backlog is out, then until the subscriber has everything acknowledged.
    wait_for("the backlog to drain", Duration::from_secs(60), || async {
        let text = metrics.render();
        (metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"park\""]) <= 1.0).then_some(())
    })
    .await;
    gw.shutdown().await;
    let text = metrics.render();
    let acked = metric(&text, "hazard_uplink_payloads_delivered_total", &["uplink=\"park\""]);
    let received = wait_for("every acknowledged payload at the subscriber", WAIT, || async {
        let got = inbox.lock().unwrap().clone();
        let ids: HashSet<String> = got
            .iter()
            .map(|(_, v)| v["dataId"].as_str().unwrap().to_string())
            .collect();
        (ids.len() as f64 >= acked).then_some(got)
    })
    .await;
    assert_eq!(
        text.matches("hazard_uplink_records_dropped_total{").count(),
        0,
        "nothing dropped"
    );

    // Basic data first, on its own topic; then real-time batches with both points.
    assert_eq!(received[0].0, "plant/ul-gw/JCSJ");
    assert_eq!(received[0].1["n"], 2);
    let realtime: Vec<&Value> = received
        .iter()
        .filter(|(t, _)| t == "plant/ul-gw/SSSJ")
        .map(|(_, v)| v)
        .collect();
    for v in &realtime {
        assert_eq!(v["n"], 2);
        assert_eq!(v["data"][0]["code"], "A/GT-101");
        assert_eq!(v["data"][0]["t"].as_str().unwrap().len(), 14);
    }
    // Rounds collected while the broker was down arrived afterwards with their own times.
    let during = realtime
        .iter()
        .filter_map(|v| v["data"][0]["ms"].as_i64())
        .filter(|t| *t > down_at + 1000 && *t < up_at - 1000)
        .count();
    assert!(during >= 4, "rounds collected during the outage: {during}");
}

fn now_ms() -> i64 {
    hazard_gateway::clock::system().now().as_millis()
}
