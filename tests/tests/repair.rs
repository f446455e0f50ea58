//! One damaged byte in sled's log: commands say so in words and point to
//! `hedgerow repair`, which moves the store aside and rebuilds the user's own
//! designs from the journal.
//!
//! ```text
//!   designs + edits -> flip one byte of a record in store/db
//!   design list / show: fail with one clear line (no sled internals)
//!   hedgerow repair: store moved to store.damaged-*, designs back, verify clean
//! ```

use hedgerow_tests::TestHome;
use serde_json::Value;

/// Flips one byte of the first copy of `marker` in sled's log; returns its offset.
fn flip_byte_of(home: &TestHome, marker: &[u8]) -> usize {
    let log = home.path().join("store").join("db");
    let mut bytes = std::fs::read(&log).expect("read sled log");
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("marker is in sled's log");
    let offset = at + marker.len() / 2;
    bytes[offset] ^= 0x20;
    std::fs::write(&log, &bytes).expect("write sled log");
    offset
}

fn show_steps(home: &TestHome, id: &str) -> Vec<Value> {
    home.json(&["design", "show", id])["steps"]
        .as_array()
        .expect("steps")
        .clone()
}

#[test]
fn a_flipped_byte_is_named_and_repair_brings_own_designs_back() {
    let home = TestHome::init("Ada");
    home.ok(&["commons", "create", "Farm Hack tools"]);
    let mut designs = Vec::new();
    for n in 0..3 {
        let id = home
            .ok(&[
                "design",
                "new",
                &format!("Roller crimper marker-{n}-abcdefghijklmnop"),
                "--step",
                "Cut the tube",
            ])
            .trim()
            .to_string();
        home.ok(&["design", "edit", &id, "--step", &format!("Weld drum {n}")]);
        designs.push(id);
    }
    let before: Vec<Vec<Value>> = designs.iter().map(|id| show_steps(&home, id)).collect();

    flip_byte_of(&home, b"marker-1-abcdefghijklmnop");

    // Every command that reads the store fails with one line in words.
    for args in [
        vec!["design", "list"],
        vec!["design", "show", designs[1].as_str()],
        vec!["verify"],
    ] {
        let error = home.fail(&args);
        assert_eq!(error.lines().count(), 1, "{args:?}: {error}");
        assert!(error.contains("hedgerow repair"), "{args:?}: {error}");
        for internal in ["backtrace", "offset None", "ERROR", "sled"] {
            assert!(
                !error.contains(internal),
                "{args:?} shows {internal}: {error}"
            );
        }
    }

    // With --json the same line is `{"error", "kind"}` on standard output, nothing on stderr.
    let out = home.run(&["verify", "--json"]);
    assert!(!out.status.success());
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("hedgerow repair")),
        "{error}"
    );
    assert!(
        error["kind"]
            .as_str()
            .is_some_and(|k| k.starts_with("store-")),
        "{error}"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let repaired = home.json(&["repair"]);
    let aside = repaired["moved_to"].as_str().expect("store moved aside");
    assert!(
        std::path::Path::new(aside).join("db").exists(),
        "the damaged store is kept at {aside}"
    );
    for (id, steps) in designs.iter().zip(&before) {
        assert_eq!(&show_steps(&home, id), steps, "design {id} after repair");
    }
    let report = home.json(&["verify"]);
    assert_eq!(report["problems"], Value::Array(vec![]), "{report}");
    // The repaired store takes new work.
    home.ok(&["design", "edit", &designs[0], "--step", "After the repair"]);
}
