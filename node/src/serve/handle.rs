//! A cloneable handle to a running node: typed commands, each answered on its own oneshot.
//!
//! The control socket, `hedgerow sync` and in-process tests all talk to the node through it;
//! JSON appears only where a caller serialises a reply.

use super::changes::{DocChange, CHANGE_FEED_CAPACITY};
use super::service::{Command, Reply, SyncOrder};
use super::stats::SyncReport;
use super::status::{JoinReply, NodeStatus};
use crate::api::{Reply as StoreReply, Request};
use crate::replicas::NodeError;
use hedgerow_protocol::CommonsId;
use libp2p::Multiaddr;
use tokio::sync::{broadcast, mpsc, oneshot};

/// How many commands may wait for the node at once before callers wait to send.
const QUEUE: usize = 64;

/// One command on its way to the node, with where its reply goes.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) command: Command,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// A cloneable way to command a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    calls: mpsc::Sender<Call>,
    /// The node's change feed (see [`super::changes`]).
    changes: broadcast::Sender<DocChange>,
}

/// The node's end of its handles: pass it to [`run_with`](super::run_with).
#[derive(Debug)]
pub struct Inbox {
    pub(crate) calls: mpsc::Receiver<Call>,
    /// For the control socket, which serves through a handle of its own.
    pub(crate) handle: NodeHandle,
}

/// Why a command got no answer, or was refused.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The node has stopped (or never ran).
    #[error("the node is shutting down")]
    Stopped,
    /// The node stopped with the command in flight; it may or may not have taken effect.
    #[error("the node stopped before answering")]
    NoAnswer,
    /// The node ran the command and refused it, for this reason.
    #[error(transparent)]
    Refused(NodeError),
    /// The node answered with a reply of another command (a bug).
    #[error("the node answered a different command")]
    Mismatch,
}

impl NodeHandle {
    /// A handle and the inbox the node serves it from; commands wait there until it runs.
    pub fn new() -> (NodeHandle, Inbox) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (changes, _) = broadcast::channel(CHANGE_FEED_CAPACITY);
        let handle = NodeHandle { calls: tx, changes };
        let inbox = Inbox {
            calls: rx,
            handle: handle.clone(),
        };
        (handle, inbox)
    }

    /// Each document that takes signed changes from now on, local or from peers; a receiver
    /// that falls more than [`CHANGE_FEED_CAPACITY`] behind is told it lagged.
    pub fn changes(&self) -> broadcast::Receiver<DocChange> {
        self.changes.subscribe()
    }

    /// The sending end of the change feed, for the node's actor.
    pub(crate) fn change_feed(&self) -> broadcast::Sender<DocChange> {
        self.changes.clone()
    }

    async fn call(&self, command: Command) -> Result<Reply, HandleError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call { command, reply })
            .await
            .map_err(|_| HandleError::Stopped)?;
        answer.await.map_err(|_| HandleError::NoAnswer)
    }

    /// The node's state: addresses, peers, pulls, counters.
    pub async fn status(&self) -> Result<NodeStatus, HandleError> {
        match self.call(Command::Status).await? {
            Reply::Status(status) => Ok(*status),
            _ => Err(HandleError::Mismatch),
        }
    }

    /// Pulls everything from the peer at `peer` (dialing it if needed) and reports when every
    /// pull ended, or at [`SYNC_DEADLINE`](super::SYNC_DEADLINE); see [`Self::sync_order`].
    pub async fn sync(&self, peer: Multiaddr) -> Result<SyncReport, HandleError> {
        self.sync_order(SyncOrder::new(peer)).await
    }

    /// [`Self::sync`] with its own limits; a peer never reached gives a report whose
    /// `unreachable` says why.
    pub async fn sync_order(&self, order: SyncOrder) -> Result<SyncReport, HandleError> {
        match self.call(Command::Sync(order)).await? {
            Reply::Sync(report) => Ok(report),
            _ => Err(HandleError::Mismatch),
        }
    }

    /// Joins a commons: a held one at once, else it is wanted and asked of connected peers.
    pub async fn join(&self, commons: CommonsId) -> Result<JoinReply, HandleError> {
        match self.call(Command::Join(commons)).await? {
            Reply::Join(result) => result.map_err(HandleError::Refused),
            _ => Err(HandleError::Mismatch),
        }
    }

    /// Runs a store request (create, edit, release, import...) in the node, which publishes
    /// what it changed.
    pub async fn store(&self, request: Request) -> Result<StoreReply, HandleError> {
        store_reply(self.call(Command::Store(request)).await?)
    }
}

impl NodeHandle {
    /// Fetches blobs `(hash, size)` from connected peers; with `wait`, answers once each is
    /// stored or failed (or at [`BLOB_WAIT`](super::BLOB_WAIT)), else at once.
    pub async fn fetch_blobs(
        &self,
        blobs: Vec<([u8; 32], u64)>,
        wait: bool,
    ) -> Result<super::BlobsReply, HandleError> {
        match self.call(Command::FetchBlobs { blobs, wait }).await? {
            Reply::Blobs(reply) => Ok(reply),
            _ => Err(HandleError::Mismatch),
        }
    }
}

impl NodeHandle {
    /// The known peers, how each was found, and the DHT's announcements and lookups.
    pub async fn peers(&self) -> Result<super::PeersReply, HandleError> {
        match self.call(Command::Peers).await? {
            Reply::Peers(reply) => Ok(*reply),
            _ => Err(HandleError::Mismatch),
        }
    }

    /// Adds `addr` to the running node's bootstrap list (`add`), or takes it off.
    pub async fn bootstrap(
        &self,
        addr: Multiaddr,
        add: bool,
    ) -> Result<super::PeersReply, HandleError> {
        match self.call(Command::Bootstrap { addr, add }).await? {
            Reply::Peers(reply) => Ok(*reply),
            _ => Err(HandleError::Mismatch),
        }
    }
}

fn store_reply(reply: Reply) -> Result<StoreReply, HandleError> {
    match reply {
        Reply::Store(result) => result.map_err(HandleError::Refused),
        _ => Err(HandleError::Mismatch),
    }
}
