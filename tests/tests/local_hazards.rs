//! Local hazards through the real binary: files written where others can plant
//! symlinks, text from peers printed to a terminal, and `init` pointed at a folder
//! that is not a home.
//!
//! ```text
//!   shared/  .out.bundle.hedgerow-tmp-PID -> victim   (planted)
//!   hedgerow bundle export shared/out.bundle          victim unchanged, out.bundle a file
//!
//!   Mallory: design "\x1b[2J...\u{202e}..." --bundle--> Alice: design list / show
//!                                                      no raw ESC, BEL or U+202E on screen
//! ```

use hedgerow_tests::net::ServeNode;
use hedgerow_tests::{id, TestHome};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A home with a commons and one design, to export.
fn farm() -> TestHome {
    let home = TestHome::init("Alice");
    home.ok(&["commons", "create", "Farm Hack tools"]);
    home.ok(&["design", "new", "Roller crimper", "--step", "Cut the tube."]);
    home
}

/// The temp file name a writer with process id `pid` used beside `file` before.
fn old_temp_name(dir: &Path, file: &str, pid: u32) -> PathBuf {
    dir.join(format!(".{file}.hedgerow-tmp-{pid}"))
}

const PRECIOUS: &[u8] = b"someone else's file\n";

/// Asserts the export wrote a real file and the planted symlinks' target is untouched.
fn assert_not_followed(victim: &Path, out: &Path, importer: &TestHome) {
    assert_eq!(
        std::fs::read(victim).expect("victim still there"),
        PRECIOUS,
        "the export wrote through a planted symlink"
    );
    let meta = std::fs::symlink_metadata(out).expect("bundle written");
    assert!(meta.file_type().is_file(), "the bundle is not a plain file");
    let report = importer.json(&["bundle", "import", arg(out), "--all-commons"]);
    assert!(report["new"].as_u64().unwrap_or(0) > 0, "{report}");
}

/// Symlinks are planted at the temp names the old code used (`.NAME.hedgerow-tmp-PID`), once
/// for a running node (its process id is known) and once for a direct export (every process id
/// the next few thousand processes may get); the export must not follow any of them.
#[test]
fn export_never_writes_through_a_planted_symlink() {
    let shared = tempfile::tempdir().expect("shared folder");
    let elsewhere = tempfile::tempdir().expect("victim folder");
    let victim = elsewhere.path().join("victim.txt");
    std::fs::write(&victim, PRECIOUS).expect("victim");

    // Through a running node: the node writes the file, so its process id names the temp file.
    let node = ServeNode::start(farm(), &[]);
    let out = shared.path().join("served.bundle");
    symlink(
        &victim,
        old_temp_name(shared.path(), "served.bundle", node.pid()),
    )
    .expect("plant");
    node.ok(&["bundle", "export", arg(&out)]);
    assert_not_followed(&victim, &out, &TestHome::init("Bob"));
    drop(node);

    // Directly: the CLI writes it; plant a symlink for each process id it may get.
    let home = farm();
    let _ = hedgerow_tests::hedgerow_bin();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .expect("ns_last_pid")
        .trim()
        .parse()
        .expect("a pid");
    let planted = last + 1..=last + 4000;
    for pid in planted.clone() {
        symlink(&victim, old_temp_name(shared.path(), "direct.bundle", pid)).expect("plant");
    }
    let out = shared.path().join("direct.bundle");
    let child = home
        .command()
        .args(["bundle", "export", arg(&out)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn export");
    let pid = child.id();
    let done = child.wait_with_output().expect("export");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        planted.contains(&pid),
        "the export ran as pid {pid}, outside the planted {planted:?}; rerun"
    );
    assert_not_followed(&victim, &out, &TestHome::init("Carol"));
}

const TITLE: &str = "Crimper\x1b[2J\x1b]0;owned\x07 \u{202e}gpj.exe";

/// Asserts `out` shows none of the raw control characters, but their escaped forms.
fn assert_escaped(what: &str, out: &str) {
    for raw in ['\x1b', '\x07', '\u{202e}', '\r'] {
        assert!(!out.contains(raw), "{what} printed a raw {raw:?}: {out:?}");
    }
    assert!(out.contains("\\u{1b}[2J"), "{what}: {out:?}");
    assert!(out.contains("\\u{202e}gpj.exe"), "{what}: {out:?}");
}

/// A design whose title, summary and step hold terminal escapes and a bidi override comes
/// from another home in a bundle; every human-readable print shows them escaped, JSON exact.
#[test]
fn text_from_peers_cannot_drive_the_terminal() {
    let mallory = TestHome::init("Mallory");
    mallory.ok(&["commons", "create", &format!("Commons {TITLE}")]);
    let design = id(&mallory.json(&[
        "design",
        "new",
        TITLE,
        "--set",
        "summary=first line\nsecond line\r\x1b[1Ahidden",
        "--step",
        &format!("Weld {TITLE}"),
    ]));
    let stick = tempfile::tempdir().expect("stick");
    let bundle = stick.path().join("mallory.bundle");
    mallory.ok(&["bundle", "export", arg(&bundle)]);

    let alice = TestHome::init("Alice");
    alice.ok(&["bundle", "import", arg(&bundle), "--all-commons"]);

    let list = alice.ok(&["design", "list"]);
    assert_escaped("design list", &list);
    // The column header, then one design on one line.
    assert_eq!(list.lines().count(), 2, "one design, one line: {list:?}");
    let show = alice.ok(&["design", "show", &design]);
    assert_escaped("design show", &show);
    assert!(
        show.contains("first line\n") && show.contains("second line\\u{d}\\u{1b}[1Ahidden"),
        "prose keeps its newlines, escapes the rest: {show:?}"
    );
    assert_escaped("commons list", &alice.ok(&["commons", "list"]));
    assert_escaped(
        "design blame",
        &alice.ok(&["design", "blame", &design, "steps.1"]),
    );

    // JSON stays exact: serde_json escapes controls itself.
    let listed = alice.json(&["design", "list"]);
    assert_eq!(listed[0]["title"], TITLE);
    let raw = String::from_utf8(alice.run(&["design", "list", "--json"]).stdout).expect("utf-8");
    assert!(!raw.contains('\x1b'), "{raw:?}");
}

/// `init` refuses a folder with files that is not a home, and changes nothing in it.
#[test]
fn init_leaves_a_non_empty_folder_alone() {
    let dir = tempfile::tempdir().expect("folder");
    std::fs::write(dir.path().join("notes.txt"), b"my notes\n").expect("write");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = std::process::Command::new(hedgerow_tests::hedgerow_bin())
        .env_remove("HEDGEROW_HOME")
        .arg("--home")
        .arg(dir.path())
        .args(["init", "--name", "Alice"])
        .stdin(Stdio::null())
        .output()
        .expect("run init");
    assert!(
        !out.status.success(),
        "init into a non-empty folder succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("not empty") && stderr.contains("--home"),
        "{stderr}"
    );
    let mode = std::fs::metadata(dir.path())
        .expect("folder")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o755, "init changed the folder's mode");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "init added files");
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).expect("notes"),
        b"my notes\n"
    );

    // An empty folder still becomes a home.
    let empty = tempfile::tempdir().expect("empty folder");
    let out = std::process::Command::new(hedgerow_tests::hedgerow_bin())
        .env_remove("HEDGEROW_HOME")
        .arg("--home")
        .arg(empty.path())
        .args(["init", "--name", "Alice"])
        .output()
        .expect("run init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
