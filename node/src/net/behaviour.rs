//! The composed libp2p behaviour of a Hedgerow node and how each part is configured.
//!
//! Discovery: mDNS (optional) and Kademlia. Kademlia only learns peers the node is told about
//! (`kad.add_address`: bootstrap peers, and the identify-reported addresses the service lets
//! through), never periodically bootstraps, and serves the DHT to others. It carries one kind
//! of record: provider records of the commons nodes hold, keyed by
//! [`hedgerow_protocol::discovery::provider_key`] (see `serve/service/discovery.rs`).
//! Dissemination: gossipsub, signed by the libp2p key and held back until the application has
//! validated each message. Bulk transfer: the `/hedgerow/sync/1` request-response protocol, and
//! `/hedgerow/blob/1` for attachment blobs. Reach (see [`super::reach`]): the circuit relay v2
//! server on a hub (`serve --relay`), the relay client everywhere, AutoNAT, DCUtR hole punching
//! over relayed connections, and UPnP where it may run.

use std::time::Duration;

use libp2p::{
    autonat,
    connection_limits::{self, ConnectionLimits},
    dcutr, gossipsub, identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    mdns, ping, relay, request_response,
    swarm::{behaviour::toggle::Toggle, NetworkBehaviour},
    upnp, StreamProtocol,
};

use super::{
    codec::{
        speaks_sync_v3, speaks_sync_v4, ByteCounters, SyncCodec, MAX_REQUEST_BYTES, SYNC_PROTOCOL,
        SYNC_PROTOCOL_V2, SYNC_PROTOCOL_V3, SYNC_PROTOCOL_V4,
    },
    swarm::{NetConfig, NetError},
};

/// Protocol name of the Hedgerow Kademlia DHT (kept apart from the public IPFS DHT).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/hedgerow/kad/1.0.0");

/// Protocol name of the blob transfer protocol ([`hedgerow_protocol::blob_transfer`]).
pub const BLOB_PROTOCOL: StreamProtocol =
    StreamProtocol::new(hedgerow_protocol::blob_transfer::BLOB_PROTOCOL_NAME);

/// Protocol version announced by identify.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/hedgerow/1.0.0";

/// Largest gossipsub RPC, in bytes (1 MiB); payloads must leave room for the envelope.
pub const MAX_GOSSIP_BYTES: usize = MAX_REQUEST_BYTES;

/// Most established connections in total.
pub const MAX_ESTABLISHED_CONNECTIONS: u32 = 64;

/// Most established connections to one peer.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;

pub use derived::{Behaviour, BehaviourEvent};

/// Holds the derived behaviour so that only the generated [`BehaviourEvent`] skips the docs lint:
/// its variants are one per field below, documented there.
mod derived {
    #![allow(missing_docs)]

    use super::*;

    /// Every libp2p protocol a Hedgerow node speaks; events arrive as [`BehaviourEvent`].
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Refuses connections beyond [`MAX_ESTABLISHED_CONNECTIONS`] / [`MAX_CONNECTIONS_PER_PEER`].
        pub limits: connection_limits::Behaviour,
        /// Exchanges public keys, listen addresses and supported protocols with each peer.
        pub identify: identify::Behaviour,
        /// Measures round-trip times; failures are reported, connections are not closed by it.
        pub ping: ping::Behaviour,
        /// Local-link discovery, present only when [`NetConfig::mdns`] is set.
        pub mdns: Toggle<mdns::tokio::Behaviour>,
        /// DHT routing over peers the node was given, in server mode.
        pub kad: kad::Behaviour<MemoryStore>,
        /// Topic-based announcement of new contributions, one topic per commons.
        pub gossipsub: gossipsub::Behaviour,
        /// The sync protocol: opaque request and response frames.
        pub sync: request_response::Behaviour<SyncCodec>,
        /// The blob protocol: verified ranges of attachment blobs (see `serve::blobs`).
        pub blob: request_response::Behaviour<SyncCodec>,
        /// The circuit relay v2 server, present only on a hub (`serve --relay`).
        pub relay: Toggle<relay::Behaviour>,
        /// The relay client: reservations on hubs (`/p2p/HUB/p2p-circuit`) and relayed dials.
        pub relay_client: relay::client::Behaviour,
        /// Whether this node is reachable from outside, asked of connected peers.
        pub autonat: autonat::Behaviour,
        /// Upgrades a relayed connection to a direct one by hole punching where NATs allow.
        pub dcutr: dcutr::Behaviour,
        /// Port mapping on the router, present only when allowed and a listen address may be
        /// private IPv4 ([`super::reach::upnp_may_search`]).
        pub upnp: Toggle<upnp::tokio::Behaviour>,
    }
}

impl Behaviour {
    /// Builds every part from the node's key and configuration, counting sync bytes in
    /// `counters`; `relay_client` comes from the swarm builder, which made its transport.
    pub fn new(
        keypair: &Keypair,
        config: &NetConfig,
        counters: ByteCounters,
        relay_client: relay::client::Behaviour,
    ) -> Result<Self, NetError> {
        Ok(Self::prepare(keypair, config, counters)?(relay_client))
    }

    /// Builds every part that can fail, before the swarm builder makes the relay client (its
    /// behaviour comes with the transport): the returned function completes the behaviour.
    pub fn prepare(
        keypair: &Keypair,
        config: &NetConfig,
        counters: ByteCounters,
    ) -> Result<impl FnOnce(relay::client::Behaviour) -> Self, NetError> {
        let peer_id = keypair.public().to_peer_id();

        let limits = connection_limits::Behaviour::new(
            ConnectionLimits::default()
                .with_max_established(Some(MAX_ESTABLISHED_CONNECTIONS))
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
        );

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), keypair.public())
                .with_agent_version(format!("hedgerow/{}", env!("CARGO_PKG_VERSION"))),
        );

        let ping = ping::Behaviour::new(ping_config(config));

        let mdns = if config.mdns {
            let mdns = mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                .map_err(NetError::Mdns)?;
            Some(mdns)
        } else {
            None
        };

        let mut kad = kad::Behaviour::with_config(peer_id, kad_store(peer_id), kad_config());
        kad.set_mode(Some(kad::Mode::Server));

        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(MAX_GOSSIP_BYTES)
            .message_id_fn(content_message_id)
            .build()?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(NetError::Gossipsub)?;

        let blob_counters = counters.blob();
        let codec = SyncCodec::new(counters)
            .with_limits(config.max_request_bytes, config.max_response_bytes)
            .with_stall_timeout(config.stall_timeout);
        // Listed after the first: advertised (identify) and accepted, never preferred. The
        // third version implies the second, so only one of them is listed (identify stays
        // the same size).
        let newest = if speaks_sync_v4() {
            SYNC_PROTOCOL_V4
        } else if speaks_sync_v3() {
            SYNC_PROTOCOL_V3
        } else {
            SYNC_PROTOCOL_V2
        };
        let sync_protocols = [
            (SYNC_PROTOCOL, request_response::ProtocolSupport::Full),
            (newest, request_response::ProtocolSupport::Full),
        ];
        let sync =
            request_response::Behaviour::with_codec(codec, sync_protocols, sync_config(config));

        let blob_codec = SyncCodec::new(blob_counters)
            .with_limits(
                hedgerow_protocol::blob_transfer::MAX_REQUEST_BYTES,
                hedgerow_protocol::blob_transfer::MAX_RESPONSE_BYTES,
            )
            .with_stall_timeout(config.stall_timeout);
        let blob = request_response::Behaviour::with_codec(
            blob_codec,
            [(BLOB_PROTOCOL, request_response::ProtocolSupport::Full)],
            sync_config(config),
        );

        let relay = config
            .reach
            .relay
            .as_ref()
            .map(|limits| relay::Behaviour::new(peer_id, limits.relay_config()));
        let autonat = autonat::Behaviour::new(peer_id, autonat::Config::default());
        let dcutr = dcutr::Behaviour::new(peer_id);
        // Built only when it may map something: building it sends the SSDP search.
        let upnp = (config.reach.upnp && super::reach::upnp_may_search(&config.listen))
            .then(upnp::tokio::Behaviour::default);

        Ok(move |relay_client| Self {
            limits,
            identify,
            ping,
            mdns: Toggle::from(mdns),
            kad,
            gossipsub,
            sync,
            blob,
            relay: Toggle::from(relay),
            relay_client,
            autonat,
            dcutr,
            upnp: Toggle::from(upnp),
        })
    }
}

/// Ping settings: the interval and timeout of [`NetConfig`].
pub(crate) fn ping_config(config: &NetConfig) -> ping::Config {
    ping::Config::new()
        .with_interval(config.ping_interval)
        .with_timeout(config.ping_timeout)
}

/// How often kad republishes the provider records of the commons this node holds.
pub const PROVIDER_REPUBLISH: Duration = Duration::from_secs(60 * 60);

/// How long a provider record lives on the nodes that store it without being republished: a
/// node that went away stops being named as a holder after this.
pub const PROVIDER_TTL: Duration = Duration::from_secs(4 * 60 * 60);

/// Longest one DHT query (an announcement, a lookup) may take.
pub const KAD_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Most commons keys whose provider records a node stores (its own and others').
pub const MAX_PROVIDER_KEYS: usize = 4096;

/// Kademlia settings: our own DHT, no periodic bootstrap, and only peers the node was given
/// enter the routing table, so an idle node sends nothing on its own except kad's hourly
/// republish of the commons it holds ([`PROVIDER_REPUBLISH`]); queries end after
/// [`KAD_QUERY_TIMEOUT`].
pub(crate) fn kad_config() -> kad::Config {
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config
        .set_periodic_bootstrap_interval(None)
        .set_kbucket_inserts(kad::BucketInserts::Manual)
        .set_query_timeout(KAD_QUERY_TIMEOUT)
        .set_provider_publication_interval(Some(PROVIDER_REPUBLISH))
        .set_provider_record_ttl(Some(PROVIDER_TTL))
        // Nodes store provider records only (the service stores each one it is given, so it
        // knows which keys it holds); value records are not used.
        .set_record_filtering(kad::StoreInserts::FilterBoth)
        .set_record_ttl(Some(PROVIDER_TTL))
        .set_publication_interval(None)
        .set_replication_interval(None);
    kad_config
}

/// The DHT's store: provider records only (no value record is accepted), bounded.
pub(crate) fn kad_store(peer_id: libp2p::PeerId) -> MemoryStore {
    MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_records: 0,
            max_value_bytes: 0,
            max_provided_keys: MAX_PROVIDER_KEYS,
            ..kad::store::MemoryStoreConfig::default()
        },
    )
}

/// Sync request-response settings: [`NetConfig::request_timeout`] per exchange.
pub(crate) fn sync_config(config: &NetConfig) -> request_response::Config {
    request_response::Config::default().with_request_timeout(config.request_timeout)
}

/// Gossipsub message id: the BLAKE3 hash of the payload, so equal payloads are one message.
fn content_message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::new(blake3::hash(&message.data).as_bytes())
}
