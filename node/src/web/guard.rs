//! What every request and answer of the web page goes through: security headers, the `Host`
//! check of a loopback listener, a cross-site check on writes, URL and body size limits, and a
//! per-address request rate.
//!
//! Headers: a Content-Security-Policy without inline script or style (`default-src 'self'`,
//! `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.

use super::WebState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Largest request body any endpoint takes (a note, a signed change); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest path and query taken; longer ones get 414.
pub const MAX_URI_BYTES: usize = 2048;

/// Requests one address may make in a burst.
pub const RATE_BURST: f64 = 120.0;

/// Requests per second one address may sustain after its burst.
pub const RATE_PER_SECOND: f64 = 20.0;

/// Most addresses whose rate is tracked; past it the idle ones are forgotten.
const MAX_TRACKED: usize = 4096;

/// Most live streams open at once over every client (each holds a connection).
pub const MAX_LIVE_STREAMS: usize = 256;

/// The policy every answer carries: only this node's own files, no inline script or style,
/// no framing, forms only to this node.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Rates per client address and the count of open live streams.
#[derive(Debug, Default)]
pub struct Limits {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    live: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limits {
    /// Takes one request from `ip`'s allowance; `false` when it has none left now.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            // Full buckets are the same as none: drop them, keep those still spending.
            buckets.retain(|_, b| refill(*b, now) < RATE_BURST);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: RATE_BURST,
            at: now,
        });
        let tokens = refill(*bucket, now);
        if tokens < 1.0 {
            *bucket = Bucket { tokens, at: now };
            return false;
        }
        *bucket = Bucket {
            tokens: tokens - 1.0,
            at: now,
        };
        true
    }

    /// Counts a live stream opening; `None` when [`MAX_LIVE_STREAMS`] are open already.
    pub fn open_live(self: &std::sync::Arc<Self>) -> Option<LiveSlot> {
        let before = self.live.fetch_add(1, Ordering::SeqCst);
        if before >= MAX_LIVE_STREAMS {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(LiveSlot(self.clone()))
    }
}

fn refill(bucket: Bucket, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * RATE_PER_SECOND).min(RATE_BURST)
}

/// One open live stream; dropping it frees its place.
#[derive(Debug)]
pub struct LiveSlot(std::sync::Arc<Limits>);

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The middleware: refuses what breaks a rule, then adds the security headers to the answer.
pub async fn guard(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match refuse(&state, peer, &request) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    };
    secure(response.headers_mut());
    response
}

/// Why a request is refused before any handler sees it, as the answer to send.
fn refuse(state: &WebState, peer: SocketAddr, request: &Request) -> Option<Response> {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(plain(StatusCode::URI_TOO_LONG, "this address is too long"));
    }
    if state.loopback && !loopback_host(request.headers()) {
        return Some(plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this node's web page answers only to 127.0.0.1, [::1] or localhost",
        ));
    }
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if writes && state.read_only {
        return Some(plain(
            StatusCode::FORBIDDEN,
            "this node serves its web page read-only: it takes no writes",
        ));
    }
    if writes && cross_site(request.headers()) {
        return Some(plain(
            StatusCode::FORBIDDEN,
            "a write must come from this node's own page",
        ));
    }
    // This machine's own user can do all of it with the CLI anyway.
    if !peer.ip().is_loopback() && !state.limits.allow(peer.ip(), Instant::now()) {
        let mut response = plain(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests from this address; wait a few seconds",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return Some(response);
    }
    None
}

/// Whether the `Host` header names this machine's loopback (any port).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        // HTTP/1.0 without Host: nothing a browser on another site sends.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a write comes from another site: the browser says so (`Sec-Fetch-Site`), or its
/// `Origin` names another host than the one asked.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return true;
        }
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .split_once("://")
                .map_or(origin, |(_, rest)| rest)
                .trim_end_matches('/');
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// Adds the security headers every answer carries.
pub fn secure(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", CONTENT_SECURITY_POLICY);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
}

/// A short plain-text answer.
pub fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_past_the_allowance_is_refused_then_refilled() {
        let limits = Limits::default();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let start = Instant::now();
        let allowed = (0..200).filter(|_| limits.allow(ip, start)).count();
        assert_eq!(allowed, RATE_BURST as usize);
        assert!(!limits.allow(ip, start));
        assert!(limits.allow(ip, start + Duration::from_secs(1)));
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        assert!(
            limits.allow(other, start),
            "each address has its own allowance"
        );
    }

    #[test]
    fn hosts_and_origins() {
        let mut headers = HeaderMap::new();
        for (host, ok) in [
            ("127.0.0.1:4718", true),
            ("localhost:4718", true),
            ("[::1]:4718", true),
            ("evil.example:4718", false),
            ("192.0.2.7:4718", false),
        ] {
            headers.insert(header::HOST, HeaderValue::from_static(host));
            assert_eq!(loopback_host(&headers), ok, "{host}");
        }
        headers.insert(header::HOST, HeaderValue::from_static("192.0.2.7:4718"));
        headers.insert("origin", HeaderValue::from_static("http://192.0.2.7:4718"));
        assert!(!cross_site(&headers));
        headers.insert("origin", HeaderValue::from_static("http://evil.example"));
        assert!(cross_site(&headers));
        headers.remove("origin");
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&headers));
    }
}
