//! A Hedgerow node: the replica store on sled, the sync engine and libp2p networking.

pub mod net;
