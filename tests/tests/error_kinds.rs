//! Library errors say what went wrong; the CLI adds what to do, by the error's kind, and adds
//! the same whether it opened the store itself or a running `serve` answered (the control
//! reply carries the kind beside the message).
//!
//! ```text
//!   Ada offline: refused commands ──▶ one error line each, ending with what to do
//!   Ada serve:   the same commands over control.sock ──▶ the same lines
//!                a raw control request ──▶ {"error": "...", "kind": "no-such-document", "what": "design"}
//! ```

use hedgerow_node::api::Request;
use hedgerow_protocol::schema::DocKind;
use hedgerow_tests::net::ServeNode;
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Sends one request line to the home's running node and parses its reply line.
fn raw_call(home: &TestHome, request: &Request) -> Value {
    let mut stream = UnixStream::connect(home.path().join("control.sock")).expect("control socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut line = serde_json::to_vec(request).expect("request");
    line.push(b'\n');
    stream.write_all(&line).expect("send");
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .expect("reply line");
    serde_json::from_str(&reply).expect("reply is JSON")
}

#[test]
fn a_refusal_gets_the_same_instruction_offline_and_through_serve() {
    let ada = TestHome::init("Ada");
    let first = id(&ada.json(&["commons", "create", "Farm Hack tools"]));
    ada.json(&["commons", "create", "Seed library"]);
    let design = id(&ada.json(&[
        "design",
        "new",
        "Roller crimper",
        "--commons",
        &first,
        "--set",
        "licence.hardware=CERN-OHL-S-2.0",
    ]));

    // Each refused command, and what its line must end with.
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["design", "show", "zzzz9999"],
            "no design matches `zzzz9999`; `hedgerow design list` shows the ones this node holds"
                .into(),
        ),
        (
            vec!["commons", "show", "zzzz9999"],
            "no commons matches `zzzz9999`; `hedgerow commons list` shows the ones this node holds"
                .into(),
        ),
        (
            vec!["design", "list"],
            "and none was chosen; choose one with --commons NAME (or its id)".into(),
        ),
        (
            vec!["design", "show", &design, "--version", "9.9"],
            format!(
                "design {design} has no release `9.9`; `hedgerow design show {design}` lists its releases"
            ),
        ),
        (
            vec!["design", "fork", &design, "--licence", "hardware=MIT"],
            "so `MIT` is refused; pass --allow-relicense only if the licensors have agreed to the change"
                .into(),
        ),
    ];
    let offline: Vec<String> = cases.iter().map(|(args, _)| ada.fail(args)).collect();
    for ((args, ending), line) in cases.iter().zip(&offline) {
        assert!(line.ends_with(ending.as_str()), "{args:?}: {line}");
        assert_eq!(line.lines().count(), 1, "{args:?}: {line}");
    }

    let ada = ServeNode::start(ada, &[]);
    for ((args, _), offline) in cases.iter().zip(&offline) {
        assert_eq!(&ada.fail(args), offline, "{args:?} through serve");
    }

    // On the wire: what went wrong, and its kind; what to do is the CLI's to add.
    let reply = raw_call(
        &ada,
        &Request::DocShow {
            id: "zzzz9999".into(),
            kind: DocKind::Design,
            version: None,
        },
    );
    assert_eq!(reply["error"], "no design matches `zzzz9999`", "{reply}");
    assert_eq!(reply["kind"], "no-such-document", "{reply}");
    assert_eq!(reply["what"], "design", "{reply}");
    let reply = raw_call(
        &ada,
        &Request::DocList {
            commons: None,
            kind: DocKind::Design,
            target: None,
            tags: Vec::new(),
            stage: None,
            search: None,
            page: None,
        },
    );
    assert_eq!(reply["kind"], "choose-commons", "{reply}");
    assert!(
        !reply["error"].as_str().unwrap_or("").contains("--commons"),
        "{reply}"
    );
    // A success keeps its wire form.
    let reply = raw_call(&ada, &Request::Whoami);
    assert_eq!(reply["ok"]["name"], "Ada", "{reply}");
}
