//! When shifts change, for the console's handover page (交接班): `[console] shifts = ["08:00",
//! "16:00", "00:00"]`, each a shift's start in the site's local time (the console's clock).
//! Without it the handover covers the last 8 hours, as it always has.

use toml::Spanned;

use crate::spec::{ConfigError, SourceText};

/// Most shift starts in a day.
const MAX_SHIFTS: usize = 12;

/// Minutes after midnight of each shift start, ascending; empty: the last 8 hours.
pub fn validate(
    src: &SourceText<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<u16> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let list = raw.get_ref();
    if list.is_empty() || list.len() > MAX_SHIFTS {
        errors.push(src.error(
            raw.span(),
            "console.shifts",
            format!(
                "give 1 to {MAX_SHIFTS} shift starts (\"HH:MM\"), got {}; leave `shifts` out for the last 8 hours",
                list.len()
            ),
        ));
        return Vec::new();
    }
    let mut out: Vec<u16> = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let key = format!("console.shifts[{i}]");
        match parse(text.get_ref()) {
            Some(m) if out.contains(&m) => errors.push(src.error(
                text.span(),
                key,
                format!("shift start `{}` is given twice", text.get_ref()),
            )),
            Some(m) => out.push(m),
            None => errors.push(src.error(
                text.span(),
                key,
                format!(
                    "a shift start is \"HH:MM\" from 00:00 to 23:59, got `{}`",
                    text.get_ref()
                ),
            )),
        }
    }
    out.sort_unstable();
    out
}

/// `"HH:MM"` (24-hour clock) to minutes after midnight.
fn parse(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Minutes after midnight as `"HH:MM"`.
pub fn format(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(text: &str) -> Result<Vec<u16>, Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Doc {
            shifts: Option<Spanned<Vec<Spanned<String>>>>,
        }
        let doc: Doc = toml::from_str(text).unwrap();
        let src = SourceText {
            file: Path::new("site.toml"),
            text,
        };
        let mut errors = Vec::new();
        let out = validate(&src, doc.shifts.as_ref(), &mut errors);
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn shift_starts_are_sorted_minutes_and_absent_means_the_last_eight_hours() {
        assert_eq!(
            check("shifts = [\"08:00\", \"16:00\", \"00:00\"]"),
            Ok(vec![0, 480, 960])
        );
        assert_eq!(check(""), Ok(vec![]));
        assert_eq!(format(975), "16:15");
    }

    #[test]
    fn bad_and_repeated_starts_are_located() {
        let errors = check("shifts = [\"8:00\", \"24:00\", \"16:00\",\n  \"16:00\"]").unwrap_err();
        assert_eq!(
            errors,
            vec![
                "site.toml:1:11: console.shifts[0]: a shift start is \"HH:MM\" from 00:00 to 23:59, got `8:00`",
                "site.toml:1:19: console.shifts[1]: a shift start is \"HH:MM\" from 00:00 to 23:59, got `24:00`",
                "site.toml:2:3: console.shifts[3]: shift start `16:00` is given twice",
            ]
        );
        let empty = check("shifts = []").unwrap_err();
        assert!(
            empty[0].starts_with("site.toml:1:10: console.shifts: give 1 to 12"),
            "{empty:?}"
        );
    }
}
