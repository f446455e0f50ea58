//! `hedgerow serve` and `hedgerow sync`: the running node.
//!
//! [`run`] is a library function: it opens the home's store, starts the
//! swarm and the control socket, and runs the [`Service`] (through its actor) until
//! `shutdown` resolves. The binary only parses arguments; tests call it too.
//! Everything asked of a running node goes through a [`NodeHandle`] (typed commands, typed
//! replies): the control socket is a JSON adapter over one, and an in-process caller passes
//! its [`Inbox`] to [`run_with`] and keeps the handle.
//! [`sync_once`] runs the same service for one catch-up with one peer, asking it through a
//! handle too.

mod actor;
mod blob_local;
pub use blob_local::remove_stale_outboards;
pub mod blobs;
mod control_server;
mod handle;
mod link;
mod local;
pub mod peers;
mod service;
#[cfg(test)]
mod sim;
mod stats;
mod status;

pub use handle::{HandleError, Inbox, NodeHandle};
pub use libp2p::Multiaddr;
pub use local::LocalState;
pub use service::{
    BlobsReply, Command, Failure, InboundId, Input, Output, Reply, RequestId, Service,
    ServiceConfig, BLOB_WAIT, SNAPSHOT_INTERVAL, SYNC_DEADLINE,
};
pub use stats::{Counters, ItemRefusal, Refusal, SyncReport};
pub use status::{
    BlobTransferStatus, ConnectedPeer, HeldCommons, JoinReply, NodeStatus, StatusBytes,
};

use crate::home::Home;
use crate::net::{build_swarm, keypair_from_ed25519_secret, ByteCounters, NetConfig, NetError};
use crate::replicas::{NodeError, Replicas};
use crate::store::StoreError;
use actor::Actor;
use std::future::Future;
use std::time::{Duration, Instant};

/// Settings of a running node.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Peers to keep connected to (bootstrap).
    pub peers: Vec<Multiaddr>,
    /// mDNS discovery on the local link.
    pub mdns: bool,
    /// How often to re-run catch-up sync with connected peers.
    pub sync_interval: Duration,
    /// Most connections one remote IP address may hold open at once.
    pub max_connections_per_ip: usize,
    /// Offences (by any peer ids) from one remote IP address before it is banned.
    pub ip_penalty_limit: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4717".parse().expect("static multiaddr"),
                "/ip4/0.0.0.0/udp/4717/quic-v1"
                    .parse()
                    .expect("static multiaddr"),
            ],
            peers: Vec::new(),
            mdns: true,
            sync_interval: Duration::from_secs(60),
            max_connections_per_ip: peers::DEFAULT_CONNECTIONS_PER_IP,
            ip_penalty_limit: peers::IP_PENALTY_LIMIT,
        }
    }
}

/// Why the node could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Opening the store or home failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The network could not start.
    #[error("network: {0}")]
    Net(#[from] NetError),
    /// The control socket could not be created.
    #[error("control socket {path}: {source}")]
    Control {
        /// The socket path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another hedgerow command kept the store for longer than `serve` waits.
    #[error("the store at {path} stayed in use by another hedgerow command for {} s, so serve did not start", STORE_WAIT.as_secs())]
    StoreBusy {
        /// The store directory.
        path: std::path::PathBuf,
    },
    /// A bad address in the configuration.
    #[error("`{0}` in config.json is not a valid multiaddress (e.g. /ip4/192.0.2.7/tcp/4717/p2p/12D3Koo...)")]
    BadAddress(String),
}

/// Longest `serve` waits for other hedgerow commands to release the store.
///
/// They are short (one request each) and, seeing `serve` announced, new ones wait for
/// its control socket instead of taking the store; a long `hedgerow sync` is the one
/// that may hold it this long.
pub const STORE_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting `serve` retries the store.
const STORE_POLL: Duration = Duration::from_millis(20);

/// Opens the store, waiting up to [`STORE_WAIT`] for another process to release it.
async fn open_waiting(home: &Home) -> Result<Replicas, ServeError> {
    let deadline = Instant::now() + STORE_WAIT;
    loop {
        match Replicas::open(home) {
            Err(NodeError::Store(StoreError::Locked { path })) => {
                if Instant::now() >= deadline {
                    return Err(ServeError::StoreBusy { path });
                }
                tokio::time::sleep(STORE_POLL).await;
            }
            opened => return Ok(opened?),
        }
    }
}

fn start_actor(
    replicas: Replicas,
    home: &Home,
    config: &ServeConfig,
    listen: Vec<Multiaddr>,
    remembered: Vec<Multiaddr>,
) -> Result<Actor, ServeError> {
    let bytes = ByteCounters::new();
    let net = NetConfig {
        listen,
        mdns: config.mdns,
        ..NetConfig::default()
    };
    // The network key, not the author key: a peer that sees our address learns no author.
    let network_key = home.network_key().map_err(NodeError::from)?;
    let keypair = keypair_from_ed25519_secret(network_key.secret_bytes());
    let mut swarm = build_swarm(keypair, &net, bytes.clone())?;
    let mut book = peers::PeerBook::new(config.max_connections_per_ip, config.ip_penalty_limit);
    let now = Instant::now();
    for addr in &config.peers {
        book.add_target(addr.clone(), now);
        if let Some((peer, plain)) = split_peer(addr) {
            swarm.behaviour_mut().kad.add_address(&peer, plain);
        }
    }
    for addr in remembered {
        book.add_target(addr, now);
    }
    let mut service = Service::new(
        ServiceConfig {
            local_peer: *swarm.local_peer_id(),
            sync_interval: config.sync_interval,
        },
        replicas,
        bytes.clone(),
        book,
        now,
    )?;
    if std::env::var_os(LIE_ABOUT_BLOBS_ENV).is_some_and(|v| v == "1") {
        tracing::warn!(
            "{LIE_ABOUT_BLOBS_ENV}=1: this node damages every blob it sends (tests only)"
        );
        service.lie_about_blobs();
    }
    Ok(Actor::new(swarm, service, bytes))
}

/// Test-only switch: `1` makes `serve` damage one byte of every blob range it sends, so the
/// tests can run a lying peer over real libp2p.
pub const LIE_ABOUT_BLOBS_ENV: &str = "HEDGEROW_TEST_LIE_ABOUT_BLOBS";

/// `/ip4/.../tcp/N/p2p/ID` -> (ID, `/ip4/.../tcp/N`).
fn split_peer(addr: &Multiaddr) -> Option<(libp2p::PeerId, Multiaddr)> {
    let peer = addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })?;
    Some((peer, service::strip_p2p(addr)))
}

/// Runs the node until `shutdown` resolves: swarm, sync, gossip and the control socket.
///
/// It announces itself in the home first (a second `serve` is refused), then waits
/// (up to [`STORE_WAIT`]) for commands that hold the store; commands started from then
/// on wait for its control socket.
pub async fn run(
    home: &Home,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (_handle, inbox) = NodeHandle::new();
    run_with(home, config, inbox, shutdown).await
}

/// [`run`], serving the handles of `inbox` besides the control socket: an in-process caller
/// makes a [`NodeHandle::new`] pair, keeps the handle and passes the inbox here.
pub async fn run_with(
    home: &Home,
    mut config: ServeConfig,
    mut inbox: Inbox,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    // Dropped last, after the store closes: until then other commands wait for us.
    let _announced = home.announce_serve().map_err(NodeError::from)?;
    let file_config = home.config().map_err(NodeError::from)?;
    for text in &file_config.peers {
        config.peers.push(
            text.parse()
                .map_err(|_| ServeError::BadAddress(text.clone()))?,
        );
    }
    let replicas = open_waiting(home).await?;
    let mut remembered = Vec::new();
    for (_, known) in replicas.store().peers().map_err(NodeError::from)? {
        for addr in known
            .addrs
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
        {
            remembered.push(addr);
        }
    }
    let mut actor = start_actor(replicas, home, &config, config.listen.clone(), remembered)?;
    let socket = home.control_socket();
    let control = control_server::start(&socket, inbox.handle.clone()).map_err(|source| {
        ServeError::Control {
            path: socket.clone(),
            source,
        }
    })?;
    tokio::pin!(shutdown);
    loop {
        let wake = tokio::time::Instant::from_std(actor.wake);
        tokio::select! {
            event = actor.next_event() => actor.on_swarm_event(event),
            Some(call) = inbox.calls.recv() => actor.call(call),
            _ = tokio::time::sleep_until(wake) => actor.timer(),
            _ = &mut shutdown => break,
        }
    }
    control.abort();
    // Gone already if the node never got to listen; nothing to clean up then.
    let _ = std::fs::remove_file(&socket);
    actor.service.local_mut().save_snapshots()?;
    actor.service.local_mut().commit()?;
    Ok(())
}

/// How far a one-shot sync has got, for a progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncProgress {
    /// Documents received so far.
    pub docs_received: u64,
    /// Changes received so far.
    pub changes_received: u64,
    /// Sync bytes received so far.
    pub bytes_received: u64,
    /// Sync bytes sent so far.
    pub bytes_sent: u64,
    /// Whether the peer is connected.
    pub connected: bool,
}

/// Runs one catch-up sync with one peer and returns what moved; for cron jobs on rarely connected farms.
///
/// Our pulls run first; then the node keeps answering the peer's own pulls
/// until it has been quiet for `linger`, so the exchange goes both ways.
pub async fn sync_once(
    home: &Home,
    peer: Multiaddr,
    linger: Duration,
    mut progress: impl FnMut(&SyncProgress),
) -> Result<SyncReport, ServeError> {
    let config = ServeConfig {
        listen: Vec::new(),
        peers: Vec::new(),
        mdns: false,
        sync_interval: Duration::from_secs(3600),
        ..ServeConfig::default()
    };
    let mut actor = start_actor(Replicas::open(home)?, home, &config, Vec::new(), Vec::new())?;
    let (handle, mut inbox) = NodeHandle::new();
    let sync = handle.sync(peer);
    tokio::pin!(sync);
    // Only for the progress display and the linger: the service wakes itself.
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut report = None;
    let mut quiet_since = Instant::now();
    let mut answered = actor.service.counters().requests_answered;
    loop {
        let wake = tokio::time::Instant::from_std(actor.wake);
        tokio::select! {
            event = actor.next_event() => actor.on_swarm_event(event),
            Some(call) = inbox.calls.recv() => actor.call(call),
            done = &mut sync, if report.is_none() => {
                // The actor runs in this task, so its end of the handle never goes away.
                report = Some(done.unwrap_or_default());
                quiet_since = Instant::now();
            }
            _ = tokio::time::sleep_until(wake) => actor.timer(),
            _ = tick.tick() => {
                let counters = actor.service.counters();
                progress(&SyncProgress {
                    docs_received: counters.docs_received,
                    changes_received: counters.changes_received,
                    bytes_received: actor.bytes.received(),
                    bytes_sent: actor.bytes.sent(),
                    connected: actor.service.connected_count() > 0,
                });
                if counters.requests_answered != answered {
                    answered = counters.requests_answered;
                    quiet_since = Instant::now();
                }
                if report.is_some() && (quiet_since.elapsed() >= linger || actor.service.connected_count() == 0) {
                    break;
                }
            }
        }
    }
    actor.service.local_mut().save_snapshots()?;
    actor.service.local_mut().commit()?;
    let mut report = report.unwrap_or_default();
    report.docs_sent = actor.service.counters().docs_sent;
    report.bytes_sent = actor.bytes.sent();
    report.bytes_received = actor.bytes.received();
    Ok(report)
}
