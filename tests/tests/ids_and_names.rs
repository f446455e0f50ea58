//! Ids as people type them, with the real binary: a prefix of 4 or more characters in any
//! case, or the exact name of a design, event or commons, works wherever an id is taken;
//! text that names several gets a one-line error listing them; a commons not held needs its
//! full id; and the commons is taken from the ids given, so two commons on a node do not make
//! every command need `--commons`.

use hedgerow_tests::net::ServeNode;
use hedgerow_tests::{id, TestHome};
use serde_json::Value;

/// A home with a commons, a design and an event.
fn farm() -> (TestHome, String, String, String) {
    let home = TestHome::init("Ada");
    let commons = id(&home.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&home.json(&["design", "new", "Roller crimper", "--step", "Cut"]));
    let event = id(&home.json(&["event", "new", "Build day"]));
    (home, commons, design, event)
}

/// `text` with its letters' case swapped, so a prefix typed that way differs from the id.
fn swap_case(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn prefixes_in_any_case_work_wherever_an_id_is_taken() {
    let (home, commons, design, event) = farm();
    let lower = design[..6].to_lowercase();
    let upper = design[..6].to_uppercase();

    home.ok(&[
        "event",
        "edit",
        &event,
        "--add",
        &format!("designs={lower}"),
    ]);
    let shown = home.json(&["event", "show", &swap_case(&event[..8])]);
    assert_eq!(strings(&shown["designs"]), vec![design.clone()]);

    let other = id(&home.json(&[
        "design",
        "new",
        "Crimper frame",
        "--related",
        &format!("component={upper}"),
        "--set",
        &format!("variant_of={}", &design[..5]),
        "--set",
        &format!("derivative_of={lower}"),
    ]));
    let shown = home.json(&["design", "show", &other]);
    assert_eq!(shown["related"][0]["design"], design.as_str());
    assert_eq!(shown["variant_of"], design.as_str());
    assert_eq!(shown["derivative_of"], design.as_str());

    let note = id(&home.json(&[
        "note",
        "add",
        "--on",
        &event[..4].to_lowercase(),
        "--text",
        "Built two drums",
    ]));
    assert_eq!(
        home.json(&["note", "show", &swap_case(&note[..6])])["target"],
        event.as_str()
    );
    let notes = home.json(&["note", "list", "--on", &swap_case(&event[..6])]);
    assert_eq!(notes.as_array().map(Vec::len), Some(1));

    let joined = home.json(&["commons", "join", &commons[..6].to_lowercase()]);
    assert_eq!(joined["commons"], commons.as_str());
    assert_eq!(joined["already_held"], true);

    let fork = home.json(&[
        "design",
        "fork",
        &upper,
        "--name",
        "Walking tractor crimper",
    ]);
    assert_eq!(fork["parent"], design.as_str());
    let lineage = home.json(&["design", "lineage", &lower]);
    let derivatives: Vec<&str> = lineage["derivatives"]
        .as_array()
        .expect("derivatives")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(derivatives.contains(&id(&fork).as_str()), "{lineage}");
    home.ok(&["design", "release", &upper, "--version", "1.0"]);
    home.ok(&["hide", &swap_case(&note[..6])]);
    home.ok(&["design", "retract", &swap_case(&other[..6])]);
}

#[test]
fn exact_names_name_designs_events_and_commons() {
    let (home, commons, design, event) = farm();
    assert_eq!(
        id(&home.json(&["design", "show", "roller CRIMPER"])),
        design,
        "a design by its name in any case"
    );
    home.ok(&[
        "event",
        "edit",
        "Build Day",
        "--add",
        "designs=Roller crimper",
    ]);
    assert_eq!(
        strings(&home.json(&["event", "show", &event])["designs"]),
        vec![design.clone()]
    );
    let note = id(&home.json(&["note", "add", "--on", "build day", "--text", "Two drums"]));
    assert_eq!(
        home.json(&["note", "show", &note])["target"],
        event.as_str()
    );
    assert_eq!(
        home.json(&["commons", "show", "farm hack tools"])["id"],
        commons.as_str()
    );
    home.ok(&["commons", "create", "Atelier"]);
    let made = id(&home.json(&[
        "design",
        "new",
        "Seed drill",
        "--commons",
        "FARM HACK TOOLS",
    ]));
    let listed = home.json(&["design", "list", "--commons", "Farm Hack tools"]);
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .any(|d| d["id"] == made.as_str()),
        "{listed}"
    );
}

#[test]
fn text_that_names_several_gets_one_line_listing_them() {
    let (home, _, design, _) = farm();
    let twin = id(&home.json(&["design", "new", "roller crimper"]));
    let error = home.fail(&["design", "show", "Roller crimper"]);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains(&design) && error.contains(&twin) && error.contains("Roller crimper"),
        "both candidates with their names: {error}"
    );

    // Two commons of one name: a warning when the second is made, and the name alone is
    // ambiguous where a commons is chosen.
    let out = home.run(&["commons", "create", "farm hack tools"]);
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.starts_with("warning:") && warning.to_lowercase().contains("farm hack tools"),
        "{warning}"
    );
    assert_eq!(warning.trim().lines().count(), 1, "{warning}");
    let error = home.fail(&["design", "list", "--commons", "Farm Hack Tools"]);
    assert!(error.contains("matches 2 commons"), "{error}");
}

#[test]
fn something_not_held_needs_its_full_id_and_the_message_says_so() {
    let (home, commons, design, event) = farm();
    let error = home.fail(&["commons", "join", "Zzzzzz"]);
    assert!(error.contains("full id"), "{error}");
    // A full id of a commons not held is wanted, as before.
    let other = TestHome::init("Bea");
    let elsewhere = id(&other.json(&["commons", "create", "Elsewhere"]));
    let joined = home.json(&["commons", "join", &elsewhere]);
    assert_eq!(joined["already_held"], false);
    assert_ne!(elsewhere, commons);

    let error = home.fail(&["event", "edit", &event, "--add", "designs=Zzzzzz"]);
    assert!(
        error.contains("designs") && error.contains("full id"),
        "{error}"
    );
    // A design not held here, by its full id, may be linked (it may arrive later).
    let remote = id(&other.json(&["design", "new", "Bea's harrow"]));
    home.ok(&[
        "event",
        "edit",
        &event,
        "--add",
        &format!("designs={remote}"),
    ]);
    let designs = strings(&home.json(&["event", "show", &event])["designs"]);
    assert_eq!(designs, vec![remote]);
    // An id of the wrong kind is refused, naming the field.
    let error = home.fail(&[
        "design",
        "edit",
        &design,
        "--set",
        &format!("variant_of={event}"),
    ]);
    assert!(
        error.contains("variant_of") && error.contains("not a design"),
        "{error}"
    );
}

#[test]
fn with_two_commons_the_ids_given_choose_the_commons() {
    let (home, _, design, event) = farm();
    let atelier = id(&home.json(&["commons", "create", "Atelier"]));
    // Commands with an id need no --commons.
    home.ok(&[
        "note",
        "add",
        "--on",
        &event[..6],
        "--text",
        "Built two drums",
    ]);
    let notes = home.json(&["note", "list", "--on", &event[..6]]);
    assert_eq!(notes.as_array().map(Vec::len), Some(1), "{notes}");
    home.ok(&["design", "show", &design[..6]]);
    home.ok(&["event", "edit", &event[..6], "--set", "status=done"]);
    // A new design that derives from another lands in its commons.
    let child = id(&home.json(&[
        "design",
        "new",
        "Crimper v2",
        "--set",
        &format!("derivative_of={}", &design[..6]),
    ]));
    let farm_hack = home.json(&["design", "list", "--commons", "farm hack tools"]);
    assert!(
        farm_hack
            .as_array()
            .expect("list")
            .iter()
            .any(|d| d["id"] == child.as_str()),
        "{farm_hack}"
    );
    // Only a command with no id still needs --commons, and the message names them.
    let error = home.fail(&["design", "list"]);
    assert!(
        error.contains("Atelier")
            && error.contains("Farm Hack tools")
            && error.contains("--commons"),
        "{error}"
    );
    let listed = home.json(&["design", "list", "--commons", &atelier[..5]]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0));
}

#[test]
fn a_running_node_resolves_prefixes_and_names_alike() {
    let (home, commons, design, event) = farm();
    let node = ServeNode::start(home, &[]);
    let joined = node.json(&["commons", "join", "farm hack tools"]);
    assert_eq!(joined["commons"], commons.as_str());
    let joined = node.json(&["commons", "join", &swap_case(&commons[..6])]);
    assert_eq!(joined["already_held"], true);
    let error = node.fail(&["commons", "join", "Zzzzzz"]);
    assert!(error.contains("full id"), "{error}");
    node.ok(&[
        "event",
        "edit",
        &event[..6],
        "--add",
        "designs=roller crimper",
    ]);
    assert_eq!(
        strings(&node.json(&["event", "show", &event])["designs"]),
        vec![design]
    );
}

#[test]
fn a_person_is_named_by_a_key_prefix_in_any_case_or_their_name() {
    let alice = TestHome::init("Alice");
    let ben = TestHome::init("Ben Baker");
    alice.ok(&["commons", "create", "Chapter", "--stewarded"]);
    let code = alice.ok(&["commons", "invite", "--role", "member"]);
    ben.ok(&["commons", "accept", code.trim()]);
    for _ in 0..2 {
        for (from, to) in [(&ben, &alice), (&alice, &ben)] {
            let path = from.path().join("carry.bundle");
            let path = path.to_str().expect("utf-8 path");
            from.ok(&["bundle", "export", path]);
            to.ok(&["bundle", "import", path]);
        }
    }
    let ben_key = ben.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string();
    let role = |home: &TestHome| {
        home.json(&["commons", "members"])
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["person"] == ben_key.as_str())
            .map(|m| m["role"].as_str().expect("role").to_string())
    };
    assert_eq!(role(&alice).as_deref(), Some("member"));
    alice.ok(&["commons", "role", "ben baker", "steward"]);
    assert_eq!(role(&alice).as_deref(), Some("steward"));
    alice.ok(&["commons", "role", &swap_case(&ben_key[..6]), "member"]);
    assert_eq!(role(&alice).as_deref(), Some("member"));
}

#[test]
fn a_bundle_bringing_a_second_commons_of_one_name_warns() {
    let (farm, ..) = farm();
    let hub = TestHome::init("Bea");
    hub.ok(&["commons", "create", "Farm Hack Tools"]);
    let path = hub.path().join("hub.bundle");
    let path = path.to_str().expect("utf-8 path");
    hub.ok(&["bundle", "export", path]);
    let out = farm.run(&["bundle", "import", path, "--all-commons"]);
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.starts_with("warning: 2 commons here are named"),
        "{warning}"
    );
}
