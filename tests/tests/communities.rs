//! Stewarded commons end to end with the real binary: invitations, roles, admission on every
//! path (local CLI, bundles, live gossip and sync through real `serve` processes on
//! loopback), removal while writing, and redemption carried back by bundle.
//!
//! ```text
//!   offline:   Alice (steward) ──bundle── Ben (member), Gus (guest), Vic (not a member)
//!   vandal:    Alice serve <── Ben serve (hub) <── Vic serve
//!   removal:   Alice serve <──> Ben serve, Ben writing while Alice removes him
//!   offline redemption: Carol accepts with no node online, bundle to Alice and back
//! ```

use hedgerow_protocol::bundle_file::{decode_bundle, encode_records, Record};
use hedgerow_tests::net::{converge, wait_until, ServeNode};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::time::Duration;

/// Exports everything `from` holds and imports it into `to`; the import's JSON report.
fn carry(from: &TestHome, to: &TestHome) -> Value {
    let path = from.path().join("carry.bundle");
    let path = path.to_str().expect("utf-8 path");
    from.ok(&["bundle", "export", path]);
    let out = to.run(&["bundle", "import", path, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bundle import printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Bundles between a steward and the others until every node holds the same charter (two
/// rounds: a redemption the replay ordered before `Found` is renewed in the first).
fn settle(hub: &TestHome, others: &[&TestHome]) {
    for _ in 0..2 {
        for other in others {
            carry(other, hub);
        }
        for other in others {
            carry(hub, other);
        }
    }
}

/// Persons and roles of `commons members --json`, sorted.
fn roles(home: &TestHome) -> Vec<(String, String)> {
    let members = home.json(&["commons", "members"]);
    let mut out: Vec<(String, String)> = members
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            (
                m["person"].as_str().expect("person").to_string(),
                m["role"].as_str().expect("role").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn author(home: &TestHome) -> String {
    home.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string()
}

/// A home that holds the commons' genesis record only (no charter): to it the commons looks
/// open, as to a vandal who learnt the id, so it writes what members' nodes must refuse.
fn vandal_with_the_commons(steward: &TestHome, commons: &str) -> TestHome {
    let vic = TestHome::init("Vic");
    let full = steward.path().join("full.bundle");
    steward.ok(&["bundle", "export", full.to_str().expect("path")]);
    let bytes = std::fs::read(&full).expect("read bundle");
    let decoded = decode_bundle(&bytes);
    let only_commons: Vec<Record> = decoded
        .records
        .into_iter()
        .filter(|r| matches!(r, Record::Commons(_)))
        .collect();
    let path = vic.path().join("commons-only.bundle");
    std::fs::write(&path, encode_records(&only_commons).expect("encode")).expect("write");
    vic.ok(&[
        "bundle",
        "import",
        path.to_str().expect("path"),
        "--commons",
        commons,
    ]);
    vic
}

/// The ids of `kind list --json`.
fn listed(home: &TestHome, kind: &str) -> Vec<String> {
    home.json(&[kind, "list"])
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn a_stewarded_commons_with_a_member_a_guest_and_a_vandal_offline() {
    let alice = TestHome::init("Alice");
    let created = alice.json(&["commons", "create", "Farm Hack tools", "--stewarded"]);
    let commons = id(&created);
    let member_code = alice.json(&["commons", "invite", "--role", "member"]);
    assert_eq!(member_code["role"], "member", "{member_code}");
    assert_eq!(member_code["uses"], 1, "{member_code}");
    assert!(member_code["expires_at"]
        .as_str()
        .is_some_and(|at| at > "2020-01-01T00:00:00Z" && at.ends_with('Z')));
    let guest_code = alice.ok(&["commons", "invite", "--role", "guest", "--expires", "24h"]);

    let ben = TestHome::init("Ben");
    let accepted = ben.json(&[
        "commons",
        "accept",
        member_code["code"].as_str().expect("code"),
    ]);
    assert_eq!(accepted["commons"], commons.as_str());
    assert_eq!(accepted["role"], "member");
    let gus = TestHome::init("Gus");
    gus.ok(&["commons", "accept", guest_code.trim()]);
    settle(&alice, &[&ben, &gus]);
    // The code is used up: nobody else gets in with it (once their node holds the charter).
    let eve = TestHome::init("Eve");
    let bundle = alice.path().join("for-eve.bundle");
    alice.ok(&["bundle", "export", bundle.to_str().expect("path")]);
    eve.ok(&[
        "bundle",
        "import",
        bundle.to_str().expect("path"),
        "--commons",
        &commons,
    ]);
    let log_before = eve.json(&["moderate", "log"]);
    let used = eve.fail(&[
        "commons",
        "accept",
        member_code["code"].as_str().expect("code"),
    ]);
    assert!(used.contains("used up"), "{used}");
    assert_eq!(
        eve.json(&["moderate", "log"]),
        log_before,
        "nothing written"
    );
    let expected = {
        let mut r = vec![
            (author(&alice), "steward".to_string()),
            (author(&ben), "member".to_string()),
            (author(&gus), "guest".to_string()),
        ];
        r.sort();
        r
    };
    for home in [&alice, &ben, &gus] {
        assert_eq!(roles(home), expected);
    }
    let members = alice.json(&["commons", "members"]);
    let ben_row = members
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["person"] == author(&ben).as_str())
        .expect("Ben listed");
    assert_eq!(ben_row["name"], "Ben");
    assert_eq!(ben_row["devices"].as_array().map(Vec::len), Some(1));

    // Ben (member) writes a design; Gus (guest) may add a note but not edit the design.
    let design = id(&ben.json(&["design", "new", "Roller crimper"]));
    settle(&alice, &[&ben, &gus]);
    let note = id(&gus.json(&["note", "add", "--on", &design, "--text", "Built one"]));
    let refused = gus.fail(&["design", "edit", &design, "--set", "summary=vandalised"]);
    assert!(refused.contains("guest"), "{refused}");
    let refused = gus.fail(&["design", "new", "A guest's design"]);
    assert!(refused.contains("guest"), "{refused}");
    settle(&alice, &[&ben, &gus]);
    assert_eq!(listed(&ben, "note"), vec![note.clone()]);

    // A non-member's design never enters a member's store, by bundle or otherwise.
    let vic = vandal_with_the_commons(&alice, &commons);
    let vandal = id(&vic.json(&["design", "new", "Spam", "--commons", &commons]));
    let report = carry(&vic, &ben);
    let rejected = report["rejected"].as_array().expect("rejected");
    assert!(
        rejected.iter().any(|r| r["id"] == vandal.as_str()
            && r["error"].as_str().unwrap_or("").contains("not-a-member")),
        "{report}"
    );
    assert!(!listed(&ben, "design").contains(&vandal));
    ben.fail(&["design", "show", &vandal]);
    assert!(ben.json(&["verify"])["problems"]
        .as_array()
        .expect("problems")
        .is_empty());
    // And the vandal's own node, once it holds the charter, drops it too.
    carry(&ben, &vic);
    assert!(!listed(&vic, "design").contains(&vandal));
    assert!(vic
        .fail(&["design", "new", "More spam"])
        .contains("not a member"));

    // Bad input: each a one-line error, nothing stored.
    let before = alice.json(&["moderate", "log"]).as_array().map(Vec::len);
    let err = alice.fail(&["commons", "remove", &author(&alice)]);
    assert!(err.contains("last steward"), "{err}");
    let err = alice.fail(&["commons", "role", "zzzzzz", "member"]);
    assert!(err.contains("no person"), "{err}");
    let err = ben.fail(&["commons", "invite", "--role", "member"]);
    assert!(err.contains("may not invite"), "{err}");
    let err = alice.fail(&["commons", "accept", "hri1notacode"]);
    assert!(err.lines().count() == 1, "{err}");
    // A code with one character changed: forged or unreadable, refused in one line.
    let code = alice.ok(&["commons", "invite"]);
    let code = code.trim();
    let mid = code.len() / 2;
    let swapped = if &code[mid..=mid] == "2" { "3" } else { "2" };
    let forged = format!("{}{swapped}{}", &code[..mid], &code[mid + 1..]);
    let err = TestHome::init("Fay").fail(&["commons", "accept", &forged]);
    assert!(err.lines().count() == 1 && err.contains("code"), "{err}");
    let err = alice.fail(&["commons", "invite", "--expires", "7x"]);
    assert!(err.contains("not a duration"), "{err}");
    let err = alice.fail(&["commons", "invite", "--role", "boss"]);
    assert!(err.contains("not a role"), "{err}");
    assert_eq!(
        alice.json(&["moderate", "log"]).as_array().map(Vec::len),
        before
    );

    // Moderation: a hidden design is neither listed nor shown, and says who hid it.
    alice.ok(&["moderate", "hide", &design, "--reason", "duplicate"]);
    assert!(!listed(&alice, "design").contains(&design));
    let err = alice.fail(&["design", "show", &design]);
    assert!(
        err.contains("hidden by a steward") && err.contains("duplicate"),
        "{err}"
    );
    settle(&alice, &[&ben]);
    assert!(!listed(&ben, "design").contains(&design));
    // A member who joins now is not served it at all.
    let dan = TestHome::init("Dan");
    let code = alice.json(&["commons", "invite"]);
    dan.ok(&["commons", "accept", code["code"].as_str().expect("code")]);
    settle(&alice, &[&dan]);
    assert!(dan.fail(&["design", "show", &design]).contains("no design"));
    alice.ok(&["moderate", "unhide", &design]);
    assert!(listed(&alice, "design").contains(&design));
    // Roles by key prefix: Ben made a steward, then a member again (two stewards by then).
    let ben_key = author(&ben);
    let changed = alice.json(&["commons", "role", &ben_key[..8], "steward"]);
    assert_eq!(changed["person"], ben_key.as_str(), "{changed}");
    assert!(roles(&alice).contains(&(ben_key.clone(), "steward".into())));
    alice.ok(&["commons", "role", &ben_key[..8], "member"]);
    assert!(roles(&alice).contains(&(ben_key.clone(), "member".into())));
    // A blocked guest's new notes are refused; unblocked, they are taken again.
    let gus_key = author(&gus);
    alice.ok(&["moderate", "block", &gus_key]);
    settle(&alice, &[&gus]);
    let err = gus.fail(&["note", "add", "--on", &design, "--text", "Again"]);
    assert!(err.contains("blocked"), "{err}");
    alice.ok(&["moderate", "unblock", &gus_key]);
    settle(&alice, &[&gus]);
    let again = id(&gus.json(&["note", "add", "--on", &design, "--text", "Again"]));
    settle(&alice, &[&gus]);
    assert!(listed(&alice, "note").contains(&again));
    let log = alice.json(&["moderate", "log"]);
    let actions: Vec<&str> = log
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "found", "redeem", "hide", "unhide", "set-role", "block", "unblock",
    ] {
        assert!(actions.contains(&action), "{action} missing: {log}");
    }
    assert!(alice.json(&["verify"])["problems"]
        .as_array()
        .expect("problems")
        .is_empty());

    // A member purges what a steward hid from their own store; what is not hidden stays.
    let err = alice.fail(&["moderate", "purge", &again]);
    assert!(err.contains("hide"), "{err}");
    assert!(listed(&alice, "note").contains(&again));
    alice.ok(&["moderate", "hide", &design, "--reason", "vandalism"]);
    settle(&alice, &[&ben]);
    let purged = ben.json(&["moderate", "purge", &design]);
    assert!(purged["changes"].as_u64() > Some(0), "{purged}");
    settle(&alice, &[&ben]);
    alice.ok(&["moderate", "unhide", &design]);
    settle(&alice, &[&ben]);
    assert!(ben.fail(&["design", "show", &design]).contains("no design"));
    assert!(!listed(&ben, "design").contains(&design));
    assert!(ben.json(&["verify"])["problems"]
        .as_array()
        .expect("problems")
        .is_empty());
}

#[test]
fn a_vandal_writing_through_a_running_node_reaches_no_member() {
    let alice_home = TestHome::init("Alice");
    let commons = id(&alice_home.json(&["commons", "create", "Farm Hack tools", "--stewarded"]));
    let code = alice_home.json(&["commons", "invite", "--role", "member"]);
    let ben_home = TestHome::init("Ben");
    ben_home.ok(&["commons", "accept", code["code"].as_str().expect("code")]);
    settle(&alice_home, &[&ben_home]);
    let vic_home = vandal_with_the_commons(&alice_home, &commons);
    // Written while the vandal's node holds no charter: to it the commons looks open.
    let spam = id(&vic_home.json(&["design", "new", "Spam", "--commons", &commons]));
    let spam_bundle = vic_home.path().join("spam.bundle");
    vic_home.ok(&["bundle", "export", spam_bundle.to_str().expect("path")]);

    let alice = ServeNode::start(alice_home, &[]);
    let hub = ServeNode::start(ben_home, &[&alice]);
    let vic = ServeNode::start(vic_home, &[&hub]);
    assert!(hub.wait_connected_to(vic.peer_id(), Duration::from_secs(20)));
    // The vandal's node learns the charter from the hub and stops offering its design.
    assert!(wait_until(Duration::from_secs(20), || !listed(
        &vic, "design"
    )
    .contains(&spam)));
    // Also handed to the hub's running node directly: refused, counted, not stored.
    let out = hub.run(&[
        "bundle",
        "import",
        spam_bundle.to_str().expect("path"),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("import report");
    assert!(
        report["rejected"]
            .as_array()
            .expect("rejected")
            .iter()
            .any(|r| r["id"] == spam.as_str()),
        "{report}"
    );
    // A member's edit still travels: the hub relays what the charter admits.
    let design = id(&alice.json(&["design", "new", "Roller crimper"]));
    assert!(wait_until(Duration::from_secs(20), || listed(
        &hub, "design"
    )
    .contains(&design)));
    assert!(!listed(&hub, "design").contains(&spam));
    assert!(!listed(&alice, "design").contains(&spam));
    let status = hub.status();
    assert!(hub.rejected("not-a-member") >= 1, "{status}");
    assert_eq!(status["counters"]["peers_banned"], 0, "{status}");
    assert!(hub.connected().contains(&vic.peer_id().to_string()));
    // The vandal's node cannot write there any more.
    assert!(vic
        .fail(&["design", "new", "More spam"])
        .contains("not a member"));
}

#[test]
fn a_member_removed_while_writing_ends_the_same_on_both_nodes() {
    let alice_home = TestHome::init("Alice");
    id(&alice_home.json(&["commons", "create", "Farm Hack tools", "--stewarded"]));
    let code = alice_home.json(&["commons", "invite", "--role", "member"]);
    let ben_home = TestHome::init("Ben");
    ben_home.ok(&["commons", "accept", code["code"].as_str().expect("code")]);
    settle(&alice_home, &[&ben_home]);
    let ben_key = author(&ben_home);
    let alice = ServeNode::start(alice_home, &[]);
    let mut ben = ServeNode::start(ben_home, &[&alice]);
    let design = id(&alice.json(&["design", "new", "Roller crimper"]));
    ben.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "summary=Ben's, seen by Alice",
    ]);
    let summary = |home: &TestHome| home.json(&["design", "show", &design])["summary"].clone();
    assert!(wait_until(Duration::from_secs(20), || summary(&alice)
        == "Ben's, seen by Alice"));
    // Ben writes offline while Alice removes him: Alice's removal names only what she saw.
    ben.stop();
    for n in 0..3 {
        ben.ok(&[
            "design",
            "edit",
            &design,
            "--set",
            &format!("summary=offline {n}"),
        ]);
    }
    alice.ok(&["commons", "remove", &ben_key]);
    // Back online, Ben keeps writing until his node learns of the removal.
    ben.restart();
    let writer = std::thread::spawn({
        let home = ben.path().to_path_buf();
        let design = design.clone();
        move || {
            // Bounded: his node learns of the removal within one sync of reconnecting.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            for n in 0.. {
                if std::time::Instant::now() > deadline {
                    break;
                }
                let out = std::process::Command::new(hedgerow_tests::hedgerow_bin())
                    .arg("--home")
                    .arg(&home)
                    .args(["design", "edit", &design, "--set"])
                    .arg(format!("summary=online {n}"))
                    .output()
                    .expect("run");
                if !out.status.success() {
                    return String::from_utf8_lossy(&out.stderr).to_string();
                }
            }
            String::new()
        }
    });
    let refused = writer.join().expect("writer");
    assert!(refused.contains("beyond-frontier"), "{refused}");
    // Both end with what Alice accepted: Ben's writes beyond her frontier are gone on both.
    let state = converge(&[&alice, &ben], Duration::from_secs(40));
    assert_eq!(
        state["designs"].as_array().map(Vec::len),
        Some(1),
        "{state}"
    );
    assert_eq!(summary(&alice), "Ben's, seen by Alice");
    assert_eq!(summary(&ben), "Ben's, seen by Alice");
    assert!(roles(&alice).iter().all(|(p, _)| *p != ben_key));
    assert_eq!(roles(&alice), roles(&ben));
    for home in [&alice.home, &ben.home] {
        let report = home.json(&["verify"]);
        assert!(
            report["problems"].as_array().expect("problems").is_empty(),
            "{report}"
        );
    }
}

#[test]
fn an_invitation_redeemed_offline_comes_back_by_bundle() {
    let alice = TestHome::init("Alice");
    id(&alice.json(&["commons", "create", "Farm Hack tools", "--stewarded"]));
    let code = alice.json(&["commons", "invite", "--role", "member", "--uses", "2"]);
    let carol = TestHome::init("Carol");
    carol.ok(&["commons", "accept", code["code"].as_str().expect("code")]);
    // Carol writes before anything of the commons reached her.
    let design = id(&carol.json(&["design", "new", "Seed drill"]));
    // To the steward by USB, and back, and once more.
    carry(&carol, &alice);
    carry(&alice, &carol);
    carry(&carol, &alice);
    assert!(roles(&alice).contains(&(author(&carol), "member".to_string())));
    assert_eq!(roles(&alice), roles(&carol));
    assert!(listed(&alice, "design").contains(&design));
    assert!(listed(&carol, "design").contains(&design));
}
