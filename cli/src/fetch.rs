//! `hedgerow fetch ID`, `pin ID`, `unpin ID`, `pins`: getting a design's files from peers, and
//! the designs whose files this node always fetches.
//!
//! Fetching goes through the running node (`serve`), which holds the connections: the CLI asks
//! it over the control socket and waits until each blob is stored (verified chunk by chunk on
//! the way) or failed.

use crate::output::line;
use anyhow::{anyhow, bail, Result};
use hedgerow_node::api::{BlobWant, FetchBlobsReply, NodeRequest, Request};
use hedgerow_node::control::{self, ControlReply};
use hedgerow_protocol::attachment::BlobHash;
use hedgerow_protocol::schema::DocKind;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest the CLI waits for the node's answer to a fetch (the node answers by its own
/// deadline, `BLOB_WAIT`, before this).
const FETCH_TIMEOUT: Duration = Duration::from_secs(660);

/// Asks the running node to fetch `blobs` and waits for them (with a bar on a terminal).
pub fn through_node(home: &Path, blobs: Vec<BlobWant>) -> Result<FetchBlobsReply> {
    let total: u64 = blobs.iter().map(|b| b.size).sum();
    let progress = Progress::start(home, total);
    let request = NodeRequest::FetchBlobs { blobs, wait: true };
    let reply = ask(home, &request);
    drop(progress);
    reply
}

fn ask(home: &Path, request: &NodeRequest) -> Result<FetchBlobsReply> {
    crate::route(
        home,
        request,
        FETCH_TIMEOUT,
        |value| {
            serde_json::from_value(value)
                .map_err(|e| anyhow!("the running node answered a fetch with {e}"))
        },
        || {
            hedgerow_node::home::Home::open(home)?;
            Err(anyhow!(
                "files come from peers through the running node: start `hedgerow serve` (with a peer that has them), or import a bundle exported `--with-files`"
            ))
        },
    )
}

/// Fetches smaller than this show no bar.
const BAR_BYTES: u64 = 4 << 20;

/// A bar on standard error while a fetch runs, fed by the node's `status` (its verified bytes
/// received since the fetch began); nothing when stderr is not a terminal or the fetch is small.
struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(home: &Path, total: u64) -> Option<Self> {
        if total < BAR_BYTES || !std::io::stderr().is_terminal() {
            return None;
        }
        let socket = hedgerow_node::home::control_socket_path(home);
        let received = move || -> Option<u64> {
            match control::call(&socket, &NodeRequest::Status, Duration::from_secs(5)) {
                Ok(ControlReply::Ok(status)) => status["blob_transfer"]["bytes_received"].as_u64(),
                _ => None,
            }
        };
        let start = received()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let bar = indicatif::ProgressBar::new(total);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                ) {
                    bar.set_style(style);
                }
                while !stop.load(Ordering::Relaxed) {
                    if let Some(now) = received() {
                        bar.set_position(now.saturating_sub(start).min(total));
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                bar.finish_and_clear();
            })
        };
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `design file` of a blob not held: fetches it through the running node, or says how to get it.
pub fn missing_file(home: &Path, name: &str, hash: BlobHash, size: u64) -> Result<()> {
    let reply = through_node(
        home,
        vec![BlobWant {
            hash: hash.to_hex(),
            size,
        }],
    )
    .map_err(|e| {
        anyhow!(
            "the bytes of {} ({}) are not on this node yet: {e}",
            line(name),
            hash.short()
        )
    })?;
    if let Some(failed) = reply.failed.first() {
        bail!("could not fetch {}: {}", line(name), failed.error);
    }
    if !reply.pending.is_empty() {
        bail!(
            "no connected peer sent {} ({}) in time; it stays wanted while `serve` runs: ask again later",
            line(name),
            hash.short()
        );
    }
    Ok(())
}

/// `hedgerow fetch ID`: the design's files this node lacks.
pub fn fetch(home: &Path, id: &str, json: bool) -> Result<ExitCode> {
    let rows = crate::send(
        home,
        Request::FileList {
            id: id.to_string(),
            kind: DocKind::Design,
            version: None,
        },
    )?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let missing: Vec<&Value> = rows.iter().filter(|r| r["held"] != json!(true)).collect();
    let wants: Vec<BlobWant> = missing
        .iter()
        .filter_map(|r| {
            Some(BlobWant {
                hash: r["hash"].as_str()?.to_string(),
                size: r["size"].as_u64()?,
            })
        })
        .collect();
    let reply = if wants.is_empty() {
        FetchBlobsReply::default()
    } else {
        through_node(home, wants)?
    };
    let name_of = |hash: &str| {
        rows.iter()
            .find(|r| r["hash"].as_str() == Some(hash))
            .and_then(|r| r["name"].as_str())
            .unwrap_or(hash)
            .to_string()
    };
    if json {
        crate::output::json(&json!({
            "files": rows.len(),
            "held_before": rows.len() - missing.len(),
            "fetched": reply.stored,
            "pending": reply.pending,
            "failed": reply.failed,
        }));
    } else {
        if missing.is_empty() {
            println!("all {} files are on this node", rows.len());
        }
        for hash in &reply.stored {
            println!("fetched {}", line(&name_of(hash)));
        }
        for hash in &reply.pending {
            println!(
                "still wanted: {} (no connected peer sent it in time)",
                line(&name_of(hash))
            );
        }
        for failed in &reply.failed {
            println!("failed: {}: {}", line(&name_of(&failed.hash)), failed.error);
        }
    }
    let complete = reply.pending.is_empty() && reply.failed.is_empty();
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `hedgerow pin ID`, `unpin ID`, `pins`.
pub fn pins(home: &Path, request: Request, json: bool) -> Result<ExitCode> {
    let listing = matches!(request, Request::Pins);
    let value = crate::send(home, request)?;
    if json {
        crate::output::json(&value);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = value.as_array().cloned().unwrap_or_default();
    if listing && rows.is_empty() {
        println!("no design is pinned; `hedgerow pin ID` fetches a design's files whenever they can be had");
    }
    for row in rows {
        let id = row["id"].as_str().unwrap_or_default();
        let files = row["files"].as_u64().unwrap_or(0);
        let missing = row["missing"].as_u64().unwrap_or(0);
        let files = match files {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        match (listing, row["pinned"] == json!(true)) {
            (false, true) => println!(
                "pinned {id}: its files are fetched whenever a peer has them ({files}, {missing} not here yet)"
            ),
            (false, false) => println!("unpinned {id}"),
            (true, _) => println!("{id}  {files}, {missing} not here yet"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
