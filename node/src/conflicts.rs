//! Open conflicts of documents with each side's author, and their resolution by a signed change.
//!
//! Detection is pure ([`hedgerow_protocol::schema::conflicts`]); this module adds who wrote
//! each side (from the change's signed record, as `history` and `blame` do) and writes a
//! resolution as an ordinary local edit: made on the current document, its deps are the
//! current heads, so it has every side in its causal past and closes the conflict on every
//! node it reaches.

use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::schema::conflicts::{self, Conflict, Settle};
use hedgerow_protocol::schema::{DocKind, Edit};
use hedgerow_protocol::{AuthorKey, CommonsId, DocId};
use serde::Serialize;

/// One field in conflict, as `show` and `conflicts` print it.
#[derive(Debug, Clone, Serialize)]
pub struct FieldConflict {
    /// The field's path: `stage`, `summary`, `steps.2`, `bom.1.quantity`.
    pub field: String,
    /// Each concurrent version.
    pub sides: Vec<SideShown>,
}

/// One version of a field in conflict.
#[derive(Debug, Clone, Serialize)]
pub struct SideShown {
    /// The change that wrote it, hex.
    pub change: String,
    /// Its author key, when the change's record is held.
    pub author: Option<AuthorKey>,
    /// The person's display name (else the device's), if known.
    pub author_name: Option<String>,
    /// The field as that change left it.
    pub value: String,
}

/// The open conflicts of one document (`design/event/note conflicts`).
#[derive(Debug, Clone, Serialize)]
pub struct DocConflicts {
    /// The document.
    pub id: DocId,
    /// design, event or note.
    pub doc_kind: String,
    /// Its name or title.
    pub title: String,
    /// Its fields in conflict.
    pub conflicts: Vec<FieldConflict>,
}

/// A conflict settled (`design/event/note resolve`).
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    /// The document.
    pub id: DocId,
    /// The field settled.
    pub field: String,
    /// The signed change that settles it, hex.
    pub change: String,
}

/// What a resolution writes.
#[derive(Debug, Clone)]
pub enum Choice {
    /// The version of the side whose change starts with this hex prefix.
    Take(String),
    /// New text (or a value, for a single-valued field), checked like `set`.
    Text(String),
}

/// Why a resolution was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConflictError {
    /// The field has no open conflict.
    #[error("`{field}` of {id} has no open conflict{}", open_list(.open))]
    NotInConflict {
        /// The document.
        id: DocId,
        /// The field given.
        field: String,
        /// The fields that are in conflict.
        open: Vec<String>,
    },
    /// No side's change starts with the prefix given.
    #[error("no side of the conflict on `{field}` was written by a change starting with `{given}`; its sides are {}", .sides.join(", "))]
    NoSuchSide {
        /// The field.
        field: String,
        /// The prefix given.
        given: String,
        /// The sides' changes, shortened.
        sides: Vec<String>,
    },
    /// The prefix matches several sides.
    #[error("`{given}` starts the changes of several sides of `{field}`; give more characters")]
    AmbiguousSide {
        /// The field.
        field: String,
        /// The prefix given.
        given: String,
    },
}

fn open_list(open: &[String]) -> String {
    if open.is_empty() {
        "; it has none".to_string()
    } else {
        format!("; these are: {}", open.join(", "))
    }
}

/// How many hex digits of a change a side is shown with in messages.
const SHORT: usize = 12;

impl Replicas {
    /// The open conflicts of a document, each side with its author.
    pub fn conflicts(&mut self, id: &DocId) -> Result<Vec<FieldConflict>, NodeError> {
        let found = {
            let replica = self.replica(id)?;
            conflicts::find(replica.doc(), replica.kind())
        };
        self.attribute(id, found)
    }

    /// The documents of `kind` in `commons` with open conflicts, newest first.
    pub fn conflicts_in(
        &mut self,
        commons: &CommonsId,
        kind: DocKind,
    ) -> Result<Vec<DocConflicts>, NodeError> {
        let mut out = Vec::new();
        for (id, summary) in self.list(commons, kind)? {
            let conflicts = self.conflicts(&id)?;
            if !conflicts.is_empty() {
                out.push(DocConflicts {
                    id,
                    doc_kind: kind.as_str().to_string(),
                    title: summary.title,
                    conflicts,
                });
            }
        }
        Ok(out)
    }

    /// Settles the conflict on `field` with one signed change.
    pub fn resolve(
        &mut self,
        id: &DocId,
        field: &str,
        choice: &Choice,
    ) -> Result<Resolved, NodeError> {
        let field = field.trim();
        let found = {
            let replica = self.replica(id)?;
            conflicts::find(replica.doc(), replica.kind())
        };
        let Some(conflict) = found.iter().find(|c| c.field == field) else {
            return Err(ConflictError::NotInConflict {
                id: *id,
                field: field.to_string(),
                open: found.iter().map(|c| c.field.clone()).collect(),
            }
            .into());
        };
        let value = match choice {
            Choice::Text(text) => Settle::Typed(text.clone()),
            Choice::Take(prefix) => pick(conflict, prefix)?,
        };
        let edit = Edit::Resolve {
            field: conflict.field.clone(),
            value,
        };
        let change = self
            .edit_doc(id, &[edit])?
            .ok_or_else(|| NodeError::Invalid(format!("resolving `{field}` changed nothing")))?;
        Ok(Resolved {
            id: *id,
            field: conflict.field.clone(),
            change: change.to_string(),
        })
    }

    /// Names each side's author as `history` does.
    fn attribute(
        &mut self,
        id: &DocId,
        found: Vec<Conflict>,
    ) -> Result<Vec<FieldConflict>, NodeError> {
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let replica = self.replica(id)?;
        let commons = replica.commons();
        let authored: Vec<(String, Vec<_>)> = found
            .into_iter()
            .map(|c| {
                let sides = c
                    .sides
                    .into_iter()
                    .map(|s| {
                        (
                            s.change,
                            replica.record(&s.change).map(|r| r.author),
                            s.value,
                        )
                    })
                    .collect();
                (c.field, sides)
            })
            .collect();
        let attribution = self.attribution(commons);
        let mut out = Vec::new();
        for (field, sides) in authored {
            let mut shown = Vec::new();
            for (change, author, value) in sides {
                let author_name = match author {
                    Some(device) => {
                        let person = attribution.person(device);
                        self.author_name(commons, &person)
                            .or_else(|| self.author_name(commons, &device))
                    }
                    None => None,
                };
                shown.push(SideShown {
                    change: change.to_string(),
                    author,
                    author_name,
                    value,
                });
            }
            out.push(FieldConflict {
                field,
                sides: shown,
            });
        }
        Ok(out)
    }
}

/// The side whose change starts with `prefix` (hex, any case).
fn pick(conflict: &Conflict, prefix: &str) -> Result<Settle, ConflictError> {
    let given = prefix.trim().to_ascii_lowercase();
    let matching: Vec<_> = conflict
        .sides
        .iter()
        .filter(|s| !given.is_empty() && s.change.to_string().starts_with(&given))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.settle.clone()),
        [] => Err(ConflictError::NoSuchSide {
            field: conflict.field.clone(),
            given: prefix.to_string(),
            sides: conflict
                .sides
                .iter()
                .map(|s| s.change.to_string().chars().take(SHORT).collect())
                .collect(),
        }),
        _ => Err(ConflictError::AmbiguousSide {
            field: conflict.field.clone(),
            given: prefix.to_string(),
        }),
    }
}
