//! `hedgerow demo`: the node's main job end to end in a fresh home, narrated.
//!
//! Creates a commons, a design with a bill of materials and build steps, a
//! fork under a compatible licence, a release, an event with notes from the
//! build day, and prints their signed history and a verification of the store.

use crate::output;
use anyhow::{Context, Result};
use hedgerow_node::api::{execute, Reply, Request};
use hedgerow_node::home::{Home, LocalProfile};
use hedgerow_node::Replicas;
use hedgerow_protocol::schema::{BomLine, DocKind, Edit};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The id a create, new or fork reply names.
fn id_of(reply: &Reply) -> String {
    match reply {
        Reply::CommonsCreated(c) => c.id.to_string(),
        Reply::Created(c) => c.id.to_string(),
        Reply::Forked(f) => f.id.to_string(),
        _ => String::new(),
    }
}

/// A reply as the JSON the printers read.
fn json(reply: Reply) -> Result<serde_json::Value> {
    Ok(reply.to_json()?)
}

fn set(field: &str, value: &str) -> Edit {
    Edit::Set {
        field: field.into(),
        value: value.into(),
    }
}

/// Runs the demo in `keep` or a fresh temporary directory.
pub fn run(keep: Option<&Path>) -> Result<ExitCode> {
    let dir: PathBuf = match keep {
        Some(dir) => dir.to_path_buf(),
        // A fresh folder with an unpredictable name: a fixed one in /tmp could be planted.
        None => tempfile::Builder::new()
            .prefix("hedgerow-demo-")
            .tempdir()
            .context("creating a temporary folder for the demo")?
            .keep(),
    };
    let profile = LocalProfile {
        name: "Demo Farmer".into(),
        location: "Drôme, France".into(),
        bio: "Grows vegetables on raised beds; builds her own tools.".into(),
    };
    let home = Home::init(&dir, &profile)
        .with_context(|| format!("creating the demo home in {}", dir.display()))?;
    let mut node = Replicas::open(&home)?;
    println!("== a device key: {}", node.author());

    let commons = execute(
        &mut node,
        Request::CommonsCreate {
            name: "Demo commons".into(),
            description: "Open farm tools, designed global, built local".into(),
        },
    )?;
    println!("== commons {} created", id_of(&commons));

    let design = execute(
        &mut node,
        Request::DocNew {
            commons: None,
            kind: DocKind::Design,
            title: "Roller crimper".into(),
            target: None,
            note_kind: None,
            reply_to: None,
            edits: vec![
                set("summary", "A rolling drum with chevron blades that crimps a cover crop flat so it can be planted into without tillage."),
                set("stage", "prototype"),
                set("licence.hardware", "CERN-OHL-S-2.0"),
                set("licence.documentation", "CC-BY-SA-4.0"),
                Edit::AddItem { field: "tags".into(), item: "no-till".into() },
                Edit::AddItem { field: "tags".into(), item: "cover crops".into() },
                Edit::AddBomLine { line: BomLine { name: "steel tube 406 mm".into(), quantity: Some(1.0), unit: Some("pcs".into()), sourcing: Some("scrap yard".into()), reference: None } },
                Edit::AddBomLine { line: BomLine { name: "flat bar 50x6".into(), quantity: Some(12.0), unit: Some("m".into()), sourcing: None, reference: None } },
                Edit::AddStep { text: "Cut the tube to 1.6 m and cap both ends.".into(), at: None },
                Edit::AddStep { text: "Weld ten chevron blades around the drum.".into(), at: None },
                Edit::AddStep { text: "Mount the drum on a three-point hitch frame.".into(), at: None },
            ],
        },
    )?;
    let design_id = id_of(&design);
    println!("== design {design_id} created with a bill of materials and 3 build steps");

    execute(
        &mut node,
        Request::DocEdit {
            id: design_id.clone(),
            kind: DocKind::Design,
            edits: vec![Edit::EditStep {
                step: 2,
                text: "Weld twelve chevron blades around the drum, 15 degrees apart.".into(),
            }],
        },
    )?;
    execute(
        &mut node,
        Request::Release {
            id: design_id.clone(),
            version: "1.0".into(),
        },
    )?;
    println!("== step 2 revised, then released as 1.0");

    let fork = execute(
        &mut node,
        Request::Fork {
            id: design_id.clone(),
            name: Some("Roller crimper, 1.2 m for walking tractors".into()),
            licence: vec![],
            allow_relicense: false,
        },
    )?;
    println!(
        "== fork {} made (inherits CERN-OHL-S-2.0 and the parent's history)",
        id_of(&fork)
    );

    let event = execute(
        &mut node,
        Request::DocNew {
            commons: None,
            kind: DocKind::Event,
            title: "Build day: roller crimpers".into(),
            target: None,
            note_kind: None,
            reply_to: None,
            edits: vec![
                set("kind", "build"),
                set("start", "2026-03-14"),
                set("end", "2026-03-15"),
                set("location.name", "Ferme des Trois Chênes"),
                Edit::AddItem {
                    field: "designs".into(),
                    item: design_id.clone(),
                },
            ],
        },
    )?;
    let event_id = id_of(&event);
    for (kind, text) in [
        (
            "brainstorm",
            "Blades dull fast on stony ground: try hardened flat bar.",
        ),
        (
            "build-log",
            "Built two drums; the second one with 12 blades crimps rye better.",
        ),
    ] {
        execute(
            &mut node,
            Request::DocNew {
                commons: None,
                kind: DocKind::Note,
                title: String::new(),
                target: Some(event_id.clone()),
                note_kind: Some(kind.into()),
                reply_to: None,
                edits: vec![Edit::ReplaceText {
                    field: "body".into(),
                    text: text.into(),
                }],
            },
        )?;
    }
    println!("== event {event_id} created with 2 notes");

    println!("\n== the design as released (1.0):");
    output::document(&json(execute(
        &mut node,
        Request::DocShow {
            id: design_id.clone(),
            kind: DocKind::Design,
            version: Some("1.0".into()),
        },
    )?)?);
    println!("\n== signed history of the fork (inherited changes first):");
    output::history(&json(execute(
        &mut node,
        Request::History {
            id: id_of(&fork),
            kind: DocKind::Design,
        },
    )?)?);
    println!("\n== who wrote the build steps:");
    let steps = json(execute(
        &mut node,
        Request::Blame {
            id: design_id.clone(),
            kind: DocKind::Design,
            field: "steps".into(),
        },
    )?)?;
    let mut per_step = Vec::new();
    for (i, step) in steps.as_array().into_iter().flatten().enumerate() {
        let spans = json(execute(
            &mut node,
            Request::Blame {
                id: design_id.clone(),
                kind: DocKind::Design,
                field: format!("steps.{}", i + 1),
            },
        )?)?;
        let text = step.get("text").and_then(|t| t.as_str()).unwrap_or("");
        per_step.push((text.to_string(), spans));
    }
    output::step_blame(&per_step);
    println!("\n== lineage:");
    output::lineage(&json(execute(
        &mut node,
        Request::Lineage { id: id_of(&fork) },
    )?)?);
    println!("\n== verify:");
    let report = execute(
        &mut node,
        Request::Verify {
            rebuild: false,
            quick: false,
        },
    )?;
    if let Reply::Verify(report) = &report {
        output::verify(&output::verify_report(report)?);
    }
    println!(
        "\nthe demo home is {}; look around with `hedgerow --home {} design list`",
        dir.display(),
        dir.display()
    );
    let clean = matches!(&report, Reply::Verify(report) if report.is_clean());
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
