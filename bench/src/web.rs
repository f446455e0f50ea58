//! The web page's speed (`hedgerow-bench web`): a generated commons served by the real
//! `hedgerow serve --web 127.0.0.1:0`, asked over loopback for the design list, a search and a
//! design page, each `requests` times on a new connection (as a phone opening the page), timed
//! from connect to the last byte of the answer.
//!
//! Reported per page: median and 95th percentile latency and the page's weight in bytes (the
//! HTML, and with the stylesheet and script every page loads; images excluded, none are
//! generated). The issue's target: under 100 ms at 5,000 designs, pages under 100 KB.

use crate::generate::{generate, GenConfig};
use crate::report::human;
use anyhow::{anyhow, ensure, Context, Result};
use hedgerow_node::home::{Home, LocalProfile};
use hedgerow_node::Replicas;
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the node may take to open its store and bind the page.
const START: Duration = Duration::from_secs(120);

/// The issue's latency target on loopback.
pub const TARGET_MS: f64 = 100.0;

/// The issue's page weight target, before images.
pub const TARGET_BYTES: u64 = 100 * 1024;

/// One page's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PageFigures {
    /// What was asked (`design list`, `search "WORD"`, `design page`).
    pub page: String,
    /// The path asked.
    pub path: String,
    /// Requests made.
    pub requests: usize,
    /// Median latency, milliseconds.
    pub median_ms: f64,
    /// 95th percentile latency, milliseconds.
    pub p95_ms: f64,
    /// The HTML's bytes.
    pub html_bytes: u64,
    /// HTML plus the stylesheet and script the page loads.
    pub weight_bytes: u64,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct WebFigures {
    /// Designs in the commons.
    pub designs: usize,
    /// Documents the node holds.
    pub documents: u64,
    /// Seconds the generator took.
    pub generate_s: f64,
    /// Each page.
    pub pages: Vec<PageFigures>,
}

/// An answer: status and body bytes.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// One GET on a new connection, read to its end.
fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    let mut stream = TcpStream::connect(addr).context("connect to the web page")?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers from {path}"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status from {path}"))?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok(Answer { status, body })
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|t| usize::from_str_radix(t.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        rest = &rest[end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// The value at fraction `q` of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// A `hedgerow serve --web` child, killed when dropped.
struct WebChild {
    child: Child,
    addr: SocketAddr,
}

impl Drop for WebChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, home: &Path) -> Result<WebChild> {
    let mut child = Command::new(bin)
        .arg("--home")
        .arg(home)
        .args([
            "serve",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--web",
            "127.0.0.1:0",
        ])
        .env("HEDGEROW_LOG", "warn")
        .env_remove("HEDGEROW_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the node's standard error to its end (so it never blocks), sending the address.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("web page on http://") {
                let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
            }
        }
    });
    let mut web = WebChild {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let text = rx
        .recv_timeout(START)
        .map_err(|_| anyhow!("the node printed no web address in {START:?}"))?;
    web.addr = text
        .parse()
        .with_context(|| format!("web address {text:?}"))?;
    Ok(web)
}

/// A word to search for: the last word of the first design's name on the list page.
fn search_word(list_html: &str) -> String {
    list_html
        .split("<a class=\"title\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|text| text.split('<').next())
        .and_then(|name| name.split_whitespace().last())
        .unwrap_or("drum")
        .to_string()
}

/// Generates `designs` designs (seed `seed`) under `workdir`, serves them with `bin` and
/// measures each page `requests` times.
pub fn measure(
    bin: &Path,
    designs: usize,
    seed: u64,
    requests: usize,
    workdir: &Path,
) -> Result<WebFigures> {
    ensure!(requests > 0, "--requests must be at least 1");
    let home_dir = workdir.join("web-home");
    let home = Home::init(
        &home_dir,
        &LocalProfile {
            name: "Web bench".into(),
            location: String::new(),
            bio: String::new(),
        },
    )?;
    let mut replicas = Replicas::open(&home)?;
    eprintln!("[web {designs}] generating the commons…");
    let generated = generate(&GenConfig { designs, seed }, &mut replicas)?;
    let documents = replicas.store().all_doc_ids()?.len() as u64;
    drop(replicas);
    drop(home);
    eprintln!(
        "[web {designs}] {documents} documents in {:.1} s; starting the node",
        generated.stats.seconds
    );
    let node = start(bin, &home_dir)?;
    let commons = generated.commons;
    let list_path = format!("/c/{commons}");
    let list = get(node.addr, &list_path)?;
    ensure!(
        list.status == 200,
        "the design list answered {}",
        list.status
    );
    let word = search_word(&String::from_utf8_lossy(&list.body));
    let design = generated
        .designs
        .get(generated.designs.len() / 2)
        .ok_or_else(|| anyhow!("no design generated"))?;
    let assets = ["/assets/app.css", "/assets/app.js"]
        .iter()
        .map(|path| get(node.addr, path).map(|a| a.body.len() as u64))
        .sum::<Result<u64>>()?;
    let pages = [
        ("design list".to_string(), list_path.clone()),
        (
            format!("search \"{word}\""),
            format!("{list_path}?q={word}"),
        ),
        (
            "design page".to_string(),
            format!("/c/{commons}/d/{design}"),
        ),
    ];
    let mut out = Vec::new();
    for (page, path) in pages {
        // One request first, untimed: the node's caches warm as they would for any visitor.
        let first = get(node.addr, &path)?;
        ensure!(first.status == 200, "{page} answered {}", first.status);
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let answer = get(node.addr, &path)?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            ensure!(answer.status == 200, "{page} answered {}", answer.status);
        }
        times.sort_by(f64::total_cmp);
        let figures = PageFigures {
            page,
            path,
            requests,
            median_ms: quantile(&times, 0.5),
            p95_ms: quantile(&times, 0.95),
            html_bytes: first.body.len() as u64,
            weight_bytes: first.body.len() as u64 + assets,
        };
        eprintln!(
            "[web {designs}] {}: median {:.1} ms, p95 {:.1} ms, {} ({} with CSS and script)",
            figures.page,
            figures.median_ms,
            figures.p95_ms,
            human(figures.html_bytes),
            human(figures.weight_bytes)
        );
        out.push(figures);
    }
    Ok(WebFigures {
        designs,
        documents,
        generate_s: generated.stats.seconds,
        pages: out,
    })
}

/// The figures as a markdown table, each against the targets.
pub fn markdown(runs: &[WebFigures]) -> String {
    let mut text = String::from(
        "| designs | page | median | p95 | HTML | with CSS+JS | under 100 ms | under 100 KB |\n|---:|---|---:|---:|---:|---:|---|---|\n",
    );
    for run in runs {
        for p in &run.pages {
            text.push_str(&format!(
                "| {} | {} | {:.1} ms | {:.1} ms | {} | {} | {} | {} |\n",
                run.designs,
                p.page,
                p.median_ms,
                p.p95_ms,
                human(p.html_bytes),
                human(p.weight_bytes),
                if p.p95_ms < TARGET_MS { "yes" } else { "no" },
                if p.weight_bytes < TARGET_BYTES {
                    "yes"
                } else {
                    "no"
                },
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_the_search_word() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(quantile(&sorted, 0.5), 3.0);
        assert_eq!(quantile(&sorted, 0.95), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        let html = r#"<li><a class="title" href="/c/x/d/y">Roller crimper</a></li>"#;
        assert_eq!(search_word(html), "crimper");
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
