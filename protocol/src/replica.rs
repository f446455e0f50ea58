//! One document's replica as a pure state machine: the automerge document plus
//! the provenance of every change in it.
//!
//! The node persists what this returns ([`Accepted`] changes) and feeds it what
//! arrives (envelopes, bundles, local edits). Keeping it free of I/O lets the
//! property tests exchange envelopes between many replicas in random orders.

use crate::compact::{decode_change, CompactChanges};
use crate::coverage::{self, MAX_PAYLOAD_CHANGES, MAX_PAYLOAD_PROOFS};
use crate::envelope::{
    actor_for_install, actor_is_bound, check_actor, ChangeEnvelope, ChangeProof, EnvelopeError,
    MAX_CHANGE_BYTES,
};
use crate::genesis::{CommonsId, DocGenesis, DocId, GenesisError, Signed};
use crate::identity::{AuthorKey, DeviceKey};
use crate::schema::{self, DocKind, SchemaError};
use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Most changes a replica holds back while it waits for their dependencies.
pub const MAX_PENDING_CHANGES: usize = 1024;
/// Most changes of one author a replica holds back: one author (keys are free) cannot fill
/// the whole pending set and so push an honest out-of-order change out.
pub const MAX_PENDING_PER_AUTHOR: usize = 64;

/// What is kept for each change beside its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Who wrote the change (proven by its own proof or by a later proof of the same author).
    pub author: AuthorKey,
    /// The change's own signature, when it travelled with one.
    pub proof: Option<ChangeProof>,
}

/// A change newly accepted into the replica, for the node to persist.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The automerge change hash.
    pub hash: ChangeHash,
    /// The raw change bytes.
    pub bytes: Vec<u8>,
    /// Its provenance.
    pub record: ChangeRecord,
}

/// Why a validly signed change is kept out of the document (see [`DocReplica`]'s settlement rule).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExclusionReason {
    /// Its author signed another change with the same actor and sequence number (an
    /// equivocation) and that one's hash is lower.
    Twin {
        /// The twin that wins: the lowest hash of that actor and sequence number.
        winner: [u8; 32],
    },
    /// It depends, directly or not, on an excluded change.
    BuildsOn {
        /// The excluded change it depends on.
        excluded: [u8; 32],
    },
}

/// A validly signed change kept out of the document, kept as evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    /// The change hash.
    pub hash: ChangeHash,
    /// The raw change bytes.
    pub bytes: Vec<u8>,
    /// Who signed it.
    pub record: ChangeRecord,
    /// Why it is out.
    pub reason: ExclusionReason,
}

impl Excluded {
    /// The automerge actor and sequence number the change claims.
    pub fn slot(&self) -> Option<(ActorId, u64)> {
        decode_change(&self.bytes)
            .ok()
            .map(|c| (c.actor_id().clone(), c.seq()))
    }
}

/// Why a validly signed change may not enter a document under its commons' charter: a
/// typed kind (the `rejected` counter name, e.g. `not-a-member`) and a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// Stable kind, as `status` counts it.
    pub kind: String,
    /// What is wrong, for people.
    pub reason: String,
}

/// What an admission policy is told about one change of a content document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmitInput {
    /// The document.
    pub doc: DocId,
    /// Its kind.
    pub kind: DocKind,
    /// Who created the document (a device key).
    pub doc_creator: AuthorKey,
    /// The device that signed the change.
    pub device: AuthorKey,
    /// The change's automerge actor.
    pub actor: Vec<u8>,
    /// Its sequence number for that actor.
    pub seq: u64,
    /// Whether it is the document's first own change (creating it).
    pub creates_doc: bool,
}

/// Decides whether a validly signed change of a content document may enter it (a stewarded
/// commons' membership, roles and blocks). The node sets one per commons; a replica without
/// one admits everything (an open commons).
pub trait Admission: Send + Sync + std::fmt::Debug {
    /// `Err` keeps the change (and whatever builds on it) out of the document.
    fn admit(&self, change: &AdmitInput) -> Result<(), Refused>;
}

/// A change kept out by admission, for the owner to count and report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedChange {
    /// The change hash.
    pub hash: ChangeHash,
    /// Why: refused itself, or `held` when it only builds on a refused change.
    pub refused: Refused,
}

/// The kind of a change held because it builds on a refused change (or lost its signature
/// with one).
pub const HELD: &str = "held";

/// Detached proofs keyed by the change they sign, as sent beside a bundle.
pub type Proofs = Vec<(ChangeHash, ChangeProof)>;

/// A local edit's signed envelope (to send) with its accepted change (to store).
pub type LocalChange = (ChangeEnvelope, Accepted);

/// What happened to an incoming envelope.
#[derive(Debug)]
pub enum IngestOutcome {
    /// Applied, with any held-back changes it unblocked.
    Applied(Vec<Accepted>),
    /// Already in the document.
    Duplicate,
    /// Verified but waiting for dependencies that have not arrived yet.
    Pending,
    /// Verified but kept out as the losing side of an equivocation (or built on one); kept as
    /// evidence, see [`DocReplica::take_excluded`].
    Excluded,
}

/// Why a change or set of changes was refused; nothing of it is applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// Signature, parse or actor failure.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The genesis record is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The envelope names another commons.
    #[error("change belongs to commons {got}, not {expected}")]
    WrongCommons {
        /// This replica's commons.
        expected: CommonsId,
        /// The envelope's.
        got: CommonsId,
    },
    /// The envelope names a document that is neither this one nor one it was forked from.
    #[error(
        "change was signed for document {got}, which is not {expected} or one of its ancestors"
    )]
    WrongDocument {
        /// This replica's document.
        expected: DocId,
        /// The envelope's.
        got: DocId,
    },
    /// The change leaves the document violating its kind's schema.
    #[error("change violates the {kind} schema: {error}")]
    Schema {
        /// The document kind.
        kind: DocKind,
        /// What is wrong.
        error: SchemaError,
    },
    /// Someone other than its owner edited a profile.
    #[error("only {owner} may edit their profile; change was by {author}")]
    NotProfileOwner {
        /// The profile's owner.
        owner: AuthorKey,
        /// The change's author.
        author: AuthorKey,
    },
    /// A set of changes depends on changes neither in it nor in the document.
    #[error("{count} changes depend on changes that were not sent")]
    MissingDependencies {
        /// How many changes had missing dependencies.
        count: usize,
    },
    /// A change in a bundle is not covered by any signature of its author.
    #[error("change {hash} has no signature of its author covering it")]
    Uncovered {
        /// The change, hex.
        hash: String,
    },
    /// Compact changes do not decode (refused by screening or by automerge).
    #[error("changes do not decode: {reason}")]
    BadChanges {
        /// The parser's reason.
        reason: String,
    },
    /// Too many changes are waiting for dependencies.
    #[error("too many changes (over {MAX_PENDING_PER_AUTHOR} of one author, or {MAX_PENDING_CHANGES} in all) are waiting for missing dependencies")]
    TooManyPending,
    /// automerge refused the change.
    #[error("automerge refused the change: {reason}")]
    Automerge {
        /// automerge's reason.
        reason: String,
    },
    /// One document payload carries more changes than [`MAX_PAYLOAD_CHANGES`].
    #[error("a payload may carry at most {MAX_PAYLOAD_CHANGES} changes of a document, this one carries {count}; send it in parts")]
    TooManyChanges {
        /// How many it carries.
        count: usize,
    },
    /// One document payload carries more signatures than [`MAX_PAYLOAD_PROOFS`].
    #[error("a payload may carry at most {MAX_PAYLOAD_PROOFS} signatures of a document, this one carries {count}")]
    TooManyProofs {
        /// How many it carries.
        count: usize,
    },
    /// A change rewrites, removes or shadows a release: a release is written once.
    #[error("change {hash} rewrites release `{version}`; a release is written once and never changes, so publish a new version instead")]
    ReleaseRewritten {
        /// The change, hex.
        hash: String,
        /// The release's version.
        version: String,
    },
    /// A fork holds a change of an ancestor document outside the history its genesis declares.
    #[error("change {hash} was signed for an ancestor document but is not in the history this fork declares (its parent heads); a fork cannot take in its parent's later changes")]
    ForkGraft {
        /// The change, hex.
        hash: String,
    },
    /// A change refused by the commons' charter (membership, role, block, charter authority).
    #[error("change {hash} is refused ({}): {}", refused.kind, refused.reason)]
    NotAdmitted {
        /// The change, hex.
        hash: String,
        /// Why.
        refused: Refused,
    },
    /// A fork lacks one of the parent heads its genesis declares, or it is not an ancestor's change.
    #[error("this fork declares parent head {head}, which its inherited history does not hold; the fork's history must start from the parent's history it names")]
    ForkHeadMissing {
        /// The declared head, hex.
        head: String,
    },
    /// Validly signed changes by an author the owner refuses (see [`DocReplica::refuse_authors`]).
    #[error("{changes} new changes by {author} (or built on theirs) refused: this node has blocked that author")]
    AuthorRefused {
        /// The refused author (the first one met, when several are).
        author: AuthorKey,
        /// How many changes were refused, the ones built on them included.
        changes: usize,
    },
}

/// Why a local edit failed.
#[derive(Debug, thiserror::Error)]
pub enum EditFailure<E: std::error::Error + 'static> {
    /// The edit function refused (bad input); nothing was written.
    #[error(transparent)]
    Refused(E),
    /// The edit would leave the document invalid; it was rolled back.
    #[error("edit rolled back: {0}")]
    Invalid(Rejection),
}

/// A verified change held until its dependencies arrive.
#[derive(Debug, Clone)]
struct PendingChange {
    change: Change,
    proof: ChangeProof,
}

/// One document's replica.
///
/// Equivocation (an author signing two different changes with one actor and sequence
/// number) is settled the same way on every node, whatever order the changes arrive in: of
/// all the changes a node knows for that actor and sequence number, the one with the lowest
/// hash wins; every other one, and everything built on one, is kept out of the document and
/// kept as evidence ([`Self::excluded`]). Since each install of a key writes as its own
/// actor, only a deliberately forged pair can meet this rule.
#[derive(Debug)]
pub struct DocReplica {
    genesis: Signed<DocGenesis>,
    id: DocId,
    lineage: Vec<DocId>,
    doc: Automerge,
    records: HashMap<ChangeHash, ChangeRecord>,
    by_actor_seq: HashMap<(ActorId, u64), ChangeHash>,
    pending: BTreeMap<ChangeHash, PendingChange>,
    /// Validly signed changes kept out of the document: the evidence of equivocations.
    excluded: HashMap<ChangeHash, Excluded>,
    /// Exclusions made since the owner last took them, for the owner to persist.
    newly_excluded: Vec<Excluded>,
    /// Authors whose new changes are refused (a node's local block list); see
    /// [`Self::refuse_authors`].
    refused_authors: Arc<HashSet<AuthorKey>>,
    /// Changes refused for their author by calls that still accepted others, since the
    /// owner last took them: the first author met and how many changes.
    newly_refused_authors: Option<(AuthorKey, usize)>,
    poisoned: bool,
    /// The commons' admission policy for content changes; `None` admits all (open commons).
    admission: Option<std::sync::Arc<dyn Admission>>,
    /// Changes refused or held since the owner last took them.
    newly_refused: Vec<RefusedChange>,
    /// Every change refused here while this replica was in memory, so a change building on
    /// one is known as held rather than as missing history.
    refused: HashSet<ChangeHash>,
    /// The `save()` bytes a whole document arrived as, with the heads they hold, when this
    /// replica's document is the one automerge loaded from them: the owner stores them as
    /// the snapshot instead of saving the document again (see [`Self::take_received_snapshot`]).
    received_snapshot: Option<(Vec<ChangeHash>, Vec<u8>)>,
    /// The stored snapshot this replica was loaded from, with the heads it holds: while the
    /// document is still at those heads, a whole-document payload is these bytes instead of
    /// a fresh `save()` (see [`Self::compact_for`]).
    loaded_from: Option<(Vec<ChangeHash>, Arc<[u8]>)>,
}

impl DocReplica {
    /// An empty replica for a verified genesis record.
    pub fn new(genesis: Signed<DocGenesis>) -> Result<Self, Rejection> {
        let id = genesis.verify()?;
        let lineage = genesis.body.lineage();
        Ok(Self {
            genesis,
            id,
            lineage,
            doc: Automerge::new(),
            records: HashMap::new(),
            by_actor_seq: HashMap::new(),
            pending: BTreeMap::new(),
            excluded: HashMap::new(),
            newly_excluded: Vec::new(),
            refused_authors: Arc::default(),
            newly_refused_authors: None,
            poisoned: false,
            admission: None,
            newly_refused: Vec::new(),
            refused: HashSet::new(),
            received_snapshot: None,
            loaded_from: None,
        })
    }

    /// Refuses, in every later ingest, new changes signed by one of `authors` and every new
    /// change built on one of them (it could not apply without them). Changes already held
    /// stay; local edits, rebuilds and forks are not affected. A set of changes of which some
    /// are refused keeps the rest (counted by [`Self::take_refused_authors`]); an envelope, or a set
    /// refused whole, fails with [`Rejection::AuthorRefused`].
    pub fn refuse_authors(&mut self, authors: Arc<HashSet<AuthorKey>>) {
        self.refused_authors = authors;
    }

    /// The changes refused for their author by ingests that accepted others, since the last
    /// call, as one [`Rejection::AuthorRefused`] (naming the first author met).
    pub fn take_refused_authors(&mut self) -> Option<Rejection> {
        self.newly_refused_authors
            .take()
            .map(|(author, changes)| Rejection::AuthorRefused { author, changes })
    }

    /// Counts changes refused for their author in an ingest that accepted others.
    fn note_refused_authors(&mut self, author: Option<AuthorKey>, changes: usize) {
        if let Some(author) = author.filter(|_| changes > 0) {
            let entry = self.newly_refused_authors.get_or_insert((author, 0));
            entry.1 += changes;
        }
    }

    /// The changes of `fresh` refused for their author, with every change of `fresh` that
    /// builds on one of them and every one left without a covering signature once they are
    /// gone (its author's proof came on a refused change; it comes back covered from a node
    /// that holds it without them); the first refused author.
    fn refused_in(
        &self,
        fresh: &[Change],
        authors: &HashMap<ChangeHash, AuthorKey>,
        proofs: &HashMap<ChangeHash, ChangeProof>,
    ) -> (HashSet<ChangeHash>, Option<AuthorKey>) {
        let mut out = HashSet::new();
        if self.refused_authors.is_empty() {
            return (out, None);
        }
        let mut first = None;
        for change in fresh {
            if let Some(author) = authors
                .get(&change.hash())
                .filter(|a| self.refused_authors.contains(a))
            {
                first.get_or_insert(*author);
                out.insert(change.hash());
            }
        }
        while !out.is_empty() {
            // Sets arrive in causal order, so this settles in one or two passes.
            let before = out.len();
            loop {
                let grown = out.len();
                for change in fresh {
                    if !out.contains(&change.hash())
                        && change.deps().iter().any(|d| out.contains(d))
                    {
                        out.insert(change.hash());
                    }
                }
                if out.len() == grown {
                    break;
                }
            }
            let uncovered = uncovered_without(fresh, proofs, |h| out.contains(h));
            out.extend(uncovered);
            if out.len() == before {
                break;
            }
        }
        (out, first)
    }

    /// Restores a replica from a trusted snapshot (the node's own cache) and the change records.
    ///
    /// Trusted because the node wrote both; `hedgerow verify` re-checks them with [`Self::rebuild`].
    pub fn from_snapshot(
        genesis: Signed<DocGenesis>,
        snapshot: &[u8],
        records: impl IntoIterator<Item = (ChangeHash, ChangeRecord)>,
    ) -> Result<Self, Rejection> {
        let doc = Automerge::load(snapshot).map_err(|e| Rejection::Automerge {
            reason: e.to_string(),
        })?;
        Self::from_loaded(genesis, doc, snapshot.into(), records)
    }

    /// [`Self::from_snapshot`] for a snapshot the caller has loaded already: `doc` is what
    /// automerge loaded from `snapshot` (loading it again costs as much as the first time).
    pub fn from_loaded(
        genesis: Signed<DocGenesis>,
        doc: Automerge,
        snapshot: Arc<[u8]>,
        records: impl IntoIterator<Item = (ChangeHash, ChangeRecord)>,
    ) -> Result<Self, Rejection> {
        let mut replica = Self::new(genesis)?;
        replica.loaded_from = Some((doc.get_heads(), snapshot));
        replica.doc = doc;
        replica.records = records.into_iter().collect();
        replica.index_seqs();
        Ok(replica)
    }

    /// Rebuilds a replica from stored change bytes, re-verifying every signature and coverage.
    pub fn rebuild(
        genesis: Signed<DocGenesis>,
        changes: Vec<(Vec<u8>, Option<ChangeProof>)>,
    ) -> Result<Self, Rejection> {
        let mut replica = Self::new(genesis)?;
        let mut parsed = Vec::with_capacity(changes.len());
        let mut proofs = HashMap::new();
        for (bytes, proof) in changes {
            let change = parse_change(bytes)?;
            if let Some(proof) = proof {
                proofs.insert(change.hash(), proof);
            }
            parsed.push(change);
        }
        replica.ingest_set(parsed, proofs)?;
        Ok(replica)
    }

    /// The document id.
    pub fn id(&self) -> DocId {
        self.id
    }

    /// The commons the document belongs to.
    pub fn commons(&self) -> CommonsId {
        self.genesis.body.commons
    }

    /// The document kind.
    pub fn kind(&self) -> DocKind {
        self.genesis.body.kind
    }

    /// Sets the admission policy content changes must pass (`None`: admit all). Charter
    /// documents ignore it: their changes pass the charter gate instead.
    pub fn set_admission(&mut self, admission: Option<std::sync::Arc<dyn Admission>>) {
        self.admission = admission;
    }

    /// Changes refused or held since the last call, for the owner to count and report.
    pub fn take_refused(&mut self) -> Vec<RefusedChange> {
        std::mem::take(&mut self.newly_refused)
    }

    /// The signed genesis record.
    pub fn genesis(&self) -> &Signed<DocGenesis> {
        &self.genesis
    }

    /// The automerge document, for reading.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// Provenance of one change.
    pub fn record(&self, hash: &ChangeHash) -> Option<&ChangeRecord> {
        self.records.get(hash)
    }

    /// Number of changes applied.
    pub fn change_count(&self) -> usize {
        self.records.len()
    }

    /// Number of verified changes waiting for dependencies.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Highest sequence number per actor: what this replica has, in the form peers compare.
    pub fn clock(&self) -> BTreeMap<ActorId, u64> {
        let mut clock = BTreeMap::new();
        for (actor, seq) in self.by_actor_seq.keys() {
            let entry = clock.entry(actor.clone()).or_insert(0);
            *entry = (*entry).max(*seq);
        }
        clock
    }

    /// The author of this replica's changes by `actor`, verified when they were taken in;
    /// `None` when it holds none.
    pub fn author_of_actor(&self, actor: &ActorId) -> Option<AuthorKey> {
        // Every actor's changes start at sequence number 1 (automerge links each to the last).
        let first = self.by_actor_seq.get(&(actor.clone(), 1)).or_else(|| {
            self.by_actor_seq
                .iter()
                .find(|((a, _), _)| a == actor)
                .map(|(_, hash)| hash)
        })?;
        self.records.get(first).map(|record| record.author)
    }

    /// Hashes of the changes a peer with `clock` lacks, in causal order.
    pub fn missing_for(&self, clock: &BTreeMap<ActorId, u64>) -> Vec<ChangeHash> {
        self.doc
            .get_changes_meta(&[])
            .into_iter()
            .filter(|meta| {
                clock
                    .get(meta.actor.as_ref())
                    .is_none_or(|seq| meta.seq > *seq)
            })
            .map(|meta| meta.hash)
            .collect()
    }

    /// Puts `hashes` in compact form, with the proofs that cover them: the document's `save()`
    /// when `hashes` are all of it (a peer that lacks the document), otherwise just those
    /// changes deflated together. [`Self::ingest_compact`] takes either.
    pub fn compact_for(
        &self,
        hashes: &[ChangeHash],
    ) -> Result<(CompactChanges, Proofs), Rejection> {
        if !hashes.is_empty() && hashes.len() == self.doc.get_changes_meta(&[]).len() {
            // The snapshot this replica was loaded from is this very document while its heads
            // have not moved: sending it spares a `save()` of the whole document.
            let changes = match &self.loaded_from {
                Some((heads, bytes)) if *heads == self.doc.get_heads() => {
                    CompactChanges::Document(bytes.to_vec())
                }
                _ => CompactChanges::of_document(&self.doc),
            };
            return Ok((changes, self.covering_proofs(hashes)));
        }
        let mut changes = Vec::with_capacity(hashes.len());
        for hash in hashes {
            let change = self
                .doc
                .get_change_by_hash(hash)
                .ok_or_else(|| Rejection::Automerge {
                    reason: format!("change {hash} is not in the document"),
                })?;
            changes.push(change);
        }
        Ok((
            CompactChanges::of_changes(&changes),
            self.covering_proofs(hashes),
        ))
    }

    /// The fewest proofs that cover `hashes`: each author's proof over their latest change among them.
    pub fn covering_proofs(&self, hashes: &[ChangeHash]) -> Vec<(ChangeHash, ChangeProof)> {
        let mut latest: HashMap<ActorId, (u64, ChangeHash)> = HashMap::new();
        for hash in hashes {
            if let Some(meta) = self.doc.get_change_meta_by_hash(hash) {
                let entry = latest.entry(meta.actor.into_owned()).or_insert((0, *hash));
                if meta.seq >= entry.0 {
                    *entry = (meta.seq, *hash);
                }
            }
        }
        let mut proofs: Vec<_> = latest
            .into_values()
            .filter_map(|(_, hash)| {
                self.records
                    .get(&hash)
                    .and_then(|r| r.proof.clone())
                    .map(|p| (hash, p))
            })
            .collect();
        proofs.sort_by_key(|(hash, _)| hash.0);
        proofs
    }

    /// One signed envelope per change in `hashes` that has its own proof.
    pub fn envelopes_for(&self, hashes: &[ChangeHash]) -> Vec<ChangeEnvelope> {
        hashes
            .iter()
            .filter_map(|hash| {
                let proof = self.records.get(hash)?.proof.as_ref()?;
                let change = self.doc.get_change_by_hash(hash)?;
                Some(ChangeEnvelope::from_proof(
                    self.commons(),
                    proof,
                    change.raw_bytes().to_vec(),
                ))
            })
            .collect()
    }

    /// Takes one signed envelope: verify, then apply (with anything it unblocks) or hold.
    pub fn ingest_envelope(
        &mut self,
        envelope: &ChangeEnvelope,
    ) -> Result<IngestOutcome, Rejection> {
        if envelope.commons != self.commons() {
            return Err(Rejection::WrongCommons {
                expected: self.commons(),
                got: envelope.commons,
            });
        }
        self.check_lineage(&envelope.doc)?;
        let verified = envelope.verify()?;
        let hash = verified.change.hash();
        if self.records.contains_key(&hash)
            || self.pending.contains_key(&hash)
            || self.excluded.contains_key(&hash)
        {
            return Ok(IngestOutcome::Duplicate);
        }
        // Verified first: an envelope that only claims a refused author is the sender's fault.
        if self.refused_authors.contains(&verified.author) {
            return Err(Rejection::AuthorRefused {
                author: verified.author,
                changes: 1,
            });
        }
        if let Some(reason) = self.exclusion_for(&verified.change, hash) {
            let record = ChangeRecord {
                author: verified.author,
                proof: Some(verified.proof),
            };
            self.exclude(&verified.change, record, reason);
            self.sweep_pending();
            return Ok(IngestOutcome::Excluded);
        }
        if let Some(on) = verified
            .change
            .deps()
            .iter()
            .find(|d| self.refused.contains(d))
        {
            let refused = Refused {
                kind: HELD.into(),
                reason: format!("it builds on change {on}, which this commons refused"),
            };
            self.refuse(hash, refused.clone());
            return Err(Rejection::NotAdmitted {
                hash: hash.to_string(),
                refused,
            });
        }
        if self.kind() != DocKind::Charter {
            // Content admission depends only on the author and the document, so it is decided
            // now, before the change is held or applied (charter changes wait for their past).
            if let Err(refused) = self.admit_one(&verified.change, verified.author) {
                self.refuse(hash, refused.clone());
                return Err(Rejection::NotAdmitted {
                    hash: hash.to_string(),
                    refused,
                });
            }
        }
        self.evict_rivals(&verified.change);
        let missing_deps = verified
            .change
            .deps()
            .iter()
            .any(|dep| !self.records.contains_key(dep));
        if missing_deps {
            let actor = verified.change.actor_id();
            let by_author = self
                .pending
                .values()
                .filter(|p| p.change.actor_id() == actor)
                .count();
            if self.pending.len() >= MAX_PENDING_CHANGES || by_author >= MAX_PENDING_PER_AUTHOR {
                return Err(Rejection::TooManyPending);
            }
            self.pending.insert(
                hash,
                PendingChange {
                    change: verified.change,
                    proof: verified.proof,
                },
            );
            return Ok(IngestOutcome::Pending);
        }
        let mut proofs = HashMap::new();
        proofs.insert(hash, verified.proof);
        // Its signature was checked over these very bytes just above: not again.
        let mut accepted = self.ingest_set_verified(vec![verified.change], proofs, Some(hash))?;
        if !self.records.contains_key(&hash) {
            // Refused by the charter gate (or held): said as such, like a refused content change.
            if let Some(refused) = self.newly_refused.iter().find(|r| r.hash == hash) {
                return Err(Rejection::NotAdmitted {
                    hash: hash.to_string(),
                    refused: refused.refused.clone(),
                });
            }
        }
        accepted.extend(self.drain_pending());
        Ok(IngestOutcome::Applied(accepted))
    }

    /// Takes changes in compact form with the proofs that cover them; all or nothing.
    pub fn ingest_compact(
        &mut self,
        compact: &CompactChanges,
        proofs: Vec<(ChangeHash, ChangeProof)>,
    ) -> Result<Vec<Accepted>, Rejection> {
        if proofs.len() > MAX_PAYLOAD_PROOFS {
            return Err(Rejection::TooManyProofs {
                count: proofs.len(),
            });
        }
        let (changes, loaded) =
            compact
                .decode_keeping_document()
                .map_err(|e| Rejection::BadChanges {
                    reason: e.to_string(),
                })?;
        if changes.len() > MAX_PAYLOAD_CHANGES {
            return Err(Rejection::TooManyChanges {
                count: changes.len(),
            });
        }
        // A whole document for a replica that holds nothing yet: once every change of it
        // passes the same checks as any other set, the document automerge loaded from the
        // bytes becomes this replica's, and the bytes its snapshot; re-applying every change
        // into an empty document and saving it again cost about five loads.
        let whole = match (loaded, compact) {
            (Some(doc), CompactChanges::Document(bytes)) => Some(Whole { doc, bytes }),
            _ => None,
        };
        let mut accepted =
            self.ingest_set_inner(changes, proofs.into_iter().collect(), None, whole)?;
        accepted.extend(self.drain_pending());
        Ok(accepted)
    }

    /// The `save()` bytes this replica's document arrived as, when it is still exactly the
    /// document loaded from them (no change taken in since): the snapshot to store, instead
    /// of saving the document again. Handed out once.
    pub fn take_received_snapshot(&mut self) -> Option<Vec<u8>> {
        let (heads, bytes) = self.received_snapshot.take()?;
        (heads == self.doc.get_heads()).then_some(bytes)
    }

    /// Makes a local edit as `key`, signs the resulting change, and returns it for storing and sending.
    ///
    /// Returns `None` for the envelope when the edit changed nothing.
    pub fn edit<O, E, F>(
        &mut self,
        key: &DeviceKey,
        now_unix: i64,
        edit: F,
    ) -> Result<(O, Option<LocalChange>), EditFailure<E>>
    where
        E: std::error::Error + 'static,
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<O, E>,
    {
        self.edit_with_message(key, now_unix, None, edit)
    }

    /// [`DocReplica::edit`] with an automerge change message, signed with the change (an
    /// import's provenance record, see [`crate::interop::provenance`]).
    pub fn edit_with_message<O, E, F>(
        &mut self,
        key: &DeviceKey,
        now_unix: i64,
        message: Option<String>,
        edit: F,
    ) -> Result<(O, Option<LocalChange>), EditFailure<E>>
    where
        E: std::error::Error + 'static,
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<O, E>,
    {
        let author = key.author();
        if self.kind() == DocKind::Profile && author != self.genesis.body.creator {
            return Err(EditFailure::Invalid(Rejection::NotProfileOwner {
                owner: self.genesis.body.creator,
                author,
            }));
        }
        let before = self.doc.get_heads();
        self.doc
            .set_actor(actor_for_install(&author, &self.id, &key.install()));
        let outcome = self
            .doc
            .transact_with(
                |_| {
                    let options = CommitOptions::default().with_time(now_unix);
                    match message {
                        Some(message) => options.with_message(message),
                        None => options,
                    }
                },
                edit,
            )
            .map_err(|failure| EditFailure::Refused(failure.error))?;
        let Some(hash) = outcome.hash else {
            return Ok((outcome.result, None));
        };
        if let Err(error) = schema::validate_document(&self.doc, self.kind()) {
            self.restore(&before);
            return Err(EditFailure::Invalid(Rejection::Schema {
                kind: self.kind(),
                error,
            }));
        }
        let Some(change) = self.doc.get_change_by_hash(&hash) else {
            self.restore(&before);
            return Err(EditFailure::Invalid(Rejection::Automerge {
                reason: "the new change vanished from the document".into(),
            }));
        };
        let authors = HashMap::from([(hash, author)]);
        if let Err(rejection) = self.check_history(std::slice::from_ref(&change), &authors) {
            self.restore(&before);
            return Err(EditFailure::Invalid(rejection));
        }
        let bytes = change.raw_bytes().to_vec();
        let envelope = ChangeEnvelope::sign(key, self.commons(), self.id, bytes.clone());
        let record = ChangeRecord {
            author,
            proof: Some(envelope.proof()),
        };
        self.records.insert(hash, record.clone());
        self.by_actor_seq
            .insert((change.actor_id().clone(), change.seq()), hash);
        Ok((
            outcome.result,
            Some((
                envelope,
                Accepted {
                    hash,
                    bytes,
                    record,
                },
            )),
        ))
    }

    /// Writes one charter operation (its automerge message, see [`crate::charter`]) as an
    /// empty change on the current heads, signed by `key`, after the charter gate: an
    /// operation its author has no authority for in the charter as it stands is refused and
    /// nothing is written.
    pub fn charter_change(
        &mut self,
        key: &DeviceKey,
        now_unix: i64,
        message: String,
    ) -> Result<LocalChange, Rejection> {
        if self.kind() != DocKind::Charter {
            return Err(Rejection::WrongDocument {
                expected: self.id,
                got: self.id,
            });
        }
        let author = key.author();
        let before = self.doc.get_heads();
        self.doc
            .set_actor(actor_for_install(&author, &self.id, &key.install()));
        let hash = self.doc.empty_commit(
            CommitOptions::default()
                .with_message(message)
                .with_time(now_unix),
        );
        let Some(change) = self.doc.get_change_by_hash(&hash) else {
            self.restore(&before);
            return Err(Rejection::Automerge {
                reason: "the new change vanished from the document".into(),
            });
        };
        let authors = HashMap::from([(hash, author)]);
        let refused = crate::charter_gate::gate_set(self, std::slice::from_ref(&change), &authors);
        if let Some(refused) = refused.get(&hash) {
            self.restore(&before);
            return Err(Rejection::NotAdmitted {
                hash: hash.to_string(),
                refused: refused.clone(),
            });
        }
        let bytes = change.raw_bytes().to_vec();
        let envelope = ChangeEnvelope::sign(key, self.commons(), self.id, bytes.clone());
        let record = ChangeRecord {
            author,
            proof: Some(envelope.proof()),
        };
        self.records.insert(hash, record.clone());
        self.by_actor_seq
            .insert((change.actor_id().clone(), change.seq()), hash);
        Ok((
            envelope,
            Accepted {
                hash,
                bytes,
                record,
            },
        ))
    }

    /// Adopts the parent's history up to `heads` as the start of a fork.
    pub fn adopt_parent_history(
        &mut self,
        parent: &DocReplica,
        heads: &[ChangeHash],
    ) -> Result<Vec<Accepted>, Rejection> {
        let forked = parent
            .doc
            .fork_at(heads)
            .map_err(|e| Rejection::Automerge {
                reason: e.to_string(),
            })?;
        let changes = forked.get_changes(&[]);
        let proofs = changes
            .iter()
            .filter_map(|c| {
                parent
                    .records
                    .get(&c.hash())
                    .and_then(|r| r.proof.clone())
                    .map(|p| (c.hash(), p))
            })
            .collect();
        self.ingest_set(changes, proofs)
    }

    /// Applies a set of changes closed under dependencies, after checking every proof,
    /// coverage, actor binding, equivocation and the schema. All or nothing.
    fn ingest_set(
        &mut self,
        changes: Vec<Change>,
        proofs: HashMap<ChangeHash, ChangeProof>,
    ) -> Result<Vec<Accepted>, Rejection> {
        self.ingest_set_verified(changes, proofs, None)
    }

    /// [`Self::ingest_set`], where the proof of `verified` (if any) was already checked over
    /// the same change bytes by the caller in this call (an envelope's `verify`), so its
    /// signature is not checked twice. Nothing is remembered between calls.
    fn ingest_set_verified(
        &mut self,
        changes: Vec<Change>,
        proofs: HashMap<ChangeHash, ChangeProof>,
        verified: Option<ChangeHash>,
    ) -> Result<Vec<Accepted>, Rejection> {
        self.ingest_set_inner(changes, proofs, verified, None)
    }

    /// [`Self::ingest_set_verified`]; `whole` is the document `changes` were all read from
    /// (a whole document that arrived), taken as this replica's document instead of applying
    /// `changes` when the replica held nothing and every one of them passed.
    fn ingest_set_inner(
        &mut self,
        changes: Vec<Change>,
        proofs: HashMap<ChangeHash, ChangeProof>,
        verified: Option<ChangeHash>,
        whole: Option<Whole<'_>>,
    ) -> Result<Vec<Accepted>, Rejection> {
        let arrived = changes.len();
        let fresh: Vec<Change> = changes
            .into_iter()
            .filter(|c| {
                !self.records.contains_key(&c.hash()) && !self.excluded.contains_key(&c.hash())
            })
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let by_hash: HashMap<ChangeHash, &Change> = fresh.iter().map(|c| (c.hash(), c)).collect();
        let missing = fresh
            .iter()
            .filter(|c| {
                c.deps().iter().any(|d| {
                    !by_hash.contains_key(d)
                        && !self.records.contains_key(d)
                        && !self.excluded.contains_key(d)
                })
            })
            .count();
        if missing > 0 {
            return Err(Rejection::MissingDependencies { count: missing });
        }
        let authors = self.cover(&fresh, &by_hash, &proofs, verified)?;
        let (refused, refused_author) = self.refused_in(&fresh, &authors, &proofs);
        if let Some(author) = refused_author {
            if refused.len() == fresh.len() {
                return Err(Rejection::AuthorRefused {
                    author,
                    changes: refused.len(),
                });
            }
        }
        let fresh: Vec<Change> = if refused.is_empty() {
            fresh
        } else {
            fresh
                .into_iter()
                .filter(|c| !refused.contains(&c.hash()))
                .collect()
        };
        let fresh = self.admit_set(fresh, &authors, &proofs);
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        for change in &fresh {
            if change.raw_bytes().len() > MAX_CHANGE_BYTES {
                return Err(EnvelopeError::TooLarge {
                    len: change.raw_bytes().len(),
                }
                .into());
            }
            let author = authors[&change.hash()];
            if self.kind() == DocKind::Profile && author != self.genesis.body.creator {
                return Err(Rejection::NotProfileOwner {
                    owner: self.genesis.body.creator,
                    author,
                });
            }
        }
        let out = self.settle_set(&fresh);
        for change in &fresh {
            if let Some(reason) = out.get(&change.hash()) {
                let record = ChangeRecord {
                    author: authors[&change.hash()],
                    proof: proofs.get(&change.hash()).cloned(),
                };
                self.exclude(change, record, reason.clone());
            }
        }
        self.sweep_pending();
        let fresh: Vec<Change> = fresh
            .into_iter()
            .filter(|c| !out.contains_key(&c.hash()))
            .collect();
        if fresh.is_empty() {
            self.note_refused_authors(refused_author, refused.len());
            return Ok(Vec::new());
        }
        let before = self.doc.get_heads();
        // The loaded document holds exactly `fresh` when nothing was held here and nothing of
        // what arrived was left out (refused, held or excluded above).
        let whole = whole.filter(|_| {
            before.is_empty()
                && self.records.is_empty()
                && self.pending.is_empty()
                && fresh.len() == arrived
        });
        let received = match whole {
            Some(Whole { doc, bytes }) => {
                self.doc = doc;
                Some(bytes)
            }
            None => {
                APPLIED.with(|n| n.set(n.get() + fresh.len() as u64));
                let doc = &mut self.doc;
                let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    doc.apply_changes(fresh.iter().cloned())
                        .map_err(|e| e.to_string())
                }))
                .unwrap_or_else(|_| Err("applying it made automerge panic".into()));
                if let Err(reason) = applied {
                    self.restore(&before);
                    return Err(Rejection::Automerge { reason });
                }
                None
            }
        };
        // A document that held something was valid before: only the fields these changes
        // wrote in are checked again (the whole document when that cannot be told).
        let validated = if before.is_empty() {
            schema::validate_document(&self.doc, self.kind())
        } else {
            schema::validate_changed(&self.doc, self.kind(), &fresh)
        };
        if let Err(error) = validated {
            self.restore(&before);
            return Err(Rejection::Schema {
                kind: self.kind(),
                error,
            });
        }
        if let Err(rejection) = self.check_history(&fresh, &authors) {
            self.restore(&before);
            return Err(rejection);
        }
        if let Some(bytes) = received {
            self.received_snapshot = Some((self.doc.get_heads(), bytes.to_vec()));
        }
        let mut accepted = Vec::with_capacity(fresh.len());
        for change in fresh {
            let hash = change.hash();
            let record = ChangeRecord {
                author: authors[&hash],
                proof: proofs.get(&hash).cloned(),
            };
            self.records.insert(hash, record.clone());
            self.by_actor_seq
                .insert((change.actor_id().clone(), change.seq()), hash);
            self.pending.remove(&hash);
            accepted.push(Accepted {
                hash,
                bytes: change.raw_bytes().to_vec(),
                record,
            });
        }
        // Counted once the rest is in: a set refused for another reason is refused whole.
        self.note_refused_authors(refused_author, refused.len());
        Ok(accepted)
    }

    /// Works out the author of every change in `fresh` from the proofs: a proof over change
    /// `h` by actor `a` covers every change by `a` that `h` hash-links to, which (once
    /// [`coverage::check_chains`] has held) is every change of `a` with a sequence number
    /// up to `h`'s. Linear in changes, dependencies and proofs; see [`crate::coverage`].
    fn cover(
        &self,
        fresh: &[Change],
        by_hash: &HashMap<ChangeHash, &Change>,
        proofs: &HashMap<ChangeHash, ChangeProof>,
        verified: Option<ChangeHash>,
    ) -> Result<HashMap<ChangeHash, AuthorKey>, Rejection> {
        let mut signed = Vec::with_capacity(proofs.len());
        // Each author's key decompressed once for the whole set (a bundle holds many
        // signatures of few authors).
        let mut keys: HashMap<AuthorKey, crate::identity::PreparedKey> = HashMap::new();
        for (hash, proof) in proofs {
            let Some(change) = by_hash.get(hash) else {
                continue;
            };
            self.check_lineage(&proof.doc)?;
            // The change is parsed already: only the signature over its bytes is checked
            // here (parsing it again was a second decode of every signed change).
            if verified != Some(*hash) {
                if change.raw_bytes().len() > MAX_CHANGE_BYTES {
                    return Err(EnvelopeError::TooLarge {
                        len: change.raw_bytes().len(),
                    }
                    .into());
                }
                let key = match keys.get(&proof.author) {
                    Some(key) => *key,
                    None => {
                        let key = proof
                            .author
                            .prepare()
                            .map_err(|e| Rejection::Envelope(e.into()))?;
                        keys.insert(proof.author, key);
                        key
                    }
                };
                crate::envelope::verify_signature_with(
                    &self.commons(),
                    proof,
                    change.raw_bytes(),
                    &key,
                )?;
            }
            check_actor(change, &proof.author, &proof.doc)?;
            signed.push((*hash, proof.author));
        }
        let (authors, _) = coverage::reach(by_hash, &signed);
        if let Some(change) = fresh.iter().find(|c| !authors.contains_key(&c.hash())) {
            return Err(Rejection::Uncovered {
                hash: change.hash().to_string(),
            });
        }
        Ok(authors)
    }

    /// The history rules of [`crate::history_rules`] and of forks, on `fresh` changes
    /// already applied to the document (the caller rolls back on error).
    ///
    /// A fork's changes signed for an ancestor document must all be the declared parent
    /// heads or their ancestors (no graft of the parent's later changes), and once the
    /// fork holds anything, every declared head must be there and be such a change.
    fn check_history(
        &self,
        fresh: &[Change],
        authors: &HashMap<ChangeHash, AuthorKey>,
    ) -> Result<(), Rejection> {
        let fork_heads: Option<Vec<ChangeHash>> = self
            .genesis
            .body
            .fork
            .as_ref()
            .map(|fork| fork.heads.iter().map(|h| ChangeHash(*h)).collect());
        if self.kind() == DocKind::Design {
            crate::history_rules::check_releases(&self.doc, fresh, fork_heads.as_deref()).map_err(
                |broken| match broken {
                    crate::history_rules::RuleBreak::Release { change, version } => {
                        Rejection::ReleaseRewritten {
                            hash: change.to_string(),
                            version,
                        }
                    }
                },
            )?;
        }
        let Some(heads) = fork_heads else {
            return Ok(());
        };
        let inherited = |hash: &ChangeHash, actor: &ActorId| {
            authors
                .get(hash)
                .or_else(|| self.records.get(hash).map(|r| &r.author))
                .is_some_and(|author| !actor_is_bound(actor, author, &self.id))
        };
        // Inherited changes may arrive one by one (envelopes in causal order), so the declared
        // heads are required only once the fork writes its own changes: its first own change
        // depends on them, so they are there by then unless the fork's history is not the
        // parent's it names.
        let own_change = fresh.iter().any(|c| {
            authors
                .get(&c.hash())
                .is_some_and(|a| actor_is_bound(c.actor_id(), a, &self.id))
        });
        let mut all_heads_held = true;
        for head in &heads {
            let meta = self.doc.get_change_meta_by_hash(head);
            if !meta.is_some_and(|m| inherited(head, &m.actor)) {
                if own_change {
                    return Err(Rejection::ForkHeadMissing {
                        head: head.to_string(),
                    });
                }
                all_heads_held = false;
            }
        }
        if !all_heads_held {
            // Which inherited changes lie beyond the heads can only be told once they are all here.
            return Ok(());
        }
        let grafted: HashSet<ChangeHash> = fresh
            .iter()
            .filter(|c| inherited(&c.hash(), c.actor_id()))
            .map(Change::hash)
            .collect();
        if grafted.is_empty() {
            return Ok(());
        }
        // Changes that are not the heads' ancestors, in one pass over the document.
        match self
            .doc
            .get_changes_meta(&heads)
            .into_iter()
            .find(|meta| grafted.contains(&meta.hash))
        {
            Some(meta) => Err(Rejection::ForkGraft {
                hash: meta.hash.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Applies held-back changes whose dependencies are now present, until none are left to apply.
    fn drain_pending(&mut self) -> Vec<Accepted> {
        let mut accepted = Vec::new();
        loop {
            let ready: Vec<ChangeHash> = self
                .pending
                .iter()
                .filter(|(_, p)| p.change.deps().iter().all(|d| self.records.contains_key(d)))
                .map(|(h, _)| *h)
                .collect();
            if ready.is_empty() {
                self.sweep_pending();
                return accepted;
            }
            for hash in ready {
                let Some(pending) = self.pending.remove(&hash) else {
                    continue;
                };
                if let Some(reason) = self.exclusion_for(&pending.change, hash) {
                    let record = ChangeRecord {
                        author: pending.proof.author,
                        proof: Some(pending.proof),
                    };
                    self.exclude(&pending.change, record, reason);
                    continue;
                }
                let mut proofs = HashMap::new();
                proofs.insert(hash, pending.proof);
                // A held change that turns out invalid once its context exists is dropped, as it would have been on arrival.
                // Its signature was checked when it arrived (held changes come only from
                // `ingest_envelope`, after `verify`).
                if let Ok(more) = self.ingest_set_verified(vec![pending.change], proofs, Some(hash))
                {
                    accepted.extend(more);
                }
            }
        }
    }

    /// Records a refused (or held) change for the owner.
    fn refuse(&mut self, hash: ChangeHash, refused: Refused) {
        self.refused.insert(hash);
        self.newly_refused.push(RefusedChange { hash, refused });
    }

    /// Asks the admission policy about one content change by `author`.
    fn admit_one(&self, change: &Change, author: AuthorKey) -> Result<(), Refused> {
        let Some(admission) = &self.admission else {
            return Ok(());
        };
        let creator = self.genesis.body.creator;
        let input = AdmitInput {
            doc: self.id,
            kind: self.kind(),
            doc_creator: creator,
            device: author,
            actor: change.actor_id().to_bytes().to_vec(),
            seq: change.seq(),
            creates_doc: change.seq() == 1
                && author == creator
                && actor_is_bound(change.actor_id(), &author, &self.id),
        };
        admission.admit(&input)
    }

    /// Keeps out of a verified set what the commons refuses: content changes its admission
    /// policy refuses, charter changes that fail the charter gate, and every change that
    /// builds on one (held) or is no longer covered by a signature once they are gone (held:
    /// it comes back covered from a node that holds it without them). What stays is applied.
    fn admit_set(
        &mut self,
        fresh: Vec<Change>,
        authors: &HashMap<ChangeHash, AuthorKey>,
        proofs: &HashMap<ChangeHash, ChangeProof>,
    ) -> Vec<Change> {
        let mut out: HashMap<ChangeHash, Refused> = HashMap::new();
        if self.kind() == DocKind::Charter {
            out = crate::charter_gate::gate_set(self, &fresh, authors);
        } else if self.admission.is_some() {
            for change in &fresh {
                if let Err(refused) = self.admit_one(change, authors[&change.hash()]) {
                    out.insert(change.hash(), refused);
                }
            }
        }
        for change in &fresh {
            if let Some(on) = change.deps().iter().find(|d| self.refused.contains(d)) {
                out.entry(change.hash()).or_insert_with(|| Refused {
                    kind: HELD.into(),
                    reason: format!("it builds on change {on}, which this commons refused"),
                });
            }
        }
        if out.is_empty() {
            return fresh;
        }
        // Whatever builds on a refused change is held (the set need not be in causal order).
        loop {
            let mut grew = false;
            for change in &fresh {
                if out.contains_key(&change.hash()) {
                    continue;
                }
                if let Some(on) = change.deps().iter().find(|d| out.contains_key(d)) {
                    let reason = format!("it builds on change {on}, which this commons refused");
                    out.insert(
                        change.hash(),
                        Refused {
                            kind: HELD.into(),
                            reason,
                        },
                    );
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        // What stays must still be covered by a signature among what stays.
        for hash in uncovered_without(&fresh, proofs, |h| out.contains_key(h)) {
            out.insert(
                hash,
                Refused {
                    kind: HELD.into(),
                    reason: "its signature came with a change this commons refused".into(),
                },
            );
        }
        let mut kept = Vec::with_capacity(fresh.len());
        for change in fresh {
            match out.remove(&change.hash()) {
                Some(refused) => self.refuse(change.hash(), refused),
                None => kept.push(change),
            }
        }
        kept
    }

    fn check_lineage(&self, doc: &DocId) -> Result<(), Rejection> {
        if self.lineage.contains(doc) {
            Ok(())
        } else {
            Err(Rejection::WrongDocument {
                expected: self.id,
                got: *doc,
            })
        }
    }

    /// Why `change` (hash `hash`) must stay out, if it must: it builds on an excluded change,
    /// or a twin with a lower hash is known.
    fn exclusion_for(&self, change: &Change, hash: ChangeHash) -> Option<ExclusionReason> {
        if let Some(dep) = change.deps().iter().find(|d| self.excluded.contains_key(d)) {
            return Some(ExclusionReason::BuildsOn { excluded: dep.0 });
        }
        let winner = self.slot_winner(change.actor_id(), change.seq(), hash);
        (winner != hash).then_some(ExclusionReason::Twin { winner: winner.0 })
    }

    /// The lowest hash known for an actor's sequence number, counting `candidate`: the twin
    /// that wins it. Every known change counts (applied, pending or excluded), so the winner
    /// depends only on which changes a node knows, never on the order they came in.
    fn slot_winner(&self, actor: &ActorId, seq: u64, candidate: ChangeHash) -> ChangeHash {
        let slot = (actor.clone(), seq);
        let applied = self.by_actor_seq.get(&slot).copied();
        let pending = self
            .pending
            .iter()
            .filter(|(_, p)| p.change.actor_id() == actor && p.change.seq() == seq)
            .map(|(h, _)| *h);
        let excluded = self
            .excluded
            .iter()
            .filter(|(_, e)| e.slot().as_ref() == Some(&slot))
            .map(|(h, _)| *h);
        applied
            .into_iter()
            .chain(pending)
            .chain(excluded)
            .fold(candidate, |best, h| if h.0 < best.0 { h } else { best })
    }

    /// Decides which changes of a fresh set stay out: losing twins (against each other and
    /// against everything known) and whatever builds on an excluded change. Applied or
    /// pending changes that lose to a fresh twin are evicted on the way.
    fn settle_set(&mut self, fresh: &[Change]) -> HashMap<ChangeHash, ExclusionReason> {
        let mut lowest: HashMap<(ActorId, u64), ChangeHash> = HashMap::new();
        for change in fresh {
            let slot = (change.actor_id().clone(), change.seq());
            let known = self.slot_winner(&slot.0, slot.1, change.hash());
            let entry = lowest.entry(slot).or_insert(known);
            if known.0 < entry.0 {
                *entry = known;
            }
        }
        let mut out: HashMap<ChangeHash, ExclusionReason> = HashMap::new();
        for change in fresh {
            let winner = lowest[&(change.actor_id().clone(), change.seq())];
            if winner != change.hash() {
                out.insert(change.hash(), ExclusionReason::Twin { winner: winner.0 });
            } else {
                self.evict_rivals(change);
            }
        }
        // Whatever depends on an excluded change is out too; the set need not be in causal order.
        loop {
            let mut grew = false;
            for change in fresh {
                if out.contains_key(&change.hash()) {
                    continue;
                }
                let on = change
                    .deps()
                    .iter()
                    .find(|d| out.contains_key(d) || self.excluded.contains_key(d));
                if let Some(dep) = on {
                    out.insert(change.hash(), ExclusionReason::BuildsOn { excluded: dep.0 });
                    grew = true;
                }
            }
            if !grew {
                return out;
            }
        }
    }

    /// `winner` wins its slot: an applied twin leaves the document (with everything that
    /// builds on it) and pending twins are dropped, all kept as evidence.
    fn evict_rivals(&mut self, winner: &Change) {
        let slot = (winner.actor_id().clone(), winner.seq());
        let reason = ExclusionReason::Twin {
            winner: winner.hash().0,
        };
        let pending_twins: Vec<ChangeHash> = self
            .pending
            .iter()
            .filter(|(h, p)| {
                **h != winner.hash() && p.change.actor_id() == &slot.0 && p.change.seq() == slot.1
            })
            .map(|(h, _)| *h)
            .collect();
        for hash in pending_twins {
            if let Some(p) = self.pending.remove(&hash) {
                let record = ChangeRecord {
                    author: p.proof.author,
                    proof: Some(p.proof),
                };
                self.exclude(&p.change, record, reason.clone());
            }
        }
        if let Some(applied) = self.by_actor_seq.get(&slot).copied() {
            if applied != winner.hash() {
                self.evict_applied(applied, reason);
            }
        }
        self.sweep_pending();
    }

    /// Takes an applied change and everything built on it out of the document, rebuilding the
    /// document from the changes that stay.
    fn evict_applied(&mut self, loser: ChangeHash, reason: ExclusionReason) {
        let all: Vec<Change> = self.doc.get_changes(&[]);
        let mut out: HashSet<ChangeHash> = HashSet::from([loser]);
        // get_changes lists changes in causal order, so one pass finds every descendant.
        for change in &all {
            if change.deps().iter().any(|d| out.contains(d)) {
                out.insert(change.hash());
            }
        }
        let (gone, stay): (Vec<Change>, Vec<Change>) =
            all.into_iter().partition(|c| out.contains(&c.hash()));
        let mut doc = Automerge::new();
        let rebuilt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            doc.apply_changes(stay).map_err(|e| e.to_string())
        }));
        match rebuilt {
            Ok(Ok(())) => self.doc = doc,
            _ => self.poisoned = true,
        }
        for change in gone {
            let hash = change.hash();
            let Some(record) = self.records.remove(&hash) else {
                continue;
            };
            self.by_actor_seq
                .remove(&(change.actor_id().clone(), change.seq()));
            let why = if hash == loser {
                reason.clone()
            } else {
                ExclusionReason::BuildsOn { excluded: loser.0 }
            };
            self.exclude(&change, record, why);
        }
    }

    /// Drops held-back changes that depend on an excluded change, keeping them as evidence.
    fn sweep_pending(&mut self) {
        loop {
            let doomed: Vec<(ChangeHash, ChangeHash)> = self
                .pending
                .iter()
                .filter_map(|(h, p)| {
                    p.change
                        .deps()
                        .iter()
                        .find(|d| self.excluded.contains_key(d))
                        .map(|d| (*h, *d))
                })
                .collect();
            if doomed.is_empty() {
                return;
            }
            for (hash, on) in doomed {
                if let Some(p) = self.pending.remove(&hash) {
                    let record = ChangeRecord {
                        author: p.proof.author,
                        proof: Some(p.proof),
                    };
                    self.exclude(
                        &p.change,
                        record,
                        ExclusionReason::BuildsOn { excluded: on.0 },
                    );
                }
            }
        }
    }

    /// Keeps a validly signed change out of the document, as evidence to persist and show.
    fn exclude(&mut self, change: &Change, record: ChangeRecord, reason: ExclusionReason) {
        let excluded = Excluded {
            hash: change.hash(),
            bytes: change.raw_bytes().to_vec(),
            record,
            reason,
        };
        self.newly_excluded.push(excluded.clone());
        self.excluded.insert(change.hash(), excluded);
    }

    /// Exclusions made since the last call, for the owner to persist (and to remove from its
    /// stored changes the ones that had been applied).
    pub fn take_excluded(&mut self) -> Vec<Excluded> {
        std::mem::take(&mut self.newly_excluded)
    }

    /// Whether exclusions were made that [`Self::take_excluded`] has not handed out yet.
    pub fn has_unsaved_exclusions(&self) -> bool {
        !self.newly_excluded.is_empty()
    }

    /// Every change kept out of the document, with its reason: the evidence of equivocations.
    pub fn excluded(&self) -> impl Iterator<Item = &Excluded> {
        self.excluded.values()
    }

    /// Restores evidence read back from storage (not reported again by [`Self::take_excluded`]).
    pub fn restore_excluded(&mut self, excluded: impl IntoIterator<Item = Excluded>) {
        for e in excluded {
            self.excluded.insert(e.hash, e);
        }
    }

    fn index_seqs(&mut self) {
        self.by_actor_seq = self
            .doc
            .get_changes_meta(&[])
            .into_iter()
            .map(|m| ((m.actor.into_owned(), m.seq), m.hash))
            .collect();
    }

    /// Rolls the document back to `heads` after a refused change.
    ///
    /// If automerge itself fails while rolling back (its state may be broken after a
    /// panic), the replica is marked poisoned and its owner must reload it from storage.
    fn restore(&mut self, heads: &[ChangeHash]) {
        let doc = &self.doc;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.fork_at(heads))) {
            Ok(Ok(doc)) => self.doc = doc,
            _ => self.poisoned = true,
        }
    }

    /// Whether the in-memory state can no longer be trusted and must be reloaded from storage.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

thread_local! {
    /// Changes handed to automerge's `apply_changes` on this thread (see [`changes_applied`]).
    static APPLIED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many changes replicas on the calling thread have applied one by one into their
/// document so far: what tests count instead of timing an ingest (a whole document that
/// arrives for an empty replica is taken as loaded, applying none).
pub fn changes_applied() -> u64 {
    APPLIED.with(std::cell::Cell::get)
}

/// A whole document that arrived: automerge's document loaded from `bytes` (its `save()`).
struct Whole<'a> {
    doc: Automerge,
    bytes: &'a [u8],
}

fn parse_change(bytes: Vec<u8>) -> Result<Change, Rejection> {
    decode_change(&bytes).map_err(|e| {
        EnvelopeError::BadChange {
            reason: e.to_string(),
        }
        .into()
    })
}

/// The changes of `fresh` that are not `left_out` but no signature among those that stay
/// covers any more (their author's proof came on a change that was left out).
fn uncovered_without(
    fresh: &[Change],
    proofs: &HashMap<ChangeHash, ChangeProof>,
    left_out: impl Fn(&ChangeHash) -> bool,
) -> Vec<ChangeHash> {
    let stay: HashMap<ChangeHash, &Change> = fresh
        .iter()
        .filter(|c| !left_out(&c.hash()))
        .map(|c| (c.hash(), c))
        .collect();
    let signed: Vec<(ChangeHash, AuthorKey)> = proofs
        .iter()
        .filter(|(h, _)| stay.contains_key(h))
        .map(|(h, p)| (*h, p.author))
        .collect();
    let (covered, _) = coverage::reach(&stay, &signed);
    stay.into_keys()
        .filter(|h| !covered.contains_key(h))
        .collect()
}
