//! Topic filters with named levels, point-id templates, and the brace expansion that declares
//! a subscription's points. Pure.
//!
//! - A topic is written as an MQTT filter whose single-level wildcards may carry a name:
//!   `park/{site}/gas/{tag}` subscribes to `park/+/gas/+` and names levels 1 and 3.
//! - A point template fills in `{name}` (a named level), `{N}` (level N of the topic, from 0),
//!   `{field}` (the field name, when one message carries several fields) and `{json:/ptr}` (a
//!   payload value chosen by JSON pointer, RFC 6901, read from the reading's own element).
//! - A declared point list expands `{a,b}` alternatives and `{1..40}` / `{01..40}` ranges.

use serde_json::Value;

/// Most point ids one declared pattern may expand to.
pub const MAX_EXPANSION: usize = 100_000;

/// One level of a topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Exact(String),
    /// `+`.
    One,
    /// `#` (last level only).
    Rest,
}

/// A parsed subscription filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    /// The filter as sent to the broker (`+` where a level was named).
    pub filter: String,
    levels: Vec<Level>,
    /// Named levels: name and position.
    pub names: Vec<(String, usize)>,
}

impl TopicFilter {
    /// Parses `park/{site}/gas/#`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("a topic filter must not be empty".into());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        let mut names = Vec::new();
        let mut filter = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let level = match *part {
                "+" => Level::One,
                "#" if i + 1 == parts.len() => Level::Rest,
                "#" => return Err("`#` may only be the last level of a topic filter".into()),
                p if p.starts_with('{') && p.ends_with('}') && p.len() > 2 => {
                    let name = &p[1..p.len() - 1];
                    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name == "field" {
                        return Err(format!(
                            "level name `{name}` must be letters, digits or `_` (and not `field`)"
                        ));
                    }
                    if names.iter().any(|(n, _)| n == name) {
                        return Err(format!("level name `{name}` is used twice"));
                    }
                    names.push((name.to_string(), i));
                    Level::One
                }
                p if p.contains(['+', '#', '{', '}']) => {
                    return Err(format!("level `{p}`: wildcards and `{{name}}` must fill a whole level"));
                }
                p => Level::Exact(p.to_string()),
            };
            filter.push(match &level {
                Level::Exact(s) => s.clone(),
                Level::One => "+".to_string(),
                Level::Rest => "#".to_string(),
            });
            levels.push(level);
        }
        Ok(Self {
            filter: filter.join("/"),
            levels,
            names,
        })
    }

    /// Whether a message on `topic` (split into levels) belongs to this filter (MQTT 3.1.1
    /// §4.7; topics starting with `$` match no leading wildcard).
    pub fn matches(&self, topic: &[&str]) -> bool {
        if topic.first().is_some_and(|l| l.starts_with('$')) && !matches!(self.levels.first(), Some(Level::Exact(_))) {
            return false;
        }
        let mut t = topic.iter();
        for level in &self.levels {
            match level {
                Level::Rest => return true,
                Level::One => {
                    if t.next().is_none() {
                        return false;
                    }
                }
                Level::Exact(s) => {
                    if t.next() != Some(&s.as_str()) {
                        return false;
                    }
                }
            }
        }
        t.next().is_none()
    }

    /// Levels every matching topic has (more after a `#`).
    pub fn min_levels(&self) -> usize {
        self.levels.iter().filter(|l| !matches!(l, Level::Rest)).count()
    }

    /// Whether it ends in `#`.
    pub fn open_ended(&self) -> bool {
        matches!(self.levels.last(), Some(Level::Rest))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Level(usize),
    Field,
    Json(String),
}

/// A point-id template, checked against its topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointTemplate {
    parts: Vec<Part>,
}

/// Why a template could not be filled in for one message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The topic has fewer levels than the template refers to.
    #[error("topic has no level {0}")]
    NoLevel(usize),
    /// The payload lacks the field, or it is not text or an integer.
    #[error("payload field `{0}` for the point id is missing or not text/integer")]
    Field(String),
}

impl PointTemplate {
    /// Parses `{site}/{json:/sensor}` against `filter`; `fields` says whether `{field}` is allowed.
    pub fn parse(text: &str, filter: &TopicFilter, fields: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed `{{` in point template `{text}`"));
            };
            let inner = &rest[open + 1..open + close];
            let part = if let Some(ptr) = inner.strip_prefix("json:") {
                if !(ptr.is_empty() || ptr.starts_with('/')) {
                    return Err(format!("`{{json:{ptr}}}`: a JSON pointer starts with `/`"));
                }
                Part::Json(ptr.to_string())
            } else if inner == "field" {
                if !fields {
                    return Err("`{field}` needs `fields` (several values per message)".into());
                }
                Part::Field
            } else if let Ok(n) = inner.parse::<usize>() {
                if !filter.open_ended() && n >= filter.min_levels() {
                    return Err(format!(
                        "`{{{n}}}`: topic `{}` has only levels 0..{}",
                        filter.filter,
                        filter.min_levels().saturating_sub(1)
                    ));
                }
                Part::Level(n)
            } else if let Some((_, at)) = filter.names.iter().find(|(n, _)| n == inner) {
                Part::Level(*at)
            } else {
                let known: Vec<_> = filter.names.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                return Err(format!(
                    "`{{{inner}}}` is not a level of the topic (named: {}), a level number, {{field}} or {{json:/pointer}}",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            parts.push(part);
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("unmatched `}}` in point template `{text}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("a point template must not be empty".into());
        }
        Ok(Self { parts })
    }

    /// Whether filling it in needs the payload.
    pub fn uses_payload(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Json(_)))
    }

    /// Fills the template in into `out` (cleared first).
    pub fn render(
        &self,
        topic: &[&str],
        field: Option<&str>,
        element: Option<&Value>,
        out: &mut String,
    ) -> Result<(), RenderError> {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Level(n) => out.push_str(topic.get(*n).ok_or(RenderError::NoLevel(*n))?),
                Part::Field => out.push_str(field.unwrap_or_default()),
                Part::Json(ptr) => match element.and_then(|e| e.pointer(ptr)) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                        use std::fmt::Write as _;
                        let _ = write!(out, "{n}");
                    }
                    _ => return Err(RenderError::Field(ptr.clone())),
                },
            }
        }
        Ok(())
    }
}

/// Expands `{a,b}` and `{1..40}` (zero-padded when written `{01..40}`) in a point-id pattern,
/// left to right; at most [`MAX_EXPANSION`] results.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let lit = &rest[..open];
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("unclosed `{{` in `{pattern}`"));
        };
        let inner = &rest[open + 1..open + close];
        let choices = alternatives(inner).map_err(|e| format!("`{{{inner}}}` in `{pattern}`: {e}"))?;
        if out.len().saturating_mul(choices.len()) > MAX_EXPANSION {
            return Err(format!("`{pattern}` expands to more than {MAX_EXPANSION} point ids"));
        }
        out = out
            .iter()
            .flat_map(|prefix| choices.iter().map(move |c| format!("{prefix}{lit}{c}")))
            .collect();
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched `}}` in `{pattern}`"));
    }
    for s in &mut out {
        s.push_str(rest);
    }
    Ok(out)
}

fn alternatives(inner: &str) -> Result<Vec<String>, String> {
    if let Some((a, b)) = inner.split_once("..") {
        let (lo, hi) = (
            a.parse::<u64>()
                .map_err(|_| "a range is `{first..last}` with numbers")?,
            b.parse::<u64>()
                .map_err(|_| "a range is `{first..last}` with numbers")?,
        );
        if lo > hi {
            return Err("the range runs backwards".into());
        }
        if hi - lo >= MAX_EXPANSION as u64 {
            return Err(format!("the range is longer than {MAX_EXPANSION}"));
        }
        let width = if a.starts_with('0') && a.len() > 1 { a.len() } else { 0 };
        return Ok((lo..=hi).map(|n| format!("{n:0width$}")).collect());
    }
    let v: Vec<String> = inner.split(',').map(str::to_string).collect();
    if v.iter().any(String::is_empty) {
        return Err("empty alternative".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn levels(t: &str) -> Vec<&str> {
        t.split('/').collect()
    }

    #[test]
    fn named_levels_become_single_level_wildcards() {
        let f = TopicFilter::parse("park/{site}/gas/{tag}").unwrap();
        assert_eq!(f.filter, "park/+/gas/+");
        assert!(f.matches(&levels("park/a/gas/GT-1")));
        assert!(!f.matches(&levels("park/a/gas")));
        assert!(!f.matches(&levels("park/a/gas/GT-1/x")));
        let t = PointTemplate::parse("{site}/{tag}", &f, false).unwrap();
        let mut s = String::new();
        t.render(&levels("park/a/gas/GT-1"), None, None, &mut s).unwrap();
        assert_eq!(s, "a/GT-1");
    }

    #[test]
    fn hash_matches_the_rest_and_json_fills_from_the_element() {
        let f = TopicFilter::parse("park/+/dam/#").unwrap();
        assert!(f.matches(&levels("park/p1/dam")));
        assert!(f.matches(&levels("park/p1/dam/a/b")));
        assert!(!f.matches(&levels("$SYS/p1/dam")));
        let t = PointTemplate::parse("{1}/{json:/sensor}", &f, false).unwrap();
        let mut s = String::new();
        t.render(&levels("park/p1/dam/x"), None, Some(&json!({"sensor": 7})), &mut s)
            .unwrap();
        assert_eq!(s, "p1/7");
        assert_eq!(
            t.render(&levels("park/p1/dam"), None, Some(&json!({"sensor": 1.5})), &mut s),
            Err(RenderError::Field("/sensor".into()))
        );
    }

    #[test]
    fn templates_refer_only_to_what_the_topic_has() {
        let f = TopicFilter::parse("a/{x}").unwrap();
        assert!(
            PointTemplate::parse("{2}", &f, false)
                .unwrap_err()
                .contains("only levels 0..1")
        );
        assert!(
            PointTemplate::parse("{y}", &f, false)
                .unwrap_err()
                .contains("named: {x}")
        );
        assert!(PointTemplate::parse("{field}", &f, false).is_err());
        assert!(PointTemplate::parse("{x", &f, false).is_err());
        assert!(TopicFilter::parse("a/#/b").is_err());
        assert!(TopicFilter::parse("a/b+").is_err());
        assert!(TopicFilter::parse("{x}/{x}").is_err());
    }

    #[test]
    fn braces_expand_ranges_and_alternatives() {
        assert_eq!(
            expand("d/P{08..10}/{x,y}").unwrap(),
            ["d/P08/x", "d/P08/y", "d/P09/x", "d/P09/y", "d/P10/x", "d/P10/y"]
        );
        assert_eq!(expand("plain").unwrap(), ["plain"]);
        assert!(expand("{1..1000000}").is_err());
        assert!(expand("{1..400}/{1..400}").is_err());
        assert!(expand("{5..1}").is_err());
        assert!(expand("{a,}").is_err());
    }
}
