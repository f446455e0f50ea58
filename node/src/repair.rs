//! `hedgerow repair`: moves a damaged store aside and builds a fresh one from the
//! journal (this device's own signed changes) and whatever the old store still yields.

use crate::home::Home;
use crate::journal::{self, Entry};
use crate::replicas::{NodeError, Replicas};
use crate::store::{Store, StoreError};
use hedgerow_protocol::replica::ChangeRecord;
use hedgerow_protocol::{CommonsGenesis, CommonsId, DocGenesis, DocId, Signed};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a repair did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// Where the damaged store was moved (kept, never deleted), if there was one.
    pub moved_to: Option<PathBuf>,
    /// Whether the damaged store could still be opened and read.
    pub salvaged_store: bool,
    /// Records read from the journal.
    pub journal_records: usize,
    /// Bytes at the journal's end that were torn or damaged and ignored.
    pub journal_ignored_bytes: usize,
    /// Commons in the rebuilt store.
    pub commons: usize,
    /// Documents in the rebuilt store.
    pub documents: usize,
    /// Signed changes in the rebuilt store.
    pub changes: usize,
    /// Documents that could not be rebuilt whole (changes by others are missing); they come
    /// back from peers that hold them (`hedgerow sync` or `serve`).
    pub from_peers: Vec<DocId>,
}

type Changes = BTreeMap<[u8; 32], (Vec<u8>, ChangeRecord)>;

#[derive(Default)]
struct Found {
    commons: BTreeMap<CommonsId, Signed<CommonsGenesis>>,
    docs: BTreeMap<DocId, Signed<DocGenesis>>,
    changes: BTreeMap<DocId, Changes>,
}

/// Reads what the damaged store still yields; every part that fails to read is skipped.
fn salvage(store: &Store, found: &mut Found) {
    for genesis in store.all_commons().unwrap_or_default() {
        found.commons.insert(genesis.body.id(), genesis);
    }
    for id in store.all_doc_ids().unwrap_or_default() {
        let Ok(Some(genesis)) = store.doc_genesis(&id) else {
            continue;
        };
        found.docs.insert(id, genesis);
        for (hash, bytes, record) in store.changes(&id).unwrap_or_default() {
            if let Some(record) = record {
                found
                    .changes
                    .entry(id)
                    .or_default()
                    .insert(hash, (bytes, record));
            }
        }
    }
}

/// Moves the store of `home` aside and rebuilds it; see [`RepairReport`].
pub fn repair(home: &Home) -> Result<RepairReport, NodeError> {
    let path = home.store_path();
    let mut report = RepairReport::default();
    let mut found = Found::default();
    if path.exists() {
        match Store::open_for_salvage(&path) {
            Ok(store) => {
                salvage(&store, &mut found);
                report.salvaged_store = true;
            }
            // A store in use, or one a newer release wrote, is not this repair's to move.
            Err(e @ (StoreError::Locked { .. } | StoreError::NewerFormat { .. })) => {
                return Err(e.into())
            }
            Err(_) => {}
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let aside = path.with_file_name(format!("store.damaged-{stamp}"));
        crate::durable::rename(&path, &aside).map_err(|source| StoreError::Journal {
            path: aside.clone(),
            source,
        })?;
        report.moved_to = Some(aside);
    }
    let journal_path = journal::journal_path(&path);
    let read = journal::read(&journal_path).map_err(|source| StoreError::Journal {
        path: journal_path.clone(),
        source,
    })?;
    report.journal_records = read.entries.len();
    report.journal_ignored_bytes = read.ignored_bytes;
    for entry in read.entries {
        match entry {
            Entry::Commons(genesis) => {
                found.commons.insert(genesis.body.id(), genesis);
            }
            Entry::Doc(genesis) => {
                found.docs.insert(genesis.body.id(), genesis);
            }
            Entry::Change {
                doc,
                hash,
                bytes,
                record,
            } => {
                found
                    .changes
                    .entry(doc)
                    .or_default()
                    .insert(hash, (bytes, record));
            }
        }
    }

    {
        let store = Store::open(&path)?;
        for genesis in found.commons.values() {
            store.restore_commons(genesis)?;
        }
        for (id, genesis) in &found.docs {
            if !found.commons.contains_key(&genesis.body.commons) {
                report.from_peers.push(*id);
                continue;
            }
            let changes: Vec<([u8; 32], Vec<u8>, ChangeRecord)> = found
                .changes
                .remove(id)
                .unwrap_or_default()
                .into_iter()
                .map(|(hash, (bytes, record))| (hash, bytes, record))
                .collect();
            store.restore_doc(genesis, &changes)?;
        }
        store.flush()?;
    }

    // Rebuild every cache, then drop what does not rebuild whole: peers hold the rest.
    let mut replicas = Replicas::open(home)?;
    for id in replicas.store().all_doc_ids()? {
        let Some(genesis) = replicas.store().doc_genesis(&id)? else {
            continue;
        };
        let commons = genesis.body.commons;
        let stored = replicas.store().changes(&id)?.len();
        let whole = replicas
            .rebuild(&id, genesis)
            .is_ok_and(|replica| replica.change_count() == stored && stored > 0);
        if !whole {
            replicas.store().remove_doc(&id, &commons)?;
            report.from_peers.push(id);
        }
    }
    replicas.verify(true)?;
    report.commons = replicas.store().all_commons()?.len();
    report.documents = replicas.store().all_doc_ids()?.len();
    report.changes = replicas
        .store()
        .all_doc_ids()?
        .iter()
        .map(|id| replicas.store().changes(id).map(|c| c.len()))
        .sum::<Result<usize, _>>()?;
    report.from_peers.sort();
    report.from_peers.dedup();
    Ok(report)
}
