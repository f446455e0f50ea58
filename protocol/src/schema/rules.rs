//! Rules that hold for a field whichever edit writes it: the fields a document cannot lose,
//! and the fields whose value names another document.
//!
//! The node resolves what a person typed for a document (a prefix, a name) before the edit
//! is applied; [`doc_reference`] tells it which value of an edit is such a name and what kind
//! of document it must be. Like every edit rule, these apply to local edits only: what peers
//! send is checked by [`super::validate_document`], which stays lenient.

use super::edit::Edit;
use super::error::{EditError, ValueError};
use super::read::View;
use super::spec::{find, FieldType, StrCheck};
use super::DocKind;
use automerge::{ReadDoc, ROOT};

/// The fields a document of `kind` must keep non-empty: its name or title, a note's target,
/// kind and body. `--unset` and an empty `--set` or text are refused on them alike.
pub fn required_fields(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Design | DocKind::Profile => &["name"],
        DocKind::Event => &["title"],
        DocKind::Note => &["target", "kind", "body"],
        DocKind::Charter => &[],
    }
}

/// Whether `field` (a top-level name) is one [`required_fields`] lists.
pub(crate) fn is_required(kind: DocKind, field: &str) -> bool {
    required_fields(kind).contains(&field)
}

/// Refuses an edit that would empty or remove a required field; an edit of another field passes.
pub(crate) fn check_keeps_required(kind: DocKind, edit: &Edit) -> Result<(), EditError> {
    let (field, emptied) = match edit {
        Edit::Unset { field } => (field, true),
        Edit::Set { field, value: text } | Edit::ReplaceText { field, text } => {
            (field, text.trim().is_empty())
        }
        _ => return Ok(()),
    };
    if emptied && is_required(kind, field) {
        return Err(ValueError::Empty {
            field: field.clone(),
        }
        .into());
    }
    Ok(())
}

/// Checks a new document after its first edits: every required field holds something.
///
/// A note's body arrives in the same change as its skeleton, so this is checked once the
/// whole first change is written, not per edit.
pub fn check_required<R: ReadDoc>(doc: &R, kind: DocKind) -> Result<(), EditError> {
    let view = View::new(doc, None);
    for field in required_fields(kind) {
        let present = match find(kind.fields(), field).map(|f| &f.ty) {
            Some(FieldType::Text { .. }) => view
                .obj(&ROOT, *field, automerge::ObjType::Text)
                .and_then(|text| view.text(&text).ok())
                .is_some_and(|t| !t.trim().is_empty()),
            _ => view
                .str(&ROOT, *field)
                .is_some_and(|s| !s.trim().is_empty()),
        };
        if !present {
            return Err(ValueError::Empty {
                field: (*field).to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// The value of an edit that names another document, for the node to resolve.
#[derive(Debug)]
pub struct DocReference<'a> {
    /// The field it is written to (`derivative_of`, `designs`, `related.design`, ...).
    pub field: &'static str,
    /// The value as typed; the node replaces it with the full id.
    pub value: &'a mut String,
    /// The kind the named document must be, when the field says.
    pub expects: Option<DocKind>,
    /// Whether the edit removes the reference (then a value naming nothing held is left as
    /// typed, since it may name a document this node no longer holds).
    pub removes: bool,
}

/// The kind of document a reference field of `kind` must name, if it is fixed.
fn expected_kind(kind: DocKind, field: &str) -> Option<DocKind> {
    match (kind, field) {
        (DocKind::Design, "derivative_of" | "variant_of" | "related.design") => {
            Some(DocKind::Design)
        }
        (DocKind::Event, "designs") => Some(DocKind::Design),
        (DocKind::Note, "reply_to") => Some(DocKind::Note),
        _ => None,
    }
}

/// The name of a top-level list of `kind` whose items are document ids.
fn id_list(kind: DocKind, field: &str) -> Option<&'static str> {
    find(kind.fields(), field)
        .filter(|f| {
            matches!(
                &f.ty,
                FieldType::List {
                    item: FieldType::Str {
                        check: StrCheck::DocId,
                        ..
                    },
                    ..
                }
            )
        })
        .map(|f| f.name)
}

/// The document an edit of a `kind` document names, if any: a `set` of an id field, an item
/// added to or removed from a list of ids, or a related design.
pub fn doc_reference(kind: DocKind, edit: &mut Edit) -> Option<DocReference<'_>> {
    let is_id = |ty: &FieldType| {
        matches!(
            ty,
            FieldType::Str {
                check: StrCheck::DocId,
                ..
            }
        )
    };
    let (field, value, removes) = match edit {
        Edit::Set { field, value } => {
            let f = find(kind.fields(), field).filter(|f| is_id(&f.ty))?;
            (f.name, value, false)
        }
        Edit::AddItem { field, item } => (id_list(kind, field)?, item, false),
        Edit::RemoveItem { field, item } => (id_list(kind, field)?, item, true),
        Edit::AddRelated { design, .. } => ("related.design", design, false),
        Edit::RemoveRelated { design, .. } => ("related.design", design, true),
        _ => return None,
    };
    Some(DocReference {
        field,
        value,
        expects: expected_kind(kind, field),
        removes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_with_the_kind_they_must_name() {
        let mut set = Edit::Set {
            field: "derivative_of".into(),
            value: "abcd".into(),
        };
        let found = doc_reference(DocKind::Design, &mut set).expect("a reference");
        assert_eq!(
            (found.field, found.expects, found.removes),
            ("derivative_of", Some(DocKind::Design), false)
        );
        *found.value = "full".into();
        assert_eq!(
            set,
            Edit::Set {
                field: "derivative_of".into(),
                value: "full".into()
            }
        );
        let mut add = Edit::AddItem {
            field: "designs".into(),
            item: "abcd".into(),
        };
        let found = doc_reference(DocKind::Event, &mut add).expect("a reference");
        assert_eq!(found.expects, Some(DocKind::Design));
        let mut remove = Edit::RemoveRelated {
            relation: "component".into(),
            design: "abcd".into(),
        };
        assert!(doc_reference(DocKind::Design, &mut remove).is_some_and(|r| r.removes));
        let mut tag = Edit::AddItem {
            field: "tags".into(),
            item: "no-till".into(),
        };
        assert!(doc_reference(DocKind::Design, &mut tag).is_none());
        let mut name = Edit::Set {
            field: "name".into(),
            value: "x".into(),
        };
        assert!(doc_reference(DocKind::Design, &mut name).is_none());
    }

    #[test]
    fn required_fields_cannot_be_emptied_by_any_edit() {
        for edit in [
            Edit::Unset {
                field: "name".into(),
            },
            Edit::Set {
                field: "name".into(),
                value: "  ".into(),
            },
        ] {
            assert!(matches!(
                check_keeps_required(DocKind::Design, &edit),
                Err(EditError::Value(ValueError::Empty { .. }))
            ));
        }
        let body = Edit::ReplaceText {
            field: "body".into(),
            text: "\n".into(),
        };
        assert!(check_keeps_required(DocKind::Note, &body).is_err());
        let summary = Edit::ReplaceText {
            field: "summary".into(),
            text: String::new(),
        };
        assert!(check_keeps_required(DocKind::Design, &summary).is_ok());
        let stage = Edit::Unset {
            field: "stage".into(),
        };
        assert!(check_keeps_required(DocKind::Design, &stage).is_ok());
    }
}
