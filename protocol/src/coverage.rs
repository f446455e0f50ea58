//! Which signature covers which change of an incoming set, in one pass.
//!
//! A proof over change `P` (actor `a`, sequence number `s`) covers every change of
//! `a` that `P` hash-links to. Walking the dependency graph once per proof made that
//! quadratic (a 20,000-change chain with 2,000 throwaway keys took 17 s). Instead each
//! change's link to its actor's previous change is checked once: automerge 0.12 lists
//! an actor's previous change among a new change's direct dependencies
//! (`Automerge::transaction_args`), so change `(a, t)` with `t > 1` must name
//! `(a, t-1)` in its `deps`. When every change does, `a`'s changes below `P` are
//! exactly those with a smaller sequence number, and coverage is "the highest proven
//! sequence number of `a` is at least `t`": linear in changes, dependencies and proofs.
//! automerge itself does not check the link on receipt (it only asserts, by panicking,
//! that sequence numbers are contiguous), so it is checked here.

use crate::identity::AuthorKey;
use automerge::{ActorId, Change, ChangeHash};
use std::collections::HashMap;

/// Most changes one document payload (a sync response item or a bundle record) may carry.
///
/// The benchmark commons' largest documents have a few hundred changes; this leaves
/// room for a hundred times that while bounding what one payload can cost.
pub const MAX_PAYLOAD_CHANGES: usize = 65_536;

/// Most signatures one document payload may carry: one per author of the document
/// (a fork's inherited authors count again), where the benchmark commons has about 343
/// authors in all.
pub const MAX_PAYLOAD_PROOFS: usize = 1_024;

/// A change that does not name its actor's previous change (absent, or not a direct dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenChain(pub ChangeHash);

/// Checks that every change in `fresh` names its actor's previous change (in `fresh` or in
/// `held`, the document's changes by actor and sequence number) as a direct dependency.
///
/// Returns the graph steps taken: one per change plus one per dependency looked at.
pub fn check_chains(
    fresh: &[Change],
    held: &HashMap<(ActorId, u64), ChangeHash>,
) -> Result<usize, BrokenChain> {
    let fresh_seq: HashMap<(&ActorId, u64), ChangeHash> = fresh
        .iter()
        .map(|c| ((c.actor_id(), c.seq()), c.hash()))
        .collect();
    let mut steps = 0usize;
    for change in fresh {
        steps += 1;
        let seq = change.seq();
        if seq == 1 {
            continue;
        }
        let actor = change.actor_id();
        let previous = seq
            .checked_sub(1)
            .filter(|seq| *seq > 0)
            .and_then(|seq| {
                fresh_seq
                    .get(&(actor, seq))
                    .or_else(|| held.get(&(actor.clone(), seq)))
            })
            .ok_or(BrokenChain(change.hash()))?;
        let position = change.deps().iter().position(|d| d == previous);
        steps += position.map_or(change.deps().len(), |p| p + 1);
        if position.is_none() {
            return Err(BrokenChain(change.hash()));
        }
    }
    Ok(steps)
}

/// The highest verified proof per actor: (sequence number, author).
pub(crate) type Proven = HashMap<ActorId, (u64, AuthorKey)>;

/// Records that `author`'s valid proof over `change` covers its actor up to its sequence number.
pub(crate) fn prove(proven: &mut Proven, change: &Change, author: AuthorKey) {
    let entry = proven
        .entry(change.actor_id().clone())
        .or_insert((0, author));
    if change.seq() >= entry.0 {
        *entry = (change.seq(), author);
    }
}

/// The author covering `change`, if a proof of its actor reaches its sequence number.
pub(crate) fn covering(proven: &Proven, change: &Change) -> Option<AuthorKey> {
    proven
        .get(change.actor_id())
        .filter(|(seq, _)| *seq >= change.seq())
        .map(|(_, author)| *author)
}
