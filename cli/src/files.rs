//! `design attach/files/file/detach`, `note attach/files/file/detach` and `hedgerow gc`.
//!
//! The node stores and records files (so attaching works the same while `serve` runs); the CLI
//! makes paths absolute and, for `design file`, copies the blob out of the home's blob store
//! itself (blobs are immutable once stored, so reading needs no lock), checking its hash as it
//! copies.

use crate::args::{DesignCommand, JsonFlag, NoteCommand};
use crate::output::line;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use hedgerow_node::api::Request;
use hedgerow_node::blobs::{BlobStore, COPY_BUFFER};
use hedgerow_protocol::attachment::BlobHash;
use hedgerow_protocol::schema::DocKind;
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `attach ID FILE`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Design or note id or prefix.
    pub id: String,
    /// The file to attach (its name is what others see).
    pub file: PathBuf,
    /// What it is: drawing, photo, plan, cad, bom, manual or other.
    #[arg(long, default_value = "other")]
    pub role: String,
    /// The build step (1-based) it illustrates (designs).
    #[arg(long, value_name = "N")]
    pub step: Option<usize>,
    /// A line about it.
    #[arg(long, value_name = "TEXT")]
    pub caption: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `files ID`.
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Design or note id or prefix.
    pub id: String,
    /// The files of this release instead of the current ones.
    #[arg(long)]
    pub version: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `file ID NAME|HASH`.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// Design or note id or prefix.
    pub id: String,
    /// The file's name, or 4 or more characters of its hash.
    pub file: String,
    /// Write it here instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace PATH if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// The file as a release had it.
    #[arg(long)]
    pub version: Option<String>,
}

/// `detach ID NAME|HASH`.
#[derive(Debug, Args)]
pub struct DetachArgs {
    /// Design or note id or prefix.
    pub id: String,
    /// The file's name, or 4 or more characters of its hash.
    pub file: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// A file command of `design` or `note`.
pub enum FileCommand {
    /// `attach`.
    Attach(AttachArgs),
    /// `files`.
    Files(FilesArgs),
    /// `file`.
    File(FileArgs),
    /// `detach`.
    Detach(DetachArgs),
}

impl FileCommand {
    /// The file command among design commands, or the command back.
    pub fn of_design(command: DesignCommand) -> Result<FileCommand, Box<DesignCommand>> {
        match command {
            DesignCommand::Attach(a) => Ok(FileCommand::Attach(a)),
            DesignCommand::Files(a) => Ok(FileCommand::Files(a)),
            DesignCommand::File(a) => Ok(FileCommand::File(a)),
            DesignCommand::Detach(a) => Ok(FileCommand::Detach(a)),
            other => Err(Box::new(other)),
        }
    }

    /// The file command among note commands, or the command back.
    pub fn of_note(command: NoteCommand) -> Result<FileCommand, Box<NoteCommand>> {
        match command {
            NoteCommand::Attach(a) => Ok(FileCommand::Attach(a)),
            NoteCommand::Files(a) => Ok(FileCommand::Files(a)),
            NoteCommand::File(a) => Ok(FileCommand::File(a)),
            NoteCommand::Detach(a) => Ok(FileCommand::Detach(a)),
            other => Err(Box::new(other)),
        }
    }
}

/// Runs a file command against the node of `home`.
pub fn run(home: &Path, kind: DocKind, command: FileCommand) -> Result<ExitCode> {
    match command {
        FileCommand::Attach(a) => {
            let path = std::path::absolute(&a.file)
                .with_context(|| format!("cannot resolve the path {}", a.file.display()))?;
            // Refused here with the plain reason, before the node is asked.
            let meta = std::fs::metadata(&path)
                .map_err(|e| anyhow!("cannot attach {}: {}", a.file.display(), io_reason(&e)))?;
            if !meta.is_file() {
                bail!("cannot attach {}: it is not a file", a.file.display());
            }
            let path = path
                .to_str()
                .map(str::to_string)
                .with_context(|| format!("{} is not valid UTF-8; rename it", path.display()))?;
            let request = Request::FileAttach {
                id: a.id,
                kind,
                path,
                role: Some(a.role),
                step: a.step,
                caption: a.caption,
            };
            let value = crate::send(home, request)
                .with_context(|| format!("cannot attach {}", a.file.display()))?;
            if a.json.json {
                crate::output::json(&value);
            } else {
                let stored = value.get("stored").and_then(Value::as_bool) == Some(true);
                println!(
                    "attached {} ({}, {}) as {}{}",
                    line(text(&value, "name")),
                    text(&value, "media_type"),
                    size(count(&value, "size")),
                    short(text(&value, "hash")),
                    if stored {
                        ""
                    } else {
                        "; its bytes were already stored here"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FileCommand::Files(a) => {
            let request = Request::FileList {
                id: a.id,
                kind,
                version: a.version,
            };
            let value = crate::send(home, request)?;
            if a.json.json {
                crate::output::json(&value);
            } else {
                print_files(&value);
            }
            Ok(ExitCode::SUCCESS)
        }
        FileCommand::File(a) => get(home, kind, a),
        FileCommand::Detach(a) => {
            let request = Request::FileDetach {
                id: a.id,
                kind,
                file: a.file,
            };
            let value = crate::send(home, request)?;
            if a.json.json {
                crate::output::json(&value);
            } else {
                println!(
                    "detached {} ({}); `hedgerow gc` frees its bytes once nothing refers to them",
                    line(text(&value, "name")),
                    short(text(&value, "hash"))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `design file`: finds the file, then copies its blob out, hashing it on the way.
fn get(home: &Path, kind: DocKind, a: FileArgs) -> Result<ExitCode> {
    if let Some(out) = &a.out {
        if out.exists() && !a.force {
            bail!(
                "{} exists; choose another --out or add --force to replace it",
                out.display()
            );
        }
    }
    let request = Request::FileFind {
        id: a.id,
        kind,
        file: a.file,
        version: a.version,
    };
    let value = crate::send(home, request)?;
    let name = text(&value, "name").to_string();
    let hash: BlobHash = text(&value, "hash")
        .parse()
        .map_err(|e| anyhow!("the node answered with {e}"))?;
    let store = BlobStore::new(home);
    if !store.has(&hash) {
        // Not here yet: the running node fetches it from its peers, verified as it comes.
        let size = value.get("size").and_then(Value::as_u64).unwrap_or(0);
        crate::fetch::missing_file(home, &name, hash, size)?;
    }
    let mut blob = store
        .open(&hash)
        .with_context(|| format!("cannot read {}", line(&name)))?;
    match &a.out {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let found = copy_hashing(&mut blob, &mut out)?;
            out.flush()?;
            check(found, hash, &name)?;
        }
        Some(path) => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            let mut temp = tempfile::Builder::new()
                .prefix(".hedgerow-file-")
                .tempfile_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            let found = copy_hashing(&mut blob, temp.as_file_mut())?;
            check(found, hash, &name)?;
            temp.as_file()
                .sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
            if a.force {
                temp.persist(path)
            } else {
                temp.persist_noclobber(path)
            }
            .map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error))?;
            eprintln!("wrote {} to {}", line(&name), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies through a fixed buffer, hashing; the hash of what was copied.
fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> Result<BlobHash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(BlobHash(*hasher.finalize().as_bytes()))
}

/// Refuses a copy whose bytes do not hash to the file's hash.
fn check(found: BlobHash, hash: BlobHash, name: &str) -> Result<()> {
    if found != hash {
        bail!(
            "the stored bytes of {} are damaged (they hash to {}, not {}); run `hedgerow verify`",
            line(name),
            found.short(),
            hash.short()
        );
    }
    Ok(())
}

/// `hedgerow gc`.
pub fn gc(home: &Path, json: bool) -> Result<ExitCode> {
    let value = crate::send(home, Request::Gc)?;
    if json {
        crate::output::json(&value);
        return Ok(ExitCode::SUCCESS);
    }
    let removed = value
        .get("removed")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for blob in &removed {
        println!(
            "removed {} ({})",
            short(text(blob, "hash")),
            size(count(blob, "size"))
        );
    }
    let partials = count(&value, "partials_removed");
    println!(
        "freed {} ({} files{}); kept {} files documents or releases refer to",
        size(count(&value, "bytes_freed")),
        removed.len(),
        if partials > 0 {
            format!(", {partials} unfinished downloads")
        } else {
            String::new()
        },
        count(&value, "kept")
    );
    Ok(ExitCode::SUCCESS)
}

fn print_files(value: &Value) {
    let rows = value.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no files attached");
    }
    for row in rows {
        let step = row
            .get("step")
            .and_then(Value::as_u64)
            .map(|s| format!("  step {s}"))
            .unwrap_or_default();
        let caption = text(&row, "caption");
        println!(
            "{}  {}  {}  {}  {}{}{}{}",
            short(text(&row, "hash")),
            text(&row, "role"),
            size(count(&row, "size")),
            line(text(&row, "media_type")),
            line(text(&row, "name")),
            step,
            if caption.is_empty() {
                String::new()
            } else {
                format!("  \"{}\"", line(caption))
            },
            if row.get("held").and_then(Value::as_bool) == Some(true) {
                ""
            } else {
                "  (not on this node yet)"
            }
        );
    }
}

/// Draws a bar on standard error for bundle writes and reads over a few MB, when it is a
/// terminal (the node reports progress only when this process does the work).
pub fn install_progress() {
    const FEW_MB: u64 = 4 * 1024 * 1024;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let bar: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    hedgerow_node::blobs::bundle::set_progress(Box::new(move |done, total| {
        if total < FEW_MB {
            return;
        }
        let Ok(mut bar) = bar.lock() else { return };
        let bar = bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
        }
    }));
}

/// An I/O error in words, without the OS's error number.
fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// `812 bytes`, `34 KB`, `2.5 MB`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{} KB", (b + 512) / 1024),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}
