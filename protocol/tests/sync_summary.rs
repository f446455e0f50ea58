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

use hedgerow_protocol::sync::{
    bucket_digests, bucket_of, id_prefix, respond, summary_buckets, validate_request, DocPayload,
    HeadsDigest, IdPrefix, LocalDoc, PullSession, PullStep, RequestError, SyncRequest,
    SyncResponse, SyncSource, Want, MAX_BUCKETS, MIN_BUCKETS, SUMMARY_THRESHOLD,
};
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
