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
    /// `design history`, oldest first.
    History(Vec<HistoryEntry>),
    /// `design blame`.
    Blame(Vec<BlameEntry>),
    /// `design fork`.
    Forked(Forked),
    /// `design lineage`.
    Lineage(LineageReply),
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
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The author who created it.
    pub creator: AuthorKey,
    /// When, unix seconds (as the creator claimed).
    pub created_at: i64,
    /// How many documents of each kind it holds here.
    pub documents: DocCounts,
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
    /// Latest change time its author claimed, unix seconds.
    pub updated_at: i64,
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

/// A commons joined by the store alone (`commons join` with no node running).
#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    /// The commons.
    pub commons: CommonsId,
    /// Whether it was held already (then joining wrote the profile there).
    pub already_held: bool,
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
        });
        assert_eq!(
            serde_json::to_string_pretty(&joined.to_json().expect("json")).expect("text"),
            serde_json::to_string_pretty(
                &json!({"commons": commons.to_string(), "already_held": false})
            )
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
        });
        let value = shown.to_json().expect("json");
        assert_eq!(value["name"], json!("Roller crimper"));
        assert_eq!(value["changes"], json!(2));
        assert!(value.get("release").is_none());
    }
}
