//! Writes signed by a key this node does not hold: a browser's own ed25519 key (`serve --web`).
//!
//! The node builds the change (a note, an edit of a design, event or note, "I built this", or a
//! guest's redemption of an invitation) with the actor bound to the browser's key
//! ([`Replicas::external_prepare`]); the browser signs the digests it is given; the node then
//! takes the signed records in exactly as it takes a change from a peer
//! ([`Replicas::external_commit`]): signature, actor binding, history rules and the commons'
//! charter decide, and only a change that passes is stored and published. A key this node does
//! not know (no role and no device certificate in the commons' charter) is refused before
//! anything is built.
//!
//! A browser becomes known in one of two ways: as a guest (or member) by redeeming an
//! invitation code with its own key ([`ExternalWrite::Redeem`], signed like any change), or as a
//! device of a person ([`Replicas::external_enrol_device`]): the person runs `hedgerow device
//! add` on this node and types the link code into the browser; this node, which holds the
//! person key, certifies the browser's key under that name and revokes the code's key, which
//! has never written anything. The link code's key is derived from the code (see
//! [`crate::key_backup`]); the browser's secret key never reaches the node.

use crate::key_backup;
use crate::replicas::{now_unix, random_nonce, LiveOutcome, NodeError, Replicas};
use hedgerow_protocol::charter::{
    CharterAction, CharterOp, Frontier, InvitationCode, Outcome, Role,
};
use hedgerow_protocol::external_sign::{
    prepare_change, prepare_charter_change, PrepareError, PreparedBytes, ToSign,
    EXTERNAL_INSTALL_TAG,
};
use hedgerow_protocol::replica::{Admission, AdmitInput};
use hedgerow_protocol::schema::{self, DocKind, Edit, EditContext, EditError, NewDocument};
use hedgerow_protocol::sync::LiveChange;
use hedgerow_protocol::{
    actor_for_install, AuthorKey, ChangeEnvelope, CommonsId, DeviceKey, DocGenesis, DocId,
    Signature, Signed,
};
use serde::{Deserialize, Serialize};

/// How long after `device add` its link code may enrol a browser, in seconds.
pub const BROWSER_LINK_TTL_SECS: i64 = 3600;

/// Most edits one externally signed change may carry.
pub const MAX_EXTERNAL_EDITS: usize = 32;

/// Why an externally signed write was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// The key holds no role and no device certificate in the commons.
    #[error("key {key} is not known in this commons: enrol this browser first (a device link code from `hedgerow device add`, or an invitation code)")]
    UnknownKey {
        /// The key.
        key: AuthorKey,
    },
    /// The charter would refuse the change (a guest editing a design, a blocked key...).
    #[error("this commons' charter does not let key {key} make this change: {refusal}")]
    NotAllowed {
        /// The key.
        key: AuthorKey,
        /// The charter's reason and kind.
        refusal: String,
    },
    /// An edit a browser may not send (files, releases, conflict settling).
    #[error("`{0}` cannot be made from the web page; use the hedgerow command")]
    EditNotOffered(&'static str),
    /// Too many edits in one change.
    #[error("one change carries at most {MAX_EXTERNAL_EDITS} edits")]
    TooManyEdits,
    /// The edit leaves the document as it is.
    #[error("nothing to change: the document already reads so")]
    NoChange,
    /// The document took other changes since the change was prepared.
    #[error("the document changed since this change was prepared; prepare it again")]
    Stale,
    /// A signature is missing or does not verify.
    #[error("the {part} signature does not verify for key {key}: sign exactly the digest given")]
    BadSignature {
        /// `genesis` or `change`.
        part: &'static str,
        /// The key.
        key: AuthorKey,
    },
    /// The prepared change came back altered.
    #[error("the prepared change does not match what this node built")]
    Altered,
    /// An invitation code that does not parse or verify.
    #[error("invitation code refused: {0}")]
    BadInvitation(String),
    /// An invitation past its expiry.
    #[error("this invitation expired; ask for a new code")]
    InvitationExpired,
    /// An invitation whose uses are all taken.
    #[error("this invitation has been used as many times as it allows; ask for a new code")]
    InvitationUsedUp,
    /// An invitation for a commons this node does not hold.
    #[error("this node does not hold the commons of this invitation")]
    InvitationElsewhere,
    /// The node cannot certify devices (it holds no person key).
    #[error("this node does not hold a person key, so it cannot link a browser as a device; open the web page of the node where you ran `hedgerow device add`")]
    NotCertifier,
    /// No recent, unused link code of this node's person matches.
    #[error("this link code matches no device added on this node in the last hour that is still unused; run `hedgerow device add NAME` and type the new code")]
    UnknownLinkCode,
    /// The link code is not 20 base32 characters.
    #[error(transparent)]
    LinkCode(#[from] key_backup::KeyBackupError),
}

/// What a browser asks the node to build.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "write", rename_all = "snake_case")]
pub enum ExternalWrite {
    /// A new note on a design or event.
    NoteAdd {
        /// The design or event.
        target: DocId,
        /// The note's kind (`comment` when absent).
        #[serde(default)]
        kind: Option<String>,
        /// Its text.
        body: String,
    },
    /// Edits of a design, event or note, as one change.
    Edit {
        /// The document.
        doc: DocId,
        /// The edits (the CLI's edit types; files, releases and conflict settling excluded).
        edits: Vec<Edit>,
    },
    /// Redeems an invitation code: the key gets the invitation's role.
    Redeem {
        /// The `hri1...` code.
        code: String,
    },
}

/// A change built for an external key, waiting for its signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    /// The commons.
    pub commons: CommonsId,
    /// The document the change is in.
    pub doc: DocId,
    /// The key that must sign.
    pub author: AuthorKey,
    /// For a new document: its genesis record, to be signed too.
    pub genesis: Option<DocGenesis>,
    /// The raw automerge change.
    pub change: Vec<u8>,
    /// The document's heads the change was built on, hex.
    pub heads: Vec<String>,
    /// What the change does, in words, for the signer to read.
    pub summary: String,
}

impl Prepared {
    /// The digests to sign, with their preimages: the genesis first (when new), then the change.
    pub fn to_sign(&self) -> Vec<ToSign> {
        let mut out = Vec::with_capacity(2);
        if let Some(genesis) = &self.genesis {
            out.push(ToSign::genesis(genesis));
        }
        out.push(ToSign::change(
            &self.commons,
            &self.doc,
            &self.author,
            &self.change,
        ));
        out
    }
}

/// The external key's signatures over [`Prepared::to_sign`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExternalSignatures {
    /// Over the genesis digest (new documents only).
    #[serde(default)]
    pub genesis: Option<Signature>,
    /// Over the change digest.
    pub change: Signature,
}

/// What a commit stored.
#[derive(Debug, Clone, Serialize)]
pub struct Committed {
    /// The document.
    pub doc: DocId,
    /// The change's hash, hex.
    pub change: String,
    /// The signer.
    pub author: AuthorKey,
}

/// What enrolling a browser as a person's device did.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceEnrolled {
    /// The browser's key, now certified.
    pub device: AuthorKey,
    /// The person it writes for.
    pub person: AuthorKey,
    /// Its device name (the one `device add` was given).
    pub name: String,
    /// The commons whose charters certify it.
    pub commons: Vec<CommonsId>,
}

/// Edits a browser may send: fields, steps, lists, bill of materials, "I built this".
fn check_offered(edit: &Edit) -> Result<(), ExternalError> {
    match edit {
        Edit::AddFile { .. }
        | Edit::RemoveFile { .. }
        | Edit::Release { .. }
        | Edit::Resolve { .. } => Err(ExternalError::EditNotOffered(edit.name())),
        _ => Ok(()),
    }
}

impl Replicas {
    /// Fails unless `author` holds a role, or is a certified unrevoked device, in `commons`.
    pub fn external_key_known(
        &mut self,
        commons: &CommonsId,
        author: &AuthorKey,
    ) -> Result<(), NodeError> {
        let known = self.charter_state(commons)?.is_some_and(|policy| {
            let state = &policy.state;
            let person = state.person_of(*author);
            !state.is_revoked(*author) && (person != *author || state.role_of(person).is_some())
        });
        if known {
            Ok(())
        } else {
            Err(ExternalError::UnknownKey { key: *author }.into())
        }
    }

    /// Builds what `author` asked for, signed by nobody yet; see the module doc.
    pub fn external_prepare(
        &mut self,
        author: AuthorKey,
        write: ExternalWrite,
    ) -> Result<Prepared, NodeError> {
        match write {
            ExternalWrite::NoteAdd { target, kind, body } => {
                self.external_note(author, target, kind, body)
            }
            ExternalWrite::Edit { doc, edits } => self.external_edit(author, doc, edits),
            ExternalWrite::Redeem { code } => self.external_redeem(author, &code),
        }
    }

    fn external_note(
        &mut self,
        author: AuthorKey,
        target: DocId,
        kind: Option<String>,
        body: String,
    ) -> Result<Prepared, NodeError> {
        let target_genesis =
            self.store()
                .doc_genesis(&target)?
                .ok_or_else(|| NodeError::UnknownDoc {
                    what: "design or event",
                    id: target.to_string(),
                })?;
        if !matches!(target_genesis.body.kind, DocKind::Design | DocKind::Event) {
            return Err(NodeError::Invalid(format!(
                "notes belong to a design or an event; {target} is a {}",
                target_genesis.body.kind
            )));
        }
        self.refuse_withheld(&target)?;
        let commons = target_genesis.body.commons;
        self.external_key_known(&commons, &author)?;
        let genesis = DocGenesis {
            commons,
            kind: DocKind::Note,
            creator: author,
            created_at: now_unix(),
            nonce: random_nonce(),
            fork: None,
        };
        let id = genesis.id();
        self.external_admit(&genesis, &author, 1)?;
        let new = NewDocument {
            kind: DocKind::Note,
            title: body,
            note_target: Some(target.to_string()),
            note_kind: kind,
        };
        let empty = hedgerow_protocol::automerge::Automerge::new();
        let made = prepare_change(&empty, &id, DocKind::Note, &author, now_unix(), |tx| {
            schema::init_document(tx, &new).map_err(EditError::from)
        })
        .map_err(prepare_failed)?
        .ok_or(ExternalError::NoChange)?;
        let summary = format!(
            "a new {} note on {target}",
            new.note_kind.as_deref().unwrap_or("comment")
        );
        Ok(prepared(commons, id, author, Some(genesis), made, summary))
    }

    fn external_edit(
        &mut self,
        author: AuthorKey,
        doc: DocId,
        mut edits: Vec<Edit>,
    ) -> Result<Prepared, NodeError> {
        if edits.len() > MAX_EXTERNAL_EDITS {
            return Err(ExternalError::TooManyEdits.into());
        }
        for edit in &edits {
            check_offered(edit)?;
        }
        let genesis = self
            .store()
            .doc_genesis(&doc)?
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: doc.to_string(),
            })?
            .body;
        if !matches!(
            genesis.kind,
            DocKind::Design | DocKind::Event | DocKind::Note
        ) {
            return Err(NodeError::Invalid(format!(
                "only designs, events and notes are edited from the web page; {doc} is a {}",
                genesis.kind
            )));
        }
        self.refuse_withheld(&doc)?;
        self.external_key_known(&genesis.commons, &author)?;
        self.resolve_references(Some(doc), genesis.kind, &mut edits)?;
        let actor = actor_for_install(&author, &doc, &EXTERNAL_INSTALL_TAG);
        let replica = self.replica_mut(&doc)?;
        let next_seq = replica.clock().get(&actor).copied().unwrap_or(0) + 1;
        self.external_admit(&genesis, &author, next_seq)?;
        let ctx = EditContext {
            author: author.to_string(),
            now_unix: now_unix(),
        };
        let kind = genesis.kind;
        let replica = self.replica_mut(&doc)?;
        let made = prepare_change(replica.doc(), &doc, kind, &author, ctx.now_unix, |tx| {
            for edit in &edits {
                schema::apply_edit(tx, kind, edit, &ctx)?;
            }
            Ok::<(), EditError>(())
        })
        .map_err(prepare_failed)?
        .ok_or(ExternalError::NoChange)?;
        let names: Vec<&str> = edits.iter().map(Edit::name).collect();
        let summary = format!("{} of {kind} {doc}", names.join(", "));
        Ok(prepared(genesis.commons, doc, author, None, made, summary))
    }

    fn external_redeem(&mut self, author: AuthorKey, code: &str) -> Result<Prepared, NodeError> {
        let code =
            InvitationCode::parse(code).map_err(|e| ExternalError::BadInvitation(e.to_string()))?;
        let invitation = &code.invitation.body;
        if now_unix() > invitation.expires_at {
            return Err(ExternalError::InvitationExpired.into());
        }
        let commons = invitation.commons;
        if !self.holds(&commons)? {
            return Err(ExternalError::InvitationElsewhere.into());
        }
        let id = invitation.id();
        if let Some(policy) = self.charter_state(&commons)? {
            let taken = policy
                .state
                .log()
                .iter()
                .filter(|e| {
                    e.outcome == Outcome::Applied
                        && matches!(&e.op.action, CharterAction::Redeem { invitation: i } if i.body.id() == id)
                })
                .count();
            if taken >= invitation.uses as usize {
                return Err(ExternalError::InvitationUsedUp.into());
            }
        }
        let role = invitation.role;
        let genesis = self
            .store()
            .commons(&commons)?
            .ok_or_else(|| NodeError::UnknownCommons(commons.to_string()))?;
        let charter_id = DocGenesis::charter(commons, genesis.body.creator).id();
        if self.store().doc_genesis(&charter_id)?.is_none() {
            return Err(ExternalError::BadInvitation(format!(
                "this node holds no charter of commons {commons} yet"
            ))
            .into());
        }
        let op = CharterOp {
            commons,
            at: now_unix(),
            action: CharterAction::Redeem {
                invitation: code.invitation.clone(),
            },
        };
        let replica = self.replica_mut(&charter_id)?;
        let made =
            prepare_charter_change(replica.doc(), &charter_id, &author, op.at, op.to_message())
                .map_err(prepare_failed)?;
        let summary = format!("joining commons {commons} as {role}");
        Ok(prepared(commons, charter_id, author, None, made, summary))
    }

    /// Refuses, before anything is built, a change the commons' charter would refuse.
    fn external_admit(
        &mut self,
        genesis: &DocGenesis,
        author: &AuthorKey,
        seq: u64,
    ) -> Result<(), NodeError> {
        let Some(policy) = self.charter_state(&genesis.commons)? else {
            return Ok(());
        };
        let id = genesis.id();
        let input = AdmitInput {
            doc: id,
            kind: genesis.kind,
            doc_creator: genesis.creator,
            device: *author,
            actor: actor_for_install(author, &id, &EXTERNAL_INSTALL_TAG)
                .to_bytes()
                .to_vec(),
            seq,
            creates_doc: seq == 1 && genesis.creator == *author,
        };
        policy.admit(&input).map_err(|refused| {
            ExternalError::NotAllowed {
                key: *author,
                refusal: format!("{} ({})", refused.reason, refused.kind),
            }
            .into()
        })
    }

    /// Stores a prepared change with the external key's signatures, after every check a change
    /// from a peer gets; refuses one built on heads that moved since.
    pub fn external_commit(
        &mut self,
        prepared: &Prepared,
        signatures: &ExternalSignatures,
    ) -> Result<Committed, NodeError> {
        let author = prepared.author;
        let to_sign = prepared.to_sign();
        let genesis = match (&prepared.genesis, signatures.genesis) {
            (None, _) => None,
            (Some(genesis), Some(signature)) => {
                if genesis.id() != prepared.doc || genesis.creator != author {
                    return Err(ExternalError::Altered.into());
                }
                author.verify(&to_sign[0].digest, &signature).map_err(|_| {
                    ExternalError::BadSignature {
                        part: "genesis",
                        key: author,
                    }
                })?;
                Some(Signed {
                    body: genesis.clone(),
                    signature,
                })
            }
            (Some(_), None) => {
                return Err(ExternalError::BadSignature {
                    part: "genesis",
                    key: author,
                }
                .into())
            }
        };
        let envelope = ChangeEnvelope {
            commons: prepared.commons,
            doc: prepared.doc,
            author,
            change: prepared.change.clone(),
            signature: signatures.change,
        };
        let verified = envelope.verify().map_err(|_| ExternalError::BadSignature {
            part: "change",
            key: author,
        })?;
        if genesis.is_none() {
            let heads: Vec<String> = self
                .replica_mut(&prepared.doc)?
                .heads()
                .iter()
                .map(ToString::to_string)
                .collect();
            let mut expected = prepared.heads.clone();
            expected.sort();
            let mut now = heads;
            now.sort();
            if expected != now {
                return Err(ExternalError::Stale.into());
            }
        }
        let live = LiveChange { genesis, envelope };
        match self.ingest_live(&live)? {
            LiveOutcome::Applied(_) => {}
            // A commit sent twice: the first stored it.
            LiveOutcome::Duplicate => {}
            LiveOutcome::Pending | LiveOutcome::Excluded => {
                return Err(ExternalError::Stale.into());
            }
        }
        self.queue_outgoing(live);
        Ok(Committed {
            doc: prepared.doc,
            change: verified.change.hash().to_string(),
            author,
        })
    }

    /// Enrols `browser` as a device of this node's person with a link code `device add` made
    /// here in the last hour and nobody used: certifies the browser's key under the code's
    /// device name in every commons whose charter certifies the code's key, and revokes the
    /// code's key there (it has written nothing), so the code is spent.
    pub fn external_enrol_device(
        &mut self,
        code: &str,
        browser: AuthorKey,
    ) -> Result<DeviceEnrolled, NodeError> {
        let secret = key_backup::link_device_secret(code).map_err(ExternalError::from)?;
        let code_key = DeviceKey::from_secret(secret).author();
        let person = self.person();
        let certifier = self.certifier().ok_or(ExternalError::NotCertifier)?;
        let certifier = DeviceKey::from_secret(certifier.secret_bytes());
        let now = now_unix();
        let mut name = None;
        let mut commons = Vec::new();
        for genesis in self.commons_list()? {
            let id = genesis.body.id();
            let Some(policy) = self.charter_state(&id)? else {
                continue;
            };
            let state = &policy.state;
            if state.is_revoked(code_key) || state.person_of(code_key) != person {
                continue;
            }
            let issued = state.log().iter().find_map(|entry| match &entry.op.action {
                CharterAction::Device { certificate }
                    if entry.outcome == Outcome::Applied && certificate.body.device == code_key =>
                {
                    Some(certificate.body.clone())
                }
                _ => None,
            });
            let Some(issued) = issued else { continue };
            if now.saturating_sub(issued.issued_at) > BROWSER_LINK_TTL_SECS {
                continue;
            }
            name = Some(issued.name);
            commons.push(id);
        }
        let Some(name) = name else {
            return Err(ExternalError::UnknownLinkCode.into());
        };
        if self.has_written(&commons, &code_key)? {
            // `init --link` used the code: revoking its key would disown a real device.
            return Err(ExternalError::UnknownLinkCode.into());
        }
        let bytes = crate::devices::certify(&certifier, &browser, &name)?;
        let certificate = crate::devices::decode_certificate(&bytes)?;
        for id in &commons {
            self.write_charter_op(
                id,
                CharterAction::Device {
                    certificate: certificate.clone(),
                },
            )?;
            self.write_charter_op(
                id,
                CharterAction::RevokeDevice {
                    device: code_key,
                    frontier: Frontier::default(),
                },
            )?;
        }
        Ok(DeviceEnrolled {
            device: browser,
            person,
            name,
            commons,
        })
    }

    /// Whether `key` signed any change this node holds in `commons`.
    fn has_written(&self, commons: &[CommonsId], key: &AuthorKey) -> Result<bool, NodeError> {
        for id in commons {
            for doc in self.store().doc_ids(id)? {
                for (_, record) in self.store().records(&doc)? {
                    if record.author == *key {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }
}

/// The role an invitation code grants, for the page to say before the browser signs.
pub fn invitation_role(code: &str) -> Result<(CommonsId, Role), ExternalError> {
    let code =
        InvitationCode::parse(code).map_err(|e| ExternalError::BadInvitation(e.to_string()))?;
    Ok((code.invitation.body.commons, code.invitation.body.role))
}

fn prepared(
    commons: CommonsId,
    doc: DocId,
    author: AuthorKey,
    genesis: Option<DocGenesis>,
    made: PreparedBytes,
    summary: String,
) -> Prepared {
    Prepared {
        commons,
        doc,
        author,
        genesis,
        change: made.change,
        heads: made.heads.iter().map(ToString::to_string).collect(),
        summary,
    }
}

fn prepare_failed<E: std::error::Error + Into<NodeError> + 'static>(
    failure: PrepareError<E>,
) -> NodeError {
    match failure {
        PrepareError::Edit(e) => e.into(),
        PrepareError::Schema { kind, error } => {
            NodeError::Rejected(hedgerow_protocol::Rejection::Schema { kind, error })
        }
        PrepareError::Vanished => NodeError::Rejected(hedgerow_protocol::Rejection::Automerge {
            reason: "the prepared change vanished from its copy of the document".into(),
        }),
    }
}

impl From<std::convert::Infallible> for NodeError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::{Home, LocalProfile};

    fn node(dir: &std::path::Path, name: &str) -> Replicas {
        let profile = LocalProfile {
            name: name.into(),
            ..LocalProfile::default()
        };
        Replicas::open(&Home::init(&dir.join(name), &profile).expect("home")).expect("store")
    }

    /// Signs what `prepared` asks, as the browser would.
    fn sign(browser: &DeviceKey, prepared: &Prepared) -> ExternalSignatures {
        let parts = prepared.to_sign();
        let change = parts.last().expect("a change to sign");
        ExternalSignatures {
            genesis: prepared
                .genesis
                .as_ref()
                .map(|_| browser.sign(&parts[0].digest)),
            change: browser.sign(&change.digest),
        }
    }

    fn round_trip(
        host: &mut Replicas,
        browser: &DeviceKey,
        write: ExternalWrite,
    ) -> Result<Committed, NodeError> {
        let prepared = host.external_prepare(browser.author(), write)?;
        host.external_commit(&prepared, &sign(browser, &prepared))
    }

    fn note_on(target: DocId, body: &str) -> ExternalWrite {
        ExternalWrite::NoteAdd {
            target,
            kind: None,
            body: body.into(),
        }
    }

    struct Farm {
        _dir: tempfile::TempDir,
        host: Replicas,
        commons: CommonsId,
        design: DocId,
        event: DocId,
    }

    fn farm() -> Farm {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut host = node(dir.path(), "host");
        let commons = host
            .create_stewarded("Build day", "", false)
            .expect("create");
        let design = host
            .create_doc(commons, &NewDocument::new(DocKind::Design, "Crimper"), &[])
            .expect("design");
        let event = host
            .create_doc(commons, &NewDocument::new(DocKind::Event, "Barn day"), &[])
            .expect("event");
        Farm {
            _dir: dir,
            host,
            commons,
            design,
            event,
        }
    }

    fn changes(host: &Replicas, doc: &DocId) -> usize {
        host.store().records(doc).expect("records").len()
    }

    #[test]
    fn a_guest_invited_by_code_writes_a_note_signed_by_its_own_key_and_no_more() {
        let Farm {
            _dir,
            mut host,
            commons,
            design,
            event,
        } = farm();
        let guest = DeviceKey::from_secret([7; 32]);
        // Unknown until enrolled: nothing is even built.
        let refused = host.external_prepare(guest.author(), note_on(event, "hello"));
        assert!(
            matches!(
                refused,
                Err(NodeError::External(ExternalError::UnknownKey { .. }))
            ),
            "{refused:?}"
        );
        let (code, _) = host.invite(&commons, Role::Guest, 1, 3600).expect("invite");
        round_trip(
            &mut host,
            &guest,
            ExternalWrite::Redeem { code: code.clone() },
        )
        .expect("redeemed");
        let note =
            round_trip(&mut host, &guest, note_on(event, "Bring gloves")).expect("note stored");
        let genesis = host
            .store()
            .doc_genesis(&note.doc)
            .expect("read")
            .expect("held");
        assert_eq!(genesis.body.creator, guest.author());
        let records = host.store().records(&note.doc).expect("records");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].1.author, guest.author());
        assert!(
            records[0].1.proof.is_some(),
            "the guest's own signature is kept"
        );
        let title = host
            .store()
            .summary(&note.doc)
            .expect("read")
            .expect("summary")
            .title;
        assert_eq!(title, "Bring gloves");
        // The change is queued for peers like a local one.
        assert!(host
            .take_outbox()
            .iter()
            .any(|live| live.envelope.doc == note.doc && live.envelope.author == guest.author()));
        // A guest edits no design; refused before anything is built.
        let before = changes(&host, &design);
        let edit = ExternalWrite::Edit {
            doc: design,
            edits: vec![Edit::Set {
                field: "summary".into(),
                value: "mine now".into(),
            }],
        };
        let refused = host.external_prepare(guest.author(), edit);
        assert!(
            matches!(&refused, Err(NodeError::External(ExternalError::NotAllowed { refusal, .. })) if refusal.contains("guest")),
            "{refused:?}"
        );
        assert_eq!(changes(&host, &design), before);
        // The code had one use.
        let other = DeviceKey::from_secret([8; 32]);
        let used = host.external_prepare(other.author(), ExternalWrite::Redeem { code });
        assert!(
            matches!(
                used,
                Err(NodeError::External(ExternalError::InvitationUsedUp))
            ),
            "{used:?}"
        );
        let garbled = host.external_prepare(
            other.author(),
            ExternalWrite::Redeem {
                code: "hri1notacode".into(),
            },
        );
        assert!(
            matches!(
                garbled,
                Err(NodeError::External(ExternalError::BadInvitation(_)))
            ),
            "{garbled:?}"
        );
    }

    #[test]
    fn a_wrong_or_missing_signature_stores_nothing() {
        let Farm {
            _dir,
            mut host,
            commons,
            event,
            ..
        } = farm();
        let guest = DeviceKey::from_secret([7; 32]);
        let (code, _) = host.invite(&commons, Role::Guest, 1, 3600).expect("invite");
        round_trip(&mut host, &guest, ExternalWrite::Redeem { code }).expect("redeemed");
        let notes_before = host.list(&commons, DocKind::Note).expect("list").len();
        let prepared = host
            .external_prepare(guest.author(), note_on(event, "hello"))
            .expect("prepared");
        let impostor = DeviceKey::from_secret([9; 32]);
        let mut forged = sign(&guest, &prepared);
        forged.change = impostor.sign(&prepared.to_sign()[1].digest);
        let refused = host.external_commit(&prepared, &forged);
        assert!(
            matches!(
                refused,
                Err(NodeError::External(ExternalError::BadSignature {
                    part: "change",
                    ..
                }))
            ),
            "{refused:?}"
        );
        let mut no_genesis = sign(&guest, &prepared);
        no_genesis.genesis = None;
        let refused = host.external_commit(&prepared, &no_genesis);
        assert!(
            matches!(
                refused,
                Err(NodeError::External(ExternalError::BadSignature {
                    part: "genesis",
                    ..
                }))
            ),
            "{refused:?}"
        );
        // Bytes altered after signing: the signature no longer covers them.
        let signatures = sign(&guest, &prepared);
        let mut altered = prepared.clone();
        altered.summary = "a harmless note".into();
        let last = altered.change.len() - 1;
        altered.change[last] ^= 1;
        assert!(host.external_commit(&altered, &signatures).is_err());
        assert_eq!(
            host.list(&commons, DocKind::Note).expect("list").len(),
            notes_before
        );
        assert!(host
            .store()
            .doc_genesis(&prepared.doc)
            .expect("read")
            .is_none());
        host.external_commit(&prepared, &signatures)
            .expect("the real signature still commits");
    }

    #[test]
    fn a_local_change_in_between_makes_the_commit_stale_and_a_new_prepare_merges_both() {
        let Farm {
            _dir,
            mut host,
            commons,
            event,
            ..
        } = farm();
        let guest = DeviceKey::from_secret([7; 32]);
        let (code, _) = host.invite(&commons, Role::Guest, 1, 3600).expect("invite");
        round_trip(&mut host, &guest, ExternalWrite::Redeem { code }).expect("redeemed");
        let note = round_trip(&mut host, &guest, note_on(event, "Gloves.")).expect("note");
        let append = ExternalWrite::Edit {
            doc: note.doc,
            edits: vec![Edit::AppendText {
                field: "body".into(),
                text: " And boots.".into(),
            }],
        };
        let prepared = host
            .external_prepare(guest.author(), append.clone())
            .expect("prepared");
        // The host's own user edits the same note before the browser signs.
        host.edit_doc(
            &note.doc,
            &[Edit::AppendText {
                field: "body".into(),
                text: " And hats.".into(),
            }],
        )
        .expect("host edit")
        .expect("a change");
        let stale = host.external_commit(&prepared, &sign(&guest, &prepared));
        assert!(
            matches!(stale, Err(NodeError::External(ExternalError::Stale))),
            "{stale:?}"
        );
        assert_eq!(changes(&host, &note.doc), 2);
        round_trip(&mut host, &guest, append).expect("re-prepared and committed");
        assert_eq!(changes(&host, &note.doc), 3);
        let title = host
            .store()
            .summary(&note.doc)
            .expect("read")
            .expect("summary")
            .title;
        assert!(title.contains("hats") && title.contains("boots"), "{title}");
        // The document reloads from the store as it is in memory.
        host.clear_cache();
        assert_eq!(host.replica(&note.doc).expect("reload").change_count(), 3);
    }

    #[test]
    fn a_browser_linked_by_code_writes_as_the_person_and_the_code_is_spent() {
        let Farm {
            _dir,
            mut host,
            commons,
            design,
            ..
        } = farm();
        let phone = DeviceKey::from_secret([11; 32]);
        let malformed = host.external_enrol_device("not a code", phone.author());
        assert!(
            matches!(
                malformed,
                Err(NodeError::External(ExternalError::LinkCode(_)))
            ),
            "{malformed:?}"
        );
        let unknown = host.external_enrol_device("AAAAA-BBBBB-CCCCC-DDDDD", phone.author());
        assert!(
            matches!(
                unknown,
                Err(NodeError::External(ExternalError::UnknownLinkCode))
            ),
            "{unknown:?}"
        );
        let added = host.device_add("phone").expect("device add");
        let enrolled = host
            .external_enrol_device(&added.code.to_lowercase(), phone.author())
            .expect("enrolled");
        assert_eq!(enrolled.person, host.author());
        assert_eq!(enrolled.name, "phone");
        assert_eq!(enrolled.commons, vec![commons]);
        let state = host
            .charter_state(&commons)
            .expect("charter")
            .expect("stewarded");
        assert_eq!(state.state.person_of(phone.author()), host.author());
        assert!(
            state.state.is_revoked(added.device),
            "the code's own key is revoked"
        );
        let again =
            host.external_enrol_device(&added.code, DeviceKey::from_secret([12; 32]).author());
        assert!(
            matches!(
                again,
                Err(NodeError::External(ExternalError::UnknownLinkCode))
            ),
            "{again:?}"
        );
        // As a device of the steward, the phone edits the design and says it built it.
        round_trip(
            &mut host,
            &phone,
            ExternalWrite::Edit {
                doc: design,
                edits: vec![
                    Edit::AddStep {
                        text: "Weld the drum.".into(),
                        at: None,
                    },
                    Edit::AddBuilt {
                        place: Some("Barn".into()),
                        note: None,
                    },
                ],
            },
        )
        .expect("edit stored");
        let records = host.store().records(&design).expect("records");
        assert!(records.iter().any(|(_, r)| r.author == phone.author()));
        let offered = host.external_prepare(
            phone.author(),
            ExternalWrite::Edit {
                doc: design,
                edits: vec![Edit::Release {
                    version: "1.0".into(),
                    heads: Vec::new(),
                }],
            },
        );
        assert!(
            matches!(
                offered,
                Err(NodeError::External(ExternalError::EditNotOffered(_)))
            ),
            "{offered:?}"
        );
    }
}
