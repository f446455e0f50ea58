//! Making files and directory entries durable (fsync) where sled does not.
//!
//! sled 0.34's `flush()` on Linux ends in `sync_file_range`, which neither commits
//! the file size nor flushes the disk cache, and sled fsyncs neither its blob files
//! (values over about 128 KiB) nor the directories it renames snapshots in. Its
//! background flusher calls a real fsync only about 250 ms later. [`sync_sled_dir`]
//! closes that gap after every flush: an fsync on any descriptor of a file flushes
//! that file, so opening sled's files ourselves and fsyncing them is enough.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::path::Path;

/// Fsyncs a directory, so the entries created, renamed or removed in it survive a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Fsyncs one existing file through a descriptor of our own.
pub fn sync_file(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Renames `from` to `to` and fsyncs the directory holding both, so the rename survives a power cut.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Creates `dir` (and missing parents) and fsyncs each parent whose entry it added.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
        std::fs::create_dir(dir).or_else(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })?;
        sync_dir(parent)
    } else {
        std::fs::create_dir(dir)
    }
}

/// Blob files already fsynced (sled writes each blob once and never changes it), and
/// whether the blob directory itself has been fsynced once.
#[derive(Default)]
pub struct SyncedBlobs(HashSet<OsString>, bool);

/// Fsyncs what sled wrote to `dir` since the last call: its log (`db`), its config,
/// its snapshots, every blob not yet synced, and the directories holding them.
///
/// A file sled deletes between our listing and our open (an old snapshot, a
/// collected blob) is skipped: it is no longer part of the store.
pub fn sync_sled_dir(dir: &Path, blobs: &mut SyncedBlobs) -> io::Result<()> {
    let skip_gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    let blob_dir = dir.join("blobs");
    if blob_dir.is_dir() {
        let mut present = HashSet::new();
        for entry in std::fs::read_dir(&blob_dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if !blobs.0.contains(&name) {
                skip_gone(sync_file(&entry.path()))?;
            }
            present.insert(name);
        }
        // Removed blobs need no fsync: one that comes back after a power cut is unreferenced.
        if present.iter().any(|name| !blobs.0.contains(name)) || !blobs.1 {
            sync_dir(&blob_dir)?;
            blobs.1 = true;
        }
        blobs.0 = present;
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "db"
            || name == "conf"
            || (name.starts_with("snap.") && !name.ends_with(".generating"))
        {
            skip_gone(sync_file(&entry.path()))?;
        }
    }
    sync_dir(dir)
}
