//! Encoder and command tests; frames are checked with the independent `a` crate.

use std::sync::Arc;

use super::command::{self, ExeRtn, Incoming, QnRtn, Request};
use super::encode::{ATTR_ACK, ATTR_FRAMES, ATTR_QN, Cou, Hj212Encoder, Hj212Settings};
use super::frame::{self, Deframer};
use super::segment::{Segment, Version};
use crate::clock::{ManualClock, SharedClock};
use crate::model::{Quality, Timestamp};
use crate::sinks::uplink::time;
use crate::sinks::uplink::{Codes, Encoder, Payload, RecordKind, Stats, UplinkRecord};

/// 2016-08-01 08:58:57.223 in Shanghai.
const T0_MS: i64 = 1_470_013_137_223;

fn settings(version: Version) -> Hj212Settings {
    Hj212Settings {
        version,
        st: "22".into(),
        mn: "010000A8900016F000169DC0".into(),
        pw: "123456".into(),
        ack: true,
        max_segment: 1024,
        zone: time::zone(time::DEFAULT_ZONE).unwrap(),
        cou: Cou::Count,
        decimals: None,
    }
}

fn encoder(s: Hj212Settings) -> (Hj212Encoder, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0_MS)));
    let shared: SharedClock = clock.clone();
    (Hj212Encoder::new("env", Arc::new(s), shared), clock)
}

fn record(kind: RecordKind, code: &str, ms: i64, value: Option<f64>, quality: Quality) -> UplinkRecord {
    UplinkRecord {
        kind,
        point: Arc::from(format!("plant/{code}")),
        codes: Codes {
            enterprise: Arc::from("E1"),
            hazard_source: None,
            point: Arc::from(code),
        },
        unit: Arc::from("mg/m3"),
        time: Timestamp::from_millis(ms),
        value,
        quality,
        stats: None,
        alarm: None,
        meta: None,
    }
}

/// Every frame of a payload, parsed by the `a` crate's strict parser.
fn packets(p: &Payload) -> Vec<a::Hj212Packet> {
    let mut framer = a::Framer::new();
    framer.push(&p.body);
    let mut out = Vec::new();
    while let Some(bytes) = framer.next_frame() {
        let text = String::from_utf8(bytes).unwrap();
        out.push(a::parse_frame_strict(&text).unwrap());
    }
    out
}

/// The comma-joined members of the `CP` group that starts with `code-`.
fn group(pkt: &a::Hj212Packet, code: &str) -> Option<String> {
    let (_, cp) = pkt.payload.split_once("CP=&&").unwrap();
    cp.trim_end_matches("&&")
        .split(';')
        .find(|g| g.starts_with(&format!("{code}-")))
        .map(str::to_string)
}

#[test]
fn realtime_readings_become_one_2011_message_with_their_flags() {
    let (mut enc, _) = encoder(settings(Version::V2017));
    let records = [
        record(RecordKind::Realtime, "a21026", T0_MS, Some(12.3), Quality::Good),
        record(
            RecordKind::Realtime,
            "a21004",
            T0_MS + 200,
            Some(105.5),
            Quality::OutOfRange,
        ),
        record(RecordKind::Realtime, "a21005", T0_MS + 400, None, Quality::CommFault),
    ];
    let out = enc.encode(&records).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].items, 3);
    assert_eq!(out[0].attr(ATTR_QN), Some("20160801085857223"));
    assert_eq!(out[0].attr(ATTR_ACK), Some("1"));
    let pkts = packets(&out[0]);
    assert_eq!(pkts.len(), 1);
    let p = &pkts[0];
    assert_eq!(p.qn.as_deref(), Some("20160801085857223"));
    assert_eq!((p.st.as_deref(), p.cn.as_deref()), (Some("22"), Some("2011")));
    assert_eq!(p.mn.as_deref(), Some("010000A8900016F000169DC0"));
    assert_eq!(p.pw.as_deref(), Some("123456"));
    let flag = p.flag_bits().unwrap();
    assert_eq!((flag.version(), flag.need_ack(), flag.has_packet()), (1, true, false));
    assert_eq!(p.data_time.as_deref(), Some("20160801085857"));
    assert_eq!(group(p, "a21026").unwrap(), "a21026-Rtd=12.3,a21026-Flag=N");
    assert_eq!(group(p, "a21004").unwrap(), "a21004-Rtd=105.5,a21004-Flag=T");
    assert_eq!(group(p, "a21005").unwrap(), "a21005-Flag=B");
}

#[test]
fn a_failed_sensor_is_sent_with_its_flag_and_no_value() {
    let (mut enc, _) = encoder(settings(Version::V2017));
    // Even a value left in a bad record must not be sent.
    let records = [
        record(RecordKind::Realtime, "p1", T0_MS, Some(0.0), Quality::CommFault),
        record(RecordKind::Realtime, "p2", T0_MS, Some(4.0), Quality::DecodeError),
        record(RecordKind::Realtime, "p3", T0_MS, Some(7.0), Quality::Stale),
        record(RecordKind::Realtime, "p4", T0_MS, Some(f64::NAN), Quality::Good),
    ];
    let out = enc.encode(&records).unwrap();
    let p = &packets(&out[0])[0];
    assert_eq!(group(p, "p1").unwrap(), "p1-Flag=B");
    assert_eq!(group(p, "p2").unwrap(), "p2-Flag=D");
    assert_eq!(group(p, "p3").unwrap(), "p3-Flag=B");
    assert_eq!(group(p, "p4").unwrap(), "p4-Flag=N");
    assert!(!p.payload.contains("Rtd"), "{}", p.payload);
}

#[test]
fn quality_maps_to_the_data_flag() {
    use super::data_flag;
    assert_eq!(data_flag(Quality::Good), 'N');
    assert_eq!(data_flag(Quality::OutOfRange), 'T');
    assert_eq!(data_flag(Quality::DecodeError), 'D');
    assert_eq!(data_flag(Quality::CommFault), 'B');
    assert_eq!(data_flag(Quality::Stale), 'B');
}

#[test]
fn statistics_carry_cou_min_avg_max_and_a_dead_interval_only_its_flag() {
    let (mut enc, _) = encoder(settings(Version::V2025));
    let mut good = record(RecordKind::Minute, "a01", T0_MS - 57_223, None, Quality::Good);
    good.stats = Some(Stats {
        min: 1.5,
        avg: 2.25,
        max: 3.0,
        count: 60,
    });
    let dead = record(RecordKind::Minute, "a02", T0_MS - 57_223, None, Quality::CommFault);
    let out = enc.encode(&[good.clone(), dead]).unwrap();
    let p = &packets(&out[0])[0];
    assert_eq!(p.cn.as_deref(), Some("2051"));
    assert_eq!(p.data_time.as_deref(), Some("20160801085800"));
    assert_eq!(p.flag_bits().unwrap().version(), 2);
    assert_eq!(
        group(p, "a01").unwrap(),
        "a01-Cou=60,a01-Min=1.5,a01-Avg=2.25,a01-Max=3,a01-Flag=N"
    );
    assert_eq!(group(p, "a02").unwrap(), "a02-Flag=B");

    let mut s = settings(Version::V2025);
    s.cou = Cou::Omit;
    s.decimals = Some(2);
    let (mut enc, _) = encoder(s);
    good.kind = RecordKind::Hour;
    let p = &packets(&enc.encode(&[good.clone()]).unwrap()[0])[0];
    assert_eq!(p.cn.as_deref(), Some("2061"));
    assert_eq!(
        group(p, "a01").unwrap(),
        "a01-Min=1.50,a01-Avg=2.25,a01-Max=3.00,a01-Flag=N"
    );
    good.kind = RecordKind::Day;
    let p = &packets(&enc.encode(&[good]).unwrap()[0])[0];
    assert_eq!(p.cn.as_deref(), Some("2031"));
}

#[test]
fn flag_follows_edition_and_acknowledgement_setting() {
    for (version, ack, raw) in [
        (Version::V2017, true, "5"),
        (Version::V2017, false, "4"),
        (Version::V2025, true, "9"),
        (Version::V2025, false, "8"),
    ] {
        let mut s = settings(version);
        s.ack = ack;
        let (mut enc, _) = encoder(s);
        let out = enc
            .encode(&[record(RecordKind::Realtime, "a", T0_MS, Some(1.0), Quality::Good)])
            .unwrap();
        assert_eq!(packets(&out[0])[0].flag.as_deref(), Some(raw));
        assert_eq!(out[0].attr(ATTR_ACK), Some(if ack { "1" } else { "0" }));
    }
}

#[test]
fn each_second_gets_its_own_message_and_qns_never_repeat() {
    let (mut enc, clock) = encoder(settings(Version::V2017));
    let records = [
        record(RecordKind::Realtime, "a", T0_MS, Some(1.0), Quality::Good),
        record(RecordKind::Realtime, "a", T0_MS + 1_000, Some(2.0), Quality::Good),
        record(RecordKind::Realtime, "a", T0_MS + 2_000, Some(3.0), Quality::Good),
    ];
    let out = enc.encode(&records).unwrap();
    let qns: Vec<_> = out.iter().map(|p| p.attr(ATTR_QN).unwrap().to_string()).collect();
    // The clock stood still: QNs still step by a millisecond.
    assert_eq!(qns, ["20160801085857223", "20160801085857224", "20160801085857225"]);
    let times: Vec<_> = out.iter().map(|p| packets(p)[0].data_time.clone().unwrap()).collect();
    assert_eq!(times, ["20160801085857", "20160801085858", "20160801085859"]);
    clock.advance(std::time::Duration::from_secs(1));
    let again = enc.encode(&records[..1]).unwrap();
    assert_eq!(again[0].attr(ATTR_QN), Some("20160801085858223"));
}

#[test]
fn a_long_message_is_split_into_numbered_packets_that_each_fit() {
    let (mut enc, _) = encoder(settings(Version::V2017));
    let records: Vec<_> = (0..120)
        .map(|i| {
            record(
                RecordKind::Realtime,
                &format!("a{i:05}"),
                T0_MS,
                Some(f64::from(i) + 0.5),
                Quality::Good,
            )
        })
        .collect();
    let out = enc.encode(&records).unwrap();
    assert_eq!(out.len(), 1, "one message, several packets");
    let pkts = packets(&out[0]);
    assert!(pkts.len() > 1);
    assert_eq!(out[0].attr(ATTR_FRAMES), Some(pkts.len().to_string().as_str()));
    let mut seen = Vec::new();
    for (i, p) in pkts.iter().enumerate() {
        assert!(p.payload.len() <= 1024);
        assert_eq!(p.qn.as_deref(), Some("20160801085857223"));
        assert_eq!(p.pnum(), Some(pkts.len() as u32));
        assert_eq!(p.pno(), Some(i as u32 + 1));
        let flag = p.flag_bits().unwrap();
        assert!(flag.has_packet() && flag.need_ack());
        assert_eq!(p.data_time.as_deref(), Some("20160801085857"));
        seen.extend(p.cp.keys().filter(|k| k.ends_with("-Rtd")).cloned());
    }
    let want: Vec<_> = (0..120).map(|i| format!("a{i:05}-Rtd")).collect();
    seen.sort();
    assert_eq!(seen, want, "every point exactly once");
}

#[test]
fn a_lower_limit_splits_sooner() {
    let mut s = settings(Version::V2025);
    s.max_segment = 200;
    let (mut enc, _) = encoder(s);
    let records: Vec<_> = (0..6)
        .map(|i| {
            record(
                RecordKind::Realtime,
                &format!("w0101{i}"),
                T0_MS,
                Some(1.0),
                Quality::Good,
            )
        })
        .collect();
    let pkts = packets(&enc.encode(&records).unwrap()[0]);
    assert!(pkts.len() >= 2);
    assert!(pkts.iter().all(|p| p.payload.len() <= 200));
}

#[test]
fn alarms_and_basic_data_have_no_hj212_command() {
    let (mut enc, _) = encoder(settings(Version::V2017));
    let e = enc
        .encode(&[record(RecordKind::Alarm, "a", T0_MS, Some(1.0), Quality::Good)])
        .unwrap_err();
    assert!(e.to_string().contains("no command"), "{e}");
    assert!(
        enc.encode(&[record(RecordKind::Basic, "a", T0_MS, None, Quality::Good)])
            .is_err()
    );
}

#[test]
fn history_answers_carry_the_pull_qn_and_ask_no_ack() {
    let (enc, _) = encoder(settings(Version::V2017));
    let out = enc
        .encode_as(
            &[record(RecordKind::Realtime, "a", T0_MS, Some(1.0), Quality::Good)],
            "20160801090000000",
            false,
        )
        .unwrap();
    let p = &packets(&out[0])[0];
    assert_eq!(p.qn.as_deref(), Some("20160801090000000"));
    assert!(!p.flag_bits().unwrap().need_ack());
}

fn request(cn: &str, cp: &str) -> Segment {
    Segment::parse(&format!(
        "QN=20160801085857223;ST=32;CN={cn};PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&{cp}&&"
    ))
    .unwrap()
}

#[test]
fn centre_requests_are_read_and_checked() {
    let s = settings(Version::V2017);
    let qn = "20160801085857223".to_string();
    let ok = |request| Incoming::Request {
        qn: qn.clone(),
        request,
    };
    assert_eq!(command::classify(&request("1011", ""), &s), ok(Request::GetTime));
    assert_eq!(
        command::classify(&request("1012", "SystemTime=20160801085857"), &s),
        ok(Request::SetTime(Timestamp::from_millis(T0_MS - 223)))
    );
    assert_eq!(command::classify(&request("1061", ""), &s), ok(Request::GetRtdInterval));
    assert_eq!(
        command::classify(&request("1062", "RtdInterval=30"), &s),
        ok(Request::SetRtdInterval(30))
    );
    assert_eq!(command::classify(&request("1063", ""), &s), ok(Request::GetMinInterval));
    assert_eq!(
        command::classify(&request("1064", "MinInterval=10"), &s),
        ok(Request::SetMinInterval(10))
    );
    assert_eq!(
        command::classify(&request("2051", "BeginTime=20160801000000;EndTime=20160801085800"), &s),
        ok(Request::History {
            kind: RecordKind::Minute,
            begin: Timestamp::from_millis(T0_MS - 223 - (8 * 3600 + 58 * 60 + 57) * 1000),
            end: Timestamp::from_millis(T0_MS - 57_223),
        })
    );
    for (cn, kind) in [
        ("2011", RecordKind::Realtime),
        ("2061", RecordKind::Hour),
        ("2031", RecordKind::Day),
    ] {
        let got = command::classify(&request(cn, "BeginTime=20160801000000;EndTime=20160802000000"), &s);
        assert!(matches!(got, Incoming::Request { request: Request::History { kind: k, .. }, .. } if k == kind));
    }
    let ack = Segment::parse("QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=X;Flag=4;CP=&&&&").unwrap();
    assert_eq!(command::classify(&ack, &s), Incoming::Ack(qn.clone()));
}

#[test]
fn the_golden_vector_is_a_request_to_set_the_realtime_interval() {
    let mut s = settings(Version::V2017);
    s.pw = "100000".into();
    let frame = b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n";
    let seg = Segment::parse(frame::parse(frame).unwrap()).unwrap();
    assert_eq!(
        command::classify(&seg, &s),
        Incoming::Request {
            qn: "20160801085857223".into(),
            request: Request::SetRtdInterval(30)
        }
    );
}

#[test]
fn bad_requests_are_refused_with_the_right_code() {
    let s = settings(Version::V2017);
    let code = |seg: &Segment| match command::classify(seg, &s) {
        Incoming::Refuse { code, .. } => Some(code),
        _ => None,
    };
    assert_eq!(code(&request("1062", "RtdInterval=5")), Some(QnRtn::Refused));
    assert_eq!(code(&request("1062", "RtdInterval=x")), Some(QnRtn::Refused));
    assert_eq!(code(&request("1064", "MinInterval=0")), Some(QnRtn::Refused));
    assert_eq!(code(&request("1012", "SystemTime=2016")), Some(QnRtn::Refused));
    assert_eq!(
        code(&request("2051", "BeginTime=20160802000000;EndTime=20160801000000")),
        Some(QnRtn::Refused)
    );
    assert_eq!(code(&request("2051", "BeginTime=20160801000000")), Some(QnRtn::Refused));
    assert_eq!(code(&request("3020", "")), Some(QnRtn::BadCn));
    let mut wrong = request("1011", "");
    wrong.pw = "000000".into();
    assert_eq!(code(&wrong), Some(QnRtn::BadPassword));
    wrong = request("1011", "");
    wrong.mn = "OTHER".into();
    assert_eq!(code(&wrong), Some(QnRtn::BadMn));
    wrong = request("1011", "");
    wrong.qn = None;
    assert_eq!(code(&wrong), Some(QnRtn::BadQn));
    wrong = request("1011", "");
    wrong.flag = None;
    assert_eq!(code(&wrong), Some(QnRtn::BadFlag));
}

#[test]
fn answers_round_trip_through_the_independent_parser() {
    let s = settings(Version::V2017);
    let qn = "20160801085857223";
    let check = |seg: Segment, st: &str, cn: &str, cp: &str| {
        let text = String::from_utf8(frame::build(&seg.render()).unwrap()).unwrap();
        let p = a::parse_frame_strict(&text).unwrap();
        assert_eq!(p.qn.as_deref(), Some(qn));
        assert_eq!((p.st.as_deref(), p.cn.as_deref()), (Some(st), Some(cn)));
        assert_eq!(p.flag.as_deref(), Some("4"));
        let body: Vec<_> = p.cp.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(body.join(";"), cp);
    };
    check(command::qn_rtn(&s, qn, QnRtn::Ready), "91", "9011", "QnRtn=1");
    check(command::qn_rtn(&s, qn, QnRtn::BadPassword), "91", "9011", "QnRtn=3");
    check(command::exe_rtn(&s, qn, ExeRtn::Done), "91", "9012", "ExeRtn=1");
    check(command::exe_rtn(&s, qn, ExeRtn::NoData), "91", "9012", "ExeRtn=100");
    check(command::data_ack(&s, qn), "91", "9014", "");
    check(
        command::time_answer(&s, qn, Timestamp::from_millis(T0_MS)),
        "22",
        "1011",
        "SystemTime=20160801085857",
    );
    check(command::rtd_interval_answer(&s, qn, 60), "22", "1061", "RtdInterval=60");
    check(command::min_interval_answer(&s, qn, 10), "22", "1063", "MinInterval=10");
}

#[test]
fn a_frame_built_by_the_independent_crate_is_read_by_ours() {
    let built = a::build_qn_rtn("20160801085857223", "123456", "MN1", "1").frame_standard();
    let mut d = Deframer::new();
    d.push(built.as_bytes());
    let seg = Segment::parse(&d.next_segment().unwrap().unwrap()).unwrap();
    assert_eq!(seg.cn, "9011");
    assert_eq!(seg.cp_value("QnRtn"), Some("1"));
}

#[test]
fn settings_never_show_the_password() {
    let s = settings(Version::V2017);
    let text = format!("{s:?}");
    assert!(!text.contains("123456") && text.contains("redacted"), "{text}");
}

#[test]
fn current_values_of_several_seconds_are_ordered_into_one_message_per_second() {
    let (mut enc, _) = encoder(settings(Version::V2017));
    let records = [
        record(RecordKind::Realtime, "a", T0_MS + 1_000, Some(1.0), Quality::Good),
        record(RecordKind::Realtime, "b", T0_MS, Some(2.0), Quality::Good),
        record(RecordKind::Realtime, "c", T0_MS + 1_100, Some(3.0), Quality::Good),
    ];
    let out = enc.encode(&records).unwrap();
    assert_eq!(out.len(), 2);
    let first = &packets(&out[0])[0];
    assert_eq!(first.data_time.as_deref(), Some("20160801085857"));
    assert!(group(first, "b").is_some());
    let second = &packets(&out[1])[0];
    assert_eq!(second.data_time.as_deref(), Some("20160801085858"));
    assert!(group(second, "a").is_some() && group(second, "c").is_some());
}

#[test]
fn a_point_twice_in_one_second_goes_into_two_messages() {
    let (mut enc, _) = encoder(settings(Version::V2017));
    let records = [
        record(RecordKind::Realtime, "a", T0_MS, Some(1.0), Quality::Good),
        record(RecordKind::Realtime, "b", T0_MS, Some(2.0), Quality::Good),
        record(RecordKind::Realtime, "a", T0_MS + 500, Some(3.0), Quality::Good),
    ];
    let out = enc.encode(&records).unwrap();
    assert_eq!(out.iter().map(|p| p.items).collect::<Vec<_>>(), [2, 1]);
    let second = &packets(&out[1])[0];
    assert_eq!(second.data_time.as_deref(), Some("20160801085857"));
    assert_eq!(group(second, "a").unwrap(), "a-Rtd=3,a-Flag=N");
}
