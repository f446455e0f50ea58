//! A whole node run in process and driven through its [`NodeHandle`] with typed calls: two
//! nodes on loopback (mDNS off, nothing but 127.0.0.1 dialed), no control socket client.
//!
//! ```text
//!   A (holds a commons, writes a design through its handle) <──sync── B (joins it by id)
//! ```

use std::future::Future;
use std::time::Duration;

use hedgerow_node::api::{Reply, Request};
use hedgerow_node::serve::{self, HandleError, NodeHandle, NodeStatus, ServeConfig};
use hedgerow_node::{Home, LocalProfile};
use hedgerow_protocol::schema::DocKind;
use hedgerow_protocol::CommonsId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound on the whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh home in a temp dir.
fn home(name: &str) -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = LocalProfile {
        name: name.into(),
        location: String::new(),
        bio: String::new(),
    };
    let home = Home::init(dir.path(), &profile).expect("init home");
    (dir, home)
}

/// A running node: its handle, its stop switch and its task.
struct Running {
    handle: NodeHandle,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), serve::ServeError>>,
}

/// Runs the node of `home` in this process, on loopback only.
fn start(home: Home) -> Running {
    let config = ServeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("listen address")],
        peers: Vec::new(),
        mdns: false,
        ..ServeConfig::default()
    };
    let (handle, inbox) = NodeHandle::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve::run_with(&home, config, inbox, async {
            let _ = stopped.await;
        })
        .await
    });
    Running { handle, stop, task }
}

/// The node's status once it listens (bounded by the test's timeout).
async fn listening(node: &NodeHandle) -> NodeStatus {
    loop {
        let status = node.status().await.expect("status");
        if !status.listen.is_empty() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {TEST_TIMEOUT:?}"))
}

#[tokio::test]
async fn a_node_run_in_process_answers_typed_calls_and_syncs_over_loopback() {
    let (_dir_a, home_a) = home("Ada");
    let (_dir_b, home_b) = home("Bo");
    let a = start(home_a);
    let b = start(home_b);
    bounded("two nodes driven through handles", async {
        // Store requests go through the running node.
        let created = a
            .handle
            .store(Request::CommonsCreate {
                name: "Farm Hack tools".into(),
                description: String::new(),
            })
            .await
            .expect("create commons");
        let Reply::CommonsCreated(created) = created else {
            panic!("commons create answered {created:?}");
        };
        let commons: CommonsId = created.id;
        let design = a
            .handle
            .store(Request::DocNew {
                commons: None,
                kind: DocKind::Design,
                title: "Broadfork".into(),
                target: None,
                note_kind: None,
                reply_to: None,
                edits: Vec::new(),
            })
            .await
            .expect("new design");
        let Reply::Created(design) = design else {
            panic!("design new answered {design:?}");
        };
        let design = design.id.to_string();
        // A refused store request is a typed error carrying the node's reason.
        let refused = a
            .handle
            .store(Request::DocShow {
                id: "ffffffff".into(),
                kind: DocKind::Design,
                version: None,
            })
            .await;
        assert!(
            matches!(refused, Err(HandleError::Refused(_))),
            "{refused:?}"
        );

        let status_a = listening(&a.handle).await;
        assert_eq!(status_a.commons.len(), 1, "{status_a:?}");
        assert_eq!(status_a.commons[0].id, commons.to_string());
        let peer_a: PeerId = status_a.peer_id.parse().expect("peer id");
        let addr_a: Multiaddr = status_a.listen[0]
            .parse::<Multiaddr>()
            .expect("listen address")
            .with(Protocol::P2p(peer_a));

        // B joins by id: not held, no peer yet, so it is wanted.
        let joined = b.handle.join(commons).await.expect("join");
        assert_eq!(joined.asked_peers, Some(0), "{joined:?}");
        assert!(!joined.already_held && joined.pending, "{joined:?}");
        let status_b = b.handle.status().await.expect("status");
        assert_eq!(status_b.wanted, [commons.to_string()]);

        // A typed sync report, from a sync B runs with A.
        let report = b.handle.sync(addr_a).await.expect("sync");
        assert!(report.complete, "{report:?}");
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(report.peer, peer_a.to_string());
        // A's profile and the design.
        assert_eq!(report.docs_received, 2, "{report:?}");

        let shown = b
            .handle
            .store(Request::DocShow {
                id: design.clone(),
                kind: DocKind::Design,
                version: None,
            })
            .await
            .expect("B shows A's design");
        let Reply::Document(shown) = shown else {
            panic!("design show answered {shown:?}");
        };
        assert_eq!(shown.fields["name"], "Broadfork", "{shown:?}");
        let status_b = b.handle.status().await.expect("status");
        assert!(status_b.wanted.is_empty(), "{status_b:?}");
        // Joining it again: held now, joined at once.
        let again = b.handle.join(commons).await.expect("join again");
        assert!(again.already_held && !again.pending, "{again:?}");
        assert!(
            status_b
                .connected
                .iter()
                .any(|p| p.peer == peer_a.to_string()),
            "{status_b:?}"
        );
    })
    .await;

    for node in [a, b] {
        let handle = node.handle.clone();
        let _ = node.stop.send(());
        bounded("stop", node.task)
            .await
            .expect("node task")
            .expect("node ran and stopped cleanly");
        // The node is gone: its handles say so instead of hanging.
        assert!(matches!(handle.status().await, Err(HandleError::Stopped)));
    }
}
