//! Sync protocol versions end to end: a node of this release and one kept to
//! `/hedgerow/sync/2` (`HEDGEROW_TEST_SYNC_V2_ONLY=1`, as the previous release, which does
//! not know the compact forms of `/hedgerow/sync/3`) sync a divergence both ways over real
//! libp2p on 127.0.0.1; and two nodes that drifted apart in a large commons compare sketches
//! (`/hedgerow/sync/4`) unless one is kept to `/hedgerow/sync/3`
//! (`HEDGEROW_TEST_SYNC_V3_ONLY=1`, as the previous release).

use hedgerow_node::home::Home;
use hedgerow_node::Replicas;
use hedgerow_protocol::schema::{DocKind, Edit, NewDocument};
use hedgerow_protocol::DocId;
use hedgerow_tests::net::{converge, ServeNode, ServeOptions};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
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

/// Designs in the large commons: over the 2,048 documents from which a sketch answers.
const LARGE: usize = 2100;

/// Opens a home's store while no node runs on it.
fn replicas(home: &TestHome) -> Replicas {
    Replicas::open(&Home::open(home.path()).expect("home")).expect("store")
}

/// Writes `value` into the summary of each of `ids`, one signed change each.
fn edit_summaries(home: &TestHome, ids: &[DocId], value: &str) {
    let mut replicas = replicas(home);
    for id in ids {
        let edit = Edit::Set {
            field: "summary".into(),
            value: format!("{value} ({id})"),
        };
        replicas.edit_doc(id, &[edit]).expect("edit");
    }
    replicas.take_outbox();
    replicas.commit().expect("commit");
}

/// `hedgerow sync` from `home` to `peer`: the JSON report.
fn sync_report(home: &TestHome, peer: &str) -> Value {
    let out = home.run(&["sync", "--peer", peer, "--linger", "1", "--json"]);
    assert!(
        out.status.success(),
        "sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

/// A commons of 2,100 designs synced to B, then 30 designs edited on each side while apart;
/// B syncs again with A (kept to `/hedgerow/sync/3` when `old`). Returns how A listed the
/// commons to B: sketches and summaries sent.
///
/// ```text
///   A (2,100 designs; edits the first 30) ---- B (edits the last 30), B syncs with A again
/// ```
fn drift_in_a_large_commons(old: bool) -> (u64, u64) {
    let a_home = TestHome::init("Ada");
    let commons = id(&a_home.json(&["commons", "create", "Open Tools"]));
    let designs: Vec<DocId> = {
        let mut replicas = replicas(&a_home);
        let commons = replicas.commons_list().expect("commons")[0].body.id();
        let designs = (0..LARGE)
            .map(|n| {
                let new = NewDocument::new(DocKind::Design, format!("Tool {n}"));
                let edit = Edit::Set {
                    field: "summary".into(),
                    value: format!("Tool {n}: a frame, a roller and {n} bolts."),
                };
                replicas.create_doc(commons, &new, &[edit]).expect("design")
            })
            .collect();
        replicas.take_outbox();
        replicas.commit().expect("commit");
        designs
    };
    let mut options = ServeOptions::peers(&[]);
    if old {
        options
            .env
            .push(("HEDGEROW_TEST_SYNC_V3_ONLY".into(), "1".into()));
    }
    let mut a = ServeNode::start_with(a_home, options);
    let b = TestHome::init("Ben");
    b.json(&["commons", "join", &commons]);
    let first = sync_report(&b, &a.multiaddr());
    assert_eq!(first["complete"], true, "{first}");

    a.stop();
    edit_summaries(&a, &designs[..30], "Welded on A");
    edit_summaries(&b, &designs[LARGE - 30..], "Bolted on B");
    a.restart();
    let report = sync_report(&b, &a.multiaddr());
    assert_eq!(report["complete"], true, "old: {old}: {report}");
    assert_eq!(
        report["docs_received"], 30,
        "A's edits and no more: {report}"
    );
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    let counters = a.status()["counters"].clone();
    let sent = |key: &str| counters[key].as_u64().unwrap_or(u64::MAX);
    let listed = (sent("sketches_sent"), sent("summaries_sent"));
    a.stop();
    for home in [&*a, &b] {
        home.ok(&["verify"]);
    }
    listed
}

/// Issue 11: over real libp2p, B's pull waits for A's identify, opens with `HelloV4`, and A
/// lists the 60 differing documents by sketch (6 KB, the same at any commons size); a node
/// kept to `/hedgerow/sync/3` lists them by bucket summary, and both end with every edit.
#[test]
fn drifted_nodes_of_a_large_commons_find_the_difference_by_sketch() {
    // A later pull (after A's news of B's edits) may list again; none goes by summary.
    let (sketches, summaries) = drift_in_a_large_commons(false);
    assert!(
        sketches >= 1 && summaries == 0,
        "{sketches} sketches, {summaries} summaries"
    );
    let (sketches, summaries) = drift_in_a_large_commons(true);
    assert!(
        sketches == 0 && summaries >= 1,
        "{sketches} sketches, {summaries} summaries"
    );
}
