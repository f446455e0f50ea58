//! The receiving side of one blob transfer, as an I/O-free state machine.
//!
//! [`Download`] starts from what a partial blob already holds, hands out group ranges to ask
//! peers for (several in flight, from several peers, within a memory window), checks each
//! response against the root hash, buffers verified groups that arrived out of order, and yields
//! the verified bytes in file order for the caller to append. A range whose request failed or
//! whose response was bad goes back to be asked again, from its first unverified group.

use super::{group_count, verify_response, BlobResponse, GroupRange, TransferError, GROUP_BYTES};
use std::collections::{BTreeMap, BTreeSet};

/// Why a download cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// The partial blob holds more bytes than the blob has.
    #[error("the partial blob holds {held} bytes, more than the blob's {size}; remove it")]
    HeldPastEnd {
        /// Bytes held.
        held: u64,
        /// The blob's size.
        size: u64,
    },
    /// The blob is said to be empty but its hash is not the empty blob's.
    #[error("the blob is said to be empty but its hash is not that of no bytes")]
    EmptyMismatch,
}

/// One blob being fetched: what is held, asked for, and verified but not yet written.
#[derive(Debug)]
pub struct Download {
    hash: blake3::Hash,
    size: u64,
    /// Bytes already in the partial blob or handed out by [`take_ready`](Self::take_ready).
    written: u64,
    /// First group never handed out.
    next: u64,
    /// Ranges to ask again (their request failed or their response was bad).
    retry: BTreeSet<GroupRange>,
    /// Ranges asked for and not answered yet.
    in_flight: BTreeSet<GroupRange>,
    /// Verified groups past `written`, by group index.
    ready: BTreeMap<u64, Vec<u8>>,
    /// Most groups handed out ahead of the first unwritten one (bounds memory).
    window: u64,
    /// Verified data bytes received.
    received: u64,
    /// Groups asked for, counting repeats.
    requested: u64,
}

impl Download {
    /// A download of the blob `hash` of `size` bytes whose first `held` bytes are already
    /// verified on disk, asking at most `window` groups ahead of the first missing one.
    pub fn new(
        hash: blake3::Hash,
        size: u64,
        held: u64,
        window: u64,
    ) -> Result<Self, DownloadError> {
        if held > size {
            return Err(DownloadError::HeldPastEnd { held, size });
        }
        if size == 0 && hash != blake3::hash(&[]) {
            return Err(DownloadError::EmptyMismatch);
        }
        Ok(Self {
            hash,
            size,
            written: held,
            // A partial group held is asked again whole: its proof needs all of it.
            next: held / GROUP_BYTES,
            retry: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            ready: BTreeMap::new(),
            window: window.max(1),
            received: 0,
            requested: 0,
        })
    }

    /// The blob's hash.
    pub fn hash(&self) -> blake3::Hash {
        self.hash
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes verified and handed out (or held at the start), in file order.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether every byte is verified and handed out.
    pub fn is_complete(&self) -> bool {
        self.written == self.size
    }

    /// Requests asked and not answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Verified data bytes received so far (what the transfer cost, without proofs).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Groups asked for so far, repeats included.
    pub fn requested(&self) -> u64 {
        self.requested
    }

    /// Bytes verified but waiting for an earlier group before they can be written.
    pub fn buffered(&self) -> u64 {
        self.ready.values().map(|d| d.len() as u64).sum()
    }

    /// Verified bytes that [`take_ready`](Self::take_ready) would hand out now.
    pub fn ready_len(&self) -> u64 {
        let mut at = self.written;
        while at < self.size {
            let index = at / GROUP_BYTES;
            match self.ready.get(&index) {
                Some(data) => at = index * GROUP_BYTES + data.len() as u64,
                None => break,
            }
        }
        at - self.written
    }

    /// The next range to ask for, at most `max_groups` long; `None` when everything is asked
    /// for or the window is full.
    pub fn next_request(&mut self, max_groups: u64) -> Option<GroupRange> {
        let max_groups = max_groups.max(1);
        if let Some(range) = self.retry.pop_first() {
            let asked = GroupRange::new(range.start, range.end.min(range.start + max_groups));
            if asked.end < range.end {
                self.retry.insert(GroupRange::new(asked.end, range.end));
            }
            return Some(self.ask(asked));
        }
        let total = if self.size == 0 {
            0
        } else {
            group_count(self.size)
        };
        let limit = (self.written / GROUP_BYTES + self.window).min(total);
        if self.next >= limit {
            return None;
        }
        let asked = GroupRange::new(self.next, (self.next + max_groups).min(limit));
        self.next = asked.end;
        Some(self.ask(asked))
    }

    fn ask(&mut self, asked: GroupRange) -> GroupRange {
        self.in_flight.insert(asked);
        self.requested += asked.len();
        asked
    }

    /// The request for `asked` failed (link cut, timeout): its range is asked again later.
    pub fn failed(&mut self, asked: GroupRange) {
        if self.in_flight.remove(&asked) {
            self.retry.insert(asked);
        }
    }

    /// Takes the response to `asked`; returns how many groups it verified.
    ///
    /// Verified groups are kept even when a later one fails (each was checked on its own path
    /// to the root); the range from the first unverified group is asked again. A response to a
    /// range that is not in flight is checked but changes nothing.
    pub fn accept(
        &mut self,
        asked: GroupRange,
        response: BlobResponse,
    ) -> Result<u64, TransferError> {
        let ours = self.in_flight.remove(&asked);
        let verified = verify_response(self.hash, self.size, asked, response);
        let count = verified.groups.len() as u64;
        if ours {
            let first_written = self.written / GROUP_BYTES;
            for group in verified.groups {
                let index = group.offset / GROUP_BYTES;
                self.received += group.data.len() as u64;
                if index >= first_written && self.written < self.size {
                    self.ready.entry(index).or_insert(group.data);
                }
            }
            let rest = GroupRange::new(asked.start + count, asked.end);
            if !rest.is_empty() {
                self.retry.insert(rest);
            }
        }
        match verified.error {
            Some(error) => Err(error),
            None => Ok(count),
        }
    }

    /// The verified bytes that follow what was written, in order; append them to the partial
    /// blob. Empty when the next group has not arrived.
    pub fn take_ready(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.written < self.size {
            let index = self.written / GROUP_BYTES;
            let Some(data) = self.ready.remove(&index) else {
                break;
            };
            // A resumed partial group: skip what the partial blob already holds of it.
            let skip = usize::try_from(self.written - index * GROUP_BYTES).unwrap_or(usize::MAX);
            match data.get(skip..) {
                Some(tail) if !tail.is_empty() => {
                    out.extend_from_slice(tail);
                    self.written += tail.len() as u64;
                }
                // Cannot happen for a verified group; stop rather than spin.
                _ => break,
            }
        }
        // Groups behind what was written (answers to repeats) are of no more use.
        let first = self.written / GROUP_BYTES;
        self.ready.retain(|index, _| *index >= first);
        out
    }
}
