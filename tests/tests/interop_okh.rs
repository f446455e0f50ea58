//! Open Know-How manifests in and out with the real binary: `hedgerow import okh` on the
//! messy manifests of `tests/data/okh/` (each mirrors real ones, see `tests/data/README`),
//! re-imports that change nothing, an updated manifest that is one change, exports checked
//! against the published JSON schemas, round trips, and every bad input of issue 10.
//!
//! ```text
//!   folder/okh.toml --import--> design (+ attachments) --export--> folder/okh.toml --import--> no change
//! ```

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use hedgerow_tests::TestHome;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `tests/data/okh`.
fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/okh")
}

fn data_path(name: &str) -> String {
    data().join(name).to_str().unwrap().to_string()
}

/// A home with one commons.
fn home() -> TestHome {
    let home = TestHome::init("Ada");
    home.ok(&["commons", "create", "Imports"]);
    home
}

/// Copies a folder (files and subfolders) into a fresh temp dir.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs `import okh PATHS --json`, whatever its exit code; returns (success, reply).
fn import(home: &TestHome, paths: &[&str]) -> (bool, Value) {
    let mut args = vec!["import", "okh"];
    args.extend_from_slice(paths);
    args.push("--json");
    let out = home.run(&args);
    let text = String::from_utf8(out.stdout).unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("import printed invalid JSON ({e}): {text}"));
    (out.status.success(), value)
}

/// The report of the manifest whose path ends with `suffix`.
fn manifest<'a>(reply: &'a Value, suffix: &str) -> &'a Value {
    reply["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manifest"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no report for {suffix} in {reply:#}"))
}

fn show(home: &TestHome, id: &str) -> Value {
    home.json(&["design", "show", id])
}

/// Every change of every design in the home.
fn total_changes(home: &TestHome) -> u64 {
    home.json(&["design", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["changes"].as_u64().unwrap())
        .sum()
}

fn mapped_value<'a>(report: &'a Value, key: &str) -> Vec<&'a str> {
    report["mapped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["key"] == key)
        .map(|m| m["value"].as_str().unwrap())
        .collect()
}

fn notes(report: &Value) -> Vec<(u64, String)> {
    report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["line"].as_u64().unwrap(),
                n["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn dropped(report: &Value, key: &str) -> String {
    report["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == key)
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("`{key}` not dropped in {report:#}"))
}

#[test]
fn import_maps_what_a_reader_of_the_manifest_expects() {
    let home = home();
    let (ok, reply) = import(
        &home,
        &[
            &data_path("roller-crimper"),
            &data_path("losh-duplicates.toml"),
            &data_path("losh-dummy-typos.toml"),
            &data_path("okh-agrocircle.yml"),
            &data_path("okh-microscope.yml"),
            &data_path("okh-rouleau.yml"),
        ],
    );
    assert!(ok, "{reply:#}");
    assert_eq!(reply["failed"], 0);

    // A LOSH 2.x folder: fields, files with their roles, extras, and the weight in kg.
    let roller = manifest(&reply, "roller-crimper/okh.toml");
    assert_eq!(roller["outcome"], "created");
    let d = show(&home, roller["design"].as_str().unwrap());
    assert_eq!(d["name"], "Roller crimper");
    assert_eq!(d["licence"]["hardware"], "CERN-OHL-S-2.0");
    assert_eq!(d["version"], "1.2.0");
    assert_eq!(d["stage"], "functional-prototype");
    assert_eq!(d["documentation_language"], "en-GB");
    assert_eq!(d["build_facts"]["weight_kg"], 182);
    assert_eq!(
        d["external_ids"]["okh"],
        "https://example.org/farmhack/roller-crimper"
    );
    assert_eq!(
        d["external_ids"]["okh-documentation-readiness-level"],
        "ODRL-3*"
    );
    assert_eq!(
        d["external_ids"]["okh-manufacturing-instructions"],
        "https://example.org/farmhack/roller-crimper/wiki/Build"
    );
    assert_eq!(d["parts"][0]["name"], "Drum");
    assert_eq!(d["parts"][0]["material"], "steel tube");
    let files: Vec<(String, String)> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                f["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("crimper.jpg", "photo"),
        ("bom.csv", "bom"),
        ("manual.md", "manual"),
        ("drum.FCStd", "cad"),
        ("drum.pdf", "drawing"),
    ] {
        assert!(
            files.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {files:?}"
        );
    }
    assert_eq!(files.len(), 5, "{files:?}");
    let bom = std::fs::read(data().join("roller-crimper/bom.csv")).unwrap();
    let bom_entry = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "bom.csv")
        .unwrap();
    assert_eq!(bom_entry["hash"], blake3::hash(&bom).to_hex().as_str());

    // Duplicate keys: the first value wins, each copy is named with its line.
    let dups = manifest(&reply, "losh-duplicates.toml");
    let d = show(&home, dups["design"].as_str().unwrap());
    assert_eq!(
        d["external_ids"]["okh-image"],
        "https://example.org/hedgerow-tests/seed-drill/drill.jpg"
    );
    assert_eq!(
        d["summary"],
        "Sows six rows of small seeds at once, pushed by hand."
    );
    let n = notes(dups);
    assert!(
        n.contains(&(
            13,
            "`image` is written twice; the first value is kept, this one ignored".into()
        )),
        "{n:?}"
    );
    assert!(
        n.contains(&(
            14,
            "`function` is written twice; the first value is kept, this one ignored".into()
        )),
        "{n:?}"
    );
    // A number where text belongs, a prose licence, a free-text language, a draft key.
    assert_eq!(d["version"], "1.1");
    assert_eq!(d["licence"]["hardware"], "CC-BY-SA-4.0");
    assert_eq!(d["documentation_language"], "en-US");
    assert_eq!(d["licensor"], "Joan Grower, Sam Welder");
    assert_eq!(d["external_ids"]["okh-organisation"], "Grower's co-op");
    assert_eq!(
        d["external_ids"]["okh"],
        "https://example.org/hedgerow-tests/seed-drill"
    );
    assert!(
        n.iter()
            .any(|(_, m)| m.contains("`organization` is a draft key")),
        "{n:?}"
    );

    // An older LOSH with a bare version, a misspelt readiness level and draft keys.
    let typos = manifest(&reply, "losh-dummy-typos.toml");
    let d = show(&home, typos["design"].as_str().unwrap());
    assert_eq!(d["stage"], "prototype");
    assert_eq!(
        d["external_ids"]["okh-technology-readiness-level"],
        "OTRL-3"
    );
    assert_eq!(
        d["external_ids"]["okh-standard-compliance"],
        "DIN 5008:2020-03"
    );
    assert_eq!(d["external_ids"]["okh-cpc-patent-class"], "A01B");
    assert!(notes(typos)
        .iter()
        .any(|(l, m)| *l == 9 && m == "readiness level `OTLR-3` read as `OTRL-3`"));
    assert_eq!(dropped(typos, "bom"), "`sBoM.csv` is not in the folder");
    assert!(dropped(typos, "part.1.process").contains("a part holds"));
    assert!(
        mapped_value(typos, "bom").is_empty(),
        "a file not found is not reported as mapped"
    );

    // OKH v1 with a duplicated project-link, prose licences, a free-text stage.
    let agro = manifest(&reply, "okh-agrocircle.yml");
    let d = show(&home, agro["design"].as_str().unwrap());
    assert_eq!(d["name"], "Vegetable carer");
    assert_eq!(
        d["external_ids"]["okh"],
        "https://example.org/hedgerow-tests/vegetable-carer"
    );
    assert_eq!(d["licence"]["hardware"], "CC-BY-SA-4.0");
    assert_eq!(d["licence"]["documentation"], "CC-BY-SA-4.0");
    assert_eq!(d["stage"], "concept");
    assert_eq!(
        d["tags"],
        serde_json::json!(["farming", "automation", "sustainable"])
    );
    assert_eq!(d["contributors"][0]["name"], "Jan Example");
    assert!(notes(agro).contains(&(
        26,
        "`project-link` is written twice; the first value is kept, this one ignored".into()
    )));
    assert!(dropped(agro, "contact.email").contains("e-mail"));
    assert!(dropped(agro, "manifest-author").contains("about the manifest"));

    let micro = manifest(&reply, "okh-microscope.yml");
    let d = show(&home, micro["design"].as_str().unwrap());
    assert_eq!(d["licence"]["hardware"], "CERN-OHL-1.2");
    assert_eq!(d["licence"]["software"], "GPL-3.0-only");
    assert_eq!(
        d["version"], "6.0",
        "`version: 6.0` keeps its text, not the float 6"
    );
    assert_eq!(d["stage"], "production-ready");
    assert_eq!(d["documentation_language"], "en-GB");

    // Non-English text arrives as written.
    let rouleau = manifest(&reply, "okh-rouleau.yml");
    let d = show(&home, rouleau["design"].as_str().unwrap());
    assert_eq!(d["name"], "Rouleau FACA");
    assert!(d["summary"]
        .as_str()
        .unwrap()
        .starts_with("Rouleau à cames pour coucher"));
    assert_eq!(d["licence"]["hardware"], "CC-BY-NC-SA-4.0");
    assert_eq!(d["documentation_language"], "fr-FR");
    assert_eq!(d["safety"], "Ne jamais passer sous le rouleau relevé.");
    assert_eq!(d["contributors"][0]["name"], "Élise Paysanne");
    assert_eq!(d["parts"][1]["name"], "Châssis");
    assert_eq!(d["tags"][1], "couvert végétal");

    // The human report says the same.
    let text = home.ok(&[
        "import",
        "okh",
        &data_path("losh-duplicates.toml"),
        "--dry-run",
    ]);
    assert!(
        text.contains("mapped   license -> licence.hardware: CC-BY-SA-4.0"),
        "{text}"
    );
    assert!(
        text.contains("note     line 13: `image` is written twice"),
        "{text}"
    );
    assert!(text.contains(": unchanged"), "{text}");
}

#[test]
fn reimport_changes_nothing_and_an_updated_manifest_is_one_change() {
    let home = home();
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("roller-crimper");
    copy_dir(&data().join("roller-crimper"), &folder);
    let folder_s = folder.to_str().unwrap();
    let (ok, first) = import(&home, &[folder_s]);
    assert!(ok, "{first:#}");
    let id = manifest(&first, "okh.toml")["design"]
        .as_str()
        .unwrap()
        .to_string();
    let before = total_changes(&home);
    let snapshot = home.snapshot_files();

    let (ok, again) = import(&home, &[folder_s]);
    assert!(ok);
    let m = manifest(&again, "okh.toml");
    assert_eq!(m["outcome"], "unchanged");
    assert_eq!(m["edits"], 0);
    assert_eq!(m["design"], id.as_str());
    assert_eq!(total_changes(&home), before);
    assert_eq!(home.json(&["design", "list"]).as_array().unwrap().len(), 1);
    let blobs = |s: &[(PathBuf, Vec<u8>)]| {
        s.iter()
            .filter(|(p, _)| p.starts_with("blobs"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(blobs(&home.snapshot_files()), blobs(&snapshot));

    // An updated manifest (new version, one more tag of data, a new BOM) is one signed change.
    let manifest_path = folder.join("okh.toml");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        text.replace("version = \"1.2.0\"", "version = \"1.3.0\""),
    )
    .unwrap();
    std::fs::write(
        folder.join("bom.csv"),
        "item,quantity\nsteel tube 406 mm,2\n",
    )
    .unwrap();
    let (ok, updated) = import(&home, &[folder_s]);
    assert!(ok, "{updated:#}");
    let m = manifest(&updated, "okh.toml");
    assert_eq!(m["outcome"], "updated");
    assert_eq!(total_changes(&home), before + 1);
    let d = show(&home, &id);
    assert_eq!(d["version"], "1.3.0");
    let boms: Vec<&Value> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "bom.csv")
        .collect();
    assert_eq!(boms.len(), 1, "the new BOM replaces the old one: {boms:?}");
    assert_eq!(
        boms[0]["hash"],
        blake3::hash(b"item,quantity\nsteel tube 406 mm,2\n")
            .to_hex()
            .as_str()
    );
    let history = home.json(&["design", "history", &id]);
    assert_eq!(
        history
            .as_array()
            .map(Vec::len)
            .or(history["changes"].as_array().map(Vec::len)),
        Some(2)
    );
}

/// Validates `instance` against the schema file `name` of `tests/data/okh/schemas`.
///
/// The published language pattern names a group twice (`privateUse`), which ECMA-262 regexes
/// (and so the validator) refuse; its groups are read unnamed, as the schema's newer copy in
/// iop-alliance/OpenKnowHow writes the same pattern. Nothing else is changed.
fn assert_valid(name: &str, instance: &Value) {
    let text = std::fs::read_to_string(data().join("schemas").join(name)).unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    for defs in ["$defs", "definitions"] {
        if let Some(pattern) = schema.pointer_mut(&format!("/{defs}/language/pattern")) {
            let unnamed = unname_groups(pattern.as_str().unwrap());
            *pattern = Value::String(unnamed);
        }
    }
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{instance:#}");
}

/// `(?<name>` groups made plain `(` groups.
fn unname_groups(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(at) = rest.find("(?<") {
        out.push_str(&rest[..at]);
        out.push('(');
        let after = &rest[at + 3..];
        rest = &after[after.find('>').unwrap() + 1..];
    }
    out.push_str(rest);
    out
}

fn export_text(home: &TestHome, id: &str, format: &str) -> String {
    home.ok(&["export", "okh", id, "--format", format])
}

#[test]
fn exports_validate_against_the_published_schemas() {
    let home = home();
    let (ok, reply) = import(
        &home,
        &[
            &data_path("roller-crimper"),
            &data_path("okh-rouleau.yml"),
            &data_path("losh-dummy-typos.toml"),
            &data_path("okh-microscope.yml"),
        ],
    );
    assert!(ok, "{reply:#}");
    for m in reply["manifests"].as_array().unwrap() {
        let id = m["design"].as_str().unwrap();
        let losh: toml::Table = toml::from_str(&export_text(&home, id, "losh")).unwrap();
        let losh = serde_json::to_value(&losh).unwrap();
        assert_valid("okh-losh.schema.json", &losh);
        let v1 = export_text(&home, id, "v1");
        assert!(v1.contains("okh-manifest-version: 1.0.0"), "{v1}");
        let v1: Value = yaml_to_json(&v1);
        assert_valid("okh-v1.schema.json", &v1);
    }
    // The values land where the schemas want them.
    let roller = manifest(&reply, "roller-crimper/okh.toml")["design"]
        .as_str()
        .unwrap();
    let losh: toml::Table = toml::from_str(&export_text(&home, roller, "losh")).unwrap();
    assert_eq!(losh["okhv"].as_str(), Some("OKH-LOSHv1.0"));
    assert_eq!(losh["license"].as_str(), Some("CERN-OHL-S-2.0"));
    assert_eq!(losh["image"].as_str(), Some("images/crimper.jpg"));
    assert_eq!(losh["bom"].as_str(), Some("bom.csv"));
    assert_eq!(losh["mass"]["value"].as_float(), Some(182.0));

    // A design without what LOSH requires is refused in one line, saying what to set.
    let id = home.json(&["design", "new", "Bare idea"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let error = home.fail(&["export", "okh", &id, "--format", "losh"]);
    assert!(
        error.contains("requires `repo`") && error.contains("--format v1"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
}

/// YAML (as the export writes it) read as JSON, through the same reader as the import.
fn yaml_to_json(text: &str) -> Value {
    use hedgerow_protocol::interop::okh::tree::{read_yaml, Node, ScalarKind, Val};
    fn conv(n: &Node) -> Value {
        match &n.val {
            Val::Scalar(t, ScalarKind::Bool) => Value::Bool(t == "true"),
            Val::Scalar(t, ScalarKind::Number) => {
                serde_json::from_str(t).unwrap_or(Value::String(t.clone()))
            }
            Val::Scalar(_, ScalarKind::Null) => Value::Null,
            Val::Scalar(t, ScalarKind::Text) => Value::String(t.clone()),
            Val::List(items) => Value::Array(items.iter().map(conv).collect()),
            Val::Map(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.clone(), conv(v))).collect())
            }
        }
    }
    let (root, dups) = read_yaml(text).unwrap();
    assert!(dups.is_empty());
    conv(&root)
}

#[test]
fn import_export_import_changes_nothing() {
    let home = home();
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("roller-crimper");
    copy_dir(&data().join("roller-crimper"), &folder);
    let folder_s = folder.to_str().unwrap();
    let (ok, first) = import(&home, &[folder_s, &data_path("okh-rouleau.yml")]);
    assert!(ok, "{first:#}");
    let roller = manifest(&first, "okh.toml")["design"]
        .as_str()
        .unwrap()
        .to_string();
    let rouleau = manifest(&first, "okh-rouleau.yml")["design"]
        .as_str()
        .unwrap()
        .to_string();
    let before = total_changes(&home);
    let shown = show(&home, &roller);

    // LOSH: the export replaces the folder's manifest; the files it names are those there.
    let out = folder.join("okh.toml");
    home.fail(&["export", "okh", &roller, "--out", out.to_str().unwrap()]);
    home.ok(&[
        "export",
        "okh",
        &roller,
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    // OKH v1 into a folder of its own.
    let v1_dir = work.path().join("rouleau");
    std::fs::create_dir_all(&v1_dir).unwrap();
    let v1_out = v1_dir.join("okh.yml");
    home.ok(&[
        "export",
        "okh",
        &rouleau,
        "--format",
        "v1",
        "--out",
        v1_out.to_str().unwrap(),
    ]);

    let (ok, again) = import(&home, &[folder_s, v1_dir.to_str().unwrap()]);
    assert!(ok, "{again:#}");
    for m in again["manifests"].as_array().unwrap() {
        assert_eq!(m["outcome"], "unchanged", "{m:#}");
    }
    assert_eq!(total_changes(&home), before);
    let mut after = show(&home, &roller);
    let mut shown = shown;
    for v in [&mut after, &mut shown] {
        v.as_object_mut().unwrap().remove("heads");
    }
    assert_eq!(after, shown);
}

#[test]
fn bad_input_is_reported_per_manifest_and_the_rest_imports() {
    let home = home();
    let work = tempfile::tempdir().unwrap();
    // A symlink that leaves the folder.
    let linked = work.path().join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::write(
        linked.join("okh.toml"),
        "okhv = \"OKH-LOSHv1.0\"\nname = \"Linked\"\nrepo = \"https://example.org/linked\"\nversion = \"1\"\nlicense = \"MIT\"\nlicensor = \"X\"\nfunction = \"Its photo is a link out of the folder.\"\nimage = \"photo.jpg\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/hostname", linked.join("photo.jpg")).unwrap();
    // A folder without a manifest.
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let before = home.snapshot_files();

    let (ok, reply) = import(
        &home,
        &[
            &data_path("escape"),
            linked.to_str().unwrap(),
            &data_path("not-a-manifest.toml"),
            &data_path("unknown-version.toml"),
            &data_path("missing-name.toml"),
            &data_path("broken/okh-social.yml"),
            empty.to_str().unwrap(),
            &data_path("bad-bom"),
        ],
    );
    assert!(!ok, "an import with failed manifests exits non-zero");
    assert_eq!(reply["failed"], 7, "{reply:#}");
    let error = |suffix: &str| {
        manifest(&reply, suffix)["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let escape = error("escape/okh.toml");
    assert!(
        escape.contains("`image` names `../../etc/passwd`, which is outside the folder"),
        "{escape}"
    );
    assert!(error("linked/okh.toml").contains("`photo.jpg`, which is outside the folder"));
    assert!(error("not-a-manifest.toml").contains("line 1: not an OKH manifest"));
    assert!(error("unknown-version.toml").contains("line 1: unknown OKH version `OKH-LOSHv3.0`"));
    assert!(error("missing-name.toml").contains("`name` is missing"));
    let broken = error("okh-social.yml");
    assert!(
        broken.contains("okh-social.yml: line 9: not readable as YAML"),
        "{broken}"
    );
    assert!(error("empty").contains("no okh.toml"));
    for m in reply["manifests"].as_array().unwrap() {
        let e = m["error"].as_str().unwrap_or_default();
        assert_eq!(
            e.lines().count(),
            usize::from(!e.is_empty()),
            "one line: {e}"
        );
    }
    // The one good manifest imported, its mislabelled BOM reported and left out.
    let bad_bom = manifest(&reply, "bad-bom/okh.toml");
    assert_eq!(bad_bom["outcome"], "created");
    assert!(dropped(bad_bom, "bom").contains("is not CSV text"));
    let d = show(&home, bad_bom["design"].as_str().unwrap());
    assert_eq!(d["files"].as_array().unwrap().len(), 1);
    assert_eq!(d["files"][0]["name"], "photo.jpg");
    // Nothing of the failed ones was written: one design, one blob.
    assert_eq!(home.json(&["design", "list"]).as_array().unwrap().len(), 1);
    let blobs: Vec<PathBuf> = home
        .snapshot_files()
        .into_iter()
        .filter(|(p, _)| p.starts_with("blobs") && !before.iter().any(|(q, _)| q == p))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");

    // A file over the attachment limit is left out, named with the limit.
    std::fs::write(
        home.path().join("config.json"),
        r#"{"files": {"max_file_bytes": 40}}"#,
    )
    .unwrap();
    let (ok, reply) = import(&home, &[&data_path("roller-crimper")]);
    assert!(ok, "{reply:#}");
    let roller = manifest(&reply, "okh.toml");
    assert!(
        dropped(roller, "image").contains("over the attachment limit of 40"),
        "{roller:#}"
    );

    // Files that would take the commons over its quota: the manifest imports nothing.
    std::fs::write(
        home.path().join("config.json"),
        r#"{"files": {"commons_quota_bytes": 100}}"#,
    )
    .unwrap();
    let (ok, reply) = import(&home, &[&data_path("roller-crimper")]);
    assert!(!ok);
    let error = manifest(&reply, "okh.toml")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("over its quota of 100"), "{error}");
    std::fs::remove_file(home.path().join("config.json")).unwrap();

    // --dry-run writes nothing: no design, no change, no blob.
    let blob_paths = |home: &TestHome| {
        home.snapshot_files()
            .into_iter()
            .filter(|(p, _)| p.starts_with("blobs"))
            .map(|(p, _)| p)
            .collect::<Vec<_>>()
    };
    let (designs, changes, blobs) = (
        home.json(&["design", "list"]).as_array().unwrap().len(),
        total_changes(&home),
        blob_paths(&home),
    );
    let (ok, dry) = import(
        &home,
        &[
            &data_path("okh-rouleau.yml"),
            &data_path("roller-crimper"),
            "--dry-run",
        ],
    );
    assert!(ok);
    assert_eq!(manifest(&dry, "okh-rouleau.yml")["outcome"], "would-create");
    assert_eq!(
        home.json(&["design", "list"]).as_array().unwrap().len(),
        designs
    );
    assert_eq!(total_changes(&home), changes);
    assert_eq!(blob_paths(&home), blobs);
}
