//! Request limits of the sync responder and the announcement wire format.

use hedgerow_protocol::sync::{
    id_prefix, respond, validate_request, DocPayload, Gossip, HeadsDigest, RequestError,
    SyncRequest, SyncResponse, SyncSource, Want, MAX_WANTS_PER_FETCH, MAX_WANTS_PER_FETCH_V2,
};
use hedgerow_protocol::{CommonsGenesis, CommonsId, DeviceKey, DocId, Signed};
use std::convert::Infallible;

/// A commons with one document whose payload is a fixed bundle; counts payload reads.
struct OneDoc {
    genesis: Signed<CommonsGenesis>,
    doc: DocId,
    payloads_built: usize,
}

impl OneDoc {
    fn new() -> Self {
        let key = DeviceKey::from_secret([3; 32]);
        let genesis = CommonsGenesis {
            name: "Tools".into(),
            description: String::new(),
            creator: key.author(),
            created_at: 1_800_000_000,
            nonce: [1; 16],
        }
        .sign(&key);
        Self {
            genesis,
            doc: DocId([4; 32]),
            payloads_built: 0,
        }
    }

    fn commons(&self) -> CommonsId {
        self.genesis.body.id()
    }
}

impl SyncSource for OneDoc {
    type Error = Infallible;

    fn commons_genesis(
        &self,
        commons: &CommonsId,
    ) -> Result<Option<Signed<CommonsGenesis>>, Infallible> {
        Ok((*commons == self.commons()).then(|| self.genesis.clone()))
    }

    fn inventory(&self, _: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, Infallible> {
        Ok(vec![(self.doc, [5; 8])])
    }

    fn payload(&mut self, doc: &DocId, _: &Want) -> Result<Option<DocPayload>, Infallible> {
        self.payloads_built += 1;
        Ok(Some(DocPayload {
            doc: *doc,
            genesis: None,
            changes: hedgerow_protocol::compact::CompactChanges::Changes(vec![6; 100]),
            proofs: Vec::new(),
        }))
    }
}

fn want(prefix: [u8; 8]) -> Want {
    Want {
        prefix,
        have_genesis: true,
        clock: Vec::new(),
    }
}

#[test]
fn a_fetch_over_the_want_limit_is_invalid_and_refused_unread() {
    let mut source = OneDoc::new();
    let wants = (0..=MAX_WANTS_PER_FETCH_V2 as u64)
        .map(|i| want(i.to_be_bytes()))
        .collect();
    let request = SyncRequest::Fetch {
        commons: source.commons(),
        wants,
        budget: 1 << 20,
    };
    assert_eq!(
        validate_request(&request),
        Err(RequestError::TooManyWants {
            count: MAX_WANTS_PER_FETCH_V2 + 1
        })
    );
    assert_eq!(
        RequestError::TooManyWants { count: 0 }.kind(),
        "too-many-wants"
    );
    assert!(matches!(
        respond(&mut source, &request),
        SyncResponse::Refused { .. }
    ));
    assert_eq!(source.payloads_built, 0);
}

#[test]
fn a_document_named_many_times_is_built_and_sent_once() {
    let mut source = OneDoc::new();
    let prefix = id_prefix(&source.doc);
    let request = SyncRequest::Fetch {
        commons: source.commons(),
        wants: vec![want(prefix); MAX_WANTS_PER_FETCH],
        budget: 1 << 20,
    };
    assert_eq!(validate_request(&request), Ok(()));
    match respond(&mut source, &request) {
        SyncResponse::Docs { items, deferred } => {
            assert_eq!(items.len(), 1);
            assert!(deferred.is_empty());
        }
        other => panic!("expected documents, got {other:?}"),
    }
    assert_eq!(source.payloads_built, 1);
}

#[test]
fn announcements_of_different_states_differ_on_the_wire() {
    let commons = CommonsId([7; 32]);
    let a = Gossip::Announce {
        commons,
        digest: [1; 32],
    };
    let b = Gossip::Announce {
        commons,
        digest: [2; 32],
    };
    assert_ne!(a.to_bytes(), b.to_bytes(), "gossip ids are content hashes");
    assert_eq!(Gossip::from_bytes(&a.to_bytes()), Ok(a));
}
