//! A design -> an OKH manifest (OKH-LOSH TOML or OKH v1 YAML) that validates against the
//! format's published JSON schema.
//!
//! Files are named by the path they were imported from (kept as their caption) or by their
//! name; links and extras come back from `external_ids.okh-*` as they were written, so a
//! manifest imported, exported and imported again changes nothing.

use super::lenient::{otrl_of_stage, read_language};
use super::{EXTRA_PREFIX, ID_KEY};
use serde_json::Value;

/// The format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// OKH-LOSH, `okh.toml`.
    Losh,
    /// OKH v1, `okh.yml`.
    V1,
}

/// Why a design cannot be written as a manifest of the format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// A key the format requires has nothing to come from.
    #[error("an OKH-LOSH manifest requires `{key}`, and the design has no {field}; set it (`hedgerow design edit ID --set {field}=...`) or export with --format v1")]
    Missing {
        /// The manifest key.
        key: &'static str,
        /// The design field it comes from.
        field: &'static str,
    },
    /// The TOML or YAML writer failed.
    #[error("the manifest could not be written: {0}")]
    Write(String),
}

/// Keys written from `external_ids.okh-KEY` as lists in OKH-LOSH.
const LOSH_LISTS: &[&str] = &["standard-compliance", "software"];

/// The LOSH keys that come from files, in order, with the roles they take.
const LOSH_FILES: &[(&str, &str)] = &[
    ("image", "photo"),
    ("bom", "bom"),
    ("manufacturing-instructions", "plan"),
    ("user-manual", "manual"),
    ("source", "cad"),
    ("export", "drawing"),
    ("auxiliary", "other"),
];

/// The v1 keys that come from files.
const V1_FILES: &[(&str, &str)] = &[
    ("image", "photo"),
    ("bom", "bom"),
    ("design-files", "cad"),
    ("schematics", "drawing"),
    ("making-instructions", "plan"),
    ("operating-instructions", "manual"),
    ("risk-assessment", "other"),
];

/// Writes `design` (as rendered by the schema) as a manifest.
pub fn export(design: &Value, format: ExportFormat) -> Result<String, ExportError> {
    match format {
        ExportFormat::Losh => losh(design),
        ExportFormat::V1 => v1(design),
    }
}

fn text(design: &Value, path: &str) -> Option<String> {
    let mut v = design;
    for part in path.splitn(2, '.') {
        v = v.get(part)?;
    }
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_f64().map(super::import::format_number),
        _ => None,
    }
}

/// `external_ids.okh-*` as (key, lines).
fn extras(design: &Value) -> Vec<(String, Vec<String>)> {
    design
        .get("external_ids")
        .and_then(Value::as_object)
        .map(|ids| {
            ids.iter()
                .filter_map(|(k, v)| {
                    let key = k.strip_prefix(EXTRA_PREFIX)?;
                    let lines = v.as_str()?.lines().map(str::to_string).collect();
                    Some((key.to_string(), lines))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Paths of the design's files of one role (their import path, else their name), parts' files
/// left out when `parts` is false.
fn file_paths(design: &Value, role: &str, part: Option<&str>) -> Vec<String> {
    design
        .get("files")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter(|f| f.get("role").and_then(Value::as_str) == Some(role))
                .filter_map(|f| {
                    let name = f.get("name").and_then(Value::as_str)?;
                    let caption = f.get("caption").and_then(Value::as_str);
                    let of_part = caption
                        .and_then(|c| c.strip_prefix("part ").and_then(|c| c.split_once(": ")));
                    match (part, of_part) {
                        (None, None) => Some(path_of(name, caption)),
                        (Some(p), Some((q, path))) if p == q => Some(path_of(name, Some(path))),
                        _ => None,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A file's path in the manifest: the path it was imported from when its caption is one.
fn path_of(name: &str, caption: Option<&str>) -> String {
    match caption {
        Some(c) if c == name || c.ends_with(&format!("/{name}")) => c.to_string(),
        _ => name.to_string(),
    }
}

fn require(
    design: &Value,
    path: &str,
    key: &'static str,
    field: &'static str,
) -> Result<String, ExportError> {
    text(design, path).ok_or(ExportError::Missing { key, field })
}

fn web_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && !s.contains(char::is_whitespace)
}

fn losh(design: &Value) -> Result<String, ExportError> {
    let mut t = toml::Table::new();
    let put = |t: &mut toml::Table, k: &str, v: toml::Value| {
        t.insert(k.to_string(), v);
    };
    let s = |v: String| toml::Value::String(v);
    put(&mut t, "okhv", s("OKH-LOSHv1.0".into()));
    put(&mut t, "name", s(require(design, "name", "name", "name")?));
    let repo = text(design, &format!("external_ids.{ID_KEY}"))
        .filter(|r| web_url(r))
        .ok_or(ExportError::Missing {
            key: "repo",
            field: "external_ids.okh (an http(s) URL)",
        })?;
    put(&mut t, "repo", s(repo));
    put(
        &mut t,
        "version",
        s(require(design, "version", "version", "version")?),
    );
    let licence = text(design, "licence.hardware")
        .or_else(|| text(design, "licence.documentation"))
        .ok_or(ExportError::Missing {
            key: "license",
            field: "licence.hardware",
        })?;
    put(&mut t, "license", s(licence));
    put(
        &mut t,
        "licensor",
        s(require(design, "licensor", "licensor", "licensor")?),
    );
    put(
        &mut t,
        "function",
        s(require(design, "summary", "function", "summary")?),
    );
    if let Some(lang) = text(design, "documentation_language").and_then(|l| read_language(&l)) {
        put(&mut t, "documentation-language", s(lang));
    }
    let extras = extras(design);
    let extra = |k: &str| {
        extras
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let otrl = extra("technology-readiness-level")
        .and_then(|v| v.first().cloned())
        .or_else(|| text(design, "stage").and_then(|st| otrl_of_stage(&st).map(str::to_string)));
    if let Some(otrl) = otrl {
        put(&mut t, "technology-readiness-level", s(otrl));
    }
    for (key, role) in LOSH_FILES {
        let mut items = file_paths(design, role, None);
        items.extend(
            extra(key)
                .unwrap_or_default()
                .into_iter()
                .filter(|l| web_url(l)),
        );
        match (items.len(), *key) {
            (0, _) => {}
            (_, "bom" | "user-manual") | (1, _) => put(&mut t, key, s(items.remove(0))),
            _ => put(
                &mut t,
                key,
                toml::Value::Array(items.into_iter().map(s).collect()),
            ),
        }
    }
    if let Some(kg) = design
        .pointer("/build_facts/weight_kg")
        .and_then(Value::as_f64)
    {
        let mut mass = toml::Table::new();
        mass.insert("value".into(), toml::Value::Float(kg));
        mass.insert("unit".into(), s("kg".into()));
        put(&mut t, "mass", toml::Value::Table(mass));
    }
    if let Some(dims) = extra("outer-dimensions").and_then(|v| v.first().cloned()) {
        if let Some((scad, unit)) = dims
            .rsplit_once(' ')
            .filter(|(_, u)| matches!(*u, "mm" | "cm" | "m"))
        {
            let mut d = toml::Table::new();
            d.insert("openSCAD".into(), s(scad.to_string()));
            d.insert("unit".into(), s(unit.to_string()));
            put(&mut t, "outer-dimensions", toml::Value::Table(d));
        }
    }
    for (key, lines) in &extras {
        let k = key.as_str();
        let handled = matches!(k, "technology-readiness-level" | "outer-dimensions")
            || LOSH_FILES.iter().any(|(f, _)| *f == k);
        if handled || t.contains_key(k) {
            continue;
        }
        if k == "software" {
            let items = lines
                .iter()
                .map(|r| {
                    let mut e = toml::Table::new();
                    e.insert("release".into(), s(r.clone()));
                    toml::Value::Table(e)
                })
                .collect();
            put(&mut t, k, toml::Value::Array(items));
        } else if LOSH_LISTS.contains(&k) || lines.len() > 1 {
            put(
                &mut t,
                k,
                toml::Value::Array(lines.iter().cloned().map(s).collect()),
            );
        } else if let Some(line) = lines.first() {
            put(&mut t, k, s(line.clone()));
        }
    }
    let parts = design
        .get("parts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out_parts = Vec::new();
    for part in &parts {
        let Some(name) = part.get("name").and_then(Value::as_str) else {
            continue;
        };
        let mut p = toml::Table::new();
        p.insert("name".into(), s(name.to_string()));
        if let Some(m) = part.get("material").and_then(Value::as_str) {
            p.insert("material".into(), s(m.to_string()));
        }
        for (key, role) in [
            ("image", "photo"),
            ("source", "cad"),
            ("export", "drawing"),
            ("auxiliary", "other"),
        ] {
            let paths = file_paths(design, role, Some(name));
            match paths.len() {
                0 => {}
                1 => {
                    p.insert(key.into(), s(paths[0].clone()));
                }
                _ => {
                    p.insert(
                        key.into(),
                        toml::Value::Array(paths.into_iter().map(s).collect()),
                    );
                }
            }
        }
        // The schema wants a part to have files; one without any is left out.
        if p.contains_key("source") || p.contains_key("export") {
            out_parts.push(toml::Value::Table(p));
        }
    }
    if !out_parts.is_empty() {
        put(&mut t, "part", toml::Value::Array(out_parts));
    }
    toml::to_string(&t).map_err(|e| ExportError::Write(e.to_string()))
}

fn v1(design: &Value) -> Result<String, ExportError> {
    use yaml_rust2::yaml::{Hash, Yaml};
    let mut h = Hash::new();
    let s = |v: &str| Yaml::String(v.to_string());
    let put = |h: &mut Hash, k: &str, v: Yaml| {
        h.insert(s(k), v);
    };
    put(&mut h, "okh-manifest-version", s("1.0.0"));
    put(
        &mut h,
        "title",
        s(&require(design, "name", "title", "name")?),
    );
    put(
        &mut h,
        "description",
        s(&text(design, "summary").unwrap_or_else(|| text(design, "name").unwrap_or_default())),
    );
    if let Some(v) = text(design, "intended_use") {
        put(&mut h, "intended-use", s(&v));
    }
    let tags: Vec<Yaml> = design
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(s).collect())
        .unwrap_or_default();
    if !tags.is_empty() {
        put(&mut h, "keywords", Yaml::Array(tags));
    }
    if let Some(link) = text(design, &format!("external_ids.{ID_KEY}")).filter(|l| web_url(l)) {
        put(&mut h, "project-link", s(&link));
    }
    if let Some(v) = text(design, "version") {
        put(&mut h, "version", s(&v));
    }
    if let Some(v) = text(design, "stage") {
        put(&mut h, "development-stage", s(&v));
    }
    let mut licence = Hash::new();
    for kind in ["hardware", "documentation", "software"] {
        if let Some(l) = text(design, &format!("licence.{kind}")) {
            licence.insert(s(kind), s(&l));
        }
    }
    if licence.is_empty() {
        return Err(ExportError::Missing {
            key: "license",
            field: "licence.hardware",
        });
    }
    put(&mut h, "license", Yaml::Hash(licence));
    if let Some(l) = text(design, "licensor") {
        let mut p = Hash::new();
        p.insert(s("name"), s(&l));
        put(&mut h, "licensor", Yaml::Hash(p));
    }
    let people: Vec<Yaml> = design
        .get("contributors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|c| c.get("role").and_then(Value::as_str) != Some("contact"))
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(|n| {
                    let mut p = Hash::new();
                    p.insert(s("name"), s(n));
                    Yaml::Hash(p)
                })
                .collect()
        })
        .unwrap_or_default();
    if !people.is_empty() {
        put(&mut h, "contributors", Yaml::Array(people));
    }
    if let Some(lang) = text(design, "documentation_language").and_then(|l| read_language(&l)) {
        put(&mut h, "documentation-language", s(&lang));
    }
    if let Some(v) = text(design, "safety") {
        put(&mut h, "health-safety-notice", s(&v));
    }
    let extras = extras(design);
    for (key, role) in V1_FILES {
        let mut items = file_paths(design, role, None);
        items.extend(
            extras
                .iter()
                .filter(|(k, _)| k == key)
                .flat_map(|(_, v)| v.iter().filter(|l| web_url(l)).cloned()),
        );
        if items.is_empty() {
            continue;
        }
        if matches!(*key, "image" | "bom") {
            put(&mut h, key, s(&items[0]));
        } else {
            let docs = items
                .iter()
                .map(|p| {
                    let mut d = Hash::new();
                    d.insert(s("path"), s(p));
                    Yaml::Hash(d)
                })
                .collect();
            put(&mut h, key, Yaml::Array(docs));
        }
    }
    let parts: Vec<Yaml> = design
        .get("parts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .map(|n| {
                    let mut d = Hash::new();
                    d.insert(s("title"), s(n));
                    Yaml::Hash(d)
                })
                .collect()
        })
        .unwrap_or_default();
    if !parts.is_empty() {
        put(&mut h, "sub-parts", Yaml::Array(parts));
    }
    for (key, lines) in &extras {
        if matches!(
            key.as_str(),
            "documentation-home" | "archive-download" | "tool-list"
        ) {
            if let Some(l) = lines.first() {
                put(&mut h, key, s(l));
            }
        } else if matches!(key.as_str(), "derivative-of" | "variant-of") {
            if let Some(l) = lines.first().filter(|l| web_url(l)) {
                let mut d = Hash::new();
                d.insert(s("web"), s(l));
                put(&mut h, key, Yaml::Hash(d));
            }
        }
    }
    let mut out = String::new();
    yaml_rust2::YamlEmitter::new(&mut out)
        .dump(&Yaml::Hash(h))
        .map_err(|e| ExportError::Write(e.to_string()))?;
    out.push('\n');
    Ok(out)
}
