//! 6. Local work, each measured in a child process of this binary so its peak memory is its own:
//!
//! - apply-and-verify: every stored change of the commons re-verified and applied on one core,
//!   by the two paths changes arrive on: a bundle with covering signatures (catch-up sync,
//!   `DocReplica::rebuild`) and one signed envelope at a time (gossip, `ingest_envelope`);
//! - cold start: open a store holding N designs and answer `design list`.

use super::Bench;
use crate::node_proc::{dir_size, self_usage};
use crate::references::References;
use crate::report::{human, Row};
use anyhow::{anyhow, bail, Context, Result};
use automerge::ChangeHash;
use automerge::{Automerge, Change};
use hedgerow_node::api::{self, Request};
use hedgerow_node::home::Home;
use hedgerow_node::Replicas;
use hedgerow_protocol::schema::{self, DocKind};
use hedgerow_protocol::{ChangeEnvelope, ChangeProof, DocGenesis, DocReplica, Signed};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The apply-and-verify target, changes per second on one core.
const APPLY_TARGET: f64 = 20_000.0;
/// The cold start target at 5,000 designs, seconds.
const COLD_START_TARGET: f64 = 1.0;

/// CPU time of the calling thread, seconds.
pub(crate) fn thread_cpu() -> f64 {
    // SAFETY: clock_gettime writes into the zeroed struct we own.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// One document's stored changes, prepared for both replay paths.
struct Prepared {
    genesis: Signed<DocGenesis>,
    stored: Vec<(Vec<u8>, Option<ChangeProof>)>,
    envelopes: Vec<ChangeEnvelope>,
    /// The heads the store holds for the document, sorted: what both replays must reach.
    heads: Vec<ChangeHash>,
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// The child side of apply-and-verify: prints its figures as one JSON line.
///
/// Replays documents until `cap` changes are taken (the rates do not depend on the commons'
/// size), then times the parts on the same input: parsing, signatures, automerge's apply and
/// the schema check.
/// With `only` (`bundle` or `envelope`) it replays by that path alone and skips the parts,
/// so a profiler sees one path.
pub fn apply_child(home: &Path, cap: usize, only: Option<&str>) -> Result<Value> {
    let home = Home::open(home)?;
    let mut replicas = Replicas::open(&home)?;
    let mut docs = Vec::new();
    let mut taken = 0;
    for id in replicas.store().all_doc_ids()? {
        if taken >= cap {
            break;
        }
        let genesis = replicas
            .store()
            .doc_genesis(&id)?
            .ok_or_else(|| anyhow!("no genesis for {id}"))?;
        let commons = genesis.body.commons;
        let stored = replicas.store().changes(&id)?;
        let by_hash: HashMap<[u8; 32], (Vec<u8>, Option<ChangeProof>)> = stored
            .into_iter()
            .map(|(hash, bytes, record)| (hash, (bytes, record.and_then(|r| r.proof))))
            .collect();
        let heads = sorted(replicas.replica(&id)?.heads());
        // Causal order, as a sender would gossip them.
        let order: Vec<ChangeHash> = replicas
            .replica(&id)?
            .doc()
            .get_changes_meta(&[])
            .iter()
            .map(|m| m.hash)
            .collect();
        replicas.clear_cache();
        let mut envelopes = Vec::new();
        let mut in_order = Vec::new();
        for hash in order {
            let (bytes, proof) = by_hash
                .get(&hash.0)
                .cloned()
                .ok_or_else(|| anyhow!("change {hash} missing"))?;
            if let Some(proof) = &proof {
                envelopes.push(ChangeEnvelope::from_proof(commons, proof, bytes.clone()));
            }
            in_order.push((bytes, proof));
        }
        taken += in_order.len();
        docs.push(Prepared {
            genesis,
            stored: in_order,
            envelopes,
            heads,
        });
    }
    drop(replicas);
    let changes: usize = docs.iter().map(|d| d.stored.len()).sum();
    let wall = Instant::now();
    let cpu = thread_cpu();
    let mut rebuilt = Vec::with_capacity(docs.len());
    for doc in docs.iter().filter(|_| only != Some("envelope")) {
        let replica = DocReplica::rebuild(doc.genesis.clone(), doc.stored.clone())
            .map_err(|e| anyhow!("rebuild: {e}"))?;
        rebuilt.push(replica.heads());
    }
    let bundle_cpu = thread_cpu() - cpu;
    let bundle_wall = wall.elapsed().as_secs_f64();
    let wall = Instant::now();
    let cpu = thread_cpu();
    let mut replayed = 0;
    let mut ingested = Vec::with_capacity(docs.len());
    for doc in docs.iter().filter(|_| only != Some("bundle")) {
        let mut replica = DocReplica::new(doc.genesis.clone()).map_err(|e| anyhow!("{e}"))?;
        for envelope in &doc.envelopes {
            replica
                .ingest_envelope(envelope)
                .map_err(|e| anyhow!("ingest: {e}"))?;
            replayed += 1;
        }
        ingested.push(replica.heads());
    }
    let envelope_cpu = thread_cpu() - cpu;
    let envelope_wall = wall.elapsed().as_secs_f64();
    // Outside the timed parts: each replay must end at the heads the store holds.
    let bundle_heads_match = docs
        .iter()
        .zip(rebuilt)
        .filter(|(doc, heads)| sorted(heads.clone()) == doc.heads)
        .count();
    // Only documents whose every change carries its own signature can be replayed one
    // envelope at a time; the others are compared on the bundle path alone.
    let envelope_docs = docs
        .iter()
        .filter(|d| d.envelopes.len() == d.stored.len())
        .count();
    let envelope_heads_match = docs
        .iter()
        .zip(ingested)
        .filter(|(doc, heads)| {
            doc.envelopes.len() == doc.stored.len() && sorted(heads.clone()) == doc.heads
        })
        .count();
    let parts = match only {
        Some(_) => Value::Null,
        None => parts(&docs)?,
    };
    let (cpu_s, peak) = self_usage();
    Ok(json!({
        "changes": changes,
        "docs": docs.len(),
        "bundle_heads_match": bundle_heads_match,
        "envelope_docs": envelope_docs,
        "envelope_heads_match": envelope_heads_match,
        "bundle_cpu_s": bundle_cpu,
        "bundle_wall_s": bundle_wall,
        "bundle_changes_per_s": changes as f64 / bundle_cpu.max(1e-9),
        "envelope_changes": replayed,
        "envelope_cpu_s": envelope_cpu,
        "envelope_wall_s": envelope_wall,
        "envelope_changes_per_s": replayed as f64 / envelope_cpu.max(1e-9),
        "parts": parts,
        "process_cpu_s": cpu_s,
        "peak_rss_bytes": peak,
    }))
}

/// The parts of applying and verifying, timed one by one on the same changes.
fn parts(docs: &[Prepared]) -> Result<Value> {
    let mut parsed_docs = Vec::with_capacity(docs.len());
    let cpu = thread_cpu();
    for doc in docs {
        let parsed: Result<Vec<Change>, _> = doc
            .stored
            .iter()
            .map(|(bytes, _)| Change::from_bytes(bytes.clone()))
            .collect();
        parsed_docs.push(parsed.map_err(|e| anyhow!("parse: {e}"))?);
    }
    let parse_s = thread_cpu() - cpu;
    let ops: usize = parsed_docs.iter().flatten().map(Change::len).sum();
    let cpu = thread_cpu();
    let mut signatures = 0usize;
    for doc in docs {
        for envelope in &doc.envelopes {
            envelope.verify().map_err(|e| anyhow!("verify: {e}"))?;
            signatures += 1;
        }
    }
    let verify_s = thread_cpu() - cpu;
    let signatures_ref = signature_references(docs)?;
    let one_by_one = parsed_docs.clone();
    let cpu = thread_cpu();
    let mut applied = Vec::with_capacity(docs.len());
    for changes in parsed_docs {
        let mut am = Automerge::new();
        am.apply_changes(changes)
            .map_err(|e| anyhow!("apply: {e}"))?;
        applied.push(am);
    }
    let apply_s = thread_cpu() - cpu;
    // The same changes handed to automerge one call each, as gossip delivers them: the floor
    // of the envelope path before any check of ours.
    let cpu = thread_cpu();
    for changes in &one_by_one {
        let mut am = Automerge::new();
        for change in changes {
            am.apply_changes([change.clone()])
                .map_err(|e| anyhow!("apply: {e}"))?;
        }
    }
    let apply_one_by_one_s = thread_cpu() - cpu;
    let cpu = thread_cpu();
    for (doc, am) in docs.iter().zip(&applied) {
        schema::validate_document(am, doc.genesis.body.kind).map_err(|e| anyhow!("schema: {e}"))?;
    }
    let validate_s = thread_cpu() - cpu;
    // automerge alone loading the same documents from their `save()` bytes (what a receiver
    // of whole documents could at best do).
    let saved: Vec<Vec<u8>> = applied.iter().map(|am| am.save()).collect();
    let cpu = thread_cpu();
    for bytes in &saved {
        Automerge::load(bytes).map_err(|e| anyhow!("load: {e}"))?;
    }
    let load_s = thread_cpu() - cpu;
    let changes: usize = docs.iter().map(|d| d.stored.len()).sum();
    Ok(json!({
        "automerge_load_s": load_s,
        "signature_references": signatures_ref,
        "ops": ops,
        "ops_per_change": ops as f64 / changes.max(1) as f64,
        "parse_s": parse_s,
        "signatures": signatures,
        "verify_s": verify_s,
        "signatures_per_s": signatures as f64 / verify_s.max(1e-9),
        "automerge_apply_s": apply_s,
        "automerge_ops_per_s": ops as f64 / apply_s.max(1e-9),
        "automerge_apply_one_by_one_s": apply_one_by_one_s,
        "schema_validate_once_per_doc_s": validate_s,
    }))
}

/// Signatures checked per second on one core: the signature check alone (ed25519-dalek's
/// `verify_strict` behind an author key decompressed once, over digests computed before the
/// timing), beside Hedgerow's path for a detached signature over change bytes (digest, key,
/// signature; no parse) and an envelope's whole `verify` (plus parse and actor binding).
/// (`verify_batch` needs ed25519-dalek's `batch` feature, whose feature unification rebuilds
/// most of the dependency tree; bench/RESULTS.md gives its figures, measured apart.)
fn signature_references(docs: &[Prepared]) -> Result<Value> {
    use hedgerow_protocol::envelope::{signing_digest, verify_signature};
    let envelopes: Vec<&ChangeEnvelope> = docs.iter().flat_map(|d| &d.envelopes).collect();
    let n = envelopes.len();
    let mut digests = Vec::with_capacity(n);
    let mut keys = HashMap::new();
    for e in &envelopes {
        digests.push(signing_digest(&e.commons, &e.doc, &e.author, &e.change));
        if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(e.author) {
            slot.insert(e.author.prepare().map_err(|e| anyhow!("{e}"))?);
        }
    }
    let cpu = thread_cpu();
    for (e, digest) in envelopes.iter().zip(&digests) {
        keys[&e.author]
            .verify(digest, &e.signature)
            .map_err(|e| anyhow!("verify: {e}"))?;
    }
    let single_s = thread_cpu() - cpu;
    let cpu = thread_cpu();
    for e in &envelopes {
        verify_signature(&e.commons, &e.proof(), &e.change).map_err(|e| anyhow!("{e}"))?;
    }
    let hedgerow_s = thread_cpu() - cpu;
    let cpu = thread_cpu();
    for e in &envelopes {
        e.verify().map_err(|e| anyhow!("{e}"))?;
    }
    let envelope_s = thread_cpu() - cpu;
    let rate = |s: f64| n as f64 / s.max(1e-9);
    Ok(json!({
        "signatures": n,
        "dalek_single_per_s": rate(single_s),
        "hedgerow_signature_per_s": rate(hedgerow_s),
        "hedgerow_envelope_verify_per_s": rate(envelope_s),
    }))
}

/// automerge alone loading every document of the store at `home` from its `save()` bytes:
/// CPU seconds on this thread (the bytes are made outside the timing) and the documents.
pub fn automerge_load_reference(home: &Path) -> Result<(f64, usize)> {
    let mut replicas = super::open(home)?;
    let mut saved = Vec::new();
    for id in replicas.store().all_doc_ids()? {
        saved.push(replicas.replica(&id)?.doc().save());
        if saved.len() % 200 == 0 {
            replicas.clear_cache();
        }
    }
    drop(replicas);
    let cpu = thread_cpu();
    for bytes in &saved {
        Automerge::load(bytes).map_err(|e| anyhow!("load: {e}"))?;
    }
    Ok((thread_cpu() - cpu, saved.len()))
}

/// The child side of cold start: prints its figures as one JSON line.
pub fn cold_start_child(home: &Path) -> Result<Value> {
    let started = Instant::now();
    let home = Home::open(home)?;
    let mut replicas = Replicas::open(&home)?;
    let list = api::execute(
        &mut replicas,
        Request::DocList {
            commons: None,
            kind: DocKind::Design,
            target: None,
            tags: Vec::new(),
            stage: None,
            search: None,
            page: None,
        },
    )?;
    let wall = started.elapsed().as_secs_f64();
    let (cpu_s, peak) = self_usage();
    Ok(json!({
        "wall_s": wall,
        "cpu_s": cpu_s,
        "peak_rss_bytes": peak,
        "designs_listed": match list {
            api::Reply::DocList(list) => list.len(),
            _ => 0,
        },
    }))
}

/// Runs this binary in `mode` on `home` and parses the JSON line it prints.
fn run_child(mode: &str, home: &Path, extra: &[String]) -> Result<Value> {
    let output = Command::new(std::env::current_exe()?)
        .args([mode, "--home"])
        .arg(home)
        .args(extra)
        .output()
        .with_context(|| format!("running {mode}"))?;
    if !output.status.success() {
        bail!("{mode} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .last()
        .ok_or_else(|| anyhow!("{mode} printed nothing"))?;
    Ok(serde_json::from_str(line)?)
}

/// 6a. Apply-and-verify throughput of every change of the commons.
pub fn apply_verify(bench: &Bench) -> Result<Row> {
    let home = bench.seed_copy("apply")?;
    let v = run_child(
        "local-apply",
        &home,
        &["--cap".into(), bench.settings.apply_cap.to_string()],
    )?;
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    let mut row = bench.row("apply-and-verify", &References::default());
    row.wall_s = f("bundle_wall_s") + f("envelope_wall_s");
    row.cpu_s = f("bundle_cpu_s") + f("envelope_cpu_s");
    row.peak_rss_bytes = v["peak_rss_bytes"].as_u64().unwrap_or(0);
    row.store_bytes = dir_size(&home.join("store"));
    let bundle = f("bundle_changes_per_s");
    let envelope = f("envelope_changes_per_s");
    let ops_per_change = v["parts"]["ops_per_change"].as_f64().unwrap_or(0.0);
    let count = |k: &str| v[k].as_u64();
    // Converged when both replays reached the stored heads of every document they replayed.
    row.converged = count("docs").is_some_and(|d| d > 0)
        && count("bundle_heads_match") == count("docs")
        && count("envelope_docs").is_some_and(|d| d > 0)
        && count("envelope_heads_match") == count("envelope_docs");
    if let Value::Object(map) = v {
        row.extra = map;
    }
    row.target(
        "≥ 20,000 changes/s on one core, bundle path (sync)",
        bundle >= APPLY_TARGET,
        format!("{bundle:.0} changes/s ({ops_per_change:.0} automerge ops a change)"),
    );
    row.target(
        "≥ 20,000 changes/s on one core, envelope path (gossip)",
        envelope >= APPLY_TARGET,
        format!("{envelope:.0} changes/s"),
    );
    // Issue 11: each path within 1.5 × automerge's own `apply_changes` of the same changes
    // (one call per document), and 30,000 signatures a second on one core.
    let parts = row.extra.get("parts").cloned().unwrap_or(Value::Null);
    let apply_ref = parts["automerge_apply_s"].as_f64().unwrap_or(0.0);
    for (path, key) in [("bundle", "bundle_cpu_s"), ("envelope", "envelope_cpu_s")] {
        let cpu = row.extra.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        let ratio = cpu / apply_ref.max(1e-9);
        row.put(&format!("{path}_x_automerge_apply"), ratio);
        row.target(
            &format!("{path} path ≤ 1.5 × automerge apply_changes (same changes, CPU)"),
            ratio <= 1.5,
            format!("{cpu:.2} s vs {apply_ref:.2} s (×{ratio:.2})"),
        );
    }
    // Receiving every document whole, on one thread through the node's own ingest, with
    // automerge's parts of that work beside it (see `scenarios::receive`).
    let into = home.with_file_name("receive");
    let receive = run_child(
        "local-receive",
        &home,
        &["--into".into(), into.display().to_string()],
    )?;
    bench.discard(&into);
    let receive_ratio = receive["receive_x_load"].as_f64().unwrap_or(f64::INFINITY);
    row.target(
        "receiving whole documents on one thread ≤ 1.3 × automerge load (CPU)",
        receive_ratio <= 1.3,
        format!(
            "{:.2} s vs {:.2} s (×{receive_ratio:.2}; automerge's get_changes alone {:.2} s)",
            receive["receive_cpu_s"].as_f64().unwrap_or(0.0),
            receive["automerge_load_s"].as_f64().unwrap_or(0.0),
            receive["get_changes_s"].as_f64().unwrap_or(0.0),
        ),
    );
    row.extra.insert("receive".into(), receive);
    let sig = &parts["signature_references"];
    let ours = sig["hedgerow_signature_per_s"].as_f64().unwrap_or(0.0);
    let dalek = sig["dalek_single_per_s"].as_f64().unwrap_or(0.0);
    let whole = sig["hedgerow_envelope_verify_per_s"]
        .as_f64()
        .unwrap_or(0.0);
    row.target(
        "signatures ≥ 30,000/s on one core",
        ours >= 30_000.0,
        format!(
            "Hedgerow {ours:.0}/s (an envelope's whole verify {whole:.0}/s); ed25519-dalek's \
             strict check alone {dalek:.0}/s"
        ),
    );
    bench.discard(&home);
    Ok(row)
}

/// 6b. Cold start: open the store and answer `design list`.
pub fn cold_start(bench: &Bench) -> Result<Row> {
    let home = bench.seed_copy("cold")?;
    let v = run_child("local-cold-start", &home, &[])?;
    let mut row = bench.row("cold start", &References::default());
    row.wall_s = v["wall_s"].as_f64().unwrap_or(0.0);
    row.cpu_s = v["cpu_s"].as_f64().unwrap_or(0.0);
    row.peak_rss_bytes = v["peak_rss_bytes"].as_u64().unwrap_or(0);
    row.store_bytes = dir_size(&home.join("store"));
    row.converged = v["designs_listed"].as_u64() == Some(bench.settings.designs as u64);
    if let Value::Object(map) = v {
        row.extra = map;
    }
    row.target(
        "under 1 s (the target is for 5,000 designs)",
        row.wall_s < COLD_START_TARGET,
        format!("{:.3} s, peak {}", row.wall_s, human(row.peak_rss_bytes)),
    );
    bench.discard(&home);
    Ok(row)
}
