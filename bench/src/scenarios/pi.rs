//! The Pi-class run (`hedgerow-bench --pi`): a fresh node joins the commons and pulls all of it
//! while it is held to what a farm's Raspberry Pi-class box offers: 30% of one core and 512 MB.
//!
//! As root the receiving node runs in cgroups the benchmark creates for it, children of the
//! benchmark's own cgroups (so whatever limits the benchmark itself runs under still hold): on
//! cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` and `memory.limit_in_bytes` (with
//! `memory.memsw.limit_in_bytes` where swap is accounted), on cgroup v2 `cpu.max` and
//! `memory.max`. They are removed when the run ends, and a run removes the empty ones a killed
//! earlier run left. Without root (or with `--pi-mode taskset`) the node is only pinned to one
//! core with `taskset`: no quota and no memory limit, so the time is a full core's and the
//! peak memory is checked against 512 MB after the fact. The row says which mode ran.

use super::{covers, delta, open, sample_all, Bench};
use crate::node_proc::{dir_size, wait_quiet, NodeProc, Wrapper};
use crate::report::{human, Row};
use anyhow::{anyhow, bail, Context, Result};
use hedgerow_node::api::{self, Request};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// CPU the receiving node may use: 30% of one core.
pub const CPU_QUOTA_US: u64 = 30_000;
/// Over this period.
pub const CPU_PERIOD_US: u64 = 100_000;
/// Memory the receiving node may use (its page cache included, as the kernel counts it).
pub const MEMORY_LIMIT: u64 = 512 * 1024 * 1024;
/// Longest the nodes may keep syncing after the `sync` call returned.
const SETTLE: Duration = Duration::from_secs(600);
/// Name prefix of the cgroups this benchmark creates.
const PREFIX: &str = "hedgerow-bench-pi-";

/// How the receiving node is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiMode {
    /// cgroups if they can be created, else taskset.
    Auto,
    /// cgroups or fail.
    Cgroup,
    /// taskset to one core only (no root needed).
    Taskset,
}

impl std::str::FromStr for PiMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(PiMode::Auto),
            "cgroup" => Ok(PiMode::Cgroup),
            "taskset" => Ok(PiMode::Taskset),
            _ => Err(format!(
                "unknown --pi-mode `{s}`: choose auto, cgroup or taskset"
            )),
        }
    }
}

/// The cgroups holding the receiving node; removed on drop (after the node is gone).
struct Limits {
    mode: &'static str,
    /// Directories created, removed on drop.
    dirs: Vec<PathBuf>,
    /// The memory cgroup, to read its peak from.
    memory: Option<PathBuf>,
    /// The cpu cgroup, to read its throttling from.
    cpu: Option<PathBuf>,
    version: u8,
    /// What the node runs under (`None`: nothing to hold it with).
    wrapper: Option<Wrapper>,
}

impl Drop for Limits {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            remove_cgroup(dir);
        }
    }
}

/// Removes an empty cgroup, waiting a little for its last process to be reaped.
fn remove_cgroup(dir: &Path) {
    for _ in 0..100 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("could not remove cgroup {}", dir.display());
}

/// This process's cgroup path for a v1 controller, or the v2 path (`controller` empty).
fn own_cgroup(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

/// The directory of this process's cgroup for `controller` (v1).
fn v1_dir(controller: &str) -> Option<PathBuf> {
    let base = Path::new("/sys/fs/cgroup").join(controller);
    base.is_dir()
        .then(|| own_cgroup(controller).map(|p| base.join(p)))
        .flatten()
}

/// Removes empty cgroups an earlier run left (its process is gone).
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid).exists();
        if !alive {
            // Fails harmlessly if a process is still in it.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

/// The shell wrapper that moves itself into the cgroups, then becomes the node.
fn cgroup_wrapper(procs: &[PathBuf]) -> Wrapper {
    let list: Vec<String> = procs.iter().map(|p| p.display().to_string()).collect();
    Wrapper {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            "for f in $HEDGEROW_PI_CGROUPS; do echo $$ > \"$f\" || exit 97; done; exec \"$@\""
                .into(),
            "sh".into(),
        ],
        env: vec![("HEDGEROW_PI_CGROUPS".into(), list.join(" "))],
    }
}

/// `taskset -c 0`, if taskset is installed.
fn taskset() -> Option<Wrapper> {
    let installed = std::process::Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    installed.then(|| Wrapper {
        program: "taskset".into(),
        args: vec!["-c".into(), "0".into()],
        env: Vec::new(),
    })
}

/// Sets up cgroup v1 limits under this process's own cgroups.
fn v1_limits() -> Result<Limits> {
    let (cpu_parent, mem_parent) = match (v1_dir("cpu"), v1_dir("memory")) {
        (Some(c), Some(m)) => (c, m),
        _ => bail!("no cgroup v1 cpu and memory hierarchies"),
    };
    let name = format!("{PREFIX}{}", std::process::id());
    let mut limits = Limits {
        mode: "cgroup v1",
        dirs: Vec::new(),
        memory: None,
        cpu: None,
        version: 1,
        wrapper: None,
    };
    sweep_stale(&cpu_parent);
    sweep_stale(&mem_parent);
    let cpu = cpu_parent.join(&name);
    std::fs::create_dir(&cpu).with_context(|| format!("creating {}", cpu.display()))?;
    limits.dirs.push(cpu.clone());
    write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
    write(&cpu.join("cpu.cfs_quota_us"), &CPU_QUOTA_US.to_string())?;
    let memory = mem_parent.join(&name);
    std::fs::create_dir(&memory).with_context(|| format!("creating {}", memory.display()))?;
    limits.dirs.push(memory.clone());
    write(
        &memory.join("memory.limit_in_bytes"),
        &MEMORY_LIMIT.to_string(),
    )?;
    // Pages the node touched before it moved in are charged to it here too.
    let _ = write(&memory.join("memory.move_charge_at_immigrate"), "3");
    let memsw = memory.join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        write(&memsw, &MEMORY_LIMIT.to_string())?;
    }
    limits.wrapper = Some(cgroup_wrapper(&[
        cpu.join("cgroup.procs"),
        memory.join("cgroup.procs"),
    ]));
    limits.cpu = Some(cpu);
    limits.memory = Some(memory);
    Ok(limits)
}

/// Sets up cgroup v2 limits in a child of this process's own cgroup.
fn v2_limits() -> Result<Limits> {
    let own = own_cgroup("").ok_or_else(|| anyhow!("no cgroup v2 path in /proc/self/cgroup"))?;
    let parent = Path::new("/sys/fs/cgroup").join(own);
    sweep_stale(&parent);
    // The child needs the cpu and memory controllers delegated from its parent.
    write(&parent.join("cgroup.subtree_control"), "+cpu +memory")?;
    let dir = parent.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut limits = Limits {
        mode: "cgroup v2",
        dirs: vec![dir.clone()],
        memory: Some(dir.clone()),
        cpu: Some(dir.clone()),
        version: 2,
        wrapper: Some(cgroup_wrapper(&[dir.join("cgroup.procs")])),
    };
    write(
        &dir.join("cpu.max"),
        &format!("{CPU_QUOTA_US} {CPU_PERIOD_US}"),
    )?;
    write(&dir.join("memory.max"), &MEMORY_LIMIT.to_string())?;
    if dir.join("memory.swap.max").exists() {
        write(&dir.join("memory.swap.max"), "0")?;
    }
    limits.memory = Some(dir);
    Ok(limits)
}

fn limits(mode: PiMode) -> Result<Limits> {
    let taskset_only = || {
        let wrapper = taskset();
        Limits {
            mode: match wrapper {
                Some(_) => "taskset (one core, no CPU quota or memory limit)",
                None => "unlimited (no cgroups, no taskset installed)",
            },
            dirs: Vec::new(),
            memory: None,
            cpu: None,
            version: 0,
            wrapper,
        }
    };
    if mode == PiMode::Taskset {
        return Ok(taskset_only());
    }
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let made = if unified { v2_limits() } else { v1_limits() };
    match (made, mode) {
        (Ok(limits), _) => Ok(limits),
        (Err(e), PiMode::Cgroup) => Err(e.context("setting up the Pi-class cgroups (need root)")),
        (Err(e), _) => {
            eprintln!("no cgroups for the Pi-class run ({e:#}); running under taskset instead");
            Ok(taskset_only())
        }
    }
}

/// A number from a cgroup file (`key value` lines when `key` is given).
fn read_cgroup(dir: Option<&PathBuf>, file: &str, key: Option<&str>) -> Option<u64> {
    let text = std::fs::read_to_string(dir?.join(file)).ok()?;
    match key {
        None => text.trim().parse().ok(),
        Some(key) => text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        }),
    }
}

/// 7. The Pi-class initial sync.
pub fn pi_initial(bench: &Bench, mode: PiMode) -> Result<Row> {
    let a_home = bench.seed_copy("pi-a")?;
    let b_home = bench.fresh_home("pi-b")?;
    api::execute(
        &mut open(&b_home)?,
        Request::Join {
            commons: bench.generated.commons.to_string(),
        },
    )?;
    // Declared before the nodes: dropped (cgroups removed) after them.
    let limits = limits(mode)?;
    eprintln!("[{}] Pi-class run: {}", bench.settings.designs, limits.mode);
    let a = NodeProc::start("a", &a_home)?;
    let b = match &limits.wrapper {
        Some(wrapper) => NodeProc::start_wrapped("b (Pi-class)", &b_home, wrapper)?,
        None => NodeProc::start("b", &b_home)?,
    };
    let nodes = [&a, &b];
    let before = sample_all(&nodes)?;
    let started = Instant::now();
    let report = b.sync_with(&a);
    let wall = started.elapsed().as_secs_f64();
    let settled = report.is_ok() && wait_quiet(&nodes, SETTLE).is_ok();
    let d = delta(&before, &nodes)?;
    let b_after = b.sample()?;
    let b_cpu = b_after.cpu_s - before[1].cpu_s;
    let (mem_peak, failcnt, oom_kills) = match limits.version {
        1 => (
            read_cgroup(limits.memory.as_ref(), "memory.max_usage_in_bytes", None),
            read_cgroup(limits.memory.as_ref(), "memory.failcnt", None),
            read_cgroup(
                limits.memory.as_ref(),
                "memory.oom_control",
                Some("oom_kill"),
            ),
        ),
        2 => (
            read_cgroup(limits.memory.as_ref(), "memory.peak", None),
            read_cgroup(limits.memory.as_ref(), "memory.events", Some("max")),
            read_cgroup(limits.memory.as_ref(), "memory.events", Some("oom_kill")),
        ),
        _ => (None, None, None),
    };
    let (throttled, throttled_s) = match limits.version {
        1 => (
            read_cgroup(limits.cpu.as_ref(), "cpu.stat", Some("nr_throttled")),
            read_cgroup(limits.cpu.as_ref(), "cpu.stat", Some("throttled_time"))
                .map(|ns| ns as f64 / 1e9),
        ),
        2 => (
            read_cgroup(limits.cpu.as_ref(), "cpu.stat", Some("nr_throttled")),
            read_cgroup(limits.cpu.as_ref(), "cpu.stat", Some("throttled_usec"))
                .map(|us| us as f64 / 1e6),
        ),
        _ => (None, None),
    };
    let (mode_used, held) = (limits.mode, limits.version > 0);
    a.stop()?;
    b.stop()?;
    drop(limits);
    let mut row = bench.row("initial sync (Pi-class)", &Default::default());
    row.measured(&d, wall);
    row.peak_rss_bytes = b_after.peak_rss;
    row.store_bytes = dir_size(&b_home.join("store"));
    let complete = match &report {
        Ok(r) => r["complete"].as_bool().unwrap_or(false),
        Err(_) => false,
    };
    row.converged = settled && complete && covers(&a_home, &b_home)?;
    row.put("mode", mode_used);
    row.put("receiver_cpu_s", b_cpu);
    row.put("receiver_peak_rss_bytes", b_after.peak_rss);
    row.put("cgroup_memory_peak_bytes", mem_peak);
    row.put("cgroup_memory_limit_hits", failcnt);
    row.put("cgroup_oom_kills", oom_kills);
    row.put("cpu_throttled_periods", throttled);
    row.put("cpu_throttled_s", throttled_s);
    row.put(
        "cpu_quota_share",
        CPU_QUOTA_US as f64 / CPU_PERIOD_US as f64,
    );
    row.put("memory_limit_bytes", MEMORY_LIMIT);
    if let Err(e) = &report {
        row.put("error", format!("{e:#}"));
    }
    row.target(
        &format!(
            "{} designs sync completely {}",
            bench.settings.designs,
            if held {
                "under 30% of one core and 512 MB"
            } else {
                "on one core (taskset; no quota)"
            }
        ),
        row.converged,
        format!(
            "{:.1} s wall, receiver {b_cpu:.1} CPU s, peak RSS {}{}",
            wall,
            human(b_after.peak_rss),
            mem_peak.map_or(String::new(), |p| format!(
                ", cgroup peak {} (page cache included)",
                human(p)
            ))
        ),
    );
    if !held {
        row.target(
            "receiver peak RSS ≤ 512 MB (checked after the fact: no limit applied)",
            b_after.peak_rss <= MEMORY_LIMIT,
            human(b_after.peak_rss),
        );
    }
    bench.discard(&a_home);
    bench.discard(&b_home);
    Ok(row)
}
