//! Linearize and replay a charter's operations into a [`CharterState`].

use super::{CharterAction, CharterOp, CharterScope, Frontier, OpRecord, Role};
use crate::genesis::DocId;
use crate::identity::AuthorKey;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

/// Most operations a charter may hold; the replay ignores any beyond (`charter-full`) and the
/// gate refuses new ones, so evaluation work stays bounded.
pub const MAX_CHARTER_OPS: usize = 100_000;

/// Why the replay (or the gate) did not let an operation take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IgnoreReason {
    /// The operation names another commons.
    WrongCommons,
    /// The operation needs a stewarded commons (no `Found` has taken effect).
    NotStewarded,
    /// `Found` by someone other than the commons creator.
    NotTheCreator,
    /// A second `Found`.
    AlreadyFounded,
    /// The author's person holds no role.
    NotAMember,
    /// The author's person is not a Steward.
    NotASteward,
    /// A Member tried to add someone as more than a Guest.
    MemberMayAddGuestsOnly,
    /// The target person holds no role.
    NoSuchMember,
    /// The operation would leave the commons without a Steward.
    LastSteward,
    /// A Steward cannot be blocked (remove or demote them first).
    CannotBlockASteward,
    /// The invitation's signature does not verify.
    InvitationForged,
    /// The invitation is for another commons.
    InvitationWrongCommons,
    /// The redemption claims a time after the invitation's expiry.
    InvitationExpired,
    /// The invitation's uses have all been redeemed.
    InvitationUsedUp,
    /// The invitation's issuer may not (or no longer) grant its role.
    IssuerCannotGrant,
    /// The device certificate does not verify.
    CertificateForged,
    /// The author is neither the device nor a device of its person.
    NotTheDevicesPerson,
    /// The device is already certified to another person.
    DeviceTaken,
    /// A person's device (not the device itself) certified a key that already acts on its own in
    /// this charter: it holds a role, wrote an operation, has devices, or is the creator.
    DeviceNotFresh,
    /// The certifying person is itself a certified device of someone else.
    PersonIsADevice,
    /// The device was already revoked.
    AlreadyRevoked,
    /// The author device was revoked earlier.
    DeviceRevoked,
    /// The author's person is blocked.
    AuthorBlocked,
    /// The operation depends on an operation that is not in the charter.
    MissingDependency,
    /// The charter already holds [`MAX_CHARTER_OPS`] operations.
    CharterFull,
}

impl IgnoreReason {
    /// The reason's name, for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            IgnoreReason::WrongCommons => "wrong-commons",
            IgnoreReason::NotStewarded => "not-stewarded",
            IgnoreReason::NotTheCreator => "not-the-creator",
            IgnoreReason::AlreadyFounded => "already-founded",
            IgnoreReason::NotAMember => "not-a-member",
            IgnoreReason::NotASteward => "not-a-steward",
            IgnoreReason::MemberMayAddGuestsOnly => "member-may-add-guests-only",
            IgnoreReason::NoSuchMember => "no-such-member",
            IgnoreReason::LastSteward => "last-steward",
            IgnoreReason::CannotBlockASteward => "cannot-block-a-steward",
            IgnoreReason::InvitationForged => "invitation-forged",
            IgnoreReason::InvitationWrongCommons => "invitation-wrong-commons",
            IgnoreReason::InvitationExpired => "invitation-expired",
            IgnoreReason::InvitationUsedUp => "invitation-used-up",
            IgnoreReason::IssuerCannotGrant => "issuer-cannot-grant",
            IgnoreReason::CertificateForged => "certificate-forged",
            IgnoreReason::NotTheDevicesPerson => "not-the-devices-person",
            IgnoreReason::DeviceTaken => "device-taken",
            IgnoreReason::DeviceNotFresh => "device-not-fresh",
            IgnoreReason::PersonIsADevice => "person-is-a-device",
            IgnoreReason::AlreadyRevoked => "already-revoked",
            IgnoreReason::DeviceRevoked => "device-revoked",
            IgnoreReason::AuthorBlocked => "author-blocked",
            IgnoreReason::MissingDependency => "missing-dependency",
            IgnoreReason::CharterFull => "charter-full",
        }
    }
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// What the replay did with one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect.
    Applied,
    /// It was ignored, and why.
    Ignored(IgnoreReason),
}

/// One line of the moderation log: an operation, who wrote it, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The operation's id (its change hash).
    pub hash: [u8; 32],
    /// The device that signed it.
    pub author: AuthorKey,
    /// The author's person when it was replayed.
    pub person: AuthorKey,
    /// The operation.
    pub op: CharterOp,
    /// Whether it took effect.
    pub outcome: Outcome,
}

/// A lowering of a person's role: their changes up to `frontier` keep the role held `before`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reduction {
    pub(crate) frontier: Frontier,
    pub(crate) before: Role,
}

/// A certified device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Certified {
    pub(crate) person: AuthorKey,
    pub(crate) name: String,
}

/// Whether a check runs inside the replay (authority and effect) or in the gate (authority only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Replay,
    Gate,
}

/// The result of replaying one charter: roles, devices, moderation and the log of every operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharterState {
    pub(crate) scope: CharterScope,
    pub(crate) stewarded: bool,
    pub(crate) private: bool,
    pub(crate) roles: BTreeMap<AuthorKey, Role>,
    pub(crate) stewards: usize,
    pub(crate) reductions: BTreeMap<AuthorKey, Vec<Reduction>>,
    pub(crate) devices: BTreeMap<AuthorKey, Certified>,
    /// The devices certified to each person (the reverse of `devices`).
    pub(crate) devices_by_person: BTreeMap<AuthorKey, BTreeSet<AuthorKey>>,
    pub(crate) revoked: BTreeMap<AuthorKey, Frontier>,
    pub(crate) hidden: BTreeMap<DocId, String>,
    pub(crate) blocked: BTreeMap<AuthorKey, Frontier>,
    /// Per document, every person who claimed to retract it (the node keeps the creator's claim).
    pub(crate) retracted: BTreeMap<DocId, BTreeSet<AuthorKey>>,
    pub(crate) redeemed: BTreeMap<[u8; 32], u32>,
    /// Every device that wrote an operation replayed so far.
    pub(crate) authors: BTreeSet<AuthorKey>,
    pub(crate) log: Vec<LogEntry>,
    /// Whether the log is kept (the gate replays without one, so its states stay small).
    pub(crate) logging: bool,
    /// Operations replayed or ignored so far.
    pub(crate) ops: usize,
}

impl CharterState {
    /// The state of a charter with no operations: an open commons.
    pub fn empty(scope: impl Into<CharterScope>) -> CharterState {
        CharterState {
            scope: scope.into(),
            stewarded: false,
            private: false,
            roles: BTreeMap::new(),
            stewards: 0,
            reductions: BTreeMap::new(),
            devices: BTreeMap::new(),
            devices_by_person: BTreeMap::new(),
            revoked: BTreeMap::new(),
            hidden: BTreeMap::new(),
            blocked: BTreeMap::new(),
            retracted: BTreeMap::new(),
            redeemed: BTreeMap::new(),
            authors: BTreeSet::new(),
            log: Vec::new(),
            logging: true,
            ops: 0,
        }
    }

    /// Evaluates a charter: linearizes `records` and replays them (see the module documentation).
    ///
    /// `scope` is the commons (its genesis, or a [`CharterScope`]). The result depends only on
    /// the set of records, not on their order or duplicates.
    pub fn evaluate(scope: impl Into<CharterScope>, records: &[OpRecord]) -> CharterState {
        Self::evaluate_with(scope.into(), records, true)
    }

    /// [`evaluate`](Self::evaluate), keeping the log or not.
    pub(crate) fn evaluate_with(
        scope: CharterScope,
        records: &[OpRecord],
        logging: bool,
    ) -> CharterState {
        let mut state = CharterState::empty(scope);
        state.logging = logging;
        let (order, stuck) = linearize(records);
        for record in order {
            state.replay(record);
        }
        for record in stuck {
            state.record(record, Outcome::Ignored(IgnoreReason::MissingDependency));
        }
        state
    }

    /// Replays one record on top of the state (the next one in linear order).
    pub(crate) fn replay(&mut self, record: &OpRecord) {
        let person = self.person_of(record.author);
        if self.ops >= MAX_CHARTER_OPS {
            self.record_as(record, person, Outcome::Ignored(IgnoreReason::CharterFull));
            return;
        }
        let outcome = match self.check(record, Mode::Replay) {
            Ok(()) => {
                self.apply(record);
                Outcome::Applied
            }
            Err(reason) => Outcome::Ignored(reason),
        };
        self.record_as(record, person, outcome);
    }

    fn record(&mut self, record: &OpRecord, outcome: Outcome) {
        self.record_as(record, self.person_of(record.author), outcome);
    }

    fn record_as(&mut self, record: &OpRecord, person: AuthorKey, outcome: Outcome) {
        self.authors.insert(record.author);
        self.ops += 1;
        if !self.logging {
            return;
        }
        self.log.push(LogEntry {
            hash: record.hash,
            author: record.author,
            person,
            op: record.op.clone(),
            outcome,
        });
    }

    /// Whether `record`'s author holds the authority for it in this state. In `Mode::Replay` it
    /// also checks the conditions for the operation to take effect (uses, last steward, ...).
    pub(crate) fn check(&self, record: &OpRecord, mode: Mode) -> Result<(), IgnoreReason> {
        let op = &record.op;
        if op.commons != self.scope.commons {
            return Err(IgnoreReason::WrongCommons);
        }
        if self.revoked.contains_key(&record.author) {
            return Err(IgnoreReason::DeviceRevoked);
        }
        let person = self.person_of(record.author);
        let revoking = matches!(op.action, CharterAction::RevokeDevice { .. });
        if self.blocked.contains_key(&person) && !revoking {
            return Err(IgnoreReason::AuthorBlocked);
        }
        let replay = mode == Mode::Replay;
        let role = self.role_of(person);
        match &op.action {
            CharterAction::Found { .. } => {
                if person != self.scope.creator {
                    return Err(IgnoreReason::NotTheCreator);
                }
                if replay && self.stewarded {
                    return Err(IgnoreReason::AlreadyFounded);
                }
            }
            CharterAction::Add { role: granted, .. } => {
                self.need_stewarded()?;
                match role {
                    None => return Err(IgnoreReason::NotAMember),
                    Some(Role::Steward) => {}
                    Some(Role::Member) if *granted == Role::Guest => {}
                    Some(Role::Member) => return Err(IgnoreReason::MemberMayAddGuestsOnly),
                    Some(Role::Guest) => return Err(IgnoreReason::NotASteward),
                }
            }
            CharterAction::SetRole {
                person: target,
                role: new,
                ..
            } => {
                self.need_steward(role)?;
                let current = self.role_of(*target);
                if replay && current == Some(Role::Steward) && *new < Role::Steward {
                    self.spare_last_steward()?;
                }
            }
            CharterAction::Remove { person: target, .. } => {
                self.need_steward(role)?;
                if replay {
                    match self.role_of(*target) {
                        None => return Err(IgnoreReason::NoSuchMember),
                        Some(Role::Steward) => self.spare_last_steward()?,
                        Some(_) => {}
                    }
                }
            }
            CharterAction::Redeem { invitation } => {
                if replay {
                    self.need_stewarded()?;
                }
                invitation
                    .verify()
                    .map_err(|_| IgnoreReason::InvitationForged)?;
                let body = &invitation.body;
                if body.commons != self.scope.commons {
                    return Err(IgnoreReason::InvitationWrongCommons);
                }
                if op.at > body.expires_at {
                    return Err(IgnoreReason::InvitationExpired);
                }
                let issuer = self.person_of(body.issuer);
                let may_grant = self.role_of(issuer).is_some_and(|r| r.may_grant(body.role));
                // The gate lets the creator's invitations in with no charter in the causal past,
                // so a newcomer can redeem one; the replay still needs the creator to be a Steward.
                let creator_in_gate = mode == Mode::Gate && issuer == self.scope.creator;
                if !may_grant && !creator_in_gate {
                    return Err(IgnoreReason::IssuerCannotGrant);
                }
                if replay && self.redeemed.get(&body.id()).copied().unwrap_or(0) >= body.uses {
                    return Err(IgnoreReason::InvitationUsedUp);
                }
            }
            CharterAction::Hide { .. }
            | CharterAction::Unhide { .. }
            | CharterAction::Unblock { .. } => self.need_steward(role)?,
            CharterAction::Block { person: target, .. } => {
                self.need_steward(role)?;
                if replay && self.role_of(*target) == Some(Role::Steward) {
                    return Err(IgnoreReason::CannotBlockASteward);
                }
            }
            CharterAction::Device { certificate } => {
                certificate
                    .verify()
                    .map_err(|_| IgnoreReason::CertificateForged)?;
                let cert = &certificate.body;
                if record.author != cert.device && person != cert.person {
                    return Err(IgnoreReason::NotTheDevicesPerson);
                }
                if self.person_of(cert.person) != cert.person {
                    return Err(IgnoreReason::PersonIsADevice);
                }
                // Without the device's own signature on the change, a person could claim anyone's
                // key as their device (and then revoke it); so they may only certify a key that has
                // not acted on its own here yet, as a freshly linked device has not.
                let renewal = self
                    .devices
                    .get(&cert.device)
                    .is_some_and(|c| c.person == cert.person);
                if record.author != cert.device && !renewal && !self.is_fresh(cert.device) {
                    return Err(IgnoreReason::DeviceNotFresh);
                }
                if replay {
                    if let Some(existing) = self.devices.get(&cert.device) {
                        if existing.person != cert.person {
                            return Err(IgnoreReason::DeviceTaken);
                        }
                    }
                } else if self.stewarded && self.role_of(cert.person).is_none() {
                    return Err(IgnoreReason::NotAMember);
                }
            }
            CharterAction::RevokeDevice { device, .. } => {
                if self.person_of(*device) != person {
                    return Err(IgnoreReason::NotTheDevicesPerson);
                }
                if replay && self.revoked.contains_key(device) {
                    return Err(IgnoreReason::AlreadyRevoked);
                }
                if !replay && self.stewarded && role.is_none() {
                    return Err(IgnoreReason::NotAMember);
                }
            }
            CharterAction::Retract { .. } => {
                if self.stewarded && role.is_none() {
                    return Err(IgnoreReason::NotAMember);
                }
            }
        }
        Ok(())
    }

    /// Whether `key` has not acted on its own in this charter: it could be a new device.
    fn is_fresh(&self, key: AuthorKey) -> bool {
        key != self.scope.creator
            && !self.roles.contains_key(&key)
            && !self.reductions.contains_key(&key)
            && !self.blocked.contains_key(&key)
            && !self.authors.contains(&key)
            && !self.devices_by_person.contains_key(&key)
    }

    fn need_stewarded(&self) -> Result<(), IgnoreReason> {
        if self.stewarded {
            Ok(())
        } else {
            Err(IgnoreReason::NotStewarded)
        }
    }

    fn need_steward(&self, role: Option<Role>) -> Result<(), IgnoreReason> {
        self.need_stewarded()?;
        match role {
            Some(Role::Steward) => Ok(()),
            Some(_) => Err(IgnoreReason::NotASteward),
            None => Err(IgnoreReason::NotAMember),
        }
    }

    fn spare_last_steward(&self) -> Result<(), IgnoreReason> {
        if self.stewards <= 1 {
            Err(IgnoreReason::LastSteward)
        } else {
            Ok(())
        }
    }

    /// Applies an operation that passed [`check`](Self::check) in replay mode.
    fn apply(&mut self, record: &OpRecord) {
        let person = self.person_of(record.author);
        match &record.op.action {
            CharterAction::Found { private } => {
                self.stewarded = true;
                self.private = *private;
                self.set_role(self.scope.creator, Some(Role::Steward));
            }
            CharterAction::Add { person, role } => {
                let new = self.role_of(*person).max(Some(*role));
                self.set_role(*person, new);
            }
            CharterAction::SetRole {
                person,
                role,
                frontier,
            } => {
                if let Some(before) = self.role_of(*person).filter(|b| b > role) {
                    self.reduce(*person, before, frontier);
                }
                self.set_role(*person, Some(*role));
            }
            CharterAction::Remove { person, frontier } => {
                if let Some(before) = self.role_of(*person) {
                    self.reduce(*person, before, frontier);
                }
                self.set_role(*person, None);
            }
            CharterAction::Redeem { invitation } => {
                *self.redeemed.entry(invitation.body.id()).or_insert(0) += 1;
                let new = self.role_of(person).max(Some(invitation.body.role));
                self.set_role(person, new);
            }
            CharterAction::Hide { doc, reason } => {
                self.hidden.insert(*doc, reason.clone());
            }
            CharterAction::Unhide { doc } => {
                self.hidden.remove(doc);
            }
            CharterAction::Block { person, frontier } => {
                self.blocked.insert(*person, frontier.normalized());
            }
            CharterAction::Unblock { person } => {
                self.blocked.remove(person);
            }
            CharterAction::Device { certificate } => {
                let cert = &certificate.body;
                self.devices_by_person
                    .entry(cert.person)
                    .or_default()
                    .insert(cert.device);
                self.devices.insert(
                    cert.device,
                    Certified {
                        person: cert.person,
                        name: cert.name.clone(),
                    },
                );
            }
            CharterAction::RevokeDevice { device, frontier } => {
                self.revoked.insert(*device, frontier.normalized());
            }
            CharterAction::Retract { doc } => {
                self.retracted.entry(*doc).or_default().insert(person);
            }
        }
    }

    fn reduce(&mut self, person: AuthorKey, before: Role, frontier: &Frontier) {
        self.reductions.entry(person).or_default().push(Reduction {
            frontier: frontier.normalized(),
            before,
        });
    }

    fn set_role(&mut self, person: AuthorKey, role: Option<Role>) {
        let old = match role {
            Some(role) => self.roles.insert(person, role),
            None => self.roles.remove(&person),
        };
        if old == Some(Role::Steward) {
            self.stewards -= 1;
        }
        if role == Some(Role::Steward) {
            self.stewards += 1;
        }
    }

    /// The commons this charter belongs to.
    pub fn scope(&self) -> &CharterScope {
        &self.scope
    }

    /// Whether a `Found` took effect: only members may write.
    pub fn is_stewarded(&self) -> bool {
        self.stewarded
    }

    /// Whether the founder made the commons private.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The role `person` holds now (ignoring frontiers), if any.
    pub fn role_of(&self, person: AuthorKey) -> Option<Role> {
        self.roles.get(&person).copied()
    }

    /// Every person holding a role, ordered by key.
    pub fn members(&self) -> Vec<(AuthorKey, Role)> {
        self.roles.iter().map(|(p, r)| (*p, *r)).collect()
    }

    /// How many Stewards there are (never zero once stewarded).
    pub fn steward_count(&self) -> usize {
        self.stewards
    }

    /// The person a device belongs to: the person of its certificate, else the device key itself.
    pub fn person_of(&self, device: AuthorKey) -> AuthorKey {
        self.devices.get(&device).map_or(device, |c| c.person)
    }

    /// The devices certified to `person`, ordered by key (revoked ones included).
    pub fn devices_of(&self, person: AuthorKey) -> Vec<AuthorKey> {
        self.devices_by_person
            .get(&person)
            .map(|devices| devices.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The name a device's certificate gives it.
    pub fn device_name(&self, device: AuthorKey) -> Option<&str> {
        self.devices.get(&device).map(|c| c.name.as_str())
    }

    /// Whether the device was revoked.
    pub fn is_revoked(&self, device: AuthorKey) -> bool {
        self.revoked.contains_key(&device)
    }

    /// The frontier beyond which a revoked device's changes are refused.
    pub fn revocation(&self, device: AuthorKey) -> Option<&Frontier> {
        self.revoked.get(&device)
    }

    /// Every revoked device, ordered by key.
    pub fn revoked(&self) -> Vec<AuthorKey> {
        self.revoked.keys().copied().collect()
    }

    /// Documents hidden by a Steward, with the reason given.
    pub fn hidden(&self) -> &BTreeMap<DocId, String> {
        &self.hidden
    }

    /// Whether `person` is blocked.
    pub fn is_blocked(&self, person: AuthorKey) -> bool {
        self.blocked.contains_key(&person)
    }

    /// Every blocked person, ordered by key.
    pub fn blocked(&self) -> Vec<AuthorKey> {
        self.blocked.keys().copied().collect()
    }

    /// Retraction claims: per document, the persons who claimed to withdraw it. Only the
    /// creator's claim counts; [`is_retracted`](Self::is_retracted) checks it.
    pub fn retracted(&self) -> &BTreeMap<DocId, BTreeSet<AuthorKey>> {
        &self.retracted
    }

    /// Whether the creator of `doc` (its genesis `creator` key) withdrew it: a retraction claim
    /// by that key's person (or by the key itself) took effect.
    pub fn is_retracted(&self, doc: DocId, doc_creator: AuthorKey) -> bool {
        self.retracted.get(&doc).is_some_and(|claims| {
            claims.contains(&self.person_of(doc_creator)) || claims.contains(&doc_creator)
        })
    }

    /// The documents their creators withdrew, given each claimed document's genesis creator
    /// (`None` for a document this node does not hold: its claim waits).
    pub fn retracted_docs(
        &self,
        mut creator_of: impl FnMut(DocId) -> Option<AuthorKey>,
    ) -> BTreeSet<DocId> {
        self.retracted
            .keys()
            .copied()
            .filter(|doc| creator_of(*doc).is_some_and(|creator| self.is_retracted(*doc, creator)))
            .collect()
    }

    /// Every operation in replay order with its outcome (operations that never became ready last).
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    /// The operations that were ignored, with their reasons, in log order.
    pub fn ignored(&self) -> Vec<&LogEntry> {
        self.log
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Ignored(_)))
            .collect()
    }
}

/// Kahn's algorithm over `deps`, ready operations taken lowest hash first. Returns the order and
/// the operations that never became ready (a dependency is missing), by hash.
pub(crate) fn linearize(records: &[OpRecord]) -> (Vec<&OpRecord>, Vec<&OpRecord>) {
    let mut by_hash: HashMap<[u8; 32], &OpRecord> = HashMap::with_capacity(records.len());
    for record in records {
        by_hash.entry(record.hash).or_insert(record);
    }
    let mut waiting: HashMap<[u8; 32], usize> = HashMap::with_capacity(by_hash.len());
    let mut children: HashMap<[u8; 32], Vec<[u8; 32]>> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for (hash, record) in &by_hash {
        let mut deps = record.deps.clone();
        deps.sort_unstable();
        deps.dedup();
        for dep in &deps {
            children.entry(*dep).or_default().push(*hash);
        }
        if deps.is_empty() {
            ready.push(Reverse(*hash));
        } else {
            waiting.insert(*hash, deps.len());
        }
    }
    let mut order = Vec::with_capacity(by_hash.len());
    while let Some(Reverse(hash)) = ready.pop() {
        let Some(record) = by_hash.get(&hash) else {
            continue;
        };
        order.push(*record);
        for child in children.get(&hash).into_iter().flatten() {
            if let Some(left) = waiting.get_mut(child) {
                *left -= 1;
                if *left == 0 {
                    waiting.remove(child);
                    ready.push(Reverse(*child));
                }
            }
        }
    }
    let mut stuck: Vec<&OpRecord> = waiting
        .keys()
        .filter_map(|h| by_hash.get(h).copied())
        .collect();
    stuck.sort_by_key(|r| r.hash);
    (order, stuck)
}
