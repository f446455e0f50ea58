//! The catch-up sync protocol: wire messages and the puller's state machine.
//!
//! One node (the puller) asks another (the responder) for what it lacks in one
//! commons. Both run a pull on every new connection, so each side fetches what
//! the other has. The exchange, designed for intermittent slow links:
//!
//! 1. `Hello{commons digest}` -> `InSync` settles "nothing to do" in one small
//!    round trip for a commons of any size; otherwise the reply carries the
//!    responder's inventory: an 8-byte id prefix and an 8-byte heads digest
//!    per document (16 bytes a document).
//! 2. The puller asks, in batches, for the documents whose digest differs,
//!    sending its per-author sequence heights for each (`Fetch`). The
//!    responder answers with what the puller lacks: a compressed automerge
//!    bundle per document plus the signatures that prove its authors, small
//!    documents first, within the byte budget the puller asked for.
//! 3. The puller verifies and stores each batch as it arrives, so a sync cut
//!    off halfway keeps what it got, and the next sync's inventory asks only
//!    for the rest.
//!
//! The responder side is [`respond`], a pure function over a [`SyncSource`].

use crate::encoding::{decode, domain_hash, encode, DecodeError};
use crate::envelope::{ChangeEnvelope, ChangeProof};
use crate::genesis::{CommonsGenesis, CommonsId, DocGenesis, DocId, Signed};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Domain of per-document and per-commons state digests.
const DOMAIN_STATE: &str = "hedgerow 2026-11 sync state digest v1";

/// Bytes of a document id sent in inventories.
pub const ID_PREFIX_LEN: usize = 8;
/// Most wants in one fetch request.
pub const MAX_WANTS_PER_FETCH: usize = 256;
/// Default byte budget of one fetch response on a good link.
pub const DEFAULT_RESPONSE_BUDGET: u32 = 512 * 1024;
/// Smallest byte budget a puller asks for on a bad link.
pub const MIN_RESPONSE_BUDGET: u32 = 8 * 1024;
/// Largest byte budget a responder honours.
pub const MAX_RESPONSE_BUDGET: u32 = 4 * 1024 * 1024;

/// The first 8 bytes of a document id.
pub type IdPrefix = [u8; ID_PREFIX_LEN];
/// An 8-byte digest of a document's heads.
pub type HeadsDigest = [u8; 8];

/// Per-author sequence heights: actor id bytes -> highest sequence number held.
pub type Clock = Vec<(Vec<u8>, u64)>;

/// A request from puller to responder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "Here is my state of this commons."
    Hello {
        /// The commons.
        commons: CommonsId,
        /// Digest over every document's heads.
        digest: [u8; 32],
    },
    /// "Send me what I lack of these documents."
    Fetch {
        /// The commons.
        commons: CommonsId,
        /// The documents, with what the puller already has.
        wants: Vec<Want>,
        /// Stop adding documents to the response past this many bytes.
        budget: u32,
    },
}

/// One document a puller wants, and what it has of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    /// The document's id prefix from the inventory.
    pub prefix: IdPrefix,
    /// Whether the puller already holds the genesis record.
    pub have_genesis: bool,
    /// The puller's per-author heights.
    pub clock: Clock,
}

/// A response from responder to puller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Same state: nothing to do.
    InSync,
    /// The responder's documents, sorted by prefix.
    Inventory {
        /// The commons genesis, so a puller that joined by id alone can verify and store it.
        genesis: Signed<CommonsGenesis>,
        /// One entry per document.
        docs: Vec<(IdPrefix, HeadsDigest)>,
    },
    /// What the puller lacks of some wanted documents.
    Docs {
        /// One payload per document sent.
        items: Vec<DocPayload>,
        /// Prefixes the responder skipped for lack of budget; the puller asks again.
        deferred: Vec<IdPrefix>,
    },
    /// The responder does not replicate this commons.
    NotJoined,
    /// The request was refused.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What a puller lacks of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocPayload {
    /// The document.
    pub doc: DocId,
    /// Its genesis, when the puller lacked it.
    pub genesis: Option<Signed<DocGenesis>>,
    /// Compressed automerge bundle of the missing changes.
    pub bundle: Vec<u8>,
    /// Signatures covering the bundle: each author's latest change in it.
    pub proofs: Vec<([u8; 32], ChangeProof)>,
}

impl DocPayload {
    /// Approximate bytes this payload takes on the wire.
    pub fn wire_size(&self) -> usize {
        self.bundle.len()
            + self.proofs.len() * 160
            + if self.genesis.is_some() { 200 } else { 0 }
            + 40
    }
}

/// A live message published on a commons' gossip topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveChange {
    /// The document's genesis, sent with a document's first change so receivers can create it.
    pub genesis: Option<Signed<DocGenesis>>,
    /// The signed change.
    pub envelope: ChangeEnvelope,
}

/// A message on a commons' gossip topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gossip {
    /// A new signed change, small enough to send whole.
    Change(Box<LiveChange>),
    /// "I have something new in this commons": too large to gossip, or received by sync,
    /// so receivers pull it from the sender.
    Announce {
        /// The commons with news.
        commons: CommonsId,
        /// The sender's [`commons_digest`] with the news: a receiver already in that state
        /// skips the pull, and two announcements of one state are one gossip message.
        digest: [u8; 32],
    },
}

/// Largest live change sent whole over gossip; larger ones are announced and pulled.
pub const MAX_LIVE_CHANGE_BYTES: usize = 256 * 1024;

impl Gossip {
    /// Versioned wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decodes wire bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, "gossip message")
    }
}

impl SyncRequest {
    /// Versioned wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decodes wire bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, "sync request")
    }
}

impl SyncResponse {
    /// Versioned wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decodes wire bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, "sync response")
    }
}

impl LiveChange {
    /// Versioned wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decodes wire bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, "live change")
    }
}

/// The digest of one document's heads (order-independent).
pub fn heads_digest(heads: &[[u8; 32]]) -> HeadsDigest {
    let mut sorted = heads.to_vec();
    sorted.sort_unstable();
    let digest = domain_hash(DOMAIN_STATE, &sorted.concat());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// The digest of a whole commons from its documents' digests.
pub fn commons_digest(docs: &[(IdPrefix, HeadsDigest)]) -> [u8; 32] {
    let mut sorted = docs.to_vec();
    sorted.sort_unstable();
    let mut bytes = Vec::with_capacity(sorted.len() * 16);
    for (prefix, digest) in sorted {
        bytes.extend_from_slice(&prefix);
        bytes.extend_from_slice(&digest);
    }
    domain_hash(DOMAIN_STATE, &bytes)
}

/// The id prefix used in inventories.
pub fn id_prefix(doc: &DocId) -> IdPrefix {
    let mut out = [0u8; ID_PREFIX_LEN];
    out.copy_from_slice(&doc.as_bytes()[..ID_PREFIX_LEN]);
    out
}

/// What a responder needs of its local state.
pub trait SyncSource {
    /// Error reading local state.
    type Error: std::fmt::Display;
    /// The commons genesis, if this node replicates the commons.
    fn commons_genesis(
        &self,
        commons: &CommonsId,
    ) -> Result<Option<Signed<CommonsGenesis>>, Self::Error>;
    /// Per-document heads digests of the commons.
    fn inventory(&self, commons: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, Self::Error>;
    /// What a peer with `clock` lacks of `doc`, or `None` if nothing.
    fn payload(&mut self, doc: &DocId, want: &Want) -> Result<Option<DocPayload>, Self::Error>;
}

/// Why a sync request is refused before any local state is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A fetch names more documents than [`MAX_WANTS_PER_FETCH`].
    #[error("a fetch may name at most {MAX_WANTS_PER_FETCH} documents, this one names {count}")]
    TooManyWants {
        /// How many it names.
        count: usize,
    },
}

impl RequestError {
    /// Short stable name, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::TooManyWants { .. } => "too-many-wants",
        }
    }
}

/// Checks the limits of a request an honest puller never breaks.
///
/// Errors: [`RequestError::TooManyWants`]. (Duplicate wants are not an error: an honest
/// puller repeats a prefix when two of the responder's documents share it.)
pub fn validate_request(request: &SyncRequest) -> Result<(), RequestError> {
    match request {
        SyncRequest::Hello { .. } => Ok(()),
        SyncRequest::Fetch { wants, .. } if wants.len() > MAX_WANTS_PER_FETCH => {
            Err(RequestError::TooManyWants { count: wants.len() })
        }
        SyncRequest::Fetch { .. } => Ok(()),
    }
}

/// Answers one sync request from local state. Pure apart from the reads `source` does.
pub fn respond<S: SyncSource>(source: &mut S, request: &SyncRequest) -> SyncResponse {
    match respond_inner(source, request) {
        Ok(response) => response,
        Err(reason) => SyncResponse::Refused { reason },
    }
}

fn respond_inner<S: SyncSource>(
    source: &mut S,
    request: &SyncRequest,
) -> Result<SyncResponse, String> {
    validate_request(request).map_err(|e| e.to_string())?;
    let commons = match request {
        SyncRequest::Hello { commons, .. } | SyncRequest::Fetch { commons, .. } => commons,
    };
    let Some(genesis) = source.commons_genesis(commons).map_err(|e| e.to_string())? else {
        return Ok(SyncResponse::NotJoined);
    };
    let inventory = source.inventory(commons).map_err(|e| e.to_string())?;
    match request {
        SyncRequest::Hello { digest, .. } => {
            let mut docs: Vec<(IdPrefix, HeadsDigest)> = inventory
                .iter()
                .map(|(id, d)| (id_prefix(id), *d))
                .collect();
            docs.sort_unstable();
            if commons_digest(&docs) == *digest {
                Ok(SyncResponse::InSync)
            } else {
                Ok(SyncResponse::Inventory { genesis, docs })
            }
        }
        SyncRequest::Fetch { wants, budget, .. } => {
            let budget = (*budget).clamp(MIN_RESPONSE_BUDGET, MAX_RESPONSE_BUDGET) as usize;
            let by_prefix: HashMap<IdPrefix, DocId> = inventory
                .iter()
                .map(|(id, _)| (id_prefix(id), *id))
                .collect();
            let mut payloads = Vec::new();
            let mut named = std::collections::HashSet::new();
            for want in wants {
                // One payload per document, however often a request names it.
                if !named.insert(want.prefix) {
                    continue;
                }
                let Some(doc) = by_prefix.get(&want.prefix) else {
                    continue;
                };
                if let Some(payload) = source.payload(doc, want).map_err(|e| e.to_string())? {
                    payloads.push((want.prefix, payload));
                }
            }
            // Small documents first: on a slow link metadata and text arrive before big documents.
            payloads.sort_by_key(|(_, p)| p.wire_size());
            let mut used = 0usize;
            let mut items = Vec::new();
            let mut deferred = Vec::new();
            for (prefix, payload) in payloads {
                let size = payload.wire_size();
                if items.is_empty() || used + size <= budget {
                    used += size;
                    items.push(payload);
                } else {
                    deferred.push(prefix);
                }
            }
            Ok(SyncResponse::Docs { items, deferred })
        }
    }
}

/// What the puller knows of one local document.
#[derive(Clone, Debug)]
pub struct LocalDoc {
    /// Heads digest.
    pub digest: HeadsDigest,
    /// Per-author heights.
    pub clock: Clock,
}

/// Counters of one pull.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullStats {
    /// Request/response round trips.
    pub round_trips: u64,
    /// Documents received.
    pub docs_received: u64,
    /// Documents the responder deferred and were asked again.
    pub deferred: u64,
}

/// The puller's side of one sync with one peer for one commons.
#[derive(Debug)]
pub struct PullSession {
    commons: CommonsId,
    queue: VecDeque<Want>,
    budget: u32,
    /// Running estimate of one document's payload on the wire, to size each fetch.
    doc_estimate: f64,
    /// Counters so far.
    pub stats: PullStats,
}

/// Payload size assumed for a document before any has arrived (several KB of build steps, compressed).
pub const INITIAL_DOC_ESTIMATE: usize = 2 * 1024;
/// Fewest wants in one fetch, so tiny budgets still let the responder pick the smallest documents.
pub const MIN_WANTS_PER_FETCH: usize = 4;

/// What the puller does next.
#[derive(Debug)]
pub enum PullStep {
    /// Send this request.
    Send(SyncRequest),
    /// Nothing left to ask.
    Done,
}

impl PullSession {
    /// Starts a pull with a response budget suited to the link.
    pub fn new(commons: CommonsId, budget: u32) -> Self {
        Self {
            commons,
            queue: VecDeque::new(),
            budget: budget.clamp(MIN_RESPONSE_BUDGET, MAX_RESPONSE_BUDGET),
            doc_estimate: INITIAL_DOC_ESTIMATE as f64,
            stats: PullStats::default(),
        }
    }

    /// Changes the byte budget of the next fetches (the link got faster or slower).
    pub fn set_budget(&mut self, budget: u32) {
        self.budget = budget.clamp(MIN_RESPONSE_BUDGET, MAX_RESPONSE_BUDGET);
    }

    /// The byte budget the next fetch asks for.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Learns from the wire sizes of received payloads how many documents a fetch should name.
    ///
    /// Naming far more documents than fit in the budget costs bytes twice on a slow link: every
    /// want travels in the request and comes back as a deferred prefix.
    pub fn record_payload_sizes(&mut self, sizes: impl IntoIterator<Item = usize>) {
        for size in sizes {
            self.doc_estimate = 0.75 * self.doc_estimate + 0.25 * size.max(64) as f64;
        }
    }

    /// How many wants the next fetch names: about twice what the budget holds, so the
    /// responder can still choose the smallest documents.
    pub fn wants_per_fetch(&self) -> usize {
        let fit = f64::from(self.budget) / self.doc_estimate.max(1.0);
        ((2.0 * fit).ceil() as usize).clamp(MIN_WANTS_PER_FETCH, MAX_WANTS_PER_FETCH)
    }

    /// The opening request.
    pub fn hello(&self, local: &BTreeMap<DocId, LocalDoc>) -> SyncRequest {
        let docs: Vec<(IdPrefix, HeadsDigest)> = local
            .iter()
            .map(|(id, d)| (id_prefix(id), d.digest))
            .collect();
        SyncRequest::Hello {
            commons: self.commons,
            digest: commons_digest(&docs),
        }
    }

    /// Handles the responder's inventory: queue every document whose digest differs.
    pub fn on_inventory(
        &mut self,
        remote: &[(IdPrefix, HeadsDigest)],
        local: &BTreeMap<DocId, LocalDoc>,
    ) -> PullStep {
        self.stats.round_trips += 1;
        let local_by_prefix: HashMap<IdPrefix, &LocalDoc> =
            local.iter().map(|(id, d)| (id_prefix(id), d)).collect();
        for (prefix, digest) in remote {
            match local_by_prefix.get(prefix) {
                Some(mine) if mine.digest == *digest => {}
                Some(mine) => self.queue.push_back(Want {
                    prefix: *prefix,
                    have_genesis: true,
                    clock: mine.clock.clone(),
                }),
                None => self.queue.push_back(Want {
                    prefix: *prefix,
                    have_genesis: false,
                    clock: Vec::new(),
                }),
            }
        }
        // Changes to documents held here (usually small edits) before whole new documents.
        self.queue
            .make_contiguous()
            .sort_by_key(|want| !want.have_genesis);
        self.next()
    }

    /// Handles a batch of documents (after the caller stored them): re-queue what was deferred.
    ///
    /// `local` is re-read by the caller after storing, so deferred wants carry fresh clocks.
    pub fn on_docs(
        &mut self,
        deferred: &[IdPrefix],
        local: &BTreeMap<DocId, LocalDoc>,
        received: usize,
    ) -> PullStep {
        self.stats.round_trips += 1;
        self.stats.docs_received += received as u64;
        self.stats.deferred += deferred.len() as u64;
        let local_by_prefix: HashMap<IdPrefix, &LocalDoc> =
            local.iter().map(|(id, d)| (id_prefix(id), d)).collect();
        for prefix in deferred {
            let want = match local_by_prefix.get(prefix) {
                Some(mine) => Want {
                    prefix: *prefix,
                    have_genesis: true,
                    clock: mine.clock.clone(),
                },
                None => Want {
                    prefix: *prefix,
                    have_genesis: false,
                    clock: Vec::new(),
                },
            };
            self.queue.push_back(want);
        }
        if received == 0 && !deferred.is_empty() {
            // The responder could not fit even one document: nothing will change by asking again.
            self.queue.clear();
        }
        self.next()
    }

    /// Documents still to ask for.
    pub fn remaining(&self) -> usize {
        self.queue.len()
    }

    fn next(&mut self) -> PullStep {
        if self.queue.is_empty() {
            return PullStep::Done;
        }
        let take = self.queue.len().min(self.wants_per_fetch());
        let wants = self.queue.drain(..take).collect();
        PullStep::Send(SyncRequest::Fetch {
            commons: self.commons,
            wants,
            budget: self.budget,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8) -> DocId {
        DocId([n; 32])
    }

    fn local(ids: &[u8]) -> BTreeMap<DocId, LocalDoc> {
        ids.iter()
            .map(|n| {
                let local = LocalDoc {
                    digest: [0; 8],
                    clock: vec![(vec![*n; 16], 1)],
                };
                (doc(*n), local)
            })
            .collect()
    }

    fn wants(step: PullStep) -> Vec<Want> {
        match step {
            PullStep::Send(SyncRequest::Fetch { wants, .. }) => wants,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn a_fetch_names_about_twice_what_its_budget_holds() {
        let mut session = PullSession::new(CommonsId([1; 32]), 16 * 1024);
        assert_eq!(session.wants_per_fetch(), 16);
        session.record_payload_sizes(std::iter::repeat_n(4096, 20));
        assert_eq!(session.wants_per_fetch(), 8);
        session.set_budget(MIN_RESPONSE_BUDGET);
        assert_eq!(session.wants_per_fetch(), MIN_WANTS_PER_FETCH);
        session.set_budget(MAX_RESPONSE_BUDGET);
        session.record_payload_sizes(std::iter::repeat_n(10, 50));
        assert_eq!(session.wants_per_fetch(), MAX_WANTS_PER_FETCH);
    }

    #[test]
    fn changes_to_held_documents_are_asked_before_new_documents() {
        let mut session = PullSession::new(CommonsId([1; 32]), MIN_RESPONSE_BUDGET);
        let remote: Vec<(IdPrefix, HeadsDigest)> =
            (1..=6).map(|n| (id_prefix(&doc(n)), [9; 8])).collect();
        let first = wants(session.on_inventory(&remote, &local(&[5, 6])));
        let held: Vec<bool> = first.iter().map(|w| w.have_genesis).collect();
        assert_eq!(held, vec![true, true, false, false]);
        assert_eq!(first[0].prefix, id_prefix(&doc(5)));
        assert_eq!(session.remaining(), 2);
    }
}
