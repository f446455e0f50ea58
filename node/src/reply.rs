//! Typed replies of the node's command API: one struct per command's answer, gathered in
//! [`Reply`], the value [`execute`](crate::api::execute) returns.
//!
//! JSON appears only at the edge: the CLI prints `--json` from [`Reply::to_json`] and the
//! control socket sends the same value, so each struct's serialization *is* the stable shape
//! the README's "JSON shapes" table documents (and `tests/tests/json_shapes.rs` checks). Both
//! edges serialise through [`serde_json::Value`], whose maps are sorted by key, so the order
//! of fields in a struct does not change a byte of the output.
//!
//! To answer a new [`Request`](crate::api::Request) variant:
//! 1. add a struct here (fields named and typed as the JSON shape, one doc line each; ids as
//!    [`DocId`]/[`CommonsId`]/[`AuthorKey`], which serialise as their base58 text);
//! 2. add a variant wrapping it to [`Reply`] (newtype, untagged: the struct alone is the JSON);
//! 3. return `Ok(Reply::YourVariant(..))` from its arm in `api::execute_inner`, and add a row
//!    to the README table.

use crate::bundle::{ExportReport, ImportReport};
use crate::provenance::{BlameEntry, HistoryEntry};
use crate::verify::VerifyReport;
use hedgerow_protocol::{AuthorKey, CommonsId, DocId};
use serde::Serialize;
use std::collections::BTreeMap;

/// The answer to one [`Request`](crate::api::Request); serialises as the wrapped struct alone.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `whoami`.
    Whoami(Whoami),
    /// `commons create`.
    CommonsCreated(CommonsCreated),
    /// `commons list`.
    CommonsList(Vec<CommonsInfo>),
    /// `commons show`.
    Commons(CommonsInfo),
    /// `design/event new`, `note add`.
    Created(Created),
    /// `design/event/note edit`.
    Edited(Edited),
    /// `design/event/note show`.
    Document(ShownDocument),
    /// `design/event/note list`, newest first.
    DocList(Vec<DocListItem>),
    /// One page of a document list (a request with `page`).
    DocListPage(DocListPage),
    /// `design history`, oldest first.
    History(Vec<HistoryEntry>),
    /// `design blame`.
    Blame(Vec<BlameEntry>),
    /// `design fork`.
    Forked(Forked),
    /// `design lineage`.
    Lineage(LineageReply),
    /// The names a document's `show` is read with: author key or document id to display name.
    /// Node-local knowledge (which profiles arrived), so kept out of `show` itself, whose
    /// JSON is the same on every node that holds the same changes.
    Names(BTreeMap<String, String>),
    /// `design release`.
    Released(Released),
    /// `verify`.
    Verify(VerifyReport),
    /// `bundle export`.
    BundleExported(BundleExported),
    /// `bundle summary`.
    BundleSummary(BundleSummaryWritten),
    /// `bundle import`.
    BundleImported(BundleImported),
    /// `commons join` on the store (a running node answers with its own `JoinReply`).
    Joined(Joined),
    /// `commons invite`.
    Invited(crate::communities::Invited),
    /// `commons accept`.
    InvitationAccepted(crate::communities::InvitationAccepted),
    /// `commons members`.
    Members(Vec<crate::communities::Member>),
    /// `commons role`, `commons remove`, `moderate hide|unhide|block|unblock`.
    CharterChanged(crate::communities::CharterChanged),
    /// `moderate log`, in replay order.
    ModerationLog(Vec<crate::communities::LogLine>),
    /// `device add`.
    DeviceAdded(crate::devices::DeviceAdded),
    /// `device list`.
    Devices(Vec<crate::devices::DeviceRow>),
    /// `device revoke`.
    DeviceRevoked(crate::devices::DeviceRevoked),
    /// `block`, `unblock`, `hide`, `unhide`, `blocks`, `purge`.
    Local(crate::local_blocks::LocalReply),
    /// `design/event/note conflicts`, newest first.
    Conflicts(Vec<crate::conflicts::DocConflicts>),
    /// `design/event/note resolve`.
    Resolved(crate::conflicts::Resolved),
    /// `profile edit`.
    ProfileEdited(ProfileEdited),
    /// `design export`.
    Plan(PlanReply),
    /// `design attach`, `note attach`.
    Attached(crate::blobs::files::Attached),
    /// `design files`, in the document's order.
    Files(Vec<crate::blobs::files::FileRow>),
    /// `design file` (the CLI then copies the blob out of the store).
    File(crate::blobs::files::FileRow),
    /// `design detach`.
    Detached(crate::blobs::files::Detached),
    /// `hedgerow gc`.
    Gc(crate::blobs::files::GcReport),
    /// `pin`, `unpin`, `pins`.
    Pins(Vec<crate::fetch_policy::Pin>),
    /// `import farmhack`, `import farmos-equipment`, `design built`, `export automerge`.
    Interop(crate::interop::InteropReply),
    /// `import okh`.
    OkhImported(crate::interop::okh::OkhImported),
    /// `export okh`.
    OkhExported(crate::interop::okh::OkhExported),
    /// A change built for a key this node does not hold (the web page), to be signed.
    ExternalPrepared(Box<crate::external_sign::Prepared>),
    /// An externally signed change, stored.
    ExternalCommitted(crate::external_sign::Committed),
    /// A browser key enrolled as a device of this node's person.
    DeviceEnrolled(crate::external_sign::DeviceEnrolled),
}

impl Reply {
    /// The reply as the JSON the CLI prints with `--json` and the control socket sends.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// This device's identity (`whoami`).
#[derive(Debug, Clone, Serialize)]
pub struct Whoami {
    /// The author key that signs every change.
    pub author: AuthorKey,
    /// Its short form.
    pub short: String,
    /// The person this device writes for (the author key itself when uncertified).
    pub person: AuthorKey,
    /// This device's name in its certificate, when it has one.
    pub device_name: Option<String>,
    /// The libp2p peer id, from the separate network key.
    pub peer_id: String,
    /// Display name from the local profile.
    pub name: String,
    /// Location from the local profile.
    pub location: String,
    /// Bio from the local profile.
    pub bio: String,
}

/// A commons just created (`commons create`).
#[derive(Debug, Clone, Serialize)]
pub struct CommonsCreated {
    /// Its id.
    pub id: CommonsId,
    /// Its name, trimmed.
    pub name: String,
}

/// One commons held (`commons list`, `commons show`).
#[derive(Debug, Clone, Serialize)]
pub struct CommonsInfo {
    /// Its id.
    pub id: CommonsId,
    /// Its name (empty while it is a pending join).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The author who created it (unknown, `null`, while it is a pending join).
    pub creator: Option<AuthorKey>,
    /// When, unix seconds (as the creator claimed; RFC 3339 in JSON; `null` while it is a
    /// pending join).
    #[serde(with = "crate::times::unix_opt")]
    pub created_at: Option<i64>,
    /// Asked for with `commons join` and not received yet: it arrives from the next peer or
    /// bundle that has it.
    pub pending: bool,
    /// How many documents of each kind it holds here.
    pub documents: DocCounts,
}

impl CommonsInfo {
    /// A commons asked for and not held yet: only its id is known.
    pub fn pending(id: CommonsId) -> Self {
        Self {
            id,
            name: String::new(),
            description: String::new(),
            creator: None,
            created_at: None,
            pending: true,
            documents: DocCounts::default(),
        }
    }
}

/// Documents of a commons by kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DocCounts {
    /// Designs.
    pub design: usize,
    /// Events.
    pub event: usize,
    /// Notes.
    pub note: usize,
    /// Profiles.
    pub profile: usize,
}

/// A document just created (`design new`, `event new`, `note add`).
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// Its id.
    pub id: DocId,
}

/// The result of an edit (`design/event/note edit`).
#[derive(Debug, Clone, Serialize)]
pub struct Edited {
    /// The document.
    pub id: DocId,
    /// The signed change's hash, hex; `None` when the edit changed nothing.
    pub change: Option<String>,
}

/// A document as shown: every field of its kind, plus what the node knows about it.
#[derive(Debug, Clone, Serialize)]
pub struct ShownDocument {
    /// Every field of the kind, rendered (empty ones as `""`, `[]`, `{}` or `null`).
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The document.
    pub id: DocId,
    /// design, event, note or profile (not `kind`: events and notes have a `kind` field).
    pub doc_kind: String,
    /// The author of its genesis.
    pub creator: AuthorKey,
    /// Signed changes held.
    pub changes: usize,
    /// Current heads, hex.
    pub heads: Vec<String>,
    /// The release shown, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Fields in conflict now: concurrent versions not yet settled (empty for a release).
    pub conflicts: Vec<crate::conflicts::FieldConflict>,
}

/// One page of a document list and how many documents match in all.
#[derive(Debug, Clone, Serialize)]
pub struct DocListPage {
    /// Documents matching the filters, over all pages.
    pub total: usize,
    /// This page's documents, in list order.
    pub items: Vec<DocListItem>,
}

/// One document of a list (`design/event/note list`).
#[derive(Debug, Clone, Serialize)]
pub struct DocListItem {
    /// The document.
    pub id: DocId,
    /// Its name or title.
    pub title: String,
    /// Signed changes held.
    pub changes: u64,
    /// Latest change time its author claimed, unix seconds (RFC 3339 in JSON).
    #[serde(with = "crate::times::unix")]
    pub updated_at: i64,
    /// The author of its genesis.
    pub creator: AuthorKey,
    /// The creator's display name, when known.
    pub creator_name: Option<String>,
    /// What an event's or a note's reader looks for first (nothing more for a design).
    #[serde(flatten)]
    pub extra: ListExtra,
    /// With `--search`: the fields the text was found in (`name`, `summary`, `steps.2`...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// In a list of the notes on one design or event: the note this one answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<DocId>,
}

/// The kind-specific part of a [`DocListItem`].
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ListExtra {
    /// A design: nothing more.
    Design {},
    /// An event: its own kind, dates as written, and place.
    Event {
        /// workshop, build-day...; null when unset.
        kind: Option<String>,
        /// Start date, as written.
        start: Option<String>,
        /// End date, as written.
        end: Option<String>,
        /// The name of its place.
        location: Option<String>,
    },
    /// A note: its own kind and the document it is on.
    Note {
        /// brainstorm, build-log...
        kind: Option<String>,
        /// The design or event it is on.
        target: Option<String>,
    },
}

/// A profile changed (`profile edit`).
#[derive(Debug, Clone, Serialize)]
pub struct ProfileEdited {
    /// The display name now.
    pub name: String,
    /// The location now.
    pub location: String,
    /// The bio now.
    pub bio: String,
    /// The commons whose profile document took a signed change.
    pub commons: Vec<CommonsId>,
}

/// What a printable plan of a design shows (`design export`); the CLI lays it out.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReply {
    /// The design as shown (at the release, when one was asked for).
    pub design: ShownDocument,
    /// The commons it belongs to.
    pub commons: CommonsId,
    /// That commons' name.
    pub commons_name: String,
    /// Display names of everyone who signed a change of it (a fork's parents' too), in the
    /// order of their first change; an author without a known name as a short key.
    pub authors: Vec<String>,
}

/// A fork just made (`design fork`).
#[derive(Debug, Clone, Serialize)]
pub struct Forked {
    /// The new design.
    pub id: DocId,
    /// The design it was forked from.
    pub parent: DocId,
}

/// A design's family tree (`design lineage`).
#[derive(Debug, Clone, Serialize)]
pub struct LineageReply {
    /// The design.
    pub id: DocId,
    /// Its ancestors, nearest first.
    pub ancestors: Vec<Ancestor>,
    /// Its known derivatives, direct and indirect.
    pub derivatives: Vec<Derivative>,
}

/// An ancestor of a design.
#[derive(Debug, Clone, Serialize)]
pub struct Ancestor {
    /// The ancestor.
    pub id: DocId,
    /// Its name, when held here.
    pub name: Option<String>,
}

/// A derivative of a design.
#[derive(Debug, Clone, Serialize)]
pub struct Derivative {
    /// The derivative.
    pub id: DocId,
    /// Its name, when its summary is held.
    pub name: Option<String>,
    /// The design it was forked from directly.
    pub parent: DocId,
}

/// A release just made (`design release`).
#[derive(Debug, Clone, Serialize)]
pub struct Released {
    /// The design.
    pub id: DocId,
    /// The version name.
    pub version: String,
    /// The signed change that records it, hex.
    pub change: String,
}

/// A bundle written (`bundle export`).
#[derive(Debug, Clone, Serialize)]
pub struct BundleExported {
    /// The file written.
    pub path: String,
    /// What it holds.
    #[serde(flatten)]
    pub report: ExportReport,
}

/// A summary written (`bundle summary`).
#[derive(Debug, Clone, Serialize)]
pub struct BundleSummaryWritten {
    /// The file written.
    pub path: String,
    /// Commons summarised.
    pub commons: usize,
    /// Commons asked for and not held yet, which the summary names too (pending joins).
    pub pending: Vec<String>,
    /// Documents summarised.
    pub documents: usize,
    /// Size of the file.
    pub bytes: usize,
}

/// A bundle imported (`bundle import`).
#[derive(Debug, Clone, Serialize)]
pub struct BundleImported {
    /// The file read.
    pub path: String,
    /// What was stored, known and refused.
    #[serde(flatten)]
    pub report: ImportReport,
}

/// A commons joined (`commons join`): the same shape whether the store or a running node
/// answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Joined {
    /// The commons.
    pub commons: CommonsId,
    /// Whether it was held already (then joining wrote the profile there).
    pub already_held: bool,
    /// Not held yet: asked for, listed as pending by `commons list`, named by `bundle
    /// summary`, and taken from the next peer or bundle that has it.
    pub pending: bool,
    /// How many connected peers a running node asked for it at once (`null` when no node
    /// runs, or the commons was held).
    pub asked_peers: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The typed replies serialise to the shapes `json!` built before they existed, byte for
    /// byte once printed (the CLI and the control socket both go through `Value`).
    #[test]
    fn replies_keep_their_json_shapes() {
        let doc = DocId([7; 32]);
        let commons = CommonsId([9; 32]);
        let edited = Reply::Edited(Edited {
            id: doc,
            change: None,
        });
        assert_eq!(
            edited.to_json().expect("json"),
            json!({"id": doc.to_string(), "change": null})
        );
        let joined = Reply::Joined(Joined {
            commons,
            already_held: false,
            pending: true,
            asked_peers: None,
        });
        assert_eq!(
            serde_json::to_string_pretty(&joined.to_json().expect("json")).expect("text"),
            serde_json::to_string_pretty(&json!({
                "commons": commons.to_string(),
                "already_held": false,
                "pending": true,
                "asked_peers": null
            }))
            .expect("text")
        );
        let exported = Reply::BundleExported(BundleExported {
            path: "/tmp/b".into(),
            report: ExportReport {
                commons: 1,
                documents: 2,
                changes: 3,
                up_to_date: 4,
                bytes: 5,
                files: None,
            },
        });
        assert_eq!(
            exported.to_json().expect("json"),
            json!({"path": "/tmp/b", "commons": 1, "documents": 2, "changes": 3, "up_to_date": 4, "bytes": 5})
        );
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), json!("Roller crimper"));
        let shown = Reply::Document(ShownDocument {
            fields,
            id: doc,
            doc_kind: "design".into(),
            creator: AuthorKey([1; 32]),
            changes: 2,
            heads: vec!["ab".into()],
            release: None,
            conflicts: Vec::new(),
        });
        let value = shown.to_json().expect("json");
        assert_eq!(value["name"], json!("Roller crimper"));
        assert_eq!(value["changes"], json!(2));
        assert!(value.get("release").is_none());
    }
}
