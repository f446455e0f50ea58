//! Manifest text -> a draft of a design and a report of every key.

use super::lenient::{
    read_language, read_level, read_licence, read_stage, stage_of_otrl, LicenceRead,
};
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

/// Keys of older LOSH drafts (and common slips) and the key they mean now.
const LOSH_ALIASES: &[(&str, &str)] = &[
    ("organization", "organisation"),
    ("licence", "license"),
    ("spdx-license", "license"),
    ("manifest-version", "okhv"),
    ("okh-version", "okhv"),
    ("description", "function"),
    ("project-link", "repo"),
    ("repository", "repo"),
    ("documentation-languages", "documentation-language"),
    ("language", "documentation-language"),
    ("readiness-level", "technology-readiness-level"),
    ("technology-readiness", "technology-readiness-level"),
    ("documentation-readiness", "documentation-readiness-level"),
    ("manufacturing-instruction", "manufacturing-instructions"),
    ("user_manual", "user-manual"),
    ("usermanual", "user-manual"),
    ("weight", "mass"),
    ("parts", "part"),
    ("standard", "standard-compliance"),
    ("patent-class", "cpc-patent-class"),
    ("tsdc-id", "tsdc"),
];

/// LOSH keys kept as text extras, as written.
const LOSH_EXTRAS: &[&str] = &[
    "organisation",
    "release",
    "readme",
    "contribution-guide",
    "attestation",
    "publication",
    "standard-compliance",
    "cpc-patent-class",
    "tsdc",
    "fork-of",
];

/// OKH v1 keys kept as text extras.
const V1_EXTRAS: &[&str] = &[
    "documentation-home",
    "archive-download",
    "tool-list",
    "made",
    "made-independently",
    "derivative-of",
    "variant-of",
];

/// OKH v1 keys about the manifest itself rather than the design.
const V1_ABOUT_MANIFEST: &[&str] = &[
    "date-created",
    "date-updated",
    "manifest-author",
    "manifest-language",
    "manifest-is-translation",
    "documentation-is-translation",
];

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
struct Reader {
    format: Format,
    draft: Draft,
    report: Report,
}

impl Reader {
    fn note(&mut self, line: usize, message: String) {
        self.report.notes.push(Note { line, message });
    }

    fn drop_key(&mut self, key: &str, reason: impl Into<String>) {
        self.report.dropped.push(Dropped {
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    fn set(&mut self, key: &str, field: &str, value: &str) {
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
    fn extra(&mut self, key: &str, node: &Node) {
        let Some(text) = flat_text(node) else {
            self.drop_key(key, "a nested table that no design field holds");
            return;
        };
        self.extra_text(key, &text);
    }

    fn extra_text(&mut self, key: &str, text: &str) {
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
    fn text_of(&mut self, key: &str, node: &Node) -> Option<String> {
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
    fn files(&mut self, key: &str, node: &Node, role: &'static str, csv: bool) {
        self.files_of(key, node, role, csv, None)
    }

    fn files_of(
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

    fn licence(&mut self, key: &str, field: &str, node: &Node) {
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

    fn language(&mut self, key: &str, node: &Node) {
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

    fn name(
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

    fn identity(&mut self, key: &str, node: Option<&Node>) {
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

    fn finish_identity(&mut self) {
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

    fn losh(&mut self, entries: Vec<(String, Node)>) -> Result<(), ManifestError> {
        let mut seen: Vec<(String, Node)> = Vec::new();
        for (key, node) in entries {
            let canonical = LOSH_ALIASES
                .iter()
                .find(|(draft, _)| *draft == key)
                .map(|(_, now)| now.to_string());
            let key = match canonical {
                Some(now) if seen.iter().any(|(k, _)| *k == now) => {
                    self.drop_key(
                        &key,
                        format!("an older spelling of `{now}`, which is also given"),
                    );
                    continue;
                }
                Some(now) => {
                    self.note(
                        node.line,
                        format!("`{key}` is a draft key of an older OKH-LOSH; read as `{now}`"),
                    );
                    now
                }
                None => key,
            };
            seen.push((key, node));
        }
        let get = |k: &str| seen.iter().find(|(key, _)| key == k).map(|(_, n)| n);
        let first_line = seen.first().map_or(1, |(_, n)| n.line);
        match get("okhv") {
            Some(node) => {
                let v = node.text().unwrap_or_default().trim().to_string();
                self.report.declared_version = Some(v.clone());
                if !losh_version_known(&v) {
                    return Err(ManifestError::UnknownVersion {
                        line: node.line,
                        version: v,
                    });
                }
            }
            None => {
                let looks =
                    get("name").is_some() && (get("repo").is_some() || get("function").is_some());
                if !looks {
                    return Err(ManifestError::NotAManifest {
                        line: first_line,
                        why: "no `okhv`, and not the `name` with `repo` or `function` of an OKH-LOSH manifest".to_string(),
                    });
                }
                self.note(0, "no `okhv`: read as OKH-LOSH v1.0".to_string());
            }
        }
        self.name("name", get("name"), first_line)?;
        for (key, node) in &seen {
            let key = key.as_str();
            match key {
                "okhv" | "name" => {}
                "repo" => self.identity(key, Some(node)),
                "version" => {
                    if let Some(v) = self.text_of(key, node) {
                        self.set(key, "version", &v);
                    }
                }
                "license" => self.licence(key, "licence.hardware", node),
                "licensor" => {
                    if let Some(v) = person_names(node) {
                        self.set(key, "licensor", &v);
                    } else {
                        self.drop_key(key, "no name in it");
                    }
                }
                "function" => {
                    if let Some(v) = self.text_of(key, node) {
                        self.set(key, "summary", &v);
                    }
                }
                "documentation-language" => self.language(key, node),
                "technology-readiness-level" => self.readiness(key, node, "OTRL", 6),
                "documentation-readiness-level" => self.readiness(key, node, "ODRL", 4),
                "image" => self.files(key, node, "photo", false),
                "bom" => self.files(key, node, "bom", true),
                "manufacturing-instructions" => self.files(key, node, "plan", false),
                "user-manual" => self.files(key, node, "manual", false),
                "source" => self.files(key, node, "cad", false),
                "export" => self.files(key, node, "drawing", false),
                "auxiliary" => self.files(key, node, "other", false),
                "mass" => self.mass(key, node),
                "outer-dimensions" => match dimensions(node) {
                    Some(text) => self.extra_text(key, &text),
                    None => self.drop_key(key, "neither `openSCAD` nor width, depth and height"),
                },
                "part" => self.parts(node),
                "software" => match &node.val {
                    Val::List(items) => {
                        for item in items {
                            match item.get("release").and_then(Node::text) {
                                Some(r) => self.extra_text(key, r),
                                None => self.drop_key(key, "a software entry without `release`"),
                            }
                        }
                    }
                    _ => self.drop_key(key, "not a list of [[software]] tables"),
                },
                k if LOSH_EXTRAS.contains(&k) => self.extra(k, node),
                other => {
                    if is_slug(other) && flat_text(node).is_some() {
                        self.note(
                            node.line,
                            format!("`{other}` is not an OKH-LOSH key; kept as an extra"),
                        );
                        self.extra(other, node);
                    } else {
                        self.drop_key(other, "not an OKH-LOSH key");
                    }
                }
            }
        }
        self.finish_identity();
        Ok(())
    }

    fn readiness(&mut self, key: &str, node: &Node, prefix: &str, max: u8) {
        let Some(text) = node.text() else {
            return self.drop_key(key, "empty");
        };
        match read_level(text, prefix) {
            Some((level, guessed)) if (1..=max).contains(&level) => {
                let star = if text.trim().ends_with('*') { "*" } else { "" };
                let code = format!("{prefix}-{level}{star}");
                if guessed {
                    self.note(
                        node.line,
                        format!("readiness level `{text}` read as `{code}`"),
                    );
                }
                if prefix == "OTRL" {
                    if let Some(stage) = stage_of_otrl(level) {
                        self.set(key, "stage", stage);
                    }
                }
                self.extra_text(key, &code);
            }
            Some((level, _)) => {
                self.drop_key(key, format!("{prefix}-{level} does not exist (1 to {max})"))
            }
            None => self.drop_key(
                key,
                format!("`{text}` is not a readiness level ({prefix}-1 to {prefix}-{max})"),
            ),
        }
    }

    fn mass(&mut self, key: &str, node: &Node) {
        // LOSH 1.0: {value, unit = "g" | "kg"}; LOSH 2.x: a number of grams.
        let (value, unit) = match &node.val {
            Val::Scalar(v, ScalarKind::Number) => (v.clone(), "g".to_string()),
            Val::Map(_) => (
                node.get("value")
                    .and_then(Node::text)
                    .unwrap_or_default()
                    .to_string(),
                node.get("unit")
                    .and_then(Node::text)
                    .unwrap_or("g")
                    .trim()
                    .to_lowercase(),
            ),
            _ => (String::new(), String::new()),
        };
        let grams = match (value.trim().parse::<f64>(), unit.as_str()) {
            (Ok(v), "g") => v,
            (Ok(v), "kg") => v * 1000.0,
            (Ok(_), other) => {
                return self.drop_key(key, format!("unit `{other}` is neither g nor kg"))
            }
            (Err(_), _) => return self.drop_key(key, "no number in it"),
        };
        if !(0.0..=1.0e9).contains(&grams) {
            return self.drop_key(key, "not a weight a tool can have");
        }
        let kg = grams / 1000.0;
        self.set(key, "build_facts.weight_kg", &format_number(kg));
    }

    fn parts(&mut self, node: &Node) {
        let Val::List(items) = &node.val else {
            return self.drop_key("part", "not a list of [[part]] tables");
        };
        for (i, item) in items.iter().enumerate() {
            let key = format!("part.{}", i + 1);
            let Some(name) = item
                .get("name")
                .and_then(Node::text)
                .map(str::trim)
                .filter(|n| !n.is_empty())
            else {
                self.drop_key(&key, "a part without a name");
                continue;
            };
            let material = item
                .get("material")
                .and_then(Node::text)
                .map(|m| m.trim().to_string());
            self.draft.parts.push((name.to_string(), material));
            self.report.mapped.push(Mapped {
                key: key.clone(),
                field: "parts".to_string(),
                value: name.to_string(),
            });
            let Val::Map(fields) = &item.val else {
                continue;
            };
            for (k, v) in fields {
                let sub = format!("{key}.{k}");
                match k.as_str() {
                    "name" | "material" => {}
                    "image" => self.files_of(&sub, v, "photo", false, Some(name)),
                    "source" => self.files_of(&sub, v, "cad", false, Some(name)),
                    "export" => self.files_of(&sub, v, "drawing", false, Some(name)),
                    "auxiliary" => self.files_of(&sub, v, "other", false, Some(name)),
                    _ => self.drop_key(&sub, "a part holds its name, material and files only"),
                }
            }
        }
    }

    fn v1(&mut self, entries: Vec<(String, Node)>) -> Result<(), ManifestError> {
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, n)| n);
        let first_line = entries.first().map_or(1, |(_, n)| n.line);
        match get("okh-manifest-version") {
            Some(node) => {
                let v = node.text().unwrap_or_default().trim().to_string();
                self.report.declared_version = Some(v.clone());
                if !(v == "1" || v.starts_with("1.")) {
                    return Err(ManifestError::UnknownVersion {
                        line: node.line,
                        version: v,
                    });
                }
            }
            None => {
                if get("title").is_none()
                    || (get("description").is_none() && get("project-link").is_none())
                {
                    return Err(ManifestError::NotAManifest {
                        line: first_line,
                        why: "no `okh-manifest-version`, and not the `title` with `description` or `project-link` of an OKH v1 manifest".to_string(),
                    });
                }
            }
        }
        self.name("title", get("title"), first_line)?;
        for (key, node) in &entries {
            let key = key.as_str();
            match key {
                "title" | "okh-manifest-version" => {}
                "project-link" => self.identity(key, Some(node)),
                "description" => self.text_field(key, "summary", node),
                "intended-use" => self.text_field(key, "intended_use", node),
                "health-safety-notice" => self.text_field(key, "safety", node),
                "version" => {
                    if let Some(v) = self.text_of(key, node) {
                        self.set(key, "version", &v);
                    }
                }
                "keywords" => {
                    let tags: Vec<String> = match &node.val {
                        Val::List(items) => items.iter().filter_map(Node::text).map(|t| t.trim().to_string()).collect(),
                        Val::Scalar(..) => node.text().map(|t| t.split(',').map(|s| s.trim().to_string()).collect()).unwrap_or_default(),
                        Val::Map(_) => Vec::new(),
                    };
                    for tag in tags.into_iter().filter(|t| !t.is_empty()) {
                        if tag.len() > crate::schema::MAX_TAG_BYTES {
                            self.drop_key(key, format!("tag `{tag}` is longer than {} bytes", crate::schema::MAX_TAG_BYTES));
                            continue;
                        }
                        self.report.mapped.push(Mapped { key: key.to_string(), field: "tags".into(), value: tag.clone() });
                        self.draft.tags.push(tag);
                    }
                }
                "development-stage" => match node.text().and_then(read_stage) {
                    Some((stage, guessed)) => {
                        if guessed {
                            self.note(node.line, format!("development stage `{}` read as `{stage}`", node.text().unwrap_or_default()));
                        }
                        self.set(key, "stage", stage);
                    }
                    None => self.drop_key(key, format!("`{}` is not a stage (idea, concept, prototype, production-ready, ...)", node.text().unwrap_or_default())),
                },
                "license" => match &node.val {
                    Val::Map(kinds) => {
                        for (kind, value) in kinds {
                            match kind.as_str() {
                                "hardware" | "documentation" | "software" => {
                                    self.licence(&format!("license.{kind}"), &format!("licence.{kind}"), value)
                                }
                                other => self.drop_key(&format!("license.{other}"), "a licence is for hardware, documentation or software"),
                            }
                        }
                    }
                    _ => {
                        self.note(node.line, "`license` is one text, not {hardware, documentation, software}; read as the hardware licence".to_string());
                        self.licence(key, "licence.hardware", node)
                    }
                },
                "licensor" => match person_names(node) {
                    Some(v) => self.set(key, "licensor", &v),
                    None => self.drop_key(key, "no name in it"),
                },
                "contributors" | "contact" => {
                    let people: Vec<&Node> = match &node.val {
                        Val::List(items) => items.iter().collect(),
                        _ => vec![node],
                    };
                    for person in people {
                        let name = person.get("name").and_then(Node::text).or_else(|| person.text());
                        match name.map(str::trim).filter(|n| !n.is_empty()) {
                            Some(name) => {
                                let role = (key == "contact").then(|| "contact".to_string());
                                self.report.mapped.push(Mapped { key: key.to_string(), field: "contributors".into(), value: name.to_string() });
                                if !self.draft.contributors.iter().any(|(n, r)| n == name && *r == role) {
                                    self.draft.contributors.push((name.to_string(), role));
                                }
                                if person.get("email").is_some() {
                                    self.drop_key(&format!("{key}.email"), "e-mail addresses stay out of a shared design");
                                }
                            }
                            None => self.drop_key(key, "a person without a name"),
                        }
                    }
                }
                "documentation-language" => self.language(key, node),
                "image" => self.files(key, node, "photo", false),
                "bom" => self.files(key, node, "bom", true),
                "design-files" | "manufacturing-files" => self.files(key, node, "cad", false),
                "schematics" => self.files(key, node, "drawing", false),
                "making-instructions" => self.files(key, node, "plan", false),
                "operating-instructions" | "maintenance-instructions" => self.files(key, node, "manual", false),
                "risk-assessment" | "tool-settings" | "quality-instructions" | "disposal-instructions" | "software" => {
                    self.files(key, node, "other", false)
                }
                "sub" | "sub-parts" => match &node.val {
                    Val::List(items) => {
                        for (i, item) in items.iter().enumerate() {
                            match item.get("title").and_then(Node::text) {
                                Some(title) => {
                                    self.draft.parts.push((title.trim().to_string(), None));
                                    self.report.mapped.push(Mapped { key: format!("{key}.{}", i + 1), field: "parts".into(), value: title.trim().to_string() });
                                }
                                None => self.drop_key(&format!("{key}.{}", i + 1), "a sub-part without a title"),
                            }
                        }
                    }
                    _ => self.drop_key(key, "not a list of sub-parts"),
                },
                "derivative-of" | "variant-of" => {
                    let link = node.get("web").or_else(|| node.get("manifest")).and_then(Node::text).or_else(|| node.text());
                    match link {
                        Some(link) => self.extra_text(key, link),
                        None => self.drop_key(key, "no link to the other project"),
                    }
                }
                k if V1_EXTRAS.contains(&k) => self.extra(k, node),
                k if V1_ABOUT_MANIFEST.contains(&k) => self.drop_key(k, "about the manifest file, not the design (the design's history has its own dates and authors)"),
                other => {
                    if is_slug(other) && flat_text(node).is_some() {
                        self.note(node.line, format!("`{other}` is not an OKH v1 key; kept as an extra"));
                        self.extra(other, node);
                    } else {
                        self.drop_key(other, "not an OKH v1 key");
                    }
                }
            }
        }
        let _ = self.format;
        self.finish_identity();
        Ok(())
    }

    fn text_field(&mut self, key: &str, field: &str, node: &Node) {
        if let Some(v) = self.text_of(key, node) {
            self.set(key, field, &v);
        }
    }
}

/// Whether a LOSH `okhv` names a version this build reads.
fn losh_version_known(v: &str) -> bool {
    let lower = v.to_ascii_lowercase().replace(' ', "");
    let Some(rest) = lower.strip_prefix("okh-losh") else {
        return losh_number_known(lower.trim_start_matches('v'));
    };
    let rest = rest.trim_start_matches(['v', '-']);
    losh_number_known(rest)
}

/// Whether a bare LOSH version number (`1.0`, `2.4`, as some manifests write `okhv`) is known.
fn losh_number_known(rest: &str) -> bool {
    let major = rest.split('.').next().unwrap_or_default();
    (major == "1" || major == "2") && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// A scalar or a list of scalars as text, one item a line; `None` for tables.
fn flat_text(node: &Node) -> Option<String> {
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
fn person_names(node: &Node) -> Option<String> {
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
fn dimensions(node: &Node) -> Option<String> {
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
fn is_slug(key: &str) -> bool {
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
