//! Invitations to a stewarded commons, and the `hri1` codes that carry them.

use super::Role;
use crate::bytes::shorten;
use crate::encoding::{
    decode, domain_hash, encode, DecodeError, DOMAIN_INVITATION, DOMAIN_RECORD_ID,
};
use crate::genesis::{CommonsGenesis, CommonsId, GenesisError, Signed};
use crate::identity::{AuthorKey, DeviceKey, SignatureError};
use serde::{Deserialize, Serialize};

/// What every invitation code starts with (the `1` is the code format's version).
pub const INVITATION_CODE_PREFIX: &str = "hri1";

/// Longest invitation code accepted, in characters (base58 decoding is quadratic; a code with the
/// longest commons description is about 6,000 characters).
pub const MAX_INVITATION_CODE_CHARS: usize = 8192;

/// An invitation to join a commons with a role, signed by its issuer's device.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Invitation {
    /// The commons it admits to.
    pub commons: CommonsId,
    /// The device that issued (signed) it; its person must be able to grant `role`.
    pub issuer: AuthorKey,
    /// The role granted.
    pub role: Role,
    /// How many redemptions may take effect.
    pub uses: u32,
    /// The last moment (unix seconds) a redemption may claim.
    pub expires_at: i64,
    /// Randomness so two invitations with the same terms differ.
    pub nonce: [u8; 16],
}

/// Why an invitation or invitation code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    /// The code does not start with `hri1`.
    #[error("`{0}` is not an invitation code: codes start with `hri1`; copy the whole code")]
    MissingPrefix(String),
    /// The code is longer than any real code.
    #[error("invitation code is {len} characters, longer than any real code ({max}); copy just the code")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The code is not base58 after its prefix.
    #[error("`{0}` is not a valid invitation code: a character was mistyped or lost; copy the code again")]
    NotBase58(String),
    /// The code's bytes do not decode.
    #[error("invitation code does not decode ({0}); copy the code again")]
    Decode(#[from] DecodeError),
    /// The commons genesis in the code does not verify.
    #[error("invitation code carries an invalid commons record: {0}")]
    Genesis(#[from] GenesisError),
    /// The invitation's signature does not verify.
    #[error("invitation is forged or altered: {0}")]
    Forged(#[from] SignatureError),
    /// The invitation names another commons than the one in the code.
    #[error("invitation is for commons {invitation}, but the code carries commons {genesis}")]
    WrongCommons {
        /// The commons the invitation names.
        invitation: CommonsId,
        /// The commons the code's genesis describes.
        genesis: CommonsId,
    },
}

impl Invitation {
    /// The invitation's id: the hash of its body, so one invitation counts its uses once however
    /// its signature is encoded.
    pub fn id(&self) -> [u8; 32] {
        domain_hash(DOMAIN_RECORD_ID, &encode(self))
    }

    /// Signs the invitation with the issuer's device key (which must be `issuer`).
    pub fn sign(self, key: &DeviceKey) -> Signed<Invitation> {
        let signature = key.sign(&domain_hash(DOMAIN_INVITATION, &encode(&self)));
        Signed {
            body: self,
            signature,
        }
    }
}

impl Signed<Invitation> {
    /// Checks the issuer's signature.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.body.issuer.verify(
            &domain_hash(DOMAIN_INVITATION, &encode(&self.body)),
            &self.signature,
        )
    }
}

/// What an `hri1` invitation code carries: the invitation and the commons' genesis, so a person
/// holding nothing of the commons can add it and redeem the invitation with no steward online.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationCode {
    /// The signed invitation.
    pub invitation: Signed<Invitation>,
    /// The commons' signed genesis record.
    pub genesis: Signed<CommonsGenesis>,
}

impl InvitationCode {
    /// The printable code: `hri1` followed by base58 of the versioned encoding.
    pub fn to_code(&self) -> String {
        format!(
            "{INVITATION_CODE_PREFIX}{}",
            bs58::encode(encode(self)).into_string()
        )
    }

    /// Reads a code, checking the genesis, the invitation's signature and that both name the same
    /// commons. Expiry is not checked here (it needs a clock; the caller has one).
    pub fn parse(text: &str) -> Result<InvitationCode, InvitationError> {
        let text = text.trim();
        if text.len() > MAX_INVITATION_CODE_CHARS {
            return Err(InvitationError::TooLong {
                len: text.len(),
                max: MAX_INVITATION_CODE_CHARS,
            });
        }
        let body = text
            .strip_prefix(INVITATION_CODE_PREFIX)
            .ok_or_else(|| InvitationError::MissingPrefix(shorten(text)))?;
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|_| InvitationError::NotBase58(shorten(text)))?;
        let code: InvitationCode = decode(&bytes, "invitation code")?;
        let genesis = code.genesis.verify()?;
        code.invitation.verify()?;
        if code.invitation.body.commons != genesis {
            return Err(InvitationError::WrongCommons {
                invitation: code.invitation.body.commons,
                genesis,
            });
        }
        Ok(code)
    }
}
