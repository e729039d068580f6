//! One OPC UA data change to one reading, and the per-point guard against values delivered
//! twice. Pure: status, value and timestamps in, reading out.
//!
//! Quality (OPC UA Part 4, 7.39 StatusCode; Part 8, 6.3.2 for the data-access codes):
//! - severity Good -> `good` (then `out_of_range` if outside the point's range);
//! - severity Uncertain -> `uncertain` (value kept, it still drives threshold alarms);
//! - Bad codes that mean the value never reached the server or us ([`COMM_CODES`]) ->
//!   `comm_fault`; every other Bad code (a sensor or configuration fault the server reports,
//!   a value of a non-numeric type) -> `decode_error`.
//!
//! Time: the source timestamp (when the device measured) if the server sent one, else the
//! server timestamp, else the arrival time.

use opcua::types::{DataValue, DateTime, StatusCode, Variant};

use crate::model::{PointId, Quality, Reading, Timestamp};

/// Upper 16 bits (the sub-code) of Bad codes that mean "no communication", as numbered in
/// OPC UA Part 6 Annex A (StatusCode.csv).
pub const COMM_CODES: [(u32, &str); 14] = [
    (0x8005_0000, "BadCommunicationError"),
    (0x800A_0000, "BadTimeout"),
    (0x800C_0000, "BadShutdown"),
    (0x800D_0000, "BadServerNotConnected"),
    (0x800E_0000, "BadServerHalted"),
    (0x8031_0000, "BadNoCommunication"),
    (0x8032_0000, "BadWaitingForInitialData"),
    (0x8082_0000, "BadTcpInternalError"),
    (0x8085_0000, "BadRequestTimeout"),
    (0x8086_0000, "BadSecureChannelClosed"),
    (0x808A_0000, "BadNotConnected"),
    (0x808D_0000, "BadOutOfService"),
    (0x80AD_0000, "BadDisconnect"),
    (0x80AE_0000, "BadConnectionClosed"),
];

/// Ticks (100 ns) from 1601-01-01, the OPC UA epoch, to 1970-01-01.
const UNIX_EPOCH_TICKS: i64 = 116_444_736_000_000_000;

/// The quality an OPC UA status code maps to (before the range check).
pub fn quality_of(status: StatusCode) -> Quality {
    if status.is_good() {
        Quality::Good
    } else if status.is_uncertain() {
        Quality::Uncertain
    } else if COMM_CODES.iter().any(|(c, _)| status.bits() & 0xFFFF_0000 == *c) {
        Quality::CommFault
    } else {
        Quality::DecodeError
    }
}

/// A numeric built-in value as f64 (booleans 0/1); `None` for every other type.
pub fn number_of(v: &Variant) -> Option<f64> {
    Some(match v {
        Variant::Boolean(b) => f64::from(u8::from(*b)),
        Variant::SByte(x) => f64::from(*x),
        Variant::Byte(x) => f64::from(*x),
        Variant::Int16(x) => f64::from(*x),
        Variant::UInt16(x) => f64::from(*x),
        Variant::Int32(x) => f64::from(*x),
        Variant::UInt32(x) => f64::from(*x),
        // 64-bit integers beyond 2^53 lose their lowest bits, as every f64 reading does.
        Variant::Int64(x) => *x as f64,
        Variant::UInt64(x) => *x as f64,
        Variant::Float(x) => f64::from(*x),
        Variant::Double(x) => *x,
        _ => return None,
    })
}

/// An OPC UA time as a gateway timestamp; `None` for the null time.
pub fn timestamp_of(t: &DateTime) -> Option<Timestamp> {
    if t.is_null() {
        return None;
    }
    let ticks = t.ticks().checked_sub(UNIX_EPOCH_TICKS)?;
    Some(Timestamp::from_nanos(ticks.checked_mul(100)?))
}

/// What became of a data change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Converted {
    /// A reading (any quality).
    Reading(Reading),
    /// Already delivered: its time is not after the last one delivered for the point (a
    /// server re-sending its last value after a reconnect, or a republished message).
    Duplicate,
}

/// Per-point time of the last delivered value, so a value is never delivered twice.
///
/// Design: after a server restart the gateway creates its monitored items again and the server
/// sends each item's current value, which the gateway delivered before the restart if it had
/// not changed; OPC UA values carry the time the device measured them, so a value whose source
/// time is not after the last delivered one for its point is a repeat. Readings stamped with
/// the arrival time (no source or server time) are never dropped: arrival times only grow.
///
/// A point marked `comm_fault` while the link was down is the exception: when the server
/// resends its unchanged value after the reconnect, that value is delivered once more with its
/// own source time, or the point would stay `comm_fault` until the value next changes. History
/// and time-series stores key readings by point and time, so they keep it once.
#[derive(Debug, Clone)]
pub struct Delivered {
    last: Vec<Option<Timestamp>>,
    faulted: Vec<bool>,
}

impl Delivered {
    /// A guard for `n` monitored items (indexed by client handle - 1).
    pub fn new(n: usize) -> Self {
        Self {
            last: vec![None; n],
            faulted: vec![false; n],
        }
    }

    /// Item `idx` was marked with a fault reading: its next value restores it even if old.
    pub fn mark_faulted(&mut self, idx: usize) {
        if let Some(f) = self.faulted.get_mut(idx) {
            *f = true;
        }
    }

    /// Converts one data change of item `idx` feeding `point`; `arrival` stamps values that
    /// carry no time of their own.
    pub fn convert(
        &mut self,
        idx: usize,
        point: PointId,
        range: Option<(f64, f64)>,
        dv: &DataValue,
        arrival: Timestamp,
    ) -> Converted {
        let status = dv.status.unwrap_or(StatusCode::Good);
        let device_time = dv
            .source_timestamp
            .as_ref()
            .and_then(timestamp_of)
            .or_else(|| dv.server_timestamp.as_ref().and_then(timestamp_of));
        let faulted = self.faulted.get(idx).copied().unwrap_or(false);
        let ts = match (device_time, self.last.get(idx)) {
            (Some(t), Some(Some(last))) if t <= *last && faulted => t,
            (Some(t), Some(Some(last))) if t <= *last => return Converted::Duplicate,
            (t, _) => {
                let ts = t.unwrap_or(arrival);
                if let Some(slot) = self.last.get_mut(idx) {
                    *slot = Some(ts.max(slot.unwrap_or(ts)));
                }
                ts
            }
        };
        if let Some(f) = self.faulted.get_mut(idx) {
            *f = false;
        }
        let mut quality = quality_of(status);
        let value = match dv.value.as_ref().and_then(number_of) {
            Some(v) => v,
            None if quality == Quality::Good || quality == Quality::Uncertain => {
                // A value of a type we cannot turn into a number (string, array, null).
                quality = Quality::DecodeError;
                f64::NAN
            }
            None => f64::NAN,
        };
        if quality == Quality::Good
            && let Some((lo, hi)) = range
            && !(lo..=hi).contains(&value)
        {
            quality = Quality::OutOfRange;
        }
        // A Bad status carries no trustworthy value, whatever the server put beside it.
        let value = match quality {
            Quality::Good | Quality::Uncertain | Quality::OutOfRange => value,
            _ => f64::NAN,
        };
        Converted::Reading(Reading {
            point,
            ts,
            value,
            quality,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime {
        DateTime::from(chrono_like(secs))
    }

    fn chrono_like(secs: i64) -> i64 {
        UNIX_EPOCH_TICKS + secs * 10_000_000
    }

    fn dv(v: Variant, status: StatusCode, src: Option<i64>) -> DataValue {
        DataValue {
            value: Some(v),
            status: Some(status),
            source_timestamp: src.map(at),
            ..Default::default()
        }
    }

    fn pid() -> PointId {
        let mut t = crate::model::PointTable::default();
        t.insert(crate::model::PointMeta {
            name: "p".into(),
            unit: "".into(),
            kind: crate::model::PointKind::Other,
            device: "d".into(),
            hazard_source: None,
            range: None,
            description: None,
        })
        .unwrap()
    }

    #[test]
    fn every_numeric_builtin_becomes_a_number() {
        let cases = [
            (Variant::Boolean(true), 1.0),
            (Variant::SByte(-128), -128.0),
            (Variant::Byte(255), 255.0),
            (Variant::Int16(-32768), -32768.0),
            (Variant::UInt16(65535), 65535.0),
            (Variant::Int32(-2_000_000_000), -2e9),
            (Variant::UInt32(4_000_000_000), 4e9),
            (Variant::Int64(-(1 << 52)), -(2f64.powi(52))),
            (Variant::UInt64(1 << 53), 2f64.powi(53)),
            (Variant::Float(1.5), 1.5),
            (Variant::Double(-0.125), -0.125),
        ];
        for (v, want) in cases {
            assert_eq!(number_of(&v), Some(want), "{v:?}");
        }
        assert_eq!(number_of(&Variant::String("x".into())), None);
    }

    #[test]
    fn status_severity_and_comm_codes_pick_the_quality() {
        assert_eq!(quality_of(StatusCode::Good), Quality::Good);
        assert_eq!(quality_of(StatusCode::from(0x4092_0000)), Quality::Uncertain); // Uncertain_SensorNotAccurate
        assert_eq!(quality_of(StatusCode::from(0x8005_0000)), Quality::CommFault);
        assert_eq!(quality_of(StatusCode::from(0x808A_0000)), Quality::CommFault);
        assert_eq!(quality_of(StatusCode::from(0x8031_0000)), Quality::CommFault);
        assert_eq!(quality_of(StatusCode::from(0x808C_0000)), Quality::DecodeError); // BadSensorFailure
        assert_eq!(quality_of(StatusCode::from(0x8000_0000)), Quality::DecodeError);
    }

    #[test]
    fn source_time_wins_then_server_time_then_arrival() {
        let mut d = Delivered::new(1);
        let mut v = dv(Variant::Double(1.0), StatusCode::Good, Some(100));
        v.server_timestamp = Some(at(200));
        let Converted::Reading(r) = d.convert(0, pid(), None, &v, Timestamp::from_millis(5)) else {
            panic!()
        };
        assert_eq!(r.ts, Timestamp::from_millis(100_000));
        v.source_timestamp = None;
        let Converted::Reading(r) = d.convert(0, pid(), None, &v, Timestamp::from_millis(5)) else {
            panic!()
        };
        assert_eq!(r.ts, Timestamp::from_millis(200_000));
        v.server_timestamp = None;
        let Converted::Reading(r) = d.convert(0, pid(), None, &v, Timestamp::from_millis(300_000)) else {
            panic!()
        };
        assert_eq!(r.ts, Timestamp::from_millis(300_000));
    }

    #[test]
    fn a_value_not_newer_than_the_last_delivered_is_a_duplicate() {
        let mut d = Delivered::new(2);
        let now = Timestamp::from_millis(0);
        let first = dv(Variant::Int32(7), StatusCode::Good, Some(10));
        assert!(matches!(d.convert(0, pid(), None, &first, now), Converted::Reading(_)));
        assert_eq!(d.convert(0, pid(), None, &first, now), Converted::Duplicate);
        let older = dv(Variant::Int32(6), StatusCode::Good, Some(9));
        assert_eq!(d.convert(0, pid(), None, &older, now), Converted::Duplicate);
        assert!(
            matches!(d.convert(1, pid(), None, &first, now), Converted::Reading(_)),
            "other item"
        );
        let newer = dv(Variant::Int32(8), StatusCode::Good, Some(11));
        assert!(matches!(d.convert(0, pid(), None, &newer, now), Converted::Reading(_)));
    }

    #[test]
    fn after_a_fault_the_unchanged_value_restores_the_point_once_with_its_own_time() {
        let mut d = Delivered::new(1);
        let v = dv(Variant::Int32(7), StatusCode::Good, Some(10));
        assert!(matches!(
            d.convert(0, pid(), None, &v, Timestamp::from_millis(0)),
            Converted::Reading(_)
        ));
        d.mark_faulted(0);
        let later = Timestamp::from_millis(99_000);
        let Converted::Reading(r) = d.convert(0, pid(), None, &v, later) else {
            panic!()
        };
        assert_eq!(
            (r.ts, r.value, r.quality),
            (Timestamp::from_millis(10_000), 7.0, Quality::Good)
        );
        assert_eq!(d.convert(0, pid(), None, &v, later), Converted::Duplicate, "only once");
    }

    #[test]
    fn bad_status_drops_the_value_and_strings_are_decode_errors() {
        let mut d = Delivered::new(3);
        let now = Timestamp::from_millis(0);
        let bad = dv(Variant::Double(3.0), StatusCode::from(0x8005_0000), Some(1));
        let Converted::Reading(r) = d.convert(0, pid(), None, &bad, now) else {
            panic!()
        };
        assert_eq!(r.quality, Quality::CommFault);
        assert!(r.value.is_nan());
        let text = dv(Variant::String("x".into()), StatusCode::Good, Some(1));
        let Converted::Reading(r) = d.convert(1, pid(), None, &text, now) else {
            panic!()
        };
        assert_eq!(r.quality, Quality::DecodeError);
        let high = dv(Variant::Double(120.0), StatusCode::Good, Some(1));
        let Converted::Reading(r) = d.convert(2, pid(), Some((0.0, 100.0)), &high, now) else {
            panic!()
        };
        assert_eq!((r.quality, r.value), (Quality::OutOfRange, 120.0));
    }
}
