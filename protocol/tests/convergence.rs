//! Convergence of [`DocReplica`]s under concurrent edits and any delivery order.
//!
//! Two to four authors each hold a replica of one design. They make random
//! concurrent edits (sometimes syncing a few changes between them mid-way, so
//! the change graph interleaves authors), then every envelope is delivered to
//! every replica, and to a fresh one, in a random order with duplicates.
//! Every replica must end with the same heads and the same rendered design, an
//! envelope delivered before its dependencies must be held (`Pending`) and
//! applied as soon as they arrive, and the compact path (one bundle with the
//! covering proofs) must give the same state and refuse bundles whose proofs
//! were removed or re-signed.
//!
//! ```text
//!   alice ──edit──edit────────edit──┐
//!            \ sync        /        │  all envelopes, shuffled + duplicated
//!   bob   ────edit──edit──┘         ├──▶ alice, bob, carol, fresh: same heads, same render
//!   carol ──edit──────────edit──────┘
//! ```

use hedgerow_protocol::envelope::{signing_digest, EnvelopeError};
use hedgerow_protocol::identity::SignatureError;
use hedgerow_protocol::schema::{self, design, BomLine, DocKind, Edit, EditContext, NewDocument};
use hedgerow_protocol::{
    automerge::{ChangeHash, ReadDoc},
    ChangeEnvelope, ChangeProof, CommonsGenesis, CommonsId, DeviceKey, DocGenesis, DocReplica,
    IngestOutcome, Rejection, Signed,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::{BTreeMap, HashSet};

/// One random edit, resolved against the editing replica's state when it is made.
#[derive(Debug, Clone)]
enum Op {
    SetName(String),
    SetStage(usize),
    AddStep(String, Option<usize>),
    EditStep(usize, String),
    RemoveStep(usize),
    MoveStep(usize, usize),
    AddTag(String),
    RemoveTag(usize),
    ReplaceSummary(String),
    AppendSummary(String),
    AddBomLine(String, Option<u16>),
    RemoveBomLine(usize),
}

/// What happens next in a scenario.
#[derive(Debug, Clone)]
enum Action {
    /// Author `author` makes one edit on their own replica.
    Edit { author: usize, op: Op },
    /// Everything `from` holds is delivered to `to`, in the order `from` got it.
    Sync { from: usize, to: usize },
}

fn words() -> impl Strategy<Value = String> {
    // A small alphabet makes concurrent text edits collide often.
    "[abc ]{1,10}"
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => words().prop_map(Op::SetName),
        1 => (0..design::STAGES.len()).prop_map(Op::SetStage),
        3 => (words(), proptest::option::of(0usize..8)).prop_map(|(t, at)| Op::AddStep(t, at)),
        3 => (0usize..8, words()).prop_map(|(n, t)| Op::EditStep(n, t)),
        1 => (0usize..8).prop_map(Op::RemoveStep),
        1 => (0usize..8, 0usize..8).prop_map(|(a, b)| Op::MoveStep(a, b)),
        2 => "[a-d]{1,3}".prop_map(Op::AddTag),
        1 => (0usize..4).prop_map(Op::RemoveTag),
        2 => words().prop_map(Op::ReplaceSummary),
        1 => words().prop_map(Op::AppendSummary),
        1 => (words(), proptest::option::of(0u16..500)).prop_map(|(n, q)| Op::AddBomLine(n, q)),
        1 => (0usize..4).prop_map(Op::RemoveBomLine),
    ]
}

fn actions(authors: usize) -> impl Strategy<Value = Vec<Action>> {
    let action = prop_oneof![
        4 => (0..authors, op()).prop_map(|(author, op)| Action::Edit { author, op }),
        1 => (0..authors, 0..authors).prop_map(|(from, to)| Action::Sync { from, to }),
    ];
    proptest::collection::vec(action, 1..30)
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
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn key(n: usize) -> DeviceKey {
    DeviceKey::from_secret([n as u8 + 1; 32])
}

fn commons_of(creator: &DeviceKey) -> CommonsId {
    CommonsGenesis {
        name: "Farm Hack".into(),
        description: "open farm tools".into(),
        creator: creator.author(),
        created_at: 1_700_000_000,
        nonce: [7; 16],
    }
    .sign(creator)
    .body
    .id()
}

/// The design's genesis (by author 0) and its first change (the skeleton).
fn founding(creator: &DeviceKey) -> (Signed<DocGenesis>, ChangeEnvelope) {
    let genesis = DocGenesis {
        commons: commons_of(creator),
        kind: DocKind::Design,
        creator: creator.author(),
        created_at: 1_700_000_000,
        nonce: [9; 16],
        fork: None,
    }
    .sign(creator);
    let mut replica = DocReplica::new(genesis.clone()).expect("genesis verifies");
    let (_, made) = replica
        .edit(creator, 1_700_000_000, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Roller crimper"))
        })
        .expect("skeleton");
    let (envelope, _) = made.expect("the skeleton is a change");
    (genesis, envelope)
}

fn hash_of(envelope: &ChangeEnvelope) -> ChangeHash {
    envelope
        .verify()
        .expect("our own envelopes verify")
        .change
        .hash()
}

fn deps_of(envelope: &ChangeEnvelope) -> Vec<ChangeHash> {
    envelope
        .verify()
        .expect("our own envelopes verify")
        .change
        .deps()
        .to_vec()
}

fn list_len(replica: &DocReplica, field: &str) -> usize {
    schema::render(replica.doc(), DocKind::Design, None)[field]
        .as_array()
        .map_or(0, Vec::len)
}

/// A 1-based position in a list of `len` items chosen by `n`; `None` when the list is empty.
fn position(n: usize, len: usize) -> Option<usize> {
    (len > 0).then(|| 1 + n % len)
}

/// Turns an op into an edit against the replica's current state (`None`: nothing sensible to do).
fn resolve(op: &Op, replica: &DocReplica) -> Option<Edit> {
    let steps = list_len(replica, "steps");
    Some(match op {
        Op::SetName(name) => Edit::Set {
            field: "name".into(),
            value: format!("Crimper {name}"),
        },
        Op::SetStage(i) => Edit::Set {
            field: "stage".into(),
            value: design::STAGES[*i].into(),
        },
        Op::AddStep(text, at) => Edit::AddStep {
            text: text.clone(),
            at: at.map(|a| 1 + a % (steps + 1)),
        },
        Op::EditStep(n, text) => Edit::EditStep {
            step: position(*n, steps)?,
            text: text.clone(),
        },
        Op::RemoveStep(n) => Edit::RemoveStep {
            step: position(*n, steps)?,
        },
        Op::MoveStep(from, to) => Edit::MoveStep {
            from: position(*from, steps)?,
            to: position(*to, steps)?,
        },
        Op::AddTag(tag) => Edit::AddItem {
            field: "tags".into(),
            item: tag.clone(),
        },
        Op::RemoveTag(n) => {
            let rendered = schema::render(replica.doc(), DocKind::Design, None);
            let tags = rendered["tags"].as_array()?;
            let tag = tags.get(n % tags.len().max(1))?.as_str()?;
            Edit::RemoveItem {
                field: "tags".into(),
                item: tag.into(),
            }
        }
        Op::ReplaceSummary(text) => Edit::ReplaceText {
            field: "summary".into(),
            text: text.clone(),
        },
        Op::AppendSummary(text) => Edit::AppendText {
            field: "summary".into(),
            text: text.clone(),
        },
        Op::AddBomLine(name, quantity) => Edit::AddBomLine {
            line: BomLine {
                name: format!("tube {name}"),
                quantity: quantity.map(f64::from),
                unit: quantity.map(|_| "pcs".into()),
                ..BomLine::default()
            },
        },
        Op::RemoveBomLine(n) => Edit::RemoveBomLine {
            position: position(*n, list_len(replica, "bom"))?,
        },
    })
}

/// The outcome of a scenario's edit phase.
struct Played {
    keys: Vec<DeviceKey>,
    genesis: Signed<DocGenesis>,
    replicas: Vec<DocReplica>,
    /// Every envelope made, in the order made (a causal order).
    envelopes: Vec<ChangeEnvelope>,
}

/// Runs the edit phase: founding, then every action.
fn play(authors: usize, actions: &[Action]) -> Result<Played, TestCaseError> {
    let keys: Vec<DeviceKey> = (0..authors).map(key).collect();
    let (genesis, first) = founding(&keys[0]);
    let mut replicas = Vec::new();
    // What each replica holds, in the order it got it, for mid-way syncs.
    let mut held: Vec<Vec<ChangeEnvelope>> = Vec::new();
    for _ in 0..authors {
        let mut replica = DocReplica::new(genesis.clone()).expect("genesis verifies");
        let outcome = replica.ingest_envelope(&first).expect("first change");
        prop_assert!(matches!(outcome, IngestOutcome::Applied(ref a) if a.len() == 1));
        replicas.push(replica);
        held.push(vec![first.clone()]);
    }
    let mut envelopes = vec![first];
    for (i, action) in actions.iter().enumerate() {
        let now = 1_700_000_100 + i as i64;
        match action {
            Action::Edit { author, op } => {
                let replica = &mut replicas[*author];
                let Some(edit) = resolve(op, replica) else {
                    continue;
                };
                let ctx = EditContext {
                    author: keys[*author].author().to_string(),
                    now_unix: now,
                };
                let before = replica.heads();
                match replica.edit(&keys[*author], now, |tx| {
                    schema::apply_edit(tx, DocKind::Design, &edit, &ctx)
                }) {
                    Ok((_, Some((envelope, accepted)))) => {
                        prop_assert_eq!(accepted.hash, hash_of(&envelope));
                        prop_assert_eq!(replica.heads(), vec![accepted.hash]);
                        held[*author].push(envelope.clone());
                        envelopes.push(envelope);
                    }
                    Ok((_, None)) => prop_assert_eq!(replica.heads(), before),
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
                for envelope in held[*from].clone() {
                    let outcome = replicas[*to]
                        .ingest_envelope(&envelope)
                        .map_err(|e| TestCaseError::fail(format!("mid-way sync refused: {e}")))?;
                    if !matches!(outcome, IngestOutcome::Duplicate) {
                        held[*to].push(envelope);
                    }
                }
                prop_assert_eq!(replicas[*to].pending_count(), 0);
            }
        }
    }
    Ok(Played {
        keys,
        genesis,
        replicas,
        envelopes,
    })
}

/// Delivers `envelopes` to `replica` in a shuffled order with duplicates, checking each outcome
/// against what the replica holds: duplicates are recognised, an envelope whose dependencies
/// have not arrived is held, and it is applied as soon as they have.
fn deliver_shuffled(
    replica: &mut DocReplica,
    envelopes: &[ChangeEnvelope],
    rng: &mut SplitMix,
) -> Result<usize, TestCaseError> {
    let mut order: Vec<&ChangeEnvelope> = envelopes.iter().collect();
    for _ in 0..rng.below(envelopes.len() / 2 + 2) {
        order.push(&envelopes[rng.below(envelopes.len())]);
    }
    rng.shuffle(&mut order);
    let mut held_back: HashSet<ChangeHash> = HashSet::new();
    let mut pending_seen = 0;
    for envelope in order {
        let hash = hash_of(envelope);
        let known = replica.record(&hash).is_some() || held_back.contains(&hash);
        let deps_missing = deps_of(envelope)
            .iter()
            .any(|d| replica.record(d).is_none());
        let outcome = replica
            .ingest_envelope(envelope)
            .map_err(|e| TestCaseError::fail(format!("honest envelope refused: {e}")))?;
        match outcome {
            IngestOutcome::Duplicate => prop_assert!(known, "fresh envelope called a duplicate"),
            IngestOutcome::Pending => {
                prop_assert!(!known && deps_missing, "held although it could apply");
                held_back.insert(hash);
                pending_seen += 1;
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
                        "applied a change that was never held"
                    );
                }
            }
        }
        prop_assert_eq!(replica.pending_count(), held_back.len());
        for waiting in &held_back {
            prop_assert!(replica.record(waiting).is_none());
        }
    }
    prop_assert_eq!(
        replica.pending_count(),
        0,
        "everything arrived, nothing may wait"
    );
    Ok(pending_seen)
}

fn sorted_heads(replica: &DocReplica) -> Vec<ChangeHash> {
    let mut heads = replica.heads();
    heads.sort();
    heads
}

fn assert_same_state(a: &DocReplica, b: &DocReplica, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(sorted_heads(a), sorted_heads(b), "{}: heads differ", what);
    prop_assert_eq!(
        schema::render(a.doc(), DocKind::Design, None),
        schema::render(b.doc(), DocKind::Design, None),
        "{}: rendered design differs",
        what
    );
    prop_assert_eq!(a.change_count(), b.change_count(), "{}", what);
    Ok(())
}

/// A proof over `hash`'s bytes made by `signer`, who is not the change's author.
fn resigned(
    replica: &DocReplica,
    hash: &ChangeHash,
    proof: &ChangeProof,
    signer: &DeviceKey,
) -> ChangeProof {
    let bytes = replica
        .doc()
        .get_change_by_hash(hash)
        .expect("bundled change is held")
        .raw_bytes()
        .to_vec();
    let author = signer.author();
    ChangeProof {
        doc: proof.doc,
        author,
        signature: signer.sign(&signing_digest(
            &replica.commons(),
            &proof.doc,
            &author,
            &bytes,
        )),
    }
}

/// Cases per property when `PROPTEST_CASES` is not set: fast enough for every CI run.
const DEFAULT_CASES: u32 = 32;

/// Proptest's configuration: `PROPTEST_CASES` wins (a long run sets thousands), failures
/// persist in `protocol/proptest-regressions/` and are replayed first on every run.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/convergence.txt",
        ))),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    /// Every replica, and a fresh one, converges whatever the delivery order.
    #[test]
    fn envelopes_in_any_order_converge((authors, actions, seed) in scenario()) {
        let Played { genesis, mut replicas, envelopes, .. } = play(authors, &actions)?;
        let mut rng = SplitMix(seed);
        replicas.push(DocReplica::new(genesis).expect("genesis verifies"));
        for replica in &mut replicas {
            deliver_shuffled(replica, &envelopes, &mut rng)?;
            prop_assert_eq!(replica.change_count(), envelopes.len());
        }
        for (i, replica) in replicas.iter().enumerate().skip(1) {
            assert_same_state(&replicas[0], replica, &format!("replica {i}"))?;
        }
        schema::validate_document(replicas[0].doc(), DocKind::Design)
            .map_err(|e| TestCaseError::fail(format!("merged design invalid: {e}")))?;
    }

    /// A bundle of what a peer lacks, with its covering proofs, brings it to the same state;
    /// a bundle with proofs removed or re-signed by another key is refused whole.
    #[test]
    fn bundles_converge_and_need_their_authors_proofs((authors, actions, seed) in scenario()) {
        let Played { keys, genesis, mut replicas, envelopes } = play(authors, &actions)?;
        let mut rng = SplitMix(seed);
        let source = &mut replicas[0];
        for envelope in &envelopes {
            source.ingest_envelope(envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let source = &replicas[0];

        // From nothing.
        let everything = source.missing_for(&BTreeMap::new());
        prop_assert_eq!(everything.len(), envelopes.len());
        let (bundle, proofs) = source.compact_for(&everything).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let signers: HashSet<_> = proofs.iter().map(|(_, p)| p.author).collect();
        prop_assert_eq!(proofs.len(), signers.len(), "one proof per author");
        let mut fresh = DocReplica::new(genesis.clone()).expect("genesis verifies");
        let accepted = fresh.ingest_compact(&bundle, proofs.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(accepted.len(), envelopes.len());
        assert_same_state(source, &fresh, "bundle from nothing")?;
        for hash in &everything {
            let record = fresh.record(hash).expect("every change recorded");
            prop_assert_eq!(record.author, source.record(hash).expect("held").author);
        }
        // The same bundle again changes nothing.
        prop_assert!(fresh.ingest_compact(&bundle, proofs.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?.is_empty());

        // From part of the history: only what the peer's clock lacks is sent.
        let known = rng.below(envelopes.len() + 1);
        let mut partial = DocReplica::new(genesis.clone()).expect("genesis verifies");
        for envelope in &envelopes[..known] {
            partial.ingest_envelope(envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let lacking = source.missing_for(&partial.clock());
        prop_assert_eq!(lacking.len(), envelopes.len() - known);
        if !lacking.is_empty() {
            let (bundle, proofs) = source.compact_for(&lacking).map_err(|e| TestCaseError::fail(e.to_string()))?;
            partial.ingest_compact(&bundle, proofs).map_err(|e| TestCaseError::fail(format!("partial bundle refused: {e}")))?;
        }
        assert_same_state(source, &partial, "bundle after partial history")?;

        // Relayed: `fresh` got everything as one bundle, so it holds only one signature per
        // author; it must still be able to serve a third node that has part of the history.
        let relay_known = rng.below(envelopes.len() + 1);
        let mut third = DocReplica::new(genesis.clone()).expect("genesis verifies");
        for envelope in &envelopes[..relay_known] {
            third.ingest_envelope(envelope).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let relayed = fresh.missing_for(&third.clock());
        if !relayed.is_empty() {
            let (bundle, proofs) = fresh.compact_for(&relayed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            third.ingest_compact(&bundle, proofs).map_err(|e| TestCaseError::fail(format!("relayed bundle refused: {e}")))?;
        }
        assert_same_state(source, &third, "bundle relayed by a node that got a bundle")?;

        // Tampered proofs: nothing of the bundle may be applied.
        let victim = rng.below(proofs.len());
        let (victim_hash, victim_proof) = proofs[victim].clone();
        let outsider = DeviceKey::from_secret([200; 32]);
        let co_author = &keys[(keys.iter().position(|k| k.author() == victim_proof.author).unwrap_or(0) + 1) % keys.len()];
        let mut cases: Vec<(&str, Vec<(ChangeHash, ChangeProof)>)> = vec![("no proofs", Vec::new())];
        let mut one_removed = proofs.clone();
        one_removed.remove(victim);
        cases.push(("one author's proof removed", one_removed));
        for (name, signer) in [("re-signed by an outsider", &outsider), ("re-signed by a co-author", co_author)] {
            let mut forged = proofs.clone();
            forged[victim].1 = resigned(source, &victim_hash, &victim_proof, signer);
            cases.push((name, forged));
        }
        let mut claimed = proofs.clone();
        claimed[victim].1.author = outsider.author();
        cases.push(("signature claimed by another author", claimed));
        for (name, tampered) in cases {
            let mut target = DocReplica::new(genesis.clone()).expect("genesis verifies");
            let result = target.ingest_compact(&bundle, tampered);
            match name {
                "no proofs" | "one author's proof removed" => prop_assert!(
                    matches!(result, Err(Rejection::Uncovered { .. })),
                    "{}: {:?}", name, result.map(|a| a.len())
                ),
                "signature claimed by another author" => prop_assert!(
                    matches!(result, Err(Rejection::Envelope(EnvelopeError::Signature(SignatureError::Mismatch(_))))),
                    "{}: {:?}", name, result.map(|a| a.len())
                ),
                _ => prop_assert!(
                    matches!(result, Err(Rejection::Envelope(EnvelopeError::ActorMismatch { .. }))),
                    "{}: {:?}", name, result.map(|a| a.len())
                ),
            }
            prop_assert_eq!(target.change_count(), 0, "{}: a refused bundle applies nothing", name);
            prop_assert!(target.heads().is_empty(), "{}", name);
        }

        // A bundle that lacks its first changes cannot be applied to an empty replica.
        if lacking.len() < envelopes.len() && !lacking.is_empty() {
            let (bundle, proofs) = source.compact_for(&lacking).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut empty = DocReplica::new(genesis).expect("genesis verifies");
            prop_assert!(
                matches!(empty.ingest_compact(&bundle, proofs), Err(Rejection::MissingDependencies { .. })),
                "a bundle with missing dependencies must be refused"
            );
            prop_assert_eq!(empty.change_count(), 0);
        }
    }
}

/// The reverse of creation order holds every change but the first, then applies them all at once.
#[test]
fn reverse_order_holds_everything_until_the_first_change() {
    let actions: Vec<Action> = (0..12)
        .map(|i| Action::Edit {
            author: i % 3,
            op: Op::AddStep(format!("step {i}"), None),
        })
        .chain([
            Action::Sync { from: 1, to: 0 },
            Action::Edit {
                author: 0,
                op: Op::EditStep(0, "merged".into()),
            },
        ])
        .collect();
    let Played {
        genesis,
        replicas,
        envelopes,
        ..
    } = play(3, &actions).expect("edit phase");
    let mut fresh = DocReplica::new(genesis).expect("genesis verifies");
    for envelope in envelopes[1..].iter().rev() {
        assert!(matches!(
            fresh.ingest_envelope(envelope),
            Ok(IngestOutcome::Pending)
        ));
    }
    assert_eq!(fresh.pending_count(), envelopes.len() - 1);
    assert_eq!(fresh.change_count(), 0);
    match fresh.ingest_envelope(&envelopes[0]) {
        Ok(IngestOutcome::Applied(accepted)) => assert_eq!(accepted.len(), envelopes.len()),
        other => panic!("the first change should unblock everything: {other:?}"),
    }
    assert_eq!(fresh.pending_count(), 0);
    let mut merged = DocReplica::new(replicas[0].genesis().clone()).expect("genesis verifies");
    for envelope in &envelopes {
        merged
            .ingest_envelope(envelope)
            .expect("causal order applies");
    }
    assert_eq!(sorted_heads(&fresh), sorted_heads(&merged));
    assert_eq!(
        schema::render(fresh.doc(), DocKind::Design, None),
        schema::render(merged.doc(), DocKind::Design, None)
    );
}
