//! Collection times rendered in the platform's zone, whatever the host's zone is.

use jiff::tz::TimeZone;
use jiff::{Timestamp as Instant, Zoned};

use crate::model::Timestamp;

/// The zone platforms expect unless an uplink names another.
pub const DEFAULT_ZONE: &str = "Asia/Shanghai";

/// Why a zone name was refused.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone `{name}`: {reason}")]
pub struct ZoneError {
    /// The name given.
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

/// Looks up an IANA zone name (`Asia/Shanghai`) in the bundled database.
pub fn zone(name: &str) -> Result<TimeZone, ZoneError> {
    TimeZone::get(name).map_err(|e| ZoneError {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// `ts` as a civil time in `tz`.
pub fn local(ts: Timestamp, tz: &TimeZone) -> Zoned {
    let instant = Instant::from_nanosecond(i128::from(ts.as_nanos())).unwrap_or(Instant::UNIX_EPOCH);
    instant.to_zoned(tz.clone())
}

/// `ts` rendered with a strftime-style `format` (`%Y-%m-%d %H:%M:%S`) in `tz`.
pub fn render(ts: Timestamp, tz: &TimeZone, format: &str) -> String {
    local(ts, tz).strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_the_platform_zone_not_the_hosts() {
        let tz = zone(DEFAULT_ZONE).unwrap();
        // 2016-08-01 00:58:57.223 UTC is 08:58:57.223 in Shanghai.
        let ts = Timestamp::from_millis(1_470_013_137_223);
        assert_eq!(render(ts, &tz, "%Y-%m-%d %H:%M:%S"), "2016-08-01 08:58:57");
        assert_eq!(render(ts, &tz, "%Y%m%d%H%M%S%3f"), "20160801085857223");
    }

    #[test]
    fn an_unknown_zone_is_named() {
        let e = zone("Mars/Olympus").unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus"));
    }
}
