//! A replica that refuses some authors' new changes (a node's local block list): their
//! changes, and what builds on them, stay out; everyone else's in the same set come in.

use hedgerow_protocol::automerge::ChangeHash;
use hedgerow_protocol::schema::{self, DocKind, Edit, EditContext, NewDocument};
use hedgerow_protocol::{
    ChangeEnvelope, CommonsGenesis, DeviceKey, DocGenesis, DocReplica, InstallTag, Rejection,
    Signed,
};
use std::collections::HashSet;
use std::sync::Arc;

const T0: i64 = 1_700_000_000;

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_secret([n; 32]).with_install(InstallTag([n; 8]))
}

fn genesis(creator: &DeviceKey) -> Signed<DocGenesis> {
    let commons = CommonsGenesis {
        name: "Farm Hack".into(),
        description: String::new(),
        creator: creator.author(),
        created_at: T0,
        nonce: [1; 16],
    }
    .sign(creator)
    .body
    .id();
    DocGenesis {
        commons,
        kind: DocKind::Design,
        creator: creator.author(),
        created_at: T0,
        nonce: [2; 16],
        fork: None,
    }
    .sign(creator)
}

fn set(replica: &mut DocReplica, key: &DeviceKey, field: &str, value: &str) -> ChangeEnvelope {
    let ctx = EditContext {
        author: key.author().to_string(),
        now_unix: T0 + 10,
    };
    let edit = Edit::Set {
        field: field.into(),
        value: value.into(),
    };
    let (_, made) = replica
        .edit(key, T0 + 10, |tx| {
            schema::apply_edit(tx, DocKind::Design, &edit, &ctx)
        })
        .expect("edit applies");
    made.expect("edit changes something").0
}

fn field(replica: &DocReplica, name: &str) -> String {
    schema::render(replica.doc(), DocKind::Design, None)[name]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn hash(envelope: &ChangeEnvelope) -> ChangeHash {
    envelope.verify().expect("verifies").change.hash()
}

/// Ada's skeleton is held; then Ada edits, Ben edits concurrently, and Cleo edits before and
/// after Ada's edit. A replica refusing Ada takes Ben's edit alone out of the whole document, by compact
/// form and by envelope.
#[test]
fn a_refused_authors_changes_and_what_builds_on_them_stay_out() {
    let (ada, ben, cleo) = (key(1), key(2), key(3));
    let genesis = genesis(&ada);
    let mut writer = DocReplica::new(genesis.clone()).expect("genesis");
    let (_, made) = writer
        .edit(&ada, T0, |tx| {
            schema::init_document(tx, &NewDocument::new(DocKind::Design, "Roller crimper"))
        })
        .expect("skeleton");
    let skeleton = made.expect("a change").0;
    let mut reader = DocReplica::new(genesis.clone()).expect("genesis");
    reader.ingest_envelope(&skeleton).expect("skeleton");

    let mut other = DocReplica::new(genesis.clone()).expect("genesis");
    other.ingest_envelope(&skeleton).expect("skeleton");
    let by_ben = set(&mut other, &ben, "problem", "Ben's");
    // Cleo's first edit builds on the skeleton alone, her second on Ada's edit too: her only
    // signature in the set is then on the second.
    let cleo_first = set(&mut writer, &cleo, "intended_use", "Cleo's");
    let by_ada = set(&mut writer, &ada, "summary", "Ada's");
    let by_cleo = set(&mut writer, &cleo, "stage", "prototype");
    writer.ingest_envelope(&by_ben).expect("Ben's edit");

    reader.refuse_authors(Arc::new(HashSet::from([ada.author()])));
    let refused = reader.ingest_envelope(&by_ada);
    assert!(
        matches!(refused, Err(Rejection::AuthorRefused { author, changes: 1 }) if author == ada.author()),
        "{refused:?}"
    );
    let all = writer.missing_for(&Default::default());
    let (compact, proofs) = writer.compact_for(&all).expect("compact form");
    let accepted = reader.ingest_compact(&compact, proofs).expect("Ben's part");
    let hashes: Vec<ChangeHash> = accepted.iter().map(|a| a.hash).collect();
    assert_eq!(hashes, vec![hash(&by_ben)], "only Ben's edit came in");
    assert_eq!(
        reader.take_refused_authors(),
        Some(Rejection::AuthorRefused {
            author: ada.author(),
            changes: 3
        }),
        "Ada's edit, Cleo's built on it, and Cleo's first, whose signature came on that one"
    );
    assert!(reader.record(&hash(&cleo_first)).is_none());
    assert_eq!(reader.take_refused_authors(), None);
    assert_eq!(field(&reader, "problem"), "Ben's");
    assert_eq!(field(&reader, "summary"), "");
    assert!(reader.record(&hash(&by_cleo)).is_none());

    // Refused whole: a set of the refused author's changes alone.
    let mut only_ada = DocReplica::new(genesis.clone()).expect("genesis");
    only_ada.refuse_authors(Arc::new(HashSet::from([ada.author()])));
    let (compact, proofs) = writer
        .compact_for(&[hash(&skeleton)])
        .expect("compact form");
    assert!(matches!(
        only_ada.ingest_compact(&compact, proofs),
        Err(Rejection::AuthorRefused { changes: 1, .. })
    ));
}
