//! Finding a commons on the internet: the DHT side of the service, with no I/O.
//!
//! - **Announcing.** Every commons this node holds and that is public gets a Kademlia provider
//!   record under [`provider_key`] (a hash of its id). A private commons, or one that may be
//!   private ([`Privacy::hides`]), is never announced, and is withdrawn locally if it turns out
//!   private after it was. kad republishes what it provides every
//!   [`PROVIDER_REPUBLISH`](crate::net::behaviour::PROVIDER_REPUBLISH); an announcement that
//!   reached no peer (no bootstrap peer up yet) is retried here with backoff.
//! - **Looking up.** Every commons joined and not held yet is looked up (`get_providers`); each
//!   provider found that is not connected is dialled, and the connection's usual pull brings
//!   the commons. A lookup that ends with the commons still wanted runs again with backoff, at
//!   most [`MAX_LOOKUPS`] times (a new `commons join` starts again).
//! - **Routing.** A connected peer's identify-reported listen addresses enter the routing table
//!   when it speaks our DHT, filtered by [`routable_addrs`].
//! - **Known peers** (`hedgerow peers`): every peer the node knows of, how it was found and at
//!   which addresses, bounded by [`MAX_KNOWN`].

use super::*;
use crate::private::Privacy;
use hedgerow_protocol::discovery::provider_key;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// First wait before a lookup or an announcement runs again.
pub const DHT_RETRY: Duration = Duration::from_secs(5);

/// Longest wait between two lookups (or announcements) of one commons.
pub const DHT_RETRY_MAX: Duration = Duration::from_secs(300);

/// Most lookups of one wanted commons per `commons join` (or per start of the node).
pub const MAX_LOOKUPS: u32 = 8;

/// Most announcements of one commons that reached nobody before the node waits for kad's own
/// republish.
pub const MAX_ANNOUNCES: u32 = 8;

/// Most providers of one lookup dialled.
pub const MAX_DIALS_PER_LOOKUP: usize = 8;

/// Most addresses kept of one peer (in the routing table and in the list of known peers).
pub const MAX_ADDRS_PER_PEER: usize = 8;

/// Most peers in the list of known peers; past it, disconnected peers nobody configured go.
pub const MAX_KNOWN: usize = 1024;

/// Most keys listed as held by other providers (`peers --json`'s `dht.records`).
pub const MAX_RECORDS_SHOWN: usize = 256;

/// What the DHT tells the service (through the actor).
#[derive(Debug)]
pub enum DhtInput {
    /// A connected peer told identify its listen addresses and whether it speaks our DHT.
    Identified {
        /// The peer.
        peer: PeerId,
        /// The addresses it says it listens on.
        listen: Vec<Multiaddr>,
        /// Whether it speaks [`crate::net::KAD_PROTOCOL`].
        kad: bool,
    },
    /// An announcement of ours ended; `reached` peers took the record.
    Announced {
        /// The provider key.
        key: [u8; 32],
        /// How many peers took it.
        reached: u32,
    },
    /// A lookup found providers (`done`: it ended).
    Providers {
        /// The provider key looked up.
        key: [u8; 32],
        /// Providers found in this step.
        providers: Vec<PeerId>,
        /// Whether the lookup ended.
        done: bool,
    },
    /// Another node's provider record was stored here.
    RecordStored {
        /// The key.
        key: [u8; 32],
        /// The provider it names.
        provider: PeerId,
    },
}

/// What the service asks of the DHT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtOutput {
    /// Puts addresses of a peer in the routing table.
    AddAddresses {
        /// The peer.
        peer: PeerId,
        /// Its addresses (filtered).
        addrs: Vec<Multiaddr>,
    },
    /// Announces this node as a provider of the key (kad republishes it on its own).
    Provide([u8; 32]),
    /// Stops announcing the key.
    StopProviding([u8; 32]),
    /// Looks up the providers of the key.
    FindProviders([u8; 32]),
    /// Dials a peer by id, at the addresses the DHT knows for it and through each relay hub
    /// this node is connected to (`via`: a holder behind NAT is reachable only that way, and
    /// the address it announced may be its private one).
    DialPeer {
        /// The holder.
        peer: PeerId,
        /// Relayed addresses of the holder through our hubs (`.../p2p/HUB/p2p-circuit/p2p/PEER`).
        via: Vec<Multiaddr>,
    },
}

/// How a known peer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Found {
    /// In the bootstrap list (`config.toml` `peers`, `--peer`, `hedgerow peers add`).
    Configured,
    /// Dialled before (kept in the store).
    Remembered,
    /// Announced on the local link.
    Mdns,
    /// Named as a holder of a commons by a DHT lookup.
    Dht,
    /// Dialled us.
    Incoming,
    /// Told us its addresses (identify).
    Identify,
}

/// One row of `hedgerow peers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeerRow {
    /// Its peer id, when known (a configured address without `/p2p/` has none until it answers).
    pub peer: Option<String>,
    /// Addresses known for it.
    pub addrs: Vec<String>,
    /// How it was found, each way once.
    pub found: Vec<Found>,
    /// Whether it is connected now.
    pub connected: bool,
}

/// A commons this node announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvidingRow {
    /// The commons id.
    pub commons: String,
    /// Its provider key, in hex.
    pub key: String,
    /// Peers that took the last announcement (`null` while it runs).
    pub reached: Option<u32>,
}

/// A lookup of a wanted commons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRow {
    /// The commons id.
    pub commons: String,
    /// Its provider key, in hex.
    pub key: String,
    /// Holders found so far (other than this node).
    pub holders: usize,
    /// Whether a lookup runs now.
    pub running: bool,
    /// Lookups run so far.
    pub attempts: u32,
}

/// Provider records of other nodes held here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRow {
    /// The provider key, in hex.
    pub key: String,
    /// Providers named under it.
    pub providers: usize,
}

/// The DHT part of `hedgerow peers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhtStatus {
    /// Commons announced.
    pub providing: Vec<ProvidingRow>,
    /// Lookups of wanted commons.
    pub lookups: Vec<LookupRow>,
    /// Other nodes' provider records held here.
    pub records: Vec<RecordRow>,
}

/// What `hedgerow peers` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersReply {
    /// Every known peer.
    pub peers: Vec<KnownPeerRow>,
    /// Announcements, lookups and records.
    pub dht: DhtStatus,
}

/// A retried DHT query of one commons.
#[derive(Debug)]
struct Retried {
    key: [u8; 32],
    running: bool,
    attempts: u32,
    next_at: Option<Instant>,
    /// Announcement: peers reached by the last one. Lookup: providers found.
    count: u32,
    last: Option<u32>,
}

impl Retried {
    fn new(key: [u8; 32], now: Instant) -> Self {
        Self {
            key,
            running: false,
            attempts: 0,
            next_at: Some(now),
            count: 0,
            last: None,
        }
    }

    /// Schedules the next run after a backoff that doubles with each attempt, if any is left.
    fn again(&mut self, now: Instant, max: u32) {
        self.running = false;
        self.next_at = (self.attempts < max).then(|| {
            let shift = self.attempts.saturating_sub(1).min(16);
            now + (DHT_RETRY * (1u32 << shift)).min(DHT_RETRY_MAX)
        });
    }
}

/// One known peer.
#[derive(Debug, Default)]
struct Known {
    found: BTreeSet<Found>,
    addrs: Vec<Multiaddr>,
    seen: Option<Instant>,
}

/// The service's DHT state.
#[derive(Debug, Default)]
pub(crate) struct Discovery {
    /// Held public commons announced, by commons.
    announced: HashMap<CommonsId, Retried>,
    /// Wanted commons looked up.
    lookups: HashMap<CommonsId, Retried>,
    /// Commons by provider key, for both.
    keys: HashMap<[u8; 32], CommonsId>,
    /// Holders each lookup run found (each is counted and dialled once per run).
    dialled: HashSet<(CommonsId, PeerId)>,
    /// Other nodes' provider records held here: key, providers.
    records: BTreeMap<[u8; 32], BTreeSet<PeerId>>,
    /// Known peers.
    known: HashMap<PeerId, Known>,
    /// Configured addresses without a peer id.
    unnamed: Vec<Multiaddr>,
    /// The held commons changed: announcements are checked at the end of the step.
    pub(crate) dirty: bool,
    /// Whether this node announces and looks up at all: `serve` does, a one-shot
    /// `hedgerow sync` (gone in a minute, so a record naming it would mislead) does not.
    pub(crate) enabled: bool,
}

impl Discovery {
    /// Records that `peer` was found `how`, at `addr`.
    pub(crate) fn found(
        &mut self,
        peer: PeerId,
        how: Found,
        addr: Option<&Multiaddr>,
        now: Instant,
    ) {
        if !self.known.contains_key(&peer) && self.known.len() >= MAX_KNOWN {
            self.evict();
        }
        let entry = self.known.entry(peer).or_default();
        entry.found.insert(how);
        entry.seen = Some(now);
        if let Some(addr) = addr {
            let addr = strip_p2p(addr);
            if !entry.addrs.contains(&addr) {
                if entry.addrs.len() >= MAX_ADDRS_PER_PEER {
                    entry.addrs.remove(0);
                }
                entry.addrs.push(addr);
            }
        }
    }

    /// Makes room: the longest unseen peer nobody configured goes.
    fn evict(&mut self) {
        let oldest = self
            .known
            .iter()
            .filter(|(_, k)| !k.found.contains(&Found::Configured))
            .min_by_key(|(_, k)| k.seen)
            .map(|(p, _)| *p);
        if let Some(peer) = oldest {
            self.known.remove(&peer);
        }
    }

    /// Records a bootstrap (`configured`) or remembered address.
    pub(crate) fn listed(&mut self, addr: &Multiaddr, how: Found, now: Instant) {
        match peer_of(addr) {
            Some(peer) => self.found(peer, how, Some(addr), now),
            None if how == Found::Configured && !self.unnamed.contains(addr) => {
                self.unnamed.push(addr.clone())
            }
            None => {}
        }
    }

    /// The earliest time a retry is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.announced
            .values()
            .chain(self.lookups.values())
            .filter(|r| !r.running)
            .filter_map(|r| r.next_at)
            .min()
    }
}

/// The peer id a multiaddress ends with, if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// The first IP address in `addr`: for a relayed one, the hub's (unlike the connection
/// limits' `ip_of`, which leaves relayed addresses out of per-address counting).
fn first_ip(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip.into()),
        Protocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

/// Which of a peer's reported listen addresses may enter the routing table (and so be handed
/// to other nodes), given the address we reach it at (`via`): at most [`MAX_ADDRS_PER_PEER`]
/// of them, each without its `/p2p/` suffix, with an IP and a transport; never unspecified,
/// multicast or link-local; loopback only when we reach the peer over loopback ourselves
/// (nodes on one machine, the tests), since elsewhere it names the wrong machine. Relayed
/// addresses (`/p2p-circuit`) pass: they are how a node behind NAT is reached.
pub fn routable_addrs(listen: &[Multiaddr], via: Option<&Multiaddr>) -> Vec<Multiaddr> {
    let via_loopback = via.and_then(first_ip).is_some_and(|ip| ip.is_loopback());
    let mut out: Vec<Multiaddr> = Vec::new();
    for addr in listen {
        let Some(ip) = first_ip(addr) else { continue };
        let transport = addr
            .iter()
            .any(|p| matches!(p, Protocol::Tcp(_) | Protocol::Udp(_)));
        let circuit = addr.iter().any(|p| matches!(p, Protocol::P2pCircuit));
        let link_local = match ip {
            std::net::IpAddr::V4(v4) => v4.is_link_local(),
            std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        let bad = ip.is_unspecified()
            || ip.is_multicast()
            || link_local
            || (ip.is_loopback() && !via_loopback && !circuit);
        if !transport || bad {
            continue;
        }
        let addr = if circuit {
            addr.clone()
        } else {
            strip_p2p(addr)
        };
        if !out.contains(&addr) {
            out.push(addr);
        }
        if out.len() >= MAX_ADDRS_PER_PEER {
            break;
        }
    }
    out
}

impl<L: LocalState> Service<L> {
    /// Handles what the DHT reported.
    pub(super) fn on_dht(&mut self, input: DhtInput) {
        let now = self.now;
        match input {
            DhtInput::Identified { peer, listen, kad } => {
                let via = self.peer.get(&peer).and_then(|p| p.addr.clone());
                let addrs = routable_addrs(&listen, via.as_ref());
                for addr in &addrs {
                    self.discovery.found(peer, Found::Identify, Some(addr), now);
                }
                if kad && !addrs.is_empty() {
                    self.out
                        .push(Output::Dht(DhtOutput::AddAddresses { peer, addrs }));
                }
            }
            DhtInput::Announced { key, reached } => {
                let Some(commons) = self.discovery.keys.get(&key).copied() else {
                    return;
                };
                if let Some(entry) = self.discovery.announced.get_mut(&commons) {
                    entry.last = Some(reached);
                    if reached == 0 {
                        tracing::debug!("announcing {commons} reached no peer; trying again");
                        entry.again(now, MAX_ANNOUNCES);
                    } else {
                        // kad republishes it from now on.
                        entry.running = false;
                        entry.next_at = None;
                    }
                }
            }
            DhtInput::Providers {
                key,
                providers,
                done,
            } => {
                let Some(commons) = self.discovery.keys.get(&key).copied() else {
                    return;
                };
                if !self.discovery.lookups.contains_key(&commons) {
                    return;
                }
                let local = self.config.local_peer;
                for peer in providers.into_iter().filter(|p| *p != local) {
                    // Each holder counts (and is dialled) once per lookup run.
                    if !self.discovery.dialled.insert((commons, peer)) {
                        continue;
                    }
                    let mut count = 0;
                    if let Some(entry) = self.discovery.lookups.get_mut(&commons) {
                        entry.count += 1;
                        count = entry.count as usize;
                    }
                    self.discovery.found(peer, Found::Dht, None, now);
                    if self.is_connected(&peer) {
                        self.start_pull(peer, commons);
                        continue;
                    }
                    if self.peers.is_banned(&peer, None, now) || count > MAX_DIALS_PER_LOOKUP {
                        continue;
                    }
                    tracing::info!("dialling {peer}, a holder of {commons} found in the DHT");
                    let via = self.relayed_dial_addrs(peer);
                    self.out
                        .push(Output::Dht(DhtOutput::DialPeer { peer, via }));
                }
                if done {
                    if let Some(entry) = self.discovery.lookups.get_mut(&commons) {
                        entry.last = Some(entry.count);
                        entry.again(now, MAX_LOOKUPS);
                    }
                }
            }
            DhtInput::RecordStored { key, provider } => {
                let records = &mut self.discovery.records;
                if records.contains_key(&key)
                    || records.len() < crate::net::behaviour::MAX_PROVIDER_KEYS
                {
                    records.entry(key).or_default().insert(provider);
                }
            }
        }
    }

    /// The DHT's part of a step's end: announcements follow the held public commons (when they
    /// may have changed), lookups follow the wanted commons, and what is due runs.
    pub(super) fn dht_step(&mut self) {
        if !self.discovery.enabled {
            return;
        }
        let now = self.now;
        if std::mem::take(&mut self.discovery.dirty) {
            let held: Vec<CommonsId> = self.local.commons().into_iter().map(|(id, _)| id).collect();
            let mut public = HashSet::new();
            for commons in held {
                if self.local.privacy(&commons) == Privacy::Public {
                    public.insert(commons);
                }
            }
            let gone: Vec<CommonsId> = self
                .discovery
                .announced
                .keys()
                .filter(|c| !public.contains(c))
                .copied()
                .collect();
            for commons in gone {
                if let Some(entry) = self.discovery.announced.remove(&commons) {
                    self.out
                        .push(Output::Dht(DhtOutput::StopProviding(entry.key)));
                }
            }
            for commons in public {
                if !self.discovery.announced.contains_key(&commons) {
                    let key = provider_key(&commons);
                    self.discovery.keys.insert(key, commons);
                    self.discovery
                        .announced
                        .insert(commons, Retried::new(key, now));
                }
            }
        }
        let wanted = &self.wanted;
        self.discovery.lookups.retain(|c, _| wanted.contains(c));
        for commons in self.wanted.clone() {
            if !self.discovery.lookups.contains_key(&commons) {
                let key = provider_key(&commons);
                self.discovery.keys.insert(key, commons);
                self.discovery
                    .lookups
                    .insert(commons, Retried::new(key, now));
            }
        }
        let discovery = &mut self.discovery;
        let (announced, lookups) = (&discovery.announced, &discovery.lookups);
        discovery
            .keys
            .retain(|_, c| announced.contains_key(c) || lookups.contains_key(c));
        for entry in self.discovery.announced.values_mut() {
            if !entry.running && entry.next_at.is_some_and(|at| at <= now) {
                entry.running = true;
                entry.attempts += 1;
                entry.next_at = None;
                self.out.push(Output::Dht(DhtOutput::Provide(entry.key)));
            }
        }
        let mut started = Vec::new();
        for (commons, entry) in self.discovery.lookups.iter_mut() {
            if !entry.running && entry.next_at.is_some_and(|at| at <= now) {
                entry.running = true;
                entry.attempts += 1;
                entry.count = 0;
                entry.next_at = None;
                started.push(*commons);
                self.out
                    .push(Output::Dht(DhtOutput::FindProviders(entry.key)));
            }
        }
        let lookups = &self.discovery.lookups;
        self.discovery
            .dialled
            .retain(|(c, _)| lookups.contains_key(c) && !started.contains(c));
    }

    /// Holders the running lookups found that are neither connected nor banned: a hub that
    /// appears later dials them again through itself (the lookup may have answered before the
    /// hub's identify, when no relayed address was known, and a direct dial to a holder behind
    /// NAT hangs until it times out).
    pub(super) fn unreached_holders(&mut self) -> BTreeSet<PeerId> {
        let now = self.now;
        let found: BTreeSet<PeerId> = self
            .discovery
            .dialled
            .iter()
            .filter(|(commons, _)| self.discovery.lookups.contains_key(commons))
            .map(|(_, peer)| *peer)
            .filter(|peer| !self.is_connected(peer))
            .collect();
        found
            .into_iter()
            .filter(|peer| !self.peers.is_banned(peer, None, now))
            .collect()
    }

    /// The bootstrap list changed while the node runs: an added peer is dialled and enters the
    /// routing table, and announcements and lookups that found nobody run again now; a
    /// removed one is no longer redialled (a connection that is up stays).
    pub(super) fn on_bootstrap(&mut self, addr: Multiaddr, add: bool) {
        let now = self.now;
        if !add {
            self.peers.remove_target(&addr);
            match peer_of(&addr) {
                Some(peer) => {
                    if let Some(known) = self.discovery.known.get_mut(&peer) {
                        known.found.remove(&Found::Configured);
                    }
                }
                None => self.discovery.unnamed.retain(|a| *a != addr),
            }
            return;
        }
        self.peers.add_target(addr.clone(), now);
        self.discovery.listed(&addr, Found::Configured, now);
        if let Some(peer) = peer_of(&addr) {
            self.out.push(Output::Dht(DhtOutput::AddAddresses {
                peer,
                addrs: vec![strip_p2p(&addr)],
            }));
        }
        for entry in self.discovery.announced.values_mut() {
            if !entry.running && entry.last.is_none_or(|reached| reached == 0) {
                entry.attempts = 0;
                entry.next_at = Some(now);
            }
        }
        for entry in self.discovery.lookups.values_mut() {
            entry.attempts = 0;
            if !entry.running {
                entry.next_at = Some(now);
            }
        }
        self.dial_due();
    }

    /// Starts the lookups of a wanted commons afresh (a new `commons join`).
    pub(super) fn look_up_again(&mut self, commons: &CommonsId) {
        if let Some(entry) = self.discovery.lookups.get_mut(commons) {
            entry.attempts = 0;
            if !entry.running {
                entry.next_at = Some(self.now);
            }
        }
    }

    /// What `hedgerow peers` shows.
    pub(super) fn peers_reply(&self) -> PeersReply {
        let connected = self.connected_now();
        let mut peers: Vec<KnownPeerRow> = self
            .discovery
            .known
            .iter()
            .map(|(peer, known)| {
                let mut addrs: Vec<String> = known.addrs.iter().map(|a| a.to_string()).collect();
                if let Some(now) = self.peer.get(peer).and_then(|p| p.addr.as_ref()) {
                    let now = strip_p2p(now).to_string();
                    if !addrs.contains(&now) {
                        addrs.push(now);
                    }
                }
                KnownPeerRow {
                    peer: Some(peer.to_string()),
                    addrs,
                    found: known.found.iter().copied().collect(),
                    connected: self.is_connected(peer),
                }
            })
            .collect();
        for addr in &self.discovery.unnamed {
            peers.push(KnownPeerRow {
                peer: None,
                addrs: vec![addr.to_string()],
                found: vec![Found::Configured],
                connected: connected.covers(addr),
            });
        }
        peers.sort_by(|a, b| {
            (!a.connected, &a.peer, &a.addrs).cmp(&(!b.connected, &b.peer, &b.addrs))
        });
        let row =
            |commons: &CommonsId, entry: &Retried| (commons.to_string(), hex::encode(entry.key));
        let mut providing: Vec<ProvidingRow> = self
            .discovery
            .announced
            .iter()
            .map(|(c, e)| {
                let (commons, key) = row(c, e);
                ProvidingRow {
                    commons,
                    key,
                    reached: if e.running { None } else { e.last },
                }
            })
            .collect();
        providing.sort_by(|a, b| a.commons.cmp(&b.commons));
        let mut lookups: Vec<LookupRow> = self
            .discovery
            .lookups
            .iter()
            .map(|(c, e)| {
                let (commons, key) = row(c, e);
                LookupRow {
                    commons,
                    key,
                    holders: e.count as usize,
                    running: e.running,
                    attempts: e.attempts,
                }
            })
            .collect();
        lookups.sort_by(|a, b| a.commons.cmp(&b.commons));
        let records = self
            .discovery
            .records
            .iter()
            .take(MAX_RECORDS_SHOWN)
            .map(|(key, providers)| RecordRow {
                key: hex::encode(key),
                providers: providers.len(),
            })
            .collect();
        PeersReply {
            peers,
            dht: DhtStatus {
                providing,
                lookups,
                records,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    #[test]
    fn loopback_passes_only_between_nodes_on_one_machine() {
        let listen = [
            addr("/ip4/127.0.0.1/tcp/4717"),
            addr("/ip4/192.168.1.9/tcp/4717"),
            addr("/ip4/0.0.0.0/tcp/4717"),
            addr("/ip4/169.254.3.4/tcp/4717"),
            addr("/ip6/fe80::1/udp/4717/quic-v1"),
            addr("/ip4/224.0.0.251/udp/5353"),
            addr("/dns4/example.org/tcp/4717"),
            addr("/ip4/203.0.113.5/udp/4717/quic-v1"),
        ];
        let over_lan = routable_addrs(&listen, Some(&addr("/ip4/192.168.1.9/tcp/4717")));
        assert_eq!(
            over_lan,
            [
                addr("/ip4/192.168.1.9/tcp/4717"),
                addr("/ip4/203.0.113.5/udp/4717/quic-v1")
            ]
        );
        let over_loopback = routable_addrs(&listen, Some(&addr("/ip4/127.0.0.1/tcp/5000")));
        assert_eq!(over_loopback[0], addr("/ip4/127.0.0.1/tcp/4717"));
        assert_eq!(over_loopback.len(), 3);
        assert!(routable_addrs(&listen, None)
            .iter()
            .all(|a| !a.to_string().contains("127.0.0.1")));
    }

    #[test]
    fn at_most_a_few_addresses_of_a_peer_pass_and_relayed_ones_keep_their_ids() {
        let many: Vec<Multiaddr> = (1..40)
            .map(|i| addr(&format!("/ip4/10.0.0.{i}/tcp/4717")))
            .collect();
        assert_eq!(routable_addrs(&many, None).len(), MAX_ADDRS_PER_PEER);
        let relayed = addr(
            "/ip4/203.0.113.5/tcp/4717/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE/p2p-circuit",
        );
        assert_eq!(
            routable_addrs(std::slice::from_ref(&relayed), None),
            [relayed]
        );
    }

    /// A service over a real store holding a public and a private commons, with the DHT on.
    fn service_with_two_commons() -> (
        tempfile::TempDir,
        Service<crate::replicas::Replicas>,
        CommonsId,
        CommonsId,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let profile = crate::home::LocalProfile {
            name: "Ann".into(),
            ..crate::home::LocalProfile::default()
        };
        let home = crate::home::Home::init(&dir.path().join("home"), &profile).expect("home");
        let mut replicas = crate::replicas::Replicas::open(&home).expect("store");
        let public = replicas.create_commons("Open tools", "").expect("public");
        let private = replicas
            .create_stewarded("Our notes", "", true)
            .expect("private");
        let mut service = Service::new(
            ServiceConfig {
                local_peer: PeerId::random(),
                sync_interval: Duration::from_secs(60),
            },
            replicas,
            ByteCounters::new(),
            PeerBook::default(),
            Instant::now(),
        )
        .expect("service");
        service.discovery.enabled = true;
        (dir, service, public, private)
    }

    fn dht(outputs: &[Output]) -> Vec<DhtOutput> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Dht(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn only_a_public_commons_is_announced_and_a_wanted_one_is_looked_up_and_its_holder_dialled_once(
    ) {
        let (_dir, mut service, public, private) = service_with_two_commons();
        let now = Instant::now();
        let started = dht(&service.start(now));
        assert_eq!(started, [DhtOutput::Provide(provider_key(&public))]);
        assert!(!started.contains(&DhtOutput::Provide(provider_key(&private))));

        let wanted = CommonsId([9; 32]);
        let joined = dht(&service.handle(Input::Command(1, Command::Join(wanted)), now));
        assert_eq!(joined, [DhtOutput::FindProviders(provider_key(&wanted))]);

        let holder = PeerId::random();
        let found = Input::Dht(DhtInput::Providers {
            key: provider_key(&wanted),
            providers: vec![holder, holder, service.config.local_peer],
            done: true,
        });
        assert_eq!(
            dht(&service.handle(found, now)),
            [DhtOutput::DialPeer {
                peer: holder,
                via: Vec::new()
            }]
        );
        let reply = service.peers_reply();
        assert_eq!(reply.dht.lookups[0].holders, 1);
        assert!(reply
            .peers
            .iter()
            .any(|p| p.peer == Some(holder.to_string()) && p.found == [Found::Dht]));
        // Still wanted: looked up again after the backoff, not before.
        assert!(dht(&service.handle(Input::Timer, now + Duration::from_secs(1))).is_empty());
        assert_eq!(
            dht(&service.handle(Input::Timer, now + DHT_RETRY)),
            [DhtOutput::FindProviders(provider_key(&wanted))]
        );
    }

    /// The lookup answered before the hub's identify said it relays: the holder, dialled
    /// with no relayed address, is dialled again through the hub once the hub is known.
    #[test]
    fn a_holder_found_before_a_hub_was_known_is_dialled_again_through_it() {
        let (_dir, mut service, _, _) = service_with_two_commons();
        let now = Instant::now();
        service.start(now);
        let wanted = CommonsId([9; 32]);
        service.handle(Input::Command(1, Command::Join(wanted)), now);
        let holder = PeerId::random();
        let found = Input::Dht(DhtInput::Providers {
            key: provider_key(&wanted),
            providers: vec![holder],
            done: true,
        });
        assert_eq!(
            dht(&service.handle(found, now)),
            [DhtOutput::DialPeer {
                peer: holder,
                via: Vec::new()
            }]
        );

        let hub = PeerId::random();
        let hub_addr: Multiaddr = "/ip4/10.48.0.1/tcp/4001".parse().expect("address");
        service.handle(
            Input::Connected {
                peer: hub,
                connection: ConnectionId::new_unchecked(77),
                addr: hub_addr.clone(),
                dialer: true,
                dialed: Some(hub_addr.clone()),
            },
            now,
        );
        let identified = || Input::Identified {
            peer: hub,
            relay: true,
        };
        let via: Multiaddr = format!("{hub_addr}/p2p/{hub}/p2p-circuit/p2p/{holder}")
            .parse()
            .expect("relayed address");
        assert_eq!(
            dht(&service.handle(identified(), now)),
            [DhtOutput::DialPeer {
                peer: holder,
                via: vec![via]
            }]
        );
        // Once per hub.
        assert!(dht(&service.handle(identified(), now)).is_empty());
    }

    #[test]
    fn retries_back_off_and_stop() {
        let now = Instant::now();
        let mut r = Retried::new([0; 32], now);
        let mut waits = Vec::new();
        for _ in 0..MAX_LOOKUPS {
            r.attempts += 1;
            r.again(now, MAX_LOOKUPS);
            if let Some(at) = r.next_at {
                waits.push((at - now).as_secs());
            }
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300]);
        assert_eq!(r.next_at, None, "no lookup after the last");
    }

    #[test]
    fn the_known_list_is_bounded_and_keeps_configured_peers() {
        let now = Instant::now();
        let mut d = Discovery::default();
        let configured = PeerId::random();
        d.found(configured, Found::Configured, None, now);
        for i in 0..(MAX_KNOWN + 50) {
            let at = now + Duration::from_millis(i as u64 + 1);
            d.found(PeerId::random(), Found::Incoming, None, at);
        }
        assert_eq!(d.known.len(), MAX_KNOWN);
        assert!(d.known.contains_key(&configured));
    }
}
