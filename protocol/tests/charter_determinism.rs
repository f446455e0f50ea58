//! Charter evaluation is the same on every node, whatever order operations arrive in.
//!
//! Three to six persons (the first founds the commons), each with a person key and a second
//! device key, write a random history of charter operations: each writer's view is what they
//! have synced so far, and each operation depends on a random subset of the heads of that view,
//! so histories branch and merge. Operations are often unauthorised (writers are picked at
//! random), invitations expire, devices are certified, captured and revoked, and stewards remove
//! each other concurrently. Then five replicas receive every operation in a random order with
//! duplicates; a replica holds an operation until its dependencies are stored (as automerge
//! does), runs the gate on it (and a `Gatekeeper`, which must agree) and stores it only if the
//! gate passes. Every replica must store the
//! same operations, reach the same gate verdicts, evaluate the same charter state (members,
//! roles, devices, revocations, hides, blocks, log) and admit the same content changes; a
//! stewarded charter never has zero stewards at any point of any replica's ingest.
//!
//! Cases: `PROPTEST_CASES` (default [`DEFAULT_CASES`]). The generator counts the situations that
//! matter and the test asserts that, across the cases, each one occurred.

use hedgerow_protocol::charter::{
    gate, ChangeFacts, CharterAction, CharterOp, CharterScope, CharterState, DeviceCertificate,
    Frontier, Gatekeeper, IgnoreReason, Invitation, OpRecord, Outcome, Refusal, Role,
};
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::{AuthorKey, CommonsId, DeviceKey, DocId, Signed};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Cases when `PROPTEST_CASES` is not set: fast enough for every CI run.
const DEFAULT_CASES: u32 = 32;
/// Replicas that each receive every operation.
const REPLICAS: usize = 5;
const COMMONS: CommonsId = CommonsId([42; 32]);

/// A small deterministic generator (the case's seed comes from proptest).
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
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        out
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Situations the generator must produce across the cases.
static UNAUTHORISED: AtomicUsize = AtomicUsize::new(0);
static EXPIRED: AtomicUsize = AtomicUsize::new(0);
static MUTUAL_REMOVALS: AtomicUsize = AtomicUsize::new(0);
static REVOKED: AtomicUsize = AtomicUsize::new(0);
static REFUSED_CONTENT: AtomicUsize = AtomicUsize::new(0);
static ADMITTED_CONTENT: AtomicUsize = AtomicUsize::new(0);
static LAST_STEWARD: AtomicUsize = AtomicUsize::new(0);
static ONE_SURVIVOR: AtomicUsize = AtomicUsize::new(0);
static IGNORED_IN_REPLAY: AtomicUsize = AtomicUsize::new(0);
static BEYOND_FRONTIER: AtomicUsize = AtomicUsize::new(0);
static DEVICE_REVOKED: AtomicUsize = AtomicUsize::new(0);

/// One person: their person key and a second device.
struct Person {
    key: DeviceKey,
    device: DeviceKey,
}

impl Person {
    fn device(&self, which: usize) -> &DeviceKey {
        if which == 0 {
            &self.key
        } else {
            &self.device
        }
    }
}

/// A generated history: every operation written, with each writer's view.
struct History {
    persons: Vec<Person>,
    records: Vec<OpRecord>,
    by_hash: HashMap<[u8; 32], usize>,
    views: Vec<BTreeSet<[u8; 32]>>,
    invitations: Vec<Signed<Invitation>>,
    /// Pairs of concurrent operations by two stewards removing each other.
    mutual: Vec<([u8; 32], [u8; 32])>,
    scope: CharterScope,
}

impl History {
    fn heads(&self, view: &BTreeSet<[u8; 32]>) -> Vec<[u8; 32]> {
        let referenced: HashSet<[u8; 32]> = view
            .iter()
            .flat_map(|h| self.records[self.by_hash[h]].deps.clone())
            .collect();
        view.iter()
            .filter(|h| !referenced.contains(*h))
            .copied()
            .collect()
    }

    fn view_state(&self, person: usize) -> CharterState {
        let records: Vec<OpRecord> = self.views[person]
            .iter()
            .map(|h| self.records[self.by_hash[h]].clone())
            .collect();
        CharterState::evaluate(self.scope, &records)
    }

    /// Writes `action` as `person`'s device `which`, depending on a random subset of their heads.
    fn write(
        &mut self,
        rng: &mut SplitMix,
        person: usize,
        which: usize,
        action: CharterAction,
    ) -> [u8; 32] {
        let heads = self.heads(&self.views[person]);
        let mut deps: Vec<[u8; 32]> = heads.iter().filter(|_| rng.chance(70)).copied().collect();
        if deps.is_empty() && !heads.is_empty() {
            deps.push(*rng.pick(&heads));
        }
        self.write_with_deps(rng, person, which, deps, action)
    }

    fn write_with_deps(
        &mut self,
        rng: &mut SplitMix,
        person: usize,
        which: usize,
        deps: Vec<[u8; 32]>,
        action: CharterAction,
    ) -> [u8; 32] {
        let hash = rng.bytes::<32>();
        let record = OpRecord {
            hash,
            deps,
            author: self.persons[person].device(which).author(),
            op: CharterOp {
                commons: COMMONS,
                at: rng.below(10) as i64,
                action,
            },
        };
        // The writer's node gates its own operation like any other: a refused one is still sent
        // (a rogue node may), but no honest node builds on it.
        let view: Vec<OpRecord> = self.views[person]
            .iter()
            .map(|h| self.records[self.by_hash[h]].clone())
            .collect();
        let passes = gate(&record, &view, self.scope).is_ok();
        self.by_hash.insert(hash, self.records.len());
        self.records.push(record);
        if passes {
            self.views[person].insert(hash);
        }
        hash
    }

    fn sync(&mut self, to: usize, from: usize) {
        let seen = self.views[from].clone();
        self.views[to].extend(seen);
    }
}

/// The automerge actors a device writes content as (two per device) in this test.
fn actor(device: &AuthorKey, n: usize) -> Vec<u8> {
    let mut actor = device.as_bytes()[..8].to_vec();
    actor.push(n as u8);
    actor
}

fn random_frontier(rng: &mut SplitMix, devices: &[AuthorKey]) -> Frontier {
    let mut entries = Vec::new();
    for device in devices {
        for n in 0..2 {
            if rng.chance(60) {
                entries.push((actor(device, n), rng.below(6) as u64));
            }
        }
    }
    Frontier(entries)
}

fn random_role(rng: &mut SplitMix) -> Role {
    *rng.pick(&Role::ALL)
}

/// Generates one case's history of charter operations.
fn generate(rng: &mut SplitMix) -> History {
    let count = 3 + rng.below(4);
    let persons: Vec<Person> = (0..count)
        .map(|_| Person {
            key: DeviceKey::from_secret(rng.bytes()),
            device: DeviceKey::from_secret(rng.bytes()),
        })
        .collect();
    let scope = CharterScope {
        commons: COMMONS,
        creator: persons[0].key.author(),
    };
    let mut history = History {
        views: vec![BTreeSet::new(); count],
        persons,
        records: Vec::new(),
        by_hash: HashMap::new(),
        invitations: Vec::new(),
        mutual: Vec::new(),
        scope,
    };
    let docs = [DocId([1; 32]), DocId([2; 32]), DocId([3; 32])];
    if rng.chance(90) {
        let private = rng.chance(50);
        history.write(rng, 0, 0, CharterAction::Found { private });
    }
    let steps = 20 + rng.below(30);
    for _ in 0..steps {
        let roll = rng.below(100);
        if roll < 25 {
            let (to, from) = (rng.below(count), rng.below(count));
            history.sync(to, from);
            continue;
        }
        if roll < 33 {
            mutual_removal(&mut history, rng);
            continue;
        }
        if roll < 38 {
            step_down(&mut history, rng);
            continue;
        }
        // Half the writes come from someone who is a Steward in their own view, if any.
        let stewards: Vec<usize> = (0..count)
            .filter(|p| {
                history
                    .view_state(*p)
                    .role_of(history.persons[*p].key.author())
                    == Some(Role::Steward)
            })
            .collect();
        let person = if !stewards.is_empty() && rng.chance(50) {
            *rng.pick(&stewards)
        } else {
            rng.below(count)
        };
        let which = rng.below(2);
        // Often the writer themselves: self-removal is how the last steward gets protected.
        let target = if rng.chance(25) {
            person
        } else {
            rng.below(count)
        };
        let target_key = history.persons[target].key.author();
        let target_devices = [target_key, history.persons[target].device.author()];
        let action = match rng.below(14) {
            0 | 1 => CharterAction::Add {
                person: target_key,
                role: if rng.chance(50) {
                    Role::Member
                } else {
                    random_role(rng)
                },
            },
            2 => CharterAction::SetRole {
                person: target_key,
                role: random_role(rng),
                frontier: random_frontier(rng, &target_devices),
            },
            3 => CharterAction::Remove {
                person: target_key,
                frontier: random_frontier(rng, &target_devices),
            },
            4 => {
                let issuer = history.persons[person].device(which);
                let invitation = Invitation {
                    commons: COMMONS,
                    issuer: issuer.author(),
                    role: random_role(rng),
                    uses: 1 + rng.below(2) as u32,
                    expires_at: rng.below(10) as i64,
                    nonce: rng.bytes(),
                }
                .sign(issuer);
                history.invitations.push(invitation.clone());
                if rng.chance(50) {
                    continue;
                }
                // Redeemed at once by someone else, as `commons accept` would.
                CharterAction::Redeem { invitation }
            }
            5 | 6 if !history.invitations.is_empty() => {
                let mut invitation = rng.pick(&history.invitations).clone();
                if rng.chance(10) {
                    invitation.body.role = Role::Steward;
                }
                CharterAction::Redeem { invitation }
            }
            7 => CharterAction::Hide {
                doc: *rng.pick(&docs),
                reason: "off topic".into(),
            },
            8 => CharterAction::Unhide {
                doc: *rng.pick(&docs),
            },
            9 => CharterAction::Block {
                person: target_key,
                frontier: random_frontier(rng, &target_devices),
            },
            10 => CharterAction::Unblock { person: target_key },
            11 => {
                // Usually a person certifying their own second device, sometimes a capture attempt.
                let owner = if rng.chance(80) { person } else { target };
                let certificate = DeviceCertificate {
                    person: history.persons[person].key.author(),
                    device: history.persons[owner].device.author(),
                    name: "device".into(),
                    issued_at: 0,
                }
                .sign(&history.persons[person].key);
                let which = if owner == person { rng.below(2) } else { 0 };
                history.write(rng, person, which, CharterAction::Device { certificate });
                continue;
            }
            12 => {
                let owner = if rng.chance(80) { person } else { target };
                let device = history.persons[owner].device.author();
                CharterAction::RevokeDevice {
                    device,
                    frontier: random_frontier(rng, &[device]),
                }
            }
            _ => CharterAction::Retract {
                doc: *rng.pick(&docs),
            },
        };
        // A redemption is written by the invitee, anyone else by the chosen writer.
        let (person, which) = if matches!(action, CharterAction::Redeem { .. }) && rng.chance(50) {
            (target, rng.below(2))
        } else {
            (person, which)
        };
        history.write(rng, person, which, action);
    }
    history
}

/// Two persons who are both Stewards in a shared view remove each other before syncing again.
fn mutual_removal(history: &mut History, rng: &mut SplitMix) {
    let count = history.persons.len();
    let (a, b) = (rng.below(count), rng.below(count));
    if a == b {
        return;
    }
    history.sync(b, a);
    history.sync(a, b);
    let state = history.view_state(a);
    let (ka, kb) = (
        history.persons[a].key.author(),
        history.persons[b].key.author(),
    );
    if state.role_of(ka) != Some(Role::Steward) {
        return;
    }
    if state.role_of(kb) != Some(Role::Steward) {
        // Promote b first, and let b see it.
        history.write(
            rng,
            a,
            0,
            CharterAction::Add {
                person: kb,
                role: Role::Steward,
            },
        );
        history.sync(b, a);
    }
    let heads = history.heads(&history.views[a]);
    let remove = |person: AuthorKey, rng: &mut SplitMix| CharterAction::Remove {
        person,
        frontier: random_frontier(rng, &[person]),
    };
    let action_a = remove(kb, rng);
    let action_b = remove(ka, rng);
    let ha = history.write_with_deps(rng, a, 0, heads.clone(), action_a);
    let hb = history.write_with_deps(rng, b, 0, heads, action_b);
    history.mutual.push((ha, hb));
    MUTUAL_REMOVALS.fetch_add(1, Relaxed);
}

/// A steward (often the only one) tries to remove or demote themselves.
fn step_down(history: &mut History, rng: &mut SplitMix) {
    let person = rng.below(history.persons.len());
    let key = history.persons[person].key.author();
    if history.view_state(person).role_of(key) != Some(Role::Steward) {
        return;
    }
    let frontier = random_frontier(rng, &[key]);
    let action = if rng.chance(50) {
        CharterAction::Remove {
            person: key,
            frontier,
        }
    } else {
        CharterAction::SetRole {
            person: key,
            role: Role::Member,
            frontier,
        }
    };
    history.write(rng, person, 0, action);
}

/// Random content changes by persons' devices and a stranger.
fn content_facts(rng: &mut SplitMix, history: &History) -> Vec<ChangeFacts> {
    let stranger = DeviceKey::from_secret(rng.bytes()).author();
    let mut devices: Vec<AuthorKey> = history
        .persons
        .iter()
        .flat_map(|p| [p.key.author(), p.device.author()])
        .collect();
    devices.push(stranger);
    let persons: Vec<AuthorKey> = history.persons.iter().map(|p| p.key.author()).collect();
    (0..40)
        .map(|_| {
            let device = *rng.pick(&devices);
            ChangeFacts {
                device,
                actor: actor(&device, rng.below(2)),
                seq: 1 + rng.below(6) as u64,
                doc_kind: *rng.pick(&[
                    DocKind::Design,
                    DocKind::Event,
                    DocKind::Note,
                    DocKind::Profile,
                ]),
                doc_creator_person: *rng.pick(&persons),
                creates_doc: rng.chance(30),
            }
        })
        .collect()
}

/// What one replica ends with.
#[derive(Debug, PartialEq)]
struct Replica {
    stored: BTreeSet<[u8; 32]>,
    verdicts: BTreeMap<[u8; 32], Result<(), Refusal>>,
    state: CharterState,
    admitted: Vec<Result<(), Refusal>>,
}

/// Delivers every record (shuffled, some twice) to a fresh replica that holds records until their
/// deps are stored and gates each one when it can.
fn replicate(
    rng: &mut SplitMix,
    history: &History,
    facts: &[ChangeFacts],
    check_every_step: bool,
) -> Result<Replica, TestCaseError> {
    let mut delivery: Vec<&OpRecord> = history.records.iter().collect();
    for record in &history.records {
        if rng.chance(30) {
            delivery.push(record);
        }
    }
    for i in (1..delivery.len()).rev() {
        delivery.swap(i, rng.below(i + 1));
    }
    let mut store: Vec<OpRecord> = Vec::new();
    let mut stored: BTreeSet<[u8; 32]> = BTreeSet::new();
    let mut verdicts = BTreeMap::new();
    let mut held: Vec<&OpRecord> = Vec::new();
    let mut keeper = Gatekeeper::new(history.scope);
    for record in delivery {
        if verdicts.contains_key(&record.hash) {
            continue;
        }
        held.push(record);
        // Take in every held record whose deps are now stored, until nothing moves.
        while let Some(i) = held.iter().position(|r| {
            !verdicts.contains_key(&r.hash) && r.deps.iter().all(|d| stored.contains(d))
        }) {
            let record = held.swap_remove(i);
            let verdict = gate(record, &store, history.scope);
            proptest::prop_assert_eq!(
                &keeper.gate(record, &store),
                &verdict,
                "the gatekeeper disagrees with the gate"
            );
            if verdict.is_ok() {
                store.push(record.clone());
                stored.insert(record.hash);
                if check_every_step {
                    let state = CharterState::evaluate(history.scope, &store);
                    if state.is_stewarded() {
                        proptest::prop_assert!(state.steward_count() > 0, "no steward left");
                    }
                    let stewards = state
                        .members()
                        .iter()
                        .filter(|(_, r)| *r == Role::Steward)
                        .count();
                    proptest::prop_assert_eq!(stewards, state.steward_count());
                }
            }
            verdicts.insert(record.hash, verdict);
        }
        held.retain(|r| !verdicts.contains_key(&r.hash));
    }
    let state = CharterState::evaluate(history.scope, &store);
    if state.is_stewarded() {
        proptest::prop_assert!(state.steward_count() > 0, "no steward left");
    }
    let admitted = facts.iter().map(|f| state.admit(f)).collect();
    Ok(Replica {
        stored,
        verdicts,
        state,
        admitted,
    })
}

fn run_case(seed: u64) -> Result<(), TestCaseError> {
    let mut rng = SplitMix(seed);
    let history = generate(&mut rng);
    let facts = content_facts(&mut rng, &history);
    let first = replicate(&mut rng, &history, &facts, true)?;
    for i in 1..REPLICAS {
        let other = replicate(&mut rng, &history, &facts, false)?;
        proptest::prop_assert_eq!(
            &first.stored,
            &other.stored,
            "replica {} stores other ops",
            i
        );
        proptest::prop_assert_eq!(
            &first.verdicts,
            &other.verdicts,
            "replica {} gates differently",
            i
        );
        proptest::prop_assert_eq!(&first.state.members(), &other.state.members());
        proptest::prop_assert_eq!(first.state.hidden(), other.state.hidden());
        proptest::prop_assert_eq!(first.state.blocked(), other.state.blocked());
        proptest::prop_assert_eq!(first.state.revoked(), other.state.revoked());
        proptest::prop_assert_eq!(first.state.log(), other.state.log());
        proptest::prop_assert_eq!(&first.state, &other.state);
        proptest::prop_assert_eq!(
            &first.admitted,
            &other.admitted,
            "replica {} admits differently",
            i
        );
    }
    // The stored set is what the gate let in, and every stored record passed the gate.
    for (hash, verdict) in &first.verdicts {
        proptest::prop_assert_eq!(verdict.is_ok(), first.stored.contains(hash));
    }
    for verdict in first.verdicts.values() {
        match verdict {
            Err(Refusal::CharterUnauthorised { .. }) => {
                UNAUTHORISED.fetch_add(1, Relaxed);
            }
            Err(Refusal::InvitationExpired) => {
                EXPIRED.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }
    for entry in first.state.log() {
        match entry.outcome {
            Outcome::Ignored(IgnoreReason::NotASteward | IgnoreReason::NotAMember) => {
                UNAUTHORISED.fetch_add(1, Relaxed);
            }
            Outcome::Ignored(IgnoreReason::InvitationExpired) => {
                EXPIRED.fetch_add(1, Relaxed);
            }
            Outcome::Ignored(IgnoreReason::LastSteward) => {
                LAST_STEWARD.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }
    REVOKED.fetch_add(first.state.revoked().len(), Relaxed);
    let outcome = |hash: &[u8; 32]| {
        first
            .state
            .log()
            .iter()
            .find(|e| e.hash == *hash)
            .map(|e| e.outcome)
    };
    for (ha, hb) in &history.mutual {
        let applied = [ha, hb]
            .iter()
            .filter(|h| outcome(h) == Some(Outcome::Applied))
            .count();
        if applied == 1 {
            ONE_SURVIVOR.fetch_add(1, Relaxed);
        }
    }
    IGNORED_IN_REPLAY.fetch_add(first.state.ignored().len(), Relaxed);
    for result in &first.admitted {
        match result {
            Err(Refusal::BeyondFrontier) => BEYOND_FRONTIER.fetch_add(1, Relaxed),
            Err(Refusal::DeviceRevoked) => DEVICE_REVOKED.fetch_add(1, Relaxed),
            _ => 0,
        };
        let counter = if result.is_ok() {
            &ADMITTED_CONTENT
        } else {
            &REFUSED_CONTENT
        };
        counter.fetch_add(1, Relaxed);
    }
    Ok(())
}

#[test]
fn every_replica_evaluates_the_same_charter() {
    let mut config = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/charter_determinism.txt",
        ))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    // A short run (PROPTEST_CASES=1 while debugging) may not meet every situation.
    let enough_cases = config.cases >= DEFAULT_CASES / 2;
    let mut runner = TestRunner::new(config);
    if let Err(failure) = runner.run(&proptest::num::u64::ANY, run_case) {
        panic!("{failure}");
    }
    let counts = [
        ("unauthorised operations", &UNAUTHORISED),
        ("expired invitations", &EXPIRED),
        ("concurrent mutual removals", &MUTUAL_REMOVALS),
        ("revoked devices", &REVOKED),
        ("refused content changes", &REFUSED_CONTENT),
        ("admitted content changes", &ADMITTED_CONTENT),
        ("last-steward protections", &LAST_STEWARD),
        ("mutual removals with one survivor", &ONE_SURVIVOR),
        (
            "gate-passing operations ignored by the replay",
            &IGNORED_IN_REPLAY,
        ),
        ("content changes beyond a frontier", &BEYOND_FRONTIER),
        ("content changes by revoked devices", &DEVICE_REVOKED),
    ];
    for (what, count) in counts {
        let count = count.load(Relaxed);
        eprintln!("{what}: {count}");
        assert!(
            count > 0 || !enough_cases,
            "the generator produced no {what}"
        );
    }
}
