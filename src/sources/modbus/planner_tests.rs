use proptest::prelude::*;

use super::super::register::{DataType, Scaling, WordOrder};
use super::*;

fn point(function: RegisterFunction, address: u16, data_type: DataType) -> RegisterSpec {
    RegisterSpec {
        function,
        address,
        data_type,
        word_order: WordOrder::ABCD,
        scaling: Scaling::UNIT,
        range: None,
    }
}

fn limits(max_registers: u16, max_gap: u16) -> ReadLimits {
    ReadLimits {
        max_registers,
        max_gap,
        ..ReadLimits::default()
    }
}

#[test]
fn contiguous_points_share_one_read() {
    let pts = [
        point(RegisterFunction::Holding, 0, DataType::F32),
        point(RegisterFunction::Holding, 2, DataType::I16),
        point(RegisterFunction::Holding, 3, DataType::U64),
    ];
    let blocks = plan(&pts, ReadLimits::default(), &Splits::new());
    assert_eq!(blocks.len(), 1);
    assert_eq!((blocks[0].start, blocks[0].count), (0, 7));
    assert_eq!(blocks[0].items, vec![(0, 0), (1, 2), (2, 3)]);
}

#[test]
fn tables_and_gaps_split_reads() {
    let pts = [
        point(RegisterFunction::Input, 0, DataType::U16),
        point(RegisterFunction::Holding, 0, DataType::U16),
        point(RegisterFunction::Input, 10, DataType::U16),
    ];
    assert_eq!(plan(&pts, ReadLimits::default(), &Splits::new()).len(), 3);
    assert_eq!(plan(&pts, limits(125, 9), &Splits::new()).len(), 2);
}

#[test]
fn a_read_never_exceeds_the_register_limit() {
    let pts: Vec<_> = (0..10)
        .map(|i| point(RegisterFunction::Holding, i * 2, DataType::F32))
        .collect();
    let blocks = plan(&pts, limits(5, 0), &Splits::new());
    assert!(blocks.iter().all(|b| b.count <= 5));
    assert_eq!(blocks.len(), 5);
}

#[test]
fn coils_are_planned_in_bits_up_to_the_bit_limit() {
    let pts: Vec<_> = (0..3000)
        .map(|i| point(RegisterFunction::Coil, i, DataType::Bool))
        .collect();
    let blocks = plan(&pts, ReadLimits::default(), &Splits::new());
    assert_eq!(blocks.len(), 2);
    assert_eq!((blocks[0].count, blocks[1].count), (2000, 1000));
}

#[test]
fn a_rejected_bridge_splits_at_the_hole_and_the_split_holds_in_the_next_plan() {
    let pts = [
        point(RegisterFunction::Holding, 0, DataType::U16),
        point(RegisterFunction::Holding, 1, DataType::U16),
        point(RegisterFunction::Holding, 5, DataType::U16),
    ];
    let mut splits = Splits::new();
    let blocks = plan(&pts, limits(125, 10), &splits);
    assert_eq!(blocks.len(), 1);
    let new = split_after_rejection(&pts, &blocks[0]);
    assert_eq!(new, vec![(RegisterFunction::Holding, 5)]);
    splits.extend(new);
    let blocks = plan(&pts, limits(125, 10), &splits);
    let spans: Vec<_> = blocks.iter().map(|b| (b.start, b.count)).collect();
    assert_eq!(spans, vec![(0, 2), (5, 1)]);
}

#[test]
fn a_rejected_block_without_holes_is_halved_until_single_points() {
    let pts: Vec<_> = (0..4)
        .map(|i| point(RegisterFunction::Input, i, DataType::U16))
        .collect();
    let mut splits = Splits::new();
    let mut rounds = 0;
    loop {
        let blocks = plan(&pts, ReadLimits::default(), &splits);
        let new: Vec<_> = blocks.iter().flat_map(|b| split_after_rejection(&pts, b)).collect();
        if new.is_empty() {
            assert_eq!(blocks.len(), 4);
            break;
        }
        splits.extend(new);
        rounds += 1;
        assert!(rounds <= 3, "halving must end");
    }
    assert_eq!(rounds, 2);
}

/// True if one read can serve every point of `group` under `limits` and `splits`.
fn feasible(pts: &[RegisterSpec], group: &[usize], limits: ReadLimits, splits: &Splits) -> bool {
    let f = pts[group[0]].function;
    if group.iter().any(|&i| pts[i].function != f) {
        return false;
    }
    let mut spans: Vec<(u32, u32)> = group
        .iter()
        .map(|&i| (u32::from(pts[i].address), pts[i].end()))
        .collect();
    spans.sort_unstable();
    let start = spans[0].0;
    let end = spans.iter().map(|s| s.1).max().unwrap_or(start);
    if end - start > limits.max_items(f) {
        return false;
    }
    // A split inside the read must lie inside one of its points (a point is read whole).
    let inside_a_point = |a: u32| spans.iter().any(|&(s, e)| s < a && a < e);
    if (start + 1..end).any(|a| splits.contains(&(f, a as u16)) && !inside_a_point(a)) {
        return false;
    }
    let mut covered = start;
    for (s, e) in spans {
        if s > covered && s - covered > u32::from(limits.max_gap) {
            return false;
        }
        covered = covered.max(e);
    }
    true
}

/// Fewest feasible groups over every partition of the points (exhaustive search).
fn optimum(pts: &[RegisterSpec], limits: ReadLimits, splits: &Splits) -> usize {
    fn go(
        next: usize,
        groups: &mut Vec<Vec<usize>>,
        pts: &[RegisterSpec],
        limits: ReadLimits,
        splits: &Splits,
        best: &mut usize,
    ) {
        if groups.len() >= *best {
            return;
        }
        if next == pts.len() {
            // Feasibility is not monotone (a third point can fill the hole between two), so
            // only whole partitions are judged.
            if groups.iter().all(|g| feasible(pts, g, limits, splits)) {
                *best = groups.len();
            }
            return;
        }
        for g in 0..groups.len() {
            groups[g].push(next);
            go(next + 1, groups, pts, limits, splits, best);
            groups[g].pop();
        }
        groups.push(vec![next]);
        go(next + 1, groups, pts, limits, splits, best);
        groups.pop();
    }
    let mut best = pts.len() + 1;
    go(0, &mut Vec::new(), pts, limits, splits, &mut best);
    best
}

fn any_points(max: usize, addr: u16) -> impl Strategy<Value = Vec<RegisterSpec>> {
    proptest::collection::vec((0..addr, 0usize..6, 0usize..3), 0..max).prop_map(|raw| {
        raw.into_iter()
            .map(|(a, t, f)| {
                let dt = [
                    DataType::U16,
                    DataType::U32,
                    DataType::F64,
                    DataType::Bit(3),
                    DataType::Ascii { words: 3 },
                    DataType::Bool,
                ][t];
                let func = if dt == DataType::Bool {
                    [RegisterFunction::Coil, RegisterFunction::Discrete][f % 2]
                } else {
                    [
                        RegisterFunction::Holding,
                        RegisterFunction::Input,
                        RegisterFunction::Holding,
                    ][f]
                };
                point(func, a, dt)
            })
            .collect()
    })
}

fn check_plan(pts: &[RegisterSpec], limits: ReadLimits, splits: &Splits) -> Result<Vec<ReadBlock>, TestCaseError> {
    let blocks = plan(pts, limits, splits);
    let mut seen = vec![0; pts.len()];
    for b in &blocks {
        prop_assert!(u32::from(b.count) <= limits.max_items(b.function));
        let slots: Vec<usize> = b.items.iter().map(|&(s, _)| s as usize).collect();
        prop_assert!(feasible(pts, &slots, limits, splits));
        for &(slot, off) in &b.items {
            let slot = slot as usize;
            seen[slot] += 1;
            let p = &pts[slot];
            prop_assert_eq!(p.function, b.function);
            prop_assert_eq!(u32::from(b.start) + u32::from(off), u32::from(p.address));
            prop_assert!(p.end() <= b.end());
        }
    }
    prop_assert!(seen.iter().all(|&n| n == 1));
    Ok(blocks)
}

fn any_splits() -> impl Strategy<Value = Splits> {
    proptest::collection::btree_set(
        (
            prop_oneof![Just(RegisterFunction::Holding), Just(RegisterFunction::Coil)],
            1u16..40,
        ),
        0..4,
    )
}

proptest! {
    #[test]
    fn every_point_is_covered_once_and_no_read_breaks_a_limit(
        pts in any_points(60, 400),
        max_registers in 4u16..130,
        max_bits in 1u16..40,
        max_gap in 0u16..10,
        splits in any_splits(),
    ) {
        let limits = ReadLimits { max_registers, max_bits, max_gap };
        check_plan(&pts, limits, &splits)?;
    }

    #[test]
    fn on_small_maps_the_plan_needs_no_more_reads_than_exhaustive_search(
        pts in any_points(7, 24),
        max_registers in 4u16..12,
        max_bits in 1u16..6,
        max_gap in 0u16..4,
        splits in any_splits(),
    ) {
        let limits = ReadLimits { max_registers, max_bits, max_gap };
        let blocks = check_plan(&pts, limits, &splits)?;
        prop_assert_eq!(blocks.len(), optimum(&pts, limits, &splits));
    }
}
