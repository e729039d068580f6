//! Round trips of both block kinds, sizes on typical signals, and corrupt blobs.

use proptest::prelude::*;

use super::*;

const SEC: i64 = 1_000_000_000;
const T0: i64 = 1_704_067_200 * SEC;

fn raw(ts: i64, value: Option<f64>, quality: Quality) -> RawSample {
    RawSample { ts, value, quality }
}

fn decode_all_raw(blocks: &[Block]) -> Vec<RawSample> {
    blocks.iter().flat_map(|b| decode_raw(&b.data).unwrap()).collect()
}

fn same_bits(a: &[RawSample], b: &[RawSample]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.ts == y.ts && x.quality == y.quality && x.value.map(f64::to_bits) == y.value.map(f64::to_bits)
        })
}

#[test]
fn raw_samples_round_trip_with_gaps_faults_and_odd_values() {
    let samples = vec![
        raw(T0, Some(12.5), Quality::Good),
        raw(T0 + SEC, Some(12.5), Quality::Good),
        raw(T0 + 61 * SEC, Some(-0.0), Quality::Good),
        raw(T0 + 62 * SEC, None, Quality::CommFault),
        raw(T0 + 62 * SEC + 1, None, Quality::CommFault),
        raw(T0 + 90 * SEC, Some(f64::MAX), Quality::OutOfRange),
        raw(T0 + 91 * SEC, Some(f64::MIN_POSITIVE), Quality::Stale),
        raw(T0 + 3000 * SEC, Some(1e-300), Quality::DecodeError),
        raw(T0 + 3001 * SEC, Some(12.5), Quality::Good),
        raw(T0 + 3002 * SEC, Some(12.75), Quality::Uncertain),
    ];
    let blocks = encode_raw(&samples, 900, 3600 * SEC);
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        (blocks[0].first, blocks[0].last, blocks[0].n),
        (T0, T0 + 3002 * SEC, 10)
    );
    assert!(same_bits(&decode_all_raw(&blocks), &samples));
}

#[test]
fn a_steady_point_costs_about_a_byte_per_heartbeat() {
    // A value repeated at the 60 s heartbeat for an hour: time and value both repeat, so each
    // sample costs a few bits and the block less than a byte a sample, header included.
    let samples: Vec<_> = (0..60)
        .map(|i| raw(T0 + i * 60 * SEC, Some(3.25), Quality::Good))
        .collect();
    let blocks = encode_raw(&samples, 900, 3600 * SEC);
    assert_eq!(blocks.len(), 1);
    assert!(blocks[0].data.len() < 60, "{} bytes", blocks[0].data.len());
    assert!(same_bits(&decode_all_raw(&blocks), &samples));
}

#[test]
fn blocks_close_near_the_target_size_and_within_the_span() {
    let samples: Vec<_> = (0..2000)
        .map(|i| raw(T0 + i * SEC, Some((i as f64 * 0.7).sin() * 40.0 + 50.0), Quality::Good))
        .collect();
    let blocks = encode_raw(&samples, 900, 600 * SEC);
    assert!(blocks.len() > 2);
    for b in &blocks {
        assert!(b.data.len() < 960, "{} bytes", b.data.len());
        assert!(b.last - b.first <= 600 * SEC);
    }
    assert_eq!(blocks.iter().map(|b| b.n).sum::<usize>(), 2000);
    assert!(same_bits(&decode_all_raw(&blocks), &samples));
}

#[test]
fn minutes_round_trip_including_empty_and_late_ones() {
    let m = |minute, min, max, sum, count, bad| MinuteSample {
        minute,
        min,
        max,
        sum,
        count,
        bad,
    };
    let minutes = vec![
        m(28_401_120, Some(4.96), Some(5.04), 300.0, 60, 0),
        m(28_401_121, Some(4.96), Some(6.04), 330.1, 60, 0),
        m(28_401_122, None, None, 0.0, 0, 60),
        m(28_401_130, Some(-3.0), Some(1e9), 7.5, 70_000, 1),
        m(28_401_131, Some(0.0), Some(0.0), 0.0, u64::MAX, u64::MAX),
    ];
    let blocks = encode_minutes(&minutes, 900, 60);
    assert_eq!(blocks.len(), 1);
    assert_eq!(decode_minutes(&blocks[0].data).unwrap(), minutes);
}

#[test]
fn every_cut_of_a_block_is_an_error_not_a_panic() {
    let samples: Vec<_> = (0..50)
        .map(|i| raw(T0 + i * 7 * SEC, Some(i as f64 / 3.0), Quality::Good))
        .collect();
    let blob = &encode_raw(&samples, 900, 3600 * SEC)[0].data;
    for cut in 0..blob.len() {
        assert!(decode_raw(&blob[..cut]).is_err(), "cut at {cut}");
    }
    let mut wrong = blob.clone();
    wrong[0] = 9;
    assert_eq!(decode_raw(&wrong), Err(CodecError::Header("unknown format")));
}

fn quality() -> impl Strategy<Value = Quality> {
    prop_oneof![
        Just(Quality::Good),
        Just(Quality::CommFault),
        Just(Quality::DecodeError),
        Just(Quality::OutOfRange),
        Just(Quality::Stale),
        Just(Quality::Uncertain),
    ]
}

proptest! {
    #[test]
    fn any_sorted_raw_run_round_trips_bit_for_bit(
        start in any::<i64>().prop_map(|t| t / 4),
        steps in prop::collection::vec((1i64..10_000_000_000_000, any::<Option<u64>>(), quality()), 1..400),
        target in 16usize..1200,
    ) {
        let mut ts = start;
        let samples: Vec<_> = steps
            .iter()
            .map(|(step, bits, q)| {
                ts = ts.saturating_add(*step);
                let value = bits.map(f64::from_bits).filter(|v| v.is_finite());
                raw(ts, value, *q)
            })
            .collect();
        prop_assume!(samples.windows(2).all(|w| w[0].ts < w[1].ts));
        let blocks = encode_raw(&samples, target, i64::MAX / 4);
        prop_assert!(same_bits(&decode_all_raw(&blocks), &samples));
        prop_assert_eq!(blocks.iter().map(|b| b.n).sum::<usize>(), samples.len());
    }

    #[test]
    fn any_minute_run_round_trips(
        start in -1_000_000_000i64..1_000_000_000,
        steps in prop::collection::vec(
            (1i64..5000, any::<Option<u64>>(), any::<Option<u64>>(), any::<u64>(), any::<u64>(), any::<u64>()),
            1..300,
        ),
    ) {
        let mut minute = start;
        let samples: Vec<_> = steps
            .iter()
            .map(|(step, lo, hi, sum, count, bad)| {
                minute += step;
                MinuteSample {
                    minute,
                    min: lo.map(f64::from_bits),
                    max: hi.map(f64::from_bits),
                    sum: f64::from_bits(*sum),
                    count: *count % 4 * (count >> 40),
                    bad: *bad % 3,
                }
            })
            .collect();
        let blocks = encode_minutes(&samples, 900, 60);
        let back: Vec<_> = blocks.iter().flat_map(|b| decode_minutes(&b.data).unwrap()).collect();
        let bits = |s: &MinuteSample| (s.minute, s.min.map(f64::to_bits), s.max.map(f64::to_bits), s.sum.to_bits(), s.count, s.bad);
        prop_assert_eq!(back.iter().map(bits).collect::<Vec<_>>(), samples.iter().map(bits).collect::<Vec<_>>());
        for b in &blocks {
            prop_assert!(b.last - b.first <= 60);
        }
    }

    #[test]
    fn arbitrary_bytes_decode_to_an_error_or_samples_never_a_panic(blob in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_raw(&blob);
        let _ = decode_minutes(&blob);
    }
}

/// Bytes a block of the five older qualities was written as before `uncertain` was added
/// (taken from the previous release's encoder): files written then must still read.
const BLOCK_BEFORE_UNCERTAIN: [u8; 26] = [
    1, 5, 128, 128, 168, 150, 224, 133, 136, 166, 47, 9, 112, 138, 255, 240, 41, 43, 130, 95, 255, 175, 146, 70, 245,
    128,
];

#[test]
fn a_block_written_before_uncertain_existed_still_reads() {
    let expected = vec![
        raw(T0, Some(1.5), Quality::Good),
        raw(T0 + SEC, None, Quality::CommFault),
        raw(T0 + 2 * SEC, Some(2.0), Quality::DecodeError),
        raw(T0 + 3 * SEC, Some(250.0), Quality::OutOfRange),
        raw(T0 + 4 * SEC, None, Quality::Stale),
    ];
    assert!(same_bits(&decode_raw(&BLOCK_BEFORE_UNCERTAIN).unwrap(), &expected));
    assert_eq!(encode_raw(&expected, 900, 3600 * SEC)[0].data, BLOCK_BEFORE_UNCERTAIN);
}

#[test]
fn uncertain_round_trips_between_other_qualities() {
    let samples = vec![
        raw(T0, Some(1.0), Quality::Uncertain),
        raw(T0 + SEC, Some(2.0), Quality::Good),
        raw(T0 + 2 * SEC, Some(3.0), Quality::Uncertain),
        raw(T0 + 3 * SEC, None, Quality::Stale),
    ];
    assert!(same_bits(
        &decode_all_raw(&encode_raw(&samples, 900, 3600 * SEC)),
        &samples
    ));
}
