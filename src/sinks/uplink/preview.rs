//! `hazard-gateway uplink preview NAME`: the next payloads an uplink would send, plain and
//! sealed, built from the config with the same stages the gateway runs, without sending and
//! without touching the uplink's outbox or data directory.
//!
//! Values come from the device profiles' built-in simulator signals (what
//! `hazard-gateway simulate` serves), so the shape and codes can be compared with a
//! platform's sample before going live. A point without a simulator signal (an MQTT point)
//! is shown the way a point without data is sent: no value, quality `stale`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::build::{BuildContext, build_encoder, build_seal};
use super::select::Selector;
use super::{Payload, RecordKind};
use crate::clock::SharedClock;
use crate::model::{PointId, PointTable, Reading, Timestamp};
use crate::rules::RuleSpec;
use crate::telemetry::uplink::UplinkMetrics;

/// One previewed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewItem {
    /// What its records are.
    pub kind: RecordKind,
    /// As the encoder made it.
    pub plain: Payload,
    /// After cipher and envelope, when the uplink has them.
    pub sealed: Option<Payload>,
    /// The sealed form as shown: secrets masked, envelope headers, round trip checked.
    pub seal_view: Option<super::seal::Preview>,
}

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// No uplink of that name.
    #[error("no uplink `{name}` in the config; it has: {known}")]
    Unknown {
        /// Name asked for.
        name: String,
        /// Names in the config.
        known: String,
    },
    /// A stage failed.
    #[error("{0}")]
    Stage(String),
}

/// What a preview needs of the configured plant. The top-level config fills it in, so this
/// sink never reads the whole config.
pub struct PreviewPlant<'a> {
    /// Gateway id, carried on every record.
    pub gateway_id: &'a str,
    /// Every point.
    pub points: &'a PointTable,
    /// Every rule binding (alarm records name them).
    pub rules: &'a [RuleSpec],
    /// The configured uplinks.
    pub uplinks: &'a [super::UplinkSpec],
    /// Each point's simulated reading at an elapsed time since the simulators started.
    pub simulated: &'a dyn Fn(Duration, Timestamp) -> Vec<(PointId, Option<Reading>)>,
}

impl std::fmt::Debug for PreviewPlant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewPlant")
            .field("gateway_id", &self.gateway_id)
            .field("points", &self.points.len())
            .field("uplinks", &self.uplinks.len())
            .finish_non_exhaustive()
    }
}

/// The first `count` payloads uplink `name` would send from `now`: basic data (as on a first
/// start), then real-time rounds on its interval.
pub fn preview(
    config: &PreviewPlant<'_>,
    name: &str,
    count: usize,
    clock: SharedClock,
) -> Result<Vec<PreviewItem>, PreviewError> {
    let Some(spec) = config.uplinks.iter().find(|u| u.name == name) else {
        return Err(PreviewError::Unknown {
            name: name.to_string(),
            known: config
                .uplinks
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let stage = |e: super::build::BuildError| PreviewError::Stage(e.to_string());
    let ctx = BuildContext::new(
        spec,
        config.gateway_id,
        config.points,
        None,
        clock.clone(),
        UplinkMetrics::default(),
        std::env::temp_dir(),
        CancellationToken::new(),
    )
    .map_err(stage)?;
    let mut encoder = build_encoder(&spec.encoder, &ctx).map_err(stage)?;
    let seal = build_seal(spec.cipher.as_ref(), spec.envelope.as_ref(), &ctx).map_err(stage)?;
    let sealer = super::seal::build(spec.cipher.as_ref(), spec.envelope.as_ref(), &spec.name)
        .map_err(|e| PreviewError::Stage(e.to_string()))?;
    let selector = Selector::new(&ctx, config.rules);
    let now = clock.now();
    let mut out = Vec::new();
    let mut batches = Vec::new();
    if spec.basic != super::config::BasicPolicy::Never {
        batches.push(selector.basic(now));
    }
    let mut round = 0u32;
    while out.len() < count {
        let records = match batches.pop() {
            Some(b) => b,
            None if spec.select.realtime && !spec.select.points.is_empty() && round < 1000 => {
                round += 1;
                let elapsed = spec.realtime_interval * round;
                let ts = now.plus(elapsed);
                selector.realtime(&(config.simulated)(elapsed, ts), ts)
            }
            None => break,
        };
        let Some(kind) = records.first().map(|r| r.kind) else {
            continue;
        };
        for plain in encoder
            .encode(&records)
            .map_err(|e| PreviewError::Stage(e.to_string()))?
        {
            let sealed = match &seal {
                Some(s) => {
                    let mut p = plain.clone();
                    s.seal(&mut p).map_err(|e| PreviewError::Stage(e.to_string()))?;
                    Some(p)
                }
                None => None,
            };
            let seal_view = match &sealer {
                Some(s) => Some(s.preview(&plain).map_err(|e| PreviewError::Stage(e.to_string()))?),
                None => None,
            };
            out.push(PreviewItem {
                kind,
                plain,
                sealed,
                seal_view,
            });
            if out.len() >= count {
                break;
            }
        }
    }
    Ok(out)
}

/// A payload body for a terminal: the text when it is UTF-8, else hex.
pub fn printable(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(s) => s.to_string(),
        Err(_) => body.iter().map(|b| format!("{b:02X}")).collect(),
    }
}

/// The preview as text, one block per payload.
pub fn render(items: &[PreviewItem]) -> String {
    let mut s = String::new();
    for (i, item) in items.iter().enumerate() {
        let hints: Vec<String> = item.plain.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(
            "# payload {} ({}, {} record(s); {})\n",
            i + 1,
            item.kind.as_str(),
            item.plain.items,
            hints.join(" ")
        ));
        s.push_str(&format!("plain:  {}\n", printable(&item.plain.body)));
        if item.plain.attr("charset") == Some("gbk") {
            // Coal-mine files in GBK: the text too, to compare with the platform's sample.
            let (text, _, _) = encoding_rs::GBK.decode(&item.plain.body);
            s.push_str(&format!("text:   {text}\n"));
        }
        match (&item.seal_view, &item.sealed) {
            (Some(v), _) => {
                s.push_str(&format!("sealed: {}\n", v.sealed));
                for (name, value) in &v.headers {
                    s.push_str(&format!("header: {name}: {value}\n"));
                }
                if !v.opens {
                    s.push_str("warning: the sealed body does not open to the plain payload again\n");
                }
            }
            (None, Some(p)) => s.push_str(&format!("sealed: {}\n", printable(&p.body))),
            (None, None) => s.push_str("sealed: (no cipher or envelope: sent as plain)\n"),
        }
    }
    s
}
