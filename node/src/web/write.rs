//! The writing side of the web page: endpoints that store changes signed in the browser.
//!
//! Merged into the router by [`super::routes`] unless the node serves read-only; every
//! request here has passed [`super::guard`] (same-origin, size, rate). The browser-held keys,
//! signing and enrolment are built here (issue 17's write side).

use super::WebState;
use axum::Router;

/// The write routes (none yet).
pub fn routes() -> Router<WebState> {
    Router::new()
}
