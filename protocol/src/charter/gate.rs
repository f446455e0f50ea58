//! The charter gate: whether a charter change may enter the store, judged on its causal past alone.

use super::admit::Refusal;
use super::evaluate::{CharterState, Mode, MAX_CHARTER_OPS};
use super::{CharterScope, OpRecord};
use std::collections::{HashMap, HashSet};

/// Whether `record` may be taken into the charter document (rule 5 of the module docs).
///
/// Its causal past is the records reachable through `deps` from `record`, found in
/// `known` (which may hold more records; only the reachable ones count). The verdict depends only
/// on `record` and that causal past, so every node reaches the same one whenever it asks.
/// The caller has already checked the change's signature and that it carries exactly one operation
/// ([`super::CharterOp::from_message`]). Costs one evaluation of the causal past; to gate many
/// changes use a [`Gatekeeper`].
pub fn gate(
    record: &OpRecord,
    known: &[OpRecord],
    scope: impl Into<CharterScope>,
) -> Result<(), Refusal> {
    let scope = scope.into();
    let state = past_state(record, known, scope)?;
    Ok(state.check(record, Mode::Gate)?)
}

/// The state replayed from `record`'s causal past, without a log.
fn past_state(
    record: &OpRecord,
    known: &[OpRecord],
    scope: CharterScope,
) -> Result<CharterState, Refusal> {
    let by_hash: HashMap<[u8; 32], &OpRecord> = known.iter().map(|r| (r.hash, r)).collect();
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let mut past: Vec<OpRecord> = Vec::new();
    let mut stack: Vec<[u8; 32]> = record.deps.clone();
    while let Some(hash) = stack.pop() {
        if !seen.insert(hash) {
            continue;
        }
        let Some(dep) = by_hash.get(&hash) else {
            return Err(Refusal::MissingDependency);
        };
        // `record` would be operation number `past.len() + 1`.
        if past.len() >= MAX_CHARTER_OPS {
            return Err(Refusal::CharterFull);
        }
        past.push((*dep).clone());
        stack.extend(dep.deps.iter().copied());
    }
    if past.len() >= MAX_CHARTER_OPS {
        return Err(Refusal::CharterFull);
    }
    Ok(CharterState::evaluate_with(scope, &past, false))
}

/// How many replayed states a [`Gatekeeper`] keeps for the children still to come.
const GATEKEEPER_STATES: usize = 32;

/// Gates a stream of charter changes of one commons with the same verdicts as [`gate`], reusing
/// work along chains: the state after a change that passed is kept, and a change whose only
/// dependency is that change is judged on it plus one replay step instead of a whole evaluation.
///
/// This is exact, not a heuristic: when a change's causal past is its single parent's causal past
/// plus the parent, the parent is the last operation of that set's linear order (it depends on
/// all the rest), so the replay of the set is the parent's replay plus one step. A history of n
/// changes arriving in causal order then costs O(n log n) instead of O(n² log n); merges and
/// second children fall back to a full evaluation of their causal past.
pub struct Gatekeeper {
    scope: CharterScope,
    after: HashMap<[u8; 32], (u64, CharterState)>,
    inserted: u64,
}

impl Gatekeeper {
    /// A gatekeeper for the charter of `scope`'s commons.
    pub fn new(scope: impl Into<CharterScope>) -> Gatekeeper {
        Gatekeeper {
            scope: scope.into(),
            after: HashMap::new(),
            inserted: 0,
        }
    }

    /// The same verdict as [`gate`]`(record, known, scope)`. A change whose single parent this
    /// gatekeeper passed is judged without looking at `known` (the parent's causal past is fixed
    /// by its hash), so `known` may be empty then.
    pub fn gate(&mut self, record: &OpRecord, known: &[OpRecord]) -> Result<(), Refusal> {
        let cached = match record.deps.as_slice() {
            [parent] => self.after.remove(parent).map(|(_, state)| state),
            _ => None,
        };
        let mut state = match cached {
            Some(state) if state.ops >= MAX_CHARTER_OPS => return Err(Refusal::CharterFull),
            Some(state) => state,
            None => past_state(record, known, self.scope)?,
        };
        state.check(record, Mode::Gate)?;
        state.replay(record);
        if self.after.len() >= GATEKEEPER_STATES {
            let oldest = self
                .after
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(hash, _)| *hash);
            if let Some(oldest) = oldest {
                self.after.remove(&oldest);
            }
        }
        self.inserted += 1;
        self.after.insert(record.hash, (self.inserted, state));
        Ok(())
    }
}
