//! farmOS on the node: `design built ID --farmos-asset UUID` and `import farmos-equipment`.
//!
//! The synced "built" record names the asset by UUID (and model); the farm's URL and the
//! serial number identify the farm, so unless the builder passes `--public` they stay in this
//! home's own file, `HOME/farmos.json` (`{"version": 1, "links": [{design, change, asset,
//! farm_url, serial, model, at}]}`, mode 0600), which is never signed, synced or bundled.

use super::InteropError;
use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::interop::farmos::{self, BuiltAsset, Equipment};
use hedgerow_protocol::schema::{self, DocKind, Edit};
use hedgerow_protocol::{CommonsId, DocId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The home file of farm-identifying link details.
pub const LOCAL_FILE: &str = "farmos.json";
/// Its format version.
pub const LOCAL_VERSION: u32 = 1;

/// `design built ID [--farmos-asset UUID --farm-url URL --serial S --model M --public]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuiltRequest {
    /// Design id, prefix or name.
    pub id: String,
    /// Where it was built.
    #[serde(default)]
    pub place: Option<String>,
    /// A line about the build.
    #[serde(default)]
    pub note: Option<String>,
    /// The farmOS equipment asset it became.
    #[serde(default)]
    pub asset: Option<BuiltAsset>,
    /// Put the farm URL and serial number in the synced record.
    #[serde(default)]
    pub public: bool,
}

/// What `design built` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltReply {
    /// The design.
    pub id: DocId,
    /// The signed change (null when an identical record existed).
    pub change: Option<String>,
    /// The farmOS asset named.
    pub asset: Option<String>,
    /// Whether the farm URL and serial number went into the synced record.
    pub public: bool,
    /// Details kept only in this home (`farm_url`, `serial`).
    pub kept_local: Vec<String>,
}

/// One link kept in the home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalLink {
    /// The design.
    pub design: DocId,
    /// The change that wrote the synced record.
    pub change: Option<String>,
    /// The asset's UUID.
    pub asset: String,
    /// The farm's farmOS URL.
    pub farm_url: Option<String>,
    /// The serial number.
    pub serial: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// When, unix seconds.
    pub at: i64,
}

/// The home file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LocalLinks {
    /// [`LOCAL_VERSION`].
    pub version: u32,
    /// Every link made on this node.
    pub links: Vec<LocalLink>,
}

fn local_path(root: &Path) -> PathBuf {
    root.join(LOCAL_FILE)
}

/// The links this home keeps (empty when it has none).
pub fn local_links(root: &Path) -> Result<LocalLinks, NodeError> {
    let path = local_path(root);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            NodeError::from(InteropError::Read {
                path: path.display().to_string(),
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LocalLinks {
            version: LOCAL_VERSION,
            links: Vec::new(),
        }),
        Err(error) => Err(InteropError::Read {
            path: path.display().to_string(),
            error,
        }
        .into()),
    }
}

fn save_local(root: &Path, links: &LocalLinks) -> Result<(), NodeError> {
    let path = local_path(root);
    let bytes = serde_json::to_vec_pretty(links).unwrap_or_default();
    crate::home::write_file_atomic(&path, &bytes, 0o600).map_err(|error| {
        InteropError::Write {
            path: path.display().to_string(),
            error,
        }
        .into()
    })
}

/// Records that this person built a design, optionally as a farmOS asset.
pub fn built(replicas: &mut Replicas, request: BuiltRequest) -> Result<BuiltReply, NodeError> {
    let id = replicas.resolve_doc(&request.id, Some(DocKind::Design))?;
    let Some(asset) = request.asset else {
        let edits = [Edit::AddBuilt {
            place: request.place,
            note: request.note,
        }];
        let change = replicas.edit_doc(&id, &edits)?;
        return Ok(BuiltReply {
            id,
            change: change.map(|h| h.to_string()),
            asset: None,
            public: request.public,
            kept_local: Vec::new(),
        });
    };
    let uuid = asset.uuid.trim().to_lowercase();
    if !farmos::is_uuid(&uuid) {
        return Err(InteropError::BadUuid(asset.uuid).into());
    }
    let asset = BuiltAsset { uuid, ..asset };
    let edits = [Edit::AddBuiltAsset {
        place: request.place,
        note: request.note,
        asset: asset.public_part(request.public),
    }];
    let change = replicas.edit_doc(&id, &edits)?.map(|h| h.to_string());
    let mut kept_local = Vec::new();
    if !request.public {
        if asset.farm_url.is_some() {
            kept_local.push("farm_url".to_string());
        }
        if asset.serial.is_some() {
            kept_local.push("serial".to_string());
        }
    }
    let root = replicas.home_root.clone();
    let mut links = local_links(&root)?;
    links.links.push(LocalLink {
        design: id,
        change: change.clone(),
        asset: asset.uuid.clone(),
        farm_url: asset.farm_url.clone(),
        serial: asset.serial.clone(),
        model: asset.model.clone(),
        at: crate::replicas::now_unix(),
    });
    links.version = LOCAL_VERSION;
    save_local(&root, &links)?;
    Ok(BuiltReply {
        id,
        change,
        asset: Some(asset.uuid),
        public: request.public,
        kept_local,
    })
}

/// `import farmos-equipment FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FarmosRequest {
    /// Absolute path of the CSV export.
    pub path: String,
    /// Commons id or prefix; the only one when absent.
    #[serde(default)]
    pub commons: Option<String>,
    /// `ROW=DESIGN` links to make (ROW: 1-based row number or the asset's uuid).
    #[serde(default)]
    pub links: Vec<String>,
    /// Accept every suggestion.
    #[serde(default)]
    pub yes: bool,
    /// The farm's farmOS URL, kept with each link.
    #[serde(default)]
    pub farm_url: Option<String>,
    /// Put the farm URL and serial numbers in the synced records.
    #[serde(default)]
    pub public: bool,
}

/// What an equipment import found and did.
#[derive(Debug, Clone, Serialize)]
pub struct FarmosReport {
    /// The file.
    pub path: String,
    /// The commons whose designs were matched.
    pub commons: CommonsId,
    /// Rows linked now.
    pub linked: usize,
    /// One row per CSV row.
    pub rows: Vec<EquipmentRow>,
}

/// One CSV row and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct EquipmentRow {
    /// 1-based row number.
    pub row: usize,
    /// The asset, when the row is equipment.
    pub asset: Option<Equipment>,
    /// The design its name suggests: id, name, similarity.
    pub suggestion: Option<Suggestion>,
    /// The design it is linked to now (this run or before).
    pub linked: Option<DocId>,
    /// Whether this person had linked the asset to that design before (nothing written).
    pub already_linked: bool,
    /// The change written.
    pub change: Option<String>,
    /// Why the row was skipped.
    pub error: Option<String>,
}

/// A design offered for a row.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// The design.
    pub design: DocId,
    /// Its name.
    pub name: String,
    /// How alike the names are, 0 to 1.
    pub score: f64,
}

/// Reads a farmOS equipment export, offers designs by name and links the rows accepted.
pub fn import(replicas: &mut Replicas, request: FarmosRequest) -> Result<FarmosReport, NodeError> {
    let bytes = super::read_limited(&request.path, farmos::MAX_FILE_BYTES)?;
    let rows = farmos::parse(&bytes).map_err(|error| InteropError::Farmos {
        path: request.path.clone(),
        error,
    })?;
    let commons = replicas.resolve_commons(request.commons.as_deref())?;
    let mut designs: Vec<(DocId, String)> = Vec::new();
    for (id, _) in replicas.list(&commons, DocKind::Design)? {
        designs.push((
            id,
            schema::facts::title(replicas.replica(&id)?.doc(), DocKind::Design),
        ));
    }
    let names: Vec<String> = designs.iter().map(|(_, n)| n.clone()).collect();
    let mut explicit: Vec<(Option<usize>, Option<String>, DocId, String)> = Vec::new();
    for given in &request.links {
        let (row, design) = given
            .split_once('=')
            .ok_or_else(|| InteropError::NoSuchRow {
                given: given.clone(),
                row: given.clone(),
            })?;
        let design_id = replicas.resolve_doc(design.trim(), Some(DocKind::Design))?;
        let row = row.trim();
        let known = rows.iter().any(|(n, r)| {
            row.parse::<usize>().ok() == Some(*n)
                || r.as_ref().is_ok_and(|e| e.uuid.eq_ignore_ascii_case(row))
        });
        if !known {
            return Err(InteropError::NoSuchRow {
                given: given.clone(),
                row: row.to_string(),
            }
            .into());
        }
        explicit.push((
            row.parse().ok(),
            Some(row.to_lowercase()),
            design_id,
            given.clone(),
        ));
    }
    let me = replicas.author().to_string();
    let mut report = FarmosReport {
        path: request.path.clone(),
        commons,
        linked: 0,
        rows: Vec::new(),
    };
    for (row, result) in rows {
        let mut out = EquipmentRow {
            row,
            asset: None,
            suggestion: None,
            linked: None,
            already_linked: false,
            change: None,
            error: None,
        };
        let asset = match result {
            Ok(asset) => asset,
            Err(error) => {
                out.error = Some(error.to_string());
                report.rows.push(out);
                continue;
            }
        };
        out.suggestion = farmos::suggest(&asset, &names).and_then(|(i, score)| {
            designs.get(i).map(|(id, name)| Suggestion {
                design: *id,
                name: name.clone(),
                score: (score * 100.0).round() / 100.0,
            })
        });
        let chosen = explicit
            .iter()
            .find(|(n, u, ..)| *n == Some(row) || u.as_deref() == Some(asset.uuid.as_str()))
            .map(|(_, _, d, _)| *d)
            .or_else(|| {
                out.suggestion
                    .as_ref()
                    .filter(|_| request.yes)
                    .map(|s| s.design)
            });
        if let Some(design) = chosen {
            out.linked = Some(design);
            if linked_before(replicas, &design, &asset.uuid, &me)? {
                out.already_linked = true;
            } else {
                let reply = built(
                    replicas,
                    BuiltRequest {
                        id: design.to_string(),
                        place: None,
                        note: None,
                        asset: Some(BuiltAsset {
                            uuid: asset.uuid.clone(),
                            farm_url: request.farm_url.clone(),
                            serial: asset.serial_number.clone(),
                            model: asset.model.clone(),
                        }),
                        public: request.public,
                    },
                )?;
                out.change = reply.change;
                report.linked += 1;
            }
        }
        out.asset = Some(asset);
        report.rows.push(out);
    }
    Ok(report)
}

/// Whether `author` already recorded building `design` as this asset.
fn linked_before(
    replicas: &mut Replicas,
    design: &DocId,
    uuid: &str,
    author: &str,
) -> Result<bool, NodeError> {
    let rendered = schema::render(replicas.replica(design)?.doc(), DocKind::Design, None);
    Ok(rendered["built"].as_array().is_some_and(|built| {
        built
            .iter()
            .any(|b| b["farmos_asset"].as_str() == Some(uuid) && b["by"].as_str() == Some(author))
    }))
}
