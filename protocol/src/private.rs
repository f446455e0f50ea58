//! Private commons: the membership proof a peer gives on a connection, the gossip topic that
//! hides the commons id, and the key that seals a private commons' bundle records.
//!
//! A private commons (`Found { private: true }` in its charter) is served only to the nodes of
//! its members. Three formats make that so, all pure and pinned by known answers:
//!
//! - **Membership proof, version 1** ([`MembershipProof`]): a device signs
//!   `domain_hash("hedgerow 2026-11 private commons proof v1", encode(&(commons, prover peer id
//!   bytes, verifier peer id bytes)))`. Both peer ids come from the authenticated transport
//!   (Noise or QUIC's TLS), so a proof made for one pair of nodes proves nothing on any other
//!   connection. The verifier checks the signature, then ([`MembershipProof::member`]) that the
//!   device's person holds a role in its charter, again whenever the charter changes.
//! - **Topic, version 1** ([`private_topic_id`]): `hedgerow/p/` + hex of
//!   `domain_hash("hedgerow 2026-11 private commons topic v1", commons id)`.
//! - **Bundle key, version 1** ([`bundle_key`]): `domain_hash("hedgerow 2026-11 private commons
//!   bundle key v1", encode(&genesis body))`; only a holder of the genesis (a member or former
//!   member) can derive it, the commons id alone does not reveal it. [`seal`] and [`open`] use
//!   XChaCha20-Poly1305 with a random 24-byte nonce in front of the ciphertext.

use crate::charter::{CharterState, DeviceCertificate, Role};
use crate::encoding::{domain_hash, encode};
use crate::genesis::{CommonsGenesis, CommonsId, Signed};
use crate::identity::{AuthorKey, DeviceKey, Signature};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// Domain of membership proof signatures.
pub const DOMAIN_PROOF: &str = "hedgerow 2026-11 private commons proof v1";
/// Domain of private commons gossip topic ids.
pub const DOMAIN_TOPIC: &str = "hedgerow 2026-11 private commons topic v1";
/// Domain of the key sealing a private commons' bundle records.
pub const DOMAIN_BUNDLE_KEY: &str = "hedgerow 2026-11 private commons bundle key v1";
/// Prefix of a private commons' gossip topic; the hex of [`private_topic_id`] follows it.
pub const PRIVATE_TOPIC_PREFIX: &str = "hedgerow/p/";
/// Bytes of the random nonce in front of a sealed record.
pub const NONCE_LEN: usize = 24;
/// Bytes the seal adds to a record (nonce and Poly1305 tag).
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;

/// What a device signs to prove, on one connection, that it belongs to a commons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ProofBody {
    commons: CommonsId,
    prover: Vec<u8>,
    verifier: Vec<u8>,
}

/// A device's proof, bound to one connection, that it runs a member device of a commons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipProof {
    /// The commons.
    pub commons: CommonsId,
    /// The device key that signs.
    pub device: AuthorKey,
    /// The device's certificate, when the device is not its own person (so a verifier whose
    /// charter does not hold it yet can still tell the person).
    pub certificate: Option<Signed<DeviceCertificate>>,
    /// The device's signature over the commons and both peer ids.
    pub signature: Signature,
}

/// Why a membership proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The signature does not verify for this commons and these two peers (forged, or made
    /// for another connection).
    #[error("membership proof for commons {0} does not verify on this connection")]
    BadSignature(CommonsId),
    /// The certificate sent with it does not verify or names another device.
    #[error("membership proof for commons {0} carries a certificate that does not verify or names another device")]
    BadCertificate(CommonsId),
    /// The device's person holds no role in the charter (or the device is revoked, or the
    /// person blocked).
    #[error("not a member of commons {0}")]
    NotAMember(CommonsId),
}

impl ProofError {
    /// Short stable name, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            ProofError::BadSignature(_) => "bad-proof",
            ProofError::BadCertificate(_) => "bad-proof-certificate",
            ProofError::NotAMember(_) => "not-a-member",
        }
    }
}

fn proof_digest(commons: &CommonsId, prover: &[u8], verifier: &[u8]) -> [u8; 32] {
    let body = ProofBody {
        commons: *commons,
        prover: prover.to_vec(),
        verifier: verifier.to_vec(),
    };
    domain_hash(DOMAIN_PROOF, &encode(&body))
}

impl MembershipProof {
    /// Signs a proof for `commons` on the connection from `prover` to `verifier` (their
    /// libp2p peer ids as bytes), with the device's certificate when it has one.
    pub fn sign(
        commons: CommonsId,
        key: &DeviceKey,
        certificate: Option<Signed<DeviceCertificate>>,
        prover: &[u8],
        verifier: &[u8],
    ) -> MembershipProof {
        MembershipProof {
            commons,
            device: key.author(),
            certificate,
            signature: key.sign(&proof_digest(&commons, prover, verifier)),
        }
    }

    /// Checks the signature for the connection from `prover` to `verifier`, and the
    /// certificate if one came with it.
    ///
    /// Errors: [`ProofError::BadSignature`], [`ProofError::BadCertificate`].
    pub fn verify(&self, prover: &[u8], verifier: &[u8]) -> Result<(), ProofError> {
        self.device
            .verify(
                &proof_digest(&self.commons, prover, verifier),
                &self.signature,
            )
            .map_err(|_| ProofError::BadSignature(self.commons))?;
        if let Some(certificate) = &self.certificate {
            if certificate.verify().is_err() || certificate.body.device != self.device {
                return Err(ProofError::BadCertificate(self.commons));
            }
        }
        Ok(())
    }

    /// The person the (verified) proof speaks for and their role in `charter`, or why they
    /// are not a member: the device must not be revoked nor its person blocked, and the
    /// person (from the charter's certificates, else the one sent, else the device itself)
    /// must hold a role.
    ///
    /// Errors: [`ProofError::NotAMember`].
    pub fn member(&self, charter: &CharterState) -> Result<(AuthorKey, Role), ProofError> {
        let refused = ProofError::NotAMember(self.commons);
        if charter.is_revoked(self.device) {
            return Err(refused);
        }
        let known = charter.person_of(self.device);
        let person = match &self.certificate {
            // A certificate the charter does not hold yet speaks only for a device the charter
            // does not already give to someone (itself included).
            Some(certificate)
                if known == self.device && !charter.devices.contains_key(&self.device) =>
            {
                certificate.body.person
            }
            _ => known,
        };
        if charter.is_blocked(person) {
            return Err(refused);
        }
        charter
            .role_of(person)
            .map(|role| (person, role))
            .ok_or(refused)
    }
}

/// The 32-byte id of a private commons' gossip topic: it does not reveal the commons id.
pub fn private_topic_id(commons: &CommonsId) -> [u8; 32] {
    domain_hash(DOMAIN_TOPIC, commons.as_bytes())
}

/// The gossip topic name of a private commons: `hedgerow/p/` + hex of [`private_topic_id`].
pub fn private_topic_name(commons: &CommonsId) -> String {
    let id = private_topic_id(commons);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PRIVATE_TOPIC_PREFIX}{hex}")
}

/// The key sealing a private commons' bundle records, from its genesis body.
pub fn bundle_key(genesis: &CommonsGenesis) -> [u8; 32] {
    domain_hash(DOMAIN_BUNDLE_KEY, &encode(genesis))
}

/// Why a sealed record did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Shorter than a nonce and a tag.
    #[error("sealed record is {0} bytes, shorter than its nonce and tag")]
    TooShort(usize),
    /// The key is not this commons' or the bytes were altered.
    #[error("sealed record does not open with this commons' key (another commons, or altered)")]
    Mismatch,
}

/// Seals `plain` under `key` with `nonce`, binding `aad` (bytes that travel in the clear
/// beside it): `nonce | ciphertext and tag`.
pub fn seal(key: &[u8; 32], nonce: [u8; NONCE_LEN], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        // Encryption fails only past 2^38 bytes per message; records are at most 64 MiB.
        .expect("XChaCha20-Poly1305 encryption of a bounded record");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens what [`seal`] made with the same key and `aad`.
///
/// Errors: [`SealError::TooShort`], [`SealError::Mismatch`].
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(SealError::TooShort(sealed.len()));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| SealError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charter::{CharterAction, CharterOp, OpRecord};

    fn key(n: u8) -> DeviceKey {
        DeviceKey::from_secret([n; 32])
    }

    fn genesis(founder: &DeviceKey) -> CommonsGenesis {
        CommonsGenesis {
            name: "Seed library".into(),
            description: String::new(),
            creator: founder.author(),
            created_at: 0,
            nonce: [0; 16],
        }
    }

    fn op(
        genesis: &CommonsGenesis,
        n: u8,
        deps: Vec<[u8; 32]>,
        author: &DeviceKey,
        action: CharterAction,
    ) -> OpRecord {
        OpRecord {
            hash: [n; 32],
            deps,
            author: author.author(),
            op: CharterOp {
                commons: genesis.id(),
                at: 0,
                action,
            },
        }
    }

    #[test]
    fn a_proof_holds_only_on_its_connection_and_for_members() {
        let founder = key(1);
        let member = key(2);
        let stranger = key(3);
        let g = genesis(&founder);
        let commons = g.id();
        let found = op(
            &g,
            1,
            vec![],
            &founder,
            CharterAction::Found { private: true },
        );
        let add = op(
            &g,
            2,
            vec![[1; 32]],
            &founder,
            CharterAction::Add {
                person: member.author(),
                role: Role::Member,
            },
        );
        let charter = CharterState::evaluate(&g, &[found, add]);
        assert!(charter.is_private());

        let proof = MembershipProof::sign(commons, &member, None, b"prover", b"verifier");
        assert_eq!(proof.verify(b"prover", b"verifier"), Ok(()));
        assert_eq!(
            proof.verify(b"someone else", b"verifier"),
            Err(ProofError::BadSignature(commons)),
            "replayed on another connection"
        );
        assert_eq!(
            proof.verify(b"verifier", b"prover"),
            Err(ProofError::BadSignature(commons))
        );
        assert_eq!(proof.member(&charter), Ok((member.author(), Role::Member)));

        let theirs = MembershipProof::sign(commons, &stranger, None, b"prover", b"verifier");
        assert_eq!(theirs.verify(b"prover", b"verifier"), Ok(()));
        assert_eq!(
            theirs.member(&charter),
            Err(ProofError::NotAMember(commons))
        );

        // A stranger claiming the member's device with their own signature fails the signature.
        let mut claimed = theirs.clone();
        claimed.device = member.author();
        assert!(claimed.verify(b"prover", b"verifier").is_err());
    }

    #[test]
    fn a_certified_device_proves_for_its_person() {
        let founder = key(1);
        let person = key(4);
        let laptop = key(5);
        let g = genesis(&founder);
        let commons = g.id();
        let found = op(
            &g,
            1,
            vec![],
            &founder,
            CharterAction::Found { private: true },
        );
        let add = op(
            &g,
            2,
            vec![[1; 32]],
            &founder,
            CharterAction::Add {
                person: person.author(),
                role: Role::Guest,
            },
        );
        let charter = CharterState::evaluate(&g, &[found, add]);
        let certificate = DeviceCertificate {
            person: person.author(),
            device: laptop.author(),
            name: "laptop".into(),
            issued_at: 0,
        }
        .sign(&person);
        let proof = MembershipProof::sign(commons, &laptop, Some(certificate.clone()), b"a", b"b");
        assert_eq!(proof.verify(b"a", b"b"), Ok(()));
        assert_eq!(proof.member(&charter), Ok((person.author(), Role::Guest)));
        // Without the certificate the laptop is its own person, and no member.
        let bare = MembershipProof::sign(commons, &laptop, None, b"a", b"b");
        assert_eq!(bare.member(&charter), Err(ProofError::NotAMember(commons)));
        // A certificate for another device does not ride along.
        let other = MembershipProof::sign(commons, &founder, Some(certificate), b"a", b"b");
        assert_eq!(
            other.verify(b"a", b"b"),
            Err(ProofError::BadCertificate(commons))
        );
    }

    #[test]
    fn sealed_records_open_only_with_the_genesis_key() {
        let g = genesis(&key(1));
        let k = bundle_key(&g);
        let sealed = seal(&k, [7; NONCE_LEN], b"doc", b"Roller crimper");
        assert_eq!(sealed.len(), 14 + SEAL_OVERHEAD);
        assert!(!sealed.windows(6).any(|w| w == b"Roller"));
        assert_eq!(
            open(&k, b"doc", &sealed).as_deref(),
            Ok(&b"Roller crimper"[..])
        );
        assert_eq!(open(&k, b"other", &sealed), Err(SealError::Mismatch));
        let mut other = g.clone();
        other.nonce = [1; 16];
        assert_eq!(
            open(&bundle_key(&other), b"doc", &sealed),
            Err(SealError::Mismatch)
        );
        assert_eq!(
            open(&k, b"doc", &sealed[..10]),
            Err(SealError::TooShort(10))
        );
        assert_ne!(private_topic_id(&g.id()), *g.id().as_bytes());
        assert!(private_topic_name(&g.id()).starts_with("hedgerow/p/"));
        assert_eq!(private_topic_name(&g.id()).len(), "hedgerow/p/".len() + 64);
    }

    #[test]
    fn a_sealed_bundle_is_version_2_and_shows_no_plaintext() {
        use crate::bundle_file::{
            decode_bundle, encode_bundle, encode_bundle_sealed, CommonsSection, Record,
            FILE_FORMAT_V1, FILE_FORMAT_V2,
        };
        let founder = key(1);
        let g = genesis(&founder);
        let section = || CommonsSection {
            genesis: g.clone().sign(&founder),
            docs: vec![],
        };
        let open_file = encode_bundle(vec![section()]).expect("encodes");
        assert_eq!(
            open_file[15], FILE_FORMAT_V1,
            "nothing sealed: still version 1"
        );
        let keys = std::collections::BTreeMap::from([(g.id(), bundle_key(&g))]);
        let sealed = encode_bundle_sealed(vec![section()], &keys).expect("encodes");
        assert_eq!(sealed[15], FILE_FORMAT_V2);
        assert!(!sealed.windows(12).any(|w| w == b"Seed library"));
        assert_eq!(
            sealed,
            encode_bundle_sealed(vec![section()], &keys).expect("encodes"),
            "deterministic"
        );
        let records = decode_bundle(&sealed).into_result().expect("decodes");
        assert!(matches!(records[0], Record::Sealed { commons, .. } if commons == g.id()));
        assert_eq!(
            records[0].open(&bundle_key(&g)),
            Ok(Record::Commons(g.clone().sign(&founder)))
        );
        assert!(records[0].open(&[0; 32]).is_err());
    }
}
