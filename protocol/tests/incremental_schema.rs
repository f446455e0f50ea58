//! A replica that already holds a document checks a new change against the schema of the
//! fields it writes in, not the whole document: hostile values deep inside a field and
//! unknown fields are still refused, honest edits are still taken, and none of it validates
//! the whole document again.

mod common;

use common::{key, written};
use hedgerow_protocol::automerge::{transaction::Transactable, ObjType, ReadDoc, ROOT};
use hedgerow_protocol::schema::{self, whole_validations};
use hedgerow_protocol::{actor_for, ChangeEnvelope, DeviceKey, DocReplica, Rejection};

/// A copy of `replica` taken in whole, as a peer would hold it.
fn copy_of(replica: &DocReplica) -> DocReplica {
    let mut copy = DocReplica::new(replica.genesis().clone()).expect("genesis");
    let (compact, proofs) = replica
        .compact_for(&common::hashes(replica))
        .expect("compact");
    copy.ingest_compact(&compact, proofs)
        .expect("an honest copy");
    copy
}

/// `by`'s change made with raw automerge (no schema refusal on the writing side), signed.
fn raw_change(
    replica: &DocReplica,
    by: &DeviceKey,
    write: impl FnOnce(&mut hedgerow_protocol::automerge::transaction::Transaction<'_>),
) -> ChangeEnvelope {
    let mut doc = replica.doc().fork();
    doc.set_actor(actor_for(&by.author(), &replica.id()));
    let mut tx = doc.transaction();
    write(&mut tx);
    let (hash, _) = tx.commit();
    let change = doc
        .get_change_by_hash(&hash.expect("a change"))
        .expect("made");
    ChangeEnvelope::sign(
        by,
        replica.commons(),
        replica.id(),
        change.raw_bytes().to_vec(),
    )
}

#[test]
fn a_bad_value_inside_a_field_is_refused_from_that_field_alone() {
    let (creator, mallory) = (key(1), key(2));
    let original = written(&creator, &[], 1);
    let mut receiver = copy_of(&original);
    let heads = receiver.heads();
    // A release that is a number, not a record: inside the `releases` map object.
    let bad = raw_change(&original, &mallory, |tx| {
        let (_, releases) = tx.get(ROOT, "releases").unwrap().expect("releases map");
        tx.put(&releases, "9.9", 42_i64).unwrap();
    });
    let whole = whole_validations();
    let refused = receiver.ingest_envelope(&bad).unwrap_err();
    assert!(matches!(refused, Rejection::Schema { .. }), "{refused:?}");
    assert_eq!(receiver.heads(), heads, "nothing of it was kept");
    // An unknown top-level field, written on the root.
    let unknown = raw_change(&original, &mallory, |tx| {
        tx.put(ROOT, "backdoor", "x").unwrap();
    });
    let refused = receiver.ingest_envelope(&unknown).unwrap_err();
    assert!(matches!(refused, Rejection::Schema { .. }), "{refused:?}");
    assert_eq!(whole_validations() - whole, 0, "checked field by field");
}

#[test]
fn honest_edits_are_taken_without_validating_the_whole_document() {
    let (creator, ben) = (key(1), key(3));
    let original = written(&creator, &[], 1);
    let mut receiver = copy_of(&original);
    let step = raw_change(&original, &ben, |tx| {
        let (_, steps) = tx.get(ROOT, "steps").unwrap().expect("steps list");
        let text = tx.insert_object(&steps, 0, ObjType::Text).unwrap();
        tx.splice_text(&text, 0, 0, "Weld the drum shut").unwrap();
    });
    let whole = whole_validations();
    receiver.ingest_envelope(&step).expect("an honest step");
    let mut edited = original.doc().fork();
    edited
        .apply_changes([step.verify().expect("signed").change])
        .expect("applies");
    assert_eq!(receiver.heads(), edited.get_heads());
    assert_eq!(whole_validations() - whole, 0, "checked field by field");
    // The receiver's document is still valid as a whole.
    schema::validate_document(receiver.doc(), receiver.kind()).expect("valid");
}
