//! People: a commons' profiles, and one person's profile with what they made there.

use super::designs::{commons_id, commons_name};
use super::view::{self, text};
use super::{ask, respond, PageError};
use crate::api::{Reply, Request};
use crate::reply::DocListItem;
use crate::web::i18n::Lang;
use crate::web::layout::Page;
use crate::web::WebState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::{AuthorKey, CommonsId};
use maud::html;

/// The people routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/c/{commons}/people", get(list))
        .route("/c/{commons}/p/{key}", get(profile))
}

async fn docs(
    state: &WebState,
    commons: &CommonsId,
    kind: DocKind,
) -> Result<Vec<DocListItem>, PageError> {
    match ask(
        state,
        Request::DocList {
            commons: Some(commons.to_string()),
            kind,
            target: None,
            tags: Vec::new(),
            stage: None,
            search: None,
            page: None,
        },
    )
    .await?
    {
        Reply::DocList(items) => Ok(items),
        _ => Err(PageError::Failed("list: another reply".into())),
    }
}

async fn list(
    State(state): State<WebState>,
    Path(commons): Path<String>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, list_page(&state, lang, &commons).await)
}

async fn list_page(state: &WebState, lang: Lang, commons: &str) -> Result<Page, PageError> {
    let s = lang.strings();
    let commons = commons_id(commons)?;
    let name = commons_name(state, &commons).await?;
    let mut people = docs(state, &commons, DocKind::Profile).await?;
    people.sort_by_key(|p| p.title.to_lowercase());
    let body = html! {
        h1 { (s.people) " · " (name) }
        @if people.is_empty() { p { (s.nothing) } }
        ul.items {
            @for p in &people {
                li { a.title href={ "/c/" (commons) "/p/" (p.creator) } { (if p.title.is_empty() { view::short(&p.creator.to_string()).to_string() } else { p.title.clone() }) } }
            }
        }
    };
    let mut page = Page::new(lang, format!("{} · {name}", s.people), body);
    page.commons = Some(commons);
    Ok(page)
}

async fn profile(
    State(state): State<WebState>,
    Path((commons, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, profile_page(&state, lang, &commons, &key).await)
}

async fn profile_page(
    state: &WebState,
    lang: Lang,
    commons: &str,
    key: &str,
) -> Result<Page, PageError> {
    let s = lang.strings();
    let commons = commons_id(commons)?;
    let key: AuthorKey = key.parse().map_err(|_| PageError::NotFound)?;
    let profiles = docs(state, &commons, DocKind::Profile).await?;
    let doc = match profiles.iter().find(|p| p.creator == key) {
        Some(p) => Some(super::events::show(state, &p.id, DocKind::Profile).await?),
        None => None,
    };
    let designs: Vec<DocListItem> = docs(state, &commons, DocKind::Design)
        .await?
        .into_iter()
        .filter(|d| d.creator == key)
        .collect();
    let key_text = key.to_string();
    let name = doc
        .as_ref()
        .map(|d| text(&d.fields, "name").to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| view::short(&key_text).to_string());
    let body = html! {
        h1 { (name) }
        @if let Some(doc) = &doc {
            dl.fields {
                @if !text(&doc.fields, "location").is_empty() { dt { (s.location) } dd { (text(&doc.fields, "location")) } }
                @if !text(&doc.fields, "bio").is_empty() { dt { (s.about) } dd { (text(&doc.fields, "bio")) } }
                dt { (s.key) } dd.key { (key_text) }
            }
        } @else {
            p.key { (key_text) }
        }
        h2 { (s.designs) }
        @if designs.is_empty() { p { (s.nothing) } }
        ul.items {
            @for d in &designs { li { a.title href={ "/c/" (commons) "/d/" (d.id) } { (d.title) } } }
        }
    };
    let mut page = Page::new(lang, name, body);
    page.commons = Some(commons);
    Ok(page)
}
