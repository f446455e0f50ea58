//! An idle node: it holds the whole commons, serves it, and is in sync with a connected peer
//! (issue 11: at most 100 MB resident holding 5,000 designs).
//!
//! Two nodes holding copies of the seed store connect and sync (nothing to exchange), then
//! stay connected while the resident memory of each is sampled; the row's figure is the
//! highest resident set seen, with where it lies (anonymous memory, mapped files) beside it.

use super::{delta, sample_all, Bench};
use crate::node_proc::{dir_size, proc_memory, wait_quiet, NodeProc, ProcMemory};
use crate::references::References;
use crate::report::{human, Row};
use anyhow::Result;
use std::time::{Duration, Instant};

/// The idle target at 5,000 designs, bytes.
pub const IDLE_TARGET: u64 = 100 * 1000 * 1000;
/// How long the nodes are watched once in sync.
const WATCH: Duration = Duration::from_secs(3);
/// How often.
const EVERY: Duration = Duration::from_millis(100);
/// Longest the in-sync exchange may take to settle.
const SETTLE: Duration = Duration::from_secs(120);

/// 8. Idle memory of a node holding the commons, serving and in sync.
pub fn idle(bench: &Bench) -> Result<Row> {
    let a_home = bench.seed_copy("idle-a")?;
    let b_home = bench.seed_copy("idle-b")?;
    let a = NodeProc::start("a", &a_home)?;
    let b = NodeProc::start("b", &b_home)?;
    let nodes = [&a, &b];
    let before = sample_all(&nodes)?;
    let started = Instant::now();
    let report = b.sync_with(&a)?;
    let wall = started.elapsed().as_secs_f64();
    wait_quiet(&nodes, SETTLE)?;
    let d = delta(&before, &nodes)?;
    let mut highest = [ProcMemory::default(); 2];
    let watch = Instant::now();
    while watch.elapsed() < WATCH {
        for (node, high) in nodes.iter().zip(highest.iter_mut()) {
            let now = proc_memory(node.pid())?;
            if now.rss > high.rss {
                *high = now;
            }
        }
        std::thread::sleep(EVERY);
    }
    let connected = a.connected()? > 0 && b.connected()? > 0;
    a.stop()?;
    b.stop()?;
    let mut row = bench.row("idle node", &References::default());
    row.measured(&d, wall);
    row.store_bytes = dir_size(&a_home.join("store"));
    row.converged = connected && report["complete"].as_bool().unwrap_or(false);
    let worst = highest.iter().map(|m| m.rss).max().unwrap_or(0);
    row.put("serving_node", serde_json::to_value(highest[0])?);
    row.put("syncing_node", serde_json::to_value(highest[1])?);
    row.put("idle_rss_bytes", worst);
    row.target(
        &format!(
            "idle node holding {} designs, serving and in sync, ≤ 100 MB RSS (target at 5,000)",
            bench.settings.designs
        ),
        worst <= IDLE_TARGET,
        format!(
            "{} resident (serving node {}: {} anonymous, {} file-backed; peer {}), peak during the reconnect {}",
            human(worst),
            human(highest[0].rss),
            human(highest[0].anon),
            human(highest[0].file),
            human(highest[1].rss),
            human(row.peak_rss_bytes)
        ),
    );
    bench.discard(&a_home);
    bench.discard(&b_home);
    Ok(row)
}
