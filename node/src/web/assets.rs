//! The page's stylesheet and script, compiled into the binary (no files to install, nothing
//! fetched from elsewhere).

use super::WebState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/assets/app.css";
/// Where the script is served.
pub const JS_PATH: &str = "/assets/app.js";

/// The stylesheet.
pub const CSS: &str = include_str!("../../assets/web/app.css");
/// The script: live updates and the release selector; pages work without it.
pub const JS: &str = include_str!("../../assets/web/app.js");

/// How long a browser keeps them: an hour (a new binary serves new ones by the next visit).
const CACHE: &str = "public, max-age=3600";

/// The asset routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route(
            CSS_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, CACHE),
                    ],
                    CSS,
                )
                    .into_response()
            }),
        )
        .route(
            JS_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, CACHE),
                    ],
                    JS,
                )
                    .into_response()
            }),
        )
}
