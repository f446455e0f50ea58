//! Receiving an initial sync on one thread, without the network: where the receiver's CPU goes.
//!
//! The hidden mode `local-receive` takes every document of a seed home as the responder's
//! real code builds it for a puller that holds nothing (`SyncSource::payload`: the whole
//! document's `save()` with its proofs), then stores it in a fresh home through the same
//! `Replicas::ingest_payload` a node's pull calls, flushing sled every `FLUSH_EVERY`
//! documents as a node does after each response. Beside it, on the same documents and in the
//! same process, it times the parts automerge's public API makes a receiver pay and the
//! reference (`Automerge::load` of the same bytes), so the profile of the network scenario
//! can be read as shares of named steps.

use super::local::thread_cpu;
use crate::node_proc::self_usage;
use anyhow::{anyhow, Context, Result};
use automerge::{Automerge, Change};
use hedgerow_node::home::{Home, LocalProfile};
use hedgerow_node::Replicas;
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::sync::{id_prefix, DocPayload, SyncSource, Want};
use hedgerow_protocol::{CommonsGenesis, Signed};
use serde_json::{json, Value};
use std::path::Path;

/// Documents stored between flushes: about what one response of a fast link carries.
const FLUSH_EVERY: usize = 200;

/// The child side: prints its figures as one JSON line.
pub fn receive_child(seed: &Path, into: &Path) -> Result<Value> {
    let (genesis, payloads) = payloads(seed)?;
    let commons = genesis.body.id();
    let changes: usize = payloads.iter().map(|(_, p)| p.proofs.len()).sum();
    let saved: Vec<&[u8]> = payloads
        .iter()
        .filter_map(|(_, p)| match &p.changes {
            CompactChanges::Document(bytes) => Some(bytes.as_slice()),
            _ => None,
        })
        .collect();

    // The reference: automerge alone loading the same bytes.
    let cpu = thread_cpu();
    let mut loaded = Vec::with_capacity(saved.len());
    for bytes in &saved {
        loaded.push(Automerge::load(bytes).map_err(|e| anyhow!("load: {e}"))?);
    }
    let load_s = thread_cpu() - cpu;
    // What a receiver must add to learn each change's bytes (to hash, verify and store).
    let cpu = thread_cpu();
    let mut all_changes: Vec<Change> = Vec::new();
    for doc in &loaded {
        all_changes.extend(doc.get_changes(&[]));
    }
    let get_changes_s = thread_cpu() - cpu;
    drop(loaded);
    // Decoding each change's operations (what the release rule reads).
    let cpu = thread_cpu();
    let mut ops = 0usize;
    for change in &all_changes {
        ops += change.decode().operations.len();
    }
    let decode_s = thread_cpu() - cpu;
    let change_count = all_changes.len();
    drop(all_changes);

    // The receiver's real path into a fresh store.
    let home = Home::init(
        into,
        &LocalProfile {
            name: "Receiver".into(),
            ..LocalProfile::default()
        },
    )?;
    let mut replicas = Replicas::open(&home)?;
    replicas.hold_commons(&genesis)?;
    let decoded = hedgerow_protocol::changes_decoded();
    let cpu = thread_cpu();
    let mut stored = 0usize;
    for (n, (_, payload)) in payloads.iter().enumerate() {
        stored += replicas
            .ingest_payload(&commons, payload)
            .with_context(|| format!("ingesting document {}", payload.doc))?;
        if (n + 1) % FLUSH_EVERY == 0 {
            replicas.commit()?;
        }
    }
    replicas.commit()?;
    replicas.save_snapshots()?;
    let receive_s = thread_cpu() - cpu;
    let decoded = hedgerow_protocol::changes_decoded() - decoded;
    let (process_cpu_s, peak) = self_usage();
    Ok(json!({
        "docs": payloads.len(),
        "changes_signed": changes,
        "changes": change_count,
        "changes_stored": stored,
        "changes_decoded_by_release_rule": decoded,
        "ops": ops,
        "receive_cpu_s": receive_s,
        "automerge_load_s": load_s,
        "get_changes_s": get_changes_s,
        "decode_changes_s": decode_s,
        "receive_x_load": receive_s / load_s.max(1e-9),
        "process_cpu_s": process_cpu_s,
        "peak_rss_bytes": peak,
    }))
}

/// One document's payload, with its kind.
type Payload = (DocKind, DocPayload);

/// The seed's commons genesis, and every document of it as a puller holding nothing is sent
/// it, charters first (a node stores a response's charter before the documents it admits).
fn payloads(seed: &Path) -> Result<(Signed<CommonsGenesis>, Vec<Payload>)> {
    let home = Home::open(seed)?;
    let mut source = Replicas::open(&home)?;
    let genesis = source
        .commons_list()?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the seed holds no commons"))?;
    let commons = genesis.body.id();
    let mut out = Vec::new();
    for id in source.store().doc_ids(&commons)? {
        let kind = source
            .store()
            .doc_genesis(&id)?
            .map(|g| g.body.kind)
            .ok_or_else(|| anyhow!("no genesis for {id}"))?;
        let want = Want {
            prefix: id_prefix(&id),
            have_genesis: false,
            clock: Vec::new(),
        };
        if let Some(payload) = source.payload(&id, &want)? {
            out.push((kind, payload));
        }
        if out.len() % 200 == 0 {
            source.clear_cache();
        }
    }
    out.sort_by_key(|(kind, _)| *kind != DocKind::Charter);
    Ok((genesis, out))
}
