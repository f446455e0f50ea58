//! The import provenance record: "imported from SOURCE on DATE on behalf of AUTHORS".
//!
//! An import is signed by the person who ran it, but its content was written by others. The
//! record says so, and travels inside the very change that wrote the import: the change's
//! automerge message is [`MESSAGE_PREFIX`] followed by the record as JSON. The message is part
//! of the change bytes, so the record is covered by the importer's signature, syncs, bundles
//! and survives `save()`/`load()` in any automerge implementation, and a node of an earlier
//! release (which ignores messages on content documents) takes such changes unchanged.
//!
//! The record is general: Farm Hack tool pages, their comments and OKH manifests use it alike
//! (`source` names the kind of source, `id` the thing imported there). It is believed only
//! for the signer it names: a record whose `importer` is not the change's signing author is
//! ignored by readers, so nobody can sign a change that claims another person imported it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What starts the automerge message of a change carrying a version-1 record.
pub const MESSAGE_PREFIX: &str = "hedgerow-import/1 ";
/// The start shared by every version (`hedgerow-import/N `).
pub const MESSAGE_FAMILY: &str = "hedgerow-import/";
/// Largest record accepted, in bytes of JSON (a message longer than this is not a record).
pub const MAX_RECORD_BYTES: usize = 32 * 1024;
/// Most original authors one record names.
pub const MAX_AUTHORS: usize = 64;
/// Most unresolved links one record keeps.
pub const MAX_LINKS: usize = 256;
/// Longest text of one record value (an author's name, an id or a URL), in bytes.
pub const MAX_VALUE_BYTES: usize = 2048;

/// One import's provenance: signed into the change that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRecord {
    /// The kind of source: `farmhack`, `okh`, ...: also the document's `external_ids` key.
    pub source: String,
    /// What was imported, as the source names it (a tool page's URL, a manifest's repo, a
    /// comment's URL with its `#comment-N`); the same value as `external_ids.SOURCE` for a design.
    pub id: String,
    /// Where a person can read the original, when different from `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The original authors, as the source names them: the import is on their behalf.
    pub authors: Vec<String>,
    /// The author key (base58) of the person who ran the import, who signs the change.
    pub importer: String,
    /// When the import ran, unix seconds.
    pub at: i64,
    /// When the source itself was read or scraped, as the file says (free text, often a date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved: Option<String>,
    /// When the original was written, as the source says (a comment's date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<String>,
    /// References the import could not resolve to a document here, kept as links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Per mapped field, a digest of the value the source gave ([`field_digest`]): a later
    /// import writes only the fields whose source value changed since, so local edits of the
    /// others are kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// A reference kept as a link: a related tool that is not held here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The kind of reference (`component`, `assembly`, `branch`, `merge`, ...).
    pub kind: String,
    /// Its URL or, lacking one, its title at the source.
    pub target: String,
}

/// Why a record cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// `source` is not a lowercase slug.
    #[error("the import source `{0}` is not a lowercase word (letters, digits, `-`)")]
    BadSource(String),
    /// A value is empty where one is needed, or too long.
    #[error("the import record's {field} is empty or longer than {max} bytes")]
    BadValue {
        /// Which value.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// Too many authors or links.
    #[error("the import record names {count} {what}; at most {max}")]
    TooMany {
        /// Authors or links.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The record as JSON passes [`MAX_RECORD_BYTES`].
    #[error("the import record is {bytes} bytes; at most {MAX_RECORD_BYTES}")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
}

impl ImportRecord {
    /// Checks the record's limits: one [`RecordError`] variant per broken rule.
    pub fn validate(&self) -> Result<(), RecordError> {
        let slug = !self.source.is_empty()
            && self.source.len() <= 64
            && self
                .source
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug {
            return Err(RecordError::BadSource(self.source.clone()));
        }
        let value = |field, text: &str| {
            if text.trim().is_empty() || text.len() > MAX_VALUE_BYTES {
                Err(RecordError::BadValue {
                    field,
                    max: MAX_VALUE_BYTES,
                })
            } else {
                Ok(())
            }
        };
        value("id", &self.id)?;
        value("importer", &self.importer)?;
        if let Some(url) = &self.url {
            value("url", url)?;
        }
        if self.authors.len() > MAX_AUTHORS {
            return Err(RecordError::TooMany {
                what: "authors",
                count: self.authors.len(),
                max: MAX_AUTHORS,
            });
        }
        for author in &self.authors {
            value("author", author)?;
        }
        if self.links.len() > MAX_LINKS {
            return Err(RecordError::TooMany {
                what: "links",
                count: self.links.len(),
                max: MAX_LINKS,
            });
        }
        for link in &self.links {
            value("link", &link.target)?;
        }
        Ok(())
    }

    /// The automerge change message carrying this record.
    pub fn to_message(&self) -> Result<String, RecordError> {
        self.validate()?;
        let json = serde_json::to_string(self).unwrap_or_default();
        if json.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { bytes: json.len() });
        }
        Ok(format!("{MESSAGE_PREFIX}{json}"))
    }

    /// The record a change message carries, if it carries a valid version-1 record; any other
    /// message (none, free text, a later version, a malformed record) is `None`.
    pub fn from_message(message: &str) -> Option<ImportRecord> {
        let json = message.strip_prefix(MESSAGE_PREFIX)?;
        if json.len() > MAX_RECORD_BYTES {
            return None;
        }
        let record: ImportRecord = serde_json::from_str(json).ok()?;
        record.validate().ok()?;
        Some(record)
    }

    /// The one-line account `history` prints: "imported from farmhack URL on behalf of A, B".
    pub fn describe(&self) -> String {
        let authors = if self.authors.is_empty() {
            "its unnamed authors".to_string()
        } else {
            self.authors.join(", ")
        };
        format!(
            "imported from {} {} on behalf of {}",
            self.source,
            self.url.as_deref().unwrap_or(&self.id),
            authors
        )
    }
}

/// A short digest of a mapped field's value (16 hex characters of BLAKE3 over its JSON).
pub fn field_digest(value: &serde_json::Value) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    let hash = blake3::derive_key("hedgerow 2026-11 import field digest v1", json.as_bytes());
    hex::encode(&hash[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ImportRecord {
        ImportRecord {
            source: "farmhack".into(),
            id: "https://farmhack.org/tools/roller-crimper".into(),
            url: None,
            authors: vec!["Dorn Cox".into()],
            importer: "5xKey".into(),
            at: 1_790_000_000,
            retrieved: Some("2026-11-01".into()),
            written: None,
            links: vec![Link {
                kind: "component".into(),
                target: "https://farmhack.org/tools/hitch".into(),
            }],
            fields: BTreeMap::from([("name".into(), "0011223344556677".into())]),
        }
    }

    #[test]
    fn a_record_round_trips_through_its_message() {
        let message = record().to_message().expect("valid");
        assert!(message.starts_with("hedgerow-import/1 {"));
        assert_eq!(ImportRecord::from_message(&message), Some(record()));
        assert_eq!(
            record().describe(),
            "imported from farmhack https://farmhack.org/tools/roller-crimper on behalf of Dorn Cox"
        );
    }

    #[test]
    fn other_messages_are_not_records() {
        assert_eq!(ImportRecord::from_message(""), None);
        assert_eq!(ImportRecord::from_message("fixed a typo"), None);
        assert_eq!(ImportRecord::from_message("hedgerow-import/2 {}"), None);
        assert_eq!(
            ImportRecord::from_message("hedgerow-import/1 {not json"),
            None
        );
        let mut bad = record();
        bad.source = "Farm Hack".into();
        assert!(matches!(bad.to_message(), Err(RecordError::BadSource(_))));
        let mut many = record();
        many.authors = vec!["a".into(); MAX_AUTHORS + 1];
        assert!(matches!(
            many.to_message(),
            Err(RecordError::TooMany { .. })
        ));
    }

    #[test]
    fn digests_follow_values() {
        let a = field_digest(&serde_json::json!("Roller crimper"));
        assert_eq!(a.len(), 16);
        assert_eq!(a, field_digest(&serde_json::json!("Roller crimper")));
        assert_ne!(a, field_digest(&serde_json::json!("Roller crimper 2")));
    }
}
