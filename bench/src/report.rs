//! Result rows, the targets each is held against, and the markdown and JSON output.

use crate::references::References;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt::Write;

/// One scenario at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Designs in the commons.
    pub designs: usize,
    /// Documents in the commons (designs, events, notes, profiles).
    pub docs: u64,
    /// Bytes on the wire, both directions, counted at the transport (all libp2p substreams).
    pub bytes: u64,
    /// Of which sync protocol frames.
    pub sync_bytes: u64,
    /// Gossip payload bytes published.
    pub gossip_bytes: u64,
    /// The limit (see `references`).
    pub limit_bytes: u64,
    /// Sum of the individual signed envelopes of the same changes.
    pub envelope_bytes: u64,
    /// automerge sync protocol bytes on the same documents.
    pub automerge_bytes: u64,
    /// automerge sync messages.
    pub automerge_messages: u64,
    /// Our round trips (the slowest of the pulls running side by side).
    pub round_trips: u64,
    /// automerge's round trips.
    pub automerge_round_trips: u64,
    /// `bytes / limit_bytes`.
    pub ratio_limit: Option<f64>,
    /// `bytes / automerge_bytes`.
    pub ratio_automerge: Option<f64>,
    /// `sync_bytes / limit_bytes`.
    pub sync_ratio_limit: Option<f64>,
    /// `sync_bytes / automerge_bytes`.
    pub sync_ratio_automerge: Option<f64>,
    /// Wall time of the scenario's measured part, seconds.
    pub wall_s: f64,
    /// CPU time (user + system) of every node process in the measured part, seconds.
    pub cpu_s: f64,
    /// Highest peak resident memory of any node process involved, bytes.
    pub peak_rss_bytes: u64,
    /// Store size on disk of the receiving node afterwards, bytes.
    pub store_bytes: u64,
    /// Whether the nodes ended in the expected state.
    pub converged: bool,
    /// Scenario-specific figures.
    pub extra: Map<String, Value>,
    /// Targets and whether each is met.
    pub targets: Vec<Target>,
}

/// One target from the issue, evaluated on one row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// What is aimed for.
    pub name: String,
    /// Whether it is met.
    pub met: bool,
    /// The figures it was judged on.
    pub detail: String,
}

impl Row {
    /// A row with its references filled in.
    pub fn new(scenario: &str, designs: usize, docs: u64, refs: &References) -> Self {
        Row {
            scenario: scenario.to_string(),
            designs,
            docs,
            limit_bytes: refs.limit_bytes,
            envelope_bytes: refs.envelope_bytes,
            automerge_bytes: refs.automerge_bytes,
            automerge_messages: refs.automerge_messages,
            automerge_round_trips: refs.automerge_round_trips,
            // Each scenario sets it from a comparison of the nodes' state; a row that
            // forgets to stays not converged, so the check cannot pass by default.
            converged: false,
            ..Row::default()
        }
    }

    /// Computes the ratios from the byte counts.
    pub fn finish_ratios(&mut self) {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        self.ratio_limit = ratio(self.bytes, self.limit_bytes);
        self.ratio_automerge = ratio(self.bytes, self.automerge_bytes);
        self.sync_ratio_limit = ratio(self.sync_bytes, self.limit_bytes);
        self.sync_ratio_automerge = ratio(self.sync_bytes, self.automerge_bytes);
    }

    /// Adds a target.
    pub fn target(&mut self, name: &str, met: bool, detail: String) {
        self.targets.push(Target {
            name: name.to_string(),
            met,
            detail,
        });
    }

    /// Adds a scenario-specific figure.
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.extra.insert(key.to_string(), value.into());
    }
}

/// Human-readable bytes.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 10_000 {
        format!("{bytes} B")
    } else if b < 10e6 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{r:.2}"))
}

/// The markdown table of all rows, then the targets and growth.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | designs | docs | bytes (transport) | sync bytes | limit | envelopes | automerge | ×limit | ×automerge | sync ×limit | sync ×am | RTs | am RTs (msgs) | wall s | cpu s | peak RSS | store |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.3} | {:.2} | {} | {} |",
            r.scenario,
            r.designs,
            r.docs,
            human(r.bytes),
            human(r.sync_bytes),
            human(r.limit_bytes),
            human(r.envelope_bytes),
            human(r.automerge_bytes),
            ratio(r.ratio_limit),
            ratio(r.ratio_automerge),
            ratio(r.sync_ratio_limit),
            ratio(r.sync_ratio_automerge),
            r.round_trips,
            r.automerge_round_trips,
            r.automerge_messages,
            r.wall_s,
            r.cpu_s,
            human(r.peak_rss_bytes),
            human(r.store_bytes),
        );
    }
    out.push_str("\n### Targets\n\n| scenario | designs | target | met | figures |\n|---|---:|---|---|---|\n");
    for r in rows {
        for t in &r.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.scenario,
                r.designs,
                t.name,
                if t.met { "met" } else { "**not met**" },
                t.detail
            );
        }
    }
    out.push_str("\n### Scenario details\n\n");
    for r in rows {
        if !r.extra.is_empty() {
            let _ = writeln!(
                out,
                "- {} @ {}: {}",
                r.scenario,
                r.designs,
                Value::Object(r.extra.clone())
            );
        }
    }
    out.push_str(&growth(rows));
    out
}

/// A named figure of a row.
type Figure = (&'static str, fn(&Row) -> f64);

/// How each scenario's figures grow from the smallest to the largest size.
pub fn growth(rows: &[Row]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    for r in rows {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.designs).collect();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() < 2 {
        return String::new();
    }
    let mut out = String::from("\n### Growth\n\n| scenario | figure |");
    for s in &sizes {
        let _ = write!(out, " {s} |");
    }
    out.push_str(" largest/smallest |\n|---|---|");
    for _ in &sizes {
        out.push_str("---:|");
    }
    out.push_str("---:|\n");
    for scenario in scenarios {
        let of = |size: usize| {
            rows.iter()
                .find(|r| r.scenario == scenario && r.designs == size)
        };
        let figures: [Figure; 4] = [
            ("bytes", |r| r.bytes as f64),
            ("wall s", |r| r.wall_s),
            ("cpu s", |r| r.cpu_s),
            ("peak RSS MB", |r| r.peak_rss_bytes as f64 / 1e6),
        ];
        for (name, get) in figures {
            let values: Vec<Option<f64>> = sizes.iter().map(|s| of(*s).map(get)).collect();
            let _ = write!(out, "| {scenario} | {name} |");
            for v in &values {
                let text = match v {
                    None => "–".to_string(),
                    Some(v) if name == "bytes" => human(*v as u64),
                    Some(v) => format!("{v:.3}"),
                };
                let _ = write!(out, " {text} |");
            }
            let first = values.iter().flatten().next().copied().unwrap_or(0.0);
            let last = values.iter().flatten().last().copied().unwrap_or(0.0);
            let growth = if first > 0.0 {
                format!("{:.2}", last / first)
            } else {
                "–".into()
            };
            let _ = writeln!(out, " {growth} |");
        }
    }
    out
}

/// One line describing each size's generated commons, from the initial-sync rows.
pub fn commons_lines(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            let c = r.extra.get("commons")?;
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            Some(format!(
                "- {}: {} designs ({} forks), {} events, {} notes, {} profiles by {} authors: {} documents, {} signed changes ({} made concurrently), {} of signed envelopes; generated in {:.1} s ({:.1} CPU s)",
                r.designs,
                n("designs"),
                n("forks"),
                n("events"),
                n("notes"),
                n("profiles"),
                n("authors"),
                r.docs,
                n("changes"),
                n("concurrent_changes"),
                human(n("envelope_bytes")),
                c["seconds"].as_f64().unwrap_or(0.0),
                c["cpu_s"].as_f64().unwrap_or(0.0)
            ))
        })
        .collect()
}
