//! A release is written once and a fork's inherited history is what its genesis
//! declares, for remote changes (envelope, compact and whole-document forms) as for
//! local edits.
//!
//! ```text
//!   design ── skeleton ── release 1.0 ── edit ── later (by the parent's author)
//!                  mallory's rewrite of 1.0 ─┘        │
//!   fork (declares heads = release 1.0) ── clear ─────┴─ graft of `later`: refused
//! ```

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use hedgerow_protocol::automerge::{
    transaction::Transactable, ChangeHash, ObjType, ReadDoc, ScalarValue, Value, ROOT,
};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::schema::{self, DocKind, Edit, EditContext, NewDocument};
use hedgerow_protocol::{
    actor_for, ChangeEnvelope, CommonsGenesis, DeviceKey, DocGenesis, DocReplica, ForkOrigin,
    Rejection, Signed,
};

const NOW: i64 = 1_700_000_000;

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_secret([n; 32])
}

fn design_genesis(creator: &DeviceKey, fork: Option<ForkOrigin>, nonce: u8) -> Signed<DocGenesis> {
    let founder = key(1);
    let commons = CommonsGenesis {
        name: "Farm Hack".into(),
        description: "open farm tools".into(),
        creator: founder.author(),
        created_at: NOW,
        nonce: [7; 16],
    }
    .sign(&founder)
    .body
    .id();
    DocGenesis {
        commons,
        kind: DocKind::Design,
        creator: creator.author(),
        created_at: NOW,
        nonce: [nonce; 16],
        fork,
    }
    .sign(creator)
}

fn apply(replica: &mut DocReplica, by: &DeviceKey, edit: Edit) {
    let ctx = EditContext {
        author: by.author().to_string(),
        now_unix: NOW,
    };
    replica
        .edit(by, NOW, |tx| {
            schema::apply_edit(tx, DocKind::Design, &edit, &ctx)
        })
        .expect("edit applies");
}

/// A design with release 1.0 pinned at its skeleton and one edit after it.
fn released(creator: &DeviceKey) -> DocReplica {
    let mut replica = DocReplica::new(design_genesis(creator, None, 9)).expect("genesis");
    replica
        .edit(creator, NOW, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Roller crimper"))
        })
        .expect("skeleton");
    let heads = replica.heads().iter().map(|h| h.to_string()).collect();
    apply(
        &mut replica,
        creator,
        Edit::Release {
            version: "1.0".into(),
            heads,
        },
    );
    apply(
        &mut replica,
        creator,
        Edit::Set {
            field: "summary".into(),
            value: "Crimps a cover crop flat".into(),
        },
    );
    replica
}

fn copy_of(replica: &DocReplica) -> DocReplica {
    let mut copy = DocReplica::new(replica.genesis().clone()).expect("genesis");
    let hashes: Vec<ChangeHash> = replica
        .doc()
        .get_changes(&[])
        .iter()
        .map(|c| c.hash())
        .collect();
    let (compact, proofs) = replica.compact_for(&hashes).expect("compact");
    copy.ingest_compact(&compact, proofs)
        .expect("an honest copy");
    copy
}

/// Mallory's own change, written with raw automerge (no schema refusal), that replaces
/// release 1.0's author and heads: what a modified client can send.
fn rewrite_release(replica: &DocReplica, mallory: &DeviceKey) -> ChangeEnvelope {
    let mut doc = replica.doc().fork();
    doc.set_actor(actor_for(&mallory.author(), &replica.id()));
    let mut tx = doc.transaction();
    let (_, releases) = tx.get(ROOT, "releases").unwrap().expect("releases map");
    let (_, entry) = tx.get(&releases, "1.0").unwrap().expect("release 1.0");
    tx.put(&entry, "by", mallory.author().to_string()).unwrap();
    let heads = tx.put_object(&entry, "heads", ObjType::List).unwrap();
    tx.insert(&heads, 0, "00".repeat(32)).unwrap();
    let (hash, _) = tx.commit();
    let change = doc
        .get_change_by_hash(&hash.expect("a change"))
        .expect("made");
    ChangeEnvelope::sign(
        mallory,
        replica.commons(),
        replica.id(),
        change.raw_bytes().to_vec(),
    )
}

fn release_by(replica: &DocReplica) -> Option<String> {
    let (_, releases) = replica.doc().get(ROOT, "releases").ok()??;
    let (_, entry) = replica.doc().get(&releases, "1.0").ok()??;
    match replica.doc().get(&entry, "by").ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn a_remote_rewrite_of_a_release_is_refused_in_every_form() {
    let (creator, mallory) = (key(1), key(2));
    let original = released(&creator);
    let rewrite = rewrite_release(&original, &mallory);
    let expected = |r: &Rejection| matches!(r, Rejection::ReleaseRewritten { version, .. } if version == "1.0");

    // As a live envelope.
    let mut receiver = copy_of(&original);
    let refused = receiver.ingest_envelope(&rewrite).unwrap_err();
    assert!(expected(&refused), "{refused:?}");
    assert_eq!(release_by(&receiver), Some(creator.author().to_string()));

    // As compact changes with their proof.
    let change = rewrite.verify().expect("mallory's own signature").change;
    let refused = receiver
        .ingest_compact(
            &CompactChanges::of_changes([&change]),
            vec![(change.hash(), rewrite.proof())],
        )
        .unwrap_err();
    assert!(expected(&refused), "{refused:?}");
    assert_eq!(receiver.heads(), original.heads());

    // Hidden inside a whole document sent to a node that lacks it.
    let mut theirs = original.doc().clone();
    theirs
        .apply_changes([change.clone()])
        .expect("automerge takes it");
    let mut proofs = original.covering_proofs(&original.heads());
    proofs.push((change.hash(), rewrite.proof()));
    let mut fresh = DocReplica::new(original.genesis().clone()).expect("genesis");
    let refused = fresh
        .ingest_compact(&CompactChanges::of_document(&theirs), proofs)
        .unwrap_err();
    assert!(expected(&refused), "{refused:?}");
    assert_eq!(fresh.change_count(), 0);
}

#[test]
fn a_local_rewrite_is_refused_by_the_same_rule() {
    let creator = key(1);
    let mut replica = released(&creator);
    let before = replica.heads();
    let failed = replica
        .edit(&creator, NOW, |tx| {
            let (_, releases) = tx.get(ROOT, "releases")?.expect("releases map");
            tx.delete(&releases, "1.0")
        })
        .unwrap_err();
    assert!(
        matches!(&failed, hedgerow_protocol::replica::EditFailure::Invalid(Rejection::ReleaseRewritten { version, .. }) if version == "1.0"),
        "{failed:?}"
    );
    assert_eq!(replica.heads(), before);
}

/// A fork of `parent` at its current heads, made as `hedgerow design fork` makes it.
fn fork_of(parent: &DocReplica, by: &DeviceKey) -> DocReplica {
    let heads = parent.heads();
    let genesis = design_genesis(
        by,
        Some(ForkOrigin {
            parent: parent.id(),
            heads: heads.iter().map(|h| h.0).collect(),
            ancestors: vec![],
        }),
        10,
    );
    let mut fork = DocReplica::new(genesis).expect("fork genesis");
    fork.adopt_parent_history(parent, &heads).expect("adopt");
    fork.edit(by, NOW, |tx| schema::clear_for_fork(tx))
        .expect("a fork clears the parent's releases");
    fork
}

#[test]
fn a_fork_clears_inherited_releases_and_then_writes_its_own_once() {
    let (creator, forker) = (key(1), key(3));
    let parent = released(&creator);
    let mut fork = fork_of(&parent, &forker);
    let heads = fork.heads().iter().map(|h| h.to_string()).collect();
    apply(
        &mut fork,
        &forker,
        Edit::Release {
            version: "1.0".into(),
            heads,
        },
    );
    let copy = copy_of(&fork);
    assert_eq!(release_by(&copy), Some(forker.author().to_string()));
}

#[test]
fn a_graft_of_the_parent_s_later_change_into_a_fork_is_refused() {
    let (creator, forker) = (key(1), key(3));
    let mut parent = released(&creator);
    let fork = fork_of(&parent, &forker);
    apply(
        &mut parent,
        &creator,
        Edit::Set {
            field: "stage".into(),
            value: "prototype".into(),
        },
    );
    let later = parent.heads();
    let envelopes = parent.envelopes_for(&later);
    let mut receiver = copy_of(&fork);

    let refused = receiver.ingest_envelope(&envelopes[0]).unwrap_err();
    assert_eq!(
        refused,
        Rejection::ForkGraft {
            hash: later[0].to_string()
        }
    );
    let (compact, proofs) = parent.compact_for(&later).expect("compact");
    let refused = receiver.ingest_compact(&compact, proofs).unwrap_err();
    assert_eq!(
        refused,
        Rejection::ForkGraft {
            hash: later[0].to_string()
        }
    );
    assert_eq!(receiver.heads(), fork.heads());
}

#[test]
fn a_fork_whose_declared_heads_are_not_in_its_history_is_refused() {
    let (creator, forker) = (key(1), key(3));
    let parent = released(&creator);
    let skeleton = parent.doc().get_changes(&[])[0].hash();
    // Declares the parent's current heads but inherits only the skeleton.
    let genesis = design_genesis(
        &forker,
        Some(ForkOrigin {
            parent: parent.id(),
            heads: parent.heads().iter().map(|h| h.0).collect(),
            ancestors: vec![],
        }),
        11,
    );
    // Inherited changes may arrive one by one, so too few of them is not yet an error; the
    // fork's own first change, which needs the declared heads, is refused.
    let mut fork = DocReplica::new(genesis.clone()).expect("fork genesis");
    fork.adopt_parent_history(&parent, &[skeleton])
        .expect("part of the parent's history, as it may arrive");
    let failed = fork
        .edit(&forker, NOW, |tx| {
            tx.put(hedgerow_protocol::automerge::ROOT, "name", "Crimper fork")
        })
        .unwrap_err();
    assert!(
        matches!(
            &failed,
            hedgerow_protocol::replica::EditFailure::Invalid(Rejection::ForkHeadMissing { head })
                if *head == parent.heads()[0].to_string()
        ),
        "{failed:?}"
    );

    // A fork that inherits nothing at all: its own skeleton, no parent history.
    let mut fork = DocReplica::new(genesis).expect("fork genesis");
    let failed = fork
        .edit(&forker, NOW, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Not a fork"))
        })
        .unwrap_err();
    assert!(
        matches!(
            failed,
            hedgerow_protocol::replica::EditFailure::Invalid(Rejection::ForkHeadMissing { .. })
        ),
        "{failed:?}"
    );
}

/// The release rule reads a change's object and key columns, not automerge's full decode:
/// a whole released design taken in by a fresh replica decodes none of its changes (and the
/// rewrite tests above show the columns still catch what the decode caught).
#[test]
fn the_release_rule_reads_changes_without_decoding_them() {
    let creator = key(1);
    let mut original = released(&creator);
    apply(
        &mut original,
        &key(3),
        Edit::Set {
            field: "summary".into(),
            value: "Crimps rye flat".into(),
        },
    );
    let before = hedgerow_protocol::changes_decoded();
    let copy = copy_of(&original);
    assert_eq!(copy.heads(), original.heads());
    assert_eq!(
        hedgerow_protocol::changes_decoded() - before,
        0,
        "no change needed automerge's full decode"
    );
}
