//! Content admission: whether a change to a non-charter document is accepted under a charter.

use super::evaluate::{CharterState, IgnoreReason};
use super::Role;
use crate::identity::AuthorKey;
use crate::schema::DocKind;

/// What admission needs to know about one content change (of a design, event, note or profile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeFacts {
    /// The device that signed the change.
    pub device: AuthorKey,
    /// The change's automerge actor id bytes.
    pub actor: Vec<u8>,
    /// The change's automerge sequence number.
    pub seq: u64,
    /// The kind of document changed.
    pub doc_kind: DocKind,
    /// The person who created the document (the person of its genesis creator).
    pub doc_creator_person: AuthorKey,
    /// Whether this change creates the document (its first change).
    pub creates_doc: bool,
}

/// Why a change was refused under a charter. `kind()` is the stable name shown to users and in JSON.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The author's person holds no role in this stewarded commons.
    #[error("the author is not a member of this commons; a steward can invite them")]
    NotAMember,
    /// A Guest tried to change something other than their own notes.
    #[error(
        "guests may write notes and edit their own notes only; a steward can make them a member"
    )]
    GuestCannotEdit,
    /// The device was revoked and this change is beyond what was accepted before.
    #[error("the device that signed this change was revoked by its owner")]
    DeviceRevoked,
    /// The author is blocked and this change is beyond what was accepted before.
    #[error("the author is blocked by a steward of this commons")]
    AuthorBlocked,
    /// The author lost their role and this change is beyond what was accepted before.
    #[error("the author's role was reduced or removed before this change was seen")]
    BeyondFrontier,
    /// A charter change that is not exactly one well-formed operation for this commons.
    #[error("malformed charter change: {reason}")]
    CharterMalformed {
        /// What is wrong with it.
        reason: String,
    },
    /// A charter operation its author has no authority for.
    #[error("charter operation not authorised: {reason}")]
    CharterUnauthorised {
        /// Which authority check failed.
        reason: IgnoreReason,
    },
    /// An invitation whose signature does not verify.
    #[error("the invitation is forged or altered")]
    InvitationForged,
    /// An invitation redeemed after its expiry.
    #[error("the invitation has expired; ask for a new one")]
    InvitationExpired,
    /// An invitation whose uses are all taken.
    #[error("the invitation has been used up; ask for a new one")]
    InvitationUsedUp,
    /// A charter operation whose dependencies are not all given.
    #[error("the charter change depends on charter changes this node does not have yet")]
    MissingDependency,
    /// The charter already holds the most operations allowed.
    #[error(
        "the charter holds {} operations already, the most allowed",
        super::MAX_CHARTER_OPS
    )]
    CharterFull,
}

impl Refusal {
    /// The refusal's stable name.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::NotAMember => "not-a-member",
            Refusal::GuestCannotEdit => "guest-cannot-edit",
            Refusal::DeviceRevoked => "device-revoked",
            Refusal::AuthorBlocked => "author-blocked",
            Refusal::BeyondFrontier => "beyond-frontier",
            Refusal::CharterMalformed { .. } => "charter-malformed",
            Refusal::CharterUnauthorised { .. } => "charter-unauthorised",
            Refusal::InvitationForged => "invitation-forged",
            Refusal::InvitationExpired => "invitation-expired",
            Refusal::InvitationUsedUp => "invitation-used-up",
            Refusal::MissingDependency => "charter-missing-dependency",
            Refusal::CharterFull => "charter-full",
        }
    }
}

impl From<IgnoreReason> for Refusal {
    fn from(reason: IgnoreReason) -> Self {
        match reason {
            IgnoreReason::InvitationForged => Refusal::InvitationForged,
            IgnoreReason::InvitationExpired => Refusal::InvitationExpired,
            IgnoreReason::InvitationUsedUp => Refusal::InvitationUsedUp,
            IgnoreReason::DeviceRevoked => Refusal::DeviceRevoked,
            IgnoreReason::AuthorBlocked => Refusal::AuthorBlocked,
            IgnoreReason::MissingDependency => Refusal::MissingDependency,
            IgnoreReason::CharterFull => Refusal::CharterFull,
            IgnoreReason::WrongCommons => Refusal::CharterMalformed {
                reason: "the operation names another commons".into(),
            },
            reason => Refusal::CharterUnauthorised { reason },
        }
    }
}

impl CharterState {
    /// Whether a content change is accepted under this charter (rule 4 of the module docs).
    ///
    /// Checked on every path a change enters by. Revocations and blocks apply in open commons
    /// too; roles only in stewarded ones.
    pub fn admit(&self, facts: &ChangeFacts) -> Result<(), Refusal> {
        let (actor, seq) = (facts.actor.as_slice(), facts.seq);
        if let Some(frontier) = self.revoked.get(&facts.device) {
            if !frontier.covers(actor, seq) {
                return Err(Refusal::DeviceRevoked);
            }
        }
        let person = self.person_of(facts.device);
        // A block names a person key, but a steward may have named one of their device keys.
        for key in [person, facts.device] {
            if let Some(frontier) = self.blocked.get(&key) {
                if !frontier.covers(actor, seq) {
                    return Err(Refusal::AuthorBlocked);
                }
            }
        }
        if !self.stewarded {
            return Ok(());
        }
        let reductions = self.reductions.get(&person);
        let before = reductions
            .into_iter()
            .flatten()
            .filter(|r| r.frontier.covers(actor, seq))
            .map(|r| r.before)
            .max();
        let role = match self.role_of(person).max(before) {
            Some(role) => role,
            None if reductions.is_some() => return Err(Refusal::BeyondFrontier),
            None => return Err(Refusal::NotAMember),
        };
        if role >= Role::Member {
            return Ok(());
        }
        let own = facts.doc_creator_person == person;
        let allowed = match facts.doc_kind {
            DocKind::Note => facts.creates_doc || own,
            DocKind::Profile => own,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::GuestCannotEdit)
        }
    }

    /// The role `person`'s change `(actor, seq)` is judged under: the current role, or the role
    /// held before a reduction whose frontier covers the change, whichever is higher.
    pub fn role_for_change(&self, person: AuthorKey, actor: &[u8], seq: u64) -> Option<Role> {
        let before = self
            .reductions
            .get(&person)
            .into_iter()
            .flatten()
            .filter(|r| r.frontier.covers(actor, seq))
            .map(|r| r.before)
            .max();
        self.role_of(person).max(before)
    }
}
