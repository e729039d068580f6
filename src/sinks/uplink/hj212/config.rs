//! `encoder = { type = "hj212", … }` and `transport = { type = "hj212", … }` as written, their
//! checks, and what they build.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::centre::{CentreServices, HistorySource, Intervals};
use super::encode::{Cou, Hj212Encoder, Hj212Settings};
use super::frame::MAX_SEGMENT;
use super::history::{HistoryPoint, StoreHistory};
use super::link::{self, Hj212Transport, LinkOptions};
use super::segment::Version;
use crate::sinks::uplink::config::BasicPolicy;
use crate::sinks::uplink::config::{Place, SecretRef};
use crate::sinks::uplink::{BuildContext, EncoderConfig, TransportConfig};
use crate::spec::error::ConfigError;
use crate::spec::units;

fn yes() -> bool {
    true
}

fn default_max_segment() -> usize {
    MAX_SEGMENT
}

/// `encoder = { type = "hj212", … }`: HJ 212 data messages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hj212Config {
    /// Edition, `2017` or `2025`: the `Flag` version bits. Platforms switched to 2025 on
    /// 2026-01-01; ask yours which it expects.
    pub version: Version,
    /// System code (`ST`) issued with the `MN` (e.g. `22` air, `32` surface water, `31`
    /// air emission source).
    pub st: String,
    /// Device unique identifier (`MN`) issued by the platform, up to 24 characters.
    pub mn: String,
    /// Access password (`PW`): `{ env = "VAR" }` or `{ file = "pw.txt" }`; never logged.
    pub pw: SecretRef,
    /// Ask for a 9014 acknowledgement of every data message (default true). Without it a
    /// message counts as delivered once written: an outage can lose what was in flight.
    #[serde(default = "yes")]
    pub ack: bool,
    /// Longest data segment (default and most 1024 bytes); longer messages are split into
    /// `PNUM`/`PNO` packets.
    #[serde(default = "default_max_segment")]
    pub max_segment: usize,
    /// What `-Cou` carries in statistics: `count` of good readings (default) or `omit` for
    /// centres that read it as an emission total.
    #[serde(default)]
    pub cou: Cou,
    /// Digits after the decimal point (default: the shortest exact form).
    #[serde(default)]
    pub decimals: Option<u8>,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_ack_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_retries() -> u32 {
    3
}

fn default_backoff_min() -> Duration {
    Duration::from_secs(1)
}

fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}

fn default_history_limit() -> usize {
    100_000
}

/// `transport = { type = "hj212", … }`: the field unit's TCP link to the centre.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hj212LinkConfig {
    /// The centre's `host:port`.
    pub address: String,
    /// Longest wait for the TCP connection (default 10s).
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "units::duration::deserialize"
    )]
    pub connect_timeout: Duration,
    /// How long a data message waits for its 9014 before it is sent again (default 10s;
    /// the standard's timeout).
    #[serde(default = "default_ack_timeout", deserialize_with = "units::duration::deserialize")]
    pub ack_timeout: Duration,
    /// How often an unacknowledged message is sent again before the attempt fails and the
    /// outbox retries it later (default 3; the standard's retry count).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First wait before reconnecting (default 1s); it doubles up to `backoff_max`.
    #[serde(default = "default_backoff_min", deserialize_with = "units::duration::deserialize")]
    pub backoff_min: Duration,
    /// Longest wait before reconnecting (default 60s).
    #[serde(default = "default_backoff_max", deserialize_with = "units::duration::deserialize")]
    pub backoff_max: Duration,
    /// Most stored rows read per point for one history pull (default 100000); a longer
    /// range is answered up to it and the cut is logged.
    #[serde(default = "default_history_limit")]
    pub history_limit: usize,
    /// The uplink's encoder settings, filled in by [`pair`] when the config is checked: the
    /// link answers the centre with the same `MN`, `PW` and edition.
    #[serde(skip)]
    pub encoder: Option<Hj212Config>,
}

/// Cross-checks an uplink's HJ 212 stages: the `hj212` transport needs the `hj212` encoder
/// (and gets its settings), and since HJ 212 carries neither basic data nor alarms an `hj212`
/// encoder needs `basic = "never"` and `select = { alarms = false }`.
pub fn pair(
    encoder: &EncoderConfig,
    transport: &mut TransportConfig,
    alarms: bool,
    basic: BasicPolicy,
    enc_at: &Place<'_>,
    tr_at: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) {
    let enc = match encoder {
        EncoderConfig::Hj212(c) => Some(c),
        _ => None,
    };
    if enc.is_some() {
        if basic != BasicPolicy::Never {
            errors.push(enc_at.error(
                "",
                "HJ 212 has no basic-data command: set `basic = \"never\"` on this uplink",
            ));
        }
        if alarms {
            errors.push(enc_at.error(
                "",
                "HJ 212 has no alarm command: set `select = { alarms = false }` on this uplink",
            ));
        }
    }
    if let TransportConfig::Hj212(link) = transport {
        match enc {
            Some(enc) => link.encoder = Some(enc.clone()),
            None => errors.push(tr_at.error("", "the hj212 transport needs `encoder = { type = \"hj212\", … }`")),
        }
    }
}

impl Hj212Config {
    /// Checks the settings.
    pub fn check(&mut self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        if self.st.is_empty() || self.st.len() > 5 || !self.st.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(at.error("st", format!("`{}` is not a system code of 1 to 5 digits", self.st)));
        }
        if self.mn.is_empty() || self.mn.len() > 24 || !self.mn.bytes().all(|b| b.is_ascii_alphanumeric()) {
            errors.push(at.error("mn", format!("`{}` is not 1 to 24 letters and digits", self.mn)));
        }
        if !(200..=MAX_SEGMENT).contains(&self.max_segment) {
            errors.push(at.error(
                "max_segment",
                format!("must be 200 to {MAX_SEGMENT} bytes, got {}", self.max_segment),
            ));
        }
        if self.decimals.is_some_and(|d| d > 9) {
            errors.push(at.error("decimals", "must be 0 to 9"));
        }
        self.pw.check(at, "pw", errors);
    }

    /// The settings frames are written with; reads the password.
    pub fn settings(&self, ctx: &BuildContext) -> Result<Hj212Settings, String> {
        let pw = self.pw.resolve().map_err(|e| format!("pw: {e}"))?.text();
        if pw.is_empty() || !pw.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b'&') {
            return Err("pw: the password must be printable ASCII without `;` or `&`".into());
        }
        Ok(Hj212Settings {
            version: self.version,
            st: self.st.clone(),
            mn: self.mn.clone(),
            pw,
            ack: self.ack,
            max_segment: self.max_segment,
            zone: ctx.zone.clone(),
            cou: self.cou,
            decimals: self.decimals,
        })
    }

    /// The encoder.
    pub fn build(&self, ctx: &BuildContext) -> Result<Hj212Encoder, String> {
        Ok(Hj212Encoder::new(
            &ctx.uplink,
            Arc::new(self.settings(ctx)?),
            ctx.clock.clone(),
        ))
    }
}

impl Hj212LinkConfig {
    /// Checks the settings.
    pub fn check(&mut self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => errors.push(at.error("address", format!("`{}` is not host:port", self.address))),
        }
        for (field, d) in [
            ("connect_timeout", self.connect_timeout),
            ("ack_timeout", self.ack_timeout),
            ("backoff_min", self.backoff_min),
        ] {
            if d.is_zero() {
                errors.push(at.error(field, "must be longer than zero"));
            }
        }
        if self.backoff_max < self.backoff_min {
            errors.push(at.error("backoff_max", "must not be shorter than backoff_min"));
        }
        if self.history_limit == 0 {
            errors.push(at.error("history_limit", "must be at least 1"));
        }
    }

    /// Starts the link (it runs until the uplink stops) and returns its transport. The
    /// uplink's encoder must be `hj212` (the config check makes sure).
    pub fn build(&self, ctx: &BuildContext) -> Result<Hj212Transport, String> {
        let Some(enc) = &self.encoder else {
            return Err("the hj212 transport needs the hj212 encoder".into());
        };
        let encoder = Arc::new(enc.build(ctx)?);
        let history = ctx.history.clone().map(|reader| {
            let points = ctx
                .selected
                .iter()
                .map(|id| {
                    let meta = ctx.points.meta(*id);
                    HistoryPoint {
                        name: meta.name().clone(),
                        codes: ctx.codes.codes(meta.name(), meta.hazard_source().map(|t| &**t)),
                        unit: meta.unit().clone(),
                    }
                })
                .collect();
            Arc::new(StoreHistory::new(reader, points, ctx.zone.clone(), self.history_limit)) as Arc<dyn HistorySource>
        });
        let services = CentreServices {
            uplink: ctx.uplink.clone(),
            encoder,
            clock: ctx.clock.clone(),
            intervals: Intervals::new(ctx.realtime_interval.clone(), ctx.minute_interval.clone()),
            history,
            metrics: ctx.metrics.hj212.clone(),
        };
        let opts = LinkOptions {
            addr: self.address.clone(),
            connect_timeout: self.connect_timeout,
            ack_timeout: self.ack_timeout,
            retries: self.retries,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
        };
        Ok(link::spawn(opts, services, ctx.stop.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::GatewayConfig;

    fn config(uplink: &str) -> String {
        format!(
            r#"
[gateway]
id = "gw"

[[devices]]
name = "tank-T101"
profile = "tank-ltp"
transport = {{ tcp = "127.0.0.1:503" }}

[[uplinks]]
name = "env"
realtime_interval = "30s"
codes = {{ enterprise = "E1" }}
{uplink}
"#
        )
    }

    const GOOD: &str = r#"basic = "never"
select = { alarms = false }
encoder = { type = "hj212", version = 2017, st = "22", mn = "MN01", pw = { env = "HJ212_PW" } }
transport = { type = "hj212", address = "127.0.0.1:8801" }"#;

    fn errors(uplink: &str) -> String {
        match GatewayConfig::parse(Path::new("/etc/hazard-gateway/site.toml"), &config(uplink)) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_complete_hj212_uplink_is_accepted_and_the_link_gets_the_encoder_settings() {
        let cfg = GatewayConfig::parse(Path::new("/etc/hazard-gateway/site.toml"), &config(GOOD)).unwrap();
        let crate::sinks::uplink::TransportConfig::Hj212(link) = &cfg.uplinks[0].transport else {
            panic!("hj212 transport");
        };
        let enc = link.encoder.as_ref().expect("paired");
        assert_eq!((enc.mn.as_str(), enc.version), ("MN01", super::Version::V2017));
        assert_eq!(link.ack_timeout, std::time::Duration::from_secs(10));
        assert_eq!(link.retries, 3);
    }

    #[test]
    fn hj212_needs_basic_data_and_alarms_off() {
        let text = errors(&GOOD.replace("basic = \"never\"\nselect = { alarms = false }\n", ""));
        assert!(
            text.contains("uplinks[0].encoder") && text.contains("basic = \"never\""),
            "{text}"
        );
        assert!(text.contains("alarms = false"), "{text}");
    }

    #[test]
    fn the_hj212_transport_needs_the_hj212_encoder() {
        let text = errors(&GOOD.replace(
            r#"encoder = { type = "hj212", version = 2017, st = "22", mn = "MN01", pw = { env = "HJ212_PW" } }"#,
            r#"encoder = { type = "json", record = { v = "{value}" } }"#,
        ));
        assert!(
            text.contains("uplinks[0].transport") && text.contains("needs"),
            "{text}"
        );
    }

    #[test]
    fn bad_hj212_settings_are_named() {
        let text = errors(&GOOD.replace("version = 2017", "version = 2019").replace(
            "address = \"127.0.0.1:8801\"",
            "address = \"centre\", ack_timeout = \"0s\"",
        ));
        assert!(text.contains("2019"), "{text}");
        let text = errors(
            &GOOD
                .replace("mn = \"MN01\"", "mn = \"MN-01;\"")
                .replace("st = \"22\"", "st = \"x\""),
        );
        assert!(
            text.contains("uplinks[0].encoder.mn") && text.contains("uplinks[0].encoder.st"),
            "{text}"
        );
        let text = errors(&GOOD.replace(
            "address = \"127.0.0.1:8801\"",
            "address = \"centre\", ack_timeout = \"0s\"",
        ));
        assert!(
            text.contains("uplinks[0].transport.address") && text.contains("uplinks[0].transport.ack_timeout"),
            "{text}"
        );
    }
}
