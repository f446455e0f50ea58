//! Changes signed outside the node: a browser holds its own ed25519 key, and the node builds
//! the automerge change for it without ever holding that key.
//!
//! The round trip is *prepare* then *commit*. Prepare builds the change on a copy of the
//! document with the actor bound to the external key ([`prepare_change`],
//! [`prepare_charter_change`]) and returns what to sign ([`ToSign`]): for each record, the exact
//! bytes whose domain-separated BLAKE3 hash is signed, and that hash. The signer recomputes the
//! hash from the bytes, checks that its own key is the author inside them, and signs. Commit
//! turns the signatures into the ordinary signed records (a [`ChangeEnvelope`] and, for a new
//! document, a signed [`DocGenesis`]), which the node then takes in like any change from a peer:
//! signature, actor binding, history rules and the commons' charter are checked there, once.
//!
//! Prepared changes wait in [`Pending`], bounded in number and age, one per (key, document):
//! a second prepare for the same document replaces the first, so one key can never have two
//! changes with the same sequence number in flight through one node.

use crate::encoding::{domain_hash, encode, DOMAIN_CHANGE, DOMAIN_DOC_GENESIS};
use crate::envelope::actor_for_install;
use crate::genesis::{CommonsId, DocGenesis, DocId};
use crate::identity::{AuthorKey, InstallTag};
use crate::schema::{self, DocKind, SchemaError};
use automerge::transaction::CommitOptions;
use automerge::{Automerge, ChangeHash, ReadDoc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The install tag every externally signed change carries: a browser's key lives in one
/// browser profile, and this tag tells its changes apart from a home's in `history`.
pub const EXTERNAL_INSTALL_TAG: InstallTag = InstallTag(*b"browser1");

/// How many prepared changes wait at once, over all keys.
pub const MAX_PENDING: usize = 256;

/// How long a prepared change may wait for its signature, in seconds.
pub const PENDING_TTL_SECS: u64 = 300;

/// Which record a signature is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedPart {
    /// A new document's genesis record.
    Genesis,
    /// The automerge change, in its envelope.
    Change,
}

/// One thing an external key must sign: the digest, and the bytes it is the hash of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToSign {
    /// Which record.
    pub part: SignedPart,
    /// The BLAKE3 key-derivation context the digest uses.
    pub domain: String,
    /// The bytes hashed (`encode` of the record's signed fields).
    pub preimage: Vec<u8>,
    /// `BLAKE3-derive-key(domain, preimage)`: the 32 bytes signed.
    pub digest: [u8; 32],
}

impl ToSign {
    /// What an author signs for `change` in `doc` (as [`crate::envelope::signing_digest`]).
    pub fn change(commons: &CommonsId, doc: &DocId, author: &AuthorKey, change: &[u8]) -> Self {
        let preimage = encode(&(commons, doc, author, change));
        Self {
            part: SignedPart::Change,
            domain: DOMAIN_CHANGE.to_string(),
            digest: domain_hash(DOMAIN_CHANGE, &preimage),
            preimage,
        }
    }

    /// What a creator signs for a document's genesis (as [`DocGenesis::sign`]).
    pub fn genesis(genesis: &DocGenesis) -> Self {
        let preimage = encode(genesis);
        Self {
            part: SignedPart::Genesis,
            domain: DOMAIN_DOC_GENESIS.to_string(),
            digest: domain_hash(DOMAIN_DOC_GENESIS, &preimage),
            preimage,
        }
    }
}

/// Why a change could not be prepared for an external key.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError<E: std::error::Error + 'static> {
    /// The edit itself was refused (unknown field, bad value...).
    #[error(transparent)]
    Edit(E),
    /// The document would break its kind's schema.
    #[error("the edit would leave the {kind} invalid: {error}")]
    Schema {
        /// The document's kind.
        kind: DocKind,
        /// What would break.
        error: SchemaError,
    },
    /// The change was made but could not be read back (an automerge bug).
    #[error("the prepared change vanished from its copy of the document")]
    Vanished,
}

/// A change built for an external key, not applied anywhere yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedBytes {
    /// The raw automerge change.
    pub change: Vec<u8>,
    /// Its hash.
    pub hash: ChangeHash,
    /// The document's heads it was built on.
    pub heads: Vec<ChangeHash>,
}

/// Builds one change on a copy of `doc` (never touching `doc`) as `author`, applying `edit`;
/// `None` when the edit changes nothing.
///
/// The copy holds the whole history, so the change depends on the current heads and takes the
/// author's next sequence number in this document.
pub fn prepare_change<E, F>(
    doc: &Automerge,
    id: &DocId,
    kind: DocKind,
    author: &AuthorKey,
    now_unix: i64,
    edit: F,
) -> Result<Option<PreparedBytes>, PrepareError<E>>
where
    E: std::error::Error + 'static,
    F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), E>,
{
    let heads = doc.get_heads();
    let mut copy = doc.fork();
    copy.set_actor(actor_for_install(author, id, &EXTERNAL_INSTALL_TAG));
    let outcome = copy
        .transact_with(|_| CommitOptions::default().with_time(now_unix), edit)
        .map_err(|failure| PrepareError::Edit(failure.error))?;
    let Some(hash) = outcome.hash else {
        return Ok(None);
    };
    schema::validate_document(&copy, kind).map_err(|error| PrepareError::Schema { kind, error })?;
    let change = copy
        .get_change_by_hash(&hash)
        .ok_or(PrepareError::Vanished)?;
    Ok(Some(PreparedBytes {
        change: change.raw_bytes().to_vec(),
        hash,
        heads,
    }))
}

/// Builds a charter operation's change (an empty change whose message is the operation) on a
/// copy of the charter document `doc`, as `author`.
pub fn prepare_charter_change(
    doc: &Automerge,
    id: &DocId,
    author: &AuthorKey,
    now_unix: i64,
    message: String,
) -> Result<PreparedBytes, PrepareError<std::convert::Infallible>> {
    let heads = doc.get_heads();
    let mut copy = doc.fork();
    copy.set_actor(actor_for_install(author, id, &EXTERNAL_INSTALL_TAG));
    let hash = copy.empty_commit(
        CommitOptions::default()
            .with_message(message)
            .with_time(now_unix),
    );
    let change = copy
        .get_change_by_hash(&hash)
        .ok_or(PrepareError::Vanished)?;
    Ok(PreparedBytes {
        change: change.raw_bytes().to_vec(),
        hash,
        heads,
    })
}

/// Why a prepared change could not be taken back for its commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PendingError {
    /// Too many prepared changes wait already (after dropping expired ones).
    #[error("{MAX_PENDING} changes already wait for their signatures; try again in a minute")]
    Full,
    /// No prepared change has that token (never made, committed, or replaced by a newer prepare).
    #[error("no prepared change matches; prepare it again")]
    Unknown,
    /// The token names a change prepared for another key.
    #[error("this change was prepared for another key")]
    WrongKey,
    /// The prepared change waited longer than [`PENDING_TTL_SECS`].
    #[error("the prepared change expired after {PENDING_TTL_SECS} seconds; prepare it again")]
    Expired,
}

/// Prepared changes waiting for their signatures: at most [`MAX_PENDING`], each at most
/// [`PENDING_TTL_SECS`] old, one per (key, document). Time is passed in (unix seconds).
#[derive(Debug)]
pub struct Pending<T> {
    by_token: HashMap<[u8; 16], Waiting<T>>,
    by_slot: HashMap<(AuthorKey, DocId), [u8; 16]>,
    max: usize,
    ttl: u64,
}

#[derive(Debug)]
struct Waiting<T> {
    slot: (AuthorKey, DocId),
    at: u64,
    value: T,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self::new(MAX_PENDING, PENDING_TTL_SECS)
    }
}

impl<T> Pending<T> {
    /// An empty set holding at most `max` changes, each for at most `ttl` seconds.
    pub fn new(max: usize, ttl: u64) -> Self {
        Self {
            by_token: HashMap::new(),
            by_slot: HashMap::new(),
            max,
            ttl,
        }
    }

    /// How many changes wait now (expired ones included until the next insert).
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// Keeps `value` for `author` in `doc` under `token` (fresh randomness from the caller),
    /// replacing what that key had prepared for that document.
    pub fn insert(
        &mut self,
        token: [u8; 16],
        author: AuthorKey,
        doc: DocId,
        value: T,
        now: u64,
    ) -> Result<(), PendingError> {
        let slot = (author, doc);
        if let Some(old) = self.by_slot.remove(&slot) {
            self.by_token.remove(&old);
        }
        let ttl = self.ttl;
        self.by_token.retain(|_, w| now.saturating_sub(w.at) <= ttl);
        let live: std::collections::HashSet<(AuthorKey, DocId)> =
            self.by_token.values().map(|w| w.slot).collect();
        self.by_slot.retain(|slot, _| live.contains(slot));
        if self.by_token.len() >= self.max {
            return Err(PendingError::Full);
        }
        self.by_slot.insert(slot, token);
        self.by_token.insert(
            token,
            Waiting {
                slot,
                at: now,
                value,
            },
        );
        Ok(())
    }

    /// Takes the change prepared under `token` for `author` out, if it has not expired.
    pub fn take(
        &mut self,
        token: &[u8; 16],
        author: &AuthorKey,
        now: u64,
    ) -> Result<T, PendingError> {
        let waiting = self.by_token.get(token).ok_or(PendingError::Unknown)?;
        if waiting.slot.0 != *author {
            return Err(PendingError::WrongKey);
        }
        let waiting = self.by_token.remove(token).ok_or(PendingError::Unknown)?;
        self.by_slot.remove(&waiting.slot);
        if now.saturating_sub(waiting.at) > self.ttl {
            return Err(PendingError::Expired);
        }
        Ok(waiting.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{signing_digest, ChangeEnvelope};
    use crate::identity::DeviceKey;
    use crate::schema::{Edit, EditContext, NewDocument};

    fn note_doc(creator: &DeviceKey) -> (DocGenesis, Automerge) {
        let genesis = DocGenesis {
            commons: CommonsId([1; 32]),
            kind: DocKind::Note,
            creator: creator.author(),
            created_at: 1_700_000_000,
            nonce: [3; 16],
            fork: None,
        };
        (genesis, Automerge::new())
    }

    fn init_note(
        tx: &mut automerge::transaction::Transaction<'_>,
    ) -> Result<(), crate::schema::EditError> {
        let new = NewDocument {
            kind: DocKind::Note,
            title: "first light".into(),
            note_target: Some(DocId([9; 32]).to_string()),
            note_kind: None,
        };
        schema::init_document(tx, &new).map_err(crate::schema::EditError::from)
    }

    #[test]
    fn a_prepared_change_signed_outside_verifies_as_an_envelope_and_leaves_the_doc_alone() {
        let browser = DeviceKey::from_secret([4; 32]);
        let (genesis, doc) = note_doc(&browser);
        let id = genesis.id();
        let prepared = prepare_change(
            &doc,
            &id,
            DocKind::Note,
            &browser.author(),
            1_700_000_001,
            init_note,
        )
        .expect("prepared")
        .expect("a change");
        assert!(
            doc.get_heads().is_empty(),
            "the document itself is untouched"
        );
        assert!(prepared.heads.is_empty());
        let to_sign = ToSign::change(&genesis.commons, &id, &browser.author(), &prepared.change);
        assert_eq!(
            to_sign.digest,
            signing_digest(&genesis.commons, &id, &browser.author(), &prepared.change)
        );
        // The signer sees its own key inside the bytes it signs.
        assert_eq!(&to_sign.preimage[68..100], browser.author().as_bytes());
        let signature = browser.sign(&to_sign.digest);
        let envelope = ChangeEnvelope {
            commons: genesis.commons,
            doc: id,
            author: browser.author(),
            change: prepared.change.clone(),
            signature,
        };
        let verified = envelope.verify().expect("verifies");
        assert_eq!(verified.change.hash(), prepared.hash);
        let genesis_sign = ToSign::genesis(&genesis);
        assert_eq!(&genesis_sign.preimage[36..68], browser.author().as_bytes());
        let signed = genesis.clone().sign(&browser);
        assert_eq!(
            browser
                .author()
                .verify(&genesis_sign.digest, &signed.signature),
            Ok(())
        );
    }

    #[test]
    fn a_second_change_builds_on_the_heads_and_takes_the_next_sequence_number() {
        let browser = DeviceKey::from_secret([4; 32]);
        let (genesis, mut doc) = note_doc(&browser);
        let id = genesis.id();
        let first = prepare_change(&doc, &id, DocKind::Note, &browser.author(), 1, init_note)
            .expect("prepared")
            .expect("a change");
        doc.apply_changes([automerge::Change::from_bytes(first.change.clone()).expect("parses")])
            .expect("applies");
        let ctx = EditContext {
            author: browser.author().to_string(),
            now_unix: 2,
        };
        let second = prepare_change(&doc, &id, DocKind::Note, &browser.author(), 2, |tx| {
            schema::apply_edit(
                tx,
                DocKind::Note,
                &Edit::AppendText {
                    field: "body".into(),
                    text: " and more".into(),
                },
                &ctx,
            )
        })
        .expect("prepared")
        .expect("a change");
        let change = automerge::Change::from_bytes(second.change).expect("parses");
        assert_eq!(change.seq(), 2);
        assert_eq!(change.deps(), &[first.hash]);
        assert_eq!(second.heads, vec![first.hash]);
    }

    #[test]
    fn an_edit_breaking_the_schema_is_refused_at_prepare() {
        let browser = DeviceKey::from_secret([4; 32]);
        let (genesis, doc) = note_doc(&browser);
        let refused = prepare_change(
            &doc,
            &genesis.id(),
            DocKind::Note,
            &browser.author(),
            1,
            |tx| {
                use automerge::transaction::Transactable;
                tx.put(automerge::ROOT, "kind", "not a note kind")
                    .map_err(|e| {
                        crate::schema::EditError::from(SchemaError::automerge("written", e))
                    })
            },
        );
        assert!(matches!(refused, Err(PrepareError::Schema { .. })));
    }

    #[test]
    fn pending_changes_are_bounded_one_per_key_and_document_and_expire() {
        let a = DeviceKey::from_secret([1; 32]).author();
        let b = DeviceKey::from_secret([2; 32]).author();
        let doc = DocId([7; 32]);
        let mut pending: Pending<u32> = Pending::new(2, 10);
        pending.insert([1; 16], a, doc, 1, 100).expect("room");
        // A second prepare by the same key for the same document replaces the first.
        pending.insert([2; 16], a, doc, 2, 101).expect("room");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.take(&[1; 16], &a, 102), Err(PendingError::Unknown));
        pending.insert([3; 16], b, doc, 3, 102).expect("room");
        assert_eq!(
            pending.insert([4; 16], b, DocId([8; 32]), 4, 103),
            Err(PendingError::Full)
        );
        assert_eq!(pending.take(&[3; 16], &a, 103), Err(PendingError::WrongKey));
        assert_eq!(pending.take(&[3; 16], &b, 103), Ok(3));
        assert_eq!(pending.take(&[3; 16], &b, 103), Err(PendingError::Unknown));
        assert_eq!(pending.take(&[2; 16], &a, 120), Err(PendingError::Expired));
        // Expired ones make room.
        pending.insert([5; 16], a, doc, 5, 200).expect("room");
        pending.insert([6; 16], b, doc, 6, 300).expect("room");
        pending
            .insert([7; 16], a, DocId([8; 32]), 7, 300)
            .expect("expired one dropped");
        assert_eq!(pending.len(), 2);
    }
}
