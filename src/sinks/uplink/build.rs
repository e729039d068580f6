//! Building an uplink's stages from its config: one function per stage, each one `match`
//! over its config enum. A new format, cipher or transport adds a variant to the enum in
//! [`super::config`] and an arm here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::{CipherConfig, CodeTable, EncoderConfig, EnvelopeConfig, TransportConfig, UplinkSpec};
use super::transport::tcp::TcpFraming;
use super::{Encoder, Seal, Transport};
use crate::clock::SharedClock;
use crate::model::{PointId, PointTable};
use crate::sinks::history::HistoryReader;
use crate::telemetry::uplink::UplinkMetrics;

/// An interval the runner follows and a platform may change at run time (HJ 212 1062/1064).
#[derive(Debug, Clone)]
pub struct SharedInterval(Arc<watch::Sender<Duration>>);

impl SharedInterval {
    /// An interval starting at `d`.
    pub fn new(d: Duration) -> Self {
        Self(Arc::new(watch::Sender::new(d)))
    }

    /// The interval now.
    pub fn get(&self) -> Duration {
        *self.0.borrow()
    }

    /// Changes it; the runner applies it from its next tick.
    pub fn set(&self, d: Duration) {
        self.0.send_replace(d);
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Duration> {
        self.0.subscribe()
    }
}

/// What stage builders get: the uplink's identity, the gateway's points and history, and the
/// runner's shared settings.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Uplink name.
    pub uplink: String,
    /// The whole validated uplink, for a stage whose work depends on another's settings
    /// (a transport answering a platform's commands in the encoder's format).
    pub spec: Arc<UplinkSpec>,
    /// Gateway id.
    pub gateway: String,
    /// Zone times are rendered in.
    pub zone: TimeZone,
    /// Every point of the gateway.
    pub points: PointTable,
    /// The points this uplink sends, in point order.
    pub selected: Arc<[PointId]>,
    /// The regulator's codes.
    pub codes: Arc<CodeTable>,
    /// The embedded history, to answer a platform's history pull (`None` in `uplink preview`).
    pub history: Option<Arc<HistoryReader>>,
    /// The gateway's clock.
    pub clock: SharedClock,
    /// Uplink metrics (label values: the uplink name).
    pub metrics: UplinkMetrics,
    /// This uplink's own directory in the data dir (`<data_dir>/uplinks/<name>`).
    pub data_dir: PathBuf,
    /// Directory of the config file.
    pub config_dir: PathBuf,
    /// Real-time interval the runner follows.
    pub realtime_interval: SharedInterval,
    /// Length of the `minute` statistics interval the runner follows.
    pub minute_interval: SharedInterval,
    /// Fires when the uplink stops (shutdown or reload); tasks a builder spawns end on it.
    pub stop: CancellationToken,
}

impl BuildContext {
    /// A context for `spec` (used by the runner and `uplink preview`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: &UplinkSpec,
        gateway: &str,
        points: &PointTable,
        history: Option<Arc<HistoryReader>>,
        clock: SharedClock,
        metrics: UplinkMetrics,
        data_dir: PathBuf,
        stop: CancellationToken,
    ) -> Result<Self, BuildError> {
        let zone = super::time::zone(&spec.zone).map_err(|e| BuildError::new(&spec.name, "zone", e.to_string()))?;
        Ok(Self {
            uplink: spec.name.clone(),
            spec: Arc::new(spec.clone()),
            gateway: gateway.to_string(),
            zone,
            points: points.clone(),
            selected: spec.select.points.clone().into(),
            codes: Arc::new(spec.codes.clone()),
            history,
            clock,
            metrics,
            data_dir,
            config_dir: spec.config_dir.clone(),
            realtime_interval: SharedInterval::new(spec.realtime_interval),
            minute_interval: SharedInterval::new(spec.minute_interval),
            stop,
        })
    }
}

/// Why a stage could not be built (a secret missing, a TLS file gone since the check…).
#[derive(Debug, thiserror::Error)]
#[error("uplink `{uplink}`: {stage}: {reason}")]
pub struct BuildError {
    /// Uplink name.
    pub uplink: String,
    /// `encoder`, `cipher`, `envelope`, `transport`.
    pub stage: &'static str,
    /// Why.
    pub reason: String,
}

impl BuildError {
    /// An error of `stage` of `uplink`.
    pub fn new(uplink: &str, stage: &'static str, reason: impl Into<String>) -> Self {
        Self {
            uplink: uplink.to_string(),
            stage,
            reason: reason.into(),
        }
    }
}

/// The encoder for `cfg`.
pub fn build_encoder(cfg: &EncoderConfig, ctx: &BuildContext) -> Result<Box<dyn Encoder>, BuildError> {
    let err = |e: String| BuildError::new(&ctx.uplink, "encoder", e);
    Ok(match cfg {
        EncoderConfig::Json(c) => {
            Box::new(super::json::JsonEncoder::new(c, &ctx.uplink, &ctx.gateway, ctx.zone.clone()).map_err(err)?)
        }
        EncoderConfig::Coal(c) => Box::new(super::coal::CoalEncoder::new(
            &ctx.uplink,
            c.clone(),
            ctx.zone.clone(),
            ctx.minute_interval.get(),
        )),
        EncoderConfig::Hj212(c) => Box::new(c.build(ctx).map_err(err)?),
    })
}

/// The seal (cipher and envelope) stage, if the uplink has one.
pub fn build_seal(
    cipher: Option<&CipherConfig>,
    envelope: Option<&EnvelopeConfig>,
    ctx: &BuildContext,
) -> Result<Option<Box<dyn Seal>>, BuildError> {
    match super::seal::build(cipher, envelope, &ctx.uplink) {
        Ok(sealer) => Ok(sealer.map(|s| Box::new(s) as Box<dyn Seal>)),
        Err(e) => {
            let stage = e.stage();
            let field = e.field.strip_prefix(stage).unwrap_or(&e.field).trim_start_matches('.');
            Err(BuildError::new(&ctx.uplink, stage, format!("{field}: {}", e.reason)))
        }
    }
}

/// The transport for `cfg`.
pub fn build_transport(cfg: &TransportConfig, ctx: &BuildContext) -> Result<Box<dyn Transport>, BuildError> {
    let err = |e: String| BuildError::new(&ctx.uplink, "transport", e);
    Ok(match cfg {
        TransportConfig::Tcp(c) => match c.framing {
            TcpFraming::Delimiter => Box::new(super::transport::tcp::TcpTransport::new(c).map_err(err)?),
        },
        TransportConfig::Http(c) => {
            Box::new(super::transport::http::HttpTransport::new(c, &ctx.uplink, &ctx.gateway).map_err(err)?)
        }
        TransportConfig::Mqtt(c) => Box::new(
            super::transport::mqtt::MqttTransport::start(c, &ctx.uplink, &ctx.gateway, ctx.stop.clone())
                .map_err(err)?,
        ),
        TransportConfig::File(c) => {
            let password = super::file_drop::password(c).map_err(err)?;
            let spool = super::file_drop::FileDrop::open(&ctx.uplink, c, &ctx.data_dir.join("spool"), password)
                .map_err(|e| err(e.to_string()))?;
            Box::new(spool)
        }
        TransportConfig::Hj212(c) => Box::new(c.build(ctx).map_err(err)?),
    })
}
