//! Private commons end to end: real `hedgerow serve` processes on one LAN (two network
//! namespaces, mDNS on), and bundles of a private commons on a stick.
//!
//! ```text
//!   [netns a: Alice, founder]  ==veth==  [netns b: Ben, invited member
//!                                                  Nina, asked for the commons by id]
//! ```
//!
//! mDNS finds everyone; Ben gets the whole commons, Nina's pulls are refused as
//! `not-a-member` (counted in Alice's `status`, no ban) and her store gains nothing of it.
//! A bundle of the commons shows neither the commons' nor a design's name, opens on a
//! member's node, and is reported as `encrypted` by a node without the commons' genesis.

use hedgerow_tests::net::{converge, wait_until, Netns, ServeNode};
use hedgerow_tests::{id, TestHome};
use std::time::Duration;

const DESIGN: &str = "Hand-cranked seed cleaner";
const COMMONS: &str = "Heirloom seed circle";

/// Alice's home: a private commons with one design, and an invitation code for a member.
fn founder() -> (TestHome, String, String) {
    let alice = TestHome::init("Alice");
    let commons = id(&alice.json(&["commons", "create", COMMONS, "--stewarded", "--private"]));
    alice.json(&["design", "new", DESIGN, "--set", "summary=Sieves and a fan"]);
    let code = alice.json(&["commons", "invite", "--role", "member"])["code"]
        .as_str()
        .expect("code")
        .to_string();
    (alice, commons, code)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_private_commons_is_not_served_to_a_non_member_on_the_same_lan() {
    let Some(net) = Netns::pair_or_skip("private_commons: not served to a non-member") else {
        return;
    };
    let (alice, commons, code) = founder();
    let ben = TestHome::init("Ben");
    ben.json(&["commons", "accept", &code]);
    let nina = TestHome::init("Nina");
    nina.json(&["commons", "join", &commons]);

    let alice = ServeNode::start_with(alice, net.serve_options(0));
    let ben = ServeNode::start_with(ben, net.serve_options(1));
    let nina = ServeNode::start_with(nina, net.serve_options(1));
    let found = Duration::from_secs(15);
    assert!(
        nina.wait_connected_to(alice.peer_id(), found),
        "mDNS did not find Alice from Nina's node"
    );
    assert!(
        ben.wait_connected_to(alice.peer_id(), found),
        "mDNS did not find Alice from Ben's node"
    );

    let got = wait_until(Duration::from_secs(30), || {
        ben.json(&["design", "list"])
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    let tail = |log: String| log.lines().rev().take(60).collect::<Vec<_>>().join("\n");
    assert!(
        got,
        "Ben never got the private commons:\nBEN {}\nALICE {}",
        tail(ben.log()),
        tail(alice.log())
    );
    let state = converge(&[&alice, &ben], Duration::from_secs(30));
    assert_eq!(state["designs"][0]["title"], DESIGN, "{state}");
    assert!(
        wait_until(Duration::from_secs(10), || alice
            .rejected("private-not-a-member")
            >= 1),
        "Alice never refused Nina: {}",
        alice.status()
    );
    assert_eq!(held(&nina), 0, "Nina holds nothing of it");
    assert!(
        nina.connected().contains(&alice.peer_id().to_string()),
        "Nina was refused, not disconnected"
    );
    assert_eq!(alice.status()["counters"]["peers_banned"], 0);

    // A design written now reaches Ben (news on the hashed topic, then a proven pull), not Nina.
    let fresh = id(&alice.json(&["design", "new", "Seed drill"]));
    let state = converge(&[&alice, &ben], Duration::from_secs(20));
    assert_eq!(state["shown"][&fresh]["name"], "Seed drill");
    assert_eq!(held(&nina), 0);
}

#[test]
fn a_private_commons_bundle_is_sealed_and_opens_for_members() {
    let (alice, commons, code) = founder();
    let dir = tempfile::tempdir().expect("temp dir");
    let sealed = dir.path().join("private.bundle");
    let sealed_path = sealed.to_str().expect("utf-8 path");
    alice.ok(&["bundle", "export", sealed_path]);
    let bytes = std::fs::read(&sealed).expect("read bundle");
    assert_eq!(&bytes[..16], b"HEDGEROW-BUNDLE\x02", "file format 2");
    assert!(!contains(&bytes, DESIGN), "a design's name in the clear");
    assert!(!contains(&bytes, COMMONS), "the commons' name in the clear");
    assert!(!contains(&bytes, "Sieves and a fan"));

    // The same content in an open commons shows both names: the check above can fail.
    let open = TestHome::init("Olga");
    open.json(&["commons", "create", COMMONS]);
    open.json(&["design", "new", DESIGN]);
    let plain = dir.path().join("open.bundle");
    open.ok(&["bundle", "export", plain.to_str().expect("utf-8 path")]);
    let plain = std::fs::read(&plain).expect("read bundle");
    assert!(contains(&plain, DESIGN) && contains(&plain, COMMONS));
    assert_eq!(plain[15], 1, "an open commons' bundle stays format 1");

    // A member (the genesis came with her invitation) opens it, with no node online.
    let carol = TestHome::init("Carol");
    carol.json(&["commons", "accept", &code]);
    let report = carol.json(&["bundle", "import", sealed_path]);
    assert_eq!(report["encrypted"], serde_json::json!([]), "{report}");
    assert!(report["new"].as_u64().expect("new") >= 1, "{report}");
    let designs = carol.json(&["design", "list"]);
    assert_eq!(designs[0]["title"], DESIGN, "{designs}");
    assert!(carol.json(&["verify"])["problems"]
        .as_array()
        .expect("problems")
        .is_empty());

    // A node that only knows the id cannot open it: skipped and reported, nothing stored.
    let nina = TestHome::init("Nina");
    nina.json(&["commons", "join", &commons]);
    let report = nina.json(&["bundle", "import", sealed_path]);
    assert_eq!(report["encrypted"][0]["id"], commons.as_str(), "{report}");
    assert!(report["encrypted"][0]["records"].as_u64().expect("records") >= 3);
    assert_eq!(report["new"], 0, "{report}");
    assert_eq!(held(&nina), 0);
}

/// Commons `home` holds: `commons list` without its pending joins (a join of a commons
/// not received yet is listed too, as pending).
fn held(home: &TestHome) -> usize {
    let list = home.json(&["commons", "list"]);
    list.as_array()
        .unwrap_or_else(|| panic!("commons list: {list}"))
        .iter()
        .filter(|c| c["pending"] != true)
        .count()
}
