//! Manifest text -> a draft of a design and a report of every key.

use super::lenient::{read_language, read_licence, LicenceRead};
use super::tree::{read_toml, read_yaml, Node, ScalarKind, SyntaxError, Val};
use super::{Dropped, Mapped, Note, Report, EXTRA_PREFIX, ID_KEY};
use crate::schema::{MAX_MAP_ENTRIES, MAX_STR_BYTES, MAX_TITLE_BYTES};
use serde::Serialize;

/// The two manifest formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// OKH v1, YAML (`okh.yml`, `okh-*.yml`).
    OkhV1,
    /// OKH-LOSH, TOML (`okh.toml`).
    OkhLosh,
}

impl Format {
    /// `okh-v1` / `okh-losh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OkhV1 => "okh-v1",
            Format::OkhLosh => "okh-losh",
        }
    }

    /// The format a manifest's file name says (`None`: not a manifest name).
    pub fn of_file_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".toml") {
            Some(Format::OkhLosh)
        } else if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            Some(Format::OkhV1)
        } else {
            None
        }
    }
}

/// A file a manifest names inside its folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// The manifest key that names it (`image`, `part.1.source`).
    pub key: String,
    /// The path as written, relative to the manifest's folder.
    pub path: String,
    /// Its attachment role.
    pub role: &'static str,
    /// Whether it must be CSV text (a bill of materials).
    pub csv: bool,
    /// The part it belongs to (OKH-LOSH `[[part]]`).
    pub part: Option<String>,
}

impl FileRef {
    /// The caption the attachment gets: the path it came from when that is more than its
    /// name, so an export names it as the manifest did; `part NAME: PATH` for a part's file.
    pub fn caption(&self) -> Option<String> {
        match &self.part {
            Some(part) => Some(format!("part {part}: {}", self.path)),
            None if self.path.contains('/') => Some(self.path.clone()),
            None => None,
        }
    }
}

/// A design as a manifest describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Draft {
    /// `external_ids.okh`: the project's repository or link, which recognises it on re-import.
    pub okh_id: String,
    /// Its name.
    pub name: String,
    /// Scalar fields by path (`summary`, `licence.hardware`, `external_ids.okh-tsdc`).
    pub scalars: Vec<(String, String)>,
    /// Tags.
    pub tags: Vec<String>,
    /// Contributors: name and role.
    pub contributors: Vec<(String, Option<String>)>,
    /// Parts: name and material.
    pub parts: Vec<(String, Option<String>)>,
    /// Files to attach.
    pub files: Vec<FileRef>,
}

/// Why a manifest was refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML or TOML that parses.
    #[error("line {}: not readable as {format}: {}", .error.line, .error.message)]
    Syntax {
        /// `YAML` or `TOML`.
        format: &'static str,
        /// Where and what.
        error: SyntaxError,
    },
    /// It parses, but is not an OKH manifest.
    #[error("line {line}: not an OKH manifest: {why}")]
    NotAManifest {
        /// The line it is about.
        line: usize,
        /// What is missing.
        why: String,
    },
    /// A version of OKH this build does not read.
    #[error("line {line}: unknown OKH version `{version}`; this build reads OKH v1 (okh-manifest-version 1.x) and OKH-LOSH v1.0 to 2.x")]
    UnknownVersion {
        /// The line of the version key.
        line: usize,
        /// What it says.
        version: String,
    },
    /// A key without which the design would mean nothing.
    #[error("line {line}: `{key}` is missing or empty; a design needs a name")]
    Missing {
        /// The key.
        key: &'static str,
        /// The line of the manifest's start.
        line: usize,
    },
}

/// Reads a manifest (`file_name` picks the format) into a draft and its report.
pub fn read_manifest(file_name: &str, text: &str) -> Result<(Draft, Report), ManifestError> {
    let format = Format::of_file_name(file_name).ok_or_else(|| ManifestError::NotAManifest {
        line: 0,
        why: format!("`{file_name}` is neither okh.toml (OKH-LOSH) nor okh.yml (OKH v1)"),
    })?;
    let (root, duplicates) = match format {
        Format::OkhLosh => read_toml(text).map_err(|error| ManifestError::Syntax {
            format: "TOML",
            error,
        })?,
        Format::OkhV1 => read_yaml(text).map_err(|error| ManifestError::Syntax {
            format: "YAML",
            error,
        })?,
    };
    let Val::Map(entries) = root.val else {
        return Err(ManifestError::NotAManifest {
            line: root.line,
            why: "its top level is not a map of keys".to_string(),
        });
    };
    let mut reader = Reader {
        format,
        draft: Draft::default(),
        report: Report {
            format: format.as_str().to_string(),
            ..Report::default()
        },
    };
    for d in &duplicates {
        reader.note(
            d.line,
            format!(
                "`{}` is written twice; the first value is kept, this one ignored",
                d.key
            ),
        );
    }
    match format {
        Format::OkhLosh => reader.losh(entries)?,
        Format::OkhV1 => reader.v1(entries)?,
    }
    Ok((reader.draft, reader.report))
}

/// The state of one reading.
pub(super) struct Reader {
    pub(super) format: Format,
    pub(super) draft: Draft,
    pub(super) report: Report,
}

impl Reader {
    pub(super) fn note(&mut self, line: usize, message: String) {
        self.report.notes.push(Note { line, message });
    }

    pub(super) fn drop_key(&mut self, key: &str, reason: impl Into<String>) {
        self.report.dropped.push(Dropped {
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    pub(super) fn set(&mut self, key: &str, field: &str, value: &str) {
        self.draft.scalars.retain(|(f, _)| f != field);
        self.draft
            .scalars
            .push((field.to_string(), value.to_string()));
        self.report.mapped.push(Mapped {
            key: key.to_string(),
            field: field.to_string(),
            value: value.to_string(),
        });
    }

    /// Keeps a value as text in `external_ids.okh-KEY` (lists one item a line).
    pub(super) fn extra(&mut self, key: &str, node: &Node) {
        let Some(text) = flat_text(node) else {
            self.drop_key(key, "a nested table that no design field holds");
            return;
        };
        self.extra_text(key, &text);
    }

    pub(super) fn extra_text(&mut self, key: &str, text: &str) {
        let field = format!("external_ids.{EXTRA_PREFIX}{key}");
        if text.trim().is_empty() {
            return self.drop_key(key, "empty");
        }
        if text.len() > MAX_STR_BYTES {
            return self.drop_key(key, format!("longer than {MAX_STR_BYTES} bytes"));
        }
        let existing = self
            .draft
            .scalars
            .iter()
            .filter(|(f, _)| f.starts_with("external_ids."))
            .count();
        if existing >= MAX_MAP_ENTRIES {
            return self.drop_key(key, format!("more than {MAX_MAP_ENTRIES} external ids"));
        }
        if let Some((_, old)) = self.draft.scalars.iter_mut().find(|(f, _)| *f == field) {
            old.push('\n');
            old.push_str(text.trim());
        } else {
            self.draft
                .scalars
                .push((field.clone(), text.trim().to_string()));
        }
        self.report.extra.push(Mapped {
            key: key.to_string(),
            field,
            value: text.trim().to_string(),
        });
    }

    /// A text value for a text field; numbers and booleans are read as written, with a note.
    pub(super) fn text_of(&mut self, key: &str, node: &Node) -> Option<String> {
        match &node.val {
            Val::Scalar(text, ScalarKind::Number | ScalarKind::Bool) => {
                self.note(
                    node.line,
                    format!("`{key}` is a number where text belongs; read as the text `{text}`"),
                );
                Some(text.clone())
            }
            Val::Scalar(_, ScalarKind::Null) => {
                self.drop_key(key, "empty");
                None
            }
            Val::Scalar(text, ScalarKind::Text) => {
                let t = text.trim();
                if t.is_empty() {
                    self.drop_key(key, "empty");
                    None
                } else {
                    Some(t.to_string())
                }
            }
            Val::List(items) if items.len() == 1 => self.text_of(key, &items[0]),
            Val::List(_) => {
                let joined = flat_text(node).unwrap_or_default().replace('\n', ", ");
                self.note(
                    node.line,
                    format!("`{key}` is a list where one text belongs; its items are joined"),
                );
                Some(joined)
            }
            Val::Map(_) => {
                self.drop_key(key, "a table where text belongs");
                None
            }
        }
    }

    /// A file path or URL (or a list of them): URLs become extras, paths files.
    pub(super) fn files(&mut self, key: &str, node: &Node, role: &'static str, csv: bool) {
        self.files_of(key, node, role, csv, None)
    }

    pub(super) fn files_of(
        &mut self,
        key: &str,
        node: &Node,
        role: &'static str,
        csv: bool,
        part: Option<&str>,
    ) {
        let items: Vec<&Node> = match &node.val {
            Val::List(items) => items.iter().collect(),
            _ => vec![node],
        };
        for item in items {
            // OKH v1 documents and LOSH 2.x images are tables with a path.
            let path_node = match &item.val {
                Val::Map(_) => item
                    .get("path")
                    .or_else(|| item.get("location"))
                    .or_else(|| item.get("url")),
                _ => Some(item),
            };
            let Some(target) = path_node.and_then(Node::text).map(str::trim) else {
                self.drop_key(key, "no path or URL");
                continue;
            };
            if target.is_empty() {
                self.drop_key(key, "empty");
            } else if target.starts_with("http://") || target.starts_with("https://") {
                self.extra_text(key, target);
            } else {
                // OKH-LOSH writes repository paths with a leading `/` (its template does):
                // relative to the repository's root, which is the folder imported.
                let rooted = target.starts_with('/') && !target.starts_with("//");
                if rooted {
                    self.note(item.line, format!("`{target}` read relative to the manifest's folder, as OKH paths starting with / are"));
                }
                let path = target
                    .trim_start_matches('/')
                    .trim_start_matches("./")
                    .to_string();
                self.report.mapped.push(Mapped {
                    key: key.to_string(),
                    field: "files".to_string(),
                    value: format!("{path} ({role})"),
                });
                self.draft.files.push(FileRef {
                    key: key.to_string(),
                    path,
                    role,
                    csv,
                    part: part.map(str::to_string),
                });
            }
        }
    }

    pub(super) fn licence(&mut self, key: &str, field: &str, node: &Node) {
        let Some(text) = self.text_of(key, node) else {
            return;
        };
        match read_licence(&text) {
            None => self.drop_key(key, "empty"),
            Some(read) => {
                match &read {
                    LicenceRead::Exact(_) => {}
                    LicenceRead::Mapped(e) => self.note(
                        node.line,
                        format!("licence `{text}` is not an SPDX expression; read as `{e}`"),
                    ),
                    LicenceRead::Reference(e) => self.note(
                        node.line,
                        format!("licence `{text}` matches no SPDX licence; kept as `{e}`"),
                    ),
                }
                self.set(key, field, read.expr());
            }
        }
    }

    pub(super) fn language(&mut self, key: &str, node: &Node) {
        let items: Vec<&Node> = match &node.val {
            Val::List(items) => items.iter().collect(),
            _ => vec![node],
        };
        let Some(first) = items.first().and_then(|n| n.text()) else {
            return self.drop_key(key, "empty");
        };
        if items.len() > 1 {
            self.note(
                node.line,
                format!(
                    "`{key}` lists {} languages; a design has one, the first is kept",
                    items.len()
                ),
            );
        }
        match read_language(first) {
            Some(tag) => {
                if tag != first.trim() {
                    self.note(node.line, format!("language `{first}` read as `{tag}`"));
                }
                self.set(key, "documentation_language", &tag);
            }
            None => self.drop_key(key, format!("`{first}` is not a language this reader knows (use a BCP 47 tag such as en-GB)")),
        }
    }

    pub(super) fn name(
        &mut self,
        key: &'static str,
        node: Option<&Node>,
        line: usize,
    ) -> Result<(), ManifestError> {
        let name = node.and_then(|n| self.text_of(key, n));
        match name {
            Some(mut name) => {
                if name.len() > MAX_TITLE_BYTES {
                    let mut cut = MAX_TITLE_BYTES;
                    while !name.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    name.truncate(cut);
                    self.note(
                        line,
                        format!("`{key}` is longer than {MAX_TITLE_BYTES} bytes; cut"),
                    );
                }
                self.draft.name = name.clone();
                self.report.mapped.push(Mapped {
                    key: key.to_string(),
                    field: "name".to_string(),
                    value: name,
                });
                Ok(())
            }
            None => Err(ManifestError::Missing { key, line }),
        }
    }

    pub(super) fn identity(&mut self, key: &str, node: Option<&Node>) {
        if let Some(url) = node
            .and_then(Node::text)
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            self.draft.okh_id = url.trim_end_matches('/').to_string();
            let id = self.draft.okh_id.clone();
            self.report.mapped.push(Mapped {
                key: key.to_string(),
                field: format!("external_ids.{ID_KEY}"),
                value: id,
            });
        }
    }

    pub(super) fn finish_identity(&mut self) {
        if self.draft.okh_id.is_empty() {
            self.draft.okh_id = format!("name:{}", self.draft.name);
            self.note(
                0,
                "no repository or project link: a later import recognises this design by its name"
                    .to_string(),
            );
        }
        let id = self.draft.okh_id.clone();
        self.draft
            .scalars
            .push((format!("external_ids.{ID_KEY}"), id));
    }
}

/// A scalar or a list of scalars as text, one item a line; `None` for tables.
pub(super) fn flat_text(node: &Node) -> Option<String> {
    match &node.val {
        Val::Scalar(t, _) => Some(t.trim().to_string()),
        Val::List(items) => items
            .iter()
            .map(|i| match &i.val {
                Val::Scalar(t, _) => Some(t.trim().to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join("\n")),
        Val::Map(_) => None,
    }
}

/// Names of a person or people: text, a `{name}` table, or a list of either.
pub(super) fn person_names(node: &Node) -> Option<String> {
    let items: Vec<&Node> = match &node.val {
        Val::List(items) => items.iter().collect(),
        _ => vec![node],
    };
    let names: Vec<String> = items
        .iter()
        .filter_map(|n| n.get("name").and_then(Node::text).or_else(|| n.text()))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Outer dimensions as one line: `openSCAD` with its unit, or width x depth x height mm.
pub(super) fn dimensions(node: &Node) -> Option<String> {
    if let Val::Scalar(scad, ScalarKind::Text) = &node.val {
        return Some(format!("{} mm", scad.trim()));
    }
    if let Some(scad) = node.get("openSCAD").and_then(Node::text) {
        let unit = node.get("unit").and_then(Node::text).unwrap_or("mm");
        return Some(format!("{scad} {unit}"));
    }
    let w = node.get("width").and_then(Node::text)?;
    let d = node.get("depth").and_then(Node::text)?;
    let h = node.get("height").and_then(Node::text)?;
    Some(format!("{w} x {d} x {h} mm"))
}

/// Whether a key is usable in `external_ids` (lowercase letters, digits, `-`, `_`).
pub(super) fn is_slug(key: &str) -> bool {
    !key.is_empty()
        && key.len() + EXTRA_PREFIX.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A number without a trailing `.0`.
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
