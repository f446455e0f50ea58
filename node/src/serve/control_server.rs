//! The server end of the control channel: a Unix socket in the home, mode 0600.
//!
//! A thin JSON adapter over a [`NodeHandle`]: each connection carries one JSON request line;
//! the reply goes back as one JSON line. `sync` requests wait for the pulls to finish.

use super::handle::{HandleError, NodeHandle};
use super::SyncOrder;
use crate::api::{FailedBlob, FetchBlobsReply, NodeRequest, Request};
use crate::control::{ControlReply, ControlRequest, MAX_CONTROL_LINE};
use hedgerow_protocol::CommonsId;
use libp2p::Multiaddr;
use serde::Serialize;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

/// Binds the socket (replacing a stale one left by a killed node) and serves it in a task.
pub fn start(path: &Path, node: NodeHandle) -> std::io::Result<tokio::task::JoinHandle<()>> {
    if path.exists() {
        // Only reached when this process holds the store lock, so no other node uses the socket.
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let node = node.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read.take(MAX_CONTROL_LINE as u64));
                let mut line = String::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let reply = handle(&line, &node).await;
                let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
                bytes.push(b'\n');
                let _ = write.write_all(&bytes).await;
            });
        }
    }))
}

/// A typed reply as the control channel's JSON.
fn to_reply<T: Serialize>(result: Result<T, HandleError>) -> ControlReply {
    match result.map(|value| serde_json::to_value(value)) {
        Ok(Ok(value)) => ControlReply::Ok(value),
        Ok(Err(e)) => ControlReply::message(format!("the node could not write its reply: {e}")),
        Err(HandleError::Refused(e)) => ControlReply::refused(&e),
        Err(e) => ControlReply::message(e.to_string()),
    }
}

async fn handle(line: &str, node: &NodeHandle) -> ControlReply {
    let request = match ControlRequest::parse(line) {
        Ok(r) => r,
        Err(e) => return ControlReply::message(format!("the running node does not understand this request ({e}); are the CLI and the node the same version?")),
    };
    match request {
        ControlRequest::Store(request) => to_reply(node.store(request).await),
        ControlRequest::Node(NodeRequest::Status) => to_reply(node.status().await),
        ControlRequest::Node(NodeRequest::Peers) => to_reply(node.peers().await),
        ControlRequest::Node(NodeRequest::PeersAdd { addr }) => bootstrap(node, &addr, true).await,
        ControlRequest::Node(NodeRequest::PeersRemove { addr }) => {
            bootstrap(node, &addr, false).await
        }
        ControlRequest::Node(NodeRequest::Sync {
            peer,
            connect_timeout,
            deadline,
        }) => match peer.parse::<Multiaddr>() {
            Ok(addr) => {
                let mut order = SyncOrder::new(addr);
                if let Some(secs) = connect_timeout {
                    order.connect_timeout = Duration::from_secs(secs);
                }
                if let Some(secs) = deadline {
                    order.deadline = Duration::from_secs(secs);
                }
                to_reply(node.sync_order(order).await)
            }
            Err(_) => ControlReply::message(format!(
                "`{peer}` is not a multiaddress such as /ip4/192.0.2.7/tcp/4717/p2p/12D3Koo..."
            )),
        },
        ControlRequest::Node(NodeRequest::Join { commons }) => {
            match commons.trim().parse::<CommonsId>() {
                Ok(id) => to_reply(node.join(id).await),
                // A prefix or a name can only name a commons held here: the store resolves it.
                Err(_) => to_reply(node.store(Request::Join { commons }).await),
            }
        }
        ControlRequest::Node(NodeRequest::FetchBlobs { blobs, wait }) => {
            let mut wanted = Vec::new();
            for blob in blobs {
                match parse_hash(&blob.hash) {
                    Some(hash) => wanted.push((hash, blob.size)),
                    None => {
                        return ControlReply::message(format!(
                            "`{}` is not a blob hash (64 hex digits)",
                            blob.hash
                        ))
                    }
                }
            }
            to_reply(node.fetch_blobs(wanted, wait).await.map(|r| {
                FetchBlobsReply {
                    stored: r.stored.iter().map(hex::encode).collect(),
                    pending: r.pending.iter().map(hex::encode).collect(),
                    failed: r
                        .failed
                        .into_iter()
                        .map(|(hash, error)| FailedBlob {
                            hash: hex::encode(hash),
                            error,
                        })
                        .collect(),
                }
            }))
        }
    }
}

/// Changes the running node's bootstrap list (the CLI wrote the file first).
async fn bootstrap(node: &NodeHandle, addr: &str, add: bool) -> ControlReply {
    match crate::peers_file::parse_peer(addr) {
        Ok(addr) => to_reply(node.bootstrap(addr, add).await),
        Err(e) => ControlReply::refused(&e),
    }
}

/// A BLAKE3 hash from its 64 hex digits.
fn parse_hash(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}
