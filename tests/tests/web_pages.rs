//! The web page in a real browser: headless Chromium (Debian's `chromium`) driven by
//! playwright-core under Node.js (`tests/js/web/browse.mjs`), against the real binary's
//! `serve --no-mdns --web 127.0.0.1:0`.
//!
//! Why playwright-core and not a WebDriver crate: it is one npm package with no dependencies
//! that drives the system's Chromium over CDP (no browser download), it waits on page state
//! (a live update arriving) without sleeps, and axe-core, the accessibility checker, is
//! JavaScript anyway; a WebDriver crate would add a dozen crates to every build and still need
//! chromedriver and a JS injection for axe.
//!
//! Outside CI the test skips with a message when Chromium, Node.js or the scripts'
//! `node_modules` are missing; `.ci/run` installs them and sets `HEDGEROW_REQUIRE_BROWSER=1`,
//! which turns the skip into a failure. Screenshots land in `target/web-screenshots/`.

use hedgerow_tests::skip::skip;
use hedgerow_tests::web::{browser_missing, run_node, WebNode, REQUIRE_BROWSER_ENV};
use hedgerow_tests::{hedgerow_bin, id, TestHome};
use serde_json::Value;
use std::path::PathBuf;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("js")
        .join("web")
}

/// `target/web-screenshots`, beside the test executables' `debug` directory.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .expect("target directory");
    target.join("web-screenshots")
}

#[test]
fn a_browser_browses_searches_sees_live_changes_and_hostile_text_stays_inert() {
    if let Some(why) = browser_missing(&js_dir()) {
        if std::env::var(REQUIRE_BROWSER_ENV).as_deref() == Ok("1") {
            panic!("{why}, and {REQUIRE_BROWSER_ENV}=1 requires the browser tests to run");
        }
        skip("web_pages", &why);
        return;
    }
    let home = TestHome::init("Ada Farmer");
    let commons = id(&home.json(&[
        "commons",
        "create",
        "Atelier",
        "--description",
        "Tools we build together",
    ]));
    let design = id(&home.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=Crimps a cover crop flat so it can be planted into without tillage",
        "--set",
        "stage=prototype",
        "--set",
        "licence.hardware=CERN-OHL-S-2.0",
        "--tag",
        "no-till",
        "--bom-line",
        "steel tube 406 mm;1;pcs;scrap yard",
        "--bom-line",
        "flat bar 50x6;12;m;",
        "--step",
        "Cut the tube to 1.6 m and cap both ends",
        "--step",
        "Weld twelve chevron blades around the drum, 15 degrees apart",
    ]));
    home.ok(&["design", "release", &design, "--version", "1.0"]);
    for name in ["Seed drill", "Wheel hoe", "Potato ridger"] {
        home.ok(&[
            "design",
            "new",
            name,
            "--set",
            "stage=idea",
            "--step",
            "Sketch it",
        ]);
    }
    let event = id(&home.json(&[
        "event",
        "new",
        "Build day: roller crimpers",
        "--set",
        "start=2026-03-14",
        "--set",
        "location.name=Ferme des Trois Chênes",
    ]));
    home.ok(&[
        "note",
        "add",
        "--on",
        &event,
        "--kind",
        "build-log",
        "--text",
        "Built two drums",
    ]);
    let hostile = id(&home.json(&[
        "design",
        "new",
        "<script>alert('name')</script>",
        "--set",
        "summary=<img src=x onerror=alert(1)>",
        "--step",
        "<script>document.title='pwned'</script>",
    ]));
    home.ok(&[
        "note",
        "add",
        "--on",
        &hostile,
        "--text",
        "<script>alert('note')</script>",
    ]);
    let huge = "<svg onload=alert(1)> ".repeat(10_000);
    let huge_file = home.path().join("huge-note.txt");
    std::fs::write(&huge_file, &huge).expect("write the huge note");
    let out = home.run(&[
        "note",
        "add",
        "--on",
        &hostile,
        "--file",
        huge_file.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let read_only_home = TestHome::init("Hub");
    read_only_home.ok(&["commons", "create", "Public hub"]);
    let read_only = WebNode::start(read_only_home, true);
    let node = WebNode::start(home, false);
    let shots = screenshot_dir();
    let output = run_node(
        &js_dir(),
        "browse.mjs",
        &[
            ("WEB_URL", node.url()),
            ("READ_ONLY_URL", read_only.url()),
            ("HEDGEROW_BIN", hedgerow_bin().display().to_string()),
            ("NODE_HOME", node.home.path().display().to_string()),
            ("COMMONS", commons.clone()),
            ("DESIGN", design.clone()),
            ("EVENT", event.clone()),
            ("HOSTILE_DESIGN", hostile.clone()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    );
    let results: Value = serde_json::from_str(output.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("browse.mjs printed no results ({e}):\n{output}"));
    eprintln!("browser results: {results}");
    for (page, bytes) in results["weights"].as_object().expect("weights") {
        let bytes = bytes.as_u64().expect("bytes");
        assert!(
            bytes > 1000 && bytes < 100 * 1024,
            "{page} weighs {bytes} bytes"
        );
    }
    for (page, violations) in results["axe"].as_object().expect("axe") {
        assert_eq!(
            violations.as_array().map(Vec::len),
            Some(0),
            "axe on {page}: {violations}"
        );
    }
    assert_eq!(results["hostile"]["dialogs"], 0);
    assert_eq!(results["read_only"]["status"], 403);
    for shot in results["screenshots"].as_array().expect("screenshots") {
        let file = shots.join(shot.as_str().expect("name"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 1000,
            "screenshot {} is missing or empty",
            file.display()
        );
    }
    // What the browser saw arrive live is in the store, as the CLI shows it.
    let notes = node.json(&["note", "list", "--on", &event]);
    assert_eq!(notes.as_array().map(Vec::len), Some(2), "{notes}");
}

/// Skips (or fails under `HEDGEROW_REQUIRE_BROWSER=1`) when the browser cannot run here.
fn browser_or_skip(test: &str) -> bool {
    if let Some(why) = browser_missing(&js_dir()) {
        if std::env::var(REQUIRE_BROWSER_ENV).as_deref() == Ok("1") {
            panic!("{why}, and {REQUIRE_BROWSER_ENV}=1 requires the browser tests to run");
        }
        skip(test, &why);
        return false;
    }
    true
}

fn guest_code(home: &TestHome) -> String {
    home.json(&["commons", "invite", "--role", "guest", "--expires", "1h"])["code"]
        .as_str()
        .expect("invitation code")
        .to_string()
}

/// The base58 form the CLI prints of a key the browser shows in hex.
fn key_of_hex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex key"))
        .collect();
    hedgerow_protocol::AuthorKey(bytes.try_into().expect("32 bytes")).to_string()
}

// Two browsers (A on a phone, B on a desktop, each its own key) and the host's CLI write on one
// event at the same time; a second node syncs over loopback:
//
//   browser A ─┐                       ┌─ sync (loopback, no mDNS) ─ Reader's node
//   browser B ─┼─ host node (--web) ───┘
//   CLI ───────┘
#[test]
fn two_browsers_and_the_cli_write_on_one_event_and_every_page_shows_every_note() {
    if !browser_or_skip("web_pages two browsers") {
        return;
    }
    let home = TestHome::init("Host");
    let commons = id(&home.json(&["commons", "create", "Build day", "--stewarded"]));
    let event = id(&home.json(&["event", "new", "Barn day"]));
    let (code_a, code_b) = (guest_code(&home), guest_code(&home));
    let node = WebNode::start(home, false);
    let shots = screenshot_dir();
    let output = run_node(
        &js_dir(),
        "write.mjs",
        &[
            ("WEB_URL", node.url()),
            ("HEDGEROW_BIN", hedgerow_bin().display().to_string()),
            ("NODE_HOME", node.home.path().display().to_string()),
            ("COMMONS", commons.clone()),
            ("EVENT", event.clone()),
            ("CODE_A", code_a),
            ("CODE_B", code_b),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    );
    let results: Value = serde_json::from_str(output.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("write.mjs printed no results ({e}):\n{output}"));
    eprintln!("browser results: {results}");
    let keys: Vec<String> = results["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| key_of_hex(k.as_str().expect("hex")))
        .collect();
    assert_eq!(keys.len(), 2);
    // Both event pages were updated live, never reloaded.
    assert_eq!(results["no_reload"], serde_json::json!([true, true]));
    for updates in results["updates"].as_array().expect("updates") {
        assert!(updates.as_u64().unwrap_or(0) >= 1, "{results}");
    }
    // The CLI shows every note in its latest text, each signed by its writer's own key.
    let notes = node.json(&["note", "list", "--on", &event]);
    let notes = notes.as_array().expect("notes");
    assert_eq!(notes.len(), 3, "{notes:?}");
    let note_by = |text: &str| -> String {
        let found = notes
            .iter()
            .find(|n| n.to_string().contains(text))
            .unwrap_or_else(|| panic!("no note says {text:?}: {notes:?}"));
        id(found)
    };
    let note_a = note_by("Note from browser A, edited in the browser");
    let note_b = note_by("Note from browser B");
    note_by("CLI note, edited on the CLI");
    for (note, key) in [(&note_a, &keys[0]), (&note_b, &keys[1])] {
        let history = node.json(&["note", "history", note]);
        let history = history.as_array().expect("history");
        assert!(!history.is_empty());
        // Every change is the browser's; the last is signed and covers those before it.
        for change in history {
            assert_eq!(change["author"].as_str(), Some(key.as_str()), "{change}");
            assert!(
                change["signature"] == "signed" || change["signature"] == "covered",
                "{change}"
            );
        }
        assert_eq!(
            history.last().map(|c| &c["signature"]),
            Some(&Value::from("signed"))
        );
    }
    // Another node, syncing over loopback, shows the guests' notes signed by their keys.
    let status = node.json(&["status"]);
    let peer = format!(
        "{}/p2p/{}",
        status["listen"][0].as_str().expect("listen address"),
        status["peer_id"].as_str().expect("peer id")
    );
    let reader = TestHome::init("Reader");
    reader.ok(&["commons", "join", &commons]);
    let synced = hedgerow_tests::net::wait_until(std::time::Duration::from_secs(30), || {
        reader.run(&["sync", "--peer", &peer, "--json"]);
        [&note_a, &note_b].iter().all(|note| {
            reader
                .run(&["note", "history", note, "--json"])
                .status
                .success()
        })
    });
    assert!(synced, "the guests' notes did not reach the second node");
    for (note, key) in [(&note_a, &keys[0]), (&note_b, &keys[1])] {
        let history = reader.json(&["note", "history", note]);
        let history = history.as_array().expect("history");
        assert!(history
            .iter()
            .all(|c| c["author"].as_str() == Some(key.as_str())));
        assert_eq!(
            history.last().map(|c| &c["signature"]),
            Some(&Value::from("signed"))
        );
    }
    let shot = shots.join(results["screenshot"].as_str().expect("screenshot"));
    assert!(std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 1000);
}
