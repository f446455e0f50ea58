//! File modes the README promises, asserted on real files: the home is 0700, the device key
//! (and the network key, where a home has one) 0600, and the control socket 0600 while
//! `serve` runs, so no other local user can read a key or drive the node.

#![cfg(unix)]

use hedgerow_tests::net::ServeNode;
use hedgerow_tests::TestHome;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_mode(path: &Path, expected: u32) {
    let got = mode(path);
    assert_eq!(
        got,
        expected,
        "{} has mode {got:o}, expected {expected:o}",
        path.display()
    );
}

fn assert_key_modes(home: &Path) {
    assert_mode(home, 0o700);
    assert_mode(&home.join("device.key"), 0o600);
    // Another key file may be added beside the device key; when it exists it is as private.
    let network_key = home.join("network.key");
    if network_key.exists() {
        assert_mode(&network_key, 0o600);
    }
}

#[test]
fn home_keys_and_control_socket_are_private() {
    let home = TestHome::new();
    // `init` creates the directory itself, so its mode comes from Hedgerow, not the test.
    let root = home.path().join("home");
    let out = std::process::Command::new(hedgerow_tests::hedgerow_bin())
        .arg("--home")
        .arg(&root)
        .args(["init", "--name", "Ada"])
        .env_remove("HEDGEROW_HOME")
        .output()
        .expect("run hedgerow init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_key_modes(&root);

    let mut node = ServeNode::start(TestHome::init("Bea"), &[]);
    let socket = node.path().join("control.sock");
    assert!(socket.exists(), "serve runs without a control socket");
    assert_mode(&socket, 0o600);
    assert_key_modes(node.path());
    node.stop();
}
