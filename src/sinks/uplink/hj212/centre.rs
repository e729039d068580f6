//! What a field unit does for its centre: report and set its time and intervals, and resend
//! stored records for a time range (the standard's way to recover data missed in an outage).
//!
//! Design: set-time is answered and recorded (log line and the offset gauge) but the host
//! clock is left alone: the gateway's clock belongs to the operating system's time service,
//! and one platform must not move the timestamps every other sink sees. Interval changes
//! go into [`Intervals`], which the uplink's scheduler watches.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::command::{self, ExeRtn, QnRtn, Request};
use super::encode::{Hj212Encoder, Hj212Settings};
use super::segment::Segment;
use crate::clock::SharedClock;
use crate::model::Timestamp;
use crate::sinks::uplink::SharedInterval;
use crate::sinks::uplink::{RecordKind, UplinkRecord};
use crate::telemetry::uplink::hj212::{Hj212Metrics, UplinkLabel};

/// The real-time and minute-data intervals, shared between the centre's requests and the
/// uplink's runner (which applies a change from its next tick).
#[derive(Debug, Clone)]
pub struct Intervals {
    rtd: SharedInterval,
    minute: SharedInterval,
}

impl Intervals {
    /// The runner's real-time and minute-statistics intervals.
    pub fn new(rtd: SharedInterval, minute: SharedInterval) -> Self {
        Self { rtd, minute }
    }

    /// The real-time interval.
    pub fn rtd(&self) -> Duration {
        self.rtd.get()
    }

    /// Follows changes of the real-time interval.
    pub fn watch_rtd(&self) -> watch::Receiver<Duration> {
        self.rtd.subscribe()
    }

    /// The minute-data interval, in whole minutes (at least 1).
    pub fn minutes(&self) -> u32 {
        u32::try_from(self.minute.get().as_secs() / 60)
            .unwrap_or(u32::MAX)
            .max(1)
    }

    fn set_rtd(&self, d: Duration) {
        self.rtd.set(d);
    }

    fn set_minutes(&self, m: u32) {
        self.minute.set(Duration::from_secs(u64::from(m.max(1)) * 60));
    }
}

/// Where history pulls are answered from.
pub trait HistorySource: Send + Sync + fmt::Debug {
    /// Every stored record of `kind` whose collection time (interval start) lies in
    /// `[begin, end]`, oldest first; minute data over `minutes`-minute intervals. Blocking.
    fn records(
        &self,
        kind: RecordKind,
        begin: Timestamp,
        end: Timestamp,
        minutes: u32,
    ) -> Result<Vec<UplinkRecord>, String>;
}

/// One unit to write: the bytes of whole frames.
pub type Frames = Vec<u8>;

/// Everything a centre request may need.
#[derive(Debug, Clone)]
pub struct CentreServices {
    /// Uplink name, for logs and metrics.
    pub uplink: String,
    /// Writes our data messages (history answers carry the pull's `QN`).
    pub encoder: Arc<Hj212Encoder>,
    /// Stamps the answer to a get-time request.
    pub clock: SharedClock,
    /// The intervals the centre may read and set.
    pub intervals: Intervals,
    /// The stored records history pulls are answered from; `None` answers `ExeRtn=100`.
    pub history: Option<Arc<dyn HistorySource>>,
    /// Metric handles.
    pub metrics: Hj212Metrics,
}

fn frames(seg: &Segment) -> Frames {
    // Our answers are short, fixed-shape ASCII; build cannot refuse them.
    super::frame::build(&seg.render()).unwrap_or_default()
}

impl CentreServices {
    fn settings(&self) -> &Hj212Settings {
        self.encoder.settings()
    }

    fn label(&self) -> UplinkLabel {
        UplinkLabel {
            uplink: self.uplink.clone(),
        }
    }

    /// The 9011 refusal of a request.
    pub fn refusal(&self, qn: &str, code: QnRtn) -> Frames {
        frames(&command::qn_rtn(self.settings(), qn, code))
    }

    /// Carries out `request` and returns every frame of the exchange in order: 9011, the
    /// data, 9012.
    pub async fn serve(&self, qn: &str, request: Request) -> Vec<Frames> {
        let s = self.settings();
        let mut out = vec![frames(&command::qn_rtn(s, qn, QnRtn::Ready))];
        let mut done = ExeRtn::Done;
        match request {
            Request::GetTime => out.push(frames(&command::time_answer(s, qn, self.clock.now()))),
            Request::SetTime(centre) => {
                let ours = self.clock.now();
                // HJ 212 times have whole seconds: round the offset to the nearest second.
                let offset = ((centre.as_nanos() - ours.as_nanos()) as f64 / 1e9).round() as i64;
                self.metrics
                    .centre_clock_offset
                    .get_or_create(&self.label())
                    .set(offset);
                info!(
                    uplink = %self.uplink,
                    centre_time = %s.time_text(centre),
                    offset_s = offset,
                    "Centre set the time; recorded, host clock left to the time service"
                );
            }
            Request::GetRtdInterval => {
                let secs = u32::try_from(self.intervals.rtd().as_secs()).unwrap_or(u32::MAX);
                out.push(frames(&command::rtd_interval_answer(s, qn, secs)));
            }
            Request::SetRtdInterval(secs) => {
                info!(uplink = %self.uplink, seconds = secs, "Centre set the real-time interval");
                self.intervals.set_rtd(Duration::from_secs(u64::from(secs)));
            }
            Request::GetMinInterval => {
                out.push(frames(&command::min_interval_answer(s, qn, self.intervals.minutes())));
            }
            Request::SetMinInterval(minutes) => {
                info!(uplink = %self.uplink, minutes, "Centre set the minute-data interval");
                self.intervals.set_minutes(minutes);
            }
            Request::History { kind, begin, end } => match self.history(qn, kind, begin, end).await {
                Ok(data) if data.is_empty() => done = ExeRtn::NoData,
                Ok(data) => out.extend(data),
                Err(e) => {
                    warn!(uplink = %self.uplink, error = %e, "History pull failed");
                    done = ExeRtn::Failed;
                }
            },
        }
        out.push(frames(&command::exe_rtn(s, qn, done)));
        out
    }

    async fn history(
        &self,
        qn: &str,
        kind: RecordKind,
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Frames>, String> {
        let Some(source) = self.history.clone() else {
            return Ok(Vec::new());
        };
        let minutes = self.intervals.minutes();
        let records = tokio::task::spawn_blocking(move || source.records(kind, begin, end, minutes))
            .await
            .map_err(|e| e.to_string())??;
        let payloads = self.encoder.encode_as(&records, qn, false).map_err(|e| e.to_string())?;
        self.metrics
            .history_records
            .get_or_create(&self.label())
            .inc_by(records.len() as u64);
        info!(
            uplink = %self.uplink,
            records = records.len(),
            messages = payloads.len(),
            from = %self.settings().time_text(begin),
            to = %self.settings().time_text(end),
            "Answering the centre's history pull"
        );
        Ok(payloads.into_iter().map(|p| p.body).collect())
    }
}
