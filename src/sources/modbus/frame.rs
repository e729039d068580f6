//! Modbus read requests and responses on the wire, for TCP (MBAP header) and RTU (CRC-16).
//!
//! Pure functions over byte slices: no I/O, so every malformed answer a device or a noisy line
//! can produce (short frames, wrong byte counts, bad CRCs, another unit's answer, a transaction
//! id from an earlier request) is a unit- and property-tested [`FrameError`], never a panic.
//!
//! Wire formats (Modbus Application Protocol v1.1b3 §6.1–6.4, §7; Modbus over Serial Line
//! v1.02 §2.5.1; Modbus Messaging on TCP/IP v1.0b §3.1.3):
//! - request PDU: function (1), start address (2), quantity (2), all big-endian;
//! - response PDU: function (1), byte count (1), data; an exception is function | 0x80, code;
//! - TCP ADU: transaction id (2), protocol id 0 (2), length of what follows (2), unit (1), PDU;
//! - RTU ADU: unit (1), PDU, CRC-16/MODBUS (2, low byte first).

use super::register::RegisterFunction;

/// Modbus Application Protocol v1.1b3 §6.3/§6.4: at most 125 registers per read request.
pub const MAX_REGISTERS_PER_READ: u16 = 125;
/// Modbus Application Protocol v1.1b3 §6.1/§6.2: at most 2000 coils or inputs per read request.
pub const MAX_BITS_PER_READ: u16 = 2000;
/// Bytes of a TCP MBAP header including the unit id.
pub const MBAP_LEN: usize = 7;

/// One read request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    /// Table read.
    pub function: RegisterFunction,
    /// First item.
    pub start: u16,
    /// Items read (registers or bits).
    pub count: u16,
}

impl ReadRequest {
    /// Data bytes a correct answer carries.
    pub fn data_bytes(&self) -> usize {
        if self.function.is_bits() {
            usize::from(self.count).div_ceil(8)
        } else {
            2 * usize::from(self.count)
        }
    }

    fn pdu(&self) -> [u8; 5] {
        let [sh, sl] = self.start.to_be_bytes();
        let [ch, cl] = self.count.to_be_bytes();
        [self.function.code(), sh, sl, ch, cl]
    }
}

/// A well-formed answer: the items read, one word per register or one 0/1 word per bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The data asked for.
    Data(Vec<u16>),
    /// The device refused with this exception code (§7): 1 illegal function, 2 illegal data
    /// address, 3 illegal data value, 4 device failure, 6 busy, 0x0B gateway target failed…
    Exception(u8),
}

/// Exception code 02: the request touched an address the device does not serve.
pub const ILLEGAL_DATA_ADDRESS: u8 = 0x02;

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the frame's own header promises.
    #[error("frame too short: {got} bytes, need {need}")]
    Short {
        /// Bytes received.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
    /// RTU checksum mismatch: line noise or a collision.
    #[error("bad CRC: frame says {got:#06x}, computed {computed:#06x}")]
    BadCrc {
        /// CRC in the frame.
        got: u16,
        /// CRC of the bytes.
        computed: u16,
    },
    /// An answer from another unit id.
    #[error("answer from unit {got}, expected {expected}")]
    WrongUnit {
        /// Unit in the answer.
        got: u8,
        /// Unit asked.
        expected: u8,
    },
    /// A TCP answer to another transaction (a late answer to an earlier request).
    #[error("answer to transaction {got}, expected {expected}")]
    WrongTransaction {
        /// Transaction id in the answer.
        got: u16,
        /// Transaction id sent.
        expected: u16,
    },
    /// The MBAP protocol id is not 0 (not Modbus), or its length field is impossible.
    #[error("bad MBAP header: protocol {protocol}, length {length}")]
    BadHeader {
        /// Protocol id.
        protocol: u16,
        /// Length field.
        length: u16,
    },
    /// An answer to another function code.
    #[error("answer has function code {got:#04x}, expected {expected:#04x}")]
    WrongFunction {
        /// Function code in the answer.
        got: u8,
        /// Function code sent.
        expected: u8,
    },
    /// The byte count disagrees with the request or with the frame length.
    #[error("byte count {got}, expected {expected}")]
    WrongByteCount {
        /// Byte count in the answer (or bytes present).
        got: usize,
        /// Bytes expected for the request.
        expected: usize,
    },
}

impl FrameError {
    /// Bounded name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::Short { .. } => "short_frame",
            FrameError::BadCrc { .. } => "bad_crc",
            FrameError::WrongUnit { .. } => "wrong_unit",
            FrameError::WrongTransaction { .. } => "wrong_transaction",
            FrameError::BadHeader { .. } => "bad_header",
            FrameError::WrongFunction { .. } => "wrong_function",
            FrameError::WrongByteCount { .. } => "wrong_byte_count",
        }
    }
}

/// CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF), Serial Line v1.02 §6.2.2.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// The TCP ADU of a read request.
pub fn encode_tcp(transaction: u16, unit: u8, req: &ReadRequest) -> [u8; 12] {
    let [th, tl] = transaction.to_be_bytes();
    let p = req.pdu();
    [th, tl, 0, 0, 0, 6, unit, p[0], p[1], p[2], p[3], p[4]]
}

/// The RTU ADU of a read request.
pub fn encode_rtu(unit: u8, req: &ReadRequest) -> [u8; 8] {
    let p = req.pdu();
    let mut f = [unit, p[0], p[1], p[2], p[3], p[4], 0, 0];
    let [lo, hi] = crc16(&f[..6]).to_le_bytes();
    f[6] = lo;
    f[7] = hi;
    f
}

/// Bytes still to read after a TCP header: the MBAP length field counts the unit id, which
/// the header already holds. Errors on an impossible header.
pub fn tcp_body_len(header: &[u8]) -> Result<usize, FrameError> {
    if header.len() < MBAP_LEN {
        return Err(FrameError::Short {
            got: header.len(),
            need: MBAP_LEN,
        });
    }
    let protocol = u16::from_be_bytes([header[2], header[3]]);
    let length = u16::from_be_bytes([header[4], header[5]]);
    // A read answer's PDU is at most 2 + 250 bytes (125 registers); anything longer is not one.
    if protocol != 0 || !(2..=254).contains(&length) {
        return Err(FrameError::BadHeader { protocol, length });
    }
    Ok(usize::from(length) - 1)
}

/// Parses a whole TCP ADU answering `req`.
pub fn parse_tcp(frame: &[u8], transaction: u16, unit: u8, req: &ReadRequest) -> Result<Answer, FrameError> {
    let body = tcp_body_len(frame)?;
    if frame.len() != MBAP_LEN + body {
        return Err(FrameError::Short {
            got: frame.len(),
            need: MBAP_LEN + body,
        });
    }
    let got = u16::from_be_bytes([frame[0], frame[1]]);
    if got != transaction {
        return Err(FrameError::WrongTransaction {
            got,
            expected: transaction,
        });
    }
    // Unit 0 and 255 are sent back unchanged by TCP devices; a gateway answers with the unit.
    if frame[6] != unit {
        return Err(FrameError::WrongUnit {
            got: frame[6],
            expected: unit,
        });
    }
    parse_pdu(&frame[MBAP_LEN..], req)
}

/// How many bytes a complete RTU answer to `req` has, judged from its first bytes: `Ok(None)`
/// while fewer than three bytes are in, `Ok(Some(n))` once the length is known. An answer
/// whose function code is neither the request's nor its exception can never complete.
pub fn rtu_frame_len(buf: &[u8], req: &ReadRequest) -> Result<Option<usize>, FrameError> {
    if buf.len() < 3 {
        return Ok(None);
    }
    let fc = buf[1];
    if fc == req.function.code() {
        Ok(Some(3 + usize::from(buf[2]) + 2))
    } else if fc == req.function.code() | 0x80 {
        Ok(Some(5))
    } else {
        Err(FrameError::WrongFunction {
            got: fc,
            expected: req.function.code(),
        })
    }
}

/// Parses a whole RTU ADU answering `req` from `unit`.
pub fn parse_rtu(frame: &[u8], unit: u8, req: &ReadRequest) -> Result<Answer, FrameError> {
    if frame.len() < 5 {
        return Err(FrameError::Short {
            got: frame.len(),
            need: 5,
        });
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    let got = u16::from_le_bytes([crc[0], crc[1]]);
    let computed = crc16(body);
    if got != computed {
        return Err(FrameError::BadCrc { got, computed });
    }
    if body[0] != unit {
        return Err(FrameError::WrongUnit {
            got: body[0],
            expected: unit,
        });
    }
    parse_pdu(&body[1..], req)
}

/// Parses a response PDU (function code onwards) to `req`.
pub fn parse_pdu(pdu: &[u8], req: &ReadRequest) -> Result<Answer, FrameError> {
    let expected_fc = req.function.code();
    let Some(&fc) = pdu.first() else {
        return Err(FrameError::Short { got: 0, need: 2 });
    };
    if fc == expected_fc | 0x80 {
        return match pdu {
            [_, code] => Ok(Answer::Exception(*code)),
            _ => Err(FrameError::WrongByteCount {
                got: pdu.len().saturating_sub(1),
                expected: 1,
            }),
        };
    }
    if fc != expected_fc {
        return Err(FrameError::WrongFunction {
            got: fc,
            expected: expected_fc,
        });
    }
    let Some(&count) = pdu.get(1) else {
        return Err(FrameError::Short {
            got: pdu.len(),
            need: 2,
        });
    };
    let expected = req.data_bytes();
    let data = &pdu[2..];
    if usize::from(count) != expected || data.len() != expected {
        return Err(FrameError::WrongByteCount {
            got: if usize::from(count) != expected {
                usize::from(count)
            } else {
                data.len()
            },
            expected,
        });
    }
    let items = if req.function.is_bits() {
        // Bits are packed LSB first, first coil in bit 0 of the first byte (§6.1).
        (0..usize::from(req.count))
            .map(|i| u16::from((data[i / 8] >> (i % 8)) & 1))
            .collect()
    } else {
        data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
    };
    Ok(Answer::Data(items))
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
