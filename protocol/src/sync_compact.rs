//! The compact wire forms of `/hedgerow/sync/3`: what a fetch and its answer leave out
//! because the other side can derive it.
//!
//! A [`WantV3`] names each actor of the puller's clock by a 4-byte [`short_actor`] digest
//! instead of its 16- or 24-byte id; the responder matches them against its own actors
//! ([`resolve_clock`]) and, where one digest matches several of its actors, treats none of
//! them as held (it sends more, never less). A [`ProofV3`] names the change it signs by the
//! shortest prefix of its hash that is unique among the payload's changes, leaves out the
//! document when it is the payload's, and leaves out the author key when the puller's clock
//! shows it holds changes of that actor (so it verified that actor's author before).
//!
//! Nothing derived is trusted: [`DocPayloadV3::expand`] rebuilds the full [`DocPayload`]
//! (hash from the change bytes, author from the receiver's own verified records) and the
//! receiver then verifies it exactly as a `/hedgerow/sync/1` payload: the signature over the
//! same BLAKE3 digest, the actor binding, the coverage.

use crate::compact::{CompactChanges, CompactError};
use crate::encoding::domain_hash;
use crate::envelope::ChangeProof;
use crate::genesis::{DocGenesis, DocId, Signed};
use crate::identity::{AuthorKey, Signature};
use crate::sync::{Clock, DocPayload, IdPrefix, Want};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Domain of the short actor digests in `/hedgerow/sync/3` clocks.
const DOMAIN_SHORT_ACTOR: &str = "hedgerow 2026-11 short actor v1";

/// Bytes of a short actor digest.
pub const SHORT_ACTOR_LEN: usize = 4;
/// A short digest of an automerge actor id (see [`short_actor`]).
pub type ShortActor = [u8; SHORT_ACTOR_LEN];
/// Fewest bytes of a change hash a [`ProofV3`] names (more when the payload needs them).
pub const MIN_CHANGE_PREFIX: usize = 4;

/// The short digest of an actor id: the first bytes of its domain-separated BLAKE3 hash (a
/// hash, not a prefix, because installs of one key share their first 16 bytes).
pub fn short_actor(actor: &[u8]) -> ShortActor {
    let digest = domain_hash(DOMAIN_SHORT_ACTOR, actor);
    let mut out = [0u8; SHORT_ACTOR_LEN];
    out.copy_from_slice(&digest[..SHORT_ACTOR_LEN]);
    out
}

/// One document a puller wants, with its clock keyed by short actor digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantV3 {
    /// The document's id prefix from the inventory.
    pub prefix: IdPrefix,
    /// Whether the puller already holds the genesis record.
    pub have_genesis: bool,
    /// The puller's per-actor heights, by [`short_actor`]; a digest two of its own actors
    /// share is listed once with the lower height.
    pub clock: Vec<(ShortActor, u64)>,
}

impl WantV3 {
    /// The compact form of `want`.
    pub fn of(want: &Want) -> Self {
        let mut clock: Vec<(ShortActor, u64)> = Vec::with_capacity(want.clock.len());
        let mut at: HashMap<ShortActor, usize> = HashMap::new();
        for (actor, seq) in &want.clock {
            let short = short_actor(actor);
            match at.get(&short) {
                Some(i) => clock[*i].1 = clock[*i].1.min(*seq),
                None => {
                    at.insert(short, clock.len());
                    clock.push((short, *seq));
                }
            }
        }
        Self {
            prefix: want.prefix,
            have_genesis: want.have_genesis,
            clock,
        }
    }
}

/// The responder's reading of a short clock: the full clock over `actors` (the responder's
/// own), keeping only digests that match exactly one of them. A digest listed twice counts at
/// its lower height; one matching several actors, or none, is left out, so the responder
/// sends those actors' changes whole: more than needed at worst, never less.
pub fn resolve_clock<'a>(
    short: &[(ShortActor, u64)],
    actors: impl IntoIterator<Item = &'a [u8]>,
) -> Clock {
    let mut by_short: HashMap<ShortActor, Option<&[u8]>> = HashMap::new();
    for actor in actors {
        by_short
            .entry(short_actor(actor))
            .and_modify(|one| *one = None)
            .or_insert(Some(actor));
    }
    let mut heights: HashMap<ShortActor, u64> = HashMap::new();
    for (digest, seq) in short {
        heights
            .entry(*digest)
            .and_modify(|s| *s = (*s).min(*seq))
            .or_insert(*seq);
    }
    let mut clock: Clock = heights
        .into_iter()
        .filter_map(|(digest, seq)| match by_short.get(&digest) {
            Some(Some(actor)) => Some((actor.to_vec(), seq)),
            _ => None,
        })
        .collect();
    clock.sort_unstable();
    clock
}

/// A detached signature in `/hedgerow/sync/3`: what the receiver cannot derive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofV3 {
    /// The signed change's hash, or its shortest prefix (at least [`MIN_CHANGE_PREFIX`]
    /// bytes) that no other change of the payload shares.
    pub change: Vec<u8>,
    /// The document the change was signed for; `None` when it is the payload's (only a
    /// fork's inherited changes name an ancestor).
    pub doc: Option<DocId>,
    /// The signer; `None` when the puller holds changes of the signed change's actor, whose
    /// author it has verified before.
    pub author: Option<AuthorKey>,
    /// The signature, over the same digest as ever.
    pub signature: Signature,
}

/// How a `/hedgerow/sync/3` payload names its document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocRef {
    /// By the id prefix the puller asked with: a document the puller holds.
    Prefix(IdPrefix),
    /// By its genesis record, which travels with it (its hash is the id).
    Genesis,
    /// In full (a puller holding two documents of one prefix never needs it from an honest
    /// responder, which cannot tell; kept for completeness of the form).
    Id(DocId),
}

/// What a puller lacks of one document, in `/hedgerow/sync/3` form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocPayloadV3 {
    /// The document.
    pub doc: DocRef,
    /// Its genesis, when the puller lacked it.
    pub genesis: Option<Signed<DocGenesis>>,
    /// The missing changes in compact form.
    pub changes: CompactChanges,
    /// Signatures covering the changes.
    pub proofs: Vec<ProofV3>,
}

/// Why a `/hedgerow/sync/3` payload could not be rebuilt in full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The changes do not decode.
    #[error(transparent)]
    Changes(#[from] CompactError),
    /// A proof names a change by an empty prefix or one longer than a hash.
    #[error("a proof names a change by {len} bytes; 1 to 32 are allowed")]
    BadPrefix {
        /// The prefix length.
        len: usize,
    },
    /// No change of the payload has the hash prefix a proof names.
    #[error("no change of the payload has hash prefix {prefix}")]
    NoSuchChange {
        /// The prefix, hex.
        prefix: String,
    },
    /// Several changes of the payload share the hash prefix a proof names.
    #[error("several changes of the payload have hash prefix {prefix}")]
    AmbiguousChange {
        /// The prefix, hex.
        prefix: String,
    },
    /// The payload names its document by a genesis it lacks, or by prefix beside a genesis.
    #[error("the payload names its document by a genesis record it does not carry, or carries one beside a prefix")]
    NoDocument,
    /// The payload names its document by a prefix of no single document this node holds.
    #[error(
        "the payload names document prefix {prefix}, which matches no single document held here"
    )]
    UnknownDocument {
        /// The prefix, hex.
        prefix: String,
    },
    /// A proof leaves out its author, and this node holds no change of that actor to learn it
    /// from (an honest responder's short clock digest matched another actor): asking for the
    /// whole document brings every author key.
    #[error(
        "a proof leaves out the author of change {change}, whose actor this node does not hold"
    )]
    UnknownAuthor {
        /// The change, hex.
        change: String,
    },
}

impl DocPayloadV3 {
    /// The compact form of `payload`, which the responder built for a puller whose clock
    /// holds the actors for which `puller_holds` says so. `doc_hashes` are the hashes of the
    /// changes in `payload` (for `Changes`; a whole `Document` keeps full hashes and authors,
    /// so its receiver need not load it twice). `actor_of` gives a change's actor.
    pub fn from_payload(
        payload: DocPayload,
        payload_hashes: &[[u8; 32]],
        actor_of: impl Fn(&[u8; 32]) -> Option<Vec<u8>>,
        puller_holds: impl Fn(&[u8]) -> bool,
    ) -> Self {
        let whole = matches!(payload.changes, CompactChanges::Document(_));
        let proofs = payload
            .proofs
            .into_iter()
            .map(|(hash, proof)| {
                let change = if whole {
                    hash.to_vec()
                } else {
                    hash[..unique_prefix_len(&hash, payload_hashes)].to_vec()
                };
                let known = !whole && actor_of(&hash).is_some_and(|actor| puller_holds(&actor));
                ProofV3 {
                    change,
                    doc: (proof.doc != payload.doc).then_some(proof.doc),
                    author: (!known).then_some(proof.author),
                    signature: proof.signature,
                }
            })
            .collect();
        let doc = match &payload.genesis {
            Some(genesis) if genesis.body.id() == payload.doc => DocRef::Genesis,
            Some(_) => DocRef::Id(payload.doc),
            None => DocRef::Prefix(crate::sync::id_prefix(&payload.doc)),
        };
        Self {
            doc,
            genesis: payload.genesis,
            changes: payload.changes,
            proofs,
        }
    }

    /// Rebuilds the full payload: each proof's change hash from the payload's own change
    /// bytes, its document from the payload, its author (when left out) from `author_of`,
    /// which looks the signed change's actor up among the changes this node verified before.
    /// The result is then verified like any payload.
    ///
    /// Errors: [`ExpandError::Changes`], [`ExpandError::BadPrefix`],
    /// [`ExpandError::NoSuchChange`], [`ExpandError::AmbiguousChange`],
    /// [`ExpandError::UnknownAuthor`], [`ExpandError::NoDocument`],
    /// [`ExpandError::UnknownDocument`]. `doc` is the one document held here with the
    /// payload's prefix, if any (used only when the payload names it by prefix).
    pub fn expand(
        self,
        doc: Option<DocId>,
        author_of: impl Fn(&DocId, &[u8]) -> Option<AuthorKey>,
    ) -> Result<DocPayload, ExpandError> {
        let own = match (self.doc, &self.genesis, doc) {
            (DocRef::Id(id), _, _) => id,
            (DocRef::Genesis, Some(genesis), _) => genesis.body.id(),
            (DocRef::Prefix(_), None, Some(id)) => id,
            (DocRef::Genesis, None, _) | (DocRef::Prefix(_), Some(_), _) => {
                return Err(ExpandError::NoDocument)
            }
            (DocRef::Prefix(prefix), None, None) => {
                return Err(ExpandError::UnknownDocument {
                    prefix: hex::encode(prefix),
                })
            }
        };
        let needs_changes = self
            .proofs
            .iter()
            .any(|p| p.change.len() != 32 || p.author.is_none());
        // Only what the proofs need: a whole document with full proofs is not loaded here.
        let changes: Vec<([u8; 32], Vec<u8>)> = if needs_changes {
            self.changes
                .decode()?
                .iter()
                .map(|c| (c.hash().0, c.actor_id().to_bytes().to_vec()))
                .collect()
        } else {
            Vec::new()
        };
        let mut proofs = Vec::with_capacity(self.proofs.len());
        for proof in self.proofs {
            let doc = proof.doc.unwrap_or(own);
            let (hash, actor) = find_change(&proof.change, &changes)?;
            let author = match proof.author {
                Some(author) => author,
                None => actor
                    .and_then(|actor| author_of(&doc, actor))
                    .ok_or_else(|| ExpandError::UnknownAuthor {
                        change: hex::encode(hash),
                    })?,
            };
            proofs.push((
                hash,
                ChangeProof {
                    doc,
                    author,
                    signature: proof.signature,
                },
            ));
        }
        Ok(DocPayload {
            doc: own,
            genesis: self.genesis,
            changes: self.changes,
            proofs,
        })
    }

    /// The id prefix of the document (what the puller asked with).
    pub fn prefix(&self) -> IdPrefix {
        match (&self.doc, &self.genesis) {
            (DocRef::Prefix(prefix), _) => *prefix,
            (DocRef::Id(id), _) => crate::sync::id_prefix(id),
            (DocRef::Genesis, Some(genesis)) => crate::sync::id_prefix(&genesis.body.id()),
            (DocRef::Genesis, None) => [0; crate::sync::ID_PREFIX_LEN],
        }
    }

    /// Approximate bytes this payload takes on the wire.
    pub fn wire_size(&self) -> usize {
        self.changes.len()
            + self.proofs.len() * 72
            + if self.genesis.is_some() { 200 } else { 0 }
            + 40
    }
}

/// The hash and actor of the one change `prefix` names (a full hash needs no change list).
fn find_change<'a>(
    prefix: &[u8],
    changes: &'a [([u8; 32], Vec<u8>)],
) -> Result<([u8; 32], Option<&'a [u8]>), ExpandError> {
    if prefix.is_empty() || prefix.len() > 32 {
        return Err(ExpandError::BadPrefix { len: prefix.len() });
    }
    let mut found = changes.iter().filter(|(hash, _)| hash.starts_with(prefix));
    match (found.next(), found.next()) {
        (Some((hash, actor)), None) => Ok((*hash, Some(actor.as_slice()))),
        (Some(_), Some(_)) => Err(ExpandError::AmbiguousChange {
            prefix: hex::encode(prefix),
        }),
        (None, _) if prefix.len() == 32 => {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(prefix);
            Ok((hash, None))
        }
        (None, _) => Err(ExpandError::NoSuchChange {
            prefix: hex::encode(prefix),
        }),
    }
}

/// The fewest bytes of `hash` (at least [`MIN_CHANGE_PREFIX`]) that no other of `hashes` shares.
fn unique_prefix_len(hash: &[u8; 32], hashes: &[[u8; 32]]) -> usize {
    hashes
        .iter()
        .filter(|other| *other != hash)
        .map(|other| hash.iter().zip(other).take_while(|(a, b)| a == b).count() + 1)
        .fold(MIN_CHANGE_PREFIX, usize::max)
        .min(32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{actor_for, verify_signature};
    use crate::genesis::CommonsId;
    use crate::identity::DeviceKey;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, Change, ROOT};

    /// `count` changes by `key` in `doc`, with the signed envelope of the last one's bytes.
    fn changes(key: &DeviceKey, doc: DocId, count: usize) -> (Vec<Change>, ChangeProof) {
        let mut am = AutoCommit::new().with_actor(actor_for(&key.author(), &doc));
        for n in 0..count {
            am.put(ROOT, "step", n as i64).expect("put");
            am.commit();
        }
        let all: Vec<Change> = am.get_changes(&[]);
        let last = all.last().expect("a change").raw_bytes().to_vec();
        let envelope = crate::ChangeEnvelope::sign(key, CommonsId([7; 32]), doc, last);
        (all, envelope.proof())
    }

    fn payload(doc: DocId, all: &[Change], proof: ChangeProof) -> DocPayload {
        let last = all.last().expect("a change").hash().0;
        DocPayload {
            doc,
            genesis: None,
            changes: CompactChanges::of_changes(all),
            proofs: vec![(last, proof)],
        }
    }

    /// Two actor ids whose short digests collide (a birthday search over 4 bytes).
    fn colliding_actors() -> (Vec<u8>, Vec<u8>) {
        let mut seen: HashMap<ShortActor, Vec<u8>> = HashMap::new();
        for n in 0u64.. {
            let actor = n.to_le_bytes().repeat(2);
            if let Some(other) = seen.insert(short_actor(&actor), actor.clone()) {
                return (other, actor);
            }
        }
        unreachable!("a 4-byte digest collides within 2^32 tries")
    }

    #[test]
    fn a_short_clock_resolves_only_digests_that_name_one_actor() {
        let (a, b) = colliding_actors();
        let c = vec![3u8; 24];
        let want = Want {
            prefix: [1; 8],
            have_genesis: true,
            clock: vec![(a.clone(), 5), (c.clone(), 2)],
        };
        let short = WantV3::of(&want);
        assert_eq!(short.clock.len(), 2);
        // The responder holds a, b and c: the digest a and b share is left out (all of
        // their changes are sent), c is read at its height.
        let resolved = resolve_clock(&short.clock, [a.as_slice(), b.as_slice(), &c]);
        assert_eq!(resolved, vec![(c.clone(), 2)]);
        // Holding only a, the digest names it.
        let resolved = resolve_clock(&short.clock, [a.as_slice(), &c]);
        let mut expected = vec![(a.clone(), 5), (c.clone(), 2)];
        expected.sort_unstable();
        assert_eq!(resolved, expected);
        // The puller's own colliding actors travel once, at the lower height.
        let both = Want {
            clock: vec![(a.clone(), 5), (b.clone(), 3)],
            ..want
        };
        assert_eq!(WantV3::of(&both).clock, vec![(short_actor(&a), 3)]);
    }

    #[test]
    fn a_compact_payload_expands_to_the_full_one_and_still_verifies() {
        let key = DeviceKey::from_secret([4; 32]);
        let doc = DocId([9; 32]);
        let (all, proof) = changes(&key, doc, 5);
        let full = payload(doc, &all, proof.clone());
        let hashes: Vec<[u8; 32]> = all.iter().map(|c| c.hash().0).collect();
        let actor_of = |_: &[u8; 32]| Some(all[0].actor_id().to_bytes().to_vec());
        let compact = DocPayloadV3::from_payload(full.clone(), &hashes, actor_of, |_| true);
        let sent = &compact.proofs[0];
        assert!(sent.change.len() < 32 && sent.doc.is_none() && sent.author.is_none());
        assert!(
            crate::encoding::encode(&compact.proofs).len() + 64
                < crate::encoding::encode(&full.proofs).len(),
            "the proof shrinks by more than a key and a document id"
        );

        let author = key.author();
        let expanded = compact
            .clone()
            .expand(Some(doc), |_, _| Some(author))
            .expect("expands");
        assert_eq!(expanded, full);
        let last = all.last().expect("change");
        verify_signature(&CommonsId([7; 32]), &expanded.proofs[0].1, last.raw_bytes())
            .expect("the same signature over the same digest");

        // An author this node cannot derive is asked for again, not guessed.
        assert!(matches!(
            compact.clone().expand(Some(doc), |_, _| None),
            Err(ExpandError::UnknownAuthor { .. })
        ));
        // A derived author that is not the signer fails verification as before.
        let other = DeviceKey::from_secret([5; 32]).author();
        let wrong = compact
            .clone()
            .expand(Some(doc), |_, _| Some(other))
            .expect("expands");
        assert!(
            verify_signature(&CommonsId([7; 32]), &wrong.proofs[0].1, last.raw_bytes()).is_err()
        );
        // A prefix naming no change of the payload is refused.
        let mut bogus = compact;
        bogus.proofs[0].change = vec![0xff ^ hashes[4][0]; 4];
        bogus.proofs[0].change[1..].copy_from_slice(&[0xee, 0xdd, 0xcc]);
        assert!(matches!(
            bogus.expand(Some(doc), |_, _| Some(author)),
            Err(ExpandError::NoSuchChange { .. } | ExpandError::AmbiguousChange { .. })
        ));
    }

    #[test]
    fn an_author_the_puller_lacks_and_a_whole_document_travel_in_full() {
        let key = DeviceKey::from_secret([4; 32]);
        let doc = DocId([9; 32]);
        let (all, proof) = changes(&key, doc, 3);
        let full = payload(doc, &all, proof);
        let hashes: Vec<[u8; 32]> = all.iter().map(|c| c.hash().0).collect();
        let actor_of = |_: &[u8; 32]| Some(all[0].actor_id().to_bytes().to_vec());
        let lacking = DocPayloadV3::from_payload(full.clone(), &hashes, actor_of, |_| false);
        assert_eq!(lacking.proofs[0].author, Some(key.author()));
        assert_eq!(
            lacking.expand(Some(doc), |_, _| None).expect("expands"),
            full
        );

        let mut whole = full;
        whole.changes = CompactChanges::Document(vec![0; 8]);
        let sent = DocPayloadV3::from_payload(whole.clone(), &hashes, actor_of, |_| true);
        assert_eq!(sent.proofs[0].change.len(), 32);
        assert!(sent.proofs[0].author.is_some());
        // Nothing to derive: expanding does not even parse the (here bogus) document.
        assert_eq!(sent.expand(Some(doc), |_, _| None).expect("expands"), whole);
    }

    #[test]
    fn a_prefix_grows_until_it_is_unique() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a[..7].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
        b[..7].copy_from_slice(&[1, 2, 3, 4, 5, 6, 8]);
        assert_eq!(unique_prefix_len(&a, &[a, b]), 7);
        assert_eq!(unique_prefix_len(&a, &[a]), MIN_CHANGE_PREFIX);
    }
}
