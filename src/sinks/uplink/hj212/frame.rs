//! The HJ 212 frame: `##` + four decimal digits giving the data segment's length in bytes +
//! the data segment (at most 1024 bytes, ASCII) + four hex digits of CRC + `\r\n`
//! (HJ 212-2017 6.3.2; HJ 212-2025 keeps the frame).
//!
//! The CRC is the standard's "ANSI CRC16", which is not the Modbus CRC: the register starts
//! at 0xFFFF and each byte is folded in as `crc = (crc >> 8) ^ byte` before eight rounds of
//! shift-right-and-xor-0xA001. It is printed high byte first; we emit upper case and accept
//! either case.

use std::fmt;

/// Longest data segment a frame may carry (HJ 212-2017 6.3.2).
pub const MAX_SEGMENT: usize = 1024;
/// `##` + four length digits.
const HEAD: usize = 6;
/// Four CRC digits + `\r\n`.
const TAIL: usize = 6;
/// Bytes kept while looking for a frame before the stream is declared garbage.
const MAX_FRAME: usize = HEAD + MAX_SEGMENT + TAIL;

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame does not start with `##`.
    #[error("frame does not start with `##`")]
    MissingHeader,
    /// The four length digits are not decimal digits.
    #[error("length field `{0}` is not four decimal digits")]
    BadLength(String),
    /// The data segment is longer than the standard allows.
    #[error("data segment of {0} bytes exceeds the limit of {MAX_SEGMENT}")]
    TooLong(usize),
    /// The frame's size disagrees with its length field.
    #[error("frame holds {found} bytes where its length field announces {expected}")]
    SizeMismatch {
        /// Bytes the length field announces for the whole frame.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The CRC field is not four hex digits.
    #[error("CRC field `{0}` is not four hex digits")]
    BadCrcField(String),
    /// The CRC does not match the data segment.
    #[error("CRC mismatch: frame says {found}, data segment gives {computed:04X}")]
    CrcMismatch {
        /// The CRC text in the frame.
        found: String,
        /// The CRC computed over the data segment.
        computed: u16,
    },
    /// The frame does not end with `\r\n`.
    #[error("frame does not end with CR LF")]
    MissingTerminator,
    /// The data segment holds a byte outside printable ASCII.
    #[error("data segment holds a non-ASCII or control byte at {0}")]
    NotAscii(usize),
}

impl FrameError {
    /// A bounded name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::MissingHeader => "missing_header",
            FrameError::BadLength(_) => "bad_length",
            FrameError::TooLong(_) => "too_long",
            FrameError::SizeMismatch { .. } => "size_mismatch",
            FrameError::BadCrcField(_) => "bad_crc_field",
            FrameError::CrcMismatch { .. } => "crc_mismatch",
            FrameError::MissingTerminator => "missing_terminator",
            FrameError::NotAscii(_) => "not_ascii",
        }
    }
}

/// The HJ 212 "ANSI CRC16" of `bytes`.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc = (crc >> 8) ^ u16::from(b);
        for _ in 0..8 {
            let out = crc & 1;
            crc >>= 1;
            if out == 1 {
                crc ^= 0xA001;
            }
        }
    }
    crc
}

fn check_ascii(segment: &[u8]) -> Result<(), FrameError> {
    match segment.iter().position(|b| !(0x20..0x7F).contains(b)) {
        Some(at) => Err(FrameError::NotAscii(at)),
        None => Ok(()),
    }
}

/// Wraps a data segment into a frame; refuses a segment over [`MAX_SEGMENT`] bytes or with
/// bytes outside printable ASCII.
pub fn build(segment: &str) -> Result<Vec<u8>, FrameError> {
    let bytes = segment.as_bytes();
    if bytes.len() > MAX_SEGMENT {
        return Err(FrameError::TooLong(bytes.len()));
    }
    check_ascii(bytes)?;
    let mut out = Vec::with_capacity(HEAD + bytes.len() + TAIL);
    out.extend_from_slice(format!("##{:04}", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(format!("{:04X}\r\n", crc16(bytes)).as_bytes());
    Ok(out)
}

fn declared_len(frame: &[u8]) -> Result<usize, FrameError> {
    if !frame.starts_with(b"##") {
        return Err(FrameError::MissingHeader);
    }
    let digits = &frame[2..HEAD.min(frame.len())];
    if digits.len() < 4 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::BadLength(String::from_utf8_lossy(digits).into_owned()));
    }
    let len = digits.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    if len > MAX_SEGMENT {
        return Err(FrameError::TooLong(len));
    }
    Ok(len)
}

/// Checks one complete frame (header, length, CRC in either case, CR LF) and returns its
/// data segment.
pub fn parse(frame: &[u8]) -> Result<&str, FrameError> {
    let len = declared_len(frame)?;
    let expected = HEAD + len + TAIL;
    if frame.len() != expected {
        return Err(FrameError::SizeMismatch {
            expected,
            found: frame.len(),
        });
    }
    let segment = &frame[HEAD..HEAD + len];
    let crc_text = &frame[HEAD + len..HEAD + len + 4];
    if &frame[HEAD + len + 4..] != b"\r\n" {
        return Err(FrameError::MissingTerminator);
    }
    let crc_str = std::str::from_utf8(crc_text)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| FrameError::BadCrcField(String::from_utf8_lossy(crc_text).into_owned()))?;
    let found = u16::from_str_radix(crc_str, 16).map_err(|_| FrameError::BadCrcField(crc_str.to_string()))?;
    let computed = crc16(segment);
    if found != computed {
        return Err(FrameError::CrcMismatch {
            found: crc_str.to_string(),
            computed,
        });
    }
    check_ascii(segment)?;
    // check_ascii guarantees valid UTF-8.
    std::str::from_utf8(segment).map_err(|e| FrameError::NotAscii(e.valid_up_to()))
}

/// Cuts frames out of a byte stream (TCP delivers them in arbitrary pieces). Bytes before a
/// `##` are skipped; a frame that fails its checks is returned as an error and the stream
/// resynchronises at the next `##`.
#[derive(Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl fmt::Debug for Deframer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deframer").field("buffered", &self.buf.len()).finish()
    }
}

impl Deframer {
    /// An empty deframer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame's data segment, an error for a broken frame, or `None` when
    /// more bytes are needed.
    pub fn next_segment(&mut self) -> Option<Result<String, FrameError>> {
        loop {
            let Some(start) = self.buf.windows(2).position(|w| w == b"##") else {
                // Keep a trailing `#` that may begin the next header.
                let keep = usize::from(self.buf.last() == Some(&b'#'));
                let cut = self.buf.len() - keep;
                self.buf.drain(..cut);
                return None;
            };
            self.buf.drain(..start);
            // In `###0101` the frame begins at the last two `#`.
            let extra = self.buf[2..].iter().take_while(|&&b| b == b'#').count();
            self.buf.drain(..extra);
            if self.buf.len() < HEAD {
                return None;
            }
            let len = match declared_len(&self.buf) {
                Ok(len) => len,
                Err(e) => {
                    self.buf.drain(..2);
                    return Some(Err(e));
                }
            };
            let total = HEAD + len + TAIL;
            if self.buf.len() < total {
                if self.buf.len() > MAX_FRAME {
                    self.buf.drain(..2);
                    continue;
                }
                return None;
            }
            let result = parse(&self.buf[..total]).map(str::to_string);
            if result.is_ok() {
                self.buf.drain(..total);
            } else {
                // Resynchronise: a frame may start inside the bytes that failed.
                self.buf.drain(..2);
            }
            return Some(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str =
        "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&";

    #[test]
    fn golden_vector_has_length_0101_and_crc_1c80() {
        assert_eq!(GOLDEN.len(), 101);
        assert_eq!(crc16(GOLDEN.as_bytes()), 0x1C80);
        let frame = build(GOLDEN).unwrap();
        let text = String::from_utf8(frame.clone()).unwrap();
        assert_eq!(text, format!("##0101{GOLDEN}1C80\r\n"));
        assert_eq!(parse(&frame).unwrap(), GOLDEN);
    }

    #[test]
    fn golden_vector_crc_is_not_the_modbus_crc() {
        // The Modbus CRC folds the byte into the low half (`crc ^= byte`) and gives 0759.
        let mut modbus: u16 = 0xFFFF;
        for &b in GOLDEN.as_bytes() {
            modbus ^= u16::from(b);
            for _ in 0..8 {
                modbus = if modbus & 1 == 1 {
                    (modbus >> 1) ^ 0xA001
                } else {
                    modbus >> 1
                };
            }
        }
        assert_eq!(modbus, 0x0759);
        assert_ne!(crc16(GOLDEN.as_bytes()), modbus);
    }

    #[test]
    fn lower_case_crc_is_accepted() {
        let frame = format!("##0101{GOLDEN}1c80\r\n");
        assert_eq!(parse(frame.as_bytes()).unwrap(), GOLDEN);
    }

    #[test]
    fn a_wrong_crc_is_refused_with_both_values() {
        let frame = format!("##0101{GOLDEN}0759\r\n");
        let e = parse(frame.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            FrameError::CrcMismatch {
                found: "0759".into(),
                computed: 0x1C80
            }
        );
        assert!(e.to_string().contains("1C80"));
    }

    #[test]
    fn broken_frames_name_their_fault() {
        assert_eq!(parse(b"#0101").unwrap_err(), FrameError::MissingHeader);
        assert_eq!(parse(b"##01a1xx").unwrap_err().kind(), "bad_length");
        assert_eq!(parse(b"##2000").unwrap_err(), FrameError::TooLong(2000));
        let short = format!("##0102{GOLDEN}1C80\r\n");
        assert_eq!(parse(short.as_bytes()).unwrap_err().kind(), "size_mismatch");
        let no_crlf = format!("##0101{GOLDEN}1C80\n\n");
        assert_eq!(parse(no_crlf.as_bytes()).unwrap_err(), FrameError::MissingTerminator);
        let bad_crc = format!("##0101{GOLDEN}1CXG\r\n");
        assert_eq!(parse(bad_crc.as_bytes()).unwrap_err().kind(), "bad_crc_field");
    }

    #[test]
    fn build_refuses_oversized_and_non_ascii_segments() {
        assert_eq!(build(&"x".repeat(1025)).unwrap_err(), FrameError::TooLong(1025));
        assert!(build(&"x".repeat(1024)).is_ok());
        assert_eq!(build("QN=1;温度").unwrap_err(), FrameError::NotAscii(5));
    }

    #[test]
    fn deframer_reassembles_pieces_and_skips_noise() {
        let frame = build(GOLDEN).unwrap();
        let mut stream = b"noise#".to_vec();
        stream.extend_from_slice(&frame);
        stream.extend_from_slice(&frame);
        let mut d = Deframer::new();
        let mut got = Vec::new();
        for piece in stream.chunks(7) {
            d.push(piece);
            while let Some(seg) = d.next_segment() {
                got.push(seg.unwrap());
            }
        }
        assert_eq!(got, vec![GOLDEN.to_string(), GOLDEN.to_string()]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn deframer_reports_a_corrupt_frame_and_recovers() {
        let mut bad = build(GOLDEN).unwrap();
        bad[20] = b'9';
        let good = build(GOLDEN).unwrap();
        let mut d = Deframer::new();
        d.push(&bad);
        d.push(&good);
        assert_eq!(d.next_segment().unwrap().unwrap_err().kind(), "crc_mismatch");
        assert_eq!(d.next_segment().unwrap().unwrap(), GOLDEN);
        assert!(d.next_segment().is_none());
    }
}
