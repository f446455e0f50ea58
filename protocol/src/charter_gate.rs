//! The charter gate on a replica of a charter document (rule 5 of the charter, see
//! [`crate::charter`]): a charter change is taken in iff it is well formed (no automerge
//! operation, one operation in its message) and its author has the authority for it in the
//! state replayed from the change's causal past alone. Since that past is fixed by the
//! change itself, every node takes in the same charter changes whatever order they arrive in.

use crate::charter::{CharterOp, CharterScope, Gatekeeper, OpRecord, Refusal};
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
    // Parents before children, so the gatekeeper judges a chain in one replay step per change.
    let records = causal_order(records);
    let mut keeper = Gatekeeper::new(scope);
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
        if let Err(refusal) = keeper.gate(record, &known) {
            out.insert(ChangeHash(record.hash), refusal.into());
        }
    }
    out
}

/// `records` with every record after those of its dependencies that are among them (Kahn's
/// algorithm; the order among independent records is the given one).
fn causal_order(records: Vec<OpRecord>) -> Vec<OpRecord> {
    let index: HashMap<[u8; 32], usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.hash, i))
        .collect();
    let mut waiting: Vec<usize> = vec![0; records.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); records.len()];
    for (i, record) in records.iter().enumerate() {
        for dep in &record.deps {
            if let Some(&parent) = index.get(dep) {
                waiting[i] += 1;
                children[parent].push(i);
            }
        }
    }
    let mut ready: std::collections::VecDeque<usize> =
        (0..records.len()).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(records.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &child in &children[i] {
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.push_back(child);
            }
        }
    }
    let mut slots: Vec<Option<OpRecord>> = records.into_iter().map(Some).collect();
    // A cycle cannot occur between hashes; any record left out would be kept last anyway.
    let mut out: Vec<OpRecord> = order.iter().filter_map(|i| slots[*i].take()).collect();
    out.extend(slots.into_iter().flatten());
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

#[cfg(test)]
mod tests {
    use crate::charter::{CharterAction, CharterOp};
    use crate::genesis::{CommonsGenesis, DocGenesis};
    use crate::identity::DeviceKey;
    use crate::replica::{DocReplica, Rejection};
    use crate::{actor_for_install, ChangeEnvelope};
    use automerge::transaction::Transactable;

    fn charter(founder: &DeviceKey) -> DocReplica {
        let commons = CommonsGenesis {
            name: "Farm Hack".into(),
            description: String::new(),
            creator: founder.author(),
            created_at: 1,
            nonce: [1; 16],
        }
        .id();
        DocReplica::new(DocGenesis::unsigned_charter(commons, founder.author())).expect("charter")
    }

    fn refused_kind(result: Result<impl std::fmt::Debug, Rejection>) -> String {
        match result {
            Err(Rejection::NotAdmitted { refused, .. }) => refused.kind,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A charter change must carry one decodable operation and no automerge operation, and
    /// its author must have the authority for it; the founder's `Found` passes.
    #[test]
    fn charter_changes_are_gated() {
        let founder = DeviceKey::from_secret([1; 32]);
        let stranger = DeviceKey::from_secret([2; 32]);
        let mut replica = charter(&founder);
        let op = CharterOp {
            commons: replica.commons(),
            at: 5,
            action: CharterAction::Found { private: false },
        };
        assert_eq!(
            refused_kind(replica.charter_change(&founder, 5, "not base64 !".into())),
            "charter-malformed"
        );
        assert_eq!(
            refused_kind(replica.charter_change(&stranger, 5, op.to_message())),
            "charter-unauthorised"
        );
        assert_eq!(
            replica.change_count(),
            0,
            "nothing of the refused ones stays"
        );
        replica
            .charter_change(&founder, 5, op.to_message())
            .expect("the founder founds");
        // A change with an automerge operation, even with a good message, is malformed.
        let mut doc = replica.doc().fork();
        doc.set_actor(actor_for_install(
            &founder.author(),
            &replica.id(),
            &founder.install(),
        ));
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "x", 1).expect("put");
        tx.commit_with(
            automerge::transaction::CommitOptions::default().with_message(op.to_message()),
        );
        let change = doc
            .get_last_local_change()
            .expect("change")
            .raw_bytes()
            .to_vec();
        let envelope = ChangeEnvelope::sign(&founder, replica.commons(), replica.id(), change);
        assert_eq!(
            refused_kind(replica.ingest_envelope(&envelope)),
            "charter-malformed"
        );
        assert_eq!(replica.change_count(), 1);
    }
}
