//! Genesis records: the signed birth certificates of commons and documents.
//!
//! A commons or document id is the BLAKE3 hash of its genesis body, so the id
//! itself commits to who created it, when, of which kind, and (for a fork) from
//! which parent at which heads. Nobody can later claim a different kind or
//! origin for an id.

use crate::bytes::byte_newtype;
use crate::encoding::{
    domain_hash, encode, DOMAIN_COMMONS_GENESIS, DOMAIN_DOC_GENESIS, DOMAIN_RECORD_ID,
};
use crate::identity::{AuthorKey, DeviceKey, Signature, SignatureError};
use crate::schema::DocKind;
use serde::{Deserialize, Serialize};

byte_newtype!(
    /// Identifies a commons: the hash of its genesis body.
    CommonsId,
    32,
    "commons id",
    "9aTz2bXq4cW7dE1fR5gH8jK3mN6pQ2rS4tU7vX9yZ1aB"
);

byte_newtype!(
    /// Identifies a document (design, event, note, profile): the hash of its genesis body.
    DocId,
    32,
    "document id",
    "4kPq8rT2vX6yZ1aB3cD5eF7gH9jK2mN4pQ6rS8tU1vW3"
);

/// Longest commons name, in bytes.
pub const MAX_COMMONS_NAME_BYTES: usize = 120;
/// Longest commons description, in bytes.
pub const MAX_COMMONS_DESCRIPTION_BYTES: usize = 4096;
/// Deepest fork chain a document may record.
pub const MAX_FORK_DEPTH: usize = 64;
/// Most heads a fork origin may name.
pub const MAX_FORK_HEADS: usize = 64;

/// The body of a commons' genesis record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommonsGenesis {
    /// Human name, e.g. "Farm Hack tools".
    pub name: String,
    /// What the commons is for.
    pub description: String,
    /// Who created it.
    pub creator: AuthorKey,
    /// Creation time the creator claimed, unix seconds.
    pub created_at: i64,
    /// Randomness so two commons with the same name get different ids.
    pub nonce: [u8; 16],
}

/// Where a forked document came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkOrigin {
    /// The design this one derives from.
    pub parent: DocId,
    /// The parent's automerge heads at the moment of the fork.
    pub heads: Vec<[u8; 32]>,
    /// The parent's own ancestors, nearest first, so a chain of forks is known without fetching each parent.
    pub ancestors: Vec<DocId>,
}

/// The body of a document's genesis record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocGenesis {
    /// The commons the document belongs to.
    pub commons: CommonsId,
    /// What kind of document it is; fixed for life.
    pub kind: DocKind,
    /// Who created it.
    pub creator: AuthorKey,
    /// Creation time the creator claimed, unix seconds.
    pub created_at: i64,
    /// Randomness so two documents made in the same second get different ids.
    pub nonce: [u8; 16],
    /// Set when the document is a fork of another design.
    pub fork: Option<ForkOrigin>,
}

/// A record body with its author's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    /// The record.
    pub body: T,
    /// Signature by the body's creator over its domain-separated hash.
    pub signature: Signature,
}

/// Why a genesis record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The signature does not verify.
    #[error("genesis record signature is invalid: {0}")]
    Signature(#[from] SignatureError),
    /// The name is empty.
    #[error("a commons needs a non-empty name")]
    EmptyName,
    /// A text field is over its limit.
    #[error("{field} is {len} bytes, the limit is {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A fork origin that is not a design, names itself, or is too deep.
    #[error("invalid fork origin: {0}")]
    BadFork(&'static str),
    /// A profile document must be the deterministic one of its creator.
    #[error(
        "a profile document must have zero nonce and time, so each author has one per commons"
    )]
    BadProfile,
    /// A charter document must be the deterministic one of its commons.
    #[error(
        "a charter document must have zero nonce and time and no fork, so each commons has one"
    )]
    BadCharter,
}

impl CommonsGenesis {
    /// The commons id: hash of the encoded body.
    pub fn id(&self) -> CommonsId {
        CommonsId(domain_hash(DOMAIN_RECORD_ID, &encode(self)))
    }

    /// Signs the body with the creator's key.
    pub fn sign(self, key: &DeviceKey) -> Signed<Self> {
        let signature = key.sign(&domain_hash(DOMAIN_COMMONS_GENESIS, &encode(&self)));
        Signed {
            body: self,
            signature,
        }
    }
}

impl Signed<CommonsGenesis> {
    /// Checks the signature and field limits; returns the commons id.
    pub fn verify(&self) -> Result<CommonsId, GenesisError> {
        let body = &self.body;
        if body.name.trim().is_empty() {
            return Err(GenesisError::EmptyName);
        }
        check_len("commons name", &body.name, MAX_COMMONS_NAME_BYTES)?;
        check_len(
            "commons description",
            &body.description,
            MAX_COMMONS_DESCRIPTION_BYTES,
        )?;
        body.creator.verify(
            &domain_hash(DOMAIN_COMMONS_GENESIS, &encode(body)),
            &self.signature,
        )?;
        Ok(body.id())
    }
}

impl DocGenesis {
    /// The document id: hash of the encoded body.
    pub fn id(&self) -> DocId {
        DocId(domain_hash(DOMAIN_RECORD_ID, &encode(self)))
    }

    /// The one profile document of `creator` in `commons`; its id is the same on every node.
    pub fn profile(commons: CommonsId, creator: AuthorKey) -> Self {
        Self {
            commons,
            kind: DocKind::Profile,
            creator,
            created_at: 0,
            nonce: [0; 16],
            fork: None,
        }
    }

    /// The one charter document of `commons` (whose creator is `creator`); its id is the same
    /// on every node, so any node can make it when the commons has none yet.
    pub fn charter(commons: CommonsId, creator: AuthorKey) -> Self {
        Self {
            commons,
            kind: DocKind::Charter,
            creator,
            created_at: 0,
            nonce: [0; 16],
            fork: None,
        }
    }

    /// The charter genesis as a record: unsigned (its signature bytes are zero and never
    /// checked), since old open commons get their charter lazily from whoever writes first.
    pub fn unsigned_charter(commons: CommonsId, creator: AuthorKey) -> Signed<Self> {
        Signed {
            body: Self::charter(commons, creator),
            signature: Signature([0; 64]),
        }
    }

    /// Signs the body with the creator's key.
    pub fn sign(self, key: &DeviceKey) -> Signed<Self> {
        let signature = key.sign(&domain_hash(DOMAIN_DOC_GENESIS, &encode(&self)));
        Signed {
            body: self,
            signature,
        }
    }

    /// This document and the documents it was forked from, nearest first.
    pub fn lineage(&self) -> Vec<DocId> {
        let mut out = vec![self.id()];
        if let Some(fork) = &self.fork {
            out.push(fork.parent);
            out.extend(fork.ancestors.iter().copied());
        }
        out
    }
}

impl Signed<DocGenesis> {
    /// Checks the signature and the fork and profile rules; returns the document id.
    pub fn verify(&self) -> Result<DocId, GenesisError> {
        let body = &self.body;
        let id = body.id();
        if let Some(fork) = &body.fork {
            if body.kind != DocKind::Design {
                return Err(GenesisError::BadFork("only designs can be forked"));
            }
            if fork.ancestors.len() + 1 > MAX_FORK_DEPTH {
                return Err(GenesisError::BadFork("fork chain is deeper than 64"));
            }
            if fork.heads.is_empty() || fork.heads.len() > MAX_FORK_HEADS {
                return Err(GenesisError::BadFork("a fork names 1 to 64 parent heads"));
            }
            if fork.parent == id || fork.ancestors.contains(&id) {
                return Err(GenesisError::BadFork(
                    "a document cannot descend from itself",
                ));
            }
        }
        if body.kind == DocKind::Profile && (body.nonce != [0; 16] || body.created_at != 0) {
            return Err(GenesisError::BadProfile);
        }
        if body.kind == DocKind::Charter {
            // Deterministic and unsigned: whoever holds the commons can make it. Whether
            // `creator` is the commons' creator is the node's check (it holds the commons).
            if body.nonce != [0; 16] || body.created_at != 0 || body.fork.is_some() {
                return Err(GenesisError::BadCharter);
            }
            return Ok(id);
        }
        body.creator.verify(
            &domain_hash(DOMAIN_DOC_GENESIS, &encode(body)),
            &self.signature,
        )?;
        Ok(id)
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), GenesisError> {
    if value.len() > max {
        return Err(GenesisError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commons(key: &DeviceKey) -> Signed<CommonsGenesis> {
        CommonsGenesis {
            name: "Farm Hack".into(),
            description: "open farm tools".into(),
            creator: key.author(),
            created_at: 1_700_000_000,
            nonce: [3; 16],
        }
        .sign(key)
    }

    #[test]
    fn commons_genesis_verifies_and_detects_tampering() {
        let key = DeviceKey::from_secret([1; 32]);
        let signed = commons(&key);
        assert_eq!(signed.verify(), Ok(signed.body.id()));
        let mut renamed = signed.clone();
        renamed.body.name = "Farm Hacked".into();
        assert!(matches!(renamed.verify(), Err(GenesisError::Signature(_))));
        let mut empty = signed;
        empty.body.name = " ".into();
        assert_eq!(empty.verify(), Err(GenesisError::EmptyName));
    }

    #[test]
    fn fork_rules() {
        let key = DeviceKey::from_secret([1; 32]);
        let commons_id = commons(&key).body.id();
        let parent = DocGenesis {
            commons: commons_id,
            kind: DocKind::Design,
            creator: key.author(),
            created_at: 5,
            nonce: [1; 16],
            fork: None,
        };
        let child = DocGenesis {
            nonce: [2; 16],
            fork: Some(ForkOrigin {
                parent: parent.id(),
                heads: vec![[9; 32]],
                ancestors: vec![],
            }),
            ..parent.clone()
        };
        let signed = child.clone().sign(&key);
        assert_eq!(signed.verify(), Ok(child.id()));
        assert_eq!(child.lineage(), vec![child.id(), parent.id()]);
        let event_fork = DocGenesis {
            kind: DocKind::Event,
            ..child
        }
        .sign(&key);
        assert!(matches!(event_fork.verify(), Err(GenesisError::BadFork(_))));
    }

    #[test]
    fn a_charter_genesis_is_deterministic_and_unsigned() {
        let key = DeviceKey::from_secret([1; 32]);
        let commons_id = commons(&key).body.id();
        let charter = DocGenesis::unsigned_charter(commons_id, key.author());
        assert_eq!(charter.verify(), Ok(charter.body.id()));
        let signed = DocGenesis::charter(commons_id, key.author()).sign(&key);
        assert_eq!(
            signed.verify(),
            Ok(charter.body.id()),
            "signature bytes do not matter"
        );
        let dated = Signed {
            body: DocGenesis {
                created_at: 5,
                ..charter.body.clone()
            },
            signature: charter.signature,
        };
        assert_eq!(dated.verify(), Err(GenesisError::BadCharter));
    }
}
