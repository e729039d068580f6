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
    /// Where each skipped stretch starts and how many bytes it spans, in file order.
    pub damage: Vec<(u64, u64)>,
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

/// Why a frame read back from where the index says it lies is not the record written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The bytes end before the frame does (a torn or truncated write).
    #[error("short read")]
    Short,
    /// No magic where the frame should start.
    #[error("bad magic")]
    Magic,
    /// The header's length is not the length recorded when it was written.
    #[error("length {found}, expected {expected}")]
    Length {
        /// Length in the header.
        found: u32,
        /// Length recorded at the append.
        expected: u32,
    },
    /// The CRC does not match the header and payload.
    #[error("checksum mismatch")]
    Checksum,
    /// An intact frame, but of another record.
    #[error("sequence {found}, expected {expected}")]
    Sequence {
        /// Sequence in the header.
        found: u64,
        /// Sequence asked for.
        expected: u64,
    },
}

impl Fault {
    /// A bounded name for logs and labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Short => "short",
            Fault::Magic => "magic",
            Fault::Length { .. } => "length",
            Fault::Checksum => "checksum",
            Fault::Sequence { .. } => "sequence",
        }
    }
}

/// Checks that `bytes` (read from where record `seq` of payload length `len` was written)
/// hold exactly that frame: magic, length, CRC and sequence. Never trusts the index alone,
/// so bytes of a failed or foreign write are refused rather than sent.
pub fn verify(bytes: &[u8], seq: u64, len: u32) -> Result<(), Fault> {
    let header = bytes.get(..HEADER_LEN).ok_or(Fault::Short)?;
    if header[..4] != MAGIC {
        return Err(Fault::Magic);
    }
    let found = u32_at(header, 4);
    if found != len {
        return Err(Fault::Length { found, expected: len });
    }
    let payload = bytes.get(HEADER_LEN..HEADER_LEN + len as usize).ok_or(Fault::Short)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&header[4..28]);
    h.update(payload);
    if h.finalize() != u32_at(header, 28) {
        return Err(Fault::Checksum);
    }
    let found = u64_at(header, 8);
    if found != seq {
        return Err(Fault::Sequence { found, expected: seq });
    }
    Ok(())
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
        let end = next_frame(bytes, pos + 1).unwrap_or(bytes.len());
        out.damage.push((pos as u64, (end - pos) as u64));
        pos = end;
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
        assert_eq!(
            s.damage,
            vec![(frames[1].offset, frames[1].end() - frames[1].offset - 1)]
        );
    }

    #[test]
    fn verify_accepts_only_the_exact_record() {
        let mut bytes = Vec::new();
        encode(&mut bytes, 9, 5, 1, b"a=1 1\n");
        assert_eq!(verify(&bytes, 9, 6), Ok(()));
        assert_eq!(verify(&bytes, 8, 6), Err(Fault::Sequence { found: 9, expected: 8 }));
        assert_eq!(verify(&bytes, 9, 7), Err(Fault::Length { found: 6, expected: 7 }));
        assert_eq!(verify(&bytes[..bytes.len() - 1], 9, 6), Err(Fault::Short));
        let mut spliced = bytes.clone();
        spliced[HEADER_LEN + 2] = 0;
        assert_eq!(verify(&spliced, 9, 6), Err(Fault::Checksum));
        // The bytes a torn write leaves before the frame: the read lands mid-frame.
        let mut shifted = vec![0x48, 0x47];
        shifted.extend_from_slice(&bytes);
        assert_eq!(verify(&shifted, 9, 6), Err(Fault::Magic));
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
