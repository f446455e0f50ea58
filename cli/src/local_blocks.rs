//! `hedgerow block`, `unblock`, `hide`, `unhide`, `blocks` and `purge`: this node's own
//! block list and hidden documents, whatever any commons says (see
//! `hedgerow_node::local_blocks`). They work offline and through a running `serve`.

use crate::args::JsonFlag;
use crate::output::line;
use anyhow::Result;
use clap::Subcommand;
use hedgerow_node::api::Request;
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

/// This node's block list and hidden documents.
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Refuse an author's new changes on this node, in every commons (what is stored stays).
    Block {
        /// The author key, or a unique prefix of one this node knows.
        person: String,
        /// A note for yourself (why).
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Take an author's new changes again.
    Unblock {
        /// The author key, or a unique prefix of one.
        person: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Stop listing, showing and serving a document on this node (its changes stay as evidence).
    Hide {
        /// The document id or a unique prefix.
        id: String,
        /// Why (shown by `show` and `blocks`).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List, show and serve a hidden document again.
    Unhide {
        /// The document id or a unique prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the authors this node blocks and the documents it hides.
    Blocks(JsonFlag),
    /// Remove a hidden document's changes from the store for good; it is never taken in again.
    Purge {
        /// The document id or a unique prefix (hide it first).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Runs one of these commands against the node of `home`.
pub fn run(home: &Path, command: LocalCommand) -> Result<ExitCode> {
    let (request, json) = match command {
        LocalCommand::Block { person, note, json } => (Request::Block { person, note }, json),
        LocalCommand::Unblock { person, json } => (Request::Unblock { person }, json),
        LocalCommand::Hide { id, reason, json } => (Request::Hide { id, reason }, json),
        LocalCommand::Unhide { id, json } => (Request::Unhide { id }, json),
        LocalCommand::Blocks(json) => (Request::Blocks, json),
        LocalCommand::Purge { id, json } => (Request::Purge { id }, json),
    };
    let human = describe(&request);
    let value = crate::send(home, request)?;
    if json.json {
        crate::output::json(&value);
        return Ok(ExitCode::SUCCESS);
    }
    match human {
        Some(done) => println!("{}", line(&done(&value))),
        None => print_blocks(&value),
    }
    Ok(ExitCode::SUCCESS)
}

/// How a reply is said in words; `None` for `blocks`, which prints a list.
fn describe(request: &Request) -> Option<fn(&Value) -> String> {
    Some(match request {
        Request::Block { .. } => |v| {
            format!(
                "blocked {}: their new changes are refused on this node",
                text(v, "author")
            )
        },
        Request::Unblock { .. } => |v| format!("unblocked {}", text(v, "author")),
        Request::Hide { .. } => |v| {
            format!(
                "hid {}: not listed, shown or served by this node",
                text(v, "id")
            )
        },
        Request::Unhide { .. } => |v| format!("{} is no longer hidden", text(v, "id")),
        Request::Purge { .. } => |v| {
            format!(
                "purged {}: removed {} signed changes; it is never taken in again",
                text(v, "id"),
                v.get("changes").and_then(Value::as_u64).unwrap_or(0)
            )
        },
        _ => return None,
    })
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn print_blocks(value: &Value) {
    let list = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (blocked, hidden) = (list("blocked"), list("hidden"));
    if blocked.is_empty() && hidden.is_empty() {
        println!("this node blocks no author and hides no document");
        return;
    }
    for entry in &blocked {
        let note = text(entry, "note");
        println!(
            "blocked {}  since {}{}",
            line(text(entry, "author")),
            entry.get("at").map(crate::output::when).unwrap_or_default(),
            if note.is_empty() {
                String::new()
            } else {
                format!("  ({})", line(note))
            }
        );
    }
    for entry in &hidden {
        let reason = text(entry, "reason");
        println!(
            "hidden  {}  since {}{}",
            line(text(entry, "id")),
            entry.get("at").map(crate::output::when).unwrap_or_default(),
            if reason.is_empty() {
                String::new()
            } else {
                format!("  ({})", line(reason))
            }
        );
    }
}
