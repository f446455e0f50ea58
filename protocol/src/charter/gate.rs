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
/// ([`super::CharterOp::from_message`]).
pub fn gate(
    record: &OpRecord,
    known: &[OpRecord],
    scope: impl Into<CharterScope>,
) -> Result<(), Refusal> {
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
        if past.len() >= MAX_CHARTER_OPS {
            return Err(Refusal::CharterFull);
        }
        past.push((*dep).clone());
        stack.extend(dep.deps.iter().copied());
    }
    let state = CharterState::evaluate(scope, &past);
    Ok(state.check(record, Mode::Gate)?)
}
