//! The node's side of the sync protocol: answering peers from the store, and
//! describing local state to a pull session.

use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::automerge::ActorId;
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::sync::{
    heads_digest, id_prefix, DocPayload, HeadsDigest, IdPrefix, LocalDoc, SyncSource, Want,
};
use hedgerow_protocol::{CommonsGenesis, CommonsId, DocId, Signed};
use std::collections::{BTreeMap, HashMap};

impl SyncSource for Replicas {
    type Error = NodeError;

    fn commons_genesis(
        &self,
        commons: &CommonsId,
    ) -> Result<Option<Signed<CommonsGenesis>>, NodeError> {
        Ok(self.store().commons(commons)?)
    }

    fn inventory(&self, commons: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, NodeError> {
        let mut out = Vec::new();
        for id in self.store().doc_ids(commons)? {
            if let Some(summary) = self.store().summary(&id)? {
                out.push((id, heads_digest(&summary.heads)));
            }
        }
        Ok(out)
    }

    fn payload(&mut self, doc: &DocId, want: &Want) -> Result<Option<DocPayload>, NodeError> {
        let replica = self.replica(doc)?;
        let clock: BTreeMap<ActorId, u64> = want
            .clock
            .iter()
            .map(|(actor, seq)| (ActorId::from(actor.as_slice()), *seq))
            .collect();
        let missing = replica.missing_for(&clock);
        if missing.is_empty() && want.have_genesis {
            return Ok(None);
        }
        let (changes, proofs) = if missing.is_empty() {
            (CompactChanges::none(), Vec::new())
        } else {
            replica.compact_for(&missing)?
        };
        Ok(Some(DocPayload {
            doc: *doc,
            genesis: (!want.have_genesis).then(|| replica.genesis().clone()),
            changes,
            proofs: proofs.into_iter().map(|(h, p)| (h.0, p)).collect(),
        }))
    }
}

impl Replicas {
    /// Local state of a commons for a pull: every document's digest, with clocks only
    /// for those whose digest differs from `remote` (loading a replica costs; most match).
    pub fn local_docs(
        &mut self,
        commons: &CommonsId,
        remote: Option<&[(IdPrefix, HeadsDigest)]>,
    ) -> Result<BTreeMap<DocId, LocalDoc>, NodeError> {
        let remote: HashMap<IdPrefix, HeadsDigest> =
            remote.unwrap_or(&[]).iter().copied().collect();
        let mut out = BTreeMap::new();
        for (id, digest) in self.inventory(commons)? {
            let differs = remote.get(&id_prefix(&id)).is_some_and(|d| *d != digest);
            let clock = if differs {
                self.replica(&id)?
                    .clock()
                    .into_iter()
                    .map(|(actor, seq)| (actor.to_bytes().to_vec(), seq))
                    .collect()
            } else {
                Vec::new()
            };
            out.insert(id, LocalDoc { digest, clock });
        }
        Ok(out)
    }

    /// Stores one document payload received from a peer; returns how many changes were new.
    pub fn ingest_payload(
        &mut self,
        commons: &CommonsId,
        payload: &DocPayload,
    ) -> Result<usize, NodeError> {
        if let Some(genesis) = &payload.genesis {
            if genesis.body.commons != *commons {
                return Err(NodeError::Invalid(format!(
                    "peer sent document {} of another commons",
                    payload.doc
                )));
            }
        } else if self.store().doc_genesis(&payload.doc)?.is_none() {
            return Err(NodeError::Invalid(format!(
                "peer sent changes of document {} without its genesis",
                payload.doc
            )));
        }
        self.ingest_compact(
            payload.genesis.as_ref(),
            &payload.doc,
            &payload.changes,
            payload.proofs.clone(),
        )
    }
}
