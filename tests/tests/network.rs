//! Networking end to end: real `hedgerow serve` processes speaking real libp2p
//! on 127.0.0.1 (and, for mDNS, inside network namespaces the test creates),
//! driven and inspected through the CLI.
//!
//! Waits are bounded polls; assertions are about outcomes and byte counts,
//! never wall-clock durations.

#[path = "network/misbehave.rs"]
mod misbehave;
#[path = "network/privacy.rs"]
mod privacy;

use hedgerow_tests::net::{converge, wait_until, Netns, ServeNode, ServeOptions};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::time::Duration;

/// Longest wait for nodes to agree.
const CONVERGE: Duration = Duration::from_secs(20);

/// A home that created a commons and a design in it: (home, commons id, design id).
fn founder(name: &str) -> (TestHome, String, String) {
    let home = TestHome::init(name);
    let commons = id(&home.json(&["commons", "create", "Open Tools"]));
    let design = id(&home.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=The frame is steel. The roller is wood.",
    ]));
    (home, commons, design)
}

/// A home that asked to join `commons` (it arrives from the first peer that has it).
fn joiner(name: &str, commons: &str) -> TestHome {
    let home = TestHome::init(name);
    home.json(&["commons", "join", commons]);
    home
}

/// The author key of a home.
fn author(home: &TestHome) -> String {
    home.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string()
}

/// `design show --json`.
fn show(home: &TestHome, design: &str) -> Value {
    home.json(&["design", "show", design])
}

/// `hedgerow sync --peer ADDR --json`: exit status and report.
fn sync(home: &TestHome, peer: &str) -> (bool, Value) {
    let out = home.run(&["sync", "--peer", peer, "--linger", "1", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sync printed no JSON report ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// Two nodes in two namespaces on one link, mDNS on, no `--peer`:
///
/// ```text
///   [netns a: A 10.47.17.1] ==veth== [netns b: B 10.47.17.2]
/// ```
#[test]
fn mdns_discovers_a_peer_on_the_link_and_syncs() {
    let Some(netns) = Netns::pair_or_skip("mdns_discovers_a_peer_on_the_link_and_syncs") else {
        return;
    };
    let (a_home, commons, design) = founder("Ada");
    let a = ServeNode::start_with(a_home, netns.serve_options(0));
    let b = ServeNode::start_with(joiner("Ben", &commons), netns.serve_options(1));
    assert!(
        b.wait_connected_to(a.peer_id(), Duration::from_secs(10)),
        "B never discovered A by mDNS"
    );
    let state = converge(&[&a, &b], Duration::from_secs(10));
    assert!(
        state["shown"][&design].is_object(),
        "B got A's design: {state}"
    );

    // And a design created now arrives live.
    let fresh = id(&a.json(&["design", "new", "Seed drill"]));
    let state = converge(&[&a, &b], Duration::from_secs(10));
    assert_eq!(state["shown"][&fresh]["name"], "Seed drill");
}

/// Each node knows only its left neighbour:
///
/// ```text
///   N1 <-- N2 <-- N3 <-- N4 <-- N5
/// ```
#[test]
fn a_chain_of_five_converges() {
    let (h1, commons, first) = founder("One");
    let n1 = ServeNode::start(h1, &[]);
    let mut chain = vec![n1];
    for name in ["Two", "Three", "Four", "Five"] {
        let left = chain.last().expect("left neighbour");
        let node = ServeNode::start(joiner(name, &commons), &[left]);
        chain.push(node);
    }
    let homes: Vec<&TestHome> = chain.iter().map(|n| &n.home).collect();
    converge(&homes, CONVERGE);

    chain[0].ok(&["design", "edit", &first, "--set", "stage=prototype"]);
    let last = id(&chain[4].json(&["design", "new", "Seed drill"]));
    let state = converge(&homes, CONVERGE);
    assert_eq!(state["shown"][&first]["stage"], "prototype");
    assert_eq!(state["shown"][&last]["name"], "Seed drill");
}

/// Both sides edit while apart, then meet:
///
/// ```text
///   A == B   then   A | B (both edit)   then   A == B
/// ```
#[test]
fn a_partition_heals_keeping_both_sides_edits() {
    let (a_home, commons, design) = founder("Ada");
    let event = id(&a_home.json(&["event", "new", "Build day"]));
    let a = ServeNode::start(a_home, &[]);
    let mut b = ServeNode::start(joiner("Ben", &commons), &[&a]);
    converge(&[&a, &b], CONVERGE);

    b.stop();
    // A (serving) and B (its store opened directly by the CLI) edit the same design.
    a.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "stage=prototype",
        "--set",
        "summary=The frame is welded steel. The roller is wood.",
    ]);
    a.ok(&[
        "note",
        "add",
        "--on",
        &event,
        "--text",
        "Ada brings the welder.",
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
    b.ok(&[
        "note",
        "add",
        "--on",
        &event,
        "--text",
        "Ben brings the oak.",
    ]);

    b.restart();
    let state = converge(&[&a, &b], CONVERGE);
    let merged = &state["shown"][&design];
    assert_eq!(
        merged["summary"],
        "The frame is welded steel. The roller is oak wood."
    );
    assert_eq!(merged["stage"], "prototype");
    assert!(
        merged["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "no-till")),
        "B's tag kept: {merged}"
    );
    let notes = a.json(&["note", "list", "--on", &event]);
    let texts: Vec<&str> = notes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["title"].as_str())
        .collect();
    assert!(texts.contains(&"Ada brings the welder."), "{texts:?}");
    assert!(texts.contains(&"Ben brings the oak."), "{texts:?}");
    for node in [&a, &b] {
        node.ok(&["verify"]);
    }
}

/// A and B are never online together; the hub carries A's work to B:
///
/// ```text
///   A --sync--> H      (A goes offline)
///               H <--sync-- B
/// ```
#[test]
fn a_hub_stores_and_forwards_between_peers_never_online_together() {
    let (hub_home, commons, _) = founder("Hub");
    let hub = ServeNode::start(hub_home, &[]);

    let a = joiner("Ada", &commons);
    let (ok, _) = sync(&a, &hub.multiaddr());
    assert!(ok, "A's first sync failed");
    let design = id(&a.json(&[
        "design",
        "new",
        "Broadfork",
        "--set",
        "summary=Two handles.",
    ]));
    let (ok, report) = sync(&a, &hub.multiaddr());
    assert!(ok, "A's second sync failed: {report}");
    assert!(
        report["docs_sent"].as_u64() >= Some(1),
        "A sent its design: {report}"
    );
    let a_author = author(&a);
    drop(a);

    let b = joiner("Ben", &commons);
    let (ok, report) = sync(&b, &hub.multiaddr());
    assert!(ok, "B's sync failed: {report}");
    assert_eq!(show(&b, &design)["summary"], "Two handles.");
    let history = b.json(&["design", "history", &design]);
    let entries = history.as_array().expect("history is a list");
    assert!(
        entries.iter().any(|e| e["author"] == a_author.as_str()),
        "A's change is in B's history: {history}"
    );
    for entry in entries {
        assert!(
            entry["signature"] == "signed" || entry["signature"] == "covered",
            "unproven change on B: {entry}"
        );
    }
    assert!(b.json(&["verify"])["problems"]
        .as_array()
        .is_some_and(|p| p.is_empty()));
}

/// `kill -9` while changes stream in; the store survives and catches up:
///
/// ```text
///   A ==live==> B   (B killed mid-stream, A edits on, B restarts)
/// ```
#[test]
fn a_killed_node_keeps_its_data_and_catches_up() {
    let (a_home, commons, design) = founder("Ada");
    let a = ServeNode::start(a_home, &[]);
    let mut b = ServeNode::start(joiner("Ben", &commons), &[&a]);
    converge(&[&a, &b], CONVERGE);

    const BASE: &str = "The frame is steel. The roller is wood.";
    let steps = |n: usize| -> String { (0..n).map(|i| format!(" Step {i}.")).collect() };
    for i in 0..6 {
        a.ok(&[
            "design",
            "edit",
            &design,
            "--append",
            &format!("summary= Step {i}."),
        ]);
        if i == 2 {
            b.kill();
        }
    }
    // B is down: its CLI opens the store itself. What it had is there and verifies: the
    // design's first change and the edits that had arrived when it died, in order (a live
    // change whose predecessor had not arrived was only held, and is gone with the process).
    let held = show(&b, &design);
    let changes = held["changes"].as_u64().expect("changes") as usize;
    assert!((1..=4).contains(&changes), "B kept the design: {held}");
    assert_eq!(
        held["summary"],
        format!("{BASE}{}", steps(changes - 1)),
        "B holds exactly the edits it counts"
    );
    assert_eq!(held["heads"].as_array().map(Vec::len), Some(1), "{held}");
    b.ok(&["verify"]);

    b.restart();
    let state = converge(&[&a, &b], CONVERGE);
    let caught_up = &state["shown"][&design];
    assert_eq!(caught_up["summary"], format!("{BASE}{}", steps(6)));
    assert_eq!(caught_up["changes"], 7, "the first change and six edits");
    b.ok(&["verify"]);
}

/// `hedgerow sync` reports what moved; right after, a second sync moves nothing.
///
/// ```text
///   B --sync--> A   twice
/// ```
#[test]
fn sync_reports_what_moved_and_a_second_sync_is_a_no_op() {
    let (a_home, commons, design) = founder("Ada");
    let a = ServeNode::start(a_home, &[]);
    let b = joiner("Ben", &commons);

    let (ok, first) = sync(&b, &a.multiaddr());
    assert!(ok, "first sync failed: {first}");
    assert_eq!(first["complete"], true, "{first}");
    assert_eq!(first["errors"], serde_json::json!([]), "{first}");
    assert_eq!(first["peer"], a.peer_id());
    assert_eq!(first["commons"], 1, "{first}");
    // A's design and A's profile, one change each; one inventory round trip, one fetch.
    assert_eq!(first["docs_received"], 2, "{first}");
    assert_eq!(first["changes_received"], 2, "{first}");
    assert_eq!(first["in_sync"], 0, "{first}");
    assert_eq!(first["round_trips"], 2, "{first}");
    assert_eq!(first["interruptions"], 0, "{first}");
    // Measured: 1,537 bytes in (two small documents in compact form, each with its author's
    // 64-byte signature), 116 to 288 out (B's two requests, and its answer when A pulls B's
    // new profile in the same session). A whole second copy, or a document sent twice, would
    // pass 2 KB; requests that repeat would pass 512 B.
    let received = first["bytes_received"].as_u64().unwrap_or(0);
    assert!((1024..2048).contains(&received), "{first}");
    let sent = first["bytes_sent"].as_u64().unwrap_or(0);
    assert!((64..512).contains(&sent), "{first}");
    assert_eq!(show(&b, &design)["name"], "Roller crimper");
    // B's new profile reached A during the same sync.
    converge(&[&a, &b], CONVERGE);

    let before = a.status()["bytes"].clone();
    let (ok, second) = sync(&b, &a.multiaddr());
    let after = a.status()["bytes"].clone();
    let delta = |key: &str| after[key].as_u64().unwrap_or(0) - before[key].as_u64().unwrap_or(0);
    assert!(ok, "second sync failed: {second}");
    assert_eq!(second["in_sync"], 1, "{second}");
    assert_eq!(second["changes_received"], 0, "{second}");
    assert_eq!(second["docs_received"], 0, "{second}");
    assert_eq!(second["docs_sent"], 0, "{second}");
    assert_eq!(second["commons"], 1, "{second}");
    assert_eq!(second["round_trips"], 1, "{second}");
    let in_sync_bytes =
        second["bytes_sent"].as_u64().unwrap_or(0) + second["bytes_received"].as_u64().unwrap_or(0);
    eprintln!(
        "in-sync reconnect: {in_sync_bytes} sync bytes; {} bytes in and {} out on all of A's \
         substreams (identify, gossipsub, ping, kad, sync)",
        delta("transport_in"),
        delta("transport_out")
    );
    // README: "an in-sync check is one round trip of about 150 bytes" (measured 77 + 77).
    assert!(
        in_sync_bytes < 256,
        "an in-sync reconnect costs {in_sync_bytes} bytes"
    );

    // The human report says the same.
    let text = b.ok(&["sync", "--peer", &a.multiaddr(), "--linger", "1"]);
    assert!(text.contains("received 0 changes"), "{text}");
    assert!(text.contains("sent 0 documents"), "{text}");
}

/// One small edit reaches a connected peer by gossip in a few hundred bytes.
///
/// ```text
///   A ==live==> B
/// ```
#[test]
fn one_edit_propagates_live() {
    let (a_home, commons, design) = founder("Ada");
    let a = ServeNode::start(a_home, &[]);
    let b = ServeNode::start_with(
        joiner("Ben", &commons),
        ServeOptions {
            peers: vec![a.multiaddr()],
            // No periodic pull may carry the edit instead of gossip.
            sync_interval: Some(3600),
            ..ServeOptions::default()
        },
    );
    converge(&[&a, &b], CONVERGE);
    let before = b.status();

    a.ok(&["design", "edit", &design, "--set", "stage=prototype"]);
    assert!(
        wait_until(CONVERGE, || show(&b, &design)["stage"] == "prototype"),
        "the edit never reached B"
    );
    let after = b.status();
    let gossip = after["bytes"]["gossip_received"].as_u64().unwrap_or(0)
        - before["bytes"]["gossip_received"].as_u64().unwrap_or(0);
    let sync = after["bytes"]["sync_received"].as_u64().unwrap_or(0)
        - before["bytes"]["sync_received"].as_u64().unwrap_or(0);
    eprintln!("one-edit live propagation: {gossip} gossip bytes, {sync} sync bytes");
    assert_eq!(
        after["counters"]["live_received"].as_u64(),
        before["counters"]["live_received"].as_u64().map(|n| n + 1)
    );
    assert!(
        gossip > 0 && gossip < 2048,
        "one edit took {gossip} gossip bytes"
    );
    assert_eq!(sync, 0, "the edit came by gossip, not by a pull");
}
