//! `hedgerow import okh` and `hedgerow export okh`: OKH manifests read from a folder into
//! designs (each one signed change, attachments stored first), designs written back.
//!
//! Nothing outside the imported folder is read: a file path is refused when absolute or
//! holding `..`, and accepted only when its canonical path (symlinks resolved) lies under
//! the folder's. A manifest whose files try to leave the folder imports nothing.

use crate::blobs::files::limits_at;
use crate::blobs::store::hash_reader;
use crate::blobs::BlobStore;
use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::attachment::{self, BlobHash, NewFile};
use hedgerow_protocol::interop::okh::{
    self, plan_edits, read_manifest, Draft, ExportFormat, FileRef, Format, Report, ResolvedFile,
    ID_KEY,
};
use hedgerow_protocol::schema::{self, DocKind, NewDocument};
use hedgerow_protocol::DocId;
use serde::Serialize;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Largest manifest read, in bytes (real ones are a few KiB).
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// How much of a bill of materials is looked at to tell CSV text from anything else.
const CSV_SNIFF_BYTES: usize = 64 * 1024;

/// What became of one manifest.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestOutcome {
    /// The manifest file.
    pub manifest: String,
    /// `created`, `updated`, `unchanged`, `failed` (with `--dry-run`: `would-create`, `would-update`).
    pub outcome: &'static str,
    /// The design it became or updated.
    pub design: Option<DocId>,
    /// The signed change, when one was made.
    pub change: Option<String>,
    /// How many field edits the change holds (or would hold).
    pub edits: usize,
    /// Files attached (or that would be).
    pub files: Vec<ImportedFile>,
    /// Why it failed, in one line naming the file and line.
    pub error: Option<String>,
    /// Every key: mapped, kept, dropped; and notes.
    #[serde(flatten)]
    pub report: Report,
}

/// One file a manifest brought.
#[derive(Clone, Debug, Serialize)]
pub struct ImportedFile {
    /// The manifest key that named it.
    pub key: String,
    /// Its path in the folder.
    pub path: String,
    /// Its role.
    pub role: String,
    /// Its size.
    pub size: u64,
    /// Its hash.
    pub hash: BlobHash,
}

/// What `import okh` did.
#[derive(Clone, Debug, Serialize)]
pub struct OkhImported {
    /// One entry per manifest, in the order given.
    pub manifests: Vec<ManifestOutcome>,
    /// How many failed.
    pub failed: usize,
    /// Whether nothing was written (`--dry-run`).
    pub dry_run: bool,
}

/// What `export okh` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct OkhExported {
    /// The design.
    pub design: DocId,
    /// `okh-losh` or `okh-v1`.
    pub format: &'static str,
    /// The manifest's text.
    pub text: String,
}

/// Why a manifest's files refuse it as a whole.
#[derive(Debug, thiserror::Error)]
pub enum OkhFileError {
    /// A path that leaves the manifest's folder.
    #[error("`{key}` names `{path}`, which is outside the folder {folder}; nothing of this manifest was imported")]
    Outside {
        /// The manifest key.
        key: String,
        /// The path as written.
        path: String,
        /// The folder.
        folder: String,
    },
}

/// The manifests a path names: itself if a file, else those at the root of the folder.
pub fn manifests_at(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().to_ascii_lowercase())
                        .unwrap_or_default();
                    p.is_file()
                        && (name == "okh.toml"
                            || ((name == "okh.yml"
                                || name == "okh.yaml"
                                || name.starts_with("okh-"))
                                && (name.ends_with(".yml") || name.ends_with(".yaml"))))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

impl Replicas {
    /// Imports the OKH manifests at `paths` into the commons `commons` (see the module doc).
    pub fn import_okh(
        &mut self,
        paths: &[PathBuf],
        commons: Option<&str>,
        dry_run: bool,
    ) -> Result<OkhImported, NodeError> {
        let commons = self.resolve_commons(commons)?;
        let mut manifests = Vec::new();
        for path in paths {
            let found = manifests_at(path);
            if found.is_empty() {
                manifests.push(failed(
                    path,
                    format!(
                        "{}: no okh.toml, okh.yml or okh-*.yml at the root of this folder",
                        path.display()
                    ),
                ));
            }
            for manifest in found {
                manifests.push(self.import_one(&manifest, commons, dry_run)?);
            }
        }
        let failed = manifests.iter().filter(|m| m.outcome == "failed").count();
        Ok(OkhImported {
            manifests,
            failed,
            dry_run,
        })
    }

    fn import_one(
        &mut self,
        manifest: &Path,
        commons: hedgerow_protocol::CommonsId,
        dry_run: bool,
    ) -> Result<ManifestOutcome, NodeError> {
        let shown = manifest.display().to_string();
        let text = match read_text(manifest) {
            Ok(text) => text,
            Err(message) => return Ok(failed(manifest, format!("{shown}: {message}"))),
        };
        let name = manifest
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let (draft, mut report) = match read_manifest(&name, &text) {
            Ok(read) => read,
            Err(e) => return Ok(failed(manifest, format!("{shown}: {e}"))),
        };
        let folder = manifest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let max = limits_at(&self.home_root)?.max_file_bytes;
        let store = self.blob_store();
        let mut stored_new: Vec<BlobHash> = Vec::new();
        let undo = |store: &BlobStore, stored: &[BlobHash]| {
            for hash in stored {
                let _ = store.remove(hash);
            }
        };
        // A file that turns out unusable is reported as dropped, not as mapped.
        let unmap = |report: &mut Report, file: &FileRef| {
            let shown = format!("{} ({})", file.path, file.role);
            report
                .mapped
                .retain(|m| !(m.key == file.key && m.field == "files" && m.value == shown));
        };
        let mut resolved: Vec<ResolvedFile> = Vec::new();
        let mut files = Vec::new();
        for file in &draft.files {
            let found = match locate(&folder, file) {
                Ok(found) => found,
                Err(e) => {
                    undo(&store, &stored_new);
                    let mut out = failed(manifest, format!("{shown}: {e}"));
                    out.report = report;
                    return Ok(out);
                }
            };
            let Some(path) = found else {
                unmap(&mut report, file);
                report.dropped.push(okh::Dropped {
                    key: file.key.clone(),
                    reason: format!("`{}` is not in the folder", file.path),
                });
                continue;
            };
            match check_file(&path, file, max) {
                Ok(()) => {}
                Err(reason) => {
                    unmap(&mut report, file);
                    report.dropped.push(okh::Dropped {
                        key: file.key.clone(),
                        reason,
                    });
                    continue;
                }
            }
            let (hash, size) = if dry_run {
                let mut reader = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        report.dropped.push(okh::Dropped {
                            key: file.key.clone(),
                            reason: format!("cannot be read: {e}"),
                        });
                        continue;
                    }
                };
                hash_reader(&mut reader, &path)?
            } else {
                let added = store.add_file(&path, max)?;
                if added.new {
                    stored_new.push(added.hash);
                }
                (added.hash, added.size)
            };
            let base = Path::new(&file.path)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| file.path.clone());
            let Ok(base) = attachment::check_name(&base) else {
                report.dropped.push(okh::Dropped {
                    key: file.key.clone(),
                    reason: format!("`{base}` is not a file name a design can hold"),
                });
                continue;
            };
            let caption = file.caption();
            let new = NewFile {
                media_type: attachment::media_type_for(&base).to_string(),
                name: base,
                size,
                hash,
                role: file.role.to_string(),
                caption,
                step: None,
            };
            if resolved.iter().any(|r| r.file.name == new.name) {
                unmap(&mut report, file);
                report.dropped.push(okh::Dropped {
                    key: file.key.clone(),
                    reason: format!(
                        "another file of this manifest is already named `{}`",
                        new.name
                    ),
                });
                continue;
            }
            files.push(ImportedFile {
                key: file.key.clone(),
                path: file.path.clone(),
                role: file.role.to_string(),
                size,
                hash,
            });
            resolved.push(ResolvedFile { file: new });
        }
        // The commons' quota, as `design attach` checks it: distinct files not yet used count.
        let limits = limits_at(&self.home_root)?;
        let used = self.commons_file_bytes(&commons)?;
        let mut total: u64 = used.values().sum();
        let mut counted: std::collections::BTreeSet<BlobHash> = used.into_keys().collect();
        for r in &resolved {
            if counted.insert(r.file.hash) {
                total += r.file.size;
            }
        }
        if total > limits.commons_quota_bytes {
            undo(&store, &stored_new);
            let mut out = failed(
                manifest,
                format!(
                    "{shown}: its files would take the commons to {total} bytes of files, over its quota of {} (config.json `files.commons_quota_bytes`); nothing of this manifest was imported",
                    limits.commons_quota_bytes
                ),
            );
            out.report = report;
            return Ok(out);
        }
        let existing = self.find_imported(&commons, &draft)?;
        let current = match existing {
            Some(id) => Some(schema::render(
                self.replica(&id)?.doc(),
                DocKind::Design,
                None,
            )),
            None => None,
        };
        let edits = plan_edits(&draft, &resolved, current.as_ref());
        let mut out = ManifestOutcome {
            manifest: shown,
            outcome: "unchanged",
            design: existing,
            change: None,
            edits: edits.len(),
            files,
            error: None,
            report,
        };
        if dry_run {
            out.outcome = match (existing, edits.is_empty()) {
                (None, _) => "would-create",
                (Some(_), true) => "unchanged",
                (Some(_), false) => "would-update",
            };
            return Ok(out);
        }
        let written = match existing {
            None => self
                .create_doc(
                    commons,
                    &NewDocument::new(DocKind::Design, draft.name.clone()),
                    &edits,
                )
                .map(|id| (Some(id), Some(String::new()))),
            Some(_) if edits.is_empty() => Ok((existing, None)),
            Some(id) => self
                .edit_doc(&id, &edits)
                .map(|c| (Some(id), c.map(|c| c.to_string()))),
        };
        match written {
            Ok((design, change)) => {
                out.design = design;
                out.outcome = match (existing, &change) {
                    (None, _) => "created",
                    (Some(_), Some(_)) => "updated",
                    (Some(_), None) => "unchanged",
                };
                out.change = change.filter(|c| !c.is_empty());
                Ok(out)
            }
            Err(e) => {
                undo(&store, &stored_new);
                out.outcome = "failed";
                out.error = Some(format!("{}: {e}", out.manifest));
                Ok(out)
            }
        }
    }

    /// The design of `commons` an earlier import of the same project made.
    fn find_imported(
        &mut self,
        commons: &hedgerow_protocol::CommonsId,
        draft: &Draft,
    ) -> Result<Option<DocId>, NodeError> {
        for (id, _) in self.list(commons, DocKind::Design)? {
            let doc = self.replica(&id)?.doc();
            let rendered = schema::render(doc, DocKind::Design, None);
            let key = rendered
                .pointer(&format!("/external_ids/{ID_KEY}"))
                .and_then(serde_json::Value::as_str)
                .map(|s| s.trim_end_matches('/').to_string());
            if key.as_deref() == Some(draft.okh_id.as_str()) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Design `id` as an OKH manifest.
    pub fn export_okh(
        &mut self,
        id: &DocId,
        format: ExportFormat,
    ) -> Result<OkhExported, NodeError> {
        self.refuse_withheld(id)?;
        let rendered = schema::render(self.replica(id)?.doc(), DocKind::Design, None);
        let text = okh::export(&rendered, format).map_err(|e| NodeError::Invalid(e.to_string()))?;
        Ok(OkhExported {
            design: *id,
            format: match format {
                ExportFormat::Losh => Format::OkhLosh.as_str(),
                ExportFormat::V1 => Format::OkhV1.as_str(),
            },
            text,
        })
    }
}

/// A failed manifest's entry.
fn failed(manifest: &Path, error: String) -> ManifestOutcome {
    ManifestOutcome {
        manifest: manifest.display().to_string(),
        outcome: "failed",
        design: None,
        change: None,
        edits: 0,
        files: Vec::new(),
        error: Some(error),
        report: Report::default(),
    }
}

/// A manifest's text, refused when too big or not UTF-8.
fn read_text(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "over {MAX_MANIFEST_BYTES} bytes; not an OKH manifest"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (byte {}); not an OKH manifest",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Where a file of the manifest is: `Ok(None)` when the folder does not hold it; an error
/// when the path leaves the folder (absolute, `..`, or a symlink pointing out).
fn locate(folder: &Path, file: &FileRef) -> Result<Option<PathBuf>, OkhFileError> {
    let outside = || OkhFileError::Outside {
        key: file.key.clone(),
        path: file.path.clone(),
        folder: folder.display().to_string(),
    };
    let given = Path::new(&file.path);
    let escapes = file.path.starts_with('/')
        || file.path.starts_with('\\')
        || file.path.contains(":\\")
        || given
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(outside());
    }
    let Ok(root) = folder.canonicalize() else {
        return Ok(None);
    };
    match root.join(given).canonicalize() {
        Ok(real) if real.starts_with(&root) => Ok(Some(real)),
        Ok(_) => Err(outside()),
        Err(_) => Ok(None),
    }
}

/// Refuses a file that is not a regular file, is over the attachment limit, or (a BOM) is
/// not CSV text; the reason goes to the report.
fn check_file(path: &Path, file: &FileRef, max: u64) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{}` is not a file", file.path));
    }
    if meta.len() > max {
        return Err(format!(
            "`{}` is {} bytes, over the attachment limit of {max} (config.json `files.max_file_bytes`)",
            file.path,
            meta.len()
        ));
    }
    let csv_named = file.path.to_ascii_lowercase().ends_with(".csv");
    if file.csv && csv_named {
        let mut head = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(CSV_SNIFF_BYTES as u64).read_to_end(&mut head))
            .map_err(|e| format!("cannot be read: {e}"))?;
        let text_like = !head.contains(&0) && std::str::from_utf8(&head).is_ok()
            || std::str::from_utf8(&head).is_err() && head.len() == CSV_SNIFF_BYTES;
        let delimited = head.iter().any(|b| matches!(b, b',' | b';' | b'\t'));
        if !text_like || !delimited {
            return Err(format!(
                "`{}` is named .csv but is not CSV text; not attached",
                file.path
            ));
        }
    }
    Ok(())
}

/// Runs [`Request::ImportOkh`] and [`Request::ExportOkh`].
pub fn execute(
    replicas: &mut Replicas,
    request: crate::api::Request,
) -> Result<crate::reply::Reply, NodeError> {
    use crate::api::Request;
    use crate::reply::Reply;
    match request {
        Request::ImportOkh {
            paths,
            commons,
            dry_run,
        } => {
            let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
            for path in &paths {
                crate::bundle::absolute(path)?;
            }
            Ok(Reply::OkhImported(replicas.import_okh(
                &paths,
                commons.as_deref(),
                dry_run,
            )?))
        }
        Request::ExportOkh { id, format } => {
            let id = replicas.resolve_doc(&id, Some(DocKind::Design))?;
            let format = match format.trim().to_ascii_lowercase().as_str() {
                "losh" | "okh-losh" | "toml" => ExportFormat::Losh,
                "v1" | "okh-v1" | "yaml" | "yml" => ExportFormat::V1,
                other => {
                    return Err(NodeError::Invalid(format!(
                        "`{other}` is not an OKH format; use --format losh (okh.toml) or --format v1 (okh.yml)"
                    )))
                }
            };
            Ok(Reply::OkhExported(replicas.export_okh(&id, format)?))
        }
        _ => Err(NodeError::Invalid("not an OKH request".to_string())),
    }
}
