//! `hedgerow sync`: one catch-up with one peer, reached before the store is opened, and the
//! words for why a peer could not be reached.

use super::*;

/// How far a one-shot sync has got, for a progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncProgress {
    /// Documents received so far.
    pub docs_received: u64,
    /// Changes received so far.
    pub changes_received: u64,
    /// Sync bytes received so far.
    pub bytes_received: u64,
    /// Sync bytes sent so far.
    pub bytes_sent: u64,
    /// Whether the peer is connected.
    pub connected: bool,
}

/// Runs one catch-up sync with one peer and returns what moved; for cron jobs on rarely connected farms.
///
/// The peer is reached first, with the store closed: while the dial waits (up to
/// `order.connect_timeout`) every other command on the home works, and a peer that does not
/// answer ends the sync with [`ServeError::PeerUnreachable`]. Then our pulls run, and the node
/// keeps answering the peer's own pulls until it has been quiet for `linger`, so the exchange
/// goes both ways; all of it within `order.deadline` of the start.
pub async fn sync_once(
    home: &Home,
    order: SyncOrder,
    linger: Duration,
    mut progress: impl FnMut(&SyncProgress),
) -> Result<SyncReport, ServeError> {
    let started = Instant::now();
    let end = started + order.deadline;
    // The deadline bounds the connection too.
    let order = SyncOrder {
        connect_timeout: order.connect_timeout.min(order.deadline),
        ..order
    };
    let config = ServeConfig {
        listen: Vec::new(),
        peers: Vec::new(),
        mdns: false,
        sync_interval: Duration::from_secs(3600),
        ..ServeConfig::default()
    };
    let bytes = ByteCounters::new();
    let net = NetConfig {
        connection_timeout: order.connect_timeout,
        ..NetConfig::default()
    };
    let mut swarm = node_swarm(home, &net, &bytes)?;
    let (peer, early) = connect_first(&mut swarm, &order).await?;
    let replicas = open_until(home, end).await?;
    let mut actor = actor_on(swarm, bytes, replicas, &config, Vec::new())?;
    // What the swarm said while the store was closed (the connection, the peer's first
    // requests) reaches the service now, in order.
    for event in early {
        actor.on_swarm_event(event);
    }
    let (handle, mut inbox) = NodeHandle::new();
    let mut addr = order.addr.clone();
    if split_peer(&addr).is_none() {
        // Named by the connection now, so the service pulls on it instead of dialing again.
        addr.push(libp2p::multiaddr::Protocol::P2p(peer));
    }
    let sync = handle.sync_order(SyncOrder {
        addr,
        deadline: end.saturating_duration_since(Instant::now()),
        ..order.clone()
    });
    tokio::pin!(sync);
    // Only for the progress display and the linger: the service wakes itself.
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut report = None;
    let mut quiet_since = Instant::now();
    let mut answered = actor.service.counters().requests_answered;
    loop {
        let wake = tokio::time::Instant::from_std(actor.wake);
        tokio::select! {
            event = actor.next_event() => actor.on_swarm_event(event),
            Some(call) = inbox.calls.recv() => actor.call(call),
            done = &mut sync, if report.is_none() => {
                // The actor runs in this task, so its end of the handle never goes away.
                report = Some(done.unwrap_or_default());
                quiet_since = Instant::now();
            }
            _ = tokio::time::sleep_until(wake) => actor.timer(),
            _ = tick.tick() => {
                let counters = actor.service.counters();
                progress(&SyncProgress {
                    docs_received: counters.docs_received,
                    changes_received: counters.changes_received,
                    bytes_received: actor.bytes.received(),
                    bytes_sent: actor.bytes.sent(),
                    connected: actor.service.connected_count() > 0,
                });
                if counters.requests_answered != answered {
                    answered = counters.requests_answered;
                    quiet_since = Instant::now();
                }
                let lingered = quiet_since.elapsed() >= linger
                    || actor.service.connected_count() == 0
                    || Instant::now() >= end;
                if report.is_some() && lingered {
                    break;
                }
            }
        }
    }
    actor.service.local_mut().save_snapshots()?;
    actor.service.local_mut().commit()?;
    let mut report = report.unwrap_or_default();
    if let Some(reason) = report.unreachable.take() {
        return Err(ServeError::PeerUnreachable {
            addr: order.addr.to_string(),
            reason,
        });
    }
    report.docs_sent = actor.service.counters().docs_sent;
    report.bytes_sent = actor.bytes.sent();
    report.bytes_received = actor.bytes.received();
    Ok(report)
}

/// Dials `order.addr` and waits for the connection, at most `order.connect_timeout`: returns
/// the peer and every swarm event seen meanwhile (the connection's among them), or why the
/// peer was not reached.
async fn connect_first(
    swarm: &mut libp2p::Swarm<crate::net::Behaviour>,
    order: &SyncOrder,
) -> Result<
    (
        libp2p::PeerId,
        Vec<libp2p::swarm::SwarmEvent<crate::net::BehaviourEvent>>,
    ),
    ServeError,
> {
    use futures::StreamExt;
    use libp2p::swarm::{dial_opts::DialOpts, SwarmEvent};
    let unreachable = |reason: String| ServeError::PeerUnreachable {
        addr: order.addr.to_string(),
        reason,
    };
    let opts: DialOpts = order.addr.clone().into();
    let dialing = opts.connection_id();
    swarm
        .dial(opts)
        .map_err(|e| unreachable(dial_error_text(&e)))?;
    let give_up = tokio::time::Instant::now() + order.connect_timeout;
    let mut early = Vec::new();
    loop {
        let event = tokio::select! {
            event = swarm.select_next_some() => event,
            _ = tokio::time::sleep_until(give_up) => {
                return Err(unreachable(format!(
                    "no answer within {}",
                    seconds_text(order.connect_timeout)
                )));
            }
        };
        match &event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } if *connection_id == dialing => {
                let peer = *peer_id;
                early.push(event);
                return Ok((peer, early));
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } if *connection_id == dialing => {
                let reason = match error {
                    libp2p::swarm::DialError::Transport(_)
                        if dial_error_text(error) == "no answer in time" =>
                    {
                        format!("no answer within {}", seconds_text(order.connect_timeout))
                    }
                    _ => dial_error_text(error),
                };
                return Err(unreachable(reason));
            }
            _ => early.push(event),
        }
    }
}

/// Opens the store, waiting for a short command that holds it, until `end`.
async fn open_until(home: &Home, end: Instant) -> Result<Replicas, ServeError> {
    loop {
        match Replicas::open(home) {
            Err(NodeError::Store(StoreError::Locked { .. })) if Instant::now() < end => {
                tokio::time::sleep(STORE_POLL).await;
            }
            opened => return Ok(opened?),
        }
    }
}

/// A duration as people say it: `30 s`, `1.5 s`.
pub fn seconds_text(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Why a dial failed, in words a user can act on (no libp2p type names, no `os error` numbers).
pub(crate) fn dial_error_text(error: &libp2p::swarm::DialError) -> String {
    use libp2p::swarm::DialError;
    match error {
        DialError::WrongPeerId { obtained, .. } => {
            format!("the node there is {obtained}, not the peer named after /p2p/")
        }
        DialError::LocalPeerId { .. } => "that address is this node itself".into(),
        DialError::Transport(errors) => errors
            .iter()
            .map(|(_, error)| match error {
                libp2p::TransportError::MultiaddrNotSupported(addr) => {
                    format!("{addr} is not an address this node can dial (TCP or QUIC)")
                }
                libp2p::TransportError::Other(e) => io_error_text(e),
            })
            .next()
            .unwrap_or_else(|| "the connection failed".into()),
        other => other.to_string(),
    }
}

/// The innermost I/O failure of a transport error, in words.
fn io_error_text(error: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let mut kinds = vec![error.kind()];
    let mut texts = vec![error.to_string()];
    let mut inner = error
        .get_ref()
        .map(|e| e as &(dyn std::error::Error + 'static));
    while let Some(e) = inner {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            kinds.push(io.kind());
        }
        texts.push(e.to_string());
        inner = e.source();
    }
    for kind in kinds.iter().rev() {
        let words = match kind {
            K::ConnectionRefused => "connection refused (nothing listens on that port)",
            K::TimedOut => "no answer in time",
            K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
                "the connection was closed during the handshake"
            }
            K::AddrNotAvailable => "that address is not available from here",
            _ => continue,
        };
        return words.into();
    }
    let text = texts.last().cloned().unwrap_or_default();
    let lower = texts.join(" ").to_lowercase();
    if lower.contains("connection refused") {
        return "connection refused (nothing listens on that port)".into();
    }
    if lower.contains("timeout") || lower.contains("timed out") {
        return "no answer in time".into();
    }
    // `... (os error 113)`: the words before it are the whole message.
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
