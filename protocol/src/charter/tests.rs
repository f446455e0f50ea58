//! Unit tests of the charter rule: one test per authority rule and per tricky ordering.

use super::*;
use crate::encoding::domain_hash;
use crate::identity::DeviceKey;
use crate::schema::DocKind;

const COMMONS: CommonsId = CommonsId([9; 32]);

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_secret([n; 32])
}

/// A charter under construction: records with hashes derived from a counter (or chosen).
struct Charter {
    creator: DeviceKey,
    records: Vec<OpRecord>,
    next: u64,
}

impl Charter {
    fn new() -> Charter {
        Charter {
            creator: key(1),
            records: Vec::new(),
            next: 0,
        }
    }

    fn scope(&self) -> CharterScope {
        CharterScope {
            commons: COMMONS,
            creator: self.creator.author(),
        }
    }

    /// Appends an op by `author` depending on `deps`; returns its hash.
    fn op(&mut self, author: AuthorKey, deps: &[[u8; 32]], action: CharterAction) -> [u8; 32] {
        self.next += 1;
        let hash = domain_hash("test op", &self.next.to_le_bytes());
        self.op_with_hash(hash, author, deps, action)
    }

    fn op_with_hash(
        &mut self,
        hash: [u8; 32],
        author: AuthorKey,
        deps: &[[u8; 32]],
        action: CharterAction,
    ) -> [u8; 32] {
        self.records.push(OpRecord {
            hash,
            deps: deps.to_vec(),
            author,
            op: CharterOp {
                commons: COMMONS,
                at: 1_000,
                action,
            },
        });
        hash
    }

    /// Appends an op depending on every op so far (a linear history).
    fn then(&mut self, author: AuthorKey, action: CharterAction) -> [u8; 32] {
        let deps = self.heads();
        self.op(author, &deps, action)
    }

    fn heads(&self) -> Vec<[u8; 32]> {
        let referenced: std::collections::HashSet<[u8; 32]> =
            self.records.iter().flat_map(|r| r.deps.clone()).collect();
        self.records
            .iter()
            .map(|r| r.hash)
            .filter(|h| !referenced.contains(h))
            .collect()
    }

    fn found(&mut self) -> [u8; 32] {
        let creator = self.creator.author();
        self.then(creator, CharterAction::Found { private: false })
    }

    fn state(&self) -> CharterState {
        CharterState::evaluate(self.scope(), &self.records)
    }

    fn outcome(&self, hash: [u8; 32]) -> Outcome {
        let state = self.state();
        let entry = state.log().iter().find(|e| e.hash == hash);
        entry.expect("op in the log").outcome
    }
}

fn add(person: &DeviceKey, role: Role) -> CharterAction {
    CharterAction::Add {
        person: person.author(),
        role,
    }
}

fn frontier(entries: &[(&[u8], u64)]) -> Frontier {
    Frontier(entries.iter().map(|(a, s)| (a.to_vec(), *s)).collect())
}

fn facts(device: &DeviceKey, actor: &[u8], seq: u64, kind: DocKind) -> ChangeFacts {
    ChangeFacts {
        device: device.author(),
        actor: actor.to_vec(),
        seq,
        doc_kind: kind,
        doc_creator_person: key(200).author(),
        creates_doc: false,
    }
}

fn ignored(reason: IgnoreReason) -> Outcome {
    Outcome::Ignored(reason)
}

fn invitation(issuer: &DeviceKey, role: Role, uses: u32, expires_at: i64) -> Signed<Invitation> {
    Invitation {
        commons: COMMONS,
        issuer: issuer.author(),
        role,
        uses,
        expires_at,
        nonce: [7; 16],
    }
    .sign(issuer)
}

#[test]
fn role_names_order_and_parse() {
    assert!(Role::Guest < Role::Member && Role::Member < Role::Steward);
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
    }
    assert!(matches!(
        "owner".parse::<Role>(),
        Err(CharterError::UnknownRole(_))
    ));
}

#[test]
fn op_message_round_trip_and_refusals() {
    let op = CharterOp {
        commons: COMMONS,
        at: 5,
        action: CharterAction::Remove {
            person: key(2).author(),
            frontier: frontier(&[(b"actor", 3)]),
        },
    };
    let message = op.to_message();
    assert!(!message.contains('=') && !message.contains('+') && !message.contains('/'));
    assert_eq!(CharterOp::from_message(&message), Ok(op));
    assert!(matches!(
        CharterOp::from_message("not base64!"),
        Err(CharterError::NotBase64(_))
    ));
    assert!(matches!(
        CharterOp::from_message("AAAA"),
        Err(CharterError::Decode(_))
    ));
}

#[test]
fn invitation_code_round_trip_and_typed_errors() {
    let founder = key(1);
    let genesis = CommonsGenesis {
        name: "Farm Hack".into(),
        description: "tools".into(),
        creator: founder.author(),
        created_at: 1,
        nonce: [1; 16],
    }
    .sign(&founder);
    let commons = genesis.body.id();
    let mut inv = Invitation {
        commons,
        issuer: founder.author(),
        role: Role::Member,
        uses: 1,
        expires_at: 100,
        nonce: [2; 16],
    };
    let code = InvitationCode {
        invitation: inv.clone().sign(&founder),
        genesis: genesis.clone(),
    };
    let text = code.to_code();
    assert!(text.starts_with("hri1"));
    assert_eq!(
        InvitationCode::parse(&format!(" {text}\n")),
        Ok(code.clone())
    );

    assert!(matches!(
        InvitationCode::parse("xyz"),
        Err(InvitationError::MissingPrefix(_))
    ));
    assert!(matches!(
        InvitationCode::parse("hri10OIl"),
        Err(InvitationError::NotBase58(_))
    ));
    assert!(matches!(
        InvitationCode::parse(&text[..text.len() - 3]),
        Err(InvitationError::Decode(_))
    ));
    let mut forged = code.clone();
    forged.invitation.body.role = Role::Steward;
    assert!(matches!(
        InvitationCode::parse(&forged.to_code()),
        Err(InvitationError::Forged(_))
    ));
    inv.commons = COMMONS;
    let elsewhere = InvitationCode {
        invitation: inv.sign(&founder),
        genesis,
    };
    assert!(matches!(
        InvitationCode::parse(&elsewhere.to_code()),
        Err(InvitationError::WrongCommons { .. })
    ));
    assert!(matches!(
        InvitationCode::parse(&format!("hri1{}", "1".repeat(9000))),
        Err(InvitationError::TooLong { .. })
    ));
}

#[test]
fn device_certificate_sign_verify() {
    let person = key(3);
    let cert = DeviceCertificate {
        person: person.author(),
        device: key(4).author(),
        name: "barn laptop".into(),
        issued_at: 7,
    };
    assert_eq!(cert.clone().sign(&person).verify(), Ok(()));
    assert!(matches!(
        cert.clone().sign(&key(4)).verify(),
        Err(CertificateError::Forged(_))
    ));
    let long = DeviceCertificate {
        name: "x".repeat(65),
        ..cert
    };
    assert!(matches!(
        long.sign(&person).verify(),
        Err(CertificateError::NameTooLong { len: 65 })
    ));
}

#[test]
fn found_only_by_creator_and_once() {
    let mut c = Charter::new();
    let stranger = c.then(key(2).author(), CharterAction::Found { private: true });
    assert!(!c.state().is_stewarded());
    let found = c.found();
    let again = c.found();
    let state = c.state();
    assert!(state.is_stewarded() && !state.is_private());
    assert_eq!(state.members(), vec![(c.creator.author(), Role::Steward)]);
    assert_eq!(c.outcome(stranger), ignored(IgnoreReason::NotTheCreator));
    assert_eq!(c.outcome(found), Outcome::Applied);
    assert_eq!(c.outcome(again), ignored(IgnoreReason::AlreadyFounded));
}

#[test]
fn open_commons_admits_everyone_and_takes_no_roles() {
    let mut c = Charter::new();
    let creator = c.creator.author();
    let add_op = c.then(creator, add(&key(2), Role::Member));
    let state = c.state();
    assert!(!state.is_stewarded());
    assert_eq!(c.outcome(add_op), ignored(IgnoreReason::NotStewarded));
    assert_eq!(
        state.admit(&facts(&key(5), b"a", 1, DocKind::Design)),
        Ok(())
    );
}

#[test]
fn steward_member_guest_authority() {
    let mut c = Charter::new();
    let (founder, member, guest, stranger) = (c.creator.author(), key(2), key(3), key(4));
    c.found();
    c.then(founder, add(&member, Role::Member));
    c.then(founder, add(&guest, Role::Guest));
    let member_adds_guest = c.then(member.author(), add(&key(10), Role::Guest));
    let member_adds_member = c.then(member.author(), add(&key(11), Role::Member));
    let member_sets_role = c.then(
        member.author(),
        CharterAction::SetRole {
            person: guest.author(),
            role: Role::Member,
            frontier: Frontier::default(),
        },
    );
    let member_hides = c.then(
        member.author(),
        CharterAction::Hide {
            doc: DocId([1; 32]),
            reason: "spam".into(),
        },
    );
    let guest_adds = c.then(guest.author(), add(&key(12), Role::Guest));
    let stranger_adds = c.then(stranger.author(), add(&key(13), Role::Guest));
    let steward_hides = c.then(
        founder,
        CharterAction::Hide {
            doc: DocId([2; 32]),
            reason: "off topic".into(),
        },
    );
    let member_adds_steward = c.then(member.author(), add(&member, Role::Steward));

    assert_eq!(c.outcome(member_adds_guest), Outcome::Applied);
    assert_eq!(
        c.outcome(member_adds_member),
        ignored(IgnoreReason::MemberMayAddGuestsOnly)
    );
    assert_eq!(
        c.outcome(member_adds_steward),
        ignored(IgnoreReason::MemberMayAddGuestsOnly)
    );
    assert_eq!(
        c.outcome(member_sets_role),
        ignored(IgnoreReason::NotASteward)
    );
    assert_eq!(c.outcome(member_hides), ignored(IgnoreReason::NotASteward));
    assert_eq!(c.outcome(guest_adds), ignored(IgnoreReason::NotASteward));
    assert_eq!(c.outcome(stranger_adds), ignored(IgnoreReason::NotAMember));
    assert_eq!(c.outcome(steward_hides), Outcome::Applied);
    let state = c.state();
    assert_eq!(state.role_of(key(10).author()), Some(Role::Guest));
    assert_eq!(state.role_of(key(11).author()), None);
    assert_eq!(state.role_of(member.author()), Some(Role::Member));
    assert_eq!(state.hidden().len(), 1);
    assert_eq!(
        state.hidden().get(&DocId([2; 32])).map(String::as_str),
        Some("off topic")
    );
    assert_eq!(state.ignored().len(), 6);

    // Add never lowers: a member adding an existing member "as a guest" changes nothing.
    c.then(member.author(), add(&guest, Role::Guest));
    c.then(founder, add(&guest, Role::Member));
    c.then(member.author(), add(&guest, Role::Guest));
    assert_eq!(c.state().role_of(guest.author()), Some(Role::Member));
}

#[test]
fn last_steward_cannot_leave() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    c.found();
    let remove_self = c.then(
        founder,
        CharterAction::Remove {
            person: founder,
            frontier: Frontier::default(),
        },
    );
    let demote_self = c.then(
        founder,
        CharterAction::SetRole {
            person: founder,
            role: Role::Member,
            frontier: Frontier::default(),
        },
    );
    assert_eq!(c.outcome(remove_self), ignored(IgnoreReason::LastSteward));
    assert_eq!(c.outcome(demote_self), ignored(IgnoreReason::LastSteward));
    // With a second steward the founder may step down.
    c.then(founder, add(&key(2), Role::Steward));
    let step_down = c.then(
        founder,
        CharterAction::SetRole {
            person: founder,
            role: Role::Member,
            frontier: Frontier::default(),
        },
    );
    assert_eq!(c.outcome(step_down), Outcome::Applied);
    let state = c.state();
    assert_eq!(state.steward_count(), 1);
    assert_eq!(state.role_of(founder), Some(Role::Member));
    // The remaining steward cannot leave either.
    let last = c.then(
        key(2).author(),
        CharterAction::Remove {
            person: key(2).author(),
            frontier: Frontier::default(),
        },
    );
    assert_eq!(c.outcome(last), ignored(IgnoreReason::LastSteward));
}

#[test]
fn concurrent_mutual_removal_lower_hash_wins() {
    for low_first in [true, false] {
        let mut c = Charter::new();
        let (a, b) = (c.creator.author(), key(2).author());
        c.found();
        let base = c.then(a, add(&key(2), Role::Steward));
        let (ha, hb) = if low_first {
            ([1; 32], [2; 32])
        } else {
            ([2; 32], [1; 32])
        };
        c.op_with_hash(
            ha,
            a,
            &[base],
            CharterAction::Remove {
                person: b,
                frontier: Frontier::default(),
            },
        );
        c.op_with_hash(
            hb,
            b,
            &[base],
            CharterAction::Remove {
                person: a,
                frontier: Frontier::default(),
            },
        );
        let state = c.state();
        assert_eq!(state.steward_count(), 1);
        let (winner, loser) = if low_first { (a, b) } else { (b, a) };
        assert_eq!(state.members(), vec![(winner, Role::Steward)]);
        assert_eq!(state.role_of(loser), None);
        let loser_op = if low_first { hb } else { ha };
        assert_eq!(c.outcome(loser_op), ignored(IgnoreReason::NotAMember));
        // The same verdict whatever order the records arrive in, duplicates included.
        let mut shuffled = c.records.clone();
        shuffled.reverse();
        shuffled.push(c.records[2].clone());
        assert_eq!(CharterState::evaluate(c.scope(), &shuffled), state);
    }
}

#[test]
fn removal_concurrent_with_writes_frontier_decides() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let member = key(2);
    c.found();
    c.then(founder, add(&member, Role::Member));
    // The steward had seen the member's changes up to seq 3 of actor `a`, nothing of actor `b`.
    c.then(
        founder,
        CharterAction::Remove {
            person: member.author(),
            frontier: frontier(&[(b"a", 3), (b"a", 1)]),
        },
    );
    let state = c.state();
    assert_eq!(state.role_of(member.author()), None);
    for seq in 1..=3 {
        assert_eq!(
            state.admit(&facts(&member, b"a", seq, DocKind::Design)),
            Ok(())
        );
    }
    assert_eq!(
        state.admit(&facts(&member, b"a", 4, DocKind::Design)),
        Err(Refusal::BeyondFrontier)
    );
    assert_eq!(
        state.admit(&facts(&member, b"b", 1, DocKind::Design)),
        Err(Refusal::BeyondFrontier)
    );
    assert_eq!(
        state.admit(&facts(&key(3), b"c", 1, DocKind::Design)),
        Err(Refusal::NotAMember)
    );

    // Demotion: up to the frontier under the old role, beyond it as a guest.
    let mut c = Charter::new();
    let founder = c.creator.author();
    c.found();
    c.then(founder, add(&member, Role::Member));
    c.then(
        founder,
        CharterAction::SetRole {
            person: member.author(),
            role: Role::Guest,
            frontier: frontier(&[(b"a", 2)]),
        },
    );
    let state = c.state();
    assert_eq!(
        state.admit(&facts(&member, b"a", 2, DocKind::Event)),
        Ok(())
    );
    assert_eq!(
        state.admit(&facts(&member, b"a", 3, DocKind::Event)),
        Err(Refusal::GuestCannotEdit)
    );
    let mut note = facts(&member, b"a", 3, DocKind::Note);
    note.creates_doc = true;
    assert_eq!(state.admit(&note), Ok(()));
    assert_eq!(
        state.role_for_change(member.author(), b"a", 1),
        Some(Role::Member)
    );

    // Re-added later: judged against the final charter, so everything is accepted again.
    c.then(founder, add(&member, Role::Member));
    assert_eq!(
        c.state().admit(&facts(&member, b"a", 9, DocKind::Design)),
        Ok(())
    );
}

#[test]
fn guests_write_notes_only() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let guest = key(3);
    c.found();
    c.then(founder, add(&guest, Role::Guest));
    let state = c.state();
    let mut design = facts(&guest, b"g", 1, DocKind::Design);
    assert_eq!(state.admit(&design), Err(Refusal::GuestCannotEdit));
    design.creates_doc = true;
    assert_eq!(state.admit(&design), Err(Refusal::GuestCannotEdit));
    assert_eq!(
        state.admit(&facts(&guest, b"g", 1, DocKind::Event)),
        Err(Refusal::GuestCannotEdit)
    );
    let mut note = facts(&guest, b"g", 1, DocKind::Note);
    assert_eq!(
        state.admit(&note),
        Err(Refusal::GuestCannotEdit),
        "someone else's note"
    );
    note.doc_creator_person = guest.author();
    assert_eq!(state.admit(&note), Ok(()), "their own note");
    note.doc_creator_person = founder;
    note.creates_doc = true;
    assert_eq!(state.admit(&note), Ok(()), "a new note");
    let mut profile = facts(&guest, b"g", 1, DocKind::Profile);
    profile.doc_creator_person = guest.author();
    assert_eq!(state.admit(&profile), Ok(()));
    profile.doc_creator_person = founder;
    assert_eq!(state.admit(&profile), Err(Refusal::GuestCannotEdit));
    assert_eq!(
        state.admit(&facts(&c.creator, b"f", 1, DocKind::Design)),
        Ok(())
    );
}

#[test]
fn redeem_checks_signature_commons_expiry_uses_and_issuer() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let member = key(2);
    c.found();
    c.then(founder, add(&member, Role::Member));
    let twice = invitation(&c.creator, Role::Member, 2, 1_000);
    let redeem = |inv: &Signed<Invitation>| CharterAction::Redeem {
        invitation: inv.clone(),
    };
    let r1 = c.then(key(10).author(), redeem(&twice));
    let r2 = c.then(key(11).author(), redeem(&twice));
    let r3 = c.then(key(12).author(), redeem(&twice));
    let expired = invitation(&c.creator, Role::Member, 5, 999);
    let r_expired = c.then(key(13).author(), redeem(&expired));
    let mut forged = invitation(&c.creator, Role::Guest, 5, 1_000);
    forged.body.role = Role::Steward;
    let r_forged = c.then(key(14).author(), redeem(&forged));
    let by_member_guest = invitation(&member, Role::Guest, 5, 1_000);
    let r_guest = c.then(key(15).author(), redeem(&by_member_guest));
    let by_member_member = invitation(&member, Role::Member, 5, 1_000);
    let r_member = c.then(key(16).author(), redeem(&by_member_member));
    let mut elsewhere = invitation(&c.creator, Role::Member, 5, 1_000).body;
    elsewhere.commons = CommonsId([8; 32]);
    let r_elsewhere = c.then(key(17).author(), redeem(&elsewhere.sign(&c.creator)));

    assert_eq!(c.outcome(r1), Outcome::Applied);
    assert_eq!(c.outcome(r2), Outcome::Applied);
    assert_eq!(c.outcome(r3), ignored(IgnoreReason::InvitationUsedUp));
    assert_eq!(
        c.outcome(r_expired),
        ignored(IgnoreReason::InvitationExpired)
    );
    assert_eq!(c.outcome(r_forged), ignored(IgnoreReason::InvitationForged));
    assert_eq!(c.outcome(r_guest), Outcome::Applied);
    assert_eq!(
        c.outcome(r_member),
        ignored(IgnoreReason::IssuerCannotGrant)
    );
    assert_eq!(
        c.outcome(r_elsewhere),
        ignored(IgnoreReason::InvitationWrongCommons)
    );
    let state = c.state();
    assert_eq!(state.role_of(key(10).author()), Some(Role::Member));
    assert_eq!(state.role_of(key(12).author()), None);
    assert_eq!(state.role_of(key(15).author()), Some(Role::Guest));

    // Redeeming never lowers a role.
    let guest_inv = invitation(&c.creator, Role::Guest, 1, 1_000);
    c.then(key(10).author(), redeem(&guest_inv));
    assert_eq!(c.state().role_of(key(10).author()), Some(Role::Member));
}

#[test]
fn devices_map_to_persons_and_revocation_uses_the_frontier() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let (person, phone, other) = (key(2), key(3), key(4));
    c.found();
    c.then(founder, add(&person, Role::Member));
    c.then(founder, add(&other, Role::Member));
    let cert = DeviceCertificate {
        person: person.author(),
        device: phone.author(),
        name: "phone".into(),
        issued_at: 1,
    }
    .sign(&person);
    c.then(person.author(), CharterAction::Device { certificate: cert });
    let state = c.state();
    assert_eq!(state.person_of(phone.author()), person.author());
    assert_eq!(state.person_of(other.author()), other.author());
    assert_eq!(state.devices_of(person.author()), vec![phone.author()]);
    assert_eq!(state.device_name(phone.author()), Some("phone"));
    assert_eq!(
        state.admit(&facts(&phone, b"p", 5, DocKind::Design)),
        Ok(())
    );

    let by_other = c.then(
        other.author(),
        CharterAction::RevokeDevice {
            device: phone.author(),
            frontier: Frontier::default(),
        },
    );
    assert_eq!(
        c.outcome(by_other),
        ignored(IgnoreReason::NotTheDevicesPerson)
    );
    c.then(
        person.author(),
        CharterAction::RevokeDevice {
            device: phone.author(),
            frontier: frontier(&[(b"p", 2)]),
        },
    );
    let after = c.then(phone.author(), add(&key(20), Role::Guest));
    let state = c.state();
    assert!(state.is_revoked(phone.author()));
    assert_eq!(
        state.admit(&facts(&phone, b"p", 2, DocKind::Design)),
        Ok(())
    );
    assert_eq!(
        state.admit(&facts(&phone, b"p", 3, DocKind::Design)),
        Err(Refusal::DeviceRevoked)
    );
    assert_eq!(c.outcome(after), ignored(IgnoreReason::DeviceRevoked));
    assert_eq!(
        state.admit(&facts(&person, b"q", 9, DocKind::Design)),
        Ok(())
    );
}

#[test]
fn revocation_applies_in_open_commons() {
    let mut c = Charter::new();
    let (person, laptop) = (key(2), key(3));
    let cert = DeviceCertificate {
        person: person.author(),
        device: laptop.author(),
        name: "laptop".into(),
        issued_at: 1,
    }
    .sign(&person);
    c.then(laptop.author(), CharterAction::Device { certificate: cert });
    c.then(
        laptop.author(),
        CharterAction::RevokeDevice {
            device: laptop.author(),
            frontier: frontier(&[(b"l", 1)]),
        },
    );
    let state = c.state();
    assert!(!state.is_stewarded());
    assert_eq!(state.admit(&facts(&laptop, b"l", 1, DocKind::Note)), Ok(()));
    assert_eq!(
        state.admit(&facts(&laptop, b"l", 2, DocKind::Note)),
        Err(Refusal::DeviceRevoked)
    );
}

#[test]
fn a_person_cannot_claim_someone_elses_key() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let thief = key(2);
    c.found();
    c.then(founder, add(&thief, Role::Member));
    let claim = |device: AuthorKey| CharterAction::Device {
        certificate: DeviceCertificate {
            person: thief.author(),
            device,
            name: "mine".into(),
            issued_at: 1,
        }
        .sign(&thief),
    };
    let on_founder = c.then(thief.author(), claim(founder));
    // A key that has never acted here can be linked by the person (the device-link flow).
    let fresh = c.then(thief.author(), claim(key(30).author()));
    // A certificate not signed by the person it names is forged.
    let mut forged = DeviceCertificate {
        person: founder,
        device: key(31).author(),
        name: "x".into(),
        issued_at: 1,
    }
    .sign(&thief);
    forged.body.person = founder;
    let forged = c.then(
        key(31).author(),
        CharterAction::Device {
            certificate: forged,
        },
    );
    assert_eq!(c.outcome(on_founder), ignored(IgnoreReason::DeviceNotFresh));
    assert_eq!(c.outcome(fresh), Outcome::Applied);
    assert_eq!(c.outcome(forged), ignored(IgnoreReason::CertificateForged));
    assert_eq!(c.state().person_of(founder), founder);
}

#[test]
fn blocks_refuse_beyond_frontier_and_spare_stewards() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let member = key(2);
    c.found();
    c.then(founder, add(&member, Role::Member));
    c.then(founder, add(&key(3), Role::Steward));
    let block_steward = c.then(
        founder,
        CharterAction::Block {
            person: key(3).author(),
            frontier: Frontier::default(),
        },
    );
    c.then(
        founder,
        CharterAction::Block {
            person: member.author(),
            frontier: frontier(&[(b"m", 4)]),
        },
    );
    let blocked_writes = c.then(member.author(), add(&key(9), Role::Guest));
    let state = c.state();
    assert_eq!(
        c.outcome(block_steward),
        ignored(IgnoreReason::CannotBlockASteward)
    );
    assert_eq!(
        c.outcome(blocked_writes),
        ignored(IgnoreReason::AuthorBlocked)
    );
    assert!(state.is_blocked(member.author()));
    assert_eq!(
        state.admit(&facts(&member, b"m", 4, DocKind::Design)),
        Ok(())
    );
    assert_eq!(
        state.admit(&facts(&member, b"m", 5, DocKind::Design)),
        Err(Refusal::AuthorBlocked)
    );
    c.then(
        founder,
        CharterAction::Unblock {
            person: member.author(),
        },
    );
    assert_eq!(
        c.state().admit(&facts(&member, b"m", 5, DocKind::Design)),
        Ok(())
    );
}

#[test]
fn hide_unhide_and_retract_are_recorded() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    c.found();
    c.then(
        founder,
        CharterAction::Hide {
            doc: DocId([1; 32]),
            reason: "spam".into(),
        },
    );
    c.then(
        founder,
        CharterAction::Unhide {
            doc: DocId([1; 32]),
        },
    );
    let retract = |n: u8| CharterAction::Retract {
        doc: DocId([n; 32]),
    };
    c.then(founder, add(&key(9), Role::Member));
    // A member's false claim first, then the creator's own retraction: the creator's counts.
    c.then(key(9).author(), retract(5));
    assert!(!c.state().is_retracted(DocId([5; 32]), founder));
    c.then(founder, retract(5));
    let stranger = c.then(key(8).author(), retract(6));
    let state = c.state();
    assert!(state.hidden().is_empty());
    assert!(state.is_retracted(DocId([5; 32]), founder));
    assert!(!state.is_retracted(DocId([5; 32]), key(7).author()));
    assert_eq!(
        state.retracted().get(&DocId([5; 32])).map(|c| c.len()),
        Some(2)
    );
    let creators = |doc: DocId| (doc == DocId([5; 32])).then_some(founder);
    assert_eq!(
        state.retracted_docs(creators),
        [DocId([5; 32])].into_iter().collect()
    );
    assert_eq!(c.outcome(stranger), ignored(IgnoreReason::NotAMember));
}

#[test]
fn missing_dependencies_wrong_commons_and_duplicates() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let found = c.found();
    let orphan = c.op(founder, &[[0xEE; 32]], add(&key(2), Role::Member));
    let child = c.op(founder, &[orphan], add(&key(3), Role::Member));
    let mut stray = c.records[0].clone();
    stray.hash = [0xAB; 32];
    stray.op.commons = CommonsId([8; 32]);
    c.records.push(stray);
    c.records.push(c.records[0].clone());
    let state = c.state();
    assert_eq!(state.log().len(), 4);
    assert_eq!(c.outcome(found), Outcome::Applied);
    assert_eq!(c.outcome(orphan), ignored(IgnoreReason::MissingDependency));
    assert_eq!(c.outcome(child), ignored(IgnoreReason::MissingDependency));
    assert_eq!(c.outcome([0xAB; 32]), ignored(IgnoreReason::WrongCommons));
    assert_eq!(state.members().len(), 1);
}

#[test]
fn gate_judges_on_causal_past_only() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let scope = c.scope();
    let found = c.found();
    let stranger_add = OpRecord {
        hash: [0x10; 32],
        deps: vec![found],
        author: key(5).author(),
        op: CharterOp {
            commons: COMMONS,
            at: 1,
            action: add(&key(6), Role::Member),
        },
    };
    assert_eq!(
        gate(&stranger_add, &c.records, scope),
        Err(Refusal::CharterUnauthorised {
            reason: IgnoreReason::NotAMember
        })
    );
    // A founder's invitation can be redeemed with nothing of the charter.
    let redeem = |issuer: &DeviceKey, deps: Vec<[u8; 32]>| OpRecord {
        hash: [0x11; 32],
        deps,
        author: key(7).author(),
        op: CharterOp {
            commons: COMMONS,
            at: 1,
            action: CharterAction::Redeem {
                invitation: invitation(issuer, Role::Member, 1, 10),
            },
        },
    };
    assert_eq!(gate(&redeem(&c.creator, vec![]), &[], scope), Ok(()));
    // Another issuer's invitation needs their authority in the causal past.
    let member = key(2);
    let added = c.then(founder, add(&member, Role::Member));
    assert_eq!(
        gate(&redeem(&member, vec![]), &c.records, scope),
        Err(Refusal::CharterUnauthorised {
            reason: IgnoreReason::IssuerCannotGrant
        })
    );
    assert_eq!(
        gate(&redeem(&member, vec![found]), &c.records, scope),
        Err(Refusal::CharterUnauthorised {
            reason: IgnoreReason::IssuerCannotGrant
        }),
        "the add is not in this redeem's causal past"
    );
    let mut expired = redeem(&c.creator, vec![]);
    expired.op.at = 11;
    assert_eq!(gate(&expired, &[], scope), Err(Refusal::InvitationExpired));
    // Found passes only for the creator.
    let mut fake_found = c.records[0].clone();
    fake_found.author = key(5).author();
    assert_eq!(
        gate(&fake_found, &[], scope).map_err(|r| r.kind()),
        Err("charter-unauthorised")
    );
    assert_eq!(gate(&c.records[0], &[], scope), Ok(()));
    // Missing deps are reported, not guessed.
    assert_eq!(
        gate(&redeem(&member, vec![[0xEE; 32]]), &c.records, scope),
        Err(Refusal::MissingDependency)
    );
    // The gate checks authority, not effect: the last steward's self-removal passes
    // (a concurrent Add of a second steward may be replayed first).
    let remove_self = OpRecord {
        hash: [0x12; 32],
        deps: vec![added],
        author: founder,
        op: CharterOp {
            commons: COMMONS,
            at: 1,
            action: CharterAction::Remove {
                person: founder,
                frontier: Frontier::default(),
            },
        },
    };
    assert_eq!(gate(&remove_self, &c.records, scope), Ok(()));
    // A member's Add of a member is refused by the gate.
    let member_add = OpRecord {
        author: member.author(),
        op: CharterOp {
            commons: COMMONS,
            at: 1,
            action: add(&key(8), Role::Member),
        },
        ..remove_self.clone()
    };
    assert_eq!(
        gate(&member_add, &c.records, scope).map_err(|r| r.kind()),
        Err("charter-unauthorised")
    );
    // An op for another commons is malformed.
    let mut stray = remove_self;
    stray.op.commons = CommonsId([8; 32]);
    assert_eq!(
        gate(&stray, &c.records, scope).map_err(|r| r.kind()),
        Err("charter-malformed")
    );
}

#[test]
fn charter_over_the_limit_is_refused() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let mut last = c.found();
    let mut records = c.records.clone();
    let unhide = |hash: [u8; 32], dep: [u8; 32]| OpRecord {
        hash,
        deps: vec![dep],
        author: founder,
        op: CharterOp {
            commons: COMMONS,
            at: 0,
            action: CharterAction::Unhide {
                doc: DocId([0; 32]),
            },
        },
    };
    // A gatekeeper fed the chain in order judges each link in one replay step.
    let mut keeper = Gatekeeper::new(c.scope());
    assert_eq!(keeper.gate(&records[0], &[]), Ok(()));
    for i in 0..MAX_CHARTER_OPS as u64 {
        let record = unhide(domain_hash("big", &i.to_le_bytes()), last);
        let verdict = keeper.gate(&record, &records);
        if i + 1 < MAX_CHARTER_OPS as u64 {
            assert_eq!(verdict, Ok(()), "link {i}");
        } else {
            assert_eq!(verdict, Err(Refusal::CharterFull), "link {i}");
        }
        last = record.hash;
        records.push(record);
    }
    let state = CharterState::evaluate(c.scope(), &records);
    assert_eq!(state.log().len(), MAX_CHARTER_OPS + 1);
    assert_eq!(
        state.log()[MAX_CHARTER_OPS - 1].outcome,
        Outcome::Applied,
        "the last op within the limit"
    );
    assert_eq!(
        state.log()[MAX_CHARTER_OPS].outcome,
        Outcome::Ignored(IgnoreReason::CharterFull)
    );
    let last_record = records.pop().expect("chain");
    assert_eq!(
        gate(&last_record, &records, c.scope()),
        Err(Refusal::CharterFull)
    );
    let within = records.pop().expect("chain");
    assert_eq!(gate(&within, &records, c.scope()), Ok(()));
}

#[test]
fn gatekeeper_agrees_with_gate() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let member = key(2);
    let found = c.found();
    let added = c.then(founder, add(&member, Role::Member));
    // Branches: a member's guest add and an unauthorised member add, then a merge.
    let a = c.op(member.author(), &[added], add(&key(3), Role::Guest));
    let b = c.op(member.author(), &[added], add(&key(4), Role::Member));
    let d = c.op(founder, &[a], add(&key(5), Role::Steward));
    c.op(key(5).author(), &[d, found], add(&key(6), Role::Member));
    c.op(key(4).author(), &[b], add(&key(7), Role::Guest));
    let mut keeper = Gatekeeper::new(c.scope());
    let mut verdicts = Vec::new();
    for record in &c.records {
        let expected = gate(record, &c.records, c.scope());
        assert_eq!(keeper.gate(record, &c.records), expected);
        verdicts.push(expected.map_err(|r| r.kind()));
    }
    assert_eq!(
        verdicts,
        vec![
            Ok(()),
            Ok(()),
            Ok(()),
            Err("charter-unauthorised"),
            Ok(()),
            Ok(()),
            Err("charter-unauthorised"),
        ]
    );
}

#[test]
fn a_block_naming_a_device_key_holds_too() {
    let mut c = Charter::new();
    let founder = c.creator.author();
    let (person, phone) = (key(2), key(3));
    c.found();
    c.then(founder, add(&person, Role::Member));
    let certificate = DeviceCertificate {
        person: person.author(),
        device: phone.author(),
        name: "phone".into(),
        issued_at: 1,
    }
    .sign(&person);
    c.then(phone.author(), CharterAction::Device { certificate });
    c.then(
        founder,
        CharterAction::Block {
            person: phone.author(),
            frontier: Frontier::default(),
        },
    );
    let state = c.state();
    assert_eq!(
        state.admit(&facts(&phone, b"p", 1, DocKind::Design)),
        Err(Refusal::AuthorBlocked)
    );
    assert_eq!(
        state.admit(&facts(&person, b"q", 1, DocKind::Design)),
        Ok(())
    );
}

/// The fixed inputs of the format vectors below.
fn pinned() -> (CharterOp, InvitationCode, Signed<DeviceCertificate>) {
    let founder = key(1);
    let genesis = CommonsGenesis {
        name: "Farm Hack tools".into(),
        description: "Open farm tools".into(),
        creator: founder.author(),
        created_at: 1_700_000_000,
        nonce: [3; 16],
    }
    .sign(&founder);
    let invitation = Invitation {
        commons: genesis.body.id(),
        issuer: founder.author(),
        role: Role::Member,
        uses: 3,
        expires_at: 1_700_604_800,
        nonce: [4; 16],
    }
    .sign(&founder);
    let op = CharterOp {
        commons: COMMONS,
        at: 1_700_000_100,
        action: CharterAction::SetRole {
            person: key(2).author(),
            role: Role::Guest,
            frontier: frontier(&[(b"actor-1", 7)]),
        },
    };
    let certificate = DeviceCertificate {
        person: founder.author(),
        device: key(2).author(),
        name: "barn laptop".into(),
        issued_at: 1_700_000_200,
    }
    .sign(&founder);
    (
        op,
        InvitationCode {
            invitation,
            genesis,
        },
        certificate,
    )
}

#[test]
fn formats_are_pinned() {
    // What this release writes must stay readable: a change here is a format change (bump the
    // version byte or the domain string, keep reading the old one, and say so in the README).
    let (op, code, certificate) = pinned();
    let digest = |bytes: &[u8]| hex::encode(domain_hash("test vector", bytes));
    assert_eq!(op.to_message(), "ASAJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCcjFn9UMAiCBOXcOqH0XX1ajVGbDTH7My42KkbTuN6Jd9g9bj8mzlAABB2FjdG9yLTEH");
    assert_eq!(CharterOp::from_message("ASAJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCcjFn9UMAiCBOXcOqH0XX1ajVGbDTH7My42KkbTuN6Jd9g9bj8mzlAABB2FjdG9yLTEH"), Ok(op));
    assert_eq!(
        digest(code.to_code().as_bytes()),
        "2dbf810614a789db9b8cc221bc00dcdbe5528776b3b16d60e41112a1171e1444"
    );
    assert_eq!(
        digest(&crate::encoding::encode(&certificate)),
        "809533aec88bb00675d8fddaae5741ff01b3c7b2556c60209936339e96a48d49"
    );
    assert_eq!(certificate.verify(), Ok(()));
}
