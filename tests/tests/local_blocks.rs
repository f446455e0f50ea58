//! A node's own block list, hidden and purged documents, end to end: the real binary, real
//! stores, and real `serve` processes on 127.0.0.1 (mDNS off) for the network cases.
//!
//! Waits are bounded polls; assertions are about what each store holds and what `status`
//! counts, never durations.

use hedgerow_tests::net::{wait_until, Netns, ServeNode, ServeOptions};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::time::Duration;

/// Longest wait for a node to see something.
const WAIT: Duration = Duration::from_secs(20);

/// The author key of a home.
fn author(home: &TestHome) -> String {
    home.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string()
}

/// A design's `summary`, or `None` when the design is not shown.
fn summary(home: &TestHome, design: &str) -> Option<String> {
    let out = home.run(&["design", "show", design, "--json"]);
    if !out.status.success() {
        return None;
    }
    let value: Value = serde_json::from_slice(&out.stdout).expect("show prints JSON");
    value["summary"].as_str().map(str::to_string)
}

/// Ids listed by `design list`.
fn listed(home: &TestHome) -> Vec<String> {
    home.json(&["design", "list"])
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect()
}

/// Whether the home's journal holds anything of document `id`.
fn journal_holds(home: &TestHome, id: &str) -> bool {
    let doc: hedgerow_protocol::DocId = id.parse().expect("document id");
    let journal = std::fs::read(home.path().join("store.journal")).expect("journal");
    journal.windows(32).any(|w| w == doc.as_bytes())
}

/// Asserts `verify` is clean.
fn assert_clean(home: &TestHome) {
    let report = home.json(&["verify"]);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
}

/// `hedgerow sync --peer ADDR --json`: the report (whatever the exit status).
fn sync(home: &TestHome, peer: &str) -> Value {
    let out = home.run(&["sync", "--peer", peer, "--linger", "1", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sync printed no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `bundle import FILE --json`: the report (non-zero exit when something was refused).
fn import(home: &TestHome, file: &std::path::Path) -> Value {
    let out = home.run(&["bundle", "import", file.to_str().expect("path"), "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "import printed no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The refusal texts of an import report.
fn refusals(report: &Value) -> Vec<String> {
    report["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["error"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A blocked author's new changes are refused by sync and by bundle, and only theirs: a
/// third author's concurrent edit in the same document still comes in. Earlier content stays.
///
/// ```text
///   Ada (serve) --sync--> Ben (blocks Ada)
///        \--sync--> Cleo --bundle--> Ben
/// ```
#[test]
fn a_blocked_authors_new_changes_are_refused_by_sync_and_bundle() {
    let ada = TestHome::init("Ada");
    let commons = id(&ada.json(&["commons", "create", "Open Tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=v1"]));
    let hidden = id(&ada.json(&["design", "new", "Broadfork", "--set", "summary=tines"]));
    ada.ok(&["hide", &hidden, "--reason", "draft"]);
    let ada = ServeNode::start(ada, &[]);
    let ada_key = author(&ada);

    let ben = TestHome::init("Ben");
    let cleo = TestHome::init("Cleo");
    for home in [&ben, &cleo] {
        home.json(&["commons", "join", &commons]);
        sync(home, &ada.multiaddr());
        assert_eq!(summary(home, &design).as_deref(), Some("v1"));
        // Ada's node hides the Broadfork: it does not serve it.
        assert!(
            !listed(home).contains(&hidden),
            "a hidden design was served"
        );
    }
    // Unhidden, it is served again.
    ada.ok(&["unhide", &hidden]);
    sync(&ben, &ada.multiaddr());
    assert_eq!(summary(&ben, &hidden).as_deref(), Some("tines"));

    // Cleo's edit, concurrent with Ada's next one.
    cleo.ok(&["design", "edit", &design, "--set", "problem=Cleo's"]);
    // A unique prefix of a key the store knows names the author.
    let blocked = ben.json(&["block", &ada_key[..10], "--note", "vandal"]);
    assert_eq!(blocked["author"], ada_key.as_str());
    let listed_blocks = ben.json(&["blocks"]);
    assert_eq!(listed_blocks["blocked"][0]["author"], ada_key.as_str());
    assert_eq!(listed_blocks["blocked"][0]["note"], "vandal");
    assert!(listed_blocks["blocked"][0]["at"]
        .as_str()
        .is_some_and(|at| at.ends_with('Z')));
    assert_eq!(listed_blocks["hidden"], serde_json::json!([]));

    ada.ok(&["design", "edit", &design, "--set", "summary=v2 by Ada"]);
    let fresh = id(&ada.json(&["design", "new", "Seed drill"]));

    // By sync: refused, nothing stored, what was there stays.
    let report = sync(&ben, &ada.multiaddr());
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("blocked"),
        "sync reports the refusal: {report}"
    );
    assert_eq!(summary(&ben, &design).as_deref(), Some("v1"));
    assert!(ben.fail(&["design", "show", &fresh]).contains("no design"));
    assert_clean(&ben);

    // By bundle, carried by Cleo with her own edit in the same document.
    sync(&cleo, &ada.multiaddr());
    assert_eq!(summary(&cleo, &design).as_deref(), Some("v2 by Ada"));
    let dir = tempfile::tempdir().expect("dir");
    let bundle = dir.path().join("cleo.bundle");
    cleo.ok(&["bundle", "export", bundle.to_str().expect("path")]);
    let report = import(&ben, &bundle);
    let texts = refusals(&report);
    assert!(
        !texts.is_empty()
            && texts
                .iter()
                .all(|t| t.starts_with("author-blocked-locally:")),
        "{report}"
    );
    let shown = ben.json(&["design", "show", &design]);
    assert_eq!(shown["summary"], "v1", "Ada's new change stayed out");
    assert_eq!(shown["problem"], "Cleo's", "Cleo's change came in: {shown}");
    assert!(ben.fail(&["design", "show", &fresh]).contains("no design"));
    assert_clean(&ben);

    // Blocking yourself is refused.
    let own = author(&ben);
    assert!(ben.fail(&["block", &own]).contains("own key"));

    // Unblocked, the same bundle brings Ada's changes.
    ben.ok(&["unblock", &ada_key]);
    let report = import(&ben, &bundle);
    assert_eq!(report["rejected"], serde_json::json!([]), "{report}");
    assert_eq!(summary(&ben, &fresh).as_deref(), Some(""));
    assert_eq!(summary(&ben, &design).as_deref(), Some("v2 by Ada"));
    assert_clean(&ben);
}

/// A hub that blocks an author refuses their live changes and does not pass them on, and
/// holds nothing against the peer that sent them; a document it hides it keeps taking in
/// but passes on neither live nor by sync.
///
/// ```text
///   [netns a: A (Ada) on a's own 127.0.0.1] ==veth==> [netns b: B 10.47.17.2 <== C on b's 127.0.0.1]
/// ```
///
/// A and C each advertise a loopback address that means nothing in the other's namespace,
/// so (whatever peers they learn of through B) they cannot reach each other: all that goes
/// between them goes through B.
#[test]
fn a_node_does_not_relay_a_blocked_authors_changes() {
    let Some(netns) = Netns::pair_or_skip("a_node_does_not_relay_a_blocked_authors_changes") else {
        return;
    };
    let ada = TestHome::init("Ada");
    let commons = id(&ada.json(&["commons", "create", "Open Tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=v1"]));
    let hidden = id(&ada.json(&["design", "new", "Broadfork", "--set", "summary=v1"]));
    let ada_key = author(&ada);
    let join = |name: &str| {
        let home = TestHome::init(name);
        home.json(&["commons", "join", &commons]);
        home
    };
    let in_ns = |i: usize, listen_ip: String, peers: &[&ServeNode]| ServeOptions {
        listen_ip,
        netns: Some(netns.name(i).to_string()),
        ..ServeOptions::peers(peers)
    };
    let b = ServeNode::start_with(join("Ben"), in_ns(1, netns.addr(1), &[]));
    let a = ServeNode::start_with(ada, in_ns(0, "127.0.0.1".into(), &[&b]));
    let c = ServeNode::start_with(join("Cleo"), in_ns(1, "127.0.0.1".into(), &[&b]));
    assert!(
        wait_until(WAIT, || summary(&c, &design).as_deref() == Some("v1")
            && summary(&c, &hidden).as_deref() == Some("v1")),
        "C got the designs through B"
    );

    // Hidden on B: Ada's edit is stored there but goes no further.
    b.ok(&["hide", &hidden, "--reason", "off-topic"]);
    a.ok(&[
        "design",
        "edit",
        &hidden,
        "--set",
        "summary=v2 of a hidden one",
    ]);
    let history = |home: &TestHome| {
        home.json(&["design", "history", &hidden])
            .as_array()
            .map_or(0, Vec::len)
    };
    assert!(wait_until(WAIT, || history(&b) == 2), "B stored the edit");

    // Blocked through B's running node (its control socket).
    b.ok(&["block", &ada_key]);
    a.ok(&["design", "edit", &design, "--set", "summary=v2 by Ada"]);
    assert!(
        wait_until(WAIT, || b.rejected("author-blocked-locally") >= 1),
        "B refused Ada's change: {}",
        b.status()
    );
    // A marker B passes on after it refused Ada's change: once C has it, C also had every
    // chance to get Ada's change from B, live or by its pull.
    let marker = id(&b.json(&["design", "new", "Marker"]));
    assert!(
        wait_until(WAIT, || summary(&c, &marker).is_some()),
        "C got B's marker"
    );
    let pulled = c.json(&["sync", "--peer", &b.multiaddr()]);
    assert_eq!(pulled["errors"], serde_json::json!([]), "{pulled}");
    assert!(
        !c.connected().contains(&a.peer_id().to_string()),
        "C reached A directly; the test proves nothing"
    );
    assert_eq!(summary(&b, &design).as_deref(), Some("v1"));
    assert_eq!(summary(&c, &design).as_deref(), Some("v1"), "B relayed it");
    assert_eq!(history(&c), 1, "B passed on an edit of a document it hides");
    b.ok(&["unhide", &hidden]);
    assert_eq!(summary(&b, &hidden).as_deref(), Some("v2 of a hidden one"));
    let status = b.status();
    assert_eq!(status["counters"]["peers_banned"], 0, "{status}");
    assert!(
        b.connected().contains(&a.peer_id().to_string()),
        "B still talks to A"
    );
    for node in [&a, &b, &c] {
        assert_clean(node);
    }
}

/// Hiding leaves a document out of lists, `show` and bundles; purging removes it for good.
#[test]
fn hide_unhide_and_purge() {
    let ada = TestHome::init("Ada");
    let commons = id(&ada.json(&["commons", "create", "Open Tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=v1"]));
    let other = id(&ada.json(&["design", "new", "Broadfork"]));
    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| dir.path().join(name).to_str().expect("path").to_string();
    ada.ok(&["bundle", "export", &path("all.bundle")]);

    let ben = TestHome::init("Ben");
    ben.json(&["commons", "join", &commons]);
    import(&ben, &dir.path().join("all.bundle"));
    assert_eq!(summary(&ben, &design).as_deref(), Some("v1"));

    // Purging needs hiding first.
    assert!(ben.fail(&["purge", &design]).contains("hide"));
    let hid = ben.json(&["hide", &design[..8], "--reason", "spam"]);
    assert_eq!(hid["id"], design.as_str());
    assert!(!listed(&ben).contains(&design));
    assert!(listed(&ben).contains(&other));
    let refused = ben.fail(&["design", "show", &design]);
    assert!(
        refused.contains("hidden on this node (spam)")
            && refused.contains(&format!("hedgerow unhide {design}")),
        "{refused}"
    );
    assert_eq!(
        ben.json(&["blocks"])["hidden"][0]["reason"],
        "spam",
        "blocks lists it"
    );
    assert_clean(&ben);
    // Not served by bundle either.
    ben.ok(&["bundle", "export", &path("ben.bundle")]);
    let cleo = TestHome::init("Cleo");
    cleo.json(&["commons", "join", &commons]);
    import(&cleo, &dir.path().join("ben.bundle"));
    assert!(summary(&cleo, &other).is_some());
    assert!(
        summary(&cleo, &design).is_none(),
        "a hidden design was exported"
    );

    ben.ok(&["unhide", &design]);
    assert!(listed(&ben).contains(&design));
    assert_eq!(summary(&ben, &design).as_deref(), Some("v1"));

    ben.ok(&["hide", &design]);
    assert!(
        journal_holds(&ben, &design),
        "the journal held Ada's signed change"
    );
    let purged = ben.json(&["purge", &design]);
    assert_eq!(purged["changes"], 1, "{purged}");
    assert_clean(&ben);
    assert!(ben.fail(&["design", "show", &design]).contains("no design"));
    // Offered again, it is refused.
    let report = import(&ben, &dir.path().join("all.bundle"));
    let texts = refusals(&report);
    assert_eq!(texts.len(), 1, "{report}");
    assert!(texts[0].starts_with("purged:"), "{report}");
    assert!(ben.fail(&["design", "show", &design]).contains("no design"));
    assert_clean(&ben);
    // Nor can `hedgerow repair` bring it back: the journal no longer holds Ada's change.
    assert!(!journal_holds(&ben, &design), "the journal still holds it");
}

/// A retraction travels in the commons' charter: every node that gets it (one that blocks the
/// author too) stops listing, showing and serving the document; only its creator may retract it.
#[test]
fn a_retracted_document_is_withdrawn_on_every_node() {
    let ada = TestHome::init("Ada");
    let commons = id(&ada.json(&["commons", "create", "Open Tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=v1"]));
    let other = id(&ada.json(&["design", "new", "Broadfork"]));
    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| dir.path().join(name);
    let text = |name: &str| path(name).to_str().expect("path").to_string();
    ada.ok(&["bundle", "export", &text("before.bundle")]);
    let ben = TestHome::init("Ben");
    ben.json(&["commons", "join", &commons]);
    import(&ben, &path("before.bundle"));
    assert_eq!(summary(&ben, &design).as_deref(), Some("v1"));

    assert!(ben
        .fail(&["design", "retract", &design])
        .contains("only its creator"));
    let retracted = ada.json(&["design", "retract", &design]);
    assert_eq!(retracted["id"], design.as_str());
    assert!(ada.fail(&["design", "show", &design]).contains("retracted"));
    assert!(!listed(&ada).contains(&design));
    ada.ok(&["bundle", "export", &text("after.bundle")]);
    // A local block holds back an author's content, not their charter operations.
    ben.ok(&["block", &author(&ada)]);
    let report = import(&ben, &path("after.bundle"));
    assert_eq!(report["rejected"], serde_json::json!([]), "{report}");
    assert!(ben
        .fail(&["design", "show", &design])
        .contains("retracted by its author"));
    assert!(!listed(&ben).contains(&design));
    assert!(listed(&ben).contains(&other));
    // Ben serves it no more either.
    ben.ok(&["bundle", "export", &text("ben.bundle")]);
    let cleo = TestHome::init("Cleo");
    cleo.json(&["commons", "join", &commons]);
    import(&cleo, &path("ben.bundle"));
    assert!(summary(&cleo, &other).is_some());
    assert!(
        cleo.fail(&["design", "show", &design])
            .contains("no design"),
        "a retracted design was served"
    );
    for home in [&ada, &ben, &cleo] {
        assert_clean(home);
    }
}
