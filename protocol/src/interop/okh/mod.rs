//! Open Know-How manifests: OKH v1 (`okh.yml`, YAML) and OKH-LOSH (`okh.toml`, TOML).
//!
//! [`read_manifest`] turns a manifest's text into a [`Draft`] of a design and a [`Report`]
//! of every key: mapped to a design field, kept as an extra (`external_ids.okh-KEY`), or
//! dropped and why. [`plan_edits`] compares a draft with a design and returns the edits that
//! make the design say what the manifest says (none when it already does), and [`export`]
//! writes a design back as a manifest. Reading files, hashing attachments and applying
//! edits is the node's job.
//!
//! Leniency: a key written twice keeps its first value (the others are reported), numbers
//! where text belongs are read as written, prose licence names are mapped to SPDX (else kept
//! as `LicenseRef-...`), free-text languages to BCP 47, misspelt readiness levels and draft
//! keys of older LOSH versions to their current form, each with a note. Strictness: no name,
//! an unknown format version, or text that is not a manifest refuses the whole manifest.

mod export;
mod import;
pub mod lenient;
mod losh;
mod plan;
pub mod tree;
mod v1;

pub use export::{export, ExportError, ExportFormat};
pub use import::{read_manifest, Draft, FileRef, Format, ManifestError};
pub use plan::{plan_edits, ResolvedFile};

use serde::Serialize;

/// The prefix of the `external_ids` keys that keep a manifest's extras and links.
pub const EXTRA_PREFIX: &str = "okh-";

/// The `external_ids` key that names the manifest's project (its `repo` or `project-link`).
pub const ID_KEY: &str = "okh";

/// What became of each key of one manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// `okh-v1` or `okh-losh`.
    pub format: String,
    /// The version the manifest declares (`okhv`, `okh-manifest-version`), if any.
    pub declared_version: Option<String>,
    /// Keys mapped to a design field.
    pub mapped: Vec<Mapped>,
    /// Keys kept as text in `external_ids` (exported back as written).
    pub extra: Vec<Mapped>,
    /// Keys not kept, and why.
    pub dropped: Vec<Dropped>,
    /// What the reader had to guess or ignore (duplicates, prose licences, typos).
    pub notes: Vec<Note>,
}

/// A key and the field it went to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mapped {
    /// The manifest's key (`license`, `part.2.name`).
    pub key: String,
    /// The design field (`licence.hardware`, `files`).
    pub field: String,
    /// The value written.
    pub value: String,
}

/// A key left out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dropped {
    /// The manifest's key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// Something the reader did that a person should know.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Note {
    /// The manifest line it is about (0: the whole manifest).
    pub line: usize,
    /// What happened.
    pub message: String,
}
