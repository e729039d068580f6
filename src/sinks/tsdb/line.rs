//! InfluxDB line protocol, written exactly to the published syntax
//! (<https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/>):
//!
//! ```text
//! measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp_ns]
//! ```
//!
//! Escaping, by element (the spec's "special characters" table):
//! - measurement: comma, space and backslash get a backslash;
//! - tag keys, tag values, field keys: comma, equals sign, space and backslash get a backslash;
//! - string field values: double quote and backslash get a backslash, inside double quotes.
//!
//! A literal newline cannot be escaped in any element, and readers disagree about tabs and
//! other control characters, so an element holding a control character is refused: the
//! whole line is left out and the caller counts the [`LineError::kind`]. So is a name or tag
//! value that ends in a backslash (see [`LineError::TrailingBackslash`]). Floats must be
//! finite (NaN and infinities have no line-protocol form); integers carry the `i` suffix,
//! unsigned integers `u`. Tag values must not be empty: the spec has no empty tag value,
//! so [`LineBuilder::tag`] leaves an empty one out (the tag is absent, not empty).

use std::fmt::Write as _;

/// Why a line was refused. Nothing is written for a refused line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// An element holds a newline, carriage return or other control character.
    #[error("{element} contains a control character (newline, tab, ...), which line protocol cannot carry")]
    ControlChar {
        /// Which element: `measurement`, `tag key`, `tag value`, `field key`, `string field`.
        element: &'static str,
    },
    /// The measurement or a key is empty.
    #[error("{element} is empty")]
    Empty {
        /// Which element.
        element: &'static str,
    },
    /// A measurement, key or tag value ends with a backslash. InfluxDB 1.x does not escape
    /// backslashes, so a trailing one would read as escaping the separator after it, and
    /// newer parsers refuse it outright.
    #[error("{element} ends with a backslash, which readers take for an escape")]
    TrailingBackslash {
        /// Which element.
        element: &'static str,
    },
    /// A measurement starting with `#` would be read as a comment line.
    #[error("measurement starts with `#`, which readers take for a comment")]
    CommentMeasurement,
    /// A float field is NaN or infinite.
    #[error("field value is not a finite number")]
    NonFinite,
    /// The line has no field (the spec requires at least one).
    #[error("line has no field")]
    NoFields,
}

impl LineError {
    /// A bounded name for metric labels.
    pub fn kind(self) -> &'static str {
        match self {
            LineError::ControlChar { .. } => "control_char",
            LineError::Empty { .. } => "empty",
            LineError::TrailingBackslash { .. } => "trailing_backslash",
            LineError::CommentMeasurement => "comment_measurement",
            LineError::NonFinite => "non_finite",
            LineError::NoFields => "no_fields",
        }
    }
}

/// Characters escaped in a measurement name.
const MEASUREMENT_ESCAPES: &[char] = &[',', ' ', '\\'];
/// Characters escaped in tag keys, tag values and field keys.
const KEY_ESCAPES: &[char] = &[',', '=', ' ', '\\'];
/// Characters escaped inside a double-quoted string field value.
const STRING_ESCAPES: &[char] = &['"', '\\'];

fn escape_into(out: &mut String, s: &str, escapes: &[char], element: &'static str) -> Result<(), LineError> {
    if s.is_empty() {
        return Err(LineError::Empty { element });
    }
    if element != "string field" && s.ends_with('\\') {
        return Err(if s.contains(char::is_control) {
            LineError::ControlChar { element }
        } else {
            LineError::TrailingBackslash { element }
        });
    }
    // Fast path: most names need no escaping at all.
    if !s.contains(|c: char| c.is_control() || escapes.contains(&c)) {
        out.push_str(s);
        return Ok(());
    }
    for c in s.chars() {
        if c.is_control() {
            return Err(LineError::ControlChar { element });
        }
        if escapes.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(())
}

/// Appends an escaped tag key, tag value or field key.
pub fn push_key(out: &mut String, s: &str, element: &'static str) -> Result<(), LineError> {
    escape_into(out, s, KEY_ESCAPES, element)
}

/// Appends a float in the shortest form that reads back to the same `f64`.
pub fn push_float(out: &mut String, v: f64) -> Result<(), LineError> {
    if !v.is_finite() {
        return Err(LineError::NonFinite);
    }
    // `Debug` gives the shortest round-tripping text with an exponent for very large or
    // small magnitudes (`1e300`, `1.5e-7`), both of which the spec's float syntax accepts.
    let _ = write!(out, "{v:?}");
    Ok(())
}

/// Builds one line into a shared output buffer; on any error the buffer is restored to
/// where the line began, so a refused value never leaves half a line behind.
#[derive(Debug)]
pub struct LineBuilder<'a> {
    out: &'a mut String,
    start: usize,
    fields: usize,
    error: Option<LineError>,
}

impl<'a> LineBuilder<'a> {
    /// Starts a line for `measurement`.
    pub fn new(out: &'a mut String, measurement: &str) -> Self {
        let start = out.len();
        let error = if measurement.starts_with('#') {
            Some(LineError::CommentMeasurement)
        } else {
            escape_into(out, measurement, MEASUREMENT_ESCAPES, "measurement").err()
        };
        Self {
            out,
            start,
            fields: 0,
            error,
        }
    }

    /// Continues a line whose measurement and tags were escaped earlier (a cached prefix
    /// that ends before the space separating tags from fields).
    pub fn with_prefix(out: &'a mut String, escaped_prefix: &str) -> Self {
        let start = out.len();
        out.push_str(escaped_prefix);
        Self {
            out,
            start,
            fields: 0,
            error: None,
        }
    }

    /// Adds a tag; an empty value leaves the tag out. Tags must come before fields.
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        if self.error.is_some() || value.is_empty() {
            return self;
        }
        debug_assert_eq!(self.fields, 0, "tags go before fields");
        self.out.push(',');
        let r = push_key(self.out, key, "tag key").and_then(|()| {
            self.out.push('=');
            push_key(self.out, value, "tag value")
        });
        self.error = r.err();
        self
    }

    fn field(mut self, key: &str, value: impl FnOnce(&mut String) -> Result<(), LineError>) -> Self {
        if self.error.is_some() {
            return self;
        }
        self.out.push(if self.fields == 0 { ' ' } else { ',' });
        let r = push_key(self.out, key, "field key").and_then(|()| {
            self.out.push('=');
            value(self.out)
        });
        self.fields += 1;
        self.error = r.err();
        self
    }

    /// Adds a float field; NaN and infinities refuse the line.
    pub fn float(self, key: &str, v: f64) -> Self {
        self.field(key, |o| push_float(o, v))
    }

    /// Adds a signed integer field (`42i`).
    pub fn int(self, key: &str, v: i64) -> Self {
        self.field(key, |o| {
            let _ = write!(o, "{v}i");
            Ok(())
        })
    }

    /// Adds an unsigned integer field (`42u`); InfluxDB 1.x before 1.8 does not accept it.
    pub fn uint(self, key: &str, v: u64) -> Self {
        self.field(key, |o| {
            let _ = write!(o, "{v}u");
            Ok(())
        })
    }

    /// Adds a boolean field (`true` / `false`).
    pub fn bool(self, key: &str, v: bool) -> Self {
        self.field(key, |o| {
            o.push_str(if v { "true" } else { "false" });
            Ok(())
        })
    }

    /// Adds a string field, double-quoted, with `"` and `\` escaped; an empty string is `""`.
    pub fn string(self, key: &str, v: &str) -> Self {
        self.field(key, |o| {
            o.push('"');
            if !v.is_empty() {
                escape_into(o, v, STRING_ESCAPES, "string field")?;
            }
            o.push('"');
            Ok(())
        })
    }

    /// Ends the line with a nanosecond timestamp and a newline; or undoes it and says why.
    pub fn finish(self, ts_ns: i64) -> Result<(), LineError> {
        let error = self.error.or((self.fields == 0).then_some(LineError::NoFields));
        if let Some(e) = error {
            self.out.truncate(self.start);
            return Err(e);
        }
        let _ = writeln!(self.out, " {ts_ns}");
        Ok(())
    }
}

#[cfg(test)]
#[path = "line_tests.rs"]
mod tests;
