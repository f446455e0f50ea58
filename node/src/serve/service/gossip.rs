//! Gossip: publishing local changes and announcements, and judging what arrives.

use super::*;

impl<L: LocalState> Service<L> {
    /// Publishes every locally made change on its commons' topic.
    pub(super) fn publish_outbox(&mut self) {
        for live in self.local.take_outbox() {
            let commons = live.envelope.commons;
            let (message, is_live) = if live.envelope.change.len() > MAX_LIVE_CHANGE_BYTES {
                let digest = self.local_digest(&commons);
                (Gossip::Announce { commons, digest }, false)
            } else {
                (Gossip::Change(Box::new(live)), true)
            };
            self.out.push(Output::Publish {
                commons,
                bytes: message.to_bytes(),
                live: is_live,
            });
        }
    }

    /// Tells a commons' topic that this node has news, so neighbours pull from it.
    pub(super) fn announce(&mut self, commons: CommonsId) {
        let digest = self.local_digest(&commons);
        self.out.push(Output::Publish {
            commons,
            bytes: Gossip::Announce { commons, digest }.to_bytes(),
            live: false,
        });
    }

    /// This node's digest of a commons, as its `Hello` would carry it.
    pub(super) fn local_digest(&self, commons: &CommonsId) -> [u8; 32] {
        let docs: Vec<_> = self
            .local
            .inventory(commons)
            .unwrap_or_default()
            .iter()
            .map(|(id, digest)| (id_prefix(id), *digest))
            .collect();
        commons_digest(&docs)
    }

    /// A peer joined a commons topic: if this node wants that commons, the peer may have it
    /// now (it may only want it too, which costs one `NotJoined` round trip).
    pub(super) fn on_peer_subscribed(&mut self, peer: PeerId, topic: &TopicHash) {
        let Some(commons) = self
            .subscribed
            .iter()
            .copied()
            .find(|c| commons_topic(&c.to_string()).hash() == *topic)
        else {
            return;
        };
        if self.wanted.contains(&commons) {
            self.start_pull(peer, commons);
        }
    }

    pub(super) fn on_gossip(
        &mut self,
        source: PeerId,
        topic: &TopicHash,
        data: &[u8],
    ) -> MessageAcceptance {
        self.bytes.record_gossip_received(data.len());
        match Gossip::from_bytes(data) {
            Err(_) => {
                self.misbehaved(source, Refusal::MalformedGossip);
                MessageAcceptance::Reject
            }
            Ok(Gossip::Announce { commons, digest }) => {
                let held = self.local.holds(&commons);
                if (held && self.local_digest(&commons) != digest) || self.wanted.contains(&commons)
                {
                    self.start_pull(source, commons);
                }
                MessageAcceptance::Accept
            }
            Ok(Gossip::Change(live)) => {
                let commons = live.envelope.commons;
                let pending = self.peer.get(&source).map_or(0, |p| p.pending);
                if *topic != commons_topic(&commons.to_string()).hash() {
                    self.misbehaved(source, Refusal::WrongTopic);
                    MessageAcceptance::Reject
                } else if !self
                    .peers
                    .allow_live(source, live.envelope.author, self.now)
                {
                    // Over its author's or its relay's rate: dropped unverified, unforwarded;
                    // a pull brings it later if it is real. No offence (relays forward floods).
                    self.counters.reject(&Refusal::LiveRateLimited);
                    self.start_pull(source, commons);
                    MessageAcceptance::Ignore
                } else if pending >= MAX_PENDING_PER_PEER {
                    self.counters.reject(&Refusal::PendingPerPeer);
                    self.start_pull(source, commons);
                    MessageAcceptance::Ignore
                } else {
                    self.on_live_change(source, commons, &live)
                }
            }
        }
    }

    /// Applies a live change that passed the rate limits.
    pub(super) fn on_live_change(
        &mut self,
        source: PeerId,
        commons: CommonsId,
        live: &hedgerow_protocol::sync::LiveChange,
    ) -> MessageAcceptance {
        match self.local.ingest_live(live) {
            Ok(LiveOutcome::Applied(n)) => match self.local.commit() {
                Ok(()) => {
                    self.counters.live_received += 1;
                    self.counters.changes_received += n as u64;
                    let doc = live
                        .genesis
                        .as_ref()
                        .map_or(live.envelope.doc, |g| g.body.id());
                    if self.local.withheld(&doc) {
                        // Hidden or retracted here: kept, but not passed on.
                        MessageAcceptance::Ignore
                    } else {
                        MessageAcceptance::Accept
                    }
                }
                // Not durable: neither acknowledged nor forwarded.
                Err(e) => {
                    self.store_failed(&e);
                    MessageAcceptance::Ignore
                }
            },
            Ok(LiveOutcome::Duplicate) => MessageAcceptance::Ignore,
            Ok(LiveOutcome::Excluded) => {
                // A validly signed losing twin: kept as evidence, never forwarded, and no
                // fault of the peer that relayed it.
                let _ = self.local.commit();
                self.counters.excluded_received += 1;
                MessageAcceptance::Ignore
            }
            Ok(LiveOutcome::Pending) => {
                // Verified but its history is missing here: held, not forwarded (neighbours
                // could not apply it either), and the history is fetched from the sender.
                self.peer.entry(source).or_default().pending += 1;
                self.counters.live_pending += 1;
                self.start_pull(source, commons);
                MessageAcceptance::Ignore
            }
            Err(NodeError::UnknownDoc { .. }) => {
                self.start_pull(source, commons);
                MessageAcceptance::Ignore
            }
            Err(NodeError::UnknownCommons(_)) => {
                if self.wanted.contains(&commons) {
                    self.start_pull(source, commons);
                }
                MessageAcceptance::Ignore
            }
            Err(e @ NodeError::Store(_)) => {
                self.store_failed(&e);
                MessageAcceptance::Ignore
            }
            Err(e @ NodeError::Rejected(Rejection::TooManyPending)) => {
                // Its history comes by pull instead.
                self.refused(source, &e);
                self.start_pull(source, commons);
                MessageAcceptance::Ignore
            }
            Err(e) => {
                tracing::info!("refused live change from {source}: {e}");
                if self.refused(source, &e) {
                    MessageAcceptance::Reject
                } else {
                    MessageAcceptance::Ignore
                }
            }
        }
    }
}
