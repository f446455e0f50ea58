//! Hedgerow's protocol: the pure data model of a design commons.
//!
//! Identities, signed change envelopes, genesis records, document kinds with
//! their schemas, licences, and the wire messages nodes exchange. Nothing in
//! this crate does I/O: every function takes its inputs (time, randomness,
//! bytes) as arguments, so the node, the tests and the benchmarks can all
//! drive it deterministically.

pub mod licence;
pub mod schema;
