//! How much signature work taking changes in costs, counted rather than timed (issue 11).
//!
//! An envelope used to have its signature checked twice (by `verify`, then again with a
//! second parse of the change while working out coverage), and every proof of a bundle
//! decompressed its author's key anew. These tests count the work on the calling thread
//! with `identity::work_counts`: one signature check per signature, one key per author.
//!
//! ```text
//!   envelope:  verify (1 signature) -> apply          (was: verify, then verify again)
//!   bundle:    3 authors x 8 signed changes -> 24 signatures, 3 keys   (was: 24 keys)
//! ```

use hedgerow_protocol::automerge::ReadDoc;
use hedgerow_protocol::envelope::EnvelopeError;
use hedgerow_protocol::identity::{work_counts, SignatureError, WorkCounts};
use hedgerow_protocol::{ChangeEnvelope, ChangeProof, DocReplica, IngestOutcome, Rejection};

mod common;
use common::{hashes, key, written};

/// Every stored change with its own proof, in causal order.
fn stored(replica: &DocReplica) -> Vec<(Vec<u8>, Option<ChangeProof>)> {
    hashes(replica)
        .iter()
        .map(|h| {
            let bytes = replica
                .doc()
                .get_change_by_hash(h)
                .expect("held")
                .raw_bytes()
                .to_vec();
            (bytes, replica.record(h).and_then(|r| r.proof.clone()))
        })
        .collect()
}

fn delta(before: WorkCounts) -> WorkCounts {
    let now = work_counts();
    WorkCounts {
        signatures: now.signatures - before.signatures,
        keys: now.keys - before.keys,
    }
}

#[test]
fn an_envelope_signature_is_checked_once() {
    let (creator, ada) = (key(1), key(2));
    let source = written(&creator, &[&ada], 3);
    let envelopes: Vec<ChangeEnvelope> = source.envelopes_for(&hashes(&source));
    assert_eq!(envelopes.len(), 4);
    let mut replica = DocReplica::new(source.genesis().clone()).expect("genesis verifies");
    for envelope in &envelopes {
        let before = work_counts();
        let outcome = replica.ingest_envelope(envelope).expect("applies");
        assert!(matches!(outcome, IngestOutcome::Applied(ref a) if a.len() == 1));
        assert_eq!(
            delta(before),
            WorkCounts {
                signatures: 1,
                keys: 1
            },
            "one envelope, one signature check"
        );
    }
    assert_eq!(replica.heads(), source.heads());
}

#[test]
fn a_held_envelope_is_not_checked_again_when_it_applies() {
    let (creator, ada) = (key(1), key(2));
    let source = written(&creator, &[&ada], 2);
    let envelopes: Vec<ChangeEnvelope> = source.envelopes_for(&hashes(&source));
    let mut replica = DocReplica::new(source.genesis().clone()).expect("genesis verifies");
    let before = work_counts();
    // Newest first: each waits for the one before it, then all apply at once.
    for envelope in envelopes.iter().rev() {
        replica.ingest_envelope(envelope).expect("held or applied");
    }
    assert_eq!(replica.heads(), source.heads());
    assert_eq!(delta(before).signatures, envelopes.len() as u64);
}

#[test]
fn a_bundle_decompresses_each_author_key_once() {
    let (creator, ada, ben) = (key(1), key(2), key(3));
    let source = written(&creator, &[&ada, &ben, &creator], 8);
    let changes = stored(&source);
    let signed = changes.iter().filter(|(_, p)| p.is_some()).count() as u64;
    assert_eq!(signed, 25);
    let before = work_counts();
    let rebuilt = DocReplica::rebuild(source.genesis().clone(), changes).expect("rebuilds");
    assert_eq!(rebuilt.heads(), source.heads());
    // The genesis record's own signature and key, then each signature once and each of the
    // three authors' keys once.
    assert_eq!(
        delta(before),
        WorkCounts {
            signatures: 1 + signed,
            keys: 1 + 3
        }
    );
}

#[test]
fn one_bad_signature_in_a_bundle_is_named_and_the_bundle_refused() {
    let (creator, ada, ben) = (key(1), key(2), key(3));
    let source = written(&creator, &[&ada, &ben], 6);
    let mut changes = stored(&source);
    // Ben's third change: its signature no longer matches its bytes.
    let victim = changes
        .iter()
        .enumerate()
        .filter(|(_, (_, p))| p.as_ref().is_some_and(|p| p.author == ben.author()))
        .nth(2)
        .map(|(i, _)| i)
        .expect("ben wrote");
    if let Some(proof) = changes[victim].1.as_mut() {
        proof.signature.0[10] ^= 0x40;
    }
    let refused = DocReplica::rebuild(source.genesis().clone(), changes).expect_err("refused");
    assert_eq!(
        refused,
        Rejection::Envelope(EnvelopeError::Signature(SignatureError::Mismatch(
            ben.author()
        )))
    );
}
