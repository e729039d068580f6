//! The grammar shared by every coal-mine file: fields separated by `;`, each record ended by
//! `~`, the file ended by `||`, no line breaks; then the bytes in UTF-8 or GBK.

use std::borrow::Cow;
use std::fmt::Write as _;

use jiff::tz::TimeZone;

use super::config::TextEncoding;
use crate::model::Timestamp;
use crate::sinks::uplink::time;

/// Separates the fields of a record.
pub const FIELD_SEP: char = ';';
/// Ends a record (the header too).
pub const RECORD_END: char = '~';
/// Ends a file.
pub const FILE_END: &str = "||";
/// Times in records and headers: `yyyy-MM-dd HH:mm:ss`, local to the platform's zone.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Times in file names: `yyyyMMddHHmmss`.
pub const NAME_TIME_FORMAT: &str = "%Y%m%d%H%M%S";

/// Text taken from outside (locations, codes) with the grammar's reserved characters replaced
/// by their full-width forms, so a stray `;` in a place name cannot shift the fields.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.contains([';', '~', '|', '\r', '\n']) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                ';' => '；',
                '~' => '～',
                '|' => '｜',
                '\r' | '\n' => ' ',
                c => c,
            })
            .collect(),
    )
}

/// Builds one file's text, record by record.
#[derive(Debug)]
pub struct FileText {
    buf: String,
    fresh_record: bool,
}

impl FileText {
    /// A file starting with the header `mineCode;mineName;fileTime~`.
    pub fn with_header(mine_code: &str, mine_name: &str, file_time: &str, capacity: usize) -> Self {
        let mut text = Self::bare(capacity);
        text.field(mine_code);
        text.field(mine_name);
        text.field(file_time);
        text.end_record();
        text
    }

    /// Text without a header: one definition line's fields, reused in later files.
    pub fn bare(capacity: usize) -> Self {
        Self {
            buf: String::with_capacity(capacity),
            fresh_record: true,
        }
    }

    /// The fields written so far (for [`FileText::bare`]), without a record end.
    pub fn into_fields(self) -> String {
        self.buf
    }

    /// Fields rendered before (by [`FileText::into_fields`]), written as they are.
    pub fn raw_fields(&mut self, fields: &str) {
        self.sep();
        self.buf.push_str(fields);
    }

    fn sep(&mut self) {
        if !self.fresh_record {
            self.buf.push(FIELD_SEP);
        }
        self.fresh_record = false;
    }

    /// A text field (cleaned of reserved characters).
    pub fn field(&mut self, text: &str) {
        self.sep();
        self.buf.push_str(&clean(text));
    }

    /// An optional text field: empty when absent.
    pub fn opt(&mut self, text: Option<&str>) {
        self.field(text.unwrap_or(""));
    }

    /// A number with `decimals` places; empty when absent or not finite (never a made-up value).
    pub fn num(&mut self, value: Option<f64>, decimals: u8) {
        self.sep();
        if let Some(v) = value.filter(|v| v.is_finite()) {
            // Writing to a String cannot fail.
            let _ = write!(self.buf, "{v:.prec$}", prec = usize::from(decimals));
        }
    }

    /// An integer field.
    pub fn int(&mut self, value: u64) {
        self.sep();
        let _ = write!(self.buf, "{value}");
    }

    /// Ends the current record.
    pub fn end_record(&mut self) {
        self.buf.push(RECORD_END);
        self.fresh_record = true;
    }

    /// The complete text, `||` appended.
    pub fn finish(mut self) -> String {
        self.buf.push_str(FILE_END);
        self.buf
    }
}

/// The text as bytes in `encoding`, and how many characters GBK could not hold (written `?`).
pub fn to_bytes(text: String, encoding: TextEncoding) -> (Vec<u8>, usize) {
    match encoding {
        TextEncoding::Utf8 => (text.into_bytes(), 0),
        TextEncoding::Gbk => {
            let (bytes, _, had_errors) = encoding_rs::GBK.encode(&text);
            if !had_errors {
                return (bytes.into_owned(), 0);
            }
            // encoding_rs writes an unmappable character as an HTML reference (`&#128512;`),
            // whose `;` would split a field: replace such characters with `?` instead.
            let mut replaced = 0;
            let mut one = [0u8; 4];
            let safe: String = text
                .chars()
                .map(|c| {
                    let (_, _, bad) = encoding_rs::GBK.encode(c.encode_utf8(&mut one));
                    if bad {
                        replaced += 1;
                        '?'
                    } else {
                        c
                    }
                })
                .collect();
            let (bytes, _, _) = encoding_rs::GBK.encode(&safe);
            (bytes.into_owned(), replaced)
        }
    }
}

/// Renders collection times, remembering the last second rendered (a real-time file's records
/// mostly share one collection time).
#[derive(Debug)]
pub struct TimeText {
    zone: TimeZone,
    last: Option<(i64, String)>,
}

impl TimeText {
    /// Renders in `zone`.
    pub fn new(zone: TimeZone) -> Self {
        Self { zone, last: None }
    }

    /// `ts` as `yyyy-MM-dd HH:mm:ss` in the zone.
    pub fn record(&mut self, ts: Timestamp) -> &str {
        let secs = ts.as_nanos().div_euclid(1_000_000_000);
        if self.last.as_ref().is_none_or(|(s, _)| *s != secs) {
            self.last = Some((secs, time::render(ts, &self.zone, TIME_FORMAT)));
        }
        self.last.as_ref().map_or("", |(_, t)| t.as_str())
    }

    /// `ts` as `yyyyMMddHHmmss` in the zone, for a file name.
    pub fn name(&self, ts: Timestamp) -> String {
        time::render(ts, &self.zone, NAME_TIME_FORMAT)
    }
}
