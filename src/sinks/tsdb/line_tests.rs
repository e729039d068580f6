use influxdb_line_protocol::{FieldValue, parse_lines};
use proptest::prelude::*;

use super::*;

fn one(f: impl FnOnce(&mut String) -> Result<(), LineError>) -> Result<String, LineError> {
    let mut s = String::new();
    f(&mut s).map(|()| s)
}

#[test]
fn special_characters_are_escaped_per_element() {
    let line = one(|o| {
        LineBuilder::new(o, "my meas,ure=ment\\x")
            .tag("tag key,=", "v a,l=ue\\!")
            .string("f\"k", "say \"hi\" \\ ok, a=b")
            .finish(1)
    })
    .unwrap();
    assert_eq!(
        line,
        "my\\ meas\\,ure=ment\\\\x,tag\\ key\\,\\==v\\ a\\,l\\=ue\\\\! f\"k=\"say \\\"hi\\\" \\\\ ok, a=b\" 1\n"
    );
}

#[test]
fn integers_floats_and_booleans_have_their_own_syntax() {
    let line = one(|o| {
        LineBuilder::new(o, "m")
            .float("f", 1.0)
            .float("g", -2.5e-12)
            .int("i", -42)
            .uint("u", 42)
            .bool("b", true)
            .finish(1_700_000_000_123_456_789)
    })
    .unwrap();
    assert_eq!(line, "m f=1.0,g=-2.5e-12,i=-42i,u=42u,b=true 1700000000123456789\n");
}

#[test]
fn newline_in_a_tag_refuses_the_line_and_leaves_nothing_behind() {
    let mut out = String::from("kept 1\n");
    let err = LineBuilder::new(&mut out, "m")
        .tag("point", "a\nb")
        .float("v", 1.0)
        .finish(5)
        .unwrap_err();
    assert_eq!(err, LineError::ControlChar { element: "tag value" });
    assert_eq!(err.kind(), "control_char");
    assert_eq!(out, "kept 1\n");
}

#[test]
fn non_finite_floats_and_empty_lines_are_refused() {
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            one(|o| LineBuilder::new(o, "m").float("v", v).finish(1)),
            Err(LineError::NonFinite)
        );
    }
    assert_eq!(one(|o| LineBuilder::new(o, "m").finish(1)), Err(LineError::NoFields));
    assert_eq!(
        one(|o| LineBuilder::new(o, "#m").int("v", 1).finish(1)),
        Err(LineError::CommentMeasurement)
    );
    assert_eq!(
        one(|o| LineBuilder::new(o, "").int("v", 1).finish(1)),
        Err(LineError::Empty { element: "measurement" })
    );
}

#[test]
fn an_empty_tag_value_leaves_the_tag_out() {
    let line = one(|o| LineBuilder::new(o, "m").tag("unit", "").int("v", 1).finish(2)).unwrap();
    assert_eq!(line, "m v=1i 2\n");
}

#[derive(Debug, Clone)]
enum Field {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(String),
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[a-z ,=\"\\\\\n\t#]{0,12}",
        "[\\PC]{1,8}",
        Just("\\".to_string()),
        Just("a\\".to_string()),
    ]
}

fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
    ]
}

fn any_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        any_float().prop_map(Field::Float),
        any::<i64>().prop_map(Field::Int),
        any::<u64>().prop_map(Field::Uint),
        any::<bool>().prop_map(Field::Bool),
        any_text().prop_map(Field::Str),
    ]
}

/// What we expect a refusal to be, judged independently of the builder's code.
fn expected_refusal(m: &str, tags: &[(String, String)], fields: &[(String, Field)]) -> Option<&'static str> {
    let ctl = |s: &str| s.chars().any(char::is_control);
    let name = |s: &str| {
        if s.is_empty() {
            Some("empty")
        } else if ctl(s) {
            Some("control_char")
        } else if s.ends_with('\\') {
            Some("trailing_backslash")
        } else {
            None
        }
    };
    if m.starts_with('#') {
        return Some("comment_measurement");
    }
    if let Some(r) = name(m) {
        return Some(r);
    }
    for (k, v) in tags.iter().filter(|(_, v)| !v.is_empty()) {
        if let Some(r) = name(k).or_else(|| name(v)) {
            return Some(r);
        }
    }
    if fields.is_empty() {
        return Some("no_fields");
    }
    for (k, f) in fields {
        if let Some(r) = name(k) {
            return Some(r);
        }
        match f {
            Field::Float(v) if !v.is_finite() => return Some("non_finite"),
            Field::Str(s) if ctl(s) => return Some("control_char"),
            _ => {}
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every line either is refused for the reason an independent check predicts, or reads
    /// back through the `influxdb-line-protocol` parser to exactly the data written.
    #[test]
    fn every_line_is_refused_with_a_reason_or_parses_back_to_the_same_data(
        m in any_text(),
        tags in proptest::collection::vec((any_text(), any_text()), 0..4),
        fields in proptest::collection::vec((any_text(), any_field()), 0..4),
        ts in any::<i64>(),
    ) {
        let mut out = String::new();
        let mut b = LineBuilder::new(&mut out, &m);
        for (k, v) in &tags {
            b = b.tag(k, v);
        }
        for (k, f) in &fields {
            b = match f {
                Field::Float(v) => b.float(k, *v),
                Field::Int(v) => b.int(k, *v),
                Field::Uint(v) => b.uint(k, *v),
                Field::Bool(v) => b.bool(k, *v),
                Field::Str(v) => b.string(k, v),
            };
        }
        let result = b.finish(ts);
        let expected = expected_refusal(&m, &tags, &fields);
        match result {
            Err(e) => {
                prop_assert_eq!(Some(e.kind()), expected, "refused: {}", e);
                prop_assert!(out.is_empty());
            }
            Ok(()) => {
                prop_assert_eq!(expected, None);
                let parsed: Vec<_> = parse_lines(&out).collect();
                prop_assert_eq!(parsed.len(), 1, "one line: {:?}", out);
                let line = parsed.into_iter().next().unwrap().map_err(|e| TestCaseError::fail(format!("{e}: {out:?}")))?;
                prop_assert_eq!(line.series.measurement.as_str(), m.as_str());
                let want_tags: Vec<_> = tags.iter().filter(|(_, v)| !v.is_empty()).collect();
                let got_tags: Vec<_> = line.series.tag_set.iter().flatten().collect();
                prop_assert_eq!(got_tags.len(), want_tags.len());
                for ((gk, gv), (wk, wv)) in got_tags.iter().zip(&want_tags) {
                    prop_assert_eq!(gk.as_str(), wk.as_str());
                    prop_assert_eq!(gv.as_str(), wv.as_str());
                }
                prop_assert_eq!(line.field_set.len(), fields.len());
                for ((gk, gv), (wk, wv)) in line.field_set.iter().zip(&fields) {
                    prop_assert_eq!(gk.as_str(), wk.as_str());
                    let same = match (gv, wv) {
                        (FieldValue::F64(a), Field::Float(b)) => a.to_bits() == b.to_bits(),
                        (FieldValue::I64(a), Field::Int(b)) => a == b,
                        (FieldValue::U64(a), Field::Uint(b)) => a == b,
                        (FieldValue::Boolean(a), Field::Bool(b)) => a == b,
                        (FieldValue::String(a), Field::Str(b)) => a.as_str() == b.as_str(),
                        _ => false,
                    };
                    prop_assert!(same, "field {} read back as {:?}, wrote {:?}", wk, gv, wv);
                }
                prop_assert_eq!(line.timestamp, Some(ts));
            }
        }
    }
}
