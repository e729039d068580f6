//! Criterion benches of the MQTT payload decoders, one per form (plain text, one JSON value,
//! an object with several fields, an array of readings with device times and status), and of
//! the whole routing of one message (topic match, decode, point-id template, declared-point
//! lookup) as the broker task runs it.

use std::fmt;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::sources::mqtt::decode::{Accept, JsonLayout, Layout, QualityField, Values};
use hazard_gateway::sources::mqtt::route::Router;
use hazard_gateway::sources::mqtt::time::TimeUnit;
use hazard_gateway::telemetry::MqttInMetrics;

const ARRIVAL: Timestamp = Timestamp::from_nanos(1_764_000_000_000_000_000);

/// One decoder with a payload of its form.
struct Case {
    name: &'static str,
    layout: Layout,
    payload: Vec<u8>,
    readings: u64,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

fn one(ptr: &str) -> JsonLayout {
    JsonLayout {
        accept: Accept::ALL,
        array: None,
        values: Values::One(ptr.into()),
        timestamp: None,
        timestamp_unit: TimeUnit::S,
        quality: None,
    }
}

fn array_payload(n: usize) -> Vec<u8> {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "P{i:03}", "v": {}.{}, "t": {}, "st": 0}}"#,
                i % 100,
                i % 7,
                1_764_000_000_000i64 + i as i64
            )
        })
        .collect();
    format!(r#"{{"station": "dam-1", "data": [{}]}}"#, items.join(",")).into_bytes()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "text",
            layout: Layout::Text,
            payload: b"12.75".to_vec(),
            readings: 1,
        },
        Case {
            name: "json_value",
            layout: Layout::Json(one("/value")),
            payload: br#"{"value": "12.75", "unit": "%LEL"}"#.to_vec(),
            readings: 1,
        },
        Case {
            name: "json_fields_4",
            layout: Layout::Json(JsonLayout {
                accept: Accept::ALL,
                values: Values::Fields(
                    ["ch4", "co", "o2", "h2s"]
                        .iter()
                        .map(|f| (f.to_string(), format!("/gas/{f}")))
                        .collect(),
                ),
                timestamp: Some("/time".into()),
                ..one("")
            }),
            payload:
                br#"{"time": "2025-11-24T16:00:00.250+08:00", "gas": {"ch4": 0.42, "co": 24, "o2": 20.9, "h2s": 1.5}}"#
                    .to_vec(),
            readings: 4,
        },
        Case {
            name: "json_array_100",
            layout: Layout::Json(JsonLayout {
                accept: Accept::ALL,
                array: Some("/data".into()),
                values: Values::One("/v".into()),
                timestamp: Some("/t".into()),
                timestamp_unit: TimeUnit::Ms,
                quality: Some(QualityField {
                    pointer: "/st".into(),
                    map: vec![("0".into(), Quality::Good), ("1".into(), Quality::CommFault)],
                }),
            }),
            payload: array_payload(100),
            readings: 100,
        },
    ]
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("mqtt_decode");
    for case in cases() {
        g.throughput(Throughput::Elements(case.readings));
        g.bench_with_input(BenchmarkId::from_parameter(&case), &case, |b, case| {
            b.iter(|| {
                let mut sum = 0.0;
                let n = case
                    .layout
                    .decode(&case.payload, ARRIVAL, &mut |i| sum += i.value)
                    .expect("decodes");
                assert_eq!(n as u64, case.readings);
                sum
            })
        });
    }
    g.finish();
}

fn bench_route(c: &mut Criterion) {
    let config = r#"
[gateway]
id = "bench"
[[mqtt.brokers]]
name = "plant"
address = "127.0.0.1:1883"
[[mqtt.subscriptions]]
name = "dam"
broker = "plant"
topic = "park/{site}/dam/{station}"
point = "{station}/{json:/id}"
array = "/data"
value = "/v"
timestamp = "/t"
timestamp_unit = "ms"
quality = { pointer = "/st", map = { "0" = "good" } }
points = ["dam-1/P{000..099}"]
stale_after = "1m"
"#;
    let cfg = GatewayConfig::parse(Path::new("bench.toml"), config).expect("bench config");
    let mut router = Router::new(
        "plant",
        cfg.mqtt.subscriptions.clone(),
        &cfg.points,
        MqttInMetrics::default(),
        tokio::time::Instant::now(),
    );
    let payload = array_payload(100);
    let mut out = Vec::with_capacity(128);
    let mut g = c.benchmark_group("mqtt_route");
    g.throughput(Throughput::Elements(100));
    g.bench_function("array_100_to_declared_points", |b| {
        b.iter(|| {
            out.clear();
            let n = router.route(
                b"park/a/dam/dam-1",
                &payload,
                ARRIVAL,
                tokio::time::Instant::now(),
                &mut out,
            );
            assert_eq!(n, 100);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_route);
criterion_main!(benches);
