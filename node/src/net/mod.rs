//! libp2p networking: the swarm, its behaviour and the sync wire codec.
//!
//! - [`behaviour`]: the composed [`Behaviour`] (identify, ping, optional mDNS, Kademlia,
//!   gossipsub with application-side validation, the sync request-response protocol, connection
//!   limits).
//! - [`codec`]: length-prefixed opaque frames for `/hedgerow/sync/1`, with hard size limits, and
//!   the [`ByteCounters`] that tests and benchmarks read.
//! - [`reach`]: NAT traversal settings (relay server limits, when UPnP may run) and relayed
//!   addresses.
//! - [`swarm`]: [`NetConfig`], [`build_swarm`] (TCP + noise + yamux, QUIC) and the libp2p identity
//!   derived from the device key.
//! - [`rate_limit`]: `--max-rate`, token buckets pacing every TCP connection's bytes.
//!
//! This module only builds the swarm; the actor that owns it and turns its events into the
//! service's inputs lives in `serve/`.

pub mod behaviour;
pub mod codec;
pub mod rate_limit;
pub mod reach;
pub mod swarm;

pub use behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
pub use codec::{
    ByteCounters, FrameError, ResponseFrame, SyncCodec, LENGTH_PREFIX_BYTES, MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES, SYNC_PROTOCOL, SYNC_PROTOCOL_V2, SYNC_PROTOCOL_V3, SYNC_PROTOCOL_V4,
    SYNC_V2_ONLY_ENV, SYNC_V3_ONLY_ENV,
};
pub use rate_limit::{MaxRate, RateError};
pub use swarm::{build_swarm, keypair_from_ed25519_secret, NetConfig, NetError};

use libp2p::gossipsub;

/// Prefix of every commons topic name; the commons id in hex follows it.
pub const COMMONS_TOPIC_PREFIX: &str = "hedgerow/commons/1/";

/// The gossipsub topic announcing contributions to one commons: `hedgerow/commons/1/<id>`.
pub fn commons_topic(commons_id_hex: &str) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("{COMMONS_TOPIC_PREFIX}{commons_id_hex}"))
}

/// The gossipsub topic of a private commons: `hedgerow/p/` + hex of a hash of its id, so the
/// topic names no commons (see [`hedgerow_protocol::private::private_topic_name`]).
pub fn private_topic(commons: &hedgerow_protocol::CommonsId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(hedgerow_protocol::private::private_topic_name(commons))
}

/// The topic a commons' gossip goes on: the hashed one when it is (or may be) private.
pub fn topic_for(commons: &hedgerow_protocol::CommonsId, private: bool) -> gossipsub::IdentTopic {
    if private {
        private_topic(commons)
    } else {
        commons_topic(&commons.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commons_topic_name() {
        let topic = commons_topic("ab12");
        assert_eq!(topic.to_string(), "hedgerow/commons/1/ab12");
    }

    #[test]
    fn a_private_topic_names_no_commons() {
        let commons = hedgerow_protocol::CommonsId([0x11; 32]);
        let topic = topic_for(&commons, true).to_string();
        assert!(topic.starts_with("hedgerow/p/"), "{topic}");
        assert!(!topic.contains(&commons.to_string()));
        assert!(!topic.contains(&hex::encode(commons.as_bytes())));
        assert_eq!(
            topic_for(&commons, false).to_string(),
            format!("hedgerow/commons/1/{commons}")
        );
    }
}
