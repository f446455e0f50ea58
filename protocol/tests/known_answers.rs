//! Known-answer vectors: every stored or sent format, recomputed from fixed inputs and compared
//! with the bytes committed in `tests/vectors/known-answers.json`, and those committed bytes
//! decoded back to the fixed inputs (so what an earlier build wrote stays readable).
//!
//! A vector records its bytes and its version (the format byte(s) the bytes start with, or the
//! domain string of a hash). Changed bytes fail the test; changed bytes under an unchanged
//! version fail it with a louder message, since old readers would misread them. To accept an
//! intended change: bump the version, then regenerate with
//! `HEDGEROW_WRITE_VECTORS=1 cargo test -p hedgerow-protocol --test known_answers`. Regenerating
//! refuses to overwrite a vector whose bytes changed under the same version unless
//! `HEDGEROW_FORMAT_BREAK_OK=1` is also set.

use hedgerow_protocol::automerge::transaction::{CommitOptions, Transactable};
use hedgerow_protocol::automerge::{Automerge, ROOT};
use hedgerow_protocol::bundle_file::{
    decode_bundle, decode_summary, encode_bundle, encode_bundle_sealed, encode_summary,
    CommonsSection, CommonsState, DocSection, DocState, Record, Summary,
};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::encoding::{
    decode, encode, DOMAIN_ACTOR, DOMAIN_ACTOR_V2, DOMAIN_CHANGE, DOMAIN_RECORD_ID,
};
use hedgerow_protocol::envelope::{actor_for_v1, signing_digest};
use hedgerow_protocol::private::{
    bundle_key, private_topic_id, MembershipProof, DOMAIN_BUNDLE_KEY, DOMAIN_TOPIC,
};
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::sync::{
    commons_digest, heads_digest, DocPayload, Gossip, LiveChange, SyncRequest, SyncResponse, Want,
};
use hedgerow_protocol::sync_compact::{DocPayloadV3, DocRef, ProofV3, WantV3};
use hedgerow_protocol::{
    actor_for_install, ChangeEnvelope, CommonsGenesis, CommonsId, DeviceKey, DocGenesis, DocId,
    ForkOrigin, InstallTag, Signed,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Domain of sync state digests (private in `sync.rs`; its string is part of the wire format).
const DOMAIN_STATE: &str = "hedgerow 2026-11 sync state digest v1";

const REGENERATE: &str =
    "HEDGEROW_WRITE_VECTORS=1 cargo test -p hedgerow-protocol --test known_answers";

/// Decodes committed bytes and says whether they give back the fixed input.
type Decoder = Box<dyn Fn(&[u8]) -> Result<(), String>>;

/// One computed vector: its bytes and the version they are written under.
struct Vector {
    version: String,
    bytes: Vec<u8>,
    /// How to read committed bytes back, for formats that decode.
    decodes: Option<Decoder>,
}

/// A record encoded with the crate's versioned encoding: its version is its first byte.
fn record(bytes: Vec<u8>, decodes: impl Fn(&[u8]) -> Result<(), String> + 'static) -> Vector {
    Vector {
        version: hex::encode(&bytes[..1]),
        bytes,
        decodes: Some(Box::new(decodes)),
    }
}

/// A hash or derived id: its version is the domain string of the hash.
fn hash(domain: &str, bytes: &[u8]) -> Vector {
    Vector {
        version: domain.to_string(),
        bytes: bytes.to_vec(),
        decodes: None,
    }
}

/// A decoder check: `decode` of committed bytes must equal `expected`.
fn same<T: PartialEq + 'static, E: std::fmt::Display>(
    expected: T,
    decode: impl Fn(&[u8]) -> Result<T, E> + 'static,
) -> impl Fn(&[u8]) -> Result<(), String> + 'static {
    move |bytes| match decode(bytes) {
        Ok(value) if value == expected => Ok(()),
        Ok(_) => Err("decodes to another value than the fixed input".into()),
        Err(e) => Err(format!("does not decode: {e}")),
    }
}

fn key() -> DeviceKey {
    DeviceKey::from_secret([1; 32])
}

const COMMONS: CommonsId = CommonsId([0x11; 32]);
const DOC: DocId = DocId([0x22; 32]);
const INSTALL: InstallTag = InstallTag([7; 8]);
/// Opaque change bytes: the envelope and sync formats carry them without parsing.
const CHANGE: &[u8] = b"opaque automerge change bytes";
/// 2026-03-14 09:00 UTC.
const TIME: i64 = 1_773_478_800;

fn commons_genesis() -> CommonsGenesis {
    CommonsGenesis {
        name: "Farm Hack tools".into(),
        description: "Open farm tools, designed global, built local".into(),
        creator: key().author(),
        created_at: TIME,
        nonce: [3; 16],
    }
}

fn design_genesis() -> DocGenesis {
    DocGenesis {
        commons: commons_genesis().id(),
        kind: DocKind::Design,
        creator: key().author(),
        created_at: TIME,
        nonce: [4; 16],
        fork: None,
    }
}

fn fork_genesis() -> DocGenesis {
    DocGenesis {
        nonce: [5; 16],
        fork: Some(ForkOrigin {
            parent: design_genesis().id(),
            heads: vec![[9; 32], [10; 32]],
            ancestors: vec![DocId([8; 32])],
        }),
        ..design_genesis()
    }
}

fn envelope() -> ChangeEnvelope {
    ChangeEnvelope::sign(&key(), COMMONS, DOC, CHANGE.to_vec())
}

/// A real automerge change, made deterministically: fixed actor (install tag 7s) and time.
fn real_change() -> Vec<u8> {
    let author = key().author();
    let mut doc = Automerge::new().with_actor(actor_for_install(&author, &DOC, &INSTALL));
    let mut tx = doc.transaction();
    tx.put(ROOT, "name", "Roller crimper")
        .expect("put on a fresh document");
    tx.commit_with(CommitOptions::default().with_time(TIME));
    doc.get_last_local_change()
        .expect("the change just made")
        .raw_bytes()
        .to_vec()
}

fn payload() -> DocPayload {
    DocPayload {
        doc: DOC,
        genesis: Some(design_genesis().sign(&key())),
        changes: CompactChanges::Changes(CHANGE.to_vec()),
        proofs: vec![([0x33; 32], envelope().proof())],
    }
}

/// Peer ids as libp2p writes them (an identity multihash of a protobuf ed25519 key), fixed.
const PROVER: &[u8] = b"prover peer id bytes";
const VERIFIER: &[u8] = b"verifier peer id bytes";

fn membership_proof() -> MembershipProof {
    MembershipProof::sign(COMMONS, &key(), None, PROVER, VERIFIER)
}

fn summary() -> Summary {
    Summary {
        commons: vec![CommonsState {
            commons: COMMONS,
            docs: vec![DocState {
                doc: DOC,
                digest: [0x44; 8],
                clock: vec![(vec![0x55; 24], 3), (vec![0x66; 16], 1)],
            }],
        }],
        pending: vec![CommonsId([0x12; 32])],
        names_wants: true,
    }
}

fn bundle_sections() -> Vec<CommonsSection> {
    let design = design_genesis();
    vec![CommonsSection {
        genesis: commons_genesis().sign(&key()),
        docs: vec![DocSection {
            doc: design.id(),
            genesis: Some(design.clone().sign(&key())),
            changes: Some(DocPayload {
                doc: design.id(),
                genesis: None,
                changes: CompactChanges::Changes(CHANGE.to_vec()),
                proofs: vec![([0x33; 32], envelope().proof())],
            }),
        }],
    }]
}

fn bundle_records() -> Vec<Record> {
    let section = bundle_sections().remove(0);
    let doc = section.docs[0].clone();
    vec![
        Record::Commons(section.genesis),
        Record::DocGenesis(doc.genesis.expect("genesis")),
        Record::Changes(doc.changes.expect("changes")),
    ]
}

/// Every vector, recomputed from the fixed inputs above.
fn vectors() -> BTreeMap<&'static str, Vector> {
    let mut v = BTreeMap::new();
    let author = key().author();

    // Identities and actor ids.
    v.insert(
        "author key of secret [1; 32]",
        hash("ed25519", author.as_bytes()),
    );
    v.insert(
        "actor id v1 (16 bytes)",
        hash(DOMAIN_ACTOR, actor_for_v1(&author, &DOC).to_bytes()),
    );
    v.insert(
        "actor id v2 (24 bytes, install tag 0707..)",
        hash(
            DOMAIN_ACTOR_V2,
            actor_for_install(&author, &DOC, &INSTALL).to_bytes(),
        ),
    );

    // Change envelope: signature digest, encoding, id; and one over a real automerge change.
    v.insert(
        "change signature digest",
        hash(
            DOMAIN_CHANGE,
            &signing_digest(&COMMONS, &DOC, &author, CHANGE),
        ),
    );
    let env = envelope();
    v.insert(
        "change envelope",
        record(
            env.to_bytes(),
            same(env.clone(), ChangeEnvelope::from_bytes),
        ),
    );
    v.insert("change envelope id", hash(DOMAIN_RECORD_ID, &env.id()));
    let real = ChangeEnvelope::sign(&key(), COMMONS, DOC, real_change());
    v.insert(
        "change envelope of a real automerge change",
        record(real.to_bytes(), {
            let expected = real.clone();
            move |bytes| {
                let env = ChangeEnvelope::from_bytes(bytes).map_err(|e| e.to_string())?;
                if env != expected {
                    return Err("decodes to another envelope".into());
                }
                env.verify()
                    .map(|_| ())
                    .map_err(|e| format!("no longer verifies: {e}"))
            }
        }),
    );

    // Genesis records and the ids they give.
    let commons = commons_genesis().sign(&key());
    v.insert(
        "commons genesis (signed)",
        record(encode(&commons), {
            let expected = commons.clone();
            move |bytes| {
                let back: Signed<CommonsGenesis> =
                    decode(bytes, "commons genesis").map_err(|e| e.to_string())?;
                if back != expected {
                    return Err("decodes to another record than the fixed input".into());
                }
                back.verify()
                    .map(|_| ())
                    .map_err(|e| format!("no longer verifies: {e}"))
            }
        }),
    );
    v.insert(
        "commons id",
        hash(DOMAIN_RECORD_ID, commons_genesis().id().as_bytes()),
    );
    for (name, id_name, genesis) in [
        ("design genesis (signed)", "design id", design_genesis()),
        ("fork genesis (signed)", "fork id", fork_genesis()),
        (
            "profile genesis (signed)",
            "profile id",
            DocGenesis::profile(commons_genesis().id(), author),
        ),
    ] {
        let signed = genesis.clone().sign(&key());
        v.insert(
            name,
            record(encode(&signed), {
                let expected = signed.clone();
                move |bytes| {
                    let back: Signed<DocGenesis> =
                        decode(bytes, "document genesis").map_err(|e| e.to_string())?;
                    if back != expected {
                        return Err("decodes to another record than the fixed input".into());
                    }
                    back.verify()
                        .map(|_| ())
                        .map_err(|e| format!("no longer verifies: {e}"))
                }
            }),
        );
        v.insert(id_name, hash(DOMAIN_RECORD_ID, genesis.id().as_bytes()));
    }

    // Sneakernet files: the version is the file header (magic and file format byte) and the
    // first record's format byte.
    let bundle = encode_bundle(bundle_sections()).expect("a small bundle encodes");
    let bundle_version = format!(
        "{}{}",
        hex::encode(&bundle[..16]),
        hex::encode(&bundle[20..21])
    );
    v.insert(
        "bundle file",
        Vector {
            version: bundle_version,
            bytes: bundle,
            decodes: Some(Box::new(same(bundle_records(), |b| {
                decode_bundle(b).into_result()
            }))),
        },
    );
    // A private commons' bundle: every record of its section sealed (file format 2).
    let key_of = BTreeMap::from([(commons_genesis().id(), bundle_key(&commons_genesis()))]);
    let sealed_bundle =
        encode_bundle_sealed(bundle_sections(), &key_of).expect("a small bundle encodes");
    let sealed_version = format!(
        "{}{}",
        hex::encode(&sealed_bundle[..16]),
        hex::encode(&sealed_bundle[20..21])
    );
    let sealed_key = bundle_key(&commons_genesis());
    v.insert(
        "bundle file v2 sealed",
        Vector {
            version: sealed_version,
            bytes: sealed_bundle,
            decodes: Some(Box::new(move |b: &[u8]| {
                let records = decode_bundle(b).into_result().map_err(|e| e.to_string())?;
                let opened: Result<Vec<Record>, _> =
                    records.iter().map(|r| r.open(&sealed_key)).collect();
                match opened {
                    Ok(opened) if opened == bundle_records() => Ok(()),
                    Ok(_) => Err("opens to other records than the fixed input".into()),
                    Err(e) => Err(format!("does not open: {e}")),
                }
            })),
        },
    );
    v.insert(
        "private commons bundle key",
        hash(DOMAIN_BUNDLE_KEY, &bundle_key(&commons_genesis())),
    );
    v.insert(
        "private commons topic id",
        hash(DOMAIN_TOPIC, &private_topic_id(&COMMONS)),
    );
    let proof = membership_proof();
    v.insert(
        "private commons membership proof",
        record(
            encode(&proof),
            same(proof, |b| decode::<MembershipProof>(b, "proof")),
        ),
    );
    let summary_file = encode_summary(&summary());
    v.insert(
        "bundle summary file",
        Vector {
            version: hex::encode(&summary_file[..18]),
            bytes: summary_file,
            decodes: Some(Box::new(same(summary(), decode_summary))),
        },
    );

    // Sync messages, every variant.
    let requests = [
        (
            "sync request Hello",
            SyncRequest::Hello {
                commons: COMMONS,
                digest: [0x77; 32],
            },
        ),
        (
            "sync request Fetch",
            SyncRequest::Fetch {
                commons: COMMONS,
                wants: vec![
                    Want {
                        prefix: [0x22; 8],
                        have_genesis: true,
                        clock: vec![(vec![0x55; 24], 3)],
                    },
                    Want {
                        prefix: [0x23; 8],
                        have_genesis: false,
                        clock: vec![],
                    },
                ],
                budget: 512 * 1024,
            },
        ),
        (
            "sync request Prove",
            SyncRequest::Prove(Box::new(membership_proof())),
        ),
        (
            "sync request Entries",
            SyncRequest::Entries {
                commons: COMMONS,
                buckets: 64,
                wanted: vec![0, 7, 63],
            },
        ),
        (
            "sync request FetchV3",
            SyncRequest::FetchV3 {
                commons: COMMONS,
                wants: vec![WantV3 {
                    prefix: [0x22; 8],
                    have_genesis: true,
                    clock: vec![([0x56; 4], 3)],
                }],
                budget: 512 * 1024,
            },
        ),
    ];
    for (name, request) in requests {
        v.insert(
            name,
            record(request.to_bytes(), same(request, SyncRequest::from_bytes)),
        );
    }
    let responses = [
        ("sync response InSync", SyncResponse::InSync),
        (
            "sync response Inventory",
            SyncResponse::Inventory {
                genesis: commons_genesis().sign(&key()),
                docs: vec![([0x22; 8], [0x44; 8]), ([0x23; 8], [0x45; 8])],
            },
        ),
        (
            "sync response Summary",
            SyncResponse::Summary {
                buckets: 64,
                digests: vec![[1, 2, 3, 4], [5, 6, 7, 8]],
            },
        ),
        (
            "sync response Docs",
            SyncResponse::Docs {
                items: vec![
                    payload(),
                    DocPayload {
                        doc: DocId([0x23; 32]),
                        genesis: None,
                        changes: CompactChanges::Document(b"opaque saved document".to_vec()),
                        proofs: vec![],
                    },
                ],
                deferred: vec![[0x24; 8]],
            },
        ),
        ("sync response NotJoined", SyncResponse::NotJoined),
        ("sync response Proven", SyncResponse::Proven),
        ("sync response NotAMember", SyncResponse::NotAMember),
        (
            "sync response DocsV3",
            SyncResponse::DocsV3 {
                items: vec![DocPayloadV3 {
                    doc: DocRef::Prefix([0x22; 8]),
                    genesis: None,
                    changes: CompactChanges::Changes(b"opaque deflated changes".to_vec()),
                    proofs: vec![ProofV3 {
                        change: vec![0x31, 0x32, 0x33, 0x34],
                        doc: None,
                        author: None,
                        signature: payload().proofs[0].1.signature,
                    }],
                }],
                deferred: vec![[0x24; 8]],
            },
        ),
        (
            "sync response Refused",
            SyncResponse::Refused {
                reason: "too many wants".into(),
            },
        ),
    ];
    for (name, response) in responses {
        v.insert(
            name,
            record(
                response.to_bytes(),
                same(response, SyncResponse::from_bytes),
            ),
        );
    }
    let live = LiveChange {
        genesis: Some(design_genesis().sign(&key())),
        envelope: envelope(),
    };
    v.insert(
        "live change",
        record(live.to_bytes(), same(live.clone(), LiveChange::from_bytes)),
    );
    for (name, gossip) in [
        ("gossip Change", Gossip::Change(Box::new(live))),
        (
            "gossip Announce",
            Gossip::Announce {
                commons: COMMONS,
                digest: [0x78; 32],
            },
        ),
        (
            "gossip PrivateNews",
            Gossip::PrivateNews { digest: [0x79; 32] },
        ),
    ] {
        v.insert(
            name,
            record(gossip.to_bytes(), same(gossip, Gossip::from_bytes)),
        );
    }
    v.insert(
        "sync heads digest",
        hash(DOMAIN_STATE, &heads_digest(&[[0x99; 32], [0x98; 32]])),
    );
    v.insert(
        "sync commons digest",
        hash(
            DOMAIN_STATE,
            &commons_digest(&[([0x22; 8], [0x44; 8]), ([0x23; 8], [0x45; 8])]),
        ),
    );
    v
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/known-answers.json")
}

/// The committed vectors: name -> (version, bytes).
fn committed() -> BTreeMap<String, (String, Vec<u8>)> {
    let path = vectors_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return BTreeMap::new();
    };
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let mut out = BTreeMap::new();
    for (name, entry) in value.as_object().expect("an object of vectors") {
        let version = entry["version"].as_str().expect("version").to_string();
        let bytes = hex::decode(entry["hex"].as_str().expect("hex"))
            .unwrap_or_else(|e| panic!("vector {name}: bad hex: {e}"));
        out.insert(name.clone(), (version, bytes));
    }
    out
}

#[test]
fn formats_match_their_known_answers() {
    let computed = vectors();
    let committed = committed();
    let mut failures = Vec::new();
    let mut breaks = Vec::new();

    for (name, vector) in &computed {
        match committed.get(*name) {
            None => failures.push(format!(
                "vector `{name}` is not committed: regenerate with {REGENERATE}"
            )),
            Some((version, bytes)) if *bytes != vector.bytes => {
                if *version == vector.version {
                    breaks.push(name.to_string());
                    failures.push(format!(
                        "format of `{name}` changed but its version `{version}` did not: readers of \
                         the old format would misread it; bump its version byte (or domain string), \
                         then regenerate with {REGENERATE}"
                    ));
                } else {
                    failures.push(format!(
                        "format of `{name}` changed (version `{version}` -> `{}`): if that is \
                         intended, keep reading version `{version}` and regenerate with {REGENERATE}",
                        vector.version
                    ));
                }
            }
            Some((version, _)) if *version != vector.version => failures.push(format!(
                "vector `{name}` has the same bytes but its version went `{version}` -> `{}`: \
                 regenerate with {REGENERATE}",
                vector.version
            )),
            Some(_) => {}
        }
        // Whatever an earlier build committed must still decode to the fixed input.
        if let (Some(decodes), Some((_, bytes))) = (&vector.decodes, committed.get(*name)) {
            if let Err(e) = decodes(bytes) {
                failures.push(format!(
                    "committed bytes of `{name}` are no longer read back: {e}; data written by \
                     earlier builds must stay readable"
                ));
            }
        }
    }
    for name in committed.keys() {
        if !computed.contains_key(name.as_str()) {
            failures.push(format!(
                "committed vector `{name}` is no longer computed: regenerate with {REGENERATE}"
            ));
        }
    }

    if std::env::var_os("HEDGEROW_WRITE_VECTORS").is_some_and(|v| v == "1") {
        let break_ok = std::env::var_os("HEDGEROW_FORMAT_BREAK_OK").is_some_and(|v| v == "1");
        assert!(
            breaks.is_empty() || break_ok,
            "refusing to write vectors whose bytes changed under an unchanged version: {}. \
             Bump their version, or set HEDGEROW_FORMAT_BREAK_OK=1 if no data in the old form \
             exists anywhere.",
            breaks.join(", ")
        );
        let mut out = Map::new();
        for (name, vector) in &computed {
            if let Some(decodes) = &vector.decodes {
                decodes(&vector.bytes)
                    .unwrap_or_else(|e| panic!("fresh bytes of `{name}` do not read back: {e}"));
            }
            out.insert(
                name.to_string(),
                json!({"version": vector.version, "hex": hex::encode(&vector.bytes)}),
            );
        }
        let text = serde_json::to_string_pretty(&Value::Object(out)).expect("JSON") + "\n";
        std::fs::write(vectors_path(), text).expect("write the vectors file");
        eprintln!(
            "wrote {} vectors to {}",
            computed.len(),
            vectors_path().display()
        );
        return;
    }

    assert!(
        failures.is_empty(),
        "{} known-answer vector(s) failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
