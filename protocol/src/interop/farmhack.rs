//! Farm Hack tool pages (farmhack.org) as a scrape gives them, mapped onto designs.
//!
//! The input is JSON: a list of tool pages, or `{"tools": [...], "retrieved": DATE}`, or one
//! page. A page has `title` (required), `url` and `nid`, `description`, `problem`, `status`,
//! `tags`, `license`, `documentation`, `user_manual`, `skills`, `video_url`, `images`,
//! `relations` (`component`, `assembly`, `branch`, `merge`: lists of URLs, titles or
//! `{title, url}`), `comments` (`{cid, author, date, body, parent}`) and `authors`. Bodies are
//! Drupal HTML and become plain text. Scrapes disagree on spelling, so the common variants
//! are read too (`licence`, `body`, `stage`, `keywords`, `author`, `{"value": ...}` wrappers).
//!
//! Mapping (one field each): title → `name`; description → `summary`; problem → `problem`;
//! documentation → `how_it_works`; user manual → `user_manual`; status → `stage`; tags →
//! `tags`; skills → `skills`; licence → `licence.documentation` (the page's licence covers
//! its documentation); authors → `contributors` (role [`AUTHOR_ROLE`]); url → `external_ids.farmhack`.
//! Relations keep their Farm Hack kind in `related` once the node resolves them to designs;
//! comments become notes of kind `comment` on the design. What has no field (video, images)
//! is reported as kept as a link (in the provenance record) and nothing is silently lost.

use super::html_to_text;
use crate::schema::{self, DocKind, Edit, EditContext, NewDocument};
use serde_json::Value;

/// Largest Farm Hack file read, in bytes.
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;
/// Most tool pages one file may hold.
pub const MAX_TOOLS: usize = 5_000;
/// Most comments imported from one page.
pub const MAX_COMMENTS: usize = 500;
/// The role original authors are credited with in `contributors`.
pub const AUTHOR_ROLE: &str = "author on Farm Hack";
/// The `external_ids` key and provenance `source` of Farm Hack imports.
pub const SOURCE: &str = "farmhack";
/// Where tool pages live, for pages scraped without their URL.
pub const TOOLS_BASE: &str = "https://farmhack.org/tools/";

/// Farm Hack's statuses (both site generations) and the stage each becomes.
pub const STATUSES: &[(&str, &str)] = &[
    ("idea", "idea"),
    ("concept", "concept"),
    ("prototype", "prototype"),
    ("functional prototype", "functional-prototype"),
    ("production ready", "production-ready"),
    ("in use", "in-use"),
    ("diy", "in-use"),
    ("commercial product", "commercial"),
    ("commercial", "commercial"),
];

/// A Farm Hack file that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("the file is {bytes} bytes; a Farm Hack scrape is read up to {max} bytes")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON.
    #[error("not JSON at line {line}, column {column}: {reason}")]
    NotJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's words.
        reason: String,
    },
    /// JSON, but no list of tool pages.
    #[error(
        "no tool pages: expected a list of pages, {{\"tools\": [...]}} or one page with a `title`"
    )]
    NoTools,
    /// More pages than [`MAX_TOOLS`].
    #[error("{count} tool pages; at most {max} per file")]
    TooManyTools {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Why one tool page is not imported (the others still are).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The entry is not a JSON object.
    #[error("not a tool page (a JSON object)")]
    NotAnObject,
    /// No title, or an empty one.
    #[error("no `title`: a design needs a name")]
    MissingTitle,
    /// A field's value would make the design invalid and cannot be left out.
    #[error("{field}: {reason}")]
    Invalid {
        /// The design field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// A file read: when it was scraped, and each page mapped or refused.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// The scrape's own date, if it gives one.
    pub retrieved: Option<String>,
    /// Each page in file order (1-based position, title as far as known, result).
    pub tools: Vec<(usize, String, Result<ToolPage, ToolError>)>,
}

/// One tool page mapped onto a design.
#[derive(Debug, Clone)]
pub struct ToolPage {
    /// Its id at Farm Hack: the page URL (`external_ids.farmhack`).
    pub source_id: String,
    /// The design's name.
    pub title: String,
    /// Fields written, each with the value it came from and the edits that write it.
    pub fields: Vec<MappedField>,
    /// Relations to other tools, to resolve to designs.
    pub relations: Vec<Relation>,
    /// The page's authors.
    pub authors: Vec<String>,
    /// Its comments, in page order.
    pub comments: Vec<Comment>,
    /// Kept as links: URLs with no design field (video, images).
    pub links: Vec<(String, String)>,
    /// What could not be mapped: (page key, why).
    pub dropped: Vec<(String, String)>,
}

/// One design field an import writes.
#[derive(Debug, Clone)]
pub struct MappedField {
    /// The field (`name`, `summary`, `licence.documentation`, ...).
    pub field: String,
    /// The source value, as the digest in the provenance record sees it.
    pub value: Value,
    /// The edits that write it.
    pub edits: Vec<Edit>,
}

/// A relation from a tool page to another tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// component, assembly, branch or merge.
    pub kind: String,
    /// The other tool's URL, when given.
    pub url: Option<String>,
    /// Its title, when given.
    pub title: Option<String>,
}

impl Relation {
    /// What a link to it shows: the URL, else the title.
    pub fn target(&self) -> String {
        self.url
            .clone()
            .or_else(|| self.title.clone())
            .unwrap_or_default()
    }
}

/// A comment on a tool page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Its id: the page URL and `#comment-CID` (or its position).
    pub source_id: String,
    /// Who wrote it.
    pub author: Option<String>,
    /// When, as the page says.
    pub date: Option<String>,
    /// Its text.
    pub body: String,
    /// The comment it answers (its `source_id`).
    pub reply_to: Option<String>,
}

/// Reads a Farm Hack file: every page mapped, or refused with its reason.
pub fn parse(bytes: &[u8]) -> Result<ParsedFile, FileError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            bytes: bytes.len(),
            max: MAX_FILE_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| FileError::NotJson {
        line: e.line(),
        column: e.column(),
        reason: e
            .to_string()
            .split(" at line")
            .next()
            .unwrap_or("")
            .to_string(),
    })?;
    let (pages, retrieved) = match &value {
        Value::Array(pages) => (pages.clone(), None),
        Value::Object(map) => match map.get("tools") {
            Some(Value::Array(pages)) => (
                pages.clone(),
                text_of(map.get("retrieved").or_else(|| map.get("scraped_at"))),
            ),
            _ if map.contains_key("title") => (vec![value.clone()], None),
            _ => return Err(FileError::NoTools),
        },
        _ => return Err(FileError::NoTools),
    };
    if pages.len() > MAX_TOOLS {
        return Err(FileError::TooManyTools {
            count: pages.len(),
            max: MAX_TOOLS,
        });
    }
    let tools = pages
        .iter()
        .enumerate()
        .map(|(i, page)| {
            let title = page
                .get("title")
                .and_then(|t| text_of(Some(t)))
                .unwrap_or_default();
            (i + 1, title, map_page(page))
        })
        .collect();
    Ok(ParsedFile { retrieved, tools })
}

/// The page's id when it gives none: Farm Hack's own path for its title.
pub fn url_for_title(title: &str) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    format!("{TOOLS_BASE}{}", slug.trim_end_matches('-'))
}

/// A URL compared loosely: scheme, `www.`, case of the host and a trailing slash do not matter.
pub fn same_url(a: &str, b: &str) -> bool {
    fn key(url: &str) -> String {
        let url = url.trim();
        let url = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url);
        let url = url.strip_prefix("www.").unwrap_or(url);
        let (host, path) = url.split_once('/').unwrap_or((url, ""));
        format!("{}/{}", host.to_lowercase(), path.trim_end_matches('/'))
    }
    key(a) == key(b)
}

/// The stage a Farm Hack status names, in any case and spacing.
pub fn stage_of(status: &str) -> Option<&'static str> {
    let words: Vec<String> = status
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let key = words.join(" ");
    let key = key.strip_prefix("tool ").unwrap_or(&key);
    STATUSES.iter().find(|(s, _)| *s == key).map(|(_, st)| *st)
}

/// An SPDX id for the licence names Farm Hack pages show, or `None` when it cannot be told.
pub fn licence_of(text: &str) -> Option<String> {
    let text = text.trim();
    if crate::licence::parse_licence(text).is_ok() {
        return Some(text.to_string());
    }
    let lower = text.to_lowercase().replace(['-', '_'], " ");
    let version = ["4.0", "3.0", "2.5", "2.0", "1.0"]
        .into_iter()
        .find(|v| lower.contains(v))?;
    let words: Vec<&str> = lower.split_whitespace().collect();
    let has = |w: &str| words.contains(&w) || lower.contains(w);
    let cc = has("cc") || has("creative commons");
    if !cc {
        return None;
    }
    let by = has("by") || has("attribution");
    let sa = has("sa") || has("sharealike") || has("share alike");
    let nc = has("nc") || has("noncommercial") || has("non commercial");
    let nd = has("nd") || has("noderivatives") || has("no derivatives");
    if !by {
        return None;
    }
    let mut id = "CC-BY".to_string();
    if nc {
        id.push_str("-NC");
    }
    if nd {
        id.push_str("-ND");
    } else if sa {
        id.push_str("-SA");
    }
    let id = format!("{id}-{version}");
    crate::licence::parse_licence(&id).ok().map(|_| id)
}

/// One value as text: a string, a number, or Drupal's `{"value": ...}` / `[{"value": ...}]`.
fn text_of(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(map) => return text_of(map.get("value").or_else(|| map.get("name"))),
        Value::Array(items) if items.len() == 1 => return text_of(items.first()),
        _ => return None,
    };
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// A list of texts: an array of values, or one string split at commas.
fn list_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(|v| text_of(Some(v))).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        other => text_of(other).into_iter().collect(),
    }
}

/// The first of several spellings a scrape may use for one key.
fn pick<'a>(page: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| page.get(*k))
}

/// Maps one page.
fn map_page(page: &Value) -> Result<ToolPage, ToolError> {
    let Value::Object(page) = page else {
        return Err(ToolError::NotAnObject);
    };
    let title = text_of(page.get("title")).ok_or(ToolError::MissingTitle)?;
    let source_id = text_of(pick(page, &["url", "link", "path"]))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .unwrap_or_else(|| url_for_title(&title));
    let mut tool = ToolPage {
        source_id: source_id.clone(),
        title: title.clone(),
        fields: Vec::new(),
        relations: Vec::new(),
        authors: Vec::new(),
        comments: Vec::new(),
        links: Vec::new(),
        dropped: Vec::new(),
    };
    let set = |field: &str, text: String| MappedField {
        field: field.to_string(),
        value: Value::String(text.clone()),
        edits: vec![Edit::Set {
            field: field.to_string(),
            value: text,
        }],
    };
    let name = set("name", title.clone());
    check_field(&name).map_err(|reason| ToolError::Invalid {
        field: "name".into(),
        reason,
    })?;
    let mut candidates = vec![name];
    for (keys, field) in [
        (&["description", "body", "summary"][..], "summary"),
        (&["problem", "problem_addressed"][..], "problem"),
        (
            &["documentation", "documentation_wiki", "how_to_build"][..],
            "how_it_works",
        ),
        (&["user_manual", "manual", "how_to_use"][..], "user_manual"),
    ] {
        if let Some(text) = text_of(pick(page, keys)).map(|t| html_to_text(&t)) {
            if !text.is_empty() {
                candidates.push(set(field, text));
            }
        }
    }
    if let Some(status) = text_of(pick(page, &["status", "stage", "tool_status"])) {
        match stage_of(&status) {
            Some(stage) => candidates.push(set("stage", stage.to_string())),
            None => tool.dropped.push((
                "status".into(),
                format!(
                    "`{status}` is not a Farm Hack status (Concept, Prototype, Functional Prototype, Production Ready, In Use); stage left unset"
                ),
            )),
        }
    }
    if let Some(licence) = text_of(pick(page, &["license", "licence"])) {
        match licence_of(&licence) {
            Some(id) => candidates.push(set("licence.documentation", id)),
            None => tool.dropped.push((
                "license".into(),
                format!("`{licence}` names no licence exactly (an SPDX id or a Creative Commons name with its version); licence left unset"),
            )),
        }
    }
    for (keys, field) in [
        (&["tags", "keywords"][..], "tags"),
        (&["skills", "skills_needed"][..], "skills"),
    ] {
        let items = list_of(pick(page, keys));
        let mut kept = Vec::new();
        for item in items {
            let one = MappedField {
                field: field.into(),
                value: Value::Null,
                edits: vec![Edit::AddItem {
                    field: field.into(),
                    item: item.clone(),
                }],
            };
            match check_field(&one) {
                Ok(()) if !kept.contains(&item) => kept.push(item),
                Ok(()) => {}
                Err(reason) => tool.dropped.push((field.into(), reason)),
            }
        }
        if !kept.is_empty() {
            candidates.push(MappedField {
                field: field.into(),
                value: Value::from(kept.clone()),
                edits: kept
                    .into_iter()
                    .map(|item| Edit::AddItem {
                        field: field.into(),
                        item,
                    })
                    .collect(),
            });
        }
    }
    tool.authors = match pick(page, &["authors", "author"]) {
        Some(Value::Array(items)) => items.iter().filter_map(|v| text_of(Some(v))).collect(),
        other => text_of(other).into_iter().collect(),
    };
    tool.authors.dedup();
    if !tool.authors.is_empty() {
        candidates.push(MappedField {
            field: "contributors".into(),
            value: Value::from(tool.authors.clone()),
            edits: tool
                .authors
                .iter()
                .map(|name| Edit::AddContributor {
                    name: name.clone(),
                    role: Some(AUTHOR_ROLE.into()),
                })
                .collect(),
        });
    }
    candidates.push(set(&format!("external_ids.{SOURCE}"), source_id.clone()));
    for field in candidates {
        match check_field(&field) {
            Ok(()) => tool.fields.push(field),
            Err(reason) => tool.dropped.push((field.field.clone(), reason)),
        }
    }
    if let Some(Value::Object(relations)) = page.get("relations") {
        for kind in schema::design::RELATIONS {
            let entries = match relations.get(*kind) {
                Some(Value::Array(items)) => items.clone(),
                Some(other) => vec![other.clone()],
                None => Vec::new(),
            };
            for entry in entries {
                let (url, title) = match &entry {
                    Value::Object(map) => (
                        text_of(pick(map, &["url", "link"])),
                        text_of(map.get("title")),
                    ),
                    other => match text_of(Some(other)) {
                        Some(t) if t.starts_with("http://") || t.starts_with("https://") => {
                            (Some(t), None)
                        }
                        t => (None, t),
                    },
                };
                if url.is_some() || title.is_some() {
                    tool.relations.push(Relation {
                        kind: kind.to_string(),
                        url,
                        title,
                    });
                }
            }
        }
        for key in relations.keys() {
            if !schema::design::RELATIONS.contains(&key.as_str()) {
                tool.dropped.push((
                    format!("relations.{key}"),
                    "not a relation between tools (component, assembly, branch, merge)".into(),
                ));
            }
        }
    }
    for (key, kind) in [
        ("video_url", "video"),
        ("video", "video"),
        ("images", "image"),
    ] {
        for url in list_of(page.get(key)) {
            tool.links.push((kind.to_string(), url));
        }
    }
    tool.comments = comments(page.get("comments"), &source_id, &mut tool.dropped);
    let known = [
        "title",
        "url",
        "link",
        "path",
        "nid",
        "id",
        "description",
        "body",
        "summary",
        "problem",
        "problem_addressed",
        "documentation",
        "documentation_wiki",
        "how_to_build",
        "user_manual",
        "manual",
        "how_to_use",
        "status",
        "stage",
        "tool_status",
        "license",
        "licence",
        "tags",
        "keywords",
        "skills",
        "skills_needed",
        "authors",
        "author",
        "relations",
        "video_url",
        "video",
        "images",
        "comments",
        "created",
        "changed",
    ];
    for key in page.keys() {
        if !known.contains(&key.as_str()) {
            tool.dropped
                .push((key.clone(), "no design field for it".into()));
        }
    }
    Ok(tool)
}

/// The page's comments, each checked (an empty or oversized one is dropped and reported).
fn comments(
    value: Option<&Value>,
    page: &str,
    dropped: &mut Vec<(String, String)>,
) -> Vec<Comment> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    if items.len() > MAX_COMMENTS {
        dropped.push((
            "comments".into(),
            format!(
                "{} comments; the first {MAX_COMMENTS} are imported",
                items.len()
            ),
        ));
    }
    let mut out: Vec<Comment> = Vec::new();
    for (i, item) in items.iter().take(MAX_COMMENTS).enumerate() {
        let Value::Object(map) = item else {
            dropped.push((format!("comments.{}", i + 1), "not a comment object".into()));
            continue;
        };
        let cid = text_of(pick(map, &["cid", "id"])).unwrap_or_else(|| (i + 1).to_string());
        let body = text_of(pick(map, &["body", "comment", "text", "comment_body"]))
            .map(|b| html_to_text(&b))
            .unwrap_or_default();
        if body.is_empty() {
            dropped.push((format!("comments.{}", i + 1), "an empty comment".into()));
            continue;
        }
        if body.len() > schema::MAX_TEXT_BYTES {
            dropped.push((
                format!("comments.{}", i + 1),
                format!(
                    "{} bytes; a note holds at most {}",
                    body.len(),
                    schema::MAX_TEXT_BYTES
                ),
            ));
            continue;
        }
        let reply_to = text_of(pick(map, &["parent", "pid", "reply_to"]))
            .filter(|p| p != "0")
            .map(|p| format!("{page}#comment-{p}"))
            .filter(|p| out.iter().any(|c| &c.source_id == p));
        out.push(Comment {
            source_id: format!("{page}#comment-{cid}"),
            author: text_of(pick(map, &["author", "name", "user"])),
            date: text_of(pick(map, &["date", "created"])),
            body,
            reply_to,
        });
    }
    out
}

/// Checks that a field's edits apply to a fresh design and leave it valid, on a scratch
/// document: what fails here is reported, and nothing that fails is ever written.
fn check_field(field: &MappedField) -> Result<(), String> {
    let mut doc = automerge::Automerge::new();
    let ctx = EditContext {
        author: "importer".into(),
        now_unix: 0,
    };
    let mut tx = doc.transaction();
    let result = (|| -> Result<(), String> {
        schema::init_document(&mut tx, &NewDocument::new(DocKind::Design, "scratch"))
            .map_err(|e| e.to_string())?;
        for edit in &field.edits {
            schema::apply_edit(&mut tx, DocKind::Design, edit, &ctx).map_err(|e| e.to_string())?;
        }
        Ok(())
    })();
    tx.commit();
    result?;
    schema::validate_document(&doc, DocKind::Design).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_licences_map_as_a_reader_would() {
        assert_eq!(
            stage_of("Functional Prototype"),
            Some("functional-prototype")
        );
        assert_eq!(stage_of("Tool Concept"), Some("concept"));
        assert_eq!(stage_of("in-use"), Some("in-use"));
        assert_eq!(stage_of("Beta"), None);
        assert_eq!(
            licence_of("Creative Commons Attribution-ShareAlike 4.0 International").as_deref(),
            Some("CC-BY-SA-4.0")
        );
        assert_eq!(licence_of("CC BY-SA 3.0").as_deref(), Some("CC-BY-SA-3.0"));
        assert_eq!(
            licence_of("CC-BY-NC-SA-4.0").as_deref(),
            Some("CC-BY-NC-SA-4.0")
        );
        assert_eq!(licence_of("CC BY-SA"), None);
        assert_eq!(licence_of("open source"), None);
    }

    #[test]
    fn a_page_maps_field_by_field() {
        let file = parse(
            br#"{"retrieved": "2026-11-01", "tools": [{"title": "Roller Crimper",
              "url": "https://farmhack.org/tools/roller-crimper", "description": "<p>Crimps rye.</p>",
              "status": "Prototype", "tags": ["no-till"], "license": "CC BY-SA 4.0",
              "authors": ["Ann"], "relations": {"component": ["https://farmhack.org/tools/hitch"]},
              "comments": [{"cid": 7, "author": "Bo", "body": "Nice"}, {"cid": 8, "parent": 7, "body": "Thanks"}]},
              {"description": "no title"}, 3]}"#,
        )
        .expect("reads");
        assert_eq!(file.retrieved.as_deref(), Some("2026-11-01"));
        assert_eq!(file.tools.len(), 3);
        let tool = file.tools[0].2.as_ref().expect("maps");
        let value = |f: &str| {
            tool.fields
                .iter()
                .find(|m| m.field == f)
                .map(|m| m.value.clone())
        };
        assert_eq!(value("summary"), Some(Value::from("Crimps rye.")));
        assert_eq!(value("stage"), Some(Value::from("prototype")));
        assert_eq!(
            value("licence.documentation"),
            Some(Value::from("CC-BY-SA-4.0"))
        );
        assert_eq!(tool.relations[0].kind, "component");
        assert_eq!(tool.comments.len(), 2);
        assert_eq!(
            tool.comments[1].reply_to.as_deref(),
            Some("https://farmhack.org/tools/roller-crimper#comment-7")
        );
        assert_eq!(
            file.tools[1].2.as_ref().err(),
            Some(&ToolError::MissingTitle)
        );
        assert_eq!(
            file.tools[2].2.as_ref().err(),
            Some(&ToolError::NotAnObject)
        );
    }

    #[test]
    fn unreadable_files_say_why() {
        assert!(matches!(
            parse(b"{not json"),
            Err(FileError::NotJson { line: 1, .. })
        ));
        assert_eq!(parse(br#"{"pages": 1}"#).err(), Some(FileError::NoTools));
        assert!(same_url(
            "https://www.FarmHack.org/tools/x/",
            "http://farmhack.org/tools/x"
        ));
        assert_eq!(
            url_for_title("Bicycle Thresher (v2)"),
            "https://farmhack.org/tools/bicycle-thresher-v2"
        );
    }
}
