//! Rules on a document's history that the schema of its current state cannot see:
//! a release is written once, and a fork's inherited history is what its genesis declares.
//!
//! Both used to be enforced only by the local edit functions, so a crafted remote
//! change could rewrite release 1.0's heads and author, and a peer could graft a
//! parent's later changes into a fork. The replica checks them on every change it
//! takes in, local or remote, envelope or compact.
//!
//! Releases are checked change by change, each against the document as that change
//! saw it (at its dependencies), so a rewrite cannot hide inside a whole-document
//! payload either. Only changes whose operations touch the releases map or an object
//! inside it are read at their own heads; of the rest, those that cannot touch them (see
//! [`may_touch`]) are not even decoded.

use automerge::legacy::{Key, ObjectId};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ReadDoc, Value, ROOT};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Deepest object inside a release entry that is compared (entries hold a heads list).
const MAX_ENTRY_DEPTH: usize = 4;

/// A release entry: its version and the id of the object automerge made for it.
type EntryKey = (String, String);

/// Every release entry visible at some heads (conflicting ones too), with its content.
type Releases = BTreeMap<EntryKey, String>;

/// Why a change breaks a history rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleBreak {
    /// A change rewrites, removes or shadows an existing release.
    Release {
        /// The change.
        change: ChangeHash,
        /// The release's version.
        version: String,
    },
}

/// Reads a document at `heads`, or now.
struct At<'a> {
    doc: &'a Automerge,
    heads: Option<&'a [ChangeHash]>,
}

impl At<'_> {
    fn get_all(&self, obj: &ObjId, prop: impl Into<automerge::Prop>) -> Vec<(Value<'_>, ObjId)> {
        match self.heads {
            Some(heads) => self.doc.get_all_at(obj, prop, heads),
            None => self.doc.get_all(obj, prop),
        }
        .unwrap_or_default()
    }

    fn keys(&self, obj: &ObjId) -> Vec<String> {
        match self.heads {
            Some(heads) => self.doc.keys_at(obj, heads).collect(),
            None => self.doc.keys(obj).collect(),
        }
    }

    fn length(&self, obj: &ObjId) -> usize {
        match self.heads {
            Some(heads) => self.doc.length_at(obj, heads),
            None => self.doc.length(obj),
        }
    }

    fn text(&self, obj: &ObjId) -> String {
        match self.heads {
            Some(heads) => self.doc.text_at(obj, heads),
            None => self.doc.text(obj),
        }
        .unwrap_or_default()
    }

    /// Every release entry, keyed by version and object id.
    fn releases(&self) -> Releases {
        let mut out = Releases::new();
        for (value, map) in self.get_all(&ROOT, "releases") {
            if !matches!(value, Value::Object(ObjType::Map)) {
                continue;
            }
            for version in self.keys(&map) {
                for (value, entry) in self.get_all(&map, version.as_str()) {
                    let content = self.dump(&value, &entry, 0);
                    out.insert((version.clone(), entry.to_string()), content);
                }
            }
        }
        out
    }

    /// A stable text of a value and everything in it, conflicts included.
    fn dump(&self, value: &Value<'_>, id: &ObjId, depth: usize) -> String {
        if depth > MAX_ENTRY_DEPTH {
            return "…".into();
        }
        match value {
            Value::Scalar(scalar) => format!("{scalar:?}"),
            Value::Object(ObjType::Map | ObjType::Table) => {
                let mut out = format!("{id}{{");
                for key in self.keys(id) {
                    out.push_str(&format!("{key:?}="));
                    for (v, child) in self.get_all(id, key.as_str()) {
                        out.push_str(&self.dump(&v, &child, depth + 1));
                        out.push('|');
                    }
                    out.push(',');
                }
                out.push('}');
                out
            }
            Value::Object(ObjType::List) => {
                let mut out = format!("{id}[");
                for index in 0..self.length(id) {
                    for (v, child) in self.get_all(id, index) {
                        out.push_str(&self.dump(&v, &child, depth + 1));
                        out.push('|');
                    }
                    out.push(',');
                }
                out.push(']');
                out
            }
            Value::Object(ObjType::Text) => format!("{id}{:?}", self.text(id)),
        }
    }

    /// The ids of the releases map, its entries and everything in them.
    fn release_objects(&self, into: &mut HashSet<(u64, ActorId)>) {
        for (value, map) in self.get_all(&ROOT, "releases") {
            self.collect(&value, &map, 0, into);
        }
    }

    fn collect(
        &self,
        value: &Value<'_>,
        id: &ObjId,
        depth: usize,
        into: &mut HashSet<(u64, ActorId)>,
    ) {
        let Value::Object(kind) = value else {
            return;
        };
        if depth > MAX_ENTRY_DEPTH + 1 {
            return;
        }
        if let ObjId::Id(counter, actor, _) = id {
            into.insert((*counter, actor.clone()));
        }
        match kind {
            ObjType::Map | ObjType::Table => {
                for key in self.keys(id) {
                    for (v, child) in self.get_all(id, key.as_str()) {
                        self.collect(&v, &child, depth + 1, into);
                    }
                }
            }
            ObjType::List => {
                for index in 0..self.length(id) {
                    for (v, child) in self.get_all(id, index) {
                        self.collect(&v, &child, depth + 1, into);
                    }
                }
            }
            ObjType::Text => {}
        }
    }
}

thread_local! {
    /// Changes decoded on this thread to see whether they touch a release (see
    /// [`changes_decoded`]).
    static DECODED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many changes the release rule has decoded with automerge's full decode on the calling
/// thread so far: what tests count instead of timing it.
pub fn changes_decoded() -> u64 {
    DECODED.with(std::cell::Cell::get)
}

/// The release objects, by the actor that made them: what [`touches`] looks for.
struct Touchable {
    by_actor: HashMap<ActorId, HashSet<u64>>,
}

impl Touchable {
    fn new(objects: HashSet<(u64, ActorId)>) -> Self {
        let mut by_actor: HashMap<ActorId, HashSet<u64>> = HashMap::new();
        for (counter, actor) in objects {
            by_actor.entry(actor).or_default().insert(counter);
        }
        Self { by_actor }
    }

    fn contains(&self, counter: u64, actor: &ActorId) -> bool {
        self.by_actor
            .get(actor)
            .is_some_and(|counters| counters.contains(&counter))
    }
}

/// Whether `change` could write the root's `releases` key or inside a release object,
/// judged without reading its operations; false only when it cannot.
///
/// Change chunks hold their columns uncompressed (automerge refuses compressed columns in
/// them), so a map key is written verbatim in the key-string column: a change whose bytes
/// do not contain `releases` writes no key of that name. An operation names its object by a
/// counter and an index into the change's own actor table: a change whose actors include
/// none of the release objects' makers writes into none of them.
fn may_touch(change: &Change, touchable: &Touchable) -> bool {
    memchr::memmem::find(change.raw_bytes(), b"releases").is_some()
        || change
            .actors()
            .any(|actor| touchable.by_actor.contains_key(actor))
}

/// Whether any operation of `change` writes the root's `releases` key or inside a release
/// object.
///
/// Read from the change's object and key columns ([`crate::change_columns`]); automerge's
/// full decode, which costs about as much as loading the document, only when those columns
/// are not laid out as that reader expects.
fn touches(change: &Change, touchable: &Touchable) -> bool {
    if !may_touch(change, touchable) {
        return false;
    }
    let actors: Vec<&ActorId> = change.actors().collect();
    if let Some(targets) = crate::change_columns::targets(change.raw_bytes(), change.len()) {
        let mut read = true;
        let hit = targets.iter().any(|target| match *target {
            crate::change_columns::Target::Root { key } => key == Some(b"releases".as_slice()),
            crate::change_columns::Target::Object { counter, actor } => match actors.get(actor) {
                Some(actor) => touchable.contains(counter, actor),
                None => {
                    read = false;
                    false
                }
            },
        });
        if read {
            return hit;
        }
    }
    DECODED.with(|n| n.set(n.get() + 1));
    change.decode().operations.iter().any(|op| match &op.obj {
        ObjectId::Root => matches!(&op.key, Key::Map(key) if key.as_str() == "releases"),
        ObjectId::Id(id) => touchable.contains(id.0, &id.1),
    })
}

/// Checks that no change in `fresh` (already applied to `doc`) rewrites, removes or
/// shadows a release that existed where it was made.
///
/// `inherited` are the heads a fork was made at: releases visible there are the
/// parent's, which a fork's first change clears, so they may be removed (never changed);
/// in a fork, a change that empties the releases (an ancestor fork's first change) may too.
pub(crate) fn check_releases(
    doc: &Automerge,
    fresh: &[Change],
    inherited: Option<&[ChangeHash]>,
) -> Result<(), RuleBreak> {
    let mut objects = HashSet::new();
    At { doc, heads: None }.release_objects(&mut objects);
    let touchable = Touchable::new(objects);
    // A fork of a fork inherits its parent's first change, which emptied the grandparent's
    // releases: in a fork, a change that leaves no release at all is such a clearing.
    let in_fork = inherited.is_some();
    let inherited = inherited
        .filter(|heads| {
            heads
                .iter()
                .all(|h| doc.get_change_meta_by_hash(h).is_some())
        })
        .map(|heads| {
            At {
                doc,
                heads: Some(heads),
            }
            .releases()
        })
        .unwrap_or_default();
    for change in fresh.iter().filter(|c| touches(c, &touchable)) {
        let hash = change.hash();
        let before = At {
            doc,
            heads: Some(change.deps()),
        }
        .releases();
        let own = [hash];
        let after = At {
            doc,
            heads: Some(&own),
        }
        .releases();
        let broken = |version: &str| RuleBreak::Release {
            change: hash,
            version: version.to_string(),
        };
        for (key, content) in &before {
            let kept = after.get(key) == Some(content);
            let cleared = !after.contains_key(key)
                && (inherited.contains_key(key) || (in_fork && after.is_empty()));
            if !kept && !cleared {
                return Err(broken(&key.0));
            }
        }
        for key in after.keys().filter(|k| !before.contains_key(*k)) {
            let existing = before
                .keys()
                .any(|old| old.0 == key.0 && !inherited.contains_key(old));
            if existing {
                return Err(broken(&key.0));
            }
        }
    }
    Ok(())
}
