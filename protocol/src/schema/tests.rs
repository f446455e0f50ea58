//! Behaviour of the schema layer end to end: skeletons, every edit, validation,
//! rendering, history, and what survives concurrent edits on two replicas.

use super::*;
use crate::genesis::DocId;
use automerge::transaction::Transactable;
use automerge::{ActorId, ObjType, ScalarValue};
use serde_json::json;

fn actor(name: &str) -> ActorId {
    ActorId::from(name.as_bytes().to_vec())
}

fn ctx(author: &str) -> EditContext {
    EditContext {
        author: author.to_string(),
        now_unix: 1_750_000_000,
    }
}

fn doc_id(n: u8) -> String {
    DocId([n; 32]).to_string()
}

fn create(kind: DocKind, title: &str) -> Automerge {
    create_with(&NewDocument::new(kind, title))
}

fn create_with(new: &NewDocument) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor("alice"));
    doc.transact(|tx| init_document(tx, new)).expect("skeleton");
    doc
}

/// Applies an edit as `alice`, after a JSON round trip, as the CLI would send it.
fn edit(doc: &mut Automerge, kind: DocKind, edit: Edit) -> Result<Option<ChangeHash>, EditError> {
    edit_as(doc, kind, edit, "alice")
}

fn edit_as(
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

fn set(field: &str, value: &str) -> Edit {
    Edit::Set {
        field: field.into(),
        value: value.into(),
    }
}

fn shown(doc: &Automerge, kind: DocKind) -> serde_json::Value {
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

#[test]
fn design_scalars_round_trip() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Roller crimper");
    for (field, value) in [
        ("name", "Roller crimper v2"),
        ("stage", "Functional-Prototype"),
        ("licence.hardware", "CERN-OHL-S-2.0"),
        ("licence.documentation", "CC-BY-SA-4.0"),
        ("licence.software", "GPL-3.0-or-later"),
        ("licensor", "Farm Hack"),
        ("documentation_language", "fr"),
        ("version", "5.6"),
        ("derivative_of", &doc_id(2)),
        ("variant_of", &doc_id(3)),
        ("build_facts.workshop_days", "4,5"),
        ("build_facts.participants", "8"),
        ("build_facts.weight_kg", "420"),
        ("build_facts.special_tooling", "plasma cutter"),
        ("build_facts.prerequisites", "basic welding"),
        ("external_ids.farmhack", "roller-crimper"),
        ("external_ids.latelierpaysan", "rouleau-faca"),
        ("summary", "Crimps a cover crop flat."),
    ] {
        edit(&mut doc, kind, set(field, value)).unwrap_or_else(|e| panic!("{field}: {e}"));
    }
    let out = shown(&doc, kind);
    assert_eq!(out["name"], json!("Roller crimper v2"));
    assert_eq!(out["stage"], json!("functional-prototype"));
    assert_eq!(
        out["licence"],
        json!({"hardware": "CERN-OHL-S-2.0", "documentation": "CC-BY-SA-4.0", "software": "GPL-3.0-or-later"})
    );
    assert_eq!(out["derivative_of"], json!(doc_id(2)));
    assert_eq!(
        out["build_facts"],
        json!({"workshop_days": 4.5, "participants": 8, "weight_kg": 420,
               "special_tooling": "plasma cutter", "prerequisites": "basic welding"})
    );
    assert_eq!(
        out["external_ids"],
        json!({"farmhack": "roller-crimper", "latelierpaysan": "rouleau-faca"})
    );
    assert_eq!(out["summary"], json!("Crimps a cover crop flat."));

    edit(
        &mut doc,
        kind,
        Edit::Unset {
            field: "version".into(),
        },
    )
    .expect("unset");
    edit(
        &mut doc,
        kind,
        Edit::Unset {
            field: "external_ids.farmhack".into(),
        },
    )
    .expect("unset entry");
    edit(
        &mut doc,
        kind,
        Edit::Unset {
            field: "summary".into(),
        },
    )
    .expect("empty text");
    let out = shown(&doc, kind);
    assert_eq!(out["version"], json!(null));
    assert_eq!(
        out["external_ids"],
        json!({"latelierpaysan": "rouleau-faca"})
    );
    assert_eq!(out["summary"], json!(""));
}

#[test]
fn texts_are_replaced_and_appended() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Seeder");
    let replace = |text: &str| Edit::ReplaceText {
        field: "problem".into(),
        text: text.into(),
    };
    edit(&mut doc, kind, replace("Seeds clog in wet clay.")).expect("replace");
    edit(
        &mut doc,
        kind,
        Edit::AppendText {
            field: "problem".into(),
            text: " Also on stones.".into(),
        },
    )
    .expect("append");
    assert_eq!(
        shown(&doc, kind)["problem"],
        json!("Seeds clog in wet clay. Also on stones.")
    );
    let unchanged = edit(
        &mut doc,
        kind,
        replace("Seeds clog in wet clay. Also on stones."),
    )
    .expect("same");
    assert_eq!(
        unchanged, None,
        "replacing with the same text writes no change"
    );
    let too_big = "x".repeat(MAX_TEXT_BYTES + 1);
    assert!(matches!(
        edit(&mut doc, kind, replace(&too_big)),
        Err(EditError::Value(ValueError::TooLong { .. }))
    ));
    assert!(matches!(
        edit(
            &mut doc,
            kind,
            Edit::ReplaceText {
                field: "stage".into(),
                text: "idea".into()
            }
        ),
        Err(EditError::WrongEdit { .. })
    ));
}

#[test]
fn string_lists_add_dedupe_and_remove() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Seeder");
    let add = |field: &str, item: &str| Edit::AddItem {
        field: field.into(),
        item: item.into(),
    };
    for (field, item) in [
        ("tags", "seeding"),
        ("tags", "no-till"),
        ("tags", " seeding "),
        ("tools", "angle grinder"),
        ("skills", "MIG welding"),
    ] {
        edit(&mut doc, kind, add(field, item)).expect("add");
    }
    let out = shown(&doc, kind);
    assert_eq!(out["tags"], json!(["seeding", "no-till"]));
    assert_eq!(out["tools"], json!(["angle grinder"]));
    assert_eq!(out["skills"], json!(["MIG welding"]));
    edit(
        &mut doc,
        kind,
        Edit::RemoveItem {
            field: "tags".into(),
            item: "seeding".into(),
        },
    )
    .expect("remove");
    assert_eq!(shown(&doc, kind)["tags"], json!(["no-till"]));
    let missing = edit(
        &mut doc,
        kind,
        Edit::RemoveItem {
            field: "tags".into(),
            item: "seeding".into(),
        },
    );
    assert_eq!(
        missing.err().map(|e| e.to_string()),
        Some("`seeding` is not in `tags`, so there is nothing to remove".to_string())
    );
    assert!(matches!(
        edit(&mut doc, kind, add("tags", "")),
        Err(EditError::Value(ValueError::Empty { .. }))
    ));
    assert!(matches!(
        edit(&mut doc, kind, add("steps", "weld")),
        Err(EditError::WrongEdit { .. })
    ));
    assert!(matches!(
        edit(&mut doc, kind, add("bom", "bolt")),
        Err(EditError::WrongEdit { .. })
    ));
    for n in 1..MAX_TAGS {
        edit(&mut doc, kind, add("tags", &format!("t{n}"))).expect("room for tags");
    }
    assert_eq!(
        edit(&mut doc, kind, add("tags", "one-too-many")).err(),
        Some(EditError::Full {
            field: "tags".into(),
            max: MAX_TAGS
        })
    );
}

#[test]
fn steps_are_added_edited_moved_and_removed() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Crimper");
    let steps = |doc: &Automerge| shown(doc, kind)["steps"].clone();
    edit(
        &mut doc,
        kind,
        Edit::AddStep {
            text: "Cut the drum".into(),
            at: None,
        },
    )
    .expect("add");
    edit(
        &mut doc,
        kind,
        Edit::AddStep {
            text: "Weld the blades".into(),
            at: None,
        },
    )
    .expect("add");
    edit(
        &mut doc,
        kind,
        Edit::AddStep {
            text: "Buy steel".into(),
            at: Some(1),
        },
    )
    .expect("insert first");
    assert_eq!(
        steps(&doc),
        json!(["Buy steel", "Cut the drum", "Weld the blades"])
    );
    edit(
        &mut doc,
        kind,
        Edit::EditStep {
            step: 2,
            text: "Cut the drum to 1.6 m".into(),
        },
    )
    .expect("edit");
    edit(&mut doc, kind, Edit::MoveStep { from: 1, to: 3 }).expect("move");
    assert_eq!(
        steps(&doc),
        json!(["Cut the drum to 1.6 m", "Weld the blades", "Buy steel"])
    );
    edit(&mut doc, kind, Edit::RemoveStep { step: 3 }).expect("remove");
    assert_eq!(
        steps(&doc),
        json!(["Cut the drum to 1.6 m", "Weld the blades"])
    );

    let err = edit(
        &mut doc,
        kind,
        Edit::EditStep {
            step: 7,
            text: "x".into(),
        },
    )
    .expect_err("no step 7");
    assert_eq!(err, EditError::NoSuchStep { step: 7, count: 2 });
    assert_eq!(
        err.to_string(),
        "build step 7 does not exist; the design has 2 steps"
    );
    assert!(matches!(
        edit(
            &mut doc,
            kind,
            Edit::AddStep {
                text: "x".into(),
                at: Some(4)
            }
        ),
        Err(EditError::BadPosition {
            position: 4,
            count: 2,
            ..
        })
    ));
    assert!(matches!(
        edit(&mut doc, kind, Edit::RemoveStep { step: 0 }),
        Err(EditError::NoSuchStep { .. })
    ));
    assert!(matches!(
        edit(&mut doc, kind, Edit::MoveStep { from: 1, to: 5 }),
        Err(EditError::NoSuchStep { step: 5, .. })
    ));
}

#[test]
fn design_entries_round_trip() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Crimper");
    let line = BomLine::parse("steel tube 40x40x3;6,5;m;local merchant;EN 10219").expect("line");
    edit(&mut doc, kind, Edit::AddBomLine { line }).expect("bom");
    edit(
        &mut doc,
        kind,
        Edit::AddBomLine {
            line: BomLine::parse("M12 bolt;8").expect("line"),
        },
    )
    .expect("bom");
    edit(
        &mut doc,
        kind,
        Edit::AddPart {
            part: Part::parse("drum;steel;1").expect("part"),
        },
    )
    .expect("part");
    edit(
        &mut doc,
        kind,
        Edit::AddPart {
            part: Part::parse("blade").expect("part"),
        },
    )
    .expect("part");
    for (name, role) in [
        ("Ana", Some("designer")),
        ("Ana", Some("designer")),
        ("Bruno", None),
    ] {
        let role = role.map(str::to_string);
        edit(
            &mut doc,
            kind,
            Edit::AddContributor {
                name: name.into(),
                role,
            },
        )
        .expect("contributor");
    }
    let related = |relation: &str, n: u8| Edit::AddRelated {
        relation: relation.into(),
        design: doc_id(n),
    };
    edit(&mut doc, kind, related("Component", 4)).expect("related");
    edit(&mut doc, kind, related("branch", 5)).expect("related");
    edit(
        &mut doc,
        kind,
        Edit::AddBuilt {
            place: Some("Ferme du Bec".into()),
            note: None,
        },
    )
    .expect("built");
    edit_as(
        &mut doc,
        kind,
        Edit::AddBuilt {
            place: None,
            note: Some("works".into()),
        },
        "bob",
    )
    .expect("built");

    let out = shown(&doc, kind);
    assert_eq!(
        out["bom"],
        json!([
            {"name": "steel tube 40x40x3", "quantity": 6.5, "unit": "m", "sourcing": "local merchant", "reference": "EN 10219"},
            {"name": "M12 bolt", "quantity": 8, "unit": null, "sourcing": null, "reference": null},
        ])
    );
    assert_eq!(
        out["parts"],
        json!([{"name": "drum", "material": "steel", "quantity": 1}, {"name": "blade", "material": null, "quantity": null}])
    );
    assert_eq!(
        out["contributors"],
        json!([{"name": "Ana", "role": "designer"}, {"name": "Bruno", "role": null}])
    );
    assert_eq!(
        out["related"],
        json!([{"kind": "component", "design": doc_id(4)}, {"kind": "branch", "design": doc_id(5)}])
    );
    assert_eq!(
        out["built"],
        json!([
            {"by": "alice", "at": 1_750_000_000, "place": "Ferme du Bec", "note": null},
            {"by": "bob", "at": 1_750_000_000, "place": null, "note": "works"},
        ])
    );

    edit(&mut doc, kind, Edit::RemoveBomLine { position: 1 }).expect("remove bom");
    edit(&mut doc, kind, Edit::RemovePart { position: 2 }).expect("remove part");
    edit(
        &mut doc,
        kind,
        Edit::RemoveContributor { name: "Ana".into() },
    )
    .expect("remove contributor");
    edit(
        &mut doc,
        kind,
        Edit::RemoveRelated {
            relation: "component".into(),
            design: doc_id(4),
        },
    )
    .expect("unrelate");
    assert_eq!(
        edit(&mut doc, kind, Edit::RemoveBuilt { position: 2 }),
        Err(EditError::NotYours {
            field: "built".into(),
            position: 2,
            by: "bob".into()
        })
    );
    edit(&mut doc, kind, Edit::RemoveBuilt { position: 1 }).expect("own record");
    let out = shown(&doc, kind);
    assert_eq!(out["bom"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        out["parts"],
        json!([{"name": "drum", "material": "steel", "quantity": 1}])
    );
    assert_eq!(
        out["contributors"],
        json!([{"name": "Bruno", "role": null}])
    );
    assert_eq!(
        out["related"],
        json!([{"kind": "branch", "design": doc_id(5)}])
    );
    assert_eq!(out["built"][0]["by"], json!("bob"));
    assert!(matches!(
        edit(&mut doc, kind, Edit::RemoveBomLine { position: 9 }),
        Err(EditError::NoSuchEntry {
            position: 9,
            count: 1,
            ..
        })
    ));
    assert!(matches!(
        edit(&mut doc, kind, related("sibling", 6)),
        Err(EditError::Value(ValueError::NotAChoice { .. }))
    ));
    assert!(matches!(
        edit(
            &mut doc,
            kind,
            Edit::AddRelated {
                relation: "merge".into(),
                design: "nope".into()
            }
        ),
        Err(EditError::Value(ValueError::BadDocId { .. }))
    ));
}

#[test]
fn releases_pin_heads_once() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Cultibutte");
    edit(&mut doc, kind, set("version", "5.6")).expect("version");
    let heads: Vec<String> = doc.get_heads().iter().map(ToString::to_string).collect();
    let release = |version: &str, heads: Vec<String>| Edit::Release {
        version: version.into(),
        heads,
    };
    edit(&mut doc, kind, release("5.6", heads.clone())).expect("release");
    assert_eq!(
        shown(&doc, kind)["releases"],
        json!({"5.6": {"heads": heads, "at": 1_750_000_000, "by": "alice"}})
    );
    assert_eq!(
        edit(&mut doc, kind, release("5.6", heads.clone())),
        Err(EditError::ReleaseExists {
            version: "5.6".into()
        })
    );
    assert_eq!(
        edit(&mut doc, kind, release("5.7", Vec::new())),
        Err(EditError::ReleaseWithoutHeads {
            version: "5.7".into()
        })
    );
    let stranger = "ab".repeat(32);
    assert_eq!(
        edit(&mut doc, kind, release("5.7", vec![stranger.clone()])),
        Err(EditError::UnknownHead {
            version: "5.7".into(),
            head: stranger
        })
    );
    assert!(matches!(
        edit(&mut doc, kind, set("releases.5.6", "x")),
        Err(EditError::WrongEdit { .. })
    ));
    assert!(matches!(
        edit(
            &mut doc,
            kind,
            Edit::Unset {
                field: "releases".into()
            }
        ),
        Err(EditError::WrongEdit { .. })
    ));
}

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
               "body": "We need a clay-soil seeder.", "mentions": [doc_id(3)], "tags": ["clay"], "language": "en"})
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
    assert!(err.to_string().contains("add_item"), "{err}");
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
fn fields_touched_names_each_field_of_a_change() {
    let kind = DocKind::Design;
    let mut doc = create(kind, "Crimper");
    let hash = doc
        .transact(|tx| {
            apply_edit(tx, kind, &set("stage", "prototype"), &ctx("alice"))?;
            apply_edit(
                tx,
                kind,
                &set("build_facts.weight_kg", "420"),
                &ctx("alice"),
            )
        })
        .expect("two fields")
        .hash
        .expect("a change");
    assert_eq!(fields_touched(&doc, &hash), vec!["build_facts", "stage"]);
    let text = edit(
        &mut doc,
        kind,
        Edit::AppendText {
            field: "summary".into(),
            text: "Flattens rye.".into(),
        },
    )
    .expect("text")
    .expect("a change");
    assert_eq!(fields_touched(&doc, &text), vec!["summary"]);
    let step = edit(
        &mut doc,
        kind,
        Edit::AddStep {
            text: "Cut".into(),
            at: None,
        },
    )
    .expect("step")
    .expect("a change");
    assert_eq!(fields_touched(&doc, &step), vec!["steps"]);
    let first = doc.get_changes(&[])[0].hash();
    let mut skeleton: Vec<&str> = kind
        .fields()
        .iter()
        .filter(|f| f.ty.obj_type().is_some() || f.name == "name")
        .map(|f| f.name)
        .collect();
    skeleton.sort();
    assert_eq!(
        fields_touched(&doc, &first),
        skeleton,
        "the skeleton touches every object and the name"
    );
    assert!(fields_touched(&doc, &ChangeHash([9; 32])).is_empty());
}

#[test]
fn blame_attributes_text_runs_to_each_author() {
    let kind = DocKind::Design;
    let mut alice = create(kind, "Seeder");
    let written = edit(
        &mut alice,
        kind,
        Edit::ReplaceText {
            field: "summary".into(),
            text: "The seeder clogs in clay.".into(),
        },
    )
    .expect("alice writes")
    .expect("a change");
    let mut bob = alice.fork().with_actor(actor("bob"));
    let inserted = edit_as(
        &mut bob,
        kind,
        Edit::ReplaceText {
            field: "summary".into(),
            text: "The seeder clogs badly in clay.".into(),
        },
        "bob",
    )
    .expect("bob edits")
    .expect("a change");
    alice.merge(&mut bob).expect("merge");
    let spans = blame(&alice, kind, "summary").expect("blame");
    let joined: String = spans.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(joined, "The seeder clogs badly in clay.");
    let owners: Vec<ChangeHash> = spans.iter().map(|s| s.change).collect();
    assert_eq!(owners, vec![written, inserted, written], "{spans:?}");
    assert_eq!(spans[1].text.trim(), "badly");
    assert_eq!(spans[0].offset, Some(0));
    assert_eq!(spans[1].offset, Some(spans[0].text.chars().count()));

    let scalar = blame(&alice, kind, "name").expect("scalar blame");
    assert_eq!(scalar.len(), 1);
    assert_eq!(scalar[0].text, "Seeder");
    let step = edit(
        &mut alice,
        kind,
        Edit::AddStep {
            text: "Drill".into(),
            at: None,
        },
    )
    .expect("step")
    .expect("change");
    let steps = blame(&alice, kind, "steps").expect("list blame");
    assert_eq!(
        (steps[0].text.as_str(), steps[0].change, steps[0].position),
        ("Drill", step, Some(1))
    );
    assert_eq!(
        blame(&alice, kind, "steps.1").expect("one step")[0].change,
        step
    );
    assert!(blame(&alice, kind, "stage").expect("absent").is_empty());
    assert!(matches!(
        blame(&alice, kind, "colour"),
        Err(SchemaError::UnknownField { .. })
    ));
    let json = serde_json::to_value(&steps[0]).expect("json");
    assert_eq!(
        json,
        json!({"text": "Drill", "change": step.to_string(), "position": 1})
    );
}

#[test]
fn concurrent_edits_to_one_paragraph_both_survive() {
    let kind = DocKind::Design;
    let mut alice = create(kind, "Crimper");
    edit(
        &mut alice,
        kind,
        Edit::ReplaceText {
            field: "how_it_works".into(),
            text: "The roller crimps rye.".into(),
        },
    )
    .expect("base");
    let mut bob = alice.fork().with_actor(actor("bob"));
    edit(
        &mut alice,
        kind,
        Edit::ReplaceText {
            field: "how_it_works".into(),
            text: "The big roller crimps rye.".into(),
        },
    )
    .expect("alice");
    edit_as(
        &mut bob,
        kind,
        Edit::ReplaceText {
            field: "how_it_works".into(),
            text: "The roller crimps rye and vetch.".into(),
        },
        "bob",
    )
    .expect("bob");
    alice.merge(&mut bob).expect("merge");
    bob.merge(&mut alice).expect("merge back");
    let expected = json!("The big roller crimps rye and vetch.");
    assert_eq!(shown(&alice, kind)["how_it_works"], expected);
    assert_eq!(shown(&bob, kind)["how_it_works"], expected);
    validate_document(&alice, kind).expect("merged document is valid");
}

#[test]
fn concurrent_steps_and_tags_on_two_replicas_are_all_kept() {
    let kind = DocKind::Design;
    let mut alice = create(kind, "Crimper");
    edit(
        &mut alice,
        kind,
        Edit::AddStep {
            text: "Cut the drum".into(),
            at: None,
        },
    )
    .expect("base step");
    let mut bob = alice.fork().with_actor(actor("bob"));
    edit(
        &mut alice,
        kind,
        Edit::AddStep {
            text: "Weld the blades".into(),
            at: None,
        },
    )
    .expect("alice step");
    edit(
        &mut alice,
        kind,
        Edit::AddItem {
            field: "tags".into(),
            item: "no-till".into(),
        },
    )
    .expect("tag");
    edit_as(
        &mut bob,
        kind,
        Edit::AddStep {
            text: "Paint".into(),
            at: None,
        },
        "bob",
    )
    .expect("bob step");
    edit_as(
        &mut bob,
        kind,
        Edit::EditStep {
            step: 1,
            text: "Cut the drum to 1.6 m".into(),
        },
        "bob",
    )
    .expect("bob edit");
    edit_as(
        &mut bob,
        kind,
        Edit::AddItem {
            field: "tags".into(),
            item: "no-till".into(),
        },
        "bob",
    )
    .expect("tag");
    edit_as(
        &mut bob,
        kind,
        Edit::AddItem {
            field: "tags".into(),
            item: "rye".into(),
        },
        "bob",
    )
    .expect("tag");
    alice.merge(&mut bob).expect("merge");
    let out = shown(&alice, kind);
    let steps = out["steps"].as_array().cloned().unwrap_or_default();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[0], json!("Cut the drum to 1.6 m"));
    assert!(steps.contains(&json!("Weld the blades")) && steps.contains(&json!("Paint")));
    let mut tags: Vec<String> = serde_json::from_value(out["tags"].clone()).expect("tags");
    tags.sort();
    assert_eq!(
        tags,
        vec!["no-till", "rye"],
        "a tag added on both replicas shows once"
    );
    edit(
        &mut alice,
        kind,
        Edit::RemoveItem {
            field: "tags".into(),
            item: "no-till".into(),
        },
    )
    .expect("remove both copies");
    assert_eq!(shown(&alice, kind)["tags"], json!(["rye"]));
}
