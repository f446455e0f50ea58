//! The limits around attachment blobs, on real `hedgerow serve` nodes on loopback (mDNS off):
//! a commons' quota on automatic (hub) and asked-for fetches, a holder's per-peer serving
//! limit (`Busy`) and the requester's back-off to another holder, one blob from two holders at
//! once, and `design attach` refusing a file from its size before reading it.

use hedgerow_tests::net::{converge, wait_until, ServeNode};
use hedgerow_tests::TestHome;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Deterministic bytes that never repeat a group; `seed` makes each blob its own.
fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Where the blob store keeps a blob (`blobs/ab/cdef...`).
fn held_path(home: &Path, hash: &str) -> PathBuf {
    home.join("blobs").join(&hash[..2]).join(&hash[2..])
}

fn partial_path(home: &Path, hash: &str) -> PathBuf {
    home.join("blobs").join("partial").join(hash)
}

/// Puts `data` in a home's blob store (no document refers to it); returns its hash.
fn put_blob(home: &TestHome, data: &[u8]) -> String {
    let hash = blake3::hash(data).to_hex().to_string();
    let path = held_path(home.path(), &hash);
    std::fs::create_dir_all(path.parent().expect("blob dir")).expect("blob dir");
    std::fs::write(&path, data).expect("write blob");
    hash
}

/// One request on a running node's control socket.
fn control(node: &ServeNode, request: Value) -> Value {
    let mut stream = UnixStream::connect(node.path().join("control.sock")).expect("control socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut line = request.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).expect("send");
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).expect("reply");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"))
}

fn fetch(node: &ServeNode, hash: &str, size: usize, wait: bool) -> Value {
    let reply = control(
        node,
        json!({"op": "fetch_blobs", "blobs": [{"hash": hash, "size": size}], "wait": wait}),
    );
    reply
        .get("ok")
        .cloned()
        .unwrap_or_else(|| panic!("fetch_blobs failed: {reply}"))
}

fn transfers(node: &ServeNode) -> Value {
    node.status()["blob_transfer"].clone()
}

fn held(node: &ServeNode) -> u64 {
    node.status()["blobs"]["held"].as_u64().unwrap_or(0)
}

fn write_config(home: &TestHome, config: Value) {
    std::fs::write(home.path().join("config.json"), config.to_string()).expect("config.json");
}

/// A design with one file per `(name, len)`; its id and the files' bytes.
fn design_with_files(
    home: &TestHome,
    title: &str,
    files: &[(&str, usize)],
) -> (String, Vec<Vec<u8>>) {
    let design = hedgerow_tests::id(&home.json(&["design", "new", title]));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut out = Vec::new();
    for (i, (name, len)) in files.iter().enumerate() {
        let data = blob(*len, i as u64 + 1);
        let path = dir.path().join(name);
        std::fs::write(&path, &data).expect("write file");
        home.json(&["design", "attach", &design, path.to_str().expect("utf-8")]);
        out.push(data);
    }
    (design, out)
}

fn hash_of(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// ```text
///   origin (a design with three 200 KB files) <── hub (fetch.role hub, quota 500 KB)
///                                            <── farm (quota 250 KB): fetch, design file
/// ```
/// Neither fetches past its commons' quota: the hub keeps two files and lists the third under
/// `over_quota`; the farm's `fetch` gets one and fails the other in one line; nothing of a
/// refused file is written.
#[test]
fn fetches_stop_at_the_commons_quota_and_write_nothing_past_it() {
    let origin_home = TestHome::init("Ada");
    let commons = hedgerow_tests::id(&origin_home.json(&["commons", "create", "Open Tools"]));
    let (design, files) = design_with_files(
        &origin_home,
        "Roller crimper",
        &[("a.pdf", 200_000), ("b.pdf", 200_000), ("c.pdf", 200_000)],
    );
    let origin = ServeNode::start(origin_home, &[]);

    let hub_home = TestHome::init("Hub");
    hub_home.json(&["commons", "join", &commons]);
    write_config(
        &hub_home,
        json!({"fetch": {"role": "hub"}, "files": {"commons_quota_bytes": 500_000}}),
    );
    let hub = ServeNode::start(hub_home, &[&origin]);
    assert!(
        wait_until(WAIT, || transfers(&hub)["over_quota"]
            .as_array()
            .is_some_and(|l| l.len() == 1)
            && held(&hub) == 2),
        "the hub did not stop at its quota: {}",
        hub.status()
    );
    let status = transfers(&hub);
    let refused = status["over_quota"][0]["hash"]
        .as_str()
        .expect("hash")
        .to_string();
    let error = status["over_quota"][0]["error"].as_str().expect("error");
    assert!(
        error.contains("quota") && error.contains(&commons),
        "{error}"
    );
    assert_eq!(status["wanted"], json!(0), "{status}");
    assert!(!held_path(hub.path(), &refused).exists());
    assert!(!partial_path(hub.path(), &refused).exists());

    let farm_home = TestHome::init("Fay");
    farm_home.json(&["commons", "join", &commons]);
    write_config(
        &farm_home,
        json!({"files": {"commons_quota_bytes": 250_000}}),
    );
    let farm = ServeNode::start(farm_home, &[&origin]);
    converge(&[&origin, &farm], WAIT);
    let out = farm.run(&["fetch", &design, "--json"]);
    assert!(!out.status.success(), "a fetch past the quota must fail");
    let reply: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        reply["fetched"].as_array().map(Vec::len),
        Some(1),
        "{reply}"
    );
    let failed = reply["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 2, "{reply}");
    for entry in failed {
        let hash = entry["hash"].as_str().expect("hash");
        assert!(
            entry["error"].as_str().is_some_and(|e| e.contains("quota")),
            "{entry}"
        );
        assert!(!held_path(farm.path(), hash).exists());
        assert!(!partial_path(farm.path(), hash).exists());
    }
    assert_eq!(held(&farm), 1);
    // `design file` of a refused one says why, in one line.
    let name = ["a.pdf", "b.pdf", "c.pdf"]
        .into_iter()
        .zip(&files)
        .find(|(_, data)| !held_path(farm.path(), &hash_of(data)).exists())
        .map(|(name, _)| name)
        .expect("a refused file");
    let err = farm.fail(&["design", "file", &design, name]);
    assert!(
        err.contains("quota") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(transfers(&farm)["bytes_received"], json!(200_000));
}

/// ```text
///   hub1 (serves each peer 512 KiB a window) ──┐
///                                              ├── farm A (fetches 4 MiB: hub1 says Busy,
///   hub2 (default limits) ─────────────────────┘            hub2 serves the rest)
///   hub1 ── farm B (still served while A hears Busy)
/// ```
#[test]
fn a_peer_over_its_share_hears_busy_and_takes_the_rest_from_another_holder() {
    let big = blob(4 << 20, 7);
    let small = blob(300_000, 8);
    let hub1_home = TestHome::init("Hub one");
    write_config(
        &hub1_home,
        // Under the farm's first four requests (1 MiB, sent at once): hub1 must say Busy
        // whatever the timing (at exactly 1 MiB a faster hub2 could take the rest first).
        json!({"files": {"serve_bytes_per_peer": 1 << 19, "serve_window_secs": 600}}),
    );
    let big_hash = put_blob(&hub1_home, &big);
    let small_hash = put_blob(&hub1_home, &small);
    let hub1 = ServeNode::start(hub1_home, &[]);
    let hub2_home = TestHome::init("Hub two");
    put_blob(&hub2_home, &big);
    let hub2 = ServeNode::start(hub2_home, &[]);

    let farm_a = ServeNode::start(TestHome::init("Farm A"), &[&hub1, &hub2]);
    assert!(farm_a.wait_connected_to(hub1.peer_id(), WAIT));
    assert!(farm_a.wait_connected_to(hub2.peer_id(), WAIT));
    let reply = fetch(&farm_a, &big_hash, big.len(), true);
    assert_eq!(reply["stored"], json!([big_hash]), "{reply}");
    assert!(std::fs::read(held_path(farm_a.path(), &big_hash)).expect("stored") == big);
    let a = transfers(&farm_a);
    assert!(a["busy_received"].as_u64() >= Some(1), "{a}");
    assert_eq!(a["bad_responses"], json!(0));
    let from_hub1 = a["received_from"][hub1.peer_id()].as_u64().unwrap_or(0);
    let from_hub2 = a["received_from"][hub2.peer_id()].as_u64().unwrap_or(0);
    // hub1 serves while under 512 KiB this window: one response (256 KiB) may go past it.
    assert!(from_hub1 <= (1 << 19) + (256 << 10), "{a}");
    assert_eq!(from_hub1 + from_hub2, big.len() as u64, "{a}");
    assert!(transfers(&hub1)["busy_sent"].as_u64() >= Some(1));
    assert_eq!(hub1.status()["banned_peers"], json!(0));
    assert_eq!(
        farm_a.status()["banned_peers"],
        json!(0),
        "Busy is no offence"
    );

    // Another peer is served by hub1 meanwhile; A, over its share, still hears Busy.
    let farm_b = ServeNode::start(TestHome::init("Farm B"), &[&hub1]);
    assert!(farm_b.wait_connected_to(hub1.peer_id(), WAIT));
    let reply = fetch(&farm_b, &small_hash, small.len(), true);
    assert_eq!(reply["stored"], json!([small_hash]), "{reply}");
    assert!(std::fs::read(held_path(farm_b.path(), &small_hash)).expect("stored") == small);
    // A, over its share, asks for the small file: hub1 answers Busy and sends A nothing more.
    // Farm B now holds it too and may serve A (peers learn of each other through hub1).
    let busy_before = transfers(&farm_a)["busy_received"].as_u64().unwrap_or(0);
    fetch(&farm_a, &small_hash, small.len(), false);
    assert!(
        wait_until(WAIT, || transfers(&farm_a)["busy_received"].as_u64()
            > Some(busy_before)
            || held_path(farm_a.path(), &small_hash).exists()),
        "{}",
        transfers(&farm_a)
    );
    let a = transfers(&farm_a);
    assert_eq!(
        a["received_from"][hub1.peer_id()].as_u64().unwrap_or(0),
        from_hub1,
        "hub1 served A past its share: {a}"
    );
}

/// ```text
///   hub1 (holds a 5 MB blob) ──┐
///                              ├── farm: the blob arrives in ranges from both, verified
///   hub2 (holds it too) ───────┘
/// ```
#[test]
fn a_blob_held_by_two_hubs_comes_from_both_and_arrives_whole() {
    let data = blob(5 * 1000 * 1000 + 17, 3);
    let hub1_home = TestHome::init("Hub one");
    let hash = put_blob(&hub1_home, &data);
    let hub1 = ServeNode::start(hub1_home, &[]);
    let hub2_home = TestHome::init("Hub two");
    put_blob(&hub2_home, &data);
    let hub2 = ServeNode::start(hub2_home, &[]);
    let farm = ServeNode::start(TestHome::init("Farm"), &[&hub1, &hub2]);
    assert!(farm.wait_connected_to(hub1.peer_id(), WAIT));
    assert!(farm.wait_connected_to(hub2.peer_id(), WAIT));

    let reply = fetch(&farm, &hash, data.len(), true);
    assert_eq!(reply["stored"], json!([hash]), "{reply}");
    assert!(std::fs::read(held_path(farm.path(), &hash)).expect("stored") == data);
    let status = transfers(&farm);
    let size = data.len() as u64;
    assert_eq!(status["bytes_received"], json!(size));
    assert_eq!(status["bad_responses"], json!(0));
    let from = |node: &ServeNode| {
        status["received_from"][node.peer_id()]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(from(&hub1) > 0 && from(&hub2) > 0, "{status}");
    assert_eq!(from(&hub1) + from(&hub2), size, "{status}");
    // Each hub says it sent what the farm verified of it (proofs beside the data).
    for hub in [&hub1, &hub2] {
        let sent = transfers(hub)["bytes_sent"].as_u64().unwrap_or(0);
        assert!(
            sent >= from(hub) && sent <= from(hub) + from(hub) / 100,
            "{sent}"
        );
    }
}

/// Sets a file's access time to long ago (to tell whether it is read later).
fn age_atime(path: &Path) {
    let status = std::process::Command::new("touch")
        .args(["-a", "-d", "2001-01-01"])
        .arg(path)
        .status()
        .expect("touch");
    assert!(status.success());
}

fn atime(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("stat").atime()
}

/// A file over the commons' quota (or the per-file limit) is refused from its size: nothing is
/// read, copied or stored. A file of the same size as one the commons uses is hashed (it may be
/// that file, which costs nothing).
#[test]
fn attach_refuses_a_file_past_the_quota_or_the_limit_before_reading_it() {
    let home = TestHome::init("Ada");
    home.json(&["commons", "create", "Open Tools"]);
    let design = hedgerow_tests::id(&home.json(&["design", "new", "Seeder"]));
    write_config(
        &home,
        json!({"files": {"commons_quota_bytes": 1 << 20, "max_file_bytes": 1u64 << 32}}),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    // Whether reading a file moves its access time here (not on a noatime mount).
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"probe").expect("probe");
    age_atime(&probe);
    let before = atime(&probe);
    std::fs::read(&probe).expect("read probe");
    let atime_works = atime(&probe) != before;

    let big = dir.path().join("big.bin");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(64 << 20).expect("sparse file");
    drop(file);
    age_atime(&big);
    let before = atime(&big);
    let err = home.fail(&["design", "attach", &design, big.to_str().expect("utf-8")]);
    assert!(
        err.contains("quota") && err.trim().lines().count() == 1,
        "{err}"
    );
    if atime_works {
        assert_eq!(
            atime(&big),
            before,
            "the file was read before it was refused"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(home.path().join("blobs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(".tmp") || n.len() == 2)
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(home.json(&["design", "files", &design]), json!([]));

    // Over the per-file limit: refused from its size as well.
    write_config(&home, json!({"files": {"max_file_bytes": 32 << 20}}));
    age_atime(&big);
    let err = home.fail(&["design", "attach", &design, big.to_str().expect("utf-8")]);
    assert!(
        err.contains("limit") && err.trim().lines().count() == 1,
        "{err}"
    );
    if atime_works {
        assert_eq!(atime(&big), before);
    }

    // The same file twice stays within the quota: it is stored once.
    write_config(&home, json!({"files": {"commons_quota_bytes": 1 << 20}}));
    let plan = dir.path().join("plan.pdf");
    std::fs::write(&plan, blob(700_000, 1)).expect("plan");
    home.json(&["design", "attach", &design, plan.to_str().expect("utf-8")]);
    let other = hedgerow_tests::id(&home.json(&["design", "new", "Crimper"]));
    let attached = home.json(&["design", "attach", &other, plan.to_str().expect("utf-8")]);
    assert_eq!(attached["stored"], json!(false), "{attached}");
    // A different file of that size is refused only after hashing shows it is new.
    let twin = dir.path().join("twin.pdf");
    std::fs::write(&twin, blob(700_000, 2)).expect("twin");
    let err = home.fail(&["design", "attach", &other, twin.to_str().expect("utf-8")]);
    assert!(err.contains("quota"), "{err}");
}

/// A private commons' files cannot go on a stick yet (a bundle's blob section is not sealed):
/// `--with-files` is refused in one line and nothing is written; the sealed bundle of its
/// documents is still written without it.
#[test]
fn with_files_is_refused_for_a_private_commons_that_has_files() {
    let home = TestHome::init("Alice");
    let commons = hedgerow_tests::id(&home.json(&[
        "commons",
        "create",
        "Seed circle",
        "--stewarded",
        "--private",
    ]));
    design_with_files(&home, "Seed cleaner", &[("sieve.pdf", 10_000)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let stick = dir.path().join("stick.bundle");
    let stick_arg = stick.to_str().expect("utf-8");
    let err = home.fail(&["bundle", "export", stick_arg, "--with-files"]);
    assert!(
        err.contains("private") && err.contains(&commons) && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!stick.exists(), "a refused export wrote a bundle");
    let leftovers = std::fs::read_dir(dir.path()).expect("dir").count();
    assert_eq!(leftovers, 0, "a temporary file was left beside the bundle");
    home.json(&["bundle", "export", stick_arg]);
    assert!(stick.exists());
}
