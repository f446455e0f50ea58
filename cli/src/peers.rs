//! `hedgerow peers`: the peers a node knows and how it found each, and `peers add|remove`,
//! which edit the bootstrap list in `HOME/config.toml`.

use crate::output;
use anyhow::Result;
use hedgerow_node::api::NodeRequest;
use hedgerow_node::config_file;
use hedgerow_node::control::{self, ControlError, ControlReply};
use hedgerow_node::home::Home;
use hedgerow_node::peers_file;
use hedgerow_node::replicas::Replicas;
use hedgerow_node::serve::{Found, KnownPeerRow, PeersReply};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// `hedgerow peers` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PeersCommand {
    /// Add a peer to the bootstrap list (HOME/config.toml `peers`); `serve` uses it from its next start.
    Add {
        /// The peer's address, as its `serve` prints it: /ip4/203.0.113.5/tcp/4717/p2p/12D3KooW...
        addr: String,
    },
    /// Remove a peer from the bootstrap list.
    Remove {
        /// The address as listed.
        addr: String,
    },
}

/// `hedgerow peers [add|remove]`.
pub fn run(home: &Path, command: Option<PeersCommand>, json: bool) -> Result<ExitCode> {
    match command {
        Some(PeersCommand::Add { addr }) => {
            Home::open(home)?;
            let added = peers_file::add(home, &addr)?;
            let file = home.join(config_file::TOML_FILE);
            let live = tell_node(home, NodeRequest::PeersAdd { addr: addr.clone() })?;
            match (added, live) {
                (true, true) => eprintln!(
                    "added {} to the bootstrap list in {}; the running node dials it now",
                    addr.trim(),
                    file.display()
                ),
                (true, false) => eprintln!(
                    "added {} to the bootstrap list in {}; serve uses it from its next start",
                    addr.trim(),
                    file.display()
                ),
                (false, _) => eprintln!("{} is in the bootstrap list already", addr.trim()),
            }
        }
        Some(PeersCommand::Remove { addr }) => {
            Home::open(home)?;
            peers_file::remove(home, &addr)?;
            tell_node(home, NodeRequest::PeersRemove { addr: addr.clone() })?;
            eprintln!(
                "removed {} from the bootstrap list; a connection that is up stays until it closes",
                addr.trim()
            );
        }
        None => {
            let reply = list(home)?;
            if json {
                output::json(&serde_json::to_value(&reply)?);
            } else {
                print(&reply);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Tells the running node, if one runs, of a change to the bootstrap list; whether one did.
fn tell_node(home: &Path, request: NodeRequest) -> Result<bool> {
    let socket = hedgerow_node::home::control_socket_path(home);
    if !socket.exists() {
        return Ok(false);
    }
    match control::call(&socket, &request, Duration::from_secs(60)) {
        Ok(ControlReply::Ok(_)) => Ok(true),
        Ok(ControlReply::Error { message, .. }) => Err(anyhow::anyhow!(
            "the bootstrap list is written, but the running node refused the change: {message}; restart it to use the list"
        )),
        Err(ControlError::NotRunning) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The running node's list, or (none running) the bootstrap list and the remembered peers.
fn list(home: &Path) -> Result<PeersReply> {
    let value = crate::route(
        home,
        &NodeRequest::Peers,
        Duration::from_secs(60),
        Ok,
        || {
            let opened = Home::open(home)?;
            let mut reply = PeersReply::default();
            for addr in config_file::load(home)?.peers {
                reply.peers.push(row(&addr, Found::Configured));
            }
            let replicas = Replicas::open(&opened)?;
            for (peer, known) in replicas.store().peers()? {
                reply.peers.push(KnownPeerRow {
                    peer: Some(peer),
                    addrs: known.addrs,
                    found: vec![Found::Remembered],
                    connected: false,
                });
            }
            Ok(serde_json::to_value(reply)?)
        },
    )?;
    Ok(serde_json::from_value::<PeersReply>(value)?)
}

/// A listed address's row: its peer id when it names one.
fn row(addr: &str, found: Found) -> KnownPeerRow {
    let peer = addr
        .rsplit_once("/p2p/")
        .map(|(_, id)| id.to_string())
        .filter(|id| !id.contains('/'));
    KnownPeerRow {
        peer,
        addrs: vec![addr.to_string()],
        found: vec![found],
        connected: false,
    }
}

fn print(reply: &PeersReply) {
    if reply.peers.is_empty() {
        println!("no peers known; add one with `hedgerow peers add /ip4/.../tcp/4717/p2p/...`");
    }
    for peer in &reply.peers {
        let found: Vec<String> = peer
            .found
            .iter()
            .map(|f| match serde_json::to_value(f) {
                Ok(Value::String(s)) => s,
                _ => String::new(),
            })
            .collect();
        println!(
            "{} {}  ({})",
            if peer.connected {
                "connected"
            } else {
                "         "
            },
            output::line(peer.peer.as_deref().unwrap_or("(peer id not known yet)")),
            found.join(", ")
        );
        for addr in &peer.addrs {
            println!("    {}", output::line(addr));
        }
    }
    let dht = &reply.dht;
    for p in &dht.providing {
        let reached = match p.reached {
            Some(n) => format!("{n} peers took the record"),
            None => "announcing".to_string(),
        };
        println!("announcing commons {} in the DHT: {reached}", p.commons);
    }
    for l in &dht.lookups {
        println!(
            "looking up commons {} in the DHT: {} holders found, {} lookups{}",
            l.commons,
            l.holders,
            l.attempts,
            if l.running { ", one running" } else { "" }
        );
    }
    if !dht.records.is_empty() {
        println!(
            "holding DHT records of {} commons for other nodes",
            dht.records.len()
        );
    }
}
