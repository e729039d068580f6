//! Splits a DTU's byte stream into heartbeats and Modbus answer frames. Pure: bytes in,
//! pieces out, so every interleaving a cellular link produces is unit-tested.
//!
//! What the reader does with a station's bytes, in order:
//!
//! 1. **Heartbeat at a frame boundary.** A configured heartbeat at the head of the buffer
//!    (before, between or after frames) is removed and reported as [`Piece::Heartbeat`]: it
//!    counts as liveness and never reaches the decoder. Half a heartbeat at the head waits for
//!    its other half, so a heartbeat split across two TCP segments is still one heartbeat.
//! 2. **Frame at the head.** Read answers delimit themselves (RTU: function and byte count,
//!    checked by the CRC; TCP: the MBAP length), so a frame is cut out without knowing the
//!    request it answers; which request that is, is the link's business.
//! 3. **Heartbeat inside a frame.** A DTU packs serial bytes into TCP packets by a gap timer;
//!    a slow device makes it send half an answer, and its heartbeat timer may fire before the
//!    second half. The heartbeat then sits *inside* the frame. Whenever the head is not a
//!    trustworthy frame, the reader looks for the configured heartbeat at each position inside
//!    the frame's span and tries the frame with it taken out:
//!    - RTU: the frame without the heartbeat must pass the CRC; the frame as received fails it
//!      (or its header is impossible). A false match would need both a heartbeat-shaped run
//!      of bytes and a CRC collision (1 in 65,536). A frame that passes its CRC as received is
//!      taken as received, even if its data holds the heartbeat's bytes.
//!    - TCP has no checksum, so the MBAP length alone would cut the frame short by the
//!      heartbeat's length and take heartbeat bytes for data. A reading must first be a
//!      consistent header (protocol id 0, a read function, a byte count that agrees with the
//!      length). Then the reader weighs what each reading leaves behind: the frame as
//!      received is trusted when what follows it is a heartbeat, a frame, or nothing (unless
//!      it holds the heartbeat's bytes after its first byte, or ends with their start: a
//!      heartbeat may have landed inside it, its rest still on its way); it is doubted when what follows can start neither (most likely the tail of a
//!      frame the heartbeat split). A reading without the heartbeat that leaves a clean
//!      boundary wins over the frame as received unless that is trusted too; while bytes
//!      still to come could decide, the reader waits for them, and a complete frame waiting
//!      so is [held](Framer::holding). If no byte comes within a short pause,
//!      [`Framer::settle`] takes the reading that ends exactly where the bytes end (a DTU
//!      sends whole frames, so a fragment left over means a wrong reading), the frame as
//!      received first. Only answers holding the heartbeat's bytes (or ending in their first
//!      byte) pay that pause. What stays undecidable without a checksum: a heartbeat spliced
//!      in where the bytes on both sides make two whole, consistent readings, and a DTU
//!      pausing longer than that pause right after a heartbeat that completes the bytes so
//!      far into a whole answer; the frame is then taken as received (and in the second
//!      case the late rest counted as garbled).
//! 4. **Garbage.** Bytes that start no valid frame, even with a heartbeat taken out, are
//!    dropped one at a time (counted) until a frame or heartbeat lines up.

use crate::sources::dtu::spec::{DtuFraming, Matcher};
use crate::sources::modbus::frame::{MBAP_LEN, crc16};

/// Most bytes held while waiting for a frame to complete; more means the stream is garbage.
const MAX_PENDING: usize = 1024;

/// One piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A heartbeat packet, removed (at a frame boundary or from inside a frame).
    Heartbeat,
    /// A complete Modbus answer (RTU with a good CRC, or a TCP ADU).
    Frame(Vec<u8>),
    /// Bytes that belong to nothing, dropped.
    Garbage(usize),
}

/// How far a frame cut from the head can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// RTU with a good CRC, or TCP followed by nothing, a heartbeat or another frame.
    Sure,
    /// TCP followed by bytes that may still become a heartbeat or a frame, or ending the
    /// stream and holding the heartbeat's bytes (or ending with their start).
    Unsure,
    /// TCP followed by bytes that can start neither.
    Doubtful,
}

/// What the bytes at the head of a view make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// A complete frame of `len` bytes.
    Frame { len: usize, trust: Trust },
    /// The start of a frame; more bytes needed.
    Need,
    /// No frame: the byte at index `at` (a header byte, or the last byte of a frame whose CRC
    /// fails) rules it out.
    Bad { at: usize },
}

/// The head read with a heartbeat taken out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Splice {
    /// The heartbeat at `at`, `len` bytes long, and what the head makes without it.
    Whole { at: usize, len: usize, cut: Cut },
    /// The start of a heartbeat at the end of what arrived: its rest decides.
    Partial,
}

/// Stream splitter of one connection.
#[derive(Debug)]
pub struct Framer {
    framing: DtuFraming,
    heartbeat: Option<Matcher>,
    buf: Vec<u8>,
    /// A complete TCP frame at the head waits for bytes that tell whether a heartbeat split it.
    held: bool,
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
            held: false,
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
        self.held = false;
        n
    }

    /// True while a complete TCP frame at the head waits for the bytes after it to tell
    /// whether a heartbeat landed inside it; the reader calls [`Framer::settle`] when none
    /// come within a short pause.
    pub fn holding(&self) -> bool {
        self.held
    }

    /// No bytes came after a held frame. A heartbeat that split a frame is followed by the
    /// frame's rest within the DTU's packing gap, and a DTU sends whole frames, so after a
    /// pause a reading that ends exactly where the bytes end wins over one that leaves a
    /// fragment behind: the frame as received first, then the frame without a heartbeat
    /// inside; failing both, the frame as received.
    pub fn settle(&mut self) -> Vec<Piece> {
        if !std::mem::take(&mut self.held) {
            return Vec::new();
        }
        let literal = self.cut(&self.buf);
        let splices = self.splices(literal);
        let whole = |len: usize, gone: usize| len + gone == self.buf.len();
        let readings = std::iter::once((None, literal)).chain(splices.iter().filter_map(|s| match *s {
            Splice::Whole { at, len, cut } => Some((Some((at, len)), cut)),
            Splice::Partial => None,
        }));
        let mut choice = None;
        for (heartbeat, cut) in readings {
            let Cut::Frame { len, .. } = cut else { continue };
            let gone = heartbeat.map_or(0, |(_, h)| h);
            if whole(len, gone) {
                choice = Some((heartbeat, len));
                break;
            }
            if heartbeat.is_none() {
                choice = Some((None, len));
            }
        }
        let Some((heartbeat, len)) = choice else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(2);
        if let Some((at, h)) = heartbeat {
            self.buf.drain(at..at + h);
            out.push(Piece::Heartbeat);
        }
        out.push(Piece::Frame(self.buf.drain(..len).collect()));
        out
    }

    /// The next complete piece, or `None` until more bytes arrive.
    pub fn next_piece(&mut self) -> Option<Piece> {
        self.held = false;
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
        let literal = self.cut(&self.buf);
        if let Cut::Frame {
            len,
            trust: Trust::Sure,
        } = literal
        {
            return Some(Piece::Frame(self.buf.drain(..len).collect()));
        }
        // Not a trustworthy frame as received: a heartbeat may have landed inside it.
        let mut undecided = false;
        let mut complete = matches!(literal, Cut::Frame { .. });
        for splice in self.splices(literal) {
            match splice {
                Splice::Whole {
                    at,
                    len,
                    cut: Cut::Frame { trust: Trust::Sure, .. },
                } => {
                    self.buf.drain(at..at + len);
                    return Some(Piece::Heartbeat);
                }
                Splice::Whole {
                    cut: Cut::Frame {
                        trust: Trust::Unsure, ..
                    },
                    ..
                } => {
                    undecided = true;
                    complete = true;
                }
                Splice::Whole { cut: Cut::Need, .. } | Splice::Partial => undecided = true,
                Splice::Whole { .. } => {}
            }
        }
        match literal {
            _ if self.buf.len() > MAX_PENDING => Some(self.garbage(self.buf.len())),
            Cut::Frame { len, .. } if !undecided => Some(Piece::Frame(self.buf.drain(..len).collect())),
            Cut::Bad { .. } if !undecided => Some(self.garbage(1)),
            // Bytes still to come decide; if none come, a complete reading is settled on.
            _ => {
                self.held = undecided && complete;
                None
            }
        }
    }

    /// The head read with each heartbeat found inside the span of `literal` (the head as
    /// received) taken out.
    fn splices(&self, literal: Cut) -> Vec<Splice> {
        let Some(hb) = &self.heartbeat else {
            return Vec::new();
        };
        let last = self.buf.len().saturating_sub(1);
        let span = match literal {
            Cut::Frame { len, .. } => len - 1,
            Cut::Need => last,
            Cut::Bad { at } => at.min(last),
        };
        let mut out = Vec::new();
        for at in 1..=span {
            let rest = &self.buf[at..];
            match hb.match_len(rest) {
                Some(len) => {
                    let view = [&self.buf[..at], &rest[len..]].concat();
                    out.push(Splice::Whole {
                        at,
                        len,
                        cut: self.cut(&view),
                    });
                }
                None if hb.could_complete(rest) => out.push(Splice::Partial),
                None => {}
            }
        }
        out
    }

    fn garbage(&mut self, n: usize) -> Piece {
        self.buf.drain(..n);
        Piece::Garbage(n)
    }

    /// What `view` starts with, by the listener's framing.
    fn cut(&self, view: &[u8]) -> Cut {
        let len = match self.framing {
            DtuFraming::Rtu => rtu_len(view),
            DtuFraming::Tcp => tcp_len(view),
        };
        let len = match len {
            Err(at) => return Cut::Bad { at },
            Ok(None) => return Cut::Need,
            Ok(Some(n)) if view.len() < n => return Cut::Need,
            Ok(Some(n)) => n,
        };
        let trust = match self.framing {
            DtuFraming::Rtu => {
                let (body, crc) = view[..len].split_at(len - 2);
                if crc16(body) != u16::from_le_bytes([crc[0], crc[1]]) {
                    return Cut::Bad { at: len - 1 };
                }
                Trust::Sure
            }
            // A frame that ends the stream and holds the heartbeat's bytes (or ends with their
            // start) may be a heartbeat that landed inside it, the frame's last bytes still on
            // their way: the next bytes tell.
            DtuFraming::Tcp if view.len() == len && self.holds_heartbeat(&view[..len]) => Trust::Unsure,
            DtuFraming::Tcp => self.boundary(&view[len..]),
        };
        Cut::Frame { len, trust }
    }

    /// True if `frame` holds the heartbeat after its first byte, or ends with the start of one.
    fn holds_heartbeat(&self, frame: &[u8]) -> bool {
        self.heartbeat.as_ref().is_some_and(|hb| {
            (1..frame.len()).any(|p| {
                let tail = &frame[p..];
                hb.match_len(tail).is_some() || hb.could_complete(tail)
            })
        })
    }

    /// How well `rest`, the bytes after a TCP frame, fits a frame boundary.
    fn boundary(&self, rest: &[u8]) -> Trust {
        if rest.is_empty() {
            return Trust::Sure;
        }
        if let Some(hb) = &self.heartbeat {
            if hb.match_len(rest).is_some() {
                return Trust::Sure;
            }
            if hb.could_complete(rest) {
                return Trust::Unsure;
            }
        }
        match tcp_len(rest) {
            Err(_) => Trust::Doubtful,
            Ok(Some(n)) if rest.len() >= n => Trust::Sure,
            Ok(_) => Trust::Unsure,
        }
    }
}

/// Length of the RTU answer at the head of `b`: `Err(index)` of the byte that rules one out.
fn rtu_len(b: &[u8]) -> Result<Option<usize>, usize> {
    let Some(&fc) = b.get(1) else {
        return Ok(None);
    };
    if !is_read_function(fc) {
        return Err(1);
    }
    if fc & 0x80 != 0 {
        return Ok(Some(5));
    }
    match b.get(2) {
        None => Ok(None),
        // 125 registers (250 bytes) or 2000 bits (250 bytes) at most.
        Some(&bc) if bc == 0 || bc > 250 => Err(2),
        Some(&bc) => Ok(Some(5 + usize::from(bc))),
    }
}

/// Length of the TCP ADU at the head of `b`: `Err(index)` of the first byte that rules one out.
/// Without a checksum, the header's own consistency is all there is: protocol id 0, a length
/// that fits, a read function, and a byte count that agrees with the length.
fn tcp_len(b: &[u8]) -> Result<Option<usize>, usize> {
    // Protocol id 0 and length high byte 0.
    if let Some(i) = (2..5).find(|&i| b.get(i).is_some_and(|&x| x != 0)) {
        return Err(i);
    }
    let len = match b.get(5) {
        Some(&len) if !(3..=253).contains(&len) => return Err(5),
        Some(&len) => Some(MBAP_LEN - 1 + usize::from(len)),
        None => None,
    };
    let Some(&fc) = b.get(7) else {
        return Ok(len);
    };
    // A read function; an exception carries one code byte, an answer its byte count.
    if !is_read_function(fc) || (fc & 0x80 != 0 && b[5] != 3) {
        return Err(7);
    }
    if fc & 0x80 == 0 && b.get(8).is_some_and(|&bc| usize::from(bc) + 3 != usize::from(b[5])) {
        return Err(8);
    }
    Ok(len)
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

    fn tcp(transaction: u16, unit: u8, fc: u8, data: &[u8]) -> Vec<u8> {
        let mut f = transaction.to_be_bytes().to_vec();
        f.extend([0, 0, 0, data.len() as u8 + 3, unit, fc, data.len() as u8]);
        f.extend_from_slice(data);
        f
    }

    /// Feeds `segments` one push at a time and collects every piece; after the last, the
    /// stream pauses (a held frame settles).
    fn feed(f: &mut Framer, segments: &[&[u8]]) -> Vec<Piece> {
        let mut out = Vec::new();
        for s in segments {
            f.push(s);
            out.extend(all(f));
        }
        out.extend(f.settle());
        out.extend(all(f));
        out
    }

    fn frames(pieces: &[Piece]) -> Vec<Vec<u8>> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Frame(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    fn heartbeats(pieces: &[Piece]) -> usize {
        pieces.iter().filter(|p| **p == Piece::Heartbeat).count()
    }

    /// Every way a heartbeat `hb` can land in answer `a` and its neighbourhood, as TCP
    /// segments: inside the answer at each split point, split itself around a partial answer.
    /// (A regex heartbeat cannot tell its own first half, so it is never split.)
    fn interleavings(a: &[u8], hb: &[u8], splittable: bool) -> Vec<Vec<Vec<u8>>> {
        let mut cases = Vec::new();
        for k in 1..a.len() {
            let (x, y) = a.split_at(k);
            // The heartbeat between the two halves of a split answer.
            cases.push(vec![x.to_vec(), hb.to_vec(), y.to_vec()]);
            // The same, with the periodic heartbeat also right after the answer.
            cases.push(vec![x.to_vec(), hb.to_vec(), [y, hb].concat()]);
            // The heartbeat glued to the first half, or to the second.
            cases.push(vec![[x, hb].concat(), y.to_vec()]);
            cases.push(vec![x.to_vec(), [hb, y].concat()]);
            if splittable && hb.len() > 1 {
                let (h1, h2) = hb.split_at(1);
                // The heartbeat split across two segments, inside the answer.
                cases.push(vec![[x, h1].concat(), [h2, y].concat()]);
                // The heartbeat split across segments just before, and just after, a split answer.
                cases.push(vec![h1.to_vec(), [h2, x].concat(), y.to_vec()]);
                cases.push(vec![x.to_vec(), [y, h1].concat(), h2.to_vec()]);
            }
        }
        cases
    }

    fn check_every_interleaving(framing: DtuFraming, hb: Matcher, hb_bytes: &[u8], answers: &[Vec<u8>]) {
        for a in answers {
            for segments in interleavings(a, hb_bytes, matches!(hb, Matcher::Bytes(_))) {
                let mut f = Framer::new(framing, Some(hb.clone()));
                let refs: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
                let pieces = feed(&mut f, &refs);
                let sent = segments.concat().len() - a.len();
                assert_eq!(
                    frames(&pieces),
                    vec![a.clone()],
                    "{framing:?} {segments:02x?} -> {pieces:?}"
                );
                assert_eq!(
                    heartbeats(&pieces) * hb_bytes.len(),
                    sent,
                    "{segments:02x?} -> {pieces:?}"
                );
                assert!(
                    !pieces.iter().any(|p| matches!(p, Piece::Garbage(_))),
                    "{segments:02x?} -> {pieces:?}"
                );
                assert_eq!(f.pending(), 0, "{segments:02x?}");
            }
        }
    }

    #[test]
    fn a_heartbeat_inside_a_split_rtu_answer_is_taken_out_at_every_split_point() {
        let answers = [
            rtu(1, 3, &[0x41, 0x48, 0x00, 0x00]),
            rtu(2, 4, &[0x00, 0x7d, 0xfe, 0xfe, 0x12, 0x34]),
            rtu(7, 1, &[0x05]),
            vec![1, 0x83, 2, 0xc0, 0xf1],
        ];
        check_every_interleaving(DtuFraming::Rtu, Matcher::Bytes(b"HB".to_vec()), b"HB", &answers);
        check_every_interleaving(
            DtuFraming::Rtu,
            Matcher::Bytes(vec![0xfe, 0xfe]),
            &[0xfe, 0xfe],
            &answers,
        );
        check_every_interleaving(DtuFraming::Rtu, Matcher::Bytes(vec![0x00]), &[0x00], &answers);
        let imei_hb = Matcher::Regex(regex::bytes::Regex::new("^(?:HB:[0-9]{3};)").unwrap());
        check_every_interleaving(DtuFraming::Rtu, imei_hb, b"HB:042;", &answers);
    }

    #[test]
    fn a_heartbeat_inside_a_split_tcp_answer_is_taken_out_at_every_split_point() {
        let answers = [
            tcp(9, 1, 3, &[0x41, 0x48, 0x00, 0x00]),
            tcp(0x0102, 2, 4, &[0x00, 0x7d, 0x12, 0x34, 0x56, 0x78]),
            tcp(300, 7, 1, &[0x05]),
            vec![0, 5, 0, 0, 0, 3, 1, 0x83, 2],
        ];
        check_every_interleaving(DtuFraming::Tcp, Matcher::Bytes(b"HB".to_vec()), b"HB", &answers);
        check_every_interleaving(
            DtuFraming::Tcp,
            Matcher::Bytes(vec![0xfe, 0xfe]),
            &[0xfe, 0xfe],
            &answers,
        );
        check_every_interleaving(DtuFraming::Tcp, Matcher::Bytes(vec![0xfe]), &[0xfe], &answers);
        // A heartbeat that starts like the zeros of an MBAP header and the end of most answers.
        check_every_interleaving(
            DtuFraming::Tcp,
            Matcher::Bytes(vec![0x00, 0xfe]),
            &[0x00, 0xfe],
            &answers,
        );
    }

    #[test]
    fn a_rtu_answer_byte_by_byte_with_a_heartbeat_inside_still_passes_its_crc() {
        let a = rtu(1, 3, &[0x00, 0x7d, 0x01, 0x02]);
        for k in 1..a.len() {
            let mut f = Framer::new(DtuFraming::Rtu, Some(Matcher::Bytes(b"HB".to_vec())));
            let stream = [&a[..k], b"HB", &a[k..]].concat();
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            let pieces = feed(&mut f, &bytes);
            assert_eq!(pieces, vec![Piece::Heartbeat, Piece::Frame(a.clone())], "split at {k}");
        }
    }

    #[test]
    fn answer_data_that_holds_the_heartbeat_bytes_is_taken_as_received() {
        // RTU: the CRC vouches for the frame as received.
        let a = rtu(1, 3, &[b'H', b'B', 0, 1]);
        let mut f = Framer::new(DtuFraming::Rtu, Some(Matcher::Bytes(b"HB".to_vec())));
        assert_eq!(feed(&mut f, &[&a]), vec![Piece::Frame(a.clone())]);
        // TCP: nothing, a heartbeat or another answer after it marks a clean end.
        let t = tcp(1, 1, 3, &[b'H', b'B', 0, 1]);
        let u = tcp(2, 2, 3, &[0, 7]);
        for tail in [&b""[..], b"HB", &u] {
            let mut f = Framer::new(DtuFraming::Tcp, Some(Matcher::Bytes(b"HB".to_vec())));
            let pieces = feed(&mut f, &[&[&t[..], tail].concat()]);
            assert_eq!(frames(&pieces)[0], t, "followed by {tail:02x?}: {pieces:?}");
            assert!(!pieces.iter().any(|p| matches!(p, Piece::Garbage(_))), "{pieces:?}");
        }
    }

    #[test]
    fn a_tcp_answer_ending_in_heartbeat_bytes_is_held_then_taken_as_received() {
        let t = tcp(4, 1, 3, &[0, 1, b'H', b'B']);
        let mut f = Framer::new(DtuFraming::Tcp, Some(Matcher::Bytes(b"HB".to_vec())));
        f.push(&t);
        assert_eq!(all(&mut f), vec![]);
        assert!(
            f.holding(),
            "the last two bytes may be a heartbeat before the frame's rest"
        );
        assert_eq!(f.settle(), vec![Piece::Frame(t.clone())]);
        assert!(!f.holding());
        assert_eq!(f.pending(), 0);
        // A heartbeat after it decides at once.
        f.push(&[&t[..], b"HB"].concat());
        assert_eq!(all(&mut f), vec![Piece::Frame(t), Piece::Heartbeat]);
    }

    #[test]
    fn a_corrupt_rtu_answer_with_heartbeat_bytes_is_still_dropped() {
        let mut a = rtu(1, 3, &[0x00, 0x10, b'H', b'B']);
        a[3] ^= 0x01; // line noise: the CRC fails with or without the heartbeat bytes
        let mut f = Framer::new(DtuFraming::Rtu, Some(Matcher::Bytes(b"HB".to_vec())));
        let good = rtu(1, 3, &[0x00, 0x10, 0x00, 0x11]);
        // Until more bytes come, the heartbeat bytes could be a heartbeat inside the frame.
        assert_eq!(feed(&mut f, &[&a]), vec![]);
        let pieces = feed(&mut f, &[b"HB", &good, &good, &good]);
        let got = frames(&pieces);
        assert!(!got.is_empty(), "{pieces:?}");
        assert!(got.iter().all(|g| *g == good), "only good answers pass: {pieces:?}");
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

    /// Every way to read `s` as heartbeats `hb` and TCP answers (an answer may hold one
    /// heartbeat strictly inside it), by a header check written apart from [`tcp_len`]: the
    /// frames and the heartbeat count of each reading.
    fn readings(s: &[u8], hb: &[u8]) -> Vec<(Vec<Vec<u8>>, usize)> {
        fn answer_len(b: &[u8]) -> Option<usize> {
            if b.len() < 9 || b[2..5] != [0, 0, 0] {
                return None;
            }
            let n = match (b[7], b[8]) {
                (1..=4, bc) if usize::from(bc) + 3 == usize::from(b[5]) => 6 + usize::from(b[5]),
                (fc, _) if fc & 0x80 != 0 && (1..=4).contains(&(fc & 0x7f)) && b[5] == 3 => 9,
                _ => return None,
            };
            (b.len() >= n).then_some(n)
        }
        if s.is_empty() {
            return vec![(Vec::new(), 0)];
        }
        let mut out = Vec::new();
        let mut then = |used: usize, frame: Option<Vec<u8>>, beats: usize| {
            for (mut frames, n) in readings(&s[used..], hb) {
                if let Some(f) = &frame {
                    frames.insert(0, f.clone());
                }
                out.push((frames, n + beats));
            }
        };
        if s.starts_with(hb) {
            then(hb.len(), None, 1);
        }
        if let Some(n) = answer_len(s) {
            then(n, Some(s[..n].to_vec()), 0);
        }
        for at in 1..s.len() {
            if !s[at..].starts_with(hb) {
                continue;
            }
            let view = [&s[..at], &s[at + hb.len()..]].concat();
            if let Some(n) = answer_len(&view).filter(|&n| at < n) {
                then(n + hb.len(), Some(view[..n].to_vec()), 1);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Every way to cut `len` bytes into reads with at most `cuts` cuts, plus byte by byte.
    fn partitions(len: usize, cuts: usize) -> Vec<Vec<usize>> {
        fn go(from: usize, len: usize, left: usize, acc: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            out.push(acc.clone());
            if left == 0 {
                return;
            }
            for c in from..len {
                acc.push(c);
                go(c + 1, len, left - 1, acc, out);
                acc.pop();
            }
        }
        let mut out = Vec::new();
        go(1, len, cuts, &mut Vec::new(), &mut out);
        out.push((1..len).collect());
        out
    }

    fn reads<'a>(s: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut bounds = vec![0];
        bounds.extend(cuts);
        bounds.push(s.len());
        bounds.windows(2).map(|w| &s[w[0]..w[1]]).collect()
    }

    /// A `fe fe` heartbeat before, inside (at every position) and after a TCP answer, and the
    /// next answer after a pause or straight on, the bytes cut into reads at every one, two
    /// and three positions and byte by byte: out come exactly the answers and the heartbeats
    /// sent, nothing garbled, nothing left. Where the bytes also read as other answers and
    /// heartbeats (answer data holding `fe fe`), the reader must still take one whole reading
    /// of them without garbage.
    #[test]
    fn every_cut_of_tcp_answers_with_fe_fe_heartbeats_yields_exact_frames_and_no_garbage() {
        let hb = [0xfe, 0xfe];
        let answers = [
            tcp(1, 1, 3, &[0x00, 0x7d, 0x00, 0x00]),
            tcp(2, 2, 3, &[0x00, 0x4b, 0x00, 0x00]),
            tcp(0x00fe, 1, 3, &[0x00, 0x7d, 0x00, 0x00]),
            tcp(0xfe01, 2, 3, &[0x00, 0x4b, 0x00, 0x00]),
            // (No transaction id `fe fe`: such an answer opens like the heartbeat; the link
            // never sends that id.)
            tcp(3, 1, 3, &[0xfe, 0xfe, 0x00, 0x01]),
            tcp(4, 1, 3, &[0x00, 0xfe, 0xfe, 0x01]),
            tcp(5, 1, 3, &[0x00, 0x01, 0xfe, 0xfe]),
            tcp(6, 1, 3, &[0x00, 0x01, 0x00, 0xfe]),
            tcp(7, 1, 4, &[0xfe, 0xfe]),
            vec![0, 8, 0, 0, 0, 3, 1, 0x83, 2],
        ];
        let next = tcp(0x0102, 2, 3, &[0x00, 0x4b, 0x00, 0x00]);
        let mut checked = 0usize;
        for a in &answers {
            for lead in [false, true] {
                for inside in std::iter::once(None).chain((1..a.len()).map(Some)) {
                    for trail in [false, true] {
                        let mut s = Vec::new();
                        if lead {
                            s.extend(hb);
                        }
                        match inside {
                            Some(k) => s.extend([&a[..k], &hb[..], &a[k..]].concat()),
                            None => s.extend(a),
                        }
                        if trail {
                            s.extend(hb);
                        }
                        let beats = usize::from(lead) + usize::from(inside.is_some()) + usize::from(trail);
                        for (then, pause) in [(false, false), (true, true), (true, false)] {
                            let mut want = vec![a.clone()];
                            let mut all_bytes = s.clone();
                            if then {
                                want.push(next.clone());
                                all_bytes.extend(&next);
                            }
                            let ways = readings(&all_bytes, &hb);
                            assert!(ways.contains(&(want.clone(), beats)), "{all_bytes:02x?}: {ways:02x?}");
                            let cuts = if then { 2 } else { 3 };
                            for p in partitions(s.len(), cuts) {
                                let mut f = Framer::new(DtuFraming::Tcp, Some(Matcher::Bytes(hb.to_vec())));
                                let mut segments = reads(&s, &p);
                                let mut pieces = Vec::new();
                                if then && pause {
                                    pieces.extend(feed(&mut f, &segments));
                                    segments = vec![&next];
                                } else if then {
                                    segments.push(&next);
                                }
                                pieces.extend(feed(&mut f, &segments));
                                checked += 1;
                                let case = format!("{:02x?} -> {pieces:02x?}", reads(&s, &p));
                                assert!(!pieces.iter().any(|p| matches!(p, Piece::Garbage(_))), "{case}");
                                assert_eq!(f.pending(), 0, "{case}");
                                let got = (frames(&pieces), heartbeats(&pieces));
                                if ways.len() == 1 {
                                    assert_eq!(got, (want.clone(), beats), "{case}");
                                } else {
                                    assert!(ways.contains(&got), "{case}: not one of {ways:02x?}");
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    /// A DTU that pauses, after the heartbeat, longer than the reader waits, where the bytes
    /// so far already read as a whole answer with the heartbeat for its last data: without a
    /// checksum that is what the bytes say, so the reader takes them as received and counts
    /// the late rest as garbled (the case a split-answer test must not leave to timing).
    /// Without the pause, the same bytes come out exact.
    #[test]
    fn a_pause_after_heartbeat_bytes_that_complete_an_answer_takes_it_as_received() {
        let hb = [0xfe, 0xfe];
        let a = tcp(1, 1, 3, &[0x00, 0x7d, 0x00, 0x00]);
        for k in [a.len() - 2, a.len() - 1] {
            let (x, y) = a.split_at(k);
            let new = || Framer::new(DtuFraming::Tcp, Some(Matcher::Bytes(hb.to_vec())));
            let mut f = new();
            let straight = feed(&mut f, &[x, &hb, y]);
            assert_eq!(straight, vec![Piece::Heartbeat, Piece::Frame(a.clone())], "cut at {k}");
            let mut f = new();
            let mut pieces = feed(&mut f, &[x, &hb]);
            pieces.extend(feed(&mut f, &[y, &a]));
            let literal = [x, &hb].concat()[..a.len()].to_vec();
            assert_eq!(
                pieces,
                vec![
                    Piece::Frame(literal),
                    Piece::Garbage(1),
                    Piece::Garbage(1),
                    Piece::Frame(a.clone())
                ],
                "cut at {k}"
            );
        }
    }
}
