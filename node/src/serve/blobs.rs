//! The node's side of the blob protocol (`/hedgerow/blob/1`): answering peers' range requests
//! and fetching wanted blobs from every connected peer that holds them, with no I/O of its own.
//!
//! [`BlobTransfers`] keeps one [`Download`] per wanted blob and hands its ranges out round-robin
//! to the connected peers that have not refused it, [`PER_PEER_IN_FLIGHT`] requests at a time
//! each, so the link stays full (pipelining) and several holders share the work. Verified
//! bytes go to the blob's partial file in order; the blob is committed under its hash only
//! once whole (and re-hashed by the store then). A peer whose response fails verification is
//! reported as an [`Offence`] for the service to count (and cut off past the limit); nothing it
//! sent after its first bad group is kept. Resumption needs no state here: a new `Download`
//! starts from the partial file's length.
//!
//! Serving is limited per peer ([`ServeLimits`]: responses open at once, bytes per window);
//! beyond it a peer hears `Busy`, and a peer that says `Busy` to us is left alone for a
//! growing back-off ([`BusyPeers`]) while the other holders are asked.
//!
//! The bytes on disk are reached through [`BlobAccess`], so the rules are tested without files.

mod serving;

pub use serving::{
    BusyPeers, ServeLimits, ServeLoad, BUSY_BACKOFF, DEFAULT_BYTES_PER_PEER,
    DEFAULT_STREAMS_PER_PEER, DEFAULT_WINDOW_SECS, MAX_BUSY_BACKOFF,
};

use super::service::{InboundId, RequestId};
use hedgerow_protocol::blob_transfer::{
    decode_request, decode_response, encode_response, validate_request, BlobRefusal, BlobRequest,
    BlobResponse, Download, DownloadError, GroupRange, TransferError,
};
use libp2p::PeerId;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Groups asked for per request (256 KiB of data).
pub const GROUPS_PER_REQUEST: u64 = 16;

/// Requests in flight to one peer for one blob: enough to keep a fast link busy while each
/// response is verified and written.
pub const PER_PEER_IN_FLIGHT: usize = 4;

/// Most groups a download asks ahead of its first missing one (4 MiB): bounds the verified
/// bytes held in memory while an earlier range is late (at most [`MAX_ACTIVE`] downloads).
pub const WINDOW_GROUPS: u64 = 256;

/// Verified bytes gathered in memory before they are appended to the partial file (each append
/// is made durable, so fewer, larger ones keep a fast link fast); what a crash loses of them is
/// fetched again.
pub const FLUSH_BYTES: u64 = 1 << 20;

/// Most blobs fetched at once; the rest wait their turn.
pub const MAX_ACTIVE: usize = 4;

/// How long a peer that refused a blob (not held, busy) is not asked for it again.
pub const REFUSAL_COOLDOWN: Duration = Duration::from_secs(10);

/// What a blob transfer needs of the node's blob store.
pub trait BlobAccess {
    /// The size of a blob held whole under `hash`, if any.
    fn held_size(&self, hash: &[u8; 32]) -> Option<u64>;
    /// The bao encoding of `groups` of a held blob (from its data and outboard).
    fn encode(&mut self, hash: &[u8; 32], size: u64, groups: GroupRange)
        -> Result<Vec<u8>, String>;
    /// Verified bytes already in the partial file of the blob of `size` bytes (0 when none).
    fn partial_len(&self, hash: &[u8; 32], size: u64) -> u64;
    /// Appends verified bytes to the partial file at `offset` (its current verified length).
    fn append(
        &mut self,
        hash: &[u8; 32],
        size: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), String>;
    /// Moves a complete partial file under its hash, after checking it whole.
    fn commit(&mut self, hash: &[u8; 32], size: u64) -> Result<(), String>;
    /// Drops a partial file that cannot be resumed (it holds more than the blob).
    fn discard_partial(&mut self, hash: &[u8; 32]);
}

/// A peer broke the blob protocol: the service counts it against the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    /// The peer.
    pub peer: PeerId,
    /// What it did.
    pub error: TransferError,
}

/// Something for the actor to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutput {
    /// A range request to a peer.
    Send {
        /// The peer.
        peer: PeerId,
        /// Our number for it.
        id: RequestId,
        /// The request frame.
        bytes: Vec<u8>,
    },
    /// The answer to a peer's request.
    Respond {
        /// Its number.
        id: InboundId,
        /// The response frame.
        bytes: Vec<u8>,
    },
}

/// How one wanted blob ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Stored whole under its hash.
    Stored,
    /// Could not be stored (the store refused it, or the partial file is unusable).
    Failed(String),
}

/// Totals since start, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobCounters {
    /// Verified blob data bytes received.
    pub bytes_received: u64,
    /// Blob data and proof bytes sent in responses.
    pub bytes_sent: u64,
    /// Groups asked for (repeats included).
    pub groups_requested: u64,
    /// Responses refused for failing verification (or not decoding).
    pub bad_responses: u64,
    /// Blobs fetched and stored.
    pub completed: u64,
    /// Requests answered with data.
    pub requests_answered: u64,
    /// Requests answered `Busy` (the peer was over its share of our serving).
    pub busy_sent: u64,
    /// `Busy` answers received (that peer was then left alone for a while).
    pub busy_received: u64,
    /// Verified blob data bytes received, per peer that sent them (at most
    /// [`MAX_PEERS_COUNTED`] peers; the rest only in `bytes_received`).
    pub received_from: BTreeMap<PeerId, u64>,
}

/// Most peers `received_from` counts apart.
pub const MAX_PEERS_COUNTED: usize = 64;

struct Fetch {
    download: Download,
    /// Peers that refused or lied, until when they are not asked again for this blob.
    avoid: HashMap<PeerId, Instant>,
    /// Requests in flight per peer.
    asked: HashMap<PeerId, usize>,
}

/// A wanted blob waiting for a free slot, with the peers it was parked away from.
struct Queued {
    hash: [u8; 32],
    size: u64,
    avoid: HashMap<PeerId, Instant>,
}

struct Asked {
    hash: [u8; 32],
    peer: PeerId,
    groups: GroupRange,
}

/// Every blob transfer of the node: answers and fetches.
#[derive(Default)]
pub struct BlobTransfers {
    /// Blobs being fetched.
    active: BTreeMap<[u8; 32], Fetch>,
    /// Blobs wanted but not started (at most [`MAX_ACTIVE`] run at once), with their sizes.
    queued: VecDeque<Queued>,
    in_flight: HashMap<RequestId, Asked>,
    connected: Vec<PeerId>,
    /// Where the round-robin over peers starts next.
    turn: usize,
    next_id: u64,
    counters: BlobCounters,
    /// Test-only: flips a byte of every response sent (a lying peer for the tests).
    corrupt: bool,
    /// What each peer takes of our serving.
    load: ServeLoad,
    /// Our responses not yet sent whole, and who they go to.
    open: HashMap<InboundId, PeerId>,
    /// Peers that answered `Busy`, left alone for a while.
    busy: BusyPeers,
}

impl BlobTransfers {
    /// An idle engine; `corrupt` makes it a liar (for tests of the receiving side only).
    pub fn new(corrupt: bool) -> Self {
        Self {
            corrupt,
            ..Self::default()
        }
    }

    /// Serves peers under `limits` from now on.
    pub fn set_serve_limits(&mut self, limits: ServeLimits) {
        self.load = ServeLoad::new(limits);
    }

    /// Totals since start.
    pub fn counters(&self) -> &BlobCounters {
        &self.counters
    }

    /// Blobs wanted and not yet stored (fetching or queued).
    pub fn wanted(&self) -> usize {
        self.active.len() + self.queued.len()
    }

    /// Blobs being fetched now (the rest of the wanted wait their turn).
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether `hash` is being fetched or waits to be.
    pub fn is_wanted(&self, hash: &[u8; 32]) -> bool {
        self.active.contains_key(hash) || self.queued.iter().any(|q| q.hash == *hash)
    }

    /// A peer connected: it is asked for what is wanted.
    pub fn connected(&mut self, peer: PeerId) {
        if !self.connected.contains(&peer) {
            self.connected.push(peer);
        }
    }

    /// The peers connected now (those gone are no longer asked; order of the known is kept).
    pub fn set_connected(&mut self, peers: &[PeerId]) {
        self.connected.retain(|p| peers.contains(p));
        for peer in peers {
            self.connected(*peer);
        }
    }

    /// A peer's last connection closed: its requests fail (the actor reports each).
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.connected.retain(|p| p != peer);
        self.busy.forget(peer);
    }

    /// Every blob wanted and not yet stored, with its size.
    pub fn wanted_blobs(&self) -> Vec<([u8; 32], u64)> {
        self.active
            .iter()
            .map(|(hash, f)| (*hash, f.download.size()))
            .chain(self.queued.iter().map(|q| (q.hash, q.size)))
            .collect()
    }

    /// Wants the blob `hash` of `size` bytes (a no-op if it is held or already wanted).
    pub fn want(&mut self, store: &impl BlobAccess, hash: [u8; 32], size: u64) {
        if store.held_size(&hash).is_some() || self.is_wanted(&hash) {
            return;
        }
        self.queued.push_back(Queued {
            hash,
            size,
            avoid: HashMap::new(),
        });
    }

    /// Answers a peer's request from the store, or `Busy` when the peer is over its share
    /// (see [`ServeLimits`]); a response with data stays open until [`Self::response_done`].
    pub fn on_request(
        &mut self,
        store: &mut impl BlobAccess,
        peer: PeerId,
        id: InboundId,
        bytes: &[u8],
        now: Instant,
    ) -> (BlobOutput, Option<Offence>) {
        let (response, offence) = match decode_request(bytes) {
            Err(e) => (
                BlobResponse::Refused(BlobRefusal::TooLarge { max_groups: 0 }),
                Some(Offence {
                    peer,
                    error: TransferError::Malformed(e),
                }),
            ),
            Ok(_) if !self.load.admits(&peer, now) => {
                self.counters.busy_sent += 1;
                (BlobResponse::Refused(BlobRefusal::Busy), None)
            }
            Ok(request) => (self.answer(store, &request), None),
        };
        let bytes = encode_response(&response);
        if let BlobResponse::Data { encoded, .. } = &response {
            self.counters.requests_answered += 1;
            self.counters.bytes_sent += encoded.len() as u64;
            self.load.opened(peer, bytes.len() as u64, now);
            self.open.insert(id, peer);
        }
        (BlobOutput::Respond { id, bytes }, offence)
    }

    /// Our response `id` was sent whole, or failed: it no longer counts as open.
    pub fn response_done(&mut self, id: InboundId, now: Instant) {
        if let Some(peer) = self.open.remove(&id) {
            self.load.done(&peer, now);
        }
    }

    /// Our responses not yet sent whole.
    pub fn open_responses(&self) -> usize {
        self.open.len()
    }

    fn answer(&mut self, store: &mut impl BlobAccess, request: &BlobRequest) -> BlobResponse {
        let size = match validate_request(request, store.held_size(&request.hash)) {
            Ok(size) => size,
            Err(refusal) => return BlobResponse::Refused(refusal),
        };
        match store.encode(&request.hash, size, request.groups) {
            Ok(mut encoded) => {
                if self.corrupt {
                    if let Some(last) = encoded.last_mut() {
                        *last ^= 0x55;
                    }
                }
                BlobResponse::Data {
                    size,
                    groups: request.groups,
                    encoded,
                }
            }
            // Damaged on disk (or unreadable): refused rather than sent.
            Err(e) => {
                tracing::warn!("cannot serve blob {}: {e}", hex::encode(request.hash));
                BlobResponse::Refused(BlobRefusal::NotHeld)
            }
        }
    }

    /// Takes the response to one of our requests.
    pub fn on_response(
        &mut self,
        store: &mut impl BlobAccess,
        id: RequestId,
        bytes: &[u8],
        now: Instant,
    ) -> (Option<Offence>, Vec<([u8; 32], Finished)>) {
        let Some(asked) = self.in_flight.remove(&id) else {
            return (None, Vec::new());
        };
        let Some(fetch) = self.active.get_mut(&asked.hash) else {
            return (None, Vec::new());
        };
        release(fetch, &asked.peer);
        let result = match decode_response(bytes) {
            Ok(response) => fetch.download.accept(asked.groups, response),
            Err(e) => {
                fetch.download.failed(asked.groups);
                Err(TransferError::Malformed(e))
            }
        };
        let mut offence = None;
        match result {
            Ok(groups) => {
                self.busy.served(&asked.peer);
                let got = GroupRange::new(asked.groups.start, asked.groups.start + groups)
                    .bytes(fetch.download.size());
                let counted = self.counters.received_from.len() < MAX_PEERS_COUNTED
                    || self.counters.received_from.contains_key(&asked.peer);
                if counted && got.end > got.start {
                    *self
                        .counters
                        .received_from
                        .entry(asked.peer)
                        .or_default() += got.end - got.start;
                }
            }
            Err(TransferError::Refused(BlobRefusal::Busy)) => {
                // The peer is over its share of serving: leave it alone, for every blob, and
                // let the other holders take the ranges.
                tracing::debug!("{} is busy", asked.peer);
                self.counters.busy_received += 1;
                self.busy.busy(asked.peer, now);
            }
            Err(TransferError::Refused(refusal)) => {
                tracing::debug!(
                    "{} refused blob {}: {refusal}",
                    asked.peer,
                    hex::encode(asked.hash)
                );
                fetch.avoid.insert(asked.peer, now + REFUSAL_COOLDOWN);
            }
            Err(error) => {
                tracing::warn!(
                    "blob {} from {}: {error}",
                    hex::encode(asked.hash),
                    asked.peer
                );
                if error.is_offence() {
                    self.counters.bad_responses += 1;
                    offence = Some(Offence {
                        peer: asked.peer,
                        error,
                    });
                } else {
                    fetch.avoid.insert(asked.peer, now + REFUSAL_COOLDOWN);
                }
            }
        }
        let finished = self
            .write_ready(store, asked.hash, false)
            .map(|done| (asked.hash, done))
            .into_iter()
            .collect();
        (offence, finished)
    }

    /// One of our requests failed (timeout, link cut): its range is asked again, and what is
    /// verified so far is written out (the node may be going down with its link).
    pub fn on_failure(&mut self, store: &mut impl BlobAccess, id: RequestId) -> Option<Finished> {
        let asked = self.in_flight.remove(&id)?;
        let fetch = self.active.get_mut(&asked.hash)?;
        release(fetch, &asked.peer);
        fetch.download.failed(asked.groups);
        self.write_ready(store, asked.hash, true)
    }

    /// Writes what a download verified in order, and commits it when whole.
    /// Without `force`, waits until [`FLUSH_BYTES`] are ready or the blob is whole.
    fn write_ready(
        &mut self,
        store: &mut impl BlobAccess,
        hash: [u8; 32],
        force: bool,
    ) -> Option<Finished> {
        let fetch = self.active.get_mut(&hash)?;
        let ready = fetch.download.ready_len();
        let whole = fetch.download.written() + ready == fetch.download.size();
        if ready < FLUSH_BYTES && !whole && !force {
            return None;
        }
        let before = fetch.download.written();
        let size = fetch.download.size();
        let bytes = fetch.download.take_ready();
        self.counters.bytes_received += bytes.len() as u64;
        if !bytes.is_empty() {
            if let Err(e) = store.append(&hash, size, before, &bytes) {
                self.active.remove(&hash);
                return Some(Finished::Failed(e));
            }
        }
        if !fetch.download.is_complete() {
            return None;
        }
        self.active.remove(&hash);
        self.in_flight.retain(|_, a| a.hash != hash);
        match store.commit(&hash, size) {
            Ok(()) => {
                self.counters.completed += 1;
                Some(Finished::Stored)
            }
            Err(e) => {
                // A partial file that checked but does not hash whole: start over.
                store.discard_partial(&hash);
                Some(Finished::Failed(e))
            }
        }
    }

    /// Starts queued blobs, and sends every request the peers have room for.
    pub fn pump(
        &mut self,
        store: &mut impl BlobAccess,
        now: Instant,
    ) -> (Vec<BlobOutput>, Vec<([u8; 32], Finished)>) {
        let mut finished = Vec::new();
        self.park_stuck(store, now, &mut finished);
        // Each queued blob is looked at once per pump: parked ones go round, not in circles.
        let mut turns = self.queued.len();
        while self.active.len() < MAX_ACTIVE && turns > 0 {
            turns -= 1;
            let Some(Queued { hash, size, avoid }) = self.queued.pop_front() else {
                break;
            };
            if store.held_size(&hash).is_some() {
                finished.push((hash, Finished::Stored));
                continue;
            }
            let held = store.partial_len(&hash, size);
            let download = match Download::new(hash.into(), size, held, WINDOW_GROUPS) {
                Ok(download) => download,
                Err(DownloadError::HeldPastEnd { .. }) => {
                    store.discard_partial(&hash);
                    match Download::new(hash.into(), size, 0, WINDOW_GROUPS) {
                        Ok(download) => download,
                        Err(e) => {
                            finished.push((hash, Finished::Failed(e.to_string())));
                            continue;
                        }
                    }
                }
                Err(e) => {
                    finished.push((hash, Finished::Failed(e.to_string())));
                    continue;
                }
            };
            self.active.insert(
                hash,
                Fetch {
                    download,
                    avoid,
                    asked: HashMap::new(),
                },
            );
            // An empty blob, or a partial file that was already whole.
            if let Some(done) = self.write_ready(store, hash, false) {
                finished.push((hash, done));
            }
        }

        let mut out = Vec::new();
        if self.connected.is_empty() {
            return (out, finished);
        }
        let peers = self.connected.len();
        let hashes: Vec<[u8; 32]> = self.active.keys().copied().collect();
        for hash in hashes {
            // Round-robin: one request per willing peer per pass, until nobody takes more.
            loop {
                let mut sent = false;
                for step in 0..peers {
                    let peer = self.connected[(self.turn + step) % peers];
                    let Some(fetch) = self.active.get_mut(&hash) else {
                        break;
                    };
                    fetch.avoid.retain(|_, until| *until > now);
                    if self.busy.is_busy(&peer, now)
                        || fetch.avoid.contains_key(&peer)
                        || fetch.asked.get(&peer).copied().unwrap_or(0) >= PER_PEER_IN_FLIGHT
                    {
                        continue;
                    }
                    let Some(groups) = fetch.download.next_request(GROUPS_PER_REQUEST) else {
                        break;
                    };
                    *fetch.asked.entry(peer).or_default() += 1;
                    self.next_id += 1;
                    let id = RequestId(u64::MAX - self.next_id);
                    self.counters.groups_requested += groups.len();
                    self.in_flight.insert(id, Asked { hash, peer, groups });
                    let bytes = hedgerow_protocol::blob_transfer::encode_request(&BlobRequest {
                        hash,
                        groups,
                    });
                    out.push(BlobOutput::Send { peer, id, bytes });
                    sent = true;
                }
                if !sent {
                    break;
                }
            }
            self.turn = self.turn.wrapping_add(1);
        }
        (out, finished)
    }

    /// Moves downloads that no connected peer will serve now (each refused it, nothing in
    /// flight) to the back of the queue, so blobs waiting behind them get their turn; what
    /// they verified is written first, and they resume from it when their turn comes again.
    fn park_stuck(
        &mut self,
        store: &mut impl BlobAccess,
        now: Instant,
        finished: &mut Vec<([u8; 32], Finished)>,
    ) {
        if self.queued.is_empty() || self.connected.is_empty() {
            return;
        }
        let connected = &self.connected;
        let busy = &self.busy;
        let stuck: Vec<[u8; 32]> = self
            .active
            .iter()
            .filter(|(_, f)| {
                f.asked.values().all(|n| *n == 0)
                    && connected.iter().all(|p| {
                        busy.is_busy(p, now) || f.avoid.get(p).is_some_and(|until| *until > now)
                    })
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in stuck {
            if let Some(done) = self.write_ready(store, hash, true) {
                finished.push((hash, done));
                continue;
            }
            if let Some(fetch) = self.active.remove(&hash) {
                self.queued.push_back(Queued {
                    hash,
                    size: fetch.download.size(),
                    avoid: fetch.avoid,
                });
            }
        }
    }

    /// The peer a request of ours went to.
    pub fn peer_of(&self, id: &RequestId) -> Option<PeerId> {
        self.in_flight.get(id).map(|a| a.peer)
    }

    /// The blob a request of ours asked for.
    pub fn hash_of(&self, id: &RequestId) -> Option<[u8; 32]> {
        self.in_flight.get(id).map(|a| a.hash)
    }

    /// Bytes of wanted blobs still to come, and bytes already in their partial files.
    pub fn progress(&self) -> (u64, u64) {
        let mut missing = 0;
        let mut held = 0;
        for fetch in self.active.values() {
            missing += fetch.download.size() - fetch.download.written();
            held += fetch.download.written();
        }
        missing += self.queued.iter().map(|q| q.size).sum::<u64>();
        (missing, held)
    }
}

/// One request of `peer` for this fetch is no longer in flight.
fn release(fetch: &mut Fetch, peer: &PeerId) {
    if let Some(n) = fetch.asked.get_mut(peer) {
        *n = n.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests;
