//! Counters a running node reports in `hedgerow status`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Totals since the node started.
#[derive(Debug, Clone, Default, Serialize)]
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
}

impl Counters {
    /// Counts one refused item.
    pub fn reject(&mut self, reason: &str) {
        *self.rejected.entry(reason.to_string()).or_insert(0) += 1;
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
}

/// Whether a refusal is about what validly signed content says (equivocation, schema, a
/// profile edited by someone else, history this node lacks) rather than about how the peer
/// sent it. An honest relay forwards such content by other authors without being able to
/// tell it is refused here (it may hold the other twin, or an older schema), so it is counted
/// but is no offence of the relay.
pub fn is_content_refusal(error: &crate::replicas::NodeError) -> bool {
    use hedgerow_protocol::replica::Rejection;
    matches!(
        error,
        crate::replicas::NodeError::Rejected(
            Rejection::Schema { .. }
                | Rejection::NotProfileOwner { .. }
                | Rejection::MissingDependencies { .. }
                | Rejection::TooManyPending
                | Rejection::Automerge { .. }
        ) | crate::replicas::NodeError::EmptyDocument { .. }
    )
}

/// Short stable name of a rejection, for counters.
pub fn rejection_kind(error: &crate::replicas::NodeError) -> String {
    use hedgerow_protocol::replica::Rejection;
    use hedgerow_protocol::EnvelopeError;
    match error {
        crate::replicas::NodeError::Rejected(rejection) => match rejection {
            Rejection::Envelope(EnvelopeError::Signature(_)) => "bad-signature",
            Rejection::Envelope(EnvelopeError::ActorMismatch { .. }) => "actor-mismatch",
            Rejection::Envelope(EnvelopeError::BadChange { .. }) => "unparsable-change",
            Rejection::Envelope(EnvelopeError::TooLarge { .. }) => "too-large",
            Rejection::Envelope(EnvelopeError::Decode(_)) => "malformed",
            Rejection::Genesis(_) => "bad-genesis",
            Rejection::WrongCommons { .. } | Rejection::WrongDocument { .. } => "wrong-document",
            Rejection::Schema { .. } => "schema-violation",
            Rejection::NotProfileOwner { .. } => "not-profile-owner",
            Rejection::MissingDependencies { .. } => "missing-dependencies",
            Rejection::Uncovered { .. } => "unsigned-change",
            Rejection::BadChanges { .. } => "bad-changes",
            Rejection::TooManyPending => "too-many-pending",
            Rejection::Automerge { .. } => "automerge-refused",
            Rejection::TooManyChanges { .. } | Rejection::TooManyProofs { .. } => {
                "payload-too-large"
            }
            Rejection::ReleaseRewritten { .. } => "release-rewritten",
            Rejection::ForkGraft { .. } | Rejection::ForkHeadMissing { .. } => "bad-fork-history",
        }
        .to_string(),
        crate::replicas::NodeError::Invalid(_) => "invalid".into(),
        crate::replicas::NodeError::EmptyDocument { .. } => "empty-document".into(),
        crate::replicas::NodeError::UnknownDoc { .. } => "unknown-document".into(),
        crate::replicas::NodeError::UnknownCommons(_) => "unknown-commons".into(),
        _ => "other".into(),
    }
}
