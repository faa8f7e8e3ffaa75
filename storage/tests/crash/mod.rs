//! Shared harness of the SIGKILL tests (spool, InfluxDB writer, embedded store): the
//! writer is this test executable started again as a child that runs only its ignored
//! test `crash_child_writer`, prints a line `accepted ...` for every write that
//! returned, and is killed with SIGKILL mid-stream.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the writer if the test fails before it does, so no writer outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the child writer with `env` until it printed `kill_after` lines starting with
/// `accepted `, kills it with SIGKILL, and returns the rest of every such line it
/// printed (those before the kill and those still in the pipe).
pub fn run_child_and_kill(env: &[(&str, String)], kill_after: usize) -> Vec<String> {
    let child = Command::new(std::env::current_exe().expect("test executable"))
        .args([
            "--exact",
            "crash_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the writer process");
    let mut child = KillOnDrop(child);
    let child = &mut child.0;
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let accepted = |line: std::io::Result<String>| {
        line.expect("read the writer's stdout")
            .strip_prefix("accepted ")
            .map(str::to_owned)
    };
    let mut out = Vec::new();
    while out.len() < kill_after {
        let Some(line) = lines.next() else {
            panic!(
                "the writer exited after {} accepted writes: {:?}",
                out.len(),
                child.wait()
            );
        };
        out.extend(accepted(line));
    }
    assert!(
        child.try_wait().expect("poll the writer").is_none(),
        "the writer must still be running when it is killed"
    );
    child.kill().expect("SIGKILL the writer");
    let status = child.wait().expect("reap the writer");
    assert!(!status.success(), "killed, not exited: {status:?}");
    // Whatever it printed before dying was accepted too.
    out.extend(lines.filter_map(accepted));
    out
}

/// Parses an `accepted A B` line's rest: the half-open id range `A..B`.
pub fn id_range<T: std::str::FromStr>(rest: &str) -> (T, T) {
    let mut parts = rest.split(' ');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not `accepted A B`: {rest:?}"))
    };
    (next(), next())
}
