//! Commands from a node handle: store requests, `join`, `status`, and the `hedgerow sync`
//! waiters.

use super::*;
use crate::serve::status::{ConnectedPeer, HeldCommons, JoinReply, NodeStatus, StatusBytes};

impl<L: LocalState> Service<L> {
    pub(super) fn on_command(&mut self, token: Token, command: Command) {
        let reply = match command {
            Command::Status => Reply::Status(Box::new(self.status())),
            Command::Sync(order) => return self.start_waiter(token, order),
            Command::Join(commons) => Reply::Join(self.on_join(commons)),
            Command::Store(request) => Reply::Store(self.on_store(request)),
            Command::FetchBlobs { blobs, wait } => return self.on_fetch_blobs(token, blobs, wait),
            Command::Peers => Reply::Peers(Box::new(self.peers_reply())),
            Command::Bootstrap { addr, add } => {
                self.on_bootstrap(addr, add);
                Reply::Peers(Box::new(self.peers_reply()))
            }
        };
        self.out.push(Output::Reply(token, reply));
    }

    /// Joins a commons; one not held yet is wanted and asked of every connected peer.
    fn on_join(&mut self, commons: CommonsId) -> Result<JoinReply, NodeError> {
        if self.local.holds(&commons) {
            // The API joins a held commons at once (it writes our profile).
            self.on_store(Request::Join {
                commons: commons.to_string(),
            })?;
            return Ok(JoinReply {
                commons,
                already_held: true,
                pending: false,
                asked_peers: None,
            });
        }
        if let Err(e) = self.local.set_wanted(&commons, true) {
            self.store_failed(&e);
            return Err(e);
        }
        self.wanted.insert(commons);
        // Joined again: the DHT lookups start over.
        self.look_up_again(&commons);
        let peers = self.connected_peers();
        for peer in &peers {
            self.start_pull(*peer, commons);
        }
        Ok(JoinReply {
            commons,
            already_held: false,
            pending: true,
            asked_peers: Some(peers.len()),
        })
    }

    /// Runs a store request; what it changed is published when the step ends.
    pub(super) fn on_store(&mut self, request: Request) -> Result<StoreReply, NodeError> {
        let reply = self.local.execute(request);
        // A pin, an attachment or an import may change which blobs are wanted.
        self.blob_policy_changed_now();
        // A wanted commons may have arrived another way (a bundle import): stop asking for it.
        let local = &self.local;
        self.wanted.retain(|commons| !local.holds(commons));
        self.subscribe_all();
        self.publish_outbox();
        reply
    }

    /// Starts a `hedgerow sync` with the peer at `order.addr`: pulls everything from it,
    /// dialing it first if needed, and replies when every pull ended, at its deadline, or as
    /// soon as it proves unreachable (a dial failed, or no connection by its connect timeout).
    pub(super) fn start_waiter(&mut self, token: Token, order: SyncOrder) {
        let addr = order.addr;
        let peer = addr.iter().find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        });
        let connected_peer = peer.filter(|p| self.is_connected(p));
        if let Some(peer) = peer {
            // A fresh report: it tells only of this sync.
            if let Some(p) = self.peer.get_mut(&peer) {
                p.report = None;
            }
        }
        self.waiters.push(Waiter {
            token,
            peer,
            addr: addr.clone(),
            started: connected_peer.is_some(),
            deadline: self.now + order.deadline,
            connect_by: self.now + order.connect_timeout.min(order.deadline),
            connect_timeout: order.connect_timeout.min(order.deadline),
            dial_failed: None,
            bytes_at_start: (self.bytes.sent(), self.bytes.received()),
        });
        match connected_peer {
            Some(peer) => self.pull_everything(peer),
            None => self.out.push(Output::Dial(addr)),
        }
    }

    /// A dial failed: the redial backoff hears of it, and a `hedgerow sync` that never reached
    /// that address ends now with the reason (a closed port or another peer's id there will
    /// not change by waiting).
    pub(super) fn on_dial_failed(&mut self, addr: Multiaddr, reason: String) {
        self.peers.dial_failed(&addr, self.now);
        let connected: HashSet<PeerId> = self
            .peer
            .iter()
            .filter(|(_, state)| state.addr.is_some())
            .map(|(peer, _)| *peer)
            .collect();
        let mut any = false;
        for waiter in &mut self.waiters {
            if strip_p2p(&waiter.addr) != strip_p2p(&addr) {
                continue;
            }
            // One that had its peer and lost it ends too when the peer cannot be dialed
            // again: what it got is kept, and the next sync fetches only the rest.
            let lost = waiter.started && waiter.peer.is_none_or(|p| !connected.contains(&p));
            if !waiter.started || lost {
                waiter.dial_failed = Some(reason.clone());
                any = true;
            }
        }
        if any {
            self.complete_waiters();
        }
    }

    /// Answers `hedgerow sync` callers whose peer has no pull left, whose peer proved
    /// unreachable, or whose time is up.
    pub(super) fn complete_waiters(&mut self) {
        let mut remaining = Vec::new();
        for waiter in std::mem::take(&mut self.waiters) {
            let unreachable = if waiter.started {
                None
            } else if let Some(reason) = &waiter.dial_failed {
                Some(reason.clone())
            } else if self.now >= waiter.connect_by {
                Some(format!(
                    "no answer within {}",
                    crate::serve::seconds_text(waiter.connect_timeout)
                ))
            } else {
                None
            };
            let lost = match (&unreachable, &waiter.dial_failed) {
                (None, Some(reason)) if waiter.started => Some(reason.clone()),
                _ => None,
            };
            let done = match waiter.peer {
                Some(peer) => {
                    waiter.started
                        && !self
                            .pulls
                            .iter()
                            .any(|((p, _), pull)| *p == peer && pull.unfinished())
                }
                None => false,
            };
            if unreachable.is_none() && lost.is_none() && !done && self.now < waiter.deadline {
                remaining.push(waiter);
                continue;
            }
            let mut report = waiter
                .peer
                .and_then(|p| self.peer.get_mut(&p))
                .and_then(|p| p.report.take())
                .unwrap_or_default();
            report.peer = waiter
                .peer
                .map(|p| p.to_string())
                .unwrap_or_else(|| waiter.addr.to_string());
            report.complete = done;
            if let Some(reason) = unreachable {
                report.unreachable = Some(reason);
            } else if let Some(reason) = lost.filter(|_| !done) {
                report.errors.push(format!(
                    "lost the connection and could not reconnect: {reason}"
                ));
            } else if !done {
                report
                    .errors
                    .push("timed out before every pull finished".into());
            }
            report.bytes_sent = self.bytes.sent().saturating_sub(waiter.bytes_at_start.0);
            report.bytes_received = self
                .bytes
                .received()
                .saturating_sub(waiter.bytes_at_start.1);
            self.out
                .push(Output::Reply(waiter.token, Reply::Sync(report)));
        }
        self.waiters = remaining;
    }

    /// What `hedgerow status` shows.
    pub(super) fn status(&mut self) -> NodeStatus {
        let now = self.now;
        let connected = self
            .peer
            .iter()
            .filter_map(|(peer, state)| {
                let addr = state.addr.as_ref()?;
                let last = state.last_sync.as_ref();
                let pulls = |f: fn(&Pull) -> bool| {
                    self.pulls.iter().any(|((p, _), pull)| p == peer && f(pull))
                };
                let route = self.reach.route_of(peer).unwrap_or(Route::Direct);
                Some(ConnectedPeer {
                    peer: peer.to_string(),
                    addr: addr.to_string(),
                    reached: route.word().to_string(),
                    via: match route {
                        Route::Relayed { via } => Some(via.to_string()),
                        _ => None,
                    },
                    syncing: pulls(|p| matches!(p, Pull::Running(_))),
                    interrupted: pulls(|p| p.kept().is_some()),
                    postponed: pulls(|p| matches!(p, Pull::Postponed(_))),
                    sync_budget: state.link.budget(),
                    last_sync_at: last.map(|l| l.0),
                    last_sync: last.map(|l| l.1.clone()),
                })
            })
            .collect();
        let commons = self
            .local
            .commons()
            .into_iter()
            .map(|(id, name)| HeldCommons {
                id: id.to_string(),
                name,
            })
            .collect();
        let (transport_in, transport_out) = self.bytes.transport_bytes();
        let mut counters = self.counters.clone();
        // Changes the commons' charters refused, on every path (gossip, sync, bundle, local).
        for (kind, count) in self.local.admission_refusals() {
            *counters
                .rejected
                .entry(super::super::stats::admission_kind(&kind).to_string())
                .or_insert(0) += count;
        }
        for (reason, count) in self.bytes.refused_request_frames() {
            if count > 0 {
                *counters.rejected.entry(reason.to_string()).or_insert(0) += count;
            }
        }
        let kept = self.pulls.values().filter(|p| p.kept().is_some()).count();
        NodeStatus {
            peer_id: self.config.local_peer.to_string(),
            author: self.local.author_text(),
            listen: self.listen.iter().map(|a| a.to_string()).collect(),
            connected,
            commons,
            wanted: self.wanted.iter().map(|c| c.to_string()).collect(),
            rejected_total: counters.rejected_total(),
            excluded_changes: self.local.excluded_count(),
            held_changes: self.local.held_changes(),
            counters,
            banned_peers: self.peers.banned_count(now),
            banned_addresses: self.peers.banned_addresses(now),
            queued_wants: self.queued_wants(),
            tracked_peer_entries: self.peers.tracked() + self.peer.len() + kept,
            bytes: StatusBytes {
                sync_sent: self.bytes.sent(),
                sync_received: self.bytes.received(),
                gossip_published: self.bytes.gossip_published(),
                gossip_received: self.bytes.gossip_received(),
                transport_in,
                transport_out,
            },
            store_bytes: self.local.size_on_disk(),
            blobs: self.blobs_held_and_wanted(),
            blob_transfer: self.blob_status(),
            reach: self.reach.status(),
            metering: self.metering_status(),
        }
    }
}
