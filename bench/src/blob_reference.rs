//! References for the blob transfer's throughput, measured on loopback in this process:
//!
//! - **plain libp2p**: two swarms built exactly as a node builds its own ([`build_swarm`]: TCP,
//!   noise, yamux), one connection, the same `/hedgerow/blob/1` frames (up to 1 MiB of data
//!   each, [`PIPELINE`] requests in flight as the node keeps them) answered from one buffer in
//!   memory: no verification, nothing read or written on disk.
//! - **raw TCP**: one socket, the same bytes copied through the kernel with no encryption.
//!
//! The node-to-node figure (`hedgerow fetch` between two `serve` processes) is measured beside
//! these by `bench/blob_transfer.sh`.

use anyhow::{anyhow, Result};
use futures::StreamExt;
use hedgerow_node::net::{build_swarm, BehaviourEvent, ByteCounters, NetConfig};
use libp2p::{identity::Keypair, multiaddr::Protocol, request_response, swarm::SwarmEvent};
use serde::Serialize;
use std::io::{Read, Write};
use std::time::Instant;

/// Requests in flight, as the node keeps them per peer.
const PIPELINE: usize = 4;

/// Payload bytes per response (a full blob response: 64 groups of 16 KiB).
const FRAME: usize = 1 << 20;

/// Throughputs in MB/s (10^6 bytes a second).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    /// Bytes moved.
    pub bytes: u64,
    /// Plain libp2p frames.
    pub libp2p_mb_s: f64,
    /// Raw TCP.
    pub tcp_mb_s: f64,
}

/// Measures both references for `bytes` of payload.
pub fn measure(bytes: u64) -> Result<Throughput> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let libp2p_mb_s = runtime.block_on(libp2p_copy(bytes))?;
    let tcp_mb_s = tcp_copy(bytes)?;
    Ok(Throughput {
        bytes,
        libp2p_mb_s,
        tcp_mb_s,
    })
}

fn mb_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds.max(1e-9) / 1e6
}

async fn libp2p_copy(total: u64) -> Result<f64> {
    let make = || -> Result<_> {
        let config = NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            ..NetConfig::default()
        };
        Ok(build_swarm(
            Keypair::generate_ed25519(),
            &config,
            ByteCounters::new(),
        )?)
    };
    let mut server = make()?;
    let mut client = make()?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    client.dial(addr.with(Protocol::P2p(server_id)))?;
    let payload = vec![0x5au8; FRAME];
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            })) = server.select_next_some().await
            {
                let _ = server
                    .behaviour_mut()
                    .blob
                    .send_response(channel, payload.clone().into());
            }
        }
    });
    let mut received = 0u64;
    let mut in_flight = 0usize;
    let mut started: Option<Instant> = None;
    let mut connected = false;
    while received < total {
        while connected && in_flight < PIPELINE {
            client
                .behaviour_mut()
                .blob
                .send_request(&server_id, vec![0]);
            in_flight += 1;
            started.get_or_insert_with(Instant::now);
        }
        match client.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => connected = true,
            SwarmEvent::Behaviour(BehaviourEvent::Blob(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            })) => {
                received += response.bytes.len() as u64;
                in_flight -= 1;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Blob(
                request_response::Event::OutboundFailure { error, .. },
            )) => return Err(anyhow!("reference request failed: {error}")),
            _ => {}
        }
    }
    let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(mb_s(received, seconds))
}

fn tcp_copy(total: u64) -> Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut socket, _) = listener.accept()?;
        let buf = vec![0x5au8; FRAME];
        let mut sent = 0u64;
        while sent < total {
            let n = (total - sent).min(FRAME as u64) as usize;
            socket.write_all(&buf[..n])?;
            sent += n as u64;
        }
        Ok(())
    });
    let mut socket = std::net::TcpStream::connect(addr)?;
    let started = Instant::now();
    let mut buf = vec![0u8; FRAME];
    let mut received = 0u64;
    while received < total {
        let n = socket.read(&mut buf)?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| anyhow!("the TCP sender panicked"))??;
    Ok(mb_s(received, seconds))
}
