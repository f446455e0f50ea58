//! The web page's write side over plain HTTP, with a key held here in Rust as a browser would
//! hold its own: prepare, check the digest against the bytes shown, sign, commit. What the
//! node stores is signed by that key; a wrong signature, an unknown key, a guest editing a
//! design and a request without the write header are refused with nothing stored; a
//! read-only node has no write endpoint. A second node that syncs over loopback shows the
//! guest's note as signed by the guest's key.

use hedgerow_protocol::encoding::domain_hash;
use hedgerow_protocol::DeviceKey;
use hedgerow_tests::net::wait_until;
use hedgerow_tests::web::{http, HttpResponse, WebNode};
use hedgerow_tests::{id, TestHome};
use serde_json::{json, Value};
use std::time::Duration;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// POSTs JSON as the page's script does (same origin, write header).
fn post(node: &WebNode, path: &str, body: &Value) -> HttpResponse {
    let origin = node.url();
    http(
        node.addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("X-Hedgerow-Write", "1"),
            ("Origin", origin.as_str()),
        ],
        body.to_string().as_bytes(),
    )
}

fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|_| json!({"raw": response.text()}))
}

/// A browser key held here.
struct Browser {
    key: DeviceKey,
}

impl Browser {
    fn new(seed: u8) -> Self {
        Browser {
            key: DeviceKey::from_secret([seed; 32]),
        }
    }

    fn public(&self) -> String {
        hex(self.key.author().as_bytes())
    }

    /// Prepares `write`; returns the node's answer.
    fn prepare(&self, node: &WebNode, write: Value) -> HttpResponse {
        post(
            node,
            "/api/write/prepare",
            &json!({"key": self.public(), "write": write}),
        )
    }

    /// Signs what a prepare answered, checking each digest against its bytes as sign.js does.
    fn sign(&self, prepared: &Value) -> Value {
        let mut signatures = serde_json::Map::new();
        for item in prepared["sign"].as_array().expect("items to sign") {
            let preimage = unhex(item["preimage"].as_str().expect("preimage"));
            let digest = domain_hash(item["domain"].as_str().expect("domain"), &preimage);
            assert_eq!(hex(&digest), item["digest"].as_str().expect("digest"));
            let part = item["part"].as_str().expect("part").to_string();
            let at = if part == "genesis" { 36 } else { 68 };
            assert_eq!(&preimage[at..at + 32], self.key.author().as_bytes());
            signatures.insert(part, json!(hex(&self.key.sign(&digest).0)));
        }
        Value::Object(signatures)
    }

    fn commit(&self, node: &WebNode, prepared: &Value, signatures: Value) -> HttpResponse {
        post(
            node,
            "/api/write/commit",
            &json!({"key": self.public(), "token": prepared["token"], "signatures": signatures}),
        )
    }

    /// Prepare, sign, commit; panics unless both answer 200.
    fn write(&self, node: &WebNode, write: Value) -> Value {
        let prepared = self.prepare(node, write);
        assert_eq!(prepared.status, 200, "prepare: {}", prepared.text());
        let prepared = json_of(&prepared);
        let committed = self.commit(node, &prepared, self.sign(&prepared));
        assert_eq!(committed.status, 200, "commit: {}", committed.text());
        json_of(&committed)
    }
}

struct Fixture {
    commons: String,
    design: String,
    event: String,
}

fn stewarded(home: &TestHome) -> Fixture {
    let commons = id(&home.json(&["commons", "create", "Build day", "--stewarded"]));
    let design = id(&home.json(&["design", "new", "Roller crimper", "--step", "Cut the tube"]));
    let event = id(&home.json(&["event", "new", "Barn day"]));
    Fixture {
        commons,
        design,
        event,
    }
}

fn guest_code(home: &TestHome) -> String {
    home.json(&[
        "commons",
        "invite",
        "--role",
        "guest",
        "--uses",
        "1",
        "--expires",
        "1h",
    ])["code"]
        .as_str()
        .expect("code")
        .to_string()
}

#[test]
fn a_guest_invited_by_code_writes_a_note_that_another_node_shows_signed_by_the_guest() {
    let home = TestHome::init("Host");
    let fixture = stewarded(&home);
    let code = guest_code(&home);
    let node = WebNode::start(home, false);
    let guest = Browser::new(7);
    guest.write(&node, json!({"write": "redeem", "code": code}));
    let note = guest.write(
        &node,
        json!({"write": "note_add", "target": fixture.event, "body": "Bring gloves"}),
    );
    let note_id = note["doc"].as_str().expect("note id").to_string();
    let author = guest.key.author().to_string();
    let history = node.json(&["note", "history", &note_id]);
    assert_eq!(history[0]["author"], json!(author), "{history}");
    assert_eq!(history[0]["signature"], json!("signed"), "{history}");
    // The code had one use.
    let other = Browser::new(8);
    let used = other.prepare(&node, json!({"write": "redeem", "code": code}));
    assert_eq!(used.status, 400, "{}", used.text());
    assert!(used.text().contains("used"), "{}", used.text());
    // Another node, syncing over loopback, shows the note signed by the guest's key.
    let listen = node.json(&["status"])["listen"][0]
        .as_str()
        .expect("listen address")
        .to_string();
    let peer = format!(
        "{listen}/p2p/{}",
        node.json(&["status"])["peer_id"].as_str().expect("peer id")
    );
    let reader = TestHome::init("Reader");
    reader.ok(&["commons", "join", &fixture.commons]);
    assert!(
        wait_until(Duration::from_secs(30), || {
            reader.run(&["sync", "--peer", &peer, "--json"]);
            reader
                .run(&["note", "history", &note_id, "--json"])
                .status
                .success()
        }),
        "the note did not reach the second node"
    );
    let history = reader.json(&["note", "history", &note_id]);
    assert_eq!(history[0]["author"], json!(author), "{history}");
    assert_eq!(history[0]["signature"], json!("signed"), "{history}");
}

#[test]
fn wrong_signatures_unknown_keys_guests_on_designs_and_headerless_posts_are_refused() {
    let home = TestHome::init("Host");
    let fixture = stewarded(&home);
    let code = guest_code(&home);
    let node = WebNode::start(home, false);
    let notes_before = node.json(&["note", "list", "--on", &fixture.event]);
    // Unknown key: nothing is built.
    let stranger = Browser::new(9);
    let refused = stranger.prepare(
        &node,
        json!({"write": "note_add", "target": fixture.event, "body": "hello"}),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("not known"), "{}", refused.text());
    let guest = Browser::new(7);
    guest.write(&node, json!({"write": "redeem", "code": code}));
    // A signature by another key.
    let prepared = guest.prepare(
        &node,
        json!({"write": "note_add", "target": fixture.event, "body": "forged"}),
    );
    assert_eq!(prepared.status, 200, "{}", prepared.text());
    let prepared = json_of(&prepared);
    let forged = stranger.sign_anyway(&prepared);
    let refused = guest.commit(&node, &prepared, forged);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("does not verify"),
        "{}",
        refused.text()
    );
    assert_eq!(
        node.json(&["note", "list", "--on", &fixture.event]),
        notes_before
    );
    // A guest edits no design.
    let refused = guest.prepare(
        &node,
        json!({"write": "edit", "doc": fixture.design, "edits": [{"op": "set", "field": "summary", "value": "mine"}]}),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("guest"), "{}", refused.text());
    // Without the write header (what a form on another site could send): refused.
    let bare = http(
        node.addr,
        "POST",
        "/api/write/prepare",
        &[("Content-Type", "application/json")],
        json!({"key": guest.public(), "write": {"write": "note_add", "target": fixture.event, "body": "x"}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(bare.status, 403, "{}", bare.text());
    // A wrong device link code.
    let wrong = post(
        &node,
        "/api/enrol/device",
        &json!({"key": stranger.public(), "code": "AAAAA-BBBBB-CCCCC-DDDDD"}),
    );
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert!(wrong.text().contains("link code"), "{}", wrong.text());
}

#[test]
fn a_browser_linked_by_device_code_edits_a_design_and_says_it_built_it() {
    let home = TestHome::init("Ada");
    let fixture = stewarded(&home);
    let node = WebNode::start(home, false);
    let code = node.json(&["device", "add", "phone"])["code"]
        .as_str()
        .expect("code")
        .to_string();
    let phone = Browser::new(11);
    let enrolled = post(
        &node,
        "/api/enrol/device",
        &json!({"key": phone.public(), "code": code}),
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.text());
    let again = post(
        &node,
        "/api/enrol/device",
        &json!({"key": Browser::new(12).public(), "code": code}),
    );
    assert_eq!(again.status, 400, "the code is spent: {}", again.text());
    phone.write(
        &node,
        json!({"write": "edit", "doc": fixture.design, "edits": [
            {"op": "add_step", "text": "Weld the drum"},
            {"op": "add_built", "place": "Barn"}
        ]}),
    );
    let design = node.json(&["design", "show", &fixture.design]);
    let author = phone.key.author().to_string();
    assert_eq!(design["built"][0]["by"], json!(author), "{design}");
    assert!(
        design["steps"].to_string().contains("Weld the drum"),
        "{design}"
    );
    let history = node.json(&["design", "history", &fixture.design]);
    let last = history
        .as_array()
        .expect("history")
        .last()
        .expect("a change")
        .clone();
    assert_eq!(last["author"], json!(author));
    assert_eq!(last["device_name"], json!("phone"));
}

#[test]
fn a_read_only_node_takes_no_write() {
    let home = TestHome::init("Hub");
    let fixture = stewarded(&home);
    let node = WebNode::start(home, true);
    let guest = Browser::new(7);
    let refused = guest.prepare(
        &node,
        json!({"write": "note_add", "target": fixture.event, "body": "hello"}),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    let page = node.get("/write/enrol");
    assert_eq!(page.status, 404, "no write page either");
}

impl Browser {
    /// Signs each digest without checking it names this key (a forger's signature).
    fn sign_anyway(&self, prepared: &Value) -> Value {
        let mut signatures = serde_json::Map::new();
        for item in prepared["sign"].as_array().expect("items") {
            let digest: [u8; 32] = unhex(item["digest"].as_str().expect("digest"))
                .try_into()
                .expect("32 bytes");
            signatures.insert(
                item["part"].as_str().expect("part").to_string(),
                json!(hex(&self.key.sign(&digest).0)),
            );
        }
        Value::Object(signatures)
    }
}
