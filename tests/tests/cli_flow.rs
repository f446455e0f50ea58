//! The whole CLI flow through the real binary, one throwaway home per test:
//! identity and commons, a design's life (create, edit from flags, standard
//! input and files, history, blame, release), forks and lineage, events and
//! notes. Every `--json` reply is checked for its documented keys, so a renamed
//! or dropped key fails here before it breaks someone's script.
//!
//! ```text
//!   init -> commons create -> design new -> edit x3 -> release 1.0 -> edit
//!                               |                          \-> show --version 1.0
//!                               +-> fork (licence kept) -> fork -> lineage
//!                               +-> event -> notes (--on event / design)
//! ```

use hedgerow_protocol::schema::{self, DocKind};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::collections::BTreeSet;

const NAME: &str = "Alice Farmer";

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {value}"))
        .keys()
        .cloned()
        .collect()
}

/// Asserts `value` is an object with exactly these keys.
fn assert_keys(value: &Value, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys(value), expected, "JSON keys changed in {value}");
}

/// The keys `show --json` prints for a kind: every schema field plus the metadata.
fn show_keys(kind: DocKind, release: bool) -> Vec<&'static str> {
    let mut all: Vec<&str> = schema::field_names(kind).to_vec();
    all.extend(["id", "doc_kind", "creator", "changes", "heads", "conflicts"]);
    if release {
        all.push("release");
    }
    all
}

fn strs(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("string item").to_string())
        .collect()
}

/// The hash printed by a human-readable `edit`: `saved change HASH`.
fn saved_change(stdout: &str) -> String {
    stdout
        .trim()
        .strip_prefix("saved change ")
        .unwrap_or_else(|| panic!("edit did not report a saved change: {stdout}"))
        .to_string()
}

fn assert_clean(home: &TestHome) {
    let report = home.json(&["verify"]);
    assert_keys(
        &report,
        &[
            "commons",
            "documents",
            "changes",
            "rebuilt",
            "problems",
            "equivocations",
            "held_changes",
            "blobs",
        ],
    );
    assert_eq!(report["problems"], Value::Array(vec![]), "{report}");
    assert_eq!(report["rebuilt"], 0);
    assert!(home.ok(&["verify"]).contains("store is clean"));
}

/// A home with a commons and a share-alike design with a BOM, steps and tags.
fn farm() -> (TestHome, String) {
    let home = TestHome::init(NAME);
    home.ok(&["commons", "create", "Farm Hack tools"]);
    let design = home
        .ok(&[
            "design",
            "new",
            "Roller crimper",
            "--bom-line",
            "steel tube 406 mm;1;pcs;scrap yard;",
            "--bom-line",
            "flat bar 50x6;12;m;;",
            "--step",
            "Cut the tube to 1.6 m and cap both ends.",
            "--step",
            "Weld ten chevron blades around the drum.",
            "--tag",
            "no-till",
            "--tag",
            "cover crops",
            "--set",
            "licence.hardware=CERN-OHL-S-2.0",
            "--set",
            "licence.documentation=CC-BY-SA-4.0",
            "--set",
            "stage=prototype",
        ])
        .trim()
        .to_string();
    (home, design)
}

#[test]
fn identity_and_commons() {
    let home = TestHome::new();
    let out = home.ok(&["init", "--name", NAME, "--location", "Drôme, France"]);
    assert!(out.contains(NAME), "{out}");
    let me = home.json(&["whoami"]);
    assert_keys(
        &me,
        &[
            "author",
            "short",
            "person",
            "device_name",
            "peer_id",
            "name",
            "location",
            "bio",
        ],
    );
    assert_eq!(me["name"], NAME);
    assert_eq!(me["location"], "Drôme, France");
    let author = me["author"].as_str().expect("author key").to_string();
    assert!(out.contains(&author), "init prints the author key: {out}");
    assert!(author.starts_with(me["short"].as_str().expect("short")));
    let human = home.ok(&["whoami"]);
    assert!(human.contains(NAME) && human.contains(&author), "{human}");
    let peer_id = me["peer_id"].as_str().expect("peer id");
    assert!(
        peer_id.starts_with("12D3KooW") && human.contains(peer_id),
        "{human}"
    );

    assert!(home
        .json(&["commons", "list"])
        .as_array()
        .expect("list")
        .is_empty());
    let created = home.json(&[
        "commons",
        "create",
        "Farm Hack tools",
        "--description",
        "Open farm tools, designed global, built local",
    ]);
    let commons = id(&created);
    let listed = home.json(&["commons", "list"]);
    let listed = listed.as_array().expect("list");
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_keys(
        entry,
        &[
            "id",
            "name",
            "description",
            "creator",
            "created_at",
            "pending",
            "documents",
        ],
    );
    assert_keys(&entry["documents"], &["design", "event", "note", "profile"]);
    assert_eq!(entry["id"], commons.as_str());
    assert_eq!(entry["name"], "Farm Hack tools");
    assert_eq!(entry["creator"], author.as_str());
    assert_eq!(
        entry["documents"]["profile"], 1,
        "creating a commons signs our profile into it"
    );
    assert_eq!(entry["documents"]["design"], 0);

    // Shown by full id, by prefix, and as the only one.
    for given in [Some(commons.as_str()), Some(&commons[..6]), None] {
        let mut args = vec!["commons", "show"];
        args.extend(given);
        assert_eq!(&home.json(&args), entry);
    }
    assert!(home.ok(&["commons", "show"]).contains("Farm Hack tools"));

    // With two commons, commands that need one ask which.
    let second = home
        .ok(&["commons", "create", "Atelier"])
        .trim()
        .to_string();
    let error = home.fail(&["design", "new", "Grelinette"]);
    assert!(error.contains("--commons"), "{error}");
    let design = home.ok(&["design", "new", "Grelinette", "--commons", &second[..8]]);
    assert!(!design.trim().is_empty());
    let designs = home.json(&["design", "list", "--commons", &second]);
    assert_eq!(designs.as_array().expect("list").len(), 1);
    let designs = home.json(&["design", "list", "--commons", &commons]);
    assert!(designs.as_array().expect("list").is_empty());
    assert_clean(&home);
}

#[test]
fn design_life_history_blame_and_release() {
    let (home, design) = farm();
    let author = home.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string();

    let shown = home.json(&["design", "show", &design]);
    assert_keys(&shown, &show_keys(DocKind::Design, false));
    assert_eq!(shown["id"], design.as_str());
    assert_eq!(shown["doc_kind"], "design");
    assert_eq!(shown["creator"], author.as_str());
    assert_eq!(shown["changes"], 1, "new with all its flags is one change");
    assert_eq!(shown["name"], "Roller crimper");
    assert_eq!(shown["stage"], "prototype");
    assert_eq!(shown["licence"]["hardware"], "CERN-OHL-S-2.0");
    assert_eq!(shown["licence"]["documentation"], "CC-BY-SA-4.0");
    assert_eq!(shown["licence"]["software"], Value::Null);
    assert_eq!(strs(&shown["tags"]), ["no-till", "cover crops"]);
    assert_eq!(
        strs(&shown["steps"]),
        [
            "Cut the tube to 1.6 m and cap both ends.",
            "Weld ten chevron blades around the drum."
        ]
    );
    let bom = shown["bom"].as_array().expect("bom");
    assert_eq!(bom.len(), 2);
    assert_keys(
        &bom[0],
        &["name", "quantity", "unit", "sourcing", "reference"],
    );
    assert_eq!(bom[0]["name"], "steel tube 406 mm");
    assert_eq!(bom[0]["quantity"], 1.0);
    assert_eq!(bom[0]["unit"], "pcs");
    assert_eq!(bom[0]["sourcing"], "scrap yard");
    assert_eq!(bom[0]["reference"], Value::Null);
    assert_eq!(bom[1]["quantity"], 12.0);
    assert_eq!(bom[1]["unit"], "m");
    assert_eq!(bom[1]["sourcing"], Value::Null);
    assert_eq!(shown["summary"], "");
    assert_eq!(shown["releases"], serde_json::json!({}));
    let created = strs(&shown["heads"]);
    assert_eq!(created.len(), 1);

    // One edit with many flags and the summary from standard input: one signed change.
    let summary = "A rolling drum with chevron blades that crimps a cover crop flat.\n";
    let out = home.run_with_stdin(
        &[
            "design",
            "edit",
            &design[..10],
            "--stdin",
            "summary",
            "--set",
            "stage=functional-prototype",
            "--edit-step",
            "2=Weld twelve chevron blades around the drum, 15 degrees apart.",
            "--step",
            "Mount the drum on a three-point hitch frame.",
            "--tag",
            "crimper",
            "--untag",
            "cover crops",
            "--add",
            "tools=angle grinder",
            "--contributor",
            "Bob:welder",
        ],
        summary.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first_edit = saved_change(&String::from_utf8_lossy(&out.stdout));

    // A text field from a UTF-8 file, keeping its lines and accents.
    let dir = tempfile::tempdir().expect("temp dir");
    let notes = dir.path().join("how.md");
    let how = "Le rouleau écrase le couvert végétal.\nThe blades crimp, not cut.\n";
    std::fs::write(&notes, how).expect("write notes");
    let reply = home.json(&[
        "design",
        "edit",
        &design,
        "--text-file",
        &format!("how_it_works={}", notes.display()),
    ]);
    assert_keys(&reply, &["id", "change"]);
    assert_eq!(reply["id"], design.as_str());
    let second_edit = reply["change"].as_str().expect("change").to_string();

    let third_edit = saved_change(&home.ok(&[
        "design",
        "edit",
        &design,
        "--append",
        "summary=It needs no herbicide.",
    ]));
    // An edit that changes nothing says so and writes nothing.
    let unchanged = home.json(&["design", "edit", &design, "--tag", "no-till"]);
    assert_eq!(unchanged["change"], Value::Null);
    assert_eq!(
        home.ok(&["design", "edit", &design, "--tag", "no-till"])
            .trim(),
        "nothing changed"
    );

    let shown = home.json(&["design", "show", &design]);
    assert_eq!(shown["changes"], 4);
    assert_eq!(shown["heads"], serde_json::json!([third_edit]));
    let full_summary = format!("{summary}It needs no herbicide.");
    assert_eq!(shown["summary"], full_summary.as_str());
    assert_eq!(shown["how_it_works"], how);
    assert_eq!(shown["stage"], "functional-prototype");
    assert_eq!(strs(&shown["tags"]), ["no-till", "crimper"]);
    assert_eq!(strs(&shown["tools"]), ["angle grinder"]);
    assert_eq!(shown["contributors"][0]["name"], "Bob");
    assert_eq!(shown["contributors"][0]["role"], "welder");
    let steps = strs(&shown["steps"]);
    assert_eq!(
        steps,
        [
            "Cut the tube to 1.6 m and cap both ends.",
            "Weld twelve chevron blades around the drum, 15 degrees apart.",
            "Mount the drum on a three-point hitch frame."
        ]
    );
    let human = home.ok(&["design", "show", &design]);
    assert!(human.contains("Roller crimper") && human.contains("3. Mount the drum"));

    // History: every change, oldest first, with its author and the fields it touched.
    let history = home.json(&["design", "history", &design]);
    let history = history.as_array().expect("history");
    assert_eq!(history.len(), 4);
    let hashes: Vec<&str> = history
        .iter()
        .map(|h| h["hash"].as_str().expect("hash"))
        .collect();
    assert_eq!(
        hashes,
        [
            created[0].as_str(),
            first_edit.as_str(),
            second_edit.as_str(),
            third_edit.as_str()
        ]
    );
    for entry in history {
        assert_keys(
            entry,
            &[
                "hash",
                "author",
                "author_name",
                "person",
                "device_name",
                "time",
                "fields",
                "signature",
                "made_in",
            ],
        );
        assert_eq!(entry["author"], author.as_str());
        assert_eq!(entry["author_name"], NAME);
        assert_eq!(entry["signature"], "signed");
        assert_eq!(entry["made_in"], design.as_str());
        // RFC 3339 in UTC, as every reply writes times.
        assert!(entry["time"].as_str().expect("time").ends_with('Z'));
        assert!(entry["time"].as_str().expect("time") > "2020-01-01T00:00:00Z");
    }
    let times: Vec<&str> = history
        .iter()
        .map(|h| h["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let fields: Vec<Vec<String>> = history.iter().map(|h| strs(&h["fields"])).collect();
    for field in ["name", "bom", "steps", "tags", "licence", "stage"] {
        assert!(fields[0].contains(&field.to_string()), "{:?}", fields[0]);
    }
    assert_eq!(
        fields[1],
        ["contributors", "stage", "steps", "summary", "tags", "tools"]
    );
    assert_eq!(fields[2], ["how_it_works"]);
    assert_eq!(fields[3], ["summary"]);
    let human = home.ok(&["design", "history", &design]);
    // Under a header that explains the signature column: one line per change.
    let rows: Vec<&str> = human
        .lines()
        .filter(|l| l.len() > 12 && l[..12].chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert_eq!(rows.len(), 4, "{human}");
    assert!(rows
        .iter()
        .all(|l| l.contains(NAME) && l.contains("signed")));

    // Blame: who wrote each part.
    let blame = home.json(&["design", "blame", &design, "summary"]);
    let spans = blame.as_array().expect("spans");
    for span in spans {
        assert_keys(
            span,
            &[
                "text",
                "change",
                "author",
                "author_name",
                "person",
                "device_name",
            ],
        );
        assert_eq!(span["author"], author.as_str());
        assert_eq!(span["author_name"], NAME);
    }
    let text: String = spans.iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert_eq!(text, full_summary);
    assert_eq!(spans.first().unwrap()["change"], first_edit.as_str());
    assert_eq!(spans.last().unwrap()["change"], third_edit.as_str());
    assert!(spans.last().unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("herbicide"));

    let blame = home.json(&["design", "blame", &design, "steps"]);
    let spans = blame.as_array().expect("spans");
    let texts: Vec<&str> = spans.iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert_eq!(texts, steps);
    assert_eq!(spans[0]["change"], created[0].as_str());
    assert_eq!(spans[2]["change"], first_edit.as_str());

    let blame = home.json(&["design", "blame", &design, "steps.1"]);
    let spans = blame.as_array().expect("spans");
    assert_eq!(spans.len(), 1, "step 1 was written once: {blame}");
    assert_eq!(spans[0]["text"], steps[0].as_str());
    assert_eq!(spans[0]["change"], created[0].as_str());

    let blame = home.json(&["design", "blame", &design, "steps.2"]);
    let spans = blame.as_array().expect("spans");
    let text: String = spans.iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert_eq!(text, steps[1]);
    let changes: BTreeSet<&str> = spans
        .iter()
        .map(|s| s["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        BTreeSet::from([created[0].as_str(), first_edit.as_str()]),
        "the rewrite keeps the untouched words' first author"
    );

    let blame = home.json(&["design", "blame", &design, "name"]);
    assert_eq!(blame[0]["text"], "Roller crimper");
    assert_eq!(blame[0]["change"], created[0].as_str());
    assert!(home
        .ok(&["design", "blame", &design, "steps"])
        .contains("Mount the drum"));

    // Release, edit on, and the release still shows the old state.
    let heads_at_release = home.json(&["design", "show", &design])["heads"].clone();
    let released = home.json(&["design", "release", &design, "--version", "1.0"]);
    assert_keys(&released, &["id", "version", "change"]);
    assert_eq!(released["version"], "1.0");
    home.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "name=Roller crimper XL",
        "--remove-step",
        "1",
        "--set",
        "licence.software=GPL-3.0-or-later",
    ]);
    let now = home.json(&["design", "show", &design]);
    assert_eq!(now["name"], "Roller crimper XL");
    assert_eq!(now["steps"].as_array().unwrap().len(), 2);
    assert_eq!(now["releases"]["1.0"]["heads"], heads_at_release);
    assert_eq!(now["releases"]["1.0"]["by"], author.as_str());
    assert_eq!(now["changes"], 6);

    let then = home.json(&["design", "show", &design, "--version", "1.0"]);
    assert_keys(&then, &show_keys(DocKind::Design, true));
    assert_eq!(then["release"], "1.0");
    assert_eq!(then["name"], "Roller crimper");
    assert_eq!(strs(&then["steps"]), steps);
    assert_eq!(then["licence"]["software"], Value::Null);
    assert_eq!(now["licence"]["software"], "GPL-3.0-or-later");
    assert_eq!(then["summary"], full_summary.as_str());
    assert!(home
        .ok(&["design", "show", &design, "--version", "1.0"])
        .contains("release: 1.0"));
    let error = home.fail(&["design", "release", &design, "--version", "1.0"]);
    assert!(error.contains("1.0"), "{error}");

    let list = home.json(&["design", "list"]);
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_keys(
        &list[0],
        &[
            "id",
            "title",
            "changes",
            "updated_at",
            "creator",
            "creator_name",
        ],
    );
    assert_eq!(list[0]["id"], design.as_str());
    assert_eq!(list[0]["title"], "Roller crimper XL");
    assert_eq!(list[0]["changes"], 6);
    assert!(home.ok(&["design", "list"]).contains("Roller crimper XL"));
    assert_clean(&home);
}

#[test]
fn forks_keep_share_alike_licences_and_know_their_lineage() {
    let (home, design) = farm();
    // Things that belong to the parent itself: its version, a release, a build record, an id elsewhere.
    home.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "version=1.0",
        "--set",
        "external_ids.farmhack=roller-crimper",
        "--built",
        "Drôme",
    ]);
    home.ok(&["design", "release", &design, "--version", "1.0"]);
    let parent = home.json(&["design", "show", &design]);
    let parent_history = home.json(&["design", "history", &design]);
    let before = home.json(&["design", "list"]);

    let error = home.fail(&["design", "fork", &design, "--licence", "hardware=MIT"]);
    assert_eq!(error.lines().count(), 1, "{error}");
    for word in ["share-alike", "CERN-OHL-S-2.0", "MIT", "--allow-relicense"] {
        assert!(error.contains(word), "`{word}` missing from: {error}");
    }
    assert_eq!(
        home.json(&["design", "list"]),
        before,
        "a refused fork stores nothing"
    );
    let error = home.fail(&[
        "design",
        "fork",
        &design,
        "--licence",
        "documentation=CC-BY-4.0",
    ]);
    assert!(error.contains("CC-BY-SA-4.0"), "{error}");
    assert_eq!(home.json(&["design", "list"]), before);

    let fork = home.json(&["design", "fork", &design, "--name", "Narrow crimper"]);
    assert_keys(&fork, &["id", "parent"]);
    assert_eq!(fork["parent"], design.as_str());
    let fork = id(&fork);
    let child = home.json(&["design", "show", &fork]);
    assert_eq!(child["name"], "Narrow crimper");
    assert_eq!(child["derivative_of"], design.as_str());
    assert_eq!(
        child["licence"], parent["licence"],
        "the licence is inherited"
    );
    assert_eq!(child["steps"], parent["steps"]);
    assert_eq!(child["bom"], parent["bom"]);
    assert_eq!(child["changes"], 4);
    // ...but not what belongs to the parent itself.
    assert_eq!(child["releases"], serde_json::json!({}));
    assert_eq!(child["version"], Value::Null);
    assert_eq!(child["built"], Value::Array(vec![]));
    assert_eq!(child["external_ids"], serde_json::json!({}));

    // The fork's history starts with the parent's signed changes.
    let history = home.json(&["design", "history", &fork]);
    let history = history.as_array().expect("history");
    assert_eq!(history.len(), 4);
    assert_eq!(
        &history[..3],
        &parent_history.as_array().expect("history")[..]
    );
    assert!(history[..3]
        .iter()
        .all(|h| h["made_in"] == design.as_str() && h["signature"] == "signed"));
    assert_eq!(history[3]["made_in"], fork.as_str());
    assert_eq!(
        strs(&history[3]["fields"]),
        [
            "built",
            "derivative_of",
            "external_ids",
            "name",
            "releases",
            "version"
        ]
    );

    // The fork names its own 1.0; the parent's 1.0 is still the parent's.
    home.ok(&["design", "release", &fork, "--version", "1.0"]);
    let fork_release = home.json(&["design", "show", &fork, "--version", "1.0"]);
    assert_eq!(fork_release["name"], "Narrow crimper");
    let parent_release = home.json(&["design", "show", &design, "--version", "1.0"]);
    assert_eq!(parent_release["name"], "Roller crimper");
    assert_eq!(parent_release["version"], "1.0");

    let relicensed = id(&home.json(&[
        "design",
        "fork",
        &design,
        "--licence",
        "hardware=MIT",
        "--allow-relicense",
    ]));
    let shown = home.json(&["design", "show", &relicensed]);
    assert_eq!(shown["licence"]["hardware"], "MIT");
    assert_eq!(shown["licence"]["documentation"], "CC-BY-SA-4.0");
    assert_eq!(shown["derivative_of"], design.as_str());
    assert_eq!(shown["name"], "Roller crimper (fork)");
    let history = home.json(&["design", "history", &relicensed]);
    assert_eq!(
        strs(&history[3]["fields"]),
        [
            "built",
            "derivative_of",
            "external_ids",
            "licence",
            "name",
            "releases",
            "version"
        ]
    );

    // Fork and parent evolve apart.
    home.ok(&["design", "edit", &fork, "--step", "Use a 30 cm drum."]);
    home.ok(&["design", "edit", &design, "--set", "stage=in-use"]);
    assert_eq!(
        home.json(&["design", "show", &design])["steps"],
        parent["steps"]
    );
    assert_eq!(home.json(&["design", "show", &fork])["stage"], "prototype");

    let grandchild = home
        .ok(&["design", "fork", &fork, "--name", "Tiny crimper"])
        .trim()
        .to_string();
    let lineage = home.json(&["design", "lineage", &grandchild]);
    assert_keys(&lineage, &["id", "ancestors", "derivatives"]);
    let ancestors = lineage["ancestors"].as_array().expect("ancestors");
    assert_eq!(ancestors.len(), 2, "{lineage}");
    for ancestor in ancestors {
        assert_keys(ancestor, &["id", "name"]);
    }
    assert_eq!(ancestors[0]["id"], fork.as_str(), "nearest first");
    assert_eq!(ancestors[0]["name"], "Narrow crimper");
    assert_eq!(ancestors[1]["id"], design.as_str());
    assert_eq!(ancestors[1]["name"], "Roller crimper");
    assert_eq!(lineage["derivatives"], Value::Array(vec![]));
    assert_eq!(
        home.json(&["design", "show", &grandchild])["steps"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "the grandchild starts from the fork's own edits"
    );

    let lineage = home.json(&["design", "lineage", &design]);
    assert_eq!(lineage["ancestors"], Value::Array(vec![]));
    let derivatives = lineage["derivatives"].as_array().expect("derivatives");
    for derivative in derivatives {
        assert_keys(derivative, &["id", "name", "parent"]);
    }
    let found: BTreeSet<(String, String)> = derivatives
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["parent"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        BTreeSet::from([
            (fork.clone(), design.clone()),
            (relicensed.clone(), design.clone()),
            (grandchild.clone(), fork.clone()),
        ])
    );
    let human = home.ok(&["design", "lineage", &grandchild]);
    assert!(human.contains("Narrow crimper") && human.contains(&design));
    assert_eq!(home.json(&["design", "list"]).as_array().unwrap().len(), 4);
    assert_clean(&home);
}

#[test]
fn events_and_notes() {
    let (home, design) = farm();
    let event = home
        .ok(&[
            "event",
            "new",
            "Build day: roller crimpers",
            "--set",
            "kind=build",
            "--set",
            "start=2026-03-14",
            "--set",
            "end=2026-03-15T17:00",
            "--set",
            "location.name=Ferme des Trois Chênes",
            "--set",
            "location.country=FR",
            "--set",
            "location.lat=44.73",
            "--add",
            &format!("designs={design}"),
            "--add",
            "activities=build",
        ])
        .trim()
        .to_string();
    let shown = home.json(&["event", "show", &event]);
    assert_keys(&shown, &show_keys(DocKind::Event, false));
    assert_eq!(shown["doc_kind"], "event");
    assert_eq!(
        shown["kind"], "build",
        "the event's own kind is not the document kind"
    );
    assert_eq!(shown["title"], "Build day: roller crimpers");
    assert_eq!(shown["start"], "2026-03-14");
    assert_eq!(shown["end"], "2026-03-15T17:00");
    assert_eq!(shown["location"]["name"], "Ferme des Trois Chênes");
    assert_eq!(shown["location"]["country"], "FR");
    assert_eq!(shown["location"]["lat"], 44.73);
    assert_eq!(shown["location"]["lon"], Value::Null);
    assert_eq!(strs(&shown["designs"]), std::slice::from_ref(&design));
    assert_eq!(strs(&shown["activities"]), ["build"]);

    let edited = home.json(&[
        "event",
        "edit",
        &event,
        "--set",
        "status=done",
        "--outcome",
        "units-built:3 rollers",
        "--append",
        "summary=Two drums built.",
    ]);
    assert!(edited["change"].is_string());
    let shown = home.json(&["event", "show", &event]);
    assert_eq!(shown["status"], "done");
    assert_eq!(shown["summary"], "Two drums built.");
    assert_eq!(
        shown["outcomes"],
        serde_json::json!([{"kind": "units-built", "detail": "3 rollers"}])
    );
    assert_eq!(shown["changes"], 2);
    let human = home.ok(&["event", "show", &event]);
    assert!(
        human.contains("kind: build") && human.contains("2026-03-14"),
        "{human}"
    );
    let events = home.json(&["event", "list"]);
    let events = events.as_array().expect("events");
    assert_eq!(events.len(), 1);
    assert_keys(
        &events[0],
        &[
            "id",
            "title",
            "changes",
            "updated_at",
            "creator",
            "creator_name",
            "kind",
            "start",
            "end",
            "location",
        ],
    );
    assert_eq!(events[0]["title"], "Build day: roller crimpers");

    // Notes from --text, from a file and from standard input.
    let brainstorm = id(&home.json(&[
        "note",
        "add",
        "--on",
        &event,
        "--kind",
        "brainstorm",
        "--text",
        "Blades dull fast on stony ground.",
    ]));
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("log.txt");
    std::fs::write(&log, "Built two drums; the second crimps rye better.\n").expect("write");
    let build_log = home
        .ok(&[
            "note",
            "add",
            "--on",
            &design[..8],
            "--kind",
            "build-log",
            "--file",
            log.to_str().unwrap(),
        ])
        .trim()
        .to_string();
    let out = home.run_with_stdin(&["note", "add", "--on", &event], b"Who brings the welder?");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let question = String::from_utf8_lossy(&out.stdout).trim().to_string();

    home.ok(&[
        "note",
        "edit",
        &brainstorm,
        "--append",
        " Try hardened flat bar.",
    ]);
    home.ok(&[
        "note",
        "edit",
        &question,
        "--text",
        "Who brings the MIG welder?",
    ]);
    let note = home.json(&["note", "show", &brainstorm]);
    assert_keys(&note, &show_keys(DocKind::Note, false));
    assert_eq!(note["doc_kind"], "note");
    assert_eq!(note["kind"], "brainstorm", "the note's own kind is kept");
    assert_eq!(note["target"], event.as_str());
    assert_eq!(
        note["body"],
        "Blades dull fast on stony ground. Try hardened flat bar."
    );
    assert_eq!(note["changes"], 2);
    let note = home.json(&["note", "show", &question]);
    assert_eq!(note["kind"], "comment");
    assert_eq!(note["body"], "Who brings the MIG welder?");
    let note = home.json(&["note", "show", &build_log]);
    assert_eq!(note["kind"], "build-log");
    assert_eq!(note["target"], design.as_str());
    assert_eq!(
        note["body"],
        "Built two drums; the second crimps rye better.\n"
    );
    assert!(home
        .ok(&["note", "show", &brainstorm])
        .contains("kind: brainstorm"));

    let ids = |args: &[&str]| -> BTreeSet<String> {
        home.json(args)
            .as_array()
            .expect("list")
            .iter()
            .map(|n| {
                assert_keys(
                    n,
                    &[
                        "id",
                        "title",
                        "changes",
                        "updated_at",
                        "creator",
                        "creator_name",
                        "kind",
                        "target",
                    ],
                );
                n["id"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(
        ids(&["note", "list", "--on", &event]),
        BTreeSet::from([brainstorm.clone(), question.clone()])
    );
    assert_eq!(
        ids(&["note", "list", "--on", &design]),
        BTreeSet::from([build_log.clone()])
    );
    assert_eq!(ids(&["note", "list"]).len(), 3);

    let commons = home.json(&["commons", "show"]);
    assert_eq!(
        commons["documents"],
        serde_json::json!({"design": 1, "event": 1, "note": 3, "profile": 1})
    );
    assert_clean(&home);
}
