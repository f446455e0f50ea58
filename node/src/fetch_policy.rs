//! Which attachment blobs a node fetches on its own, per commons: a hub every file any
//! document (or release) of the commons refers to (store and forward for the farms around
//! it); a farm only the files of the designs it pinned, the rest on demand (`hedgerow fetch`,
//! `design file`). Files over the per-file limit are never fetched.
//!
//! The role is `fetch` in `config.json`: `{"fetch": {"role": "farm", "commons": {"ID": "hub"}}}`
//! (`role` for every commons, `commons` per commons; farm when absent). Pins are this node's
//! own list, `HOME/pins.json` (`{"version": 1, "designs": ["ID", ...]}`), never signed or sent.
//!
//! Every fetch, automatic or asked for, keeps each commons within its quota
//! (`files.commons_quota_bytes`): the distinct files of the commons held here, plus those being
//! fetched, plus the new one. A fetch past it is refused before a byte is asked for
//! ([`quota_refusals`]), as a bundle import refuses such a file.

use crate::api::Request;
use crate::replicas::{NodeError, Replicas};
use crate::reply::Reply;
use hedgerow_protocol::attachment::BlobHash;
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::{CommonsId, DocId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a node fetches of a commons' attachments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FetchRole {
    /// Only pinned designs' files, the rest on demand.
    #[default]
    Farm,
    /// Every file of the commons, kept for the others.
    Hub,
}

/// `fetch` in `config.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchConfig {
    /// The role for every commons not named below.
    #[serde(default)]
    pub role: FetchRole,
    /// The role per commons id.
    #[serde(default)]
    pub commons: BTreeMap<String, FetchRole>,
}

impl FetchConfig {
    /// The role this node has in `commons`.
    pub fn role_of(&self, commons: &CommonsId) -> FetchRole {
        self.commons
            .get(&commons.to_string())
            .copied()
            .unwrap_or(self.role)
    }
}

/// The pins file.
const PINS_FILE: &str = "pins.json";

/// The version of the pins file this build writes and reads.
const PINS_VERSION: u8 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinsFile {
    version: u8,
    designs: Vec<DocId>,
}

fn pins_path(root: &Path) -> PathBuf {
    root.join(PINS_FILE)
}

/// The designs pinned in the home at `root`.
pub fn pinned(root: &Path) -> Result<Vec<DocId>, NodeError> {
    let path = pins_path(root);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(NodeError::Invalid(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let file: PinsFile = serde_json::from_str(&text).map_err(|e| {
        NodeError::Invalid(format!(
            "{} is damaged ({e}); remove it and pin your designs again",
            path.display()
        ))
    })?;
    if file.version != PINS_VERSION {
        return Err(NodeError::Invalid(format!(
            "{} has version {}, this build reads version {PINS_VERSION}; upgrade hedgerow",
            path.display(),
            file.version
        )));
    }
    Ok(file.designs)
}

fn write_pins(root: &Path, designs: Vec<DocId>) -> Result<(), NodeError> {
    let file = PinsFile {
        version: PINS_VERSION,
        designs,
    };
    let mut bytes = serde_json::to_vec_pretty(&file)
        .map_err(|e| NodeError::Invalid(format!("cannot write the pins: {e}")))?;
    bytes.push(b'\n');
    let path = pins_path(root);
    crate::home::write_file_atomic(&path, &bytes, 0o644)
        .map_err(|e| NodeError::Invalid(format!("cannot write {}: {e}", path.display())))
}

/// A pinned design in `pin`, `unpin` and `pins`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// The design.
    pub id: DocId,
    /// Whether it is pinned now.
    pub pinned: bool,
    /// Its files.
    pub files: usize,
    /// Those not held yet.
    pub missing: usize,
    /// Their bytes.
    pub missing_bytes: u64,
}

/// Runs `pin`, `unpin` and `pins`.
pub fn execute(replicas: &mut Replicas, request: Request) -> Result<Reply, NodeError> {
    let root = replicas.home_root.clone();
    match request {
        Request::Pin { id } | Request::Unpin { id } if id.trim().is_empty() => Err(
            NodeError::Invalid("give the design's id (or a prefix of it)".into()),
        ),
        Request::Pin { id } => {
            let id = replicas.resolve_doc(&id, Some(DocKind::Design))?;
            let mut designs = pinned(&root)?;
            if !designs.contains(&id) {
                designs.push(id);
                write_pins(&root, designs)?;
            }
            Ok(Reply::Pins(vec![pin_row(replicas, id, true)?]))
        }
        Request::Unpin { id } => {
            let mut designs = pinned(&root)?;
            let id = match replicas.resolve_doc(&id, Some(DocKind::Design)) {
                Ok(id) => id,
                // A pinned design no longer held can still be unpinned by its full id.
                Err(e) => id.trim().parse::<DocId>().map_err(|_| e)?,
            };
            designs.retain(|d| *d != id);
            write_pins(&root, designs)?;
            Ok(Reply::Pins(vec![pin_row(replicas, id, false)?]))
        }
        Request::Pins => {
            let rows = pinned(&root)?
                .into_iter()
                .map(|id| pin_row(replicas, id, true))
                .collect::<Result<_, _>>()?;
            Ok(Reply::Pins(rows))
        }
        _ => Err(NodeError::Invalid("not a pin request".into())),
    }
}

fn pin_row(replicas: &mut Replicas, id: DocId, pinned: bool) -> Result<Pin, NodeError> {
    let rows = replicas.doc_files(&id, None).unwrap_or_default();
    let missing: Vec<_> = rows.iter().filter(|r| !r.held).collect();
    Ok(Pin {
        id,
        pinned,
        files: rows.len(),
        missing: missing.len(),
        missing_bytes: missing.iter().map(|r| r.entry.size).sum(),
    })
}

/// Blobs wanted by this node's policy and not held, with their sizes: every file of the
/// commons it is a hub for, and the files of its pinned designs; none over the per-file limit.
pub fn wanted_blobs(replicas: &mut Replicas) -> Vec<([u8; 32], u64)> {
    let root = replicas.home_root.clone();
    let config = crate::home::read_config(&root).unwrap_or_default();
    let max = config.files.max_file_bytes;
    let store = replicas.blob_store();
    let mut wanted: BTreeMap<BlobHash, u64> = BTreeMap::new();

    let hubs: Vec<CommonsId> = replicas
        .store()
        .all_commons()
        .unwrap_or_default()
        .iter()
        .map(|g| g.body.id())
        .filter(|c| config.fetch.role_of(c) == FetchRole::Hub)
        .collect();
    if !hubs.is_empty() {
        if let Ok(referenced) = replicas.referenced_blobs(Some(&hubs)) {
            for (hash, referrers) in referenced {
                wanted.insert(hash, referrers.size);
            }
        }
    }
    let pins: BTreeSet<DocId> = pinned(&root).unwrap_or_default().into_iter().collect();
    for id in pins {
        for row in replicas.doc_files(&id, None).unwrap_or_default() {
            wanted.insert(row.entry.hash, row.entry.size);
        }
    }
    wanted
        .into_iter()
        .filter(|(hash, size)| *size <= max && !store.has(hash))
        .map(|(hash, size)| (hash.0, size))
        .collect()
}

/// Of `wants` (blob, size), taken in order, those whose fetch would take a commons referring to
/// them past its quota, with why: each commons counts the distinct blobs of it held here,
/// those in `pending` (being fetched) and the wants admitted before. A blob no document here
/// refers to belongs to no commons and is never refused. Nothing can be refused when the
/// documents cannot be read (the fetch is then checked by nobody: a read error is logged).
pub fn quota_refusals(
    replicas: &mut Replicas,
    wants: &[([u8; 32], u64)],
    pending: &[([u8; 32], u64)],
) -> std::collections::HashMap<[u8; 32], String> {
    let mut refused = std::collections::HashMap::new();
    let quota = match crate::blobs::files::limits_at(&replicas.home_root) {
        Ok(limits) => limits.commons_quota_bytes,
        Err(e) => {
            tracing::warn!("cannot read the file limits: {e}");
            return refused;
        }
    };
    let referenced = match replicas.referenced_blobs(None) {
        Ok(referenced) => referenced,
        Err(e) => {
            tracing::warn!("cannot check the commons' file quotas: {e}");
            return refused;
        }
    };
    let store = replicas.blob_store();
    let mut used: BTreeMap<CommonsId, u64> = BTreeMap::new();
    let mut counted: BTreeSet<BlobHash> = BTreeSet::new();
    let held = referenced.iter().filter(|(hash, _)| store.has(hash));
    let fetching = pending
        .iter()
        .filter_map(|(hash, _)| referenced.get_key_value(&BlobHash(*hash)));
    for (hash, referrers) in held.chain(fetching) {
        if counted.insert(*hash) {
            for commons in &referrers.commons {
                *used.entry(*commons).or_default() += referrers.size;
            }
        }
    }
    for (hash, size) in wants {
        let hash = BlobHash(*hash);
        let Some(referrers) = referenced.get(&hash) else {
            continue;
        };
        if counted.contains(&hash) {
            continue;
        }
        let over = referrers
            .commons
            .iter()
            .map(|c| (*c, used.get(c).copied().unwrap_or(0) + size))
            .find(|(_, total)| *total > quota);
        match over {
            Some((commons, total)) => {
                refused.insert(
                    hash.0,
                    FetchOverQuota {
                        name: referrers.describe(),
                        hash,
                        size: *size,
                        commons,
                        total,
                        quota,
                    }
                    .to_string(),
                );
            }
            None => {
                counted.insert(hash);
                for commons in &referrers.commons {
                    *used.entry(*commons).or_default() += size;
                }
            }
        }
    }
    refused
}

/// A fetch refused for a commons' quota.
#[derive(Debug, thiserror::Error)]
#[error("not fetching {name} ({hash}, {size} bytes): commons {commons} would then hold {total} bytes of files here, over its quota of {quota} (config.json `files.commons_quota_bytes`); nothing was written")]
pub struct FetchOverQuota {
    /// The documents using the blob and their names for it.
    pub name: String,
    /// The blob.
    pub hash: BlobHash,
    /// Its size.
    pub size: u64,
    /// The commons that would go past its quota.
    pub commons: CommonsId,
    /// What it would then hold.
    pub total: u64,
    /// The quota.
    pub quota: u64,
}
