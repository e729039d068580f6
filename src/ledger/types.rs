//! The ledger's answer: the JSON (and OpenAPI schema) of `GET /api/v1/completeness`.

use serde::Serialize;
use utoipa::ToSchema;

use super::Bucket;
use crate::model::Timestamp;

/// Why a point delivered no valid reading for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapCause {
    /// The device, DTU, broker or server did not answer, or nothing arrived in time.
    Communication,
    /// The instrument answered with something that is not a valid value (decode error, out
    /// of its measuring range: a broken sensor or loop).
    SensorFault,
    /// The gateway itself was not running (a restart, an upgrade, a crash).
    GatewayDown,
}

impl GapCause {
    /// The name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            GapCause::Communication => "communication",
            GapCause::SensorFault => "sensor_fault",
            GapCause::GatewayDown => "gateway_down",
        }
    }
}

/// One span of one point without valid data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First instant without data.
    pub start: Timestamp,
    /// First instant with data again (or the end of the period).
    pub end: Timestamp,
    /// Why.
    pub cause: GapCause,
}

/// A gap as listed in a row (cut to the row's bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GapRow {
    /// Point id.
    pub point: String,
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// End, ms since the epoch.
    pub end_ms: i64,
    /// Why.
    pub cause: GapCause,
}

/// Time without data by cause, in ms (summed over the row's points).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct GapTotals {
    /// No answer from the field.
    pub communication: u64,
    /// Invalid values from the instrument.
    pub sensor_fault: u64,
    /// The gateway was not running.
    pub gateway_down: u64,
}

/// One line of the ledger: a point, hazard source or the gateway over one day or shift.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Row {
    /// Point id, hazard source code or gateway id.
    pub key: String,
    /// `"2026-12-07"` (a day) or `"2026-12-07 08:00"` (a shift starting then), site-local.
    pub bucket: String,
    /// Start of the bucket (cut to the asked period), ms since the epoch.
    pub start_ms: i64,
    /// End of the bucket, ms since the epoch (exclusive).
    pub end_ms: i64,
    /// Points counted in the row.
    pub points: u64,
    /// Readings expected: the period over each point's interval, summed over the points.
    pub expected: u64,
    /// Good readings received (every reading, not only the ones raw history keeps).
    pub received_good: u64,
    /// Readings received that were not good.
    pub received_bad: u64,
    /// Point-time in the row, ms (the bucket's length times its points).
    pub period_ms: u64,
    /// Point-time online: `period_ms` less communication and gateway-down gaps.
    pub online_ms: u64,
    /// `online_ms / period_ms` (在线率), 0 to 1.
    pub online_rate: f64,
    /// `received_good / expected` (数据完整率), 0 to 1 (more readings than expected count
    /// as complete); 1 when nothing was expected.
    pub completeness: f64,
    /// Time without data by cause.
    pub gap_ms: GapTotals,
    /// Gaps in the row (all of them, also those past the listing cap).
    pub gap_count: u64,
    /// The gaps, oldest first per point.
    pub gaps: Vec<GapRow>,
}

impl Row {
    pub(super) fn new(key: &str, b: &Bucket) -> Self {
        Row {
            key: key.to_string(),
            bucket: b.label.clone(),
            start_ms: b.start.as_millis(),
            end_ms: b.end.as_millis(),
            points: 0,
            expected: 0,
            received_good: 0,
            received_bad: 0,
            period_ms: 0,
            online_ms: 0,
            online_rate: 1.0,
            completeness: 1.0,
            gap_ms: GapTotals::default(),
            gap_count: 0,
            gaps: Vec::new(),
        }
    }

    pub(super) fn finish(mut self) -> Self {
        let off = self.gap_ms.communication + self.gap_ms.gateway_down;
        self.online_ms = self.period_ms.saturating_sub(off);
        if self.period_ms > 0 {
            self.online_rate = self.online_ms as f64 / self.period_ms as f64;
        }
        if self.expected > 0 {
            self.completeness = (self.received_good as f64 / self.expected as f64).min(1.0);
        }
        self.gaps
            .sort_by(|a, b| (&a.point, a.start_ms).cmp(&(&b.point, b.start_ms)));
        self
    }
}

/// The whole answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Ledger {
    /// Period start, ms since the epoch.
    pub from_ms: i64,
    /// Period end, ms since the epoch.
    pub to_ms: i64,
    /// Rows, by bucket then key.
    pub rows: Vec<Row>,
    /// Whether some gaps were left out of the listings (they are still in the totals).
    pub gaps_truncated: bool,
    /// Points whose quality changes could not all be read within the request's budget: their
    /// gaps after the last change read are not known (ask for a shorter period).
    pub unread_points: Vec<String>,
    /// The gateway's spans of data its regulator uplinks did not deliver in real time,
    /// overlapping the period, and whether each was backfilled.
    pub regulator_spans: Vec<RegulatorSpan>,
}

/// A span of data a regulator uplink did not deliver in real time (its platform did not take
/// payloads), and when its backlog reached the platform (补传).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegulatorSpan {
    /// The uplink (`[[uplinks]] name`).
    pub uplink: String,
    /// First data not delivered live (when its payload was queued), ms since the epoch.
    pub start_ms: i64,
    /// When the platform took payloads again, ms since the epoch; `null` while it does not.
    pub end_ms: Option<i64>,
    /// Whether the span's backlog has all been delivered since.
    pub backfilled: bool,
    /// When it had, ms since the epoch.
    pub backfilled_at_ms: Option<i64>,
}
