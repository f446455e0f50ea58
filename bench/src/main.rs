//! `hedgerow-bench`: runs the benchmarks and prints a markdown table (and `--json PATH`).
//!
//! The hidden modes `node`, `local-apply`, `local-receive` and `local-cold-start` are how the benchmark runs
//! nodes and local measurements in child processes of itself.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hedgerow_bench::report::{commons_lines, markdown, Row};
use hedgerow_bench::scenarios::{self, local, Settings};
use hedgerow_bench::{node_proc, run_size, soak, SCALE, SCENARIOS};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Hedgerow sync benchmarks against the limit and automerge's sync protocol")]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Small and fast, for CI: 100 designs, 5 fan-out nodes, 400 changes replayed.
    #[arg(long)]
    quick: bool,
    /// Commons sizes in designs (default 100,500,2000,5000; with --quick 100).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Nodes in the fan-out mesh (default 20; with --quick 5).
    #[arg(long)]
    fanout_nodes: Option<usize>,
    /// Edits each side makes while apart in the divergence scenario.
    #[arg(long, default_value_t = 50)]
    divergence_edits: usize,
    /// Run only these scenarios (initial, stewarded, reconnect, edit, divergence, fanout,
    /// apply, cold, idle, pi; `scale` is initial,reconnect,edit,cold,idle).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// The Pi-class run alone: a fresh node pulls the commons (default 2,000 designs) under 30%
    /// of one core and 512 MB (cgroups as root, else pinned to one core by taskset).
    #[arg(long)]
    pi: bool,
    /// How `--pi` holds the receiving node: auto (cgroups if it can create them, else taskset),
    /// cgroup, or taskset.
    #[arg(long, default_value = "auto")]
    pi_mode: scenarios::pi::PiMode,
    /// Write the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the markdown here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Work directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keep the generated seed homes (under the work directory) for profiling.
    #[arg(long)]
    keep: bool,
    /// Reuse the seed home an earlier run generated (`--keep`) instead of generating (one size).
    #[arg(long)]
    reuse_seed: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Mode {
    /// Run one node on a home until stdin closes.
    #[command(hide = true)]
    Node {
        #[arg(long)]
        home: PathBuf,
        /// Per-address limits out of reach (every soak peer shares 127.0.0.1).
        #[arg(long)]
        soak: bool,
    },
    /// Hostile peers against three honest nodes for minutes: honest convergence time and
    /// peak memory (not part of CI; see the README).
    Soak {
        /// Hostile peers at once.
        #[arg(long, default_value_t = 40)]
        hostile: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 180)]
        seconds: u64,
        /// Seconds between honest edits.
        #[arg(long, default_value_t = 5)]
        edit_every: u64,
    },
    /// Measure apply-and-verify throughput on a home's store.
    #[command(hide = true)]
    LocalApply {
        #[arg(long)]
        home: PathBuf,
        #[arg(long, default_value_t = usize::MAX)]
        cap: usize,
        /// Replay by one path only (`bundle` or `envelope`), for profiling it alone.
        #[arg(long)]
        only: Option<String>,
    },
    /// Receive every document of a seed home into a fresh home on one thread (no network),
    /// with automerge's own parts of that work timed beside it.
    #[command(hide = true)]
    LocalReceive {
        #[arg(long)]
        home: PathBuf,
        /// Where to create the receiving home (must not exist).
        #[arg(long)]
        into: PathBuf,
    },
    /// Measure cold start on a home's store.
    #[command(hide = true)]
    LocalColdStart {
        #[arg(long)]
        home: PathBuf,
    },
    /// Loopback throughput references for the blob transfer: plain libp2p frames (same
    /// transport, no verification, nothing written) and a raw TCP copy, in MB/s.
    BlobReference {
        /// Megabytes (2^20 bytes) to move.
        #[arg(long, default_value_t = 500)]
        mb: u64,
    },
    /// `hedgerow verify` of MB MiB of attachment blobs against BLAKE3's own hashing speed of
    /// the same files, in one run (prints JSON).
    BlobVerify {
        /// Mebibytes of blobs.
        #[arg(long, default_value_t = 1024)]
        mb: u64,
        /// The hedgerow binary (default: beside this one).
        #[arg(long)]
        hedgerow: Option<PathBuf>,
    },
    /// The web page's speed: a generated commons served by `hedgerow serve --web`, the design
    /// list, a search and a design page each asked REQUESTS times (median, p95, bytes).
    Web {
        /// Commons sizes in designs.
        #[arg(long, value_delimiter = ',', default_value = "500,5000")]
        designs: Vec<usize>,
        /// Requests per page.
        #[arg(long, default_value_t = 50)]
        requests: usize,
        /// The hedgerow binary (default: beside this one).
        #[arg(long)]
        hedgerow: Option<PathBuf>,
    },
    /// Print the markdown of an earlier run's `--json` file again.
    Render {
        /// The JSON file.
        json: PathBuf,
    },
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(dir) = &cli.workdir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the work directory {}", dir.display()))?;
    }
    match &cli.mode {
        Some(Mode::Node { home, soak }) => {
            node_proc::run_node(home, *soak)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::Soak {
            hostile,
            seconds,
            edit_every,
        }) => {
            let settings = soak::SoakSettings {
                hostile: *hostile,
                duration: std::time::Duration::from_secs(*seconds),
                edit_every: std::time::Duration::from_secs((*edit_every).max(1)),
            };
            let temp = tempfile::Builder::new()
                .prefix("hedgerow-soak-")
                .tempdir_in(cli.workdir.clone().unwrap_or_else(std::env::temp_dir))?;
            let report = soak::run(temp.path(), settings)?;
            println!("{}", soak::markdown(&settings, &report));
            if let Some(path) = &cli.json {
                std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
            }
            return Ok(if report.converged == report.edits {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Some(Mode::LocalApply { home, cap, only }) => {
            println!("{}", local::apply_child(home, *cap, only.as_deref())?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::LocalReceive { home, into }) => {
            println!("{}", scenarios::receive::receive_child(home, into)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::LocalColdStart { home }) => {
            println!("{}", local::cold_start_child(home)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::BlobReference { mb }) => {
            let t = hedgerow_bench::blob_reference::measure(mb << 20)?;
            println!("{}", serde_json::to_string(&t)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::BlobVerify { mb, hedgerow }) => {
            let bin = match hedgerow {
                Some(bin) => bin.clone(),
                None => std::env::current_exe()?.with_file_name("hedgerow"),
            };
            let temp = tempfile::Builder::new()
                .prefix("hedgerow-verify-")
                .tempdir_in(cli.workdir.clone().unwrap_or_else(std::env::temp_dir))?;
            let figures = hedgerow_bench::blob_verify::measure(&bin, *mb, temp.path())?;
            println!("{}", serde_json::to_string(&figures)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::Web {
            designs,
            requests,
            hedgerow,
        }) => {
            let bin = match hedgerow {
                Some(bin) => bin.clone(),
                None => std::env::current_exe()?.with_file_name("hedgerow"),
            };
            let mut runs = Vec::new();
            for &size in designs {
                let temp = tempfile::Builder::new()
                    .prefix("hedgerow-web-")
                    .tempdir_in(cli.workdir.clone().unwrap_or_else(std::env::temp_dir))?;
                runs.push(hedgerow_bench::web::measure(
                    &bin,
                    size,
                    cli.seed,
                    *requests,
                    temp.path(),
                )?);
                if let Some(path) = &cli.json {
                    std::fs::write(path, serde_json::to_vec_pretty(&runs)?)?;
                }
            }
            println!("{}", hedgerow_bench::web::markdown(&runs));
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::Render { json }) => {
            let rows: Vec<Row> = serde_json::from_slice(&std::fs::read(json)?)?;
            println!("{}", document(&rows, cli.seed));
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let mut chosen: Vec<String> = Vec::new();
    for name in &cli.scenarios {
        if name == "scale" {
            chosen.extend(SCALE.iter().map(|s| s.to_string()));
            continue;
        }
        anyhow::ensure!(
            SCENARIOS.contains(&name.as_str()),
            "unknown scenario `{name}`; choose from {SCENARIOS:?} or `scale`"
        );
        chosen.push(name.clone());
    }
    if cli.pi {
        chosen = vec!["pi".to_string()];
    }
    let sizes = match (cli.sizes.is_empty(), cli.quick, cli.pi) {
        (false, _, _) => cli.sizes.clone(),
        (true, _, true) => vec![2000],
        (true, true, false) => vec![100],
        (true, false, false) => vec![100, 500, 2000, 5000],
    };
    let fanout_nodes = cli.fanout_nodes.unwrap_or(if cli.quick { 5 } else { 20 });
    let temp = tempfile::Builder::new()
        .prefix("hedgerow-bench-")
        .tempdir_in(cli.workdir.clone().unwrap_or_else(std::env::temp_dir))?;
    let temp_path = temp.path().to_path_buf();
    if cli.keep {
        let _ = temp.keep();
    }
    let mut rows: Vec<Row> = Vec::new();
    for designs in sizes {
        let root = temp_path.join(format!("n{designs}"));
        std::fs::create_dir_all(&root)?;
        let settings = Settings {
            designs,
            seed: cli.seed,
            fanout_nodes,
            divergence_edits: cli.divergence_edits,
            apply_cap: if cli.quick { 400 } else { 20_000 },
            pi_mode: cli.pi_mode,
        };
        let (size_rows, _) = run_size(&root, settings, &chosen, cli.reuse_seed.as_deref())?;
        rows.extend(size_rows);
        if cli.keep {
            eprintln!("[{designs}] kept {}", root.display());
        } else {
            let _ = std::fs::remove_dir_all(&root);
        }
        if let Some(path) = &cli.json {
            std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
        }
    }
    let text = document(&rows, cli.seed);
    println!("{text}");
    if let Some(path) = &cli.markdown {
        std::fs::write(path, &text)?;
    }
    let failed = rows.iter().any(|r| r.extra.contains_key("error"));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The markdown of a run: the commons generated, then the tables.
fn document(rows: &[Row], seed: u64) -> String {
    format!(
        "Commons (seed {seed}):\n\n{}\n\n{}",
        commons_lines(rows).join("\n"),
        markdown(rows)
    )
}
