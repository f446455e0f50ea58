//! Private commons on the node: whether a commons is private, this device's membership proofs,
//! and judging a peer's proof against the commons' charter as it stands now.
//!
//! The formats are pure and live in `hedgerow_protocol::private`; the service
//! (`serve/service/`) decides when to ask for and require proofs.

use crate::replicas::Replicas;
use hedgerow_protocol::charter::{CharterAction, DeviceCertificate, Outcome};
use hedgerow_protocol::private::{MembershipProof, ProofError};
use hedgerow_protocol::{AuthorKey, CommonsId, Signed};

/// How a node treats a commons' privacy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// Open or stewarded but public: served to anyone, gossiped on its id's topic.
    Public,
    /// Its charter holds `Found { private: true }`: served only to proven members.
    Private,
    /// Joined by an invitation whose commons' `Found` has not arrived yet: it may be private,
    /// so its id stays off gossip, pulls prove membership first, and it is served only to the
    /// commons' creator and the invitation's issuer (who carry the redemption onwards).
    Presumed,
}

impl Privacy {
    /// Whether gossip goes on the hashed topic and pulls prove membership first.
    pub fn hides(self) -> bool {
        !matches!(self, Privacy::Public)
    }
}

impl Replicas {
    /// How this node treats `commons` (a read failure counts as public: nothing is served
    /// that the charter would refuse, since serving checks [`Privacy::Private`] on its own).
    pub fn privacy(&mut self, commons: &CommonsId) -> Privacy {
        let Ok(Some(policy)) = self.charter_state(commons) else {
            return Privacy::Public;
        };
        let state = &policy.state;
        if state.is_private() {
            return Privacy::Private;
        }
        if state.is_stewarded() {
            return Privacy::Public;
        }
        let me = self.author();
        let redeemed = state.log().iter().any(|e| {
            e.author == me
                && matches!(e.op.action, CharterAction::Redeem { .. })
                && e.outcome != Outcome::Applied
        });
        if redeemed {
            Privacy::Presumed
        } else {
            Privacy::Public
        }
    }

    /// This device's proof, for the connection from `prover` to `verifier` (libp2p peer id
    /// bytes), that it belongs to `commons`; with its certificate when the charter holds one
    /// for it.
    pub fn membership_proof(
        &mut self,
        commons: &CommonsId,
        prover: &[u8],
        verifier: &[u8],
    ) -> MembershipProof {
        let certificate = self
            .own_certificate()
            .or_else(|| self.certificate_in_charter(commons));
        MembershipProof::sign(*commons, self.key(), certificate, prover, verifier)
    }

    /// The certificate of this device in `commons`' charter, if its person is another key.
    fn certificate_in_charter(&mut self, commons: &CommonsId) -> Option<Signed<DeviceCertificate>> {
        let policy = self.charter_state(commons).ok().flatten()?;
        let me = self.author();
        policy.state.log().iter().find_map(|e| match &e.op.action {
            CharterAction::Device { certificate }
                if certificate.body.device == me && certificate.body.person != me =>
            {
                Some(certificate.clone())
            }
            _ => None,
        })
    }

    /// Whether a (verified) proof's device belongs to a person holding a role in `commons`
    /// now. A public commons needs no proof: every proof passes. While a commons is only
    /// presumed private (this node redeemed an invitation and lacks the `Found`), only its
    /// creator and the issuers of the invitations it redeemed are served: they are the ones
    /// that take this node's redemption to the rest of the commons.
    pub fn judge_proof(&mut self, proof: &MembershipProof) -> Result<(), ProofError> {
        let refused = ProofError::NotAMember(proof.commons);
        let policy = match self.charter_state(&proof.commons) {
            Ok(Some(policy)) => policy,
            Ok(None) => return Ok(()),
            Err(_) => return Err(refused),
        };
        let state = &policy.state;
        match self.privacy(&proof.commons) {
            Privacy::Public => Ok(()),
            Privacy::Private => match proof.member(state) {
                Ok(_) => Ok(()),
                Err(e) => {
                    let person = proof
                        .certificate
                        .as_ref()
                        .map_or(state.person_of(proof.device), |c| c.body.person);
                    if redeemed_too_early(state, person) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }
            },
            Privacy::Presumed => {
                let person = proof
                    .certificate
                    .as_ref()
                    .map_or(proof.device, |c| c.body.person);
                let me = self.author();
                let trusted = state.scope().creator == person
                    || state.log().iter().any(|e| {
                        e.author == me
                            && matches!(&e.op.action, CharterAction::Redeem { invitation }
                                if invitation.body.issuer == person
                                    || invitation.body.issuer == proof.device)
                    });
                if trusted {
                    Ok(())
                } else {
                    Err(refused)
                }
            }
        }
    }
}

/// Whether `person` redeemed an invitation the charter still honours, but the replay put the
/// redemption before the commons' `Found` (both written with no common past, ordered by hash),
/// so it was ignored as `not-stewarded`. Such a node redeems again once it holds the `Found`
/// (see `Replicas::charter_changed`); it has to be served to get it, or neither side moves.
///
/// Only while the person never got in: once a redemption of theirs took effect, or a steward
/// removed, demoted or blocked them, a role is what counts.
fn redeemed_too_early(state: &hedgerow_protocol::charter::CharterState, person: AuthorKey) -> bool {
    use hedgerow_protocol::charter::IgnoreReason;
    let settled = state.log().iter().any(|e| {
        e.outcome == Outcome::Applied
            && match &e.op.action {
                CharterAction::Redeem { .. } => e.person == person,
                CharterAction::Remove { person: p, .. }
                | CharterAction::SetRole { person: p, .. }
                | CharterAction::Block { person: p, .. } => *p == person,
                _ => false,
            }
    });
    !settled
        && state.log().iter().any(|e| {
            e.person == person
                && e.outcome == Outcome::Ignored(IgnoreReason::NotStewarded)
                && matches!(&e.op.action, CharterAction::Redeem { invitation }
                if invitation.verify().is_ok()
                    && invitation.body.commons == state.scope().commons
                    && e.op.at <= invitation.body.expires_at
                    && state
                        .role_of(state.person_of(invitation.body.issuer))
                        .is_some_and(|held| held.may_grant(invitation.body.role)))
        })
}
