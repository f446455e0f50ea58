//! The node's side of the sync protocol: answering peers from the store, and
//! describing local state to a pull session.

use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::automerge::{ActorId, ChangeHash};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::sync::{
    id_prefix, DocPayload, DocPayloadV3, HeadsDigest, IdPrefix, LocalDoc, SyncSource, Want, WantV3,
};
use hedgerow_protocol::sync_compact::resolve_clock;
use hedgerow_protocol::{CommonsGenesis, CommonsId, DocId, Signed};
use std::collections::{BTreeMap, HashSet};

impl SyncSource for Replicas {
    type Error = NodeError;

    fn commons_genesis(
        &self,
        commons: &CommonsId,
    ) -> Result<Option<Signed<CommonsGenesis>>, NodeError> {
        Ok(self.store().commons(commons)?)
    }

    /// What peers are offered: every document held but those hidden or retracted here.
    fn inventory(&self, commons: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, NodeError> {
        let mut inventory = self.store().inventory(commons)?;
        // Documents hidden by a steward are not served (nor listed to peers).
        if let Some(Some(policy)) = self.charters.get(commons) {
            let hidden = policy.state.hidden();
            if !hidden.is_empty() {
                inventory.retain(|(id, _)| !hidden.contains_key(id));
            }
        }
        // Nor those hidden or retracted on this node.
        let withheld = self.withheld_in(commons);
        if !withheld.is_empty() {
            inventory.retain(|(id, _)| !withheld.contains(id));
        }
        Ok(inventory)
    }

    fn payload(&mut self, doc: &DocId, want: &Want) -> Result<Option<DocPayload>, NodeError> {
        Ok(self
            .payload_with_hashes(doc, want)?
            .map(|(payload, _)| payload))
    }

    /// The short clock read against this document's actors ([`resolve_clock`]: a digest
    /// matching several is left out, so their changes go whole), then the proofs cut down to
    /// what the puller cannot derive.
    fn payload_v3(
        &mut self,
        doc: &DocId,
        want: &WantV3,
    ) -> Result<Option<DocPayloadV3>, NodeError> {
        let clock = if want.clock.is_empty() {
            Vec::new()
        } else {
            let actors: Vec<Vec<u8>> = self
                .replica(doc)?
                .clock()
                .into_keys()
                .map(|actor| actor.to_bytes().to_vec())
                .collect();
            resolve_clock(&want.clock, actors.iter().map(Vec::as_slice))
        };
        let full = Want {
            prefix: want.prefix,
            have_genesis: want.have_genesis,
            clock,
        };
        let Some((payload, hashes)) = self.payload_with_hashes(doc, &full)? else {
            return Ok(None);
        };
        let held: HashSet<&[u8]> = full
            .clock
            .iter()
            .filter(|(_, seq)| *seq > 0)
            .map(|(actor, _)| actor.as_slice())
            .collect();
        let replica = self.replica(doc)?;
        let hashes: Vec<[u8; 32]> = hashes.iter().map(|h| h.0).collect();
        Ok(Some(DocPayloadV3::from_payload(
            payload,
            &hashes,
            |hash| {
                replica
                    .doc()
                    .get_change_meta_by_hash(&ChangeHash(*hash))
                    .map(|meta| meta.actor.to_bytes().to_vec())
            },
            |actor| held.contains(actor),
        )))
    }
}

impl Replicas {
    /// [`SyncSource::payload`], with the hashes of the changes it carries.
    fn payload_with_hashes(
        &mut self,
        doc: &DocId,
        want: &Want,
    ) -> Result<Option<(DocPayload, Vec<ChangeHash>)>, NodeError> {
        if let Some(genesis) = self.store().doc_genesis(doc)? {
            if self.is_hidden(&genesis.body.commons, doc) {
                return Ok(None);
            }
        }
        if self.withheld(doc)?.is_some() {
            return Ok(None);
        }
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
        Ok(Some((
            DocPayload {
                doc: *doc,
                genesis: (!want.have_genesis).then(|| replica.genesis().clone()),
                changes,
                proofs: proofs.into_iter().map(|(h, p)| (h.0, p)).collect(),
            },
            missing,
        )))
    }
}

impl Replicas {
    /// Local state of a commons for a pull: every document's digest, with its per-author
    /// clock only where `wants_clock(id prefix, digest)` says so (loading a replica costs;
    /// most documents need none).
    pub fn local_docs(
        &mut self,
        commons: &CommonsId,
        wants_clock: impl Fn(&IdPrefix, &HeadsDigest) -> bool,
    ) -> Result<BTreeMap<DocId, LocalDoc>, NodeError> {
        let mut out = BTreeMap::new();
        // Everything held, hidden documents too: a pull must not ask peers for them again.
        for (id, digest) in self.store().inventory(commons)? {
            let clock = if wants_clock(&id_prefix(&id), &digest) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::{Home, LocalProfile};
    use hedgerow_protocol::schema::{DocKind, Edit, NewDocument};
    use hedgerow_protocol::sync::heads_digest;

    /// Every document of `commons` with the digest of its replica's heads, in id order.
    fn truth(replicas: &mut Replicas, commons: &CommonsId) -> Vec<(DocId, HeadsDigest)> {
        let ids = replicas.store().doc_ids(commons).expect("ids");
        let mut out: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let heads = replicas.replica(&id).expect("held").heads();
                (
                    id,
                    heads_digest(&heads.iter().map(|h| h.0).collect::<Vec<_>>()),
                )
            })
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// The inventory is read from sled once and then kept in memory; it must follow every
    /// write and equal what a freshly opened store reads.
    #[test]
    fn the_cached_inventory_follows_every_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = LocalProfile {
            name: "Alice".into(),
            ..LocalProfile::default()
        };
        let home = Home::init(dir.path(), &profile).expect("home");
        let mut replicas = Replicas::open(&home).expect("store");
        let commons = replicas.create_commons("Farm Hack", "").expect("commons");
        let design = NewDocument::new(DocKind::Design, "Roller crimper");
        let first = replicas.create_doc(commons, &design, &[]).expect("doc");
        let before = replicas.inventory(&commons).expect("inventory");
        assert_eq!(before, truth(&mut replicas, &commons));
        replicas.create_doc(commons, &design, &[]).expect("doc");
        let edit = Edit::Set {
            field: "summary".into(),
            value: "Flattens a cover crop".into(),
        };
        replicas.edit_doc(&first, &[edit]).expect("edit");
        let after = replicas.inventory(&commons).expect("inventory");
        assert_eq!(after.len(), before.len() + 1, "the new document is listed");
        assert_ne!(
            after.iter().find(|(id, _)| *id == first),
            before.iter().find(|(id, _)| *id == first),
            "the edited document's digest moved"
        );
        let expected = truth(&mut replicas, &commons);
        assert_eq!(after, expected);
        drop(replicas);
        let reopened = Replicas::open(&home).expect("store");
        assert_eq!(reopened.inventory(&commons).expect("inventory"), expected);
    }
}
