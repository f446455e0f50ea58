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
    /// More `--listen` addresses, after the TCP one on `listen_ip` that peers dial.
    pub more_listen: Vec<String>,
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
            more_listen: Vec::new(),
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
        for addr in &self.options.more_listen {
            cmd.arg("--listen").arg(addr);
        }
        if !self.options.mdns {
            cmd.arg("--no-mdns");
        }
        // UPnP multicasts a gateway search from any node listening on a private IPv4 address
        // (every namespace test): never in a test.
        cmd.arg("--no-upnp");
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
        let tcp = format!("/ip4/{}/tcp/", self.options.listen_ip);
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
            // Up once the TCP address peers dial is listened on (others may come first).
            let listening = value["listen"].as_array().is_some_and(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .any(|a| a.starts_with(&tcp) && !a.contains("p2p-circuit"))
            });
            listening.then_some(value)
        })
        .unwrap_or_else(|| panic!("hedgerow serve did not come up:\n{}", self.log()));
        self.peer_id = status["peer_id"].as_str().expect("peer_id").to_string();
        let listen = status["listen"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .find(|a| a.starts_with(&tcp) && !a.contains("p2p-circuit"))
            })
            .unwrap_or_else(|| panic!("not listening on {tcp}: {}", status["listen"]));
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

/// A hub and two farms in their own network namespaces, each farm joined to the hub by its
/// own veth pair, deleted on drop (see [`HubAndFarms::new`]).
///
/// ```text
///   plain:  farm A 10.48.1.2 --- 10.48.1.1 [hub 10.48.0.1] 10.48.2.1 --- 10.48.2.2 farm B
///           (the hub does not forward: the farms reach the hub, never each other)
///
///   nat:    farm A 192.168.1.2 - NAT A 10.48.1.2 --- [hub, forwarding] --- 10.48.2.2 NAT B - 192.168.2.2 farm B
///           (each NAT masquerades, keeping a farm's source port while it is free, and drops
///           what nobody inside asked for, like a home router: the farms dial out, nothing
///           dials in, and a hole punch can open a path between them)
/// ```
///
/// The hub listens on 10.48.0.1 (on its loopback, routed from both sides); a farm dials it
/// there. Names carry the test process id, so parallel runs never clash.
pub struct HubAndFarms {
    /// Namespaces: hub, farm A, farm B, then NAT A and NAT B when made with NAT.
    names: Vec<String>,
    /// Which `iptables` made the NATs, when there are NATs.
    pub iptables: Option<String>,
}

/// The hub's address in [`HubAndFarms`], reachable from both farms.
pub const HUB_ADDR: &str = "10.48.0.1";

impl HubAndFarms {
    /// The topology with no NAT: the hub does not forward, so the farms cannot route to each
    /// other and only a relay joins them. `None` after reporting the skip where namespaces
    /// cannot be made (a failure when [`REQUIRE_NETNS_ENV`] is `1`).
    pub fn plain_or_skip(test: &str) -> Option<Self> {
        match Self::new(false) {
            Ok(net) => Some(net),
            Err(why) => {
                crate::skip::skip(test, &format!("cannot create network namespaces: {why}"));
                None
            }
        }
    }

    /// The topology; with `nat`, each farm sits behind its own masquerading NAT namespace
    /// and the hub forwards between the NATs' outer sides, like the internet. `Err` when
    /// namespaces, or (with `nat`) iptables' NAT, cannot be made here.
    pub fn new(nat: bool) -> Result<Self, String> {
        let n = NETNS_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mut names = vec![
            format!("hedgerow-{pid}-{n}-hub"),
            format!("hedgerow-{pid}-{n}-fa"),
            format!("hedgerow-{pid}-{n}-fb"),
        ];
        if nat {
            names.push(format!("hedgerow-{pid}-{n}-na"));
            names.push(format!("hedgerow-{pid}-{n}-nb"));
        }
        let mut net = Self {
            names,
            iptables: None,
        };
        for name in &net.names {
            ip(&["netns", "add", name])?;
            ip(&["-n", name, "link", "set", "lo", "up"])?;
        }
        let hub = net.names[0].clone();
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_ADDR}/32"),
            "dev",
            "lo",
        ])?;
        sysctl(&hub, "net.ipv4.ip_forward", if nat { "1" } else { "0" })?;
        for side in 1..=2usize {
            let farm = net.names[side].clone();
            // The namespace facing the hub: the farm itself, or its NAT.
            let outer = if nat {
                net.names[side + 2].clone()
            } else {
                farm.clone()
            };
            let hub_end = format!("hr{pid}x{n}h{side}");
            let out_end = format!("hr{pid}x{n}o{side}");
            veth(&hub, &hub_end, &outer, &out_end)?;
            ip(&[
                "-n",
                &hub,
                "addr",
                "add",
                &format!("10.48.{side}.1/24"),
                "dev",
                &hub_end,
            ])?;
            ip(&["-n", &hub, "link", "set", &hub_end, "up"])?;
            ip(&[
                "-n",
                &outer,
                "addr",
                "add",
                &format!("10.48.{side}.2/24"),
                "dev",
                &out_end,
            ])?;
            ip(&["-n", &outer, "link", "set", &out_end, "up"])?;
            ip(&[
                "-n",
                &outer,
                "route",
                "add",
                "default",
                "via",
                &format!("10.48.{side}.1"),
            ])?;
            if nat {
                let nat_in = format!("hr{pid}x{n}n{side}");
                let farm_end = format!("hr{pid}x{n}f{side}");
                veth(&outer, &nat_in, &farm, &farm_end)?;
                ip(&[
                    "-n",
                    &outer,
                    "addr",
                    "add",
                    &format!("192.168.{side}.1/24"),
                    "dev",
                    &nat_in,
                ])?;
                ip(&["-n", &outer, "link", "set", &nat_in, "up"])?;
                ip(&[
                    "-n",
                    &farm,
                    "addr",
                    "add",
                    &format!("192.168.{side}.2/24"),
                    "dev",
                    &farm_end,
                ])?;
                ip(&["-n", &farm, "link", "set", &farm_end, "up"])?;
                ip(&[
                    "-n",
                    &farm,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("192.168.{side}.1"),
                ])?;
                sysctl(&outer, "net.ipv4.ip_forward", "1")?;
                let rule = [
                    "-t",
                    "nat",
                    "-A",
                    "POSTROUTING",
                    "-o",
                    &out_end,
                    "-j",
                    "MASQUERADE",
                ];
                match &net.iptables {
                    Some(tool) => in_ns(&outer, tool, &rule)?,
                    // The first NAT finds which iptables works here (nftables' or legacy).
                    None => {
                        let tool = ["iptables", "iptables-legacy"]
                            .into_iter()
                            .find(|tool| in_ns(&outer, tool, &rule).is_ok())
                            .ok_or_else(|| {
                                "neither iptables nor iptables-legacy can masquerade here \
                                 (Debian package iptables; kernel modules ip_tables, nf_nat)"
                                    .to_string()
                            })?;
                        net.iptables = Some(tool.to_string());
                    }
                }
                let tool = net.iptables.clone().unwrap_or_default();
                for rule in nat_filter_rules(&out_end) {
                    let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
                    in_ns(&outer, &tool, &rule)?;
                }
            }
        }
        Ok(net)
    }

    /// Packets the WAN side of NAT `i` (0: A, 1: B) dropped as unsolicited, to the NAT
    /// itself and through it (the DROP rules of [`nat_filter_rules`]); 0 without NATs.
    pub fn nat_dropped(&self, i: usize) -> u64 {
        let (Some(ns), Some(tool)) = (self.names.get(3 + i), &self.iptables) else {
            return 0;
        };
        ["INPUT", "FORWARD"]
            .iter()
            .map(|chain| dropped_packets(ns, tool, chain))
            .sum()
    }

    /// The hub's namespace.
    pub fn hub(&self) -> &str {
        &self.names[0]
    }

    /// Farm `i`'s namespace (0: A, 1: B).
    pub fn farm(&self, i: usize) -> &str {
        &self.names[1 + i]
    }

    /// Farm `i`'s own address (behind its NAT, when there is one).
    pub fn farm_addr(&self, i: usize) -> String {
        match self.names.len() > 3 {
            true => format!("192.168.{}.2", i + 1),
            false => format!("10.48.{}.2", i + 1),
        }
    }

    /// Options to serve the hub (mDNS off), listening on [`HUB_ADDR`].
    pub fn hub_options(&self) -> ServeOptions {
        ServeOptions {
            listen_ip: HUB_ADDR.into(),
            netns: Some(self.hub().to_string()),
            ..ServeOptions::default()
        }
    }

    /// Options to serve farm `i` (mDNS off), listening on its own address, with `peers`.
    pub fn farm_options(&self, i: usize, peers: Vec<String>) -> ServeOptions {
        ServeOptions {
            peers,
            listen_ip: self.farm_addr(i),
            netns: Some(self.farm(i).to_string()),
            ..ServeOptions::default()
        }
    }

    /// Whether something in namespace `from` can open a TCP connection to `addr:port` within
    /// `timeout` (a route check for the test's premises).
    pub fn can_connect(&self, from: &str, addr: &str, port: u16, timeout: Duration) -> bool {
        let script = format!("exec 3<>/dev/tcp/{addr}/{port}");
        Command::new("ip")
            .args(["netns", "exec", from, "timeout"])
            .arg(format!("{}", timeout.as_secs().max(1)))
            .args(["bash", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for HubAndFarms {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

/// What a home router does besides masquerading: on its WAN side (`wan`) it lets in, to
/// itself (INPUT) or through it (FORWARD), only packets of connections a farm opened
/// (conntrack ESTABLISHED or RELATED) and silently drops the rest.
///
/// Without these rules the NAT namespace's own stack answers an unsolicited SYN to its outer
/// address with a RST. A DCUtR hole punch needs the opposite: both farms dial each other at
/// once, so one farm's SYN reaches the other's NAT before that NAT has seen its own farm's SYN
/// go out. A router that sends RST kills the attempt at once ("Connection refused", three
/// times in a few milliseconds, then "Giving up after 3 dial attempts"); one that drops it
/// leaves the outgoing SYN to open the mapping and the peer's SYN (or its retransmission) to
/// pass through it: a TCP simultaneous open. Dropped packets are also never confirmed in
/// conntrack, so they cannot take the port the outgoing SYN is masqueraded to.
fn nat_filter_rules(wan: &str) -> Vec<Vec<String>> {
    let mut rules = Vec::new();
    for chain in ["INPUT", "FORWARD"] {
        for tail in [
            &[
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
            ][..],
            &["-j", "DROP"][..],
        ] {
            let mut rule: Vec<String> = ["-A", chain, "-i", wan].map(String::from).to_vec();
            rule.extend(tail.iter().map(|s| s.to_string()));
            rules.push(rule);
        }
    }
    rules
}

/// The packets the DROP rule of `chain` in `ns` dropped (`iptables -L CHAIN -v -n -x`).
fn dropped_packets(ns: &str, tool: &str, chain: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, tool, "-L", chain, "-v", "-n", "-x"])
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out else { return 0 };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.split_whitespace().nth(2) == Some("DROP"))
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A veth pair with one end in each namespace.
fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<(), String> {
    ip(&[
        "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
    ])
}

/// Sets a sysctl inside a namespace.
fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), String> {
    in_ns(ns, "sysctl", &["-q", "-w", &format!("{key}={value}")])
}

/// Runs `tool ARGS` inside namespace `ns`; the error carries its stderr.
fn in_ns(ns: &str, tool: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, tool])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{tool}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{tool} {}` in {ns} failed: {}",
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
