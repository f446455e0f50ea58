//! Farm Hack imports and farmOS links (issue 10), through the real binary.
//!
//! ```text
//! tests/data/farmhack/tools.json --import farmhack--> designs + comment notes (signed by
//!     the importer, crediting the page's authors)  --re-import--> nothing  --edited page-->
//!     one change
//! farm home --design built --farmos-asset--> bundle --> hub home: the farm's URL and serial
//!     number arrive only with --public
//! ```

use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::path::PathBuf;

fn data(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(path)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

const CRIMPER: &str = "https://farmhack.org/tools/roller-crimper-walking-tractor";
const HITCH: &str = "https://farmhack.org/tools/quick-hitch-plate";

/// Runs an import that reports failed pages (exit status 1) and returns its JSON report.
fn import_report(home: &TestHome, file: &str) -> Value {
    let out = home.run(&["import", "farmhack", file, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "import printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn tool<'a>(report: &'a Value, url: &str) -> &'a Value {
    report["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["source_id"] == url)
        .unwrap_or_else(|| panic!("no row for {url} in {report}"))
}

fn home_with_commons(name: &str) -> TestHome {
    let home = TestHome::init(name);
    home.ok(&["commons", "create", "Farm Hack tools"]);
    home
}

#[test]
fn farmhack_pages_become_designs_crediting_their_authors() {
    let home = home_with_commons("Importer");
    let me = home.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string();
    let out = home.run(&["import", "farmhack", &data("farmhack/tools.json"), "--json"]);
    assert!(
        !out.status.success(),
        "two pages of the file cannot be imported: exit status says so"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["created"], 3);
    assert_eq!(report["failed"], 2);
    let rows = report["tools"].as_array().expect("rows");
    assert_eq!(rows[3]["error"], "no `title`: a design needs a name");
    assert_eq!(rows[4]["error"], "not a tool page (a JSON object)");

    let crimper = tool(&report, CRIMPER)["design"]
        .as_str()
        .expect("design")
        .to_string();
    let hitch = tool(&report, HITCH)["design"]
        .as_str()
        .expect("design")
        .to_string();
    let shown = home.json(&["design", "show", &crimper]);
    assert_eq!(shown["name"], "Roller Crimper for Walking Tractors");
    assert_eq!(
        shown["summary"],
        "A 76 cm drum that crimps rye and vetch flat ahead of no-till transplanting.\n\nMounts on a two-wheel tractor's PTO-free hitch."
    );
    assert_eq!(
        shown["problem"],
        "Small farms cannot use tractor-sized crimpers on their beds."
    );
    assert_eq!(
        shown["how_it_works"],
        "Build\n\n- Cut the drum from 406 mm pipe.\n- Weld the chevron blades at 15°."
    );
    assert_eq!(shown["stage"], "functional-prototype");
    assert_eq!(shown["licence"]["documentation"], "CC-BY-SA-4.0");
    assert_eq!(
        shown["tags"],
        serde_json::json!(["no-till", "cover crops", "Walking Tractor"])
    );
    assert_eq!(
        shown["skills"],
        serde_json::json!(["welding", "metal cutting"])
    );
    assert_eq!(shown["external_ids"]["farmhack"], CRIMPER);
    assert_eq!(
        shown["contributors"],
        serde_json::json!([
            {"name": "Ada Farmer", "role": "author on Farm Hack"},
            {"name": "Tomás Ruiz", "role": "author on Farm Hack"}
        ])
    );
    assert_eq!(
        shown["related"],
        serde_json::json!([{"kind": "component", "design": hitch}])
    );
    let links: Vec<String> = tool(&report, CRIMPER)["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["kind"].as_str().unwrap_or(""),
                l["target"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        links.contains(&"branch https://farmhack.org/tools/roller-crimper-3pt".to_string()),
        "{links:?}"
    );
    assert!(
        links.contains(&"video https://vimeo.com/000000001".to_string()),
        "{links:?}"
    );

    let hitch_shown = home.json(&["design", "show", &hitch]);
    assert_eq!(hitch_shown["stage"], "in-use");
    assert_eq!(hitch_shown["licence"]["documentation"], "CC-BY-SA-3.0");
    assert_eq!(
        hitch_shown["tags"],
        serde_json::json!(["hitch", "walking tractor"])
    );
    assert_eq!(
        hitch_shown["related"],
        serde_json::json!([{"kind": "assembly", "design": crimper}])
    );

    // The page with an unknown status and an imprecise licence imports, saying what it left out.
    let washer = &rows[2];
    assert_eq!(washer["outcome"], "created");
    let dropped: Vec<&str> = washer["dropped"]
        .as_array()
        .expect("dropped")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(dropped, ["status", "license", "next_steps"]);
    let washer_shown = home.json(&["design", "show", washer["design"].as_str().expect("id")]);
    assert_eq!(washer_shown["stage"], Value::Null);
    assert_eq!(washer_shown["licence"]["documentation"], Value::Null);

    // Provenance: the importer signed, the page's authors are credited, history says so.
    let history = home.json(&["design", "history", &crimper]);
    let first = &history[0];
    assert_eq!(first["author"], me.as_str());
    assert_eq!(first["imported"]["source"], "farmhack");
    assert_eq!(first["imported"]["id"], CRIMPER);
    assert_eq!(
        first["imported"]["authors"],
        serde_json::json!(["Ada Farmer", "Tomás Ruiz"])
    );
    assert_eq!(first["imported"]["importer"], me.as_str());
    assert_eq!(first["imported"]["retrieved"], "2026-11-02");
    let human = home.ok(&["design", "history", &crimper]);
    assert!(
        human.contains(&format!(
            "imported from farmhack {CRIMPER} on behalf of Ada Farmer, Tomás Ruiz"
        )) && human.contains("signed by its importer Importer"),
        "{human}"
    );
    // A change the importer writes by hand afterwards is theirs alone.
    home.ok(&[
        "design",
        "edit",
        &crimper,
        "--set",
        "safety=Keep feet clear of the drum",
    ]);
    let history = home.json(&["design", "history", &crimper]);
    assert!(history
        .as_array()
        .expect("rows")
        .last()
        .expect("row")
        .get("imported")
        .is_none());

    // Comments are notes on the design, the reply threaded, each crediting its writer.
    let notes = home.json(&["note", "list", "--on", &crimper]);
    let notes = notes.as_array().expect("notes");
    assert_eq!(notes.len(), 2);
    let question = notes
        .iter()
        .find(|n| n.get("reply_to").is_none())
        .expect("first comment");
    let answer = notes
        .iter()
        .find(|n| n.get("reply_to").is_some())
        .expect("reply");
    assert_eq!(answer["reply_to"], question["id"]);
    let body = home.json(&["note", "show", question["id"].as_str().expect("id")]);
    assert_eq!(
        body["body"],
        "Did you try a heavier drum? Ours bounced on clay."
    );
    assert_eq!(body["kind"], "comment");
    let note_history = home.json(&["note", "history", question["id"].as_str().expect("id")]);
    assert_eq!(
        note_history[0]["imported"]["authors"],
        serde_json::json!(["Jo Miller"])
    );
    assert_eq!(note_history[0]["imported"]["written"], "2019-05-14");
    assert_eq!(
        note_history[0]["imported"]["id"],
        format!("{CRIMPER}#comment-881")
    );
}

#[test]
fn reimport_is_a_no_op_and_an_edited_page_is_one_change() {
    let home = home_with_commons("Importer");
    let first = import_report(&home, &data("farmhack/tools.json"));
    let crimper = tool(&first, CRIMPER)["design"]
        .as_str()
        .expect("design")
        .to_string();
    let changes = |home: &TestHome| {
        home.json(&["design", "history", &crimper])
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = changes(&home);
    let store_before = home.json(&["verify"])["changes"].clone();

    let again = import_report(&home, &data("farmhack/tools.json"));
    assert_eq!(
        (
            again["created"].clone(),
            again["updated"].clone(),
            again["unchanged"].clone()
        ),
        (0.into(), 0.into(), 3.into())
    );
    assert_eq!(changes(&home), before);
    assert_eq!(
        home.json(&["verify"])["changes"],
        store_before,
        "re-import wrote nothing"
    );
    assert_eq!(
        home.json(&["design", "list"])
            .as_array()
            .map_or(0, Vec::len),
        3
    );
    assert_eq!(
        home.json(&["note", "list", "--on", &crimper])
            .as_array()
            .map_or(0, Vec::len),
        2
    );

    // A local edit of a field the page did not change survives the next import.
    home.ok(&["design", "edit", &crimper, "--set", "summary=Our own words"]);
    let edited = import_report(&home, &data("farmhack/tools-edited.json"));
    let row = tool(&edited, CRIMPER);
    assert_eq!(row["outcome"], "updated");
    assert_eq!(row["fields"], serde_json::json!(["stage"]));
    assert_eq!(
        changes(&home),
        before + 2,
        "the local edit and one import change"
    );
    let shown = home.json(&["design", "show", &crimper]);
    assert_eq!(shown["stage"], "in-use");
    assert_eq!(shown["summary"], "Our own words");
    let last = home.json(&["design", "history", &crimper]);
    let last = last.as_array().expect("rows").last().expect("row").clone();
    assert_eq!(last["fields"], serde_json::json!(["stage"]));
    assert_eq!(last["imported"]["retrieved"], "2026-11-20");
    // And that edited file again: nothing.
    let once_more = import_report(&home, &data("farmhack/tools-edited.json"));
    assert_eq!(tool(&once_more, CRIMPER)["outcome"], "unchanged");
    assert_eq!(changes(&home), before + 2);
}

#[test]
fn bad_farmhack_files_are_refused_whole_or_per_page() {
    let home = home_with_commons("Importer");
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path.to_str().expect("utf-8").to_string()
    };
    let not_json = write("page.html", b"<html><body>Roller crimper</body></html>");
    let error = home.fail(&["import", "farmhack", &not_json]);
    assert!(error.contains("not JSON at line 1, column 1"), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    let no_tools = write("other.json", br#"{"pages": []}"#);
    assert!(home
        .fail(&["import", "farmhack", &no_tools])
        .contains("no tool pages"));
    let mut huge = b"[".to_vec();
    huge.resize(33 * 1024 * 1024, b' ');
    huge.push(b']');
    let huge = write("huge.json", &huge);
    let error = home.fail(&["import", "farmhack", &huge]);
    assert!(error.contains("is larger than 33554432 bytes"), "{error}");
    let error = home.fail(&[
        "import",
        "farmhack",
        &dir.path().join("missing.json").to_string_lossy(),
    ]);
    assert!(error.contains("cannot read"), "{error}");
    assert_eq!(
        home.json(&["design", "list"]),
        serde_json::json!([]),
        "nothing written"
    );

    // A dry run reports and writes nothing.
    let out = home.run(&[
        "import",
        "farmhack",
        &data("farmhack/tools.json"),
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Roller Crimper for Walking Tractors: would be created"),
        "{text}"
    );
    assert!(
        text.contains("3 created, 0 updated, 0 unchanged, 2 failed (dry run: nothing written)"),
        "{text}"
    );
    assert_eq!(home.json(&["design", "list"]), serde_json::json!([]));
}

const ASSET: &str = "5f1c1a52-3c2e-4f6b-9d0e-6a1b2c3d4e01";

#[test]
fn a_farmos_link_keeps_the_farm_on_its_node_unless_public() {
    let farm = home_with_commons("Farm");
    let design = id(&farm.json(&["design", "new", "Roller crimper"]));
    let built = farm.json(&[
        "design",
        "built",
        &design,
        "--farmos-asset",
        ASSET,
        "--farm-url",
        "https://ferme-des-chenes.farmos.net",
        "--serial",
        "FH-0042",
        "--model",
        "RC-76",
    ]);
    assert_eq!(
        built["kept_local"],
        serde_json::json!(["farm_url", "serial"])
    );
    let shown = farm.json(&["design", "show", &design]);
    let record = &shown["built"][0];
    assert_eq!(record["farmos_asset"], ASSET);
    assert_eq!(record["model"], "RC-76");
    assert!(
        record.get("farm_url").is_none_or(Value::is_null),
        "{record}"
    );
    assert!(record.get("serial").is_none_or(Value::is_null), "{record}");
    let local = std::fs::read_to_string(farm.path().join("farmos.json")).expect("local links");
    assert!(
        local.contains("ferme-des-chenes") && local.contains("FH-0042"),
        "{local}"
    );

    // What a second node receives: the bundle and the hub's document name no farm.
    let dir = tempfile::tempdir().expect("dir");
    let stick = dir.path().join("farm.hbundle");
    let stick = stick.to_str().expect("utf-8");
    farm.ok(&["bundle", "export", stick]);
    let bytes = std::fs::read(stick).expect("bundle");
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains("ferme-des-chenes") && !contains("FH-0042"));
    assert!(contains(ASSET));
    let hub = TestHome::init("Hub");
    let commons = farm.json(&["commons", "list"])[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    hub.ok(&["bundle", "import", stick, "--commons", &commons]);
    let at_hub = hub.json(&["design", "show", &design]);
    assert_eq!(at_hub["built"][0]["farmos_asset"], ASSET);
    assert!(!at_hub.to_string().contains("ferme-des-chenes"));
    assert!(!at_hub.to_string().contains("FH-0042"));

    // Published on purpose, it travels.
    farm.ok(&[
        "design",
        "built",
        &design,
        "--farmos-asset",
        ASSET,
        "--farm-url",
        "https://ferme-des-chenes.farmos.net",
        "--serial",
        "FH-0042",
        "--public",
    ]);
    let stick = dir.path().join("farm-2.hbundle");
    let stick = stick.to_str().expect("utf-8");
    farm.ok(&["bundle", "export", stick]);
    hub.ok(&["bundle", "import", stick]);
    let at_hub = hub.json(&["design", "show", &design]);
    assert_eq!(
        at_hub["built"][1]["farm_url"],
        "https://ferme-des-chenes.farmos.net"
    );
    assert_eq!(at_hub["built"][1]["serial"], "FH-0042");

    let error = farm.fail(&["design", "built", &design, "--farmos-asset", "12"]);
    assert!(error.contains("`12` is not a farmOS asset UUID"), "{error}");
}

#[test]
fn farmos_equipment_rows_are_offered_and_linked_to_designs() {
    let home = home_with_commons("Farm");
    let report = import_report(&home, &data("farmhack/tools.json"));
    let crimper = tool(&report, CRIMPER)["design"]
        .as_str()
        .expect("id")
        .to_string();
    let hitch = tool(&report, HITCH)["design"]
        .as_str()
        .expect("id")
        .to_string();
    let csv = data("farmos/equipment.csv");

    let offered = home.json(&["import", "farmos-equipment", &csv]);
    assert_eq!(offered["linked"], 0);
    let rows = offered["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0]["asset"]["name"],
        "Roller crimper (walking tractor) #2"
    );
    assert_eq!(rows[0]["asset"]["serial_number"], "FH-0042");
    assert_eq!(rows[0]["suggestion"]["design"], crimper.as_str());
    assert!(
        rows[1]["suggestion"].is_null(),
        "a BCS tractor is no design here: {}",
        rows[1]
    );
    assert_eq!(rows[2]["error"], "`not-a-uuid` is not a UUID");
    assert_eq!(rows[3]["suggestion"]["design"], hitch.as_str());
    assert_eq!(rows[3]["asset"]["notes"], Value::Null, "notes are not read");
    let human = home.ok(&["import", "farmos-equipment", &csv]);
    assert!(human.contains(&format!("did you mean design \"Roller Crimper for Walking Tractors\" ({crimper})? link it with --link 1={crimper}")), "{human}");
    assert_eq!(
        home.json(&["design", "show", &crimper])["built"],
        serde_json::json!([])
    );

    let linked = home.json(&[
        "import",
        "farmos-equipment",
        &csv,
        "--yes",
        "--farm-url",
        "https://farm.example",
    ]);
    assert_eq!(linked["linked"], 2);
    let built = home.json(&["design", "show", &crimper])["built"].clone();
    assert_eq!(built[0]["farmos_asset"], ASSET);
    assert_eq!(built[0]["model"], "RC-76");
    assert!(built[0].get("serial").is_none_or(Value::is_null));
    let again = home.json(&["import", "farmos-equipment", &csv, "--yes"]);
    assert_eq!(again["linked"], 0);
    assert_eq!(again["rows"][0]["already_linked"], true);

    let by_hand = home.json(&[
        "import",
        "farmos-equipment",
        &csv,
        "--link",
        &format!("2={hitch}"),
    ]);
    assert_eq!(by_hand["linked"], 1);
    assert_eq!(by_hand["rows"][1]["linked"], hitch.as_str());
    let error = home.fail(&[
        "import",
        "farmos-equipment",
        &csv,
        "--link",
        &format!("9={hitch}"),
    ]);
    assert!(error.contains("no row 9 in the file"), "{error}");

    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("logs.csv");
    std::fs::write(&bad, "id,name,timestamp\n1,Harvest,2026-01-01\n").expect("write");
    let error = home.fail(&["import", "farmos-equipment", bad.to_str().expect("utf-8")]);
    assert!(error.contains("no `uuid` column"), "{error}");
}
