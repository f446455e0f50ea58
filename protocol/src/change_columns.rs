//! Which object each operation of a change writes, read straight from the change's columns.
//!
//! The release rule ([`crate::history_rules`]) must know whether a change writes the root's
//! `releases` key or inside a release object. automerge 0.12 answers that only through
//! `Change::decode`, which expands every operation (values, predecessors, keys as owned
//! strings) and costs about as much as loading the whole document. This reader walks only
//! the object and key columns of the change's uncompressed chunk, as automerge's own
//! operation iterator reads them (`ObjIdIter`, `KeyIter`, `RleDecoder`).
//!
//! The chunk is walked with the screen's reader ([`crate::automerge_screen`]). It is a
//! screen, not a second parser: the change it reads has already been parsed and
//! verified by automerge, and whenever the bytes are not laid out exactly as expected it
//! answers `None` and the caller decodes with automerge as before. No unsafe code.

use crate::automerge_screen::{change_body_columns, Reader};

/// The chunk's magic bytes.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of a change.
const CHANGE_CHUNK: u8 = 1;
/// Column specs (`id << 4 | type`, never deflated in a change) of the columns read here.
const OBJ_ACTOR: u64 = 1; // id 0, type actor
const OBJ_COUNTER: u64 = 2; // id 0, type integer
const KEY_STRING: u64 = (1 << 4) | 5; // id 1, type string
/// The deflate bit of a column spec (automerge refuses it in change chunks).
const DEFLATE: u64 = 1 << 3;
/// Longest run this reader follows; longer ones are left to automerge.
const MAX_RUN: u64 = 1 << 32;

/// Where one operation writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// The root map, at this key (`None` when the key is not a string).
    Root {
        /// The key's UTF-8 bytes.
        key: Option<&'a [u8]>,
    },
    /// An object made by operation `counter` of the change's actor number `actor` (0 is the
    /// change's own actor, then its other actors in order).
    Object {
        /// The creating operation's counter.
        counter: u64,
        /// Index into the change's actor table.
        actor: usize,
    },
}

/// The target of each of the `ops` operations of the change chunk `raw`, in order, or `None`
/// when the chunk is not laid out as this reader expects.
pub(crate) fn targets(raw: &[u8], ops: usize) -> Option<Vec<Target<'_>>> {
    let columns = columns(raw)?;
    let actors = read_column(columns.obj_actor, ops, uleb)?;
    let counters = read_column(columns.obj_counter, ops, uleb)?;
    let keys = read_column(columns.key_string, ops, string)?;
    let mut out = Vec::with_capacity(ops);
    for i in 0..ops {
        let target = match (actors[i], counters[i]) {
            // As automerge's `ObjIdIter`: both null, or a zero counter, is the root.
            (None, None) | (_, Some(0)) => Target::Root { key: keys[i] },
            (Some(actor), Some(counter)) => Target::Object {
                counter,
                actor: usize::try_from(actor).ok()?,
            },
            // automerge refuses these; a verified change has none.
            _ => return None,
        };
        out.push(target);
    }
    Some(out)
}

/// The three columns' data (empty when the column is absent: all null).
struct Columns<'a> {
    obj_actor: &'a [u8],
    obj_counter: &'a [u8],
    key_string: &'a [u8],
}

/// Walks the chunk header, then finds the three columns among the body's.
fn columns(raw: &[u8]) -> Option<Columns<'_>> {
    let mut r = Reader::new(raw, 0);
    if r.take(4).ok()? != MAGIC {
        return None;
    }
    r.take(4).ok()?; // checksum
    if r.take(1).ok()? != [CHANGE_CHUNK] {
        return None;
    }
    let len = r.len().ok()?;
    let body = r.take(len).ok()?;
    let mut found = Columns {
        obj_actor: &[],
        obj_counter: &[],
        key_string: &[],
    };
    let mut last = None;
    for (spec, data) in change_body_columns(body).ok()? {
        // automerge keeps columns in ascending order of spec and refuses deflated ones here;
        // anything else is left to it.
        if spec & DEFLATE != 0 || last.is_some_and(|l| spec <= l) {
            return None;
        }
        last = Some(spec);
        match spec {
            OBJ_ACTOR => found.obj_actor = data,
            OBJ_COUNTER => found.obj_counter = data,
            KEY_STRING => found.key_string = data,
            _ => {}
        }
    }
    Some(found)
}

/// Decodes the first `ops` values of a run-length encoded column (automerge's
/// `RleDecoder`): a positive count repeats the value after it, a negative count is followed
/// by that many values, zero is followed by a count of nulls. Past its end a column is null.
fn read_column<'a, T: Copy>(
    data: &'a [u8],
    ops: usize,
    value: impl Fn(&mut Reader<'a>) -> Option<T>,
) -> Option<Vec<Option<T>>> {
    let mut r = Reader::new(data, 0);
    let mut out = Vec::with_capacity(ops);
    while out.len() < ops && !r.done() {
        let count = r.sleb().ok()?;
        let left = ops - out.len();
        if count > 0 {
            let run = bounded(count.unsigned_abs())?;
            let v = value(&mut r)?;
            out.extend(std::iter::repeat_n(Some(v), run.min(left)));
        } else if count < 0 {
            let run = bounded(count.unsigned_abs())?;
            for _ in 0..run.min(left) {
                out.push(Some(value(&mut r)?));
            }
        } else {
            let run = bounded(r.uleb().ok()?)?;
            out.extend(std::iter::repeat_n(None, run.min(left)));
        }
    }
    out.resize(ops, None);
    Some(out)
}

fn bounded(run: u64) -> Option<usize> {
    if run > MAX_RUN {
        return None;
    }
    usize::try_from(run).ok()
}

/// An unsigned LEB128 value of a column.
fn uleb(r: &mut Reader<'_>) -> Option<u64> {
    r.uleb().ok()
}

/// A length-prefixed UTF-8 string of a column, as its bytes.
fn string<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let len = r.len().ok()?;
    let bytes = r.take(len).ok()?;
    std::str::from_utf8(bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::legacy::{Key, ObjectId};
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, Change, ObjType, ReadDoc, ROOT};
    use proptest::prelude::*;

    /// One operation's object (`None`: the root) and, in the root, its string key.
    type Seen = (Option<(u64, automerge::ActorId)>, Option<String>);

    /// What automerge's own decode says each operation targets, in this module's terms.
    fn decoded(change: &Change) -> Vec<Seen> {
        change
            .decode()
            .operations
            .iter()
            .map(|op| match &op.obj {
                ObjectId::Root => (
                    None,
                    match &op.key {
                        Key::Map(k) => Some(k.to_string()),
                        Key::Seq(_) => None,
                    },
                ),
                ObjectId::Id(id) => (Some((id.0, id.1.clone())), None),
            })
            .collect()
    }

    /// What this module's reader says.
    fn scanned(change: &Change) -> Vec<Seen> {
        let actors: Vec<_> = change.actors().cloned().collect();
        targets(change.raw_bytes(), change.len())
            .expect("an honest change is read")
            .into_iter()
            .map(|t| match t {
                Target::Root { key } => (
                    None,
                    key.map(|k| String::from_utf8(k.to_vec()).expect("utf-8")),
                ),
                Target::Object { counter, actor } => (Some((counter, actors[actor].clone())), None),
            })
            .collect()
    }

    #[derive(Debug, Clone)]
    enum Step {
        Put(u8, String),
        Nest(u8),
        PutInNested(u8, u8, i64),
        Text(String),
        Splice(usize, usize, String),
        List(u8),
        Delete(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..6, "[a-z]{0,12}").prop_map(|(k, v)| Step::Put(k, v)),
            (0u8..6).prop_map(Step::Nest),
            (0u8..6, 0u8..4, any::<i64>()).prop_map(|(k, j, v)| Step::PutInNested(k, j, v)),
            "[a-z ]{0,40}".prop_map(Step::Text),
            (0usize..40, 0usize..8, "[a-z]{0,8}").prop_map(|(p, d, s)| Step::Splice(p, d, s)),
            (0u8..6).prop_map(Step::List),
            (0u8..6).prop_map(Step::Delete),
        ]
    }

    fn key(k: u8) -> String {
        // Key 0 is the one the release rule looks for.
        if k == 0 {
            "releases".into()
        } else {
            format!("k{k}")
        }
    }

    fn apply(doc: &mut AutoCommit, step: &Step) {
        let _ = match step {
            Step::Put(k, v) => doc.put(ROOT, key(*k), v.as_str()).map(|_| ()),
            Step::Nest(k) => doc.put_object(ROOT, key(*k), ObjType::Map).map(|_| ()),
            Step::PutInNested(k, j, v) => match doc.get(ROOT, key(*k)) {
                Ok(Some((automerge::Value::Object(ObjType::Map), obj))) => {
                    doc.put(&obj, format!("n{j}"), *v).map(|_| ())
                }
                _ => Ok(()),
            },
            Step::Text(t) => doc
                .put_object(ROOT, "text", ObjType::Text)
                .and_then(|obj| doc.splice_text(&obj, 0, 0, t)),
            Step::Splice(p, d, s) => match doc.get(ROOT, "text") {
                Ok(Some((automerge::Value::Object(ObjType::Text), obj))) => {
                    let len = doc.length(&obj);
                    let at = (*p).min(len);
                    let del = (*d).min(len - at) as isize;
                    doc.splice_text(&obj, at, del, s)
                }
                _ => Ok(()),
            },
            Step::List(k) => doc
                .put_object(ROOT, key(*k), ObjType::List)
                .and_then(|list| doc.insert(&list, 0, "x").map(|_| ())),
            Step::Delete(k) => doc.delete(ROOT, key(*k)),
        };
    }

    proptest! {
        /// On every change two writers make, the columns say what automerge's decode says.
        #[test]
        fn the_columns_agree_with_automerges_decode(
            mine in proptest::collection::vec(proptest::collection::vec(step(), 1..6), 1..6),
            theirs in proptest::collection::vec(proptest::collection::vec(step(), 1..6), 0..4),
        ) {
            let mut a = AutoCommit::new();
            for batch in &mine {
                for s in batch {
                    apply(&mut a, s);
                }
                a.commit();
            }
            let mut b = a.fork();
            for batch in &theirs {
                for s in batch {
                    apply(&mut b, s);
                }
                b.commit();
            }
            a.merge(&mut b).expect("merge");
            for batch in &mine {
                for s in batch {
                    apply(&mut a, s);
                }
            }
            a.commit();
            for change in a.get_changes(&[]) {
                prop_assert_eq!(scanned(&change), decoded(&change));
            }
        }
    }

    #[test]
    fn a_chunk_that_is_not_a_change_is_left_to_automerge() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "releases", "x").expect("put");
        doc.commit();
        let change = doc.get_changes(&[]).pop().expect("a change");
        let raw = change.raw_bytes();
        assert!(targets(raw, change.len()).is_some());
        // A document chunk, a cut chunk and a bad magic are all refused, never misread.
        assert_eq!(targets(&doc.save(), 1), None);
        assert_eq!(targets(&raw[..raw.len() - 3], change.len()), None);
        let mut bad = raw.to_vec();
        bad[0] ^= 1;
        assert_eq!(targets(&bad, change.len()), None);
    }
}
