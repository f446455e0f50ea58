//! One rule per field, the same on every path, with the real binary: a name cannot be
//! removed any more than emptied, build steps and notes cannot be empty, `derivative_of` names
//! a design and lineage shows it, an event cannot list itself, and tags that differ only in
//! case or separators are one tag.

use hedgerow_tests::{id, TestHome};
use serde_json::Value;

fn home_with_commons() -> TestHome {
    let home = TestHome::init("Ada");
    home.ok(&["commons", "create", "Farm Hack tools"]);
    home
}

fn count(list: &Value) -> usize {
    list.as_array().map_or(0, Vec::len)
}

fn tags(home: &TestHome, design: &str) -> Vec<String> {
    home.json(&["design", "show", design])["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t.as_str().expect("tag").to_string())
        .collect()
}

#[test]
fn a_name_cannot_be_removed_any_more_than_emptied() {
    let home = home_with_commons();
    let design = id(&home.json(&["design", "new", "Roller crimper"]));
    let emptied = home.fail(&["design", "edit", &design, "--set", "name="]);
    let removed = home.fail(&["design", "edit", &design, "--unset", "name"]);
    assert_eq!(emptied, removed, "one rule, one message");
    assert!(removed.contains("`name`"), "{removed}");
    assert_eq!(
        home.json(&["design", "show", &design])["name"],
        "Roller crimper"
    );
    // The same on the new path: nothing is created.
    home.fail(&["design", "new", "Seed drill", "--unset", "name"]);
    assert_eq!(count(&home.json(&["design", "list"])), 1);
    let event = id(&home.json(&["event", "new", "Build day"]));
    home.fail(&["event", "edit", &event, "--unset", "title"]);
    assert_eq!(home.json(&["event", "show", &event])["title"], "Build day");
    // Fields that may be empty still can be removed.
    home.ok(&["design", "edit", &design, "--set", "stage=prototype"]);
    home.ok(&["design", "edit", &design, "--unset", "stage"]);
}

#[test]
fn build_steps_cannot_be_empty() {
    let home = home_with_commons();
    let design = id(&home.json(&["design", "new", "Roller crimper", "--step", "Cut"]));
    for blank in ["", "   ", "\n"] {
        let error = home.fail(&["design", "edit", &design, "--step", blank]);
        assert!(error.contains("build step"), "{error}");
    }
    let error = home.fail(&["design", "edit", &design, "--edit-step", "1= "]);
    assert!(error.contains("build step 1"), "{error}");
    assert_eq!(
        home.json(&["design", "show", &design])["steps"],
        serde_json::json!(["Cut"])
    );
    home.fail(&["design", "new", "Seed drill", "--step", ""]);
    assert_eq!(count(&home.json(&["design", "list"])), 1);
}

#[test]
fn notes_cannot_be_empty() {
    let home = home_with_commons();
    let event = id(&home.json(&["event", "new", "Build day"]));
    for blank in ["", "  \n "] {
        let error = home.fail(&["note", "add", "--on", &event, "--text", blank]);
        assert!(error.contains("`body`"), "{error}");
    }
    assert_eq!(count(&home.json(&["note", "list"])), 0);
    let note = id(&home.json(&["note", "add", "--on", &event, "--text", "Two drums"]));
    home.fail(&["note", "edit", &note, "--text", ""]);
    assert_eq!(home.json(&["note", "show", &note])["body"], "Two drums");
}

#[test]
fn derivative_of_names_a_design_and_lineage_shows_it() {
    let home = home_with_commons();
    let parent = id(&home.json(&["design", "new", "Roller crimper"]));
    let event = id(&home.json(&["event", "new", "Build day"]));
    let child = id(&home.json(&["design", "new", "Crimper v2"]));
    for bad in ["not an id", event.as_str(), child.as_str()] {
        home.fail(&[
            "design",
            "edit",
            &child,
            "--set",
            &format!("derivative_of={bad}"),
        ]);
    }
    let error = home.fail(&["design", "edit", &child, "--set", "derivative_of="]);
    assert!(error.contains("cannot be empty"), "{error}");
    assert_eq!(
        home.json(&["design", "show", &child])["derivative_of"],
        Value::Null
    );
    home.ok(&[
        "design",
        "edit",
        &child,
        "--set",
        &format!("derivative_of={}", &parent[..6]),
    ]);
    let lineage = home.json(&["design", "lineage", &child]);
    assert_eq!(lineage["ancestors"][0]["id"], parent.as_str(), "{lineage}");
    assert_eq!(lineage["ancestors"][0]["name"], "Roller crimper");
    let lineage = home.json(&["design", "lineage", &parent]);
    assert_eq!(lineage["derivatives"][0]["id"], child.as_str(), "{lineage}");
    assert_eq!(lineage["derivatives"][0]["parent"], parent.as_str());
    // A grandchild by declaration is the parent's derivative too; a loop is refused.
    let grandchild = id(&home.json(&[
        "design",
        "new",
        "Crimper v3",
        "--set",
        &format!("derivative_of={child}"),
    ]));
    let lineage = home.json(&["design", "lineage", &grandchild]);
    assert_eq!(count(&lineage["ancestors"]), 2, "{lineage}");
    assert_eq!(
        count(&home.json(&["design", "lineage", &parent])["derivatives"]),
        2
    );
    let error = home.fail(&[
        "design",
        "edit",
        &parent,
        "--set",
        &format!("derivative_of={grandchild}"),
    ]);
    assert!(error.contains("loop"), "{error}");
    // A fork's parent is fixed by its signed origin.
    let fork = id(&home.json(&["design", "fork", &parent]));
    let error = home.fail(&[
        "design",
        "edit",
        &fork,
        "--set",
        &format!("derivative_of={child}"),
    ]);
    assert!(error.contains("fork"), "{error}");
}

#[test]
fn an_event_cannot_list_itself() {
    let home = home_with_commons();
    let event = id(&home.json(&["event", "new", "Build day"]));
    let before = home.json(&["event", "show", &event])["changes"].clone();
    let error = home.fail(&[
        "event",
        "edit",
        &event,
        "--add",
        &format!("designs={event}"),
    ]);
    assert!(error.contains("designs"), "{error}");
    let shown = home.json(&["event", "show", &event]);
    assert_eq!(count(&shown["designs"]), 0);
    assert_eq!(shown["changes"], before);
    let design = id(&home.json(&["design", "new", "Roller crimper"]));
    let error = home.fail(&[
        "design",
        "edit",
        &design,
        "--set",
        &format!("variant_of={design}"),
    ]);
    assert!(error.contains("itself"), "{error}");
}

#[test]
fn tags_differing_in_case_or_separators_are_one_tag() {
    let home = home_with_commons();
    let design = id(&home.json(&["design", "new", "Roller crimper", "--tag", "No-Till"]));
    home.ok(&[
        "design", "edit", &design, "--tag", "no-till", "--tag", "no till", "--tag", "NO_TILL",
    ]);
    assert_eq!(
        tags(&home, &design),
        vec!["No-Till"],
        "first written form kept"
    );
    home.ok(&["design", "edit", &design, "--tag", "cover crops"]);
    home.ok(&["design", "edit", &design, "--untag", "no till"]);
    assert_eq!(tags(&home, &design), vec!["cover crops"]);
    home.fail(&["design", "edit", &design, "--tag", " - _ "]);
}

#[test]
fn tags_written_apart_and_merged_show_once() {
    let farm = home_with_commons();
    let design = id(&farm.json(&["design", "new", "Roller crimper"]));
    let hub = TestHome::init("Bea");
    let bundle = farm.path().join("first.bundle");
    let bundle = bundle.to_str().expect("utf-8 path");
    farm.ok(&["bundle", "export", bundle]);
    hub.ok(&["bundle", "import", bundle, "--all-commons"]);
    // Each side tags it offline, in its own spelling.
    farm.ok(&["design", "edit", &design, "--tag", "No-Till"]);
    hub.ok(&["design", "edit", &design, "--tag", "no till"]);
    let back = hub.path().join("back.bundle");
    let back = back.to_str().expect("utf-8 path");
    hub.ok(&["bundle", "export", back]);
    farm.ok(&["bundle", "import", back]);
    let shown = tags(&farm, &design);
    assert_eq!(shown.len(), 1, "{shown:?}");
}
