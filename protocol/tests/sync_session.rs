//! The sync protocol run between two in-memory nodes, message by message, with
//! no network: what crosses, how many round trips, and what a cut-off sync keeps.
//!
//! ```text
//!   puller (PullSession) ──Hello/Fetch──▶ responder (respond over MemoryNode)
//!                        ◀──InSync/Inventory/Docs──
//! ```

use hedgerow_protocol::automerge::{ActorId, ReadDoc};
use hedgerow_protocol::schema::{self, DocKind, Edit, EditContext, EditError, NewDocument};
use hedgerow_protocol::sync::{
    heads_digest, respond, DocPayload, HeadsDigest, LocalDoc, PullSession, PullStep, SyncRequest,
    SyncResponse, SyncSource, Want, MIN_RESPONSE_BUDGET,
};
use hedgerow_protocol::{
    CommonsGenesis, CommonsId, DeviceKey, DocGenesis, DocId, DocReplica, Signed,
};
use std::collections::{BTreeMap, HashMap};

/// A node's documents of one commons, in memory.
struct MemoryNode {
    genesis: Signed<CommonsGenesis>,
    docs: HashMap<DocId, DocReplica>,
}

impl SyncSource for MemoryNode {
    type Error = String;

    fn commons_genesis(
        &self,
        commons: &CommonsId,
    ) -> Result<Option<Signed<CommonsGenesis>>, String> {
        Ok((self.genesis.body.id() == *commons).then(|| self.genesis.clone()))
    }

    fn inventory(&self, _: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, String> {
        Ok(self
            .docs
            .iter()
            .map(|(id, r)| {
                (
                    *id,
                    heads_digest(&r.heads().iter().map(|h| h.0).collect::<Vec<_>>()),
                )
            })
            .collect())
    }

    fn payload(&mut self, doc: &DocId, want: &Want) -> Result<Option<DocPayload>, String> {
        let replica = &self.docs[doc];
        let clock: BTreeMap<ActorId, u64> = want
            .clock
            .iter()
            .map(|(a, s)| (ActorId::from(a.as_slice()), *s))
            .collect();
        let missing = replica.missing_for(&clock);
        if missing.is_empty() && want.have_genesis {
            return Ok(None);
        }
        let (changes, proofs) = replica.compact_for(&missing).map_err(|e| e.to_string())?;
        Ok(Some(DocPayload {
            doc: *doc,
            genesis: (!want.have_genesis).then(|| replica.genesis().clone()),
            changes,
            proofs: proofs.into_iter().map(|(h, p)| (h.0, p)).collect(),
        }))
    }
}

impl MemoryNode {
    fn local(&self) -> BTreeMap<DocId, LocalDoc> {
        self.docs
            .iter()
            .map(|(id, r)| {
                let digest = heads_digest(&r.heads().iter().map(|h| h.0).collect::<Vec<_>>());
                let clock = r
                    .clock()
                    .into_iter()
                    .map(|(a, s)| (a.to_bytes().to_vec(), s))
                    .collect();
                (*id, LocalDoc { digest, clock })
            })
            .collect()
    }

    fn apply(&mut self, payload: &DocPayload) {
        if let Some(genesis) = &payload.genesis {
            self.docs
                .entry(payload.doc)
                .or_insert_with(|| DocReplica::new(genesis.clone()).expect("valid genesis"));
        }
        let replica = self.docs.get_mut(&payload.doc).expect("document known");
        let proofs = payload
            .proofs
            .iter()
            .map(|(h, p)| (hedgerow_protocol::automerge::ChangeHash(*h), p.clone()))
            .collect();
        replica
            .ingest_compact(&payload.changes, proofs)
            .expect("payload verifies");
    }
}

fn commons(key: &DeviceKey) -> Signed<CommonsGenesis> {
    CommonsGenesis {
        name: "Test commons".into(),
        description: String::new(),
        creator: key.author(),
        created_at: 1,
        nonce: [1; 16],
    }
    .sign(key)
}

/// A node holding `n` designs, each with a few build steps.
fn populated(key: &DeviceKey, n: usize) -> MemoryNode {
    let genesis = commons(key);
    let mut docs = HashMap::new();
    for i in 0..n {
        let doc_genesis = DocGenesis {
            commons: genesis.body.id(),
            kind: DocKind::Design,
            creator: key.author(),
            created_at: 10,
            nonce: (i as u128).to_le_bytes(),
            fork: None,
        }
        .sign(key);
        let mut replica = DocReplica::new(doc_genesis).expect("genesis");
        let ctx = EditContext {
            author: key.author().to_string(),
            now_unix: 10,
        };
        replica
            .edit(key, 10, |tx| {
                schema::init_document(
                    tx,
                    &NewDocument::new(DocKind::Design, format!("Design {i}")),
                )?;
                for s in 0..3 {
                    schema::apply_edit(
                        tx,
                        DocKind::Design,
                        &Edit::AddStep {
                            text: format!("Step {s} of design {i}: weld, bolt, paint. ").repeat(8),
                            at: None,
                        },
                        &ctx,
                    )?;
                }
                Ok::<(), EditError>(())
            })
            .expect("edit");
        docs.insert(replica.id(), replica);
    }
    MemoryNode { genesis, docs }
}

/// Runs a pull to completion (or until `cut_after` responses were delivered); returns bytes moved and round trips.
fn pull(
    puller: &mut MemoryNode,
    responder: &mut MemoryNode,
    budget: u32,
    cut_after: Option<usize>,
) -> (usize, u64, bool) {
    let commons = responder.genesis.body.id();
    let mut session = PullSession::new(commons, budget);
    let mut request = session.hello(&puller.local());
    let mut bytes = 0;
    let mut delivered = 0;
    loop {
        let request_bytes = request.to_bytes();
        bytes += request_bytes.len();
        let decoded = SyncRequest::from_bytes(&request_bytes).expect("request decodes");
        let response = respond(responder, &decoded);
        let response_bytes = response.to_bytes();
        if cut_after == Some(delivered) {
            // The link dropped while this response was in flight: it is lost.
            return (
                bytes + response_bytes.len(),
                session.stats.round_trips,
                false,
            );
        }
        delivered += 1;
        bytes += response_bytes.len();
        let response = SyncResponse::from_bytes(&response_bytes).expect("response decodes");
        match &response {
            SyncResponse::InSync | SyncResponse::Inventory { .. } => {}
            SyncResponse::Docs { items, .. } => {
                for item in items {
                    puller.apply(item);
                }
            }
            other => panic!("unexpected response {other:?}"),
        }
        // The node's own dispatch (`PullSession::on_response`), from all of local's clocks.
        let step = session.on_response(&response, &puller.local());
        match step {
            PullStep::Send(next) => request = next,
            PullStep::Done => return (bytes, session.stats.round_trips, true),
        }
    }
}

fn empty_like(node: &MemoryNode) -> MemoryNode {
    MemoryNode {
        genesis: node.genesis.clone(),
        docs: HashMap::new(),
    }
}

fn same_state(a: &MemoryNode, b: &MemoryNode) -> bool {
    a.docs.len() == b.docs.len()
        && a.docs.iter().all(|(id, r)| {
            b.docs.get(id).is_some_and(|other| {
                let mut x = r.heads();
                let mut y = other.heads();
                x.sort();
                y.sort();
                x == y
                    && r.doc().length(hedgerow_protocol::automerge::ROOT)
                        == other.doc().length(hedgerow_protocol::automerge::ROOT)
            })
        })
}

#[test]
fn initial_sync_converges_and_in_sync_reconnect_is_one_small_round_trip() {
    let key = DeviceKey::from_secret([3; 32]);
    let mut hub = populated(&key, 40);
    let mut fresh = empty_like(&hub);
    let (bytes, round_trips, done) = pull(&mut fresh, &mut hub, 64 * 1024, None);
    assert!(done);
    assert!(same_state(&fresh, &hub));
    assert!(round_trips >= 2, "hello + at least one fetch");
    let envelope_bytes: usize = hub
        .docs
        .values()
        .flat_map(|r| r.envelopes_for(&r.missing_for(&BTreeMap::new())))
        .map(|e| e.to_bytes().len())
        .sum();
    assert!(
        bytes < envelope_bytes,
        "compact sync ({bytes} B) must beat one envelope per change ({envelope_bytes} B)"
    );

    let (again, round_trips, done) = pull(&mut fresh, &mut hub, 64 * 1024, None);
    assert!(done);
    assert_eq!(round_trips, 1);
    assert!(again < 100, "in-sync reconnect cost {again} bytes");
}

#[test]
fn a_cut_sync_keeps_what_arrived_and_the_next_one_sends_only_the_rest() {
    let key = DeviceKey::from_secret([4; 32]);
    let mut hub = populated(&key, 30);
    let mut reference = empty_like(&hub);
    let (full_bytes, _, _) = pull(&mut reference, &mut hub, MIN_RESPONSE_BUDGET, None);

    let mut farm = empty_like(&hub);
    // Deliver the inventory and two batches, then lose the third response.
    let (first_bytes, _, done) = pull(&mut farm, &mut hub, MIN_RESPONSE_BUDGET, Some(3));
    assert!(!done);
    let kept = farm.docs.len();
    assert!(
        kept > 0 && kept < hub.docs.len(),
        "kept {kept} of {} documents",
        hub.docs.len()
    );
    let (second_bytes, _, done) = pull(&mut farm, &mut hub, MIN_RESPONSE_BUDGET, None);
    assert!(done);
    assert!(same_state(&farm, &hub));
    let total = first_bytes + second_bytes;
    assert!(
        (total as f64) < full_bytes as f64 * 1.5,
        "interrupted sync moved {total} bytes, uninterrupted {full_bytes}"
    );
}

#[test]
fn divergent_edits_travel_both_ways_as_only_the_missing_changes() {
    let key_a = DeviceKey::from_secret([5; 32]);
    let key_b = DeviceKey::from_secret([6; 32]);
    let mut a = populated(&key_a, 10);
    let mut b = empty_like(&a);
    pull(&mut b, &mut a, 64 * 1024, None);
    let target = *a.docs.keys().min().expect("a design");
    for (node, key, text) in [(&mut a, &key_a, "from A"), (&mut b, &key_b, "from B")] {
        let ctx = EditContext {
            author: key.author().to_string(),
            now_unix: 20,
        };
        node.docs
            .get_mut(&target)
            .expect("design")
            .edit(key, 20, |tx| {
                schema::apply_edit(
                    tx,
                    DocKind::Design,
                    &Edit::AddItem {
                        field: "tags".into(),
                        item: text.into(),
                    },
                    &ctx,
                )
            })
            .expect("edit");
    }
    let (ab, _, _) = pull(&mut a, &mut b, 64 * 1024, None);
    let (ba, _, _) = pull(&mut b, &mut a, 64 * 1024, None);
    assert!(same_state(&a, &b));
    let tags = schema::render(a.docs[&target].doc(), DocKind::Design, None)["tags"].clone();
    assert_eq!(
        tags.as_array().map(|t| t.len()),
        Some(2),
        "both tags kept: {tags}"
    );
    // One changed design out of ten: far less than the whole commons.
    assert!(
        ab < 2500 && ba < 2500,
        "divergence cost {ab} and {ba} bytes"
    );
}

#[test]
fn a_responder_without_the_commons_says_so() {
    let key = DeviceKey::from_secret([7; 32]);
    let mut hub = populated(&key, 1);
    let other = commons(&DeviceKey::from_secret([8; 32]));
    let request = SyncRequest::Hello {
        commons: other.body.id(),
        digest: [0; 32],
    };
    assert_eq!(respond(&mut hub, &request), SyncResponse::NotJoined);
}

/// The clocks a pull reads after a response: none after a summary, those of documents whose
/// digest differs after an inventory, those deferred after documents.
#[test]
fn a_response_names_the_clocks_its_next_step_needs() {
    let (same, differs, unlisted) = ([1u8; 8], [2u8; 8], [3u8; 8]);
    let (mine, other) = ([9u8; 8], [0u8; 8]);
    let key = DeviceKey::from_secret([5; 32]);
    let hub = populated(&key, 0);
    let inventory = SyncResponse::Inventory {
        genesis: hub.genesis.clone(),
        docs: vec![(same, mine), (differs, other)],
    };
    let wants = inventory.clock_wants();
    assert!(!wants.wants(&same, &mine));
    assert!(wants.wants(&differs, &mine));
    assert!(!wants.wants(&unlisted, &mine));
    let docs = SyncResponse::Docs {
        items: Vec::new(),
        deferred: vec![differs],
    };
    assert!(docs.clock_wants().wants(&differs, &mine));
    assert!(!docs.clock_wants().wants(&same, &mine));
    assert!(!SyncResponse::InSync.clock_wants().wants(&same, &mine));
    let mut session = PullSession::new(hub.genesis.body.id(), 64 * 1024);
    let refused = SyncResponse::Refused {
        reason: "busy".into(),
    };
    assert!(matches!(
        session.on_response(&refused, &BTreeMap::new()),
        PullStep::Done
    ));
}
