//! Files on a USB stick: `bundle export --with-files` writes the blobs of the commons it
//! exports after the bundle's records (file format 3, see
//! [`hedgerow_protocol::bundle_file`]), leaving out those the summary's node holds; `bundle
//! import` streams each blob into the store, verified against its hash, and reports a damaged
//! one and goes on with the next.
//!
//! Nothing here holds a whole file in memory: blobs are copied through
//! [`super::COPY_BUFFER`]-sized buffers, the bundle is written to a temp file beside its
//! destination, fsynced and renamed.

use super::store::{BlobError, BlobStore, COPY_BUFFER};
use crate::bundle::{BundleError, ExportReport, ImportChoice, ImportReport};
use crate::replicas::{NodeError, Replicas};
use hedgerow_protocol::attachment::BlobHash;
use hedgerow_protocol::bundle_file::{
    decode_blob_header, decode_summary_with_blobs, encode_blob_header, has_blob_section,
    mark_with_blobs, BLOB_HEADER_LEN, BUNDLE_MAGIC, CHECKSUM_LEN, LEN_PREFIX, MAX_RECORD_BYTES,
    RECORD_CHECK_LEN,
};
use hedgerow_protocol::CommonsId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::OnceLock;

/// What an export wrote of files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FilesExported {
    /// Blobs written.
    pub written: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs left out because the summary's node holds them.
    pub already_held: usize,
    /// Blobs documents refer to that this node does not hold (so it cannot carry them).
    pub not_held: usize,
    /// Blobs of private commons left out: always 0 since such an export is refused
    /// ([`super::files::FileError::PrivateFiles`]); kept for the JSON shape.
    pub private_withheld: usize,
}

/// What an import did with the files of a bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FilesImported {
    /// Blobs verified and stored.
    pub stored: usize,
    /// Blobs this node held already.
    pub known: usize,
    /// Bytes stored.
    pub bytes: u64,
    /// Blobs no document held here refers to, left out.
    pub unreferenced: usize,
    /// Blobs refused (damaged, over the size limit), each with why; the rest was imported.
    pub damaged: Vec<DamagedBlob>,
}

/// One blob of a bundle that was not kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DamagedBlob {
    /// The hash the bundle gives it.
    pub hash: String,
    /// Why it was refused.
    pub error: String,
}

/// Progress of a long bundle write or read: (bytes done, bytes in all).
pub type ProgressSink = Box<dyn Fn(u64, u64) + Send + Sync>;

static PROGRESS: OnceLock<ProgressSink> = OnceLock::new();

/// Sets where this process reports bundle progress (the CLI draws a bar on a terminal); a node
/// answering over the control socket has none.
pub fn set_progress(sink: ProgressSink) {
    let _ = PROGRESS.set(sink);
}

fn progress(done: u64, total: u64) {
    if let Some(sink) = PROGRESS.get() {
        sink(done, total);
    }
}

/// `bundle export --with-files`: the bundle of `commons` (ids or prefixes; all when empty) with
/// the blobs their documents refer to, less those the summary's node holds.
pub fn export_with_files(
    replicas: &mut Replicas,
    path: &Path,
    commons: &[String],
    for_summary: Option<&Path>,
) -> Result<ExportReport, NodeError> {
    crate::bundle::absolute(path)?;
    let (summary, their_blobs) = match for_summary {
        Some(summary_path) => {
            crate::bundle::absolute(summary_path)?;
            let bytes = crate::bundle::read_file(summary_path)?;
            let (summary, blobs) =
                decode_summary_with_blobs(&bytes).map_err(|error| BundleError::Summary {
                    path: summary_path.to_path_buf(),
                    error,
                })?;
            (Some(summary), blobs.into_iter().collect::<BTreeSet<_>>())
        }
        None => (None, BTreeSet::new()),
    };
    let mut ids = commons
        .iter()
        .map(|c| replicas.resolve_commons(Some(c)))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        ids = replicas
            .commons_list()?
            .iter()
            .map(|g| g.body.id())
            .collect();
    }
    if let Some(summary) = &summary {
        // The files of the commons the records carry: those the summary's node wants.
        ids.retain(|id| summary.wants(id));
    }
    let (mut records, mut report) = replicas.bundle_export(&ids, summary.as_ref())?;
    let store = replicas.blob_store();
    let mut files = FilesExported::default();
    let mut blobs: Vec<(BlobHash, u64)> = Vec::new();
    let referenced = replicas.referenced_blobs(Some(&ids))?;
    // A private commons' files would lie open on the stick (the blob section is not sealed):
    // refused before anything is written, rather than left out unnoticed.
    for referrers in referenced.values() {
        if let Some(commons) = referrers
            .commons
            .iter()
            .find(|c| replicas.privacy(c).hides())
        {
            return Err(super::files::FileError::PrivateFiles { commons: *commons }.into());
        }
    }
    for hash in referenced.into_keys() {
        if their_blobs.contains(&hash) {
            files.already_held += 1;
        } else {
            match store.size(&hash)? {
                Some(size) => blobs.push((hash, size)),
                None => files.not_held += 1,
            }
        }
    }
    mark_with_blobs(&mut records);
    let total = records.len() as u64
        + blobs
            .iter()
            .map(|(_, s)| s + BLOB_HEADER_LEN as u64)
            .sum::<u64>();
    let written = write_bundle(path, &records, &blobs, &store, total)?;
    files.written = blobs.len();
    files.bytes = blobs.iter().map(|(_, s)| s).sum();
    report.files = Some(files);
    report.bytes = written as usize;
    Ok(report)
}

/// Writes records and blobs to a temp file beside `path`, fsyncs it and renames it there.
fn write_bundle(
    path: &Path,
    records: &[u8],
    blobs: &[(BlobHash, u64)],
    store: &BlobStore,
    total: u64,
) -> Result<u64, NodeError> {
    let io = |e: io::Error| -> NodeError {
        BundleError::Io {
            path: path.to_path_buf(),
            error: e,
        }
        .into()
    };
    let name = path
        .file_name()
        .ok_or_else(|| BundleError::NotAFile(path.to_path_buf()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".hedgerow-tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    let mut out = BufWriter::with_capacity(COPY_BUFFER, temp.as_file());
    out.write_all(records).map_err(io)?;
    let mut done = records.len() as u64;
    let mut buf = vec![0u8; COPY_BUFFER];
    for (hash, size) in blobs {
        out.write_all(&encode_blob_header(Some((*hash, *size))))
            .map_err(io)?;
        done += BLOB_HEADER_LEN as u64;
        let mut blob = store.open(hash)?.take(*size);
        let mut copied = 0u64;
        loop {
            let n = blob.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io)?;
            copied += n as u64;
            done += n as u64;
            progress(done, total);
        }
        if copied != *size {
            // The blob shrank while being written (damage on disk): the bundle would lie.
            return Err(BlobError::WrongSize {
                hash: *hash,
                expected: *size,
                got: copied,
            }
            .into());
        }
    }
    out.write_all(&encode_blob_header(None)).map_err(io)?;
    out.flush().map_err(io)?;
    drop(out);
    temp.as_file().sync_all().map_err(io)?;
    let written = temp.as_file().metadata().map_err(io)?.len();
    temp.persist(path).map_err(|e| io(e.error))?;
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(written)
}

/// `bundle import`: a bundle with a blob section is read as a stream (records first, then each
/// blob verified into the store); any other bundle as before.
pub fn import_from_file(
    replicas: &mut Replicas,
    path: &Path,
    choice: &ImportChoice,
) -> Result<ImportReport, NodeError> {
    crate::bundle::absolute(path)?;
    let io = |e: io::Error| -> NodeError {
        BundleError::Io {
            path: path.to_path_buf(),
            error: e,
        }
        .into()
    };
    let file = File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::with_capacity(COPY_BUFFER, file);
    let mut head = vec![0u8; BUNDLE_MAGIC.len() + 1];
    let got = read_up_to(&mut reader, &mut head).map_err(io)?;
    head.truncate(got);
    if !has_blob_section(&head) {
        return crate::bundle::import_from_file(replicas, path, choice);
    }
    let (records, complete) = read_records_part(&mut reader, head).map_err(io)?;
    // Damaged records: what verified is imported and the damage reported, as for any bundle;
    // the blob section's start is unknown then, so its files are not read.
    let mut report = replicas.bundle_import(&records, choice)?;
    if !complete {
        return Ok(report);
    }
    let referenced = replicas.referenced_blobs(None)?;
    let limits = super::files::limits_at(&replicas.home_root)?;
    let max = limits.max_file_bytes;
    let mut files = FilesImported::default();
    let store = replicas.blob_store();
    // Bytes of distinct files held per commons, against its quota.
    let mut used: BTreeMap<CommonsId, u64> = BTreeMap::new();
    for (hash, referrers) in &referenced {
        if store.has(hash) {
            for commons in &referrers.commons {
                *used.entry(*commons).or_default() += referrers.size;
            }
        }
    }
    let mut done = records.len() as u64;
    loop {
        let mut header = [0u8; BLOB_HEADER_LEN];
        if read_up_to(&mut reader, &mut header).map_err(io)? < BLOB_HEADER_LEN {
            files.damaged.push(DamagedBlob {
                hash: String::new(),
                error: "the bundle ends inside its files; copy it again".into(),
            });
            break;
        }
        let (hash, size) = match decode_blob_header(&header) {
            Ok(Some(blob)) => blob,
            Ok(None) => break,
            Err(e) => {
                files.damaged.push(DamagedBlob {
                    hash: String::new(),
                    error: e.to_string(),
                });
                break;
            }
        };
        done += BLOB_HEADER_LEN as u64;
        let mut body = (&mut reader).take(size);
        let outcome = if !referenced.contains_key(&hash) {
            files.unreferenced += 1;
            Outcome::Skipped
        } else if store.has(&hash) {
            files.known += 1;
            Outcome::Skipped
        } else if let Some((commons, total)) = referenced[&hash]
            .commons
            .iter()
            .map(|c| (*c, used.get(c).copied().unwrap_or(0) + size))
            .find(|(_, total)| *total > limits.commons_quota_bytes)
        {
            Outcome::Refused(
                super::files::FileError::OverQuota {
                    name: referenced[&hash].describe(),
                    size,
                    commons,
                    total,
                    quota: limits.commons_quota_bytes,
                }
                .to_string(),
            )
        } else {
            let mut at = |n: u64| progress(done + n, total);
            match store.add_reader(
                &mut body,
                &format!("blob {hash}"),
                max,
                Some((hash, size)),
                &mut at,
            ) {
                Ok(added) => Outcome::Stored(added),
                // The stick or this node's disk failed: not something to skip past.
                Err(e @ BlobError::Io { .. }) => Outcome::Failed(e),
                Err(e) => Outcome::Refused(e.to_string()),
            }
        };
        // Whatever happened, the reader moves to the next blob's header.
        io::copy(&mut body, &mut io::sink()).map_err(io)?;
        let truncated = body.limit() > 0;
        done += size;
        progress(done, total);
        match outcome {
            Outcome::Stored(added) => {
                files.stored += 1;
                files.bytes += added.size;
                for commons in &referenced[&hash].commons {
                    *used.entry(*commons).or_default() += added.size;
                }
            }
            Outcome::Skipped => {}
            Outcome::Failed(e) => return Err(e.into()),
            Outcome::Refused(error) => files.damaged.push(DamagedBlob {
                hash: hash.to_hex(),
                error,
            }),
        }
        if truncated {
            let error = "the bundle ends inside this file; copy it again".to_string();
            match files.damaged.last_mut() {
                // Refused already for its size: say why in words.
                Some(last) if last.hash == hash.to_hex() => last.error = error,
                _ => files.damaged.push(DamagedBlob {
                    hash: hash.to_hex(),
                    error,
                }),
            }
            break;
        }
    }
    report.files = Some(files);
    Ok(report)
}

/// What became of one blob of a bundle.
enum Outcome {
    /// Verified and stored.
    Stored(super::store::Added),
    /// Held already, or used by no document here.
    Skipped,
    /// Refused (damaged, over a limit), with why; the next blob is read.
    Refused(String),
    /// The stick or the disk failed: the import stops.
    Failed(BlobError),
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The records part of a bundle (header, records, end, checksum), frame by frame; `false` when
/// it ended early or a length is impossible (then the bytes so far, for the decoder to report).
fn read_records_part(reader: &mut impl Read, mut out: Vec<u8>) -> io::Result<(Vec<u8>, bool)> {
    loop {
        let mut len = [0u8; LEN_PREFIX];
        let n = read_up_to(reader, &mut len)?;
        out.extend_from_slice(&len[..n]);
        if n < LEN_PREFIX {
            return Ok((out, false));
        }
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            let mut checksum = [0u8; CHECKSUM_LEN];
            let n = read_up_to(reader, &mut checksum)?;
            out.extend_from_slice(&checksum[..n]);
            return Ok((out, n == CHECKSUM_LEN));
        }
        if len > MAX_RECORD_BYTES {
            return Ok((out, false));
        }
        let start = out.len();
        out.resize(start + len + RECORD_CHECK_LEN, 0);
        let n = read_up_to(reader, &mut out[start..])?;
        if n < len + RECORD_CHECK_LEN {
            out.truncate(start + n);
            return Ok((out, false));
        }
    }
}
