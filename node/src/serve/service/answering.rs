//! Answering peers' sync requests, and counting what they get wrong.

use super::*;

impl<L: LocalState> Service<L> {
    pub(super) fn on_request(&mut self, peer: PeerId, id: InboundId, bytes: &[u8]) {
        let now = self.now;
        let response = if !self.peers.allow_request(peer, now) {
            self.misbehaved(peer, Refusal::RateLimited);
            SyncResponse::Refused {
                reason: "too many requests; slow down".into(),
            }
        } else {
            match SyncRequest::from_bytes(bytes).map(|r| (validate_request(&r), r)) {
                Ok((Err(invalid), _)) => {
                    self.misbehaved(peer, Refusal::InvalidRequest(invalid.clone()));
                    SyncResponse::Refused {
                        reason: invalid.to_string(),
                    }
                }
                Ok((Ok(()), SyncRequest::Prove(proof))) => self.on_prove(peer, proof),
                Ok((Ok(()), request)) if !self.serves(peer, request_commons(&request)) => {
                    // A private commons, and no member device proved on this connection.
                    self.counters.reject(&Refusal::NotAMember);
                    SyncResponse::NotAMember
                }
                Ok((Ok(()), request)) => {
                    match request {
                        SyncRequest::Fetch { .. } | SyncRequest::FetchV3 { .. } => {
                            self.peer.entry(peer).or_default().fetched_at = Some(now);
                        }
                        SyncRequest::Hello { .. } | SyncRequest::HelloV4 { .. } => {
                            self.start_postponed(peer)
                        }
                        SyncRequest::Entries { .. } | SyncRequest::Prove(_) => {}
                    }
                    let response = respond(&mut self.local, &request);
                    let sent = match &response {
                        SyncResponse::Docs { items, .. } => items.len(),
                        SyncResponse::DocsV3 { items, .. } => items.len(),
                        SyncResponse::Sketch { .. } => {
                            self.counters.sketches_sent += 1;
                            0
                        }
                        SyncResponse::Summary { .. } => {
                            self.counters.summaries_sent += 1;
                            0
                        }
                        _ => 0,
                    };
                    if sent > 0 {
                        self.counters.docs_sent += sent as u64;
                        self.report(peer).docs_sent += sent as u64;
                    }
                    self.counters.requests_answered += 1;
                    response
                }
                Err(e) => {
                    self.misbehaved(peer, Refusal::MalformedRequest);
                    SyncResponse::Refused {
                        reason: format!("malformed request: {e}"),
                    }
                }
            }
        };
        self.out.push(Output::Respond {
            id,
            bytes: response.to_bytes(),
        });
    }

    /// Starts the pulls held back while `peer` was fetching from us.
    pub(super) fn start_postponed(&mut self, peer: PeerId) {
        let held: Vec<CommonsId> = self
            .pulls
            .iter()
            .filter(|((p, _), pull)| *p == peer && matches!(pull, Pull::Postponed(_)))
            .map(|((_, c), _)| *c)
            .collect();
        for commons in held {
            self.start_pull(peer, commons);
        }
    }

    /// Counts a refused item from `peer`, and holds it against the peer only when it is the
    /// peer's own offence: validly signed content that this node refuses for what it says
    /// ([`ItemRefusal::is_content`]) is counted, never penalised. The peer may be an honest relay,
    /// and since a node's peer id is its own network key (not its author key) nobody can tell
    /// whether the peer wrote it; floods of such content meet the live rate limits instead.
    /// Returns whether it was an offence.
    pub(super) fn refused(&mut self, peer: PeerId, error: &NodeError) -> bool {
        if let NodeError::NotAdmitted(report) = error {
            // Each change the charter refused is counted by kind where the replicas refuse it
            // (on every path, see `status`); none is the relay's fault.
            self.counters.relayed_refusals += report.refused.len() as u64;
            return false;
        }
        let kind = ItemRefusal::of(error);
        if !kind.is_content() {
            self.misbehaved(peer, Refusal::Item(kind));
            true
        } else {
            self.counters.reject(&Refusal::Item(kind));
            self.counters.relayed_refusals += 1;
            false
        }
    }

    /// Counts a failed store write or flush (this node's own failure, no peer's).
    pub(super) fn store_failed(&mut self, error: &dyn std::fmt::Display) {
        tracing::error!("cannot store: {error}");
        self.counters.store_failures += 1;
    }

    /// Counts an invalid item from `peer`; disconnects and cools it off past the limit.
    pub(super) fn misbehaved(&mut self, peer: PeerId, reason: Refusal) {
        self.counters.reject(&reason);
        let ip = self
            .peer
            .get(&peer)
            .and_then(|p| p.addr.as_ref())
            .and_then(ip_of);
        match self.peers.penalise(peer, ip, self.now) {
            Penalty::Counted => {}
            Penalty::PeerBanned => {
                tracing::warn!(
                    "disconnecting {peer}: too much invalid data ({})",
                    reason.kind()
                );
                self.counters.peers_banned += 1;
                self.out.push(Output::Disconnect(peer));
            }
            Penalty::AddressBanned => {
                tracing::warn!(
                    "disconnecting every peer at {ip:?}: too much invalid data from it ({})",
                    reason.kind()
                );
                self.counters.peers_banned += 1;
                self.counters.addresses_banned += 1;
                let at_ip: Vec<PeerId> = self
                    .peer
                    .iter()
                    .filter(|(_, p)| p.addr.as_ref().is_some_and(|a| ip_of(a) == ip))
                    .map(|(id, _)| *id)
                    .collect();
                for peer in at_ip {
                    self.out.push(Output::Disconnect(peer));
                }
            }
        }
    }
}

/// The commons a request is about.
fn request_commons(request: &SyncRequest) -> &CommonsId {
    match request {
        SyncRequest::Hello { commons, .. }
        | SyncRequest::HelloV4 { commons, .. }
        | SyncRequest::Fetch { commons, .. }
        | SyncRequest::FetchV3 { commons, .. }
        | SyncRequest::Entries { commons, .. } => commons,
        SyncRequest::Prove(proof) => &proof.commons,
    }
}
