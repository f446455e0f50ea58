//! Large commons: a differing `Hello` is answered with a bucket summary, and the puller lists
//! only the buckets that differ, so a few drifted documents do not cost a whole inventory.
//!
//! ```text
//!   puller ──Hello──▶ responder      (digests differ, responder holds > 512 documents)
//!          ◀─Summary─                 one 4-byte digest per bucket
//!          ──Entries─▶                the buckets whose digest differs
//!          ◀─Inventory─               the documents of those buckets only
//!          ──Fetch──▶ …               as for a small commons
//! ```
//!
//! A puller whose responder speaks `/hedgerow/sync/4` opens with `HelloV4`; a commons of more
//! than 2,048 documents answers it with a sketch whose size follows the difference, and the
//! puller fetches straight away, or opens again with a plain `Hello` when it does not peel.

use hedgerow_protocol::sync::{
    bucket_digests, bucket_of, id_prefix, respond, summary_buckets, validate_request, ClockWants,
    DocPayload, HeadsDigest, IdPrefix, LocalDoc, PullSession, PullStep, RequestError, SyncRequest,
    SyncResponse, SyncSource, Want, MAX_BUCKETS, MIN_BUCKETS, SKETCH_CELLS, SKETCH_THRESHOLD,
    SUMMARY_THRESHOLD,
};
use hedgerow_protocol::sync_sketch::SKETCH_CELL_LEN;
use hedgerow_protocol::{CommonsGenesis, CommonsId, DeviceKey, DocId, Signed};
use std::collections::BTreeMap;
use std::convert::Infallible;

/// A responder holding `docs` with fixed digests.
struct Responder {
    genesis: Signed<CommonsGenesis>,
    docs: Vec<(DocId, HeadsDigest)>,
}

impl SyncSource for Responder {
    type Error = Infallible;

    fn commons_genesis(&self, _: &CommonsId) -> Result<Option<Signed<CommonsGenesis>>, Infallible> {
        Ok(Some(self.genesis.clone()))
    }

    fn inventory(&self, _: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, Infallible> {
        Ok(self.docs.clone())
    }

    fn payload(&mut self, _: &DocId, _: &Want) -> Result<Option<DocPayload>, Infallible> {
        Ok(None)
    }
}

fn doc(n: u32) -> DocId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    bytes[4..8].copy_from_slice(&n.to_be_bytes());
    DocId(bytes)
}

fn responder(count: u32) -> Responder {
    let key = DeviceKey::from_secret([3; 32]);
    let genesis = CommonsGenesis {
        name: "Tools".into(),
        description: String::new(),
        creator: key.author(),
        created_at: 1_800_000_000,
        nonce: [1; 16],
    }
    .sign(&key);
    Responder {
        genesis,
        docs: (0..count).map(|n| (doc(n), [1; 8])).collect(),
    }
}

fn local_of(docs: &[(DocId, HeadsDigest)]) -> BTreeMap<DocId, LocalDoc> {
    docs.iter()
        .map(|(id, digest)| {
            let local = LocalDoc {
                digest: *digest,
                clock: vec![(vec![7; 16], 1)],
            };
            (*id, local)
        })
        .collect()
}

fn commons(r: &Responder) -> CommonsId {
    r.genesis.body.id()
}

#[test]
fn a_few_drifted_documents_cost_their_buckets_not_the_whole_inventory() {
    let mut r = responder(2000);
    let mut mine = r.docs.clone();
    for n in [3usize, 700, 1999] {
        mine[n].1 = [2; 8];
    }
    let local = local_of(&mine);
    let mut session = PullSession::new(commons(&r), 64 * 1024);
    let hello = session.hello(&local);
    let (buckets, digests) = match respond(&mut r, &hello) {
        SyncResponse::Summary { buckets, digests } => (buckets, digests),
        other => panic!("expected a summary, got {other:?}"),
    };
    assert_eq!(buckets, summary_buckets(2000));
    assert_eq!(digests.len(), buckets as usize);
    let entries = match session.on_summary(buckets, &digests, &local) {
        PullStep::Send(request @ SyncRequest::Entries { .. }) => request,
        other => panic!("expected an entries request, got {other:?}"),
    };
    let SyncRequest::Entries { wanted, .. } = &entries else {
        unreachable!()
    };
    assert!(
        wanted.len() <= 3,
        "only the drifted documents' buckets: {wanted:?}"
    );
    let docs = match respond(&mut r, &entries) {
        SyncResponse::Inventory { docs, .. } => docs,
        other => panic!("expected an inventory, got {other:?}"),
    };
    assert!(docs.len() < 40, "{} entries listed", docs.len());
    let wants = match session.on_inventory(&docs, &local) {
        PullStep::Send(SyncRequest::Fetch { wants, .. }) => wants,
        other => panic!("expected a fetch, got {other:?}"),
    };
    let mut asked: Vec<IdPrefix> = wants.iter().map(|w| w.prefix).collect();
    asked.sort_unstable();
    let mut drifted: Vec<IdPrefix> = [3usize, 700, 1999]
        .iter()
        .map(|n| id_prefix(&mine[*n].0))
        .collect();
    drifted.sort_unstable();
    assert_eq!(asked, drifted);
    assert!(entries.to_bytes().len() + docs.len() * 16 + digests.len() * 4 < 2000 * 16 / 2);
}

#[test]
fn small_commons_and_fresh_pullers_get_the_whole_inventory() {
    let mut small = responder(SUMMARY_THRESHOLD as u32);
    let local = local_of(&small.docs[1..]);
    let hello = PullSession::new(commons(&small), 64 * 1024).hello(&local);
    assert!(matches!(
        respond(&mut small, &hello),
        SyncResponse::Inventory { .. }
    ));

    let mut large = responder(3000);
    let fresh = PullSession::new(commons(&large), 64 * 1024).hello(&BTreeMap::new());
    match respond(&mut large, &fresh) {
        SyncResponse::Inventory { docs, .. } => assert_eq!(docs.len(), 3000),
        other => panic!("a puller holding nothing needs every entry, got {other:?}"),
    }
    let same = PullSession::new(commons(&large), 64 * 1024).hello(&local_of(&large.docs));
    assert_eq!(respond(&mut large, &same), SyncResponse::InSync);
}

#[test]
fn buckets_are_a_bounded_power_of_two_and_split_by_top_bits() {
    assert_eq!(summary_buckets(10), MIN_BUCKETS);
    assert_eq!(summary_buckets(4000), 1024);
    assert_eq!(summary_buckets(usize::MAX / 2), MAX_BUCKETS);
    assert_eq!(bucket_of(&[0xff; 8], 256), 255);
    assert_eq!(bucket_of(&[0x00; 8], 256), 0);
    assert_eq!(bucket_of(&[0x80, 0, 0, 0, 0, 0, 0, 0], 2), 1);
    let docs: Vec<(IdPrefix, HeadsDigest)> =
        (0..100).map(|n| (id_prefix(&doc(n)), [1; 8])).collect();
    let mut reversed = docs.clone();
    reversed.reverse();
    assert_eq!(
        bucket_digests(&docs, 64),
        bucket_digests(&reversed, 64),
        "order-independent"
    );
}

#[test]
fn malformed_entries_requests_are_refused() {
    let commons = CommonsId([1; 32]);
    let entries = |buckets, wanted: Vec<u32>| SyncRequest::Entries {
        commons,
        buckets,
        wanted,
    };
    assert_eq!(validate_request(&entries(64, vec![0, 63])), Ok(()));
    assert_eq!(
        validate_request(&entries(100, vec![1])),
        Err(RequestError::BadBucketCount { buckets: 100 })
    );
    assert_eq!(
        validate_request(&entries(MAX_BUCKETS * 2, vec![1])),
        Err(RequestError::BadBucketCount {
            buckets: MAX_BUCKETS * 2
        })
    );
    assert_eq!(
        validate_request(&entries(64, vec![64])),
        Err(RequestError::NoSuchBucket {
            bucket: 64,
            buckets: 64
        })
    );
    let mut r = responder(10);
    assert!(matches!(
        respond(&mut r, &entries(64, vec![99])),
        SyncResponse::Refused { .. }
    ));
}

fn v4_session(r: &Responder) -> PullSession {
    let mut session = PullSession::new(commons(r), 64 * 1024);
    session.set_v4_peer(true);
    session
}

#[test]
fn a_v4_puller_peels_the_sketch_and_fetches_only_what_differs() {
    let mut r = responder(3000);
    // Held here in another state (5), not held here (2), held only here (1).
    let mut mine: Vec<(DocId, HeadsDigest)> = r.docs[2..].to_vec();
    for n in [0usize, 100, 900, 1500, 2997] {
        mine[n].1 = [2; 8];
    }
    mine.push((doc(9_999_999), [5; 8]));
    let local = local_of(&mine);
    let mut session = v4_session(&r);
    let hello = session.hello(&local);
    assert!(matches!(hello, SyncRequest::HelloV4 { .. }), "{hello:?}");
    let response = respond(&mut r, &hello);
    let SyncResponse::Sketch { sketch } = &response else {
        panic!("expected a sketch, got {response:?}");
    };
    assert_eq!(sketch.len(), SKETCH_CELLS * SKETCH_CELL_LEN);
    let mut expected: Vec<IdPrefix> = [0usize, 100, 900, 1500, 2997]
        .iter()
        .map(|n| id_prefix(&mine[*n].0))
        .chain([id_prefix(&r.docs[0].0), id_prefix(&r.docs[1].0)])
        .collect();
    expected.sort_unstable();
    // The node reads the clocks of exactly the listed documents.
    let ClockWants::Listed(listed) = ClockWants::for_sketch(sketch, &local) else {
        panic!("the sketch peels");
    };
    let mut listed: Vec<IdPrefix> = listed.into_iter().collect();
    listed.sort_unstable();
    assert_eq!(listed, expected);
    let wants = match session.on_response(&response, &local) {
        PullStep::Send(SyncRequest::Fetch { wants, .. }) => wants,
        other => panic!("expected a fetch, got {other:?}"),
    };
    let mut asked: Vec<IdPrefix> = wants.iter().map(|w| w.prefix).collect();
    asked.sort_unstable();
    assert_eq!(asked, expected);
    let held = wants.iter().filter(|w| w.have_genesis).count();
    assert_eq!(held, 5, "changes to held documents carry their clocks");
    assert!(wants.iter().all(|w| w.have_genesis != w.clock.is_empty()));
}

#[test]
fn a_sketch_that_does_not_peel_falls_back_to_the_summary() {
    let mut r = responder(3000);
    let mut mine = r.docs.clone();
    for entry in mine.iter_mut().take(600) {
        entry.1 = [2; 8];
    }
    let local = local_of(&mine);
    let mut session = v4_session(&r);
    let response = respond(&mut r, &session.hello(&local));
    assert!(matches!(response, SyncResponse::Sketch { .. }));
    assert!(matches!(
        ClockWants::for_sketch(
            match &response {
                SyncResponse::Sketch { sketch } => sketch,
                _ => unreachable!(),
            },
            &local
        ),
        ClockWants::None
    ));
    let again = match session.on_response(&response, &local) {
        PullStep::Send(hello @ SyncRequest::Hello { .. }) => hello,
        other => panic!("expected a plain hello, got {other:?}"),
    };
    assert!(matches!(
        respond(&mut r, &again),
        SyncResponse::Summary { .. }
    ));
    // So does a malformed sketch, once: the session stays with plain hellos.
    let mut session = v4_session(&r);
    let garbage = SyncResponse::Sketch {
        sketch: vec![7; 100],
    };
    assert!(matches!(
        session.on_response(&garbage, &local),
        PullStep::Send(SyncRequest::Hello { .. })
    ));
    assert!(matches!(session.hello(&local), SyncRequest::Hello { .. }));
    // A responder that answers the plain hello with another bad sketch ends the pull.
    assert!(matches!(
        session.on_response(&garbage, &local),
        PullStep::Done
    ));
}

#[test]
fn only_a_v4_hello_about_a_commons_over_the_threshold_gets_a_sketch() {
    let mut r = responder(SKETCH_THRESHOLD as u32);
    let mut mine = r.docs.clone();
    mine[5].1 = [2; 8];
    let local = local_of(&mine);
    let hello = v4_session(&r).hello(&local);
    assert!(matches!(
        respond(&mut r, &hello),
        SyncResponse::Summary { .. }
    ));

    let mut large = responder(3000);
    let mut mine = large.docs.clone();
    mine[5].1 = [2; 8];
    let local = local_of(&mine);
    let plain = PullSession::new(commons(&large), 64 * 1024).hello(&local);
    assert!(matches!(
        respond(&mut large, &plain),
        SyncResponse::Summary { .. }
    ));
    // In sync and fresh pullers are answered as ever.
    let in_sync = v4_session(&large).hello(&local_of(&large.docs));
    assert_eq!(respond(&mut large, &in_sync), SyncResponse::InSync);
    let fresh = v4_session(&large).hello(&BTreeMap::new());
    assert!(matches!(
        respond(&mut large, &fresh),
        SyncResponse::Inventory { .. }
    ));
}
