//! The wire codec of the `/hedgerow/sync/1` request-response protocol, and byte counters.
//!
//! A request or response is one frame: a 4-byte big-endian length, then that many opaque bytes.
//! The codec does not look inside the bytes; the service owns their meaning. Each frame has a
//! hard size limit that is checked before any payload is read, and the payload is read in
//! bounded chunks, so a peer that announces a huge frame and sends nothing costs us nothing.
//!
//! [`ByteCounters`] records what crosses the application boundary of each protocol, so tests and
//! benchmarks can assert exact byte counts: sync frames (counted here, in the codec), gossipsub
//! payloads (recorded by whoever publishes and receives them) and, when the swarm was built by
//! [`build_swarm`](super::build_swarm), all bytes on libp2p substreams.

use std::{
    future::Future,
    io,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};
use prometheus_client::{encoding::text::encode, registry::Registry};

/// Protocol name of the sync request-response protocol.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/hedgerow/sync/1");

/// The sync protocol's second version, served beside the first on the same frames: a node
/// that lists it (in identify) answers fetches of up to
/// [`MAX_WANTS_PER_FETCH_V2`](hedgerow_protocol::sync::MAX_WANTS_PER_FETCH_V2) documents, so
/// its peers ask it for more at a time. Requests still negotiate the first name, which every
/// release speaks.
pub const SYNC_PROTOCOL_V2: StreamProtocol = StreamProtocol::new("/hedgerow/sync/2");

/// The sync protocol's third version, served beside the others on the same frames: a node
/// that lists it (in identify) takes and answers fetches in the compact forms of
/// [`hedgerow_protocol::sync_compact`] (`FetchV3`, `DocsV3`); a peer that does not list it
/// gets the first version's forms. It implies the second version, which a node listing it
/// does not list again (identify stays the same size).
pub const SYNC_PROTOCOL_V3: StreamProtocol = StreamProtocol::new("/hedgerow/sync/3");

/// The sync protocol's fourth version, served beside the others on the same frames: a node
/// that lists it (in identify) answers a `HelloV4` about a large commons with a set
/// reconciliation sketch ([`hedgerow_protocol::sync_sketch`]) instead of a bucket summary. It
/// implies the second and third versions, which a node listing it does not list again
/// (identify stays the same size).
pub const SYNC_PROTOCOL_V4: StreamProtocol = StreamProtocol::new("/hedgerow/sync/4");

/// Test-only switch: `1` makes the node speak sync protocols up to `/hedgerow/sync/3` only
/// (listing `/hedgerow/sync/3`, never sending a `HelloV4`), as the previous release does.
pub const SYNC_V3_ONLY_ENV: &str = "HEDGEROW_TEST_SYNC_V3_ONLY";

/// Whether this node speaks `/hedgerow/sync/4` (always, unless [`SYNC_V3_ONLY_ENV`] or
/// [`SYNC_V2_ONLY_ENV`] is `1`).
pub fn speaks_sync_v4() -> bool {
    speaks_sync_v3() && std::env::var_os(SYNC_V3_ONLY_ENV).is_none_or(|v| v != "1")
}

/// Test-only switch: `1` makes the node speak sync protocols up to `/hedgerow/sync/2` only
/// (not listing `/hedgerow/sync/3`, never sending its forms), as the previous release does, so
/// tests can sync a node of this release with one that behaves like the last.
pub const SYNC_V2_ONLY_ENV: &str = "HEDGEROW_TEST_SYNC_V2_ONLY";

/// Whether this node speaks `/hedgerow/sync/3` (always, unless [`SYNC_V2_ONLY_ENV`] is `1`).
pub fn speaks_sync_v3() -> bool {
    std::env::var_os(SYNC_V2_ONLY_ENV).is_none_or(|v| v != "1")
}

/// Largest request payload accepted or sent, in bytes (1 MiB).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Largest response payload accepted or sent, in bytes (8 MiB).
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Size of the big-endian `u32` length prefix in front of every frame.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Largest buffer growth per read, so memory follows the bytes that actually arrived.
const READ_CHUNK: usize = 64 * 1024;

/// Name under which libp2p's bandwidth transport reports, as encoded in the text format.
const BANDWIDTH_METRIC: &str = "libp2p_bandwidth_bytes_total{";

/// Why a frame was refused; carried inside the `io::Error` the codec returns.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame is longer than the limit for its direction.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced (when reading) or actual (when writing) payload length.
        len: u64,
        /// The limit that applied.
        max: usize,
    },
    /// The stream ended before the announced payload was complete.
    #[error("frame truncated after {got} of {expected} payload bytes")]
    Truncated {
        /// Payload bytes received.
        got: usize,
        /// Payload bytes announced by the length prefix.
        expected: usize,
    },
    /// No byte moved for the stall limit: the link is dead, not merely slow.
    #[error("no progress for {secs} s")]
    Stalled {
        /// The stall limit, in seconds.
        secs: u64,
    },
}

/// Cloneable counters of application-level bytes; clones share the same totals.
///
/// Use one `ByteCounters` per swarm: the transport totals of every swarm built with the same
/// counters are added together.
#[derive(Clone, Debug, Default)]
pub struct ByteCounters {
    inner: Arc<CounterState>,
}

#[derive(Debug, Default)]
struct CounterState {
    /// Sync frame bytes (prefix and payload) written to streams.
    sync_sent: AtomicU64,
    /// Sync frame bytes (prefix and payload) read from streams, including refused frames.
    sync_received: AtomicU64,
    /// Gossipsub payload bytes handed to `publish`.
    gossip_published: AtomicU64,
    /// Gossipsub payload bytes delivered to the application.
    gossip_received: AtomicU64,
    /// Request frames refused for announcing more than the limit.
    oversized_requests: AtomicU64,
    /// Request frames refused for ending before their announced length.
    truncated_requests: AtomicU64,
    /// Registry that libp2p's bandwidth transport reports into; read back by `transport_bytes`.
    transport: Mutex<Registry>,
    /// Frame counters of the blob protocol, apart from sync's (see [`ByteCounters::blob`]).
    blob: std::sync::OnceLock<Arc<CounterState>>,
}

impl ByteCounters {
    /// Creates counters that all start at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters of `/hedgerow/blob/1` frames: shared by every clone of these counters,
    /// apart from the sync totals (its `sent`/`received` count blob frames only).
    pub fn blob(&self) -> ByteCounters {
        ByteCounters {
            inner: self.inner.blob.get_or_init(Arc::default).clone(),
        }
    }

    /// Sync protocol bytes written (length prefixes and payloads, requests and responses).
    pub fn sent(&self) -> u64 {
        self.inner.sync_sent.load(Ordering::Relaxed)
    }

    /// Sync protocol bytes read (length prefixes and payloads, requests and responses).
    pub fn received(&self) -> u64 {
        self.inner.sync_received.load(Ordering::Relaxed)
    }

    /// Gossipsub payload bytes recorded with [`record_gossip_published`](Self::record_gossip_published).
    pub fn gossip_published(&self) -> u64 {
        self.inner.gossip_published.load(Ordering::Relaxed)
    }

    /// Gossipsub payload bytes recorded with [`record_gossip_received`](Self::record_gossip_received).
    pub fn gossip_received(&self) -> u64 {
        self.inner.gossip_received.load(Ordering::Relaxed)
    }

    /// Records `len` payload bytes that were successfully published on gossipsub.
    pub fn record_gossip_published(&self, len: usize) {
        add(&self.inner.gossip_published, len);
    }

    /// Records `len` payload bytes of a gossipsub message delivered to the application.
    pub fn record_gossip_received(&self, len: usize) {
        add(&self.inner.gossip_received, len);
    }

    /// Request frames refused so far, as `(reason, count)`: `oversized-frame` and
    /// `truncated-frame`.
    ///
    /// Counted here because libp2p's request-response behaviour reports no event (and so no
    /// peer) when reading a request fails. Refused response frames reach the behaviour as an
    /// outbound failure, where the service counts them against the peer.
    pub fn refused_request_frames(&self) -> [(&'static str, u64); 2] {
        [
            (
                "oversized-frame",
                self.inner.oversized_requests.load(Ordering::Relaxed),
            ),
            (
                "truncated-frame",
                self.inner.truncated_requests.load(Ordering::Relaxed),
            ),
        ]
    }

    /// Counts a request frame that `read_frame` refused.
    fn record_refused_request(&self, error: &io::Error) {
        match error.get_ref().and_then(|e| e.downcast_ref::<FrameError>()) {
            Some(FrameError::TooLarge { .. }) => add(&self.inner.oversized_requests, 1),
            Some(FrameError::Truncated { .. }) => add(&self.inner.truncated_requests, 1),
            _ => {}
        }
    }

    /// All bytes read and written on libp2p substreams, as `(inbound, outbound)`.
    ///
    /// Counts every protocol (sync, gossipsub, identify, ping, kad and multistream-select
    /// negotiation) above the muxer; not noise, yamux or QUIC framing, nor IP/TCP/UDP headers.
    /// Zero unless the swarm was built by [`build_swarm`](super::build_swarm) with these counters.
    pub fn transport_bytes(&self) -> (u64, u64) {
        let registry = self
            .inner
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut text = String::new();
        if encode(&mut text, &registry).is_err() {
            return (0, 0);
        }
        drop(registry);

        let (mut inbound, mut outbound) = (0u64, 0u64);
        for line in text.lines() {
            let Some(labels_and_value) = line.strip_prefix(BANDWIDTH_METRIC) else {
                continue;
            };
            let Some(value) = labels_and_value
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            if labels_and_value.contains("direction=\"Inbound\"") {
                inbound = inbound.saturating_add(value);
            } else if labels_and_value.contains("direction=\"Outbound\"") {
                outbound = outbound.saturating_add(value);
            }
        }
        (inbound, outbound)
    }

    /// Runs `f` with the registry the bandwidth transport must register into.
    pub(crate) fn with_transport_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut registry = self
            .inner
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut registry)
    }
}

/// A response's bytes, and how long they took to arrive once the first had come.
///
/// The time to the first byte is the round trip plus the responder's work (reading and
/// packing documents, which a busy or small responder makes long); the time from the first
/// byte to the last is what the link itself needed, and what a cut link would waste.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseFrame {
    /// The frame's payload.
    pub bytes: Vec<u8>,
    /// From the first byte's arrival to the last's; `None` for a frame built locally.
    pub transfer: Option<Duration>,
}

impl From<Vec<u8>> for ResponseFrame {
    fn from(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            transfer: None,
        }
    }
}

/// Request-response codec moving opaque byte frames, with size limits and byte counting.
#[derive(Clone, Debug)]
pub struct SyncCodec {
    /// Largest request payload this side reads or writes.
    max_request: usize,
    /// Largest response payload this side reads or writes.
    max_response: usize,
    /// Where frame bytes are counted.
    counters: ByteCounters,
    /// Longest wait for any single read or write to make progress; `None`: no limit.
    stall_timeout: Option<Duration>,
}

impl SyncCodec {
    /// Creates a codec with the default limits, counting into `counters`.
    pub fn new(counters: ByteCounters) -> Self {
        Self {
            max_request: MAX_REQUEST_BYTES,
            max_response: MAX_RESPONSE_BYTES,
            counters,
            stall_timeout: None,
        }
    }

    /// Fails a frame that makes no progress for `limit`, however long the whole frame takes.
    ///
    /// A 512 KiB response over 64 kbit/s takes over a minute and is fine while bytes keep
    /// arriving; a link that went silent is found out after `limit`. Needs a tokio runtime
    /// (without one, no limit applies).
    pub fn with_stall_timeout(mut self, limit: Duration) -> Self {
        self.stall_timeout = Some(limit);
        self
    }

    /// Replaces the limits; peers that disagree refuse each other's larger frames.
    pub fn with_limits(mut self, max_request: usize, max_response: usize) -> Self {
        self.max_request = max_request;
        self.max_response = max_response;
        self
    }

    /// The counters this codec adds to.
    pub fn counters(&self) -> &ByteCounters {
        &self.counters
    }
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = ResponseFrame;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(
            io,
            self.max_request,
            &self.counters.inner.sync_received,
            self.stall_timeout,
        )
        .await;
        if let Err(e) = &frame {
            self.counters.record_refused_request(e);
        }
        frame
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<ResponseFrame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut first_byte = None;
        let bytes = read_frame_timed(
            io,
            self.max_response,
            &self.counters.inner.sync_received,
            self.stall_timeout,
            &mut first_byte,
        )
        .await?;
        Ok(ResponseFrame {
            bytes,
            transfer: first_byte.map(|at: Instant| at.elapsed()),
        })
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(
            io,
            &request,
            self.max_request,
            &self.counters.inner.sync_sent,
            self.stall_timeout,
        )
        .await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: ResponseFrame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(
            io,
            &response.bytes,
            self.max_response,
            &self.counters.inner.sync_sent,
            self.stall_timeout,
        )
        .await
    }
}

/// Reads one length-prefixed frame of at most `max` payload bytes, counting every byte read.
async fn read_frame<T>(
    io: &mut T,
    max: usize,
    counter: &AtomicU64,
    stall: Option<Duration>,
) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin,
{
    read_frame_timed(io, max, counter, stall, &mut None).await
}

/// [`read_frame`], noting in `first_byte` when the frame's first byte arrived.
async fn read_frame_timed<T>(
    io: &mut T,
    max: usize,
    counter: &AtomicU64,
    stall: Option<Duration>,
    first_byte: &mut Option<Instant>,
) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin,
{
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    let mut filled = 0;
    while filled < prefix.len() {
        let n = progress(stall, read_some(io, &mut prefix[filled..])).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        first_byte.get_or_insert_with(Instant::now);
        add(counter, n);
        filled += n;
    }

    let announced = u32::from_be_bytes(prefix);
    let expected = usize::try_from(announced)
        .ok()
        .filter(|len| *len <= max)
        .ok_or_else(|| {
            let len = u64::from(announced);
            io::Error::new(
                io::ErrorKind::InvalidData,
                FrameError::TooLarge { len, max },
            )
        })?;

    let mut payload = Vec::new();
    while payload.len() < expected {
        let start = payload.len();
        let chunk = (expected - start).min(READ_CHUNK);
        payload.resize(start + chunk, 0);
        let n = progress(stall, read_some(io, &mut payload[start..])).await?;
        payload.truncate(start + n);
        if n == 0 {
            let got = payload.len();
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                FrameError::Truncated { got, expected },
            ));
        }
        add(counter, n);
    }
    Ok(payload)
}

/// Runs one read or write step, failing with `TimedOut` when it takes longer than `stall`.
async fn progress<F>(stall: Option<Duration>, step: F) -> io::Result<usize>
where
    F: Future<Output = io::Result<usize>>,
{
    match stall {
        Some(limit) if tokio::runtime::Handle::try_current().is_ok() => {
            match tokio::time::timeout(limit, step).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    FrameError::Stalled {
                        secs: limit.as_secs(),
                    },
                )),
            }
        }
        _ => step.await,
    }
}

/// Reads into `buf`, retrying on `Interrupted`; returns 0 at end of stream.
async fn read_some<T>(io: &mut T, buf: &mut [u8]) -> io::Result<usize>
where
    T: AsyncRead + Unpin,
{
    loop {
        match io.read(buf).await {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes one length-prefixed frame, refusing payloads over `max`, counting every byte written.
async fn write_frame<T>(
    io: &mut T,
    payload: &[u8],
    max: usize,
    counter: &AtomicU64,
    stall: Option<Duration>,
) -> io::Result<()>
where
    T: AsyncWrite + Unpin,
{
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|_| payload.len() <= max)
        .ok_or_else(|| {
            let len = payload.len() as u64;
            io::Error::new(
                io::ErrorKind::InvalidInput,
                FrameError::TooLarge { len, max },
            )
        })?;
    write_counted(io, &len.to_be_bytes(), counter, stall).await?;
    write_counted(io, payload, counter, stall).await?;
    progress(stall, async { io.flush().await.map(|()| 0) }).await?;
    Ok(())
}

/// Writes all of `buf`, counting bytes as the stream accepts them.
async fn write_counted<T>(
    io: &mut T,
    mut buf: &[u8],
    counter: &AtomicU64,
    stall: Option<Duration>,
) -> io::Result<()>
where
    T: AsyncWrite + Unpin,
{
    while !buf.is_empty() {
        match progress(stall, io.write(buf)).await {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                add(counter, n);
                buf = &buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Adds `n` bytes to a counter.
fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use futures::{executor::block_on, io::Cursor};
    use libp2p::request_response::Codec as _;

    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    fn frame_error(err: &io::Error) -> Option<&FrameError> {
        err.get_ref().and_then(|e| e.downcast_ref::<FrameError>())
    }

    #[test]
    fn request_and_response_round_trip_and_are_counted() {
        let counters = ByteCounters::new();
        let mut codec = SyncCodec::new(counters.clone());
        block_on(async {
            let request = b"have: 3 heads".to_vec();
            let mut wire = Cursor::new(Vec::new());
            codec
                .write_request(&SYNC_PROTOCOL, &mut wire, request.clone())
                .await
                .expect("write request");
            assert_eq!(wire.get_ref(), &frame(&request));
            let mut wire = Cursor::new(wire.into_inner());
            let read = codec.read_request(&SYNC_PROTOCOL, &mut wire).await;
            assert_eq!(read.expect("read request"), request);

            let response = vec![7u8; 200_000];
            let mut wire = Cursor::new(Vec::new());
            codec
                .write_response(&SYNC_PROTOCOL, &mut wire, response.clone().into())
                .await
                .expect("write response");
            let mut wire = Cursor::new(wire.into_inner());
            let read = codec.read_response(&SYNC_PROTOCOL, &mut wire).await;
            let read = read.expect("read response");
            assert_eq!(read.bytes, response);
            assert!(read.transfer.is_some(), "a response read is timed");

            let total = (2 * LENGTH_PREFIX_BYTES + request.len() + response.len()) as u64;
            assert_eq!(counters.sent(), total);
            assert_eq!(counters.received(), total);
        });
    }

    #[test]
    fn empty_payload_round_trips() {
        let mut codec = SyncCodec::new(ByteCounters::new());
        block_on(async {
            let mut wire = Cursor::new(frame(&[]));
            let read = codec.read_request(&SYNC_PROTOCOL, &mut wire).await;
            assert_eq!(read.expect("empty request"), Vec::<u8>::new());
        });
    }

    #[test]
    fn truncated_payload_is_unexpected_eof() {
        let counters = ByteCounters::new();
        let mut codec = SyncCodec::new(counters.clone());
        let mut bytes = frame(&[1; 10]);
        bytes.truncate(LENGTH_PREFIX_BYTES + 5);
        block_on(async {
            let err = codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(bytes))
                .await
                .expect_err("truncated frame must fail");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            assert!(matches!(
                frame_error(&err),
                Some(FrameError::Truncated {
                    got: 5,
                    expected: 10
                })
            ));
        });
        assert_eq!(counters.received(), (LENGTH_PREFIX_BYTES + 5) as u64);
    }

    #[test]
    fn truncated_length_prefix_is_unexpected_eof() {
        let mut codec = SyncCodec::new(ByteCounters::new());
        block_on(async {
            let err = codec
                .read_response(&SYNC_PROTOCOL, &mut Cursor::new(vec![0, 0]))
                .await
                .expect_err("short prefix must fail");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        });
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_reading_payload() {
        let counters = ByteCounters::new();
        let mut codec = SyncCodec::new(counters.clone());
        block_on(async {
            // Announces 4 GiB but carries nothing: must fail on the prefix alone.
            let err = codec
                .read_response(&SYNC_PROTOCOL, &mut Cursor::new(u32::MAX.to_be_bytes()))
                .await
                .expect_err("oversized response must fail");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);

            let just_over = (MAX_REQUEST_BYTES as u32 + 1).to_be_bytes();
            let err = codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(just_over))
                .await
                .expect_err("request over the limit must fail");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(matches!(
                frame_error(&err),
                Some(FrameError::TooLarge {
                    max: MAX_REQUEST_BYTES,
                    ..
                })
            ));
        });
        assert_eq!(counters.received(), 2 * LENGTH_PREFIX_BYTES as u64);
    }

    #[test]
    fn refused_request_frames_are_counted_by_reason() {
        let counters = ByteCounters::new();
        let mut codec = SyncCodec::new(counters.clone());
        block_on(async {
            let over = (MAX_REQUEST_BYTES as u32 + 1).to_be_bytes();
            codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(over))
                .await
                .expect_err("oversized");
            let mut short = frame(b"twelve bytes");
            short.truncate(8);
            codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(short))
                .await
                .expect_err("truncated");
            // A refused response is the service's to count, with its peer.
            codec
                .read_response(&SYNC_PROTOCOL, &mut Cursor::new(u32::MAX.to_be_bytes()))
                .await
                .expect_err("oversized response");
            let good = frame(b"fine");
            codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(good))
                .await
                .expect("a good frame");
        });
        assert_eq!(
            counters.refused_request_frames(),
            [("oversized-frame", 1), ("truncated-frame", 1)]
        );
    }

    #[test]
    fn limits_are_inclusive_and_per_direction() {
        let mut codec = SyncCodec::new(ByteCounters::new());
        let at_limit = vec![0u8; MAX_REQUEST_BYTES];
        let over = vec![0u8; MAX_REQUEST_BYTES + 1];
        block_on(async {
            let read = codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(frame(&at_limit)))
                .await;
            assert_eq!(read.expect("request at the limit").len(), MAX_REQUEST_BYTES);
            let read = codec
                .read_response(&SYNC_PROTOCOL, &mut Cursor::new(frame(&over)))
                .await;
            assert_eq!(
                read.expect("response under its limit").bytes.len(),
                over.len()
            );
        });
    }

    #[test]
    fn oversized_write_is_refused_and_writes_nothing() {
        let counters = ByteCounters::new();
        let mut codec = SyncCodec::new(counters.clone());
        let mut wire = Cursor::new(Vec::new());
        block_on(async {
            let err = codec
                .write_request(&SYNC_PROTOCOL, &mut wire, vec![0; MAX_REQUEST_BYTES + 1])
                .await
                .expect_err("oversized request must not be written");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        });
        assert!(wire.get_ref().is_empty());
        assert_eq!(counters.sent(), 0);
    }

    #[test]
    fn transport_bytes_are_zero_without_a_swarm() {
        assert_eq!(ByteCounters::new().transport_bytes(), (0, 0));
    }
}
