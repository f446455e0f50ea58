//! This node's own moderation, whatever any commons says: authors it blocks, documents it
//! hides, documents it purges; and an author's retraction of their own document (a `Retract`
//! operation in the commons' charter, honoured like a hide by every node).
//!
//! - A blocked author's *new* changes (not already stored) are refused on every ingest path
//!   (live gossip, sync pull, bundle import) as `author-blocked-locally`, with every new change
//!   built on them; they are never stored, so never shown, relayed or served. What the store
//!   already held of that author stays: it is history others' changes build on, so it is kept
//!   and served as part of its documents (hide a document to stop serving it).
//! - A hidden (or retracted) document is not listed, not shown and not served: sync answers,
//!   live relaying and bundle export leave it out. Its changes stay in the store as evidence
//!   (`verify` checks them as any other).
//! - A purged document is removed from the store (and from the journal, except this device's
//!   own changes) and remembered, so it is never taken in again (`purged`).
//! - A block holds back content documents only; charter operations are judged by the charter
//!   gate, alike on every node.
//!
//! The lists live in their own sled trees ([`crate::store::local_lists`]) and are read once
//! into [`LocalLists`], which every ingest consults.

use crate::replicas::{now_unix, NodeError, Replicas, MIN_ID_PREFIX};
use crate::reply::Reply;
use crate::store::local_lists::{LocalBlock, LocalHide, PurgedDoc};
use hedgerow_protocol::charter::CharterAction;
use hedgerow_protocol::replica::Rejection;
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::{AuthorKey, CommonsId, DocId, DocReplica};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Why a local-list command or an ingest was refused.
#[derive(Debug, thiserror::Error)]
pub enum LocalListError {
    /// The user tried to block their own key.
    #[error("{0} is this device's own key; a node cannot block itself (your own changes are always yours)")]
    SelfBlock(AuthorKey),
    /// No known author matches a prefix.
    #[error("no author known to this node matches `{0}`")]
    UnknownAuthor(String),
    /// Several known authors match a prefix.
    #[error("`{prefix}` matches {count} authors")]
    AmbiguousAuthor {
        /// The prefix given.
        prefix: String,
        /// How many matched.
        count: usize,
    },
    /// `unblock` of an author not blocked.
    #[error("{0} is not blocked on this node")]
    NotBlocked(AuthorKey),
    /// `unhide` of a document not hidden.
    #[error("{0} is not hidden on this node")]
    NotHidden(DocId),
    /// `purge` of a document not hidden first.
    #[error("{0} is not hidden; purge removes only hidden documents")]
    PurgeNotHidden(DocId),
    /// A document hidden on this node was asked for.
    #[error("{id} is hidden on this node ({reason})")]
    Hidden {
        /// The document.
        id: DocId,
        /// Why, as the user said.
        reason: String,
    },
    /// A document its author retracted was asked for.
    #[error("{0} was retracted by its author")]
    Retracted(DocId),
    /// Something of a purged document arrived.
    #[error("document {0} was purged on this node and is never taken in again")]
    Purged(DocId),
    /// `retract` of a document another key created.
    #[error("{doc} was created by {creator}, not by this device; only its creator may retract it")]
    NotCreator {
        /// The document.
        doc: DocId,
        /// Who created it.
        creator: AuthorKey,
    },
}

impl LocalListError {
    /// The kind the CLI adds an instruction for, if any.
    pub fn kind(&self) -> Option<crate::error_kind::ErrorKind> {
        use crate::error_kind::ErrorKind;
        Some(match self {
            Self::UnknownAuthor(_) | Self::AmbiguousAuthor { .. } => ErrorKind::NoSuchAuthor,
            Self::NotBlocked(_) | Self::NotHidden(_) => ErrorKind::NotOnLocalList,
            Self::PurgeNotHidden(id) => ErrorKind::PurgeNotHidden { id: id.to_string() },
            Self::Hidden { id, .. } => ErrorKind::HiddenLocally { id: id.to_string() },
            Self::NotCreator { doc, .. } => ErrorKind::NotCreator {
                id: doc.to_string(),
            },
            Self::SelfBlock(_) | Self::Retracted(_) | Self::Purged(_) => return None,
        })
    }
}

/// This node's lists in memory, as every ingest reads them.
#[derive(Debug, Default, Clone)]
pub struct LocalLists {
    /// Authors whose new changes are refused.
    pub blocked: Arc<HashSet<AuthorKey>>,
    /// Hidden documents, with why.
    pub hidden: HashMap<DocId, LocalHide>,
    /// Purged documents.
    pub purged: HashSet<DocId>,
    /// Ingests that stored some changes and refused others for their author, since the
    /// owner last took them (see [`Replicas::take_partly_refused`]).
    partly_refused: Vec<(DocId, Rejection)>,
}

/// Why a document is left out of lists, `show` and everything served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// Hidden on this node.
    Hidden(LocalHide),
    /// Retracted by its author.
    Retracted,
}

impl Replicas {
    /// Reads the lists from the store (on open, and after each change to them).
    pub(crate) fn load_local_lists(&mut self) -> Result<(), NodeError> {
        let store = self.store();
        let blocked = store.local_blocks()?.into_iter().map(|(a, _)| a).collect();
        let hidden = store.local_hidden()?.into_iter().collect();
        let purged = store.purged()?.into_iter().map(|(d, _)| d).collect();
        let partly_refused = std::mem::take(&mut self.lists.partly_refused);
        self.lists = LocalLists {
            blocked: Arc::new(blocked),
            hidden,
            purged,
            partly_refused,
        };
        Ok(())
    }

    /// Documents of `commons` whose creators retracted them: a `Retract` operation of the
    /// commons' charter by the creator's person (as the charter was last evaluated). Everything
    /// that leaves out hidden documents asks this too.
    pub fn retracted(&self, commons: &CommonsId) -> BTreeSet<DocId> {
        match self.charters.get(commons) {
            Some(Some(policy)) if !policy.state.retracted().is_empty() => {
                policy.state.retracted_docs(|doc| {
                    self.store()
                        .doc_genesis(&doc)
                        .ok()
                        .flatten()
                        .map(|g| g.body.creator)
                })
            }
            _ => BTreeSet::new(),
        }
    }

    /// Documents of `commons` left out of lists and of everything served (hidden or retracted).
    pub fn withheld_in(&self, commons: &CommonsId) -> HashSet<DocId> {
        let mut out: HashSet<DocId> = self.lists.hidden.keys().copied().collect();
        out.extend(self.retracted(commons));
        out
    }

    /// Whether, and why, `doc` is left out of lists, `show` and everything served.
    pub fn withheld(&self, doc: &DocId) -> Result<Option<Withheld>, NodeError> {
        if let Some(hide) = self.lists.hidden.get(doc) {
            return Ok(Some(Withheld::Hidden(hide.clone())));
        }
        if let Some(genesis) = self.store().doc_genesis(doc)? {
            if self.retracted(&genesis.body.commons).contains(doc) {
                return Ok(Some(Withheld::Retracted));
            }
        }
        Ok(None)
    }

    /// Fails with a one-line reason when `doc` is hidden or retracted (for `show`).
    pub fn refuse_withheld(&self, doc: &DocId) -> Result<(), NodeError> {
        match self.withheld(doc)? {
            None => Ok(()),
            Some(Withheld::Hidden(hide)) => Err(LocalListError::Hidden {
                id: *doc,
                reason: if hide.reason.is_empty() {
                    "no reason given".into()
                } else {
                    hide.reason
                },
            }
            .into()),
            Some(Withheld::Retracted) => Err(LocalListError::Retracted(*doc).into()),
        }
    }

    /// Refuses anything of a purged document.
    pub(crate) fn refuse_purged(&self, doc: &DocId) -> Result<(), NodeError> {
        if self.lists.purged.contains(doc) {
            return Err(LocalListError::Purged(*doc).into());
        }
        Ok(())
    }

    /// Makes `replica` refuse the blocked authors' new changes in the ingest that follows.
    pub(crate) fn apply_blocks(&self, replica: &mut DocReplica) {
        refuse_blocked(replica, self.blocked_in(&replica.commons()));
    }

    /// The keys whose new changes are refused in `commons`: the blocked keys, and every device
    /// the commons' charter certifies to a blocked person (as it was last evaluated).
    pub(crate) fn blocked_in(&self, commons: &CommonsId) -> Arc<HashSet<AuthorKey>> {
        let blocked = &self.lists.blocked;
        let Some(Some(policy)) = self.charters.get(commons) else {
            return Arc::clone(blocked);
        };
        let devices: Vec<AuthorKey> = blocked
            .iter()
            .flat_map(|person| policy.state.devices_of(*person))
            .filter(|device| !blocked.contains(device))
            .collect();
        if devices.is_empty() {
            return Arc::clone(blocked);
        }
        let mut all = HashSet::clone(blocked);
        all.extend(devices);
        Arc::new(all)
    }

    /// Notes an ingest of `doc` that stored some changes and refused others for their author.
    pub(crate) fn note_partly_refused(&mut self, doc: DocId, refused: Option<Rejection>) {
        if let Some(rejection) = refused {
            self.lists.partly_refused.push((doc, rejection));
        }
    }

    /// Takes the ingests since the last call that stored some changes of a document and
    /// refused others for their author (`author-blocked-locally`), for counting.
    pub fn take_partly_refused(&mut self) -> Vec<(DocId, Rejection)> {
        std::mem::take(&mut self.lists.partly_refused)
    }

    /// Resolves an author key, or a unique prefix of one known to the store.
    pub fn resolve_author(&self, given: &str) -> Result<AuthorKey, NodeError> {
        let text = given.trim();
        if let Ok(key) = text.parse::<AuthorKey>() {
            return Ok(key);
        }
        if text.len() < MIN_ID_PREFIX {
            return Err(NodeError::PrefixTooShort(text.to_string()));
        }
        let matches: Vec<AuthorKey> = self
            .store()
            .known_authors()?
            .into_iter()
            .filter(|a| a.to_string().starts_with(text))
            .collect();
        match matches.len() {
            0 => Err(LocalListError::UnknownAuthor(text.to_string()).into()),
            1 => Ok(matches[0]),
            count => Err(LocalListError::AmbiguousAuthor {
                prefix: text.to_string(),
                count,
            }
            .into()),
        }
    }

    /// Resolves a document id or unique prefix among those held; a whole id of a document not
    /// held yet is taken as is (so it can be hidden before it arrives).
    fn resolve_any_doc(&self, given: &str) -> Result<DocId, NodeError> {
        match self.resolve_doc(given, None) {
            Err(NodeError::UnknownDoc { .. }) => {
                given
                    .trim()
                    .parse::<DocId>()
                    .map_err(|_| NodeError::UnknownDoc {
                        what: "document",
                        id: given.trim().to_string(),
                    })
            }
            other => other,
        }
    }
}

/// Makes `replica` refuse `blocked`'s new changes, unless it is a charter: a charter carries
/// the commons' governance (roles, moderation, devices, retractions), which every node must
/// evaluate alike, so a local block holds back an author's content, never their charter
/// operations (the charter gate judges those).
pub(crate) fn refuse_blocked(replica: &mut DocReplica, blocked: Arc<HashSet<AuthorKey>>) {
    if replica.kind() == DocKind::Charter {
        replica.refuse_authors(Arc::default());
    } else {
        replica.refuse_authors(blocked);
    }
}

/// The answers of this node's list commands; serialises as the wrapped struct alone.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LocalReply {
    /// `block`.
    Blocked(BlockedAuthor),
    /// `unblock`.
    Unblocked(UnblockedAuthor),
    /// `hide`.
    Hidden(HiddenDoc),
    /// `unhide`.
    Unhidden(UnhiddenDoc),
    /// `blocks`.
    Lists(Lists),
    /// `purge`.
    Purged(PurgedReply),
    /// `design/event/note retract`.
    Retracted(RetractedDoc),
}

/// `retract`: the document withdrawn and the charter change that says so.
#[derive(Debug, Clone, Serialize)]
pub struct RetractedDoc {
    /// The document.
    pub id: DocId,
    /// The charter change's hash, hex.
    pub change: String,
}

/// One blocked author (`block`, and each entry of `blocks`).
#[derive(Debug, Clone, Serialize)]
pub struct BlockedAuthor {
    /// The author key.
    pub author: AuthorKey,
    /// When it was blocked, unix seconds (RFC 3339 in JSON).
    #[serde(with = "crate::times::unix")]
    pub at: i64,
    /// The user's note.
    pub note: String,
}

/// `unblock`: the author taken off the list.
#[derive(Debug, Clone, Serialize)]
pub struct UnblockedAuthor {
    /// The author key.
    pub author: AuthorKey,
}

/// One hidden document (`hide`, and each entry of `blocks`).
#[derive(Debug, Clone, Serialize)]
pub struct HiddenDoc {
    /// The document.
    pub id: DocId,
    /// When it was hidden, unix seconds (RFC 3339 in JSON).
    #[serde(with = "crate::times::unix")]
    pub at: i64,
    /// The user's reason.
    pub reason: String,
}

/// `unhide`: the document taken off the list.
#[derive(Debug, Clone, Serialize)]
pub struct UnhiddenDoc {
    /// The document.
    pub id: DocId,
}

/// `blocks`: both lists.
#[derive(Debug, Clone, Serialize)]
pub struct Lists {
    /// Blocked authors, in key order.
    pub blocked: Vec<BlockedAuthor>,
    /// Hidden documents, in id order.
    pub hidden: Vec<HiddenDoc>,
}

/// `purge`: what went.
#[derive(Debug, Clone, Serialize)]
pub struct PurgedReply {
    /// The document.
    pub id: DocId,
    /// Signed changes removed from the store (kept-out evidence included).
    pub changes: u64,
    /// Journal records removed (changes by other authors).
    pub journal_records: usize,
}

/// `hedgerow block PERSON [--note TEXT]`.
pub fn block(replicas: &mut Replicas, person: &str, note: &str) -> Result<Reply, NodeError> {
    let author = replicas.resolve_author(person)?;
    if author == replicas.author() {
        return Err(LocalListError::SelfBlock(author).into());
    }
    let entry = LocalBlock {
        at: now_unix(),
        note: note.trim().to_string(),
    };
    replicas.store().put_local_block(&author, &entry)?;
    replicas.load_local_lists()?;
    Ok(Reply::Local(LocalReply::Blocked(BlockedAuthor {
        author,
        at: entry.at,
        note: entry.note,
    })))
}

/// `hedgerow unblock PERSON`.
pub fn unblock(replicas: &mut Replicas, person: &str) -> Result<Reply, NodeError> {
    let author = replicas.resolve_author(person)?;
    if !replicas.store().remove_local_block(&author)? {
        return Err(LocalListError::NotBlocked(author).into());
    }
    replicas.load_local_lists()?;
    Ok(Reply::Local(LocalReply::Unblocked(UnblockedAuthor {
        author,
    })))
}

/// `hedgerow hide ID [--reason TEXT]`.
pub fn hide(replicas: &mut Replicas, id: &str, reason: &str) -> Result<Reply, NodeError> {
    let doc = replicas.resolve_any_doc(id)?;
    let entry = LocalHide {
        at: now_unix(),
        reason: reason.trim().to_string(),
    };
    replicas.store().put_local_hide(&doc, &entry)?;
    replicas.load_local_lists()?;
    Ok(Reply::Local(LocalReply::Hidden(HiddenDoc {
        id: doc,
        at: entry.at,
        reason: entry.reason,
    })))
}

/// `hedgerow unhide ID`.
pub fn unhide(replicas: &mut Replicas, id: &str) -> Result<Reply, NodeError> {
    let doc = replicas.resolve_any_doc(id)?;
    if !replicas.store().remove_local_hide(&doc)? {
        return Err(LocalListError::NotHidden(doc).into());
    }
    replicas.load_local_lists()?;
    Ok(Reply::Local(LocalReply::Unhidden(UnhiddenDoc { id: doc })))
}

/// `hedgerow blocks`: `{blocked: [{author, at, note}], hidden: [{id, at, reason}]}`.
pub fn blocks(replicas: &Replicas) -> Result<Reply, NodeError> {
    let blocked = replicas
        .store()
        .local_blocks()?
        .into_iter()
        .map(|(author, b)| BlockedAuthor {
            author,
            at: b.at,
            note: b.note,
        })
        .collect();
    let hidden = replicas
        .store()
        .local_hidden()?
        .into_iter()
        .map(|(id, h)| HiddenDoc {
            id,
            at: h.at,
            reason: h.reason,
        })
        .collect();
    Ok(Reply::Local(LocalReply::Lists(Lists { blocked, hidden })))
}

/// `hedgerow purge ID`: removes a hidden document from the store for good.
pub fn purge(replicas: &mut Replicas, id: &str) -> Result<Reply, NodeError> {
    let doc = replicas.resolve_doc(id, None)?;
    let genesis = replicas
        .store()
        .doc_genesis(&doc)?
        .ok_or_else(|| NodeError::UnknownDoc {
            what: "document",
            id: doc.to_string(),
        })?;
    // Only what nobody here may read any more: hidden on this node, hidden by a steward of its
    // commons, or retracted by its creator.
    let withheld =
        replicas.withheld(&doc)?.is_some() || replicas.is_hidden(&genesis.body.commons, &doc);
    if !withheld {
        return Err(LocalListError::PurgeNotHidden(doc).into());
    }
    replicas.forget(&doc);
    let purged = PurgedDoc {
        at: now_unix(),
        commons: genesis.body.commons,
    };
    let report = replicas
        .store()
        .purge_doc(&genesis, &replicas.author(), &purged)?;
    replicas.load_local_lists()?;
    Ok(Reply::Local(LocalReply::Purged(PurgedReply {
        id: doc,
        changes: report.changes,
        journal_records: report.journal_records,
    })))
}

/// `hedgerow design/event/note retract ID`: withdraws a document this device's person created,
/// as a `Retract` operation in its commons' charter; every node of the commons then leaves it
/// out of lists, `show` and everything it serves, as it does a hidden document.
pub fn retract(replicas: &mut Replicas, id: &str, kind: DocKind) -> Result<Reply, NodeError> {
    let doc = replicas.resolve_doc(id, Some(kind))?;
    let genesis = replicas
        .store()
        .doc_genesis(&doc)?
        .ok_or_else(|| NodeError::UnknownDoc {
            what: kind.as_str(),
            id: doc.to_string(),
        })?;
    let commons = genesis.body.commons;
    let creator = genesis.body.creator;
    let me = replicas.author();
    // Another device of the creator's person may retract too (its charter says whose it is).
    let mine = creator == me
        || matches!(
            replicas.charter_state(&commons)?,
            Some(policy) if policy.state.person_of(creator) == policy.state.person_of(me)
        );
    if !mine {
        return Err(LocalListError::NotCreator { doc, creator }.into());
    }
    let change = replicas.write_charter_op(&commons, CharterAction::Retract { doc })?;
    Ok(Reply::Local(LocalReply::Retracted(RetractedDoc {
        id: doc,
        change: change.to_string(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::{Home, LocalProfile};
    use hedgerow_protocol::charter::DeviceCertificate;
    use hedgerow_protocol::schema::NewDocument;

    fn replicas(dir: &std::path::Path, name: &str) -> Replicas {
        let profile = LocalProfile {
            name: name.into(),
            ..LocalProfile::default()
        };
        let home = Home::init(&dir.join(name), &profile).expect("home");
        Replicas::open(&home).expect("store")
    }

    /// Blocking a person blocks every device the commons' charter certifies to them.
    #[test]
    fn blocking_a_person_blocks_the_devices_their_charter_certifies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ada = replicas(dir.path(), "ada");
        let commons = ada.create_commons("Farm Hack", "").expect("commons");
        let genesis = ada.store().commons(&commons).expect("read").expect("held");
        let mut phone = replicas(dir.path(), "phone");
        phone.join_commons(&genesis).expect("join");
        let mut ben = replicas(dir.path(), "ben");
        ben.join_commons(&genesis).expect("join");
        let certificate = DeviceCertificate {
            person: ada.author(),
            device: phone.author(),
            name: "phone".into(),
            issued_at: 1_800_000_000,
        }
        .sign(ada.key());
        ada.write_charter_op(&commons, CharterAction::Device { certificate })
            .expect("certified");
        for live in ada.take_outbox() {
            ben.ingest_live(&live).expect("ada's profile and charter");
        }
        let design = NewDocument::new(DocKind::Design, "From the phone");
        let before = phone.create_doc(commons, &design, &[]).expect("doc");
        let after = phone.create_doc(commons, &design, &[]).expect("doc");
        let outbox = phone.take_outbox();
        let from_phone = |id: DocId| {
            outbox
                .iter()
                .find(|live| live.envelope.doc == id)
                .expect("published")
                .clone()
        };
        ben.ingest_live(&from_phone(before))
            .expect("not blocked yet");
        block(&mut ben, &ada.author().to_string(), "").expect("block");
        let refused = ben.ingest_live(&from_phone(after));
        assert!(
            matches!(refused, Err(NodeError::Rejected(Rejection::AuthorRefused { author, .. })) if author == phone.author()),
            "{refused:?}"
        );
        assert!(ben.store().doc_genesis(&after).expect("read").is_none());
        assert!(ben.store().doc_genesis(&before).expect("read").is_some());
    }
}
