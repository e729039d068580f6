//! `[dtu]`: the gateway as a server that 4G DTUs dial in to. A listener is a TCP port with its
//! framing and heartbeat timing; a station is one DTU, recognised by its registration packet,
//! with the devices behind it (`transport = { dtu = "<station>" }`).
//!
//! ```toml
//! [[dtu.listeners]]
//! listen = "0.0.0.0:9000"
//! framing = "rtu"              # or "tcp" (MBAP)
//! heartbeat_interval = "30s"   # what the DTUs are set to send
//! heartbeat_timeout = "90s"    # silence after which the station is lost (default 3 intervals)
//!
//! [[dtu.stations]]
//! name = "dam-north"
//! imei = "866123456789012"     # or id = "DTU-0001", id_hex = "fe01a2", id_regex = "^RTU[0-9]{4}"
//! heartbeat = "HB"             # or heartbeat_hex = "fe", heartbeat_regex = "^\\$HB[0-9]*;"
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use regex::bytes::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::raw::RawConfig;
use super::{DeviceSpec, TransportSpec};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::units::DurationText;

/// `[dtu]` as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDtu {
    #[serde(default)]
    listeners: Vec<Spanned<RawListener>>,
    #[serde(default)]
    stations: Vec<Spanned<RawStation>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    /// Name stations refer to; needed only with several listeners.
    #[serde(default)]
    name: Option<Spanned<String>>,
    listen: Spanned<String>,
    #[serde(default)]
    framing: DtuFraming,
    #[serde(default)]
    heartbeat_interval: Option<Spanned<DurationText>>,
    #[serde(default)]
    heartbeat_timeout: Option<Spanned<DurationText>>,
    /// How long a new connection has to send its registration packet.
    #[serde(default)]
    registration_timeout: Option<Spanned<DurationText>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    name: Spanned<String>,
    #[serde(default)]
    listener: Option<Spanned<String>>,
    #[serde(default)]
    id: Option<Spanned<String>>,
    #[serde(default)]
    imei: Option<Spanned<String>>,
    #[serde(default)]
    id_hex: Option<Spanned<String>>,
    #[serde(default)]
    id_regex: Option<Spanned<String>>,
    #[serde(default)]
    heartbeat: Option<Spanned<String>>,
    #[serde(default)]
    heartbeat_hex: Option<Spanned<String>>,
    #[serde(default)]
    heartbeat_regex: Option<Spanned<String>>,
}

pub use crate::sources::dtu::spec::{DtuFraming, DtuListenerSpec, DtuSpec, Matcher, StationSpec, hex};

/// Every station with the devices behind it, for the communication alarms.
pub(super) fn station_groups(dtu: &DtuSpec, devices: &[DeviceSpec]) -> Vec<crate::rules::StationGroup> {
    dtu.stations
        .iter()
        .map(|st| {
            let members: Vec<&DeviceSpec> = devices
                .iter()
                .filter(|d| matches!(&d.transport, TransportSpec::Dtu(s) if *s == st.name))
                .collect();
            // The members share one link and are polled one after another, so after the link
            // went every member has failed once within the longest interval plus every
            // member's timeouts (with retries); twice that is the grace.
            let interval = members.iter().map(|d| d.interval).max().unwrap_or_default();
            let timeouts: Duration = members.iter().map(|d| d.timeout * (1 + u32::from(d.retries))).sum();
            let grace = (interval + timeouts) * 2;
            crate::rules::StationGroup {
                station: st.name.clone(),
                devices: members.iter().map(|d| d.name.clone()).collect(),
                grace,
            }
        })
        .filter(|g| !g.devices.is_empty())
        .collect()
}

const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
const DEFAULT_REGISTRATION: Duration = Duration::from_secs(10);

pub(super) fn validate(
    src: &SourceText<'_>,
    raw: &RawConfig,
    devices: &[DeviceSpec],
    errors: &mut Vec<ConfigError>,
) -> DtuSpec {
    let mut spec = DtuSpec::default();
    let mut listener_names: HashMap<String, usize> = HashMap::new();
    for (i, l) in raw.dtu.listeners.iter().enumerate() {
        let l = l.get_ref();
        let key = |k: &str| format!("dtu.listeners[{i}].{k}");
        let name = l
            .name
            .as_ref()
            .map_or_else(|| "dtu".to_string(), |n| n.get_ref().clone());
        if let Some(first) = listener_names.insert(name.clone(), i) {
            let span = l.name.as_ref().map_or(l.listen.span(), |n| n.span());
            errors.push(src.error(
                span,
                key("name"),
                format!("listener name `{name}` is already used by dtu.listeners[{first}]; name each listener"),
            ));
        }
        let listen = match l.listen.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                errors.push(src.error(
                    l.listen.span(),
                    key("listen"),
                    format!("`{}` is not ip:port (e.g. \"0.0.0.0:9000\")", l.listen.get_ref()),
                ));
                SocketAddr::from(([0, 0, 0, 0], 0))
            }
        };
        let interval = l
            .heartbeat_interval
            .as_ref()
            .map_or(DEFAULT_HEARTBEAT, |d| d.get_ref().0);
        let timeout = l.heartbeat_timeout.as_ref().map_or(interval * 3, |d| d.get_ref().0);
        if interval < Duration::from_secs(1) {
            let span = l.heartbeat_interval.as_ref().map_or(0..0, |d| d.span());
            errors.push(src.error(
                span,
                key("heartbeat_interval"),
                "heartbeat_interval must be at least 1s",
            ));
        }
        if timeout <= interval {
            let span = l.heartbeat_timeout.as_ref().map_or(l.listen.span(), |d| d.span());
            errors.push(src.error(
                span,
                key("heartbeat_timeout"),
                format!(
                    "heartbeat_timeout ({timeout:?}) must be longer than heartbeat_interval ({interval:?}), or one late heartbeat drops the station"
                ),
            ));
        }
        spec.listeners.push(DtuListenerSpec {
            name,
            listen,
            framing: l.framing,
            heartbeat_interval: interval,
            heartbeat_timeout: timeout,
            registration_timeout: l
                .registration_timeout
                .as_ref()
                .map_or(DEFAULT_REGISTRATION, |d| d.get_ref().0),
        });
    }

    let device_names: HashSet<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    let mut station_names: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<(usize, Vec<u8>), usize> = HashMap::new();
    for (i, st) in raw.dtu.stations.iter().enumerate() {
        let s = st.get_ref();
        let key = |k: &str| format!("dtu.stations[{i}].{k}");
        let name = s.name.get_ref().clone();
        if name.trim().is_empty() || name.contains(':') {
            errors.push(src.error(
                s.name.span(),
                key("name"),
                "a station name must be non-empty and without `:` (it names the station's alarm)",
            ));
        }
        if let Some(first) = station_names.insert(name.clone(), i) {
            errors.push(src.error(
                s.name.span(),
                key("name"),
                format!("station name `{name}` is already used by dtu.stations[{first}]"),
            ));
        }
        if device_names.contains(name.as_str()) {
            errors.push(src.error(
                s.name.span(),
                key("name"),
                format!(
                    "station name `{name}` is also a device name; the station's communication alarm would be ambiguous"
                ),
            ));
        }
        let listener = match (&s.listener, spec.listeners.len()) {
            (None, 1) => Some(0),
            (None, 0) => {
                errors.push(src.error(
                    s.name.span(),
                    key("listener"),
                    "no [[dtu.listeners]] is defined for this station to dial in to",
                ));
                None
            }
            (None, _) => {
                errors.push(src.error(
                    s.name.span(),
                    key("listener"),
                    "several listeners are defined: say which one this station dials in to (`listener = \"...\"`)",
                ));
                None
            }
            (Some(l), _) => {
                let found = listener_names.get(l.get_ref().as_str()).copied();
                if found.is_none() {
                    errors.push(src.error(
                        l.span(),
                        key("listener"),
                        format!("no listener `{}` under [[dtu.listeners]]", l.get_ref()),
                    ));
                }
                found
            }
        };
        let id = one_matcher(
            src,
            i,
            st.span(),
            &[
                ("id", &s.id),
                ("imei", &s.imei),
                ("id_hex", &s.id_hex),
                ("id_regex", &s.id_regex),
            ],
            true,
            errors,
        );
        let heartbeat = one_matcher(
            src,
            i,
            st.span(),
            &[
                ("heartbeat", &s.heartbeat),
                ("heartbeat_hex", &s.heartbeat_hex),
                ("heartbeat_regex", &s.heartbeat_regex),
            ],
            false,
            errors,
        );
        if let (Some(l), Some((Matcher::Bytes(b), span, kind))) = (listener, &id)
            && let Some(first) = ids.insert((l, b.clone()), i)
        {
            errors.push(src.error(
                span.clone(),
                key(kind),
                format!(
                    "station id {} is already used by dtu.stations[{first}] on the same listener",
                    Matcher::Bytes(b.clone())
                ),
            ));
        }
        if let (Some(listener), Some((id, _, _))) = (listener, id) {
            spec.stations.push(StationSpec {
                name,
                listener,
                id,
                heartbeat: heartbeat.map(|h| h.0),
            });
        }
    }

    for (i, dev) in raw.devices.iter().enumerate() {
        let d = dev.get_ref();
        if let super::raw::RawTransport::Dtu(station) = d.transport.get_ref()
            && !station_names.contains_key(station)
        {
            let known: Vec<&str> = raw
                .dtu
                .stations
                .iter()
                .map(|s| s.get_ref().name.get_ref().as_str())
                .collect();
            errors.push(src.error(
                d.transport.span(),
                format!("devices[{i}].transport.dtu"),
                format!(
                    "no station `{station}` under [[dtu.stations]]; known stations: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
    spec
}

/// The one matcher among `options` (at most one may be given; `required`: exactly one), with
/// the place and key it was given at.
fn one_matcher<'k>(
    src: &SourceText<'_>,
    i: usize,
    station_span: Range<usize>,
    options: &[(&'k str, &Option<Spanned<String>>)],
    required: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<(Matcher, Range<usize>, &'k str)> {
    let given: Vec<(&str, &Spanned<String>)> = options
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
        .collect();
    let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
    let Some(&(kind, value)) = given.first() else {
        if required {
            errors.push(src.error(
                station_span,
                format!("dtu.stations[{i}].id"),
                format!("a station needs exactly one of {}", names.join(", ")),
            ));
        }
        return None;
    };
    if let Some(&(extra, extra_value)) = given.get(1) {
        errors.push(src.error(
            extra_value.span(),
            format!("dtu.stations[{i}].{extra}"),
            format!(
                "give only one of {}",
                given.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        ));
        return None;
    }
    let text = value.get_ref();
    let err = |msg: String| src.error(value.span(), format!("dtu.stations[{i}].{kind}"), msg);
    let matcher = if kind.ends_with("_regex") {
        let anchored = if text.starts_with('^') {
            text.clone()
        } else {
            format!("^(?:{text})")
        };
        match Regex::new(&anchored) {
            Ok(r) if r.is_match(b"") => {
                errors.push(err(format!(
                    "pattern `{text}` matches nothing at all; it would accept any bytes"
                )));
                return None;
            }
            Ok(r) => Matcher::Regex(r),
            Err(e) => {
                errors.push(err(format!("bad regular expression `{text}`: {e}")));
                return None;
            }
        }
    } else if kind.ends_with("_hex") {
        match parse_hex(text) {
            Ok(b) => Matcher::Bytes(b),
            Err(msg) => {
                errors.push(err(msg));
                return None;
            }
        }
    } else if kind == "imei" {
        if text.len() != 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(err(format!("an IMEI is 15 digits, got `{text}`")));
            return None;
        }
        Matcher::Bytes(text.as_bytes().to_vec())
    } else {
        if text.is_empty() {
            errors.push(err("must not be empty".into()));
            return None;
        }
        Matcher::Bytes(text.as_bytes().to_vec())
    };
    Some((matcher, value.span(), kind))
}

/// Hex bytes, with optional spaces, `:` or `0x` prefixes: `"FE 01 a2"`, `"0xfe01a2"`.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    let digits: String = t.chars().filter(|c| !matches!(c, ' ' | ':' | '-')).collect();
    if digits.is_empty() {
        return Err("hex bytes must not be empty".into());
    }
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("`{text}` is not hex bytes: `{c}` is not a hex digit"));
    }
    if digits.len() % 2 != 0 {
        return Err(format!("`{text}` has an odd number of hex digits"));
    }
    Ok((0..digits.len())
        .step_by(2)
        .filter_map(|k| u8::from_str_radix(&digits[k..k + 2], 16).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_accepts_common_spellings_and_names_the_bad_digit() {
        assert_eq!(parse_hex("FE 01 a2").unwrap(), vec![0xfe, 0x01, 0xa2]);
        assert_eq!(parse_hex("0xfe01").unwrap(), vec![0xfe, 0x01]);
        assert!(parse_hex("fe0").unwrap_err().contains("odd"));
        assert!(parse_hex("fg").unwrap_err().contains("`g`"));
    }
}
