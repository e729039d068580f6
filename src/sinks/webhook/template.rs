//! Bodies of SMS and voice gateways: a user's template with `{placeholder}`s filled from the
//! message fields. A placeholder is a brace around a lower-case word (`{point}`); any other
//! brace is text, so a JSON body is written as it is: `{"text":"{point} {value}"}`. Values
//! are escaped for the content type (JSON string escapes for `…json`, percent-encoding for
//! form bodies), so a point name with a quote cannot break the gateway's request.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::message::Fields;

/// Every placeholder a template may use.
pub const PLACEHOLDERS: [&str; 13] = [
    "point",
    "value",
    "limit",
    "priority",
    "transition",
    "time",
    "hazard_source",
    "place",
    "link",
    "phones",
    "alarm_id",
    "title",
    "text",
];

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(&'static str),
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` with a name that is not a placeholder.
    #[error("unknown placeholder `{{{0}}}`; known: {known}", known = PLACEHOLDERS.join(", "))]
    Unknown(String),
}

/// A parsed body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// How values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON string.
    Json,
    /// In an `application/x-www-form-urlencoded` body.
    Form,
    /// As they are.
    None,
}

impl Escape {
    /// The escaping a content type calls for.
    pub fn for_content_type(ct: &str) -> Self {
        let ct = ct.to_ascii_lowercase();
        if ct.contains("json") {
            Escape::Json
        } else if ct.contains("x-www-form-urlencoded") {
            Escape::Form
        } else {
            Escape::None
        }
    }

    fn apply(self, v: &str) -> String {
        match self {
            Escape::Json => {
                let quoted = serde_json::Value::String(v.to_string()).to_string();
                quoted[1..quoted.len() - 1].to_string()
            }
            Escape::Form => utf8_percent_encode(v, NON_ALPHANUMERIC).to_string(),
            Escape::None => v.to_string(),
        }
    }
}

impl Template {
    /// Parses `text`, naming the first unknown placeholder.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let word = after
                .find('}')
                .map(|close| &after[..close])
                .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            match word {
                Some(w) => {
                    let known = PLACEHOLDERS
                        .iter()
                        .find(|p| **p == w)
                        .ok_or_else(|| TemplateError::Unknown(w.to_string()))?;
                    if !lit.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Field(known));
                    rest = &after[w.len() + 1..];
                }
                None => {
                    lit.push('{');
                    rest = after;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Self { pieces })
    }

    /// Fills the template.
    pub fn render(&self, f: &Fields, text: &str, alarm_id: &str, phones: &[String], escape: Escape) -> String {
        let phones = phones.join(",");
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Field(name) => {
                    let v = match *name {
                        "point" => &f.point,
                        "value" => &f.value,
                        "limit" => &f.limit,
                        "priority" => &f.priority,
                        "transition" => &f.transition,
                        "time" => &f.time,
                        "hazard_source" => &f.hazard_source,
                        "place" => &f.place,
                        "link" => &f.link,
                        "phones" => &phones,
                        "alarm_id" => alarm_id,
                        "title" => &f.title,
                        _ => text,
                    };
                    out.push_str(&escape.apply(v));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields {
            point: "1号储罐 \"可燃\"".into(),
            place: "罐区".into(),
            hazard_source: "液氯储罐区（MHS-001）".into(),
            value: "30 %LEL".into(),
            limit: "25 %LEL".into(),
            priority: "高".into(),
            transition: "报警".into(),
            time: "2026-12-07 09:00:00 (UTC+08:00)".into(),
            link: "http://c/#alarm=x".into(),
            title: "t".into(),
            escalation: String::new(),
        }
    }

    #[test]
    fn placeholders_are_filled_and_escaped_for_json() {
        let t = Template::parse(r#"{"msg":"{point} {value} 限值{limit} {priority}","to":"{phones}"}"#).unwrap();
        let body = t.render(&fields(), "", "a", &["138".into(), "139".into()], Escape::Json);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["msg"], "1号储罐 \"可燃\" 30 %LEL 限值25 %LEL 高");
        assert_eq!(v["to"], "138,139");
    }

    #[test]
    fn form_bodies_are_percent_encoded() {
        let t = Template::parse("to={phones}&msg={place}").unwrap();
        let body = t.render(
            &fields(),
            "",
            "a",
            &["138".into()],
            Escape::for_content_type("application/x-www-form-urlencoded"),
        );
        assert_eq!(body, "to=138&msg=%E7%BD%90%E5%8C%BA");
    }

    #[test]
    fn an_unknown_placeholder_is_named() {
        let e = Template::parse("alarm {pointname} at {time}").unwrap_err();
        assert_eq!(e, TemplateError::Unknown("pointname".into()));
        assert!(
            e.to_string()
                .starts_with("unknown placeholder `{pointname}`; known: point, value")
        );
        // Braces around anything but a lower-case word are text.
        let t = Template::parse("{ \"a\": {x-1} } {time").unwrap();
        assert_eq!(
            t.render(&fields(), "", "a", &[], Escape::None),
            "{ \"a\": {x-1} } {time"
        );
    }
}
