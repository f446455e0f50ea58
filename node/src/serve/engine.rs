//! The task that owns the swarm and the replicas: it translates libp2p events
//! into sync protocol steps and store writes, and control requests into
//! replica operations whose changes it then publishes.
//!
//! On bad links: each peer's response budget follows its link ([`LinkEstimate`]);
//! a pull cut off by a dropped connection or a stalled request is kept and
//! resumes from its queue on the next connection (bootstrap peers, and the peer
//! of a waiting `hedgerow sync`, are redialled with backoff) or after
//! [`RETRY_DELAY`] on a connection that stayed up; our pull from a peer that is
//! catching up from us waits until it is done ([`FETCH_QUIET`]); and a
//! connection whose peer stays silent past [`SILENT_LIMIT`] is closed so it can
//! be redialled, while a slow transfer that keeps making progress never is.

use super::link::LinkEstimate;
use super::peers::{PeerBook, Penalty};
use super::stats::{is_content_refusal, rejection_kind, Counters, SyncReport};
use crate::api::{self, Request};
use crate::control::ControlReply;
use crate::net::{commons_topic, Behaviour, BehaviourEvent, ByteCounters, FrameError};
use crate::replicas::{LiveOutcome, NodeError, Replicas};
use crate::store::KnownPeer;
use futures::StreamExt;
use hedgerow_protocol::replica::Rejection;
use hedgerow_protocol::sync::{
    commons_digest, id_prefix, respond, validate_request, Gossip, HeadsDigest, IdPrefix,
    PullSession, PullStep, SyncRequest, SyncResponse, SyncSource, MAX_LIVE_CHANGE_BYTES,
};
use hedgerow_protocol::CommonsId;
use libp2p::swarm::SwarmEvent;
use libp2p::{
    gossipsub, identify, mdns, multiaddr::Protocol, ping, request_response, Multiaddr, PeerId,
    Swarm,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type SyncEvent = request_response::Event<Vec<u8>, Vec<u8>>;

/// A pull in flight: which peer and commons a sync request belongs to.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    peer: PeerId,
    commons: CommonsId,
    /// When the request was handed to the swarm, to measure the link.
    sent_at: Instant,
    /// The byte budget a `Fetch` asked for.
    budget: Option<u32>,
}

/// The documents a request in flight asked for: a response may carry only these.
type Asked = HashMap<request_response::OutboundRequestId, HashSet<IdPrefix>>;

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

/// Someone waiting for all pulls with a peer to finish (`hedgerow sync`).
pub(crate) struct SyncWaiter {
    pub(crate) peer: Option<PeerId>,
    pub(crate) addr: Multiaddr,
    pub(crate) reply: oneshot::Sender<SyncReport>,
    pub(crate) started: bool,
    pub(crate) deadline: Instant,
    /// Sync bytes (sent, received) when the wait began, so the report counts this sync only.
    pub(crate) bytes_at_start: (u64, u64),
}

/// The node's event loop state.
pub struct Engine {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) replicas: Replicas,
    pub(crate) bytes: ByteCounters,
    pub(crate) peers: PeerBook,
    pub(crate) counters: Counters,
    sessions: HashMap<(PeerId, CommonsId), PullSession>,
    in_flight: HashMap<request_response::OutboundRequestId, InFlight>,
    /// The document prefixes each `Fetch` in flight named.
    asked: Asked,
    reports: HashMap<PeerId, SyncReport>,
    pub(crate) waiters: Vec<SyncWaiter>,
    subscribed: HashSet<CommonsId>,
    /// Commons asked for with `commons join` and not yet received.
    pub(crate) wanted: HashSet<CommonsId>,
    /// Address each connected peer was reached at.
    connected: HashMap<PeerId, Multiaddr>,
    /// The remote IP address of each connection counted against its address's limit.
    counted: HashMap<libp2p::swarm::ConnectionId, std::net::IpAddr>,
    /// Dials in progress, so their outcome reaches the redial backoff.
    dialing: HashMap<libp2p::swarm::ConnectionId, Multiaddr>,
    last_sync: HashMap<PeerId, (i64, String)>,
    /// Per-peer response budgets, kept across reconnections.
    links: HashMap<PeerId, LinkEstimate>,
    /// Pulls cut off by a failure, kept with their queues (and when they were cut) so the
    /// next connection or retry asks for the rest without a new inventory.
    interrupted: HashMap<(PeerId, CommonsId), (PullSession, Instant)>,
    /// Pulls held back while the peer is itself fetching from us (see [`FETCH_QUIET`]).
    postponed: HashSet<(PeerId, CommonsId)>,
    /// When each peer last fetched documents from us.
    fetched_by: HashMap<PeerId, Instant>,
    /// Pulls to re-run on a connection that stayed up after a failed request.
    retry_at: HashMap<(PeerId, CommonsId), Instant>,
    /// Last sign of life from each peer, and the sync byte total seen then.
    last_heard: HashMap<PeerId, (Instant, u64)>,
    /// Commons that received changes by sync, with the peers they came from: announced when
    /// their pulls finish if another peer is connected, so neighbours that did not take part
    /// pull them too (store and forward along a chain).
    news: HashMap<CommonsId, HashSet<PeerId>>,
    /// Live changes held for missing history, per peer that sent them, since its last pull.
    pending_from: HashMap<PeerId, u32>,
}

impl Engine {
    /// Wraps a built swarm and opened replicas.
    pub fn new(swarm: Swarm<Behaviour>, replicas: Replicas, bytes: ByteCounters) -> Self {
        Self {
            swarm,
            replicas,
            bytes,
            peers: PeerBook::default(),
            counters: Counters::default(),
            sessions: HashMap::new(),
            in_flight: HashMap::new(),
            asked: HashMap::new(),
            reports: HashMap::new(),
            waiters: Vec::new(),
            subscribed: HashSet::new(),
            wanted: HashSet::new(),
            connected: HashMap::new(),
            dialing: HashMap::new(),
            counted: HashMap::new(),
            last_sync: HashMap::new(),
            links: HashMap::new(),
            interrupted: HashMap::new(),
            postponed: HashSet::new(),
            fetched_by: HashMap::new(),
            retry_at: HashMap::new(),
            last_heard: HashMap::new(),
            news: HashMap::new(),
            pending_from: HashMap::new(),
        }
    }

    /// Subscribes to the gossip topic of every commons held or wanted; a wanted commons' topic
    /// tells which peers have it (see [`Engine::on_peer_subscribed`]).
    pub fn subscribe_all(&mut self) {
        let held: Vec<CommonsId> = self
            .replicas
            .commons_list()
            .unwrap_or_default()
            .iter()
            .map(|g| g.body.id())
            .collect();
        let wanted: Vec<CommonsId> = self.wanted.iter().copied().collect();
        for commons in held.into_iter().chain(wanted) {
            if self.subscribed.insert(commons) {
                let topic = commons_topic(&commons.to_string());
                if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                    tracing::warn!("cannot subscribe to {commons}: {e}");
                }
            }
        }
    }

    /// Whether any pull is still running.
    pub fn pulls_running(&self) -> bool {
        !self.sessions.is_empty()
    }

    /// Connected peer count.
    pub fn connected_count(&self) -> usize {
        self.connected.len()
    }

    // ---- control ----

    /// Runs a control request; publishes what it changed.
    pub fn on_control(&mut self, request: Request) -> ControlReply {
        let reply = match request {
            Request::Status => ControlReply::Ok(self.status()),
            // A commons already held is joined at once by the API (it writes our profile).
            Request::Join { commons } if !self.holds_text(&commons) => match commons
                .parse::<CommonsId>()
            {
                Ok(id) => {
                    if let Err(e) = self
                        .replicas
                        .store()
                        .want_commons(&id)
                        .map_err(NodeError::from)
                        .and_then(|()| self.replicas.commit())
                    {
                        self.store_failed(&e);
                        return ControlReply::Error(e.to_string());
                    }
                    self.wanted.insert(id);
                    let peers: Vec<PeerId> = self.connected.keys().copied().collect();
                    for peer in &peers {
                        self.start_pull(*peer, id);
                    }
                    ControlReply::Ok(json!({"commons": id.to_string(), "asked_peers": peers.len()}))
                }
                Err(e) => ControlReply::Error(e.to_string()),
            },
            other => match api::execute(&mut self.replicas, other) {
                Ok(value) => ControlReply::Ok(value),
                Err(e) => ControlReply::Error(e.to_string()),
            },
        };
        // A wanted commons may have arrived another way (a bundle import): stop asking for it.
        let replicas = &self.replicas;
        self.wanted
            .retain(|commons| !replicas.holds(commons).unwrap_or(false));
        self.subscribe_all();
        self.publish_outbox();
        reply
    }

    fn holds_text(&self, commons: &str) -> bool {
        commons
            .parse::<CommonsId>()
            .is_ok_and(|id| self.replicas.holds(&id).unwrap_or(false))
    }

    /// Publishes every locally made change on its commons' topic.
    pub fn publish_outbox(&mut self) {
        for live in self.replicas.take_outbox() {
            let commons = live.envelope.commons;
            let topic = commons_topic(&commons.to_string());
            let message = if live.envelope.change.len() > MAX_LIVE_CHANGE_BYTES {
                Gossip::Announce {
                    commons,
                    digest: self.local_digest(&commons),
                }
            } else {
                Gossip::Change(Box::new(live))
            };
            let bytes = message.to_bytes();
            let len = bytes.len();
            match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                Ok(_) => {
                    self.bytes.record_gossip_published(len);
                    self.counters.live_published += 1;
                }
                // No subscriber yet: peers get it by catch-up sync when they connect.
                Err(e) => tracing::debug!("not published: {e}"),
            }
        }
    }

    /// Tells a commons' topic that this node has news, so neighbours pull from it.
    fn announce(&mut self, commons: CommonsId) {
        let digest = self.local_digest(&commons);
        let bytes = Gossip::Announce { commons, digest }.to_bytes();
        let len = bytes.len();
        let topic = commons_topic(&commons.to_string());
        match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
            Ok(_) => self.bytes.record_gossip_published(len),
            // The same state was announced moments ago.
            Err(gossipsub::PublishError::Duplicate) => {}
            Err(e) => tracing::debug!("announcement of {commons} not published: {e}"),
        }
    }

    /// This node's digest of a commons, as its `Hello` would carry it.
    fn local_digest(&self, commons: &CommonsId) -> [u8; 32] {
        let docs: Vec<_> = self
            .replicas
            .inventory(commons)
            .unwrap_or_default()
            .iter()
            .map(|(id, digest)| (id_prefix(id), *digest))
            .collect();
        commons_digest(&docs)
    }

    /// A peer joined a commons topic: if this node wants that commons, the peer may have it
    /// now (it may only want it too, which costs one `NotJoined` round trip).
    fn on_peer_subscribed(&mut self, peer: PeerId, topic: gossipsub::TopicHash) {
        let Some(commons) = self
            .subscribed
            .iter()
            .copied()
            .find(|c| commons_topic(&c.to_string()).hash() == topic)
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
    pub fn start_pull(&mut self, peer: PeerId, commons: CommonsId) {
        if self.sessions.contains_key(&(peer, commons)) {
            return;
        }
        self.postponed.remove(&(peer, commons));
        self.retry_at.remove(&(peer, commons));
        let budget = self.links.entry(peer).or_default().budget();
        // A resumed pull needs the clocks of the documents still queued; a new one needs none.
        let resumed = self.interrupted.remove(&(peer, commons));
        let queued: HashSet<IdPrefix> = resumed
            .as_ref()
            .map(|(session, _)| session.queued_prefixes().into_iter().collect())
            .unwrap_or_default();
        let local = match self
            .replicas
            .local_docs(&commons, |p, _| queued.contains(p))
        {
            Ok(local) => local,
            Err(e) => {
                tracing::warn!("cannot read local state of {commons}: {e}");
                if let Some(resumed) = resumed {
                    self.interrupted.insert((peer, commons), resumed);
                }
                return;
            }
        };
        self.reports.entry(peer).or_insert_with(|| SyncReport {
            peer: peer.to_string(),
            ..SyncReport::default()
        });
        let step = match resumed {
            Some((mut session, _)) => {
                session.set_budget(budget);
                tracing::debug!(
                    "resuming pull of {commons} from {peer}: {} documents to ask for",
                    queued.len()
                );
                let step = session.resume(&local);
                self.sessions.insert((peer, commons), session);
                step
            }
            None => {
                let session = PullSession::new(commons, budget);
                let hello = session.hello(&local);
                self.sessions.insert((peer, commons), session);
                PullStep::Send(hello)
            }
        };
        self.follow(peer, commons, step);
    }

    /// Starts a pull, or holds it back while the peer is busy fetching from us.
    fn pull_unless_catching_up(&mut self, peer: PeerId, commons: CommonsId) {
        let catching_up = self
            .fetched_by
            .get(&peer)
            .is_some_and(|at| at.elapsed() < CATCHING_UP);
        if catching_up && !self.sessions.contains_key(&(peer, commons)) {
            self.postponed.insert((peer, commons));
        } else {
            self.start_pull(peer, commons);
        }
    }

    /// Pulls every held and wanted commons from `peer`.
    pub fn pull_everything(&mut self, peer: PeerId) {
        let mut all: Vec<CommonsId> = self
            .replicas
            .commons_list()
            .unwrap_or_default()
            .iter()
            .map(|g| g.body.id())
            .collect();
        all.extend(self.wanted.iter().copied());
        all.sort();
        all.dedup();
        for commons in all {
            self.pull_unless_catching_up(peer, commons);
        }
    }

    /// Re-syncs with every connected peer (periodic).
    pub fn resync_all(&mut self) {
        let peers: Vec<PeerId> = self.connected.keys().copied().collect();
        for peer in peers {
            self.pull_everything(peer);
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
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
        self.asked.insert(id, asked);
        self.in_flight.insert(
            id,
            InFlight {
                peer,
                commons,
                sent_at: Instant::now(),
                budget,
            },
        );
    }

    /// Ends a pull for good: it completed, or the peer refused it.
    fn finish_pull(&mut self, peer: PeerId, commons: CommonsId, outcome: &str) {
        // The pull brought what the peer's held live changes were waiting for.
        self.pending_from.remove(&peer);
        let mut more = false;
        if let Some(session) = self.sessions.remove(&(peer, commons)) {
            let report = self.reports.entry(peer).or_default();
            report.round_trips += session.stats.round_trips;
            report.commons += 1;
            self.counters.pull_round_trips += session.stats.round_trips;
            // Only when this pull got something: a responder listing documents it never
            // sends must not keep the node pulling.
            more = session.truncated() && outcome == "synced" && session.stats.docs_received > 0;
        }
        self.interrupted.remove(&(peer, commons));
        self.retry_at.remove(&(peer, commons));
        if more && self.connected.contains_key(&peer) {
            // The inventory listed more than one pull queues: pull again for the rest.
            self.retry_at.insert((peer, commons), Instant::now());
        }
        self.postponed.remove(&(peer, commons));
        self.last_sync
            .insert(peer, (crate::replicas::now_unix(), outcome.to_string()));
        if !self.sessions.keys().any(|(_, c)| *c == commons) {
            if let Some(sources) = self.news.remove(&commons) {
                if self.connected.keys().any(|p| !sources.contains(p)) {
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
        if let Some(mut session) = self.sessions.remove(&(peer, commons)) {
            let report = self.reports.entry(peer).or_default();
            report.round_trips += session.stats.round_trips;
            report.interruptions += 1;
            self.counters.pulls_interrupted += 1;
            session.interrupt();
            session.stats = Default::default();
            self.interrupted
                .insert((peer, commons), (session, Instant::now()));
            if self.connected.contains_key(&peer) {
                self.retry_at
                    .insert((peer, commons), Instant::now() + RETRY_DELAY);
            }
        }
        tracing::info!("pull of {commons} from {peer} interrupted: {why}");
        self.last_sync.insert(
            peer,
            (crate::replicas::now_unix(), format!("interrupted: {why}")),
        );
        self.complete_waiters();
    }

    /// Forgets what is kept about `peer` only while it is connected, so per-peer state does not
    /// grow with every peer id that ever connected (ids cost nothing). What outlives the
    /// connection on purpose (an interrupted pull, the link estimate, a recent fetch) is
    /// bounded by count and age instead.
    fn peer_gone(&mut self, peer: PeerId) {
        self.peers.forget(&peer);
        self.last_heard.remove(&peer);
        self.last_sync.remove(&peer);
        self.pending_from.remove(&peer);
        if !self.waiters.iter().any(|w| w.peer == Some(peer)) {
            self.reports.remove(&peer);
        }
        self.postponed.retain(|(p, _)| *p != peer);
        if self.links.len() > MAX_REMEMBERED_PEERS {
            let connected = &self.connected;
            self.links.retain(|p, _| connected.contains_key(p));
        }
        if self.fetched_by.len() > MAX_REMEMBERED_PEERS {
            self.fetched_by.retain(|_, at| at.elapsed() < CATCHING_UP);
        }
        if self.interrupted.len() > MAX_INTERRUPTED {
            let mut by_age: Vec<((PeerId, CommonsId), Instant)> = self
                .interrupted
                .iter()
                .map(|(k, (_, at))| (*k, *at))
                .collect();
            by_age.sort_by_key(|(_, at)| *at);
            for (key, _) in by_age.iter().take(self.interrupted.len() - MAX_INTERRUPTED) {
                self.interrupted.remove(key);
            }
        }
    }

    /// Saves lagging snapshot caches (periodic); a failure is counted, never fatal: the
    /// change records are the truth and a stale snapshot is caught up on load.
    pub fn save_snapshots(&mut self) {
        if let Err(e) = self.replicas.save_snapshots() {
            self.store_failed(&e);
        }
    }

    /// Wants held by every running and interrupted pull.
    pub fn queued_wants(&self) -> usize {
        self.sessions
            .values()
            .map(PullSession::queued)
            .sum::<usize>()
            + self
                .interrupted
                .values()
                .map(|(s, _)| s.queued())
                .sum::<usize>()
    }

    /// Keeps the peak of [`Self::queued_wants`] for `status`.
    fn note_queued_wants(&mut self) {
        let queued = self.queued_wants() as u64;
        self.counters.peak_queued_wants = self.counters.peak_queued_wants.max(queued);
    }

    /// Records a sign of life from `peer`.
    fn heard_from(&mut self, peer: PeerId) {
        let bytes = self.bytes.received();
        self.last_heard.insert(peer, (Instant::now(), bytes));
    }

    /// Starts a fresh report for `peer`, so a `hedgerow sync` reports only its own exchange.
    pub(crate) fn fresh_report(&mut self, peer: PeerId) {
        self.reports.remove(&peer);
    }

    /// Answers `hedgerow sync` callers whose peer has no pull left.
    pub(crate) fn complete_waiters(&mut self) {
        let now = Instant::now();
        let sessions = &self.sessions;
        let mut remaining = Vec::new();
        for waiter in self.waiters.drain(..) {
            let interrupted = &self.interrupted;
            let postponed = &self.postponed;
            let done = match waiter.peer {
                Some(peer) => {
                    waiter.started
                        && !sessions.keys().any(|(p, _)| *p == peer)
                        && !interrupted.keys().any(|(p, _)| *p == peer)
                        && !postponed.iter().any(|(p, _)| *p == peer)
                }
                None => false,
            };
            if done || now >= waiter.deadline {
                let mut report = waiter
                    .peer
                    .and_then(|p| self.reports.remove(&p))
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
                let _ = waiter.reply.send(report);
            } else {
                remaining.push(waiter);
            }
        }
        self.waiters = remaining;
    }

    fn on_sync_response(&mut self, flight: InFlight, bytes: Vec<u8>, asked: &HashSet<IdPrefix>) {
        let InFlight {
            peer,
            commons,
            sent_at,
            budget,
        } = flight;
        self.heard_from(peer);
        let link = self.links.entry(peer).or_default();
        link.on_response(bytes.len(), sent_at.elapsed(), budget);
        let budget = link.budget();
        tracing::debug!(
            "sync response from {peer}: {} B in {:?}; next budget {budget}",
            bytes.len(),
            sent_at.elapsed()
        );
        if let Some(session) = self.sessions.get_mut(&(peer, commons)) {
            session.set_budget(budget);
        }
        let response = match SyncResponse::from_bytes(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.misbehaved(peer, "malformed-response");
                self.finish_pull(peer, commons, &format!("malformed response: {e}"));
                return;
            }
        };
        match response {
            SyncResponse::InSync => {
                self.reports.entry(peer).or_default().in_sync += 1;
                if let Some(s) = self.sessions.get_mut(&(peer, commons)) {
                    s.stats.round_trips += 1;
                }
                self.finish_pull(peer, commons, "in sync");
            }
            SyncResponse::NotJoined => {
                self.finish_pull(peer, commons, "peer does not replicate this commons")
            }
            SyncResponse::Refused { reason } => {
                self.reports
                    .entry(peer)
                    .or_default()
                    .errors
                    .push(reason.clone());
                self.finish_pull(peer, commons, &format!("refused: {reason}"));
            }
            SyncResponse::Inventory { genesis, docs } => {
                if !self.replicas.holds(&commons).unwrap_or(false) {
                    if !self.wanted.contains(&commons) || genesis.body.id() != commons {
                        self.finish_pull(peer, commons, "not joined");
                        return;
                    }
                    if let Err(e) = self.replicas.join_commons(&genesis) {
                        self.misbehaved(peer, &rejection_kind(&e));
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                    self.wanted.remove(&commons);
                    if let Err(e) = self
                        .replicas
                        .store()
                        .unwant_commons(&commons)
                        .map_err(NodeError::from)
                        .and_then(|()| self.replicas.commit())
                    {
                        self.store_failed(&e);
                    }
                    self.subscribe_all();
                    // Our profile in the commons, made by the join.
                    self.publish_outbox();
                }
                // Clocks only for the documents whose digest differs from the peer's.
                let theirs: HashMap<IdPrefix, HeadsDigest> = docs.iter().copied().collect();
                let differs = |p: &IdPrefix, d: &HeadsDigest| theirs.get(p).is_some_and(|t| t != d);
                let local = match self.replicas.local_docs(&commons, differs) {
                    Ok(local) => local,
                    Err(e) => {
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                };
                let step = match self.sessions.get_mut(&(peer, commons)) {
                    Some(session) => session.on_inventory(&docs, &local),
                    None => PullStep::Done,
                };
                self.note_queued_wants();
                self.follow(peer, commons, step);
            }
            SyncResponse::Summary { buckets, digests } => {
                let local = match self.replicas.local_docs(&commons, |_, _| false) {
                    Ok(local) => local,
                    Err(e) => {
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                };
                let step = match self.sessions.get_mut(&(peer, commons)) {
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
                        self.misbehaved(peer, "unrequested-document");
                        continue;
                    }
                    match self.replicas.ingest_payload(&commons, item) {
                        Ok(n) => {
                            stored += n;
                        }
                        Err(e @ NodeError::Store(_)) => {
                            self.store_failed(&e);
                            self.finish_pull(peer, commons, &format!("store failed: {e}"));
                            return;
                        }
                        Err(NodeError::Rejected(Rejection::MissingDependencies { .. }))
                            if self
                                .replicas
                                .store()
                                .doc_genesis(&item.doc)
                                .ok()
                                .flatten()
                                .is_some()
                                && self
                                    .sessions
                                    .get_mut(&(peer, commons))
                                    .is_some_and(|s| s.refetch_whole(id_prefix(&item.doc))) =>
                        {
                            // Our clock matched changes we do not hold: the peer holds the
                            // other twin of an equivocation. The whole document settles it.
                            tracing::info!("asking {peer} for all of document {}", item.doc);
                        }
                        Err(e) => {
                            tracing::info!("refused document {} from {peer}: {e}", item.doc);
                            self.reports
                                .entry(peer)
                                .or_default()
                                .errors
                                .push(format!("document {}: {e}", item.doc));
                            self.refused(peer, &e);
                        }
                    }
                }
                // Durable before asking for more: a cut-off sync keeps what it got.
                if let Err(e) = self.replicas.commit() {
                    self.store_failed(&e);
                    self.finish_pull(peer, commons, &format!("store failed: {e}"));
                    return;
                }
                if stored > 0 {
                    self.news.entry(commons).or_default().insert(peer);
                }
                self.counters.changes_received += stored as u64;
                self.counters.docs_received += items.len() as u64;
                let report = self.reports.entry(peer).or_default();
                report.changes_received += stored as u64;
                report.docs_received += items.len() as u64;
                let deferred_set: HashSet<&IdPrefix> = deferred.iter().collect();
                let local = match self
                    .replicas
                    .local_docs(&commons, |p, _| deferred_set.contains(p))
                {
                    Ok(local) => local,
                    Err(e) => {
                        self.finish_pull(peer, commons, &e.to_string());
                        return;
                    }
                };
                let step = match self.sessions.get_mut(&(peer, commons)) {
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

    fn follow(&mut self, peer: PeerId, commons: CommonsId, step: PullStep) {
        match step {
            PullStep::Send(request) => self.send(peer, commons, request),
            PullStep::Done => self.finish_pull(peer, commons, "synced"),
        }
    }

    fn on_sync_request(
        &mut self,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
    ) {
        let now = Instant::now();
        let response = if !self.peers.allow_request(peer, now) {
            self.counters.reject("rate-limited");
            self.misbehaved(peer, "rate-limited");
            SyncResponse::Refused {
                reason: "too many requests; slow down".into(),
            }
        } else {
            match SyncRequest::from_bytes(&bytes).map(|r| (validate_request(&r), r)) {
                Ok((Err(invalid), _)) => {
                    self.misbehaved(peer, invalid.kind());
                    SyncResponse::Refused {
                        reason: invalid.to_string(),
                    }
                }
                Ok((Ok(()), request)) => {
                    match request {
                        SyncRequest::Fetch { .. } => {
                            self.fetched_by.insert(peer, now);
                        }
                        SyncRequest::Hello { .. } => self.start_postponed(peer),
                        SyncRequest::Entries { .. } => {}
                    }
                    let response = respond(&mut self.replicas, &request);
                    if let SyncResponse::Docs { items, .. } = &response {
                        self.counters.docs_sent += items.len() as u64;
                        self.reports.entry(peer).or_default().docs_sent += items.len() as u64;
                    }
                    self.counters.requests_answered += 1;
                    response
                }
                Err(e) => {
                    self.misbehaved(peer, "malformed-request");
                    SyncResponse::Refused {
                        reason: format!("malformed request: {e}"),
                    }
                }
            }
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response.to_bytes());
    }

    /// Counts a refused item from `peer`, and holds it against the peer only when it is the
    /// peer's own offence: validly signed content that this node refuses for what it says
    /// ([`is_content_refusal`]) is counted, never penalised. The peer may be an honest relay,
    /// and since a node's peer id is its own network key (not its author key) nobody can tell
    /// whether the peer wrote it; floods of such content meet the live rate limits instead.
    /// Returns whether it was an offence.
    fn refused(&mut self, peer: PeerId, error: &NodeError) -> bool {
        let kind = rejection_kind(error);
        if !is_content_refusal(error) {
            self.misbehaved(peer, &kind);
            true
        } else {
            self.counters.reject(&kind);
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
    fn misbehaved(&mut self, peer: PeerId, reason: &str) {
        if reason != "rate-limited" {
            self.counters.reject(reason);
        }
        let ip = self.connected.get(&peer).and_then(ip_of);
        match self.peers.penalise(peer, ip, Instant::now()) {
            Penalty::Counted => {}
            Penalty::PeerBanned => {
                tracing::warn!("disconnecting {peer}: too much invalid data ({reason})");
                self.counters.peers_banned += 1;
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Penalty::AddressBanned => {
                tracing::warn!(
                    "disconnecting every peer at {ip:?}: too much invalid data from it ({reason})"
                );
                self.counters.peers_banned += 1;
                self.counters.addresses_banned += 1;
                let at_ip: Vec<PeerId> = self
                    .connected
                    .iter()
                    .filter(|(_, a)| ip_of(a) == ip)
                    .map(|(p, _)| *p)
                    .collect();
                for peer in at_ip {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
        }
    }

    // ---- gossip ----

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        self.bytes.record_gossip_received(message.data.len());
        let acceptance = match Gossip::from_bytes(&message.data) {
            Err(_) => {
                self.misbehaved(source, "malformed-gossip");
                gossipsub::MessageAcceptance::Reject
            }
            Ok(Gossip::Announce { commons, digest }) => {
                let held = self.replicas.holds(&commons).unwrap_or(false);
                if (held && self.local_digest(&commons) != digest) || self.wanted.contains(&commons)
                {
                    self.start_pull(source, commons);
                }
                gossipsub::MessageAcceptance::Accept
            }
            Ok(Gossip::Change(live)) => {
                let commons = live.envelope.commons;
                if message.topic != commons_topic(&commons.to_string()).hash() {
                    self.misbehaved(source, "wrong-topic");
                    gossipsub::MessageAcceptance::Reject
                } else if !self
                    .peers
                    .allow_live(source, live.envelope.author, Instant::now())
                {
                    // Over its author's or its relay's rate: dropped unverified, unforwarded;
                    // a pull brings it later if it is real. No offence (relays forward floods).
                    self.counters.reject("live-rate-limited");
                    self.start_pull(source, commons);
                    gossipsub::MessageAcceptance::Ignore
                } else if self.pending_from.get(&source).copied().unwrap_or(0)
                    >= MAX_PENDING_PER_PEER
                {
                    self.counters.reject("pending-per-peer");
                    self.start_pull(source, commons);
                    gossipsub::MessageAcceptance::Ignore
                } else {
                    match self.replicas.ingest_live(&live) {
                        Ok(LiveOutcome::Applied(n)) => match self.replicas.commit() {
                            Ok(()) => {
                                self.counters.live_received += 1;
                                self.counters.changes_received += n as u64;
                                gossipsub::MessageAcceptance::Accept
                            }
                            // Not durable: neither acknowledged nor forwarded.
                            Err(e) => {
                                self.store_failed(&e);
                                gossipsub::MessageAcceptance::Ignore
                            }
                        },
                        Ok(LiveOutcome::Duplicate) => gossipsub::MessageAcceptance::Ignore,
                        Ok(LiveOutcome::Excluded) => {
                            // A validly signed losing twin: kept as evidence, never forwarded,
                            // and no fault of the peer that relayed it.
                            let _ = self.replicas.commit();
                            self.counters.excluded_received += 1;
                            gossipsub::MessageAcceptance::Ignore
                        }
                        Ok(LiveOutcome::Pending) => {
                            // Verified but its history is missing here: held, not forwarded
                            // (neighbours could not apply it either), and the history is
                            // fetched from the sender.
                            *self.pending_from.entry(source).or_insert(0) += 1;
                            self.counters.live_pending += 1;
                            self.start_pull(source, commons);
                            gossipsub::MessageAcceptance::Ignore
                        }
                        Err(NodeError::UnknownDoc { .. }) => {
                            self.start_pull(source, commons);
                            gossipsub::MessageAcceptance::Ignore
                        }
                        Err(NodeError::UnknownCommons(_)) => {
                            if self.wanted.contains(&commons) {
                                self.start_pull(source, commons);
                            }
                            gossipsub::MessageAcceptance::Ignore
                        }
                        Err(e @ NodeError::Store(_)) => {
                            self.store_failed(&e);
                            gossipsub::MessageAcceptance::Ignore
                        }
                        Err(
                            e @ NodeError::Rejected(
                                hedgerow_protocol::replica::Rejection::TooManyPending,
                            ),
                        ) => {
                            // Its history comes by pull instead.
                            self.refused(source, &e);
                            self.start_pull(source, commons);
                            gossipsub::MessageAcceptance::Ignore
                        }
                        Err(e) => {
                            tracing::info!("refused live change from {source}: {e}");
                            if self.refused(source, &e) {
                                gossipsub::MessageAcceptance::Reject
                            } else {
                                gossipsub::MessageAcceptance::Ignore
                            }
                        }
                    }
                }
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }

    // ---- swarm events ----

    /// Handles one swarm event.
    pub fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = Instant::now();
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("listening on {address}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                if let Some(target) = self.dialing.remove(&connection_id) {
                    self.peers.dial_succeeded(&target, now);
                }
                let addr = endpoint.get_remote_address().clone();
                let ip = ip_of(&addr);
                if self.peers.is_banned(&peer_id, ip, now) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if let Some(ip) = ip {
                    if !self.peers.connection_opened(ip) {
                        self.counters.reject("too-many-connections");
                        let _ = self.swarm.close_connection(connection_id);
                        return;
                    }
                    self.counted.insert(connection_id, ip);
                }
                if endpoint.is_dialer() {
                    let known = KnownPeer {
                        addrs: vec![addr.to_string()],
                        last_seen: crate::replicas::now_unix(),
                    };
                    if let Err(e) = self.replicas.store().put_peer(&peer_id.to_string(), &known) {
                        self.store_failed(&e);
                    }
                }
                let first = !self.connected.contains_key(&peer_id);
                self.connected.insert(peer_id, addr.clone());
                self.heard_from(peer_id);
                for waiter in &mut self.waiters {
                    if waiter.peer.is_none() && strip_p2p(&waiter.addr) == strip_p2p(&addr) {
                        waiter.peer = Some(peer_id);
                    }
                }
                if first {
                    self.retry_at.retain(|(p, _), _| *p != peer_id);
                    self.pull_everything(peer_id);
                    for waiter in &mut self.waiters {
                        if waiter.peer == Some(peer_id) {
                            waiter.started = true;
                        }
                    }
                    self.complete_waiters();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                connection_id,
                ..
            } => {
                if let Some(ip) = self.counted.remove(&connection_id) {
                    self.peers.connection_closed(ip);
                }
                if num_established == 0 {
                    if let Some(addr) = self.connected.remove(&peer_id) {
                        self.peers.disconnected(&addr, now);
                        self.peers
                            .disconnected(&addr.with(Protocol::P2p(peer_id)), now);
                    }
                    let stale: Vec<(PeerId, CommonsId)> = self
                        .sessions
                        .keys()
                        .filter(|(p, _)| *p == peer_id)
                        .copied()
                        .collect();
                    if !stale.is_empty() {
                        self.links.entry(peer_id).or_default().on_failure();
                    }
                    for (peer, commons) in stale {
                        self.interrupt_pull(peer, commons, "connection closed");
                    }
                    self.retry_at.retain(|(p, _), _| *p != peer_id);
                    // Someone waits for this sync (`hedgerow sync`): dial the peer again until
                    // the pulls complete or the wait times out.
                    let waited: Vec<Multiaddr> = self
                        .waiters
                        .iter()
                        .filter(|w| w.peer == Some(peer_id))
                        .map(|w| w.addr.clone())
                        .collect();
                    for addr in waited {
                        self.peers.add_target(addr.clone(), now);
                        self.peers.disconnected(&addr, now);
                    }
                    self.peer_gone(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                tracing::debug!("dial failed: {error}");
                if let Some(addr) = self.dialing.remove(&connection_id) {
                    self.peers.dial_failed(&addr, now);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
            })) => {
                self.on_peer_subscribed(peer_id, topic);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm.add_peer_address(peer, addr.clone());
                    if !self.connected.contains_key(&peer)
                        && !self.peers.is_banned(&peer, ip_of(&addr), now)
                    {
                        let _ = self.swarm.dial(addr.with(Protocol::P2p(peer)));
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.on_ping(event),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            _ => {}
        }
    }

    fn on_sync_event(&mut self, event: SyncEvent) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.on_sync_request(peer, request, channel);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let asked = self.asked.remove(&request_id).unwrap_or_default();
                    if let Some(flight) = self.in_flight.remove(&request_id) {
                        self.on_sync_response(flight, response, &asked);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                connection_id,
            } => {
                self.asked.remove(&request_id);
                let Some(flight) = self.in_flight.remove(&request_id) else {
                    return;
                };
                if !self.sessions.contains_key(&(flight.peer, flight.commons)) {
                    // Already counted when its connection closed.
                    return;
                }
                match error {
                    request_response::OutboundFailure::UnsupportedProtocols => {
                        self.reports
                            .entry(peer)
                            .or_default()
                            .errors
                            .push(format!("request failed: {error}"));
                        self.finish_pull(flight.peer, flight.commons, &format!("failed: {error}"));
                    }
                    request_response::OutboundFailure::Timeout
                    | request_response::OutboundFailure::Io(_) => {
                        if let request_response::OutboundFailure::Io(e) = &error {
                            if let Some(kind) = frame_error_kind(e) {
                                self.misbehaved(peer, kind);
                            }
                        }
                        // A stalled exchange means a dead link more often than a slow peer:
                        // drop this connection so the peer is redialled on a fresh one.
                        self.links.entry(peer).or_default().on_failure();
                        let _ = self.swarm.close_connection(connection_id);
                        self.interrupt_pull(flight.peer, flight.commons, &error.to_string());
                    }
                    request_response::OutboundFailure::ConnectionClosed
                    | request_response::OutboundFailure::DialFailure => {
                        self.links.entry(peer).or_default().on_failure();
                        self.interrupt_pull(flight.peer, flight.commons, &error.to_string());
                    }
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // A request frame that failed to read never gets here (libp2p reports no
                // event for it); the codec counts those itself.
                tracing::debug!("inbound sync failure from {peer}: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_ping(&mut self, event: ping::Event) {
        let ping::Event {
            peer,
            connection,
            result,
        } = event;
        match result {
            Ok(_) => self.heard_from(peer),
            Err(e) => {
                let now = Instant::now();
                let (at, bytes) = self.last_heard.get(&peer).copied().unwrap_or((now, 0));
                // Sync bytes still arriving while a response is in flight count as life.
                let receiving = self.bytes.received() != bytes
                    && self.in_flight.values().any(|f| f.peer == peer);
                if receiving {
                    self.heard_from(peer);
                } else if now.saturating_duration_since(at) >= SILENT_LIMIT {
                    tracing::info!("closing silent connection to {peer}: {e}");
                    let _ = self.swarm.close_connection(connection);
                }
            }
        }
    }

    /// Starts the pulls held back while `peer` was fetching from us.
    fn start_postponed(&mut self, peer: PeerId) {
        let held: Vec<(PeerId, CommonsId)> = self
            .postponed
            .iter()
            .filter(|(p, _)| *p == peer)
            .copied()
            .collect();
        for (peer, commons) in held {
            self.start_pull(peer, commons);
        }
    }

    /// Re-runs interrupted pulls that are due on connections that stayed up, starts held-back
    /// pulls from peers that stopped fetching from us, and forgets stale interrupted pulls.
    fn retry_due(&mut self, now: Instant) {
        let due: Vec<(PeerId, CommonsId)> = self
            .retry_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| *k)
            .collect();
        for (peer, commons) in due {
            self.retry_at.remove(&(peer, commons));
            if self.connected.contains_key(&peer) {
                self.start_pull(peer, commons);
            }
        }
        let quiet: Vec<(PeerId, CommonsId)> = self
            .postponed
            .iter()
            .filter(|(peer, _)| {
                self.fetched_by
                    .get(peer)
                    .is_none_or(|at| now.saturating_duration_since(*at) >= FETCH_QUIET)
            })
            .copied()
            .collect();
        for (peer, commons) in quiet {
            self.postponed.remove(&(peer, commons));
            if self.connected.contains_key(&peer) {
                self.start_pull(peer, commons);
            }
        }
        self.interrupted
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < INTERRUPTED_TTL);
        self.fetched_by
            .retain(|_, at| now.saturating_duration_since(*at) < CATCHING_UP);
        self.peers.prune(now);
    }

    /// Dials every bootstrap or remembered address that is due, and re-runs interrupted pulls.
    pub fn redial(&mut self) {
        let now = Instant::now();
        self.retry_due(now);
        let connected: Vec<Multiaddr> = self.connected.values().cloned().collect();
        let due = self.peers.due(now, |addr| {
            connected.iter().any(|c| strip_p2p(c) == strip_p2p(addr))
        });
        for addr in due {
            self.dial(addr);
        }
    }

    /// Dials `addr`, tracking the attempt for the backoff.
    pub fn dial(&mut self, addr: Multiaddr) {
        let opts: libp2p::swarm::dial_opts::DialOpts = addr.clone().into();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dialing.insert(id, addr);
            }
            Err(e) => {
                tracing::debug!("cannot dial {addr}: {e}");
                self.peers.dial_failed(&addr, Instant::now());
            }
        }
    }

    /// `hedgerow status` as JSON.
    pub fn status(&mut self) -> Value {
        let listen: Vec<String> = self.swarm.listeners().map(|a| a.to_string()).collect();
        let connected: Vec<Value> = self
            .connected
            .iter()
            .map(|(peer, addr)| {
                let last = self.last_sync.get(peer);
                json!({
                    "peer": peer.to_string(),
                    "addr": addr.to_string(),
                    "syncing": self.sessions.keys().any(|(p, _)| p == peer),
                    "interrupted": self.interrupted.keys().any(|(p, _)| p == peer),
                    "postponed": self.postponed.iter().any(|(p, _)| p == peer),
                    "sync_budget": self.links.get(peer).map(LinkEstimate::budget),
                    "last_sync_at": last.map(|l| l.0),
                    "last_sync": last.map(|l| l.1.clone()),
                })
            })
            .collect();
        let commons: Vec<Value> = self
            .replicas
            .commons_list()
            .unwrap_or_default()
            .iter()
            .map(|g| json!({"id": g.body.id().to_string(), "name": g.body.name}))
            .collect();
        let (transport_in, transport_out) = self.bytes.transport_bytes();
        let mut counters = self.counters.clone();
        for (reason, count) in self.bytes.refused_request_frames() {
            if count > 0 {
                *counters.rejected.entry(reason.to_string()).or_insert(0) += count;
            }
        }
        json!({
            "peer_id": self.swarm.local_peer_id().to_string(),
            "author": self.replicas.author().to_string(),
            "listen": listen,
            "connected": connected,
            "commons": commons,
            "wanted": self.wanted.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "rejected_total": counters.rejected_total(),
            "excluded_changes": self.replicas.store().excluded_count(),
            "counters": counters,
            "banned_peers": self.peers.banned_count(Instant::now()),
            "banned_addresses": self.peers.banned_addresses(Instant::now()),
            "queued_wants": self.queued_wants(),
            "tracked_peer_entries": self.peers.tracked() + self.links.len() + self.fetched_by.len()
                + self.last_heard.len() + self.reports.len() + self.interrupted.len(),
            "bytes": {
                "sync_sent": self.bytes.sent(),
                "sync_received": self.bytes.received(),
                "gossip_published": self.bytes.gossip_published(),
                "gossip_received": self.bytes.gossip_received(),
                "transport_in": transport_in,
                "transport_out": transport_out,
            },
            "store_bytes": self.replicas.store().size_on_disk(),
        })
    }

    /// Polls the swarm for its next event.
    pub async fn next_event(&mut self) -> SwarmEvent<BehaviourEvent> {
        self.swarm.select_next_some().await
    }
}

/// The rejection reason of a sync frame the peer got wrong (too long, or cut short);
/// `None` for other I/O failures and for frames this node refused to write.
fn frame_error_kind(error: &std::io::Error) -> Option<&'static str> {
    if error.kind() == std::io::ErrorKind::InvalidInput {
        return None;
    }
    match error.get_ref()?.downcast_ref::<FrameError>()? {
        FrameError::TooLarge { .. } => Some("oversized-frame"),
        FrameError::Truncated { .. } => Some("truncated-frame"),
        // A dead link, not a lie.
        FrameError::Stalled { .. } => None,
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
