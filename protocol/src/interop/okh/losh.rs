//! OKH-LOSH (`okh.toml`): its keys, draft keys of older versions, and their mapping.

use super::import::{
    dimensions, flat_text, format_number, is_slug, person_names, ManifestError, Reader,
};
use super::lenient::{read_level, stage_of_otrl};
use super::tree::{Node, ScalarKind, Val};
use super::Mapped;

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

impl Reader {
    pub(super) fn losh(&mut self, entries: Vec<(String, Node)>) -> Result<(), ManifestError> {
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

    pub(super) fn readiness(&mut self, key: &str, node: &Node, prefix: &str, max: u8) {
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

    pub(super) fn mass(&mut self, key: &str, node: &Node) {
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

    pub(super) fn parts(&mut self, node: &Node) {
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
