//! Skips that show: a test that cannot run here (no network namespaces, no FUSE) says so
//! in lines `cargo test` prints, not in captured output nobody sees.
//!
//! libtest captures a passing test's `eprintln!`, so a bare SKIP line vanishes and the
//! README's test command would silently run fewer tests. [`skip`] instead records the test,
//! and at process exit (an `atexit` handler, after libtest's own `test result:` line, on
//! success and on failure alike) one line per skipped test goes straight to the process's
//! standard error (a duplicate of fd 2, which no capture touches), which `cargo test` shows:
//!
//! ```text
//! test result: ok. 7 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.52s
//!
//! SKIPPED: network::mdns_discovers_a_peer_on_the_link_and_syncs (cannot create network namespaces: ...)
//! SKIPPED 1 test in network: passed without running; run as root (see README, Testing) or set HEDGEROW_REQUIRE_NETNS=1 to make a skip fail
//! ```
//!
//! With [`REQUIRE_ENV`] set to `1` (CI) a skip is a failure instead.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::{Mutex, Once};

/// Environment variable that turns a skip into a failure (CI sets it).
pub const REQUIRE_ENV: &str = "HEDGEROW_REQUIRE_NETNS";

/// `(test, why)` of every test this process skipped, in the order they skipped.
static SKIPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static SUMMARY_AT_EXIT: Once = Once::new();

/// Records that the calling test cannot run here because of `why`, for the summary printed
/// where `cargo test` shows it; panics instead when [`REQUIRE_ENV`] is `1`.
///
/// `label` names the test when the calling thread does not (libtest names each test's
/// thread after the test, so normally the real name, usable as a filter, is printed).
pub fn skip(label: &str, why: &str) {
    let test = test_name(label);
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("{test}: {why}, and {REQUIRE_ENV}=1 requires it to run");
    }
    if let Ok(mut skipped) = SKIPPED.lock() {
        skipped.push((test, why.to_string()));
    }
    SUMMARY_AT_EXIT.call_once(|| {
        // SAFETY: `summary` is a plain `extern "C" fn()` that never unwinds.
        unsafe {
            libc::atexit(summary);
        }
    });
}

/// `binary::test`, from the thread libtest runs the test on, or `binary::label`.
fn test_name(label: &str) -> String {
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(name) if name != "main" => name,
        _ => label,
    };
    format!("{}::{name}", binary())
}

/// The test binary's name without cargo's hash suffix (`network-0123abcd` → `network`).
fn binary() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    }
}

/// Writes to fd 2 directly: libtest's capture only sees `print!`/`eprint!`.
fn write_stderr(text: &str) {
    // SAFETY: `dup` returns a fresh descriptor (or -1, checked) that the `File` then owns.
    let fd = unsafe { libc::dup(2) };
    if fd < 0 {
        return;
    }
    let mut err = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = err.write_all(text.as_bytes());
}

/// Runs at process exit, after libtest printed `test result:`.
extern "C" fn summary() {
    let Ok(skipped) = SKIPPED.lock() else {
        return;
    };
    if skipped.is_empty() {
        return;
    }
    let mut text = String::from("\n");
    for (test, why) in skipped.iter() {
        text.push_str(&format!("SKIPPED: {test} ({why})\n"));
    }
    text.push_str(&format!(
        "SKIPPED {} test{} in {}: passed without running; run as root (see README, Testing) \
         or set {REQUIRE_ENV}=1 to make a skip fail\n\n",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        binary(),
    ));
    write_stderr(&text);
}
