//! Live propagation by gossip between connected nodes.
//!
//! ```text
//!   one edit:   A ──gossip──▶ B                       (connected, in sync)
//!
//!   fan-out:    0 ─ 1 ─ 2 ─ … ─ n-1 ─ 0               (a ring, plus chords
//!               0 ─ n/2,  2 ─ n/2+2, …                  between opposite nodes)
//! ```
//!
//! The edit is made on a running node through its control socket, exactly as
//! `hedgerow design edit` does; arrival is when the receiver's `live_received` counter moves.

use super::{covers, delta, sample_all, Bench};
use crate::node_proc::{dir_size, wait_quiet, NodeProc};
use crate::references::{compare, AutomergeStart};
use crate::report::{human, Row};
use crate::rng::Rng;
use crate::text;
use anyhow::{anyhow, bail, Result};
use hedgerow_node::api::Request;
use hedgerow_protocol::schema::{DocKind, Edit};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Time given to gossipsub to build its mesh after the connections are made.
const MESH_SETTLE: Duration = Duration::from_millis(2500);
/// Background traffic per node and second below which the nodes count as idle.
const IDLE_BYTES_PER_NODE: u64 = 200;
/// Longest the nodes are given to become idle.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// Time after the last arrival during which trailing gossip (IHAVE, IDONTWANT) is still counted.
const LINGER: Duration = Duration::from_millis(1000);
/// Longest an edit may take to arrive before it counts as lost.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(15);
/// The fan-out target: every node has the edit within this.
const FAN_OUT_TARGET: Duration = Duration::from_secs(2);

/// Waits until the nodes' background traffic (discovery, mesh building) has died down:
/// under `IDLE_BYTES_PER_NODE` a second per node, for at least `MESH_SETTLE`.
/// Returns what moved meanwhile and how long it took.
fn settle(nodes: &[&NodeProc]) -> Result<(super::Delta, f64)> {
    let start = sample_all(nodes)?;
    let clock = Instant::now();
    loop {
        let before = sample_all(nodes)?;
        std::thread::sleep(Duration::from_secs(1));
        let moved = delta(&before, nodes)?;
        let quiet = moved.bytes < IDLE_BYTES_PER_NODE * nodes.len() as u64;
        if (quiet && clock.elapsed() >= MESH_SETTLE) || clock.elapsed() > SETTLE_LIMIT {
            return Ok((delta(&start, nodes)?, clock.elapsed().as_secs_f64()));
        }
    }
}

/// A one-step revision of a design, made through the node like `design edit --edit-step`.
fn edit_request(node: &NodeProc, bench: &Bench, index: usize) -> Result<Request> {
    let id = bench.design(index * 7919);
    let shown = node.call(&Request::DocShow {
        id: id.to_string(),
        kind: DocKind::Design,
        version: None,
    })?;
    let steps = shown["steps"].as_array().cloned().unwrap_or_default();
    let mut r = Rng::new(bench.settings.seed).derive("live-edit", index as u64);
    let step = r.below(steps.len().max(1));
    let current = steps.get(step).and_then(Value::as_str).unwrap_or_default();
    Ok(Request::DocEdit {
        id: id.to_string(),
        kind: DocKind::Design,
        edits: vec![Edit::EditStep {
            step: step + 1,
            text: text::revise(&mut r, current),
        }],
    })
}

/// Seconds from `t0` until `node` has applied a live change beyond `base`.
fn wait_arrival(node: &NodeProc, base: u64, t0: Instant) -> Result<f64> {
    loop {
        let status = node.status()?;
        if status["counters"]["live_received"].as_u64().unwrap_or(0) > base {
            return Ok(t0.elapsed().as_secs_f64());
        }
        if t0.elapsed() > ARRIVAL_TIMEOUT {
            bail!(
                "{}: the edit did not arrive within {ARRIVAL_TIMEOUT:?}",
                node.name
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// 3. A single change to one design reaches a connected peer.
pub fn one_edit(bench: &Bench) -> Result<Row> {
    let a_home = bench.seed_copy("edit-a")?;
    let b_home = bench.seed_copy("edit-b")?;
    let a = NodeProc::start("a", &a_home)?;
    let b = NodeProc::start("b", &b_home)?;
    let nodes = [&a, &b];
    b.sync_with(&a)?;
    wait_quiet(&nodes, Duration::from_secs(60))?;
    settle(&nodes)?;
    let request = edit_request(&a, bench, 1)?;
    let before = sample_all(&nodes)?;
    let t0 = Instant::now();
    a.call(&request)?;
    let latency = wait_arrival(&b, before[1].live_received, t0)?;
    std::thread::sleep(LINGER);
    let d = delta(&before, &nodes)?;
    a.stop()?;
    b.stop()?;
    let refs = compare(
        &mut super::open(&a_home)?,
        &mut super::open(bench.seed_home())?,
        AutomergeStart::Connected,
    )?;
    let mut row = bench.row("one edit", &refs);
    row.measured(&d, latency);
    row.store_bytes = dir_size(&b_home.join("store"));
    row.converged = covers(&a_home, &b_home)?;
    row.put("latency_ms", latency * 1e3);
    row.put("changes", refs.changes_lacked);
    let bound = refs.envelope_bytes + 300;
    row.target(
        "bytes ≤ envelope + 300 per peer reached",
        row.bytes <= bound,
        format!(
            "{} vs {} + 300 B (gossip payload {})",
            human(row.bytes),
            human(refs.envelope_bytes),
            human(row.gossip_bytes)
        ),
    );
    bench.discard(&a_home);
    bench.discard(&b_home);
    Ok(row)
}

/// The sparse mesh: a ring plus chords between every other node and its opposite.
pub fn mesh_edges(n: usize) -> Vec<(usize, usize)> {
    let mut edges: Vec<(usize, usize)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
    if n > 3 {
        for i in (0..n / 2).step_by(2) {
            edges.push((i, i + n / 2));
        }
    }
    edges.retain(|(a, b)| a != b);
    edges
}

/// 5. One edit reaches every node of a sparse mesh.
pub fn fan_out(bench: &Bench) -> Result<Row> {
    let n = bench.settings.fanout_nodes.max(2);
    let mut homes = Vec::with_capacity(n);
    let mut procs = Vec::with_capacity(n);
    for i in 0..n {
        let home = bench.seed_copy(&format!("fanout-{i}"))?;
        procs.push(NodeProc::start(&format!("node-{i}"), &home)?);
        homes.push(home);
    }
    let nodes: Vec<&NodeProc> = procs.iter().collect();
    let edges = mesh_edges(n);
    for (i, j) in &edges {
        nodes[*i].sync_with(nodes[*j])?;
    }
    wait_quiet(&nodes, Duration::from_secs(120))?;
    let (discovery, settle_s) = settle(&nodes)?;
    let mut degrees = Vec::with_capacity(n);
    for node in &nodes {
        degrees.push(node.connected()?);
    }
    let request = edit_request(nodes[0], bench, 2)?;
    let before = sample_all(&nodes)?;
    let t0 = Instant::now();
    nodes[0].call(&request)?;
    let arrivals: Vec<Result<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes[1..]
            .iter()
            .zip(&before[1..])
            .map(|(node, b)| scope.spawn(move || wait_arrival(node, b.live_received, t0)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("arrival watcher panicked")))
            })
            .collect()
    });
    std::thread::sleep(LINGER);
    let d = delta(&before, &nodes)?;
    let peak_store = homes
        .iter()
        .map(|h| dir_size(&h.join("store")))
        .max()
        .unwrap_or(0);
    for node in procs {
        node.stop()?;
    }
    let mut latencies: Vec<f64> = arrivals
        .iter()
        .filter_map(|a| a.as_ref().ok().copied())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let reached = latencies.len();
    let slowest = latencies.last().copied().unwrap_or(f64::INFINITY);
    let one = compare(
        &mut super::open(&homes[0])?,
        &mut super::open(bench.seed_home())?,
        AutomergeStart::Connected,
    )?;
    let refs = one.times((n - 1) as u64);
    let mut row = bench.row(&format!("fan-out ({n} nodes)"), &refs);
    row.measured(&d, slowest);
    row.store_bytes = peak_store;
    let mut converged = reached == n - 1;
    for home in &homes[1..] {
        converged &= covers(&homes[0], home)?;
    }
    row.converged = converged;
    row.put("nodes", n);
    row.put("edges", edges.len());
    row.put("reached", reached);
    row.put(
        "latency_ms_median",
        latencies.get(reached / 2).map_or(-1.0, |l| l * 1e3),
    );
    row.put("latency_ms_max", slowest * 1e3);
    row.put("bytes_per_peer", d.bytes / (n as u64 - 1));
    row.put("connections_per_node", serde_json::to_value(&degrees)?);
    row.put("bytes_before_idle", discovery.bytes);
    row.put("seconds_before_idle", settle_s);
    row.put("envelope_bytes_one", one.envelope_bytes);
    row.target(
        &format!("all {} other nodes have the edit within 2 s", n - 1),
        reached == n - 1 && slowest <= FAN_OUT_TARGET.as_secs_f64(),
        format!("{reached} reached, slowest {:.0} ms", slowest * 1e3),
    );
    for home in &homes {
        bench.discard(home);
    }
    Ok(row)
}
