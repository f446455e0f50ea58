//! The README's main command: `hedgerow demo` runs with the real binary and leaves a store
//! that `hedgerow verify` finds clean, holding exactly what the demo says it made.

use hedgerow_tests::{hedgerow_bin, TestHome};
use serde_json::Value;

/// Reads "checked C commons, D documents, N signed changes" from the demo's narration.
fn demo_counts(stdout: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("checked "))
        .unwrap_or_else(|| panic!("demo printed no verify summary:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers.len() >= 3, "unexpected verify line: {line}");
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn demo_runs_and_its_store_verifies_clean() {
    let parent = TestHome::new();
    let home = parent.path().join("demo-home");
    let out = std::process::Command::new(hedgerow_bin())
        .arg("demo")
        .arg("--keep")
        .arg(&home)
        .env_remove("HEDGEROW_HOME")
        .output()
        .expect("run hedgerow demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hedgerow demo failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("store is clean"),
        "demo did not report a clean store:\n{stdout}"
    );
    let (commons, documents, changes) = demo_counts(&stdout);

    // A second, independent check of the home the demo left, by a fresh process.
    let verify = std::process::Command::new(hedgerow_bin())
        .arg("--home")
        .arg(&home)
        .args(["verify", "--json"])
        .env_remove("HEDGEROW_HOME")
        .output()
        .expect("run hedgerow verify");
    assert!(
        verify.status.success(),
        "verify of the demo home failed:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let report: Value = serde_json::from_slice(&verify.stdout).expect("verify --json is JSON");
    assert_eq!(report["problems"], Value::Array(vec![]), "{report}");
    assert_eq!(report["equivocations"], Value::Array(vec![]), "{report}");
    // One commons; a design, its fork, an event, two notes and the demo farmer's profile.
    assert_eq!(report["commons"], 1, "{report}");
    assert_eq!(report["documents"], 6, "{report}");
    let stored_changes = report["changes"].as_u64().expect("changes count");
    assert!(stored_changes > 0, "{report}");
    assert_eq!(
        (commons, documents, changes),
        (1, 6, stored_changes),
        "the demo's own verify and a later verify disagree: {report}"
    );
}
