//! `serve --metrics ADDR`: Prometheus (OpenMetrics text) at `http://ADDR/metrics`.
//!
//! Two parts: libp2p's own metrics (connections, identify, kad, ping, gossipsub), recorded
//! from every swarm event into a registry that lives as long as the node; and Hedgerow's
//! figures, read from the node's status at each scrape (so they are exactly what
//! `hedgerow status` shows, with no second set of counters to keep in step).
//!
//! The HTTP side is deliberately tiny: one request per connection, `GET /metrics` or 404, a
//! bounded request size and read time, no keep-alive. Bind it to loopback or a private
//! address; it has no authentication.

use super::handle::NodeHandle;
use super::status::NodeStatus;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read; a scrape's is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
/// Longest a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` for the metrics endpoint.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Answers scrapes on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, node: NodeHandle, libp2p: Arc<Registry>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (node, libp2p) = (node.clone(), libp2p.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &node, &libp2p).await {
                tracing::debug!("metrics request failed: {e}");
            }
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    node: &NodeHandle,
    libp2p: &Registry,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) =
        if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
            match node.status().await {
                Ok(status) => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    render(&status, libp2p),
                ),
                Err(_) => (
                    "503 Service Unavailable",
                    "text/plain",
                    "node stopping\n".into(),
                ),
            }
        } else {
            (
                "404 Not Found",
                "text/plain",
                "metrics are at /metrics\n".into(),
            )
        };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The exposition text: libp2p's registry, then Hedgerow's figures from `status`.
pub fn render(status: &NodeStatus, libp2p: &Registry) -> String {
    let mut registry = Registry::with_prefix("hedgerow");
    let counter = |r: &mut Registry, name: &str, help: &str, value: u64| {
        r.register(name, help, ConstCounter::new(value));
    };
    let gauge = |r: &mut Registry, name: &str, help: &str, value: u64| {
        r.register(
            name,
            help,
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)),
        );
    };
    let c = &status.counters;
    counter(
        &mut registry,
        "changes_received",
        "Signed changes taken in from peers",
        c.changes_received,
    );
    counter(
        &mut registry,
        "documents_received",
        "Documents received from peers",
        c.docs_received,
    );
    counter(
        &mut registry,
        "documents_sent",
        "Documents sent to peers",
        c.docs_sent,
    );
    counter(
        &mut registry,
        "live_published",
        "Changes published live (gossip)",
        c.live_published,
    );
    counter(
        &mut registry,
        "live_received",
        "Changes received live (gossip)",
        c.live_received,
    );
    counter(
        &mut registry,
        "rejected",
        "Items refused from peers, all reasons",
        status.rejected_total,
    );
    counter(
        &mut registry,
        "peers_banned",
        "Peers banned for misbehaving",
        c.peers_banned,
    );
    counter(
        &mut registry,
        "store_failures",
        "Writes the store refused",
        c.store_failures,
    );
    counter(
        &mut registry,
        "sync_sent_bytes",
        "Bytes of sync frames sent",
        status.bytes.sync_sent,
    );
    counter(
        &mut registry,
        "sync_received_bytes",
        "Bytes of sync frames received",
        status.bytes.sync_received,
    );
    counter(
        &mut registry,
        "transport_in_bytes",
        "All transport bytes received",
        status.bytes.transport_in,
    );
    counter(
        &mut registry,
        "transport_out_bytes",
        "All transport bytes sent",
        status.bytes.transport_out,
    );
    counter(
        &mut registry,
        "blob_received_bytes",
        "Attachment bytes received",
        status.blob_transfer.bytes_received,
    );
    counter(
        &mut registry,
        "blob_sent_bytes",
        "Attachment bytes sent",
        status.blob_transfer.bytes_sent,
    );
    counter(
        &mut registry,
        "blobs_fetched",
        "Attachments fetched complete",
        status.blob_transfer.fetched,
    );
    gauge(
        &mut registry,
        "peers_connected",
        "Peers connected now",
        status.connected.len() as u64,
    );
    gauge(
        &mut registry,
        "commons_held",
        "Commons this node holds",
        status.commons.len() as u64,
    );
    gauge(
        &mut registry,
        "changes_held",
        "Signed changes in the store",
        status.held_changes,
    );
    gauge(
        &mut registry,
        "blobs_held",
        "Attachments held complete",
        status.blobs.held as u64,
    );
    gauge(
        &mut registry,
        "blobs_held_bytes",
        "Bytes of attachments held",
        status.blobs.bytes,
    );
    gauge(
        &mut registry,
        "blobs_wanted",
        "Attachments wanted and not held",
        status.blobs.wanted as u64,
    );
    gauge(
        &mut registry,
        "store_bytes",
        "Bytes of the store on disk",
        status.store_bytes,
    );
    let mut out = String::new();
    let _ = encode(&mut out, libp2p);
    // Each encoding ends with the OpenMetrics end marker; only the last may.
    if let Some(stripped) = out.strip_suffix("# EOF\n") {
        out.truncate(stripped.len());
    }
    let _ = encode(&mut out, &registry);
    out
}
