//! Persons and devices: which person this device writes for, its certificate, and (with the
//! charter) the devices of a person.
//!
//! A key with no certificate is its own person: a home of the previous release, or a new `init`
//! home, writes as a person whose only device is the person key itself.

use crate::replicas::Replicas;
use hedgerow_protocol::AuthorKey;

impl Replicas {
    /// The person this device writes for: the person key held in the home, else the person named
    /// by this device's certificate, else the device key itself.
    pub fn person(&self) -> AuthorKey {
        match &self.person_key {
            Some(person) => person.author(),
            None => self.author(),
        }
    }

    /// This device's name from its certificate, when it has one.
    pub fn device_name(&self) -> Option<String> {
        None
    }
}
