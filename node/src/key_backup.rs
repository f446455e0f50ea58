//! Person key backups (`hedgerow key backup FILE`, `hedgerow init --restore FILE`) and device
//! link codes (`hedgerow device add`, `hedgerow init --link CODE`).
//!
//! A backup is the 32 secret bytes of the person key sealed with XChaCha20-Poly1305 under a key
//! stretched from a passphrase by argon2id. Layout (version 1):
//!
//! ```text
//! "HEDGEROW-KEY" | 0x01 | m_cost KiB: u32 LE | t_cost: u32 LE | p_cost: u32 LE
//!                | salt: 16 bytes | nonce: 24 bytes | ciphertext: 32 + 16 (tag) bytes
//! ```
//!
//! Everything before the ciphertext is the AEAD's associated data, so changing the parameters,
//! the salt or the version is detected like a wrong passphrase. The parameters are checked
//! against bounds before argon2 runs, so a crafted file cannot make a restore allocate gigabytes.
//!
//! A link code is 100 random bits written as 20 base32 characters in 4 groups of 5; the new
//! device's key is argon2id(code, salt "hedgerow device link v1"), so both devices derive it.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// What a backup file starts with.
pub const MAGIC: &[u8; 12] = b"HEDGEROW-KEY";
/// The backup format this release writes (and the only one it reads).
pub const VERSION: u8 = 1;
/// argon2id memory for a new backup, KiB (64 MiB).
const BACKUP_M_COST: u32 = 64 * 1024;
/// argon2id passes for a new backup.
const BACKUP_T_COST: u32 = 3;
/// argon2id lanes.
const P_COST: u32 = 1;
/// Most memory a backup may ask for, KiB (1 GiB), so a crafted file cannot exhaust memory.
const MAX_M_COST: u32 = 1024 * 1024;
/// Most passes a backup may ask for.
const MAX_T_COST: u32 = 64;
/// Most lanes a backup may ask for.
const MAX_P_COST: u32 = 16;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = MAGIC.len() + 1 + 12 + SALT_LEN + NONCE_LEN;
/// The sealed secret: 32 bytes and the 16-byte tag.
const SEALED_LEN: usize = 32 + 16;
/// A backup file's exact length.
pub const BACKUP_LEN: usize = HEADER_LEN + SEALED_LEN;
/// Shortest passphrase a backup accepts, in bytes.
pub const MIN_PASSPHRASE: usize = 8;

/// Salt of the link-code key derivation: the same on both devices by design.
const LINK_SALT: &[u8] = b"hedgerow device link v1";
/// argon2id memory for a link code, KiB (64 MiB): both devices must use the same.
const LINK_M_COST: u32 = 64 * 1024;
/// argon2id passes for a link code.
const LINK_T_COST: u32 = 3;
/// RFC 4648 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters in a link code (5 bits each: 100 bits).
pub const LINK_CODE_CHARS: usize = 20;

/// Why a backup could not be written or read, or a link code not used.
#[derive(Debug, thiserror::Error)]
pub enum KeyBackupError {
    /// Not a Hedgerow key backup at all.
    #[error("not a Hedgerow key backup (it does not start with HEDGEROW-KEY)")]
    NotABackup,
    /// A newer format.
    #[error("key backup format {0} is newer than this release reads (1); upgrade hedgerow")]
    NewerVersion(u8),
    /// Cut short or with trailing bytes.
    #[error("key backup is damaged: {0} bytes where a version-1 backup has {BACKUP_LEN}")]
    BadLength(usize),
    /// KDF parameters outside the bounds this release accepts.
    #[error("key backup asks for argon2 parameters out of bounds (memory {m_cost} KiB, {t_cost} passes, {p_cost} lanes); it was not written by hedgerow")]
    BadParams {
        /// Memory, KiB.
        m_cost: u32,
        /// Passes.
        t_cost: u32,
        /// Lanes.
        p_cost: u32,
    },
    /// The tag did not verify: wrong passphrase, or the file was altered.
    #[error("wrong passphrase, or the key backup was altered")]
    WrongPassphrase,
    /// A passphrase too short to protect a key.
    #[error("the passphrase must be at least {MIN_PASSPHRASE} bytes")]
    ShortPassphrase,
    /// A link code that is not 20 base32 characters.
    #[error(
        "a link code is 20 letters and digits 2-7 in 4 groups of 5, as the other device printed it"
    )]
    BadLinkCode,
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// argon2 refused its inputs (cannot happen with the bounds above).
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

fn random<const N: usize>() -> Result<[u8; N], KeyBackupError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeyBackupError::Random(e.to_string()))?;
    Ok(bytes)
}

fn argon2id(
    secret: &[u8],
    salt: &[u8],
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
) -> Result<[u8; 32], KeyBackupError> {
    let params = Params::new(m_cost, t_cost, p_cost, Some(32))
        .map_err(|e| KeyBackupError::Kdf(e.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, salt, &mut out)
        .map_err(|e| KeyBackupError::Kdf(e.to_string()))?;
    Ok(out)
}

/// Seals a 32-byte secret key under `passphrase`; returns the whole backup file.
pub fn seal(secret: &[u8; 32], passphrase: &[u8]) -> Result<Vec<u8>, KeyBackupError> {
    if passphrase.len() < MIN_PASSPHRASE {
        return Err(KeyBackupError::ShortPassphrase);
    }
    let salt: [u8; SALT_LEN] = random()?;
    let nonce: [u8; NONCE_LEN] = random()?;
    let mut file = Vec::with_capacity(BACKUP_LEN);
    file.extend_from_slice(MAGIC);
    file.push(VERSION);
    for value in [BACKUP_M_COST, BACKUP_T_COST, P_COST] {
        file.extend_from_slice(&value.to_le_bytes());
    }
    file.extend_from_slice(&salt);
    file.extend_from_slice(&nonce);
    let key = argon2id(passphrase, &salt, BACKUP_M_COST, BACKUP_T_COST, P_COST)?;
    let sealed = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key))
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: &file,
            },
        )
        .map_err(|_| KeyBackupError::Kdf("encryption failed".into()))?;
    file.extend_from_slice(&sealed);
    Ok(file)
}

/// Opens a backup file with `passphrase`; returns the 32 secret bytes it holds.
pub fn open(file: &[u8], passphrase: &[u8]) -> Result<[u8; 32], KeyBackupError> {
    if !file.starts_with(MAGIC) {
        return Err(KeyBackupError::NotABackup);
    }
    match file.get(MAGIC.len()) {
        Some(&VERSION) => {}
        Some(&other) if other > VERSION => return Err(KeyBackupError::NewerVersion(other)),
        _ => return Err(KeyBackupError::BadLength(file.len())),
    }
    if file.len() != BACKUP_LEN {
        return Err(KeyBackupError::BadLength(file.len()));
    }
    let (header, sealed) = file.split_at(HEADER_LEN);
    let word = |i: usize| {
        let at = MAGIC.len() + 1 + 4 * i;
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (m_cost, t_cost, p_cost) = (word(0), word(1), word(2));
    let in_bounds = (8 * p_cost.max(1)..=MAX_M_COST).contains(&m_cost)
        && (1..=MAX_T_COST).contains(&t_cost)
        && (1..=MAX_P_COST).contains(&p_cost);
    if !in_bounds {
        return Err(KeyBackupError::BadParams {
            m_cost,
            t_cost,
            p_cost,
        });
    }
    let salt = &header[MAGIC.len() + 13..MAGIC.len() + 13 + SALT_LEN];
    let nonce = &header[HEADER_LEN - NONCE_LEN..];
    let key = argon2id(passphrase, salt, m_cost, t_cost, p_cost)?;
    let secret = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key))
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: header,
            },
        )
        .map_err(|_| KeyBackupError::WrongPassphrase)?;
    secret
        .try_into()
        .map_err(|_| KeyBackupError::BadLength(file.len()))
}

/// A fresh link code: 100 random bits as `XXXXX-XXXXX-XXXXX-XXXXX`.
pub fn new_link_code() -> Result<String, KeyBackupError> {
    let bits: [u8; 13] = random()?;
    // 104 random bits; the first 100 become 20 five-bit characters.
    let mut chars = String::with_capacity(LINK_CODE_CHARS + 3);
    for i in 0..LINK_CODE_CHARS {
        let mut value = 0usize;
        for b in 0..5 {
            let bit = i * 5 + b;
            value = (value << 1) | usize::from((bits[bit / 8] >> (7 - bit % 8)) & 1);
        }
        if i > 0 && i % 5 == 0 {
            chars.push('-');
        }
        chars.push(char::from(BASE32[value]));
    }
    Ok(chars)
}

/// A link code as typed (any case, with or without dashes and spaces) in its canonical form:
/// 20 upper-case base32 characters.
pub fn normalise_link_code(code: &str) -> Result<String, KeyBackupError> {
    let canonical: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        canonical.len() == LINK_CODE_CHARS && canonical.bytes().all(|b| BASE32.contains(&b));
    if !valid {
        return Err(KeyBackupError::BadLinkCode);
    }
    Ok(canonical)
}

/// The 32 secret bytes of the device key a link code stands for (the same on both devices).
pub fn link_device_secret(code: &str) -> Result<[u8; 32], KeyBackupError> {
    let canonical = normalise_link_code(code)?;
    argon2id(
        canonical.as_bytes(),
        LINK_SALT,
        LINK_M_COST,
        LINK_T_COST,
        P_COST,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_opens_with_its_passphrase_only_and_detects_tampering() {
        let secret = [42u8; 32];
        let file = seal(&secret, b"correct horse").expect("seal");
        assert_eq!(file.len(), BACKUP_LEN);
        assert_eq!(open(&file, b"correct horse").expect("open"), secret);
        assert!(matches!(
            open(&file, b"wrong horse!"),
            Err(KeyBackupError::WrongPassphrase)
        ));
        // A lowered cost in the header is caught by the tag, not silently used.
        let mut cheaper = file.clone();
        cheaper[MAGIC.len() + 5] ^= 1;
        assert!(matches!(
            open(&cheaper, b"correct horse"),
            Err(KeyBackupError::WrongPassphrase)
        ));
        let mut huge = file.clone();
        huge[MAGIC.len() + 1..MAGIC.len() + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            open(&huge, b"correct horse"),
            Err(KeyBackupError::BadParams { .. })
        ));
        assert!(matches!(
            open(&file[..50], b"correct horse"),
            Err(KeyBackupError::BadLength(50))
        ));
        assert!(matches!(
            open(b"something else", b"x"),
            Err(KeyBackupError::NotABackup)
        ));
        assert!(matches!(
            seal(&secret, b"short"),
            Err(KeyBackupError::ShortPassphrase)
        ));
    }

    #[test]
    fn link_codes_are_20_base32_characters_and_derive_one_key_however_typed() {
        let code = new_link_code().expect("code");
        assert_eq!(code.len(), 23, "{code}");
        assert_eq!(code.split('-').count(), 4, "{code}");
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(
            link_device_secret(&code).expect("derive"),
            link_device_secret(&typed).expect("derive")
        );
        assert_ne!(new_link_code().expect("code"), code);
        assert!(matches!(
            link_device_secret("ABCDE-FGHIJ-KLMNO-PQRS1"),
            Err(KeyBackupError::BadLinkCode)
        ));
        assert!(matches!(
            link_device_secret("ABCDE"),
            Err(KeyBackupError::BadLinkCode)
        ));
    }
}
