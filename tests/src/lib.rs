//! Test harness for Hedgerow's integration tests: runs the real `hedgerow`
//! binary against throwaway homes and parses its JSON output.

pub mod field;
pub mod net;
pub mod powercut_fs;
pub mod rng;
pub mod skip;
pub mod web;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Path of the `hedgerow` binary, built (once per test process) from the current sources.
///
/// `cargo test` builds the binary only in its test form, so the harness asks
/// cargo for the real one; when it is already up to date this is a no-op.
pub fn hedgerow_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Test executables live in target/<profile>/deps; the binary one level up.
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile> directory");
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "--quiet", "-p", "hedgerow-cli"]);
            // `cargo test` gives the test process its package's variables; build scripts
            // (ring's, cc's) rerun when these change, so passing them on would rebuild
            // half the tree here and again at the next `cargo test`.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                let per_package = name.starts_with("CARGO_PKG_")
                    || name.starts_with("CARGO_BIN_")
                    || name.starts_with("CARGO_CFG_")
                    || [
                        "CARGO_MANIFEST_DIR",
                        "CARGO_MANIFEST_PATH",
                        "CARGO_MANIFEST_LINKS",
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "OUT_DIR",
                    ]
                    .contains(&name.as_ref());
                if per_package {
                    build.env_remove(name.as_ref());
                }
            }
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "building hedgerow failed");
            profile_dir.join("hedgerow")
        })
        .clone()
}

/// A throwaway node home, removed when dropped.
pub struct TestHome {
    dir: tempfile::TempDir,
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHome {
    /// An empty directory (no `init` yet).
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("hedgerow-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// A home initialised for `name`.
    pub fn init(name: &str) -> Self {
        let home = Self::new();
        home.ok(&["init", "--name", name]);
        home
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `hedgerow --home HOME` command, for tests that need to tweak it.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(hedgerow_bin());
        cmd.arg("--home").arg(self.path());
        cmd.env_remove("HEDGEROW_HOME");
        cmd
    }

    /// Runs `hedgerow --home HOME args...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run hedgerow")
    }

    /// Runs with `stdin` as standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hedgerow");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        child.wait_with_output().expect("wait hedgerow")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hedgerow {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs with `--json` appended and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("hedgerow {args:?} printed invalid JSON ({e}): {out}"))
    }

    /// Runs and asserts failure with a one-line error; returns that line.
    pub fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "hedgerow {args:?} should have failed but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(!stderr.is_empty(), "hedgerow {args:?} failed silently");
        stderr
    }

    /// Copies every file of the home, for "the store is unchanged" comparisons.
    pub fn snapshot_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        collect(self.path(), self.path(), &mut out);
        out.sort();
        out
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.strip_prefix(root).unwrap_or(&path).to_path_buf(),
                bytes,
            ));
        }
    }
}

/// The `id` field of a JSON reply.
pub fn id(value: &Value) -> String {
    value["id"].as_str().expect("reply has an id").to_string()
}
