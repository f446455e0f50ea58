//! `hedgerow verify` finds each kind of damage the README names, by name, with a non-zero
//! exit (also with `--json`), and what the README says repairs it leaves a clean store.
//!
//! ```text
//!   a real home (the real binary), stopped; then one kind of damage:
//!   change bytes / signature / record flipped (sled's checksums pass) -> verify names each
//!                                                       document; `repair` restores them
//!   summary or snapshot disagreeing with the signed changes   -> verify names each
//!                                                       document; `verify --rebuild` fixes
//!   sled log truncated, its snapshot lost                     -> the manifest catches it;
//!                                                       `repair` restores the designs
//!   manifest removed                                          -> named until `verify --rebuild`
//!   store of a newer format                                   -> refused, store untouched
//! ```
//!
//! Damage inside values is written through sled itself, as a bad disk controller or a
//! flipped bit in memory before a write would leave it: sled's own checksums pass, so
//! only Hedgerow's checks can find it. The trees are the ones README's Formats names.

use hedgerow_node::store::DocSummary;
use hedgerow_protocol::encoding::{decode, encode};
use hedgerow_protocol::DocId;
use hedgerow_tests::TestHome;
use serde_json::Value;
use std::path::PathBuf;

/// A home with a commons and `n` designs, each made with a step and edited once.
fn farm(n: usize) -> (TestHome, Vec<String>) {
    let home = TestHome::init("Ada");
    home.ok(&["commons", "create", "Farm Hack tools"]);
    let designs = (0..n)
        .map(|i| {
            let id = home
                .ok(&[
                    "design",
                    "new",
                    &format!("Roller crimper {i}"),
                    "--step",
                    &format!("Cut tube {i}"),
                ])
                .trim()
                .to_string();
            home.ok(&["design", "edit", &id, "--step", &format!("Weld drum {i}")]);
            id
        })
        .collect();
    (home, designs)
}

/// What `design show` prints for a design.
fn show(home: &TestHome, id: &str) -> Value {
    home.json(&["design", "show", id])
}

fn store_path(home: &TestHome) -> PathBuf {
    home.path().join("store")
}

fn doc_key(id: &str) -> [u8; 32] {
    *id.parse::<DocId>().expect("a document id").as_bytes()
}

/// Opens the stopped home's sled store directly, runs `damage`, and closes it.
fn damage<T>(home: &TestHome, damage: impl FnOnce(&sled::Db) -> T) -> T {
    let db = sled::open(store_path(home)).expect("open sled");
    let out = damage(&db);
    db.flush().expect("flush sled");
    out
}

/// Flips one byte (at `at(len)`) of the first value under `prefix` in `tree`.
fn flip(db: &sled::Db, tree: &str, prefix: &[u8], at: impl Fn(usize) -> usize) {
    let tree = db.open_tree(tree).expect("tree");
    let (key, value) = tree
        .scan_prefix(prefix)
        .next()
        .expect("a value under the prefix")
        .expect("read");
    let mut bytes = value.to_vec();
    let at = at(bytes.len());
    bytes[at] ^= 0x01;
    tree.insert(key, bytes).expect("write");
}

/// Runs `verify` and `verify --json`: both must fail; returns the problems (from the JSON),
/// after checking the human output names the same ones.
fn verify_problems(home: &TestHome) -> Vec<String> {
    let human = home.run(&["verify"]);
    assert!(
        !human.status.success(),
        "verify exited 0 on a damaged store"
    );
    let human = String::from_utf8_lossy(&human.stdout).to_string();
    let json = home.run(&["verify", "--json"]);
    assert!(!json.status.success(), "verify --json exited 0");
    let report: Value = serde_json::from_slice(&json.stdout).expect("verify --json prints JSON");
    let problems: Vec<String> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p.as_str().expect("a line").to_string())
        .collect();
    assert!(!problems.is_empty(), "{report}");
    assert_eq!(
        human.lines().filter(|l| l.starts_with("PROBLEM: ")).count(),
        problems.len(),
        "{human}"
    );
    problems
}

/// The problems that name document `id`.
fn naming<'a>(problems: &'a [String], id: &str) -> Vec<&'a String> {
    problems.iter().filter(|p| p.contains(id)).collect()
}

/// `verify` and `verify --json` both refuse a store that does not open, in one line.
fn verify_refuses(home: &TestHome) -> String {
    let line = home.fail(&["verify"]);
    assert_eq!(line.lines().count(), 1, "{line}");
    let json = home.run(&["verify", "--json"]);
    assert!(!json.status.success(), "verify --json exited 0");
    // With --json the same line comes as `{"error", "kind"}` on standard output.
    let error: Value = serde_json::from_slice(&json.stdout).expect("verify --json error is JSON");
    assert_eq!(
        Some(error["error"].as_str().unwrap_or_default()),
        line.strip_prefix("error: "),
        "{error}"
    );
    assert!(error["kind"].is_string(), "{error}");
    line
}

fn assert_clean(home: &TestHome) {
    let report = home.json(&["verify"]);
    assert_eq!(report["problems"], Value::Array(vec![]), "{report}");
}

#[test]
fn flipped_bytes_in_changes_and_their_records_are_named_and_repaired() {
    let (home, designs) = farm(3);
    let before: Vec<Value> = designs.iter().map(|id| show(&home, id)).collect();
    damage(&home, |db| {
        // The raw automerge change; its signature; the record's version byte.
        flip(db, "changes", &doc_key(&designs[0]), |len| len / 2);
        flip(db, "records", &doc_key(&designs[1]), |len| len - 1);
        flip(db, "records", &doc_key(&designs[2]), |_| 0);
    });

    let problems = verify_problems(&home);
    for id in &designs {
        let named = naming(&problems, id);
        assert_eq!(named.len(), 1, "{id}: {problems:#?}");
        assert!(named[0].contains("hedgerow repair"), "{}", named[0]);
    }
    assert_eq!(problems.len(), designs.len(), "{problems:#?}");
    // `--rebuild` rewrites caches only: it neither fixes nor hides signed changes.
    let rebuilt = home.run(&["verify", "--rebuild", "--json"]);
    assert!(!rebuilt.status.success());
    let rebuilt: Value = serde_json::from_slice(&rebuilt.stdout).expect("JSON");
    assert_eq!(rebuilt["problems"].as_array().map(Vec::len), Some(3));

    let repaired = home.json(&["repair"]);
    assert_eq!(repaired["from_peers"], Value::Array(vec![]), "{repaired}");
    assert_clean(&home);
    for (id, shown) in designs.iter().zip(&before) {
        assert_eq!(&show(&home, id), shown, "design {id} after repair");
    }
}

#[test]
fn caches_that_disagree_with_the_signed_changes_are_named_and_rebuilt() {
    let (home, designs) = farm(4);
    let before: Vec<Value> = designs.iter().map(|id| show(&home, id)).collect();
    damage(&home, |db| {
        // A summary whose heads are right but whose title is not (what `list` shows).
        let summaries = db.open_tree("summaries").expect("tree");
        let key = doc_key(&designs[0]);
        let stored = summaries.get(key).expect("read").expect("a summary");
        let mut summary: DocSummary = decode(&stored, "summary").expect("decodes");
        summary.title = "Forged title".into();
        summaries.insert(key, encode(&summary)).expect("write");
        // Another document's snapshot, and a snapshot cut short.
        let snapshots = db.open_tree("snapshots").expect("tree");
        let other = snapshots
            .get(doc_key(&designs[2]))
            .expect("read")
            .expect("a snapshot");
        snapshots
            .insert(doc_key(&designs[1]), &other)
            .expect("write");
        snapshots
            .insert(doc_key(&designs[2]), &other[..other.len() / 2])
            .expect("write");
    });
    let listed = home.json(&["design", "list"]);
    assert!(
        listed.to_string().contains("Forged title"),
        "the damaged summary is what `list` shows: {listed}"
    );
    // A summary that no longer decodes (its version byte): `list` points to `verify`.
    damage(&home, |db| {
        flip(db, "summaries", &doc_key(&designs[3]), |_| 0)
    });
    assert!(home.fail(&["design", "list"]).contains("hedgerow verify"));

    let problems = verify_problems(&home);
    for id in &designs {
        let named = naming(&problems, id);
        assert_eq!(named.len(), 1, "{id}: {problems:#?}");
        assert!(named[0].contains("verify --rebuild"), "{}", named[0]);
    }
    assert_eq!(problems.len(), designs.len(), "{problems:#?}");

    let rebuilt = home.json(&["verify", "--rebuild"]);
    assert_eq!(rebuilt["rebuilt"], 4, "{rebuilt}");
    assert_eq!(rebuilt["problems"], Value::Array(vec![]), "{rebuilt}");
    assert_clean(&home);
    assert!(!home
        .json(&["design", "list"])
        .to_string()
        .contains("Forged title"));
    for (id, shown) in designs.iter().zip(&before) {
        assert_eq!(&show(&home, id), shown, "design {id} after the rebuild");
    }
}

#[test]
fn a_truncated_log_is_caught_by_the_manifest_and_repaired() {
    let (home, designs) = farm(3);
    let before: Vec<Value> = designs.iter().map(|id| show(&home, id)).collect();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(store_path(&home).join("hedgerow-manifest.json")).expect("manifest"),
    )
    .expect("manifest parses");
    let held = manifest["changes"].as_u64().expect("a count");
    // The log loses its tail from the second design on, and the snapshot that would have
    // told sled so is lost too (never reached the disk): sled opens what is left, silently.
    let db = store_path(&home).join("db");
    let bytes = std::fs::read(&db).expect("read log");
    let cut = bytes
        .windows(b"Cut tube 1".len())
        .position(|w| w == b"Cut tube 1")
        .expect("the second design is in the log");
    std::fs::write(&db, &bytes[..cut]).expect("truncate log");
    for entry in std::fs::read_dir(store_path(&home)).expect("list store") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
        {
            std::fs::remove_file(path).expect("remove snapshot");
        }
    }

    let line = verify_refuses(&home);
    assert!(
        line.contains(&format!("held {held} signed changes at its last save")),
        "{line}"
    );
    assert!(line.contains("hedgerow repair"), "{line}");
    assert!(home.fail(&["design", "list"]).contains("hedgerow repair"));

    home.json(&["repair"]);
    assert_clean(&home);
    for (id, shown) in designs.iter().zip(&before) {
        assert_eq!(&show(&home, id), shown, "design {id} after repair");
    }
}

#[test]
fn a_missing_manifest_is_named_until_verify_rebuild_recreates_it() {
    let (home, _) = farm(1);
    let path = store_path(&home).join("hedgerow-manifest.json");
    let written = std::fs::read(&path).expect("manifest");
    std::fs::remove_file(&path).expect("remove manifest");

    let problems = verify_problems(&home);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("hedgerow-manifest.json"),
        "{problems:?}"
    );
    // Reading does not quietly recreate it (which would hide the loss from the next verify).
    home.ok(&["design", "list"]);
    assert!(!path.exists(), "a read recreated the manifest");
    assert_eq!(verify_problems(&home), problems);

    let rebuilt = home.json(&["verify", "--rebuild"]);
    assert_eq!(rebuilt["problems"], Value::Array(vec![]), "{rebuilt}");
    assert_eq!(std::fs::read(&path).expect("manifest is back"), written);
    assert_clean(&home);
}

#[test]
fn a_store_of_a_newer_format_is_refused_and_left_untouched() {
    let (home, designs) = farm(1);
    // What a newer release leaves: its format in sled's `meta` tree and in the manifest.
    damage(&home, |db| {
        db.open_tree("meta")
            .expect("tree")
            .insert("format", &[2u8])
            .expect("write");
    });
    let manifest = store_path(&home).join("hedgerow-manifest.json");
    let mut written: Value =
        serde_json::from_slice(&std::fs::read(&manifest).expect("manifest")).expect("parses");
    written["format"] = 2.into();
    std::fs::write(&manifest, written.to_string()).expect("write manifest");
    let files = home.snapshot_files();

    // With --json the refusal is `{"error", "kind"}` on standard output instead.
    let json = home.run(&["verify", "--json"]);
    assert!(!json.status.success());
    let error: Value = serde_json::from_slice(&json.stdout).expect("verify --json error is JSON");
    let text = error["error"].as_str().unwrap_or_default();
    assert!(
        text.contains("newer hedgerow") && text.contains("upgrade hedgerow"),
        "{error}"
    );
    for args in [
        vec!["verify"],
        vec!["design", "list"],
        vec!["design", "show", designs[0].as_str()],
        vec!["design", "new", "Seeder"],
        vec!["repair"],
    ] {
        let line = home.fail(&args);
        assert_eq!(line.lines().count(), 1, "{args:?}: {line}");
        assert!(
            line.contains("newer hedgerow") && line.contains("upgrade hedgerow"),
            "{args:?}: {line}"
        );
    }
    let after = home.snapshot_files();
    assert_eq!(
        files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        after.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for ((path, was), (_, is)) in files.iter().zip(&after) {
        assert!(was == is, "{} changed", path.display());
    }
}
