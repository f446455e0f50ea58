//! Reaching nodes behind NAT (issue 12): two farms that cannot route to each other sync a
//! commons through their hub's circuit relay; two farms behind emulated home-router NATs
//! punch a direct path with DCUtR and keep syncing over it once the hub is gone.
//!
//! Every node here runs in a namespace the test made, with `--no-upnp` and `--no-mdns`
//! (`ServeNode` passes both), so nothing leaves the test's namespaces.

use hedgerow_tests::net::{HubAndFarms, ServeNode, ServeOptions};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// How long the hole punch may take once the farms are connected through the relay.
const HOLE_PUNCH_WAIT: Duration = Duration::from_secs(20);

/// Polls `check` every 100 ms until it gives a value or `timeout` passes.
fn wait_for<T>(timeout: Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    hedgerow_tests::net::wait_for(timeout, check)
}

/// The hub: serves as a relay (`reach.relay` through the environment), holds no commons, so
/// nothing of the commons can pass through its own store. It also listens on its loopback,
/// an address it must not hand to the farms that reserve a slot on it.
fn hub(net: &HubAndFarms) -> ServeNode {
    let options = ServeOptions {
        env: vec![("HEDGEROW_REACH_RELAY".into(), "true".into())],
        more_listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        ..net.hub_options()
    };
    ServeNode::start_with(TestHome::init("Hub"), options)
}

/// Farm A's relayed address once its reservation on the hub is active.
fn relayed_addr(farm: &ServeNode, hub: &ServeNode) -> String {
    let reservation = wait_for(WAIT, || {
        let status = farm.status();
        status["reach"]["reservations"]
            .as_array()?
            .iter()
            .find(|r| r["relay"] == hub.peer_id() && r["active"] == true)
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "farm A never held a relay slot on the hub: {}\n{}",
            farm.status()["reach"],
            farm.log()
        )
    });
    format!(
        "{}/p2p/{}",
        reservation["addr"].as_str().expect("addr"),
        farm.peer_id()
    )
}

/// The connected row of `peer` in `node`'s status.
fn row(node: &ServeNode, peer: &str) -> Option<Value> {
    node.status()["connected"]
        .as_array()?
        .iter()
        .find(|r| r["peer"] == peer)
        .cloned()
}

/// The names of the designs `home` holds; none while its commons has not arrived (a pending
/// join has no designs to list, and `design list` says so with an error).
fn design_names(home: &TestHome) -> Vec<String> {
    let out = home.run(&["design", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut names: Vec<String> = list
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["title"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Farm A (a commons and a design) and farm B (joined by id, a design of its own) meet only
/// through the hub's relay: each ends up with the other's design, and each `status` shows the
/// other as relayed via the hub. Returns both farms for the caller's further checks; with
/// `sync_interval`, the farms pull from their peers that often (seconds).
fn sync_through_relay(
    net: &HubAndFarms,
    hub: &ServeNode,
    sync_interval: Option<u64>,
) -> (ServeNode, ServeNode) {
    let farm = |i: usize, peers: Vec<String>| ServeOptions {
        sync_interval,
        ..net.farm_options(i, peers)
    };
    let a = TestHome::init("Ada");
    let commons = id(&a.json(&["commons", "create", "Open Tools"]));
    a.json(&["design", "new", "Roller crimper"]);
    let a = ServeNode::start_with(a, farm(0, vec![hub.multiaddr()]));
    let via_hub = relayed_addr(&a, hub);

    let b = TestHome::init("Ben");
    b.json(&["commons", "join", &commons]);
    let b = ServeNode::start_with(b, farm(1, vec![hub.multiaddr(), via_hub]));
    let got_a = wait_for(WAIT, || {
        design_names(&b)
            .contains(&"Roller crimper".to_string())
            .then_some(())
    });
    assert!(
        got_a.is_some(),
        "farm B never got farm A's design through the relay: {}\n{}",
        b.status(),
        b.log()
    );
    b.json(&["design", "new", "Seed drill"]);
    let both = wait_for(WAIT, || {
        (design_names(&a) == ["Roller crimper", "Seed drill"]).then_some(())
    });
    assert!(
        both.is_some(),
        "farm A never got farm B's design through the relay: {}",
        a.status()
    );

    // Each shows the other as relayed through the hub (a hole punch may have added a direct
    // connection since, which then shows instead).
    for (node, other) in [(&a, &b), (&b, &a)] {
        let row = row(node, other.peer_id()).expect("the other farm is connected");
        let reached = row["reached"].as_str().unwrap_or_default();
        assert!(reached == "relayed" || reached == "hole-punched", "{row}");
        if reached == "relayed" {
            assert_eq!(row["via"], hub.peer_id(), "{row}");
        }
    }
    // Each farm listens through the hub at the hub's address (once its reservation is
    // accepted), never at the hub's loopback, which would dial the farm's own machine.
    let hub_prefix = format!("/ip4/{}/", hedgerow_tests::net::HUB_ADDR);
    for farm in [&a, &b] {
        let listed = wait_for(WAIT, || {
            let relayed: Vec<String> = farm.status()["listen"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .filter(|a| a.contains("/p2p-circuit"))
                .map(str::to_string)
                .collect();
            relayed
                .iter()
                .any(|a| a.starts_with(&hub_prefix))
                .then_some(relayed)
        })
        .unwrap_or_else(|| panic!("a farm never listened through the hub: {}", farm.status()));
        assert!(
            listed.iter().all(|a| !a.starts_with("/ip4/127.")),
            "a farm listens through the hub's loopback: {listed:?}"
        );
    }
    // The hub relayed; it holds nothing of the commons itself.
    let hub_status = hub.status();
    assert_eq!(hub_status["reach"]["relay_server"], true, "{hub_status}");
    assert_eq!(
        hub_status["commons"],
        Value::Array(Vec::new()),
        "{hub_status}"
    );
    (a, b)
}

/// ```text
///   farm A --- [hub: relay, no forwarding] --- farm B
/// ```
/// The farms know only the hub's address (and B the relayed address of A through it); no
/// packet can pass between them except through the hub's relay.
#[test]
fn farms_that_cannot_route_to_each_other_sync_through_the_hubs_relay() {
    let Some(net) = HubAndFarms::plain_or_skip("relay") else {
        return;
    };
    let hub = hub(&net);
    // The premise: each farm reaches the hub, neither reaches the other.
    let port = hub
        .multiaddr()
        .split('/')
        .nth(4)
        .and_then(|p| p.parse::<u16>().ok())
        .expect("hub port");
    assert!(net.can_connect(
        net.farm(0),
        hedgerow_tests::net::HUB_ADDR,
        port,
        Duration::from_secs(2)
    ));

    let (a, _b) = sync_through_relay(&net, &hub, None);
    let a_port = a
        .multiaddr()
        .split('/')
        .nth(4)
        .and_then(|p| p.parse::<u16>().ok())
        .expect("A's port");
    assert!(
        !net.can_connect(
            net.farm(1),
            &net.farm_addr(0),
            a_port,
            Duration::from_secs(1)
        ),
        "farm B can reach farm A directly: the test proves nothing"
    );
    eprintln!(
        "relay: A's NAT status {}, reservations {}",
        a.status()["reach"]["nat"],
        a.status()["reach"]["reservations"]
    );
}

/// ```text
///   farm A --- [hub: relay, DHT, no commons] --- farm B
/// ```
/// Farm B knows only the hub's address and the commons' id: it finds farm A as a holder of the
/// commons through the DHT (A announced it to the hub), dials A by peer id at the relayed
/// address the DHT handed on, and syncs the commons over the relay.
#[test]
fn a_farm_knowing_only_the_hub_finds_the_commons_via_the_dht_and_syncs_over_the_relay() {
    let Some(net) = HubAndFarms::plain_or_skip("relay-dht") else {
        return;
    };
    let hub = hub(&net);
    let a = TestHome::init("Ada");
    let commons = id(&a.json(&["commons", "create", "Open Tools"]));
    a.json(&["design", "new", "Roller crimper"]);
    let a = ServeNode::start_with(a, net.farm_options(0, vec![hub.multiaddr()]));
    // A is reachable through the hub before B asks the DHT.
    relayed_addr(&a, &hub);

    let b = TestHome::init("Ben");
    b.json(&["commons", "join", &commons]);
    let b = ServeNode::start_with(b, net.farm_options(1, vec![hub.multiaddr()]));
    let got = wait_for(Duration::from_secs(45), || {
        design_names(&b)
            .contains(&"Roller crimper".to_string())
            .then_some(())
    });
    assert!(
        got.is_some(),
        "farm B never got the commons through the DHT and the relay: {}\n{}",
        b.home.json(&["peers"]),
        b.log()
    );
    let peers = b.home.json(&["peers"]);
    let row = peers["peers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["peer"] == a.peer_id()))
        .cloned()
        .unwrap_or_else(|| panic!("farm A is not among B's peers: {peers}"));
    assert!(
        row["found"]
            .as_array()
            .is_some_and(|how| how.iter().any(|h| h == "dht")),
        "B found A some other way than the DHT: {row}"
    );
    let reached = row_reached(&b, a.peer_id());
    assert!(
        reached == "relayed" || reached == "hole-punched",
        "B reaches A as {reached}"
    );
}

/// How `node` reaches `peer` now (`relayed`, `direct`, `hole-punched`), or "" when not connected.
fn row_reached(node: &ServeNode, peer: &str) -> String {
    row(node, peer)
        .and_then(|r| r["reached"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// ```text
///   farm A - NAT A --- [hub: relay, forwarding] --- NAT B - farm B
/// ```
/// Each farm behind its own NAT that keeps a connection's source port while it is free and
/// drops what nobody inside asked for (a home router; see `HubAndFarms`): the farms meet
/// through the relay, DCUtR punches a direct path between the NATs, and with the hub gone a
/// new design still crosses, over the punched connection. Nothing can dial in meanwhile: the
/// punched path is the only direct one.
#[test]
fn farms_behind_two_nats_hole_punch_a_direct_path_that_syncs_without_the_hub() {
    let net = match HubAndFarms::new(true) {
        Ok(net) => net,
        Err(why) => {
            hedgerow_tests::skip::skip("nat", &format!("cannot emulate NAT here: {why}"));
            return;
        }
    };
    eprintln!(
        "nat: NATs made with {}",
        net.iptables.as_deref().unwrap_or("?")
    );
    let mut hub = hub(&net);
    // The farms pull from each other every second: what crosses once the hub is gone does
    // not wait for a gossip mesh over the punched connection.
    let (a, b) = sync_through_relay(&net, &hub, Some(1));

    // DCUtR runs on the relayed connection as soon as it is up; both ends report the punch.
    let punched = wait_for(HOLE_PUNCH_WAIT, || {
        (row_reached(&a, b.peer_id()) == "hole-punched"
            && row_reached(&b, a.peer_id()) == "hole-punched")
            .then_some(())
    });
    assert!(
        punched.is_some(),
        "no hole punch between the farms: A {}\nB {}\n{}\n{}",
        a.status()["reach"],
        b.status()["reach"],
        a.log(),
        b.log()
    );
    for node in [&a, &b] {
        let punches = &node.status()["reach"]["hole_punches"];
        assert!(punches["succeeded"].as_u64() >= Some(1), "{punches}");
    }
    eprintln!(
        "nat: unsolicited packets dropped by NAT A {}, NAT B {}",
        net.nat_dropped(0),
        net.nat_dropped(1)
    );

    // The hub goes away, and its relay with it: only the punched connection joins the farms.
    hub.kill();
    let hub_gone = wait_for(WAIT, || {
        (!a.connected().iter().any(|p| p == hub.peer_id())
            && !b.connected().iter().any(|p| p == hub.peer_id()))
        .then_some(())
    });
    assert!(
        hub_gone.is_some(),
        "the farms still see the hub: {}",
        b.status()
    );
    a.json(&["design", "new", "Bed former"]);
    let crossed = wait_for(WAIT, || {
        design_names(&b)
            .contains(&"Bed former".to_string())
            .then_some(())
    });
    assert!(
        crossed.is_some(),
        "a design made with the hub gone never reached farm B: {}\nA: {}\nB: {}",
        b.status(),
        a.log(),
        b.log()
    );
    // Still nothing dials in: B cannot open a fresh connection to A's NAT at A's port.
    let a_port = a
        .multiaddr()
        .split('/')
        .nth(4)
        .and_then(|p| p.parse::<u16>().ok())
        .expect("A's port");
    assert!(
        !net.can_connect(net.farm(1), "10.48.1.2", a_port, Duration::from_secs(1)),
        "farm B can dial farm A's NAT: the punch proves nothing"
    );

    // `status --json` on B: A reached by the punched connection, at A's NAT's outer address.
    let row = row(&b, a.peer_id()).expect("farm A still connected to farm B");
    assert_eq!(row["reached"], "hole-punched", "{row}");
    assert_eq!(row["via"], Value::Null, "{row}");
    let addr = row["addr"].as_str().unwrap_or_default();
    assert!(
        addr.starts_with(&format!("/ip4/10.48.1.2/tcp/{a_port}/")),
        "B reaches A at {addr}, not at A's NAT"
    );
}

/// UDP datagrams sent from namespace `ns` so far (`OutDatagrams` of its `/proc/net/snmp`).
fn udp_out(ns: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
        .output()
        .expect("read /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (
        udp.next().expect("Udp header"),
        udp.next().expect("Udp values"),
    );
    let at = names
        .split_whitespace()
        .position(|n| n == "OutDatagrams")
        .expect("OutDatagrams");
    values
        .split_whitespace()
        .nth(at)
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

/// Runs `serve --no-mdns --listen LISTEN ARGS` in `ns` until it listens, stops it, and
/// returns the UDP datagrams the namespace sent meanwhile (TCP only is listened on and mDNS
/// is off, so any datagram is UPnP's gateway search).
fn datagrams_of_a_serve(ns: &str, listen: &str, args: &[&str]) -> u64 {
    let home = TestHome::init("Una");
    let before = udp_out(ns);
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(hedgerow_tests::hedgerow_bin())
        .arg("--home")
        .arg(home.path())
        .args(["serve", "--no-mdns", "--listen", listen])
        .args(args)
        .env_remove("HEDGEROW_HOME")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    let up = wait_for(WAIT, || {
        let out = home.run(&["status", "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).ok()?;
        status["listen"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
            .then_some(())
    });
    // Its gateway search, if any, is sent while the swarm is built, before it listens; a
    // node that sends none is given the same 2 s to show it.
    wait_for(Duration::from_secs(2), || {
        (udp_out(ns) > before).then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        up.is_some(),
        "serve --listen {listen} {args:?} never came up"
    );
    udp_out(ns) - before
}

/// The network rule for UPnP: its SSDP search (one multicast datagram) goes out only from a
/// node that allows UPnP and listens on a private IPv4 address or the wildcard; loopback or
/// `--no-upnp` sends nothing. Checked by the namespace's own UDP counter, in a namespace this
/// test made (a veth to a second one, so a datagram has somewhere to go).
#[test]
fn upnp_searches_only_from_a_private_or_wildcard_listen_address_and_never_with_no_upnp() {
    let Some(net) = hedgerow_tests::net::Netns::pair_or_skip("upnp") else {
        return;
    };
    let ns = net.name(0);
    let own = format!("/ip4/{}/tcp/0", net.addr(0));
    assert_eq!(datagrams_of_a_serve(ns, "/ip4/127.0.0.1/tcp/0", &[]), 0);
    assert_eq!(
        datagrams_of_a_serve(ns, "/ip4/0.0.0.0/tcp/0", &["--no-upnp"]),
        0
    );
    assert_eq!(datagrams_of_a_serve(ns, &own, &["--no-upnp"]), 0);
    assert_eq!(datagrams_of_a_serve(ns, &own, &[]), 1, "one SSDP search");
}
