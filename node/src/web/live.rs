//! Live updates: `/live/{id}` is a server-sent event stream that says `change` each time the
//! document, or a note on it, takes signed changes (from this node's users or from peers). The
//! page's script then fetches the page again; the stream itself carries no content.

use super::guard::plain;
use super::WebState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::stream::{self, Stream};
use hedgerow_protocol::DocId;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How often an idle stream sends a comment, so proxies and phones keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// The live route.
pub fn routes() -> Router<WebState> {
    Router::new().route("/live/{id}", get(live))
}

async fn live(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    let Ok(doc) = id.parse::<DocId>() else {
        return plain(StatusCode::NOT_FOUND, "no such document");
    };
    let Some(slot) = state.limits.open_live() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live pages are open on this node; reload later",
        );
    };
    let changes = state.node.changes();
    let events = stream::unfold((changes, slot), move |(mut changes, slot)| async move {
        loop {
            match changes.recv().await {
                Ok(change) if change.concerns(&doc) => {
                    let event = Event::default()
                        .event("change")
                        .data(change.doc.to_string());
                    return Some((Ok::<_, Infallible>(event), (changes, slot)));
                }
                Ok(_) => continue,
                // Missed some: one of them may have been ours.
                Err(RecvError::Lagged(_)) => {
                    let event = Event::default().event("change").data("");
                    return Some((Ok(event), (changes, slot)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    sse(events)
}

fn sse(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
