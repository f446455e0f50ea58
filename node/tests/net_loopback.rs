//! Two real swarms on loopback: connect, sync request/response, gossip, limits, QUIC; and a
//! real `serve` between two test swarms, whose gossip validation decides what it forwards.
//!
//! ```text
//!   A (listens on 127.0.0.1) <──dial── B
//! ```
//!
//! mDNS is off and nothing but 127.0.0.1 is dialed. Every test runs under one overall timeout,
//! and both swarms are driven from one `tokio::select!` loop, so a failure never hangs.

use std::{future::Future, time::Duration};

use futures::StreamExt;
use hedgerow_node::api::{execute, Request};
use hedgerow_node::net::{
    build_swarm, commons_topic, Behaviour, BehaviourEvent, ByteCounters, NetConfig,
    LENGTH_PREFIX_BYTES, MAX_REQUEST_BYTES,
};
use hedgerow_node::serve::{self, ServeConfig};
use hedgerow_node::{Home, LocalProfile, Replicas};
use hedgerow_protocol::sync::{Gossip, SyncResponse};
use hedgerow_protocol::CommonsId;
use libp2p::{
    gossipsub, identity::Keypair, multiaddr::Protocol, request_response, swarm::SwarmEvent,
    Multiaddr, PeerId, Swarm,
};

/// Upper bound on any one test.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

type Node = Swarm<Behaviour>;
type Event = SwarmEvent<BehaviourEvent>;
type SyncEvent = request_response::Event<Vec<u8>, hedgerow_node::net::ResponseFrame>;

/// Which swarm an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// A swarm listening on `listen` (a loopback address) with mDNS off.
fn node(listen: &str, tweak: impl FnOnce(&mut NetConfig)) -> (Node, ByteCounters) {
    let mut config = NetConfig {
        listen: vec![listen.parse().expect("listen address")],
        ..NetConfig::default()
    };
    tweak(&mut config);
    assert!(
        !config.mdns,
        "mDNS must stay off outside network namespaces"
    );
    let counters = ByteCounters::new();
    let swarm =
        build_swarm(Keypair::generate_ed25519(), &config, counters.clone()).expect("build swarm");
    (swarm, counters)
}

/// Fails the test instead of hanging when `fut` takes longer than [`TEST_TIMEOUT`].
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// Polls both swarms, handing each event to `step` until it returns `Some`.
async fn drive<T>(
    a: &mut Node,
    b: &mut Node,
    mut step: impl FnMut(Side, Event, &mut Node, &mut Node) -> Option<T>,
) -> T {
    loop {
        let (side, event) = tokio::select! {
            event = a.select_next_some() => (Side::A, event),
            event = b.select_next_some() => (Side::B, event),
        };
        if let Some(done) = step(side, event, a, b) {
            return done;
        }
    }
}

/// The first address `node` reports listening on.
async fn listen_addr(node: &mut Node) -> Multiaddr {
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = node.select_next_some().await {
            return address;
        }
    }
}

/// B dials A at A's listen address; returns once both sides see the connection.
async fn connect(a: &mut Node, b: &mut Node) {
    let a_id = *a.local_peer_id();
    let b_id = *b.local_peer_id();
    let addr = listen_addr(a).await.with(Protocol::P2p(a_id));
    b.dial(addr).expect("dial A");
    let (mut a_sees_b, mut b_sees_a) = (false, false);
    drive(a, b, |side, event, _, _| {
        match (side, event) {
            (Side::A, SwarmEvent::ConnectionEstablished { peer_id, .. }) if peer_id == b_id => {
                a_sees_b = true
            }
            (Side::B, SwarmEvent::ConnectionEstablished { peer_id, .. }) if peer_id == a_id => {
                b_sees_a = true
            }
            (side, SwarmEvent::OutgoingConnectionError { error, .. }) => {
                panic!("{side:?} failed to connect: {error}")
            }
            _ => {}
        }
        (a_sees_b && b_sees_a).then_some(())
    })
    .await;
}

/// B asks A with `request`, A answers `response`; returns once B has the answer and A saw it sent.
async fn round_trip(a: &mut Node, b: &mut Node, request: &[u8], response: &[u8]) {
    let a_id = *a.local_peer_id();
    let sent_id = b.behaviour_mut().sync.send_request(&a_id, request.to_vec());
    let (mut answered, mut response_sent) = (false, false);
    drive(a, b, |side, event, a, _| {
        match (side, event) {
            (
                Side::A,
                SwarmEvent::Behaviour(BehaviourEvent::Sync(SyncEvent::Message {
                    message:
                        request_response::Message::Request {
                            request: got,
                            channel,
                            ..
                        },
                    ..
                })),
            ) => {
                assert_eq!(got, request, "A received the request B sent");
                a.behaviour_mut()
                    .sync
                    .send_response(channel, response.to_vec().into())
                    .expect("response channel open");
            }
            (
                Side::A,
                SwarmEvent::Behaviour(BehaviourEvent::Sync(SyncEvent::ResponseSent { .. })),
            ) => response_sent = true,
            (
                Side::B,
                SwarmEvent::Behaviour(BehaviourEvent::Sync(SyncEvent::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response: got,
                        },
                    ..
                })),
            ) => {
                assert_eq!(request_id, sent_id);
                assert_eq!(got.bytes, response, "B received the response A sent");
                assert!(got.transfer.is_some(), "the transport timed it");
                answered = true;
            }
            (side, SwarmEvent::Behaviour(BehaviourEvent::Sync(failure))) => {
                panic!("{side:?}: unexpected sync event {failure:?}")
            }
            (side, SwarmEvent::ConnectionClosed { cause, .. }) => {
                panic!("{side:?}: connection closed during round trip: {cause:?}")
            }
            _ => {}
        }
        (answered && response_sent).then_some(())
    })
    .await;
}

/// Bytes of one sync frame carrying `payload_len` bytes.
fn frame_len(payload_len: usize) -> u64 {
    (LENGTH_PREFIX_BYTES + payload_len) as u64
}

#[tokio::test]
async fn tcp_request_response_counts_exact_frame_bytes() {
    let (mut a, a_counters) = node("/ip4/127.0.0.1/tcp/0", |_| {});
    let (mut b, b_counters) = node("/ip4/127.0.0.1/tcp/0", |_| {});
    bounded("tcp sync round trip", async {
        connect(&mut a, &mut b).await;

        let request = b"want: heads of commons 7".to_vec();
        let response = vec![0xA5; 300_000];
        round_trip(&mut a, &mut b, &request, &response).await;

        assert_eq!(b_counters.sent(), frame_len(request.len()));
        assert_eq!(a_counters.received(), frame_len(request.len()));
        assert_eq!(a_counters.sent(), frame_len(response.len()));
        assert_eq!(b_counters.received(), frame_len(response.len()));

        // Substream totals cover the sync frames plus identify, ping, kad and negotiation.
        let (a_in, a_out) = a_counters.transport_bytes();
        let (b_in, b_out) = b_counters.transport_bytes();
        assert!(
            a_in >= a_counters.received() && a_out >= a_counters.sent(),
            "{a_in} {a_out}"
        );
        assert!(
            b_in >= b_counters.received() && b_out >= b_counters.sent(),
            "{b_in} {b_out}"
        );
    })
    .await;
}

/// What the swarm configuration alone promises for gossip (no validation logic runs here; the
/// test below drives the node's own): a message arrives signed by its publisher's key, waits
/// for the receiver's verdict before anything forwards it, and is identified by its content.
#[tokio::test]
async fn gossip_is_signed_held_for_a_verdict_and_content_addressed() {
    let (mut a, _) = node("/ip4/127.0.0.1/tcp/0", |_| {});
    let (mut b, _) = node("/ip4/127.0.0.1/tcp/0", |_| {});
    let topic = commons_topic("00ff00ff");
    for swarm in [&mut a, &mut b] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .expect("subscribe");
    }
    let a_id = *a.local_peer_id();
    let b_id = *b.local_peer_id();

    bounded("gossip delivery", async {
        connect(&mut a, &mut b).await;

        // Publishing needs A to know that B subscribed (and vice versa for the reply path).
        let subscribed = |node: &Node, peer: PeerId| {
            node.behaviour()
                .gossipsub
                .all_peers()
                .any(|(p, topics)| *p == peer && topics.contains(&&topic.hash()))
        };
        if !(subscribed(&a, b_id) && subscribed(&b, a_id)) {
            drive(&mut a, &mut b, |_, _, a, b| {
                (subscribed(a, b_id) && subscribed(b, a_id)).then_some(())
            })
            .await;
        }

        let payload = b"envelope: new plough drawing".to_vec();
        a.behaviour_mut()
            .gossipsub
            .publish(topic.clone(), payload.clone())
            .expect("publish");

        drive(&mut a, &mut b, |side, event, _, b| {
            let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) = event
            else {
                return None;
            };
            assert_eq!(side, Side::B, "only B receives A's message");
            assert_eq!(message.data, payload);
            assert_eq!(message.source, Some(a_id), "signed by A's libp2p key");
            assert_eq!(message.topic, topic.hash());
            // Only a message held for validation is still in the cache to be judged.
            let awaited = b
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Accept,
                );
            assert!(awaited, "message awaited validation");
            Some(())
        })
        .await;

        // The same payload again has the same (content) id, so gossipsub refuses it.
        let again = a.behaviour_mut().gossipsub.publish(topic.clone(), payload);
        assert!(
            matches!(again, Err(gossipsub::PublishError::Duplicate)),
            "{again:?}"
        );
    })
    .await;
}

/// A home holding one commons, for a real `serve`: (home dir, home, commons id).
fn serve_home() -> (tempfile::TempDir, Home, CommonsId) {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = LocalProfile {
        name: "Hub".into(),
        location: String::new(),
        bio: String::new(),
    };
    let home = Home::init(dir.path(), &profile).expect("init home");
    let mut replicas = Replicas::open(&home).expect("open store");
    let created = execute(
        &mut replicas,
        Request::CommonsCreate {
            name: "Farm Hack tools".into(),
            description: String::new(),
        },
    )
    .expect("create commons");
    drop(replicas);
    let hedgerow_node::api::Reply::CommonsCreated(created) = created else {
        panic!("commons create answered {created:?}");
    };
    let commons = created.id;
    (dir, home, commons)
}

/// Answers a node's sync request with "in sync", as an honest peer holding the same would;
/// an unanswered request is the peer's offence, and the node would drop the connection.
fn answer_in_sync(swarm: &mut Node, event: Event) {
    if let SwarmEvent::Behaviour(BehaviourEvent::Sync(SyncEvent::Message {
        message: request_response::Message::Request { channel, .. },
        ..
    })) = event
    {
        let _ = swarm
            .behaviour_mut()
            .sync
            .send_response(channel, SyncResponse::InSync.to_bytes().into());
    }
}

/// The node's own gossip validation, as it runs in `serve`, decides what is forwarded:
///
/// ```text
///   A (test swarm) ──gossip──> B (hedgerow serve, in process) ──forwards──> C (test swarm)
///   A sends garbage, then a valid announcement: C gets only the announcement.
/// ```
///
/// Both go over the same B→C stream, in order, so had B accepted the garbage C would have
/// received it first; had B not accepted the announcement, C would never receive it.
#[tokio::test]
async fn serve_validates_gossip_before_forwarding_it() {
    let (_dir, home, commons) = serve_home();
    let topic = commons_topic(&commons.to_string());
    let (mut a, _) = node("/ip4/127.0.0.1/tcp/0", |_| {});
    let (mut c, _) = node("/ip4/127.0.0.1/tcp/0", |_| {});
    for swarm in [&mut a, &mut c] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .expect("subscribe");
    }
    let a_id = *a.local_peer_id();
    let a_addr = listen_addr(&mut a).await.with(Protocol::P2p(a_id));
    let c_addr = listen_addr(&mut c)
        .await
        .with(Protocol::P2p(*c.local_peer_id()));
    let config = ServeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("listen address")],
        peers: vec![a_addr, c_addr],
        mdns: false,
        ..ServeConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = tokio::spawn(async move {
        serve::run(&home, config, async {
            let _ = stopped.await;
        })
        .await
    });

    let garbage = b"not a gossip message".to_vec();
    let announce = Gossip::Announce {
        commons,
        digest: [7; 32],
    }
    .to_bytes();
    let forwarded = bounded("gossip through serve", async {
        // B is the only other peer of each test swarm; wait until C has B in its mesh (so B
        // has C in its own) and A knows B subscribed (so A's publish reaches it).
        let mut b_id = None;
        loop {
            tokio::select! {
                event = a.select_next_some() => {
                    if let SwarmEvent::ConnectionEstablished { peer_id, .. } = event {
                        b_id = Some(peer_id);
                    }
                    answer_in_sync(&mut a, event);
                }
                event = c.select_next_some() => answer_in_sync(&mut c, event),
            }
            let Some(b) = b_id else { continue };
            let in_mesh = c
                .behaviour()
                .gossipsub
                .mesh_peers(&topic.hash())
                .any(|p| *p == b);
            let a_knows = a
                .behaviour()
                .gossipsub
                .all_peers()
                .any(|(p, topics)| *p == b && topics.contains(&&topic.hash()));
            if in_mesh && a_knows {
                break;
            }
        }
        for payload in [&garbage, &announce] {
            a.behaviour_mut()
                .gossipsub
                .publish(topic.clone(), payload.clone())
                .expect("publish");
        }
        loop {
            tokio::select! {
                event = a.select_next_some() => answer_in_sync(&mut a, event),
                event = c.select_next_some() => {
                    // B's own announcements come from B; only A's messages are relayed ones.
                    if let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                        gossipsub::Event::Message { message, .. },
                    )) = event
                    {
                        if message.source == Some(a_id) {
                            return message;
                        }
                    } else {
                        answer_in_sync(&mut c, event);
                    }
                }
            }
        }
    })
    .await;
    assert_eq!(
        forwarded.data, announce,
        "B forwarded what its validation should have refused"
    );
    let _ = stop.send(());
    let result = bounded("serve stops", serve).await.expect("serve task");
    result.expect("serve ran cleanly");
}

#[tokio::test]
async fn oversized_request_is_refused_and_connection_survives() {
    let (mut a, a_counters) = node("/ip4/127.0.0.1/tcp/0", |_| {});
    // B plays a peer with a looser limit, so the oversized frame really goes on the wire.
    let (mut b, _) = node("/ip4/127.0.0.1/tcp/0", |c| {
        c.max_request_bytes = 2 * MAX_REQUEST_BYTES
    });
    let a_id = *a.local_peer_id();

    bounded("oversized request", async {
        connect(&mut a, &mut b).await;

        let oversized = vec![1u8; MAX_REQUEST_BYTES + 1];
        let sent_id = b.behaviour_mut().sync.send_request(&a_id, oversized);
        drive(&mut a, &mut b, |side, event, _, _| match (side, event) {
            (
                Side::B,
                SwarmEvent::Behaviour(BehaviourEvent::Sync(SyncEvent::OutboundFailure {
                    request_id,
                    error,
                    ..
                })),
            ) => {
                assert_eq!(request_id, sent_id);
                assert!(
                    matches!(
                        error,
                        request_response::OutboundFailure::Io(_)
                            | request_response::OutboundFailure::ConnectionClosed
                    ),
                    "{error}"
                );
                Some(())
            }
            (Side::A, SwarmEvent::Behaviour(BehaviourEvent::Sync(SyncEvent::Message { .. }))) => {
                panic!("A must not deliver an oversized request")
            }
            (side, SwarmEvent::ConnectionClosed { cause, .. }) => {
                panic!("{side:?}: connection closed: {cause:?}")
            }
            _ => None,
        })
        .await;

        // A read the length prefix only, then refused the frame.
        assert_eq!(a_counters.received(), LENGTH_PREFIX_BYTES as u64);
        assert!(a.is_connected(b.local_peer_id()));

        // The connection still carries requests of legal size.
        round_trip(&mut a, &mut b, b"still there?", b"yes").await;
    })
    .await;
}

#[tokio::test]
async fn quic_connects_and_syncs() {
    let (mut a, a_counters) = node("/ip4/127.0.0.1/udp/0/quic-v1", |_| {});
    let (mut b, b_counters) = node("/ip4/127.0.0.1/udp/0/quic-v1", |_| {});
    bounded("quic round trip", async {
        connect(&mut a, &mut b).await;
        round_trip(&mut a, &mut b, b"hello over quic", &[9; 4096]).await;
        assert_eq!(b_counters.sent(), frame_len(15));
        assert_eq!(a_counters.received(), frame_len(15));
        assert_eq!(a_counters.sent(), frame_len(4096));
        assert_eq!(b_counters.received(), frame_len(4096));
        let (a_in, a_out) = a_counters.transport_bytes();
        assert!(
            a_in >= a_counters.received() && a_out >= a_counters.sent(),
            "{a_in} {a_out}"
        );
    })
    .await;
}
