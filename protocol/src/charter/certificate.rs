//! Device certificates: a person key vouching that a device key is theirs.

use crate::encoding::{domain_hash, encode, DOMAIN_DEVICE_CERTIFICATE};
use crate::genesis::Signed;
use crate::identity::{AuthorKey, DeviceKey, SignatureError};
use serde::{Deserialize, Serialize};

/// Longest device name, in bytes.
pub const MAX_DEVICE_NAME_BYTES: usize = 64;

/// A person's statement that `device` is one of their devices, signed by the person key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceCertificate {
    /// The person key that signs.
    pub person: AuthorKey,
    /// The device key certified.
    pub device: AuthorKey,
    /// The device's name, e.g. "barn laptop" (at most 64 bytes).
    pub name: String,
    /// When the person claims to have issued it, unix seconds.
    pub issued_at: i64,
}

/// Why a device certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The person's signature does not verify.
    #[error("device certificate is forged or altered: {0}")]
    Forged(#[from] SignatureError),
    /// The device name is over its limit.
    #[error("device name is {len} bytes, the limit is {MAX_DEVICE_NAME_BYTES}")]
    NameTooLong {
        /// Its length.
        len: usize,
    },
}

impl DeviceCertificate {
    /// Signs the certificate with the person key (which must be `person`).
    pub fn sign(self, person_key: &DeviceKey) -> Signed<DeviceCertificate> {
        let signature = person_key.sign(&domain_hash(DOMAIN_DEVICE_CERTIFICATE, &encode(&self)));
        Signed {
            body: self,
            signature,
        }
    }
}

impl Signed<DeviceCertificate> {
    /// Checks the name limit and the person's signature.
    pub fn verify(&self) -> Result<(), CertificateError> {
        if self.body.name.len() > MAX_DEVICE_NAME_BYTES {
            return Err(CertificateError::NameTooLong {
                len: self.body.name.len(),
            });
        }
        self.body.person.verify(
            &domain_hash(DOMAIN_DEVICE_CERTIFICATE, &encode(&self.body)),
            &self.signature,
        )?;
        Ok(())
    }
}
