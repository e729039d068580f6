//! The on-disk record frame of the durable buffer, and the scan that finds every intact
//! frame in a segment even after a torn write or a flipped byte. Pure: bytes in, frames out.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "HGQ1"
//!      4     4  payload length, u32 little-endian
//!      8     8  sequence number, u64 LE (strictly increasing across the whole buffer)
//!     16     8  creation time, ns since the epoch, i64 LE
//!     24     4  item count (readings in the batch), u32 LE
//!     28     4  CRC-32 (IEEE) of bytes 4..28 and of the payload
//!     32     n  payload
//! ```
//!
//! The CRC covers the length, so a damaged length is caught like a damaged payload; the
//! magic lets the scan find the next frame after damage without trusting any length.

/// Marks the start of every frame.
pub const MAGIC: [u8; 4] = *b"HGQ1";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 32;

/// Where an intact frame lies and what its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Byte offset of the frame (its magic) in the segment.
    pub offset: u64,
    /// Payload length.
    pub len: u32,
    /// Sequence number.
    pub seq: u64,
    /// Creation time, ns since the epoch.
    pub created_ns: i64,
    /// Items the payload carries (for drop counts).
    pub items: u32,
}

impl FrameInfo {
    /// Offset of the first byte after the frame.
    pub fn end(&self) -> u64 {
        self.offset + HEADER_LEN as u64 + u64::from(self.len)
    }
}

/// Everything a scan found in one segment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Intact frames in file order.
    pub frames: Vec<FrameInfo>,
    /// Damaged or torn stretches skipped (each counted once, however long).
    pub damaged: u64,
}

/// Writes one frame (header and payload) to the end of `out`.
pub fn encode(out: &mut Vec<u8>, seq: u64, created_ns: i64, items: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.reserve(HEADER_LEN + payload.len());
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&created_ns.to_le_bytes());
    out.extend_from_slice(&items.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[start + 4..start + 28]);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The frame starting at `at`, if one is there whole and its CRC holds.
pub fn frame_at(bytes: &[u8], at: usize) -> Option<FrameInfo> {
    let header = bytes.get(at..at.checked_add(HEADER_LEN)?)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len = u32_at(header, 4);
    let payload = bytes.get(at + HEADER_LEN..(at + HEADER_LEN).checked_add(len as usize)?)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&header[4..28]);
    h.update(payload);
    if h.finalize() != u32_at(header, 28) {
        return None;
    }
    Some(FrameInfo {
        offset: at as u64,
        len,
        seq: u64_at(header, 8),
        created_ns: u64_at(header, 16) as i64,
        items: u32_at(header, 24),
    })
}

/// Finds every intact frame; a damaged stretch is skipped up to the next intact frame.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0;
    while pos < bytes.len() {
        if let Some(f) = frame_at(bytes, pos) {
            pos = f.end() as usize;
            out.frames.push(f);
            continue;
        }
        out.damaged += 1;
        pos = next_frame(bytes, pos + 1).unwrap_or(bytes.len());
    }
    out
}

fn next_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + HEADER_LEN <= bytes.len() {
        let rel = bytes[at..].windows(4).position(|w| w == MAGIC)?;
        at += rel;
        if frame_at(bytes, at).is_some() {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<FrameInfo>) {
        let mut bytes = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            encode(&mut bytes, i as u64 + 1, 1000 + i as i64, p.len() as u32, p);
        }
        let s = scan(&bytes);
        assert_eq!(s.damaged, 0);
        (bytes, s.frames)
    }

    #[test]
    fn frames_round_trip_with_their_header() {
        let (bytes, frames) = segment(&[b"a=1 1\n".to_vec(), Vec::new(), b"HGQ1 inside".to_vec()]);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].seq, 3);
        assert_eq!(frames[2].created_ns, 1002);
        assert_eq!(frames[2].items, 11);
        let f = frames[0];
        assert_eq!(&bytes[f.offset as usize + HEADER_LEN..f.end() as usize], b"a=1 1\n");
    }

    #[test]
    fn a_torn_tail_is_one_damaged_stretch() {
        let (bytes, frames) = segment(&[vec![7; 100], vec![8; 100]]);
        let s = scan(&bytes[..bytes.len() - 1]);
        assert_eq!(s.frames, frames[..1]);
        assert_eq!(s.damaged, 1);
    }

    proptest! {
        /// Truncating a segment anywhere keeps exactly the frames that lie wholly before the cut.
        #[test]
        fn truncation_at_any_byte_loses_only_the_torn_frame(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let (bytes, frames) = segment(&payloads);
            let cut = cut.index(bytes.len() + 1);
            let s = scan(&bytes[..cut]);
            let want: Vec<_> = frames.iter().copied().filter(|f| f.end() as usize <= cut).collect();
            prop_assert_eq!(&s.frames, &want);
            let torn = frames.iter().any(|f| (f.offset as usize) < cut && f.end() as usize > cut);
            prop_assert_eq!(s.damaged, u64::from(torn));
        }

        /// Changing any one byte loses exactly the frame that holds it, and is counted.
        #[test]
        fn a_corrupted_byte_loses_only_the_frame_that_holds_it(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
            at in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let (mut bytes, frames) = segment(&payloads);
            let at = at.index(bytes.len());
            bytes[at] ^= xor;
            let s = scan(&bytes);
            let want: Vec<_> = frames.iter().copied().filter(|f| !(f.offset as usize <= at && at < f.end() as usize)).collect();
            prop_assert_eq!(&s.frames, &want);
            prop_assert_eq!(s.damaged, 1);
        }
    }
}
