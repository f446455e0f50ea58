//! The running node's change feed: one [`DocChange`] each time a document takes signed
//! changes, whether a local request made them or a peer sent them.
//!
//! The web page's live updates listen to it (`serve --web`); the replicas record what changed
//! only once a node asks them to ([`crate::Replicas::watch_changes`]), and the actor sends the
//! record after each step, so a command that opens the store alone pays nothing.

use hedgerow_protocol::replica::DocReplica;
use hedgerow_protocol::schema::{facts, DocKind};
use hedgerow_protocol::{CommonsId, DocId};

/// How many changes a slow listener may fall behind before it is told it missed some.
pub const CHANGE_FEED_CAPACITY: usize = 256;

/// A document that just took signed changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocChange {
    /// The document.
    pub doc: DocId,
    /// Its commons.
    pub commons: CommonsId,
    /// Its kind.
    pub kind: DocKind,
    /// For a note: the design or event it is on (a page open there shows it).
    pub target: Option<DocId>,
}

impl DocChange {
    /// The change record of a document as it stands in its replica.
    pub(crate) fn of(doc: DocId, replica: &DocReplica) -> Self {
        let genesis = &replica.genesis().body;
        let target = match genesis.kind {
            DocKind::Note => facts::note_target(replica.doc()),
            _ => None,
        };
        DocChange {
            doc,
            commons: genesis.commons,
            kind: genesis.kind,
            target,
        }
    }

    /// Whether a page showing `shown` should update for this change: the document itself, or a
    /// note on it.
    pub fn concerns(&self, shown: &DocId) -> bool {
        self.doc == *shown || self.target.as_ref() == Some(shown)
    }
}
