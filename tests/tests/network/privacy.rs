//! A node's network identity is its own key, not its author key:
//!
//! ```text
//!   observer (bare libp2p in this test) ==dial==> A (`serve --no-mdns`, 127.0.0.1), restarted once
//! ```
//!
//! The PeerId in `status --json` (and `whoami`) is none derived from the author key, it does
//! not embed the author key, it survives restarts, and a peer that merely connects learns
//! no author key from identify (public key, agent and protocol strings).

use futures::StreamExt;
use hedgerow_node::net::{build_swarm, Behaviour, BehaviourEvent, ByteCounters, NetConfig};
use hedgerow_protocol::AuthorKey;
use hedgerow_tests::net::ServeNode;
use hedgerow_tests::TestHome;
use libp2p::identity::{ed25519, Keypair, PublicKey};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, Multiaddr, PeerId, Swarm};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// The PeerId a node would have if its libp2p key were its author key (as before).
fn peer_id_of_author(author: &AuthorKey) -> PeerId {
    let key = ed25519::PublicKey::try_from_bytes(author.as_bytes()).expect("an ed25519 key");
    PublicKey::from(key).to_peer_id()
}

/// Whether `bytes` carry the author key's 32 bytes anywhere.
fn embeds(bytes: &[u8], author: &AuthorKey) -> bool {
    bytes.windows(32).any(|w| w == author.as_bytes())
}

fn peer_id(status: &serde_json::Value) -> String {
    status["peer_id"].as_str().expect("peer_id").to_string()
}

/// Dials `addr` from a fresh bare node and returns what identify told it (bounded wait).
async fn identify_of(addr: Multiaddr, peer: PeerId) -> identify::Info {
    let mut swarm: Swarm<Behaviour> = build_swarm(
        Keypair::generate_ed25519(),
        &NetConfig::default(),
        ByteCounters::new(),
    )
    .expect("observer swarm");
    swarm.dial(addr).expect("dial");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .expect("no identify from the node within 20 s");
        if let SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
            peer_id,
            info,
            ..
        })) = event
        {
            if peer_id == peer {
                return info;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_s_peer_id_is_its_own_network_key_and_reveals_no_author() {
    let mut node = tokio::task::block_in_place(|| {
        let home = TestHome::init("Alice");
        home.ok(&["commons", "create", "Open Tools"]);
        // As a home made by the previous release, which had only the device key.
        let _ = std::fs::remove_file(home.path().join("network.key"));
        ServeNode::start(home, &[])
    });
    let status = tokio::task::block_in_place(|| node.status());
    let author: AuthorKey = status["author"]
        .as_str()
        .expect("author")
        .parse()
        .expect("author key");
    let peer_text = peer_id(&status);
    let peer: PeerId = peer_text.parse().expect("peer id");
    assert_ne!(peer, peer_id_of_author(&author), "PeerId is the author key");
    assert!(
        !embeds(&peer.to_bytes(), &author),
        "PeerId embeds the author key"
    );
    let whoami = tokio::task::block_in_place(|| node.json(&["whoami"]));
    assert_eq!(whoami["peer_id"], peer_text.as_str(), "{whoami}");
    assert_eq!(whoami["author"], status["author"]);

    // What a peer that merely connects learns.
    let info = identify_of(node.multiaddr().parse().expect("multiaddr"), peer).await;
    assert_eq!(info.public_key.to_peer_id(), peer);
    assert!(!embeds(&info.public_key.encode_protobuf(), &author));
    let author_text = author.to_string();
    for text in [&info.agent_version, &info.protocol_version] {
        assert!(!text.contains(&author_text), "identify says {text}");
    }

    // The network key made on this first start is a private file of the home, and gives the
    // same PeerId after a restart.
    let key_file = node.path().join("network.key");
    let mode = std::fs::metadata(&key_file)
        .expect("network.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    tokio::task::block_in_place(|| node.restart());
    let again = tokio::task::block_in_place(|| node.status());
    assert_eq!(peer_id(&again), peer_text, "the PeerId changed on restart");
}
