//! The engine's per-point lists (a point's thresholds, its alarms, the groups it is in), each
//! kind in one flat array.
//!
//! Design: `starts[p]..starts[p + 1]` are point `p`'s entries in `items`. A plant has tens of
//! thousands of points with one entry or none in most lists, so a list per point (a pointer and
//! a length each, plus an allocation per non-empty one) would cost more than the entries: this
//! costs four bytes per point and list, and nothing per point for a kind no point has (no rate
//! of change or vote anywhere: `starts` is empty then). The lists are filled once, when the
//! engine is built, in any point order ([`ListBuilder`]), and never change size afterwards.

use std::ops::{Index, IndexMut};

use crate::model::PointId;

/// One list per point, stored flat.
#[derive(Debug, Clone)]
pub(super) struct PointLists<T> {
    /// Number of points.
    points: usize,
    /// One more than there are points, each a position in `items`; empty when `items` is.
    starts: Box<[u32]>,
    items: Box<[T]>,
}

impl<T> Default for PointLists<T> {
    fn default() -> Self {
        Self {
            points: 0,
            starts: Box::default(),
            items: Box::default(),
        }
    }
}

impl<T> PointLists<T> {
    /// Number of points.
    pub(super) fn len(&self) -> usize {
        self.points
    }

    fn range(&self, p: usize) -> std::ops::Range<usize> {
        if self.starts.is_empty() {
            assert!(p < self.points, "point {p} of {}", self.points);
            return 0..0;
        }
        self.starts[p] as usize..self.starts[p + 1] as usize
    }

    /// Point `p`'s list, if `p` is one of the points.
    pub(super) fn get_mut(&mut self, p: usize) -> Option<&mut [T]> {
        if p >= self.len() {
            return None;
        }
        let r = self.range(p);
        Some(&mut self.items[r])
    }
}

impl<T> Index<usize> for PointLists<T> {
    type Output = [T];

    fn index(&self, p: usize) -> &[T] {
        &self.items[self.range(p)]
    }
}

impl<T> IndexMut<usize> for PointLists<T> {
    fn index_mut(&mut self, p: usize) -> &mut [T] {
        let r = self.range(p);
        &mut self.items[r]
    }
}

/// Gathers the entries of one kind of list in any point order while the engine is built.
#[derive(Debug)]
pub(super) struct ListBuilder<T> {
    entries: Vec<(PointId, T)>,
}

impl<T> Default for ListBuilder<T> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<T> ListBuilder<T> {
    /// Adds `item` at the end of point `p`'s list.
    pub(super) fn push(&mut self, p: PointId, item: T) {
        self.entries.push((p, item));
    }

    /// The lists of `points` points, each in the order its entries were pushed.
    pub(super) fn finish(mut self, points: usize) -> PointLists<T> {
        if self.entries.is_empty() {
            return PointLists {
                points,
                ..PointLists::default()
            };
        }
        // Stable: a point's entries keep the order they were added in.
        self.entries.sort_by_key(|(p, _)| *p);
        let mut starts = vec![0u32; points + 1];
        for (p, _) in &self.entries {
            starts[p.index() + 1] += 1;
        }
        for p in 0..points {
            starts[p + 1] += starts[p];
        }
        PointLists {
            points,
            starts: starts.into_boxed_slice(),
            items: self.entries.into_iter().map(|(_, item)| item).collect(),
        }
    }
}

/// Each point's latest trusted value, if it has one: eight bytes and a bit per point, where
/// an `Option<f64>` per point takes sixteen.
#[derive(Debug, Clone, Default)]
pub(super) struct LatestValues {
    values: Box<[f64]>,
    /// Bit `p % 64` of word `p / 64` is set when point `p` has a value.
    known: Box<[u64]>,
}

impl LatestValues {
    /// No value yet for any of `points` points.
    pub(super) fn new(points: usize) -> Self {
        Self {
            values: vec![0.0; points].into_boxed_slice(),
            known: vec![0; points.div_ceil(64)].into_boxed_slice(),
        }
    }

    /// Point `p`'s value.
    pub(super) fn get(&self, p: usize) -> Option<f64> {
        let value = self.values[p];
        ((self.known[p / 64] >> (p % 64)) & 1 == 1).then_some(value)
    }

    /// Sets or forgets point `p`'s value.
    pub(super) fn set(&mut self, p: usize, value: Option<f64>) {
        let bit = 1u64 << (p % 64);
        match value {
            Some(v) => {
                self.values[p] = v;
                self.known[p / 64] |= bit;
            }
            None => self.known[p / 64] &= !bit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::{PointKind, PointMeta, PointTable};

    fn ids(n: usize) -> Vec<PointId> {
        let mut t = PointTable::default();
        (0..n)
            .filter_map(|i| {
                t.insert(PointMeta {
                    name: format!("p{i}").into(),
                    unit: "m".into(),
                    kind: PointKind::Level,
                    device: "d".into(),
                    hazard_source: None,
                    range: None,
                    description: None,
                })
            })
            .collect()
    }

    #[test]
    fn each_point_gets_its_entries_in_the_order_they_were_added() {
        let id = ids(5);
        let mut b = ListBuilder::default();
        for (p, x) in [(2, 'a'), (0, 'b'), (2, 'c'), (3, 'd'), (0, 'e')] {
            b.push(id[p], x);
        }
        let mut lists = b.finish(5);
        assert_eq!(lists.len(), 5);
        let got: Vec<Vec<char>> = (0..5).map(|p| lists[p].to_vec()).collect();
        assert_eq!(got, [vec!['b', 'e'], vec![], vec!['a', 'c'], vec!['d'], vec![]]);
        lists[2][1] = 'z';
        assert_eq!(lists.get_mut(2).map(|l| l.to_vec()), Some(vec!['a', 'z']));
        assert!(lists.get_mut(5).is_none());
    }

    #[test]
    fn latest_values_keep_each_point_apart_and_forget_on_request() {
        let mut v = LatestValues::new(130);
        assert!((0..130).all(|p| v.get(p).is_none()));
        for p in [0, 63, 64, 129] {
            v.set(p, Some(p as f64 - 0.5));
        }
        v.set(64, None);
        v.set(1, Some(f64::NAN));
        let got: Vec<(usize, f64)> = (0..130).filter_map(|p| v.get(p).map(|x| (p, x))).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (0, -0.5));
        assert!(got[1].0 == 1 && got[1].1.is_nan());
        assert_eq!(&got[2..], &[(63, 62.5), (129, 128.5)]);
    }

    #[test]
    #[should_panic]
    fn a_latest_value_past_the_end_is_refused() {
        let _ = LatestValues::new(3).get(3);
    }

    #[test]
    fn no_entries_make_empty_lists() {
        let mut lists = ListBuilder::<u32>::default().finish(3);
        assert_eq!(lists.len(), 3);
        assert!((0..3).all(|p| lists[p].is_empty()));
        assert_eq!(lists.get_mut(2).map(|l| l.len()), Some(0));
        assert!(lists.get_mut(3).is_none());
        assert_eq!(PointLists::<u32>::default().len(), 0);
    }

    #[test]
    fn a_kind_no_point_has_costs_nothing_per_point() {
        let id = ids(1);
        let none = ListBuilder::<u32>::default().finish(50_000);
        assert!(none.starts.is_empty());
        let mut one = ListBuilder::default();
        one.push(id[0], 7u32);
        assert_eq!(one.finish(50_000).starts.len(), 50_001);
    }

    #[test]
    #[should_panic(expected = "point 3 of 3")]
    fn a_point_past_the_end_of_an_empty_kind_is_refused() {
        let lists = ListBuilder::<u32>::default().finish(3);
        let _ = &lists[3];
    }
}
