//! Golden files (tests/golden/coal/) and the encoder's rules, on a coal face's points.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::model::{
    AlarmClass, AlarmEvent, AlarmState, ConditionKind, Level, Priority, Quality, SubjectKind, Transition,
};
use crate::sinks::uplink::time::{DEFAULT_ZONE, zone};
use crate::sinks::uplink::{Codes, Stats};

/// 2026-11-25 08:00:00 in Shanghai (00:00:00 UTC).
const T0_SECS: i64 = 1_795_564_800;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis((T0_SECS + secs) * 1000)
}

const T0: &str = "8101/face/CH4-T0";
const T2: &str = "8101/return/CH4-T2";
const CO: &str = "8101/return/CO";
const FEED: &str = "8101/face/CH4-T0/power-cut";

fn code_of(point: &str) -> &'static str {
    match point {
        T0 => "140211001MN0001",
        T2 => "140211001MN0002",
        CO => "140211001MN0003",
        _ => "140211001KG0001",
    }
}

fn settings(encoding: TextEncoding) -> CoalSettings {
    let mut s = CoalSettings::for_mine("140211001", "示例煤矿", encoding);
    s.system = "KJ95X".into();
    let face = CoalPoint {
        substation: Some("F8".into()),
        location: Some("8101工作面".into()),
        x: Some(1200.5),
        y: Some(-350.25),
        z: Some(-420.0),
        relation: Some("140211001KG0001".into()),
        ..Default::default()
    };
    let co = CoalPoint {
        type_name: Some("一氧化碳".into()),
        substation: Some("F8".into()),
        location: Some("8101回风巷".into()),
        decimals: Some(0),
        ..Default::default()
    };
    let feed = CoalPoint {
        type_name: Some("馈电".into()),
        substation: Some("F8".into()),
        location: Some("8101工作面".into()),
        on_off: Some("有电/无电".into()),
        ..Default::default()
    };
    for (p, spec) in [(T0, face), (CO, co), (FEED, feed)] {
        s.points.insert(p.to_string(), spec);
    }
    s
}

fn encoder(encoding: TextEncoding) -> CoalEncoder {
    let tz = zone(DEFAULT_ZONE).unwrap();
    CoalEncoder::new("coal-bureau", settings(encoding), tz, Duration::from_secs(300))
}

fn record(kind: RecordKind, point: &str, unit: &str, time: Timestamp) -> UplinkRecord {
    UplinkRecord {
        kind,
        point: point.into(),
        codes: Codes {
            enterprise: "140211001".into(),
            hazard_source: None,
            point: code_of(point).into(),
        },
        unit: unit.into(),
        time,
        value: None,
        quality: Quality::Good,
        stats: None,
        alarm: None,
        meta: None,
    }
}

fn basic(point: &str, unit: &str, meta: BasicMeta) -> UplinkRecord {
    UplinkRecord {
        meta: Some(Box::new(meta)),
        ..record(RecordKind::Basic, point, unit, at(0))
    }
}

fn definitions() -> Vec<UplinkRecord> {
    let methane = |high, high_high, location: Option<&str>| BasicMeta {
        range: Some((0.0, 4.0)),
        high,
        high_high,
        kind: "methane".into(),
        location: location.map(Arc::from),
        ..Default::default()
    };
    vec![
        basic(T0, "%CH4", methane(Some(1.0), Some(1.5), None)),
        // The return airway: alarm and power cut at one set-point; a `;` in the place name.
        basic(T2, "%CH4", methane(None, Some(1.0), Some("8101回风巷;距工作面10m"))),
        basic(
            CO,
            "ppm",
            BasicMeta {
                range: Some((0.0, 1000.0)),
                high: Some(24.0),
                kind: "toxic_gas".into(),
                ..Default::default()
            },
        ),
        basic(
            FEED,
            "",
            BasicMeta {
                kind: "state".into(),
                ..Default::default()
            },
        ),
    ]
}

fn alarm(
    point: &str,
    unit: &str,
    condition: ConditionKind,
    level: Option<Level>,
    transition: Transition,
) -> AlarmEvent {
    AlarmEvent {
        seq: 0,
        alarm_id: format!("{point}:{}", level.map_or(condition.as_str(), |l| l.as_str())),
        rule: "rule".into(),
        subject: point.into(),
        subject_kind: SubjectKind::Point,
        hazard_source: None,
        condition,
        class: AlarmClass::Process,
        level,
        priority: Priority::Critical,
        transition,
        state: AlarmState::UnackActive,
        acknowledged: false,
        latching: false,
        shelved_until: None,
        suppressed: false,
        out_of_service: false,
        value: f64::NAN,
        limit: None,
        unit: unit.into(),
        ts: at(0),
        raised_at: None,
        user: None,
        comment: None,
        category: None,
        predicted_at: None,
    }
}

fn alarm_record(event: AlarmEvent) -> UplinkRecord {
    let point = event.subject.clone();
    let unit = event.unit.clone();
    let ts = event.ts;
    UplinkRecord {
        alarm: Some(Box::new(event)),
        ..record(RecordKind::Alarm, &point, &unit, ts)
    }
}

/// The methane power cut in the return airway and the CO sensor failing.
fn raised() -> Vec<UplinkRecord> {
    let mut cut = alarm(
        T2,
        "%CH4",
        ConditionKind::Threshold,
        Some(Level::HighHigh),
        Transition::Raised,
    );
    cut.value = 1.23;
    cut.limit = Some(1.0);
    cut.ts = at(5);
    cut.raised_at = Some(at(5));
    let mut fault = alarm(CO, "ppm", ConditionKind::SensorFault, None, Transition::Raised);
    fault.ts = at(6);
    fault.raised_at = Some(at(6));
    vec![alarm_record(cut), alarm_record(fault)]
}

fn cleared() -> Vec<UplinkRecord> {
    let mut ack = alarm(
        T2,
        "%CH4",
        ConditionKind::Threshold,
        Some(Level::HighHigh),
        Transition::Acknowledged,
    );
    ack.ts = at(12);
    let mut clear = alarm(
        T2,
        "%CH4",
        ConditionKind::Threshold,
        Some(Level::HighHigh),
        Transition::Cleared,
    );
    clear.value = 0.95;
    clear.limit = Some(1.0);
    clear.ts = at(20);
    clear.state = AlarmState::Normal;
    vec![alarm_record(ack), alarm_record(clear)]
}

fn readings() -> Vec<UplinkRecord> {
    let reading = |point: &str, unit: &str, value: f64, quality: Quality| UplinkRecord {
        value: Some(value),
        quality,
        ..record(RecordKind::Realtime, point, unit, at(10))
    };
    vec![
        reading(T0, "%CH4", 0.12, Quality::Good),
        reading(T2, "%CH4", 1.234, Quality::Good),
        // The dead CO sensor serves 0xFFFF: out of range, and its fault alarm is open.
        reading(CO, "ppm", 65535.0, Quality::OutOfRange),
        reading(FEED, "", 0.0, Quality::Good),
    ]
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/coal")
        .join(name)
}

/// Compares byte for byte; `UPDATE_GOLDEN=1` rewrites the file (then review the diff).
fn assert_golden(payload: &Payload, name: &str) {
    assert_eq!(payload.attr("file_name"), Some(name));
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &payload.body).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        String::from_utf8_lossy(&payload.body),
        String::from_utf8_lossy(&want),
        "{name} differs from the golden file"
    );
    assert_eq!(payload.body, want, "{name}: bytes differ");
}

fn one(payloads: Vec<Payload>) -> Payload {
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    payloads.into_iter().next().unwrap()
}

/// Runs the coal face through an encoder: definitions, alarms raised, readings, alarm cleared.
fn coal_face(encoding: TextEncoding) -> [Payload; 4] {
    let mut enc = encoder(encoding);
    let cddy = one(enc.encode(&definitions()).unwrap());
    let begin = one(enc.encode(&raised()).unwrap());
    let cdss = one(enc.encode(&readings()).unwrap());
    let end = one(enc.encode(&cleared()).unwrap());
    [cddy, begin, cdss, end]
}

#[test]
fn cddy_cdss_and_ycbj_match_their_golden_files() {
    let [cddy, begin, cdss, end] = coal_face(TextEncoding::Utf8);
    assert_golden(&cddy, "140211001_CDDY_20261125080000.txt");
    assert_golden(&begin, "140211001_YCBJ_20261125080006.txt");
    assert_golden(&cdss, "140211001_CDSS_20261125080010.txt");
    assert_golden(&end, "140211001_YCBJ_20261125080020.txt");
    assert!(begin.urgent && end.urgent && !cdss.urgent && !cddy.urgent);
}

#[test]
fn gbk_cdss_matches_its_golden_file() {
    // The GBK golden file was made from the UTF-8 one by iconv, an independent converter.
    let [_, _, cdss, _] = coal_face(TextEncoding::Gbk);
    let name = "140211001_CDSS_20261125080010.txt";
    let want = std::fs::read(golden(&format!("gbk/{name}"))).unwrap();
    assert_eq!(cdss.attr("file_name"), Some(name));
    assert_eq!(cdss.body, want);
}

fn text_of(p: &Payload) -> String {
    String::from_utf8(p.body.clone()).unwrap()
}

/// The records of a file (header first), each split into its fields.
fn records_of(p: &Payload) -> Vec<Vec<String>> {
    let text = text_of(p);
    let body = text.strip_suffix("||").expect("file ends with ||");
    let body = body.strip_suffix('~').expect("last record ends with ~");
    body.split('~')
        .map(|r| r.split(';').map(str::to_string).collect())
        .collect()
}

#[test]
fn a_failed_reading_never_carries_a_value_and_sets_its_fault_bit() {
    let cases = [
        (Quality::CommFault, state::bits::SUBSTATION_FAULT),
        (Quality::Stale, state::bits::NOT_POLLED),
        (Quality::DecodeError, state::bits::SENSOR_FAULT),
        (Quality::OutOfRange, state::bits::OVER_RANGE),
        (Quality::Good, 0),
    ];
    for (quality, bit) in cases {
        let mut enc = encoder(TextEncoding::Utf8);
        let r = UplinkRecord {
            value: Some(655.35),
            quality,
            ..record(RecordKind::Realtime, T0, "%CH4", at(10))
        };
        let rows = records_of(&one(enc.encode(&[r]).unwrap()));
        let row = &rows[1];
        assert_eq!(row.len(), 7, "{row:?}");
        let want_value = if quality == Quality::Good { "655.35" } else { "" };
        assert_eq!(row[3], want_value, "{quality}");
        assert_eq!(row[5], bit.to_string(), "{quality}");
    }
}

#[test]
fn files_of_one_type_in_the_same_second_get_distinct_names_in_time_order() {
    let mut enc = encoder(TextEncoding::Utf8);
    let mut names = Vec::new();
    for ms in [10_000, 10_400, 10_900, 11_000] {
        let r = UplinkRecord {
            value: Some(0.1),
            ..record(
                RecordKind::Realtime,
                T0,
                "%CH4",
                Timestamp::from_millis(T0_SECS * 1000 + ms),
            )
        };
        names.push(one(enc.encode(&[r]).unwrap()).attr("file_name").unwrap().to_string());
    }
    assert_eq!(
        names,
        [
            "140211001_CDSS_20261125080010.txt",
            "140211001_CDSS_20261125080011.txt",
            "140211001_CDSS_20261125080012.txt",
            "140211001_CDSS_20261125080013.txt"
        ]
    );
}

#[test]
fn unchanged_definitions_write_nothing_and_a_change_rewrites_the_whole_list() {
    let mut enc = encoder(TextEncoding::Utf8);
    assert_eq!(enc.encode(&definitions()).unwrap().len(), 1);
    assert!(enc.encode(&definitions()).unwrap().is_empty(), "same definitions again");
    let mut moved = definitions();
    moved.truncate(1);
    moved[0].time = at(60);
    if let Some(meta) = moved[0].meta.as_mut() {
        meta.high = Some(0.8);
    }
    let cddy = one(enc.encode(&moved).unwrap());
    let rows = records_of(&cddy);
    assert_eq!(rows.len(), 5, "header and all four definitions");
    let t0 = rows.iter().find(|r| r[0] == "140211001MN0001").unwrap();
    assert_eq!(
        (t0[8].as_str(), t0[13].as_str()),
        ("0.80", "0.80"),
        "alarm and restore follow"
    );
    assert_eq!(t0[22], "2026-11-25 08:01:00");
    assert_eq!(cddy.attr("file_name"), Some("140211001_CDDY_20261125080100.txt"));
}

#[test]
fn gbk_writes_a_question_mark_for_what_it_cannot_hold() {
    let (bytes, replaced) = text::to_bytes("巷道😀;".to_string(), TextEncoding::Gbk);
    assert_eq!(replaced, 1);
    let (back, _, bad) = encoding_rs::GBK.decode(&bytes);
    assert!(!bad);
    assert_eq!(back, "巷道?;");
}

#[test]
fn statistics_give_max_min_avg_and_an_empty_interval_no_numbers() {
    let mut enc = encoder(TextEncoding::Utf8);
    let stat = |point: &str, stats: Option<Stats>, quality| UplinkRecord {
        stats,
        quality,
        ..record(RecordKind::Minute, point, "%CH4", at(0))
    };
    let s = Stats {
        min: 0.1,
        avg: 0.1234,
        max: 0.2,
        count: 30,
    };
    let p = one(enc
        .encode(&[stat(T0, Some(s), Quality::Good), stat(T2, None, Quality::CommFault)])
        .unwrap());
    assert_eq!(p.attr("file_name"), Some("140211001_TJSJ_20261125080500.txt"));
    let rows = records_of(&p);
    assert_eq!(
        rows[1][3..],
        [
            "%CH4",
            "0.20",
            "0.10",
            "0.12",
            "30",
            "0",
            "2026-11-25 08:00:00",
            "2026-11-25 08:05:00"
        ]
    );
    assert_eq!(rows[2][3..9], ["%CH4", "", "", "", "0", "16"]);
}

#[test]
fn a_clearing_the_encoder_never_saw_begin_keeps_the_alarms_own_raise_time() {
    let mut enc = encoder(TextEncoding::Utf8);
    let mut clear = alarm(
        T0,
        "%CH4",
        ConditionKind::Threshold,
        Some(Level::High),
        Transition::Cleared,
    );
    clear.raised_at = Some(at(-30));
    clear.ts = at(30);
    let rows = records_of(&one(enc.encode(&[alarm_record(clear)]).unwrap()));
    assert_eq!(rows[1][3..6], ["001", "2026-11-25 07:59:30", "2026-11-25 08:00:30"]);
}

#[test]
fn out_of_service_is_reported_as_calibration() {
    let mut enc = encoder(TextEncoding::Utf8);
    let mut out = alarm(
        T0,
        "%CH4",
        ConditionKind::Threshold,
        Some(Level::High),
        Transition::RemovedFromService,
    );
    out.ts = at(1);
    let begin = records_of(&one(enc.encode(&[alarm_record(out)]).unwrap()));
    assert_eq!(begin[1][3..6], ["007", "2026-11-25 08:00:01", ""]);
    let r = UplinkRecord {
        value: Some(0.5),
        ..record(RecordKind::Realtime, T0, "%CH4", at(2))
    };
    assert_eq!(records_of(&one(enc.encode(&[r]).unwrap()))[1][5], "4");
    let mut back = alarm(
        T0,
        "%CH4",
        ConditionKind::Threshold,
        Some(Level::High),
        Transition::ReturnedToService,
    );
    back.ts = at(3);
    let end = records_of(&one(enc.encode(&[alarm_record(back)]).unwrap()));
    assert_eq!(end[1][3..6], ["007", "2026-11-25 08:00:01", "2026-11-25 08:00:03"]);
}

#[test]
fn validation_names_every_bad_key() {
    let mut s = settings(TextEncoding::Gbk);
    s.mine_code = "14/02".into();
    s.mine_name = "矿;井".into();
    s.decimals = 9;
    let mut bad = CoalPoint {
        location: Some("巷道~1".into()),
        ..Default::default()
    };
    bad.x = Some(f64::INFINITY);
    s.points.insert("p".into(), bad);
    let problems = s.validate();
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "mine_code",
            "mine_name",
            "decimals",
            "points.\"p\".location",
            "points.\"p\".x"
        ]
    );
    assert!(
        problems[0].message.contains("letters and digits"),
        "{}",
        problems[0].message
    );
    assert!(problems[3].message.contains("'~'"), "{}", problems[3].message);
    assert!(settings(TextEncoding::Utf8).validate().is_empty());
}

#[test]
fn settings_refuse_unknown_keys_and_need_an_encoding() {
    let err = toml::from_str::<CoalSettings>("mine_code = \"1\"\nmine_name = \"m\"\nencoding = \"gbk\"\nzone_x = 1\n")
        .unwrap_err();
    assert!(err.to_string().contains("zone_x"), "{err}");
    let err = toml::from_str::<CoalSettings>("mine_code = \"1\"\nmine_name = \"m\"\n").unwrap_err();
    assert!(err.to_string().contains("encoding"), "{err}");
    let ok: CoalSettings = toml::from_str(
        "mine_code = \"1\"\nmine_name = \"m\"\nencoding = \"utf-8\"\n[points.\"a/b\"]\nvalue_type = \"KG\"\n",
    )
    .unwrap();
    assert_eq!(ok.point("a/b").and_then(|p| p.value_type), Some(ValueType::Switch));
}
