//! The compact form in which a document's changes travel, over the network and in bundle
//! files: a whole document as automerge's `save()`, or some of its changes deflated together.
//!
//! automerge's own bundle format would be a little smaller for the second case, but its parser
//! can be made to loop forever by hostile bytes (see [`crate::automerge_screen`]), so it never
//! crosses a trust boundary. Every decode screens the bytes before automerge parses them.

use crate::automerge_screen::{inflate_capped, screen, ScreenError, Shape, MAX_INFLATED_BYTES};
use automerge::{Automerge, Change};
use flate2::write::DeflateEncoder;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Changes of one document in their compact form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompactChanges {
    /// The whole document as automerge `save()`: the smallest form for a receiver lacking it all.
    Document(Vec<u8>),
    /// Some of its changes: their automerge change chunks back to back, deflated as one stream
    /// so what they share (actor ids, dependency hashes, field names) is stored once.
    Changes(Vec<u8>),
}

/// Why compact changes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The bytes failed screening, before automerge saw them.
    #[error(transparent)]
    Screen(#[from] ScreenError),
    /// automerge refused the screened bytes.
    #[error("automerge refused the changes: {0}")]
    Automerge(String),
}

impl CompactChanges {
    /// The whole of `doc`.
    pub fn of_document(doc: &Automerge) -> Self {
        Self::Document(doc.save())
    }

    /// The given changes, in the order given.
    pub fn of_changes<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Self {
        let mut encoder = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        for change in changes {
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(change.raw_bytes());
        }
        Self::Changes(encoder.finish().unwrap_or_default())
    }

    /// No changes at all (a payload that carries only a genesis record).
    pub fn none() -> Self {
        Self::Changes(Vec::new())
    }

    /// Bytes this form takes.
    pub fn len(&self) -> usize {
        match self {
            Self::Document(bytes) | Self::Changes(bytes) => bytes.len(),
        }
    }

    /// Whether it holds no bytes at all (see [`Self::none`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The changes it holds, after screening the bytes; a panic in automerge becomes an error.
    pub fn decode(&self) -> Result<Vec<Change>, CompactError> {
        self.decode_keeping_document().map(|(changes, _)| changes)
    }

    /// [`Self::decode`], also handing back, for a whole document, the document automerge
    /// loaded from it: a receiver that lacks the document entirely can take it as its state
    /// instead of applying every change again into an empty one (once the changes verify).
    pub fn decode_keeping_document(
        &self,
    ) -> Result<(Vec<Change>, Option<Automerge>), CompactError> {
        match self {
            Self::Document(bytes) => {
                screen(bytes, Shape::Document)?;
                guarded(|| {
                    Automerge::load(bytes)
                        .map(|doc| (doc.get_changes(&[]), Some(doc)))
                        .map_err(|e| CompactError::Automerge(e.to_string()))
                })
            }
            Self::Changes(deflated) => {
                let inflated = inflate_capped(deflated, MAX_INFLATED_BYTES)?;
                let chunks = screen(&inflated, Shape::Changes)?;
                guarded(|| {
                    chunks
                        .into_iter()
                        .map(|chunk| {
                            Change::from_bytes(inflated[chunk.range].to_vec())
                                .map_err(|e| CompactError::Automerge(e.to_string()))
                        })
                        .collect::<Result<Vec<Change>, CompactError>>()
                        .map(|changes| (changes, None))
                })
            }
        }
    }
}

/// Parses one change from outside: screened to be exactly one change chunk first.
pub fn decode_change(bytes: &[u8]) -> Result<Change, CompactError> {
    let chunks = screen(bytes, Shape::Changes)?;
    if chunks.len() != 1 {
        return Err(CompactError::Automerge(format!(
            "expected one change, found {} chunks",
            chunks.len()
        )));
    }
    guarded(|| {
        Change::from_bytes(bytes.to_vec()).map_err(|e| CompactError::Automerge(e.to_string()))
    })
}

/// Runs an automerge parse, turning a panic (automerge 0.12 panics on some malformed input)
/// into an error so a hostile peer cannot end the node that way.
fn guarded<T>(parse: impl FnOnce() -> Result<T, CompactError>) -> Result<T, CompactError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).unwrap_or_else(|_| {
        Err(CompactError::Automerge(
            "automerge's parser panicked on these bytes".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    fn edited_doc(edits: usize) -> AutoCommit {
        let mut doc = AutoCommit::new();
        let body = doc.put_object(ROOT, "steps", ObjType::Text).expect("text");
        for i in 0..edits {
            doc.splice_text(&body, 0, 0, &format!("step {i}: weld the frame square. "))
                .expect("splice");
            doc.commit();
        }
        doc
    }

    #[test]
    fn both_forms_round_trip() {
        let mut doc = edited_doc(12);
        let all: Vec<Change> = doc.get_changes(&[]);
        let whole = CompactChanges::of_document(doc.document());
        let hashes = |changes: &[Change]| changes.iter().map(Change::hash).collect::<Vec<_>>();
        assert_eq!(hashes(&whole.decode().expect("document")), hashes(&all));
        let tail = &all[4..];
        let some = CompactChanges::of_changes(tail);
        assert_eq!(hashes(&some.decode().expect("changes")), hashes(tail));
        let separate: usize = tail.iter().map(|c| c.raw_bytes().len()).sum();
        assert!(
            some.len() < separate,
            "deflated {} B, separate {separate} B",
            some.len()
        );
    }

    /// Found by fuzzing: automerge 0.12 loops forever on these bytes, in `Bundle::try_from`
    /// and in `Automerge::load` alike. A test that hangs here means the screen let them by.
    #[test]
    fn bytes_that_hang_automerge_are_refused_unparsed() {
        let hang = include_bytes!("../tests/vectors/bundle-that-hangs-automerge.bin");
        assert!(matches!(
            CompactChanges::Document(hang.to_vec()).decode(),
            Err(CompactError::Screen(ScreenError::ChunkType {
                chunk_type: 3,
                ..
            }))
        ));
        assert!(decode_change(hang).is_err());
    }

    #[test]
    fn a_document_that_panics_automerge_is_an_error() {
        let panics = include_bytes!("../tests/vectors/document-that-panics-automerge.bin");
        assert!(
            screen(panics, Shape::Document).is_ok(),
            "it is a document chunk"
        );
        assert!(matches!(
            CompactChanges::Document(panics.to_vec()).decode(),
            Err(CompactError::Automerge(_))
        ));
    }

    #[test]
    fn a_bundle_is_refused_in_either_form() {
        let mut doc = edited_doc(3);
        let heads = doc.get_heads();
        let bundle = doc
            .document()
            .bundle(heads)
            .expect("bundle")
            .bytes()
            .to_vec();
        assert!(CompactChanges::Document(bundle.clone()).decode().is_err());
        let mut encoder = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&bundle).expect("deflate");
        let deflated = encoder.finish().expect("deflate");
        assert!(matches!(
            CompactChanges::Changes(deflated).decode(),
            Err(CompactError::Screen(ScreenError::ChunkType {
                chunk_type: 3,
                ..
            }))
        ));
        assert!(decode_change(&bundle).is_err());
    }
}
