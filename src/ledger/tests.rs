use super::*;
use crate::kpi::UtcOffset;

/// 2026-12-07 00:00 site time (+08:00).
const MIDNIGHT_MS: i64 = 1_796_572_800_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(MIDNIGHT_MS + secs * 1000)
}

/// A point polled every 10 s for two hours: good, then no answer 00:20–00:30, the gateway down
/// 00:50–01:10, out of range 01:30–01:35. Returns the point as history holds it.
fn scripted(name: &str, hazard: Option<&str>) -> PointInput {
    let mut minutes: BTreeMap<i64, MinuteCount> = BTreeMap::new();
    for t in (0..7200).step_by(10) {
        let q = match t {
            1200..1800 | 3000..4200 => continue,
            5400..5700 => Quality::OutOfRange,
            _ => Quality::Good,
        };
        let m = minutes.entry(t / 60).or_insert(MinuteCount {
            minute: at(t / 60 * 60),
            good: 0,
            bad: 0,
        });
        if q == Quality::Good {
            m.good += 1;
        } else {
            m.bad += 1;
        }
    }
    PointInput {
        name: name.into(),
        hazard_source: hazard.map(Into::into),
        interval: Duration::from_secs(10),
        minutes: minutes.into_values().collect(),
        qualities: vec![
            (at(-5), Quality::Good),
            (at(1200), Quality::CommFault),
            (at(1800), Quality::Good),
            (at(5400), Quality::OutOfRange),
            (at(5700), Quality::Good),
        ],
    }
}

const DOWN: Downtime = Downtime {
    start: Timestamp::from_millis(MIDNIGHT_MS + 3000 * 1000),
    end: Timestamp::from_millis(MIDNIGHT_MS + 4200 * 1000),
};

fn gap(point: &str, start: i64, end: i64, cause: GapCause) -> GapRow {
    GapRow {
        point: point.into(),
        start_ms: at(start).as_millis(),
        end_ms: at(end).as_millis(),
        cause,
    }
}

#[test]
fn counts_and_gaps_of_a_scripted_point_are_exact_to_the_reading() {
    let hours = buckets(at(0), at(7200), By::Shift, UtcOffset::CHINA, &[0, 60]);
    assert_eq!(
        hours.iter().map(|b| b.label.as_str()).collect::<Vec<_>>(),
        ["2026-12-07 00:00", "2026-12-07 01:00"]
    );
    let l = ledger(&[scripted("TT-1", Some("T1"))], &[DOWN], &hours, Group::Point, "gw");
    assert_eq!((l.from_ms, l.to_ms), (at(0).as_millis(), at(7200).as_millis()));
    let [first, second] = &l.rows[..] else {
        panic!("two rows: {:?}", l.rows)
    };
    assert_eq!((first.expected, first.received_good, first.received_bad), (360, 240, 0));
    assert_eq!(
        first.gaps,
        [
            gap("TT-1", 1200, 1800, GapCause::Communication),
            gap("TT-1", 3000, 3600, GapCause::GatewayDown),
        ]
    );
    assert_eq!(first.online_ms, 2_400_000);
    assert_eq!(first.online_rate, 2.0 / 3.0);
    assert_eq!(first.completeness, 240.0 / 360.0);
    assert_eq!(
        (second.expected, second.received_good, second.received_bad),
        (360, 270, 30)
    );
    assert_eq!(
        second.gaps,
        [
            gap("TT-1", 3600, 4200, GapCause::GatewayDown),
            gap("TT-1", 5400, 5700, GapCause::SensorFault),
        ]
    );
    assert_eq!(
        second.gap_ms,
        GapTotals {
            communication: 0,
            sensor_fault: 300_000,
            gateway_down: 600_000
        }
    );
    // A sensor fault is online but not complete.
    assert_eq!(second.online_rate, 3000.0 / 3600.0);
    assert_eq!(second.completeness, 0.75);
}

#[test]
fn groups_sum_their_points_and_the_gateway_row_holds_every_point() {
    let day = buckets(at(0), at(7200), By::Day, UtcOffset::CHINA, &[]);
    assert_eq!(day.len(), 1);
    assert_eq!(day[0].label, "2026-12-07");
    let points = [
        scripted("TT-1", Some("T1")),
        scripted("TT-2", Some("T1")),
        scripted("PT-9", None),
    ];
    let by_source = ledger(&points, &[DOWN], &day, Group::HazardSource, "gw");
    assert_eq!(
        by_source.rows.len(),
        1,
        "a point without a hazard source has no source row"
    );
    let r = &by_source.rows[0];
    assert_eq!(
        (r.key.as_str(), r.points, r.expected, r.received_good),
        ("T1", 2, 1440, 1020)
    );
    assert_eq!(r.gap_count, 6, "three gaps of each point: one day, no cut");
    let gw = ledger(&points, &[DOWN], &day, Group::Gateway, "gw");
    let r = &gw.rows[0];
    assert_eq!(
        (r.key.as_str(), r.points, r.expected, r.received_good, r.received_bad),
        ("gw", 3, 2160, 1530, 90)
    );
    assert_eq!(r.gap_ms.gateway_down, 3 * 1_200_000);
    assert_eq!(r.online_rate, (3.0 * 7200.0 - 3.0 * 1800.0) / (3.0 * 7200.0));
}

#[test]
fn downtime_is_cut_out_of_an_outage_it_falls_in() {
    // The broker is away 00:10–00:40 and the gateway restarts inside that, 00:20–00:25.
    let p = PointInput {
        name: "X".into(),
        hazard_source: None,
        interval: Duration::from_secs(60),
        minutes: Vec::new(),
        qualities: vec![
            (at(0), Quality::Good),
            (at(600), Quality::Stale),
            (at(2400), Quality::Good),
        ],
    };
    let down = [Downtime {
        start: at(1200),
        end: at(1500),
    }];
    assert_eq!(
        gaps(&p, &down, at(0), at(3600)),
        [
            Gap {
                start: at(600),
                end: at(1200),
                cause: GapCause::Communication
            },
            Gap {
                start: at(1200),
                end: at(1500),
                cause: GapCause::GatewayDown
            },
            Gap {
                start: at(1500),
                end: at(2400),
                cause: GapCause::Communication
            },
        ]
    );
    // Nothing known before the first reading: not online.
    let late = PointInput {
        qualities: vec![(at(100), Quality::Good)],
        ..p
    };
    assert_eq!(
        gaps(&late, &[], at(0), at(3600)),
        [Gap {
            start: at(0),
            end: at(100),
            cause: GapCause::Communication
        }]
    );
}

#[test]
fn expected_readings_add_up_across_adjacent_periods() {
    let i = Duration::from_secs(7);
    assert_eq!(expected(i, at(0), at(7)), 1);
    let whole = expected(i, at(3), at(86_403));
    let parts: u64 = (0..24)
        .map(|h| expected(i, at(3 + h * 3600), at(3 + (h + 1) * 3600)))
        .sum();
    assert_eq!(whole, parts);
    assert_eq!(expected(Duration::from_secs(1), at(0), at(86_400)), 86_400);
    assert_eq!(expected(i, at(10), at(10)), 0);
}

#[test]
fn shifts_wrap_past_midnight_and_belong_to_the_day_they_start() {
    // Shifts at 08:00 and 20:00; a period from 06:00 to 22:00 of 7 December.
    let b = buckets(at(6 * 3600), at(22 * 3600), By::Shift, UtcOffset::CHINA, &[480, 1200]);
    let labels: Vec<_> = b.iter().map(|b| (b.label.as_str(), b.start, b.end)).collect();
    assert_eq!(
        labels,
        [
            ("2026-12-06 20:00", at(6 * 3600), at(8 * 3600)),
            ("2026-12-07 08:00", at(8 * 3600), at(20 * 3600)),
            ("2026-12-07 20:00", at(20 * 3600), at(22 * 3600)),
        ]
    );
    assert!(buckets(at(5), at(5), By::Day, UtcOffset::CHINA, &[]).is_empty());
}

#[test]
fn overlapping_downtimes_count_once_and_a_month_of_shifts_adds_up_to_its_days() {
    let p = scripted("TT-1", None);
    let down = [
        DOWN,
        Downtime {
            start: at(3500),
            end: at(4000),
        },
    ];
    let g = gaps(&p, &down, at(0), at(7200));
    assert_eq!(
        g.iter().filter(|g| g.cause == GapCause::GatewayDown).count(),
        1,
        "{g:?}"
    );
    // The same two hours cut into 12 shifts of 10 minutes or into one day give the same sums.
    let shifts: Vec<u16> = (0..144).map(|i| i * 10).collect();
    let fine = buckets(at(0), at(7200), By::Shift, UtcOffset::CHINA, &shifts);
    assert_eq!(fine.len(), 12);
    let day = buckets(at(0), at(7200), By::Day, UtcOffset::CHINA, &[]);
    let sum = |l: &Ledger| {
        l.rows.iter().fold((0, 0, 0, 0), |a, r| {
            (
                a.0 + r.expected,
                a.1 + r.received_good,
                a.2 + r.online_ms,
                a.3 + r.gap_ms.sensor_fault,
            )
        })
    };
    let by_shift = ledger(std::slice::from_ref(&p), &down, &fine, Group::Point, "gw");
    let by_day = ledger(std::slice::from_ref(&p), &down, &day, Group::Point, "gw");
    assert_eq!(sum(&by_shift), sum(&by_day));
    assert_eq!(sum(&by_day), (720, 510, 5_400_000, 300_000));
}
