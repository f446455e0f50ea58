//! Reading what people write where a code belongs: prose licence names, free-text languages,
//! misspelt readiness levels and development stages.
//!
//! Each reader returns the code and whether it had to guess, so the report can say so; text
//! that cannot be read with confidence is refused (the caller drops or falls back).

use crate::licence::{parse_licence, MAX_LICENCE_BYTES};

/// How a licence text was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LicenceRead {
    /// Already a valid SPDX expression.
    Exact(String),
    /// A prose or imprecise name mapped to an SPDX expression.
    Mapped(String),
    /// No SPDX licence matches: kept as `LicenseRef-...`.
    Reference(String),
}

impl LicenceRead {
    /// The expression to store.
    pub fn expr(&self) -> &str {
        match self {
            LicenceRead::Exact(e) | LicenceRead::Mapped(e) | LicenceRead::Reference(e) => e,
        }
    }
}

/// Reads a licence as a person would: an SPDX expression, an imprecise id (`GPLv3`, `cc0`,
/// through the spdx crate's list), a Creative Commons or CERN OHL name in prose, else a
/// `LicenseRef-` naming the text. `None` for empty text.
pub fn read_licence(text: &str) -> Option<LicenceRead> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if parse_licence(text).is_ok() {
        return Some(LicenceRead::Exact(text.to_string()));
    }
    if let Some(id) = case_insensitive_id(text) {
        return Some(LicenceRead::Mapped(id));
    }
    if let Some(id) = prose_licence(text) {
        return Some(LicenceRead::Mapped(id));
    }
    if let Ok(Some(canonical)) = spdx::Expression::canonicalize(text) {
        if parse_licence(&canonical).is_ok() {
            return Some(LicenceRead::Mapped(canonical));
        }
    }
    Some(LicenceRead::Reference(licence_ref(text)))
}

/// An SPDX id written in another case (`cc-by-sa-4.0`).
fn case_insensitive_id(text: &str) -> Option<String> {
    spdx::identifiers::LICENSES
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(text))
        .map(|l| l.name.to_string())
        .filter(|id| parse_licence(id).is_ok())
}

/// Words of a licence name, lower case, without punctuation or filler.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace("share-alike", "sharealike")
        .replace("share alike", "sharealike")
        .replace("non-commercial", "noncommercial")
        .replace("no-derivatives", "noderivatives")
        .replace("no derivatives", "noderivatives")
        .split(|c: char| !(c.is_alphanumeric() || c == '.'))
        .map(|w| w.trim_matches('.').to_string())
        .filter(|w| {
            !w.is_empty()
                && !matches!(
                    w.as_str(),
                    "license"
                        | "licence"
                        | "international"
                        | "unported"
                        | "generic"
                        | "v"
                        | "version"
                )
        })
        .collect()
}

/// The first version number among the words (`4.0`, `2`, `v1.2`).
fn version_of(words: &[String]) -> Option<String> {
    words.iter().find_map(|w| {
        let w = w.trim_start_matches('v');
        let ok = !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.');
        ok.then(|| {
            if w.contains('.') {
                w.to_string()
            } else {
                format!("{w}.0")
            }
        })
    })
}

/// Creative Commons and CERN OHL names in prose.
fn prose_licence(text: &str) -> Option<String> {
    let w = words(text);
    let has = |s: &str| w.iter().any(|x| x == s);
    let version = version_of(&w);
    let id = if has("creative") && has("commons") || w.first().is_some_and(|f| f == "cc") {
        if has("zero") || has("cc0") {
            "CC0-1.0".to_string()
        } else {
            let mut id = String::from("CC-BY");
            if has("noncommercial") || has("nc") {
                id.push_str("-NC");
            }
            if has("noderivatives") || has("noderivs") || has("nd") {
                id.push_str("-ND");
            }
            if has("sharealike") || has("sa") {
                id.push_str("-SA");
            }
            let attribution = has("attribution") || has("by");
            if !attribution {
                return None;
            }
            format!("{id}-{}", version?)
        }
    } else if has("cern") && has("ohl") || has("cern") && has("open") && has("hardware") {
        let version = version?;
        if version.starts_with('2') {
            let variant = if has("s") || has("strongly") {
                "S"
            } else if has("w") || has("weakly") {
                "W"
            } else if has("p") || has("permissive") {
                "P"
            } else {
                return None;
            };
            format!("CERN-OHL-{variant}-2.0")
        } else {
            format!("CERN-OHL-{version}")
        }
    } else if has("tapr") {
        "TAPR-OHL-1.0".to_string()
    } else {
        return None;
    };
    parse_licence(&id).ok().map(|_| id)
}

/// `LicenseRef-` and the text's letters, digits, `.` and `-` (others become `-`).
fn licence_ref(text: &str) -> String {
    let mut body = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            body.push(c);
        } else if !body.ends_with('-') {
            body.push('-');
        }
    }
    let body = body.trim_matches('-');
    let body = if body.is_empty() { "unknown" } else { body };
    let mut out = format!("LicenseRef-{body}");
    out.truncate(MAX_LICENCE_BYTES);
    out
}

/// Language names people write, and their BCP 47 subtags.
const LANGUAGES: &[(&str, &str)] = &[
    ("english", "en"),
    ("german", "de"),
    ("deutsch", "de"),
    ("french", "fr"),
    ("francais", "fr"),
    ("français", "fr"),
    ("spanish", "es"),
    ("espanol", "es"),
    ("español", "es"),
    ("castellano", "es"),
    ("italian", "it"),
    ("italiano", "it"),
    ("portuguese", "pt"),
    ("português", "pt"),
    ("dutch", "nl"),
    ("nederlands", "nl"),
    ("polish", "pl"),
    ("swedish", "sv"),
    ("danish", "da"),
    ("norwegian", "no"),
    ("finnish", "fi"),
    ("czech", "cs"),
    ("greek", "el"),
    ("turkish", "tr"),
    ("russian", "ru"),
    ("ukrainian", "uk"),
    ("arabic", "ar"),
    ("hindi", "hi"),
    ("swahili", "sw"),
    ("chinese", "zh"),
    ("japanese", "ja"),
    ("korean", "ko"),
];

/// Region names people write after a language, and their subtags.
const REGIONS: &[(&str, &str)] = &[
    ("uk", "GB"),
    ("britain", "GB"),
    ("british", "GB"),
    ("usa", "US"),
    ("american", "US"),
    ("america", "US"),
    ("germany", "DE"),
    ("france", "FR"),
    ("canada", "CA"),
    ("brazil", "BR"),
    ("brasil", "BR"),
    ("mexico", "MX"),
    ("spain", "ES"),
];

/// Reads a language as a BCP 47 tag: `en`, `en-GB`, `english-US`, `English (UK)`, `EN_us`,
/// `Deutsch`. `None` when the first word is no known language or code.
pub fn read_language(text: &str) -> Option<String> {
    let parts: Vec<String> = text
        .split(['-', '_', ' ', '(', ')', ','])
        .filter(|p| !p.is_empty())
        .map(str::to_lowercase)
        .collect();
    let first = parts.first()?;
    let language =
        if (2..=3).contains(&first.len()) && first.chars().all(|c| c.is_ascii_alphabetic()) {
            first.clone()
        } else {
            LANGUAGES
                .iter()
                .find(|(name, _)| name == first)
                .map(|(_, code)| code.to_string())?
        };
    let region = parts.get(1).and_then(|r| {
        if r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()) {
            Some(r.to_uppercase()).map(|r| if r == "UK" { "GB".to_string() } else { r })
        } else if r.len() == 3 && r.chars().all(|c| c.is_ascii_digit()) {
            Some(r.clone())
        } else {
            REGIONS
                .iter()
                .find(|(name, _)| name == r)
                .map(|(_, code)| code.to_string())
        }
    });
    Some(match region {
        Some(region) => format!("{language}-{region}"),
        None => language,
    })
}

/// Reads a readiness level (`OTRL-3`, `otrl3`, `OTLR 3`, `ORTL-3`) as its number; `prefix` is
/// `OTRL` or `ODRL`. Letters within two edits of the prefix count as the prefix.
pub fn read_level(text: &str, prefix: &str) -> Option<(u8, bool)> {
    let t = text.trim();
    let letters: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let rest = t[letters.len()..].trim_start_matches(['-', '_', ' ', '.']);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let tail = &rest[digits.len()..];
    let number: u8 = digits.parse().ok()?;
    if !(tail.is_empty() || tail == "*") {
        return None;
    }
    let upper = letters.to_ascii_uppercase();
    let close = strsim::damerau_levenshtein(&upper, prefix) <= 2 && upper.len() >= 3;
    if !close {
        return None;
    }
    let exact = t == format!("{prefix}-{number}{tail}");
    Some((number, !exact))
}

/// The design stage an OKH technology readiness level means.
pub fn stage_of_otrl(level: u8) -> Option<&'static str> {
    match level {
        1 => Some("idea"),
        2 => Some("concept"),
        3 => Some("prototype"),
        4 => Some("functional-prototype"),
        5 | 6 => Some("production-ready"),
        _ => None,
    }
}

/// The OKH technology readiness level a design stage means.
pub fn otrl_of_stage(stage: &str) -> Option<&'static str> {
    match stage {
        "idea" => Some("OTRL-1"),
        "concept" => Some("OTRL-2"),
        "prototype" => Some("OTRL-3"),
        "functional-prototype" => Some("OTRL-4"),
        "production-ready" | "in-use" | "commercial" => Some("OTRL-5"),
        _ => None,
    }
}

/// Reads an OKH v1 `development-stage` (free text) as a design stage.
pub fn read_stage(text: &str) -> Option<(&'static str, bool)> {
    let t = text.trim().to_lowercase().replace(['_', ' '], "-");
    let exact = crate::schema::design::STAGES.iter().find(|s| **s == t);
    if let Some(s) = exact {
        return Some((s, false));
    }
    let guess = match t.as_str() {
        "ideation" | "idea-stage" => "idea",
        "conception" | "design" | "concept-stage" | "early-stages" | "early-stage" | "early" => {
            "concept"
        }
        "proto" | "prototyping" | "early-prototype" | "alpha" | "beta" => "prototype",
        "working-prototype" | "functional" => "functional-prototype",
        "product" | "production" | "mature" | "stable" | "finished" | "done" => "production-ready",
        "in-production" | "used" => "in-use",
        _ => crate::schema::design::STAGES
            .iter()
            .find(|s| strsim::damerau_levenshtein(s, &t) <= 2)
            .copied()?,
    };
    Some((guess, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_in_prose_map_to_spdx() {
        let read = |t: &str| read_licence(t).map(|r| r.expr().to_string());
        assert_eq!(
            read("Creative Commons Attribution-ShareAlike 4.0 International").as_deref(),
            Some("CC-BY-SA-4.0")
        );
        assert_eq!(read("CC BY-NC-SA 4.0").as_deref(), Some("CC-BY-NC-SA-4.0"));
        assert_eq!(read("CERN OHL v1.2").as_deref(), Some("CERN-OHL-1.2"));
        assert_eq!(read("CERN-OHL-S v2").as_deref(), Some("CERN-OHL-S-2.0"));
        assert_eq!(read("cc-by-4.0").as_deref(), Some("CC-BY-4.0"));
        assert_eq!(read("GPLv3").as_deref(), Some("GPL-3.0-only"));
        assert_eq!(read("MIT"), Some("MIT".to_string()));
        assert_eq!(
            read("Our Own Farm Licence!"),
            Some("LicenseRef-Our-Own-Farm-Licence".to_string())
        );
        assert!(matches!(
            read_licence("CERN OHL"),
            Some(LicenceRead::Reference(_))
        ));
    }

    #[test]
    fn languages_in_free_text() {
        assert_eq!(read_language("english-US").as_deref(), Some("en-US"));
        assert_eq!(read_language("English (UK)").as_deref(), Some("en-GB"));
        assert_eq!(read_language("EN_us").as_deref(), Some("en-US"));
        assert_eq!(read_language("Deutsch").as_deref(), Some("de"));
        assert_eq!(read_language("fr").as_deref(), Some("fr"));
        assert_eq!(read_language("Klingonese"), None);
    }

    #[test]
    fn readiness_levels_with_typos() {
        assert_eq!(read_level("OTRL-3", "OTRL"), Some((3, false)));
        assert_eq!(read_level("OTLR-3", "OTRL"), Some((3, true)));
        assert_eq!(read_level("otrl 4", "OTRL"), Some((4, true)));
        assert_eq!(read_level("ODRL-3*", "ODRL"), Some((3, false)));
        assert_eq!(read_level("ready", "OTRL"), None);
        assert_eq!(read_stage("Prototype"), Some(("prototype", false)));
        assert_eq!(read_stage("protoype"), Some(("prototype", true)));
    }
}
