//! How much of this node's blob serving one peer may take: at most so many responses open at
//! once (answered, not yet fully sent) and so many bytes per time window. Beyond either, the
//! peer hears `Busy` (no offence) and is expected to back off and ask another holder; the
//! requesting side's back-off is [`BusyPeers`].
//!
//! Both take `now` as an argument, so the rules are unit-tested without sockets.

use libp2p::PeerId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Default most responses open to one peer at once (an honest node asks at most 4 per blob,
/// for at most 4 blobs: 16 never hears `Busy`).
pub const DEFAULT_STREAMS_PER_PEER: usize = 16;

/// Default most response bytes to one peer per window: 4 GiB per 10 s (about 430 MB/s: more
/// than a gigabit LAN carries, so only a peer pulling faster than any honest link is slowed).
pub const DEFAULT_BYTES_PER_PEER: u64 = 4 << 30;

/// Default length of the byte window, in seconds.
pub const DEFAULT_WINDOW_SECS: u64 = 10;

/// Per-peer serving limits (`files.serve_*` in `config.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Most responses open to one peer at once.
    pub streams_per_peer: usize,
    /// Most response bytes to one peer per window.
    pub bytes_per_peer: u64,
    /// The window.
    pub window: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            streams_per_peer: DEFAULT_STREAMS_PER_PEER,
            bytes_per_peer: DEFAULT_BYTES_PER_PEER,
            window: Duration::from_secs(DEFAULT_WINDOW_SECS),
        }
    }
}

/// What one peer takes of our serving now.
#[derive(Debug, Clone, Copy)]
struct Load {
    open: usize,
    window_start: Instant,
    window_bytes: u64,
}

/// Per-peer accounting of the responses this node sends.
#[derive(Debug, Default)]
pub struct ServeLoad {
    limits: ServeLimits,
    peers: HashMap<PeerId, Load>,
}

impl ServeLoad {
    /// Accounting under `limits`.
    pub fn new(limits: ServeLimits) -> Self {
        Self {
            limits,
            peers: HashMap::new(),
        }
    }

    /// Whether `peer` may have one more response now (else it hears `Busy`).
    pub fn admits(&mut self, peer: &PeerId, now: Instant) -> bool {
        let window = self.limits.window;
        let Some(load) = self.peers.get_mut(peer) else {
            return self.limits.streams_per_peer > 0 && self.limits.bytes_per_peer > 0;
        };
        if now >= load.window_start + window {
            load.window_start = now;
            load.window_bytes = 0;
        }
        load.open < self.limits.streams_per_peer && load.window_bytes < self.limits.bytes_per_peer
    }

    /// A response of `bytes` to `peer` is on its way (open until [`Self::done`]).
    pub fn opened(&mut self, peer: PeerId, bytes: u64, now: Instant) {
        let load = self.peers.entry(peer).or_insert(Load {
            open: 0,
            window_start: now,
            window_bytes: 0,
        });
        load.open += 1;
        load.window_bytes = load.window_bytes.saturating_add(bytes);
    }

    /// A response to `peer` was sent whole, or failed.
    pub fn done(&mut self, peer: &PeerId, now: Instant) {
        let window = self.limits.window;
        if let Some(load) = self.peers.get_mut(peer) {
            load.open = load.open.saturating_sub(1);
            // Idle peers whose window is over are forgotten: the map holds only peers served
            // in the last window.
            if load.open == 0 && now >= load.window_start + window {
                self.peers.remove(peer);
            }
        }
    }

    /// Responses open to `peer`.
    pub fn open(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |l| l.open)
    }

    /// Peers with an entry.
    pub fn tracked(&self) -> usize {
        self.peers.len()
    }
}

/// Shortest back-off from a peer that answered `Busy`; it doubles with each `Busy` in a row.
pub const BUSY_BACKOFF: Duration = Duration::from_secs(1);

/// Longest back-off from a busy peer.
pub const MAX_BUSY_BACKOFF: Duration = Duration::from_secs(16);

/// The requesting side: peers that answered `Busy`, asked for no blob until their back-off is
/// over (other holders are asked meanwhile).
#[derive(Debug, Default)]
pub struct BusyPeers {
    /// Until when, and how many `Busy` in a row.
    peers: HashMap<PeerId, (Instant, u32)>,
}

impl BusyPeers {
    /// `peer` answered `Busy`: back off, longer each time in a row (the answers to requests
    /// sent before the back-off began count once).
    pub fn busy(&mut self, peer: PeerId, now: Instant) {
        if self.is_busy(&peer, now) {
            return;
        }
        let strikes = self.peers.get(&peer).map_or(0, |(_, n)| *n);
        let backoff = BUSY_BACKOFF
            .saturating_mul(2u32.saturating_pow(strikes))
            .min(MAX_BUSY_BACKOFF);
        self.peers
            .insert(peer, (now + backoff, strikes.saturating_add(1)));
    }

    /// `peer` sent data: its back-off starts over.
    pub fn served(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Whether `peer` is still backed off from at `now`.
    pub fn is_busy(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers.get(peer).is_some_and(|(until, _)| *until > now)
    }

    /// Forgets a peer that went away.
    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(streams: usize, bytes: u64) -> ServeLimits {
        ServeLimits {
            streams_per_peer: streams,
            bytes_per_peer: bytes,
            window: Duration::from_secs(10),
        }
    }

    #[test]
    fn open_responses_are_capped_per_peer_and_freed_when_sent() {
        let mut load = ServeLoad::new(limits(2, u64::MAX));
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        assert!(load.admits(&a, now));
        load.opened(a, 10, now);
        assert!(load.admits(&a, now));
        load.opened(a, 10, now);
        assert!(!load.admits(&a, now), "a third open response");
        assert!(load.admits(&b, now), "another peer is still served");
        load.done(&a, now);
        assert!(load.admits(&a, now));
        assert_eq!(load.open(&a), 1);
    }

    #[test]
    fn bytes_are_capped_per_peer_per_window() {
        let mut load = ServeLoad::new(limits(100, 1000));
        let a = PeerId::random();
        let now = Instant::now();
        load.opened(a, 600, now);
        load.done(&a, now);
        assert!(load.admits(&a, now));
        load.opened(a, 600, now);
        load.done(&a, now);
        assert!(!load.admits(&a, now + Duration::from_secs(9)));
        assert!(
            load.admits(&a, now + Duration::from_secs(10)),
            "a new window"
        );
        // An idle peer past its window is forgotten.
        load.opened(a, 1, now + Duration::from_secs(10));
        load.done(&a, now + Duration::from_secs(30));
        assert_eq!(load.tracked(), 0);
    }

    #[test]
    fn a_busy_peer_is_backed_off_from_longer_each_time_until_it_serves() {
        let mut busy = BusyPeers::default();
        let a = PeerId::random();
        let now = Instant::now();
        busy.busy(a, now);
        // Answers to requests already in flight do not lengthen it.
        busy.busy(a, now);
        assert!(busy.is_busy(&a, now + BUSY_BACKOFF / 2));
        assert!(!busy.is_busy(&a, now + BUSY_BACKOFF));
        let again = now + BUSY_BACKOFF;
        busy.busy(a, again);
        assert!(busy.is_busy(&a, again + BUSY_BACKOFF));
        assert!(!busy.is_busy(&a, again + BUSY_BACKOFF * 2));
        let mut at = again + BUSY_BACKOFF * 2;
        for _ in 0..10 {
            busy.busy(a, at);
            at += MAX_BUSY_BACKOFF;
        }
        assert!(busy.is_busy(&a, at - Duration::from_millis(1)));
        assert!(!busy.is_busy(&a, at), "never longer than the longest back-off");
        busy.served(&a);
        assert!(!busy.is_busy(&a, at - Duration::from_millis(1)));
    }
}
