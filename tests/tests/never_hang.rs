//! Commands that never hang or lie: a sync to a peer that does not answer ends with a one-line
//! error and leaves the store to other commands meanwhile; a second `serve` on a used port
//! refuses; `--json` errors are JSON; the summary/export pair carries only the commons the
//! summary's node wants; `serve`'s log is plain text with the address others dial.
//!
//! ```text
//!   B ──sync──▶ closed port          : fails at once, names the address
//!   B ──sync──▶ A's port, C's /p2p/  : fails at once, names the peer that is there
//!   B ──sync──▶ silent TCP listener  : `design list` on B works meanwhile; fails after
//!                                      --connect-timeout (or --deadline), direct and via serve
//!   A serve :P  ◀── D serve :P        : D refuses, naming P
//! ```

use hedgerow_tests::net::{wait_for, wait_until, ServeNode};
use hedgerow_tests::{hedgerow_bin, id, TestHome};
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest any command here may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(60);

/// A loopback port nothing listens on (bound, then closed again).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// A TCP listener that accepts connections and never says a word; counts what it accepted
/// and keeps the sockets open.
struct SilentPeer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl SilentPeer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut open = Vec::new();
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                // Kept, so the dialer sees an open connection that never answers.
                open.push(stream);
            }
        });
        Self { port, accepted }
    }

    fn addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Starts `hedgerow --home HOME args...` in the background, output captured.
fn spawn(home: &TestHome, args: &[&str]) -> Child {
    home.command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hedgerow")
}

/// Waits (bounded) for a child; kills it and fails the test if it hangs.
fn finish(mut child: Child, what: &str) -> Output {
    let exited = wait_until(HUNG, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        panic!(
            "{what} still ran after {} s: {}",
            HUNG.as_secs(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.wait_with_output().expect("output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Asserts a `--json` failure: non-zero exit, `{error, kind}` on stdout; returns the object.
fn json_failure(out: &Output, kind: &str) -> Value {
    assert!(!out.status.success(), "should have failed");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json error is not JSON on stdout ({e}): stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    });
    assert_eq!(value["kind"], kind, "{value}");
    assert!(
        value["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{value}"
    );
    value
}

fn peer_id(home: &TestHome) -> String {
    home.json(&["whoami"])["peer_id"]
        .as_str()
        .expect("peer_id")
        .to_string()
}

#[test]
fn a_sync_to_a_closed_port_fails_at_once_naming_the_address() {
    let b = TestHome::init("Bea");
    let addr = format!("/ip4/127.0.0.1/tcp/{}", closed_port());
    let line = b.fail(&["sync", "--peer", &addr]);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains(&addr), "{line}");
    assert!(line.contains("connection refused"), "{line}");
    assert!(!line.contains("os error"), "{line}");

    let out = b.run(&["sync", "--peer", &addr, "--json"]);
    let value = json_failure(&out, "peer-unreachable");
    assert!(value["error"].as_str().is_some_and(|e| e.contains(&addr)));
}

#[test]
fn a_sync_to_the_wrong_peer_id_names_the_peer_that_answered() {
    let a = ServeNode::start(TestHome::init("Ada"), &[]);
    let c = TestHome::init("Cas");
    let b = TestHome::init("Bea");
    let wrong = a.multiaddr().replace(a.peer_id(), &peer_id(&c));
    let child = spawn(&b, &["sync", "--peer", &wrong, "--connect-timeout", "30"]);
    let out = finish(child, "sync to a wrong peer id");
    assert!(!out.status.success());
    let line = stderr(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains(&wrong), "{line}");
    assert!(line.contains(a.peer_id()), "{line}");
}

/// The farm's cron job against a hub whose port accepts TCP and never speaks (a hung process,
/// a captive portal): the store stays free for other commands, and the sync ends after its
/// connect timeout, or its deadline if that is shorter.
#[test]
fn a_sync_to_a_silent_peer_leaves_the_store_free_and_ends() {
    let b = TestHome::init("Bea");
    b.json(&["commons", "create", "Farm tools"]);
    b.json(&["design", "new", "Roller crimper"]);
    let silent = SilentPeer::start();

    let child = spawn(
        &b,
        &["sync", "--peer", &silent.addr(), "--connect-timeout", "5"],
    );
    assert!(
        wait_until(HUNG, || silent.accepted() > 0),
        "the sync never dialed"
    );
    // While the sync waits on the network, the same home answers (no store lock held).
    let listed = b.json(&["design", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let out = finish(child, "sync to a silent peer");
    assert!(!out.status.success());
    let line = stderr(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains(&silent.addr()), "{line}");
    assert!(line.contains("no answer within 5 s"), "{line}");

    // --deadline bounds the whole sync, the connection included.
    let out = finish(
        spawn(
            &b,
            &[
                "sync",
                "--peer",
                &silent.addr(),
                "--deadline",
                "1",
                "--json",
            ],
        ),
        "sync with a deadline",
    );
    let value = json_failure(&out, "peer-unreachable");
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 1 s")),
        "{value}"
    );
}

/// The same through a running `serve`: its sync command ends too, and the node goes on.
#[test]
fn a_sync_through_serve_to_a_peer_that_does_not_answer_ends() {
    let a = ServeNode::start(TestHome::init("Ada"), &[]);
    let silent = SilentPeer::start();
    let out = finish(
        spawn(
            &a,
            &["sync", "--peer", &silent.addr(), "--connect-timeout", "2"],
        ),
        "sync through serve to a silent peer",
    );
    assert!(!out.status.success());
    let line = stderr(&out);
    assert!(line.contains("no answer within 2 s"), "{line}");
    let closed = format!("/ip4/127.0.0.1/tcp/{}", closed_port());
    let out = finish(
        spawn(&a, &["sync", "--peer", &closed, "--json"]),
        "sync through serve to a closed port",
    );
    json_failure(&out, "peer-unreachable");
    assert!(a.status()["peer_id"].is_string(), "the node stopped");
}

#[test]
fn a_second_serve_on_a_port_in_use_refuses_naming_the_port() {
    let a = ServeNode::start(TestHome::init("Ada"), &[]);
    let port = a
        .multiaddr()
        .split('/')
        .nth(4)
        .expect("port in the address")
        .to_string();
    let d = TestHome::init("Dan");
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let child = spawn(&d, &["serve", "--no-mdns", "--listen", &listen]);
    let out = finish(child, "a second serve on a used port");
    assert!(!out.status.success(), "the second serve started");
    let text = stderr(&out);
    assert!(text.contains(&format!("port {port}")), "{text}");
    // The first one still answers on it.
    let b = TestHome::init("Bea");
    b.ok(&["sync", "--peer", &a.multiaddr()]);
}

/// `serve` under a service manager: its log is plain text, with no warning for the peers it
/// was never given, and names the address others dial, `/p2p/` included.
#[test]
fn serve_logs_plain_text_and_its_full_address() {
    let home = TestHome::init("Ada");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut child = Command::new(hedgerow_bin())
        .arg("--home")
        .arg(home.path())
        .args(["serve", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .env_remove("HEDGEROW_HOME")
        .env_remove("HEDGEROW_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("spawn serve");
    let read = || {
        let mut text = String::new();
        let _ = log.reopen().map(|mut f| f.read_to_string(&mut text));
        text
    };
    let listening = wait_for(HUNG, || {
        read()
            .lines()
            .find(|l| l.starts_with("listening on "))
            .map(str::to_string)
    });
    // A command through the node, so it has run past its start before the log is read.
    let status = home.json(&["status"]);
    // SAFETY: signalling our own child, which has not been waited for yet.
    unsafe {
        libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGTERM);
    }
    let _ = wait_until(HUNG, || matches!(child.try_wait(), Ok(Some(_))));
    let _ = child.kill();
    let _ = child.wait();
    let text = read();
    let listening = listening.unwrap_or_else(|| panic!("no listening line: {text}"));
    let peer = status["peer_id"].as_str().expect("peer_id");
    assert!(
        listening.starts_with("listening on /ip4/127.0.0.1/tcp/")
            && listening.ends_with(&format!("/p2p/{peer}")),
        "{listening}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text:?}"
    );
    assert!(
        !text.contains("WARN"),
        "a warning with nothing wrong: {text}"
    );
}

#[test]
fn an_empty_hedgerow_home_does_not_break_home() {
    let home = TestHome::init("Ada");
    let out = home
        .command()
        .env("HEDGEROW_HOME", "")
        .args(["whoami", "--json"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let value: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value["name"], "Ada");
}

/// With `--json`, a failure is `{"error": ..., "kind": ...}` on standard output, offline, through
/// `serve`, and for a command line clap refuses.
#[test]
fn json_errors_are_json_on_stdout() {
    let ada = TestHome::init("Ada");
    ada.json(&["commons", "create", "Farm tools"]);
    let out = ada.run(&["design", "show", "zzzz9999", "--json"]);
    let value = json_failure(&out, "no-such-document");
    assert_eq!(value["what"], "design", "{value}");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));

    let out = ada.run(&["design", "list", "--bogus", "--json"]);
    json_failure(&out, "usage");

    let ada = ServeNode::start(ada, &[]);
    let out = ada.run(&["design", "show", "zzzz9999", "--json"]);
    json_failure(&out, "no-such-document");
    // Without --json the error stays a line on standard error.
    let out = ada.run(&["design", "show", "zzzz9999"]);
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
}

#[test]
fn bundle_summary_does_not_replace_a_bundle_without_force() {
    let ada = TestHome::init("Ada");
    ada.json(&["commons", "create", "Farm tools"]);
    id(&ada.json(&["design", "new", "Roller crimper"]));
    let dir = tempfile::tempdir().expect("dir");
    let bundle = dir.path().join("back.bundle");
    let bundle_text = bundle.to_str().expect("utf-8");
    ada.ok(&["bundle", "export", bundle_text]);
    let before = std::fs::read(&bundle).expect("bundle");

    let line = ada.fail(&["bundle", "summary", bundle_text]);
    assert!(
        line.contains("is a bundle") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(std::fs::read(&bundle).expect("bundle"), before);
    let out = ada.run(&["bundle", "summary", bundle_text, "--json"]);
    json_failure(&out, "would-overwrite");

    // Any other file is kept as well; an older summary is simply replaced.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "build day notes").expect("write");
    ada.fail(&["bundle", "summary", notes.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_to_string(&notes).expect("notes"),
        "build day notes"
    );
    let summary = dir.path().join("farm.summary");
    let summary_text = summary.to_str().expect("utf-8");
    ada.ok(&["bundle", "summary", summary_text]);
    ada.ok(&["bundle", "summary", summary_text]);

    ada.ok(&["bundle", "summary", bundle_text, "--force"]);
    assert_ne!(std::fs::read(&bundle).expect("file"), before);
}

/// A farm that joined one commons of a hub holding two: the join is listed as pending until
/// it arrives, the farm's summary names it, and the hub's export for that summary carries it
/// alone, so the farm is never handed a commons it did not ask for.
///
/// ```text
///   hub: "Farm tools" (T), "Seed library" (S)      farm: commons join T (pending)
///   farm ── summary ──▶ hub ── export --for ──▶ farm: T imported, S not on the stick
/// ```
#[test]
fn a_pending_join_is_listed_and_only_wanted_commons_are_exported() {
    let hub = TestHome::init("Hub");
    let tools = id(&hub.json(&["commons", "create", "Farm tools"]));
    let seeds = id(&hub.json(&["commons", "create", "Seed library"]));
    hub.json(&["design", "new", "Roller crimper", "--commons", &tools]);
    hub.json(&["design", "new", "Seed cleaner", "--commons", &seeds]);

    let farm = TestHome::init("Farm");
    let joined = farm.json(&["commons", "join", &tools]);
    assert_eq!(joined["pending"], true, "{joined}");
    assert_eq!(joined["already_held"], false, "{joined}");
    assert!(joined["asked_peers"].is_null(), "{joined}");
    let listed = farm.json(&["commons", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], tools.as_str(), "{listed}");
    assert_eq!(listed[0]["pending"], true, "{listed}");
    let human = farm.ok(&["commons", "list"]);
    assert!(
        human.contains(&tools) && human.contains("pending"),
        "{human}"
    );
    let shown = farm.json(&["commons", "show", &tools]);
    assert_eq!(shown["pending"], true, "{shown}");

    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let summary = farm.json(&["bundle", "summary", &path("farm.summary")]);
    assert_eq!(summary["pending"][0], tools.as_str(), "{summary}");
    let exported = hub.json(&[
        "bundle",
        "export",
        &path("back.bundle"),
        "--for",
        &path("farm.summary"),
    ]);
    assert_eq!(exported["commons"], 1, "{exported}");
    let imported = farm.json(&["bundle", "import", &path("back.bundle")]);
    assert_eq!(imported["commons_joined"][0], tools.as_str(), "{imported}");
    assert_eq!(imported["skipped"], serde_json::json!([]), "{imported}");
    let listed = farm.json(&["commons", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["pending"], false, "{listed}");
    assert_eq!(listed[0]["documents"]["design"], 1, "{listed}");

    // Through a running node the answer has the same shape.
    let farm = ServeNode::start(farm, &[]);
    let again = farm.json(&["commons", "join", &seeds]);
    let keys = |v: &Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(&again), keys(&joined), "{again}");
    assert_eq!(again["pending"], true, "{again}");
    assert_eq!(again["asked_peers"], 0, "{again}");
    let status = farm.ok(&["status"]);
    assert!(
        status
            .lines()
            .any(|l| l.contains(&seeds) && l.contains("pending")),
        "{status}"
    );
    assert!(
        status.contains(&format!("/p2p/{}", farm.peer_id())),
        "{status}"
    );
}
