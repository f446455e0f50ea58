//! A note: a brainstorm, build log, decision or chronicle attached to an event or a design.
//!
//! The body is one collaborative text, so participants at a workshop can
//! write the same brainstorm from several laptops on the farm's LAN. The
//! author is not a field: it is the signer of each change.

use super::edit::Edit;
use super::error::{EditError, SchemaError};
use super::spec::{
    check_str, choice_field, id_field, list_field, str_field, text_field, Field, FieldType,
    StrCheck,
};
use super::write::apply_generic;
use super::{DocKind, MAX_ID_BYTES, MAX_LIST_ITEMS, MAX_TAGS, MAX_TAG_BYTES, MAX_TEXT_BYTES};
use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT};

/// What a note is.
pub const NOTE_KINDS: &[&str] = &[
    "brainstorm",
    "build-log",
    "need-statement",
    "decision",
    "question",
    "chronicle",
    "comment",
];

/// The kind a note gets when none is given.
pub const DEFAULT_NOTE_KIND: &str = "comment";

/// Field names of a note, in display order.
pub const NAMES: &[&str] = &[
    "target", "reply_to", "kind", "body", "mentions", "tags", "language", "files",
];

const TAG: FieldType = super::TAG_ITEM;
const MENTION: FieldType = FieldType::Str {
    max: MAX_ID_BYTES,
    check: StrCheck::DocId,
};

/// The note's field table.
pub(crate) static FIELDS: &[Field] = &[
    id_field("target"),
    id_field("reply_to"),
    choice_field("kind", NOTE_KINDS),
    text_field("body", MAX_TEXT_BYTES),
    list_field("mentions", MAX_LIST_ITEMS, &MENTION, true),
    list_field("tags", MAX_TAGS, &TAG, true),
    str_field("language", MAX_TAG_BYTES),
    crate::attachment::FILES_FIELD,
];

/// Writes the note's scalars and first body text; the target is fixed here for life.
pub(crate) fn init<T: Transactable>(
    tx: &mut T,
    target: Option<&str>,
    kind: Option<&str>,
    body: &str,
) -> Result<(), SchemaError> {
    let target = target.ok_or(SchemaError::MissingField {
        kind: DocKind::Note,
        field: "target",
    })?;
    let target = check_str("target", MAX_ID_BYTES, StrCheck::DocId, target)?;
    let kind = check_str(
        "kind",
        MAX_TAG_BYTES,
        StrCheck::OneOf(NOTE_KINDS),
        kind.unwrap_or(DEFAULT_NOTE_KIND),
    )?;
    if body.len() > MAX_TEXT_BYTES {
        return Err(super::ValueError::TooLong {
            field: "body".to_string(),
            bytes: body.len(),
            max: MAX_TEXT_BYTES,
        }
        .into());
    }
    let written = |e| SchemaError::automerge("written", e);
    tx.put(ROOT, "target", target).map_err(written)?;
    tx.put(ROOT, "kind", kind).map_err(written)?;
    let text = tx
        .put_object(ROOT, "body", ObjType::Text)
        .map_err(written)?;
    tx.splice_text(&text, 0, 0, body).map_err(written)
}

/// Applies an edit to a note; the target cannot move once set.
pub(crate) fn apply<T: Transactable>(tx: &mut T, edit: &Edit) -> Result<(), EditError> {
    match edit {
        Edit::Set { field, .. } | Edit::Unset { field } if field == "target" => {
            Err(EditError::Immutable {
                field: field.clone(),
            })
        }
        other => apply_generic(tx, DocKind::Note, FIELDS, other),
    }
}
