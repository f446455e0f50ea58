//! fields_touched, blame, and what survives concurrent edits on two replicas.

use super::*;
use serde_json::json;

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
