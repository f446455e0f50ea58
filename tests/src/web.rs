//! Web page harness: a `hedgerow serve --web` child on loopback, a minimal HTTP/1.1 client
//! over a plain `TcpStream` (no HTTP crate: the tests read status, headers and bytes exactly as
//! sent), and the check that says whether the browser tests can run here.

use crate::net::wait_for;
use crate::TestHome;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a node may take to open its store and bind the web page.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable that makes the browser tests mandatory (CI sets it to `1`).
pub const REQUIRE_BROWSER_ENV: &str = "HEDGEROW_REQUIRE_BROWSER";

/// A home with `hedgerow serve --web 127.0.0.1:0` running, killed when dropped.
pub struct WebNode {
    /// The node's home; CLI commands go through its control socket while it runs.
    pub home: TestHome,
    /// Where the web page answers.
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
    _logs: tempfile::TempDir,
}

impl std::ops::Deref for WebNode {
    type Target = TestHome;
    fn deref(&self) -> &TestHome {
        &self.home
    }
}

impl WebNode {
    /// Starts the node with its web page (read-only with `read_only`) and waits until both the
    /// page and the control socket answer.
    pub fn start(home: TestHome, read_only: bool) -> Self {
        let logs = tempfile::Builder::new()
            .prefix("hedgerow-web-log-")
            .tempdir()
            .expect("log dir");
        let log = logs.path().join("serve.log");
        let mut cmd = home.command();
        cmd.args([
            "serve",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--web",
            "127.0.0.1:0",
        ]);
        if read_only {
            cmd.arg("--web-read-only");
        }
        cmd.env("HEDGEROW_LOG", "info,libp2p=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"));
        let mut child = cmd.spawn().expect("spawn hedgerow serve --web");
        let addr = wait_for(START_TIMEOUT, || {
            if let Ok(Some(exit)) = child.try_wait() {
                panic!(
                    "hedgerow serve --web exited with {exit}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let text = std::fs::read_to_string(&log).ok()?;
            let line = text
                .lines()
                .find(|l| l.starts_with("web page on http://"))?;
            let rest = line.trim_start_matches("web page on http://");
            rest.split('/').next()?.parse().ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "hedgerow serve --web did not print its address:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let node = WebNode {
            home,
            addr,
            child: Some(child),
            log,
            _logs: logs,
        };
        let up = wait_for(START_TIMEOUT, || {
            if !node.home.path().join("control.sock").exists() {
                return None;
            }
            node.home
                .run(&["status", "--json"])
                .status
                .success()
                .then_some(())
        });
        assert!(up.is_some(), "the node did not come up:\n{}", node.log());
        node
    }

    /// The page's base address, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET `path` with no extra header.
    pub fn get(&self, path: &str) -> HttpResponse {
        http(self.addr, "GET", path, &[], b"")
    }

    /// Everything the node logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WebNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("==== log of the web node ====\n{}", self.log());
        }
    }
}

/// An HTTP answer as it came.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, names in lower case (the last of repeated ones).
    pub headers: BTreeMap<String, String>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// One HTTP/1.1 request with `Connection: close`; `headers` may override `Host`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to the web page");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(request.as_bytes()).expect("send request");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse(&raw)
}

fn parse(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let mut headers = BTreeMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let rest = &raw[split + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        rest = &rest[end + 2..];
        if size == 0 || rest.len() < size {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

/// A server-sent event stream opened with GET, read line by line.
pub struct EventStream {
    reader: BufReader<TcpStream>,
}

impl EventStream {
    /// Opens `path` and reads past the answer's headers; panics unless it is a 200 stream.
    pub fn open(addr: SocketAddr, path: &str) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect to the web page");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("send request");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 200 "), "live stream answered {status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        EventStream { reader }
    }

    /// Reads until an event named `name` arrives (its `data`), or the read times out (`None`).
    pub fn next_named(&mut self, name: &str) -> Option<String> {
        let mut current = None;
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            // Chunk-size lines of the chunked body carry no colon and are skipped like blanks.
            let line = line.trim_end();
            if let Some(event) = line.strip_prefix("event:") {
                current = Some(event.trim().to_string());
            } else if let Some(data) = line.strip_prefix("data:") {
                if current.as_deref() == Some(name) {
                    return Some(data.trim().to_string());
                }
            }
        }
    }
}

/// Why the browser tests cannot run here, or `None` when Chromium, Node.js and the test
/// scripts' `node_modules` are all present.
pub fn browser_missing(js_dir: &Path) -> Option<String> {
    let found = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
    };
    if !found("chromium") {
        return Some("no `chromium` on PATH (Debian: apt-get install chromium)".into());
    }
    if !found("node") {
        return Some("no `node` on PATH (Node.js 20 or newer)".into());
    }
    if !js_dir.join("node_modules").join("playwright-core").is_dir() {
        return Some(format!(
            "no node_modules in {} (run `npm ci` there)",
            js_dir.display()
        ));
    }
    None
}

/// Runs `node script args...` in `dir` and returns its standard output; panics with its
/// output when it fails.
pub fn run_node(dir: &Path, script: &str, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new("node");
    cmd.arg(script).current_dir(dir);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "node {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
