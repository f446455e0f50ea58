//! The node's replicas: every document of every commons it holds, over the sled store.
//!
//! This is the one place that turns protocol state changes into store writes:
//! each mutation goes through [`Replicas::persist`], which writes the accepted
//! changes with the document's refreshed caches in one sled transaction, and
//! [`Replicas::commit`] makes them durable before a command reports success.

use crate::home::{Home, HomeError, LocalProfile};
use crate::store::{DocSummary, DocWrite, Store, StoreError};
use hedgerow_protocol::automerge::ChangeHash;
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::licence::LicenceError;
use hedgerow_protocol::replica::{Accepted, EditFailure, IngestOutcome, Rejection};
use hedgerow_protocol::schema::{
    self, DocKind, Edit, EditContext, EditError, NewDocument, SchemaError,
};
use hedgerow_protocol::sync::{heads_digest, LiveChange};
use hedgerow_protocol::{
    AuthorKey, ChangeEnvelope, CommonsGenesis, CommonsId, DeviceKey, DocGenesis, DocId, DocReplica,
    Signed,
};
use std::collections::HashMap;

/// Most document replicas kept in memory at once.
pub const MAX_CACHED_REPLICAS: usize = 256;

/// Shortest id prefix accepted on the command line.
pub const MIN_ID_PREFIX: usize = 4;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The home failed.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// No commons matches.
    #[error("no commons matches `{0}`; `hedgerow commons list` shows the ones this node holds")]
    UnknownCommons(String),
    /// No document matches.
    #[error("no {what} matches `{id}`; `hedgerow {what} list` shows the ones this node holds")]
    UnknownDoc {
        /// design, event, note...
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// An id prefix matches several.
    #[error("`{prefix}` matches {count} {what}s; give more characters of the id")]
    Ambiguous {
        /// design, event, note...
        what: &'static str,
        /// The prefix given.
        prefix: String,
        /// How many matched.
        count: usize,
    },
    /// An id prefix is too short.
    #[error(
        "`{0}` is too short to name anything; give at least {MIN_ID_PREFIX} characters of the id"
    )]
    PrefixTooShort(String),
    /// Several commons held and none chosen.
    #[error("this node holds {0} commons; choose one with --commons ID")]
    ChooseCommons(usize),
    /// No commons held.
    #[error("this node holds no commons yet; create one with `hedgerow commons create NAME` or join one")]
    NoCommons,
    /// A document of another kind.
    #[error("{id} is {}, not {}", found.with_article(), expected.with_article())]
    WrongKind {
        /// The id.
        id: DocId,
        /// The kind asked for.
        expected: DocKind,
        /// The kind it is.
        found: DocKind,
    },
    /// The edit was refused.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// A schema problem.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A licence problem.
    #[error(transparent)]
    Licence(#[from] LicenceError),
    /// Incoming data was refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The release does not exist.
    #[error(
        "design {doc} has no release `{version}`; `hedgerow design show {doc}` lists its releases"
    )]
    UnknownRelease {
        /// The design.
        doc: DocId,
        /// The version asked for.
        version: String,
    },
    /// Invalid argument not covered above.
    #[error("{0}")]
    Invalid(String),
}

impl From<EditFailure<EditError>> for NodeError {
    fn from(failure: EditFailure<EditError>) -> Self {
        match failure {
            EditFailure::Refused(e) => NodeError::Edit(e),
            EditFailure::Invalid(r) => NodeError::Rejected(r),
        }
    }
}

/// What an incoming live change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveOutcome {
    /// New changes were applied (count).
    Applied(usize),
    /// Already known.
    Duplicate,
    /// Held until its dependencies arrive.
    Pending,
}

/// The node's document replicas over its store.
pub struct Replicas {
    store: Store,
    pub(crate) key: DeviceKey,
    profile: LocalProfile,
    peer_id: String,
    pub(crate) cache: HashMap<DocId, DocReplica>,
    outbox: Vec<LiveChange>,
}

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Fresh randomness for genesis records.
pub(crate) fn random_nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    // Without randomness two documents made in the same second by one author would collide; the time still differs them in practice.
    let _ = getrandom::fill(&mut nonce);
    nonce
}

impl Replicas {
    /// Opens the store of a home.
    pub fn open(home: &Home) -> Result<Self, NodeError> {
        let store = Store::open(&home.store_path())?;
        Ok(Self {
            store,
            key: DeviceKey::from_secret(home.key().secret_bytes()),
            profile: home.profile()?,
            peer_id: home.network_key()?.peer_id().to_string(),
            cache: HashMap::new(),
            outbox: Vec::new(),
        })
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This device's author key.
    pub fn author(&self) -> AuthorKey {
        self.key.author()
    }

    /// The node's PeerId on the network (from its network key, unrelated to [`Self::author`]).
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// This device's local profile.
    pub fn local_profile(&self) -> &LocalProfile {
        &self.profile
    }

    /// Makes all writes so far durable.
    pub fn commit(&self) -> Result<(), NodeError> {
        Ok(self.store.flush()?)
    }

    /// Takes the changes made locally since the last call, for publishing.
    pub fn take_outbox(&mut self) -> Vec<LiveChange> {
        std::mem::take(&mut self.outbox)
    }

    // ---- commons ----

    /// Creates a commons, with this device's profile in it.
    pub fn create_commons(
        &mut self,
        name: &str,
        description: &str,
    ) -> Result<CommonsId, NodeError> {
        let genesis = CommonsGenesis {
            name: name.trim().to_string(),
            description: description.to_string(),
            creator: self.author(),
            created_at: now_unix(),
            nonce: random_nonce(),
        }
        .sign(&self.key);
        let id = genesis.verify().map_err(Rejection::from)?;
        self.store.put_commons(&genesis)?;
        self.ensure_profile(id)?;
        Ok(id)
    }

    /// Joins a commons the user chose (`commons join`, `bundle import --commons`): replicates it
    /// and writes this device's profile into it. Only an explicit choice may call this, since
    /// the profile (name, location, bio) goes to everyone in the commons.
    pub fn join_commons(
        &mut self,
        genesis: &Signed<CommonsGenesis>,
    ) -> Result<CommonsId, NodeError> {
        let id = self.hold_commons(genesis)?;
        self.ensure_profile(id)?;
        Ok(id)
    }

    /// Replicates a commons without publishing anything in it (`bundle import --all-commons`).
    pub fn hold_commons(
        &mut self,
        genesis: &Signed<CommonsGenesis>,
    ) -> Result<CommonsId, NodeError> {
        let id = genesis.verify().map_err(Rejection::from)?;
        if self.store.commons(&id)?.is_none() {
            self.store.put_commons(genesis)?;
        }
        Ok(id)
    }

    /// Whether this device's profile is in `commons`.
    pub fn has_profile_in(&self, commons: CommonsId) -> Result<bool, NodeError> {
        let id = DocGenesis::profile(commons, self.author()).id();
        Ok(self.store.doc_genesis(&id)?.is_some())
    }

    /// Whether this node replicates `commons`.
    pub fn holds(&self, commons: &CommonsId) -> Result<bool, NodeError> {
        Ok(self.store.commons(commons)?.is_some())
    }

    /// Every commons held.
    pub fn commons_list(&self) -> Result<Vec<Signed<CommonsGenesis>>, NodeError> {
        Ok(self.store.all_commons()?)
    }

    /// Resolves a commons id or unique prefix; with `None`, the only commons held.
    pub fn resolve_commons(&self, given: Option<&str>) -> Result<CommonsId, NodeError> {
        let all = self.store.all_commons()?;
        match given {
            None => match all.len() {
                0 => Err(NodeError::NoCommons),
                1 => Ok(all[0].body.id()),
                n => Err(NodeError::ChooseCommons(n)),
            },
            Some(text) => {
                let text = text.trim();
                if text.len() < MIN_ID_PREFIX {
                    return Err(NodeError::PrefixTooShort(text.to_string()));
                }
                let matches: Vec<CommonsId> = all
                    .iter()
                    .map(|g| g.body.id())
                    .filter(|id| id.to_string().starts_with(text))
                    .collect();
                match matches.len() {
                    0 => Err(NodeError::UnknownCommons(text.to_string())),
                    1 => Ok(matches[0]),
                    count => Err(NodeError::Ambiguous {
                        what: "commons",
                        prefix: text.to_string(),
                        count,
                    }),
                }
            }
        }
    }

    /// Writes this device's profile into `commons` if it is not there yet.
    fn ensure_profile(&mut self, commons: CommonsId) -> Result<(), NodeError> {
        let genesis = DocGenesis::profile(commons, self.author());
        let id = genesis.id();
        if self.store.doc_genesis(&id)?.is_some() {
            return Ok(());
        }
        let new = NewDocument {
            kind: DocKind::Profile,
            title: self.profile.name.clone(),
            note_target: None,
            note_kind: None,
        };
        let mut edits = Vec::new();
        if !self.profile.location.is_empty() {
            edits.push(Edit::Set {
                field: "location".into(),
                value: self.profile.location.clone(),
            });
        }
        if !self.profile.bio.is_empty() {
            edits.push(Edit::Set {
                field: "bio".into(),
                value: self.profile.bio.clone(),
            });
        }
        self.create_with_genesis(genesis.sign(&self.key), &new, &edits)?;
        Ok(())
    }

    // ---- documents ----

    /// Creates a document of `new.kind` in `commons`, applying `edits` in the same first change.
    pub fn create_doc(
        &mut self,
        commons: CommonsId,
        new: &NewDocument,
        edits: &[Edit],
    ) -> Result<DocId, NodeError> {
        let genesis = DocGenesis {
            commons,
            kind: new.kind,
            creator: self.author(),
            created_at: now_unix(),
            nonce: random_nonce(),
            fork: None,
        }
        .sign(&self.key);
        self.create_with_genesis(genesis, new, edits)
    }

    fn create_with_genesis(
        &mut self,
        genesis: Signed<DocGenesis>,
        new: &NewDocument,
        edits: &[Edit],
    ) -> Result<DocId, NodeError> {
        let mut replica = DocReplica::new(genesis.clone())?;
        let id = replica.id();
        let ctx = self.edit_context();
        let kind = new.kind;
        let (_, made) = replica.edit(&self.key, ctx.now_unix, |tx| {
            schema::init_document(tx, new).map_err(EditError::from)?;
            for edit in edits {
                schema::apply_edit(tx, kind, edit, &ctx)?;
            }
            Ok::<(), EditError>(())
        })?;
        self.cache.insert(id, replica);
        if let Some((envelope, accepted)) = made {
            self.persist(&id, &[accepted])?;
            self.outbox.push(LiveChange {
                genesis: Some(genesis),
                envelope,
            });
        }
        Ok(id)
    }

    /// Applies `edits` to a document as one signed change; returns its hash, or `None` if nothing changed.
    pub fn edit_doc(
        &mut self,
        id: &DocId,
        edits: &[Edit],
    ) -> Result<Option<ChangeHash>, NodeError> {
        let ctx = self.edit_context();
        self.replica_mut(id)?;
        let replica = self
            .cache
            .get_mut(id)
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })?;
        let kind = replica.kind();
        let (_, made) = replica.edit(&self.key, ctx.now_unix, |tx| {
            for edit in edits {
                schema::apply_edit(tx, kind, edit, &ctx)?;
            }
            Ok::<(), EditError>(())
        })?;
        let Some((envelope, accepted)) = made else {
            return Ok(None);
        };
        let hash = accepted.hash;
        self.persist(id, &[accepted])?;
        self.outbox.push(LiveChange {
            genesis: None,
            envelope,
        });
        Ok(Some(hash))
    }

    /// The context local edits are made in.
    fn edit_context(&self) -> EditContext {
        EditContext {
            author: self.author().to_string(),
            now_unix: now_unix(),
        }
    }

    /// A document's replica, loaded from the store on first use.
    pub fn replica(&mut self, id: &DocId) -> Result<&DocReplica, NodeError> {
        Ok(&*self.replica_mut(id)?)
    }

    pub(crate) fn replica_mut(&mut self, id: &DocId) -> Result<&mut DocReplica, NodeError> {
        if self.cache.get(id).is_some_and(DocReplica::is_poisoned) {
            // automerge failed mid-way on hostile input: the stored state is intact, reload it.
            self.cache.remove(id);
        }
        if !self.cache.contains_key(id) {
            let replica = self.load(id)?;
            if self.cache.len() >= MAX_CACHED_REPLICAS {
                // Everything cached is persisted, so dropping it costs only a reload; this keeps
                // a hub that serves thousands of designs within a small machine's memory.
                self.cache.clear();
            }
            self.cache.insert(*id, replica);
        }
        self.cache.get_mut(id).ok_or_else(|| NodeError::UnknownDoc {
            what: "document",
            id: id.to_string(),
        })
    }

    /// Loads a replica: from its snapshot when present, else rebuilt from its changes.
    fn load(&self, id: &DocId) -> Result<DocReplica, NodeError> {
        let genesis = self
            .store
            .doc_genesis(id)?
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })?;
        if let Some(snapshot) = self.store.snapshot(id)? {
            let records = self
                .store
                .records(id)?
                .into_iter()
                .map(|(hash, record)| (ChangeHash(hash), record));
            if let Ok(replica) = DocReplica::from_snapshot(genesis.clone(), &snapshot, records) {
                if replica.change_count() == self.store.records(id)?.len() {
                    return Ok(replica);
                }
            }
        }
        self.rebuild(id, genesis)
    }

    /// Rebuilds a replica from its stored changes, re-verifying every signature.
    pub(crate) fn rebuild(
        &self,
        _id: &DocId,
        genesis: Signed<DocGenesis>,
    ) -> Result<DocReplica, NodeError> {
        let changes = self
            .store
            .changes(&genesis.body.id())?
            .into_iter()
            .map(|(_, bytes, record)| (bytes, record.and_then(|r| r.proof)))
            .collect();
        Ok(DocReplica::rebuild(genesis, changes)?)
    }

    /// Writes newly accepted changes of a cached document with its refreshed caches.
    fn persist(&mut self, id: &DocId, accepted: &[Accepted]) -> Result<(), NodeError> {
        let replica = self.cache.get(id).ok_or_else(|| NodeError::UnknownDoc {
            what: "document",
            id: id.to_string(),
        })?;
        let write = DocWrite {
            genesis: replica.genesis(),
            accepted,
            snapshot: replica.doc().save(),
            summary: summarize(replica),
        };
        self.store.write_doc(write)?;
        Ok(())
    }

    /// Resolves a document id or unique prefix, optionally requiring a kind.
    pub fn resolve_doc(&self, given: &str, kind: Option<DocKind>) -> Result<DocId, NodeError> {
        let what = kind.map(|k| k.as_str()).unwrap_or("document");
        let text = given.trim();
        if text.len() < MIN_ID_PREFIX {
            return Err(NodeError::PrefixTooShort(text.to_string()));
        }
        let matches: Vec<DocId> = self
            .store
            .all_doc_ids()?
            .into_iter()
            .filter(|id| id.to_string().starts_with(text))
            .collect();
        let id = match matches.len() {
            0 => {
                return Err(NodeError::UnknownDoc {
                    what,
                    id: text.to_string(),
                })
            }
            1 => matches[0],
            count => {
                return Err(NodeError::Ambiguous {
                    what,
                    prefix: text.to_string(),
                    count,
                })
            }
        };
        if let Some(expected) = kind {
            let found = self
                .store
                .doc_genesis(&id)?
                .map(|g| g.body.kind)
                .ok_or_else(|| NodeError::UnknownDoc {
                    what,
                    id: text.to_string(),
                })?;
            if found != expected {
                return Err(NodeError::WrongKind {
                    id,
                    expected,
                    found,
                });
            }
        }
        Ok(id)
    }

    /// Summaries of the documents of one kind in a commons, newest first.
    pub fn list(
        &self,
        commons: &CommonsId,
        kind: DocKind,
    ) -> Result<Vec<(DocId, DocSummary)>, NodeError> {
        let mut out = Vec::new();
        for id in self.store.doc_ids(commons)? {
            if let Some(summary) = self.store.summary(&id)? {
                if summary.kind == kind {
                    out.push((id, summary));
                }
            }
        }
        out.sort_by(|a, b| b.1.updated_at.cmp(&a.1.updated_at).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// The display name an author gave in their profile in `commons`, if known.
    pub fn author_name(&mut self, commons: CommonsId, author: &AuthorKey) -> Option<String> {
        let id = DocGenesis::profile(commons, *author).id();
        let summary = self.store.summary(&id).ok()??;
        Some(summary.title).filter(|t| !t.is_empty())
    }

    // ---- incoming ----

    /// Takes a live change from a peer or a bundle: verify, apply or hold, persist.
    pub fn ingest_live(&mut self, live: &LiveChange) -> Result<LiveOutcome, NodeError> {
        let id = live.envelope.doc;
        let commons = live.envelope.commons;
        if !self.holds(&commons)? {
            return Err(NodeError::UnknownCommons(commons.to_string()));
        }
        let target = match &live.genesis {
            Some(genesis) => {
                let genesis_id = genesis.verify().map_err(Rejection::from)?;
                if genesis.body.commons != commons {
                    return Err(Rejection::WrongCommons {
                        expected: commons,
                        got: genesis.body.commons,
                    }
                    .into());
                }
                if let Some(mut replica) = self.fresh_replica(genesis)? {
                    // Nothing of a new document is stored unless its first change verifies.
                    let outcome = replica.ingest_envelope(&live.envelope)?;
                    self.cache.insert(genesis_id, replica);
                    let (accepted, outcome) = match outcome {
                        IngestOutcome::Applied(accepted) => {
                            let n = accepted.len();
                            (accepted, LiveOutcome::Applied(n))
                        }
                        IngestOutcome::Pending => (Vec::new(), LiveOutcome::Pending),
                        IngestOutcome::Duplicate => (Vec::new(), LiveOutcome::Duplicate),
                    };
                    self.persist(&genesis_id, &accepted)?;
                    return Ok(outcome);
                }
                genesis_id
            }
            None => id,
        };
        if self.store.doc_genesis(&target)?.is_none() {
            return Err(NodeError::UnknownDoc {
                what: "document",
                id: target.to_string(),
            });
        }
        let replica = self.replica_mut(&target)?;
        match replica.ingest_envelope(&live.envelope)? {
            IngestOutcome::Duplicate => Ok(LiveOutcome::Duplicate),
            IngestOutcome::Pending => Ok(LiveOutcome::Pending),
            IngestOutcome::Applied(accepted) => {
                self.persist(&target, &accepted)?;
                Ok(LiveOutcome::Applied(accepted.len()))
            }
        }
    }

    /// Takes a signed envelope for a document whose genesis may come separately.
    pub fn ingest_envelope(
        &mut self,
        genesis: Option<&Signed<DocGenesis>>,
        envelope: &ChangeEnvelope,
    ) -> Result<LiveOutcome, NodeError> {
        self.ingest_live(&LiveChange {
            genesis: genesis.cloned(),
            envelope: envelope.clone(),
        })
    }

    /// Takes one document's changes in compact form with their proofs; all or nothing.
    pub fn ingest_compact(
        &mut self,
        genesis: Option<&Signed<DocGenesis>>,
        doc: &DocId,
        changes: &CompactChanges,
        proofs: Vec<([u8; 32], hedgerow_protocol::ChangeProof)>,
    ) -> Result<usize, NodeError> {
        if let Some(genesis) = genesis {
            let genesis_id = genesis.verify().map_err(Rejection::from)?;
            if genesis_id != *doc {
                return Err(NodeError::Invalid(format!(
                    "genesis record is for {genesis_id}, not {doc}"
                )));
            }
            if !self.holds(&genesis.body.commons)? {
                return Err(NodeError::UnknownCommons(genesis.body.commons.to_string()));
            }
        }
        let proofs = proofs
            .into_iter()
            .map(|(h, p)| (ChangeHash(h), p))
            .collect();
        if let Some(mut replica) = genesis
            .map(|g| self.fresh_replica(g))
            .transpose()?
            .flatten()
        {
            // Nothing of a new document is stored unless its changes verify; a genesis
            // alone (no changes) is a document with no changes yet.
            let accepted = if changes.is_empty() {
                Vec::new()
            } else {
                replica.ingest_compact(changes, proofs)?
            };
            self.cache.insert(*doc, replica);
            self.persist(doc, &accepted)?;
            return Ok(accepted.len());
        }
        if changes.is_empty() {
            return Ok(0);
        }
        let replica = self.replica_mut(doc)?;
        let accepted = replica.ingest_compact(changes, proofs)?;
        if !accepted.is_empty() {
            self.persist(doc, &accepted)?;
        }
        Ok(accepted.len())
    }

    /// An empty replica for a verified genesis of a document not held yet; `None` when held.
    ///
    /// The caller caches and persists it only once what came with the genesis is accepted.
    fn fresh_replica(&self, genesis: &Signed<DocGenesis>) -> Result<Option<DocReplica>, NodeError> {
        let id = genesis.body.id();
        if self.cache.contains_key(&id) || self.store.doc_genesis(&id)?.is_some() {
            return Ok(None);
        }
        Ok(Some(DocReplica::new(genesis.clone())?))
    }

    /// Drops cached replicas (after a rebuild, or to bound memory).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// The device key, for signing records the node makes on its own.
    pub(crate) fn key(&self) -> &DeviceKey {
        &self.key
    }

    /// Inserts a replica built elsewhere (a fork) and persists it with its accepted changes.
    pub(crate) fn adopt(
        &mut self,
        replica: DocReplica,
        accepted: &[Accepted],
    ) -> Result<DocId, NodeError> {
        let id = replica.id();
        self.cache.insert(id, replica);
        self.persist(&id, accepted)?;
        Ok(id)
    }

    /// Queues a locally made change for publishing.
    pub(crate) fn queue_outgoing(&mut self, live: LiveChange) {
        self.outbox.push(live);
    }
}

/// The cached summary of a replica.
pub fn summarize(replica: &DocReplica) -> DocSummary {
    let rendered = schema::render(replica.doc(), replica.kind(), None);
    let title_field = match replica.kind() {
        DocKind::Design | DocKind::Profile => "name",
        DocKind::Event => "title",
        DocKind::Note => "body",
    };
    let title: String = rendered
        .get(title_field)
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    let heads: Vec<[u8; 32]> = replica.heads().iter().map(|h| h.0).collect();
    let updated_at = replica
        .doc()
        .get_changes_meta(&[])
        .iter()
        .map(|m| m.timestamp)
        .max()
        .unwrap_or(replica.genesis().body.created_at);
    let _ = heads_digest;
    DocSummary {
        commons: replica.commons(),
        kind: replica.kind(),
        title,
        heads,
        changes: replica.change_count() as u64,
        updated_at,
    }
}
