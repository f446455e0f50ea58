//! What the service does when a time it asked for comes.

use super::*;

impl<L: LocalState> Service<L> {
    /// Does what is due: re-syncs, snapshot saves, retries, held-back pulls, dials and
    /// `hedgerow sync` deadlines; forgets stale interrupted pulls and fetches.
    pub(super) fn on_timer(&mut self) {
        let now = self.now;
        if now >= self.next_resync {
            self.next_resync = now + self.config.sync_interval;
            // Blobs removed by `gc` or a policy edited in config.json since.
            self.blob_policy_changed();
            for peer in self.connected_peers() {
                self.pull_everything(peer);
            }
        }
        if now >= self.next_snapshot {
            self.next_snapshot = now + SNAPSHOT_INTERVAL;
            // A failure is counted, never fatal: the change records are the truth and a
            // stale snapshot is caught up on load.
            if let Err(e) = self.local.save_snapshots() {
                self.store_failed(&e);
            }
        }
        self.retry_due();
        self.resume_deferred();
        self.dial_due();
        self.complete_waiters();
    }

    /// Re-runs interrupted pulls that are due on connections that stayed up, starts held-back
    /// pulls from peers that stopped fetching from us, and forgets stale interrupted pulls.
    pub(super) fn retry_due(&mut self) {
        let now = self.now;
        let fetched = |peer: &PeerId| self.peer.get(peer).and_then(|p| p.fetched_at);
        let due: Vec<(PeerId, CommonsId)> =
            self.pulls
                .iter()
                .filter(|((peer, _), pull)| match pull {
                    Pull::Interrupted {
                        retry: Some(at), ..
                    }
                    | Pull::Again(at)
                    | Pull::AwaitingVersion(at) => *at <= now,
                    Pull::Postponed(_) => fetched(peer)
                        .is_none_or(|at| now.saturating_duration_since(at) >= FETCH_QUIET),
                    _ => false,
                })
                .map(|(k, _)| *k)
                .collect();
        for key in due {
            let connected = self.is_connected(&key.0);
            match self.pulls.remove(&key) {
                Some(Pull::Interrupted { session, since, .. })
                | Some(Pull::Postponed(Some((session, since)))) => {
                    self.pulls.insert(
                        key,
                        Pull::Interrupted {
                            session,
                            since,
                            retry: None,
                        },
                    );
                }
                // Identify never said the peer's version: open as to an older release.
                Some(Pull::AwaitingVersion(_)) => {
                    self.peer.entry(key.0).or_default().identified = true;
                }
                _ => {}
            }
            if connected {
                self.start_pull(key.0, key.1);
            }
        }
        self.pulls.retain(|_, pull| match pull {
            Pull::Interrupted { since, .. } => {
                now.saturating_duration_since(*since) < INTERRUPTED_TTL
            }
            _ => true,
        });
        for state in self.peer.values_mut() {
            if state
                .fetched_at
                .is_some_and(|at| now.saturating_duration_since(at) >= CATCHING_UP)
            {
                state.fetched_at = None;
            }
        }
        self.peers.prune(now);
    }
}
