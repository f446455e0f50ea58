//! Attachments end to end with the real binary: files attached to designs, steps and notes,
//! stored once by hash in `HOME/blobs`, read back byte for byte, checked by `verify`, freed by
//! `gc`, and carried between two homes on a USB stick (`bundle export --with-files`).
//!
//! ```text
//!   A: design + plan.pdf + photo.jpg --bundle --with-files--> stick --import--> B (files identical)
//!   B --summary (lists blobs held)--> A --export --with-files --for--> only the new file
//! ```

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use hedgerow_protocol::attachment::BlobHash;
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Deterministic bytes that do not compress or repeat (a photo stands in for itself).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// Writes `content` to `dir/name` and returns the path as text.
fn file(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// Every complete blob file in a home's blob store.
fn blob_files(home: &TestHome) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(home.path().join("blobs")) else {
        return out;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().to_string();
        if name.len() != 2 || !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

fn blob_path(home: &TestHome, hash: &BlobHash) -> PathBuf {
    let hex = hash.to_hex();
    home.path().join("blobs").join(&hex[..2]).join(&hex[2..])
}

/// A home with a commons and a design with two build steps.
fn farm(name: &str) -> (TestHome, String, String) {
    let home = TestHome::init(name);
    let commons = id(&home.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&home.json(&[
        "design",
        "new",
        "Roller crimper",
        "--step",
        "Cut the drum",
        "--step",
        "Weld the blades",
    ]));
    (home, commons, design)
}

fn stdout_of(home: &TestHome, args: &[&str]) -> Vec<u8> {
    let out = home.run(args);
    assert!(
        out.status.success(),
        "hedgerow {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Attach, list and get back byte for byte, to a file and to standard output; the same bytes
/// attached to a second design and a note are stored once.
#[test]
fn attached_files_come_back_identical_and_are_stored_once() {
    let (a, _, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let plan = bytes(1, 300_000);
    let photo = bytes(2, 40_000);
    let plan_path = file(dir.path(), "crimper-plan.pdf", &plan);
    let photo_path = file(dir.path(), "drum.jpg", &photo);
    let attached = a.json(&[
        "design",
        "attach",
        &design,
        &plan_path,
        "--role",
        "plan",
        "--caption",
        "Full plan, A3",
    ]);
    assert_eq!(attached["hash"], BlobHash::of(&plan).to_hex());
    assert_eq!(attached["stored"], true);
    a.ok(&[
        "design",
        "attach",
        &design,
        &photo_path,
        "--role",
        "photo",
        "--step",
        "2",
    ]);
    let files = a.json(&["design", "files", &design]);
    let files = files.as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "crimper-plan.pdf");
    assert_eq!(files[0]["media_type"], "application/pdf");
    assert_eq!(files[0]["size"], 300_000);
    assert_eq!(files[0]["role"], "plan");
    assert_eq!(files[0]["caption"], "Full plan, A3");
    assert_eq!(files[0]["held"], true);
    assert_eq!(files[1]["step"], 2);
    assert_eq!(files[1]["media_type"], "image/jpeg");
    let whoami = a.json(&["whoami"]);
    assert_eq!(files[0]["attached_by"], whoami["author"]);

    // Back out, to a file and to standard output, by name and by hash prefix.
    let out = dir.path().join("copy.pdf");
    let out_arg = out.to_str().unwrap();
    a.ok(&[
        "design",
        "file",
        &design,
        "crimper-plan.pdf",
        "--out",
        out_arg,
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), plan);
    let refused = a.fail(&[
        "design",
        "file",
        &design,
        "crimper-plan.pdf",
        "--out",
        out_arg,
    ]);
    assert!(
        refused.contains("--force") && !refused.contains('\n'),
        "{refused}"
    );
    let prefix = &BlobHash::of(&photo).to_hex()[..8];
    assert_eq!(stdout_of(&a, &["design", "file", &design, prefix]), photo);

    // The same plan on another design and on a note: one blob.
    let other = id(&a.json(&["design", "new", "Crimper for walking tractors"]));
    let again = a.json(&["design", "attach", &other, &plan_path, "--role", "plan"]);
    assert_eq!(again["stored"], false);
    let note = id(&a.json(&["note", "add", "--on", &design, "--text", "Built one"]));
    a.ok(&["note", "attach", &note, &plan_path]);
    assert_eq!(
        stdout_of(&a, &["note", "file", &note, "crimper-plan.pdf"]),
        plan
    );
    assert_eq!(blob_files(&a).len(), 2, "the plan and the photo, once each");
    // A step that does not exist is refused and nothing changes.
    let before = a.json(&["design", "files", &design]);
    let err = a.fail(&["design", "attach", &design, &plan_path, "--step", "9"]);
    assert!(err.contains("step 9"), "{err}");
    assert_eq!(a.json(&["design", "files", &design]), before);
}

/// A file over the per-file limit, over the commons' quota, or missing is refused in one line,
/// and neither the document nor the blob store changes.
#[test]
fn over_limit_and_missing_files_are_refused_and_nothing_is_written() {
    let (a, _, design) = farm("Ada");
    std::fs::write(
        a.path().join("config.json"),
        r#"{"files": {"max_file_bytes": 100000, "commons_quota_bytes": 150000}}"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let big = file(dir.path(), "big.step", &bytes(3, 100_001));
    let fits = file(dir.path(), "fits.step", &bytes(4, 100_000));
    let second = file(dir.path(), "second.step", &bytes(5, 60_000));
    // A read first, so the store is as sled leaves it after an open.
    let shown = a.json(&["design", "show", &design]);
    let before = a.snapshot_files();
    let err = a.fail(&["design", "attach", &design, &big]);
    assert!(
        err.contains("100000-byte limit") && !err.contains('\n'),
        "{err}"
    );
    let missing = dir.path().join("nowhere.pdf");
    let err = a.fail(&["design", "attach", &design, missing.to_str().unwrap()]);
    assert!(
        err.contains("nowhere.pdf") && err.contains("no such file"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    assert!(blob_files(&a).is_empty());
    assert!(a.snapshot_files() == before, "nothing written in the home");
    assert_eq!(a.json(&["design", "show", &design]), shown);

    a.ok(&["design", "attach", &design, &fits]);
    let before = a.json(&["design", "show", &design]);
    let err = a.fail(&["design", "attach", &design, &second]);
    assert!(err.contains("quota") && !err.contains('\n'), "{err}");
    assert_eq!(
        blob_files(&a).len(),
        1,
        "the refused file's bytes are not kept"
    );
    assert_eq!(a.json(&["design", "show", &design]), before);
}

/// `verify` re-hashes every blob and names a damaged one (with the file and design using it);
/// `--quick` checks sizes only, so it misses the flipped byte but catches a truncation.
#[test]
fn verify_names_a_damaged_blob_and_quick_catches_a_truncated_one() {
    let (a, _, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let plan = bytes(6, 200_000);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "plan.pdf", &plan),
    ]);
    let report = a.json(&["verify"]);
    assert_eq!(report["blobs"]["checked"], 1);
    assert_eq!(report["problems"], Value::Array(vec![]));
    let path = blob_path(&a, &BlobHash::of(&plan));
    let mut flipped = plan.clone();
    flipped[123_456] ^= 0x01;
    std::fs::write(&path, &flipped).unwrap();
    a.ok(&["verify", "--quick"]);
    let out = a.run(&["verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&BlobHash::of(&plan).to_hex())
            && text.contains("plan.pdf")
            && text.contains(&design),
        "{text}"
    );
    std::fs::write(&path, &plan[..150_000]).unwrap();
    let out = a.run(&["verify", "--quick"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("150000 bytes on disk"), "{text}");
}

/// `gc` removes a blob nothing refers to and an orphan partial download, and keeps a blob a
/// release still pins after it was detached.
#[test]
fn gc_removes_unreferenced_blobs_and_keeps_released_ones() {
    let (a, _, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let plan = bytes(7, 50_000);
    let sketch = bytes(8, 30_000);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "plan.pdf", &plan),
    ]);
    a.ok(&["design", "release", &design, "--version", "1.0"]);
    a.ok(&["design", "detach", &design, "plan.pdf"]);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "sketch.png", &sketch),
    ]);
    a.ok(&["design", "detach", &design, "sketch.png"]);
    let orphan = a
        .path()
        .join("blobs/partial")
        .join(BlobHash([5; 32]).to_hex());
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"half a file").unwrap();

    assert_eq!(a.json(&["design", "files", &design]), Value::Array(vec![]));
    let released = a.json(&["design", "files", &design, "--version", "1.0"]);
    assert_eq!(released[0]["name"], "plan.pdf");
    let gc = a.json(&["gc"]);
    assert_eq!(gc["removed"][0]["hash"], BlobHash::of(&sketch).to_hex());
    assert_eq!(gc["removed"].as_array().unwrap().len(), 1);
    assert_eq!(gc["partials_removed"], 1);
    assert_eq!(gc["bytes_freed"], 30_000 + 11);
    assert!(!orphan.exists());
    assert_eq!(blob_files(&a), vec![blob_path(&a, &BlobHash::of(&plan))]);
    let out = dir.path().join("release.pdf");
    a.ok(&[
        "design",
        "file",
        &design,
        "plan.pdf",
        "--version",
        "1.0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), plan);
    // Nothing left to free.
    assert_eq!(a.json(&["gc"])["bytes_freed"], 0);
}

/// USB round trip with files between two homes; then B's summary lists the blobs it holds, so
/// A's next export `--for` it writes only the new file.
#[test]
fn files_travel_by_usb_and_a_summary_leaves_out_what_is_held() {
    let (a, commons, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let plan = bytes(9, 250_000);
    let photo = bytes(10, 60_000);
    let log_photo = bytes(11, 20_000);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "plan.pdf", &plan),
    ]);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "drum.jpg", &photo),
        "--step",
        "1",
    ]);
    let note = id(&a.json(&["note", "add", "--on", &design, "--text", "Build day"]));
    a.ok(&[
        "note",
        "attach",
        &note,
        &file(dir.path(), "day.jpg", &log_photo),
    ]);

    let stick = dir.path().join("stick.bundle");
    let stick_arg = stick.to_str().unwrap();
    let plain = dir.path().join("plain.bundle");
    a.ok(&["bundle", "export", plain.to_str().unwrap()]);
    let exported = a.json(&["bundle", "export", stick_arg, "--with-files"]);
    assert_eq!(exported["files"]["written"], 3);
    let sizes = (250_000 + 60_000 + 20_000) as u64;
    let plain_len = std::fs::metadata(&plain).unwrap().len();
    let stick_len = std::fs::metadata(&stick).unwrap().len();
    assert_eq!(
        stick_len,
        plain_len + sizes + 4 * 48,
        "records, 3 blobs, their headers and the end"
    );

    let b = TestHome::init("Bea");
    let imported = b.json(&["bundle", "import", stick_arg, "--commons", &commons]);
    assert_eq!(imported["files"]["stored"], 3);
    assert_eq!(imported["files"]["damaged"], Value::Array(vec![]));
    assert_eq!(
        stdout_of(&b, &["design", "file", &design, "plan.pdf"]),
        plan
    );
    assert_eq!(
        stdout_of(&b, &["design", "file", &design, "drum.jpg"]),
        photo
    );
    assert_eq!(
        stdout_of(&b, &["note", "file", &note, "day.jpg"]),
        log_photo
    );
    assert_eq!(b.json(&["design", "files", &design])[1]["step"], 1);
    assert_eq!(b.json(&["verify"])["blobs"]["checked"], 3);
    // Importing twice stores nothing new.
    let again = b.json(&["bundle", "import", stick_arg]);
    assert_eq!(again["files"]["known"], 3);

    // B's summary lists its blobs: A's next export carries only the new drawing.
    let summary = dir.path().join("b.summary");
    b.ok(&["bundle", "summary", summary.to_str().unwrap()]);
    let drawing = bytes(12, 80_000);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "frame.dxf", &drawing),
    ]);
    let back = dir.path().join("back.bundle");
    let back_arg = back.to_str().unwrap();
    let exported = a.json(&[
        "bundle",
        "export",
        back_arg,
        "--with-files",
        "--for",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(exported["files"]["written"], 1);
    assert_eq!(exported["files"]["already_held"], 3);
    let back_len = std::fs::metadata(&back).unwrap().len();
    assert!(
        (80_000 + 96..80_000 + 96 + 8_000).contains(&back_len),
        "only the new file and one change: {back_len} bytes"
    );
    b.ok(&["bundle", "import", back_arg]);
    assert_eq!(
        stdout_of(&b, &["design", "file", &design, "frame.dxf"]),
        drawing
    );
}

/// A bundle whose first blob was damaged on the stick: the import reports that blob by hash
/// (non-zero exit) and keeps every document and the other blob.
#[test]
fn a_damaged_blob_in_a_bundle_is_reported_and_the_rest_imports() {
    let (a, commons, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let plan = bytes(13, 120_000);
    let photo = bytes(14, 40_000);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "plan.pdf", &plan),
    ]);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "drum.jpg", &photo),
    ]);
    let stick = dir.path().join("stick.bundle");
    let stick_arg = stick.to_str().unwrap();
    a.ok(&["bundle", "export", stick_arg, "--with-files"]);
    let mut raw = std::fs::read(&stick).unwrap();
    let at = raw
        .windows(64)
        .position(|w| w == &plan[1000..1064])
        .expect("the plan's bytes are in the bundle");
    raw[at + 30_000] ^= 0x40;
    std::fs::write(&stick, &raw).unwrap();

    let b = TestHome::init("Bea");
    let out = b.run(&[
        "bundle",
        "import",
        stick_arg,
        "--commons",
        &commons,
        "--json",
    ]);
    assert!(!out.status.success(), "a damaged file fails the import");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let damaged = report["files"]["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0]["hash"], BlobHash::of(&plan).to_hex());
    assert_eq!(report["files"]["stored"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&BlobHash::of(&plan).to_hex()), "{stderr}");
    // The design and the sound file arrived; the damaged one is listed as not held.
    let files = b.json(&["design", "files", &design]);
    assert_eq!(files[0]["held"], false);
    assert_eq!(files[1]["held"], true);
    assert_eq!(
        stdout_of(&b, &["design", "file", &design, "drum.jpg"]),
        photo
    );
    assert!(!blob_path(&b, &BlobHash::of(&plan)).exists());
    let err = b.fail(&["design", "file", &design, "plan.pdf"]);
    assert!(err.contains("not on this node yet"), "{err}");
    b.ok(&["verify"]);
}

/// While `serve` holds the store, attaching goes through its control socket, `design file`
/// reads the blob store directly, and `status --json` counts the blobs held.
#[test]
fn files_work_through_a_running_node_and_status_counts_blobs() {
    let (a, _, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let plan = bytes(15, 70_000);
    let node = hedgerow_tests::net::ServeNode::start(a, &[]);
    let before = node.status();
    assert_eq!(before["blobs"]["held"], 0);
    node.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "plan.pdf", &plan),
    ]);
    assert_eq!(
        stdout_of(&node, &["design", "file", &design, "plan.pdf"]),
        plan
    );
    let status = node.status();
    assert_eq!(status["blobs"]["held"], 1);
    assert_eq!(status["blobs"]["bytes"], 70_000);
    assert_eq!(status["blobs"]["in_flight"], 0);
    assert_eq!(node.json(&["verify"])["blobs"]["checked"], 1);
}

/// A bundle whose files would take a commons past the importing node's quota: the files that
/// fit are stored, the next one is refused by name (non-zero exit), the documents all arrive.
#[test]
fn a_bundle_import_keeps_to_the_commons_quota() {
    let (a, commons, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let first = bytes(16, 60_000);
    let second = bytes(17, 60_000);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "a.pdf", &first),
    ]);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "b.pdf", &second),
    ]);
    let stick = dir.path().join("stick.bundle");
    a.ok(&["bundle", "export", stick.to_str().unwrap(), "--with-files"]);
    let b = TestHome::init("Bea");
    std::fs::write(
        b.path().join("config.json"),
        r#"{"files": {"commons_quota_bytes": 100000}}"#,
    )
    .unwrap();
    let out = b.run(&[
        "bundle",
        "import",
        stick.to_str().unwrap(),
        "--commons",
        &commons,
        "--json",
    ]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"]["stored"], 1);
    let refused = report["files"]["damaged"].as_array().unwrap();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]["error"].as_str().unwrap().contains("quota"),
        "{report}"
    );
    assert_eq!(
        b.json(&["design", "files", &design])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(blob_files(&b).len(), 1);
}

/// A bundle cut short inside its second file (pulled out of the laptop too early): the
/// documents and the first file are kept, the cut one is named, nothing partial is kept.
#[test]
fn a_bundle_cut_inside_a_file_keeps_what_came_before() {
    let (a, commons, design) = farm("Ada");
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (bytes(18, 50_000), bytes(19, 50_000));
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "one.pdf", &one),
    ]);
    a.ok(&[
        "design",
        "attach",
        &design,
        &file(dir.path(), "two.pdf", &two),
    ]);
    let stick = dir.path().join("stick.bundle");
    a.ok(&["bundle", "export", stick.to_str().unwrap(), "--with-files"]);
    let raw = std::fs::read(&stick).unwrap();
    // Blobs are sorted by hash: cut in the middle of the one written second.
    let (first, second) = if BlobHash::of(&one) < BlobHash::of(&two) {
        (&one, &two)
    } else {
        (&two, &one)
    };
    let at = raw
        .windows(64)
        .position(|w| w == &second[..64])
        .expect("the second file is in the bundle");
    std::fs::write(&stick, &raw[..at + 20_000]).unwrap();
    let b = TestHome::init("Bea");
    let out = b.run(&[
        "bundle",
        "import",
        stick.to_str().unwrap(),
        "--commons",
        &commons,
        "--json",
    ]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"]["stored"], 1);
    assert_eq!(
        report["files"]["damaged"][0]["hash"],
        BlobHash::of(second).to_hex()
    );
    assert_eq!(blob_files(&b), vec![blob_path(&b, &BlobHash::of(first))]);
    assert_eq!(
        b.json(&["design", "files", &design])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    b.ok(&["verify"]);
}
