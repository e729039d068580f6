//! The KPIs of a scripted journal with known floods, chattering, fleeting, stale, shelved and
//! acknowledged alarms, each figure asserted exactly.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::model::{AlarmClass, AlarmState, ConditionKind, Priority, SubjectKind, Transition};

/// 2026-12-07 00:00:00 +08:00 (a Monday, ISO week 50).
const T0: i64 = 1_796_572_800_000;
const DAY: i64 = 86_400;

fn at(s: f64) -> Timestamp {
    Timestamp::from_millis(T0 + (s * 1000.0).round() as i64)
}

/// Drives alarms through their ISA-18.2 states the way the rules engine journals them.
#[derive(Default)]
struct Script {
    events: Vec<AlarmEvent>,
    last: HashMap<String, AlarmEvent>,
}

impl Script {
    fn alarm(&mut self, id: &str, hazard_source: Option<&str>, priority: Priority, condition: ConditionKind) {
        let e = AlarmEvent {
            seq: 0,
            alarm_id: id.to_string(),
            rule: "r".into(),
            subject: format!("{id}-subject"),
            subject_kind: SubjectKind::Point,
            hazard_source: hazard_source.map(str::to_string),
            condition,
            class: AlarmClass::Process,
            level: None,
            priority,
            transition: Transition::Cleared,
            state: AlarmState::Normal,
            acknowledged: true,
            latching: false,
            shelved_until: None,
            suppressed: false,
            out_of_service: false,
            value: f64::NAN,
            limit: None,
            unit: String::new(),
            ts: Timestamp::default(),
            raised_at: None,
            user: None,
            comment: None,
            category: None,
            predicted_at: None,
        };
        self.last.insert(id.to_string(), e);
    }

    fn step(&mut self, id: &str, s: f64, t: Transition, change: impl FnOnce(&mut AlarmEvent)) {
        let mut e = self.last[id].clone();
        e.ts = at(s);
        e.transition = t;
        change(&mut e);
        e.seq = self.events.len() as u64 + 1;
        self.last.insert(id.to_string(), e.clone());
        self.events.push(e);
    }

    fn raise(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Raised, |e| {
            e.state = AlarmState::UnackActive;
            e.acknowledged = false;
            e.raised_at = Some(e.ts);
        });
    }

    fn clear(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Cleared, |e| {
            e.state = if e.acknowledged {
                AlarmState::Normal
            } else {
                AlarmState::UnackRtn
            };
            if e.acknowledged {
                e.raised_at = None;
            }
        });
    }

    fn ack(&mut self, id: &str, s: f64) {
        self.step(id, s, Transition::Acknowledged, |e| {
            e.acknowledged = true;
            if e.state == AlarmState::UnackRtn {
                e.state = AlarmState::Normal;
                e.raised_at = None;
            } else {
                e.state = AlarmState::AckActive;
            }
        });
    }

    fn overlay(&mut self, id: &str, s: f64, t: Transition) {
        self.step(id, s, t, |e| match t {
            Transition::Shelved => e.shelved_until = Some(e.ts.plus(Duration::from_secs(8 * 3600))),
            Transition::Unshelved => e.shelved_until = None,
            Transition::RemovedFromService => e.out_of_service = true,
            Transition::ReturnedToService => e.out_of_service = false,
            Transition::Suppressed => e.suppressed = true,
            Transition::Unsuppressed => e.suppressed = false,
            _ => unreachable!("not an overlay"),
        });
    }

    /// Splits the script as the API reads the journal: the latest transition of each alarm
    /// before `from` − 10 min, and every transition from then on.
    fn input(&self, from: Timestamp, to: Timestamp) -> (Vec<AlarmEvent>, Vec<AlarmEvent>) {
        let lead = from.minus(KpiInput::LEAD);
        let mut initial: HashMap<&str, &AlarmEvent> = HashMap::new();
        for e in self.events.iter().filter(|e| e.ts < lead) {
            initial.insert(&e.alarm_id, e);
        }
        let events = self
            .events
            .iter()
            .filter(|e| e.ts >= lead && e.ts < to)
            .cloned()
            .collect();
        (initial.into_values().cloned().collect(), events)
    }
}

/// One day with a flood of 12 alarms in 4 minutes, one alarm chattering (3 raises in 50 s),
/// two fleeting activations, two stale alarms (one still active), shelving, out of service,
/// suppression, a self-diagnostic alarm and acknowledgements at known delays.
fn scripted_day() -> Script {
    let mut s = Script::default();
    use ConditionKind::Threshold;
    for i in 1..=12 {
        let p = match i {
            11 => Priority::Medium,
            12 => Priority::High,
            _ => Priority::Low,
        };
        s.alarm(&format!("F{i:02}"), Some("MHS-001"), p, Threshold);
    }
    s.alarm("C", Some("MHS-002"), Priority::Low, Threshold);
    s.alarm("E", Some("MHS-002"), Priority::Critical, Threshold);
    s.alarm("H", Some("MHS-002"), Priority::Medium, Threshold);
    s.alarm("H2", Some("MHS-002"), Priority::Low, Threshold);
    s.alarm("O", Some("MHS-002"), Priority::Low, Threshold);
    s.alarm("P", Some("MHS-002"), Priority::Low, Threshold);
    s.alarm("S", None, Priority::High, Threshold);
    s.alarm("S2", None, Priority::Low, Threshold);
    s.alarm("gateway:disk_space", None, Priority::High, ConditionKind::DiskSpace);

    // Stale: S2 active 27.8 h before the range (cleared in it), S raised 30 h before its end.
    s.raise("S2", -100_000.0);
    s.raise("S", -21_600.0);
    s.clear("S2", 3000.0);
    // Flood: 12 raises 20 s apart from 01:00, acknowledged at 01:05, cleared at 01:06:40.
    for i in 0..12 {
        s.raise(&format!("F{:02}", i + 1), 3600.0 + 20.0 * f64::from(i));
    }
    for i in 1..=12 {
        s.ack(&format!("F{i:02}"), 3900.0);
    }
    for i in 1..=12 {
        s.clear(&format!("F{i:02}"), 4000.0);
    }
    s.raise("gateway:disk_space", 5000.0);
    // Chattering: C raised at 02:00:00, :25 and :50; the last activation lasts 400 ms.
    s.raise("C", 7200.0);
    s.clear("C", 7210.0);
    s.raise("C", 7225.0);
    s.clear("C", 7235.0);
    s.raise("C", 7250.0);
    s.clear("C", 7250.4);
    s.ack("C", 7300.0);
    // Fleeting and never acknowledged.
    s.raise("E", 10_000.0);
    s.clear("E", 10_000.9);
    // Shelved 30 min after its raise, acknowledged 2000 s after it.
    s.raise("H", 20_000.0);
    s.overlay("H", 20_100.0, Transition::Shelved);
    s.overlay("H", 21_900.0, Transition::Unshelved);
    s.ack("H", 22_000.0);
    s.clear("H", 22_100.0);
    // Shelved to the end of the day, raised while shelved: not annunciated.
    s.overlay("H2", 30_000.0, Transition::Shelved);
    s.raise("H2", 30_100.0);
    s.overlay("O", 40_000.0, Transition::RemovedFromService);
    s.overlay("O", 43_600.0, Transition::ReturnedToService);
    s.overlay("P", 50_000.0, Transition::Suppressed);
    s.overlay("P", 50_600.0, Transition::Unsuppressed);
    s
}

fn settings() -> KpiSettings {
    KpiSettings::new(
        UtcOffset::CHINA,
        vec![480, 1200],
        Vec::new(),
        None,
        Duration::from_secs(1),
        10,
    )
}

fn day_report(groups: GroupSet) -> KpiReport {
    let s = scripted_day();
    let (from, to) = (at(0.0), at(DAY as f64));
    let (initial, events) = s.input(from, to);
    let input = KpiInput {
        from,
        to,
        initial: &initial,
        events: &events,
    };
    report(&input, &settings(), None, groups)
}

const S_MS: i64 = 1000;

#[test]
fn kpis_are_exact_against_a_scripted_journal() {
    let r = day_report(GroupSet::NONE);
    assert_eq!(
        (r.from_local.as_str(), r.to_local.as_str()),
        ("2026-12-07 00:00:00", "2026-12-08 00:00:00")
    );
    let f = &r.site;

    // Rate: 12 flood + 3 chattering + E + H annunciated; H2 was shelved, the gateway's alarm
    // counts apart.
    assert_eq!(f.rate.raises, 17);
    assert_eq!(f.rate.intervals, 144);
    assert_eq!(f.rate.average_per_10min.value, 17.0 * 600.0 / 86_400.0);
    assert_eq!(f.rate.average_per_10min.verdict, Some(Verdict::Acceptable));
    assert_eq!(f.rate.peak_per_10min.value, 12.0);
    assert_eq!(f.rate.peak_per_10min.verdict, Some(Verdict::Over));
    assert_eq!(f.rate.peak_sliding_10min, 12);
    assert_eq!(f.rate.pct_intervals_over_1, 2.0 * 100.0 / 144.0);
    assert_eq!(f.rate.pct_intervals_over_2, 2.0 * 100.0 / 144.0);
    assert_eq!(f.rate.pct_intervals_over_10.value, 100.0 / 144.0);
    assert_eq!(f.rate.pct_intervals_over_10.verdict, Some(Verdict::Acceptable));

    // Flood: the 11th raise (01:03:20) starts it; it ends when the 8th raise leaves the
    // window (01:02:20 + 10 min) and 4 remain.
    assert_eq!(f.flood.periods.len(), 1);
    let p = &f.flood.periods[0];
    assert_eq!((p.start_ms, p.end_ms), (T0 + 3800 * S_MS, T0 + 4340 * S_MS));
    assert_eq!(
        (p.start_local.as_str(), p.end_local.as_str()),
        ("2026-12-07 01:03:20", "2026-12-07 01:12:20")
    );
    assert_eq!((p.raises, p.peak_10min, p.ongoing), (2, 12, false));
    assert_eq!(f.flood.time_in_flood_ms, 540 * S_MS);
    assert_eq!(f.flood.pct_time_in_flood.value, 540.0 * 100.0 / 86_400.0);
    assert_eq!(f.flood.pct_time_in_flood.verdict, Some(Verdict::Acceptable));

    // Bad actors: C (3 raises), then nine single raises by alarm id.
    let ids: Vec<(&str, u64)> = f
        .bad_actors
        .top
        .iter()
        .map(|a| (a.alarm_id.as_str(), a.raises))
        .collect();
    assert_eq!(
        ids,
        [
            ("C", 3),
            ("E", 1),
            ("F01", 1),
            ("F02", 1),
            ("F03", 1),
            ("F04", 1),
            ("F05", 1),
            ("F06", 1),
            ("F07", 1),
            ("F08", 1)
        ]
    );
    assert_eq!(f.bad_actors.top[0].share_pct, 3.0 * 100.0 / 17.0);
    assert_eq!(f.bad_actors.top[0].subject, "C-subject");
    assert_eq!(f.bad_actors.top_share_pct.value, 12.0 * 100.0 / 17.0);
    assert_eq!(f.bad_actors.top_share_pct.verdict, Some(Verdict::Over));

    // Chattering and fleeting.
    assert_eq!(
        f.chattering.alarms,
        [ChatterAlarm {
            alarm_id: "C".into(),
            episodes: 1,
            max_in_60s: 3,
            raises: 3
        }]
    );
    assert_eq!(
        (f.chattering.count.value, f.chattering.count.verdict),
        (1.0, Some(Verdict::Over))
    );
    assert_eq!(f.fleeting.threshold_ms, 1000);
    let fleeting: Vec<(&str, u64, i64)> = f
        .fleeting
        .alarms
        .iter()
        .map(|a| (a.alarm_id.as_str(), a.activations, a.shortest_ms))
        .collect();
    assert_eq!(fleeting, [("C", 1, 400), ("E", 1, 900)]);
    assert_eq!(f.fleeting.count.value, 2.0);

    // Stale: S2 (cleared at 00:50 after 103,000 s) and S (30 h at the end, still active).
    let stale: Vec<(&str, i64, i64, bool)> = f
        .stale
        .alarms
        .iter()
        .map(|a| (a.alarm_id.as_str(), a.since_ms, a.age_ms, a.ongoing))
        .collect();
    assert_eq!(
        stale,
        [
            ("S2", T0 - 100_000 * S_MS, 103_000 * S_MS, false),
            ("S", T0 - 21_600 * S_MS, 30 * 3600 * S_MS, true)
        ]
    );
    assert_eq!(f.stale.alarms[1].since_local, "2026-12-06 18:00:00");
    assert_eq!(
        (f.stale.count.value, f.stale.count.verdict),
        (2.0, Some(Verdict::Acceptable))
    );

    // Standing at the end: S (annunciated) and H2 (raised while shelved).
    let standing: Vec<(&str, i64, bool)> = f
        .standing
        .iter()
        .map(|a| (a.alarm_id.as_str(), a.age_ms, a.annunciated))
        .collect();
    assert_eq!(standing, [("S", 108_000 * S_MS, true), ("H2", 56_300 * S_MS, false)]);

    // Overlays: H shelved 1800 s, H2 from 08:20 to the end; O out of service an hour; P
    // suppressed 10 minutes.
    assert_eq!(
        f.shelved,
        Overlay {
            count: 2,
            duration_ms: (1800 + 56_400) * S_MS
        }
    );
    assert_eq!(
        f.out_of_service,
        Overlay {
            count: 1,
            duration_ms: 3600 * S_MS
        }
    );
    assert_eq!(
        f.suppressed,
        Overlay {
            count: 1,
            duration_ms: 600 * S_MS
        }
    );

    // Priorities: 13 low, 2 medium, 1 high, 1 critical.
    let counts: Vec<(Priority, u64)> = f.priorities.counts.iter().map(|c| (c.priority, c.count)).collect();
    assert_eq!(
        counts,
        [
            (Priority::Low, 13),
            (Priority::Medium, 2),
            (Priority::High, 1),
            (Priority::Critical, 1)
        ]
    );
    assert_eq!(f.priorities.low_pct.value, 13.0 * 100.0 / 17.0);
    assert_eq!(f.priorities.low_pct.verdict, None);
    assert_eq!(f.priorities.low_pct.comparison, Comparison::About);
    assert_eq!(f.priorities.medium_pct.value, 2.0 * 100.0 / 17.0);
    assert_eq!(f.priorities.medium_pct.verdict, Some(Verdict::Acceptable));
    assert_eq!(f.priorities.high_pct.value, 2.0 * 100.0 / 17.0);
    assert_eq!(
        f.priorities.high_pct.verdict,
        Some(Verdict::Over),
        "11.8 % is over 2 × 5 %"
    );

    // Acknowledgement: 16 delays 50 s … 300 s and 2000 s; nearest rank 8 and 15; E waits.
    assert_eq!(
        f.acknowledgement,
        Acknowledgement {
            acknowledged: 16,
            median_ms: Some(160 * S_MS),
            p90_ms: Some(300 * S_MS),
            unacknowledged: 1,
        }
    );

    assert_eq!(
        r.self_diagnostic,
        SelfDiagnostic {
            raises: 1,
            alarms: vec![AlarmCount {
                alarm_id: "gateway:disk_space".into(),
                count: 1
            }]
        }
    );
}

#[test]
fn groups_split_the_same_figures_by_position_source_day_shift_and_week() {
    let r = day_report(GroupSet::ALL);
    assert_eq!(r.positions.len(), 1);
    assert_eq!(
        (r.positions[0].key.as_str(), &r.positions[0].figures),
        ("site", &r.site)
    );
    let sources: Vec<(&str, u64)> = r
        .hazard_sources
        .iter()
        .map(|g| (g.key.as_str(), g.figures.rate.raises))
        .collect();
    assert_eq!(sources, [("-", 0), ("MHS-001", 12), ("MHS-002", 5)]);
    assert_eq!(r.hazard_sources[0].figures.stale.alarms.len(), 2);
    assert_eq!(r.hazard_sources[1].figures.flood.periods.len(), 1);
    assert_eq!(r.days.len(), 1);
    assert_eq!((r.days[0].key.as_str(), &r.days[0].figures), ("2026-12-07", &r.site));
    assert_eq!(r.weeks.len(), 1);
    assert_eq!((r.weeks[0].key.as_str(), &r.weeks[0].figures), ("2026-W50", &r.site));
    let shifts: Vec<(&str, i64, i64, u64)> = r
        .shifts
        .iter()
        .map(|g| {
            (
                g.key.as_str(),
                g.figures.from_ms,
                g.figures.to_ms,
                g.figures.rate.raises,
            )
        })
        .collect();
    assert_eq!(
        shifts,
        [
            ("2026-12-06 20:00", T0, T0 + 8 * 3600 * S_MS, 17),
            ("2026-12-07 08:00", T0 + 8 * 3600 * S_MS, T0 + 20 * 3600 * S_MS, 0),
            ("2026-12-07 20:00", T0 + 20 * 3600 * S_MS, T0 + DAY * S_MS, 0)
        ]
    );
    // The night shift holds the flood; the day shift starts with S stale and ends with H2
    // shelved, whose shelving (from 08:20) is all the day shift's.
    assert_eq!(r.shifts[0].figures.flood.periods, r.site.flood.periods);
    assert_eq!(
        r.shifts[0].figures.flood.pct_time_in_flood.value,
        540.0 * 100.0 / 28_800.0
    );
    let day = &r.shifts[1].figures;
    assert_eq!(
        day.shelved,
        Overlay {
            count: 1,
            duration_ms: (72_000 - 30_000) * S_MS
        }
    );
    assert_eq!(
        day.stale.alarms.iter().map(|a| a.alarm_id.as_str()).collect::<Vec<_>>(),
        ["S"]
    );
    assert_eq!(day.standing.len(), 2);
    assert_eq!(day.rate.intervals, 72);
}

#[test]
fn a_position_sees_only_its_hazard_sources() {
    let s = scripted_day();
    let (from, to) = (at(0.0), at(DAY as f64));
    let (initial, events) = s.input(from, to);
    let input = KpiInput {
        from,
        to,
        initial: &initial,
        events: &events,
    };
    let settings = KpiSettings::new(
        UtcOffset::CHINA,
        Vec::new(),
        vec![Position {
            name: "中控室一".into(),
            hazard_sources: vec!["MHS-001".into()],
        }],
        None,
        Duration::from_secs(1),
        3,
    );
    let r = report(&input, &settings, Some("中控室一"), GroupSet::ALL);
    assert_eq!(r.site.rate.raises, 12);
    assert_eq!(r.site.bad_actors.top.len(), 3);
    assert_eq!(r.site.bad_actors.top_share_pct.value, 25.0);
    assert!(r.site.stale.alarms.is_empty());
    assert_eq!(r.positions.len(), 1);
    assert!(r.shifts.is_empty(), "no shifts configured");
    let all = report(&input, &settings, None, GroupSet::ALL);
    let names: Vec<(&str, u64)> = all
        .positions
        .iter()
        .map(|g| (g.key.as_str(), g.figures.rate.raises))
        .collect();
    assert_eq!(names, [("中控室一", 12), ("unassigned", 5)]);
}

#[test]
fn a_flood_running_into_the_range_and_past_its_end_is_clipped_and_ongoing() {
    let mut s = Script::default();
    for i in 0..30 {
        s.alarm(&format!("A{i:02}"), None, Priority::Low, ConditionKind::Threshold);
    }
    // 20 raises 20 s apart from 23:55 of the previous day; the range is the first 2 minutes.
    for i in 0..20 {
        s.raise(&format!("A{i:02}"), -300.0 + 20.0 * f64::from(i));
    }
    let (from, to) = (at(0.0), at(120.0));
    let (initial, events) = s.input(from, to);
    let input = KpiInput {
        from,
        to,
        initial: &initial,
        events: &events,
    };
    let r = report(&input, &settings(), None, GroupSet::NONE);
    let p = &r.site.flood.periods;
    assert_eq!(p.len(), 1);
    // The 11th raise is at 23:58:20, before the range: the flood is clipped to its start.
    assert_eq!((p[0].start_ms, p[0].end_ms, p[0].ongoing), (T0, T0 + 120 * S_MS, true));
    assert_eq!(p[0].raises, 5, "raises at 0, 20, 40, 60 and 80 s");
    assert_eq!(r.site.rate.raises, 5);
    assert_eq!(r.site.flood.time_in_flood_ms, 120 * S_MS);
    assert_eq!(r.site.flood.pct_time_in_flood.verdict, Some(Verdict::Over));
}
