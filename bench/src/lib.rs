//! Hedgerow's benchmarks: what sync costs, against the least any sync could cost and against
//! automerge's own sync protocol, on realistic generated commons.
//!
//! - [`rng`], [`text`], [`generate`]: the seeded generator of commons, through the real library.
//! - [`node_proc`]: nodes under test, each a real `serve` engine in its own process.
//! - [`profile`]: where our sync bytes go, part by part.
//! - [`references`]: the limit, the signed envelopes, and automerge's sync, on the same data.
//! - [`scenarios`]: the six scenarios of the issue.
//! - [`setup`]: what a bare libp2p connection costs, to read the transport figures by.
//! - [`report`]: rows, targets, the markdown table and growth.
//! - [`web`]: the web page's latency and weight (`hedgerow-bench web`).
//!
//! The binary (`cargo run --release -p hedgerow-bench`) runs every scenario at every size.

pub mod blob_reference;
pub mod blob_verify;
pub mod generate;
pub mod node_proc;
pub mod profile;
pub mod references;
pub mod report;
pub mod rng;
pub mod scenarios;
pub mod setup;
pub mod soak;
pub mod text;
pub mod web;

use anyhow::Result;
use report::{human, Row};
use scenarios::{idle, live, local, pi, pull, Bench, Settings};
use std::path::Path;

/// Every scenario, by the name `--scenarios` takes.
pub const SCENARIOS: &[&str] = &[
    "initial",
    "stewarded",
    "reconnect",
    "edit",
    "divergence",
    "fanout",
    "apply",
    "cold",
    "idle",
    "pi",
];

/// Scenarios a run without `--scenarios` leaves out: the Pi-class run (`--pi`) runs alone.
pub const NOT_BY_DEFAULT: &[&str] = &["pi"];

/// `--scenarios scale`: what issue 11 asks of a 20,000-design commons.
pub const SCALE: &[&str] = &["initial", "reconnect", "edit", "cold", "idle"];

/// Runs the selected scenarios at one size in `root`; failures become rows marked with their error.
pub fn run_size(
    root: &Path,
    settings: Settings,
    only: &[String],
    reuse: Option<&Path>,
) -> Result<(Vec<Row>, String)> {
    let bench = match reuse {
        Some(seed) => {
            eprintln!(
                "[{}] reusing the commons at {}…",
                settings.designs,
                seed.display()
            );
            Bench::reuse(root, settings, seed)?
        }
        None => {
            eprintln!("[{}] generating the commons…", settings.designs);
            Bench::prepare(root, settings)?
        }
    };
    let s = &bench.generated.stats;
    let summary = format!(
        "{} designs ({} forks), {} events, {} notes, {} profiles by {} authors: {} documents, {} signed changes ({} made concurrently), {} of signed envelopes; generated in {:.1} s ({:.1} CPU s)",
        s.designs, s.forks, s.events, s.notes, s.profiles, s.authors, bench.docs, s.changes, s.concurrent_changes, human(s.envelope_bytes as u64), s.seconds, s.cpu_s
    );
    eprintln!("[{}] {summary}", settings.designs);
    let mut rows = Vec::new();
    type Scenario = fn(&Bench) -> Result<Row>;
    let all: [(&str, Scenario); 10] = [
        ("initial", pull::initial),
        ("stewarded", pull::stewarded_initial),
        ("reconnect", pull::reconnect),
        ("edit", live::one_edit),
        ("divergence", pull::divergence),
        ("fanout", live::fan_out),
        ("apply", local::apply_verify),
        ("cold", local::cold_start),
        ("idle", idle::idle),
        ("pi", |bench| pi::pi_initial(bench, bench.settings.pi_mode)),
    ];
    for (name, scenario) in all {
        let chosen = match only.is_empty() {
            true => !NOT_BY_DEFAULT.contains(&name),
            false => only.iter().any(|o| o == name),
        };
        if !chosen {
            continue;
        }
        eprintln!("[{}] {name}…", settings.designs);
        let mut row = match scenario(&bench) {
            Ok(row) => row,
            Err(e) => {
                eprintln!("[{}] {name} FAILED: {e:#}", settings.designs);
                let mut row = bench.row(name, &Default::default());
                row.converged = false;
                row.put("error", format!("{e:#}"));
                row
            }
        };
        if rows.is_empty() {
            row.put("commons", generate::stats_json(&bench.generated));
        }
        eprintln!(
            "[{}] {}: {} on the wire ({} sync), limit {}, automerge {}, {} RTs, {:.3} s",
            settings.designs,
            row.scenario,
            human(row.bytes),
            human(row.sync_bytes),
            human(row.limit_bytes),
            human(row.automerge_bytes),
            row.round_trips,
            row.wall_s
        );
        rows.push(row);
    }
    node_memory_target(&mut rows, settings.designs);
    Ok((rows, summary))
}

/// The memory target: every node process (and the cold-start process) stays under 300 MB.
fn node_memory_target(rows: &mut [Row], designs: usize) {
    // Every node process and the cold-start process; not the apply-and-verify process, which
    // holds the whole commons' changes in memory at once to time them.
    let nodes = || rows.iter().filter(|r| r.scenario != "apply-and-verify");
    let peak = nodes().map(|r| r.peak_rss_bytes).max().unwrap_or(0);
    let worst = nodes()
        .max_by_key(|r| r.peak_rss_bytes)
        .map(|r| r.scenario.clone())
        .unwrap_or_default();
    if let Some(row) = rows.iter_mut().find(|r| r.scenario == "cold start") {
        row.target(
            &format!("node peak memory under 300 MB holding {designs} designs (target at 5,000)"),
            peak < 300_000_000,
            format!("highest node peak {} (in {worst})", human(peak)),
        );
    }
}
