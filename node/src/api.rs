//! The node's command API: one [`Request`] per CLI command, executed the same
//! way whether the CLI opened the store itself or sent the request to a
//! running `serve` over the control channel.
//!
//! Replies are typed ([`Reply`], one struct per command in [`crate::reply`]); their JSON
//! serialization is the stable `--json` output documented in the README. A new request
//! variant gets a reply struct there (its module doc says how) and an arm in
//! `execute_inner` returning it.

use crate::conflicts::{Choice, DocConflicts};
use crate::local_blocks;
use crate::provenance::ForkOptions;
use crate::replicas::{NodeError, Replicas};
pub use crate::reply::Reply;
use crate::reply::{
    Ancestor, BundleExported, BundleImported, CommonsCreated, CommonsInfo, Created, Derivative,
    DocCounts, DocListItem, Edited, Forked, Joined, LineageReply, ListExtra, ProfileEdited,
    Released, Whoami,
};
use hedgerow_protocol::schema::search::Filter;
use hedgerow_protocol::schema::{self, DocKind, Edit, NewDocument};
use hedgerow_protocol::DocId;
use serde::{Deserialize, Serialize};

/// One command for the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// This device's identity.
    Whoami,
    /// Create a commons.
    CommonsCreate {
        /// Its name.
        name: String,
        /// What it is for.
        #[serde(default)]
        description: String,
    },
    /// List the commons held.
    CommonsList,
    /// Show one commons.
    CommonsShow {
        /// Id or prefix; the only one when absent.
        commons: Option<String>,
    },
    /// Create a design, event or note.
    DocNew {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// What to create and its first fields.
        kind: DocKind,
        /// Name or title (for a note: ignored).
        title: String,
        /// For a note: the design or event it belongs to.
        target: Option<String>,
        /// For a note: its kind.
        note_kind: Option<String>,
        /// For a note: the note it answers (id or prefix); its target is the default `target`.
        #[serde(default)]
        reply_to: Option<String>,
        /// Further edits in the same first change.
        edits: Vec<Edit>,
    },
    /// Edit a document.
    DocEdit {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// The edits, applied as one signed change.
        edits: Vec<Edit>,
    },
    /// Show a document, optionally at a release.
    DocShow {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// A release version (designs).
        version: Option<String>,
    },
    /// List documents of a kind.
    DocList {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// The kind.
        kind: DocKind,
        /// For notes: only those on this design or event.
        target: Option<String>,
        /// Tags every listed document carries (`--tag`, repeatable).
        #[serde(default)]
        tags: Vec<String>,
        /// A design's stage (`--stage`).
        #[serde(default)]
        stage: Option<String>,
        /// Text to find, case-insensitively, in the name, summary and build steps (`--search`).
        #[serde(default)]
        search: Option<String>,
    },
    /// A document's signed history.
    History {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
    },
    /// Who wrote each part of a field.
    Blame {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// The field.
        field: String,
    },
    /// Fork a design.
    Fork {
        /// Parent id or prefix.
        id: String,
        /// The fork's name.
        name: Option<String>,
        /// Licence changes: (`hardware`|`documentation`|`software`, SPDX expression).
        licence: Vec<(String, String)>,
        /// Accept relicensing a share-alike design to an incompatible licence.
        allow_relicense: bool,
    },
    /// Display names of the keys and ids a document names (for people reading its `show`).
    Names {
        /// Id or prefix.
        id: String,
    },
    /// A design's ancestors and derivatives.
    Lineage {
        /// Id or prefix.
        id: String,
    },
    /// Freeze a design's current state under a version.
    Release {
        /// Id or prefix.
        id: String,
        /// Version name.
        version: String,
    },
    /// Re-verify everything stored.
    Verify {
        /// Rewrite caches that differ.
        rebuild: bool,
        /// Check attachment blobs by size only, not by re-hashing them.
        #[serde(default)]
        quick: bool,
    },
    /// Write a bundle of signed changes to a file (USB sneakernet).
    BundleExport {
        /// Absolute path of the bundle file to write.
        path: String,
        /// Commons ids or prefixes; every commons held when empty.
        #[serde(default)]
        commons: Vec<String>,
        /// Absolute path of the other node's summary: export only what it lacks.
        for_summary: Option<String>,
        /// Also write the attachment blobs of the commons exported.
        #[serde(default)]
        with_files: bool,
    },
    /// Write a summary of what this node holds, for another node's `bundle export --for`.
    BundleSummary {
        /// Absolute path of the summary file to write.
        path: String,
        /// Replace a file there that is not a summary.
        #[serde(default)]
        force: bool,
    },
    /// Verify and store the signed changes of a bundle file.
    BundleImport {
        /// Absolute path of the bundle file.
        path: String,
        /// Commons ids or prefixes to join and import besides those held (`--commons`).
        #[serde(default)]
        commons: Vec<String>,
        /// Import every commons of the file, joining none (`--all-commons`).
        #[serde(default)]
        all_commons: bool,
    },
    /// Replicate a commons known by id; it arrives from the next peer that has it.
    Join {
        /// The full commons id.
        commons: String,
    },
    /// Certify a new device of this person and make its link code.
    DeviceAdd {
        /// The new device's name.
        name: String,
    },
    /// This person's devices.
    DeviceList,
    /// Revoke one of this person's other devices.
    DeviceRevoke {
        /// Its name (or key).
        name: String,
    },
    /// Create a stewarded commons: its founder is its first steward.
    CommonsCreateStewarded {
        /// Its name.
        name: String,
        /// What it is for.
        #[serde(default)]
        description: String,
        /// Served only to members.
        #[serde(default)]
        private: bool,
    },
    /// Make an invitation code.
    CommonsInvite {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// The role it grants.
        role: hedgerow_protocol::charter::Role,
        /// How many people may redeem it.
        uses: u32,
        /// Seconds it stays valid.
        expires_in: i64,
    },
    /// Redeem an invitation code.
    CommonsAccept {
        /// The `hri1...` code.
        code: String,
    },
    /// List a stewarded commons' members.
    CommonsMembers {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
    },
    /// Give a person a role (adding them if needed).
    CommonsRole {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// Author key or unique prefix.
        person: String,
        /// The role.
        role: hedgerow_protocol::charter::Role,
    },
    /// Remove a person from a stewarded commons.
    CommonsRemove {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// Author key or unique prefix.
        person: String,
    },
    /// Hide a document from every node of its commons (a steward).
    ModerateHide {
        /// Id or prefix.
        id: String,
        /// Why, shown to readers.
        reason: String,
    },
    /// Show a hidden document again.
    ModerateUnhide {
        /// Id or prefix.
        id: String,
    },
    /// Block a person's new changes in a commons (a steward).
    ModerateBlock {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// Author key or unique prefix.
        person: String,
    },
    /// Lift a block.
    ModerateUnblock {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// Author key or unique prefix.
        person: String,
    },
    /// Every charter operation of a commons and what became of it.
    ModerateLog {
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
    },
    /// Refuse an author's new changes on this node (`hedgerow block`).
    Block {
        /// Author key or unique prefix of one known here.
        person: String,
        /// The user's note.
        #[serde(default)]
        note: String,
    },
    /// Take an author's new changes again (`hedgerow unblock`).
    Unblock {
        /// Author key or unique prefix.
        person: String,
    },
    /// Stop listing, showing and serving a document on this node (`hedgerow hide`).
    Hide {
        /// Document id or prefix.
        id: String,
        /// The user's reason.
        #[serde(default)]
        reason: String,
    },
    /// List, show and serve a hidden document again (`hedgerow unhide`).
    Unhide {
        /// Document id or prefix.
        id: String,
    },
    /// This node's blocked authors and hidden documents (`hedgerow blocks`).
    Blocks,
    /// Remove a hidden document from the store for good (`hedgerow purge`).
    Purge {
        /// Document id or prefix.
        id: String,
    },
    /// Change this person's display name, location or bio (`profile edit`), here and in the
    /// profile document of every commons held.
    ProfileEdit {
        /// New display name.
        #[serde(default)]
        name: Option<String>,
        /// New location (empty clears it).
        #[serde(default)]
        location: Option<String>,
        /// New bio (empty clears it).
        #[serde(default)]
        bio: Option<String>,
    },
    /// Everything a printable plan of a design shows (`design export`).
    Plan {
        /// Id or prefix.
        id: String,
        /// A release version to print instead of the current state.
        #[serde(default)]
        version: Option<String>,
    },
    /// Withdraw a document this device created (`design/event/note retract`).
    Retract {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
    },
    /// Open conflicts of one document, or of every document of a kind in a commons.
    Conflicts {
        /// Id or prefix; every document of `kind` in the commons when absent.
        id: Option<String>,
        /// The kind the caller expects.
        kind: DocKind,
        /// Commons id or prefix (without `id`); the only one when absent.
        #[serde(default)]
        commons: Option<String>,
    },
    /// Settle a conflict on one field with a signed change.
    Resolve {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// The field in conflict (`stage`, `steps.2`, `bom.1.quantity`).
        field: String,
        /// Take the version of the side whose change starts with this hex prefix.
        take: Option<String>,
        /// Or write this text (value) instead.
        text: Option<String>,
    },
    /// Attach a file to a design or note (`design attach`, `note attach`).
    FileAttach {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// Absolute path of the file to attach.
        path: String,
        /// drawing, photo, plan, cad, bom, manual or other.
        role: Option<String>,
        /// The 1-based build step it belongs to (designs).
        step: Option<usize>,
        /// A line about it.
        caption: Option<String>,
    },
    /// The files of a design or note, now or at a release (`design files`).
    FileList {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// A release version (designs).
        version: Option<String>,
    },
    /// One file of a design or note, by name or hash prefix (`design file`).
    FileFind {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// Its name or a prefix of its hash.
        file: String,
        /// A release version (designs).
        version: Option<String>,
    },
    /// Remove a file from a design or note (`design detach`).
    FileDetach {
        /// Id or prefix.
        id: String,
        /// The kind the caller expects.
        kind: DocKind,
        /// Its name or a prefix of its hash.
        file: String,
    },
    /// Remove blobs nothing refers to (`hedgerow gc`).
    Gc,
    /// Always fetch this design's files (`hedgerow pin`).
    Pin {
        /// Design id or prefix.
        id: String,
    },
    /// Stop always fetching this design's files (`hedgerow unpin`).
    Unpin {
        /// Design id or prefix.
        id: String,
    },
    /// The pinned designs (`hedgerow pins`).
    Pins,
    /// Farm Hack and farmOS imports, `design built`, plain automerge export
    /// ([`crate::interop`]).
    Interop(crate::interop::InteropRequest),
    /// Import OKH manifests (`hedgerow import okh`).
    ImportOkh {
        /// Absolute paths of manifests or of folders holding one at their root.
        paths: Vec<String>,
        /// Commons id or prefix; the only one when absent.
        commons: Option<String>,
        /// Report what would happen, write nothing.
        dry_run: bool,
    },
    /// A design as an OKH manifest (`hedgerow export okh`).
    ExportOkh {
        /// Design id or prefix.
        id: String,
        /// `losh` (okh.toml) or `v1` (okh.yml).
        format: String,
    },
    /// Builds a change for a key this node does not hold (a browser's), to be signed by it.
    ExternalPrepare {
        /// The key that will sign.
        author: hedgerow_protocol::AuthorKey,
        /// What to build.
        write: crate::external_sign::ExternalWrite,
    },
    /// Stores a change [`Request::ExternalPrepare`] built, with the key's signatures.
    ExternalCommit {
        /// The change as prepared.
        prepared: Box<crate::external_sign::Prepared>,
        /// The signatures over its digests.
        signatures: Box<crate::external_sign::ExternalSignatures>,
    },
    /// Enrols a browser key as a device of this node's person with a `device add` link code.
    ExternalEnrolDevice {
        /// The link code.
        code: String,
        /// The browser's key.
        device: hedgerow_protocol::AuthorKey,
    },
}

/// A request only a running node can answer (its peers, its pulls); on the control socket it
/// shares the `op` field with [`Request`], and the node answers a [`Request::Join`] as a
/// [`NodeRequest::Join`] (it also asks its peers).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NodeRequest {
    /// Listen addresses, peers, counters.
    Status,
    /// One catch-up sync with a peer.
    Sync {
        /// The peer's multiaddress.
        peer: String,
        /// Seconds the first connection may take (the node's default when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connect_timeout: Option<u64>,
        /// Seconds the whole sync may take (the node's default when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<u64>,
    },
    /// Join a commons and ask every connected peer for it.
    Join {
        /// The full commons id.
        commons: String,
    },
    /// The known peers and the DHT's announcements and lookups (`hedgerow peers`).
    Peers,
    /// Add a peer to the running node's bootstrap list (`hedgerow peers add`, after the file).
    PeersAdd {
        /// Its multiaddress.
        addr: String,
    },
    /// Take a peer off the running node's bootstrap list (`hedgerow peers remove`).
    PeersRemove {
        /// Its multiaddress.
        addr: String,
    },
    /// Fetch blobs from connected peers (`hedgerow fetch`, `design file` of a missing blob).
    FetchBlobs {
        /// The blobs: BLAKE3 hash in hex, and size.
        blobs: Vec<BlobWant>,
        /// Whether to answer only once each is stored or failed.
        wait: bool,
    },
}

/// One blob asked of a running node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobWant {
    /// Its BLAKE3 hash, in hex.
    pub hash: String,
    /// Its size in bytes (from the attachment record).
    pub size: u64,
}

/// What a running node answers to [`NodeRequest::FetchBlobs`] (hashes in hex).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchBlobsReply {
    /// Held now.
    pub stored: Vec<String>,
    /// Still being fetched.
    pub pending: Vec<String>,
    /// Not stored, with why.
    pub failed: Vec<FailedBlob>,
}

/// A blob a running node could not store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedBlob {
    /// Its hash, in hex.
    pub hash: String,
    /// Why.
    pub error: String,
}

impl NodeRequest {
    /// The `op` names of the node requests.
    pub const OPS: [&'static str; 7] = [
        "status",
        "sync",
        "join",
        "fetch_blobs",
        "peers",
        "peers_add",
        "peers_remove",
    ];
}

/// Runs a request against the replicas; writes are durable when this returns `Ok`.
pub fn execute(replicas: &mut Replicas, request: Request) -> Result<Reply, NodeError> {
    let reply = execute_inner(replicas, request)?;
    replicas.commit()?;
    Ok(reply)
}

fn execute_inner(replicas: &mut Replicas, request: Request) -> Result<Reply, NodeError> {
    match request {
        Request::Whoami => {
            replicas.find_own_certificate()?;
            let profile = replicas.local_profile().clone();
            Ok(Reply::Whoami(Whoami {
                author: replicas.author(),
                short: replicas.author().short(),
                person: replicas.person(),
                device_name: replicas.device_name(),
                peer_id: replicas.peer_id().to_string(),
                name: profile.name,
                location: profile.location,
                bio: profile.bio,
            }))
        }
        Request::CommonsCreate { name, description } => {
            let id = replicas.create_commons(&name, &description)?;
            Ok(Reply::CommonsCreated(CommonsCreated {
                id,
                name: name.trim().to_string(),
            }))
        }
        Request::CommonsList => {
            let mut out = Vec::new();
            for genesis in replicas.commons_list()? {
                out.push(commons_info(replicas, &genesis)?);
            }
            // Asked for and not here yet: listed as such, after those held.
            for wanted in replicas.store().wanted_commons()? {
                if !out.iter().any(|held| held.id == wanted) {
                    out.push(CommonsInfo::pending(wanted));
                }
            }
            Ok(Reply::CommonsList(out))
        }
        Request::CommonsShow { commons } => {
            if let Some(pending) = pending_join(replicas, commons.as_deref())? {
                return Ok(Reply::Commons(CommonsInfo::pending(pending)));
            }
            let id = replicas.resolve_commons(commons.as_deref())?;
            let genesis = replicas
                .store()
                .commons(&id)?
                .ok_or_else(|| NodeError::UnknownCommons(id.to_string()))?;
            Ok(Reply::Commons(commons_info(replicas, &genesis)?))
        }
        Request::DocNew {
            commons,
            kind,
            title,
            target,
            note_kind,
            reply_to,
            mut edits,
        } => {
            let target = match (reply_to, kind) {
                (Some(reply_to), DocKind::Note) => {
                    let (parent, parent_target) = reply_parent(replicas, &reply_to)?;
                    if let Some(given) = &target {
                        if replicas.resolve_doc(given, None)? != parent_target {
                            return Err(NodeError::Invalid(format!(
                                "note {parent} is on {parent_target}, and a reply goes on the same design or event; leave out --on"
                            )));
                        }
                    }
                    edits.push(Edit::Set {
                        field: "reply_to".into(),
                        value: parent.to_string(),
                    });
                    Some(parent_target.to_string())
                }
                (Some(_), _) => {
                    return Err(NodeError::Invalid(
                        "only a note can be a reply to a note".into(),
                    ))
                }
                (None, _) => target,
            };
            // Ids inside the edits are resolved first: a new design that derives from another
            // may take its commons from it.
            let named = replicas.resolve_references(None, kind, &mut edits)?;
            let (commons, note_target) = match (&target, kind) {
                (Some(target), DocKind::Note) => {
                    // A note lives in the commons of the design or event it is about.
                    let target = replicas.resolve_doc(target, None)?;
                    let genesis = replicas.store().doc_genesis(&target)?.ok_or_else(|| {
                        NodeError::UnknownDoc {
                            what: "document",
                            id: target.to_string(),
                        }
                    })?;
                    if !matches!(genesis.body.kind, DocKind::Design | DocKind::Event) {
                        return Err(NodeError::Invalid(format!(
                            "notes belong to a design or an event; {target} is a {}",
                            genesis.body.kind
                        )));
                    }
                    (genesis.body.commons, Some(target.to_string()))
                }
                (None, DocKind::Note) => return Err(NodeError::NoteWithoutTarget),
                _ => (new_doc_commons(replicas, commons.as_deref(), named)?, None),
            };
            let new = NewDocument {
                kind,
                title,
                note_target,
                note_kind,
            };
            let id = replicas.create_doc(commons, &new, &edits)?;
            Ok(Reply::Created(Created { id }))
        }
        Request::DocEdit {
            id,
            kind,
            mut edits,
        } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            replicas.resolve_references(Some(id), kind, &mut edits)?;
            let change = replicas.edit_doc(&id, &edits)?;
            Ok(Reply::Edited(Edited {
                id,
                change: change.map(|h| h.to_string()),
            }))
        }
        Request::DocShow { id, kind, version } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            replicas.refuse_withheld(&id)?;
            Ok(Reply::Document(replicas.show(&id, version.as_deref())?))
        }
        Request::DocList {
            commons,
            kind,
            target,
            tags,
            stage,
            search,
        } => {
            let target = match target {
                Some(t) => Some(replicas.resolve_doc(&t, None)?),
                None => None,
            };
            // A target names its commons; `--commons` is needed only without one.
            let commons = match target {
                Some(target) if commons.is_none() => doc_commons(replicas, &target)?,
                _ => replicas.resolve_commons(commons.as_deref())?,
            };
            let filter = Filter::new(&tags, stage.as_deref(), search.as_deref())
                .map_err(schema::EditError::from)?;
            let mut out = Vec::new();
            let attribution = replicas.attribution(commons);
            for (id, summary) in replicas.list(&commons, kind)? {
                // Only a filtered list reads documents; a plain one stays on the summaries.
                let needs_doc = target.is_some() || !filter.is_empty();
                let (matched, reply_to) = if needs_doc {
                    let doc = replicas.replica(&id)?.doc();
                    if target.is_some() && schema::facts::note_target(doc) != target {
                        continue;
                    }
                    let Some(matched) = filter.matches(doc, kind) else {
                        continue;
                    };
                    (matched, schema::facts::note_reply_to(doc))
                } else {
                    (Vec::new(), None)
                };
                let mut item = list_item(replicas, &attribution, commons, id, kind, summary)?;
                item.matched = matched;
                item.reply_to = reply_to;
                out.push(item);
            }
            Ok(Reply::DocList(out))
        }
        Request::History { id, kind } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            Ok(Reply::History(replicas.history(&id)?))
        }
        Request::Blame { id, kind, field } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            Ok(Reply::Blame(replicas.blame(&id, &field)?))
        }
        Request::Fork {
            id,
            name,
            licence,
            allow_relicense,
        } => {
            let parent = replicas.resolve_doc(&id, Some(DocKind::Design))?;
            let options = ForkOptions {
                name,
                licence,
                allow_relicense,
            };
            let child = replicas.fork(&parent, &options)?;
            Ok(Reply::Forked(Forked { id: child, parent }))
        }
        Request::Names { id } => {
            let id = replicas.resolve_doc(&id, None)?;
            Ok(Reply::Names(replicas.names(&id)?))
        }
        Request::Lineage { id } => {
            let id = replicas.resolve_doc(&id, Some(DocKind::Design))?;
            let lineage = replicas.lineage(&id)?;
            Ok(Reply::Lineage(LineageReply {
                id,
                ancestors: lineage
                    .ancestors
                    .into_iter()
                    .map(|(id, name)| Ancestor { id, name })
                    .collect(),
                derivatives: lineage
                    .derivatives
                    .into_iter()
                    .map(|(id, name, parent)| Derivative { id, name, parent })
                    .collect(),
            }))
        }
        Request::Release { id, version } => {
            let id = replicas.resolve_doc(&id, Some(DocKind::Design))?;
            let change = replicas.release(&id, &version)?;
            Ok(Reply::Released(Released {
                id,
                version,
                change: change.to_string(),
            }))
        }
        Request::Join { commons } => {
            let (id, _) = replicas.resolve_join(&commons)?;
            if let Some(genesis) = replicas.store().commons(&id)? {
                // Held without our profile (imported with --all-commons): joining publishes it.
                replicas.join_commons(&genesis)?;
                return Ok(Reply::Joined(Joined {
                    commons: id,
                    already_held: true,
                    pending: false,
                    asked_peers: None,
                }));
            }
            replicas.store().want_commons(&id)?;
            Ok(Reply::Joined(Joined {
                commons: id,
                already_held: false,
                pending: true,
                asked_peers: None,
            }))
        }
        Request::BundleExport {
            path,
            commons,
            for_summary,
            with_files: true,
        } => {
            let report = crate::blobs::bundle::export_with_files(
                replicas,
                std::path::Path::new(&path),
                &commons,
                for_summary.as_deref().map(std::path::Path::new),
            )?;
            Ok(Reply::BundleExported(BundleExported { path, report }))
        }
        Request::BundleExport {
            path,
            commons,
            for_summary,
            with_files: false,
        } => {
            let report = crate::bundle::export_to_file(
                replicas,
                std::path::Path::new(&path),
                &commons,
                for_summary.as_deref().map(std::path::Path::new),
            )?;
            Ok(Reply::BundleExported(BundleExported { path, report }))
        }
        Request::BundleSummary { path, force } => Ok(Reply::BundleSummary(
            crate::bundle::summary_to_file(replicas, std::path::Path::new(&path), force)?,
        )),
        Request::BundleImport {
            path,
            commons,
            all_commons,
        } => {
            let choice = crate::bundle::ImportChoice {
                join: commons,
                all: all_commons,
            };
            let report = crate::blobs::bundle::import_from_file(
                replicas,
                std::path::Path::new(&path),
                &choice,
            )?;
            Ok(Reply::BundleImported(BundleImported { path, report }))
        }
        Request::DeviceAdd { name } => Ok(Reply::DeviceAdded(replicas.device_add(&name)?)),
        Request::DeviceList => Ok(Reply::Devices(replicas.device_list()?)),
        Request::DeviceRevoke { name } => Ok(Reply::DeviceRevoked(replicas.device_revoke(&name)?)),
        Request::Verify { rebuild, quick } => {
            let mut report = replicas.verify(rebuild)?;
            replicas.verify_blobs(quick, &mut report)?;
            Ok(Reply::Verify(report))
        }
        Request::CommonsCreateStewarded {
            name,
            description,
            private,
        } => {
            let id = replicas.create_stewarded(&name, &description, private)?;
            Ok(Reply::CommonsCreated(CommonsCreated {
                id,
                name: name.trim().to_string(),
            }))
        }
        request @ (Request::CommonsInvite { .. }
        | Request::CommonsAccept { .. }
        | Request::CommonsMembers { .. }
        | Request::CommonsRole { .. }
        | Request::CommonsRemove { .. }
        | Request::ModerateHide { .. }
        | Request::ModerateUnhide { .. }
        | Request::ModerateBlock { .. }
        | Request::ModerateUnblock { .. }
        | Request::ModerateLog { .. }) => crate::communities::execute(replicas, request),
        Request::Block { person, note } => local_blocks::block(replicas, &person, &note),
        Request::Unblock { person } => local_blocks::unblock(replicas, &person),
        Request::Hide { id, reason } => local_blocks::hide(replicas, &id, &reason),
        Request::Unhide { id } => local_blocks::unhide(replicas, &id),
        Request::Blocks => local_blocks::blocks(replicas),
        Request::Purge { id } => local_blocks::purge(replicas, &id),
        Request::Retract { id, kind } => local_blocks::retract(replicas, &id, kind),
        Request::Conflicts { id, kind, commons } => match id {
            Some(id) => {
                let id = replicas.resolve_doc(&id, Some(kind))?;
                replicas.refuse_withheld(&id)?;
                let conflicts = replicas.conflicts(&id)?;
                let mut out = Vec::new();
                if !conflicts.is_empty() {
                    out.push(DocConflicts {
                        id,
                        doc_kind: kind.as_str().to_string(),
                        title: replicas
                            .store()
                            .summary(&id)?
                            .map(|s| s.title)
                            .unwrap_or_default(),
                        conflicts,
                    });
                }
                Ok(Reply::Conflicts(out))
            }
            None => {
                let commons = replicas.resolve_commons(commons.as_deref())?;
                Ok(Reply::Conflicts(replicas.conflicts_in(&commons, kind)?))
            }
        },
        Request::Resolve {
            id,
            kind,
            field,
            take,
            text,
        } => {
            let id = replicas.resolve_doc(&id, Some(kind))?;
            replicas.refuse_withheld(&id)?;
            let choice = match (take, text) {
                (Some(change), None) => Choice::Take(change),
                (None, Some(text)) => Choice::Text(text),
                _ => {
                    return Err(NodeError::Invalid(
                        "resolve takes either --take CHANGE or --text TEXT".to_string(),
                    ))
                }
            };
            Ok(Reply::Resolved(replicas.resolve(&id, &field, &choice)?))
        }
        Request::ProfileEdit {
            name,
            location,
            bio,
        } => {
            let changed = replicas.edit_profile(name, location, bio)?;
            let profile = replicas.local_profile().clone();
            Ok(Reply::ProfileEdited(ProfileEdited {
                name: profile.name,
                location: profile.location,
                bio: profile.bio,
                commons: changed,
            }))
        }
        Request::Plan { id, version } => {
            let id = replicas.resolve_doc(&id, Some(DocKind::Design))?;
            replicas.refuse_withheld(&id)?;
            Ok(Reply::Plan(replicas.plan(&id, version.as_deref())?))
        }
        request @ (Request::FileAttach { .. }
        | Request::FileList { .. }
        | Request::FileFind { .. }
        | Request::FileDetach { .. }
        | Request::Gc) => crate::blobs::files::execute(replicas, request),
        Request::Interop(request) => {
            Ok(Reply::Interop(crate::interop::execute(replicas, request)?))
        }
        request @ (Request::Pin { .. } | Request::Unpin { .. } | Request::Pins) => {
            crate::fetch_policy::execute(replicas, request)
        }
        request @ (Request::ImportOkh { .. } | Request::ExportOkh { .. }) => {
            crate::interop::okh::execute(replicas, request)
        }
        Request::ExternalPrepare { author, write } => Ok(Reply::ExternalPrepared(Box::new(
            replicas.external_prepare(author, write)?,
        ))),
        Request::ExternalCommit {
            prepared,
            signatures,
        } => Ok(Reply::ExternalCommitted(
            replicas.external_commit(&prepared, &signatures)?,
        )),
        Request::ExternalEnrolDevice { code, device } => Ok(Reply::DeviceEnrolled(
            replicas.external_enrol_device(&code, device)?,
        )),
    }
}

/// The pending join (`commons join`, not received yet) that `text` names by its id or a
/// prefix of it, when no held commons matches it.
fn pending_join(
    replicas: &Replicas,
    text: Option<&str>,
) -> Result<Option<hedgerow_protocol::CommonsId>, NodeError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let held = replicas
        .commons_list()?
        .iter()
        .any(|g| g.body.id().to_string().starts_with(text));
    if held {
        return Ok(None);
    }
    let matching: Vec<_> = replicas
        .store()
        .wanted_commons()?
        .into_iter()
        .filter(|id| id.to_string().starts_with(text))
        .collect();
    Ok(match matching.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// The commons a document lives in.
fn doc_commons(
    replicas: &Replicas,
    id: &hedgerow_protocol::DocId,
) -> Result<hedgerow_protocol::CommonsId, NodeError> {
    replicas
        .store()
        .doc_genesis(id)?
        .map(|g| g.body.commons)
        .ok_or_else(|| NodeError::UnknownDoc {
            what: "document",
            id: id.to_string(),
        })
}

/// The commons a new design or event goes to: the one chosen, else the only one held, else
/// the one of a document its first edits name (`--set derivative_of=ID`).
fn new_doc_commons(
    replicas: &Replicas,
    chosen: Option<&str>,
    named: Option<hedgerow_protocol::CommonsId>,
) -> Result<hedgerow_protocol::CommonsId, NodeError> {
    match (replicas.resolve_commons(chosen), named) {
        (Err(NodeError::ChooseCommons(_)), Some(named)) if chosen.is_none() => Ok(named),
        (result, _) => result,
    }
}

/// The note a reply answers, and the design or event that note is on.
fn reply_parent(replicas: &mut Replicas, given: &str) -> Result<(DocId, DocId), NodeError> {
    let parent = replicas.resolve_doc(given, Some(DocKind::Note))?;
    replicas.refuse_withheld(&parent)?;
    let target = schema::facts::note_target(replicas.replica(&parent)?.doc()).ok_or_else(|| {
        NodeError::Invalid(format!(
            "note {parent} names no design or event, so it cannot be answered"
        ))
    })?;
    Ok((parent, target))
}

fn commons_info(
    replicas: &Replicas,
    genesis: &hedgerow_protocol::Signed<hedgerow_protocol::CommonsGenesis>,
) -> Result<CommonsInfo, NodeError> {
    let id = genesis.body.id();
    Ok(CommonsInfo {
        id,
        name: genesis.body.name.clone(),
        description: genesis.body.description.clone(),
        creator: Some(genesis.body.creator),
        created_at: Some(genesis.body.created_at),
        pending: false,
        documents: DocCounts {
            design: replicas.list(&id, DocKind::Design)?.len(),
            event: replicas.list(&id, DocKind::Event)?.len(),
            note: replicas.list(&id, DocKind::Note)?.len(),
            profile: replicas.list(&id, DocKind::Profile)?.len(),
        },
    })
}

/// One row of `design/event/note list`: the summary, who created the document, and what an
/// event's or a note's reader looks for first (an event's own dates and place, a note's kind).
fn list_item(
    replicas: &mut Replicas,
    attribution: &crate::devices::Attribution,
    commons: hedgerow_protocol::CommonsId,
    id: hedgerow_protocol::DocId,
    kind: DocKind,
    summary: crate::store::DocSummary,
) -> Result<DocListItem, NodeError> {
    // The genesis alone: a design list should not load every design's history.
    let creator = match replicas.store().doc_genesis(&id)? {
        Some(genesis) => genesis.body.creator,
        None => replicas.replica(&id)?.genesis().body.creator,
    };
    let person = attribution.person(creator);
    let creator_name = replicas
        .author_name(commons, &person)
        .or_else(|| replicas.author_name(commons, &creator));
    let extra = match kind {
        DocKind::Event | DocKind::Note => {
            let rendered = schema::render(replicas.replica(&id)?.doc(), kind, None);
            let text =
                |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
            if kind == DocKind::Event {
                ListExtra::Event {
                    kind: text(&rendered["kind"]),
                    start: text(&rendered["start"]),
                    end: text(&rendered["end"]),
                    location: text(&rendered["location"]["name"]),
                }
            } else {
                ListExtra::Note {
                    kind: text(&rendered["kind"]),
                    target: text(&rendered["target"]),
                }
            }
        }
        _ => ListExtra::Design {},
    };
    Ok(DocListItem {
        id,
        title: summary.title,
        changes: summary.changes,
        updated_at: summary.updated_at,
        creator,
        creator_name,
        matched: Vec::new(),
        reply_to: None,
        extra,
    })
}
