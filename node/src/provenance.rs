//! Provenance and derivation: history, blame, forks, lineage and releases.

use crate::replicas::{NodeError, Replicas};
use crate::reply::ShownDocument;
use hedgerow_protocol::automerge::{ChangeHash, ReadDoc};
use hedgerow_protocol::envelope::verify_change_bytes;
use hedgerow_protocol::genesis::ForkOrigin;
use hedgerow_protocol::licence;
use hedgerow_protocol::schema::{self, facts, DocKind, Edit};
use hedgerow_protocol::sync::LiveChange;
use hedgerow_protocol::{AuthorKey, DocGenesis, DocId, DocReplica};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One line of a document's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// Change hash, hex.
    pub hash: String,
    /// Author key.
    pub author: AuthorKey,
    /// The person's display name from their profile (else the device's), if known.
    pub author_name: Option<String>,
    /// The person the signing device belongs to (the author key itself when uncertified).
    pub person: AuthorKey,
    /// The signing device's name in its certificate, when it has one.
    pub device_name: Option<String>,
    /// Time the author claimed, unix seconds (RFC 3339 in JSON).
    #[serde(with = "crate::times::unix")]
    pub time: i64,
    /// Top-level fields the change touched.
    pub fields: Vec<String>,
    /// `signed` (own signature verifies), `covered` (proven by a later signature of the same author), or `INVALID`.
    pub signature: &'static str,
    /// The document the change was made in (differs from the document for a fork's inherited history).
    pub made_in: DocId,
    /// The import this change wrote, on whose behalf, when it carries a provenance record
    /// naming its signer (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported: Option<crate::interop::ImportShown>,
}

/// One attributed part of a field.
#[derive(Debug, Clone, Serialize)]
pub struct BlameEntry {
    /// The text or value.
    pub text: String,
    /// Change hash, hex.
    pub change: String,
    /// Author key.
    pub author: Option<AuthorKey>,
    /// The person's display name (else the device's).
    pub author_name: Option<String>,
    /// The person the signing device belongs to.
    pub person: Option<AuthorKey>,
    /// The signing device's name in its certificate, when it has one.
    pub device_name: Option<String>,
}

/// A design's place in its family tree.
#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    /// Ancestors, nearest first: id and name when held.
    pub ancestors: Vec<(DocId, Option<String>)>,
    /// Known derivatives (direct and indirect): id, name, and its parent.
    pub derivatives: Vec<(DocId, Option<String>, DocId)>,
}

/// Options of a fork.
#[derive(Debug, Clone, Default)]
pub struct ForkOptions {
    /// New name; defaults to "<parent name> (fork)".
    pub name: Option<String>,
    /// Licence changes, as `licence.hardware=EXPR` style edits.
    pub licence: Vec<(String, String)>,
    /// Accept relicensing a share-alike design to an incompatible licence.
    pub allow_relicense: bool,
}

impl Replicas {
    /// Every change of a document, oldest first, with its provenance.
    pub fn history(&mut self, id: &DocId) -> Result<Vec<HistoryEntry>, NodeError> {
        let replica = self.replica(id)?;
        let commons = replica.commons();
        let doc = replica.doc();
        let mut rows = Vec::new();
        for meta in doc.get_changes_meta(&[]) {
            let hash = meta.hash;
            let record = replica.record(&hash).cloned();
            let (author, signature, made_in) = match &record {
                Some(record) => match &record.proof {
                    Some(proof) => {
                        let ok = doc
                            .get_change_by_hash(&hash)
                            .map(|c| verify_change_bytes(&commons, proof, c.raw_bytes()).is_ok())
                            .unwrap_or(false);
                        (
                            record.author,
                            if ok { "signed" } else { "INVALID" },
                            proof.doc,
                        )
                    }
                    None => (record.author, "covered", replica.id()),
                },
                None => (AuthorKey([0; 32]), "INVALID", replica.id()),
            };
            let imported = crate::interop::record_of(meta.message.as_deref(), &author);
            rows.push((hash, author, signature, made_in, meta.timestamp, imported));
        }
        let fields: Vec<Vec<String>> = rows
            .iter()
            .map(|(hash, ..)| schema::fields_touched(doc, hash))
            .collect();
        let attribution = self.attribution(commons);
        let mut out = Vec::with_capacity(rows.len());
        for ((hash, author, signature, made_in, time, imported), fields) in
            rows.into_iter().zip(fields)
        {
            let person = attribution.person(author);
            out.push(HistoryEntry {
                hash: hash.to_string(),
                author_name: self.person_name(commons, &author, &person),
                person,
                device_name: attribution.device_name(author),
                author,
                time,
                fields,
                signature,
                made_in,
                imported,
            });
        }
        Ok(out)
    }

    /// Who last wrote each part of `field`.
    pub fn blame(&mut self, id: &DocId, field: &str) -> Result<Vec<BlameEntry>, NodeError> {
        let replica = self.replica(id)?;
        let commons = replica.commons();
        let spans = schema::blame(replica.doc(), replica.kind(), field)?;
        let attributed: Vec<(String, ChangeHash, Option<AuthorKey>)> = spans
            .into_iter()
            .map(|span| {
                let author = replica.record(&span.change).map(|r| r.author);
                (span.text, span.change, author)
            })
            .collect();
        let attribution = self.attribution(commons);
        Ok(attributed
            .into_iter()
            .map(|(text, change, author)| {
                let person = author.map(|a| attribution.person(a));
                BlameEntry {
                    text,
                    change: change.to_string(),
                    author_name: author
                        .zip(person)
                        .and_then(|(a, p)| self.person_name(commons, &a, &p)),
                    person,
                    device_name: author.and_then(|a| attribution.device_name(a)),
                    author,
                }
            })
            .collect())
    }

    /// The name to show for a change by `device` of `person`: the person's profile name in the
    /// commons, else the device's own (a device that published a profile of its own).
    fn person_name(
        &mut self,
        commons: hedgerow_protocol::CommonsId,
        device: &AuthorKey,
        person: &AuthorKey,
    ) -> Option<String> {
        self.author_name(commons, person)
            .or_else(|| self.author_name(commons, device))
    }

    /// Forks a design: a new design whose history starts from the parent's current heads.
    pub fn fork(&mut self, parent_id: &DocId, options: &ForkOptions) -> Result<DocId, NodeError> {
        self.replica_mut(parent_id)?;
        let author = self.author();
        let Some(parent) = self.cache.get(parent_id) else {
            return Err(NodeError::UnknownDoc {
                what: "design",
                id: parent_id.to_string(),
            });
        };
        if parent.kind() != DocKind::Design {
            return Err(NodeError::WrongKind {
                id: *parent_id,
                expected: DocKind::Design,
                found: parent.kind(),
            });
        }
        for (field, new_expr) in &options.licence {
            if let Some(old) = facts::licence(parent.doc(), field) {
                if !options.allow_relicense {
                    licence::relicense_allowed(&old, new_expr)?;
                }
            }
        }
        let heads = parent.heads();
        let ancestors = parent.genesis().body.lineage()[1..].to_vec();
        let genesis = DocGenesis {
            commons: parent.commons(),
            kind: DocKind::Design,
            creator: author,
            created_at: crate::replicas::now_unix(),
            nonce: crate::replicas::random_nonce(),
            fork: Some(ForkOrigin {
                parent: *parent_id,
                heads: heads.iter().map(|h| h.0).collect(),
                ancestors,
            }),
        }
        .sign(&self.key);
        self.check_local_write(&genesis.body, 1)?;
        let Some(parent) = self.cache.get(parent_id) else {
            return Err(NodeError::UnknownDoc {
                what: "design",
                id: parent_id.to_string(),
            });
        };
        let mut child = DocReplica::new(genesis.clone())?;
        let mut accepted = child.adopt_parent_history(parent, &heads)?;
        let parent_name = match facts::title(parent.doc(), DocKind::Design) {
            name if name.is_empty() => "design".to_string(),
            name => name,
        };
        let mut edits = vec![
            Edit::Set {
                field: "derivative_of".into(),
                value: parent_id.to_string(),
            },
            Edit::Set {
                field: "name".into(),
                value: options
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{parent_name} (fork)")),
            },
        ];
        for (field, expr) in &options.licence {
            edits.push(Edit::Set {
                field: if field.starts_with("licence.") {
                    field.clone()
                } else {
                    format!("licence.{field}")
                },
                value: expr.clone(),
            });
        }
        let ctx = hedgerow_protocol::schema::EditContext {
            author: author.to_string(),
            now_unix: crate::replicas::now_unix(),
        };
        let (_, made) = child.edit(self.key(), ctx.now_unix, |tx| {
            schema::clear_for_fork(tx)?;
            for edit in &edits {
                schema::apply_edit(tx, DocKind::Design, edit, &ctx)?;
            }
            Ok::<(), schema::EditError>(())
        })?;
        let mut first_envelope = None;
        if let Some((envelope, acc)) = made {
            accepted.push(acc);
            first_envelope = Some(envelope);
        }
        let id = self.adopt(child, &accepted)?;
        if let Some(envelope) = first_envelope {
            self.queue_outgoing(LiveChange {
                genesis: Some(genesis),
                envelope,
            });
        }
        Ok(id)
    }

    /// A design's ancestors and known derivatives: forks by their signed origin, and designs
    /// that are no fork by the design their `derivative_of` names.
    pub fn lineage(&mut self, id: &DocId) -> Result<Lineage, NodeError> {
        let commons = self.replica(id)?.commons();
        let mut ancestors = Vec::new();
        for ancestor in self.ancestry(*id)? {
            ancestors.push((ancestor, self.store().summary(&ancestor)?.map(|s| s.title)));
        }
        // Each design's nearest parent, then every design whose chain of parents reaches `id`.
        let mut parents: HashMap<DocId, DocId> = HashMap::new();
        // Forks whose signed origin names `id` beyond their parent (the designs between may
        // not be held here).
        let mut by_origin = HashSet::new();
        for other in self.store().doc_ids(&commons)? {
            let Some(genesis) = self.store().doc_genesis(&other)? else {
                continue;
            };
            if genesis.body.kind != DocKind::Design || other == *id {
                continue;
            }
            let parent = match &genesis.body.fork {
                Some(fork) => {
                    if fork.ancestors.contains(id) {
                        by_origin.insert(other);
                    }
                    Some(fork.parent)
                }
                // From the listing facts: a design page's lineage must not load every design
                // of the commons (the replica cache holds a few hundred).
                None => match self.store().summary(&other)? {
                    Some(summary) if summary.changes > 0 => {
                        self.listing_facts(&other, &summary.heads, DocKind::Design)?
                            .derivative_of
                    }
                    _ => None,
                },
            };
            if let Some(parent) = parent {
                parents.insert(other, parent);
            }
        }
        // A retracted or hidden derivative is listed nowhere else, so not here either.
        let withheld = self.withheld_in(&commons);
        let mut derivatives = Vec::new();
        for (other, parent) in parents.iter().filter(|(d, _)| !withheld.contains(*d)) {
            let mut current = *parent;
            let mut steps = 0;
            while current != *id && steps <= parents.len() {
                match parents.get(&current) {
                    Some(next) => current = *next,
                    None => break,
                }
                steps += 1;
            }
            if current == *id || by_origin.contains(other) {
                let name = self.store().summary(other)?.map(|s| s.title);
                derivatives.push((*other, name, *parent));
            }
        }
        derivatives.sort_by_key(|a| a.0);
        Ok(Lineage {
            ancestors,
            derivatives,
        })
    }

    /// Freezes a design's current heads under `version`.
    pub fn release(&mut self, id: &DocId, version: &str) -> Result<ChangeHash, NodeError> {
        let heads: Vec<String> = self
            .replica(id)?
            .heads()
            .iter()
            .map(|h| h.to_string())
            .collect();
        let edit = Edit::Release {
            version: version.to_string(),
            heads,
        };
        self.edit_doc(id, &[edit])?
            .ok_or_else(|| NodeError::Invalid(format!("release `{version}` changed nothing")))
    }

    /// Shows a document: every field rendered, at a release when `version` is given.
    pub fn show(&mut self, id: &DocId, version: Option<&str>) -> Result<ShownDocument, NodeError> {
        self.check_not_hidden(id)?;
        let replica = self.replica(id)?;
        let kind = replica.kind();
        let (rendered, release) = match version {
            None => (schema::render(replica.doc(), kind, None), None),
            Some(version) => {
                let heads = facts::release_heads(replica.doc(), version).ok_or_else(|| {
                    NodeError::UnknownRelease {
                        doc: *id,
                        version: version.to_string(),
                    }
                })?;
                (
                    schema::render(replica.doc(), kind, Some(&heads)),
                    Some(version.to_string()),
                )
            }
        };
        let mut fields = match rendered {
            serde_json::Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        };
        times_as_rfc3339(&mut fields);
        // A release is frozen; what is in conflict is the document as it stands.
        let conflicts = match &release {
            None => self.conflicts(id)?,
            Some(_) => Vec::new(),
        };
        let replica = self.replica(id)?;
        let creator = replica.genesis().body.creator;
        let changes = replica.change_count();
        let heads = replica.heads().iter().map(|h| h.to_string()).collect();
        Ok(ShownDocument {
            fields,
            id: *id,
            // Not `kind`: events and notes have a `kind` field of their own (build, brainstorm...).
            doc_kind: kind.as_str().into(),
            creator,
            changes,
            heads,
            release,
            conflicts,
        })
    }

    /// Display names of a document's creator, the authors of its releases and builds, and the
    /// documents its fields link to, by key or id, for those this node can name.
    pub fn names(&mut self, id: &DocId) -> Result<BTreeMap<String, String>, NodeError> {
        self.check_not_hidden(id)?;
        let replica = self.replica(id)?;
        let commons = replica.commons();
        let creator = replica.genesis().body.creator;
        let fields = match schema::render(replica.doc(), replica.kind(), None) {
            serde_json::Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        };
        Ok(self.names_in(commons, &creator, &fields))
    }

    /// The names of [`Replicas::names`], from a rendered document's fields.
    fn names_in(
        &mut self,
        commons: hedgerow_protocol::CommonsId,
        creator: &AuthorKey,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> BTreeMap<String, String> {
        use serde_json::Value;
        let mut authors = vec![creator.to_string()];
        let mut docs = Vec::new();
        let text = |v: &Value| v.as_str().map(str::to_string);
        for release in fields
            .get("releases")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
        {
            authors.extend(release.get("by").and_then(text));
        }
        for list in ["built"] {
            for entry in fields
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                authors.extend(entry.get("by").and_then(text));
            }
        }
        for key in ["derivative_of", "variant_of", "target", "reply_to"] {
            docs.extend(fields.get(key).and_then(text));
        }
        for key in ["designs", "mentions"] {
            docs.extend(
                fields
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(text),
            );
        }
        for entry in fields
            .get("related")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            docs.extend(entry.get("design").and_then(text));
        }
        let attribution = self.attribution(commons);
        let mut names = BTreeMap::new();
        for key in authors {
            let Ok(author) = key.parse::<AuthorKey>() else {
                continue;
            };
            let person = attribution.person(author);
            if let Some(name) = self.person_name(commons, &author, &person) {
                names.insert(key, name);
            }
        }
        for key in docs {
            let Ok(doc) = key.parse::<DocId>() else {
                continue;
            };
            if let Ok(Some(summary)) = self.store().summary(&doc) {
                if !summary.title.is_empty() {
                    names.insert(key, summary.title);
                }
            }
        }
        names
    }
}

/// Release, build and attachment times (`releases.*.at`, `built[].at`, `files[].at`), stored as unix seconds, as the
/// RFC 3339 strings every reply uses.
fn times_as_rfc3339(fields: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    let fix = |entry: &mut Value| {
        if let Some(at) = entry.get("at").and_then(Value::as_i64) {
            entry["at"] = Value::String(crate::times::rfc3339(at));
        }
    };
    if let Some(Value::Object(releases)) = fields.get_mut("releases") {
        releases.values_mut().for_each(fix);
    }
    if let Some(Value::Array(built)) = fields.get_mut("built") {
        built.iter_mut().for_each(fix);
    }
    if let Some(Value::Array(files)) = fields.get_mut("files") {
        files.iter_mut().for_each(fix);
    }
}
