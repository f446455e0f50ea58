//! What a node remembers of each document for listings: the fields a search reads, a note's
//! target and parent, a design's declared parent, keyed by the document's heads.
//!
//! A filtered listing used to load every document of the commons, and the replica cache holds
//! only [`crate::replicas::MAX_CACHED_REPLICAS`], so each search at a few hundred designs
//! reloaded them all from disk. An entry is read once per version of its document: a listing
//! compares the stored summary's heads with the entry's and reads the document again only
//! when they differ.

use std::collections::HashMap;

use automerge::ReadDoc;
use hedgerow_protocol::schema::{facts, search::SearchFields, DocKind};
use hedgerow_protocol::DocId;

/// Most bytes of text kept over all entries; past it the index starts again empty.
pub const MAX_INDEX_TEXT_BYTES: usize = 64 * 1024 * 1024;

/// One document's listing facts at one version.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    /// The heads these facts were read at.
    heads: Vec<[u8; 32]>,
    /// What a search looks at.
    pub fields: SearchFields,
    /// A note's target (the design or event it is about).
    pub target: Option<DocId>,
    /// A note's parent note, when it answers one.
    pub reply_to: Option<DocId>,
    /// The design a design says it derives from (its `derivative_of`), for lineage.
    pub derivative_of: Option<DocId>,
}

/// Listing facts per document, read once per version.
#[derive(Debug, Default)]
pub struct SearchIndex {
    entries: HashMap<DocId, IndexEntry>,
    text_bytes: usize,
    /// Documents read since start (what the index saves is the rest of each listing).
    reads: u64,
}

impl SearchIndex {
    /// The entry for `id` if it was read at exactly `heads`.
    pub fn fresh(&self, id: &DocId, heads: &[[u8; 32]]) -> Option<&IndexEntry> {
        self.entries.get(id).filter(|entry| entry.heads == heads)
    }

    /// Reads and keeps the facts of `doc` (of `kind`, at `heads`), returning them.
    pub fn read<R: ReadDoc>(
        &mut self,
        id: DocId,
        heads: Vec<[u8; 32]>,
        doc: &R,
        kind: DocKind,
    ) -> &IndexEntry {
        let entry = IndexEntry {
            heads,
            fields: SearchFields::read(doc, kind),
            target: facts::note_target(doc),
            reply_to: facts::note_reply_to(doc),
            derivative_of: facts::derivative_of(doc),
        };
        self.reads += 1;
        let bytes = entry.fields.text_bytes();
        if let Some(old) = self.entries.remove(&id) {
            self.text_bytes -= old.fields.text_bytes();
        }
        if self.text_bytes + bytes > MAX_INDEX_TEXT_BYTES {
            // Rare (tens of thousands of long documents): start again rather than track ages.
            self.entries.clear();
            self.text_bytes = 0;
        }
        self.text_bytes += bytes;
        self.entries.entry(id).or_insert(entry)
    }

    /// Documents read from their replica since start.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Documents held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
