//! Northbound MQTT beyond alarms, against a real Mosquitto: readings of the chosen points on
//! `hazard/<gateway>/readings/<point>`, thinned per point, and the whole northbound link over
//! TLS with the park's CA and a client certificate the broker requires.

use crate::support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use serde_json::Value;
use support::{
    Messages, Mosquitto, MqttCollector, TestGateway, WAIT, client_cert, self_signed_cert, simulator, wait_for,
};

fn gateway_config(north: &str, sim: std::net::SocketAddr) -> String {
    format!(
        "[gateway]\nid = \"north-gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n{north}\n\
         [[devices]]\nname = \"gas\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{sim}\" }}\ninterval = \"100ms\"\n\
         points = {{ ch1 = \"MHS-001/GT-101\", ch2 = \"MHS-001/GT-102\", ch3 = \"MHS-002/GT-201\", ch4 = \"MHS-002/GT-202\" }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_of_matching_points_arrive_on_per_point_topics_at_most_once_per_interval() {
    let broker = Mosquitto::start();
    let sub = MqttCollector::start(
        broker.port,
        &format!("sub-{}", broker.port),
        "hazard/+/readings/#",
        false,
    );
    let (got, subscribed) = (sub.got.clone(), sub.subscribed.clone());
    wait_for("the subscription", WAIT, || async {
        subscribed.load(Ordering::SeqCst).then_some(())
    })
    .await;
    let sim = simulator("ai4-gas-lel", None).await;
    for (ch, v) in [("ch1", 3.0), ("ch2", 4.0), ("ch3", 5.0), ("ch4", 6.0)] {
        assert!(sim.pin(ch, v));
    }
    let north = format!(
        "[[mqtt_north]]\nname = \"park\"\nbroker = \"{}\"\nkeep_alive = \"5s\"\n\
         readings = {{ points = \"MHS-001/*\", batch = \"reading\", qos = \"at_least_once\", interval = \"500ms\" }}",
        broker.addr()
    );
    let gw = TestGateway::start(&gateway_config(&north, sim.local_addr())).await;
    let per_point = |got: &Messages| {
        let mut m: HashMap<String, Vec<(String, Value)>> = HashMap::new();
        for (topic, v) in got.lock().unwrap().iter() {
            m.entry(v["point"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push((topic.clone(), v.clone()));
        }
        m
    };
    wait_for("three readings of each matching point", WAIT, || async {
        let m = per_point(&got);
        (m.len() >= 2 && m.values().all(|v| v.len() >= 3)).then_some(())
    })
    .await;
    let m = per_point(&got);
    assert_eq!(m.len(), 2, "only MHS-001 points: {:?}", m.keys().collect::<Vec<_>>());
    for (point, expected) in [("MHS-001/GT-101", 3.0), ("MHS-001/GT-102", 4.0)] {
        let msgs = &m[point];
        assert!(
            msgs.iter()
                .all(|(t, _)| *t == format!("hazard/north-gw/readings/{point}"))
        );
        let (_, first) = &msgs[0];
        assert_eq!(first["gateway"], "north-gw");
        assert_eq!(first["quality"], "good");
        assert!((first["value"].as_f64().unwrap() - expected).abs() < 0.01, "{first}");
        let ts: Vec<i64> = msgs.iter().map(|(_, v)| v["ts_ms"].as_i64().unwrap()).collect();
        // Polled every 100 ms, published at most every 500 ms.
        assert!(ts.windows(2).all(|w| w[1] - w[0] >= 250), "{point}: {ts:?}");
    }
    // The gateway counts a reading delivered once it has read the broker's acknowledgement,
    // which may come a moment after the subscriber got it.
    wait_for("the gateway to count six readings delivered", WAIT, || async {
        let metrics = gw.metrics().await;
        (support::metric(&metrics, "hazard_mqtt_north_readings_total", &["result=\"delivered\""]) >= 6.0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_and_readings_reach_a_broker_that_requires_tls_and_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    self_signed_cert(certs.path());
    client_cert(certs.path());
    let broker = Mosquitto::start_tls(certs.path());
    let tls_port = broker.tls_port.unwrap();
    let sub = MqttCollector::start(broker.port, &format!("sub-{}", broker.port), "hazard/#", false);
    let (got, subscribed) = (sub.got.clone(), sub.subscribed.clone());
    wait_for("the subscription", WAIT, || async {
        subscribed.load(Ordering::SeqCst).then_some(())
    })
    .await;
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        assert!(sim.pin(ch, 2.0));
    }
    let c = certs.path().display();
    let north = format!(
        "[[mqtt_north]]\nname = \"park\"\nbroker = \"127.0.0.1:{tls_port}\"\nkeep_alive = \"5s\"\n\
         readings = {{ points = \"MHS-002/GT-201\" }}\n\
         tls = {{ ca_file = \"{c}/ca.pem\", cert = \"{c}/client.pem\", key = \"{c}/client.key\" }}"
    );
    let gw = TestGateway::start(&gateway_config(&north, sim.local_addr())).await;
    assert!(sim.pin("ch1", 30.0));
    wait_for("the alarm and a reading over TLS", WAIT, || async {
        let got = got.lock().unwrap();
        let alarm = got
            .iter()
            .any(|(t, v)| t == "hazard/north-gw/alarms" && v["event"]["alarm_id"] == "MHS-001/GT-101:high");
        // Batched (the default): the device's message carries the point.
        let reading = got.iter().any(|(t, v)| {
            t == "hazard/north-gw/readings/gas"
                && v["device"] == "gas"
                && v["points"][0]["id"] == "MHS-002/GT-201"
                && v["points"][0]["quality"] == "good"
        });
        (alarm && reading).then_some(())
    })
    .await;
    let metrics = gw.metrics().await;
    assert!(support::metric(&metrics, "hazard_mqtt_north_publishes_total", &["result=\"acked\""]) >= 1.0);
}

#[test]
fn northbound_tls_and_reading_mistakes_are_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    self_signed_cert(dir.path());
    let path = dir.path().join("gw.toml");
    let check = |north: &str| {
        let text =
            format!("[gateway]\nid = \"g\"\n[[mqtt_north]]\nname = \"park\"\nbroker = \"127.0.0.1:8883\"\n{north}\n");
        hazard_gateway::config::GatewayConfig::parse(&path, &text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(check("tls = { ca_file = \"ca.pem\" }"), Ok(()));
    let missing = check("tls = { ca_file = \"nope.pem\" }").unwrap_err();
    let p = path.display();
    assert!(missing.contains(&format!("{p}:6:")), "{missing}");
    assert!(
        missing.contains("mqtt_north[0].tls.ca_file") && missing.contains("nope.pem"),
        "{missing}"
    );
    let half = check("tls = { ca_file = \"ca.pem\", cert = \"cert.pem\" }").unwrap_err();
    assert!(
        half.contains("mqtt_north[0].tls.key") && half.contains("needs its `key`"),
        "{half}"
    );
    let wrong = check("tls = { ca_file = \"ca.pem\", cert = \"cert.pem\", key = \"ca.key\" }").unwrap_err();
    assert!(wrong.contains("mqtt_north[0].tls.cert"), "{wrong}");
    let glob = check("readings = { points = \"MHS-[\" }").unwrap_err();
    assert!(
        glob.contains("mqtt_north[0].readings.points") && glob.contains("not a glob"),
        "{glob}"
    );
    let topic = check("readings = { points = \"*\", batch = \"reading\", topic = \"hazard/all\" }").unwrap_err();
    assert!(topic.contains("mqtt_north[0].readings.topic"), "{topic}");
    // A per-point topic written for the shape before batching names the way on.
    let old = check("readings = { points = \"*\", topic = \"park/{point}\" }").unwrap_err();
    assert!(
        old.contains(&format!("{p}:6:"))
            && old.contains("mqtt_north[0].readings.topic")
            && old.contains("batch = \"reading\""),
        "{old}"
    );
    let qos0 = check("readings = { points = \"*\", qos = \"at_most_once\" }").unwrap_err();
    assert!(
        qos0.contains("mqtt_north[0].readings.qos") && qos0.contains("QoS 1"),
        "{qos0}"
    );
    let window = check("readings = { points = \"*\", window = \"1s\" }").unwrap_err();
    assert!(window.contains("mqtt_north[0].readings.window"), "{window}");
    let flight = check("readings = { points = \"*\", in_flight = 0 }").unwrap_err();
    assert!(
        flight.contains("mqtt_north[0].readings.in_flight") && flight.contains("between 1 and 4096"),
        "{flight}"
    );
    assert_eq!(
        check(
            "readings = { points = \"*\", batch = \"window\", window = \"2s\", max_readings = 200, in_flight = 512 }"
        ),
        Ok(())
    );
}
