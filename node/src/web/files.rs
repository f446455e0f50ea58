//! Files attached to designs and notes, sent from the home's blob store.
//!
//! Only a file the document names is sent (asked through the node, which refuses hidden and
//! retracted documents): a blob hash alone opens nothing. Raster images are shown inline; every
//! other type is sent as a download, so a peer's HTML or SVG never runs as this node's page.
//! `?w=480` or `?w=960` asks for an image scaled down to that width ([`super::images`]).

use super::i18n::Lang;
use super::images::{Resized, WIDTHS};
use super::read::designs::{commons_id, doc_id};
use super::read::{ask, PageError};
use super::WebState;
use crate::api::{Reply, Request};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hedgerow_protocol::attachment::BlobHash;
use hedgerow_protocol::schema::DocKind;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

/// Media types shown inline in a page (`<img>`); all others are downloads.
pub const INLINE_IMAGES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Bytes read from the blob file per chunk sent.
const CHUNK: usize = 64 * 1024;

/// The file routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/c/{commons}/d/{id}/files/{hash}", get(design_file))
        .route("/c/{commons}/n/{id}/files/{hash}", get(note_file))
}

/// A file's query: the release it is of, and the width an image is wanted at.
#[derive(Debug, Default, Deserialize)]
pub struct FileQuery {
    /// A release version; the current state when absent.
    #[serde(default)]
    pub v: Option<String>,
    /// One of [`WIDTHS`]: the image scaled down to that width.
    #[serde(default)]
    pub w: Option<u32>,
}

async fn design_file(
    State(state): State<WebState>,
    Path((commons, id, hash)): Path<(String, String, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Response {
    send(
        &state,
        &headers,
        (&commons, &id, &hash),
        DocKind::Design,
        query,
    )
    .await
}

async fn note_file(
    State(state): State<WebState>,
    Path((commons, id, hash)): Path<(String, String, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Response {
    let query = FileQuery { v: None, ..query };
    send(
        &state,
        &headers,
        (&commons, &id, &hash),
        DocKind::Note,
        query,
    )
    .await
}

async fn send(
    state: &WebState,
    headers: &HeaderMap,
    (commons, id, hash): (&str, &str, &str),
    kind: DocKind,
    query: FileQuery,
) -> Response {
    let lang = Lang::of(headers);
    match file(state, commons, id, hash, kind, query).await {
        Ok(response) => response,
        Err(e) => e.page(lang).into_response(),
    }
}

/// The image at one of [`WIDTHS`], made (once) off the async threads; `None` to send the
/// original.
async fn resized(state: &WebState, hash: BlobHash, width: u32) -> Option<Response> {
    let _turn = state.resizing.acquire().await.ok()?;
    let images = state.images.clone();
    let got = tokio::task::spawn_blocking(move || images.get(&hash, width))
        .await
        .ok()?;
    let Resized::File(path, media) = got else {
        return None;
    };
    let bytes = tokio::fs::read(&path).await.ok()?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    out.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Some(response)
}

async fn file(
    state: &WebState,
    commons: &str,
    id: &str,
    hash: &str,
    kind: DocKind,
    query: FileQuery,
) -> Result<Response, PageError> {
    let version = query.v;
    commons_id(commons)?;
    let id = doc_id(id)?;
    // A full hash only: a prefix could match another file of the document.
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PageError::NotFound);
    }
    // A hash the document does not name is simply not here (the node says "no such file").
    let Ok(Reply::File(row)) = ask(
        state,
        Request::FileFind {
            id: id.to_string(),
            kind,
            file: hash.to_string(),
            version: version.filter(|v| !v.trim().is_empty()),
        },
    )
    .await
    else {
        return Err(PageError::NotFound);
    };
    if !row.held {
        return Err(PageError::NotFound);
    }
    let entry = row.entry;
    let inline = INLINE_IMAGES.contains(&entry.media_type.as_str());
    if let Some(width) = query.w {
        if !WIDTHS.contains(&width) {
            return Err(PageError::BadInput(format!(
                "w must be one of {WIDTHS:?} (pixels)"
            )));
        }
        if inline {
            if let Some(response) = resized(state, entry.hash, width).await {
                return Ok(response);
            }
        }
    }
    let opened = state
        .blobs
        .open(&entry.hash)
        .map_err(|e| PageError::Failed(e.to_string()))?;
    let file = tokio::fs::File::from_std(opened);
    let chunks = futures::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let media = if inline {
        entry.media_type.clone()
    } else {
        "application/octet-stream".to_string()
    };
    let mut response = (StatusCode::OK, Body::from_stream(chunks)).into_response();
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&media) {
        out.insert(header::CONTENT_TYPE, value);
    }
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.size));
    // Named by hash: the bytes never change.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        safe_name(&entry.name)
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        out.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A file name fit for a `Content-Disposition` header: printable ASCII without quotes or
/// backslashes (others become `_`).
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_break_the_header() {
        assert_eq!(safe_name("plan \"v2\".pdf"), "plan _v2_.pdf");
        assert_eq!(safe_name("a\r\nb.txt"), "a__b.txt");
        assert_eq!(safe_name("crâne.png"), "cr_ne.png");
    }
}
