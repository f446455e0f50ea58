//! The ways a document or an edit can break its kind's schema.
//!
//! [`SchemaError`] is about a document's state (what a peer sent, or what a
//! read found); [`EditError`] is about one local edit; [`ValueError`] is about
//! one value and is shared by both, so the same bad licence reads the same
//! whether it was typed or received.

use super::DocKind;
use crate::bytes::ParseIdError;
use crate::licence::LicenceError;

/// Joins field names for "known fields: ..." hints.
fn list(names: &[&str]) -> String {
    names.join(", ")
}

/// ` did you mean `licence.hardware`?` when one segment of `path` is a near miss of a
/// known name at its level (`sumary`, `license.hardware`); empty otherwise.
fn did_you_mean(path: &str, known: &[&str]) -> String {
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        if known.contains(segment) {
            continue;
        }
        let lower = segment.to_lowercase();
        let best = known
            .iter()
            .map(|k| (strsim::damerau_levenshtein(&lower, k), *k))
            .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
            .min();
        if let Some((_, name)) = best {
            let mut fixed = segments.clone();
            fixed[i] = name;
            return format!(" did you mean `{}`?", fixed.join("."));
        }
    }
    String::new()
}

/// ` did you mean `build-log`?` for a near miss of one of `allowed` (`build_log`,
/// `prototyp`); empty otherwise.
fn near_choice(value: &str, allowed: &[&str]) -> String {
    let lower = value.trim().to_lowercase().replace(['_', ' '], "-");
    allowed
        .iter()
        .map(|a| (strsim::damerau_levenshtein(&lower, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
        .min()
        .map(|(_, a)| format!(" did you mean `{a}`?"))
        .unwrap_or_default()
}

/// What an edit does, in the words (and with the `hedgerow` flag) a person uses for it.
fn edit_words(name: &str) -> &'static str {
    match name {
        "add_step" => "adding a build step (--step)",
        "edit_step" => "rewriting a build step (--edit-step)",
        "remove_step" => "removing a build step (--remove-step)",
        "move_step" => "moving a build step (--move-step)",
        "add_bom_line" => "adding a bill-of-materials line (--bom-line)",
        "remove_bom_line" => "removing a bill-of-materials line (--remove-bom-line)",
        "add_part" => "adding a part (--part)",
        "remove_part" => "removing a part",
        "add_contributor" => "crediting a contributor (--contributor)",
        "remove_contributor" => "removing a contributor",
        "add_related" => "linking a related design (--related)",
        "remove_related" => "unlinking a related design",
        "add_outcome" => "recording an outcome (--outcome)",
        "remove_outcome" => "removing an outcome",
        "add_built" => "recording a build (--built)",
        "remove_built" => "removing a build record",
        "release" => "a release (`hedgerow design release`)",
        _ => "this edit",
    }
}

/// Why a single value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// The text is longer than the field allows.
    #[error("`{field}` is {bytes} bytes long; the limit is {max} bytes, so shorten it")]
    TooLong {
        /// The field's path.
        field: String,
        /// The value's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The field needs a value and got an empty one.
    #[error("`{field}` cannot be empty")]
    Empty {
        /// The field's path.
        field: String,
    },
    /// The value is not one of the field's choices.
    #[error(
        "`{value}` is not a valid {field};{} choose one of: {}",
        near_choice(value, allowed),
        list(allowed)
    )]
    NotAChoice {
        /// The field's path.
        field: String,
        /// The value given.
        value: String,
        /// The accepted values.
        allowed: &'static [&'static str],
    },
    /// The value is not a number.
    #[error("`{field}` needs a number (like 3 or 2.5), not `{value}`")]
    NotANumber {
        /// The field's path.
        field: String,
        /// The value given.
        value: String,
    },
    /// The field takes whole numbers only.
    #[error("`{field}` needs a whole number, not `{value}`")]
    NotWhole {
        /// The field's path.
        field: String,
        /// The value given.
        value: String,
    },
    /// The number is outside the field's range.
    #[error("`{field}` must be between {min} and {max}; `{value}` is out of range")]
    OutOfRange {
        /// The field's path.
        field: String,
        /// The value given.
        value: String,
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
    },
    /// The date is not `yyyy-mm-dd` or `yyyy-mm-ddThh:mm`.
    #[error("`{value}` is not a date for `{field}`; write it as 2025-06-14 or 2025-06-14T09:30")]
    BadDate {
        /// The field's path.
        field: String,
        /// The value given.
        value: String,
    },
    /// The licence expression is not valid SPDX.
    #[error("{source} (in `{field}`)")]
    Licence {
        /// The field's path.
        field: String,
        /// What the licence check found.
        #[source]
        source: LicenceError,
    },
    /// The value should be a document id.
    #[error("`{field}` needs a document id: {source}")]
    BadDocId {
        /// The field's path.
        field: String,
        /// Why it does not parse.
        #[source]
        source: ParseIdError,
    },
    /// The value should be a change hash (64 hex digits).
    #[error("`{value}` is not a change hash (64 hex digits) for `{field}`")]
    BadHash {
        /// The field's path.
        field: String,
        /// The value given.
        value: String,
    },
    /// A map key (e.g. in `external_ids`) has forbidden characters or length.
    #[error("`{key}` cannot be a key of `{field}`: use 1 to {max} {allowed}")]
    BadKey {
        /// The map's path.
        field: String,
        /// The key given.
        key: String,
        /// Longest key.
        max: usize,
        /// The characters the map's rule allows, in words.
        allowed: &'static str,
    },
    /// A compact record (a BOM line, a part) has too few parts.
    #[error("`{input}` is not a {what}; write it as `{format}`")]
    BadCompact {
        /// What was being parsed.
        what: &'static str,
        /// The input.
        input: String,
        /// The expected form.
        format: &'static str,
    },
}

/// Why a document's state breaks its kind's schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// A key the kind does not define.
    #[error("unknown field `{path}` for {};{} known fields: {}", kind.with_article(), did_you_mean(path, known), list(known))]
    UnknownField {
        /// The document kind.
        kind: DocKind,
        /// The offending path.
        path: String,
        /// The fields that exist at that level.
        known: Vec<&'static str>,
    },
    /// A field holds the wrong automerge type.
    #[error("`{path}` should be {expected}, but the document holds {found}")]
    WrongType {
        /// The field's path.
        path: String,
        /// What the schema wants.
        expected: &'static str,
        /// What is there.
        found: String,
    },
    /// A text or string field is over its size limit.
    #[error("`{path}` is {bytes} bytes; documents may hold at most {max}")]
    TooLarge {
        /// The field's path.
        path: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A list or map has too many entries.
    #[error("`{path}` has {count} entries; documents may hold at most {max}")]
    TooManyItems {
        /// The field's path.
        path: String,
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A field every document of the kind must have is absent.
    #[error("{} must have `{field}`", kind.with_article())]
    MissingField {
        /// The document kind.
        kind: DocKind,
        /// The missing field.
        field: &'static str,
    },
    /// A charter has no fields to write or edit: its changes are charter operations.
    #[error("a charter has no fields; it changes through `hedgerow commons` and `hedgerow moderate` commands")]
    CharterHasNoFields,
    /// A document was initialised twice.
    #[error("this document already has fields; a skeleton is written only into an empty document")]
    AlreadyInitialised,
    /// A value in the new document's skeleton is invalid.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// automerge could not read or write the document.
    #[error("the document could not be {action}: {reason}")]
    Automerge {
        /// What was being done.
        action: &'static str,
        /// automerge's reason.
        reason: String,
    },
}

impl SchemaError {
    /// Wraps an automerge error with what was being attempted.
    pub(crate) fn automerge(action: &'static str, error: automerge::AutomergeError) -> Self {
        SchemaError::Automerge {
            action,
            reason: error.to_string(),
        }
    }
}

/// Why a local edit was refused; nothing of it is written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// A file to attach or detach was refused.
    #[error(transparent)]
    File(#[from] crate::attachment::AttachmentError),
    /// The edit names a field the kind does not have.
    #[error("unknown field `{path}` for {};{} known fields: {}", kind.with_article(), did_you_mean(path, known), list(known))]
    UnknownField {
        /// The document kind.
        kind: DocKind,
        /// The path given.
        path: String,
        /// The fields that exist at that level.
        known: Vec<&'static str>,
    },
    /// The value is invalid for the field.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The edit does not fit the shape of the field (e.g. `set` on a list).
    #[error("`{field}` is {shape}; {hint}")]
    WrongEdit {
        /// The field's path.
        field: String,
        /// What the field is.
        shape: &'static str,
        /// The edit to use instead.
        hint: String,
    },
    /// The edit only applies to another kind of document.
    #[error("{} only applies to {}, and this document is {}", edit_words(edit), applies_to.with_article(), kind.with_article())]
    NotForKind {
        /// The edit's name.
        edit: &'static str,
        /// The kind it applies to.
        applies_to: DocKind,
        /// This document's kind.
        kind: DocKind,
    },
    /// The field may not change after the document is created.
    #[error("`{field}` is fixed when the document is created and cannot be changed")]
    Immutable {
        /// The field's path.
        field: String,
    },
    /// A build step with no text (a new one, or one rewritten to nothing).
    #[error("{} cannot be empty; write what to do, or remove the step", match step { Some(n) => format!("build step {n}"), None => "a build step".to_string() })]
    EmptyStep {
        /// The 1-based step rewritten, or `None` for a new step.
        step: Option<usize>,
    },
    /// A build step number that does not exist.
    #[error("build step {step} does not exist; the design has {count} steps")]
    NoSuchStep {
        /// The 1-based step given.
        step: usize,
        /// How many steps there are.
        count: usize,
    },
    /// A position to insert at that is past the end.
    #[error("cannot put a new entry at position {position} of `{field}`: it has {count}, so use 1 to {}", count + 1)]
    BadPosition {
        /// The list's path.
        field: String,
        /// The 1-based position given.
        position: usize,
        /// How many entries there are.
        count: usize,
    },
    /// A numbered entry that does not exist.
    #[error("entry {position} of `{field}` does not exist; it has {count} entries")]
    NoSuchEntry {
        /// The list's path.
        field: String,
        /// The 1-based position given.
        position: usize,
        /// How many entries there are.
        count: usize,
    },
    /// An item to remove that is not there.
    #[error("`{item}` is not in `{field}`, so there is nothing to remove")]
    NoSuchItem {
        /// The list's path.
        field: String,
        /// The item given.
        item: String,
    },
    /// A list or map is at its limit.
    #[error("`{field}` already holds {max} entries, the most a document may hold")]
    Full {
        /// The list's path.
        field: String,
        /// The limit.
        max: usize,
    },
    /// The event would end before it starts.
    #[error("the event would end ({end}) before it starts ({start}); check the dates")]
    EndBeforeStart {
        /// The start date.
        start: String,
        /// The end date.
        end: String,
    },
    /// A release with this version already exists.
    #[error(
        "release `{version}` already exists and releases never change; choose a new version name"
    )]
    ReleaseExists {
        /// The version given.
        version: String,
    },
    /// A release must name at least one head.
    #[error(
        "release `{version}` names no heads; a release pins the document at its current heads"
    )]
    ReleaseWithoutHeads {
        /// The version given.
        version: String,
    },
    /// A release names a change the document does not have.
    #[error("release `{version}` names change {head}, which this document does not have")]
    UnknownHead {
        /// The version given.
        version: String,
        /// The unknown head, hex.
        head: String,
    },
    /// Someone tried to remove a record another author wrote.
    #[error("entry {position} of `{field}` was written by {by}; you can only remove your own")]
    NotYours {
        /// The list's path.
        field: String,
        /// The 1-based position given.
        position: usize,
        /// Its author.
        by: String,
    },
    /// The document's current state does not fit the schema, so the edit cannot be placed.
    #[error(transparent)]
    Document(#[from] SchemaError),
}

impl EditError {
    /// Wraps an automerge error with what was being attempted.
    pub(crate) fn automerge(action: &'static str, error: automerge::AutomergeError) -> Self {
        EditError::Document(SchemaError::automerge(action, error))
    }
}
