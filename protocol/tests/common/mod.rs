//! A signed design written by several devices, shared by the tests that count or check the
//! work of taking its changes in (`verify_work.rs`, `whole_document.rs`).

use hedgerow_protocol::automerge::{transaction::Transactable, ChangeHash, ROOT};
use hedgerow_protocol::schema::{self, DocKind, NewDocument};
use hedgerow_protocol::{CommonsGenesis, DeviceKey, DocGenesis, DocReplica, Signed};

/// The clock every change is made at.
pub const NOW: i64 = 1_700_000_000;

/// Device key number `n`.
pub fn key(n: u8) -> DeviceKey {
    DeviceKey::from_secret([n; 32])
}

/// The genesis of a design in a commons `creator` made.
pub fn genesis(creator: &DeviceKey) -> Signed<DocGenesis> {
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

/// A design written by its creator and `writers` in turn, `rounds` name edits each, every
/// change signed.
pub fn written(creator: &DeviceKey, writers: &[&DeviceKey], rounds: usize) -> DocReplica {
    let mut replica = DocReplica::new(genesis(creator)).expect("genesis verifies");
    replica
        .edit(creator, NOW, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Roller crimper"))
        })
        .expect("skeleton");
    for round in 0..rounds {
        for (i, writer) in writers.iter().enumerate() {
            replica
                .edit(writer, NOW, |tx| {
                    tx.put(ROOT, "name", format!("crimper {round}.{i}"))
                })
                .expect("edit");
        }
    }
    replica
}

/// The hashes of every change the replica holds.
pub fn hashes(replica: &DocReplica) -> Vec<ChangeHash> {
    replica
        .doc()
        .get_changes_meta(&[])
        .iter()
        .map(|m| m.hash)
        .collect()
}
