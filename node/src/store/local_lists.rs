//! This node's own lists, kept apart from everything that syncs: the authors it blocks
//! (`local_blocks`), the documents it hides (`local_hidden`) and the documents it purged
//! (`purged`), and the purge itself.
//!
//! Trees (values are versioned encodings, version byte 1):
//! - `local_blocks`: author key -> [`LocalBlock`].
//! - `local_hidden`: doc id -> [`LocalHide`].
//! - `purged`: doc id -> [`PurgedDoc`].
//!
//! They were added in the third release; a store of the second release simply has none, and
//! the second release opens a store that has them (sled ignores trees it is not asked for).

use super::{key2, Store, StoreError};
use crate::journal::{self, Entry};
use hedgerow_protocol::encoding::{decode, encode};
use hedgerow_protocol::{AuthorKey, CommonsId, DocId, Signed};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

/// An author this node blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalBlock {
    /// When the block was made, unix seconds.
    pub at: i64,
    /// The user's own note.
    pub note: String,
}

/// A document this node hides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalHide {
    /// When it was hidden, unix seconds.
    pub at: i64,
    /// The user's reason.
    pub reason: String,
}

/// A document this node purged: never taken in again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgedDoc {
    /// When it was purged, unix seconds.
    pub at: i64,
    /// The commons it belonged to.
    pub commons: CommonsId,
}

/// What a purge removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Signed changes removed from the store (kept-out evidence included).
    pub changes: u64,
    /// Journal records removed (changes by other authors; this device's own stay).
    pub journal_records: usize,
}

impl Store {
    /// Blocks `author` (replacing an earlier note).
    pub fn put_local_block(
        &self,
        author: &AuthorKey,
        block: &LocalBlock,
    ) -> Result<(), StoreError> {
        self.local_blocks
            .insert(author.as_bytes(), encode(block))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Unblocks `author`; whether it was blocked.
    pub fn remove_local_block(&self, author: &AuthorKey) -> Result<bool, StoreError> {
        Ok(self
            .local_blocks
            .remove(author.as_bytes())
            .map_err(|e| self.err(e))?
            .is_some())
    }

    /// Every blocked author, in key order.
    pub fn local_blocks(&self) -> Result<Vec<(AuthorKey, LocalBlock)>, StoreError> {
        self.scan_keyed(&self.local_blocks, "local_blocks", AuthorKey::from_slice)
    }

    /// Hides `doc` (replacing an earlier reason).
    pub fn put_local_hide(&self, doc: &DocId, hide: &LocalHide) -> Result<(), StoreError> {
        self.local_hidden
            .insert(doc.as_bytes(), encode(hide))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Shows `doc` again; whether it was hidden.
    pub fn remove_local_hide(&self, doc: &DocId) -> Result<bool, StoreError> {
        Ok(self
            .local_hidden
            .remove(doc.as_bytes())
            .map_err(|e| self.err(e))?
            .is_some())
    }

    /// Every hidden document, in id order.
    pub fn local_hidden(&self) -> Result<Vec<(DocId, LocalHide)>, StoreError> {
        self.scan_keyed(&self.local_hidden, "local_hidden", DocId::from_slice)
    }

    /// Every purged document, in id order.
    pub fn purged(&self) -> Result<Vec<(DocId, PurgedDoc)>, StoreError> {
        self.scan_keyed(&self.purged, "purged", DocId::from_slice)
    }

    /// Every author key the store knows: document creators and change authors.
    pub fn known_authors(&self) -> Result<BTreeSet<AuthorKey>, StoreError> {
        let mut out = BTreeSet::new();
        for id in self.all_doc_ids()? {
            if let Some(genesis) = self.doc_genesis(&id)? {
                out.insert(genesis.body.creator);
            }
            for (_, record) in self.records(&id)? {
                out.insert(record.author);
            }
        }
        for genesis in self.all_commons()? {
            out.insert(genesis.body.creator);
        }
        Ok(out)
    }

    /// Removes a document's genesis, changes, kept-out evidence and caches, remembers it in
    /// `purged`, and drops from the journal its changes by authors other than `own` (and its
    /// genesis when none of `own` remains). Durable when it returns.
    ///
    /// The manifest's change count is lowered before anything is removed, so a power cut
    /// midway leaves a store that opens (more changes than the manifest says is fine; fewer
    /// would read as damage).
    pub fn purge_doc(
        &self,
        genesis: &Signed<hedgerow_protocol::DocGenesis>,
        own: &AuthorKey,
        purged: &PurgedDoc,
    ) -> Result<PurgeReport, StoreError> {
        let id = genesis.body.id();
        let err = |e| self.err(e);
        let mut keys = Vec::new();
        let mut evidence = Vec::new();
        for key in self.records.scan_prefix(id.as_bytes()).keys() {
            keys.push(key.map_err(err)?);
        }
        for key in self.excluded.scan_prefix(id.as_bytes()).keys() {
            evidence.push(key.map_err(err)?);
        }
        let mut change_keys = Vec::new();
        for key in self.changes.scan_prefix(id.as_bytes()).keys() {
            change_keys.push(key.map_err(err)?);
        }
        let removed = (keys.len() + evidence.len()) as u64;
        let after = self
            .change_count
            .load(Ordering::SeqCst)
            .saturating_sub(removed);
        if after < self.manifest_changes.load(Ordering::SeqCst) {
            self.db.flush().map_err(err)?;
            self.save_manifest(after)?;
        }
        let index_key = key2(genesis.body.commons.as_bytes(), id.as_bytes());
        let value = encode(purged);
        let result: Result<(), TransactionError<()>> = (
            &self.docs,
            &self.commons_docs,
            &self.changes,
            &self.records,
            &self.excluded,
            &self.snapshots,
            &self.summaries,
            &self.purged,
        )
            .transaction(
                |(docs, commons_docs, changes, records, excluded, snapshots, summaries, gone)| {
                    docs.remove(id.as_bytes())?;
                    commons_docs.remove(index_key.as_slice())?;
                    for key in &change_keys {
                        changes.remove(key)?;
                    }
                    for key in &keys {
                        records.remove(key)?;
                    }
                    for key in &evidence {
                        excluded.remove(key)?;
                    }
                    snapshots.remove(id.as_bytes())?;
                    summaries.remove(id.as_bytes())?;
                    gone.insert(id.as_bytes(), value.as_slice())?;
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        match result {
            Ok(()) | Err(TransactionError::Abort(())) => {}
            Err(TransactionError::Storage(e)) => return Err(self.err(e)),
        }
        if let Some(inventory) = self.cached_inventories().get_mut(&genesis.body.commons) {
            inventory.remove(&id);
        }
        self.change_count.store(
            self.records.len() as u64 + self.excluded.len() as u64,
            Ordering::SeqCst,
        );
        let journal_records = self.purge_journal(&id, own)?;
        self.flush()?;
        Ok(PurgeReport {
            changes: removed,
            journal_records,
        })
    }

    /// Rewrites the journal without `doc`'s changes by others (and its genesis when none of
    /// `own`'s remain); returns how many records went. Holds the journal lock throughout, so
    /// no append falls between the read and the rename.
    fn purge_journal(&self, doc: &DocId, own: &AuthorKey) -> Result<usize, StoreError> {
        let path = journal::journal_path(&self.path);
        let mut open = self.lock_journal();
        open.sync().map_err(|e| self.journal_err(e))?;
        let read = journal::read(&path).map_err(|e| self.journal_err(e))?;
        let keeps_own = read.entries.iter().any(|entry| {
            matches!(entry, Entry::Change { doc: d, record, .. } if d == doc && record.author == *own)
        });
        let before = read.entries.len();
        let kept: Vec<Entry> = read
            .entries
            .into_iter()
            .filter(|entry| match entry {
                Entry::Change { doc: d, record, .. } => d != doc || record.author == *own,
                Entry::Doc(genesis) => keeps_own || genesis.body.id() != *doc,
                Entry::Commons(_) => true,
            })
            .collect();
        let removed = before - kept.len();
        if removed == 0 {
            return Ok(0);
        }
        journal::rewrite(&path, &kept).map_err(|e| self.journal_err(e))?;
        *open = journal::Journal::open(&path).map_err(|e| self.journal_err(e))?;
        Ok(removed)
    }

    /// Every entry of a small keyed tree, decoded, in key order; keys of the wrong length
    /// (none are written) are skipped.
    fn scan_keyed<K, V: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        name: &'static str,
        key: impl Fn(&[u8]) -> Option<K>,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let mut out = Vec::new();
        for item in tree.iter() {
            let (raw, value) = item.map_err(|e| self.err(e))?;
            let Some(k) = key(&raw) else {
                continue;
            };
            let v = decode(&value, name).map_err(|source| StoreError::Corrupt {
                tree: name,
                key: hex::encode(&raw),
                source,
            })?;
            out.push((k, v));
        }
        Ok(out)
    }
}
