//! The bounds the README states, over real sled stores: at most 256 documents in memory
//! however many are created, received or read; a summary of a few hundred bytes per
//! document; sync responses smallest first.

use hedgerow_node::replicas::MAX_CACHED_REPLICAS;
use hedgerow_node::{Home, LocalProfile, Replicas};
use hedgerow_protocol::schema::{DocKind, Edit, NewDocument};
use hedgerow_protocol::sync::{id_prefix, respond, SyncRequest, SyncResponse, Want};
use hedgerow_protocol::{CommonsId, DocId};

fn home(dir: &std::path::Path, name: &str) -> Home {
    let profile = LocalProfile {
        name: name.into(),
        ..LocalProfile::default()
    };
    Home::init(&dir.join(name), &profile).expect("home")
}

fn set(field: &str, value: &str) -> Edit {
    Edit::Set {
        field: field.into(),
        value: value.into(),
    }
}

/// A commons of Alice's with `n` designs, each one change.
fn designs(replicas: &mut Replicas, n: usize) -> (CommonsId, Vec<DocId>) {
    let commons = replicas.create_commons("Farm Hack", "").expect("commons");
    let ids = (0..n)
        .map(|i| {
            let design = NewDocument::new(DocKind::Design, format!("Crimper {i}"));
            let id = replicas.create_doc(commons, &design, &[]).expect("design");
            assert!(
                replicas.cached_replicas() <= MAX_CACHED_REPLICAS,
                "{} replicas cached after creating {} designs",
                replicas.cached_replicas(),
                i + 1
            );
            id
        })
        .collect();
    replicas.commit().expect("commit");
    (commons, ids)
}

/// ```text
///   alice: create 300 designs      -> never more than 256 cached
///   ben:   receive all 300 (live)  -> never more than 256 cached
///   alice reopened: read all 300   -> never more than 256 cached, each reads back whole
/// ```
#[test]
fn at_most_256_documents_are_cached_whatever_touches_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = MAX_CACHED_REPLICAS + 44;
    let alice_home = home(dir.path(), "alice");
    let mut alice = Replicas::open(&alice_home).expect("store");
    let (commons, ids) = designs(&mut alice, n);
    assert!(alice.cached_replicas() > 0, "created designs are cached");

    let mut ben = Replicas::open(&home(dir.path(), "ben")).expect("store");
    let genesis = alice
        .store()
        .commons(&commons)
        .expect("read")
        .expect("held");
    ben.join_commons(&genesis).expect("join");
    for (i, live) in alice.take_outbox().iter().enumerate() {
        ben.ingest_live(live).expect("ingest");
        assert!(
            ben.cached_replicas() <= MAX_CACHED_REPLICAS,
            "{} replicas cached after receiving {} designs",
            ben.cached_replicas(),
            i + 1
        );
    }
    ben.commit().expect("commit");
    assert_eq!(ben.store().doc_ids(&commons).expect("ids").len(), n + 2);

    drop(alice);
    let mut alice = Replicas::open(&alice_home).expect("reopen");
    assert_eq!(alice.cached_replicas(), 0);
    for (i, id) in ids.iter().enumerate() {
        let replica = alice.replica(id).expect("loads");
        assert_eq!(replica.change_count(), 1, "design {i} reads back whole");
        assert!(alice.cached_replicas() <= MAX_CACHED_REPLICAS);
    }
    // The first designs were evicted on the way and load again from the store.
    let first = alice.replica(&ids[0]).expect("reloads").heads();
    assert_eq!(first, ben.replica(&ids[0]).expect("held").heads());
    assert!(alice.cached_replicas() <= MAX_CACHED_REPLICAS);
    assert!(alice.verify(false).expect("verify").is_clean());
}

/// ```text
///   alice: 20 designs, 12 changes each -> bundle summary <= 300 bytes a document
/// ```
/// The summary carries a digest and per-author heights, not the changes: its size per
/// document does not grow with a document's history.
#[test]
fn a_summary_is_a_few_hundred_bytes_per_document() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut alice = Replicas::open(&home(dir.path(), "alice")).expect("store");
    let empty = alice.bundle_summary().expect("summary").len();
    let (_, ids) = designs(&mut alice, 20);
    for id in &ids {
        for edit in 0..11 {
            alice
                .edit_doc(
                    id,
                    &[set("summary", &format!("Edit {edit} of a long story"))],
                )
                .expect("edit");
        }
        assert_eq!(alice.replica(id).expect("held").change_count(), 12);
    }
    alice.commit().expect("commit");
    let bytes = alice.bundle_summary().expect("summary").len();
    // The profile Alice publishes in her commons is a document too.
    let docs = ids.len() + 1;
    let per_doc = (bytes - empty) / docs;
    println!("summary: {bytes} bytes for {docs} documents, {per_doc} bytes a document");
    assert!(
        per_doc <= 300,
        "{per_doc} bytes a document ({bytes} bytes for {docs})"
    );
}

/// ```text
///   alice: designs of 6 sizes in random id order
///   Fetch all (large budget)  -> sent in ascending size
///   Fetch all (8 KiB budget)  -> what is sent goes smallest first, the largest deferred
/// ```
#[test]
fn a_responder_sends_the_smallest_documents_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut alice = Replicas::open(&home(dir.path(), "alice")).expect("store");
    let commons = alice.create_commons("Farm Hack", "").expect("commons");
    let mut sized = Vec::new();
    // Mixed so that neither id order nor creation order is size order.
    for (n, len) in [3000usize, 40, 12_000, 700, 20_000, 1500]
        .into_iter()
        .enumerate()
    {
        let design = NewDocument::new(DocKind::Design, format!("Design {n}"));
        // Pseudo-random letters, so automerge's compression cannot undo the size order.
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
        let how: String = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        let id = alice
            .create_doc(commons, &design, &[set("how_it_works", &how)])
            .expect("design");
        sized.push((len, id));
    }
    alice.commit().expect("commit");
    let wants: Vec<Want> = sized
        .iter()
        .map(|(_, id)| Want {
            prefix: id_prefix(id),
            have_genesis: false,
            clock: Vec::new(),
        })
        .collect();
    let fetch = |budget: u32| SyncRequest::Fetch {
        commons,
        wants: wants.clone(),
        budget,
    };
    let mut by_size = sized.clone();
    by_size.sort();
    let expected: Vec<DocId> = by_size.iter().map(|(_, id)| *id).collect();

    match respond(&mut alice, &fetch(4 * 1024 * 1024)) {
        SyncResponse::Docs { items, deferred } => {
            assert!(deferred.is_empty(), "everything fits");
            let order: Vec<DocId> = items.iter().map(|p| p.doc).collect();
            assert_eq!(order, expected, "documents go smallest first");
            let sizes: Vec<usize> = items.iter().map(|p| p.wire_size()).collect();
            assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
        }
        other => panic!("expected documents, got {other:?}"),
    }
    match respond(&mut alice, &fetch(8 * 1024)) {
        SyncResponse::Docs { items, deferred } => {
            let sent: Vec<DocId> = items.iter().map(|p| p.doc).collect();
            assert!(!sent.is_empty() && sent.len() < expected.len(), "{sent:?}");
            // Payloads are built only up to twice the budget, so which of the rest are
            // sent depends on the order asked; what is sent still goes smallest first.
            let ranks: Vec<usize> = sent
                .iter()
                .map(|id| expected.iter().position(|e| e == id).expect("asked for"))
                .collect();
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
            assert_eq!(sent[0], expected[0], "the smallest goes first");
            let largest = id_prefix(&expected[expected.len() - 1]);
            assert!(deferred.contains(&largest), "the largest waits");
            assert_eq!(sent.len() + deferred.len(), expected.len());
        }
        other => panic!("expected documents, got {other:?}"),
    }
}
