//! OKH v1 (`okh.yml`): its keys and their mapping.

use super::import::{flat_text, is_slug, person_names, ManifestError, Reader};
use super::lenient::read_stage;
use super::tree::{Node, Val};
use super::Mapped;

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

impl Reader {
    pub(super) fn v1(&mut self, entries: Vec<(String, Node)>) -> Result<(), ManifestError> {
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

    pub(super) fn text_field(&mut self, key: &str, field: &str, node: &Node) {
        if let Some(v) = self.text_of(key, node) {
            self.set(key, field, &v);
        }
    }
}
