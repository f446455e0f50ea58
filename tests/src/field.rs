//! Field conditions for multi-node tests: a slow link, a link that drops, and a
//! userspace TCP proxy that cuts connections the way a modem that reconnects does.
//!
//! ```text
//!   namespace 0 (hub)                                  namespace 1 (farm)
//!   hedgerow serve ◀── Proxy ◀── veth, tbf-capped, ──── hedgerow serve
//!   (127.0.0.1)        (10.47.17.1:P)  cut by Flapper      (dials 10.47.17.1:P)
//! ```
//!
//! The hub listens on its namespace's loopback only, so the farm cannot reach it
//! around the proxy with an address it learnt from identify.
//!
//! Builds on [`crate::net::Netns`]: [`Link`] shapes and cuts its veth pair and
//! reads its byte counters (every IP byte that crossed, retransmissions and
//! headers included), [`Proxy`] relays TCP inside a namespace and can reset
//! every connection it carries, [`Flapper`] runs a fixed number of cut/restore
//! cycles on a background thread, stops by itself and reports a cut or restore
//! that failed. The kernel here has no netem, so delay and loss are not
//! emulated; tbf's queue adds the latency a slow link has.

use crate::net::Netns;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The veth pair of a [`Netns`]: shaping, cutting and byte counting.
#[derive(Debug, Clone)]
pub struct Link {
    ends: [(String, String); 2],
}

impl Link {
    /// The link between namespaces 0 and 1 of `netns`.
    pub fn of(netns: &Netns) -> Self {
        let end = |i: usize| {
            let ns = netns.name(i).to_string();
            let dev = veth_in(&ns);
            (ns, dev)
        };
        Self {
            ends: [end(0), end(1)],
        }
    }

    /// Caps both directions at `kbit` kbit/s with a token bucket (`tc qdisc ... tbf`).
    ///
    /// The queue holds about 400 ms of traffic, like a modem's buffer; what overflows is
    /// dropped and TCP slows down.
    pub fn cap(&self, kbit: u32) -> Result<(), String> {
        for (ns, dev) in &self.ends {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    &format!("{kbit}kbit"),
                    "burst",
                    "4kb",
                    "latency",
                    "400ms",
                ],
            )?;
        }
        Ok(())
    }

    /// Takes both ends down (`false`) or up (`true`); packets in flight are lost. Tries both
    /// ends whatever happens to the first; the error names each end that failed.
    pub fn set_up(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        let failures: Vec<String> = self
            .ends
            .iter()
            .filter_map(|(ns, dev)| run("ip", &["-n", ns, "link", "set", dev, state]).err())
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Bytes that crossed the link in both directions (IP packets, headers and
    /// retransmissions included).
    pub fn bytes(&self) -> u64 {
        self.tx("bytes")
    }

    /// Packets that crossed the link in both directions.
    pub fn packets(&self) -> u64 {
        self.tx("packets")
    }

    /// TCP segments retransmitted by both hosts since they were created (`nstat`).
    pub fn retransmitted_segments(&self) -> u64 {
        self.ends
            .iter()
            .map(|(ns, _)| {
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        ns,
                        "nstat",
                        "-az",
                        "TcpRetransSegs",
                        "--json",
                    ])
                    .stdin(Stdio::null())
                    .output()
                    .expect("run nstat");
                let value: serde_json::Value =
                    serde_json::from_slice(&out.stdout).unwrap_or_default();
                value["kernel"]["TcpRetransSegs"].as_u64().unwrap_or(0)
            })
            .sum()
    }

    /// A transmit counter of both ends, summed.
    fn tx(&self, counter: &str) -> u64 {
        self.tx_per_end(counter).iter().sum()
    }

    /// A transmit counter of each end: `[namespace 0 sent, namespace 1 sent]`.
    pub fn tx_per_end(&self, counter: &str) -> Vec<u64> {
        self.ends
            .iter()
            .map(|(ns, dev)| {
                let out = Command::new("ip")
                    .args(["-n", ns, "-s", "-j", "link", "show", "dev", dev])
                    .stdin(Stdio::null())
                    .output()
                    .expect("run ip");
                let value: serde_json::Value =
                    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
                value[0]["stats64"]["tx"][counter]
                    .as_u64()
                    .expect("tx counter")
            })
            .collect()
    }
}

/// The veth interface inside namespace `ns`.
fn veth_in(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "-j", "link", "show", "type", "veth"])
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j JSON");
    value[0]["ifname"]
        .as_str()
        .unwrap_or_else(|| panic!("no veth in namespace {ns}"))
        .to_string()
}

/// Runs a command; the error carries its stderr.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Moves the calling thread into network namespace `ns` (created by `ip netns add`).
fn enter_netns(ns: &str) -> std::io::Result<()> {
    let file = File::open(format!("/run/netns/{ns}"))
        .or_else(|_| File::open(format!("/var/run/netns/{ns}")))?;
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A TCP relay listening inside a namespace, forwarding to `upstream`.
///
/// [`reset`](Self::reset) aborts every relayed connection at once, as when a mobile
/// modem drops its session and comes back with a new address: what sat in buffers is
/// lost, the side that is still reachable sees a reset at once, the other at its next
/// packet, and both must redial. Socket buffers are kept small, like a modem's, so the
/// relay does not hoard data the link has not carried yet. It counts the payload bytes
/// it relays.
pub struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
    relayed: Arc<AtomicU64>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts the relay inside namespace `ns`, listening on `ip` (any free port).
    pub fn start(ns: &str, ip: &str, upstream: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let relayed = Arc::new(AtomicU64::new(0));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let accept = {
            let (stop, live, relayed) = (stop.clone(), live.clone(), relayed.clone());
            let ns = ns.to_string();
            let listen = format!("{ip}:0");
            std::thread::spawn(move || {
                // Threads spawned from here inherit the namespace, so every socket lives in it.
                enter_netns(&ns).expect("enter namespace");
                let listener = TcpListener::bind(&listen).expect("proxy listens");
                listener
                    .set_nonblocking(true)
                    .expect("nonblocking listener");
                port_tx
                    .send(listener.local_addr().expect("proxy address").port())
                    .expect("report port");
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((down, _)) => {
                            let _ = down.set_nonblocking(false);
                            relay(down, upstream, &live, &relayed);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("proxy started");
        Self {
            port,
            stop,
            live,
            relayed,
            accept: Some(accept),
        }
    }

    /// The port the relay listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Aborts every connection the relay carries (TCP reset, buffered data dropped).
    pub fn reset(&self) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for stream in live.drain(..) {
            abort(&stream);
        }
    }

    /// Payload bytes relayed in both directions.
    pub fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.reset();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Connects `down` to `upstream` and pumps bytes both ways on two threads.
fn relay(
    down: TcpStream,
    upstream: SocketAddr,
    live: &Arc<Mutex<Vec<TcpStream>>>,
    relayed: &Arc<AtomicU64>,
) {
    let Ok(up) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        let _ = down.shutdown(Shutdown::Both);
        return;
    };
    for stream in [&up, &down] {
        let _ = stream.set_nodelay(true);
        set_buffers(stream, 16 * 1024);
    }
    let clones = (down.try_clone(), up.try_clone());
    let (Ok(down2), Ok(up2)) = clones else {
        return;
    };
    {
        let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|s| s.peer_addr().is_ok());
        if let (Ok(a), Ok(b)) = (down.try_clone(), up.try_clone()) {
            live.push(a);
            live.push(b);
        }
    }
    for (from, to) in [(down, up), (up2, down2)] {
        let relayed = relayed.clone();
        std::thread::spawn(move || pump(from, to, &relayed));
    }
}

/// Sets a socket's kernel send and receive buffers to about `bytes`.
fn set_buffers(stream: &TcpStream, bytes: libc::c_int) {
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: a valid socket fd and a pointer to a c_int of the right size.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Closes a connection abortively: linger 0 makes the kernel drop buffered data and send
/// a reset instead of a FIN.
fn abort(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a pointer to a linger struct of the right size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // Both pumps hold clones of the fd; shutting it down wakes them, and with linger 0
    // the kernel resets the connection when the last clone closes.
    let _ = stream.shutdown(Shutdown::Both);
}

/// Copies `from` to `to` until either ends, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream, relayed: &AtomicU64) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                relayed.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// What one cut does besides taking the link down.
pub type OnCut = Box<dyn Fn(usize) + Send>;

/// Cuts a [`Link`] for `down` every `period`, a fixed number of times, on a background
/// thread; stops early when dropped, and always tries to leave the link up. A cut or a
/// restore that fails ends the flapping, and [`stop`](Self::stop) reports it: a run whose
/// link was not really cut must not pass for one that rode through the cuts.
pub struct Flapper {
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Flapper {
    /// Starts `cycles` cycles of `period - down` up, then `down` cut; `on_cut(i)` runs as
    /// cut `i` begins (e.g. to reset the proxy's connections).
    pub fn start(
        link: Link,
        period: Duration,
        down: Duration,
        cycles: usize,
        on_cut: OnCut,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let error: Arc<Mutex<Option<String>>> = Arc::default();
        let thread = {
            let (stop, cuts, error) = (stop.clone(), cuts.clone(), error.clone());
            std::thread::spawn(move || {
                let fail = |what: &str, e: String| {
                    let mut error = error.lock().unwrap_or_else(|e| e.into_inner());
                    error.get_or_insert(format!("{what}: {e}"));
                };
                let up = period.saturating_sub(down);
                for cycle in 0..cycles {
                    if !sleep_unless(&stop, up) {
                        break;
                    }
                    if let Err(e) = link.set_up(false) {
                        fail(&format!("cut {cycle}"), e);
                        if let Err(e) = link.set_up(true) {
                            fail(&format!("restore after failed cut {cycle}"), e);
                        }
                        break;
                    }
                    on_cut(cycle);
                    cuts.fetch_add(1, Ordering::Relaxed);
                    let go_on = sleep_unless(&stop, down);
                    if let Err(e) = link.set_up(true) {
                        fail(&format!("restore after cut {cycle}"), e);
                        break;
                    }
                    if !go_on {
                        break;
                    }
                }
            })
        };
        Self {
            stop,
            cuts,
            error,
            thread: Some(thread),
        }
    }

    /// Cuts made so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }

    /// The first cut or restore that failed so far.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops (the link is left up) and returns how many cuts were made, or the first cut or
    /// restore that failed.
    pub fn stop(mut self) -> Result<u64, String> {
        self.halt();
        let error = self.error.lock().unwrap_or_else(|e| e.into_inner()).take();
        match error {
            Some(e) => Err(e),
            None => Ok(self.cuts()),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flapper {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps `total` in small steps; false when `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, total: Duration) -> bool {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(step.min(total - slept));
        slept += step;
    }
    !stop.load(Ordering::Relaxed)
}
