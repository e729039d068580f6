use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const ARRIVAL: Timestamp = Timestamp::from_nanos(1_000);

#[derive(Debug, PartialEq)]
struct Out {
    field: Option<String>,
    id: Option<Value>,
    ts: i64,
    value: Option<f64>,
    quality: Quality,
    problem: Option<Problem>,
}

fn run(layout: &Layout, payload: &[u8]) -> Result<Vec<Out>, DecodeError> {
    let mut out = Vec::new();
    let n = layout.decode(payload, ARRIVAL, &mut |i| {
        out.push(Out {
            field: i.field.map(str::to_string),
            id: i.element.and_then(|e| e.pointer("/id")).cloned(),
            ts: i.ts.as_nanos(),
            value: (!i.value.is_nan()).then_some(i.value),
            quality: i.quality,
            problem: i.problem,
        })
    })?;
    assert_eq!(n, out.len());
    Ok(out)
}

fn json_one(ptr: &str) -> JsonLayout {
    JsonLayout {
        accept: Accept::ALL,
        array: None,
        values: Values::One(ptr.into()),
        timestamp: None,
        timestamp_unit: TimeUnit::S,
        quality: None,
    }
}

fn good(value: f64) -> Out {
    Out {
        field: None,
        id: None,
        ts: ARRIVAL.as_nanos(),
        value: Some(value),
        quality: Quality::Good,
        problem: None,
    }
}

#[test]
fn plain_text_is_a_number_or_an_error() {
    assert_eq!(run(&Layout::Text, b" 12.5\n").unwrap(), [good(12.5)]);
    assert_eq!(run(&Layout::Text, b"-3e2").unwrap(), [good(-300.0)]);
    for bad in [&b"twelve"[..], b"", b"NaN", b"inf", b"\xff\xfe12"] {
        assert_eq!(run(&Layout::Text, bad).unwrap_err(), DecodeError::InvalidText);
    }
}

#[test]
fn a_single_json_value_may_be_a_number_numeric_text_or_a_boolean() {
    let doc = Layout::Json(json_one(""));
    assert_eq!(run(&doc, b"12.5").unwrap(), [good(12.5)]);
    assert_eq!(run(&doc, br#""12.5""#).unwrap(), [good(12.5)]);
    assert_eq!(run(&doc, b"true").unwrap(), [good(1.0)]);
    let bad = run(&doc, br#""high""#).unwrap();
    assert_eq!(
        (bad[0].value, bad[0].quality, bad[0].problem),
        (None, Quality::DecodeError, Some(Problem::WrongType))
    );
    let field = Layout::Json(json_one("/value"));
    assert_eq!(run(&field, br#"{"value": 7}"#).unwrap(), [good(7.0)]);
    let missing = run(&field, br#"{"valu": 7}"#).unwrap();
    assert_eq!(missing[0].problem, Some(Problem::MissingField));
    assert_eq!(run(&field, b"{").unwrap_err().kind(), "invalid_json");
}

#[test]
fn accept_refuses_whole_documents_of_the_shapes_it_leaves_out() {
    let objects = Layout::Json(JsonLayout {
        accept: Accept::only(&[Shape::Object]),
        ..json_one("/v")
    });
    assert_eq!(run(&objects, br#"{"v": 7}"#).unwrap(), [good(7.0)]);
    assert_eq!(
        run(&objects, br#"[{"v": 7}]"#).unwrap()[0].problem,
        Some(Problem::MissingField)
    );
    for (payload, shape) in [
        (&b"12.5"[..], Shape::Number),
        (b"true", Shape::Number),
        (b"null", Shape::Number),
        (br#""12.5""#, Shape::String),
    ] {
        let e = run(&objects, payload).unwrap_err();
        assert_eq!(e, DecodeError::RefusedShape(shape));
        assert_eq!(e.kind(), "refused_shape");
    }
    let bare = Layout::Json(JsonLayout {
        accept: Accept::only(&[Shape::Number, Shape::String]),
        ..json_one("/v")
    });
    assert_eq!(run(&bare, b"3").unwrap(), [good(3.0)]);
    assert_eq!(run(&bare, br#""4""#).unwrap(), [good(4.0)]);
    assert_eq!(
        run(&bare, br#"{"v": 5}"#).unwrap_err(),
        DecodeError::RefusedShape(Shape::Object)
    );
    // Invalid JSON stays invalid JSON whatever is accepted.
    assert_eq!(run(&objects, b"{").unwrap_err().kind(), "invalid_json");
}

#[test]
fn an_object_yields_one_reading_per_field() {
    let layout = Layout::Json(JsonLayout {
        accept: Accept::ALL,
        values: Values::Fields(vec![("co".into(), "/gas/co".into()), ("h2s".into(), "/gas/h2s".into())]),
        ..json_one("")
    });
    let out = run(&layout, br#"{"gas": {"co": 24, "h2s": [1]}}"#).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].field.as_deref(), out[0].value), (Some("co"), Some(24.0)));
    assert_eq!(
        (out[1].field.as_deref(), out[1].quality, out[1].problem),
        (Some("h2s"), Quality::DecodeError, Some(Problem::WrongType))
    );
}

#[test]
fn an_array_yields_its_readings_with_device_time_and_mapped_quality() {
    let layout = Layout::Json(JsonLayout {
        accept: Accept::ALL,
        array: Some("/data".into()),
        values: Values::One("/v".into()),
        timestamp: Some("/t".into()),
        timestamp_unit: TimeUnit::Ms,
        quality: Some(QualityField {
            pointer: "/st".into(),
            map: vec![("0".into(), Quality::Good), ("fault".into(), Quality::CommFault)],
        }),
    });
    let payload = br#"{"data": [
        {"id": "P1", "v": 1.5, "t": 1700000000000, "st": 0},
        {"id": "P2", "v": "2", "t": "2023-11-14T22:13:20Z", "st": "fault"},
        {"id": "P3", "v": 3, "t": "when", "st": 9},
        {"id": "P4", "v": 4}
    ]}"#;
    let out = run(&layout, payload).unwrap();
    let ns = 1_700_000_000_000_000_000;
    assert_eq!(
        out[0],
        Out {
            id: Some(json!("P1")),
            ts: ns,
            ..good(1.5)
        }
    );
    assert_eq!(
        (out[1].ts, out[1].value, out[1].quality),
        (ns, Some(2.0), Quality::CommFault)
    );
    assert_eq!(
        (out[2].ts, out[2].quality, out[2].problem),
        (ARRIVAL.as_nanos(), Quality::DecodeError, Some(Problem::BadQuality))
    );
    assert_eq!(
        out[3],
        Out {
            id: Some(json!("P4")),
            ..good(4.0)
        }
    );
    assert_eq!(run(&layout, br#"{"data": {}}"#).unwrap_err().kind(), "not_an_array");

    let top = Layout::Json(JsonLayout {
        accept: Accept::ALL,
        array: Some(String::new()),
        ..json_one("/v")
    });
    assert_eq!(run(&top, br#"[{"v": 1}, {"v": 2}]"#).unwrap().len(), 2);
}

#[test]
fn a_bad_timestamp_keeps_the_value_at_arrival_time() {
    let layout = Layout::Json(JsonLayout {
        accept: Accept::ALL,
        timestamp: Some("/ts".into()),
        ..json_one("/v")
    });
    let out = run(&layout, br#"{"v": 5, "ts": [1]}"#).unwrap();
    assert_eq!(
        out,
        [Out {
            problem: Some(Problem::BadTimestamp),
            ..good(5.0)
        }]
    );
}

fn layouts() -> Vec<Layout> {
    vec![
        Layout::Text,
        Layout::Json(json_one("")),
        Layout::Json(json_one("/a/0/b")),
        Layout::Json(JsonLayout {
            accept: Accept::ALL,
            values: Values::Fields(vec![("x".into(), "/x".into()), ("y".into(), "/y/z".into())]),
            timestamp: Some("/t".into()),
            quality: Some(QualityField {
                pointer: "/q".into(),
                map: vec![("1".into(), Quality::Good)],
            }),
            ..json_one("")
        }),
        Layout::Json(JsonLayout {
            accept: Accept::ALL,
            array: Some(String::new()),
            timestamp: Some("/t".into()),
            timestamp_unit: TimeUnit::Ns,
            ..json_one("/v")
        }),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9.:+TZ-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 256, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,2}", inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every outcome is one of ours: a reading whose value is finite when its quality is good,
/// or a [`DecodeError`]. Never a panic.
fn check(layout: &Layout, payload: &[u8]) -> Result<(), TestCaseError> {
    let mut emitted = 0usize;
    let r = layout.decode(payload, ARRIVAL, &mut |i| {
        emitted += 1;
        assert!(i.value.is_finite() || i.quality != Quality::Good || i.problem.is_some());
        if i.problem.is_some_and(|p| p != Problem::BadTimestamp) {
            assert_eq!(i.quality, Quality::DecodeError);
        }
    });
    match r {
        Ok(n) => prop_assert_eq!(n, emitted),
        Err(e) => {
            prop_assert_eq!(emitted, 0);
            prop_assert!(["invalid_text", "invalid_json", "not_an_array"].contains(&e.kind()));
        }
    }
    // Readings never outnumber what the payload could describe.
    prop_assert!(emitted <= payload.len() + 2);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_yield_a_reading_or_an_error(payload in prop::collection::vec(any::<u8>(), 0..512)) {
        for layout in layouts() {
            check(&layout, &payload)?;
        }
    }

    #[test]
    fn arbitrary_json_yields_a_reading_or_an_error(doc in arb_json()) {
        let payload = serde_json::to_vec(&doc).unwrap();
        for layout in layouts() {
            check(&layout, &payload)?;
        }
    }

    #[test]
    fn deep_nesting_and_huge_numbers_are_refused_or_read(depth in 0usize..5000, digits in 1usize..400) {
        let deep = format!("{}{}{}", "[".repeat(depth), "1", "]".repeat(depth));
        let huge = format!("{{\"v\": 1{}, \"t\": 9{}}}", "0".repeat(digits), "9".repeat(digits));
        let broken = [&b"{\"v\": \""[..], &[0xff, 0xfe, b'"', b'}']].concat();
        for layout in layouts() {
            check(&layout, deep.as_bytes())?;
            check(&layout, huge.as_bytes())?;
            check(&layout, &broken)?;
        }
    }
}

#[test]
fn one_subscription_takes_a_bare_a_quoted_and_the_configured_form_per_message() {
    let layout = Layout::Json(JsonLayout {
        accept: Accept::ALL,
        timestamp: Some("/t".into()),
        ..json_one("/v")
    });
    assert_eq!(run(&layout, b"12.5").unwrap(), [good(12.5)]);
    assert_eq!(run(&layout, br#" "7.25" "#).unwrap(), [good(7.25)]);
    let object = run(&layout, br#"{"v": 3, "t": 5}"#).unwrap();
    assert_eq!((object[0].value, object[0].ts), (Some(3.0), 5_000_000_000));
    let word = run(&layout, br#""high""#).unwrap();
    assert_eq!(
        (word[0].quality, word[0].problem),
        (Quality::DecodeError, Some(Problem::WrongType))
    );
    assert_eq!(run(&Layout::Text, br#""7.25""#).unwrap(), [good(7.25)]);
}

#[test]
fn an_array_takes_its_timestamp_from_the_root_when_its_readings_have_none() {
    let layout = Layout::Json(JsonLayout {
        accept: Accept::ALL,
        array: Some("/data".into()),
        timestamp: Some("/ts".into()),
        timestamp_unit: TimeUnit::Ms,
        ..json_one("/dx")
    });
    let out = run(
        &layout,
        br#"{"ts": 1764057600123, "data": [{"id": "P01", "dx": 1.25}, {"id": "P02", "dx": 2, "ts": 1764057600000}]}"#,
    )
    .unwrap();
    let got: Vec<(Option<f64>, i64)> = out.iter().map(|o| (o.value, o.ts)).collect();
    assert_eq!(
        got,
        [
            (Some(1.25), 1_764_057_600_123_000_000),
            (Some(2.0), 1_764_057_600_000_000_000)
        ]
    );
}
