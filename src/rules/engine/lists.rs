//! The engine's per-point lists (a point's thresholds, its alarms, the groups it is in), each
//! kind in one flat array.
//!
//! Design: `starts[p]..starts[p + 1]` are point `p`'s entries in `items`. A plant has tens of
//! thousands of points with one entry or none in most lists, so a list per point (a pointer and
//! a length each, plus an allocation per non-empty one) would cost more than the entries: this
//! costs four bytes per point and list. The lists are filled once, when the engine is built, in
//! any point order ([`ListBuilder`]), and never change size afterwards.

use std::ops::{Index, IndexMut};

use crate::model::PointId;

/// One list per point, stored flat.
#[derive(Debug, Clone)]
pub(super) struct PointLists<T> {
    /// One more than there are points; each a position in `items`.
    starts: Box<[u32]>,
    items: Box<[T]>,
}

impl<T> Default for PointLists<T> {
    fn default() -> Self {
        Self {
            starts: Box::new([0]),
            items: Box::default(),
        }
    }
}

impl<T> PointLists<T> {
    /// Number of points.
    pub(super) fn len(&self) -> usize {
        self.starts.len() - 1
    }

    fn range(&self, p: usize) -> std::ops::Range<usize> {
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
            starts: starts.into_boxed_slice(),
            items: self.entries.into_iter().map(|(_, item)| item).collect(),
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
    fn no_entries_make_empty_lists() {
        let lists = ListBuilder::<u32>::default().finish(3);
        assert!((0..3).all(|p| lists[p].is_empty()));
        assert_eq!(PointLists::<u32>::default().len(), 0);
    }
}
