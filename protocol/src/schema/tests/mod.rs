//! Behaviour of the schema layer end to end: skeletons, every edit, validation,
//! rendering, history, and what survives concurrent edits on two replicas.

mod design_edits;
mod documents;
mod history;
mod other_edits;

use super::*;
use crate::genesis::DocId;
use automerge::ActorId;
use serde_json::json;

pub(super) fn actor(name: &str) -> ActorId {
    ActorId::from(name.as_bytes().to_vec())
}

pub(super) fn ctx(author: &str) -> EditContext {
    EditContext {
        author: author.to_string(),
        now_unix: 1_750_000_000,
    }
}

pub(super) fn doc_id(n: u8) -> String {
    DocId([n; 32]).to_string()
}

pub(super) fn create(kind: DocKind, title: &str) -> Automerge {
    create_with(&NewDocument::new(kind, title))
}

pub(super) fn create_with(new: &NewDocument) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor("alice"));
    doc.transact(|tx| init_document(tx, new)).expect("skeleton");
    doc
}

/// Applies an edit as `alice`, after a JSON round trip, as the CLI would send it.
pub(super) fn edit(
    doc: &mut Automerge,
    kind: DocKind,
    edit: Edit,
) -> Result<Option<ChangeHash>, EditError> {
    edit_as(doc, kind, edit, "alice")
}

pub(super) fn edit_as(
    doc: &mut Automerge,
    kind: DocKind,
    edit: Edit,
    author: &str,
) -> Result<Option<ChangeHash>, EditError> {
    let wire = serde_json::to_string(&edit).expect("serialise");
    let back: Edit = serde_json::from_str(&wire).expect("deserialise");
    assert_eq!(back, edit, "edit must survive JSON");
    let heads = doc.get_heads();
    let result = doc
        .transact(|tx| apply_edit(tx, kind, &back, &ctx(author)))
        .map(|ok| ok.hash)
        .map_err(|failure| failure.error);
    if result.is_err() {
        assert_eq!(doc.get_heads(), heads, "a refused edit writes nothing");
    }
    let outcome = result?;
    validate_document(doc, kind).expect("an accepted edit leaves a valid document");
    Ok(outcome)
}

pub(super) fn set(field: &str, value: &str) -> Edit {
    Edit::Set {
        field: field.into(),
        value: value.into(),
    }
}

pub(super) fn shown(doc: &Automerge, kind: DocKind) -> serde_json::Value {
    render(doc, kind, None)
}

#[test]
fn kinds_parse_print_and_serialise() {
    for kind in DocKind::ALL {
        assert_eq!(kind.as_str().parse::<DocKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
        assert_eq!(
            serde_json::to_value(kind).expect("json"),
            json!(kind.as_str())
        );
        let names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
        assert_eq!(
            field_names(kind),
            names.as_slice(),
            "NAMES and FIELDS of {kind} agree"
        );
    }
    assert_eq!("Design".parse::<DocKind>(), Ok(DocKind::Design));
    let err = "tool".parse::<DocKind>().expect_err("not a kind");
    assert!(err.to_string().contains("design, event, note or profile"));
}

#[test]
fn skeletons_hold_every_object_and_validate() {
    for kind in [DocKind::Design, DocKind::Event, DocKind::Profile] {
        let doc = create(kind, "Roller crimper");
        validate_document(&doc, kind).expect("fresh skeleton is valid");
        for field in kind.fields() {
            if let Some(ty) = field.ty.obj_type() {
                let got = doc.get(ROOT, field.name).expect("read").map(|(v, _)| v);
                assert_eq!(
                    got,
                    Some(automerge::Value::Object(ty)),
                    "{kind}.{}",
                    field.name
                );
            }
        }
    }
    let design = create(DocKind::Design, "  Roller crimper ");
    assert_eq!(
        shown(&design, DocKind::Design)["name"],
        json!("Roller crimper")
    );

    let note = create_with(&NewDocument::note(
        doc_id(1),
        Some("Build-Log"),
        "Day one: cut tubes.",
    ));
    validate_document(&note, DocKind::Note).expect("note skeleton");
    let out = shown(&note, DocKind::Note);
    assert_eq!(out["target"], json!(doc_id(1)));
    assert_eq!(out["kind"], json!("build-log"));
    assert_eq!(out["body"], json!("Day one: cut tubes."));
    assert_eq!(out["mentions"], json!([]));

    let mut again = create(DocKind::Design, "x");
    let twice = again
        .transact(|tx| init_document(tx, &NewDocument::new(DocKind::Design, "y")))
        .map_err(|f| f.error);
    assert_eq!(twice.err(), Some(SchemaError::AlreadyInitialised));

    let mut empty = Automerge::new();
    let no_target = empty
        .transact(|tx| init_document(tx, &NewDocument::new(DocKind::Note, "hello")))
        .map_err(|f| f.error);
    assert_eq!(
        no_target.err(),
        Some(SchemaError::MissingField {
            kind: DocKind::Note,
            field: "target"
        })
    );
    let bad_kind = empty
        .transact(|tx| init_document(tx, &NewDocument::note(doc_id(1), Some("rant"), "")))
        .map_err(|f| f.error);
    assert!(matches!(
        bad_kind,
        Err(SchemaError::Value(ValueError::NotAChoice { .. }))
    ));
    let untitled = empty
        .transact(|tx| init_document(tx, &NewDocument::new(DocKind::Design, "  ")))
        .map_err(|f| f.error);
    assert!(matches!(
        untitled,
        Err(SchemaError::Value(ValueError::Empty { .. }))
    ));
    assert!(
        empty.get_heads().is_empty(),
        "refused skeletons write nothing"
    );
}
