//! What the service needs of this node's own state: a small trait, so that the service's
//! decisions read as protocol and the replicas (over sled) stay the one implementation.

use crate::api::{self, Request};
use crate::private::Privacy;
use crate::replicas::{LiveOutcome, NodeError, Replicas};
use crate::store::KnownPeer;
use hedgerow_protocol::private::{MembershipProof, ProofError};
use hedgerow_protocol::replica::Rejection;
use hedgerow_protocol::sync::id_prefix;
use hedgerow_protocol::sync::{
    DocPayload, DocPayloadV3, HeadsDigest, IdPrefix, LiveChange, LocalDoc, SyncSource,
};
use hedgerow_protocol::sync_compact::{DocRef, ExpandError};
use hedgerow_protocol::{CommonsGenesis, CommonsId, DocId, Signed};
use std::collections::{BTreeMap, HashMap};

/// The local state a [`super::Service`] reads and writes; every error is a [`NodeError`].
pub trait LocalState: SyncSource<Error = NodeError> + super::blobs::BlobAccess {
    /// Blobs this node's policy wants and does not hold, with their sizes (a hub: every
    /// attachment of the commons it holds; a farm: the files of pinned designs).
    fn wanted_blobs(&mut self) -> Vec<([u8; 32], u64)>;
    /// The commons whose documents (or releases) refer to each blob.
    fn blob_commons(&mut self) -> HashMap<[u8; 32], Vec<CommonsId>>;
    /// Of `wants` (blob, size), taken in order, those that would take a commons referring to
    /// them past its quota, counting the blobs held and `pending` (being fetched), with why.
    fn quota_refusals(
        &mut self,
        wants: &[([u8; 32], u64)],
        pending: &[([u8; 32], u64)],
    ) -> HashMap<[u8; 32], String>;
    /// Commons held, with their names.
    fn commons(&self) -> Vec<(CommonsId, String)>;
    /// Whether `commons` is held (a read failure counts as not held).
    fn holds(&self, commons: &CommonsId) -> bool;
    /// Local clocks of a commons' documents, with the clock only where `wants_clock` says.
    fn local_docs(
        &mut self,
        commons: &CommonsId,
        wants_clock: &dyn Fn(&IdPrefix, &HeadsDigest) -> bool,
    ) -> Result<BTreeMap<DocId, LocalDoc>, NodeError>;
    /// Joins a commons whose genesis a peer sent, writing this node's profile into it.
    fn join(&mut self, genesis: &Signed<CommonsGenesis>) -> Result<(), NodeError>;
    /// Records durably whether `commons` is wanted (asked for and not yet received).
    fn set_wanted(&mut self, commons: &CommonsId, wanted: bool) -> Result<(), NodeError>;
    /// Commons recorded as wanted.
    fn wanted(&self) -> Result<Vec<CommonsId>, NodeError>;
    /// Makes every write so far durable.
    fn commit(&self) -> Result<(), NodeError>;
    /// Stores what a pull received of one document; the number of changes stored.
    fn ingest_payload(
        &mut self,
        commons: &CommonsId,
        item: &DocPayload,
    ) -> Result<usize, NodeError>;
    /// A `/hedgerow/sync/3` payload rebuilt in full (see [`DocPayloadV3::expand`]), each
    /// left-out author taken from this node's verified changes of the signed change's actor.
    fn expand_payload(
        &mut self,
        commons: &CommonsId,
        item: &DocPayloadV3,
    ) -> Result<DocPayload, ExpandError>;
    /// Whether the genesis of `doc` is held.
    fn knows_doc(&self, doc: &DocId) -> bool;
    /// Whether a payload is of a charter document (stored before the documents it admits).
    fn is_charter(&self, item: &DocPayload) -> bool;
    /// Applies (or holds) a live change received by gossip.
    fn ingest_live(&mut self, live: &LiveChange) -> Result<LiveOutcome, NodeError>;
    /// Takes the changes made locally since the last call, for publishing.
    fn take_outbox(&mut self) -> Vec<LiveChange>;
    /// Saves lagging snapshot caches.
    fn save_snapshots(&mut self) -> Result<(), NodeError>;
    /// Remembers an address a peer was reached at, for the next start.
    fn remember_peer(&self, peer: &str, known: &KnownPeer) -> Result<(), NodeError>;
    /// Runs a store request from the control channel.
    fn execute(&mut self, request: Request) -> Result<api::Reply, NodeError>;
    /// The author key, as `status` shows it.
    fn author_text(&self) -> String;
    /// Changes kept as evidence of equivocations.
    fn excluded_count(&self) -> usize;
    /// Changes held since start because they build on refused ones.
    fn held_changes(&self) -> u64;
    /// Changes the commons' charters refused since start, by kind.
    fn admission_refusals(&self) -> BTreeMap<String, u64>;
    /// The store's size on disk in bytes.
    fn size_on_disk(&self) -> u64;
    /// The attachment blobs held (wanted and in flight stay 0 until a transfer fills them).
    fn blob_status(&self) -> crate::blobs::BlobStatus;
    /// Ingests since the last call that stored some changes of a document and refused others
    /// for their author (this node's block list).
    fn take_partly_refused(&mut self) -> Vec<(DocId, Rejection)>;
    /// Whether `doc` is hidden or retracted here: stored, but neither served nor relayed.
    fn withheld(&self, doc: &DocId) -> bool;
    /// How this node treats a commons' privacy (see [`Privacy`]).
    fn privacy(&mut self, commons: &CommonsId) -> Privacy;
    /// This device's membership proof for `commons` on the connection `prover` -> `verifier`.
    fn membership_proof(
        &mut self,
        commons: &CommonsId,
        prover: &[u8],
        verifier: &[u8],
    ) -> MembershipProof;
    /// Whether a verified proof's device is a member of its commons now (always, for a
    /// commons that is not private).
    fn judge_proof(&mut self, proof: &MembershipProof) -> Result<(), ProofError>;
}

impl LocalState for Replicas {
    fn wanted_blobs(&mut self) -> Vec<([u8; 32], u64)> {
        crate::fetch_policy::wanted_blobs(self)
    }

    fn quota_refusals(
        &mut self,
        wants: &[([u8; 32], u64)],
        pending: &[([u8; 32], u64)],
    ) -> HashMap<[u8; 32], String> {
        crate::fetch_policy::quota_refusals(self, wants, pending)
    }

    fn blob_commons(&mut self) -> HashMap<[u8; 32], Vec<CommonsId>> {
        match self.referenced_blobs(None) {
            Ok(referenced) => referenced
                .into_iter()
                .map(|(hash, r)| (hash.0, r.commons.into_iter().collect()))
                .collect(),
            // Unreadable: nothing is served from a node that hides commons.
            Err(_) => HashMap::new(),
        }
    }

    fn commons(&self) -> Vec<(CommonsId, String)> {
        self.commons_list()
            .unwrap_or_default()
            .iter()
            .map(|g| (g.body.id(), g.body.name.clone()))
            .collect()
    }

    fn holds(&self, commons: &CommonsId) -> bool {
        Replicas::holds(self, commons).unwrap_or(false)
    }

    fn local_docs(
        &mut self,
        commons: &CommonsId,
        wants_clock: &dyn Fn(&IdPrefix, &HeadsDigest) -> bool,
    ) -> Result<BTreeMap<DocId, LocalDoc>, NodeError> {
        Replicas::local_docs(self, commons, wants_clock)
    }

    fn join(&mut self, genesis: &Signed<CommonsGenesis>) -> Result<(), NodeError> {
        self.join_commons(genesis).map(|_| ())
    }

    fn set_wanted(&mut self, commons: &CommonsId, wanted: bool) -> Result<(), NodeError> {
        if wanted {
            self.store().want_commons(commons)?;
        } else {
            self.store().unwant_commons(commons)?;
        }
        Replicas::commit(self)
    }

    fn wanted(&self) -> Result<Vec<CommonsId>, NodeError> {
        Ok(self.store().wanted_commons()?.into_iter().collect())
    }

    fn commit(&self) -> Result<(), NodeError> {
        Replicas::commit(self)
    }

    fn ingest_payload(
        &mut self,
        commons: &CommonsId,
        item: &DocPayload,
    ) -> Result<usize, NodeError> {
        Replicas::ingest_payload(self, commons, item)
    }

    fn expand_payload(
        &mut self,
        commons: &CommonsId,
        item: &DocPayloadV3,
    ) -> Result<DocPayload, ExpandError> {
        let doc = match item.doc {
            DocRef::Prefix(prefix) => {
                let inventory = self.store().inventory(commons).unwrap_or_default();
                let mut held = inventory
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| id_prefix(id) == prefix);
                match (held.next(), held.next()) {
                    (Some(id), None) => Some(id),
                    _ => None,
                }
            }
            DocRef::Id(id) => Some(id),
            DocRef::Genesis => None,
        };
        // A replica is loaded only when a proof left its author out (the puller holds it).
        let replica = match doc {
            Some(id) if item.proofs.iter().any(|p| p.author.is_none()) => self.replica(&id).ok(),
            _ => None,
        };
        item.clone().expand(doc, |_, actor| {
            replica.as_ref().and_then(|r| {
                r.author_of_actor(&hedgerow_protocol::automerge::ActorId::from(actor))
            })
        })
    }

    fn knows_doc(&self, doc: &DocId) -> bool {
        self.store().doc_genesis(doc).ok().flatten().is_some()
    }

    fn is_charter(&self, item: &DocPayload) -> bool {
        let kind = match &item.genesis {
            Some(genesis) => Some(genesis.body.kind),
            None => self
                .store()
                .doc_genesis(&item.doc)
                .ok()
                .flatten()
                .map(|g| g.body.kind),
        };
        kind == Some(hedgerow_protocol::schema::DocKind::Charter)
    }

    fn ingest_live(&mut self, live: &LiveChange) -> Result<LiveOutcome, NodeError> {
        Replicas::ingest_live(self, live)
    }

    fn take_outbox(&mut self) -> Vec<LiveChange> {
        Replicas::take_outbox(self)
    }

    fn save_snapshots(&mut self) -> Result<(), NodeError> {
        Replicas::save_snapshots(self).map(|_| ())
    }

    fn remember_peer(&self, peer: &str, known: &KnownPeer) -> Result<(), NodeError> {
        Ok(self.store().put_peer(peer, known)?)
    }

    fn execute(&mut self, request: Request) -> Result<api::Reply, NodeError> {
        api::execute(self, request)
    }

    fn author_text(&self) -> String {
        self.author().to_string()
    }

    fn excluded_count(&self) -> usize {
        self.store().excluded_count()
    }

    fn held_changes(&self) -> u64 {
        Replicas::held_changes(self)
    }

    fn admission_refusals(&self) -> BTreeMap<String, u64> {
        self.refusals.clone()
    }

    fn size_on_disk(&self) -> u64 {
        self.store().size_on_disk()
    }

    fn blob_status(&self) -> crate::blobs::BlobStatus {
        crate::blobs::BlobStatus::of(&self.blob_store())
    }

    fn take_partly_refused(&mut self) -> Vec<(DocId, Rejection)> {
        Replicas::take_partly_refused(self)
    }

    fn withheld(&self, doc: &DocId) -> bool {
        // A read failure withholds: serving is what must not happen by mistake.
        !matches!(Replicas::withheld(self, doc), Ok(None))
    }

    fn privacy(&mut self, commons: &CommonsId) -> Privacy {
        Replicas::privacy(self, commons)
    }

    fn membership_proof(
        &mut self,
        commons: &CommonsId,
        prover: &[u8],
        verifier: &[u8],
    ) -> MembershipProof {
        Replicas::membership_proof(self, commons, prover, verifier)
    }

    fn judge_proof(&mut self, proof: &MembershipProof) -> Result<(), ProofError> {
        Replicas::judge_proof(self, proof)
    }
}
