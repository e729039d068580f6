//! Units in config values: durations such as `"500ms"`, `"2s"`, `"5m"` and sizes such as `"64MiB"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// Parses a human duration (`"500ms"`, `"2s"`, `"1h 30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !is_duration_text(t) {
        return Err(format!(
            "invalid duration `{text}`: write up to 4 whole numbers of up to 9 digits, each with a unit (ns, us, ms, s, m, h, d), no spaces, e.g. \"500ms\", \"2s\", \"1h30m\""
        ));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration `{text}`: {e} (examples: \"500ms\", \"2s\", \"5m\")"))
}

/// The one duration grammar of the config files and the API (the OpenAPI document states it
/// as a pattern): one or more whole numbers each followed by a unit, e.g. `500ms`, `1h30m`.
/// At most 9 digits and 4 parts, so every duration it admits is representable.
pub const DURATION_PATTERN: &str = "^([0-9]{1,9}(ns|us|ms|s|m|h|d)){1,4}$";

/// Whether `t` matches [`DURATION_PATTERN`].
fn is_duration_text(t: &str) -> bool {
    let mut rest = t;
    if rest.is_empty() {
        return false;
    }
    let mut parts = 0;
    while !rest.is_empty() {
        parts += 1;
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 || digits > 9 || parts > 4 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ns", "us", "ms", "s", "m", "h", "d"]
            .into_iter()
            .find(|u| rest.starts_with(u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

/// Parses a size with a unit (`"64MiB"`, `"1GiB"`, `"500kB"`) into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|s| s.as_u64())
        .map_err(|e| format!("invalid size `{text}`: {e} (examples: \"64MiB\", \"1GiB\")"))
}

/// `#[serde(with = "units::duration")]` for a `Duration` written as text.
pub mod duration {
    use super::*;

    /// Deserializes a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(D::Error::custom)
    }
}

/// A duration written as text, for fields that keep their place in the file (`Spanned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration::deserialize(d).map(DurationText)
    }
}

/// A size written as text, for fields that keep their place in the file (`Spanned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeText(pub u64);

impl<'de> Deserialize<'de> for SizeText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        size::deserialize(d).map(SizeText)
    }
}

/// `#[serde(with = "units::size")]` for a byte count written as text.
pub mod size {
    use super::*;

    /// Deserializes a size string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        parse_size(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_one_grammar() {
        for ok in ["500ms", "2s", "5m", "1h30m", "7d", "10us", "0s"] {
            assert!(parse_duration(ok).is_ok(), "{ok}");
        }
        for bad in [
            "5 sec",
            "1.5h",
            "5",
            "h",
            "",
            "1h 30m",
            "5sec",
            "-1s",
            "1234567890s",
            "1d1h1m1s1ms",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("whole numbers of up to 9 digits"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_parse_in_the_units_operators_write() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("48h").unwrap(), Duration::from_secs(48 * 3600));
        assert!(parse_duration("5 minutes later").is_err());
        assert!(parse_duration("12").is_err());
    }

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 * 1024 * 1024);
        assert_eq!(parse_size("1GiB").unwrap(), 1024 * 1024 * 1024);
        assert_eq!(parse_size("500kB").unwrap(), 500_000);
        assert!(parse_size("lots").is_err());
    }
}
