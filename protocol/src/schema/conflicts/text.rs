//! Conflicts in collaborative texts: each change's edits read in element ids and compared on
//! the text both changes had seen (the rule is in the parent module's doc).

use super::graph::{Bits, Graph};
use super::{Conflict, ConflictSide, Settle};
use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, ObjId, ReadDoc};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most pairs of changes to one document's texts compared (each costs a few bit lookups).
///
/// Honest concurrency (people editing apart, then meeting) pairs a few changes; the bounds
/// only keep a hostile document from making `show` slow: past them, no further conflicts
/// are looked for in it.
const MAX_PAIRS: usize = 200_000;

/// Most concurrent pairs of one document whose text edits are placed and compared (each
/// costs a pass over the text's elements).
const MAX_TOUCH_TESTS: usize = 2_000;

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
pub(super) fn text_conflicts(
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
