//! One key in two homes (a copied home, a restored backup), and a forged equivocation,
//! through the real binary and real stores.
//!
//! ```text
//!   farm home --cp -a--> laptop home      both edit the design, swap bundles: both edits stay
//!   mallory signs twins A and B           A-then-B on one node, B-then-A on another: same document,
//!                                         the loser kept as evidence that `verify` shows
//! ```

use hedgerow_protocol::automerge::ChangeHash;
use hedgerow_protocol::bundle_file::{decode_bundle, encode_records, Record};
use hedgerow_protocol::schema::{self, DocKind, Edit, EditContext};
use hedgerow_protocol::sync::DocPayload;
use hedgerow_protocol::{DeviceKey, DocReplica, InstallTag};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn stick(home: &TestHome, name: &str) -> PathBuf {
    home.path().join(name)
}

/// Copies a whole home as a farmer would onto a laptop (`cp -a`).
fn copy_home(from: &TestHome) -> TestHome {
    let to = TestHome::new();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.path().display()))
        .arg(to.path())
        .status()
        .expect("run cp");
    assert!(status.success());
    to
}

fn swap_bundles(a: &TestHome, b: &TestHome) -> (Value, Value) {
    let from_a = stick(a, "a.hbundle");
    let from_b = stick(b, "b.hbundle");
    a.ok(&["bundle", "export", arg(&from_a)]);
    b.ok(&["bundle", "export", arg(&from_b)]);
    let into_b = b.json(&["bundle", "import", arg(&from_a)]);
    let into_a = a.json(&["bundle", "import", arg(&from_b)]);
    (into_a, into_b)
}

#[test]
fn a_copied_home_edits_merge_with_the_original() {
    let farm = TestHome::init("Ada");
    farm.json(&["commons", "create", "Farm Hack tools"]);
    let design = id(&farm.json(&[
        "design",
        "new",
        "Roller crimper",
        "--step",
        "Cut the tube to 1.6 m",
    ]));
    let laptop = copy_home(&farm);
    let tag = |h: &TestHome| std::fs::read_to_string(h.path().join("install.json")).ok();
    // Both edit the same design at the same point of its history.
    farm.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "summary=Crimps rye flat",
    ]);
    laptop.ok(&["design", "edit", &design, "--step", "Weld the blades"]);
    assert_ne!(
        tag(&farm),
        tag(&laptop),
        "the copy made itself a fresh install tag"
    );
    assert_eq!(
        farm.json(&["whoami"])["author"],
        laptop.json(&["whoami"])["author"],
        "one person, one key"
    );

    let (into_farm, into_laptop) = swap_bundles(&farm, &laptop);
    for report in [&into_farm, &into_laptop] {
        assert_eq!(
            report["rejected"].as_array().map(Vec::len),
            Some(0),
            "{report}"
        );
    }
    let on_farm = farm.json(&["design", "show", &design]);
    let on_laptop = laptop.json(&["design", "show", &design]);
    assert_eq!(on_farm["summary"], "Crimps rye flat");
    let steps: Vec<String> = on_farm["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(steps.len(), 2, "both homes' edits are in: {steps:?}");
    assert!(steps[1].contains("Weld the blades"), "{steps:?}");
    assert_eq!(on_farm, on_laptop);
    for home in [&farm, &laptop] {
        let report = home.json(&["verify"]);
        assert_eq!(report["problems"], serde_json::json!([]), "{report}");
        assert_eq!(report["equivocations"], serde_json::json!([]), "{report}");
    }
}

/// Mallory's two bundles: each holds one of two different changes that Mallory signed
/// with one actor and one sequence number, on top of the farm's design.
fn twins(farm: &TestHome, design: &str) -> (PathBuf, PathBuf, ChangeHash) {
    let whole = stick(farm, "whole.hbundle");
    farm.ok(&["bundle", "export", arg(&whole)]);
    let records = decode_bundle(&std::fs::read(&whole).expect("read bundle"))
        .into_result()
        .expect("the farm's bundle decodes");
    let commons = records
        .iter()
        .find_map(|r| match r {
            Record::Commons(g) => Some(g.clone()),
            _ => None,
        })
        .expect("a commons record");
    let genesis = records
        .iter()
        .find_map(|r| match r {
            Record::DocGenesis(g) if g.body.id().to_string() == design => Some(g.clone()),
            _ => None,
        })
        .expect("the design's genesis");
    let payload = records
        .iter()
        .find_map(|r| match r {
            Record::Changes(p) if p.doc.to_string() == design => Some(p.clone()),
            _ => None,
        })
        .expect("the design's changes");
    let mallory = DeviceKey::from_secret([66; 32]).with_install(InstallTag([6; 8]));
    let mut made = Vec::new();
    for summary in ["Crimps rye flat", "Made of solid gold"] {
        let mut replica = DocReplica::new(genesis.clone()).expect("genesis verifies");
        replica
            .ingest_compact(
                &payload.changes,
                payload
                    .proofs
                    .iter()
                    .map(|(h, p)| (ChangeHash(*h), p.clone()))
                    .collect(),
            )
            .expect("the farm's changes verify");
        let ctx = EditContext {
            author: mallory.author().to_string(),
            now_unix: 1_800_000_000,
        };
        let edit = Edit::Set {
            field: "summary".into(),
            value: summary.into(),
        };
        let (_, change) = replica
            .edit(&mallory, 1_800_000_000, |tx| {
                schema::apply_edit(tx, DocKind::Design, &edit, &ctx)
            })
            .expect("edit");
        let hash = change.expect("a change").1.hash;
        let (changes, proofs) = replica.compact_for(&[hash]).expect("compact form");
        let bundle = encode_records(&[
            Record::Commons(commons.clone()),
            Record::Changes(DocPayload {
                doc: genesis.body.id(),
                genesis: None,
                changes,
                proofs: proofs.into_iter().map(|(h, p)| (h.0, p)).collect(),
            }),
        ])
        .expect("encode");
        let path = stick(farm, &format!("twin-{}.hbundle", made.len()));
        std::fs::write(&path, bundle).expect("write bundle");
        made.push((path, hash));
    }
    let winner = made
        .iter()
        .map(|(_, h)| *h)
        .min_by_key(|h| h.0)
        .expect("two");
    let mut made = made.into_iter();
    let (a, _) = made.next().expect("first twin");
    let (b, _) = made.next().expect("second twin");
    (a, b, winner)
}

#[test]
fn a_forged_equivocation_settles_alike_in_either_order_and_verify_shows_it() {
    let farm = TestHome::init("Ada");
    farm.json(&["commons", "create", "Farm Hack tools"]);
    let design = id(&farm.json(&["design", "new", "Roller crimper"]));
    let hub = copy_home(&farm);
    let (twin_a, twin_b, winner) = twins(&farm, &design);

    farm.json(&["bundle", "import", arg(&twin_a)]);
    farm.json(&["bundle", "import", arg(&twin_b)]);
    hub.json(&["bundle", "import", arg(&twin_b)]);
    hub.json(&["bundle", "import", arg(&twin_a)]);

    let on_farm = farm.json(&["design", "show", &design]);
    let on_hub = hub.json(&["design", "show", &design]);
    assert_eq!(
        on_farm["heads"], on_hub["heads"],
        "same document whatever the order"
    );
    assert_eq!(on_farm["summary"], on_hub["summary"]);
    assert_eq!(
        on_farm["heads"],
        serde_json::json!([winner.to_string()]),
        "the lowest hash stays"
    );
    for home in [&farm, &hub] {
        let out = home.run(&["verify", "--json"]);
        assert!(
            out.status.success(),
            "an equivocation is evidence, not damage"
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(report["problems"], serde_json::json!([]), "{report}");
        let found = report["equivocations"].as_array().expect("equivocations");
        assert_eq!(found.len(), 1, "{report}");
        assert_eq!(found[0]["document"], design.as_str());
        assert_eq!(found[0]["kept"], winner.to_string());
        assert_eq!(
            found[0]["author"],
            DeviceKey::from_secret([66; 32]).author().to_string()
        );
        let text = home.ok(&["verify"]);
        assert!(text.contains("EQUIVOCATION: author"), "{text}");
    }
    // Importing either twin again changes nothing.
    farm.json(&["bundle", "import", arg(&twin_a)]);
    assert_eq!(
        farm.json(&["design", "show", &design])["heads"],
        on_farm["heads"]
    );
}
