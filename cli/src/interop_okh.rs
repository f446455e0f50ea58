//! `hedgerow import okh` and `hedgerow export okh`: arguments and printing; the node reads
//! the manifests and files (so it works the same while `serve` runs).

use crate::args::JsonFlag;
use crate::output::line;
use anyhow::{bail, Context, Result};
use clap::Args;
use hedgerow_node::api::Request;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `import okh PATH...`.
#[derive(Debug, Args)]
pub struct ImportOkhArgs {
    /// Manifests (okh.toml, okh.yml, okh-*.yml) or folders holding one at their root.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The commons the designs go to (the only one held when absent).
    #[arg(long)]
    pub commons: Option<String>,
    /// Say what would happen; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `export okh ID`.
#[derive(Debug, Args)]
pub struct ExportOkhArgs {
    /// Design id, prefix or name.
    pub id: String,
    /// `losh` (OKH-LOSH, okh.toml) or `v1` (OKH v1, okh.yml).
    #[arg(long, default_value = "losh")]
    pub format: String,
    /// Write the manifest here instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace PATH if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// Runs `import okh`; non-zero when any manifest failed.
pub fn import(home: &Path, args: ImportOkhArgs) -> Result<ExitCode> {
    let mut paths = Vec::new();
    for path in &args.paths {
        let abs = std::path::absolute(path)
            .with_context(|| format!("cannot resolve the path {}", path.display()))?;
        let text = abs
            .to_str()
            .map(str::to_string)
            .with_context(|| format!("{} is not valid UTF-8; rename it", abs.display()))?;
        if !abs.exists() {
            bail!(
                "{} does not exist; give an okh.toml, an okh.yml or a folder holding one",
                path.display()
            );
        }
        paths.push(text);
    }
    let reply = crate::send(
        home,
        Request::ImportOkh {
            paths,
            commons: args.commons,
            dry_run: args.dry_run,
        },
    )?;
    let failed = reply["failed"].as_u64().unwrap_or(0);
    if args.json.json {
        crate::output::json(&reply);
    } else {
        print_import(&reply);
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn print_import(reply: &Value) {
    let empty = Vec::new();
    for m in reply["manifests"].as_array().unwrap_or(&empty) {
        let manifest = line(str_of(m, "manifest"));
        let outcome = str_of(m, "outcome");
        if outcome == "failed" {
            eprintln!("error: {}", line(str_of(m, "error")));
            continue;
        }
        let design = line(str_of(m, "design"));
        let version = m["declared_version"]
            .as_str()
            .map(|v| format!(" {}", line(v)))
            .unwrap_or_default();
        println!(
            "{manifest} ({}{version}): {outcome}{}{}",
            str_of(m, "format"),
            if design.is_empty() {
                String::new()
            } else {
                format!(" design {design}")
            },
            match m["edits"].as_u64() {
                Some(0) | None => String::new(),
                Some(n) => format!(", {n} field edits in one change"),
            }
        );
        for e in m["mapped"].as_array().unwrap_or(&empty) {
            println!(
                "  mapped   {} -> {}: {}",
                line(str_of(e, "key")),
                line(str_of(e, "field")),
                line(str_of(e, "value"))
            );
        }
        for e in m["extra"].as_array().unwrap_or(&empty) {
            println!(
                "  extra    {} -> {}: {}",
                line(str_of(e, "key")),
                line(str_of(e, "field")),
                line(str_of(e, "value"))
            );
        }
        for e in m["dropped"].as_array().unwrap_or(&empty) {
            println!(
                "  dropped  {}: {}",
                line(str_of(e, "key")),
                line(str_of(e, "reason"))
            );
        }
        for e in m["notes"].as_array().unwrap_or(&empty) {
            let at = match e["line"].as_u64() {
                Some(0) | None => String::new(),
                Some(n) => format!("line {n}: "),
            };
            println!("  note     {at}{}", line(str_of(e, "message")));
        }
    }
    let total = reply["manifests"].as_array().map_or(0, Vec::len);
    let failed = reply["failed"].as_u64().unwrap_or(0);
    if failed > 0 {
        eprintln!("{failed} of {total} manifests failed; the others were imported");
    }
    if reply["dry_run"].as_bool() == Some(true) {
        println!("dry run: nothing was written");
    }
}

/// Runs `export okh`.
pub fn export(home: &Path, args: ExportOkhArgs) -> Result<ExitCode> {
    let reply = crate::send(
        home,
        Request::ExportOkh {
            id: args.id,
            format: args.format,
        },
    )?;
    let text = str_of(&reply, "text").to_string();
    match &args.out {
        None => {
            if args.json.json {
                crate::output::json(&reply);
            } else {
                print!("{text}");
            }
        }
        Some(out) => {
            if out.exists() && !args.force {
                bail!("{} exists; pass --force to replace it", out.display());
            }
            let dir = out
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut temp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            temp.write_all(text.as_bytes())
                .and_then(|_| temp.as_file().sync_all())
                .with_context(|| format!("cannot write {}", out.display()))?;
            temp.persist(out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if args.json.json {
                crate::output::json(&serde_json::json!({
                    "path": out.display().to_string(),
                    "format": reply["format"],
                    "design": reply["design"],
                    "bytes": text.len(),
                }));
            } else {
                println!("wrote {} ({})", out.display(), str_of(&reply, "format"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
