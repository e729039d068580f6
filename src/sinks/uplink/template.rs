//! `{name}` text templates: MQTT topics, HTTP headers and JSON field values of an uplink.
//!
//! A template is literal text with `{name}` placeholders; `{{` and `}}` stand for braces.
//! Names are checked when the config is validated, so a typo is an error with its place.

use std::borrow::Cow;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A parsed `{name}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; an unclosed `{` or an empty name is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    let name = name.trim().to_string();
                    if !closed {
                        return Err(format!("unclosed `{{` in template `{text}`"));
                    }
                    if name.is_empty() {
                        return Err(format!("empty `{{}}` in template `{text}`"));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(name));
                }
                '}' => return Err(format!("lone `}}` in template `{text}` (write `}}}}` for a brace)")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template { pieces })
    }

    /// The placeholder names, in order.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The single placeholder when the template is exactly `{name}` (a typed JSON value).
    pub fn whole_var(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Var(v)] => Some(v),
            _ => None,
        }
    }

    /// Checks every placeholder against `known`; the first unknown one is named.
    pub fn check(&self, known: &[&str]) -> Result<(), String> {
        for v in self.vars() {
            if !known.contains(&v) {
                return Err(format!("unknown placeholder `{{{v}}}`; known: {}", known.join(", ")));
            }
        }
        Ok(())
    }

    /// Renders with `lookup`; a placeholder it does not know renders empty.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<Cow<'a, str>>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => {
                    if let Some(s) = lookup(v) {
                        out.push_str(&s);
                    }
                }
            }
        }
        out
    }
}

/// Placeholders a transport template (topic, header, URL) may use: the uplink, the gateway,
/// and the payload's transport hints set by the encoder (`kind`, `point_code`, `uuid`, …).
pub const TRANSPORT_VARS: &[&str] = &[
    "uplink",
    "gateway",
    "kind",
    "point_code",
    "enterprise",
    "hazard_source",
    "uuid",
    "items",
];

/// Renders a transport template for `payload`.
pub fn render_for(t: &Template, uplink: &str, gateway: &str, payload: &super::Payload) -> String {
    t.render(|name| match name {
        "uplink" => Some(Cow::Owned(uplink.to_string())),
        "gateway" => Some(Cow::Owned(gateway.to_string())),
        "items" => Some(Cow::Owned(payload.items.to_string())),
        other => payload.attr(other).map(|s| Cow::Owned(s.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_placeholders_and_escaped_braces() {
        let t = Template::parse("plant/{gateway}/{kind}/{{raw}}").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["gateway", "kind"]);
        let out = t.render(|n| Some(Cow::Owned(n.to_uppercase())));
        assert_eq!(out, "plant/GATEWAY/KIND/{raw}");
        assert_eq!(Template::parse("{value}").unwrap().whole_var(), Some("value"));
        assert_eq!(Template::parse("v={value}").unwrap().whole_var(), None);
    }

    #[test]
    fn refuses_broken_templates_and_unknown_names() {
        assert!(Template::parse("a/{kind").is_err());
        assert!(Template::parse("a/{}").is_err());
        assert!(Template::parse("a}").is_err());
        let t = Template::parse("{gatewy}").unwrap();
        let e = t.check(TRANSPORT_VARS).unwrap_err();
        assert!(e.contains("gatewy"), "{e}");
    }
}
