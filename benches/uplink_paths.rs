//! Criterion benches of the uplink encoders on one core: templated JSON records per second,
//! one record per payload (the MEM shape) and 100 records per batch payload (the provincial
//! `{appId, serviceId, dataId, data}` shape). Encrypted figures are added by the seal stage.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::sinks::uplink::json::{JsonConfig, JsonEncoder};
use hazard_gateway::sinks::uplink::{Codes, Encoder, RecordKind, UplinkRecord, time};

const RECORDS: usize = 100;

fn records() -> Vec<UplinkRecord> {
    (0..RECORDS)
        .map(|i| UplinkRecord {
            kind: RecordKind::Realtime,
            point: Arc::from(format!("MHS-001/GT-{i:03}").as_str()),
            codes: Codes {
                enterprise: Arc::from("91320500MA1XXXXXX"),
                hazard_source: Some(Arc::from("320500001")),
                point: Arc::from(format!("GT{i:03}").as_str()),
            },
            unit: Arc::from("%LEL"),
            time: Timestamp::from_millis(1_764_000_000_000 + i as i64 * 1000),
            value: (i % 10 != 9).then_some(1.5 + i as f64 / 7.0),
            quality: if i % 10 == 9 { Quality::CommFault } else { Quality::Good },
            stats: None,
            alarm: None,
            meta: None,
        })
        .collect()
}

fn encoder(text: &str) -> JsonEncoder {
    let cfg: JsonConfig = toml::from_str(text).expect("encoder config");
    JsonEncoder::new(&cfg, "bench", "gw-1", time::zone(time::DEFAULT_ZONE).expect("zone")).expect("encoder")
}

fn bench(c: &mut Criterion) {
    let recs = records();
    let mut g = c.benchmark_group("uplink_json_encode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    let per_record = r#"
        record = { qybm = "{enterprise}", wxyid = "{hazard_source}", zbbm = "{point_code}", z = "{value}", dw = "{unit}", zt = "{status}", cjsj = "{time}" }
        status = { good = "0", comm_fault = "1" }
    "#;
    let batch = r#"
        record = { qybm = "{enterprise}", zbbm = "{point_code}", z = "{value}", zt = "{status}", cjsj = "{time}" }
        batch = { appId = "APP", serviceId = "{kind_name}", dataId = "{uuid}", districtCode = "320500", data = "{records}" }
        max_records = 100
    "#;
    for (name, text) in [("one_record_per_payload", per_record), ("batch_of_100", batch)] {
        let mut e = encoder(text);
        g.bench_with_input(BenchmarkId::new("records", name), &recs, |b, recs| {
            b.iter(|| e.encode(recs).expect("encodes"));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
