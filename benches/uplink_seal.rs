//! Criterion benches of the uplink seal stage on one core: JSON records encoded, encrypted and
//! wrapped as the regulator platforms want them.
//!
//! - `seal`: the seal stage alone on an encoded payload of N records (MEM shape: SM4-CBC, hex,
//!   `{appid, data}`; Jiangsu shape: AES-128-ECB, Base64,
//!   `{appId, serviceId, dataId, districtCode, data}`; SM4-ECB with Base64, no envelope).
//! - `encode_and_seal`: N selected records through the core's templated JSON encoder (one
//!   payload of N rows) and then sealed: the whole path from records to the bytes queued in
//!   the outbox; `encode_only` is the encoder alone for comparison.
//!
//! Throughput is in records, so criterion prints records/s.

use std::ffi::OsString;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::sinks::uplink::json::{JsonConfig, JsonEncoder};
use hazard_gateway::sinks::uplink::seal::{Sealer, build_with_env};
use hazard_gateway::sinks::uplink::{
    CipherConfig, Codes, Encoder, EnvelopeConfig, Payload, RecordKind, Seal, UplinkRecord,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    cipher: Option<CipherConfig>,
    #[serde(default)]
    envelope: Option<EnvelopeConfig>,
}

const MEM: &str = r#"
cipher = { type = "sm4_cbc", key = { env = "KEY16", encoding = "hex" }, iv = { env = "IV", encoding = "hex" }, output = "hex_upper" }
envelope = { type = "json", body = '{"appid":"{{appid}}","data":"{{data}}"}', constants = { appid = "HG3201000001" } }
"#;

const JIANGSU: &str = r#"
cipher = { type = "aes_128_ecb", key = { env = "KEY16", encoding = "hex" }, output = "base64" }
envelope = { type = "json", body = '{"appId":"{{appId}}","serviceId":"{{attr.kind}}","dataId":"{{uuid}}","districtCode":"{{districtCode}}","data":"{{data}}"}', constants = { appId = "js-app-01", districtCode = "320500" } }
"#;

const SM4_ECB_BARE: &str = r#"
cipher = { type = "sm4_ecb", key = { env = "KEY16", encoding = "hex" }, output = "base64" }
"#;

fn sealer(text: &str) -> Sealer {
    let doc: Doc = toml::from_str(text).expect("bench config parses");
    let env = |var: &str| -> Option<OsString> {
        match var {
            "KEY16" => Some("0123456789abcdeffedcba9876543210".into()),
            "IV" => Some("00112233445566778899aabbccddeeff".into()),
            _ => None,
        }
    };
    build_with_env(doc.cipher.as_ref(), doc.envelope.as_ref(), "bench", &env).expect("bench keys load")
}

/// The core's templated JSON encoder with the platform-style row template, `n` rows a payload.
fn encoder(n: usize) -> JsonEncoder {
    let text = format!(
        r#"
record = {{ enterpriseCode = "{{enterprise}}", hazardCode = "{{hazard_source}}", pointCode = "{{point_code}}", value = "{{value}}", unit = "{{unit}}", status = "{{status}}", time = "{{time}}" }}
batch = {{ rows = "{{records}}" }}
max_records = {n}
"#
    );
    let cfg: JsonConfig = toml::from_str(&text).expect("encoder config parses");
    let zone = jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone");
    JsonEncoder::new(&cfg, "bench", "gw", zone).expect("encoder builds")
}

fn records(n: usize) -> Vec<UplinkRecord> {
    (0..n)
        .map(|i| UplinkRecord {
            kind: RecordKind::Realtime,
            point: format!("tank{i}/level").into(),
            codes: Codes {
                enterprise: "320500001".into(),
                hazard_source: Some("320500001001".into()),
                point: format!("LT-{:03}", 100 + i).into(),
            },
            unit: Arc::from("%"),
            time: Timestamp::from_nanos(1_764_115_200_000_000_000 + i as i64 * 1_000_000_000),
            value: Some(40.0 + i as f64 * 0.37),
            quality: Quality::Good,
            stats: None,
            alarm: None,
            meta: None,
        })
        .collect()
}

fn payload(body: Vec<u8>, items: usize) -> Payload {
    Payload {
        body,
        attrs: vec![("kind".into(), "realtime".into())],
        items: items as u32,
        urgent: false,
    }
}

fn benches(c: &mut Criterion) {
    let shapes = [
        ("mem_sm4_cbc_hex", sealer(MEM)),
        ("jiangsu_aes_ecb_b64", sealer(JIANGSU)),
        ("sm4_ecb_b64_bare", sealer(SM4_ECB_BARE)),
    ];
    let mut group = c.benchmark_group("uplink_seal/seal");
    for n in [1usize, 50] {
        let body = encoder(n).encode(&records(n)).expect("records encode").remove(0).body;
        group.throughput(Throughput::Elements(n as u64));
        for (name, s) in &shapes {
            group.bench_with_input(BenchmarkId::new(*name, n), &body, |b, body| {
                b.iter(|| {
                    let mut p = payload(body.clone(), n);
                    s.seal(&mut p).expect("seals");
                    p.body.len()
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("uplink_seal/encode_and_seal");
    for n in [1usize, 50] {
        let records = records(n);
        let mut enc = encoder(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("encode_only", n), |b| {
            b.iter(|| enc.encode(&records).expect("records encode").len())
        });
        for (name, s) in &shapes {
            group.bench_function(BenchmarkId::new(*name, n), |b| {
                b.iter(|| {
                    let mut out = enc.encode(&records).expect("records encode");
                    for p in &mut out {
                        s.seal(p).expect("seals");
                    }
                    out.len()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(name = uplink_seal; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(uplink_seal);
