//! Plain answers for commands people reach for that Hedgerow spells differently.
//!
//! clap's own suggestion is the closest spelling, which for `design delete` is `release` and
//! for `search` is `serve`: the opposite of what was meant. A word listed here gets the
//! command that does what the person wanted instead.

/// Words that mean "remove this document".
const DELETE_WORDS: &[&str] = &["delete", "remove", "rm", "del", "erase", "destroy", "drop"];

/// Words that mean "find documents".
const SEARCH_WORDS: &[&str] = &["search", "find", "grep", "query", "filter"];

/// Kinds that have a `retract` and a `list`.
const KINDS: &[&str] = &["design", "event", "note"];

/// What to say instead of clap's suggestion when `word` is not a subcommand, given the
/// words typed before it (`parents`, the command path without flags).
pub fn instead(parents: &[&str], word: &str) -> Option<String> {
    let word = word.to_ascii_lowercase();
    let kind = parents.last().copied().filter(|p| KINDS.contains(p));
    let top = parents.is_empty();
    if DELETE_WORDS.contains(&word.as_str()) && (kind.is_some() || top) {
        let kind = kind.unwrap_or("design");
        return Some(format!(
            "there is no `{kind} {word}`: to withdraw {} you created, run `hedgerow {kind} retract ID` (every node then stops listing, showing and serving it; its signed history stays as evidence). To keep something off this node only, run `hedgerow hide ID`",
            article(kind)
        ));
    }
    if SEARCH_WORDS.contains(&word.as_str()) && (top || kind.is_some()) {
        return Some(match kind {
            Some("event") => format!("there is no `event {word}`: run `hedgerow event list --search TEXT` (and --tag TAG)"),
            Some("note") => format!("there is no `note {word}`: run `hedgerow note list --on ID`, or `hedgerow design list --search TEXT`"),
            Some(kind) => format!("there is no `{kind} {word}`: run `hedgerow design list --search TEXT` (and --tag TAG, --stage STAGE)"),
            None => format!("there is no `{word}` command: run `hedgerow design list --search TEXT` (and --tag TAG, --stage STAGE) or `hedgerow event list --search TEXT`"),
        });
    }
    None
}

fn article(kind: &str) -> &'static str {
    match kind {
        "event" => "an event",
        "note" => "a note",
        _ => "a design",
    }
}

/// The subcommand words typed before `word` in `args` (the program name and flags left out,
/// and the value after `--home`).
pub fn parents<'a>(args: &'a [String], word: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args.iter().skip(1) {
        if skip_value {
            skip_value = false;
            continue;
        }
        if arg == word {
            break;
        }
        if arg == "--home" {
            skip_value = true;
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        out.push(arg.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_and_search_point_at_retract_and_list() {
        let retract = instead(&["design"], "delete").expect("an answer");
        assert!(retract.contains("hedgerow design retract ID"), "{retract}");
        assert!(!retract.contains("release"));
        let note = instead(&["note"], "rm").expect("an answer");
        assert!(note.contains("hedgerow note retract ID"), "{note}");
        let search = instead(&[], "search").expect("an answer");
        assert!(search.contains("design list --search"), "{search}");
        assert_eq!(instead(&["commons"], "delete"), None);
        assert_eq!(instead(&["design"], "shwo"), None);
        let args: Vec<String> = ["hedgerow", "--home", "h", "design", "delete", "X"]
            .map(String::from)
            .to_vec();
        assert_eq!(parents(&args, "delete"), vec!["design"]);
    }
}
