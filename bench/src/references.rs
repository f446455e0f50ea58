//! The two references each figure is compared with, measured on the same data in the same run.
//!
//! - The limit: what the receiving side lacked, in the most compact form the data has: for a
//!   document it lacks entirely the size of its automerge `save()`, otherwise the compressed
//!   automerge bundle of the changes it lacks; plus 64 bytes of signature per author per
//!   document. Beside it, the sum of the individual signed envelopes of the same changes.
//! - automerge's own sync protocol (`automerge::sync`): two in-memory peers exchange each
//!   document until both are in sync, taking turns, with whichever peer speaking first costs
//!   less; every message's encoded bytes are counted. Documents sync side by side; round trips
//!   are the messages of the slowest document, halved and rounded up.

use anyhow::{anyhow, Result};
use automerge::sync::{Message, State, SyncDoc};
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use hedgerow_node::Replicas;
use hedgerow_protocol::encoding::encode;
use hedgerow_protocol::{ChangeEnvelope, DocId, DocReplica, Signature};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// Bytes of signature the limit counts per author per document.
pub const SIGNATURE_BYTES: u64 = 64;

/// How automerge's peers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutomergeStart {
    /// No saved sync state: a new connection (initial sync, reconnects).
    Fresh,
    /// Already in sync on the receiver's state with live sync state (a connected peer);
    /// the receiver's documents must be a subset of the sender's.
    Connected,
}

/// The references for one exchange between two stores.
#[derive(Debug, Clone, Default, Serialize)]
pub struct References {
    /// The limit, both directions.
    pub limit_bytes: u64,
    /// Sum of the individual signed envelopes of what was lacked, plus the genesis records of
    /// documents lacked entirely.
    pub envelope_bytes: u64,
    /// automerge sync message bytes, both directions.
    pub automerge_bytes: u64,
    /// automerge sync messages.
    pub automerge_messages: u64,
    /// Of `automerge_bytes`, what the differing documents cost (the rest is confirming
    /// documents both sides already agree on).
    pub automerge_bytes_differing: u64,
    /// automerge round trips (messages of the slowest document, halved, rounded up).
    pub automerge_round_trips: u64,
    /// Documents that differ between the two sides.
    pub docs_differing: u64,
    /// Changes one side lacked, both directions.
    pub changes_lacked: u64,
    /// Documents one side lacked entirely.
    pub docs_lacked: u64,
    /// Genesis records of documents lacked entirely (not part of the limit).
    pub genesis_bytes: u64,
}

impl References {
    /// Scales an exchange between two peers to `peers` receivers (fan-out).
    pub fn times(&self, peers: u64) -> References {
        References {
            limit_bytes: self.limit_bytes * peers,
            envelope_bytes: self.envelope_bytes * peers,
            automerge_bytes: self.automerge_bytes * peers,
            automerge_messages: self.automerge_messages * peers,
            automerge_bytes_differing: self.automerge_bytes_differing * peers,
            automerge_round_trips: self.automerge_round_trips,
            docs_differing: self.docs_differing,
            changes_lacked: self.changes_lacked * peers,
            docs_lacked: self.docs_lacked * peers,
            genesis_bytes: self.genesis_bytes * peers,
        }
    }
}

/// Measures both references for syncing the documents of `a` and `b` with each other.
pub fn compare(a: &mut Replicas, b: &mut Replicas, start: AutomergeStart) -> Result<References> {
    let mut ids: BTreeSet<DocId> = a.store().all_doc_ids()?.into_iter().collect();
    ids.extend(b.store().all_doc_ids()?);
    let mut refs = References::default();
    let mut max_ticks = 0u64;
    for (n, id) in ids.iter().enumerate() {
        let has_a = a.store().doc_genesis(id)?.is_some();
        let has_b = b.store().doc_genesis(id)?.is_some();
        if start == AutomergeStart::Connected && has_a && has_b && same_heads(a, b, id)? {
            // Connected peers in the same state exchange nothing for this document.
            continue;
        }
        let ra = if has_a { Some(a.replica(id)?) } else { None };
        let rb = if has_b { Some(b.replica(id)?) } else { None };
        let mut differs = false;
        for (from, to) in [(ra, rb), (rb, ra)] {
            if let Some(from) = from {
                let lacked = lacked(from, to)?;
                differs |= lacked.changes > 0 || to.is_none();
                refs.limit_bytes += lacked.limit;
                refs.envelope_bytes += lacked.envelopes + lacked.genesis;
                refs.genesis_bytes += lacked.genesis;
                refs.changes_lacked += lacked.changes;
                refs.docs_lacked += u64::from(to.is_none());
            }
        }
        refs.docs_differing += u64::from(differs);
        let empty = Automerge::new();
        let doc_a = ra.map_or(&empty, DocReplica::doc);
        let doc_b = rb.map_or(&empty, DocReplica::doc);
        let run = match start {
            AutomergeStart::Fresh => fresh_sync(doc_a, doc_b)?,
            AutomergeStart::Connected if differs => connected_sync(doc_a, doc_b)?,
            AutomergeStart::Connected => SyncRun::default(),
        };
        refs.automerge_bytes += run.bytes;
        refs.automerge_messages += run.messages;
        if differs {
            refs.automerge_bytes_differing += run.bytes;
        }
        max_ticks = max_ticks.max(run.ticks);
        if n % 100 == 99 {
            a.clear_cache();
            b.clear_cache();
        }
    }
    a.clear_cache();
    b.clear_cache();
    refs.automerge_round_trips = max_ticks.div_ceil(2);
    Ok(refs)
}

/// Whether both stores hold the same heads of `id` (from their cached summaries).
fn same_heads(a: &Replicas, b: &Replicas, id: &DocId) -> Result<bool> {
    let heads = |r: &Replicas| -> Result<Option<Vec<[u8; 32]>>> {
        Ok(r.store().summary(id)?.map(|s| {
            let mut heads = s.heads;
            heads.sort_unstable();
            heads
        }))
    };
    Ok(heads(a)? == heads(b)?)
}

/// What one side lacked of one document.
struct Lacked {
    limit: u64,
    envelopes: u64,
    genesis: u64,
    changes: u64,
}

fn lacked(from: &DocReplica, to: Option<&DocReplica>) -> Result<Lacked> {
    let metas = from.doc().get_changes_meta(&[]);
    let have: HashSet<ChangeHash> = to
        .map(|t| {
            t.doc()
                .get_changes_meta(&[])
                .iter()
                .map(|m| m.hash)
                .collect()
        })
        .unwrap_or_default();
    let missing: Vec<_> = metas.iter().filter(|m| !have.contains(&m.hash)).collect();
    let authors: HashSet<&ActorId> = missing.iter().map(|m| m.actor.as_ref()).collect();
    let signatures = SIGNATURE_BYTES * authors.len() as u64;
    let hashes: Vec<ChangeHash> = missing.iter().map(|m| m.hash).collect();
    let compact = match (to, hashes.is_empty()) {
        (_, true) => 0,
        (None, false) => from.doc().save().len() as u64,
        (Some(_), false) => from
            .doc()
            .bundle(hashes.iter().copied())
            .map_err(|e| anyhow!("bundle: {e}"))?
            .bytes()
            .len() as u64,
    };
    let mut envelopes = 0u64;
    for hash in &hashes {
        envelopes += envelope_size(from, hash)?;
    }
    Ok(Lacked {
        limit: if hashes.is_empty() {
            0
        } else {
            compact + signatures
        },
        envelopes,
        genesis: if to.is_none() {
            encode(from.genesis()).len() as u64
        } else {
            0
        },
        changes: hashes.len() as u64,
    })
}

/// The size of the signed envelope of one change, as it travels alone.
fn envelope_size(replica: &DocReplica, hash: &ChangeHash) -> Result<u64> {
    let change = replica
        .doc()
        .get_change_by_hash(hash)
        .ok_or_else(|| anyhow!("change {hash} vanished"))?;
    let record = replica
        .record(hash)
        .ok_or_else(|| anyhow!("no record for {hash}"))?;
    let doc = record.proof.as_ref().map_or(replica.id(), |p| p.doc);
    let envelope = ChangeEnvelope {
        commons: replica.commons(),
        doc,
        author: record.author,
        change: change.raw_bytes().to_vec(),
        signature: Signature([0; 64]),
    };
    Ok(envelope.to_bytes().len() as u64)
}

/// Counts of one automerge sync run.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncRun {
    /// Encoded message bytes, both directions.
    pub bytes: u64,
    /// Messages, both directions.
    pub messages: u64,
    /// One-way trips: messages in sequence (each waits for the one before).
    pub ticks: u64,
}

/// Runs automerge's sync between two documents, `x` speaking first, until neither has
/// anything to say. The peers take turns: each generates its next message after receiving
/// the other's, the way an application drives `automerge::sync` over a connection.
pub fn sync_pair(
    x: &mut Automerge,
    y: &mut Automerge,
    sx: &mut State,
    sy: &mut State,
) -> Result<SyncRun> {
    let mut run = SyncRun::default();
    let mut silent_turns = 0;
    let mut x_speaks = true;
    for _ in 0..2000 {
        if silent_turns >= 2 {
            return Ok(run);
        }
        let (from, to, s_from, s_to) = if x_speaks {
            (&mut *x, &mut *y, &mut *sx, &mut *sy)
        } else {
            (&mut *y, &mut *x, &mut *sy, &mut *sx)
        };
        x_speaks = !x_speaks;
        let Some(message) = from.generate_sync_message(s_from) else {
            silent_turns += 1;
            continue;
        };
        silent_turns = 0;
        let bytes = message.encode();
        run.bytes += bytes.len() as u64;
        run.messages += 1;
        run.ticks += 1;
        let decoded = Message::decode(&bytes).map_err(|e| anyhow!("sync message: {e}"))?;
        to.receive_sync_message(s_to, decoded)
            .map_err(|e| anyhow!("sync: {e}"))?;
    }
    Err(anyhow!("automerge sync did not settle in 2000 messages"))
}

/// automerge's sync on a new connection, with whichever peer speaking first costs less.
fn fresh_sync(a: &Automerge, b: &Automerge) -> Result<SyncRun> {
    let first = sync_pair(
        &mut a.clone(),
        &mut b.clone(),
        &mut State::new(),
        &mut State::new(),
    )?;
    let second = sync_pair(
        &mut b.clone(),
        &mut a.clone(),
        &mut State::new(),
        &mut State::new(),
    )?;
    Ok(if second.bytes < first.bytes {
        second
    } else {
        first
    })
}

/// automerge between connected peers: in sync on `receiver` with live sync state, then the
/// sender's extra changes arrive and are synced (only that part is counted).
fn connected_sync(sender: &Automerge, receiver: &Automerge) -> Result<SyncRun> {
    let mut x = receiver.clone();
    let mut y = receiver.clone();
    let (mut sx, mut sy) = (State::new(), State::new());
    sync_pair(&mut x, &mut y, &mut sx, &mut sy)?;
    let have: HashSet<ChangeHash> = receiver
        .get_changes_meta(&[])
        .iter()
        .map(|m| m.hash)
        .collect();
    let extra: Vec<_> = sender
        .get_changes(&[])
        .into_iter()
        .filter(|c| !have.contains(&c.hash()))
        .collect();
    x.apply_changes(extra).map_err(|e| anyhow!("apply: {e}"))?;
    sync_pair(&mut x, &mut y, &mut sx, &mut sy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ROOT;

    #[test]
    fn automerge_sync_settles_and_counts_both_directions() {
        let mut a = Automerge::new();
        let mut tx = a.transaction();
        tx.put(ROOT, "name", "Roller crimper").expect("put");
        tx.commit();
        let mut b = Automerge::new();
        let run =
            sync_pair(&mut a.clone(), &mut b, &mut State::new(), &mut State::new()).expect("sync");
        assert!(run.messages >= 2 && run.bytes > 0);
        assert_eq!(b.get_heads(), a.get_heads());
        let again = sync_pair(&mut a, &mut b, &mut State::new(), &mut State::new()).expect("sync");
        assert!(
            again.bytes > 0,
            "a fresh in-sync exchange still costs heads"
        );
    }
}
