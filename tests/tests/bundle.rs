//! Sneakernet bundles end to end: the real binary exports signed changes from
//! one node to a file, and another node with no link imports them.
//!
//! ```text
//!   A (barn laptop) --bundle--> USB stick --import--> B (co-op hub)
//!   B --summary--> stick --> A --export --for--> stick --> B   (only the new changes travel)
//! ```

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use hedgerow_node::home::Home;
use hedgerow_node::Replicas;
use hedgerow_protocol::automerge::{Automerge, ChangeHash};
use hedgerow_protocol::bundle_file::{decode_bundle, encode_records, Record};
use hedgerow_protocol::compact::{decode_change, CompactChanges};
use hedgerow_protocol::envelope::signing_digest;
use hedgerow_protocol::replica::{DocReplica, MAX_PENDING_PER_AUTHOR};
use hedgerow_protocol::schema::{
    apply_edit, init_document, DocKind, Edit, EditContext, NewDocument,
};
use hedgerow_protocol::sync::DocPayload;
use hedgerow_protocol::{ChangeEnvelope, CommonsId, DeviceKey, DocGenesis, DocId, Signed};
use hedgerow_tests::net::ServeNode;
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Node A with one commons holding a design with steps and a bill of materials, an event
/// with a brainstorm note, and a fork of the design edited on its own.
struct Farm {
    a: TestHome,
    commons: String,
    design: String,
    event: String,
    note: String,
    fork: String,
}

impl Farm {
    fn new() -> Self {
        let a = TestHome::init("Alice");
        let commons = id(&a.json(&["commons", "create", "Farm Hack tools"]));
        let design = id(&a.json(&[
            "design",
            "new",
            "Roller crimper",
            "--step",
            "Cut the drum from 40 cm pipe",
            "--step",
            "Weld the blades in a chevron",
            "--bom-line",
            "steel pipe;1.2;m;scrap yard;",
            "--bom-line",
            "flat bar 50x6;6;m;;",
            "--tag",
            "no-till",
        ]));
        a.ok(&[
            "design",
            "edit",
            &design,
            "--set",
            "summary=Flattens a cover crop without herbicide",
            "--step",
            "Mount it on the three-point hitch",
        ]);
        let event = id(&a.json(&["event", "new", "Build day at Les Champs"]));
        let note = id(&a.json(&[
            "note",
            "add",
            "--on",
            &event,
            "--kind",
            "brainstorm",
            "--text",
            "Bring the angle grinder",
        ]));
        a.ok(&["note", "edit", &note, "--append", " and two welding masks."]);
        let fork = id(&a.json(&[
            "design",
            "fork",
            &design,
            "--name",
            "Roller crimper, narrow",
        ]));
        a.ok(&[
            "design",
            "edit",
            &fork,
            "--edit-step",
            "1=Cut the drum from 30 cm pipe",
        ]);
        Self {
            a,
            commons,
            design,
            event,
            note,
            fork,
        }
    }

    /// Every document as `(kind, id)`.
    fn documents(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("design", &self.design),
            ("design", &self.fork),
            ("event", &self.event),
            ("note", &self.note),
        ]
    }
}

/// A file path in `home`'s temp directory (stands in for the USB stick).
fn stick(home: &TestHome, name: &str) -> PathBuf {
    home.path().join(name)
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// Asserts both nodes render every document identically.
fn assert_converged(farm: &Farm, b: &TestHome) {
    for (kind, doc) in farm.documents() {
        let on_a = farm.a.json(&[kind, "show", doc]);
        let on_b = b.json(&[kind, "show", doc]);
        assert_eq!(on_a, on_b, "{kind} {doc} differs between the nodes");
    }
}

fn assert_clean(home: &TestHome) {
    let report = home.json(&["verify"]);
    assert_eq!(report["problems"], Value::Array(vec![]), "verify: {report}");
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

#[test]
fn a_bundle_carries_every_document_to_a_node_with_no_link() {
    let farm = Farm::new();
    let file = stick(&farm.a, "farm.hbundle");
    let export = farm.a.json(&["bundle", "export", arg(&file)]);
    // Design, fork, event, note and Alice's profile.
    assert_eq!(count(&export, "documents"), 5);
    assert_eq!(count(&export, "commons"), 1);
    assert_eq!(
        count(&export, "bytes"),
        std::fs::metadata(&file).unwrap().len()
    );
    let human = farm.a.ok(&["bundle", "export", arg(&file)]);
    assert!(
        human.starts_with("exported 5 documents (") && human.contains("of 1 commons to"),
        "{human}"
    );

    let b = TestHome::init("Bob");
    let imported = b.json(&["bundle", "import", arg(&file), "--commons", &farm.commons]);
    assert_eq!(count(&imported, "new"), 5, "{imported}");
    assert_eq!(count(&imported, "known"), 0);
    assert_eq!(imported["rejected"], Value::Array(vec![]));
    assert_eq!(imported["commons_joined"][0], farm.commons.as_str());
    assert!(count(&imported, "changes") >= 7, "{imported}");
    assert_converged(&farm, &b);
    let lineage = b.json(&["design", "lineage", &farm.fork]);
    assert_eq!(lineage["ancestors"][0]["id"], farm.design.as_str());
    assert_clean(&b);

    // The same stick again: nothing new, nothing changes.
    let again = b.ok(&["bundle", "import", arg(&file)]);
    assert_eq!(
        again.lines().next(),
        Some("imported: 0 new, 5 already known, 0 rejected")
    );
    let again = b.json(&["bundle", "import", arg(&file)]);
    assert_eq!(count(&again, "new"), 0);
    assert_eq!(count(&again, "changes"), 0);
    assert_eq!(again["commons_joined"], Value::Array(vec![]));
    assert_converged(&farm, &b);
    assert_clean(&b);
}

#[test]
fn bundles_go_through_a_running_node() {
    let farm = Farm::new();
    let file = stick(&farm.a, "farm.hbundle");
    farm.a.ok(&["bundle", "export", arg(&file)]);
    // While `serve` holds B's store, the CLI can only reach it through the control socket.
    let b = ServeNode::start(TestHome::init("Bob"), &[]);
    let imported = b.json(&["bundle", "import", arg(&file), "--commons", &farm.commons]);
    assert_eq!(count(&imported, "new"), 5, "{imported}");
    assert_converged(&farm, &b);
    let summary = stick(&b, "bob.hsummary");
    b.ok(&["bundle", "summary", arg(&summary)]);
    farm.a
        .ok(&["note", "edit", &farm.note, "--append", " Lunch at noon."]);
    let delta = stick(&farm.a, "delta.hbundle");
    farm.a
        .ok(&["bundle", "export", arg(&delta), "--for", arg(&summary)]);
    assert_eq!(count(&b.json(&["bundle", "import", arg(&delta)]), "new"), 1);
    assert_converged(&farm, &b);
    let back = stick(&b, "back.hbundle");
    let export = b.json(&["bundle", "export", arg(&back)]);
    assert_eq!(count(&export, "documents"), 6, "A's five and Bob's profile");
    assert_clean(&b);
}

#[test]
fn export_is_deterministic() {
    let farm = Farm::new();
    let (one, two) = (stick(&farm.a, "one"), stick(&farm.a, "two"));
    farm.a.ok(&["bundle", "export", arg(&one)]);
    farm.a
        .ok(&["bundle", "export", arg(&two), "--commons", &farm.commons]);
    let one = std::fs::read(one).unwrap();
    assert_eq!(one, std::fs::read(two).unwrap());

    // The same content exported by the node that imported it is the same file too.
    let b = TestHome::init("Bob");
    let file = stick(&farm.a, "farm.hbundle");
    farm.a.ok(&["bundle", "export", arg(&file)]);
    b.ok(&["bundle", "import", arg(&file), "--commons", &farm.commons]);
    let from_b = stick(&b, "from-b");
    b.ok(&["bundle", "export", arg(&from_b)]);
    let from_b = decode_bundle(&std::fs::read(from_b).unwrap())
        .into_result()
        .unwrap();
    let from_a = decode_bundle(&one).into_result().unwrap();
    // B holds its own profile too; everything A sent comes back byte for byte.
    for record in &from_a {
        assert!(
            from_b.contains(record),
            "B re-exports A's records unchanged"
        );
    }
}

/// Total bytes of one signed envelope per change of every document, as live gossip sends them.
fn envelope_bytes(home: &TestHome) -> usize {
    let opened = Home::open(home.path()).unwrap();
    let mut replicas = Replicas::open(&opened).unwrap();
    let mut total = 0;
    for id in replicas.store().all_doc_ids().unwrap() {
        let replica = replicas.replica(&id).unwrap();
        let hashes: Vec<ChangeHash> = replica
            .doc()
            .get_changes(&[])
            .iter()
            .map(|c| c.hash())
            .collect();
        total += replica
            .envelopes_for(&hashes)
            .iter()
            .map(|e| e.to_bytes().len())
            .sum::<usize>();
    }
    total
}

#[test]
fn a_summary_brings_back_only_what_the_other_node_lacks() {
    let farm = Farm::new();
    let full_file = stick(&farm.a, "full.hbundle");
    farm.a.ok(&["bundle", "export", arg(&full_file)]);
    let b = TestHome::init("Bob");
    b.ok(&[
        "bundle",
        "import",
        arg(&full_file),
        "--commons",
        &farm.commons,
    ]);

    // B sends a summary back on the stick; meanwhile Alice keeps working.
    let summary = stick(&b, "bob.hsummary");
    let written = b.json(&["bundle", "summary", arg(&summary)]);
    assert_eq!(
        count(&written, "documents"),
        6,
        "five of Alice's and Bob's profile"
    );
    farm.a.ok(&[
        "design",
        "edit",
        &farm.design,
        "--step",
        "Grease the bearings",
    ]);
    farm.a.ok(&[
        "note",
        "edit",
        &farm.note,
        "--append",
        " Someone bring lunch.",
    ]);

    let delta_file = stick(&farm.a, "delta.hbundle");
    let delta = farm
        .a
        .json(&["bundle", "export", arg(&delta_file), "--for", arg(&summary)]);
    assert_eq!(count(&delta, "documents"), 2, "{delta}");
    assert_eq!(count(&delta, "changes"), 2, "{delta}");
    assert_eq!(count(&delta, "up_to_date"), 3, "{delta}");
    let full = farm.a.json(&["bundle", "export", arg(&full_file)]);
    let (full_bytes, delta_bytes) = (count(&full, "bytes"), count(&delta, "bytes"));
    let envelopes = envelope_bytes(&farm.a);
    eprintln!(
        "sizes: full bundle {full_bytes} bytes, --for bundle {delta_bytes} bytes, \
         one envelope per change {envelopes} bytes"
    );
    assert!(
        delta_bytes * 3 < full_bytes,
        "the --for bundle ({delta_bytes}) should be much smaller than a full one ({full_bytes})"
    );

    let imported = b.json(&["bundle", "import", arg(&delta_file)]);
    assert_eq!(count(&imported, "new"), 2, "{imported}");
    assert_eq!(count(&imported, "changes"), 2, "{imported}");
    assert_converged(&farm, &b);
    assert_clean(&b);
    // Once in step, a fresh summary makes an export with no documents at all.
    b.ok(&["bundle", "summary", arg(&summary)]);
    let nothing = farm
        .a
        .json(&["bundle", "export", arg(&delta_file), "--for", arg(&summary)]);
    assert_eq!(count(&nothing, "documents"), 0, "{nothing}");
}

#[test]
fn a_bundle_is_smaller_than_the_envelopes_it_carries() {
    // A design worked on over a season: forty small signed edits.
    let a = TestHome::init("Alice");
    a.ok(&["commons", "create", "Farm Hack tools"]);
    let design = id(&a.json(&["design", "new", "Bed shaper"]));
    for i in 1..=40 {
        a.ok(&[
            "design",
            "edit",
            &design,
            "--step",
            &format!("Step {i}: check the disc angle and tighten the bolts"),
        ]);
    }
    let file = stick(&a, "season.hbundle");
    let export = a.json(&["bundle", "export", arg(&file)]);
    let bundle = count(&export, "bytes") as usize;
    let envelopes = envelope_bytes(&a);
    eprintln!(
        "sizes: {} changes: bundle {bundle} bytes, one envelope per change {envelopes} bytes",
        count(&export, "changes")
    );
    assert!(
        bundle * 2 < envelopes,
        "the compressed bundle ({bundle}) should be well under separate envelopes ({envelopes})"
    );
    let b = TestHome::init("Bob");
    b.ok(&["bundle", "import", arg(&file), "--all-commons"]);
    assert_eq!(
        a.json(&["design", "show", &design]),
        b.json(&["design", "show", &design])
    );
}

#[test]
fn damaged_bundles_fail_with_one_line_and_keep_the_store_clean() {
    let farm = Farm::new();
    let file = stick(&farm.a, "farm.hbundle");
    farm.a.ok(&["bundle", "export", arg(&file)]);
    let bytes = std::fs::read(&file).unwrap();
    let b = TestHome::init("Bob");
    let damaged = stick(&b, "damaged.hbundle");

    for cut in [0, 9, 40, bytes.len() / 3, bytes.len() / 2, bytes.len() - 33] {
        std::fs::write(&damaged, &bytes[..cut]).unwrap();
        let error = b.fail(&[
            "bundle",
            "import",
            arg(&damaged),
            "--commons",
            &farm.commons,
        ]);
        assert!(!error.contains('\n'), "one line: {error}");
        assert!(error.contains("truncated"), "cut at {cut}: {error}");
        assert_clean(&b);
    }

    // The last cut fell just after the final record: everything that verified was kept,
    // though the import failed so nobody mistakes the copy for a good one.
    assert_converged(&farm, &b);
    std::fs::write(&damaged, &bytes[..bytes.len() - 1]).unwrap();
    let error = b.fail(&["bundle", "import", arg(&damaged)]);
    assert!(
        error.contains("truncated") && error.contains("0 new, 5 already known"),
        "{error}"
    );
    assert_clean(&b);

    // One flipped byte in the middle, into a fresh node.
    let c = TestHome::init("Chloe");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x20;
    std::fs::write(&damaged, &flipped).unwrap();
    let error = c.fail(&[
        "bundle",
        "import",
        arg(&damaged),
        "--commons",
        &farm.commons,
    ]);
    assert!(!error.contains('\n'), "one line: {error}");
    assert!(
        error.contains("damaged") || error.contains("checksum"),
        "{error}"
    );
    assert_clean(&c);
    // The intact file still imports afterwards.
    c.ok(&["bundle", "import", arg(&file), "--commons", &farm.commons]);
    assert_converged(&farm, &c);
    assert_clean(&c);

    // Not a bundle at all, and a summary where a bundle belongs.
    std::fs::write(&damaged, b"PK\x03\x04 a zip file").unwrap();
    let error = c.fail(&["bundle", "import", arg(&damaged)]);
    assert!(error.contains("not a Hedgerow bundle"), "{error}");
    let summary = stick(&c, "c.hsummary");
    c.ok(&["bundle", "summary", arg(&summary)]);
    let error = c.fail(&["bundle", "import", arg(&summary)]);
    assert!(
        error.contains("bundle summary file, not a bundle"),
        "{error}"
    );
    let error = c.fail(&["bundle", "export", arg(&damaged), "--for", arg(&file)]);
    assert!(error.contains("not a bundle summary"), "{error}");
}

/// Re-signs the proofs of `doc`'s changes in a bundle with `forger`'s key; with
/// `keep_author`, the proof still names the real author but carries the forger's signature.
fn forge(records: &mut [Record], doc: &str, forger: &DeviceKey, keep_author: bool) {
    let doc: DocId = doc.parse().unwrap();
    let commons = records
        .iter()
        .find_map(|r| match r {
            Record::Commons(g) => Some(g.body.id()),
            _ => None,
        })
        .expect("a commons record");
    let payload = records
        .iter_mut()
        .find_map(|r| match r {
            Record::Changes(p) if p.doc == doc => Some(p),
            _ => None,
        })
        .expect("the document's changes");
    // A payload carries some changes deflated together, or a whole document's save().
    let changes = payload
        .changes
        .decode()
        .expect("the exporter's own changes decode");
    for (hash, proof) in &mut payload.proofs {
        let change = changes
            .iter()
            .find(|c| c.hash().0 == *hash)
            .expect("proof over a change in the bundle");
        if !keep_author {
            proof.author = forger.author();
        }
        let digest = signing_digest(&commons, &proof.doc, &forger.author(), change.raw_bytes());
        proof.signature = forger.sign(&digest);
    }
}

#[test]
fn a_bundle_with_forged_signatures_is_refused_document_by_document() {
    let farm = Farm::new();
    let file = stick(&farm.a, "farm.hbundle");
    farm.a.ok(&["bundle", "export", arg(&file)]);
    let mut records = decode_bundle(&std::fs::read(&file).unwrap())
        .into_result()
        .unwrap();
    let mallory = DeviceKey::from_secret([66; 32]);
    // The design re-signed by Mallory as Mallory; the event signed by Mallory in Alice's name.
    forge(&mut records, &farm.design, &mallory, false);
    forge(&mut records, &farm.event, &mallory, true);
    let forged = stick(&farm.a, "forged.hbundle");
    std::fs::write(&forged, encode_records(&records).unwrap()).unwrap();

    let b = TestHome::init("Bob");
    let out = b.run(&["bundle", "import", arg(&forged), "--commons", &farm.commons]);
    assert!(!out.status.success(), "a refused record fails the import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.lines().next(),
        Some("imported: 3 new, 0 already known, 2 rejected"),
        "{stdout}"
    );
    let design_line = stdout
        .lines()
        .find(|l| l.contains(&farm.design))
        .expect("a line for the design");
    assert!(
        design_line.starts_with("  rejected design") && design_line.contains("claims actor"),
        "{design_line}"
    );
    let event_line = stdout
        .lines()
        .find(|l| l.contains(&farm.event))
        .expect("a line for the event");
    assert!(event_line.contains("does not verify"), "{event_line}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let out = b.run(&["bundle", "import", arg(&forged), "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert!(rejected
        .iter()
        .any(|r| r["id"] == farm.design.as_str() && r["kind"] == "design"));

    // Nothing of the refused documents is stored, not even their genesis.
    let error = b.fail(&["design", "show", &farm.design]);
    assert!(error.contains("no design matches"), "{error}");
    b.fail(&["event", "show", &farm.event]);
    let designs = b.json(&["design", "list"]);
    let ids: Vec<&str> = designs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, vec![farm.fork.as_str()]);
    // The untouched documents arrived intact.
    for (kind, doc) in [("design", &farm.fork), ("note", &farm.note)] {
        assert_eq!(
            farm.a.json(&[kind, "show", doc]),
            b.json(&[kind, "show", doc])
        );
    }
    assert_clean(&b);

    // The genuine bundle later fills the gap.
    b.ok(&["bundle", "import", arg(&file)]);
    assert_converged(&farm, &b);
}

/// Profiles in `commons` on `home`, from `commons show --json`.
fn profiles(home: &TestHome, commons: &str) -> u64 {
    home.json(&["commons", "show", commons])["documents"]["profile"]
        .as_u64()
        .expect("profile count")
}

/// ```text
///   A: "Farm Hack tools" --stick--> B: holds only "Bob's shed"
/// ```
/// A stick carrying a commons B does not hold imports nothing of it and publishes no profile
/// of Bob there; it is named as skipped, and `--commons ID` joins it.
#[test]
fn a_bundle_joins_no_commons_the_user_did_not_choose() {
    let farm = Farm::new();
    let file = stick(&farm.a, "farm.hbundle");
    farm.a.ok(&["bundle", "export", arg(&file)]);
    let b = TestHome::init("Bob");
    let own = id(&b.json(&["commons", "create", "Bob's shed"]));

    let out = b.ok(&["bundle", "import", arg(&file)]);
    assert_eq!(
        out.lines().next(),
        Some("imported: 0 new, 0 already known, 0 rejected"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "skipped 5 documents of commons \"Farm Hack tools\" ({})",
            farm.commons
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("--commons {}", farm.commons)),
        "{out}"
    );
    let report = b.json(&["bundle", "import", arg(&file)]);
    assert_eq!(count(&report, "new"), 0, "{report}");
    assert_eq!(report["commons_joined"], Value::Array(vec![]));
    assert_eq!(report["skipped"][0]["id"], farm.commons.as_str());
    assert_eq!(report["skipped"][0]["name"], "Farm Hack tools");
    assert_eq!(count(&report["skipped"][0], "documents"), 5);
    let held: Vec<Value> = b.json(&["commons", "list"]).as_array().unwrap().clone();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["id"], own.as_str());
    b.fail(&["design", "show", &farm.design]);
    // Nothing of Bob goes back to Alice's commons, not even his profile.
    let back = stick(&b, "back.hbundle");
    let export = b.json(&["bundle", "export", arg(&back)]);
    assert_eq!(count(&export, "commons"), 1, "{export}");
    assert_eq!(
        count(&export, "documents"),
        1,
        "only Bob's profile in his own shed"
    );
    assert_clean(&b);

    // Named by a prefix: imported and joined, with Bob's profile there.
    let joined = b.json(&[
        "bundle",
        "import",
        arg(&file),
        "--commons",
        &farm.commons[..10],
    ]);
    assert_eq!(count(&joined, "new"), 5, "{joined}");
    assert_eq!(joined["commons_joined"][0], farm.commons.as_str());
    assert_eq!(joined["skipped"], Value::Array(vec![]));
    assert_converged(&farm, &b);
    assert_eq!(profiles(&b, &farm.commons), 2, "Alice's and Bob's");
    assert_clean(&b);

    // A commons neither in the file nor held is refused before anything is read.
    let error = b.fail(&["bundle", "import", arg(&file), "--commons", "zzzzzzzz"]);
    assert!(error.contains("not in this bundle"), "{error}");
}

/// `--all-commons` replicates every commons of a stick without publishing a profile; an
/// explicit `commons join` then publishes it.
#[test]
fn all_commons_imports_everything_and_joins_nothing() {
    let farm = Farm::new();
    let file = stick(&farm.a, "farm.hbundle");
    farm.a.ok(&["bundle", "export", arg(&file)]);
    let hub = TestHome::init("Hub");
    let report = hub.json(&["bundle", "import", arg(&file), "--all-commons"]);
    assert_eq!(count(&report, "new"), 5, "{report}");
    assert_eq!(report["commons_added"][0], farm.commons.as_str());
    assert_eq!(report["commons_joined"], Value::Array(vec![]));
    assert_converged(&farm, &hub);
    assert_eq!(profiles(&hub, &farm.commons), 1, "only Alice's");
    hub.json(&["commons", "join", &farm.commons]);
    assert_eq!(
        profiles(&hub, &farm.commons),
        2,
        "the hub joined explicitly"
    );
    assert_clean(&hub);
}

/// `commons join ID` before any peer had it, then the commons arrives on a stick: the import
/// takes it in without `--commons`, as joined, and the node stops asking peers for it.
#[test]
fn a_commons_joined_before_it_arrived_is_imported_from_a_stick() {
    let farm = Farm::new();
    let file = stick(&farm.a, "farm.hbundle");
    farm.a.ok(&["bundle", "export", arg(&file)]);
    let b = TestHome::init("Bob");
    let asked = b.json(&["commons", "join", &farm.commons]);
    assert_eq!(asked["already_held"], false, "{asked}");
    // Listed as a pending join until it arrives (issue 15: it used to be missing).
    let listed = b.json(&["commons", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["pending"], true, "{listed}");

    let report = b.json(&["bundle", "import", arg(&file)]);
    assert_eq!(count(&report, "new"), 5, "{report}");
    assert_eq!(report["skipped"], Value::Array(vec![]), "{report}");
    assert_eq!(report["commons_joined"][0], farm.commons.as_str());
    assert_converged(&farm, &b);
    assert_eq!(profiles(&b, &farm.commons), 2, "Alice's and Bob's");
    // No longer wanted: a second join finds it held.
    let again = b.json(&["commons", "join", &farm.commons]);
    assert_eq!(again["already_held"], true, "{again}");
    assert_clean(&b);
}

/// One signed change made on `writer`, a copy of a document Mallory writes in the test.
fn mallory_change<E: std::error::Error + 'static>(
    writer: &mut DocReplica,
    key: &DeviceKey,
    edit: impl FnOnce(&mut hedgerow_protocol::automerge::transaction::Transaction<'_>) -> Result<(), E>,
) -> ChangeEnvelope {
    let (_, made) = writer
        .edit(key, 1_800_000_000, edit)
        .unwrap_or_else(|_| panic!("Mallory's own edit is refused"));
    made.expect("the edit made a change").0
}

/// A new design of Mallory's in `commons`: its genesis and a copy to write it on.
fn mallory_design(
    commons: CommonsId,
    key: &DeviceKey,
    nonce: u8,
) -> (Signed<DocGenesis>, DocReplica) {
    let genesis = DocGenesis {
        commons,
        kind: DocKind::Design,
        creator: key.author(),
        created_at: 1_800_000_000,
        nonce: [nonce; 16],
        fork: None,
    }
    .sign(key);
    let writer = DocReplica::new(genesis.clone()).expect("genesis verifies");
    (genesis, writer)
}

/// The first change of a design titled `title`.
fn mallory_first(writer: &mut DocReplica, key: &DeviceKey, title: &str) -> ChangeEnvelope {
    mallory_change(writer, key, |tx| {
        init_document(tx, &NewDocument::new(DocKind::Design, title))
    })
}

/// A change setting the design's summary.
fn mallory_summary(writer: &mut DocReplica, key: &DeviceKey, summary: &str) -> ChangeEnvelope {
    let ctx = EditContext {
        author: key.author().to_string(),
        now_unix: 1_800_000_000,
    };
    let edit = Edit::Set {
        field: "summary".into(),
        value: summary.into(),
    };
    mallory_change(writer, key, |tx| {
        apply_edit(tx, DocKind::Design, &edit, &ctx)
    })
}

/// A bundle record carrying `envelopes` as document `doc`'s changes, each with its signature.
fn payload_of(
    doc: DocId,
    genesis: Option<&Signed<DocGenesis>>,
    envelopes: &[&ChangeEnvelope],
) -> Record {
    let changes: Vec<_> = envelopes
        .iter()
        .map(|e| decode_change(&e.change).expect("a change"))
        .collect();
    Record::Changes(DocPayload {
        doc,
        genesis: genesis.cloned(),
        changes: CompactChanges::of_changes(changes.iter()),
        proofs: changes
            .iter()
            .zip(envelopes)
            .map(|(c, e)| (c.hash().0, e.proof()))
            .collect(),
    })
}

/// Imports `records` as a bundle into `home`: (exit status, `--json` report).
fn import_records(home: &TestHome, name: &str, records: &[Record]) -> (bool, Value) {
    let path = stick(home, name);
    std::fs::write(&path, encode_records(records).expect("encode")).expect("write bundle");
    let out = home.run(&["bundle", "import", arg(&path), "--json"]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no import report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// Validly signed changes on a stick that do not fit where they claim to go: a change that
/// breaks the design schema, a change signed for another document, and changes whose history
/// is missing. Each document is refused with its reason and nothing of it is kept; a bundle
/// holds nothing back for later (unlike live changes, which wait up to the pending cap), so
/// the missing history arriving afterwards brings exactly itself.
#[test]
fn a_bundle_of_misplaced_changes_is_refused_by_kind() {
    let alice = TestHome::init("Alice");
    let commons_text = id(&alice.json(&["commons", "create", "Farm Hack tools"]));
    let genuine = stick(&alice, "genuine.hbundle");
    alice.ok(&["bundle", "export", arg(&genuine)]);
    let records = decode_bundle(&std::fs::read(&genuine).unwrap())
        .into_result()
        .unwrap();
    let commons_record = records
        .iter()
        .find(|r| matches!(r, Record::Commons(_)))
        .expect("a commons record")
        .clone();
    let commons: CommonsId = commons_text.parse().unwrap();
    let bob = TestHome::init("Bob");
    bob.ok(&[
        "bundle",
        "import",
        arg(&genuine),
        "--commons",
        &commons_text,
    ]);

    let mallory = DeviceKey::from_secret([0x4d; 32]);
    // A design whose second change puts a field no design has.
    let (breach_genesis, mut breach) = mallory_design(commons, &mallory, 1);
    let breach_first = mallory_first(&mut breach, &mallory, "Gold crimper");
    let breaking = {
        use hedgerow_protocol::automerge::transaction::Transactable;
        let first = decode_change(&breach_first.change).unwrap();
        let mut doc = Automerge::new().with_actor(first.actor_id().clone());
        doc.apply_changes([first]).unwrap();
        let mut tx = doc.transaction();
        tx.put(hedgerow_protocol::automerge::ROOT, "made_of_gold", "yes")
            .unwrap();
        tx.commit();
        let bytes = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        ChangeEnvelope::sign(&mallory, commons, breach_genesis.body.id(), bytes)
    };
    // A design carrying, as its own, the first change of another design.
    let (stray_genesis, _) = mallory_design(commons, &mallory, 2);
    let (other_genesis, mut other) = mallory_design(commons, &mallory, 3);
    let other_first = mallory_first(&mut other, &mallory, "Other crimper");
    // A design that arrives whole, then more changes with one in their middle missing.
    let (gap_genesis, mut gap) = mallory_design(commons, &mallory, 4);
    let gap_first = mallory_first(&mut gap, &mallory, "Gappy crimper");
    let withheld = mallory_summary(&mut gap, &mallory, "v2");
    let after: Vec<ChangeEnvelope> = (3..3 + MAX_PENDING_PER_AUTHOR + 2)
        .map(|n| mallory_summary(&mut gap, &mallory, &format!("v{n}")))
        .collect();

    let (ok, report) = import_records(
        &bob,
        "hostile.hbundle",
        &[
            commons_record.clone(),
            payload_of(
                breach_genesis.body.id(),
                Some(&breach_genesis),
                &[&breach_first, &breaking],
            ),
            payload_of(
                stray_genesis.body.id(),
                Some(&stray_genesis),
                &[&other_first],
            ),
            payload_of(gap_genesis.body.id(), Some(&gap_genesis), &[&gap_first]),
        ],
    );
    assert!(!ok, "a refused record fails the import: {report}");
    assert_eq!(count(&report, "new"), 1, "{report}");
    let rejected = report["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 2, "{report}");
    let reason = |doc: &Signed<DocGenesis>| -> String {
        let record = rejected
            .iter()
            .find(|r| r["id"] == doc.body.id().to_string().as_str())
            .unwrap_or_else(|| panic!("{} not rejected: {report}", doc.body.id()));
        assert_eq!(record["kind"], "design", "{record}");
        record["error"].as_str().expect("error").to_string()
    };
    let error = reason(&breach_genesis);
    assert!(
        error.starts_with("change violates the design schema"),
        "{error}"
    );
    let error = reason(&stray_genesis);
    assert_eq!(
        error,
        format!(
            "change was signed for document {}, which is not {} or one of its ancestors",
            other_genesis.body.id(),
            stray_genesis.body.id()
        )
    );

    // Changes whose history the bundle lacks: refused whole, none kept waiting.
    let gap_id = gap_genesis.body.id();
    let refs: Vec<&ChangeEnvelope> = after.iter().collect();
    let (ok, report) = import_records(
        &bob,
        "gap.hbundle",
        &[commons_record.clone(), payload_of(gap_id, None, &refs)],
    );
    assert!(!ok, "{report}");
    assert_eq!(
        report["rejected"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    // Only the first of them names the missing change; the rest build on it.
    assert_eq!(
        report["rejected"][0]["error"], "1 changes depend on changes that were not sent",
        "{report}"
    );
    assert_eq!(report["rejected"][0]["kind"], "design", "{report}");
    let gap_text = gap_id.to_string();
    assert_eq!(bob.json(&["design", "show", &gap_text])["changes"], 1);
    let (ok, report) = import_records(
        &bob,
        "withheld.hbundle",
        &[commons_record, payload_of(gap_id, None, &[&withheld])],
    );
    assert!(ok, "{report}");
    assert_eq!(count(&report, "changes"), 1, "{report}");
    assert_eq!(bob.json(&["design", "show", &gap_text])["changes"], 2);

    // Nothing of the refused designs was stored.
    for refused in [&breach_genesis, &stray_genesis] {
        let error = bob.fail(&["design", "show", &refused.body.id().to_string()]);
        assert!(error.contains("no design matches"), "{error}");
    }
    assert_clean(&bob);
}
