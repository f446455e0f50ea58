//! The coverage check (which signature covers which change) under hostile graphs.
//!
//! It used to walk the whole dependency graph once per proof: a 20,000-change chain
//! with 2,000 throwaway keys took 17 s. These tests assert counts, not time: the
//! worst payload the caps allow (every change a different key's, round robin) takes
//! a few graph steps per change, payloads over the caps are refused with a typed
//! rejection, and a proof never covers a change it does not hash-link to.
//!
//! ```text
//!   at the caps: k1 k2 .. k1024 k1 k2 .. k1024 ...   (65,536 changes, 1,024 proofs)
//!                each change depends on the one before and on its key's previous change
//! ```

use hedgerow_protocol::automerge::{
    transaction::Transactable, Change, ChangeHash, ExpandedChange, ROOT,
};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::coverage::{reach, MAX_PAYLOAD_CHANGES, MAX_PAYLOAD_PROOFS};
use hedgerow_protocol::schema::{self, DocKind, NewDocument};
use hedgerow_protocol::{
    actor_for, ChangeEnvelope, ChangeProof, CommonsGenesis, DeviceKey, DocGenesis, DocReplica,
    Rejection, Signed,
};
use std::collections::HashMap;

const NOW: i64 = 1_700_000_000;

fn key(n: u32) -> DeviceKey {
    let mut secret = [0u8; 32];
    secret[..4].copy_from_slice(&n.to_le_bytes());
    secret[31] = 1;
    DeviceKey::from_secret(secret)
}

fn genesis(creator: &DeviceKey) -> Signed<DocGenesis> {
    let commons = CommonsGenesis {
        name: "Farm Hack".into(),
        description: "open farm tools".into(),
        creator: creator.author(),
        created_at: NOW,
        nonce: [7; 16],
    }
    .sign(creator)
    .body
    .id();
    DocGenesis {
        commons,
        kind: DocKind::Design,
        creator: creator.author(),
        created_at: NOW,
        nonce: [9; 16],
        fork: None,
    }
    .sign(creator)
}

/// A design made by `writers` in turn, one `name` edit each; returns the writer's replica.
fn written(creator: &DeviceKey, writers: &[&DeviceKey]) -> DocReplica {
    let mut replica = DocReplica::new(genesis(creator)).expect("genesis verifies");
    replica
        .edit(creator, NOW, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Roller crimper"))
        })
        .expect("skeleton");
    for (i, writer) in writers.iter().enumerate() {
        replica
            .edit(writer, NOW, |tx| {
                tx.put(ROOT, "name", format!("crimper {i}"))
            })
            .expect("edit");
    }
    replica
}

fn all_changes(replica: &DocReplica) -> Vec<Change> {
    replica.doc().get_changes(&[])
}

/// The coverage walk over `changes` with a proof over each actor's latest change: the
/// changes it reaches and the graph steps it takes.
fn walk(changes: &[Change]) -> (Vec<ChangeHash>, usize) {
    let by_hash: HashMap<ChangeHash, &Change> = changes.iter().map(|c| (c.hash(), c)).collect();
    let mut latest: HashMap<_, &Change> = HashMap::new();
    for change in changes {
        let entry = latest.entry(change.actor_id().clone()).or_insert(change);
        if change.seq() > entry.seq() {
            *entry = change;
        }
    }
    let signer = key(0).author();
    let signed: Vec<(ChangeHash, _)> = latest.values().map(|c| (c.hash(), signer)).collect();
    let (authors, steps) = reach(&by_hash, &signed);
    (authors.into_keys().collect(), steps)
}

fn steps_for(changes: &[Change]) -> Option<usize> {
    let (reached, steps) = walk(changes);
    (reached.len() == changes.len()).then_some(steps)
}

/// Sends all of `replica` to a fresh replica in compact form with the covering proofs.
fn deliver(replica: &DocReplica) -> Result<usize, Rejection> {
    let hashes: Vec<ChangeHash> = all_changes(replica).iter().map(Change::hash).collect();
    let (compact, proofs) = replica.compact_for(&hashes).expect("compact");
    let mut fresh = DocReplica::new(replica.genesis().clone()).expect("genesis verifies");
    fresh.ingest_compact(&compact, proofs).map(|a| a.len())
}

#[test]
fn automerge_names_the_actor_s_previous_change_as_a_direct_dependency() {
    // a1, b1, b2, then a2: a1 is already an ancestor of b2, and a2 still names it.
    let creator = key(0);
    let (a, b) = (key(1), key(2));
    let replica = written(&creator, &[&a, &b, &b, &a]);
    let changes = all_changes(&replica);
    let (a1, b2, a2) = (&changes[1], &changes[3], &changes[4]);
    assert_eq!((a1.seq(), a2.seq()), (1, 2));
    assert_eq!(a2.actor_id(), a1.actor_id());
    assert!(a2.deps().contains(&a1.hash()) && a2.deps().contains(&b2.hash()));
    let deps: usize = changes.iter().map(|c| c.deps().len()).sum();
    assert!(steps_for(&changes).expect("every change reached") <= changes.len() + deps);
}

#[test]
fn the_worst_payload_at_the_caps_takes_linear_steps() {
    let creator = key(0);
    let base = written(&creator, &[]);
    let (commons, doc) = (base.commons(), base.id());
    let keys: Vec<DeviceKey> = (1..=MAX_PAYLOAD_PROOFS as u32).map(key).collect();
    let mut template: ExpandedChange = all_changes(&base)[0].decode();
    template.operations.clear();
    template.hash = None;
    let mut changes: Vec<Change> = Vec::with_capacity(MAX_PAYLOAD_CHANGES);
    let mut latest: Vec<Option<ChangeHash>> = vec![None; keys.len()];
    for i in 0..MAX_PAYLOAD_CHANGES {
        let k = i % keys.len();
        let mut next = template.clone();
        next.actor_id = actor_for(&keys[k].author(), &doc);
        next.seq = (i / keys.len()) as u64 + 1;
        next.start_op = std::num::NonZeroU64::MIN;
        next.deps = changes.last().map(Change::hash).into_iter().collect();
        next.deps
            .extend(latest[k].filter(|h| !next.deps.contains(h)));
        next.deps.sort();
        let change = Change::from(next);
        latest[k] = Some(change.hash());
        changes.push(change);
    }
    // The old check walked the whole graph per proof: 1,024 × 65,536 steps.
    let steps = steps_for(&changes).expect("every change reached from its key's latest");
    assert!(steps <= 4 * changes.len(), "{steps} steps");

    // Through a replica, a quarter of it (automerge's own apply dominates a debug build's
    // time): every one of the 1,024 proofs covers a key's 16 changes.
    let part = &changes[..MAX_PAYLOAD_CHANGES / 4];
    let mut latest: HashMap<_, &Change> = HashMap::new();
    for change in part {
        latest.insert(change.actor_id().clone(), change);
    }
    let proofs: Vec<(ChangeHash, ChangeProof)> = keys
        .iter()
        .map(|key| {
            let change = latest[&actor_for(&key.author(), &doc)];
            let bytes = change.raw_bytes().to_vec();
            (
                change.hash(),
                ChangeEnvelope::sign(key, commons, doc, bytes).proof(),
            )
        })
        .collect();
    assert_eq!(proofs.len(), MAX_PAYLOAD_PROOFS);
    let mut fresh = DocReplica::new(base.genesis().clone()).expect("genesis verifies");
    let accepted = fresh
        .ingest_compact(&CompactChanges::of_changes(part), proofs)
        .expect("a payload with the most proofs is accepted");
    assert_eq!(accepted.len(), part.len());
}

#[test]
fn honest_interleaved_authors_take_a_few_steps_per_change() {
    let creator = key(0);
    let authors: Vec<DeviceKey> = (1..=8).map(key).collect();
    let writers: Vec<&DeviceKey> = (0..2_000).map(|i| &authors[i % authors.len()]).collect();
    let replica = written(&creator, &writers);
    let changes = all_changes(&replica);
    let steps = steps_for(&changes).expect("an honest graph is covered");
    assert!(
        steps <= 3 * changes.len(),
        "{steps} steps for {} changes",
        changes.len()
    );
    assert_eq!(deliver(&replica).expect("accepted"), changes.len());
}

#[test]
fn payloads_over_the_caps_are_refused_before_any_graph_work() {
    let creator = key(0);
    let replica = written(&creator, &[&creator]);
    let mut fresh = DocReplica::new(replica.genesis().clone()).expect("genesis verifies");
    let hashes: Vec<ChangeHash> = all_changes(&replica).iter().map(Change::hash).collect();
    let (compact, proofs) = replica.compact_for(&hashes).expect("compact");
    let padded: Vec<(ChangeHash, ChangeProof)> =
        std::iter::repeat_n(proofs[0].clone(), MAX_PAYLOAD_PROOFS + 1).collect();
    assert_eq!(
        fresh.ingest_compact(&compact, padded).unwrap_err(),
        Rejection::TooManyProofs {
            count: MAX_PAYLOAD_PROOFS + 1
        }
    );

    // Empty changes of one actor, each on the last: tiny on the wire, one over the change cap.
    let mut template: ExpandedChange = all_changes(&replica)[0].decode();
    template.operations.clear();
    template.hash = None;
    let mut changes: Vec<Change> = Vec::with_capacity(MAX_PAYLOAD_CHANGES + 1);
    for seq in 1..=(MAX_PAYLOAD_CHANGES as u64 + 1) {
        let mut next = template.clone();
        next.seq = seq;
        next.deps = changes.last().map(|c| vec![c.hash()]).unwrap_or_default();
        changes.push(Change::from(next));
    }
    let compact = CompactChanges::of_changes(&changes);
    assert_eq!(
        fresh.ingest_compact(&compact, Vec::new()).unwrap_err(),
        Rejection::TooManyChanges {
            count: MAX_PAYLOAD_CHANGES + 1
        }
    );
    assert_eq!(fresh.change_count(), 0);
}

/// Re-encodes `change` with another sequence number and dependencies (new hash, same actor).
fn forged(change: &Change, seq: u64, deps: Vec<ChangeHash>) -> Change {
    let mut expanded: ExpandedChange = change.decode();
    expanded.seq = seq;
    expanded.hash = None;
    expanded.deps = deps;
    Change::from(expanded)
}

#[test]
fn a_proof_never_covers_a_change_it_does_not_link_to() {
    // Mallory signs her seq 2 on a branch that skips her seq 1; Eve supplies a seq 1
    // of Mallory's actor that Mallory never linked to. Proven seq 2 must not cover it.
    let creator = key(0);
    let mallory = key(66);
    let base = written(&creator, &[]);
    let skeleton = all_changes(&base).remove(0);
    let theirs = written(&creator, &[&mallory]);
    let mallory_one = all_changes(&theirs).pop().expect("mallory's change");
    let mallory_two = forged(&mallory_one, 2, vec![skeleton.hash()]);
    let eve_one = forged(&mallory_one, 1, vec![skeleton.hash()]);
    let set = vec![skeleton.clone(), eve_one.clone(), mallory_two.clone()];
    let (reached, _) = walk(&set);
    assert!(
        !reached.contains(&eve_one.hash()),
        "a signature covered a change it does not link to"
    );

    let commons = base.commons();
    let doc = base.id();
    let proof_two =
        ChangeEnvelope::sign(&mallory, commons, doc, mallory_two.raw_bytes().to_vec()).proof();
    let proof_skeleton = base
        .record(&skeleton.hash())
        .and_then(|r| r.proof.clone())
        .expect("own proof");
    let mut fresh = DocReplica::new(base.genesis().clone()).expect("genesis verifies");
    let compact = CompactChanges::of_changes(&set);
    let refused = fresh
        .ingest_compact(
            &compact,
            vec![
                (skeleton.hash(), proof_skeleton),
                (mallory_two.hash(), proof_two),
            ],
        )
        .unwrap_err();
    assert_eq!(
        refused,
        Rejection::Uncovered {
            hash: eve_one.hash().to_string()
        }
    );
    assert_eq!(fresh.change_count(), 0);
}
