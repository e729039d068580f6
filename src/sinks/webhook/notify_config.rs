//! `[notify]` (how messages read) and `[[escalations]]` (who is told next when an alarm
//! goes unacknowledged), validated against the `[[webhooks]]` they name.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::config::WebhookSpec;
use super::escalate::{EscalationSpec, LevelSpec};
use super::message::{Language, MessageSettings};
use crate::model::Priority;
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::units::DurationText;

/// `[notify]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// `zh` (default) or `en`.
    #[serde(default)]
    pub language: Option<Language>,
    /// The site's offset from UTC, `+08:00` by default: message times and quiet hours.
    #[serde(default)]
    pub utc_offset: Option<Spanned<String>>,
    /// Base address of the console, e.g. `http://10.0.0.5:8080/`; messages link to
    /// `<console_url>#alarm=<id>`.
    #[serde(default)]
    pub console_url: Option<Spanned<String>>,
}

/// One level of a roster as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLevel {
    /// How long after the alarm was raised, unacknowledged, this level is told (`0s`: at once).
    pub after: Spanned<DurationText>,
    /// Webhook names told at this level.
    pub notify: Spanned<Vec<String>>,
}

/// An `[[escalations]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// Name in logs and metrics; also names its record of sent steps.
    pub name: Spanned<String>,
    /// Lowest priority escalated (default `critical`).
    #[serde(default)]
    pub min_priority: Option<Priority>,
    /// Only alarms of these hazard sources (empty: all).
    #[serde(default)]
    pub hazard_sources: Vec<String>,
    /// Levels in order of `after`.
    pub levels: Vec<RawLevel>,
}

/// `+08:00` → seconds.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (rest.len() == 5 && h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// Validates `[notify]`.
pub fn validate_notify(src: &SourceText<'_>, raw: &RawNotify, errors: &mut Vec<ConfigError>) -> MessageSettings {
    let mut out = MessageSettings::default();
    if let Some(l) = raw.language {
        out.language = l;
    }
    if let Some(o) = &raw.utc_offset {
        match parse_offset(o.get_ref()) {
            Some(s) => out.utc_offset_secs = s,
            None => errors.push(src.error(
                o.span(),
                "notify.utc_offset",
                format!("`{}` is not an offset like `+08:00`", o.get_ref()),
            )),
        }
    }
    if let Some(u) = &raw.console_url {
        match reqwest::Url::parse(u.get_ref()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => out.console_url = Some(u.get_ref().clone()),
            _ => errors.push(src.error(
                u.span(),
                "notify.console_url",
                format!("`{}` is not an http or https URL", u.get_ref()),
            )),
        }
    }
    out
}

/// Validates the rosters against the webhook targets.
pub fn validate_escalations(
    src: &SourceText<'_>,
    raw: &[RawEscalation],
    webhooks: &[WebhookSpec],
    errors: &mut Vec<ConfigError>,
) -> Vec<EscalationSpec> {
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let name = r.name.get_ref();
        let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !safe || !names.insert(name.clone()) {
            let msg = "escalation names must be unique and made of letters, digits, `-` and `_` (they name a file)";
            errors.push(src.error(r.name.span(), format!("escalations[{i}].name"), msg));
        }
        if r.levels.is_empty() {
            errors.push(src.error(
                r.name.span(),
                format!("escalations[{i}].levels"),
                "needs at least one level",
            ));
        }
        let mut levels = Vec::new();
        let mut last = Duration::ZERO;
        for (j, l) in r.levels.iter().enumerate() {
            let after = l.after.get_ref().0;
            if after < last {
                let msg = format!(
                    "must not be shorter than the level before ({})",
                    humantime::format_duration(last)
                );
                errors.push(src.error(l.after.span(), format!("escalations[{i}].levels[{j}].after"), msg));
            }
            last = last.max(after);
            if l.notify.get_ref().is_empty() {
                let key = format!("escalations[{i}].levels[{j}].notify");
                errors.push(src.error(l.notify.span(), key, "names no webhook"));
            }
            for n in l.notify.get_ref() {
                if !webhooks.iter().any(|w| &w.name == n) {
                    let key = format!("escalations[{i}].levels[{j}].notify");
                    errors.push(src.error(l.notify.span(), key, format!("no [[webhooks]] entry is named `{n}`")));
                }
            }
            levels.push(LevelSpec {
                after,
                notify: l.notify.get_ref().clone(),
            });
        }
        out.push(EscalationSpec {
            name: name.clone(),
            min_priority: r.min_priority.unwrap_or(Priority::Critical),
            hazard_sources: r.hazard_sources.clone(),
            levels,
        });
    }
    for w in webhooks.iter().filter(|w| w.only_escalations) {
        let told = out.iter().flat_map(|e| &e.levels).any(|l| l.notify.contains(&w.name));
        if !told {
            errors.push(src.file_error(format!(
                "webhook `{}` has only_escalations = true but no [[escalations]] level notifies it: it would never be used",
                w.name
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_read_with_sign_hours_and_minutes() {
        assert_eq!(parse_offset("+08:00"), Some(28_800));
        assert_eq!(parse_offset("-03:30"), Some(-12_600));
        assert_eq!(parse_offset("08:00"), None);
        assert_eq!(parse_offset("+8:00"), None);
        assert_eq!(parse_offset("+15:00"), None);
    }
}
