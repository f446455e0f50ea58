//! One key in two homes, and deliberate equivocation.
//!
//! Two installs of one key write as two actors, so their concurrent edits merge. A forged
//! pair (one actor, one sequence number, two changes) is settled by the lowest hash,
//! whatever order the changes arrive in and whichever path they take (envelopes one by
//! one, or a whole document in compact form); the loser and what builds on it are kept
//! out, as evidence.

use hedgerow_protocol::automerge::ChangeHash;
use hedgerow_protocol::replica::ExclusionReason;
use hedgerow_protocol::schema::{self, DocKind, Edit, EditContext, NewDocument};
use hedgerow_protocol::{
    ChangeEnvelope, CommonsGenesis, DeviceKey, DocGenesis, DocReplica, IngestOutcome, InstallTag,
    Signed,
};
use std::collections::BTreeSet;

const T0: i64 = 1_700_000_000;

fn key(n: u8, install: u8) -> DeviceKey {
    DeviceKey::from_secret([n; 32]).with_install(InstallTag([install; 8]))
}

fn genesis(creator: &DeviceKey) -> Signed<DocGenesis> {
    let commons = CommonsGenesis {
        name: "Farm Hack".into(),
        description: String::new(),
        creator: creator.author(),
        created_at: T0,
        nonce: [1; 16],
    }
    .sign(creator)
    .body
    .id();
    DocGenesis {
        commons,
        kind: DocKind::Design,
        creator: creator.author(),
        created_at: T0,
        nonce: [2; 16],
        fork: None,
    }
    .sign(creator)
}

fn edit(replica: &mut DocReplica, key: &DeviceKey, summary: &str) -> ChangeEnvelope {
    let ctx = EditContext {
        author: key.author().to_string(),
        now_unix: T0 + 10,
    };
    let edit = Edit::Set {
        field: "summary".into(),
        value: summary.into(),
    };
    let (_, made) = replica
        .edit(key, T0 + 10, |tx| {
            schema::apply_edit(tx, DocKind::Design, &edit, &ctx)
        })
        .expect("edit applies");
    made.expect("edit changes something").0
}

fn hash(envelope: &ChangeEnvelope) -> ChangeHash {
    envelope.verify().expect("verifies").change.hash()
}

fn summary(replica: &DocReplica) -> String {
    schema::render(replica.doc(), DocKind::Design, None)["summary"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A document with a skeleton by `creator`, as a replica and the skeleton's envelope.
fn founded(creator: &DeviceKey) -> (DocReplica, ChangeEnvelope) {
    let mut replica = DocReplica::new(genesis(creator)).expect("genesis verifies");
    let (_, made) = replica
        .edit(creator, T0, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Roller crimper"))
        })
        .expect("skeleton");
    (replica, made.expect("a change").0)
}

fn fresh_with(genesis: &Signed<DocGenesis>, envelopes: &[&ChangeEnvelope]) -> DocReplica {
    let mut replica = DocReplica::new(genesis.clone()).expect("genesis verifies");
    for e in envelopes {
        replica.ingest_envelope(e).expect("valid envelope");
    }
    replica
}

#[test]
fn two_installs_of_one_key_edit_concurrently_and_both_edits_survive() {
    let farm = key(7, 1);
    let (mut on_farm, skeleton) = founded(&farm);
    // The same key restored into a second home: same secret, a different install tag.
    let laptop = key(7, 2);
    let mut on_laptop = fresh_with(on_farm.genesis(), &[&skeleton]);
    let a = edit(&mut on_farm, &farm, "Crimps rye flat");
    let b = edit(&mut on_laptop, &laptop, "Crimps vetch flat");
    assert_eq!(a.author, b.author, "one person, one key");
    assert!(matches!(
        on_farm.ingest_envelope(&b),
        Ok(IngestOutcome::Applied(_))
    ));
    assert!(matches!(
        on_laptop.ingest_envelope(&a),
        Ok(IngestOutcome::Applied(_))
    ));
    assert_eq!(on_farm.heads().len(), 2, "two concurrent heads, both kept");
    assert_eq!(on_farm.heads(), on_laptop.heads());
    assert_eq!(on_farm.excluded().count(), 0, "nothing set aside");
    assert_eq!(summary(&on_farm), summary(&on_laptop));
}

#[test]
fn a_first_release_actor_is_still_accepted() {
    use hedgerow_protocol::automerge::{transaction::Transactable, Automerge, ROOT};
    use hedgerow_protocol::envelope::actor_for_v1;
    let creator = key(3, 0);
    let genesis = genesis(&creator);
    let id = genesis.body.id();
    let mut am = Automerge::new().with_actor(actor_for_v1(&creator.author(), &id));
    let mut tx = am.transaction();
    tx.put(ROOT, "kind", "design").expect("put");
    tx.commit();
    let bytes = am
        .get_last_local_change()
        .expect("a change")
        .raw_bytes()
        .to_vec();
    let envelope = ChangeEnvelope::sign(&creator, genesis.body.commons, id, bytes);
    assert!(
        envelope.verify().is_ok(),
        "a 16-byte actor of the first release verifies"
    );
    // And one bound to another author does not.
    let other = key(4, 0);
    let forged = ChangeEnvelope::sign(&other, genesis.body.commons, id, envelope.change.clone());
    assert!(forged.verify().is_err());
}

/// The forged pair: the same install writes two different changes with one sequence
/// number, and two other authors build one change on each.
struct Forged {
    genesis: Signed<DocGenesis>,
    skeleton: ChangeEnvelope,
    twin_a: ChangeEnvelope,
    twin_b: ChangeEnvelope,
    on_a: ChangeEnvelope,
    on_b: ChangeEnvelope,
}

fn forged() -> Forged {
    let rogue = key(9, 9);
    let (mut first, skeleton) = founded(&rogue);
    let mut second = fresh_with(first.genesis(), &[&skeleton]);
    let twin_a = edit(&mut first, &rogue, "Crimps rye flat");
    let twin_b = edit(&mut second, &rogue, "Made of gold");
    let on_a = edit(&mut first, &key(10, 0), "Crimps rye flat at 5 km/h");
    let on_b = edit(&mut second, &key(11, 0), "Made of solid gold");
    Forged {
        genesis: first.genesis().clone(),
        skeleton,
        twin_a,
        twin_b,
        on_a,
        on_b,
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

fn excluded_set(replica: &DocReplica) -> BTreeSet<[u8; 32]> {
    replica.excluded().map(|e| e.hash.0).collect()
}

#[test]
fn equivocation_settles_the_same_whatever_the_arrival_order() {
    let f = forged();
    let (winner, loser, winner_child, loser_child) = if hash(&f.twin_a).0 < hash(&f.twin_b).0 {
        (&f.twin_a, &f.twin_b, &f.on_a, &f.on_b)
    } else {
        (&f.twin_b, &f.twin_a, &f.on_b, &f.on_a)
    };
    let all = [&f.skeleton, &f.twin_a, &f.twin_b, &f.on_a, &f.on_b];
    let mut outcomes = BTreeSet::new();
    for order in permutations(all.len()) {
        let mut replica = DocReplica::new(f.genesis.clone()).expect("genesis");
        for i in &order {
            replica
                .ingest_envelope(all[*i])
                .unwrap_or_else(|e| panic!("order {order:?}: envelope {i} refused: {e}"));
        }
        assert_eq!(
            replica.pending_count(),
            0,
            "order {order:?}: nothing left waiting"
        );
        let mut heads = replica.heads();
        heads.sort();
        assert_eq!(
            heads,
            vec![hash(winner_child)],
            "order {order:?}: the winner's line is the document"
        );
        assert_eq!(
            excluded_set(&replica),
            BTreeSet::from([hash(loser).0, hash(loser_child).0]),
            "order {order:?}: the losing twin and what builds on it are set aside"
        );
        let reasons: Vec<_> = replica.excluded().map(|e| e.reason.clone()).collect();
        assert!(reasons.contains(&ExclusionReason::Twin {
            winner: hash(winner).0
        }));
        assert!(reasons.contains(&ExclusionReason::BuildsOn {
            excluded: hash(loser).0
        }));
        outcomes.insert((summary(&replica), replica.change_count()));
    }
    assert_eq!(
        outcomes.len(),
        1,
        "every order gives one state: {outcomes:?}"
    );
}

#[test]
fn equivocation_settles_the_same_through_compact_form() {
    let f = forged();
    let side_a = fresh_with(&f.genesis, &[&f.skeleton, &f.twin_a, &f.on_a]);
    let side_b = fresh_with(&f.genesis, &[&f.skeleton, &f.twin_b, &f.on_b]);
    let whole = |r: &DocReplica| {
        let hashes: Vec<ChangeHash> = r.missing_for(&Default::default());
        r.compact_for(&hashes).expect("compact form")
    };
    let (from_a, proofs_a) = whole(&side_a);
    let (from_b, proofs_b) = whole(&side_b);
    let mut a = fresh_with(&f.genesis, &[&f.skeleton, &f.twin_a, &f.on_a]);
    let mut b = fresh_with(&f.genesis, &[&f.skeleton, &f.twin_b, &f.on_b]);
    a.ingest_compact(&from_b, proofs_b)
        .expect("b's document settles into a");
    b.ingest_compact(&from_a, proofs_a)
        .expect("a's document settles into b");
    assert_eq!(a.heads(), b.heads());
    assert_eq!(excluded_set(&a), excluded_set(&b));
    assert_eq!(excluded_set(&a).len(), 2);
    assert_eq!(summary(&a), summary(&b));
    // The side that lost had its applied changes moved out: handed over for storing once.
    let moved: usize = [a.take_excluded().len(), b.take_excluded().len()]
        .iter()
        .sum();
    assert_eq!(moved, 4, "each side records the two changes it set aside");
    assert!(a.take_excluded().is_empty() && b.take_excluded().is_empty());
}
