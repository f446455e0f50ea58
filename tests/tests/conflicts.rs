//! Concurrent edits end to end: two real homes edit the same commons offline, exchange
//! bundles, and `show` / `conflicts` / `resolve` surface and settle what overlapped.
//!
//! ```text
//!   farm ──edit offline──┐                    ┌── show: steps.1 IN CONFLICT (both versions)
//!                        ├── bundle <-> bundle ┤
//!   hub  ──edit offline──┘                    └── resolve --take on one, exchange, none on both
//! ```

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use hedgerow_tests::net::ServeNode;
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::collections::BTreeSet;

/// A farm and a hub holding the same commons, with one design and (when asked) an event
/// with a note, all made on the farm and carried to the hub.
struct Pair {
    farm: TestHome,
    hub: TestHome,
    design: String,
    note: String,
}

impl Pair {
    fn new() -> Self {
        let farm = TestHome::init("Farm");
        let commons = id(&farm.json(&["commons", "create", "Farm Hack tools"]));
        let design = id(&farm.json(&[
            "design",
            "new",
            "Roller crimper",
            "--step",
            "Cut the tube to 1.6 m. Weld the blades in a chevron, then grind them smooth.",
            "--step",
            "Mount it on the three-point hitch",
            "--set",
            "stage=prototype",
        ]));
        let event = id(&farm.json(&["event", "new", "Build day"]));
        let note = id(&farm.json(&["note", "add", "--on", &event, "--text", "Built two drums"]));
        let hub = TestHome::init("Hub");
        hub.json(&["commons", "join", &commons]);
        let pair = Pair {
            farm,
            hub,
            design,
            note,
        };
        pair.carry(&pair.farm, &pair.hub);
        // The hub's profile (its name) travels back, so the farm can name its sides.
        pair.carry(&pair.hub, &pair.farm);
        pair
    }

    /// Everything `from` holds, carried to `to` on a stick.
    fn carry(&self, from: &TestHome, to: &TestHome) {
        let file = from.path().join("stick.bundle");
        let file = file.to_str().unwrap();
        from.ok(&["bundle", "export", file]);
        to.ok(&["bundle", "import", file]);
    }

    fn exchange(&self) {
        self.carry(&self.farm, &self.hub);
        self.carry(&self.hub, &self.farm);
    }
}

/// The `conflicts` list of a `show --json`.
fn shown_conflicts(home: &TestHome, kind: &str, doc: &str) -> Vec<Value> {
    let shown = home.json(&[kind, "show", doc]);
    shown["conflicts"].as_array().cloned().unwrap()
}

/// The values of a conflict's sides.
fn values(conflict: &Value) -> BTreeSet<String> {
    conflict["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_str().unwrap().to_string())
        .collect()
}

/// The side whose value is `value`.
fn side<'a>(conflict: &'a Value, value: &str) -> &'a Value {
    conflict["sides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["value"] == value)
        .unwrap_or_else(|| panic!("no side wrote `{value}`: {conflict}"))
}

#[test]
fn the_farm_and_hub_lengths_are_shown_as_written_and_settled_everywhere() {
    let p = Pair::new();
    let farm_text = "Cut the tube to 1.4 m (farm measure)";
    let hub_text = "Cut the tube to 1.45 m";
    let step =
        |text: &str| format!("1={text}. Weld the blades in a chevron, then grind them smooth.");
    p.farm
        .ok(&["design", "edit", &p.design, "--edit-step", &step(farm_text)]);
    p.hub
        .ok(&["design", "edit", &p.design, "--edit-step", &step(hub_text)]);
    p.exchange();

    for home in [&p.farm, &p.hub] {
        let conflicts = shown_conflicts(home, "design", &p.design);
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0]["field"], "steps.1");
        let farm_version =
            format!("{farm_text}. Weld the blades in a chevron, then grind them smooth.");
        let hub_version =
            format!("{hub_text}. Weld the blades in a chevron, then grind them smooth.");
        assert_eq!(
            values(&conflicts[0]),
            BTreeSet::from([farm_version.clone(), hub_version.clone()])
        );
        assert_eq!(side(&conflicts[0], &farm_version)["author_name"], "Farm");
        assert_eq!(side(&conflicts[0], &hub_version)["author_name"], "Hub");
    }
    let human = p.farm.ok(&["design", "show", &p.design]);
    assert!(human.contains("IN CONFLICT: steps.1"), "{human}");
    assert!(
        human.contains(farm_text) && human.contains(hub_text),
        "{human}"
    );
    let listed = p.farm.json(&["design", "conflicts"]);
    assert_eq!(listed[0]["id"], p.design.as_str(), "{listed}");
    assert_eq!(listed[0]["conflicts"][0]["field"], "steps.1", "{listed}");

    // The farm takes the hub's version; the hub learns it from the next stick.
    let conflict = &shown_conflicts(&p.farm, "design", &p.design)[0];
    let hub_version = format!("{hub_text}. Weld the blades in a chevron, then grind them smooth.");
    let change = side(conflict, &hub_version)["change"].as_str().unwrap()[..10].to_string();
    let resolved = p
        .farm
        .json(&["design", "resolve", &p.design, "steps.1", "--take", &change]);
    assert!(resolved["change"].is_string(), "{resolved}");
    let shown = p.farm.json(&["design", "show", &p.design]);
    assert_eq!(shown["conflicts"], Value::Array(Vec::new()), "{shown}");
    assert_eq!(shown["steps"][0], hub_version.as_str(), "{shown}");
    assert_eq!(shown_conflicts(&p.hub, "design", &p.design).len(), 1);
    p.exchange();
    let shown = p.hub.json(&["design", "show", &p.design]);
    assert_eq!(shown["conflicts"], Value::Array(Vec::new()), "{shown}");
    assert_eq!(shown["steps"][0], hub_version.as_str(), "{shown}");
    assert_eq!(
        p.hub.json(&["design", "conflicts"]),
        Value::Array(Vec::new())
    );
    assert!(!p
        .hub
        .ok(&["design", "show", &p.design])
        .contains("IN CONFLICT"));
}

#[test]
fn a_concurrent_stage_is_shown_and_settled_with_new_text() {
    let p = Pair::new();
    p.farm.ok(&[
        "design",
        "edit",
        &p.design,
        "--set",
        "stage=functional-prototype",
    ]);
    p.hub
        .ok(&["design", "edit", &p.design, "--set", "stage=concept"]);
    p.exchange();
    let conflicts = shown_conflicts(&p.farm, "design", &p.design);
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["field"], "stage");
    assert_eq!(
        values(&conflicts[0]),
        BTreeSet::from(["functional-prototype".to_string(), "concept".to_string()])
    );
    let human = p.farm.ok(&["design", "show", &p.design]);
    assert!(human.contains("IN CONFLICT: stage"), "{human}");

    // Refused: a field not in conflict, a change that is no side, a value the field refuses.
    let error = p
        .farm
        .fail(&["design", "resolve", &p.design, "name", "--text", "Crimper"]);
    assert!(
        error.contains("no open conflict") && error.contains("stage"),
        "{error}"
    );
    let error = p.farm.fail(&[
        "design", "resolve", &p.design, "stage", "--take", "00000000",
    ]);
    assert!(error.contains("no side"), "{error}");
    let error = p.farm.fail(&[
        "design", "resolve", &p.design, "stage", "--text", "finished",
    ]);
    assert!(error.contains("finished"), "{error}");
    assert_eq!(shown_conflicts(&p.farm, "design", &p.design).len(), 1);

    p.farm
        .ok(&["design", "resolve", &p.design, "stage", "--text", "in-use"]);
    let shown = p.farm.json(&["design", "show", &p.design]);
    assert_eq!(shown["stage"], "in-use", "{shown}");
    assert_eq!(shown["conflicts"], Value::Array(Vec::new()), "{shown}");
    p.exchange();
    let shown = p.hub.json(&["design", "show", &p.design]);
    assert_eq!(shown["stage"], "in-use", "{shown}");
    assert_eq!(shown["conflicts"], Value::Array(Vec::new()), "{shown}");
}

#[test]
fn edits_apart_merge_silently() {
    let p = Pair::new();
    // Different sentences of one step, far apart, and another step.
    p.farm.ok(&[
        "design",
        "edit",
        &p.design,
        "--edit-step",
        "1=Cut the tube to 1.5 m. Weld the blades in a chevron, then grind them smooth.",
    ]);
    p.hub.ok(&[
        "design",
        "edit",
        &p.design,
        "--edit-step",
        "1=Cut the tube to 1.6 m. Weld the blades in a chevron, then file them smooth.",
        "--edit-step",
        "2=Mount it on the hitch",
    ]);
    p.exchange();
    let shown = p.farm.json(&["design", "show", &p.design]);
    assert_eq!(shown["conflicts"], Value::Array(Vec::new()), "{shown}");
    assert_eq!(
        shown["steps"][0],
        "Cut the tube to 1.5 m. Weld the blades in a chevron, then file them smooth."
    );
    assert_eq!(
        p.farm.json(&["design", "conflicts", &p.design]),
        Value::Array(Vec::new())
    );
    assert!(!p
        .farm
        .ok(&["design", "show", &p.design])
        .contains("IN CONFLICT"));
}

#[test]
fn a_note_written_together_conflicts_like_a_step() {
    let p = Pair::new();
    p.farm
        .ok(&["note", "edit", &p.note, "--text", "Built three drums"]);
    p.hub
        .ok(&["note", "edit", &p.note, "--text", "Built four drums"]);
    p.exchange();
    let conflicts = shown_conflicts(&p.hub, "note", &p.note);
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["field"], "body");
    assert_eq!(
        values(&conflicts[0]),
        BTreeSet::from([
            "Built three drums".to_string(),
            "Built four drums".to_string()
        ])
    );
    let listed = p.hub.json(&["note", "conflicts"]);
    assert_eq!(listed[0]["id"], p.note.as_str(), "{listed}");
    let human = p.hub.ok(&["note", "conflicts"]);
    assert!(human.contains("hedgerow note resolve"), "{human}");
    p.hub.ok(&[
        "note",
        "resolve",
        &p.note,
        "body",
        "--text",
        "Built three drums, and a fourth is half done",
    ]);
    p.exchange();
    let shown = p.farm.json(&["note", "show", &p.note]);
    assert_eq!(
        shown["body"],
        "Built three drums, and a fourth is half done"
    );
    assert_eq!(shown["conflicts"], Value::Array(Vec::new()), "{shown}");
}

/// Settled on a running node (through its control socket), carried by one loopback sync.
#[test]
fn a_resolution_on_a_running_node_reaches_the_other_by_sync() {
    let p = Pair::new();
    p.farm
        .ok(&["design", "edit", &p.design, "--set", "stage=concept"]);
    p.hub
        .ok(&["design", "edit", &p.design, "--set", "stage=in-use"]);
    p.exchange();
    let Pair {
        farm, hub, design, ..
    } = p;
    let farm = ServeNode::start(farm, &[]);
    let listed = farm.json(&["design", "conflicts", &design]);
    assert_eq!(listed[0]["conflicts"][0]["field"], "stage", "{listed}");
    let conflict = &listed[0]["conflicts"][0];
    let change = side(conflict, "concept")["change"].as_str().unwrap()[..8].to_string();
    farm.ok(&["design", "resolve", &design, "stage", "--take", &change]);
    assert_eq!(
        farm.json(&["design", "show", &design])["conflicts"],
        Value::Array(Vec::new())
    );
    let synced = hub.json(&["sync", "--peer", &farm.multiaddr(), "--linger", "1"]);
    assert!(synced["changes_received"].as_u64() >= Some(1), "{synced}");
    let shown = hub.json(&["design", "show", &design]);
    assert_eq!(shown["stage"], "concept", "{shown}");
    assert_eq!(shown["conflicts"], Value::Array(Vec::new()), "{shown}");
}
