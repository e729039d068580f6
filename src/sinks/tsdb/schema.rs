//! The gateway's records in line protocol: one measurement for readings, one for alarm
//! transitions. The schema is documented in `docs/tsdb-schema.md`; keep the two in step.
//!
//! Design: a point's tags never change while the gateway runs, so each point's escaped
//! measurement-and-tags prefix is built once; encoding a reading then only appends the
//! fields and timestamp, which keeps the hot path free of escaping and allocation.

use crate::model::{AlarmEvent, PointTable, Reading};

use super::line::{LineBuilder, LineError, push_key};

/// Measurement of readings.
pub const READINGS: &str = "hazard_reading";
/// Measurement of alarm transitions.
pub const ALARMS: &str = "hazard_alarm";

/// Stable integer code of a reading's quality, stored in the `quality` field so stores
/// that keep only numbers (VictoriaMetrics) keep it too.
pub fn quality_code(q: crate::model::Quality) -> i64 {
    use crate::model::Quality::*;
    match q {
        Good => 0,
        CommFault => 1,
        DecodeError => 2,
        OutOfRange => 3,
        Stale => 4,
        Uncertain => 5,
        Suspect => 6,
    }
}

/// What became of one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// Written with value and quality.
    Full,
    /// Written with quality only: the value was NaN or infinite (usually a comm fault).
    ValueOmitted,
}

/// Encodes readings of one gateway's points.
#[derive(Debug, Clone)]
pub struct ReadingEncoder {
    /// Per point: `hazard_reading,device=..,gateway=..,...,unit=..` or why it cannot be written.
    prefixes: Vec<Result<String, LineError>>,
}

impl ReadingEncoder {
    /// Builds the per-point prefixes. Tags are in key order, as the stores prefer.
    pub fn new(gateway: &str, points: &PointTable) -> Self {
        let prefixes = points
            .iter()
            .map(|(_, m)| {
                let mut s = String::with_capacity(128);
                s.push_str(READINGS);
                let tags: [(&str, &str); 6] = [
                    ("device", m.device()),
                    ("gateway", gateway),
                    ("hazard_source", m.hazard_source().map(|t| &**t).unwrap_or("")),
                    ("kind", m.kind().as_str()),
                    ("point", m.name()),
                    ("unit", m.unit()),
                ];
                for (k, v) in tags {
                    if v.is_empty() {
                        if k == "point" || k == "gateway" {
                            return Err(LineError::Empty { element: "tag value" });
                        }
                        continue;
                    }
                    s.push(',');
                    push_key(&mut s, k, "tag key")?;
                    s.push('=');
                    push_key(&mut s, v, "tag value")?;
                }
                Ok(s)
            })
            .collect();
        Self { prefixes }
    }

    /// Appends one reading's line to `out`.
    pub fn encode(&self, r: &Reading, out: &mut String) -> Result<Encoded, LineError> {
        let prefix = match self.prefixes.get(r.point.index()) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(*e),
            None => return Err(LineError::Empty { element: "tag value" }),
        };
        let b = LineBuilder::with_prefix(out, prefix);
        let (b, how) = if r.value.is_finite() {
            (b.float("value", r.value), Encoded::Full)
        } else {
            (b, Encoded::ValueOmitted)
        };
        b.int("quality", quality_code(r.quality)).finish(r.ts.as_nanos())?;
        Ok(how)
    }
}

/// Appends one alarm transition's line to `out`.
pub fn encode_alarm(gateway: &str, e: &AlarmEvent, out: &mut String) -> Result<(), LineError> {
    let b = LineBuilder::new(out, ALARMS)
        .tag("alarm_id", &e.alarm_id)
        .tag("class", e.class.as_str())
        .tag("condition", e.condition.as_str())
        .tag("gateway", gateway)
        .tag("hazard_source", e.hazard_source.as_deref().unwrap_or(""))
        .tag("level", e.level.map(|l| l.as_str()).unwrap_or(""))
        .tag("priority", e.priority.as_str())
        .tag("rule", &e.rule)
        .tag("state", e.state.as_str())
        .tag("subject", &e.subject)
        .tag("transition", e.transition.as_str())
        .tag("unit", &e.unit)
        .int("active", i64::from(e.condition_active()))
        .int("acknowledged", i64::from(e.acknowledged))
        .int("annunciated", i64::from(e.annunciated()))
        .int("seq", i64::try_from(e.seq).unwrap_or(i64::MAX));
    let b = if e.value.is_finite() {
        b.float("value", e.value)
    } else {
        b
    };
    let b = match e.limit {
        Some(l) if l.is_finite() => b.float("limit", l),
        _ => b,
    };
    b.finish(e.ts.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AlarmClass, AlarmState, ConditionKind, Level, PointKind, PointMeta, Priority, Quality, SubjectKind, Timestamp,
        Transition,
    };

    fn table() -> PointTable {
        let mut t = PointTable::default();
        t.insert(PointMeta {
            name: "MHS-001/GT 101".into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: "gas-ai-1".into(),
            hazard_source: Some("MHS-001".into()),
            range: None,
            description: None,
        });
        t.insert(PointMeta {
            name: "bad\npoint".into(),
            unit: "".into(),
            kind: PointKind::State,
            device: "d".into(),
            hazard_source: None,
            range: None,
            description: None,
        });
        t
    }

    #[test]
    fn a_reading_carries_gateway_point_device_source_kind_unit_value_and_quality() {
        let points = table();
        let enc = ReadingEncoder::new("gw-1", &points);
        let mut out = String::new();
        let r = Reading {
            point: points.id_of("MHS-001/GT 101").unwrap(),
            ts: Timestamp::from_nanos(1_700_000_000_000_000_001),
            value: 27.25,
            quality: Quality::Good,
        };
        assert_eq!(enc.encode(&r, &mut out), Ok(Encoded::Full));
        let bad = Reading {
            value: f64::NAN,
            quality: Quality::CommFault,
            ..r
        };
        assert_eq!(enc.encode(&bad, &mut out), Ok(Encoded::ValueOmitted));
        assert_eq!(
            out,
            "hazard_reading,device=gas-ai-1,gateway=gw-1,hazard_source=MHS-001,kind=gas,point=MHS-001/GT\\ 101,unit=%LEL value=27.25,quality=0i 1700000000000000001\n\
             hazard_reading,device=gas-ai-1,gateway=gw-1,hazard_source=MHS-001,kind=gas,point=MHS-001/GT\\ 101,unit=%LEL quality=1i 1700000000000000001\n"
        );
    }

    #[test]
    fn a_point_whose_name_cannot_be_written_is_refused_with_a_reason() {
        let points = table();
        let enc = ReadingEncoder::new("gw-1", &points);
        let mut out = String::new();
        let r = Reading {
            point: points.id_of("bad\npoint").unwrap(),
            ts: Timestamp::from_nanos(1),
            value: 1.0,
            quality: Quality::Good,
        };
        assert_eq!(enc.encode(&r, &mut out).unwrap_err().kind(), "control_char");
        assert!(out.is_empty());
    }

    #[test]
    fn an_alarm_transition_is_its_own_measurement() {
        let e = AlarmEvent {
            seq: 7,
            alarm_id: "p:high".into(),
            rule: "gas first level".into(),
            subject: "p".into(),
            subject_kind: SubjectKind::Point,
            hazard_source: None,
            condition: ConditionKind::Threshold,
            class: AlarmClass::Process,
            level: Some(Level::High),
            priority: Priority::High,
            transition: Transition::Raised,
            state: AlarmState::UnackActive,
            acknowledged: false,
            latching: false,
            shelved_until: None,
            suppressed: false,
            out_of_service: false,
            value: 27.5,
            limit: Some(25.0),
            unit: "%LEL".into(),
            ts: Timestamp::from_nanos(9),
            raised_at: Some(Timestamp::from_nanos(9)),
            user: None,
            comment: None,
            category: None,
            predicted_at: None,
        };
        let mut out = String::new();
        encode_alarm("gw-1", &e, &mut out).unwrap();
        assert_eq!(
            out,
            "hazard_alarm,alarm_id=p:high,class=process,condition=threshold,gateway=gw-1,level=high,priority=high,rule=gas\\ first\\ level,state=unack_active,subject=p,transition=raised,unit=%LEL active=1i,acknowledged=0i,annunciated=1i,seq=7i,value=27.5,limit=25.0 9\n"
        );
    }
}
