//! `serve --max-rate`: one cap on what the node sends and one on what it receives, shared by
//! every connection, so a farm's sync never takes its only link.
//!
//! The cap is applied to the TCP byte stream itself, under noise and yamux: two token buckets
//! (send, receive) that every connection's socket draws from. Each read or write is charged its
//! bytes plus an estimate of the TCP/IP and link headers of the segments it makes
//! ([`HEADER_BYTES`] per [`SEGMENT_BYTES`]), so the cap describes what the link carries, not
//! only the payload. A reader that has no tokens stops reading: the kernel's receive buffer
//! fills and TCP's flow control slows the sender, which is how a receive cap reaches the far
//! end; the receive buffer of a capped socket is kept small ([`recv_buffer_bytes`]) so the far
//! end cannot run far ahead of the cap.
//!
//! QUIC runs its own congestion control and multiplexing inside UDP datagrams, which a stream
//! wrapper cannot pace, so a node with a cap neither listens on nor dials QUIC addresses (TCP
//! carries everything, relayed circuits included since they run over a TCP connection).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite, Future};
use tokio::time::{Instant, Sleep};

/// Payload bytes in one full TCP segment (Ethernet MTU 1500, IPv4, TCP timestamps).
pub const SEGMENT_BYTES: u64 = 1448;

/// Header bytes a segment carries on the link: Ethernet 14, IPv4 20, TCP 20 and 12 of options.
pub const HEADER_BYTES: u64 = 66;

/// How many seconds of the rate a bucket holds when full: the burst a quiet link may send at
/// once before the rate holds again.
pub const BURST_SECS: f64 = 0.1;

/// The smallest bucket, so that one full segment always fits.
pub const MIN_BURST_BYTES: f64 = 2.0 * (SEGMENT_BYTES + HEADER_BYTES) as f64;

/// A transfer rate as `--max-rate` and `max_rate` take it, in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxRate {
    bits_per_sec: u64,
}

/// Why a `--max-rate` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RateError {
    /// Not a number with a known unit.
    #[error("`{0}` is not a rate; use bits per second such as 32kbit, 2Mbit, 64000 (bit/s) or bytes per second such as 4KB, 1MB (k, M, G are powers of 1000)")]
    Unreadable(String),
    /// Too small to carry a sync at all.
    #[error("`{0}` is below the least rate of 8kbit (1KB); use a larger value")]
    TooSmall(String),
}

/// The least rate accepted: below it a single sync response outlasts every timeout.
pub const MIN_BITS_PER_SEC: u64 = 8_000;

impl MaxRate {
    /// A rate of `bits_per_sec`.
    pub fn from_bits_per_sec(bits_per_sec: u64) -> Self {
        Self { bits_per_sec }
    }

    /// The rate in bits per second.
    pub fn bits_per_sec(&self) -> u64 {
        self.bits_per_sec
    }

    /// The rate in bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bits_per_sec as f64 / 8.0
    }
}

impl std::str::FromStr for MaxRate {
    type Err = RateError;

    /// `32kbit`, `32 kbit/s`, `32k`, `2Mbit`, `64000` (bits per second), `4KB`, `4kB/s`,
    /// `1MB` (bytes per second); k, M and G are powers of 1000.
    fn from_str(text: &str) -> Result<Self, RateError> {
        let unreadable = || RateError::Unreadable(text.to_string());
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let unit_at = compact
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(compact.len());
        let (number, unit) = compact.split_at(unit_at);
        let value: f64 = number.parse().map_err(|_| unreadable())?;
        let unit = unit
            .strip_suffix("/s")
            .or(unit.strip_suffix("ps"))
            .unwrap_or(unit);
        let (prefix, bytes) = match unit {
            "" | "bit" | "b" => ("", false),
            "B" => ("", true),
            _ => {
                let (first, rest) = unit.split_at(1);
                match rest {
                    "" | "bit" | "b" => (first, false),
                    "B" => (first, true),
                    _ => return Err(unreadable()),
                }
            }
        };
        let scale = match prefix {
            "" => 1.0,
            "k" | "K" => 1e3,
            "M" | "m" => 1e6,
            "G" | "g" => 1e9,
            _ => return Err(unreadable()),
        };
        let bits = value * scale * if bytes { 8.0 } else { 1.0 };
        if !bits.is_finite() || bits > u64::MAX as f64 {
            return Err(unreadable());
        }
        let bits = bits.round() as u64;
        if bits < MIN_BITS_PER_SEC {
            return Err(RateError::TooSmall(text.to_string()));
        }
        Ok(Self { bits_per_sec: bits })
    }
}

impl std::fmt::Display for MaxRate {
    /// `32kbit`, `1.5Mbit`: a form [`FromStr`](std::str::FromStr) reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = self.bits_per_sec;
        let (value, unit) = if bits >= 1_000_000_000 {
            (bits as f64 / 1e9, "Gbit")
        } else if bits >= 1_000_000 {
            (bits as f64 / 1e6, "Mbit")
        } else if bits >= 1_000 {
            (bits as f64 / 1e3, "kbit")
        } else {
            (bits as f64, "bit")
        };
        write!(f, "{}{unit}", (value * 1000.0).round() / 1000.0)
    }
}

/// What a read or write of `bytes` costs the link: the bytes and the headers of its segments.
pub fn wire_cost(bytes: usize) -> f64 {
    let bytes = bytes as u64;
    (bytes + bytes.div_ceil(SEGMENT_BYTES) * HEADER_BYTES) as f64
}

/// One direction's token bucket, shared by every connection.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        let burst = (rate * BURST_SECS).max(MIN_BURST_BYTES);
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Tokens now (refilled for the time since the last look).
    fn available(&self, now: Instant) -> f64 {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate)
            .min(self.burst);
        *state = (refilled, now);
        refilled
    }

    /// Takes `cost` tokens; the bucket may go below zero (a write larger than asked for by a
    /// racing connection), which the next takers wait out.
    fn take(&self, cost: f64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= cost;
    }

    /// How many payload bytes may go now, or when to look again for `want` of them.
    fn grant(&self, want: usize) -> Result<usize, Instant> {
        self.grant_at(want, Instant::now())
    }

    /// [`Self::grant`] at `now`.
    fn grant_at(&self, want: usize, now: Instant) -> Result<usize, Instant> {
        let tokens = self.available(now);
        // At least one full segment (or the whole of a smaller buffer) at a time: many tiny
        // reads and writes would each pay a segment's headers.
        let least = want.min(SEGMENT_BYTES as usize).max(1);
        if tokens >= wire_cost(least) {
            // The payload that `tokens` pays for, headers included.
            let per_segment = (SEGMENT_BYTES + HEADER_BYTES) as f64;
            let payload = (tokens / per_segment * SEGMENT_BYTES as f64) as usize;
            return Ok(want.min(payload.max(least)));
        }
        let missing = wire_cost(least) - tokens;
        Err(now + Duration::from_secs_f64(missing / self.rate))
    }
}

/// The node's two buckets; cloned into every connection.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: MaxRate,
    send: Arc<Bucket>,
    receive: Arc<Bucket>,
}

impl RateLimiter {
    /// Caps sending and receiving at `rate` each.
    pub fn new(rate: MaxRate) -> Self {
        Self {
            rate,
            send: Arc::new(Bucket::new(rate.bytes_per_sec())),
            receive: Arc::new(Bucket::new(rate.bytes_per_sec())),
        }
    }

    /// The cap.
    pub fn rate(&self) -> MaxRate {
        self.rate
    }
}

/// The receive buffer a capped socket asks for: a second of the rate, at least 16 KiB (the
/// kernel doubles it for its bookkeeping), so a sender cannot queue minutes of data (and the
/// pings behind it) ahead of the cap.
pub fn recv_buffer_bytes(rate: MaxRate) -> usize {
    (rate.bytes_per_sec() as usize).max(16 * 1024)
}

/// A byte stream whose reads and writes draw from a [`RateLimiter`] (none: passed through).
pub struct RateLimited<S> {
    inner: S,
    limiter: Option<RateLimiter>,
    read_wait: Option<Pin<Box<Sleep>>>,
    write_wait: Option<Pin<Box<Sleep>>>,
}

impl<S> RateLimited<S> {
    /// Wraps `inner`, capped by `limiter` when there is one.
    pub fn new(inner: S, limiter: Option<RateLimiter>) -> Self {
        Self {
            inner,
            limiter,
            read_wait: None,
            write_wait: None,
        }
    }
}

/// Waits out `wait` if set; `Ready` once it is over (or there was none).
fn wait_over(wait: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(sleep) = wait.as_mut() {
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        *wait = None;
    }
    Poll::Ready(())
}

/// Sets `wait` to end at `at` and polls it once, so the task is woken then.
fn wait_until(wait: &mut Option<Pin<Box<Sleep>>>, at: Instant, cx: &mut Context<'_>) {
    let mut sleep = Box::pin(tokio::time::sleep_until(at));
    if sleep.as_mut().poll(cx).is_ready() {
        // Already over: wake at once to look at the bucket again.
        cx.waker().wake_by_ref();
    } else {
        *wait = Some(sleep);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RateLimited<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(limiter) = &this.limiter else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if buf.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if wait_over(&mut this.read_wait, cx).is_pending() {
            return Poll::Pending;
        }
        let n = match limiter.receive.grant(buf.len()) {
            Ok(n) => n,
            Err(at) => {
                wait_until(&mut this.read_wait, at, cx);
                return Poll::Pending;
            }
        };
        let polled = Pin::new(&mut this.inner).poll_read(cx, &mut buf[..n]);
        if let Poll::Ready(Ok(read)) = &polled {
            limiter.receive.take(wire_cost(*read));
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RateLimited<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(limiter) = &this.limiter else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        if buf.is_empty() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        if wait_over(&mut this.write_wait, cx).is_pending() {
            return Poll::Pending;
        }
        let n = match limiter.send.grant(buf.len()) {
            Ok(n) => n,
            Err(at) => {
                wait_until(&mut this.write_wait, at, cx);
                return Poll::Pending;
            }
        };
        let polled = Pin::new(&mut this.inner).poll_write(cx, &buf[..n]);
        if let Poll::Ready(Ok(written)) = &polled {
            limiter.send.take(wire_cost(*written));
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// Caps the kernel's receive buffer of a rate-limited TCP socket (see [`recv_buffer_bytes`]);
/// a failure only loses that refinement, so it is logged, not returned.
pub fn shrink_recv_buffer(stream: &tokio::net::TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket descriptor owned by `stream`, and a pointer to a c_int of the
    // length passed, as setsockopt(2) asks for SO_RCVBUF.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        tracing::debug!(
            "cannot shrink a capped socket's receive buffer: {}",
            io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_bits_and_bytes_parse() {
        let bits = |t: &str| t.parse::<MaxRate>().map(|r| r.bits_per_sec());
        assert_eq!(bits("32kbit"), Ok(32_000));
        assert_eq!(bits("32 kbit/s"), Ok(32_000));
        assert_eq!(bits("32k"), Ok(32_000));
        assert_eq!(bits("32kbps"), Ok(32_000));
        assert_eq!(bits("2Mbit"), Ok(2_000_000));
        assert_eq!(bits("1.5M"), Ok(1_500_000));
        assert_eq!(bits("1Gbit"), Ok(1_000_000_000));
        assert_eq!(bits("64000"), Ok(64_000));
        assert_eq!(bits("4KB"), Ok(32_000));
        assert_eq!(bits("4kB/s"), Ok(32_000));
        assert_eq!(bits("1MB"), Ok(8_000_000));
        assert_eq!(bits("1000B"), Ok(8_000));
    }

    #[test]
    fn bad_rates_are_refused_with_the_accepted_forms() {
        for bad in ["", "fast", "32kbyte", "32 xbit", "k", "-5kbit", "1.2.3k"] {
            let error = bad.parse::<MaxRate>().expect_err(bad);
            assert!(matches!(error, RateError::Unreadable(_)), "{bad}: {error}");
            assert!(error.to_string().contains("32kbit"), "{error}");
        }
        assert_eq!(
            "100bit".parse::<MaxRate>(),
            Err(RateError::TooSmall("100bit".into()))
        );
    }

    #[test]
    fn a_rate_prints_in_a_form_it_reads_back() {
        for text in ["32kbit", "1.5Mbit", "64kbit", "8kbit", "2Gbit"] {
            let rate: MaxRate = text.parse().expect(text);
            assert_eq!(rate.to_string(), text);
            assert_eq!(rate.to_string().parse::<MaxRate>(), Ok(rate));
        }
    }

    #[test]
    fn a_write_pays_for_its_segments_headers() {
        assert_eq!(wire_cost(0), 0.0);
        assert_eq!(wire_cost(1), 67.0);
        assert_eq!(wire_cost(1448), 1514.0);
        assert_eq!(wire_cost(1449), 1449.0 + 132.0);
    }

    /// Over a simulated ten seconds, the bucket lets through the rate's worth of wire bytes
    /// and the burst, no more, however the writes are sized.
    #[test]
    fn the_bucket_holds_the_rate_over_seconds() {
        let rate: MaxRate = "64kbit".parse().expect("rate");
        let limiter = RateLimiter::new(rate);
        let start = Instant::now();
        let mut now = start;
        let mut charged = 0.0;
        let mut sizes = [65_536usize, 12, 1_448, 9_000, 300].into_iter().cycle();
        while now < start + Duration::from_secs(10) {
            let want = sizes.next().unwrap_or(1);
            match limiter.send.grant_at(want, now) {
                Ok(n) => {
                    assert!(n >= 1 && n <= want);
                    limiter.send.take(wire_cost(n));
                    charged += wire_cost(n);
                }
                Err(at) => {
                    assert!(at > now);
                    now = at;
                }
            }
        }
        let secs = now.duration_since(start).as_secs_f64();
        let allowed = rate.bytes_per_sec() * secs + limiter.send.burst + wire_cost(1448);
        assert!(charged <= allowed, "{charged} > {allowed}");
        assert!(charged >= rate.bytes_per_sec() * secs * 0.9, "{charged}");
    }
}
