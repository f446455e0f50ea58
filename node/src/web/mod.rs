//! The web page a running node serves (`hedgerow serve --web ADDR`): designs, events and people
//! of the commons held, readable on a cheap phone with JavaScript off.
//!
//! Every page is rendered on the server from the node's typed API (the same [`Request`]s the
//! CLI sends, through a [`NodeHandle`]), with maud templates that escape every interpolated
//! string; script only enhances (live updates over server-sent events, [`live`]).
//!
//! The router is [`routes`]: the reading side ([`read`], [`live`], [`assets`]) always, the
//! writing side ([`write`]) unless the node serves read-only. Every answer carries the security
//! headers of [`guard`]; requests are limited in size and rate there too.
//!
//! [`Request`]: crate::api::Request

pub mod assets;
pub mod files;
pub mod guard;
pub mod i18n;
pub mod images;
pub mod layout;
pub mod live;
pub mod read;
pub mod write;

use crate::blobs::store::BlobStore;
use crate::serve::NodeHandle;
use axum::Router;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The address `--web` alone binds: this machine only. A LAN address is an explicit choice.
pub const DEFAULT_WEB_ADDR: &str = "127.0.0.1:4718";

/// Settings of the web page.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Serve no write endpoint (a public hub).
    pub read_only: bool,
}

/// What every handler reads: the node, the blob store, the limits.
#[derive(Clone)]
pub struct WebState {
    /// The running node; every page is built from its replies.
    pub node: NodeHandle,
    /// Whether write endpoints are off.
    pub read_only: bool,
    /// The home's blob store, to send attached files (only those a document names).
    pub blobs: BlobStore,
    /// Per-address request rates and the live stream count.
    pub limits: Arc<guard::Limits>,
    /// Step photos resized for phones, kept under the home.
    pub images: images::ImageCache,
    /// One resize at a time: decoding a photo is the heaviest thing a page asks of the node.
    pub resizing: Arc<tokio::sync::Semaphore>,
    /// Whether the listener is on loopback: then only loopback `Host` names are answered (a
    /// page elsewhere cannot reach this node by rebinding its own name to 127.0.0.1).
    pub loopback: bool,
}

impl WebState {
    /// The state of a web page for `node`, whose home is at `home_root`.
    pub fn new(node: NodeHandle, home_root: &Path, config: &WebConfig) -> Self {
        WebState {
            node,
            read_only: config.read_only,
            blobs: BlobStore::new(home_root),
            images: images::ImageCache::new(home_root, BlobStore::new(home_root)),
            resizing: Arc::new(tokio::sync::Semaphore::new(1)),
            limits: Arc::new(guard::Limits::default()),
            loopback: config.addr.ip().is_loopback(),
        }
    }
}

/// Every route of the web page: reading always, writing unless read-only, then the guard.
pub fn routes(state: WebState) -> Router {
    let mut router = Router::new()
        .merge(read::routes())
        .merge(live::routes())
        .merge(assets::routes());
    if !state.read_only {
        router = router.merge(write::routes());
    }
    router
        .fallback(read::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(guard::MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves the web page on `listener` until the task running it is aborted (live streams never
/// end by themselves, so the node stops the server rather than waiting for them).
pub async fn serve(listener: tokio::net::TcpListener, state: WebState) -> std::io::Result<()> {
    let app = routes(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await
}
