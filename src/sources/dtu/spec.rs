//! What `[dtu]` says once validated: the ports DTUs dial in to, and how each station's
//! registration and heartbeat packets are recognised. The top-level config builds it; the DTU
//! listener runs from it.

use std::net::SocketAddr;
use std::time::Duration;

use regex::bytes::Regex;
use serde::Deserialize;

/// How Modbus frames travel on a DTU's connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtuFraming {
    /// RTU frames with CRC (a transparent DTU in front of an RS-485 bus): the usual case.
    #[default]
    Rtu,
    /// Modbus TCP frames (MBAP header).
    Tcp,
}

/// Bytes that identify a registration or a heartbeat.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// These exact bytes.
    Bytes(Vec<u8>),
    /// A pattern that must match at the first byte.
    Regex(Regex),
}

impl Matcher {
    /// Length of the match at the start of `buf`, if there is one.
    pub fn match_len(&self, buf: &[u8]) -> Option<usize> {
        match self {
            Matcher::Bytes(b) => buf.starts_with(b).then_some(b.len()),
            Matcher::Regex(r) => r.find(buf).filter(|m| m.start() == 0 && m.end() > 0).map(|m| m.end()),
        }
    }

    /// True if more bytes could still complete a match of `buf` (only exact bytes can tell).
    pub fn could_complete(&self, buf: &[u8]) -> bool {
        match self {
            Matcher::Bytes(b) => buf.len() < b.len() && b.starts_with(buf),
            Matcher::Regex(_) => false,
        }
    }
}

/// Two matchers are the same when they accept the same bytes by the same rule (a regex by its
/// source text), which is what a config reload needs to know.
impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Matcher::Bytes(a), Matcher::Bytes(b)) => a == b,
            (Matcher::Regex(a), Matcher::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if s.chars().all(|c| c.is_ascii_graphic()) => write!(f, "\"{s}\""),
                _ => write!(f, "hex {}", hex(b)),
            },
            Matcher::Regex(r) => write!(f, "regex {}", r.as_str()),
        }
    }
}

/// Lower-case hex of `bytes`, for logs and the API.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One listening port.
#[derive(Debug, Clone, PartialEq)]
pub struct DtuListenerSpec {
    /// Name (`dtu` when not given).
    pub name: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Framing of the Modbus frames on its connections.
    pub framing: DtuFraming,
    /// Heartbeat period the DTUs are set to.
    pub heartbeat_interval: Duration,
    /// Silence (no heartbeat, no answer) after which a station is lost and its socket closed.
    pub heartbeat_timeout: Duration,
    /// How long a new connection has to register.
    pub registration_timeout: Duration,
}

/// One DTU.
#[derive(Debug, Clone, PartialEq)]
pub struct StationSpec {
    /// Name devices refer to.
    pub name: String,
    /// Index of its listener.
    pub listener: usize,
    /// Recognises its registration packet.
    pub id: Matcher,
    /// Recognises its heartbeat packets, if it sends any.
    pub heartbeat: Option<Matcher>,
}

/// Validated `[dtu]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DtuSpec {
    /// Listening ports.
    pub listeners: Vec<DtuListenerSpec>,
    /// Stations.
    pub stations: Vec<StationSpec>,
}

impl DtuSpec {
    /// The station named `name`.
    pub fn station(&self, name: &str) -> Option<&StationSpec> {
        self.stations.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_match_at_the_start_only() {
        let b = Matcher::Bytes(b"HB".to_vec());
        assert_eq!(b.match_len(b"HB\x01\x03"), Some(2));
        assert_eq!(b.match_len(b"xHB"), None);
        assert!(b.could_complete(b"H"));
        let r = Matcher::Regex(Regex::new("^(?:\\$HB[0-9]*;)").unwrap());
        assert_eq!(r.match_len(b"$HB12;\x01"), Some(6));
        assert_eq!(r.match_len(b"\x01$HB12;"), None);
    }
}
