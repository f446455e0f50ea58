//! The everyday commands a farmer or an event host reaches for, through the real binary:
//! search and filters, tags on events, changing your name, replies to notes, a BOM line
//! edited in place, history and blame of events and notes, a printable plan, and plain
//! words when someone asks to delete or search.
//!
//! ```text
//!   ada: designs (tags, stages, steps) -> list --tag/--stage/--search
//!   ada: event --tag -> event list --tag/--search; notes -> replies -> note list --on
//!   ada ──bundle──> bea: both edit BOM line 1 (different parts) ──bundle──> ada: both kept
//!   ada: design export --format markdown|html [--out FILE [--force]]
//! ```

use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::path::Path;

/// A home with one commons; returns it and the commons id.
fn home_with_commons(name: &str) -> (TestHome, String) {
    let home = TestHome::init(name);
    let commons = id(&home.json(&["commons", "create", "Farm Hack tools"]));
    (home, commons)
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {list}"))
        .iter()
        .map(id)
        .collect()
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn design_list_finds_designs_by_tag_stage_and_text() {
    let (ada, _) = home_with_commons("Ada Farmer");
    let crimper = id(&ada.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=Crimps a cover crop flat",
        "--set",
        "stage=prototype",
        "--tag",
        "No-Till",
        "--step",
        "Cut the tube to 1.6 m",
        "--step",
        "Weld the blades onto the DRUM",
    ]));
    let harrow = id(&ada.json(&[
        "design",
        "new",
        "Drum harrow",
        "--set",
        "stage=in-use",
        "--tag",
        "no till",
    ]));
    let seeder = id(&ada.json(&[
        "design",
        "new",
        "Seeder",
        "--set",
        "summary=Sows into a rolled cover",
        "--tag",
        "dairy",
    ]));

    // Text: case-insensitive over name, summary and steps; each hit names where it was found.
    let found = ada.json(&["design", "list", "--search", "drum"]);
    let mut hits = ids(&found);
    hits.sort();
    let mut expected = vec![crimper.clone(), harrow.clone()];
    expected.sort();
    assert_eq!(hits, expected, "{found}");
    for item in found.as_array().expect("list") {
        let matched = &item["matched"];
        if id(item) == crimper {
            assert_eq!(matched, &serde_json::json!(["steps.2"]), "{item}");
        } else {
            assert_eq!(matched, &serde_json::json!(["name"]), "{item}");
        }
        // The list keeps its documented shape, with `matched` beside it.
        for key in ["id", "title", "changes", "updated_at"] {
            assert!(item.get(key).is_some(), "{key} missing in {item}");
        }
    }
    let human = ada.ok(&["design", "list", "--search", "COVER CROP"]);
    assert!(human.contains("Roller crimper"), "{human}");
    // The list says where the text was found: a `found in` column, `summary` on the row.
    let row = human
        .lines()
        .find(|l| l.contains("Roller crimper"))
        .unwrap_or_default();
    assert!(
        human
            .lines()
            .next()
            .unwrap_or_default()
            .contains("found in"),
        "{human}"
    );
    assert!(row.trim_end().ends_with("summary"), "{human}");
    assert!(!human.contains("Seeder"), "{human}");

    // Tags match whatever their case and separator; filters combine.
    let tagged = ids(&ada.json(&["design", "list", "--tag", "NO-TILL"]));
    assert_eq!(tagged.len(), 2, "{tagged:?}");
    assert!(!tagged.contains(&seeder));
    let combined = ada.json(&[
        "design",
        "list",
        "--tag",
        "no_till",
        "--stage",
        "Prototype",
        "--search",
        "blades",
    ]);
    assert_eq!(ids(&combined), vec![crimper.clone()]);
    assert_eq!(
        ids(&ada.json(&["design", "list", "--tag", "no-till", "--stage", "idea"])),
        Vec::<String>::new()
    );
    let none = ada.ok(&["design", "list", "--search", "plough"]);
    assert!(none.contains("no design matches"), "{none}");
    // Without filters nothing changes: every design, no `matched`.
    let all = ada.json(&["design", "list"]);
    assert_eq!(ids(&all).len(), 3);
    assert!(all[0].get("matched").is_none(), "{all}");

    let error = ada.fail(&["design", "list", "--stage", "finished"]);
    assert!(
        error.contains("finished") && error.contains("prototype"),
        "{error}"
    );
}

#[test]
fn events_take_tags_and_filter_like_designs() {
    let (ada, _) = home_with_commons("Ada Farmer");
    let build_day = id(&ada.json(&[
        "event",
        "new",
        "Build day",
        "--tag",
        "Soil Health",
        "--set",
        "description=We weld two roller crimpers",
    ]));
    let visit = id(&ada.json(&["event", "new", "Farm visit", "--tag", "dairy"]));
    let shown = ada.json(&["event", "show", &build_day]);
    assert_eq!(shown["tags"], serde_json::json!(["Soil Health"]), "{shown}");
    let human = ada.ok(&["event", "show", &build_day]);
    assert!(human.contains("Soil Health"), "{human}");

    assert_eq!(
        ids(&ada.json(&["event", "list", "--tag", "soil-health"])),
        vec![build_day.clone()]
    );
    let found = ada.json(&["event", "list", "--search", "CRIMPER"]);
    assert_eq!(ids(&found), vec![build_day.clone()]);
    assert_eq!(found[0]["matched"], serde_json::json!(["description"]));

    ada.ok(&["event", "edit", &visit, "--tag", "soil health"]);
    ada.ok(&["event", "edit", &build_day, "--untag", "Soil Health"]);
    assert_eq!(
        ids(&ada.json(&["event", "list", "--tag", "Soil_Health"])),
        vec![visit]
    );
}

#[test]
fn profile_edit_changes_the_name_everywhere() {
    let (ada, _) = home_with_commons("Ada Farmer");
    let design = id(&ada.json(&["design", "new", "Roller crimper"]));
    let edited = ada.json(&[
        "profile",
        "edit",
        "--set",
        "name=Ada Lovelace-Farmer",
        "--set",
        "bio=Builds rollers",
    ]);
    assert_eq!(edited["name"], "Ada Lovelace-Farmer", "{edited}");
    assert_eq!(edited["commons"].as_array().map(Vec::len), Some(1));
    let who = ada.json(&["whoami"]);
    assert_eq!(who["name"], "Ada Lovelace-Farmer", "{who}");
    assert_eq!(who["bio"], "Builds rollers", "{who}");
    // History names changes by the name in the profile document of the commons.
    let history = ada.json(&["design", "history", &design]);
    assert_eq!(
        history[0]["author_name"], "Ada Lovelace-Farmer",
        "{history}"
    );

    // Bad input changes nothing.
    let before = ada.snapshot_files();
    let error = ada.fail(&["profile", "edit", "--set", "name= "]);
    assert!(error.contains("name"), "{error}");
    let error = ada.fail(&["profile", "edit", "--set", "nmae=Ada"]);
    assert!(error.contains("name, location and bio"), "{error}");
    assert_eq!(ada.json(&["whoami"])["name"], "Ada Lovelace-Farmer");
    assert!(
        before == ada.snapshot_files(),
        "a refused edit wrote something"
    );
}

#[test]
fn a_bom_line_is_edited_in_place_and_concurrent_edits_of_it_merge() {
    let (ada, commons) = home_with_commons("Ada Farmer");
    let design = id(&ada.json(&[
        "design",
        "new",
        "Roller crimper",
        "--bom-line",
        "steel tube 406 mm;1;pcs;scrap yard",
        "--bom-line",
        "bolt M12;8;pcs;hardware shop;DIN 933",
    ]));
    let edited = ada.json(&[
        "design",
        "edit",
        &design,
        "--edit-bom-line",
        "2=bolt M12;12;pcs",
    ]);
    assert!(edited["change"].is_string(), "{edited}");
    let bom = ada.json(&["design", "show", &design])["bom"].clone();
    assert_eq!(
        bom,
        serde_json::json!([
            {"name": "steel tube 406 mm", "quantity": 1, "unit": "pcs", "sourcing": "scrap yard", "reference": null},
            {"name": "bolt M12", "quantity": 12, "unit": "pcs", "sourcing": null, "reference": null},
        ]),
        "parts left out are cleared, the others set"
    );
    let error = ada.fail(&["design", "edit", &design, "--edit-bom-line", "3=nut"]);
    assert!(error.contains('3') && error.contains('2'), "{error}");
    let error = ada.fail(&["design", "edit", &design, "--edit-bom-line", "two=nut"]);
    assert!(error.contains("--edit-bom-line"), "{error}");

    // Bea takes the design; offline, Ada changes line 1's quantity and Bea its sourcing.
    let bea = TestHome::init("Bea Smith");
    let dir = tempfile::tempdir().expect("temp dir");
    let to_bea = dir.path().join("to-bea.bundle");
    ada.ok(&["bundle", "export", arg(&to_bea)]);
    bea.ok(&["bundle", "import", arg(&to_bea), "--commons", &commons]);
    ada.ok(&[
        "design",
        "edit",
        &design,
        "--edit-bom-line",
        "1=steel tube 406 mm;2;pcs;scrap yard",
    ]);
    bea.ok(&[
        "design",
        "edit",
        &design,
        "--edit-bom-line",
        "1=steel tube 406 mm;1;pcs;farm co-op",
    ]);
    let to_ada = dir.path().join("to-ada.bundle");
    bea.ok(&["bundle", "export", arg(&to_ada)]);
    ada.ok(&["bundle", "import", arg(&to_ada)]);
    let line = ada.json(&["design", "show", &design])["bom"][0].clone();
    assert_eq!(line["quantity"], 2, "Ada's quantity survives: {line}");
    assert_eq!(
        line["sourcing"], "farm co-op",
        "Bea's sourcing survives: {line}"
    );

    ada.ok(&["design", "edit", &design, "--remove-bom-line", "1"]);
    let bom = ada.json(&["design", "show", &design])["bom"].clone();
    assert_eq!(bom.as_array().map(Vec::len), Some(1), "{bom}");
    assert_eq!(bom[0]["name"], "bolt M12");
}

#[test]
fn replies_thread_under_the_note_they_answer() {
    let (ada, _) = home_with_commons("Ada Farmer");
    let event = id(&ada.json(&["event", "new", "Build day"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper"]));
    let first = id(&ada.json(&["note", "add", "--on", &event, "--text", "Built two drums"]));
    let question = id(&ada.json(&[
        "note",
        "add",
        "--reply-to",
        &first[..8],
        "--text",
        "How heavy is each drum?",
    ]));
    let answer = id(&ada.json(&[
        "note",
        "add",
        "--reply-to",
        &question,
        "--on",
        &event,
        "--text",
        "About 90 kg filled",
    ]));
    let later = id(&ada.json(&["note", "add", "--on", &event, "--text", "Lunch at noon"]));

    let shown = ada.json(&["note", "show", &question]);
    assert_eq!(shown["reply_to"], first.as_str(), "{shown}");
    assert_eq!(
        shown["target"],
        event.as_str(),
        "the reply is on the same event"
    );
    let listed = ada.json(&["note", "list", "--on", &event]);
    let by_id = |wanted: &str| {
        listed
            .as_array()
            .expect("list")
            .iter()
            .find(|n| id(n) == wanted)
            .cloned()
            .unwrap_or_else(|| panic!("{wanted} not listed in {listed}"))
    };
    assert_eq!(by_id(&answer)["reply_to"], question.as_str());
    assert!(by_id(&later).get("reply_to").is_none());

    // Human output: each reply right under what it answers, its `↳` one step further in.
    let human = ada.ok(&["note", "list", "--on", &event]);
    let lines: Vec<&str> = human.lines().collect();
    let at = |id: &str| {
        lines
            .iter()
            .position(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not in {human}"))
    };
    let depth = |id: &str| {
        let line = lines[at(id)];
        line.find('↳')
            .map_or(0, |byte| line[..byte].chars().count() + 1)
    };
    assert_eq!(at(&question), at(&first) + 1, "{human}");
    assert_eq!(at(&answer), at(&question) + 1, "{human}");
    assert!(
        depth(&first) < depth(&question) && depth(&question) < depth(&answer),
        "{human}"
    );

    let error = ada.fail(&["note", "add", "--reply-to", &design, "--text", "hi"]);
    assert!(error.contains("note"), "{error}");
    let error = ada.fail(&[
        "note",
        "add",
        "--reply-to",
        &first,
        "--on",
        &design,
        "--text",
        "hi",
    ]);
    assert!(error.contains("same design or event"), "{error}");
}

#[test]
fn events_and_notes_have_history_and_blame() {
    let (ada, _) = home_with_commons("Ada Farmer");
    let event = id(&ada.json(&["event", "new", "Build day"]));
    ada.ok(&[
        "event",
        "edit",
        &event,
        "--set",
        "summary=Two crimpers welded",
    ]);
    let history = ada.json(&["event", "history", &event]);
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");
    assert_eq!(history[1]["fields"], serde_json::json!(["summary"]));
    assert_eq!(history[1]["signature"], "signed");
    let blame = ada.json(&["event", "blame", &event, "summary"]);
    assert_eq!(blame[0]["text"], "Two crimpers welded", "{blame}");
    assert_eq!(blame[0]["author_name"], "Ada Farmer");
    assert!(ada.ok(&["event", "history", &event]).contains("Ada Farmer"));

    let note = id(&ada.json(&["note", "add", "--on", &event, "--text", "Built two drums"]));
    ada.ok(&["note", "edit", &note, "--append", " and a frame"]);
    let history = ada.json(&["note", "history", &note]);
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");
    let blame = ada.json(&["note", "blame", &note]);
    let text: String = blame
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| s["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(text, "Built two drums and a frame", "{blame}");
    assert_eq!(
        blame.as_array().map(Vec::len),
        Some(2),
        "two changes wrote it"
    );
    assert!(ada.ok(&["note", "blame", &note]).contains("and a frame"));
    // The kind is checked: a note's id is not an event.
    ada.fail(&["event", "history", &note]);
}

/// A design with every part a plan prints, its second author's change merged in by bundle.
fn plan_design() -> (TestHome, String, TempDirGuard) {
    let (ada, commons) = home_with_commons("Ada Farmer");
    let design = id(&ada.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=Crimps a cover crop flat",
        "--set",
        "problem=Tillage dries the soil",
        "--set",
        "licence.hardware=CERN-OHL-S-2.0",
        "--set",
        "safety=Wear a welding mask",
        "--bom-line",
        "steel tube 406 mm;1;pcs;scrap yard",
        "--bom-line",
        "bolt M12;8;pcs",
        "--step",
        "Cut the tube to 1.6 m",
        "--step",
        "Weld <script>alert(1)</script> the blades",
        "--add",
        "tools=angle grinder",
        "--add",
        "skills=welding",
        "--contributor",
        "Farm Hack:original design",
    ]));
    ada.ok(&["design", "release", &design, "--version", "1.0"]);
    let bea = TestHome::init("Bea Smith");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.bundle");
    ada.ok(&["bundle", "export", arg(&file)]);
    bea.ok(&["bundle", "import", arg(&file), "--commons", &commons]);
    bea.ok(&[
        "design",
        "edit",
        &design,
        "--step",
        "Fill the drum with water",
    ]);
    let back = dir.path().join("back.bundle");
    bea.ok(&["bundle", "export", arg(&back)]);
    ada.ok(&["bundle", "import", arg(&back)]);
    (ada, design, TempDirGuard(dir))
}

/// Keeps a temp dir alive for a test's length.
struct TempDirGuard(tempfile::TempDir);

#[test]
fn design_export_prints_a_plan_in_markdown_and_html() {
    let (ada, design, dir) = plan_design();
    let md = ada.ok(&["design", "export", &design]);
    assert!(md.starts_with("# Roller crimper\n"), "{md}");
    for part in [
        "## Summary\n\nCrimps a cover crop flat",
        "## The problem",
        "| 1 | steel tube 406 mm | 1 | pcs | scrap yard |  |",
        "| 2 | bolt M12 | 8 | pcs |  |  |",
        "1. Cut the tube to 1.6 m",
        "2. Weld \\<script\\>alert(1)\\</script\\> the blades",
        "3. Fill the drum with water",
        "- angle grinder",
        "- welding",
        "## Safety\n\nWear a welding mask",
        "- Licence (hardware): CERN-OHL-S-2.0",
        "Contributors: Farm Hack (original design), Ada Farmer, Bea Smith",
        "releases: 1.0",
        &design,
        "Farm Hack tools",
    ] {
        assert!(md.contains(part), "markdown lacks {part:?}:\n{md}");
    }
    // At the release, Bea's later step is not there.
    let released = ada.ok(&["design", "export", &design, "--version", "1.0"]);
    assert!(released.contains("*release 1.0*"), "{released}");
    assert!(!released.contains("Fill the drum"), "{released}");

    let html = ada.ok(&["design", "export", &design, "--format", "html"]);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        !html.contains("<script>"),
        "a peer's text became markup: {html}"
    );
    assert!(html.contains("Weld &lt;script&gt;alert(1)&lt;/script&gt; the blades"));
    assert!(html.contains("@media print"));
    assert!(html.contains("break-inside:avoid"));
    assert!(html.contains("<ol class=\"steps\">"));
    assert!(html.contains("<td>steel tube 406 mm</td>"));
    assert!(html.contains("Contributors: Farm Hack (original design), Ada Farmer, Bea Smith"));
    assert!(
        !html.contains("<link") && !html.contains("src="),
        "not self-contained"
    );

    // --out: written whole, never over an existing file without --force.
    let out = dir.0.path().join("crimper.html");
    let said = ada.ok(&[
        "design",
        "export",
        &design,
        "--format",
        "html",
        "--out",
        arg(&out),
    ]);
    assert!(said.contains("crimper.html"), "{said}");
    assert_eq!(std::fs::read_to_string(&out).expect("plan"), html);
    std::fs::write(&out, "my notes").expect("overwrite");
    let error = ada.fail(&["design", "export", &design, "--out", arg(&out)]);
    assert!(error.contains("--force"), "{error}");
    assert_eq!(std::fs::read_to_string(&out).expect("kept"), "my notes");
    ada.ok(&["design", "export", &design, "--out", arg(&out), "--force"]);
    assert_eq!(std::fs::read_to_string(&out).expect("plan"), md);
    let leftovers: Vec<_> = std::fs::read_dir(dir.0.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn delete_and_search_say_what_to_run_instead() {
    let (ada, _) = home_with_commons("Ada Farmer");
    let design = id(&ada.json(&["design", "new", "Roller crimper"]));
    for (args, wanted) in [
        (
            vec!["design", "delete", design.as_str()],
            "hedgerow design retract ID",
        ),
        (
            vec!["design", "remove", design.as_str()],
            "hedgerow design retract ID",
        ),
        (
            vec!["design", "rm", design.as_str()],
            "hedgerow design retract ID",
        ),
        (vec!["event", "delete", "X"], "hedgerow event retract ID"),
        (vec!["note", "rm", "X"], "hedgerow note retract ID"),
        (vec!["search", "crimper"], "design list --search TEXT"),
        (
            vec!["design", "search", "crimper"],
            "design list --search TEXT",
        ),
    ] {
        let error = ada.fail(&args);
        assert!(error.contains(wanted), "{args:?}: {error}");
        assert!(
            !error.contains("'release'") && !error.contains("'serve'"),
            "{args:?}: {error}"
        );
        assert_eq!(error.lines().count(), 1, "{args:?}: {error}");
    }
    // Nothing was withdrawn by asking.
    assert_eq!(ids(&ada.json(&["design", "list"])), vec![design]);
}
