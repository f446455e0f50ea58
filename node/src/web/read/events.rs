//! Events and notes: the list of a commons' events, one event with its notes (live: a note
//! written anywhere shows up without a reload), and one note in full.

use super::designs::{commons_id, commons_name, doc_id};
use super::view::{self, person, text};
use super::{ask, respond, PageError};
use crate::api::{Reply, Request};
use crate::reply::{DocListItem, ListExtra, ShownDocument};
use crate::web::i18n::Lang;
use crate::web::layout::Page;
use crate::web::WebState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::{CommonsId, DocId};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most notes a design or event page shows (the newest); a page stays small on a phone.
pub const MAX_NOTES_SHOWN: usize = 100;

/// Most characters of one note shown in a list; the note's own page shows it all.
pub const NOTE_PREVIEW_CHARS: usize = 1500;

/// The event and note routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/c/{commons}/events", get(list))
        .route("/c/{commons}/e/{id}", get(event))
        .route("/c/{commons}/n/{id}", get(note))
        .route("/c/{commons}/go/{id}", get(go))
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
    let Reply::DocList(items) = ask(
        state,
        Request::DocList {
            commons: Some(commons.to_string()),
            kind: DocKind::Event,
            target: None,
            tags: Vec::new(),
            stage: None,
            search: None,
            page: None,
        },
    )
    .await?
    else {
        return Err(PageError::Failed("event list: another reply".into()));
    };
    let commons_text = commons.to_string();
    let body = html! {
        h1 { (s.events) " · " (name) }
        @if items.is_empty() { p { (s.nothing) } }
        ul.items {
            @for item in &items {
                li {
                    a.title href={ "/c/" (commons) "/e/" (item.id) } { (item.title) }
                    @if let ListExtra::Event { kind, start, end, location } = &item.extra {
                        p.meta {
                            @if let Some(kind) = kind { (kind) " · " }
                            @if let Some(start) = start { (start) }
                            @if let Some(end) = end { " – " (end) }
                            @if let Some(location) = location { " · " (location) }
                        }
                    }
                    p.meta { (s.by) " " (person(&commons_text, &item.creator.to_string(), item.creator_name.as_deref())) }
                }
            }
        }
    };
    let mut page = Page::new(lang, format!("{} · {name}", s.events), body);
    page.commons = Some(commons);
    Ok(page)
}

/// The notes on a design or event, newest first.
pub(crate) async fn notes_on(
    state: &WebState,
    target: &DocId,
) -> Result<Vec<DocListItem>, PageError> {
    match ask(
        state,
        Request::DocList {
            commons: None,
            kind: DocKind::Note,
            target: Some(target.to_string()),
            tags: Vec::new(),
            stage: None,
            search: None,
            page: None,
        },
    )
    .await?
    {
        Reply::DocList(items) => Ok(items),
        _ => Err(PageError::Failed("note list: another reply".into())),
    }
}

/// The notes section of a design or event page: oldest first, replies under what they answer.
pub(crate) fn notes_section(lang: Lang, commons: &CommonsId, notes: &[DocListItem]) -> Markup {
    let s = lang.strings();
    let shown: Vec<&DocListItem> = notes.iter().take(MAX_NOTES_SHOWN).collect();
    let held: std::collections::HashSet<DocId> = shown.iter().map(|n| n.id).collect();
    // Top-level notes oldest first, each followed by its replies oldest first.
    let mut order: Vec<(&DocListItem, bool)> = Vec::new();
    for note in shown.iter().rev() {
        if note.reply_to.is_some_and(|parent| held.contains(&parent)) {
            continue;
        }
        order.push((note, false));
        for reply in shown.iter().rev().filter(|r| r.reply_to == Some(note.id)) {
            order.push((reply, true));
        }
    }
    html! {
        section #notes aria-labelledby="notes-heading" {
            h2 #notes-heading { (s.notes) " (" (notes.len()) ")" }
            @if notes.is_empty() { p { (s.nothing) } }
            @for (note, reply) in order { (note_item(lang, commons, note, reply)) }
        }
    }
}

fn note_item(lang: Lang, commons: &CommonsId, note: &DocListItem, reply: bool) -> Markup {
    let s = lang.strings();
    let commons_text = commons.to_string();
    let (preview, cut) = match note.title.char_indices().nth(NOTE_PREVIEW_CHARS) {
        Some((at, _)) => (&note.title[..at], true),
        None => (note.title.as_str(), false),
    };
    let kind = match &note.extra {
        ListExtra::Note { kind, .. } => kind.clone(),
        _ => None,
    };
    html! {
        article.note.reply[reply] id={ "note-" (note.id) } {
            p { (preview) @if cut { "…" } }
            p.meta {
                @if let Some(kind) = kind { (kind) " · " }
                (s.by) " " (person(&commons_text, &note.creator.to_string(), note.creator_name.as_deref()))
                " · " a href={ "/c/" (commons) "/n/" (note.id) } { (view::time(note.updated_at)) }
            }
        }
    }
}

async fn event(
    State(state): State<WebState>,
    Path((commons, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, event_page(&state, lang, &commons, &id).await)
}

/// A document as shown, of the kind asked.
pub(crate) async fn show(
    state: &WebState,
    id: &DocId,
    kind: DocKind,
) -> Result<ShownDocument, PageError> {
    match ask(
        state,
        Request::DocShow {
            id: id.to_string(),
            kind,
            version: None,
        },
    )
    .await?
    {
        Reply::Document(doc) => Ok(doc),
        _ => Err(PageError::Failed("show: another reply".into())),
    }
}

/// Display names of the keys and ids a document names.
pub(crate) async fn names(state: &WebState, id: &DocId) -> BTreeMap<String, String> {
    match ask(state, Request::Names { id: id.to_string() }).await {
        Ok(Reply::Names(names)) => names,
        _ => BTreeMap::new(),
    }
}

/// Event fields with a section of their own; the others go under "Details".
const SHOWN: &[&str] = &[
    "title",
    "kind",
    "start",
    "end",
    "location",
    "summary",
    "description",
    "designs",
    "tags",
];

async fn event_page(
    state: &WebState,
    lang: Lang,
    commons: &str,
    id: &str,
) -> Result<Page, PageError> {
    let s = lang.strings();
    let commons = commons_id(commons)?;
    let id = doc_id(id)?;
    let doc = show(state, &id, DocKind::Event).await?;
    let names = names(state, &id).await;
    let notes = notes_on(state, &id).await?;
    let fields = &doc.fields;
    let commons_text = commons.to_string();
    let creator = doc.creator.to_string();
    let designs: Vec<&str> = fields
        .get("designs")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let rest: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(k, v)| {
            !SHOWN.contains(&k.as_str())
                && hedgerow_protocol::schema::field_names(DocKind::Event).contains(&k.as_str())
                && !view::is_empty(v)
        })
        .collect();
    let body = html! {
        h1 { (text(fields, "title")) }
        p.meta {
            @if !text(fields, "kind").is_empty() { (text(fields, "kind")) " · " }
            (s.by) " " (person(&commons_text, &creator, names.get(&creator).map(String::as_str)))
        }
        dl.fields {
            @if !text(fields, "start").is_empty() {
                dt { (s.when) }
                dd { (text(fields, "start")) @if !text(fields, "end").is_empty() { " – " (text(fields, "end")) } }
            }
            @if let Some(location) = fields.get("location").filter(|l| !view::is_empty(l)) {
                dt { (s.place) } dd { (view::value(location)) }
            }
        }
        @for field in ["summary", "description"] {
            @if !text(fields, field).is_empty() { p.text { (text(fields, field)) } }
        }
        @if !designs.is_empty() {
            h2 { (s.designs) }
            ul { @for design in &designs {
                li { a href={ "/c/" (commons) "/d/" (design) } { (names.get(*design).cloned().unwrap_or_else(|| view::short(design).to_string())) } }
            } }
        }
        @if !rest.is_empty() {
            h2 { (s.details) }
            dl.fields { @for (key, value) in rest { dt { (view::label(key)) } dd { (view::value(value)) } } }
        }
        (notes_section(lang, &commons, &notes))
        @if !state.read_only {
            (crate::web::write::note_form(lang, &id, &format!("/c/{commons}/e/{id}")))
        }
    };
    let mut page = Page::new(lang, text(fields, "title").to_string(), body);
    page.commons = Some(commons);
    page.live = Some(id);
    Ok(page)
}

async fn note(
    State(state): State<WebState>,
    Path((commons, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, note_page(&state, lang, &commons, &id).await)
}

async fn note_page(
    state: &WebState,
    lang: Lang,
    commons: &str,
    id: &str,
) -> Result<Page, PageError> {
    let s = lang.strings();
    let commons = commons_id(commons)?;
    let id = doc_id(id)?;
    let doc = show(state, &id, DocKind::Note).await?;
    let names = names(state, &id).await;
    let fields = &doc.fields;
    let commons_text = commons.to_string();
    let creator = doc.creator.to_string();
    let target = text(fields, "target");
    let reply_to = text(fields, "reply_to");
    let body = html! {
        article.note {
            p { (text(fields, "body")) }
            p.meta {
                @if !text(fields, "kind").is_empty() { (text(fields, "kind")) " · " }
                (s.by) " " (person(&commons_text, &creator, names.get(&creator).map(String::as_str)))
            }
        }
        @if !reply_to.is_empty() {
            p { (s.in_reply_to) " " a href={ "/c/" (commons) "/n/" (reply_to) } { (view::short(reply_to)) } }
        }
        @if !target.is_empty() {
            p { "→ " a href={ "/c/" (commons) "/go/" (target) } { (names.get(target).cloned().unwrap_or_else(|| view::short(target).to_string())) } }
        }
        @if !state.read_only {
            (crate::web::write::note_edit_form(lang, &id, text(fields, "body")))
        }
    };
    let title: String = text(fields, "body").chars().take(60).collect();
    let mut page = Page::new(lang, title, body);
    page.commons = Some(commons);
    page.live = Some(id);
    Ok(page)
}

/// `/c/{commons}/go/{id}`: the page of a design or event whose kind the link did not know.
async fn go(
    State(state): State<WebState>,
    Path((commons, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    let Ok(commons) = commons_id(&commons) else {
        return PageError::NotFound.page(lang).into_response();
    };
    let Ok(id) = doc_id(&id) else {
        return PageError::NotFound.page(lang).into_response();
    };
    for (kind, letter) in [
        (DocKind::Design, "d"),
        (DocKind::Event, "e"),
        (DocKind::Note, "n"),
    ] {
        if show(&state, &id, kind).await.is_ok() {
            return Redirect::to(&format!("/c/{commons}/{letter}/{id}")).into_response();
        }
    }
    PageError::NotFound.page(lang).into_response()
}
