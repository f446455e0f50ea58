//! The journal: an append-only file beside the store that keeps this device's own
//! signed changes readable without sled, so `hedgerow repair` can bring them back
//! when the store is damaged.
//!
//! ```text
//! "HEDGEROW-JOURNAL" | format byte (1)
//! { length: u32 little-endian (1..=64 MiB) | record: versioned postcard of an [`Entry`]
//!   | check: first 8 bytes of BLAKE3(length | record) }*
//! ```
//!
//! Records are framed as in a bundle file. Appends are buffered by the store and
//! fsynced by [`crate::store::Store::flush`] before a write is reported saved; a
//! torn last record (a power cut mid-append) fails its check and is ignored, as is
//! anything after a damaged record.

use hedgerow_protocol::encoding::{decode, encode};
use hedgerow_protocol::replica::ChangeRecord;
use hedgerow_protocol::{CommonsGenesis, DocGenesis, DocId, Signed};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// First bytes of a journal file.
pub const JOURNAL_MAGIC: &[u8] = b"HEDGEROW-JOURNAL";
/// The journal format this build writes and reads.
pub const JOURNAL_FORMAT: u8 = 1;
/// Largest record; a larger length prefix means damage.
const MAX_RECORD: usize = 64 * 1024 * 1024;
const CHECK_LEN: usize = 8;

/// One journal record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Entry {
    /// A commons genesis.
    Commons(Signed<CommonsGenesis>),
    /// A document genesis.
    Doc(Signed<DocGenesis>),
    /// A signed change of a document: its hash, raw bytes and provenance.
    Change {
        /// The document.
        doc: DocId,
        /// The automerge change hash.
        hash: [u8; 32],
        /// The raw change.
        bytes: Vec<u8>,
        /// Author and signature.
        record: ChangeRecord,
    },
}

/// Where the journal of the store at `store` lives: beside it, so moving a damaged store aside keeps it.
pub fn journal_path(store: &Path) -> PathBuf {
    store.with_extension("journal")
}

fn check(framed: &[u8]) -> [u8; CHECK_LEN] {
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&blake3::hash(framed).as_bytes()[..CHECK_LEN]);
    out
}

/// Frames one entry: length, record, check.
pub fn frame(entry: &Entry) -> Vec<u8> {
    let record = encode(entry);
    let mut out = Vec::with_capacity(record.len() + 4 + CHECK_LEN);
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(&record);
    let sum = check(&out);
    out.extend_from_slice(&sum);
    out
}

/// An open journal, appended to by the store.
pub struct Journal {
    file: std::fs::File,
    /// Whether something was appended since the last fsync.
    dirty: bool,
}

impl Journal {
    /// Opens (creating with its header if needed) the journal at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        if file.metadata()?.len() == 0 {
            file.write_all(JOURNAL_MAGIC)?;
            file.write_all(&[JOURNAL_FORMAT])?;
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                crate::durable::sync_dir(dir)?;
            }
        }
        Ok(Self { file, dirty: false })
    }

    /// Appends entries (durable at the next [`Journal::sync`]).
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for entry in entries {
            bytes.extend_from_slice(&frame(entry));
        }
        if !bytes.is_empty() {
            self.file.write_all(&bytes)?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Fsyncs what was appended.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Replaces the journal at `path` with `entries` alone, atomically (temp file, fsync,
/// rename): what `hedgerow purge` leaves of it. An open [`Journal`] on the old file must be
/// opened again.
pub fn rewrite(path: &Path, entries: &[Entry]) -> io::Result<()> {
    let tmp = path.with_extension("journal.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    let mut bytes = Vec::from(JOURNAL_MAGIC);
    bytes.push(JOURNAL_FORMAT);
    for entry in entries {
        bytes.extend_from_slice(&frame(entry));
    }
    file.write_all(&bytes)?;
    file.sync_all()?;
    crate::durable::rename(&tmp, path)
}

/// What reading a journal gave: every intact record, and whether damage cut it short.
#[derive(Debug, Default)]
pub struct ReadJournal {
    /// Records before any damage, in order.
    pub entries: Vec<Entry>,
    /// Bytes after the last intact record (a torn append or damage), ignored.
    pub ignored_bytes: usize,
}

/// Reads a journal file; a missing file reads as empty.
pub fn read(path: &Path) -> io::Result<ReadJournal> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadJournal::default()),
        Err(e) => return Err(e),
    };
    let header = JOURNAL_MAGIC.len() + 1;
    if bytes.len() < header || &bytes[..JOURNAL_MAGIC.len()] != JOURNAL_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a Hedgerow journal", path.display()),
        ));
    }
    if bytes[JOURNAL_MAGIC.len()] > JOURNAL_FORMAT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "journal {} has format {}, newer than this build understands",
                path.display(),
                bytes[JOURNAL_MAGIC.len()]
            ),
        ));
    }
    let mut out = ReadJournal::default();
    let mut at = header;
    while at + 4 <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let end = at + 4 + len + CHECK_LEN;
        if len == 0 || len > MAX_RECORD || end > bytes.len() {
            break;
        }
        if check(&bytes[at..at + 4 + len]) != bytes[at + 4 + len..end] {
            break;
        }
        match decode::<Entry>(&bytes[at + 4..at + 4 + len], "journal record") {
            Ok(entry) => out.entries.push(entry),
            Err(_) => break,
        }
        at = end;
    }
    out.ignored_bytes = bytes.len() - at;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_ignored_and_the_rest_read() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.journal");
        let mut journal = Journal::open(&path).expect("open");
        let entry = |n: u8| Entry::Change {
            doc: DocId::from_slice(&[n; 32]).expect("id"),
            hash: [n; 32],
            bytes: vec![n; 40],
            record: ChangeRecord {
                author: hedgerow_protocol::DeviceKey::from_secret([7; 32]).author(),
                proof: None,
            },
        };
        journal.append(&[entry(1), entry(2)]).expect("append");
        journal.sync().expect("sync");
        drop(journal);
        let full = std::fs::read(&path).expect("read");
        // A torn third record.
        let mut torn = full.clone();
        torn.extend_from_slice(&frame(&entry(3))[..20]);
        std::fs::write(&path, &torn).expect("write");
        let read = read(&path).expect("read");
        assert_eq!(read.entries.len(), 2);
        assert_eq!(read.ignored_bytes, 20);
        // A flipped byte in the second record stops reading there.
        let mut flipped = full;
        let last = flipped.len() - 12;
        flipped[last] ^= 0x40;
        std::fs::write(&path, &flipped).expect("write");
        assert_eq!(super::read(&path).expect("read").entries.len(), 1);
    }
}
