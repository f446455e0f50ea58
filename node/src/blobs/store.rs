//! The blob store: file bytes in `HOME/blobs/`, each named by the BLAKE3 hash of its content.
//!
//! The API the libp2p transfer builds on is small: [`BlobStore::has`], [`BlobStore::size`],
//! [`BlobStore::open`] / [`BlobStore::read_range`] to serve, [`BlobStore::partial`] to receive
//! (a [`PartialBlob`] that appends verified bytes, survives restarts and is committed under the
//! hash only after the whole file hashed right). [`BlobStore::add_reader`] stores bytes whose
//! hash is not known yet (a local file, a bundle's blob), hashing while it copies.
//!
//! Every copy goes through a [`COPY_BUFFER`]-sized buffer: a 500 MB drawing never sits in memory.
//! A blob appears under its name only by `rename` of a complete, fsynced file (then the
//! directory is fsynced), so a power cut leaves the old state or the new one, and readers never
//! see half a blob.

use super::partial::PartialBlob;
use hedgerow_protocol::attachment::BlobHash;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Size of every copy buffer.
pub const COPY_BUFFER: usize = 64 * 1024;

/// Temp files older than this are leftovers of a crash; `gc` removes them.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The file system refused.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// More bytes than the limit allows.
    #[error("{what} is over the {max}-byte limit for one file (config.json `files.max_file_bytes`); nothing was stored")]
    TooLarge {
        /// What was being stored (a path, a blob of a bundle).
        what: String,
        /// The limit.
        max: u64,
    },
    /// The bytes do not hash to the name they were meant for.
    #[error("the bytes of blob {expected} hash to {found}; nothing was stored under its name")]
    Mismatch {
        /// The hash they should have.
        expected: BlobHash,
        /// What they hash to.
        found: BlobHash,
    },
    /// More or fewer bytes than the blob's size.
    #[error(
        "blob {hash} is {expected} bytes, but {got} were given; nothing was stored under its name"
    )]
    WrongSize {
        /// The blob.
        hash: BlobHash,
        /// Its size.
        expected: u64,
        /// What arrived.
        got: u64,
    },
    /// The blob is not held here.
    #[error("blob {0} is not held on this node")]
    Missing(BlobHash),
    /// A range past the blob's end.
    #[error("bytes {offset}..{end} are past the end of blob {hash} ({size} bytes)")]
    OutOfRange {
        /// The blob.
        hash: BlobHash,
        /// Start asked for.
        offset: u64,
        /// End asked for.
        end: u64,
        /// The blob's size.
        size: u64,
    },
}

/// Builds the error of a failed file operation.
pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BlobError {
    let path = path.to_path_buf();
    move |source| BlobError::Io {
        action,
        path,
        source,
    }
}

/// What [`BlobStore::add_reader`] stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Added {
    /// The bytes' hash.
    pub hash: BlobHash,
    /// Their size.
    pub size: u64,
    /// Whether the blob is new (false: it was held already, the copy was dropped).
    pub new: bool,
}

/// What [`BlobStore::check`] found of one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobCheck {
    /// Present, and its bytes hash to its name (or, quick, its size is right).
    Sound,
    /// Not held.
    Missing,
    /// Its size is not the one documents record.
    WrongSize {
        /// The size on disk.
        size: u64,
    },
    /// Its bytes hash to something else.
    Damaged {
        /// What they hash to.
        found: BlobHash,
    },
}

/// The blob store of one home.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The store of the home at `home_root` (`HOME/blobs`; created on first write).
    pub fn new(home_root: &Path) -> Self {
        BlobStore {
            root: home_root.join("blobs"),
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it is held).
    pub fn path(&self, hash: &BlobHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Whether the blob is held (complete: partial blobs are elsewhere).
    pub fn has(&self, hash: &BlobHash) -> bool {
        self.path(hash).is_file()
    }

    /// The blob's size, `None` when not held.
    pub fn size(&self, hash: &BlobHash) -> Result<Option<u64>, BlobError> {
        let path = self.path(hash);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Opens a held blob for reading (stream it; see [`COPY_BUFFER`]).
    pub fn open(&self, hash: &BlobHash) -> Result<File, BlobError> {
        let path = self.path(hash);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BlobError::Missing(*hash),
            _ => io_err("open", &path)(e),
        })
    }

    /// Reads `len` bytes of a held blob from `offset` (what a transfer serves per chunk).
    pub fn read_range(
        &self,
        hash: &BlobHash,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, BlobError> {
        let path = self.path(hash);
        let mut file = self.open(hash)?;
        let size = file.metadata().map_err(io_err("read", &path))?.len();
        let end = offset.saturating_add(len as u64);
        if end > size {
            return Err(BlobError::OutOfRange {
                hash: *hash,
                offset,
                end,
                size,
            });
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(io_err("read", &path))?;
        let mut out = vec![0u8; len];
        file.read_exact(&mut out).map_err(io_err("read", &path))?;
        Ok(out)
    }

    /// Stores the bytes of `reader`, hashing them while copying (at most `max` bytes; more is
    /// [`BlobError::TooLarge`] naming `what`). With `expected`, the bytes must be exactly that
    /// blob ([`BlobError::WrongSize`], [`BlobError::Mismatch`]). Nothing is kept on any error.
    ///
    /// `progress` is told the bytes copied so far, every buffer.
    pub fn add_reader(
        &self,
        reader: &mut dyn Read,
        what: &str,
        max: u64,
        expected: Option<(BlobHash, u64)>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Added, BlobError> {
        self.ensure_dir(&self.root)?;
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.root)
            .map_err(io_err("create a file in", &self.root))?;
        let temp_path = temp.path().to_path_buf();
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut copied: u64 = 0;
        let limit = expected.map_or(max, |(_, size)| size.min(max));
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("read", Path::new(what))(e)),
            };
            copied += n as u64;
            if copied > limit {
                return Err(match expected {
                    Some((hash, size)) if size <= max => BlobError::WrongSize {
                        hash,
                        expected: size,
                        got: copied,
                    },
                    _ => BlobError::TooLarge {
                        what: what.to_string(),
                        max,
                    },
                });
            }
            hasher.update(&buf[..n]);
            temp.write_all(&buf[..n])
                .map_err(io_err("write", &temp_path))?;
            progress(copied);
        }
        let hash = BlobHash::from(hasher.finalize());
        if let Some((want, size)) = expected {
            if copied != size {
                return Err(BlobError::WrongSize {
                    hash: want,
                    expected: size,
                    got: copied,
                });
            }
            if hash != want {
                return Err(BlobError::Mismatch {
                    expected: want,
                    found: hash,
                });
            }
        }
        if self.has(&hash) {
            return Ok(Added {
                hash,
                size: copied,
                new: false,
            });
        }
        temp.as_file()
            .sync_all()
            .map_err(io_err("write", &temp_path))?;
        let dest = self.path(&hash);
        self.place(temp.into_temp_path(), &dest)?;
        Ok(Added {
            hash,
            size: copied,
            new: true,
        })
    }

    /// Stores the file at `path` (a local attachment), refusing one over `max` bytes before
    /// reading it.
    pub fn add_file(&self, path: &Path, max: u64) -> Result<Added, BlobError> {
        let mut file = File::open(path).map_err(io_err("open", path))?;
        let meta = file.metadata().map_err(io_err("read", path))?;
        if !meta.is_file() {
            return Err(BlobError::Io {
                action: "attach",
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        let what = path.display().to_string();
        if meta.len() > max {
            return Err(BlobError::TooLarge { what, max });
        }
        self.add_reader(&mut file, &what, max, None, &mut |_| {})
    }

    /// Renames a complete, fsynced file to `dest` and fsyncs the directories involved.
    pub(crate) fn place(&self, temp: tempfile::TempPath, dest: &Path) -> Result<(), BlobError> {
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        self.ensure_dir(&dir)?;
        temp.persist(dest)
            .map_err(|e| io_err("store", dest)(e.error))?;
        sync_dir(&dir)?;
        sync_dir(&self.root)
    }

    /// Creates a directory of the store if needed.
    pub(crate) fn ensure_dir(&self, dir: &Path) -> Result<(), BlobError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))
    }

    /// Every complete blob held, with its size, sorted by hash.
    pub fn list(&self) -> Result<Vec<(BlobHash, u64)>, BlobError> {
        let mut out = Vec::new();
        let Some(dirs) = read_dir(&self.root)? else {
            return Ok(out);
        };
        for dir in dirs {
            let dir = dir.map_err(io_err("list", &self.root))?;
            let prefix = dir.file_name().to_string_lossy().to_string();
            if prefix.len() != 2 || !dir.path().is_dir() {
                continue;
            }
            let Some(files) = read_dir(&dir.path())? else {
                continue;
            };
            for file in files {
                let file = file.map_err(io_err("list", &dir.path()))?;
                let name = format!("{prefix}{}", file.file_name().to_string_lossy());
                let Ok(hash) = name.parse::<BlobHash>() else {
                    continue;
                };
                let size = file.metadata().map_err(io_err("read", &file.path()))?.len();
                out.push((hash, size));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a held blob; `false` when it was not there.
    pub fn remove(&self, hash: &BlobHash) -> Result<bool, BlobError> {
        let path = self.path(hash);
        match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    // An empty prefix directory is left to the next write; removing it races none.
                    sync_dir(dir)?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Checks a held blob: its size against `expected_size` (when given), and unless `quick`
    /// its bytes against its name.
    pub fn check(
        &self,
        hash: &BlobHash,
        quick: bool,
        expected_size: Option<u64>,
    ) -> Result<BlobCheck, BlobError> {
        let Some(size) = self.size(hash)? else {
            return Ok(BlobCheck::Missing);
        };
        if expected_size.is_some_and(|expected| expected != size) {
            return Ok(BlobCheck::WrongSize { size });
        }
        if quick {
            return Ok(BlobCheck::Sound);
        }
        let path = self.path(hash);
        let (found, _) = hash_reader(&mut self.open(hash)?, &path)?;
        Ok(if found == *hash {
            BlobCheck::Sound
        } else {
            BlobCheck::Damaged { found }
        })
    }

    /// The partial blob `hash` of `size` bytes, resumed where its verified bytes end, or new.
    pub fn partial(&self, hash: BlobHash, size: u64) -> Result<PartialBlob, BlobError> {
        PartialBlob::open(self.clone(), hash, size)
    }

    /// The directory of partial blobs.
    pub(crate) fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }

    /// Every partial blob present, by hash.
    pub fn partials(&self) -> Result<Vec<BlobHash>, BlobError> {
        let dir = self.partial_dir();
        let mut out = Vec::new();
        for entry in read_dir(&dir)?.into_iter().flatten() {
            let entry = entry.map_err(io_err("list", &dir))?;
            if let Ok(hash) = entry.file_name().to_string_lossy().parse::<BlobHash>() {
                out.push(hash);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a partial blob and its sidecar; the bytes it held.
    pub fn remove_partial(&self, hash: &BlobHash) -> Result<u64, BlobError> {
        let data = self.partial_dir().join(hash.to_hex());
        let size = fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
        for path in [data.clone(), PartialBlob::sidecar_path(&data)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok(size)
    }

    /// Removes copies a crash left unfinished (temp files over an hour old); the bytes freed.
    pub fn remove_stale_temps(&self) -> Result<u64, BlobError> {
        let mut freed = 0;
        for entry in read_dir(&self.root)?.into_iter().flatten() {
            let entry = entry.map_err(io_err("list", &self.root))?;
            if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            if age >= STALE_TEMP && fs::remove_file(entry.path()).is_ok() {
                freed += meta.len();
            }
        }
        Ok(freed)
    }
}

/// Hashes everything `reader` yields, streaming; (hash, size).
pub fn hash_reader(reader: &mut dyn Read, path: &Path) -> Result<(BlobHash, u64), BlobError> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut size = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
    }
    Ok((hasher.finalize().into(), size))
}

/// `read_dir`, with a missing directory as `None`.
fn read_dir(dir: &Path) -> Result<Option<fs::ReadDir>, BlobError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("list", dir)(e)),
    }
}

/// Makes a directory's entries (a rename, a removal) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::new(dir.path());
        (dir, store)
    }

    /// Bytes go in hashed while copied, once however often they are added, and read back.
    #[test]
    fn add_is_atomic_and_stores_once() {
        let (_dir, store) = store();
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let hash = BlobHash::of(&bytes);
        let added = store
            .add_reader(&mut bytes.as_slice(), "test", 1 << 20, None, &mut |_| {})
            .expect("add");
        assert_eq!((added.hash, added.size, added.new), (hash, 200_000, true));
        let again = store
            .add_reader(
                &mut bytes.as_slice(),
                "test",
                1 << 20,
                Some((hash, 200_000)),
                &mut |_| {},
            )
            .expect("again");
        assert!(!again.new);
        assert_eq!(store.list().expect("list"), vec![(hash, 200_000)]);
        assert_eq!(
            store.read_range(&hash, 70_000, 10).expect("range"),
            bytes[70_000..70_010]
        );
        assert!(store.read_range(&hash, 199_995, 10).is_err());
        assert_eq!(
            store.check(&hash, false, Some(200_000)).expect("check"),
            BlobCheck::Sound
        );
        // No temp file is left beside the blobs.
        let leftovers: Vec<_> = fs::read_dir(store.root())
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    /// Bytes that do not match the expected hash, size or limit leave nothing under any name.
    #[test]
    fn nothing_is_kept_under_a_hash_on_mismatch() {
        let (_dir, store) = store();
        let want = BlobHash::of(b"the real drawing");
        let err = store
            .add_reader(
                &mut &b"a forged drawing"[..],
                "test",
                1 << 20,
                Some((want, 16)),
                &mut |_| {},
            )
            .expect_err("mismatch");
        assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");
        let short = store
            .add_reader(
                &mut &b"short"[..],
                "test",
                1 << 20,
                Some((want, 16)),
                &mut |_| {},
            )
            .expect_err("short");
        assert!(matches!(short, BlobError::WrongSize { .. }), "{short}");
        let big = store
            .add_reader(&mut &[0u8; 100][..], "big.bin", 10, None, &mut |_| {})
            .expect_err("over the limit");
        assert!(matches!(big, BlobError::TooLarge { .. }), "{big}");
        assert!(!store.has(&want));
        assert!(store.list().expect("list").is_empty());
        let entries = fs::read_dir(store.root()).expect("dir").count();
        assert_eq!(entries, 0, "no temp file or blob left");
    }

    /// A flipped byte is caught by the full check; a truncation by the quick one.
    #[test]
    fn checks_catch_damage() {
        let (_dir, store) = store();
        let bytes = vec![7u8; 5000];
        let added = store
            .add_reader(&mut bytes.as_slice(), "t", 1 << 20, None, &mut |_| {})
            .expect("add");
        let path = store.path(&added.hash);
        let mut damaged = bytes.clone();
        damaged[10] ^= 1;
        fs::write(&path, &damaged).expect("flip");
        assert_eq!(
            store.check(&added.hash, true, Some(5000)).expect("quick"),
            BlobCheck::Sound
        );
        assert!(matches!(
            store.check(&added.hash, false, Some(5000)).expect("full"),
            BlobCheck::Damaged { .. }
        ));
        fs::write(&path, &bytes[..4000]).expect("truncate");
        assert_eq!(
            store.check(&added.hash, true, Some(5000)).expect("quick"),
            BlobCheck::WrongSize { size: 4000 }
        );
    }
}
