//! The catch-up sync protocol: wire messages and the puller's state machine.
//!
//! One node (the puller) asks another (the responder) for what it lacks in one
//! commons. Both run a pull on every new connection, so each side fetches what
//! the other has. The exchange, designed for intermittent slow links:
//!
//! 1. `Hello{commons digest}` -> `InSync` settles "nothing to do" in one small
//!    round trip for a commons of any size; otherwise the reply carries the
//!    responder's inventory: an 8-byte id prefix and an 8-byte heads digest
//!    per document (16 bytes a document). A large commons (over
//!    [`SUMMARY_THRESHOLD`] documents) answers a puller that holds part of it
//!    with a `Summary` instead: its documents in buckets by id prefix, a 4-byte
//!    digest a bucket (about one byte a document); the puller asks with
//!    `Entries` for the inventory of just the buckets that differ, so two nodes
//!    that drifted apart by a few edits do not send each other their whole
//!    inventories. To a `HelloV4` (`/hedgerow/sync/4`) a commons of over
//!    [`SKETCH_THRESHOLD`] documents answers with a [`crate::sync_sketch`]
//!    sketch instead, from which the puller peels the differing documents in
//!    one round trip whatever the commons' size.
//! 2. The puller asks, in batches, for the documents whose digest differs,
//!    sending its per-author sequence heights for each (`Fetch`). The
//!    responder answers with what the puller lacks: each document's changes in
//!    compact form ([`crate::compact`]) plus the signatures that prove its authors, small
//!    documents first, within the byte budget the puller asked for.
//! 3. The puller verifies and stores each batch as it arrives, so a sync cut
//!    off halfway keeps what it got, and the next sync's inventory asks only
//!    for the rest.
//!
//! On slow links the puller sizes each fetch: the budget comes from the node's
//! estimate of the link (about two seconds of data, so a drop loses little),
//! and a fetch names only about twice as many documents as that budget holds.
//! Changes to documents already held are asked for before new documents, and
//! the responder sends the smallest first and defers the rest, so a large
//! document waits behind small ones instead of blocking them. A pull cut off
//! by a dropped link keeps its queue: [`PullSession::interrupt`] puts the lost
//! fetch back, and [`PullSession::resume`] continues on the next connection
//! without a new inventory, ending with a `Hello` that catches anything the
//! responder received meanwhile.
//!
//! The responder side is [`respond`], a pure function over a [`SyncSource`].

use crate::compact::CompactChanges;
use crate::encoding::{decode, domain_hash, encode, DecodeError};
use crate::envelope::{ChangeEnvelope, ChangeProof};
use crate::genesis::{CommonsGenesis, CommonsId, DocGenesis, DocId, Signed};
pub use crate::private::MembershipProof;
pub use crate::sync_compact::{DocPayloadV3, WantV3};
use crate::sync_sketch::Sketch;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Domain of per-document and per-commons state digests.
const DOMAIN_STATE: &str = "hedgerow 2026-11 sync state digest v1";

/// Bytes of a document id sent in inventories.
pub const ID_PREFIX_LEN: usize = 8;
/// Most wants in one fetch request to a peer of the first sync protocol version
/// (`/hedgerow/sync/1`), which refuses more.
pub const MAX_WANTS_PER_FETCH: usize = 256;
/// Most wants in one fetch request this release answers, and sends to a peer that speaks
/// `/hedgerow/sync/2`: a fast link's 4 MiB response holds about 800 documents of a large
/// commons, and 256 wants a fetch made an initial sync of 6,800 documents take 30 round trips.
pub const MAX_WANTS_PER_FETCH_V2: usize = 2048;
/// Default byte budget of one fetch response on a good link.
pub const DEFAULT_RESPONSE_BUDGET: u32 = 512 * 1024;
/// Smallest byte budget a puller asks for on a bad link.
pub const MIN_RESPONSE_BUDGET: u32 = 8 * 1024;
/// Largest byte budget a responder honours.
pub const MAX_RESPONSE_BUDGET: u32 = 4 * 1024 * 1024;
/// Most wants one pull queues from an inventory: a responder's inventory may list any number
/// of documents (a fake one of 8 MiB names half a million), so a pull queues at most this
/// many and asks for the rest in a new pull once these are done.
pub const MAX_QUEUED_WANTS: usize = 16 * 1024;

/// The first 8 bytes of a document id.
pub type IdPrefix = [u8; ID_PREFIX_LEN];
/// An 8-byte digest of a document's heads.
pub type HeadsDigest = [u8; 8];

/// Per-author sequence heights: actor id bytes -> highest sequence number held.
pub type Clock = Vec<(Vec<u8>, u64)>;

/// Commons with more documents than this answer a differing `Hello` from a puller that holds
/// part of the commons with a [`SyncResponse::Summary`] rather than their whole inventory.
pub const SUMMARY_THRESHOLD: usize = 512;
/// Documents per bucket a summary aims for.
pub const DOCS_PER_BUCKET: usize = 4;
/// Fewest buckets in a summary.
pub const MIN_BUCKETS: u32 = 64;
/// Most buckets in a summary (and in an `Entries` request).
pub const MAX_BUCKETS: u32 = 1 << 16;
/// A 4-byte digest of the documents in one bucket of a summary.
pub type BucketDigest = [u8; 4];
/// Commons with more documents than this answer a differing [`SyncRequest::HelloV4`] with a
/// [`SyncResponse::Sketch`]. Over it a summary has at least 1,024 buckets (4 KB), and its
/// entries request and partial inventory (with the commons genesis) make it about the size of
/// a sketch from about 30 differing documents on; from 4,097 documents the summary alone is
/// larger. Below it a small drift costs less by summary (bench/RESULTS.md).
pub const SKETCH_THRESHOLD: usize = 2048;
/// Cells of the sketch a responder sends: it peels a difference of about 120 documents in
/// other states (240 keys, 1.5 cells a key; 6,120 bytes of cells); a larger difference falls
/// back to the summary.
pub const SKETCH_CELLS: usize = 360;

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
    /// "List your documents in these buckets of your summary": those whose digest differs.
    Entries {
        /// The commons.
        commons: CommonsId,
        /// The summary's bucket count.
        buckets: u32,
        /// The buckets to list, ascending.
        wanted: Vec<u32>,
    },
    /// "My node runs a member device of this commons": a [`MembershipProof`] bound to this
    /// connection, sent before asking for a private commons (added in the second release; the
    /// variants above keep their bytes).
    Prove(Box<MembershipProof>),
    /// `Fetch` in the compact form of `/hedgerow/sync/3` (short actor digests in the
    /// clocks; see [`crate::sync_compact`]), sent only to a peer that lists that protocol
    /// (the variants above keep their bytes); answered with [`SyncResponse::DocsV3`].
    FetchV3 {
        /// The commons.
        commons: CommonsId,
        /// The documents, with what the puller already has.
        wants: Vec<WantV3>,
        /// Stop adding documents to the response past this many bytes.
        budget: u32,
    },
    /// `Hello` to a peer that lists `/hedgerow/sync/4`: a differing commons of more than
    /// [`SKETCH_THRESHOLD`] documents is answered with a [`SyncResponse::Sketch`] instead of a
    /// `Summary` (the variants above keep their bytes).
    HelloV4 {
        /// The commons.
        commons: CommonsId,
        /// Digest over every document's heads.
        digest: [u8; 32],
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
    /// A large commons' documents in buckets by id prefix, one digest a bucket; the puller
    /// answers with `Entries` naming the buckets that differ, and gets their `Inventory`.
    Summary {
        /// Bucket count, a power of two (see [`bucket_of`]).
        buckets: u32,
        /// One digest per bucket, in bucket order (see [`bucket_digests`]).
        digests: Vec<BucketDigest>,
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
    /// The membership proof holds: this connection is served the private commons.
    Proven,
    /// The commons is private and this connection has not proved a member device of it
    /// (typed refusal `not-a-member`; no offence).
    NotAMember,
    /// `Docs` in the compact form of `/hedgerow/sync/3`, the answer to a
    /// [`SyncRequest::FetchV3`] (proofs without what the puller derives).
    DocsV3 {
        /// One payload per document sent.
        items: Vec<DocPayloadV3>,
        /// Prefixes the responder skipped for lack of budget; the puller asks again.
        deferred: Vec<IdPrefix>,
    },
    /// The answer to a [`SyncRequest::HelloV4`] about a large commons that differs: the
    /// responder's [`Sketch`] of [`SKETCH_CELLS`] cells, from which the puller peels the
    /// documents it holds in another state or not at all.
    Sketch {
        /// The sketch's bytes ([`Sketch::to_bytes`]).
        sketch: Vec<u8>,
    },
}

/// Local documents by id prefix.
fn by_local_prefix(local: &BTreeMap<DocId, LocalDoc>) -> HashMap<IdPrefix, &LocalDoc> {
    local.iter().map(|(id, d)| (id_prefix(id), d)).collect()
}

/// The documents a responder's sketch lists as held there in a state this node lacks (by id
/// prefix), or `None` when the sketch is malformed or its difference with `local` does not
/// peel. Documents only this node holds are left to the other direction's pull.
pub fn sketch_listing(sketch: &[u8], local: &BTreeMap<DocId, LocalDoc>) -> Option<Vec<IdPrefix>> {
    let mut theirs = Sketch::from_bytes(sketch).ok()?;
    let entries: Vec<(IdPrefix, HeadsDigest)> = local
        .iter()
        .map(|(id, d)| (id_prefix(id), d.digest))
        .collect();
    theirs
        .subtract(&Sketch::of(&entries, theirs.cells()).ok()?)
        .ok()?;
    let mut differing: Vec<IdPrefix> = theirs
        .decode()?
        .ours
        .iter()
        .map(|key| {
            let mut prefix = [0u8; ID_PREFIX_LEN];
            prefix.copy_from_slice(&key[..ID_PREFIX_LEN]);
            prefix
        })
        .collect();
    differing.sort_unstable();
    differing.dedup();
    Some(differing)
}

/// Which local documents' per-author clocks the step after a response needs (reading a clock
/// costs a replica load; most documents need none).
#[derive(Debug, Clone)]
pub enum ClockWants {
    /// None.
    None,
    /// Those whose digest differs from the one listed for their prefix.
    Differing(HashMap<IdPrefix, HeadsDigest>),
    /// Those deferred by the responder.
    Deferred(std::collections::HashSet<IdPrefix>),
    /// Those a sketch lists (see [`ClockWants::for_sketch`]).
    Listed(std::collections::HashSet<IdPrefix>),
}

impl ClockWants {
    /// Whether the local document with this prefix and digest needs its clock.
    pub fn wants(&self, prefix: &IdPrefix, digest: &HeadsDigest) -> bool {
        match self {
            ClockWants::None => false,
            ClockWants::Differing(theirs) => theirs.get(prefix).is_some_and(|t| t != digest),
            ClockWants::Deferred(prefixes) | ClockWants::Listed(prefixes) => {
                prefixes.contains(prefix)
            }
        }
    }

    /// The clocks a [`SyncResponse::Sketch`] needs: those of the documents it lists, peeled
    /// against `local`'s digests (read without clocks).
    pub fn for_sketch(sketch: &[u8], local: &BTreeMap<DocId, LocalDoc>) -> Self {
        match sketch_listing(sketch, local) {
            Some(listed) => ClockWants::Listed(listed.into_iter().collect()),
            None => ClockWants::None,
        }
    }
}

impl SyncResponse {
    /// The clocks [`PullSession::on_response`] needs in its `local` for this response; for a
    /// `Sketch`, which cannot tell without the local digests, see [`ClockWants::for_sketch`].
    pub fn clock_wants(&self) -> ClockWants {
        match self {
            SyncResponse::Inventory { docs, .. } => {
                ClockWants::Differing(docs.iter().copied().collect())
            }
            SyncResponse::Docs { deferred, .. } | SyncResponse::DocsV3 { deferred, .. } => {
                ClockWants::Deferred(deferred.iter().copied().collect())
            }
            _ => ClockWants::None,
        }
    }
}

/// What a puller lacks of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocPayload {
    /// The document.
    pub doc: DocId,
    /// Its genesis, when the puller lacked it.
    pub genesis: Option<Signed<DocGenesis>>,
    /// The missing changes in compact form.
    pub changes: CompactChanges,
    /// Signatures covering the changes: each author's latest change among them.
    pub proofs: Vec<([u8; 32], ChangeProof)>,
}

impl DocPayload {
    /// Approximate bytes this payload takes on the wire.
    pub fn wire_size(&self) -> usize {
        self.changes.len()
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
    /// "I have something new in the private commons of this topic": carries no commons id and
    /// no content (a private commons' changes travel only by sync, to proven members), so a
    /// non-member that subscribes to the topic learns only that something changed.
    PrivateNews {
        /// The sender's [`commons_digest`] with the news (a receiver in that state skips the pull).
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
    /// This request as sent to a peer that speaks `/hedgerow/sync/3`: a `Fetch` becomes a
    /// [`SyncRequest::FetchV3`]; every other request is the same in both versions.
    pub fn into_v3(self) -> Self {
        match self {
            SyncRequest::Fetch {
                commons,
                wants,
                budget,
            } => SyncRequest::FetchV3 {
                commons,
                wants: wants.iter().map(WantV3::of).collect(),
                budget,
            },
            other => other,
        }
    }

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

/// The bucket of an id prefix in a summary of `buckets` buckets (a power of two): its top bits.
pub fn bucket_of(prefix: &IdPrefix, buckets: u32) -> u32 {
    let bits = buckets.trailing_zeros();
    if bits == 0 || !buckets.is_power_of_two() {
        return 0;
    }
    (u64::from_be_bytes(*prefix) >> (64 - bits)) as u32
}

/// Whether `buckets` is a bucket count a summary may have: a power of two up to [`MAX_BUCKETS`].
pub fn is_bucket_count(buckets: u32) -> bool {
    buckets.is_power_of_two() && buckets <= MAX_BUCKETS
}

/// How many buckets a summary of `docs` documents has: about [`DOCS_PER_BUCKET`] documents
/// a bucket, a power of two from [`MIN_BUCKETS`] to [`MAX_BUCKETS`].
pub fn summary_buckets(docs: usize) -> u32 {
    let wanted = (docs / DOCS_PER_BUCKET).max(1).next_power_of_two();
    (wanted.min(MAX_BUCKETS as usize) as u32).max(MIN_BUCKETS)
}

/// One digest per bucket of `docs`: the first 4 bytes of the [`commons_digest`] of the
/// bucket's documents (the same on both sides when they hold the same states).
pub fn bucket_digests(docs: &[(IdPrefix, HeadsDigest)], buckets: u32) -> Vec<BucketDigest> {
    let mut per_bucket = vec![Vec::new(); buckets as usize];
    for entry in docs {
        per_bucket[bucket_of(&entry.0, buckets) as usize].push(*entry);
    }
    per_bucket
        .iter()
        .map(|bucket| {
            let digest = commons_digest(bucket);
            [digest[0], digest[1], digest[2], digest[3]]
        })
        .collect()
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
    /// [`Self::payload`] for a `/hedgerow/sync/3` want, in that version's compact form.
    ///
    /// This default cannot read short clocks, so it answers as for an empty clock (the
    /// whole document: more than needed, never less) with every proof in full.
    fn payload_v3(
        &mut self,
        doc: &DocId,
        want: &WantV3,
    ) -> Result<Option<DocPayloadV3>, Self::Error> {
        let want = Want {
            prefix: want.prefix,
            have_genesis: want.have_genesis,
            clock: Vec::new(),
        };
        Ok(self
            .payload(doc, &want)?
            .map(|payload| DocPayloadV3::from_payload(payload, &[], |_| None, |_| false)))
    }
}

/// Why a sync request is refused before any local state is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A fetch names more documents than [`MAX_WANTS_PER_FETCH_V2`].
    #[error("a fetch may name at most {MAX_WANTS_PER_FETCH_V2} documents, this one names {count}")]
    TooManyWants {
        /// How many it names.
        count: usize,
    },
    /// An entries request whose bucket count is not a power of two up to [`MAX_BUCKETS`].
    #[error("an entries request names {buckets} buckets; a summary has a power of two up to {MAX_BUCKETS}")]
    BadBucketCount {
        /// The bucket count given.
        buckets: u32,
    },
    /// An entries request names a bucket past its bucket count, or more buckets than there are.
    #[error("an entries request names bucket {bucket} of {buckets}")]
    NoSuchBucket {
        /// The bucket named.
        bucket: u32,
        /// The bucket count.
        buckets: u32,
    },
}

impl RequestError {
    /// Short stable name, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::TooManyWants { .. } => "too-many-wants",
            RequestError::BadBucketCount { .. } => "bad-bucket-count",
            RequestError::NoSuchBucket { .. } => "no-such-bucket",
        }
    }
}

/// Checks the limits of a request an honest puller never breaks.
///
/// Errors: [`RequestError::TooManyWants`]. (Duplicate wants are not an error: an honest
/// puller repeats a prefix when two of the responder's documents share it.)
pub fn validate_request(request: &SyncRequest) -> Result<(), RequestError> {
    match request {
        SyncRequest::Hello { .. } | SyncRequest::HelloV4 { .. } | SyncRequest::Prove(_) => Ok(()),
        SyncRequest::Fetch { wants, .. } if wants.len() > MAX_WANTS_PER_FETCH_V2 => {
            Err(RequestError::TooManyWants { count: wants.len() })
        }
        SyncRequest::FetchV3 { wants, .. } if wants.len() > MAX_WANTS_PER_FETCH_V2 => {
            Err(RequestError::TooManyWants { count: wants.len() })
        }
        SyncRequest::Fetch { .. } | SyncRequest::FetchV3 { .. } => Ok(()),
        SyncRequest::Entries {
            buckets, wanted, ..
        } => {
            if !is_bucket_count(*buckets) {
                return Err(RequestError::BadBucketCount { buckets: *buckets });
            }
            if wanted.len() > *buckets as usize {
                return Err(RequestError::NoSuchBucket {
                    bucket: *buckets,
                    buckets: *buckets,
                });
            }
            match wanted.iter().find(|b| **b >= *buckets) {
                Some(bucket) => Err(RequestError::NoSuchBucket {
                    bucket: *bucket,
                    buckets: *buckets,
                }),
                None => Ok(()),
            }
        }
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
        SyncRequest::Hello { commons, .. }
        | SyncRequest::HelloV4 { commons, .. }
        | SyncRequest::Fetch { commons, .. }
        | SyncRequest::FetchV3 { commons, .. }
        | SyncRequest::Entries { commons, .. } => commons,
        SyncRequest::Prove(_) => {
            return Err("a membership proof is judged by the node, not by its sync source".into())
        }
    };
    let Some(genesis) = source.commons_genesis(commons).map_err(|e| e.to_string())? else {
        return Ok(SyncResponse::NotJoined);
    };
    let inventory = source.inventory(commons).map_err(|e| e.to_string())?;
    match request {
        SyncRequest::Hello { digest, .. } | SyncRequest::HelloV4 { digest, .. } => {
            let mut docs: Vec<(IdPrefix, HeadsDigest)> = inventory
                .iter()
                .map(|(id, d)| (id_prefix(id), *d))
                .collect();
            docs.sort_unstable();
            let holds_part = *digest != commons_digest(&[]);
            let sketch_ok = matches!(request, SyncRequest::HelloV4 { .. });
            if commons_digest(&docs) == *digest {
                Ok(SyncResponse::InSync)
            } else if sketch_ok && docs.len() > SKETCH_THRESHOLD && holds_part {
                let sketch = Sketch::of(&docs, SKETCH_CELLS).map_err(|e| e.to_string())?;
                Ok(SyncResponse::Sketch {
                    sketch: sketch.to_bytes(),
                })
            } else if docs.len() > SUMMARY_THRESHOLD && holds_part {
                let buckets = summary_buckets(docs.len());
                Ok(SyncResponse::Summary {
                    buckets,
                    digests: bucket_digests(&docs, buckets),
                })
            } else {
                Ok(SyncResponse::Inventory { genesis, docs })
            }
        }
        SyncRequest::Entries {
            buckets, wanted, ..
        } => {
            let wanted: std::collections::HashSet<u32> = wanted.iter().copied().collect();
            let mut docs: Vec<(IdPrefix, HeadsDigest)> = inventory
                .iter()
                .map(|(id, d)| (id_prefix(id), *d))
                .filter(|(prefix, _)| wanted.contains(&bucket_of(prefix, *buckets)))
                .collect();
            docs.sort_unstable();
            Ok(SyncResponse::Inventory { genesis, docs })
        }
        SyncRequest::Prove(_) => Err("a membership proof is judged by the node".into()),
        SyncRequest::Fetch { wants, budget, .. } => {
            let by_prefix = by_prefix(&inventory);
            let (items, deferred) = answer_fetch(
                wants.iter().map(|w| (w.prefix, w)),
                *budget,
                &by_prefix,
                |doc, want| source.payload(doc, want),
                DocPayload::wire_size,
            )?;
            Ok(SyncResponse::Docs { items, deferred })
        }
        SyncRequest::FetchV3 { wants, budget, .. } => {
            let by_prefix = by_prefix(&inventory);
            let (items, deferred) = answer_fetch(
                wants.iter().map(|w| (w.prefix, w)),
                *budget,
                &by_prefix,
                |doc, want| source.payload_v3(doc, want),
                DocPayloadV3::wire_size,
            )?;
            Ok(SyncResponse::DocsV3 { items, deferred })
        }
    }
}

fn by_prefix(inventory: &[(DocId, HeadsDigest)]) -> HashMap<IdPrefix, DocId> {
    inventory
        .iter()
        .map(|(id, _)| (id_prefix(id), *id))
        .collect()
}

/// The documents of one fetch that fit its budget, smallest first, and the prefixes deferred.
fn answer_fetch<'w, W: 'w, P, E: std::fmt::Display>(
    wants: impl Iterator<Item = (IdPrefix, &'w W)>,
    budget: u32,
    by_prefix: &HashMap<IdPrefix, DocId>,
    mut build: impl FnMut(&DocId, &W) -> Result<Option<P>, E>,
    wire_size: impl Fn(&P) -> usize,
) -> Result<(Vec<P>, Vec<IdPrefix>), String> {
    let budget = budget.clamp(MIN_RESPONSE_BUDGET, MAX_RESPONSE_BUDGET) as usize;
    let mut payloads = Vec::new();
    let mut named = std::collections::HashSet::new();
    // Payloads are built only up to twice the budget (so the smallest can still be
    // picked among them); the wants past that are deferred unbuilt, so a fetch of 256
    // large documents costs about one response, not 256 documents, to answer.
    let mut built = 0usize;
    let mut unbuilt = Vec::new();
    for (prefix, want) in wants {
        // One payload per document, however often a request names it.
        if !named.insert(prefix) {
            continue;
        }
        let Some(doc) = by_prefix.get(&prefix) else {
            continue;
        };
        if built > budget.saturating_mul(2) {
            unbuilt.push(prefix);
            continue;
        }
        if let Some(payload) = build(doc, want).map_err(|e| e.to_string())? {
            built += wire_size(&payload);
            payloads.push((prefix, payload));
        }
    }
    // Small documents first: on a slow link metadata and text arrive before big documents.
    payloads.sort_by_key(|(_, p)| wire_size(p));
    let mut used = 0usize;
    let mut items = Vec::new();
    let mut deferred = Vec::new();
    for (prefix, payload) in payloads {
        let size = wire_size(&payload);
        if items.is_empty() || used + size <= budget {
            used += size;
            items.push(payload);
        } else {
            deferred.push(prefix);
        }
    }
    deferred.extend(unbuilt);
    Ok((items, deferred))
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
    /// Wants of the fetch awaiting its response; put back in front if the response is lost.
    in_flight: Vec<Want>,
    /// Whether the responder's inventory has arrived (the queue holds the whole difference).
    listed: bool,
    /// Whether to send a fresh `Hello` once the queue is empty: set when a pull resumes from
    /// its saved queue, to catch what the responder received since its inventory.
    confirm: bool,
    /// The last inventory listed more differing documents than [`MAX_QUEUED_WANTS`]: once
    /// the queue is done, the caller pulls again for the rest.
    truncated: bool,
    /// Documents already asked for whole in this session (see [`Self::refetch_whole`]).
    refetched: std::collections::HashSet<IdPrefix>,
    /// Most wants one fetch names: what the responder's protocol version accepts.
    max_wants: usize,
    /// The responder speaks `/hedgerow/sync/4`: the opening request is a `HelloV4`.
    v4_peer: bool,
    /// A sketch from the responder did not peel: this session asks with a plain `Hello`.
    sketch_failed: bool,
    /// A document asked for before all others when it differs (the commons' charter, under
    /// which the puller admits the rest).
    first: Option<IdPrefix>,
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
            in_flight: Vec::new(),
            listed: false,
            confirm: false,
            truncated: false,
            refetched: std::collections::HashSet::new(),
            max_wants: MAX_WANTS_PER_FETCH,
            v4_peer: false,
            sketch_failed: false,
            first: None,
            stats: PullStats::default(),
        }
    }

    /// Asks for `doc` before every other document when the inventory says it differs.
    pub fn with_first(mut self, doc: &DocId) -> Self {
        self.first = Some(id_prefix(doc));
        self
    }

    /// Asks for `doc` first from now on: the commons' charter, once a pull that joined the
    /// commons by its id learns who created it.
    pub fn set_first(&mut self, doc: &DocId) {
        self.first = Some(id_prefix(doc));
    }

    /// Narrows the fetch just built to the first document alone (the commons' charter), if it
    /// is among the documents still to ask for; the rest wait in the queue.
    ///
    /// A bulk pull held for the sync window still fetches the charter: without it a
    /// stewarded commons joined by id would admit every live change as if it were open.
    pub fn narrow_to_first(&mut self) -> Option<SyncRequest> {
        for want in std::mem::take(&mut self.in_flight).into_iter().rev() {
            self.queue.push_front(want);
        }
        let first = self.first?;
        let at = self.queue.iter().position(|want| want.prefix == first)?;
        let want = self.queue.remove(at)?;
        self.in_flight = vec![want.clone()];
        Some(SyncRequest::Fetch {
            commons: self.commons,
            wants: vec![want],
            budget: self.budget,
        })
    }

    /// The link dropped or the request failed: the wants of the lost fetch go back to the
    /// front of the queue. The session can be kept and [`resume`](Self::resume)d on the next
    /// connection, which then asks for the rest without a new inventory.
    pub fn interrupt(&mut self) {
        for want in std::mem::take(&mut self.in_flight).into_iter().rev() {
            self.queue.push_front(want);
        }
        if self.listed {
            self.confirm = true;
        }
    }

    /// Prefixes of the documents still to ask for (their clocks may need refreshing).
    pub fn queued_prefixes(&self) -> Vec<IdPrefix> {
        self.queue.iter().map(|want| want.prefix).collect()
    }

    /// Continues an interrupted pull: with `Hello` if the inventory never arrived, else with
    /// the saved queue, each want's clock refreshed from `local`.
    pub fn resume(&mut self, local: &BTreeMap<DocId, LocalDoc>) -> PullStep {
        if !self.listed {
            return PullStep::Send(self.hello(local));
        }
        let local_by_prefix = by_local_prefix(local);
        for want in &mut self.queue {
            if let Some(mine) = local_by_prefix.get(&want.prefix) {
                want.have_genesis = true;
                want.clock = mine.clock.clone();
            }
        }
        self.next(local)
    }

    /// Changes the byte budget of the next fetches (the link got faster or slower).
    pub fn set_budget(&mut self, budget: u32) {
        self.budget = budget.clamp(MIN_RESPONSE_BUDGET, MAX_RESPONSE_BUDGET);
    }

    /// Lets the next fetches name up to [`MAX_WANTS_PER_FETCH_V2`] documents (the responder
    /// speaks `/hedgerow/sync/2`) or only [`MAX_WANTS_PER_FETCH`] (it may be older).
    pub fn set_v2_peer(&mut self, v2: bool) {
        self.max_wants = if v2 {
            MAX_WANTS_PER_FETCH_V2
        } else {
            MAX_WANTS_PER_FETCH
        };
    }

    /// Opens with a [`SyncRequest::HelloV4`] (the responder speaks `/hedgerow/sync/4`) or a
    /// plain `Hello`.
    pub fn set_v4_peer(&mut self, v4: bool) {
        self.v4_peer = v4;
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
        ((2.0 * fit).round() as usize).clamp(MIN_WANTS_PER_FETCH, self.max_wants)
    }

    /// The opening request.
    pub fn hello(&self, local: &BTreeMap<DocId, LocalDoc>) -> SyncRequest {
        let docs: Vec<(IdPrefix, HeadsDigest)> = local
            .iter()
            .map(|(id, d)| (id_prefix(id), d.digest))
            .collect();
        let (commons, digest) = (self.commons, commons_digest(&docs));
        if self.v4_peer && !self.sketch_failed {
            SyncRequest::HelloV4 { commons, digest }
        } else {
            SyncRequest::Hello { commons, digest }
        }
    }

    /// Handles a large commons' sketch: ask for the documents it lists as held by the
    /// responder in a state this node lacks; when it does not peel (more differences than its
    /// cells hold, or malformed), open again with a plain `Hello`, which a summary answers. A
    /// second sketch that does not peel ends the pull (an honest responder answers the plain
    /// `Hello` with a summary), so a hostile one cannot keep it asking.
    pub fn on_sketch(&mut self, sketch: &[u8], local: &BTreeMap<DocId, LocalDoc>) -> PullStep {
        self.stats.round_trips += 1;
        match sketch_listing(sketch, local) {
            Some(differing) => self.list(differing, &by_local_prefix(local), local),
            None if self.sketch_failed => PullStep::Done,
            None => {
                self.sketch_failed = true;
                PullStep::Send(self.hello(local))
            }
        }
    }

    /// Handles a large commons' summary: ask for the inventory of the buckets whose digest
    /// differs from this node's (done when none does, or the summary is malformed).
    pub fn on_summary(
        &mut self,
        buckets: u32,
        remote: &[BucketDigest],
        local: &BTreeMap<DocId, LocalDoc>,
    ) -> PullStep {
        self.stats.round_trips += 1;
        if !is_bucket_count(buckets) || remote.len() != buckets as usize {
            return PullStep::Done;
        }
        let docs: Vec<(IdPrefix, HeadsDigest)> = local
            .iter()
            .map(|(id, d)| (id_prefix(id), d.digest))
            .collect();
        let mine = bucket_digests(&docs, buckets);
        let wanted: Vec<u32> = (0..buckets)
            .filter(|b| remote[*b as usize] != mine[*b as usize])
            .collect();
        if wanted.is_empty() {
            return PullStep::Done;
        }
        PullStep::Send(SyncRequest::Entries {
            commons: self.commons,
            buckets,
            wanted,
        })
    }

    /// Handles the responder's inventory: queue every document whose digest differs.
    pub fn on_inventory(
        &mut self,
        remote: &[(IdPrefix, HeadsDigest)],
        local: &BTreeMap<DocId, LocalDoc>,
    ) -> PullStep {
        self.stats.round_trips += 1;
        let local_by_prefix = by_local_prefix(local);
        let differing = remote
            .iter()
            .filter(|(prefix, digest)| {
                local_by_prefix.get(prefix).map(|mine| &mine.digest) != Some(digest)
            })
            .map(|(prefix, _)| *prefix);
        self.list(differing, &local_by_prefix, local)
    }

    /// Queues a want for every listed document (held here in another state, or not at all).
    fn list(
        &mut self,
        differing: impl IntoIterator<Item = IdPrefix>,
        local_by_prefix: &HashMap<IdPrefix, &LocalDoc>,
        local: &BTreeMap<DocId, LocalDoc>,
    ) -> PullStep {
        self.listed = true;
        self.queue.clear();
        self.truncated = false;
        for prefix in differing {
            if self.queue.len() >= MAX_QUEUED_WANTS {
                self.truncated = true;
                break;
            }
            match local_by_prefix.get(&prefix) {
                Some(mine) => self.queue.push_back(Want {
                    prefix,
                    have_genesis: true,
                    clock: mine.clock.clone(),
                }),
                None => self.queue.push_back(Want {
                    prefix,
                    have_genesis: false,
                    clock: Vec::new(),
                }),
            }
        }
        // Changes to documents held here (usually small edits) before whole new documents.
        let first = self.first;
        self.queue
            .make_contiguous()
            .sort_by_key(|want| (Some(want.prefix) != first, !want.have_genesis));
        self.next(local)
    }

    /// Goes on after `response`: the one dispatch of a pull's responses, for the node and for
    /// any other puller. The caller first stores what came (a `Docs` response's items, a
    /// listed commons it wants), then reads `local` with the clocks
    /// [`SyncResponse::clock_wants`] names. `InSync`, `NotJoined` and `Refused` end the pull.
    pub fn on_response(
        &mut self,
        response: &SyncResponse,
        local: &BTreeMap<DocId, LocalDoc>,
    ) -> PullStep {
        match response {
            SyncResponse::InSync => {
                self.stats.round_trips += 1;
                PullStep::Done
            }
            SyncResponse::Inventory { docs, .. } => self.on_inventory(docs, local),
            SyncResponse::Summary { buckets, digests } => self.on_summary(*buckets, digests, local),
            SyncResponse::Sketch { sketch } => self.on_sketch(sketch, local),
            SyncResponse::Docs { items, deferred } => {
                self.record_payload_sizes(items.iter().map(DocPayload::wire_size));
                self.on_docs(deferred, local, items.len())
            }
            SyncResponse::DocsV3 { items, deferred } => {
                self.record_payload_sizes(items.iter().map(DocPayloadV3::wire_size));
                self.on_docs(deferred, local, items.len())
            }
            SyncResponse::NotJoined
            | SyncResponse::Refused { .. }
            | SyncResponse::Proven
            | SyncResponse::NotAMember => PullStep::Done,
        }
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
        // Only what this fetch asked for is asked again, however long the deferred list.
        let mut asked: std::collections::HashSet<IdPrefix> =
            self.in_flight.drain(..).map(|want| want.prefix).collect();
        let deferred: Vec<IdPrefix> = deferred
            .iter()
            .filter(|p| asked.remove(*p))
            .copied()
            .collect();
        self.stats.docs_received += received as u64;
        self.stats.deferred += deferred.len() as u64;
        let local_by_prefix = by_local_prefix(local);
        for prefix in &deferred {
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
        self.next(local)
    }

    /// Asks again for a whole document (an empty clock), once per session: its changes
    /// arrived with dependencies this node does not hold although its clock said it did.
    ///
    /// Clocks count changes per actor, so two nodes holding different twins of an
    /// equivocation look alike to them; only the whole document brings the other twin, and
    /// with it the settlement. Returns whether the want was queued.
    pub fn refetch_whole(&mut self, prefix: IdPrefix) -> bool {
        if !self.refetched.insert(prefix) || self.queue.len() >= MAX_QUEUED_WANTS {
            return false;
        }
        self.queue.push_front(Want {
            prefix,
            have_genesis: true,
            clock: Vec::new(),
        });
        true
    }

    /// Documents still to ask for.
    pub fn remaining(&self) -> usize {
        self.queue.len()
    }

    /// Wants held: queued and in flight (bounded by [`MAX_QUEUED_WANTS`] plus one fetch).
    pub fn queued(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Whether the last inventory had more to ask for than one pull queues.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn next(&mut self, local: &BTreeMap<DocId, LocalDoc>) -> PullStep {
        if self.queue.is_empty() {
            if self.confirm {
                self.confirm = false;
                self.listed = false;
                return PullStep::Send(self.hello(local));
            }
            return PullStep::Done;
        }
        let take = self.queue.len().min(self.wants_per_fetch());
        let wants: Vec<Want> = self.queue.drain(..take).collect();
        self.in_flight = wants.clone();
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

    /// Issue 11: 256 wants a fetch made an initial sync of 6,800 documents take 30 round
    /// trips; a peer that speaks `/hedgerow/sync/2` is asked for up to 2,048 at a time, an
    /// older one for 256 as before.
    #[test]
    fn a_v2_peer_is_asked_for_more_documents_a_fetch() {
        let mut session = PullSession::new(CommonsId([1; 32]), MAX_RESPONSE_BUDGET);
        session.record_payload_sizes(std::iter::repeat_n(1000, 50));
        assert_eq!(session.wants_per_fetch(), MAX_WANTS_PER_FETCH);
        session.set_v2_peer(true);
        assert_eq!(session.wants_per_fetch(), MAX_WANTS_PER_FETCH_V2);
        let remote: Vec<(IdPrefix, HeadsDigest)> =
            (0..5000u64).map(|n| (n.to_be_bytes(), [9; 8])).collect();
        let first = wants(session.on_inventory(&remote, &local(&[])));
        assert_eq!(first.len(), MAX_WANTS_PER_FETCH_V2);
        let request = SyncRequest::Fetch {
            commons: CommonsId([1; 32]),
            wants: first,
            budget: MAX_RESPONSE_BUDGET,
        };
        assert_eq!(validate_request(&request), Ok(()));
        session.set_v2_peer(false);
        assert_eq!(session.wants_per_fetch(), MAX_WANTS_PER_FETCH);
    }

    #[test]
    fn changes_to_held_documents_are_asked_before_new_documents() {
        let mut session = PullSession::new(CommonsId([1; 32]), MIN_RESPONSE_BUDGET);
        session.record_payload_sizes(std::iter::repeat_n(4096, 50));
        let remote: Vec<(IdPrefix, HeadsDigest)> =
            (1..=6).map(|n| (id_prefix(&doc(n)), [9; 8])).collect();
        let first = wants(session.on_inventory(&remote, &local(&[5, 6])));
        let held: Vec<bool> = first.iter().map(|w| w.have_genesis).collect();
        assert_eq!(held, vec![true, true, false, false]);
        assert_eq!(first[0].prefix, id_prefix(&doc(5)));
        assert_eq!(session.remaining(), 2);
    }

    /// A pull held for the sync window still fetches the charter, named once the join made
    /// its id known, alone; everything else stays queued for the window.
    #[test]
    fn a_held_pull_narrows_its_fetch_to_the_charter_once() {
        let mut session = PullSession::new(CommonsId([1; 32]), MIN_RESPONSE_BUDGET);
        let remote: Vec<(IdPrefix, HeadsDigest)> =
            (1..=40).map(|n| (id_prefix(&doc(n)), [9; 8])).collect();
        session.set_first(&doc(33));
        let fetch = wants(session.on_inventory(&remote, &local(&[])));
        assert_eq!(fetch[0].prefix, id_prefix(&doc(33)), "the charter leads");
        let Some(SyncRequest::Fetch { wants: only, .. }) = session.narrow_to_first() else {
            panic!("the charter is still to fetch");
        };
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].prefix, id_prefix(&doc(33)));
        assert_eq!(session.queued(), 40, "39 queued and the charter in flight");
        assert_eq!(session.remaining(), 39);

        // The charter came: the next fetch names the rest, and narrows to nothing.
        let rest = wants(session.on_docs(&[], &local(&[]), 1));
        assert!(rest.iter().all(|w| w.prefix != id_prefix(&doc(33))));
        assert!(session.narrow_to_first().is_none());
        assert_eq!(
            session.remaining(),
            39,
            "the whole rest waits for the window"
        );

        // Without a first document nothing is narrowed.
        let mut plain = PullSession::new(CommonsId([1; 32]), MIN_RESPONSE_BUDGET);
        wants(plain.on_inventory(&remote, &local(&[])));
        assert!(plain.narrow_to_first().is_none());
        assert_eq!(plain.remaining(), 40);
    }

    #[test]
    fn an_interrupted_pull_resumes_from_its_queue_then_confirms_with_hello() {
        let mut session = PullSession::new(CommonsId([1; 32]), MIN_RESPONSE_BUDGET);
        session.record_payload_sizes(std::iter::repeat_n(4096, 50));
        let remote: Vec<(IdPrefix, HeadsDigest)> =
            (1..=6).map(|n| (id_prefix(&doc(n)), [9; 8])).collect();
        let lost = wants(session.on_inventory(&remote, &local(&[])));
        assert_eq!(lost.len(), 4);
        session.interrupt();
        assert_eq!(session.remaining(), 6, "the lost fetch is asked again");

        // Document 1 arrived some other way meanwhile: its want now carries its clock.
        let now = local(&[1]);
        let again = wants(session.resume(&now));
        assert_eq!(again[0].prefix, id_prefix(&doc(1)));
        assert!(again[0].have_genesis && !again[0].clock.is_empty());
        assert_eq!(again[1..].to_vec(), lost[1..].to_vec());

        let last = wants(session.on_docs(&[], &now, 4));
        assert_eq!(last.len(), 2);
        match session.on_docs(&[], &now, 2) {
            PullStep::Send(SyncRequest::Hello { .. }) => {}
            other => panic!("a resumed pull ends with a confirming hello, got {other:?}"),
        }
    }

    /// A source whose every document's payload is `size` bytes, counting payloads built.
    struct Sized {
        docs: Vec<DocId>,
        size: usize,
        built: usize,
    }

    impl SyncSource for Sized {
        type Error = String;
        fn commons_genesis(&self, _: &CommonsId) -> Result<Option<Signed<CommonsGenesis>>, String> {
            let key = crate::identity::DeviceKey::from_secret([1; 32]);
            Ok(Some(
                CommonsGenesis {
                    name: "c".into(),
                    description: String::new(),
                    creator: key.author(),
                    created_at: 0,
                    nonce: [0; 16],
                }
                .sign(&key),
            ))
        }
        fn inventory(&self, _: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, String> {
            Ok(self.docs.iter().map(|d| (*d, [1; 8])).collect())
        }
        fn payload(&mut self, doc: &DocId, _: &Want) -> Result<Option<DocPayload>, String> {
            self.built += 1;
            Ok(Some(DocPayload {
                doc: *doc,
                genesis: None,
                changes: CompactChanges::Changes(vec![0; self.size]),
                proofs: Vec::new(),
            }))
        }
    }

    #[test]
    fn a_fetch_builds_payloads_only_up_to_its_budget() {
        let docs: Vec<DocId> = (0..=255).map(doc).collect();
        let mut source = Sized {
            docs: docs.clone(),
            size: 64 * 1024,
            built: 0,
        };
        let wants = docs
            .iter()
            .map(|d| Want {
                prefix: id_prefix(d),
                have_genesis: true,
                clock: Vec::new(),
            })
            .collect();
        let request = SyncRequest::Fetch {
            commons: CommonsId([1; 32]),
            wants,
            budget: 256 * 1024,
        };
        match respond(&mut source, &request) {
            SyncResponse::Docs { items, deferred } => {
                assert_eq!(items.len(), 3, "what fits the budget is sent");
                assert_eq!(items.len() + deferred.len(), 256, "the rest is deferred");
            }
            other => panic!("expected documents, got {other:?}"),
        }
        assert!(source.built <= 10, "built {} payloads", source.built);
    }

    #[test]
    fn a_huge_inventory_queues_a_bounded_number_of_wants() {
        let mut session = PullSession::new(CommonsId([1; 32]), MIN_RESPONSE_BUDGET);
        let remote: Vec<(IdPrefix, HeadsDigest)> = (0..(4 * MAX_QUEUED_WANTS) as u64)
            .map(|n| (n.to_be_bytes(), [9; 8]))
            .collect();
        let first = wants(session.on_inventory(&remote, &local(&[])));
        assert!(session.queued() <= MAX_QUEUED_WANTS);
        assert!(session.truncated());
        // A responder cannot grow the queue with deferred prefixes it was not asked for.
        let bogus: Vec<IdPrefix> = (0..100_000u64).map(|n| (n << 20).to_be_bytes()).collect();
        let mut deferred = bogus;
        deferred.push(first[0].prefix);
        session.on_docs(&deferred, &local(&[]), 1);
        assert!(session.queued() <= MAX_QUEUED_WANTS);
    }

    #[test]
    fn a_pull_cut_before_its_inventory_resumes_with_hello() {
        let mut session = PullSession::new(CommonsId([1; 32]), MIN_RESPONSE_BUDGET);
        session.interrupt();
        assert!(matches!(
            session.resume(&local(&[])),
            PullStep::Send(SyncRequest::Hello { .. })
        ));
    }
}
