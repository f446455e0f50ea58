//! The sync window (`serve --sync-window`): which pulls are bulk, holding them and the
//! attachment fetches outside the window, and resuming them when it opens.
//!
//! A pull is **bulk** when the listing it got (the responder's inventory, or the buckets of a
//! large commons' summary that differ) names more than [`BULK_DOCS`] documents to fetch, or
//! more than one pull queues: an initial sync, a catch-up after days away, a hub forwarding a
//! commons it stored. Outside the window a bulk pull stops before its next fetch and keeps its
//! queue; it resumes, asking only for what is still missing, when the window opens. Every
//! pull still starts (its `Hello` and the listing cost about 150 bytes plus 16 a differing
//! document), so a small catch-up goes through at any hour, and live changes (gossip) always
//! flow. Attachment blobs the node fetches on its own (hub role, pinned designs) wait for the
//! window too, unless a command is waiting for them.

use super::*;
use crate::net::MaxRate;
use crate::serve::sync_window::{LocalClock, SyncWindow};

/// Most documents a listing may name for its pull to still count as a small catch-up.
pub const BULK_DOCS: usize = 16;

/// The link settings the service acts on.
#[derive(Debug, Default)]
pub(crate) struct Metering {
    /// `--max-rate`, shown by `status` (the transport applies it).
    max_rate: Option<MaxRate>,
    /// `--sync-window` and the clock it is read with.
    window: Option<(SyncWindow, LocalClock)>,
    /// Pulls whose last listing made them bulk.
    bulk: HashSet<(PeerId, CommonsId)>,
}

/// `--max-rate` and `--sync-window` in `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MeteringStatus {
    /// The cap on each direction, e.g. `64kbit` (bits per second); none when absent.
    pub max_rate: Option<String>,
    /// The sync window, e.g. `01:00-05:00` (the node's local time); none when absent.
    pub sync_window: Option<String>,
    /// Whether bulk sync may run now (always true without a window).
    pub window_open: bool,
    /// Seconds until the window opens, while it is closed.
    pub opens_in_secs: Option<u32>,
    /// Seconds until it closes, while it is open.
    pub closes_in_secs: Option<u32>,
    /// Bulk pulls held until the window opens.
    pub deferred_pulls: Vec<DeferredPull>,
    /// Attachment blobs whose fetch waits for the window.
    pub deferred_blobs: usize,
    /// Their bytes still to fetch.
    pub deferred_blob_bytes: u64,
}

/// One bulk pull held outside the sync window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeferredPull {
    /// The peer it pulls from.
    pub peer: String,
    /// The commons.
    pub commons: String,
    /// Documents still to fetch.
    pub documents: usize,
}

impl<L: LocalState> Service<L> {
    /// Shows `max_rate` in `status`, and holds bulk sync to `window` of `clock`'s day.
    pub fn set_metering(
        &mut self,
        max_rate: Option<MaxRate>,
        window: Option<SyncWindow>,
        clock: LocalClock,
    ) {
        self.metering.max_rate = max_rate;
        self.metering.window = window.map(|w| (w, clock));
    }

    /// Whether bulk sync may run now.
    pub(super) fn window_open(&self) -> bool {
        self.metering
            .window
            .as_ref()
            .is_none_or(|(window, clock)| window.contains(clock.second_of_day()))
    }

    /// When the window next opens, while it is closed.
    pub(super) fn window_opens_at(&self) -> Option<Instant> {
        let (window, clock) = self.metering.window.as_ref()?;
        let secs = window.secs_until_open(clock.second_of_day());
        // A second late rather than early: the clock is read in whole seconds.
        (secs > 0).then(|| self.now + Duration::from_secs(u64::from(secs) + 1))
    }

    /// Judges a pull by the listing it just took (its whole queue is the difference).
    pub(super) fn judge_listing(&mut self, peer: PeerId, commons: CommonsId) {
        let Some(session) = self.session(peer, commons) else {
            return;
        };
        let bulk = session.queued() > BULK_DOCS || session.truncated();
        let key = (peer, commons);
        if bulk {
            self.metering.bulk.insert(key);
        } else {
            self.metering.bulk.remove(&key);
        }
    }

    /// Whether the pull's next fetch must wait for the window.
    pub(super) fn must_wait_for_window(&self, peer: PeerId, commons: CommonsId) -> bool {
        self.metering.bulk.contains(&(peer, commons)) && !self.window_open()
    }

    /// Holds a running bulk pull until the window opens; the fetch it was about to send goes
    /// back into its queue.
    pub(super) fn defer_pull(&mut self, peer: PeerId, commons: CommonsId) {
        let key = (peer, commons);
        let Some(Pull::Running(mut session)) = self.pulls.remove(&key) else {
            return;
        };
        session.interrupt();
        tracing::info!(
            "bulk pull of {commons} from {peer} ({} documents) deferred to the sync window",
            session.queued()
        );
        self.counters.pulls_deferred += 1;
        self.pulls.insert(key, Pull::Deferred(session));
        self.peer.entry(peer).or_default().last_sync = Some((
            crate::replicas::now_unix(),
            "deferred to the sync window".to_string(),
        ));
        self.complete_waiters();
    }

    /// Forgets what is known of a pull once it ended.
    pub(super) fn forget_bulk(&mut self, peer: PeerId, commons: CommonsId) {
        self.metering.bulk.remove(&(peer, commons));
    }

    /// Resumes the deferred pulls once the window is open.
    pub(super) fn resume_deferred(&mut self) {
        if !self.window_open() {
            return;
        }
        let deferred: Vec<(PeerId, CommonsId)> = self
            .pulls
            .iter()
            .filter(|(_, pull)| matches!(pull, Pull::Deferred(_)))
            .map(|(key, _)| *key)
            .collect();
        for key in deferred {
            if self.is_connected(&key.0) {
                self.start_pull(key.0, key.1);
            } else {
                self.pulls.remove(&key);
            }
        }
    }

    /// Whether attachment fetches the node starts on its own wait for the window now.
    pub(super) fn blobs_wait_for_window(&self) -> bool {
        !self.window_open() && self.blob_waiters.is_empty()
    }

    /// The metering part of `status`.
    pub(super) fn metering_status(&self) -> MeteringStatus {
        let second = self
            .metering
            .window
            .as_ref()
            .map(|(window, clock)| (window, clock.second_of_day()));
        let open = self.window_open();
        let mut deferred_pulls: Vec<DeferredPull> = self
            .pulls
            .iter()
            .filter_map(|((peer, commons), pull)| match pull {
                Pull::Deferred(session) => Some(DeferredPull {
                    peer: peer.to_string(),
                    commons: commons.to_string(),
                    documents: session.queued(),
                }),
                _ => None,
            })
            .collect();
        deferred_pulls.sort_by(|a, b| (&a.commons, &a.peer).cmp(&(&b.commons, &b.peer)));
        let blobs_wait = self.blobs_wait_for_window();
        MeteringStatus {
            max_rate: self.metering.max_rate.map(|r| r.to_string()),
            sync_window: second.map(|(window, _)| window.to_string()),
            window_open: open,
            opens_in_secs: second
                .filter(|_| !open)
                .map(|(window, s)| window.secs_until_open(s)),
            closes_in_secs: second
                .filter(|_| open)
                .map(|(window, s)| window.secs_until_close(s)),
            deferred_pulls,
            deferred_blobs: if blobs_wait { self.blobs.wanted() } else { 0 },
            deferred_blob_bytes: if blobs_wait {
                self.blobs.progress().0
            } else {
                0
            },
        }
    }
}
