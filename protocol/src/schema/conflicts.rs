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

use super::error::{EditError, SchemaError, ValueError};
use super::spec::{check_str, find as find_field, names, parse_number, Field, FieldType};
use super::DocKind;
use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, Prop, ReadDoc, Value, ROOT};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
        for (order, conflict) in text_conflicts(doc, &graph, texts) {
            found.insert(order, conflict);
        }
    }
    found.into_values().collect()
}

/// Whether a document's changes form one line (no two of them concurrent).
pub fn is_linear(doc: &Automerge) -> bool {
    Graph::new(doc).is_linear()
}

/// Most pairs of changes to one document's texts compared (each costs a few bit lookups).
///
/// Honest concurrency (people editing apart, then meeting) pairs a few changes; the bounds
/// only keep a hostile document from making `show` slow: past them, no further conflicts
/// are looked for in it.
const MAX_PAIRS: usize = 200_000;

/// Most concurrent pairs of one document whose text edits are placed and compared (each
/// costs a pass over the text's elements).
const MAX_TOUCH_TESTS: usize = 2_000;

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

/// The change graph: changes in causal order and their parents, by index.
struct Graph {
    hashes: Vec<ChangeHash>,
    index: HashMap<ChangeHash, usize>,
    deps: Vec<Vec<usize>>,
}

impl Graph {
    fn new(doc: &Automerge) -> Self {
        let metas = doc.get_changes_meta(&[]);
        let hashes: Vec<ChangeHash> = metas.iter().map(|m| m.hash).collect();
        let index: HashMap<ChangeHash, usize> =
            hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let deps = metas
            .iter()
            .map(|m| {
                m.deps
                    .iter()
                    .filter_map(|d| index.get(d).copied())
                    .collect()
            })
            .collect();
        Graph {
            hashes,
            index,
            deps,
        }
    }

    /// Whether each change depends on the one before it, so all are in one line.
    ///
    /// automerge lists a change's own actor's previous change among its deps even when
    /// another dep already descends from it, so deps are not compared whole.
    fn is_linear(&self) -> bool {
        self.deps.iter().enumerate().all(|(i, deps)| match i {
            0 => deps.is_empty(),
            _ => deps.contains(&(i - 1)),
        })
    }

    /// The changes concurrent with at least one other, in order.
    ///
    /// A change is ordered with every other when everything before it is in its past and
    /// everything after it has it in its past: in causal order, when it is the only head of the
    /// changes up to it, and every later change has a parent at or after it. One sweep each way.
    fn concurrent_changes(&self) -> Vec<usize> {
        let n = self.deps.len();
        let causal = self
            .deps
            .iter()
            .enumerate()
            .all(|(i, d)| d.iter().all(|&p| p < i));
        if !causal {
            return (0..n).collect();
        }
        let mut is_head = vec![false; n];
        let mut heads = 0usize;
        let mut sole_head = vec![false; n];
        for (i, deps) in self.deps.iter().enumerate() {
            for &d in deps {
                if is_head[d] {
                    is_head[d] = false;
                    heads -= 1;
                }
            }
            is_head[i] = true;
            heads += 1;
            sole_head[i] = heads == 1;
        }
        // For each i, the lowest (latest parent + 1) among the changes after it (0 for a
        // change without parents): every later change builds on i when that exceeds i.
        let mut later_min = vec![usize::MAX; n];
        let mut low = usize::MAX;
        for i in (0..n).rev() {
            later_min[i] = low;
            low = low.min(self.deps[i].iter().max().map_or(0, |p| p + 1));
        }
        (0..n)
            .filter(|&i| !(sole_head[i] && later_min[i] > i))
            .collect()
    }

    /// The causal past of change `c` (without `c`), as a bit set over change indices.
    fn past(&self, c: usize) -> Bits {
        let mut bits = Bits::new(self.hashes.len());
        let mut stack: Vec<usize> = self.deps.get(c).cloned().unwrap_or_default();
        while let Some(d) = stack.pop() {
            if !bits.get(d) {
                bits.set(d);
                stack.extend(self.deps.get(d).into_iter().flatten().copied());
            }
        }
        bits
    }
}

/// A fixed-size bit set.
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

/// An element of a text, as inserted.
struct Element {
    id: OpId,
    anchor: Option<OpId>,
    change: usize,
}

/// What one change did to one text.
#[derive(Default)]
struct Touch {
    inserted: Vec<OpId>,
    deleted: Vec<OpId>,
}

/// Everything ever written into one text object.
#[derive(Default)]
struct TextOps {
    elements: Vec<Element>,
    touches: BTreeMap<usize, Touch>,
}

/// Open conflicts of the given texts (`(order, path, object)`), keyed by `order`.
fn text_conflicts(
    doc: &Automerge,
    graph: &Graph,
    texts: Vec<(usize, String, ObjId)>,
) -> Vec<(usize, Conflict)> {
    let mut by_obj: HashMap<(u64, ActorId), usize> = HashMap::new();
    for (i, (_, _, obj)) in texts.iter().enumerate() {
        if let ObjId::Id(counter, actor, _) = obj {
            by_obj.insert((*counter, actor.clone()), i);
        }
    }
    let mut pasts: HashMap<usize, Bits> = HashMap::new();
    // Only changes concurrent with some other can conflict: first, which texts do two of
    // those touch concurrently? Most documents' old concurrency touched no text at all.
    let mut first: Vec<TextOps> = texts.iter().map(|_| TextOps::default()).collect();
    for c in graph.concurrent_changes() {
        if let Some(change) = doc.get_change_by_hash(&graph.hashes[c]) {
            record_ops(&change, c, &by_obj, &mut first);
        }
    }
    let mut hot = vec![false; texts.len()];
    for (t, text) in first.iter().enumerate() {
        let changes: Vec<usize> = text.touches.keys().copied().collect();
        for c in &changes {
            pasts.entry(*c).or_insert_with(|| graph.past(*c));
        }
        hot[t] = changes.iter().enumerate().any(|(i, a)| {
            changes[i + 1..]
                .iter()
                .any(|b| !pasts[a].get(*b) && !pasts[b].get(*a))
        });
    }
    if !hot.contains(&true) {
        return Vec::new();
    }
    by_obj.retain(|_, t| hot[*t]);
    let mut ops: Vec<TextOps> = texts.iter().map(|_| TextOps::default()).collect();
    for change in doc.get_changes(&[]) {
        if let Some(&c) = graph.index.get(&change.hash()) {
            record_ops(&change, c, &by_obj, &mut ops);
        }
    }
    let mut out = Vec::new();
    let (mut pairs_left, mut touch_tests_left) = (MAX_PAIRS, MAX_TOUCH_TESTS);
    for ((order, path, obj), text) in texts.into_iter().zip(ops) {
        if text.touches.len() < 2 {
            continue;
        }
        let changes: Vec<usize> = text.touches.keys().copied().collect();
        for c in &changes {
            pasts.entry(*c).or_insert_with(|| graph.past(*c));
        }
        let past = |c: &usize| &pasts[c];
        let mut pairs = Vec::new();
        'pairs: for (i, a) in changes.iter().enumerate() {
            for b in &changes[i + 1..] {
                if pairs_left == 0 {
                    break 'pairs;
                }
                pairs_left -= 1;
                if !past(a).get(*b) && !past(b).get(*a) {
                    pairs.push((*a, *b));
                }
            }
        }
        if pairs.is_empty() {
            continue;
        }
        let order_of = sequence_order(&text.elements);
        let mut sides: BTreeSet<usize> = BTreeSet::new();
        for (a, b) in pairs {
            let closed = changes.iter().any(|r| past(r).get(a) && past(r).get(b));
            if closed || sides.contains(&a) && sides.contains(&b) || touch_tests_left == 0 {
                continue;
            }
            touch_tests_left -= 1;
            if touch(&text, &order_of, past(&a), past(&b), a, b) {
                sides.insert(a);
                sides.insert(b);
            }
        }
        // A side that a later side of the same conflict built on is shown through that one.
        let latest: Vec<usize> = sides
            .iter()
            .copied()
            .filter(|s| !sides.iter().any(|t| t != s && past(t).get(*s)))
            .collect();
        if latest.len() < 2 {
            continue;
        }
        let sides = latest
            .into_iter()
            .map(|s| {
                let hash = graph.hashes[s];
                let value = doc.text_at(&obj, &[hash]).unwrap_or_default();
                ConflictSide {
                    change: hash,
                    settle: Settle::Str(value.clone()),
                    value,
                }
            })
            .collect();
        out.push((order, Conflict { field: path, sides }));
    }
    out
}

/// Files what `change` (index `c`) did to the texts of `by_obj` into `ops`.
fn record_ops(
    change: &automerge::Change,
    c: usize,
    by_obj: &HashMap<(u64, ActorId), usize>,
    ops: &mut [TextOps],
) {
    let actor = change.actor_id().clone();
    let start = change.start_op().get();
    for (k, op) in change.decode().operations.iter().enumerate() {
        let ObjectId::Id(obj) = &op.obj else {
            continue;
        };
        let Some(text) = by_obj
            .get(&(obj.0, obj.1.clone()))
            .and_then(|t| ops.get_mut(*t))
        else {
            continue;
        };
        let elem = match &op.key {
            Key::Seq(ElementId::Id(id)) => Some(id.clone()),
            _ => None,
        };
        if op.insert {
            let id = OpId(start + k as u64, actor.clone());
            text.elements.push(Element {
                id: id.clone(),
                anchor: elem,
                change: c,
            });
            // Marks are formatting, not content: placed in the text, but no edit.
            if !matches!(op.action, OpType::MarkBegin(_) | OpType::MarkEnd(_)) {
                text.touches.entry(c).or_default().inserted.push(id);
            }
        } else if let Some(elem) = elem {
            // A delete, or a value written over an element: either way it is touched.
            if matches!(op.action, OpType::Delete | OpType::Put(_)) {
                text.touches.entry(c).or_default().deleted.push(elem);
            }
        }
    }
}

/// The merged order of every element ever inserted (deleted ones too): automerge's RGA, where
/// an element follows its anchor and elements sharing an anchor come newest (greatest op id)
/// first. Returns each element's position, by index into `elements`.
fn sequence_order(elements: &[Element]) -> HashMap<OpId, usize> {
    let mut children: HashMap<Option<&OpId>, Vec<usize>> = HashMap::new();
    for (i, e) in elements.iter().enumerate() {
        children.entry(e.anchor.as_ref()).or_default().push(i);
    }
    for list in children.values_mut() {
        // Ascending, so popping from the stack visits the greatest first.
        list.sort_by(|x, y| elements[*x].id.cmp(&elements[*y].id));
    }
    let mut position = HashMap::with_capacity(elements.len());
    let mut stack: Vec<usize> = children.get(&None).cloned().unwrap_or_default();
    while let Some(i) = stack.pop() {
        let id = &elements[i].id;
        if position.contains_key(id) {
            continue;
        }
        position.insert(id.clone(), position.len());
        if let Some(kids) = children.get(&Some(id)) {
            stack.extend(kids.iter().copied());
        }
    }
    position
}

/// Whether the edits of changes `a` and `b` to one text touch (the rule in the module doc).
fn touch(
    text: &TextOps,
    order_of: &HashMap<OpId, usize>,
    past_a: &Bits,
    past_b: &Bits,
    a: usize,
    b: usize,
) -> bool {
    // Base elements (seen by both) in merged order, as a prefix count by position.
    let mut base_at = vec![false; order_of.len()];
    for e in &text.elements {
        if past_a.get(e.change) && past_b.get(e.change) {
            if let Some(&p) = order_of.get(&e.id) {
                base_at[p] = true;
            }
        }
    }
    let mut before = Vec::with_capacity(base_at.len() + 1);
    let mut count = 0usize;
    for is_base in &base_at {
        before.push(count);
        count += usize::from(*is_base);
    }
    // Sites in base coordinates: gap g is 2g, base character i is 2i+1.
    let site = |id: &OpId| {
        order_of.get(id).map(|&p| match base_at[p] {
            true => 2 * before[p] + 1,
            false => 2 * before[p],
        })
    };
    let sites = |c: usize| -> Vec<usize> {
        let mut out: Vec<usize> = text
            .touches
            .get(&c)
            .into_iter()
            .flat_map(|t| t.inserted.iter().chain(&t.deleted))
            .filter_map(site)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    };
    let (sa, sb) = (sites(a), sites(b));
    sa.iter().any(|&s| {
        let at = sb.partition_point(|&x| x < s);
        let next = sb.get(at).is_some_and(|&q| adjacent(s, q));
        let prev = at > 0 && sb.get(at - 1).is_some_and(|&p| adjacent(p, s));
        next || prev
    })
}

/// Whether two sites (`p <= q`) have no base character strictly between them.
fn adjacent(p: usize, q: usize) -> bool {
    let d = q - p;
    if p & 1 == 0 {
        d <= 1
    } else {
        d <= 2
    }
}

/// Writes a resolution of the conflict on `path`: `value` over every concurrent version, in one
/// change that (being made on the current document) has all of them in its causal past.
///
/// A text that already reads as the chosen value is still touched (a character inserted and
/// deleted in the same change), so the change closes the conflict wherever it travels.
pub fn write_resolution<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    path: &str,
    value: &Settle,
) -> Result<(), EditError> {
    let (parent, prop, ty) = locate(&*tx, kind, path)?;
    let written = |e| EditError::automerge("written", e);
    match ty {
        FieldType::Text { max } => {
            let text = match tx
                .get(&parent, prop)
                .map_err(|e| EditError::automerge("read", e))?
            {
                Some((Value::Object(ObjType::Text), id)) => id,
                _ => return Err(missing(path, ty)),
            };
            let new = match value {
                // Typed text is settled by a person: an empty one is a slip, as for `set`.
                Settle::Typed(s) if s.trim().is_empty() => {
                    return Err(ValueError::Empty {
                        field: path.to_string(),
                    }
                    .into())
                }
                Settle::Typed(s) | Settle::Str(s) => s.clone(),
                other => return Err(wrong_value(path, other)),
            };
            if new.len() > *max {
                return Err(ValueError::TooLong {
                    field: path.to_string(),
                    bytes: new.len(),
                    max: *max,
                }
                .into());
            }
            let current = tx
                .text(&text)
                .map_err(|e| EditError::automerge("read", e))?;
            if current == new {
                tx.splice_text(&text, 0, 0, " ").map_err(written)?;
                tx.splice_text(&text, 0, 1, "").map_err(written)?;
                return Ok(());
            }
            tx.update_text(&text, &new).map_err(written)
        }
        FieldType::Str { max, check } => {
            let scalar = match value {
                Settle::Typed(raw) => {
                    let checked = check_str(path, *max, *check, raw)?;
                    if checked.is_empty() {
                        return Err(ValueError::Empty {
                            field: path.to_string(),
                        }
                        .into());
                    }
                    automerge::ScalarValue::Str(checked.into())
                }
                Settle::Str(s) => automerge::ScalarValue::Str(s.as_str().into()),
                other => return Err(wrong_value(path, other)),
            };
            tx.put(&parent, prop, scalar).map_err(written)
        }
        FieldType::Num { min, max, whole } => {
            let scalar = match value {
                Settle::Typed(raw) => parse_number(path, *min, *max, *whole, raw)?,
                Settle::Int(n) => automerge::ScalarValue::Int(*n),
                Settle::Uint(n) => automerge::ScalarValue::Uint(*n),
                Settle::F64(n) => automerge::ScalarValue::F64(*n),
                other => return Err(wrong_value(path, other)),
            };
            tx.put(&parent, prop, scalar).map_err(written)
        }
        other => Err(EditError::WrongEdit {
            field: path.to_string(),
            shape: other.describe(),
            hint: "name one value or text in it, such as `steps.2` or `bom.1.quantity`".to_string(),
        }),
    }
}

fn missing(path: &str, ty: &FieldType) -> EditError {
    SchemaError::WrongType {
        path: path.to_string(),
        expected: ty.describe(),
        found: "nothing".to_string(),
    }
    .into()
}

fn wrong_value(path: &str, value: &Settle) -> EditError {
    let shown = match value {
        Settle::Typed(s) | Settle::Str(s) => s.clone(),
        Settle::Int(n) => n.to_string(),
        Settle::Uint(n) => n.to_string(),
        Settle::F64(n) => n.to_string(),
    };
    ValueError::NotANumber {
        field: path.to_string(),
        value: shown,
    }
    .into()
}

/// Walks a conflict path (`steps.2`, `bom.1.quantity`, `licence.hardware`) to the object holding
/// its last part, with that part and its type.
fn locate<R: ReadDoc>(
    doc: &R,
    kind: DocKind,
    path: &str,
) -> Result<(ObjId, Prop, &'static FieldType), EditError> {
    let unknown = |known: Vec<&'static str>| EditError::UnknownField {
        kind,
        path: path.to_string(),
        known,
    };
    let mut segments = path.split('.');
    let head = segments.next().unwrap_or_default();
    let field = find_field(kind.fields(), head).ok_or_else(|| unknown(names(kind.fields())))?;
    let mut parent = ROOT;
    let mut prop = Prop::Map(head.to_string());
    let mut ty: &'static FieldType = &field.ty;
    for segment in segments {
        let (next_prop, next_ty): (Prop, &'static FieldType) = match ty {
            FieldType::Record(parts) => (
                Prop::Map(segment.to_string()),
                &find_field(parts, segment)
                    .ok_or_else(|| unknown(names(parts)))?
                    .ty,
            ),
            FieldType::MapOf { value, .. } => (Prop::Map(segment.to_string()), *value),
            FieldType::List { item, .. } => match segment.parse::<usize>() {
                Ok(n) if n >= 1 => (Prop::Seq(n - 1), *item),
                _ => return Err(unknown(vec!["a step or entry number, from 1"])),
            },
            _ => return Err(unknown(Vec::new())),
        };
        let holder = match doc.get(&parent, prop.clone()) {
            Ok(Some((Value::Object(_), id))) => id,
            _ => return Err(missing(path, ty)),
        };
        parent = holder;
        prop = next_prop;
        ty = next_ty;
    }
    Ok((parent, prop, ty))
}

#[cfg(test)]
mod tests {
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
    fn only_changes_off_the_main_line_are_concurrent() {
        let graph = |deps: Vec<Vec<usize>>| Graph {
            hashes: Vec::new(),
            index: HashMap::new(),
            deps,
        };
        // 0 <- 1 <- 3 <- 4 and 0 <- 2 <- 3: 1 and 2 are concurrent, the rest ordered.
        let g = graph(vec![vec![], vec![0], vec![0], vec![1, 2], vec![3, 1]]);
        assert_eq!(g.concurrent_changes(), vec![1, 2]);
        assert!(!g.is_linear());
        // A second root is concurrent with everything before it.
        let g = graph(vec![vec![], vec![0], vec![]]);
        assert_eq!(g.concurrent_changes(), vec![0, 1, 2]);
        let g = graph(vec![vec![], vec![0], vec![1, 0]]);
        assert!(g.concurrent_changes().is_empty());
        assert!(g.is_linear());
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
}
