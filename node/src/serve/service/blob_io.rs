//! The service's side of blob transfers: routes blob inputs to [`BlobTransfers`], counts the
//! offences it reports, keeps the wanted set filled from the node's policy, and answers
//! `FetchBlobs` callers.

use super::*;
use crate::serve::blobs::{BlobOutput, Finished, Offence};

/// Least time between two askings of the node's policy after syncs brought news (a hub's
/// policy reads every document of its commons).
pub const BLOB_REFRESH: Duration = Duration::from_secs(2);

/// How soon a blob with nobody to ask is tried again.
pub const BLOB_RETRY: Duration = Duration::from_secs(1);

/// Longest a `FetchBlobs` caller waits before it hears what is still pending.
pub const BLOB_WAIT: Duration = Duration::from_secs(600);

/// Most blobs refused for a commons' quota that `status` lists (the rest are only logged).
pub const MAX_OVER_QUOTA_SHOWN: usize = 64;

/// A caller waiting for blobs.
#[derive(Debug)]
pub(super) struct BlobWaiter {
    token: Token,
    reply: BlobsReply,
    deadline: Instant,
}

impl<L: LocalState> Service<L> {
    /// Answers a peer's blob request from the store.
    pub(super) fn on_blob_request(&mut self, peer: PeerId, id: InboundId, bytes: &[u8]) {
        if !self.may_serve_blob(peer, bytes) {
            // Said as for a blob not held: a non-member learns nothing of a hidden commons.
            self.counters.reject(&Refusal::NotAMember);
            let bytes = hedgerow_protocol::blob_transfer::encode_response(
                &hedgerow_protocol::blob_transfer::BlobResponse::Refused(
                    hedgerow_protocol::blob_transfer::BlobRefusal::NotHeld,
                ),
            );
            self.out.push(Output::RespondBlob { id, bytes });
            return;
        }
        let (answer, offence) = self
            .blobs
            .on_request(&mut self.local, peer, id, bytes, self.now);
        self.blob_out(vec![answer]);
        if let Some(offence) = offence {
            self.blob_offence(offence);
        }
    }

    /// Whether `peer` may have the blob it asks for: always while this node holds no hidden
    /// (private, or maybe private) commons; else only a blob some document refers to, of a
    /// public commons or of a hidden one whose membership the peer proved on its connection.
    fn may_serve_blob(&mut self, peer: PeerId, bytes: &[u8]) -> bool {
        let Ok(request) = hedgerow_protocol::blob_transfer::decode_request(bytes) else {
            // The engine answers (and counts) a malformed request.
            return true;
        };
        let held: Vec<CommonsId> = self.local.commons().into_iter().map(|(c, _)| c).collect();
        if !held.iter().any(|c| self.local.privacy(c).hides()) {
            return true;
        }
        let index = match self.blob_commons.take() {
            Some(index) => index,
            None => self.local.blob_commons(),
        };
        let commons = index.get(&request.hash).cloned().unwrap_or_default();
        self.blob_commons = Some(index);
        commons.iter().any(|c| self.serves(peer, c))
    }

    /// Takes the response to one of our blob requests.
    pub(super) fn on_blob_response(&mut self, id: RequestId, bytes: &[u8]) {
        self.heard_blob(id);
        let (offence, finished) = self.blobs.on_response(&mut self.local, id, bytes, self.now);
        if let Some(offence) = offence {
            self.blob_offence(offence);
        }
        self.blobs_finished(finished);
    }

    /// One of our blob requests failed; a frame the peer got wrong is an offence.
    pub(super) fn on_blob_failure(&mut self, id: RequestId, offence: Option<Refusal>) {
        let peer = self.blobs.peer_of(&id);
        let hash = self.blobs.hash_of(&id);
        if let (Some(hash), Some(done)) = (hash, self.blobs.on_failure(&mut self.local, id)) {
            self.blobs_finished(vec![(hash, done)]);
        }
        if let (Some(peer), Some(reason)) = (peer, offence) {
            self.misbehaved(peer, reason);
        }
    }

    /// A response counts as a sign of life of its peer (a long transfer is not silence).
    fn heard_blob(&mut self, id: RequestId) {
        if let Some(peer) = self.blobs.peer_of(&id) {
            let total = self.bytes.blob().received();
            if let Some(state) = self.peer.get_mut(&peer) {
                state.heard = Some((self.now, total));
            }
        }
    }

    fn blob_offence(&mut self, offence: Offence) {
        tracing::warn!("bad blob response from {}: {}", offence.peer, offence.error);
        self.misbehaved(offence.peer, Refusal::BadBlob);
    }

    fn blob_out(&mut self, outputs: Vec<BlobOutput>) {
        for output in outputs {
            self.out.push(match output {
                BlobOutput::Send { peer, id, bytes } => Output::SendBlob { peer, id, bytes },
                BlobOutput::Respond { id, bytes } => Output::RespondBlob { id, bytes },
            });
        }
    }

    /// Starts what is wanted and fills every peer's request slots.
    pub(super) fn pump_blobs(&mut self) {
        if self.blobs_wait_for_window() {
            return;
        }
        let connected = self.connected_peers();
        self.blobs.set_connected(&connected);
        let (outputs, finished) = self.blobs.pump(&mut self.local, self.now);
        self.blob_out(outputs);
        self.blobs_finished(finished);
    }

    /// Asks the node's policy what it wants (hub: every attachment of its commons; farm:
    /// pinned designs' files), when due.
    pub(super) fn refresh_wanted_blobs(&mut self) {
        if self.next_blob_refresh.is_none_or(|at| self.now < at) {
            return;
        }
        self.next_blob_refresh = None;
        self.last_blob_refresh = Some(self.now);
        let fresh: Vec<([u8; 32], u64)> = self
            .local
            .wanted_blobs()
            .into_iter()
            .filter(|(hash, _)| !self.blobs.is_wanted(hash))
            .collect();
        for (hash, size, refused) in self.within_quota(fresh) {
            match refused {
                None => self.blobs.want(&self.local, hash, size),
                Some(why) => self.over_quota(hash, why),
            }
        }
    }

    /// Each blob with why fetching it is refused (it would take a commons of this node past
    /// its quota, counting what is held and what is being fetched already), or `None`.
    fn within_quota(
        &mut self,
        blobs: Vec<([u8; 32], u64)>,
    ) -> Vec<([u8; 32], u64, Option<String>)> {
        if blobs.is_empty() {
            return Vec::new();
        }
        let pending = self.blobs.wanted_blobs();
        let mut refused = self.local.quota_refusals(&blobs, &pending);
        blobs
            .into_iter()
            .map(|(hash, size)| {
                let why = refused.remove(&hash);
                if why.is_none() {
                    self.over_quota.remove(&hash);
                }
                (hash, size, why)
            })
            .collect()
    }

    /// A blob is not fetched for a commons' quota: logged once, listed by `status`.
    fn over_quota(&mut self, hash: [u8; 32], why: String) {
        if self.over_quota.contains_key(&hash) {
            return;
        }
        tracing::warn!("{why}");
        if self.over_quota.len() < MAX_OVER_QUOTA_SHOWN {
            self.over_quota.insert(hash, why);
        }
    }

    /// Documents arrived that may refer to files the policy wants: ask it again soon (at most
    /// every [`BLOB_REFRESH`]).
    pub(super) fn blob_policy_changed(&mut self) {
        self.blob_commons = None;
        let earliest = self
            .last_blob_refresh
            .map_or(self.now, |last| last + BLOB_REFRESH);
        self.next_blob_refresh.get_or_insert(earliest.max(self.now));
    }

    /// A local command (a pin, an attachment, an import) may have changed what is wanted: ask
    /// the policy at the end of this step.
    pub(super) fn blob_policy_changed_now(&mut self) {
        self.blob_commons = None;
        self.next_blob_refresh = Some(self.now);
    }

    /// When the blob side needs the timer next (an idle node stays asleep).
    pub(super) fn next_blob_wake(&self) -> Instant {
        let mut at = self.next_blob_refresh.unwrap_or(self.now + INTERRUPTED_TTL);
        if self.blobs.wanted() > 0 {
            let retry = match self.blobs_wait_for_window() {
                true => self.window_opens_at().unwrap_or(self.now + BLOB_RETRY),
                false => self.now + BLOB_RETRY,
            };
            at = at.min(retry);
        }
        for waiter in &self.blob_waiters {
            at = at.min(waiter.deadline);
        }
        at
    }

    /// `FetchBlobs`: wants each blob; replies at once, or when all are done.
    pub(super) fn on_fetch_blobs(&mut self, token: Token, blobs: Vec<([u8; 32], u64)>, wait: bool) {
        let mut reply = BlobsReply::default();
        let mut fresh = Vec::new();
        for (hash, size) in blobs {
            if self.local.held_size(&hash).is_some() {
                reply.stored.push(hash);
            } else if self.blobs.is_wanted(&hash) {
                reply.pending.push(hash);
            } else {
                fresh.push((hash, size));
            }
        }
        for (hash, size, refused) in self.within_quota(fresh) {
            match refused {
                None => {
                    self.blobs.want(&self.local, hash, size);
                    reply.pending.push(hash);
                }
                Some(why) => {
                    self.over_quota(hash, why.clone());
                    reply.failed.push((hash, why));
                }
            }
        }
        self.pump_blobs();
        if !wait || reply.pending.is_empty() {
            self.out.push(Output::Reply(token, Reply::Blobs(reply)));
            return;
        }
        self.blob_waiters.push(BlobWaiter {
            token,
            reply,
            deadline: self.now + BLOB_WAIT,
        });
        // Some may have finished in the pump above.
        self.complete_blob_waiters();
    }

    fn blobs_finished(&mut self, finished: Vec<([u8; 32], Finished)>) {
        for (hash, outcome) in finished {
            match &outcome {
                Finished::Stored => {
                    self.over_quota.remove(&hash);
                    tracing::info!("blob {} stored", hex::encode(hash))
                }
                Finished::Failed(why) => {
                    tracing::warn!("blob {} not stored: {why}", hex::encode(hash))
                }
            }
            for waiter in &mut self.blob_waiters {
                if let Some(at) = waiter.reply.pending.iter().position(|h| *h == hash) {
                    waiter.reply.pending.remove(at);
                    match &outcome {
                        Finished::Stored => waiter.reply.stored.push(hash),
                        Finished::Failed(why) => waiter.reply.failed.push((hash, why.clone())),
                    }
                }
            }
        }
        self.complete_blob_waiters();
    }

    /// The store's blob counts, with what the transfers want and have in flight.
    pub(super) fn blobs_held_and_wanted(&self) -> crate::blobs::BlobStatus {
        let mut status = self.local.blob_status();
        let (missing, verified) = self.blobs.progress();
        status.wanted = self.blobs.wanted();
        status.wanted_bytes = missing;
        status.in_flight = self.blobs.active();
        status.in_flight_bytes = verified;
        status
    }

    /// The blob side of `status`.
    pub(super) fn blob_status(&self) -> crate::serve::BlobTransferStatus {
        let counters = self.blobs.counters();
        let frames = self.bytes.blob();
        crate::serve::BlobTransferStatus {
            wanted: self.blobs.wanted(),
            in_flight: self.blobs.in_flight(),
            bytes_wanted: self.blobs.progress().0,
            bytes_received: counters.bytes_received,
            bytes_sent: counters.bytes_sent,
            groups_requested: counters.groups_requested,
            bad_responses: counters.bad_responses,
            fetched: counters.completed,
            frame_bytes_received: frames.received(),
            frame_bytes_sent: frames.sent(),
            busy_sent: counters.busy_sent,
            busy_received: counters.busy_received,
            open_responses: self.blobs.open_responses(),
            received_from: counters
                .received_from
                .iter()
                .map(|(peer, bytes)| (peer.to_string(), *bytes))
                .collect(),
            over_quota: self
                .over_quota
                .iter()
                .map(|(hash, error)| crate::serve::OverQuota {
                    hash: hex::encode(hash),
                    error: error.clone(),
                })
                .collect(),
        }
    }

    /// Replies to the callers whose blobs are all done, or whose wait is over.
    pub(super) fn complete_blob_waiters(&mut self) {
        let now = self.now;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.blob_waiters)
            .into_iter()
            .partition(|w| w.reply.pending.is_empty() || now >= w.deadline);
        self.blob_waiters = waiting;
        for waiter in done {
            self.out
                .push(Output::Reply(waiter.token, Reply::Blobs(waiter.reply)));
        }
    }
}
