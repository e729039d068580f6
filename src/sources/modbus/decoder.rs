//! Turns register words into engineering values with a quality, and back (for the simulator).
//!
//! Pure functions: no I/O, so every data type and word order is unit-tested exhaustively.

use super::planner::ReadBlock;
use super::register::{DataType, RegisterSpec, WordOrder};
use crate::model::{PointId, Quality, Reading, Timestamp};

/// Longest value in bytes (an ASCII point of [`super::register::MAX_ASCII_WORDS`] registers).
const MAX_BYTES: usize = 2 * super::register::MAX_ASCII_WORDS as usize;

/// Decodes one point from the words of its items (exactly `word_count` of them; a bit table
/// gives one word, 0 or 1, per bit).
///
/// Quality: a wrong word count, a BCD nibble above 9, text that is not a number, NaN or an
/// infinity (before or after scaling) give `decode_error`; a value outside the instrument's
/// range gives `out_of_range` with the value kept, so the operator sees how far out it is.
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
/// saturating at the type's limits. Inverse of [`decode`] up to that rounding. A `bit` point
/// gives its register with only that bit possibly set; ASCII gives the number as text,
/// right-aligned in spaces.
pub fn encode(spec: &RegisterSpec, value: f64) -> Vec<u16> {
    let raw = spec.scaling.to_raw(value);
    let r = raw.round();
    let bytes: Vec<u8> = match spec.data_type {
        DataType::Bool => return vec![u16::from(raw >= 0.5)],
        DataType::Bit(n) => return vec![u16::from(raw >= 0.5) << n],
        DataType::U16 => (r.clamp(0.0, f64::from(u16::MAX)) as u16).to_be_bytes().to_vec(),
        DataType::I16 => (r.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16)
            .to_be_bytes()
            .to_vec(),
        DataType::U32 => (r.clamp(0.0, f64::from(u32::MAX)) as u32).to_be_bytes().to_vec(),
        DataType::I32 => (r.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32)
            .to_be_bytes()
            .to_vec(),
        // `as` saturates float-to-int conversions at the type's limits.
        DataType::U64 => (r as u64).to_be_bytes().to_vec(),
        DataType::I64 => (r as i64).to_be_bytes().to_vec(),
        DataType::F32 => (raw as f32).to_be_bytes().to_vec(),
        DataType::F64 => raw.to_be_bytes().to_vec(),
        DataType::Bcd16 => to_bcd(r.clamp(0.0, 9999.0) as u64, 2),
        DataType::Bcd32 => to_bcd(r.clamp(0.0, 99_999_999.0) as u64, 4),
        DataType::Ascii { words } => {
            let n = usize::from(words) * 2;
            let text = format!("{raw:>n$}");
            let mut b = text.into_bytes();
            b.truncate(n);
            b
        }
    };
    let mut words: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
        .collect();
    apply_order(&mut words, spec.word_order);
    words
}

/// Puts big-endian words into the wire order `order` (and back: both steps are involutions
/// and commute).
fn apply_order(words: &mut [u16], order: WordOrder) {
    if order.words_swapped() {
        words.reverse();
    }
    if order.bytes_swapped() {
        for w in words.iter_mut() {
            *w = w.swap_bytes();
        }
    }
}

fn to_bcd(mut v: u64, bytes: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes];
    for b in out.iter_mut().rev() {
        let lo = (v % 10) as u8;
        v /= 10;
        let hi = (v % 10) as u8;
        v /= 10;
        *b = (hi << 4) | lo;
    }
    out
}

/// The raw number the words hold, before scaling; `None` if they cannot hold one.
fn raw_value(data_type: DataType, order: WordOrder, words: &[u16]) -> Option<f64> {
    let n = usize::from(data_type.word_count());
    if words.len() != n || n * 2 > MAX_BYTES {
        return None;
    }
    match data_type {
        DataType::Bool => return Some(f64::from(u8::from(words[0] != 0))),
        DataType::Bit(b) => return Some(f64::from((words[0] >> b) & 1)),
        _ => {}
    }
    Some(match data_type {
        DataType::U16 => f64::from(u16::from_be_bytes(gather(words, order))),
        DataType::I16 => f64::from(i16::from_be_bytes(gather(words, order))),
        DataType::U32 => f64::from(u32::from_be_bytes(gather(words, order))),
        DataType::I32 => f64::from(i32::from_be_bytes(gather(words, order))),
        DataType::U64 => u64::from_be_bytes(gather(words, order)) as f64,
        DataType::I64 => i64::from_be_bytes(gather(words, order)) as f64,
        DataType::F32 => f64::from(f32::from_be_bytes(gather(words, order))),
        DataType::F64 => f64::from_be_bytes(gather(words, order)),
        DataType::Bcd16 => from_bcd(&gather::<2>(words, order))?,
        DataType::Bcd32 => from_bcd(&gather::<4>(words, order))?,
        DataType::Ascii { .. } => {
            let mut bytes = [0u8; MAX_BYTES];
            let b = &mut bytes[..2 * n];
            fill_bytes(words, order, b);
            parse_text(b)?
        }
        DataType::Bool | DataType::Bit(_) => return None,
    })
}

/// The big-endian bytes of a value whose `N / 2` words arrived in `order`.
fn gather<const N: usize>(words: &[u16], order: WordOrder) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N / 2;
    let (words_swapped, bytes_swapped) = (order.words_swapped(), order.bytes_swapped());
    for (i, pair) in out.chunks_exact_mut(2).enumerate() {
        let w = words
            .get(if words_swapped { n - 1 - i } else { i })
            .copied()
            .unwrap_or(0);
        let w = if bytes_swapped { w.swap_bytes() } else { w };
        pair.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Undoes `order` (the inverse of [`apply_order`]) while copying words into bytes.
fn fill_bytes(words: &[u16], order: WordOrder, out: &mut [u8]) {
    let n = words.len().min(out.len() / 2);
    for i in 0..n {
        let w = if order.words_swapped() {
            words[n - 1 - i]
        } else {
            words[i]
        };
        let w = if order.bytes_swapped() { w.swap_bytes() } else { w };
        out[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
    }
}

/// Packed BCD, most significant digit first; `None` on a nibble above 9.
fn from_bcd(bytes: &[u8]) -> Option<f64> {
    let mut v: u64 = 0;
    for &b in bytes {
        let (hi, lo) = (b >> 4, b & 0x0F);
        if hi > 9 || lo > 9 {
            return None;
        }
        v = v * 100 + u64::from(hi) * 10 + u64::from(lo);
    }
    Some(v as f64)
}

/// ASCII text padded with spaces or NULs, read as a decimal number (`"  12.5"`, `"-3"`);
/// `None` for anything else, including non-ASCII bytes and empty text.
fn parse_text(bytes: &[u8]) -> Option<f64> {
    if !bytes.is_ascii() {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let t = text.trim_matches(|c: char| c == '\0' || c.is_ascii_whitespace());
    if t.is_empty()
        || !t
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Readings of a block's points from the words read for it (a point whose words are missing
/// is a `decode_error`).
pub fn decode_block(
    points: &[PointId],
    registers: &[RegisterSpec],
    block: &ReadBlock,
    words: &[u16],
    ts: Timestamp,
    out: &mut Vec<Reading>,
) {
    for &(slot, offset) in &block.items {
        let slot = slot as usize;
        let (Some(point), Some(spec)) = (points.get(slot), registers.get(slot)) else {
            continue;
        };
        let start = usize::from(offset);
        let end = start + usize::from(spec.data_type.word_count());
        let (value, quality) = match words.get(start..end) {
            Some(w) => decode(spec, w),
            None => (f64::NAN, Quality::DecodeError),
        };
        out.push(Reading {
            point: *point,
            ts,
            value,
            quality,
        });
    }
}

/// Readings without a value, of `quality`, for every point of a block that was not read.
pub fn fill_block(points: &[PointId], block: &ReadBlock, quality: Quality, ts: Timestamp, out: &mut Vec<Reading>) {
    for &(slot, _) in &block.items {
        if let Some(point) = points.get(slot as usize) {
            out.push(Reading {
                point: *point,
                ts,
                value: f64::NAN,
                quality,
            });
        }
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

    #[test]
    fn sixty_four_bit_types_decode_in_every_word_order() {
        // 1.5f64 = 0x3FF8_0000_0000_0000; -2i64 = 0xFFFF_FFFF_FFFF_FFFE.
        let cases = [
            (WordOrder::ABCD, [0x3FF8, 0, 0, 0]),
            (WordOrder::CDAB, [0, 0, 0, 0x3FF8]),
            (WordOrder::BADC, [0xF83F, 0, 0, 0]),
            (WordOrder::DCBA, [0, 0, 0, 0xF83F]),
        ];
        for (order, words) in cases {
            assert_eq!(
                decode(&spec(DataType::F64, order, UNIT), &words),
                (1.5, Quality::Good),
                "{order:?}"
            );
        }
        let w = [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE];
        assert_eq!(decode(&spec(DataType::I64, WordOrder::ABCD, UNIT), &w).0, -2.0);
        assert_eq!(
            decode(&spec(DataType::U64, WordOrder::CDAB, UNIT), &[1, 0, 0, 0]).0,
            1.0
        );
    }

    #[test]
    fn bits_and_bools_are_zero_or_one() {
        assert_eq!(decode(&spec(DataType::Bit(0), WordOrder::ABCD, UNIT), &[0x0001]).0, 1.0);
        assert_eq!(
            decode(&spec(DataType::Bit(15), WordOrder::ABCD, UNIT), &[0x7FFF]).0,
            0.0
        );
        assert_eq!(
            decode(&spec(DataType::Bit(15), WordOrder::ABCD, UNIT), &[0x8000]).0,
            1.0
        );
        assert_eq!(decode(&spec(DataType::Bool, WordOrder::ABCD, UNIT), &[1]).0, 1.0);
    }

    #[test]
    fn bcd_decodes_digits_and_rejects_nibbles_above_nine() {
        assert_eq!(
            decode(&spec(DataType::Bcd16, WordOrder::ABCD, UNIT), &[0x1234]),
            (1234.0, Quality::Good)
        );
        assert_eq!(
            decode(&spec(DataType::Bcd32, WordOrder::CDAB, UNIT), &[0x5678, 0x1234]),
            (12_345_678.0, Quality::Good)
        );
        assert_eq!(
            decode(&spec(DataType::Bcd16, WordOrder::ABCD, UNIT), &[0x12A4]).1,
            Quality::DecodeError
        );
    }

    #[test]
    fn ascii_text_is_read_as_a_number_or_is_a_decode_error() {
        let s = spec(DataType::Ascii { words: 3 }, WordOrder::ABCD, UNIT);
        // " 12.5\0"
        assert_eq!(decode(&s, &[0x2031, 0x322E, 0x3500]), (12.5, Quality::Good));
        let swapped = spec(DataType::Ascii { words: 3 }, WordOrder::BADC, UNIT);
        assert_eq!(decode(&swapped, &[0x3120, 0x2E32, 0x0035]), (12.5, Quality::Good));
        // "RUN   ", "nan   ", non-ASCII bytes, and all blanks are not numbers.
        assert_eq!(decode(&s, &[0x5255, 0x4E20, 0x2020]).1, Quality::DecodeError);
        assert_eq!(decode(&s, &[0x6E61, 0x6E20, 0x2020]).1, Quality::DecodeError);
        assert_eq!(decode(&s, &[0xFF31, 0x2020, 0x2020]).1, Quality::DecodeError);
        assert_eq!(decode(&s, &[0x2020, 0x2020, 0x0000]).1, Quality::DecodeError);
    }

    #[test]
    fn a_single_register_honours_the_byte_swap_only() {
        assert_eq!(decode(&spec(DataType::U16, WordOrder::CDAB, UNIT), &[0x0102]).0, 258.0);
        assert_eq!(decode(&spec(DataType::U16, WordOrder::BADC, UNIT), &[0x0201]).0, 258.0);
    }

    #[test]
    fn an_infinite_scaled_value_is_a_decode_error() {
        let s = spec(
            DataType::F32,
            WordOrder::ABCD,
            Scaling::Linear {
                scale: 1e300,
                offset: 0.0,
            },
        );
        // f32::MAX * 1e300 overflows f64.
        assert_eq!(decode(&s, &[0x7F7F, 0xFFFF]).1, Quality::DecodeError);
    }

    proptest! {
        #[test]
        fn encode_then_decode_returns_the_value(
            order in any_order(),
            raw in -2.0e9f64..2.0e9,
            which in 0usize..10,
        ) {
            let dt = [
                DataType::U16, DataType::I16, DataType::U32, DataType::I32, DataType::F32,
                DataType::U64, DataType::I64, DataType::F64, DataType::Bcd16, DataType::Bcd32,
            ][which];
            let s = spec(dt, order, UNIT);
            let words = encode(&s, raw);
            prop_assert_eq!(words.len(), usize::from(dt.word_count()));
            let (back, q) = decode(&s, &words);
            prop_assert_eq!(q, Quality::Good);
            let r = raw.round();
            let expected = match dt {
                DataType::U16 => r.clamp(0.0, 65535.0),
                DataType::I16 => r.clamp(-32768.0, 32767.0),
                DataType::U32 => r.clamp(0.0, f64::from(u32::MAX)),
                DataType::I32 => r.clamp(f64::from(i32::MIN), f64::from(i32::MAX)),
                DataType::F32 => f64::from(raw as f32),
                DataType::U64 => r.max(0.0),
                DataType::I64 => r,
                DataType::F64 => raw,
                DataType::Bcd16 => r.clamp(0.0, 9999.0),
                DataType::Bcd32 => r.clamp(0.0, 99_999_999.0),
                _ => unreachable!("not generated"),
            };
            prop_assert_eq!(back, expected);
        }
    }
}
