//! Charters: who may write to a stewarded commons, and how every node agrees on it.
//!
//! Each commons has one charter document. Every change of that document carries exactly one
//! [`CharterOp`] (as its automerge message, [`CharterOp::to_message`]) and no automerge operations;
//! the change graph (each change's `deps`) orders the operations causally and the change hash is
//! the operation's id ([`OpRecord`]). A commons is *stewarded* once its charter holds a `Found`
//! operation written by the commons creator; until then it is *open* and anyone may write, as
//! before charters existed.
//!
//! # The rule
//!
//! [`CharterState::evaluate`] turns the set of operations of one charter into a state, the same
//! on every node that holds the same set, whatever order the operations arrived in:
//!
//! 1. **Linearize.** Topological order over `deps` (Kahn's algorithm); when several operations are
//!    ready, the one with the lowest change hash goes first (a min-heap). Duplicates are one
//!    operation. An operation whose dependencies are not all in the set is never ready and is
//!    ignored (`missing-dependency`), as automerge would hold it.
//! 2. **Replay** in that order, from an empty state. An operation takes effect only if its author's
//!    person (the person its device is certified to, else the device key itself) holds the
//!    authority for it in the state reached so far; otherwise it is ignored and the log records a
//!    typed [`IgnoreReason`]:
//!    - `Found`: only the commons creator, once; the creator becomes the first Steward.
//!    - `Add`, `SetRole`, `Remove`: a Steward may do all; a Member may `Add` a Guest only. `Add`
//!      never lowers a role (lowering needs `SetRole` with a frontier).
//!    - `Redeem`: the invitation's signature verifies, it names this commons, the operation's
//!      claimed time is at or before its expiry, its issuer's person may grant the role now
//!      (Steward: any role; Member: Guest), and fewer than `uses` earlier redemptions of it took
//!      effect. The redeemer gets the higher of their current role and the invitation's.
//!    - `Hide`, `Unhide`, `Block`, `Unblock`: a Steward. A Steward cannot be blocked (remove them
//!      first), so blocks can never lock every Steward out.
//!    - `Device`: the certificate verifies, the author is the certified device or a device of
//!      the certifying person, and the device is not certified to another person already. When
//!      the author is not the device itself, the device must not have acted here on its own yet
//!      (no role, no operation written, not the creator, no devices of its own): otherwise anyone
//!      could claim another person's key as their device and then revoke it.
//!    - `RevokeDevice`: the device's own person (from any of their unrevoked devices).
//!    - `Retract`: recorded as a claim by the author's person (every claim is kept);
//!      [`CharterState::is_retracted`] counts only the document creator's.
//!    - **No operation leaves a stewarded commons without a Steward**: removing or demoting the
//!      last Steward is ignored (`last-steward`). When two Stewards remove each other
//!      concurrently, the operation with the lower hash is replayed first and removes the other,
//!      whose own operation is then ignored: exactly one of them remains.
//!
//!    Operations by a revoked device or a blocked person that come after the revocation or block
//!    in the linear order are ignored (a blocked person may still revoke their devices). Charter
//!    operations are judged by the linear order, not by frontiers: an operation concurrent with
//!    a removal or revocation takes effect if it sorts first (a Steward can undo it). In an open
//!    commons only `Found`, `Device`, `RevokeDevice` and `Retract` can take effect.
//! 3. **Reductions carry frontiers.** `Remove`, `SetRole` to a lower role, `Block` and
//!    `RevokeDevice` name the [`Frontier`] of the affected key's changes the writer had seen. A
//!    content change by that key is then accepted only if its (actor, seq) is at or below the
//!    frontier, and then under the role held before the reduction; everything beyond is refused
//!    on every node. The trade-off: a member removed while offline loses the writes the remover
//!    had not yet seen, even those made before the removal; and a person added later has their
//!    earlier writes accepted. Acceptance is judged against the final charter, never against a
//!    wall clock, because nodes cannot agree on clocks but they do converge on the charter.
//! 4. **Content admission** ([`CharterState::admit`]): a change to a design, event or note needs
//!    Member or Steward; a Guest may create notes and edit the notes they created; anyone with a
//!    role may edit their own profile. In every commons, open ones too, a revoked device's changes
//!    beyond its frontier are refused, and so are a blocked person's (a block naming one of their
//!    device keys holds for that device).
//! 5. **The gate** ([`gate`]) decides whether a charter change enters the store at all. It looks
//!    only at the change and its causal past (the operations reachable through its `deps`), so
//!    its verdict is the same on every node and at every time: every node stores the same charter
//!    document, and non-members' operations never enter a stewarded commons' store. The gate
//!    checks authority, not effect: an operation that passes may still be ignored by the replay
//!    (a concurrent removal replayed first, an invitation used up, the last Steward). `Found`
//!    passes iff its author is the creator; `Redeem` passes iff the invitation verifies, names
//!    this commons, has not expired at the claimed time and its issuer is the creator or holds
//!    invite authority in the causal past, so a founder's invitation can be redeemed by someone
//!    who holds nothing of the commons yet; `Device` and `RevokeDevice` in a stewarded commons
//!    need the person to hold a role in the causal past; `Retract` needs a role when stewarded.
//!    What the gate guarantees: its verdict on a change is a function of that change and its
//!    causal past only, so it is the same on every node whatever else the node holds or when it
//!    asks; a stored charter therefore converges like any automerge document. What it does not
//!    guarantee: that a stored operation takes effect (only the replay of the whole set decides).
//!
//! # Costs and limits
//!
//! Evaluation costs O(n log n + n·f) for n operations with frontiers of f entries; admission of
//! one change costs O(r log f) for a person with r reductions. [`gate`] evaluates the causal past
//! once per call; a node gating many changes uses a [`Gatekeeper`], which gives the same verdicts
//! in one replay step per change along chains. A charter over [`MAX_CHARTER_OPS`] operations is
//! refused: the gate refuses further operations ([`Refusal::CharterFull`]) and the replay ignores
//! any beyond the limit (`charter-full`).

mod admit;
mod certificate;
mod evaluate;
mod gate;
mod invitation;

pub use admit::{ChangeFacts, Refusal};
pub use certificate::{CertificateError, DeviceCertificate, MAX_DEVICE_NAME_BYTES};
pub use evaluate::{CharterState, IgnoreReason, LogEntry, Outcome, MAX_CHARTER_OPS};
pub use gate::{gate, Gatekeeper};
pub use invitation::{Invitation, InvitationCode, InvitationError, INVITATION_CODE_PREFIX};

use crate::encoding::{decode, encode, DecodeError};
use crate::genesis::{CommonsGenesis, CommonsId, DocId, Signed};
use crate::identity::AuthorKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A person's standing in a stewarded commons, ordered: Guest < Member < Steward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May write notes (and edit their own).
    Guest,
    /// May write designs, events and notes, and add Guests.
    Member,
    /// May do anything, including changing roles and moderating.
    Steward,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Guest, Role::Member, Role::Steward];

    /// The role's name as the CLI and JSON spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Member => "member",
            Role::Steward => "steward",
        }
    }

    /// Whether a person holding `self` may grant `role` (by `Add` or by issuing an invitation).
    pub fn may_grant(&self, role: Role) -> bool {
        match self {
            Role::Steward => true,
            Role::Member => role == Role::Guest,
            Role::Guest => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = CharterError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text.trim())
            .ok_or_else(|| CharterError::UnknownRole(crate::bytes::shorten(text)))
    }
}

/// The changes of a key that the writer of a reduction had seen: per automerge actor, the highest
/// sequence number accepted. Changes at or below it keep their old standing; changes beyond it
/// are refused after the reduction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frontier(pub Vec<(Vec<u8>, u64)>);

impl Frontier {
    /// The same frontier, sorted by actor with one entry per actor (the highest seq), so lookups
    /// can binary search. Two frontiers naming the same changes normalize to the same value.
    pub fn normalized(&self) -> Frontier {
        let mut entries = self.0.clone();
        entries.sort();
        let mut out: Vec<(Vec<u8>, u64)> = Vec::with_capacity(entries.len());
        for (actor, seq) in entries {
            match out.last_mut() {
                Some(last) if last.0 == actor => last.1 = last.1.max(seq),
                _ => out.push((actor, seq)),
            }
        }
        Frontier(out)
    }

    /// Whether the change `(actor, seq)` is at or below this frontier.
    ///
    /// Expects a [`normalized`](Self::normalized) frontier (the charter state keeps them so).
    pub fn covers(&self, actor: &[u8], seq: u64) -> bool {
        self.0
            .binary_search_by(|(a, _)| a.as_slice().cmp(actor))
            .is_ok_and(|i| seq <= self.0[i].1)
    }
}

/// What a charter operation does. See the module documentation for who may do what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CharterAction {
    /// Makes the commons stewarded, with its creator as first Steward; only the commons creator.
    Found {
        /// Whether the commons is private (its content is served only to members).
        private: bool,
    },
    /// Gives `person` at least `role`.
    Add {
        /// The person key.
        person: AuthorKey,
        /// The role granted.
        role: Role,
    },
    /// Sets `person`'s role; a lowering keeps their changes up to `frontier` under the old role.
    SetRole {
        /// The person key.
        person: AuthorKey,
        /// The new role.
        role: Role,
        /// The person's changes the writer had seen.
        frontier: Frontier,
    },
    /// Takes `person`'s role away; their changes up to `frontier` stay.
    Remove {
        /// The person key.
        person: AuthorKey,
        /// The person's changes the writer had seen.
        frontier: Frontier,
    },
    /// The author's person joins with the invitation's role.
    Redeem {
        /// The invitation, signed by its issuer.
        invitation: Signed<Invitation>,
    },
    /// A Steward hides a document from every node of the commons.
    Hide {
        /// The document.
        doc: DocId,
        /// Why, shown to readers.
        reason: String,
    },
    /// A Steward shows a hidden document again.
    Unhide {
        /// The document.
        doc: DocId,
    },
    /// A Steward refuses `person`'s changes beyond `frontier`.
    Block {
        /// The person key.
        person: AuthorKey,
        /// The person's changes the writer had seen.
        frontier: Frontier,
    },
    /// A Steward lifts a block.
    Unblock {
        /// The person key.
        person: AuthorKey,
    },
    /// Links a device to its person.
    Device {
        /// The certificate, signed by the person key.
        certificate: Signed<DeviceCertificate>,
    },
    /// A person disowns one of their devices; its changes beyond `frontier` are refused.
    RevokeDevice {
        /// The device key.
        device: AuthorKey,
        /// The device's changes the writer had seen.
        frontier: Frontier,
    },
    /// An author withdraws their own document.
    Retract {
        /// The document.
        doc: DocId,
    },
}

impl CharterAction {
    /// The action's name, for logs and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            CharterAction::Found { .. } => "found",
            CharterAction::Add { .. } => "add",
            CharterAction::SetRole { .. } => "set-role",
            CharterAction::Remove { .. } => "remove",
            CharterAction::Redeem { .. } => "redeem",
            CharterAction::Hide { .. } => "hide",
            CharterAction::Unhide { .. } => "unhide",
            CharterAction::Block { .. } => "block",
            CharterAction::Unblock { .. } => "unblock",
            CharterAction::Device { .. } => "device",
            CharterAction::RevokeDevice { .. } => "revoke-device",
            CharterAction::Retract { .. } => "retract",
        }
    }
}

/// One charter operation: the automerge message of one charter change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharterOp {
    /// The commons whose charter this is (an operation copied into another commons is ignored).
    pub commons: CommonsId,
    /// When the author claims to have written it, unix seconds (checked only against invitation expiry).
    pub at: i64,
    /// What it does.
    pub action: CharterAction,
}

/// Longest charter change message accepted, in characters (a Redeem carries an invitation; a
/// reduction's frontier names actors, so this leaves room for a few thousand of them).
pub const MAX_CHARTER_MESSAGE_CHARS: usize = 1 << 20;

impl CharterOp {
    /// The versioned encoding of the operation.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<CharterOp, CharterError> {
        Ok(decode(bytes, "charter operation")?)
    }

    /// The automerge change message carrying this operation: base64url, no padding, of [`encode`](Self::encode).
    pub fn to_message(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.encode())
    }

    /// Reads an operation back from a charter change's automerge message.
    pub fn from_message(message: &str) -> Result<CharterOp, CharterError> {
        if message.len() > MAX_CHARTER_MESSAGE_CHARS {
            return Err(CharterError::MessageTooLong {
                len: message.len(),
                max: MAX_CHARTER_MESSAGE_CHARS,
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(message)
            .map_err(|e| CharterError::NotBase64(e.to_string()))?;
        Self::decode(&bytes)
    }
}

/// One operation of a charter as evaluation sees it: the charter change's hash (the operation's
/// id), its automerge deps, the device that signed it, and the decoded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// The automerge change hash.
    pub hash: [u8; 32],
    /// The change's automerge dependencies (hashes of earlier charter changes).
    pub deps: Vec<[u8; 32]>,
    /// The device key that signed the change.
    pub author: AuthorKey,
    /// The operation.
    pub op: CharterOp,
}

/// The commons a charter belongs to, as evaluation needs it: its id and its creator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CharterScope {
    /// The commons id.
    pub commons: CommonsId,
    /// The commons creator's key (its founder's person).
    pub creator: AuthorKey,
}

impl CharterScope {
    /// The scope of the commons `genesis` describes.
    pub fn of(genesis: &CommonsGenesis) -> CharterScope {
        CharterScope {
            commons: genesis.id(),
            creator: genesis.creator,
        }
    }
}

impl From<&CommonsGenesis> for CharterScope {
    fn from(genesis: &CommonsGenesis) -> Self {
        CharterScope::of(genesis)
    }
}

impl From<(CommonsId, AuthorKey)> for CharterScope {
    fn from((commons, creator): (CommonsId, AuthorKey)) -> Self {
        CharterScope { commons, creator }
    }
}

impl From<&Signed<CommonsGenesis>> for CharterScope {
    fn from(genesis: &Signed<CommonsGenesis>) -> Self {
        CharterScope::of(&genesis.body)
    }
}

/// Why a charter message, role name or invitation code could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharterError {
    /// A role name that is not guest, member or steward.
    #[error("`{0}` is not a role: use guest, member or steward")]
    UnknownRole(String),
    /// A charter change message that is not base64url.
    #[error("charter change message is not base64url text: {0}")]
    NotBase64(String),
    /// A charter change message over the size limit.
    #[error("charter change message is {len} characters, the limit is {max}")]
    MessageTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes do not decode as the expected record.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

#[cfg(test)]
mod tests;
