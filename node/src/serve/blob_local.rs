//! [`BlobAccess`] over the home's blob store: serving ranges with a cached outboard, and
//! appending verified bytes to partial files.
//!
//! Outboards (the BLAKE3 hash tree of a blob without its data, post order, 64 bytes per 16 KiB
//! group; none for a blob of one group) are computed the first time a blob is served and kept
//! in `HOME/blobs/outboard/HASH`, written to a temporary file and renamed, so a node never
//! rehashes a whole file to serve a range of it. A missing or damaged outboard is computed
//! again; the data is checked against it group by group as it is sent.

use super::blobs::BlobAccess;
use crate::replicas::Replicas;
use hedgerow_protocol::blob_transfer::{
    compute_outboard, encode_groups, outboard_size, post_order_outboard, GroupRange,
};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

/// The home's blob directory.
fn blobs_dir(home: &Path) -> PathBuf {
    home.join("blobs")
}

fn held_path(home: &Path, hash: &[u8; 32]) -> PathBuf {
    blobs_dir(home).join(hex::encode(hash))
}

fn partial_path(home: &Path, hash: &[u8; 32]) -> PathBuf {
    blobs_dir(home).join("partial").join(hex::encode(hash))
}

fn outboard_path(home: &Path, hash: &[u8; 32]) -> PathBuf {
    blobs_dir(home).join("outboard").join(hex::encode(hash))
}

/// The outboard of a held blob, computed and kept if missing or of the wrong size.
fn outboard(home: &Path, hash: &[u8; 32], size: u64) -> std::io::Result<File> {
    let path = outboard_path(home, hash);
    if let Ok(file) = File::open(&path) {
        if file.metadata()?.len() == outboard_size(size) {
            return Ok(file);
        }
    }
    let dir = path.parent().unwrap_or(home);
    fs::create_dir_all(dir)?;
    let data = BufReader::new(File::open(held_path(home, hash))?);
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    let root = compute_outboard(data, size, &mut temp)?;
    if root.as_bytes() != hash {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the blob on disk does not match its hash; run `hedgerow verify`",
        ));
    }
    temp.as_file().sync_all()?;
    temp.persist(&path).map_err(|e| e.error)?;
    File::open(&path)
}

impl BlobAccess for Replicas {
    fn held_size(&self, hash: &[u8; 32]) -> Option<u64> {
        fs::metadata(held_path(&self.home_root, hash))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    fn encode(
        &mut self,
        hash: &[u8; 32],
        size: u64,
        groups: GroupRange,
    ) -> Result<Vec<u8>, String> {
        let home = &self.home_root;
        let data = File::open(held_path(home, hash)).map_err(|e| e.to_string())?;
        let tree = outboard(home, hash, size).map_err(|e| e.to_string())?;
        let tree = post_order_outboard((*hash).into(), size, tree);
        encode_groups(&data, tree, groups).map_err(|e| format!("{e:?}"))
    }

    fn partial_len(&self, hash: &[u8; 32]) -> u64 {
        fs::metadata(partial_path(&self.home_root, hash)).map_or(0, |m| m.len())
    }

    fn append(&mut self, hash: &[u8; 32], offset: u64, bytes: &[u8]) -> Result<(), String> {
        let path = partial_path(&self.home_root, hash);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        if len != offset {
            // Someone else wrote to it: start it over rather than guess.
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(format!(
                "{} holds {len} bytes, {offset} expected; it was removed",
                path.display()
            ));
        }
        // No fsync per range: the whole file is re-hashed before it is committed (and synced
        // then), so a tail lost in a crash costs a re-fetch, never a wrong blob.
        file.write_all(bytes)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn commit(&mut self, hash: &[u8; 32], size: u64) -> Result<(), String> {
        let home = &self.home_root;
        let partial = partial_path(home, hash);
        let mut hasher = blake3::Hasher::new();
        let len = hasher
            .update_reader(File::open(&partial).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?
            .count();
        if len != size || hasher.finalize().as_bytes() != hash {
            let _ = fs::remove_file(&partial);
            return Err("the fetched blob does not match its hash; it was removed".into());
        }
        File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())?;
        let held = held_path(home, hash);
        fs::rename(&partial, &held).map_err(|e| e.to_string())?;
        if let Ok(dir) = File::open(blobs_dir(home)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn discard_partial(&mut self, hash: &[u8; 32]) {
        let _ = fs::remove_file(partial_path(&self.home_root, hash));
    }
}
