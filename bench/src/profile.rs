//! Where our sync bytes go: the responder's payloads for one exchange, taken apart.
//!
//! Builds, for every document one side lacks something of, the same `Want` the puller would
//! send and the `DocPayload` the responder's real code path ([`SyncSource::payload`]) answers
//! with, and sums each part of their encodings. Compared with the limit this says which part
//! of the protocol costs what.

use anyhow::Result;
use hedgerow_node::Replicas;
use hedgerow_protocol::encoding::encode;
use hedgerow_protocol::sync::{id_prefix, SyncSource, Want};
use serde::Serialize;

/// The parts of the payloads one side sends the other.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    /// Documents with something to send.
    pub docs: u64,
    /// The encoded `DocPayload`s, whole.
    pub payload_bytes: u64,
    /// Of which the compressed automerge bundles.
    pub bundle_bytes: u64,
    /// Of which the covering proofs (hash, document, author, signature each).
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
    /// Inventory entries the responder sends (16 bytes for every document it holds).
    pub inventory_bytes: u64,
}

/// What `from` would send `to` in a pull by `to`.
pub fn breakdown(from: &mut Replicas, to: &mut Replicas) -> Result<Breakdown> {
    let mut out = Breakdown::default();
    let ids = from.store().all_doc_ids()?;
    out.inventory_bytes = 16 * ids.len() as u64;
    for (n, id) in ids.iter().enumerate() {
        let have = to.store().doc_genesis(id)?.is_some();
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
        let Some(payload) = from.payload(id, &want)? else {
            continue;
        };
        out.docs += 1;
        out.want_bytes += encode(&want).len() as u64;
        out.payload_bytes += encode(&payload).len() as u64;
        out.bundle_bytes += payload.bundle.len() as u64;
        out.proof_bytes += encode(&payload.proofs).len() as u64;
        out.proofs += payload.proofs.len() as u64;
        out.signature_bytes += 64 * payload.proofs.len() as u64;
        if let Some(genesis) = &payload.genesis {
            out.genesis_bytes += encode(genesis).len() as u64;
            out.save_bytes_of_whole_docs += from.replica(id)?.doc().save().len() as u64;
            out.bundle_bytes_of_whole_docs += payload.bundle.len() as u64;
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
