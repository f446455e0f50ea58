//! `hedgerow export automerge ID --out FILE [--with-proofs FILE]`: a document in automerge's
//! own saved format (`save()`), which any automerge implementation loads, and its proofs (who
//! signed which change) beside it as versioned JSON ([`PROOFS_FORMAT`], README Formats).

use super::InteropError;
use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::encoding::{encode, DOMAIN_CHANGE};
use hedgerow_protocol::DocId;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format` of a proofs file.
pub const PROOFS_FORMAT: &str = "hedgerow-automerge-proofs";
/// Its version.
pub const PROOFS_VERSION: u32 = 1;

/// `export automerge ID --out FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutomergeRequest {
    /// Id, prefix or name.
    pub id: String,
    /// Absolute path of the automerge file to write.
    pub out: String,
    /// Absolute path of the proofs file to write, if wanted.
    #[serde(default)]
    pub proofs: Option<String>,
    /// Replace files that exist.
    #[serde(default)]
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct AutomergeExported {
    /// The document.
    pub id: DocId,
    /// The automerge file.
    pub path: String,
    /// Its size.
    pub bytes: usize,
    /// The document's heads (hex), as automerge reports them on load.
    pub heads: Vec<String>,
    /// Its changes.
    pub changes: usize,
    /// The proofs file, if written.
    pub proofs: Option<String>,
    /// Signatures in it.
    pub signatures: usize,
}

/// The proofs file: the signed facts automerge's own format has no place for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proofs {
    /// [`PROOFS_FORMAT`].
    pub format: String,
    /// [`PROOFS_VERSION`].
    pub version: u32,
    /// The commons (base58).
    pub commons: String,
    /// The document (base58).
    pub doc: String,
    /// design, event, note or profile.
    pub kind: String,
    /// The document's signed genesis record, hex of its versioned encoding (its BLAKE3 hash
    /// is what the document id commits to).
    pub genesis: String,
    /// The domain each change signature is derived under.
    pub signature_domain: String,
    /// The heads the automerge file holds (hex).
    pub heads: Vec<String>,
    /// Every change, in the document's order.
    pub changes: Vec<ProofRow>,
}

/// Who signed one change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofRow {
    /// automerge change hash (hex).
    pub hash: String,
    /// Signing author key (base58).
    pub author: String,
    /// The document it was signed for (a fork's inherited changes: an ancestor), base58.
    pub made_in: String,
    /// ed25519 signature (hex), or null when a later signature of the same author covers it
    /// through automerge's hash links.
    pub signature: Option<String>,
}

/// Writes the document and, when asked, its proofs.
pub fn export(
    replicas: &mut Replicas,
    request: AutomergeRequest,
) -> Result<AutomergeExported, NodeError> {
    let id = replicas.resolve_doc(&request.id, None)?;
    replicas.refuse_withheld(&id)?;
    for path in std::iter::once(&request.out).chain(request.proofs.iter()) {
        if !request.force && Path::new(path).exists() {
            return Err(InteropError::Exists(path.clone()).into());
        }
    }
    let replica = replicas.replica(&id)?;
    let doc = replica.doc();
    let bytes = doc.save();
    let heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    let metas = doc.get_changes_meta(&[]);
    let mut rows = Vec::with_capacity(metas.len());
    for meta in &metas {
        let record = replica.record(&meta.hash);
        rows.push(ProofRow {
            hash: meta.hash.to_string(),
            author: record.map(|r| r.author.to_string()).unwrap_or_default(),
            made_in: record
                .and_then(|r| r.proof.as_ref())
                .map_or(id, |p| p.doc)
                .to_string(),
            signature: record
                .and_then(|r| r.proof.as_ref())
                .map(|p| hex::encode(p.signature.as_bytes())),
        });
    }
    let proofs = Proofs {
        format: PROOFS_FORMAT.into(),
        version: PROOFS_VERSION,
        commons: replica.commons().to_string(),
        doc: id.to_string(),
        kind: replica.kind().to_string(),
        genesis: hex::encode(encode(replica.genesis())),
        signature_domain: DOMAIN_CHANGE.into(),
        heads: heads.clone(),
        changes: rows,
    };
    let write = |path: &str, data: &[u8]| {
        crate::home::write_file_atomic(Path::new(path), data, 0o644).map_err(|error| {
            NodeError::from(InteropError::Write {
                path: path.to_string(),
                error,
            })
        })
    };
    write(&request.out, &bytes)?;
    let signatures = proofs
        .changes
        .iter()
        .filter(|c| c.signature.is_some())
        .count();
    if let Some(path) = &request.proofs {
        let json = serde_json::to_vec_pretty(&proofs).unwrap_or_default();
        write(path, &json)?;
    }
    let signatures = if request.proofs.is_some() {
        signatures
    } else {
        0
    };
    Ok(AutomergeExported {
        id,
        path: request.out,
        bytes: bytes.len(),
        heads,
        changes: metas.len(),
        proofs: request.proofs,
        signatures,
    })
}
