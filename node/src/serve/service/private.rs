//! Private commons: membership proofs on each connection, asked for before a private commons
//! is served and given before one is pulled, and the hashed gossip topics.
//!
//! A proof is bound to the two peer ids of the connection (both authenticated by the
//! transport), kept while the peer stays connected, and judged against the commons' charter
//! again at every request and every gossip message, so a member removed from the charter stops
//! being served on the connection it proved on.

use super::*;
use crate::private::Privacy;
use crate::serve::stats::Refusal;
use hedgerow_protocol::private::MembershipProof;
use libp2p::gossipsub::IdentTopic;

impl<L: LocalState> Service<L> {
    /// The topic a commons' gossip uses now, and whether it is the hashed one.
    pub(super) fn topic_of(&mut self, commons: &CommonsId) -> (IdentTopic, bool) {
        let hides = self.local.privacy(commons).hides();
        (crate::net::topic_for(commons, hides), hides)
    }

    /// Whether our pulls of `commons` from `peer` must first prove membership on this connection.
    pub(super) fn must_prove(&mut self, peer: PeerId, commons: CommonsId) -> bool {
        !self.proven_to.contains(&(peer, commons)) && self.local.privacy(&commons).hides()
    }

    /// Sends our membership proof for `commons` to `peer`, holding `request` until it is taken.
    pub(super) fn prove_then(&mut self, peer: PeerId, commons: CommonsId, request: SyncRequest) {
        let proof = self.local.membership_proof(
            &commons,
            &self.config.local_peer.to_bytes(),
            &peer.to_bytes(),
        );
        self.held_requests.insert((peer, commons), request);
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.in_flight.insert(
            id,
            InFlight {
                peer,
                commons,
                budget: None,
                asked: HashSet::new(),
                proof: true,
            },
        );
        self.out.push(Output::Send {
            peer,
            id,
            bytes: SyncRequest::Prove(Box::new(proof)).to_bytes(),
        });
    }

    /// The answer to our proof: on `Proven` the held request goes out; anything else ends the
    /// pull (a refused member that may be joining right now asks again a few times).
    pub(super) fn on_proof_answer(
        &mut self,
        peer: PeerId,
        commons: CommonsId,
        response: &SyncResponse,
    ) {
        let held = self.held_requests.remove(&(peer, commons));
        match response {
            SyncResponse::Proven => {
                self.proven_to.insert((peer, commons));
                if let Some(request) = held {
                    self.send(peer, commons, request);
                }
            }
            SyncResponse::NotAMember => self.refused_as_non_member(peer, commons),
            SyncResponse::NotJoined => {
                self.finish_pull(peer, commons, "peer does not replicate this commons")
            }
            SyncResponse::Refused { reason } => {
                self.report(peer).errors.push(reason.clone());
                self.finish_pull(peer, commons, &format!("refused: {reason}"));
            }
            _ => {
                self.misbehaved(peer, Refusal::MalformedResponse);
                self.finish_pull(peer, commons, "unexpected answer to a membership proof");
            }
        }
    }

    /// The peer refused us as not a member. While this node's own redemption may still be on
    /// its way to the peer (the commons' `Found` has not reached us), the pull runs again a few
    /// times, [`RETRY_DELAY`] apart.
    pub(super) fn refused_as_non_member(&mut self, peer: PeerId, commons: CommonsId) {
        self.proven_to.remove(&(peer, commons));
        self.report(peer)
            .errors
            .push(format!("commons {commons}: not-a-member"));
        self.finish_pull(peer, commons, "refused: not-a-member");
        let presumed = self.local.privacy(&commons) == Privacy::Presumed;
        let connected = self.is_connected(&peer);
        let tries = self.proof_retries.entry((peer, commons)).or_insert(0);
        if presumed && *tries < MAX_PROOF_RETRIES && connected {
            *tries += 1;
            self.pulls
                .insert((peer, commons), Pull::Again(self.now + RETRY_DELAY));
        }
    }

    /// Judges a peer's membership proof: verified against both peer ids of this connection,
    /// then against the charter. Kept while the peer stays connected when it holds.
    pub(super) fn on_prove(&mut self, peer: PeerId, proof: Box<MembershipProof>) -> SyncResponse {
        let commons = proof.commons;
        if !self.local.holds(&commons) {
            return SyncResponse::NotJoined;
        }
        if let Err(e) = proof.verify(&peer.to_bytes(), &self.config.local_peer.to_bytes()) {
            // Made for another connection, or forged: the peer's own doing.
            self.misbehaved(peer, Refusal::BadProof);
            return SyncResponse::Refused {
                reason: e.to_string(),
            };
        }
        match self.local.judge_proof(&proof) {
            Ok(()) => {
                self.proven.entry(peer).or_default().insert(commons, *proof);
                SyncResponse::Proven
            }
            Err(_) => {
                self.counters.reject(&Refusal::NotAMember);
                SyncResponse::NotAMember
            }
        }
    }

    /// Whether `peer` may be served `commons` now: always unless the commons is (or may be)
    /// private; then only after a proof on this connection whose device's person still holds a
    /// role (see [`LocalState::judge_proof`]).
    pub(super) fn serves(&mut self, peer: PeerId, commons: &CommonsId) -> bool {
        if !self.local.privacy(commons).hides() {
            return true;
        }
        let Some(proof) = self.proven.get(&peer).and_then(|p| p.get(commons)).cloned() else {
            return false;
        };
        if self.local.judge_proof(&proof).is_ok() {
            return true;
        }
        // Removed (or revoked, or blocked) since: this connection is served no more.
        if let Some(proofs) = self.proven.get_mut(&peer) {
            proofs.remove(commons);
        }
        false
    }

    /// Whether `peer` proved, on its connection, a device that is a member of `commons` now.
    pub(super) fn proven_on_connection(&mut self, peer: PeerId, commons: &CommonsId) -> bool {
        let Some(proof) = self.proven.get(&peer).and_then(|p| p.get(commons)).cloned() else {
            return false;
        };
        self.local.judge_proof(&proof).is_ok()
    }

    /// Forgets what was proved on connections to `peer` (it has none left).
    pub(super) fn forget_proofs(&mut self, peer: PeerId) {
        self.proven.remove(&peer);
        self.proven_to.retain(|(p, _)| *p != peer);
        self.held_requests.retain(|(p, _), _| *p != peer);
        self.proof_retries.retain(|(p, _), _| *p != peer);
        self.private_peers.remove(&peer);
    }

    /// The commons whose gossip uses `topic`, and whether that is its hashed topic.
    pub(super) fn commons_of_topic(&self, topic: &TopicHash) -> Option<(CommonsId, bool)> {
        self.subscribed.iter().find_map(|(commons, hides)| {
            (crate::net::topic_for(commons, *hides).hash() == *topic).then_some((*commons, *hides))
        })
    }
}

/// Most times a pull refused as `not-a-member` runs again on one connection while this node's
/// own membership may still be travelling to the peer.
pub const MAX_PROOF_RETRIES: u32 = 5;
