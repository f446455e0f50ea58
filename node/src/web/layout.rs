//! The shell every page shares: language, title, navigation, one stylesheet and one deferred
//! script, no inline script or style (the Content-Security-Policy forbids them).

use super::i18n::Lang;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hedgerow_protocol::{CommonsId, DocId};
use maud::{html, Markup, DOCTYPE};

/// A page to send: its language, title, body and what it is about.
pub struct Page {
    /// The language it is written in.
    pub lang: Lang,
    /// The `<title>` (and first heading, which the body writes itself).
    pub title: String,
    /// The commons it belongs to, for the navigation.
    pub commons: Option<CommonsId>,
    /// The document whose changes update it live, if any.
    pub live: Option<DocId>,
    /// What goes in `<main>`.
    pub body: Markup,
    /// The answer's status.
    pub status: StatusCode,
}

impl Page {
    /// A page with status 200, in no commons, not live.
    pub fn new(lang: Lang, title: impl Into<String>, body: Markup) -> Self {
        Page {
            lang,
            title: title.into(),
            commons: None,
            live: None,
            body,
            status: StatusCode::OK,
        }
    }

    /// The page as HTML.
    pub fn render(&self) -> Markup {
        let s = self.lang.strings();
        html! {
            (DOCTYPE)
            html lang=(self.lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Hedgerow" }
                    link rel="stylesheet" href=(super::assets::CSS_PATH);
                    script defer src=(super::assets::JS_PATH) {}
                }
                body {
                    a.skip href="#main" { (s.skip) }
                    header {
                        nav aria-label=(s.nav) {
                            a.home href="/" { "Hedgerow" }
                            @if let Some(commons) = &self.commons {
                                a href={ "/c/" (commons) } { (s.designs) }
                                a href={ "/c/" (commons) "/events" } { (s.events) }
                                a href={ "/c/" (commons) "/people" } { (s.people) }
                            } @else {
                                a href="/" { (s.commons) }
                            }
                        }
                    }
                    main #main data-live=[self.live.map(|id| format!("/live/{id}"))] {
                        (self.body)
                    }
                    @if self.live.is_some() {
                        p #live-status hidden role="status" aria-live="polite" data-live-text=(s.live) data-refreshed-text=(s.refreshed) {}
                    }
                }
            }
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.render().into_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
        // Pages change as changes arrive: always asked again (a 304 is not worth its code).
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}
