//! The sneakernet file formats: a bundle of signed changes carried on a USB
//! stick between nodes that never see each other, and the summary a node
//! writes so the other side can export only what it lacks.
//!
//! A bundle file:
//!
//! ```text
//! "HEDGEROW-BUNDLE" | format byte
//! { length: u32 little-endian (1..=64 MiB) | record: versioned postcard of a [`Record`]
//!   | check: first 8 bytes of BLAKE3(length | record) }*
//! 0u32 (end of records)
//! BLAKE3 of every byte above (32 bytes)
//! ```
//!
//! Records are grouped by commons (each commons' genesis first), commons and
//! documents sorted by id, a document's genesis before its changes, and
//! nothing time-dependent is written, so the same content always gives the
//! same bytes. A document's changes travel as the sync protocol sends them: a
//! [`DocPayload`] with the changes in compact form and the few signatures
//! that cover it.
//!
//! Decoding goes record by record and keeps what it decoded before any damage
//! (a truncated copy, a flipped bit), returning it with the error: the importer
//! verifies every signature anyway, so it can keep the good part of a file
//! that was pulled out of the laptop too early. Each record's own check stops
//! decoding at the first damaged record, so damaged bytes never reach the
//! automerge parser; the file checksum proves the whole file (order, end)
//! arrived as written. Checksums catch accidents only: trust comes from the
//! signatures inside.
//!
//! A summary file: `"HEDGEROW-SUMMARY" | format byte | versioned postcard of the
//! [`Summary`]'s body | BLAKE3 of every byte before it`. Format 1 (the first releases') holds
//! `{commons}`, what its node holds; format 2 adds `pending`, the commons its node asked for
//! and does not hold yet, so that together they name every commons the node wants. Both are
//! read; format 2 is written.
//! Format 3 (written when its node holds attachment blobs) adds `blobs`, the hashes of the
//! blobs held, so an export `--with-files` leaves them out.
//!
//! A bundle written with files (format 3) is a format 1 or 2 bundle (its records and checksum,
//! with the format byte 3) followed by a blob section, which is streamed, never held whole:
//!
//! ```text
//! { hash: 32 bytes | size: u64 LE | check: first 8 bytes of BLAKE3(hash | size) | size bytes }*
//! 32 zero bytes | 0u64 | check (end of blobs)
//! ```
//!
//! Blobs are sorted by hash. Each blob proves itself (its bytes must hash to its name), so a
//! damaged one is skipped and the next read; a damaged header ends the section.

use crate::attachment::BlobHash;
use crate::encoding::{decode, encode, DecodeError};
use crate::genesis::{CommonsGenesis, CommonsId, DocGenesis, DocId, Signed};
use crate::sync::{Clock, DocPayload, HeadsDigest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// First bytes of every bundle file.
pub const BUNDLE_MAGIC: &[u8] = b"HEDGEROW-BUNDLE";
/// First bytes of every summary file.
pub const SUMMARY_MAGIC: &[u8] = b"HEDGEROW-SUMMARY";
/// The file format of bundles without sealed records and of summaries (the first release's;
/// still written when nothing is sealed, so the first release reads such bundles).
pub const FILE_FORMAT_V1: u8 = 1;
/// The file format of a bundle that holds [`Record::Sealed`] records (a private commons').
pub const FILE_FORMAT_V2: u8 = 2;
/// The file format of a bundle followed by a blob section (`bundle export --with-files`), and
/// of a summary that lists the blobs its node holds.
pub const FILE_FORMAT_V3: u8 = 3;
/// The summary format that lists blobs held.
pub const SUMMARY_FORMAT_V3: u8 = 3;
/// Bytes of one blob header of a bundle's blob section.
pub const BLOB_HEADER_LEN: usize = 32 + 8 + 8;
/// Largest record a bundle may hold; a larger length prefix means a damaged file.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of the trailing BLAKE3 checksum.
pub const CHECKSUM_LEN: usize = 32;
/// Bytes of a record's length prefix.
pub const LEN_PREFIX: usize = 4;
/// Bytes of a record's own check (a BLAKE3 prefix: enough against accidents, not meant against forgers).
pub const RECORD_CHECK_LEN: usize = 8;

/// Which of the two sneakernet files is meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A bundle of signed changes.
    Bundle,
    /// A summary of what a node holds.
    Summary,
}

impl FileKind {
    fn magic(self) -> &'static [u8] {
        match self {
            FileKind::Bundle => BUNDLE_MAGIC,
            FileKind::Summary => SUMMARY_MAGIC,
        }
    }

    fn other(self) -> FileKind {
        match self {
            FileKind::Bundle => FileKind::Summary,
            FileKind::Summary => FileKind::Bundle,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Bundle => "bundle",
            FileKind::Summary => "bundle summary",
        })
    }
}

/// One record of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A commons' signed genesis; the documents after it belong to it.
    Commons(Signed<CommonsGenesis>),
    /// A document's signed genesis, for a receiver that lacks the document.
    DocGenesis(Signed<DocGenesis>),
    /// A document's changes the receiver lacks, with the signatures that cover them.
    Changes(DocPayload),
    /// A record of a private commons, sealed under the commons' bundle key
    /// ([`crate::private::bundle_key`]): only a holder of its genesis opens it (file format 2).
    Sealed {
        /// The commons it belongs to (bound to the ciphertext).
        commons: CommonsId,
        /// `nonce | XChaCha20-Poly1305(versioned postcard of the inner record)`.
        sealed: Vec<u8>,
    },
}

/// Domain of the deterministic nonce of a sealed record.
const DOMAIN_SEAL_NONCE: &str = "hedgerow 2026-11 private commons bundle nonce v1";

/// Why a sealed record did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The record is not sealed.
    #[error("the record is not sealed")]
    NotSealed,
    /// The key does not open it (another commons' key, or altered bytes).
    #[error(transparent)]
    Seal(#[from] crate::private::SealError),
    /// It opened but the inner record does not decode, or is itself sealed.
    #[error("a sealed bundle record opened but does not hold a record: {0}")]
    Inner(String),
}

impl Record {
    /// Seals this record for `commons` under `key`. The nonce is derived from the key and the
    /// record, so a bundle stays deterministic (equal records give equal bytes, which shows
    /// only that two bundles carry the same record).
    pub fn seal(&self, commons: CommonsId, key: &[u8; 32]) -> Record {
        let plain = encode(self);
        let mut hasher = blake3::Hasher::new_keyed(key);
        hasher.update(DOMAIN_SEAL_NONCE.as_bytes());
        hasher.update(&plain);
        let mut nonce = [0u8; crate::private::NONCE_LEN];
        nonce.copy_from_slice(&hasher.finalize().as_bytes()[..crate::private::NONCE_LEN]);
        Record::Sealed {
            commons,
            sealed: crate::private::seal(key, nonce, commons.as_bytes(), &plain),
        }
    }

    /// Opens a sealed record with its commons' bundle key.
    ///
    /// Errors: [`OpenError::NotSealed`], [`OpenError::Seal`], [`OpenError::Inner`].
    pub fn open(&self, key: &[u8; 32]) -> Result<Record, OpenError> {
        let Record::Sealed { commons, sealed } = self else {
            return Err(OpenError::NotSealed);
        };
        let plain = crate::private::open(key, commons.as_bytes(), sealed)?;
        match decode::<Record>(&plain, "sealed bundle record") {
            Ok(Record::Sealed { .. }) => Err(OpenError::Inner("a sealed record inside".into())),
            Ok(record) => Ok(record),
            Err(e) => Err(OpenError::Inner(e.to_string())),
        }
    }
}

/// What a bundle carries of one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocSection {
    /// The document.
    pub doc: DocId,
    /// Its genesis, when the receiver lacks the document.
    pub genesis: Option<Signed<DocGenesis>>,
    /// Its changes the receiver lacks, if any.
    pub changes: Option<DocPayload>,
}

/// What a bundle carries of one commons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommonsSection {
    /// The commons' genesis (always written: it names the commons the documents belong to).
    pub genesis: Signed<CommonsGenesis>,
    /// Its documents.
    pub docs: Vec<DocSection>,
}

/// What one node holds and wants, written to a summary file for another node's export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Every commons held, sorted by id.
    pub commons: Vec<CommonsState>,
    /// Commons its node asked for (`commons join`) and does not hold yet, sorted by id.
    pub pending: Vec<CommonsId>,
    /// Whether it names every commons its node wants (held or pending): true for format 2,
    /// false for a format-1 summary (the previous release's), which lists only what is held.
    pub names_wants: bool,
}

/// The body of a format-1 summary file.
#[derive(Serialize, Deserialize)]
struct SummaryBodyV1 {
    commons: Vec<CommonsState>,
}

/// The body of a format-2 summary file.
#[derive(Serialize, Deserialize)]
struct SummaryBodyV2 {
    commons: Vec<CommonsState>,
    pending: Vec<CommonsId>,
}

/// The body of a format-3 summary file: format 2's and the blobs its node holds, sorted.
#[derive(Serialize, Deserialize)]
struct SummaryBodyV3 {
    commons: Vec<CommonsState>,
    pending: Vec<CommonsId>,
    blobs: Vec<BlobHash>,
}

/// What a node holds of one commons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommonsState {
    /// The commons.
    pub commons: CommonsId,
    /// Every document held, sorted by id.
    pub docs: Vec<DocState>,
}

/// What a node holds of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocState {
    /// The document.
    pub doc: DocId,
    /// Digest of its heads (as in the sync inventory), to skip documents already in step.
    pub digest: HeadsDigest,
    /// Per-author heights (as in a sync fetch), to send only the changes above them.
    pub clock: Clock,
}

impl Summary {
    /// What the summary says of `commons`, if its maker holds it.
    pub fn commons(&self, commons: &CommonsId) -> Option<&CommonsState> {
        self.commons.iter().find(|c| c.commons == *commons)
    }

    /// Number of documents listed, over all commons.
    pub fn doc_count(&self) -> usize {
        self.commons.iter().map(|c| c.docs.len()).sum()
    }

    /// Whether its node wants `commons`: holds it or asked for it. A node that holds and
    /// asked for nothing yet (a first trip) has chosen nothing, so it is offered everything
    /// (its import takes only the commons named with `--commons`); so is the node of a
    /// format-1 summary, which does not say what it wants (as that release did).
    pub fn wants(&self, commons: &CommonsId) -> bool {
        let chose_nothing = self.commons.is_empty() && self.pending.is_empty();
        !self.names_wants
            || chose_nothing
            || self.commons(commons).is_some()
            || self.pending.contains(commons)
    }
}

/// Why a bundle or summary file could not be written or read (in full).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleFileError {
    /// The file does not start with the expected magic bytes.
    #[error("this is not a Hedgerow {expected} file (it does not start with `{}`)", String::from_utf8_lossy(expected.magic()))]
    NotHedgerowFile {
        /// The file kind expected.
        expected: FileKind,
    },
    /// A bundle given where a summary was expected, or the other way round.
    #[error("this is a Hedgerow {found} file, not a {expected} file")]
    WrongKind {
        /// The file kind expected.
        expected: FileKind,
        /// The file kind found.
        found: FileKind,
    },
    /// Written by a newer Hedgerow.
    #[error("{kind} file has format version {version}; this build reads versions {FILE_FORMAT_V1} to {FILE_FORMAT_V3}; upgrade hedgerow")]
    UnsupportedVersion {
        /// The file kind.
        kind: FileKind,
        /// The version byte found.
        version: u8,
    },
    /// The file ends before its checksum: an interrupted copy.
    #[error("{kind} file is truncated: it ends at byte {len}, inside the {part} that starts at byte {offset}; copy it again")]
    Truncated {
        /// The file kind.
        kind: FileKind,
        /// The file's length.
        len: usize,
        /// Which part was cut: header, record length, record, checksum.
        part: &'static str,
        /// Where that part starts.
        offset: usize,
    },
    /// A length prefix over [`MAX_RECORD_BYTES`]: damage, or a record too big to write.
    #[error("bundle record {index} at byte {offset} is {len} bytes, over the {MAX_RECORD_BYTES}-byte limit")]
    RecordTooLarge {
        /// The record's position, from 0.
        index: usize,
        /// Where its length prefix starts.
        offset: usize,
        /// The length claimed.
        len: usize,
    },
    /// A record's bytes do not match its own check.
    #[error(
        "bundle record {index} at byte {offset} is damaged: its check does not match its bytes"
    )]
    RecordChecksum {
        /// The record's position, from 0.
        index: usize,
        /// Where its length prefix starts.
        offset: usize,
    },
    /// A record's bytes do not decode.
    #[error("bundle record {index} at byte {offset} is damaged: {source}")]
    BadRecord {
        /// The record's position, from 0.
        index: usize,
        /// Where its length prefix starts.
        offset: usize,
        /// Why it does not decode.
        source: DecodeError,
    },
    /// The summary body does not decode.
    #[error("bundle summary is damaged: {0}")]
    BadSummary(DecodeError),
    /// Bytes after the checksum.
    #[error("{kind} file has {extra} unexpected bytes after its checksum")]
    TrailingBytes {
        /// The file kind.
        kind: FileKind,
        /// How many.
        extra: usize,
    },
    /// The content does not match the checksum: damaged in transit or on the stick.
    #[error("{kind} file's checksum does not match its content: the file was damaged on the way; copy it again")]
    ChecksumMismatch {
        /// The file kind.
        kind: FileKind,
    },
}

/// A decoded bundle: the records read before any damage, and the damage if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedBundle {
    /// Records that decoded, in file order (each still to be verified by the importer).
    pub records: Vec<Record>,
    /// What was wrong with the file, if anything; records after it are lost.
    pub damage: Option<BundleFileError>,
}

impl DecodedBundle {
    /// The records if the file was intact, else the damage.
    pub fn into_result(self) -> Result<Vec<Record>, BundleFileError> {
        match self.damage {
            None => Ok(self.records),
            Some(damage) => Err(damage),
        }
    }
}

/// Writes a bundle: commons and documents sorted by id, so equal content gives equal bytes.
///
/// Fails only with [`BundleFileError::RecordTooLarge`] when one document's changes exceed
/// [`MAX_RECORD_BYTES`].
pub fn encode_bundle(sections: Vec<CommonsSection>) -> Result<Vec<u8>, BundleFileError> {
    encode_bundle_sealed(sections, &BTreeMap::new())
}

/// Writes a bundle as [`encode_bundle`] does, sealing every record of each commons named in
/// `keys` (its genesis included) under its key; such a file is format version 2.
pub fn encode_bundle_sealed(
    mut sections: Vec<CommonsSection>,
    keys: &BTreeMap<CommonsId, [u8; 32]>,
) -> Result<Vec<u8>, BundleFileError> {
    sections.sort_by_key(|s| s.genesis.body.id());
    let mut records = Vec::new();
    for mut section in sections {
        section.docs.sort_by_key(|d| d.doc);
        let commons = section.genesis.body.id();
        let mut plain = vec![Record::Commons(section.genesis)];
        for doc in section.docs {
            plain.extend(doc.genesis.map(Record::DocGenesis));
            plain.extend(doc.changes.map(Record::Changes));
        }
        match keys.get(&commons) {
            Some(key) => records.extend(plain.iter().map(|r| r.seal(commons, key))),
            None => records.extend(plain),
        }
    }
    encode_records(&records)
}

/// Writes `records` as a bundle file in the order given (use [`encode_bundle`] for the canonical order).
pub fn encode_records(records: &[Record]) -> Result<Vec<u8>, BundleFileError> {
    let sealed = records.iter().any(|r| matches!(r, Record::Sealed { .. }));
    let mut out = header(FileKind::Bundle);
    if sealed {
        // Readers of the first release refuse it by its version instead of misreading it.
        if let Some(version) = out.last_mut() {
            *version = FILE_FORMAT_V2;
        }
    }
    for (index, record) in records.iter().enumerate() {
        push_record(&mut out, index, record)?;
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    Ok(out)
}

fn header(kind: FileKind) -> Vec<u8> {
    let mut out = kind.magic().to_vec();
    out.push(FILE_FORMAT_V1);
    out
}

fn push_record(out: &mut Vec<u8>, index: usize, record: &Record) -> Result<(), BundleFileError> {
    let bytes = encode(record);
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len as usize <= MAX_RECORD_BYTES)
        .ok_or(BundleFileError::RecordTooLarge {
            index,
            offset: out.len(),
            len: bytes.len(),
        })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes);
    out.extend_from_slice(&record_check(len, &bytes));
    Ok(())
}

/// A record's own check: BLAKE3 over its length prefix and bytes, cut to [`RECORD_CHECK_LEN`].
fn record_check(len: u32, body: &[u8]) -> [u8; RECORD_CHECK_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(body);
    let mut out = [0u8; RECORD_CHECK_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..RECORD_CHECK_LEN]);
    out
}

/// Reads a bundle record by record, keeping what decoded before any damage.
pub fn decode_bundle(bytes: &[u8]) -> DecodedBundle {
    let mut records = Vec::new();
    let damage = decode_records(bytes, &mut records).err();
    DecodedBundle { records, damage }
}

fn decode_records(bytes: &[u8], records: &mut Vec<Record>) -> Result<(), BundleFileError> {
    let kind = FileKind::Bundle;
    let mut pos = check_header(bytes, kind)?;
    loop {
        let offset = pos;
        let prefix = bytes
            .get(pos..pos + LEN_PREFIX)
            .ok_or(BundleFileError::Truncated {
                kind,
                len: bytes.len(),
                part: "record length",
                offset,
            })?;
        let mut len_bytes = [0u8; LEN_PREFIX];
        len_bytes.copy_from_slice(prefix);
        let len_u32 = u32::from_le_bytes(len_bytes);
        let len = len_u32 as usize;
        pos += LEN_PREFIX;
        if len == 0 {
            break;
        }
        let index = records.len();
        if len > MAX_RECORD_BYTES {
            return Err(BundleFileError::RecordTooLarge { index, offset, len });
        }
        // A slice of the input: a length that overruns the file is refused without allocating.
        let framed =
            bytes
                .get(pos..pos + len + RECORD_CHECK_LEN)
                .ok_or(BundleFileError::Truncated {
                    kind,
                    len: bytes.len(),
                    part: "record",
                    offset,
                })?;
        let (body, check) = framed.split_at(len);
        if check != record_check(len_u32, body) {
            return Err(BundleFileError::RecordChecksum { index, offset });
        }
        let record =
            decode(body, "bundle record").map_err(|source| BundleFileError::BadRecord {
                index,
                offset,
                source,
            })?;
        records.push(record);
        pos += len + RECORD_CHECK_LEN;
    }
    check_checksum(bytes, pos, kind)
}

/// Checks magic and version; returns where the body starts.
fn check_header(bytes: &[u8], kind: FileKind) -> Result<usize, BundleFileError> {
    let magic = kind.magic();
    let other = kind.other().magic();
    if bytes.starts_with(other) {
        return Err(BundleFileError::WrongKind {
            expected: kind,
            found: kind.other(),
        });
    }
    if !bytes.starts_with(magic) {
        if magic.starts_with(bytes) {
            return Err(BundleFileError::Truncated {
                kind,
                len: bytes.len(),
                part: "header",
                offset: 0,
            });
        }
        return Err(BundleFileError::NotHedgerowFile { expected: kind });
    }
    match bytes.get(magic.len()) {
        None => Err(BundleFileError::Truncated {
            kind,
            len: bytes.len(),
            part: "header",
            offset: 0,
        }),
        Some(&FILE_FORMAT_V1) | Some(&FILE_FORMAT_V2) | Some(&FILE_FORMAT_V3) => {
            Ok(magic.len() + 1)
        }
        Some(&version) => Err(BundleFileError::UnsupportedVersion { kind, version }),
    }
}

/// Checks that exactly a matching checksum of `bytes[..end]` follows `end`.
fn check_checksum(bytes: &[u8], end: usize, kind: FileKind) -> Result<(), BundleFileError> {
    let rest = &bytes[end.min(bytes.len())..];
    if rest.len() < CHECKSUM_LEN {
        return Err(BundleFileError::Truncated {
            kind,
            len: bytes.len(),
            part: "checksum",
            offset: end,
        });
    }
    if rest.len() > CHECKSUM_LEN {
        return Err(BundleFileError::TrailingBytes {
            kind,
            extra: rest.len() - CHECKSUM_LEN,
        });
    }
    if blake3::hash(&bytes[..end]).as_bytes() != rest {
        return Err(BundleFileError::ChecksumMismatch { kind });
    }
    Ok(())
}

/// Writes a summary (format 2), with commons, documents and clocks sorted so equal state gives
/// equal bytes.
pub fn encode_summary(summary: &Summary) -> Vec<u8> {
    let mut body = SummaryBodyV2 {
        commons: summary.commons.clone(),
        pending: summary.pending.clone(),
    };
    body.commons.sort_by_key(|c| c.commons);
    for commons in &mut body.commons {
        commons.docs.sort_by_key(|d| d.doc);
        for doc in &mut commons.docs {
            doc.clock.sort();
        }
    }
    body.pending.sort();
    body.pending.dedup();
    let mut out = header(FileKind::Summary);
    if let Some(version) = out.last_mut() {
        *version = FILE_FORMAT_V2;
    }
    out.extend(encode(&body));
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

/// Reads a summary file; any damage is an error (a summary is small: write a new one).
pub fn decode_summary(bytes: &[u8]) -> Result<Summary, BundleFileError> {
    decode_summary_with_blobs(bytes).map(|(summary, _)| summary)
}

/// Writes a summary as [`encode_summary`] does, with the blobs its node holds (format 3;
/// with no blobs, format 2).
pub fn encode_summary_with_blobs(summary: &Summary, blobs: &[BlobHash]) -> Vec<u8> {
    if blobs.is_empty() {
        return encode_summary(summary);
    }
    let v2 = encode_summary(summary);
    // The sorted format-2 body, between the header and the checksum.
    let body: SummaryBodyV2 = match decode(
        &v2[SUMMARY_MAGIC.len() + 1..v2.len() - CHECKSUM_LEN],
        "bundle summary",
    ) {
        Ok(body) => body,
        // Our own encoding always decodes; were it not to, the summary without blobs is still right.
        Err(_) => return v2,
    };
    let mut blobs = blobs.to_vec();
    blobs.sort();
    blobs.dedup();
    let body = SummaryBodyV3 {
        commons: body.commons,
        pending: body.pending,
        blobs,
    };
    let mut out = SUMMARY_MAGIC.to_vec();
    out.push(SUMMARY_FORMAT_V3);
    out.extend(encode(&body));
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

/// Reads a summary file of any format, with the blobs it lists (none before format 3).
pub fn decode_summary_with_blobs(
    bytes: &[u8],
) -> Result<(Summary, Vec<BlobHash>), BundleFileError> {
    let kind = FileKind::Summary;
    let start = check_header(bytes, kind)?;
    if bytes.len() < start + CHECKSUM_LEN {
        return Err(BundleFileError::Truncated {
            kind,
            len: bytes.len(),
            part: "summary",
            offset: start,
        });
    }
    let end = bytes.len() - CHECKSUM_LEN;
    check_checksum(bytes, end, kind)?;
    let body = &bytes[start..end];
    let bad = BundleFileError::BadSummary;
    match bytes[start - 1] {
        FILE_FORMAT_V1 => {
            let v1: SummaryBodyV1 = decode(body, "bundle summary").map_err(bad)?;
            Ok((
                Summary {
                    commons: v1.commons,
                    pending: Vec::new(),
                    names_wants: false,
                },
                Vec::new(),
            ))
        }
        FILE_FORMAT_V2 => {
            let v2: SummaryBodyV2 = decode(body, "bundle summary").map_err(bad)?;
            Ok((
                Summary {
                    commons: v2.commons,
                    pending: v2.pending,
                    names_wants: true,
                },
                Vec::new(),
            ))
        }
        _ => {
            let v3: SummaryBodyV3 = decode(body, "bundle summary").map_err(bad)?;
            Ok((
                Summary {
                    commons: v3.commons,
                    pending: v3.pending,
                    names_wants: true,
                },
                v3.blobs,
            ))
        }
    }
}

/// The header of one blob in a bundle's blob section (the end marker for `None`).
pub fn encode_blob_header(blob: Option<(BlobHash, u64)>) -> [u8; BLOB_HEADER_LEN] {
    let (hash, size) = blob.unwrap_or((BlobHash([0; 32]), 0));
    let mut out = [0u8; BLOB_HEADER_LEN];
    out[..32].copy_from_slice(&hash.0);
    out[32..40].copy_from_slice(&size.to_le_bytes());
    let check = blake3::hash(&out[..40]);
    out[40..].copy_from_slice(&check.as_bytes()[..8]);
    out
}

/// Why a blob header of a bundle's blob section cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobHeaderError {
    /// Its check does not match: the section is damaged from here on.
    #[error("the header of a file in the bundle is damaged; the files after it cannot be read")]
    Damaged,
}

/// Reads a blob header: `Some((hash, size))`, or `None` at the end of the section.
///
/// Errors: [`BlobHeaderError::Damaged`].
pub fn decode_blob_header(
    header: &[u8; BLOB_HEADER_LEN],
) -> Result<Option<(BlobHash, u64)>, BlobHeaderError> {
    let check = blake3::hash(&header[..40]);
    if header[40..] != check.as_bytes()[..8] {
        return Err(BlobHeaderError::Damaged);
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&header[..32]);
    let mut size = [0u8; 8];
    size.copy_from_slice(&header[32..40]);
    let size = u64::from_le_bytes(size);
    if hash == [0; 32] && size == 0 {
        return Ok(None);
    }
    Ok(Some((BlobHash(hash), size)))
}

/// Marks an encoded bundle (records and checksum) as followed by a blob section (format 3).
///
/// The checksum covers the format byte, so it is recomputed; the records are unchanged.
pub fn mark_with_blobs(bundle: &mut [u8]) {
    if bundle.len() < BUNDLE_MAGIC.len() + 1 + CHECKSUM_LEN {
        return;
    }
    bundle[BUNDLE_MAGIC.len()] = FILE_FORMAT_V3;
    let end = bundle.len() - CHECKSUM_LEN;
    let checksum = blake3::hash(&bundle[..end]);
    bundle[end..].copy_from_slice(checksum.as_bytes());
}

/// Whether a bundle's header says a blob section follows its records.
pub fn has_blob_section(bundle_start: &[u8]) -> bool {
    bundle_start.starts_with(BUNDLE_MAGIC)
        && bundle_start.get(BUNDLE_MAGIC.len()) == Some(&FILE_FORMAT_V3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::actor_for;
    use crate::identity::DeviceKey;
    use crate::replica::DocReplica;
    use crate::schema::DocKind;
    use automerge::transaction::Transactable;
    use automerge::{ReadDoc, ROOT};

    fn commons(key: &DeviceKey, nonce: u8) -> Signed<CommonsGenesis> {
        CommonsGenesis {
            name: format!("Farm Hack {nonce}"),
            description: String::new(),
            creator: key.author(),
            created_at: 1_700_000_000,
            nonce: [nonce; 16],
        }
        .sign(key)
    }

    /// A document genesis with a real document of two signed changes.
    fn doc(key: &DeviceKey, commons: CommonsId, nonce: u8) -> DocSection {
        let genesis = DocGenesis {
            commons,
            kind: DocKind::Design,
            creator: key.author(),
            created_at: 1_700_000_000,
            nonce: [nonce; 16],
            fork: None,
        }
        .sign(key);
        let id = genesis.body.id();
        let mut am = automerge::Automerge::new().with_actor(actor_for(&key.author(), &id));
        let mut hashes = Vec::new();
        for text in ["Roller crimper", "Roller crimper v2"] {
            let mut tx = am.transaction();
            tx.put(ROOT, "name", text).unwrap();
            hashes.push(tx.commit().0.unwrap());
        }
        let changes = crate::compact::CompactChanges::of_document(&am);
        let last = am
            .get_change_by_hash(&hashes[1])
            .unwrap()
            .raw_bytes()
            .to_vec();
        let proof = crate::ChangeEnvelope::sign(key, commons, id, last).proof();
        DocSection {
            doc: id,
            genesis: Some(genesis),
            changes: Some(DocPayload {
                doc: id,
                genesis: None,
                changes,
                proofs: vec![(hashes[1].0, proof)],
            }),
        }
    }

    fn sections() -> Vec<CommonsSection> {
        let key = DeviceKey::from_secret([3; 32]);
        let (a, b) = (commons(&key, 1), commons(&key, 2));
        let (a_id, b_id) = (a.body.id(), b.body.id());
        vec![
            CommonsSection {
                genesis: a,
                docs: vec![doc(&key, a_id, 1), doc(&key, a_id, 2)],
            },
            CommonsSection {
                genesis: b,
                docs: vec![doc(&key, b_id, 3)],
            },
        ]
    }

    #[test]
    fn round_trip_keeps_every_record_in_canonical_order() {
        let sections = sections();
        let bytes = encode_bundle(sections.clone()).unwrap();
        assert!(bytes.starts_with(BUNDLE_MAGIC));
        let records = decode_bundle(&bytes).into_result().unwrap();
        // Per commons: its genesis, then per document its genesis and its changes.
        assert_eq!(records.len(), 2 + 3 * 2);
        let commons_ids: Vec<CommonsId> = records
            .iter()
            .filter_map(|r| match r {
                Record::Commons(g) => Some(g.body.id()),
                _ => None,
            })
            .collect();
        let mut sorted = commons_ids.clone();
        sorted.sort();
        assert_eq!(commons_ids, sorted);
        let mut current = None;
        let mut last_doc = None;
        for record in &records {
            match record {
                Record::Commons(g) => {
                    current = Some(g.body.id());
                    last_doc = None;
                }
                Record::DocGenesis(g) => {
                    assert_eq!(Some(g.body.commons), current);
                    assert!(last_doc < Some(g.body.id()), "documents sorted by id");
                    last_doc = Some(g.body.id());
                }
                Record::Changes(p) => assert_eq!(Some(p.doc), last_doc),
                Record::Sealed { .. } => panic!("nothing sealed without a key"),
            }
        }
        // The carried changes still verify and apply.
        let (Record::DocGenesis(genesis), Record::Changes(payload)) = (&records[1], &records[2])
        else {
            panic!("expected a document genesis then its changes");
        };
        let mut replica = DocReplica::new(genesis.clone()).unwrap();
        let proofs = payload
            .proofs
            .iter()
            .map(|(h, p)| (automerge::ChangeHash(*h), p.clone()))
            .collect();
        assert_eq!(
            replica
                .ingest_compact(&payload.changes, proofs)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn equal_content_gives_equal_bytes_whatever_the_input_order() {
        let sections = sections();
        let mut shuffled = sections.clone();
        shuffled.reverse();
        for s in &mut shuffled {
            s.docs.reverse();
        }
        let bytes = encode_bundle(sections).unwrap();
        assert_eq!(bytes, encode_bundle(shuffled).unwrap());
        let records = decode_bundle(&bytes).into_result().unwrap();
        assert_eq!(encode_records(&records).unwrap(), bytes);
    }

    #[test]
    fn every_truncation_is_an_error_and_keeps_the_records_before_it() {
        let bytes = encode_bundle(sections()).unwrap();
        let full = decode_bundle(&bytes).records;
        for cut in 0..bytes.len() {
            let decoded = decode_bundle(&bytes[..cut]);
            assert!(
                matches!(decoded.damage, Some(BundleFileError::Truncated { .. })),
                "cut at {cut}: {:?}",
                decoded.damage
            );
            assert_eq!(decoded.records[..], full[..decoded.records.len()]);
        }
        // Cut one byte short of the end of the last record: every record before it survives.
        let decoded =
            decode_bundle(&bytes[..bytes.len() - CHECKSUM_LEN - 4 - RECORD_CHECK_LEN - 1]);
        assert_eq!(decoded.records.len(), full.len() - 1);
    }

    #[test]
    fn every_flipped_byte_is_detected_and_no_damaged_record_surfaces() {
        let bytes = encode_bundle(sections()).unwrap();
        let full = decode_bundle(&bytes).records;
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x10, 0x80] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                let decoded = decode_bundle(&damaged);
                assert!(decoded.damage.is_some(), "flip at byte {i} went unnoticed");
                // Only intact records before the damage come back, never a damaged one.
                assert_eq!(
                    decoded.records[..],
                    full[..decoded.records.len()],
                    "flip at byte {i}"
                );
            }
        }
    }

    #[test]
    fn absurd_lengths_and_wrong_files_are_refused() {
        let mut bytes = header(FileKind::Bundle);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 64]);
        assert!(matches!(
            decode_bundle(&bytes).damage,
            Some(BundleFileError::RecordTooLarge { index: 0, .. })
        ));
        let mut bytes = header(FileKind::Bundle);
        bytes.extend_from_slice(&1000u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 10]);
        assert!(matches!(
            decode_bundle(&bytes).damage,
            Some(BundleFileError::Truncated { part: "record", .. })
        ));
        assert!(matches!(
            decode_bundle(b"PK\x03\x04 a zip file").damage,
            Some(BundleFileError::NotHedgerowFile { .. })
        ));
        let mut future = encode_bundle(sections()).unwrap();
        // Version 2 (sealed records) is read since private commons, 3 (files) since
        // attachments; 4 is a future one.
        future[BUNDLE_MAGIC.len()] = 4;
        assert!(matches!(
            decode_bundle(&future).damage,
            Some(BundleFileError::UnsupportedVersion { version: 4, .. })
        ));
        let summary = encode_summary(&Summary::default());
        assert!(matches!(
            decode_bundle(&summary).damage,
            Some(BundleFileError::WrongKind {
                found: FileKind::Summary,
                ..
            })
        ));
        let mut long = encode_bundle(sections()).unwrap();
        long.push(0);
        assert!(matches!(
            decode_bundle(&long).damage,
            Some(BundleFileError::TrailingBytes { extra: 1, .. })
        ));
    }

    /// A summary written by the previous release (format 1: what is held, no pending joins)
    /// still reads, and is taken to want every commons, as that release's export did.
    #[test]
    fn a_format_1_summary_still_reads_and_wants_everything() {
        let mut bytes = SUMMARY_MAGIC.to_vec();
        bytes.push(FILE_FORMAT_V1);
        bytes.extend(encode(&SummaryBodyV1 {
            commons: vec![CommonsState {
                commons: CommonsId([1; 32]),
                docs: vec![],
            }],
        }));
        let checksum = blake3::hash(&bytes);
        bytes.extend_from_slice(checksum.as_bytes());
        let summary = decode_summary(&bytes).unwrap();
        assert_eq!(summary.commons.len(), 1);
        assert!(summary.pending.is_empty());
        assert!(!summary.names_wants);
        assert!(summary.wants(&CommonsId([2; 32])));
        // Written again, it is format 2 and names what it wants.
        let again = encode_summary(&summary);
        assert_eq!(again[SUMMARY_MAGIC.len()], FILE_FORMAT_V2);
        let back = decode_summary(&again).unwrap();
        assert!(back.names_wants && !back.wants(&CommonsId([2; 32])));
        // A node that holds and asked for nothing has chosen nothing: offered everything.
        let fresh = decode_summary(&encode_summary(&Summary::default())).unwrap();
        assert!(fresh.names_wants && fresh.wants(&CommonsId([2; 32])));
        // Format 3 lists blobs held (attachments); 4 is a future one.
        let mut future = again.clone();
        future[SUMMARY_MAGIC.len()] = 4;
        assert!(matches!(
            decode_summary(&future),
            Err(BundleFileError::UnsupportedVersion { version: 4, .. })
        ));
    }

    #[test]
    fn summary_round_trip_is_sorted_and_damage_is_detected() {
        let summary = Summary {
            commons: vec![
                CommonsState {
                    commons: CommonsId([9; 32]),
                    docs: vec![],
                },
                CommonsState {
                    commons: CommonsId([1; 32]),
                    docs: vec![
                        DocState {
                            doc: DocId([7; 32]),
                            digest: [1; 8],
                            clock: vec![(vec![5; 16], 3), (vec![2; 16], 9)],
                        },
                        DocState {
                            doc: DocId([3; 32]),
                            digest: [2; 8],
                            clock: vec![],
                        },
                    ],
                },
            ],
            pending: vec![CommonsId([8; 32]), CommonsId([4; 32])],
            names_wants: true,
        };
        let bytes = encode_summary(&summary);
        assert!(bytes.starts_with(SUMMARY_MAGIC));
        let back = decode_summary(&bytes).unwrap();
        assert_eq!(back.commons[0].commons, CommonsId([1; 32]));
        assert_eq!(back.commons[0].docs[0].doc, DocId([3; 32]));
        assert_eq!(back.commons[0].docs[1].clock[0], (vec![2; 16], 9));
        assert_eq!(back.doc_count(), 2);
        assert_eq!(back.pending, [CommonsId([4; 32]), CommonsId([8; 32])]);
        assert!(back.wants(&CommonsId([8; 32])) && back.wants(&CommonsId([9; 32])));
        assert!(!back.wants(&CommonsId([5; 32])));
        assert_eq!(encode_summary(&back), bytes, "deterministic");
        for cut in 0..bytes.len() {
            assert!(decode_summary(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x04;
            assert!(decode_summary(&damaged).is_err(), "flip at {i}");
        }
        let bundle = encode_bundle(sections()).unwrap();
        assert!(matches!(
            decode_summary(&bundle),
            Err(BundleFileError::WrongKind {
                found: FileKind::Bundle,
                ..
            })
        ));
    }

    /// Format 2 summaries list blobs (a summary without blobs stays format 1), blob headers
    /// catch their own damage, and a bundle marked as followed by blobs keeps its records.
    #[test]
    fn summaries_list_blobs_and_blob_headers_check_themselves() {
        let summary = Summary {
            pending: vec![CommonsId([4; 32])],
            ..Summary::default()
        };
        let v3 = encode_summary_with_blobs(&summary, &[BlobHash([2; 32]), BlobHash([1; 32])]);
        assert_eq!(v3[SUMMARY_MAGIC.len()], SUMMARY_FORMAT_V3);
        let (back, listed) = decode_summary_with_blobs(&v3).unwrap();
        assert_eq!(back.pending, summary.pending);
        assert!(back.names_wants);
        assert_eq!(listed, vec![BlobHash([1; 32]), BlobHash([2; 32])]);
        assert_eq!(decode_summary(&v3).unwrap(), back);
        let v2 = encode_summary_with_blobs(&summary, &[]);
        assert_eq!(v2, encode_summary(&summary));
        assert_eq!(v2[SUMMARY_MAGIC.len()], FILE_FORMAT_V2);
        assert_eq!(decode_summary_with_blobs(&v2).unwrap().1, vec![]);

        let header = encode_blob_header(Some((BlobHash([7; 32]), 1234)));
        assert_eq!(
            decode_blob_header(&header),
            Ok(Some((BlobHash([7; 32]), 1234)))
        );
        assert_eq!(decode_blob_header(&encode_blob_header(None)), Ok(None));
        let mut bad = header;
        bad[33] ^= 1;
        assert_eq!(decode_blob_header(&bad), Err(BlobHeaderError::Damaged));

        let mut bundle = encode_bundle(sections()).unwrap();
        let records = decode_bundle(&bundle).into_result().unwrap();
        assert!(!has_blob_section(&bundle));
        mark_with_blobs(&mut bundle);
        assert!(has_blob_section(&bundle));
        assert_eq!(decode_bundle(&bundle).into_result().unwrap(), records);
    }
}
