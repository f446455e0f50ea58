//! Durability under a power cut: every write the CLI or `serve` acknowledged is
//! still there after the machine loses power at a random moment.
//!
//! ```text
//!   home on the power-cut FUSE filesystem (tests/src/powercut_fs.rs)
//!     burst: design new / design edit, directly or through `serve`,
//!            bundle import and `sync` from a peer node on loopback
//!     at a random moment: kill -9 every hedgerow process on the mount,
//!            drop everything not fsynced, remount
//!     assert: the store opens, `verify` is clean, every acknowledged
//!            design, change, imported and synced document is present
//! ```
//!
//! Needs root and /dev/fuse (Debian's `fuse3` for `fusermount3` when not root);
//! prints SKIP elsewhere, and fails instead when `HEDGEROW_REQUIRE_NETNS=1` (CI).
//! `HEDGEROW_POWERCUT_CUTS` sets the number of cuts (default 8) and
//! `HEDGEROW_POWERCUT_SEED` the random seed (printed on every run).

use hedgerow_tests::net::{wait_for, ServeNode};
use hedgerow_tests::powercut_fs::PowercutFs;
use hedgerow_tests::rng::Rng;
use hedgerow_tests::{hedgerow_bin, TestHome};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Cuts in one run unless `HEDGEROW_POWERCUT_CUTS` says otherwise.
const DEFAULT_CUTS: usize = 8;

fn hedgerow(home: &Path) -> Command {
    let mut cmd = Command::new(hedgerow_bin());
    cmd.arg("--home").arg(home).env_remove("HEDGEROW_HOME");
    cmd
}

fn run(home: &Path, args: &[&str]) -> Output {
    hedgerow(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hedgerow")
}

fn json_of(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: bad JSON ({e})"))
}

/// One step of a burst.
#[derive(Clone, Debug)]
enum Op {
    /// A new design (name, commons).
    New(String, String),
    /// Edit the n-th design created so far (modulo their number).
    Edit(usize, String),
    /// Import this bundle; the documents listed must be present once it succeeded.
    Import(PathBuf, Vec<String>),
    /// Sync with the peer; the documents listed must be present once it succeeded.
    Sync(Vec<String>),
}

/// What a command acknowledged (exited 0 and printed).
#[derive(Clone, Debug)]
enum Acked {
    Created(String),
    Edited(String, String),
    Documents(Vec<String>),
}

/// The process a burst is waiting for, so a cut can kill it.
#[derive(Default)]
struct Running {
    stopped: bool,
    pid: Option<i32>,
}

fn kill9(pid: i32) {
    // SAFETY: signalling a child of this process that has not been reaped yet.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Runs `ops` one after another until a cut stops it; returns what was acknowledged.
fn burst(
    home: PathBuf,
    ops: Vec<Op>,
    designs: Vec<String>,
    running: Arc<Mutex<Running>>,
) -> Vec<Acked> {
    let mut designs = designs;
    let mut acked = Vec::new();
    for op in ops {
        let args: Vec<String> = match &op {
            Op::New(name, commons) => ["design", "new", name, "--commons", commons, "--json"]
                .map(String::from)
                .to_vec(),
            Op::Edit(n, step) => {
                if designs.is_empty() {
                    continue;
                }
                let id = designs[n % designs.len()].clone();
                ["design", "edit", &id, "--step", step, "--json"]
                    .map(String::from)
                    .to_vec()
            }
            Op::Import(file, _) => vec![
                "bundle".into(),
                "import".into(),
                file.display().to_string(),
                "--json".into(),
            ],
            Op::Sync(_) => unreachable!("sync ops carry their peer in `burst_sync`"),
        };
        let child = {
            let mut state = running.lock().expect("running lock");
            if state.stopped {
                break;
            }
            let child = hedgerow(&home)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hedgerow");
            state.pid = i32::try_from(child.id()).ok();
            child
        };
        let out = child.wait_with_output().expect("wait hedgerow");
        running.lock().expect("running lock").pid = None;
        if !out.status.success() {
            // Killed by the cut (or refused because of it): not acknowledged.
            continue;
        }
        let value: Option<Value> = serde_json::from_slice(&out.stdout).ok();
        match (&op, value) {
            (Op::New(..), Some(v)) => {
                let id = v["id"].as_str().expect("new prints an id").to_string();
                designs.push(id.clone());
                acked.push(Acked::Created(id));
            }
            (Op::Edit(..), Some(v)) => {
                if let (Some(id), Some(change)) = (v["id"].as_str(), v["change"].as_str()) {
                    acked.push(Acked::Edited(id.to_string(), change.to_string()));
                }
            }
            (Op::Import(_, docs), Some(report)) => {
                // The peer's commons was joined before its first bundle: never skipped.
                assert_eq!(
                    report["skipped"],
                    serde_json::json!([]),
                    "import skipped a joined commons: {report}"
                );
                acked.push(Acked::Documents(docs.clone()));
            }
            _ => {}
        }
    }
    acked
}

/// The node the home syncs from and whose bundles it imports, off the power-cut mount.
struct Peer {
    node: ServeNode,
    designs: Vec<String>,
    bundles: tempfile::TempDir,
    commons: String,
}

impl Peer {
    fn start() -> Self {
        let home = TestHome::init("Bea");
        let commons = home
            .ok(&["commons", "create", "Peer tools"])
            .trim()
            .to_string();
        Self {
            node: ServeNode::start(home, &[]),
            designs: Vec::new(),
            bundles: tempfile::tempdir().expect("bundle dir"),
            commons,
        }
    }

    /// Adds a design and returns an import of everything the peer now holds.
    fn next_import(&mut self) -> Op {
        let n = self.designs.len();
        let id = self
            .node
            .ok(&[
                "design",
                "new",
                &format!("Peer design {n}"),
                "--step",
                "weld",
            ])
            .trim()
            .to_string();
        self.designs.push(id);
        let file = self.bundles.path().join(format!("{n}.bundle"));
        self.node
            .ok(&["bundle", "export", file.to_str().expect("utf-8 path")]);
        Op::Import(file, self.designs.clone())
    }

    /// Adds a design and returns a sync that must bring everything the peer holds.
    fn next_sync(&mut self) -> Op {
        let n = self.designs.len();
        let id = self
            .node
            .ok(&["design", "new", &format!("Peer design {n}")])
            .trim()
            .to_string();
        self.designs.push(id);
        Op::Sync(self.designs.clone())
    }
}

/// Whether this machine can mount FUSE: `None` after reporting the skip, a panic when required.
fn mount_or_skip(test: &str, at: &Path) -> Option<PowercutFs> {
    let why = if !Path::new("/dev/fuse").exists() {
        "no /dev/fuse".to_string()
    } else {
        match PowercutFs::mount(at) {
            Ok(fs) => return Some(fs),
            Err(e) => format!("cannot mount FUSE ({e}); run as root with fuse3 installed"),
        }
    };
    hedgerow_tests::skip::skip(test, &why);
    None
}

fn start_serve(home: &Path) -> std::process::Child {
    let _ = std::fs::remove_file(home.join("control.sock"));
    let mut child = hedgerow(home)
        .args(["serve", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let up = wait_for(Duration::from_secs(30), || {
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("serve on the power-cut mount exited with {exit}");
        }
        if !home.join("control.sock").exists() {
            return None;
        }
        run(home, &["status", "--json"])
            .status
            .success()
            .then_some(())
    });
    assert!(up.is_some(), "serve on the power-cut mount did not come up");
    child
}

#[test]
fn acknowledged_writes_survive_power_cuts() {
    let test = "acknowledged_writes_survive_power_cuts";
    let mount = tempfile::Builder::new()
        .prefix("hedgerow-powercut-")
        .tempdir()
        .expect("mount dir");
    let Some(mut fs) = mount_or_skip(test, mount.path()) else {
        return;
    };
    let cuts: usize = std::env::var("HEDGEROW_POWERCUT_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CUTS);
    let seed: u64 = std::env::var("HEDGEROW_POWERCUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: {cuts} cuts, HEDGEROW_POWERCUT_SEED={seed}");
    let mut rng = Rng(seed);

    let home = fs.path().join("home");
    let out = run(&home, &["init", "--name", "Ada"]);
    assert!(out.status.success(), "init on the mount failed: {out:?}");
    let commons = run(&home, &["commons", "create", "Farm Hack tools"]);
    assert!(commons.status.success(), "commons create: {commons:?}");
    let own_commons = String::from_utf8_lossy(&commons.stdout).trim().to_string();

    let mut peer = Peer::start();
    let joined = run(&home, &["commons", "join", &peer.commons]);
    assert!(joined.status.success(), "join: {joined:?}");

    // What must survive: designs created, changes made, documents imported or synced.
    let mut designs: Vec<String> = Vec::new();
    let mut changes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut documents: BTreeSet<String> = BTreeSet::new();
    let mut acked_total = 0usize;
    let mut serve_rounds = 0usize;

    for cut in 0..cuts {
        let through_serve = rng.below(2) == 0;
        let mut ops = Vec::new();
        for i in 0..(4 + rng.below(6)) {
            ops.push(match rng.below(10) {
                0..=2 => Op::New(format!("Design {cut}.{i}"), own_commons.clone()),
                3 if !through_serve => peer.next_sync(),
                3 | 4 => peer.next_import(),
                _ => Op::Edit(rng.below(1000), format!("step {cut}.{i}")),
            });
        }
        let mut serve = through_serve.then(|| start_serve(&home));
        if serve.is_some() {
            serve_rounds += 1;
        }
        let running = Arc::new(Mutex::new(Running::default()));
        let done = Arc::new(AtomicBool::new(false));
        // Sync ops run in the burst thread too; split them out so each keeps its peer address.
        let addr = peer.node.multiaddr();
        let worker = {
            let (home, running, designs, done) =
                (home.clone(), running.clone(), designs.clone(), done.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut known = designs;
                for op in ops {
                    let got = match op {
                        Op::Sync(docs) => burst_sync(&home, &addr, docs, &running),
                        other => burst(home.clone(), vec![other], known.clone(), running.clone()),
                    };
                    for a in &got {
                        if let Acked::Created(id) = a {
                            known.push(id.clone());
                        }
                    }
                    acked.extend(got);
                    if running.lock().expect("running lock").stopped {
                        break;
                    }
                }
                done.store(true, Ordering::SeqCst);
                acked
            })
        };
        // Cut at a random moment of the burst (or after it ended).
        let delay = Duration::from_millis(rng.below(2500) as u64);
        let _ = wait_for(delay, || done.load(Ordering::SeqCst).then_some(()));
        {
            let mut state = running.lock().expect("running lock");
            state.stopped = true;
            if let Some(pid) = state.pid {
                kill9(pid);
            }
        }
        if let Some(mut child) = serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let acked = worker.join().expect("burst thread");
        acked_total += acked.len();
        for a in acked {
            match a {
                Acked::Created(id) => designs.push(id),
                Acked::Edited(id, change) => {
                    changes.entry(id).or_default().insert(change);
                }
                Acked::Documents(docs) => documents.extend(docs),
            }
        }

        fs.cut().expect("power cut and remount");

        // The store opens and verifies clean.
        let verify = run(&home, &["verify", "--json"]);
        assert!(
            verify.status.success(),
            "cut {cut} (seed {seed}): store does not open or verify after the cut: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        // Every acknowledged document is there.
        let mut present = BTreeSet::new();
        for commons in [&own_commons, &peer.commons] {
            // The peer's commons is held once a sync or import brought it; until then its
            // listing fails, and any document acknowledged from it is reported lost below.
            let out = run(&home, &["design", "list", "--commons", commons, "--json"]);
            if !out.status.success() && commons == &peer.commons {
                continue;
            }
            let listed = json_of(&out, "design list");
            present.extend(
                listed
                    .as_array()
                    .expect("list")
                    .iter()
                    .filter_map(|d| d["id"].as_str().map(str::to_string)),
            );
        }
        for id in designs.iter().chain(&documents) {
            assert!(
                present.contains(id),
                "cut {cut} (seed {seed}): acknowledged document {id} was lost"
            );
        }
        // Every acknowledged change is there.
        for (id, acked) in &changes {
            let history = json_of(
                &run(&home, &["design", "history", id, "--json"]),
                "design history",
            );
            let hashes: BTreeSet<String> = history
                .as_array()
                .expect("history")
                .iter()
                .filter_map(|c| c["hash"].as_str().map(str::to_string))
                .collect();
            let lost: Vec<&String> = acked.difference(&hashes).collect();
            assert!(
                lost.is_empty(),
                "cut {cut} (seed {seed}): acknowledged changes of {id} were lost: {lost:?}"
            );
        }
    }
    let counters = fs.counters();
    eprintln!(
        "{test}: {cuts} cuts ({serve_rounds} through serve), {acked_total} acknowledged writes, \
         all present; {} designs, {} changes, {} documents from the peer; fs saw {} file and {} \
         directory fsyncs, cuts dropped {} bytes of unsynced content and reverted {} directories",
        designs.len(),
        changes.values().map(BTreeSet::len).sum::<usize>(),
        documents.len(),
        counters.fsyncs,
        counters.dir_fsyncs,
        counters.lost_bytes,
        counters.lost_entries
    );
    assert!(acked_total > 0, "no write was acknowledged in {cuts} cuts");
}

/// One `sync --peer` in a burst; acknowledges `docs` when it exits 0 and reports completion.
fn burst_sync(home: &Path, addr: &str, docs: Vec<String>, running: &Mutex<Running>) -> Vec<Acked> {
    let child = {
        let mut state = running.lock().expect("running lock");
        if state.stopped {
            return Vec::new();
        }
        let child = hedgerow(home)
            .args(["sync", "--peer", addr, "--linger", "0", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sync");
        state.pid = i32::try_from(child.id()).ok();
        child
    };
    let out = child.wait_with_output().expect("wait sync");
    running.lock().expect("running lock").pid = None;
    let value: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    let complete = value
        .as_ref()
        .is_some_and(|v| v["complete"] == Value::Bool(true));
    if out.status.success() && complete {
        vec![Acked::Documents(docs)]
    } else {
        Vec::new()
    }
}
