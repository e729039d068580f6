//! Payload decoders: bytes of one MQTT message in, readings out. Pure: the arrival time is
//! passed in, and nothing here knows topics or point ids (the caller fills the template in from
//! each item's JSON element).
//!
//! Forms: plain numeric text (`12.5`, also quoted: `"12.5"`); JSON with one value (`12.5`,
//! `"12.5"`, `{"v": 12.5}`); JSON with several fields, one point each (`{"co": 3, "h2s": 0.4}`);
//! and an array of readings (`[{"id": "P1", "v": 2}, ...]` or one inside the document, e.g.
//! `/data`, with the timestamp in each reading or once at the root). A one-value JSON layout
//! also takes a bare number or numeric text per message, whatever its configured form, since
//! one topic tree often carries several firmware versions, unless the subscription's `accept`
//! leaves those shapes out ([`Accept`]). Values are numbers, numeric text or booleans (0/1);
//! anything else is a `decode_error` reading for that point.
//!
//! Bounds: the caller refuses payloads over the subscription's `max_payload` before decoding,
//! and serde_json refuses nesting deeper than 128, so memory is bounded by the payload size.

use serde_json::Value;

use super::time::{self, TimeUnit};
use crate::model::{Quality, Timestamp};

/// How a subscription's payloads are laid out.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// Plain numeric text (UTF-8, surrounding white space ignored).
    Text,
    /// JSON.
    Json(JsonLayout),
}

/// Where the values, timestamp and quality sit in a JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLayout {
    /// JSON pointer of an array of readings (`""`: the document is the array); `None`: the
    /// document is one reading.
    pub array: Option<String>,
    /// The value or values of one reading.
    pub values: Values,
    /// JSON pointer of the device timestamp, within the reading.
    pub timestamp: Option<String>,
    /// Unit of a numeric timestamp.
    pub timestamp_unit: TimeUnit,
    /// Quality/status field and its mapping.
    pub quality: Option<QualityField>,
    /// Which shapes of document are decoded; a document of another shape is refused whole.
    pub accept: Accept,
}

/// The shape of a whole JSON document, as `accept` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A bare JSON number (`12.5`), or `true`, `false` or `null`.
    Number,
    /// A bare JSON string (`"12.5"`).
    String,
    /// An object or an array: the form `value`, `fields`, `array` describe.
    Object,
}

impl Shape {
    /// The shape of `doc`.
    pub fn of(doc: &Value) -> Self {
        match doc {
            Value::String(_) => Shape::String,
            Value::Object(_) | Value::Array(_) => Shape::Object,
            Value::Number(_) | Value::Bool(_) | Value::Null => Shape::Number,
        }
    }

    /// Name in config and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Number => "number",
            Shape::String => "string",
            Shape::Object => "object",
        }
    }
}

/// The shapes a subscription decodes. Restricting them keeps a publisher that sends a bare
/// value on a topic of structured readings (a misconfigured or foreign device) from feeding
/// a point unnoticed: its messages are refused and counted as `refused_shape` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// Bare numbers (and booleans).
    pub number: bool,
    /// Bare strings (numeric text).
    pub string: bool,
    /// Objects and arrays.
    pub object: bool,
}

impl Accept {
    /// Every shape: the default.
    pub const ALL: Accept = Accept {
        number: true,
        string: true,
        object: true,
    };

    /// Only the listed shapes.
    pub fn only(shapes: &[Shape]) -> Self {
        Accept {
            number: shapes.contains(&Shape::Number),
            string: shapes.contains(&Shape::String),
            object: shapes.contains(&Shape::Object),
        }
    }

    /// Whether documents of `shape` are decoded.
    pub fn takes(self, shape: Shape) -> bool {
        match shape {
            Shape::Number => self.number,
            Shape::String => self.string,
            Shape::Object => self.object,
        }
    }
}

impl Default for Accept {
    fn default() -> Self {
        Accept::ALL
    }
}

/// One value per reading, or several named fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// JSON pointer of the value (`""`: the reading itself is the value).
    One(String),
    /// Field name (for `{field}` in the point template) and JSON pointer of each value.
    Fields(Vec<(String, String)>),
}

/// A status field mapped onto reading quality.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityField {
    /// JSON pointer of the field, within the reading. An absent field means `good`.
    pub pointer: String,
    /// Field value (as text: `"0"`, `"ok"`, `"true"`) to quality; a value not listed means
    /// `decode_error`.
    pub map: Vec<(String, Quality)>,
}

/// What was wrong with one reading (it is still emitted, with `decode_error` quality, except
/// for a bad timestamp, which only falls back to the arrival time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The value's field is absent.
    MissingField,
    /// The value is not a number, numeric text or boolean (or not finite).
    WrongType,
    /// The timestamp is neither a number nor RFC 3339 text; the arrival time is used.
    BadTimestamp,
    /// The status value is not in the quality map.
    BadQuality,
}

impl Problem {
    /// Metric label.
    pub fn kind(self) -> &'static str {
        match self {
            Problem::MissingField => "missing_field",
            Problem::WrongType => "wrong_type",
            Problem::BadTimestamp => "bad_timestamp",
            Problem::BadQuality => "bad_quality",
        }
    }
}

/// One decoded reading, before its point id is known.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The JSON element the reading came from (for `{json:...}` in the point template).
    pub element: Option<&'a Value>,
    /// Field name, with [`Values::Fields`].
    pub field: Option<&'a str>,
    /// Device time, else arrival time.
    pub ts: Timestamp,
    /// Value; NaN unless the quality carries one.
    pub value: f64,
    /// Quality.
    pub quality: Quality,
    /// What was wrong, if anything.
    pub problem: Option<Problem>,
}

/// Why a whole message yielded nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A text payload is not UTF-8 or not a finite number.
    #[error("payload is not a number")]
    InvalidText,
    /// Not JSON (or nested deeper than 128).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The array of readings is absent or not an array.
    #[error("no array of readings at `{0}`")]
    NotAnArray(String),
    /// The document's shape is not in the subscription's `accept` list.
    #[error("the payload is of shape `{}`, which this subscription's `accept` leaves out", .0.as_str())]
    RefusedShape(Shape),
}

impl DecodeError {
    /// Metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::InvalidText => "invalid_text",
            DecodeError::InvalidJson(_) => "invalid_json",
            DecodeError::NotAnArray(_) => "not_an_array",
            DecodeError::RefusedShape(_) => "refused_shape",
        }
    }
}

impl Layout {
    /// Decodes `payload`, calling `emit` for each reading; returns how many it emitted.
    pub fn decode(
        &self,
        payload: &[u8],
        arrival: Timestamp,
        emit: &mut dyn FnMut(Item<'_>),
    ) -> Result<usize, DecodeError> {
        match self {
            Layout::Text => {
                let value = std::str::from_utf8(payload)
                    .ok()
                    .map(|s| {
                        let s = s.trim();
                        s.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(s)
                    })
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite())
                    .ok_or(DecodeError::InvalidText)?;
                emit(Item {
                    element: None,
                    field: None,
                    ts: arrival,
                    value,
                    quality: Quality::Good,
                    problem: None,
                });
                Ok(1)
            }
            Layout::Json(j) => {
                let doc: Value =
                    serde_json::from_slice(payload).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
                j.decode_doc(&doc, arrival, emit)
            }
        }
    }
}

impl JsonLayout {
    /// Decodes a parsed document.
    pub fn decode_doc(
        &self,
        doc: &Value,
        arrival: Timestamp,
        emit: &mut dyn FnMut(Item<'_>),
    ) -> Result<usize, DecodeError> {
        let shape = Shape::of(doc);
        if !self.accept.takes(shape) {
            return Err(DecodeError::RefusedShape(shape));
        }
        // Fleets mix firmware on one topic tree: a bare number or numeric text is one reading
        // at arrival time, whatever the configured object or array form.
        if let (Values::One(_), Value::Number(_) | Value::String(_)) = (&self.values, doc) {
            let (value, problem) = number(Some(doc));
            emit(Item {
                element: None,
                field: None,
                ts: arrival,
                value,
                quality: if problem.is_some() {
                    Quality::DecodeError
                } else {
                    Quality::Good
                },
                problem,
            });
            return Ok(1);
        }
        let mut n = 0;
        match &self.array {
            None => n += self.reading(doc, None, arrival, emit),
            Some(ptr) => {
                let Some(Value::Array(items)) = doc.pointer(ptr) else {
                    return Err(DecodeError::NotAnArray(ptr.clone()));
                };
                for item in items {
                    n += self.reading(item, Some(doc), arrival, emit);
                }
            }
        }
        Ok(n)
    }

    /// One reading from `element`; with an array, `root` is the whole document, where the
    /// timestamp is looked up when the element has none (one time for the whole batch).
    fn reading(
        &self,
        element: &Value,
        root: Option<&Value>,
        arrival: Timestamp,
        emit: &mut dyn FnMut(Item<'_>),
    ) -> usize {
        let mut ts_problem = None;
        let stamp = self
            .timestamp
            .as_deref()
            .and_then(|p| element.pointer(p).or_else(|| root.and_then(|r| r.pointer(p))));
        let ts = match stamp {
            None => arrival,
            Some(v) => time::from_json(v, self.timestamp_unit).unwrap_or_else(|| {
                ts_problem = Some(Problem::BadTimestamp);
                arrival
            }),
        };
        let (quality, q_problem) = match &self.quality {
            None => (Quality::Good, None),
            Some(q) => q.of(element),
        };
        let mut one = |field: Option<&str>, ptr: &str| {
            let (value, v_problem) = number(element.pointer(ptr));
            let problem = v_problem.or(q_problem).or(ts_problem);
            let quality = if v_problem.is_some() {
                Quality::DecodeError
            } else {
                quality
            };
            emit(Item {
                element: Some(element),
                field,
                ts,
                value: if v_problem.is_some() { f64::NAN } else { value },
                quality,
                problem,
            });
        };
        match &self.values {
            Values::One(ptr) => {
                one(None, ptr);
                1
            }
            Values::Fields(fields) => {
                for (name, ptr) in fields {
                    one(Some(name), ptr);
                }
                fields.len()
            }
        }
    }
}

impl QualityField {
    fn of(&self, element: &Value) -> (Quality, Option<Problem>) {
        let key = match element.pointer(&self.pointer) {
            None => return (Quality::Good, None),
            Some(Value::String(s)) => std::borrow::Cow::Borrowed(s.as_str()),
            Some(Value::Number(n)) => std::borrow::Cow::Owned(n.to_string()),
            Some(Value::Bool(b)) => std::borrow::Cow::Borrowed(if *b { "true" } else { "false" }),
            Some(_) => return (Quality::DecodeError, Some(Problem::BadQuality)),
        };
        match self.map.iter().find(|(k, _)| k.as_str() == key.as_ref()) {
            Some((_, q)) => (*q, None),
            None => (Quality::DecodeError, Some(Problem::BadQuality)),
        }
    }
}

/// A reading's value: a finite number, numeric text, or a boolean as 0/1.
fn number(v: Option<&Value>) -> (f64, Option<Problem>) {
    let n = match v {
        None => return (f64::NAN, Some(Problem::MissingField)),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(Value::Bool(b)) => Some(f64::from(u8::from(*b))),
        Some(_) => None,
    };
    match n.filter(|x| x.is_finite()) {
        Some(x) => (x, None),
        None => (f64::NAN, Some(Problem::WrongType)),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
