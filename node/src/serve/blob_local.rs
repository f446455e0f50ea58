//! [`BlobAccess`] over the home's blob store ([`crate::blobs::BlobStore`]): serving ranges with
//! a cached outboard, and appending verified bytes to [`crate::blobs::PartialBlob`]s.
//!
//! Outboards (the BLAKE3 hash tree of a blob without its data, post order, 64 bytes per 16 KiB
//! group; empty for a blob of one group) are computed the first time a blob is served and kept
//! in `HOME/blobs/outboard/HASH`, written to a temporary file and renamed, so a node never
//! rehashes a whole file to serve a range of it. A missing one, or one of the wrong size, is
//! computed again; the data is checked against it group by group as it is sent, so a blob
//! damaged on disk is refused rather than sent.

use super::blobs::BlobAccess;
use crate::blobs::BlobStore;
use crate::replicas::Replicas;
use hedgerow_protocol::attachment::BlobHash;
use hedgerow_protocol::blob_transfer::{
    compute_outboard, encode_groups, outboard_size, post_order_outboard, GroupRange,
};
use std::fs::{self, File};
use std::io::BufReader;
use std::path::PathBuf;

/// Where the outboard of a blob is kept.
pub fn outboard_path(store: &BlobStore, hash: &BlobHash) -> PathBuf {
    store.root().join("outboard").join(hash.to_hex())
}

/// The outboard of a held blob, computed and kept if missing or of the wrong size.
fn outboard(store: &BlobStore, hash: &BlobHash, size: u64) -> std::io::Result<File> {
    let path = outboard_path(store, hash);
    if let Ok(file) = File::open(&path) {
        if file.metadata()?.len() == outboard_size(size) {
            return Ok(file);
        }
    }
    let dir = store.root().join("outboard");
    fs::create_dir_all(&dir)?;
    let data = BufReader::new(File::open(store.path(hash))?);
    let mut temp = tempfile::NamedTempFile::new_in(&dir)?;
    let root = compute_outboard(data, size, &mut temp)?;
    if BlobHash::from(root) != *hash {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("blob {hash} on disk does not match its hash; run `hedgerow verify`"),
        ));
    }
    temp.as_file().sync_all()?;
    temp.persist(&path).map_err(|e| e.error)?;
    File::open(&path)
}

impl BlobAccess for Replicas {
    fn held_size(&self, hash: &[u8; 32]) -> Option<u64> {
        self.blob_store().size(&BlobHash(*hash)).ok().flatten()
    }

    fn encode(
        &mut self,
        hash: &[u8; 32],
        size: u64,
        groups: GroupRange,
    ) -> Result<Vec<u8>, String> {
        let store = self.blob_store();
        let hash = BlobHash(*hash);
        let data = store.open(&hash).map_err(|e| e.to_string())?;
        let tree = outboard(&store, &hash, size).map_err(|e| e.to_string())?;
        let tree = post_order_outboard(hash.0.into(), size, tree);
        encode_groups(&data, tree, groups).map_err(|e| format!("blob {hash}: {e:?}"))
    }

    fn partial_len(&self, hash: &[u8; 32], size: u64) -> u64 {
        self.blob_store()
            .partial(BlobHash(*hash), size)
            .map_or(0, |p| p.verified_len())
    }

    fn append(
        &mut self,
        hash: &[u8; 32],
        size: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), String> {
        let mut partial = self
            .blob_store()
            .partial(BlobHash(*hash), size)
            .map_err(|e| e.to_string())?;
        if partial.verified_len() != offset {
            return Err(format!(
                "the partial blob {} holds {} verified bytes, {offset} expected",
                BlobHash(*hash),
                partial.verified_len()
            ));
        }
        partial.append(bytes).map_err(|e| e.to_string())
    }

    fn commit(&mut self, hash: &[u8; 32], size: u64) -> Result<(), String> {
        self.blob_store()
            .partial(BlobHash(*hash), size)
            .and_then(|p| p.commit())
            .map_err(|e| e.to_string())
    }

    fn discard_partial(&mut self, hash: &[u8; 32]) {
        let _ = self.blob_store().remove_partial(&BlobHash(*hash));
    }
}

/// Removes the outboards of blobs no longer held (after `gc`); the bytes freed. One that cannot
/// be removed stays: it is recomputed or ignored, never trusted for another blob.
pub fn remove_stale_outboards(store: &BlobStore) -> u64 {
    let Ok(entries) = fs::read_dir(store.root().join("outboard")) else {
        return 0;
    };
    let mut freed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let held = name.parse::<BlobHash>().is_ok_and(|hash| store.has(&hash));
        if held {
            continue;
        }
        let size = entry.metadata().map_or(0, |m| m.len());
        if fs::remove_file(entry.path()).is_ok() {
            freed += size;
        }
    }
    freed
}
