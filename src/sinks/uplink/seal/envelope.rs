//! Envelope templates: the JSON object that carries the sealed data to the platform, and the
//! HTTP headers that go with it.
//!
//! A template is text with `{{name}}` placeholders:
//!
//! | placeholder | value |
//! |---|---|
//! | `{{data}}` | the sealed data as text (hex or Base64), exactly once in the body |
//! | `{{uuid}}` | a new random UUID (version 4) per payload; body and headers share it |
//! | `{{items}}` | how many records the payload carries |
//! | `{{attr.KEY}}` | a hint the encoder set on the payload (e.g. a `serviceId`) |
//! | `{{secret.NAME}}` | a secret from the envelope's `secrets` (file or environment) |
//! | `{{NAME}}` | a constant from the envelope's `constants` |
//!
//! In the body a placeholder inside a JSON string is escaped as string content; one standing
//! alone becomes a whole JSON string. So a constant holding `"` or a newline, or Chinese text,
//! always leaves valid JSON. Header values are inserted as they are, and a value with a line
//! break is refused rather than sent (it would split the header).

use std::collections::BTreeMap;

use serde_json::Value;

/// A placeholder's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Slot {
    /// The sealed data.
    Data,
    /// A random UUID v4 per payload.
    Uuid,
    /// The payload's record count.
    Items,
    /// A payload attribute set by the encoder.
    Attr(String),
    /// A named secret (resolved when the uplink is built).
    Secret(String),
    /// A named constant (resolved when the uplink is built).
    Const(String),
}

/// Where a placeholder stands, which decides how its value is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Inside a JSON string: escaped as string content.
    InString,
    /// Outside any string: written as a whole JSON string, quotes included.
    Bare,
    /// In a header value: as is.
    Header,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    /// Fixed text.
    Lit(String),
    /// A placeholder.
    Slot(Slot, Place),
}

/// A step on the way from the body's root to the data string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// Splits `text` into literal pieces and placeholders. For a JSON body (`json`), each
/// placeholder learns whether it stands inside a string.
pub(super) fn parse(text: &str, json: bool) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    let mut offset = 0;
    loop {
        let Some(open) = rest.find("{{") else {
            track(rest, &mut in_string, &mut escaped);
            if !rest.is_empty() {
                parts.push(Part::Lit(rest.to_string()));
            }
            break;
        };
        let lit = &rest[..open];
        track(lit, &mut in_string, &mut escaped);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit.to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!(
                "`{{{{` at character {} is never closed by `}}}}`",
                char_pos(text, offset + open)
            ));
        };
        let name = after[..close].trim();
        let place = match (json, in_string) {
            (false, _) => Place::Header,
            (true, true) => Place::InString,
            (true, false) => Place::Bare,
        };
        parts.push(Part::Slot(slot_of(name)?, place));
        let consumed = open + 2 + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    Ok(parts)
}

fn char_pos(text: &str, byte: usize) -> usize {
    text[..byte].chars().count() + 1
}

fn track(lit: &str, in_string: &mut bool, escaped: &mut bool) {
    for b in lit.bytes() {
        if *escaped {
            *escaped = false;
        } else if *in_string && b == b'\\' {
            *escaped = true;
        } else if b == b'"' {
            *in_string = !*in_string;
        }
    }
}

fn slot_of(name: &str) -> Result<Slot, String> {
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_-".contains(c));
    Ok(match name {
        "data" => Slot::Data,
        "uuid" => Slot::Uuid,
        "items" => Slot::Items,
        _ => match name.split_once('.') {
            Some(("attr", key)) if ident(key) => Slot::Attr(key.to_string()),
            Some(("secret", key)) if ident(key) => Slot::Secret(key.to_string()),
            _ if ident(name) => Slot::Const(name.to_string()),
            _ => {
                return Err(format!(
                    "`{{{{{name}}}}}` is not a placeholder: use data, uuid, items, attr.KEY, secret.NAME or a constant's name"
                ));
            }
        },
    })
}

/// Checks that every constant and secret a template names is defined.
pub(super) fn check_names(
    parts: &[Part],
    constants: &BTreeMap<String, String>,
    secrets: &[&str],
    problems: &mut Vec<String>,
) {
    for part in parts {
        match part {
            Part::Slot(Slot::Const(name), _) if !constants.contains_key(name) => {
                let known: Vec<&str> = constants.keys().map(String::as_str).collect();
                problems.push(format!(
                    "`{{{{{name}}}}}` names no constant (constants: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            Part::Slot(Slot::Secret(name), _) if !secrets.contains(&name.as_str()) => {
                problems.push(format!("`{{{{secret.{name}}}}}` names no entry of `secrets`"));
            }
            _ => {}
        }
    }
}

/// Checks a JSON body template: exactly one `{{data}}`, standing for a whole string value, and
/// valid JSON once filled. Returns the path to the data string.
pub(super) fn check_body(parts: &[Part]) -> Result<Vec<Step>, String> {
    let datas = parts.iter().filter(|p| matches!(p, Part::Slot(Slot::Data, _))).count();
    if datas != 1 {
        return Err(format!(
            "the body must hold `{{{{data}}}}` exactly once (it does {datas} times)"
        ));
    }
    const SENTINEL: &str = "\u{1}sealed-data\u{1}";
    let mut filled = Vec::new();
    for part in parts {
        match part {
            Part::Lit(s) => filled.extend_from_slice(s.as_bytes()),
            Part::Slot(slot, place) => {
                let value = if *slot == Slot::Data { SENTINEL } else { "x" };
                write_value(value, *place, &mut filled);
            }
        }
    }
    let value: Value =
        serde_json::from_slice(&filled).map_err(|e| format!("the body is not valid JSON once filled in: {e}"))?;
    let mut path = Vec::new();
    if find(&value, SENTINEL, &mut path) {
        Ok(path)
    } else {
        Err("`{{data}}` must stand for a whole JSON string value, as in `\"data\":\"{{data}}\"`".to_string())
    }
}

fn find(value: &Value, needle: &str, path: &mut Vec<Step>) -> bool {
    match value {
        Value::String(s) => s == needle,
        Value::Array(items) => items.iter().enumerate().any(|(i, v)| {
            path.push(Step::Index(i));
            find(v, needle, path) || {
                path.pop();
                false
            }
        }),
        Value::Object(map) => map.iter().any(|(k, v)| {
            path.push(Step::Key(k.clone()));
            find(v, needle, path) || {
                path.pop();
                false
            }
        }),
        _ => false,
    }
}

/// Appends `value` as the place requires.
pub(super) fn write_value(value: &str, place: Place, out: &mut Vec<u8>) {
    match place {
        Place::Header => out.extend_from_slice(value.as_bytes()),
        Place::InString => json_escape_into(value, out),
        Place::Bare => {
            out.push(b'"');
            json_escape_into(value, out);
            out.push(b'"');
        }
    }
}

/// `s` as the content of a JSON string (RFC 8259): `"`, `\` and control characters escaped,
/// everything else (Chinese text included) as UTF-8.
pub(super) fn json_escape_into(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Replaces constants and secrets by their (escaped) text and joins neighbouring literals, so
/// only per-payload placeholders are left for sending time.
pub(super) fn resolve(
    parts: &[Part],
    constants: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::new();
    let push_lit = |out: &mut Vec<Part>, text: String| match out.last_mut() {
        Some(Part::Lit(prev)) => prev.push_str(&text),
        _ => out.push(Part::Lit(text)),
    };
    for part in parts {
        let fixed = match part {
            Part::Slot(Slot::Const(name), place) => constants.get(name).map(|v| (v, *place)),
            Part::Slot(Slot::Secret(name), place) => secrets.get(name).map(|v| (v, *place)),
            _ => None,
        };
        match (part, fixed) {
            (_, Some((value, place))) => {
                let mut buf = Vec::new();
                write_value(value, place, &mut buf);
                push_lit(&mut out, String::from_utf8_lossy(&buf).into_owned());
            }
            (Part::Lit(s), None) => push_lit(&mut out, s.clone()),
            (slot, None) => out.push(slot.clone()),
        }
    }
    out
}

/// What a per-payload placeholder needs at sending time.
pub(super) struct Fill<'a> {
    /// The sealed data as text.
    pub data: &'a str,
    /// This payload's UUID.
    pub uuid: &'a str,
    /// The payload's record count.
    pub items: u32,
    /// The payload's attributes.
    pub attrs: &'a [(String, String)],
}

/// Renders resolved `parts` into `out`.
pub(super) fn render(parts: &[Part], fill: &Fill<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    for part in parts {
        match part {
            Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
            Part::Slot(slot, place) => {
                let items;
                let value = match slot {
                    Slot::Data => fill.data,
                    Slot::Uuid => fill.uuid,
                    Slot::Items => {
                        items = fill.items.to_string();
                        &items
                    }
                    Slot::Attr(key) => fill
                        .attrs
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.as_str())
                        .ok_or_else(|| {
                            format!("the envelope uses `{{{{attr.{key}}}}}` but the payload has no `{key}`")
                        })?,
                    // Resolved when the uplink was built.
                    Slot::Const(name) | Slot::Secret(name) => {
                        return Err(format!("`{{{{{name}}}}}` was not resolved"));
                    }
                };
                write_value(value, *place, out);
            }
        }
    }
    Ok(())
}

/// The data string of a sealed body, found by the template's path.
pub(super) fn extract<'v>(body: &'v Value, path: &[Step]) -> Option<&'v str> {
    let mut at = body;
    for step in path {
        at = match step {
            Step::Key(k) => at.get(k)?,
            Step::Index(i) => at.get(i)?,
        };
    }
    at.as_str()
}

/// A random UUID, version 4 (RFC 9562), in its 36-character lower-case form.
pub(super) fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn consts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn placeholders_learn_whether_they_stand_in_a_string() {
        let parts = parse(r#"{"a":"x{{appid}}","b":{{uuid}},"c":"\"{{data}}"}"#, true).unwrap();
        let places: Vec<_> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Slot(s, place) => Some((s.clone(), *place)),
                Part::Lit(_) => None,
            })
            .collect();
        assert_eq!(
            places,
            [
                (Slot::Const("appid".into()), Place::InString),
                (Slot::Uuid, Place::Bare),
                (Slot::Data, Place::InString)
            ]
        );
    }

    #[test]
    fn bad_templates_are_explained() {
        assert_eq!(
            parse(r#"{"a":"{{data"}"#, true).unwrap_err(),
            "`{{` at character 7 is never closed by `}}`"
        );
        assert!(parse("{{ a b }}", true).unwrap_err().contains("is not a placeholder"));
        let e = check_body(&parse(r#"{"a":"{{uuid}}"}"#, true).unwrap()).unwrap_err();
        assert_eq!(e, "the body must hold `{{data}}` exactly once (it does 0 times)");
        let e = check_body(&parse(r#"{"a":"{{data}}","b":"{{data}}"}"#, true).unwrap()).unwrap_err();
        assert!(e.contains("2 times"), "{e}");
        let e = check_body(&parse(r#"{"a":"{{data}}",}"#, true).unwrap()).unwrap_err();
        assert!(e.starts_with("the body is not valid JSON once filled in"), "{e}");
        let e = check_body(&parse(r#"{"a":"hex:{{data}}"}"#, true).unwrap()).unwrap_err();
        assert!(e.contains("whole JSON string value"), "{e}");
        let mut problems = Vec::new();
        let parts = parse(r#"{"a":"{{appid}}","s":"{{secret.k}}","d":"{{data}}"}"#, true).unwrap();
        check_names(&parts, &consts(&[("appId", "1")]), &[], &mut problems);
        assert_eq!(
            problems,
            [
                "`{{appid}}` names no constant (constants: appId)",
                "`{{secret.k}}` names no entry of `secrets`"
            ]
        );
    }

    #[test]
    fn data_path_is_found_in_nested_bodies() {
        let parts = parse(r#"{"head":{"id":"{{uuid}}"},"list":[1,{"payload":{{data}}}]}"#, true).unwrap();
        assert_eq!(
            check_body(&parts).unwrap(),
            [Step::Key("list".into()), Step::Index(1), Step::Key("payload".into())]
        );
    }

    #[test]
    fn constants_with_quotes_newlines_and_chinese_stay_valid_json() {
        let parts = parse(r#"{"appid":"{{appid}}","name":{{name}},"data":"{{data}}"}"#, true).unwrap();
        let c = consts(&[("appid", "a\"b\\c\n\u{1}"), ("name", "液氯储罐区 \"一号\"")]);
        let resolved = resolve(&parts, &c, &BTreeMap::new());
        // Constants became literal text: only the data slot is left.
        assert_eq!(resolved.iter().filter(|p| matches!(p, Part::Slot(..))).count(), 1);
        let mut out = Vec::new();
        let fill = Fill {
            data: "AB01",
            uuid: "u",
            items: 3,
            attrs: &[],
        };
        render(&resolved, &fill, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["appid"], "a\"b\\c\n\u{1}");
        assert_eq!(v["name"], "液氯储罐区 \"一号\"");
        assert_eq!(v["data"], "AB01");
    }

    #[test]
    fn attrs_and_items_fill_at_sending_time() {
        let parts = parse(
            r#"{"serviceId":"{{attr.service_id}}","n":"{{items}}","data":"{{data}}"}"#,
            true,
        )
        .unwrap();
        let attrs = vec![("service_id".to_string(), "t_realtime".to_string())];
        let fill = Fill {
            data: "x",
            uuid: "u",
            items: 7,
            attrs: &attrs,
        };
        let mut out = Vec::new();
        render(&parts, &fill, &mut out).unwrap();
        assert_eq!(out, br#"{"serviceId":"t_realtime","n":"7","data":"x"}"#);
        let missing = Fill { attrs: &[], ..fill };
        let e = render(&parts, &missing, &mut Vec::new()).unwrap_err();
        assert_eq!(
            e,
            "the envelope uses `{{attr.service_id}}` but the payload has no `service_id`"
        );
    }

    #[test]
    fn uuids_are_version_4() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(groups[2].starts_with('4'));
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert!(
            a.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    proptest! {
        #[test]
        fn escaping_round_trips_through_a_json_parser(s in any::<String>()) {
            let mut out = Vec::new();
            write_value(&s, Place::Bare, &mut out);
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}
