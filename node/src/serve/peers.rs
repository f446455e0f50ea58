//! Peer bookkeeping for the running node: redial backoff, misbehaviour
//! penalties, bans with cool-off, per-peer request rates and per-peer and
//! per-author live change rates.
//!
//! A PeerId costs nothing to make, so offences are also counted per remote IP
//! address, with a higher limit (many honest peers may share an address: a
//! farm behind one NAT, every test node on loopback), and everything kept per
//! peer or per author is pruned or capped, whatever peers do.

use hedgerow_protocol::AuthorKey;
use libp2p::{Multiaddr, PeerId};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// First redial delay after a failed dial.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(2);
/// Longest redial delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Most addresses found on the local link (mDNS) kept as dial targets: a crowded or hostile
/// link cannot grow the book without bound.
pub const MAX_DISCOVERED: usize = 256;
/// Invalid items a peer may send before it is disconnected and cooled off.
pub const PENALTY_LIMIT: u32 = 10;
/// How long a misbehaving peer is refused.
pub const BAN_DURATION: Duration = Duration::from_secs(600);
/// Sync requests a peer may send in a burst.
pub const REQUEST_BURST: f64 = 200.0;
/// Sustained sync requests per second a peer may send.
pub const REQUESTS_PER_SECOND: f64 = 20.0;
/// Offences from one IP address (whatever peer ids it uses) before the address is banned.
pub const IP_PENALTY_LIMIT: u32 = 5 * PENALTY_LIMIT;
/// Live changes a peer may forward in a burst (it relays every author of the commons).
pub const LIVE_PEER_BURST: f64 = 500.0;
/// Sustained live changes per second a peer may forward.
pub const LIVE_PEER_PER_SECOND: f64 = 50.0;
/// Live changes one author may make in a burst.
pub const LIVE_AUTHOR_BURST: f64 = 100.0;
/// Sustained live changes per second one author may make.
pub const LIVE_AUTHOR_PER_SECOND: f64 = 5.0;
/// Most peers, addresses or authors tracked in any one table; past it the entries that carry
/// no information (full buckets, expired bans, single offences) are dropped first.
pub const MAX_TRACKED: usize = 4096;

/// Redial state of one address.
#[derive(Debug, Clone)]
struct Backoff {
    next_attempt: Instant,
    delay: Duration,
    dialing: bool,
}

/// A token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// Refills at `rate` up to `burst`, then takes one token if there is one.
    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full by `now` (it holds nothing worth keeping).
    fn full(&self, now: Instant, rate: f64, burst: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * rate >= burst
    }
}

/// Token buckets by key, at most [`MAX_TRACKED`] of them.
#[derive(Debug)]
struct Rates<K> {
    buckets: HashMap<K, Bucket>,
    rate: f64,
    burst: f64,
}

impl<K: Hash + Eq + Copy> Rates<K> {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            buckets: HashMap::new(),
            rate,
            burst,
        }
    }

    fn allow(&mut self, key: K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&key) {
            let (rate, burst) = (self.rate, self.burst);
            self.buckets.retain(|_, b| !b.full(now, rate, burst));
            if self.buckets.len() >= MAX_TRACKED {
                // Every tracked key is mid-burst: a flood of fresh keys. A new key shares the
                // fate of the flood rather than growing the table.
                return false;
            }
        }
        let burst = self.burst;
        self.buckets
            .entry(key)
            .or_insert(Bucket {
                tokens: burst,
                updated: now,
            })
            .take(now, self.rate, burst)
    }

    fn forget(&mut self, key: &K) {
        self.buckets.remove(key);
    }

    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// What a penalty led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// Counted; the peer may stay.
    Counted,
    /// The peer is banned now.
    PeerBanned,
    /// The peer's IP address is banned now (and with it the peer).
    AddressBanned,
}

/// What the node knows about its peers.
#[derive(Debug)]
pub struct PeerBook {
    dial_targets: HashMap<Multiaddr, Backoff>,
    /// Dial targets added by [`PeerBook::add_discovered`] alone, forgotten when they expire.
    discovered: HashSet<Multiaddr>,
    penalties: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    ip_penalties: HashMap<IpAddr, u32>,
    ip_banned: HashMap<IpAddr, Instant>,
    requests: Rates<PeerId>,
    live_peers: Rates<PeerId>,
    live_authors: Rates<AuthorKey>,
    /// Open connections per remote IP address.
    connections: HashMap<IpAddr, usize>,
    /// Most connections one IP address may hold open at once.
    max_connections_per_ip: usize,
    /// Offences from one IP address before it is banned.
    ip_penalty_limit: u32,
}

impl Default for PeerBook {
    fn default() -> Self {
        Self::new(DEFAULT_CONNECTIONS_PER_IP, IP_PENALTY_LIMIT)
    }
}

/// Default of [`PeerBook::new`]'s per-address connection limit: far above one honest machine,
/// well below what a flood of fresh peer ids from one address needs.
pub const DEFAULT_CONNECTIONS_PER_IP: usize = 64;

impl PeerBook {
    /// An empty book allowing `max_connections_per_ip` connections from one IP address and
    /// banning an address after `ip_penalty_limit` offences.
    pub fn new(max_connections_per_ip: usize, ip_penalty_limit: u32) -> Self {
        Self {
            dial_targets: HashMap::new(),
            discovered: HashSet::new(),
            penalties: HashMap::new(),
            banned: HashMap::new(),
            ip_penalties: HashMap::new(),
            ip_banned: HashMap::new(),
            requests: Rates::new(REQUESTS_PER_SECOND, REQUEST_BURST),
            live_peers: Rates::new(LIVE_PEER_PER_SECOND, LIVE_PEER_BURST),
            live_authors: Rates::new(LIVE_AUTHOR_PER_SECOND, LIVE_AUTHOR_BURST),
            connections: HashMap::new(),
            max_connections_per_ip: max_connections_per_ip.max(1),
            ip_penalty_limit: ip_penalty_limit.max(1),
        }
    }

    /// Adds an address to keep connected to (bootstrap, `--peer`, remembered peers).
    pub fn add_target(&mut self, addr: Multiaddr, now: Instant) {
        // Configured now: kept even when the local link stops announcing it.
        self.discovered.remove(&addr);
        self.dial_targets.entry(addr).or_insert(Backoff {
            next_attempt: now,
            delay: INITIAL_BACKOFF,
            dialing: false,
        });
    }

    /// Adds an address found on the local link (mDNS) to keep connected to, first dialled at
    /// `first`, then under the same backoff as every other dial: finding it again does not
    /// make it due sooner. False when it was not added ([`MAX_DISCOVERED`] reached).
    pub fn add_discovered(&mut self, addr: Multiaddr, first: Instant) -> bool {
        if self.dial_targets.contains_key(&addr) {
            return true;
        }
        if self.discovered.len() >= MAX_DISCOVERED {
            return false;
        }
        self.add_target(addr.clone(), first);
        self.discovered.insert(addr);
        true
    }

    /// The local link no longer announces `addr` (its mDNS record expired: the peer left the
    /// LAN or stopped): a target that only discovery added is forgotten, so it is not redialled
    /// for ever; one configured or remembered stays. True when it was forgotten.
    pub fn expire_discovered(&mut self, addr: &Multiaddr) -> bool {
        if !self.discovered.remove(addr) {
            return false;
        }
        self.dial_targets.remove(addr);
        true
    }

    /// Addresses due for a dial now; marks them as dialing.
    pub fn due(&mut self, now: Instant, connected: impl Fn(&Multiaddr) -> bool) -> Vec<Multiaddr> {
        let mut out = Vec::new();
        for (addr, state) in &mut self.dial_targets {
            if !state.dialing && state.next_attempt <= now && !connected(addr) {
                state.dialing = true;
                out.push(addr.clone());
            }
        }
        out
    }

    /// When the next address not yet connected (by `connected`) falls due for a dial.
    pub fn next_due(&self, connected: impl Fn(&Multiaddr) -> bool) -> Option<Instant> {
        self.dial_targets
            .iter()
            .filter(|(addr, state)| !state.dialing && !connected(addr))
            .map(|(_, state)| state.next_attempt)
            .min()
    }

    /// A dial to `addr` failed: try again later, twice as late as last time.
    pub fn dial_failed(&mut self, addr: &Multiaddr, now: Instant) {
        if let Some(state) = self.dial_targets.get_mut(addr) {
            state.dialing = false;
            state.next_attempt = now + state.delay;
            state.delay = (state.delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Stops keeping `addr` connected (`hedgerow peers remove` on a running node): a connection
    /// that is up stays, but nobody redials it. False when it was not a target.
    pub fn remove_target(&mut self, addr: &Multiaddr) -> bool {
        self.discovered.remove(addr);
        self.dial_targets.remove(addr).is_some()
    }

    /// A connection to `addr` came up: reset its backoff.
    pub fn dial_succeeded(&mut self, addr: &Multiaddr, now: Instant) {
        if let Some(state) = self.dial_targets.get_mut(addr) {
            state.dialing = false;
            state.delay = INITIAL_BACKOFF;
            state.next_attempt = now + INITIAL_BACKOFF;
        }
    }

    /// A connection to `addr` closed: redial after the current delay.
    pub fn disconnected(&mut self, addr: &Multiaddr, now: Instant) {
        if let Some(state) = self.dial_targets.get_mut(addr) {
            state.dialing = false;
            state.next_attempt = now + state.delay;
        }
    }

    /// Records one offence of `peer` (seen at `ip`); bans the peer past [`PENALTY_LIMIT`] and
    /// the address past [`IP_PENALTY_LIMIT`].
    pub fn penalise(&mut self, peer: PeerId, ip: Option<IpAddr>, now: Instant) -> Penalty {
        if let Some(ip) = ip {
            if self.ip_penalties.len() >= MAX_TRACKED && !self.ip_penalties.contains_key(&ip) {
                self.ip_penalties.retain(|_, count| *count > 1);
            }
            let count = self.ip_penalties.entry(ip).or_insert(0);
            *count += 1;
            if *count >= self.ip_penalty_limit {
                self.ip_penalties.remove(&ip);
                self.ip_banned.insert(ip, now + BAN_DURATION);
                self.penalties.remove(&peer);
                self.ban(peer, now);
                return Penalty::AddressBanned;
            }
        }
        if self.penalties.len() >= MAX_TRACKED && !self.penalties.contains_key(&peer) {
            // Fresh peer ids each offending a little: their address is counted above.
            self.penalties.retain(|_, count| *count > 1);
        }
        let count = self.penalties.entry(peer).or_insert(0);
        *count += 1;
        if *count >= PENALTY_LIMIT {
            self.penalties.remove(&peer);
            self.ban(peer, now);
            return Penalty::PeerBanned;
        }
        Penalty::Counted
    }

    fn ban(&mut self, peer: PeerId, now: Instant) {
        if self.banned.len() >= MAX_TRACKED {
            self.banned.retain(|_, until| *until > now);
        }
        self.banned.insert(peer, now + BAN_DURATION);
    }

    /// Whether `peer`, or the address it comes from, is cooling off.
    pub fn is_banned(&mut self, peer: &PeerId, ip: Option<IpAddr>, now: Instant) -> bool {
        if let Some(ip) = ip {
            match self.ip_banned.get(&ip) {
                Some(until) if *until > now => return true,
                Some(_) => {
                    self.ip_banned.remove(&ip);
                }
                None => {}
            }
        }
        match self.banned.get(peer) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    /// Peers currently banned.
    pub fn banned_count(&self, now: Instant) -> usize {
        self.banned.values().filter(|until| **until > now).count()
    }

    /// Addresses currently banned.
    pub fn banned_addresses(&self, now: Instant) -> usize {
        self.ip_banned
            .values()
            .filter(|until| **until > now)
            .count()
    }

    /// Takes one request token for `peer`; false when it is over its rate.
    pub fn allow_request(&mut self, peer: PeerId, now: Instant) -> bool {
        self.requests.allow(peer, now)
    }

    /// Takes one live change token for the peer that forwarded it and for its author; false
    /// when either is over its rate.
    pub fn allow_live(&mut self, peer: PeerId, author: AuthorKey, now: Instant) -> bool {
        // The author first: a flooding author does not use up its relay's allowance.
        self.live_authors.allow(author, now) && self.live_peers.allow(peer, now)
    }

    /// A connection from `ip` opened: false when the address already holds its limit (the
    /// caller closes it again, without counting it).
    pub fn connection_opened(&mut self, ip: IpAddr) -> bool {
        let open = self.connections.entry(ip).or_insert(0);
        if *open >= self.max_connections_per_ip {
            return false;
        }
        *open += 1;
        true
    }

    /// A connection counted by [`Self::connection_opened`] closed.
    pub fn connection_closed(&mut self, ip: IpAddr) {
        if let Some(open) = self.connections.get_mut(&ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.connections.remove(&ip);
            }
        }
    }

    /// Forgets what is kept about a peer only while it is connected.
    pub fn forget(&mut self, peer: &PeerId) {
        self.requests.forget(peer);
        self.live_peers.forget(peer);
    }

    /// Drops expired bans.
    pub fn prune(&mut self, now: Instant) {
        self.banned.retain(|_, until| *until > now);
        self.ip_banned.retain(|_, until| *until > now);
    }

    /// Entries in every per-peer, per-address and per-author table (for `status`: it must
    /// stay bounded whatever peers do).
    pub fn tracked(&self) -> usize {
        self.penalties.len()
            + self.banned.len()
            + self.ip_penalties.len()
            + self.ip_banned.len()
            + self.requests.len()
            + self.live_peers.len()
            + self.live_authors.len()
            + self.connections.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_resets() {
        let mut book = PeerBook::default();
        let t0 = Instant::now();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        book.add_target(addr.clone(), t0);
        assert_eq!(book.due(t0, |_| false), vec![addr.clone()]);
        assert!(book.due(t0, |_| false).is_empty(), "already dialing");
        book.dial_failed(&addr, t0);
        assert!(book.due(t0 + Duration::from_secs(1), |_| false).is_empty());
        assert_eq!(book.due(t0 + INITIAL_BACKOFF, |_| false).len(), 1);
        book.dial_failed(&addr, t0);
        assert!(book
            .due(t0 + INITIAL_BACKOFF * 2 - Duration::from_millis(1), |_| {
                false
            })
            .is_empty());
        book.dial_succeeded(&addr, t0);
        assert!(
            book.due(t0 + INITIAL_BACKOFF * 4, |_| true).is_empty(),
            "connected: no dial"
        );
    }

    #[test]
    fn a_discovered_address_keeps_its_backoff_and_their_number_is_bounded() {
        let mut book = PeerBook::default();
        let now = Instant::now();
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/4717".parse().unwrap();
        assert!(book.add_discovered(addr.clone(), now));
        assert_eq!(book.due(now, |_| false), vec![addr.clone()]);
        book.dial_failed(&addr, now);
        // Found again before its backoff ran out: not due.
        assert!(book.add_discovered(addr.clone(), now));
        assert!(book.due(now + Duration::from_secs(1), |_| false).is_empty());
        assert_eq!(
            book.due(now + INITIAL_BACKOFF, |_| false),
            vec![addr.clone()]
        );
        for i in 1..MAX_DISCOVERED {
            let other: Multiaddr = format!("/ip4/10.1.{}.{}/tcp/4717", i / 200, i % 200)
                .parse()
                .unwrap();
            assert!(book.add_discovered(other, now));
        }
        let one_more: Multiaddr = "/ip4/10.2.0.1/tcp/4717".parse().unwrap();
        assert!(!book.add_discovered(one_more.clone(), now));
        // One that expires makes room, and is no longer dialled.
        assert!(book.expire_discovered(&addr));
        assert!(!book.expire_discovered(&addr));
        assert!(book.add_discovered(one_more, now));
        assert!(!book.due(now + MAX_BACKOFF, |_| false).contains(&addr));
    }

    /// A configured target is kept when the local link stops announcing it too.
    #[test]
    fn an_expired_announcement_leaves_a_configured_target() {
        let mut book = PeerBook::default();
        let now = Instant::now();
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/4717".parse().unwrap();
        assert!(book.add_discovered(addr.clone(), now));
        book.add_target(addr.clone(), now);
        assert!(!book.expire_discovered(&addr));
        assert_eq!(book.due(now, |_| false), vec![addr]);
    }

    #[test]
    fn penalties_ban_then_expire() {
        let mut book = PeerBook::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        for _ in 0..PENALTY_LIMIT - 1 {
            assert_eq!(book.penalise(peer, None, t0), Penalty::Counted);
        }
        assert_eq!(book.penalise(peer, None, t0), Penalty::PeerBanned);
        assert!(book.is_banned(&peer, None, t0));
        assert!(!book.is_banned(&peer, None, t0 + BAN_DURATION + Duration::from_secs(1)));
    }

    #[test]
    fn fresh_peer_ids_from_one_address_get_the_address_banned() {
        let mut book = PeerBook::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        // Each fresh peer id stays under the per-peer limit.
        let mut outcome = Penalty::Counted;
        for _ in 0..IP_PENALTY_LIMIT {
            let peer = PeerId::random();
            for _ in 0..2 {
                if outcome != Penalty::AddressBanned {
                    outcome = book.penalise(peer, Some(ip), t0);
                }
            }
        }
        assert_eq!(outcome, Penalty::AddressBanned);
        let newcomer = PeerId::random();
        assert!(
            book.is_banned(&newcomer, Some(ip), t0),
            "a new id from the banned address"
        );
        assert!(
            !book.is_banned(&newcomer, Some(other), t0),
            "another address"
        );
        assert!(!book.is_banned(
            &newcomer,
            Some(ip),
            t0 + BAN_DURATION + Duration::from_secs(1)
        ));
        assert_eq!(
            book.banned_addresses(t0 + BAN_DURATION + Duration::from_secs(1)),
            0
        );
    }

    #[test]
    fn connections_per_address_are_limited() {
        let mut book = PeerBook::new(2, IP_PENALTY_LIMIT);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(book.connection_opened(ip));
        assert!(book.connection_opened(ip));
        assert!(!book.connection_opened(ip));
        book.connection_closed(ip);
        assert!(book.connection_opened(ip));
    }

    #[test]
    fn tables_stay_bounded_under_a_flood_of_fresh_ids() {
        let mut book = PeerBook::default();
        let t0 = Instant::now();
        for n in 0..3 * MAX_TRACKED {
            let peer = PeerId::random();
            let author = AuthorKey([(n % 251) as u8; 32]);
            book.allow_request(peer, t0);
            book.allow_live(peer, author, t0);
            book.penalise(peer, None, t0);
        }
        assert!(book.tracked() <= 4 * MAX_TRACKED, "{}", book.tracked());
        for peer in (0..10).map(|_| PeerId::random()) {
            book.forget(&peer);
        }
        // Once the flood stops and the buckets refill, new peers are admitted again.
        assert!(book.allow_request(PeerId::random(), t0 + Duration::from_secs(60)));
    }

    #[test]
    fn live_changes_are_limited_per_author_and_per_peer() {
        let mut book = PeerBook::default();
        let t0 = Instant::now();
        let author = AuthorKey([1; 32]);
        let relay = PeerId::random();
        let allowed = (0..1000)
            .filter(|_| book.allow_live(relay, author, t0))
            .count();
        assert_eq!(allowed, LIVE_AUTHOR_BURST as usize, "one author");
        // Other authors through the same relay, up to the relay's own burst.
        let mut through = allowed;
        for n in 2..100u8 {
            through += (0..1000)
                .filter(|_| book.allow_live(relay, AuthorKey([n; 32]), t0))
                .count();
        }
        assert_eq!(through, LIVE_PEER_BURST as usize, "one peer");
        assert!(book.allow_live(relay, author, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn rate_limit_refills() {
        let mut book = PeerBook::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        let allowed = (0..1000).filter(|_| book.allow_request(peer, t0)).count();
        assert_eq!(allowed, REQUEST_BURST as usize);
        assert!(book.allow_request(peer, t0 + Duration::from_secs(1)));
    }
}
