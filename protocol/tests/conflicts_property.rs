//! Property test of conflict detection: two replicas edit one build step (and a few scalars)
//! concurrently at random places, merge, and `schema::conflicts::find` must report exactly the
//! overlaps an independent oracle computes from the edit positions in the base text.
//!
//! ```text
//!   base ──┬── side A: span edits (delete / insert / replace) + maybe stage, weight ──┐
//!          └── side B: span edits                            + maybe stage, weight ──┴─ merge
//! ```
//!
//! The oracle works in base coordinates only (gap g = 2g, base character i = 2i+1): a deletion
//! touches its characters, an insertion its gap, and two sides overlap when a site of one and a
//! site of the other have no base character strictly between them.

// Test helpers unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use hedgerow_protocol::automerge::transaction::Transactable;
use hedgerow_protocol::automerge::{ActorId, Automerge, ObjId, ObjType, ReadDoc, Value, ROOT};
use hedgerow_protocol::schema::conflicts;
use hedgerow_protocol::schema::{
    apply_edit, init_document, DocKind, Edit, EditContext, NewDocument,
};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// One span edit on the base: delete `del` characters at `pos`, then insert `ins` there.
#[derive(Clone, Debug)]
struct Span {
    pos: usize,
    del: usize,
    ins: String,
}

/// What one side does.
#[derive(Clone, Debug)]
struct Side {
    spans: Vec<Span>,
    stage: Option<&'static str>,
    weight: Option<u32>,
}

const STAGES: &[&str] = &["idea", "concept", "prototype"];

fn ctx() -> EditContext {
    EditContext {
        author: "prop".into(),
        now_unix: 0,
    }
}

/// Disjoint span edits on a text of `len` characters, left to right.
fn spans(len: usize) -> impl Strategy<Value = Vec<Span>> {
    prop::collection::vec((0..=len, 0usize..4, "[XYZ]{0,3}"), 0..4).prop_map(move |raw| {
        let mut out: Vec<Span> = Vec::new();
        let mut from = 0;
        let mut sorted = raw;
        sorted.sort_by_key(|(pos, ..)| *pos);
        for (pos, del, ins) in sorted {
            let pos = pos.max(from);
            if pos > len {
                break;
            }
            let del = del.min(len - pos);
            if del == 0 && ins.is_empty() {
                continue;
            }
            from = pos + del + 1;
            out.push(Span { pos, del, ins });
        }
        out
    })
}

fn side(len: usize) -> impl Strategy<Value = Side> {
    (
        spans(len),
        prop::option::of(prop::sample::select(STAGES)),
        prop::option::of(1u32..4),
    )
        .prop_map(|(spans, stage, weight)| Side {
            spans,
            stage,
            weight,
        })
}

fn case() -> impl Strategy<Value = (String, Side, Side)> {
    "[a-h]{1,24}".prop_flat_map(|base| {
        let len = base.len();
        (Just(base), side(len), side(len))
    })
}

/// The base design: one step holding `base`.
fn base_doc(base: &str) -> Automerge {
    let mut doc = Automerge::new();
    doc.set_actor(ActorId::from(vec![1u8; 16]));
    let mut tx = doc.transaction();
    init_document(&mut tx, &NewDocument::new(DocKind::Design, "Crimper")).unwrap();
    let step = Edit::AddStep {
        text: base.into(),
        at: None,
    };
    apply_edit(&mut tx, DocKind::Design, &step, &ctx()).unwrap();
    tx.commit();
    doc
}

fn step_obj(doc: &Automerge) -> ObjId {
    let Some((Value::Object(ObjType::List), steps)) = doc.get(ROOT, "steps").unwrap() else {
        panic!("no steps")
    };
    let Some((Value::Object(ObjType::Text), text)) = doc.get(&steps, 0).unwrap() else {
        panic!("no step")
    };
    text
}

/// Applies one side's edits as one change on a fork of `base`.
fn apply_side(base: &Automerge, actor: u8, side: &Side) -> Automerge {
    let mut doc = base.fork();
    doc.set_actor(ActorId::from(vec![actor; 16]));
    let text = step_obj(&doc);
    let mut tx = doc.transaction();
    // Right to left, so every position is still the base's.
    for span in side.spans.iter().rev() {
        tx.splice_text(&text, span.pos, span.del as isize, &span.ins)
            .unwrap();
    }
    for (field, value) in [
        ("stage", side.stage.map(str::to_string)),
        ("build_facts.weight_kg", side.weight.map(|w| w.to_string())),
    ] {
        if let Some(value) = value {
            let set = Edit::Set {
                field: field.into(),
                value,
            };
            apply_edit(&mut tx, DocKind::Design, &set, &ctx()).unwrap();
        }
    }
    tx.commit();
    doc
}

/// Sites a side's spans touch, in base coordinates.
fn sites(side: &Side) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for span in &side.spans {
        out.extend((span.pos..span.pos + span.del).map(|i| 2 * i + 1));
        if !span.ins.is_empty() {
            out.insert(2 * span.pos);
        }
    }
    out
}

/// Whether any site of `a` and any of `b` have no base character strictly between them.
fn overlap(a: &BTreeSet<usize>, b: &BTreeSet<usize>) -> bool {
    a.iter().any(|&p| {
        b.iter().any(|&q| {
            let (lo, hi) = (p.min(q), p.max(q));
            !(lo + 1..hi).any(|x| x % 2 == 1)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_overlap_is_reported_and_nothing_else((base, a, b) in case()) {
        let root = base_doc(&base);
        let mut left = apply_side(&root, 2, &a);
        let mut right = apply_side(&root, 3, &b);
        let a_text = left.text(step_obj(&left)).unwrap();
        let b_text = right.text(step_obj(&right)).unwrap();
        left.merge(&mut right).unwrap();
        let found = conflicts::find(&left, DocKind::Design);
        let reported: BTreeSet<&str> = found.iter().map(|c| c.field.as_str()).collect();

        let mut expected = BTreeSet::new();
        if overlap(&sites(&a), &sites(&b)) {
            expected.insert("steps.1");
        }
        if matches!((a.stage, b.stage), (Some(x), Some(y)) if x != y) {
            expected.insert("stage");
        }
        if matches!((a.weight, b.weight), (Some(x), Some(y)) if x != y) {
            expected.insert("build_facts.weight_kg");
        }
        prop_assert_eq!(&reported, &expected, "base {:?}, A {:?} -> {:?}, B {:?} -> {:?}, merged {:?}",
            base, a, a_text, b, b_text, left.text(step_obj(&left)).unwrap());

        // Each side of the step shows the text its author wrote, recovered from the history.
        if let Some(step) = found.iter().find(|c| c.field == "steps.1") {
            let values: BTreeSet<&str> = step.sides.iter().map(|s| s.value.as_str()).collect();
            prop_assert_eq!(values, BTreeSet::from([a_text.as_str(), b_text.as_str()]));
        }

        // Settling every conflict with its first side closes them all.
        if !found.is_empty() {
            let mut tx = left.transaction();
            for conflict in &found {
                conflicts::write_resolution(&mut tx, DocKind::Design, &conflict.field, &conflict.sides[0].settle).unwrap();
            }
            tx.commit();
            prop_assert!(conflicts::find(&left, DocKind::Design).is_empty());
        }
    }
}

/// Where a character of a side's text came from, in base coordinates.
#[derive(Clone, Copy, Debug)]
enum Origin {
    /// Base character `i`.
    Base(usize),
    /// Inserted by this side into base gap `g`.
    Gap(usize),
}

/// A span edit as generated, before it is fitted to the text it applies to.
type RawSpan = (usize, usize, String);

/// Fits raw spans to a text of `len` characters: sorted, disjoint, not empty.
fn fit(raw: &[RawSpan], len: usize) -> Vec<Span> {
    let mut sorted = raw.to_vec();
    sorted.sort_by_key(|(pos, ..)| *pos);
    let mut out: Vec<Span> = Vec::new();
    let mut from = 0;
    for (pos, del, ins) in sorted {
        let pos = pos.min(len).max(from);
        if pos > len {
            break;
        }
        let del = del.min(len - pos);
        if del == 0 && ins.is_empty() {
            continue;
        }
        from = pos + del + 1;
        out.push(Span { pos, del, ins });
    }
    out
}

/// Applies rounds of span edits as successive changes of one side; gives the document, every
/// site touched in base coordinates, and the step's text after each change.
fn apply_rounds(
    base: &Automerge,
    base_len: usize,
    actor: u8,
    rounds: &[Vec<RawSpan>],
) -> (Automerge, BTreeSet<usize>, Vec<String>) {
    let mut doc = base.fork();
    doc.set_actor(ActorId::from(vec![actor; 16]));
    let text = step_obj(&doc);
    let mut origins: Vec<Origin> = (0..base_len).map(Origin::Base).collect();
    let mut sites = BTreeSet::new();
    let mut texts = Vec::new();
    for round in rounds {
        let spans = fit(round, origins.len());
        if spans.is_empty() {
            continue;
        }
        let mut tx = doc.transaction();
        for span in spans.iter().rev() {
            for origin in &origins[span.pos..span.pos + span.del] {
                sites.insert(match origin {
                    Origin::Base(i) => 2 * i + 1,
                    Origin::Gap(g) => 2 * g,
                });
            }
            let gap = match span.pos.checked_sub(1).map(|i| origins[i]) {
                None => 0,
                Some(Origin::Base(i)) => i + 1,
                Some(Origin::Gap(g)) => g,
            };
            if !span.ins.is_empty() {
                sites.insert(2 * gap);
            }
            let inserted = vec![Origin::Gap(gap); span.ins.len()];
            origins.splice(span.pos..span.pos + span.del, inserted);
            tx.splice_text(&text, span.pos, span.del as isize, &span.ins)
                .unwrap();
        }
        tx.commit();
        texts.push(doc.text(&text).unwrap());
    }
    (doc, sites, texts)
}

fn rounds() -> impl Strategy<Value = Vec<Vec<RawSpan>>> {
    prop::collection::vec(
        prop::collection::vec((0usize..30, 0usize..4, "[XYZ]{0,3}"), 0..3),
        1..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Each side edits in one or two changes (the second on its own first): sites of the
    /// second are placed back on the base through the first.
    #[test]
    fn overlaps_across_several_changes_a_side(
        base in "[a-h]{1,24}",
        a in rounds(),
        b in rounds(),
    ) {
        let root = base_doc(&base);
        let (mut left, a_sites, a_texts) = apply_rounds(&root, base.len(), 2, &a);
        let (mut right, b_sites, b_texts) = apply_rounds(&root, base.len(), 3, &b);
        left.merge(&mut right).unwrap();
        let found = conflicts::find(&left, DocKind::Design);
        let expected = overlap(&a_sites, &b_sites);
        prop_assert_eq!(
            found.iter().any(|c| c.field == "steps.1"),
            expected,
            "base {:?}, A {:?} -> {:?}, B {:?} -> {:?}, merged {:?}",
            base, a, a_texts, b, b_texts, left.text(step_obj(&left)).unwrap()
        );
        for conflict in &found {
            for side in &conflict.sides {
                prop_assert!(a_texts.contains(&side.value) || b_texts.contains(&side.value));
            }
        }
    }
}
