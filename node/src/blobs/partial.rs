//! A blob being received: `HOME/blobs/partial/HASH` holds its leading bytes, and the sidecar
//! `HASH.verified` (`VERIFIED SIZE`, one line) says how many of them were verified and kept.
//!
//! For the transfer engineer: verify each chunk against the blob's hash before
//! [`PartialBlob::append`] (bao-tree outboard or the like; the store does not depend on it), and
//! call [`PartialBlob::commit`] once [`PartialBlob::verified_len`] reaches the size; commit hashes
//! the whole file again and only then renames it under the hash. After a cut link or a restart,
//! [`super::BlobStore::partial`] reopens it at the last verified length (bytes after it, written
//! before a crash but not recorded, are dropped), so a download resumes from there.

use super::store::{io_err, sync_dir, BlobError, BlobStore};
use hedgerow_protocol::attachment::BlobHash;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A partial blob, open for appending verified bytes.
#[derive(Debug)]
pub struct PartialBlob {
    store: BlobStore,
    hash: BlobHash,
    size: u64,
    data: PathBuf,
    file: File,
    verified: u64,
}

impl PartialBlob {
    /// Opens (or starts) the partial blob `hash` of `size` bytes.
    pub(crate) fn open(store: BlobStore, hash: BlobHash, size: u64) -> Result<Self, BlobError> {
        let dir = store.partial_dir();
        store.ensure_dir(&dir)?;
        let data = dir.join(hash.to_hex());
        let sidecar = Self::sidecar_path(&data);
        // A sidecar for another size (a peer lied about it earlier) counts for nothing.
        let verified = fs::read_to_string(&sidecar)
            .ok()
            .and_then(|text| {
                let mut parts = text.split_whitespace();
                let verified: u64 = parts.next()?.parse().ok()?;
                let recorded: u64 = parts.next()?.parse().ok()?;
                (recorded == size && verified <= size).then_some(verified)
            })
            .unwrap_or(0);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&data)
            .map_err(io_err("open", &data))?;
        let on_disk = file.metadata().map_err(io_err("read", &data))?.len();
        // Bytes past the verified length were written but never recorded as verified: drop them.
        let verified = verified.min(on_disk);
        file.set_len(verified).map_err(io_err("truncate", &data))?;
        file.seek(SeekFrom::Start(verified))
            .map_err(io_err("seek in", &data))?;
        Ok(PartialBlob {
            store,
            hash,
            size,
            data,
            file,
            verified,
        })
    }

    /// The sidecar of a partial blob's data file.
    pub(crate) fn sidecar_path(data: &Path) -> PathBuf {
        let mut name = data.as_os_str().to_os_string();
        name.push(".verified");
        PathBuf::from(name)
    }

    /// The blob being received.
    pub fn hash(&self) -> BlobHash {
        self.hash
    }

    /// Its full size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many leading bytes are verified and kept: where the next chunk starts.
    pub fn verified_len(&self) -> u64 {
        self.verified
    }

    /// Appends bytes the caller verified, makes them durable, then records the new verified
    /// length (so a crash between the two loses the chunk, never trusts unverified bytes).
    /// Bytes past the blob's size are refused.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        let end = self.verified + bytes.len() as u64;
        if end > self.size {
            return Err(BlobError::WrongSize {
                hash: self.hash,
                expected: self.size,
                got: end,
            });
        }
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(io_err("write", &self.data))?;
        crate::home::write_file_atomic(
            &Self::sidecar_path(&self.data),
            format!("{end} {}\n", self.size).as_bytes(),
            0o644,
        )
        .map_err(io_err("write", &Self::sidecar_path(&self.data)))?;
        self.verified = end;
        Ok(())
    }

    /// Hashes the whole received file and, if it is the blob, moves it under its hash
    /// (fsynced, renamed, directory fsynced) and removes the sidecar. On a mismatch the partial
    /// blob is deleted and nothing is stored under the hash.
    pub fn commit(self) -> Result<(), BlobError> {
        if self.verified != self.size {
            return Err(BlobError::WrongSize {
                hash: self.hash,
                expected: self.size,
                got: self.verified,
            });
        }
        let mut file = File::open(&self.data).map_err(io_err("open", &self.data))?;
        let (found, _) = super::store::hash_reader(&mut file, &self.data)?;
        if found != self.hash {
            self.store.remove_partial(&self.hash)?;
            return Err(BlobError::Mismatch {
                expected: self.hash,
                found,
            });
        }
        self.file.sync_all().map_err(io_err("write", &self.data))?;
        let dest = self.store.path(&self.hash);
        if !self.store.has(&self.hash) {
            let dir = dest.parent().unwrap_or(self.store.root()).to_path_buf();
            self.store.ensure_dir(&dir)?;
            fs::rename(&self.data, &dest).map_err(io_err("store", &dest))?;
            sync_dir(&dir)?;
        }
        self.store.remove_partial(&self.hash)?;
        sync_dir(&self.store.partial_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect()
    }

    /// Appended chunks survive a reopen (a restart), the download resumes at the verified
    /// length, and commit puts the blob under its hash.
    #[test]
    fn a_partial_blob_resumes_and_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::new(dir.path());
        let bytes = bytes();
        let hash = BlobHash::of(&bytes);
        let size = bytes.len() as u64;
        {
            let mut partial = store.partial(hash, size).expect("start");
            partial.append(&bytes[..100_000]).expect("chunk 1");
            partial.append(&bytes[100_000..150_000]).expect("chunk 2");
        }
        // Bytes written after the last recorded chunk (a crash mid-chunk) are not trusted.
        let data = store.partial_dir().join(hash.to_hex());
        let mut raw = OpenOptions::new().append(true).open(&data).expect("raw");
        raw.write_all(&[0xff; 999]).expect("garbage");
        let mut partial = store.partial(hash, size).expect("resume");
        assert_eq!(partial.verified_len(), 150_000);
        assert!(!store.has(&hash));
        partial.append(&bytes[150_000..]).expect("rest");
        assert!(partial.append(&[1]).is_err(), "past the end");
        partial.commit().expect("commit");
        assert!(store.has(&hash));
        assert_eq!(
            store.check(&hash, false, Some(size)).expect("check"),
            super::super::store::BlobCheck::Sound
        );
        assert!(store.partials().expect("partials").is_empty());
        // A sidecar for another size is ignored: the download starts over.
        let other = store.partial(BlobHash([9; 32]), 10).expect("other");
        assert_eq!(other.verified_len(), 0);
    }

    /// Bytes that do not hash to the name are never committed under it.
    #[test]
    fn a_mismatched_partial_blob_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::new(dir.path());
        let bytes = bytes();
        let hash = BlobHash::of(&bytes);
        let mut partial = store.partial(hash, bytes.len() as u64).expect("start");
        let mut wrong = bytes.clone();
        wrong[123] ^= 0x10;
        partial.append(&wrong).expect("append");
        let err = partial.commit().expect_err("mismatch");
        assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");
        assert!(!store.has(&hash));
        assert!(store.partials().expect("partials").is_empty());
    }
}
