//! The web page's signing code (`node/assets/web/sign.js` with its vendored @noble libraries),
//! run in Node.js: what it signs verifies in Rust as the envelope and genesis signatures the
//! node stores, and it refuses to sign a digest that is not the hash of the bytes it was shown
//! or bytes naming another author.
//!
//! Skips with a message when `node` is absent, except in CI (`CI=true`), where it must run.

use hedgerow_protocol::automerge::Automerge;
use hedgerow_protocol::external_sign::{prepare_change, ToSign};
use hedgerow_protocol::schema::{self, DocKind, EditError, NewDocument};
use hedgerow_protocol::{ChangeEnvelope, CommonsId, DeviceKey, DocGenesis, DocId, Signature};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../node/assets/web")
}

/// A copy of sign.js and its vendored libraries in a folder Node reads as ES modules, or
/// `None` (after a skip) when Node.js is not installed.
fn js_dir() -> Option<tempfile::TempDir> {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "node (Node.js) is required in CI for the web page's signing test"
        );
        hedgerow_tests::skip::skip("web_sign_js", "node (Node.js) is not installed");
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(assets().join("sign.js"), dir.path().join("sign.js")).expect("copy sign.js");
    for package in ["noble-ed25519", "noble-hashes"] {
        let from = assets().join("vendor").join(package);
        let to = dir.path().join("vendor").join(package);
        std::fs::create_dir_all(&to).expect("vendor dir");
        for entry in std::fs::read_dir(&from).expect("vendored files") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
    std::fs::write(dir.path().join("package.json"), r#"{"type":"module"}"#).expect("package.json");
    std::fs::write(
        dir.path().join("run.js"),
        "import { signItems, unhex } from './sign.js';\n\
         const input = JSON.parse(process.argv[2]);\n\
         try {\n\
           console.log(JSON.stringify({ ok: signItems(input.items, unhex(input.secret)) }));\n\
         } catch (e) {\n\
           console.log(JSON.stringify({ error: e.message }));\n\
         }\n",
    )
    .expect("run.js");
    Some(dir)
}

/// What sign.js answers for `items` signed with `secret`.
fn sign_in_js(dir: &Path, secret: &[u8; 32], items: &[ToSign]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            json!({
                "part": item.part,
                "domain": item.domain,
                "preimage": hex(&item.preimage),
                "digest": hex(&item.digest),
            })
        })
        .collect();
    let input = json!({"secret": hex(secret), "items": items});
    let out = Command::new("node")
        .current_dir(dir)
        .arg("run.js")
        .arg(input.to_string())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn signature(text: &Value) -> Signature {
    let text = text.as_str().expect("hex signature");
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect();
    Signature::from_slice(&bytes).expect("64 bytes")
}

/// A new note's genesis and first change, built for `browser` as the node builds them.
fn new_note(browser: &DeviceKey) -> (DocGenesis, Vec<u8>) {
    let genesis = DocGenesis {
        commons: CommonsId([1; 32]),
        kind: DocKind::Note,
        creator: browser.author(),
        created_at: 1_764_486_000,
        nonce: [5; 16],
        fork: None,
    };
    let new = NewDocument::note(DocId([9; 32]).to_string(), None, "Bring gloves");
    let made = prepare_change(
        &Automerge::new(),
        &genesis.id(),
        DocKind::Note,
        &browser.author(),
        1_764_486_001,
        |tx| schema::init_document(tx, &new).map_err(EditError::from),
    )
    .expect("prepared")
    .expect("a change");
    (genesis, made.change)
}

#[test]
fn what_the_page_signs_verifies_in_rust() {
    let Some(dir) = js_dir() else { return };
    let secret = [42u8; 32];
    let browser = DeviceKey::from_secret(secret);
    let (genesis, change) = new_note(&browser);
    let doc = genesis.id();
    let items = [
        ToSign::genesis(&genesis),
        ToSign::change(&genesis.commons, &doc, &browser.author(), &change),
    ];
    let answer = sign_in_js(dir.path(), &secret, &items);
    let signed = &answer["ok"];
    assert!(signed.is_object(), "sign.js refused: {answer}");
    let envelope = ChangeEnvelope {
        commons: genesis.commons,
        doc,
        author: browser.author(),
        change,
        signature: signature(&signed["change"]),
    };
    envelope.verify().expect("the change signature verifies");
    let genesis = hedgerow_protocol::Signed {
        body: genesis,
        signature: signature(&signed["genesis"]),
    };
    assert_eq!(
        genesis.verify().expect("the genesis signature verifies"),
        doc
    );
}

#[test]
fn the_page_refuses_a_digest_that_is_not_the_hash_of_what_it_is_shown() {
    let Some(dir) = js_dir() else { return };
    let secret = [42u8; 32];
    let browser = DeviceKey::from_secret(secret);
    let (genesis, change) = new_note(&browser);
    let doc = genesis.id();
    // A node that shows one change and asks for a signature over another.
    let mut lying = ToSign::change(&genesis.commons, &doc, &browser.author(), &change);
    lying.digest = ToSign::change(&genesis.commons, &doc, &browser.author(), b"other").digest;
    let answer = sign_in_js(dir.path(), &secret, &[lying]);
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("not the hash"), "{answer}");
    // Honest hashing of bytes that name someone else as the author.
    let victim = DeviceKey::from_secret([7; 32]);
    let other = ToSign::change(&genesis.commons, &doc, &victim.author(), &change);
    let answer = sign_in_js(dir.path(), &secret, &[other]);
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("another author"), "{answer}");
}
