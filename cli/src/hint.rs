//! What the user can do about a library error, in this tool's own commands.
//!
//! The node and protocol libraries say what went wrong; only the CLI knows its command names
//! and flags, so the instruction is added here, by the error's kind, at the end of the line.
//! The kind comes from the error's type when the CLI opened the store itself, and from the
//! control reply when a running `serve` answered, so both give the same instruction.

use hedgerow_node::error_kind::ErrorKind;
use hedgerow_node::verify::ProblemKind;

/// The instruction for the first error in `error`'s chain that has a kind.
pub fn hint(error: &anyhow::Error) -> Option<String> {
    let root: &(dyn std::error::Error + 'static) = error.as_ref();
    ErrorKind::of(root).and_then(|kind| instruction(&kind))
}

/// The operating system's words for a failed file operation, which name no file and end in
/// `(os error N)`, as a sentence part: lower case, number dropped. The file itself is named
/// by the context before it (`cannot read notes.md: no such file or directory`).
pub fn plain_os_errors(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " (os error ".len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        match tail[digits..].strip_prefix(')') {
            Some(after) if digits > 0 => rest = after,
            _ => {
                out.push_str(" (os error ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    for (os, plain) in [
        ("No such file or directory", "no such file or directory"),
        ("Permission denied", "permission denied"),
        ("File exists", "a file of that name exists already"),
        ("Is a directory", "it is a directory, not a file"),
        ("Not a directory", "a part of the path is not a directory"),
        ("No space left on device", "the disk is full"),
        ("Read-only file system", "the disk is read-only"),
    ] {
        out = out.replace(os, plain);
    }
    out
}

/// What to do after a file error [`plain_os_errors`] worded, when nothing else said.
pub fn for_os_error(line: &str) -> Option<String> {
    let text = if line.ends_with("no such file or directory") {
        "check the file's name and path"
    } else if line.ends_with("permission denied") {
        "check the file's permissions, or choose another place"
    } else if line.ends_with("the disk is full") {
        "free some space and retry"
    } else {
        return None;
    };
    Some(text.to_string())
}

/// What to do about a failure of `kind`.
pub fn instruction(kind: &ErrorKind) -> Option<String> {
    let text = match kind {
        ErrorKind::NoSuchCommons => "`hedgerow commons list` shows the ones this node holds",
        ErrorKind::NoSuchDocument { what } => {
            return Some(match what.as_str() {
                "design" | "event" | "note" => {
                    format!("`hedgerow {what} list` shows the ones this node holds")
                }
                _ => "`hedgerow design list` and `hedgerow event list` show the ones this node holds"
                    .to_string(),
            })
        }
        ErrorKind::ChooseCommons => "choose one with --commons NAME (or its id)",
        ErrorKind::NoCommons => "create one with `hedgerow commons create NAME` or join one",
        ErrorKind::NoSuchRelease { design } => {
            return Some(format!(
                "`hedgerow design show {design}` lists its releases"
            ))
        }
        ErrorKind::NoteWithoutTarget => "give --on ID",
        ErrorKind::NotInBundle => {
            "`hedgerow bundle import FILE` alone lists the commons it skips"
        }
        ErrorKind::RelicenseRefused => {
            "pass --allow-relicense only if the licensors have agreed to the change"
        }
        ErrorKind::StoreLocked => {
            "stop it (or talk to it through `hedgerow` while `serve` runs) and retry"
        }
        ErrorKind::StoreUnreadable => "run `hedgerow repair` to rebuild it from your journal (the damaged copy is kept beside it), then sync to get the rest back from peers",
        ErrorKind::StoreDamaged => "run `hedgerow repair` to rebuild it from your journal and what is left (the damaged copy is kept beside it), then sync to get the rest back from peers",
        ErrorKind::StoreCorrupt => "run `hedgerow verify` and restore from a peer or a bundle",
        ErrorKind::BadManifest => {
            "move the file away and run `hedgerow verify` to see what the store holds"
        }
        ErrorKind::NoHome => "create one with `hedgerow init --name YOUR-NAME` (or pass --home)",
        ErrorKind::NotAHome => "pass the right --home or run `hedgerow init` in an empty directory",
        ErrorKind::HomeNotEmpty => "pass --home a new or empty directory",
        ErrorKind::AlreadyServing => {
            "other hedgerow commands talk to it, so there is no need for a second one"
        }
        ErrorKind::StoreBusy => "let that command finish (or stop it) and start serve again",
        ErrorKind::Interrupted => "check (e.g. with `show`) before retrying",
        ErrorKind::NotStewarded => {
            "roles and moderation need a commons made with `hedgerow commons create NAME --stewarded`"
        }
        ErrorKind::CharterNotReceived => {
            "sync with a member (`hedgerow sync --peer ADDR`) or import a bundle from one, then retry"
        }
        ErrorKind::NoSuchPerson => {
            "`hedgerow commons members` lists them; give an author key or a longer prefix"
        }
        ErrorKind::LastSteward => {
            "make someone else a steward first (`hedgerow commons role PERSON steward`)"
        }
        ErrorKind::NotCertifier => {
            "run `hedgerow device add` on your first device, or on one restored with `hedgerow init --restore FILE`"
        }
        ErrorKind::NoSuchDevice => "`hedgerow device list` shows your devices",
        ErrorKind::PersonKeyDamaged => {
            "restore it with `hedgerow init --restore BACKUP` in a new home"
        }
        ErrorKind::NoSuchAuthor => {
            "give the whole author key (`hedgerow whoami` prints one) or a longer prefix"
        }
        ErrorKind::NotOnLocalList => "`hedgerow blocks` lists what this node blocks and hides",
        ErrorKind::PurgeNotHidden { id } => {
            return Some(format!("run `hedgerow hide {id}` first"))
        }
        ErrorKind::HiddenLocally { id } => {
            return Some(format!("`hedgerow unhide {id}` shows it again"))
        }
        ErrorKind::NotCreator { id } => {
            return Some(format!("`hedgerow hide {id}` hides it on this node"))
        }
        ErrorKind::PeerUnreachable => {
            "check the address (`hedgerow whoami` on that node prints its peer id) and that its `hedgerow serve` runs; a slow link may need a larger --connect-timeout"
        }
        ErrorKind::PortInUse => {
            "stop what listens there (`hedgerow status` on a home shows where its serve listens) or choose another with --listen"
        }
        ErrorKind::WouldOverwrite => "choose another file name, or pass --force to replace it",
        ErrorKind::Usage | ErrorKind::Other => return None,
    };
    Some(text.to_string())
}

/// What to do about a problem `hedgerow verify` found.
pub fn problem(kind: ProblemKind) -> Option<&'static str> {
    match kind {
        ProblemKind::ManifestMissing => Some("compare it with a peer (`hedgerow sync`); `hedgerow verify --rebuild` (or the next write) recreates the manifest"),
        ProblemKind::UndecodableChanges | ProblemKind::ChangesNotApplied => {
            Some("run `hedgerow repair` (with `serve` stopped)")
        }
        ProblemKind::ChangesDoNotVerify => Some("run `hedgerow repair` (with `serve` stopped) to restore them from the journal and peers"),
        ProblemKind::StaleCache => Some("run `hedgerow verify --rebuild`"),
        ProblemKind::RefusedByCharter => {
            Some("run `hedgerow verify --rebuild` to take them out of their documents")
        }
        ProblemKind::DamagedBlob => Some(
            "delete that file and import a bundle exported `--with-files` by a node that has it",
        ),
        ProblemKind::BadCommons
        | ProblemKind::GenesisMismatch
        | ProblemKind::OrphanDocument
        | ProblemKind::MissingRecords
        | ProblemKind::BadEvidence => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hedgerow_node::control::NodeRefusal;
    use hedgerow_node::NodeError;

    /// A file error reads as words with what to do, whether the CLI or a running node wrote it.
    #[test]
    fn os_errors_lose_their_number_and_gain_an_instruction() {
        let line = plain_os_errors("cannot read notes.md: No such file or directory (os error 2)");
        assert_eq!(line, "cannot read notes.md: no such file or directory");
        assert_eq!(
            for_os_error(&line).as_deref(),
            Some("check the file's name and path")
        );
        assert_eq!(plain_os_errors("odd (os error x)"), "odd (os error x)");
        assert_eq!(for_os_error("something else"), None);
    }

    /// The same instruction whether the error is the node's own type (store opened here) or
    /// a refusal a running node sent with its kind.
    #[test]
    fn a_refusal_from_serve_gets_the_same_instruction_as_a_local_error() {
        let local = anyhow::Error::new(NodeError::NoCommons).context("listing designs");
        let kind = ErrorKind::of(local.as_ref()).expect("a kind");
        let remote = anyhow::Error::new(NodeRefusal {
            message: NodeError::NoCommons.to_string(),
            kind: Some(kind),
        });
        assert_eq!(hint(&local), hint(&remote));
        assert!(hint(&remote).is_some_and(|h| h.contains("hedgerow commons create")));
        let plain = anyhow::Error::new(NodeRefusal {
            message: "something".into(),
            kind: None,
        });
        assert_eq!(hint(&plain), None);
    }
}
