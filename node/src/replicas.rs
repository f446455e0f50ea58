//! The node's replicas: every document of every commons it holds, over the sled store.
//!
//! This is the one place that turns protocol state changes into store writes:
//! each mutation goes through [`Replicas::persist`], which writes the accepted
//! changes with the document's refreshed caches in one sled transaction, and
//! [`Replicas::commit`] makes them durable before a command reports success.

use crate::bundle::BundleError;
use crate::home::{Home, HomeError, LocalProfile};
use crate::store::{DocSummary, DocWrite, Store, StoreError};
use hedgerow_protocol::automerge::ChangeHash;
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::licence::LicenceError;
use hedgerow_protocol::replica::{Accepted, EditFailure, IngestOutcome, RefusedChange, Rejection};
use hedgerow_protocol::schema::{
    self, DocKind, Edit, EditContext, EditError, NewDocument, SchemaError,
};
use hedgerow_protocol::sync::{heads_digest, LiveChange};
use hedgerow_protocol::{
    AuthorKey, CommonsGenesis, CommonsId, DeviceKey, DocGenesis, DocId, DocReplica, Signed,
};
use std::collections::HashMap;

/// Most document replicas kept in memory at once.
pub const MAX_CACHED_REPLICAS: usize = 256;

/// Changes received for a document before its snapshot cache is rewritten.
///
/// A snapshot is the document's whole `save()`; rewriting it for every received change made
/// a stream of small edits cost a full save and write each. The change records are the truth
/// (written and fsynced with every change); a stale snapshot is brought up to date from them
/// on load, and saved on eviction, on [`Replicas::save_snapshots`] and on close.
pub const SNAPSHOT_EVERY: usize = 32;

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
    /// A device command failed (persons and devices).
    #[error(transparent)]
    Device(#[from] crate::devices::DeviceError),
    /// No commons matches.
    #[error("no commons matches `{0}`")]
    UnknownCommons(String),
    /// No document matches.
    #[error("no {what} matches `{id}`")]
    UnknownDoc {
        /// design, event, note...
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// An id prefix or a name matches several.
    #[error("`{prefix}` matches {} {}: {}; give more characters of the id", candidates.len(), plural(what), candidates.join(", "))]
    Ambiguous {
        /// design, event, note...
        what: &'static str,
        /// The prefix or name given.
        prefix: String,
        /// Those it matches, each as `ID (name)` (the last may say how many more).
        candidates: Vec<String>,
    },
    /// An id prefix is too short, and no name.
    #[error(
        "`{0}` is no name held here and too short for an id; give at least {MIN_ID_PREFIX} characters of the id, or the exact name"
    )]
    PrefixTooShort(String),
    /// Something not held here named by less than its full id.
    #[error("no {what} held here matches `{given}`; one this node does not hold can only be named by its full id")]
    NeedFullId {
        /// design, commons, ...
        what: &'static str,
        /// The text given.
        given: String,
    },
    /// A document named inside an edit could not be used.
    #[error("`{field}`: {error}")]
    Reference {
        /// The field that names it.
        field: String,
        /// Why.
        error: Box<NodeError>,
    },
    /// An edit names the document it edits.
    #[error("{} cannot name itself in `{field}`", kind.with_article())]
    SelfReference {
        /// The document's kind.
        kind: DocKind,
        /// The field.
        field: String,
    },
    /// `derivative_of` on a fork names another design than the fork's parent.
    #[error("this design is a fork of {parent}, which its signed origin fixes; its `derivative_of` stays {parent}")]
    ForkParentFixed {
        /// The fork's parent.
        parent: DocId,
    },
    /// `derivative_of` names a design that derives from the edited one.
    #[error("design {parent} derives from this design, so this design cannot derive from it (lineage would loop)")]
    LineageLoop {
        /// The design named.
        parent: DocId,
    },
    /// Several commons held and none chosen (each as `name (short id)`).
    #[error("this node holds {} commons ({}) and none was chosen", .0.len(), .0.join(", "))]
    ChooseCommons(Vec<String>),
    /// No commons held.
    #[error("this node holds no commons yet")]
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
    #[error("design {doc} has no release `{version}`")]
    UnknownRelease {
        /// The design.
        doc: DocId,
        /// The version asked for.
        version: String,
    },
    /// A note was to be made without the design or event it belongs to.
    #[error("a note belongs to a design or an event, and none was given")]
    NoteWithoutTarget,
    /// A bundle or summary file could not be used (boxed: it carries an import report).
    #[error(transparent)]
    Bundle(Box<BundleError>),
    /// A community command refused (roles, invitations, moderation).
    #[error(transparent)]
    Community(#[from] crate::communities::CommunityError),
    /// Invalid argument not covered above.
    #[error("{0}")]
    Invalid(String),
    /// Changes the commons' charter refuses: nothing of them was stored (what else came with
    /// them was, see `stored`), and the peer that forwarded them is not at fault.
    #[error("{0}")]
    NotAdmitted(Box<AdmissionReport>),
    /// A document genesis arrived without any change: a document exists only from its first
    /// valid change, so nothing of it was stored.
    #[error("document {doc} arrived without any change; nothing of it was stored")]
    EmptyDocument {
        /// The document.
        doc: DocId,
    },
    /// This node's own block list, hidden or purged documents refused it.
    #[error(transparent)]
    Local(#[from] crate::local_blocks::LocalListError),
    /// The blob store failed or refused bytes (boxed: it carries paths).
    #[error(transparent)]
    Blob(Box<crate::blobs::BlobError>),
    /// A file command was refused (quota, ambiguous name).
    #[error(transparent)]
    File(Box<crate::blobs::files::FileError>),
    /// A conflict could not be resolved as asked.
    #[error(transparent)]
    Conflict(#[from] crate::conflicts::ConflictError),
    /// An import or export failed as a whole.
    #[error(transparent)]
    Interop(#[from] crate::interop::InteropError),
    /// A write signed by a key this node does not hold was refused (see [`crate::external_sign`]).
    #[error(transparent)]
    External(#[from] crate::external_sign::ExternalError),
}

/// `what` in the plural, for messages ("commons" is both).
fn plural(what: &str) -> String {
    if what.ends_with('s') {
        what.to_string()
    } else {
        format!("{what}s")
    }
}

impl From<EditFailure<EditError>> for NodeError {
    fn from(failure: EditFailure<EditError>) -> Self {
        match failure {
            EditFailure::Refused(e) => NodeError::Edit(e),
            EditFailure::Invalid(r) => NodeError::Rejected(r),
        }
    }
}

/// Changes of one document the commons' charter refused, and what was stored beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionReport {
    /// The document.
    pub doc: DocId,
    /// Changes of the same delivery that were admitted and stored.
    pub stored: usize,
    /// The changes kept out, each with its kind (`held` when it only builds on a refused one).
    pub refused: Vec<RefusedChange>,
}

impl std::fmt::Display for AdmissionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self
            .refused
            .iter()
            .find(|r| r.refused.kind != hedgerow_protocol::replica::HELD)
            .or(self.refused.first());
        write!(
            f,
            "{} change(s) of document {} refused by the commons' charter",
            self.refused.len(),
            self.doc
        )?;
        if let Some(first) = first {
            write!(f, " ({}: {})", first.refused.kind, first.refused.reason)?;
        }
        if self.stored > 0 {
            write!(f, "; {} other change(s) stored", self.stored)?;
        }
        Ok(())
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
    /// Validly signed but kept out as the losing side of an equivocation, as evidence.
    Excluded,
}

/// The node's document replicas over its store.
pub struct Replicas {
    store: Store,
    pub(crate) key: DeviceKey,
    /// The person key when this home holds one apart from the device key (`person.key`).
    pub(crate) person_key: Option<DeviceKey>,
    /// This device's certificate as stored in the home (restored or linked devices).
    pub(crate) certificate: Option<Vec<u8>>,
    /// The home directory, to keep a linked device's certificate once it arrives.
    pub(crate) home_root: std::path::PathBuf,
    pub(crate) profile: LocalProfile,
    peer_id: String,
    pub(crate) cache: HashMap<DocId, DocReplica>,
    outbox: Vec<LiveChange>,
    /// Cached documents whose stored snapshot lags, with the changes it lacks.
    unsaved: HashMap<DocId, usize>,
    /// This node's block list, hidden and purged documents (see [`crate::local_blocks`]).
    pub(crate) lists: crate::local_blocks::LocalLists,
    /// Each commons' evaluated charter, as admission policy (`None`: open, admits all);
    /// dropped when the commons' charter takes a change.
    pub(crate) charters: HashMap<CommonsId, Option<std::sync::Arc<crate::communities::Policy>>>,
    /// Changes refused or held by admission since start, by kind (for `status`).
    pub(crate) refusals: std::collections::BTreeMap<String, u64>,
    /// Refused changes of the ingest under way.
    last_refused: Vec<RefusedChange>,
    /// Documents that took changes since the last [`Replicas::take_changed`], once a running
    /// node watches them ([`Replicas::watch_changes`]); `None` otherwise.
    changed: Option<HashMap<DocId, crate::serve::DocChange>>,
    /// Listing facts per document and version, so a search reads each document once.
    search: crate::search_index::SearchIndex,
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
        let mut replicas = Self {
            store,
            key: DeviceKey::from_secret(home.key().secret_bytes())
                .with_install(home.key().install()),
            person_key: home.person_secret()?.map(DeviceKey::from_secret),
            certificate: home.certificate_bytes()?,
            home_root: home.root().to_path_buf(),
            profile: home.profile()?,
            peer_id: home.network_key()?.peer_id().to_string(),
            cache: HashMap::new(),
            outbox: Vec::new(),
            unsaved: HashMap::new(),
            lists: Default::default(),
            charters: HashMap::new(),
            refusals: std::collections::BTreeMap::new(),
            last_refused: Vec::new(),
            changed: None,
            search: Default::default(),
        };
        // Each commons' charter, evaluated once: listing and serving read it. A store damaged
        // on disk still opens (for `verify` and `repair` to say what is wrong).
        for genesis in replicas.store.all_commons().unwrap_or_default() {
            let commons = genesis.body.id();
            if let Err(e) = replicas.charter_state(&commons) {
                tracing::warn!("the charter of commons {commons} cannot be read: {e}");
            }
        }
        replicas.load_local_lists()?;
        Ok(replicas)
    }

    /// From now on, records each document that takes changes, for [`Self::take_changed`].
    pub fn watch_changes(&mut self) {
        self.changed.get_or_insert_with(HashMap::new);
    }

    /// The documents that took changes since the last call (none unless watched).
    pub fn take_changed(&mut self) -> Vec<crate::serve::DocChange> {
        match &mut self.changed {
            Some(changed) => changed.drain().map(|(_, change)| change).collect(),
            None => Vec::new(),
        }
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
        let id = self.new_commons(name, description)?;
        self.ensure_profile(id)?;
        Ok(id)
    }

    /// Signs and stores a new commons' genesis, with nothing in it yet.
    pub(crate) fn new_commons(
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
        // The certificate first: in a stewarded commons it is what makes this device's profile
        // its person's.
        self.publish_own_certificate(id)?;
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

    /// Writes this device's profile into `commons` if it is not there yet.
    pub(crate) fn ensure_profile(&mut self, commons: CommonsId) -> Result<(), NodeError> {
        let genesis = DocGenesis::profile(commons, self.author());
        let id = genesis.id();
        if self.store.doc_genesis(&id)?.is_some() {
            return Ok(());
        }
        if self.check_local_write(&genesis, 1).is_err() {
            // Not a member of this stewarded commons (yet): no profile to publish there.
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

    /// [`Replicas::create_doc`] with an automerge message on the first change (an import's
    /// provenance record).
    pub fn create_doc_with_message(
        &mut self,
        commons: CommonsId,
        new: &NewDocument,
        edits: &[Edit],
        message: String,
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
        self.create_with_message(genesis, new, edits, Some(message))
    }

    fn create_with_genesis(
        &mut self,
        genesis: Signed<DocGenesis>,
        new: &NewDocument,
        edits: &[Edit],
    ) -> Result<DocId, NodeError> {
        self.create_with_message(genesis, new, edits, None)
    }

    fn create_with_message(
        &mut self,
        genesis: Signed<DocGenesis>,
        new: &NewDocument,
        edits: &[Edit],
        message: Option<String>,
    ) -> Result<DocId, NodeError> {
        self.check_local_write(&genesis.body, 1)?;
        let mut replica = DocReplica::new(genesis.clone())?;
        let id = replica.id();
        let ctx = self.edit_context();
        let kind = new.kind;
        let (_, made) = replica.edit_with_message(&self.key, ctx.now_unix, message, |tx| {
            schema::init_document(tx, new).map_err(EditError::from)?;
            for edit in edits {
                schema::apply_edit(tx, kind, edit, &ctx)?;
            }
            Ok::<(), EditError>(())
        })?;
        self.cache_insert(id, replica);
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
        self.edit_doc_with_message(id, edits, None)
    }

    /// [`Replicas::edit_doc`] with an automerge message on the change (an import's
    /// provenance record); nothing is written when the edits change nothing.
    pub fn edit_doc_with_message(
        &mut self,
        id: &DocId,
        edits: &[Edit],
        message: Option<String>,
    ) -> Result<Option<ChangeHash>, NodeError> {
        let ctx = self.edit_context();
        let (genesis, next_seq) = {
            let replica = self.replica_mut(id)?;
            (replica.genesis().body.clone(), 0)
        };
        let next_seq = match self.cache.get(id) {
            Some(replica) => self.next_seq(replica),
            None => next_seq,
        };
        self.check_local_write(&genesis, next_seq)?;
        let replica = self
            .cache
            .get_mut(id)
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })?;
        let kind = replica.kind();
        let (_, made) = replica.edit_with_message(&self.key, ctx.now_unix, message, |tx| {
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
            self.cache_insert(*id, replica);
        }
        self.cache.get_mut(id).ok_or_else(|| NodeError::UnknownDoc {
            what: "document",
            id: id.to_string(),
        })
    }

    /// Caches a replica, first dropping the others when [`MAX_CACHED_REPLICAS`] are held.
    ///
    /// Every replica enters the cache here (loaded, created, received or forked), so none
    /// of those paths can grow it past the bound.
    fn cache_insert(&mut self, id: DocId, replica: DocReplica) {
        if self.cache.len() >= MAX_CACHED_REPLICAS && !self.cache.contains_key(&id) {
            // Every change cached is persisted, so dropping it costs only a reload; this
            // keeps a hub that serves thousands of designs within a small machine's memory.
            // Lagging snapshots are saved first, so the reload is quick.
            if let Err(e) = self.save_snapshots() {
                tracing::warn!("snapshots not saved before eviction (rebuilt on load): {e}");
            }
            self.cache.clear();
        }
        self.cache.insert(id, replica);
    }

    /// How many document replicas are held in memory now (at most [`MAX_CACHED_REPLICAS`]).
    pub fn cached_replicas(&self) -> usize {
        self.cache.len()
    }

    /// Loads a replica: from its snapshot when present (brought up to date with the change
    /// records written since it was saved), else rebuilt from its changes.
    ///
    /// A snapshot is trusted only as far as the records go: one holding a change the records
    /// lack (the records are the truth) is ignored and the replica rebuilt.
    fn load(&self, id: &DocId) -> Result<DocReplica, NodeError> {
        let genesis = self
            .store
            .doc_genesis(id)?
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })?;
        if let Some(snapshot) = self.store.snapshot(id)? {
            let records = self.store.records(id)?;
            if let Some((current, doc)) = self.catch_up_snapshot(id, snapshot, &records)? {
                let count = records.len();
                let records = records
                    .into_iter()
                    .map(|(hash, record)| (ChangeHash(hash), record));
                if let Ok(mut replica) =
                    DocReplica::from_loaded(genesis.clone(), doc, current.into(), records)
                {
                    if replica.change_count() == count {
                        replica.restore_excluded(self.store.excluded(id)?);
                        return Ok(replica);
                    }
                }
            }
        }
        self.rebuild(id, genesis)
    }

    /// A snapshot that covers every stored record, with the document automerge loaded from
    /// it: `snapshot` itself, or, when records were written after it was saved, the snapshot
    /// with those changes applied (and saved again). `None` when the snapshot cannot be used.
    fn catch_up_snapshot(
        &self,
        id: &DocId,
        snapshot: Vec<u8>,
        records: &[([u8; 32], hedgerow_protocol::replica::ChangeRecord)],
    ) -> Result<Option<(Vec<u8>, hedgerow_protocol::automerge::Automerge)>, NodeError> {
        let Ok(mut doc) = hedgerow_protocol::automerge::Automerge::load(&snapshot) else {
            return Ok(None);
        };
        let held: std::collections::HashSet<[u8; 32]> =
            records.iter().map(|(hash, _)| *hash).collect();
        let covered: std::collections::HashSet<[u8; 32]> = doc
            .get_changes_meta(&[])
            .iter()
            .map(|meta| meta.hash.0)
            .collect();
        if !covered.is_subset(&held) {
            return Ok(None);
        }
        if covered.len() == held.len() {
            return Ok(Some((snapshot, doc)));
        }
        let mut newer = Vec::new();
        for (hash, bytes, _) in self.store.changes(id)? {
            if !covered.contains(&hash) {
                match hedgerow_protocol::compact::decode_change(&bytes) {
                    Ok(change) => newer.push(change),
                    Err(_) => return Ok(None),
                }
            }
        }
        if doc.apply_changes(newer).is_err() {
            return Ok(None);
        }
        let current = doc.save();
        // Only a cache: if it cannot be written, the next load catches up again.
        if let Err(e) = self.store.write_snapshot(id, &current) {
            tracing::warn!("cannot refresh the snapshot of {id}: {e}");
        }
        Ok(Some((current, doc)))
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
        let excluded = self.store.excluded(&genesis.body.id())?;
        let mut replica = DocReplica::rebuild(genesis, changes)?;
        replica.restore_excluded(excluded);
        Ok(replica)
    }

    /// Writes newly accepted changes of a cached document with its refreshed caches.
    ///
    /// If the write fails the cached replica is dropped: it holds changes the store does not,
    /// and keeping it would let later writes build on them (and peers be told of them).
    fn persist(&mut self, id: &DocId, accepted: &[Accepted]) -> Result<(), NodeError> {
        self.write(id, accepted, true)
    }

    /// Like [`Self::persist`], but rewrites the snapshot only every [`SNAPSHOT_EVERY`]
    /// changes (received changes of a held document). Settling an equivocation always
    /// rewrites it: the old snapshot may hold changes that have just left the document.
    fn persist_lazily(&mut self, id: &DocId, accepted: &[Accepted]) -> Result<(), NodeError> {
        let lag = self.unsaved.get(id).copied().unwrap_or(0) + accepted.len();
        let settled = self
            .cache
            .get(id)
            .is_some_and(DocReplica::has_unsaved_exclusions);
        self.write(id, accepted, settled || lag >= SNAPSHOT_EVERY)
    }

    fn write(
        &mut self,
        id: &DocId,
        accepted: &[Accepted],
        snapshot: bool,
    ) -> Result<(), NodeError> {
        let replica = self
            .cache
            .get_mut(id)
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })?;
        let excluded = replica.take_excluded();
        if let Some(changed) = &mut self.changed {
            changed.insert(*id, crate::serve::DocChange::of(*id, replica));
        }
        // A document that arrived whole is stored as the bytes it came in.
        let snapshot = snapshot.then(|| {
            replica
                .take_received_snapshot()
                .unwrap_or_else(|| replica.doc().save())
        });
        let write = DocWrite {
            genesis: replica.genesis(),
            accepted,
            snapshot,
            summary: summarize(replica),
            excluded: &excluded,
        };
        if write.snapshot.is_some() {
            self.unsaved.remove(id);
        } else {
            *self.unsaved.entry(*id).or_insert(0) += accepted.len();
        }
        if let Err(e) = self.store.write_doc(write) {
            self.cache.remove(id);
            return Err(e.into());
        }
        Ok(())
    }

    /// Saves the snapshot of every cached document whose stored snapshot lags its records
    /// (periodically, before eviction and on close); they are caches, so this may be late.
    pub fn save_snapshots(&mut self) -> Result<usize, NodeError> {
        let lagging: Vec<DocId> = self.unsaved.keys().copied().collect();
        let mut saved = 0;
        for id in lagging {
            if let Some(replica) = self.cache.get(&id) {
                self.store.write_snapshot(&id, &replica.doc().save())?;
                saved += 1;
            }
            self.unsaved.remove(&id);
        }
        Ok(saved)
    }

    /// Drops a cached replica whose changes could not be made durable, so it is reloaded
    /// from what the store really holds.
    pub fn forget(&mut self, id: &DocId) {
        self.cache.remove(id);
        self.unsaved.remove(id);
    }

    /// The listing facts of `id` (of `kind`) at its stored `heads`: read from the document only
    /// when it changed since they were last read.
    pub fn listing_facts(
        &mut self,
        id: &DocId,
        heads: &[[u8; 32]],
        kind: DocKind,
    ) -> Result<&crate::search_index::IndexEntry, NodeError> {
        if self.search.fresh(id, heads).is_none() {
            self.replica_mut(id)?;
            let replica = self.cache.get(id).ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })?;
            return Ok(self.search.read(*id, heads.to_vec(), replica.doc(), kind));
        }
        self.search
            .fresh(id, heads)
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })
    }

    /// Documents the listing index has read since start (see [`crate::search_index`]).
    pub fn listing_reads(&self) -> u64 {
        self.search.reads()
    }

    /// Summaries of the documents of one kind in a commons, newest first.
    pub fn list(
        &self,
        commons: &CommonsId,
        kind: DocKind,
    ) -> Result<Vec<(DocId, DocSummary)>, NodeError> {
        let mut out = Vec::new();
        let withheld = self.withheld_in(commons);
        let hidden = self
            .charters
            .get(commons)
            .and_then(|p| p.as_ref().map(|p| p.state.hidden().clone()))
            .unwrap_or_default();
        for id in self.store.doc_ids(commons)? {
            if withheld.contains(&id) {
                continue;
            }
            if let Some(summary) = self.store.summary(&id)? {
                // A genesis without changes (stored by older releases) is no document; a
                // document hidden by a steward is not listed.
                if summary.kind == kind && summary.changes > 0 && !hidden.contains_key(&id) {
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

    /// Takes a live change from a peer or a bundle: verify, admit, apply or hold, persist.
    ///
    /// A change the commons' charter refuses is not stored and comes back as
    /// [`NodeError::NotAdmitted`] (no fault of the peer that forwarded it).
    pub fn ingest_live(&mut self, live: &LiveChange) -> Result<LiveOutcome, NodeError> {
        self.last_refused.clear();
        let result = self.ingest_live_inner(live);
        let refused = std::mem::take(&mut self.last_refused);
        let doc = live.envelope.doc;
        if let Ok(LiveOutcome::Applied(n)) = &result {
            self.after_ingest(live.envelope.commons, &doc, *n);
        }
        self.count_refused(&refused);
        match result {
            Ok(LiveOutcome::Applied(n)) if n > 0 => Ok(LiveOutcome::Applied(n)),
            _ if !refused.is_empty() => Err(NodeError::NotAdmitted(Box::new(AdmissionReport {
                doc,
                stored: 0,
                refused,
            }))),
            other => other,
        }
    }

    fn ingest_live_inner(&mut self, live: &LiveChange) -> Result<LiveOutcome, NodeError> {
        let id = live.envelope.doc;
        let commons = live.envelope.commons;
        if !self.holds(&commons)? {
            return Err(NodeError::UnknownCommons(commons.to_string()));
        }
        self.refuse_purged(&id)?;
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
                self.refuse_purged(&genesis_id)?;
                if let Some(mut replica) = self.fresh_replica(genesis)? {
                    self.apply_blocks(&mut replica);
                    // Nothing of a new document is stored unless its first change verifies.
                    // A document exists only from its first applied change: a first change
                    // still waiting for history leaves nothing behind.
                    let outcome = replica.ingest_envelope(&live.envelope);
                    self.last_refused.extend(replica.take_refused());
                    let accepted = match outcome? {
                        IngestOutcome::Applied(accepted) if !accepted.is_empty() => accepted,
                        IngestOutcome::Applied(_) | IngestOutcome::Duplicate => {
                            return Ok(LiveOutcome::Duplicate)
                        }
                        IngestOutcome::Pending => return Ok(LiveOutcome::Pending),
                        IngestOutcome::Excluded => return Ok(LiveOutcome::Excluded),
                    };
                    self.adopt(replica, &accepted)?;
                    return Ok(LiveOutcome::Applied(accepted.len()));
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
        let blocked = self.blocked_in(&commons);
        let replica = self.admitting(&target)?;
        crate::local_blocks::refuse_blocked(replica, blocked);
        let ingested = replica.ingest_envelope(&live.envelope);
        let refused = replica.take_refused();
        self.last_refused.extend(refused);
        let replica = self.replica_mut(&target)?;
        let (accepted, outcome) = match ingested? {
            IngestOutcome::Duplicate => return Ok(LiveOutcome::Duplicate),
            IngestOutcome::Pending => (Vec::new(), LiveOutcome::Pending),
            IngestOutcome::Excluded => (Vec::new(), LiveOutcome::Excluded),
            IngestOutcome::Applied(accepted) => {
                let n = accepted.len();
                (accepted, LiveOutcome::Applied(n))
            }
        };
        // A held or refused change may still have settled an equivocation: store the evidence.
        if !accepted.is_empty() || replica.has_unsaved_exclusions() {
            self.persist_lazily(&target, &accepted)?;
        }
        Ok(outcome)
    }

    /// Takes one document's changes in compact form with their proofs; all or nothing.
    ///
    /// The one path for a document arriving as its genesis record plus a compact payload,
    /// from a peer (`ingest_payload`) or a bundle (`bundle_import`): the same checks, the
    /// same refusals, and nothing of a new document stored unless a change of it verifies.
    ///
    /// Changes the commons' charter refuses are left out before anything is applied; the
    /// rest is stored, and the refusals come back as [`NodeError::NotAdmitted`] (with the
    /// count stored beside them).
    pub fn ingest_compact(
        &mut self,
        genesis: Option<&Signed<DocGenesis>>,
        doc: &DocId,
        changes: &CompactChanges,
        proofs: Vec<([u8; 32], hedgerow_protocol::ChangeProof)>,
    ) -> Result<usize, NodeError> {
        self.last_refused.clear();
        let result = self.ingest_compact_inner(genesis, doc, changes, proofs);
        let refused = std::mem::take(&mut self.last_refused);
        let commons = match genesis {
            Some(g) => Some(g.body.commons),
            None => self.store.doc_genesis(doc)?.map(|g| g.body.commons),
        };
        if let (Ok(n), Some(commons)) = (&result, commons) {
            self.after_ingest(commons, doc, *n);
        }
        self.count_refused(&refused);
        match result {
            Ok(stored) if !refused.is_empty() => {
                Err(NodeError::NotAdmitted(Box::new(AdmissionReport {
                    doc: *doc,
                    stored,
                    refused,
                })))
            }
            Err(NodeError::EmptyDocument { .. }) | Err(NodeError::Rejected(_))
                if !refused.is_empty() =>
            {
                Err(NodeError::NotAdmitted(Box::new(AdmissionReport {
                    doc: *doc,
                    stored: 0,
                    refused,
                })))
            }
            other => other,
        }
    }

    fn ingest_compact_inner(
        &mut self,
        genesis: Option<&Signed<DocGenesis>>,
        doc: &DocId,
        changes: &CompactChanges,
        proofs: Vec<([u8; 32], hedgerow_protocol::ChangeProof)>,
    ) -> Result<usize, NodeError> {
        self.refuse_purged(doc)?;
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
            // Nothing of a new document is stored unless its changes verify, and a document
            // exists only from its first change: a genesis alone is refused.
            self.apply_blocks(&mut replica);
            let accepted = if changes.is_empty() {
                Vec::new()
            } else {
                let ingested = replica.ingest_compact(changes, proofs);
                self.last_refused.extend(replica.take_refused());
                ingested?
            };
            if accepted.is_empty() {
                return Err(NodeError::EmptyDocument { doc: *doc });
            }
            let refused = replica.take_refused_authors();
            self.adopt(replica, &accepted)?;
            self.note_partly_refused(*doc, refused);
            return Ok(accepted.len());
        }
        if changes.is_empty() {
            return Ok(0);
        }
        let commons = self.admitting(doc)?.commons();
        let blocked = self.blocked_in(&commons);
        let replica = self.replica_mut(doc)?;
        crate::local_blocks::refuse_blocked(replica, blocked);
        let ingested = replica.ingest_compact(changes, proofs);
        let admission_refused = replica.take_refused();
        let refused = replica.take_refused_authors();
        self.last_refused.extend(admission_refused);
        let replica = self.replica_mut(doc)?;
        let accepted = ingested?;
        if !accepted.is_empty() || replica.has_unsaved_exclusions() {
            self.persist_lazily(doc, &accepted)?;
        }
        self.note_partly_refused(*doc, refused);
        Ok(accepted.len())
    }

    /// An empty replica for a verified genesis of a document not held yet; `None` when held.
    ///
    /// The caller caches and persists it only once what came with the genesis is accepted.
    fn fresh_replica(
        &mut self,
        genesis: &Signed<DocGenesis>,
    ) -> Result<Option<DocReplica>, NodeError> {
        let id = genesis.body.id();
        if self.cache.contains_key(&id) || self.store.doc_genesis(&id)?.is_some() {
            return Ok(None);
        }
        let mut replica = DocReplica::new(genesis.clone())?;
        if genesis.body.kind == DocKind::Charter {
            self.check_charter_genesis(genesis)?;
        } else {
            replica.set_admission(self.admission(&genesis.body.commons)?);
        }
        Ok(Some(replica))
    }

    /// A document's replica with its commons' admission policy set, for taking in changes.
    fn admitting(&mut self, id: &DocId) -> Result<&mut DocReplica, NodeError> {
        let genesis = self
            .store
            .doc_genesis(id)?
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: id.to_string(),
            })?;
        let policy = match genesis.body.kind {
            DocKind::Charter => None,
            _ => self.admission(&genesis.body.commons)?,
        };
        let replica = self.replica_mut(id)?;
        replica.set_admission(policy);
        Ok(replica)
    }

    /// Counts refused and held changes for `status`.
    fn count_refused(&mut self, refused: &[RefusedChange]) {
        for r in refused {
            *self.refusals.entry(r.refused.kind.clone()).or_insert(0) += 1;
        }
    }

    /// After `n` changes of `doc` were stored: a charter that took changes is evaluated again
    /// and its commons' documents re-admitted.
    fn after_ingest(&mut self, commons: CommonsId, doc: &DocId, n: usize) {
        if n == 0 {
            return;
        }
        let is_charter = self.cache.get(doc).map(DocReplica::kind).or_else(|| {
            self.store
                .doc_genesis(doc)
                .ok()
                .flatten()
                .map(|g| g.body.kind)
        }) == Some(DocKind::Charter);
        if is_charter {
            if let Err(e) = self.charter_changed(commons) {
                tracing::warn!("cannot re-admit the documents of commons {commons}: {e}");
            }
        }
    }

    /// Drops cached replicas (after a rebuild, or to bound memory).
    pub fn clear_cache(&mut self) {
        if let Err(e) = self.save_snapshots() {
            tracing::warn!("snapshots not saved (rebuilt on load): {e}");
        }
        self.cache.clear();
        self.unsaved.clear();
    }

    /// The device key, for signing records the node makes on its own.
    pub(crate) fn key(&self) -> &DeviceKey {
        &self.key
    }

    /// Inserts a replica built elsewhere (a fork, a new document that arrived) and persists it
    /// with its accepted changes.
    pub(crate) fn adopt(
        &mut self,
        replica: DocReplica,
        accepted: &[Accepted],
    ) -> Result<DocId, NodeError> {
        let id = replica.id();
        self.cache_insert(id, replica);
        self.persist(&id, accepted)?;
        Ok(id)
    }

    /// Caches a replica made here (a new charter) before its first change is persisted.
    pub(crate) fn cache_replica(&mut self, id: DocId, replica: DocReplica) {
        self.cache_insert(id, replica);
    }

    /// Persists changes made here to a cached charter.
    pub(crate) fn persist_charter(
        &mut self,
        id: &DocId,
        accepted: &[Accepted],
    ) -> Result<(), NodeError> {
        self.persist(id, accepted)
    }

    /// Queues a locally made change for publishing.
    pub(crate) fn queue_outgoing(&mut self, live: LiveChange) {
        self.outbox.push(live);
    }
}

impl Drop for Replicas {
    /// Saves lagging snapshots on close; they are caches, so a failure only costs a slower
    /// next load.
    fn drop(&mut self) {
        if self.unsaved.is_empty() {
            return;
        }
        if let Err(e) = self.save_snapshots().and_then(|_| self.commit()) {
            tracing::warn!("snapshots not saved on close (rebuilt on load): {e}");
        }
    }
}

/// The cached summary of a replica.
pub fn summarize(replica: &DocReplica) -> DocSummary {
    let title: String = schema::facts::title(replica.doc(), replica.kind())
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

#[cfg(test)]
mod tests {
    use super::*;
    use hedgerow_protocol::compact::CompactChanges;
    use hedgerow_protocol::sync::SyncSource;

    fn home(dir: &std::path::Path, name: &str) -> Home {
        let profile = LocalProfile {
            name: name.into(),
            ..LocalProfile::default()
        };
        Home::init(&dir.join(name), &profile).expect("home")
    }

    fn summary_edit(text: &str) -> Edit {
        Edit::Set {
            field: "summary".into(),
            value: text.into(),
        }
    }

    /// Alice's commons with one design, joined by Ben, who holds the design.
    fn pair(dir: &std::path::Path) -> (Replicas, Replicas, DocId) {
        let mut alice = Replicas::open(&home(dir, "alice")).expect("store");
        let commons = alice.create_commons("Farm Hack", "").expect("commons");
        let design = NewDocument::new(DocKind::Design, "Roller crimper");
        let id = alice.create_doc(commons, &design, &[]).expect("doc");
        let mut ben = Replicas::open(&home(dir, "ben")).expect("store");
        let genesis = alice
            .store()
            .commons(&commons)
            .expect("read")
            .expect("held");
        ben.join_commons(&genesis).expect("join");
        for live in alice.take_outbox() {
            ben.ingest_live(&live).expect("ingest");
        }
        (alice, ben, id)
    }

    /// A search reads each document once per version, however many the replica cache holds,
    /// and a page of the list counts everything that matched.
    #[test]
    fn searches_read_each_document_once_per_version_and_pages_count_all_matches() {
        use crate::api::{execute, ListPage, Reply, Request};
        let dir = tempfile::tempdir().expect("temp dir");
        let mut alice = Replicas::open(&home(dir.path(), "alice")).expect("store");
        let commons = alice.create_commons("Farm Hack", "").expect("commons");
        let designs = MAX_CACHED_REPLICAS + 20;
        let mut ids = Vec::new();
        for n in 0..designs {
            let design = NewDocument::new(DocKind::Design, format!("Tool {n}"));
            let id = alice.create_doc(commons, &design, &[]).expect("doc");
            if n % 10 == 0 {
                alice
                    .edit_doc(&id, &[summary_edit("Crimps a cover crop")])
                    .expect("edit");
            }
            ids.push(id);
        }
        alice.commit().expect("commit");
        let search = |page: Option<ListPage>, text: &str| Request::DocList {
            commons: None,
            kind: DocKind::Design,
            target: None,
            tags: Vec::new(),
            stage: None,
            search: Some(text.into()),
            page,
        };
        let found = |reply: Reply| match reply {
            Reply::DocList(items) => items.len(),
            other => panic!("another reply: {other:?}"),
        };
        let before = alice.listing_reads();
        let hits = found(execute(&mut alice, search(None, "cover crop")).expect("search"));
        assert_eq!(hits, designs.div_ceil(10));
        assert_eq!(alice.listing_reads() - before, designs as u64);
        let hits = found(execute(&mut alice, search(None, "COVER")).expect("search"));
        assert_eq!(hits, designs.div_ceil(10));
        assert_eq!(
            alice.listing_reads() - before,
            designs as u64,
            "a second search reads no document again"
        );
        alice
            .edit_doc(&ids[1], &[summary_edit("A cover crop roller")])
            .expect("edit");
        alice.commit().expect("commit");
        let hits = found(execute(&mut alice, search(None, "cover crop")).expect("search"));
        assert_eq!(hits, designs.div_ceil(10) + 1, "the edited design is found");
        assert_eq!(alice.listing_reads() - before, designs as u64 + 1);
        let page = Some(ListPage {
            offset: 20,
            limit: 5,
        });
        match execute(&mut alice, search(page, "tool")).expect("page") {
            Reply::DocListPage(listed) => {
                assert_eq!(listed.total, designs);
                assert_eq!(listed.items.len(), 5);
            }
            other => panic!("another reply: {other:?}"),
        }
    }

    /// Received changes of a held document do not rewrite its snapshot each time; a stale
    /// snapshot (as a kill leaves it) is caught up from the change records on load.
    #[test]
    fn snapshots_are_saved_in_batches_and_caught_up_from_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut alice, mut ben, id) = pair(dir.path());
        let before = ben.store().snapshot(&id).expect("read").expect("snapshot");
        for n in 0..5 {
            alice
                .edit_doc(&id, &[summary_edit(&format!("Edit {n}"))])
                .expect("edit");
        }
        for live in alice.take_outbox() {
            assert_eq!(
                ben.ingest_live(&live).expect("ingest"),
                LiveOutcome::Applied(1)
            );
        }
        ben.commit().expect("commit");
        assert_eq!(
            ben.store().snapshot(&id).expect("read").as_ref(),
            Some(&before),
            "the snapshot is not rewritten for every received change"
        );
        let heads = ben.replica(&id).expect("held").heads();
        // A kill now: the records are durable, the snapshot lags by five changes.
        ben.cache.clear();
        ben.unsaved.clear();
        let loaded = ben.replica(&id).expect("loads").heads();
        assert_eq!(loaded, heads);
        assert_eq!(ben.replica(&id).expect("held").change_count(), 6);
        let report = ben.verify(false).expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems);
        // Loading refreshed the snapshot.
        let refreshed = ben.store().snapshot(&id).expect("read").expect("snapshot");
        let doc = hedgerow_protocol::automerge::Automerge::load(&refreshed).expect("loads");
        assert_eq!(doc.get_heads(), heads);
    }

    /// A snapshot holding a change the records lack is never trusted.
    #[test]
    fn a_snapshot_ahead_of_the_records_is_not_trusted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut alice, mut ben, id) = pair(dir.path());
        alice
            .edit_doc(&id, &[summary_edit("Only Alice has this")])
            .expect("edit");
        let ahead = alice.replica(&id).expect("held").doc().save();
        ben.store().write_snapshot(&id, &ahead).expect("write");
        ben.cache.clear();
        let replica = ben.replica(&id).expect("loads");
        assert_eq!(replica.change_count(), 1, "rebuilt from the records alone");
        let report = ben.verify(false).expect("verify");
        assert!(!report.is_clean(), "verify reports the snapshot");
    }

    /// A document exists only from its first change: a genesis alone is not stored, listed
    /// or served.
    #[test]
    fn a_genesis_without_changes_is_not_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (alice, mut ben, _) = pair(dir.path());
        let commons = ben.commons_list().expect("list")[0].body.id();
        let genesis = DocGenesis {
            commons,
            kind: DocKind::Note,
            creator: alice.author(),
            created_at: 1_800_000_000,
            nonce: [9; 16],
            fork: None,
        }
        .sign(alice.key());
        let id = genesis.body.id();
        let before = ben.inventory(&commons).expect("inventory").len();
        let refused = ben.ingest_compact(Some(&genesis), &id, &CompactChanges::none(), Vec::new());
        assert!(
            matches!(refused, Err(NodeError::EmptyDocument { .. })),
            "{refused:?}"
        );
        assert!(ben.store().doc_genesis(&id).expect("read").is_none());
        assert_eq!(ben.inventory(&commons).expect("inventory").len(), before);
        assert!(ben.list(&commons, DocKind::Note).expect("list").is_empty());
    }
}
