//! Attachment blobs on the node: the store of file bytes named by their BLAKE3 hash, outside
//! sled ([`store`]), resumable verified downloads ([`partial`]), and what documents refer to
//! (attach, list, get, detach, verify, gc: [`files`]) and what bundles carry ([`bundle`]).
//!
//! Layout under the home:
//! - `blobs/ab/cdef...`: a blob, named by the 64 hex characters of its hash (first two as a
//!   directory, so no directory grows past a few thousand entries); read-only once there.
//! - `blobs/partial/HASH` and `blobs/partial/HASH.verified`: a blob being received, and the
//!   count of its leading bytes already verified (see [`partial::PartialBlob`]).
//! - `blobs/.tmp-*`: a file being copied in, hashed as it goes; renamed under its hash once
//!   complete and fsynced, removed by `gc` if a crash left it.
//!
//! The rule every path keeps: nothing is ever written under a blob's name unless its bytes
//! were hashed in full and matched.

pub mod bundle;
pub mod files;
pub mod partial;
pub mod store;

pub use partial::PartialBlob;
pub use store::{BlobError, BlobStore, COPY_BUFFER};

use serde::{Deserialize, Serialize};

/// The blobs of a node, as `status` shows them.
///
/// `wanted*` and `in_flight*` are for the blob transfer to fill (blobs documents refer to that
/// this node's fetch policy wants and lacks; blobs being received now); they stay 0 until then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobStatus {
    /// Complete blobs held.
    pub held: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs wanted and not held.
    pub wanted: usize,
    /// Their bytes.
    pub wanted_bytes: u64,
    /// Blobs being received.
    pub in_flight: usize,
    /// Bytes of them verified so far.
    pub in_flight_bytes: u64,
    /// Partial blobs on disk (resumable downloads).
    pub partial: usize,
}

impl BlobStatus {
    /// What `store` holds (a store that cannot be listed shows as empty: status never fails).
    pub fn of(store: &BlobStore) -> BlobStatus {
        let held = store.list().unwrap_or_default();
        BlobStatus {
            held: held.len(),
            bytes: held.iter().map(|(_, size)| size).sum(),
            partial: store.partials().map(|p| p.len()).unwrap_or(0),
            ..BlobStatus::default()
        }
    }
}
