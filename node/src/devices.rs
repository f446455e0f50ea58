//! Persons and devices: which person this device writes for, its certificate, and the devices
//! of a person as the charters of their commons certify them.
//!
//! A key with no certificate is its own person: a home of the previous release, or a new `init`
//! home, writes as a person whose only device is the person key itself. A restored device holds
//! the person key (`person.key`) and a certificate for its new device key; a linked device holds
//! only its device key until its certificate arrives in a charter (by sync or bundle), when the
//! node keeps it in the home (`device.cert`).

use crate::key_backup;
use crate::replicas::{now_unix, NodeError, Replicas};
use hedgerow_protocol::automerge::Change;
use hedgerow_protocol::charter::{
    CharterAction, CharterState, DeviceCertificate, Frontier, Outcome, MAX_DEVICE_NAME_BYTES,
};
use hedgerow_protocol::encoding::{decode, encode};
use hedgerow_protocol::{AuthorKey, CommonsId, DeviceKey, Signed};
use serde::Serialize;
use std::collections::BTreeMap;

/// How `device list` names the person key itself, which is a device with no certificate.
pub const PERSON_KEY_NAME: &str = "person key";

/// Why a device command could not be done.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A device name that is empty, too long or holds control characters.
    #[error(
        "a device name is 1 to {MAX_DEVICE_NAME_BYTES} bytes of text without control characters"
    )]
    BadName,
    /// Certifying needs the person key, which a linked device does not hold.
    #[error("this device does not hold the person key, so it cannot certify devices")]
    NotCertifier,
    /// `device add` with a name one of the person's devices already has.
    #[error("you already have a device named `{0}`; choose another name")]
    NameTaken(String),
    /// No device of the person has that name.
    #[error("none of your devices is named `{0}`")]
    UnknownDevice(String),
    /// Revoking the device the command runs on.
    #[error("`{0}` is this device; revoke it from another of your devices (a device cannot disown itself)")]
    ThisDevice(String),
    /// A device that is the person key itself.
    #[error("`{0}` is your person key, not a certified device; it cannot be revoked")]
    PersonKey(String),
    /// The person holds no commons to write the certificate into.
    #[error("this node holds no commons yet, so a certificate has no charter to travel in")]
    NoCommons,
    /// The stored certificate does not decode or verify.
    #[error("this device's certificate (device.cert) is damaged: {0}")]
    BadCertificate(String),
    /// Link-code derivation failed.
    #[error(transparent)]
    Code(#[from] key_backup::KeyBackupError),
}

/// A new device's link code, as `device add` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAdded {
    /// The one-time code for `hedgerow init --link`.
    pub code: String,
    /// The new device's key.
    pub device: AuthorKey,
    /// Its name.
    pub name: String,
    /// The commons whose charters now certify it (pass them to `init --link --commons`).
    pub commons: Vec<CommonsId>,
}

/// One device of the person, as `device list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRow {
    /// The device key.
    pub device: AuthorKey,
    /// Its name in its certificate (the person key itself: `person key`).
    pub name: String,
    /// When its certificate says it was issued, unix seconds (`None` for the person key,
    /// which has no certificate; RFC 3339 or null in JSON).
    #[serde(with = "crate::times::unix_opt")]
    pub issued_at: Option<i64>,
    /// Whether it was revoked in any commons.
    pub revoked: bool,
    /// Whether it is the device this node runs on.
    pub this_device: bool,
}

/// A device row with the certificate that makes it the person's (none for the person key).
type Certified = (DeviceRow, Option<Signed<DeviceCertificate>>);

/// What `device revoke` did.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRevoked {
    /// The revoked device's key.
    pub device: AuthorKey,
    /// Its name.
    pub name: String,
    /// The commons whose charters now revoke it.
    pub commons: Vec<CommonsId>,
}

/// Checks a device name (1 to 64 bytes, no control characters).
pub fn check_device_name(name: &str) -> Result<(), DeviceError> {
    if name.trim().is_empty()
        || name.len() > MAX_DEVICE_NAME_BYTES
        || name.chars().any(char::is_control)
    {
        return Err(DeviceError::BadName);
    }
    Ok(())
}

/// A certificate by `person` for `device` named `name`, issued now, encoded as stored in
/// `device.cert` (versioned).
pub fn certify(person: &DeviceKey, device: &AuthorKey, name: &str) -> Result<Vec<u8>, DeviceError> {
    check_device_name(name)?;
    Ok(encode(&sign_certificate(person, device, name)))
}

fn sign_certificate(
    person: &DeviceKey,
    device: &AuthorKey,
    name: &str,
) -> Signed<DeviceCertificate> {
    DeviceCertificate {
        person: person.author(),
        device: *device,
        name: name.trim().to_string(),
        issued_at: now_unix(),
    }
    .sign(person)
}

/// Reads a stored certificate back, checking its signature.
pub fn decode_certificate(bytes: &[u8]) -> Result<Signed<DeviceCertificate>, DeviceError> {
    let certificate: Signed<DeviceCertificate> = decode(bytes, "device certificate")
        .map_err(|e| DeviceError::BadCertificate(e.to_string()))?;
    certificate
        .verify()
        .map_err(|e| DeviceError::BadCertificate(e.to_string()))?;
    Ok(certificate)
}

/// Devices to persons in one commons, for `history` and `blame`.
pub struct Attribution(Option<CharterState>);

impl Attribution {
    /// The person `device` writes for (itself when uncertified).
    pub fn person(&self, device: AuthorKey) -> AuthorKey {
        self.0
            .as_ref()
            .map_or(device, |state| state.person_of(device))
    }

    /// The device's name in its certificate.
    pub fn device_name(&self, device: AuthorKey) -> Option<String> {
        self.0
            .as_ref()
            .and_then(|state| state.device_name(device))
            .map(str::to_string)
    }
}

impl Replicas {
    /// The person this device writes for: the person key held in the home, else the person named
    /// by this device's certificate, else the device key itself.
    pub fn person(&self) -> AuthorKey {
        if let Some(person) = &self.person_key {
            return person.author();
        }
        match self.own_certificate() {
            Some(certificate) => certificate.body.person,
            None => self.author(),
        }
    }

    /// This device's name from its certificate, when it has one.
    pub fn device_name(&self) -> Option<String> {
        self.own_certificate().map(|c| c.body.name)
    }

    /// This device's certificate as the home keeps it.
    pub(crate) fn own_certificate(&self) -> Option<Signed<DeviceCertificate>> {
        let certificate = decode_certificate(self.certificate.as_deref()?).ok()?;
        (certificate.body.device == self.author()).then_some(certificate)
    }

    /// The key that certifies devices: the person key, or the device key when it is the person.
    pub(crate) fn certifier(&self) -> Option<&DeviceKey> {
        match (&self.person_key, &self.certificate) {
            (Some(person), _) => Some(person),
            (None, None) if !self.link_pending() => Some(&self.key),
            _ => None,
        }
    }

    fn link_pending(&self) -> bool {
        self.home_root.join("device.link").exists()
    }

    /// On a linked device still waiting for its certificate: looks for it in the charters of
    /// the commons held, and keeps it in the home once found.
    pub fn find_own_certificate(&mut self) -> Result<(), NodeError> {
        if self.certificate.is_some() || self.person_key.is_some() || !self.link_pending() {
            return Ok(());
        }
        let me = self.author();
        for genesis in self.commons_list()? {
            let state = self.device_charter(genesis.body.id())?;
            for entry in state.log() {
                let CharterAction::Device { certificate } = &entry.op.action else {
                    continue;
                };
                if entry.outcome == Outcome::Applied && certificate.body.device == me {
                    let bytes = encode(certificate);
                    crate::home::save_certificate(&self.home_root, &bytes)?;
                    self.certificate = Some(bytes);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Writes this device's certificate into `commons`' charter unless it is there already
    /// (a restored or linked device joining a commons, or certifying another device).
    ///
    /// Best effort: a stewarded commons where the person holds no role refuses it at its gate,
    /// and the join goes on (the device's writes there are refused by the charter anyway).
    pub(crate) fn publish_own_certificate(&mut self, commons: CommonsId) -> Result<(), NodeError> {
        self.find_own_certificate()?;
        let Some(certificate) = self.own_certificate() else {
            return Ok(());
        };
        let state = self.device_charter(commons)?;
        if state.person_of(self.author()) == certificate.body.person {
            return Ok(());
        }
        match self.write_device_op(commons, CharterAction::Device { certificate }) {
            Err(NodeError::Community(refused)) => {
                tracing::info!(
                    "commons {commons}: this device's certificate not written: {refused}"
                );
                Ok(())
            }
            other => other,
        }
    }

    /// `device add NAME`: a link code, the device key it stands for, and its certificate written
    /// into the charter of every commons held.
    pub fn device_add(&mut self, name: &str) -> Result<DeviceAdded, NodeError> {
        check_device_name(name)?;
        let name = name.trim();
        if self.certifier().is_none() {
            return Err(DeviceError::NotCertifier.into());
        }
        let held = self.commons_list()?;
        if held.is_empty() {
            return Err(DeviceError::NoCommons.into());
        }
        if self
            .device_list()?
            .iter()
            .any(|d| d.name == name && !d.revoked)
        {
            return Err(DeviceError::NameTaken(name.to_string()).into());
        }
        let code = key_backup::new_link_code().map_err(DeviceError::from)?;
        let device = DeviceKey::from_secret(
            key_backup::link_device_secret(&code).map_err(DeviceError::from)?,
        )
        .author();
        let certifier = self.certifier().ok_or(DeviceError::NotCertifier)?;
        let certificate = sign_certificate(certifier, &device, name);
        let mut commons = Vec::new();
        let mut first_refusal = None;
        for genesis in held {
            let id = genesis.body.id();
            // A restored certifier's own certificate goes with the one it makes.
            self.publish_own_certificate(id)?;
            let written = self.write_device_op(
                id,
                CharterAction::Device {
                    certificate: certificate.clone(),
                },
            );
            // A stewarded commons where this person holds no role refuses it at its gate; the
            // others still certify the device.
            match written {
                Ok(()) => commons.push(id),
                Err(NodeError::Community(refused)) => {
                    tracing::warn!(
                        "commons {id}: the new device is not certified there: {refused}"
                    );
                    first_refusal.get_or_insert(refused);
                }
                Err(e) => return Err(e),
            }
        }
        if let (true, Some(refused)) = (commons.is_empty(), first_refusal) {
            return Err(refused.into());
        }
        Ok(DeviceAdded {
            code,
            device,
            name: name.to_string(),
            commons,
        })
    }

    /// `device list`: this person's devices across the charters of every commons held.
    pub fn device_list(&mut self) -> Result<Vec<DeviceRow>, NodeError> {
        Ok(self
            .person_devices()?
            .into_values()
            .map(|(row, _)| row)
            .collect())
    }

    /// This person's devices with their certificates (none for the person key itself).
    fn person_devices(&mut self) -> Result<BTreeMap<AuthorKey, Certified>, NodeError> {
        self.find_own_certificate()?;
        let person = self.person();
        let me = self.author();
        let mut rows: BTreeMap<AuthorKey, Certified> = BTreeMap::new();
        // The person key signs as a device too: a person's first device, or an old home.
        let row = DeviceRow {
            device: person,
            name: PERSON_KEY_NAME.into(),
            issued_at: None,
            revoked: false,
            this_device: person == me,
        };
        rows.insert(person, (row, None));
        for genesis in self.commons_list()? {
            let state = self.device_charter(genesis.body.id())?;
            for entry in state.log() {
                let CharterAction::Device { certificate } = &entry.op.action else {
                    continue;
                };
                let body = &certificate.body;
                if entry.outcome != Outcome::Applied || body.person != person {
                    continue;
                }
                let (row, _) = rows.entry(body.device).or_insert_with(|| {
                    let row = DeviceRow {
                        device: body.device,
                        name: body.name.clone(),
                        issued_at: Some(body.issued_at),
                        revoked: false,
                        this_device: body.device == me,
                    };
                    (row, Some(certificate.clone()))
                });
                row.revoked |= state.is_revoked(body.device);
            }
        }
        Ok(rows)
    }

    /// `device revoke NAME`: from another device of the person, a `RevokeDevice` naming every
    /// change of that device this node holds, in the charter of every commons held.
    ///
    /// A commons whose charter does not certify the device yet gets its certificate first, so a
    /// thief cannot carry the certificate there later and write as the person.
    pub fn device_revoke(&mut self, name: &str) -> Result<DeviceRevoked, NodeError> {
        let devices = self.person_devices()?;
        let given = name.trim();
        // A name reused after a revocation means the device still in use.
        let (target, certificate) = devices
            .into_values()
            .filter(|(d, _)| d.name == given || d.device.to_string() == given)
            .min_by_key(|(d, _)| d.revoked)
            .ok_or_else(|| DeviceError::UnknownDevice(name.to_string()))?;
        if target.this_device {
            return Err(DeviceError::ThisDevice(target.name).into());
        }
        let Some(certificate) = certificate else {
            return Err(DeviceError::PersonKey(target.name).into());
        };
        let held = self.commons_list()?;
        if held.is_empty() {
            return Err(DeviceError::NoCommons.into());
        }
        let person = self.person();
        let mut commons = Vec::new();
        for genesis in held {
            let id = genesis.body.id();
            if self.device_charter(id)?.person_of(target.device) != person {
                self.write_device_op(
                    id,
                    CharterAction::Device {
                        certificate: certificate.clone(),
                    },
                )?;
            }
            let frontier = self.device_frontier(id, target.device)?;
            self.write_device_op(
                id,
                CharterAction::RevokeDevice {
                    device: target.device,
                    frontier,
                },
            )?;
            commons.push(id);
        }
        Ok(DeviceRevoked {
            device: target.device,
            name: target.name,
            commons,
        })
    }

    /// Every (actor, highest seq) of `device`'s changes this node holds in `commons`.
    fn device_frontier(
        &self,
        commons: CommonsId,
        device: AuthorKey,
    ) -> Result<Frontier, NodeError> {
        let mut highest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for doc in self.store().doc_ids(&commons)? {
            for (_, raw, record) in self.store().changes(&doc)? {
                if record.is_none_or(|r| r.author != device) {
                    continue;
                }
                let Ok(change) = Change::from_bytes(raw) else {
                    continue;
                };
                let seq = highest
                    .entry(change.actor_id().to_bytes().to_vec())
                    .or_default();
                *seq = (*seq).max(change.seq());
            }
        }
        Ok(Frontier(highest.into_iter().collect()).normalized())
    }

    /// How `commons` maps devices to persons and device names (its charter, evaluated once).
    pub fn attribution(&mut self, commons: CommonsId) -> Attribution {
        Attribution(self.device_charter(commons).ok())
    }

    // ---- the charter plumbing of the stewarded-commons work, as this module uses it ----

    /// The evaluated charter of `commons` (empty for a commons with no charter yet).
    fn device_charter(&mut self, commons: CommonsId) -> Result<CharterState, NodeError> {
        if let Some(policy) = self.charter_state(&commons)? {
            return Ok(policy.state.clone());
        }
        let genesis = self
            .store()
            .commons(&commons)?
            .ok_or_else(|| NodeError::UnknownCommons(commons.to_string()))?;
        Ok(CharterState::empty(&genesis))
    }

    /// Writes one charter operation into `commons`' charter, signed by this device.
    fn write_device_op(
        &mut self,
        commons: CommonsId,
        action: CharterAction,
    ) -> Result<(), NodeError> {
        self.write_charter_op(&commons, action).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_certificate_reads_back_and_a_tampered_one_is_refused() {
        let person = DeviceKey::from_secret([1; 32]);
        let device = DeviceKey::from_secret([2; 32]).author();
        let bytes = certify(&person, &device, " barn laptop ").expect("certify");
        let certificate = decode_certificate(&bytes).expect("reads back");
        assert_eq!(certificate.body.person, person.author());
        assert_eq!(certificate.body.device, device);
        assert_eq!(certificate.body.name, "barn laptop");
        let mut tampered = bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            decode_certificate(&tampered),
            Err(DeviceError::BadCertificate(_))
        ));
        assert!(matches!(
            decode_certificate(&bytes[..10]),
            Err(DeviceError::BadCertificate(_))
        ));
    }

    #[test]
    fn device_names_are_short_printable_text() {
        assert!(check_device_name("phone").is_ok());
        assert!(check_device_name(&"x".repeat(MAX_DEVICE_NAME_BYTES)).is_ok());
        for bad in ["", "  ", "a\nb", "\u{1b}[2J"] {
            assert!(
                matches!(check_device_name(bad), Err(DeviceError::BadName)),
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_DEVICE_NAME_BYTES + 1);
        assert!(matches!(
            check_device_name(&long),
            Err(DeviceError::BadName)
        ));
        let person = DeviceKey::from_secret([1; 32]);
        assert!(certify(&person, &person.author(), &long).is_err());
    }
}
