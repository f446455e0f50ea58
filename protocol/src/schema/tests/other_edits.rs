//! Event, note and profile edits, and the errors bad edits give.

use super::*;
use serde_json::json;

#[test]
fn event_fields_round_trip() {
    let kind = DocKind::Event;
    let mut doc = create(kind, "Farm Hack Vermont");
    for (field, value) in [
        ("kind", "build"),
        ("status", "planned"),
        ("start", "2025-06-14"),
        ("end", "2025-06-16T17:00"),
        ("location.name", "Intervale Center"),
        ("location.country", "USA"),
        ("location.lat", "44.49"),
        ("location.lon", "-73.2"),
        ("description", "Three days of building."),
    ] {
        edit(&mut doc, kind, set(field, value)).unwrap_or_else(|e| panic!("{field}: {e}"));
    }
    for (field, item) in [
        ("activities", "Build"),
        ("activities", "charrette"),
        ("organisers", "Louis"),
        ("topics", "tractors"),
        ("designs", doc_id(9).as_str()),
    ] {
        edit(
            &mut doc,
            kind,
            Edit::AddItem {
                field: field.into(),
                item: item.into(),
            },
        )
        .expect("add");
    }
    edit(
        &mut doc,
        kind,
        Edit::AddOutcome {
            outcome: "units-built".into(),
            detail: Some("3 crimpers".into()),
        },
    )
    .expect("outcome");
    edit(
        &mut doc,
        kind,
        Edit::AddOutcome {
            outcome: "new-design".into(),
            detail: None,
        },
    )
    .expect("outcome");
    edit(&mut doc, kind, Edit::RemoveOutcome { position: 2 }).expect("remove outcome");
    let out = shown(&doc, kind);
    assert_eq!(out["kind"], json!("build"));
    assert_eq!(out["start"], json!("2025-06-14"));
    assert_eq!(out["end"], json!("2025-06-16T17:00"));
    assert_eq!(
        out["location"],
        json!({"name": "Intervale Center", "address": null, "country": "USA", "lat": 44.49, "lon": -73.2})
    );
    assert_eq!(out["activities"], json!(["build", "charrette"]));
    assert_eq!(out["designs"], json!([doc_id(9)]));
    assert_eq!(
        out["outcomes"],
        json!([{"kind": "units-built", "detail": "3 crimpers"}])
    );

    assert_eq!(
        edit(&mut doc, kind, set("end", "2025-06-13")),
        Err(EditError::EndBeforeStart {
            start: "2025-06-14".into(),
            end: "2025-06-13".into()
        })
    );
    assert!(matches!(
        edit(&mut doc, kind, set("start", "2025-06-17")),
        Err(EditError::EndBeforeStart { .. })
    ));
    assert!(matches!(
        edit(&mut doc, kind, set("start", "14/06/2025")),
        Err(EditError::Value(ValueError::BadDate { .. }))
    ));
    assert!(matches!(
        edit(&mut doc, kind, set("location.lat", "91")),
        Err(EditError::Value(ValueError::OutOfRange { .. }))
    ));
    assert!(matches!(
        edit(
            &mut doc,
            kind,
            Edit::AddItem {
                field: "activities".into(),
                item: "party".into()
            }
        ),
        Err(EditError::Value(ValueError::NotAChoice { .. }))
    ));
    assert_eq!(
        edit(
            &mut doc,
            kind,
            Edit::AddStep {
                text: "x".into(),
                at: None
            }
        ),
        Err(EditError::NotForKind {
            edit: "add_step",
            applies_to: DocKind::Design,
            kind
        })
    );
}

#[test]
fn notes_and_profiles_round_trip() {
    let mut note = create_with(&NewDocument::note(doc_id(1), None, "We need"));
    let kind = DocKind::Note;
    edit(
        &mut note,
        kind,
        Edit::AppendText {
            field: "body".into(),
            text: " a clay-soil seeder.".into(),
        },
    )
    .expect("append");
    edit(&mut note, kind, set("kind", "need-statement")).expect("kind");
    edit(&mut note, kind, set("reply_to", &doc_id(2))).expect("reply");
    edit(&mut note, kind, set("language", "en")).expect("language");
    edit(
        &mut note,
        kind,
        Edit::AddItem {
            field: "mentions".into(),
            item: doc_id(3),
        },
    )
    .expect("mention");
    edit(
        &mut note,
        kind,
        Edit::AddItem {
            field: "tags".into(),
            item: "clay".into(),
        },
    )
    .expect("tag");
    assert_eq!(
        shown(&note, kind),
        json!({"target": doc_id(1), "reply_to": doc_id(2), "kind": "need-statement",
               "body": "We need a clay-soil seeder.", "mentions": [doc_id(3)], "tags": ["clay"], "language": "en", "files": []})
    );
    assert_eq!(
        edit(&mut note, kind, set("target", &doc_id(4))),
        Err(EditError::Immutable {
            field: "target".into()
        })
    );
    assert_eq!(
        edit(
            &mut note,
            kind,
            Edit::Unset {
                field: "target".into()
            }
        ),
        Err(EditError::Immutable {
            field: "target".into()
        })
    );

    let mut profile = create(DocKind::Profile, "Ana");
    edit(&mut profile, DocKind::Profile, set("location", "Drôme")).expect("location");
    edit(
        &mut profile,
        DocKind::Profile,
        Edit::ReplaceText {
            field: "bio".into(),
            text: "Market gardener.".into(),
        },
    )
    .expect("bio");
    assert_eq!(
        shown(&profile, DocKind::Profile),
        json!({"name": "Ana", "location": "Drôme", "bio": "Market gardener."})
    );
}

#[test]
fn bad_edits_say_what_to_do() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Crimper");
    let err = edit(&mut doc, kind, set("colour", "red")).expect_err("unknown");
    assert!(
        err.to_string().starts_with(
            "unknown field `colour` for a design; known fields: name, summary, problem,"
        ),
        "{err}"
    );
    let err = edit(&mut doc, kind, set("licence.hardware", "GPL-9")).expect_err("bad spdx");
    assert!(matches!(&err, EditError::Value(ValueError::Licence { .. })));
    assert!(
        err.to_string()
            .contains("licence `GPL-9` is not a valid SPDX expression"),
        "{err}"
    );
    let err = edit(&mut doc, kind, set("licence", "MIT")).expect_err("a record");
    assert!(
        err.to_string()
            .contains("licence.hardware, licence.documentation, licence.software"),
        "{err}"
    );
    let err = edit(&mut doc, kind, set("licence.colour", "MIT")).expect_err("unknown part");
    assert!(
        err.to_string()
            .contains("known fields: hardware, documentation, software"),
        "{err}"
    );
    let err = edit(&mut doc, kind, set("tags", "a,b")).expect_err("a list");
    // Said in the flags a person types, not the edit's internal name (`add_item`).
    assert!(err.to_string().contains("--add tags=ITEM"), "{err}");
    assert!(!err.to_string().contains("add_item"), "{err}");
    let err = edit(&mut doc, kind, set("stage", "prototyp")).expect_err("misspelt");
    assert!(
        err.to_string().contains("did you mean `prototype`?"),
        "{err}"
    );
    let err = edit(&mut doc, kind, set("sumary", "x")).expect_err("misspelt");
    assert!(err.to_string().contains("did you mean `summary`?"), "{err}");
    let err = edit(&mut doc, kind, set("license.hardware", "MIT")).expect_err("misspelt");
    assert!(
        err.to_string().contains("did you mean `licence.hardware`?"),
        "{err}"
    );
    assert!(matches!(
        edit(&mut doc, kind, set("stage", "banana")),
        Err(EditError::Value(ValueError::NotAChoice { .. }))
    ));
    assert!(matches!(
        edit(&mut doc, kind, set("name", &"n".repeat(201))),
        Err(EditError::Value(ValueError::TooLong { .. }))
    ));
    assert!(matches!(
        edit(&mut doc, kind, set("name", " ")),
        Err(EditError::Value(ValueError::Empty { .. }))
    ));
    assert!(matches!(
        edit(&mut doc, kind, set("build_facts.participants", "2.5")),
        Err(EditError::Value(ValueError::NotWhole { .. }))
    ));
    assert!(matches!(
        edit(&mut doc, kind, set("external_ids.Farm Hack", "x")),
        Err(EditError::Value(ValueError::BadKey { .. }))
    ));
    assert!(matches!(
        edit(&mut doc, kind, set("name.first", "x")),
        Err(EditError::WrongEdit { .. })
    ));
    assert_eq!(
        edit(
            &mut doc,
            kind,
            Edit::AddOutcome {
                outcome: "new-design".into(),
                detail: None
            }
        ),
        Err(EditError::NotForKind {
            edit: "add_outcome",
            applies_to: DocKind::Event,
            kind
        })
    );
}
