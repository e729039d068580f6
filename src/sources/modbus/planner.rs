//! Request planner: coalesces a device's points into as few reads as its limits allow.
//!
//! Points are grouped by data table and sorted by address; a block grows while the next point
//! keeps the block within the table's item limit, the hole before it within `max_gap`, and
//! the block clear of every remembered split. On a line of intervals this greedy sweep gives
//! the fewest blocks (a block is closed only when the next point cannot join any block that
//! also covers the earlier points); a property test checks it against exhaustive search.
//!
//! A split at address `a` of a table means no read may hold both item `a - 1` and item `a`
//! unless one point spans both:
//! the device rejected a read spanning it (exception 02, illegal data address), so the
//! registers around it are not one contiguous map. Splits are learnt while polling
//! ([`split_after_rejection`]) and kept for the life of the poller.

use std::collections::BTreeSet;

use super::register::{RegisterFunction, RegisterSpec};
use crate::model::PointId;

pub use super::frame::{MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ};

/// What a device accepts in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Registers per request (1..=125).
    pub max_registers: u16,
    /// Coils or discrete inputs per request (1..=2000).
    pub max_bits: u16,
    /// Unmapped items (registers, or bits in a bit table) a request may span to join two
    /// points; 0 reads only mapped ones.
    pub max_gap: u16,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_registers: MAX_REGISTERS_PER_READ,
            max_bits: MAX_BITS_PER_READ,
            max_gap: 0,
        }
    }
}

impl ReadLimits {
    /// Items one read of `function` may cover.
    pub fn max_items(&self, function: RegisterFunction) -> u32 {
        if function.is_bits() {
            u32::from(self.max_bits.clamp(1, MAX_BITS_PER_READ))
        } else {
            u32::from(self.max_registers.clamp(1, MAX_REGISTERS_PER_READ))
        }
    }
}

/// Addresses no read may straddle: `(table, a)` forbids holding both `a - 1` and `a`.
pub type Splits = BTreeSet<(RegisterFunction, u16)>;

/// One read request and which points it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBlock {
    /// Data table read.
    pub function: RegisterFunction,
    /// First item.
    pub start: u16,
    /// Items read.
    pub count: u16,
    /// `(point slot, offset of its first item in the block)`; slots index the input slice.
    /// Eight bytes an item, sized to fit: a plant polls tens of thousands of points.
    pub items: Vec<(u32, u16)>,
}

impl ReadBlock {
    /// One past the last item read.
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }
}

/// True if growing a read of `function` that ends at `end` to take a point starting at
/// `next` would straddle a split: one at an address `a` with `end <= a <= next`, so that both
/// `a - 1` and `a` are read without one point holding both. (A split inside a point's own
/// registers cannot be honoured, since a point is always read whole, and is ignored.)
fn bridges_split(splits: &Splits, function: RegisterFunction, end: u32, next: u32) -> bool {
    if next < end {
        return false;
    }
    let (Ok(lo), Ok(hi)) = (u16::try_from(end), u16::try_from(next)) else {
        return false;
    };
    splits.range((function, lo)..=(function, hi)).next().is_some()
}

/// Something the planner reads registers for: a register spec, or a point of a device's
/// shared register map, so a poller plans from that map without a copy of its own.
pub trait Mapped {
    /// Where the item is read.
    fn register(&self) -> &RegisterSpec;
}

impl Mapped for RegisterSpec {
    fn register(&self) -> &RegisterSpec {
        self
    }
}

impl Mapped for (PointId, RegisterSpec) {
    fn register(&self) -> &RegisterSpec {
        &self.1
    }
}

/// Plans the reads for `points`; each slot of the input appears in exactly one block.
pub fn plan<M: Mapped>(points: &[M], limits: ReadLimits, splits: &Splits) -> Vec<ReadBlock> {
    // A device's points are far fewer than four billion: each slot fits a `u32`.
    let mut order: Vec<u32> = (0..points.len()).filter_map(|i| u32::try_from(i).ok()).collect();
    order.sort_by_key(|&i| {
        let p = points[i as usize].register();
        (p.function, p.address, p.end())
    });

    let mut blocks: Vec<ReadBlock> = Vec::new();
    let mut block_end: u32 = 0;
    for slot in order {
        let p = points[slot as usize].register();
        let start = u32::from(p.address);
        let joins = blocks.last().is_some_and(|b| {
            let end = p.end().max(block_end);
            b.function == p.function
                && start <= block_end + u32::from(limits.max_gap)
                && end - u32::from(b.start) <= limits.max_items(p.function)
                && !bridges_split(splits, p.function, block_end, start)
        });
        match blocks.last_mut() {
            Some(b) if joins => {
                block_end = block_end.max(p.end());
                b.count = (block_end - u32::from(b.start)) as u16;
                b.items.push((slot, p.address - b.start));
            }
            _ => {
                block_end = p.end();
                blocks.push(ReadBlock {
                    function: p.function,
                    start: p.address,
                    count: (p.end() - start) as u16,
                    items: vec![(slot, 0)],
                });
            }
        }
    }
    for b in &mut blocks {
        b.items.shrink_to_fit();
    }
    blocks
}

/// The splits to add after the device rejected `block` with an illegal-data-address
/// exception; empty when the block is a single point (nothing left to split: that point's
/// own address is bad).
///
/// Unmapped holes the block bridged are the first suspects, so a split goes before every
/// point that follows a hole; a block without holes is halved at its middle point. Repeated
/// rejections therefore find the bad address in a logarithmic number of cycles, and every
/// read that succeeds stays as long as it can be.
pub fn split_after_rejection<M: Mapped>(points: &[M], block: &ReadBlock) -> Vec<(RegisterFunction, u16)> {
    let mut items: Vec<(u32, u32)> = block
        .items
        .iter()
        .filter_map(|&(slot, _)| {
            points
                .get(slot as usize)
                .map(M::register)
                .map(|p| (u32::from(p.address), p.end()))
        })
        .collect();
    items.sort_unstable();
    let mut covered = u32::from(block.start);
    let mut at_holes = Vec::new();
    let mut starts = Vec::new();
    for &(start, end) in &items {
        if start > covered {
            at_holes.push(start);
        }
        if start > u32::from(block.start) && starts.last() != Some(&start) {
            starts.push(start);
        }
        covered = covered.max(end);
    }
    let chosen = if !at_holes.is_empty() {
        at_holes
    } else if let Some(&mid) = starts.get(starts.len() / 2) {
        vec![mid]
    } else {
        Vec::new()
    };
    chosen
        .into_iter()
        .filter_map(|a| u16::try_from(a).ok())
        .map(|a| (block.function, a))
        .collect()
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
