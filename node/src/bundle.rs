//! Sneakernet bundles on the node: export what another node lacks to a file,
//! write a summary of what this node holds, and import a bundle file.
//!
//! The file format is [`hedgerow_protocol::bundle_file`]; this module chooses
//! what goes in (from the replicas and, optionally, the other node's summary),
//! and sends every record of an incoming file through the same verification
//! as the network: signatures, actor binding, coverage, equivocation, schema.
//! Files are written atomically (temp file, fsync, rename), so a stick pulled
//! out mid-write holds the old file or the new one, never half of one.

use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::automerge::ActorId;
use hedgerow_protocol::bundle_file::{
    decode_bundle, decode_summary, encode_bundle_sealed, encode_summary, BundleFileError,
    CommonsSection, CommonsState, DecodedBundle, DocSection, DocState, Record, Summary,
};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::sync::{heads_digest, DocPayload};
use hedgerow_protocol::{CommonsGenesis, CommonsId, DocGenesis, DocId, Signed};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Commons in the bundle.
    pub commons: usize,
    /// Documents with a genesis or changes in the bundle.
    pub documents: usize,
    /// Signed changes in the bundle.
    pub changes: usize,
    /// Documents left out because the summary's maker already has all of them.
    pub up_to_date: usize,
    /// Size of the bundle file.
    pub bytes: usize,
    /// Attachment blobs written (only with `--with-files`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<crate::blobs::bundle::FilesExported>,
}

/// One document (or commons) of a bundle that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectedRecord {
    /// The document or commons id.
    pub id: String,
    /// `commons`, `design`, `event`, `note`, `profile`, or `document` when unknown.
    pub kind: String,
    /// Why it was refused.
    pub error: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Documents that gained their genesis or changes.
    pub new: usize,
    /// Documents already held in full.
    pub known: usize,
    /// Documents and commons refused; nothing of them was stored.
    pub rejected: Vec<RejectedRecord>,
    /// Signed changes stored.
    pub changes: usize,
    /// Commons joined because the user named them (`--commons`, or `commons join` before they
    /// arrived): replicated, profile written.
    pub commons_joined: Vec<String>,
    /// Commons replicated from now on because of `--all-commons`, without publishing a profile.
    pub commons_added: Vec<String>,
    /// Commons in the bundle this node does not hold and was not told to import.
    pub skipped: Vec<SkippedCommons>,
    /// Private commons' sealed records this node cannot open (it lacks the commons' genesis),
    /// left out.
    pub encrypted: Vec<EncryptedCommons>,
    /// Attachment blobs (only for a bundle written with files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<crate::blobs::bundle::FilesImported>,
}

/// The sealed records of one private commons an import could not open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EncryptedCommons {
    /// The commons id (the only thing a sealed record shows).
    pub id: String,
    /// Its sealed records in the bundle.
    pub records: usize,
}

/// A commons of a bundle left out of an import, so a stick carrying other people's commons
/// neither joins them nor publishes the importer's profile there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedCommons {
    /// The commons id.
    pub id: String,
    /// Its name, from its genesis record.
    pub name: String,
    /// Documents of it the bundle carries (none of them stored).
    pub documents: usize,
}

/// Which commons of a bundle to import besides those already held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportChoice {
    /// Commons ids or prefixes to join (`--commons`): imported, and the profile written there.
    pub join: Vec<String>,
    /// Import every commons of the bundle (`--all-commons`), publishing no profile in new ones.
    pub all: bool,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} new, {} already known, {} rejected",
            self.new,
            self.known,
            self.rejected.len()
        )?;
        if !self.skipped.is_empty() {
            let documents: usize = self.skipped.iter().map(|c| c.documents).sum();
            write!(
                f,
                ", {documents} skipped in {} commons not held",
                self.skipped.len()
            )?;
        }
        Ok(())
    }
}

/// Why a bundle or summary file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A summary file that cannot be used.
    #[error("{path}: {error}")]
    Summary {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (shown in the message, so not chained as a source).
        error: BundleFileError,
    },
    /// A bundle of which nothing could be read.
    #[error("{0}")]
    Unreadable(BundleFileError),
    /// A damaged bundle: what verified before the damage was imported.
    #[error("{damage}; of the records that could still be read: {report}")]
    Damaged {
        /// What is wrong with the file.
        damage: BundleFileError,
        /// What was imported nonetheless.
        report: ImportReport,
    },
    /// A record too large to write.
    #[error("cannot write the bundle: {0}")]
    TooLarge(BundleFileError),
    /// A path that is not absolute (a running node cannot know the caller's directory).
    #[error("bundle paths must be absolute, got {0}")]
    RelativePath(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A path that names a directory rather than a file.
    #[error("{0} is a directory, not a file name")]
    NotAFile(PathBuf),
    /// `--commons` names a commons that is neither in the bundle nor held.
    #[error("commons `{0}` is not in this bundle")]
    NotInBundle(String),
    /// `--commons` names a prefix shared by several commons of the bundle.
    #[error("`{0}` matches several commons of this bundle; give more of the id")]
    AmbiguousCommons(String),
    /// A summary would replace a file that is not a summary (a bundle, or anything else).
    #[error("{path} exists and is {what}, not a bundle summary; it was left as it is")]
    WouldOverwrite {
        /// The file.
        path: PathBuf,
        /// What it is: "a bundle", "another file".
        what: &'static str,
    },
}

impl From<BundleError> for NodeError {
    fn from(error: BundleError) -> Self {
        NodeError::Bundle(Box::new(error))
    }
}

/// The commons an import leaves out and their documents seen so far.
#[derive(Default)]
struct Skips {
    /// Each skipped commons' index in [`ImportReport::skipped`].
    commons: BTreeMap<CommonsId, usize>,
    /// Documents counted, so a genesis and its changes count once.
    docs: BTreeSet<DocId>,
}

impl Skips {
    /// Whether `doc` of `commons` is left out; counts it in `report` the first time.
    fn take(&mut self, report: &mut ImportReport, commons: &CommonsId, doc: DocId) -> bool {
        let Some(&index) = self.commons.get(commons) else {
            return false;
        };
        if self.docs.insert(doc) {
            report.skipped[index].documents += 1;
        }
        true
    }
}

/// A refused record's error as the import report shows it; this node's own refusals (its
/// block list, purged documents) start with their refusal kind, as `status` counts them.
fn refusal_text(error: &NodeError) -> String {
    let kind = crate::serve::ItemRefusal::of(error);
    match kind {
        crate::serve::ItemRefusal::AuthorBlockedLocally | crate::serve::ItemRefusal::Purged => {
            format!("{}: {error}", kind.kind())
        }
        _ => error.to_string(),
    }
}

/// The records in file order, except that each commons' charter records come right after its
/// commons record: the commons' other documents are admitted under its charter.
fn charter_first(records: &[Record]) -> Vec<&Record> {
    let mut out: Vec<&Record> = Vec::with_capacity(records.len());
    let mut rest: Vec<&Record> = Vec::new();
    let mut charter: Option<DocId> = None;
    for record in records {
        match record {
            Record::Commons(genesis) => {
                out.append(&mut rest);
                out.push(record);
                charter = Some(DocGenesis::charter(genesis.body.id(), genesis.body.creator).id());
            }
            Record::DocGenesis(genesis) if Some(genesis.body.id()) == charter => out.push(record),
            Record::Changes(payload) if Some(payload.doc) == charter => out.push(record),
            _ => rest.push(record),
        }
    }
    out.append(&mut rest);
    out
}

/// Whether a failure is the node's own (disk, store) rather than the record's.
fn is_local_failure(error: &NodeError) -> bool {
    matches!(error, NodeError::Store(_) | NodeError::Home(_))
}

impl Replicas {
    /// Writes a bundle of `commons` (all held when empty): everything, or with `for_summary`
    /// only what that summary's maker lacks.
    pub fn bundle_export(
        &mut self,
        commons: &[CommonsId],
        for_summary: Option<&Summary>,
    ) -> Result<(Vec<u8>, ExportReport), NodeError> {
        let mut chosen: BTreeSet<CommonsId> = if commons.is_empty() {
            self.commons_list()?.iter().map(|g| g.body.id()).collect()
        } else {
            commons.iter().copied().collect()
        };
        if let Some(summary) = for_summary {
            // Only what the summary's node holds or asked for: it must not be handed commons
            // it never chose (a format-1 summary does not say, and wants everything).
            chosen.retain(|id| summary.wants(id));
        }
        let mut report = ExportReport::default();
        let mut sections = Vec::new();
        let mut keys = BTreeMap::new();
        for id in chosen {
            let genesis = self
                .store()
                .commons(&id)?
                .ok_or_else(|| NodeError::UnknownCommons(id.to_string()))?;
            if self.privacy(&id) == crate::private::Privacy::Private {
                // Sealed, its genesis too: a lost stick shows only the commons id.
                keys.insert(id, hedgerow_protocol::private::bundle_key(&genesis.body));
            }
            let theirs: HashMap<DocId, &DocState> = for_summary
                .and_then(|s| s.commons(&id))
                .map(|c| c.docs.iter().map(|d| (d.doc, d)).collect())
                .unwrap_or_default();
            let mut docs = Vec::new();
            let mut ids = self.store().doc_ids(&id)?;
            ids.sort();
            // Hidden and retracted documents are not served, by bundle either.
            let withheld = self.withheld_in(&id);
            ids.retain(|doc| !withheld.contains(doc));
            for doc in ids {
                if self.is_hidden(&id, &doc) {
                    // Hidden by a steward: not served, by sync or by bundle.
                    continue;
                }
                match self.export_doc(&doc, theirs.get(&doc).copied())? {
                    Some((section, changes)) => {
                        report.documents += 1;
                        report.changes += changes;
                        docs.push(section);
                    }
                    None => report.up_to_date += 1,
                }
            }
            report.commons += 1;
            sections.push(CommonsSection { genesis, docs });
        }
        let bytes = encode_bundle_sealed(sections, &keys).map_err(BundleError::TooLarge)?;
        report.bytes = bytes.len();
        Ok((bytes, report))
    }

    /// What a node in state `theirs` (absent: lacks the document) lacks of `doc`, with the change count.
    fn export_doc(
        &mut self,
        doc: &DocId,
        theirs: Option<&DocState>,
    ) -> Result<Option<(DocSection, usize)>, NodeError> {
        if let Some(theirs) = theirs {
            let digest = self.store().summary(doc)?.map(|s| heads_digest(&s.heads));
            if digest == Some(theirs.digest) {
                return Ok(None);
            }
        }
        let replica = self.replica(doc)?;
        if replica.change_count() == 0 {
            // A genesis with no change is refused on import (as by a sync): nothing to carry.
            return Ok(None);
        }
        let clock: BTreeMap<ActorId, u64> = theirs
            .map(|t| {
                t.clock
                    .iter()
                    .map(|(actor, seq)| (ActorId::from(actor.as_slice()), *seq))
                    .collect()
            })
            .unwrap_or_default();
        let missing = replica.missing_for(&clock);
        let genesis = theirs.is_none().then(|| replica.genesis().clone());
        if missing.is_empty() && genesis.is_none() {
            return Ok(None);
        }
        let changes = if missing.is_empty() {
            None
        } else {
            let (changes, proofs) = replica.compact_for(&missing)?;
            Some(DocPayload {
                doc: *doc,
                genesis: None,
                changes,
                proofs: proofs.into_iter().map(|(h, p)| (h.0, p)).collect(),
            })
        };
        let section = DocSection {
            doc: *doc,
            genesis,
            changes,
        };
        Ok(Some((section, missing.len())))
    }

    /// Writes a summary of every commons and document held, for another node's `export --for`.
    pub fn bundle_summary(&mut self) -> Result<Vec<u8>, NodeError> {
        Ok(encode_summary(&self.summary_state()?))
    }

    fn summary_state(&mut self) -> Result<Summary, NodeError> {
        let mut summary = Summary {
            names_wants: true,
            ..Summary::default()
        };
        for genesis in self.commons_list()? {
            let commons = genesis.body.id();
            let mut docs = Vec::new();
            for doc in self.store().doc_ids(&commons)? {
                let replica = self.replica(&doc)?;
                let heads: Vec<[u8; 32]> = replica.heads().iter().map(|h| h.0).collect();
                docs.push(DocState {
                    doc,
                    digest: heads_digest(&heads),
                    clock: replica
                        .clock()
                        .into_iter()
                        .map(|(actor, seq)| (actor.to_bytes().to_vec(), seq))
                        .collect(),
                });
            }
            summary.commons.push(CommonsState { commons, docs });
        }
        for wanted in self.store().wanted_commons()? {
            if summary.commons(&wanted).is_none() {
                summary.pending.push(wanted);
            }
        }
        Ok(summary)
    }

    /// Verifies and stores the records of a bundle file that belong to commons this node holds
    /// or `choice` names; the rest is reported as skipped. Fails (after keeping what verified)
    /// when the file is damaged. Durable when it returns.
    pub fn bundle_import(
        &mut self,
        bytes: &[u8],
        choice: &ImportChoice,
    ) -> Result<ImportReport, NodeError> {
        let mut report = ImportReport::default();
        let decoded = self.open_sealed(decode_bundle(bytes), &mut report)?;
        let join = self.resolve_in_bundle(&decoded, &choice.join)?;
        let mut geneses: BTreeMap<DocId, Signed<DocGenesis>> = BTreeMap::new();
        let mut skips = Skips::default();
        // The commons whose section the records are in (the documents after a commons record).
        let mut section: Option<CommonsId> = None;
        let outcome = (|| {
            for record in charter_first(&decoded.records) {
                match record {
                    Record::Commons(genesis) => {
                        section = Some(genesis.body.id());
                        if let Some(index) =
                            self.import_commons(genesis, &join, choice.all, &mut report)?
                        {
                            skips.commons.insert(genesis.body.id(), index);
                        }
                    }
                    Record::DocGenesis(genesis) => {
                        if !skips.take(&mut report, &genesis.body.commons, genesis.body.id()) {
                            geneses.insert(genesis.body.id(), genesis.clone());
                        }
                    }
                    Record::Changes(payload) => {
                        let genesis = geneses
                            .remove(&payload.doc)
                            .or_else(|| payload.genesis.clone());
                        let commons = match &genesis {
                            Some(g) => Some(g.body.commons),
                            None => match self.store().doc_genesis(&payload.doc)? {
                                Some(held) => Some(held.body.commons),
                                None => section,
                            },
                        };
                        if commons.is_some_and(|c| skips.take(&mut report, &c, payload.doc)) {
                            continue;
                        }
                        self.import_doc(&payload.doc, genesis, Some(payload), &mut report)?;
                    }
                    // Opened or left out by `open_sealed` before this loop.
                    Record::Sealed { .. } => {}
                }
            }
            // Documents that travelled without changes (rare: a genesis whose first change was held back).
            for (doc, genesis) in std::mem::take(&mut geneses) {
                self.import_doc(&doc, Some(genesis), None, &mut report)?;
            }
            Ok::<(), NodeError>(())
        })();
        // What was stored before a local failure or the damage is made durable either way.
        self.commit()?;
        outcome?;
        match decoded.damage {
            None => Ok(report),
            Some(source) if decoded.records.is_empty() => {
                Err(BundleError::Unreadable(source).into())
            }
            Some(damage) => Err(BundleError::Damaged { damage, report }.into()),
        }
    }

    /// Opens the sealed records of private commons this node holds (their genesis gives the
    /// key); the records of one it does not hold are left out and reported as `encrypted`,
    /// and one that does not open with the key is rejected.
    fn open_sealed(
        &mut self,
        decoded: DecodedBundle,
        report: &mut ImportReport,
    ) -> Result<DecodedBundle, NodeError> {
        let mut records = Vec::with_capacity(decoded.records.len());
        let mut keys: BTreeMap<CommonsId, Option<[u8; 32]>> = BTreeMap::new();
        for record in decoded.records {
            let Record::Sealed { commons, .. } = &record else {
                records.push(record);
                continue;
            };
            let commons = *commons;
            let key = match keys.get(&commons) {
                Some(key) => *key,
                None => {
                    let key = self
                        .store()
                        .commons(&commons)?
                        .map(|g| hedgerow_protocol::private::bundle_key(&g.body));
                    keys.insert(commons, key);
                    key
                }
            };
            let Some(key) = key else {
                let id = commons.to_string();
                match report.encrypted.iter_mut().find(|e| e.id == id) {
                    Some(entry) => entry.records += 1,
                    None => report.encrypted.push(EncryptedCommons { id, records: 1 }),
                }
                continue;
            };
            match record.open(&key) {
                Ok(opened) => records.push(opened),
                Err(e) => report.rejected.push(RejectedRecord {
                    id: commons.to_string(),
                    kind: "sealed".to_string(),
                    error: e.to_string(),
                }),
            }
        }
        Ok(DecodedBundle {
            records,
            damage: decoded.damage,
        })
    }

    /// The commons `given` (ids, prefixes or names, as [`crate::resolve`] reads them) name
    /// among the bundle's and the held ones; in a damaged bundle a name found nowhere may lie
    /// past the damage, which is reported instead.
    fn resolve_in_bundle(
        &self,
        decoded: &DecodedBundle,
        given: &[String],
    ) -> Result<BTreeSet<CommonsId>, NodeError> {
        use crate::resolve::{describe, pick, Candidate, Pick};
        let mut known: Vec<Candidate<CommonsId>> = Vec::new();
        let bundled = decoded.records.iter().filter_map(|r| match r {
            Record::Commons(g) => Some(g.clone()),
            _ => None,
        });
        for genesis in bundled.chain(self.commons_list()?) {
            let id = genesis.body.id();
            if !known.iter().any(|c| c.id == id) {
                known.push(Candidate {
                    id,
                    name: Some(genesis.body.name.clone()),
                });
            }
        }
        let mut chosen = BTreeSet::new();
        for text in given {
            let text = text.trim();
            match pick(text, &known) {
                Pick::One(id) => chosen.insert(id),
                Pick::TooShort => return Err(NodeError::PrefixTooShort(text.to_string())),
                Pick::Nothing if decoded.damage.is_some() => false,
                Pick::Nothing => return Err(BundleError::NotInBundle(text.to_string()).into()),
                Pick::Several(several) => {
                    return Err(NodeError::Ambiguous {
                        what: "commons",
                        prefix: text.to_string(),
                        candidates: describe(&several),
                    })
                }
            };
        }
        Ok(chosen)
    }

    /// Takes in a commons record as the user chose; returns its index in `report.skipped`
    /// when it is left out.
    fn import_commons(
        &mut self,
        genesis: &Signed<CommonsGenesis>,
        join: &BTreeSet<CommonsId>,
        all: bool,
        report: &mut ImportReport,
    ) -> Result<Option<usize>, NodeError> {
        let id = genesis.body.id();
        // A commons the user asked to join (`commons join` before any peer had it) is as
        // chosen as one named on the command line: a USB stick is how it often arrives.
        let chosen = join.contains(&id) || self.store().is_wanted(&id)?;
        if self.holds(&id)? {
            if chosen {
                // Named explicitly: a commons held without our profile is joined now.
                self.join_commons(genesis)?;
            }
            return Ok(None);
        }
        if !chosen && !all {
            report.skipped.push(SkippedCommons {
                id: id.to_string(),
                name: genesis.body.name.clone(),
                documents: 0,
            });
            return Ok(Some(report.skipped.len() - 1));
        }
        let taken = if chosen {
            self.join_commons(genesis)
        } else {
            self.hold_commons(genesis)
        };
        match taken {
            Ok(id) if chosen => {
                self.store().unwant_commons(&id)?;
                report.commons_joined.push(id.to_string());
            }
            Ok(id) => report.commons_added.push(id.to_string()),
            Err(e) if is_local_failure(&e) => return Err(e),
            Err(e) => report.rejected.push(RejectedRecord {
                id: id.to_string(),
                kind: "commons".into(),
                error: e.to_string(),
            }),
        }
        Ok(None)
    }

    /// Imports one document's genesis and/or changes; a refusal is recorded, not returned.
    fn import_doc(
        &mut self,
        doc: &DocId,
        genesis: Option<Signed<DocGenesis>>,
        payload: Option<&DocPayload>,
        report: &mut ImportReport,
    ) -> Result<(), NodeError> {
        let held = self.store().doc_genesis(doc)?;
        let kind = held
            .as_ref()
            .or(genesis.as_ref())
            .map(|g| g.body.kind.as_str())
            .unwrap_or("document");
        let was_held = held.is_some();
        // A crafted file can carry bytes that make automerge panic or loop; decoding screens
        // and guards them (`hedgerow_protocol::compact`), so such a record is refused alone.
        let imported = self.import_doc_checked(doc, was_held, genesis, payload);
        for (refused, rejection) in self.take_partly_refused() {
            // The rest of the document was stored; the blocked author's part was not.
            report.rejected.push(RejectedRecord {
                id: refused.to_string(),
                kind: kind.to_string(),
                error: refusal_text(&NodeError::Rejected(rejection)),
            });
        }
        match imported {
            Ok(0) if was_held => report.known += 1,
            Ok(changes) => {
                report.new += 1;
                report.changes += changes;
            }
            Err(e) if is_local_failure(&e) => return Err(e),
            Err(e) => {
                if let NodeError::NotAdmitted(admission) = &e {
                    // What the charter admitted of the record is stored.
                    if admission.stored > 0 {
                        report.new += 1;
                        report.changes += admission.stored;
                    }
                }
                report.rejected.push(RejectedRecord {
                    id: doc.to_string(),
                    kind: kind.to_string(),
                    error: refusal_text(&e),
                });
            }
        }
        Ok(())
    }

    fn import_doc_checked(
        &mut self,
        doc: &DocId,
        held: bool,
        genesis: Option<Signed<DocGenesis>>,
        payload: Option<&DocPayload>,
    ) -> Result<usize, NodeError> {
        match held {
            true => match payload {
                None => Ok(0),
                Some(p) => self.ingest_compact(None, doc, &p.changes, p.proofs.clone()),
            },
            false => match genesis {
                // The one path for a new document (`Replicas::ingest_compact`): verified in
                // memory, stored in one transaction only if a change verifies.
                Some(genesis) => match payload {
                    Some(p) => {
                        self.ingest_compact(Some(&genesis), doc, &p.changes, p.proofs.clone())
                    }
                    None => {
                        self.ingest_compact(Some(&genesis), doc, &CompactChanges::none(), Vec::new())
                    }
                },
                None => Err(NodeError::Invalid(format!(
                    "the bundle carries changes of document {doc} but not its genesis record, and this node does not hold it"
                ))),
            },
        }
    }
}

// ---- the files, for the command API (the node reads and writes them itself, so this
// works the same whether the CLI opened the store or talks to a running `serve`) ----

/// `bundle export`: writes a bundle of `commons` (ids or prefixes; all when empty) to `path`,
/// only what the maker of the summary at `for_summary` lacks when given.
pub fn export_to_file(
    replicas: &mut Replicas,
    path: &Path,
    commons: &[String],
    for_summary: Option<&Path>,
) -> Result<ExportReport, NodeError> {
    absolute(path)?;
    let summary = match for_summary {
        Some(summary_path) => {
            absolute(summary_path)?;
            let bytes = read_file(summary_path)?;
            Some(
                decode_summary(&bytes).map_err(|error| BundleError::Summary {
                    path: summary_path.to_path_buf(),
                    error,
                })?,
            )
        }
        None => None,
    };
    let ids = commons
        .iter()
        .map(|c| replicas.resolve_commons(Some(c)))
        .collect::<Result<Vec<_>, _>>()?;
    let (bytes, report) = replicas.bundle_export(&ids, summary.as_ref())?;
    write_atomic(path, &bytes)?;
    Ok(report)
}

/// `bundle summary`: writes what this node holds to `path`. An existing file there is replaced
/// only if it is a summary (an older one of this node, typically) or empty, or with `force`:
/// a bundle carried home on the same stick must not be lost to a mistyped name.
pub fn summary_to_file(
    replicas: &mut Replicas,
    path: &Path,
    force: bool,
) -> Result<crate::reply::BundleSummaryWritten, NodeError> {
    absolute(path)?;
    if !force {
        refuse_to_replace(path)?;
    }
    let summary = replicas.summary_state()?;
    // The blobs held, so an export `--with-files` for this node leaves them out.
    let blobs: Vec<_> = replicas
        .blob_store()
        .list()?
        .into_iter()
        .map(|(hash, _)| hash)
        .collect();
    let bytes = hedgerow_protocol::bundle_file::encode_summary_with_blobs(&summary, &blobs);
    write_atomic(path, &bytes)?;
    Ok(crate::reply::BundleSummaryWritten {
        path: path.display().to_string(),
        commons: summary.commons.len(),
        pending: summary.pending.iter().map(ToString::to_string).collect(),
        documents: summary.doc_count(),
        bytes: bytes.len(),
    })
}

/// `bundle import`: verifies and stores the bundle at `path`, the commons held and those `choice` names.
pub fn import_from_file(
    replicas: &mut Replicas,
    path: &Path,
    choice: &ImportChoice,
) -> Result<ImportReport, NodeError> {
    absolute(path)?;
    let bytes = read_file(path)?;
    replicas.bundle_import(&bytes, choice)
}

/// Refuses a path holding a file that is neither empty nor a summary (a directory is left to
/// the writer, which names it).
fn refuse_to_replace(path: &Path) -> Result<(), NodeError> {
    use std::io::Read;
    let mut head = Vec::new();
    match std::fs::File::open(path) {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
            let want = hedgerow_protocol::bundle_file::SUMMARY_MAGIC.len() as u64;
            file.take(want)
                .read_to_end(&mut head)
                .map_err(|error| BundleError::Io {
                    path: path.to_path_buf(),
                    error,
                })?;
        }
        _ => return Ok(()),
    }
    if head.is_empty() || head == hedgerow_protocol::bundle_file::SUMMARY_MAGIC {
        return Ok(());
    }
    let what = if head.starts_with(hedgerow_protocol::bundle_file::BUNDLE_MAGIC) {
        "a bundle"
    } else {
        "another file"
    };
    Err(BundleError::WouldOverwrite {
        path: path.to_path_buf(),
        what,
    }
    .into())
}

pub(crate) fn absolute(path: &Path) -> Result<(), NodeError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(BundleError::RelativePath(path.to_path_buf()).into())
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |error| {
        BundleError::Io {
            path: path.to_path_buf(),
            error,
        }
        .into()
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, NodeError> {
    std::fs::read(path).map_err(io_error(path))
}

/// Writes `bytes` to `path` atomically (see [`crate::home::write_file_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    if path.file_name().is_none() {
        return Err(BundleError::NotAFile(path.to_path_buf()).into());
    }
    crate::home::write_file_atomic(path, bytes, 0o666).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::{Home, LocalProfile};
    use hedgerow_protocol::bundle_file::encode_records;
    use hedgerow_protocol::schema::{DocKind, NewDocument};

    /// A document (`save()` bytes with one byte changed and the checksum fixed, found by
    /// fuzzing) on which automerge 0.12's parser panics.
    const PANICKING_DOCUMENT: &[u8] =
        include_bytes!("../../protocol/tests/vectors/document-that-panics-automerge.bin");

    fn node(dir: &Path) -> Replicas {
        let profile = LocalProfile {
            name: "Alice".into(),
            ..LocalProfile::default()
        };
        let home = Home::init(dir, &profile).expect("home");
        Replicas::open(&home).expect("store")
    }

    #[test]
    fn a_record_that_makes_automerge_panic_is_refused_not_fatal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut replicas = node(dir.path());
        let commons = replicas.create_commons("Farm Hack", "").unwrap();
        let new = NewDocument {
            kind: DocKind::Design,
            title: "Roller crimper".into(),
            note_target: None,
            note_kind: None,
        };
        let doc = replicas.create_doc(commons, &new, &[]).unwrap();
        let genesis = replicas.store().commons(&commons).unwrap().unwrap();
        let replica = replicas.replica(&doc).unwrap();
        let proofs = replica.covering_proofs(&replica.heads());
        let bytes = encode_records(&[
            Record::Commons(genesis),
            Record::Changes(DocPayload {
                doc,
                genesis: None,
                changes: CompactChanges::Document(PANICKING_DOCUMENT.to_vec()),
                proofs: proofs.into_iter().map(|(h, p)| (h.0, p)).collect(),
            }),
        ])
        .unwrap();
        let report = replicas
            .bundle_import(&bytes, &ImportChoice::default())
            .expect("an intact file");
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert_eq!(report.rejected[0].id, doc.to_string());
        assert!(
            report.rejected[0].error.contains("parser panicked"),
            "{report:?}"
        );
        assert!(replicas.verify(false).unwrap().is_clean());
        assert_eq!(replicas.replica(&doc).unwrap().change_count(), 1);
    }

    /// A bundle takes a new document through the same path as a sync: a genesis record with
    /// no change is refused as an empty document and nothing of it is stored (this path
    /// once stored it), just as `ingest_payload` refuses it from a peer.
    #[test]
    fn a_genesis_alone_is_refused_as_by_a_sync() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut alice = node(&dir.path().join("alice"));
        let mut ben = node(&dir.path().join("ben"));
        let commons = alice.create_commons("Farm Hack", "").unwrap();
        let new = NewDocument::new(DocKind::Design, "Roller crimper");
        let doc = alice.create_doc(commons, &new, &[]).unwrap();
        let commons_genesis = alice.store().commons(&commons).unwrap().unwrap();
        let genesis = alice.store().doc_genesis(&doc).unwrap().unwrap();
        ben.hold_commons(&commons_genesis).unwrap();
        let bytes = encode_records(&[
            Record::Commons(commons_genesis),
            Record::DocGenesis(genesis.clone()),
        ])
        .unwrap();
        let report = ben
            .bundle_import(&bytes, &ImportChoice::default())
            .expect("an intact file");
        assert_eq!((report.new, report.rejected.len()), (0, 1), "{report:?}");
        let payload = DocPayload {
            doc,
            genesis: Some(genesis),
            changes: CompactChanges::none(),
            proofs: Vec::new(),
        };
        let by_sync = ben.ingest_payload(&commons, &payload).unwrap_err();
        assert!(
            matches!(by_sync, NodeError::EmptyDocument { .. }),
            "{by_sync}"
        );
        assert_eq!(report.rejected[0].error, by_sync.to_string());
        assert!(ben.store().doc_genesis(&doc).unwrap().is_none());
    }
}
