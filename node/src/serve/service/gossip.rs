//! Gossip: publishing local changes and announcements, and judging what arrives.

use super::*;

impl<L: LocalState> Service<L> {
    /// Publishes every locally made change on its commons' topic; a private commons' changes
    /// are not gossiped: its hashed topic only hears that there is news, and members pull it.
    pub(super) fn publish_outbox(&mut self) {
        // A command may have written a charter that makes a commons' privacy known.
        self.subscribe_all();
        let mut private_news = Vec::new();
        for live in self.local.take_outbox() {
            let commons = live.envelope.commons;
            let (topic, hides) = self.topic_of(&commons);
            if hides {
                if !private_news.contains(&commons) {
                    private_news.push(commons);
                }
                continue;
            }
            let (message, is_live) = if live.envelope.change.len() > MAX_LIVE_CHANGE_BYTES {
                let digest = self.local_digest(&commons);
                (Gossip::Announce { commons, digest }, false)
            } else {
                (Gossip::Change(Box::new(live)), true)
            };
            self.out.push(Output::Publish {
                commons,
                topic,
                bytes: message.to_bytes(),
                live: is_live,
            });
        }
        for commons in private_news {
            self.announce(commons);
        }
    }

    /// Tells a commons' topic that this node has news, so neighbours pull from it; on a
    /// private commons' hashed topic the news names no commons.
    pub(super) fn announce(&mut self, commons: CommonsId) {
        let digest = self.local_digest(&commons);
        let (topic, hides) = self.topic_of(&commons);
        let message = if hides {
            Gossip::PrivateNews { digest }
        } else {
            Gossip::Announce { commons, digest }
        };
        self.out.push(Output::Publish {
            commons,
            topic,
            bytes: message.to_bytes(),
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
    /// now (it may only want it too, which costs one `NotJoined` round trip). A peer on a
    /// private commons' hashed topic is one to pull that commons from (after our proof).
    pub(super) fn on_peer_subscribed(&mut self, peer: PeerId, topic: &TopicHash) {
        let Some((commons, hides)) = self.commons_of_topic(topic) else {
            return;
        };
        if hides {
            self.private_peers.entry(peer).or_default().insert(commons);
            if self.local.holds(&commons) && self.is_connected(&peer) {
                self.pull_unless_catching_up(peer, commons);
            }
        }
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
            Ok(Gossip::PrivateNews { digest }) => match self.commons_of_topic(topic) {
                Some((commons, true)) => {
                    if !self.proven_on_connection(source, &commons) {
                        self.counters.reject(&Refusal::UnprovenGossip);
                        return MessageAcceptance::Ignore;
                    }
                    if self.local.holds(&commons) && self.local_digest(&commons) != digest {
                        self.start_pull(source, commons);
                    }
                    MessageAcceptance::Accept
                }
                _ => {
                    self.misbehaved(source, Refusal::WrongTopic);
                    MessageAcceptance::Reject
                }
            },
            Ok(_) if self.commons_of_topic(topic).is_some_and(|(_, hides)| hides) => {
                // Content or a commons id on a hashed topic: never published there.
                self.misbehaved(source, Refusal::WrongTopic);
                MessageAcceptance::Reject
            }
            Ok(Gossip::Announce { commons, digest }) => {
                if self.local.privacy(&commons).hides()
                    && !self.proven_on_connection(source, &commons)
                {
                    self.counters.reject(&Refusal::UnprovenGossip);
                    return MessageAcceptance::Ignore;
                }
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
                } else if self.local.privacy(&commons).hides()
                    && !self.proven_on_connection(source, &commons)
                {
                    // A private commons' change in the open: taken only from a proven member.
                    self.counters.reject(&Refusal::UnprovenGossip);
                    MessageAcceptance::Ignore
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
                    self.blob_policy_changed();
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
