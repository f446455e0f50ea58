//! The store reopens after a process was killed at the worst moment, and refuses a second opener.
//!
//! sled writes a snapshot on every close to `snap.<lsn>.generating`, then renames
//! it; a `kill -9` in between used to leave a store sled refused to open.

use hedgerow_node::store::{Store, StoreError};
use hedgerow_protocol::{CommonsGenesis, DeviceKey};

fn commons(n: u8) -> hedgerow_protocol::Signed<CommonsGenesis> {
    let key = DeviceKey::from_secret([n; 32]);
    CommonsGenesis {
        name: format!("commons {n}"),
        description: String::new(),
        creator: key.author(),
        created_at: 1_700_000_000,
        nonce: [n; 16],
    }
    .sign(&key)
}

#[test]
fn half_written_snapshots_of_a_killed_process_are_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store");
    let genesis = commons(1);
    {
        let store = Store::open(&path).expect("new store");
        store.put_commons(&genesis).expect("write");
        store.flush().expect("flush");
    }
    // What a process killed while writing its closing snapshot leaves: a later, partial file.
    for (name, bytes) in [
        ("snap.7FFFFFFFFFFFFFFF.generating", &b""[..]),
        (
            "snap.7FFFFFFFFFFFFFFE.generating",
            &b"partial snapshot bytes"[..],
        ),
    ] {
        std::fs::write(path.join(name), bytes).expect("partial snapshot");
        let store = Store::open(&path).expect("store opens despite a partial snapshot");
        assert_eq!(
            store.commons(&genesis.body.id()).expect("read"),
            Some(genesis.clone())
        );
        assert!(!path.join(name).exists(), "the partial file is removed");
    }
}

#[test]
fn a_second_opener_is_refused_while_the_first_holds_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store");
    let first = Store::open(&path).expect("first opener");
    // A partial snapshot must not be touched while someone else may be writing it.
    let generating = path.join("snap.7FFFFFFFFFFFFFFF.generating");
    std::fs::write(&generating, b"being written").expect("write");
    match Store::open(&path) {
        Err(StoreError::Locked { path: locked }) => assert_eq!(locked, path),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("two openers of one store"),
    }
    assert!(generating.exists(), "a locked store's files are left alone");
    std::fs::remove_file(&generating).expect("clean up");
    drop(first);
    Store::open(&path).expect("opens once the first is closed");
}

#[test]
fn a_store_whose_sled_lock_is_held_elsewhere_is_refused_as_locked() {
    use std::os::unix::io::AsRawFd;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store");
    drop(Store::open(&path).expect("create the store"));
    // A process holding sled's own lock but not hedgerow.lock (a sled tool, or an older
    // release): only sled's lock tells that the store is in use.
    let sled_file = std::fs::File::open(path.join("db")).expect("sled's db file");
    // SAFETY: flock on a descriptor this test owns and keeps open until the end.
    let held = unsafe { libc::flock(sled_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(held, 0, "the test takes sled's lock");
    match Store::open(&path) {
        Err(StoreError::Locked { path: locked }) => assert_eq!(locked, path),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("opened a store whose sled lock is held"),
    }
    drop(sled_file);
    Store::open(&path).expect("opens once the lock is released");
}
