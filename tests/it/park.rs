//! A park: two gateways with distinct ids, each polling its own plant, share one MQTT broker
//! (alarms northbound) and one VictoriaMetrics. Both plants use the same device names and
//! point ids, so only the gateway id keeps their records apart: every series carries its
//! gateway tag, alarm topics are namespaced, and each gateway's counts are exactly its own.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use support::{
    GatewayProcess, Messages, Mosquitto, MqttCollector, VictoriaMetrics, WAIT, free_port, simulator, wait_for,
};

const GATEWAYS: [&str; 2] = ["park-a-gw1", "park-a-gw2"];
const POINTS: [&str; 4] = ["MHS-001/GT-101", "MHS-001/GT-102", "MHS-001/GT-103", "MHS-001/GT-104"];

fn config(id: &str, dir: &Path, port: u16, sim: std::net::SocketAddr, broker: &str, vm: &str) -> String {
    format!(
        "[gateway]\nid = \"{id}\"\ndata_dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
         [[hazard_sources]]\nid = \"MHS-001\"\nname = \"tank area\"\nlevel = 2\n\
         [[devices]]\nname = \"gas-ai-1\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{sim}\" }}\ninterval = \"100ms\"\n\
         hazard_source = \"MHS-001\"\n\
         points = {{ ch1 = \"{}\", ch2 = \"{}\", ch3 = \"{}\", ch4 = \"{}\" }}\n\
         [[tsdb]]\nname = \"park-vm\"\nurl = \"{vm}\"\napi = \"v2\"\norg = \"park\"\nbucket = \"safety\"\nbatch_age = \"100ms\"\n\
         [[mqtt_north]]\nname = \"park-broker\"\nbroker = \"{broker}\"\nkeep_alive = \"5s\"\n",
        dir.join(id).display(),
        POINTS[0],
        POINTS[1],
        POINTS[2],
        POINTS[3],
    )
}

/// Readings of `point` the gateway evaluated, from its history's per-minute counts (every
/// reading is counted there, stored raw or not).
fn readings_in_history(data_dir: &Path, point: &str) -> i64 {
    support::sqlite_count(
        &data_dir.join("history.db"),
        "SELECT COALESCE(SUM(r.count + r.bad), 0) FROM rollup_minute r JOIN points p ON p.id = r.point WHERE p.name = ?1",
        [point],
    )
}

/// Alarm transitions (alarm id, transition) the broker carried on `topic` for `gateway`.
fn transitions(got: &Messages, topic: &str) -> Vec<(String, String)> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == topic)
        .map(|(_, v)| {
            (
                v["event"]["alarm_id"].as_str().unwrap_or_default().to_string(),
                v["event"]["transition"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_broker_and_one_tsdb_without_collisions() {
    let vm = VictoriaMetrics::start();
    let broker = Mosquitto::start();
    let sub = MqttCollector::start(broker.port, "park-test-subscriber", "hazard/#", false);
    sub.wait_subscribed().await;
    let got = sub.got.clone();

    let dir = tempfile::tempdir().unwrap();
    let sims = [
        simulator("ai4-gas-lel", None).await,
        simulator("ai4-gas-lel", None).await,
    ];
    let mut gateways = Vec::new();
    for (id, sim) in GATEWAYS.iter().zip(&sims) {
        for ch in ["ch1", "ch2", "ch3", "ch4"] {
            sim.pin(ch, 1.0);
        }
        let port = free_port();
        let path = dir.path().join(format!("{id}.toml"));
        std::fs::write(
            &path,
            config(id, dir.path(), port, sim.local_addr(), &broker.addr(), &vm.url()),
        )
        .unwrap();
        gateways.push(GatewayProcess::start(&path, port).await);
    }

    // The same point id leaks in both plants; gateway 2 also has a second detector over.
    sims[0].pin("ch1", 30.0);
    sims[1].pin("ch1", 30.0);
    sims[1].pin("ch2", 30.0);
    let topic = |id: &str| format!("hazard/{id}/alarms");
    wait_for("each gateway's alarms on its own topic", WAIT, || async {
        let one = transitions(&got, &topic(GATEWAYS[0])).len();
        let two = transitions(&got, &topic(GATEWAYS[1])).len();
        (one >= 1 && two >= 2).then_some(())
    })
    .await;
    for gw in &mut gateways {
        assert!(gw.signal_and_wait("TERM").success(), "{}", gw.stderr());
    }

    // MQTT: topics namespaced by gateway id, payloads carry it, and each has only its alarms.
    for (topic_name, payload) in got.lock().unwrap().iter() {
        let id = payload["gateway"].as_str().unwrap_or_default();
        assert!(GATEWAYS.contains(&id), "{topic_name}: {payload}");
        assert_eq!(topic_name, &topic(id), "{payload}");
    }
    let raised = |id: &str| -> BTreeSet<String> {
        transitions(&got, &topic(id))
            .into_iter()
            .filter(|(_, t)| t == "raised")
            .map(|(a, _)| a)
            .collect()
    };
    assert_eq!(raised(GATEWAYS[0]), BTreeSet::from(["MHS-001/GT-101:high".to_string()]));
    assert_eq!(
        raised(GATEWAYS[1]),
        BTreeSet::from(["MHS-001/GT-101:high".to_string(), "MHS-001/GT-102:high".to_string()])
    );

    // TSDB: each gateway's series hold exactly the readings and transitions it made (polled:
    // the store makes new series searchable shortly after it acknowledged them) ...
    for id in GATEWAYS {
        let history: BTreeMap<String, i64> = POINTS
            .iter()
            .map(|p| (p.to_string(), readings_in_history(&dir.path().join(id), p)))
            .collect();
        assert!(history.values().all(|n| *n > 0), "{id}: {history:?}");
        let mqtt_transitions = transitions(&got, &topic(id)).len();
        let mut last = (BTreeMap::new(), 0);
        for _ in 0..100 {
            last = in_store(&vm, id).await;
            if last == (history.clone(), mqtt_transitions) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(last.0, history, "{id}: readings in VictoriaMetrics vs. evaluated");
        assert_eq!(last.1, mqtt_transitions, "{id}: alarm lines vs. MQTT");
    }
    // ... and every series carries a gateway tag of the park.
    let all = vm.export("{__name__=~\"hazard_.*\"}").await;
    assert!(all.len() >= 2 * 2 * POINTS.len(), "{} series", all.len());
    for (labels, _, _) in &all {
        let id = labels["gateway"].as_str().unwrap_or_default();
        assert!(GATEWAYS.contains(&id), "series without a gateway of the park: {labels}");
    }
}

/// Readings per point and alarm transition lines of gateway `id` in the store.
async fn in_store(vm: &VictoriaMetrics, id: &str) -> (BTreeMap<String, i64>, usize) {
    let mut per_point = BTreeMap::new();
    for (labels, ts, _) in vm.export(&format!("hazard_reading_quality{{gateway=\"{id}\"}}")).await {
        let point = labels["point"].as_str().unwrap_or_default().to_string();
        *per_point.entry(point).or_insert(0i64) += ts.len() as i64;
    }
    let mut alarm_lines = 0;
    for (labels, ts, _) in vm.export(&format!("hazard_alarm_seq{{gateway=\"{id}\"}}")).await {
        assert_eq!(labels["transition"], "raised", "{labels}");
        alarm_lines += ts.len();
    }
    (per_point, alarm_lines)
}
