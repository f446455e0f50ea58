//! Design pages: the list with search and filters (a commons' home page), one design with its
//! fields, bill of materials, numbered steps with their photos, files, licence, releases,
//! lineage and builds, and its history and per-field blame.

use super::view::{self, person, short, text, time};
use super::{ask, respond, PageError};
use crate::api::{ListPage, Reply, Request};
use crate::reply::{DocListItem, DocListPage, PlanReply};
use crate::web::i18n::{Lang, Strings};
use crate::web::layout::Page;
use crate::web::WebState;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hedgerow_protocol::schema::design::STAGES;
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::{CommonsId, DocId};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Designs listed on one page of the list: a phone gets the first ones fast.
pub const PAGE_SIZE: usize = 50;

/// The design routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/c/{commons}", get(list))
        .route("/c/{commons}/d/{id}", get(design))
        .route("/c/{commons}/d/{id}/history", get(history))
        .route("/c/{commons}/d/{id}/blame/{field}", get(blame))
}

/// The design list's search and filters, as the form sends them.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Text to find in name, summary and steps.
    #[serde(default)]
    pub q: Option<String>,
    /// A tag every design shown carries.
    #[serde(default)]
    pub tag: Option<String>,
    /// A stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// The page of results, from 1.
    #[serde(default)]
    pub page: Option<usize>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The name of a commons held, for headings.
pub(crate) async fn commons_name(
    state: &WebState,
    commons: &CommonsId,
) -> Result<String, PageError> {
    match ask(
        state,
        Request::CommonsShow {
            commons: Some(commons.to_string()),
        },
    )
    .await?
    {
        Reply::Commons(info) if !info.pending => Ok(info.name),
        _ => Err(PageError::NotFound),
    }
}

/// A commons id from the address; anything else is not found.
pub(crate) fn commons_id(text: &str) -> Result<CommonsId, PageError> {
    text.parse().map_err(|_| PageError::NotFound)
}

/// A document id from the address.
pub(crate) fn doc_id(text: &str) -> Result<DocId, PageError> {
    text.parse().map_err(|_| PageError::NotFound)
}

async fn list(
    State(state): State<WebState>,
    Path(commons): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, list_page(&state, lang, &commons, &query).await)
}

async fn list_page(
    state: &WebState,
    lang: Lang,
    commons: &str,
    query: &ListQuery,
) -> Result<Page, PageError> {
    let s = lang.strings();
    let commons = commons_id(commons)?;
    let name = commons_name(state, &commons).await?;
    let (q, tag, stage) = (given(&query.q), given(&query.tag), given(&query.stage));
    // Only the page shown is built: a commons of thousands of designs lists in one step.
    let wanted = query.page.unwrap_or(1).max(1);
    let mut listed = list_designs(state, &commons, &q, &tag, &stage, wanted).await?;
    let pages = listed.total.div_ceil(PAGE_SIZE).max(1);
    let page = wanted.min(pages);
    if page != wanted {
        listed = list_designs(state, &commons, &q, &tag, &stage, page).await?;
    }
    let (total, shown) = (listed.total, listed.items);
    let more = |to: usize| {
        let mut url = format!("/c/{commons}?page={to}");
        for (key, value) in [("q", &q), ("tag", &tag), ("stage", &stage)] {
            if let Some(value) = value {
                url.push_str(&format!("&{key}={}", url_encode(value)));
            }
        }
        url
    };
    let body = html! {
        h1 { (name) }
        form.search method="get" action={ "/c/" (commons) } role="search" {
            label.q { (s.search_label) input type="search" name="q" value=[q.as_deref()] maxlength="200"; }
            label { (s.tag) input type="text" name="tag" value=[tag.as_deref()] maxlength="64" size="10"; }
            label { (s.stage)
                select name="stage" {
                    option value="" { (s.any_stage) }
                    @for option in STAGES {
                        option value=(option) selected[stage.as_deref() == Some(*option)] { (view::label(option)) }
                    }
                }
            }
            button type="submit" { (s.search) }
        }
        p.meta { (total) " " (s.designs.to_lowercase()) }
        @if total == 0 { p { (s.nothing) } }
        ul.items {
            @for item in &shown { (list_item(lang, &commons, item)) }
        }
        @if pages > 1 {
            nav aria-label="pages" {
                @if page > 1 { a href=(more(page - 1)) rel="prev" { "← " (page - 1) } " " }
                span { (page) " / " (pages) }
                @if page < pages { " " a href=(more(page + 1)) rel="next" { (page + 1) " →" } }
            }
        }
    };
    let mut out = Page::new(lang, name, body);
    out.commons = Some(commons);
    Ok(out)
}

/// Page `page` (from 1) of a commons' designs matching the search and filters.
async fn list_designs(
    state: &WebState,
    commons: &CommonsId,
    q: &Option<String>,
    tag: &Option<String>,
    stage: &Option<String>,
    page: usize,
) -> Result<DocListPage, PageError> {
    let reply = ask(
        state,
        Request::DocList {
            commons: Some(commons.to_string()),
            kind: DocKind::Design,
            target: None,
            tags: tag.iter().cloned().collect(),
            stage: stage.clone(),
            search: q.clone(),
            page: Some(ListPage {
                offset: (page - 1) * PAGE_SIZE,
                limit: PAGE_SIZE,
            }),
        },
    )
    .await?;
    match reply {
        Reply::DocListPage(listed) => Ok(listed),
        _ => Err(PageError::Failed("design list: another reply".into())),
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn list_item(lang: Lang, commons: &CommonsId, item: &DocListItem) -> Markup {
    let s = lang.strings();
    let commons_text = commons.to_string();
    let creator = item.creator.to_string();
    html! {
        li {
            a.title href={ "/c/" (commons) "/d/" (item.id) } { (item.title) }
            p.meta {
                (s.by) " " (person(&commons_text, &creator, item.creator_name.as_deref()))
                " · " (s.updated) " " (time(item.updated_at))
                @if !item.matched.is_empty() { " · " (s.found_in) " " (item.matched.join(", ")) }
            }
        }
    }
}

/// The design page's release choice.
#[derive(Debug, Default, Deserialize)]
pub struct ReleaseQuery {
    /// A release version; the current state when absent.
    #[serde(default)]
    pub v: Option<String>,
}

async fn design(
    State(state): State<WebState>,
    Path((commons, id)): Path<(String, String)>,
    Query(query): Query<ReleaseQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(
        lang,
        design_page(&state, lang, &commons, &id, given(&query.v)).await,
    )
}

async fn design_page(
    state: &WebState,
    lang: Lang,
    commons: &str,
    id: &str,
    version: Option<String>,
) -> Result<Page, PageError> {
    let commons = commons_id(commons)?;
    let id = doc_id(id)?;
    let Reply::Plan(mut plan) = ask(
        state,
        Request::Plan {
            id: id.to_string(),
            version: version.clone(),
        },
    )
    .await?
    else {
        return Err(PageError::Failed("plan: another reply".into()));
    };
    if plan.commons != commons {
        return Err(PageError::NotFound);
    }
    mark_held(state, &mut plan);
    let names = match ask(state, Request::Names { id: id.to_string() }).await? {
        Reply::Names(names) => names,
        _ => BTreeMap::new(),
    };
    let lineage = match ask(state, Request::Lineage { id: id.to_string() }).await? {
        Reply::Lineage(lineage) => Some(lineage),
        _ => None,
    };
    let notes = super::events::notes_on(state, &id).await?;
    // Writing is on the current state only (a release does not change) and never read-only.
    let writable = !state.read_only && version.is_none();
    let here = format!("/c/{commons}/d/{id}");
    let body = html! {
        (design_body(lang, &plan, &names, version.as_deref()))
        (lineage_section(lang, &commons, lineage.as_ref()))
        (super::events::notes_section(lang, &commons, &notes))
        @if writable {
            (crate::web::write::note_form(lang, &id, &here))
            (crate::web::write::built_form(lang, &id))
            (crate::web::write::edit_design_link(lang, &id))
        }
    };
    let title = text(&plan.design.fields, "name").to_string();
    let mut page = Page::new(lang, title, body);
    page.commons = Some(commons);
    // A release does not change: only the current state is live.
    page.live = version.is_none().then_some(id);
    Ok(page)
}

/// Marks each file entry `held` when its bytes are in this node's blob store, so the page
/// links only what it can send.
fn mark_held(state: &WebState, plan: &mut PlanReply) {
    let Some(files) = plan
        .design
        .fields
        .get_mut("files")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for file in files {
        let held = file["hash"]
            .as_str()
            .and_then(|h| h.parse::<hedgerow_protocol::attachment::BlobHash>().ok())
            .is_some_and(|h| state.blobs.has(&h));
        file["held"] = Value::Bool(held);
    }
}

fn design_body(
    lang: Lang,
    plan: &PlanReply,
    names: &BTreeMap<String, String>,
    version: Option<&str>,
) -> Markup {
    let s = lang.strings();
    let doc = &plan.design;
    let fields = &doc.fields;
    let commons = plan.commons.to_string();
    let base = format!("/c/{}/d/{}", plan.commons, doc.id);
    let creator = doc.creator.to_string();
    let files: Vec<&Value> = fields
        .get("files")
        .and_then(Value::as_array)
        .map(|f| f.iter().collect())
        .unwrap_or_default();
    let releases: Vec<&String> = fields
        .get("releases")
        .and_then(Value::as_object)
        .map(|r| r.keys().collect())
        .unwrap_or_default();
    let file_href = |hash: &str| match version {
        Some(v) => format!("{base}/files/{hash}?v={}", url_encode(v)),
        None => format!("{base}/files/{hash}"),
    };
    html! {
        h1 { (text(fields, "name")) }
        p.meta {
            @if !text(fields, "stage").is_empty() { (s.stage) ": " (view::label(text(fields, "stage"))) " · " }
            (s.by) " " (person(&commons, &creator, names.get(&creator).map(String::as_str)))
            " · " (doc.changes) " " (s.changes)
            " · " a href={ (base) "/history" } { (s.history) }
        }
        @if let Some(tags) = fields.get("tags").and_then(Value::as_array) {
            @if !tags.is_empty() {
                p { @for tag in tags.iter().filter_map(Value::as_str) {
                    a.tag href={ "/c/" (commons) "?tag=" (url_encode(tag)) } { (tag) } " "
                } }
            }
        }
        @if !releases.is_empty() {
            form.inline method="get" action=(base) {
                label { (s.releases)
                    select name="v" data-autosubmit {
                        option value="" selected[version.is_none()] { (s.current) }
                        @for release in &releases {
                            option value=(release) selected[version == Some(release.as_str())] { (release) }
                        }
                    }
                }
                button type="submit" { (s.show) }
            }
        }
        @if let Some(v) = version { p.notice { (s.release_shown) " " strong { (v) } "." } }
        @if !doc.conflicts.is_empty() {
            p.notice { (s.conflicts) ": " (doc.conflicts.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join(", ")) }
        }
        @for field in ["summary", "problem", "how_it_works", "intended_use"] {
            @if !text(fields, field).is_empty() {
                h2 { (if field == "summary" { s.summary.to_string() } else { view::label(field) }) }
                p.text { (text(fields, field)) }
                p.meta { a href={ (base) "/blame/" (field) } { (s.blame) } }
            }
        }
        (bom(s, fields.get("bom")))
        (steps(s, fields.get("steps"), &files, &file_href, &base))
        @if !files.is_empty() {
            h2 { (s.files) }
            ul.items {
                @for file in &files {
                    li { (file_link(s, file, &file_href)) }
                }
            }
        }
        h2 { (s.licence) }
        (view::value(fields.get("licence").unwrap_or(&Value::Null)))
        @if !text(fields, "licensor").is_empty() { p { (text(fields, "licensor")) } }
        (built(s, &commons, fields.get("built"), names))
        (details(s, fields))
    }
}

/// Fields the page shows in their own sections; the rest go under "Details".
const SHOWN: &[&str] = &[
    "name",
    "summary",
    "problem",
    "how_it_works",
    "intended_use",
    "tags",
    "stage",
    "licence",
    "licensor",
    "bom",
    "steps",
    "files",
    "built",
    "releases",
    "derivative_of",
];

fn details(s: &Strings, fields: &serde_json::Map<String, Value>) -> Markup {
    let rest: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(k, v)| {
            !SHOWN.contains(&k.as_str())
                && hedgerow_protocol::schema::field_names(DocKind::Design).contains(&k.as_str())
                && !view::is_empty(v)
        })
        .collect();
    html! {
        @if !rest.is_empty() {
            h2 { (s.details) }
            dl.fields {
                @for (key, value) in rest { dt { (view::label(key)) } dd { (view::value(value)) } }
            }
        }
    }
}

fn bom(s: &Strings, bom: Option<&Value>) -> Markup {
    let Some(lines) = bom.and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return html! {};
    };
    let cell = |line: &Value, key: &str| match &line[key] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    html! {
        h2 { (s.bom) }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { (s.part) } th scope="col" { (s.quantity) } th scope="col" { (s.unit) } th scope="col" { (s.sourcing) } } }
                tbody {
                    @for line in lines {
                        tr { td { (cell(line, "name")) } td { (cell(line, "quantity")) } td { (cell(line, "unit")) } td { (cell(line, "sourcing")) } }
                    }
                }
            }
        }
    }
}

fn is_image(file: &Value) -> bool {
    let media = file["media_type"].as_str().unwrap_or("");
    crate::web::files::INLINE_IMAGES.contains(&media)
}

fn steps(
    s: &Strings,
    steps: Option<&Value>,
    files: &[&Value],
    href: &dyn Fn(&str) -> String,
    base: &str,
) -> Markup {
    let Some(steps) = steps.and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return html! {};
    };
    html! {
        h2 { (s.steps) }
        ol.steps {
            @for (i, step) in steps.iter().enumerate() {
                li {
                    p.text { (step.as_str().unwrap_or("")) }
                    @for file in files.iter().filter(|f| f["step"].as_u64() == Some(i as u64 + 1)) {
                        @if is_image(file) && file["held"].as_bool() == Some(true) {
                            figure {
                                @let src = href(file["hash"].as_str().unwrap_or(""));
                                img src=(src) srcset=(srcset(&src)) sizes=(IMAGE_SIZES) alt=(alt(file)) loading="lazy";
                                @if !file["caption"].as_str().unwrap_or("").is_empty() { figcaption { (file["caption"].as_str().unwrap_or("")) } }
                            }
                        } @else {
                            p { (file_link(s, file, href)) }
                        }
                    }
                }
            }
        }
        p.meta { a href={ (base) "/blame/steps" } { (s.blame) } }
    }
}

/// How wide a step photo shows: the page's column (52rem at most, less its padding).
const IMAGE_SIZES: &str = "(min-width: 52rem) 49rem, 100vw";

/// The resized variants of an image at `src`, for the browser to choose from by screen.
fn srcset(src: &str) -> String {
    let join = if src.contains('?') { '&' } else { '?' };
    crate::web::images::WIDTHS
        .iter()
        .map(|w| format!("{src}{join}w={w} {w}w"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn alt(file: &Value) -> String {
    let caption = file["caption"].as_str().unwrap_or("");
    if caption.is_empty() {
        file["name"].as_str().unwrap_or("").to_string()
    } else {
        caption.to_string()
    }
}

fn file_link(s: &Strings, file: &Value, href: &dyn Fn(&str) -> String) -> Markup {
    let name = file["name"].as_str().unwrap_or("");
    let hash = file["hash"].as_str().unwrap_or("");
    let size = file["size"].as_u64().unwrap_or(0);
    let held = file["held"].as_bool() == Some(true);
    html! {
        @if held { a href=(href(hash)) download=(name) { (name) } } @else { (name) }
        span.meta {
            " · " (human_size(size))
            @if !file["role"].as_str().unwrap_or("").is_empty() { " · " (file["role"].as_str().unwrap_or("")) }
            @if !held { " · " (s.not_held) }
        }
        @if !file["caption"].as_str().unwrap_or("").is_empty() { br; span.meta { (file["caption"].as_str().unwrap_or("")) } }
    }
}

/// A byte count as people read it.
pub(crate) fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{} kB", b >> 10),
        b => format!("{b} B"),
    }
}

fn built(
    s: &Strings,
    commons: &str,
    built: Option<&Value>,
    names: &BTreeMap<String, String>,
) -> Markup {
    let Some(builds) = built.and_then(Value::as_array).filter(|b| !b.is_empty()) else {
        return html! {};
    };
    html! {
        h2 { (s.built_by) }
        ul.items {
            @for build in builds {
                @let by = build["by"].as_str().unwrap_or("");
                li {
                    (person(commons, by, names.get(by).map(String::as_str)))
                    @if let Some(place) = build["place"].as_str().filter(|p| !p.is_empty()) { " · " (place) }
                    @if let Some(at) = build["at"].as_i64() { " · " (time(at)) }
                    @if let Some(note) = build["note"].as_str().filter(|n| !n.is_empty()) { p { (note) } }
                }
            }
        }
    }
}

fn lineage_section(
    lang: Lang,
    commons: &CommonsId,
    lineage: Option<&crate::reply::LineageReply>,
) -> Markup {
    let s = lang.strings();
    let Some(lineage) = lineage else {
        return html! {};
    };
    if lineage.ancestors.is_empty() && lineage.derivatives.is_empty() {
        return html! {};
    }
    let name = |id: &DocId, name: &Option<String>| {
        name.clone()
            .unwrap_or_else(|| short(&id.to_string()).to_string())
    };
    html! {
        h2 { (s.lineage) }
        @if !lineage.ancestors.is_empty() {
            h3 { (s.derived_from) }
            ul { @for a in &lineage.ancestors { li { a href={ "/c/" (commons) "/d/" (a.id) } { (name(&a.id, &a.name)) } } } }
        }
        @if !lineage.derivatives.is_empty() {
            h3 { (s.derivatives) }
            ul { @for d in &lineage.derivatives { li { a href={ "/c/" (commons) "/d/" (d.id) } { (name(&d.id, &d.name)) } } } }
        }
    }
}

async fn history(
    State(state): State<WebState>,
    Path((commons, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, history_page(&state, lang, &commons, &id).await)
}

async fn history_page(
    state: &WebState,
    lang: Lang,
    commons: &str,
    id: &str,
) -> Result<Page, PageError> {
    let s = lang.strings();
    let commons = commons_id(commons)?;
    let id = doc_id(id)?;
    let title = super::doc_title(state, &id, DocKind::Design).await?;
    let Reply::History(entries) = ask(
        state,
        Request::History {
            id: id.to_string(),
            kind: DocKind::Design,
        },
    )
    .await?
    else {
        return Err(PageError::Failed("history: another reply".into()));
    };
    let commons_text = commons.to_string();
    let body = html! {
        h1 { (s.history) ": " a href={ "/c/" (commons) "/d/" (id) } { (title) } }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { (s.when) } th scope="col" { (s.by) } th scope="col" { (s.fields_changed) } th scope="col" { "#" } } }
                tbody {
                    @for entry in entries.iter().rev() {
                        @let person_key = entry.person.to_string();
                        tr {
                            td { (time(entry.time)) }
                            td { (person(&commons_text, &person_key, entry.author_name.as_deref()))
                                @if let Some(device) = &entry.device_name { span.meta { " (" (device) ")" } } }
                            td { @for (i, field) in entry.fields.iter().enumerate() {
                                @if i > 0 { ", " }
                                a href={ "/c/" (commons) "/d/" (id) "/blame/" (field) } { (view::label(field)) }
                            } }
                            td.key { (short(&entry.hash)) " " (entry.signature) }
                        }
                    }
                }
            }
        }
    };
    let mut page = Page::new(lang, format!("{} · {title}", s.history), body);
    page.commons = Some(commons);
    page.live = Some(id);
    Ok(page)
}

async fn blame(
    State(state): State<WebState>,
    Path((commons, id, field)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers);
    respond(lang, blame_page(&state, lang, &commons, &id, &field).await)
}

async fn blame_page(
    state: &WebState,
    lang: Lang,
    commons: &str,
    id: &str,
    field: &str,
) -> Result<Page, PageError> {
    let s = lang.strings();
    let commons = commons_id(commons)?;
    let id = doc_id(id)?;
    if !hedgerow_protocol::schema::field_names(DocKind::Design).contains(&field) {
        return Err(PageError::NotFound);
    }
    let title = super::doc_title(state, &id, DocKind::Design).await?;
    let Reply::Blame(entries) = ask(
        state,
        Request::Blame {
            id: id.to_string(),
            kind: DocKind::Design,
            field: field.to_string(),
        },
    )
    .await?
    else {
        return Err(PageError::Failed("blame: another reply".into()));
    };
    let commons_text = commons.to_string();
    let body = html! {
        h1 { (s.blame) ": " (view::label(field)) }
        p { a href={ "/c/" (commons) "/d/" (id) } { (title) } " · " a href={ "/c/" (commons) "/d/" (id) "/history" } { (s.history) } }
        @if entries.is_empty() { p { (s.nothing) } }
        @for entry in &entries {
            @let key = entry.person.or(entry.author).map(|k| k.to_string()).unwrap_or_default();
            div.note {
                p { (entry.text) }
                p.meta { (s.by) " " (person(&commons_text, &key, entry.author_name.as_deref())) " · " span.key { (short(&entry.change)) } }
            }
        }
    };
    let mut page = Page::new(lang, format!("{} · {title}", s.blame), body);
    page.commons = Some(commons);
    page.live = Some(id);
    Ok(page)
}
