//! The bootstrap list: the `peers` key of `HOME/config.toml`, edited by `hedgerow peers add`
//! and `hedgerow peers remove`.
//!
//! Each entry is checked before anything is written (the file is written whole and atomically
//! by [`config_file::set`], comments kept). `serve` reads the list at start: it dials each
//! peer, keeps it connected, and seeds the DHT's routing table with it.

use crate::config_file::{self, ConfigError};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use std::path::Path;

/// Why the bootstrap list could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum PeersFileError {
    /// The text is not a multiaddress a node can dial.
    #[error("`{text}` is not a peer address such as /ip4/203.0.113.5/tcp/4717/p2p/12D3KooW...; copy the line `hedgerow serve` prints on that peer (`listening on ...`)")]
    BadAddress {
        /// The text given.
        text: String,
    },
    /// `peers remove` of an address that is not in the list.
    #[error("`{addr}` is not in the bootstrap list of {}; `hedgerow peers` shows the list", file.display())]
    NotListed {
        /// The address given.
        addr: String,
        /// The settings file.
        file: std::path::PathBuf,
    },
    /// The settings file could not be read or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A dialable address from `text`: a multiaddress with an IP or DNS name and a TCP or UDP port
/// (and, usually, `/p2p/` and the peer's id).
pub fn parse_peer(text: &str) -> Result<Multiaddr, PeersFileError> {
    let bad = || PeersFileError::BadAddress {
        text: text.to_string(),
    };
    let addr: Multiaddr = text.trim().parse().map_err(|_| bad())?;
    let host = addr.iter().any(|p| {
        matches!(
            p,
            Protocol::Ip4(_)
                | Protocol::Ip6(_)
                | Protocol::Dns(_)
                | Protocol::Dns4(_)
                | Protocol::Dns6(_)
        )
    });
    let port = addr
        .iter()
        .any(|p| matches!(p, Protocol::Tcp(_) | Protocol::Udp(_)));
    if !host || !port {
        return Err(bad());
    }
    Ok(addr)
}

/// The bootstrap list in the home's settings file (not the environment).
pub fn list(root: &Path) -> Result<Vec<String>, PeersFileError> {
    Ok(config_file::read_file(root)?.peers)
}

/// Adds `text` to the bootstrap list; false when it was there already (nothing written).
pub fn add(root: &Path, text: &str) -> Result<bool, PeersFileError> {
    let addr = parse_peer(text)?.to_string();
    let mut peers = list(root)?;
    if peers.contains(&addr) {
        return Ok(false);
    }
    peers.push(addr);
    write(root, &peers)?;
    Ok(true)
}

/// Removes `text` from the bootstrap list.
pub fn remove(root: &Path, text: &str) -> Result<(), PeersFileError> {
    let addr = parse_peer(text)?.to_string();
    let mut peers = list(root)?;
    let before = peers.len();
    peers.retain(|p| p.parse::<Multiaddr>().map(|m| m.to_string()).ok().as_ref() != Some(&addr));
    if peers.len() == before {
        return Err(PeersFileError::NotListed {
            addr,
            file: root.join(config_file::TOML_FILE),
        });
    }
    write(root, &peers)
}

fn write(root: &Path, peers: &[String]) -> Result<(), PeersFileError> {
    let value = toml_edit::Value::Array(peers.iter().map(String::as_str).collect());
    config_file::set(root, "peers", &value.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "/ip4/127.0.0.1/tcp/4717/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE";

    #[test]
    fn add_and_remove_round_trip_and_keep_other_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        config_file::set(dir.path(), "sync_interval", "5").expect("set");
        assert!(add(dir.path(), A).expect("add"));
        assert!(!add(dir.path(), A).expect("again"), "listed once");
        assert!(add(dir.path(), "/ip4/192.0.2.7/udp/4717/quic-v1").expect("add"));
        assert_eq!(list(dir.path()).expect("list").len(), 2);
        remove(dir.path(), A).expect("remove");
        assert_eq!(
            list(dir.path()).expect("list"),
            ["/ip4/192.0.2.7/udp/4717/quic-v1"]
        );
        let config = config_file::read_file(dir.path()).expect("read");
        assert_eq!(config.sync_interval, Some(5));
        assert!(matches!(
            remove(dir.path(), A),
            Err(PeersFileError::NotListed { .. })
        ));
    }

    #[test]
    fn a_bad_address_is_named_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        for text in [
            "203.0.113.5:4717",
            "/ip4/203.0.113.5",
            "/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE",
        ] {
            let error = add(dir.path(), text).expect_err(text);
            assert!(error.to_string().contains(text), "{error}");
        }
        assert!(!dir.path().join(config_file::TOML_FILE).exists());
    }
}
