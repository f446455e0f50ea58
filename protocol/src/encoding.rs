//! Deterministic, versioned byte encodings and domain-separated hashes.
//!
//! Every record Hedgerow stores or sends starts with a format version byte,
//! followed by its postcard encoding. Postcard is deterministic for the types
//! we use (no maps with unordered keys, no floats), so the same value always
//! has the same bytes, which is what signatures and content ids need.

use serde::{de::DeserializeOwned, Serialize};

/// The current version of every record format.
pub const FORMAT_V1: u8 = 1;

/// Why bytes could not be decoded into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("{what} is empty")]
    Empty {
        /// The record being decoded.
        what: &'static str,
    },
    /// A version this build does not know (written by a newer Hedgerow).
    #[error("{what} has format version {version}, this build reads only version {FORMAT_V1}; upgrade hedgerow")]
    UnsupportedVersion {
        /// The record being decoded.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// The body does not parse.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// The record being decoded.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// Extra bytes after a complete record (two encodings of one value would break content ids).
    #[error("{what} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// The record being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Encodes `value` as a version-1 record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    // Serializing our own plain structs into a Vec cannot fail; an error here is a bug in a type.
    out.extend(postcard::to_stdvec(value).expect("postcard encoding of a plain struct"));
    out
}

/// Decodes a record written by [`encode`], refusing unknown versions and trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty { what })?;
    if version != FORMAT_V1 {
        return Err(DecodeError::UnsupportedVersion { what, version });
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what,
            extra: rest.len(),
        });
    }
    Ok(value)
}

/// BLAKE3 in key-derivation mode: a distinct hash function per `domain`, so a
/// signature made for one kind of record can never be replayed as another.
pub fn domain_hash(domain: &str, bytes: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(domain);
    hasher.update(bytes);
    *hasher.finalize().as_bytes()
}

/// Domain of change envelope signatures.
pub const DOMAIN_CHANGE: &str = "hedgerow 2026-11 change envelope v1";
/// Domain of commons genesis signatures.
pub const DOMAIN_COMMONS_GENESIS: &str = "hedgerow 2026-11 commons genesis v1";
/// Domain of document genesis signatures.
pub const DOMAIN_DOC_GENESIS: &str = "hedgerow 2026-11 document genesis v1";
/// Domain of record ids (the hash of a record's encoding).
pub const DOMAIN_RECORD_ID: &str = "hedgerow 2026-11 record id v1";
/// Domain of automerge actor ids bound to an author and a document (stores of the first release).
pub const DOMAIN_ACTOR: &str = "hedgerow 2026-11 actor id v1";
/// Domain of the author-and-document part of actor ids that also name an install ([`crate::envelope::actor_for_install`]).
pub const DOMAIN_ACTOR_V2: &str = "hedgerow 2026-11 actor id v2";
/// Domain of commons invitation signatures ([`crate::charter::Invitation`]).
pub const DOMAIN_INVITATION: &str = "hedgerow 2026-11 invitation v1";
/// Domain of device certificate signatures ([`crate::charter::DeviceCertificate`]).
pub const DOMAIN_DEVICE_CERTIFICATE: &str = "hedgerow 2026-11 device certificate v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let bytes = encode(&(1u32, "farm".to_string()));
        assert_eq!(bytes[0], FORMAT_V1);
        let back: (u32, String) = decode(&bytes, "test record").unwrap();
        assert_eq!(back, (1, "farm".to_string()));

        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(
            decode::<(u32, String)>(&future, "test record"),
            Err(DecodeError::UnsupportedVersion { version: 9, .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode::<(u32, String)>(&long, "test record"),
            Err(DecodeError::TrailingBytes { extra: 1, .. })
        ));
        assert!(matches!(
            decode::<(u32, String)>(&[], "test record"),
            Err(DecodeError::Empty { .. })
        ));
        assert!(decode::<(u32, String)>(&bytes[..bytes.len() - 1], "test record").is_err());
    }

    #[test]
    fn domains_separate_hashes() {
        assert_ne!(
            domain_hash(DOMAIN_CHANGE, b"x"),
            domain_hash(DOMAIN_DOC_GENESIS, b"x")
        );
    }
}
