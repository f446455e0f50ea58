//! How each connection reaches its peer (direct, relayed through a hub, hole-punched), what
//! AutoNAT says of this node, and when to reserve a slot on a hub's relay.
//!
//! The rule: a node reserves a slot on every hub it dialed directly that lists the relay hop
//! protocol in identify, unless AutoNAT has found the node reachable from outside (a node that
//! does not know yet reserves: AutoNAT needs peers at public addresses, and a farm whose only
//! peer is its hub would otherwise never be reachable). A reservation lasts while the hub's
//! connection does; the next identify of the hub after it ends asks again, so nothing retries
//! in a loop. A node AutoNAT later finds public drops its reservations, and reserves again if
//! it stops being so.
//!
//! A hub announces its listen addresses as external ones, except those nobody else can dial
//! ([`crate::net::reach::may_be_external`]: loopback, relayed).

use super::*;
use crate::net::reach::circuit_listen_addr;
use crate::serve::status::{HolePunchStatus, ReachStatus, ReservationStatus};

/// How one connection reaches its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Straight to the peer's address.
    Direct,
    /// Through a hub's relay circuit.
    Relayed {
        /// The hub.
        via: PeerId,
    },
    /// Direct, made by a DCUtR hole punch over a relayed connection.
    HolePunched,
}

impl Route {
    /// The word `status` shows.
    pub fn word(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Relayed { .. } => "relayed",
            Route::HolePunched => "hole-punched",
        }
    }
}

/// What AutoNAT says of this node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Nat {
    /// Not found out yet (no probe answered, or no peer at a public address to ask).
    #[default]
    Unknown,
    /// Reachable from outside at this address.
    Public(Multiaddr),
    /// Behind a NAT or firewall: peers could not dial it back.
    Private,
}

/// One connection as [`Reach`] keeps it.
#[derive(Debug, Clone)]
struct Link {
    peer: PeerId,
    route: Route,
    /// The address we dialed, for a direct connection we opened (a hub's relay address).
    dialed: Option<Multiaddr>,
}

/// One reservation on a hub's relay.
#[derive(Debug, Clone)]
struct Reservation {
    /// `HUB-ADDR/p2p/HUB/p2p-circuit`, as listened on.
    addr: Multiaddr,
    /// Whether the hub accepted it.
    active: bool,
}

/// What happened to a reservation ([`Input::Reservation`]).
#[derive(Debug, Clone)]
pub enum ReservationEvent {
    /// The hub accepted it (or renewed it).
    Accepted,
    /// It ended or was refused, and why.
    Ended(String),
}

/// The reach state of a running node.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    links: HashMap<ConnectionId, Link>,
    nat: Nat,
    /// Connected peers that serve as a relay.
    hubs: HashSet<PeerId>,
    reservations: BTreeMap<PeerId, Reservation>,
    /// Whether this node serves as a relay itself.
    pub(crate) relay_server: bool,
    /// Listen addresses announced as external ([`Output::AddExternal`]), on a hub only.
    external: Vec<Multiaddr>,
    hole_punches_succeeded: u64,
    hole_punches_failed: u64,
    last_hole_punch_failure: Option<String>,
}

impl Reach {
    /// The route of `peer`'s best connection: hole-punched before direct before relayed.
    pub(crate) fn route_of(&self, peer: &PeerId) -> Option<Route> {
        let rank = |r: &Route| match r {
            Route::HolePunched => 0,
            Route::Direct => 1,
            Route::Relayed { .. } => 2,
        };
        self.links
            .values()
            .filter(|l| l.peer == *peer)
            .map(|l| l.route)
            .min_by_key(rank)
    }

    /// What `status` shows of reach.
    pub(crate) fn status(&self) -> ReachStatus {
        let (nat, public_address) = match &self.nat {
            Nat::Unknown => ("unknown", None),
            Nat::Public(addr) => ("public", Some(addr.to_string())),
            Nat::Private => ("private", None),
        };
        ReachStatus {
            nat: nat.to_string(),
            public_address,
            relay_server: self.relay_server,
            reservations: self
                .reservations
                .iter()
                .map(|(relay, r)| ReservationStatus {
                    relay: relay.to_string(),
                    addr: r.addr.to_string(),
                    active: r.active,
                })
                .collect(),
            hole_punches: HolePunchStatus {
                succeeded: self.hole_punches_succeeded,
                failed: self.hole_punches_failed,
                last_failure: self.last_hole_punch_failure.clone(),
            },
        }
    }

    /// Whether this node should hold reservations on hubs.
    fn wants_relay(&self) -> bool {
        !matches!(self.nat, Nat::Public(_))
    }
}

impl<L: LocalState> Service<L> {
    /// Records a new connection's route; relayed ones are told apart by
    /// [`Input::Relayed`] right after.
    pub(super) fn reach_connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        addr: &Multiaddr,
        dialer: bool,
    ) {
        let route = match crate::net::reach::relay_of(addr) {
            Some(via) => Route::Relayed { via },
            None => Route::Direct,
        };
        let dialed = (dialer && route == Route::Direct).then(|| addr.clone());
        self.reach.links.insert(
            connection,
            Link {
                peer,
                route,
                dialed,
            },
        );
    }

    /// Forgets a closed connection; a hub with no connection left is no longer a hub to us.
    pub(super) fn reach_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        self.reach.links.remove(&connection);
        if !self.reach.links.values().any(|l| l.peer == peer) {
            self.reach.hubs.remove(&peer);
        }
    }

    /// A connection that came through a relay (the listening side cannot tell from its address).
    pub(super) fn on_relayed(&mut self, peer: PeerId, connection: ConnectionId, via: PeerId) {
        let link = self.reach.links.entry(connection).or_insert(Link {
            peer,
            route: Route::Direct,
            dialed: None,
        });
        link.route = Route::Relayed { via };
        link.dialed = None;
    }

    /// A peer's identify arrived: one that serves as a relay becomes a hub to reserve on.
    pub(super) fn on_identified(&mut self, peer: PeerId, relay: bool) {
        if !relay || peer == self.config.local_peer {
            return;
        }
        let new_hub = self.reach.hubs.insert(peer);
        self.reserve_on_hubs();
        if !new_hub {
            return;
        }
        if let Some(addr) = self.dialed_addr(&peer) {
            for holder in self.unreached_holders() {
                if holder == peer {
                    continue;
                }
                tracing::info!("dialling {holder}, a holder found in the DHT, through hub {peer}");
                let via = vec![circuit_listen_addr(&addr, peer).with(Protocol::P2p(holder))];
                self.out
                    .push(Output::Dht(DhtOutput::DialPeer { peer: holder, via }));
            }
        }
    }

    /// AutoNAT changed its mind about this node: found public, it drops its reservations
    /// (others dial it directly, and each slot it held is one a farm behind NAT could use);
    /// otherwise it reserves on the hubs it knows.
    pub(super) fn on_nat(&mut self, nat: Nat) {
        tracing::info!("reachability from outside: {nat:?}");
        self.reach.nat = nat;
        if self.reach.wants_relay() {
            self.reserve_on_hubs();
        } else {
            self.drop_reservations();
        }
    }

    /// Gives up every reservation (asked for or held): the relayed listener closes at once, so
    /// nobody is told the relayed address any more; the hub frees the slot when it expires
    /// (libp2p's relay protocol has no message to cancel one) or the connection to it closes.
    fn drop_reservations(&mut self) {
        for (relay, reservation) in std::mem::take(&mut self.reach.reservations) {
            tracing::info!(
                "reachable from outside: dropping the relay slot on {relay} ({})",
                reservation.addr
            );
            self.out.push(Output::StopListeningVia { relay });
        }
    }

    /// A new listen address: a hub announces it as external (that is what makes it a hub, and
    /// libp2p's relay serves only with one) unless nobody else could dial it there.
    pub(super) fn reach_listening(&mut self, addr: &Multiaddr) {
        if !self.reach.relay_server || !crate::net::reach::may_be_external(addr) {
            return;
        }
        if !self.reach.external.contains(addr) {
            self.reach.external.push(addr.clone());
            self.out.push(Output::AddExternal(addr.clone()));
        }
    }

    /// A listen address went away: withdrawn if it was announced.
    pub(super) fn reach_listen_closed(&mut self, addr: &Multiaddr) {
        let before = self.reach.external.len();
        self.reach.external.retain(|a| a != addr);
        if self.reach.external.len() < before {
            self.out.push(Output::RemoveExternal(addr.clone()));
        }
    }

    /// A hole punch over a relayed connection to `peer` ended.
    pub(super) fn on_hole_punch(&mut self, peer: PeerId, result: Result<ConnectionId, String>) {
        match result {
            Ok(connection) => {
                tracing::info!("hole punch to {peer} succeeded: direct connection now");
                self.reach.hole_punches_succeeded += 1;
                let link = self.reach.links.entry(connection).or_insert(Link {
                    peer,
                    route: Route::Direct,
                    dialed: None,
                });
                link.route = Route::HolePunched;
            }
            Err(why) => {
                tracing::info!("hole punch to {peer} failed: {why}");
                self.reach.hole_punches_failed += 1;
                self.reach.last_hole_punch_failure = Some(why);
            }
        }
    }

    /// A reservation was accepted, or ended.
    pub(super) fn on_reservation(&mut self, relay: PeerId, event: ReservationEvent) {
        match event {
            ReservationEvent::Accepted => {
                if let Some(r) = self.reach.reservations.get_mut(&relay) {
                    if !r.active {
                        tracing::info!("relay slot reserved on {relay}: reachable at {}", r.addr);
                    }
                    r.active = true;
                }
            }
            ReservationEvent::Ended(why) => {
                if self.reach.reservations.remove(&relay).is_some() {
                    tracing::info!("relay reservation on {relay} ended: {why}");
                }
            }
        }
    }

    /// The address we dialed `hub` at, if we dialed it (a relayed address goes through it).
    fn dialed_addr(&self, hub: &PeerId) -> Option<Multiaddr> {
        self.reach
            .links
            .values()
            .find(|l| l.peer == *hub && l.dialed.is_some())
            .and_then(|l| l.dialed.clone())
    }

    /// `target`'s relayed addresses through every relay hub we dialed: how a node behind NAT
    /// that announced only its private address is reached.
    pub(super) fn relayed_dial_addrs(&self, target: PeerId) -> Vec<Multiaddr> {
        let mut out = Vec::new();
        for hub in &self.reach.hubs {
            let dialed = self.dialed_addr(hub);
            if let Some(addr) = dialed {
                let addr = circuit_listen_addr(&addr, *hub).with(Protocol::P2p(target));
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
        out
    }

    /// Asks for a slot on every hub we dialed and hold none on, when we want them.
    fn reserve_on_hubs(&mut self) {
        if !self.reach.wants_relay() {
            return;
        }
        let mut asks = Vec::new();
        for hub in &self.reach.hubs {
            if self.reach.reservations.contains_key(hub) {
                continue;
            }
            let dialed = self.dialed_addr(hub);
            if let Some(addr) = dialed {
                asks.push((*hub, circuit_listen_addr(&addr, *hub)));
            }
        }
        for (hub, addr) in asks {
            tracing::info!("asking {hub} for a relay slot: {addr}");
            self.reach.reservations.insert(
                hub,
                Reservation {
                    addr: addr.clone(),
                    active: false,
                },
            );
            self.out.push(Output::ListenVia { relay: hub, addr });
        }
    }
}
