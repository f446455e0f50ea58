//! Chunk verification and resumption of the blob protocol, with an honest in-memory sender.

#![allow(clippy::unwrap_used)]

use super::*;

/// Deterministic, non-repeating bytes (so a group moved elsewhere would not verify).
fn blob(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u32 = 0x9e37_79b9;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An honest sender holding `data` and its outboard.
struct Sender {
    data: Vec<u8>,
    outboard: Vec<u8>,
    hash: blake3::Hash,
}

impl Sender {
    fn new(data: Vec<u8>) -> Self {
        let mut outboard = Vec::new();
        let hash = compute_outboard(&data[..], data.len() as u64, &mut outboard).unwrap();
        assert_eq!(hash, blake3::hash(&data));
        assert_eq!(outboard.len() as u64, outboard_size(data.len() as u64));
        Self {
            data,
            outboard,
            hash,
        }
    }

    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn encode(&self, groups: GroupRange) -> Vec<u8> {
        let outboard = post_order_outboard(self.hash, self.size(), &self.outboard[..]);
        encode_groups(&self.data[..], outboard, groups).unwrap()
    }

    fn respond(&self, request: &BlobRequest) -> BlobResponse {
        match validate_request(request, Some(self.size())) {
            Err(refusal) => BlobResponse::Refused(refusal),
            Ok(size) => BlobResponse::Data {
                size,
                groups: request.groups,
                encoded: self.encode(request.groups),
            },
        }
    }

    /// Runs `download` to the end against this sender; returns the bytes it handed out.
    fn finish(&self, download: &mut Download, max_groups: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rounds = 0;
        while !download.is_complete() {
            rounds += 1;
            assert!(rounds < 10_000, "download does not converge");
            let asked = download.next_request(max_groups).unwrap();
            let request = BlobRequest {
                hash: *self.hash.as_bytes(),
                groups: asked,
            };
            // Through the wire encoding, both ways.
            let request = decode_request(&encode_request(&request)).unwrap();
            let response = decode_response(&encode_response(&self.respond(&request))).unwrap();
            download.accept(asked, response).unwrap();
            out.extend(download.take_ready());
        }
        out
    }
}

const SIZE: usize = 5 * GROUP_BYTES as usize + 3000;

#[test]
fn a_whole_blob_arrives_in_ranges_and_matches() {
    let sender = Sender::new(blob(SIZE));
    for max_groups in [1, 2, 4, 64] {
        let mut download = Download::new(sender.hash, sender.size(), 0, 8).unwrap();
        assert_eq!(sender.finish(&mut download, max_groups), sender.data);
        assert_eq!(download.received(), sender.size());
        assert_eq!(download.requested(), group_count(sender.size()));
    }
}

#[test]
fn every_single_byte_change_in_a_response_is_caught() {
    let sender = Sender::new(blob(2 * GROUP_BYTES as usize + 500));
    let size = sender.size();
    // Groups 1..3 of 3: its proof has the root's pair and the data of two groups.
    for asked in [GroupRange::new(0, 3), GroupRange::new(1, 3)] {
        let honest = sender.encode(asked);
        assert!(verify_encoded(sender.hash, size, asked, &honest)
            .error
            .is_none());
        for at in 0..honest.len() {
            let mut lying = honest.clone();
            lying[at] ^= 0x01 << (at % 8);
            let verified = verify_encoded(sender.hash, size, asked, &lying);
            assert!(
                matches!(verified.error, Some(TransferError::BadChunk { .. })),
                "byte {at} of {asked}: {:?}",
                verified.error
            );
            // Whatever was kept is genuine.
            for group in &verified.groups {
                let start = group.offset as usize;
                assert_eq!(group.data[..], sender.data[start..start + group.data.len()]);
            }
            assert!((verified.groups.len() as u64) < asked.len(), "byte {at}");
        }
    }
}

/// Positions in the whole blob's encoding where a parent pair or a group ends, with the data
/// bytes complete by then.
fn item_ends(sender: &Sender, all: GroupRange, encoded: &[u8]) -> Vec<(usize, u64)> {
    let ranges = all.chunks();
    let mut reader = encoded;
    let mut positions = Vec::new();
    let (mut at, mut data) = (0usize, 0u64);
    for item in DecodeResponseIter::new(sender.hash, tree(sender.size()), &mut reader, &ranges) {
        match item.unwrap() {
            BaoContentItem::Parent(_) => at += PAIR_BYTES as usize,
            BaoContentItem::Leaf(leaf) => {
                at += leaf.data.len();
                data += leaf.data.len() as u64;
            }
        }
        positions.push((at, data));
    }
    assert_eq!(at, encoded.len());
    positions
}

#[test]
fn a_transfer_cut_anywhere_resumes_from_the_last_verified_group_and_ends_identical() {
    let sender = Sender::new(blob(SIZE));
    let size = sender.size();
    let all = GroupRange::new(0, group_count(size));
    let encoded = sender.encode(all);
    let ends = item_ends(&sender, all, &encoded);
    // Every boundary, the middle of every item (in a group: mid-chunk), and one byte past each.
    let mut cuts = vec![0];
    let mut previous = 0;
    for &(end, _) in &ends {
        cuts.extend([(previous + end) / 2, previous + 1, end]);
        previous = end;
    }
    cuts.sort_unstable();
    cuts.dedup();
    assert!(cuts.len() > 3 * group_count(size) as usize);

    for cut in cuts {
        // One long response cut at `cut` bytes.
        let mut first = Download::new(sender.hash, size, 0, 64).unwrap();
        let asked = first.next_request(64).unwrap();
        assert_eq!(asked, all);
        let response = BlobResponse::Data {
            size,
            groups: all,
            encoded: encoded[..cut].to_vec(),
        };
        let result = first.accept(asked, response);
        if cut < encoded.len() {
            assert!(
                matches!(result, Err(TransferError::Truncated { .. })),
                "cut {cut}: {result:?}"
            );
        }
        let kept = first.take_ready();
        assert_eq!(kept[..], sender.data[..kept.len()], "cut {cut}");
        // Every group whole before the cut was kept, and nothing else.
        let held = kept.len() as u64;
        let whole = ends.iter().filter(|(end, _)| *end <= cut).map(|(_, d)| *d);
        assert_eq!(held, whole.max().unwrap_or(0), "cut {cut}");

        // The restart: a new download from what the partial blob holds.
        let mut second = Download::new(sender.hash, size, kept.len() as u64, 8).unwrap();
        let rest = sender.finish(&mut second, 2);
        let mut whole = kept.clone();
        whole.extend(rest);
        assert_eq!(whole, sender.data, "cut {cut}");
        // Nothing verified before the cut was asked for again.
        let missing = if held == size {
            0
        } else {
            group_count(size) - held / GROUP_BYTES
        };
        assert_eq!(second.requested(), missing, "cut {cut}");
        assert_eq!(second.received(), size - held, "cut {cut}");
    }
}

#[test]
fn a_partial_group_held_is_completed_without_duplicating_bytes() {
    let sender = Sender::new(blob(SIZE));
    for held in [1, GROUP_BYTES - 1, GROUP_BYTES + 7, sender.size() - 1] {
        let mut download = Download::new(sender.hash, sender.size(), held, 4).unwrap();
        let rest = sender.finish(&mut download, 3);
        let mut whole = sender.data[..held as usize].to_vec();
        whole.extend(rest);
        assert_eq!(whole, sender.data, "held {held}");
    }
}

#[test]
fn ranges_answered_out_of_order_by_several_peers_are_written_in_order() {
    let sender = Sender::new(blob(SIZE));
    let size = sender.size();
    let mut download = Download::new(sender.hash, size, 0, 64).unwrap();
    let mut asked = Vec::new();
    while let Some(range) = download.next_request(1) {
        asked.push(range);
    }
    assert_eq!(asked.len() as u64, group_count(size));
    assert_eq!(download.in_flight(), asked.len());
    // The first range's peer is cut off; the others answer last first.
    download.failed(asked[0]);
    let mut out = Vec::new();
    for range in asked[1..].iter().rev() {
        let response = sender.respond(&BlobRequest {
            hash: *sender.hash.as_bytes(),
            groups: *range,
        });
        download.accept(*range, response).unwrap();
        out.extend(download.take_ready());
    }
    assert!(out.is_empty(), "nothing can be written before group 0");
    assert_eq!(download.ready_len(), 0);
    assert_eq!(download.buffered(), size - GROUP_BYTES);
    out.extend(sender.finish(&mut download, 1));
    assert_eq!(out, sender.data);
}

#[test]
fn the_window_bounds_what_is_asked_ahead() {
    let sender = Sender::new(blob(SIZE));
    let mut download = Download::new(sender.hash, sender.size(), 0, 2).unwrap();
    assert_eq!(download.next_request(1), Some(GroupRange::new(0, 1)));
    assert_eq!(download.next_request(1), Some(GroupRange::new(1, 2)));
    assert_eq!(download.next_request(1), None);
}

#[test]
fn wrong_range_oversized_truncated_and_refused_responses_are_typed() {
    let sender = Sender::new(blob(SIZE));
    let size = sender.size();
    let hash = sender.hash;
    let asked = GroupRange::new(1, 3);
    let honest = sender.encode(asked);
    let data = |groups, encoded: Vec<u8>| BlobResponse::Data {
        size,
        groups,
        encoded,
    };

    // Another range than the one asked, even an honest encoding of it.
    let other = GroupRange::new(2, 4);
    let verified = verify_response(hash, size, asked, data(other, sender.encode(other)));
    assert_eq!(
        verified.error,
        Some(TransferError::WrongRange { asked, got: other })
    );
    assert!(verified.groups.is_empty());

    // The right range label over another range's bytes.
    let verified = verify_response(hash, size, asked, data(asked, sender.encode(other)));
    assert!(matches!(
        verified.error,
        Some(TransferError::BadChunk { .. })
    ));

    // Oversized: honest bytes padded past any honest length.
    let mut padded = honest.clone();
    padded.resize(max_encoded_len(size, asked) as usize + 1, 0);
    let verified = verify_response(hash, size, asked, data(asked, padded));
    assert!(matches!(
        verified.error,
        Some(TransferError::Oversized { .. })
    ));
    assert!(verified.groups.is_empty());

    // A few bytes too many.
    let mut trailing = honest.clone();
    trailing.extend([0; 3]);
    let verified = verify_response(hash, size, asked, data(asked, trailing));
    assert_eq!(
        verified.error,
        Some(TransferError::TrailingBytes { extra: 3 })
    );

    // Truncated: one byte short.
    let verified = verify_response(
        hash,
        size,
        asked,
        data(asked, honest[..honest.len() - 1].to_vec()),
    );
    assert!(matches!(
        verified.error,
        Some(TransferError::Truncated { .. })
    ));
    assert_eq!(verified.groups.len(), 1, "the first whole group is genuine");

    // A lie about the size.
    let verified = verify_response(
        hash,
        size,
        asked,
        BlobResponse::Data {
            size: size + 1,
            groups: asked,
            encoded: honest,
        },
    );
    assert_eq!(
        verified.error,
        Some(TransferError::SizeMismatch {
            expected: size,
            claimed: size + 1
        })
    );

    // Refusals are not offences; the rest are.
    let refused = verify_response(hash, size, asked, BlobResponse::Refused(BlobRefusal::Busy));
    let error = refused.error.unwrap();
    assert_eq!(error, TransferError::Refused(BlobRefusal::Busy));
    assert!(!error.is_offence());
    assert!(TransferError::BadChunk { offset: 0 }.is_offence());
    assert!(TransferError::Truncated { offset: 0 }.is_offence());
}

#[test]
fn a_bad_response_through_a_download_keeps_only_verified_groups_and_asks_again() {
    let sender = Sender::new(blob(SIZE));
    let size = sender.size();
    let mut download = Download::new(sender.hash, size, 0, 64).unwrap();
    let asked = download.next_request(4).unwrap();
    let mut encoded = sender.encode(asked);
    // Damage the last byte: the last group of the range.
    let last = encoded.len() - 1;
    encoded[last] ^= 0xff;
    let error = download
        .accept(
            asked,
            BlobResponse::Data {
                size,
                groups: asked,
                encoded,
            },
        )
        .unwrap_err();
    assert!(error.is_offence());
    assert_eq!(download.ready_len(), 3 * GROUP_BYTES);
    let kept = download.take_ready();
    assert_eq!(kept.len() as u64, 3 * GROUP_BYTES);
    assert_eq!(kept[..], sender.data[..kept.len()]);
    // The bad group is asked again first.
    assert_eq!(download.next_request(64), Some(GroupRange::new(3, 4)));
    download.failed(GroupRange::new(3, 4));
    let mut whole = kept;
    whole.extend(sender.finish(&mut download, 64));
    assert_eq!(whole, sender.data);
}

#[test]
fn requests_are_validated_by_the_sender() {
    let size = 3 * GROUP_BYTES;
    let request = |start, end| BlobRequest {
        hash: [7; 32],
        groups: GroupRange::new(start, end),
    };
    assert_eq!(
        validate_request(&request(0, 1), None),
        Err(BlobRefusal::NotHeld)
    );
    assert_eq!(validate_request(&request(0, 3), Some(size)), Ok(size));
    assert_eq!(
        validate_request(&request(2, 2), Some(size)),
        Err(BlobRefusal::TooLarge {
            max_groups: MAX_GROUPS_PER_REQUEST
        })
    );
    assert_eq!(
        validate_request(&request(0, MAX_GROUPS_PER_REQUEST + 1), Some(u64::MAX / 2)),
        Err(BlobRefusal::TooLarge {
            max_groups: MAX_GROUPS_PER_REQUEST
        })
    );
    assert_eq!(
        validate_request(&request(2, 4), Some(size)),
        Err(BlobRefusal::OutOfRange { size })
    );
    // The largest response fits the wire limit.
    let big = Sender::new(blob((MAX_GROUPS_PER_REQUEST * GROUP_BYTES) as usize * 2));
    let groups = GroupRange::new(MAX_GROUPS_PER_REQUEST / 2, MAX_GROUPS_PER_REQUEST * 3 / 2);
    let response = big.respond(&BlobRequest {
        hash: *big.hash.as_bytes(),
        groups,
    });
    assert!(encode_response(&response).len() <= MAX_RESPONSE_BYTES);
    assert!(encode_request(&request(u64::MAX - 1, u64::MAX)).len() <= MAX_REQUEST_BYTES);
}

#[test]
fn an_empty_blob_is_complete_at_once_and_a_held_past_end_partial_is_refused() {
    let empty = Download::new(blake3::hash(&[]), 0, 0, 4).unwrap();
    assert!(empty.is_complete());
    assert_eq!(
        Download::new(blake3::hash(b"x"), 0, 0, 4).unwrap_err(),
        DownloadError::EmptyMismatch
    );
    assert_eq!(
        Download::new(blake3::hash(b"x"), 1, 2, 4).unwrap_err(),
        DownloadError::HeldPastEnd { held: 2, size: 1 }
    );
}

#[test]
fn responses_round_trip_and_bad_frames_are_refused() {
    let data = BlobResponse::Data {
        size: 70_000,
        groups: GroupRange::new(2, 5),
        encoded: vec![9; 1000],
    };
    assert_eq!(decode_response(&encode_response(&data)).unwrap(), data);
    let refused = BlobResponse::Refused(BlobRefusal::OutOfRange { size: 9 });
    let mut bytes = encode_response(&refused);
    assert_eq!(decode_response(&bytes).unwrap(), refused);
    bytes.push(0);
    assert!(matches!(
        decode_response(&bytes),
        Err(DecodeError::TrailingBytes { extra: 1, .. })
    ));
    for bad in [
        &[][..],
        &[1][..],
        &[1, 7][..],
        &[2, 0][..],
        &[1, 0, 0xff][..],
    ] {
        assert!(decode_response(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn an_unknown_version_of_a_message_is_refused() {
    let mut bytes = encode_request(&BlobRequest {
        hash: [1; 32],
        groups: GroupRange::new(0, 1),
    });
    bytes[0] = 2;
    assert!(matches!(
        decode_request(&bytes),
        Err(DecodeError::UnsupportedVersion { version: 2, .. })
    ));
}
