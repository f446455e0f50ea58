//! What goes into the service and what comes out: the whole of its contact with the world.

use crate::api::Request;
use crate::replicas::NodeError;
use crate::serve::stats::{Refusal, SyncReport};
use crate::serve::status::{JoinReply, NodeStatus};
use hedgerow_protocol::CommonsId;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance, MessageId, TopicHash};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::time::{Duration, Instant};

use super::{CONNECT_TIMEOUT, SYNC_DEADLINE};

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

/// A command from a [`NodeHandle`](crate::serve::NodeHandle): the control socket, `hedgerow sync`, or a test.
#[derive(Debug)]
pub enum Command {
    /// Reports the node's state.
    Status,
    /// Pulls everything from the peer it names and replies when done, or when it cannot
    /// be reached.
    Sync(SyncOrder),
    /// Joins a commons: a held one at once; else it is wanted and asked of connected peers.
    Join(CommonsId),
    /// Runs a store request; what it changed is published.
    Store(Request),
    /// Fetches blobs (hash, size) from connected peers; with `wait`, replies once each is
    /// stored or failed (or [`BLOB_WAIT`](super::BLOB_WAIT) passed), else at once.
    FetchBlobs {
        /// The blobs.
        blobs: Vec<([u8; 32], u64)>,
        /// Whether to reply only when they are done.
        wait: bool,
    },
    /// Lists the known peers, how each was found, and the DHT's announcements and lookups.
    Peers,
    /// Adds an address to the bootstrap list (`add`) or takes it off, while the node runs;
    /// replies with [`Reply::Peers`].
    Bootstrap {
        /// The address.
        addr: Multiaddr,
        /// Whether it is added (else removed).
        add: bool,
    },
}

/// What `hedgerow sync` asks of the node: whom to pull from, and how long to wait.
#[derive(Debug, Clone)]
pub struct SyncOrder {
    /// The peer's address (with `/p2p/ID` to insist on that peer).
    pub addr: Multiaddr,
    /// How long the first connection may take before the sync fails as unreachable.
    pub connect_timeout: Duration,
    /// How long the whole sync may take; then it reports what it has.
    pub deadline: Duration,
}

impl SyncOrder {
    /// A sync with `addr` under the default limits ([`CONNECT_TIMEOUT`], [`SYNC_DEADLINE`]).
    pub fn new(addr: Multiaddr) -> Self {
        Self {
            addr,
            connect_timeout: CONNECT_TIMEOUT,
            deadline: SYNC_DEADLINE,
        }
    }
}

/// An answer to a [`Command`].
#[derive(Debug)]
pub enum Reply {
    /// The answer to [`Command::Status`].
    Status(Box<NodeStatus>),
    /// The answer to [`Command::Sync`].
    Sync(SyncReport),
    /// The answer to [`Command::Join`], or why it failed.
    Join(Result<JoinReply, NodeError>),
    /// The answer to [`Command::Store`]: the request's JSON result, or the one-line reason
    /// it failed.
    Store(Result<crate::api::Reply, NodeError>),
    /// The answer to [`Command::FetchBlobs`].
    Blobs(BlobsReply),
    /// The answer to [`Command::Peers`].
    Peers(Box<super::discovery::PeersReply>),
}

/// What became of blobs asked for with [`Command::FetchBlobs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobsReply {
    /// Held now (fetched, or held already).
    pub stored: Vec<[u8; 32]>,
    /// Still being fetched (no reply was waited for, or the wait ended first).
    pub pending: Vec<[u8; 32]>,
    /// Could not be stored, with why.
    pub failed: Vec<([u8; 32], String)>,
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
    /// A dial ([`Output::Dial`]) failed, and why (in words, for a `hedgerow sync` waiting on it).
    DialFailed(Multiaddr, String),
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
        /// From handing the request to the transport to the response's arrival: the link's
        /// speed, without the time this node spent storing what came before.
        elapsed: Duration,
        /// From the response's first byte to its last, when the transport measured it: the
        /// link's speed without the responder's work either.
        transfer: Option<Duration>,
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
    /// Peers the local link stopped announcing (their mDNS records expired).
    Expired(Vec<(PeerId, Multiaddr)>),
    /// A peer said which sync protocol versions it speaks (identify): `v2` when it lists
    /// `/hedgerow/sync/2`, whose larger fetches it then gets; `v3` when both it and this node
    /// speak `/hedgerow/sync/3`, whose compact forms it then gets; `v4` when both speak
    /// `/hedgerow/sync/4`, whose sketch it then gets asked for.
    SyncVersion {
        /// The peer.
        peer: PeerId,
        /// Whether it speaks `/hedgerow/sync/2`.
        v2: bool,
        /// Whether it and this node speak `/hedgerow/sync/3`.
        v3: bool,
        /// Whether it and this node speak `/hedgerow/sync/4`.
        v4: bool,
    },
    /// A ping came back (`true`) or failed.
    Ping {
        /// The peer.
        peer: PeerId,
        /// The connection pinged.
        connection: ConnectionId,
        /// Whether the pong came.
        ok: bool,
    },
    /// A peer sent a blob request; answer with [`Output::RespondBlob`].
    BlobRequest {
        /// The peer.
        peer: PeerId,
        /// Our number for it.
        id: InboundId,
        /// The request frame.
        bytes: Vec<u8>,
    },
    /// The response to a blob request we sent ([`Output::SendBlob`]).
    BlobResponse {
        /// The request it answers.
        id: RequestId,
        /// The response frame.
        bytes: Vec<u8>,
    },
    /// Our answer to a peer's blob request was sent whole, or failed: it no longer counts
    /// against the peer's share of our serving.
    BlobResponseDone {
        /// The request it answered.
        id: InboundId,
    },
    /// A blob request we sent failed (timeout, link cut, bad frame): its range is asked again.
    BlobFailure {
        /// The request.
        id: RequestId,
        /// The bad frame from the peer, if that was the cause.
        offence: Option<Refusal>,
    },
    /// A connection that goes through a hub's relay (sent right after its [`Input::Connected`]).
    Relayed {
        /// The peer at the other end of the circuit.
        peer: PeerId,
        /// The connection.
        connection: ConnectionId,
        /// The hub relaying it.
        via: PeerId,
    },
    /// A peer's identify arrived; `relay` when it lists the relay hop protocol.
    Identified {
        /// The peer.
        peer: PeerId,
        /// Whether it serves as a relay.
        relay: bool,
    },
    /// AutoNAT's verdict on this node changed.
    Nat(super::Nat),
    /// A DCUtR hole punch with a peer ended: the new direct connection, or why it failed.
    HolePunch {
        /// The peer.
        peer: PeerId,
        /// The direct connection made, or the failure in words.
        result: Result<ConnectionId, String>,
    },
    /// A reservation asked for with [`Output::ListenVia`] was accepted or ended.
    Reservation {
        /// The hub.
        relay: PeerId,
        /// What happened.
        event: super::ReservationEvent,
    },
    /// The DHT reported something (see `discovery.rs`).
    Dht(super::discovery::DhtInput),
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
    /// Sends a blob range request.
    SendBlob {
        /// The peer.
        peer: PeerId,
        /// Our number for it, which its [`Input::BlobResponse`] or [`Input::BlobFailure`] carries.
        id: RequestId,
        /// The request frame.
        bytes: Vec<u8>,
    },
    /// Answers a blob request.
    RespondBlob {
        /// The request.
        id: InboundId,
        /// The response frame.
        bytes: Vec<u8>,
    },
    /// Publishes on a commons' topic; a `live` change counts in `live_published` once out.
    Publish {
        /// The commons.
        commons: CommonsId,
        /// Its topic (hashed for a private commons).
        topic: IdentTopic,
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
    Subscribe {
        /// The commons.
        commons: CommonsId,
        /// Its topic (hashed for a private commons).
        topic: IdentTopic,
    },
    /// Leaves a topic a commons no longer uses (it turned out public, or private).
    Unsubscribe(IdentTopic),
    /// Dials an address; its outcome comes back as [`Input::Connected`] or [`Input::DialFailed`].
    Dial(Multiaddr),
    /// Listens through a hub's relay (`HUB-ADDR/p2p/HUB/p2p-circuit`): a reservation, whose
    /// fate comes back as [`Input::Reservation`].
    ListenVia {
        /// The hub.
        relay: PeerId,
        /// The relayed listen address.
        addr: Multiaddr,
    },
    /// Stops listening through a hub's relay ([`Output::ListenVia`]): the reservation is
    /// dropped (no [`Input::Reservation`] follows).
    StopListeningVia {
        /// The hub.
        relay: PeerId,
    },
    /// Announces a listen address as one others can reach this node at (a hub's; see
    /// [`crate::net::reach::may_be_external`]).
    AddExternal(Multiaddr),
    /// Withdraws an address [`Output::AddExternal`] announced.
    RemoveExternal(Multiaddr),
    /// Closes every connection to a peer.
    Disconnect(PeerId),
    /// Closes one connection.
    CloseConnection(ConnectionId),
    /// Asks something of the DHT (see `discovery.rs`).
    Dht(super::discovery::DhtOutput),
    /// Asks for an [`Input::Timer`] at this time (replacing any earlier request).
    WakeAt(Instant),
    /// Answers a command.
    Reply(Token, Reply),
}
