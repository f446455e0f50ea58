//! Files on documents: attach (store the bytes, then sign the description), list, find,
//! detach, and the store-wide views `verify` and `gc` need (which blobs documents and
//! releases refer to).

use super::store::{BlobCheck, BlobError, BlobStore};
use crate::api::{Reply, Request};
use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::attachment::{self, BlobHash, FileEntry, NewFile};
use hedgerow_protocol::schema::{facts, DocKind, Edit};
use hedgerow_protocol::{CommonsId, DocId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Default largest file one may attach: 256 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Default most bytes of distinct files the documents of one commons may refer to: 4 GiB.
pub const DEFAULT_COMMONS_QUOTA_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Attachment limits, `files` in `config.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLimits {
    /// Largest file one may attach, in bytes.
    #[serde(default = "default_max_file")]
    pub max_file_bytes: u64,
    /// Most bytes of distinct files the documents of one commons may refer to.
    #[serde(default = "default_quota")]
    pub commons_quota_bytes: u64,
    /// Most blob responses open to one peer at once; more hear `Busy`.
    #[serde(default = "default_serve_streams")]
    pub serve_streams_per_peer: usize,
    /// Most blob response bytes to one peer per window; more hear `Busy`.
    #[serde(default = "default_serve_bytes")]
    pub serve_bytes_per_peer: u64,
    /// The window of `serve_bytes_per_peer`, in seconds.
    #[serde(default = "default_serve_window")]
    pub serve_window_secs: u64,
}

fn default_serve_streams() -> usize {
    crate::serve::blobs::DEFAULT_STREAMS_PER_PEER
}

fn default_serve_bytes() -> u64 {
    crate::serve::blobs::DEFAULT_BYTES_PER_PEER
}

fn default_serve_window() -> u64 {
    crate::serve::blobs::DEFAULT_WINDOW_SECS
}

impl FileLimits {
    /// The per-peer serving limits these set.
    pub fn serve_limits(&self) -> crate::serve::blobs::ServeLimits {
        crate::serve::blobs::ServeLimits {
            streams_per_peer: self.serve_streams_per_peer,
            bytes_per_peer: self.serve_bytes_per_peer,
            window: std::time::Duration::from_secs(self.serve_window_secs.max(1)),
        }
    }
}

fn default_max_file() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

fn default_quota() -> u64 {
    DEFAULT_COMMONS_QUOTA_BYTES
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            commons_quota_bytes: DEFAULT_COMMONS_QUOTA_BYTES,
            serve_streams_per_peer: default_serve_streams(),
            serve_bytes_per_peer: default_serve_bytes(),
            serve_window_secs: default_serve_window(),
        }
    }
}

/// Why a file command was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file would take the commons past its quota.
    #[error("attaching {name} ({size} bytes) would take commons {commons} to {total} bytes of files, over its quota of {quota} (config.json `files.commons_quota_bytes`); nothing was stored")]
    OverQuota {
        /// The file's name.
        name: String,
        /// Its size.
        size: u64,
        /// The commons.
        commons: CommonsId,
        /// What its documents would then refer to.
        total: u64,
        /// The quota.
        quota: u64,
    },
    /// A name or hash prefix that matches several files.
    #[error("`{given}` matches {count} files; give more characters of the hash (`design files ID` lists them)")]
    Ambiguous {
        /// What was given.
        given: String,
        /// How many matched.
        count: usize,
    },
    /// `--with-files` for a private commons whose documents have files: the blob section of a
    /// bundle is not sealed, so its files would be readable on a lost stick.
    #[error("commons {commons} is private and bundles cannot seal its files yet (they would be readable on a lost stick): export it without --with-files (its documents are sealed), or name only open commons with --commons; members get its files over the network")]
    PrivateFiles {
        /// The private commons.
        commons: CommonsId,
    },
    /// A kind of document that carries no files.
    #[error("{kind} documents carry no files; attach to a design or a note")]
    NoFiles {
        /// The kind.
        kind: DocKind,
    },
}

/// One attached file as listed, with whether this node holds its bytes.
///
/// Serialised as the entry's fields plus `held`, with `attached_at` as RFC 3339 like every
/// time in a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    /// The file's description, as the document records it.
    pub entry: FileEntry,
    /// Whether the blob is in this node's store.
    pub held: bool,
}

impl Serialize for FileRow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = serde_json::to_value(&self.entry).map_err(S::Error::custom)?;
        value["attached_at"] =
            serde_json::Value::String(crate::times::rfc3339(self.entry.attached_at));
        value["held"] = serde_json::Value::Bool(self.held);
        value.serialize(serializer)
    }
}

/// What `design attach` / `note attach` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attached {
    /// The document.
    pub id: DocId,
    /// The signed change, null when the same file was already attached under that name.
    pub change: Option<String>,
    /// The file's name.
    pub name: String,
    /// Its BLAKE3 hash.
    pub hash: BlobHash,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// Whether its bytes were new to the blob store (false: stored once already).
    pub stored: bool,
}

/// What `design detach` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Detached {
    /// The document.
    pub id: DocId,
    /// The signed change.
    pub change: String,
    /// The file's name.
    pub name: String,
    /// Its hash (the blob stays until `hedgerow gc`).
    pub hash: BlobHash,
}

/// Runs a file request ([`Request::FileAttach`] and the rest) against the replicas.
pub fn execute(replicas: &mut Replicas, request: Request) -> Result<Reply, NodeError> {
    match request {
        Request::FileAttach {
            id,
            kind,
            path,
            role,
            step,
            caption,
        } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            let path = Path::new(&path);
            crate::bundle::absolute(path)?;
            Ok(Reply::Attached(replicas.attach_file(
                &id,
                path,
                role.as_deref(),
                step,
                caption,
            )?))
        }
        Request::FileList { id, kind, version } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            Ok(Reply::Files(replicas.doc_files(&id, version.as_deref())?))
        }
        Request::FileFind {
            id,
            kind,
            file,
            version,
        } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            Ok(Reply::File(replicas.find_file(
                &id,
                &file,
                version.as_deref(),
            )?))
        }
        Request::FileDetach { id, kind, file } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            let (row, change) = replicas.detach_file(&id, &file)?;
            Ok(Reply::Detached(Detached {
                id,
                change,
                name: row.entry.name,
                hash: row.entry.hash,
            }))
        }
        Request::Gc => Ok(Reply::Gc(replicas.gc_blobs()?)),
        other => Err(NodeError::Invalid(format!(
            "`{}` is not a file request",
            serde_json::to_value(&other)
                .ok()
                .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
                .unwrap_or_default()
        ))),
    }
}

/// What `hedgerow gc` freed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Blobs removed (no document or release refers to them), with their sizes.
    pub removed: Vec<GcBlob>,
    /// Partial blobs removed (nothing refers to them any more).
    pub partials_removed: usize,
    /// Bytes freed in all.
    pub bytes_freed: u64,
    /// Blobs kept.
    pub kept: usize,
}

/// One blob `gc` removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GcBlob {
    /// Its hash.
    pub hash: BlobHash,
    /// Its size.
    pub size: u64,
}

/// Who refers to one blob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referrers {
    /// The size documents record for it.
    pub size: u64,
    /// Documents (and the names they give it), current state or a release.
    pub docs: BTreeSet<(DocId, String)>,
    /// The commons those documents are in.
    pub commons: BTreeSet<CommonsId>,
}

impl Referrers {
    /// `plan.pdf in design 5Hq...`, for messages.
    pub fn describe(&self) -> String {
        self.docs
            .iter()
            .take(3)
            .map(|(doc, name)| format!("{name} in {doc}"))
            .collect::<Vec<_>>()
            .join(", ")
            + if self.docs.len() > 3 { ", ..." } else { "" }
    }
}

/// The limits of the home at `root` (defaults when `config.json` is absent or says nothing).
pub fn limits_at(root: &Path) -> Result<FileLimits, NodeError> {
    Ok(crate::home::read_config(root)?.files)
}

impl Replicas {
    /// This home's blob store.
    pub fn blob_store(&self) -> BlobStore {
        BlobStore::new(&self.home_root)
    }

    /// Attaches the file at `path` to document `id`: its bytes into the blob store (hashed while
    /// copied, refused over the per-file limit or the commons' quota), then its description as
    /// one signed change. On any error the document is unchanged and a blob stored for it is
    /// removed again.
    pub fn attach_file(
        &mut self,
        id: &DocId,
        path: &Path,
        role: Option<&str>,
        step: Option<usize>,
        caption: Option<String>,
    ) -> Result<Attached, NodeError> {
        let (kind, commons) = {
            let replica = self.replica(id)?;
            (replica.kind(), replica.genesis().body.commons)
        };
        if !attachment::carries_files(kind) {
            return Err(FileError::NoFiles { kind }.into());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let name =
            attachment::check_name(&name).map_err(hedgerow_protocol::schema::EditError::from)?;
        let role = attachment::check_role(role.unwrap_or(attachment::DEFAULT_ROLE))
            .map_err(hedgerow_protocol::schema::EditError::from)?;
        let limits = limits_at(&self.home_root)?;
        let store = self.blob_store();
        let used = self.commons_file_bytes(&commons)?;
        let used_total: u64 = used.values().sum();
        // A file the commons' documents already use costs its quota nothing more.
        let quota_check = |size: u64, hash: &BlobHash| -> Result<(), FileError> {
            let total = used_total + if used.contains_key(hash) { 0 } else { size };
            if total > limits.commons_quota_bytes {
                return Err(FileError::OverQuota {
                    name: name.clone(),
                    size,
                    commons,
                    total,
                    quota: limits.commons_quota_bytes,
                });
            }
            Ok(())
        };
        // Refused from its size, before a byte is read or copied, unless a file of the same
        // size is used already (it may be that file, which costs nothing: hashing tells).
        if let Ok(meta) = std::fs::metadata(path) {
            let size = meta.len();
            if meta.is_file() && size > limits.max_file_bytes {
                return Err(BlobError::TooLarge {
                    what: path.display().to_string(),
                    max: limits.max_file_bytes,
                }
                .into());
            }
            if meta.is_file() && !used.values().any(|s| *s == size) {
                quota_check(size, &BlobHash([0; 32]))?;
            }
        }
        let added = store.add_file(path, limits.max_file_bytes)?;
        let undo = |store: &BlobStore| {
            if added.new {
                let _ = store.remove(&added.hash);
            }
        };
        if let Err(e) = quota_check(added.size, &added.hash) {
            undo(&store);
            return Err(e.into());
        }
        let file = NewFile {
            name: name.clone(),
            media_type: attachment::media_type_for(&name).to_string(),
            size: added.size,
            hash: added.hash,
            role: role.to_string(),
            caption,
            step,
        };
        let media_type = file.media_type.clone();
        match self.edit_doc(id, &[Edit::AddFile { file }]) {
            Ok(change) => Ok(Attached {
                id: *id,
                change: change.map(|c| c.to_string()),
                name,
                hash: added.hash,
                size: added.size,
                media_type,
                stored: added.new,
            }),
            Err(e) => {
                undo(&store);
                Err(e)
            }
        }
    }

    /// The distinct files the documents of `commons` refer to now, with their sizes.
    pub(crate) fn commons_file_bytes(
        &mut self,
        commons: &CommonsId,
    ) -> Result<BTreeMap<BlobHash, u64>, NodeError> {
        let mut seen = BTreeMap::new();
        for doc in self.store().doc_ids(commons)? {
            for entry in attachment::files(self.replica(&doc)?.doc(), None) {
                seen.insert(entry.hash, entry.size);
            }
        }
        Ok(seen)
    }

    /// The files of document `id`, now or at release `version` (designs).
    pub fn doc_files(
        &mut self,
        id: &DocId,
        version: Option<&str>,
    ) -> Result<Vec<FileRow>, NodeError> {
        self.refuse_withheld(id)?;
        let replica = self.replica(id)?;
        let entries = match version {
            None => attachment::files(replica.doc(), None),
            Some(version) => {
                let heads = facts::release_heads(replica.doc(), version).ok_or_else(|| {
                    NodeError::UnknownRelease {
                        doc: *id,
                        version: version.to_string(),
                    }
                })?;
                attachment::files(replica.doc(), Some(&heads))
            }
        };
        let store = self.blob_store();
        Ok(entries
            .into_iter()
            .map(|entry| FileRow {
                held: store.has(&entry.hash),
                entry,
            })
            .collect())
    }

    /// The one file of `id` (at `version`) named `given`, or whose hash starts with it.
    pub fn find_file(
        &mut self,
        id: &DocId,
        given: &str,
        version: Option<&str>,
    ) -> Result<FileRow, NodeError> {
        let rows = self.doc_files(id, version)?;
        let given_lower = given.trim().to_ascii_lowercase();
        let by_name: Vec<&FileRow> = rows
            .iter()
            .filter(|r| r.entry.name == given.trim())
            .collect();
        let picked: Vec<&FileRow> = if by_name.is_empty() && given_lower.len() >= 4 {
            rows.iter()
                .filter(|r| r.entry.hash.to_hex().starts_with(&given_lower))
                .collect()
        } else {
            by_name
        };
        let distinct: BTreeSet<(&str, BlobHash)> = picked
            .iter()
            .map(|r| (r.entry.name.as_str(), r.entry.hash))
            .collect();
        match (picked.first(), distinct.len()) {
            (Some(row), 1) => Ok((*row).clone()),
            (None, _) => Err(hedgerow_protocol::schema::EditError::from(
                attachment::AttachmentError::NoSuchFile {
                    given: given.to_string(),
                },
            )
            .into()),
            (_, count) => Err(FileError::Ambiguous {
                given: given.to_string(),
                count,
            }
            .into()),
        }
    }

    /// Removes a file (by name or hash prefix) from document `id` as one signed change; its
    /// blob stays until `gc` finds nothing referring to it.
    pub fn detach_file(&mut self, id: &DocId, given: &str) -> Result<(FileRow, String), NodeError> {
        let row = self.find_file(id, given, None)?;
        let change = self
            .edit_doc(
                id,
                &[Edit::RemoveFile {
                    name: row.entry.name.clone(),
                    hash: row.entry.hash,
                }],
            )?
            .ok_or_else(|| {
                NodeError::Invalid(format!("detaching {} changed nothing", row.entry.name))
            })?;
        Ok((row, change.to_string()))
    }

    /// Every blob a document refers to, now or at one of a design's releases, with who refers
    /// to it (`gc` keeps these, `verify` checks them, bundles carry them).
    pub fn referenced_blobs(
        &mut self,
        commons: Option<&[CommonsId]>,
    ) -> Result<BTreeMap<BlobHash, Referrers>, NodeError> {
        self.collect_references(commons, false)
    }

    /// [`Self::referenced_blobs`]; with `skip_unreadable`, a document that cannot be read is
    /// left out instead of failing (for `verify`, which names that damage itself; never for
    /// `gc`, which would then free what that document uses).
    fn collect_references(
        &mut self,
        commons: Option<&[CommonsId]>,
        skip_unreadable: bool,
    ) -> Result<BTreeMap<BlobHash, Referrers>, NodeError> {
        let chosen: Vec<CommonsId> = match commons {
            Some(chosen) => chosen.to_vec(),
            None => self
                .store()
                .all_commons()?
                .iter()
                .map(|g| g.body.id())
                .collect(),
        };
        let mut out: BTreeMap<BlobHash, Referrers> = BTreeMap::new();
        for commons in chosen {
            for doc in self.store().doc_ids(&commons)? {
                let replica = match self.replica(&doc) {
                    Ok(replica) => replica,
                    Err(_) if skip_unreadable => continue,
                    Err(e) => return Err(e),
                };
                if !attachment::carries_files(replica.kind()) {
                    continue;
                }
                let mut entries = attachment::files(replica.doc(), None);
                for version in release_versions(replica.doc()) {
                    if let Some(heads) = facts::release_heads(replica.doc(), &version) {
                        entries.extend(attachment::files(replica.doc(), Some(&heads)));
                    }
                }
                for entry in entries {
                    let referrers = out.entry(entry.hash).or_default();
                    referrers.size = entry.size;
                    referrers.docs.insert((doc, entry.name));
                    referrers.commons.insert(commons);
                }
            }
        }
        Ok(out)
    }

    /// Removes blobs no document or release refers to, and partial blobs of them, and copies
    /// a crash left unfinished.
    pub fn gc_blobs(&mut self) -> Result<GcReport, NodeError> {
        let referenced = self.referenced_blobs(None)?;
        let store = self.blob_store();
        let mut report = GcReport::default();
        for (hash, size) in store.list()? {
            if referenced.contains_key(&hash) {
                report.kept += 1;
                continue;
            }
            if store.remove(&hash)? {
                report.bytes_freed += size;
                report.removed.push(GcBlob { hash, size });
            }
        }
        for hash in store.partials()? {
            if !referenced.contains_key(&hash) {
                report.bytes_freed += store.remove_partial(&hash)?;
                report.partials_removed += 1;
            }
        }
        report.bytes_freed += store.remove_stale_temps()?;
        report.bytes_freed += crate::serve::remove_stale_outboards(&store);
        Ok(report)
    }

    /// Checks every blob documents refer to that this node holds (`quick`: sizes only), as
    /// `verify` problems naming the blob and the documents that use it; and counts them.
    pub(crate) fn verify_blobs(
        &mut self,
        quick: bool,
        report: &mut crate::verify::VerifyReport,
    ) -> Result<(), NodeError> {
        let referenced = match self.collect_references(None, true) {
            Ok(referenced) => referenced,
            // The store itself is unreadable: `verify` has named that already.
            Err(_) if !report.problems.is_empty() => return Ok(()),
            Err(e) => return Err(e),
        };
        let store = self.blob_store();
        for (hash, referrers) in &referenced {
            let found = store.check(hash, quick, Some(referrers.size))?;
            let damage = match found {
                BlobCheck::Sound => {
                    report.blobs.checked += 1;
                    report.blobs.bytes += referrers.size;
                    continue;
                }
                // Not held: the transfer fetches it (or a bundle brings it); not damage.
                BlobCheck::Missing => {
                    report.blobs.missing += 1;
                    continue;
                }
                BlobCheck::WrongSize { size } => {
                    format!(
                        "is {size} bytes on disk, but documents record {}",
                        referrers.size
                    )
                }
                BlobCheck::Damaged { found } => {
                    format!(
                        "does not hash to its name (its bytes hash to {})",
                        found.short()
                    )
                }
            };
            report.blobs.checked += 1;
            report.problems.push(crate::verify::Problem::new(
                crate::verify::ProblemKind::DamagedBlob,
                format!(
                    "blob {hash} ({}) at {} {damage}",
                    referrers.describe(),
                    store.path(hash).display()
                ),
            ));
        }
        Ok(())
    }
}

/// The version names of a design's releases.
fn release_versions<R: hedgerow_protocol::automerge::ReadDoc>(doc: &R) -> Vec<String> {
    use hedgerow_protocol::automerge::{ObjType, Value, ROOT};
    match doc.get(ROOT, "releases") {
        Ok(Some((Value::Object(ObjType::Map), releases))) => doc.keys(&releases).collect(),
        _ => Vec::new(),
    }
}

impl From<BlobError> for NodeError {
    fn from(error: BlobError) -> Self {
        NodeError::Blob(Box::new(error))
    }
}

impl From<FileError> for NodeError {
    fn from(error: FileError) -> Self {
        NodeError::File(Box::new(error))
    }
}
