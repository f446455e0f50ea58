//! Every design edit, applied and rendered back.

use super::*;
use serde_json::json;

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
            // The farmOS keys (issue 10) are absent in these records, so null.
            {"by": "alice", "at": 1_750_000_000, "place": "Ferme du Bec", "note": null,
             "farmos_asset": null, "farm_url": null, "model": null, "serial": null},
            {"by": "bob", "at": 1_750_000_000, "place": null, "note": "works",
             "farmos_asset": null, "farm_url": null, "model": null, "serial": null},
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
fn tags_match_by_their_normal_form_and_keep_their_first_spelling() {
    let mut doc = create(DocKind::Design, "Roller crimper");
    let tag = |item: &str| Edit::AddItem {
        field: "tags".into(),
        item: item.into(),
    };
    edit(&mut doc, DocKind::Design, tag("No-Till")).expect("first spelling");
    for same in ["no-till", "no till", "NO_TILL", " no  till "] {
        assert_eq!(
            edit(&mut doc, DocKind::Design, tag(same)).expect("a no-op"),
            None,
            "{same:?} is the tag already held"
        );
    }
    assert_eq!(shown(&doc, DocKind::Design)["tags"], json!(["No-Till"]));
    assert!(edit(&mut doc, DocKind::Design, tag("-_-")).is_err());
    let untag = Edit::RemoveItem {
        field: "tags".into(),
        item: "no_till".into(),
    };
    edit(&mut doc, DocKind::Design, untag).expect("removed by another spelling");
    assert_eq!(shown(&doc, DocKind::Design)["tags"], json!([]));
}
