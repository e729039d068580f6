//! Splits a DTU's byte stream into heartbeats and Modbus answer frames. Pure: bytes in,
//! pieces out, so every interleaving a cellular link produces is unit-tested.
//!
//! Heartbeats are recognised at the head of the buffer, i.e. before and between frames, and
//! removed: they never reach the decoder. Read answers delimit themselves (RTU: function and
//! byte count, checked by CRC; TCP: the MBAP length), so a frame is cut out without knowing the
//! request it answers; which request that is, is the link's business. Bytes that start no
//! valid frame are dropped one at a time (counted) until a frame or heartbeat lines up.

use crate::config::dtu::{DtuFraming, Matcher};
use crate::sources::modbus::frame::{MBAP_LEN, crc16};

/// Most bytes held while waiting for a frame to complete; more means the stream is garbage.
const MAX_PENDING: usize = 1024;

/// One piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A heartbeat packet, removed.
    Heartbeat,
    /// A complete Modbus answer (RTU with a good CRC, or a TCP ADU).
    Frame(Vec<u8>),
    /// Bytes that belong to nothing, dropped.
    Garbage(usize),
}

/// Stream splitter of one connection.
#[derive(Debug)]
pub struct Framer {
    framing: DtuFraming,
    heartbeat: Option<Matcher>,
    buf: Vec<u8>,
}

fn is_read_function(fc: u8) -> bool {
    matches!(fc & 0x7f, 1..=4)
}

impl Framer {
    /// A splitter for `framing` with the station's heartbeat, if any.
    pub fn new(framing: DtuFraming, heartbeat: Option<Matcher>) -> Self {
        Self {
            framing,
            heartbeat,
            buf: Vec::with_capacity(64),
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes waiting for the rest of their frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Drops what is pending (a partial frame that never completed); returns how many bytes.
    pub fn clear(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        n
    }

    /// The next complete piece, or `None` until more bytes arrive.
    pub fn next_piece(&mut self) -> Option<Piece> {
        if self.buf.is_empty() {
            return None;
        }
        if let Some(hb) = &self.heartbeat {
            if let Some(n) = hb.match_len(&self.buf) {
                self.buf.drain(..n);
                return Some(Piece::Heartbeat);
            }
            if hb.could_complete(&self.buf) {
                return None;
            }
        }
        let need = match self.framing {
            DtuFraming::Rtu => self.rtu_len(),
            DtuFraming::Tcp => self.tcp_len(),
        };
        match need {
            Err(()) => Some(self.garbage(1)),
            Ok(None) if self.buf.len() > MAX_PENDING => Some(self.garbage(self.buf.len())),
            Ok(None) => None,
            Ok(Some(n)) if self.buf.len() < n => None,
            Ok(Some(n)) => {
                if self.framing == DtuFraming::Rtu {
                    let (body, crc) = self.buf[..n].split_at(n - 2);
                    if crc16(body) != u16::from_le_bytes([crc[0], crc[1]]) {
                        return Some(self.garbage(1));
                    }
                }
                Some(Piece::Frame(self.buf.drain(..n).collect()))
            }
        }
    }

    fn garbage(&mut self, n: usize) -> Piece {
        self.buf.drain(..n);
        Piece::Garbage(n)
    }

    /// Length of the RTU answer at the head: `Err` if the head can start none.
    fn rtu_len(&self) -> Result<Option<usize>, ()> {
        let Some(&fc) = self.buf.get(1) else {
            return Ok(None);
        };
        if !is_read_function(fc) {
            return Err(());
        }
        if fc & 0x80 != 0 {
            return Ok(Some(5));
        }
        match self.buf.get(2) {
            None => Ok(None),
            // 125 registers (250 bytes) or 2000 bits (250 bytes) at most.
            Some(&bc) if bc == 0 || bc > 250 => Err(()),
            Some(&bc) => Ok(Some(5 + usize::from(bc))),
        }
    }

    /// Length of the TCP ADU at the head: `Err` if the head can start none.
    fn tcp_len(&self) -> Result<Option<usize>, ()> {
        if self.buf.len() < 2 {
            return Ok(None);
        }
        let check = |i: usize, ok: &dyn Fn(u8) -> bool| self.buf.get(i).is_none_or(|&b| ok(b));
        // Protocol id 0, length high byte 0, a read function.
        if !check(2, &|b| b == 0) || !check(3, &|b| b == 0) || !check(4, &|b| b == 0) || !check(7, &is_read_function) {
            return Err(());
        }
        let Some(&len) = self.buf.get(5) else {
            return Ok(None);
        };
        if !(3..=253).contains(&len) {
            return Err(());
        }
        Ok(Some(MBAP_LEN - 1 + usize::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtu(unit: u8, fc: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![unit, fc, data.len() as u8];
        f.extend_from_slice(data);
        let crc = crc16(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    }

    fn all(f: &mut Framer) -> Vec<Piece> {
        std::iter::from_fn(|| f.next_piece()).collect()
    }

    #[test]
    fn heartbeats_before_between_and_after_frames_are_removed() {
        let mut f = Framer::new(DtuFraming::Rtu, Some(Matcher::Bytes(b"HB".to_vec())));
        let a = rtu(1, 3, &[0, 42]);
        let b = rtu(2, 4, &[1, 2, 3, 4]);
        let mut s = b"HB".to_vec();
        s.extend(&a);
        s.extend(b"HBHB");
        s.extend(&b);
        s.extend(b"H");
        f.push(&s);
        assert_eq!(
            all(&mut f),
            vec![
                Piece::Heartbeat,
                Piece::Frame(a),
                Piece::Heartbeat,
                Piece::Heartbeat,
                Piece::Frame(b)
            ]
        );
        // Half a heartbeat waits for its other half.
        assert_eq!(f.pending(), 1);
        f.push(b"B");
        assert_eq!(all(&mut f), vec![Piece::Heartbeat]);
    }

    #[test]
    fn a_frame_split_across_reads_completes_and_noise_is_dropped_bytewise() {
        let mut f = Framer::new(DtuFraming::Rtu, None);
        let a = rtu(7, 3, &[0, 1, 0, 2]);
        f.push(&[0x00, 0xff]);
        f.push(&a[..4]);
        assert_eq!(all(&mut f), vec![Piece::Garbage(1), Piece::Garbage(1)]);
        f.push(&a[4..]);
        assert_eq!(all(&mut f), vec![Piece::Frame(a.clone())]);
        // A bad CRC is not a frame.
        let mut bad = a.clone();
        bad[3] ^= 1;
        f.push(&bad);
        let pieces = all(&mut f);
        assert!(pieces.iter().all(|p| matches!(p, Piece::Garbage(_))), "{pieces:?}");
    }

    #[test]
    fn tcp_frames_are_cut_by_their_mbap_length() {
        let mut f = Framer::new(DtuFraming::Tcp, Some(Matcher::Bytes(vec![0xfe])));
        let adu = [0, 9, 0, 0, 0, 5, 1, 3, 2, 0, 42];
        let mut s = vec![0xfe];
        s.extend(adu);
        s.push(0xfe);
        f.push(&s);
        assert_eq!(
            all(&mut f),
            vec![Piece::Heartbeat, Piece::Frame(adu.to_vec()), Piece::Heartbeat]
        );
    }
}
