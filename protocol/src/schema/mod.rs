//! Document kinds and their schemas.
//!
//! A commons holds four kinds of automerge document: designs, events, notes
//! and profiles. Each kind's fields are a table in its own module
//! ([`design`], [`event`], [`note`], [`profile`]); this module is the one
//! door the node and CLI use: write a skeleton, apply an edit, validate what a
//! peer sent, render JSON, read the facts the node decides on ([`facts`]), and say who
//! changed what.
//!
//! Documents come from peers and may be hostile: nothing here panics on a
//! malformed document, and validation bounds every field's size so one
//! document cannot exhaust a Raspberry Pi's memory.

pub mod conflicts;
pub mod design;
mod edit;
mod error;
pub mod event;
pub mod facts;
mod files;
mod history;
pub mod note;
pub mod profile;
mod read;
mod render;
mod rules;
pub mod search;
mod spec;
mod tags;
mod validate;
mod write;

#[cfg(test)]
mod tests;

pub use edit::{BomLine, Edit, EditContext, Part, BOM_LINE_FORMAT, MAX_QUANTITY, PART_FORMAT};
pub use error::{EditError, SchemaError, ValueError};
pub use history::BlameSpan;
pub use rules::{check_required, doc_reference, required_fields, DocReference};
pub use spec::{Field, FieldType, KeyRule, StrCheck};
pub use tags::{normalise_tag, same_tag};

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ReadDoc, ROOT};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest name or title (design name, event title, person, part), in bytes.
pub const MAX_TITLE_BYTES: usize = 200;
/// Largest prose text (summary, problem, user manual, note body...), in bytes.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Largest single build step, in bytes.
pub const MAX_STEP_BYTES: usize = 16 * 1024;
/// Largest profile bio, in bytes.
pub const MAX_BIO_BYTES: usize = 16 * 1024;
/// Longest short string (licensor's address, sourcing, a build note...), in bytes.
pub const MAX_STR_BYTES: usize = 2048;
/// Most items in a list (steps, BOM lines, parts, contributors, built records...).
pub const MAX_LIST_ITEMS: usize = 500;
/// Most tags (and topics, organisers) on one document.
pub const MAX_TAGS: usize = 64;
/// Longest tag, choice word, language or version, in bytes.
pub const MAX_TAG_BYTES: usize = 64;
/// Longest document id or author key, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Most entries in a map such as `external_ids`.
pub const MAX_MAP_ENTRIES: usize = 64;
/// Longest map key (an external id's system, a release version), in bytes.
pub const MAX_KEY_BYTES: usize = 64;
/// Most heads one release may pin.
pub const MAX_RELEASE_HEADS: usize = 64;
/// The type of one tag of a list of tags (designs', notes'; events' too when they take tags):
/// matched by [`normalise_tag`], shown as first written.
pub const TAG_ITEM: FieldType = FieldType::Str {
    max: MAX_TAG_BYTES,
    check: StrCheck::Tag,
};
/// How many times each limit a received document may reach.
///
/// Edits stop at the limit, but two replicas that each filled a list offline
/// merge past it; if validation refused that merge, nodes would accept
/// different changes and never converge. The headroom keeps honest merges
/// valid while still bounding what a hostile peer can send.
pub const MERGE_HEADROOM: usize = 2;

/// The kinds of document a commons holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    /// A farm tool design.
    Design,
    /// A gathering: build event, workshop, farm visit.
    Event,
    /// A note on an event or design.
    Note,
    /// An author's profile.
    Profile,
    /// A commons' charter: who may write, roles, moderation. It has no fields; each change
    /// carries one operation in its automerge message (see [`crate::charter`]).
    Charter,
}

impl DocKind {
    /// Every kind people write fields in, in order (the charter, which has none, is apart).
    pub const ALL: [DocKind; 4] = [
        DocKind::Design,
        DocKind::Event,
        DocKind::Note,
        DocKind::Profile,
    ];

    /// The kind's name as the CLI and JSON spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            DocKind::Design => "design",
            DocKind::Event => "event",
            DocKind::Note => "note",
            DocKind::Profile => "profile",
            DocKind::Charter => "charter",
        }
    }

    /// The kind's name after its indefinite article, for messages: "a design", "an event".
    pub fn with_article(&self) -> &'static str {
        match self {
            DocKind::Design => "a design",
            DocKind::Event => "an event",
            DocKind::Note => "a note",
            DocKind::Profile => "a profile",
            DocKind::Charter => "a charter",
        }
    }

    /// The kind's field table.
    pub fn fields(&self) -> &'static [Field] {
        match self {
            DocKind::Design => design::FIELDS,
            DocKind::Event => event::FIELDS,
            DocKind::Note => note::FIELDS,
            DocKind::Profile => profile::FIELDS,
            DocKind::Charter => &[],
        }
    }

    /// Whether documents of this kind are content people list and show (not a charter).
    pub fn is_content(&self) -> bool {
        *self != DocKind::Charter
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no document kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a kind of document; use design, event, note or profile")]
pub struct UnknownDocKind {
    /// The word given.
    pub given: String,
}

impl FromStr for DocKind {
    type Err = UnknownDocKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownDocKind {
                given: s.to_string(),
            })
    }
}

/// Everything a new document's first change writes (its skeleton).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDocument {
    /// The kind of document.
    pub kind: DocKind,
    /// The design's name, event's title or profile's name; for a note, the first text of its body.
    pub title: String,
    /// For notes: the id of the event or design the note belongs to (required, fixed for life).
    pub note_target: Option<String>,
    /// For notes: one of [`note::NOTE_KINDS`]; [`note::DEFAULT_NOTE_KIND`] when absent.
    pub note_kind: Option<String>,
}

impl NewDocument {
    /// A design, event or profile skeleton with the given name or title.
    pub fn new(kind: DocKind, title: impl Into<String>) -> Self {
        NewDocument {
            kind,
            title: title.into(),
            note_target: None,
            note_kind: None,
        }
    }

    /// A note skeleton on `target`, with its kind and first body text.
    pub fn note(target: impl Into<String>, kind: Option<&str>, body: impl Into<String>) -> Self {
        NewDocument {
            kind: DocKind::Note,
            title: body.into(),
            note_target: Some(target.into()),
            note_kind: kind.map(str::to_string),
        }
    }
}

/// Writes the document's skeleton: every list, map and text object the kind has is created once, here.
///
/// Two replicas that each created `tags` on their own would hold two
/// competing lists, and the merge would silently keep only one of them with
/// its items. Creating every object in the first change, which all replicas
/// share, means later concurrent edits always land in the same objects.
pub fn init_document<T: Transactable>(tx: &mut T, new: &NewDocument) -> Result<(), SchemaError> {
    if tx.length(ROOT) > 0 {
        return Err(SchemaError::AlreadyInitialised);
    }
    match new.kind {
        DocKind::Design => design::init(tx, &new.title)?,
        DocKind::Event => event::init(tx, &new.title)?,
        DocKind::Note => note::init(
            tx,
            new.note_target.as_deref(),
            new.note_kind.as_deref(),
            &new.title,
        )?,
        DocKind::Profile => profile::init(tx, &new.title)?,
        // A charter holds no fields: its changes are operations in automerge messages.
        DocKind::Charter => return Err(SchemaError::CharterHasNoFields),
    }
    for field in new.kind.fields() {
        let Some(obj_type) = field.ty.obj_type() else {
            continue;
        };
        let exists = tx
            .get(ROOT, field.name)
            .map_err(|e| SchemaError::automerge("read", e))?
            .is_some();
        if !exists {
            tx.put_object(ROOT, field.name, obj_type)
                .map_err(|e| SchemaError::automerge("written", e))?;
        }
    }
    Ok(())
}

/// Design fields that describe the parent itself rather than its content, which a fork does not inherit:
/// the parent's releases and version name, the people who built the parent, and its ids elsewhere.
pub const NOT_INHERITED_BY_FORKS: &[&str] = &["releases", "version", "built", "external_ids"];

/// Empties [`NOT_INHERITED_BY_FORKS`] in a fork's first change.
///
/// Without this a fork would carry its parent's `1.0` (so `design show FORK
/// --version 1.0` showed the parent, and the fork could never name its own
/// `1.0`), and "I have built this" records about a design its builders never
/// saw. Entries are deleted inside the existing objects, never replaced.
pub fn clear_for_fork<T: Transactable>(tx: &mut T) -> Result<(), SchemaError> {
    use automerge::{ObjType, Value};
    for field in NOT_INHERITED_BY_FORKS {
        let found = tx
            .get(ROOT, *field)
            .map_err(|e| SchemaError::automerge("read", e))?;
        let deleted = match found {
            Some((Value::Object(ObjType::Map), obj)) => {
                let keys: Vec<String> = tx.keys(&obj).collect();
                keys.into_iter().try_for_each(|key| tx.delete(&obj, key))
            }
            Some((Value::Object(ObjType::List), obj)) => (0..tx.length(&obj))
                .rev()
                .try_for_each(|i| tx.delete(&obj, i)),
            Some((Value::Scalar(_), _)) => tx.delete(ROOT, *field),
            _ => Ok(()),
        };
        deleted.map_err(|e| SchemaError::automerge("written", e))?;
    }
    Ok(())
}

/// Applies one edit inside a transaction, validating the value first.
///
/// On error nothing has been written, unless automerge itself failed midway
/// (then the caller's transaction should be rolled back, as it would anyway).
pub fn apply_edit<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    edit: &Edit,
    ctx: &EditContext,
) -> Result<(), EditError> {
    if let Some(result) = files::apply(tx, kind, edit, ctx) {
        return result;
    }
    if let Some(owner) = edit.only_for().filter(|owner| *owner != kind) {
        return Err(EditError::NotForKind {
            edit: edit.name(),
            applies_to: owner,
            kind,
        });
    }
    if let Edit::Resolve { field, value } = edit {
        if kind == DocKind::Charter {
            return Err(SchemaError::CharterHasNoFields.into());
        }
        // What no edit may change, no resolution may either (honest nodes never conflict there).
        let head = field.split('.').next().unwrap_or_default();
        if (kind == DocKind::Note && head == "target") || head == "releases" {
            return Err(EditError::Immutable {
                field: field.clone(),
            });
        }
        return conflicts::write_resolution(tx, kind, field, value);
    }
    match kind {
        DocKind::Design => design::apply(tx, edit, ctx),
        DocKind::Event => event::apply(tx, edit),
        DocKind::Note => note::apply(tx, edit),
        DocKind::Profile => profile::apply(tx, edit),
        DocKind::Charter => Err(SchemaError::CharterHasNoFields.into()),
    }
}

/// Checks a whole document's state against its kind's schema: known fields, automerge types, size limits.
///
/// Errors (one variant each): [`SchemaError::UnknownField`],
/// [`SchemaError::WrongType`], [`SchemaError::TooLarge`],
/// [`SchemaError::TooManyItems`], [`SchemaError::MissingField`] (a note
/// without its target), [`SchemaError::Automerge`].
pub fn validate_document<R: ReadDoc>(doc: &R, kind: DocKind) -> Result<(), SchemaError> {
    let view = read::View::new(doc, None);
    validate::check_fields(&view, kind, &ROOT, "", kind.fields())?;
    if kind == DocKind::Note && view.str(&ROOT, "target").is_none() {
        return Err(SchemaError::MissingField {
            kind,
            field: "target",
        });
    }
    Ok(())
}

thread_local! {
    /// Documents validated whole on this thread by [`validate_changed`] (see
    /// [`whole_validations`]).
    static WHOLE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times [`validate_changed`] fell back to validating a whole document on the
/// calling thread: what tests count instead of timing it.
pub fn whole_validations() -> u64 {
    WHOLE.with(std::cell::Cell::get)
}

/// [`validate_document`] for a document that was valid before `changes` were applied to it:
/// only the top-level fields those changes wrote in are checked again.
///
/// A field's validity depends on its own subtree alone, an object never moves out of the
/// subtree it was made in, and every operation acts on one object (its key, its elements):
/// so the fields whose subtrees hold the objects the changes write in are the only ones
/// whose verdict can change. Which objects those are is read from the changes' columns
/// ([`crate::change_columns`]), and each object's field from automerge's parent chain.
/// Whenever that cannot be told (an unreadable change, an object automerge does not know),
/// the whole document is validated, as before. Gossip takes changes one at a time, and
/// validating the whole document after each was a fifth of its cost.
pub fn validate_changed(
    doc: &Automerge,
    kind: DocKind,
    changes: &[automerge::Change],
) -> Result<(), SchemaError> {
    // automerge 0.12 unwraps inside its parent walk; a panic there means "cannot tell".
    let fields = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        changed_fields(doc, changes)
    }))
    .ok()
    .flatten();
    match fields {
        Some(fields) => {
            let view = read::View::new(doc, None);
            validate::check_some_fields(
                &view,
                kind,
                &ROOT,
                kind.fields(),
                fields.iter().map(String::as_str),
            )?;
            if kind == DocKind::Note && view.str(&ROOT, "target").is_none() {
                return Err(SchemaError::MissingField {
                    kind,
                    field: "target",
                });
            }
            Ok(())
        }
        None => {
            WHOLE.with(|n| n.set(n.get() + 1));
            validate_document(doc, kind)
        }
    }
}

/// The top-level fields `changes` write in, or `None` when that cannot be told.
fn changed_fields(
    doc: &Automerge,
    changes: &[automerge::Change],
) -> Option<std::collections::BTreeSet<String>> {
    use crate::change_columns::{targets, Target};
    use automerge::{ObjId, Prop};
    let mut fields = std::collections::BTreeSet::new();
    let mut seen = std::collections::HashSet::new();
    for change in changes {
        let actors: Vec<&automerge::ActorId> = change.actors().collect();
        for target in targets(change.raw_bytes(), change.len())? {
            match target {
                Target::Root { key } => {
                    fields.insert(std::str::from_utf8(key?).ok()?.to_string());
                }
                Target::Object { counter, actor } => {
                    let actor = *actors.get(actor)?;
                    if !seen.insert((counter, actor.clone())) {
                        continue;
                    }
                    // The index is a hint automerge checks and looks up again if wrong.
                    let obj = ObjId::Id(counter, actor.clone(), 0);
                    let path = doc.parents(&obj).ok()?.path();
                    // Root first: the first step is the top-level field.
                    match path.first() {
                        Some((parent, Prop::Map(key))) if *parent == ROOT => {
                            fields.insert(key.clone());
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
    Some(fields)
}

/// Renders a document (optionally at given heads) as the stable JSON the CLI prints with `--json`.
///
/// Every field of the kind is present; absent or mistyped scalars are
/// `null`, texts `""`, lists `[]`, maps `{}`. Unknown heads are ignored.
pub fn render<R: ReadDoc>(
    doc: &R,
    kind: DocKind,
    heads: Option<&[ChangeHash]>,
) -> serde_json::Value {
    let view = read::View::new(doc, heads);
    serde_json::Value::Object(render::render_fields(&view, Some(&ROOT), kind.fields()))
}

/// Top-level fields a change touched, sorted; empty if the document lacks the change.
pub fn fields_touched(doc: &Automerge, change_hash: &ChangeHash) -> Vec<String> {
    history::fields_touched(doc, change_hash)
}

/// Who last wrote each part of a field or dotted path (`summary`, `steps`, `steps.2`, `licence`).
///
/// Texts give maximal runs of characters written by one change; scalars
/// their value and change; lists one span per element; maps one per key.
/// An absent field gives no spans.
pub fn blame(doc: &Automerge, kind: DocKind, field: &str) -> Result<Vec<BlameSpan>, SchemaError> {
    history::blame(doc, kind, kind.fields(), field)
}

/// A reader of `doc` at `heads` (current state when `None`), for the pure readers outside this module.
pub(crate) fn read_view<'a, R: ReadDoc>(
    doc: &'a R,
    heads: Option<&'a [ChangeHash]>,
) -> read::View<'a, R> {
    read::View::new(doc, heads)
}

/// Lists the field names of a kind, in display order.
pub fn field_names(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Design => design::NAMES,
        DocKind::Event => event::NAMES,
        DocKind::Note => note::NAMES,
        DocKind::Profile => profile::NAMES,
        DocKind::Charter => &[],
    }
}
