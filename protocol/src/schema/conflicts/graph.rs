//! The change graph of a document: causal order, concurrency, causal pasts.

use automerge::{Automerge, ChangeHash};
use std::collections::HashMap;

/// The change graph: changes in causal order and their parents, by index.
pub(super) struct Graph {
    /// Each change's hash, in the order automerge lists them (causal).
    pub(super) hashes: Vec<ChangeHash>,
    /// Each hash's index.
    pub(super) index: HashMap<ChangeHash, usize>,
    /// Each change's parents, by index.
    pub(super) deps: Vec<Vec<usize>>,
}

impl Graph {
    /// The graph of every change of `doc`.
    pub(super) fn new(doc: &Automerge) -> Self {
        let metas = doc.get_changes_meta(&[]);
        let hashes: Vec<ChangeHash> = metas.iter().map(|m| m.hash).collect();
        let index: HashMap<ChangeHash, usize> =
            hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let deps = metas
            .iter()
            .map(|m| {
                m.deps
                    .iter()
                    .filter_map(|d| index.get(d).copied())
                    .collect()
            })
            .collect();
        Graph {
            hashes,
            index,
            deps,
        }
    }

    /// Whether each change depends on the one before it, so all are in one line.
    ///
    /// automerge lists a change's own actor's previous change among its deps even when
    /// another dep already descends from it, so deps are not compared whole.
    pub(super) fn is_linear(&self) -> bool {
        self.deps.iter().enumerate().all(|(i, deps)| match i {
            0 => deps.is_empty(),
            _ => deps.contains(&(i - 1)),
        })
    }

    /// The changes concurrent with at least one other, in order.
    ///
    /// A change is ordered with every other when everything before it is in its past and
    /// everything after it has it in its past: in causal order, when it is the only head of the
    /// changes up to it, and every later change has a parent at or after it. One sweep each way.
    pub(super) fn concurrent_changes(&self) -> Vec<usize> {
        let n = self.deps.len();
        let causal = self
            .deps
            .iter()
            .enumerate()
            .all(|(i, d)| d.iter().all(|&p| p < i));
        if !causal {
            return (0..n).collect();
        }
        let mut is_head = vec![false; n];
        let mut heads = 0usize;
        let mut sole_head = vec![false; n];
        for (i, deps) in self.deps.iter().enumerate() {
            for &d in deps {
                if is_head[d] {
                    is_head[d] = false;
                    heads -= 1;
                }
            }
            is_head[i] = true;
            heads += 1;
            sole_head[i] = heads == 1;
        }
        // For each i, the lowest (latest parent + 1) among the changes after it (0 for a
        // change without parents): every later change builds on i when that exceeds i.
        let mut later_min = vec![usize::MAX; n];
        let mut low = usize::MAX;
        for i in (0..n).rev() {
            later_min[i] = low;
            low = low.min(self.deps[i].iter().max().map_or(0, |p| p + 1));
        }
        (0..n)
            .filter(|&i| !(sole_head[i] && later_min[i] > i))
            .collect()
    }

    /// The causal past of change `c` (without `c`), as a bit set over change indices.
    pub(super) fn past(&self, c: usize) -> Bits {
        let mut bits = Bits::new(self.hashes.len());
        let mut stack: Vec<usize> = self.deps.get(c).cloned().unwrap_or_default();
        while let Some(d) = stack.pop() {
            if !bits.get(d) {
                bits.set(d);
                stack.extend(self.deps.get(d).into_iter().flatten().copied());
            }
        }
        bits
    }
}

/// A fixed-size bit set.
#[derive(Clone)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    /// An empty set of `n` bits.
    pub(super) fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }

    /// Whether bit `i` is set (out of range: not).
    pub(super) fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i` (out of range: ignored).
    pub(super) fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_off_the_main_line_are_concurrent() {
        let graph = |deps: Vec<Vec<usize>>| Graph {
            hashes: Vec::new(),
            index: HashMap::new(),
            deps,
        };
        // 0 <- 1 <- 3 <- 4 and 0 <- 2 <- 3: 1 and 2 are concurrent, the rest ordered.
        let g = graph(vec![vec![], vec![0], vec![0], vec![1, 2], vec![3, 1]]);
        assert_eq!(g.concurrent_changes(), vec![1, 2]);
        assert!(!g.is_linear());
        // A second root is concurrent with everything before it.
        let g = graph(vec![vec![], vec![0], vec![]]);
        assert_eq!(g.concurrent_changes(), vec![0, 1, 2]);
        let g = graph(vec![vec![], vec![0], vec![1, 0]]);
        assert!(g.concurrent_changes().is_empty());
        assert!(g.is_linear());
    }
}
