//! The generator writes valid Hedgerow data: every stored change carries its author's
//! signature, every document rebuilds from its stored changes through the same checks a node
//! makes on what it receives (signatures, coverage, schema, history rules), and the summary it
//! wrote is the one the node would compute from the rebuilt document.

use hedgerow_bench::generate::{generate, GenConfig};
use hedgerow_node::home::{Home, LocalProfile};
use hedgerow_node::replicas::summarize;
use hedgerow_node::Replicas;
use hedgerow_protocol::DocReplica;

#[test]
fn a_generated_commons_rebuilds_with_every_signature_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = LocalProfile {
        name: "Seed".into(),
        ..LocalProfile::default()
    };
    let home = Home::init(&dir.path().join("seed"), &profile).expect("home");
    let mut replicas = Replicas::open(&home).expect("store");
    // Enough designs for forks (they inherit signed changes) and concurrent edits.
    let generated = generate(
        &GenConfig {
            designs: 40,
            seed: 7,
        },
        &mut replicas,
    )
    .expect("generate");
    assert!(generated.stats.forks > 0, "{:?}", generated.stats);
    assert!(
        generated.stats.concurrent_changes > 0,
        "{:?}",
        generated.stats
    );
    let store = replicas.store();
    let ids = store.all_doc_ids().expect("ids");
    let mut changes = 0;
    for id in &ids {
        let genesis = store.doc_genesis(id).expect("read").expect("genesis");
        let stored = store.changes(id).expect("changes");
        let mut proved = Vec::with_capacity(stored.len());
        for (hash, bytes, record) in stored {
            let record = record.unwrap_or_else(|| panic!("change {hash:?} of {id} has no record"));
            let proof = record
                .proof
                .unwrap_or_else(|| panic!("change {hash:?} of {id} is unsigned"));
            proved.push((bytes, Some(proof)));
        }
        changes += proved.len();
        let rebuilt = DocReplica::rebuild(genesis, proved)
            .unwrap_or_else(|e| panic!("{id} does not rebuild from its signed changes: {e}"));
        let summary = store.summary(id).expect("read").expect("summary");
        assert_eq!(summary, summarize(&rebuilt), "summary of {id}");
    }
    // Every change the generator made is stored (forks hold their parent's too).
    assert!(changes >= generated.stats.changes, "{changes} stored");
    assert_eq!(
        ids.len(),
        generated.stats.designs
            + generated.stats.events
            + generated.stats.notes
            + generated.stats.profiles
    );
}
