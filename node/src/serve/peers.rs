//! Peer bookkeeping for the running node: redial backoff, misbehaviour
//! penalties, bans with cool-off, and per-peer request rate limits.

use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// First redial delay after a failed dial.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(2);
/// Longest redial delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Invalid items a peer may send before it is disconnected and cooled off.
pub const PENALTY_LIMIT: u32 = 10;
/// How long a misbehaving peer is refused.
pub const BAN_DURATION: Duration = Duration::from_secs(600);
/// Sync requests a peer may send in a burst.
pub const REQUEST_BURST: f64 = 200.0;
/// Sustained sync requests per second a peer may send.
pub const REQUESTS_PER_SECOND: f64 = 20.0;

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

/// What the node knows about its peers.
#[derive(Debug, Default)]
pub struct PeerBook {
    dial_targets: HashMap<Multiaddr, Backoff>,
    penalties: HashMap<PeerId, u32>,
    banned: HashMap<PeerId, Instant>,
    buckets: HashMap<PeerId, Bucket>,
}

impl PeerBook {
    /// Adds an address to keep connected to (bootstrap, `--peer`, remembered peers).
    pub fn add_target(&mut self, addr: Multiaddr, now: Instant) {
        self.dial_targets.entry(addr).or_insert(Backoff {
            next_attempt: now,
            delay: INITIAL_BACKOFF,
            dialing: false,
        });
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

    /// A dial to `addr` failed: try again later, twice as late as last time.
    pub fn dial_failed(&mut self, addr: &Multiaddr, now: Instant) {
        if let Some(state) = self.dial_targets.get_mut(addr) {
            state.dialing = false;
            state.next_attempt = now + state.delay;
            state.delay = (state.delay * 2).min(MAX_BACKOFF);
        }
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

    /// Records one invalid item from `peer`; returns true when the peer must now be banned.
    pub fn penalise(&mut self, peer: PeerId, now: Instant) -> bool {
        let count = self.penalties.entry(peer).or_insert(0);
        *count += 1;
        if *count >= PENALTY_LIMIT {
            self.penalties.remove(&peer);
            self.banned.insert(peer, now + BAN_DURATION);
            return true;
        }
        false
    }

    /// Whether `peer` is cooling off.
    pub fn is_banned(&mut self, peer: &PeerId, now: Instant) -> bool {
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

    /// Takes one request token for `peer`; false when it is over its rate.
    pub fn allow_request(&mut self, peer: PeerId, now: Instant) -> bool {
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: REQUEST_BURST,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * REQUESTS_PER_SECOND).min(REQUEST_BURST);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
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
    fn penalties_ban_then_expire() {
        let mut book = PeerBook::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        for _ in 0..PENALTY_LIMIT - 1 {
            assert!(!book.penalise(peer, t0));
        }
        assert!(book.penalise(peer, t0));
        assert!(book.is_banned(&peer, t0));
        assert!(!book.is_banned(&peer, t0 + BAN_DURATION + Duration::from_secs(1)));
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
