//! The replica store on sled.
//!
//! Signed records are the source of truth; snapshots and summaries are caches
//! rebuilt from them by `hedgerow verify --rebuild`.
//!
//! Trees (keys are raw ids; values are versioned encodings from `hedgerow_protocol::encoding`):
//! - `meta`: `format` -> store format version byte.
//! - `commons`: commons id -> `Signed<CommonsGenesis>`.
//! - `docs`: doc id -> `Signed<DocGenesis>`.
//! - `commons_docs`: commons id ++ doc id -> empty (which documents a commons holds).
//! - `changes`: doc id ++ change hash -> raw automerge change bytes.
//! - `records`: doc id ++ change hash -> `ChangeRecord` (author, optional own proof).
//! - `excluded`: doc id ++ change hash -> `ExcludedRecord`: validly signed changes kept out
//!   of the document by the equivocation rule, the evidence `verify` and `status` show
//!   (added in the second release; a store without it simply has none).
//! - `snapshots`: doc id -> automerge `save()` of the document (cache).
//! - `summaries`: doc id -> `DocSummary` (cache: kind, title, heads, counts).
//! - `peers`: peer id -> `KnownPeer` (addresses learnt by the network layer).
//! - `wanted`: commons id -> empty (commons asked for with `commons join`, not yet received).
//! - `local_blocks`, `local_hidden`, `purged`: this node's own block list, hidden documents
//!   and purged documents, never synced (see [`local_lists`]; added in the third release, a
//!   store without them has none).

pub mod local_lists;
pub mod migrate;

use hedgerow_protocol::automerge::ChangeHash;
use hedgerow_protocol::encoding::{decode, encode, DecodeError};
use hedgerow_protocol::replica::{Accepted, ChangeRecord, Excluded, ExclusionReason};
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::sync::{heads_digest, HeadsDigest};
use hedgerow_protocol::{CommonsGenesis, CommonsId, DocGenesis, DocId, Signed};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Version of the store layout; bumped when trees or value formats change incompatibly.
pub const STORE_FORMAT: u8 = 1;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the store.
    #[error("the store at {path} is in use by another hedgerow process")]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// sled failed (disk full, I/O error, corruption it detected).
    #[error("store at {path} could not be read or written: {source}")]
    Sled {
        /// The store directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// The journal beside the store could not be read or written.
    #[error("journal {path} could not be written: {source}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// sled found a record whose checksum does not match (a damaged disk or SD card).
    #[error("the store at {path} is damaged on disk (part of it no longer reads back as written)")]
    Unreadable {
        /// The store directory.
        path: PathBuf,
    },
    /// Fewer changes than the last successful flush recorded: sled lost data on disk.
    #[error("store at {path} is damaged: it held {expected} signed changes at its last save but only {found} can be read")]
    Damaged {
        /// The store directory.
        path: PathBuf,
        /// Changes recorded in the manifest.
        expected: u64,
        /// Changes readable now.
        found: u64,
    },
    /// A value did not decode: the store is damaged.
    #[error("store is damaged: {tree} entry {key} does not decode ({source})")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key, hex.
        key: String,
        /// Why it did not decode.
        source: DecodeError,
    },
    /// The manifest beside sled cannot be read or parsed.
    #[error("store manifest {path} cannot be read ({reason}); the store's damage check needs it")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
    /// The store was written by a newer Hedgerow.
    #[error("the store at {path} was written by a newer hedgerow (store format {found}; this build reads format {STORE_FORMAT}); upgrade hedgerow to open it (the store was not changed)")]
    NewerFormat {
        /// The store directory.
        path: PathBuf,
        /// The format found.
        found: u8,
    },
    /// An older format this build has no upgrade for (never written by a release).
    #[error("the store at {path} has store format {found}, which no release wrote and this build (format {STORE_FORMAT}) cannot upgrade; restore it from a backup or run `hedgerow repair`")]
    UnknownFormat {
        /// The store directory.
        path: PathBuf,
        /// The format found.
        found: u8,
    },
    /// The copy of an older store, taken before upgrading it, could not be written.
    #[error("could not back up the store to {path} before upgrading it ({source}); nothing was changed: free some disk space and try again")]
    Backup {
        /// The backup directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A cached digest of one document, enough to list documents and compare state without loading them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSummary {
    /// The commons the document belongs to.
    pub commons: CommonsId,
    /// The document kind.
    pub kind: DocKind,
    /// Its title or name at the current heads.
    pub title: String,
    /// Current automerge heads.
    pub heads: Vec<[u8; 32]>,
    /// Changes held.
    pub changes: u64,
    /// Latest change time claimed by its author, unix seconds.
    pub updated_at: i64,
}

/// One stored change: hash, raw bytes, and its provenance record (missing only in a damaged store).
pub type StoredChange = ([u8; 32], Vec<u8>, Option<ChangeRecord>);

/// A change kept out of its document, as stored in the `excluded` tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedRecord {
    /// The raw change bytes.
    pub bytes: Vec<u8>,
    /// Who signed it.
    pub record: ChangeRecord,
    /// Why it is out.
    pub reason: ExclusionReason,
}

/// What the network layer remembers of a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KnownPeer {
    /// Multiaddresses where it was reached, most recent first.
    pub addrs: Vec<String>,
    /// Last time a connection succeeded, unix seconds.
    pub last_seen: i64,
}

/// The sled store.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    commons: sled::Tree,
    docs: sled::Tree,
    commons_docs: sled::Tree,
    changes: sled::Tree,
    records: sled::Tree,
    excluded: sled::Tree,
    snapshots: sled::Tree,
    summaries: sled::Tree,
    peers: sled::Tree,
    wanted: sled::Tree,
    /// Authors this node refuses new changes from (see [`local_lists`]).
    local_blocks: sled::Tree,
    /// Documents this node does not list, show or serve.
    local_hidden: sled::Tree,
    /// Documents removed by `hedgerow purge`, never taken in again.
    purged: sled::Tree,
    /// Changes held, counted on open and kept current; checked against the manifest.
    change_count: std::sync::atomic::AtomicU64,
    /// The change count the manifest on disk holds, so a read-only command does not rewrite it.
    manifest_changes: std::sync::atomic::AtomicU64,
    /// Each commons' documents with their heads digests, as [`Store::inventory`] last read
    /// them and kept current by every write: every sync `Hello` needs them, and reading 5,000
    /// summaries from sled each time made an in-sync reconnect grow with the commons.
    inventories: Mutex<HashMap<CommonsId, BTreeMap<DocId, HeadsDigest>>>,
    /// The store held signed changes but no manifest when opened: the damage check could not
    /// run (reported by `hedgerow verify` until a manifest is written again).
    manifest_missing: std::sync::atomic::AtomicBool,
    /// Signed changes and geneses, kept outside sled for `hedgerow repair` (see [`crate::journal`]).
    journal: Mutex<crate::journal::Journal>,
    /// sled's blob files already fsynced by [`Store::flush`].
    synced_blobs: Mutex<crate::durable::SyncedBlobs>,
    /// Our own lock on the store directory, held while the store is open (see [`lock_dir`]).
    _lock: std::fs::File,
}

/// Longest `open` waits for sled's lock once it holds the directory lock (see [`Store::open`]).
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Name of the lock file beside the sled files.
const LOCK_FILE: &str = "hedgerow.lock";

/// Takes an exclusive lock on the store directory before sled opens it.
///
/// sled takes its own lock, but only inside `open`, after it has read its
/// snapshot; the clean-up in [`remove_partial_snapshots`] must not run while
/// another process may be writing one.
fn lock_dir(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::io::AsRawFd;
    let io = |source: std::io::Error| StoreError::Sled {
        path: path.to_path_buf(),
        source: sled::Error::Io(source),
    };
    crate::durable::create_dir_all(path).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path.join(LOCK_FILE))
        .map_err(io)?;
    // SAFETY: flock on a file descriptor we own and keep open; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(code) if code == libc::EWOULDBLOCK => StoreError::Locked {
                path: path.to_path_buf(),
            },
            _ => io(error),
        });
    }
    Ok(file)
}

/// Name of the file sled locks (with `flock`) while a `sled::Db` on the directory is open.
const SLED_LOCK_FILE: &str = "db";

/// Whether sled's own lock on the store is held, by another process or by the background
/// threads of a store this process has just closed: a fresh `flock` on sled's file would block.
fn sled_lock_held(path: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = std::fs::File::open(path.join(SLED_LOCK_FILE)) else {
        return false;
    };
    // SAFETY: flock on a file descriptor we own; closing it (the drop below) releases the probe.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// Removes the half-written snapshot files a killed process leaves behind.
///
/// sled writes its snapshot (on every clean close, among others) to
/// `snap.<lsn>.generating`, fsyncs it and renames it to `snap.<lsn>`; but on
/// open it reads whichever `snap.*` file sorts last, `.generating` included.
/// A process killed mid-write therefore leaves a store sled refuses to open
/// ("Read corrupted data"). The previous complete snapshot and the log are
/// still there, so dropping the partial file loses nothing.
fn remove_partial_snapshots(path: &Path) -> Result<(), StoreError> {
    let io = |source: std::io::Error| StoreError::Sled {
        path: path.to_path_buf(),
        source: sled::Error::Io(source),
    };
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::info!(file = %entry.path().display(), "removing a snapshot left half-written by a killed process");
            std::fs::remove_file(entry.path()).map_err(io)?;
        }
    }
    Ok(())
}

/// Name of the manifest file beside the sled files.
const MANIFEST: &str = "hedgerow-manifest.json";

/// How many changes the store held at its last successful flush, kept outside sled.
///
/// sled recovers from a torn write by truncating its log at the first bad
/// checksum; damage in the middle of the log would therefore silently drop
/// every later write. Comparing sled's content with this count turns that
/// into a clear error instead.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Manifest {
    format: u8,
    changes: u64,
}

/// Everything one ingest writes for one document, applied atomically.
pub struct DocWrite<'a> {
    /// The document's genesis, written if the document is new.
    pub genesis: &'a Signed<DocGenesis>,
    /// Newly accepted changes.
    pub accepted: &'a [Accepted],
    /// The document's snapshot after applying them, when it is to be rewritten now (it is a
    /// cache; a stale one is caught up from the records on load).
    pub snapshot: Option<Vec<u8>>,
    /// The refreshed summary.
    pub summary: DocSummary,
    /// Changes newly kept out of the document (moved out of `changes` if they were in).
    pub excluded: &'a [Excluded],
}

fn key2(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(a.len() + b.len());
    key.extend_from_slice(a);
    key.extend_from_slice(b);
    key
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_inner(path, true)
    }

    /// Opens a damaged store to read what is left, without checking its manifest
    /// (for `hedgerow repair`, which moves the store aside afterwards).
    pub fn open_for_salvage(path: &Path) -> Result<Self, StoreError> {
        Self::open_inner(path, false)
    }

    fn open_inner(path: &Path, check_manifest: bool) -> Result<Self, StoreError> {
        let sled_err = |source: sled::Error| sled_error(path, source);
        let lock = lock_dir(path)?;
        // A newer release is refused before sled opens: sled's recovery and its snapshot on
        // close would rewrite files of a store this build does not understand.
        refuse_newer_manifest(path)?;
        remove_partial_snapshots(path)?;
        let mut waited = std::time::Duration::ZERO;
        let db = loop {
            match sled::Config::new()
                .path(path)
                .cache_capacity(64 * 1024 * 1024)
                .open()
            {
                // We hold the directory lock, so no other process has the store: sled's own
                // lock is still held by the background threads of a store this process has
                // just closed (sled releases it a moment after the drop). Wait for them.
                // sled reports its lock only as an I/O error with a message, so the lock
                // itself is asked, by errno.
                Err(sled::Error::Io(_)) if sled_lock_held(path) => {
                    if waited >= SLED_LOCK_WAIT {
                        return Err(StoreError::Locked {
                            path: path.to_path_buf(),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    waited += std::time::Duration::from_millis(10);
                }
                opened => break opened.map_err(sled_err)?,
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let meta = tree("meta")?;
        // Before any other tree is created in a store of a layout this build does not know.
        if let Some(found) = meta
            .get("format")
            .map_err(sled_err)?
            .and_then(|v| v.first().copied())
            .filter(|found| *found > STORE_FORMAT)
        {
            return Err(StoreError::NewerFormat {
                path: path.to_path_buf(),
                found,
            });
        }
        // An older layout is upgraded before anything reads it, a copy taken first.
        let upgraded = match meta
            .get("format")
            .map_err(sled_err)?
            .and_then(|v| v.first().copied())
        {
            Some(found) if found < STORE_FORMAT => {
                migrate::upgrade(path, &db, found, STORE_FORMAT, migrate::STEPS)?;
                true
            }
            _ => false,
        };
        let (commons, docs, commons_docs, changes) = (
            tree("commons")?,
            tree("docs")?,
            tree("commons_docs")?,
            tree("changes")?,
        );
        let (records, snapshots, summaries, peers) = (
            tree("records")?,
            tree("snapshots")?,
            tree("summaries")?,
            tree("peers")?,
        );
        let wanted = tree("wanted")?;
        let (local_blocks, local_hidden, purged) = (
            tree("local_blocks")?,
            tree("local_hidden")?,
            tree("purged")?,
        );
        let journal = crate::journal::Journal::open(&crate::journal::journal_path(path)).map_err(
            |source| StoreError::Journal {
                path: crate::journal::journal_path(path),
                source,
            },
        )?;
        let excluded = tree("excluded")?;
        // Excluded changes count: settling an equivocation moves changes out of `records`,
        // and the manifest must never read that as data lost on disk.
        let found = records.len() as u64 + excluded.len() as u64;
        // A manifest that cannot be read or parsed is an error, not "absent": treating it as
        // absent would switch off the damage check below.
        let manifest_path = path.join(MANIFEST);
        let (manifest, manifest_missing): (Manifest, bool) = match std::fs::read(&manifest_path) {
            // `hedgerow repair` opens whatever is there, whatever the manifest says.
            _ if !check_manifest => (Manifest::default(), false),
            Ok(bytes) => (
                serde_json::from_slice(&bytes).map_err(|e| StoreError::BadManifest {
                    path: manifest_path.clone(),
                    reason: e.to_string(),
                })?,
                false,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Manifest::default(), found > 0),
            Err(e) => {
                return Err(StoreError::BadManifest {
                    path: manifest_path.clone(),
                    reason: e.to_string(),
                })
            }
        };
        if check_manifest && found < manifest.changes {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                expected: manifest.changes,
                found,
            });
        }
        let store = Self {
            _lock: lock,
            manifest_missing: std::sync::atomic::AtomicBool::new(manifest_missing),
            change_count: std::sync::atomic::AtomicU64::new(found),
            // A missing manifest is recreated by the next write (or `verify --rebuild`), not
            // by a read-only command: reads would otherwise hide the loss from `verify`.
            manifest_changes: std::sync::atomic::AtomicU64::new(if manifest_missing {
                found
            } else {
                manifest.changes
            }),
            commons,
            docs,
            commons_docs,
            changes,
            records,
            excluded,
            snapshots,
            summaries,
            peers,
            wanted,
            local_blocks,
            local_hidden,
            purged,
            inventories: Mutex::new(HashMap::new()),
            synced_blobs: Mutex::new(crate::durable::SyncedBlobs::default()),
            journal: Mutex::new(journal),
            path: path.to_path_buf(),
            db,
        };
        match meta.get("format").map_err(sled_err)? {
            Some(_) => {}
            None => {
                meta.insert("format", &[STORE_FORMAT]).map_err(sled_err)?;
                store.flush()?;
                // A new store has its manifest from the start, so a store with changes and
                // no manifest is one whose manifest was lost, not one killed before its
                // first save.
                if !manifest_path.exists() {
                    store.save_manifest(found)?;
                }
            }
        }
        if upgraded {
            store.save_manifest(found)?;
        }
        // A process killed before its flush may have left sled files that were never
        // fsynced (blobs above all) while sled's own flusher made the log that refers to
        // them durable; sync them now, before anything builds on them.
        store.sync_files()?;
        Ok(store)
    }

    fn err(&self, source: sled::Error) -> StoreError {
        sled_error(&self.path, source)
    }

    /// Makes everything written so far durable (fsync). Call before reporting success.
    ///
    /// sled's own flush is not enough on Linux (see [`crate::durable`]): its files and
    /// directories are fsynced here before the manifest records the new change count, so
    /// the manifest is never ahead of what a power cut leaves of sled.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.err(e))?;
        self.sync_files()?;
        self.lock_journal()
            .sync()
            .map_err(|e| self.journal_err(e))?;
        self.write_manifest()
    }

    fn lock_journal(&self) -> std::sync::MutexGuard<'_, crate::journal::Journal> {
        self.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn journal_err(&self, source: std::io::Error) -> StoreError {
        StoreError::Journal {
            path: crate::journal::journal_path(&self.path),
            source,
        }
    }

    /// Fsyncs sled's files and directories (see [`crate::durable::sync_sled_dir`]).
    fn sync_files(&self) -> Result<(), StoreError> {
        let mut blobs = self
            .synced_blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::durable::sync_sled_dir(&self.path, &mut blobs)
            .map_err(|e| self.err(sled::Error::Io(e)))
    }

    /// Records the change count outside sled, atomically (temp file, fsync, rename).
    fn write_manifest(&self) -> Result<(), StoreError> {
        let changes = self.change_count.load(std::sync::atomic::Ordering::SeqCst);
        if changes
            == self
                .manifest_changes
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            // Unchanged (a read-only command): no write, fsync and rename on every `show`.
            return Ok(());
        }
        self.save_manifest(changes)
    }

    /// Writes the manifest file with `changes`, atomically (temp file, fsync, rename).
    fn save_manifest(&self, changes: u64) -> Result<(), StoreError> {
        let manifest = Manifest {
            format: STORE_FORMAT,
            changes,
        };
        let io = |source: std::io::Error| self.err(sled::Error::Io(source));
        let tmp = self.path.join("hedgerow-manifest.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(
            &mut file,
            &serde_json::to_vec(&manifest).unwrap_or_default(),
        )
        .map_err(io)?;
        file.sync_all().map_err(io)?;
        crate::durable::rename(&tmp, &self.path.join(MANIFEST)).map_err(io)?;
        self.manifest_changes
            .store(changes, std::sync::atomic::Ordering::SeqCst);
        self.manifest_missing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Whether the store held signed changes but no manifest when it was opened and none has
    /// been written since, so whether sled lost data could not be checked.
    pub fn manifest_missing(&self) -> bool {
        self.manifest_missing
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Writes a lost manifest again with the changes held now (`hedgerow verify --rebuild`);
    /// returns whether one was missing.
    pub fn recreate_manifest(&self) -> Result<bool, StoreError> {
        if !self.manifest_missing() {
            return Ok(false);
        }
        self.save_manifest(self.change_count.load(std::sync::atomic::Ordering::SeqCst))?;
        Ok(true)
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Saves a commons genesis (idempotent).
    pub fn put_commons(&self, genesis: &Signed<CommonsGenesis>) -> Result<(), StoreError> {
        let key = genesis.body.id();
        if !self
            .commons
            .contains_key(key.as_bytes())
            .map_err(|e| self.err(e))?
        {
            self.lock_journal()
                .append(&[crate::journal::Entry::Commons(genesis.clone())])
                .map_err(|e| self.journal_err(e))?;
        }
        self.commons
            .insert(genesis.body.id().as_bytes(), encode(genesis))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A commons genesis, if held.
    pub fn commons(&self, id: &CommonsId) -> Result<Option<Signed<CommonsGenesis>>, StoreError> {
        self.get_decoded(&self.commons, "commons", id.as_bytes())
    }

    /// All commons held.
    pub fn all_commons(&self) -> Result<Vec<Signed<CommonsGenesis>>, StoreError> {
        self.scan_decoded(&self.commons, "commons", &[])
    }

    /// A document genesis, if held.
    pub fn doc_genesis(&self, id: &DocId) -> Result<Option<Signed<DocGenesis>>, StoreError> {
        self.get_decoded(&self.docs, "docs", id.as_bytes())
    }

    /// Ids of the documents in a commons.
    pub fn doc_ids(&self, commons: &CommonsId) -> Result<Vec<DocId>, StoreError> {
        let mut out = Vec::new();
        for item in self.commons_docs.scan_prefix(commons.as_bytes()) {
            let (key, _) = item.map_err(|e| self.err(e))?;
            if let Some(id) = DocId::from_slice(&key[CommonsId::LEN..]) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Ids of every document held, in every commons.
    pub fn all_doc_ids(&self) -> Result<Vec<DocId>, StoreError> {
        let mut out = Vec::new();
        for item in self.docs.iter() {
            let (key, _) = item.map_err(|e| self.err(e))?;
            if let Some(id) = DocId::from_slice(&key) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Every document of a commons that has a summary, with the digest of its heads, in id
    /// order. Read from the summaries once, then kept current in memory by every write.
    pub fn inventory(&self, commons: &CommonsId) -> Result<Vec<(DocId, HeadsDigest)>, StoreError> {
        if let Some(cached) = self.cached_inventories().get(commons) {
            return Ok(cached.iter().map(|(id, d)| (*id, *d)).collect());
        }
        let mut read = BTreeMap::new();
        for id in self.doc_ids(commons)? {
            match self.summary(&id)? {
                // A genesis without changes (older releases stored them) is not served.
                Some(summary) if summary.changes > 0 => {
                    read.insert(id, heads_digest(&summary.heads));
                }
                _ => {}
            }
        }
        let out = read.iter().map(|(id, d)| (*id, *d)).collect();
        self.cached_inventories().insert(*commons, read);
        Ok(out)
    }

    /// The inventory cache; a panic elsewhere while it was held leaves nothing half-written
    /// in it (each update is one insert), so a poisoned lock is still safe to use.
    fn cached_inventories(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<CommonsId, BTreeMap<DocId, HeadsDigest>>> {
        self.inventories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a document's new summary in the inventory cache of its commons, if cached.
    fn note_summary(&self, id: &DocId, summary: &DocSummary) {
        if summary.changes == 0 {
            return;
        }
        if let Some(inventory) = self.cached_inventories().get_mut(&summary.commons) {
            inventory.insert(*id, heads_digest(&summary.heads));
        }
    }

    /// The cached summary of a document.
    pub fn summary(&self, id: &DocId) -> Result<Option<DocSummary>, StoreError> {
        self.get_decoded(&self.summaries, "summaries", id.as_bytes())
    }

    /// The cached snapshot of a document.
    pub fn snapshot(&self, id: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .snapshots
            .get(id.as_bytes())
            .map_err(|e| self.err(e))?
            .map(|v| v.to_vec()))
    }

    /// Every stored change record of a document, with its hash.
    pub fn records(&self, id: &DocId) -> Result<Vec<([u8; 32], ChangeRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.records.scan_prefix(id.as_bytes()) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let hash = hash_suffix(&key);
            let record = decode(&value, "change record").map_err(|source| StoreError::Corrupt {
                tree: "records",
                key: hex::encode(&key),
                source,
            })?;
            out.push((hash, record));
        }
        Ok(out)
    }

    /// Every stored change of a document: hash, raw bytes and record.
    pub fn changes(&self, id: &DocId) -> Result<Vec<StoredChange>, StoreError> {
        let mut out = Vec::new();
        for item in self.changes.scan_prefix(id.as_bytes()) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let record = self.get_decoded(&self.records, "records", &key)?;
            out.push((hash_suffix(&key), value.to_vec(), record));
        }
        Ok(out)
    }

    /// Writes a document's new changes, snapshot and summary in one atomic transaction.
    pub fn write_doc(&self, write: DocWrite<'_>) -> Result<(), StoreError> {
        let id = write.genesis.body.id();
        let genesis = encode(write.genesis);
        let summary = encode(&write.summary);
        let index_key = key2(write.genesis.body.commons.as_bytes(), id.as_bytes());
        let records: Vec<(Vec<u8>, Vec<u8>)> = write
            .accepted
            .iter()
            .map(|a| (key2(id.as_bytes(), &a.hash.0), encode(&a.record)))
            .collect();
        let excluded: Vec<(Vec<u8>, Vec<u8>)> = write
            .excluded
            .iter()
            .map(|e| {
                let value = ExcludedRecord {
                    bytes: e.bytes.clone(),
                    record: e.record.clone(),
                    reason: e.reason.clone(),
                };
                (key2(id.as_bytes(), &e.hash.0), encode(&value))
            })
            .collect();
        let result: Result<u64, TransactionError<()>> = (
            &self.docs,
            &self.commons_docs,
            &self.changes,
            &self.records,
            &self.snapshots,
            &self.summaries,
            &self.excluded,
        )
            .transaction(
                |(
                    docs,
                    commons_docs,
                    changes,
                    records_tree,
                    snapshots,
                    summaries,
                    excluded_tree,
                )| {
                    docs.insert(id.as_bytes(), genesis.as_slice())?;
                    commons_docs.insert(index_key.as_slice(), &[])?;
                    for (accepted, (key, record)) in write.accepted.iter().zip(&records) {
                        changes.insert(key.as_slice(), accepted.bytes.as_slice())?;
                        records_tree.insert(key.as_slice(), record.as_slice())?;
                    }
                    let mut moved = 0u64;
                    for (key, value) in &excluded {
                        changes.remove(key.as_slice())?;
                        if records_tree.remove(key.as_slice())?.is_some() {
                            moved += 1;
                        }
                        excluded_tree.insert(key.as_slice(), value.as_slice())?;
                    }
                    if let Some(snapshot) = &write.snapshot {
                        snapshots.insert(id.as_bytes(), snapshot.as_slice())?;
                    }
                    summaries.insert(id.as_bytes(), summary.as_slice())?;
                    Ok::<u64, ConflictableTransactionError<()>>(moved)
                },
            );
        match result {
            Ok(moved) => {
                // Changes that carry their own signature (every change this device signs does)
                // go to the journal too, with the genesis they need.
                let signed: Vec<crate::journal::Entry> = write
                    .accepted
                    .iter()
                    .filter(|a| a.record.proof.is_some())
                    .map(|a| crate::journal::Entry::Change {
                        doc: id,
                        hash: a.hash.0,
                        bytes: a.bytes.clone(),
                        record: a.record.clone(),
                    })
                    .collect();
                if !signed.is_empty() {
                    let mut journal = self.lock_journal();
                    journal
                        .append(&[crate::journal::Entry::Doc(write.genesis.clone())])
                        .and_then(|()| journal.append(&signed))
                        .map_err(|e| self.journal_err(e))?;
                }
                self.note_summary(&id, &write.summary);
                // Records moved to `excluded` still count (see `open`); only new ones add.
                let added = (write.accepted.len() + write.excluded.len()) as u64 - moved;
                self.change_count
                    .fetch_add(added, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Err(TransactionError::Storage(e)) => Err(self.err(e)),
            Err(TransactionError::Abort(())) => Ok(()),
        }
    }

    /// The changes of a document kept out by the equivocation rule, with their reasons.
    pub fn excluded(&self, id: &DocId) -> Result<Vec<Excluded>, StoreError> {
        let mut out = Vec::new();
        for item in self.excluded.scan_prefix(id.as_bytes()) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let stored: ExcludedRecord =
                decode(&value, "excluded change").map_err(|source| StoreError::Corrupt {
                    tree: "excluded",
                    key: hex::encode(&key),
                    source,
                })?;
            out.push(Excluded {
                hash: ChangeHash(hash_suffix(&key)),
                bytes: stored.bytes,
                record: stored.record,
                reason: stored.reason,
            });
        }
        Ok(out)
    }

    /// How many changes are kept out of their documents, in all.
    pub fn excluded_count(&self) -> usize {
        self.excluded.len()
    }

    /// Replaces a document's snapshot cache.
    pub fn write_snapshot(&self, id: &DocId, snapshot: &[u8]) -> Result<(), StoreError> {
        self.snapshots
            .insert(id.as_bytes(), snapshot)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes a commons genesis without journaling it (`hedgerow repair` restores from the journal).
    pub fn restore_commons(&self, genesis: &Signed<CommonsGenesis>) -> Result<(), StoreError> {
        self.commons
            .insert(genesis.body.id().as_bytes(), encode(genesis))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes a document's genesis and signed changes without caches or journal; `hedgerow
    /// repair` then rebuilds the caches with `verify --rebuild`.
    pub fn restore_doc(
        &self,
        genesis: &Signed<DocGenesis>,
        changes: &[([u8; 32], Vec<u8>, ChangeRecord)],
    ) -> Result<(), StoreError> {
        let id = genesis.body.id();
        self.docs
            .insert(id.as_bytes(), encode(genesis))
            .map_err(|e| self.err(e))?;
        self.commons_docs
            .insert(key2(genesis.body.commons.as_bytes(), id.as_bytes()), &[])
            .map_err(|e| self.err(e))?;
        for (hash, bytes, record) in changes {
            let key = key2(id.as_bytes(), hash);
            self.changes
                .insert(key.as_slice(), bytes.as_slice())
                .map_err(|e| self.err(e))?;
            self.records
                .insert(key.as_slice(), encode(record))
                .map_err(|e| self.err(e))?;
        }
        self.change_count.store(
            self.records.len() as u64 + self.excluded.len() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    /// Removes a document entirely (`hedgerow repair` drops what it could not rebuild whole).
    pub fn remove_doc(&self, id: &DocId, commons: &CommonsId) -> Result<(), StoreError> {
        let err = |e| self.err(e);
        self.docs.remove(id.as_bytes()).map_err(err)?;
        self.commons_docs
            .remove(key2(commons.as_bytes(), id.as_bytes()))
            .map_err(err)?;
        for tree in [&self.changes, &self.records] {
            for key in tree.scan_prefix(id.as_bytes()).keys() {
                tree.remove(key.map_err(err)?).map_err(err)?;
            }
        }
        self.snapshots.remove(id.as_bytes()).map_err(err)?;
        self.summaries.remove(id.as_bytes()).map_err(err)?;
        if let Some(inventory) = self.cached_inventories().get_mut(commons) {
            inventory.remove(id);
        }
        self.change_count.store(
            self.records.len() as u64 + self.excluded.len() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    /// Drops changes of a document that its commons' charter refuses now (re-admission after
    /// a charter change): their changes and records go, with the snapshot cache, which the
    /// next load rebuilds from what stays.
    pub fn drop_changes(&self, id: &DocId, hashes: &[[u8; 32]]) -> Result<(), StoreError> {
        let err = |e| self.err(e);
        for hash in hashes {
            let key = key2(id.as_bytes(), hash);
            self.changes.remove(key.as_slice()).map_err(err)?;
            self.records.remove(key.as_slice()).map_err(err)?;
        }
        self.snapshots.remove(id.as_bytes()).map_err(err)?;
        self.change_count.store(
            self.records.len() as u64 + self.excluded.len() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    /// Forgets a commons held without any document (an invitation that could not be redeemed).
    pub fn remove_commons(&self, id: &CommonsId) -> Result<(), StoreError> {
        let err = |e| self.err(e);
        self.commons.remove(id.as_bytes()).map_err(err)?;
        self.wanted.remove(id.as_bytes()).map_err(err)?;
        self.cached_inventories().remove(id);
        Ok(())
    }

    /// Replaces a document's caches (snapshot and summary), e.g. after a rebuild.
    pub fn write_caches(
        &self,
        id: &DocId,
        snapshot: &[u8],
        summary: &DocSummary,
    ) -> Result<(), StoreError> {
        self.snapshots
            .insert(id.as_bytes(), snapshot)
            .map_err(|e| self.err(e))?;
        self.summaries
            .insert(id.as_bytes(), encode(summary))
            .map_err(|e| self.err(e))?;
        self.note_summary(id, summary);
        Ok(())
    }

    /// Remembers a peer's addresses.
    pub fn put_peer(&self, peer: &str, known: &KnownPeer) -> Result<(), StoreError> {
        self.peers
            .insert(peer.as_bytes(), encode(known))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// All remembered peers.
    pub fn peers(&self) -> Result<Vec<(String, KnownPeer)>, StoreError> {
        let mut out = Vec::new();
        for item in self.peers.iter() {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let known = decode(&value, "known peer").map_err(|source| StoreError::Corrupt {
                tree: "peers",
                key: hex::encode(&key),
                source,
            })?;
            out.push((String::from_utf8_lossy(&key).into_owned(), known));
        }
        Ok(out)
    }

    /// Remembers that the user asked to join `commons` (fetched from the next peer that has it).
    pub fn want_commons(&self, commons: &CommonsId) -> Result<(), StoreError> {
        self.wanted
            .insert(commons.as_bytes(), &[])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a join request once the commons arrived.
    pub fn unwant_commons(&self, commons: &CommonsId) -> Result<(), StoreError> {
        self.wanted
            .remove(commons.as_bytes())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Whether the user asked to join `commons` and it has not arrived yet.
    pub fn is_wanted(&self, commons: &CommonsId) -> Result<bool, StoreError> {
        self.wanted
            .contains_key(commons.as_bytes())
            .map_err(|e| self.err(e))
    }

    /// Commons asked for and not yet received.
    pub fn wanted_commons(&self) -> Result<Vec<CommonsId>, StoreError> {
        let mut out = Vec::new();
        for item in self.wanted.iter() {
            let (key, _) = item.map_err(|e| self.err(e))?;
            if let Some(id) = CommonsId::from_slice(&key) {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn get_decoded<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        name: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(value) => decode(&value, name)
                .map(Some)
                .map_err(|source| StoreError::Corrupt {
                    tree: name,
                    key: hex::encode(key),
                    source,
                }),
        }
    }

    fn scan_decoded<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        name: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in tree.scan_prefix(prefix) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            out.push(decode(&value, name).map_err(|source| StoreError::Corrupt {
                tree: name,
                key: hex::encode(&key),
                source,
            })?);
        }
        Ok(out)
    }
}

/// Refuses a store whose manifest says a newer release wrote it, touching nothing.
///
/// Every release since the manifest exists writes its format into it; the `meta/format`
/// check after sled opens still catches a store without one.
fn refuse_newer_manifest(path: &Path) -> Result<(), StoreError> {
    /// Only the format: a newer manifest may hold fields this build does not know.
    #[derive(Deserialize)]
    struct Format {
        format: u8,
    }
    let Ok(bytes) = std::fs::read(path.join(MANIFEST)) else {
        return Ok(());
    };
    match serde_json::from_slice::<Format>(&bytes) {
        Ok(Format { format }) if format > STORE_FORMAT => Err(StoreError::NewerFormat {
            path: path.to_path_buf(),
            found: format,
        }),
        // A manifest that does not parse is reported by the full read in `open`.
        _ => Ok(()),
    }
}

/// Names sled's corruption in words (its own text carries a file offset and a backtrace).
fn sled_error(path: &Path, source: sled::Error) -> StoreError {
    match source {
        sled::Error::Corruption { .. } => StoreError::Unreadable {
            path: path.to_path_buf(),
        },
        source => StoreError::Sled {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn hash_suffix(key: &[u8]) -> [u8; 32] {
    let mut hash = [0u8; 32];
    if key.len() >= 32 {
        hash.copy_from_slice(&key[key.len() - 32..]);
    }
    hash
}
