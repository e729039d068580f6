//! Criterion bench of the coal-mine uplink's hot path: real-time values (CDSS) encoded into a
//! complete file, in UTF-8 and in GBK, on one core.

use std::fmt;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::sinks::uplink::coal::{CoalEncoder, CoalPoint, CoalSettings, TextEncoding};
use hazard_gateway::sinks::uplink::time::{DEFAULT_ZONE, zone};
use hazard_gateway::sinks::uplink::{Codes, Encoder, RecordKind, UplinkRecord};

/// One CDSS file of `points` records in `encoding`.
#[derive(Clone, Copy)]
struct Scenario {
    points: usize,
    encoding: TextEncoding,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enc = match self.encoding {
            TextEncoding::Utf8 => "utf8",
            TextEncoding::Gbk => "gbk",
        };
        write!(f, "{enc}/{}_points", self.points)
    }
}

fn setup(s: Scenario) -> (CoalEncoder, Vec<UplinkRecord>) {
    let mut settings = CoalSettings::for_mine("140211001", "示例煤矿", s.encoding);
    let records: Vec<_> = (0..s.points)
        .map(|i| {
            let point = format!("8101/face/CH4-{i:03}");
            settings.points.insert(
                point.clone(),
                CoalPoint {
                    type_name: Some("甲烷".into()),
                    location: Some(format!("8101工作面{i}号")),
                    ..Default::default()
                },
            );
            UplinkRecord {
                kind: RecordKind::Realtime,
                point: point.into(),
                codes: Codes {
                    enterprise: "140211001".into(),
                    hazard_source: None,
                    point: format!("140211001MN{i:04}").into(),
                },
                unit: "%CH4".into(),
                time: Timestamp::from_millis(1_795_564_800_000),
                value: Some(0.12 + (i % 50) as f64 * 0.01),
                // One sensor in fifty has failed: its record has a fault state and no value.
                quality: if i % 50 == 49 {
                    Quality::OutOfRange
                } else {
                    Quality::Good
                },
                stats: None,
                alarm: None,
                meta: None,
            }
        })
        .collect();
    let enc = CoalEncoder::new(
        "bench",
        settings,
        zone(DEFAULT_ZONE).expect("zone"),
        Duration::from_secs(300),
    );
    (enc, records)
}

fn bench_cdss(c: &mut Criterion) {
    let mut g = c.benchmark_group("coal_cdss");
    for encoding in [TextEncoding::Utf8, TextEncoding::Gbk] {
        for points in [200, 2000] {
            let s = Scenario { points, encoding };
            let (mut enc, records) = setup(s);
            g.throughput(Throughput::Elements(points as u64));
            g.bench_with_input(BenchmarkId::from_parameter(s), &records, |b, records| {
                b.iter(|| enc.encode(records).expect("encodes").len())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_cdss);
criterion_main!(benches);
