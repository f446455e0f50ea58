//! `hedgerow import farmhack`, `import farmos-equipment`, `design built` and `export
//! automerge`: arguments, one request to the node, and the printed report.

use crate::args::JsonFlag;
use crate::output;
use anyhow::{Context, Result};
use clap::Args;
use hedgerow_node::api::Request;
use hedgerow_node::interop::automerge_export::AutomergeRequest;
use hedgerow_node::interop::farmhack::FarmhackRequest;
use hedgerow_node::interop::farmos::{BuiltRequest, FarmosRequest};
use hedgerow_node::interop::InteropRequest;
use hedgerow_protocol::interop::farmos::BuiltAsset;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `import farmhack FILE`.
#[derive(Debug, Args)]
pub struct FarmhackArgs {
    /// The JSON file: a scrape of farmhack.org tool pages (see README, Importing and exporting designs).
    pub file: PathBuf,
    /// Commons name, id or prefix; needed when the node holds several.
    #[arg(long, value_name = "NAME|ID")]
    pub commons: Option<String>,
    /// Report what would be imported, writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `import farmos-equipment FILE`.
#[derive(Debug, Args)]
pub struct FarmosArgs {
    /// farmOS's equipment CSV export (Records > Assets > Equipment, Export CSV).
    pub file: PathBuf,
    /// Link a row to a design: `3=DESIGN` (row number as printed, or the asset's uuid).
    #[arg(long = "link", value_name = "ROW=DESIGN")]
    pub link: Vec<String>,
    /// Accept every suggested link.
    #[arg(long)]
    pub yes: bool,
    /// The farm's farmOS address, kept with each link on this node only (unless --public).
    #[arg(long, value_name = "URL")]
    pub farm_url: Option<String>,
    /// Put the farm's address and the serial numbers in the synced records too.
    #[arg(long)]
    pub public: bool,
    /// Commons name, id or prefix whose designs are matched; needed when the node holds several.
    #[arg(long, value_name = "NAME|ID")]
    pub commons: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `design built ID`.
#[derive(Debug, Args)]
pub struct BuiltArgs {
    /// Design id, prefix or exact name.
    pub id: String,
    /// Where it was built.
    #[arg(long)]
    pub place: Option<String>,
    /// A line about the build.
    #[arg(long)]
    pub note: Option<String>,
    /// The farmOS equipment asset it became (its UUID, from /asset/UUID or the CSV export).
    #[arg(long, value_name = "UUID")]
    pub farmos_asset: Option<String>,
    /// The farm's farmOS address (kept on this node only, unless --public).
    #[arg(long, value_name = "URL", requires = "farmos_asset")]
    pub farm_url: Option<String>,
    /// The machine's serial number (kept on this node only, unless --public).
    #[arg(long, value_name = "S", requires = "farmos_asset")]
    pub serial: Option<String>,
    /// The machine's model (shared with the commons).
    #[arg(long, value_name = "M", requires = "farmos_asset")]
    pub model: Option<String>,
    /// Share the farm's address and the serial number with the commons too.
    #[arg(long, requires = "farmos_asset")]
    pub public: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `export automerge ID`.
#[derive(Debug, Args)]
pub struct AutomergeArgs {
    /// Design (or event, note) id, prefix or exact name.
    pub id: String,
    /// The automerge file to write (automerge's own `save()` format).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write who signed each change, as JSON (README, Formats: automerge proofs).
    #[arg(long, value_name = "FILE")]
    pub with_proofs: Option<PathBuf>,
    /// Replace files that exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// The path made absolute against the current directory (a running node has its own).
fn absolute(path: &Path) -> Result<String> {
    let path = std::path::absolute(path)
        .with_context(|| format!("cannot resolve the path {}", path.display()))?;
    path.to_str().map(str::to_string).with_context(|| {
        format!(
            "{} is not valid UTF-8; rename it or choose another path",
            path.display()
        )
    })
}

/// `import farmhack`.
pub fn farmhack(home: &Path, args: FarmhackArgs) -> Result<ExitCode> {
    let request = InteropRequest::Farmhack(FarmhackRequest {
        path: absolute(&args.file)?,
        commons: args.commons,
        dry_run: args.dry_run,
    });
    let reply = crate::send(home, Request::Interop(request))?;
    if args.json.json {
        output::json(&reply);
    } else {
        print_farmhack(&reply);
    }
    Ok(if count(&reply, "failed") > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn print_farmhack(reply: &Value) {
    let dry = reply.get("dry_run").and_then(Value::as_bool) == Some(true);
    for tool in reply["tools"].as_array().into_iter().flatten() {
        let title = output::line(text(tool, "title"));
        let outcome = text(tool, "outcome");
        let design = text(tool, "design");
        match outcome {
            "failed" => println!(
                "{}. {}: not imported: {}",
                tool["position"],
                if title.is_empty() {
                    "(no title)".to_string()
                } else {
                    title
                },
                output::line(text(tool, "error"))
            ),
            _ => {
                let fields: Vec<&str> = tool["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let verb = match (dry, outcome) {
                    (true, "created") => "would be created",
                    (true, "updated") => "would change",
                    (_, o) => o,
                };
                print!("{}. {title}: {verb}", tool["position"]);
                if !design.is_empty() {
                    print!(" ({design})");
                }
                if !fields.is_empty() {
                    print!("; fields: {}", fields.join(", "));
                }
                let notes = count(tool, "notes_created");
                if notes > 0 {
                    print!("; {}", output::plural(notes, "comment note"));
                }
                println!();
            }
        }
        for related in tool["related"].as_array().into_iter().flatten() {
            println!(
                "   related: {} {}",
                text(related, "kind"),
                text(related, "design")
            );
        }
        for link in tool["links"].as_array().into_iter().flatten() {
            println!(
                "   kept as a link: {} {}",
                text(link, "kind"),
                output::line(text(link, "target"))
            );
        }
        for dropped in tool["dropped"].as_array().into_iter().flatten() {
            println!(
                "   not imported: {}: {}",
                output::line(text(dropped, "field")),
                output::line(text(dropped, "reason"))
            );
        }
    }
    println!(
        "{} created, {} updated, {} unchanged, {} failed{}",
        count(reply, "created"),
        count(reply, "updated"),
        count(reply, "unchanged"),
        count(reply, "failed"),
        if dry {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
}

/// `design built`.
pub fn built(home: &Path, args: BuiltArgs) -> Result<ExitCode> {
    let asset = args.farmos_asset.map(|uuid| BuiltAsset {
        uuid,
        farm_url: args.farm_url,
        serial: args.serial,
        model: args.model,
    });
    let request = InteropRequest::Built(BuiltRequest {
        id: args.id,
        place: args.place,
        note: args.note,
        asset,
        public: args.public,
    });
    let reply = crate::send(home, Request::Interop(request))?;
    if args.json.json {
        output::json(&reply);
        return Ok(ExitCode::SUCCESS);
    }
    println!("recorded that you built {}", text(&reply, "id"));
    if let Some(asset) = reply.get("asset").and_then(Value::as_str) {
        println!("farmOS asset: {asset}");
    }
    let local: Vec<&str> = reply["kept_local"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !local.is_empty() {
        println!(
            "kept on this node only (not synced): {}; pass --public to share them",
            local.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `import farmos-equipment`.
pub fn farmos(home: &Path, args: FarmosArgs) -> Result<ExitCode> {
    let request = InteropRequest::FarmosEquipment(FarmosRequest {
        path: absolute(&args.file)?,
        commons: args.commons,
        links: args.link,
        yes: args.yes,
        farm_url: args.farm_url,
        public: args.public,
    });
    let reply = crate::send(home, Request::Interop(request))?;
    if args.json.json {
        output::json(&reply);
        return Ok(ExitCode::SUCCESS);
    }
    let mut offered = false;
    for row in reply["rows"].as_array().into_iter().flatten() {
        let n = &row["row"];
        if let Some(error) = row.get("error").and_then(Value::as_str) {
            println!("{n}. skipped: {}", output::line(error));
            continue;
        }
        let asset = &row["asset"];
        print!(
            "{n}. {} ({})",
            output::line(text(asset, "name")),
            text(asset, "uuid")
        );
        if let Some(linked) = row.get("linked").and_then(Value::as_str) {
            if row["already_linked"].as_bool() == Some(true) {
                println!(": already linked to {linked}");
            } else {
                println!(": linked to {linked}");
            }
        } else if let Some(s) = row.get("suggestion").filter(|s| s.is_object()) {
            offered = true;
            println!(
                ": did you mean design \"{}\" ({})? link it with --link {n}={}",
                output::line(text(s, "name")),
                text(s, "design"),
                text(s, "design")
            );
        } else {
            println!(": no design with a similar name; link one with --link {n}=DESIGN");
        }
    }
    println!("{} linked", output::plural(count(&reply, "linked"), "row"));
    if offered {
        println!("accept every suggestion with --yes");
    }
    Ok(ExitCode::SUCCESS)
}

/// `export automerge`.
pub fn automerge(home: &Path, args: AutomergeArgs) -> Result<ExitCode> {
    let request = InteropRequest::Automerge(AutomergeRequest {
        id: args.id,
        out: absolute(&args.out)?,
        proofs: args.with_proofs.as_deref().map(absolute).transpose()?,
        force: args.force,
    });
    let reply = crate::send(home, Request::Interop(request))?;
    if args.json.json {
        output::json(&reply);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "wrote {} ({} bytes, {}) in automerge's format",
        text(&reply, "path"),
        count(&reply, "bytes"),
        output::plural(count(&reply, "changes"), "change")
    );
    if let Some(proofs) = reply.get("proofs").and_then(Value::as_str) {
        println!(
            "wrote {proofs} ({})",
            output::plural(count(&reply, "signatures"), "signature")
        );
    }
    Ok(ExitCode::SUCCESS)
}
