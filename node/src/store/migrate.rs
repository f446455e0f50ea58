//! Upgrading a store written by an earlier release, in place, with a backup taken first.
//!
//! A store's format byte (`meta/format`, mirrored in the manifest) names its layout. Opening a
//! store of an older format copies the whole store directory beside it
//! (`store.format-N-backup`, N the old format), then runs each step from that format up to
//! [`STORE_FORMAT`](super::STORE_FORMAT) and records the new format. A newer format is refused
//! before sled opens (`refuse_newer_manifest` in `store.rs`). Downgrading is restoring the backup
//! with the older binary.

use super::StoreError;
use std::path::{Path, PathBuf};

/// One upgrade step: rewrites the trees of format N into those of format N + 1.
pub type Step = fn(&sled::Db) -> Result<(), sled::Error>;

/// The upgrade steps, `STEPS[i]` taking format `i + 1` to `i + 2`. Empty: format 1 is the
/// first released format (every release so far wrote it).
pub const STEPS: &[Step] = &[];

const _: () = assert!(STEPS.len() + 1 == super::STORE_FORMAT as usize);

/// Where the backup of a store of format `found` goes: beside it, named with the old format
/// (`-2`, `-3`... when an earlier upgrade left one there already).
pub fn backup_path(store: &Path, found: u8) -> PathBuf {
    let name = store
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".to_string());
    let base = store.with_file_name(format!("{name}.format-{found}-backup"));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    candidate
}

/// Upgrades the open store at `path` from format `found` to `target` with `steps`
/// (`steps[0]` starting at format 1): flushes it, copies it aside, runs the steps and records
/// `target` in `meta`. Returns where the backup is. The caller rewrites the manifest.
pub fn upgrade(
    path: &Path,
    db: &sled::Db,
    found: u8,
    target: u8,
    steps: &[Step],
) -> Result<PathBuf, StoreError> {
    let sled_err = |source| super::sled_error(path, source);
    let unknown = || StoreError::UnknownFormat {
        path: path.to_path_buf(),
        found,
    };
    let first = usize::from(found).checked_sub(1).ok_or_else(unknown)?;
    let last = usize::from(target).saturating_sub(1);
    let run = steps.get(first..last).ok_or_else(unknown)?;
    // What the copy holds is exactly what a crash now would leave, which sled recovers from.
    db.flush().map_err(sled_err)?;
    let backup = backup_path(path, found);
    copy_dir(path, &backup).map_err(|source| StoreError::Backup {
        path: backup.clone(),
        source,
    })?;
    for step in run {
        step(db).map_err(sled_err)?;
    }
    db.open_tree("meta")
        .and_then(|meta| meta.insert("format", &[target]))
        .map_err(sled_err)?;
    db.flush().map_err(sled_err)?;
    tracing::warn!(
        "upgraded the store at {} from format {found} to {target}; the old store is kept at {}",
        path.display(),
        backup.display()
    );
    Ok(backup)
}

/// Copies the directory `from` (files and subdirectories) to the new directory `to`, fsynced,
/// through a temporary name so a half-made copy never looks like a backup.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = PathBuf::from(format!("{}.partial", to.display()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    copy_tree(from, &tmp)?;
    std::fs::rename(&tmp, to)?;
    if let Some(parent) = to.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    std::fs::File::open(to)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn add_tree(db: &sled::Db) -> Result<(), sled::Error> {
        db.open_tree("added_in_2")?.insert("k", "v")?;
        Ok(())
    }

    #[test]
    fn an_older_store_is_backed_up_then_upgraded_step_by_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        let store = Store::open(&path).expect("open");
        store
            .db
            .open_tree("commons")
            .and_then(|t| t.insert("c", "old"))
            .expect("write");

        let backup = upgrade(&path, &store.db, 1, 2, &[add_tree]).expect("upgrade");

        assert_eq!(backup, dir.path().join("store.format-1-backup"));
        let meta = store.db.open_tree("meta").expect("meta");
        assert_eq!(
            meta.get("format").expect("read").as_deref(),
            Some(&[2u8][..])
        );
        let added = store.db.open_tree("added_in_2").expect("tree");
        assert_eq!(added.get("k").expect("read").as_deref(), Some(&b"v"[..]));
        drop(store);
        // The backup is the old store as it was: format 1, its data, without the new tree.
        let old = sled::open(&backup).expect("open backup");
        let meta = old.open_tree("meta").expect("meta");
        assert_eq!(
            meta.get("format").expect("read").as_deref(),
            Some(&[1u8][..])
        );
        let commons = old.open_tree("commons").expect("commons");
        assert_eq!(
            commons.get("c").expect("read").as_deref(),
            Some(&b"old"[..])
        );
        assert!(!old.tree_names().iter().any(|n| &n[..] == b"added_in_2"));
        assert!(!dir.path().join("store.format-1-backup.partial").exists());
        // A second upgrade of the same format keeps the first backup.
        assert_eq!(
            backup_path(&path, 1),
            dir.path().join("store.format-1-backup-2")
        );
    }

    #[test]
    fn a_format_with_no_steps_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        let store = Store::open(&path).expect("open");
        let err = upgrade(&path, &store.db, 0, 2, &[add_tree]).expect_err("format 0");
        assert!(
            matches!(err, StoreError::UnknownFormat { found: 0, .. }),
            "{err}"
        );
        assert!(!dir.path().join("store.format-0-backup").exists());
    }
}
