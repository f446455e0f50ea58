//! `serve` starts while other `hedgerow` commands run against the same home, as
//! a script or a service manager's health check does.
//!
//! ```text
//!   poller: design list / status every 50-300 ms ──┐
//!   hedgerow serve (start, stop, start, ...)      ─┴─ one home
//!   serve starts every time; every command is answered (directly or through serve)
//! ```

use hedgerow_tests::net::ServeNode;
use hedgerow_tests::{hedgerow_bin, TestHome};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Starts of `serve` in the test.
const STARTS: usize = 5;

/// Commands each poller runs per start at most (it stops earlier once serve is up).
const MAX_COMMANDS: usize = 80;

/// Commands each poller still runs once serve is up, so some go through it.
const AFTER_START: usize = 3;

/// One command's outcome: its arguments, whether it was answered, and its error line.
struct Outcome {
    args: &'static [&'static str],
    ok: bool,
    stderr: String,
}

fn run(home: &Path, args: &'static [&'static str]) -> Outcome {
    let out = Command::new(hedgerow_bin())
        .env_remove("HEDGEROW_HOME")
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hedgerow");
    Outcome {
        args,
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// Runs `args` every 50 to 300 ms until serve has been up for [`AFTER_START`] commands.
fn poll(home: &Path, args: &'static [&'static str], seed: u64, up: &AtomicBool) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut after = 0;
    let mut state = seed;
    while outcomes.len() < MAX_COMMANDS && after < AFTER_START {
        if up.load(Ordering::SeqCst) {
            after += 1;
        }
        outcomes.push(run(home, args));
        // A small linear congruential generator: varied pauses, the same on every run.
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(50 + (state >> 33) % 251));
    }
    outcomes
}

/// With `design list` and `status` polled while `serve` starts, `serve` starts every time
/// and every command is answered: `design list` always, `status` once serve runs (before, it
/// may only say that no node runs).
#[test]
fn serve_starts_while_other_commands_poll_the_home() {
    let home = TestHome::init("Alice");
    home.ok(&["commons", "create", "Farm Hack tools"]);
    home.ok(&["design", "new", "Roller crimper"]);
    let path = home.path().to_path_buf();
    let mut node: Option<ServeNode> = None;
    let mut home = Some(home);
    let mut answered_by_node = 0;
    for start in 0..STARTS {
        let up = AtomicBool::new(false);
        let (lists, statuses) = std::thread::scope(|scope| {
            let lists = scope.spawn(|| poll(&path, &["design", "list"], start as u64, &up));
            let statuses = scope.spawn(|| poll(&path, &["status"], 1000 + start as u64, &up));
            // Let the pollers get going, so serve starts in the middle of them.
            std::thread::sleep(Duration::from_millis(100 + 70 * start as u64));
            // ServeNode panics with the node's log if serve exits instead of starting.
            let started = match node.take() {
                Some(mut running) => {
                    running.restart();
                    running
                }
                None => ServeNode::start(home.take().expect("home"), &[]),
            };
            node = Some(started);
            up.store(true, Ordering::SeqCst);
            (
                lists.join().expect("design list poller"),
                statuses.join().expect("status poller"),
            )
        });
        let running = node.as_mut().expect("node");
        assert!(running.is_running(), "serve stopped:\n{}", running.log());
        for outcome in lists.iter().chain(&statuses) {
            let before_serve = outcome.args == ["status"]
                && outcome.stderr.contains("no node is running for this home");
            assert!(
                outcome.ok || before_serve,
                "start {start}: `hedgerow {}` failed: {}",
                outcome.args.join(" "),
                outcome.stderr
            );
        }
        answered_by_node += statuses.iter().filter(|o| o.ok).count();
        // Stop cleanly half the time, kill the other half: both leave the home startable.
        if start % 2 == 0 {
            running.stop();
        } else {
            running.kill();
        }
    }
    assert!(
        answered_by_node >= STARTS * AFTER_START,
        "only {answered_by_node} status commands reached the running node"
    );
}
