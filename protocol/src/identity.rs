//! Device identities: the ed25519 key that signs every contribution, and its public form.
//!
//! One key per device (Scuttlebutt's lesson: sharing a key between devices
//! forks its history). The secret half never leaves [`DeviceKey`]; it has no
//! `Debug`, `Display` or serde so it cannot end up in a log or a JSON reply.

use crate::bytes::byte_newtype;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

byte_newtype!(
    /// An author's public key: who signed a contribution. Printed in base58.
    AuthorKey,
    32,
    "author key",
    "7Xh3k9YqfLz2mN4pR8sT1vW6xA5bC3dE9fG2hJ4kL6mN"
);

byte_newtype!(
    /// An ed25519 signature.
    Signature,
    64,
    "signature",
    "3vQB7B6MrGQZaxCuFg4oh..."
);

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid ed25519 point.
    #[error("author key {0} is not a valid ed25519 public key")]
    BadKey(AuthorKey),
    /// The signature does not match the message and key.
    #[error("signature by {0} does not verify: the data was altered or not signed by this author")]
    Mismatch(AuthorKey),
}

impl AuthorKey {
    /// Checks `signature` over the 32-byte `digest` (always a domain-separated BLAKE3 hash).
    pub fn verify(&self, digest: &[u8; 32], signature: &Signature) -> Result<(), SignatureError> {
        self.prepare()?.verify(digest, signature)
    }

    /// The key decompressed once, to check many signatures of this author (decompressing
    /// the point is a square root, a sixth of a signature check).
    pub fn prepare(&self) -> Result<PreparedKey, SignatureError> {
        count(|w| w.keys += 1);
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::BadKey(*self))?;
        Ok(PreparedKey { author: *self, key })
    }
}

thread_local! {
    /// Signature checks and key decompressions made on this thread (see [`work_counts`]).
    static WORK: std::cell::Cell<WorkCounts> = const { std::cell::Cell::new(WorkCounts { signatures: 0, keys: 0 }) };
}

/// Signature work done on one thread: what tests and benchmarks count instead of timing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkCounts {
    /// ed25519 signatures checked.
    pub signatures: u64,
    /// Author keys decompressed to check them.
    pub keys: u64,
}

/// The signature work done on the calling thread so far.
pub fn work_counts() -> WorkCounts {
    WORK.with(std::cell::Cell::get)
}

fn count(add: impl FnOnce(&mut WorkCounts)) {
    WORK.with(|w| {
        let mut now = w.get();
        add(&mut now);
        w.set(now);
    });
}

/// An author key ready to check signatures: the same checks as [`AuthorKey::verify`].
#[derive(Clone, Copy, Debug)]
pub struct PreparedKey {
    author: AuthorKey,
    key: VerifyingKey,
}

impl PreparedKey {
    /// The author key.
    pub fn author(&self) -> AuthorKey {
        self.author
    }

    /// Checks `signature` over `digest` with ed25519's strict rules (as [`AuthorKey::verify`]).
    pub fn verify(&self, digest: &[u8; 32], signature: &Signature) -> Result<(), SignatureError> {
        count(|w| w.signatures += 1);
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.key
            .verify_strict(digest, &sig)
            .map_err(|_| SignatureError::Mismatch(self.author))
    }
}

/// Which install of a key wrote a change: 8 random bytes per home, renewed when the home is copied.
///
/// One key may live in several homes (a copied home, a restored backup). Each home writes as
/// its own automerge actor, so their changes never share a sequence number and always merge.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct InstallTag(pub [u8; 8]);

/// A device's signing key, with the install it writes as. Deliberately not `Debug`, `Clone` or serializable.
pub struct DeviceKey {
    signing: SigningKey,
    install: InstallTag,
}

impl DeviceKey {
    /// Builds the key from its 32 secret bytes (read from the key file, or fresh randomness).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&secret),
            install: InstallTag::default(),
        }
    }

    /// The same key writing as another install (see [`InstallTag`]).
    pub fn with_install(mut self, install: InstallTag) -> Self {
        self.install = install;
        self
    }

    /// The install this key writes as.
    pub fn install(&self) -> InstallTag {
        self.install
    }

    /// The secret bytes, for writing the key file.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn author(&self) -> AuthorKey {
        AuthorKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs a 32-byte digest.
    pub fn sign(&self, digest: &[u8; 32]) -> Signature {
        Signature(self.signing.sign(digest).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_mismatch() {
        let key = DeviceKey::from_secret([7; 32]);
        let digest = [1u8; 32];
        let sig = key.sign(&digest);
        assert_eq!(key.author().verify(&digest, &sig), Ok(()));
        assert_eq!(
            key.author().verify(&[2u8; 32], &sig),
            Err(SignatureError::Mismatch(key.author()))
        );
        let other = DeviceKey::from_secret([8; 32]).author();
        assert!(other.verify(&digest, &sig).is_err());
    }

    #[test]
    fn author_key_prints_and_parses() {
        let author = DeviceKey::from_secret([9; 32]).author();
        let text = author.to_string();
        assert_eq!(text.parse::<AuthorKey>(), Ok(author));
        assert!("not-base58-0OIl".parse::<AuthorKey>().is_err());
        assert!("abc".parse::<AuthorKey>().is_err());
    }
}
