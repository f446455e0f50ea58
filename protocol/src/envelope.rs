//! The signed change envelope: the unit of provenance.
//!
//! Every automerge change made on a node is wrapped in a [`ChangeEnvelope`]
//! carrying the commons id, the document id, the raw change bytes, the
//! author's key and an ed25519 signature over a domain-separated BLAKE3 hash of
//! all of these. The change's automerge actor id must be bound to the author and
//! document ([`actor_for_install`]), so a change cannot claim another author; its last
//! 8 bytes name the install (one home on one device) that wrote it, so two homes
//! holding one key write as two actors and their changes merge.
//!
//! The signature can also travel detached, as a [`ChangeProof`], beside a
//! document's changes in compact form ([`crate::compact`]); there, one proof over an author's latest
//! change covers that author's earlier changes through automerge's hash links.

use crate::encoding::{
    decode, domain_hash, encode, DecodeError, DOMAIN_ACTOR, DOMAIN_ACTOR_V2, DOMAIN_CHANGE,
    DOMAIN_RECORD_ID,
};
use crate::genesis::{CommonsId, DocId};
use crate::identity::{AuthorKey, DeviceKey, InstallTag, PreparedKey, Signature, SignatureError};
use automerge::{ActorId, Change};
use serde::{Deserialize, Serialize};

/// Largest change an envelope may carry, in bytes (a whole page of build instructions fits many times).
pub const MAX_CHANGE_BYTES: usize = 1024 * 1024;

/// Length of a first-release actor id: 16 bytes bound to author and document.
pub const ACTOR_V1_LEN: usize = 16;
/// Length of an actor id that names its install: 16 bytes bound to author and document, then the 8-byte install tag.
pub const ACTOR_V2_LEN: usize = 24;

/// The first release's actor id (16 bytes bound to author and document); still accepted.
///
/// Binding the actor to the document as well as the key means that a fork's
/// own changes start a fresh sequence, so they can never collide with the
/// parent's later changes by the same author.
pub fn actor_for_v1(author: &AuthorKey, doc: &DocId) -> ActorId {
    ActorId::from(&actor_binding(DOMAIN_ACTOR, author, doc)[..])
}

/// The actor id an install of `author` writes `doc` with: 16 bytes bound to author and
/// document, then the install tag (24 bytes in all).
pub fn actor_for_install(author: &AuthorKey, doc: &DocId, install: &InstallTag) -> ActorId {
    let mut actor = Vec::with_capacity(ACTOR_V2_LEN);
    actor.extend_from_slice(&actor_binding(DOMAIN_ACTOR_V2, author, doc));
    actor.extend_from_slice(&install.0);
    ActorId::from(actor)
}

/// The actor id of the default install (tag zero), for tools and tests that sign as one install.
pub fn actor_for(author: &AuthorKey, doc: &DocId) -> ActorId {
    actor_for_install(author, doc, &InstallTag::default())
}

fn actor_binding(domain: &str, author: &AuthorKey, doc: &DocId) -> [u8; ACTOR_V1_LEN] {
    let mut input = Vec::with_capacity(64);
    input.extend_from_slice(author.as_bytes());
    input.extend_from_slice(doc.as_bytes());
    let mut out = [0u8; ACTOR_V1_LEN];
    out.copy_from_slice(&domain_hash(domain, &input)[..ACTOR_V1_LEN]);
    out
}

/// Whether `actor` is one `author` may write `doc` with: the first release's binding, or any install's.
pub fn actor_is_bound(actor: &ActorId, author: &AuthorKey, doc: &DocId) -> bool {
    let bytes = actor.to_bytes();
    match bytes.len() {
        ACTOR_V1_LEN => bytes == actor_binding(DOMAIN_ACTOR, author, doc),
        ACTOR_V2_LEN => bytes[..ACTOR_V1_LEN] == actor_binding(DOMAIN_ACTOR_V2, author, doc),
        _ => false,
    }
}

/// A signed automerge change, as stored and as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEnvelope {
    /// The commons the change belongs to.
    pub commons: CommonsId,
    /// The document the change was made in (for a fork's inherited changes: the ancestor).
    pub doc: DocId,
    /// Who made and signed the change.
    pub author: AuthorKey,
    /// The raw automerge change bytes.
    pub change: Vec<u8>,
    /// Signature over [`signing_digest`] of the fields above.
    pub signature: Signature,
}

/// A detached signature over one change, stored and sent beside the change bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeProof {
    /// The document the change was signed for.
    pub doc: DocId,
    /// Who signed.
    pub author: AuthorKey,
    /// The signature.
    pub signature: Signature,
}

/// Why an envelope was refused. Nothing of a refused envelope is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The envelope bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    Signature(#[from] SignatureError),
    /// The change is larger than [`MAX_CHANGE_BYTES`].
    #[error("change is {len} bytes, over the {MAX_CHANGE_BYTES}-byte limit")]
    TooLarge {
        /// The change's size.
        len: usize,
    },
    /// The change bytes are not an automerge change.
    #[error("change bytes do not parse as an automerge change: {reason}")]
    BadChange {
        /// The parser's reason.
        reason: String,
    },
    /// The change's actor is not the one bound to the signer.
    #[error("change claims actor {claimed} but its signer {author} writes as actor {expected} in this document")]
    ActorMismatch {
        /// The signer.
        author: AuthorKey,
        /// Actor in the change, hex.
        claimed: String,
        /// Actor the signer must use, hex.
        expected: String,
    },
}

/// The digest an author signs for a change.
pub fn signing_digest(
    commons: &CommonsId,
    doc: &DocId,
    author: &AuthorKey,
    change: &[u8],
) -> [u8; 32] {
    domain_hash(DOMAIN_CHANGE, &encode(&(commons, doc, author, change)))
}

/// A change whose signature and actor binding have been checked.
#[derive(Clone, Debug)]
pub struct VerifiedChange {
    /// The parsed change.
    pub change: Change,
    /// Its signer.
    pub author: AuthorKey,
    /// The signature, detached.
    pub proof: ChangeProof,
}

impl ChangeEnvelope {
    /// Signs `change` as `key` for `doc` in `commons`.
    pub fn sign(key: &DeviceKey, commons: CommonsId, doc: DocId, change: Vec<u8>) -> Self {
        let author = key.author();
        let signature = key.sign(&signing_digest(&commons, &doc, &author, &change));
        Self {
            commons,
            doc,
            author,
            change,
            signature,
        }
    }

    /// Rebuilds an envelope from stored change bytes and their detached proof.
    pub fn from_proof(commons: CommonsId, proof: &ChangeProof, change: Vec<u8>) -> Self {
        Self {
            commons,
            doc: proof.doc,
            author: proof.author,
            change,
            signature: proof.signature,
        }
    }

    /// The detached form of the signature.
    pub fn proof(&self) -> ChangeProof {
        ChangeProof {
            doc: self.doc,
            author: self.author,
            signature: self.signature,
        }
    }

    /// The deterministic, versioned encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes an envelope (without verifying it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Ok(decode(bytes, "change envelope")?)
    }

    /// The envelope's content id: the BLAKE3 hash of its encoding.
    pub fn id(&self) -> [u8; 32] {
        domain_hash(DOMAIN_RECORD_ID, &self.to_bytes())
    }

    /// Checks size, signature, that the bytes parse and that the actor is bound to the signer.
    pub fn verify(&self) -> Result<VerifiedChange, EnvelopeError> {
        let change = verify_change_bytes(&self.commons, &self.proof(), &self.change)?;
        Ok(VerifiedChange {
            change,
            author: self.author,
            proof: self.proof(),
        })
    }
}

/// Verifies a detached proof over change bytes; returns the parsed change.
pub fn verify_change_bytes(
    commons: &CommonsId,
    proof: &ChangeProof,
    bytes: &[u8],
) -> Result<Change, EnvelopeError> {
    verify_signature(commons, proof, bytes)?;
    let change = crate::compact::decode_change(bytes).map_err(|e| EnvelopeError::BadChange {
        reason: e.to_string(),
    })?;
    check_actor(&change, &proof.author, &proof.doc)?;
    Ok(change)
}

/// Checks a detached proof's size limit and signature over change bytes, without parsing
/// them: for callers that hold the parsed change already (and check its actor themselves).
pub fn verify_signature(
    commons: &CommonsId,
    proof: &ChangeProof,
    bytes: &[u8],
) -> Result<(), EnvelopeError> {
    verify_signature_with(commons, proof, bytes, &proof.author.prepare()?)
}

/// [`verify_signature`] with the author's key prepared once by the caller; `key` must be
/// `proof.author`'s (anything else is refused as a mismatch).
pub fn verify_signature_with(
    commons: &CommonsId,
    proof: &ChangeProof,
    bytes: &[u8],
    key: &PreparedKey,
) -> Result<(), EnvelopeError> {
    if bytes.len() > MAX_CHANGE_BYTES {
        return Err(EnvelopeError::TooLarge { len: bytes.len() });
    }
    if key.author() != proof.author {
        return Err(SignatureError::Mismatch(proof.author).into());
    }
    key.verify(
        &signing_digest(commons, &proof.doc, &proof.author, bytes),
        &proof.signature,
    )?;
    Ok(())
}

/// Checks that `change` was written with the actor bound to `author` in `doc`.
pub fn check_actor(change: &Change, author: &AuthorKey, doc: &DocId) -> Result<(), EnvelopeError> {
    if !actor_is_bound(change.actor_id(), author, doc) {
        return Err(EnvelopeError::ActorMismatch {
            author: *author,
            claimed: change.actor_id().to_hex_string(),
            expected: format!(
                "{} followed by an 8-byte install tag",
                hex::encode(actor_binding(DOMAIN_ACTOR_V2, author, doc))
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    fn make_change(author: &AuthorKey, doc: &DocId) -> Vec<u8> {
        let mut am = Automerge::new().with_actor(actor_for(author, doc));
        let mut tx = am.transaction();
        tx.put(ROOT, "name", "Roller crimper").unwrap();
        tx.commit();
        am.get_last_local_change().unwrap().raw_bytes().to_vec()
    }

    fn sample() -> (DeviceKey, ChangeEnvelope) {
        let key = DeviceKey::from_secret([5; 32]);
        let commons = CommonsId([1; 32]);
        let doc = DocId([2; 32]);
        let change = make_change(&key.author(), &doc);
        let env = ChangeEnvelope::sign(&key, commons, doc, change);
        (key, env)
    }

    #[test]
    fn round_trip_verifies() {
        let (key, env) = sample();
        let bytes = env.to_bytes();
        let back = ChangeEnvelope::from_bytes(&bytes).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.to_bytes(), bytes, "encoding is deterministic");
        let verified = back.verify().unwrap();
        assert_eq!(verified.author, key.author());
    }

    #[test]
    fn every_single_byte_tampering_is_detected() {
        let (_, env) = sample();
        let bytes = env.to_bytes();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut tampered = bytes.clone();
                tampered[i] ^= flip;
                let outcome = ChangeEnvelope::from_bytes(&tampered).and_then(|e| e.verify());
                assert!(
                    outcome.is_err(),
                    "tampering byte {i} with {flip:#x} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn actor_of_another_author_is_refused() {
        let key = DeviceKey::from_secret([5; 32]);
        let victim = DeviceKey::from_secret([6; 32]).author();
        let doc = DocId([2; 32]);
        let change = make_change(&victim, &doc);
        let env = ChangeEnvelope::sign(&key, CommonsId([1; 32]), doc, change);
        assert!(matches!(
            env.verify(),
            Err(EnvelopeError::ActorMismatch { .. })
        ));
    }

    #[test]
    fn garbage_change_bytes_are_refused() {
        let key = DeviceKey::from_secret([5; 32]);
        let env = ChangeEnvelope::sign(
            &key,
            CommonsId([1; 32]),
            DocId([2; 32]),
            b"not a change".to_vec(),
        );
        assert!(matches!(env.verify(), Err(EnvelopeError::BadChange { .. })));
    }
}
