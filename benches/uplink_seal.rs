//! Criterion benches of the uplink seal stage on one core: JSON records encoded, encrypted and
//! wrapped as the regulator platforms want them.
//!
//! - `seal`: the seal stage alone on an encoded payload of N records (MEM shape: SM4-CBC, hex,
//!   `{appid, data}` + `appsecret` header; Jiangsu shape: AES-128-ECB, Base64,
//!   `{appId, serviceId, dataId, districtCode, data}`; SM4-ECB with Base64, no envelope).
//! - `encode_and_seal`: N records rendered as JSON rows and then sealed, the whole path from
//!   selected records to the bytes in the outbox.
//!
//! Throughput is in records, so criterion prints records/s.

use std::ffi::OsString;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::config::error::SourceText;
use hazard_gateway::sinks::uplink::seal::{RawSeal, Sealer, build_with_env, validate};
use hazard_gateway::sinks::uplink::{Payload, Seal};
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    seal: RawSeal,
}

const MEM: &str = r#"
[seal]
cipher = "sm4-cbc"
key = { env = "KEY16", encoding = "hex" }
iv = { env = "IV", encoding = "hex" }
output = "hex-upper"
[seal.envelope]
body = '{"appid":"{{appid}}","data":"{{data}}"}'
constants = { appid = "HG3201000001" }
secrets = { appsecret = { env = "APPSECRET" } }
headers = { appsecret = "{{secret.appsecret}}" }
"#;

const JIANGSU: &str = r#"
[seal]
cipher = "aes-128-ecb"
key = { env = "KEY16", encoding = "hex" }
output = "base64"
[seal.envelope]
body = '{"appId":"{{appId}}","serviceId":"{{attr.service_id}}","dataId":"{{uuid}}","districtCode":"{{districtCode}}","data":"{{data}}"}'
constants = { appId = "js-app-01", districtCode = "320500" }
"#;

const SM4_ECB_BARE: &str = r#"
[seal]
cipher = "sm4-ecb"
key = { env = "KEY16", encoding = "hex" }
output = "base64"
"#;

fn sealer(text: &str) -> Sealer {
    let src = SourceText::new(Path::new("bench.toml"), text);
    let doc: Doc = toml::from_str(text).expect("bench config parses");
    let mut errors = Vec::new();
    let spec = validate(&src, &doc.seal, "uplinks[0].seal", &mut errors).expect("bench config is valid");
    let env = |var: &str| -> Option<OsString> {
        match var {
            "KEY16" => Some("0123456789abcdeffedcba9876543210".into()),
            "IV" => Some("00112233445566778899aabbccddeeff".into()),
            "APPSECRET" => Some("bench-secret".into()),
            _ => None,
        }
    };
    build_with_env(&spec, "bench", &env).expect("bench keys load")
}

/// One reading as the platforms' JSON rows carry it.
#[derive(serde::Serialize)]
struct Row<'a> {
    #[serde(rename = "enterpriseCode")]
    enterprise: &'a str,
    #[serde(rename = "hazardCode")]
    hazard: &'a str,
    #[serde(rename = "pointCode")]
    point: String,
    value: String,
    unit: &'a str,
    status: &'a str,
    time: String,
}

fn rows(n: usize) -> Vec<Row<'static>> {
    (0..n)
        .map(|i| Row {
            enterprise: "320500001",
            hazard: "320500001001",
            point: format!("LT-{:03}", 100 + i),
            value: format!("{:.2}", 40.0 + i as f64 * 0.37),
            unit: "%",
            status: "0",
            time: format!("2026-11-26 08:{:02}:{:02}", i / 60 % 60, i % 60),
        })
        .collect()
}

fn payload(body: Vec<u8>, items: usize) -> Payload {
    Payload {
        body,
        attrs: vec![("service_id".into(), "t_hazard_rt".into())],
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
        let body = serde_json::to_vec(&rows(n)).expect("rows encode");
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
        let records = rows(n);
        group.throughput(Throughput::Elements(n as u64));
        for (name, s) in &shapes {
            group.bench_with_input(BenchmarkId::new(*name, n), &records, |b, records| {
                b.iter(|| {
                    let mut p = payload(serde_json::to_vec(records).expect("rows encode"), n);
                    s.seal(&mut p).expect("seals");
                    p.body.len()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(name = uplink_seal; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(uplink_seal);
