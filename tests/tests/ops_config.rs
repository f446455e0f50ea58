//! The settings file and environment through the real binary: `config set|show`,
//! `config.toml` read by `serve`, `HEDGEROW_<KEY>` variables, the previous release's
//! `config.json` carried over, JSON logs, completions and the man page.
//!
//! ```text
//!   A (serve) <-- dialled from config.toml -- B (serve, no --peer)
//!   A (serve) <-- dialled from HEDGEROW_PEERS -- C (serve, no --peer, JSON logs from HEDGEROW_LOG_FORMAT)
//! ```

use hedgerow_tests::net::{ServeNode, ServeOptions};
use hedgerow_tests::{hedgerow_bin, id, TestHome};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn serve_dials_the_peers_of_config_toml_and_of_the_environment() {
    let a = TestHome::init("Ada");
    let commons = id(&a.json(&["commons", "create", "Open Tools"]));
    let a = ServeNode::start(a, &[]);

    let b = TestHome::init("Ben");
    b.json(&["commons", "join", &commons]);
    b.ok(&["config", "set", "peers", &a.multiaddr()]);
    let b = ServeNode::start(b, &[]);
    assert!(
        b.wait_connected_to(a.peer_id(), WAIT),
        "B never dialled the peer in its config.toml: {}",
        b.status()
    );

    let c = TestHome::init("Cleo");
    c.json(&["commons", "join", &commons]);
    let options = ServeOptions {
        env: vec![
            ("HEDGEROW_PEERS".into(), a.multiaddr()),
            ("HEDGEROW_LOG_FORMAT".into(), "json".into()),
        ],
        ..ServeOptions::default()
    };
    let c = ServeNode::start_with(c, options);
    assert!(
        c.wait_connected_to(a.peer_id(), WAIT),
        "C never dialled the peer in HEDGEROW_PEERS: {}",
        c.status()
    );
    // Every log line is one JSON object (the node logs at info in tests).
    let log = c.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{log}");
    for line in lines {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
}

#[test]
fn config_set_checks_before_writing_and_show_names_each_source() {
    let home = TestHome::init("Ada");
    home.ok(&["config", "set", "sync_interval", "30"]);
    home.ok(&["config", "set", "fetch.role", "hub"]);
    let path = home.path().join("config.toml");
    let before = std::fs::read(&path).expect("config.toml");

    let err = home.fail(&["config", "set", "sync_interval", "soon"]);
    assert!(err.contains("config key `sync_interval`"), "{err}");
    let err = home.fail(&["config", "set", "listn", "/ip4/127.0.0.1/tcp/1"]);
    assert!(err.contains("unknown config key `listn`"), "{err}");
    assert_eq!(
        std::fs::read(&path).expect("config.toml"),
        before,
        "a refused set wrote"
    );

    let shown = home.json(&["config", "show"]);
    assert_eq!(shown["sync_interval"]["value"], 30, "{shown}");
    assert_eq!(shown["sync_interval"]["source"], "config.toml", "{shown}");
    assert_eq!(shown["fetch.role"]["value"], "hub", "{shown}");
    assert_eq!(shown["mdns"]["source"], "default", "{shown}");

    // The environment wins over the file.
    let out = home
        .command()
        .args(["config", "show", "--json"])
        .env("HEDGEROW_SYNC_INTERVAL", "7")
        .output()
        .expect("run");
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["sync_interval"]["value"], 7, "{shown}");
    assert_eq!(shown["sync_interval"]["source"], "HEDGEROW_SYNC_INTERVAL");

    // A bad line is named with its key and line, and serve refuses to start on it.
    // Below the header comment, above the first table.
    let text = String::from_utf8(before).expect("utf-8");
    let text = text.replacen("\n\n", "\n\nmax_connections_per_ip = -2\n", 1);
    let at = text.find("max_connections_per_ip = -2").expect("inserted");
    let line = text[..at].lines().count() + 1;
    std::fs::write(&path, &text).expect("write");
    let err = home.fail(&["config", "show"]);
    assert!(
        err.contains(&format!(
            "config.toml line {line}: `max_connections_per_ip`"
        )),
        "{err}"
    );
    let err = home.fail(&["serve", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    assert!(err.contains(&format!("config.toml line {line}")), "{err}");
}

#[test]
fn the_previous_release_config_json_is_read_then_carried_over_with_a_backup() {
    let home = TestHome::init("Ada");
    let json = r#"{"peers": ["/ip4/127.0.0.1/tcp/4999"], "fetch": {"role": "hub"}, "files": {"max_file_bytes": 1000}}"#;
    std::fs::write(home.path().join("config.json"), json).expect("config.json");
    let shown = home.json(&["config", "show"]);
    assert_eq!(shown["fetch.role"]["value"], "hub", "{shown}");
    assert_eq!(shown["fetch.role"]["source"], "config.json", "{shown}");
    assert_eq!(shown["files.max_file_bytes"]["value"], 1000, "{shown}");

    home.ok(&["config", "set", "mdns", "false"]);
    assert!(!home.path().join("config.json").exists());
    let backup = std::fs::read_to_string(home.path().join("config.json.backup")).expect("backup");
    assert_eq!(backup, json);
    let shown = home.json(&["config", "show"]);
    assert_eq!(shown["fetch.role"]["value"], "hub", "{shown}");
    assert_eq!(shown["fetch.role"]["source"], "config.toml", "{shown}");
    assert_eq!(
        shown["peers"]["value"][0], "/ip4/127.0.0.1/tcp/4999",
        "{shown}"
    );
    assert_eq!(shown["mdns"]["value"], false, "{shown}");
}

#[test]
fn completions_and_man_pages_come_from_the_command_definition() {
    let run = |args: &[&str]| {
        let out = Command::new(hedgerow_bin())
            .args(args)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("_hedgerow()") && bash.contains("config"),
        "{bash}"
    );
    let zsh = run(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef hedgerow"), "{zsh}");
    let man = run(&["man"]);
    assert!(
        man.contains(".TH hedgerow 1") && man.contains("serve"),
        "{man}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("man");
    run(&["man", "--out", out.to_str().expect("utf-8 path")]);
    assert!(out.join("hedgerow.1").exists());
    assert!(out.join("hedgerow-serve.1").exists());
    assert!(out.join("hedgerow-config-set.1").exists());
}
