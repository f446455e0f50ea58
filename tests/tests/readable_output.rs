//! What a farmer and an event host read, with the real binary: shows, lists, history and
//! blame in words and dates with names beside keys; errors and help that say what to do in
//! the flags a person types; JSON only with `--json`, and every time in it RFC 3339.
//!
//! ```text
//!   Ada: commons, design (BOM, steps), release, build, event with notes
//!   Ada ──bundle──> Bob: Bob rewrites part of step 1 ──bundle──> Ada: both blamed for it
//! ```

use hedgerow_tests::{id, TestHome};
use serde_json::Value;

const ADA: &str = "Ada Farmer";
const BOB: &str = "Bob Builder";

/// Any run of exactly ten digits: a unix time in seconds printed raw.
fn unix_seconds_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 10)
        .map(str::to_string)
}

/// Whether `text` is an RFC 3339 time in UTC to the second.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// `Ada Farmer (HpcrR7dD)`: a person's name beside the start of their key.
fn named(name: &str, key: &str) -> String {
    format!("{name} ({})", &key[..8])
}

/// A home with a commons and the README's roller crimper: two BOM lines of different widths,
/// two steps (one over two lines), released as 1.0 and built once.
fn crimper(home: &TestHome) -> String {
    home.ok(&["commons", "create", "Farm Hack tools"]);
    let design = id(&home.json(&[
        "design",
        "new",
        "Roller crimper",
        "--set",
        "summary=Crimps a cover crop flat",
        "--set",
        "problem=Tillage dries the soil",
        "--set",
        "how_it_works=A drum with blades\nrolls the crop flat",
        "--set",
        "stage=prototype",
        "--bom-line",
        "steel tube 406 mm;1;pcs;scrap yard",
        "--bom-line",
        "bearing;12;pcs;agri store;SKF 6204",
        "--step",
        "Cut the tube to 1.4 m (farm measure)",
        "--step",
        "Weld the blades\nin a chevron pattern",
    ]));
    home.ok(&["design", "release", &design, "--version", "1.0"]);
    home.ok(&["design", "edit", &design, "--built", "Ferme des Chênes"]);
    design
}

#[test]
fn show_list_and_history_read_as_words_dates_and_names() {
    let ada = TestHome::init(ADA);
    let key = ada.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string();
    let design = crimper(&ada);

    let show = ada.ok(&["design", "show", &design]);
    assert_eq!(unix_seconds_in(&show), None, "{show}");
    // Fields in the order the design's field table gives: the order a person reads it.
    let at = |label: &str| {
        show.find(&format!("\n{label}"))
            .unwrap_or_else(|| panic!("no `{label}` in:\n{show}"))
    };
    assert!(at("summary:") < at("problem:"), "{show}");
    assert!(at("problem:") < at("how_it_works:"), "{show}");
    assert!(at("how_it_works:") < at("bom:"), "{show}");
    assert!(at("bom:") < at("steps:"), "{show}");
    // Multi-line text: every line at the same indentation.
    assert!(
        show.contains("how_it_works:\n  A drum with blades\n  rolls the crop flat\n"),
        "{show}"
    );
    assert!(
        show.contains("  2. Weld the blades\n     in a chevron pattern\n"),
        "{show}"
    );
    // The bill of materials as a table whose columns line up.
    let bom: Vec<&str> = show
        .lines()
        .skip_while(|l| *l != "bom:")
        .skip(1)
        .take(3)
        .collect();
    assert!(bom[0].contains("item") && bom[0].contains("qty"), "{show}");
    for column in ["item", "unit", "sourcing", "reference"] {
        let x = bom[0].find(column).expect("column");
        // A row whose last cells are empty ends early.
        for row in bom[1..].iter().filter(|r| r.chars().count() > x) {
            assert!(
                row.chars().nth(x).is_some_and(|c| c != ' ') && row.chars().nth(x - 1) == Some(' '),
                "column `{column}` not aligned:\n{}",
                bom.join("\n")
            );
        }
    }
    let qty_end = bom[0].find("qty").expect("qty") + 3;
    assert_eq!(&bom[1][qty_end - 1..qty_end], "1", "{}", bom.join("\n"));
    assert_eq!(&bom[2][qty_end - 2..qty_end], "12", "{}", bom.join("\n"));
    // Releases and builds: version, date, who by name.
    let release = show
        .lines()
        .find(|l| l.trim_start().starts_with("1.0 "))
        .unwrap_or_else(|| panic!("no release line in:\n{show}"));
    assert!(release.contains(&named(ADA, &key)), "{release}");
    assert!(
        release.contains(" 20") && release.contains(':'),
        "{release}"
    );
    assert!(
        !release.contains(&key),
        "a whole key on the release line: {release}"
    );
    assert!(
        show.contains(&format!("by {}, at Ferme des Chênes", named(ADA, &key))),
        "{show}"
    );
    assert!(
        show.contains(&format!(
            "created by {}; 3 signed changes",
            named(ADA, &key)
        )),
        "{show}"
    );

    let list = ada.ok(&["design", "list"]);
    assert_eq!(unix_seconds_in(&list), None, "{list}");
    assert!(list.contains(&named(ADA, &key)), "{list}");
    assert!(list.contains("3 changes"), "{list}");
    let one = id(&ada.json(&["design", "new", "Seed drill"]));
    assert!(ada.ok(&["design", "list"]).contains("1 change\n"), "plural");
    let commons = ada.ok(&["commons", "list"]);
    assert!(
        commons.contains("(2 designs, 0 events, 0 notes)"),
        "{commons}"
    );
    ada.ok(&["event", "new", "Build day"]);
    assert!(ada
        .ok(&["commons", "list"])
        .contains("(2 designs, 1 event, 0 notes)"));

    let history = ada.ok(&["design", "history", &design]);
    assert_eq!(unix_seconds_in(&history), None, "{history}");
    assert!(
        history.contains("`signed`") && history.contains("`covered`"),
        "no explanation of the signature column:\n{history}"
    );
    assert!(history.contains(&named(ADA, &key)), "{history}");
    assert!(history.trim_end().ends_with("3 changes"), "{history}");
    let one_history = ada.ok(&["design", "history", &one]);
    assert!(
        one_history.trim_end().ends_with("\n1 change"),
        "{one_history}"
    );
}

#[test]
fn per_step_blame_names_every_author_of_a_step() {
    let ada = TestHome::init(ADA);
    let design = crimper(&ada);
    let commons = ada.json(&["commons", "list"])[0]["id"]
        .as_str()
        .expect("commons")
        .to_string();
    let stick = ada.path().join("to-bob.bundle");
    let stick = stick.to_str().expect("utf-8 path");
    ada.ok(&["bundle", "export", stick]);
    let bob = TestHome::init(BOB);
    bob.ok(&["commons", "join", &commons]);
    bob.ok(&["bundle", "import", stick]);
    bob.ok(&[
        "design",
        "edit",
        &design,
        "--edit-step",
        "1=Cut the tube to 1.45 m (farm measure)",
    ]);
    let back = bob.path().join("to-ada.bundle");
    let back = back.to_str().expect("utf-8 path");
    bob.ok(&["bundle", "export", back]);
    ada.ok(&["bundle", "import", back]);

    let blame = ada.ok(&["design", "blame", &design, "steps"]);
    let step_1 = blame
        .lines()
        .find(|l| l.starts_with("step 1"))
        .unwrap_or_else(|| panic!("no step 1 in:\n{blame}"));
    assert!(
        step_1.contains(ADA) && step_1.contains(BOB),
        "step 1 was written by both:\n{blame}"
    );
    let step_2 = blame
        .lines()
        .find(|l| l.starts_with("step 2"))
        .expect("step 2");
    assert!(step_2.contains(ADA) && !step_2.contains(BOB), "{blame}");
    assert!(
        blame.contains("Cut the tube to 1.45 m (farm measure)"),
        "{blame}"
    );
    // The JSON stays one span per step, as the README documents.
    let spans = ada.json(&["design", "blame", &design, "steps"]);
    assert_eq!(spans.as_array().map(Vec::len), Some(2), "{spans}");
}

#[test]
fn event_and_note_views_show_dates_designs_notes_kinds_and_authors() {
    let ada = TestHome::init(ADA);
    let design = crimper(&ada);
    let event = id(&ada.json(&[
        "event",
        "new",
        "Build day",
        "--set",
        "start=2026-03-14",
        "--set",
        "end=2026-03-15",
        "--set",
        "location.name=Ferme des Chênes",
        "--add",
        &format!("designs={design}"),
    ]));
    ada.ok(&[
        "note",
        "add",
        "--on",
        &event,
        "--kind",
        "build-log",
        "--text",
        "Built two drums",
    ]);
    let farm = ada.json(&["commons", "list"])[0]["id"]
        .as_str()
        .expect("commons")
        .to_string();
    // A second commons: the event's notes are still found from the event alone.
    ada.ok(&["commons", "create", "Seed savers"]);

    let list = ada.ok(&["event", "list", "--commons", &farm]);
    let row = list
        .lines()
        .find(|l| l.contains("Build day"))
        .unwrap_or_else(|| panic!("no event row in:\n{list}"));
    assert!(row.contains("2026-03-14 to 2026-03-15"), "{row}");
    assert!(row.contains("Ferme des Chênes"), "{row}");
    assert_eq!(unix_seconds_in(&list), None, "{list}");
    let listed = ada.json(&["event", "list", "--commons", &farm]);
    // The event's own dates, not when it was last edited.
    let edited = listed[0]["updated_at"].as_str().expect("updated_at");
    assert!(!row.contains(&edited[..10]), "{row}");

    let show = ada.ok(&["event", "show", &event]);
    assert!(
        show.contains(&format!("  - Roller crimper ({})", &design[..8])),
        "linked designs by name:\n{show}"
    );
    assert!(show.contains("notes (1):"), "{show}");
    assert!(show.contains("Built two drums"), "{show}");
    assert!(show.contains("build-log") && show.contains(ADA), "{show}");

    let notes = ada.ok(&["note", "list", "--on", &event]);
    let note = notes
        .lines()
        .find(|l| l.contains("Built two drums"))
        .unwrap_or_else(|| panic!("no note row in:\n{notes}"));
    assert!(note.contains("build-log") && note.contains(ADA), "{note}");

    assert_eq!(listed[0]["start"], "2026-03-14");
    assert_eq!(listed[0]["end"], "2026-03-15");
    let listed = ada.json(&["note", "list", "--on", &event]);
    assert_eq!(listed[0]["kind"], "build-log");
    assert_eq!(listed[0]["creator_name"], ADA);
}

#[test]
fn errors_suggest_fields_and_say_what_to_do_in_flags() {
    let ada = TestHome::init(ADA);
    let design = crimper(&ada);
    let event = id(&ada.json(&["event", "new", "Build day"]));

    let error = ada.fail(&["design", "edit", &design, "--set", "sumary=x"]);
    assert!(error.contains("did you mean `summary`?"), "{error}");
    let error = ada.fail(&["design", "edit", &design, "--set", "license.hardware=MIT"]);
    assert!(
        error.contains("did you mean `licence.hardware`?"),
        "{error}"
    );

    let error = ada.fail(&[
        "design",
        "edit",
        &design,
        "--text-file",
        "how_it_works=missing.md",
    ]);
    assert!(!error.contains("os error"), "{error}");
    assert!(
        error.contains("missing.md") && error.contains("no such file"),
        "{error}"
    );
    let error = ada.fail(&["note", "add", "--on", &event, "--file", "nope.txt"]);
    assert!(
        !error.contains("os error") && error.contains("nope.txt"),
        "{error}"
    );

    for (args, flag) in [
        (vec!["--add", "steps=x"], "--step"),
        (vec!["--add", "bom=x"], "--bom-line"),
        (vec!["--set", "tags=x"], "--add tags=ITEM"),
        (vec!["--append", "stage=x"], "--set stage=VALUE"),
    ] {
        let mut all = vec!["design", "edit", design.as_str()];
        all.extend(args);
        let error = ada.fail(&all);
        assert!(error.contains(flag), "{all:?}: {error}");
        for internal in ["add_step", "add_item", "add_bom_line", "use set"] {
            assert!(!error.contains(internal), "{all:?}: {error}");
        }
    }
    let error = ada.fail(&["event", "edit", &event, "--step", "x"]);
    assert!(
        error.contains("adding a build step (--step) only applies to a design"),
        "{error}"
    );

    // The version rule the message gives is the one applied.
    let error = ada.fail(&["design", "release", &design, "--version", "1 0"]);
    assert!(error.contains("without spaces"), "{error}");
    ada.ok(&["design", "release", &design, "--version", "v2-beta"]);
}

#[test]
fn help_of_events_and_notes_is_about_events_and_notes() {
    let home = TestHome::new();
    let event = home.ok(&["event", "new", "--help"]);
    for wanted in [
        "start",
        "location.name",
        "status",
        "Examples",
        "hedgerow event new",
    ] {
        assert!(event.contains(wanted), "no `{wanted}` in:\n{event}");
    }
    for design_only in [
        "--bom-line",
        "--step",
        "stage=prototype",
        "licence.hardware",
        "--built",
    ] {
        assert!(!event.contains(design_only), "`{design_only}` in:\n{event}");
    }
    let note = home.ok(&["note", "add", "--help"]);
    for wanted in ["build-log", "Examples", "hedgerow note add --on"] {
        assert!(note.contains(wanted), "no `{wanted}` in:\n{note}");
    }
    let design = home.ok(&["design", "new", "--help"]);
    assert!(design.contains("--bom-line") && design.contains("Examples"));
    assert!(!design.contains("--outcome"), "{design}");
}

#[test]
fn json_only_with_the_flag_and_times_as_rfc3339() {
    let ada = TestHome::init(ADA);
    let design = crimper(&ada);
    for args in [
        vec!["design", "release", design.as_str(), "--version", "2.0"],
        vec!["design", "retract", design.as_str()],
    ] {
        let out = ada.ok(&args);
        assert!(
            serde_json::from_str::<Value>(&out).is_err() && !out.trim_start().starts_with('{'),
            "{args:?} printed JSON without --json: {out}"
        );
    }
    let commons = ada.json(&["commons", "list"])[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let joiner = TestHome::init("Cy");
    let out = joiner.ok(&["commons", "join", &commons]);
    assert!(!out.trim_start().starts_with('{'), "{out}");
    let other = TestHome::init(BOB);

    let fresh = crimper(&other);
    let shown = other.json(&["design", "show", &fresh]);
    assert!(
        is_rfc3339(shown["releases"]["1.0"]["at"].as_str().unwrap_or("")),
        "{shown}"
    );
    assert!(
        is_rfc3339(shown["built"][0]["at"].as_str().unwrap_or("")),
        "{shown}"
    );
    let history = other.json(&["design", "history", &fresh]);
    for change in history.as_array().expect("history") {
        assert!(
            is_rfc3339(change["time"].as_str().unwrap_or("")),
            "{change}"
        );
    }
    let listed = other.json(&["design", "list"]);
    assert!(
        is_rfc3339(listed[0]["updated_at"].as_str().unwrap_or("")),
        "{listed}"
    );
    let commons = other.json(&["commons", "list"]);
    for c in commons.as_array().expect("commons") {
        assert!(is_rfc3339(c["created_at"].as_str().unwrap_or("")), "{c}");
    }
}
