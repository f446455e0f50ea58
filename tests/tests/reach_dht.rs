//! Finding a commons on the internet: real `hedgerow serve` processes on loopback, mDNS off,
//! that know one hub's address and find each other through the Kademlia DHT.
//!
//! ```text
//!            H (hub: bootstrap of both, holds no commons)
//!           / \
//!          A   B        A holds commons C (public) and P (private); B joins C by id
//!                       (offline, before its node starts).
//!          :...:        B finds A as a holder of C in the DHT, dials it, and syncs C;
//!                       B's node learns H from `peers add` while it runs.
//! ```
//!
//! P is never announced: A provides only C's key, H holds no record under P's key, and B's
//! lookup of P ends with nothing found. `peers add|remove` edit the bootstrap list (the file,
//! and the running node).

use hedgerow_tests::net::{wait_for, ServeNode};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::time::Duration;

/// How long a DHT step (an announcement, a lookup and the sync it leads to) may take on
/// loopback; they take well under a second when nothing is wrong.
const DHT_WAIT: Duration = Duration::from_secs(30);

/// The `peers --json` rows of `node`.
fn peers(node: &TestHome) -> Value {
    node.json(&["peers"])
}

/// The keys (hex) `node` announces.
fn providing(node: &TestHome) -> Vec<String> {
    strings(&peers(node)["dht"]["providing"], "key")
}

/// The keys (hex) of other nodes' provider records `node` holds.
fn records(node: &TestHome) -> Vec<String> {
    strings(&peers(node)["dht"]["records"], "key")
}

fn strings(rows: &Value, field: &str) -> Vec<String> {
    rows.as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `node`'s lookup row for `commons`, once it has ended at least once.
fn ended_lookup(node: &TestHome, commons: &str) -> Option<Value> {
    let reply = peers(node);
    let row = reply["dht"]["lookups"]
        .as_array()?
        .iter()
        .find(|l| l["commons"] == commons)?
        .clone();
    (row["attempts"].as_u64()? >= 1 && row["running"] == false).then_some(row)
}

#[test]
fn a_farm_finds_a_commons_through_one_hub_address_and_a_private_one_stays_unfindable() {
    let hub = ServeNode::start(TestHome::init("Hub"), &[]);

    let ann = TestHome::init("Ann");
    let commons = id(&ann.json(&["commons", "create", "Open seed tools"]));
    let design = id(&ann.json(&["design", "new", "Seed drill", "--commons", &commons]));
    let private = id(&ann.json(&[
        "commons",
        "create",
        "Our own field notes",
        "--stewarded",
        "--private",
    ]));
    ann.json(&["design", "new", "Secret harrow", "--commons", &private]);
    let ann = ServeNode::start(ann, &[&hub]);

    // Ann announces C to the hub (its only peer), and never P.
    let announced = wait_for(DHT_WAIT, || {
        let reply = peers(&ann);
        let rows = reply["dht"]["providing"].as_array()?.clone();
        let row = rows.iter().find(|r| r["commons"] == commons.as_str())?;
        (row["reached"].as_u64()? >= 1).then_some(rows.clone())
    })
    .unwrap_or_else(|| panic!("Ann never announced C to the hub:\n{}", ann.log()));
    assert_eq!(announced.len(), 1, "only C is announced: {announced:?}");
    let c_key = announced[0]["key"].as_str().expect("key").to_string();
    assert_ne!(c_key, commons, "the DHT key is a hash, not the commons id");
    assert!(
        wait_for(DHT_WAIT, || records(&hub).contains(&c_key).then_some(())).is_some(),
        "the hub holds no record for C: {}",
        peers(&hub)
    );
    assert!(
        hub.json(&["commons", "list"])
            .as_array()
            .is_some_and(Vec::is_empty),
        "the hub must not hold C, so B can only get it from Ann"
    );

    // Ben joined C offline, and his node starts knowing nobody: the lookup finds nothing. He
    // adds the hub with `peers add` while it runs: it dials the hub and looks C up again.
    let ben = TestHome::init("Ben");
    ben.json(&["commons", "join", &commons]);
    let ben = ServeNode::start(ben, &[]);
    let said = ben.run(&["peers", "add", &hub.multiaddr()]);
    assert!(said.status.success(), "{said:?}");
    assert!(
        String::from_utf8_lossy(&said.stderr).contains("dials it now"),
        "{said:?}"
    );
    assert!(
        ben.wait_connected_to(hub.peer_id(), DHT_WAIT),
        "Ben's node did not dial the hub from its bootstrap list:\n{}",
        ben.log()
    );
    let arrived = wait_for(DHT_WAIT, || {
        // Until C arrives, the list may be refused (the commons is only wanted).
        let out = ben.run(&["design", "list", "--commons", &commons, "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        list.as_array()?
            .iter()
            .any(|d| d["id"] == design.as_str())
            .then_some(())
    });
    assert!(
        arrived.is_some(),
        "Ben never got C's design:\nBEN {}\nBEN PEERS {}",
        ben.log(),
        peers(&ben)
    );
    let reply = peers(&ben);
    let ann_row = reply["peers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["peer"] == ann.peer_id()))
        .unwrap_or_else(|| panic!("Ben does not list Ann: {reply}"));
    assert!(
        ann_row["found"]
            .as_array()
            .is_some_and(|f| f.iter().any(|h| h == "dht")),
        "Ann was found through the DHT: {ann_row}"
    );
    let hub_row = reply["peers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["peer"] == hub.peer_id()))
        .unwrap_or_else(|| panic!("Ben does not list the hub: {reply}"));
    assert_eq!(hub_row["connected"], true, "{hub_row}");
    assert!(
        hub_row["found"]
            .as_array()
            .is_some_and(|f| f.iter().any(|h| h == "configured")),
        "{hub_row}"
    );

    // P: Ben knows its id and joins it on his running node, but nobody announces it, so his
    // lookup ends with nothing.
    ben.json(&["commons", "join", &private]);
    let lookup = wait_for(DHT_WAIT, || ended_lookup(&ben, &private))
        .unwrap_or_else(|| panic!("Ben's lookup of P never ended: {}", peers(&ben)));
    assert_eq!(lookup["holders"], 0, "{lookup}");
    let p_key = lookup["key"].as_str().expect("key").to_string();
    assert_ne!(p_key, c_key);
    assert!(!providing(&ann).contains(&p_key), "Ann announces P");
    assert!(
        !records(&hub).contains(&p_key),
        "the hub holds a record for P"
    );
    assert!(
        !records(&ben).contains(&p_key),
        "Ben was given a record for P"
    );
    let held = ben.json(&["commons", "list"]);
    assert!(
        held.as_array().is_some_and(|l| l
            .iter()
            .all(|c| c["id"] != private.as_str() || c["pending"] == true)),
        "Ben must not get P: {held}"
    );
}

#[test]
fn peers_add_and_remove_edit_the_bootstrap_list_and_refuse_a_bad_address() {
    let home = TestHome::init("Ann");
    let hub = "/ip4/127.0.0.1/tcp/4717/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE";
    let config = home.path().join("config.toml");

    let error = home.fail(&["peers", "add", "203.0.113.5:4717"]);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("`203.0.113.5:4717`") && error.contains("listening on"),
        "the error names the address and what to do: {error}"
    );
    assert!(!config.exists(), "nothing written for a bad address");

    home.ok(&["peers", "add", hub]);
    let listed = peers(&home);
    let rows = listed["peers"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["addrs"][0], hub);
    assert_eq!(rows[0]["found"][0], "configured");
    assert_eq!(rows[0]["connected"], false);
    assert_eq!(
        rows[0]["peer"],
        "12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE"
    );
    let shown = home.json(&["config", "show"]);
    assert_eq!(shown["peers"]["value"][0], hub, "{shown}");
    let before = std::fs::read(&config).expect("config.toml");
    home.ok(&["peers", "add", hub]);
    assert_eq!(
        std::fs::read(&config).expect("config.toml"),
        before,
        "listed once"
    );

    let error = home.fail(&[
        "peers",
        "remove",
        "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE",
    ]);
    assert!(error.contains("not in the bootstrap list"), "{error}");
    assert_eq!(std::fs::read(&config).expect("config.toml"), before);

    home.ok(&["peers", "remove", hub]);
    let after = peers(&home);
    assert_eq!(after["peers"].as_array().map(Vec::len), Some(0), "{after}");
    assert!(home.json(&["config", "show"])["peers"]["value"].is_null());
}
