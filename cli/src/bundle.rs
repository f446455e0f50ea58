//! `hedgerow bundle`: carry signed changes on a USB stick between nodes with no link.
//!
//! The node reads and writes the files itself (so this works while `serve`
//! runs); the CLI only makes the paths absolute and prints the result.

use crate::args::JsonFlag;
use crate::output::line;
use anyhow::{Context, Result};
use clap::Subcommand;
use hedgerow_node::api::Request;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Bundle commands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write the signed changes of this node's commons to FILE, for another node to import.
    Export {
        /// The bundle file to write (replaced atomically if it exists).
        file: PathBuf,
        /// Only this commons (id or prefix); repeat for several. Default: every commons held.
        #[arg(long = "commons", value_name = "ID")]
        commons: Vec<String>,
        /// Only what the node that wrote this summary (`hedgerow bundle summary`) lacks.
        #[arg(long = "for", value_name = "SUMMARY")]
        for_summary: Option<PathBuf>,
        /// Also write the files (drawings, photos...) the documents refer to; with --for, only
        /// those the summary's node lacks.
        #[arg(long = "with-files")]
        with_files: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Write a small summary of what this node holds to FILE; another node exports `--for` it.
    Summary {
        /// The summary file to write (an older summary there is replaced; anything else only
        /// with --force).
        file: PathBuf,
        /// Replace FILE even if it is not a summary (a bundle, any other file).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Verify and store the signed changes in a bundle FILE of the commons this node holds;
    /// other commons are skipped (listed). Non-zero exit if any record was refused.
    Import {
        /// The bundle file to read.
        file: PathBuf,
        /// Also import this commons of the bundle (id or prefix), joining it: your profile is
        /// published there. Repeat for several.
        #[arg(long = "commons", value_name = "ID")]
        commons: Vec<String>,
        /// Import every commons of the bundle; those not held are replicated without joining
        /// (no profile published; `hedgerow commons join ID` does that).
        #[arg(long = "all-commons")]
        all_commons: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Runs a bundle command against the node of `home`.
pub fn run(home: &Path, command: BundleCommand) -> Result<ExitCode> {
    match command {
        BundleCommand::Export {
            file,
            commons,
            for_summary,
            with_files,
            json,
        } => {
            let request = Request::BundleExport {
                path: absolute(&file)?,
                commons,
                for_summary: for_summary.as_deref().map(absolute).transpose()?,
                with_files,
            };
            let value = crate::send(home, request)
                .with_context(|| format!("cannot export to {}", file.display()))?;
            if json.json {
                crate::output::json(&value);
            } else {
                println!(
                    "exported {} ({}) of {} commons to {}",
                    plural(count(&value, "documents"), "document"),
                    size(count(&value, "bytes")),
                    count(&value, "commons"),
                    file.display()
                );
                if let Some(files) = value.get("files") {
                    println!(
                        "with {} ({}); left out {} the summary's node holds, {} this node lacks",
                        plural(count(files, "written"), "file"),
                        size(count(files, "bytes")),
                        count(files, "already_held"),
                        count(files, "not_held")
                    );
                }
                let up_to_date = count(&value, "up_to_date");
                if up_to_date > 0 {
                    println!(
                        "left out {} the summary's node already has",
                        plural(up_to_date, "document")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BundleCommand::Summary { file, force, json } => {
            let request = Request::BundleSummary {
                path: absolute(&file)?,
                force,
            };
            let value = crate::send(home, request)
                .with_context(|| format!("cannot write a summary to {}", file.display()))?;
            if json.json {
                crate::output::json(&value);
            } else {
                println!(
                    "wrote a summary of {} in {} commons ({}) to {}",
                    plural(count(&value, "documents"), "document"),
                    count(&value, "commons"),
                    size(count(&value, "bytes")),
                    file.display()
                );
                let pending = value
                    .get("pending")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !pending.is_empty() {
                    println!(
                        "it also asks for {} commons joined and not received yet (pending):",
                        pending.len()
                    );
                    for id in &pending {
                        println!("  {}", line(id.as_str().unwrap_or("")));
                    }
                }
                println!(
                    "the other node runs `hedgerow bundle export BUNDLE --for {}`",
                    file.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BundleCommand::Import {
            file,
            commons,
            all_commons,
            json,
        } => {
            let request = Request::BundleImport {
                path: absolute(&file)?,
                commons,
                all_commons,
            };
            let value = crate::send(home, request)
                .with_context(|| format!("cannot import {}", file.display()))?;
            let rejected = value
                .get("rejected")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if json.json {
                crate::output::json(&value);
            } else {
                print_import(&value, &rejected, &file);
            }
            let added = ["commons_joined", "commons_added"].iter().any(|k| {
                value
                    .get(k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            });
            if added {
                crate::names::warn_shared_names(home)?;
            }
            let damaged = value
                .get("files")
                .and_then(|f| f.get("damaged"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for blob in &damaged {
                eprintln!(
                    "error: file {} of the bundle was not kept: {}",
                    text(blob, "hash"),
                    line(text(blob, "error"))
                );
            }
            if rejected.is_empty() && damaged.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: {} of the bundle's records were refused; nothing of them was stored",
                    rejected.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn print_import(value: &Value, rejected: &[Value], file: &Path) {
    println!(
        "imported: {} new, {} already known, {} rejected",
        count(value, "new"),
        count(value, "known"),
        rejected.len()
    );
    if let Some(files) = value.get("files") {
        println!(
            "files: {} stored ({}), {} already held, {} not used by any document here (left out)",
            count(files, "stored"),
            size(count(files, "bytes")),
            count(files, "known"),
            count(files, "unreferenced")
        );
    }
    for item in rejected {
        println!(
            "  rejected {} {}: {}",
            line(text(item, "kind")),
            line(text(item, "id")),
            line(text(item, "error"))
        );
    }
    for commons in value
        .get("commons_joined")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!("joined commons {}", line(commons.as_str().unwrap_or("")));
    }
    for commons in value
        .get("commons_added")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "now replicating commons {} (your profile is not published there)",
            commons.as_str().unwrap_or("")
        );
    }
    let skipped: Vec<&Value> = value
        .get("skipped")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    for commons in &skipped {
        println!(
            "skipped {} of commons \"{}\" ({}): this node does not hold it",
            plural(count(commons, "documents"), "document"),
            text(commons, "name"),
            text(commons, "id")
        );
    }
    if let Some(first) = skipped.first() {
        println!(
            "to import a skipped commons and join it (publishing your profile there): \
             hedgerow bundle import {} --commons {}; --all-commons imports every commons without joining",
            file.display(),
            text(first, "id")
        );
    }
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

/// `1 document`, `12 documents`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `812 bytes`, `34 KB`, `2.5 MB`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{} KB", (b + 512) / 1024),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(812), "812 bytes");
        assert_eq!(size(34 * 1024 + 100), "34 KB");
        assert_eq!(size(5 * 1024 * 1024 / 2), "2.5 MB");
    }
}
