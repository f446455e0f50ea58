//! Interoperability on the node: Farm Hack imports, farmOS "built" links and equipment
//! imports, and plain automerge exports. The mappings themselves are pure
//! ([`hedgerow_protocol::interop`]); this module reads the files, finds what the commons
//! already holds, and writes signed changes carrying the import's provenance record.

pub mod automerge_export;
pub mod farmhack;
pub mod farmos;
pub mod okh;

use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::interop::provenance::ImportRecord;
use hedgerow_protocol::{AuthorKey, DocId};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// Why an interop command failed as a whole (per-item failures are in its report).
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// The input file cannot be opened or read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The input file is larger than the format's limit.
    #[error("{path} is larger than {max} bytes, the most an import reads")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit.
        max: usize,
    },
    /// A Farm Hack file that cannot be read at all.
    #[error("{path}: {error}")]
    Farmhack {
        /// The file.
        path: String,
        /// Why.
        error: hedgerow_protocol::interop::farmhack::FileError,
    },
    /// A farmOS export that cannot be read at all.
    #[error("{path}: {error}")]
    Farmos {
        /// The file.
        path: String,
        /// Why.
        error: hedgerow_protocol::interop::farmos::CsvError,
    },
    /// A `--link ROW=DESIGN` naming no row of the file.
    #[error("--link {given}: no row {row} in the file (rows are numbered from 1 after the header, or named by their uuid)")]
    NoSuchRow {
        /// The flag's value.
        given: String,
        /// The row asked for.
        row: String,
    },
    /// A farmOS asset id that is not a UUID.
    #[error("`{0}` is not a farmOS asset UUID (8-4-4-4-12 hex digits, as in /asset/UUID)")]
    BadUuid(String),
    /// The output file exists.
    #[error("{0} exists; choose another path or pass --force to replace it")]
    Exists(String),
    /// Writing the output failed.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The provenance record cannot be written.
    #[error(transparent)]
    Record(#[from] hedgerow_protocol::interop::provenance::RecordError),
}

/// One interop command for the node (sent over the control socket like any request).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "interop", rename_all = "snake_case")]
pub enum InteropRequest {
    /// `import farmhack FILE`.
    Farmhack(farmhack::FarmhackRequest),
    /// `design built ID`.
    Built(farmos::BuiltRequest),
    /// `import farmos-equipment FILE`.
    FarmosEquipment(farmos::FarmosRequest),
    /// `export automerge ID`.
    Automerge(automerge_export::AutomergeRequest),
}

/// The answer to an [`InteropRequest`]; serialises as the wrapped report alone.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InteropReply {
    /// `import farmhack`.
    Farmhack(farmhack::FarmhackReport),
    /// `design built`.
    Built(farmos::BuiltReply),
    /// `import farmos-equipment`.
    FarmosEquipment(farmos::FarmosReport),
    /// `export automerge`.
    Automerge(automerge_export::AutomergeExported),
}

/// Runs an interop request against the replicas.
pub fn execute(
    replicas: &mut Replicas,
    request: InteropRequest,
) -> Result<InteropReply, NodeError> {
    Ok(match request {
        InteropRequest::Farmhack(r) => InteropReply::Farmhack(farmhack::import(replicas, r)?),
        InteropRequest::Built(r) => InteropReply::Built(farmos::built(replicas, r)?),
        InteropRequest::FarmosEquipment(r) => {
            InteropReply::FarmosEquipment(farmos::import(replicas, r)?)
        }
        InteropRequest::Automerge(r) => {
            InteropReply::Automerge(automerge_export::export(replicas, r)?)
        }
    })
}

/// Reads a whole input file of at most `max` bytes (never more into memory).
pub(crate) fn read_limited(path: &str, max: usize) -> Result<Vec<u8>, InteropError> {
    let read = |error| InteropError::Read {
        path: path.to_string(),
        error,
    };
    let file = std::fs::File::open(Path::new(path)).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() > max {
        return Err(InteropError::TooLarge {
            path: path.to_string(),
            max,
        });
    }
    Ok(bytes)
}

/// The import records a document's changes carry, oldest first: each with its change and
/// signer, only where the record names its signer as the importer.
pub fn import_records(
    replicas: &mut Replicas,
    id: &DocId,
) -> Result<Vec<(String, AuthorKey, ImportRecord)>, NodeError> {
    let replica = replicas.replica(id)?;
    let mut out = Vec::new();
    for meta in replica.doc().get_changes_meta(&[]) {
        let Some(record) = meta.message.as_deref().and_then(ImportRecord::from_message) else {
            continue;
        };
        let Some(author) = replica.record(&meta.hash).map(|r| r.author) else {
            continue;
        };
        if record.importer == author.to_string() {
            out.push((meta.hash.to_string(), author, record));
        }
    }
    Ok(out)
}

/// The import record of one change as `history` shows it, if the change carries one naming
/// its signer.
pub fn record_of(message: Option<&str>, author: &AuthorKey) -> Option<ImportShown> {
    message
        .and_then(ImportRecord::from_message)
        .filter(|r| r.importer == author.to_string())
        .map(ImportShown::from)
}

/// An import record in `history`: who the content is by, where it came from, when.
#[derive(Debug, Clone, Serialize)]
pub struct ImportShown {
    /// The kind of source (`farmhack`, `okh`, ...).
    pub source: String,
    /// What was imported there.
    pub id: String,
    /// Where to read the original, when apart from `id`.
    pub url: Option<String>,
    /// The original authors, on whose behalf the importer signed.
    pub authors: Vec<String>,
    /// The importer (the change's signer).
    pub importer: String,
    /// When the import ran (RFC 3339 in JSON).
    #[serde(with = "crate::times::unix")]
    pub at: i64,
    /// When the source was read, as it says.
    pub retrieved: Option<String>,
    /// When the original was written, as the source says.
    pub written: Option<String>,
    /// References kept as links.
    pub links: Vec<hedgerow_protocol::interop::provenance::Link>,
    /// The record in one line: "imported from farmhack URL on behalf of A, B".
    pub summary: String,
}

impl From<ImportRecord> for ImportShown {
    fn from(record: ImportRecord) -> Self {
        ImportShown {
            summary: record.describe(),
            source: record.source,
            id: record.id,
            url: record.url,
            authors: record.authors,
            importer: record.importer,
            at: record.at,
            retrieved: record.retrieved,
            written: record.written,
            links: record.links,
        }
    }
}
