//! `hedgerow import farmhack FILE`: tool pages become designs, comments notes, each change
//! carrying the import's provenance record.
//!
//! A page is recognised on re-import by `external_ids.farmhack` (its URL). Each field's
//! source value has a digest in the record of the change that wrote it; a later import
//! writes only the fields whose source value changed since, in one change, so re-importing
//! the same file writes nothing and an edited page is one change, and local edits to fields
//! the page did not change are kept. List fields (tags, skills, contributors, related) only
//! grow on re-import. Relations become `related` entries once their target is a design here
//! (in the same file or imported before); the others are kept as links in the record.

use super::{import_records, read_limited, InteropError};
use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::interop::farmhack::{self, Comment, Relation, ToolPage};
use hedgerow_protocol::interop::provenance::{field_digest, ImportRecord, Link};
use hedgerow_protocol::schema::{self, DocKind, Edit, NewDocument};
use hedgerow_protocol::{CommonsId, DocId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `import farmhack FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FarmhackRequest {
    /// Absolute path of the JSON file.
    pub path: String,
    /// Commons id or prefix; the only one when absent.
    #[serde(default)]
    pub commons: Option<String>,
    /// Report what would be written, writing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What an import did, page by page.
#[derive(Debug, Clone, Serialize)]
pub struct FarmhackReport {
    /// The file.
    pub path: String,
    /// The commons imported into.
    pub commons: CommonsId,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Pages that became new designs.
    pub created: usize,
    /// Pages whose design changed.
    pub updated: usize,
    /// Pages already imported as they are.
    pub unchanged: usize,
    /// Pages not imported.
    pub failed: usize,
    /// One row per page, in file order.
    pub tools: Vec<ToolReport>,
}

/// What became of one page.
#[derive(Debug, Clone, Serialize)]
pub struct ToolReport {
    /// 1-based position in the file.
    pub position: usize,
    /// Its title, as far as known.
    pub title: String,
    /// Its URL (`external_ids.farmhack`).
    pub source_id: Option<String>,
    /// created, updated, unchanged or failed.
    pub outcome: &'static str,
    /// The design.
    pub design: Option<DocId>,
    /// Fields written (for a new design, every field mapped).
    pub fields: Vec<String>,
    /// Comments that became new notes.
    pub notes_created: usize,
    /// Comments whose note changed.
    pub notes_updated: usize,
    /// Relations that became `related` entries.
    pub related: Vec<RelatedRow>,
    /// Relations and URLs kept as links.
    pub links: Vec<Link>,
    /// What the page had that was not imported, and why.
    pub dropped: Vec<Dropped>,
    /// Why the page was not imported at all.
    pub error: Option<String>,
}

/// A relation written as a `related` entry.
#[derive(Debug, Clone, Serialize)]
pub struct RelatedRow {
    /// component, assembly, branch or merge.
    pub kind: String,
    /// The design related.
    pub design: DocId,
}

/// A page key not imported.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    /// The page key or design field.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// Imports a Farm Hack file.
pub fn import(
    replicas: &mut Replicas,
    request: FarmhackRequest,
) -> Result<FarmhackReport, NodeError> {
    let bytes = read_limited(&request.path, farmhack::MAX_FILE_BYTES)?;
    let parsed = farmhack::parse(&bytes).map_err(|error| InteropError::Farmhack {
        path: request.path.clone(),
        error,
    })?;
    let commons = replicas.resolve_commons(request.commons.as_deref())?;
    let mut held = held_pages(replicas, &commons)?;
    let mut report = FarmhackReport {
        path: request.path.clone(),
        commons,
        dry_run: request.dry_run,
        created: 0,
        updated: 0,
        unchanged: 0,
        failed: 0,
        tools: Vec::new(),
    };
    let importer = replicas.author().to_string();
    let now = crate::replicas::now_unix();
    // Pass 1: each page's own fields and comments.
    let mut written: Vec<(usize, ToolPage, Option<DocId>)> = Vec::new();
    for (position, title, page) in parsed.tools {
        let mut row = ToolReport {
            position,
            title,
            source_id: None,
            outcome: "failed",
            design: None,
            fields: Vec::new(),
            notes_created: 0,
            notes_updated: 0,
            related: Vec::new(),
            links: Vec::new(),
            dropped: Vec::new(),
            error: None,
        };
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                row.error = Some(error.to_string());
                report.failed += 1;
                report.tools.push(row);
                continue;
            }
        };
        row.source_id = Some(page.source_id.clone());
        row.dropped = page
            .dropped
            .iter()
            .map(|(field, reason)| Dropped {
                field: field.clone(),
                reason: reason.clone(),
            })
            .collect();
        row.links = page
            .links
            .iter()
            .map(|(kind, target)| Link {
                kind: kind.clone(),
                target: target.clone(),
            })
            .collect();
        let base = ImportRecord {
            source: farmhack::SOURCE.into(),
            id: page.source_id.clone(),
            url: None,
            authors: page.authors.clone(),
            importer: importer.clone(),
            at: now,
            retrieved: parsed.retrieved.clone(),
            written: None,
            links: row.links.clone(),
            fields: BTreeMap::new(),
        };
        let existing = held
            .iter()
            .find(|(_, url)| farmhack::same_url(url, &page.source_id))
            .map(|(id, _)| *id);
        match write_page(replicas, &commons, &page, existing, base, request.dry_run) {
            Ok((design, fields)) => {
                row.outcome = match (existing, fields.is_empty()) {
                    (None, _) => "created",
                    (Some(_), true) => "unchanged",
                    (Some(_), false) => "updated",
                };
                row.fields = fields;
                row.design = design;
                if let (None, Some(id)) = (existing, design) {
                    held.push((id, page.source_id.clone()));
                }
                if let Some(design) = design {
                    let (new, changed) = write_comments(
                        replicas,
                        design,
                        &page,
                        &importer,
                        now,
                        &parsed.retrieved,
                        request.dry_run,
                    )?;
                    row.notes_created = new;
                    row.notes_updated = changed;
                    if row.outcome == "unchanged" && new + changed > 0 {
                        row.outcome = "updated";
                    }
                }
                written.push((report.tools.len(), page, design));
            }
            Err(error) => {
                row.error = Some(error.to_string());
                report.failed += 1;
            }
        }
        report.tools.push(row);
    }
    // Pass 2: relations, now that every page of the file has its design.
    for (index, page, design) in written {
        let mut resolved: Vec<(String, DocId)> = Vec::new();
        let mut links: Vec<Link> = Vec::new();
        for relation in &page.relations {
            match resolve_relation(replicas, &held, relation)? {
                Some(target) if Some(target) != design => {
                    resolved.push((relation.kind.clone(), target))
                }
                Some(_) => {}
                None => links.push(Link {
                    kind: relation.kind.clone(),
                    target: relation.target(),
                }),
            }
        }
        let row = &mut report.tools[index];
        row.links.extend(links.iter().cloned());
        row.related = resolved
            .iter()
            .map(|(kind, design)| RelatedRow {
                kind: kind.clone(),
                design: *design,
            })
            .collect();
        let Some(design) = design.filter(|_| !resolved.is_empty() || !links.is_empty()) else {
            continue;
        };
        if request.dry_run && row.outcome == "created" {
            continue;
        }
        let ids: Vec<String> = resolved.iter().map(|(k, d)| format!("{k} {d}")).collect();
        let digest = field_digest(
            &serde_json::json!({"related": ids, "links": links.iter().map(|l| format!("{} {}", l.kind, l.target)).collect::<Vec<_>>()}),
        );
        let previous = digests(replicas, &design, &page.source_id)?;
        if previous.get("related") == Some(&digest) {
            continue;
        }
        let edits: Vec<Edit> = resolved
            .into_iter()
            .map(|(relation, target)| Edit::AddRelated {
                relation,
                design: target.to_string(),
            })
            .collect();
        let record = ImportRecord {
            source: farmhack::SOURCE.into(),
            id: page.source_id.clone(),
            url: None,
            authors: page.authors.clone(),
            importer: importer.clone(),
            at: now,
            retrieved: parsed.retrieved.clone(),
            written: None,
            links,
            fields: BTreeMap::from([("related".to_string(), digest)]),
        };
        if request.dry_run {
            if !row.fields.contains(&"related".to_string()) {
                row.fields.push("related".into());
            }
            if row.outcome == "unchanged" {
                row.outcome = "updated";
            }
            continue;
        }
        let changed = replicas.edit_doc_with_message(
            &design,
            &edits,
            Some(record.to_message().map_err(InteropError::from)?),
        )?;
        if changed.is_some() {
            row.fields.push("related".into());
            if row.outcome == "unchanged" {
                row.outcome = "updated";
            }
        }
    }
    for row in &report.tools {
        match row.outcome {
            "created" => report.created += 1,
            "updated" => report.updated += 1,
            "unchanged" => report.unchanged += 1,
            _ => {}
        }
    }
    Ok(report)
}

/// Designs of the commons with their `external_ids.farmhack`.
fn held_pages(
    replicas: &mut Replicas,
    commons: &CommonsId,
) -> Result<Vec<(DocId, String)>, NodeError> {
    let mut out = Vec::new();
    for (id, _) in replicas.list(commons, DocKind::Design)? {
        let rendered = schema::render(replicas.replica(&id)?.doc(), DocKind::Design, None);
        if let Some(url) = rendered
            .pointer(&format!("/external_ids/{}", farmhack::SOURCE))
            .and_then(|v| v.as_str())
        {
            out.push((id, url.to_string()));
        }
    }
    Ok(out)
}

/// The digest of each field as the latest import of `source_id` wrote it.
fn digests(
    replicas: &mut Replicas,
    id: &DocId,
    source_id: &str,
) -> Result<BTreeMap<String, String>, NodeError> {
    let mut out = BTreeMap::new();
    for (_, _, record) in import_records(replicas, id)? {
        if record.source == farmhack::SOURCE && farmhack::same_url(&record.id, source_id) {
            out.extend(record.fields);
        }
    }
    Ok(out)
}

/// Writes a page's fields: a new design, or one change with the fields whose source value
/// changed since the last import. Returns the design and the fields written.
fn write_page(
    replicas: &mut Replicas,
    commons: &CommonsId,
    page: &ToolPage,
    existing: Option<DocId>,
    mut record: ImportRecord,
    dry_run: bool,
) -> Result<(Option<DocId>, Vec<String>), NodeError> {
    let digests: BTreeMap<String, String> = page
        .fields
        .iter()
        .map(|f| (f.field.clone(), field_digest(&f.value)))
        .collect();
    let previous = match existing {
        Some(id) => self::digests(replicas, &id, &page.source_id)?,
        None => BTreeMap::new(),
    };
    let changed: Vec<_> = page
        .fields
        .iter()
        .filter(|f| previous.get(&f.field) != digests.get(&f.field))
        .collect();
    let names: Vec<String> = changed.iter().map(|f| f.field.clone()).collect();
    record.fields = previous;
    record.fields.extend(digests);
    let edits: Vec<Edit> = changed.iter().flat_map(|f| f.edits.clone()).collect();
    if dry_run {
        return Ok((existing, names));
    }
    let message = record.to_message().map_err(InteropError::from)?;
    match existing {
        None => {
            let new = NewDocument::new(DocKind::Design, page.title.clone());
            let id = replicas.create_doc_with_message(*commons, &new, &edits, message)?;
            Ok((Some(id), names))
        }
        Some(_) if edits.is_empty() => Ok((existing, Vec::new())),
        Some(id) => match replicas.edit_doc_with_message(&id, &edits, Some(message))? {
            Some(_) => Ok((existing, names)),
            None => Ok((existing, Vec::new())),
        },
    }
}

/// Writes a page's comments as notes on its design: new comments as new notes, a comment
/// whose text changed at the source as one edit of its note. Returns (new, changed).
fn write_comments(
    replicas: &mut Replicas,
    design: DocId,
    page: &ToolPage,
    importer: &str,
    now: i64,
    retrieved: &Option<String>,
    dry_run: bool,
) -> Result<(usize, usize), NodeError> {
    let commons = replicas.replica(&design)?.commons();
    // Notes already imported on this design, by their comment's id.
    let mut held: BTreeMap<String, (DocId, String)> = BTreeMap::new();
    for (id, _) in replicas.list(&commons, DocKind::Note)? {
        if schema::facts::note_target(replicas.replica(&id)?.doc()) != Some(design) {
            continue;
        }
        for (_, _, record) in import_records(replicas, &id)? {
            if record.source == farmhack::SOURCE {
                let digest = record.fields.get("body").cloned().unwrap_or_default();
                held.insert(record.id.clone(), (id, digest));
            }
        }
    }
    let (mut new, mut changed) = (0, 0);
    for comment in &page.comments {
        let digest = field_digest(&serde_json::Value::String(comment.body.clone()));
        let record = comment_record(comment, importer, now, retrieved, &digest);
        match held.get(&comment.source_id) {
            Some((_, old)) if *old == digest => {}
            Some((id, _)) => {
                if dry_run {
                    changed += 1;
                    continue;
                }
                let edits = [Edit::Set {
                    field: "body".into(),
                    value: comment.body.clone(),
                }];
                let message = record.to_message().map_err(InteropError::from)?;
                if replicas
                    .edit_doc_with_message(id, &edits, Some(message))?
                    .is_some()
                {
                    changed += 1;
                }
            }
            None => {
                if dry_run {
                    new += 1;
                    continue;
                }
                let mut edits = Vec::new();
                if let Some(parent) = comment.reply_to.as_ref().and_then(|p| held.get(p)) {
                    edits.push(Edit::Set {
                        field: "reply_to".into(),
                        value: parent.0.to_string(),
                    });
                }
                let note =
                    NewDocument::note(design.to_string(), Some("comment"), comment.body.clone());
                let message = record.to_message().map_err(InteropError::from)?;
                let id = replicas.create_doc_with_message(commons, &note, &edits, message)?;
                held.insert(comment.source_id.clone(), (id, digest));
                new += 1;
            }
        }
    }
    Ok((new, changed))
}

/// The provenance record of one comment.
fn comment_record(
    comment: &Comment,
    importer: &str,
    now: i64,
    retrieved: &Option<String>,
    digest: &str,
) -> ImportRecord {
    ImportRecord {
        source: farmhack::SOURCE.into(),
        id: comment.source_id.clone(),
        url: None,
        authors: comment.author.iter().cloned().collect(),
        importer: importer.to_string(),
        at: now,
        retrieved: retrieved.clone(),
        written: comment.date.clone(),
        links: Vec::new(),
        fields: BTreeMap::from([("body".to_string(), digest.to_string())]),
    }
}

/// The design a relation names: by URL among the imported pages, else by exact name.
fn resolve_relation(
    replicas: &mut Replicas,
    held: &[(DocId, String)],
    relation: &Relation,
) -> Result<Option<DocId>, NodeError> {
    if let Some(url) = &relation.url {
        if let Some((id, _)) = held.iter().find(|(_, u)| farmhack::same_url(u, url)) {
            return Ok(Some(*id));
        }
    }
    if let Some(title) = &relation.title {
        let by_url = farmhack::url_for_title(title);
        if let Some((id, _)) = held.iter().find(|(_, u)| farmhack::same_url(u, &by_url)) {
            return Ok(Some(*id));
        }
        for (id, _) in held {
            let name = schema::facts::title(replicas.replica(id)?.doc(), DocKind::Design);
            if name.trim().eq_ignore_ascii_case(title.trim()) {
                return Ok(Some(*id));
            }
        }
    }
    Ok(None)
}
