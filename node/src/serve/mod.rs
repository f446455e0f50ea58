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
mod changes;
pub use blob_local::remove_stale_outboards;
pub use changes::{DocChange, CHANGE_FEED_CAPACITY};
pub mod blobs;
mod control_server;
mod handle;
mod link;
mod local;
pub mod metrics;
pub mod peers;
mod service;
#[cfg(test)]
mod sim;
mod stats;
mod status;
mod sync_once;
pub mod sync_window;

pub use handle::{HandleError, Inbox, NodeHandle};
pub use libp2p::Multiaddr;
pub use local::LocalState;
pub use service::{
    routable_addrs, DhtInput, DhtOutput, DhtStatus, Found, KnownPeerRow, LookupRow, PeersReply,
    ProvidingRow, RecordRow,
};
pub use service::{
    BlobsReply, Command, Failure, InboundId, Input, Nat, Output, Reply, RequestId,
    ReservationEvent, Route, Service, ServiceConfig, SyncOrder, BLOB_WAIT, CONNECT_TIMEOUT,
    SNAPSHOT_INTERVAL, SYNC_DEADLINE,
};
pub use service::{DeferredPull, MeteringStatus, BULK_DOCS};
pub use stats::{Counters, ItemRefusal, Refusal, SyncReport};
pub use status::{
    BlobTransferStatus, ConnectedPeer, HeldCommons, HolePunchStatus, JoinReply, NodeStatus,
    OverQuota, ReachStatus, ReservationStatus, StatusBytes,
};
pub(crate) use sync_once::dial_error_text;
pub use sync_once::{seconds_text, sync_once, SyncProgress};

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
    /// Print each address the node listens on, with `/p2p/` and its peer id (what others
    /// give `--peer`), to standard error as it comes up: `hedgerow serve` does.
    pub announce: bool,
    /// Where to serve Prometheus metrics (`/metrics`), if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// NAT traversal: relay server (`--relay`, off by default) and UPnP (on by default where
    /// a listen address may be private IPv4; `--no-upnp`).
    pub reach: crate::net::reach::ReachConfig,
    /// Cap on bytes sent and on bytes received, across all connections (`--max-rate`).
    pub max_rate: Option<crate::net::MaxRate>,
    /// Hours of the local day for bulk sync (`--sync-window`); none: any time.
    pub sync_window: Option<sync_window::SyncWindow>,
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
            announce: false,
            metrics: None,
            reach: crate::net::reach::ReachConfig {
                relay: None,
                upnp: true,
            },
            max_rate: None,
            sync_window: None,
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
    /// The metrics address could not be bound.
    #[error("--metrics {addr}: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A bad address in the configuration.
    #[error("`{0}` in config.json is not a valid multiaddress (e.g. /ip4/192.0.2.7/tcp/4717/p2p/12D3Koo...)")]
    BadAddress(String),
    /// A one-shot sync never reached its peer.
    #[error("could not reach the peer at {addr}: {reason}")]
    PeerUnreachable {
        /// The address as given.
        addr: String,
        /// What happened, in words (refused, another peer there, no answer within N s).
        reason: String,
    },
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
        reach: config.reach.clone(),
        max_rate: config.max_rate,
        ..NetConfig::default()
    };
    let swarm = node_swarm(home, &net, &bytes)?;
    let mut actor = actor_on(swarm, bytes, replicas, config, remembered)?;
    // A running node announces its commons and looks wanted ones up, from its next step on
    // (its first listen address comes at once).
    actor.service.discovery.enabled = true;
    Ok(actor)
}

/// The node's swarm, named by its network key, not the author key: a peer that sees our
/// address learns no author.
fn node_swarm(
    home: &Home,
    net: &NetConfig,
    bytes: &ByteCounters,
) -> Result<libp2p::Swarm<crate::net::Behaviour>, ServeError> {
    let network_key = home.network_key().map_err(NodeError::from)?;
    let keypair = keypair_from_ed25519_secret(network_key.secret_bytes());
    Ok(build_swarm(keypair, net, bytes.clone())?)
}

/// The service on a built swarm.
fn actor_on(
    mut swarm: libp2p::Swarm<crate::net::Behaviour>,
    bytes: ByteCounters,
    replicas: Replicas,
    config: &ServeConfig,
    remembered: Vec<Multiaddr>,
) -> Result<Actor, ServeError> {
    let mut book = peers::PeerBook::new(config.max_connections_per_ip, config.ip_penalty_limit);
    let now = Instant::now();
    let mut listed = Vec::new();
    for addr in &config.peers {
        book.add_target(addr.clone(), now);
        // The bootstrap list seeds the DHT's routing table; kad bootstraps from it.
        if let Some((peer, plain)) = split_peer(addr) {
            swarm.behaviour_mut().kad.add_address(&peer, plain);
        }
        listed.push((addr.clone(), Found::Configured));
    }
    for addr in remembered {
        book.add_target(addr.clone(), now);
        listed.push((addr, Found::Remembered));
    }
    let limits = crate::blobs::files::limits_at(&replicas.home_root)?;
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
    service.set_blob_serve_limits(limits.serve_limits());
    service.set_relay_server(config.reach.relay.is_some());
    service.set_metering(
        config.max_rate,
        config.sync_window,
        sync_window::LocalClock::system(),
    );
    for (addr, how) in listed {
        service.discovery.listed(&addr, how, now);
    }
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
    actor.announce_changes(inbox.handle.change_feed());
    let socket = home.control_socket();
    let control = control_server::start(&socket, inbox.handle.clone()).map_err(|source| {
        ServeError::Control {
            path: socket.clone(),
            source,
        }
    })?;
    // libp2p's metrics (named libp2p_*) are recorded from every swarm event; the registry is shared with the
    // scrape task once they are registered.
    let mut recorder = None;
    let mut metrics_task = None;
    if let Some(addr) = config.metrics {
        let listener = metrics::bind(addr)
            .await
            .map_err(|source| ServeError::Metrics { addr, source })?;
        let bound = listener.local_addr().unwrap_or(addr);
        let mut registry = prometheus_client::registry::Registry::default();
        recorder = Some(libp2p::metrics::Metrics::new(&mut registry));
        let registry = std::sync::Arc::new(registry);
        metrics_task = Some(tokio::spawn(metrics::serve(
            listener,
            inbox.handle.clone(),
            registry,
        )));
        if config.announce {
            eprintln!("metrics at http://{bound}/metrics");
        }
        tracing::info!("metrics at http://{bound}/metrics");
    }
    tokio::pin!(shutdown);
    let local_peer = *actor.swarm.local_peer_id();
    loop {
        let wake = tokio::time::Instant::from_std(actor.wake);
        tokio::select! {
            event = actor.next_event() => {
                if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } = &event {
                    if config.announce {
                        // A relayed address names this node already (`.../p2p-circuit/p2p/ID`).
                        let full = match address.iter().last() {
                            Some(libp2p::multiaddr::Protocol::P2p(_)) => address.clone(),
                            _ => address.clone().with(libp2p::multiaddr::Protocol::P2p(local_peer)),
                        };
                        eprintln!("listening on {full}");
                    }
                }
                if let Some(recorder) = &recorder {
                    libp2p::metrics::Recorder::record(recorder, &event);
                }
                actor.on_swarm_event(event)
            }
            Some(call) = inbox.calls.recv() => actor.call(call),
            _ = tokio::time::sleep_until(wake) => actor.timer(),
            _ = &mut shutdown => break,
        }
    }
    control.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    // Gone already if the node never got to listen; nothing to clean up then.
    let _ = std::fs::remove_file(&socket);
    actor.service.local_mut().save_snapshots()?;
    actor.service.local_mut().commit()?;
    Ok(())
}
