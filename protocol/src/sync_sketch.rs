//! Set reconciliation of two nodes' document states: an invertible Bloom lookup table (a
//! "sketch") of `(id prefix, heads digest)` entries, whose size follows how many documents
//! differ between two nodes, not how many the commons holds.
//!
//! Each side builds a sketch of its entries with the same cell count; one subtracts the other's
//! from its own, and peeling the difference yields the entries only it holds and the entries
//! only the other holds: for a document both hold in different states, one of each. A
//! difference too large for the cell count does not peel, and [`Sketch::decode`] says so
//! (`None`) rather than answer in part, so a caller falls back to listing.
//!
//! `/hedgerow/sync/4` sends it in answer to a `HelloV4` about a large commons (see
//! [`crate::sync::SyncResponse::Sketch`]); `hedgerow-bench` measures it against the bucket
//! summary it replaces (bench/RESULTS.md).

use crate::encoding::domain_hash;
use crate::sync::{HeadsDigest, IdPrefix};

/// Domain of the hash that places a key in its cells and checks a pure cell.
const DOMAIN_SKETCH: &str = "hedgerow 2026-11 sync sketch v1";

/// Bytes of a sketch key: the 8-byte id prefix and the first 4 bytes of the heads digest (the
/// bucket summary's digests are 4 bytes too).
pub const SKETCH_KEY_LEN: usize = 12;
/// Bytes of one cell on the wire: a wrapping count, the XOR of its keys, the XOR of their checks.
pub const SKETCH_CELL_LEN: usize = 1 + SKETCH_KEY_LEN + 4;
/// Cells each key is added to, one in each third of the table.
pub const SKETCH_HASHES: usize = 3;
/// Most cells a sketch may have (about 1.1 MB), so a hostile one costs bounded work.
pub const MAX_SKETCH_CELLS: usize = SKETCH_HASHES * 21_845;

/// What a sketch holds of one document: its id prefix and the start of its heads digest.
pub type SketchKey = [u8; SKETCH_KEY_LEN];

/// The sketch key of a document's inventory entry.
pub fn sketch_key(prefix: &IdPrefix, digest: &HeadsDigest) -> SketchKey {
    let mut key = [0u8; SKETCH_KEY_LEN];
    key[..8].copy_from_slice(prefix);
    key[8..].copy_from_slice(&digest[..4]);
    key
}

/// Why bytes or a cell count do not make a sketch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    /// The cell count is not a positive multiple of [`SKETCH_HASHES`] up to [`MAX_SKETCH_CELLS`].
    #[error(
        "a sketch has a multiple of {SKETCH_HASHES} cells up to {MAX_SKETCH_CELLS}, not {cells}"
    )]
    BadCellCount {
        /// The count given.
        cells: usize,
    },
    /// The bytes are not a whole number of cells.
    #[error("a sketch is {SKETCH_CELL_LEN} bytes a cell; {len} bytes are not whole cells")]
    BadLength {
        /// The length given.
        len: usize,
    },
    /// Two sketches of different cell counts cannot be subtracted.
    #[error("sketches of {ours} and {theirs} cells cannot be compared")]
    SizeMismatch {
        /// This sketch's cells.
        ours: usize,
        /// The other's.
        theirs: usize,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cell {
    /// Keys added minus keys removed, modulo 256: only a small difference must be exact.
    count: u8,
    key: SketchKey,
    check: [u8; 4],
}

impl Cell {
    fn is_empty(&self) -> bool {
        *self == Cell::default()
    }
}

/// Where a key goes and what checks it.
struct Placement {
    cells: [usize; SKETCH_HASHES],
    check: [u8; 4],
}

fn place(key: &SketchKey, cells: usize) -> Placement {
    let hash = domain_hash(DOMAIN_SKETCH, key);
    let third = cells / SKETCH_HASHES;
    let mut at = [0usize; SKETCH_HASHES];
    for (i, cell) in at.iter_mut().enumerate() {
        let word = u32::from_le_bytes([
            hash[4 * i],
            hash[4 * i + 1],
            hash[4 * i + 2],
            hash[4 * i + 3],
        ]);
        *cell = i * third + word as usize % third;
    }
    Placement {
        cells: at,
        check: [hash[12], hash[13], hash[14], hash[15]],
    }
}

/// An invertible Bloom lookup table of sketch keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sketch {
    cells: Vec<Cell>,
}

/// What peeling a difference of two sketches found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SketchDifference {
    /// Keys only the sketch subtracted from holds.
    pub ours: Vec<SketchKey>,
    /// Keys only the subtracted sketch holds.
    pub theirs: Vec<SketchKey>,
}

impl Sketch {
    /// An empty sketch of `cells` cells.
    ///
    /// Errors: [`SketchError::BadCellCount`].
    pub fn new(cells: usize) -> Result<Self, SketchError> {
        if cells == 0 || cells % SKETCH_HASHES != 0 || cells > MAX_SKETCH_CELLS {
            return Err(SketchError::BadCellCount { cells });
        }
        Ok(Self {
            cells: vec![Cell::default(); cells],
        })
    }

    /// The sketch of a node's inventory entries.
    ///
    /// Errors: [`SketchError::BadCellCount`].
    pub fn of<'e>(
        entries: impl IntoIterator<Item = &'e (IdPrefix, HeadsDigest)>,
        cells: usize,
    ) -> Result<Self, SketchError> {
        let mut sketch = Self::new(cells)?;
        for (prefix, digest) in entries {
            sketch.insert(&sketch_key(prefix, digest));
        }
        Ok(sketch)
    }

    /// Adds a key.
    pub fn insert(&mut self, key: &SketchKey) {
        self.toggle(key, 1);
    }

    fn toggle(&mut self, key: &SketchKey, count: u8) {
        let placement = place(key, self.cells.len());
        for at in placement.cells {
            let cell = &mut self.cells[at];
            cell.count = cell.count.wrapping_add(count);
            xor(&mut cell.key, key);
            xor(&mut cell.check, &placement.check);
        }
    }

    /// Its cell count.
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// Its bytes on the wire: [`SKETCH_CELL_LEN`] a cell.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.cells.len() * SKETCH_CELL_LEN);
        for cell in &self.cells {
            out.push(cell.count);
            out.extend_from_slice(&cell.key);
            out.extend_from_slice(&cell.check);
        }
        out
    }

    /// Reads a sketch's bytes.
    ///
    /// Errors: [`SketchError::BadLength`], [`SketchError::BadCellCount`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        if bytes.len() % SKETCH_CELL_LEN != 0 {
            return Err(SketchError::BadLength { len: bytes.len() });
        }
        let mut sketch = Self::new(bytes.len() / SKETCH_CELL_LEN)?;
        for (cell, raw) in sketch
            .cells
            .iter_mut()
            .zip(bytes.chunks_exact(SKETCH_CELL_LEN))
        {
            cell.count = raw[0];
            cell.key.copy_from_slice(&raw[1..1 + SKETCH_KEY_LEN]);
            cell.check.copy_from_slice(&raw[1 + SKETCH_KEY_LEN..]);
        }
        Ok(sketch)
    }

    /// Removes every key of `other` from this sketch: what is left is the difference.
    ///
    /// Errors: [`SketchError::SizeMismatch`].
    pub fn subtract(&mut self, other: &Sketch) -> Result<(), SketchError> {
        if self.cells.len() != other.cells.len() {
            return Err(SketchError::SizeMismatch {
                ours: self.cells.len(),
                theirs: other.cells.len(),
            });
        }
        for (mine, theirs) in self.cells.iter_mut().zip(&other.cells) {
            mine.count = mine.count.wrapping_sub(theirs.count);
            xor(&mut mine.key, &theirs.key);
            xor(&mut mine.check, &theirs.check);
        }
        Ok(())
    }

    /// Peels a difference (see [`Self::subtract`]) into its keys; `None` when it does not peel
    /// to empty: more differences than the cells hold, or cells no honest sketch has.
    pub fn decode(mut self) -> Option<SketchDifference> {
        let mut found = SketchDifference::default();
        let mut candidates: Vec<usize> = (0..self.cells.len()).collect();
        // Each peel takes one key out; an honest difference has at most one key a cell in
        // each third, so more peels than cells can only come from a crafted sketch.
        let mut peels_left = self.cells.len();
        while let Some(at) = candidates.pop() {
            let Some(side) = self.pure(at) else {
                continue;
            };
            if peels_left == 0 {
                return None;
            }
            peels_left -= 1;
            let key = self.cells[at].key;
            let placement = place(&key, self.cells.len());
            if side == 1 {
                found.ours.push(key);
            } else {
                found.theirs.push(key);
            }
            // Taking the key out of its cells: subtract what was added (a count of 1), or add
            // back what was subtracted (255, that is -1).
            self.toggle(&key, side.wrapping_neg());
            candidates.extend(placement.cells);
        }
        self.cells.iter().all(Cell::is_empty).then_some(found)
    }

    /// Whether the cell at `at` holds exactly one key, and its count (1 or 255) if so.
    fn pure(&self, at: usize) -> Option<u8> {
        let cell = &self.cells[at];
        if cell.count != 1 && cell.count != u8::MAX {
            return None;
        }
        let placement = place(&cell.key, self.cells.len());
        (placement.check == cell.check && placement.cells.contains(&at)).then_some(cell.count)
    }
}

fn xor<const N: usize>(into: &mut [u8; N], from: &[u8; N]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a ^= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn entry(n: u64, state: u64) -> (IdPrefix, HeadsDigest) {
        let hash = domain_hash(
            "test entry",
            &[n.to_le_bytes(), state.to_le_bytes()].concat(),
        );
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&hash[..8]);
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&hash[8..16]);
        (prefix, digest)
    }

    fn difference(
        ours: &[(IdPrefix, HeadsDigest)],
        theirs: &[(IdPrefix, HeadsDigest)],
        cells: usize,
    ) -> Option<SketchDifference> {
        let mut mine = Sketch::of(ours, cells).expect("cells");
        let other = Sketch::from_bytes(&Sketch::of(theirs, cells).expect("cells").to_bytes())
            .expect("round trip");
        mine.subtract(&other).expect("same size");
        mine.decode()
    }

    fn keys(entries: &[(IdPrefix, HeadsDigest)]) -> BTreeSet<SketchKey> {
        entries.iter().map(|(p, d)| sketch_key(p, d)).collect()
    }

    /// The divergence bench's shape at 5,000 designs: 6,793 documents, 98 of them in
    /// different states on the two sides (196 keys of difference).
    #[test]
    fn a_commons_of_thousands_with_a_hundred_differing_documents_peels_in_360_cells() {
        let ours: Vec<_> = (0..6793).map(|n| entry(n, 0)).collect();
        let theirs: Vec<_> = (0..6793)
            .map(|n| entry(n, u64::from(n % 69 == 0)))
            .collect();
        let found = difference(&ours, &theirs, 360).expect("peels");
        let (a, b) = (keys(&ours), keys(&theirs));
        assert_eq!(found.ours.len(), 99);
        assert_eq!(
            found.ours.iter().copied().collect::<BTreeSet<_>>(),
            a.difference(&b).copied().collect()
        );
        assert_eq!(
            found.theirs.iter().copied().collect::<BTreeSet<_>>(),
            b.difference(&a).copied().collect()
        );
        assert_eq!(Sketch::new(360).expect("cells").to_bytes().len(), 360 * 17);
    }

    #[test]
    fn a_difference_larger_than_the_cells_hold_is_refused_not_answered_in_part() {
        let ours: Vec<_> = (0..2000).map(|n| entry(n, 0)).collect();
        let theirs: Vec<_> = (0..2000).map(|n| entry(n, 1)).collect();
        assert_eq!(difference(&ours, &theirs, 360), None);
    }

    #[test]
    fn equal_sets_peel_to_nothing() {
        let ours: Vec<_> = (0..3000).map(|n| entry(n, 7)).collect();
        assert_eq!(
            difference(&ours, &ours, 90),
            Some(SketchDifference::default())
        );
    }

    #[test]
    fn bad_bytes_and_counts_are_refused() {
        assert_eq!(Sketch::new(0), Err(SketchError::BadCellCount { cells: 0 }));
        assert_eq!(
            Sketch::new(100),
            Err(SketchError::BadCellCount { cells: 100 })
        );
        assert_eq!(
            Sketch::from_bytes(&[0; 18]),
            Err(SketchError::BadLength { len: 18 })
        );
        let mut small = Sketch::new(3).expect("cells");
        assert_eq!(
            small.subtract(&Sketch::new(6).expect("cells")),
            Err(SketchError::SizeMismatch { ours: 3, theirs: 6 })
        );
    }

    proptest! {
        /// Peeling is exact or refuses: it never names a key that is not in the difference,
        /// nor leaves one out.
        #[test]
        fn a_peeled_difference_is_exactly_the_symmetric_difference(
            shared in 0u64..400,
            only_ours in proptest::collection::btree_set(1_000u64..2_000, 0..60),
            only_theirs in proptest::collection::btree_set(2_000u64..3_000, 0..60),
            changed in proptest::collection::btree_set(0u64..400, 0..30),
            cells in (1usize..80).prop_map(|n| n * 3),
        ) {
            let mut ours: Vec<_> = (0..shared).map(|n| entry(n, 0)).collect();
            let mut theirs: Vec<_> = (0..shared)
                .map(|n| entry(n, u64::from(changed.contains(&n))))
                .collect();
            ours.extend(only_ours.iter().map(|n| entry(*n, 0)));
            theirs.extend(only_theirs.iter().map(|n| entry(*n, 0)));
            let (a, b) = (keys(&ours), keys(&theirs));
            if let Some(found) = difference(&ours, &theirs, cells) {
                let found_ours: BTreeSet<_> = found.ours.iter().copied().collect();
                let found_theirs: BTreeSet<_> = found.theirs.iter().copied().collect();
                prop_assert_eq!(found_ours.len(), found.ours.len());
                prop_assert_eq!(found_ours, a.difference(&b).copied().collect::<BTreeSet<_>>());
                prop_assert_eq!(found_theirs, b.difference(&a).copied().collect::<BTreeSet<_>>());
            }
        }

        /// A sketch of arbitrary bytes decodes to something or nothing, within its bound.
        #[test]
        fn arbitrary_bytes_peel_within_bounds(raw in proptest::collection::vec(any::<u8>(), 0..40)) {
            let cells = 3 * (raw.len() / 3 + 1);
            let len = cells * SKETCH_CELL_LEN;
            let mut bytes = vec![0u8; len];
            for (i, b) in raw.iter().enumerate() {
                bytes[(i * 7919) % len] = *b;
            }
            let sketch = Sketch::from_bytes(&bytes).expect("whole cells");
            if let Some(found) = sketch.decode() {
                prop_assert!(found.ours.len() + found.theirs.len() <= cells);
            }
        }
    }
}
