//! Metered links and sync windows (issue 12): `serve --max-rate` and `serve --sync-window`.
//!
//! ```text
//!   namespace 0                        namespace 1
//!   hedgerow serve (A) ◀── veth ──▶ hedgerow serve (B)
//!   10.47.17.1                         10.47.17.2
//! ```
//!
//! The rate tests run two real nodes in network namespaces the test creates, sync a commons of
//! about 300 KB across the veth pair and sample the kernel's byte counters of the pair: what
//! the capped side sent (send cap) or received (receive cap) from the end of the connection's
//! setup to the last byte, divided by that time, must stay within 1.10 times the cap (headers
//! and retransmissions included). Without namespaces they print SKIP and pass
//! unless `HEDGEROW_REQUIRE_NETNS=1`.
//!
//! The window test runs on loopback: it needs no link, only the node's local clock (the nodes
//! run with `TZ=UTC`, so the test computes windows from UTC).

use hedgerow_node::api::{self, Request};
use hedgerow_node::{Home, Replicas};
use hedgerow_protocol::schema::{DocKind, Edit};
use hedgerow_tests::field::Link;
use hedgerow_tests::net::{wait_for, wait_until, Netns, ServeNode, ServeOptions};
use hedgerow_tests::rng::Rng;
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The cap of the rate tests, in bits per second.
const CAP_BITS: u64 = 256_000;

/// Designs in the rate tests' commons (about 3 KB each on the wire).
const RATE_DESIGNS: usize = 100;

/// Most a capped side may move, relative to the cap, over the whole transfer.
const MAX_OVER_CAP: f64 = 1.10;

/// The stretch over which the send cap must hold at its busiest.
const BUSY_WINDOW: Duration = Duration::from_secs(3);

/// Bytes A sends before the documents flow (TCP, noise, yamux, identify, gossip, the listing).
const SETUP_BYTES: u64 = 20 * 1024;

/// Designs in the window test's commons: well over [`hedgerow_node::serve::BULK_DOCS`].
const WINDOW_DESIGNS: usize = 40;

/// Creates a commons with `count` designs in `home` (node not running), each with about 3 KB
/// of text that deflate cannot shrink much. Returns the commons id.
fn generate(home: &TestHome, count: usize, seed: u64) -> String {
    generate_with(
        home,
        count,
        seed,
        Request::CommonsCreate {
            name: "Metered tools".into(),
            description: "Designs for the metered-link tests".into(),
        },
    )
}

/// [`generate`], the commons made by `create`.
fn generate_with(home: &TestHome, count: usize, seed: u64, create: Request) -> String {
    let opened = Home::open(home.path()).expect("open home");
    let mut replicas = Replicas::open(&opened).expect("open store");
    let reply = api::execute(&mut replicas, create).expect("create commons");
    let commons = reply.to_json().expect("reply as JSON")["id"]
        .as_str()
        .expect("commons id")
        .to_string();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ";
    let mut rng = Rng(seed);
    let mut text = |len: usize| -> String {
        (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())] as char)
            .collect()
    };
    for i in 0..count {
        api::execute(
            &mut replicas,
            Request::DocNew {
                commons: Some(commons.clone()),
                kind: DocKind::Design,
                title: format!("Tool {i}"),
                target: None,
                note_kind: None,
                reply_to: None,
                edits: vec![
                    Edit::Set {
                        field: "summary".into(),
                        value: text(200),
                    },
                    Edit::Set {
                        field: "how_it_works".into(),
                        value: text(2_600),
                    },
                ],
            },
        )
        .expect("create design");
    }
    commons
}

/// Designs `home` lists (0 while it holds no commons).
fn design_count(home: &TestHome) -> usize {
    let out = home.run(&["design", "list", "--json"]);
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Serve options inside namespace `i`, mDNS off, with `env`.
fn in_namespace(net: &Netns, i: usize, peers: Vec<String>, env: &[(&str, &str)]) -> ServeOptions {
    ServeOptions {
        peers,
        mdns: false,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..net.serve_options(i)
    }
}

/// Which side of the transfer the cap is on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Capped {
    /// The node that holds the commons (its sending is capped).
    Sender,
    /// The node that joins it (its receiving is capped).
    Receiver,
}

/// Syncs a commons of [`RATE_DESIGNS`] designs from A (namespace 0) to B (namespace 1) with
/// `HEDGEROW_MAX_RATE` on the `capped` side; returns (bytes A sent on the link, seconds, the rate of the busiest stretch of
/// [`BUSY_WINDOW`] in bit/s).
fn capped_transfer(test: &str, capped: Capped) -> Option<(u64, f64, f64)> {
    let net = Netns::pair_or_skip(test)?;
    let link = Link::of(&net);
    let rate = format!("{}kbit", CAP_BITS / 1000);
    let cap: &[(&str, &str)] = &[("HEDGEROW_MAX_RATE", rate.as_str())];
    let (cap_a, cap_b) = match capped {
        Capped::Sender => (cap, &[][..]),
        Capped::Receiver => (&[][..], cap),
    };
    let a_home = TestHome::init("holder");
    let commons = generate(&a_home, RATE_DESIGNS, 12);
    let a = ServeNode::start_with(a_home, in_namespace(&net, 0, Vec::new(), cap_a));
    let b_home = TestHome::init("joiner");
    b_home.json(&["commons", "join", &commons]);

    let sent_before = link.tx_per_end("bytes")[0];
    let b = ServeNode::start_with(b_home, in_namespace(&net, 1, vec![a.multiaddr()], cap_b));
    // A's transmit counter, sampled until B holds every design.
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut checked = Instant::now();
    let arrived = loop {
        samples.push((Instant::now(), link.tx_per_end("bytes")[0] - sent_before));
        if checked.elapsed() >= Duration::from_millis(500) {
            checked = Instant::now();
            if design_count(&b) == RATE_DESIGNS {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let done = Instant::now();
    assert!(
        arrived,
        "B has {} of {RATE_DESIGNS} designs\nA:\n{}\nB:\n{}",
        design_count(&b),
        a.log(),
        b.log()
    );
    // The transfer: from the sample before A's counter passed the connection's setup (its
    // handshakes, identify, the listing) to the first sample at its final value.
    let total = samples.last().map_or(0, |s| s.1);
    let first = samples.iter().rposition(|s| s.1 < SETUP_BYTES).unwrap_or(0);
    let last = samples
        .iter()
        .position(|s| s.1 == total)
        .unwrap_or(samples.len() - 1);
    // A receive cap paces B's reading: the transfer ends when B has read (and stored) it all.
    let end = match capped {
        Capped::Sender => samples[last],
        Capped::Receiver => (done, total),
    };
    let start = samples[first];
    let sent = end.1 - start.1;
    let secs = end.0.duration_since(start.0).as_secs_f64();
    if std::env::var_os("HEDGEROW_RATE_TRACE").is_some() {
        for pair in samples[first..=last].windows(2) {
            eprintln!(
                "{:?} +{}",
                pair[1].0.duration_since(start.0),
                pair[1].1 - pair[0].1
            );
        }
    }
    // The busiest stretch of at least BUSY_WINDOW: the bucket's burst must not show there.
    let mut busiest: f64 = 0.0;
    for (i, from) in samples[first..=last].iter().enumerate() {
        if let Some(to) = samples[first + i..=last]
            .iter()
            .find(|to| to.0.duration_since(from.0) >= BUSY_WINDOW)
        {
            let rate = (to.1 - from.1) as f64 * 8.0 / to.0.duration_since(from.0).as_secs_f64();
            busiest = busiest.max(rate);
        }
    }
    let capped_node = if capped == Capped::Sender { &a } else { &b };
    let status = capped_node.status();
    assert_eq!(status["metering"]["max_rate"], rate.as_str(), "{status}");
    // No QUIC under a cap: every listen address is TCP.
    let listen = status["listen"].as_array().cloned().unwrap_or_default();
    assert!(
        listen
            .iter()
            .all(|l| !l.as_str().unwrap_or("").contains("quic")),
        "{listen:?}"
    );
    Some((sent, secs, busiest))
}

/// Asserts the link rate of a capped transfer and reports it.
fn assert_within_cap(what: &str, sent: u64, secs: f64, busiest: f64) {
    let bits_per_sec = sent as f64 * 8.0 / secs;
    let ratio = bits_per_sec / CAP_BITS as f64;
    eprintln!(
        "{what}: {sent} bytes on the link in {secs:.1} s = {:.0} bit/s, {ratio:.3} of the {} bit/s cap; busiest {BUSY_WINDOW:?}: {:.3} of it",
        bits_per_sec, CAP_BITS, busiest / CAP_BITS as f64
    );
    // The transfer must dwarf the bucket's burst and the connection's setup, or the ratio says
    // nothing about the rate.
    assert!(sent > 200_000, "only {sent} bytes crossed the link");
    assert!(
        ratio <= MAX_OVER_CAP,
        "{what}: {bits_per_sec:.0} bit/s is {ratio:.3} times the cap"
    );
}

/// `--max-rate` on the sending side: what it puts on the link stays within the cap, over the
/// whole transfer and over its busiest three seconds.
#[test]
fn max_rate_caps_what_a_node_sends() {
    let Some((sent, secs, busiest)) = capped_transfer(
        "reach_rate::max_rate_caps_what_a_node_sends",
        Capped::Sender,
    ) else {
        return;
    };
    assert_within_cap("send cap", sent, secs, busiest);
    assert!(
        busiest / CAP_BITS as f64 <= MAX_OVER_CAP,
        "busiest {BUSY_WINDOW:?}: {busiest:.0} bit/s"
    );
}

/// `--max-rate` on the receiving side: a node that reads no faster than the cap makes TCP
/// slow its uncapped peer to it.
#[test]
fn max_rate_caps_what_a_node_receives() {
    let Some((sent, secs, busiest)) = capped_transfer(
        "reach_rate::max_rate_caps_what_a_node_receives",
        Capped::Receiver,
    ) else {
        return;
    };
    assert_within_cap("receive cap", sent, secs, busiest);
}

/// A bad `--max-rate` or `--sync-window` stops `serve` with one line naming the value and the
/// forms it takes; `config set` refuses them the same way and keeps good ones.
#[test]
fn bad_rates_and_windows_are_refused_in_one_line() {
    let home = TestHome::init("metered");
    let err = home.fail(&["serve", "--no-mdns", "--max-rate", "fast"]);
    assert!(
        err.contains("--max-rate `fast` is not a rate")
            && err.contains("32kbit")
            && err.contains("4KB"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = home.fail(&["serve", "--no-mdns", "--sync-window", "1am-5am"]);
    assert!(
        err.contains("--sync-window `1am-5am`") && err.contains("01:00-05:00"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = home.fail(&["config", "set", "max_rate", "10 furlongs"]);
    assert!(err.contains("max_rate") && err.contains("32kbit"), "{err}");
    home.ok(&["config", "set", "max_rate", "4KB"]);
    home.ok(&["config", "set", "sync_window", "22:00-06:00"]);
    let shown = home.ok(&["config", "show"]);
    assert!(
        shown.contains("max_rate") && shown.contains("22:00-06:00"),
        "{shown}"
    );
    let out = home
        .command()
        .args(["serve", "--no-mdns"])
        .env("HEDGEROW_SYNC_WINDOW", "25:00-01:00")
        .output()
        .expect("run serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("HEDGEROW_SYNC_WINDOW") && err.contains("01:00-05:00"),
        "{err}"
    );
}

/// `HH:MM-HH:MM` of UTC, from `from` to `to` minutes after now (wrapping midnight).
fn window_from_now(from: i64, to: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let minute = |offset: i64| {
        let m = ((now / 60 + offset) % 1440 + 1440) % 1440;
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    format!("{}-{}", minute(from), minute(to))
}

/// The sync window defers an initial sync (the commons arrives, its designs wait, `status`
/// says so) while a live edit made on the peer still arrives; a window that includes now lets
/// the initial sync through.
#[test]
fn the_sync_window_defers_bulk_and_lets_live_edits_through() {
    let a_home = TestHome::init("holder");
    let commons = generate(&a_home, WINDOW_DESIGNS, 7);
    let utc = ServeOptions {
        env: vec![("TZ".into(), "UTC".into())],
        ..ServeOptions::default()
    };
    let a = ServeNode::start_with(a_home, utc.clone());
    let b_home = TestHome::init("joiner");
    b_home.json(&["commons", "join", &commons]);
    // Opens in two hours: closed now, whatever the hour.
    let closed = window_from_now(120, 180);
    b_home.ok(&["config", "set", "sync_window", &closed]);
    let mut b = ServeNode::start_with(
        b_home,
        ServeOptions {
            peers: vec![a.multiaddr()],
            ..utc.clone()
        },
    );

    let deferred = wait_for(Duration::from_secs(60), || {
        let status = b.status();
        let pulls = status["metering"]["deferred_pulls"].as_array()?.clone();
        (!pulls.is_empty()).then_some(status)
    })
    .unwrap_or_else(|| panic!("no deferred pull in B's status\nB:\n{}", b.log()));
    let metering = &deferred["metering"];
    assert_eq!(metering["sync_window"], closed.as_str(), "{metering}");
    assert_eq!(metering["window_open"], false, "{metering}");
    assert!(
        metering["opens_in_secs"].as_u64().is_some_and(|s| s > 3600),
        "{metering}"
    );
    let pull = &metering["deferred_pulls"][0];
    assert_eq!(pull["commons"], commons.as_str(), "{metering}");
    assert!(
        pull["documents"].as_u64() >= Some(WINDOW_DESIGNS as u64),
        "{metering}"
    );
    let human = b.ok(&["status"]);
    assert!(
        human.contains(&format!("sync window {closed} (local time): closed")),
        "{human}"
    );
    assert!(
        human.contains(&format!("documents of commons {commons}")),
        "{human}"
    );

    // A live edit on A arrives outside the window: a new design, published as it is made
    // (made again if gossip had not reached B yet, at most five times).
    let mut live = Vec::new();
    let arrived = (0..5).any(|round| {
        live.push(id(&a.json(&[
            "design",
            "new",
            &format!("Live tool {round}"),
        ])));
        wait_until(Duration::from_secs(10), || design_count(&b) > 0)
    });
    assert!(
        arrived,
        "no live edit reached B\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    // ... and nothing of the backlog did.
    let listed = b.json(&["design", "list"]);
    let titles: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["title"].as_str())
        .collect();
    assert!(
        !titles.is_empty() && titles.iter().all(|t| t.starts_with("Live tool")),
        "{titles:?}"
    );
    let status = b.status();
    assert!(
        status["counters"]["pulls_deferred"].as_u64() >= Some(1),
        "{status}"
    );
    assert!(!status["metering"]["deferred_pulls"]
        .as_array()
        .expect("pulls")
        .is_empty());

    // A window that includes now: the deferred initial sync goes through.
    b.stop();
    let open = window_from_now(-60, 120);
    b.home.ok(&["config", "set", "sync_window", &open]);
    b.restart();
    let all = WINDOW_DESIGNS + live.len();
    let synced = wait_until(Duration::from_secs(60), || design_count(&b) == all);
    assert!(
        synced,
        "B has {} of {all} designs\nB:\n{}",
        design_count(&b),
        b.log()
    );
    let metering = b.status()["metering"].clone();
    assert_eq!(metering["window_open"], true, "{metering}");
    assert_eq!(
        metering["deferred_pulls"],
        serde_json::json!([]),
        "{metering}"
    );
}

/// A stewarded commons joined by its id outside the sync window: its designs wait for the
/// window, but its charter comes at once, so the live changes that flow meanwhile are judged
/// under it (before, the charter waited with the designs and the joiner knew no steward).
#[test]
fn the_charter_of_a_commons_joined_outside_the_window_comes_at_once() {
    let a_home = TestHome::init("steward");
    let commons = generate_with(
        &a_home,
        WINDOW_DESIGNS,
        11,
        Request::CommonsCreateStewarded {
            name: "Stewarded metered tools".into(),
            description: String::new(),
            private: false,
        },
    );
    let utc = ServeOptions {
        env: vec![("TZ".into(), "UTC".into())],
        ..ServeOptions::default()
    };
    let a = ServeNode::start_with(a_home, utc.clone());
    let b_home = TestHome::init("joiner");
    b_home.json(&["commons", "join", &commons]);
    b_home.ok(&["config", "set", "sync_window", &window_from_now(120, 180)]);
    let b = ServeNode::start_with(
        b_home,
        ServeOptions {
            peers: vec![a.multiaddr()],
            ..utc
        },
    );

    let deferred = wait_for(Duration::from_secs(60), || {
        let status = b.status();
        let pulls = status["metering"]["deferred_pulls"].as_array()?.clone();
        (!pulls.is_empty()).then_some(pulls)
    })
    .unwrap_or_else(|| panic!("no deferred pull in B's status\nB:\n{}", b.log()));
    assert!(
        deferred[0]["documents"].as_u64() >= Some(WINDOW_DESIGNS as u64),
        "{deferred:?}"
    );
    let steward = a.json(&["whoami"])["author"]
        .as_str()
        .expect("author key")
        .to_string();
    let members = b.run(&["commons", "members", "--json", "--commons", &commons]);
    let members: Value = serde_json::from_slice(&members.stdout).unwrap_or(Value::Null);
    let roles: Vec<(String, String)> = members
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| {
                    (
                        m["person"].as_str().unwrap_or_default().to_string(),
                        m["role"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        roles.contains(&(steward.clone(), "steward".to_string())),
        "B does not know A ({steward}) as steward while the designs wait: {members}\nB:\n{}",
        b.log()
    );
    assert_eq!(design_count(&b), 0, "the designs wait for the window");
}
