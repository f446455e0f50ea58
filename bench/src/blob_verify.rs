//! `hedgerow verify` of attachment blobs against BLAKE3's own hashing speed of the same bytes,
//! measured in one run on this machine.
//!
//! A home gets `mb` MiB of random files attached (256 MiB each at most, the default per-file
//! limit); then, in turns, `hedgerow verify` re-hashes every blob (timed from spawn to exit,
//! its peak memory read from the kernel's accounting of that one child) and the reference
//! hashes the same blob files with `blake3::Hasher::update_reader` (single-threaded, as
//! `verify` is: BLAKE3's own reading loop). Both read the same files from the page cache after
//! the first turn; the best of the turns counts for each. A pure in-memory hash of 256 MiB is
//! reported beside them, the CPU's limit.

use anyhow::{anyhow, ensure, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Turns of each measurement; the best counts.
const TURNS: usize = 3;

/// Largest file attached (the default per-file limit).
const FILE_MB: u64 = 256;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyFigures {
    /// Blob bytes verified.
    pub bytes: u64,
    /// Blobs.
    pub files: usize,
    /// Best wall time of `hedgerow verify`, seconds.
    pub verify_s: f64,
    /// Its speed, MB/s (10^6 bytes).
    pub verify_mb_s: f64,
    /// Its peak resident memory, bytes.
    pub verify_peak_rss_bytes: u64,
    /// Best wall time of BLAKE3 `update_reader` over the same files, seconds.
    pub blake3_s: f64,
    /// Its speed, MB/s.
    pub blake3_mb_s: f64,
    /// BLAKE3 over 256 MiB already in memory, MB/s (no reading at all).
    pub blake3_memory_mb_s: f64,
    /// `verify_mb_s / blake3_mb_s`.
    pub ratio: f64,
}

/// Deterministic bytes that never repeat (xorshift), `len` of them.
fn random_file(path: &Path, len: u64, seed: u64) -> Result<()> {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

fn hedgerow(bin: &Path, home: &Path, args: &[&str]) -> Result<serde_json::Value> {
    // `init` takes no --json (it prints a line for people); every other command here does.
    let json: &[&str] = if args.first() == Some(&"init") {
        &[]
    } else {
        &["--json"]
    };
    let out = Command::new(bin)
        .arg("--home")
        .arg(home)
        .args(args)
        .args(json)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    ensure!(
        out.status.success(),
        "hedgerow {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Some commands (`init`) print no JSON; only the ids of the others are read.
    Ok(serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
}

/// Runs `hedgerow verify` once: wall seconds and the child's peak resident bytes.
fn timed_verify(bin: &Path, home: &Path) -> Result<(f64, u64)> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .arg("--home")
        .arg(home)
        .args(["verify", "--json"])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child just spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers to locals.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    // Reaped by wait4 already; this only tells std so (it answers ECHILD).
    let _ = child.wait();
    ensure!(
        got == pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "hedgerow verify failed (status {status})"
    );
    // ru_maxrss is in KiB on Linux; the child's own peak (wait4 reports that child alone).
    Ok((seconds, usage.ru_maxrss.max(0) as u64 * 1024))
}

fn blob_files(home: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(home.join("blobs"))? {
        let dir = dir?.path();
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string());
        if !dir.is_dir() || name.is_none_or(|n| n.len() != 2) {
            continue;
        }
        for file in std::fs::read_dir(&dir)? {
            out.push(file?.path());
        }
    }
    out.sort();
    Ok(out)
}

/// BLAKE3's own reading loop over `files`: seconds.
fn blake3_files(files: &[PathBuf]) -> Result<f64> {
    let start = Instant::now();
    for path in files {
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(std::fs::File::open(path)?)?;
        let hash = hasher.finalize();
        let name = path
            .parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy().to_string())
            .unwrap_or_default()
            + &path
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default();
        ensure!(
            hash.to_hex().as_str() == name,
            "{} does not hash to its name",
            path.display()
        );
    }
    Ok(start.elapsed().as_secs_f64())
}

fn blake3_memory() -> f64 {
    let data = vec![0x5au8; (FILE_MB << 20) as usize];
    let start = Instant::now();
    let hash = blake3::hash(&data);
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(hash);
    data.len() as f64 / seconds.max(1e-9) / 1e6
}

/// Attaches `mb` MiB of files in a fresh home under `workdir` and measures both.
pub fn measure(bin: &Path, mb: u64, workdir: &Path) -> Result<VerifyFigures> {
    let home = workdir.join("home");
    hedgerow(bin, &home, &["init", "--name", "Bench"])?;
    hedgerow(bin, &home, &["commons", "create", "Bench"])?;
    let design = hedgerow(bin, &home, &["design", "new", "Big"])?["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no design id"))?
        .to_string();
    let mut left = mb;
    let mut seed = 1;
    while left > 0 {
        let size = left.min(FILE_MB);
        let source = workdir.join(format!("part-{seed}.bin"));
        random_file(&source, size << 20, seed)?;
        let path = source.to_string_lossy().to_string();
        hedgerow(
            bin,
            &home,
            &["design", "attach", &design, &path, "--role", "cad"],
        )?;
        std::fs::remove_file(&source)?;
        left -= size;
        seed += 1;
    }
    let files = blob_files(&home)?;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    ensure!(
        bytes == mb << 20,
        "{bytes} bytes of blobs, {} expected",
        mb << 20
    );

    let mut verify_s = f64::MAX;
    let mut verify_rss = 0;
    let mut blake3_s = f64::MAX;
    for _ in 0..TURNS {
        blake3_s = blake3_s.min(blake3_files(&files)?);
        let (seconds, rss) = timed_verify(bin, &home)?;
        verify_s = verify_s.min(seconds);
        verify_rss = verify_rss.max(rss);
    }
    let mb_s = |s: f64| bytes as f64 / s.max(1e-9) / 1e6;
    Ok(VerifyFigures {
        bytes,
        files: files.len(),
        verify_s,
        verify_mb_s: mb_s(verify_s),
        verify_peak_rss_bytes: verify_rss,
        blake3_s,
        blake3_mb_s: mb_s(blake3_s),
        blake3_memory_mb_s: blake3_memory(),
        ratio: blake3_s / verify_s,
    })
}
