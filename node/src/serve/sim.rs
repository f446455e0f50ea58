//! A deterministic simulator of many nodes: real [`Service`]s over real replicas (sled stores
//! in temp dirs), wired together in memory with a virtual clock and a seeded network that
//! delays, drops, cuts and reorders. No socket, no sleep: a scenario of minutes of node time
//! runs in a fraction of a second of wall time.
//!
//! The network stands in for libp2p: a dial connects two nodes (or fails while they are cut
//! apart), a request reaches its peer after a random delay (so messages overtake each other),
//! a dropped request fails as a timeout after [`REQUEST_TIMEOUT`], and gossip floods to the
//! subscribed neighbours of every node that accepts it (as gossipsub forwards).

use super::peers::PeerBook;
use super::service::{
    Command, Failure, InboundId, Input, Output, Reply, RequestId, Service, ServiceConfig, SyncOrder,
};
use super::stats::SyncReport;
use crate::home::{Home, LocalProfile};
use crate::net::ByteCounters;
use crate::replicas::Replicas;
use crate::serve::status::NodeStatus;
use hedgerow_protocol::schema::{DocKind, Edit, NewDocument};
use hedgerow_protocol::sync::{HeadsDigest, SyncResponse, SyncSource, MAX_WANTS_PER_FETCH};
use hedgerow_protocol::{CommonsId, DocId};
use libp2p::gossipsub::{MessageAcceptance, MessageId, TopicHash};
use libp2p::swarm::ConnectionId;
use libp2p::{identity::Keypair, Multiaddr, PeerId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a dropped request takes to fail (libp2p's request timeout does this).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A small seeded generator (SplitMix64): the same seed gives the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the network carries to a node at a given time.
#[derive(Debug)]
enum Delivery {
    Input(usize, Input),
    /// A request reaches `to`, sent by `from` with its id there.
    Request {
        from: usize,
        to: usize,
        id: RequestId,
        bytes: Vec<u8>,
        sent_at: Instant,
    },
    /// A response reaches `to` (the requester), if the link it came on is still up.
    Response {
        from: usize,
        to: usize,
        id: RequestId,
        bytes: Vec<u8>,
        sent_at: Instant,
    },
    /// A dial from `from` reaches `to`.
    Connect {
        from: usize,
        to: usize,
        dialed: Multiaddr,
    },
    /// The link between two nodes closes.
    Close(usize, usize),
}

/// One simulated node.
struct Node {
    service: Service<Replicas>,
    peer: PeerId,
    addr: Multiaddr,
    wake: Instant,
    subscribed: HashSet<TopicHash>,
    seen: HashSet<MessageId>,
    /// Speaks only `/hedgerow/sync/1`, as a node of an earlier release (its peers learn it
    /// from identify, simulated on connect).
    sync_v1_only: bool,
    /// Speaks up to `/hedgerow/sync/2`, as the release before the compact forms.
    sync_v2_only: bool,
    /// Speaks up to `/hedgerow/sync/3`, as the release before the sketch.
    sync_v3_only: bool,
    /// Sketches (`/hedgerow/sync/4`) and bucket summaries this node answered with.
    sketches_sent: usize,
    summaries_sent: usize,
    /// The most documents any fetch this node sent named.
    largest_fetch: usize,
    /// Fetches this node sent in the compact form of `/hedgerow/sync/3`.
    fetches_v3: usize,
    /// Sync bytes this node sent: requests and responses.
    sync_bytes_sent: usize,
    _dir: tempfile::TempDir,
}

/// An open link between two nodes (one connection, whoever dialed).
#[derive(Debug, Clone, Copy)]
struct Link {
    connection: ConnectionId,
}

/// Many nodes, a virtual clock and a seeded network.
struct Sim {
    nodes: Vec<Node>,
    start: Instant,
    now: Instant,
    rng: Rng,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    links: HashMap<(usize, usize), Link>,
    /// Pairs that cannot reach each other (a partition).
    cut: HashSet<(usize, usize)>,
    /// Requests delivered and not yet answered: (responder, its id) -> (requester, their id,
    /// when they sent it).
    inbound: HashMap<(usize, InboundId), (usize, RequestId, Instant)>,
    next_inbound: u64,
    next_connection: usize,
    /// Gossip by id: topic and bytes, and who published it.
    gossip: HashMap<MessageId, (TopicHash, Vec<u8>)>,
    /// Percent of requests and responses dropped.
    drop_percent: u64,
    /// Largest one-way delay.
    max_delay: Duration,
    replies: HashMap<(usize, u64), Reply>,
    next_token: u64,
    /// Dials each node made, for the backoff scenario.
    dials: Vec<u32>,
    /// Timer inputs each node got.
    timers: Vec<u32>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    /// `n` nodes with empty stores, none connected.
    fn new(n: usize, seed: u64) -> Self {
        let start = Instant::now();
        let mut sim = Sim {
            nodes: Vec::new(),
            start,
            now: start,
            rng: Rng(seed),
            queue: BTreeMap::new(),
            seq: 0,
            links: HashMap::new(),
            cut: HashSet::new(),
            inbound: HashMap::new(),
            next_inbound: 0,
            next_connection: 0,
            gossip: HashMap::new(),
            drop_percent: 0,
            max_delay: Duration::from_millis(80),
            replies: HashMap::new(),
            next_token: 0,
            dials: vec![0; n],
            timers: vec![0; n],
        };
        for i in 0..n {
            // In memory where there is a tmpfs: the stores' flushes cost nothing there.
            let shm = std::path::Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                tempfile::tempdir_in(shm)
            } else {
                tempfile::tempdir()
            }
            .expect("temp dir");
            let profile = LocalProfile {
                name: format!("node {i}"),
                ..LocalProfile::default()
            };
            let home = Home::init(&dir.path().join("home"), &profile).expect("home");
            let replicas = Replicas::open(&home).expect("store");
            let mut seed_key = [0u8; 32];
            seed_key[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let peer = Keypair::ed25519_from_bytes(seed_key)
                .expect("key")
                .public()
                .to_peer_id();
            let addr: Multiaddr = format!("/ip4/10.0.{}.{}/tcp/4717", i / 200, i % 200 + 1)
                .parse()
                .expect("addr");
            let service = Service::new(
                ServiceConfig {
                    local_peer: peer,
                    sync_interval: Duration::from_secs(60),
                },
                replicas,
                ByteCounters::new(),
                PeerBook::default(),
                start,
            )
            .expect("service");
            sim.nodes.push(Node {
                service,
                peer,
                addr,
                wake: start,
                subscribed: HashSet::new(),
                seen: HashSet::new(),
                sync_v1_only: false,
                sync_v2_only: false,
                sync_v3_only: false,
                sketches_sent: 0,
                summaries_sent: 0,
                largest_fetch: 0,
                fetches_v3: 0,
                sync_bytes_sent: 0,
                _dir: dir,
            });
        }
        sim
    }

    /// Starts every service (call once the stores are set up).
    fn start(&mut self) {
        for i in 0..self.nodes.len() {
            let outputs = self.nodes[i].service.start(self.now);
            self.apply(i, outputs);
        }
    }

    fn local(&mut self, i: usize) -> &mut Replicas {
        self.nodes[i].service.local_mut()
    }

    fn index_of(&self, peer: &PeerId) -> Option<usize> {
        self.nodes.iter().position(|n| n.peer == *peer)
    }

    fn schedule(&mut self, after: Duration, delivery: Delivery) {
        self.seq += 1;
        self.queue.insert((self.now + after, self.seq), delivery);
    }

    fn delay(&mut self) -> Duration {
        let max = self.max_delay.as_millis() as u64;
        Duration::from_millis(1 + self.rng.below(max))
    }

    /// Feeds one input to node `i` now and carries out its outputs.
    fn input(&mut self, i: usize, input: Input) {
        if matches!(input, Input::Timer) {
            self.timers[i] += 1;
        }
        let outputs = self.nodes[i].service.handle(input, self.now);
        self.apply(i, outputs);
    }

    fn apply(&mut self, i: usize, outputs: Vec<Output>) {
        for output in outputs {
            self.carry_out(i, output);
        }
    }

    fn carry_out(&mut self, i: usize, output: Output) {
        match output {
            // Simulated nodes hold no blobs (blob transfers have their own tests).
            Output::SendBlob { .. } | Output::RespondBlob { .. } | Output::Dht(_) => {}
            Output::Send { peer, id, bytes } => {
                let Some(j) = self.index_of(&peer) else {
                    return;
                };
                let node = &mut self.nodes[i];
                node.sync_bytes_sent += bytes.len();
                match hedgerow_protocol::sync::SyncRequest::from_bytes(&bytes) {
                    Ok(hedgerow_protocol::sync::SyncRequest::Fetch { wants, .. }) => {
                        node.largest_fetch = node.largest_fetch.max(wants.len());
                    }
                    Ok(hedgerow_protocol::sync::SyncRequest::FetchV3 { wants, .. }) => {
                        node.largest_fetch = node.largest_fetch.max(wants.len());
                        node.fetches_v3 += 1;
                    }
                    _ => {}
                }
                let delay = self.delay();
                if !self.links.contains_key(&pair(i, j)) {
                    let failure = Failure::Lost("connection closed".into());
                    self.fail(i, id, failure, delay);
                } else if self.rng.chance(self.drop_percent) {
                    let failure = Failure::Stalled {
                        offence: None,
                        why: "request timed out".into(),
                    };
                    self.fail(i, id, failure, REQUEST_TIMEOUT);
                } else {
                    self.schedule(
                        delay,
                        Delivery::Request {
                            from: i,
                            to: j,
                            id,
                            bytes,
                            sent_at: self.now,
                        },
                    );
                }
            }
            Output::Respond { id, bytes } => {
                let Some((to, their_id, sent_at)) = self.inbound.remove(&(i, id)) else {
                    return;
                };
                self.nodes[i].sync_bytes_sent += bytes.len();
                match SyncResponse::from_bytes(&bytes) {
                    Ok(SyncResponse::Sketch { .. }) => self.nodes[i].sketches_sent += 1,
                    Ok(SyncResponse::Summary { .. }) => self.nodes[i].summaries_sent += 1,
                    _ => {}
                }
                if self.rng.chance(self.drop_percent) {
                    let failure = Failure::Stalled {
                        offence: None,
                        why: "response timed out".into(),
                    };
                    self.fail(to, their_id, failure, REQUEST_TIMEOUT);
                } else {
                    let delay = self.delay();
                    self.schedule(
                        delay,
                        Delivery::Response {
                            from: i,
                            to,
                            id: their_id,
                            bytes,
                            sent_at,
                        },
                    );
                }
            }
            Output::Publish {
                topic, bytes, live, ..
            } => {
                let id = MessageId::new(blake3::hash(&bytes).as_bytes());
                if !self.nodes[i].seen.insert(id.clone()) {
                    return;
                }
                self.nodes[i].service.published(live);
                self.gossip.insert(id.clone(), (topic.hash(), bytes));
                self.forward(i, None, &id);
            }
            Output::Validate {
                id,
                source,
                acceptance,
            } => {
                if acceptance == MessageAcceptance::Accept {
                    let from = self.index_of(&source);
                    self.forward(i, from, &id);
                }
            }
            Output::Unsubscribe(topic) => {
                self.nodes[i].subscribed.remove(&topic.hash());
            }
            Output::Subscribe { topic, .. } => {
                let topic = topic.hash();
                self.nodes[i].subscribed.insert(topic.clone());
                let peer = self.nodes[i].peer;
                for j in self.neighbours(i) {
                    let delay = self.delay();
                    let input = Input::Subscribed {
                        peer,
                        topic: topic.clone(),
                    };
                    self.schedule(delay, Delivery::Input(j, input));
                }
            }
            Output::Dial(addr) => {
                self.dials[i] += 1;
                let target = super::service::strip_p2p(&addr);
                let j = self.nodes.iter().position(|n| n.addr == target);
                let delay = self.delay();
                let delivery = match j {
                    Some(j) if j != i => Delivery::Connect {
                        from: i,
                        to: j,
                        dialed: addr,
                    },
                    _ => Delivery::Input(i, Input::DialFailed(addr, "connection refused".into())),
                };
                self.schedule(delay, delivery);
            }
            // Relays are not simulated; `reach_*` tests below read this output directly.
            Output::ListenVia { .. }
            | Output::StopListeningVia { .. }
            | Output::AddExternal(_)
            | Output::RemoveExternal(_) => {}
            Output::Disconnect(peer) => {
                if let Some(j) = self.index_of(&peer) {
                    self.schedule(Duration::ZERO, Delivery::Close(i, j));
                }
            }
            Output::CloseConnection(connection) => {
                let found = self
                    .links
                    .iter()
                    .find(|(_, l)| l.connection == connection)
                    .map(|(k, _)| *k);
                if let Some((a, b)) = found {
                    self.schedule(Duration::ZERO, Delivery::Close(a, b));
                }
            }
            Output::WakeAt(at) => self.nodes[i].wake = at,
            Output::Reply(token, reply) => {
                self.replies.insert((i, token), reply);
            }
        }
    }

    fn fail(&mut self, i: usize, id: RequestId, failure: Failure, after: Duration) {
        let input = Input::Failure {
            id,
            connection: None,
            failure,
        };
        self.schedule(after, Delivery::Input(i, input));
    }

    fn neighbours(&self, i: usize) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .links
            .keys()
            .filter_map(|&(a, b)| match (a == i, b == i) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// Sends gossip `id` from node `i` to every subscribed neighbour but `from`.
    fn forward(&mut self, i: usize, from: Option<usize>, id: &MessageId) {
        let Some((topic, data)) = self.gossip.get(id).cloned() else {
            return;
        };
        for j in self.neighbours(i) {
            if Some(j) == from || !self.nodes[j].subscribed.contains(&topic) {
                continue;
            }
            if !self.nodes[j].seen.insert(id.clone()) {
                continue;
            }
            let input = Input::Gossip {
                source: self.nodes[i].peer,
                id: id.clone(),
                topic: topic.clone(),
                data: data.clone(),
            };
            let delay = self.delay();
            self.schedule(delay, Delivery::Input(j, input));
        }
    }

    /// Connects `i` (the dialer) and `j` now.
    fn connect(&mut self, i: usize, j: usize, dialed: Option<Multiaddr>) {
        self.next_connection += 1;
        let connection = ConnectionId::new_unchecked(self.next_connection);
        self.links.insert(pair(i, j), Link { connection });
        let (pi, pj) = (self.nodes[i].peer, self.nodes[j].peer);
        let aj = self.nodes[j].addr.clone();
        // The listener sees the dialer from an ephemeral port, not its listen address.
        let ai: Multiaddr = super::service::strip_p2p(&self.nodes[i].addr)
            .iter()
            .map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(_) => libp2p::multiaddr::Protocol::Tcp(
                    40_000 + (self.next_connection % 20_000) as u16,
                ),
                other => other,
            })
            .collect();
        self.input(
            i,
            Input::Connected {
                peer: pj,
                connection,
                addr: aj,
                dialer: true,
                dialed,
            },
        );
        self.input(
            j,
            Input::Connected {
                peer: pi,
                connection,
                addr: ai,
                dialer: false,
                dialed: None,
            },
        );
        // Identify tells each side which sync protocol versions the other speaks.
        for (a, b) in [(i, j), (j, i)] {
            let peer = self.nodes[b].peer;
            let v2 = !self.nodes[b].sync_v1_only;
            let speaks_v3 = |n: &Node| !n.sync_v1_only && !n.sync_v2_only;
            let speaks_v4 = |n: &Node| speaks_v3(n) && !n.sync_v3_only;
            let v3 = speaks_v3(&self.nodes[a]) && speaks_v3(&self.nodes[b]);
            let v4 = speaks_v4(&self.nodes[a]) && speaks_v4(&self.nodes[b]);
            self.input(a, Input::SyncVersion { peer, v2, v3, v4 });
        }
        // Gossipsub tells each side what the other is subscribed to.
        for (a, b) in [(i, j), (j, i)] {
            let peer = self.nodes[b].peer;
            let topics: Vec<TopicHash> = self.nodes[b].subscribed.iter().cloned().collect();
            for topic in topics {
                self.input(a, Input::Subscribed { peer, topic });
            }
        }
    }

    /// Closes the link between `a` and `b`, if up; requests on it fail with it.
    fn disconnect(&mut self, a: usize, b: usize) {
        let Some(link) = self.links.remove(&pair(a, b)) else {
            return;
        };
        for (x, y) in [(a, b), (b, a)] {
            let peer = self.nodes[y].peer;
            self.input(
                x,
                Input::Closed {
                    peer,
                    connection: link.connection,
                    remaining: 0,
                },
            );
        }
    }

    /// Cuts `a` from `b`: their link closes and dials between them fail until [`Sim::heal`].
    fn cut(&mut self, a: usize, b: usize) {
        self.cut.insert(pair(a, b));
        self.disconnect(a, b);
    }

    fn heal_all(&mut self) {
        self.cut.clear();
    }

    /// Makes `i` keep dialing `j` (a bootstrap peer).
    fn target(&mut self, i: usize, j: usize) {
        let addr = self.nodes[j].addr.clone();
        let now = self.now;
        self.nodes[i].service.peers.add_target(addr, now);
        let wake = self.nodes[i].wake.min(now);
        self.nodes[i].wake = wake;
    }

    /// Runs the next event (a delivery or a node's timer); false when nothing is left.
    fn step(&mut self) -> bool {
        let next_delivery = self.queue.keys().next().copied();
        let next_wake = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.wake, i))
            .min();
        match (next_delivery, next_wake) {
            (Some((at, seq)), wake) if wake.is_none_or(|(w, _)| at <= w) => {
                self.now = self.now.max(at);
                let Some(delivery) = self.queue.remove(&(at, seq)) else {
                    return false;
                };
                self.deliver(delivery);
                true
            }
            (_, Some((at, i))) => {
                self.now = self.now.max(at);
                self.input(i, Input::Timer);
                true
            }
            _ => false,
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Input(i, input) => self.input(i, input),
            Delivery::Request {
                from,
                to,
                id,
                bytes,
                sent_at,
            } => {
                if !self.links.contains_key(&pair(from, to)) {
                    self.fail(
                        from,
                        id,
                        Failure::Lost("connection closed".into()),
                        Duration::ZERO,
                    );
                    return;
                }
                self.next_inbound += 1;
                let inbound = InboundId(self.next_inbound);
                self.inbound.insert((to, inbound), (from, id, sent_at));
                let peer = self.nodes[from].peer;
                self.input(
                    to,
                    Input::Request {
                        peer,
                        id: inbound,
                        bytes,
                    },
                );
            }
            Delivery::Response {
                from,
                to,
                id,
                bytes,
                sent_at,
            } => {
                if self.links.contains_key(&pair(from, to)) {
                    let elapsed = self.now - sent_at;
                    // The simulated link delivers a response whole: its transfer is not known
                    // apart from the responder's work.
                    let response = Input::Response {
                        id,
                        bytes,
                        elapsed,
                        transfer: None,
                    };
                    self.input(to, response);
                } else {
                    self.fail(
                        to,
                        id,
                        Failure::Lost("connection closed".into()),
                        Duration::ZERO,
                    );
                }
            }
            Delivery::Connect { from, to, dialed } => {
                let key = pair(from, to);
                if self.cut.contains(&key) || self.links.contains_key(&key) {
                    self.input(from, Input::DialFailed(dialed, "no route".into()));
                } else {
                    self.connect(from, to, Some(dialed));
                }
            }
            Delivery::Close(a, b) => self.disconnect(a, b),
        }
    }

    /// Runs for `span` of virtual time.
    fn run_for(&mut self, span: Duration) {
        let until = self.now + span;
        while self.step_before(until) {}
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds (checked after each event), for at most `span`; whether it held.
    fn run_until(&mut self, span: Duration, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let until = self.now + span;
        loop {
            if done(self) {
                return true;
            }
            if !self.step_before(until) {
                return done(self);
            }
        }
    }

    fn step_before(&mut self, until: Instant) -> bool {
        let next = self
            .queue
            .keys()
            .next()
            .map(|k| k.0)
            .into_iter()
            .chain(self.nodes.iter().map(|n| n.wake))
            .min();
        match next {
            Some(at) if at <= until => self.step(),
            _ => false,
        }
    }

    /// Runs a command on node `i` and returns its reply.
    fn command(&mut self, i: usize, command: Command) -> u64 {
        self.next_token += 1;
        let token = self.next_token;
        self.input(i, Input::Command(token, command));
        token
    }

    fn status(&mut self, i: usize) -> NodeStatus {
        let token = self.command(i, Command::Status);
        match self.replies.remove(&(i, token)) {
            Some(Reply::Status(status)) => *status,
            other => panic!("status failed: {other:?}"),
        }
    }

    fn inventory(&mut self, i: usize, commons: &CommonsId) -> BTreeSet<(DocId, HeadsDigest)> {
        self.local(i)
            .inventory(commons)
            .expect("inventory")
            .into_iter()
            .collect()
    }

    fn converged(&mut self, commons: &CommonsId, nodes: &[usize]) -> bool {
        let first = self.inventory(nodes[0], commons);
        nodes[1..]
            .iter()
            .all(|&i| self.inventory(i, commons) == first)
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

/// Node `owner` creates a commons that every other listed node joins (by its genesis, as a
/// bundle would bring it); the profiles this writes are left to sync, not gossip.
fn commons_for(sim: &mut Sim, owner: usize, members: &[usize]) -> CommonsId {
    let commons = sim
        .local(owner)
        .create_commons("Farm Hack", "")
        .expect("commons");
    let genesis = sim
        .local(owner)
        .store()
        .commons(&commons)
        .expect("read")
        .expect("held");
    for &i in members {
        if i != owner {
            sim.local(i).join_commons(&genesis).expect("join");
        }
    }
    for i in 0..sim.nodes.len() {
        sim.local(i).take_outbox();
    }
    commons
}

/// Node `i` writes `count` designs of about `size` bytes each.
fn designs(sim: &mut Sim, i: usize, commons: CommonsId, count: usize, size: usize) {
    for n in 0..count {
        let design = NewDocument::new(DocKind::Design, format!("Design {n} of node {i}"));
        let text: String = (0..size)
            .map(|k| (b'a' + ((k * 7 + n) % 26) as u8) as char)
            .collect();
        let edit = Edit::Set {
            field: "summary".into(),
            value: text,
        };
        sim.local(i)
            .create_doc(commons, &design, &[edit])
            .expect("design");
    }
    sim.local(i).take_outbox();
    sim.local(i).commit().expect("commit");
}

/// Issue 11: an initial sync of many small documents over a fast link asks a peer of this
/// release for up to 2,048 documents a fetch (responses up to 4 MiB), and a peer of an
/// earlier release (`/hedgerow/sync/1` only) for 256 at most, which it accepts.
///
/// ```text
/// 0 (1,100 designs) ---- 1 (fresh)        0 (1,100 designs, sync/1 only) ---- 2 (fresh)
/// ```
#[test]
fn an_initial_sync_asks_a_v2_peer_for_more_documents_a_fetch() {
    let mut sim = Sim::new(3, 11);
    sim.max_delay = Duration::from_millis(5);
    let commons = commons_for(&mut sim, 0, &[0, 1, 2]);
    designs(&mut sim, 0, commons, 1100, 20);
    sim.start();
    let addr = sim.nodes[0]
        .addr
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(sim.nodes[0].peer));
    let token = sim.command(1, Command::Sync(SyncOrder::new(addr.clone())));
    assert!(sim.run_until(Duration::from_secs(600), |s| s
        .replies
        .contains_key(&(1, token))));
    let Some(Reply::Sync(report)) = sim.replies.remove(&(1, token)) else {
        panic!("no sync report");
    };
    assert!(report.complete, "{report:?}");
    assert!(sim.converged(&commons, &[0, 1]));
    assert!(
        sim.nodes[1].largest_fetch > MAX_WANTS_PER_FETCH,
        "largest fetch {}",
        sim.nodes[1].largest_fetch
    );
    let v2_round_trips = report.round_trips;

    sim.disconnect(0, 1);
    sim.nodes[0].sync_v1_only = true;
    let token = sim.command(2, Command::Sync(SyncOrder::new(addr)));
    assert!(sim.run_until(Duration::from_secs(600), |s| s
        .replies
        .contains_key(&(2, token))));
    let Some(Reply::Sync(report)) = sim.replies.remove(&(2, token)) else {
        panic!("no sync report");
    };
    assert!(report.complete, "{report:?}");
    assert!(sim.converged(&commons, &[0, 2]));
    assert!(sim.nodes[2].largest_fetch <= MAX_WANTS_PER_FETCH);
    assert!(
        v2_round_trips < report.round_trips,
        "{v2_round_trips} round trips with a v2 peer, {} with a v1 peer",
        report.round_trips
    );
}

/// A pull cut off mid-transfer resumes on the next connection from its queue: nothing is
/// fetched twice and no new inventory is needed.
///
/// ```text
/// 0 ==(cut while pulling)== 1   ->   0 ---- 1 (redialled)
/// ```
#[test]
fn an_interrupted_pull_resumes_where_it_stopped() {
    let mut sim = Sim::new(2, 1);
    let commons = commons_for(&mut sim, 0, &[0, 1]);
    designs(&mut sim, 0, commons, 40, 3000);
    sim.start();
    sim.target(1, 0);
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        s.nodes[1].service.counters().docs_received > 0
    }));
    sim.cut(0, 1);
    let status = sim.status(1);
    assert!(status.queued_wants > 0, "{status:?}");
    sim.run_for(Duration::from_secs(20));
    sim.heal_all();
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &[0, 1])),
        "converged after the cut"
    );
    let counters = sim.nodes[1].service.counters().clone();
    assert!(counters.pulls_interrupted >= 1, "{counters:?}");
    // 40 designs and node 0's profile, each received once.
    assert_eq!(counters.docs_received, 41, "{counters:?}");
}

/// Our pull from a peer that is fetching from us waits until the peer is quiet, and then
/// runs (a `Hello` from the peer would start it at once).
#[test]
fn a_pull_from_a_peer_catching_up_is_postponed_then_runs() {
    let mut sim = Sim::new(2, 2);
    let commons = commons_for(&mut sim, 0, &[0, 1]);
    designs(&mut sim, 0, commons, 40, 3000);
    sim.start();
    sim.target(1, 0);
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        s.nodes[1].service.counters().docs_received > 0
    }));
    // Node 1 writes something of its own while it catches up.
    designs(&mut sim, 1, commons, 1, 100);
    sim.cut(0, 1);
    sim.heal_all();
    // Node 1 redials; node 0 sees a peer that fetched from it a moment ago.
    let postponed = sim.run_until(Duration::from_secs(60), |s| {
        s.status(0).connected.iter().any(|p| p.postponed)
    });
    assert!(postponed, "node 0 held its pull back");
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &[0, 1])),
        "the held-back pull ran"
    );
}

/// A peer sending garbage is banned: disconnected, and refused when it comes back.
#[test]
fn a_peer_sending_garbage_is_banned_and_refused() {
    let mut sim = Sim::new(2, 3);
    commons_for(&mut sim, 0, &[0, 1]);
    sim.start();
    sim.connect(1, 0, None);
    let mut disconnected = false;
    for n in 0..100 {
        let peer = sim.nodes[1].peer;
        let outputs = sim.nodes[0].service.handle(
            Input::Request {
                peer,
                id: InboundId(1_000 + n),
                bytes: vec![0xff; 7],
            },
            sim.now,
        );
        let banned = outputs
            .iter()
            .any(|o| matches!(o, Output::Disconnect(p) if *p == peer));
        sim.apply(0, outputs);
        if banned {
            disconnected = true;
            break;
        }
    }
    assert!(disconnected, "the flooding peer was disconnected");
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.nodes[0].service.connected_count(), 0);
    let counters = sim.nodes[0].service.counters().clone();
    assert_eq!(counters.peers_banned, 1);
    assert!(counters.rejected["malformed-request"] >= 1);
    // It comes back: refused at once.
    sim.connect(1, 0, None);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.nodes[0].service.connected_count(), 0);
    let status = sim.status(0);
    assert_eq!(status.banned_peers, 1);
}

/// An unreachable bootstrap peer is redialled with doubling backoff, driven by the service's
/// wake-ups (no polling: a handful of timers in a minute).
#[test]
fn an_unreachable_peer_is_redialled_with_backoff() {
    let mut sim = Sim::new(2, 4);
    sim.start();
    sim.cut(0, 1);
    sim.target(0, 1);
    sim.run_for(Duration::from_secs(61));
    // At 0, 2, 6, 14 and 30 s; the next at 62 s.
    assert_eq!(sim.dials[0], 5, "dials");
    // One timer per dial, per snapshot save (every 10 s) and the resync: no polling.
    assert!(sim.timers[0] <= 15, "timers: {}", sim.timers[0]);
    sim.heal_all();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.dials[0], 6);
    assert_eq!(sim.nodes[0].service.connected_count(), 1);
}

/// A peer found on the local link that cannot be reached is redialled by its backoff, not on
/// every mDNS announcement (one a second here), and is connected once it can be.
#[test]
fn a_discovered_peer_is_redialled_with_backoff_not_on_every_announcement() {
    let mut sim = Sim::new(2, 9);
    sim.start();
    sim.cut(0, 1);
    let found = vec![(sim.nodes[1].peer, sim.nodes[1].addr.clone())];
    for _ in 0..61 {
        sim.input(0, Input::Discovered(found.clone()));
        sim.run_for(Duration::from_secs(1));
    }
    // At 0, 2, 6, 14 and 30 s, as any other target; the next at 62 s.
    assert_eq!(sim.dials[0], 5, "dials");
    sim.heal_all();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.dials[0], 6);
    assert_eq!(sim.nodes[0].service.connected_count(), 1);
    // Announced again while connected: no dial.
    sim.input(0, Input::Discovered(found));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.dials[0], 6);
}

/// A peer that left the local link (its mDNS record expired) is no longer redialled, backoff
/// or not; announced again, it is dialled again.
///
/// ```text
/// 0 -x- 1   (1 found by mDNS, unreachable, then expired; later found again and reachable)
/// ```
#[test]
fn a_peer_that_left_the_local_link_is_not_redialled() {
    let mut sim = Sim::new(2, 13);
    sim.start();
    sim.cut(0, 1);
    // The node with the smaller peer id dials a peer it finds at once (see
    // `the_greater_peer_id_lets_the_other_dial_first`).
    let (lo, hi) = lower_first(&sim);
    let found = vec![(sim.nodes[hi].peer, sim.nodes[hi].addr.clone())];
    sim.input(lo, Input::Discovered(found.clone()));
    sim.run_for(Duration::from_secs(3));
    // At 0 and 2 s.
    assert_eq!(sim.dials[lo], 2, "dials");
    sim.input(lo, Input::Expired(found.clone()));
    sim.run_for(Duration::from_secs(600));
    assert_eq!(sim.dials[lo], 2, "an expired peer was redialled");
    // Back on the link, and reachable.
    sim.heal_all();
    sim.input(lo, Input::Discovered(found));
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.dials[lo], 3, "dials");
    assert_eq!(sim.nodes[lo].service.connected_count(), 1);
}

/// The two nodes' indices, the one with the smaller peer id first.
fn lower_first(sim: &Sim) -> (usize, usize) {
    if sim.nodes[0].peer < sim.nodes[1].peer {
        (0, 1)
    } else {
        (1, 0)
    }
}

/// Two nodes that find each other on the local link in the same instant do not dial each
/// other at once (that made one TCP connection on which both started the handshake as
/// initiator, and failed, with the retries coinciding too): the smaller peer id dials, the
/// greater waits; and the greater still dials when the other never does.
#[test]
fn the_greater_peer_id_lets_the_other_dial_first() {
    let mut sim = Sim::new(2, 13);
    sim.start();
    let (lo, hi) = lower_first(&sim);
    let (p_lo, a_lo) = (sim.nodes[lo].peer, sim.nodes[lo].addr.clone());
    let (p_hi, a_hi) = (sim.nodes[hi].peer, sim.nodes[hi].addr.clone());
    sim.input(lo, Input::Discovered(vec![(p_hi, a_hi)]));
    sim.input(hi, Input::Discovered(vec![(p_lo, a_lo.clone())]));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.dials[lo], 1, "the smaller peer id dials at once");
    assert_eq!(sim.dials[hi], 0, "the greater waits");
    sim.run_for(Duration::from_secs(60));
    assert_eq!(
        sim.dials[hi], 0,
        "connected by the other's dial: no dial needed"
    );
    assert_eq!(sim.nodes[hi].service.connected_count(), 1);

    // Only the greater one hears the other's announcement: it dials once its wait is over.
    let mut sim = Sim::new(2, 13);
    sim.start();
    sim.input(hi, Input::Discovered(vec![(p_lo, a_lo)]));
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.dials[hi], 0);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.dials[hi], 1);
    assert_eq!(sim.nodes[hi].service.connected_count(), 1);
}

/// Two nodes that find each other on the local link each keep the other as a target; once
/// connected (by whichever dial won, so one side sees the other from an ephemeral port)
/// neither dials again while the connection stays up.
#[test]
fn peers_that_found_each_other_do_not_redial_while_connected() {
    let mut sim = Sim::new(2, 11);
    sim.start();
    let (p0, a0) = (sim.nodes[0].peer, sim.nodes[0].addr.clone());
    let (p1, a1) = (sim.nodes[1].peer, sim.nodes[1].addr.clone());
    sim.input(0, Input::Discovered(vec![(p1, a1)]));
    sim.input(1, Input::Discovered(vec![(p0, a0)]));
    sim.run_for(Duration::from_secs(120));
    assert_eq!(sim.nodes[0].service.connected_count(), 1);
    assert_eq!(sim.nodes[1].service.connected_count(), 1);
    // One dial at the start, by the smaller peer id; none after.
    let (lo, hi) = lower_first(&sim);
    assert_eq!((sim.dials[lo], sim.dials[hi]), (1, 0), "dials");
}

/// News travels along a chain: each node pulls from its neighbour, then announces what it
/// got to the next, which never talks to the origin.
///
/// ```text
/// 0 --- 1 --- 2 --- 3 --- 4
/// ```
#[test]
fn changes_travel_along_a_chain_by_store_and_forward() {
    let mut sim = Sim::new(5, 5);
    let all = [0, 1, 2, 3, 4];
    let commons = commons_for(&mut sim, 0, &all);
    sim.start();
    for i in 1..5 {
        sim.target(i, i - 1);
    }
    // An announcement that arrives while a pull from its sender runs is not acted on; the
    // next resync (60 s) catches what it said, so this may take a few resyncs.
    let spread = sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &all));
    let sizes: Vec<usize> = all
        .iter()
        .map(|&i| sim.inventory(i, &commons).len())
        .collect();
    assert!(spread, "profiles spread: {sizes:?} by {:?}", sim.elapsed());
    let before = sim.inventory(4, &commons);
    // Written while nobody listens (no gossip); node 1 gets it on its next connection and
    // announces it to node 2, which pulls and announces it to node 3, and so on.
    designs(&mut sim, 0, commons, 3, 500);
    sim.cut(0, 1);
    sim.heal_all();
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &all)),
        "the chain converged"
    );
    assert_eq!(sim.inventory(4, &commons).len(), before.len() + 3);
}

/// Fifty nodes on a random graph, partitioned at random for a while, converge once healed.
#[test]
fn fifty_nodes_converge_after_random_partitions() {
    let n = 50;
    let mut sim = Sim::new(n, 6);
    sim.drop_percent = 2;
    sim.max_delay = Duration::from_millis(300);
    let all: Vec<usize> = (0..n).collect();
    let commons = commons_for(&mut sim, 0, &all);
    for i in (0..n).step_by(5) {
        designs(&mut sim, i, commons, 1, 200);
    }
    sim.start();
    for i in 1..n {
        // A spanning tree plus random extra links.
        let parent = sim.rng.below(i as u64) as usize;
        sim.target(i, parent);
        let other = sim.rng.below(n as u64) as usize;
        if other != i {
            sim.target(i, other);
        }
    }
    for _ in 0..6 {
        for _ in 0..20 {
            let a = sim.rng.below(n as u64) as usize;
            let b = sim.rng.below(n as u64) as usize;
            if a != b {
                sim.cut(a, b);
            }
        }
        sim.run_for(Duration::from_secs(20));
        sim.heal_all();
        sim.run_for(Duration::from_secs(10));
    }
    assert!(
        sim.run_until(Duration::from_secs(900), |s| s.converged(&commons, &all)),
        "converged by {:?}",
        sim.elapsed()
    );
    // Fifty profiles and ten designs.
    assert_eq!(sim.inventory(n - 1, &commons).len(), 60);
}

/// A `hedgerow sync` waiter gets its report once every pull with its peer has ended.
#[test]
fn a_sync_waiter_is_answered_when_its_pulls_end() {
    let mut sim = Sim::new(2, 7);
    let commons = commons_for(&mut sim, 0, &[0, 1]);
    designs(&mut sim, 0, commons, 5, 300);
    sim.start();
    let addr = sim.nodes[0]
        .addr
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(sim.nodes[0].peer));
    let token = sim.command(1, Command::Sync(SyncOrder::new(addr)));
    assert!(sim.run_until(Duration::from_secs(60), |s| s
        .replies
        .contains_key(&(1, token))));
    let Some(Reply::Sync(report)) = sim.replies.remove(&(1, token)) else {
        panic!("no sync report");
    };
    let report: SyncReport = report;
    assert!(report.complete, "{report:?}");
    assert_eq!(report.docs_received, 6, "{report:?}");
    assert!(sim.converged(&commons, &[0, 1]));
}

/// A `hedgerow sync` whose peer cannot be dialed is answered at once, with why, instead of
/// waiting out its deadline redialing (its connect timeout is `tests/tests/never_hang.rs`'s,
/// against a listener that never speaks).
#[test]
fn a_sync_waiter_for_an_unreachable_peer_is_answered_with_why() {
    let mut sim = Sim::new(2, 9);
    sim.start();
    let nowhere: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/9".parse().expect("addr");
    let token = sim.command(1, Command::Sync(SyncOrder::new(nowhere)));
    assert!(sim.run_until(Duration::from_secs(5), |s| s
        .replies
        .contains_key(&(1, token))));
    let Some(Reply::Sync(report)) = sim.replies.remove(&(1, token)) else {
        panic!("no sync report");
    };
    assert_eq!(report.unreachable.as_deref(), Some("connection refused"));
    assert!(!report.complete);
    assert!(
        sim.elapsed() < Duration::from_secs(5),
        "{:?}",
        sim.elapsed()
    );
}

/// A `hedgerow sync` that lost its peer mid-way and cannot dial it again ends then, saying
/// so, instead of holding on (and holding the store) until its deadline.
#[test]
fn a_sync_waiter_whose_peer_is_lost_for_good_is_answered() {
    let mut sim = Sim::new(2, 11);
    let commons = commons_for(&mut sim, 0, &[0, 1]);
    designs(&mut sim, 0, commons, 20, 2000);
    sim.start();
    let addr = sim.nodes[0]
        .addr
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(sim.nodes[0].peer));
    let token = sim.command(1, Command::Sync(SyncOrder::new(addr)));
    assert!(sim.run_until(Duration::from_secs(30), |s| !s
        .status(1)
        .connected
        .is_empty()));
    assert!(
        !sim.replies.contains_key(&(1, token)),
        "the pulls ended at once"
    );
    sim.cut(0, 1);
    assert!(sim.run_until(Duration::from_secs(120), |s| s
        .replies
        .contains_key(&(1, token))));
    let Some(Reply::Sync(report)) = sim.replies.remove(&(1, token)) else {
        panic!("no sync report");
    };
    assert!(!report.complete, "{report:?}");
    assert!(report.unreachable.is_none(), "{report:?}");
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("lost the connection")),
        "{report:?}"
    );
    assert!(
        sim.elapsed() < Duration::from_secs(150),
        "{:?}",
        sim.elapsed()
    );
}

/// A node that blocks an author neither stores nor passes on that author's new changes, live
/// or by sync, holds nothing against the peer that sent them, and still passes on the rest.
///
/// ```text
/// 0 (the blocked author) --- 1 (blocks 0's author) --- 2
/// ```
#[test]
fn a_blocked_authors_changes_do_not_cross_a_node_that_blocks_them() {
    use crate::api::Request;
    let mut sim = Sim::new(3, 12);
    let all = [0, 1, 2];
    let commons = commons_for(&mut sim, 0, &all);
    sim.start();
    sim.target(1, 0);
    sim.target(2, 1);
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &all)),
        "profiles spread"
    );
    let blocked = sim.local(0).author().to_string();
    let store = |sim: &mut Sim, i: usize, request: Request| {
        let token = sim.command(i, Command::Store(request));
        match sim.replies.remove(&(i, token)) {
            Some(Reply::Store(Ok(reply))) => reply,
            other => panic!("request failed: {other:?}"),
        }
    };
    store(
        &mut sim,
        1,
        Request::Block {
            person: blocked,
            note: String::new(),
        },
    );
    let new = |title: &str| Request::DocNew {
        commons: None,
        kind: DocKind::Design,
        title: title.into(),
        target: None,
        note_kind: None,
        reply_to: None,
        edits: Vec::new(),
    };
    // Published live by 0, and offered by its pulls.
    store(&mut sim, 0, new("By the blocked author"));
    store(&mut sim, 1, new("By the node in the middle"));
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.inventory(2, &commons).len()
            == 4),
        "the middle node's design reached 2"
    );
    // Several resyncs (every 60 s): 0's design would have crossed by now.
    sim.run_for(Duration::from_secs(300));
    assert_eq!(sim.inventory(1, &commons).len(), 4);
    assert_eq!(
        sim.inventory(2, &commons).len(),
        4,
        "0's design crossed node 1"
    );
    assert_eq!(sim.inventory(0, &commons).len(), 5);
    let counters = sim.nodes[1].service.counters().clone();
    assert!(
        counters.rejected.get("author-blocked-locally") >= Some(&1),
        "{counters:?}"
    );
    assert_eq!(counters.peers_banned, 0, "{counters:?}");
}

/// A private commons: the invited member gets everything, a non-member that asks for it by id
/// gets nothing and is counted as `private-not-a-member`, and once removed the member's
/// connection is served no more, though it stays up.
///
/// ```text
/// 0 (founder) ---- 1 (invited)      0 ---- 2 (asks by id, no member)
/// ```
#[test]
fn a_private_commons_is_served_only_to_proven_members() {
    use hedgerow_protocol::charter::Role;
    let mut sim = Sim::new(3, 21);
    let commons = sim
        .local(0)
        .create_stewarded("Seed library", "", true)
        .expect("commons");
    designs(&mut sim, 0, commons, 3, 300);
    let (code, _) = sim
        .local(0)
        .invite(&commons, Role::Member, 1, 86_400)
        .expect("invite");
    sim.local(1).accept(&code).expect("accept");
    sim.local(1).take_outbox();
    assert_eq!(
        sim.local(1).privacy(&commons),
        crate::private::Privacy::Presumed
    );
    sim.start();
    sim.command(2, Command::Join(commons));
    sim.connect(1, 0, None);
    sim.connect(2, 0, None);
    sim.connect(2, 1, None);
    let members = [0, 1];
    assert!(
        sim.run_until(Duration::from_secs(120), |s| s
            .converged(&commons, &members)),
        "the invited member got the private commons by {:?}",
        sim.elapsed()
    );
    assert_eq!(
        sim.local(1).privacy(&commons),
        crate::private::Privacy::Private
    );
    assert_eq!(
        sim.local(1)
            .list(&commons, DocKind::Design)
            .expect("list")
            .len(),
        3
    );
    sim.run_for(Duration::from_secs(70));
    assert!(
        !sim.local(2).holds(&commons).expect("read"),
        "the non-member holds nothing of it"
    );
    let refused = |sim: &mut Sim, i: usize| {
        sim.status(i)
            .counters
            .rejected
            .get("private-not-a-member")
            .copied()
            .unwrap_or(0)
    };
    assert!(refused(&mut sim, 0) >= 1, "the founder counted the refusal");
    assert!(refused(&mut sim, 1) >= 1, "so did the member");
    assert_eq!(sim.status(0).banned_peers, 0, "no ban for asking");

    // Removed, the member's connection is served no more: a new design stays with the founder.
    let person = sim.local(1).author().to_string();
    sim.local(0)
        .remove_member(&commons, &person)
        .expect("remove");
    designs(&mut sim, 0, commons, 1, 300);
    let before = refused(&mut sim, 0);
    sim.run_for(Duration::from_secs(130));
    assert_eq!(
        sim.local(1)
            .list(&commons, DocKind::Design)
            .expect("list")
            .len(),
        3
    );
    assert_eq!(
        sim.local(0)
            .list(&commons, DocKind::Design)
            .expect("list")
            .len(),
        4
    );
    assert!(
        refused(&mut sim, 0) > before,
        "the removed member was refused"
    );
    assert!(sim.links.contains_key(&pair(0, 1)), "and not disconnected");
}

/// A proof made for another connection is refused (and is the sender's offence), and news on a
/// private commons' hashed topic from a peer that proved nothing is dropped and counted.
#[test]
fn a_replayed_proof_and_unproven_private_gossip_are_refused() {
    use hedgerow_protocol::sync::{Gossip, SyncRequest, SyncResponse};
    let mut sim = Sim::new(3, 22);
    let commons = sim
        .local(0)
        .create_stewarded("Seed library", "", true)
        .expect("commons");
    sim.start();
    sim.connect(1, 0, None);
    sim.run_for(Duration::from_secs(1));
    let (founder, stranger, other) = (sim.nodes[0].peer, sim.nodes[1].peer, sim.nodes[2].peer);

    // The founder's own device proof, made for the connection 2 -> 0, replayed by node 1.
    let replayed = sim
        .local(0)
        .membership_proof(&commons, &other.to_bytes(), &founder.to_bytes());
    let outputs = sim.nodes[0].service.handle(
        Input::Request {
            peer: stranger,
            id: InboundId(7_000),
            bytes: SyncRequest::Prove(Box::new(replayed)).to_bytes(),
        },
        sim.now,
    );
    let answer = outputs.iter().find_map(|o| match o {
        Output::Respond { bytes, .. } => SyncResponse::from_bytes(bytes).ok(),
        _ => None,
    });
    assert!(
        matches!(answer, Some(SyncResponse::Refused { .. })),
        "{answer:?}"
    );
    // Not proven: the private commons is not listed to it.
    let outputs = sim.nodes[0].service.handle(
        Input::Request {
            peer: stranger,
            id: InboundId(7_001),
            bytes: SyncRequest::Hello {
                commons,
                digest: [0; 32],
            }
            .to_bytes(),
        },
        sim.now,
    );
    let answer = outputs.iter().find_map(|o| match o {
        Output::Respond { bytes, .. } => SyncResponse::from_bytes(bytes).ok(),
        _ => None,
    });
    assert_eq!(answer, Some(SyncResponse::NotAMember));

    let outputs = sim.nodes[0].service.handle(
        Input::Gossip {
            source: stranger,
            id: MessageId::new(b"news"),
            topic: crate::net::private_topic(&commons).hash(),
            data: Gossip::PrivateNews { digest: [9; 32] }.to_bytes(),
        },
        sim.now,
    );
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Validate {
            acceptance: MessageAcceptance::Ignore,
            ..
        }
    )));
    let rejected = sim.status(0).counters.rejected;
    assert_eq!(rejected.get("bad-proof"), Some(&1), "{rejected:?}");
    assert_eq!(
        rejected.get("private-not-a-member"),
        Some(&1),
        "{rejected:?}"
    );
    assert_eq!(
        rejected.get("private-gossip-unproven"),
        Some(&1),
        "{rejected:?}"
    );
}

/// The reservations `outputs` ask for, as (hub, relayed listen address).
fn listen_vias(outputs: &[Output]) -> Vec<(PeerId, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::ListenVia { relay, addr } => Some((*relay, addr.to_string())),
            _ => None,
        })
        .collect()
}

/// A farm reserves a slot on a hub it dialed once the hub's identify lists the relay hop
/// protocol: once, active when accepted, asked again only after it ended; a peer that is no
/// relay, or a hub that dialed us, gets no reservation; and a farm AutoNAT found public asks
/// for none.
#[test]
fn reach_a_farm_reserves_a_slot_on_a_relay_hub_it_dialed_unless_it_is_public() {
    use super::service::{Nat, ReservationEvent};
    let mut sim = Sim::new(3, 11);
    sim.start();
    let hub_addr = sim.nodes[1].addr.clone();
    sim.connect(0, 1, Some(hub_addr.clone()));
    let (hub, other) = (sim.nodes[1].peer, sim.nodes[2].peer);
    let now = sim.now;
    let service = &mut sim.nodes[0].service;

    let not_relay = service.handle(
        Input::Identified {
            peer: hub,
            relay: false,
        },
        now,
    );
    assert!(listen_vias(&not_relay).is_empty());
    let asked = service.handle(
        Input::Identified {
            peer: hub,
            relay: true,
        },
        now,
    );
    let circuit = format!("{hub_addr}/p2p/{hub}/p2p-circuit");
    assert_eq!(listen_vias(&asked), vec![(hub, circuit.clone())]);
    let again = service.handle(
        Input::Identified {
            peer: hub,
            relay: true,
        },
        now,
    );
    assert!(listen_vias(&again).is_empty(), "asked twice: {again:?}");

    let token = 900;
    let status = |service: &mut Service<Replicas>| {
        let outputs = service.handle(Input::Command(token, Command::Status), now);
        outputs
            .into_iter()
            .find_map(|o| match o {
                Output::Reply(_, Reply::Status(status)) => Some(status.reach),
                _ => None,
            })
            .expect("status")
    };
    let reach = status(service);
    assert_eq!(reach.nat, "unknown");
    assert_eq!(reach.reservations.len(), 1);
    assert_eq!(reach.reservations[0].addr, circuit);
    assert!(!reach.reservations[0].active);
    service.handle(
        Input::Reservation {
            relay: hub,
            event: ReservationEvent::Accepted,
        },
        now,
    );
    assert!(status(service).reservations[0].active);
    service.handle(
        Input::Reservation {
            relay: hub,
            event: ReservationEvent::Ended("connection closed".into()),
        },
        now,
    );
    assert!(status(service).reservations.is_empty());
    let renewed = service.handle(
        Input::Identified {
            peer: hub,
            relay: true,
        },
        now,
    );
    assert_eq!(listen_vias(&renewed).len(), 1);

    // A hub that dialed us: no address of ours to reach it at, so no reservation.
    sim.connect(2, 0, None);
    let now = sim.now;
    let service = &mut sim.nodes[0].service;
    let inbound = service.handle(
        Input::Identified {
            peer: other,
            relay: true,
        },
        now,
    );
    assert!(listen_vias(&inbound).is_empty(), "{inbound:?}");

    // Found public: no new reservation on a hub that identifies now.
    let mut sim = Sim::new(2, 12);
    sim.start();
    let hub_addr = sim.nodes[1].addr.clone();
    sim.connect(0, 1, Some(hub_addr.clone()));
    let hub = sim.nodes[1].peer;
    let now = sim.now;
    let service = &mut sim.nodes[0].service;
    let public: Multiaddr = "/ip4/198.51.100.7/tcp/4717".parse().expect("addr");
    service.handle(Input::Nat(Nat::Public(public)), now);
    let public_asks = service.handle(
        Input::Identified {
            peer: hub,
            relay: true,
        },
        now,
    );
    assert!(listen_vias(&public_asks).is_empty(), "{public_asks:?}");
    assert_eq!(status(service).nat, "public");
    // Private again: it reserves on the hub it knows.
    let private = service.handle(Input::Nat(Nat::Private), now);
    assert_eq!(listen_vias(&private).len(), 1);
}

/// What `status` shows of `service`'s reach.
fn reach_status(
    service: &mut Service<Replicas>,
    now: Instant,
) -> crate::serve::status::ReachStatus {
    let outputs = service.handle(Input::Command(901, Command::Status), now);
    outputs
        .into_iter()
        .find_map(|o| match o {
            Output::Reply(_, Reply::Status(status)) => Some(status.reach),
            _ => None,
        })
        .expect("status")
}

/// A farm holding a reservation that AutoNAT then finds public drops it (its relayed
/// listener is closed, `status` lists no reservation) and asks for none when the hub
/// identifies again; found private again, it reserves anew.
#[test]
fn reach_a_farm_found_public_drops_its_reservations() {
    use super::service::{Nat, ReservationEvent};
    let mut sim = Sim::new(2, 14);
    sim.start();
    let hub_addr = sim.nodes[1].addr.clone();
    sim.connect(0, 1, Some(hub_addr));
    let hub = sim.nodes[1].peer;
    let now = sim.now;
    let service = &mut sim.nodes[0].service;
    let identified = || Input::Identified {
        peer: hub,
        relay: true,
    };
    assert_eq!(listen_vias(&service.handle(identified(), now)).len(), 1);
    service.handle(
        Input::Reservation {
            relay: hub,
            event: ReservationEvent::Accepted,
        },
        now,
    );
    assert!(reach_status(service, now).reservations[0].active);

    let public: Multiaddr = "/ip4/198.51.100.7/tcp/4717".parse().expect("addr");
    let dropped = service.handle(Input::Nat(Nat::Public(public)), now);
    let stopped: Vec<PeerId> = dropped
        .iter()
        .filter_map(|o| match o {
            Output::StopListeningVia { relay } => Some(*relay),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, [hub], "{dropped:?}");
    let reach = reach_status(service, now);
    assert_eq!(reach.nat, "public");
    assert!(reach.reservations.is_empty(), "{:?}", reach.reservations);
    assert!(listen_vias(&service.handle(identified(), now)).is_empty());

    let private = service.handle(Input::Nat(Nat::Private), now);
    assert_eq!(listen_vias(&private).len(), 1, "{private:?}");
    assert!(!private
        .iter()
        .any(|o| matches!(o, Output::StopListeningVia { .. })));
}

/// A hub announces its listen addresses as external, loopback ones excepted (IPv4 and IPv6),
/// and withdraws one it stops listening on; a node that is no hub announces none.
#[test]
fn reach_a_hub_announces_its_listen_addresses_except_loopback() {
    let mut sim = Sim::new(2, 15);
    sim.start();
    let now = sim.now;
    let addr = |text: &str| -> Multiaddr { text.parse().expect("addr") };
    let announced = |outputs: &[Output]| -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::AddExternal(a) => Some(a.to_string()),
                _ => None,
            })
            .collect()
    };
    let hub = &mut sim.nodes[0].service;
    hub.set_relay_server(true);
    let mut external = Vec::new();
    for text in [
        "/ip4/127.0.0.1/tcp/4717",
        "/ip6/::1/tcp/4717",
        "/ip4/10.48.0.1/tcp/4717",
        "/ip4/127.0.0.1/udp/4717/quic-v1",
    ] {
        external.extend(announced(&hub.handle(Input::Listening(addr(text)), now)));
    }
    assert_eq!(external, ["/ip4/10.48.0.1/tcp/4717"]);
    let loopback_closed = hub.handle(Input::ListenClosed(addr("/ip4/127.0.0.1/tcp/4717")), now);
    assert!(!loopback_closed
        .iter()
        .any(|o| matches!(o, Output::RemoveExternal(_))));
    let closed = hub.handle(Input::ListenClosed(addr("/ip4/10.48.0.1/tcp/4717")), now);
    assert!(closed
        .iter()
        .any(|o| matches!(o, Output::RemoveExternal(a) if *a == addr("/ip4/10.48.0.1/tcp/4717"))));

    let farm = &mut sim.nodes[1].service;
    let listening = farm.handle(Input::Listening(addr("/ip4/10.48.1.2/tcp/4717")), now);
    assert!(announced(&listening).is_empty(), "{listening:?}");
}

/// Relayed connections carry the hub's address, shared by everyone it relays: many of them
/// are not cut by the per-address connection limit (64), and `status` shows each peer as
/// relayed via the hub, the listening side included.
#[test]
fn reach_relayed_connections_escape_per_address_limits_and_show_as_relayed() {
    let mut sim = Sim::new(1, 13);
    sim.start();
    let hub = PeerId::random();
    let now = sim.now;
    let service = &mut sim.nodes[0].service;
    let mut last = None;
    for n in 0..80u64 {
        let peer = PeerId::random();
        let connection = ConnectionId::new_unchecked(10_000 + n as usize);
        let addr: Multiaddr = format!("/ip4/10.9.9.9/tcp/4717/p2p/{hub}/p2p-circuit/p2p/{peer}")
            .parse()
            .expect("addr");
        let outputs = service.handle(
            Input::Connected {
                peer,
                connection,
                addr,
                dialer: true,
                dialed: None,
            },
            now,
        );
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::CloseConnection(c) if *c == connection)),
            "relayed connection {n} was closed by the per-address limit"
        );
        last = Some(peer);
    }
    // The listening side of a circuit sees only `/p2p/SRC`; `Relayed` names the hub.
    let listener_peer = PeerId::random();
    let connection = ConnectionId::new_unchecked(20_000);
    service.handle(
        Input::Connected {
            peer: listener_peer,
            connection,
            addr: format!("/p2p/{listener_peer}").parse().expect("addr"),
            dialer: false,
            dialed: None,
        },
        now,
    );
    service.handle(
        Input::Relayed {
            peer: listener_peer,
            connection,
            via: hub,
        },
        now,
    );
    let outputs = service.handle(Input::Command(1, Command::Status), now);
    let status = outputs
        .into_iter()
        .find_map(|o| match o {
            Output::Reply(_, Reply::Status(status)) => Some(status),
            _ => None,
        })
        .expect("status");
    for peer in [last.expect("a peer"), listener_peer] {
        let row = status
            .connected
            .iter()
            .find(|r| r.peer == peer.to_string())
            .expect("connected row");
        assert_eq!(row.reached, "relayed", "{row:?}");
        assert_eq!(
            row.via.as_deref(),
            Some(hub.to_string().as_str()),
            "{row:?}"
        );
    }
}

/// Node 0 writes `count` designs of about `size` bytes, node 1 pulls them all, then their
/// link is cut. Returns the commons and the designs' ids.
fn synced_then_cut(sim: &mut Sim, count: usize, size: usize) -> (CommonsId, Vec<DocId>) {
    let commons = commons_for(sim, 0, &[0, 1]);
    designs(sim, 0, commons, count, size);
    sim.start();
    sim.target(1, 0);
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &[0, 1])),
        "initial sync"
    );
    sim.cut(0, 1);
    let ids: Vec<DocId> = sim
        .inventory(0, &commons)
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| {
            let genesis = sim.nodes[0].service.local().store().doc_genesis(id);
            matches!(genesis, Ok(Some(g)) if g.body.kind == DocKind::Design)
        })
        .collect();
    assert_eq!(ids.len(), count);
    (commons, ids)
}

/// Two nodes that share `count` designs edit each of them apart (three changes a side),
/// then reconnect until they converge; node 0 speaks only up to `/hedgerow/sync/2` when
/// `old_release`. Returns the fetches sent in `/hedgerow/sync/3` form and the sync bytes both
/// sent after the reconnection.
fn diverge_and_sync(old_release: bool, count: usize) -> (usize, usize) {
    let mut sim = Sim::new(2, 12);
    sim.max_delay = Duration::from_millis(5);
    sim.nodes[0].sync_v2_only = old_release;
    let (commons, ids) = synced_then_cut(&mut sim, count, 200);
    for i in [0, 1] {
        for id in &ids {
            for k in 0..3 {
                let edit = Edit::Set {
                    field: "summary".into(),
                    value: format!("node {i} edit {k} of {id}"),
                };
                sim.local(i).edit_doc(id, &[edit]).expect("edit");
            }
        }
        sim.local(i).take_outbox();
        sim.local(i).commit().expect("commit");
    }
    assert!(!sim.converged(&commons, &[0, 1]));
    let fetches = |s: &Sim| s.nodes.iter().map(|n| n.fetches_v3).sum::<usize>();
    let bytes = |s: &Sim| s.nodes.iter().map(|n| n.sync_bytes_sent).sum::<usize>();
    let (fetches_before, bytes_before) = (fetches(&sim), bytes(&sim));
    sim.heal_all();
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &[0, 1])),
        "converged after the divergence (old release: {old_release})"
    );
    for i in [0, 1] {
        let status = sim.status(i);
        assert_eq!(status.rejected_total, 0, "node {i} refused something");
    }
    (fetches(&sim) - fetches_before, bytes(&sim) - bytes_before)
}

/// Issue 11: two nodes of this release that edited the same designs apart sync them in the
/// compact forms of `/hedgerow/sync/3` (short clocks; proofs without the change hash,
/// document and author the receiver derives), for fewer bytes; a node that speaks only up to
/// `/hedgerow/sync/2`, as the previous release, gets and sends the first version's forms and
/// still converges.
///
/// ```text
/// 0 (8 designs, 3 edits each) -x- 1 (the same 8, 3 other edits each)   -> reconnect
/// ```
#[test]
fn diverged_nodes_sync_in_compact_forms_and_still_with_an_older_release() {
    let (fetches_v3, bytes_v3) = diverge_and_sync(false, 8);
    let (fetches_old, bytes_old) = diverge_and_sync(true, 8);
    assert!(fetches_v3 >= 2, "both pulls use the compact forms");
    assert_eq!(
        fetches_old, 0,
        "nothing compact to a node that does not speak it"
    );
    // About 130 B a document and direction here (one proof, a two-actor clock); 60 is safe.
    assert!(
        bytes_v3 + 60 * 2 * 8 <= bytes_old,
        "compact forms {bytes_v3} B, first version's {bytes_old} B"
    );
}

/// Two nodes that share 2,100 designs each edit `edited` of them apart (side 0 the first,
/// side 1 the last), then reconnect until they converge; node 0 speaks only up to
/// `/hedgerow/sync/3` when `old_release`. Returns the sketches and summaries answered after
/// the reconnection, and the sync bytes sent.
fn diverge_large(old_release: bool, edited: usize) -> (usize, usize, usize) {
    let mut sim = Sim::new(2, 13);
    sim.max_delay = Duration::from_millis(5);
    sim.nodes[0].sync_v3_only = old_release;
    let (commons, ids) = synced_then_cut(&mut sim, 2100, 20);
    for (i, chosen) in [(0, &ids[..edited]), (1, &ids[ids.len() - edited..])] {
        for id in chosen {
            let edit = Edit::Set {
                field: "summary".into(),
                value: format!("node {i} edit of {id}"),
            };
            sim.local(i).edit_doc(id, &[edit]).expect("edit");
        }
        sim.local(i).take_outbox();
        sim.local(i).commit().expect("commit");
    }
    assert!(!sim.converged(&commons, &[0, 1]));
    let count = |s: &Sim| {
        let sketches = s.nodes.iter().map(|n| n.sketches_sent).sum::<usize>();
        let summaries = s.nodes.iter().map(|n| n.summaries_sent).sum::<usize>();
        let bytes = s.nodes.iter().map(|n| n.sync_bytes_sent).sum::<usize>();
        (sketches, summaries, bytes)
    };
    let before = count(&sim);
    sim.heal_all();
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.converged(&commons, &[0, 1])),
        "converged after the divergence (old release: {old_release})"
    );
    for i in [0, 1] {
        assert_eq!(
            sim.status(i).rejected_total,
            0,
            "node {i} refused something"
        );
    }
    let after = count(&sim);
    (after.0 - before.0, after.1 - before.1, after.2 - before.2)
}

/// Issue 11: two nodes of this release that drifted apart in a commons of over 2,048
/// documents find what differs from a sketch whose size follows the difference (each pull
/// waits for identify to say the peer speaks `/hedgerow/sync/4`); a difference too large for
/// the sketch, and a node of the previous release, go by the bucket summary, and all converge.
///
/// ```text
/// 0 (2,100 designs, edits 30) -x- 1 (the same, edits 30 others)   -> reconnect
/// ```
#[test]
fn drifted_nodes_of_a_large_commons_compare_sketches_and_fall_back_to_summaries() {
    let (sketches, summaries, _) = diverge_large(false, 30);
    assert_eq!((sketches, summaries), (2, 0), "each pull peels a sketch");
    let (sketches, summaries, _) = diverge_large(true, 30);
    assert_eq!(
        (sketches, summaries),
        (0, 2),
        "a node of the previous release is never sent a HelloV4"
    );
    // 300 documents a side differ: 600 keys do not peel in 360 cells.
    let (sketches, summaries, _) = diverge_large(false, 300);
    assert_eq!((sketches, summaries), (2, 2), "each pull falls back once");
}
