//! Configuration the README promises, through the real binary on loopback: bootstrap peers
//! from the home's `config.json`, `HEDGEROW_HOME`, and `serve` over QUIC alone.
//!
//! ```text
//!   A (serve) <-- dialled from config.json -- B (serve, no --peer)
//!   A (serve, QUIC only) <== QUIC ==> B (serve, QUIC only)    C --sync over QUIC--> A
//! ```
//!
//! The default port (4717 on every interface) is never bound here: `cli/src/network.rs`
//! checks it as parsed.

use hedgerow_tests::net::{wait_for, ServeNode};
use hedgerow_tests::{hedgerow_bin, id, TestHome};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Longest wait for a node to start or for two nodes to agree.
const WAIT: Duration = Duration::from_secs(20);

/// A home holding a commons and one design: (home, commons id, design id).
fn founder(name: &str) -> (TestHome, String, String) {
    let home = TestHome::init(name);
    let commons = id(&home.json(&["commons", "create", "Open Tools"]));
    let design = id(&home.json(&["design", "new", "Roller crimper"]));
    (home, commons, design)
}

/// Waits until `home` shows `design` named `name`.
fn wait_for_design(home: &TestHome, design: &str, name: &str) -> bool {
    wait_for(WAIT, || {
        let out = home.run(&["design", "show", design, "--json"]);
        let shown: Value = serde_json::from_slice(&out.stdout).ok()?;
        (shown["name"] == name).then_some(())
    })
    .is_some()
}

#[test]
fn serve_dials_the_bootstrap_peers_of_config_json() {
    let (a, commons, design) = founder("Ada");
    let a = ServeNode::start(a, &[]);
    let b = TestHome::init("Ben");
    b.json(&["commons", "join", &commons]);
    let config = serde_json::json!({ "peers": [a.multiaddr()] });
    std::fs::write(b.path().join("config.json"), config.to_string()).expect("config.json");

    // No --peer: only config.json names A.
    let b = ServeNode::start(b, &[]);
    assert!(
        b.wait_connected_to(a.peer_id(), WAIT),
        "B never dialled the peer in its config.json: {}",
        b.status()
    );
    assert!(
        wait_for_design(&b, &design, "Roller crimper"),
        "B never synced from its bootstrap peer: {}",
        b.status()
    );
    b.ok(&["verify"]);
}

/// `hedgerow` with `HEDGEROW_HOME` set (and no `--home` unless in `args`).
fn with_env_home(env_home: &Path, args: &[&str]) -> Output {
    Command::new(hedgerow_bin())
        .env("HEDGEROW_HOME", env_home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hedgerow")
}

fn author_in(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whoami: Value = serde_json::from_slice(&out.stdout).expect("whoami --json");
    whoami["author"].as_str().expect("author").to_string()
}

#[test]
fn hedgerow_home_is_the_home_unless_home_is_given() {
    let env_home = TestHome::new();
    let out = with_env_home(env_home.path(), &["init", "--name", "Env Ada"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env_home.path().join("device.key").exists(),
        "init did not write its key into HEDGEROW_HOME"
    );
    let env_author = author_in(&with_env_home(env_home.path(), &["whoami", "--json"]));
    // The same home, opened with --home: the same author.
    assert_eq!(env_author, env_home.json(&["whoami"])["author"]);

    // --home wins over HEDGEROW_HOME.
    let other = TestHome::init("Flag Ben");
    let other_author = other.json(&["whoami"])["author"].clone();
    let home_arg = other.path().to_str().expect("UTF-8 temp path");
    let flag_author = author_in(&with_env_home(
        env_home.path(),
        &["--home", home_arg, "whoami", "--json"],
    ));
    assert_eq!(flag_author, other_author);
    assert_ne!(flag_author, env_author);
    // And a command writes to the --home, not HEDGEROW_HOME.
    let out = with_env_home(
        env_home.path(),
        &["--home", home_arg, "commons", "create", "Flag commons"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        other.json(&["commons", "list"]).as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        env_home.json(&["commons", "list"]).as_array().map(Vec::len),
        Some(0)
    );
}

/// `hedgerow serve` listening on QUIC over IPv4 loopback only, mDNS off; killed on drop.
struct QuicNode {
    home: TestHome,
    child: Child,
    addr: String,
}

impl QuicNode {
    fn start(home: TestHome, peers: &[&QuicNode]) -> Self {
        let mut cmd = home.command();
        cmd.args([
            "serve",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/udp/0/quic-v1",
        ]);
        for peer in peers {
            cmd.args(["--peer", &peer.addr]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hedgerow serve");
        let mut node = Self {
            home,
            child,
            addr: String::new(),
        };
        let status = wait_for(WAIT, || {
            if let Ok(Some(exit)) = node.child.try_wait() {
                panic!("hedgerow serve over QUIC exited with {exit}");
            }
            let out = node.home.run(&["status", "--json"]);
            let status: Value = serde_json::from_slice(&out.stdout).ok()?;
            let listening = status["listen"].as_array().is_some_and(|l| !l.is_empty());
            listening.then_some(status)
        })
        .expect("serve over QUIC did not come up");
        let listen = listen_addrs(&status);
        assert_eq!(listen.len(), 1, "{status}");
        assert!(
            listen[0].starts_with("/ip4/127.0.0.1/udp/") && listen[0].ends_with("/quic-v1"),
            "{status}"
        );
        node.addr = format!(
            "{}/p2p/{}",
            listen[0],
            status["peer_id"].as_str().expect("peer id")
        );
        node
    }

    fn status(&self) -> Value {
        self.home.json(&["status"])
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for QuicNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen_addrs(status: &Value) -> Vec<String> {
    status["listen"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// TCP sockets (IPv4 and IPv6) the process `pid` holds open, from /proc.
fn tcp_sockets_of(pid: u32) -> usize {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(9) {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the node's open files");
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| inodes.contains(target.to_string_lossy().as_ref()))
        .count()
}

#[test]
fn serve_syncs_over_quic_alone() {
    let (a, commons, design) = founder("Ada");
    let a = QuicNode::start(a, &[]);
    let b = TestHome::init("Ben");
    b.json(&["commons", "join", &commons]);
    let b = QuicNode::start(b, &[&a]);

    assert!(
        wait_for_design(&b.home, &design, "Roller crimper"),
        "B never synced over QUIC: {}",
        b.status()
    );
    // A one-shot sync from a third home, dialling A's QUIC address.
    let c = TestHome::init("Cleo");
    c.json(&["commons", "join", &commons]);
    let out = c.run(&["sync", "--peer", &a.addr, "--linger", "1", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("sync report");
    assert!(out.status.success(), "{report}");
    assert_eq!(report["complete"], true, "{report}");
    assert!(report["docs_received"].as_u64() >= Some(1), "{report}");
    assert_eq!(
        c.json(&["design", "show", &design])["name"],
        "Roller crimper"
    );

    for (node, other) in [(&a, &b), (&b, &a)] {
        let status = node.status();
        let peer = other.addr.rsplit('/').next().expect("peer id");
        let link = status["connected"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["peer"] == peer)
            .unwrap_or_else(|| panic!("not connected to {peer}: {status}"));
        let addr = link["addr"].as_str().expect("addr");
        assert!(
            addr.contains("/udp/") && addr.contains("/quic-v1"),
            "{status}"
        );
        assert!(
            listen_addrs(&status).iter().all(|l| !l.contains("/tcp/")),
            "{status}"
        );
        assert_eq!(
            tcp_sockets_of(node.pid()),
            0,
            "a QUIC-only node opened TCP sockets"
        );
    }
    b.home.ok(&["verify"]);
    c.ok(&["verify"]);
}

/// `config.json`'s `listen` is where `serve` listens when `--listen` is not given.
#[test]
fn serve_listens_where_config_json_says() {
    let (a, _, _) = founder("Ada");
    // A free loopback port, released for serve to take.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let wanted = format!("/ip4/127.0.0.1/tcp/{port}");
    let config = serde_json::json!({ "listen": [wanted] });
    std::fs::write(a.path().join("config.json"), config.to_string()).expect("config.json");
    let mut serve = Command::new(hedgerow_bin())
        .arg("--home")
        .arg(a.path())
        .env_remove("HEDGEROW_HOME")
        .args(["serve", "--no-mdns"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let listening = wait_for(WAIT, || {
        let status: Value = serde_json::from_slice(&a.run(&["status", "--json"]).stdout).ok()?;
        let addrs: Vec<String> = status["listen"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        (!addrs.is_empty()).then_some(addrs)
    });
    let _ = serve.kill();
    let _ = serve.wait();
    let addrs = listening.expect("serve with config.json listen never came up");
    assert_eq!(
        addrs,
        [wanted],
        "serve listened elsewhere than config.json says"
    );
}
