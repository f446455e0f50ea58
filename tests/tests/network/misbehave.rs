//! A misbehaving peer, written in Rust against the real wire protocol, versus
//! one honest `hedgerow serve`:
//!
//! ```text
//!   rogue (libp2p in this test) ==> honest node <== B (honest, syncs afterwards)
//! ```
//!
//! The rogue joins the commons topic and sends forged, mismatched, garbage and
//! equivocating gossip; garbage, oversized, truncated and over-long sync
//! requests; and garbage and forged sync responses to the honest node's pulls.
//! The honest node must stay up, store none of it, count each refusal by
//! reason, ban the rogue, and still sync with an honest peer.

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use hedgerow_node::net::{
    build_swarm, commons_topic, keypair_from_ed25519_secret, Behaviour, BehaviourEvent,
    ByteCounters, NetConfig, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SYNC_PROTOCOL,
};
use hedgerow_protocol::automerge::{ActorId, Automerge};
use hedgerow_protocol::compact::CompactChanges;
use hedgerow_protocol::envelope::signing_digest;
use hedgerow_protocol::schema::{init_document, DocKind, NewDocument};
use hedgerow_protocol::sync::{
    id_prefix, DocPayload, Gossip, LiveChange, SyncRequest, SyncResponse, Want, MAX_QUEUED_WANTS,
    MAX_WANTS_PER_FETCH,
};
use hedgerow_protocol::{
    actor_for, AuthorKey, ChangeEnvelope, CommonsGenesis, CommonsId, DeviceKey, DocGenesis, DocId,
    Signed,
};
use hedgerow_tests::net::ServeNode;
use hedgerow_tests::TestHome;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    gossipsub, identity::Keypair, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use serde_json::Value;
use std::collections::HashMap;
use std::io;
use std::time::Duration;

/// Every refusal the honest node must count, in the order the rogue causes them.
const REASONS: [&str; 10] = [
    "malformed-gossip",
    "bad-signature",
    "actor-mismatch",
    "wrong-topic",
    "malformed-request",
    "too-many-wants",
    "truncated-frame",
    "malformed-response",
    "oversized-frame",
    "bad-changes",
];

/// Bytes in automerge's bundle format on which automerge 0.12's parser loops forever (found by
/// fuzzing): a node that handed them to automerge would hang its sync for good.
const BUNDLE_THAT_HANGS_AUTOMERGE: &[u8] =
    include_bytes!("../../../protocol/tests/vectors/bundle-that-hangs-automerge.bin");

/// How the rogue answers the honest node's pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// "Nothing to do" (a quiet peer).
    InSync,
    /// Bytes that are no sync response.
    Garbage,
    /// A response frame longer than any node accepts.
    Oversized,
    /// An inventory naming a document, then that document as bytes that would hang automerge.
    ForgedDocs,
    /// An inventory of this many made-up documents, then empty answers to every fetch.
    HugeInventory(u64),
    /// An honest relay's answer: an inventory naming `relayed`'s document, then `relayed`
    /// (validly signed by a third author, and refused by the honest node for what it says).
    Relay,
}

/// The rogue's swarm and what it has seen.
struct Rogue {
    swarm: Swarm<Behaviour>,
    honest: PeerId,
    honest_addr: Multiaddr,
    topic: gossipsub::IdentTopic,
    commons: CommonsId,
    key: DeviceKey,
    answer: Answer,
    /// The honest node announced its subscription to the commons topic.
    subscribed: bool,
    connected: bool,
    closures: usize,
    responses: HashMap<OutboundRequestId, Option<Vec<u8>>>,
    genesis: Option<Signed<CommonsGenesis>>,
    forged_doc: Option<Signed<DocGenesis>>,
    /// What [`Answer::Relay`] serves.
    relayed: Option<DocPayload>,
    nonce: u8,
}

impl Rogue {
    /// Asks `commons`' inventory like any puller and keeps its genesis record.
    async fn fetch_genesis(&mut self, commons: CommonsId) {
        let inventory = self
            .request(
                SyncRequest::Hello {
                    commons,
                    digest: [0; 32],
                }
                .to_bytes(),
            )
            .await
            .expect("inventory");
        match SyncResponse::from_bytes(&inventory).expect("a sync response") {
            SyncResponse::Inventory { genesis, .. } => self.genesis = Some(genesis),
            other => panic!("expected an inventory, got {other:?}"),
        }
    }

    async fn connect(node: &ServeNode, commons: CommonsId, secret: [u8; 32]) -> Self {
        let keypair = keypair_from_ed25519_secret(secret);
        // Its own limits let it write frames an honest node refuses.
        let config = NetConfig {
            max_request_bytes: 4 * MAX_REQUEST_BYTES,
            max_response_bytes: 2 * MAX_RESPONSE_BYTES,
            ..NetConfig::default()
        };
        let swarm = build_swarm(keypair, &config, ByteCounters::new()).expect("rogue swarm");
        let honest: PeerId = node.peer_id().parse().expect("peer id");
        let mut rogue = Self {
            swarm,
            honest,
            honest_addr: node.multiaddr().parse().expect("multiaddr"),
            topic: commons_topic(&commons.to_string()),
            commons,
            key: DeviceKey::from_secret(secret),
            answer: Answer::InSync,
            subscribed: false,
            connected: false,
            closures: 0,
            responses: HashMap::new(),
            genesis: None,
            forged_doc: None,
            relayed: None,
            nonce: 0,
        };
        rogue
            .swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&rogue.topic)
            .expect("subscribe");
        rogue.swarm.dial(rogue.honest_addr.clone()).expect("dial");
        assert!(
            rogue.pump_until(|r| r.connected && r.subscribed).await,
            "the rogue never saw the honest node subscribe to the commons topic"
        );
        rogue
    }

    /// Drives the swarm for `duration`, answering the honest node's requests.
    async fn pump(&mut self, duration: Duration) {
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = &mut sleep => return,
            }
        }
    }

    /// Drives the swarm until `done` holds (bounded: about 15 s).
    async fn pump_until(&mut self, done: impl Fn(&Self) -> bool) -> bool {
        for _ in 0..150 {
            if done(self) {
                return true;
            }
            self.pump(Duration::from_millis(100)).await;
        }
        done(self)
    }

    /// Drives the swarm until the honest node's status satisfies `check` (bounded).
    async fn await_status(
        &mut self,
        node: &ServeNode,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut status = Value::Null;
        for _ in 0..60 {
            self.pump(Duration::from_millis(150)).await;
            status = tokio::task::block_in_place(|| node.status());
            if check(&status) {
                return status;
            }
        }
        panic!("the honest node never showed {what}: {status}");
    }

    /// Waits until the honest node has counted one refusal for `reason`.
    async fn await_rejected(&mut self, node: &ServeNode, reason: &str) {
        self.await_status(node, &format!("a `{reason}` rejection"), |s| {
            s["counters"]["rejected"][reason].as_u64() >= Some(1)
        })
        .await;
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == self.honest => {
                self.connected = true;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if peer_id == self.honest => {
                self.connected = false;
                self.subscribed = false;
                self.closures += 1;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
            })) if peer_id == self.honest && topic == self.topic.hash() => {
                self.subscribed = true;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let response = self.answer_pull(&request);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response.into());
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.responses.insert(request_id, Some(response.bytes));
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure { request_id, .. },
            )) => {
                self.responses.insert(request_id, None);
            }
            _ => {}
        }
    }

    fn answer_pull(&mut self, request: &[u8]) -> Vec<u8> {
        let Ok(request) = SyncRequest::from_bytes(request) else {
            return SyncResponse::Refused { reason: "?".into() }.to_bytes();
        };
        match (self.answer, request) {
            (Answer::InSync, _) => SyncResponse::InSync.to_bytes(),
            (Answer::Garbage, _) => b"\x07 this is no sync response \xff\xfe".to_vec(),
            (Answer::Oversized, _) => vec![0; MAX_RESPONSE_BYTES + 1],
            (Answer::ForgedDocs, SyncRequest::Hello { .. } | SyncRequest::HelloV4 { .. }) => {
                let doc = self.forged_doc.clone().expect("forged document");
                SyncResponse::Inventory {
                    genesis: self.genesis.clone().expect("commons genesis"),
                    docs: vec![(id_prefix(&doc.body.id()), [7; 8])],
                }
                .to_bytes()
            }
            (
                Answer::HugeInventory(count),
                SyncRequest::Hello { .. } | SyncRequest::HelloV4 { .. },
            ) => SyncResponse::Inventory {
                genesis: self.genesis.clone().expect("commons genesis"),
                docs: (0..count)
                    .map(|n| ((n << 8).to_be_bytes(), [7; 8]))
                    .collect(),
            }
            .to_bytes(),
            (Answer::HugeInventory(_), SyncRequest::Fetch { .. } | SyncRequest::FetchV3 { .. }) => {
                SyncResponse::Docs {
                    items: Vec::new(),
                    deferred: Vec::new(),
                }
                .to_bytes()
            }
            (Answer::Relay, SyncRequest::Hello { .. } | SyncRequest::HelloV4 { .. }) => {
                let doc = self.relayed.as_ref().expect("relayed document").doc;
                SyncResponse::Inventory {
                    genesis: self.genesis.clone().expect("commons genesis"),
                    docs: vec![(id_prefix(&doc), [7; 8])],
                }
                .to_bytes()
            }
            (Answer::Relay, SyncRequest::Fetch { .. } | SyncRequest::FetchV3 { .. }) => {
                SyncResponse::Docs {
                    items: vec![self.relayed.clone().expect("relayed document")],
                    deferred: Vec::new(),
                }
                .to_bytes()
            }
            (
                Answer::ForgedDocs | Answer::Relay | Answer::HugeInventory(_),
                SyncRequest::Entries { .. } | SyncRequest::Prove(_),
            ) => SyncResponse::Refused {
                reason: "no summary was sent".into(),
            }
            .to_bytes(),
            (Answer::ForgedDocs, SyncRequest::Fetch { .. } | SyncRequest::FetchV3 { .. }) => {
                let doc = self.forged_doc.clone().expect("forged document");
                SyncResponse::Docs {
                    items: vec![DocPayload {
                        doc: doc.body.id(),
                        genesis: Some(doc),
                        changes: CompactChanges::Document(BUNDLE_THAT_HANGS_AUTOMERGE.to_vec()),
                        proofs: Vec::new(),
                    }],
                    deferred: Vec::new(),
                }
                .to_bytes()
            }
        }
    }

    /// Sends one sync request and waits (bounded) for its response; `None` on failure.
    async fn request(&mut self, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&self.honest, bytes);
        assert!(
            self.pump_until(|r| r.responses.contains_key(&id)).await,
            "no answer to a sync request"
        );
        self.responses.remove(&id).flatten()
    }

    fn publish(&mut self, gossip: Vec<u8>) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), gossip)
            .expect("the honest node is subscribed");
    }

    /// A fresh design genesis signed by the rogue.
    fn new_doc(&mut self) -> Signed<DocGenesis> {
        self.nonce += 1;
        new_design(self.commons, &self.key, self.nonce)
    }
}

/// A design genesis signed by `key`.
fn new_design(commons: CommonsId, key: &DeviceKey, nonce: u8) -> Signed<DocGenesis> {
    DocGenesis {
        commons,
        kind: DocKind::Design,
        creator: key.author(),
        created_at: 1_800_000_000,
        nonce: [nonce; 16],
        fork: None,
    }
    .sign(key)
}

/// A change on top of `first` that breaks the design schema (a field no design has).
fn schema_breaking_change(actor: ActorId, first: &[u8]) -> Vec<u8> {
    use hedgerow_protocol::automerge::transaction::Transactable;
    let mut doc = Automerge::new().with_actor(actor);
    let first = hedgerow_protocol::compact::decode_change(first).expect("the first change");
    doc.apply_changes([first]).expect("apply the first change");
    let mut tx = doc.transaction();
    tx.put(hedgerow_protocol::automerge::ROOT, "made_of_gold", "yes")
        .expect("put");
    tx.commit();
    doc.get_last_local_change()
        .expect("a change")
        .raw_bytes()
        .to_vec()
}

/// The first change of a design named `title`, written as automerge actor `actor`.
fn first_change(actor: ActorId, title: &str) -> Vec<u8> {
    let mut doc = Automerge::new().with_actor(actor);
    let mut tx = doc.transaction();
    init_document(&mut tx, &NewDocument::new(DocKind::Design, title)).expect("design skeleton");
    tx.commit();
    doc.get_last_local_change()
        .expect("a change")
        .raw_bytes()
        .to_vec()
}

fn live(genesis: &Signed<DocGenesis>, envelope: ChangeEnvelope) -> Vec<u8> {
    Gossip::Change(Box::new(LiveChange {
        genesis: Some(genesis.clone()),
        envelope,
    }))
    .to_bytes()
}

/// Request-response codec that writes requests verbatim, so the test can lie in the length prefix.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        Err(io::ErrorKind::Unsupported.into())
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut bytes = Vec::new();
        io.take(64 * 1024).read_to_end(&mut bytes).await?;
        Ok(bytes)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Sends `frame` verbatim as a sync request on a second connection of the same peer.
async fn send_raw_frame(keypair: Keypair, to: &Multiaddr, honest: PeerId, frame: Vec<u8>) {
    let mut raw = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(SYNC_PROTOCOL, ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            )
        })
        .expect("behaviour")
        .build();
    raw.dial(to.clone()).expect("dial");
    let mut sent = None;
    let deadline = tokio::time::sleep(Duration::from_secs(15));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = raw.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == honest && sent.is_none() => {
                    sent = Some(raw.behaviour_mut().send_request(&honest, frame.clone()));
                }
                SwarmEvent::Behaviour(request_response::Event::Message { .. })
                | SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => return,
                SwarmEvent::ConnectionClosed { .. } if sent.is_some() => return,
                _ => {}
            },
            _ = &mut deadline => panic!("the raw frame was never sent or answered"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_peer_is_refused_counted_and_banned() {
    let (honest, commons, design) = tokio::task::block_in_place(|| {
        let home = TestHome::init("Honest");
        let commons = hedgerow_tests::id(&home.json(&["commons", "create", "Open Tools"]));
        let design = hedgerow_tests::id(&home.json(&["design", "new", "Roller crimper"]));
        (ServeNode::start(home, &[]), commons, design)
    });
    let commons_id: CommonsId = commons.parse().expect("commons id");
    let victim: AuthorKey = honest.status()["author"]
        .as_str()
        .expect("author")
        .parse()
        .expect("author key");
    let secret = [0x52; 32];
    let mut rogue = Rogue::connect(&honest, commons_id, secret).await;

    // The commons genesis, by asking like any puller.
    rogue.fetch_genesis(commons_id).await;

    // 1. Garbage gossip.
    // (Variant 2 is `PrivateNews` since private commons, whose 32-byte digest this text would fill.)
    rogue.publish(b"\x01\x09 definitely not a gossip message".to_vec());
    rogue.await_rejected(&honest, "malformed-gossip").await;

    // 2. A change claiming the honest node's author, signed by the rogue.
    let doc = rogue.new_doc();
    let change = first_change(actor_for(&victim, &doc.body.id()), "Forged design");
    let signature = rogue.key.sign(&signing_digest(
        &commons_id,
        &doc.body.id(),
        &victim,
        &change,
    ));
    let forged = ChangeEnvelope {
        commons: commons_id,
        doc: doc.body.id(),
        author: victim,
        change,
        signature,
    };
    rogue.publish(live(&doc, forged));
    rogue.await_rejected(&honest, "bad-signature").await;

    // 3. Properly signed by the rogue, but written as the honest node's actor.
    let doc = rogue.new_doc();
    let change = first_change(actor_for(&victim, &doc.body.id()), "Mismatched design");
    let mismatched = ChangeEnvelope::sign(&rogue.key, commons_id, doc.body.id(), change);
    rogue.publish(live(&doc, mismatched));
    rogue.await_rejected(&honest, "actor-mismatch").await;

    // 4. Equivocation: two different first changes of one document, both signed. Not a
    // refusal: the lowest hash stays, the other is kept as evidence, the sender is not blamed.
    let doc = rogue.new_doc();
    let actor = actor_for(&rogue.key.author(), &doc.body.id());
    let first = ChangeEnvelope::sign(
        &rogue.key,
        commons_id,
        doc.body.id(),
        first_change(actor.clone(), "Rogue A"),
    );
    let twin = ChangeEnvelope::sign(
        &rogue.key,
        commons_id,
        doc.body.id(),
        first_change(actor, "Rogue B"),
    );
    let twin_hash = |e: &ChangeEnvelope| e.verify().expect("valid").change.hash();
    let rogue_title = if twin_hash(&first) < twin_hash(&twin) {
        "Rogue A"
    } else {
        "Rogue B"
    };
    rogue.publish(live(&doc, first));
    rogue
        .await_status(&honest, "the rogue's valid change", |s| {
            s["counters"]["live_received"].as_u64() >= Some(1)
        })
        .await;
    rogue.publish(live(&doc, twin));
    rogue
        .await_status(&honest, "the twin settled and kept as evidence", |s| {
            s["excluded_changes"].as_u64() == Some(1)
        })
        .await;
    // Garbage once more, so that the rogue's offences still reach the ban below.
    rogue.publish(b"\x01 still not gossip".to_vec());
    rogue
        .await_status(&honest, "a second malformed gossip", |s| {
            s["counters"]["rejected"]["malformed-gossip"].as_u64() >= Some(2)
        })
        .await;

    // 5. A change of another commons on this commons' topic.
    let elsewhere = ChangeEnvelope::sign(
        &rogue.key,
        CommonsId([9; 32]),
        DocId([8; 32]),
        first_change(actor_for(&rogue.key.author(), &DocId([8; 32])), "Elsewhere"),
    );
    let stray = Gossip::Change(Box::new(LiveChange {
        genesis: None,
        envelope: elsewhere,
    }));
    rogue.publish(stray.to_bytes());
    rogue.await_rejected(&honest, "wrong-topic").await;

    // 6. A sync request that does not decode.
    let answer = rogue
        .request(b"\x00\x01\x02 garbage request".to_vec())
        .await;
    assert!(matches!(
        answer.as_deref().map(SyncResponse::from_bytes),
        Some(Ok(SyncResponse::Refused { .. }))
    ));
    rogue.await_rejected(&honest, "malformed-request").await;

    // 7. A fetch naming far more documents than allowed.
    let wants = (0..MAX_WANTS_PER_FETCH * 20)
        .map(|i| Want {
            prefix: (i as u64).to_be_bytes(),
            have_genesis: false,
            clock: Vec::new(),
        })
        .collect();
    let huge = SyncRequest::Fetch {
        commons: commons_id,
        wants,
        budget: u32::MAX,
    };
    let answer = rogue.request(huge.to_bytes()).await;
    assert!(matches!(
        answer.as_deref().map(SyncResponse::from_bytes),
        Some(Ok(SyncResponse::Refused { .. }))
    ));
    rogue.await_rejected(&honest, "too-many-wants").await;

    // Request frames whose length prefix lies: far too long, then cut short. They cost the
    // honest node at most the bytes sent, and libp2p does not say who sent them, so they are
    // counted but not held against a peer.
    let keypair = keypair_from_ed25519_secret(secret);
    let mut oversized = (64u32 << 20).to_be_bytes().to_vec();
    oversized.extend_from_slice(b"tiny");
    send_raw_frame(keypair.clone(), &rogue.honest_addr, rogue.honest, oversized).await;
    rogue.await_rejected(&honest, "oversized-frame").await;
    let mut truncated = 1000u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0u8; 10]);
    send_raw_frame(keypair, &rogue.honest_addr, rogue.honest, truncated).await;
    rogue.await_rejected(&honest, "truncated-frame").await;

    // 8. Garbage in answer to the honest node's pull (an announcement makes it pull).
    rogue.answer = Answer::Garbage;
    rogue.publish(
        Gossip::Announce {
            commons: commons_id,
            digest: [1; 32],
        }
        .to_bytes(),
    );
    rogue.await_rejected(&honest, "malformed-response").await;

    // 9. A response frame over the limit: refused on its length prefix, and the honest node
    // drops the connection.
    rogue.answer = Answer::Oversized;
    rogue.publish(
        Gossip::Announce {
            commons: commons_id,
            digest: [2; 32],
        }
        .to_bytes(),
    );
    rogue
        .await_status(&honest, "an oversized response", |s| {
            s["counters"]["rejected"]["oversized-frame"].as_u64() >= Some(2)
        })
        .await;
    assert!(
        rogue.pump_until(|r| !r.connected).await,
        "the connection stayed up"
    );

    // 10. On reconnection the honest node pulls again, and gets a forged document whose
    // bytes would make automerge loop forever: refused unparsed, the tenth offence bans
    // the rogue (a node that hung here would never report the ban).
    rogue.answer = Answer::ForgedDocs;
    rogue.forged_doc = Some(rogue.new_doc());
    rogue.swarm.dial(rogue.honest_addr.clone()).expect("dial");
    let status = rogue
        .await_status(&honest, "the rogue banned", |s| {
            s["banned_peers"].as_u64() == Some(1)
        })
        .await;
    for reason in REASONS {
        assert!(
            status["counters"]["rejected"][reason].as_u64() >= Some(1),
            "no `{reason}` counted: {status}"
        );
    }
    assert_eq!(status["counters"]["peers_banned"], 1, "{status}");
    assert!(
        rogue.pump_until(|r| !r.connected).await,
        "the banned rogue is still connected"
    );

    // A banned peer that dials again is dropped at once.
    let closures = rogue.closures;
    rogue.swarm.dial(rogue.honest_addr.clone()).expect("dial");
    assert!(
        rogue.pump_until(|r| r.closures > closures).await,
        "the banned rogue got back in"
    );
    drop(rogue);

    tokio::task::block_in_place(|| {
        // Stored: the honest design and the rogue's one valid change; nothing else.
        let titles = |home: &TestHome| -> Vec<String> {
            let list = home.json(&["design", "list"]);
            let mut titles: Vec<String> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d["title"].as_str().unwrap_or_default().to_string())
                .collect();
            titles.sort();
            titles
        };
        assert_eq!(titles(&honest), [rogue_title, "Roller crimper"]);
        honest.ok(&["verify"]);

        // An honest peer still syncs with it.
        let peer = TestHome::init("Ben");
        peer.json(&["commons", "join", &commons]);
        let out = peer.run(&[
            "sync",
            "--peer",
            &honest.multiaddr(),
            "--linger",
            "1",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(titles(&peer), [rogue_title, "Roller crimper"]);
        assert_eq!(
            peer.json(&["design", "show", &design])["name"],
            "Roller crimper"
        );
        peer.ok(&["verify"]);
    });
}

/// An honest relay forwards content by a third author that the honest node refuses for what it
/// says (changes that break the design schema), over gossip and in the answers to many sync
/// rounds:
///
/// ```text
///   third author's changes --> relay (libp2p in this test) ==> honest node (sync every 1 s)
/// ```
///
/// Each refusal is counted, but none is the relay's offence: it stays connected and unbanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_of_refused_third_party_content_is_not_banned() {
    let honest = tokio::task::block_in_place(|| {
        let home = TestHome::init("Honest");
        home.json(&["commons", "create", "Open Tools"]);
        let options = hedgerow_tests::net::ServeOptions {
            sync_interval: Some(1),
            ..Default::default()
        };
        ServeNode::start_with(home, options)
    });
    let commons: CommonsId = honest.status()["commons"][0]["id"]
        .as_str()
        .expect("commons id")
        .parse()
        .expect("commons id");
    let mut relay = Rogue::connect(&honest, commons, [0x61; 32]).await;
    relay.fetch_genesis(commons).await;

    // The third author's designs reach the honest node through the relay; then a change on
    // each, also validly signed by that author, which breaks the schema and is refused.
    let third = DeviceKey::from_secret([0x33; 32]);
    const REFUSED: u64 = 12;
    let mut refused = Vec::new();
    for n in 0..REFUSED as u8 {
        let doc = new_design(commons, &third, n + 1);
        let actor = actor_for(&third.author(), &doc.body.id());
        let first_bytes = first_change(actor.clone(), &format!("Seeder {n}"));
        let first = ChangeEnvelope::sign(&third, commons, doc.body.id(), first_bytes.clone());
        relay.publish(live(&doc, first));
        refused.push((
            doc.clone(),
            ChangeEnvelope::sign(
                &third,
                commons,
                doc.body.id(),
                schema_breaking_change(actor, &first_bytes),
            ),
        ));
    }
    relay
        .await_status(&honest, "the third author's designs", |s| {
            s["counters"]["live_received"].as_u64() >= Some(REFUSED)
        })
        .await;
    for (doc, change) in &refused {
        relay.publish(live(doc, change.clone()));
    }
    relay
        .await_status(&honest, "every gossiped schema breach refused", |s| {
            s["counters"]["rejected"]["schema-violation"].as_u64() >= Some(REFUSED)
        })
        .await;

    // Every sync round the honest node pulls from the relay, which serves one again.
    let (doc, breach) = refused[0].clone();
    let change = hedgerow_protocol::compact::decode_change(&breach.change).expect("a change");
    relay.relayed = Some(DocPayload {
        doc: doc.body.id(),
        genesis: None,
        changes: CompactChanges::of_changes([&change]),
        proofs: vec![(change.hash().0, breach.proof())],
    });
    relay.answer = Answer::Relay;
    let status = relay
        .await_status(&honest, "schema breaches refused in sync rounds", |s| {
            s["counters"]["rejected"]["schema-violation"].as_u64() >= Some(REFUSED + 4)
        })
        .await;
    assert_eq!(status["banned_peers"], 0, "{status}");
    assert_eq!(status["counters"]["peers_banned"], 0, "{status}");
    assert!(
        status["counters"]["relayed_refusals"].as_u64() >= Some(REFUSED + 4),
        "{status}"
    );
    assert!(
        relay.connected,
        "the honest node dropped the relay: {status}"
    );
    let peers = tokio::task::block_in_place(|| honest.connected());
    assert!(
        peers.contains(&relay.swarm.local_peer_id().to_string()),
        "{peers:?}"
    );
}

/// A peer answers the honest node's pull with an inventory of 300,000 made-up documents
/// (about 5 MB): the honest node queues a bounded number of wants, not 300,000.
///
/// ```text
///   liar (libp2p in this test) --inventory of 300,000 ids--> honest node
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_fake_inventory_queues_a_bounded_number_of_wants() {
    let (honest, commons) = honest_node_with_a_commons();
    let mut liar = Rogue::connect(&honest, commons, [0x71; 32]).await;
    liar.fetch_genesis(commons).await;
    liar.answer = Answer::HugeInventory(300_000);
    liar.publish(
        Gossip::Announce {
            commons,
            digest: [3; 32],
        }
        .to_bytes(),
    );
    let status = liar
        .await_status(&honest, "the fake inventory queued", |s| {
            s["counters"]["peak_queued_wants"].as_u64() >= Some(1)
        })
        .await;
    let peak = status["counters"]["peak_queued_wants"]
        .as_u64()
        .expect("peak");
    assert!(
        peak <= (MAX_QUEUED_WANTS + MAX_WANTS_PER_FETCH) as u64,
        "{peak} wants queued: {status}"
    );
}

/// Makes one signed change on `writer` (the rogue's own copy of a document it authors).
fn write<E: std::error::Error + 'static>(
    writer: &mut hedgerow_protocol::replica::DocReplica,
    key: &DeviceKey,
    edit: impl FnOnce(&mut hedgerow_protocol::automerge::transaction::Transaction<'_>) -> Result<(), E>,
) -> ChangeEnvelope {
    let (_, made) = writer
        .edit(key, 1_800_000_000, edit)
        .unwrap_or_else(|_| panic!("the rogue's own edit is refused"));
    made.expect("the edit made a change").0
}

/// Sets a design's summary on `writer`.
fn set_summary(
    writer: &mut hedgerow_protocol::replica::DocReplica,
    key: &DeviceKey,
    summary: &str,
) -> ChangeEnvelope {
    let ctx = hedgerow_protocol::schema::EditContext {
        author: key.author().to_string(),
        now_unix: 1_800_000_000,
    };
    let edit = hedgerow_protocol::schema::Edit::Set {
        field: "summary".into(),
        value: summary.into(),
    };
    write(writer, key, |tx| {
        hedgerow_protocol::schema::apply_edit(tx, DocKind::Design, &edit, &ctx)
    })
}

/// Validly signed changes a peer sends that do not fit where they arrive: a change signed for
/// another document, over gossip and in a sync response, and more changes waiting for history
/// than the pending cap holds. Each is refused and counted by its kind; the held ones are
/// applied once their history comes, the refused ones never.
///
/// ```text
///   rogue (libp2p in this test): gossip + sync answers ==> honest node
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_document_and_pending_cap_from_a_peer_are_refused_by_kind() {
    use hedgerow_protocol::replica::{DocReplica, MAX_PENDING_PER_AUTHOR};
    let (honest, commons) = honest_node_with_a_commons();
    let mut rogue = Rogue::connect(&honest, commons, [0x81; 32]).await;
    rogue.fetch_genesis(commons).await;
    // The rogue's author key (the same secret as its network key, as in `Rogue::connect`).
    let key = DeviceKey::from_secret([0x81; 32]);

    // The rogue's own design, which the honest node takes in.
    let doc = rogue.new_doc();
    let design = doc.body.id().to_string();
    let mut writer = DocReplica::new(doc.clone()).expect("genesis");
    let first = write(&mut writer, &key, |tx| {
        init_document(tx, &NewDocument::new(DocKind::Design, "Rogue design"))
    });
    rogue.publish(live(&doc, first));
    rogue
        .await_status(&honest, "the rogue's design", |s| {
            s["counters"]["live_received"].as_u64() == Some(1)
        })
        .await;

    // 1. Gossip: a change signed for another document, sent as one of this design.
    let other = rogue.new_doc();
    let mut other_writer = DocReplica::new(other.clone()).expect("genesis");
    let stray = write(&mut other_writer, &key, |tx| {
        init_document(tx, &NewDocument::new(DocKind::Design, "Another design"))
    });
    rogue.publish(live(&doc, stray.clone()));
    rogue.await_rejected(&honest, "wrong-document").await;

    // 2. Sync: the same change served as this design's when the honest node pulls.
    let change = hedgerow_protocol::compact::decode_change(&stray.change).expect("a change");
    rogue.relayed = Some(DocPayload {
        doc: doc.body.id(),
        genesis: None,
        changes: CompactChanges::of_changes([&change]),
        proofs: vec![(change.hash().0, stray.proof())],
    });
    rogue.answer = Answer::Relay;
    rogue.publish(
        Gossip::Announce {
            commons,
            digest: [4; 32],
        }
        .to_bytes(),
    );
    rogue
        .await_status(&honest, "a wrong-document sync payload", |s| {
            s["counters"]["rejected"]["wrong-document"].as_u64() == Some(2)
        })
        .await;
    rogue.answer = Answer::InSync;

    // 3. Gossip: the design's second change withheld, then more changes built on it than the
    // honest node holds for one author of one document.
    let withheld = set_summary(&mut writer, &key, "v2");
    let over = 2;
    let held: Vec<ChangeEnvelope> = (0..MAX_PENDING_PER_AUTHOR + over)
        .map(|n| set_summary(&mut writer, &key, &format!("v{}", n + 3)))
        .collect();
    for envelope in &held {
        rogue.publish(live(&doc, envelope.clone()));
    }
    let status = rogue
        .await_status(&honest, "the pending cap reached", |s| {
            s["counters"]["rejected"]["too-many-pending"].as_u64() == Some(over as u64)
        })
        .await;
    assert_eq!(
        status["counters"]["live_pending"], MAX_PENDING_PER_AUTHOR as u64,
        "{status}"
    );
    // Held, not applied: the design still has its first change only.
    let changes = |node: &ServeNode| -> Value {
        tokio::task::block_in_place(|| node.json(&["design", "show", &design])["changes"].clone())
    };
    assert_eq!(changes(&honest), 1);

    // The withheld change arrives: every held change applies with it, the refused ones never.
    rogue.publish(live(&doc, withheld));
    let expected = 2 + MAX_PENDING_PER_AUTHOR as u64;
    for _ in 0..60 {
        if changes(&honest) == expected {
            break;
        }
        rogue.pump(Duration::from_millis(150)).await;
    }
    assert_eq!(changes(&honest), expected);

    // Only the wrong-document payloads were the rogue's offences: counted, not yet a ban.
    let status = tokio::task::block_in_place(|| honest.status());
    assert_eq!(
        status["counters"]["rejected"]["wrong-document"], 2,
        "{status}"
    );
    assert_eq!(
        status["counters"]["rejected"]["too-many-pending"], over as u64,
        "{status}"
    );
    assert_eq!(status["banned_peers"], 0, "{status}");
    assert!(
        rogue.connected,
        "the honest node dropped the rogue: {status}"
    );
    tokio::task::block_in_place(|| honest.ok(&["verify"]));
}

/// A running honest node holding one commons, "Open Tools", and that commons' id.
fn honest_node_with_a_commons() -> (ServeNode, CommonsId) {
    let honest = tokio::task::block_in_place(|| {
        let home = TestHome::init("Honest");
        home.json(&["commons", "create", "Open Tools"]);
        ServeNode::start(home, &[])
    });
    let commons: CommonsId = honest.status()["commons"][0]["id"]
        .as_str()
        .expect("commons id")
        .parse()
        .expect("commons id");
    (honest, commons)
}
