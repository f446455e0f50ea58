//! The benchmark's `--quick` mode, as CI runs it on every submission: a 100-design commons,
//! every scenario over real node processes on loopback, figures in the JSON file.
//!
//! Figures are not judged against the targets here (they are printed, not asserted);
//! only that every scenario ran and measured something, and that an in-sync reconnect stays
//! flat: one round trip and under 1 KB of sync protocol.

use serde_json::Value;
use std::process::Command;

const NETWORK: &[&str] = &[
    "initial sync",
    "in-sync reconnect",
    "one edit",
    "divergence",
    "fan-out (5 nodes)",
];
const LOCAL: &[&str] = &["apply-and-verify", "cold start"];
const FIELDS: &[&str] = &[
    "scenario",
    "designs",
    "bytes",
    "limit_bytes",
    "envelope_bytes",
    "automerge_bytes",
    "round_trips",
    "automerge_round_trips",
    "wall_s",
    "cpu_s",
    "peak_rss_bytes",
];

#[test]
fn quick_mode_measures_every_scenario() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("quick.json");
    let output = Command::new(env!("CARGO_BIN_EXE_hedgerow-bench"))
        .arg("--quick")
        .arg("--json")
        .arg(&json)
        .arg("--workdir")
        .arg(dir.path())
        .output()
        .expect("run hedgerow-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "hedgerow-bench --quick failed:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("| scenario | designs |"),
        "no markdown table on stdout:\n{stdout}"
    );

    let rows: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json parses");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["scenario"] == name)
            .unwrap_or_else(|| panic!("no `{name}` row in {json:?}"))
    };
    for name in NETWORK.iter().chain(LOCAL) {
        let r = row(name);
        for field in FIELDS {
            assert!(!r[*field].is_null(), "`{name}` lacks `{field}`: {r}");
        }
        assert_eq!(r["designs"], 100, "{r}");
        assert!(
            r["converged"].as_bool().unwrap_or(false),
            "`{name}` did not end in the expected state: {r}"
        );
        assert!(r["peak_rss_bytes"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    for name in NETWORK {
        let r = row(name);
        assert!(
            r["bytes"].as_u64().unwrap_or(0) > 0,
            "`{name}` counted no bytes: {r}"
        );
        assert!(
            r["automerge_bytes"].as_u64().unwrap_or(0) > 0,
            "`{name}` has no automerge reference: {r}"
        );
    }
    for name in [
        "initial sync",
        "one edit",
        "divergence",
        "fan-out (5 nodes)",
    ] {
        let r = row(name);
        assert!(
            r["limit_bytes"].as_u64().unwrap_or(0) > 0,
            "`{name}` has no limit: {r}"
        );
        assert!(
            r["envelope_bytes"].as_u64().unwrap_or(0) > 0,
            "`{name}` has no envelope sum: {r}"
        );
    }
    let reconnect = row("in-sync reconnect");
    assert_eq!(reconnect["round_trips"], 1, "{reconnect}");
    let sync_bytes = reconnect["sync_bytes"].as_u64().unwrap_or(u64::MAX);
    assert!(
        sync_bytes > 0 && sync_bytes < 1024,
        "in-sync reconnect took {sync_bytes} B of sync protocol: {reconnect}"
    );
    assert!(
        row("apply-and-verify")["extra"]["bundle_changes_per_s"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
}
