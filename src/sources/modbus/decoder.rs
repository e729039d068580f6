//! Turns register words into engineering values with a quality, and back (for the simulator).
//!
//! Pure functions: no I/O, so every data type and word order is unit-tested exhaustively.

use super::register::{DataType, RegisterSpec, WordOrder};
use crate::model::Quality;

/// Decodes one point from the words of its registers (exactly `word_count` of them).
pub fn decode(spec: &RegisterSpec, words: &[u16]) -> (f64, Quality) {
    let Some(raw) = raw_value(spec.data_type, spec.word_order, words) else {
        return (f64::NAN, Quality::DecodeError);
    };
    if !raw.is_finite() {
        return (raw, Quality::DecodeError);
    }
    let value = spec.scaling.to_engineering(raw);
    if !value.is_finite() {
        return (value, Quality::DecodeError);
    }
    let quality = match spec.range {
        Some((lo, hi)) if value < lo || value > hi => Quality::OutOfRange,
        _ => Quality::Good,
    };
    (value, quality)
}

/// Encodes an engineering value into register words, rounding to the nearest raw count and
/// saturating at the type's limits. Inverse of [`decode`] up to that rounding.
pub fn encode(spec: &RegisterSpec, value: f64) -> Vec<u16> {
    let raw = spec.scaling.to_raw(value);
    let bytes: [u8; 4] = match spec.data_type {
        DataType::U16 => {
            let v = raw.round().clamp(0.0, f64::from(u16::MAX)) as u16;
            return vec![v];
        }
        DataType::I16 => {
            let v = raw.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
            return vec![v as u16];
        }
        DataType::U32 => (raw.round().clamp(0.0, f64::from(u32::MAX)) as u32).to_be_bytes(),
        DataType::I32 => (raw.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32).to_be_bytes(),
        DataType::F32 => (raw as f32).to_be_bytes(),
    };
    let [a, b, c, d] = reorder(bytes, spec.word_order);
    vec![u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])]
}

/// The raw number the words hold, before scaling; `None` if the word count is wrong.
fn raw_value(data_type: DataType, order: WordOrder, words: &[u16]) -> Option<f64> {
    if words.len() != usize::from(data_type.word_count()) {
        return None;
    }
    Some(match data_type {
        DataType::U16 => f64::from(words[0]),
        DataType::I16 => f64::from(words[0] as i16),
        DataType::U32 => f64::from(u32::from_be_bytes(be_bytes(words, order))),
        DataType::I32 => f64::from(i32::from_be_bytes(be_bytes(words, order))),
        DataType::F32 => f64::from(f32::from_be_bytes(be_bytes(words, order))),
    })
}

/// The four bytes of a two-register value in big-endian (ABCD) order.
fn be_bytes(words: &[u16], order: WordOrder) -> [u8; 4] {
    let [w0h, w0l] = words[0].to_be_bytes();
    let [w1h, w1l] = words[1].to_be_bytes();
    // The wire bytes are in `order`; undo it. Each order is its own inverse.
    reorder([w0h, w0l, w1h, w1l], order)
}

/// Permutes big-endian bytes ABCD into `order` (and back: each permutation is an involution).
fn reorder([a, b, c, d]: [u8; 4], order: WordOrder) -> [u8; 4] {
    match order {
        WordOrder::ABCD => [a, b, c, d],
        WordOrder::CDAB => [c, d, a, b],
        WordOrder::BADC => [b, a, d, c],
        WordOrder::DCBA => [d, c, b, a],
    }
}

#[cfg(test)]
mod tests {
    use super::super::register::{RegisterFunction, Scaling};
    use super::*;
    use proptest::prelude::*;

    fn spec(data_type: DataType, word_order: WordOrder, scaling: Scaling) -> RegisterSpec {
        RegisterSpec {
            function: RegisterFunction::Holding,
            address: 0,
            data_type,
            word_order,
            scaling,
            range: None,
        }
    }

    const UNIT: Scaling = Scaling::Linear {
        scale: 1.0,
        offset: 0.0,
    };

    #[test]
    fn f32_decodes_in_every_word_order() {
        // 123.456f32 = 0x42F6E979: A=42 B=F6 C=E9 D=79
        let cases = [
            (WordOrder::ABCD, [0x42F6, 0xE979]),
            (WordOrder::CDAB, [0xE979, 0x42F6]),
            (WordOrder::BADC, [0xF642, 0x79E9]),
            (WordOrder::DCBA, [0x79E9, 0xF642]),
        ];
        for (order, words) in cases {
            let (v, q) = decode(&spec(DataType::F32, order, UNIT), &words);
            assert_eq!(q, Quality::Good, "{order:?}");
            assert!((v - 123.456).abs() < 1e-4, "{order:?}: {v}");
        }
    }

    #[test]
    fn signed_types_keep_their_sign() {
        assert_eq!(decode(&spec(DataType::I16, WordOrder::ABCD, UNIT), &[0xFFFE]).0, -2.0);
        assert_eq!(
            decode(&spec(DataType::U16, WordOrder::ABCD, UNIT), &[0xFFFE]).0,
            65534.0
        );
        assert_eq!(
            decode(&spec(DataType::I32, WordOrder::ABCD, UNIT), &[0xFFFF, 0xFFFF]).0,
            -1.0
        );
        assert_eq!(
            decode(&spec(DataType::U32, WordOrder::CDAB, UNIT), &[0x0002, 0x0001]).0,
            65538.0
        );
    }

    #[test]
    fn four_to_twenty_milliamp_counts_map_to_percent_lel() {
        let s = RegisterSpec {
            range: Some((0.0, 100.0)),
            ..spec(
                DataType::U16,
                WordOrder::ABCD,
                Scaling::Range {
                    raw: (4000.0, 20000.0),
                    eng: (0.0, 100.0),
                },
            )
        };
        assert_eq!(decode(&s, &[4000]), (0.0, Quality::Good));
        assert_eq!(decode(&s, &[8000]), (25.0, Quality::Good));
        assert_eq!(decode(&s, &[20000]), (100.0, Quality::Good));
        // Below 4 mA: broken loop or sensor fault, never a valid concentration.
        assert_eq!(decode(&s, &[3600]).1, Quality::OutOfRange);
    }

    #[test]
    fn nan_and_wrong_length_are_decode_errors() {
        let f = spec(DataType::F32, WordOrder::ABCD, UNIT);
        assert_eq!(decode(&f, &[0x7FC0, 0x0000]).1, Quality::DecodeError);
        assert_eq!(decode(&f, &[0x7F80, 0x0000]).1, Quality::DecodeError);
        assert_eq!(decode(&f, &[0x42F6]).1, Quality::DecodeError);
    }

    #[test]
    fn scale_and_offset_apply_after_decoding() {
        let s = spec(
            DataType::I16,
            WordOrder::ABCD,
            Scaling::Linear {
                scale: 0.1,
                offset: -40.0,
            },
        );
        let (v, _) = decode(&s, &[655]);
        assert!((v - 25.5).abs() < 1e-9);
    }

    fn any_order() -> impl Strategy<Value = WordOrder> {
        prop_oneof![
            Just(WordOrder::ABCD),
            Just(WordOrder::CDAB),
            Just(WordOrder::BADC),
            Just(WordOrder::DCBA)
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_returns_the_value(
            order in any_order(),
            raw in -2.0e9f64..2.0e9,
            which in 0usize..5,
        ) {
            let dt = [DataType::U16, DataType::I16, DataType::U32, DataType::I32, DataType::F32][which];
            let s = spec(dt, order, UNIT);
            let words = encode(&s, raw);
            prop_assert_eq!(words.len(), usize::from(dt.word_count()));
            let (back, q) = decode(&s, &words);
            prop_assert_eq!(q, Quality::Good);
            let expected = match dt {
                DataType::U16 => raw.round().clamp(0.0, 65535.0),
                DataType::I16 => raw.round().clamp(-32768.0, 32767.0),
                DataType::U32 => raw.round().clamp(0.0, f64::from(u32::MAX)),
                DataType::I32 => raw.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)),
                DataType::F32 => f64::from(raw as f32),
            };
            prop_assert_eq!(back, expected);
        }
    }
}
