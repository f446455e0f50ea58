//! A draft against a design: the edits that make the design say what the manifest says.
//!
//! Only the fields a manifest can speak for are compared: the mapped scalars, tags,
//! contributors, parts and the `external_ids.okh*` keys. A field the manifest no longer has
//! is cleared; files are added or replaced by name, never removed (a photo someone attached
//! after the import stays). A design that already says it all gets no edit at all.

use super::import::Draft;
use super::{EXTRA_PREFIX, ID_KEY};
use crate::attachment::NewFile;
use crate::schema::{normalise_tag, Edit, Part};
use serde_json::Value;

/// The scalar fields an import writes or clears.
const MANAGED: &[&str] = &[
    "summary",
    "intended_use",
    "safety",
    "stage",
    "licence.hardware",
    "licence.documentation",
    "licence.software",
    "licensor",
    "documentation_language",
    "version",
    "build_facts.weight_kg",
];

/// A file of the draft, read and hashed by the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedFile {
    /// What the design records.
    pub file: NewFile,
}

/// The edits that turn `current` (a design as rendered; `None` for a new design) into what
/// `draft` says, with `files` the draft's files as the node read them.
pub fn plan_edits(draft: &Draft, files: &[ResolvedFile], current: Option<&Value>) -> Vec<Edit> {
    let empty = Value::Null;
    let current = current.unwrap_or(&empty);
    let mut edits = Vec::new();
    if current.get("name").and_then(Value::as_str) != Some(draft.name.as_str())
        && !current.is_null()
    {
        edits.push(Edit::Set {
            field: "name".into(),
            value: draft.name.clone(),
        });
    }
    let wanted = |field: &str| {
        draft
            .scalars
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.clone())
    };
    for field in MANAGED {
        scalar(&mut edits, field, wanted(field), lookup(current, field));
    }
    // external_ids: okh and okh-*.
    let mut keys: Vec<String> = draft
        .scalars
        .iter()
        .filter_map(|(f, _)| f.strip_prefix("external_ids.").map(str::to_string))
        .collect();
    if let Some(Value::Object(ids)) = current.get("external_ids") {
        keys.extend(
            ids.keys()
                .filter(|k| *k == ID_KEY || k.starts_with(EXTRA_PREFIX))
                .cloned(),
        );
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        let field = format!("external_ids.{key}");
        scalar(&mut edits, &field, wanted(&field), lookup(current, &field));
    }
    tags(&mut edits, draft, current);
    contributors(&mut edits, draft, current);
    parts(&mut edits, draft, current);
    for resolved in files {
        let file = &resolved.file;
        let same_name: Vec<&Value> = current
            .get("files")
            .and_then(Value::as_array)
            .map(|fs| {
                fs.iter()
                    .filter(|f| f.get("name").and_then(Value::as_str) == Some(file.name.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let hex = file.hash.to_hex();
        let held = same_name.iter().any(|f| {
            f.get("hash").and_then(Value::as_str) == Some(hex.as_str())
                && f.get("role").and_then(Value::as_str) == Some(file.role.as_str())
                && f.get("caption").and_then(Value::as_str) == file.caption.as_deref()
        });
        if held {
            continue;
        }
        for old in same_name {
            if let Some(hash) = old
                .get("hash")
                .and_then(Value::as_str)
                .and_then(|h| h.parse().ok())
            {
                edits.push(Edit::RemoveFile {
                    name: file.name.clone(),
                    hash,
                });
            }
        }
        edits.push(Edit::AddFile { file: file.clone() });
    }
    edits
}

/// A field of the rendered design by dotted path, as text (`None`: absent, null or empty).
fn lookup(current: &Value, path: &str) -> Option<String> {
    let mut value = current;
    for part in path.splitn(2, '.') {
        value = value.get(part)?;
    }
    match value {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_f64().map(super::import::format_number),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar(edits: &mut Vec<Edit>, field: &str, wanted: Option<String>, current: Option<String>) {
    match (wanted, current) {
        (Some(w), Some(c)) if same(field, &w, &c) => {}
        (Some(w), _) => edits.push(Edit::Set {
            field: field.to_string(),
            value: w,
        }),
        (None, Some(_)) => edits.push(Edit::Unset {
            field: field.to_string(),
        }),
        (None, None) => {}
    }
}

/// Equal as the design stores them (numbers by value).
fn same(field: &str, a: &str, b: &str) -> bool {
    if field == "build_facts.weight_kg" {
        return a.parse::<f64>().ok() == b.parse::<f64>().ok();
    }
    a.trim() == b.trim()
}

fn strings(current: &Value, field: &str) -> Vec<String> {
    current
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn tags(edits: &mut Vec<Edit>, draft: &Draft, current: &Value) {
    let have = strings(current, "tags");
    let have_norm: Vec<String> = have.iter().map(|t| normalise_tag(t)).collect();
    let want_norm: Vec<String> = draft.tags.iter().map(|t| normalise_tag(t)).collect();
    for (tag, norm) in draft.tags.iter().zip(&want_norm) {
        if !have_norm.contains(norm) {
            edits.push(Edit::AddItem {
                field: "tags".into(),
                item: tag.clone(),
            });
        }
    }
    for (tag, norm) in have.iter().zip(&have_norm) {
        if !want_norm.contains(norm) {
            edits.push(Edit::RemoveItem {
                field: "tags".into(),
                item: tag.clone(),
            });
        }
    }
}

fn pairs(current: &Value, field: &str, second: &str) -> Vec<(String, Option<String>)> {
    current
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        e.get(second).and_then(Value::as_str).map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn contributors(edits: &mut Vec<Edit>, draft: &Draft, current: &Value) {
    let have = pairs(current, "contributors", "role");
    if have == draft.contributors {
        return;
    }
    let mut removed: Vec<&str> = Vec::new();
    for (name, _) in &have {
        if !removed.contains(&name.as_str()) {
            removed.push(name);
            edits.push(Edit::RemoveContributor { name: name.clone() });
        }
    }
    for (name, role) in &draft.contributors {
        edits.push(Edit::AddContributor {
            name: name.clone(),
            role: role.clone(),
        });
    }
}

fn parts(edits: &mut Vec<Edit>, draft: &Draft, current: &Value) {
    let have = pairs(current, "parts", "material");
    if have == draft.parts {
        return;
    }
    for position in (1..=have.len()).rev() {
        edits.push(Edit::RemovePart { position });
    }
    for (name, material) in &draft.parts {
        edits.push(Edit::AddPart {
            part: Part {
                name: name.clone(),
                material: material.clone(),
                quantity: None,
            },
        });
    }
}
