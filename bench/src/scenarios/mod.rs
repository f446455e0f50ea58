//! The scenarios, over the real node code and the real libp2p transport on loopback.
//!
//! Each size gets one generated seed store; every scenario starts from fresh copies of it
//! (each in a home with its own device key), so scenarios never see each other's state.
//!
//! - [`pull`]: initial sync, in-sync reconnect, divergence (catch-up sync between two nodes).
//! - [`live`]: one edit reaching a connected peer, fan-out to a sparse mesh (gossip).
//! - [`local`]: apply-and-verify throughput and cold start, each in a child process.
//! - [`idle`]: the resident memory of a node holding the commons, serving and in sync.
//! - [`pi`]: the initial sync into a node held to 30% of one core and 512 MB (`--pi`).

pub mod idle;
pub mod live;
pub mod local;
pub mod pi;
pub mod pull;
pub mod receive;

use crate::generate::{generate, GenConfig, Generated};
use crate::node_proc::{NodeProc, NodeSample};
use crate::report::Row;
use anyhow::{Context, Result};
use hedgerow_node::home::{Home, LocalProfile};
use hedgerow_node::Replicas;
use hedgerow_protocol::DocId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The settings of one benchmark run at one size.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Designs in the commons.
    pub designs: usize,
    /// Generator seed.
    pub seed: u64,
    /// Nodes in the fan-out mesh.
    pub fanout_nodes: usize,
    /// Edits each side makes while apart in the divergence scenario.
    pub divergence_edits: usize,
    /// Most changes the apply-and-verify scenario replays per path (rates do not depend on N).
    pub apply_cap: usize,
    /// How the Pi-class run holds its receiving node.
    pub pi_mode: pi::PiMode,
}

/// One size's generated commons and the directory scenarios work in.
pub struct Bench {
    /// The settings.
    pub settings: Settings,
    /// The generated commons.
    pub generated: Generated,
    /// Documents in the commons.
    pub docs: u64,
    root: PathBuf,
    seed_home: PathBuf,
}

impl Bench {
    /// Generates the commons into a seed home under `root`.
    pub fn prepare(root: &Path, settings: Settings) -> Result<Bench> {
        let seed_home = root.join("seed");
        let home = Home::init(&seed_home, &profile("Seed node"))?;
        let mut replicas = Replicas::open(&home)?;
        let generated = generate(
            &GenConfig {
                designs: settings.designs,
                seed: settings.seed,
            },
            &mut replicas,
        )?;
        let docs = replicas.store().all_doc_ids()?.len() as u64;
        drop(replicas);
        Ok(Bench {
            settings,
            generated,
            docs,
            root: root.to_path_buf(),
            seed_home,
        })
    }

    /// Reuses a commons an earlier run generated and kept (`--keep`, or a run still going)
    /// at `seed`: the store is copied into `root`; designs and notes are taken in id order
    /// (the generator's creation order is not stored), and the generation counts are unknown.
    pub fn reuse(root: &Path, settings: Settings, seed: &Path) -> Result<Bench> {
        let seed_home = root.join("seed");
        copy_dir(seed, &seed_home).with_context(|| format!("copying {}", seed.display()))?;
        let replicas = open(&seed_home)?;
        let store = replicas.store();
        let genesis = store
            .all_commons()?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no commons in {}", seed.display()))?;
        let commons = genesis.body.id();
        let mut designs = Vec::new();
        let mut notes = Vec::new();
        for id in store.doc_ids(&commons)? {
            match store.summary(&id)?.map(|s| s.kind) {
                Some(hedgerow_protocol::schema::DocKind::Design) => designs.push(id),
                Some(hedgerow_protocol::schema::DocKind::Note) => notes.push(id),
                _ => {}
            }
        }
        let docs = store.all_doc_ids()?.len() as u64;
        drop(replicas);
        let stats = crate::generate::GenStats {
            designs: designs.len(),
            notes: notes.len(),
            ..Default::default()
        };
        Ok(Bench {
            settings,
            generated: Generated {
                commons,
                genesis,
                designs,
                notes,
                authors: Vec::new(),
                creator_secret: [0; 32],
                stats,
            },
            docs,
            root: root.to_path_buf(),
            seed_home,
        })
    }

    /// The seed home (the state every scenario starts from).
    pub fn seed_home(&self) -> &Path {
        &self.seed_home
    }

    /// A new home with its own key and an empty store.
    pub fn fresh_home(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join(name);
        Home::init(&dir, &profile(name))?;
        Ok(dir)
    }

    /// A new home with its own key holding a copy of the seed store.
    pub fn seed_copy(&self, name: &str) -> Result<PathBuf> {
        let dir = self.fresh_home(name)?;
        copy_dir(&self.seed_home.join("store"), &dir.join("store"))
            .with_context(|| format!("copying the seed store for {name}"))?;
        Ok(dir)
    }

    /// Removes a scenario's home to keep the disk in bounds.
    pub fn discard(&self, home: &Path) {
        if home.starts_with(&self.root) && home != self.seed_home {
            let _ = std::fs::remove_dir_all(home);
        }
    }

    /// A row for `scenario` at this size.
    pub fn row(&self, scenario: &str, refs: &crate::references::References) -> Row {
        Row::new(scenario, self.settings.designs, self.docs, refs)
    }

    /// A design id chosen by `index` (deterministic).
    pub fn design(&self, index: usize) -> DocId {
        self.generated.designs[index % self.generated.designs.len()]
    }
}

/// Opens a home's replicas (the node must not be running).
pub fn open(home: &Path) -> Result<Replicas> {
    let home = Home::open(home)?;
    Ok(Replicas::open(&home)?)
}

fn profile(name: &str) -> LocalProfile {
    LocalProfile {
        name: name.to_string(),
        location: String::new(),
        bio: String::new(),
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// What moved between two samples of a set of nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta {
    /// Transport bytes written by all nodes (= bytes on the wire, both directions).
    pub bytes: u64,
    /// Transport bytes read by all nodes (should equal `bytes`).
    pub bytes_in: u64,
    /// Sync frame bytes written by all nodes.
    pub sync_bytes: u64,
    /// Gossip payload bytes published.
    pub gossip_bytes: u64,
    /// The most round trips any one node's pulls took.
    pub round_trips: u64,
    /// CPU seconds of all nodes.
    pub cpu_s: f64,
    /// Highest peak RSS of any node.
    pub peak_rss: u64,
}

/// Samples every node.
pub fn sample_all(nodes: &[&NodeProc]) -> Result<Vec<NodeSample>> {
    nodes.iter().map(|n| n.sample()).collect()
}

/// What moved on `nodes` since `before`.
pub fn delta(before: &[NodeSample], nodes: &[&NodeProc]) -> Result<Delta> {
    let after = sample_all(nodes)?;
    let mut d = Delta::default();
    for (b, a) in before.iter().zip(&after) {
        d.bytes += a.transport_out - b.transport_out;
        d.bytes_in += a.transport_in - b.transport_in;
        d.sync_bytes += a.sync_sent - b.sync_sent;
        d.gossip_bytes += a.gossip_published - b.gossip_published;
        d.round_trips = d.round_trips.max(a.pull_round_trips - b.pull_round_trips);
        d.cpu_s += a.cpu_s - b.cpu_s;
        d.peak_rss = d.peak_rss.max(a.peak_rss);
    }
    Ok(d)
}

impl Row {
    /// Fills in what the nodes measured.
    pub fn measured(&mut self, d: &Delta, wall_s: f64) {
        self.bytes = d.bytes;
        self.sync_bytes = d.sync_bytes;
        self.gossip_bytes = d.gossip_bytes;
        self.round_trips = d.round_trips;
        self.cpu_s = d.cpu_s;
        self.peak_rss_bytes = d.peak_rss;
        self.wall_s = wall_s;
        self.put("transport_bytes_in", d.bytes_in);
        self.finish_ratios();
    }
}

/// Whether every document of `from` is in `to` with the same heads.
pub fn covers(from: &Path, to: &Path) -> Result<bool> {
    let from = open(from)?;
    let to = open(to)?;
    let mut heads: HashMap<DocId, Vec<[u8; 32]>> = HashMap::new();
    for id in to.store().all_doc_ids()? {
        if let Some(summary) = to.store().summary(&id)? {
            heads.insert(id, sorted(summary.heads));
        }
    }
    for id in from.store().all_doc_ids()? {
        let Some(summary) = from.store().summary(&id)? else {
            continue;
        };
        if heads.get(&id) != Some(&sorted(summary.heads)) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn sorted(mut heads: Vec<[u8; 32]>) -> Vec<[u8; 32]> {
    heads.sort_unstable();
    heads
}
