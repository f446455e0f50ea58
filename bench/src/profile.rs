//! Where our sync bytes go: the responder's payloads for one exchange, taken apart.
//!
//! Builds, for every document one side lacks something of, the same `Want` the puller would
//! send and the payload the responder's real code path answers with, both in the compact
//! forms of `/hedgerow/sync/3` that two nodes of this release use
//! ([`SyncSource::payload_v3`]), and sums each part of their encodings. Compared with the limit this says which part
//! of the protocol costs what.

use anyhow::Result;
use hedgerow_node::Replicas;
use hedgerow_protocol::encoding::encode;
use hedgerow_protocol::sync::{
    bucket_digests, bucket_of, id_prefix, summary_buckets, HeadsDigest, IdPrefix, SyncRequest,
    SyncResponse, SyncSource, Want, WantV3, SKETCH_CELLS, SKETCH_THRESHOLD, SUMMARY_THRESHOLD,
};
use hedgerow_protocol::sync_sketch::{
    sketch_key, Sketch, SketchKey, MAX_SKETCH_CELLS, SKETCH_HASHES,
};
use serde::Serialize;
use std::collections::BTreeSet;

/// The parts of the payloads one side sends the other.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    /// Documents with something to send.
    pub docs: u64,
    /// The encoded `DocPayload`s, whole.
    pub payload_bytes: u64,
    /// Of which the changes in compact form (`save()` or deflated change chunks).
    pub bundle_bytes: u64,
    /// Of which the covering proofs (signature, change hash prefix, author when the puller
    /// lacks it).
    pub proof_bytes: u64,
    /// Number of covering proofs.
    pub proofs: u64,
    /// Of which signatures alone (64 bytes a proof).
    pub signature_bytes: u64,
    /// Of which genesis records.
    pub genesis_bytes: u64,
    /// `save()` of the documents sent whole, for comparison with their bundles.
    pub save_bytes_of_whole_docs: u64,
    /// Bundles of the documents sent whole.
    pub bundle_bytes_of_whole_docs: u64,
    /// The encoded `Want`s the puller sends for them.
    pub want_bytes: u64,
    /// The responder's `Inventory` (of the differing buckets only, after a summary).
    pub inventory_bytes: u64,
    /// Its `Summary` of bucket digests (large commons only).
    pub summary_bytes: u64,
    /// The puller's `Entries` request (large commons only).
    pub entries_request_bytes: u64,
    /// The responder's `Sketch` (`/hedgerow/sync/4`, over [`SKETCH_THRESHOLD`] documents),
    /// in place of the summary, the entries request and the partial inventory.
    pub sketch_bytes: u64,
    /// Whether the two sides' sketches peel to exactly the documents in different states
    /// (else the puller falls back to the summary, also counted).
    pub sketch_peels: bool,
    /// The fewest cells (a multiple of 3) whose difference would peel: what a sketch sized to
    /// the difference would need.
    pub sketch_cells_needed: u64,
}

/// What `from` would send `to` in a pull by `to`.
pub fn breakdown(from: &mut Replicas, to: &mut Replicas) -> Result<Breakdown> {
    let mut out = Breakdown::default();
    let ids = from.store().all_doc_ids()?;
    listing(from, to, &mut out)?;
    for (n, id) in ids.iter().enumerate() {
        let have = to.store().doc_genesis(id)?.is_some();
        // Only documents whose heads differ are asked for.
        if have
            && from.store().summary(id)?.map(|s| s.heads)
                == to.store().summary(id)?.map(|s| s.heads)
        {
            continue;
        }
        let clock = if have {
            to.replica(id)?
                .clock()
                .into_iter()
                .map(|(actor, seq)| (actor.to_bytes().to_vec(), seq))
                .collect()
        } else {
            Vec::new()
        };
        let want = Want {
            prefix: id_prefix(id),
            have_genesis: have,
            clock,
        };
        let want = WantV3::of(&want);
        out.want_bytes += encode(&want).len() as u64;
        let Some(payload) = from.payload_v3(id, &want)? else {
            continue;
        };
        out.docs += 1;
        out.payload_bytes += encode(&payload).len() as u64;
        out.bundle_bytes += payload.changes.len() as u64;
        out.proof_bytes += encode(&payload.proofs).len() as u64;
        out.proofs += payload.proofs.len() as u64;
        out.signature_bytes += 64 * payload.proofs.len() as u64;
        if let Some(genesis) = &payload.genesis {
            out.genesis_bytes += encode(genesis).len() as u64;
            out.save_bytes_of_whole_docs += from.replica(id)?.doc().save().len() as u64;
            out.bundle_bytes_of_whole_docs += payload.changes.len() as u64;
        }
        if n % 100 == 99 {
            from.clear_cache();
            to.clear_cache();
        }
    }
    from.clear_cache();
    to.clear_cache();
    Ok(out)
}

/// The listing part of the exchange: inventory, or summary, entries and partial inventory.
fn listing(from: &mut Replicas, to: &mut Replicas, out: &mut Breakdown) -> Result<()> {
    let Some(genesis) = from.commons_list()?.into_iter().next() else {
        return Ok(());
    };
    let commons = genesis.body.id();
    let entries = |r: &Replicas| -> Result<Vec<(IdPrefix, HeadsDigest)>> {
        let mut docs: Vec<_> = r
            .inventory(&commons)?
            .iter()
            .map(|(id, d)| (id_prefix(id), *d))
            .collect();
        docs.sort_unstable();
        Ok(docs)
    };
    let theirs = entries(from)?;
    let mine = entries(to)?;
    if theirs == mine {
        return Ok(());
    }
    if theirs.len() <= SUMMARY_THRESHOLD || mine.is_empty() {
        out.inventory_bytes = encode(&SyncResponse::Inventory {
            genesis,
            docs: theirs,
        })
        .len() as u64;
        return Ok(());
    }
    if theirs.len() > SKETCH_THRESHOLD && sketch(&theirs, &mine, out)? {
        return Ok(());
    }
    let buckets = summary_buckets(theirs.len());
    let digests = bucket_digests(&theirs, buckets);
    let local = bucket_digests(&mine, buckets);
    let wanted: Vec<u32> = (0..buckets)
        .filter(|b| digests[*b as usize] != local[*b as usize])
        .collect();
    let listed: Vec<_> = theirs
        .into_iter()
        .filter(|(p, _)| wanted.contains(&bucket_of(p, buckets)))
        .collect();
    out.summary_bytes = encode(&SyncResponse::Summary { buckets, digests }).len() as u64;
    out.entries_request_bytes = encode(&SyncRequest::Entries {
        commons,
        buckets,
        wanted,
    })
    .len() as u64;
    out.inventory_bytes = encode(&SyncResponse::Inventory {
        genesis,
        docs: listed,
    })
    .len() as u64;
    Ok(())
}

/// The sketch the responder sends; whether it peels (when it does not, the summary follows).
fn sketch(
    theirs: &[(IdPrefix, HeadsDigest)],
    mine: &[(IdPrefix, HeadsDigest)],
    out: &mut Breakdown,
) -> Result<bool> {
    let keys = |entries: &[(IdPrefix, HeadsDigest)]| -> BTreeSet<SketchKey> {
        entries.iter().map(|(p, d)| sketch_key(p, d)).collect()
    };
    let (theirs_keys, mine_keys) = (keys(theirs), keys(mine));
    let only_theirs: Vec<SketchKey> = theirs_keys.difference(&mine_keys).copied().collect();
    let only_mine: Vec<SketchKey> = mine_keys.difference(&theirs_keys).copied().collect();
    // A sketch is linear: the difference of the two sides' sketches is the sketch of the keys
    // only one side holds, so the smallest size that peels is found on those alone.
    let mut cells = SKETCH_HASHES;
    out.sketch_cells_needed = loop {
        if cells > MAX_SKETCH_CELLS {
            break 0;
        }
        let mut difference = Sketch::new(cells)?;
        only_theirs.iter().for_each(|key| difference.insert(key));
        let mut other = Sketch::new(cells)?;
        only_mine.iter().for_each(|key| other.insert(key));
        difference.subtract(&other)?;
        if difference.decode().is_some() {
            break cells as u64;
        }
        cells += SKETCH_HASHES;
    };
    // The sketch as sent, built and peeled as the two sides do: from whole inventories.
    let sent = Sketch::of(theirs, SKETCH_CELLS)?;
    out.sketch_bytes = encode(&SyncResponse::Sketch {
        sketch: sent.to_bytes(),
    })
    .len() as u64;
    let mut received = Sketch::from_bytes(&sent.to_bytes())?;
    received.subtract(&Sketch::of(mine, SKETCH_CELLS)?)?;
    out.sketch_peels = received.decode().is_some_and(|found| {
        found.ours.iter().copied().collect::<BTreeSet<_>>() == only_theirs.iter().copied().collect()
            && found.theirs.iter().copied().collect::<BTreeSet<_>>()
                == only_mine.iter().copied().collect()
    });
    Ok(out.sketch_peels)
}
