//! `[ops]`: how the gateway judges its own readiness for orchestrators, load balancers and
//! the plant's monitoring.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::spec::error::{ConfigError, SourceText};
use crate::spec::units;

/// The `[ops]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOps {
    /// `/readyz` answers 503 while any store's durable buffer holds more than this not yet
    /// delivered (`"256MiB"`):
    /// the store has been unreachable or too slow for long enough that someone should look
    /// before the buffer fills and starts losing readings. Unset: buffers never make the
    /// gateway unready.
    #[serde(default)]
    pub(super) unready_when_buffer_over: Option<Spanned<String>>,
    /// Free space on the data directory's filesystem below which the gateway raises
    /// `gateway:disk_space` and turns unready (`"1GiB"`; `"0"` turns the check off).
    #[serde(default)]
    pub(super) min_free_disk: Option<Spanned<String>>,
    /// A step of the wall clock against the monotonic clock larger than this raises
    /// `gateway:clock_jump` (`"30s"`).
    #[serde(default)]
    pub(super) clock_jump_over: Option<Spanned<String>>,
}

/// Free data-disk space below which the gateway says so: room for hours of history and
/// journal at a large site's rates, and for an operator to act before writes fail.
pub(super) const DEFAULT_MIN_FREE_DISK: u64 = 1 << 30;

/// Wall-clock steps from this size are reported: NTP slews small errors, so a step this big
/// means the clock was set (a dead RTC battery at boot, a manual change), and timestamps on
/// either side of it do not compare.
pub(super) const DEFAULT_CLOCK_JUMP: Duration = Duration::from_secs(30);

/// Validated `[ops]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsSettings {
    /// Buffer backlog in bytes above which a store makes the gateway unready.
    pub unready_when_buffer_over: Option<u64>,
    /// Free data-disk bytes below which the gateway raises its disk alarm (0: never).
    pub min_free_disk: u64,
    /// Wall-clock step that raises the clock alarm.
    pub clock_jump_over: Duration,
}

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            unready_when_buffer_over: None,
            min_free_disk: DEFAULT_MIN_FREE_DISK,
            clock_jump_over: DEFAULT_CLOCK_JUMP,
        }
    }
}

/// Checks `[ops]` against the configured stores (`(name, buffer.max_bytes)` of each).
pub(super) fn validate(
    src: &SourceText<'_>,
    raw: &RawOps,
    stores: &[(String, u64)],
    errors: &mut Vec<ConfigError>,
) -> OpsSettings {
    let mut out = OpsSettings::default();
    if let Some(text) = &raw.min_free_disk {
        match units::parse_size(text.get_ref()) {
            Ok(n) => out.min_free_disk = n,
            Err(msg) => errors.push(src.error(text.span(), "ops.min_free_disk", msg)),
        }
    }
    if let Some(text) = &raw.clock_jump_over {
        const KEY: &str = "ops.clock_jump_over";
        match units::parse_duration(text.get_ref()) {
            Ok(d) if d < Duration::from_secs(1) => errors.push(src.error(
                text.span(),
                KEY,
                "must be at least 1s: the check runs every few seconds and scheduling alone moves it by milliseconds",
            )),
            Ok(d) => out.clock_jump_over = d,
            Err(msg) => errors.push(src.error(text.span(), KEY, msg)),
        }
    }
    const KEY: &str = "ops.unready_when_buffer_over";
    let Some(text) = &raw.unready_when_buffer_over else {
        return out;
    };
    let limit = match units::parse_size(text.get_ref()) {
        Ok(0) => {
            errors.push(src.error(text.span(), KEY, "must be more than 0 bytes"));
            return out;
        }
        Ok(n) => n,
        Err(msg) => {
            errors.push(src.error(text.span(), KEY, msg));
            return out;
        }
    };
    for (name, max) in stores {
        if limit >= *max {
            errors.push(src.error(
                text.span(),
                KEY,
                format!(
                    "{} is not below the buffer.max_bytes ({}) of store `{name}`: its buffer would be full, and losing data, before the gateway turned unready",
                    text.get_ref(),
                    bytesize::ByteSize(*max)
                ),
            ));
        }
    }
    out.unready_when_buffer_over = Some(limit);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::GatewayConfig;

    const STORE: &str = "[[tsdb]]\nname = \"central\"\nurl = \"http://127.0.0.1:8428\"\napi = \"v1\"\ndb = \"safety\"\nbuffer = { max_bytes = \"64MiB\" }\n";

    fn parse(ops: &str) -> Result<GatewayConfig, String> {
        let text = format!("[gateway]\nid = \"gw\"\n{STORE}[ops]\n{ops}\n");
        GatewayConfig::parse(Path::new("site.toml"), &text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_buffer_limit_below_every_store_buffer_is_accepted() {
        let cfg = parse("unready_when_buffer_over = \"16MiB\"").unwrap();
        assert_eq!(cfg.ops.unready_when_buffer_over, Some(16 << 20));
        assert_eq!(parse("").unwrap().ops.unready_when_buffer_over, None);
    }

    #[test]
    fn a_limit_the_buffer_can_never_reach_is_refused_with_the_store_named() {
        let e = parse("unready_when_buffer_over = \"64MiB\"").unwrap_err();
        assert!(
            e.contains("site.toml:10:28: ops.unready_when_buffer_over: 64MiB is not below the buffer.max_bytes (64.0 MiB) of store `central`"),
            "{e}"
        );
        let e = parse("unready_when_buffer_over = \"0B\"").unwrap_err();
        assert!(
            e.contains("ops.unready_when_buffer_over: must be more than 0 bytes"),
            "{e}"
        );
        let e = parse("unready_when_buffer_over = \"lots\"").unwrap_err();
        assert!(e.contains("ops.unready_when_buffer_over: invalid size `lots`"), "{e}");
    }
}
