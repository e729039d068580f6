//! Request planner: coalesces a device's points into as few reads as its limits allow.
//!
//! Points are grouped by data table and sorted by address; a block grows while the next point
//! keeps the block within `max_registers` and the hole before it within `max_gap`. On a line
//! of intervals this greedy sweep gives the fewest blocks (each block is closed only when the
//! next point cannot join any block that also covers the earlier points).

use super::register::{RegisterFunction, RegisterSpec};

/// Modbus Application Protocol v1.1b3 §6.3/§6.4: at most 125 registers per read request.
pub const MAX_REGISTERS_PER_READ: u16 = 125;

/// What a device accepts in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Registers per request (1..=125).
    pub max_registers: u16,
    /// Unmapped registers a request may span to join two points; 0 reads only mapped ones.
    pub max_gap: u16,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_registers: MAX_REGISTERS_PER_READ,
            max_gap: 0,
        }
    }
}

/// One read request and which points it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBlock {
    /// Data table read.
    pub function: RegisterFunction,
    /// First register.
    pub start: u16,
    /// Registers read.
    pub count: u16,
    /// `(point slot, offset of its first register in the block)`; slots index the input slice.
    pub items: Vec<(usize, u16)>,
}

/// Plans the reads for `points`; each slot of the input appears in exactly one block.
pub fn plan(points: &[RegisterSpec], limits: ReadLimits) -> Vec<ReadBlock> {
    let max = u32::from(limits.max_registers.clamp(1, MAX_REGISTERS_PER_READ));
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (points[i].function, points[i].address, points[i].end()));

    let mut blocks: Vec<ReadBlock> = Vec::new();
    let mut block_end: u32 = 0;
    for slot in order {
        let p = &points[slot];
        let start = u32::from(p.address);
        let joins = blocks.last().is_some_and(|b| {
            b.function == p.function
                && start <= block_end + u32::from(limits.max_gap)
                && p.end().max(block_end) - u32::from(b.start) <= max
        });
        if joins {
            let b = blocks.last_mut().expect("checked above");
            block_end = block_end.max(p.end());
            b.count = (block_end - u32::from(b.start)) as u16;
            b.items.push((slot, p.address - b.start));
        } else {
            block_end = p.end();
            blocks.push(ReadBlock {
                function: p.function,
                start: p.address,
                count: (p.end() - start) as u16,
                items: vec![(slot, 0)],
            });
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::super::register::{DataType, Scaling, WordOrder};
    use super::*;
    use proptest::prelude::*;

    fn point(function: RegisterFunction, address: u16, data_type: DataType) -> RegisterSpec {
        RegisterSpec {
            function,
            address,
            data_type,
            word_order: WordOrder::ABCD,
            scaling: Scaling::Linear {
                scale: 1.0,
                offset: 0.0,
            },
            range: None,
        }
    }

    #[test]
    fn contiguous_points_share_one_read() {
        let pts = [
            point(RegisterFunction::Holding, 0, DataType::F32),
            point(RegisterFunction::Holding, 2, DataType::I16),
            point(RegisterFunction::Holding, 3, DataType::U32),
        ];
        let blocks = plan(&pts, ReadLimits::default());
        assert_eq!(blocks.len(), 1);
        assert_eq!((blocks[0].start, blocks[0].count), (0, 5));
        assert_eq!(blocks[0].items, vec![(0, 0), (1, 2), (2, 3)]);
    }

    #[test]
    fn tables_and_gaps_split_reads() {
        let pts = [
            point(RegisterFunction::Input, 0, DataType::U16),
            point(RegisterFunction::Holding, 0, DataType::U16),
            point(RegisterFunction::Input, 10, DataType::U16),
        ];
        assert_eq!(plan(&pts, ReadLimits::default()).len(), 3);
        let bridged = plan(
            &pts,
            ReadLimits {
                max_gap: 9,
                ..ReadLimits::default()
            },
        );
        assert_eq!(bridged.len(), 2);
    }

    #[test]
    fn a_read_never_exceeds_the_register_limit() {
        let pts: Vec<_> = (0..10)
            .map(|i| point(RegisterFunction::Holding, i * 2, DataType::F32))
            .collect();
        let blocks = plan(
            &pts,
            ReadLimits {
                max_registers: 5,
                max_gap: 0,
            },
        );
        assert!(blocks.iter().all(|b| b.count <= 5));
        assert_eq!(blocks.len(), 5);
    }

    proptest! {
        #[test]
        fn every_point_is_covered_once_and_limits_hold(
            raw in proptest::collection::vec((0u16..300, 0usize..3, any::<bool>()), 0..40),
            max_registers in 2u16..130,
            max_gap in 0u16..10,
        ) {
            let pts: Vec<_> = raw.iter().map(|&(a, t, f)| {
                let dt = [DataType::U16, DataType::U32, DataType::F32][t];
                let func = if f { RegisterFunction::Holding } else { RegisterFunction::Input };
                point(func, a, dt)
            }).collect();
            let limits = ReadLimits { max_registers, max_gap };
            let blocks = plan(&pts, limits);
            let mut seen = vec![0; pts.len()];
            for b in &blocks {
                prop_assert!(b.count <= max_registers.min(MAX_REGISTERS_PER_READ));
                for &(slot, off) in &b.items {
                    seen[slot] += 1;
                    let p = &pts[slot];
                    prop_assert_eq!(p.function, b.function);
                    prop_assert_eq!(u32::from(b.start) + u32::from(off), u32::from(p.address));
                    prop_assert!(p.end() <= u32::from(b.start) + u32::from(b.count));
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1));
        }
    }
}
