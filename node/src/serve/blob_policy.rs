//! Which blobs a node fetches on its own: a hub every attachment of the commons it holds, a
//! farm the files of the designs it pinned (the rest on demand).

use crate::replicas::Replicas;

/// Blobs wanted by this node's policy and not held, with their sizes.
pub fn wanted_blobs(_replicas: &Replicas) -> Vec<([u8; 32], u64)> {
    Vec::new()
}
