//! The server end of the control channel: a Unix socket in the home, mode 0600.
//!
//! Each connection carries one JSON request line; the node runs it and the
//! reply goes back as one JSON line. `sync` requests wait for the pulls to finish.

use super::stats::SyncReport;
use crate::api::Request;
use crate::control::{ControlReply, MAX_CONTROL_LINE};
use libp2p::Multiaddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// What the control server asks of the running node.
pub enum Command {
    /// Run a request and reply.
    Request(Request, oneshot::Sender<ControlReply>),
    /// Sync with a peer and reply when done.
    Sync(Multiaddr, oneshot::Sender<SyncReport>),
}

/// Binds the socket (replacing a stale one left by a killed node) and serves it in a task.
pub fn start(
    path: &Path,
    node: mpsc::Sender<Command>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
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

async fn handle(line: &str, node: &mpsc::Sender<Command>) -> ControlReply {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return ControlReply::Error(format!("the running node does not understand this request ({e}); are the CLI and the node the same version?")),
    };
    if let Request::Sync { peer } = &request {
        let addr: Multiaddr = match peer.parse() {
            Ok(a) => a,
            Err(_) => {
                return ControlReply::Error(format!(
                    "`{peer}` is not a multiaddress such as /ip4/192.0.2.7/tcp/4717/p2p/12D3Koo..."
                ))
            }
        };
        let (tx, rx) = oneshot::channel();
        if node.send(Command::Sync(addr, tx)).await.is_err() {
            return ControlReply::Error("the node is shutting down".into());
        }
        return match rx.await {
            Ok(report) => ControlReply::Ok(serde_json::to_value(report).unwrap_or_default()),
            Err(_) => ControlReply::Error("the node stopped before the sync finished".into()),
        };
    }
    let (tx, rx) = oneshot::channel();
    if node.send(Command::Request(request, tx)).await.is_err() {
        return ControlReply::Error("the node is shutting down".into());
    }
    rx.await
        .unwrap_or_else(|_| ControlReply::Error("the node stopped before answering".into()))
}
