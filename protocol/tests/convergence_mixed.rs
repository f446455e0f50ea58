//! Convergence of a whole commons: designs, forks (of forks), releases, an event and a note
//! on it, edited concurrently by two to four authors, then delivered to every replica and to
//! fresh ones by a random mix of live envelopes (shuffled, duplicated) and compact bundles
//! (what the replica lacks, or an arbitrary slice of the history that may arrive before its
//! dependencies), and concurrent edits to different parts of one text, which must all survive.
//!
//! ```text
//!   design ─ edits, releases ─┬─ fork (clears releases) ─ fork of the fork
//!   event ── edits            │      edits ...
//!   note on the event ─ edits │
//!            every doc's changes ──▶ envelopes ∪ bundles, any order ──▶ same heads, same render,
//!                                                                      every release kept
//! ```
//!
//! Cases: `PROPTEST_CASES` (default [`DEFAULT_CASES`], what CI runs); failures are saved in
//! `protocol/proptest-regressions/` and replayed first on every run.

use hedgerow_protocol::schema::{
    self, design, event, note, BomLine, DocKind, Edit, EditContext, NewDocument,
};
use hedgerow_protocol::{
    automerge::ChangeHash, ChangeEnvelope, CommonsGenesis, CommonsId, DeviceKey, DocGenesis,
    DocReplica, ForkOrigin, IngestOutcome, Rejection, Signed,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

/// Cases per property when `PROPTEST_CASES` is not set: fast enough for every CI run.
const DEFAULT_CASES: u32 = 32;

/// Proptest's configuration: `PROPTEST_CASES` wins, failures persist beside the sources.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/convergence_mixed.txt",
        ))),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

/// One random edit, resolved against the document's kind and the editing replica's state.
#[derive(Debug, Clone)]
enum Op {
    Title(String),
    Choice(usize),
    ReplaceText(usize, String),
    AppendText(usize, String),
    AddItem(usize, String),
    RemoveItem(usize, usize),
    AddStep(String, Option<usize>),
    EditStep(usize, String),
    RemoveStep(usize),
    MoveStep(usize, usize),
    AddBomLine(String),
    Release(usize),
}

/// What happens next in a scenario.
#[derive(Debug, Clone)]
enum Action {
    /// Author `author` edits document `doc` (an index into the documents made so far).
    Edit { author: usize, doc: usize, op: Op },
    /// Everything `from` holds, of every document, is delivered to `to` in the order `from` got it.
    Sync { from: usize, to: usize },
    /// Author `author` forks design `parent` (an index into the designs made so far) at their heads.
    Fork { author: usize, parent: usize },
}

/// Versions releases are named from: few, so two authors often name the same one.
const VERSIONS: &[&str] = &["1.0", "1.1", "2.0"];
/// At most this many forks in a scenario.
const MAX_FORKS: usize = 2;

fn words() -> impl Strategy<Value = String> {
    "[abc ]{1,10}"
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => words().prop_map(Op::Title),
        1 => (0usize..8).prop_map(Op::Choice),
        3 => (0usize..2, words()).prop_map(|(f, t)| Op::ReplaceText(f, t)),
        2 => (0usize..2, words()).prop_map(|(f, t)| Op::AppendText(f, t)),
        2 => (0usize..2, "[a-d]{1,3}").prop_map(|(f, t)| Op::AddItem(f, t)),
        1 => (0usize..2, 0usize..4).prop_map(|(f, n)| Op::RemoveItem(f, n)),
        2 => (words(), proptest::option::of(0usize..8)).prop_map(|(t, at)| Op::AddStep(t, at)),
        2 => (0usize..8, words()).prop_map(|(n, t)| Op::EditStep(n, t)),
        1 => (0usize..8).prop_map(Op::RemoveStep),
        1 => (0usize..8, 0usize..8).prop_map(|(a, b)| Op::MoveStep(a, b)),
        1 => words().prop_map(Op::AddBomLine),
        2 => (0..VERSIONS.len()).prop_map(Op::Release),
    ]
}

fn actions(authors: usize) -> impl Strategy<Value = Vec<Action>> {
    let action = prop_oneof![
        8 => (0..authors, 0usize..6, op()).prop_map(|(author, doc, op)| Action::Edit { author, doc, op }),
        3 => (0..authors, 0..authors).prop_map(|(from, to)| Action::Sync { from, to }),
        1 => (0..authors, 0usize..3).prop_map(|(author, parent)| Action::Fork { author, parent }),
    ];
    proptest::collection::vec(action, 1..40)
}

/// `authors` authors, their actions, and a seed for delivery orders.
fn scenario() -> impl Strategy<Value = (usize, Vec<Action>, u64)> {
    (2usize..=4).prop_flat_map(|n| (Just(n), actions(n), any::<u64>()))
}

/// A small deterministic generator for delivery orders (proptest picks the seed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

fn key(n: usize) -> DeviceKey {
    DeviceKey::from_secret([n as u8 + 1; 32])
}

const NOW: i64 = 1_700_000_000;

fn commons_of(creator: &DeviceKey) -> CommonsId {
    CommonsGenesis {
        name: "Farm Hack".into(),
        description: "open farm tools".into(),
        creator: creator.author(),
        created_at: NOW,
        nonce: [7; 16],
    }
    .sign(creator)
    .body
    .id()
}

fn genesis(
    commons: CommonsId,
    kind: DocKind,
    by: &DeviceKey,
    nonce: u8,
    fork: Option<ForkOrigin>,
) -> Signed<DocGenesis> {
    DocGenesis {
        commons,
        kind,
        creator: by.author(),
        created_at: NOW,
        nonce: [nonce; 16],
        fork,
    }
    .sign(by)
}

fn hash_of(envelope: &ChangeEnvelope) -> ChangeHash {
    envelope
        .verify()
        .expect("our own envelopes verify")
        .change
        .hash()
}

fn render(replica: &DocReplica) -> Value {
    schema::render(replica.doc(), replica.kind(), None)
}

fn list_len(replica: &DocReplica, field: &str) -> usize {
    render(replica)[field].as_array().map_or(0, Vec::len)
}

/// A 1-based position in a list of `len` items chosen by `n`; `None` when the list is empty.
fn position(n: usize, len: usize) -> Option<usize> {
    (len > 0).then(|| 1 + n % len)
}

/// Text and list-of-strings fields an op may pick from, per kind.
fn text_fields(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Design => &["summary", "how_it_works"],
        DocKind::Event => &["summary", "description"],
        _ => &["body"],
    }
}

fn list_fields(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Design => &["tags", "tools"],
        DocKind::Event => &["topics", "organisers"],
        _ => &["tags"],
    }
}

/// Turns an op into an edit of `replica`'s document (`None`: not for this kind or state).
fn resolve(op: &Op, replica: &DocReplica) -> Option<Edit> {
    let kind = replica.kind();
    let design = kind == DocKind::Design;
    let steps = list_len(replica, "steps");
    let pick = |fields: &[&str], n: usize| fields[n % fields.len()].to_string();
    Some(match op {
        Op::Title(title) => Edit::Set {
            field: match kind {
                DocKind::Design => "name",
                DocKind::Event => "title",
                _ => return None,
            }
            .into(),
            value: format!("Crimper {title}"),
        },
        Op::Choice(n) => {
            let (field, choices) = match kind {
                DocKind::Design => ("stage", design::STAGES),
                DocKind::Event => ("status", event::EVENT_STATUSES),
                _ => ("kind", note::NOTE_KINDS),
            };
            Edit::Set {
                field: field.into(),
                value: choices[n % choices.len()].into(),
            }
        }
        Op::ReplaceText(f, text) => Edit::ReplaceText {
            field: pick(text_fields(kind), *f),
            text: text.clone(),
        },
        Op::AppendText(f, text) => Edit::AppendText {
            field: pick(text_fields(kind), *f),
            text: text.clone(),
        },
        Op::AddItem(f, item) => Edit::AddItem {
            field: pick(list_fields(kind), *f),
            item: item.clone(),
        },
        Op::RemoveItem(f, n) => {
            let field = pick(list_fields(kind), *f);
            let items = render(replica)[field.as_str()].as_array()?.clone();
            let item = items.get(n % items.len().max(1))?.as_str()?.to_string();
            Edit::RemoveItem { field, item }
        }
        Op::AddStep(text, at) if design => Edit::AddStep {
            text: text.clone(),
            at: at.map(|a| 1 + a % (steps + 1)),
        },
        Op::EditStep(n, text) if design => Edit::EditStep {
            step: position(*n, steps)?,
            text: text.clone(),
        },
        Op::RemoveStep(n) if design => Edit::RemoveStep {
            step: position(*n, steps)?,
        },
        Op::MoveStep(from, to) if design => Edit::MoveStep {
            from: position(*from, steps)?,
            to: position(*to, steps)?,
        },
        Op::AddBomLine(name) if design => Edit::AddBomLine {
            line: BomLine {
                name: format!("tube {name}"),
                ..BomLine::default()
            },
        },
        Op::Release(v) if design => Edit::Release {
            version: VERSIONS[*v].into(),
            heads: replica.heads().iter().map(|h| h.to_string()).collect(),
        },
        _ => return None,
    })
}

/// One document of the scenario and everything made for it.
struct Doc {
    genesis: Signed<DocGenesis>,
    /// Each author's replica, once they hold the document.
    replicas: Vec<Option<DocReplica>>,
    /// What each author holds, in the order they got it (a causal order).
    held: Vec<Vec<ChangeEnvelope>>,
    /// Every envelope of the document (inherited ones first for a fork), in a causal order.
    made: Vec<ChangeEnvelope>,
    /// Releases written by a local edit that succeeded: each must be in the end state.
    releases: BTreeSet<String>,
}

impl Doc {
    /// A new document made by `author` with its skeleton, which every author then holds.
    fn founded(
        authors: usize,
        genesis: Signed<DocGenesis>,
        by: &DeviceKey,
        new: &NewDocument,
    ) -> Self {
        let mut first = DocReplica::new(genesis.clone()).expect("genesis verifies");
        let (_, made) = first
            .edit(by, NOW, |tx| schema::init_document(tx, new))
            .expect("skeleton");
        let (skeleton, _) = made.expect("the skeleton is a change");
        let mut replicas = Vec::new();
        for _ in 0..authors {
            let mut replica = DocReplica::new(genesis.clone()).expect("genesis verifies");
            replica
                .ingest_envelope(&skeleton)
                .expect("skeleton applies");
            replicas.push(Some(replica));
        }
        Doc {
            genesis,
            replicas,
            held: vec![vec![skeleton.clone()]; authors],
            made: vec![skeleton],
            releases: BTreeSet::new(),
        }
    }

    fn kind(&self) -> DocKind {
        self.genesis.body.kind
    }
}

/// The outcome of a scenario's edit phase: every document.
struct Played {
    docs: Vec<Doc>,
}

/// Runs the edit phase: a design, an event and a note on it, then every action.
fn play(authors: usize, actions: &[Action]) -> Result<Played, TestCaseError> {
    let keys: Vec<DeviceKey> = (0..authors).map(key).collect();
    let commons = commons_of(&keys[0]);
    let design = Doc::founded(
        authors,
        genesis(commons, DocKind::Design, &keys[0], 1, None),
        &keys[0],
        &NewDocument::new(DocKind::Design, "Roller crimper"),
    );
    let event_genesis = genesis(commons, DocKind::Event, &keys[1], 2, None);
    let event_id = event_genesis.body.id().to_string();
    let event = Doc::founded(
        authors,
        event_genesis,
        &keys[1],
        &NewDocument::new(DocKind::Event, "Build day"),
    );
    let note = Doc::founded(
        authors,
        genesis(commons, DocKind::Note, &keys[authors - 1], 3, None),
        &keys[authors - 1],
        &NewDocument::note(event_id, Some("build-log"), "Built two drums"),
    );
    let mut docs = vec![design, event, note];
    let mut forks: u8 = 0;
    for (i, action) in actions.iter().enumerate() {
        let now = NOW + 100 + i as i64;
        match action {
            Action::Edit { author, doc, op } => {
                let count = docs.len();
                let doc = &mut docs[doc % count];
                let Some(replica) = doc.replicas[*author].as_mut() else {
                    continue;
                };
                let Some(edit) = resolve(op, replica) else {
                    continue;
                };
                let ctx = EditContext {
                    author: keys[*author].author().to_string(),
                    now_unix: now,
                };
                let kind = replica.kind();
                let before = replica.heads();
                match replica.edit(&keys[*author], now, |tx| {
                    schema::apply_edit(tx, kind, &edit, &ctx)
                }) {
                    Ok((_, Some((envelope, accepted)))) => {
                        prop_assert_eq!(accepted.hash, hash_of(&envelope));
                        prop_assert_eq!(replica.heads(), vec![accepted.hash]);
                        if let Edit::Release { version, .. } = &edit {
                            doc.releases.insert(version.clone());
                        }
                        doc.held[*author].push(envelope.clone());
                        doc.made.push(envelope);
                    }
                    Ok((_, None)) => prop_assert_eq!(replica.heads(), before),
                    // A release of a version this replica already holds is refused locally.
                    Err(refused) => prop_assert_eq!(
                        replica.heads(),
                        before,
                        "refused edit {:?} ({}) must write nothing",
                        edit,
                        refused
                    ),
                }
            }
            Action::Sync { from, to } => {
                if from == to {
                    continue;
                }
                for doc in &mut docs {
                    if doc.replicas[*from].is_none() {
                        continue;
                    }
                    let target = doc.replicas[*to].get_or_insert_with(|| {
                        DocReplica::new(doc.genesis.clone()).expect("genesis verifies")
                    });
                    for envelope in doc.held[*from].clone() {
                        let outcome = target
                            .ingest_envelope(&envelope)
                            .map_err(|e| fail(format!("mid-way sync refused: {e}")))?;
                        if !matches!(outcome, IngestOutcome::Duplicate) {
                            doc.held[*to].push(envelope);
                        }
                    }
                    prop_assert_eq!(target.pending_count(), 0);
                }
            }
            Action::Fork { author, parent } => {
                let designs: Vec<usize> = (0..docs.len())
                    .filter(|d| docs[*d].kind() == DocKind::Design)
                    .collect();
                let parent = designs[parent % designs.len()];
                if usize::from(forks) == MAX_FORKS || docs[parent].replicas[*author].is_none() {
                    continue;
                }
                forks += 1;
                let fork = fork_of(&docs[parent], *author, &keys[*author], authors, 10 + forks)?;
                docs.push(fork);
            }
        }
    }
    Ok(Played { docs })
}

/// A fork of `parent` by `author` at their heads, made as `hedgerow design fork` makes it:
/// the parent's history adopted, then the fork's first change clearing the releases and
/// naming it.
fn fork_of(
    parent: &Doc,
    author: usize,
    by: &DeviceKey,
    authors: usize,
    nonce: u8,
) -> Result<Doc, TestCaseError> {
    let from = parent.replicas[author]
        .as_ref()
        .expect("the forker holds the parent");
    let heads = from.heads();
    let lineage = parent.genesis.body.lineage();
    let genesis = genesis(
        parent.genesis.body.commons,
        DocKind::Design,
        by,
        nonce,
        Some(ForkOrigin {
            parent: lineage[0],
            heads: heads.iter().map(|h| h.0).collect(),
            ancestors: lineage[1..].to_vec(),
        }),
    );
    let mut fork = DocReplica::new(genesis.clone()).expect("fork genesis verifies");
    let adopted = fork
        .adopt_parent_history(from, &heads)
        .map_err(|e| fail(format!("fork refused its parent's history: {e}")))?;
    let hashes: Vec<ChangeHash> = adopted.iter().map(|a| a.hash).collect();
    let mut made = from.envelopes_for(&hashes);
    prop_assert_eq!(
        made.len(),
        hashes.len(),
        "every inherited change has its envelope"
    );
    let rename = Edit::Set {
        field: "name".into(),
        value: format!("Crimper fork {nonce}"),
    };
    let ctx = EditContext {
        author: by.author().to_string(),
        now_unix: NOW,
    };
    let (_, cleared) = fork
        .edit(by, NOW, |tx| {
            schema::clear_for_fork(tx)?;
            schema::apply_edit(tx, DocKind::Design, &rename, &ctx)
        })
        .map_err(|e| fail(format!("fork's first change refused: {e}")))?;
    let (envelope, _) = cleared.ok_or_else(|| fail("a fork's first change is a change"))?;
    made.push(envelope);
    let mut replicas: Vec<Option<DocReplica>> = (0..authors).map(|_| None).collect();
    let mut held = vec![Vec::new(); authors];
    held[author] = made.clone();
    replicas[author] = Some(fork);
    Ok(Doc {
        genesis,
        replicas,
        held,
        made,
        releases: BTreeSet::new(),
    })
}

/// The hashes of `made[range]` and whether `target` could apply them as one bundle: every
/// dependency is among them or already applied.
fn slice_of(
    made: &[ChangeEnvelope],
    range: std::ops::Range<usize>,
    target: &DocReplica,
) -> (Vec<ChangeHash>, bool) {
    let changes: Vec<_> = made[range]
        .iter()
        .map(|e| e.verify().expect("our own envelopes verify").change)
        .collect();
    let inside: HashSet<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
    let closed = changes.iter().all(|c| {
        c.deps()
            .iter()
            .all(|d| inside.contains(d) || target.record(d).is_some())
    });
    (changes.iter().map(|c| c.hash()).collect(), closed)
}

/// Delivers every change of `made` to `target` by a random mix of envelopes (shuffled, with
/// duplicates) and bundles from `source` (which holds everything), checking each outcome.
fn deliver_mixed(
    target: &mut DocReplica,
    source: &DocReplica,
    made: &[ChangeEnvelope],
    rng: &mut SplitMix,
) -> Result<(), TestCaseError> {
    let mut order: Vec<&ChangeEnvelope> = made.iter().collect();
    for _ in 0..rng.below(made.len() / 2 + 2) {
        order.push(&made[rng.below(made.len())]);
    }
    rng.shuffle(&mut order);
    let mut held_back: HashSet<ChangeHash> = HashSet::new();
    for envelope in order {
        match rng.below(8) {
            // What the target lacks, as a peer's sync response or a USB bundle carries it.
            0 => {
                let lacking = source.missing_for(&target.clock());
                if !lacking.is_empty() {
                    let (bundle, proofs) = source.compact_for(&lacking).map_err(fail)?;
                    target
                        .ingest_compact(&bundle, proofs)
                        .map_err(|e| fail(format!("bundle of what it lacks refused: {e}")))?;
                }
            }
            // Any slice of the history, possibly ahead of its dependencies.
            1 => {
                let start = rng.below(made.len());
                let end = start + 1 + rng.below(made.len() - start);
                let (hashes, closed) = slice_of(made, start..end, target);
                let (bundle, proofs) = source.compact_for(&hashes).map_err(fail)?;
                let before = (target.heads(), target.change_count());
                match target.ingest_compact(&bundle, proofs) {
                    Ok(_) => prop_assert!(closed, "a bundle ahead of its dependencies applied"),
                    Err(Rejection::MissingDependencies { .. }) => {
                        prop_assert!(!closed, "a closed bundle refused");
                        prop_assert_eq!((target.heads(), target.change_count()), before);
                    }
                    Err(other) => return Err(fail(format!("honest bundle refused: {other}"))),
                }
            }
            _ => {}
        }
        held_back.retain(|h| target.record(h).is_none());
        let hash = hash_of(envelope);
        let known = target.record(&hash).is_some() || held_back.contains(&hash);
        let deps_missing = envelope
            .verify()
            .expect("our own envelopes verify")
            .change
            .deps()
            .iter()
            .any(|d| target.record(d).is_none());
        match target
            .ingest_envelope(envelope)
            .map_err(|e| fail(format!("honest envelope refused: {e}")))?
        {
            IngestOutcome::Duplicate => prop_assert!(known, "fresh envelope called a duplicate"),
            IngestOutcome::Pending => {
                prop_assert!(!known && deps_missing, "held although it could apply");
                held_back.insert(hash);
            }
            IngestOutcome::Excluded => {
                prop_assert!(false, "an honest change was set aside as an equivocation")
            }
            IngestOutcome::Applied(accepted) => {
                prop_assert!(!known && !deps_missing, "applied although it should wait");
                prop_assert_eq!(accepted[0].hash, hash);
                for unblocked in &accepted[1..] {
                    prop_assert!(
                        held_back.remove(&unblocked.hash),
                        "applied a change never held"
                    );
                }
            }
        }
        prop_assert_eq!(target.pending_count(), held_back.len());
    }
    prop_assert_eq!(
        target.pending_count(),
        0,
        "everything arrived, nothing may wait"
    );
    Ok(())
}

fn sorted_heads(replica: &DocReplica) -> Vec<ChangeHash> {
    let mut heads = replica.heads();
    heads.sort();
    heads
}

proptest! {
    #![proptest_config(config())]

    /// Every document of the commons converges on every replica, whatever mix of envelopes and
    /// bundles in whatever order carries it; every release an author wrote is kept; forks keep
    /// to their declared history.
    #[test]
    fn a_commons_converges_by_any_mix_of_envelopes_and_bundles((authors, actions, seed) in scenario()) {
        let Played { mut docs } = play(authors, &actions)?;
        let mut rng = SplitMix(seed);
        for (d, doc) in docs.iter_mut().enumerate() {
            // The reference: every change once, in the order made.
            let mut source = DocReplica::new(doc.genesis.clone()).expect("genesis verifies");
            for envelope in &doc.made {
                let outcome = source.ingest_envelope(envelope).map_err(|e| fail(format!("doc {d}: causal order refused: {e}")))?;
                prop_assert!(matches!(outcome, IngestOutcome::Applied(ref a) if a.len() == 1), "doc {}: {:?}", d, outcome);
            }
            let mut targets: Vec<DocReplica> = doc.replicas.iter_mut().map(|r| r.take().unwrap_or_else(|| DocReplica::new(doc.genesis.clone()).expect("genesis verifies"))).collect();
            targets.push(DocReplica::new(doc.genesis.clone()).expect("genesis verifies"));
            targets.push(DocReplica::new(doc.genesis.clone()).expect("genesis verifies"));
            for (t, target) in targets.iter_mut().enumerate() {
                deliver_mixed(target, &source, &doc.made, &mut rng)?;
                let what = format!("doc {d} ({}), replica {t}", doc.kind().as_str());
                prop_assert_eq!(target.change_count(), doc.made.len(), "{}", what);
                prop_assert_eq!(sorted_heads(target), sorted_heads(&source), "{}: heads differ", what);
                prop_assert_eq!(render(target), render(&source), "{}: rendered document differs", what);
            }
            schema::validate_document(source.doc(), doc.kind()).map_err(|e| fail(format!("doc {d}: merged document invalid: {e}")))?;
            if doc.kind() == DocKind::Design {
                let rendered = render(&source);
                for version in &doc.releases {
                    prop_assert!(rendered["releases"].get(version).is_some(), "doc {}: release {} lost: {}", d, version, rendered["releases"]);
                }
            }
        }
    }

    /// Authors who each rewrite a different word of one text (a design's summary or a build
    /// step), while one more appends to it, all see every edit survive, exactly, by envelopes
    /// in any order or by a bundle.
    #[test]
    fn concurrent_edits_to_different_parts_of_a_text_all_survive(
        original in proptest::collection::vec("[a-f]{1,6}", 3..8),
        rewrites in proptest::collection::vec("[x-z]{0,5}", 2..5),
        appended in proptest::option::of("[x-z]{1,5}"),
        in_step in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = SplitMix(seed);
        let authors = rewrites.len().min(original.len()) + usize::from(appended.is_some());
        let keys: Vec<DeviceKey> = (0..authors).map(key).collect();
        let mut base = DocReplica::new(genesis(commons_of(&keys[0]), DocKind::Design, &keys[0], 1, None)).expect("genesis verifies");
        let ctx = |k: &DeviceKey| EditContext { author: k.author().to_string(), now_unix: NOW };
        let text_edit = |text: String| if in_step {
            Edit::EditStep { step: 1, text }
        } else {
            Edit::ReplaceText { field: "summary".into(), text }
        };
        let first = original.join(" ");
        let (_, made) = base.edit(&keys[0], NOW, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Roller crimper"))
        }).map_err(fail)?;
        let mut shared = vec![made.expect("a change").0];
        for edit in [Edit::AddStep { text: "step".into(), at: None }, text_edit(first.clone())] {
            let (_, made) = base.edit(&keys[0], NOW, |tx| {
                schema::apply_edit(tx, DocKind::Design, &edit, &ctx(&keys[0]))
            }).map_err(fail)?;
            shared.push(made.expect("a change").0);
        }
        // Distinct words, one per rewriting author.
        let mut at: Vec<usize> = (0..original.len()).collect();
        rng.shuffle(&mut at);
        let mut expected = original.clone();
        let mut concurrent = Vec::new();
        for (author, key) in keys.iter().enumerate() {
            let mut replica = DocReplica::new(base.genesis().clone()).expect("genesis verifies");
            for envelope in &shared {
                replica.ingest_envelope(envelope).map_err(fail)?;
            }
            let edit = match (author < rewrites.len().min(original.len()), &appended) {
                (true, _) => {
                    let mut mine = original.clone();
                    mine[at[author]] = rewrites[author].clone();
                    expected[at[author]] = rewrites[author].clone();
                    text_edit(mine.join(" "))
                }
                (false, Some(more)) if in_step => Edit::EditStep { step: 1, text: format!("{first} {more}") },
                (false, Some(more)) => Edit::AppendText { field: "summary".into(), text: format!(" {more}") },
                (false, None) => unreachable!("only rewriters and one appender"),
            };
            let (_, made) = replica.edit(key, NOW + 1, |tx| schema::apply_edit(tx, DocKind::Design, &edit, &ctx(key))).map_err(fail)?;
            if let Some((envelope, _)) = made {
                concurrent.push((replica, envelope));
            }
        }
        let mut expected = expected.join(" ");
        if let Some(more) = &appended {
            expected.push(' ');
            expected.push_str(more);
        }
        let text_of = |replica: &DocReplica| -> Value {
            let rendered = render(replica);
            if in_step { rendered["steps"][0].clone() } else { rendered["summary"].clone() }
        };
        let everything: Vec<ChangeEnvelope> = shared.iter().cloned().chain(concurrent.iter().map(|(_, e)| e.clone())).collect();
        // Each author takes everyone's edit as envelopes, in any order.
        let mut replicas: Vec<DocReplica> = Vec::new();
        for (mut replica, _) in concurrent {
            let mut order = everything.clone();
            rng.shuffle(&mut order);
            for envelope in &order {
                replica.ingest_envelope(envelope).map_err(fail)?;
            }
            replicas.push(replica);
        }
        // A fresh node gets it all from the first author as one bundle.
        let mut fresh = DocReplica::new(base.genesis().clone()).expect("genesis verifies");
        let all = replicas[0].missing_for(&fresh.clock());
        let (bundle, proofs) = replicas[0].compact_for(&all).map_err(fail)?;
        fresh.ingest_compact(&bundle, proofs).map_err(fail)?;
        replicas.push(fresh);
        for (i, replica) in replicas.iter().enumerate() {
            prop_assert_eq!(text_of(replica), Value::String(expected.clone()), "replica {}: an edit was lost", i);
        }
    }
}
