//! Catch-up sync between two nodes: a fresh node joining, an in-sync reconnect, and two
//! nodes that each edited while apart.
//!
//! ```text
//!   B ──dial, Sync──▶ A        both pull from each other on connect;
//!                              B's `sync` returns when its pulls are done
//! ```

use super::{covers, delta, open, sample_all, Bench};
use crate::node_proc::{dir_size, wait_quiet, NodeProc};
use crate::profile::breakdown;
use crate::references::{compare, AutomergeStart};
use crate::report::{human, Row};
use crate::rng::Rng;
use crate::text;
use anyhow::Result;
use hedgerow_node::api::{self, Request};
use hedgerow_protocol::charter::{CharterAction, Role};
use hedgerow_protocol::schema::{self, DocKind, Edit};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest the nodes may keep syncing after the `sync` call returned.
const SETTLE: Duration = Duration::from_secs(300);

/// Runs B's sync with A and measures it; returns the row filled with what the nodes measured.
fn measure_sync(
    bench: &Bench,
    scenario: &str,
    a_home: &Path,
    b_home: &Path,
    start: AutomergeStart,
) -> Result<Row> {
    let refs = compare(&mut open(a_home)?, &mut open(b_home)?, start)?;
    let a_to_b = breakdown(&mut open(a_home)?, &mut open(b_home)?)?;
    let b_to_a = breakdown(&mut open(b_home)?, &mut open(a_home)?)?;
    let mut row = bench.row(scenario, &refs);
    row.put("payloads_a_to_b", serde_json::to_value(&a_to_b)?);
    row.put("payloads_b_to_a", serde_json::to_value(&b_to_a)?);
    row.put("docs_differing", refs.docs_differing);
    row.put("changes_lacked", refs.changes_lacked);
    row.put(
        "automerge_bytes_differing_docs",
        refs.automerge_bytes_differing,
    );
    let a = NodeProc::start("a", a_home)?;
    let b = NodeProc::start("b", b_home)?;
    let nodes = [&a, &b];
    let before = sample_all(&nodes)?;
    let started = Instant::now();
    let report = b.sync_with(&a)?;
    let wall = started.elapsed().as_secs_f64();
    wait_quiet(&nodes, SETTLE)?;
    let d = delta(&before, &nodes)?;
    row.measured(&d, wall);
    row.put("sync_report", report.clone());
    row.put("complete", report["complete"].clone());
    let (a_after, b_after) = (a.sample()?, b.sample()?);
    row.put(
        "node_a",
        node_json(a_after.cpu_s - before[0].cpu_s, a_after.peak_rss),
    );
    row.put(
        "node_b",
        node_json(b_after.cpu_s - before[1].cpu_s, b_after.peak_rss),
    );
    a.stop()?;
    b.stop()?;
    row.store_bytes = dir_size(&b_home.join("store"));
    Ok(row)
}

fn node_json(cpu_s: f64, peak: u64) -> Value {
    serde_json::json!({"cpu_s": cpu_s, "peak_rss_bytes": peak})
}

/// 1. A fresh node joins a commons of N designs (`commons join` semantics, then sync).
pub fn initial(bench: &Bench) -> Result<Row> {
    let a_home = bench.seed_copy("initial-a")?;
    let b_home = bench.fresh_home("initial-b")?;
    api::execute(
        &mut open(&b_home)?,
        Request::Join {
            commons: bench.generated.commons.to_string(),
        },
    )?;
    let mut row = measure_sync(
        bench,
        "initial sync",
        &a_home,
        &b_home,
        AutomergeStart::Fresh,
    )?;
    row.converged = covers(&a_home, &b_home)?;
    // Issue 11: the receiver's CPU against automerge alone loading the same documents.
    let (load_s, loaded) = super::local::automerge_load_reference(&a_home)?;
    let receiver = row
        .extra
        .get("node_b")
        .and_then(|n| n["cpu_s"].as_f64())
        .unwrap_or(0.0);
    let ratio = receiver / load_s.max(1e-9);
    row.put("automerge_load_cpu_s", load_s);
    row.put("automerge_load_docs", loaded);
    row.put("receiver_x_automerge_load", ratio);
    row.target(
        "receiver CPU ≤ 1.3 × automerge loading the same documents from save()",
        ratio <= 1.3,
        format!("{receiver:.2} s vs {load_s:.2} s (×{ratio:.1})"),
    );
    let (bytes, am, limit) = (row.bytes, row.automerge_bytes, row.limit_bytes);
    row.target(
        "bytes ≤ 1.15 × automerge sync",
        bytes as f64 <= 1.15 * am as f64,
        format!(
            "{} vs {} (sync frames alone: {})",
            human(bytes),
            human(am),
            human(row.sync_bytes)
        ),
    );
    row.target(
        "stretch: bytes ≤ automerge sync",
        bytes <= am,
        format!("{} vs {}", human(bytes), human(am)),
    );
    row.target(
        "bytes ≤ 1.25 × limit",
        bytes as f64 <= 1.25 * limit as f64,
        format!(
            "{} vs {} (×{:.2})",
            human(bytes),
            human(limit),
            row.ratio_limit.unwrap_or(0.0)
        ),
    );
    row.target(
        "fewer round trips than automerge",
        row.round_trips < row.automerge_round_trips,
        format!("{} vs {}", row.round_trips, row.automerge_round_trips),
    );
    bench.discard(&a_home);
    bench.discard(&b_home);
    Ok(row)
}

/// 2. Two nodes that already agree reconnect.
pub fn reconnect(bench: &Bench) -> Result<Row> {
    let a_home = bench.seed_copy("reconnect-a")?;
    let b_home = bench.seed_copy("reconnect-b")?;
    let mut row = measure_sync(
        bench,
        "in-sync reconnect",
        &a_home,
        &b_home,
        AutomergeStart::Fresh,
    )?;
    row.converged = covers(&a_home, &b_home)? && covers(&b_home, &a_home)?;
    let setup = crate::setup::measure(&bench.generated.commons)?;
    row.put("libp2p_connection_bytes", setup.connection);
    row.put(
        "libp2p_connection_with_gossip_subscription_bytes",
        setup.with_subscription,
    );
    row.target(
        "1 round trip",
        row.round_trips == 1,
        format!("{} round trips", row.round_trips),
    );
    row.target(
        "under 1 KB (transport)",
        row.bytes < 1024,
        format!(
            "{} at the transport, of which a bare libp2p connection with its gossip subscription is {}; {} of sync frames",
            human(row.bytes),
            human(setup.with_subscription),
            human(row.sync_bytes)
        ),
    );
    row.target(
        "under 1 KB (sync protocol)",
        row.sync_bytes < 1024,
        human(row.sync_bytes),
    );
    bench.discard(&a_home);
    bench.discard(&b_home);
    Ok(row)
}

/// 4. Two nodes each make `divergence_edits` edits while apart, then reconnect.
pub fn divergence(bench: &Bench) -> Result<Row> {
    let a_home = bench.seed_copy("divergence-a")?;
    let b_home = bench.seed_copy("divergence-b")?;
    diverge(bench, &a_home, 1)?;
    diverge(bench, &b_home, 2)?;
    let mut row = measure_sync(bench, "divergence", &a_home, &b_home, AutomergeStart::Fresh)?;
    row.converged = covers(&a_home, &b_home)? && covers(&b_home, &a_home)?;
    row.put("edits_each_side", bench.settings.divergence_edits);
    let (bytes, am, limit) = (row.bytes, row.automerge_bytes, row.limit_bytes);
    row.target(
        "bytes ≤ 1.25 × limit",
        bytes as f64 <= 1.25 * limit as f64,
        format!(
            "{} vs {} (×{:.2}; sync frames ×{:.2})",
            human(bytes),
            human(limit),
            row.ratio_limit.unwrap_or(0.0),
            row.sync_ratio_limit.unwrap_or(0.0)
        ),
    );
    row.target(
        "bytes ≤ automerge sync",
        bytes <= am,
        format!("{} vs {}", human(bytes), human(am)),
    );
    bench.discard(&a_home);
    bench.discard(&b_home);
    Ok(row)
}

/// Makes the side's edits offline, signed by the side's own key: revised steps, new BOM
/// lines, longer prose and notes, on designs and notes chosen by the seed.
fn diverge(bench: &Bench, home: &Path, side: u64) -> Result<()> {
    let mut replicas = open(home)?;
    let mut r = Rng::new(bench.settings.seed).derive("divergence", side);
    let notes = &bench.generated.notes;
    for _ in 0..bench.settings.divergence_edits {
        let (id, kind) = if !notes.is_empty() && r.chance(0.2) {
            (*r.pick(notes), DocKind::Note)
        } else {
            (bench.design(r.below(usize::MAX)), DocKind::Design)
        };
        let state = schema::render(replicas.replica(&id)?.doc(), kind, None);
        let edit = match (kind, r.below(3)) {
            (DocKind::Note, _) => Edit::AppendText {
                field: "body".into(),
                text: format!(" {}", text::chatter(&mut r, 30, 300)),
            },
            (_, 0) => Edit::AddBomLine {
                line: text::bom_line(&mut r),
            },
            (_, 1) => Edit::AppendText {
                field: "how_it_works".into(),
                text: format!(" {}", text::sentence(&mut r)),
            },
            _ => {
                let steps = state["steps"].as_array().cloned().unwrap_or_default();
                let step = r.below(steps.len().max(1));
                let current = steps.get(step).and_then(Value::as_str).unwrap_or_default();
                Edit::EditStep {
                    step: step + 1,
                    text: text::revise(&mut r, current),
                }
            }
        };
        api::execute(
            &mut replicas,
            Request::DocEdit {
                id: id.to_string(),
                kind,
                edits: vec![edit],
            },
        )?;
    }
    Ok(())
}

/// Most extra CPU the stewarded commons' initial sync may cost over the open one (issue 9).
pub const STEWARDED_CPU_BOUND: f64 = 1.05;
/// Most extra bytes the stewarded commons' initial sync may cost over the open one (issue 9).
pub const STEWARDED_BYTES_BOUND: f64 = 1.01;

/// What one initial sync cost, for the open/stewarded comparison.
struct SyncCost {
    delta: super::Delta,
    wall_s: f64,
    cpu_a: f64,
    cpu_b: f64,
    converged: bool,
    docs_b: usize,
    home_b: std::path::PathBuf,
}

impl SyncCost {
    fn json(&self) -> Value {
        serde_json::json!({
            "bytes": self.delta.bytes,
            "sync_bytes": self.delta.sync_bytes,
            "round_trips": self.delta.round_trips,
            "cpu_s": self.delta.cpu_s,
            "cpu_s_serving": self.cpu_a,
            "cpu_s_joining": self.cpu_b,
            "wall_s": self.wall_s,
            "peak_rss_bytes": self.delta.peak_rss,
            "converged": self.converged,
            "docs_received": self.docs_b,
        })
    }
}

/// A fresh node joins the commons `a_home` serves and pulls all of it; only the nodes' own
/// counters are read (no reference computations), so the two sides are measured alike.
fn initial_cost(bench: &Bench, a_home: &Path, name: &str) -> Result<SyncCost> {
    let b_home = bench.fresh_home(name)?;
    api::execute(
        &mut open(&b_home)?,
        Request::Join {
            commons: bench.generated.commons.to_string(),
        },
    )?;
    let a = NodeProc::start("a", a_home)?;
    let b = NodeProc::start("b", &b_home)?;
    let nodes = [&a, &b];
    let before = sample_all(&nodes)?;
    let started = Instant::now();
    b.sync_with(&a)?;
    let wall_s = started.elapsed().as_secs_f64();
    wait_quiet(&nodes, SETTLE)?;
    let d = delta(&before, &nodes)?;
    let (a_after, b_after) = (a.sample()?, b.sample()?);
    a.stop()?;
    b.stop()?;
    let converged = covers(a_home, &b_home)?;
    let docs_b = open(&b_home)?
        .store()
        .doc_ids(&bench.generated.commons)?
        .len();
    Ok(SyncCost {
        delta: d,
        wall_s,
        cpu_a: a_after.cpu_s - before[0].cpu_s,
        cpu_b: b_after.cpu_s - before[1].cpu_s,
        converged,
        docs_b,
        home_b: b_home,
    })
}

/// Builds the stewarded twin of the generated commons in `home`: its creator founds the
/// charter and adds every other generating author as a member (through the node code
/// `commons role` runs, each op signed by the creator's own key), then the seed's documents
/// arrive through bundle import, admitted against that charter like any ingest.
fn steward(bench: &Bench, home: &Path) -> Result<()> {
    let g = &bench.generated;
    // The home signs as the commons' creator: `Found` is only theirs to write.
    std::fs::write(home.join("device.key"), g.creator_secret)?;
    let mut replicas = open(home)?;
    replicas.store().put_commons(&g.genesis)?;
    replicas.write_charter_op(&g.commons, CharterAction::Found { private: false })?;
    for person in &g.authors[1..] {
        api::execute(
            &mut replicas,
            Request::CommonsRole {
                commons: Some(g.commons.to_string()),
                person: person.to_string(),
                role: Role::Member,
            },
        )?;
    }
    let bundle = std::path::absolute(home.join("seed.hrb"))?;
    api::execute(
        &mut open(bench.seed_home())?,
        Request::BundleExport {
            path: bundle.display().to_string(),
            commons: vec![g.commons.to_string()],
            for_summary: None,
            with_files: false,
        },
    )?;
    api::execute(
        &mut replicas,
        Request::BundleImport {
            path: bundle.display().to_string(),
            commons: Vec::new(),
            all_commons: true,
        },
    )?;
    replicas.commit()?;
    std::fs::remove_file(&bundle)?;
    Ok(())
}

/// 1b. The same initial sync, of the same designs, in a stewarded commons whose charter lists
/// every author: what membership checks cost on every ingest, next to the open commons.
pub fn stewarded_initial(bench: &Bench) -> Result<Row> {
    let open_a = bench.seed_copy("stewarded-open-a")?;
    let stewarded_a = bench.fresh_home("stewarded-a")?;
    steward(bench, &stewarded_a)?;
    // Both servers hold every design; a charter that hid or held any would show here.
    anyhow::ensure!(
        covers(&open_a, &stewarded_a)?,
        "the stewarded twin does not hold every document of the open commons"
    );
    let open_cost = initial_cost(bench, &open_a, "stewarded-open-b")?;
    let cost = initial_cost(bench, &stewarded_a, "stewarded-b")?;
    let mut row = bench.row("initial sync, stewarded", &Default::default());
    row.measured(&cost.delta, cost.wall_s);
    row.store_bytes = dir_size(&cost.home_b.join("store"));
    row.converged = open_cost.converged && cost.converged;
    row.put("open", open_cost.json());
    row.put("stewarded", cost.json());
    row.put("members", bench.generated.authors.len());
    let cpu_ratio = cost.delta.cpu_s / open_cost.delta.cpu_s.max(1e-9);
    let bytes_ratio = cost.delta.bytes as f64 / open_cost.delta.bytes.max(1) as f64;
    row.put("cpu_ratio_stewarded_open", cpu_ratio);
    row.put("bytes_ratio_stewarded_open", bytes_ratio);
    row.put(
        "wall_ratio_stewarded_open",
        cost.wall_s / open_cost.wall_s.max(1e-9),
    );
    row.target(
        "CPU ≤ 1.05 × open commons",
        cpu_ratio <= STEWARDED_CPU_BOUND,
        format!(
            "×{cpu_ratio:.3} (bound ×{STEWARDED_CPU_BOUND}): {:.2} s vs {:.2} s of both nodes",
            cost.delta.cpu_s, open_cost.delta.cpu_s
        ),
    );
    row.target(
        "bytes ≤ 1.01 × open commons",
        bytes_ratio <= STEWARDED_BYTES_BOUND,
        format!(
            "×{bytes_ratio:.4} (bound ×{STEWARDED_BYTES_BOUND}): {} vs {}",
            human(cost.delta.bytes),
            human(open_cost.delta.bytes)
        ),
    );
    for home in [&open_a, &stewarded_a, &open_cost.home_b, &cost.home_b] {
        bench.discard(home);
    }
    Ok(row)
}
