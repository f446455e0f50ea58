//! Running a node as a service, through the real binary on loopback: Prometheus metrics
//! scraped over HTTP, SIGTERM during a stream of writes leaves a clean store with every
//! acknowledged write, and the Docker image (only where a Docker daemon answers).
//!
//! ```text
//!   A (serve --metrics 127.0.0.1:0) <== B (serve, --peer A)      scrape A's /metrics
//!   CLI writes --> A (serve) <-- SIGTERM                           verify A's store
//! ```

use hedgerow_tests::net::{wait_for, ServeNode, ServeOptions};
use hedgerow_tests::{id, TestHome};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// `GET path` on `addr`: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics address");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

/// The value of the sample `name` (no labels) in exposition `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn metrics_are_scraped_over_loopback_with_hedgerow_and_libp2p_figures() {
    let a = TestHome::init("Ada");
    let commons = id(&a.json(&["commons", "create", "Open Tools"]));
    a.json(&["design", "new", "Roller crimper"]);
    let options = ServeOptions {
        env: vec![("HEDGEROW_METRICS".into(), "127.0.0.1:0".into())],
        ..ServeOptions::default()
    };
    let a = ServeNode::start_with(a, options);
    let addr = wait_for(WAIT, || {
        a.log().lines().find_map(|l| {
            let rest = l.split("metrics at http://").nth(1)?;
            Some(rest.trim_end_matches("/metrics").trim().to_string())
        })
    })
    .unwrap_or_else(|| panic!("serve never said where its metrics are:\n{}", a.log()));

    let b = TestHome::init("Ben");
    b.json(&["commons", "join", &commons]);
    let b = ServeNode::start(b, &[&a]);
    assert!(b.wait_connected_to(a.peer_id(), WAIT), "{}", b.status());

    // The figures follow the node: wait until A counts B and has sent it the documents.
    let body = wait_for(WAIT, || {
        let (status, body) = http_get(&addr, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        let sent = sample(&body, "hedgerow_documents_sent_total")?;
        (sample(&body, "hedgerow_peers_connected") == Some(1.0) && sent >= 1.0).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "metrics never showed B connected and synced:\n{}",
            http_get(&addr, "/metrics").1
        )
    });
    assert_eq!(sample(&body, "hedgerow_commons_held"), Some(1.0), "{body}");
    assert!(
        sample(&body, "hedgerow_store_bytes").is_some_and(|n| n > 0.0),
        "{body}"
    );
    assert!(
        sample(&body, "hedgerow_transport_out_bytes_total").is_some_and(|n| n > 0.0),
        "{body}"
    );
    assert!(
        body.contains("# TYPE hedgerow_changes_received counter"),
        "{body}"
    );
    // libp2p's own metrics are there too, and the exposition ends once.
    assert!(
        body.contains("libp2p_swarm_connections_established"),
        "{body}"
    );
    assert_eq!(body.matches("# EOF").count(), 1, "{body}");
    assert!(body.ends_with("# EOF\n"));

    let (status, _) = http_get(&addr, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn sigterm_during_writes_exits_cleanly_keeping_every_acknowledged_write() {
    let home = TestHome::init("Ada");
    home.json(&["commons", "create", "Open Tools"]);
    let mut node = ServeNode::start(home, &[]);
    let root = node.home.path().to_path_buf();

    // Writes through the control socket, from another thread, until the node is gone (a
    // bounded number; those after it stopped go to the store directly or fail cleanly).
    let writer = std::thread::spawn(move || {
        let mut written = Vec::new();
        for i in 0..40 {
            let out = Command::new(hedgerow_tests::hedgerow_bin())
                .arg("--home")
                .arg(&root)
                .args(["design", "new", &format!("Design {i}"), "--json"])
                .env("HEDGEROW_WAIT", "0")
                .env_remove("HEDGEROW_HOME")
                .output()
                .expect("run hedgerow");
            if out.status.success() {
                let reply: serde_json::Value =
                    serde_json::from_slice(&out.stdout).expect("json reply");
                written.push(id(&reply));
            }
        }
        written
    });
    // Once a few writes went through the node, stop it while more are coming.
    let started = wait_for(WAIT, || {
        let list = node.home.run(&["design", "list", "--json"]);
        let count = serde_json::from_slice::<serde_json::Value>(&list.stdout)
            .ok()?
            .as_array()?
            .len();
        (count >= 3).then_some(())
    });
    assert!(
        started.is_some(),
        "no write reached the node:\n{}",
        node.log()
    );
    let status = node.terminate(Duration::from_secs(15));
    let written = writer.join().expect("writer thread");

    let status = status.unwrap_or_else(|| panic!("serve did not exit on SIGTERM:\n{}", node.log()));
    assert!(
        status.success(),
        "serve exited with {status} on SIGTERM:\n{}",
        node.log()
    );
    let verified = node.home.ok(&["verify"]);
    assert!(verified.contains("store is clean"), "{verified}");
    let list = node.home.json(&["design", "list"]);
    for design in &written {
        assert!(
            list.to_string().contains(design.as_str()),
            "acknowledged design {design} is missing after SIGTERM: {list}"
        );
    }
    assert!(written.len() >= 3, "{written:?}");
}

/// Whether a Docker daemon answers here.
fn docker_usable() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_docker_image_builds_and_its_hub_answers() {
    if !docker_usable() {
        eprintln!("SKIPPED: no usable Docker daemon here (`docker info` failed); the image is built and run where one is");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tag = "hedgerow-test:latest";
    let built = Command::new("docker")
        .args(["build", "-f", "dist/Dockerfile", "-t", tag, "."])
        .current_dir(&root)
        .status()
        .expect("docker build");
    assert!(built.success(), "docker build failed");
    // The image's entry point is the binary: its version answers without a home.
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", tag, "--version"])
        .output()
        .expect("docker run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hedgerow "));
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: no systemd-analyze here");
        return;
    };
    assert!(version.status.success());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("dist/hedgerow.service")).expect("unit file");
    // The unit names the installed binary; point it at the one just built.
    let bin = hedgerow_tests::hedgerow_bin();
    let unit = unit.replace("/usr/local/bin/hedgerow", &bin.display().to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hedgerow.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    // Hardened: systemd's own exposure score stays in its "OK" band (below 2.0).
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    assert!(
        out.status.success(),
        "exposure above 2.0: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs `dist/docker-entrypoint.sh serve` outside Docker with `home` as HEDGEROW_HOME until its
/// node answers `status`, then SIGTERMs it; returns the status reply and the exit status.
fn entrypoint_serve(home: &Path) -> (serde_json::Value, std::process::ExitStatus) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = hedgerow_tests::hedgerow_bin();
    let bin_dir = bin.parent().expect("binary directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("sh")
        .arg(root.join("dist/docker-entrypoint.sh"))
        .args(["serve", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .env("PATH", path)
        .env("HEDGEROW_HOME", home)
        .env("HEDGEROW_NAME", "Barn hub")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the entrypoint");
    let status = wait_for(WAIT, || {
        if !home.join("control.sock").exists() {
            return None;
        }
        let out = Command::new(&bin)
            .args(["status", "--json"])
            .env("HEDGEROW_HOME", home)
            .output()
            .ok()?;
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .filter(|s| s["peer_id"].is_string())
    });
    // The script execs hedgerow, so the child is the node itself.
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signalling our own child, which has not been waited for yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let exit = wait_for(WAIT, || child.try_wait().ok().flatten());
    let Some(exit) = exit else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the entrypoint's node did not stop on SIGTERM");
    };
    let status = status.unwrap_or_else(|| panic!("the entrypoint's node never answered"));
    (status, exit)
}

#[test]
fn the_container_entrypoint_makes_the_home_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let (first, exit) = entrypoint_serve(&home);
    assert!(exit.success(), "{exit}");
    assert!(home.join("hedgerow-home").exists());
    // The second start keeps the home (same node, same peer id) instead of making one.
    let (second, exit) = entrypoint_serve(&home);
    assert!(exit.success(), "{exit}");
    assert_eq!(first["peer_id"], second["peer_id"]);
    assert_eq!(first["author"], second["author"]);
}
