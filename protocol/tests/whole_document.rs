//! A document that arrives whole (its automerge `save()`, what an initial sync sends) is taken
//! as automerge loaded it instead of applying every change again into an empty document
//! (issue 11: that re-apply, and saving the document again, made receiving an initial sync
//! cost about five times automerge's own load). The work is counted, not timed, and every
//! check still runs: a tampered whole document is refused and leaves nothing behind.
//!
//! ```text
//!   save() bytes -> screen -> load -> signatures, actors, coverage -> schema, history rules
//!                                      (each change)                  (the loaded document)
//!                -> the loaded document is the replica's; the bytes are its snapshot
//! ```

use hedgerow_protocol::automerge::transaction::{Transactable, Transaction};
use hedgerow_protocol::automerge::{ActorId, ChangeHash, ROOT};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::replica::changes_applied;
use hedgerow_protocol::{
    actor_for, ChangeEnvelope, ChangeProof, ChangeRecord, DeviceKey, DocReplica, IngestOutcome,
    Rejection,
};

mod common;
use common::{hashes, key, written, NOW};

/// What a responder sends a peer that lacks the document: its `save()` and covering proofs.
fn whole(replica: &DocReplica) -> (Vec<u8>, Vec<(ChangeHash, ChangeProof)>) {
    let (compact, proofs) = replica.compact_for(&hashes(replica)).expect("compact");
    match compact {
        CompactChanges::Document(bytes) => (bytes, proofs),
        other => panic!("a peer lacking the document gets its save(), got {other:?}"),
    }
}

/// The source's document with one more change made as `actor`: its `save()` and the change.
fn with_extra(
    source: &DocReplica,
    actor: ActorId,
    edit: impl FnOnce(&mut Transaction<'_>),
) -> (Vec<u8>, Vec<u8>) {
    let mut doc = source.doc().fork().with_actor(actor);
    let mut tx = doc.transaction();
    edit(&mut tx);
    tx.commit();
    let change = doc
        .get_last_local_change()
        .expect("a change")
        .raw_bytes()
        .to_vec();
    (doc.save(), change)
}

/// A proof by `key` over `change`, as an honest signer makes it.
fn proof(source: &DocReplica, key: &DeviceKey, change: &[u8]) -> ChangeProof {
    ChangeEnvelope::sign(key, source.commons(), source.id(), change.to_vec()).proof()
}

fn hash_of(change: &[u8]) -> ChangeHash {
    hedgerow_protocol::compact::decode_change(change)
        .expect("a change")
        .hash()
}

#[test]
fn a_whole_document_is_taken_as_loaded_not_applied_again() {
    let (creator, ada, ben) = (key(1), key(2), key(3));
    let mut source = written(&creator, &[&ada, &ben], 4);
    let (bytes, proofs) = whole(&source);
    let mut replica = DocReplica::new(source.genesis().clone()).expect("genesis verifies");
    let before = changes_applied();
    let accepted = replica
        .ingest_compact(&CompactChanges::Document(bytes.clone()), proofs.clone())
        .expect("an honest document is taken");
    assert_eq!(accepted.len(), 9, "every change is accepted and recorded");
    assert_eq!(
        changes_applied() - before,
        0,
        "no change is applied again into an empty document"
    );
    assert_eq!(replica.heads(), source.heads());
    assert_eq!(
        replica.take_received_snapshot(),
        Some(bytes.clone()),
        "the bytes that came are the snapshot"
    );
    assert_eq!(replica.take_received_snapshot(), None, "handed out once");

    // The same changes as a set (a receiver that holds part of a document) are applied.
    let mut by_changes = DocReplica::new(source.genesis().clone()).expect("genesis verifies");
    let changes: Vec<_> = source.doc().get_changes(&[]);
    let before = changes_applied();
    by_changes
        .ingest_compact(&CompactChanges::of_changes(&changes), proofs)
        .expect("the same changes");
    assert_eq!(changes_applied() - before, 9);

    // The loaded document takes later changes like any other; its snapshot is then stale.
    let mut again = DocReplica::new(source.genesis().clone()).expect("genesis verifies");
    let (bytes, proofs) = whole(&source);
    again
        .ingest_compact(&CompactChanges::Document(bytes), proofs)
        .expect("taken");
    let (_, edited) = source
        .edit(&ada, NOW, |tx| tx.put(ROOT, "name", "crimper, final"))
        .expect("edit");
    let (envelope, _) = edited.expect("a change");
    let outcome = again.ingest_envelope(&envelope).expect("applies");
    assert!(matches!(outcome, IngestOutcome::Applied(ref a) if a.len() == 1));
    assert_eq!(again.heads(), source.heads());
    assert_eq!(again.take_received_snapshot(), None);
    assert_eq!(again.doc().save(), source.doc().save());
}

/// Every refusal below leaves the replica as it was: empty, no snapshot to store.
fn refused(
    source: &DocReplica,
    bytes: Vec<u8>,
    proofs: Vec<(ChangeHash, ChangeProof)>,
) -> Rejection {
    let mut replica = DocReplica::new(source.genesis().clone()).expect("genesis verifies");
    let rejection = replica
        .ingest_compact(&CompactChanges::Document(bytes), proofs)
        .expect_err("a tampered document is refused");
    assert_eq!(replica.change_count(), 0, "nothing of it is recorded");
    assert!(
        replica.heads().is_empty(),
        "nothing of it is in the document"
    );
    assert_eq!(replica.take_received_snapshot(), None, "nothing to store");
    rejection
}

#[test]
fn a_tampered_whole_document_is_refused() {
    let (creator, ada, mallory) = (key(1), key(2), key(6));
    let source = written(&creator, &[&ada], 2);
    let (_, honest) = whole(&source);
    let doc = source.id();

    // A change nobody signed, slipped into the document.
    let (bytes, _) = with_extra(&source, actor_for(&mallory.author(), &doc), |tx| {
        tx.put(ROOT, "name", "mallory's crimper").expect("put");
    });
    assert!(matches!(
        refused(&source, bytes, honest.clone()),
        Rejection::Uncovered { .. }
    ));

    // Signed, but breaking the schema.
    let (bytes, change) = with_extra(&source, actor_for(&mallory.author(), &doc), |tx| {
        tx.put(ROOT, "backdoor", 1).expect("put");
    });
    let mut proofs = honest.clone();
    proofs.push((hash_of(&change), proof(&source, &mallory, &change)));
    assert!(matches!(
        refused(&source, bytes, proofs),
        Rejection::Schema { .. }
    ));

    // Signed by mallory, written as ada's actor.
    let (bytes, change) = with_extra(&source, actor_for(&ada.author(), &doc), |tx| {
        tx.put(ROOT, "name", "ada's, says mallory").expect("put");
    });
    let mut proofs = honest.clone();
    proofs.push((hash_of(&change), proof(&source, &mallory, &change)));
    assert!(matches!(
        refused(&source, bytes, proofs),
        Rejection::Envelope(_)
    ));

    // An honest document whose signature was altered on the way.
    let (bytes, mut proofs) = whole(&source);
    proofs[0].1.signature.0[5] ^= 1;
    assert!(matches!(
        refused(&source, bytes, proofs),
        Rejection::Envelope(_)
    ));

    // An honest document with one byte flipped (its checksum no longer holds).
    let (mut bytes, proofs) = whole(&source);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    assert!(matches!(
        refused(&source, bytes, proofs),
        Rejection::BadChanges { .. }
    ));
}

/// A replica loaded from a stored snapshot sends that snapshot as its whole-document payload
/// while its heads have not moved (no `save()` of the whole document per payload), and a
/// fresh `save()` once they have; both are taken whole by a fresh replica.
#[test]
fn a_replica_loaded_from_its_snapshot_sends_that_snapshot() {
    let creator = key(1);
    // Enough edits that automerge compresses the saved columns.
    let source = written(&creator, &[&key(2)], 60);
    // Uncompressed on purpose: bytes no `save()` would give, so their reuse is visible.
    let snapshot: Vec<u8> = source.doc().save_nocompress();
    assert_ne!(snapshot, source.doc().save());
    let records: Vec<(ChangeHash, ChangeRecord)> = hashes(&source)
        .into_iter()
        .map(|h| (h, source.record(&h).expect("record").clone()))
        .collect();
    let doc = hedgerow_protocol::automerge::Automerge::load(&snapshot).expect("loads");
    let mut loaded = DocReplica::from_loaded(
        source.genesis().clone(),
        doc,
        snapshot.clone().into(),
        records,
    )
    .expect("loaded");
    let (sent, proofs) = loaded.compact_for(&hashes(&loaded)).expect("payload");
    assert_eq!(sent, CompactChanges::Document(snapshot.clone()));
    let mut fresh = DocReplica::new(source.genesis().clone()).expect("genesis");
    fresh.ingest_compact(&sent, proofs).expect("taken whole");
    assert_eq!(fresh.heads(), source.heads());

    loaded
        .edit(&creator, NOW, |tx| tx.put(ROOT, "name", "crimper, revised"))
        .expect("edit");
    let (sent, proofs) = loaded.compact_for(&hashes(&loaded)).expect("payload");
    assert_ne!(sent, CompactChanges::Document(snapshot), "the heads moved");
    let mut fresh = DocReplica::new(source.genesis().clone()).expect("genesis");
    fresh.ingest_compact(&sent, proofs).expect("taken whole");
    assert_eq!(fresh.heads(), loaded.heads());
}
