//! `hedgerow verify`: re-check every signature, hash and cached document.

use crate::replicas::{summarize, NodeError, Replicas};
use crate::store::StoreError;
use hedgerow_protocol::replica::ExclusionReason;
use hedgerow_protocol::DocId;
use serde::{Deserialize, Serialize};

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Commons checked.
    pub commons: usize,
    /// Documents checked.
    pub documents: usize,
    /// Changes whose signature or coverage was re-verified.
    pub changes: usize,
    /// Caches rewritten (with `--rebuild`).
    pub rebuilt: usize,
    /// Problems, one each, naming what is damaged.
    pub problems: Vec<Problem>,
    /// Equivocations settled in the store (not damage: evidence of what an author did).
    pub equivocations: Vec<Equivocation>,
    /// Changes this node held back since it started because they build on changes a
    /// commons' charter refused (not stored; they come back if the charter admits them).
    pub held_changes: u64,
    /// Attachment blobs checked.
    #[serde(default)]
    pub blobs: BlobsChecked,
}

/// What `verify` found of the attachment blobs documents refer to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlobsChecked {
    /// Blobs held and checked (re-hashed, or with `--quick` their sizes only).
    pub checked: usize,
    /// Bytes of the sound ones.
    pub bytes: u64,
    /// Blobs documents refer to that this node does not hold (not damage: fetched later).
    pub missing: usize,
}

/// One thing `verify` found wrong: what kind of damage, and a line naming it.
///
/// The line says what is wrong, not what to do: the CLI adds that by [`ProblemKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// What kind of damage.
    pub kind: ProblemKind,
    /// What is damaged, in one line.
    pub text: String,
}

impl Problem {
    pub(crate) fn new(kind: ProblemKind, text: String) -> Self {
        Problem { kind, text }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The kinds of damage `verify` names; serialised by their stable kebab-case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The store holds signed changes but no manifest, so lost writes go unnoticed.
    ManifestMissing,
    /// A commons genesis record whose signature does not verify.
    BadCommons,
    /// A document genesis record stored under another id than its hash.
    GenesisMismatch,
    /// A document of a commons that is not held.
    OrphanDocument,
    /// A stored change or record that does not decode.
    UndecodableChanges,
    /// Changes without their provenance record.
    MissingRecords,
    /// Stored changes whose signatures or history do not verify.
    ChangesDoNotVerify,
    /// Stored changes that could not be applied.
    ChangesNotApplied,
    /// A cached snapshot or summary that differs from the signed changes.
    StaleCache,
    /// Equivocation evidence whose signature does not verify.
    BadEvidence,
    /// Stored changes their commons' charter refuses (they should have left the document).
    RefusedByCharter,
    /// An attachment blob whose bytes no longer match its name (or its recorded size).
    DamagedBlob,
}

/// One author's two signed changes with one sequence number, as `verify` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Equivocation {
    /// The document.
    pub document: String,
    /// The author who signed both.
    pub author: String,
    /// The sequence number used twice.
    pub seq: u64,
    /// The change that stays (lowest hash), hex.
    pub kept: String,
    /// The change kept out, hex.
    pub excluded: String,
    /// Further changes kept out because they build on the excluded one.
    pub built_on: usize,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Replicas {
    /// Re-verifies every commons, document and change from the stored envelopes,
    /// and compares each cached snapshot with the state rebuilt from them.
    /// With `rebuild`, rewrites caches that differ or are missing.
    pub fn verify(&mut self, rebuild: bool) -> Result<VerifyReport, NodeError> {
        let mut report = VerifyReport::default();
        if rebuild && self.store().recreate_manifest()? {
            report.rebuilt += 1;
        } else if self.store().manifest_missing() {
            report.problems.push(Problem::new(
                ProblemKind::ManifestMissing,
                format!(
                    "store: it holds signed changes but its manifest ({}) is missing, so lost writes cannot be detected",
                    "hedgerow-manifest.json"
                ),
            ));
        }
        for genesis in self.store().all_commons()? {
            report.commons += 1;
            if let Err(e) = genesis.verify() {
                report.problems.push(Problem::new(
                    ProblemKind::BadCommons,
                    format!("commons {}: {e}", genesis.body.id()),
                ));
            }
        }
        self.clear_cache();
        for id in self.store().all_doc_ids()? {
            report.documents += 1;
            let Some(genesis) = self.store().doc_genesis(&id)? else {
                continue;
            };
            if genesis.body.id() != id {
                report.problems.push(Problem::new(
                    ProblemKind::GenesisMismatch,
                    format!(
                        "document {id}: its genesis record hashes to {}",
                        genesis.body.id()
                    ),
                ));
                continue;
            }
            if self.store().commons(&genesis.body.commons)?.is_none() {
                report.problems.push(Problem::new(
                    ProblemKind::OrphanDocument,
                    format!(
                        "document {id}: belongs to commons {} which is not held",
                        genesis.body.commons
                    ),
                ));
            }
            // A value that no longer decodes is damage to report by name, not a reason to stop.
            let stored = match self.store().changes(&id) {
                Ok(stored) => stored,
                Err(e @ StoreError::Corrupt { .. }) => {
                    report.problems.push(Problem::new(
                        ProblemKind::UndecodableChanges,
                        format!("document {id}: {e}"),
                    ));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let missing_records = stored.iter().filter(|(_, _, r)| r.is_none()).count();
            if missing_records > 0 {
                report.problems.push(Problem::new(
                    ProblemKind::MissingRecords,
                    format!("document {id}: {missing_records} changes have no provenance record"),
                ));
            }
            let replica = match self.rebuild(&id, genesis) {
                Ok(replica) => replica,
                Err(e) => {
                    report.problems.push(Problem::new(
                        ProblemKind::ChangesDoNotVerify,
                        format!("document {id}: stored changes do not verify: {e}"),
                    ));
                    continue;
                }
            };
            report.changes += replica.change_count();
            check_evidence(&mut report, &id, &replica);
            // Every stored change of a stewarded commons must still pass its charter.
            let refused = self.inadmissible(&id, &genesis_of(&replica))?;
            if refused > 0 {
                if rebuild {
                    self.readmit_doc(&id)?;
                    report.rebuilt += 1;
                    continue;
                }
                report.problems.push(Problem::new(
                    ProblemKind::RefusedByCharter,
                    format!(
                        "document {id}: {refused} stored changes are refused by its commons' charter"
                    ),
                ));
            }
            if replica.change_count() != stored.len() {
                report.problems.push(Problem::new(
                    ProblemKind::ChangesNotApplied,
                    format!(
                        "document {id}: {} of {} stored changes could not be applied",
                        stored.len().saturating_sub(replica.change_count()),
                        stored.len()
                    ),
                ));
            }
            let fresh = summarize(&replica);
            // The snapshot is saved lazily (every few received changes, on eviction, on
            // close), so after a kill it may lag the records: that is fine, loading catches it
            // up. It must never hold a change the records lack.
            // A summary that does not decode is a damaged cache like any other.
            let summary = match self.store().summary(&id) {
                Ok(summary) => summary,
                Err(StoreError::Corrupt { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let (cached_ok, snapshot_current) = match (summary, self.store().snapshot(&id)?) {
                (Some(summary), Some(snapshot)) => {
                    let snapshot_changes = hedgerow_protocol::automerge::Automerge::load(&snapshot)
                        .map(|d| {
                            d.get_changes_meta(&[])
                                .iter()
                                .map(|m| m.hash.0)
                                .collect::<std::collections::HashSet<_>>()
                        });
                    let held: std::collections::HashSet<[u8; 32]> =
                        stored.iter().map(|(hash, _, _)| *hash).collect();
                    // The whole summary, not only its heads: `list` shows its title.
                    let mut cached = summary;
                    cached.heads.sort_unstable();
                    let mut expected = fresh.clone();
                    expected.heads.sort_unstable();
                    match snapshot_changes {
                        Ok(changes) => (
                            cached == expected && changes.is_subset(&held),
                            changes.len() == held.len(),
                        ),
                        Err(_) => (false, false),
                    }
                }
                _ => (false, false),
            };
            let cached_ok = cached_ok && (snapshot_current || !rebuild);
            if !cached_ok {
                if rebuild {
                    self.store()
                        .write_caches(&id, &replica.doc().save(), &fresh)?;
                    report.rebuilt += 1;
                } else {
                    report.problems.push(Problem::new(
                        ProblemKind::StaleCache,
                        format!("document {id}: cached state differs from its signed changes"),
                    ));
                }
            }
        }
        if rebuild {
            self.commit()?;
        }
        self.clear_cache();
        report.held_changes = self.held_changes();
        Ok(report)
    }
}

fn genesis_of(
    replica: &hedgerow_protocol::DocReplica,
) -> hedgerow_protocol::Signed<hedgerow_protocol::DocGenesis> {
    replica.genesis().clone()
}

/// Re-checks the evidence of a document's equivocations and lists them in the report.
fn check_evidence(report: &mut VerifyReport, id: &DocId, replica: &hedgerow_protocol::DocReplica) {
    let excluded: Vec<_> = replica.excluded().collect();
    for e in &excluded {
        if let Some(proof) = &e.record.proof {
            if let Err(err) = hedgerow_protocol::envelope::verify_change_bytes(
                &replica.commons(),
                proof,
                &e.bytes,
            ) {
                report.problems.push(Problem::new(
                    ProblemKind::BadEvidence,
                    format!(
                        "document {id}: evidence change {} does not verify: {err}",
                        e.hash
                    ),
                ));
            }
        }
        if let ExclusionReason::Twin { winner } = &e.reason {
            let built_on = excluded
                .iter()
                .filter(|o| matches!(o.reason, ExclusionReason::BuildsOn { excluded } if excluded == e.hash.0))
                .count();
            report.equivocations.push(Equivocation {
                document: id.to_string(),
                author: e.record.author.to_string(),
                seq: e.slot().map(|(_, seq)| seq).unwrap_or(0),
                kept: hex::encode(winner),
                excluded: e.hash.to_string(),
                built_on,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::home::{Home, LocalProfile};
    use crate::replicas::{NodeError, Replicas};
    use crate::store::StoreError;

    /// A store that holds signed changes but lost its manifest is reported; one whose manifest
    /// does not parse does not open (it is not treated as absent, which would turn off the
    /// damage check).
    #[test]
    fn a_missing_or_unreadable_manifest_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = LocalProfile {
            name: "Alice".into(),
            ..LocalProfile::default()
        };
        let home = Home::init(dir.path(), &profile).expect("home");
        {
            let mut replicas = Replicas::open(&home).expect("store");
            replicas.create_commons("Farm Hack", "").expect("commons");
            replicas.commit().expect("commit");
            assert!(replicas.verify(false).expect("verify").is_clean());
        }
        let manifest = home.store_path().join("hedgerow-manifest.json");
        std::fs::remove_file(&manifest).expect("remove manifest");
        {
            let mut replicas = Replicas::open(&home).expect("store opens");
            let report = replicas.verify(false).expect("verify");
            assert!(
                report
                    .problems
                    .iter()
                    .any(|p| p.kind == super::ProblemKind::ManifestMissing),
                "{:?}",
                report.problems
            );
        }
        std::fs::write(&manifest, b"{not json").expect("write");
        match Replicas::open(&home) {
            Err(NodeError::Store(StoreError::BadManifest { .. })) => {}
            Err(other) => panic!("expected a bad manifest error, got {other}"),
            Ok(_) => panic!("a store with an unreadable manifest opened"),
        }
    }
}
