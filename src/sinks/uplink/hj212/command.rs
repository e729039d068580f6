//! What the centre (上位机) sends a field unit, and the answers (HJ 212-2017 appendix A and
//! table 7): the 9014 data acknowledgement, get/set time (1011/1012), get/set the real-time
//! interval (1061/1062) and the minute interval (1063/1064), and history pulls of real-time,
//! minute, hour and day data (2011/2051/2061/2031 with `BeginTime`/`EndTime`).
//!
//! Exchange: a request is answered at once with 9011 carrying its `QN` and a `QnRtn` (1 when
//! it will be carried out, else the reason it is refused); an accepted request then gets its
//! data (for a "get" or a pull) and ends with 9012 carrying `ExeRtn` (1 done, 100 no data).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::encode::{Hj212Settings, TIME_FORMAT};
use super::segment::Segment;
use crate::model::Timestamp;
use crate::sinks::uplink::RecordKind;

/// System code of system-interaction frames (9011, 9012, 9014).
pub const ST_SYSTEM: &str = "91";
/// Real-time interval limits in seconds (HJ 212-2017 table 7: 30 to 3600).
pub const RTD_INTERVAL_SECS: std::ops::RangeInclusive<u32> = 30..=3600;
/// Minute-data interval limits in minutes; it must also divide an hour.
pub const MIN_INTERVAL_MINUTES: std::ops::RangeInclusive<u32> = 1..=60;

/// `QnRtn` of a 9011 answer (HJ 212-2017 table 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QnRtn {
    /// The request will be carried out.
    Ready = 1,
    /// Refused (a parameter out of range or unreadable).
    Refused = 2,
    /// Wrong access password.
    BadPassword = 3,
    /// Wrong device identifier.
    BadMn = 4,
    /// `Flag` unreadable.
    BadFlag = 6,
    /// `QN` missing or unreadable.
    BadQn = 7,
    /// Command code unknown to this field unit.
    BadCn = 8,
}

/// `ExeRtn` of a 9012 answer (HJ 212-2017 table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeRtn {
    /// Carried out.
    Done = 1,
    /// Failed, reason unknown.
    Failed = 2,
    /// Nothing stored in the requested range.
    NoData = 100,
}

/// A request of the centre that passed its checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// 1011: report the field unit's time.
    GetTime,
    /// 1012: the centre's time; recorded, the host clock is left alone.
    SetTime(Timestamp),
    /// 1061: report the real-time interval.
    GetRtdInterval,
    /// 1062: set the real-time interval, in seconds.
    SetRtdInterval(u32),
    /// 1063: report the minute-data interval.
    GetMinInterval,
    /// 1064: set the minute-data interval, in minutes.
    SetMinInterval(u32),
    /// 2011/2051/2061/2031 with `BeginTime`/`EndTime`: resend stored records of `kind`.
    History {
        /// Real-time, minute, hour or day.
        kind: RecordKind,
        /// First collection time wanted.
        begin: Timestamp,
        /// Last collection time wanted.
        end: Timestamp,
    },
}

/// A frame from the centre, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// 9014: the message with this `QN` arrived.
    Ack(String),
    /// A request to answer with 9011 `QnRtn=1` and carry out.
    Request {
        /// The request's `QN`, repeated in every answer.
        qn: String,
        /// What is asked.
        request: Request,
    },
    /// A request to refuse: answer 9011 with this code (`qn` may be empty if it had none).
    Refuse {
        /// The request's `QN`.
        qn: String,
        /// Why.
        code: QnRtn,
        /// For the log.
        reason: String,
    },
    /// Answers and notices that need no reply (9011/9012/9013 from the centre, unknown
    /// answer codes).
    Ignore,
}

/// Parses HJ 212 time text (`YYYYMMDDhhmmss`) as a civil time in `zone`.
pub fn parse_time(text: &str, zone: &TimeZone) -> Option<Timestamp> {
    if text.len() != 14 {
        return None;
    }
    let civil = DateTime::strptime(TIME_FORMAT, text).ok()?;
    let zoned = civil.to_zoned(zone.clone()).ok()?;
    let nanos = i64::try_from(zoned.timestamp().as_nanosecond()).ok()?;
    Some(Timestamp::from_nanos(nanos))
}

/// Classifies a frame from the centre, checking it is addressed to us (`MN`, `PW`).
pub fn classify(seg: &Segment, settings: &Hj212Settings) -> Incoming {
    let qn = seg.qn.clone().unwrap_or_default();
    let refuse = |code: QnRtn, reason: String| Incoming::Refuse {
        qn: qn.clone(),
        code,
        reason,
    };
    if seg.cn == "9014" {
        return match seg.qn.clone() {
            Some(q) => Incoming::Ack(q),
            None => Incoming::Ignore,
        };
    }
    if seg.cn.starts_with('9') {
        return Incoming::Ignore;
    }
    if seg
        .qn
        .as_ref()
        .is_none_or(|q| q.len() != 17 || !q.bytes().all(|b| b.is_ascii_digit()))
    {
        return refuse(QnRtn::BadQn, format!("QN `{qn}` is not 17 digits"));
    }
    if seg.mn != settings.mn {
        return refuse(QnRtn::BadMn, format!("MN `{}` is not this field unit's", seg.mn));
    }
    if seg.pw != settings.pw {
        return refuse(QnRtn::BadPassword, "wrong access password".to_string());
    }
    if seg.flag.is_none() {
        return refuse(QnRtn::BadFlag, "no Flag".to_string());
    }
    let zone = &settings.zone;
    let time = |key: &str| -> Result<Timestamp, String> {
        let text = seg.cp_value(key).ok_or_else(|| format!("no {key}"))?;
        parse_time(text, zone).ok_or_else(|| format!("{key} `{text}` is not YYYYMMDDhhmmss"))
    };
    let interval = |key: &str, range: std::ops::RangeInclusive<u32>| -> Result<u32, String> {
        let text = seg.cp_value(key).ok_or_else(|| format!("no {key}"))?;
        text.parse::<u32>()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| format!("{key} `{text}` is outside {}..={}", range.start(), range.end()))
    };
    let request = match seg.cn.as_str() {
        "1011" => Ok(Request::GetTime),
        "1012" => time("SystemTime").map(Request::SetTime),
        "1061" => Ok(Request::GetRtdInterval),
        "1062" => interval("RtdInterval", RTD_INTERVAL_SECS).map(Request::SetRtdInterval),
        "1063" => Ok(Request::GetMinInterval),
        "1064" => interval("MinInterval", MIN_INTERVAL_MINUTES).and_then(|m| {
            if 60 % m == 0 {
                Ok(Request::SetMinInterval(m))
            } else {
                Err(format!("MinInterval {m} does not divide an hour"))
            }
        }),
        "2011" | "2051" | "2061" | "2031" => {
            let kind = match seg.cn.as_str() {
                "2011" => RecordKind::Realtime,
                "2051" => RecordKind::Minute,
                "2061" => RecordKind::Hour,
                _ => RecordKind::Day,
            };
            match (time("BeginTime"), time("EndTime")) {
                (Ok(begin), Ok(end)) if begin <= end => Ok(Request::History { kind, begin, end }),
                (Ok(_), Ok(_)) => Err("BeginTime is after EndTime".to_string()),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        other => return refuse(QnRtn::BadCn, format!("CN {other} is not supported")),
    };
    match request {
        Ok(request) => Incoming::Request { qn, request },
        Err(reason) => refuse(QnRtn::Refused, reason),
    }
}

fn answer(settings: &Hj212Settings, qn: &str, st: &str, cn: &str, cp: String) -> Segment {
    Segment {
        qn: Some(qn.to_string()),
        st: st.to_string(),
        cn: cn.to_string(),
        pw: settings.pw.clone(),
        mn: settings.mn.clone(),
        flag: Some(settings.flag(false, false)),
        packet: None,
        cp,
    }
}

/// 9011: the request `qn` is accepted (`QnRtn=1`) or refused.
pub fn qn_rtn(settings: &Hj212Settings, qn: &str, code: QnRtn) -> Segment {
    answer(settings, qn, ST_SYSTEM, "9011", format!("QnRtn={}", code as u16))
}

/// 9012: how the request `qn` ended.
pub fn exe_rtn(settings: &Hj212Settings, qn: &str, code: ExeRtn) -> Segment {
    answer(settings, qn, ST_SYSTEM, "9012", format!("ExeRtn={}", code as u16))
}

/// 1011 answer: the field unit's time.
pub fn time_answer(settings: &Hj212Settings, qn: &str, now: Timestamp) -> Segment {
    let cp = format!("SystemTime={}", settings.time_text(now));
    answer(settings, qn, &settings.st, "1011", cp)
}

/// 1061 answer: the real-time interval in seconds.
pub fn rtd_interval_answer(settings: &Hj212Settings, qn: &str, secs: u32) -> Segment {
    answer(settings, qn, &settings.st, "1061", format!("RtdInterval={secs}"))
}

/// 1063 answer: the minute-data interval in minutes.
pub fn min_interval_answer(settings: &Hj212Settings, qn: &str, minutes: u32) -> Segment {
    answer(settings, qn, &settings.st, "1063", format!("MinInterval={minutes}"))
}

/// 9014 from a centre: acknowledges the data message `qn` (for test centres and tools).
pub fn data_ack(settings: &Hj212Settings, qn: &str) -> Segment {
    answer(settings, qn, ST_SYSTEM, "9014", String::new())
}
