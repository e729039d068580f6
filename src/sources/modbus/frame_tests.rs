use proptest::prelude::*;

use super::*;
use crate::model::Quality;
use crate::sources::modbus::decoder::decode;
use crate::sources::modbus::register::{DataType, RegisterSpec, Scaling, WordOrder};

fn req(function: RegisterFunction, start: u16, count: u16) -> ReadRequest {
    ReadRequest { function, start, count }
}

/// An RTU answer as a device builds it.
fn rtu_answer(unit: u8, fc: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![unit, fc, data.len() as u8];
    f.extend_from_slice(data);
    let crc = crc16(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

#[test]
fn crc_matches_the_serial_line_specification_example() {
    // Modbus over Serial Line v1.02 §6.2.2 worked example: 02 07 -> CRC 0x1241 (sent 41 12).
    assert_eq!(crc16(&[0x02, 0x07]), 0x1241);
    // A widely published frame: 01 03 00 00 00 0A -> C5 CD.
    assert_eq!(encode_rtu(1, &req(RegisterFunction::Holding, 0, 10))[6..], [0xC5, 0xCD]);
}

#[test]
fn a_tcp_request_carries_transaction_unit_and_pdu() {
    let f = encode_tcp(0x1234, 7, &req(RegisterFunction::Input, 0x0102, 3));
    assert_eq!(f, [0x12, 0x34, 0, 0, 0, 6, 7, 0x04, 0x01, 0x02, 0x00, 0x03]);
}

#[test]
fn registers_and_bits_parse_from_good_answers() {
    let r = req(RegisterFunction::Holding, 0, 2);
    let f = rtu_answer(1, 0x03, &[0x12, 0x34, 0xAB, 0xCD]);
    assert_eq!(rtu_frame_len(&f, &r), Ok(Some(f.len())));
    assert_eq!(parse_rtu(&f, 1, &r), Ok(Answer::Data(vec![0x1234, 0xABCD])));
    // 10 coils: 0b1100_0101 then 0b0000_0010 -> bits 0,2,6,7 and 9.
    let c = req(RegisterFunction::Coil, 20, 10);
    let f = rtu_answer(1, 0x01, &[0b1100_0101, 0b0000_0010]);
    assert_eq!(
        parse_rtu(&f, 1, &c),
        Ok(Answer::Data(vec![1, 0, 1, 0, 0, 0, 1, 1, 0, 1]))
    );
}

#[test]
fn an_exception_answer_is_not_a_frame_error() {
    let r = req(RegisterFunction::Input, 100, 4);
    let mut f = vec![1, 0x84, ILLEGAL_DATA_ADDRESS];
    f.extend_from_slice(&crc16(&f).to_le_bytes());
    assert_eq!(rtu_frame_len(&f, &r), Ok(Some(5)));
    assert_eq!(parse_rtu(&f, 1, &r), Ok(Answer::Exception(2)));
    let tcp = [0, 9, 0, 0, 0, 3, 1, 0x84, 0x02];
    assert_eq!(parse_tcp(&tcp, 9, 1, &r), Ok(Answer::Exception(2)));
}

#[test]
fn each_malformed_answer_names_what_is_wrong() {
    let r = req(RegisterFunction::Holding, 0, 2);
    let mut bad_crc = rtu_answer(1, 0x03, &[0, 1, 0, 2]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xFF;
    assert!(matches!(parse_rtu(&bad_crc, 1, &r), Err(FrameError::BadCrc { .. })));
    let other_unit = rtu_answer(2, 0x03, &[0, 1, 0, 2]);
    assert!(matches!(
        parse_rtu(&other_unit, 1, &r),
        Err(FrameError::WrongUnit { got: 2, expected: 1 })
    ));
    let short_count = rtu_answer(1, 0x03, &[0, 1]);
    assert!(matches!(
        parse_rtu(&short_count, 1, &r),
        Err(FrameError::WrongByteCount { got: 2, expected: 4 })
    ));
    assert!(matches!(
        rtu_frame_len(&[1, 0x10, 0], &r),
        Err(FrameError::WrongFunction { got: 0x10, .. })
    ));
    let late = [0, 8, 0, 0, 0, 7, 1, 3, 4, 0, 1, 0, 2];
    assert!(matches!(
        parse_tcp(&late, 9, 1, &r),
        Err(FrameError::WrongTransaction { got: 8, expected: 9 })
    ));
    assert!(matches!(
        tcp_body_len(&[0, 9, 0, 1, 0, 7, 1]),
        Err(FrameError::BadHeader { protocol: 1, .. })
    ));
}

fn any_function() -> impl Strategy<Value = RegisterFunction> {
    prop_oneof![
        Just(RegisterFunction::Coil),
        Just(RegisterFunction::Discrete),
        Just(RegisterFunction::Holding),
        Just(RegisterFunction::Input),
    ]
}

fn any_type() -> impl Strategy<Value = DataType> {
    prop_oneof![
        Just(DataType::Bool),
        (0u8..16).prop_map(DataType::Bit),
        Just(DataType::U16),
        Just(DataType::I16),
        Just(DataType::U32),
        Just(DataType::I32),
        Just(DataType::U64),
        Just(DataType::I64),
        Just(DataType::F32),
        Just(DataType::F64),
        Just(DataType::Bcd16),
        Just(DataType::Bcd32),
        (1u8..=8).prop_map(|words| DataType::Ascii { words }),
    ]
}

fn any_order() -> impl Strategy<Value = WordOrder> {
    prop_oneof![
        Just(WordOrder::ABCD),
        Just(WordOrder::CDAB),
        Just(WordOrder::BADC),
        Just(WordOrder::DCBA)
    ]
}

/// A frame as a faulty device or noisy line might send it: a good answer, then truncated,
/// with a byte flipped, or with bytes appended; or plain noise.
fn mangled(good: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = good.len();
    prop_oneof![
        Just(good.clone()),
        (0..=n).prop_map({
            let g = good.clone();
            move |k| g[..k].to_vec()
        }),
        (0..n.max(1), any::<u8>()).prop_map({
            let g = good.clone();
            move |(i, x)| {
                let mut g = g.clone();
                if let Some(b) = g.get_mut(i) {
                    *b ^= x;
                }
                g
            }
        }),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(move |extra| {
            let mut g = good.clone();
            g.extend(extra);
            g
        }),
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

fn answer_case() -> impl Strategy<Value = (ReadRequest, u8, Vec<u8>, bool)> {
    (any_function(), 1u16..130, any::<u8>(), any::<bool>(), any::<u16>()).prop_flat_map(|(f, count, unit, rtu, tid)| {
        let r = req(f, 0, count);
        proptest::collection::vec(any::<u8>(), r.data_bytes()).prop_flat_map(move |data| {
            let good = if rtu {
                rtu_answer(unit, f.code(), &data)
            } else {
                let len = (data.len() + 3) as u16;
                let mut g = tid.to_be_bytes().to_vec();
                g.extend([0, 0]);
                g.extend(len.to_be_bytes());
                g.extend([unit, f.code(), data.len() as u8]);
                g.extend(&data);
                g
            };
            mangled(good).prop_map(move |bytes| (r, unit, bytes, rtu))
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any bytes in answer to any read end in data of exactly the requested size, an exception
    /// code, or a named frame error: never a panic, never a wrong-sized block.
    #[test]
    fn any_answer_bytes_end_in_data_of_the_right_size_or_a_frame_error(case in answer_case()) {
        let (r, unit, bytes, rtu) = case;
        let tid = u16::from_be_bytes([bytes.first().copied().unwrap_or(0), bytes.get(1).copied().unwrap_or(0)]);
        let parsed = if rtu {
            match rtu_frame_len(&bytes, &r) {
                Ok(Some(n)) if n <= bytes.len() => parse_rtu(&bytes[..n], unit, &r),
                Ok(Some(n)) => Err(FrameError::Short { got: bytes.len(), need: n }),
                Ok(None) => parse_rtu(&bytes, unit, &r),
                Err(e) => Err(e),
            }
        } else {
            parse_tcp(&bytes, tid, unit, &r)
        };
        match parsed {
            Ok(Answer::Data(items)) => {
                prop_assert_eq!(items.len(), usize::from(r.count));
                if r.function.is_bits() {
                    prop_assert!(items.iter().all(|&b| b <= 1));
                }
            }
            Ok(Answer::Exception(_)) => {}
            Err(e) => prop_assert!(!e.kind().is_empty()),
        }
    }

    /// Any register contents, of any length, decode to a finite value with quality good or
    /// out_of_range, or to decode_error: never a panic, never a non-finite good value.
    #[test]
    fn any_register_contents_decode_to_a_value_or_a_quality(
        data_type in any_type(),
        order in any_order(),
        words in proptest::collection::vec(any::<u16>(), 0..10),
        scale in prop_oneof![Just(1.0), Just(0.1), Just(1e300), Just(-2.5)],
        range in proptest::option::of((-1e6f64..0.0, 0.0f64..1e6)),
    ) {
        let spec = RegisterSpec {
            function: RegisterFunction::Holding,
            address: 0,
            data_type,
            word_order: order,
            scaling: Scaling::Linear { scale, offset: 0.0 },
            range,
        };
        let (value, quality) = decode(&spec, &words);
        match quality {
            Quality::Good => {
                prop_assert!(value.is_finite());
                prop_assert_eq!(words.len(), usize::from(data_type.word_count()));
                if let Some((lo, hi)) = range { prop_assert!(value >= lo && value <= hi); }
            }
            Quality::OutOfRange => prop_assert!(value.is_finite() && range.is_some()),
            Quality::DecodeError => {}
            other => prop_assert!(false, "unexpected quality {:?}", other),
        }
    }
}
