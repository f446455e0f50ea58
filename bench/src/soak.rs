//! `hedgerow-bench soak`: many hostile peers against three honest nodes for minutes.
//!
//! ```text
//!   hostile peers (libp2p in this process, fresh ids after every ban) ==> A <== B <== C
//! ```
//!
//! A holds a commons; B and C replicate it through A. For the whole run the hostile peers
//! flood A and B with garbage gossip, validly signed junk (documents without changes, changes
//! whose history never comes, a stream of new documents from fresh authors), over-long fetches
//! and, when pulled from, fake inventories of hundreds of thousands of documents; a peer that
//! is banned comes back under a new peer id. Meanwhile A's author edits a design every few
//! seconds and the run measures how long each edit takes to show on C, and samples every
//! honest node's resident memory. Not part of CI (it runs for minutes); see the README.
//!
//! All peers share 127.0.0.1, so the honest nodes run with per-address limits out of reach
//! (`node --soak`): the run exercises what per-peer limits and bounded state must hold on
//! their own, the harder case.

use crate::node_proc::{proc_usage, NodeProc};
use anyhow::{anyhow, Result};
use futures::StreamExt;
use hedgerow_node::api::Request;
use hedgerow_node::net::{
    build_swarm, commons_topic, keypair_from_ed25519_secret, Behaviour, BehaviourEvent,
    ByteCounters, NetConfig,
};
use hedgerow_node::{Home, LocalProfile, Replicas};
use hedgerow_protocol::automerge::Automerge;
use hedgerow_protocol::schema::{init_document, DocKind, Edit, NewDocument};
use hedgerow_protocol::sync::{Gossip, LiveChange, SyncRequest, SyncResponse, Want};
use hedgerow_protocol::{actor_for, ChangeEnvelope, CommonsId, DeviceKey, DocGenesis};
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, request_response, Multiaddr, Swarm};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one soak run is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct SoakSettings {
    /// Hostile peers running at once.
    pub hostile: usize,
    /// How long the hostile peers run.
    pub duration: Duration,
    /// Time between two honest edits.
    pub edit_every: Duration,
}

/// What a soak run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SoakReport {
    /// Honest edits made during the run.
    pub edits: usize,
    /// Edits that reached C before the next one was made.
    pub converged: usize,
    /// Median time from an edit on A to its showing on C, milliseconds.
    pub median_converge_ms: u64,
    /// Slowest such time, milliseconds.
    pub max_converge_ms: u64,
    /// Peak resident memory of A, B and C, bytes.
    pub peak_rss: [u64; 3],
    /// Resident memory peaks of A sampled each minute, bytes (flat when state is bounded).
    pub rss_by_minute: Vec<u64>,
    /// Hostile connections made (one peer id each).
    pub hostile_connections: u64,
    /// Hostile messages and requests sent.
    pub hostile_messages: u64,
    /// A's status at the end (counters, bans, queued wants, tracked entries).
    pub status_a: Value,
}

/// Runs the soak in `root` (three homes and logs).
pub fn run(root: &Path, settings: SoakSettings) -> Result<SoakReport> {
    let (a_home, b_home, c_home) = (root.join("a"), root.join("b"), root.join("c"));
    let (commons, design) = seed(&a_home)?;
    for home in [&b_home, &c_home] {
        let opened = Home::init(home, &profile("Honest peer"))?;
        let replicas = Replicas::open(&opened)?;
        replicas.store().want_commons(&commons)?;
        replicas.commit()?;
    }
    let a = NodeProc::start_with("A", &a_home, &["--soak"])?;
    let b = NodeProc::start_with("B", &b_home, &["--soak"])?;
    let c = NodeProc::start_with("C", &c_home, &["--soak"])?;
    b.sync_with(&a)?;
    c.sync_with(&b)?;
    eprintln!("[soak] A {} B {} C {}", a.addr, b.addr, c.addr);

    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(AtomicU64::new(0));
    let messages = Arc::new(AtomicU64::new(0));
    let targets: Vec<Multiaddr> = [&a.addr, &b.addr]
        .iter()
        .map(|a| a.parse().map_err(|e| anyhow!("{a}: {e}")))
        .collect::<Result<_>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut tasks = Vec::new();
    for n in 0..settings.hostile {
        let target = targets[n % targets.len()].clone();
        let (stop, connections, messages) = (stop.clone(), connections.clone(), messages.clone());
        tasks.push(runtime.spawn(async move {
            hostile(n as u64, target, commons, stop, connections, messages).await
        }));
    }

    let started = Instant::now();
    let mut report = SoakReport::default();
    let mut times = Vec::new();
    let mut minute_peak = 0;
    let mut next_minute = started + Duration::from_secs(60);
    while started.elapsed() < settings.duration {
        report.edits += 1;
        let value = format!("Soak edit {}", report.edits);
        a.call(&Request::DocEdit {
            id: design.clone(),
            kind: DocKind::Design,
            edits: vec![Edit::Set {
                field: "summary".into(),
                value: value.clone(),
            }],
        })?;
        let edited = Instant::now();
        let deadline = edited + settings.edit_every;
        let mut seen = false;
        while Instant::now() < deadline {
            if !seen && summary(&c, &design)? == value {
                seen = true;
                report.converged += 1;
                times.push(edited.elapsed().as_millis() as u64);
            }
            for (i, node) in [&a, &b, &c].iter().enumerate() {
                let (_, rss) = proc_usage(node.pid())?;
                report.peak_rss[i] = report.peak_rss[i].max(rss);
                if i == 0 {
                    minute_peak = minute_peak.max(rss);
                }
            }
            if Instant::now() >= next_minute {
                report.rss_by_minute.push(minute_peak);
                next_minute += Duration::from_secs(60);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "[soak] {:>4}s edit {} {}; A peak {} MB",
            started.elapsed().as_secs(),
            report.edits,
            if seen { "converged" } else { "NOT converged" },
            report.peak_rss[0] >> 20
        );
    }
    report.rss_by_minute.push(minute_peak);
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for task in tasks {
            let _ = task.await;
        }
    });
    times.sort_unstable();
    report.median_converge_ms = times.get(times.len() / 2).copied().unwrap_or(0);
    report.max_converge_ms = times.last().copied().unwrap_or(0);
    report.hostile_connections = connections.load(Ordering::SeqCst);
    report.hostile_messages = messages.load(Ordering::SeqCst);
    report.status_a = a.status()?;
    for node in [a, b, c] {
        node.stop()?;
    }
    Ok(report)
}

fn profile(name: &str) -> LocalProfile {
    LocalProfile {
        name: name.into(),
        ..LocalProfile::default()
    }
}

/// A's home: a commons with a few designs; returns the commons and one design's id.
fn seed(home: &Path) -> Result<(CommonsId, String)> {
    let opened = Home::init(home, &profile("Soak founder"))?;
    let mut replicas = Replicas::open(&opened)?;
    let commons = replicas.create_commons("Soak tools", "")?;
    let mut first = None;
    for i in 0..20 {
        let new = NewDocument::new(DocKind::Design, format!("Design {i}"));
        let id = replicas.create_doc(commons, &new, &[])?;
        first.get_or_insert(id);
    }
    replicas.commit()?;
    let design = first.ok_or_else(|| anyhow!("no design made"))?;
    Ok((commons, design.to_string()))
}

/// The summary of `design` as `node` shows it ("" while it does not hold it).
fn summary(node: &NodeProc, design: &str) -> Result<String> {
    let shown = node.call(&Request::DocShow {
        id: design.into(),
        kind: DocKind::Design,
        version: None,
    });
    Ok(shown
        .ok()
        .and_then(|v| v["summary"].as_str().map(str::to_string))
        .unwrap_or_default())
}

/// One hostile peer: connects to `target`, misbehaves until disconnected, then comes back
/// under a fresh peer id, until `stop`.
async fn hostile(
    seed: u64,
    target: Multiaddr,
    commons: CommonsId,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    messages: Arc<AtomicU64>,
) {
    let topic = commons_topic(&commons.to_string());
    let mut generation = 0u64;
    while !stop.load(Ordering::SeqCst) {
        generation += 1;
        let mut secret = [0u8; 32];
        secret[..8].copy_from_slice(&seed.to_be_bytes());
        secret[8..16].copy_from_slice(&generation.to_be_bytes());
        let key = DeviceKey::from_secret(secret);
        let Ok(mut swarm) = build_swarm(
            keypair_from_ed25519_secret(secret),
            &NetConfig::default(),
            ByteCounters::new(),
        ) else {
            return;
        };
        if swarm.behaviour_mut().gossipsub.subscribe(&topic).is_err()
            || swarm.dial(target.clone()).is_err()
        {
            return;
        }
        connections.fetch_add(1, Ordering::SeqCst);
        let session = Session {
            key,
            commons,
            topic: topic.clone(),
            nonce: 0,
        };
        session.run(&mut swarm, &stop, &messages).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One hostile connection's state.
struct Session {
    key: DeviceKey,
    commons: CommonsId,
    topic: gossipsub::IdentTopic,
    nonce: u64,
}

impl Session {
    /// Misbehaves on one connection until it closes (or 60 s pass, or `stop`).
    async fn run(mut self, swarm: &mut Swarm<Behaviour>, stop: &AtomicBool, sent: &AtomicU64) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut peer = None;
        let until = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => peer = Some(peer_id),
                    SwarmEvent::ConnectionClosed { num_established: 0, .. } => return,
                    SwarmEvent::OutgoingConnectionError { .. } => return,
                    SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. }, ..
                    })) => {
                        // Pulled from: a fake inventory of 400,000 documents.
                        let docs = (0..400_000u64).map(|n| ((n ^ self.nonce).to_be_bytes(), [7; 8])).collect();
                        // The node holds the commons, so it does not look at the genesis.
                        let answer = SyncResponse::Inventory { genesis: self.fake_commons(), docs };
                        let _ = swarm.behaviour_mut().sync.send_response(channel, answer.to_bytes().into());
                    }
                    _ => {}
                },
                _ = tick.tick() => {
                    let Some(peer) = peer else { continue };
                    for message in self.junk() {
                        if swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), message).is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Pulls that make the honest node announce and be pulled from, and an
                    // over-long fetch.
                    let wants = (0..300u64).map(|n| Want { prefix: n.to_be_bytes(), have_genesis: false, clock: Vec::new() }).collect();
                    for request in [
                        SyncRequest::Hello { commons: self.commons, digest: [self.nonce as u8; 32] },
                        SyncRequest::Fetch { commons: self.commons, wants, budget: u32::MAX },
                    ] {
                        swarm.behaviour_mut().sync.send_request(&peer, request.to_bytes());
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    let announce = Gossip::Announce { commons: self.commons, digest: [(self.nonce % 251) as u8; 32] };
                    let _ = swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), announce.to_bytes());
                }
            }
        }
    }

    /// A commons genesis of the hostile peer's own, for its fake inventories.
    fn fake_commons(&self) -> hedgerow_protocol::Signed<hedgerow_protocol::CommonsGenesis> {
        hedgerow_protocol::CommonsGenesis {
            name: "fake".into(),
            description: String::new(),
            creator: self.key.author(),
            created_at: 0,
            nonce: [0; 16],
        }
        .sign(&self.key)
    }

    /// One round of junk gossip: garbage, a document genesis with a change whose history
    /// never comes, and a new valid document (a flood of valid content from one author).
    fn junk(&mut self) -> Vec<Vec<u8>> {
        self.nonce += 1;
        let mut out = vec![format!("garbage {}", self.nonce).into_bytes()];
        let genesis = DocGenesis {
            commons: self.commons,
            kind: DocKind::Design,
            creator: self.key.author(),
            created_at: 1_800_000_000,
            nonce: nonce16(self.nonce),
            fork: None,
        }
        .sign(&self.key);
        let id = genesis.body.id();
        let mut doc = Automerge::new().with_actor(actor_for(&self.key.author(), &id));
        let mut tx = doc.transaction();
        if init_document(&mut tx, &NewDocument::new(DocKind::Design, "Junk")).is_err() {
            return out;
        }
        tx.commit();
        let mut tx = doc.transaction();
        let _ = automerge::transaction::Transactable::put(
            &mut tx,
            automerge::ROOT,
            "summary",
            format!("junk {}", self.nonce),
        );
        tx.commit();
        let changes = doc.get_changes(&[]);
        let (Some(first), Some(second)) = (changes.first(), changes.get(1)) else {
            return out;
        };
        let envelope = |change: &automerge::Change| {
            ChangeEnvelope::sign(&self.key, self.commons, id, change.raw_bytes().to_vec())
        };
        // Its history (the first change) never comes.
        out.push(
            Gossip::Change(Box::new(LiveChange {
                genesis: Some(genesis.clone()),
                envelope: envelope(second),
            }))
            .to_bytes(),
        );
        // A valid new document: a flood from one author.
        out.push(
            Gossip::Change(Box::new(LiveChange {
                genesis: Some(genesis),
                envelope: envelope(first),
            }))
            .to_bytes(),
        );
        out
    }
}

fn nonce16(n: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&n.to_be_bytes());
    out[8..].copy_from_slice(&(n ^ 0x5a5a).to_be_bytes());
    out
}

/// Prints a soak report as markdown.
pub fn markdown(settings: &SoakSettings, report: &SoakReport) -> String {
    let mb = |b: u64| format!("{:.0} MB", b as f64 / 1e6);
    let counters = &report.status_a["counters"];
    format!(
        "Soak: {} hostile peers for {} s ({} connections under fresh peer ids, {} messages)\n\n\
         | measure | value |\n|---|---|\n\
         | honest edits converged on C | {} of {} |\n\
         | edit to C, median / slowest | {} ms / {} ms |\n\
         | peak memory A / B / C | {} / {} / {} |\n\
         | A's peak memory by minute | {} |\n\
         | A: refused items / peers banned | {} / {} |\n\
         | A: most wants queued | {} |\n\
         | A: per-peer entries at the end | {} |\n",
        settings.hostile,
        settings.duration.as_secs(),
        report.hostile_connections,
        report.hostile_messages,
        report.converged,
        report.edits,
        report.median_converge_ms,
        report.max_converge_ms,
        mb(report.peak_rss[0]),
        mb(report.peak_rss[1]),
        mb(report.peak_rss[2]),
        report
            .rss_by_minute
            .iter()
            .map(|b| mb(*b))
            .collect::<Vec<_>>()
            .join(", "),
        report.status_a["rejected_total"],
        counters["peers_banned"],
        counters["peak_queued_wants"],
        report.status_a["tracked_peer_entries"],
    )
}
