//! Hedgerow's protocol: the pure data model of a design commons.
//!
//! Identities, signed change envelopes, genesis records, document kinds with
//! their schemas, licences, one document's replica as a state machine, and the
//! wire messages nodes exchange. Nothing in this crate does I/O: every function
//! takes its inputs (time, randomness, bytes) as arguments, so the node, the
//! tests and the benchmarks can all drive it deterministically.

pub mod attachment;
pub mod automerge_screen;
pub mod blob_transfer;
pub mod bundle_file;
pub mod bytes;
mod change_columns;
pub mod charter;
mod charter_gate;
pub mod compact;
pub mod coverage;
pub mod discovery;
pub mod encoding;
pub mod envelope;
pub mod external_sign;
pub mod genesis;
mod history_rules;
pub use history_rules::changes_decoded;
pub mod identity;
pub mod interop;
pub mod licence;
pub mod private;
pub mod replica;
pub mod schema;
pub mod sync;
pub mod sync_compact;
pub mod sync_sketch;

pub use automerge;
pub use envelope::{actor_for, actor_for_install, ChangeEnvelope, ChangeProof, EnvelopeError};
pub use genesis::{CommonsGenesis, CommonsId, DocGenesis, DocId, ForkOrigin, Signed};
pub use identity::{AuthorKey, DeviceKey, InstallTag, Signature};
pub use replica::{Accepted, ChangeRecord, DocReplica, IngestOutcome, Rejection};
