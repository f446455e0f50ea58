//! Connections coming and going, pings, and what is kept of a peer after it leaves.

use super::*;

/// How long the node with the greater peer id waits before dialling a peer it found on the
/// local link, so that the two do not dial each other at the same instant.
pub(super) const LOCAL_LINK_DEFER: Duration = Duration::from_secs(3);

impl<L: LocalState> Service<L> {
    pub(super) fn on_connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        addr: Multiaddr,
        dialer: bool,
        dialed: Option<Multiaddr>,
    ) {
        let now = self.now;
        self.reach_connected(peer, connection, &addr, dialer);
        if let Some(target) = dialed {
            self.peers.dial_succeeded(&target, now);
        }
        let ip = ip_of(&addr);
        if self.peers.is_banned(&peer, ip, now) {
            self.out.push(Output::Disconnect(peer));
            return;
        }
        if let Some(ip) = ip {
            if !self.peers.connection_opened(ip) {
                self.counters.reject(&Refusal::TooManyConnections);
                self.out.push(Output::CloseConnection(connection));
                return;
            }
            self.counted.insert(connection, ip);
        }
        if dialer {
            let known = KnownPeer {
                addrs: vec![addr.to_string()],
                last_seen: crate::replicas::now_unix(),
            };
            if let Err(e) = self.local.remember_peer(&peer.to_string(), &known) {
                self.store_failed(&e);
            }
        }
        let state = self.peer.entry(peer).or_default();
        let first = state.addr.is_none();
        state.addr = Some(addr.clone());
        self.heard_from(peer);
        for waiter in &mut self.waiters {
            if waiter.peer.is_none() && strip_p2p(&waiter.addr) == strip_p2p(&addr) {
                waiter.peer = Some(peer);
            }
        }
        if first {
            self.pulls
                .retain(|(p, _), pull| *p != peer || !matches!(pull, Pull::Again(_)));
            for pull in self.pulls.iter_mut().filter(|((p, _), _)| *p == peer) {
                if let (_, Pull::Interrupted { retry, .. }) = pull {
                    *retry = None;
                }
            }
            self.pull_everything(peer);
            for waiter in &mut self.waiters {
                if waiter.peer == Some(peer) {
                    waiter.started = true;
                }
            }
            self.complete_waiters();
        }
    }

    /// Peers found on the local link become dial targets like any other, so one that cannot
    /// be reached is redialled by its backoff, not on every mDNS announcement.
    pub(super) fn on_discovered(&mut self, found: Vec<(PeerId, Multiaddr)>) {
        let now = self.now;
        for (peer, addr) in found {
            if self.is_connected(&peer) || self.peers.is_banned(&peer, ip_of(&addr), now) {
                continue;
            }
            let target = strip_p2p(&addr).with(Protocol::P2p(peer));
            // Two nodes on one link usually find each other in the same instant. Dialling each
            // other at once (TCP reuses the listening port) opens one TCP connection on which
            // both sides start the handshake as initiator, and it fails; with equal backoffs
            // the retries coincide too. So the node with the greater peer id lets the other
            // dial first, and dials itself only if no connection came.
            let first = if self.config.local_peer < peer {
                now
            } else {
                now + LOCAL_LINK_DEFER
            };
            if !self.peers.add_discovered(target, first) {
                tracing::debug!("not dialing {peer} found on the local link: too many found");
            }
        }
        self.dial_due();
    }

    /// Peers that left the local link (or stopped) are forgotten as dial targets, unless
    /// configured: a connection still up stays, but once it closes nobody redials it.
    pub(super) fn on_expired(&mut self, gone: Vec<(PeerId, Multiaddr)>) {
        for (peer, addr) in gone {
            let target = strip_p2p(&addr).with(Protocol::P2p(peer));
            if self.peers.expire_discovered(&target) {
                tracing::debug!("{peer} at {addr} no longer announced on the local link");
            }
        }
    }

    /// Dials every target whose backoff has run out and that is not connected.
    pub(super) fn dial_due(&mut self) {
        let connected = self.connected_now();
        for addr in self.peers.due(self.now, |addr| connected.covers(addr)) {
            self.out.push(Output::Dial(addr));
        }
    }

    /// What is connected now, to tell which dial targets need no dial.
    pub(super) fn connected_now(&self) -> Connected {
        let mut connected = Connected::default();
        for (peer, state) in &self.peer {
            if let Some(addr) = &state.addr {
                connected.addrs.insert(strip_p2p(addr));
                connected.peers.insert(*peer);
            }
        }
        connected
    }

    pub(super) fn on_closed(&mut self, peer: PeerId, connection: ConnectionId, remaining: u32) {
        let now = self.now;
        self.reach_closed(peer, connection);
        if let Some(ip) = self.counted.remove(&connection) {
            self.peers.connection_closed(ip);
        }
        if remaining > 0 {
            return;
        }
        if let Some(addr) = self.peer.get_mut(&peer).and_then(|p| p.addr.take()) {
            self.peers.disconnected(&addr, now);
            self.peers
                .disconnected(&addr.with(Protocol::P2p(peer)), now);
        }
        let stale: Vec<CommonsId> = self
            .pulls
            .iter()
            .filter(|((p, _), pull)| *p == peer && matches!(pull, Pull::Running(_)))
            .map(|((_, c), _)| *c)
            .collect();
        if !stale.is_empty() {
            self.peer.entry(peer).or_default().link.on_failure();
        }
        for commons in stale {
            self.interrupt_pull(peer, commons, "connection closed");
        }
        // Retries are for connections that stayed up; a pull deferred to the sync window
        // lists again on the next connection.
        self.pulls.retain(|(p, _), pull| {
            *p != peer
                || !matches!(
                    pull,
                    Pull::Again(_) | Pull::Deferred(_) | Pull::AwaitingVersion(_)
                )
        });
        for ((p, _), pull) in self.pulls.iter_mut() {
            if *p == peer {
                if let Pull::Interrupted { retry, .. } = pull {
                    *retry = None;
                }
            }
        }
        // Someone waits for this sync (`hedgerow sync`): dial the peer again until the pulls
        // complete or the wait times out.
        let waited: Vec<Multiaddr> = self
            .waiters
            .iter()
            .filter(|w| w.peer == Some(peer))
            .map(|w| w.addr.clone())
            .collect();
        for addr in waited {
            self.peers.add_target(addr.clone(), now);
            self.peers.disconnected(&addr, now);
        }
        self.peer_gone(peer);
    }

    /// Forgets what is kept about `peer` only while it is connected, so per-peer state does not
    /// grow with every peer id that ever connected (ids cost nothing). What outlives the
    /// connection on purpose (an interrupted pull, the link estimate, a recent fetch) is
    /// bounded by count and age instead.
    pub(super) fn peer_gone(&mut self, peer: PeerId) {
        let now = self.now;
        self.peers.forget(&peer);
        self.forget_proofs(peer);
        let waited = self.waiters.iter().any(|w| w.peer == Some(peer));
        if let Some(state) = self.peer.get_mut(&peer) {
            state.heard = None;
            state.last_sync = None;
            state.pending = 0;
            if !waited {
                state.report = None;
            }
        }
        // A held-back pull is dropped; the session it may keep stays for resuming.
        let held: Vec<CommonsId> = self
            .pulls
            .iter()
            .filter(|((p, _), pull)| *p == peer && matches!(pull, Pull::Postponed(_)))
            .map(|((_, c), _)| *c)
            .collect();
        for commons in held {
            if let Some(Pull::Postponed(Some((session, since)))) =
                self.pulls.remove(&(peer, commons))
            {
                self.pulls.insert(
                    (peer, commons),
                    Pull::Interrupted {
                        session,
                        since,
                        retry: None,
                    },
                );
            }
        }
        if self.peer.len() > MAX_REMEMBERED_PEERS {
            self.peer.retain(|_, p| {
                p.addr.is_some()
                    || p.report.is_some()
                    || p.fetched_at
                        .is_some_and(|at| now.saturating_duration_since(at) < CATCHING_UP)
            });
        }
        let kept = self.pulls.values().filter(|p| p.kept().is_some()).count();
        if kept > MAX_INTERRUPTED {
            let mut by_age: Vec<((PeerId, CommonsId), Instant)> = self
                .pulls
                .iter()
                .filter_map(|(k, pull)| match pull {
                    Pull::Interrupted { since, .. } | Pull::Postponed(Some((_, since))) => {
                        Some((*k, *since))
                    }
                    _ => None,
                })
                .collect();
            by_age.sort_by_key(|(_, at)| *at);
            for (key, _) in by_age.iter().take(kept - MAX_INTERRUPTED) {
                self.pulls.remove(key);
            }
        }
    }

    /// Records a sign of life from `peer`.
    pub(super) fn heard_from(&mut self, peer: PeerId) {
        let bytes = self.bytes.received();
        self.peer.entry(peer).or_default().heard = Some((self.now, bytes));
    }

    pub(super) fn on_ping(&mut self, peer: PeerId, connection: ConnectionId, ok: bool) {
        if ok {
            self.heard_from(peer);
            return;
        }
        let now = self.now;
        let (at, bytes) = self
            .peer
            .get(&peer)
            .and_then(|p| p.heard)
            .unwrap_or((now, 0));
        // Sync bytes still arriving while a response is in flight count as life.
        let receiving =
            self.bytes.received() != bytes && self.in_flight.values().any(|f| f.peer == peer);
        if receiving {
            self.heard_from(peer);
        } else if now.saturating_duration_since(at) >= SILENT_LIMIT {
            tracing::info!("closing silent connection to {peer}: ping failed");
            self.out.push(Output::CloseConnection(connection));
        }
    }
}

/// The peers and addresses connected at one moment.
#[derive(Debug, Default)]
pub(super) struct Connected {
    addrs: HashSet<Multiaddr>,
    peers: HashSet<PeerId>,
}

impl Connected {
    /// Whether a dial target is connected: by its address, or by the peer it names (a peer
    /// that dialed us is connected from another address than the one we would dial; mDNS
    /// makes such mutual targets the rule).
    ///
    /// A target through a hub's relay names the hub too, and shares its address with every
    /// peer the hub relays: only the peer at its end counts.
    pub(super) fn covers(&self, target: &Multiaddr) -> bool {
        if crate::net::reach::is_relayed(target) {
            let end = target.iter().fold(None, |last, p| match p {
                Protocol::P2p(peer) => Some(peer),
                _ => last,
            });
            return end.is_some_and(|peer| self.peers.contains(&peer));
        }
        self.addrs.contains(&strip_p2p(target))
            || target.iter().any(|p| match p {
                Protocol::P2p(peer) => self.peers.contains(&peer),
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A farm connected to its hub still dials another farm through that hub's relay: the
    /// hub's peer id and address in the relayed target do not count as the target connected.
    #[test]
    fn a_relayed_target_is_covered_only_by_the_peer_at_its_end() {
        let hub = PeerId::random();
        let farm = PeerId::random();
        let mut connected = Connected::default();
        connected
            .addrs
            .insert("/ip4/10.0.0.1/tcp/4717".parse().expect("addr"));
        connected.peers.insert(hub);
        let other = PeerId::random();
        connected.addrs.insert(
            format!("/ip4/10.0.0.1/tcp/4717/p2p/{hub}/p2p-circuit/p2p/{other}")
                .parse::<Multiaddr>()
                .map(|a| strip_p2p(&a))
                .expect("addr"),
        );
        let target: Multiaddr = format!("/ip4/10.0.0.1/tcp/4717/p2p/{hub}/p2p-circuit/p2p/{farm}")
            .parse()
            .expect("addr");
        assert!(!connected.covers(&target));
        connected.peers.insert(farm);
        assert!(connected.covers(&target));
        // A direct target is still covered by its address.
        let direct: Multiaddr = format!("/ip4/10.0.0.1/tcp/4717/p2p/{hub}")
            .parse()
            .expect("addr");
        assert!(connected.covers(&direct));
    }
}
