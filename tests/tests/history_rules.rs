//! History rules through the real binary: a bundle carrying a crafted change that
//! rewrites a release, or grafts a parent's later change into a fork, is refused by
//! `hedgerow bundle import` with the reason, and the store stays as it was.
//!
//! ```text
//!   Alice: design ── release 1.0 ── fork ──bundle──> Bob
//!   Mallory: change rewriting 1.0's author and heads ──bundle──> Bob: rejected
//!   Alice: later parent edit, packed as the fork's ──bundle──> Bob: rejected
//! ```

use hedgerow_protocol::automerge::{transaction::Transactable, ObjType, ReadDoc, ROOT};
use hedgerow_protocol::bundle_file::{decode_bundle, encode_records, Record};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::sync::DocPayload;
use hedgerow_protocol::{actor_for, ChangeEnvelope, DeviceKey, DocId, DocReplica};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::path::Path;

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// The replica of `doc` carried in a full bundle's records.
fn replica_in(records: &[Record], doc: &DocId) -> DocReplica {
    let genesis = records
        .iter()
        .find_map(|r| match r {
            Record::DocGenesis(g) if g.body.id() == *doc => Some(g.clone()),
            _ => None,
        })
        .expect("the document's genesis");
    let payload = records
        .iter()
        .find_map(|r| match r {
            Record::Changes(p) if p.doc == *doc => Some(p),
            _ => None,
        })
        .expect("the document's changes");
    let mut replica = DocReplica::new(genesis).expect("genesis verifies");
    let proofs = payload
        .proofs
        .iter()
        .map(|(h, p)| (hedgerow_protocol::automerge::ChangeHash(*h), p.clone()))
        .collect();
    replica
        .ingest_compact(&payload.changes, proofs)
        .expect("Alice's own bundle");
    replica
}

/// A bundle of one document's changes, for a node that already holds the document.
fn bundle_of(records: &[Record], payload: DocPayload) -> Vec<u8> {
    let commons = records
        .iter()
        .find(|r| matches!(r, Record::Commons(_)))
        .expect("a commons record")
        .clone();
    encode_records(&[commons, Record::Changes(payload)]).expect("encodes")
}

fn import_refused(bob: &TestHome, file: &Path, words: &[&str]) {
    let out = bob.run(&["bundle", "import", arg(file)]);
    assert!(!out.status.success(), "a refused record fails the import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("imported: 0 new, 0 already known, 1 rejected"),
        "{stdout}"
    );
    for word in words {
        assert!(stdout.contains(word), "{word:?} in {stdout}");
    }
}

#[test]
fn crafted_release_rewrites_and_fork_grafts_are_refused_on_import() {
    let alice = TestHome::init("Alice");
    id(&alice.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&alice.json(&["design", "new", "Roller crimper"]));
    alice.ok(&["design", "release", &design, "--version", "1.0"]);
    let fork = id(&alice.json(&["design", "fork", &design, "--name", "Narrow crimper"]));
    let full = alice.path().join("full.hbundle");
    alice.ok(&["bundle", "export", arg(&full)]);
    alice.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "summary=Later, on the parent",
    ]);

    let bob = TestHome::init("Bob");
    bob.ok(&["bundle", "import", arg(&full), "--all-commons"]);
    let release = bob.json(&["design", "show", &design, "--version", "1.0"]);

    let records = decode_bundle(&std::fs::read(&full).unwrap())
        .into_result()
        .unwrap();
    let design_id: DocId = design.parse().unwrap();
    let original = replica_in(&records, &design_id);

    // Mallory's change, made with raw automerge, replaces 1.0's author and heads.
    let mallory = DeviceKey::from_secret([66; 32]);
    let mut doc = original.doc().fork();
    doc.set_actor(actor_for(&mallory.author(), &design_id));
    let mut tx = doc.transaction();
    let (_, releases) = tx.get(ROOT, "releases").unwrap().expect("releases");
    let (_, entry) = tx.get(&releases, "1.0").unwrap().expect("release 1.0");
    tx.put(&entry, "by", mallory.author().to_string()).unwrap();
    let heads = tx.put_object(&entry, "heads", ObjType::List).unwrap();
    tx.insert(&heads, 0, "00".repeat(32)).unwrap();
    let (hash, _) = tx.commit();
    let change = doc.get_change_by_hash(&hash.unwrap()).unwrap();
    let envelope = ChangeEnvelope::sign(
        &mallory,
        original.commons(),
        design_id,
        change.raw_bytes().to_vec(),
    );
    let rewrite = alice.path().join("rewrite.hbundle");
    let payload = DocPayload {
        doc: design_id,
        genesis: None,
        changes: CompactChanges::of_changes([&change]),
        proofs: vec![(change.hash().0, envelope.proof())],
    };
    std::fs::write(&rewrite, bundle_of(&records, payload)).unwrap();
    import_refused(&bob, &rewrite, &["rewrites release `1.0`"]);
    assert_eq!(
        bob.json(&["design", "show", &design, "--version", "1.0"]),
        release
    );

    // Alice's later parent edit, packed as a change of the fork.
    let later = alice.path().join("later.hbundle");
    let summary = bob.path().join("bob.summary");
    bob.ok(&["bundle", "summary", arg(&summary)]);
    alice.ok(&["bundle", "export", arg(&later), "--for", arg(&summary)]);
    let mut records = decode_bundle(&std::fs::read(&later).unwrap())
        .into_result()
        .unwrap();
    let fork_id: DocId = fork.parse().unwrap();
    let mut payload = records
        .iter()
        .find_map(|r| match r {
            Record::Changes(p) if p.doc == design_id => Some(p.clone()),
            _ => None,
        })
        .expect("the parent's new change");
    payload.doc = fork_id;
    records.retain(|r| matches!(r, Record::Commons(_)));
    let graft = alice.path().join("graft.hbundle");
    std::fs::write(&graft, bundle_of(&records, payload)).unwrap();
    import_refused(&bob, &graft, &["not in the history this fork declares"]);
    let summary_on_fork = bob.json(&["design", "show", &fork]);
    assert_eq!(summary_on_fork["summary"], Value::String(String::new()));

    let report = bob.json(&["verify"]);
    assert_eq!(report["problems"], Value::Array(vec![]), "verify: {report}");
}
