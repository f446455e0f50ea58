//! Upgrades: a home written by the previous release (`tests/data/stores/`, see its README)
//! opens with this build and everything in it reads back; a store marked newer is refused
//! untouched.

use hedgerow_tests::TestHome;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The home main wrote at c3544d2 (store format 1, `config.json` only).
const PREVIOUS: &str = "v0.1.0-c3544d2.tar.gz";
const COMMONS: &str = "28N9kR1oNgfvS8yvLmt6qXj3RN3Rfnp9QMKwEamzurcn";
const CRIMPER: &str = "3EBCGE6tsaoZUWPTySnUVK2Yr8F4bAesQGAP6AqZh7fu";
const DRILL: &str = "EcGYm2wie1jjGHdK9KFyNiCFo5vSyB64oqvVtdXKvcED";
const EVENT: &str = "7jMTdpZEey2VE4T57jZ5rv1LWDeuAn6hAK374ePSsWQt";
const NOTE: &str = "BQjmCNsUvawHMdAUA1kfkakAxCmrTCH5rtsRjuW9YVu3";

/// A test home holding the unpacked `tarball`.
fn unpack(tarball: &str) -> TestHome {
    let home = TestHome::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/stores")
        .join(tarball);
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&file)
        .arg("-C")
        .arg(home.path())
        .arg("--strip-components=1")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xzf {}", file.display());
    home
}

#[test]
fn a_home_written_by_the_previous_release_opens_and_reads_back() {
    let home = unpack(PREVIOUS);

    let verified = home.ok(&["verify"]);
    assert!(verified.contains("store is clean"), "{verified}");

    let designs = home.json(&["design", "list"]);
    let names: Vec<(&str, &str)> = designs
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap_or_default(),
                d["title"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(names.contains(&(CRIMPER, "Roller crimper")), "{designs}");
    assert!(names.contains(&(DRILL, "Seed drill")), "{designs}");

    let crimper = home.json(&["design", "show", CRIMPER]);
    assert_eq!(crimper["summary"], "Crimps a cover crop flat", "{crimper}");
    assert_eq!(crimper["files"][0]["name"], "frame.txt", "{crimper}");
    let commons = home.json(&["commons", "list"]);
    assert!(commons.to_string().contains(COMMONS), "{commons}");
    let release = home.json(&["design", "show", CRIMPER, "--version", "1.0"]);
    assert_eq!(release["name"], "Roller crimper", "{release}");

    // The attachment's bytes are still there and still match their hash.
    let drawing = home.ok(&["design", "file", CRIMPER, "frame.txt"]);
    assert_eq!(drawing, "frame drawing v1\n");

    let event = home.json(&["event", "show", EVENT]);
    assert_eq!(event["title"], "Build day", "{event}");
    let notes = home.json(&["note", "list", "--on", EVENT]);
    assert!(notes.to_string().contains(NOTE), "{notes}");

    let devices = home.json(&["device", "list"]);
    assert!(devices.to_string().contains("barn laptop"), "{devices}");

    // Its config.json (the previous release's settings file) is still read.
    let config = home.json(&["config", "show"]);
    assert_eq!(config["fetch.role"]["value"], "hub", "{config}");
    assert_eq!(
        config["files.max_file_bytes"]["value"], 1_000_000,
        "{config}"
    );

    // And it takes new writes.
    home.ok(&["design", "edit", DRILL, "--set", "stage=prototype"]);
    let drill: Value = home.json(&["design", "show", DRILL]);
    assert_eq!(drill["stage"], "prototype", "{drill}");
    assert!(home.ok(&["verify"]).contains("store is clean"));
}

#[test]
fn a_store_marked_newer_is_refused_naming_both_formats() {
    let home = unpack(PREVIOUS);
    let manifest = home.path().join("store/hedgerow-manifest.json");
    std::fs::write(&manifest, r#"{"format":9,"changes":8}"#).expect("mark newer");
    // The store's files only: a home copied to a new place rebinds its install tag.
    let store_files = || {
        let mut files = home.snapshot_files();
        files.retain(|(path, _)| path.starts_with("store"));
        files
    };
    let before = store_files();

    let err = home.fail(&["design", "list"]);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("store format 9") && err.contains("this build reads format 1"),
        "{err}"
    );
    assert!(err.contains("upgrade hedgerow"), "{err}");
    assert!(before == store_files(), "the store was changed");
}
