//! Units in config values: durations such as `"500ms"`, `"2s"`, `"5m"` and sizes such as `"64MiB"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// Parses a human duration (`"500ms"`, `"2s"`, `"1h 30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration `{text}`: {e} (examples: \"500ms\", \"2s\", \"5m\")"))
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
