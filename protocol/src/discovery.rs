//! Finding who holds a commons: the key a node announces in the DHT for each commons it holds.
//!
//! The key is a hash of the commons id, never the id itself, so the DHT's nodes (which see
//! every key they store) learn no commons id they did not already know; anyone who knows the
//! id can compute the key and look its holders up. Private commons are never announced: the
//! node decides that (see `node/src/serve/service/discovery.rs`), not this function.

use crate::encoding::domain_hash;
use crate::CommonsId;

/// Domain of the provider key: a hash function of its own, so the key equals no other hash
/// of the id (the private topic, the record id).
pub const DOMAIN_PROVIDER_KEY: &str = "hedgerow 2026-11 commons provider key v1";

/// The Kademlia provider key of `commons`:
/// `BLAKE3-derive-key("hedgerow 2026-11 commons provider key v1", commons id)`.
pub fn provider_key(commons: &CommonsId) -> [u8; 32] {
    domain_hash(DOMAIN_PROVIDER_KEY, commons.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_a_hash_of_the_id_and_names_no_other() {
        let a = CommonsId([0x11; 32]);
        let b = CommonsId([0x12; 32]);
        assert_eq!(provider_key(&a), provider_key(&a));
        assert_ne!(provider_key(&a), provider_key(&b));
        assert_ne!(provider_key(&a), *a.as_bytes());
        assert_ne!(provider_key(&a), crate::private::private_topic_id(&a));
        // Pinned: nodes of every release must compute the same key.
        assert_eq!(
            hex::encode(provider_key(&CommonsId([0; 32]))),
            "f79cef17b63d3de9a739c6ce2e23845ccefc266aa900e02350eae2bbf8d2d815"
        );
    }
}
