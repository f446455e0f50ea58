//! Detection and resolution on real documents edited on two replicas.

use super::*;
use crate::schema::{apply_edit, init_document, Edit, EditContext, NewDocument};
use automerge::ActorId;

fn ctx() -> EditContext {
    EditContext {
        author: "test".into(),
        now_unix: 0,
    }
}

fn edit(doc: &mut Automerge, edits: &[Edit]) {
    let mut tx = doc.transaction();
    for e in edits {
        apply_edit(&mut tx, DocKind::Design, e, &ctx()).expect("edit");
    }
    tx.commit();
}

fn design(step: &str) -> Automerge {
    let mut doc = Automerge::new();
    doc.set_actor(ActorId::from(vec![1u8; 16]));
    let mut tx = doc.transaction();
    init_document(
        &mut tx,
        &NewDocument::new(DocKind::Design, "Roller crimper"),
    )
    .expect("init");
    apply_edit(
        &mut tx,
        DocKind::Design,
        &Edit::AddStep {
            text: step.into(),
            at: None,
        },
        &ctx(),
    )
    .expect("step");
    tx.commit();
    doc
}

fn fork(doc: &Automerge, actor: u8) -> Automerge {
    let mut other = doc.fork();
    other.set_actor(ActorId::from(vec![actor; 16]));
    other
}

fn step(n: usize, text: &str) -> Edit {
    Edit::EditStep {
        step: n,
        text: text.into(),
    }
}

#[test]
fn the_farm_and_the_hub_conflict_on_the_length() {
    let base = design("Cut the tube to 1.6 m");
    let mut farm = fork(&base, 2);
    let mut hub = fork(&base, 3);
    edit(
        &mut farm,
        &[step(1, "Cut the tube to 1.4 m (farm measure)")],
    );
    edit(&mut hub, &[step(1, "Cut the tube to 1.45 m")]);
    farm.merge(&mut hub).expect("merge");
    let found = find(&farm, DocKind::Design);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "steps.1");
    let values: BTreeSet<&str> = found[0].sides.iter().map(|s| s.value.as_str()).collect();
    assert_eq!(
        values,
        BTreeSet::from([
            "Cut the tube to 1.4 m (farm measure)",
            "Cut the tube to 1.45 m"
        ])
    );
}

#[test]
fn far_apart_edits_and_other_steps_merge_silently() {
    let text = "Cut the tube to 1.6 m. Weld the blades in a chevron, then grind them.";
    let mut base = design(text);
    edit(
        &mut base,
        &[Edit::AddStep {
            text: "Paint it".into(),
            at: None,
        }],
    );
    let mut a = fork(&base, 2);
    let mut b = fork(&base, 3);
    edit(
        &mut a,
        &[step(
            1,
            "Cut the tube to 1.4 m. Weld the blades in a chevron, then grind them.",
        )],
    );
    edit(
        &mut b,
        &[
            step(
                1,
                "Cut the tube to 1.6 m. Weld the blades in a chevron, then file them.",
            ),
            step(2, "Paint it green"),
        ],
    );
    a.merge(&mut b).expect("merge");
    assert!(find(&a, DocKind::Design).is_empty());
}

#[test]
fn a_resolution_closes_the_conflict_and_a_linear_history_has_none() {
    let base = design("Cut the tube to 1.6 m");
    assert!(is_linear(&base));
    let mut a = fork(&base, 2);
    let mut b = fork(&base, 3);
    edit(
        &mut a,
        &[Edit::Set {
            field: "stage".into(),
            value: "prototype".into(),
        }],
    );
    edit(
        &mut b,
        &[Edit::Set {
            field: "stage".into(),
            value: "concept".into(),
        }],
    );
    a.merge(&mut b).expect("merge");
    let found = find(&a, DocKind::Design);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "stage");
    let taken = found[0].sides[0].settle.clone();
    let mut tx = a.transaction();
    write_resolution(&mut tx, DocKind::Design, "stage", &taken).expect("resolve");
    tx.commit();
    assert!(find(&a, DocKind::Design).is_empty());
    assert!(!is_linear(&a));
}

#[test]
fn resolving_a_text_that_already_reads_as_the_choice_still_closes_it() {
    let base = design("abcdef");
    let mut a = fork(&base, 2);
    let mut b = fork(&base, 3);
    edit(&mut a, &[step(1, "abef")]);
    edit(&mut b, &[step(1, "abdef")]);
    a.merge(&mut b).expect("merge");
    let found = find(&a, DocKind::Design);
    assert_eq!(found.len(), 1, "{found:?}");
    let mut tx = a.transaction();
    write_resolution(
        &mut tx,
        DocKind::Design,
        "steps.1",
        &Settle::Str("abef".into()),
    )
    .expect("resolve");
    tx.commit();
    assert!(find(&a, DocKind::Design).is_empty());
}
