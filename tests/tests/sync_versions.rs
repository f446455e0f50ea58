//! Sync protocol versions end to end: a node of this release and one kept to
//! `/hedgerow/sync/2` (`HEDGEROW_TEST_SYNC_V2_ONLY=1`, as the previous release, which does
//! not know the compact forms of `/hedgerow/sync/3`) sync a divergence both ways over real
//! libp2p on 127.0.0.1.

use hedgerow_tests::net::{converge, ServeNode, ServeOptions};
use hedgerow_tests::{id, TestHome};
use std::time::Duration;

/// Longest wait for nodes to agree.
const CONVERGE: Duration = Duration::from_secs(20);

/// Two nodes edit one design apart, then reconnect; `old` keeps node B to `/hedgerow/sync/2`.
///
/// ```text
///   A (this release) ---- B (this release, or kept to sync/2)
///   A edits summary, B tags and edits summary while apart, then B comes back
/// ```
fn partition_heals(old: bool) {
    let a_home = TestHome::init("Ada");
    let commons = id(&a_home.json(&["commons", "create", "Open Tools"]));
    let design = id(&a_home.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=The frame is steel. The roller is wood.",
    ]));
    let a = ServeNode::start(a_home, &[]);
    let b_home = TestHome::init("Ben");
    b_home.json(&["commons", "join", &commons]);
    let mut options = ServeOptions::peers(&[&a]);
    if old {
        options
            .env
            .push(("HEDGEROW_TEST_SYNC_V2_ONLY".into(), "1".into()));
    }
    let mut b = ServeNode::start_with(b_home, options);
    converge(&[&a, &b], CONVERGE);

    b.stop();
    a.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "summary=The frame is welded steel. The roller is wood.",
    ]);
    b.ok(&[
        "design",
        "edit",
        &design,
        "--tag",
        "no-till",
        "--set",
        "summary=The frame is steel. The roller is oak wood.",
    ]);
    b.restart();
    let state = converge(&[&a, &b], CONVERGE);
    let merged = &state["shown"][&design];
    assert_eq!(
        merged["summary"], "The frame is welded steel. The roller is oak wood.",
        "old: {old}"
    );
    assert!(
        merged["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "no-till")),
        "B's tag kept: {merged}"
    );
    for node in [&a, &b] {
        assert_eq!(node.status()["rejected_total"], 0, "old: {old}");
        node.ok(&["verify"]);
    }
}

#[test]
fn a_node_kept_to_sync_v2_and_a_node_of_this_release_sync_a_divergence() {
    partition_heals(true);
}

#[test]
fn two_nodes_of_this_release_sync_a_divergence_in_the_compact_forms() {
    partition_heals(false);
}
