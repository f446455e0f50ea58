//! The seeded generator of realistic commons.
//!
//! Models a Farm Hack / L'Atelier Paysan commons: designs with build
//! instructions from a few hundred bytes to tens of KB spread over steps, bills
//! of materials of 5-60 lines, tags, licences and contributors; edit histories
//! of a few to dozens of changes by a pool of authors, some made concurrently on
//! separate replicas and merged; forks that inherit their parent's history;
//! events, and notes whose bodies several people write at once.
//!
//! Documents are built with automerge directly, through the same schema edits a node makes
//! (`schema::init_document`, `schema::apply_edit`) with the actor, time and signature a
//! node's `DocReplica::edit` would use, so each change and its signed envelope are the bytes
//! a node would have made; they are written to a real sled store with the store's own
//! `write_doc`, as a node that had received it all would hold it. The checks a node makes on
//! what it receives (signatures, schema, history rules) are not repeated here: every
//! scenario's nodes make them, and apply-and-verify replays every change through them.
//!
//! Speed (issue 11: a 20,000-design commons must fit in a benchmark run): each document's
//! changes are signed in one pass over one `get_changes` when it is written (a fork's inherited
//! changes keep the signatures its parent got), its summary is built from the document in
//! hand instead of loading the snapshot again, a fork or a concurrent replica is a clone of the
//! document instead of a replay, and a revised sentence of a step or a note is spliced into
//! its text object where it changed (what an editor sends) instead of diffing the whole text.

use crate::rng::Rng;
use crate::text;
use anyhow::{anyhow, Context, Result};
use automerge::transaction::CommitOptions;
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjId, ReadDoc, TextEncoding, ROOT};
use hedgerow_node::store::{DocSummary, DocWrite};
use hedgerow_node::Replicas;
use hedgerow_protocol::replica::ChangeRecord;
use hedgerow_protocol::schema::{
    self, DocKind, Edit, EditContext, NewDocument, Part, MAX_STEP_BYTES, MAX_TEXT_BYTES,
};
use hedgerow_protocol::{
    actor_for_install, Accepted, AuthorKey, ChangeEnvelope, CommonsGenesis, CommonsId, DeviceKey,
    DocGenesis, DocId, ForkOrigin, Signed,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// 2026-01-01T00:00:00Z: the generated commons' history starts here.
const EPOCH: i64 = 1_767_225_600;
/// Share of designs that are forks of a recent design.
const FORK_SHARE: f64 = 0.08;
/// Share of history changes made concurrently with another one on a separate replica.
const DESIGN_CONCURRENCY: f64 = 0.15;
/// Notes are written together at workshops: more concurrency.
const NOTE_CONCURRENCY: f64 = 0.35;
/// How many recent designs are kept in memory as fork parents.
const FORK_WINDOW: usize = 64;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GenConfig {
    /// Number of designs (forks included).
    pub designs: usize,
    /// The seed; the same seed and size always give the same documents.
    pub seed: u64,
}

/// Counts describing a generated commons.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenStats {
    /// Designs, forks included.
    pub designs: usize,
    /// Of which forks.
    pub forks: usize,
    /// Events.
    pub events: usize,
    /// Notes.
    pub notes: usize,
    /// Profiles (one per author).
    pub profiles: usize,
    /// Distinct authors.
    pub authors: usize,
    /// Signed changes made (a fork's inherited changes are not counted again).
    pub changes: usize,
    /// Changes made concurrently with another change of the same document.
    pub concurrent_changes: usize,
    /// Sum of the made changes' signed envelopes, in bytes.
    pub envelope_bytes: usize,
    /// Seconds the generation took.
    pub seconds: f64,
    /// CPU seconds of the generating thread (wall time on a shared machine says little).
    pub cpu_s: f64,
}

/// A generated commons, written to a store.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The commons id.
    pub commons: CommonsId,
    /// Its genesis.
    pub genesis: Signed<CommonsGenesis>,
    /// Every design id (forks included), in creation order.
    pub designs: Vec<DocId>,
    /// Every note id.
    pub notes: Vec<DocId>,
    /// Every author's key, the commons' creator first.
    pub authors: Vec<AuthorKey>,
    /// The creator's device secret, so a stewarded twin's charter can be signed by them.
    pub creator_secret: [u8; 32],
    /// Counts.
    pub stats: GenStats,
}

/// One author of the commons.
struct Author {
    key: DeviceKey,
    name: String,
}

/// The state shared while generating one commons.
struct Generator<'a> {
    rng: Rng,
    authors: Vec<Author>,
    commons: CommonsId,
    sink: &'a mut Replicas,
    stats: GenStats,
    written: usize,
}

/// Who made a change of a document being generated.
#[derive(Clone)]
enum Made {
    /// Made here by this author (an index into the generator's authors); signed when the
    /// document is written.
    By(usize),
    /// Already signed: written before (a fork's inherited changes keep their parent's proof).
    Signed(ChangeRecord),
}

/// A document being generated: its automerge document and who made each change (what a
/// `DocReplica` holds, without its checks on what arrives).
struct GenDoc {
    genesis: Signed<DocGenesis>,
    id: DocId,
    doc: Automerge,
    made: HashMap<ChangeHash, Made>,
}

impl GenDoc {
    fn new(genesis: Signed<DocGenesis>) -> Self {
        Self {
            id: genesis.body.id(),
            genesis,
            doc: Automerge::new(),
            made: HashMap::new(),
        }
    }

    fn id(&self) -> DocId {
        self.id
    }

    fn kind(&self) -> DocKind {
        self.genesis.body.kind
    }

    fn doc(&self) -> &Automerge {
        &self.doc
    }

    fn genesis(&self) -> &Signed<DocGenesis> {
        &self.genesis
    }

    fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    fn change_count(&self) -> usize {
        self.made.len()
    }

    /// Another replica of the same document (for concurrent edits): a clone, not a replay.
    fn copy(&self) -> Self {
        Self {
            genesis: self.genesis.clone(),
            id: self.id,
            doc: self.doc.fork(),
            made: self.made.clone(),
        }
    }

    /// Takes in the changes of `other` this replica lacks (a merge).
    fn merge(&mut self, mut other: GenDoc) -> Result<()> {
        self.doc
            .merge(&mut other.doc)
            .map_err(|e| anyhow!("merge refused: {e}"))?;
        for (hash, made) in other.made {
            self.made.entry(hash).or_insert(made);
        }
        Ok(())
    }
}

/// One edit of a generated change: a schema edit as a node's `doc edit` makes it, or a
/// revised sentence spliced straight into a text object.
enum GenEdit {
    Schema(Edit),
    Splice(Splice),
}

/// A text object of the document's root: a build step (0-based) or a text field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextAt {
    Step(usize),
    Field(&'static str),
}

/// One sentence of a text replaced by another, in the document's text units.
struct Splice {
    target: TextAt,
    at: usize,
    delete: usize,
    insert: String,
}

/// Generates a commons of `config.designs` designs into the store of `replicas`.
pub fn generate(config: &GenConfig, replicas: &mut Replicas) -> Result<Generated> {
    let started = Instant::now();
    let cpu_started = crate::scenarios::local::thread_cpu();
    let mut rng = Rng::new(config.seed);
    let n_authors = (10 + config.designs / 15).min(400);
    let authors: Vec<Author> = (0..n_authors)
        .map(|i| {
            let mut r = rng.derive("author", i as u64);
            Author {
                key: DeviceKey::from_secret(r.bytes32()),
                name: text::person(&mut r),
            }
        })
        .collect();
    let genesis = CommonsGenesis {
        name: "Farm tools commons".into(),
        description: "Open designs of farm tools, designed global, built local".into(),
        creator: authors[0].key.author(),
        created_at: EPOCH,
        nonce: rng.bytes16(),
    }
    .sign(&authors[0].key);
    let commons = genesis.body.id();
    replicas.store().put_commons(&genesis)?;
    let mut gen = Generator {
        rng: rng.derive("docs", 0),
        authors,
        commons,
        sink: replicas,
        stats: GenStats {
            authors: n_authors,
            ..GenStats::default()
        },
        written: 0,
    };
    for i in 0..n_authors {
        gen.profile(i)?;
    }
    let mut designs = Vec::with_capacity(config.designs);
    let mut recent: VecDeque<GenDoc> = VecDeque::new();
    for i in 0..config.designs {
        let mut r = gen.rng.derive("design", i as u64);
        let replica = if !recent.is_empty() && r.chance(FORK_SHARE) {
            let parent = &recent[r.below(recent.len())];
            gen.stats.forks += 1;
            gen.fork(parent, &mut r)?
        } else {
            gen.design(&mut r)?
        };
        designs.push(replica.id());
        let mut replica = replica;
        gen.write(&mut replica)?;
        recent.push_back(replica);
        if recent.len() > FORK_WINDOW {
            recent.pop_front();
        }
    }
    gen.stats.designs = designs.len();
    drop(recent);
    let n_events = (config.designs / 25).max(2);
    let mut events = Vec::new();
    for i in 0..n_events {
        let mut r = gen.rng.derive("event", i as u64);
        let mut replica = gen.event(&mut r, &designs)?;
        events.push(replica.id());
        gen.write(&mut replica)?;
    }
    gen.stats.events = events.len();
    let mut notes = Vec::new();
    for i in 0..(config.designs / 4).max(4) {
        let mut r = gen.rng.derive("note", i as u64);
        let target = if r.chance(0.6) {
            *r.pick(&events)
        } else {
            *r.pick(&designs)
        };
        let mut replica = gen.note(&mut r, target, &designs)?;
        notes.push(replica.id());
        gen.write(&mut replica)?;
    }
    gen.stats.notes = notes.len();
    gen.sink.commit()?;
    gen.sink.clear_cache();
    gen.stats.seconds = started.elapsed().as_secs_f64();
    gen.stats.cpu_s = crate::scenarios::local::thread_cpu() - cpu_started;
    Ok(Generated {
        commons,
        genesis,
        designs,
        notes,
        authors: gen.authors.iter().map(|a| a.key.author()).collect(),
        creator_secret: gen.authors[0].key.secret_bytes(),
        stats: gen.stats,
    })
}

impl Generator<'_> {
    /// A signed genesis for a new document by `creator`.
    fn new_doc(
        &mut self,
        kind: DocKind,
        creator: usize,
        fork: Option<ForkOrigin>,
        t: i64,
    ) -> Result<GenDoc> {
        let genesis = DocGenesis {
            commons: self.commons,
            kind,
            creator: self.authors[creator].key.author(),
            created_at: t,
            nonce: self.rng.bytes16(),
            fork,
        }
        .sign(&self.authors[creator].key);
        Ok(GenDoc::new(genesis))
    }

    /// One change by `author` applying `edits` (and the skeleton when `new` is given), made
    /// as `DocReplica::edit` makes it: the install's actor and the time; it is signed when the
    /// document is written.
    fn change(
        &mut self,
        replica: &mut GenDoc,
        author: usize,
        t: i64,
        new: Option<&NewDocument>,
        edits: &[GenEdit],
    ) -> Result<()> {
        let key = &self.authors[author].key;
        let ctx = EditContext {
            author: key.author().to_string(),
            now_unix: t,
        };
        let kind = replica.kind();
        let id = replica.id;
        replica
            .doc
            .set_actor(actor_for_install(&key.author(), &id, &key.install()));
        let outcome = replica
            .doc
            .transact_with(
                |_| CommitOptions::default().with_time(t),
                |tx| {
                    if let Some(new) = new {
                        schema::init_document(tx, new)?;
                    }
                    for edit in edits {
                        match edit {
                            GenEdit::Schema(edit) => schema::apply_edit(tx, kind, edit, &ctx)?,
                            GenEdit::Splice(s) => {
                                let text = text_object(&*tx, s.target)
                                    .ok_or_else(|| anyhow!("no text to revise"))?;
                                tx.splice_text(&text, s.at, s.delete as isize, &s.insert)?;
                            }
                        }
                    }
                    Ok::<(), anyhow::Error>(())
                },
            )
            .map_err(|f| anyhow!("{kind} edit refused: {:#}", f.error))?;
        if let Some(hash) = outcome.hash {
            replica.made.insert(hash, Made::By(author));
            self.stats.changes += 1;
        }
        Ok(())
    }

    /// Two changes made at the same time on two replicas of the document, then merged.
    fn concurrent(
        &mut self,
        replica: &mut GenDoc,
        t: i64,
        first: (usize, Vec<GenEdit>),
        second: (usize, Vec<GenEdit>),
    ) -> Result<()> {
        let mut other = replica.copy();
        let before = other.change_count();
        self.change(&mut other, second.0, t + 7, None, &second.1)?;
        self.change(replica, first.0, t, None, &first.1)?;
        if other.change_count() > before {
            replica.merge(other)?;
            self.stats.concurrent_changes += 2;
        }
        Ok(())
    }

    /// Stores a finished document the way a node that received all of it would: its
    /// genesis, every change with its signature, a snapshot and the summary, in one write.
    /// Changes made here are signed now, in one pass over the document's changes.
    fn write(&mut self, replica: &mut GenDoc) -> Result<()> {
        let changes = replica.doc.get_changes(&[]);
        let mut accepted = Vec::with_capacity(changes.len());
        let mut updated_at = replica.genesis.body.created_at;
        for change in changes {
            let hash = change.hash();
            updated_at = updated_at.max(change.timestamp());
            let made = replica
                .made
                .get_mut(&hash)
                .ok_or_else(|| anyhow!("change {hash} has no author"))?;
            let bytes = change.raw_bytes().to_vec();
            let record = match made {
                Made::Signed(record) => record.clone(),
                Made::By(author) => {
                    let key = &self.authors[*author].key;
                    let envelope = ChangeEnvelope::sign(key, self.commons, replica.id, bytes);
                    self.stats.envelope_bytes += envelope.to_bytes().len();
                    let record = ChangeRecord {
                        author: key.author(),
                        proof: Some(envelope.proof()),
                    };
                    *made = Made::Signed(record.clone());
                    accepted.push(Accepted {
                        hash,
                        bytes: envelope.change,
                        record,
                    });
                    continue;
                }
            };
            accepted.push(Accepted {
                hash,
                bytes,
                record,
            });
        }
        let kind = replica.kind();
        // What `replicas::summarize` reads from a loaded replica, from the document in hand.
        let summary = DocSummary {
            commons: self.commons,
            kind,
            title: schema::facts::title(&replica.doc, kind)
                .chars()
                .take(80)
                .collect(),
            heads: replica.heads().iter().map(|h| h.0).collect(),
            changes: accepted.len() as u64,
            updated_at,
        };
        self.sink
            .store()
            .write_doc(DocWrite {
                genesis: &replica.genesis,
                accepted: &accepted,
                snapshot: Some(replica.doc.save()),
                summary,
                excluded: &[],
            })
            .with_context(|| format!("storing generated {} {}", replica.kind(), replica.id()))?;
        self.written += 1;
        if self.written % 200 == 0 {
            self.sink.commit()?;
            self.sink.clear_cache();
        }
        Ok(())
    }

    fn profile(&mut self, i: usize) -> Result<()> {
        let mut r = self.rng.derive("profile", i as u64);
        let author = &self.authors[i];
        let genesis = DocGenesis::profile(self.commons, author.key.author()).sign(&author.key);
        let mut replica = GenDoc::new(genesis);
        let new = NewDocument::new(DocKind::Profile, self.authors[i].name.clone());
        let edits = [
            set("location", &text::place(&mut r)),
            set("bio", &text::chatter(&mut r, 40, 400)),
        ]
        .map(GenEdit::Schema);
        self.change(
            &mut replica,
            i,
            EPOCH + r.range(0, 86_400) as i64,
            Some(&new),
            &edits,
        )?;
        self.stats.profiles += 1;
        self.write(&mut replica)
    }

    /// The authors who work on one document: a few, the prolific ones more often.
    fn pool(&mut self, r: &mut Rng, median: f64, max: f64) -> Vec<usize> {
        let n = r.lognormal(median, 0.6, 1.0, max) as usize;
        let mut pool: Vec<usize> = Vec::new();
        while pool.len() < n.max(1) {
            let a = ((r.unit().powi(2)) * self.authors.len() as f64) as usize % self.authors.len();
            if !pool.contains(&a) {
                pool.push(a);
            }
        }
        pool
    }

    fn design(&mut self, r: &mut Rng) -> Result<GenDoc> {
        let pool = self.pool(r, 3.0, 12.0);
        let mut t = EPOCH + r.range(0, 2 * 365 * 86_400) as i64;
        let mut replica = self.new_doc(DocKind::Design, pool[0], None, t)?;
        let instructions = r.lognormal(3_500.0, 0.9, 300.0, 40_000.0) as usize;
        let n_steps = (instructions / 700).clamp(3, 30) + r.below(3);
        let mut steps: VecDeque<String> = (0..n_steps)
            .map(|_| {
                text::paragraph(
                    r,
                    (instructions / n_steps).clamp(40, 15_000),
                    (instructions / n_steps).clamp(40, 15_000),
                )
            })
            .collect();
        let n_bom = r.lognormal(15.0, 0.7, 5.0, 60.0) as usize;
        let mut bom: VecDeque<Edit> = (0..n_bom)
            .map(|_| Edit::AddBomLine {
                line: text::bom_line(r),
            })
            .collect();
        let mut edits = vec![
            set("summary", &text::chatter(r, 80, 600)),
            set("problem", &text::chatter(r, 40, 300)),
            set("how_it_works", &text::paragraph(r, 100, 900)),
            set(
                "stage",
                r.pick_str(&[
                    "idea",
                    "concept",
                    "prototype",
                    "functional-prototype",
                    "in-use",
                ]),
            ),
            set(
                "licence.hardware",
                r.pick_str(&[
                    "CERN-OHL-S-2.0",
                    "CERN-OHL-W-2.0",
                    "CERN-OHL-P-2.0",
                    "TAPR-OHL-1.0",
                ]),
            ),
            set(
                "licence.documentation",
                r.pick_str(&["CC-BY-SA-4.0", "CC-BY-4.0", "CC0-1.0"]),
            ),
            set("licensor", &self.authors[pool[0]].name.clone()),
            set(
                "documentation_language",
                r.pick_str(&["en", "fr", "de", "es"]),
            ),
        ];
        for _ in 0..r.range(2, 6) {
            edits.push(add("tags", &text::tag(r)));
        }
        for _ in 0..r.range(2, 6) {
            edits.push(add("tools", &text::tool(r)));
        }
        if r.chance(0.3) {
            edits.push(set(
                "external_ids.farmhack",
                &format!("https://farmhack.org/tools/{}", r.range(100, 9999)),
            ));
        }
        for _ in 0..(n_bom * 7 / 10).max(1) {
            edits.extend(bom.pop_front());
        }
        for _ in 0..(n_steps * 7 / 10).max(1) {
            if let Some(text) = steps.pop_front() {
                edits.push(Edit::AddStep { text, at: None });
            }
        }
        let new = NewDocument::new(DocKind::Design, text::design_name(r));
        let edits: Vec<GenEdit> = edits.into_iter().map(GenEdit::Schema).collect();
        self.change(&mut replica, pool[0], t, Some(&new), &edits)?;
        let n_changes = r.lognormal(10.0, 0.8, 2.0, 45.0) as usize;
        let mut c = 0;
        while c < n_changes {
            t += r.range(600, 30 * 86_400) as i64;
            let author = *r.pick(&pool);
            if c + 1 < n_changes && pool.len() > 1 && r.chance(DESIGN_CONCURRENCY) {
                let other = other_than(r, &pool, author);
                let first = self.design_edits(r, &replica, &mut steps, &mut bom);
                let second = self.design_edits(r, &replica, &mut steps, &mut bom);
                self.concurrent(&mut replica, t, (author, first), (other, second))?;
                c += 2;
            } else {
                let edits = self.design_edits(r, &replica, &mut steps, &mut bom);
                self.change(&mut replica, author, t, None, &edits)?;
                c += 1;
            }
        }
        Ok(replica)
    }

    /// One to three edits of a typical design revision, based on the current state.
    fn design_edits(
        &mut self,
        r: &mut Rng,
        replica: &GenDoc,
        steps: &mut VecDeque<String>,
        bom: &mut VecDeque<Edit>,
    ) -> Vec<GenEdit> {
        let doc = replica.doc();
        let n_steps = length_of(doc, "steps");
        let mut n_bom = length_of(doc, "bom");
        let mut out = Vec::new();
        let mut revised = Vec::new();
        for _ in 0..r.range(1, 3) {
            let roll = r.unit();
            let edit = if !steps.is_empty() && roll < 0.12 {
                steps
                    .pop_front()
                    .map(|text| Edit::AddStep { text, at: None })
            } else if !bom.is_empty() && roll < 0.24 {
                n_bom += 1;
                bom.pop_front()
            } else if roll < 0.55 && n_steps > 0 {
                // A revised sentence of one step; a step is revised once per change (a second
                // splice would be placed by the text before the first).
                let step = r.below(n_steps);
                if !revised.contains(&step) {
                    revised.push(step);
                    out.extend(revise_text(r, doc, TextAt::Step(step), MAX_STEP_BYTES));
                }
                None
            } else if roll < 0.65 {
                let field = r.pick_str(&["summary", "how_it_works", "safety", "user_manual"]);
                Some(Edit::AppendText {
                    field: field.into(),
                    text: format!(" {}", text::paragraph(r, 40, 400)),
                })
            } else if roll < 0.72 {
                Some(add(
                    r.pick_str(&["tags", "tools", "skills"]),
                    &text::tool(r),
                ))
            } else if roll < 0.77 {
                Some(set(
                    "stage",
                    r.pick_str(&[
                        "prototype",
                        "functional-prototype",
                        "production-ready",
                        "in-use",
                    ]),
                ))
            } else if roll < 0.83 {
                let name = r.pick(&self.authors).name.clone();
                Some(Edit::AddContributor {
                    name,
                    role: Some(
                        r.pick_str(&[
                            "designer",
                            "builder",
                            "translator",
                            "photographer",
                            "tester",
                        ])
                        .to_string(),
                    ),
                })
            } else if roll < 0.88 {
                Some(Edit::AddBuilt {
                    place: Some(text::place(r)),
                    note: r.chance(0.5).then(|| text::chatter(r, 30, 200)),
                })
            } else if roll < 0.91 && n_bom > 3 {
                n_bom -= 1;
                Some(Edit::RemoveBomLine {
                    position: r.range(1, n_bom + 1),
                })
            } else if roll < 0.94 {
                Some(Edit::AddPart {
                    part: Part {
                        name: text::tool(r),
                        material: Some("steel".into()),
                        quantity: Some(r.range(1, 12) as f64),
                    },
                })
            } else if roll < 0.97 {
                Some(set(
                    r.pick_str(&["build_facts.workshop_days", "build_facts.weight_kg"]),
                    &r.range(1, 90).to_string(),
                ))
            } else {
                let count = length_of(doc, "releases");
                Some(Edit::Release {
                    version: format!("1.{count}"),
                    heads: replica.heads().iter().map(|h| h.to_string()).collect(),
                })
            };
            out.extend(edit.map(GenEdit::Schema));
        }
        let release = |e: &GenEdit| matches!(e, GenEdit::Schema(Edit::Release { .. }));
        if out.iter().any(release) {
            out.retain(release);
            out.truncate(1);
        }
        out
    }

    fn fork(&mut self, parent: &GenDoc, r: &mut Rng) -> Result<GenDoc> {
        let creator = self.pool(r, 1.0, 1.0)[0];
        let heads = parent.heads();
        let latest = parent
            .doc()
            .get_changes_meta(&[])
            .iter()
            .map(|m| m.timestamp)
            .max()
            .unwrap_or(EPOCH);
        let mut t = latest + r.range(86_400, 90 * 86_400) as i64;
        let origin = ForkOrigin {
            parent: parent.id(),
            heads: heads.iter().map(|h| h.0).collect(),
            ancestors: parent.genesis().body.lineage()[1..].to_vec(),
        };
        let mut child = self.new_doc(DocKind::Design, creator, Some(origin), t)?;
        // The parent at its current heads: a clone, not a replay of its changes.
        child.doc = parent.doc.fork();
        child.made = parent.made.clone();
        let edits = [
            set("derivative_of", &parent.id().to_string()),
            set("name", &text::design_name(r)),
        ]
        .map(GenEdit::Schema);
        self.change(&mut child, creator, t, None, &edits)?;
        let mut steps = VecDeque::new();
        let mut bom = VecDeque::new();
        for _ in 0..r.range(1, 8) {
            t += r.range(600, 30 * 86_400) as i64;
            let edits = self.design_edits(r, &child, &mut steps, &mut bom);
            self.change(&mut child, creator, t, None, &edits)?;
        }
        Ok(child)
    }

    fn event(&mut self, r: &mut Rng, designs: &[DocId]) -> Result<GenDoc> {
        let pool = self.pool(r, 3.0, 8.0);
        let mut t = EPOCH + r.range(0, 2 * 365 * 86_400) as i64;
        let mut replica = self.new_doc(DocKind::Event, pool[0], None, t)?;
        let day = r.range(1, 28);
        let month = r.range(1, 12);
        let mut edits = vec![
            set(
                "kind",
                r.pick_str(&["build", "design", "documentation", "workshop", "farm-visit"]),
            ),
            set("summary", &text::chatter(r, 80, 400)),
            set("description", &text::chatter(r, 200, 1500)),
            set("start", &format!("2026-{month:02}-{day:02}T09:00")),
            set("end", &format!("2026-{month:02}-{day:02}T18:00")),
            set("location.name", &format!("Ferme de {}", text::place(r))),
            set(
                "location.country",
                r.pick_str(&["France", "USA", "Belgium", "Switzerland", "Canada"]),
            ),
            set("status", "planned"),
        ];
        for _ in 0..r.range(1, 3) {
            edits.push(add(
                "activities",
                r.pick_str(&["build", "design", "document", "demo", "training"]),
            ));
        }
        for &a in &pool {
            edits.push(add("organisers", &self.authors[a].name.clone()));
        }
        for _ in 0..r.range(1, 4) {
            edits.push(add("designs", &r.pick(designs).to_string()));
        }
        let title = format!("Build day at {}", text::place(r));
        let new = NewDocument::new(DocKind::Event, title);
        let edits: Vec<GenEdit> = edits.into_iter().map(GenEdit::Schema).collect();
        self.change(&mut replica, pool[0], t, Some(&new), &edits)?;
        for _ in 0..r.range(2, 8) {
            t += r.range(3_600, 20 * 86_400) as i64;
            let edit = match r.below(4) {
                0 => set("status", r.pick_str(&["ongoing", "done"])),
                1 => Edit::AddOutcome {
                    outcome: r
                        .pick_str(&[
                            "new-design",
                            "new-release",
                            "units-built",
                            "documentation-improved",
                        ])
                        .to_string(),
                    detail: Some(format!("{} units", r.range(1, 9))),
                },
                2 => Edit::AppendText {
                    field: "description".into(),
                    text: format!(" {}", text::chatter(r, 50, 400)),
                },
                _ => add("designs", &r.pick(designs).to_string()),
            };
            let author = *r.pick(&pool);
            self.change(&mut replica, author, t, None, &[GenEdit::Schema(edit)])?;
        }
        Ok(replica)
    }

    fn note(&mut self, r: &mut Rng, target: DocId, designs: &[DocId]) -> Result<GenDoc> {
        let pool = self.pool(r, 4.0, 12.0);
        let mut t = EPOCH + r.range(0, 2 * 365 * 86_400) as i64;
        let mut replica = self.new_doc(DocKind::Note, pool[0], None, t)?;
        let kind = r.pick_str(&[
            "brainstorm",
            "build-log",
            "need-statement",
            "decision",
            "question",
            "chronicle",
            "comment",
        ]);
        let new = NewDocument::note(target.to_string(), Some(kind), text::chatter(r, 60, 500));
        let mut edits = vec![GenEdit::Schema(add("tags", &text::tag(r)))];
        if r.chance(0.5) {
            edits.push(GenEdit::Schema(add(
                "mentions",
                &r.pick(designs).to_string(),
            )));
        }
        self.change(&mut replica, pool[0], t, Some(&new), &edits)?;
        let n_changes = r.lognormal(6.0, 0.7, 2.0, 30.0) as usize;
        let mut c = 0;
        while c < n_changes {
            t += r.range(30, 3_600) as i64;
            let author = *r.pick(&pool);
            if c + 1 < n_changes && pool.len() > 1 && r.chance(NOTE_CONCURRENCY) {
                let other = other_than(r, &pool, author);
                let first = note_edit(r, &replica);
                let second = note_edit(r, &replica);
                self.concurrent(&mut replica, t, (author, first), (other, second))?;
                c += 2;
            } else {
                let edits = note_edit(r, &replica);
                self.change(&mut replica, author, t, None, &edits)?;
                c += 1;
            }
        }
        Ok(replica)
    }
}

/// The text object of a step or a root text field.
fn text_object<R: ReadDoc>(doc: &R, at: TextAt) -> Option<ObjId> {
    match at {
        TextAt::Step(i) => {
            let (_, steps) = doc.get(ROOT, "steps").ok()??;
            doc.get(&steps, i).ok()?.map(|(_, step)| step)
        }
        TextAt::Field(field) => doc.get(ROOT, field).ok()?.map(|(_, text)| text),
    }
}

/// Length of `s` in the document's text units (how `splice_text` counts); `None` for grapheme
/// clusters, which this generator does not count.
fn text_units(doc: &Automerge, s: &str) -> Option<usize> {
    match doc.text_encoding() {
        TextEncoding::UnicodeCodePoint => Some(s.chars().count()),
        TextEncoding::Utf8CodeUnit => Some(s.len()),
        TextEncoding::Utf16CodeUnit => Some(s.encode_utf16().count()),
        TextEncoding::GraphemeCluster => None,
    }
}

/// One sentence of a text rewritten, as [`text::revise`] rewrites it, but as the splice an
/// editor would send: the old sentence deleted and the new one inserted where it was. `None`
/// (no edit) when the text is missing or the result would exceed `max` bytes.
fn revise_text(r: &mut Rng, doc: &Automerge, at: TextAt, max: usize) -> Option<GenEdit> {
    let current = doc.text(text_object(doc, at)?).ok()?;
    let sentences: Vec<&str> = current.split_inclusive(". ").collect();
    let n = sentences.len();
    if n == 0 {
        return None;
    }
    let i = r.below(n);
    let mut insert = text::sentence(r);
    if i + 1 < n {
        insert.push(' ');
    }
    if current.len() - sentences[i].len() + insert.len() > max {
        return None;
    }
    let before: usize = sentences[..i].iter().map(|s| s.len()).sum();
    Some(GenEdit::Splice(Splice {
        target: at,
        at: text_units(doc, &current[..before])?,
        delete: text_units(doc, sentences[i])?,
        insert,
    }))
}

/// Items in a list or map field of the document's root.
fn length_of(doc: &Automerge, field: &str) -> usize {
    match doc.get(ROOT, field) {
        Ok(Some((_, obj))) => doc.length(&obj),
        _ => 0,
    }
}

/// A participant adding to or correcting a sentence of a note's body.
fn note_edit(r: &mut Rng, replica: &GenDoc) -> Vec<GenEdit> {
    if r.chance(0.75) {
        return vec![GenEdit::Schema(Edit::AppendText {
            field: "body".into(),
            text: format!(" {}", text::chatter(r, 30, 400)),
        })];
    }
    revise_text(r, replica.doc(), TextAt::Field("body"), MAX_TEXT_BYTES)
        .into_iter()
        .collect()
}

/// Another author of the pool (the pool has at least two): one author cannot be in two places
/// at once, and two changes of one author with one sequence number are an equivocation.
fn other_than(r: &mut Rng, pool: &[usize], author: usize) -> usize {
    let others: Vec<usize> = pool.iter().copied().filter(|a| *a != author).collect();
    *r.pick(&others)
}

fn set(field: &str, value: &str) -> Edit {
    Edit::Set {
        field: field.into(),
        value: value.into(),
    }
}

fn add(field: &str, item: &str) -> Edit {
    Edit::AddItem {
        field: field.into(),
        item: item.into(),
    }
}

/// A JSON summary of a generated commons, for the report.
pub fn stats_json(generated: &Generated) -> Value {
    serde_json::to_value(&generated.stats).unwrap_or(Value::Null)
}
