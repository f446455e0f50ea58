//! The blob engine between in-memory stores: several holders, cuts, restarts and a liar.

#![allow(clippy::unwrap_used)]

use super::*;
use hedgerow_protocol::blob_transfer::{
    compute_outboard, encode_groups, group_count, post_order_outboard, GROUP_BYTES,
};

/// A blob store in memory.
#[derive(Default)]
struct Mem {
    held: HashMap<[u8; 32], (Vec<u8>, Vec<u8>)>,
    partial: HashMap<[u8; 32], Vec<u8>>,
}

impl Mem {
    fn holding(data: &[u8]) -> Self {
        let mut outboard = Vec::new();
        let hash = compute_outboard(data, data.len() as u64, &mut outboard).unwrap();
        let mut mem = Mem::default();
        mem.held.insert(*hash.as_bytes(), (data.to_vec(), outboard));
        mem
    }
}

impl BlobAccess for Mem {
    fn held_size(&self, hash: &[u8; 32]) -> Option<u64> {
        self.held.get(hash).map(|(d, _)| d.len() as u64)
    }

    fn encode(
        &mut self,
        hash: &[u8; 32],
        size: u64,
        groups: GroupRange,
    ) -> Result<Vec<u8>, String> {
        let (data, outboard) = self.held.get(hash).ok_or("not held")?;
        let outboard = post_order_outboard((*hash).into(), size, &outboard[..]);
        encode_groups(&data[..], outboard, groups).map_err(|e| e.to_string())
    }

    fn partial_len(&self, hash: &[u8; 32], _size: u64) -> u64 {
        self.partial.get(hash).map_or(0, |p| p.len() as u64)
    }

    fn append(
        &mut self,
        hash: &[u8; 32],
        _size: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), String> {
        let partial = self.partial.entry(*hash).or_default();
        assert_eq!(partial.len() as u64, offset, "appends follow each other");
        partial.extend_from_slice(bytes);
        Ok(())
    }

    fn commit(&mut self, hash: &[u8; 32], size: u64) -> Result<(), String> {
        let data = self.partial.remove(hash).unwrap_or_default();
        if data.len() as u64 != size || blake3::hash(&data).as_bytes() != hash {
            return Err("does not hash whole".into());
        }
        let mut outboard = Vec::new();
        compute_outboard(&data[..], size, &mut outboard).unwrap();
        self.held.insert(*hash, (data, outboard));
        Ok(())
    }

    fn discard_partial(&mut self, hash: &[u8; 32]) {
        self.partial.remove(hash);
    }
}

fn blob(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

/// The fetching node and its peers, each an engine over its own store.
struct Net {
    farm: (BlobTransfers, Mem),
    holders: Vec<(PeerId, BlobTransfers, Mem)>,
    /// Requests each holder answered.
    answered: HashMap<PeerId, u64>,
    offences: Vec<Offence>,
    finished: Vec<([u8; 32], Finished)>,
}

impl Net {
    fn new(holders: Vec<(BlobTransfers, Mem)>) -> Self {
        let mut farm = BlobTransfers::new(false);
        let holders: Vec<_> = holders
            .into_iter()
            .map(|(engine, mem)| (PeerId::random(), engine, mem))
            .collect();
        for (peer, ..) in &holders {
            farm.connected(*peer);
        }
        Self {
            farm: (farm, Mem::default()),
            holders,
            answered: HashMap::new(),
            offences: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Runs until nothing is sent; `cut_after` responses are delivered, the rest fail.
    fn run(&mut self, now: Instant, mut cut_after: Option<usize>) {
        for _ in 0..10_000 {
            let (farm, store) = &mut self.farm;
            let (sends, done) = farm.pump(store, now);
            self.finished.extend(done);
            if sends.is_empty() {
                return;
            }
            let mut cut = false;
            for send in sends {
                let BlobOutput::Send { peer, id, bytes } = send else {
                    panic!("the farm only sends");
                };
                if let Some(left) = cut_after.as_mut() {
                    if *left == 0 {
                        // The link is down: this and every later request fail.
                        let (farm, store) = &mut self.farm;
                        farm.on_failure(store, id);
                        cut = true;
                        continue;
                    }
                    *left -= 1;
                }
                let (_, holder, mem) = self.holders.iter_mut().find(|(p, ..)| *p == peer).unwrap();
                let (answer, offence) = holder.on_request(mem, peer, InboundId(id.0), &bytes, now);
                assert!(offence.is_none());
                *self.answered.entry(peer).or_default() += 1;
                let BlobOutput::Respond { bytes, .. } = answer else {
                    panic!("holders only answer");
                };
                let (farm, store) = &mut self.farm;
                let (offence, done) = farm.on_response(store, id, &bytes, now);
                if let Some(offence) = offence {
                    // The service cuts a peer off at its penalty limit.
                    let peer = offence.peer;
                    self.offences.push(offence);
                    let counted = self.offences.iter().filter(|o| o.peer == peer).count();
                    if counted >= crate::serve::peers::PENALTY_LIMIT as usize {
                        farm.disconnected(&peer);
                    }
                }
                self.finished.extend(done);
            }
            if cut {
                return;
            }
        }
        panic!("the transfer does not settle");
    }
}

#[test]
fn a_blob_is_fetched_from_every_holder_at_once_and_stored_whole() {
    let data = blob(40 * GROUP_BYTES as usize + 123);
    let hash = *blake3::hash(&data).as_bytes();
    let mut net = Net::new(vec![
        (BlobTransfers::new(false), Mem::holding(&data)),
        (BlobTransfers::new(false), Mem::holding(&data)),
    ]);
    let size = data.len() as u64;
    net.farm.0.want(&net.farm.1, hash, size);
    net.run(Instant::now(), None);
    assert_eq!(net.finished, vec![(hash, Finished::Stored)]);
    assert_eq!(net.farm.1.held[&hash].0, data);
    // Both holders did part of the work, and nothing was asked twice.
    assert_eq!(net.answered.len(), 2, "{:?}", net.answered);
    assert!(net.answered.values().all(|n| *n >= 1));
    assert_eq!(net.farm.0.counters().groups_requested, group_count(size));
    assert_eq!(net.farm.0.counters().bytes_received, size);
    assert_eq!(net.farm.0.wanted(), 0);
}

#[test]
fn a_cut_then_a_restart_resume_from_the_partial_file_without_asking_verified_groups_again() {
    let data = blob(100 * GROUP_BYTES as usize + 5);
    let hash = *blake3::hash(&data).as_bytes();
    let size = data.len() as u64;
    let mut net = Net::new(vec![(BlobTransfers::new(false), Mem::holding(&data))]);
    net.farm.0.want(&net.farm.1, hash, size);
    // Three responses arrive, then the link is cut.
    net.run(Instant::now(), Some(3));
    let held = net.farm.1.partial_len(&hash, size);
    assert_eq!(held, 3 * GROUPS_PER_REQUEST * GROUP_BYTES);
    assert!(net.finished.is_empty());

    // The farm restarts: a new engine over the same store.
    net.farm.0 = BlobTransfers::new(false);
    let peer = net.holders[0].0;
    net.farm.0.connected(peer);
    net.farm.0.want(&net.farm.1, hash, size);
    net.run(Instant::now(), None);
    assert_eq!(net.finished, vec![(hash, Finished::Stored)]);
    assert_eq!(net.farm.1.held[&hash].0, data);
    assert_eq!(
        net.farm.0.counters().groups_requested,
        group_count(size) - held / GROUP_BYTES,
        "verified groups are not asked again"
    );
    assert_eq!(net.farm.0.counters().bytes_received, size - held);
}

#[test]
fn a_lying_peer_is_reported_for_each_bad_response_and_nothing_unverified_is_kept() {
    let data = blob(20 * GROUP_BYTES as usize + 77);
    let hash = *blake3::hash(&data).as_bytes();
    let size = data.len() as u64;

    // Only a liar holds it: nothing is stored, every response is an offence.
    let mut net = Net::new(vec![(BlobTransfers::new(true), Mem::holding(&data))]);
    net.farm.0.want(&net.farm.1, hash, size);
    net.run(Instant::now(), None);
    assert!(net.finished.is_empty());
    assert!(!net.farm.1.held.contains_key(&hash));
    // Cut off at the penalty limit (a few more were in flight then).
    let liar = net.holders[0].0;
    let limit = crate::serve::peers::PENALTY_LIMIT as usize;
    assert!((limit..limit + PER_PEER_IN_FLIGHT).contains(&net.offences.len()));
    assert!(net
        .offences
        .iter()
        .all(|o| o.peer == liar && o.error.is_offence()));
    assert_eq!(
        net.farm.0.counters().bad_responses,
        net.offences.len() as u64
    );
    // What was kept is a verified prefix (the groups before each bad last one).
    let partial = net.farm.1.partial.get(&hash).cloned().unwrap_or_default();
    assert_eq!(partial[..], data[..partial.len()]);

    // An honest holder beside the liar: the blob arrives whole anyway.
    let mut net = Net::new(vec![
        (BlobTransfers::new(true), Mem::holding(&data)),
        (BlobTransfers::new(false), Mem::holding(&data)),
    ]);
    net.farm.0.want(&net.farm.1, hash, size);
    let later = Instant::now() + REFUSAL_COOLDOWN * 2;
    net.run(Instant::now(), None);
    net.run(later, None);
    assert_eq!(net.finished, vec![(hash, Finished::Stored)]);
    assert_eq!(net.farm.1.held[&hash].0, data);
    assert!(!net.offences.is_empty());
}

#[test]
fn a_peer_that_does_not_hold_the_blob_is_not_asked_again_for_a_while() {
    let data = blob(3 * GROUP_BYTES as usize);
    let hash = *blake3::hash(&data).as_bytes();
    let mut net = Net::new(vec![(BlobTransfers::new(false), Mem::default())]);
    let now = Instant::now();
    net.farm.0.want(&net.farm.1, hash, data.len() as u64);
    net.run(now, None);
    assert_eq!(net.answered.values().sum::<u64>(), 1);
    assert!(net.offences.is_empty(), "a refusal is no offence");
    net.run(now + REFUSAL_COOLDOWN / 2, None);
    assert_eq!(net.answered.values().sum::<u64>(), 1);
    net.run(now + REFUSAL_COOLDOWN * 2, None);
    assert_eq!(net.answered.values().sum::<u64>(), 2);
    assert_eq!(net.farm.0.wanted(), 1);
}

#[test]
fn blobs_nobody_serves_make_way_for_one_that_a_peer_holds() {
    let held = blob(2 * GROUP_BYTES as usize);
    let hash = *blake3::hash(&held).as_bytes();
    let mut net = Net::new(vec![(BlobTransfers::new(false), Mem::holding(&held))]);
    let now = Instant::now();
    // More unheld blobs than run at once, wanted first.
    for i in 0..MAX_ACTIVE as u8 + 1 {
        let missing = *blake3::hash(&[i]).as_bytes();
        net.farm.0.want(&net.farm.1, missing, 1);
    }
    net.farm.0.want(&net.farm.1, hash, held.len() as u64);
    net.run(now, None);
    net.run(now + Duration::from_millis(1), None);
    net.run(now + Duration::from_millis(2), None);
    assert_eq!(net.finished, vec![(hash, Finished::Stored)]);
    assert_eq!(
        net.farm.0.wanted(),
        MAX_ACTIVE + 1,
        "the others stay wanted"
    );
}

#[test]
fn a_busy_holder_is_left_alone_while_the_other_holder_serves_the_rest() {
    // Long enough that the farm asks each holder four ranges at once.
    let data = blob(200 * GROUP_BYTES as usize + 9);
    let hash = *blake3::hash(&data).as_bytes();
    let size = data.len() as u64;
    // At most two responses open to one peer: the farm asks four at once.
    let mut limited = BlobTransfers::new(false);
    limited.set_serve_limits(ServeLimits {
        streams_per_peer: 2,
        bytes_per_peer: u64::MAX,
        window: Duration::from_secs(10),
    });
    let mut net = Net::new(vec![
        (limited, Mem::holding(&data)),
        (BlobTransfers::new(false), Mem::holding(&data)),
    ]);
    let (busy_peer, other) = (net.holders[0].0, net.holders[1].0);
    net.farm.0.want(&net.farm.1, hash, size);
    net.run(Instant::now(), None);
    assert_eq!(net.finished, vec![(hash, Finished::Stored)]);
    assert_eq!(net.farm.1.held[&hash].0, data);
    let limited = &net.holders[0].1;
    assert_eq!(limited.counters().requests_answered, 2);
    assert_eq!(limited.counters().busy_sent, 2, "the third and fourth");
    assert_eq!(limited.open_responses(), 2);
    let farm = net.farm.0.counters();
    assert_eq!(farm.busy_received, 2);
    assert!(net.offences.is_empty(), "Busy is no offence");
    // Each holder's verified bytes, counted apart; every byte once.
    let from_busy = 2 * GROUPS_PER_REQUEST * GROUP_BYTES;
    assert_eq!(farm.received_from[&busy_peer], from_busy);
    assert_eq!(farm.received_from[&other], size - from_busy);
    assert_eq!(farm.bytes_received, size);
}

#[test]
fn a_peer_over_its_bytes_per_window_hears_busy_until_the_window_turns() {
    let data = blob(40 * GROUP_BYTES as usize + 5);
    let hash = *blake3::hash(&data).as_bytes();
    let size = data.len() as u64;
    // One response (16 groups, 256 KiB) per 10 s window.
    let mut limited = BlobTransfers::new(false);
    limited.set_serve_limits(ServeLimits {
        streams_per_peer: 100,
        bytes_per_peer: 200 * 1024,
        window: Duration::from_secs(10),
    });
    let mut net = Net::new(vec![(limited, Mem::holding(&data))]);
    net.farm.0.want(&net.farm.1, hash, size);
    let now = Instant::now();
    let answered = |net: &Net| net.holders[0].1.counters().requests_answered;
    net.run(now, None);
    assert_eq!(answered(&net), 1);
    let busy = net.holders[0].1.counters().busy_sent;
    assert!(busy >= 1);
    // Backed off: not asked again at once.
    net.run(now + BUSY_BACKOFF / 2, None);
    assert_eq!(net.holders[0].1.counters().busy_sent, busy);
    // Asked again after the back-off, still in the window: Busy again, no data.
    net.run(now + BUSY_BACKOFF * 2, None);
    assert_eq!(answered(&net), 1);
    assert!(net.holders[0].1.counters().busy_sent > busy);
    // Each new window serves one more response, until the blob is whole.
    for window in 1..=3u32 {
        net.run(now + Duration::from_secs(10) * window, None);
    }
    assert_eq!(answered(&net), 3);
    assert_eq!(net.finished, vec![(hash, Finished::Stored)]);
    assert_eq!(net.farm.1.held[&hash].0, data);
    assert!(net.offences.is_empty());
}
