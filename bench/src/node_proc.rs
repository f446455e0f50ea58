//! Nodes under test: each a real `hedgerow serve` engine ([`serve::run`]) in its own process
//! (this binary's hidden `node` mode), listening on 127.0.0.1 only with mDNS off, driven over
//! its control socket like the CLI drives a running node.
//!
//! One process per node gives each node its own peak memory and CPU time, read from
//! `/proc/<pid>`, and keeps the benchmark's own bookkeeping out of the figures.

use anyhow::{anyhow, bail, Context, Result};
use hedgerow_node::api::NodeRequest;
use hedgerow_node::control::{self, ControlReply};
use hedgerow_node::home::{control_socket_path, Home};
use hedgerow_node::serve::{self, ServeConfig};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a control request may take (a whole initial sync at 5,000 designs included).
const CALL_TIMEOUT: Duration = Duration::from_secs(1800);
/// Longest a node may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a node on `home` until stdin closes: the hidden `node` mode of this binary.
pub fn run_node(home: &Path, soak: bool) -> Result<()> {
    let home = Home::open(home)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = stop_tx.send(());
    });
    let mut config = ServeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        peers: Vec::new(),
        mdns: false,
        sync_interval: Duration::from_secs(24 * 3600),
        ..ServeConfig::default()
    };
    if soak {
        // Every peer of a soak shares 127.0.0.1: per-address limits would ban the honest
        // nodes along with the hostile ones, so the soak measures the per-peer defences.
        config.sync_interval = Duration::from_secs(5);
        config.max_connections_per_ip = 100_000;
        config.ip_penalty_limit = u32::MAX;
    }
    runtime
        .block_on(serve::run(&home, config, async {
            let _ = stop_rx.await;
        }))
        .map_err(|e| anyhow!("node failed: {e}"))
}

/// Counters of one node at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeSample {
    /// Sync frame bytes written.
    pub sync_sent: u64,
    /// Sync frame bytes read.
    pub sync_received: u64,
    /// Gossip payload bytes published.
    pub gossip_published: u64,
    /// Gossip payload bytes delivered.
    pub gossip_received: u64,
    /// All libp2p substream bytes read.
    pub transport_in: u64,
    /// All libp2p substream bytes written.
    pub transport_out: u64,
    /// Live changes received and applied.
    pub live_received: u64,
    /// Round trips of finished pulls.
    pub pull_round_trips: u64,
    /// CPU seconds (user + system) of the process so far.
    pub cpu_s: f64,
    /// Peak resident memory of the process so far, bytes.
    pub peak_rss: u64,
    /// Store size on disk, bytes.
    pub store_bytes: u64,
}

/// A command a node runs under: `program args… <this binary> node --home HOME`, with `env`.
/// It must end by exec'ing its arguments, so the node keeps the process id it was spawned with.
#[derive(Debug, Clone)]
pub struct Wrapper {
    /// The program (`sh`, `taskset`).
    pub program: String,
    /// Its arguments before the node's command line.
    pub args: Vec<String>,
    /// Environment variables it reads.
    pub env: Vec<(String, String)>,
}

/// A running node process.
pub struct NodeProc {
    /// A name for messages.
    pub name: String,
    /// Its home.
    pub home: PathBuf,
    /// Its dialable address, `/ip4/127.0.0.1/tcp/N/p2p/ID`.
    pub addr: String,
    child: Child,
    stdin: Option<ChildStdin>,
    socket: PathBuf,
}

impl NodeProc {
    /// Starts a node on `home` and waits until it listens.
    pub fn start(name: &str, home: &Path) -> Result<Self> {
        Self::start_with(name, home, &[])
    }

    /// Starts a node with extra arguments of the hidden `node` mode (`--soak`).
    pub fn start_with(name: &str, home: &Path, args: &[&str]) -> Result<Self> {
        Self::spawn(name, home, args, None)
    }

    /// Starts a node through `wrapper` (a command that runs the node, e.g. in a cgroup).
    pub fn start_wrapped(name: &str, home: &Path, wrapper: &Wrapper) -> Result<Self> {
        Self::spawn(name, home, &[], Some(wrapper))
    }

    fn spawn(name: &str, home: &Path, args: &[&str], wrapper: Option<&Wrapper>) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let log = std::fs::File::create(home.join("node.log"))?;
        let mut command = match wrapper {
            None => Command::new(&exe),
            Some(w) => {
                let mut command = Command::new(&w.program);
                command.args(&w.args).envs(w.env.iter().cloned()).arg(&exe);
                command
            }
        };
        let mut child = command
            .args(["node", "--home"])
            .arg(home)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {name}"))?;
        let stdin = child.stdin.take();
        let mut node = NodeProc {
            name: name.to_string(),
            home: home.to_path_buf(),
            addr: String::new(),
            child,
            stdin,
            socket: control_socket_path(home),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = node.child.try_wait()? {
                bail!(
                    "node {name} exited during start ({status}); see {}",
                    home.join("node.log").display()
                );
            }
            if let Ok(status) = node.status() {
                let listen = status["listen"]
                    .as_array()
                    .and_then(|l| l.first())
                    .and_then(Value::as_str);
                if let (Some(listen), Some(peer)) = (listen, status["peer_id"].as_str()) {
                    node.addr = format!("{listen}/p2p/{peer}");
                    return Ok(node);
                }
            }
            if Instant::now() > deadline {
                bail!("node {name} did not start listening within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one request over the control socket; the JSON result.
    pub fn call(&self, request: &impl serde::Serialize) -> Result<Value> {
        match control::call(&self.socket, request, CALL_TIMEOUT)
            .map_err(|e| anyhow!("{}: {e}", self.name))?
        {
            ControlReply::Ok(value) => Ok(value),
            ControlReply::Error { message, .. } => Err(anyhow!("{}: {message}", self.name)),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `status`.
    pub fn status(&self) -> Result<Value> {
        self.call(&NodeRequest::Status)
    }

    /// Counters, CPU and memory now.
    pub fn sample(&self) -> Result<NodeSample> {
        let status = self.status()?;
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let bytes = &status["bytes"];
        let counters = &status["counters"];
        let (cpu_s, peak_rss) = proc_usage(self.child.id())?;
        Ok(NodeSample {
            sync_sent: n(&bytes["sync_sent"]),
            sync_received: n(&bytes["sync_received"]),
            gossip_published: n(&bytes["gossip_published"]),
            gossip_received: n(&bytes["gossip_received"]),
            transport_in: n(&bytes["transport_in"]),
            transport_out: n(&bytes["transport_out"]),
            live_received: n(&counters["live_received"]),
            pull_round_trips: n(&counters["pull_round_trips"]),
            cpu_s,
            peak_rss,
            store_bytes: n(&status["store_bytes"]),
        })
    }

    /// Whether any pull with any connected peer is still running.
    pub fn syncing(&self) -> Result<bool> {
        let status = self.status()?;
        Ok(status["connected"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|p| p["syncing"].as_bool() == Some(true))))
    }

    /// How many peers are connected.
    pub fn connected(&self) -> Result<usize> {
        Ok(self.status()?["connected"].as_array().map_or(0, Vec::len))
    }

    /// Asks the node to sync with `peer` (dialing it if needed); returns the sync report.
    pub fn sync_with(&self, peer: &NodeProc) -> Result<Value> {
        self.call(&NodeRequest::Sync {
            peer: peer.addr.clone(),
            connect_timeout: None,
            deadline: None,
        })
    }

    /// Stops the node (it commits its store) and waits for it to exit.
    pub fn stop(mut self) -> Result<()> {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!(
                        "node {} exited with {status}; see {}",
                        self.name,
                        self.home.join("node.log").display()
                    );
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("node {} did not stop within 60 s", self.name)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU seconds (user + system) and peak resident bytes (VmHWM) of a live process.
pub fn proc_usage(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("bad /proc stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (ticks(11) + ticks(12)) as f64 / hz;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    Ok((cpu, hwm))
}

/// Resident memory of a live process now, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProcMemory {
    /// Resident set (VmRSS), bytes.
    pub rss: u64,
    /// Of which anonymous memory (RssAnon): the heap and thread stacks.
    pub anon: u64,
    /// Of which file-backed pages mapped (RssFile): the binary and its libraries.
    pub file: u64,
    /// Peak resident set so far (VmHWM), bytes.
    pub peak: u64,
}

/// Resident memory of a live process now.
pub fn proc_memory(pid: u32) -> Result<ProcMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok(ProcMemory {
        rss: kb("VmRSS:"),
        anon: kb("RssAnon:"),
        file: kb("RssFile:") + kb("RssShmem:"),
        peak: kb("VmHWM:"),
    })
}

/// CPU seconds (getrusage) and peak resident bytes (VmHWM) of this process.
///
/// Not `ru_maxrss`: Linux carries it over from the parent across fork and exec, so a child of
/// a big parent would report the parent's peak.
pub fn self_usage() -> (f64, u64) {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let peak = proc_usage(std::process::id()).map_or(0, |(_, hwm)| hwm);
    (secs(usage.ru_utime) + secs(usage.ru_stime), peak)
}

/// Waits until no node has a pull running and the sync counters stopped moving.
pub fn wait_quiet(nodes: &[&NodeProc], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut previous: Option<Vec<(u64, u64)>> = None;
    loop {
        let mut busy = false;
        let mut now = Vec::with_capacity(nodes.len());
        for node in nodes {
            busy |= node.syncing()?;
            let s = node.sample()?;
            now.push((s.sync_sent, s.sync_received));
        }
        if !busy && previous.as_ref() == Some(&now) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nodes still syncing after {timeout:?}");
        }
        previous = Some(now);
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Sum of the sizes of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
