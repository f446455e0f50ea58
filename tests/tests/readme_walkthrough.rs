//! README "Using it" and "Concurrent edits", run through the real binary as a new user types
//! them: capitalised values, prefixes in upper case, names instead of ids, two commons on the
//! node. Asserts outcomes (the same design found, values normalised, a conflict shown then
//! settled, the search naming the field, a printable plan), never exact prose.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use hedgerow_tests::{id, TestHome};
use serde_json::Value;

/// The ids of a JSON list reply.
fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_walkthrough_typed_as_people_type_it() {
    let farm = TestHome::init("Ada Farmer");
    let commons = id(&farm.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&farm.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=Crimps a cover crop flat",
        "--set",
        "stage=Prototype",
        "--set",
        "licence.hardware=CERN-OHL-S-2.0",
        "--tag",
        "No Till",
        "--bom-line",
        "steel tube 406 mm;1;pcs;scrap yard",
        "--step",
        "Cut the tube to 1.6 m",
    ]));
    let upper = design[..6].to_uppercase();

    // Values a person types with capitals and spaces are stored as the field's choice.
    farm.ok(&[
        "design",
        "edit",
        &upper,
        "--edit-step",
        "1=Cut the tube to 1.5 m",
        "--set",
        "stage=Functional Prototype",
    ]);
    let out = farm.run_with_stdin(
        &["design", "edit", &design[..5], "--stdin", "how_it_works"],
        b"A drum with chevron blades rolls the crop flat.\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second commons: commands given an id or a name still find their commons.
    farm.json(&["commons", "create", "Seed library"]);
    for way in [
        design.as_str(),
        &design[..4],
        &upper,
        "roller crimper",
        "ROLLER CRIMPER",
    ] {
        let shown = farm.json(&["design", "show", way]);
        assert_eq!(shown["id"], design.as_str(), "found by {way:?}");
        assert_eq!(shown["stage"], "functional-prototype", "by {way:?}");
        assert_eq!(shown["tags"], serde_json::json!(["No Till"]));
        assert_eq!(shown["steps"][0], "Cut the tube to 1.5 m");
    }
    let blame = farm.json(&["design", "blame", &upper, "steps.1"]);
    assert!(blame.is_array() || blame.is_object());
    farm.json(&["design", "history", "roller crimper"]);

    let fork = id(&farm.json(&[
        "design",
        "fork",
        "Roller Crimper",
        "--name",
        "Crimper for walking tractors",
    ]));
    farm.json(&["design", "release", &upper, "--version", "1.0"]);
    let released = farm.json(&["design", "show", "roller crimper", "--version", "1.0"]);
    assert_eq!(released["id"], design.as_str());

    // An event linking the design by name, a note on the event by its title.
    let event = id(&farm.json(&[
        "event",
        "new",
        "Build day",
        "--commons",
        "farm hack TOOLS",
        "--set",
        "start=2026-03-14",
        "--set",
        "location.name=Ferme des Chênes",
        "--add",
        "designs=roller crimper",
    ]));
    let note = id(&farm.json(&[
        "note",
        "add",
        "--on",
        "Build day",
        "--kind",
        "Build-Log",
        "--text",
        "Built two drums",
    ]));
    let shown = farm.json(&["event", "show", "build day"]);
    assert_eq!(shown["id"], event.as_str());
    assert_eq!(shown["designs"], serde_json::json!([design]));
    let notes = farm.json(&["note", "list", "--on", "BUILD DAY"]);
    assert_eq!(ids(&notes), vec![note.clone()]);
    assert_eq!(notes[0]["kind"], "build-log");

    // The search: tag in another spelling, stage as typed, the field named.
    let by_tag = farm.json(&[
        "design",
        "list",
        "--commons",
        &commons[..5].to_uppercase(),
        "--search",
        "CRIMP",
        "--tag",
        "no-till",
        "--stage",
        "Functional_Prototype",
    ]);
    let found = ids(&by_tag);
    assert!(found.contains(&design), "{by_tag}");
    assert!(
        found.contains(&fork),
        "a fork keeps tags and stage: {by_tag}"
    );
    let by_step = farm.json(&[
        "design",
        "list",
        "--commons",
        "Farm Hack tools",
        "--search",
        "1.5 M",
    ]);
    let hit = by_step
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == design.as_str())
        .unwrap_or_else(|| panic!("the step text is searched: {by_step}"));
    assert_eq!(hit["matched"], serde_json::json!(["steps.1"]));
    // Without a commons and with two held, a list says which to choose.
    assert!(farm.fail(&["design", "list"]).contains("--commons"));

    // A design nobody edited concurrently has no conflicts, in JSON too.
    assert_eq!(
        farm.json(&["design", "conflicts", "roller crimper"]),
        serde_json::json!([])
    );

    // The printable plan: format in any case, BOM table and numbered steps.
    let plan = farm.path().join("plan.html");
    let plan_arg = plan.to_str().unwrap();
    let wrote = farm.json(&[
        "design",
        "export",
        "Roller Crimper",
        "--format",
        "HTML",
        "--out",
        plan_arg,
    ]);
    assert_eq!(wrote["format"], "html");
    let html = std::fs::read_to_string(&plan).unwrap();
    assert!(html.contains("<table"), "a BOM table");
    assert!(html.contains("steel tube 406 mm"));
    assert!(html.contains("<ol"), "numbered steps");
    assert!(html.contains("Cut the tube to 1.5 m"));
    assert!(html.contains("CERN-OHL-S-2.0"));
    let markdown = farm.ok(&["design", "export", &upper, "--format", "Markdown"]);
    assert!(markdown.contains("Cut the tube to 1.5 m"));
    let data = farm.json(&["design", "export", &upper]);
    assert_eq!(data["design"]["name"], "Roller crimper", "{data}");

    let profile = farm.json(&["profile", "edit", "--set", "name=Ada B. Farmer"]);
    assert_eq!(profile["name"], "Ada B. Farmer");
    for args in [
        &["event", "list", "--commons", "Farm Hack tools"][..],
        &["commons", "list"],
        &["whoami"],
        &["design", "blame", &upper, "steps"],
        &["event", "history", "Build day"],
        &["note", "history", &note[..6]],
    ] {
        farm.json(args);
    }
}

#[test]
fn a_conflict_seen_and_settled_by_name_and_prefix() {
    let farm = TestHome::init("Farm");
    let commons = id(&farm.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&farm.json(&[
        "design",
        "new",
        "Roller crimper",
        "--step",
        "Cut the tube to 1.6 m",
        "--set",
        "stage=prototype",
    ]));
    let hub = TestHome::init("Hub");
    hub.json(&["commons", "join", &commons]);
    let carry = |from: &TestHome, to: &TestHome| {
        let file = from.path().join("stick.bundle");
        let file = file.to_str().unwrap();
        from.ok(&["bundle", "export", file]);
        to.ok(&["bundle", "import", file]);
    };
    carry(&farm, &hub);
    carry(&hub, &farm);

    farm.ok(&[
        "design",
        "edit",
        "roller CRIMPER",
        "--edit-step",
        "1=Cut the tube to 1.4 m (farm measure)",
        "--set",
        "stage=In-Use",
    ]);
    hub.ok(&[
        "design",
        "edit",
        &design[..6].to_uppercase(),
        "--edit-step",
        "1=Cut the tube to 1.45 m",
        "--set",
        "stage=Production Ready",
    ]);
    carry(&farm, &hub);
    carry(&hub, &farm);

    let open = farm.json(&["design", "conflicts", "Roller Crimper"]);
    let conflicts = open[0]["conflicts"].as_array().unwrap();
    let fields: Vec<&str> = conflicts
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"steps.1") && fields.contains(&"stage"),
        "{open}"
    );
    let step = conflicts.iter().find(|c| c["field"] == "steps.1").unwrap();
    let hub_side = step["sides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["author_name"] == "Hub")
        .unwrap();
    assert_eq!(hub_side["value"], "Cut the tube to 1.45 m");
    let take = hub_side["change"].as_str().unwrap()[..8].to_uppercase();

    farm.json(&[
        "design",
        "resolve",
        "roller crimper",
        "steps.1",
        "--take",
        &take,
    ]);
    farm.json(&[
        "design",
        "resolve",
        &design[..5],
        "stage",
        "--text",
        "In Use",
    ]);
    assert_eq!(
        farm.json(&["design", "conflicts", "roller crimper"]),
        serde_json::json!([])
    );
    carry(&farm, &hub);
    for home in [&farm, &hub] {
        let shown = home.json(&["design", "show", "roller crimper"]);
        assert_eq!(shown["steps"][0], "Cut the tube to 1.45 m");
        assert_eq!(shown["stage"], "in-use");
        assert_eq!(shown["conflicts"], serde_json::json!([]));
    }
}

#[test]
fn a_retracted_fork_leaves_the_lineage_as_it_leaves_the_list() {
    let farm = TestHome::init("Ada Farmer");
    farm.json(&["commons", "create", "Farm Hack tools"]);
    let design = id(&farm.json(&["design", "new", "Roller crimper"]));
    let kept = id(&farm.json(&["design", "fork", "roller crimper", "--name", "Crimper two"]));
    let gone = id(&farm.json(&[
        "design",
        "fork",
        "Roller Crimper",
        "--name",
        "Crimper for walking tractors",
    ]));
    farm.json(&["design", "retract", "crimper for walking tractors"]);
    assert!(!ids(&farm.json(&["design", "list"])).contains(&gone));
    let lineage = farm.json(&["design", "lineage", &design[..5].to_uppercase()]);
    let derivatives: Vec<&str> = lineage["derivatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(derivatives, vec![kept.as_str()], "{lineage}");
}
