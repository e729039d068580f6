//! Criterion benches of the Modbus hot paths beyond `hot_paths`: parsing answers off the wire
//! (TCP and RTU with its CRC, registers and coils) and planning maps with every table,
//! bridged gaps and remembered splits.

use std::fmt;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::sources::modbus::frame::{ReadRequest, crc16, parse_rtu, parse_tcp};
use hazard_gateway::sources::modbus::planner::{ReadLimits, Splits, plan};
use hazard_gateway::sources::modbus::register::{DataType, RegisterFunction, RegisterSpec, Scaling, WordOrder};

#[derive(Clone, Copy)]
struct Frame(&'static str, RegisterFunction, u16, bool);

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn answer(frame: Frame) -> (ReadRequest, Vec<u8>) {
    let Frame(_, function, count, rtu) = frame;
    let req = ReadRequest {
        function,
        start: 0,
        count,
    };
    let data: Vec<u8> = (0..req.data_bytes()).map(|i| i as u8).collect();
    let mut pdu = vec![function.code(), data.len() as u8];
    pdu.extend(&data);
    let bytes = if rtu {
        let mut f = vec![1];
        f.extend(&pdu);
        let crc = crc16(&f);
        f.extend(crc.to_le_bytes());
        f
    } else {
        let mut f = vec![0, 1, 0, 0];
        f.extend(((pdu.len() + 1) as u16).to_be_bytes());
        f.push(1);
        f.extend(&pdu);
        f
    };
    (req, bytes)
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_answer");
    for frame in [
        Frame("tcp_125_registers", RegisterFunction::Holding, 125, false),
        Frame("rtu_125_registers", RegisterFunction::Input, 125, true),
        Frame("rtu_2000_coils", RegisterFunction::Coil, 2000, true),
    ] {
        let (req, bytes) = answer(frame);
        g.throughput(Throughput::Elements(u64::from(req.count)));
        g.bench_with_input(BenchmarkId::from_parameter(frame), &bytes, |b, bytes| {
            b.iter(|| {
                if frame.3 {
                    parse_rtu(bytes, 1, &req)
                } else {
                    parse_tcp(bytes, 1, 1, &req)
                }
            })
        });
    }
    g.finish();
}

fn mixed_map(n: usize) -> Vec<RegisterSpec> {
    (0..n)
        .map(|i| {
            let (function, data_type) = match i % 4 {
                0 => (RegisterFunction::Coil, DataType::Bool),
                1 => (RegisterFunction::Holding, DataType::F32),
                2 => (RegisterFunction::Input, DataType::U16),
                _ => (RegisterFunction::Holding, DataType::F64),
            };
            RegisterSpec {
                function,
                address: (i * 5 % 60_000) as u16,
                data_type,
                word_order: WordOrder::ABCD,
                scaling: Scaling::UNIT,
                range: None,
            }
        })
        .collect()
}

fn bench_plan(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan_mixed");
    for n in [64usize, 1024] {
        let pts = mixed_map(n);
        let splits: Splits = (0..n as u16 / 8).map(|i| (RegisterFunction::Holding, i * 40)).collect();
        let limits = ReadLimits {
            max_gap: 4,
            ..ReadLimits::default()
        };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("points_with_splits", n), &pts, |b, pts| {
            b.iter(|| plan(pts, limits, &splits).len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_parse, bench_plan);
criterion_main!(benches);
