//! A Hedgerow node: the replica store on sled, the sync engine and libp2p networking.
//!
//! - [`home`]: the node's directory, device key and profile.
//! - [`devices`]: the person this device writes for, and the person's devices.
//! - [`key_backup`]: passphrase-sealed person key backups and device link codes.
//! - [`store`]: the sled store and its trees.
//! - [`durable`]: the fsyncs sled leaves out.
//! - [`journal`]: signed changes kept beside the store, for `hedgerow repair`.
//! - [`replicas`]: documents over the store; every mutation goes through it.
//! - [`provenance`]: history, blame, forks, lineage, releases.
//! - [`resolve`]: ids, prefixes and names as people type them.
//! - [`profile`]: changing this person's name, location and bio after `init`.
//! - [`plan`]: what a printable plan of a design shows.
//! - [`api`] and [`reply`]: the command API, its requests and typed replies.
//! - [`verify`]: re-checking everything stored.
//! - [`repair`]: rebuilding a damaged store from the journal.
//! - [`local_blocks`]: this node's own block list, hidden and purged documents.
//! - [`blobs`]: attachment bytes named by hash, outside sled, and the files documents carry.
//! - [`net`]: libp2p transport and behaviour.
//! - [`times`]: RFC 3339 times in replies.
//! - [`web`]: the web page `serve --web` serves.

pub mod api;
pub mod blobs;
pub mod bundle;
pub mod communities;
pub mod config_file;
pub mod conflicts;
pub mod control;
pub mod devices;
pub mod durable;
pub mod error_kind;
pub mod external_sign;
pub mod fetch_policy;
pub mod home;
pub mod interop;
pub mod journal;
pub mod key_backup;
pub mod local_blocks;
pub mod net;
pub mod peers_file;
pub mod plan;
pub mod private;
pub mod profile;
pub mod provenance;
pub mod repair;
pub mod replicas;
pub mod reply;
pub mod resolve;
pub mod serve;
pub mod store;
pub mod sync_source;
pub mod times;
pub mod verify;
pub mod web;

pub use home::{Home, HomeError, LocalProfile};
pub use replicas::{NodeError, Replicas};
