//! `hedgerow status` as typed data; the control socket and the CLI serialise it (the keys are
//! the README's table, checked by `tests/tests/json_shapes.rs`).

use super::stats::Counters;
use serde::{Deserialize, Serialize};

/// What a running node reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's network peer id.
    pub peer_id: String,
    /// This node's author key.
    pub author: String,
    /// Addresses it listens on.
    pub listen: Vec<String>,
    /// Peers connected now.
    pub connected: Vec<ConnectedPeer>,
    /// Commons held.
    pub commons: Vec<HeldCommons>,
    /// Commons joined by id and not arrived yet.
    pub wanted: Vec<String>,
    /// Refused items and frames, all reasons together.
    pub rejected_total: u64,
    /// Stored changes left out of documents.
    pub excluded_changes: usize,
    /// Changes held since start because they build on changes the commons' charter refused.
    #[serde(default)]
    pub held_changes: u64,
    /// Counters since start.
    pub counters: Counters,
    /// Peers banned now.
    pub banned_peers: usize,
    /// Remote addresses banned now.
    pub banned_addresses: usize,
    /// Pulls waiting for a free slot.
    pub queued_wants: usize,
    /// Entries kept per peer (bounded).
    pub tracked_peer_entries: usize,
    /// Bytes moved since start.
    pub bytes: StatusBytes,
    /// Size of the store on disk.
    pub store_bytes: u64,
    /// Attachment blobs: held, wanted, in flight.
    #[serde(default)]
    pub blobs: crate::blobs::BlobStatus,
    /// Blob transfers of the running node (`/hedgerow/blob/1`).
    #[serde(default)]
    pub blob_transfer: BlobTransferStatus,
    /// `--max-rate` and `--sync-window`: the cap, the window and what waits for it.
    #[serde(default)]
    pub metering: super::MeteringStatus,
    /// Reachability: AutoNAT's verdict, relay reservations, hole punches.
    #[serde(default)]
    pub reach: ReachStatus,
}

/// Reachability in [`NodeStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachStatus {
    /// What AutoNAT says of this node: `unknown`, `public` or `private`.
    pub nat: String,
    /// The address AutoNAT confirmed, when public.
    pub public_address: Option<String>,
    /// Whether this node serves as a relay for others (`serve --relay`).
    pub relay_server: bool,
    /// Slots asked for on hubs' relays.
    pub reservations: Vec<ReservationStatus>,
    /// DCUtR hole punches over relayed connections since start.
    pub hole_punches: HolePunchStatus,
}

/// One relay reservation in [`ReachStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationStatus {
    /// The hub's peer id.
    pub relay: String,
    /// The relayed address others dial this node at (`.../p2p/HUB/p2p-circuit`; add
    /// `/p2p/` and this node's id).
    pub addr: String,
    /// Whether the hub accepted it (else it is asked and not answered yet).
    pub active: bool,
}

/// Hole punch outcomes in [`ReachStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolePunchStatus {
    /// Direct connections made.
    pub succeeded: u64,
    /// Attempts that gave up.
    pub failed: u64,
    /// Why the last failed one failed.
    pub last_failure: Option<String>,
}

/// Blob transfers in [`NodeStatus`]: what is wanted, in flight, and the bytes moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobTransferStatus {
    /// Blobs wanted and not held yet (being fetched or queued).
    pub wanted: usize,
    /// Range requests in flight.
    pub in_flight: usize,
    /// Bytes of wanted blobs still to fetch.
    pub bytes_wanted: u64,
    /// Verified blob bytes received since start.
    pub bytes_received: u64,
    /// Blob bytes (data and proofs) sent since start.
    pub bytes_sent: u64,
    /// Chunk groups (16 KiB) asked for since start, repeats included.
    pub groups_requested: u64,
    /// Responses refused for failing verification.
    pub bad_responses: u64,
    /// Blobs fetched and stored since start.
    pub fetched: u64,
    /// Blob protocol frame bytes (requests and responses) received, as counted on the wire.
    pub frame_bytes_received: u64,
    /// Blob protocol frame bytes sent.
    pub frame_bytes_sent: u64,
    /// Peers' requests answered `Busy` (over their share of this node's serving).
    #[serde(default)]
    pub busy_sent: u64,
    /// `Busy` answers received from peers.
    #[serde(default)]
    pub busy_received: u64,
    /// Our responses answered and not yet sent whole.
    #[serde(default)]
    pub open_responses: usize,
    /// Verified blob bytes received since start, per peer id that sent them.
    #[serde(default)]
    pub received_from: std::collections::BTreeMap<String, u64>,
    /// Blobs not fetched because they would take a commons past its quota, with why.
    #[serde(default)]
    pub over_quota: Vec<OverQuota>,
}

/// A blob refused for a commons' quota, in [`BlobTransferStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverQuota {
    /// The blob's hash (hex).
    pub hash: String,
    /// Why, in one line.
    pub error: String,
}

/// One connected peer in [`NodeStatus`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectedPeer {
    /// Its peer id.
    pub peer: String,
    /// Its address on the connection.
    pub addr: String,
    /// How it is reached: `direct`, `relayed` (through `via`) or `hole-punched`.
    #[serde(default)]
    pub reached: String,
    /// The hub relaying it, when relayed.
    #[serde(default)]
    pub via: Option<String>,
    /// Whether a pull from it runs now.
    pub syncing: bool,
    /// Whether a pull from it was interrupted and keeps its progress.
    pub interrupted: bool,
    /// Whether a pull from it waits for a free slot.
    pub postponed: bool,
    /// The current per-round-trip byte budget for it.
    pub sync_budget: u32,
    /// When the last pull from it ended (unix seconds; RFC 3339 in JSON).
    #[serde(with = "crate::times::unix_opt", default)]
    pub last_sync_at: Option<i64>,
    /// How the last pull from it ended.
    pub last_sync: Option<String>,
}

/// One held commons in [`NodeStatus`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldCommons {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// Byte counts in [`NodeStatus`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusBytes {
    /// Sync frames sent.
    pub sync_sent: u64,
    /// Sync frames received.
    pub sync_received: u64,
    /// Gossip published.
    pub gossip_published: u64,
    /// Gossip received.
    pub gossip_received: u64,
    /// All transport bytes in.
    pub transport_in: u64,
    /// All transport bytes out.
    pub transport_out: u64,
}

/// The answer to a `join` run by a node: the same as the store's own `join`
/// ([`crate::reply::Joined`]), with `asked_peers` filled in for a commons not held yet.
pub type JoinReply = crate::reply::Joined;
