//! Multi-node harness: `hedgerow serve` children on loopback or inside network
//! namespaces, bounded waits, and a `converge()` check over the CLI.
//!
//! Every node listens on 127.0.0.1 with mDNS off unless it runs inside a
//! [`Netns`] the test created. Children are killed and namespaces deleted on
//! drop, also when a test panics.

use crate::TestHome;
use serde_json::Value;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often the wait helpers poll.
const POLL: Duration = Duration::from_millis(150);

/// How long a node may take to open its store, listen and serve its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || check().then_some(())).is_some()
}

/// How to start one `hedgerow serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `--peer` addresses.
    pub peers: Vec<String>,
    /// mDNS on (only allowed inside a namespace).
    pub mdns: bool,
    /// The IPv4 address to listen on.
    pub listen_ip: String,
    /// Run inside this network namespace.
    pub netns: Option<String>,
    /// `--sync-interval` seconds, when not the default.
    pub sync_interval: Option<u64>,
    /// Extra environment variables (test-only switches such as the lying blob server).
    pub env: Vec<(String, String)>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            peers: Vec::new(),
            mdns: false,
            listen_ip: "127.0.0.1".into(),
            netns: None,
            sync_interval: None,
            env: Vec::new(),
        }
    }
}

impl ServeOptions {
    /// Loopback, mDNS off, keeping connected to `peers`.
    pub fn peers(peers: &[&ServeNode]) -> Self {
        Self {
            peers: peers.iter().map(|p| p.multiaddr()).collect(),
            ..Self::default()
        }
    }
}

/// A home with a running `hedgerow serve`, killed when dropped.
pub struct ServeNode {
    /// The node's home; CLI commands go through the control socket while it runs.
    pub home: TestHome,
    options: ServeOptions,
    /// TCP port, fixed after the first start so restarts keep the address peers know.
    port: u16,
    child: Option<Child>,
    peer_id: String,
    logs: tempfile::TempDir,
    starts: usize,
}

impl std::ops::Deref for ServeNode {
    type Target = TestHome;
    fn deref(&self) -> &TestHome {
        &self.home
    }
}

impl ServeNode {
    /// Starts `hedgerow serve` on a free loopback port with mDNS off.
    pub fn start(home: TestHome, peers: &[&ServeNode]) -> Self {
        Self::start_with(home, ServeOptions::peers(peers))
    }

    /// Starts `hedgerow serve` with `options` and waits until it listens.
    pub fn start_with(home: TestHome, options: ServeOptions) -> Self {
        assert!(
            !options.mdns || options.netns.is_some(),
            "mDNS is only allowed inside a test's own network namespace"
        );
        let mut node = Self {
            home,
            options,
            port: 0,
            child: None,
            peer_id: String::new(),
            logs: tempfile::Builder::new()
                .prefix("hedgerow-serve-log-")
                .tempdir()
                .expect("log dir"),
            starts: 0,
        };
        node.launch();
        node
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "node already running");
        // A socket left by a killed node would send the CLI to the store while serve opens it.
        let _ = std::fs::remove_file(self.home.path().join("control.sock"));
        self.starts += 1;
        let log = File::create(self.log_path(self.starts)).expect("log file");
        let mut cmd = match &self.options.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(crate::hedgerow_bin());
                cmd
            }
            None => Command::new(crate::hedgerow_bin()),
        };
        cmd.arg("--home").arg(self.home.path()).arg("serve");
        cmd.arg("--listen")
            .arg(format!("/ip4/{}/tcp/{}", self.options.listen_ip, self.port));
        if !self.options.mdns {
            cmd.arg("--no-mdns");
        }
        for peer in &self.options.peers {
            cmd.arg("--peer").arg(peer);
        }
        if let Some(seconds) = self.options.sync_interval {
            cmd.arg("--sync-interval").arg(seconds.to_string());
        }
        for (key, value) in &self.options.env {
            cmd.env(key, value);
        }
        cmd.env_remove("HEDGEROW_HOME")
            .env("HEDGEROW_LOG", "info,hedgerow_node=debug,libp2p=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn hedgerow serve"));
        let status = wait_for(START_TIMEOUT, || {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(exit)) = child.try_wait() {
                    panic!("hedgerow serve exited with {exit}:\n{}", self.log());
                }
            }
            if !self.home.path().join("control.sock").exists() {
                return None;
            }
            let out = self.home.run(&["status", "--json"]);
            let value: Value = serde_json::from_slice(&out.stdout).ok()?;
            let listening = value["listen"].as_array().is_some_and(|l| !l.is_empty());
            listening.then_some(value)
        })
        .unwrap_or_else(|| panic!("hedgerow serve did not come up:\n{}", self.log()));
        self.peer_id = status["peer_id"].as_str().expect("peer_id").to_string();
        let listen = status["listen"][0].as_str().expect("listen address");
        self.port = listen
            .rsplit('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no TCP port in {listen}"));
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.logs.path().join(format!("serve-{start}.log"))
    }

    /// Everything the node logged, over all its starts.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for start in 1..=self.starts {
            let text = std::fs::read_to_string(self.log_path(start)).unwrap_or_default();
            out.push_str(&format!("--- start {start} ---\n{text}"));
        }
        out
    }

    /// The process id of the running `hedgerow serve` (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The full dial address, `/ip4/IP/tcp/PORT/p2p/PEER`.
    pub fn multiaddr(&self) -> String {
        format!(
            "/ip4/{}/tcp/{}/p2p/{}",
            self.options.listen_ip, self.port, self.peer_id
        )
    }

    /// `hedgerow status --json`.
    pub fn status(&self) -> Value {
        self.home.json(&["status"])
    }

    /// How many items the node refused for `reason` (`status.counters.rejected`).
    pub fn rejected(&self, reason: &str) -> u64 {
        self.status()["counters"]["rejected"][reason]
            .as_u64()
            .unwrap_or(0)
    }

    /// Peer ids the node is connected to.
    pub fn connected(&self) -> Vec<String> {
        self.status()["connected"]
            .as_array()
            .map(|peers| {
                peers
                    .iter()
                    .filter_map(|p| p["peer"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the node is connected to `peer` (a peer id).
    pub fn wait_connected_to(&self, peer: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.connected().iter().any(|p| p == peer))
    }

    /// Whether the child process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit; SIGKILL if it does not come.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: signalling our own child, which has not been waited for yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let exited = wait_until(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the node and starts it again keeping connected to `peers` instead.
    pub fn restart_with_peers(&mut self, peers: &[&ServeNode]) {
        self.stop();
        self.options.peers = peers.iter().map(|p| p.multiaddr()).collect();
        self.launch();
    }

    /// Starts the node again with the same options and port.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for ServeNode {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("==== log of node {} ====\n{}", self.peer_id, self.log());
        }
    }
}

/// What a node holds, as its CLI prints it: designs, events and notes, each listed and shown
/// in full (every field, change count and heads), so nodes agree only when their content does.
pub fn state(home: &TestHome) -> Result<Value, String> {
    let run = |args: &[&str]| -> Result<Value, String> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = home.run(&all);
        if !out.status.success() {
            return Err(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{args:?}: {e}"))
    };
    let listed_and_shown = |kind: &str| -> Result<(Value, Value), String> {
        let list = run(&[kind, "list"])?;
        let mut shown = serde_json::Map::new();
        for row in list.as_array().into_iter().flatten() {
            let id = row["id"].as_str().unwrap_or_default();
            shown.insert(id.to_string(), run(&[kind, "show", id])?);
        }
        Ok((list, Value::Object(shown)))
    };
    let (designs, shown) = listed_and_shown("design")?;
    let (events, events_shown) = listed_and_shown("event")?;
    let (notes, notes_shown) = listed_and_shown("note")?;
    Ok(serde_json::json!({
        "designs": designs,
        "shown": shown,
        "events": events,
        "events_shown": events_shown,
        "notes": notes,
        "notes_shown": notes_shown,
    }))
}

/// Waits until every node holds the same designs, events and notes; panics with the difference.
pub fn converge(nodes: &[&TestHome], timeout: Duration) -> Value {
    let mut last = Vec::new();
    let agreed = wait_for(timeout, || {
        last = nodes.iter().map(|n| state(n)).collect();
        let first = last.first()?.as_ref().ok()?;
        last.iter()
            .all(|s| s.as_ref().ok() == Some(first))
            .then(|| first.clone())
    });
    agreed.unwrap_or_else(|| {
        let mut report = String::new();
        for (i, s) in last.iter().enumerate() {
            report.push_str(&format!("--- node {i} ---\n"));
            match s {
                Ok(v) => report.push_str(&format!("{}\n", summary_of(v))),
                Err(e) => report.push_str(&format!("error: {e}\n")),
            }
        }
        panic!("nodes did not converge within {timeout:?}:\n{report}")
    })
}

/// A short line per document, for failure messages.
fn summary_of(state: &Value) -> String {
    let mut out = Vec::new();
    for (id, doc) in state["shown"].as_object().into_iter().flatten() {
        out.push(format!(
            "design {id} name={} changes={} heads={}",
            doc["name"], doc["changes"], doc["heads"]
        ));
    }
    for kind in ["events_shown", "notes_shown"] {
        for (id, doc) in state[kind].as_object().into_iter().flatten() {
            out.push(format!(
                "{} {id} changes={} heads={}",
                kind.trim_end_matches("s_shown"),
                doc["changes"],
                doc["heads"]
            ));
        }
    }
    out.join("\n")
}

/// Environment variable that turns a namespace SKIP into a failure (CI sets it).
pub const REQUIRE_NETNS_ENV: &str = crate::skip::REQUIRE_ENV;

static NETNS_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Two network namespaces joined by a veth pair, deleted on drop.
///
/// Namespace `i` has address `10.47.17.(i+1)/24` on its end of the pair and
/// its loopback up. Names carry the test process id, so parallel runs never clash.
pub struct Netns {
    names: Vec<String>,
}

impl Netns {
    /// Creates the pair; `None` (after reporting the skip, see [`crate::skip`]) when
    /// namespaces cannot be created here, or a panic when [`REQUIRE_NETNS_ENV`] is `1`.
    pub fn pair_or_skip(test: &str) -> Option<Self> {
        match Self::pair() {
            Ok(netns) => Some(netns),
            Err(why) => {
                crate::skip::skip(test, &format!("cannot create network namespaces: {why}"));
                None
            }
        }
    }

    /// Creates two namespaces and the veth pair between them.
    pub fn pair() -> Result<Self, String> {
        let n = NETNS_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let netns = Self {
            names: vec![
                format!("hedgerow-{pid}-{n}-a"),
                format!("hedgerow-{pid}-{n}-b"),
            ],
        };
        // veth names are at most 15 bytes.
        let veth = [format!("hr{pid}x{n}a"), format!("hr{pid}x{n}b")];
        for name in &netns.names {
            ip(&["netns", "add", name])?;
        }
        ip(&[
            "link",
            "add",
            &veth[0],
            "netns",
            &netns.names[0],
            "type",
            "veth",
            "peer",
            "name",
            &veth[1],
            "netns",
            &netns.names[1],
        ])?;
        for (i, (ns, veth)) in netns.names.iter().zip(&veth).enumerate() {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", netns.addr(i)),
                "dev",
                veth,
            ])?;
            ip(&["-n", ns, "link", "set", veth, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // mDNS sends to 224.0.0.251; a namespace has no route for it by default.
            ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", veth])?;
        }
        Ok(netns)
    }

    /// The name of namespace `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The address of namespace `i` on the veth pair.
    pub fn addr(&self, i: usize) -> String {
        format!("10.47.17.{}", i + 1)
    }

    /// Options to serve inside namespace `i` with mDNS on, listening on its address.
    pub fn serve_options(&self, i: usize) -> ServeOptions {
        ServeOptions {
            mdns: true,
            listen_ip: self.addr(i),
            netns: Some(self.names[i].clone()),
            ..ServeOptions::default()
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

/// Runs `ip ARGS`; the error carries its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl ServeNode {
    /// SIGTERM, then its exit status; `None` if it did not exit within `timeout` (it is
    /// killed then).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: signalling our own child, which has not been waited for yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let status = wait_for(timeout, || child.try_wait().ok().flatten());
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }
}
