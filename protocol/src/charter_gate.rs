//! The charter gate on a replica of a charter document (rule 5 of the charter, see
//! [`crate::charter`]): a charter change is taken in iff it is well formed (no automerge
//! operation, one operation in its message) and its author has the authority for it in the
//! state replayed from the change's causal past alone. Since that past is fixed by the
//! change itself, every node takes in the same charter changes whatever order they arrive in.

use crate::charter::{gate, CharterOp, CharterScope, OpRecord, Refusal};
use crate::identity::AuthorKey;
use crate::replica::{DocReplica, Refused};
use automerge::{Change, ChangeHash};
use std::collections::HashMap;

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        Refused {
            kind: refusal.kind().into(),
            reason: refusal.to_string(),
        }
    }
}

impl DocReplica {
    /// The operations of a charter document as evaluation takes them (changes whose message
    /// does not decode are left out; the gate never lets one in).
    pub fn charter_ops(&self) -> Vec<OpRecord> {
        self.doc()
            .get_changes(&[])
            .iter()
            .filter_map(|change| {
                let author = self.record(&change.hash())?.author;
                op_record(change, author).ok()
            })
            .collect()
    }

    /// The commons scope of a charter document (its genesis names the commons creator).
    pub fn charter_scope(&self) -> CharterScope {
        CharterScope {
            commons: self.commons(),
            creator: self.genesis().body.creator,
        }
    }
}

/// One charter change as an operation record, or why it is malformed.
fn op_record(change: &Change, author: AuthorKey) -> Result<OpRecord, Refused> {
    well_formed(change)?;
    let op =
        CharterOp::from_message(change.message().unwrap_or_default()).map_err(|e| Refused {
            kind: CHARTER_MALFORMED.into(),
            reason: format!("its message is not a charter operation: {e}"),
        })?;
    Ok(OpRecord {
        hash: change.hash().0,
        deps: change.deps().iter().map(|d| d.0).collect(),
        author,
        op,
    })
}

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
    let mut known = replica.charter_ops();
    let mut records = Vec::with_capacity(fresh.len());
    for change in fresh {
        let Some(author) = authors.get(&change.hash()) else {
            continue;
        };
        match op_record(change, *author) {
            Ok(record) => records.push(record),
            Err(refused) => {
                out.insert(change.hash(), refused);
            }
        }
    }
    known.extend(records.iter().cloned());
    let scope = replica.charter_scope();
    for record in &records {
        if record.op.commons != scope.commons {
            out.insert(
                ChangeHash(record.hash),
                Refused {
                    kind: CHARTER_MALFORMED.into(),
                    reason: format!(
                        "the operation is for commons {}, not this one",
                        record.op.commons
                    ),
                },
            );
            continue;
        }
        if let Err(refusal) = gate(record, &known, scope) {
            out.insert(ChangeHash(record.hash), refusal.into());
        }
    }
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
