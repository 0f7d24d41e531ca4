//! Waiting: polls with a bound, pings until an answer, and wg-exec spawned in a namespace and
//! held at a test pause (`WG_EXEC_PAUSE`, the fault-injection feature) until it is killed.

use super::netns::Netns;
use super::run::wg_exec_bin;
use super::shell::{must, sh};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `cond` every 50 ms until it holds or `bound` passes.
pub fn within(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pings `addr` from `ns` until one answer arrives; how long that took, None after `bound`.
pub fn ping_within(ns: &str, addr: &str, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < bound {
        if sh(&format!("ip netns exec {ns} ping -c 1 -W 1 {addr}"))
            .status
            .success()
        {
            return Some(started.elapsed());
        }
    }
    None
}

/// Polls (at most 20 s, every 20 ms) until `cond` holds; fails naming `what`.
pub fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts wg-exec in `ns` with its stderr piped, the process itself (not a shell) as the child.
pub fn spawn_in(ns: &Netns, env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, wg_exec_bin()])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stderr until its "test pause" line; returns what it said so far.
pub fn wait_for_pause(child: &mut Child) -> String {
    let mut said = String::new();
    let mut reader = BufReader::new(child.stderr.as_mut().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("wg-exec ended before its test pause: {said}");
        }
        said.push_str(&line);
        if line.contains("test pause") {
            return said;
        }
    }
}

/// SIGKILL to a spawned wg-exec, which must end by it.
pub fn kill9(child: &mut Child) {
    must(&format!("kill -KILL {}", child.id()));
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        None,
        "wg-exec was killed, not ended: {status}"
    );
}
