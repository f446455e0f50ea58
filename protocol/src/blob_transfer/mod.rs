//! The blob transfer protocol `/hedgerow/blob/1`: attachment bytes moved in verified ranges.
//!
//! A blob is cut into chunk groups of [`GROUP_BYTES`] (16 BLAKE3 chunks). A [`BlobRequest`]
//! names a blob by its BLAKE3 hash and a range of groups; the [`BlobResponse`] carries either
//! those groups as a BLAKE3 verified stream (bao pre-order encoding: the parent hash pairs on the
//! path from the root interleaved with the data, see the `bao-tree` crate) or a typed
//! [`BlobRefusal`]. Each response proves itself against the root hash alone, so a receiver can
//! take ranges from several peers, in any order, and keep every group it verified after a cut.
//!
//! The sender keeps an outboard (the hash tree without the data, 64 bytes per group) beside each
//! blob so it proves any range without rehashing the file ([`compute_outboard`],
//! [`encode_groups`]). The receiver's side is [`Download`]: it hands out ranges to ask for, checks
//! every response ([`verify_response`]) before a byte of it is accepted, and yields the verified
//! bytes in file order for appending to a partial blob.
//!
//! Nothing here does I/O of its own: the sender's data and outboard come in as `ReadAt` values.

mod download;

pub use bao_tree;
pub use download::{Download, DownloadError};

use crate::encoding::{self, DecodeError};
use bao_tree::io::sync::{DecodeResponseIter, Outboard, ReadAt};
use bao_tree::io::{BaoContentItem, DecodeError as BaoDecodeError, EncodeError};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};
use serde::{Deserialize, Serialize};

/// libp2p protocol name of the blob transfer protocol.
pub const BLOB_PROTOCOL_NAME: &str = "/hedgerow/blob/1";

/// log2 of the BLAKE3 chunks (1 KiB each) in one chunk group.
pub const GROUP_CHUNK_LOG: u8 = 4;

/// Bytes in one chunk group: the unit of requests, verification and resumption (16 KiB).
pub const GROUP_BYTES: u64 = 1024 << GROUP_CHUNK_LOG;

/// Most groups one request may ask for (1 MiB of data); more is refused as `TooLarge`.
pub const MAX_GROUPS_PER_REQUEST: u64 = 64;

/// Bytes of one parent hash pair in the encoding.
const PAIR_BYTES: u64 = 64;

/// Deepest a BLAKE3 tree over a `u64`-sized blob can be, in parent levels.
const MAX_TREE_DEPTH: u64 = 64;

/// Largest encoded request, in bytes (version, hash, two varints, with room to spare).
pub const MAX_REQUEST_BYTES: usize = 128;

/// Largest encoded response, in bytes: a full request's data, its proof, and the envelope.
pub const MAX_RESPONSE_BYTES: usize = (MAX_GROUPS_PER_REQUEST * GROUP_BYTES
    + PAIR_BYTES * (2 * MAX_GROUPS_PER_REQUEST + MAX_TREE_DEPTH)
    + 64) as usize;

/// The chunk group size as `bao-tree` names it.
pub fn block_size() -> BlockSize {
    BlockSize::from_chunk_log(GROUP_CHUNK_LOG)
}

/// The hash tree shape of a blob of `size` bytes.
pub fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, block_size())
}

/// Chunk groups in a blob of `size` bytes (at least one: the empty blob has one empty group).
pub fn group_count(size: u64) -> u64 {
    size.div_ceil(GROUP_BYTES).max(1)
}

/// Bytes of the outboard (the hash tree without the data) of a blob of `size` bytes.
pub fn outboard_size(size: u64) -> u64 {
    tree(size).outboard_size()
}

/// A half-open range of chunk groups, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupRange {
    /// First group.
    pub start: u64,
    /// One past the last group.
    pub end: u64,
}

impl GroupRange {
    /// The groups `start..end`.
    pub fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// How many groups it names.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it names no group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes it covers in a blob of `size` bytes, as `start..end` offsets.
    pub fn bytes(&self, size: u64) -> std::ops::Range<u64> {
        let start = self.start.saturating_mul(GROUP_BYTES).min(size);
        let end = self.end.saturating_mul(GROUP_BYTES).min(size);
        start..end
    }

    fn chunks(&self) -> ChunkRanges {
        let per_group = 1u64 << GROUP_CHUNK_LOG;
        ChunkRanges::from(
            ChunkNum(self.start.saturating_mul(per_group))
                ..ChunkNum(self.end.saturating_mul(per_group)),
        )
    }
}

impl std::fmt::Display for GroupRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "groups {}..{}", self.start, self.end)
    }
}

/// Largest encoding an honest sender produces for `groups` of a blob of `size` bytes.
pub fn max_encoded_len(size: u64, groups: GroupRange) -> u64 {
    let data = groups.bytes(size);
    (data.end - data.start) + PAIR_BYTES * (2 * groups.len() + MAX_TREE_DEPTH)
}

/// A request for some groups of one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRequest {
    /// The blob's BLAKE3 hash.
    pub hash: [u8; 32],
    /// The groups wanted.
    pub groups: GroupRange,
}

/// Why a sender did not send the groups asked for; none of these is an offence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BlobRefusal {
    /// The sender does not hold this blob (whole).
    #[error("the peer does not hold this blob")]
    NotHeld,
    /// The request named more groups than a response may carry, or none.
    #[error("the request asked for more than {max_groups} groups, or none")]
    TooLarge {
        /// Most groups the sender serves per request.
        max_groups: u64,
    },
    /// The sender serves too many requests now; ask again later or elsewhere.
    #[error("the peer is busy")]
    Busy,
    /// The range lies past the end of the blob.
    #[error("the range lies past the end of the blob ({size} bytes)")]
    OutOfRange {
        /// The blob's size.
        size: u64,
    },
}

/// The answer to a [`BlobRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The groups asked for, with their proof.
    Data {
        /// The whole blob's size, as the sender holds it.
        size: u64,
        /// The groups this encoding carries (must be those asked for).
        groups: GroupRange,
        /// Bao pre-order encoding of `groups`: parent pairs and group data interleaved.
        encoded: Vec<u8>,
    },
    /// A typed refusal.
    Refused(BlobRefusal),
}

/// Encodes a request for the wire (version byte, postcard).
pub fn encode_request(request: &BlobRequest) -> Vec<u8> {
    encoding::encode(request)
}

/// Decodes a request, refusing unknown versions and trailing bytes.
pub fn decode_request(bytes: &[u8]) -> Result<BlobRequest, DecodeError> {
    encoding::decode(bytes, "blob request")
}

/// Tag byte of a `Data` response.
const DATA_TAG: u8 = 0;

/// Tag byte of a `Refused` response.
const REFUSED_TAG: u8 = 1;

/// Encodes a response for the wire: the version byte, a tag byte, then for `Data` the postcard
/// encoding of `(size, groups)` followed by the encoded bytes as they are (the rest of the
/// frame, so a megabyte of data is copied once, not serialised byte by byte), for `Refused`
/// the postcard encoding of the refusal.
pub fn encode_response(response: &BlobResponse) -> Vec<u8> {
    match response {
        BlobResponse::Data {
            size,
            groups,
            encoded,
        } => {
            let mut out = Vec::with_capacity(encoded.len() + 32);
            out.extend([encoding::FORMAT_V1, DATA_TAG]);
            // Plain integers into a Vec cannot fail to encode.
            out.extend(postcard::to_stdvec(&(size, groups)).unwrap_or_default());
            out.extend_from_slice(encoded);
            out
        }
        BlobResponse::Refused(refusal) => {
            let mut out = vec![encoding::FORMAT_V1, REFUSED_TAG];
            out.extend(postcard::to_stdvec(refusal).unwrap_or_default());
            out
        }
    }
}

/// Decodes a response written by [`encode_response`], refusing unknown versions and tags.
pub fn decode_response(bytes: &[u8]) -> Result<BlobResponse, DecodeError> {
    const WHAT: &str = "blob response";
    let malformed = |reason: String| DecodeError::Malformed { what: WHAT, reason };
    let (&version, rest) = bytes
        .split_first()
        .ok_or(DecodeError::Empty { what: WHAT })?;
    if version != encoding::FORMAT_V1 {
        return Err(DecodeError::UnsupportedVersion {
            what: WHAT,
            version,
        });
    }
    match rest.split_first() {
        Some((&DATA_TAG, body)) => {
            let ((size, groups), encoded): ((u64, GroupRange), &[u8]) =
                postcard::take_from_bytes(body).map_err(|e| malformed(e.to_string()))?;
            Ok(BlobResponse::Data {
                size,
                groups,
                encoded: encoded.to_vec(),
            })
        }
        Some((&REFUSED_TAG, body)) => {
            let (refusal, extra): (BlobRefusal, &[u8]) =
                postcard::take_from_bytes(body).map_err(|e| malformed(e.to_string()))?;
            if !extra.is_empty() {
                return Err(DecodeError::TrailingBytes {
                    what: WHAT,
                    extra: extra.len(),
                });
            }
            Ok(BlobResponse::Refused(refusal))
        }
        Some((tag, _)) => Err(malformed(format!("unknown response tag {tag}"))),
        None => Err(malformed("no response tag".into())),
    }
}

/// Checks a request against a held blob of `size` bytes (`None`: not held).
///
/// Refuses: `NotHeld`; `TooLarge` for an empty range or one over [`MAX_GROUPS_PER_REQUEST`];
/// `OutOfRange` for a range that ends past the blob's last group.
pub fn validate_request(request: &BlobRequest, size: Option<u64>) -> Result<u64, BlobRefusal> {
    let size = size.ok_or(BlobRefusal::NotHeld)?;
    let groups = request.groups;
    if groups.is_empty() || groups.len() > MAX_GROUPS_PER_REQUEST {
        return Err(BlobRefusal::TooLarge {
            max_groups: MAX_GROUPS_PER_REQUEST,
        });
    }
    if groups.end > group_count(size) {
        return Err(BlobRefusal::OutOfRange { size });
    }
    Ok(size)
}

/// Computes the post-order outboard of a blob read from `data` (exactly `size` bytes) into
/// `outboard`, returning the blob's BLAKE3 hash.
pub fn compute_outboard(
    data: impl std::io::Read,
    size: u64,
    outboard: impl std::io::Write,
) -> std::io::Result<blake3::Hash> {
    bao_tree::io::sync::outboard_post_order(data, tree(size), outboard)
}

/// An outboard stored in post order (as [`compute_outboard`] writes it), read through `data`.
pub fn post_order_outboard<R: ReadAt>(
    hash: blake3::Hash,
    size: u64,
    data: R,
) -> bao_tree::io::outboard::PostOrderOutboard<R> {
    bao_tree::io::outboard::PostOrderOutboard {
        root: hash,
        tree: tree(size),
        data,
    }
}

/// Encodes `groups` of a blob from its data and outboard, checking each group against the
/// outboard on the way, so a blob damaged on disk is refused rather than sent.
pub fn encode_groups<D: ReadAt, O: Outboard>(
    data: D,
    outboard: O,
    groups: GroupRange,
) -> Result<Vec<u8>, EncodeError> {
    let mut encoded = Vec::new();
    bao_tree::io::sync::encode_ranges_validated(data, outboard, &groups.chunks(), &mut encoded)?;
    Ok(encoded)
}

/// Why a response was not accepted. [`is_offence`](TransferError::is_offence) tells a lie from
/// a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The peer refused (not held, busy, ...).
    #[error("refused: {0}")]
    Refused(BlobRefusal),
    /// The response does not decode.
    #[error("malformed blob response: {0}")]
    Malformed(DecodeError),
    /// It carries other groups than those asked for.
    #[error("asked for {asked}, got {got}")]
    WrongRange {
        /// What was asked.
        asked: GroupRange,
        /// What came.
        got: GroupRange,
    },
    /// The peer claims another size than the blob's.
    #[error("the peer says the blob has {claimed} bytes, it has {expected}")]
    SizeMismatch {
        /// The size the attachment record gives.
        expected: u64,
        /// The size the peer claimed.
        claimed: u64,
    },
    /// The encoding is longer than any honest one for this range.
    #[error("response of {len} bytes, at most {max} expected")]
    Oversized {
        /// Its length.
        len: u64,
        /// The limit for this range.
        max: u64,
    },
    /// A group or a proof hash does not match the blob's hash.
    #[error("bad chunk or proof at byte {offset}")]
    BadChunk {
        /// Byte offset of the first group that failed (or the group under the bad proof).
        offset: u64,
    },
    /// The encoding ends before the range does.
    #[error("response truncated at byte {offset}")]
    Truncated {
        /// Byte offset of the first group missing.
        offset: u64,
    },
    /// Bytes left over after the range's encoding.
    #[error("{extra} bytes after the range's encoding")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
}

impl TransferError {
    /// Whether the peer broke the protocol (count it); refusals and size disputes are not.
    ///
    /// A size mismatch is not counted: the size comes from a signed record, which may itself
    /// be wrong, and a peer holding the real blob would be blamed for it.
    pub fn is_offence(&self) -> bool {
        !matches!(
            self,
            TransferError::Refused(_) | TransferError::SizeMismatch { .. }
        )
    }
}

/// One verified group: its byte offset and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedGroup {
    /// Byte offset in the blob.
    pub offset: u64,
    /// The bytes, checked against the root hash.
    pub data: Vec<u8>,
}

/// What a response proved: the groups that verified, in order, and the error that stopped it.
///
/// Groups before a bad or missing one are genuine (each was checked against the root through
/// its own path) and may be kept; nothing after the error is.
#[derive(Debug, Default)]
pub struct Verified {
    /// Groups that verified, in file order.
    pub groups: Vec<VerifiedGroup>,
    /// Why it stopped early, if it did.
    pub error: Option<TransferError>,
}

/// Checks a response to a request for `asked` of the blob `hash` of `size` bytes.
///
/// Every group is checked against `hash` before it is returned; the first failure stops it
/// (see [`Verified`]). A refusal, wrong range, wrong size or oversized encoding returns no
/// group at all.
pub fn verify_response(
    hash: blake3::Hash,
    size: u64,
    asked: GroupRange,
    response: BlobResponse,
) -> Verified {
    let fail = |error| Verified {
        groups: Vec::new(),
        error: Some(error),
    };
    let (claimed, got, encoded) = match response {
        BlobResponse::Refused(refusal) => return fail(TransferError::Refused(refusal)),
        BlobResponse::Data {
            size,
            groups,
            encoded,
        } => (size, groups, encoded),
    };
    if got != asked {
        return fail(TransferError::WrongRange { asked, got });
    }
    if claimed != size {
        return fail(TransferError::SizeMismatch {
            expected: size,
            claimed,
        });
    }
    let max = max_encoded_len(size, asked);
    if encoded.len() as u64 > max {
        return fail(TransferError::Oversized {
            len: encoded.len() as u64,
            max,
        });
    }
    verify_encoded(hash, size, asked, &encoded)
}

/// Checks a bao encoding of `asked` against `hash` (see [`verify_response`]).
pub fn verify_encoded(
    hash: blake3::Hash,
    size: u64,
    asked: GroupRange,
    encoded: &[u8],
) -> Verified {
    let mut verified = Verified::default();
    let ranges = asked.chunks();
    let mut reader = encoded;
    let iter = DecodeResponseIter::new(hash, tree(size), &mut reader, &ranges);
    for item in iter {
        match item {
            Ok(BaoContentItem::Parent(_)) => {}
            Ok(BaoContentItem::Leaf(leaf)) => verified.groups.push(VerifiedGroup {
                offset: leaf.offset,
                data: leaf.data.to_vec(),
            }),
            Err(e) => {
                verified.error = Some(decode_failure(e, asked, size));
                return verified;
            }
        }
    }
    let expected = asked.bytes(size);
    let covered = verified
        .groups
        .last()
        .map(|g| g.offset + g.data.len() as u64);
    if expected.end > expected.start && covered != Some(expected.end) {
        // The tree yielded fewer groups than asked: only when the range is past the end.
        verified.error = Some(TransferError::Truncated {
            offset: covered.unwrap_or(expected.start),
        });
    } else if !reader.is_empty() {
        verified.error = Some(TransferError::TrailingBytes {
            extra: reader.len() as u64,
        });
    }
    verified
}

/// Names a `bao-tree` decoding failure by what the peer did.
fn decode_failure(error: BaoDecodeError, asked: GroupRange, size: u64) -> TransferError {
    let start = asked.bytes(size).start;
    match error {
        BaoDecodeError::LeafHashMismatch(chunk) => TransferError::BadChunk {
            offset: chunk.to_bytes(),
        },
        BaoDecodeError::ParentHashMismatch(node) => TransferError::BadChunk {
            offset: node.mid().to_bytes().max(start),
        },
        BaoDecodeError::LeafNotFound(chunk) => TransferError::Truncated {
            offset: chunk.to_bytes(),
        },
        BaoDecodeError::ParentNotFound(node) => TransferError::Truncated {
            offset: node.mid().to_bytes().max(start),
        },
        // Reading from a slice fails only by running out of bytes.
        BaoDecodeError::Io(_) => TransferError::Truncated { offset: start },
    }
}

#[cfg(test)]
mod tests;
