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
use crate::api::Request;
use crate::control::ControlReply;
use crate::net::{commons_topic, ByteCounters};
use crate::replicas::{LiveOutcome, NodeError};
use crate::store::KnownPeer;
use hedgerow_protocol::replica::Rejection;
use hedgerow_protocol::sync::{
    commons_digest, id_prefix, respond, validate_request, Gossip, HeadsDigest, IdPrefix,
    PullSession, PullStep, SyncRequest, SyncResponse, MAX_LIVE_CHANGE_BYTES,
};
use hedgerow_protocol::CommonsId;
use libp2p::gossipsub::{MessageAcceptance, MessageId, TopicHash};
use libp2p::swarm::ConnectionId;
use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Wait before re-running a pull whose request failed while the connection stayed up.
pub const RETRY_DELAY: Duration = Duration::from_secs(3);

/// A peer that fetched from us this recently is catching up: our own pull from it waits.
///
/// While a farm catches up from a hub over a slow link, the hub's pull of the farm would
/// fetch the farm's inventory (16 bytes a document) on every reconnection and every resync
/// only to find nothing new; it runs once the farm has been quiet for this long, or as soon
/// as the farm sends a `Hello` (a pull starting or confirming its end), instead.
pub const FETCH_QUIET: Duration = Duration::from_secs(3);

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

/// Longest a one-shot sync waits for its pulls before it reports what it has.
pub const SYNC_DEADLINE: Duration = Duration::from_secs(600);

/// Our own number for a sync request we sent (the actor maps libp2p's to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Our own number for a sync request a peer sent us, to answer it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundId(pub u64);

/// Who waits for a [`Output::Reply`]: the actor's number for the caller.
pub type Token = u64;

/// How a sync request we sent failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The peer does not speak the sync protocol: the pull ends.
    Unsupported(String),
    /// The exchange stalled or broke mid-frame: the connection is closed and the pull resumes
    /// on a fresh one. `offence` names a frame the peer got wrong.
    Stalled {
        /// The bad frame from the peer, if that was the cause.
        offence: Option<Refusal>,
        /// What happened, for the log and `status`.
        why: String,
    },
    /// The connection went away (or never came): the pull resumes on the next one.
    Lost(String),
}

/// A command from the control channel.
#[derive(Debug)]
pub enum Command {
    /// Runs a store or node request and replies with its result.
    Control(Request),
    /// Pulls everything from the peer at this address and replies when done.
    Sync(Multiaddr),
}

/// An answer to a [`Command`].
#[derive(Debug)]
pub enum Reply {
    /// The result of [`Command::Control`].
    Control(ControlReply),
    /// The result of [`Command::Sync`].
    Sync(SyncReport),
}

/// Something that happened, for the service to decide on.
#[derive(Debug)]
pub enum Input {
    /// The node listens on an address.
    Listening(Multiaddr),
    /// The node stopped listening on an address.
    ListenClosed(Multiaddr),
    /// A connection came up.
    Connected {
        /// The peer.
        peer: PeerId,
        /// The connection.
        connection: ConnectionId,
        /// The peer's address on this connection.
        addr: Multiaddr,
        /// Whether we dialed it.
        dialer: bool,
        /// The dial target ([`Output::Dial`]) it answers, if any.
        dialed: Option<Multiaddr>,
    },
    /// A connection closed.
    Closed {
        /// The peer.
        peer: PeerId,
        /// The connection.
        connection: ConnectionId,
        /// Connections to the peer still open.
        remaining: u32,
    },
    /// A dial ([`Output::Dial`]) failed.
    DialFailed(Multiaddr),
    /// A peer sent a sync request; answer with [`Output::Respond`].
    Request {
        /// The peer.
        peer: PeerId,
        /// Our number for it.
        id: InboundId,
        /// The request frame.
        bytes: Vec<u8>,
    },
    /// The response to a request we sent.
    Response {
        /// The request it answers.
        id: RequestId,
        /// The response frame.
        bytes: Vec<u8>,
    },
    /// A request we sent failed.
    Failure {
        /// The request.
        id: RequestId,
        /// The connection it used, if known.
        connection: Option<ConnectionId>,
        /// How.
        failure: Failure,
    },
    /// A gossip message arrived; judge it with [`Output::Validate`].
    Gossip {
        /// The peer that forwarded it.
        source: PeerId,
        /// Its id, to judge it by.
        id: MessageId,
        /// The topic it came on.
        topic: TopicHash,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// A peer joined a gossip topic.
    Subscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: TopicHash,
    },
    /// Peers found on the local link.
    Discovered(Vec<(PeerId, Multiaddr)>),
    /// A ping came back (`true`) or failed.
    Ping {
        /// The peer.
        peer: PeerId,
        /// The connection pinged.
        connection: ConnectionId,
        /// Whether the pong came.
        ok: bool,
    },
    /// A time asked for by [`Output::WakeAt`] has come.
    Timer,
    /// A command from the control channel, answered by [`Output::Reply`] with the same token.
    Command(Token, Command),
}

/// Something the service asks the actor to do.
#[derive(Debug)]
pub enum Output {
    /// Sends a sync request.
    Send {
        /// The peer.
        peer: PeerId,
        /// Our number for it, which its [`Input::Response`] or [`Input::Failure`] carries.
        id: RequestId,
        /// The request frame.
        bytes: Vec<u8>,
    },
    /// Answers a sync request.
    Respond {
        /// The request.
        id: InboundId,
        /// The response frame.
        bytes: Vec<u8>,
    },
    /// Publishes on a commons' topic; a `live` change counts in `live_published` once out.
    Publish {
        /// The commons.
        commons: CommonsId,
        /// The gossip message.
        bytes: Vec<u8>,
        /// Whether it is a locally made change (else an announcement).
        live: bool,
    },
    /// Judges a gossip message (forward, drop, or count against its source).
    Validate {
        /// The message.
        id: MessageId,
        /// Its source.
        source: PeerId,
        /// The judgement.
        acceptance: MessageAcceptance,
    },
    /// Subscribes to a commons' topic.
    Subscribe(CommonsId),
    /// Dials an address; its outcome comes back as [`Input::Connected`] or [`Input::DialFailed`].
    Dial(Multiaddr),
    /// Dials a peer found on the local link (not tracked by the backoff).
    DialDiscovered(PeerId, Multiaddr),
    /// Closes every connection to a peer.
    Disconnect(PeerId),
    /// Closes one connection.
    CloseConnection(ConnectionId),
    /// Asks for an [`Input::Timer`] at this time (replacing any earlier request).
    WakeAt(Instant),
    /// Answers a command.
    Reply(Token, Reply),
}

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
}

impl Pull {
    /// Whether a `hedgerow sync` waits for it.
    fn unfinished(&self) -> bool {
        !matches!(self, Pull::Again(_))
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
    /// When it was sent, to measure the link.
    sent_at: Instant,
    /// The byte budget a `Fetch` asked for.
    budget: Option<u32>,
    /// The documents a `Fetch` named: a response may carry only these.
    asked: HashSet<IdPrefix>,
}

/// Someone waiting for all pulls with a peer to finish (`hedgerow sync`).
#[derive(Debug)]
struct Waiter {
    token: Token,
    peer: Option<PeerId>,
    addr: Multiaddr,
    started: bool,
    deadline: Instant,
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
    subscribed: HashSet<CommonsId>,
    /// Commons asked for with `commons join` and not yet received.
    wanted: HashSet<CommonsId>,
    /// The remote IP address of each connection counted against its address's limit.
    counted: HashMap<ConnectionId, std::net::IpAddr>,
    /// Commons that received changes by sync, with the peers they came from: announced when
    /// their pulls finish if another peer is connected, so neighbours that did not take part
    /// pull them too (store and forward along a chain).
    news: HashMap<CommonsId, HashSet<PeerId>>,
    listen: Vec<Multiaddr>,
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
            subscribed: HashSet::new(),
            wanted,
            counted: HashMap::new(),
            news: HashMap::new(),
            listen: Vec::new(),
            now,
            out: Vec::new(),
        })
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
                self.listen.push(addr);
            }
            Input::ListenClosed(addr) => self.listen.retain(|a| *a != addr),
            Input::Connected {
                peer,
                connection,
                addr,
                dialer,
                dialed,
            } => self.on_connected(peer, connection, addr, dialer, dialed),
            Input::Closed {
                peer,
                connection,
                remaining,
            } => self.on_closed(peer, connection, remaining),
            Input::DialFailed(addr) => self.peers.dial_failed(&addr, now),
            Input::Request { peer, id, bytes } => self.on_request(peer, id, &bytes),
            Input::Response { id, bytes } => {
                if let Some(flight) = self.in_flight.remove(&id) {
                    self.on_response(flight, &bytes);
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
                for (peer, addr) in found {
                    if !self.is_connected(&peer) && !self.peers.is_banned(&peer, ip_of(&addr), now)
                    {
                        self.out.push(Output::DialDiscovered(peer, addr));
                    }
                }
            }
            Input::Ping {
                peer,
                connection,
                ok,
            } => self.on_ping(peer, connection, ok),
            Input::Timer => self.on_timer(),
            Input::Command(token, command) => self.on_command(token, command),
        }
        self.finish()
    }

    /// Ends a step: what changed locally goes out, and the next wake-up is asked for.
    fn finish(&mut self) -> Vec<Output> {
        let wake = self.next_wake();
        self.out.push(Output::WakeAt(wake));
        std::mem::take(&mut self.out)
    }

    /// The earliest time something is due.
    fn next_wake(&self) -> Instant {
        let mut at = self.next_resync.min(self.next_snapshot);
        let connected: Vec<Multiaddr> = self
            .peer
            .values()
            .filter_map(|p| p.addr.as_ref().map(strip_p2p))
            .collect();
        if let Some(due) = self
            .peers
            .next_due(|addr| connected.contains(&strip_p2p(addr)))
        {
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
            };
            if let Some(due) = due {
                at = at.min(due);
            }
        }
        for waiter in &self.waiters {
            at = at.min(waiter.deadline);
        }
        // Never in the past: whatever was due has just been done.
        at.max(self.now + Duration::from_millis(1))
    }

    /// Subscribes to the gossip topic of every commons held or wanted; a wanted commons' topic
    /// tells which peers have it (see [`Self::on_peer_subscribed`]).
    fn subscribe_all(&mut self) {
        let held: Vec<CommonsId> = self.local.commons().into_iter().map(|(id, _)| id).collect();
        let wanted: Vec<CommonsId> = self.wanted.iter().copied().collect();
        for commons in held.into_iter().chain(wanted) {
            if self.subscribed.insert(commons) {
                self.out.push(Output::Subscribe(commons));
            }
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

    // ---- commands ----

    fn on_command(&mut self, token: Token, command: Command) {
        match command {
            Command::Control(request) => {
                let reply = self.on_control(request);
                self.out.push(Output::Reply(token, Reply::Control(reply)));
            }
            Command::Sync(addr) => self.start_waiter(token, addr),
        }
    }

    /// Runs a control request; what it changed is published when the step ends.
    fn on_control(&mut self, request: Request) -> ControlReply {
        let reply = match request {
            Request::Status => ControlReply::Ok(self.status()),
            // A commons already held is joined at once by the API (it writes our profile).
            Request::Join { commons }
                if !commons
                    .parse::<CommonsId>()
                    .is_ok_and(|id| self.local.holds(&id)) =>
            {
                match commons.parse::<CommonsId>() {
                    Ok(id) => {
                        if let Err(e) = self.local.set_wanted(&id, true) {
                            self.store_failed(&e);
                            return ControlReply::Error(e.to_string());
                        }
                        self.wanted.insert(id);
                        let peers = self.connected_peers();
                        for peer in &peers {
                            self.start_pull(*peer, id);
                        }
                        ControlReply::Ok(
                            json!({"commons": id.to_string(), "asked_peers": peers.len()}),
                        )
                    }
                    Err(e) => ControlReply::Error(e.to_string()),
                }
            }
            other => match self.local.execute(other) {
                Ok(value) => ControlReply::Ok(value),
                Err(e) => ControlReply::Error(e.to_string()),
            },
        };
        // A wanted commons may have arrived another way (a bundle import): stop asking for it.
        let local = &self.local;
        self.wanted.retain(|commons| !local.holds(commons));
        self.subscribe_all();
        self.publish_outbox();
        reply
    }

    /// Starts a `hedgerow sync` with the peer at `addr`: pulls everything from it, dialing
    /// it first if needed, and replies when every pull ended (or at [`SYNC_DEADLINE`]).
    fn start_waiter(&mut self, token: Token, addr: Multiaddr) {
        let peer = addr.iter().find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        });
        let connected_peer = peer.filter(|p| self.is_connected(p));
        if let Some(peer) = peer {
            // A fresh report: it tells only of this sync.
            if let Some(p) = self.peer.get_mut(&peer) {
                p.report = None;
            }
        }
        self.waiters.push(Waiter {
            token,
            peer,
            addr: addr.clone(),
            started: connected_peer.is_some(),
            deadline: self.now + SYNC_DEADLINE,
            bytes_at_start: (self.bytes.sent(), self.bytes.received()),
        });
        match connected_peer {
            Some(peer) => self.pull_everything(peer),
            None => self.out.push(Output::Dial(addr)),
        }
    }

    /// Answers `hedgerow sync` callers whose peer has no pull left, or whose time is up.
    fn complete_waiters(&mut self) {
        let mut remaining = Vec::new();
        for waiter in std::mem::take(&mut self.waiters) {
            let done = match waiter.peer {
                Some(peer) => {
                    waiter.started
                        && !self
                            .pulls
                            .iter()
                            .any(|((p, _), pull)| *p == peer && pull.unfinished())
                }
                None => false,
            };
            if !done && self.now < waiter.deadline {
                remaining.push(waiter);
                continue;
            }
            let mut report = waiter
                .peer
                .and_then(|p| self.peer.get_mut(&p))
                .and_then(|p| p.report.take())
                .unwrap_or_default();
            report.peer = waiter
                .peer
                .map(|p| p.to_string())
                .unwrap_or_else(|| waiter.addr.to_string());
            report.complete = done;
            if !done {
                report
                    .errors
                    .push("timed out before every pull finished".into());
            }
            report.bytes_sent = self.bytes.sent().saturating_sub(waiter.bytes_at_start.0);
            report.bytes_received = self
                .bytes
                .received()
                .saturating_sub(waiter.bytes_at_start.1);
            self.out
                .push(Output::Reply(waiter.token, Reply::Sync(report)));
        }
        self.waiters = remaining;
    }

    // ---- publishing ----

    /// Publishes every locally made change on its commons' topic.
    fn publish_outbox(&mut self) {
        for live in self.local.take_outbox() {
            let commons = live.envelope.commons;
            let (message, is_live) = if live.envelope.change.len() > MAX_LIVE_CHANGE_BYTES {
                let digest = self.local_digest(&commons);
                (Gossip::Announce { commons, digest }, false)
            } else {
                (Gossip::Change(Box::new(live)), true)
            };
            self.out.push(Output::Publish {
                commons,
                bytes: message.to_bytes(),
                live: is_live,
            });
        }
    }

    /// Tells a commons' topic that this node has news, so neighbours pull from it.
    fn announce(&mut self, commons: CommonsId) {
        let digest = self.local_digest(&commons);
        self.out.push(Output::Publish {
            commons,
            bytes: Gossip::Announce { commons, digest }.to_bytes(),
            live: false,
        });
    }

    /// This node's digest of a commons, as its `Hello` would carry it.
    fn local_digest(&self, commons: &CommonsId) -> [u8; 32] {
        let docs: Vec<_> = self
            .local
            .inventory(commons)
            .unwrap_or_default()
            .iter()
            .map(|(id, digest)| (id_prefix(id), *digest))
            .collect();
        commons_digest(&docs)
    }

    /// A peer joined a commons topic: if this node wants that commons, the peer may have it
    /// now (it may only want it too, which costs one `NotJoined` round trip).
    fn on_peer_subscribed(&mut self, peer: PeerId, topic: &TopicHash) {
        let Some(commons) = self
            .subscribed
            .iter()
            .copied()
            .find(|c| commons_topic(&c.to_string()).hash() == *topic)
        else {
            return;
        };
        if self.wanted.contains(&commons) {
            self.start_pull(peer, commons);
        }
    }

    // ---- pulls ----

    /// Starts pulling `commons` from `peer`, unless a pull is already running; an
    /// interrupted pull resumes from where it stopped.
    fn start_pull(&mut self, peer: PeerId, commons: CommonsId) {
        let key = (peer, commons);
        if matches!(self.pulls.get(&key), Some(Pull::Running(_))) {
            return;
        }
        let budget = self.peer.entry(peer).or_default().link.budget();
        // A resumed pull needs the clocks of the documents still queued; a new one needs none.
        let resumed = match self.pulls.remove(&key) {
            Some(Pull::Interrupted { session, since, .. })
            | Some(Pull::Postponed(Some((session, since)))) => Some((session, since)),
            _ => None,
        };
        let queued: HashSet<IdPrefix> = resumed
            .as_ref()
            .map(|(session, _)| session.queued_prefixes().into_iter().collect())
            .unwrap_or_default();
        let local = match self.local.local_docs(&commons, &|p, _| queued.contains(p)) {
            Ok(local) => local,
            Err(e) => {
                tracing::warn!("cannot read local state of {commons}: {e}");
                if let Some((session, since)) = resumed {
                    self.pulls.insert(
                        key,
                        Pull::Interrupted {
                            session,
                            since,
                            retry: None,
                        },
                    );
                }
                return;
            }
        };
        self.report(peer);
        let step = match resumed {
            Some((mut session, _)) => {
                session.set_budget(budget);
                tracing::debug!(
                    "resuming pull of {commons} from {peer}: {} documents to ask for",
                    queued.len()
                );
                let step = session.resume(&local);
                self.pulls.insert(key, Pull::Running(session));
                step
            }
            None => {
                let session = PullSession::new(commons, budget);
                let hello = session.hello(&local);
                self.pulls.insert(key, Pull::Running(session));
                PullStep::Send(hello)
            }
        };
        self.follow(peer, commons, step);
    }

    /// Starts a pull, or holds it back while the peer is busy fetching from us.
    fn pull_unless_catching_up(&mut self, peer: PeerId, commons: CommonsId) {
        let now = self.now;
        let catching_up = self
            .peer
            .get(&peer)
            .and_then(|p| p.fetched_at)
            .is_some_and(|at| now.saturating_duration_since(at) < CATCHING_UP);
        let key = (peer, commons);
        if catching_up && !matches!(self.pulls.get(&key), Some(Pull::Running(_))) {
            let resume = match self.pulls.remove(&key) {
                Some(Pull::Interrupted { session, since, .. })
                | Some(Pull::Postponed(Some((session, since)))) => Some((session, since)),
                _ => None,
            };
            self.pulls.insert(key, Pull::Postponed(resume));
        } else {
            self.start_pull(peer, commons);
        }
    }

    /// Pulls every held and wanted commons from `peer`.
    fn pull_everything(&mut self, peer: PeerId) {
        let mut all: Vec<CommonsId> = self.local.commons().into_iter().map(|(id, _)| id).collect();
        all.extend(self.wanted.iter().copied());
        all.sort();
        all.dedup();
        for commons in all {
            self.pull_unless_catching_up(peer, commons);
        }
    }

    fn send(&mut self, peer: PeerId, commons: CommonsId, request: SyncRequest) {
        let (budget, asked) = match &request {
            SyncRequest::Fetch { budget, wants, .. } => {
                (Some(*budget), wants.iter().map(|w| w.prefix).collect())
            }
            SyncRequest::Hello { .. } | SyncRequest::Entries { .. } => (None, HashSet::new()),
        };
        let bytes = request.to_bytes();
        tracing::debug!(
            "sync request to {peer}: {} B, budget {budget:?}",
            bytes.len()
        );
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.in_flight.insert(
            id,
            InFlight {
                peer,
                commons,
                sent_at: self.now,
                budget,
                asked,
            },
        );
        self.out.push(Output::Send { peer, id, bytes });
    }

    fn follow(&mut self, peer: PeerId, commons: CommonsId, step: PullStep) {
        match step {
            PullStep::Send(request) => self.send(peer, commons, request),
            PullStep::Done => self.finish_pull(peer, commons, "synced"),
        }
    }

    fn session(&mut self, peer: PeerId, commons: CommonsId) -> Option<&mut PullSession> {
        match self.pulls.get_mut(&(peer, commons)) {
            Some(Pull::Running(session)) => Some(session),
            _ => None,
        }
    }

    /// Ends a pull for good: it completed, or the peer refused it.
    fn finish_pull(&mut self, peer: PeerId, commons: CommonsId, outcome: &str) {
        let key = (peer, commons);
        let session = match self.pulls.remove(&key) {
            Some(Pull::Running(session)) => Some(session),
            _ => None,
        };
        let connected = self.is_connected(&peer);
        let state = self.peer.entry(peer).or_default();
        // The pull brought what the peer's held live changes were waiting for.
        state.pending = 0;
        let mut more = false;
        if let Some(session) = session {
            let report = state.report.get_or_insert_with(SyncReport::default);
            report.round_trips += session.stats.round_trips;
            report.commons += 1;
            self.counters.pull_round_trips += session.stats.round_trips;
            // Only when this pull got something: a responder listing documents it never
            // sends must not keep the node pulling.
            more = session.truncated() && outcome == "synced" && session.stats.docs_received > 0;
        }
        state.last_sync = Some((crate::replicas::now_unix(), outcome.to_string()));
        if more && connected {
            // The inventory listed more than one pull queues: pull again for the rest.
            self.pulls.insert(key, Pull::Again(self.now));
        }
        let running = self
            .pulls
            .iter()
            .any(|((_, c), pull)| *c == commons && matches!(pull, Pull::Running(_)));
        if !running {
            if let Some(sources) = self.news.remove(&commons) {
                if self.connected_peers().iter().any(|p| !sources.contains(p)) {
                    self.announce(commons);
                }
            }
        }
        self.complete_waiters();
    }

    /// Ends a pull that a dropped link or a failed request cut off. What it stored stays
    /// stored; the pull runs again on the next connection, or after [`RETRY_DELAY`] when the
    /// connection is still up, and asks only for what is still missing.
    fn interrupt_pull(&mut self, peer: PeerId, commons: CommonsId, why: &str) {
        let key = (peer, commons);
        if let Some(Pull::Running(mut session)) = self.pulls.remove(&key) {
            let report = self.report(peer);
            report.round_trips += session.stats.round_trips;
            report.interruptions += 1;
            self.counters.pulls_interrupted += 1;
            session.interrupt();
            session.stats = Default::default();
            let retry = self.is_connected(&peer).then_some(self.now + RETRY_DELAY);
            self.pulls.insert(
                key,
                Pull::Interrupted {
                    session,
                    since: self.now,
                    retry,
                },
            );
        }
        tracing::info!("pull of {commons} from {peer} interrupted: {why}");
        self.peer.entry(peer).or_default().last_sync =
            Some((crate::replicas::now_unix(), format!("interrupted: {why}")));
        self.complete_waiters();
    }

    fn on_failure(&mut self, id: RequestId, connection: Option<ConnectionId>, failure: Failure) {
        let Some(InFlight { peer, commons, .. }) = self.in_flight.remove(&id) else {
            return;
        };
        if self.session(peer, commons).is_none() {
            // Already counted when its connection closed.
            return;
        }
        match failure {
            Failure::Unsupported(why) => {
                self.report(peer)
                    .errors
                    .push(format!("request failed: {why}"));
                self.finish_pull(peer, commons, &format!("failed: {why}"));
            }
            Failure::Stalled { offence, why } => {
                if let Some(kind) = offence {
                    self.misbehaved(peer, kind);
                }
                // A stalled exchange means a dead link more often than a slow peer:
                // drop this connection so the peer is redialled on a fresh one.
                self.peer.entry(peer).or_default().link.on_failure();
                if let Some(connection) = connection {
                    self.out.push(Output::CloseConnection(connection));
                }
                self.interrupt_pull(peer, commons, &why);
            }
            Failure::Lost(why) => {
                self.peer.entry(peer).or_default().link.on_failure();
                self.interrupt_pull(peer, commons, &why);
            }
        }
    }

    fn on_response(&mut self, flight: InFlight, bytes: &[u8]) {
        let InFlight {
            peer,
            commons,
            sent_at,
            budget,
            asked,
        } = flight;
        self.heard_from(peer);
        let elapsed = self.now.saturating_duration_since(sent_at);
        let link = &mut self.peer.entry(peer).or_default().link;
        link.on_response(bytes.len(), elapsed, budget);
        let budget = link.budget();
        tracing::debug!(
            "sync response from {peer}: {} B in {elapsed:?}; next budget {budget}",
            bytes.len(),
        );
        if let Some(session) = self.session(peer, commons) {
            session.set_budget(budget);
        }
        let response = match SyncResponse::from_bytes(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.misbehaved(peer, Refusal::MalformedResponse);
                self.finish_pull(peer, commons, &format!("malformed response: {e}"));
                return;
            }
        };
        match response {
            SyncResponse::InSync => {
                self.report(peer).in_sync += 1;
                if let Some(s) = self.session(peer, commons) {
                    s.stats.round_trips += 1;
                }
                self.finish_pull(peer, commons, "in sync");
            }
            SyncResponse::NotJoined => {
                self.finish_pull(peer, commons, "peer does not replicate this commons")
            }
            SyncResponse::Refused { reason } => {
                self.report(peer).errors.push(reason.clone());
                self.finish_pull(peer, commons, &format!("refused: {reason}"));
            }
            SyncResponse::Inventory { genesis, docs } => {
                if !self.local.holds(&commons) {
                    if !self.wanted.contains(&commons) || genesis.body.id() != commons {
                        self.finish_pull(peer, commons, "not joined");
                        return;
                    }
                    if let Err(e) = self.local.join(&genesis) {
                        self.misbehaved(peer, Refusal::Item(ItemRefusal::of(&e)));
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                    self.wanted.remove(&commons);
                    if let Err(e) = self.local.set_wanted(&commons, false) {
                        self.store_failed(&e);
                    }
                    self.subscribe_all();
                    // Our profile in the commons, made by the join.
                    self.publish_outbox();
                }
                // Clocks only for the documents whose digest differs from the peer's.
                let theirs: HashMap<IdPrefix, HeadsDigest> = docs.iter().copied().collect();
                let differs = |p: &IdPrefix, d: &HeadsDigest| theirs.get(p).is_some_and(|t| t != d);
                let local = match self.local.local_docs(&commons, &differs) {
                    Ok(local) => local,
                    Err(e) => {
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                };
                let step = match self.session(peer, commons) {
                    Some(session) => session.on_inventory(&docs, &local),
                    None => PullStep::Done,
                };
                self.note_queued_wants();
                self.follow(peer, commons, step);
            }
            SyncResponse::Summary { buckets, digests } => {
                let local = match self.local.local_docs(&commons, &|_, _| false) {
                    Ok(local) => local,
                    Err(e) => {
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                };
                let step = match self.session(peer, commons) {
                    Some(session) => session.on_summary(buckets, &digests, &local),
                    None => PullStep::Done,
                };
                self.follow(peer, commons, step);
            }
            SyncResponse::Docs { items, deferred } => {
                let mut stored = 0;
                for item in &items {
                    if !asked.contains(&id_prefix(&item.doc)) {
                        // A pull stores only what it asked for.
                        self.misbehaved(peer, Refusal::UnrequestedDocument);
                        continue;
                    }
                    match self.local.ingest_payload(&commons, item) {
                        Ok(n) => stored += n,
                        Err(e @ NodeError::Store(_)) => {
                            self.store_failed(&e);
                            self.finish_pull(peer, commons, &format!("store failed: {e}"));
                            return;
                        }
                        Err(NodeError::Rejected(Rejection::MissingDependencies { .. }))
                            if self.local.knows_doc(&item.doc)
                                && self
                                    .session(peer, commons)
                                    .is_some_and(|s| s.refetch_whole(id_prefix(&item.doc))) =>
                        {
                            // Our clock matched changes we do not hold: the peer holds the
                            // other twin of an equivocation. The whole document settles it.
                            tracing::info!("asking {peer} for all of document {}", item.doc);
                        }
                        Err(e) => {
                            tracing::info!("refused document {} from {peer}: {e}", item.doc);
                            self.report(peer)
                                .errors
                                .push(format!("document {}: {e}", item.doc));
                            self.refused(peer, &e);
                        }
                    }
                }
                // Durable before asking for more: a cut-off sync keeps what it got.
                if let Err(e) = self.local.commit() {
                    self.store_failed(&e);
                    self.finish_pull(peer, commons, &format!("store failed: {e}"));
                    return;
                }
                if stored > 0 {
                    self.news.entry(commons).or_default().insert(peer);
                }
                self.counters.changes_received += stored as u64;
                self.counters.docs_received += items.len() as u64;
                let report = self.report(peer);
                report.changes_received += stored as u64;
                report.docs_received += items.len() as u64;
                let deferred_set: HashSet<&IdPrefix> = deferred.iter().collect();
                let local = match self
                    .local
                    .local_docs(&commons, &|p, _| deferred_set.contains(p))
                {
                    Ok(local) => local,
                    Err(e) => {
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                };
                let step = match self.session(peer, commons) {
                    Some(session) => {
                        session.record_payload_sizes(items.iter().map(|i| i.wire_size()));
                        session.on_docs(&deferred, &local, items.len())
                    }
                    None => PullStep::Done,
                };
                self.follow(peer, commons, step);
            }
        }
    }

    /// Wants held by every running and interrupted pull.
    fn queued_wants(&self) -> usize {
        self.pulls
            .values()
            .map(|pull| match pull {
                Pull::Running(session) => session.queued(),
                other => other.kept().map_or(0, PullSession::queued),
            })
            .sum()
    }

    /// Keeps the peak of [`Self::queued_wants`] for `status`.
    fn note_queued_wants(&mut self) {
        let queued = self.queued_wants() as u64;
        self.counters.peak_queued_wants = self.counters.peak_queued_wants.max(queued);
    }

    // ---- answering ----

    fn on_request(&mut self, peer: PeerId, id: InboundId, bytes: &[u8]) {
        let now = self.now;
        let response = if !self.peers.allow_request(peer, now) {
            self.misbehaved(peer, Refusal::RateLimited);
            SyncResponse::Refused {
                reason: "too many requests; slow down".into(),
            }
        } else {
            match SyncRequest::from_bytes(bytes).map(|r| (validate_request(&r), r)) {
                Ok((Err(invalid), _)) => {
                    self.misbehaved(peer, Refusal::InvalidRequest(invalid.clone()));
                    SyncResponse::Refused {
                        reason: invalid.to_string(),
                    }
                }
                Ok((Ok(()), request)) => {
                    match request {
                        SyncRequest::Fetch { .. } => {
                            self.peer.entry(peer).or_default().fetched_at = Some(now);
                        }
                        SyncRequest::Hello { .. } => self.start_postponed(peer),
                        SyncRequest::Entries { .. } => {}
                    }
                    let response = respond(&mut self.local, &request);
                    if let SyncResponse::Docs { items, .. } = &response {
                        self.counters.docs_sent += items.len() as u64;
                        self.report(peer).docs_sent += items.len() as u64;
                    }
                    self.counters.requests_answered += 1;
                    response
                }
                Err(e) => {
                    self.misbehaved(peer, Refusal::MalformedRequest);
                    SyncResponse::Refused {
                        reason: format!("malformed request: {e}"),
                    }
                }
            }
        };
        self.out.push(Output::Respond {
            id,
            bytes: response.to_bytes(),
        });
    }

    /// Starts the pulls held back while `peer` was fetching from us.
    fn start_postponed(&mut self, peer: PeerId) {
        let held: Vec<CommonsId> = self
            .pulls
            .iter()
            .filter(|((p, _), pull)| *p == peer && matches!(pull, Pull::Postponed(_)))
            .map(|((_, c), _)| *c)
            .collect();
        for commons in held {
            self.start_pull(peer, commons);
        }
    }

    // ---- offences ----

    /// Counts a refused item from `peer`, and holds it against the peer only when it is the
    /// peer's own offence: validly signed content that this node refuses for what it says
    /// ([`ItemRefusal::is_content`]) is counted, never penalised. The peer may be an honest relay,
    /// and since a node's peer id is its own network key (not its author key) nobody can tell
    /// whether the peer wrote it; floods of such content meet the live rate limits instead.
    /// Returns whether it was an offence.
    fn refused(&mut self, peer: PeerId, error: &NodeError) -> bool {
        let kind = ItemRefusal::of(error);
        if !kind.is_content() {
            self.misbehaved(peer, Refusal::Item(kind));
            true
        } else {
            self.counters.reject(&Refusal::Item(kind));
            self.counters.relayed_refusals += 1;
            false
        }
    }

    /// Counts a failed store write or flush (this node's own failure, no peer's).
    fn store_failed(&mut self, error: &dyn std::fmt::Display) {
        tracing::error!("cannot store: {error}");
        self.counters.store_failures += 1;
    }

    /// Counts an invalid item from `peer`; disconnects and cools it off past the limit.
    fn misbehaved(&mut self, peer: PeerId, reason: Refusal) {
        self.counters.reject(&reason);
        let ip = self
            .peer
            .get(&peer)
            .and_then(|p| p.addr.as_ref())
            .and_then(ip_of);
        match self.peers.penalise(peer, ip, self.now) {
            Penalty::Counted => {}
            Penalty::PeerBanned => {
                tracing::warn!(
                    "disconnecting {peer}: too much invalid data ({})",
                    reason.kind()
                );
                self.counters.peers_banned += 1;
                self.out.push(Output::Disconnect(peer));
            }
            Penalty::AddressBanned => {
                tracing::warn!(
                    "disconnecting every peer at {ip:?}: too much invalid data from it ({})",
                    reason.kind()
                );
                self.counters.peers_banned += 1;
                self.counters.addresses_banned += 1;
                let at_ip: Vec<PeerId> = self
                    .peer
                    .iter()
                    .filter(|(_, p)| p.addr.as_ref().is_some_and(|a| ip_of(a) == ip))
                    .map(|(id, _)| *id)
                    .collect();
                for peer in at_ip {
                    self.out.push(Output::Disconnect(peer));
                }
            }
        }
    }

    // ---- gossip ----

    fn on_gossip(&mut self, source: PeerId, topic: &TopicHash, data: &[u8]) -> MessageAcceptance {
        self.bytes.record_gossip_received(data.len());
        match Gossip::from_bytes(data) {
            Err(_) => {
                self.misbehaved(source, Refusal::MalformedGossip);
                MessageAcceptance::Reject
            }
            Ok(Gossip::Announce { commons, digest }) => {
                let held = self.local.holds(&commons);
                if (held && self.local_digest(&commons) != digest) || self.wanted.contains(&commons)
                {
                    self.start_pull(source, commons);
                }
                MessageAcceptance::Accept
            }
            Ok(Gossip::Change(live)) => {
                let commons = live.envelope.commons;
                let pending = self.peer.get(&source).map_or(0, |p| p.pending);
                if *topic != commons_topic(&commons.to_string()).hash() {
                    self.misbehaved(source, Refusal::WrongTopic);
                    MessageAcceptance::Reject
                } else if !self
                    .peers
                    .allow_live(source, live.envelope.author, self.now)
                {
                    // Over its author's or its relay's rate: dropped unverified, unforwarded;
                    // a pull brings it later if it is real. No offence (relays forward floods).
                    self.counters.reject(&Refusal::LiveRateLimited);
                    self.start_pull(source, commons);
                    MessageAcceptance::Ignore
                } else if pending >= MAX_PENDING_PER_PEER {
                    self.counters.reject(&Refusal::PendingPerPeer);
                    self.start_pull(source, commons);
                    MessageAcceptance::Ignore
                } else {
                    self.on_live_change(source, commons, &live)
                }
            }
        }
    }

    /// Applies a live change that passed the rate limits.
    fn on_live_change(
        &mut self,
        source: PeerId,
        commons: CommonsId,
        live: &hedgerow_protocol::sync::LiveChange,
    ) -> MessageAcceptance {
        match self.local.ingest_live(live) {
            Ok(LiveOutcome::Applied(n)) => match self.local.commit() {
                Ok(()) => {
                    self.counters.live_received += 1;
                    self.counters.changes_received += n as u64;
                    MessageAcceptance::Accept
                }
                // Not durable: neither acknowledged nor forwarded.
                Err(e) => {
                    self.store_failed(&e);
                    MessageAcceptance::Ignore
                }
            },
            Ok(LiveOutcome::Duplicate) => MessageAcceptance::Ignore,
            Ok(LiveOutcome::Excluded) => {
                // A validly signed losing twin: kept as evidence, never forwarded, and no
                // fault of the peer that relayed it.
                let _ = self.local.commit();
                self.counters.excluded_received += 1;
                MessageAcceptance::Ignore
            }
            Ok(LiveOutcome::Pending) => {
                // Verified but its history is missing here: held, not forwarded (neighbours
                // could not apply it either), and the history is fetched from the sender.
                self.peer.entry(source).or_default().pending += 1;
                self.counters.live_pending += 1;
                self.start_pull(source, commons);
                MessageAcceptance::Ignore
            }
            Err(NodeError::UnknownDoc { .. }) => {
                self.start_pull(source, commons);
                MessageAcceptance::Ignore
            }
            Err(NodeError::UnknownCommons(_)) => {
                if self.wanted.contains(&commons) {
                    self.start_pull(source, commons);
                }
                MessageAcceptance::Ignore
            }
            Err(e @ NodeError::Store(_)) => {
                self.store_failed(&e);
                MessageAcceptance::Ignore
            }
            Err(e @ NodeError::Rejected(Rejection::TooManyPending)) => {
                // Its history comes by pull instead.
                self.refused(source, &e);
                self.start_pull(source, commons);
                MessageAcceptance::Ignore
            }
            Err(e) => {
                tracing::info!("refused live change from {source}: {e}");
                if self.refused(source, &e) {
                    MessageAcceptance::Reject
                } else {
                    MessageAcceptance::Ignore
                }
            }
        }
    }

    // ---- connections ----

    fn on_connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        addr: Multiaddr,
        dialer: bool,
        dialed: Option<Multiaddr>,
    ) {
        let now = self.now;
        if let Some(target) = dialed {
            self.peers.dial_succeeded(&target, now);
        }
        let ip = ip_of(&addr);
        if self.peers.is_banned(&peer, ip, now) {
            self.out.push(Output::Disconnect(peer));
            return;
        }
        if let Some(ip) = ip {
            if !self.peers.connection_opened(ip) {
                self.counters.reject(&Refusal::TooManyConnections);
                self.out.push(Output::CloseConnection(connection));
                return;
            }
            self.counted.insert(connection, ip);
        }
        if dialer {
            let known = KnownPeer {
                addrs: vec![addr.to_string()],
                last_seen: crate::replicas::now_unix(),
            };
            if let Err(e) = self.local.remember_peer(&peer.to_string(), &known) {
                self.store_failed(&e);
            }
        }
        let state = self.peer.entry(peer).or_default();
        let first = state.addr.is_none();
        state.addr = Some(addr.clone());
        self.heard_from(peer);
        for waiter in &mut self.waiters {
            if waiter.peer.is_none() && strip_p2p(&waiter.addr) == strip_p2p(&addr) {
                waiter.peer = Some(peer);
            }
        }
        if first {
            self.pulls
                .retain(|(p, _), pull| *p != peer || !matches!(pull, Pull::Again(_)));
            for pull in self.pulls.iter_mut().filter(|((p, _), _)| *p == peer) {
                if let (_, Pull::Interrupted { retry, .. }) = pull {
                    *retry = None;
                }
            }
            self.pull_everything(peer);
            for waiter in &mut self.waiters {
                if waiter.peer == Some(peer) {
                    waiter.started = true;
                }
            }
            self.complete_waiters();
        }
    }

    fn on_closed(&mut self, peer: PeerId, connection: ConnectionId, remaining: u32) {
        let now = self.now;
        if let Some(ip) = self.counted.remove(&connection) {
            self.peers.connection_closed(ip);
        }
        if remaining > 0 {
            return;
        }
        if let Some(addr) = self.peer.get_mut(&peer).and_then(|p| p.addr.take()) {
            self.peers.disconnected(&addr, now);
            self.peers
                .disconnected(&addr.with(Protocol::P2p(peer)), now);
        }
        let stale: Vec<CommonsId> = self
            .pulls
            .iter()
            .filter(|((p, _), pull)| *p == peer && matches!(pull, Pull::Running(_)))
            .map(|((_, c), _)| *c)
            .collect();
        if !stale.is_empty() {
            self.peer.entry(peer).or_default().link.on_failure();
        }
        for commons in stale {
            self.interrupt_pull(peer, commons, "connection closed");
        }
        // Retries are for connections that stayed up.
        self.pulls
            .retain(|(p, _), pull| *p != peer || !matches!(pull, Pull::Again(_)));
        for ((p, _), pull) in self.pulls.iter_mut() {
            if *p == peer {
                if let Pull::Interrupted { retry, .. } = pull {
                    *retry = None;
                }
            }
        }
        // Someone waits for this sync (`hedgerow sync`): dial the peer again until the pulls
        // complete or the wait times out.
        let waited: Vec<Multiaddr> = self
            .waiters
            .iter()
            .filter(|w| w.peer == Some(peer))
            .map(|w| w.addr.clone())
            .collect();
        for addr in waited {
            self.peers.add_target(addr.clone(), now);
            self.peers.disconnected(&addr, now);
        }
        self.peer_gone(peer);
    }

    /// Forgets what is kept about `peer` only while it is connected, so per-peer state does not
    /// grow with every peer id that ever connected (ids cost nothing). What outlives the
    /// connection on purpose (an interrupted pull, the link estimate, a recent fetch) is
    /// bounded by count and age instead.
    fn peer_gone(&mut self, peer: PeerId) {
        let now = self.now;
        self.peers.forget(&peer);
        let waited = self.waiters.iter().any(|w| w.peer == Some(peer));
        if let Some(state) = self.peer.get_mut(&peer) {
            state.heard = None;
            state.last_sync = None;
            state.pending = 0;
            if !waited {
                state.report = None;
            }
        }
        // A held-back pull is dropped; the session it may keep stays for resuming.
        let held: Vec<CommonsId> = self
            .pulls
            .iter()
            .filter(|((p, _), pull)| *p == peer && matches!(pull, Pull::Postponed(_)))
            .map(|((_, c), _)| *c)
            .collect();
        for commons in held {
            if let Some(Pull::Postponed(Some((session, since)))) =
                self.pulls.remove(&(peer, commons))
            {
                self.pulls.insert(
                    (peer, commons),
                    Pull::Interrupted {
                        session,
                        since,
                        retry: None,
                    },
                );
            }
        }
        if self.peer.len() > MAX_REMEMBERED_PEERS {
            self.peer.retain(|_, p| {
                p.addr.is_some()
                    || p.report.is_some()
                    || p.fetched_at
                        .is_some_and(|at| now.saturating_duration_since(at) < CATCHING_UP)
            });
        }
        let kept = self.pulls.values().filter(|p| p.kept().is_some()).count();
        if kept > MAX_INTERRUPTED {
            let mut by_age: Vec<((PeerId, CommonsId), Instant)> = self
                .pulls
                .iter()
                .filter_map(|(k, pull)| match pull {
                    Pull::Interrupted { since, .. } | Pull::Postponed(Some((_, since))) => {
                        Some((*k, *since))
                    }
                    _ => None,
                })
                .collect();
            by_age.sort_by_key(|(_, at)| *at);
            for (key, _) in by_age.iter().take(kept - MAX_INTERRUPTED) {
                self.pulls.remove(key);
            }
        }
    }

    /// Records a sign of life from `peer`.
    fn heard_from(&mut self, peer: PeerId) {
        let bytes = self.bytes.received();
        self.peer.entry(peer).or_default().heard = Some((self.now, bytes));
    }

    fn on_ping(&mut self, peer: PeerId, connection: ConnectionId, ok: bool) {
        if ok {
            self.heard_from(peer);
            return;
        }
        let now = self.now;
        let (at, bytes) = self
            .peer
            .get(&peer)
            .and_then(|p| p.heard)
            .unwrap_or((now, 0));
        // Sync bytes still arriving while a response is in flight count as life.
        let receiving =
            self.bytes.received() != bytes && self.in_flight.values().any(|f| f.peer == peer);
        if receiving {
            self.heard_from(peer);
        } else if now.saturating_duration_since(at) >= SILENT_LIMIT {
            tracing::info!("closing silent connection to {peer}: ping failed");
            self.out.push(Output::CloseConnection(connection));
        }
    }

    // ---- timers ----

    /// Does what is due: re-syncs, snapshot saves, retries, held-back pulls, dials and
    /// `hedgerow sync` deadlines; forgets stale interrupted pulls and fetches.
    fn on_timer(&mut self) {
        let now = self.now;
        if now >= self.next_resync {
            self.next_resync = now + self.config.sync_interval;
            for peer in self.connected_peers() {
                self.pull_everything(peer);
            }
        }
        if now >= self.next_snapshot {
            self.next_snapshot = now + SNAPSHOT_INTERVAL;
            // A failure is counted, never fatal: the change records are the truth and a
            // stale snapshot is caught up on load.
            if let Err(e) = self.local.save_snapshots() {
                self.store_failed(&e);
            }
        }
        self.retry_due();
        let connected: Vec<Multiaddr> = self
            .peer
            .values()
            .filter_map(|p| p.addr.as_ref().map(strip_p2p))
            .collect();
        for addr in self
            .peers
            .due(now, |addr| connected.contains(&strip_p2p(addr)))
        {
            self.out.push(Output::Dial(addr));
        }
        self.complete_waiters();
    }

    /// Re-runs interrupted pulls that are due on connections that stayed up, starts held-back
    /// pulls from peers that stopped fetching from us, and forgets stale interrupted pulls.
    fn retry_due(&mut self) {
        let now = self.now;
        let fetched = |peer: &PeerId| self.peer.get(peer).and_then(|p| p.fetched_at);
        let due: Vec<(PeerId, CommonsId)> =
            self.pulls
                .iter()
                .filter(|((peer, _), pull)| match pull {
                    Pull::Interrupted {
                        retry: Some(at), ..
                    }
                    | Pull::Again(at) => *at <= now,
                    Pull::Postponed(_) => fetched(peer)
                        .is_none_or(|at| now.saturating_duration_since(at) >= FETCH_QUIET),
                    _ => false,
                })
                .map(|(k, _)| *k)
                .collect();
        for key in due {
            let connected = self.is_connected(&key.0);
            match self.pulls.remove(&key) {
                Some(Pull::Interrupted { session, since, .. })
                | Some(Pull::Postponed(Some((session, since)))) => {
                    self.pulls.insert(
                        key,
                        Pull::Interrupted {
                            session,
                            since,
                            retry: None,
                        },
                    );
                }
                _ => {}
            }
            if connected {
                self.start_pull(key.0, key.1);
            }
        }
        self.pulls.retain(|_, pull| match pull {
            Pull::Interrupted { since, .. } => {
                now.saturating_duration_since(*since) < INTERRUPTED_TTL
            }
            _ => true,
        });
        for state in self.peer.values_mut() {
            if state
                .fetched_at
                .is_some_and(|at| now.saturating_duration_since(at) >= CATCHING_UP)
            {
                state.fetched_at = None;
            }
        }
        self.peers.prune(now);
    }

    // ---- status ----

    /// `hedgerow status` as JSON.
    fn status(&mut self) -> Value {
        let now = self.now;
        let connected: Vec<Value> = self
            .peer
            .iter()
            .filter_map(|(peer, state)| {
                let addr = state.addr.as_ref()?;
                let last = state.last_sync.as_ref();
                let pulls = |f: fn(&Pull) -> bool| {
                    self.pulls.iter().any(|((p, _), pull)| p == peer && f(pull))
                };
                Some(json!({
                    "peer": peer.to_string(),
                    "addr": addr.to_string(),
                    "syncing": pulls(|p| matches!(p, Pull::Running(_))),
                    "interrupted": pulls(|p| p.kept().is_some()),
                    "postponed": pulls(|p| matches!(p, Pull::Postponed(_))),
                    "sync_budget": state.link.budget(),
                    "last_sync_at": last.map(|l| l.0),
                    "last_sync": last.map(|l| l.1.clone()),
                }))
            })
            .collect();
        let commons: Vec<Value> = self
            .local
            .commons()
            .into_iter()
            .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
            .collect();
        let (transport_in, transport_out) = self.bytes.transport_bytes();
        let mut counters = self.counters.clone();
        for (reason, count) in self.bytes.refused_request_frames() {
            if count > 0 {
                *counters.rejected.entry(reason.to_string()).or_insert(0) += count;
            }
        }
        let kept = self.pulls.values().filter(|p| p.kept().is_some()).count();
        json!({
            "peer_id": self.config.local_peer.to_string(),
            "author": self.local.author_text(),
            "listen": self.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "connected": connected,
            "commons": commons,
            "wanted": self.wanted.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "rejected_total": counters.rejected_total(),
            "excluded_changes": self.local.excluded_count(),
            "counters": counters,
            "banned_peers": self.peers.banned_count(now),
            "banned_addresses": self.peers.banned_addresses(now),
            "queued_wants": self.queued_wants(),
            "tracked_peer_entries": self.peers.tracked() + self.peer.len() + kept,
            "bytes": {
                "sync_sent": self.bytes.sent(),
                "sync_received": self.bytes.received(),
                "gossip_published": self.bytes.gossip_published(),
                "gossip_received": self.bytes.gossip_received(),
                "transport_in": transport_in,
                "transport_out": transport_out,
            },
            "store_bytes": self.local.size_on_disk(),
        })
    }
}

/// The IP address a multiaddress reaches, if it names one.
fn ip_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
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
