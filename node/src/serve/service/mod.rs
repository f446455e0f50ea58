//! The running node's decisions, with no I/O: a state machine that turns [`Input`]s (a
//! connection, a sync request or response, a gossip message, a timer, a command) into
//! [`Output`]s (send, respond, publish, dial, disconnect, wake at, reply).
//!
//! It keeps one [`Peer`] per peer and one [`Pull`] per (peer, commons), takes the time as
//! an argument and reads and writes the node's own state through [`LocalState`], so every
//! rule below is tested without a socket (see `sim.rs`). The actor (`actor.rs`) carries the
//! outputs to the libp2p swarm and feeds its events back in.
//!
//! On bad links: each peer's response budget follows its link ([`LinkEstimate`]); a pull cut
//! off by a dropped connection or a stalled request is kept and resumes from its queue on the
//! next connection (bootstrap peers, and the peer of a waiting `hedgerow sync`, are redialled
//! with backoff) or after [`RETRY_DELAY`] on a connection that stayed up; our pull from a peer
//! that is catching up from us waits until it is done ([`FETCH_QUIET`]); and a connection
//! whose peer stays silent past [`SILENT_LIMIT`] is closed so it can be redialled, while a
//! slow transfer that keeps making progress never is.

use super::link::LinkEstimate;
use super::local::LocalState;
use super::peers::{PeerBook, Penalty};
use super::stats::{Counters, ItemRefusal, Refusal, SyncReport};
use crate::api::{Reply as StoreReply, Request};
use crate::net::{commons_topic, ByteCounters};
use crate::replicas::{LiveOutcome, NodeError};
use crate::store::KnownPeer;
pub use blob_io::BLOB_WAIT;
pub use discovery::{
    routable_addrs, DhtInput, DhtOutput, DhtStatus, Found, KnownPeerRow, LookupRow, PeersReply,
    ProvidingRow, RecordRow,
};
use hedgerow_protocol::replica::Rejection;
use hedgerow_protocol::sync::{
    commons_digest, id_prefix, respond, validate_request, ClockWants, DocPayload, DocPayloadV3,
    Gossip, IdPrefix, PullSession, PullStep, SyncRequest, SyncResponse, MAX_LIVE_CHANGE_BYTES,
    SKETCH_THRESHOLD,
};
use hedgerow_protocol::sync_compact::ExpandError;
use hedgerow_protocol::{CommonsGenesis, CommonsId, Signed};
pub use io::{
    BlobsReply, Command, Failure, InboundId, Input, Output, Reply, RequestId, SyncOrder, Token,
};
use libp2p::gossipsub::{MessageAcceptance, TopicHash};
use libp2p::swarm::ConnectionId;
use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
pub use window::{DeferredPull, MeteringStatus, BULK_DOCS};

mod answering;
mod blob_io;
mod commands;
mod connections;
pub(crate) mod discovery;
mod gossip;
mod io;
mod private;
mod pulls;
mod reach;
mod timers;
mod window;

pub use reach::{Nat, ReservationEvent, Route};

/// Wait before re-running a pull whose request failed while the connection stayed up.
pub const RETRY_DELAY: Duration = Duration::from_secs(3);

/// A peer that fetched from us this recently is catching up: our own pull from it waits.
///
/// While a farm catches up from a hub over a slow link, the hub's pull of the farm would
/// fetch the farm's inventory (16 bytes a document) on every reconnection and every resync
/// only to find nothing new; it runs once the farm has been quiet for this long, or as soon
/// as the farm sends a `Hello` (a pull starting or confirming its end), instead.
pub const FETCH_QUIET: Duration = Duration::from_secs(3);

/// Longest a pull of a large commons waits for identify to say the peer's sync version (it
/// usually comes a round trip after the connection, later on a loaded or slow link): past it
/// the pull opens as to an older release. Every Hedgerow node runs identify, so only a peer
/// whose identify failed waits this long.
pub const VERSION_WAIT: Duration = Duration::from_secs(5);

/// How long a peer counts as "catching up from us" after its last fetch, across a reconnection.
pub const CATCHING_UP: Duration = Duration::from_secs(60);

/// How long an interrupted pull is kept for resuming before it is forgotten.
pub const INTERRUPTED_TTL: Duration = Duration::from_secs(3600);

/// How long a peer may be silent (no pong, no sync message, no sync bytes) before a failed
/// ping closes its connection, so that a dead link is redialled instead of waited on.
pub const SILENT_LIMIT: Duration = Duration::from_secs(90);

/// Most peers whose link estimate and last fetch are remembered after they disconnect.
pub const MAX_REMEMBERED_PEERS: usize = 1024;

/// Most interrupted pulls kept for resuming; the oldest go first.
pub const MAX_INTERRUPTED: usize = 64;

/// Most live changes still waiting for their history that one peer may have sent since its
/// last completed pull; past it the peer's live changes wait for that pull instead.
pub const MAX_PENDING_PER_PEER: u32 = 128;

/// How often the saved snapshot caches that lag their documents' records are brought up to date.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(10);

/// Longest a one-shot sync waits for its pulls before it reports what it has, by default
/// (`hedgerow sync --deadline`).
pub const SYNC_DEADLINE: Duration = Duration::from_secs(600);

/// Longest a one-shot sync waits for its first connection by default (`hedgerow sync
/// --connect-timeout`): the dial and handshakes of a slow link, as [`crate::net::NetConfig`]
/// allows them.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What is known of one peer: while it is connected, and (bounded) after.
#[derive(Debug, Default)]
struct Peer {
    /// The address it is connected at; `None` while disconnected.
    addr: Option<Multiaddr>,
    /// Its response budget, kept across reconnections.
    link: LinkEstimate,
    /// When it last fetched documents from us.
    fetched_at: Option<Instant>,
    /// Last sign of life, and the sync byte total seen then.
    heard: Option<(Instant, u64)>,
    /// When and how our last pull from it ended.
    last_sync: Option<(i64, String)>,
    /// What our pulls with it did, for `hedgerow sync`.
    report: Option<SyncReport>,
    /// Live changes it sent that wait for missing history, since its last pull.
    pending: u32,
    /// It speaks `/hedgerow/sync/2` (said by identify): our fetches to it may be larger.
    sync_v2: bool,
    /// It speaks `/hedgerow/sync/3` (said by identify), as this node does: our fetches to it
    /// take that version's compact forms.
    sync_v3: bool,
    /// It speaks `/hedgerow/sync/4` (said by identify), as this node does: our pulls open
    /// with a `HelloV4`.
    sync_v4: bool,
    /// Identify has said which sync versions it speaks, or a pull stopped waiting for it.
    identified: bool,
}

/// The life of one pull of one commons from one peer.
#[derive(Debug)]
enum Pull {
    /// A request is in flight.
    Running(PullSession),
    /// Cut off by a failure; resumes from its queue on the next connection, or at `retry`
    /// while the connection stays up.
    Interrupted {
        session: PullSession,
        since: Instant,
        retry: Option<Instant>,
    },
    /// Held back while the peer fetches from us (see [`FETCH_QUIET`]); it may hold an
    /// interrupted session to resume.
    Postponed(Option<(PullSession, Instant)>),
    /// Finished with more listed than one pull queues: runs again at this time.
    Again(Instant),
    /// Bulk, outside the sync window: its queue waits for the window to open.
    Deferred(PullSession),
    /// Of a large commons, from a peer whose sync version identify has not said yet: starts
    /// when it does (a peer of `/hedgerow/sync/4` is sent a `HelloV4`), or at this time.
    AwaitingVersion(Instant),
}

impl Pull {
    /// Whether a `hedgerow sync` waits for it.
    fn unfinished(&self) -> bool {
        !matches!(self, Pull::Again(_) | Pull::Deferred(_))
    }

    /// The session kept for resuming, if any.
    fn kept(&self) -> Option<&PullSession> {
        match self {
            Pull::Interrupted { session, .. } | Pull::Postponed(Some((session, _))) => {
                Some(session)
            }
            _ => None,
        }
    }
}

/// A request we sent, until its response or failure.
#[derive(Debug)]
struct InFlight {
    peer: PeerId,
    commons: CommonsId,
    /// The byte budget a `Fetch` asked for.
    budget: Option<u32>,
    /// The documents a `Fetch` named: a response may carry only these.
    asked: HashSet<IdPrefix>,
    /// Whether it is our membership proof (its answer releases the held request).
    proof: bool,
}

/// Someone waiting for all pulls with a peer to finish (`hedgerow sync`).
#[derive(Debug)]
struct Waiter {
    token: Token,
    peer: Option<PeerId>,
    addr: Multiaddr,
    started: bool,
    deadline: Instant,
    /// Until when the first connection may take.
    connect_by: Instant,
    /// How long that is, for the message.
    connect_timeout: Duration,
    /// Why the last dial of its address failed, while it never connected.
    dial_failed: Option<String>,
    /// Sync bytes (sent, received) when the wait began, so the report counts this sync only.
    bytes_at_start: (u64, u64),
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// This node's peer id.
    pub local_peer: PeerId,
    /// How often to re-run catch-up sync with connected peers.
    pub sync_interval: Duration,
}

/// The node's protocol state: everything but the sockets.
pub struct Service<L> {
    config: ServiceConfig,
    local: L,
    bytes: ByteCounters,
    /// Dial targets, bans, rate limits, per-address connection counts.
    pub(crate) peers: PeerBook,
    counters: Counters,
    peer: HashMap<PeerId, Peer>,
    pulls: HashMap<(PeerId, CommonsId), Pull>,
    in_flight: HashMap<RequestId, InFlight>,
    next_request: u64,
    waiters: Vec<Waiter>,
    /// Commons whose topic we joined, and whether it is the hashed (private) one.
    subscribed: HashMap<CommonsId, bool>,
    /// Membership proofs peers gave on their connections, by commons.
    proven: HashMap<PeerId, HashMap<CommonsId, hedgerow_protocol::private::MembershipProof>>,
    /// Connections on which our own proof for a commons was taken.
    proven_to: HashSet<(PeerId, CommonsId)>,
    /// Requests waiting for the answer to our proof.
    held_requests: HashMap<(PeerId, CommonsId), SyncRequest>,
    /// Pulls run again after a `not-a-member` refusal, per connection.
    proof_retries: HashMap<(PeerId, CommonsId), u32>,
    /// Private commons each connected peer joined the hashed topic of (its candidates to pull).
    private_peers: HashMap<PeerId, HashSet<CommonsId>>,
    /// Commons asked for with `commons join` and not yet received.
    wanted: HashSet<CommonsId>,
    /// The remote IP address of each connection counted against its address's limit.
    counted: HashMap<ConnectionId, std::net::IpAddr>,
    /// Commons that received changes by sync, with the peers they came from: announced when
    /// their pulls finish if another peer is connected, so neighbours that did not take part
    /// pull them too (store and forward along a chain).
    news: HashMap<CommonsId, HashSet<PeerId>>,
    listen: Vec<Multiaddr>,
    /// Blob transfers: answers to peers and fetches of wanted blobs.
    blobs: crate::serve::blobs::BlobTransfers,
    /// Callers of `FetchBlobs` waiting for their blobs.
    blob_waiters: Vec<blob_io::BlobWaiter>,
    /// When the node's policy is next asked which blobs it wants (`None`: nothing changed).
    next_blob_refresh: Option<Instant>,
    /// When it was last asked.
    last_blob_refresh: Option<Instant>,
    /// Which commons refer to each blob, for serving blobs of hidden commons only to their
    /// proven members; `None` until needed, or after documents changed.
    blob_commons: Option<HashMap<[u8; 32], Vec<CommonsId>>>,
    /// Blobs refused because fetching them would take a commons past its quota, with why
    /// (at most [`blob_io::MAX_OVER_QUOTA_SHOWN`]).
    over_quota: BTreeMap<[u8; 32], String>,
    /// How each connection reaches its peer, AutoNAT's verdict, relay reservations.
    reach: reach::Reach,
    /// `--max-rate` and `--sync-window`: what the link may carry and when bulk sync runs.
    metering: window::Metering,
    /// Announcing held commons in the DHT, looking wanted ones up, and the known peers.
    pub(crate) discovery: discovery::Discovery,
    next_resync: Instant,
    next_snapshot: Instant,
    now: Instant,
    out: Vec<Output>,
}

impl<L: LocalState> Service<L> {
    /// A service over `local`, starting at `now`; it wants what `local` records as wanted.
    pub fn new(
        config: ServiceConfig,
        local: L,
        bytes: ByteCounters,
        peers: PeerBook,
        now: Instant,
    ) -> Result<Self, NodeError> {
        let wanted = local.wanted()?.into_iter().collect();
        Ok(Self {
            next_resync: now + config.sync_interval,
            next_snapshot: now + SNAPSHOT_INTERVAL,
            config,
            local,
            bytes,
            peers,
            counters: Counters::default(),
            peer: HashMap::new(),
            pulls: HashMap::new(),
            in_flight: HashMap::new(),
            next_request: 0,
            waiters: Vec::new(),
            subscribed: HashMap::new(),
            proven: HashMap::new(),
            proven_to: HashSet::new(),
            held_requests: HashMap::new(),
            proof_retries: HashMap::new(),
            private_peers: HashMap::new(),
            wanted,
            counted: HashMap::new(),
            news: HashMap::new(),
            listen: Vec::new(),
            blobs: crate::serve::blobs::BlobTransfers::new(false),
            blob_waiters: Vec::new(),
            next_blob_refresh: Some(now),
            last_blob_refresh: None,
            blob_commons: None,
            over_quota: BTreeMap::new(),
            reach: reach::Reach::default(),
            metering: window::Metering::default(),
            discovery: discovery::Discovery::default(),
            now,
            out: Vec::new(),
        })
    }

    /// Tells `status` that this node serves as a relay for others (`serve --relay`).
    pub fn set_relay_server(&mut self, on: bool) {
        self.reach.relay_server = on;
    }

    /// Test-only: makes this node answer blob requests with a damaged byte (a lying peer).
    pub fn lie_about_blobs(&mut self) {
        self.blobs = crate::serve::blobs::BlobTransfers::new(true);
    }

    /// Serves blobs to each peer under `limits` (beyond them it hears `Busy`).
    pub fn set_blob_serve_limits(&mut self, limits: crate::serve::blobs::ServeLimits) {
        self.blobs.set_serve_limits(limits);
    }

    /// The blob transfers, for `status`.
    pub fn blob_transfers(&self) -> &crate::serve::blobs::BlobTransfers {
        &self.blobs
    }

    /// The node's own state.
    pub fn local(&self) -> &L {
        &self.local
    }

    /// The node's own state, to save on shutdown.
    pub fn local_mut(&mut self) -> &mut L {
        &mut self.local
    }

    /// Totals since start.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connected peer count.
    pub fn connected_count(&self) -> usize {
        self.peer.values().filter(|p| p.addr.is_some()).count()
    }

    /// Whether `peer` is connected.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peer.get(peer).is_some_and(|p| p.addr.is_some())
    }

    /// Counts a gossip message the actor got out (see [`Output::Publish`]).
    pub fn published(&mut self, live: bool) {
        if live {
            self.counters.live_published += 1;
        }
    }

    /// Subscribes to every held or wanted commons; call once
    /// before the first input.
    pub fn start(&mut self, now: Instant) -> Vec<Output> {
        self.now = now;
        self.subscribe_all();
        self.finish()
    }

    /// Decides on one input at `now`; the outputs end with the next [`Output::WakeAt`].
    ///
    /// Changes made locally go out with the step that made them (a command, a join).
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Listening(addr) => {
                tracing::info!("listening on {addr}");
                self.reach_listening(&addr);
                self.listen.push(addr);
            }
            Input::ListenClosed(addr) => {
                self.reach_listen_closed(&addr);
                self.listen.retain(|a| *a != addr);
            }
            Input::Connected {
                peer,
                connection,
                addr,
                dialer,
                dialed,
            } => {
                if !dialer {
                    self.discovery
                        .found(peer, discovery::Found::Incoming, Some(&addr), now);
                }
                self.on_connected(peer, connection, addr, dialer, dialed)
            }
            Input::Closed {
                peer,
                connection,
                remaining,
            } => self.on_closed(peer, connection, remaining),
            Input::DialFailed(addr, reason) => self.on_dial_failed(addr, reason),
            Input::Request { peer, id, bytes } => self.on_request(peer, id, &bytes),
            Input::Response {
                id,
                bytes,
                elapsed,
                transfer,
            } => {
                if let Some(flight) = self.in_flight.remove(&id) {
                    self.on_response(flight, &bytes, elapsed, transfer);
                }
            }
            Input::Failure {
                id,
                connection,
                failure,
            } => self.on_failure(id, connection, failure),
            Input::Gossip {
                source,
                id,
                topic,
                data,
            } => {
                let acceptance = self.on_gossip(source, &topic, &data);
                self.out.push(Output::Validate {
                    id,
                    source,
                    acceptance,
                });
            }
            Input::Subscribed { peer, topic } => self.on_peer_subscribed(peer, &topic),
            Input::Discovered(found) => {
                for (peer, addr) in &found {
                    self.discovery
                        .found(*peer, discovery::Found::Mdns, Some(addr), now);
                }
                self.on_discovered(found)
            }
            Input::Dht(input) => self.on_dht(input),
            Input::Expired(gone) => self.on_expired(gone),
            Input::SyncVersion { peer, v2, v3, v4 } => {
                let state = self.peer.entry(peer).or_default();
                state.sync_v2 = v2;
                state.sync_v3 = v3;
                state.sync_v4 = v4;
                state.identified = true;
                for ((of, _), pull) in self.pulls.iter_mut() {
                    if let (true, Pull::Running(session)) = (*of == peer, pull) {
                        session.set_v2_peer(v2);
                        session.set_v4_peer(v4);
                    }
                }
                self.start_pulls_awaiting_version(peer);
            }
            Input::Ping {
                peer,
                connection,
                ok,
            } => self.on_ping(peer, connection, ok),
            Input::BlobRequest { peer, id, bytes } => self.on_blob_request(peer, id, &bytes),
            Input::BlobResponse { id, bytes } => self.on_blob_response(id, &bytes),
            Input::BlobFailure { id, offence } => self.on_blob_failure(id, offence),
            Input::BlobResponseDone { id } => self.blobs.response_done(id, self.now),
            Input::Relayed {
                peer,
                connection,
                via,
            } => self.on_relayed(peer, connection, via),
            Input::Identified { peer, relay } => self.on_identified(peer, relay),
            Input::Nat(nat) => self.on_nat(nat),
            Input::HolePunch { peer, result } => self.on_hole_punch(peer, result),
            Input::Reservation { relay, event } => self.on_reservation(relay, event),
            Input::Timer => self.on_timer(),
            Input::Command(token, command) => self.on_command(token, command),
        }
        self.finish()
    }

    /// Ends a step: what changed locally goes out, and the next wake-up is asked for.
    fn finish(&mut self) -> Vec<Output> {
        self.refresh_wanted_blobs();
        self.pump_blobs();
        self.complete_blob_waiters();
        self.dht_step();
        let mut wake = self.next_wake().min(
            self.next_blob_wake()
                .max(self.now + Duration::from_millis(1)),
        );
        if let Some(due) = self.discovery.next_due() {
            wake = wake.min(due.max(self.now + Duration::from_millis(1)));
        }
        self.out.push(Output::WakeAt(wake));
        std::mem::take(&mut self.out)
    }

    /// The earliest time something is due.
    fn next_wake(&self) -> Instant {
        let mut at = self.next_resync.min(self.next_snapshot);
        let connected = self.connected_now();
        if let Some(due) = self.peers.next_due(|addr| connected.covers(addr)) {
            at = at.min(due);
        }
        for ((peer, _), pull) in &self.pulls {
            let due = match pull {
                Pull::Interrupted {
                    retry: Some(retry), ..
                } => Some(*retry),
                Pull::Interrupted { since, .. } => Some(*since + INTERRUPTED_TTL),
                Pull::Again(again) => Some(*again),
                Pull::Postponed(_) => Some(
                    self.peer
                        .get(peer)
                        .and_then(|p| p.fetched_at)
                        .map_or(self.now, |f| f + FETCH_QUIET),
                ),
                Pull::Running(_) => None,
                Pull::Deferred(_) => self.window_opens_at(),
                Pull::AwaitingVersion(at) => Some(*at),
            };
            if let Some(due) = due {
                at = at.min(due);
            }
        }
        for waiter in &self.waiters {
            at = at.min(waiter.deadline);
            if !waiter.started {
                at = at.min(waiter.connect_by);
            }
        }
        // Never in the past: whatever was due has just been done.
        at.max(self.now + Duration::from_millis(1))
    }

    /// Subscribes to the gossip topic of every commons held or wanted; a wanted commons' topic
    /// tells which peers have it (see [`Self::on_peer_subscribed`]).
    fn subscribe_all(&mut self) {
        // What is held may have changed: the DHT announcements follow at the step's end.
        self.discovery.dirty = true;
        let held: Vec<CommonsId> = self.local.commons().into_iter().map(|(id, _)| id).collect();
        let wanted: Vec<CommonsId> = self.wanted.iter().copied().collect();
        for commons in held.into_iter().chain(wanted) {
            let (topic, hides) = self.topic_of(&commons);
            match self.subscribed.insert(commons, hides) {
                Some(before) if before == hides => continue,
                // Its privacy became known: the old topic is left.
                Some(before) => self
                    .out
                    .push(Output::Unsubscribe(crate::net::topic_for(&commons, before))),
                None => {}
            }
            self.out.push(Output::Subscribe { commons, topic });
        }
    }

    fn connected_peers(&self) -> Vec<PeerId> {
        self.peer
            .iter()
            .filter(|(_, p)| p.addr.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn report(&mut self, peer: PeerId) -> &mut SyncReport {
        self.peer
            .entry(peer)
            .or_default()
            .report
            .get_or_insert_with(SyncReport::default)
    }
}

/// The IP address a multiaddress reaches, if it names one.
///
/// A relayed connection has none of its own: the address in it is the hub's, shared by every
/// peer the hub relays, so neither per-address limits nor address bans apply to it (its peer
/// id is still counted and banned).
fn ip_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    if crate::net::reach::is_relayed(addr) {
        return None;
    }
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip.into()),
        Protocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

/// The address without its `/p2p/...` suffix, for comparing dial targets with endpoints.
pub fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}
