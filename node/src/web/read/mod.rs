//! The reading side of the web page: commons, designs, events, notes and people, rendered on
//! the server from the node's replies (the same [`Request`]s the CLI sends).
//!
//! Failures never show the node's own error text beyond what the visitor typed: a store error
//! may name paths of the home, which a page must not expose. Unknown ids give 404.

use super::i18n::Lang;
use super::layout::Page;
use super::WebState;
use crate::api::{Reply, Request};
use crate::replicas::NodeError;
use crate::serve::HandleError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;

pub mod designs;
pub mod events;
pub mod people;
pub mod view;

/// The reading routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(commons_list))
        .merge(designs::routes())
        .merge(events::routes())
        .merge(people::routes())
        .merge(super::files::routes())
}

/// Why a page could not be made.
#[derive(Debug)]
pub enum PageError {
    /// Nothing held under that address.
    NotFound,
    /// The visitor's own input was refused (a bad filter); the text says why.
    BadInput(String),
    /// The node failed; logged, not shown.
    Failed(String),
}

impl From<HandleError> for PageError {
    fn from(error: HandleError) -> Self {
        match error {
            HandleError::Refused(e) => match e {
                NodeError::UnknownCommons(_)
                | NodeError::UnknownDoc { .. }
                | NodeError::Ambiguous { .. }
                | NodeError::PrefixTooShort(_)
                | NodeError::NeedFullId { .. }
                | NodeError::WrongKind { .. }
                | NodeError::UnknownRelease { .. }
                | NodeError::NoCommons
                | NodeError::Local(_) => PageError::NotFound,
                NodeError::Edit(e) => PageError::BadInput(e.to_string()),
                other => PageError::Failed(other.to_string()),
            },
            other => PageError::Failed(other.to_string()),
        }
    }
}

impl PageError {
    /// The error as a page in the visitor's language.
    pub fn page(self, lang: Lang) -> Page {
        let s = lang.strings();
        let (status, title, text) = match self {
            PageError::NotFound => (StatusCode::NOT_FOUND, s.not_found.to_string(), None),
            PageError::BadInput(text) => {
                (StatusCode::BAD_REQUEST, s.failed.to_string(), Some(text))
            }
            PageError::Failed(detail) => {
                tracing::warn!("web page: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    s.failed.to_string(),
                    None,
                )
            }
        };
        let body = html! {
            h1 { (title) }
            @if let Some(text) = text { p.notice { (text) } }
            p { a href="/" { (s.commons) } }
        };
        let mut page = Page::new(lang, title, body);
        page.status = status;
        page
    }
}

/// Runs one request on the node.
pub(crate) async fn ask(state: &WebState, request: Request) -> Result<Reply, PageError> {
    Ok(state.node.store(request).await?)
}

/// The title of a document (a design's name, an event's title).
pub(crate) async fn doc_title(
    state: &WebState,
    id: &hedgerow_protocol::DocId,
    kind: hedgerow_protocol::schema::DocKind,
) -> Result<String, PageError> {
    let doc = events::show(state, id, kind).await?;
    let field = hedgerow_protocol::schema::facts::title_field(kind);
    Ok(view::text(&doc.fields, field).to_string())
}

/// A page, or the error as a page.
pub(crate) fn respond(lang: Lang, page: Result<Page, PageError>) -> Response {
    match page {
        Ok(page) => page.into_response(),
        Err(e) => e.page(lang).into_response(),
    }
}

/// The answer to an address nothing serves.
pub async fn not_found(headers: HeaderMap) -> Response {
    PageError::NotFound.page(Lang::of(&headers)).into_response()
}

/// `/`: the commons held here, with what each holds.
async fn commons_list(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, commons_page(&state, lang).await)
}

async fn commons_page(state: &WebState, lang: Lang) -> Result<Page, PageError> {
    let s = lang.strings();
    let Reply::CommonsList(list) = ask(state, Request::CommonsList).await? else {
        return Err(PageError::Failed("commons list: another reply".into()));
    };
    let body = html! {
        h1 { (s.commons) }
        @if list.iter().all(|c| c.pending) { p { (s.nothing) } }
        ul.items {
            @for commons in list.iter().filter(|c| !c.pending) {
                li {
                    a.title href={ "/c/" (commons.id) } { (commons.name) }
                    @if !commons.description.is_empty() { p { (commons.description) } }
                    p.meta {
                        (commons.documents.design) " " (s.designs.to_lowercase()) " · "
                        (commons.documents.event) " " (s.events.to_lowercase()) " · "
                        (commons.documents.note) " " (s.notes.to_lowercase())
                    }
                }
            }
        }
        @if !state.read_only {
            p { a href=(crate::web::write::ENROL_PATH) { (s.write_here) } }
        }
    };
    Ok(Page::new(lang, s.commons, body))
}
