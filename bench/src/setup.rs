//! What a libp2p connection costs before any sync byte moves: two bare swarms built exactly as
//! a node builds its own ([`build_swarm`]: identify, ping, Kademlia, gossipsub, the sync
//! protocol), connected on loopback with nothing else running. Explains the gap between the
//! transport count of an in-sync reconnect and its sync protocol bytes.

use anyhow::{anyhow, Result};
use futures::StreamExt;
use hedgerow_node::net::{build_swarm, commons_topic, ByteCounters, NetConfig};
use hedgerow_protocol::CommonsId;
use libp2p::{identity::Keypair, multiaddr::Protocol, swarm::SwarmEvent};
use serde::Serialize;
use std::time::Duration;

/// How long the two swarms run after dialing: identify, subscriptions and the first pings.
const RUN_FOR: Duration = Duration::from_millis(1500);

/// Bytes both swarms wrote, both directions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SetupBytes {
    /// Connection only (noise and yamux framing not counted, like every transport figure).
    pub connection: u64,
    /// Connection with both subscribed to the commons' gossip topic, as nodes are.
    pub with_subscription: u64,
}

/// Measures the connection setup.
pub fn measure(commons: &CommonsId) -> Result<SetupBytes> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        Ok(SetupBytes {
            connection: connect(None).await?,
            with_subscription: connect(Some(commons)).await?,
        })
    })
}

async fn connect(topic: Option<&CommonsId>) -> Result<u64> {
    let make = || -> Result<_> {
        let counters = ByteCounters::new();
        let config = NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            ..NetConfig::default()
        };
        let swarm = build_swarm(Keypair::generate_ed25519(), &config, counters.clone())?;
        Ok((swarm, counters))
    };
    let (mut a, counters_a) = make()?;
    let (mut b, counters_b) = make()?;
    if let Some(commons) = topic {
        let topic = commons_topic(&commons.to_string());
        a.behaviour_mut().gossipsub.subscribe(&topic)?;
        b.behaviour_mut().gossipsub.subscribe(&topic)?;
    }
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
            break address;
        }
    };
    let a_id = *a.local_peer_id();
    b.dial(addr.with(Protocol::P2p(a_id)))
        .map_err(|e| anyhow!("dial: {e}"))?;
    let deadline = tokio::time::sleep(RUN_FOR);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = a.select_next_some() => {}
            _ = b.select_next_some() => {}
            _ = &mut deadline => break,
        }
    }
    Ok(counters_a.transport_bytes().1 + counters_b.transport_bytes().1)
}
