//! `hedgerow serve --web [ADDR]`: the web page beside the node, in the same process.

use crate::args::ServeArgs;
use anyhow::{anyhow, Context, Result};
use hedgerow_node::home::Home;
use hedgerow_node::serve::NodeHandle;
use hedgerow_node::web::{self, WebConfig, WebState, DEFAULT_WEB_ADDR};
use std::net::SocketAddr;

/// The web page's settings from `serve`'s flags; `None` when it is not asked for.
pub fn config(args: &ServeArgs) -> Result<Option<WebConfig>> {
    let text = match (&args.web, args.web_read_only) {
        (Some(text), _) => text.as_str(),
        (None, true) => DEFAULT_WEB_ADDR,
        (None, false) => return Ok(None),
    };
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        anyhow!(
            "--web `{text}` is not an address and port such as 127.0.0.1:4718 (this machine) \
             or 0.0.0.0:4718 (every network this machine is on)"
        )
    })?;
    Ok(Some(WebConfig {
        addr,
        read_only: args.web_read_only,
    }))
}

/// Binds the web page's address (failing before the node starts when it is taken) and serves
/// it in a task; prints the address to open, with the port the system chose for port 0.
pub async fn start(
    home: &Home,
    node: NodeHandle,
    config: WebConfig,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| {
            format!(
                "cannot serve the web page on {} (another program may use the port; choose \
                 another with --web ADDR)",
                config.addr
            )
        })?;
    let bound = listener.local_addr().context("the web page's address")?;
    let state = WebState::new(node, home.root(), &config);
    let mode = if config.read_only { " (read-only)" } else { "" };
    eprintln!("web page on http://{bound}/{mode}");
    if !bound.ip().is_loopback() {
        eprintln!(
            "  anyone who can reach this address can read the commons held here{}",
            if config.read_only {
                ""
            } else {
                " and write with their own keys"
            }
        );
    }
    Ok(tokio::spawn(async move {
        if let Err(e) = web::serve(listener, state).await {
            tracing::error!("the web page stopped: {e}");
        }
    }))
}
