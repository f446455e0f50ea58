//! Concurrent edits that touch the same field: found and shown, never silently merged away.
//!
//! automerge merges everything: two offline rewrites of "Cut the tube to 1.6 m" into
//! "1.4 m (farm measure)" and "1.45 m" merge character by character into a length nobody
//! wrote, and two concurrent values of `stage` keep one and hide the other. This module finds
//! such places in a document (pure: no I/O) so `show` can mark them and `resolve` settle them.
//!
//! **The rule.** Two changes are *concurrent* when neither is in the other's causal past.
//! They *conflict* on a field when
//! - (scalars) both put the same map key or list slot (`stage`, `name`, `bom.2.quantity`,
//!   `licence.hardware`) with different values: automerge keeps both (`get_all`), one wins;
//! - (texts: prose fields, each build step, a note's body) both edit the same text object and
//!   their edits *touch*. Each change's edit is read in element ids: the elements it deletes
//!   and the elements it inserts. Both are placed on the text both changes had seen (the
//!   elements inserted by changes in the causal past of both, "the base"): a deleted base
//!   element is a *character site*; an inserted element, or a deleted element the other change
//!   never saw, is a *gap site* (the gap of the base it sits in, found from the element's
//!   anchor). The edits touch when a site of one and a site of the other have no base
//!   character between them that neither touched: overlapping or adjacent deletions, an
//!   insertion into (or at either edge of) a range the other deleted, and two insertions at
//!   the same anchor all touch; edits separated by at least one untouched character do not.
//!
//! A conflict is *open* until a change whose causal past includes all of its sides touches
//! that field again: what `resolve` writes, and what any later edit of the field by someone
//! who saw both sides is. Each side is given by its change and the field's value at that
//! change (the text as its author saw it after writing, recovered from the history).
//!
//! A document whose changes form one line has no concurrency: [`find`] returns at once; and
//! only texts that two concurrent changes touched are read in full. The work on one document
//! is bounded (`MAX_PAIRS`, `MAX_TOUCH_TESTS`), so a hostile one cannot make `show` slow.

mod graph;
mod resolve;
#[cfg(test)]
mod tests;
mod text;

pub use resolve::write_resolution;

use super::spec::{Field, FieldType};
use super::DocKind;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, Prop, ReadDoc, Value, ROOT};
use graph::Graph;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An open conflict on one field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    /// The field's path: `stage`, `summary`, `steps.2`, `bom.1.quantity`.
    pub field: String,
    /// Each concurrent version, in the document's change order.
    pub sides: Vec<ConflictSide>,
}

/// One version of a field in conflict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConflictSide {
    /// The change that wrote this version.
    pub change: ChangeHash,
    /// The field as that change left it (numbers as written, in decimal).
    pub value: String,
    /// The exact value, to write back when this side is taken.
    #[serde(skip)]
    pub settle: Settle,
}

/// The value a resolution writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "as", content = "value", rename_all = "snake_case")]
pub enum Settle {
    /// Typed by a person: checked and parsed by the field's own rules, as `set` does.
    Typed(String),
    /// A string or text exactly as a side wrote it.
    Str(String),
    /// A whole number exactly as a side wrote it.
    Int(i64),
    /// An unsigned whole number exactly as a side wrote it.
    Uint(u64),
    /// A decimal number exactly as a side wrote it.
    F64(f64),
}

/// The open conflicts of a document, in field order; empty at once when its history is one line.
pub fn find(doc: &Automerge, kind: DocKind) -> Vec<Conflict> {
    let graph = Graph::new(doc);
    if graph.is_linear() {
        return Vec::new();
    }
    let mut slots = Vec::new();
    walk(doc, &ROOT, kind.fields(), "", &mut slots, 0);
    let mut found: BTreeMap<usize, Conflict> = BTreeMap::new();
    let mut texts = Vec::new();
    for (order, slot) in slots.into_iter().enumerate() {
        match slot.kind {
            SlotKind::Scalar { parent, prop } => {
                if let Some(c) = scalar_conflict(doc, &parent, prop, slot.path) {
                    found.insert(order, c);
                }
            }
            SlotKind::Text(obj) => texts.push((order, slot.path, obj)),
        }
    }
    if !texts.is_empty() {
        for (order, conflict) in text::text_conflicts(doc, &graph, texts) {
            found.insert(order, conflict);
        }
    }
    found.into_values().collect()
}

/// Whether a document's changes form one line (no two of them concurrent).
pub fn is_linear(doc: &Automerge) -> bool {
    Graph::new(doc).is_linear()
}

/// Deepest nesting walked (records in lists in maps); the schema has at most three levels.
const MAX_DEPTH: usize = 4;

/// A place in the document that can hold a conflict.
struct Slot {
    path: String,
    kind: SlotKind,
}

enum SlotKind {
    /// A scalar at a map key or list index.
    Scalar { parent: ObjId, prop: Prop },
    /// A collaborative text object.
    Text(ObjId),
}

/// Every scalar and text of a table's fields under `obj`, in field order.
fn walk(
    doc: &Automerge,
    obj: &ObjId,
    fields: &[Field],
    prefix: &str,
    out: &mut Vec<Slot>,
    depth: usize,
) {
    for field in fields {
        let path = join(prefix, field.name);
        walk_value(
            doc,
            obj,
            Prop::Map(field.name.into()),
            &field.ty,
            path,
            out,
            depth,
        );
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn walk_value(
    doc: &Automerge,
    parent: &ObjId,
    prop: Prop,
    ty: &FieldType,
    path: String,
    out: &mut Vec<Slot>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let object = |want: ObjType| match doc.get(parent, prop.clone()) {
        Ok(Some((Value::Object(t), id))) if t == want => Some(id),
        _ => None,
    };
    match ty {
        FieldType::Str { .. } | FieldType::Num { .. } => out.push(Slot {
            path,
            kind: SlotKind::Scalar {
                parent: parent.clone(),
                prop,
            },
        }),
        FieldType::Text { .. } => {
            if let Some(id) = object(ObjType::Text) {
                out.push(Slot {
                    path,
                    kind: SlotKind::Text(id),
                });
            }
        }
        FieldType::List { item, .. } => {
            if let Some(list) = object(ObjType::List) {
                for index in 0..doc.length(&list) {
                    let path = format!("{path}.{}", index + 1);
                    walk_value(doc, &list, Prop::Seq(index), item, path, out, depth + 1);
                }
            }
        }
        FieldType::Record(parts) => {
            if let Some(map) = object(ObjType::Map) {
                walk(doc, &map, parts, &path, out, depth + 1);
            }
        }
        FieldType::MapOf { value, .. } => {
            if let Some(map) = object(ObjType::Map) {
                for key in doc.keys(&map) {
                    let path = format!("{path}.{key}");
                    walk_value(doc, &map, Prop::Map(key), value, path, out, depth + 1);
                }
            }
        }
    }
}

/// A scalar that concurrent changes set to different values.
fn scalar_conflict(doc: &Automerge, parent: &ObjId, prop: Prop, path: String) -> Option<Conflict> {
    let values = doc.get_all(parent, prop).ok()?;
    if values.len() < 2 {
        return None;
    }
    let mut sides = Vec::new();
    for (value, id) in values {
        let Value::Scalar(scalar) = value else {
            continue;
        };
        let Some(change) = doc.hash_for_opid(&id) else {
            continue;
        };
        let (value, settle) = scalar_side(scalar.as_ref());
        sides.push(ConflictSide {
            change,
            value,
            settle,
        });
    }
    let distinct: BTreeSet<&str> = sides.iter().map(|s| s.value.as_str()).collect();
    (distinct.len() >= 2).then_some(Conflict { field: path, sides })
}

/// A scalar as shown and as written back.
fn scalar_side(scalar: &automerge::ScalarValue) -> (String, Settle) {
    use automerge::ScalarValue as S;
    match scalar {
        S::Str(s) => (s.to_string(), Settle::Str(s.to_string())),
        S::Int(n) => (n.to_string(), Settle::Int(*n)),
        S::Uint(n) => (n.to_string(), Settle::Uint(*n)),
        S::F64(n) => (n.to_string(), Settle::F64(*n)),
        other => (other.to_string(), Settle::Typed(other.to_string())),
    }
}
