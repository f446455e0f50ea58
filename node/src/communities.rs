//! Communities on the node: each commons' charter evaluated into an admission policy, the
//! charter operations the CLI writes (`commons create --stewarded`, `invite`, `accept`,
//! `members`, `role`, `remove`, `moderate ...`), and the re-admission of a commons'
//! documents when its charter changes.
//!
//! The rules themselves are pure and live in `hedgerow_protocol::charter`; this module only
//! feeds them what the store holds and writes what they decide.

use crate::replicas::{now_unix, random_nonce, NodeError, Replicas};
use hedgerow_protocol::charter::{
    ChangeFacts, CharterAction, CharterOp, CharterState, Frontier, Invitation, InvitationCode,
    Outcome, Refusal, Role,
};
use hedgerow_protocol::replica::{Admission, AdmitInput, Refused, Rejection};
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::sync::LiveChange;
use hedgerow_protocol::{actor_for_install, AuthorKey, CommonsId, DocGenesis, DocId, DocReplica};
use hedgerow_protocol::{automerge::ChangeHash, Signed};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Why a community command was refused; nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// This node holds a charter without its `Found` yet (an invitation accepted offline).
    #[error("this node has not received the charter of commons {0} yet")]
    CharterNotReceived(CommonsId),
    /// The commons has no `Found`: roles and moderation need a stewarded commons.
    #[error("commons {0} is open (anyone may write); roles, invitations and moderation need a stewarded commons")]
    NotStewarded(CommonsId),
    /// This device's person lacks the authority for the operation.
    #[error("you cannot do this in commons {commons}: {refusal}")]
    NotAllowed {
        /// The commons.
        commons: CommonsId,
        /// What the charter says.
        refusal: String,
    },
    /// A role this device's person may not grant.
    #[error("as {held} you may not invite a {role}; a steward can")]
    CannotGrant {
        /// The role asked for.
        role: Role,
        /// The role held (`none` when none).
        held: String,
    },
    /// No person matches.
    #[error("no person in commons {commons} matches `{given}`")]
    UnknownPerson {
        /// The commons.
        commons: CommonsId,
        /// What was given.
        given: String,
    },
    /// A prefix or name matching several persons.
    #[error("`{given}` matches several persons: {}; give more characters of the key", candidates.join(", "))]
    AmbiguousPerson {
        /// What was given.
        given: String,
        /// Those it matches, each as `KEY (name)`.
        candidates: Vec<String>,
    },
    /// Removing or demoting the last steward.
    #[error("{0} is the last steward of this commons")]
    LastSteward(AuthorKey),
    /// The person holds no role.
    #[error("{0} is not a member of this commons")]
    NotAMember(AuthorKey),
    /// An invitation that expired.
    #[error("this invitation expired at {expires_at} (unix time); ask the person who invited you for a new code")]
    InvitationExpired {
        /// When it expired.
        expires_at: i64,
    },
    /// An invitation whose uses are all taken.
    #[error("this invitation has been used up; ask the person who invited you for a new code")]
    InvitationUsedUp,
    /// A code that does not read.
    #[error("{0}")]
    BadCode(String),
    /// An invitation by someone other than the founder, whose authority this node cannot check yet.
    #[error("this invitation was issued by {issuer}, whose role this node cannot check without the commons' charter")]
    NeedCharter {
        /// The issuer.
        issuer: AuthorKey,
    },
    /// A duration that does not read.
    #[error("`{0}` is not a duration: use e.g. 7d, 24h, 30m or 90s")]
    BadDuration(String),
    /// A bad number of uses.
    #[error("an invitation needs at least one use")]
    NoUses,
    /// A document hidden by a steward.
    #[error("document {doc} is hidden by a steward ({by}): {reason}")]
    Hidden {
        /// The document.
        doc: DocId,
        /// Who hid it.
        by: AuthorKey,
        /// Why.
        reason: String,
    },
}

/// A commons' evaluated charter as the admission policy of its content documents.
#[derive(Debug)]
pub struct Policy {
    /// The evaluated charter.
    pub state: CharterState,
}

impl Admission for Policy {
    fn admit(&self, change: &AdmitInput) -> Result<(), Refused> {
        let facts = ChangeFacts {
            device: change.device,
            actor: change.actor.clone(),
            seq: change.seq,
            doc_kind: change.kind,
            doc_creator_person: self.state.person_of(change.doc_creator),
            creates_doc: change.creates_doc,
        };
        self.state.admit(&facts).map_err(Refused::from)
    }
}

/// Parses `7d`, `24h`, `30m`, `90s` (or a bare number of seconds) into seconds.
pub fn parse_duration(text: &str) -> Result<i64, CommunityError> {
    let text = text.trim();
    let bad = || CommunityError::BadDuration(text.chars().take(40).collect());
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, "s"),
    };
    let n: i64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).filter(|s| *s > 0).ok_or_else(bad)
}

/// An invitation code just made (`commons invite`).
#[derive(Debug, Clone, Serialize)]
pub struct Invited {
    /// The `hri1...` code.
    pub code: String,
    /// The role it grants.
    pub role: Role,
    /// How many people may redeem it.
    pub uses: u32,
    /// When it expires, unix seconds (RFC 3339 in JSON).
    #[serde(with = "crate::times::unix")]
    pub expires_at: i64,
}

/// An invitation redeemed (`commons accept`).
#[derive(Debug, Clone, Serialize)]
pub struct InvitationAccepted {
    /// The commons joined.
    pub commons: CommonsId,
    /// The role the invitation grants.
    pub role: Role,
}

/// One member of a stewarded commons (`commons members`).
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The person key.
    pub person: AuthorKey,
    /// Their display name from their profile in the commons (empty when none arrived yet).
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Their devices (the person key itself when no device is certified).
    pub devices: Vec<AuthorKey>,
}

/// A charter operation just written (`commons role|remove`, `moderate hide|unhide|block|unblock`).
#[derive(Debug, Clone, Serialize)]
pub struct CharterChanged {
    /// The document it names (hide, unhide).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<DocId>,
    /// The person it names (role, remove, block, unblock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<AuthorKey>,
    /// The role given (role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The charter change's hash, hex.
    pub change: String,
}

/// One line of `moderate log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    /// The operation's change hash, hex.
    pub hash: String,
    /// What it does (`hide`, `block`, `add`...).
    pub action: String,
    /// The device that wrote it.
    pub author: String,
    /// Its person.
    pub person: String,
    /// The person's display name in the commons, when known.
    #[serde(default)]
    pub person_name: Option<String>,
    /// The time it claims (RFC 3339 in JSON).
    #[serde(with = "crate::times::unix")]
    pub at: i64,
    /// `applied`, or the reason it was ignored.
    pub outcome: String,
    /// What it names (a document, a person) and why.
    pub detail: String,
}

impl Replicas {
    /// The evaluated charter of `commons`, `None` when it has none (open, as before charters).
    pub fn charter_state(&mut self, commons: &CommonsId) -> Result<Option<Arc<Policy>>, NodeError> {
        if let Some(cached) = self.charters.get(commons) {
            return Ok(cached.clone());
        }
        let Some(genesis) = self.store().commons(commons)? else {
            return Ok(None);
        };
        let id = DocGenesis::charter(*commons, genesis.body.creator).id();
        let policy = if self.store().doc_genesis(&id)?.is_some() {
            let replica = self.replica(&id)?;
            let ops = replica.charter_ops();
            let state = CharterState::evaluate(&genesis, &ops);
            Some(Arc::new(Policy { state }))
        } else {
            None
        };
        self.charters.insert(*commons, policy.clone());
        Ok(policy)
    }

    /// The admission policy of `commons` (`None`: no charter, everything is admitted),
    /// evaluated from its charter on first use and kept until the charter changes.
    pub(crate) fn admission(
        &mut self,
        commons: &CommonsId,
    ) -> Result<Option<Arc<dyn Admission>>, NodeError> {
        Ok(self
            .charter_state(commons)?
            .map(|p| p as Arc<dyn Admission>))
    }

    /// Changes held since this store was opened because they build on refused ones.
    pub fn held_changes(&self) -> u64 {
        self.refusals
            .get(hedgerow_protocol::replica::HELD)
            .copied()
            .unwrap_or(0)
    }

    /// Refuses a charter genesis whose creator is not the commons' creator.
    pub(crate) fn check_charter_genesis(
        &self,
        genesis: &Signed<DocGenesis>,
    ) -> Result<(), NodeError> {
        let commons = genesis.body.commons;
        let held = self
            .store()
            .commons(&commons)?
            .ok_or_else(|| NodeError::UnknownCommons(commons.to_string()))?;
        if genesis.body.kind != DocKind::Charter || genesis.body.creator != held.body.creator {
            return Err(NodeError::Invalid(format!(
                "the charter of commons {commons} must name its creator {}, not {}",
                held.body.creator, genesis.body.creator
            )));
        }
        Ok(())
    }

    /// The charter of `commons` took changes: its policy is evaluated again, and every
    /// document of the commons is re-admitted under it: changes now refused leave their
    /// documents (rebuilt without them and what builds on them) and are dropped.
    pub(crate) fn charter_changed(&mut self, commons: CommonsId) -> Result<(), NodeError> {
        let before = self.charters.remove(&commons).flatten();
        let Some(policy) = self.charter_state(&commons)? else {
            return Ok(());
        };
        if policy.state.is_stewarded() {
            // The commons' charter has arrived (an accepted invitation waited for it).
            self.store().unwant_commons(&commons)?;
        }
        if let Some(invitation) = self.redeem_to_renew(&policy) {
            // Our redemption, written before this node held the commons' `Found`, was
            // replayed before it; redeemed again on top of the charter as it is now, it holds.
            return self
                .write_charter_op(&commons, CharterAction::Redeem { invitation })
                .map(|_| ());
        }
        if before.is_some_and(|b| !narrows(&b.state, &policy.state)) {
            // Only grants (an added member, a redemption, an unblock): what was admitted stays.
            return Ok(());
        }
        for id in self.store().doc_ids(&commons)? {
            let Some(genesis) = self.store().doc_genesis(&id)? else {
                continue;
            };
            if genesis.body.kind == DocKind::Charter {
                continue;
            }
            self.readmit(&id, genesis, &policy)?;
        }
        Ok(())
    }

    /// An invitation this device redeemed offline whose redemption the replay ordered before
    /// the commons' `Found` (so it was ignored as `not-stewarded`), when this device's person
    /// still holds no role: it is to be redeemed again. Writing it again ends this: the new
    /// redemption depends on the `Found` now held.
    fn redeem_to_renew(&self, policy: &Policy) -> Option<Signed<Invitation>> {
        let state = &policy.state;
        if !state.is_stewarded() {
            return None;
        }
        let me = self.author();
        if state.role_of(state.person_of(me)).is_some() {
            return None;
        }
        // Only our latest redemption counts, so a renewed one that is ignored for another
        // reason (used up) is not renewed again.
        let latest = state
            .log()
            .iter()
            .rev()
            .find(|e| e.author == me && matches!(e.op.action, CharterAction::Redeem { .. }))?;
        match (&latest.op.action, latest.outcome) {
            (
                CharterAction::Redeem { invitation },
                Outcome::Ignored(hedgerow_protocol::charter::IgnoreReason::NotStewarded),
            ) => Some(invitation.clone()),
            _ => None,
        }
    }

    /// How many stored changes of `id` its commons' charter refuses now (0 for a charter or
    /// an open commons).
    pub(crate) fn inadmissible(
        &mut self,
        id: &DocId,
        genesis: &Signed<DocGenesis>,
    ) -> Result<usize, NodeError> {
        if genesis.body.kind == DocKind::Charter {
            return Ok(0);
        }
        let Some(policy) = self.charter_state(&genesis.body.commons)? else {
            return Ok(0);
        };
        let mut refused = 0;
        for (_, bytes, record) in self.store().changes(id)? {
            let (Some(record), Ok(change)) =
                (record, hedgerow_protocol::compact::decode_change(&bytes))
            else {
                continue;
            };
            if policy
                .admit(&admit_input(id, &genesis.body, record.author, &change))
                .is_err()
            {
                refused += 1;
            }
        }
        Ok(refused)
    }

    /// Re-admits one document under its commons' charter as it stands (`verify --rebuild`).
    pub(crate) fn readmit_doc(&mut self, id: &DocId) -> Result<(), NodeError> {
        let Some(genesis) = self.store().doc_genesis(id)? else {
            return Ok(());
        };
        let Some(policy) = self.charter_state(&genesis.body.commons)? else {
            return Ok(());
        };
        self.readmit(id, genesis, &policy)
    }

    /// Re-admits one document's stored changes under `policy`; rebuilds it without the
    /// refused ones (and what builds on them) when there are any.
    fn readmit(
        &mut self,
        id: &DocId,
        genesis: Signed<DocGenesis>,
        policy: &Arc<Policy>,
    ) -> Result<(), NodeError> {
        let stored = self.store().changes(id)?;
        let mut refused: BTreeSet<[u8; 32]> = BTreeSet::new();
        let mut parsed = Vec::with_capacity(stored.len());
        for (hash, bytes, record) in &stored {
            let Ok(change) = hedgerow_protocol::compact::decode_change(bytes) else {
                continue;
            };
            if let Some(record) = record {
                let input = admit_input(id, &genesis.body, record.author, &change);
                if policy.admit(&input).is_err() {
                    refused.insert(*hash);
                }
            }
            parsed.push(change);
        }
        if refused.is_empty() {
            return Ok(());
        }
        // Whatever builds on a refused change goes with it.
        loop {
            let before = refused.len();
            for change in &parsed {
                if change.deps().iter().any(|d| refused.contains(&d.0)) {
                    refused.insert(change.hash().0);
                }
            }
            if refused.len() == before {
                break;
            }
        }
        let keep: Vec<_> = stored
            .into_iter()
            .filter(|(hash, _, _)| !refused.contains(hash))
            .collect();
        tracing::info!(
            "document {id}: {} change(s) refused under the new charter leave it",
            refused.len()
        );
        self.forget(id);
        if keep.is_empty() {
            // Nothing of it was admissible: the document goes.
            self.store().remove_doc(id, &genesis.body.commons)?;
            return Ok(());
        }
        self.store()
            .drop_changes(id, &refused.iter().copied().collect::<Vec<_>>())?;
        // A change whose only signature came with a dropped one (a compact payload signs each
        // author's latest change) is no longer proven: it goes too, with what builds on it,
        // and comes back signed from a node that holds it without the dropped ones.
        for _ in 0..=keep.len() {
            match self.rebuild(id, genesis.clone()) {
                Ok(replica) => {
                    let summary = crate::replicas::summarize(&replica);
                    self.store()
                        .write_caches(id, &replica.doc().save(), &summary)?;
                    return Ok(());
                }
                Err(NodeError::Rejected(Rejection::Uncovered { hash })) => {
                    let Ok(bytes) = hex::decode(&hash) else { break };
                    let Ok(uncovered) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                        break;
                    };
                    let mut gone = BTreeSet::from([uncovered]);
                    let stored: Vec<_> = self
                        .store()
                        .changes(id)?
                        .into_iter()
                        .filter_map(|(h, bytes, _)| {
                            hedgerow_protocol::compact::decode_change(&bytes)
                                .ok()
                                .map(|c| (h, c))
                        })
                        .collect();
                    loop {
                        let before = gone.len();
                        for (h, change) in &stored {
                            if change.deps().iter().any(|d| gone.contains(&d.0)) {
                                gone.insert(*h);
                            }
                        }
                        if gone.len() == before {
                            break;
                        }
                    }
                    *self
                        .refusals
                        .entry(hedgerow_protocol::replica::HELD.into())
                        .or_insert(0) += gone.len() as u64;
                    self.store()
                        .drop_changes(id, &gone.into_iter().collect::<Vec<_>>())?;
                    if self.store().changes(id)?.is_empty() {
                        self.store().remove_doc(id, &genesis.body.commons)?;
                        return Ok(());
                    }
                }
                Err(e) => {
                    tracing::warn!("document {id} does not rebuild after re-admission: {e}");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Refuses a local write this device's person may not make in a stewarded commons,
    /// before anything is written.
    pub(crate) fn check_local_write(
        &mut self,
        genesis: &DocGenesis,
        next_seq: u64,
    ) -> Result<(), NodeError> {
        let Some(policy) = self.charter_state(&genesis.commons)? else {
            return Ok(());
        };
        let id = genesis.id();
        let author = self.author();
        let actor = actor_for_install(&author, &id, &self.key().install());
        let input = AdmitInput {
            doc: id,
            kind: genesis.kind,
            doc_creator: genesis.creator,
            device: author,
            actor: actor.to_bytes().to_vec(),
            seq: next_seq,
            creates_doc: next_seq == 1 && genesis.creator == author,
        };
        policy.admit(&input).map_err(|refused| {
            NodeError::Community(CommunityError::NotAllowed {
                commons: genesis.commons,
                refusal: format!("{} ({})", refused.reason, refused.kind),
            })
        })
    }

    /// The next sequence number this device writes `replica` with.
    pub(crate) fn next_seq(&self, replica: &DocReplica) -> u64 {
        let actor = actor_for_install(&self.author(), &replica.id(), &self.key().install());
        replica.clock().get(&actor).copied().unwrap_or(0) + 1
    }

    /// Fails when `doc` is hidden by a steward of its commons.
    pub fn check_not_hidden(&mut self, doc: &DocId) -> Result<(), NodeError> {
        let Some(genesis) = self.store().doc_genesis(doc)? else {
            return Ok(());
        };
        let Some(policy) = self.charter_state(&genesis.body.commons)? else {
            return Ok(());
        };
        let Some(reason) = policy.state.hidden().get(doc) else {
            return Ok(());
        };
        let by = policy
            .state
            .log()
            .iter()
            .rev()
            .find(|e| {
                e.outcome == Outcome::Applied
                    && matches!(&e.op.action, CharterAction::Hide { doc: d, .. } if d == doc)
            })
            .map(|e| e.person)
            .unwrap_or(genesis.body.creator);
        Err(CommunityError::Hidden {
            doc: *doc,
            by,
            reason: reason.clone(),
        }
        .into())
    }

    /// Whether `doc` of `commons` is hidden by a steward (not listed, shown or served).
    pub fn is_hidden(&mut self, commons: &CommonsId, doc: &DocId) -> bool {
        matches!(self.charter_state(commons), Ok(Some(p)) if p.state.hidden().contains_key(doc))
    }

    // ---- writing charter operations ----

    /// The charter document of `commons`, made (deterministic, unsigned) if absent.
    fn charter_replica(&mut self, commons: &CommonsId) -> Result<DocId, NodeError> {
        let genesis = self
            .store()
            .commons(commons)?
            .ok_or_else(|| NodeError::UnknownCommons(commons.to_string()))?;
        let charter = DocGenesis::unsigned_charter(*commons, genesis.body.creator);
        let id = charter.body.id();
        if self.store().doc_genesis(&id)?.is_none() && !self.cache.contains_key(&id) {
            let replica = DocReplica::new(charter)?;
            self.cache_replica(id, replica);
        }
        Ok(id)
    }

    /// Writes one charter operation as this device, publishes it, and re-admits the commons.
    pub fn write_charter_op(
        &mut self,
        commons: &CommonsId,
        action: CharterAction,
    ) -> Result<ChangeHash, NodeError> {
        let id = self.charter_replica(commons)?;
        let op = CharterOp {
            commons: *commons,
            at: now_unix(),
            action,
        };
        let key = hedgerow_protocol::DeviceKey::from_secret(self.key().secret_bytes())
            .with_install(self.key().install());
        let new_doc = self.store().doc_genesis(&id)?.is_none();
        let replica = self.replica_mut(&id)?;
        let (envelope, accepted) = match replica.charter_change(&key, op.at, op.to_message()) {
            Ok(made) => made,
            Err(Rejection::NotAdmitted { refused, .. }) => {
                if new_doc {
                    self.forget(&id);
                }
                return Err(CommunityError::NotAllowed {
                    commons: *commons,
                    refusal: format!("{} ({})", refused.reason, refused.kind),
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        let hash = accepted.hash;
        let genesis = replica.genesis().clone();
        self.persist_charter(&id, &[accepted])?;
        self.queue_outgoing(LiveChange {
            genesis: Some(genesis),
            envelope,
        });
        self.charter_changed(*commons)?;
        Ok(hash)
    }

    /// The evaluated state of a stewarded commons, or why not.
    fn stewarded(&mut self, commons: &CommonsId) -> Result<Arc<Policy>, NodeError> {
        match self.charter_state(commons)? {
            Some(policy) if policy.state.is_stewarded() => Ok(policy),
            Some(policy)
                if policy
                    .state
                    .log()
                    .iter()
                    .any(|e| matches!(e.op.action, CharterAction::Redeem { .. })) =>
            {
                Err(CommunityError::CharterNotReceived(*commons).into())
            }
            _ => Err(CommunityError::NotStewarded(*commons).into()),
        }
    }

    /// Checks that this device's person holds at least `role` in a stewarded commons.
    fn require_role(&mut self, commons: &CommonsId, role: Role) -> Result<Arc<Policy>, NodeError> {
        let policy = self.stewarded(commons)?;
        let me = policy.state.person_of(self.author());
        if policy.state.role_of(me) < Some(role) {
            let held = policy
                .state
                .role_of(me)
                .map_or("not a member".to_string(), |r| format!("a {r}"));
            return Err(CommunityError::NotAllowed {
                commons: *commons,
                refusal: format!("this needs a {role}, and you are {held}"),
            }
            .into());
        }
        Ok(policy)
    }

    /// Resolves a person (author key or unique prefix) among those the commons knows:
    /// members, certified devices and every author with a profile there.
    pub fn resolve_person(
        &mut self,
        commons: &CommonsId,
        given: &str,
    ) -> Result<AuthorKey, NodeError> {
        let text = given.trim();
        if let Ok(key) = text.parse::<AuthorKey>() {
            return Ok(key);
        }
        let mut known: BTreeSet<AuthorKey> = BTreeSet::new();
        if let Some(policy) = self.charter_state(commons)? {
            known.extend(policy.state.members().into_iter().map(|(p, _)| p));
        }
        for id in self.store().doc_ids(commons)? {
            if let Some(g) = self.store().doc_genesis(&id)? {
                if g.body.kind == DocKind::Profile {
                    known.insert(g.body.creator);
                }
            }
        }
        let unknown = || CommunityError::UnknownPerson {
            commons: *commons,
            given: text.chars().take(60).collect(),
        };
        // A person is also named by their profile's name in this commons.
        let mut candidates = Vec::new();
        for key in known {
            let profile = DocGenesis::profile(*commons, key).id();
            let name = self.store().summary(&profile)?.map(|s| s.title);
            candidates.push(crate::resolve::Candidate { id: key, name });
        }
        use crate::resolve::Pick;
        match crate::resolve::pick(text, &candidates) {
            Pick::One(key) => Ok(key),
            Pick::Nothing | Pick::TooShort => Err(unknown().into()),
            Pick::Several(several) => Err(CommunityError::AmbiguousPerson {
                given: text.chars().take(60).collect(),
                candidates: crate::resolve::describe(&several),
            }
            .into()),
        }
    }

    /// Every (actor, highest seq) of `person`'s devices' changes in `commons`, as this node
    /// holds them: the frontier a reduction names.
    pub fn frontier_of(
        &mut self,
        commons: &CommonsId,
        person: AuthorKey,
    ) -> Result<Frontier, NodeError> {
        let devices: BTreeSet<AuthorKey> = match self.charter_state(commons)? {
            Some(p) => {
                let mut d: BTreeSet<AuthorKey> = p.state.devices_of(person).into_iter().collect();
                d.insert(person);
                d
            }
            None => BTreeSet::from([person]),
        };
        let mut highest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for id in self.store().doc_ids(commons)? {
            for (_, bytes, record) in self.store().changes(&id)? {
                let Some(record) = record else { continue };
                if !devices.contains(&record.author) {
                    continue;
                }
                let Ok(change) = hedgerow_protocol::compact::decode_change(&bytes) else {
                    continue;
                };
                let entry = highest
                    .entry(change.actor_id().to_bytes().to_vec())
                    .or_insert(0);
                *entry = (*entry).max(change.seq());
            }
        }
        Ok(Frontier(highest.into_iter().collect()).normalized())
    }

    /// `commons create --stewarded`: a commons whose charter is founded at once.
    pub fn create_stewarded(
        &mut self,
        name: &str,
        description: &str,
        private: bool,
    ) -> Result<CommonsId, NodeError> {
        // `Found` before anything else is written in it, then the founder's profile.
        let id = self.new_commons(name, description)?;
        self.write_charter_op(&id, CharterAction::Found { private })?;
        self.ensure_profile(id)?;
        Ok(id)
    }

    /// `commons invite`: a signed invitation code for `commons`.
    pub fn invite(
        &mut self,
        commons: &CommonsId,
        role: Role,
        uses: u32,
        expires_in: i64,
    ) -> Result<(String, i64), NodeError> {
        if uses == 0 {
            return Err(CommunityError::NoUses.into());
        }
        let policy = self.stewarded(commons)?;
        let me = policy.state.person_of(self.author());
        let held = policy.state.role_of(me);
        if !held.is_some_and(|h| h.may_grant(role)) {
            return Err(CommunityError::CannotGrant {
                role,
                held: held.map_or("a non-member".into(), |h| format!("a {h}")),
            }
            .into());
        }
        let genesis = self
            .store()
            .commons(commons)?
            .ok_or_else(|| NodeError::UnknownCommons(commons.to_string()))?;
        let expires_at = now_unix().saturating_add(expires_in);
        let invitation = Invitation {
            commons: *commons,
            issuer: self.author(),
            role,
            uses,
            expires_at,
            nonce: random_nonce(),
        }
        .sign(self.key());
        let code = InvitationCode {
            invitation,
            genesis,
        };
        Ok((code.to_code(), expires_at))
    }

    /// `commons accept`: adds the commons of the code if absent, records it wanted, and
    /// writes a `Redeem` into its charter; works offline.
    pub fn accept(&mut self, code: &str) -> Result<(CommonsId, Role), NodeError> {
        let code =
            InvitationCode::parse(code).map_err(|e| CommunityError::BadCode(e.to_string()))?;
        let invitation = &code.invitation.body;
        if now_unix() > invitation.expires_at {
            return Err(CommunityError::InvitationExpired {
                expires_at: invitation.expires_at,
            }
            .into());
        }
        let commons = invitation.commons;
        let role = invitation.role;
        let held = self.holds(&commons)?;
        if invitation.issuer != code.genesis.body.creator {
            let known = held && self.charter_state(&commons)?.is_some();
            if !known {
                return Err(CommunityError::NeedCharter {
                    issuer: invitation.issuer,
                }
                .into());
            }
        }
        if held {
            if let Some(policy) = self.charter_state(&commons)? {
                // Used up by the redemptions this node holds: refused before anything is written.
                let id = invitation.id();
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
                    return Err(CommunityError::InvitationUsedUp.into());
                }
            }
        } else {
            self.hold_commons(&code.genesis)?;
        }
        let redeem = CharterAction::Redeem {
            invitation: code.invitation.clone(),
        };
        if let Err(e) = self.write_charter_op(&commons, redeem) {
            if !held {
                // Nothing of a commons we could not join stays.
                self.store().remove_commons(&commons)?;
            }
            return Err(match e {
                NodeError::Community(CommunityError::NotAllowed { refusal, .. })
                    if refusal.contains(Refusal::InvitationUsedUp.kind()) =>
                {
                    CommunityError::InvitationUsedUp.into()
                }
                other => other,
            });
        }
        // Used up by earlier redemptions this node holds: the replay ignored ours.
        if let Some(policy) = self.charter_state(&commons)? {
            let me = policy.state.person_of(self.author());
            if policy.state.is_stewarded() && policy.state.role_of(me).is_none() {
                return Err(CommunityError::InvitationUsedUp.into());
            }
        }
        // Wanted until a peer or a bundle brings the rest of the commons (its charter).
        let arrived = self
            .charter_state(&commons)?
            .is_some_and(|p| p.state.is_stewarded());
        if !arrived {
            self.store().want_commons(&commons)?;
        }
        self.join_commons(&code.genesis)?;
        Ok((commons, role))
    }

    /// `commons members`: each member with their role and devices.
    pub fn members(&mut self, commons: &CommonsId) -> Result<Vec<Member>, NodeError> {
        let policy = self.stewarded(commons)?;
        let mut out = Vec::new();
        for (person, role) in policy.state.members() {
            let mut devices = policy.state.devices_of(person);
            if devices.is_empty() {
                devices.push(person);
            }
            out.push(Member {
                person,
                name: self.author_name(*commons, &person).unwrap_or_default(),
                role,
                devices,
            });
        }
        Ok(out)
    }

    /// `commons role PERSON ROLE`: adds a person or changes their role (a lowering names the
    /// frontier of their changes this node holds).
    pub fn set_role(
        &mut self,
        commons: &CommonsId,
        person: &str,
        role: Role,
    ) -> Result<CharterChanged, NodeError> {
        let policy = self.require_role(commons, Role::Member)?;
        let person = self.resolve_person(commons, person)?;
        let current = policy.state.role_of(person);
        let action = match current {
            None => CharterAction::Add { person, role },
            Some(held) => {
                if held == Role::Steward
                    && role < Role::Steward
                    && policy.state.steward_count() <= 1
                {
                    return Err(CommunityError::LastSteward(person).into());
                }
                CharterAction::SetRole {
                    person,
                    role,
                    frontier: self.frontier_of(commons, person)?,
                }
            }
        };
        let change = self.write_charter_op(commons, action)?;
        Ok(CharterChanged {
            id: None,
            person: Some(person),
            role: Some(role),
            change: change.to_string(),
        })
    }

    /// `commons remove PERSON`.
    pub fn remove_member(
        &mut self,
        commons: &CommonsId,
        person: &str,
    ) -> Result<CharterChanged, NodeError> {
        let policy = self.require_role(commons, Role::Steward)?;
        let person = self.resolve_person(commons, person)?;
        match policy.state.role_of(person) {
            None => return Err(CommunityError::NotAMember(person).into()),
            Some(Role::Steward) if policy.state.steward_count() <= 1 => {
                return Err(CommunityError::LastSteward(person).into())
            }
            Some(_) => {}
        }
        let frontier = self.frontier_of(commons, person)?;
        let change = self.write_charter_op(commons, CharterAction::Remove { person, frontier })?;
        Ok(CharterChanged {
            id: None,
            person: Some(person),
            role: None,
            change: change.to_string(),
        })
    }

    /// `moderate hide|unhide ID`.
    pub fn moderate_doc(
        &mut self,
        doc: &str,
        hide: Option<String>,
    ) -> Result<CharterChanged, NodeError> {
        let id = self.resolve_doc(doc, None)?;
        let commons = self
            .store()
            .doc_genesis(&id)?
            .map(|g| g.body.commons)
            .ok_or_else(|| NodeError::UnknownDoc {
                what: "document",
                id: doc.to_string(),
            })?;
        self.require_role(&commons, Role::Steward)?;
        let action = match hide {
            Some(reason) => CharterAction::Hide { doc: id, reason },
            None => CharterAction::Unhide { doc: id },
        };
        let change = self.write_charter_op(&commons, action)?;
        Ok(CharterChanged {
            id: Some(id),
            person: None,
            role: None,
            change: change.to_string(),
        })
    }

    /// `moderate block|unblock PERSON`.
    pub fn moderate_person(
        &mut self,
        commons: &CommonsId,
        person: &str,
        block: bool,
    ) -> Result<CharterChanged, NodeError> {
        self.require_role(commons, Role::Steward)?;
        let person = self.resolve_person(commons, person)?;
        let action = if block {
            CharterAction::Block {
                person,
                frontier: self.frontier_of(commons, person)?,
            }
        } else {
            CharterAction::Unblock { person }
        };
        let change = self.write_charter_op(commons, action)?;
        Ok(CharterChanged {
            id: None,
            person: Some(person),
            role: None,
            change: change.to_string(),
        })
    }

    /// `moderate log`: every charter operation in replay order, with what became of it.
    pub fn moderation_log(&mut self, commons: &CommonsId) -> Result<Vec<LogLine>, NodeError> {
        let Some(policy) = self.charter_state(commons)? else {
            return Ok(Vec::new());
        };
        let mut lines: Vec<LogLine> = policy
            .state
            .log()
            .iter()
            .map(|e| LogLine {
                hash: hex::encode(e.hash),
                action: e.op.action.name().to_string(),
                author: e.author.to_string(),
                person: e.person.to_string(),
                person_name: None,
                at: e.op.at,
                outcome: match e.outcome {
                    Outcome::Applied => "applied".into(),
                    Outcome::Ignored(reason) => reason.kind().into(),
                },
                detail: detail(&e.op.action),
            })
            .collect();
        for line in &mut lines {
            if let Ok(person) = line.person.parse::<AuthorKey>() {
                line.person_name = self.author_name(*commons, &person);
            }
        }
        Ok(lines)
    }
}

/// Whether `after` may refuse a change `before` admitted: it became stewarded, someone lost
/// a role (or holds a lower one), or a block or revocation was added or changed.
fn narrows(before: &CharterState, after: &CharterState) -> bool {
    if after.is_stewarded() && !before.is_stewarded() {
        return true;
    }
    let roles: BTreeMap<AuthorKey, Role> = after.members().into_iter().collect();
    let lost = before
        .members()
        .into_iter()
        .any(|(person, role)| roles.get(&person).is_none_or(|now| *now < role));
    let blocked_more = after
        .blocked()
        .iter()
        .any(|p| !before.is_blocked(*p) || before.log().len() != after.log().len());
    let revoked_more = after
        .revoked()
        .iter()
        .any(|d| before.revocation(*d) != after.revocation(*d));
    lost || blocked_more || revoked_more
}

/// What admission is told about a stored change of `id` by `author`.
fn admit_input(
    id: &DocId,
    genesis: &DocGenesis,
    author: AuthorKey,
    change: &hedgerow_protocol::automerge::Change,
) -> AdmitInput {
    AdmitInput {
        doc: *id,
        kind: genesis.kind,
        doc_creator: genesis.creator,
        device: author,
        actor: change.actor_id().to_bytes().to_vec(),
        seq: change.seq(),
        creates_doc: change.seq() == 1
            && author == genesis.creator
            && hedgerow_protocol::envelope::actor_is_bound(change.actor_id(), &author, id),
    }
}

/// What an operation names, for the log.
fn detail(action: &CharterAction) -> String {
    match action {
        CharterAction::Found { private } => {
            if *private {
                "private".into()
            } else {
                String::new()
            }
        }
        CharterAction::Add { person, role } => format!("{person} as {role}"),
        CharterAction::SetRole { person, role, .. } => format!("{person} to {role}"),
        CharterAction::Remove { person, .. }
        | CharterAction::Block { person, .. }
        | CharterAction::Unblock { person } => person.to_string(),
        CharterAction::Redeem { invitation } => format!(
            "{} invitation by {}",
            invitation.body.role, invitation.body.issuer
        ),
        CharterAction::Hide { doc, reason } => format!("{doc}: {reason}"),
        CharterAction::Unhide { doc } | CharterAction::Retract { doc } => doc.to_string(),
        CharterAction::Device { certificate } => {
            format!("{} ({})", certificate.body.device, certificate.body.name)
        }
        CharterAction::RevokeDevice { device, .. } => device.to_string(),
    }
}

/// Runs a community request of the command API.
pub(crate) fn execute(
    replicas: &mut Replicas,
    request: crate::api::Request,
) -> Result<crate::reply::Reply, NodeError> {
    use crate::api::Request;
    use crate::reply::Reply;
    match request {
        Request::CommonsInvite {
            commons,
            role,
            uses,
            expires_in,
        } => {
            let commons = replicas.resolve_commons(commons.as_deref())?;
            let (code, expires_at) = replicas.invite(&commons, role, uses, expires_in)?;
            Ok(Reply::Invited(Invited {
                code,
                role,
                uses,
                expires_at,
            }))
        }
        Request::CommonsAccept { code } => {
            let (commons, role) = replicas.accept(&code)?;
            Ok(Reply::InvitationAccepted(InvitationAccepted {
                commons,
                role,
            }))
        }
        Request::CommonsMembers { commons } => {
            let commons = replicas.resolve_commons(commons.as_deref())?;
            Ok(Reply::Members(replicas.members(&commons)?))
        }
        Request::CommonsRole {
            commons,
            person,
            role,
        } => {
            let commons = replicas.resolve_commons(commons.as_deref())?;
            Ok(Reply::CharterChanged(
                replicas.set_role(&commons, &person, role)?,
            ))
        }
        Request::CommonsRemove { commons, person } => {
            let commons = replicas.resolve_commons(commons.as_deref())?;
            Ok(Reply::CharterChanged(
                replicas.remove_member(&commons, &person)?,
            ))
        }
        Request::ModerateHide { id, reason } => Ok(Reply::CharterChanged(
            replicas.moderate_doc(&id, Some(reason))?,
        )),
        Request::ModerateUnhide { id } => {
            Ok(Reply::CharterChanged(replicas.moderate_doc(&id, None)?))
        }
        Request::ModerateBlock { commons, person } => {
            let commons = replicas.resolve_commons(commons.as_deref())?;
            Ok(Reply::CharterChanged(
                replicas.moderate_person(&commons, &person, true)?,
            ))
        }
        Request::ModerateUnblock { commons, person } => {
            let commons = replicas.resolve_commons(commons.as_deref())?;
            Ok(Reply::CharterChanged(
                replicas.moderate_person(&commons, &person, false)?,
            ))
        }
        Request::ModerateLog { commons } => {
            let commons = replicas.resolve_commons(commons.as_deref())?;
            Ok(Reply::ModerationLog(replicas.moderation_log(&commons)?))
        }
        other => Err(NodeError::Invalid(format!(
            "not a community request: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::ImportChoice;
    use crate::home::{Home, LocalProfile};
    use hedgerow_protocol::schema::{Edit, NewDocument};
    use hedgerow_protocol::sync::SyncSource;

    fn node(dir: &std::path::Path, name: &str) -> Replicas {
        let profile = LocalProfile {
            name: name.into(),
            ..LocalProfile::default()
        };
        Replicas::open(&Home::init(&dir.join(name), &profile).expect("home")).expect("store")
    }

    /// Everything `from` holds, imported into `to` (refusals are reported, not errors here).
    fn carry(from: &mut Replicas, to: &mut Replicas) {
        let (bytes, _) = from.bundle_export(&[], None).expect("export");
        let choice = ImportChoice {
            join: Vec::new(),
            all: true,
        };
        to.bundle_import(&bytes, &choice).expect("import");
    }

    fn whole(doc: &DocId) -> hedgerow_protocol::sync::Want {
        hedgerow_protocol::sync::Want {
            prefix: hedgerow_protocol::sync::id_prefix(doc),
            have_genesis: false,
            clock: Vec::new(),
        }
    }

    fn summary(text: &str) -> Edit {
        Edit::Set {
            field: "summary".into(),
            value: text.into(),
        }
    }

    /// One compact payload carrying a member's change and a non-member's: the member's is
    /// applied, the non-member's refused by kind (and what builds on it held), nothing of
    /// them stored, and the document is the member's alone.
    #[test]
    fn a_mixed_payload_applies_what_the_charter_admits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut alice = node(dir.path(), "alice");
        let commons = alice
            .create_stewarded("Farm Hack", "", false)
            .expect("create");
        let (code, _) = alice
            .invite(&commons, Role::Member, 1, 3600)
            .expect("invite");
        let mut ben = node(dir.path(), "ben");
        ben.accept(&code).expect("accept");
        carry(&mut ben, &mut alice);
        carry(&mut alice, &mut ben);
        carry(&mut ben, &mut alice);
        let design = alice
            .create_doc(commons, &NewDocument::new(DocKind::Design, "Crimper"), &[])
            .expect("design");
        carry(&mut alice, &mut ben);
        // Vic holds the commons and the design but not the charter: to him it looks open.
        let mut vic = node(dir.path(), "vic");
        let genesis = alice
            .store()
            .commons(&commons)
            .expect("read")
            .expect("held");
        vic.hold_commons(&genesis).expect("hold");
        let payload = alice
            .payload(&design, &whole(&design))
            .expect("payload")
            .expect("some");
        vic.ingest_payload(&commons, &payload)
            .expect("vic takes the design");
        vic.edit_doc(&design, &[summary("vandalised")])
            .expect("vic edits");
        let benign = ben
            .edit_doc(&design, &[summary("from Ben")])
            .expect("ben edits");
        let from_ben = ben
            .payload(&design, &whole(&design))
            .expect("payload")
            .expect("some");
        vic.ingest_payload(&commons, &from_ben)
            .expect("vic takes Ben's edit");
        vic.edit_doc(&design, &[summary("on top of Ben")])
            .expect("vic again");
        // Vic's node sends Alice all of it in one payload.
        let payload = vic
            .payload(&design, &whole(&design))
            .expect("payload")
            .expect("some");
        let refused = alice.ingest_payload(&commons, &payload);
        let Err(NodeError::NotAdmitted(report)) = refused else {
            panic!("expected refusals, got {refused:?}");
        };
        assert_eq!(report.stored, 1, "Ben's change is stored: {report}");
        let kinds: Vec<&str> = report
            .refused
            .iter()
            .map(|r| r.refused.kind.as_str())
            .collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert!(kinds.iter().all(|k| *k == "not-a-member"), "{kinds:?}");
        let heads = alice.replica(&design).expect("held").heads();
        assert_eq!(heads, vec![benign.expect("a change")]);
        assert_eq!(alice.store().changes(&design).expect("read").len(), 2);
        let rendered = alice.show(&design, None).expect("show");
        assert_eq!(rendered.fields["summary"], "from Ben");
        assert!(alice.verify(false).expect("verify").is_clean());
    }

    /// A charter genesis must name the commons' creator: one naming anyone else (who would
    /// then found the commons as its "creator") is refused and nothing of it stored.
    #[test]
    fn a_charter_naming_another_creator_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut alice = node(dir.path(), "alice");
        let commons = alice.create_commons("Farm Hack", "").expect("create");
        let vic = node(dir.path(), "vic");
        let forged = DocGenesis::unsigned_charter(commons, vic.author());
        let mut replica = DocReplica::new(forged.clone()).expect("replica");
        let op = CharterOp {
            commons,
            at: 5,
            action: CharterAction::Found { private: false },
        };
        let (_, accepted) = replica
            .charter_change(vic.key(), 5, op.to_message())
            .expect("vic founds his own charter");
        let (changes, proofs) = replica.compact_for(&[accepted.hash]).expect("compact");
        let proofs = proofs.into_iter().map(|(h, p)| (h.0, p)).collect();
        let refused = alice.ingest_compact(Some(&forged), &forged.body.id(), &changes, proofs);
        assert!(matches!(refused, Err(NodeError::Invalid(_))), "{refused:?}");
        assert!(alice
            .store()
            .doc_genesis(&forged.body.id())
            .expect("read")
            .is_none());
        assert!(alice.charter_state(&commons).expect("state").is_none());
    }

    /// A live change (gossip) by a non-member is refused by kind and not stored; a member's
    /// is applied.
    #[test]
    fn live_changes_are_admitted_by_the_charter() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut alice = node(dir.path(), "alice");
        let commons = alice
            .create_stewarded("Farm Hack", "", false)
            .expect("create");
        alice.take_outbox();
        let mut vic = node(dir.path(), "vic");
        let genesis = alice
            .store()
            .commons(&commons)
            .expect("read")
            .expect("held");
        vic.hold_commons(&genesis).expect("hold");
        let spam = vic
            .create_doc(commons, &NewDocument::new(DocKind::Design, "Spam"), &[])
            .expect("open to vic");
        for live in vic.take_outbox() {
            let refused = alice.ingest_live(&live);
            let Err(NodeError::NotAdmitted(report)) = refused else {
                panic!("expected a refusal, got {refused:?}");
            };
            assert_eq!(report.refused[0].refused.kind, "not-a-member");
        }
        assert!(alice.store().doc_genesis(&spam).expect("read").is_none());
        assert_eq!(alice.refusals.get("not-a-member"), Some(&1));
        assert_eq!(alice.held_changes(), 0);
    }

    /// A member's change that builds on a removed member's change beyond the removal's
    /// frontier is held (reported, not stored), and both nodes end with the same document.
    #[test]
    fn a_change_building_on_a_refused_one_is_held() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut alice = node(dir.path(), "alice");
        let commons = alice
            .create_stewarded("Farm Hack", "", false)
            .expect("create");
        let mut ben = node(dir.path(), "ben");
        let mut mal = node(dir.path(), "mal");
        for member in [&mut ben, &mut mal] {
            let (code, _) = alice
                .invite(&commons, Role::Member, 1, 3600)
                .expect("invite");
            member.accept(&code).expect("accept");
        }
        for _ in 0..2 {
            carry(&mut ben, &mut alice);
            carry(&mut mal, &mut alice);
            carry(&mut alice, &mut ben);
            carry(&mut alice, &mut mal);
        }
        let design = alice
            .create_doc(commons, &NewDocument::new(DocKind::Design, "Crimper"), &[])
            .expect("design");
        carry(&mut alice, &mut ben);
        carry(&mut alice, &mut mal);
        mal.edit_doc(&design, &[summary("Mal's")])
            .expect("mal edits");
        carry(&mut mal, &mut ben);
        // Alice removes Mal before she saw that edit; Ben, unaware, builds on it.
        let mal_key = mal.author().to_string();
        alice.remove_member(&commons, &mal_key).expect("remove");
        ben.edit_doc(&design, &[summary("Ben's on Mal's")])
            .expect("ben edits");
        let before = alice.replica(&design).expect("held").heads();
        carry(&mut ben, &mut alice);
        assert_eq!(alice.held_changes(), 1);
        assert_eq!(alice.refusals.get("beyond-frontier"), Some(&1));
        assert_eq!(alice.replica(&design).expect("held").heads(), before);
        // Ben's node learns of the removal and ends with Alice's document.
        carry(&mut alice, &mut ben);
        assert_eq!(ben.replica(&design).expect("held").heads(), before);
        assert!(ben.verify(false).expect("verify").is_clean());
        assert!(alice.verify(false).expect("verify").is_clean());
    }
}
