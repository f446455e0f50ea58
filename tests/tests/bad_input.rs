//! Bad input through the real binary: every refusal exits non-zero, prints one
//! line on standard error that names the problem, and leaves the home exactly
//! as it was (same `--json` state, same bytes on disk).
//!
//! ```text
//!   state + files  ->  hedgerow <bad input>  ->  exit != 0, "error: ..." (1 line)
//!                                                state + files unchanged
//! ```

use hedgerow_node::home::Home;
use hedgerow_node::store::Store;
use hedgerow_node::Replicas;
use hedgerow_protocol::schema::{MAX_STEP_BYTES, MAX_TAG_BYTES, MAX_TEXT_BYTES, MAX_TITLE_BYTES};
use hedgerow_protocol::{CommonsId, DocGenesis, DocId};
use hedgerow_tests::TestHome;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// A home with a commons, a design, an event and a note on the event.
struct Farm {
    home: TestHome,
    design: String,
    event: String,
    note: String,
    scratch: tempfile::TempDir,
    /// The files of the home and the state they render to, from the last check.
    known: std::cell::RefCell<Option<(Files, Value)>>,
}

/// Every file of a home with its bytes.
type Files = Vec<(std::path::PathBuf, Vec<u8>)>;

impl Farm {
    fn new() -> Self {
        let home = TestHome::init("Alice");
        home.ok(&["commons", "create", "Farm Hack tools"]);
        let design = home
            .ok(&[
                "design",
                "new",
                "Roller crimper",
                "--step",
                "Cut the tube.",
                "--set",
                "licence.hardware=CERN-OHL-S-2.0",
                "--set",
                "summary=Crimps cover crops.",
            ])
            .trim()
            .to_string();
        let event = home
            .ok(&["event", "new", "Build day", "--set", "start=2026-03-14"])
            .trim()
            .to_string();
        let note = home
            .ok(&["note", "add", "--on", &event, "--text", "Bring gloves."])
            .trim()
            .to_string();
        Self {
            home,
            design,
            event,
            note,
            scratch: tempfile::tempdir().expect("scratch dir"),
            known: std::cell::RefCell::new(None),
        }
    }

    /// Everything the home holds, as the CLI reports it.
    fn state(&self) -> Value {
        let h = &self.home;
        json!({
            "commons": h.json(&["commons", "list"]),
            "designs": h.json(&["design", "list"]),
            "design": h.json(&["design", "show", &self.design]),
            "history": h.json(&["design", "history", &self.design]),
            "events": h.json(&["event", "list"]),
            "event": h.json(&["event", "show", &self.event]),
            "notes": h.json(&["note", "list"]),
            "note": h.json(&["note", "show", &self.note]),
            "verify": h.json(&["verify"]),
        })
    }

    /// A file in the scratch directory (outside the home).
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        path.to_str().expect("utf-8 path").to_string()
    }

    /// Runs a bad command and checks the refusal; returns the error line.
    fn refused(&self, args: &[&str], stdin: Option<&[u8]>, words: &[&str]) -> String {
        let files = self.home.snapshot_files();
        // The same bytes render the same state: reuse the last check's when nothing changed since.
        let state = match self.known.take() {
            Some((known_files, state)) if known_files == files => state,
            _ => self.state(),
        };
        let files = self.home.snapshot_files();
        let out = match stdin {
            Some(bytes) => self.home.run_with_stdin(args, bytes),
            None => self.home.run(args),
        };
        let line = assert_one_line_error(&out, args, words);
        assert!(
            self.home.snapshot_files() == files,
            "hedgerow {args:?} changed files in the home"
        );
        assert_eq!(self.state(), state, "hedgerow {args:?} changed the store");
        *self.known.borrow_mut() = Some((self.home.snapshot_files(), state));
        line
    }
}

/// Asserts a failed run with exactly one `error: ...` line naming every word in `words`.
fn assert_one_line_error(out: &std::process::Output, args: &[&str], words: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "hedgerow {args:?} should fail; printed {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "hedgerow {args:?} must print one line, got:\n{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for word in words {
        assert!(
            stderr.contains(word),
            "hedgerow {args:?}: `{word}` missing from: {stderr}"
        );
    }
    assert!(out.stdout.is_empty(), "nothing on stdout for a refusal");
    stderr.trim().to_string()
}

/// No part of the message may be printed twice (a cause repeated after its context).
fn assert_not_repeated(line: &str, part: &str) {
    assert_eq!(
        line.matches(part).count(),
        1,
        "repeated `{part}` in: {line}"
    );
}

#[test]
fn unknown_ids_prefixes_and_kinds() {
    let farm = Farm::new();
    let unknown = "9zzzzzzzzzzzzzzzzz";
    for args in [
        vec!["design", "show", unknown],
        vec!["design", "edit", unknown, "--tag", "x"],
        vec!["design", "history", unknown],
        vec!["design", "blame", unknown, "summary"],
        vec!["design", "fork", unknown],
        vec!["design", "lineage", unknown],
        vec!["design", "release", unknown, "--version", "1.0"],
    ] {
        farm.refused(&args, None, &["no design matches", unknown]);
    }
    farm.refused(&["event", "show", unknown], None, &["no event matches"]);
    farm.refused(&["note", "show", unknown], None, &["no note matches"]);
    farm.refused(
        &["note", "add", "--on", unknown, "--text", "hello"],
        None,
        &["no document matches", unknown],
    );
    farm.refused(
        &["design", "list", "--commons", unknown],
        None,
        &["no commons matches"],
    );
    farm.refused(&["commons", "show", unknown], None, &["no commons matches"]);

    for short in ["abc", "1", ""] {
        farm.refused(
            &["design", "show", short],
            None,
            &["too short", "at least 4 characters"],
        );
    }

    // An id of another kind.
    farm.refused(
        &["event", "show", &farm.design],
        None,
        &[&farm.design, "is a design, not an event"],
    );
    farm.refused(
        &["design", "edit", &farm.event, "--set", "name=x"],
        None,
        &["is an event, not a design"],
    );
    farm.refused(
        &["design", "fork", &farm.event],
        None,
        &["is an event, not a design"],
    );
    farm.refused(
        &[
            "note",
            "add",
            "--on",
            &farm.note,
            "--text",
            "a note on a note",
        ],
        None,
        &["notes belong to a design or an event", "note"],
    );
    farm.refused(
        &["design", "show", &farm.design, "--version", "9.9"],
        None,
        &["no release `9.9`"],
    );
}

#[test]
fn ambiguous_prefix() {
    let farm = Farm::new();
    let commons: CommonsId = farm.home.json(&["commons", "list"])[0]["id"]
        .as_str()
        .expect("commons id")
        .parse()
        .expect("commons id parses");
    // Two designs whose ids share their first four characters: found by trying nonces.
    let home = Home::open(farm.home.path()).expect("home opens");
    let mut seen: HashMap<String, DocGenesis> = HashMap::new();
    let (first, second) = (0u64..)
        .find_map(|n| {
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&n.to_le_bytes());
            let genesis = DocGenesis {
                commons,
                kind: hedgerow_protocol::schema::DocKind::Design,
                creator: home.key().author(),
                created_at: 1_700_000_000,
                nonce,
                fork: None,
            };
            let prefix = genesis.id().to_string()[..4].to_string();
            match seen.remove(&prefix) {
                Some(other) => Some((other, genesis)),
                None => {
                    seen.insert(prefix, genesis);
                    None
                }
            }
        })
        .expect("a shared prefix");
    {
        let mut replicas = Replicas::open(&home).expect("store opens");
        for genesis in [first.clone(), second.clone()] {
            let signed = genesis.sign(home.key());
            let id: DocId = signed.body.id();
            // A document exists from its first change: write each one's skeleton.
            let mut replica = hedgerow_protocol::DocReplica::new(signed.clone()).expect("genesis");
            let (_, made) = replica
                .edit(home.key(), 1_700_000_000, |tx| {
                    hedgerow_protocol::schema::init_document(
                        tx,
                        &hedgerow_protocol::schema::NewDocument::new(
                            hedgerow_protocol::schema::DocKind::Design,
                            "Crimper",
                        ),
                    )
                })
                .expect("skeleton");
            let hash = made.expect("a change").1.hash;
            let (changes, proofs) = replica.compact_for(&[hash]).expect("compact");
            let proofs = proofs.into_iter().map(|(h, p)| (h.0, p)).collect();
            replicas
                .ingest_compact(Some(&signed), &id, &changes, proofs)
                .expect("document accepted");
        }
        replicas.commit().expect("flushed");
    }
    let (a, b) = (first.id().to_string(), second.id().to_string());
    let prefix = &a[..4];
    farm.refused(
        &["design", "show", prefix],
        None,
        &[&format!("`{prefix}` matches 2 designs"), "more characters"],
    );
    farm.refused(
        &["design", "edit", prefix, "--tag", "x"],
        None,
        &["matches 2 designs"],
    );
    // A longer prefix picks one.
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let shown = farm.home.json(&["design", "show", &a[..common + 1]]);
    assert_eq!(shown["id"], a.as_str());
    assert_eq!(shown["changes"], 1);
    assert_eq!(farm.home.json(&["verify"])["problems"], json!([]));
}

#[test]
fn invalid_fields_and_values() {
    let farm = Farm::new();
    let d = farm.design.as_str();
    farm.refused(
        &["design", "edit", d, "--set", "colour=red"],
        None,
        &["unknown field `colour`", "known fields", "licence"],
    );
    farm.refused(
        &["design", "edit", d, "--set", "licence.colour=red"],
        None,
        &["unknown field", "licence.colour"],
    );
    farm.refused(
        &["event", "edit", &farm.event, "--set", "colour=red"],
        None,
        &["unknown field `colour` for an event"],
    );
    let line = farm.refused(
        &[
            "design",
            "edit",
            d,
            "--set",
            "licence.hardware=Not-A-Licence",
        ],
        None,
        &[
            "Not-A-Licence",
            "not a valid SPDX expression",
            "licence.hardware",
        ],
    );
    assert_not_repeated(&line, "not a valid SPDX expression");
    farm.refused(
        &[
            "design",
            "new",
            "Grelinette",
            "--set",
            "licence.hardware=MIT OR",
        ],
        None,
        &["not a valid SPDX expression"],
    );
    farm.refused(
        &["design", "edit", d, "--set", "stage=flying"],
        None,
        &["`flying` is not a valid stage", "prototype"],
    );
    farm.refused(
        &["event", "edit", &farm.event, "--set", "start=2026-13-45"],
        None,
        &["2026-13-45", "not a date"],
    );
    farm.refused(
        &["event", "edit", &farm.event, "--set", "end=2026-03-01"],
        None,
        &["before it starts"],
    );
    farm.refused(
        &["design", "edit", d, "--edit-step", "9=Weld"],
        None,
        &["build step 9 does not exist", "1 steps"],
    );
    farm.refused(
        &["design", "edit", d, "--edit-step", "two=Weld"],
        None,
        &["--edit-step", "not a step number"],
    );
    farm.refused(
        &["design", "edit", d, "--bom-line", "steel;lots;m"],
        None,
        &["--bom-line", "lots"],
    );
    farm.refused(
        &["design", "edit", d, "--set", "nothing-here"],
        None,
        &["--set expects FIELD=VALUE"],
    );
    farm.refused(
        &["design", "edit", d],
        None,
        &["nothing to change", "--set"],
    );
    farm.refused(
        &["design", "fork", d, "--licence", "hardware=MIT"],
        None,
        &["share-alike", "--allow-relicense"],
    );
    farm.refused(
        &["design", "release", d, "--version", "has space"],
        None,
        &["has space"],
    );
    farm.refused(
        &[
            "note",
            "add",
            "--on",
            &farm.event,
            "--kind",
            "rant",
            "--text",
            "x",
        ],
        None,
        &["`rant` is not a valid kind", "brainstorm"],
    );
}

#[test]
fn values_over_their_limits() {
    let farm = Farm::new();
    let d = farm.design.as_str();
    let name = "n".repeat(MAX_TITLE_BYTES + 1);
    farm.refused(
        &["design", "edit", d, "--set", &format!("name={name}")],
        None,
        &[
            "`name` is",
            &format!("{} bytes long", MAX_TITLE_BYTES + 1),
            &format!("limit is {MAX_TITLE_BYTES} bytes"),
        ],
    );
    farm.refused(
        &["design", "new", &name],
        None,
        &[&format!("limit is {MAX_TITLE_BYTES} bytes")],
    );
    // Exactly at the limit is fine (on a new design, so the farm's state stays as it was).
    let at_limit = "é".repeat(MAX_TITLE_BYTES / 2);
    let made = farm.home.ok(&["design", "new", &at_limit]);
    let made = made.trim();
    assert_eq!(
        farm.home.json(&["design", "show", made])["name"],
        at_limit.as_str()
    );
    let tag = "t".repeat(MAX_TAG_BYTES + 1);
    farm.refused(
        &["design", "edit", d, "--tag", &tag],
        None,
        &[&format!("limit is {MAX_TAG_BYTES} bytes")],
    );
    let step = "s".repeat(MAX_STEP_BYTES + 1);
    farm.refused(
        &["design", "edit", d, "--step", &step],
        None,
        &[&format!("limit is {MAX_STEP_BYTES} bytes")],
    );
    // Prose too long for a command line comes from a file or standard input.
    let prose = "p".repeat(MAX_TEXT_BYTES + 1);
    let path = farm.file("long.md", prose.as_bytes());
    farm.refused(
        &[
            "design",
            "edit",
            d,
            "--text-file",
            &format!("summary={path}"),
        ],
        None,
        &["`summary` is", &format!("limit is {MAX_TEXT_BYTES} bytes")],
    );
    farm.refused(
        &["design", "edit", d, "--stdin", "problem"],
        Some(prose.as_bytes()),
        &["`problem` is", &format!("limit is {MAX_TEXT_BYTES} bytes")],
    );
    farm.refused(
        &["note", "edit", &farm.note],
        Some(prose.as_bytes()),
        &["`body` is", &format!("limit is {MAX_TEXT_BYTES} bytes")],
    );
    // Appending past the limit is refused as well.
    let almost = "a".repeat(MAX_TEXT_BYTES - 10);
    let path = farm.file("almost.md", almost.as_bytes());
    let long = farm.home.ok(&[
        "design",
        "new",
        "Long one",
        "--text-file",
        &format!("summary={path}"),
    ]);
    farm.refused(
        &[
            "design",
            "edit",
            long.trim(),
            "--append",
            "summary=eleven byte",
        ],
        None,
        &["`summary` is", &format!("limit is {MAX_TEXT_BYTES} bytes")],
    );
    farm.home.ok(&[
        "design",
        "edit",
        long.trim(),
        "--append",
        "summary=ten bytes!",
    ]);
}

#[test]
fn text_that_is_not_utf8() {
    let farm = Farm::new();
    let d = farm.design.as_str();
    let latin1 = b"Le rouleau \xe9crase le couvert.";
    let path = farm.file("latin1.txt", latin1);
    farm.refused(
        &[
            "design",
            "edit",
            d,
            "--text-file",
            &format!("summary={path}"),
        ],
        None,
        &[&path, "not UTF-8", "offset 11"],
    );
    farm.refused(
        &["design", "edit", d, "--stdin", "summary"],
        Some(latin1),
        &["standard input is not UTF-8", "offset 11"],
    );
    farm.refused(
        &["note", "add", "--on", &farm.event, "--file", &path],
        None,
        &["not UTF-8"],
    );
    farm.refused(
        &["note", "add", "--on", &farm.event],
        Some(b"\xff\xfe\x00n\x00o\x00t\x00e"),
        &["standard input is not UTF-8"],
    );
    farm.refused(
        &["note", "edit", &farm.note, "--file", &path],
        None,
        &["not UTF-8"],
    );
    let missing = farm.scratch.path().join("missing.md");
    farm.refused(
        &[
            "design",
            "edit",
            d,
            "--text-file",
            &format!("summary={}", missing.display()),
        ],
        None,
        &["cannot read", "missing.md"],
    );
}

/// Runs `args` against a directory that is not a usable home and checks it is left alone.
fn refused_outside_a_home(dir: &Path, args: &[&str], words: &[&str]) {
    let before = listing(dir);
    let out = std::process::Command::new(hedgerow_tests::hedgerow_bin())
        .arg("--home")
        .arg(dir)
        .args(args)
        .env_remove("HEDGEROW_HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run hedgerow");
    assert_one_line_error(&out, args, words);
    assert_eq!(listing(dir), before, "hedgerow {args:?} wrote into {dir:?}");
}

fn listing(dir: &Path) -> Option<Vec<(String, Vec<u8>)>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut out: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    Some(out)
}

#[test]
fn homes_that_are_missing_foreign_or_already_made() {
    let scratch = tempfile::tempdir().expect("scratch");
    let foreign = scratch.path().join("photos");
    std::fs::create_dir(&foreign).expect("mkdir");
    std::fs::write(foreign.join("crimper.jpg"), b"\xff\xd8\xff not really").expect("write");
    for args in [
        vec!["design", "list"],
        vec!["whoami"],
        vec!["verify"],
        vec!["commons", "create", "X"],
    ] {
        refused_outside_a_home(
            &foreign,
            &args,
            &[
                &foreign.display().to_string(),
                "is not a Hedgerow home",
                "hedgerow init",
            ],
        );
    }
    let missing = scratch.path().join("nowhere");
    for args in [
        vec!["design", "list"],
        vec!["verify"],
        vec!["serve", "--no-mdns"],
    ] {
        refused_outside_a_home(
            &missing,
            &args,
            &["no Hedgerow home at", "nowhere", "hedgerow init"],
        );
    }
    assert!(
        !missing.exists(),
        "a missing home is not created by reading it"
    );
    refused_outside_a_home(
        &scratch.path().join("bad-name"),
        &["init", "--name", ""],
        &["display name"],
    );
    assert!(!scratch.path().join("bad-name").join("device.key").exists());

    // init twice keeps the first key.
    let farm = Farm::new();
    let me = farm.home.json(&["whoami"]);
    let key = std::fs::read(farm.home.path().join("device.key")).expect("key");
    farm.refused(
        &["init", "--name", "Mallory"],
        None,
        &["already a Hedgerow home", "refuses to replace"],
    );
    assert_eq!(
        std::fs::read(farm.home.path().join("device.key")).expect("key"),
        key
    );
    assert_eq!(farm.home.json(&["whoami"]), me);
}

#[test]
fn store_held_by_another_process() {
    let farm = Farm::new();
    let state = farm.state();
    let files = farm.home.snapshot_files();
    {
        // This test process plays the other hedgerow: it holds the sled lock.
        let _held = Store::open(&farm.home.path().join("store")).expect("store opens");
        for args in [
            vec!["design", "list"],
            vec!["design", "edit", &farm.design, "--tag", "locked"],
            vec!["verify"],
            vec!["commons", "create", "Second"],
        ] {
            // A short wait (the default is 60 s) keeps the test quick; the refusal is the same.
            let out = farm
                .home
                .command()
                .env("HEDGEROW_WAIT", "1")
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run hedgerow");
            assert_one_line_error(&out, &args, &["in use by another hedgerow process"]);
        }
        let out = farm
            .home
            .command()
            .env("HEDGEROW_WAIT", "soon")
            .args(["design", "list"])
            .output()
            .expect("run hedgerow");
        assert_one_line_error(&out, &["design", "list"], &["HEDGEROW_WAIT", "`soon`"]);
    }
    assert!(
        farm.home.snapshot_files() == files,
        "a refused command wrote to a locked store"
    );
    assert_eq!(farm.state(), state);
}

#[test]
fn refusals_through_a_running_node_are_the_same() {
    let farm = Farm::new();
    let Farm {
        home,
        design,
        event,
        note,
        scratch,
        ..
    } = farm;
    let node = hedgerow_tests::net::ServeNode::start(home, &[]);
    let state = |node: &TestHome| {
        json!({
            "designs": node.json(&["design", "list"]),
            "design": node.json(&["design", "show", &design]),
            "history": node.json(&["design", "history", &design]),
            "event": node.json(&["event", "show", &event]),
            "note": node.json(&["note", "show", &note]),
        })
    };
    let before = state(&node);
    let latin1 = scratch.path().join("latin1.txt");
    std::fs::write(&latin1, b"\xe9t\xe9").expect("write");
    let text_file = format!("summary={}", latin1.display());
    /// Arguments, standard input, words the error must name.
    type Case<'a> = (Vec<&'a str>, Option<&'a [u8]>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec!["design", "edit", &design, "--set", "colour=red"],
            None,
            vec!["unknown field `colour`"],
        ),
        (
            vec!["design", "edit", &design, "--set", "licence.hardware=BAD"],
            None,
            vec!["not a valid SPDX expression"],
        ),
        (vec!["design", "show", "abc"], None, vec!["too short"]),
        (
            vec!["design", "show", "9zzzzzzzzz"],
            None,
            vec!["no design matches"],
        ),
        (
            vec!["event", "show", &design],
            None,
            vec!["is a design, not an event"],
        ),
        (
            vec!["design", "edit", &design, "--text-file", &text_file],
            None,
            vec!["not UTF-8"],
        ),
        (
            vec!["note", "edit", &note],
            Some(&b"\xff\xfe"[..]),
            vec!["standard input is not UTF-8"],
        ),
        (
            vec!["design", "fork", &design, "--licence", "hardware=MIT"],
            None,
            vec!["share-alike"],
        ),
        (
            vec!["init", "--name", "Mallory"],
            None,
            vec!["already a Hedgerow home"],
        ),
    ];
    for (args, stdin, words) in cases {
        let out = match stdin {
            Some(bytes) => node.run_with_stdin(&args, bytes),
            None => node.run(&args),
        };
        assert_one_line_error(&out, &args, &words);
        assert_eq!(state(&node), before, "hedgerow {args:?} changed the node");
    }
    // And the node still takes a good edit.
    assert!(node
        .ok(&["design", "edit", &design, "--tag", "fine"])
        .starts_with("saved change"));
}
