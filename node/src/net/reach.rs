//! Reaching nodes behind NAT with libp2p's own parts: the circuit relay v2 server a hub runs
//! (`serve --relay`) and its limits, when UPnP may look for a gateway, and how to read a
//! relayed address.
//!
//! The relay client, AutoNAT and DCUtR run on every node; which relay to reserve a slot on,
//! and when, is the service's decision (`serve::service::reach`).

use std::time::Duration;

use libp2p::{multiaddr::Protocol, relay, Multiaddr, PeerId};

/// The relay v2 hop protocol: a peer that lists it in identify serves as a relay.
pub const HOP_PROTOCOL: libp2p::StreamProtocol = relay::HOP_PROTOCOL_NAME;

/// Default of [`RelayLimits::max_circuits`].
pub const DEFAULT_RELAY_CIRCUITS: usize = 32;
/// Default of [`RelayLimits::max_circuits_per_peer`].
pub const DEFAULT_RELAY_CIRCUITS_PER_PEER: usize = 4;
/// Default of [`RelayLimits::max_circuit_bytes`]: 64 MiB, a whole initial sync of a large
/// commons; libp2p's own 128 KiB is meant for a hole punch only, and would cut a sync.
pub const DEFAULT_RELAY_CIRCUIT_BYTES: u64 = 64 << 20;
/// Default of [`RelayLimits::max_circuit_duration`]: 30 minutes (libp2p's is 2).
pub const DEFAULT_RELAY_CIRCUIT_SECS: u64 = 30 * 60;

/// What a hub's relay lets through; a circuit that reaches a limit is closed, and the farms
/// dial through the relay again (a fresh circuit) when they still need each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// Circuits open through this hub at once, all peers together.
    pub max_circuits: usize,
    /// Circuits one peer may have open through this hub at once.
    pub max_circuits_per_peer: usize,
    /// Bytes one circuit may carry, both ways together.
    pub max_circuit_bytes: u64,
    /// How long one circuit may stay open.
    pub max_circuit_duration: Duration,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_circuits: DEFAULT_RELAY_CIRCUITS,
            max_circuits_per_peer: DEFAULT_RELAY_CIRCUITS_PER_PEER,
            max_circuit_bytes: DEFAULT_RELAY_CIRCUIT_BYTES,
            max_circuit_duration: Duration::from_secs(DEFAULT_RELAY_CIRCUIT_SECS),
        }
    }
}

impl RelayLimits {
    /// libp2p's relay configuration with these limits; reservations and the per-peer and
    /// per-address rate limits keep libp2p's defaults (128 reservations, one an hour).
    pub(crate) fn relay_config(&self) -> relay::Config {
        relay::Config {
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_bytes: self.max_circuit_bytes,
            max_circuit_duration: self.max_circuit_duration,
            ..relay::Config::default()
        }
    }
}

/// How a node reaches across NATs: the relay server (a hub) and UPnP port mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReachConfig {
    /// Serve as a circuit relay v2 for others (`serve --relay`), with these limits.
    pub relay: Option<RelayLimits>,
    /// Ask the router for port mappings with UPnP (multicast on the local network; see
    /// [`upnp_may_search`] for when it is actually started).
    pub upnp: bool,
}

/// The `[reach]` keys of `config.toml` (and `HEDGEROW_REACH_*`); unset ones take the
/// defaults, and `serve`'s flags win over them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReachSettings {
    /// `reach.relay`: serve as a relay for others (default false).
    #[serde(default)]
    pub relay: Option<bool>,
    /// `reach.upnp`: ask the router for port mappings (default true).
    #[serde(default)]
    pub upnp: Option<bool>,
    /// `reach.relay_max_circuits` ([`DEFAULT_RELAY_CIRCUITS`]).
    #[serde(default)]
    pub relay_max_circuits: Option<u64>,
    /// `reach.relay_max_circuits_per_peer` ([`DEFAULT_RELAY_CIRCUITS_PER_PEER`]).
    #[serde(default)]
    pub relay_max_circuits_per_peer: Option<u64>,
    /// `reach.relay_max_circuit_bytes` ([`DEFAULT_RELAY_CIRCUIT_BYTES`]).
    #[serde(default)]
    pub relay_max_circuit_bytes: Option<u64>,
    /// `reach.relay_max_circuit_secs` ([`DEFAULT_RELAY_CIRCUIT_SECS`]).
    #[serde(default)]
    pub relay_max_circuit_secs: Option<u64>,
}

/// Whether UPnP may start on a node listening on `listen`.
///
/// libp2p-upnp 0.7 sends its SSDP search (one M-SEARCH datagram to 239.255.255.250:1900, from
/// a socket bound to 0.0.0.0) as soon as its behaviour is built, whatever the node listens
/// on, and later maps only listen addresses that are private IPv4. So the behaviour is built
/// only when one of the listen addresses could become such an address: a private IPv4 one, or
/// the IPv4 wildcard. A node listening on loopback (every test, the demo, the benchmarks) or
/// on public and IPv6 addresses only never sends a multicast datagram.
pub fn upnp_may_search(listen: &[Multiaddr]) -> bool {
    listen.iter().any(|addr| {
        matches!(addr.iter().next(), Some(Protocol::Ip4(ip)) if ip.is_unspecified() || ip.is_private())
    })
}

/// Whether a hub may announce `addr`, one of its listen addresses, as an address others reach
/// it at: not loopback (127.0.0.0/8, `::1`: every machine's own), not unspecified, not relayed.
/// A hub listening on the wildcard hears of its loopback address like any other, and would
/// otherwise hand it to every farm that reserves a slot (each then listing
/// `/ip4/127.0.0.1/.../p2p-circuit`, which dials the farm's own machine).
pub fn may_be_external(addr: &Multiaddr) -> bool {
    if is_relayed(addr) {
        return false;
    }
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => !ip.is_loopback() && !ip.is_unspecified(),
        Some(_) => true,
        None => false,
    }
}

/// The relay a relayed address goes through: the peer id before `/p2p-circuit`.
pub fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

/// Whether an address goes through a relay (`/p2p-circuit`).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// The address to listen on through `relay` reached at `relay_addr`:
/// `RELAY-ADDR/p2p/RELAY/p2p-circuit`.
pub fn circuit_listen_addr(relay_addr: &Multiaddr, relay: PeerId) -> Multiaddr {
    let plain: Multiaddr = relay_addr
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();
    plain.with(Protocol::P2p(relay)).with(Protocol::P2pCircuit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    /// The multicast rule: loopback (tests), public and IPv6 listen addresses never start UPnP;
    /// the wildcard and private IPv4 ones do.
    #[test]
    fn upnp_starts_only_where_a_private_ipv4_address_may_listen() {
        assert!(!upnp_may_search(&[]));
        assert!(!upnp_may_search(&[
            addr("/ip4/127.0.0.1/tcp/0"),
            addr("/ip4/127.0.0.1/udp/0/quic-v1")
        ]));
        assert!(!upnp_may_search(&[addr("/ip6/::/tcp/4717")]));
        assert!(!upnp_may_search(&[addr("/ip4/203.0.113.5/tcp/4717")]));
        assert!(upnp_may_search(&[addr("/ip4/0.0.0.0/tcp/4717")]));
        assert!(upnp_may_search(&[
            addr("/ip4/127.0.0.1/tcp/0"),
            addr("/ip4/192.168.1.20/tcp/4717")
        ]));
        assert!(upnp_may_search(&[addr("/ip4/10.0.0.2/udp/4717/quic-v1")]));
    }

    /// Loopback and unspecified addresses, v4 and v6, and relayed ones are never announced;
    /// private, public and DNS ones are.
    #[test]
    fn a_hub_announces_no_loopback_address_as_external() {
        for text in [
            "/ip4/127.0.0.1/tcp/4717",
            "/ip4/127.8.9.10/udp/4717/quic-v1",
            "/ip6/::1/tcp/4717",
            "/ip4/0.0.0.0/tcp/4717",
            "/ip6/::/tcp/4717",
            "/ip4/10.0.0.1/tcp/4717/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE/p2p-circuit",
        ] {
            assert!(!may_be_external(&addr(text)), "{text}");
        }
        for text in [
            "/ip4/10.48.0.1/tcp/4717",
            "/ip4/192.168.1.20/udp/4717/quic-v1",
            "/ip4/203.0.113.5/tcp/4717",
            "/ip6/2001:db8::1/tcp/4717",
            "/dns4/hub.example.org/tcp/4717",
        ] {
            assert!(may_be_external(&addr(text)), "{text}");
        }
    }

    #[test]
    fn relayed_addresses_name_their_relay() {
        let hub = PeerId::random();
        let farm = PeerId::random();
        let dialed = addr(&format!(
            "/ip4/10.0.0.1/tcp/4717/p2p/{hub}/p2p-circuit/p2p/{farm}"
        ));
        assert_eq!(relay_of(&dialed), Some(hub));
        assert!(is_relayed(&dialed));
        let direct = addr(&format!("/ip4/10.0.0.1/tcp/4717/p2p/{hub}"));
        assert_eq!(relay_of(&direct), None);
        assert!(!is_relayed(&direct));
        assert_eq!(
            circuit_listen_addr(&direct, hub),
            addr(&format!("/ip4/10.0.0.1/tcp/4717/p2p/{hub}/p2p-circuit"))
        );
    }

    #[test]
    fn relay_limits_reach_libp2p() {
        let config = RelayLimits::default().relay_config();
        assert_eq!(config.max_circuits, 32);
        assert_eq!(config.max_circuits_per_peer, 4);
        assert_eq!(config.max_circuit_bytes, 64 << 20);
        assert_eq!(config.max_circuit_duration, Duration::from_secs(1800));
    }
}
