//! Validation of whole documents and rendering of malformed ones.

use super::*;
use serde_json::json;

use automerge::transaction::Transactable;
use automerge::{ObjType, ScalarValue};

/// Writes raw values into a fresh design, as a hostile or buggy peer could.
fn tampered(write: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> Automerge {
    let mut doc = create(DocKind::Design, "Crimper");
    doc.transact(|tx| {
        write(tx);
        Ok::<_, automerge::AutomergeError>(())
    })
    .expect("raw write");
    doc
}

#[test]
fn validation_rejects_what_the_schema_forbids() {
    let kind = DocKind::Design;
    let unknown = tampered(|tx| tx.put(ROOT, "colour", "red").expect("put"));
    assert!(matches!(
        validate_document(&unknown, kind),
        Err(SchemaError::UnknownField { ref path, .. }) if path == "colour"
    ));
    let wrong = tampered(|tx| tx.put(ROOT, "tags", "a,b").expect("put"));
    assert_eq!(
        validate_document(&wrong, kind),
        Err(SchemaError::WrongType {
            path: "tags".into(),
            expected: "a list of strings",
            found: "a string".into()
        })
    );
    let long = "n".repeat(MAX_TITLE_BYTES * MERGE_HEADROOM + 1);
    let oversized = tampered(|tx| tx.put(ROOT, "name", long.as_str()).expect("put"));
    assert!(
        matches!(validate_document(&oversized, kind), Err(SchemaError::TooLarge { ref path, .. }) if path == "name")
    );
    let big_text = tampered(|tx| {
        let summary = tx.put_object(ROOT, "summary", ObjType::Text).expect("text");
        // Two bytes a character: over the hard limit in bytes, under it in characters.
        let text = format!("{}!", "é".repeat(MAX_TEXT_BYTES));
        tx.splice_text(&summary, 0, 0, &text).expect("splice");
    });
    assert!(
        matches!(validate_document(&big_text, kind), Err(SchemaError::TooLarge { ref path, .. }) if path == "summary")
    );
    let many = tampered(|tx| {
        let tags = tx.put_object(ROOT, "tags", ObjType::List).expect("list");
        for i in 0..=MAX_TAGS * MERGE_HEADROOM {
            tx.insert(&tags, i, format!("t{i}")).expect("insert");
        }
    });
    assert!(
        matches!(validate_document(&many, kind), Err(SchemaError::TooManyItems { ref path, .. }) if path == "tags")
    );
    let nested = tampered(|tx| {
        let licence = tx.put_object(ROOT, "licence", ObjType::Map).expect("map");
        tx.put(&licence, "colour", "MIT").expect("put");
    });
    assert!(matches!(
        validate_document(&nested, kind),
        Err(SchemaError::UnknownField { ref path, .. }) if path == "licence.colour"
    ));
    let bad_item = tampered(|tx| {
        let bom = tx.put_object(ROOT, "bom", ObjType::List).expect("list");
        tx.insert(&bom, 0, "bolt").expect("insert");
    });
    assert!(matches!(
        validate_document(&bad_item, kind),
        Err(SchemaError::WrongType { ref path, .. }) if path == "bom.1"
    ));
    let number_as_text = tampered(|tx| {
        let facts = tx
            .put_object(ROOT, "build_facts", ObjType::Map)
            .expect("map");
        tx.put(&facts, "weight_kg", ScalarValue::Boolean(true))
            .expect("put");
    });
    assert!(matches!(
        validate_document(&number_as_text, kind),
        Err(SchemaError::WrongType { .. })
    ));
    // Within the merge headroom: two replicas that each added tags offline.
    let merged = tampered(|tx| {
        let tags = tx.put_object(ROOT, "tags", ObjType::List).expect("list");
        for i in 0..MAX_TAGS + 10 {
            tx.insert(&tags, i, format!("t{i}")).expect("insert");
        }
    });
    validate_document(&merged, kind).expect("merge overshoot is accepted");
    let mut orphan = Automerge::new();
    orphan
        .transact(|tx| tx.put_object(ROOT, "body", ObjType::Text).map(|_| ()))
        .expect("raw");
    assert_eq!(
        validate_document(&orphan, DocKind::Note),
        Err(SchemaError::MissingField {
            kind: DocKind::Note,
            field: "target"
        })
    );
}

#[test]
fn render_survives_malformed_documents_and_reads_old_heads() {
    let kind = DocKind::Design;
    let hostile = tampered(|tx| {
        tx.put(ROOT, "name", 42).expect("put");
        tx.put_object(ROOT, "tags", ObjType::Text).expect("text");
        tx.put(ROOT, "licence", "MIT").expect("put");
        tx.put(ROOT, "summary", ScalarValue::Null).expect("put");
        let steps = tx.put_object(ROOT, "steps", ObjType::List).expect("list");
        tx.insert(&steps, 0, "not a text").expect("insert");
        let bom = tx.put_object(ROOT, "bom", ObjType::List).expect("list");
        tx.insert(&bom, 0, 7).expect("insert");
        tx.put(ROOT, "colour", "red").expect("put");
    });
    let out = shown(&hostile, kind);
    assert_eq!(out["name"], json!(null));
    assert_eq!(out["tags"], json!([]));
    assert_eq!(
        out["licence"],
        json!({"hardware": null, "documentation": null, "software": null})
    );
    assert_eq!(out["summary"], json!(""));
    assert_eq!(out["steps"], json!([""]));
    assert_eq!(
        out["bom"],
        json!([{"name": null, "quantity": null, "unit": null, "sourcing": null, "reference": null}])
    );
    assert!(out.get("colour").is_none(), "unknown keys are not rendered");
    assert!(blame(&hostile, kind, "tags").is_err());

    let mut doc = create(kind, "Crimper v1");
    let before = doc.get_heads();
    edit(&mut doc, kind, set("name", "Crimper v2")).expect("rename");
    assert_eq!(
        render(&doc, kind, Some(&before))["name"],
        json!("Crimper v1")
    );
    assert_eq!(render(&doc, kind, None)["name"], json!("Crimper v2"));
}

#[test]
fn documents_older_than_their_fields_get_objects_only_from_accepted_edits() {
    let kind = DocKind::Design;
    let mut doc = Automerge::new().with_actor(actor("alice"));
    doc.transact(|tx| tx.put(ROOT, "name", "Old plan"))
        .expect("a document from before the skeleton");
    let refused = [
        set("licence.hardware", "GPL-9"),
        set("build_facts.weight_kg", "heavy"),
        set("external_ids.Bad Key", "x"),
        Edit::AddItem {
            field: "tags".into(),
            item: " ".into(),
        },
        Edit::ReplaceText {
            field: "summary".into(),
            text: "x".repeat(MAX_TEXT_BYTES + 1),
        },
        Edit::AddStep {
            text: "Drill".into(),
            at: Some(3),
        },
        Edit::RemoveStep { step: 1 },
        Edit::RemoveItem {
            field: "tags".into(),
            item: "x".into(),
        },
        Edit::RemoveBomLine { position: 1 },
        Edit::RemoveContributor { name: "Ana".into() },
    ];
    for bad in refused {
        let mut tx = doc.transaction();
        let result = apply_edit(&mut tx, kind, &bad, &ctx("alice"));
        assert!(result.is_err(), "{bad:?} should be refused");
        assert_eq!(tx.pending_ops(), 0, "{bad:?} wrote before it was refused");
        tx.rollback();
    }
    for good in [
        set("licence.hardware", "CERN-OHL-S-2.0"),
        Edit::AddItem {
            field: "tags".into(),
            item: "seeding".into(),
        },
        Edit::AppendText {
            field: "summary".into(),
            text: "Sows into clay.".into(),
        },
        Edit::AddStep {
            text: "Drill".into(),
            at: None,
        },
    ] {
        edit(&mut doc, kind, good).expect("accepted on an old document");
    }
    let out = shown(&doc, kind);
    assert_eq!(out["licence"]["hardware"], json!("CERN-OHL-S-2.0"));
    assert_eq!(out["tags"], json!(["seeding"]));
    assert_eq!(out["summary"], json!("Sows into clay."));
    assert_eq!(out["steps"], json!(["Drill"]));
}

#[test]
fn a_fork_starts_without_its_parents_releases_builds_and_ids() {
    let mut doc = create(DocKind::Design, "Crimper");
    for change in [
        set("version", "1.0"),
        set("external_ids.farmhack", "roller-crimper"),
        Edit::AddBuilt {
            place: Some("Drôme".into()),
            note: None,
        },
        Edit::AddStep {
            text: "Cut the drum.".into(),
            at: None,
        },
        set("licence.hardware", "CERN-OHL-S-2.0"),
    ] {
        edit(&mut doc, DocKind::Design, change).expect("edit");
    }
    let heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    edit(
        &mut doc,
        DocKind::Design,
        Edit::Release {
            version: "1.0".into(),
            heads,
        },
    )
    .expect("release");
    let parent = shown(&doc, DocKind::Design);
    let mut fork = doc.fork().with_actor(actor("bob"));
    fork.transact(|tx| clear_for_fork(tx)).expect("clear");
    validate_document(&fork, DocKind::Design).expect("still valid");
    let child = shown(&fork, DocKind::Design);
    assert_eq!(child["releases"], json!({}));
    assert_eq!(child["version"], json!(null));
    assert_eq!(child["built"], json!([]));
    assert_eq!(child["external_ids"], json!({}));
    for kept in ["name", "steps", "licence"] {
        assert_eq!(child[kept], parent[kept], "{kept} is inherited");
    }
    // The objects are the parent's, emptied: the fork can release its own 1.0 into them.
    let heads: Vec<String> = fork.get_heads().iter().map(|h| h.to_string()).collect();
    edit(
        &mut fork,
        DocKind::Design,
        Edit::Release {
            version: "1.0".into(),
            heads,
        },
    )
    .expect("the fork's own 1.0");
    assert_eq!(
        shown(&doc, DocKind::Design),
        parent,
        "the parent is untouched"
    );
}
