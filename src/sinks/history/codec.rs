//! The packed block format of both history tiers: a run of one point's samples in one
//! compact blob, in the manner of Gorilla (Pelkonen et al., VLDB 2015): timestamps as
//! delta-of-delta, floats XORed with the previous value of their column. Pure functions, no I/O.
//!
//! Block format 1 (every integer a LEB128 varint, signed ones zigzagged):
//! `version (1 byte) | n | first key (zigzag) | unit exponent (1 byte) | bit stream`.
//! - raw: the key is the timestamp in ns; later timestamps are multiples of `10^unit` ns after
//!   it (a block of whole seconds has unit 9, so a step of 1 s costs a few bits). Per sample:
//!   the delta-of-delta in units, quality (`0` = same as before, else `1` + 3-bit code), and
//!   the value (`0` = none, else `1` + the XOR with the previous value present).
//! - minute: the key is the minute since the epoch, the unit always 0; per minute: the
//!   delta-of-delta of minutes, presence + XOR of min and of max, XOR of sum, and count and
//!   bad (`0` = same as the previous minute, else `1` + the number).
//!
//! Every stored bit pattern is kept exactly (no rounding); decoding a blob that is cut short or
//! corrupt returns [`CodecError`], never panics.

use super::schema::{quality_code, quality_of};
use crate::model::Quality;

/// The format byte this version writes and reads.
pub const FORMAT: u8 = 1;

/// More samples than this in one block is a corrupt header (a block is sealed near 1 KB).
const MAX_SAMPLES: u64 = 1 << 16;

/// A blob this version cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The blob ends before its last sample.
    #[error("block ends early")]
    Truncated,
    /// The header is not one this version writes.
    #[error("bad block header: {0}")]
    Header(&'static str),
    /// A stored quality code is unknown.
    #[error("unknown quality code {0}")]
    Quality(u64),
}

/// One kept raw reading. `value` is `None` when the reading had no finite value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawSample {
    /// Nanoseconds since the epoch.
    pub ts: i64,
    /// Finite value, if any.
    pub value: Option<f64>,
    /// Quality of the reading.
    pub quality: Quality,
}

/// One minute of one point: min/avg/max/count of its good readings and a count of the rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteSample {
    /// Minutes since the epoch.
    pub minute: i64,
    /// Smallest good value.
    pub min: Option<f64>,
    /// Largest good value.
    pub max: Option<f64>,
    /// Sum of good values.
    pub sum: f64,
    /// Good readings.
    pub count: u64,
    /// Readings that were not good.
    pub bad: u64,
}

impl MinuteSample {
    /// A minute with nothing counted yet.
    pub fn empty(minute: i64) -> Self {
        Self {
            minute,
            min: None,
            max: None,
            sum: 0.0,
            count: 0,
            bad: 0,
        }
    }

    /// Counts one reading: good finite values into the statistics, anything else as bad.
    pub fn add(&mut self, value: f64, quality: Quality) {
        if quality == Quality::Good && value.is_finite() {
            self.min = Some(self.min.map_or(value, |m| m.min(value)));
            self.max = Some(self.max.map_or(value, |m| m.max(value)));
            self.sum += value;
            self.count += 1;
        } else {
            self.bad += 1;
        }
    }

    /// Mean of the good values, if any.
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Merges another part of the same minute: min of mins, max of maxes, sums and counts
    /// added, so a minute written in several parts stores the whole minute's aggregate.
    pub fn merge(&mut self, o: &MinuteSample) {
        self.min = pick(self.min, o.min, f64::min);
        self.max = pick(self.max, o.max, f64::max);
        self.sum += o.sum;
        self.count += o.count;
        self.bad += o.bad;
    }
}

fn pick(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

/// Appends bits most significant first.
#[derive(Debug, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = a new byte is needed).
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        self.bits(u64::from(b), 1);
    }

    /// Writes the low `n` bits of `v` (n ≤ 64).
    fn bits(&mut self, v: u64, mut n: u32) {
        while n > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(n);
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used = (self.used + take) % 8;
            n -= take;
        }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// Reads bits most significant first.
#[derive(Debug)]
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bits(&mut self, mut n: u32) -> Result<u64, CodecError> {
        let mut v = 0u64;
        while n > 0 {
            let byte = *self.bytes.get(self.pos / 8).ok_or(CodecError::Truncated)?;
            let off = (self.pos % 8) as u32;
            let take = (8 - off).min(n);
            let chunk = (u64::from(byte) >> (8 - off - take)) & ((1u64 << take) - 1);
            v = if take == 64 { chunk } else { (v << take) | chunk };
            self.pos += take as usize;
            n -= take;
        }
        Ok(v)
    }

    fn bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.bits(1)? == 1)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, CodecError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(CodecError::Truncated)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(CodecError::Header("varint too long"))
}

/// Delta-of-delta buckets (zigzagged): `0`; `10`+7 bits; `110`+12; `1110`+20; `11110`+32;
/// `11111`+64. The 32-bit bucket holds the jitter of poll timestamps in ns (up to ±1 s).
fn put_dod(w: &mut BitWriter, dod: i64) {
    let z = zigzag(dod);
    let (prefix, prefix_bits, width) = match z {
        0 => return w.bit(false),
        1..0x80 => (0b10, 2, 7),
        0x80..0x1000 => (0b110, 3, 12),
        0x1000..0x10_0000 => (0b1110, 4, 20),
        0x10_0000..0x1_0000_0000 => (0b11110, 5, 32),
        _ => (0b11111, 5, 64),
    };
    w.bits(prefix, prefix_bits);
    w.bits(z, width);
}

fn get_dod(r: &mut BitReader<'_>) -> Result<i64, CodecError> {
    if !r.bit()? {
        return Ok(0);
    }
    let mut width = 64;
    for w in [7, 12, 20, 32] {
        if !r.bit()? {
            width = w;
            break;
        }
    }
    Ok(unzigzag(r.bits(width)?))
}

/// An unsigned count: `0`+6 bits; `10`+16; `11`+64.
fn put_count(w: &mut BitWriter, v: u64) {
    if v < 64 {
        w.bit(false);
        w.bits(v, 6);
    } else if v < 1 << 16 {
        w.bits(0b10, 2);
        w.bits(v, 16);
    } else {
        w.bits(0b11, 2);
        w.bits(v, 64);
    }
}

fn get_count(r: &mut BitReader<'_>) -> Result<u64, CodecError> {
    if !r.bit()? {
        r.bits(6)
    } else if !r.bit()? {
        r.bits(16)
    } else {
        r.bits(64)
    }
}

/// One column of floats, each XORed with the one before (Gorilla's value compression).
#[derive(Debug, Default, Clone, Copy)]
struct XorColumn {
    prev: u64,
    /// Leading and trailing zeros of the last window written; `None` before the first.
    window: Option<(u32, u32)>,
}

impl XorColumn {
    fn put(&mut self, w: &mut BitWriter, v: f64) {
        let bits = v.to_bits();
        let x = bits ^ self.prev;
        self.prev = bits;
        if x == 0 {
            w.bit(false);
            return;
        }
        w.bit(true);
        let lead = x.leading_zeros().min(63);
        let trail = x.trailing_zeros();
        match self.window {
            Some((l, t)) if lead >= l && trail >= t => {
                w.bit(false);
                w.bits(x >> t, 64 - l - t);
            }
            _ => {
                w.bit(true);
                let len = 64 - lead - trail;
                w.bits(u64::from(lead), 6);
                w.bits(u64::from(len - 1), 6);
                w.bits(x >> trail, len);
                self.window = Some((lead, trail));
            }
        }
    }

    fn get(&mut self, r: &mut BitReader<'_>) -> Result<f64, CodecError> {
        if r.bit()? {
            let (l, t) = if !r.bit()? {
                self.window.ok_or(CodecError::Header("reuse of an unset window"))?
            } else {
                let l = r.bits(6)? as u32;
                let len = r.bits(6)? as u32 + 1;
                if l + len > 64 {
                    return Err(CodecError::Header("window wider than 64 bits"));
                }
                self.window = Some((l, 64 - l - len));
                (l, 64 - l - len)
            };
            let x = r.bits(64 - l - t)? << t;
            self.prev ^= x;
        }
        Ok(f64::from_bits(self.prev))
    }
}

/// Writes the header; returns the output.
fn header(n: usize, first: i64, unit: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + n * 8);
    out.push(FORMAT);
    put_varint(&mut out, n as u64);
    put_varint(&mut out, zigzag(first));
    out.push(unit);
    out
}

/// Reads the header: sample count, first key, unit exponent, and the stream's offset.
fn read_header(blob: &[u8]) -> Result<(usize, i64, u8, usize), CodecError> {
    if blob.first() != Some(&FORMAT) {
        return Err(CodecError::Header("unknown format"));
    }
    let mut pos = 1;
    let n = get_varint(blob, &mut pos)?;
    if n == 0 || n > MAX_SAMPLES {
        return Err(CodecError::Header("sample count out of range"));
    }
    let first = unzigzag(get_varint(blob, &mut pos)?);
    let unit = *blob.get(pos).ok_or(CodecError::Truncated)?;
    if unit > 18 {
        return Err(CodecError::Header("time unit out of range"));
    }
    Ok((n as usize, first, unit, pos + 1))
}

/// Samples looked at to choose a block's time unit.
const UNIT_PROBE: usize = 64;

/// The largest power of ten (up to 1 s) dividing every offset from the first timestamp.
fn time_unit(samples: &[RawSample]) -> u8 {
    let first = samples[0].ts;
    let mut unit = 9u8;
    for s in &samples[1..] {
        let off = s.ts.wrapping_sub(first);
        while unit > 0 && off % 10i64.pow(u32::from(unit)) != 0 {
            unit -= 1;
        }
    }
    unit
}

/// Incremental encoder of one raw block, so the store can close a block near a byte size.
#[derive(Debug)]
pub struct RawEncoder {
    n: usize,
    first: i64,
    unit: i64,
    unit_exp: u8,
    prev_ts: i64,
    prev_delta: i64,
    quality: i64,
    value: XorColumn,
    w: BitWriter,
}

impl RawEncoder {
    /// An encoder of samples whose offsets from `first` are multiples of `10^unit_exp` ns.
    fn new(first: i64, unit_exp: u8) -> Self {
        Self {
            n: 0,
            first,
            unit: 10i64.pow(u32::from(unit_exp)),
            unit_exp,
            prev_ts: first,
            prev_delta: 0,
            quality: 0,
            value: XorColumn::default(),
            w: BitWriter::default(),
        }
    }

    fn push(&mut self, s: &RawSample) {
        if self.n > 0 {
            let delta = s.ts.wrapping_sub(self.prev_ts) / self.unit;
            put_dod(&mut self.w, delta.wrapping_sub(self.prev_delta));
            self.prev_delta = delta;
        }
        self.prev_ts = s.ts;
        let q = quality_code(s.quality);
        if q == self.quality {
            self.w.bit(false);
        } else {
            self.w.bit(true);
            self.w.bits(q as u64, 3);
            self.quality = q;
        }
        match s.value {
            Some(v) => {
                self.w.bit(true);
                self.value.put(&mut self.w, v);
            }
            None => self.w.bit(false),
        }
        self.n += 1;
    }

    /// Bytes the block takes so far, less its small header.
    fn len(&self) -> usize {
        self.w.len()
    }

    fn finish(self) -> Vec<u8> {
        let mut out = header(self.n, self.first, self.unit_exp);
        out.extend_from_slice(&self.w.bytes);
        out
    }
}

/// A sealed block: its key range, sample count and blob.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Key of the first sample (ns for raw, minute for rollups).
    pub first: i64,
    /// Key of the last sample.
    pub last: i64,
    /// Samples in the block.
    pub n: usize,
    /// Encoded samples.
    pub data: Vec<u8>,
}

/// Encodes `samples` (sorted by time, no duplicates) into blocks of about `target` bytes,
/// none spanning more than `span` key units.
pub fn encode_raw(samples: &[RawSample], target: usize, span: i64) -> Vec<Block> {
    let mut out = Vec::new();
    let mut rest = samples;
    while let Some(first) = rest.first() {
        // The time unit is read off the first samples; a later sample off that grid (or past
        // the span) starts the next block, so each sample is looked at once.
        let unit_exp = time_unit(&rest[..rest.len().min(UNIT_PROBE)]);
        let unit = 10i64.pow(u32::from(unit_exp));
        let mut enc = RawEncoder::new(first.ts, unit_exp);
        let mut taken = 0;
        for s in rest {
            let off = s.ts.wrapping_sub(first.ts);
            if taken > 0 && (off > span || off % unit != 0) {
                break;
            }
            enc.push(s);
            taken += 1;
            if enc.len() >= target {
                break;
            }
        }
        out.push(Block {
            first: first.ts,
            last: rest[taken - 1].ts,
            n: taken,
            data: enc.finish(),
        });
        rest = &rest[taken..];
    }
    out
}

/// Decodes a raw block.
pub fn decode_raw(blob: &[u8]) -> Result<Vec<RawSample>, CodecError> {
    let (n, first, unit_exp, start) = read_header(blob)?;
    let unit = 10i64.pow(u32::from(unit_exp));
    let mut r = BitReader {
        bytes: &blob[start..],
        pos: 0,
    };
    let mut out = Vec::with_capacity(n);
    let (mut ts, mut delta, mut q) = (first, 0i64, 0u64);
    let mut value = XorColumn::default();
    for i in 0..n {
        if i > 0 {
            delta = delta.wrapping_add(get_dod(&mut r)?);
            ts = ts.wrapping_add(delta.wrapping_mul(unit));
        }
        if r.bit()? {
            q = r.bits(3)?;
        }
        let quality = quality_of(q as i64).ok_or(CodecError::Quality(q))?;
        let v = if r.bit()? { Some(value.get(&mut r)?) } else { None };
        out.push(RawSample { ts, value: v, quality });
    }
    Ok(out)
}

/// Encodes minutes (sorted, no duplicates) into blocks of about `target` bytes, none
/// spanning more than `span` minutes.
pub fn encode_minutes(samples: &[MinuteSample], target: usize, span: i64) -> Vec<Block> {
    let mut out = Vec::new();
    let mut rest = samples;
    while let Some(first) = rest.first() {
        let mut w = BitWriter::default();
        let (mut prev, mut prev_delta) = (first.minute, 0i64);
        let (mut min, mut max, mut sum) = (XorColumn::default(), XorColumn::default(), XorColumn::default());
        let (mut count, mut bad) = (0u64, 0u64);
        let mut taken = 0;
        for s in rest {
            if s.minute.saturating_sub(first.minute) > span {
                break;
            }
            if taken > 0 {
                let delta = s.minute.wrapping_sub(prev);
                put_dod(&mut w, delta.wrapping_sub(prev_delta));
                prev_delta = delta;
            }
            prev = s.minute;
            for (col, v) in [(&mut min, s.min), (&mut max, s.max)] {
                match v {
                    Some(v) => {
                        w.bit(true);
                        col.put(&mut w, v);
                    }
                    None => w.bit(false),
                }
            }
            sum.put(&mut w, s.sum);
            for (last, v) in [(&mut count, s.count), (&mut bad, s.bad)] {
                if *last == v {
                    w.bit(false);
                } else {
                    w.bit(true);
                    put_count(&mut w, v);
                    *last = v;
                }
            }
            taken += 1;
            if w.len() >= target {
                break;
            }
        }
        let mut data = header(taken, first.minute, 0);
        data.extend_from_slice(&w.bytes);
        out.push(Block {
            first: first.minute,
            last: rest[taken - 1].minute,
            n: taken,
            data,
        });
        rest = &rest[taken..];
    }
    out
}

/// Decodes a minute block.
pub fn decode_minutes(blob: &[u8]) -> Result<Vec<MinuteSample>, CodecError> {
    let (n, first, _, start) = read_header(blob)?;
    let mut r = BitReader {
        bytes: &blob[start..],
        pos: 0,
    };
    let mut out = Vec::with_capacity(n);
    let (mut minute, mut delta) = (first, 0i64);
    let (mut min, mut max, mut sum) = (XorColumn::default(), XorColumn::default(), XorColumn::default());
    let (mut count, mut bad) = (0u64, 0u64);
    for i in 0..n {
        if i > 0 {
            delta = delta.wrapping_add(get_dod(&mut r)?);
            minute = minute.wrapping_add(delta);
        }
        let lo = if r.bit()? { Some(min.get(&mut r)?) } else { None };
        let hi = if r.bit()? { Some(max.get(&mut r)?) } else { None };
        let s = sum.get(&mut r)?;
        if r.bit()? {
            count = get_count(&mut r)?;
        }
        if r.bit()? {
            bad = get_count(&mut r)?;
        }
        out.push(MinuteSample {
            minute,
            min: lo,
            max: hi,
            sum: s,
            count,
            bad,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
