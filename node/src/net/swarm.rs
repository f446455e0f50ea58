//! Building the libp2p swarm: transports, timeouts, listening, and the node's libp2p identity.
//!
//! The transports are TCP (noise + yamux) and QUIC; with `--max-rate` ([`NetConfig::max_rate`])
//! TCP's byte stream is paced by [`RateLimited`] and QUIC is off (see [`super::rate_limit`]).
//! Every timeout is chosen for links with
//! seconds of latency (radio, satellite, overloaded rural uplinks): a slow peer must not be
//! declared dead early. The swarm is wrapped in libp2p's bandwidth transport so
//! [`ByteCounters::transport_bytes`] can report all substream bytes.

use std::time::Duration;

use libp2p::{
    identity::Keypair, multiaddr::Protocol, noise, tcp, yamux, Multiaddr, Swarm, SwarmBuilder,
    TransportError,
};

use super::{
    behaviour::Behaviour,
    codec::{ByteCounters, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES},
    rate_limit::{recv_buffer_bytes, shrink_recv_buffer, MaxRate, RateLimited, RateLimiter},
};
use libp2p::core::{muxing::StreamMuxerBox, transport::OptionalTransport, upgrade, Transport};

/// Settings of the libp2p swarm; [`Default`] listens nowhere and has mDNS off.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4717` or `/ip4/0.0.0.0/udp/4717/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Whether to discover peers on the local link with mDNS (multicast; off in tests).
    pub mdns: bool,
    /// How long a connection with no open streams is kept before it is closed.
    pub idle_timeout: Duration,
    /// Time between two pings on a connection.
    pub ping_interval: Duration,
    /// How long a ping may go unanswered before a failure is reported.
    pub ping_timeout: Duration,
    /// Upper bound on one sync exchange, from sending the request to the last byte of the
    /// response. Generous: a slow link is policed by [`stall_timeout`](Self::stall_timeout).
    pub request_timeout: Duration,
    /// How long a sync frame may make no progress at all before the exchange fails.
    pub stall_timeout: Duration,
    /// How long dialing plus the handshakes may take; also QUIC's silence limit per connection.
    pub connection_timeout: Duration,
    /// Largest sync request payload read or written; peers must agree.
    pub max_request_bytes: usize,
    /// Largest sync response payload read or written; peers must agree.
    pub max_response_bytes: usize,
    /// NAT traversal: the relay server (a hub) and UPnP; both off by default.
    pub reach: super::reach::ReachConfig,
    /// Cap on all bytes sent and, separately, all bytes received (`serve --max-rate`); with
    /// one, QUIC is neither listened on nor dialled.
    pub max_rate: Option<MaxRate>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            mdns: false,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(15),
            ping_timeout: Duration::from_secs(20),
            // A whole budget-sized response (512 KiB, 437 s) at 9.6 kbit/s, with room for
            // retransmits; a dead link fails after `stall_timeout` instead.
            request_timeout: Duration::from_secs(600),
            stall_timeout: Duration::from_secs(45),
            connection_timeout: Duration::from_secs(30),
            max_request_bytes: MAX_REQUEST_BYTES,
            max_response_bytes: MAX_RESPONSE_BYTES,
            reach: super::reach::ReachConfig::default(),
            max_rate: None,
        }
    }
}

impl NetConfig {
    /// Listens on IPv4 loopback only, TCP and QUIC on ephemeral ports, mDNS off: for tests.
    pub fn loopback() -> Self {
        let tcp = Multiaddr::empty()
            .with(Protocol::Ip4([127, 0, 0, 1].into()))
            .with(Protocol::Tcp(0));
        let quic = Multiaddr::empty()
            .with(Protocol::Ip4([127, 0, 0, 1].into()))
            .with(Protocol::Udp(0))
            .with(Protocol::QuicV1);
        Self {
            listen: vec![tcp, quic],
            ..Self::default()
        }
    }
}

/// Errors while building the swarm.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The noise handshake could not be set up with our key.
    #[error("cannot set up noise encryption: {0}")]
    Noise(#[from] noise::Error),
    /// The gossipsub configuration was rejected.
    #[error("invalid gossipsub configuration: {0}")]
    GossipsubConfig(#[from] libp2p::gossipsub::ConfigBuilderError),
    /// Gossipsub refused the message authenticity / validation mode combination.
    #[error("cannot create gossipsub behaviour: {0}")]
    Gossipsub(&'static str),
    /// The mDNS socket could not be opened.
    #[error("cannot start mDNS: {0}")]
    Mdns(#[source] std::io::Error),
    /// Another process holds the port of a listen address (libp2p itself would share it:
    /// its TCP listeners set `SO_REUSEPORT`, so a second node on the port would answer half
    /// the dials).
    #[error("port {port} ({addr}) is already in use by another process")]
    PortInUse {
        /// The address from [`NetConfig::listen`].
        addr: Multiaddr,
        /// Its port.
        port: u16,
    },
    /// A listen address was refused by every transport.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address from [`NetConfig::listen`].
        addr: Multiaddr,
        /// Why the transports refused it.
        #[source]
        source: TransportError<std::io::Error>,
    },
}

/// Builds a swarm with TCP and QUIC, listening on `config.listen`, counting into `counters`.
///
/// Must be called inside a tokio runtime.
pub fn build_swarm(
    keypair: Keypair,
    config: &NetConfig,
    counters: ByteCounters,
) -> Result<Swarm<Behaviour>, NetError> {
    let complete = Behaviour::prepare(&keypair, config, counters.clone())?;
    let connection_timeout = config.connection_timeout;
    let quic_idle_ms = u32::try_from(connection_timeout.as_millis()).unwrap_or(u32::MAX);
    let limiter = config.max_rate.map(RateLimiter::new);
    let quic_on = limiter.is_none();
    let noise = noise::Config::new(&keypair)?;
    // TCP is built here rather than by `with_tcp` so its stream can be paced under noise.
    let Ok(builder) = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(|_| {
            tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .map(move |stream, _| {
                    if let Some(limiter) = &limiter {
                        shrink_recv_buffer(&stream.0, recv_buffer_bytes(limiter.rate()));
                    }
                    RateLimited::new(stream, limiter.clone())
                })
                .upgrade(upgrade::Version::V1Lazy)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        });
    let Ok(builder) = builder.with_other_transport(|key| {
        let mut quic = libp2p::quic::Config::new(key);
        quic.handshake_timeout = connection_timeout;
        quic.max_idle_timeout = quic_idle_ms;
        let transport = libp2p::quic::tokio::Transport::new(quic)
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
        match quic_on {
            true => OptionalTransport::some(transport),
            false => OptionalTransport::none(),
        }
    });
    // Relayed connections get their own noise and yamux over the circuit (paced too: a
    // circuit rides on the paced TCP connection to its hub).
    let builder = builder.with_relay_client(noise::Config::new, yamux::Config::default)?;
    // The builder borrows the registry until `build`, so the whole chain runs under the lock.
    let mut swarm = counters.with_transport_registry(|registry| {
        let Ok(builder) = builder
            .with_bandwidth_metrics(registry)
            .with_behaviour(|_, relay_client| complete(relay_client));
        builder
            .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
            .with_connection_timeout(connection_timeout)
            .build()
    });

    let listen: Vec<&Multiaddr> = config
        .listen
        .iter()
        .filter(|addr| {
            let quic = addr.iter().any(|p| matches!(p, Protocol::QuicV1));
            if quic && !quic_on {
                tracing::info!("not listening on {addr}: QUIC is off under --max-rate");
            }
            quic_on || !quic
        })
        .collect();
    for addr in &listen {
        check_port_free(addr)?;
    }
    for addr in listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|source| NetError::Listen {
                addr: addr.clone(),
                source,
            })?;
    }
    Ok(swarm)
}

/// Refuses a listen address whose fixed port another process holds.
///
/// libp2p-tcp (0.45) sets `SO_REUSEPORT` on every listening socket whatever its config (the
/// deprecated `port_reuse` option does nothing), so two nodes on one port would both listen
/// and the kernel would split the dials between them. A socket bound here without it fails
/// with `AddrInUse` if anyone listens on the port, and is closed again at once; a node that
/// already holds the port with `SO_REUSEPORT` refuses it too, so the check also stops a second
/// hedgerow. UDP (QUIC) is probed the same way. Port 0 is always free.
fn check_port_free(addr: &Multiaddr) -> Result<(), NetError> {
    let mut ip = None;
    let mut port = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some((p, true)),
            Protocol::Udp(p) => port = Some((p, false)),
            _ => {}
        }
    }
    let (Some(ip), Some((number, tcp))) = (ip, port) else {
        return Ok(());
    };
    if number == 0 {
        return Ok(());
    }
    let socket = std::net::SocketAddr::new(ip, number);
    let probe = if tcp {
        std::net::TcpListener::bind(socket).map(drop)
    } else {
        std::net::UdpSocket::bind(socket).map(drop)
    };
    match probe {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(NetError::PortInUse {
            addr: addr.clone(),
            port: number,
        }),
        // Anything else (no such address here, no permission) is libp2p's to report.
        _ => Ok(()),
    }
}

/// The libp2p keypair for a 32-byte ed25519 secret: a node passes its network key
/// ([`crate::home::NetworkKey`]), never its device (author) key, so its PeerId names no author.
pub fn keypair_from_ed25519_secret(mut secret: [u8; 32]) -> Keypair {
    // `ed25519_from_bytes` zeroes the buffer it is given; only the length can fail.
    Keypair::ed25519_from_bytes(&mut secret).expect("any 32 bytes are a valid ed25519 secret key")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port another socket holds is refused by name, TCP and UDP alike; a free one and port 0
    /// pass.
    #[test]
    fn a_listen_port_held_by_another_socket_is_refused() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr");
        let error = check_port_free(&addr).unwrap_err();
        assert!(matches!(error, NetError::PortInUse { port: p, .. } if p == port));
        assert!(
            error.to_string().contains(&format!("port {port}")),
            "{error}"
        );
        drop(tcp);
        assert!(check_port_free(&addr).is_ok());

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("addr").port();
        let quic: Multiaddr = format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
            .parse()
            .expect("addr");
        assert!(matches!(
            check_port_free(&quic),
            Err(NetError::PortInUse { .. })
        ));
        let any: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("addr");
        assert!(check_port_free(&any).is_ok());
    }

    #[test]
    fn keypair_is_deterministic_in_the_secret() {
        let a = keypair_from_ed25519_secret([7; 32]).public().to_peer_id();
        let b = keypair_from_ed25519_secret([7; 32]).public().to_peer_id();
        let c = keypair_from_ed25519_secret([8; 32]).public().to_peer_id();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn peer_id_embeds_the_same_ed25519_public_key_as_dalek() {
        let secret = [42u8; 32];
        let dalek = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        let public = keypair_from_ed25519_secret(secret).public();
        let libp2p_public = public.try_into_ed25519().expect("an ed25519 key");
        assert_eq!(libp2p_public.to_bytes(), dalek.to_bytes());
    }

    /// The values README's "On a slow or flapping link" states, as libp2p is given them, and
    /// what "quiet" means: listening nowhere, no multicast, no periodic Kademlia bootstrap, and
    /// no peer entering the routing table unless the node was told about it.
    #[test]
    fn default_config_is_quiet() {
        let config = NetConfig::default();
        assert!(config.listen.is_empty());
        assert!(!config.mdns);
        assert_eq!(config.ping_interval, Duration::from_secs(15));
        assert_eq!(config.ping_timeout, Duration::from_secs(20));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.connection_timeout, Duration::from_secs(30));
        assert_eq!(config.stall_timeout, Duration::from_secs(45));
        assert_eq!(config.request_timeout, Duration::from_secs(600));
        assert_eq!(config.max_request_bytes, 1 << 20);
        assert_eq!(config.max_response_bytes, 8 << 20);

        // libp2p keeps these private; their Debug output is the only way to read them back.
        let ping = format!("{:?}", super::super::behaviour::ping_config(&config));
        assert!(
            ping.contains("timeout: 20s") && ping.contains("interval: 15s"),
            "{ping}"
        );
        let sync = format!("{:?}", super::super::behaviour::sync_config(&config));
        assert!(sync.contains("request_timeout: 600s"), "{sync}");
        let kad = format!("{:?}", super::super::behaviour::kad_config());
        assert!(kad.contains("periodic_bootstrap_interval: None"), "{kad}");
        assert!(kad.contains("kbucket_inserts: Manual"), "{kad}");
    }

    /// Why the request timeout is ten minutes: the largest response a node asks for (a full
    /// budget) must arrive whole over a 9.6 kbit/s link (GSM data, a congested satellite
    /// share), since a response cut by the timeout is all lost and would be cut again; a dead
    /// link is caught by the stall timeout long before.
    #[test]
    fn a_full_response_fits_the_request_timeout_on_a_9600_bit_link() {
        let config = NetConfig::default();
        let full_response_secs =
            f64::from(hedgerow_protocol::sync::DEFAULT_RESPONSE_BUDGET) * 8.0 / 9_600.0;
        assert!(
            config.request_timeout.as_secs_f64() >= full_response_secs * 1.25,
            "{} s for a response of {} s",
            config.request_timeout.as_secs(),
            full_response_secs
        );
        assert!(config.stall_timeout * 10 <= config.request_timeout);
        assert!(config.stall_timeout > config.ping_timeout);
    }
}
