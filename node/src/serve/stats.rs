//! Counters a running node reports in `hedgerow status`.

use crate::local_blocks::LocalListError;
use crate::replicas::NodeError;
use hedgerow_protocol::replica::{Rejection, HELD};
use hedgerow_protocol::sync::RequestError;
use hedgerow_protocol::EnvelopeError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Totals since the node started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Changes received and stored (live and by sync).
    pub changes_received: u64,
    /// Documents received in sync responses.
    pub docs_received: u64,
    /// Documents sent in sync responses.
    pub docs_sent: u64,
    /// Sync requests answered.
    pub requests_answered: u64,
    /// Round trips of this node's finished pulls (benchmarks read it from `status`).
    pub pull_round_trips: u64,
    /// Live changes published.
    pub live_published: u64,
    /// Live changes received and accepted.
    pub live_received: u64,
    /// Live changes verified but held for missing history (not forwarded).
    pub live_pending: u64,
    /// Items refused, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Validly signed changes received that lost an equivocation (kept as evidence).
    pub excluded_received: u64,
    /// Peers disconnected and cooled off for misbehaving.
    pub peers_banned: u64,
    /// Pulls cut off by a dropped link or a stalled request (they resume).
    pub pulls_interrupted: u64,
    /// Bulk pulls held outside the sync window (`serve --sync-window`; they resume in it).
    #[serde(default)]
    pub pulls_deferred: u64,
    /// Refusals of validly signed content by authors other than the peer that sent it
    /// (counted in `rejected` too, but no offence of that peer).
    pub relayed_refusals: u64,
    /// Store writes or flushes that failed; what they carried was neither acknowledged nor
    /// forwarded.
    pub store_failures: u64,
    /// IP addresses banned for offences by any number of peer ids.
    pub addresses_banned: u64,
    /// Most wants queued at once, over every pull (capped by `MAX_QUEUED_WANTS`).
    pub peak_queued_wants: u64,
    /// Differing large commons this node listed to a puller by sketch (`/hedgerow/sync/4`).
    #[serde(default)]
    pub sketches_sent: u64,
    /// Differing large commons this node listed to a puller by bucket summary.
    #[serde(default)]
    pub summaries_sent: u64,
}

impl Counters {
    /// Counts one refused item.
    pub fn reject(&mut self, refusal: &Refusal) {
        *self.rejected.entry(refusal.kind().to_string()).or_insert(0) += 1;
    }

    /// Total refused items.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// What one sync with one peer did, as `hedgerow sync` prints it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// The peer.
    pub peer: String,
    /// Commons pulled.
    pub commons: u64,
    /// Commons already in sync.
    pub in_sync: u64,
    /// Documents received.
    pub docs_received: u64,
    /// Changes received and stored.
    pub changes_received: u64,
    /// Documents sent to the peer.
    pub docs_sent: u64,
    /// Round trips of our pulls.
    pub round_trips: u64,
    /// Sync protocol bytes received.
    pub bytes_received: u64,
    /// Sync protocol bytes sent.
    pub bytes_sent: u64,
    /// Problems met (refused items, requests that failed for good).
    pub errors: Vec<String>,
    /// Pulls cut off by a dropped link or a stalled request, then resumed.
    #[serde(default)]
    pub interruptions: u64,
    /// Whether every pull finished.
    pub complete: bool,
    /// Why the peer was never reached, when it was not (then nothing moved, and `hedgerow
    /// sync` fails with this instead of printing the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

/// Why this node refused something a peer sent; [`Refusal::kind`] names it in the `rejected`
/// counters of `status` (the names are stable: scripts and tests read them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A peer over its sync request rate.
    RateLimited,
    /// A live change over its author's or its relay's rate (no offence: relays forward floods).
    LiveRateLimited,
    /// A peer with too many live changes waiting for history (no offence).
    PendingPerPeer,
    /// A connection over its address's limit (no offence).
    TooManyConnections,
    /// A sync request that does not decode.
    MalformedRequest,
    /// A sync response that does not decode.
    MalformedResponse,
    /// A gossip message that does not decode.
    MalformedGossip,
    /// A live change on another commons' topic.
    WrongTopic,
    /// A document in a response that the pull did not ask for.
    UnrequestedDocument,
    /// A response frame past its limit.
    OversizedFrame,
    /// A response frame cut short.
    TruncatedFrame,
    /// A request that decodes but breaks a limit an honest puller keeps.
    InvalidRequest(RequestError),
    /// An item the replicas refused to store.
    Item(ItemRefusal),
    /// A private commons asked for, or a membership proof given, by a peer that has not proved
    /// a member device on its connection (answered `not-a-member`; no offence).
    NotAMember,
    /// A membership proof whose signature does not verify for this connection (an offence).
    BadProof,
    /// Gossip of a private commons from a peer that has not proved membership on its
    /// connection: dropped (no offence).
    UnprovenGossip,
    /// A blob response that fails verification against the blob's hash, or does not decode
    /// (an offence; nothing of it past its last good chunk group is kept).
    BadBlob,
}

impl Refusal {
    /// Short stable name, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate-limited",
            Refusal::LiveRateLimited => "live-rate-limited",
            Refusal::PendingPerPeer => "pending-per-peer",
            Refusal::TooManyConnections => "too-many-connections",
            Refusal::MalformedRequest => "malformed-request",
            Refusal::MalformedResponse => "malformed-response",
            Refusal::MalformedGossip => "malformed-gossip",
            Refusal::WrongTopic => "wrong-topic",
            Refusal::UnrequestedDocument => "unrequested-document",
            Refusal::OversizedFrame => "oversized-frame",
            Refusal::TruncatedFrame => "truncated-frame",
            Refusal::InvalidRequest(invalid) => invalid.kind(),
            Refusal::Item(item) => item.kind(),
            Refusal::NotAMember => "private-not-a-member",
            Refusal::BadProof => "bad-proof",
            Refusal::UnprovenGossip => "private-gossip-unproven",
            Refusal::BadBlob => "bad-blob-chunk",
        }
    }
}

/// Why the replicas refused an item, as a kind without the item's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemRefusal {
    /// An envelope whose signature does not verify.
    BadSignature,
    /// A change whose actor is not its signer's.
    ActorMismatch,
    /// A change that does not parse.
    UnparsableChange,
    /// An envelope past its size limit.
    TooLarge,
    /// An envelope that does not decode.
    Malformed,
    /// A genesis record that does not verify.
    BadGenesis,
    /// An item for another commons or document.
    WrongDocument,
    /// A change that breaks its document's schema.
    SchemaViolation,
    /// A profile edited by someone other than its owner.
    NotProfileOwner,
    /// A change whose history is not held.
    MissingDependencies,
    /// A change no signature covers.
    UnsignedChange,
    /// Changes that do not apply.
    BadChanges,
    /// Too many changes held for missing history.
    TooManyPending,
    /// A change automerge refused.
    AutomergeRefused,
    /// A payload with too many changes or proofs.
    PayloadTooLarge,
    /// A change that rewrites a release.
    ReleaseRewritten,
    /// A fork whose history does not graft.
    BadForkHistory,
    /// A change the commons' charter refuses (not a member, a guest editing a design, a
    /// blocked author, a charter change without authority...), by the charter's kind.
    NotAdmitted(&'static str),
    /// An item refused as invalid otherwise.
    Invalid,
    /// A document without changes.
    EmptyDocument,
    /// A change to a document not held.
    UnknownDocument,
    /// An item of a commons not held.
    UnknownCommons,
    /// A change by an author this node blocks, or built on one (no offence of the relay).
    AuthorBlockedLocally,
    /// Something of a document this node purged.
    Purged,
    /// Any other failure.
    Other,
}

impl ItemRefusal {
    /// The kind of a replica error.
    pub fn of(error: &NodeError) -> Self {
        match error {
            NodeError::Rejected(rejection) => match rejection {
                Rejection::Envelope(EnvelopeError::Signature(_)) => Self::BadSignature,
                Rejection::Envelope(EnvelopeError::ActorMismatch { .. }) => Self::ActorMismatch,
                Rejection::Envelope(EnvelopeError::BadChange { .. }) => Self::UnparsableChange,
                Rejection::Envelope(EnvelopeError::TooLarge { .. }) => Self::TooLarge,
                Rejection::Envelope(EnvelopeError::Decode(_)) => Self::Malformed,
                Rejection::Genesis(_) => Self::BadGenesis,
                Rejection::WrongCommons { .. } | Rejection::WrongDocument { .. } => {
                    Self::WrongDocument
                }
                Rejection::Schema { .. } => Self::SchemaViolation,
                Rejection::NotProfileOwner { .. } => Self::NotProfileOwner,
                Rejection::MissingDependencies { .. } => Self::MissingDependencies,
                Rejection::Uncovered { .. } => Self::UnsignedChange,
                Rejection::BadChanges { .. } => Self::BadChanges,
                Rejection::TooManyPending => Self::TooManyPending,
                Rejection::Automerge { .. } => Self::AutomergeRefused,
                Rejection::TooManyChanges { .. } | Rejection::TooManyProofs { .. } => {
                    Self::PayloadTooLarge
                }
                Rejection::ReleaseRewritten { .. } => Self::ReleaseRewritten,
                Rejection::ForkGraft { .. } | Rejection::ForkHeadMissing { .. } => {
                    Self::BadForkHistory
                }
                Rejection::AuthorRefused { .. } => Self::AuthorBlockedLocally,
                Rejection::NotAdmitted { refused, .. } => {
                    Self::NotAdmitted(admission_kind(&refused.kind))
                }
            },
            NodeError::Local(LocalListError::Purged(_)) => Self::Purged,
            NodeError::NotAdmitted(report) => Self::NotAdmitted(admission_kind(
                report
                    .refused
                    .iter()
                    .map(|r| r.refused.kind.as_str())
                    .find(|k| *k != HELD)
                    .unwrap_or(HELD),
            )),
            NodeError::Invalid(_) | NodeError::Bundle(_) => Self::Invalid,
            NodeError::EmptyDocument { .. } => Self::EmptyDocument,
            NodeError::UnknownDoc { .. } => Self::UnknownDocument,
            NodeError::UnknownCommons(_) => Self::UnknownCommons,
            _ => Self::Other,
        }
    }

    /// Short stable name, for counters.
    pub fn kind(self) -> &'static str {
        match self {
            Self::BadSignature => "bad-signature",
            Self::ActorMismatch => "actor-mismatch",
            Self::UnparsableChange => "unparsable-change",
            Self::TooLarge => "too-large",
            Self::Malformed => "malformed",
            Self::BadGenesis => "bad-genesis",
            Self::WrongDocument => "wrong-document",
            Self::SchemaViolation => "schema-violation",
            Self::NotProfileOwner => "not-profile-owner",
            Self::MissingDependencies => "missing-dependencies",
            Self::UnsignedChange => "unsigned-change",
            Self::BadChanges => "bad-changes",
            Self::TooManyPending => "too-many-pending",
            Self::AutomergeRefused => "automerge-refused",
            Self::PayloadTooLarge => "payload-too-large",
            Self::ReleaseRewritten => "release-rewritten",
            Self::BadForkHistory => "bad-fork-history",
            Self::NotAdmitted(kind) => kind,
            Self::Invalid => "invalid",
            Self::EmptyDocument => "empty-document",
            Self::UnknownDocument => "unknown-document",
            Self::UnknownCommons => "unknown-commons",
            Self::AuthorBlockedLocally => "author-blocked-locally",
            Self::Purged => "purged",
            Self::Other => "other",
        }
    }

    /// Whether it is about what validly signed content says (equivocation, schema, a profile
    /// edited by someone else, history this node lacks) rather than about how the peer sent
    /// it. An honest relay forwards such content by other authors without being able to tell
    /// it is refused here (it may hold the other twin, or an older schema), so it is counted
    /// but is no offence of the relay.
    pub fn is_content(self) -> bool {
        matches!(
            self,
            Self::SchemaViolation
                | Self::NotAdmitted(_)
                | Self::NotProfileOwner
                | Self::MissingDependencies
                | Self::TooManyPending
                | Self::AutomergeRefused
                | Self::EmptyDocument
                // This node's own choices: any relay may forward what it blocked or purged.
                | Self::AuthorBlockedLocally
                | Self::Purged
        )
    }
}

/// The stable counter name of a charter refusal kind (an unknown one, from a newer peer's
/// words, counts as `charter-refused`).
pub fn admission_kind(kind: &str) -> &'static str {
    const KINDS: [&str; 11] = [
        "not-a-member",
        "guest-cannot-edit",
        "device-revoked",
        "author-blocked",
        "beyond-frontier",
        "charter-malformed",
        "charter-unauthorised",
        "invitation-forged",
        "invitation-expired",
        "invitation-used-up",
        HELD,
    ];
    KINDS
        .into_iter()
        .find(|k| *k == kind)
        .unwrap_or("charter-refused")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counter names scripts and the network tests read do not change with the types.
    #[test]
    fn refusal_kinds_keep_their_counter_names() {
        assert_eq!(Refusal::RateLimited.kind(), "rate-limited");
        assert_eq!(Refusal::MalformedRequest.kind(), "malformed-request");
        assert_eq!(Refusal::UnrequestedDocument.kind(), "unrequested-document");
        assert_eq!(
            Refusal::InvalidRequest(RequestError::TooManyWants { count: 9 }).kind(),
            "too-many-wants"
        );
        assert_eq!(
            Refusal::Item(ItemRefusal::of(&NodeError::Invalid("x".into()))).kind(),
            "invalid"
        );
        let rejected = NodeError::Rejected(Rejection::TooManyPending);
        assert_eq!(ItemRefusal::of(&rejected), ItemRefusal::TooManyPending);
        assert!(ItemRefusal::of(&rejected).is_content());
        assert!(!ItemRefusal::BadSignature.is_content());
    }
}
